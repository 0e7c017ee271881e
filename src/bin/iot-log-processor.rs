//! The Lambda function: configuration and clients are built once, then the
//! runtime loop serves invocations.

use iot_log_monitor::aws::entries::DynamoEntryStore;
use iot_log_monitor::aws::incidents::DynamoIncidentStore;
use iot_log_monitor::aws::secrets;
use iot_log_monitor::aws::{sdk_config, sns::SnsPublisher};
use iot_log_monitor::config::{vars, Config};
use iot_log_monitor::lambda;
use iot_log_monitor::pipeline::Processor;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    lambda::init_tracing();
    let sdk = sdk_config().await;
    let env = |name: &str| std::env::var(name).ok();
    let key = secrets::redaction_key_from_env(&sdk, env)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let config = Config::from_lookup(|name| match (name, &key) {
        (vars::REDACTION_KEY, Some(key)) => Some(key.clone()),
        _ => env(name),
    })
    .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    for warning in &config.warnings {
        tracing::warn!(warning = %warning, "configuration");
    }
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let processor = Processor {
        entries: DynamoEntryStore::new(dynamodb.clone(), &config.entries_table),
        incidents: DynamoIncidentStore::new(
            dynamodb,
            &config.incidents_table,
            config.retention_days,
            &config.silences_table,
        )
        .with_silences_refresh(config.silences_refresh),
        publisher: SnsPublisher::new(aws_sdk_sns::Client::new(&sdk), &config.alert_topic_arn),
        config,
    };
    lambda::serve(processor).await
}
