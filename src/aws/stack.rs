//! Where a deployed stack keeps its data: the CloudFormation outputs.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("stack {0} does not exist in this region")]
    NoSuchStack(String),
    #[error("stack {stack} has no output {output}; was it deployed from this template?")]
    MissingOutput { stack: String, output: &'static str },
    #[error(
        "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error("DescribeStacks {stack} failed: {message}")]
    Request {
        stack: String,
        message: String,
        #[source]
        source: crate::error::SdkFailure,
    },
}

/// The outputs of a stack deployed from template.yaml.
#[derive(Debug, Clone, Default)]
pub struct StackOutputs(pub BTreeMap<String, String>);

impl StackOutputs {
    pub async fn load(
        client: &aws_sdk_cloudformation::Client,
        stack: &str,
    ) -> Result<Self, StackError> {
        let result = client.describe_stacks().stack_name(stack).send().await;
        let output = result.map_err(|e| {
            let (message, _) = super::describe(&e);
            if message.contains("does not exist") {
                StackError::NoSuchStack(stack.to_owned())
            } else if message.to_ascii_lowercase().contains("credentials") {
                StackError::NoCredentials
            } else {
                StackError::Request {
                    stack: stack.to_owned(),
                    message,
                    source: Box::new(e),
                }
            }
        })?;
        let outputs = output
            .stacks
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| StackError::NoSuchStack(stack.to_owned()))?
            .outputs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| Some((o.output_key?, o.output_value?)))
            .collect();
        Ok(Self(outputs))
    }

    pub fn get(&self, stack: &str, output: &'static str) -> Result<String, StackError> {
        self.0
            .get(output)
            .cloned()
            .ok_or(StackError::MissingOutput {
                stack: stack.to_owned(),
                output,
            })
    }
}
