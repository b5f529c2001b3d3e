//! Secrets from AWS Secrets Manager, read once at start-up: the template passes ARNs, never values.

use crate::config::BackendArgs;
use anyhow::{Context, Result};

/// Fills settings whose `<NAME>_SECRET_ARN` variable is set.
pub async fn resolve(backends: &mut BackendArgs) -> Result<()> {
    if let Some(url) = fetch("REDIS_URL_SECRET_ARN", "url").await? {
        backends.redis_url = Some(url);
    }
    if let Some(password) = fetch("NEO4J_PASSWORD_SECRET_ARN", "password").await? {
        backends.neo4j_password = Some(password);
    }
    if let Some(key) = fetch("QDRANT_API_KEY_SECRET_ARN", "api_key").await? {
        backends.qdrant_api_key = Some(key);
    }
    Ok(())
}

/// The secret named by the ARN in `variable`: its plain string, or the `field` of a JSON secret.
async fn fetch(variable: &str, field: &str) -> Result<Option<String>> {
    let Some(arn) = std::env::var(variable).ok().filter(|v| !v.is_empty()) else { return Ok(None) };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let out = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
        .with_context(|| {
            format!(
                "reading secret {arn} (from {variable}); the function's role needs secretsmanager:GetSecretValue on it"
            )
        })?;
    let value = out.secret_string().with_context(|| format!("secret {arn} has no string value"))?;
    Ok(Some(secret_field(value, field)))
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
