//! What people and machines are told: incidents grouped into alerts,
//! rendered for email and JSON within SNS's limits, and device text made
//! safe to show anywhere.

pub mod alert;
pub mod display;
pub mod group;
