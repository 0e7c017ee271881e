//! Adapters from the ports to the AWS SDK. The SDK honours `AWS_ENDPOINT_URL`
//! (and per-service variants), so the same binary runs against moto locally.

pub mod entries;
pub mod incident_item;
pub mod incident_reader;
pub mod incidents;
pub mod reader;
pub mod secrets;
pub mod silences;
pub mod sns;
#[cfg(feature = "tooling")]
pub mod stack;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the SDK configuration once per process from the standard chain.
///
/// Each request gets 3 attempts (SDK standard mode: throttling and transient
/// errors, with its own backoff), [`ATTEMPT_TIMEOUT`] per attempt and
/// [`OPERATION_TIMEOUT`] in all, so one slow endpoint cannot eat the
/// invocation; the pipeline's own retries, bounded by `RETRY_BUDGET_MS` and
/// the invocation deadline, come on top. DynamoDB and SNS answer in tens of
/// milliseconds; seconds mean trouble worth retrying.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_config_loader().load().await
}

/// The loader behind [`sdk_config`], for callers that set more (an endpoint, a region, credentials).
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
}

/// A request to `table` that failed, as the store's error: what the service
/// said, whether trying again may help, and the SDK's error as the source.
pub(crate) fn store_error<E, R>(
    op: &'static str,
    table: &str,
    error: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> crate::error::StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let (message, retryable) = describe(&error);
    crate::error::StoreError::Request {
        op,
        table: table.to_owned(),
        message,
        retryable,
        source: Some(Box::new(error)),
    }
}

/// Whether a conditional write was refused because its condition did not
/// hold (for a transaction: one of its conditions): the item changed, not
/// the service failing.
pub(crate) fn is_condition_failure<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: ProvideErrorMetadata,
{
    error.as_service_error().is_some_and(|e| {
        matches!(
            e.code(),
            Some("ConditionalCheckFailedException" | "TransactionCanceledException")
        )
    })
}

/// Whether a write was refused because a transaction on the same item was
/// under way (a batch's count): trying again shortly passes.
pub(crate) fn is_transaction_conflict<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool
where
    E: ProvideErrorMetadata,
{
    error
        .as_service_error()
        .is_some_and(|e| e.code() == Some("TransactionConflictException"))
}

/// A short description of an SDK error and whether trying again may help.
pub(crate) fn describe<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> (String, bool)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown");
            let message = err.message().unwrap_or_default();
            let retryable = matches!(
                code,
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "Throttling"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "InternalFailure"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "KMSThrottling"
                    // A write beside a transaction on the same item (a
                    // batch's count): it passes once that is done.
                    | "TransactionConflictException"
            ) || code.contains("Throttl");
            (format!("{code}: {message}"), retryable)
        }
        SdkError::ConstructionFailure(_) => (
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(error)
            ),
            false,
        ),
        other => (
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(other)
            ),
            true,
        ),
    }
}
