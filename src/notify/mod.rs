//! What people and machines are told: incident notifications rendered for
//! email and JSON within SNS's limits, and device text made safe to show
//! anywhere.

pub mod display;
pub mod notification;
