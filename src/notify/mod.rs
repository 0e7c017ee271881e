//! What people and machines are told: incident notifications rendered for
//! email, chat and JSON within SNS's limits, each saying what the incident
//! means and what to check, and device text made safe to show anywhere.

pub mod body;
pub mod chat;
pub mod display;
pub mod hints;
pub mod notification;
