//! Secret rotation: a warm Lambda function read its Redis URL from Secrets Manager at cold
//! start; the secret is rotated; the next backup is refused with the old password, reads the
//! secret again and succeeds — and without a change it fails with the refusal, once.

mod common;

use common::*;
use ngbak::lambda::{backup, with_rotation, FunctionConfig};

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run under tests/servers/with-servers.sh"))
}

async fn secrets() -> aws_sdk_secretsmanager::Client {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    aws_sdk_secretsmanager::Client::new(&shared)
}

#[tokio::test]
async fn a_rotated_redis_password_is_read_again_once_the_old_one_is_refused() {
    let good = required("NGBAK_TEST_REDISS_URL");
    let stale = good.replace("ngbak-tls-pw-4711", "stale-password-before-rotation");
    let client = secrets().await;
    let arn = client
        .create_secret()
        .name(format!("ngbak-rotation-{}", unique()))
        .secret_string(serde_json::json!({ "url": stale }).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/rotation");
    let pattern = format!("ngrot_{}:*", unique());
    let ca = required("NGBAK_TEST_CA_FILE");
    let args =
        ["test", "--store", &store, "--redis-url-secret-arn", &arn, "--redis-pattern", &pattern, "--ca-file", &ca];
    let mut config = <FunctionConfig as clap::Parser>::try_parse_from(args).unwrap();
    config.net.apply().unwrap();
    ngbak::secrets::resolve_with(&client, &mut config.backends).await.unwrap();
    let config = tokio::sync::RwLock::new(config);
    let run = || {
        with_rotation(
            &config,
            |c| async move { backup::handle(&c, serde_json::json!({ "backends": ["redis"] })).await },
        )
    };

    let refused = run().await.expect_err("the stale password is refused and the secret has not changed");
    assert!(ngbak::secrets::is_auth_failure(&refused), "{refused:#}");

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::json!({ "url": good }).to_string())
        .send()
        .await
        .unwrap();
    let out = run().await.expect("after rotation the secret is read again and the backup succeeds");
    assert_eq!(out["status"], "completed", "{out}");
    assert!(!format!("{out}").contains("ngbak-tls-pw-4711"));
}
