//! Secrets from AWS Secrets Manager, read once at start-up: the template passes ARNs, never values.
//!
//! The Lambda functions and the CLI (and so the container task) both resolve them, so one set of
//! variables configures either. A value given directly (flag or plain variable) wins over an ARN.

use crate::backends::descriptor::SecretSetting;
use crate::config::BackendArgs;
use anyhow::{Context, Result};

/// Fills each unset secret setting whose `*_SECRET_ARN` is given, with the default AWS credentials.
pub async fn resolve(backends: &mut BackendArgs) -> Result<()> {
    backends.remember_secrets();
    let wanted = backends.all_mut().into_iter().any(|b| b.secrets().iter().any(|s| wanted_arn(s).is_some()));
    if !wanted {
        return Ok(());
    }
    let config = crate::net::aws::loader().load().await;
    resolve_with(&aws_sdk_secretsmanager::Client::new(&config), backends).await?;
    backends.remember_secrets();
    Ok(())
}

/// As [`resolve`], with a given client (tests point it at an emulator).
pub async fn resolve_with(client: &aws_sdk_secretsmanager::Client, backends: &mut BackendArgs) -> Result<()> {
    let mut read = Vec::new();
    for backend in backends.all_mut() {
        for secret in backend.secrets() {
            if let Some(arn) = wanted_arn(&secret) {
                *secret.value = Some(fetch(client, &arn, secret.field, secret.flag).await?);
                read.push(secret.flag);
            }
        }
    }
    backends.read_from_secrets.extend(read);
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
    for backend in backends.all_mut() {
        for secret in backend.secrets().into_iter().filter(|s| read.contains(&s.flag)) {
            let Some(arn) = secret.arn else { continue };
            let value = fetch(client, &arn, secret.field, secret.flag).await?;
            if secret.value.as_deref() != Some(value.as_str()) {
                *secret.value = Some(value);
                changed = true;
            }
        }
    }
    backends.remember_secrets();
    Ok(changed)
}

/// Whether an error says a backend refused the credentials (as the servers word it).
pub fn is_auth_failure(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}").to_ascii_lowercase();
    ["authentication failed", "authenticationfailed", "wrongpass", "unauthorized", "http 401", "http 403", "security."]
        .iter()
        .any(|w| text.contains(w))
}

/// The ARN to read, when one is given and the value itself is not.
fn wanted_arn(secret: &SecretSetting<'_>) -> Option<String> {
    if crate::config::set(secret.value).is_some() {
        return None;
    }
    secret.arn.clone()
}

/// The secret at `arn`: its plain string, or the `field` of a JSON secret.
async fn fetch(client: &aws_sdk_secretsmanager::Client, arn: &str, field: &str, flag: &str) -> Result<String> {
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
