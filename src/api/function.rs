//! The API function: the same router behind a Lambda Function URL, through `lambda_http`. IAM
//! (SigV4) guards the URL; the template gives read-only callers the function's own URL and
//! operators a second one, on the `operator` alias: a request that changes something (POST,
//! DELETE) is refused unless it came through that alias. Jobs go to the backup and restore
//! functions as asynchronous invokes; downloads are presigned S3 addresses.

use super::problem::Problem;
use super::{Api, Host};
use crate::lambda::FunctionConfig;
use anyhow::{Context, Result};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Parser;
use std::sync::Arc;

/// The alias whose Function URL may change things.
pub const OPERATOR_ALIAS: &str = "operator";

/// The API function's settings, from the environment (no backend secret is read: the API reads
/// the store only; the jobs run in the backup and restore functions).
pub async fn from_env() -> Result<Arc<Api>> {
    let config = FunctionConfig::try_parse_from(["ngbak-api"])?;
    config.net.apply()?;
    let store = config.store.open().await?;
    let shared = crate::net::aws::loader().load().await;
    let function = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("{name} is not set (the template sets it)"))
    };
    let host = Host::Function {
        lambda: aws_sdk_lambda::Client::new(&shared),
        backup_function: function("NGBAK_BACKUP_FUNCTION")?,
        restore_function: function("NGBAK_RESTORE_FUNCTION")?,
    };
    let max_upload_bytes = match std::env::var("NGBAK_API_MAX_UPLOAD_BYTES") {
        Ok(v) => v.parse().with_context(|| format!("NGBAK_API_MAX_UPLOAD_BYTES={v:?} is not a number of bytes"))?,
        Err(_) => super::DEFAULT_MAX_UPLOAD_BYTES,
    };
    let host_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "the API function".into());
    let keys = config.auth.keys().await?;
    Ok(Arc::new(Api { store, config, keys, host, token: None, max_upload_bytes, host_name }))
}

/// Which invocations may change something: those through the operator alias (the default), or
/// any (`NGBAK_API_WRITES_THROUGH=any`: for a local emulator such as `cargo lambda watch`, which
/// has no aliases).
pub fn writes_through_any() -> Result<bool> {
    match std::env::var("NGBAK_API_WRITES_THROUGH").as_deref() {
        Err(_) | Ok("") | Ok(OPERATOR_ALIAS) => Ok(false),
        Ok("any") => Ok(true),
        Ok(other) => anyhow::bail!("NGBAK_API_WRITES_THROUGH={other:?}: use {OPERATOR_ALIAS} (the default) or any"),
    }
}

/// The router as the function serves it.
pub fn app(api: Arc<Api>, writes_through_any: bool) -> axum::Router {
    let router = super::router(api);
    if writes_through_any {
        return router;
    }
    router.layer(axum::middleware::from_fn(operators_only))
}

/// Refuses a request that changes something unless it came through the operator alias's URL.
async fn operators_only(request: Request, next: Next) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let arn = request.extensions().get::<lambda_http::Context>().map(|c| c.invoked_function_arn.clone());
    let through_operator = arn.as_deref().is_some_and(|arn| arn.ends_with(&format!(":{OPERATOR_ALIAS}")));
    if changes && !through_operator {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "this URL is read-only: starting jobs, uploading and deleting go through the operator URL",
            "use the stack's ApiOperatorUrl with the ApiOperatorPolicy attached to your role",
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    /// The status of `method /x` invoked as `arn`.
    async fn status(method: Method, arn: Option<&str>) -> StatusCode {
        let app = axum::Router::new()
            .route("/x", get(|| async { "read" }).post(|| async { "written" }))
            .layer(axum::middleware::from_fn(operators_only));
        let mut request = Request::builder().method(method).uri("/x").body(Body::empty()).unwrap();
        if let Some(arn) = arn {
            let mut context = lambda_http::Context::default();
            context.invoked_function_arn = arn.to_string();
            request.extensions_mut().insert(context);
        }
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn only_the_operator_alias_changes_anything() {
        let plain = "arn:aws:lambda:eu-west-1:123456789012:function:ngbak-api";
        let operator = "arn:aws:lambda:eu-west-1:123456789012:function:ngbak-api:operator";
        let other_alias = "arn:aws:lambda:eu-west-1:123456789012:function:ngbak-api:operators";
        assert_eq!(status(Method::GET, Some(plain)).await, StatusCode::OK);
        assert_eq!(status(Method::POST, Some(plain)).await, StatusCode::FORBIDDEN);
        assert_eq!(status(Method::POST, Some(other_alias)).await, StatusCode::FORBIDDEN);
        assert_eq!(status(Method::POST, None).await, StatusCode::FORBIDDEN);
        assert_eq!(status(Method::DELETE, Some(plain)).await, StatusCode::FORBIDDEN);
        assert_eq!(status(Method::POST, Some(operator)).await, StatusCode::OK);
    }
}
