//! What cfn-lint and `sam validate` cannot check in template.yaml: least
//! privilege, encryption, the environment the code requires, the binary the
//! build names, and the default subscription filter against the documented
//! log entries.

mod common;

use common::repo_path;
use common::template::{template_value, Template, TemplateValue};
use iot_log_monitor::config::vars;
use serde_norway::Value;

fn template() -> Template {
    Template::load(&repo_path("template.yaml")).unwrap()
}

fn resource<'t>(t: &'t Template, id: &str) -> &'t Value {
    t.resource(id)
        .unwrap_or_else(|| panic!("template has no {id}"))
}

fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

#[test]
fn the_function_may_touch_only_the_stacks_own_resources() {
    let t = template();
    let role = resource(&t, "ProcessorRole");
    let logical_ids: Vec<&str> = t.resources().map(|(id, _, _)| id).collect();
    let mut statements = 0;
    // The role's own policies, and the Kinesis path's policy attached to it.
    let attached = t
        .resources()
        .filter(|(_, kind, props)| {
            *kind == "AWS::IAM::Policy"
                && list(&props["Roles"])
                    .iter()
                    .any(|r| template_value(r) == TemplateValue::Ref("ProcessorRole".into()))
        })
        .map(|(_, _, props)| props);
    let attached: Vec<&Value> = attached.collect();
    assert_eq!(attached.len(), 1, "the Kinesis read policy");
    for policy in list(&role["Properties"]["Policies"])
        .into_iter()
        .chain(attached)
    {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            // `!If [condition, statement, !Ref AWS::NoValue]`: the statement.
            let statement = match statement {
                Value::Tagged(t) if t.tag == "!If" => &t.value.as_sequence().unwrap()[1],
                plain => plain,
            };
            statements += 1;
            assert_eq!(statement["Effect"].as_str(), Some("Allow"));
            for action in list(&statement["Action"]) {
                let action = action.as_str().unwrap();
                assert!(!action.contains('*'), "wildcard action {action}");
            }
            for target in list(&statement["Resource"]) {
                match template_value(target) {
                    TemplateValue::Ref(id) | TemplateValue::GetAtt(id, _) => {
                        assert!(
                            logical_ids.contains(&id.as_str()),
                            "{id} is not a resource of this stack"
                        )
                    }
                    // `!Sub "${Table.Arn}/index/name"`: a path under one of the stack's own.
                    _ => {
                        let Value::Tagged(sub) = target else {
                            panic!("resource {target:?} is not one of the stack's own")
                        };
                        let text = sub.value.as_str().unwrap_or_default();
                        assert_eq!(sub.tag.to_string(), "!Sub", "{target:?}");
                        // One SSM parameter the operator names, in this account and region.
                        const OWN_PARAMETER: &str =
                            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${";
                        if let Some(name) = text.strip_prefix(OWN_PARAMETER) {
                            let name = name.strip_suffix('}').expect("one variable");
                            assert!(t.parameter_default(name).is_some(), "{name} is a parameter");
                            continue;
                        }
                        let (head, rest) = text
                            .strip_prefix("${")
                            .and_then(|t| t.split_once('}'))
                            .unwrap_or_else(|| panic!("{text} does not start with a resource"));
                        let id = head.split('.').next().unwrap();
                        assert!(
                            logical_ids.contains(&id),
                            "{id} is not a resource of this stack"
                        );
                        // Objects under the prefix where Lambda keeps failed batches.
                        let rest = match id {
                            "FailedStreamBatchBucket" => {
                                rest.strip_suffix("/aws/lambda/*").unwrap_or(rest)
                            }
                            _ => rest,
                        };
                        assert!(!rest.contains('*') && !rest.contains("${"), "{text}");
                    }
                }
            }
        }
    }
    assert_eq!(statements, 12);
    // No managed policies (they grant Resource *), but one: X-Ray's write
    // policy, only when tracing is turned on (X-Ray's actions take no
    // resource, so no statement of ours could scope them either).
    let managed = &role["Properties"]["ManagedPolicyArns"];
    let Value::Tagged(only_if) = managed else {
        panic!("no managed policies (they grant Resource *): {managed:?}")
    };
    assert_eq!(only_if.tag.to_string(), "!If");
    let branches = only_if.value.as_sequence().unwrap();
    assert_eq!(branches[0].as_str(), Some("UseTracing"));
    assert!(
        format!("{:?}", branches[1]).contains("policy/AWSXRayDaemonWriteAccess")
            && list(&branches[1]).len() == 1,
        "{managed:?}"
    );
    assert!(format!("{:?}", branches[2]).contains("AWS::NoValue"));
    let function = resource(&t, "ProcessorFunction");
    assert!(
        function["Properties"]["Policies"].is_null(),
        "permissions come from ProcessorRole only"
    );
}

#[test]
fn the_invoke_permission_is_scoped_to_the_log_group() {
    let t = template();
    let permission = &resource(&t, "LogsInvokePermission")["Properties"];
    assert_eq!(permission["Principal"].as_str(), Some("logs.amazonaws.com"));
    let Value::Tagged(source) = &permission["SourceArn"] else {
        panic!("SourceArn is not a !Sub")
    };
    assert_eq!(source.tag.to_string(), "!Sub");
    assert!(source
        .value
        .as_str()
        .unwrap()
        .ends_with(":log-group:${LogGroupName}:*"));
    assert!(!permission["SourceAccount"].is_null());
}

