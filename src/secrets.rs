//! Secrets from AWS Secrets Manager, read once at start-up: the template passes ARNs, never values.
//!
//! The Lambda functions and the CLI (and so the container task) both resolve them, so one set of
//! variables configures either. A value given directly (flag or plain variable) wins over an ARN.

use crate::config::{set, BackendArgs};
use anyhow::{Context, Result};

/// Fills each unset secret setting whose `*_SECRET_ARN` is given, with the default AWS credentials.
pub async fn resolve(backends: &mut BackendArgs) -> Result<()> {
    backends.remember_secrets();
    if !SECRETS.iter().any(|s| s.wanted_arn(backends).is_some()) {
        return Ok(());
    }
    let config = crate::net::aws::loader().load().await;
    resolve_with(&aws_sdk_secretsmanager::Client::new(&config), backends).await?;
    backends.remember_secrets();
    Ok(())
}

/// As [`resolve`], with a given client (tests point it at an emulator).
pub async fn resolve_with(client: &aws_sdk_secretsmanager::Client, backends: &mut BackendArgs) -> Result<()> {
    for secret in &SECRETS {
        if let Some(arn) = secret.wanted_arn(backends) {
            *(secret.value)(backends) = Some(fetch(client, &arn, secret).await?);
            backends.read_from_secrets.push(secret.flag);
        }
    }
    Ok(())
}

/// Reads again the secrets that came from Secrets Manager; `true` when one of them changed
/// (rotated since it was read), so that a job refused with the old value is worth repeating.
pub async fn refresh(backends: &mut BackendArgs) -> Result<bool> {
    if backends.read_from_secrets.is_empty() {
        return Ok(false);
    }
    let config = crate::net::aws::loader().load().await;
    refresh_with(&aws_sdk_secretsmanager::Client::new(&config), backends).await
}

/// As [`refresh`], with a given client.
pub async fn refresh_with(client: &aws_sdk_secretsmanager::Client, backends: &mut BackendArgs) -> Result<bool> {
    let mut changed = false;
    let read = backends.read_from_secrets.clone();
    for secret in SECRETS.iter().filter(|s| read.contains(&s.flag)) {
        let Some(arn) = set((secret.arn)(backends)).map(str::to_string) else { continue };
        let value = fetch(client, &arn, secret).await?;
        let slot = (secret.value)(backends);
        if slot.as_deref() != Some(value.as_str()) {
            *slot = Some(value);
            changed = true;
        }
    }
    backends.remember_secrets();
    Ok(changed)
}

/// Whether an error says a backend refused the credentials (as Redis, Neo4j and Qdrant word it).
pub fn is_auth_failure(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}").to_ascii_lowercase();
    ["authentication failed", "authenticationfailed", "wrongpass", "unauthorized", "http 401", "http 403", "security."]
        .iter()
        .any(|w| text.contains(w))
}

/// A setting that may come from Secrets Manager.
struct Secret {
    /// The field that holds the value when the secret is a JSON object.
    field: &'static str,
    /// How the operator names the ARN, for error messages.
    flag: &'static str,
    value: fn(&mut BackendArgs) -> &mut Option<String>,
    arn: fn(&BackendArgs) -> &Option<String>,
}

const SECRETS: [Secret; 3] = [
    Secret {
        field: "url",
        flag: "--redis-url-secret-arn / REDIS_URL_SECRET_ARN",
        value: |b| &mut b.redis_url,
        arn: |b| &b.redis_url_secret_arn,
    },
    Secret {
        field: "password",
        flag: "--neo4j-password-secret-arn / NEO4J_PASSWORD_SECRET_ARN",
        value: |b| &mut b.neo4j_password,
        arn: |b| &b.neo4j_password_secret_arn,
    },
    Secret {
        field: "api_key",
        flag: "--qdrant-api-key-secret-arn / QDRANT_API_KEY_SECRET_ARN",
        value: |b| &mut b.qdrant_api_key,
        arn: |b| &b.qdrant_api_key_secret_arn,
    },
];

impl Secret {
    /// The ARN to read, when one is given and the value itself is not.
    fn wanted_arn(&self, b: &mut BackendArgs) -> Option<String> {
        if set((self.value)(b)).is_some() {
            return None;
        }
        set((self.arn)(b)).map(str::to_string)
    }
}

/// The secret at `arn`: its plain string, or the `field` of a JSON secret.
async fn fetch(client: &aws_sdk_secretsmanager::Client, arn: &str, secret: &Secret) -> Result<String> {
    let flag = secret.flag;
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
    Ok(secret_field(value, secret.field))
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
