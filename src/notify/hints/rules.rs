//! The hints table: the rules engine's own categories and rule actions.

use super::*;

pub(super) const ROWS: &[Row] = &[
    // The rules engine's own categories, keyed by rule.
    rule(
        Category::RuleNotFound,
        "Devices published to a rule that does not exist (a Basic Ingest topic $aws/rules/... naming a deleted, renamed or misspelt rule): AWS IoT dropped every such message.",
        "`aws iot get-topic-rule --rule-name {rule}`; if it is gone, recreate it or fix the devices' topic (rule names are case-sensitive); `aws iot list-topic-rules` lists the rules that exist",
    ),
    rule(
        Category::RuleMessageThrottled,
        "The rules engine throttled messages for this rule (reason RuleExecutionThrottled): the account went over its rules engine rate, and the rule's actions did not run for those messages.",
        "CloudWatch metric AWS/IoT RuleMessageThrottled (dimension RuleName: this rule); compare the account's rate with the AWS IoT Core quota for rule evaluations per second (`aws service-quotas list-service-quotas --service-code iotcore`) and request an increase, or narrow the rule's SQL so it matches fewer messages",
    ),
    // Rule actions, keyed by rule and the `ruleAction` of the failure.
    action(
        &["Lambda"],
        "The rule could not invoke its Lambda function: the function is gone or in another Region, its resource policy does not let iot.amazonaws.com invoke it, or Lambda throttled or failed the call.",
        "`aws iot get-topic-rule --rule-name {rule}` (functionArn); `aws lambda get-policy --function-name <function-arn>` must allow lambda:InvokeFunction to principal iot.amazonaws.com for this rule's ARN; the function's Throttles and Errors metrics",
    ),
    action(
        &["S3"],
        "The rule could not write to its S3 bucket: the bucket is gone or in another Region, the rule's role lacks s3:PutObject (or KMS permissions for an SSE-KMS bucket), or a bucket policy denies it.",
        "`aws iot get-topic-rule --rule-name {rule}` (bucketName, key, roleArn); `aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names s3:PutObject --resource-arns arn:aws:s3:::<bucket>/<key>`",
    ),
    action(
        &["Dynamo", "DynamoDB"],
        "The rule could not write to its DynamoDB table: the table is gone, the rule's role lacks dynamodb:PutItem, the hash or range key values do not fit the table's key types, or the table's throughput was exceeded.",
        "`aws iot get-topic-rule --rule-name {rule}` (tableName, hashKeyField, hashKeyValue, roleArn); `aws dynamodb describe-table --table-name <table>`; `aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names dynamodb:PutItem`",
    ),
    action(
        &["DynamoV2", "DynamoDBv2"],
        "The rule could not write its message as a DynamoDB item: the SQL result is not a JSON object holding the table's key attributes, the table is gone, or the rule's role lacks dynamodb:PutItem.",
        "`aws iot get-topic-rule --rule-name {rule}` (sql, putItem.tableName, roleArn); `aws dynamodb describe-table --table-name <table>` (KeySchema); `aws iam simulate-principal-policy --policy-source-arn <role-arn> --action-names dynamodb:PutItem`",
    ),
    action(
        &["Kinesis", "KinesisStream", "KinesisDataStreams"],
        "The rule could not put records to its Kinesis data stream: the stream is gone, the rule's role lacks kinesis:PutRecord, or the stream's shards were over their write throughput.",
        "`aws iot get-topic-rule --rule-name {rule}` (streamName, partitionKey, roleArn); `aws kinesis describe-stream-summary --stream-name <stream>`; the stream's WriteProvisionedThroughputExceeded metric",
    ),
    action(
        &["Firehose", "KinesisFirehose"],
        "The rule could not deliver to its Amazon Data Firehose stream: the stream is gone, the rule's role lacks firehose:PutRecord (PutRecordBatch when batching), or the stream throttled.",
        "`aws iot get-topic-rule --rule-name {rule}` (deliveryStreamName, roleArn); `aws firehose describe-delivery-stream --delivery-stream-name <stream>`; the stream's ThrottledRecords metric",
    ),
    action(
        &["Sqs"],
        "The rule could not send to its SQS queue: the queue URL is wrong or the queue gone, the rule's role lacks sqs:SendMessage (and KMS permissions for an encrypted queue), or the queue policy denies it.",
        "`aws iot get-topic-rule --rule-name {rule}` (queueUrl, roleArn); `aws sqs get-queue-attributes --queue-url <queue-url> --attribute-names All`",
    ),
    action(
        &["Sns"],
        "The rule could not publish to its SNS topic: the topic is gone, the rule's role lacks sns:Publish (and KMS permissions for an encrypted topic), or the message format does not suit the target.",
        "`aws iot get-topic-rule --rule-name {rule}` (targetArn, messageFormat, roleArn); `aws sns get-topic-attributes --topic-arn <topic-arn>`",
    ),
    action(
        &["Republish"],
        "The rule could not republish to its target topic: the rule's role lacks iot:Publish on that topic, or the topic is not valid (a reserved $ topic other than the shadow topics, or a substitution template that yields no topic).",
        "`aws iot get-topic-rule --rule-name {rule}` (topic, qos, roleArn); the role's policy must allow iot:Publish on arn:aws:iot:<region>:<account>:topic/<target-topic>",
    ),
    action(
        &["IotAnalytics"],
        "The rule could not send to its AWS IoT Analytics channel: the channel is gone or the rule's role lacks iotanalytics:BatchPutMessage.",
        "`aws iot get-topic-rule --rule-name {rule}` (channelName, roleArn); `aws iotanalytics describe-channel --channel-name <channel>`",
    ),
    action(
        &["IotEvents"],
        "The rule could not send to its AWS IoT Events input: the input is gone or the rule's role lacks iotevents:BatchPutMessage (AWS IoT Events reaches its end of support on 2026-05-20).",
        "`aws iot get-topic-rule --rule-name {rule}` (inputName, roleArn); `aws iotevents describe-input --input-name <input>`",
    ),
    action(
        &["IotSiteWise", "SiteWise"],
        "The rule could not put asset property values to AWS IoT SiteWise: a property alias or asset and property id does not resolve, a timestamp is outside the accepted window, a value has the wrong type, or the rule's role lacks iotsitewise:BatchPutAssetPropertyValue.",
        "`aws iot get-topic-rule --rule-name {rule}` (putAssetPropertyValueEntries, roleArn); `aws iotsitewise describe-time-series --alias <property-alias>`",
    ),
    action(
        &["CloudwatchMetric", "CloudwatchMetrics"],
        "The rule could not publish its CloudWatch metric: the metric value or unit its SQL produced is not valid, or the rule's role lacks cloudwatch:PutMetricData.",
        "`aws iot get-topic-rule --rule-name {rule}` (metricNamespace, metricName, metricValue, metricUnit, roleArn)",
    ),
    action(
        &["CloudwatchAlarm", "CloudwatchAlarms"],
        "The rule could not set its CloudWatch alarm's state: the alarm is gone, the state value is not OK, ALARM or INSUFFICIENT_DATA, or the rule's role lacks cloudwatch:SetAlarmState.",
        "`aws iot get-topic-rule --rule-name {rule}` (alarmName, stateValue, roleArn); `aws cloudwatch describe-alarms --alarm-names <alarm>`",
    ),
    action(
        &["CloudwatchLogs"],
        "The rule could not write to its CloudWatch Logs group: the group is gone, the rule's role lacks logs:CreateLogStream, logs:DescribeLogStreams or logs:PutLogEvents, or the group's KMS key refuses it.",
        "`aws iot get-topic-rule --rule-name {rule}` (logGroupName, roleArn); `aws logs describe-log-groups --log-group-name-prefix <log-group>`",
    ),
    action(
        &["StepFunctions"],
        "The rule could not start its Step Functions state machine: the state machine is gone or the rule's role lacks states:StartExecution.",
        "`aws iot get-topic-rule --rule-name {rule}` (stateMachineName, executionNamePrefix, roleArn); `aws stepfunctions describe-state-machine --state-machine-arn <state-machine-arn>`",
    ),
    action(
        &["Kafka", "ApacheKafka"],
        "The rule could not produce to its Apache Kafka cluster: its VPC destination is not ENABLED, the brokers are unreachable from the destination's subnets and security groups, or the SASL or TLS credentials were refused.",
        "`aws iot get-topic-rule --rule-name {rule}` (destinationArn, clientProperties); `aws iot list-topic-rule-destinations` (the destination must be ENABLED); the secrets its get_secret() calls read",
    ),
    action(
        &["Http", "Https"],
        "The rule could not POST to its HTTPS endpoint: the endpoint's topic rule destination is not confirmed and ENABLED, the endpoint answered with an error or timed out, or its TLS certificate is not trusted.",
        "`aws iot list-topic-rule-destinations` (the endpoint's destination must be ENABLED); `aws iot get-topic-rule --rule-name {rule}` (url, headers, auth); the AWS/IoT HTTP action metrics",
    ),
    action(
        &["Timestream"],
        "The rule could not write records to its Timestream table: the database or table is gone, a timestamp is outside the memory store's retention, a dimension or measure is not valid, or the rule's role lacks timestream:WriteRecords and timestream:DescribeEndpoints.",
        "`aws iot get-topic-rule --rule-name {rule}` (databaseName, tableName, dimensions, roleArn); `aws timestream-write describe-table --database-name <database> --table-name <table>`",
    ),
    action(
        &["OpenSearch", "Elasticsearch"],
        "The rule could not index into its OpenSearch domain: the endpoint is wrong, the domain's access policy or fine-grained access control refuses the rule's role (es:ESHttpPut), or the domain is red or read-only.",
        "`aws iot get-topic-rule --rule-name {rule}` (endpoint, index, roleArn); `aws opensearch describe-domain --domain-name <domain>`",
    ),
    action(
        &["Location"],
        "The rule could not update device positions in Amazon Location: the tracker is gone, the device id, latitude or longitude is not valid, or the rule's role lacks geo:BatchUpdateDevicePosition.",
        "`aws iot get-topic-rule --rule-name {rule}` (trackerName, deviceId, latitude, longitude, roleArn); `aws location describe-tracker --tracker-name <tracker>`",
    ),
    action(
        &["Salesforce"],
        "The rule could not post to its Salesforce IoT input stream (a legacy action): its url or token is no longer valid.",
        "`aws iot get-topic-rule --rule-name {rule}` (url, token); move the data to a supported action",
    ),
    action(
        &["MachinelearningPredict", "Machinelearning"],
        "The rule's SQL called machinelearning_predict() and the call failed: the Amazon Machine Learning model or its real-time endpoint is not available (a legacy service), or the rule's role lacks machinelearning:Predict.",
        "`aws iot get-topic-rule --rule-name {rule}` (the SQL's machinelearning_predict call and its role); replace it with a Lambda or SageMaker call",
    ),
    action(
        &["OperatorEval"],
        "The rule's SQL failed while evaluating an operator or function on these messages (for example arithmetic on a string, or a field that is missing), so its actions did not run for them.",
        "`aws iot get-topic-rule --rule-name {rule}` (sql, awsIotSqlVersion); try the SQL on a sample payload (`iot-incidents get <traceId>`) in the console's SQL test",
    ),
];
