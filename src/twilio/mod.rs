//! The edge to Twilio: webhook signatures, strict form parsing, the verifying extractor,
//! and the TwiML writer.

pub mod extract;
pub mod form;
pub mod signature;
pub mod twiml;
