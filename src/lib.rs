//! helpline: the backend of the cyber-incident enquiry line 0151 706 3602.
//!
//! A caller's webhook goes: `twilio::extract` (signature, size, form) →
//! `calls::webhooks` → `calls::Calls` (hours + `flows::engine` + `store`) →
//! `calls::twiml` → `twilio::twiml` (XML). See docs/architecture.md.

pub mod app;
pub mod calls;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod dev;
pub mod enquiries;
pub mod events;
pub mod flows;
pub mod hours;
pub mod http;
pub mod logging;
pub mod messages;
pub mod ops;
pub mod phone;
pub mod purge;
pub mod simulate;
pub mod staff;
pub mod stats;
pub mod store;
pub mod twilio;
