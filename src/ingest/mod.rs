//! From a Lambda invocation to the log events of each batch: the front
//! door (a subscription event or a Kinesis batch), base64, bounded gunzip,
//! and the envelope, read in one pass that classifies each entry in place.

pub mod batch;
pub mod decode;
pub mod envelope;
