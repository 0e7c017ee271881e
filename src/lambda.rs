//! The Lambda front door: the only module that knows `lambda_runtime`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::value::RawValue;

use crate::error::ProcessError;
use crate::metrics::emf_record;
use crate::pipeline::{deadline_from_epoch_ms, is_sweep, Processor, Response, Summary, SWEEP};
use crate::ports::{EntryStore, IncidentStore, NotificationPublisher};

/// A failed invocation, reported to Lambda with a meaningful `errorType`
/// (`IotLogMonitor.Decode.Gzip`, `IotLogMonitor.Store.Unprocessed`, …).
#[derive(Debug)]
pub struct InvocationError(pub ProcessError);

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: format!("IotLogMonitor.{}", error.0.kind()),
            error_message: error.0.to_string(),
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Handles one invocation: one summary log line and one EMF record, success or not.
pub async fn handle<S, G, P>(
    processor: &Processor<S, G, P>,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Response, InvocationError>
where
    S: EntryStore,
    G: IncidentStore,
    P: NotificationPublisher,
{
    let now = epoch_ms();
    let deadline = deadline_from_epoch_ms(event.context.deadline, now);
    let request_id = &event.context.request_id;
    let namespace = &processor.config.metrics_namespace;
    match processor
        .process(event.payload.get(), now as i64, deadline)
        .await
    {
        Ok(response) => {
            let summary = response.summary();
            tracing::info!(
                request_id,
                message_type = summary.message_type,
                log_group = %summary.log_group,
                records = summary.records,
                failed_records = summary.failed_records,
                entries = summary.entries,
                rule_not_found = summary.by_category[0],
                rule_message_throttled = summary.by_category[1],
                failure = summary.by_category[2],
                warning = summary.by_category[3],
                unparseable = summary.by_category[4],
                stored = summary.stored,
                write_requests = summary.write_requests,
                incidents = summary.incidents,
                keys_folded = summary.keys_folded,
                incidents_opened = summary.incidents_opened,
                incidents_already_counted = summary.incidents_already_counted,
                incidents_resolved = summary.incidents_resolved,
                incidents_open = summary.incidents_open,
                notifications_sent = summary.notifications_sent,
                notifications_held_elsewhere = summary.notifications_held_elsewhere,
                notifications_silenced = summary.notifications_silenced,
                notifications_failed = summary.notifications_failed,
                duration_ms = summary.duration_ms,
                decode_us = summary.decode_us,
                parse_us = summary.parse_us,
                "batch processed"
            );
            println!("{}", emf_record(namespace, summary, now as i64));
            Ok(response)
        }
        Err(error) => {
            tracing::error!(
                request_id,
                error_type = error.kind(),
                retryable = error.is_retryable(),
                error = %error,
                "batch failed; Lambda will retry it, then keep it in the failure destination"
            );
            // A failed sweep is the clock stopping, not a log batch lost:
            // a metric (and an alarm) of its own tells them apart.
            let sweep = is_sweep(event.payload.get());
            let summary = Summary {
                message_type: if sweep { SWEEP } else { "" },
                log_group: "unknown".into(),
                decode_errors: u64::from(matches!(error, ProcessError::Decode(_))),
                failed: 1,
                ..Summary::default()
            };
            println!("{}", emf_record(namespace, &summary, now as i64));
            Err(InvocationError(error))
        }
    }
}

/// Whether an event may be logged whatever the configured level says: at
/// DEBUG and TRACE only this crate's own events pass. The AWS SDK and the
/// HTTP and TLS crates under it log requests with their `Authorization`
/// header (which names the access key), credentials as loaded and what was
/// signed at those levels: capped at INFO, the function's log never holds a
/// credential, whatever `RUST_LOG` or the Lambda log level ask for.
pub fn loggable(metadata: &tracing::Metadata<'_>) -> bool {
    *metadata.level() <= tracing::Level::INFO
        || metadata.target().starts_with(env!("CARGO_CRATE_NAME"))
        || metadata.target().starts_with("iot_log_processor")
}

/// The function's log subscriber writing to `writer`: `directives` as in
/// `RUST_LOG` (or a level), [`loggable`] on top, JSON lines with their time
/// when `json` (Lambda reads the level and time from them), else plain text.
pub fn log_subscriber<W>(
    directives: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_new(directives)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(filter_fn(loggable));
    let registry = tracing_subscriber::registry();
    if json {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_target(false)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter);
        Box::new(registry.with(layer))
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(false)
            .without_time()
            .with_writer(writer)
            .with_filter(filter);
        Box::new(registry.with(layer))
    }
}

/// Logs as Lambda asks: JSON when the function's log format is JSON, plain
/// text otherwise; the level from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL`.
pub fn init_tracing() {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .unwrap_or_else(|_| "info".into())
            .to_lowercase()
    });
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let subscriber = log_subscriber(&directives, json, std::io::stdout);
    tracing::subscriber::set_global_default(subscriber).expect("the log is set up once");
}

/// Runs the Lambda runtime loop over one processor, built once.
pub async fn serve<S, G, P>(processor: Processor<S, G, P>) -> Result<(), lambda_runtime::Error>
where
    S: EntryStore + 'static,
    G: IncidentStore + 'static,
    P: NotificationPublisher + 'static,
{
    let processor = Arc::new(processor);
    lambda_runtime::run(service_fn(move |event| {
        let processor = Arc::clone(&processor);
        async move { handle(&processor, event).await }
    }))
    .await
}
