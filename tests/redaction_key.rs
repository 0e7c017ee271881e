//! The redaction key from SSM Parameter Store against moto: read once,
//! decrypted, only from a SecureString, and every mistake named by the
//! variable that points at it.

mod common;

use common::{moto, sdk_config};
use iot_log_monitor::aws::secrets::redaction_key_from_env;
use iot_log_monitor::config::vars;

#[tokio::test]
async fn the_key_is_read_from_a_secure_string_and_mistakes_name_the_variable() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let name = format!("/iot-log-monitor/test-{}/redaction-key", std::process::id());
    ssm.put_parameter()
        .name(&name)
        .value("a-secret-of-enough-bytes")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let plain = format!("{name}-plain");
    ssm.put_parameter()
        .name(&plain)
        .value("a-secret-in-clear-text")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let env = |pairs: Vec<(&'static str, String)>| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    };

    let key = redaction_key_from_env(
        &sdk,
        env(vec![(vars::REDACTION_KEY_PARAMETER, name.clone())]),
    )
    .await
    .unwrap();
    assert_eq!(key.as_deref(), Some("a-secret-of-enough-bytes"));
    assert_eq!(
        redaction_key_from_env(&sdk, env(vec![])).await.unwrap(),
        None
    );

    for (pairs, fragment) in [
        (
            vec![(vars::REDACTION_KEY_PARAMETER, plain.clone())],
            "not a SecureString",
        ),
        (
            vec![(vars::REDACTION_KEY_PARAMETER, format!("{name}-missing"))],
            "cannot read",
        ),
        (
            vec![
                (vars::REDACTION_KEY_PARAMETER, name.clone()),
                (vars::REDACTION_KEY, "another-key-of-16-bytes".to_owned()),
            ],
            "keep the key in one place",
        ),
    ] {
        let error = redaction_key_from_env(&sdk, env(pairs)).await.unwrap_err();
        assert_eq!(error.var, vars::REDACTION_KEY_PARAMETER);
        assert!(error.problem.contains(fragment), "{error}");
    }
}