#[test]
fn every_subscription_has_its_own_scoped_permission_and_both_paths_are_complete() {
    let t = template();
    let filters: Vec<(&str, &Value)> = t
        .resources()
        .filter(|(_, kind, _)| *kind == "AWS::Logs::SubscriptionFilter")
        .map(|(id, _, _)| (id, resource(&t, id)))
        .collect();
    assert_eq!(
        filters.len(),
        4,
        "IoT group, two additional groups, CloudTrail"
    );
    for (id, filter) in &filters {
        let permission_id = filter["DependsOn"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no DependsOn"));
        let permission = resource(&t, permission_id);
        assert_eq!(
            permission["Type"].as_str(),
            Some("AWS::Lambda::Permission"),
            "{id}"
        );
        assert_eq!(
            permission["Condition"], filter["Condition"],
            "{id}: created together"
        );
        let source = serde_norway::to_string(&permission["Properties"]["SourceArn"]).unwrap();
        assert!(source.contains(":log-group:${"), "{id}: {source}");
        let destination = serde_norway::to_string(&filter["Properties"]["DestinationArn"]).unwrap();
        assert!(
            destination.contains("LogStream") && destination.contains("ProcessorFunction"),
            "{id}: {destination}"
        );
    }
    let mapping = &resource(&t, "StreamEventSource")["Properties"];
    assert_eq!(list(&mapping["FunctionResponseTypes"]).len(), 1);
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    for knob in [
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
    ] {
        assert!(!mapping[knob].is_null(), "{knob}");
    }
    // Failed stream batches are kept whole (S3), not as metadata (SQS).
    assert_eq!(
        template_value(&mapping["DestinationConfig"]["OnFailure"]["Destination"]),
        TemplateValue::GetAtt("FailedStreamBatchBucket".into(), "Arn".into())
    );
    let stream_policy =
        serde_norway::to_string(&resource(&t, "ProcessorStreamPolicy")["Properties"]).unwrap();
    for needed in [
        "s3:PutObject",
        "s3:ListBucket",
        "FailedStreamBatchBucket.Arn}/aws/lambda/*",
    ] {
        assert!(stream_policy.contains(needed), "{needed}: {stream_policy}");
    }
    let bucket = &resource(&t, "FailedStreamBatchBucket")["Properties"];
    assert_eq!(
        bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"].as_bool(),
        Some(true)
    );
    assert!(!bucket["BucketEncryption"].is_null());
    assert_eq!(
        resource(&t, "LogStream")["Properties"]["StreamEncryption"]["EncryptionType"].as_str(),
        Some("KMS")
    );
    for id in [
        "LogStream",
        "LogsToStreamRole",
        "ProcessorStreamPolicy",
        "StreamEventSource",
        "FailedStreamBatchBucket",
        "FailedStreamBatchBucketPolicy",
        "FailedStreamRecordsAlarm",
    ] {
        assert_eq!(
            resource(&t, id)["Condition"].as_str(),
            Some("UseKinesis"),
            "{id}"
        );
    }
}

#[test]
fn storage_topic_and_queue_are_encrypted() {
    let t = template();
    for table in ["EntriesTable", "IncidentsTable", "SilencesTable"] {
        let properties = &resource(&t, table)["Properties"];
        assert_eq!(
            properties["SSESpecification"]["SSEEnabled"].as_bool(),
            Some(true),
            "{table}"
        );
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{table}"
        );
        assert_eq!(
            properties["TimeToLiveSpecification"]["AttributeName"].as_str(),
            Some("expiresAt"),
            "{table}"
        );
    }
    assert_eq!(
        template_value(&resource(&t, "AlertTopic")["Properties"]["KmsMasterKeyId"]),
        TemplateValue::Ref("AlertTopicKey".into())
    );
    assert_eq!(
        resource(&t, "FailedBatchQueue")["Properties"]["SqsManagedSseEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_function_environment_sets_every_variable_the_code_reads() {
    let t = template();
    let env: Vec<String> = t
        .function_environment("ProcessorFunction")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for required in vars::REQUIRED {
        assert!(
            env.iter().any(|k| k == required),
            "template does not set {required}"
        );
    }
    for name in &env {
        assert!(
            vars::ALL.contains(&name.as_str()),
            "template sets {name}, which the code never reads"
        );
    }
    // The plain key must never be in the function's environment (readable
    // with lambda:GetFunctionConfiguration): the template names its SSM
    // parameter instead.
    assert!(!env.iter().any(|k| k == vars::REDACTION_KEY));
    assert!(env.iter().any(|k| k == vars::REDACTION_KEY_PARAMETER));
    assert_eq!(
        env.len(),
        vars::ALL.len() - 1,
        "every other setting is visible in the template"
    );
}

#[test]
fn the_built_binary_exists_and_the_timeout_covers_the_retry_budget() {
    let t = template();
    let function = resource(&t, "ProcessorFunction");
    let binary = function["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap();
    let cargo: toml_like::Manifest = toml_like::read(&repo_path("Cargo.toml"));
    assert!(
        cargo.bins.iter().any(|b| b == binary),
        "Cargo.toml has no [[bin]] {binary}"
    );
    assert_eq!(
        function["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    let props = &function["Properties"];
    assert_eq!(props["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(props["Handler"].as_str(), Some("bootstrap"));
    let env = t.function_environment("ProcessorFunction");
    let literal = |name: &str| -> u64 {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| match v {
                TemplateValue::Literal(s) => s.parse().unwrap(),
                other => panic!("{other:?}"),
            })
            .unwrap_or_else(|| panic!("template does not set {name}"))
    };
    let budget_ms = literal(vars::RETRY_BUDGET_MS);
    let reserve_ms = literal(vars::ALERT_TIME_RESERVE_MS);
    let timeout = props["Timeout"].as_u64().unwrap();
    // When the retry budget ends one SDK operation may still be in flight;
    // then the alert step needs its reserve; then the runtime a margin.
    let needed =
        budget_ms + iot_log_monitor::aws::OPERATION_TIMEOUT.as_millis() as u64 + reserve_ms + 2_000;
    assert!(reserve_ms > 0, "the alert step's time check is on in AWS");
    // What a local Runtime API's impossible deadline is read as.
    assert_eq!(
        timeout * 1000,
        iot_log_monitor::pipeline::TEMPLATE_TIMEOUT_MS,
        "the function's Timeout and the timeout a local run assumes"
    );
    assert!(
        timeout * 1000 >= needed,
        "Timeout {timeout}s does not cover the {needed} ms the function may need"
    );
    let invoke = &props["EventInvokeConfig"];
    assert_eq!(invoke["MaximumRetryAttempts"].as_u64(), Some(2));
    assert_eq!(
        template_value(&invoke["DestinationConfig"]["OnFailure"]["Destination"]),
        TemplateValue::GetAtt("FailedBatchQueue".into(), "Arn".into())
    );
}

/// Just enough of Cargo.toml: the binary names.
mod toml_like {
    pub struct Manifest {
        pub bins: Vec<String>,
    }
    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap();
        let mut bins = Vec::new();
        let mut in_bin = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin {
                if let Some(name) = line
                    .strip_prefix("name")
                    .and_then(|r| r.trim().strip_prefix('='))
                {
                    bins.push(name.trim().trim_matches('"').to_owned());
                }
            }
        }
        Manifest { bins }
    }
}

/// A CloudWatch Logs JSON filter pattern, for the subset the template uses:
/// `{ cond || cond && cond … }` with `($.field = "v")` / `!=` and parentheses.
mod filter_pattern {
    #[derive(Debug)]
    pub enum Expr {
        Eq(String, String, bool),
        Or(Box<Expr>, Box<Expr>),
        And(Box<Expr>, Box<Expr>),
    }

    pub fn parse(pattern: &str) -> Expr {
        let inner = pattern
            .trim()
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .expect("a JSON filter pattern");
        let tokens = tokenize(inner);
        let mut pos = 0;
        let expr = or(&tokens, &mut pos);
        assert_eq!(pos, tokens.len(), "unparsed tail in {pattern}");
        expr
    }

    fn tokenize(s: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' => {
                    chars.next();
                }
                '(' | ')' => tokens.push(chars.next().unwrap().to_string()),
                '"' => {
                    chars.next();
                    let text: String = chars.by_ref().take_while(|&c| c != '"').collect();
                    tokens.push(format!("\"{text}"));
                }
                _ => {
                    let mut word = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == ' ' || c == '(' || c == ')' || c == '"' {
                            break;
                        }
                        word.push(c);
                        chars.next();
                    }
                    tokens.push(word);
                }
            }
        }
        tokens
    }

    fn or(t: &[String], pos: &mut usize) -> Expr {
        let mut left = and(t, pos);
        while t.get(*pos).map(String::as_str) == Some("||") {
            *pos += 1;
            left = Expr::Or(Box::new(left), Box::new(and(t, pos)));
        }
        left
    }

    fn and(t: &[String], pos: &mut usize) -> Expr {
        let mut left = atom(t, pos);
        while t.get(*pos).map(String::as_str) == Some("&&") {
            *pos += 1;
            left = Expr::And(Box::new(left), Box::new(atom(t, pos)));
        }
        left
    }

    fn atom(t: &[String], pos: &mut usize) -> Expr {
        if t[*pos] == "(" {
            *pos += 1;
            let e = or(t, pos);
            assert_eq!(t[*pos], ")");
            *pos += 1;
            return e;
        }
        let field = t[*pos]
            .strip_prefix("$.")
            .expect("a $.field selector")
            .to_owned();
        let op = t[*pos + 1].as_str();
        let value = t[*pos + 2]
            .strip_prefix('"')
            .expect("a quoted value")
            .to_owned();
        *pos += 3;
        match op {
            "=" => Expr::Eq(field, value, true),
            "!=" => Expr::Eq(field, value, false),
            other => panic!("operator {other} is not in this evaluator's subset"),
        }
    }

    /// Whether CloudWatch Logs would deliver `message`. Non-JSON never matches a JSON pattern.
    pub fn matches(expr: &Expr, message: &str) -> bool {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(message) else {
            return false;
        };
        eval(expr, &json)
    }

    fn eval(expr: &Expr, json: &serde_json::Value) -> bool {
        match expr {
            Expr::Eq(field, value, equal) => {
                (json.get(field).and_then(|v| v.as_str()) == Some(value)) == *equal
            }
            Expr::Or(a, b) => eval(a, json) || eval(b, json),
            Expr::And(a, b) => eval(a, json) && eval(b, json),
        }
    }
}

