//! One secret read from AWS Secrets Manager: the value of a plain secret, or one field of a JSON
//! one, with a message that says what to check when it cannot be read. Used for the backends'
//! credentials (`crate::secrets`) and for keys (signing key, age identity).

use anyhow::{Context, Result};

/// The secret at `arn` (its `field`, when it is JSON), with the default AWS credentials; `flag`
/// names the setting that gave the ARN, for messages. The value is remembered for redaction.
pub async fn read(arn: &str, field: &str, flag: &str) -> Result<String> {
    let config = super::aws::loader().load().await;
    let value = fetch(&aws_sdk_secretsmanager::Client::new(&config), arn, field, flag).await?;
    super::redact::remember(&value);
    Ok(value)
}

/// The secret at `arn`: its plain string, or the `field` of a JSON secret.
pub async fn fetch(client: &aws_sdk_secretsmanager::Client, arn: &str, field: &str, flag: &str) -> Result<String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
        .with_context(|| {
            format!(
                "reading secret {arn} (from {flag}): check the ARN and that the role running ngbak \
                 has secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
            )
        })?;
    let value = out.secret_string().with_context(|| {
        format!("secret {arn} (from {flag}) has no string value; store the value as a string or JSON")
    })?;
    Ok(secret_field(value, field))
}

/// A JSON secret `{"<field>": "..."}` gives that field; any other secret is used as it is.
fn secret_field(value: &str, field: &str) -> String {
    serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|v| v.get(field).and_then(|f| f.as_str()).map(str::to_string))
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_and_plain_secrets() {
        assert_eq!(super::secret_field(r#"{"password":"pw","username":"u"}"#, "password"), "pw");
        assert_eq!(super::secret_field("plain-secret", "password"), "plain-secret");
    }
}
