//! Secrets the function reads once at start-up: the redaction key, from an
//! SSM Parameter Store SecureString, so it is never in the function's plain
//! environment (readable with `lambda:GetFunctionConfiguration`).

use aws_smithy_types::error::display::DisplayErrorContext;

use crate::config::vars;
use crate::error::ConfigError;

/// The redaction key: the SecureString named by `REDACTION_KEY_PARAMETER`
/// (decrypted), `None` when that variable is unset. Setting it beside a
/// plain `REDACTION_KEY` is refused: one source of the key, never two.
pub async fn redaction_key_from_env(
    sdk: &aws_config::SdkConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(name) = lookup(vars::REDACTION_KEY_PARAMETER).filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    if lookup(vars::REDACTION_KEY).is_some_and(|k| !k.is_empty()) {
        return Err(ConfigError {
            var: vars::REDACTION_KEY_PARAMETER,
            problem: format!(
                "is set beside {}: keep the key in one place",
                vars::REDACTION_KEY
            ),
        });
    }
    parameter_value(&aws_sdk_ssm::Client::new(sdk), name.trim())
        .await
        .map(Some)
}

/// A SecureString's decrypted value; an error names the variable.
pub async fn parameter_value(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<String, ConfigError> {
    let problem = |what: String| ConfigError {
        var: vars::REDACTION_KEY_PARAMETER,
        problem: what,
    };
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            problem(format!(
                "cannot read SSM parameter {name:?}: {}",
                DisplayErrorContext(e)
            ))
        })?;
    let parameter = output
        .parameter
        .ok_or_else(|| problem(format!("SSM parameter {name:?} has no value")))?;
    if parameter.r#type() != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
        return Err(problem(format!(
            "SSM parameter {name:?} is not a SecureString: a key must not be stored in clear"
        )));
    }
    parameter
        .value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| problem(format!("SSM parameter {name:?} is empty")))
}
