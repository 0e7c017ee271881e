//! Where the data is: the SDK configuration, and names from flags, the
//! environment or a stack's outputs, each looked up once per run.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use aws_smithy_types::error::display::DisplayErrorContext;

use iot_log_monitor::aws::incident_reader::IncidentReader;
use iot_log_monitor::aws::reader::EntryReader;
use iot_log_monitor::aws::sdk_config_loader;
use iot_log_monitor::aws::silences::SilenceTable;
use iot_log_monitor::aws::stack::{StackError, StackOutputs};

use crate::output::Output;

pub struct Session {
    stack: Option<String>,
    table: Option<String>,
    /// The incidents and silences tables, when given by flag or environment.
    pub incidents_table: Option<String>,
    pub silences_table: Option<String>,
    queue_url: Option<String>,
    region: Option<String>,
    /// How results are shown.
    pub output: Output,
    sdk: Option<aws_config::SdkConfig>,
    outputs: Option<StackOutputs>,
}

impl Session {
    pub fn new(
        stack: Option<String>,
        table: Option<String>,
        queue_url: Option<String>,
        region: Option<String>,
        output: Output,
    ) -> Self {
        Session {
            stack,
            table,
            incidents_table: None,
            silences_table: None,
            queue_url,
            region,
            output,
            sdk: None,
            outputs: None,
        }
    }

    pub async fn sdk(&mut self) -> &aws_config::SdkConfig {
        if self.sdk.is_none() {
            let mut loader = sdk_config_loader();
            if let Some(region) = &self.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            self.sdk = Some(loader.load().await);
        }
        self.sdk.as_ref().expect("just set")
    }

    /// A value from a flag or the environment, else the stack's output.
    pub async fn resolve(
        &mut self,
        given: Option<String>,
        output: &'static str,
        flag: &str,
    ) -> Result<String> {
        if let Some(value) = given {
            return Ok(value);
        }
        let Some(stack) = self.stack.clone() else {
            bail!("say where the data is: {flag}, or --stack NAME");
        };
        if self.outputs.is_none() {
            let client = aws_sdk_cloudformation::Client::new(self.sdk().await);
            self.outputs = Some(StackOutputs::load(&client, &stack).await?);
        }
        Ok(self
            .outputs
            .as_ref()
            .expect("just set")
            .get(&stack, output)?)
    }

    /// A stack output that only some stacks have (given by flag or
    /// environment, else the stack's, else none).
    pub async fn optional(
        &mut self,
        given: Option<String>,
        output: &'static str,
    ) -> Result<Option<String>> {
        if given.is_some() || self.stack.is_none() {
            return Ok(given);
        }
        match self.resolve(None, output, "").await {
            Ok(value) => Ok(Some(value)),
            Err(e) => match e.downcast_ref::<StackError>() {
                Some(StackError::MissingOutput { .. }) => Ok(None),
                _ => Err(e),
            },
        }
    }

    /// Whether a failure queue was named (by flag, environment or stack).
    pub fn names_a_queue(&self) -> bool {
        self.queue_url.is_some() || self.stack.is_some()
    }

    /// The deployed processor function: `--function`, else the stack's
    /// output. Never guessed, and never replaced by the shell's variables:
    /// without one, the error says what to name.
    pub async fn processor_function(&mut self, given: Option<String>) -> Result<String> {
        if given.is_none() && self.stack.is_none() {
            bail!(
                "redrive processes batches with the deployed function's own configuration, \
                 and no function is known: name it with --function NAME, or its stack with --stack NAME"
            );
        }
        self.resolve(given, "ProcessorFunctionName", "--function")
            .await
    }

    /// The environment `function` runs with, as Lambda's
    /// GetFunctionConfiguration reports it (every `Ref` of the template
    /// resolved).
    pub async fn function_environment(
        &mut self,
        function: &str,
    ) -> Result<BTreeMap<String, String>> {
        let lambda = aws_sdk_lambda::Client::new(self.sdk().await);
        let configuration = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "GetFunctionConfiguration {function}: {}",
                    DisplayErrorContext(e)
                )
            })?;
        // A function without variables has no `Environment` at all.
        let Some(environment) = configuration.environment else {
            return Ok(BTreeMap::new());
        };
        if let Some(error) = environment.error {
            bail!(
                "the environment of function {function} cannot be read: {}",
                error.message.unwrap_or_default()
            );
        }
        Ok(environment
            .variables
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// The tables named by flag or variable (not by a stack), with the
    /// function's variable for each, so `redrive` can refuse names that are
    /// not the function's rather than write somewhere the function does not.
    pub fn given_tables(&self) -> [(&'static str, &'static str, Option<&str>); 3] {
        use iot_log_monitor::config::vars;
        [
            ("--table", vars::ENTRIES_TABLE, self.table.as_deref()),
            (
                "--incidents-table",
                vars::INCIDENTS_TABLE,
                self.incidents_table.as_deref(),
            ),
            (
                "--silences-table",
                vars::SILENCES_TABLE,
                self.silences_table.as_deref(),
            ),
        ]
    }

    /// The entries table's name.
    pub async fn entries_table(&mut self) -> Result<String> {
        self.resolve(self.table.clone(), "EntriesTableName", "--table")
            .await
    }

    /// The failure destination queue's URL.
    pub async fn failed_batch_queue(&mut self) -> Result<String> {
        self.resolve(self.queue_url.clone(), "FailedBatchQueueUrl", "--queue-url")
            .await
    }

    /// The incidents table's name.
    pub async fn incidents_table(&mut self) -> Result<String> {
        self.resolve(
            self.incidents_table.clone(),
            "IncidentsTableName",
            "--incidents-table",
        )
        .await
    }

    /// The silences table's name.
    pub async fn silences_table(&mut self) -> Result<String> {
        self.resolve(
            self.silences_table.clone(),
            "SilencesTableName",
            "--silences-table",
        )
        .await
    }

    pub async fn incident_reader(&mut self) -> Result<IncidentReader> {
        let table = self.incidents_table().await?;
        Ok(IncidentReader::new(
            aws_sdk_dynamodb::Client::new(self.sdk().await),
            table,
        ))
    }

    pub async fn silence_table(&mut self) -> Result<SilenceTable> {
        let table = self.silences_table().await?;
        Ok(SilenceTable::new(
            aws_sdk_dynamodb::Client::new(self.sdk().await),
            table,
        ))
    }

    pub async fn reader(&mut self) -> Result<EntryReader> {
        let table = self.entries_table().await?;
        Ok(EntryReader::new(
            aws_sdk_dynamodb::Client::new(self.sdk().await),
            table,
        ))
    }
}
