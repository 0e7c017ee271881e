//! What is kept of an incident: the DynamoDB item (keys, indexes,
//! trimming), redaction before it is written, and the queries operators run.

pub mod indexes;
pub mod item;
pub mod keys;
pub mod query;
pub mod redact;
