//! The library's errors. Each carries a stable `kind()` that the Lambda
//! handler reports as the `errorType` of a failed invocation, so operators
//! can tell a poison batch (retrying will not help) from a transient AWS
//! failure (the retry will likely succeed) in the failure destination.

use thiserror::Error;

/// An AWS SDK error kept whole (its service code, request id, HTTP
/// response and the chain of causes), as the source of ours.
pub type SdkFailure = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a batch could not be decoded. Retrying the same bytes gives the same error.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("the event is not a CloudWatch Logs subscription event (expected {{\"awslogs\":{{\"data\":\"…\"}}}}, or {{\"Records\":[{{\"kinesis\":{{\"data\":\"…\",\"sequenceNumber\":\"…\"}}}}]}} from a stream): {0}")]
    NotSubscriptionEvent(String),
    #[error("awslogs.data is not valid base64")]
    Base64,
    #[error("awslogs.data is not valid gzip: {0}")]
    Gzip(&'static str),
    #[error(
        "the batch decompresses to more than {cap} bytes (MAX_DECOMPRESSED_BYTES); refusing it"
    )]
    TooLarge { cap: usize },
    #[error("the decompressed batch is not a CloudWatch Logs envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error(
        "unsupported CloudWatch Logs messageType {0:?} (expected DATA_MESSAGE or CONTROL_MESSAGE)"
    )]
    UnknownMessageType(String),
    #[error("log event {id}: `message` is not a JSON string")]
    MessageNotString { id: String },
    #[error("a Kinesis record that is not as Lambda delivers them (data not base64, a field missing or of another type): {0}")]
    UnreadableRecord(String),
}

impl DecodeError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotSubscriptionEvent(_) => "Decode.NotSubscriptionEvent",
            Self::Base64 => "Decode.Base64",
            Self::Gzip(_) => "Decode.Gzip",
            Self::TooLarge { .. } => "Decode.TooLarge",
            Self::Envelope(_) => "Decode.Envelope",
            Self::UnknownMessageType(_) => "Decode.UnknownMessageType",
            Self::MessageNotString { .. } => "Decode.MessageNotString",
            Self::UnreadableRecord(_) => "Decode.UnreadableRecord",
        }
    }
}

/// A failure to store incidents or to record alert state in DynamoDB.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{op} on table {table} failed: {message}")]
    Request {
        op: &'static str,
        table: String,
        /// `Code: message`, what the service said.
        message: String,
        retryable: bool,
        #[source]
        source: Option<SdkFailure>,
    },
    #[error("{remaining} of {total} entry writes still unprocessed when the retry budget of {budget_ms} ms ran out")]
    Unprocessed {
        remaining: usize,
        total: usize,
        budget_ms: u64,
    },
}

impl StoreError {
    /// DynamoDB refused this one request for what it holds (a key over its
    /// size limit, an attribute it will not take): other requests, with other
    /// keys, still pass. Anything else refused for good (access denied, a
    /// missing table, KMS) would refuse every key: that fails the batch.
    pub fn is_refused_for_this_request(&self) -> bool {
        matches!(self, Self::Request { message, retryable: false, .. } if message.starts_with("ValidationException"))
    }

    /// Throttling, a 5xx, a timeout or a lost connection: trying again may pass.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Request { retryable, .. } => *retryable,
            Self::Unprocessed { .. } => true,
        }
    }
}

/// A failure to publish notifications.
#[derive(Debug, Error)]
pub enum PublishError {
    #[error("{failed} of {total} notifications were rejected by SNS: {first_error}")]
    Rejected {
        failed: usize,
        total: usize,
        first_error: String,
        /// The SDK's error, when the request itself failed.
        #[source]
        source: Option<SdkFailure>,
    },
}

/// Why an invocation failed; the batch will be retried, then kept in the failure destination.
#[derive(Debug, Error)]
pub enum ProcessError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("entries were not stored, so nothing was notified: {0}")]
    Store(#[from] StoreError),
    #[error("incidents could not be recorded: {0}")]
    IncidentState(#[source] StoreError),
    #[error("entries are stored, but notifications were not published: {0}")]
    Publish(#[from] PublishError),
    #[error(
        "entries are stored, but only {remaining_ms} ms are left, too little to notify safely; the retry will notify"
    )]
    OutOfTime { remaining_ms: u64 },
    #[error(
        "the invocation reached its deadline before it was done; the retry recognises what was counted and stored, and claims taken lapse with the deadline"
    )]
    Deadline,
}

impl ProcessError {
    /// The `errorType` reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.kind(),
            Self::Store(StoreError::Unprocessed { .. }) => "Store.Unprocessed",
            Self::Store(StoreError::Request { .. }) => "Store.Request",
            Self::IncidentState(_) => "IncidentState.Request",
            Self::Publish(_) => "Publish.Request",
            Self::OutOfTime { .. } => "Notify.OutOfTime",
            Self::Deadline => "Deadline",
        }
    }

    /// A decode error will fail the same way on every retry; the rest may pass.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Decode(_))
    }
}

/// A configuration variable that is missing or invalid; names the variable.
#[derive(Debug, Error)]
#[error("environment variable {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}