/// The evaluator above is this test's own; it is held to cases the
/// CloudWatch Logs documentation states ("Using filter patterns to match
/// terms in JSON log events": `{ $.eventType = "UpdateTrail" }`, `||`, `&&`
/// with parentheses; patterns are case-sensitive; JSON patterns match JSON
/// log events only), so the check below does not rest on its word alone.
#[test]
fn the_filter_evaluator_agrees_with_documented_cloudwatch_logs_behaviour() {
    let update_trail = filter_pattern::parse(r#"{ $.eventType = "UpdateTrail" }"#);
    let cases = [
        (
            &update_trail,
            r#"{"eventType":"UpdateTrail","eventSource":"cloudtrail.amazonaws.com"}"#,
            true,
        ),
        (&update_trail, r#"{"eventType":"updatetrail"}"#, false),
        (&update_trail, r#"{"eventName":"UpdateTrail"}"#, false),
        (&update_trail, "eventType UpdateTrail (not JSON)", false),
    ];
    for (expr, line, expected) in cases {
        assert_eq!(filter_pattern::matches(expr, line), expected, "{line}");
    }
    let either = filter_pattern::parse(r#"{ ($.status = "Failure") || ($.logLevel = "ERROR") }"#);
    let both = filter_pattern::parse(r#"{ ($.status = "Failure") && ($.logLevel = "ERROR") }"#);
    for (line, any, all) in [
        (r#"{"status":"Failure","logLevel":"ERROR"}"#, true, true),
        (r#"{"status":"Failure","logLevel":"INFO"}"#, true, false),
        (r#"{"status":"Success","logLevel":"ERROR"}"#, true, false),
        (r#"{"status":"Success","logLevel":"INFO"}"#, false, false),
    ] {
        assert_eq!(filter_pattern::matches(&either, line), any, "|| {line}");
        assert_eq!(filter_pattern::matches(&both, line), all, "&& {line}");
    }
}

#[test]
fn the_default_filter_pattern_passes_every_incident_and_stops_success_traffic() {
    use iot_log_monitor::model::classify::classify;
    use iot_log_monitor::model::entry::parse_entry;

    let pattern = template().parameter_default("FilterPattern").unwrap();
    let expr = filter_pattern::parse(&pattern);
    let mut lines: Vec<String> = Vec::new();
    let seed: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(repo_path("tests/fixtures/seed-examples.json")).unwrap(),
    )
    .unwrap();
    lines.extend(seed.iter().map(|f| f["entry"].to_string()));
    for entry in std::fs::read_dir(repo_path("events/lines"))
        .unwrap()
        .flatten()
        // CloudTrail records arrive on their own log group, through their own pattern.
        .filter(|e| !e.file_name().to_string_lossy().starts_with("cloudtrail-"))
    {
        lines.extend(
            std::fs::read_to_string(entry.path())
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
    }
    let (mut passed, mut stopped) = (0, 0);
    for line in &lines {
        let Ok(entry) = parse_entry(line) else {
            continue;
        };
        let incident = classify(&entry).is_some();
        assert_eq!(
            filter_pattern::matches(&expr, line),
            incident,
            "pattern and classification disagree on {line}"
        );
        if incident {
            passed += 1;
        } else {
            stopped += 1;
        }
    }
    assert!(
        passed >= 40 && stopped >= 30,
        "passed {passed}, stopped {stopped}"
    );
    assert!(
        !filter_pattern::matches(&expr, "2026-11-22 legacy text line [ERROR]"),
        "JSON patterns never match text"
    );
}

/// Issue 20 (1): a dashboard is global, so its name carries the region;
/// the same stack name in a second region gets its own.
#[test]
fn the_dashboard_name_carries_the_region() {
    let t = template();
    let dashboards: Vec<&Value> = t
        .resources()
        .filter(|(_, kind, _)| *kind == "AWS::CloudWatch::Dashboard")
        .map(|(_, _, props)| &props["DashboardName"])
        .collect();
    assert!(!dashboards.is_empty());
    for name in dashboards {
        // `!Sub "…"`, as serde_norway reads a tagged scalar.
        let text = format!("{name:?}");
        assert!(
            text.contains("Sub")
                && text.contains("${AWS::StackName}")
                && text.contains("${AWS::Region}"),
            "{text}"
        );
    }
}

/// Issue 20 (8): the IoT logging role writes to the IoT log group only, and
/// only AWS IoT acting for this account may assume it.
#[test]
fn the_iot_logging_role_is_scoped_and_guarded_against_confused_deputies() {
    let t = template();
    let role = &resource(&t, "IotLoggingRole")["Properties"];
    for statement in list(&role["AssumeRolePolicyDocument"]["Statement"]) {
        let condition = format!("{:?}", statement["Condition"]);
        assert!(condition.contains("aws:SourceAccount"), "{condition}");
        assert!(condition.contains("aws:SourceArn"), "{condition}");
    }
    for policy in list(&role["Policies"]) {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            for target in list(&statement["Resource"]) {
                let target = format!("{target:?}");
                assert!(target.contains("log-group:AWSIotLogsV2"), "{target}");
            }
        }
    }
}

/// Issue 20 (7): a batch that cannot be decoded is counted with no log
/// group to name (`LogGroup=unknown`), so the dashboard's decode-error line
/// reads the metric without dimensions, which every record also carries.
#[test]
fn the_dashboard_counts_decode_errors_of_every_log_group() {
    let t = template();
    let body = format!(
        "{:?}",
        resource(&t, "Dashboard")["Properties"]["DashboardBody"]
    );
    assert!(
        body.contains(r#"[\"IotLogMonitor\",\"DecodeErrors\",{"#),
        "DecodeErrors without a LogGroup dimension: {body}"
    );
    assert!(!body.contains(r#"\"DecodeErrors\",\".\",\".\""#), "{body}");
}

/// Issue 20 (11): alarms carry no message attributes, so they go to a
/// topic of their own that no attribute filter can hide them on.
#[test]
fn alarms_publish_to_the_operations_topic() {
    let t = template();
    let mut alarms = 0;
    for (id, kind, props) in t.resources() {
        if kind == "AWS::CloudWatch::Alarm" {
            alarms += 1;
            // Issue 30 (3): told when it fires and when it is over.
            for actions in ["AlarmActions", "OKActions"] {
                let actions = list(&props[actions]);
                assert!(!actions.is_empty(), "{id}");
                for action in actions {
                    assert_eq!(
                        template_value(action),
                        TemplateValue::Ref("OperationsTopic".into()),
                        "{id}"
                    );
                }
            }
        }
    }
    assert!(alarms >= 3);
    let topic = &resource(&t, "OperationsTopic")["Properties"];
    assert_eq!(
        template_value(&topic["KmsMasterKeyId"]),
        TemplateValue::Ref("AlertTopicKey".into()),
        "encrypted with the key CloudWatch alarms may use"
    );
}

/// Issue 20 (2): turning IoT logging on from the stack creates the group it
/// subscribes to (it does not exist before IoT's first entry), and refuses
/// a group name IoT v2 logging never writes to.
#[test]
fn iot_logging_from_the_stack_has_its_log_group() {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let create = format!("{:?}", template["Conditions"]["ShouldCreateLogGroup"]);
    assert!(
        create.contains("EnableIotLogging") && create.contains("CreateLogGroup"),
        "{create}"
    );
    let rule = format!("{:?}", template["Rules"]["IotLoggingWritesToAWSIotLogsV2"]);
    assert!(
        rule.contains("EnableIotLogging") && rule.contains("AWSIotLogsV2"),
        "{rule}"
    );
}

/// Issue 20 (6): the message broker and Device Shadow metrics carry a
/// `Protocol` dimension, and a CloudWatch SEARCH without it matches only
/// metrics with no dimension at all: each line searches its own schema.
#[test]
fn the_iot_baseline_widgets_search_the_protocol_schema() {
    let t = template();
    let body = format!(
        "{:?}",
        resource(&t, "Dashboard")["Properties"]["DashboardBody"]
    );
    for metric in [
        "PublishIn.Success",
        "PublishOut.Success",
        "Subscribe.Success",
        "Ping.Success",
        "Connect.Success",
        "GetThingShadow.Accepted",
        "UpdateThingShadow.Accepted",
        "DeleteThingShadow.Accepted",
    ] {
        let line = format!(r#"{{AWS/IoT,Protocol}} MetricName=\\\"{metric}\\\""#);
        assert!(body.contains(&line), "{metric}: {line} not in {body}");
    }
}

/// Issue 20 (5): a group subscribed twice would fail half-way through a
/// deploy; template rules refuse it before anything is created.
#[test]
fn no_log_group_is_subscribed_twice() {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let rules = format!("{:?}", template["Rules"]);
    for pair in [
        ("AdditionalLogGroups", "LogGroupName"),
        ("CloudTrailLogGroupName", "LogGroupName"),
        ("AdditionalLogGroups", "CloudTrailLogGroupName"),
    ] {
        let (a, b) = pair;
        let both = rules
            .split("Assert")
            .any(|assertion| assertion.contains(a) && assertion.contains(b));
        assert!(both, "no rule compares {a} with {b}: {rules}");
    }
}

/// Issue 20 (9): the redaction key is never in the template or the
/// function's environment: the template names an SSM SecureString, the
/// role may read exactly that parameter, and redaction without one is
/// refused at deploy time.
#[test]
fn the_redaction_key_comes_from_ssm_and_the_role_reads_only_it() {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    assert!(
        template["Parameters"]["RedactionKey"].is_null(),
        "no key as a parameter"
    );
    let rule = format!("{:?}", template["Rules"]["RedactionNeedsAKey"]);
    assert!(
        rule.contains("RedactFields") && rule.contains("RedactionKeyParameter"),
        "{rule}"
    );
    let statements = format!(
        "{:?}",
        template["Resources"]["ProcessorRole"]["Properties"]["Policies"]
    );
    let read = statements
        .split("Sid")
        .find(|s| s.contains("ReadRedactionKey"))
        .expect("a statement for the key");
    assert!(
        read.contains("ssm:GetParameter") && !read.contains("ssm:*"),
        "{read}"
    );
    assert!(
        read.contains("parameter${RedactionKeyParameter}"),
        "exactly the named parameter: {read}"
    );
    assert!(
        statements.contains("HasRedactionKeyParameter"),
        "only when there is one"
    );
}

/// The incident clock: a schedule in the template invokes the function, and
/// the function reads the incidents it sweeps through the `sweep` index
/// (the code's name, keys and projection), and the legacy `watched` one.
#[test]
fn a_schedule_invokes_the_function_and_the_sweep_queries_an_index() {
    let t = template();
    let events = &resource(&t, "ProcessorFunction")["Properties"]["Events"];
    let schedules: Vec<&Value> = events
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(_, e)| e)
        .filter(|e| e["Type"].as_str() == Some("Schedule"))
        .collect();
    assert_eq!(schedules.len(), 1, "{events:?}");
    assert_eq!(
        schedules[0]["Properties"]["Schedule"].as_str(),
        Some("rate(1 minute)")
    );
    assert!(
        schedules[0]["Properties"]["Input"].is_null(),
        "no input: the function gets EventBridge's scheduled event"
    );
    let incidents = &resource(&t, "IncidentsTable")["Properties"];
    use iot_log_monitor::aws::incident_item::{
        LEGACY_WATCHED_INDEX, SWEEP_INDEX, WATCHED_PROJECTION,
    };
    let index = |name: &str| {
        list(&incidents["GlobalSecondaryIndexes"])
            .into_iter()
            .find(|i| i["IndexName"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("the {name} index"))
    };
    let keys = |index: &Value| -> Vec<String> {
        list(&index["KeySchema"])
            .iter()
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
            .collect()
    };
    let sweep = index(SWEEP_INDEX);
    assert_eq!(keys(sweep), ["sweepShard", "incidentKey"]);
    assert_eq!(
        sweep["Projection"]["ProjectionType"].as_str(),
        Some("INCLUDE")
    );
    let projected: Vec<&str> = list(&sweep["Projection"]["NonKeyAttributes"])
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        projected, WATCHED_PROJECTION,
        "the index holds what the code reads of it"
    );
    // Unchanged (CloudFormation cannot change an index in place), read for
    // the items of earlier versions.
    let legacy = index(LEGACY_WATCHED_INDEX);
    assert_eq!(keys(legacy), ["sweepKey", "lastActivityMs"]);
    assert_eq!(legacy["Projection"]["ProjectionType"].as_str(), Some("ALL"));
    let env = t.function_environment("ProcessorFunction");
    for (name, parameter) in [
        ("RESOLVE_AFTER_SECONDS", "ResolveAfterSeconds"),
        ("REPEAT_INTERVAL_SECONDS", "RepeatIntervalSeconds"),
        ("REOPEN_WINDOW_SECONDS", "ReopenWindowSeconds"),
        ("FLAP_REOPENINGS", "FlapReopenings"),
        ("FLAP_RESOLVE_AFTER_SECONDS", "FlapResolveAfterSeconds"),
        ("STORM_BUDGET", "StormBudget"),
    ] {
        assert!(
            env.contains(&(name.to_owned(), TemplateValue::Ref(parameter.into()))),
            "{name}"
        );
    }
}

/// Issue 27 (3): the function reads the silences in force through the
/// index the code queries (its name and key attributes are the code's),
/// and its role can read the silences no other way: no Scan of their
/// history. Ignored silences (unreadable) raise an alarm.
#[test]
fn silences_are_read_through_their_index_and_ignoring_them_raises_an_alarm() {
    use iot_log_monitor::aws::silences::{BY_END, LIST_KEY};
    let t = template();
    let table = &resource(&t, "SilencesTable")["Properties"];
    let index = list(&table["GlobalSecondaryIndexes"])
        .into_iter()
        .find(|i| i["IndexName"].as_str() == Some(BY_END))
        .unwrap_or_else(|| panic!("the {BY_END} index"));
    let keys: Vec<(&str, &str)> = list(&index["KeySchema"])
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(LIST_KEY, "HASH"), ("endsMs", "RANGE")]);
    assert_eq!(
        index["Projection"]["ProjectionType"].as_str(),
        Some("ALL"),
        "the read needs every matcher"
    );
    let types: Vec<(&str, &str)> = list(&table["AttributeDefinitions"])
        .iter()
        .map(|d| {
            (
                d["AttributeName"].as_str().unwrap(),
                d["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(types.contains(&(LIST_KEY, "S")), "{types:?}");
    assert!(types.contains(&("endsMs", "N")), "{types:?}");

    // Every grant on the silences table: Query on the index, nothing else.
    let role = resource(&t, "ProcessorRole");
    let mut grants = Vec::new();
    for policy in list(&role["Properties"]["Policies"]) {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            for target in list(&statement["Resource"]) {
                let names_table = match (template_value(target), target) {
                    (TemplateValue::GetAtt(id, _), _) => id == "SilencesTable",
                    (_, Value::Tagged(sub)) => sub
                        .value
                        .as_str()
                        .is_some_and(|s| s.starts_with("${SilencesTable.")),
                    _ => false,
                };
                if names_table {
                    let actions: Vec<&str> = list(&statement["Action"])
                        .iter()
                        .map(|a| a.as_str().unwrap())
                        .collect();
                    grants.push((actions, format!("{target:?}")));
                }
            }
        }
    }
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].0, ["dynamodb:Query"]);
    assert!(
        grants[0]
            .1
            .contains(&format!("${{SilencesTable.Arn}}/index/{BY_END}")),
        "{grants:?}"
    );

    let alarm = t
        .resources()
        .find(|(_, kind, props)| {
            *kind == "AWS::CloudWatch::Alarm"
                && props["MetricName"].as_str() == Some("SilenceReadErrors")
        })
        .map(|(_, _, props)| props)
        .expect("an alarm on SilenceReadErrors");
    assert_eq!(alarm["Namespace"].as_str(), Some("IotLogMonitor"));
    assert_eq!(alarm["Statistic"].as_str(), Some("Sum"));
    assert_eq!(
        (
            alarm["Threshold"].as_u64(),
            alarm["ComparisonOperator"].as_str()
        ),
        (Some(1), Some("GreaterThanOrEqualToThreshold")),
        "one unread read is one too many"
    );
    assert!(
        alarm["Dimensions"].is_null(),
        "the metric's series without a dimension: every log group, and sweeps"
    );
}

/// Issue 20: the stack watches IoT logging itself and the IoT quotas
/// operators hit, on the operations topic (where subscribers expect the
/// stack's own alarms), and the function's name is left to CloudFormation
/// so a long stack name cannot push it past Lambda's 64 characters.
#[test]
fn the_watchers_are_watched_and_the_function_name_cannot_overflow() {
    let t = template();
    let alarms: Vec<(&str, &Value)> = t
        .resources()
        .filter(|(_, kind, _)| *kind == "AWS::CloudWatch::Alarm")
        .map(|(id, _, props)| (id, props))
        .collect();
    let watched = |metric: &str| {
        alarms.iter().find(|(_, props)| {
            props["MetricName"].as_str() == Some(metric)
                || list(&props["Metrics"])
                    .iter()
                    .any(|m| m["Expression"].as_str().is_some_and(|e| e.contains(metric)))
        })
    };
    for metric in [
        "IncomingLogEvents",
        "NumLogEventsFailedToPublishThrottled",
        "NumLogBatchesFailedToPublishThrottled",
        "Connect.ClientIDThrottle",
        "Connect.Throttle",
        "PublishIn.Throttle",
        "Subscribe.Throttle",
        "RuleMessageThrottled",
        "Errors",
        "Throttles",
        "ApproximateNumberOfMessagesVisible",
        "SilenceReadErrors",
    ] {
        let (id, props) = watched(metric).unwrap_or_else(|| panic!("no alarm on {metric}"));
        assert_eq!(
            list(&props["AlarmActions"])
                .into_iter()
                .map(template_value)
                .collect::<Vec<_>>(),
            [TemplateValue::Ref("OperationsTopic".into())],
            "{id}"
        );
    }
    let (_, quiet) = watched("IncomingLogEvents").unwrap();
    assert_eq!(
        quiet["TreatMissingData"].as_str(),
        Some("breaching"),
        "no logs at all is silence too"
    );
    assert_eq!(
        resource(&t, "IotLogsQuietAlarm")["Condition"].as_str(),
        Some("HasQuietLogAlarm")
    );
    // Alarm metrics the AWS/IoT namespace dimensions by protocol or rule are summed across them.
    let (_, connect) = watched("Connect.Throttle").unwrap();
    let query = list(&connect["Metrics"])[0]["Expression"].as_str().unwrap();
    assert!(query.contains("SCHEMA(\"AWS/IoT\", Protocol)"), "{query}");
    assert!(
        resource(&t, "ProcessorFunction")["Properties"]["FunctionName"].is_null(),
        "a generated function name"
    );
}

/// Issue 20 (4): incident categories the function would refuse at start-up
/// (one not stored) are refused at deploy time, and the categories the
/// template allows are the ones the function knows.
#[test]
fn incident_categories_must_be_stored_at_deploy_time() {
    let text = std::fs::read_to_string(repo_path("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let rule = format!("{:?}", template["Rules"]["IncidentCategoriesAreStored"]);
    assert!(
        rule.contains("EachMemberIn")
            && rule.contains("AlertCategories")
            && rule.contains("StoreCategories"),
        "{rule}"
    );
    let known: Vec<String> = iot_log_monitor::model::category::Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .chain(["none".to_owned()])
        .collect();
    for parameter in ["StoreCategories", "AlertCategories"] {
        let allowed: Vec<String> = list(&template["Parameters"][parameter]["AllowedValues"])
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(allowed, known, "{parameter}");
    }
    // The function gets them as the comma-separated text it parses.
    let t = self::template();
    let env = t.function_environment("ProcessorFunction");
    assert!(env.contains(&(
        "ALERT_CATEGORIES".to_owned(),
        TemplateValue::JoinRef(",".into(), "AlertCategories".into())
    )));
}

/// Issue 28 (4): the entries table's indexes carry the keys and the
/// attributes `src/store/indexes.rs` names (what the CLI's queries read
/// from every row), not whole entries: each index entry is written with
/// every stored entry. The CLI's query plans name these indexes and keys.
#[test]
fn the_entry_indexes_carry_only_what_the_queries_read() {
    use iot_log_monitor::store::indexes::{ENTRY_INDEXES, INDEX_ATTRIBUTES, INDEX_SORT_KEY};
    use iot_log_monitor::store::query::{plan, ListFilter};
    let t = template();
    let indexes = list(&resource(&t, "EntriesTable")["Properties"]["GlobalSecondaryIndexes"]);
    assert_eq!(indexes.len(), ENTRY_INDEXES.len());
    for (index, expected) in indexes.iter().zip(ENTRY_INDEXES) {
        assert_eq!(index["IndexName"].as_str(), Some(expected.name));
        let keys: Vec<(&str, &str)> = list(&index["KeySchema"])
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap(),
                    k["KeyType"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [(expected.partition_key, "HASH"), (INDEX_SORT_KEY, "RANGE")]
        );
        assert_eq!(
            index["Projection"]["ProjectionType"].as_str(),
            Some("INCLUDE"),
            "{}: whole entries (ALL) cost twice the write units",
            expected.name
        );
        let carried: Vec<&str> = list(&index["Projection"]["NonKeyAttributes"])
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(carried, INDEX_ATTRIBUTES, "{}", expected.name);
    }
    for filter in [
        ListFilter::default(),
        ListFilter {
            rule: Some("r".into()),
            ..ListFilter::default()
        },
        ListFilter {
            client: Some("c".into()),
            ..ListFilter::default()
        },
    ] {
        for p in plan(&filter) {
            assert!(
                ENTRY_INDEXES
                    .iter()
                    .any(|i| (i.name, i.partition_key) == (p.index, p.partition_attribute)),
                "{} on {}",
                p.index,
                p.partition_attribute
            );
        }
    }
}

/// Issue 28 (4): every IotLogMonitor metric the dashboard and the alarms
/// read is one the function publishes, under a dimension set it publishes
/// it with (one set: none): a widget line or an alarm on a series nobody
/// writes stays empty without a word.
#[test]
fn the_dashboard_and_alarms_read_metrics_as_the_function_publishes_them() {
    use std::collections::BTreeSet;

    use iot_log_monitor::metrics::emf_record;
    use iot_log_monitor::pipeline::{Summary, SWEEP};
    // (metric, dimension names) of a batch's record and a sweep's.
    let mut published: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    for (message_type, failed) in [
        (Summary::default().message_type, 0),
        (SWEEP, 0),
        (Summary::default().message_type, 1),
        (SWEEP, 1),
    ] {
        let summary = Summary {
            message_type,
            failed,
            ..Summary::default()
        };
        let record: serde_json::Value =
            serde_json::from_str(&emf_record("IotLogMonitor", &summary, 0)).unwrap();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "IotLogMonitor");
        for dimensions in directive["Dimensions"].as_array().unwrap() {
            let dimensions: Vec<String> = dimensions
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                published.insert((name, dimensions.clone()));
            }
        }
    }
    let t = template();
    let mut read: Vec<(String, String, Vec<String>)> = Vec::new();
    // The dashboard: `!Sub [body, variables]`; `"."` repeats the line above.
    let body = match &resource(&t, "Dashboard")["Properties"]["DashboardBody"] {
        Value::Tagged(sub) => sub.value.as_sequence().unwrap()[0].as_str().unwrap(),
        other => panic!("DashboardBody is not a !Sub: {other:?}"),
    };
    let mut plain = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("${") {
        let end = at + rest[at..].find('}').unwrap();
        plain.push_str(&rest[..at]);
        plain.push('X');
        rest = &rest[end + 1..];
    }
    plain.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&plain).unwrap();
    for widget in dashboard["widgets"].as_array().unwrap() {
        let mut above: Vec<serde_json::Value> = Vec::new();
        for line in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let parts: Vec<serde_json::Value> = line
                .as_array()
                .unwrap()
                .iter()
                .take_while(|p| p.is_string())
                .enumerate()
                .map(|(i, p)| match (p.as_str(), above.get(i)) {
                    (Some("."), Some(same)) => same.clone(),
                    _ => p.clone(),
                })
                .collect();
            if parts.is_empty() {
                continue; // a search expression
            }
            let text = |i: usize| parts[i].as_str().unwrap().to_owned();
            let dimensions = (2..parts.len()).step_by(2).map(text).collect();
            read.push((text(0), text(1), dimensions));
            above = parts;
        }
    }
    let from_dashboard = read.len();
    for (id, kind, props) in t.resources() {
        if kind == "AWS::CloudWatch::Alarm" {
            if let Some(namespace) = props["Namespace"].as_str() {
                let dimensions = list(&props["Dimensions"])
                    .iter()
                    .map(|d| d["Name"].as_str().unwrap().to_owned())
                    .collect();
                let name = props["MetricName"].as_str().unwrap_or(id).to_owned();
                read.push((namespace.to_owned(), name, dimensions));
            }
        }
    }
    let ours: Vec<_> = read
        .into_iter()
        .filter(|(namespace, _, _)| namespace == "IotLogMonitor")
        .collect();
    assert!(
        from_dashboard >= 10 && ours.len() >= 14,
        "found the lines: {ours:?}"
    );
    for (_, name, dimensions) in ours {
        assert!(
            published.contains(&(name.clone(), dimensions.clone())),
            "{name} with dimensions {dimensions:?} is not published: {published:?}"
        );
    }
}

/// What holds data (or keeps account-wide state), pinned: logical id, type,
/// key schema (tables: the table's, then each index's, by name). A change
/// to any of these replaces or drops the resource on an update, orphaning
/// what it holds, so it must come with a migration note in the README's
/// "What changed": the last column, which the README must contain.
const STATEFUL: &[(&str, &str, &str, &str)] = &[
    (
        "EntriesTable",
        "AWS::DynamoDB::Table",
        "traceId HASH, entryKey RANGE; byCategory: categoryDay HASH, timeMs RANGE; byClient: clientDay HASH, timeMs RANGE; byRule: ruleDay HASH, timeMs RANGE",
        "`IncidentsTable` (the entries, partition key `traceId`) is now\n  `EntriesTable`",
    ),
    (
        "IncidentsTable",
        "AWS::DynamoDB::Table",
        "incidentKey HASH; sweep: sweepShard HASH, incidentKey RANGE; watched: sweepKey HASH, lastActivityMs RANGE",
        "New index **`sweep`**",
    ),
    (
        "SilencesTable",
        "AWS::DynamoDB::Table",
        "silenceId HASH; byEnd: listKey HASH, endsMs RANGE",
        "`SilencesTable` (partition key `silenceId`, index\n  `byEnd`) is new",
    ),
    ("AlertTopicKey", "AWS::KMS::Key", "", ""),
    ("FailedBatchQueue", "AWS::SQS::Queue", "", ""),
    (
        "ProcessorLogGroup",
        "AWS::Logs::LogGroup",
        "",
        "`ProcessorLogGroup` has no fixed name",
    ),
    ("IotLogGroup", "AWS::Logs::LogGroup", "", ""),
    ("FailedStreamBatchBucket", "AWS::S3::Bucket", "", ""),
    ("IotLoggingRole", "AWS::IAM::Role", "", ""),
    (
        "IotLogging",
        "AWS::IoT::Logging",
        "",
        "deleting the stack no longer switches AWS IoT logging off",
    ),
];

/// Issue 30 (1, 2): every resource that holds data, and AWS IoT logging
/// (whose deletion switches logging off for the whole account and Region),
/// is kept when the stack is deleted or the resource replaced; every
/// table, queue, key, log group and bucket is such a resource; and none of
/// them changes its logical id, type or key schema without a migration
/// note in the changelog.
#[test]
fn what_holds_data_is_retained_pinned_and_changed_only_with_a_migration_note() {
    let t = template();
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let changelog = readme
        .split("### What changed (unreleased)")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README's changelog");
    let schema = |props: &Value| -> String {
        let keys = |ks: &Value| -> String {
            list(ks)
                .iter()
                .map(|k| {
                    format!(
                        "{} {}",
                        k["AttributeName"].as_str().unwrap(),
                        k["KeyType"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !props["KeySchema"].is_null() {
            parts.push(keys(&props["KeySchema"]));
        }
        let mut indexes: Vec<String> = list(&props["GlobalSecondaryIndexes"])
            .iter()
            .map(|i| {
                format!(
                    "{}: {}",
                    i["IndexName"].as_str().unwrap(),
                    keys(&i["KeySchema"])
                )
            })
            .collect();
        indexes.sort();
        parts.extend(indexes);
        parts.join("; ")
    };
    const HOLDS_DATA: &[&str] = &[
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::IoT::Logging",
    ];
    let mut found: Vec<(String, String, String)> = Vec::new();
    for (id, kind, props) in t.resources() {
        let body = resource(&t, id);
        let retained = body["DeletionPolicy"].as_str() == Some("Retain");
        if retained || HOLDS_DATA.contains(&kind) {
            assert!(retained, "{id} ({kind}) holds data but is not retained");
            assert_eq!(
                body["UpdateReplacePolicy"].as_str(),
                Some("Retain"),
                "{id}: a replacement would delete it"
            );
            found.push((id.to_owned(), kind.to_owned(), schema(props)));
        }
    }
    let pinned: Vec<(String, String, String)> = STATEFUL
        .iter()
        .map(|(id, kind, keys, _)| (id.to_string(), kind.to_string(), keys.to_string()))
        .collect();
    found.sort();
    let mut expected = pinned.clone();
    expected.sort();
    assert_eq!(
        found, expected,
        "a resource that holds data changed its logical id, type or key schema: an update \
         replaces it and orphans its data. Write a migration note in the README's \"What \
         changed\" and pin the change in STATEFUL with that note"
    );
    for (id, _, _, note) in STATEFUL {
        assert!(
            changelog.contains(note),
            "{id}: the README's changelog lacks its migration note {note:?}"
        );
    }
}

/// Issue 30 (7): a failed sweep is told apart from a failed log batch. The
/// function counts them apart (a failed sweep's record says `SweepsFailed`,
/// a failed batch's `BatchesFailed`, a sweep that ran `SweepsCompleted`),
/// and the clock has alarms of its own: failing, and stopped (no sweep
/// completed, missing data counting as none).
#[test]
fn a_stopped_or_failing_clock_has_alarms_of_its_own() {
    use iot_log_monitor::metrics::emf_record;
    use iot_log_monitor::pipeline::{Summary, SWEEP};
    let names = |message_type, failed| -> Vec<String> {
        let summary = Summary {
            message_type,
            failed,
            ..Summary::default()
        };
        let record: serde_json::Value =
            serde_json::from_str(&emf_record("IotLogMonitor", &summary, 0)).unwrap();
        record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .filter(|n| n.ends_with("Failed") || n.starts_with("Sweeps"))
            .filter(|n| n != "NotificationsFailed")
            .collect()
    };
    assert_eq!(names(SWEEP, 0), ["SweepsCompleted"]);
    assert_eq!(names(SWEEP, 1), ["SweepsFailed"]);
    assert_eq!(names("", 1), ["BatchesFailed"]);
    assert!(names("", 0).is_empty());
    let t = template();
    let alarm = |id: &str| &resource(&t, id)["Properties"];
    let failing = alarm("SweepsFailingAlarm");
    assert_eq!(failing["MetricName"].as_str(), Some("SweepsFailed"));
    let stopped = alarm("SweepsStoppedAlarm");
    assert_eq!(stopped["MetricName"].as_str(), Some("SweepsCompleted"));
    assert_eq!(
        stopped["ComparisonOperator"].as_str(),
        Some("LessThanThreshold")
    );
    assert_eq!(stopped["TreatMissingData"].as_str(), Some("breaching"));
}

/// Issue 30 (5, 6): the knobs operators of log forwarders expect reach the
/// resources (memory, reserved concurrency, log retention, every role's
/// path and permissions boundary, X-Ray off by default), the platform's
/// REPORT lines are kept (`SystemLogLevel: INFO`), and `samconfig.toml`
/// lets `sam deploy` run without flags, tagging the stack (so every
/// resource that takes tags) with the project's version.
#[test]
fn the_operators_knobs_reach_the_resources_and_the_stack_is_tagged_with_the_version() {
    let t = template();
    let function = &resource(&t, "ProcessorFunction")["Properties"];
    assert_eq!(
        template_value(&function["MemorySize"]),
        TemplateValue::Ref("FunctionMemorySize".into())
    );
    let reserved = format!("{:?}", function["ReservedConcurrentExecutions"]);
    assert!(
        reserved.contains("HasReservedConcurrency") && reserved.contains("ReservedConcurrency"),
        "{reserved}"
    );
    assert!(format!("{:?}", function["Tracing"]).contains("UseTracing"));
    assert_eq!(
        t.parameter_default("EnableTracing").as_deref(),
        Some("false")
    );
    assert_eq!(
        t.parameter_default("ReservedConcurrency").as_deref(),
        Some("0")
    );
    assert_eq!(
        function["LoggingConfig"]["SystemLogLevel"].as_str(),
        Some("INFO"),
        "WARN would drop Lambda's START, END and REPORT lines"
    );
    let mut roles = 0;
    for (id, kind, props) in t.resources() {
        if kind == "AWS::IAM::Role" {
            roles += 1;
            assert_eq!(
                template_value(&props["Path"]),
                TemplateValue::Ref("IamPath".into()),
                "{id}"
            );
            let boundary = format!("{:?}", props["PermissionsBoundary"]);
            assert!(
                boundary.contains("PermissionsBoundaryArn"),
                "{id}: {boundary}"
            );
        }
        if kind == "AWS::Logs::LogGroup" {
            assert_eq!(
                template_value(&props["RetentionInDays"]),
                TemplateValue::Ref("LogRetentionDays".into()),
                "{id}"
            );
        }
    }
    assert_eq!(roles, 3);
    let samconfig = std::fs::read_to_string(repo_path("samconfig.toml")).unwrap();
    for line in [
        "capabilities = \"CAPABILITY_IAM CAPABILITY_AUTO_EXPAND\"",
        "resolve_s3 = true",
        &format!(
            "tags = \"project=\\\"iot-log-monitor\\\" version=\\\"{}\\\"\"",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(samconfig.contains(line), "samconfig.toml lacks {line}");
    }
}

/// Issue 30 (3): every failure path has an alarm, on the metric that says
/// so: the tables' throttling (indexes included), asynchronous events
/// dropped, waiting or not delivered to the failure queue, the stream
/// falling behind, failed batches nearing the queue's 14 days, and
/// notifications refused. (Each notifies when it fires and when it is
/// over: `alarms_publish_to_the_operations_topic`.)
#[test]
fn every_failure_path_has_an_alarm() {
    let t = template();
    let alarm = |id: &str| &resource(&t, id)["Properties"];
    for (id, table) in [
        ("EntriesTableThrottledAlarm", "EntriesTable"),
        ("IncidentsTableThrottledAlarm", "IncidentsTable"),
        ("SilencesTableThrottledAlarm", "SilencesTable"),
    ] {
        let query = format!("{:?}", alarm(id)["Metrics"]);
        assert!(
            query.contains("SUM(ThrottledRequests)")
                && query.contains("AWS/DynamoDB")
                && query.contains(&format!("TableName = '${{{table}}}'")),
            "{id}: {query}"
        );
    }
    for (id, namespace, metric, threshold) in [
        (
            "AsyncEventsDroppedAlarm",
            "AWS/Lambda",
            "AsyncEventsDropped",
            1,
        ),
        ("AsyncEventAgeAlarm", "AWS/Lambda", "AsyncEventAge", 300_000),
        (
            "DestinationDeliveryFailuresAlarm",
            "AWS/Lambda",
            "DestinationDeliveryFailures",
            1,
        ),
        (
            "StreamIteratorAgeAlarm",
            "AWS/Lambda",
            "IteratorAge",
            300_000,
        ),
        (
            "FailedBatchesExpiringAlarm",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            604_800,
        ),
        (
            "NotificationsFailedAlarm",
            "IotLogMonitor",
            "NotificationsFailed",
            1,
        ),
    ] {
        let props = alarm(id);
        assert_eq!(props["Namespace"].as_str(), Some(namespace), "{id}");
        assert_eq!(props["MetricName"].as_str(), Some(metric), "{id}");
        assert_eq!(props["Threshold"].as_u64(), Some(threshold), "{id}");
    }
    // 14 days of retention on the queue the expiry alarm watches at 7.
    let queue = &resource(&t, "FailedBatchQueue")["Properties"];
    assert_eq!(queue["MessageRetentionPeriod"].as_u64(), Some(1_209_600));
}
