//! One CloudWatch Logs subscription batch, as read from its envelope:
//! borrowed from the decompressed buffer.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::DecodeError;
use crate::json::unescape::unescape_json_string;
use crate::model::category::Category;

/// What kind of batch CloudWatch Logs sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Log events.
    Data,
    /// CloudWatch's reachability check when a subscription is created; carries no IoT logs.
    Control,
}

/// The decompressed subscription payload, borrowing from its buffer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsBatch<'a> {
    #[serde(borrow)]
    pub message_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub owner: Cow<'a, str>,
    #[serde(borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(borrow)]
    pub log_stream: Cow<'a, str>,
    #[serde(borrow, default)]
    pub subscription_filters: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub log_events: Vec<RawLogEvent<'a>>,
}

/// One CloudWatch log event. The message stays as its escaped JSON text until
/// it is looked at: IoT messages are JSON inside a JSON string, so they
/// always hold escapes and cannot be borrowed as `&str`.
#[derive(Debug, Deserialize)]
pub struct RawLogEvent<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub timestamp: i64,
    /// The `message` value's JSON text as it lies in the envelope: a string
    /// literal, quotes included (anything else is refused when read).
    #[serde(rename = "message", borrow, deserialize_with = "json_text")]
    pub message_json: &'a str,
    /// The message's category (`Some(None)`: not an incident) when the
    /// envelope reader classified it in place while finding its end; `None`
    /// when it is left to the pipeline's parsers (`pipeline::analyze`).
    #[serde(skip)]
    pub category: Option<Option<Category>>,
}

fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    <&RawValue>::deserialize(d).map(RawValue::get)
}

impl LogsBatch<'_> {
    pub fn kind(&self) -> Result<MessageType, DecodeError> {
        match &*self.message_type {
            "DATA_MESSAGE" => Ok(MessageType::Data),
            "CONTROL_MESSAGE" => Ok(MessageType::Control),
            other => Err(DecodeError::UnknownMessageType(other.to_owned())),
        }
    }
}

impl RawLogEvent<'_> {
    /// Writes the unescaped message into `out` (cleared first), reusing its allocation.
    pub fn message_into(&self, out: &mut String) -> Result<(), DecodeError> {
        out.clear();
        unescape_json_string(self.message_json, out).ok_or_else(|| DecodeError::MessageNotString {
            id: self.id.clone().into_owned(),
        })
    }
}
