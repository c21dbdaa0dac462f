//! The edge to Twilio: webhook signatures, strict form parsing, the verifying extractor,
//! the TwiML writer, and the REST client for outbound requests (`rest`).

pub mod extract;
pub mod form;
pub mod rest;
pub mod signature;
pub mod twiml;
