//! helpline: the backend of the cyber-incident enquiry line 0151 706 3602.

pub mod clock;
pub mod enquiries;
pub mod flows;
pub mod phone;
