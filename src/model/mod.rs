//! The AWS IoT v2 log entry: its fields, the two readers (everything, or
//! only what classification needs, in place), the categories, and the
//! owned record kept of an incident. Plain data and functions; no I/O.

pub mod category;
pub mod classify;
pub mod entry;
pub mod essentials;
pub mod field;
pub mod record;
pub mod time;
