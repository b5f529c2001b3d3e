//! Secrets from AWS Secrets Manager, read once at start-up: the template passes ARNs, never values.
//!
//! The Lambda functions and the CLI (and so the container task) both resolve them, so one set of
//! variables configures either. A value given directly (flag or plain variable) wins over an ARN.

use crate::backends::descriptor::SecretSetting;
use crate::config::BackendArgs;
use crate::net::secret_value::fetch;
use anyhow::Result;

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
