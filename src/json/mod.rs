//! JSON text at the byte level: finding where strings end, 64 bytes at a
//! time, and unescaping them. The bottom layer: it knows nothing of logs.

pub mod scan;
pub mod unescape;
