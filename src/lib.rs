//! AWS IoT log monitor: decodes CloudWatch Logs subscription batches of the
//! AWS IoT v2 log group, classifies every entry, stores incidents in
//! DynamoDB and alerts through SNS without flooding anyone.
//!
//! Layers, bottom up (a module uses only the ones below it):
//! - `json`: strings in JSON text, at the byte level;
//! - `model`: the log entry, its readers, categories, the incident record, time;
//! - `ingest`: the invocation's front door, base64, gunzip, the envelope;
//! - `store` and `notify`: items, redaction and queries; alerts and safe display;
//! - `ports` (what the pipeline needs from AWS) and `aws` (the adapters);
//! - `pipeline` (one invocation's work) and `lambda` (the only module that
//!   knows `lambda_runtime`); `config`, `error`, `metrics`, `retry` beside them;
//! - `tooling` (feature `tooling`): fixtures, the local stack, redrive records.
#![forbid(unsafe_code)]

pub mod aws;
pub mod config;
pub mod error;
pub mod incident;
pub mod ingest;
pub mod json;
pub mod lambda;
#[cfg(test)]
pub mod memory;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod ports;
pub mod retry;
pub mod store;
#[cfg(feature = "tooling")]
pub mod tooling;
