//! Running the query tool as a user does: the built binary, against moto,
//! with nothing of the caller's environment deciding where the data is.

use std::process::{Command, Output};

use super::moto;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn cli(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iot-incidents"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("ENTRIES_TABLE")
        .env_remove("FAILED_BATCH_QUEUE_URL")
        .env_remove("INCIDENTS_TABLE")
        .env_remove("SILENCES_TABLE")
        .env_remove("ALERT_TOPIC_ARN")
        .env_remove("IOT_INCIDENTS_STACK")
        .env_remove("FAILED_STREAM_BATCH_BUCKET");
    command
}

pub fn ok(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status.code()
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn failed(output: Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    stderr
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
