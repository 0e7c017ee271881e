//! AWS IoT log monitor: decodes CloudWatch Logs subscription batches of the
//! AWS IoT v2 log group, classifies every entry, stores incidents in
//! DynamoDB and alerts through SNS without flooding anyone.
//!
//! The core (`decode`, `envelope`, `scan`, `entry`, `classify`, `incident`,
//! `redact`, `item`, `alert`, `pipeline`) is plain functions over plain types; AWS sits behind the
//! traits in `ports`, implemented in `aws`; `handler` is the Lambda edge.

pub mod alert;
pub mod aws;
pub mod classify;
pub mod config;
pub mod decode;
pub mod display;
pub mod encode;
pub mod entry;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod incident;
pub mod item;
pub mod local;
#[cfg(test)]
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod query;
pub mod redact;
pub mod redrive;
pub mod retry;
pub mod scan;
pub mod timefmt;
