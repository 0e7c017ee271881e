//! Local runs without an AWS account: reads `template.yaml` and creates its
//! tables, topics and queues on a local endpoint (moto), so the demo and the
//! integration tests use exactly what the stack deploys; then resolves the
//! function's environment the way CloudFormation would.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocalError(String);

fn fail(message: impl Into<String>) -> LocalError {
    LocalError(message.into())
}

fn sdk_error(what: &str, e: impl std::error::Error) -> LocalError {
    fail(format!(
        "{what}: {}",
        aws_smithy_types::error::display::DisplayErrorContext(e)
    ))
}

/// A CloudFormation/SAM template, short-form tags included.
pub struct Template {
    doc: Value,
}

/// A value in the template that CloudFormation resolves at deploy time.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    Literal(String),
    Ref(String),
    GetAtt(String, String),
    /// `!Join [sep, !Ref List]`: a list parameter as one string.
    JoinRef(String, String),
    Other,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, LocalError> {
        serde_norway::from_str(text)
            .map(|doc| Self { doc })
            .map_err(|e| fail(format!("template is not YAML: {e}")))
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(id, body)| {
                Some((id.as_str()?, body["Type"].as_str()?, &body["Properties"]))
            })
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.doc["Resources"].get(logical_id)
    }

    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(&self.doc["Parameters"][name]["Default"])
    }

    /// The environment variables of a function resource, unresolved.
    pub fn function_environment(&self, logical_id: &str) -> Vec<(String, TemplateValue)> {
        let vars = &self.doc["Resources"][logical_id]["Properties"]["Environment"]["Variables"];
        vars.as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), template_value(v))))
            .collect()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads `!Ref X`, `!GetAtt X.Attr`, their long forms, or a literal.
pub fn template_value(v: &Value) -> TemplateValue {
    if let Some(literal) = scalar(v) {
        return TemplateValue::Literal(literal);
    }
    let (tag, inner) = match v {
        Value::Tagged(t) => (t.tag.to_string(), &t.value),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next().expect("one entry");
            (
                k.as_str()
                    .unwrap_or_default()
                    .replace("Fn::", "!")
                    .replace("Ref", "!Ref"),
                inner,
            )
        }
        _ => return TemplateValue::Other,
    };
    match (tag.as_str(), inner) {
        ("!Ref", Value::String(name)) => TemplateValue::Ref(name.clone()),
        ("!GetAtt", Value::String(path)) => match path.split_once('.') {
            Some((id, attr)) => TemplateValue::GetAtt(id.into(), attr.into()),
            None => TemplateValue::Other,
        },
        ("!GetAtt", Value::Sequence(parts)) if parts.len() == 2 => TemplateValue::GetAtt(
            parts[0].as_str().unwrap_or_default().into(),
            parts[1].as_str().unwrap_or_default().into(),
        ),
        ("!Join", Value::Sequence(parts)) if parts.len() == 2 => {
            match (parts[0].as_str(), template_value(&parts[1])) {
                (Some(sep), TemplateValue::Ref(id)) => TemplateValue::JoinRef(sep.into(), id),
                _ => TemplateValue::Other,
            }
        }
        _ => TemplateValue::Other,
    }
}

/// What was created locally, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    /// `Ref` of each resource: table name, topic ARN, queue URL.
    pub refs: BTreeMap<String, String>,
    /// `GetAtt X.Arn` of each resource.
    pub arns: BTreeMap<String, String>,
    /// An SQS queue subscribed to every topic: the operator's inbox.
    pub inbox_queue_url: String,
}

impl Provisioned {
    /// Resolves a function's environment as CloudFormation would, with parameter defaults.
    pub fn environment(
        &self,
        template: &Template,
        function: &str,
    ) -> Result<BTreeMap<String, String>, LocalError> {
        template
            .function_environment(function)
            .into_iter()
            .map(|(name, value)| {
                let resolved = match &value {
                    TemplateValue::Literal(s) => Some(s.clone()),
                    TemplateValue::Ref(id) => self
                        .refs
                        .get(id)
                        .cloned()
                        .or_else(|| template.parameter_default(id)),
                    TemplateValue::GetAtt(id, attr) if attr == "Arn" => self.arns.get(id).cloned(),
                    // A list parameter's default is its comma-separated text.
                    TemplateValue::JoinRef(sep, id) => template
                        .parameter_default(id)
                        .map(|list| list.split(',').map(str::trim).collect::<Vec<_>>().join(sep)),
                    _ => None,
                };
                resolved
                    .map(|v| (name.clone(), v))
                    .ok_or_else(|| fail(format!("cannot resolve {name} = {value:?} locally")))
            })
            .collect()
    }
}

