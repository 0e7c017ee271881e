//! Test harness: a real moto server on a free loopback port (one per test
//! binary, stopped when the binary exits) and stacks deployed on it from
//! template.yaml through the SAM transform and CloudFormation.
#![allow(dead_code)]

pub mod cli;
pub mod fault_proxy;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use iot_log_monitor::aws::entries::DynamoEntryStore;
use iot_log_monitor::aws::incident_item::state_of;
use iot_log_monitor::aws::incidents::DynamoIncidentStore;
use iot_log_monitor::aws::sdk_config_loader;
use iot_log_monitor::aws::sns::SnsPublisher;
use iot_log_monitor::config::Config;
use iot_log_monitor::incident::lifecycle::IncidentState;
use iot_log_monitor::pipeline::{Processor, Response, Summary};
use iot_log_monitor::tooling::encode::{subscription_event_json, BatchSpec};
use iot_log_monitor::tooling::inbox::{drain_inbox, ReceivedNotification};

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The command that starts moto: the venv's moto with DynamoDB requests
/// decided one at a time (`scripts/moto_serialised.py` says why). There is
/// no override: a plain moto would let the concurrency tests pass by luck.
fn moto_command() -> Vec<PathBuf> {
    let python = repo_path(".venv/bin/python");
    assert!(
        repo_path(".venv/bin/moto_server").exists(),
        "moto_server not found: run `make tools` (installs it into .venv)"
    );
    vec![python, repo_path("scripts/moto_serialised.py")]
}

pub struct Moto {
    pub endpoint: String,
}

/// The moto server of this test binary. A watchdog shell stops it when the
/// test process exits, so no server outlives the tests. The watchdog is
/// never waited for: it ends with the process it watches.
#[allow(clippy::zombie_processes)]
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        // Port 0: moto binds a free port itself and names it in its log, so
        // no other process can take the port between choosing and binding.
        static N: AtomicU32 = AtomicU32::new(0);
        // Unique, and gone before moto starts: a process id is reused, and
        // a stale log of an earlier process under the same name would be
        // read before the new moto truncates it (naming a dead port).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let log = std::env::temp_dir().join(format!(
            "moto-{}-{}-{nanos}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&log);
        Command::new("bash")
            .arg("-c")
            .arg(
                r#"log=$1; shift; "$@" -H 127.0.0.1 -p 0 >"$log" 2>&1 & m=$!
                 while kill -0 "$0" 2>/dev/null && kill -0 "$m" 2>/dev/null; do sleep 0.5; done
                 kill "$m" 2>/dev/null"#,
            )
            .arg(std::process::id().to_string())
            .arg(&log)
            .args(moto_command())
            .stdin(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let started = Instant::now();
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .split("Running on http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // It names the port once bound; on a loaded machine the first
        // connection can still be refused: wait for one, with a deadline.
        while let Err(e) = TcpStream::connect(("127.0.0.1", port)) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto on {port} refuses connections ({e}); its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    })
}

/// The product's SDK configuration pointed at `endpoint`, with looser
/// timeouts: one moto process serves every test of a binary at once, and a
/// slow answer there is not what these tests are about.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_timed(endpoint, Duration::from_secs(30), Duration::from_secs(90)).await
}

/// The product's SDK configuration pointed at `endpoint`, with these timeouts.
pub async fn sdk_config_timed(
    endpoint: &str,
    attempt: Duration,
    operation: Duration,
) -> aws_config::SdkConfig {
    sdk_config_loader()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        )
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// The SAM-transformed template, made once per test binary (the transform
/// is the slow part of a deploy) and shared by its stacks.
fn transformed_template() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("transformed-{}.json", std::process::id()));
        let status = Command::new(repo_path(".venv/bin/python"))
            .arg(repo_path("scripts/local_stack.py"))
            .args(["transform", "--template"])
            .arg(repo_path("template.yaml"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("run scripts/local_stack.py");
        assert!(
            status.success(),
            "the SAM transform of template.yaml failed"
        );
        out
    })
}

/// A stack deployed from template.yaml on moto, as users deploy it (SAM
/// transform, CreateStack), named uniquely per test; what the function runs
/// with is the deployed function's own environment.
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub name: String,
    /// Physical ids by logical id: table names, queue URLs, topic ARNs.
    pub resources: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    /// GetFunctionConfiguration's environment of the deployed function.
    pub env: BTreeMap<String, String>,
    /// An SQS queue subscribed to every topic of the stack.
    pub inbox_queue_url: String,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

pub type RealProcessor = Processor<DynamoEntryStore, DynamoIncidentStore, SnsPublisher>;

impl Stack {
    pub async fn new(name: &str) -> Self {
        Self::with_parameters(name, &[]).await
    }