/// Creates every DynamoDB table, SNS topic and SQS queue of the template,
/// named `<prefix>-<LogicalId>`, and an inbox queue subscribed to the topics.
pub async fn provision(
    template: &Template,
    sdk: &aws_config::SdkConfig,
    prefix: &str,
) -> Result<Provisioned, LocalError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Provisioned::default();
    for (id, kind, props) in template.resources() {
        let name = format!("{prefix}-{id}");
        match kind {
            "AWS::DynamoDB::Table" => {
                let arn = create_table(&dynamodb, &name, props).await?;
                out.refs.insert(id.into(), name);
                out.arns.insert(id.into(), arn);
            }
            "AWS::SNS::Topic" => {
                let arn = sns
                    .create_topic()
                    .name(&name)
                    .send()
                    .await
                    .map_err(|e| sdk_error("CreateTopic", e))?
                    .topic_arn
                    .ok_or_else(|| fail("CreateTopic returned no ARN"))?;
                out.refs.insert(id.into(), arn.clone());
                out.arns.insert(id.into(), arn);
            }
            "AWS::SQS::Queue" => {
                let retention = scalar(&props["MessageRetentionPeriod"]);
                let (url, arn) = create_queue(&sqs, &name, retention).await?;
                out.refs.insert(id.into(), url);
                out.arns.insert(id.into(), arn);
            }
            _ => {}
        }
    }
    let (inbox_url, inbox_arn) = create_queue(&sqs, &format!("{prefix}-inbox"), None).await?;
    for (id, kind, _) in template.resources() {
        if kind == "AWS::SNS::Topic" {
            sns.subscribe()
                .topic_arn(&out.refs[id])
                .protocol("sqs")
                .endpoint(&inbox_arn)
                .send()
                .await
                .map_err(|e| sdk_error("Subscribe", e))?;
        }
    }
    out.inbox_queue_url = inbox_url;
    Ok(out)
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<String, LocalError> {
    let key_schema = |v: &Value| -> Result<Vec<KeySchemaElement>, LocalError> {
        v.as_sequence()
            .into_iter()
            .flatten()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or_default()))
                    .build()
                    .map_err(|e| fail(format!("{name}: key schema: {e}")))
            })
            .collect()
    };
    let definitions = props["AttributeDefinitions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|d| {
            AttributeDefinition::builder()
                .attribute_name(d["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(
                    d["AttributeType"].as_str().unwrap_or_default(),
                ))
                .build()
                .map_err(|e| fail(format!("{name}: attribute definitions: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut indexes = Vec::new();
    for gsi in props["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let projection = ProjectionType::from(
            gsi["Projection"]["ProjectionType"]
                .as_str()
                .unwrap_or("ALL"),
        );
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(gsi["IndexName"].as_str().unwrap_or_default())
                .set_key_schema(Some(key_schema(&gsi["KeySchema"])?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| fail(format!("{name}: index: {e}")))?,
        );
    }
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(&props["KeySchema"])?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await
        .map_err(|e| sdk_error("CreateTable", e))?;
    let ttl = &props["TimeToLiveSpecification"];
    if ttl["Enabled"].as_bool() == Some(true) {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(ttl["AttributeName"].as_str().unwrap_or_default())
            .enabled(true)
            .build()
            .map_err(|e| fail(format!("{name}: TTL: {e}")))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    }
    Ok(created
        .table_description
        .and_then(|d| d.table_arn)
        .unwrap_or_default())
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    retention: Option<String>,
) -> Result<(String, String), LocalError> {
    let mut request = client.create_queue().queue_name(name);
    if let Some(seconds) = retention {
        request = request.attributes(QueueAttributeName::MessageRetentionPeriod, seconds);
    }
    let url = request
        .send()
        .await
        .map_err(|e| sdk_error("CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    Ok((url, arn))
}

/// An alert as an SQS subscriber of the topic receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedNotification {
    pub subject: String,
    /// What SQS subscribers get: the JSON body.
    pub message: String,
    pub attributes: BTreeMap<String, String>,
}

/// Receives (and deletes) what is in the inbox, waiting up to `wait` for the first message.
pub async fn drain_inbox(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: std::time::Duration,
) -> Result<Vec<ReceivedNotification>, LocalError> {
    let mut alerts = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if alerts.is_empty() && started.elapsed() < wait {
                1
            } else {
                0
            })
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            if alerts.is_empty() && started.elapsed() < wait {
                continue;
            }
            return Ok(alerts);
        }
        for message in messages {
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap_or_default())
                .map_err(|e| fail(format!("inbox message is not an SNS notification: {e}")))?;
            let attributes = body["MessageAttributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            alerts.push(ReceivedNotification {
                subject: body["Subject"].as_str().unwrap_or_default().to_owned(),
                message: body["Message"].as_str().unwrap_or_default().to_owned(),
                attributes,
            });
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessage", e))?;
            }
        }
    }
}