    /// A stack deployed with these template parameters (`Key=Value`).
    pub async fn with_parameters(name: &str, parameters: &[&str]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let endpoint = &moto().endpoint;
        let mut deploy = Command::new(repo_path(".venv/bin/python"));
        deploy
            .arg(repo_path("scripts/local_stack.py"))
            .args(["deploy", "--stack", &name, "--transformed"])
            .arg(transformed_template())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for p in parameters {
            deploy.args(["--param", p]);
        }
        // Blocking is fine: each test has its own runtime.
        let out = deploy.output().expect("run scripts/local_stack.py");
        assert!(
            out.status.success(),
            "deploying stack {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deployed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let map = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        };
        let sdk = sdk_config(endpoint).await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
            name,
            resources: map(&deployed["resources"]),
            outputs: map(&deployed["outputs"]),
            env: map(&deployed["environment"]),
            inbox_queue_url: deployed["inbox_queue_url"].as_str().unwrap().to_owned(),
        }
    }

    /// The function's configuration, as the template's environment gives it, with overrides.
    pub fn config(&self, overrides: &[(&str, &str)]) -> Config {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    pub fn processor(&self, overrides: &[(&str, &str)]) -> RealProcessor {
        self.processor_on(&self.sdk, overrides)
    }

    /// A processor whose AWS calls go through `sdk` (for example via a fault-injecting proxy).
    pub fn processor_on(
        &self,
        sdk: &aws_config::SdkConfig,
        overrides: &[(&str, &str)],
    ) -> RealProcessor {
        self.processor_with(sdk, aws_sdk_dynamodb::Client::new(sdk), overrides)
    }

    /// [`processor_on`](Self::processor_on) with a DynamoDB client of the
    /// test's own (one with an interceptor that counts what it reads, say).
    pub fn processor_with(
        &self,
        sdk: &aws_config::SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        overrides: &[(&str, &str)],
    ) -> RealProcessor {
        let config = self.config(overrides);
        Processor {
            entries: DynamoEntryStore::new(dynamodb.clone(), &config.entries_table),
            incidents: DynamoIncidentStore::new(
                dynamodb,
                &config.incidents_table,
                config.retention_days,
                &config.silences_table,
            )
            .with_silences_refresh(config.silences_refresh),
            publisher: SnsPublisher::new(aws_sdk_sns::Client::new(sdk), &config.alert_topic_arn),
            config,
        }
    }

    /// A resource's physical id (a table's name, a queue's URL).
    pub fn table(&self, logical_id: &str) -> &str {
        &self.resources[logical_id]
    }

    /// Every stored entry (a Scan: fine for a test table).
    pub async fn entries(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.scan("EntriesTable").await
    }

    /// Every incident item: key items (the current incident of a key) and
    /// records of resolved incidents (not the batch markers beside them).
    pub async fn incidents(&self) -> Vec<IncidentState> {
        self.scan("IncidentsTable")
            .await
            .iter()
            .filter(|item| !iot_log_monitor::aws::incident_item::is_marker(item))
            .map(|item| state_of(item).expect("an incident item"))
            .collect()
    }

    /// Every entry counts towards exactly one incident, and each incident
    /// counts exactly the entries that name it.
    pub async fn assert_counts_add_up(&self) {
        let mut named: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.entries().await {
            *named.entry(s(&entry, "incidentId")).or_default() += 1;
        }
        let incidents = self.current_incidents().await;
        assert_eq!(named.len(), incidents.len(), "{named:?}");
        for incident in incidents {
            assert_eq!(
                named.get(&incident.incident_id).copied(),
                Some(incident.entries),
                "{}: counted {} entries",
                incident.incident_id,
                incident.entries
            );
        }
    }

    /// The batch markers of the incidents table: (key hash, fingerprint) →
    /// the incident id each names.
    pub async fn batch_markers(&self) -> BTreeMap<(String, String), String> {
        self.scan("IncidentsTable")
            .await
            .iter()
            .filter(|item| s(item, "incidentKey").starts_with("batch#"))
            .map(|item| {
                let key = s(item, "incidentKey");
                let mut parts = key.splitn(3, '#').skip(1);
                let hash = parts.next().unwrap_or_default().to_owned();
                let fingerprint = parts.next().unwrap_or_default().to_owned();
                // A batch's delta refused by the openings budget: "folded".
                let named = opt(item, "incidentId").unwrap_or_else(|| "folded".into());
                ((hash, fingerprint), named)
            })
            .collect()
    }

    /// The current incident of every key that has one (key items only).
    pub async fn current_incidents(&self) -> Vec<IncidentState> {
        let mut current: Vec<_> = self
            .incidents()
            .await
            .into_iter()
            .filter(|i| i.item_key != i.incident_id)
            .collect();
        current.sort_by(|a, b| a.key.cmp(&b.key));
        current
    }

    /// One item of the incidents table as stored (consistent read).
    pub async fn incident_item(&self, key: &str) -> HashMap<String, AttributeValue> {
        self.dynamodb
            .get_item()
            .table_name(self.table("IncidentsTable"))
            .key("incidentKey", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no incident item {key}"))
    }

    async fn scan(&self, logical_id: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(self.table(logical_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                // A Scan's order is DynamoDB's business: sorted here, so two
                // reads of the same items compare equal.
                items.sort_by_cached_key(|item| {
                    format!("{:?}", item.iter().collect::<BTreeMap<_, _>>())
                });
                return items;
            }
        }
    }

    /// Every notification delivered so far, waiting for none that may still
    /// come: a marker published to the topic after them is delivered after
    /// them (moto delivers a publish to the queue before answering it), so
    /// "nothing arrived" is a fact read up to the marker, not a pause.
    pub async fn notifications_so_far(&self) -> Vec<ReceivedNotification> {
        static N: AtomicU32 = AtomicU32::new(0);
        let marker = format!("test-marker-{}", N.fetch_add(1, Ordering::Relaxed));
        aws_sdk_sns::Client::new(&self.sdk)
            .publish()
            .topic_arn(&self.env["ALERT_TOPIC_ARN"])
            .message(&marker)
            .send()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut received = Vec::new();
        loop {
            for notification in
                drain_inbox(&self.sqs, &self.inbox_queue_url, Duration::from_secs(1))
                    .await
                    .unwrap()
            {
                if notification.message == marker {
                    return received;
                }
                received.push(notification);
            }
            assert!(
                Instant::now() < deadline,
                "the marker never reached the inbox"
            );
        }
    }

    /// Notifications that reached the inbox queue subscribed to the topic.
    pub async fn notifications(&self, wait: Duration) -> Vec<ReceivedNotification> {
        drain_inbox(&self.sqs, &self.inbox_queue_url, wait)
            .await
            .unwrap()
    }
}

/// An attribute as text; panics if the item lacks it.
pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    opt(item, name).unwrap_or_else(|| panic!("item has no attribute {name}: {item:?}"))
}

pub fn opt(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name)? {
        AttributeValue::S(v) | AttributeValue::N(v) => Some(v.clone()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A subscription event for raw lines (timestamps from the lines, else `at_ms`).
pub fn event(stream: &str, seed: u64, lines: &[String], at_ms: i64) -> String {
    let mut spec = BatchSpec::new("AWSIotLogsV2", stream);
    spec.id_seed = seed;
    let timed: Vec<(i64, &str)> = lines
        .iter()
        .map(|l| {
            (
                iot_log_monitor::tooling::encode::line_timestamp(l, at_ms),
                l.as_str(),
            )
        })
        .collect();
    subscription_event_json(&spec, timed)
}

/// A `RuleMessageThrottled` entry of `rule`, numbered `n` (its traceId and time).
pub fn throttled_line(rule: &str, n: usize) -> String {
    format!(
        r#"{{"timestamp":"2026-11-22 10:{:02}:{:02}.{:03}","logLevel":"ERROR","traceId":"storm-{rule}-{n}","accountId":"123456789012","status":"Failure","eventType":"RuleMessageThrottled","clientId":"sensor-{}","topicName":"$aws/rules/{rule}","ruleName":"{rule}","reason":"RuleExecutionThrottled","details":"Message for Rule {rule} throttled"}}"#,
        (n / 60000) % 60,
        (n / 1000) % 60,
        n % 1000,
        n % 17
    )
}

/// The record Lambda's on-failure destination keeps for an asynchronous
/// invocation that exhausted its retries, in the format the Lambda developer
/// guide shows ("Capturing records of Lambda asynchronous invocations"),
/// written here by hand, not by the code under test.
pub fn failed_invocation_record(
    request_id: &str,
    event: &serde_json::Value,
    error_type: &str,
    error_message: &str,
) -> String {
    serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:05.568Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:processor:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": error_message}
    })
    .to_string()
}

/// The traceIds of stored entries.
pub fn trace_ids_in(
    items: &[HashMap<String, AttributeValue>],
) -> std::collections::BTreeSet<String> {
    items.iter().map(|item| s(item, "traceId")).collect()
}

/// The traceIds of a lines file (events/lines/*.jsonl), read from the
/// lines themselves: an expectation the code under test did not make.
pub fn trace_ids_of(file: &str) -> std::collections::BTreeSet<String> {
    lines_of(file)
        .iter()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["traceId"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

pub fn lines_of(file: &str) -> Vec<String> {
    std::fs::read_to_string(repo_path(file))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Runs one sweep, as the schedule would, at `now_ms`.
pub async fn sweep(processor: &RealProcessor, now_ms: i64) -> Summary {
    match processor
        .process(SCHEDULED_EVENT, now_ms, far_deadline())
        .await
        .unwrap()
    {
        Response::Sweep(summary) => summary,
        other => panic!("expected a sweep: {other:?}"),
    }
}

/// What EventBridge sends for a schedule with no input of its own.
pub const SCHEDULED_EVENT: &str = r#"{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-12-02T10:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/sweep"],"detail":{}}"#;

pub async fn run(processor: &RealProcessor, event_json: &str, now_ms: i64) -> Summary {
    match processor
        .process(event_json, now_ms, far_deadline())
        .await
        .unwrap()
    {
        Response::Batch(summary) => summary,
        other => panic!("expected a direct subscription event: {other:?}"),
    }
}
