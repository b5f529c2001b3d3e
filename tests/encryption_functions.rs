//! Encrypted backups through the functions, on LocalStack: the backup function encrypts to a
//! recipient from its settings, the restore function reads its identity from Secrets Manager
//! (never from the event) when a tag fires it, and restores Redis exactly.

mod common;

use common::*;
use ngbak::lambda::{backup, restore};
use serde_json::json;
use std::time::Duration;

const SCHEDULED_ID: &str = "snapshot_2026-11-23T03-00-00Z";

#[tokio::test]
async fn the_restore_function_opens_an_encrypted_archive_with_its_identity_from_secrets_manager() {
    use age::secrecy::ExposeSecret;
    let made = age::x25519::Identity::generate();
    let recipient = made.to_public().to_string();
    let secret = json!({ "identity": made.to_string().expose_secret() }).to_string();
    let arn = create_secret("ngbak-identity", &secret).await;
    let bucket = new_bucket().await;
    let prefix = format!("ngenc_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;

    let out =
        backup::handle(&function_config(&bucket, &pattern, &["--encrypt-to", &recipient]), event("scheduled.json"))
            .await
            .unwrap();
    assert_eq!(out["encrypted_to"], json!([recipient]), "{out}");
    let stored =
        s3_client().await.get_object().bucket(&bucket).key(format!("ngbak/{SCHEDULED_ID}.ngbak")).send().await.unwrap();
    let bytes = stored.body.collect().await.unwrap().into_bytes();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "the stored archive is not encrypted");
    delete_pattern(&mut con, &pattern).await;

    // Without the identity the function refuses before writing; with it from the secret, it restores.
    let tag = |bucket: String| async move {
        let tag = aws_sdk_s3::types::Tag::builder().key("ngbak-restore").value("requested").build().unwrap();
        let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
        let key = format!("ngbak/{SCHEDULED_ID}.ngbak");
        s3_client().await.put_object_tagging().bucket(&bucket).key(key).tagging(tagging).send().await.unwrap();
    };
    let mut ev = event("object-tags-added.json");
    ev["detail"]["bucket"]["name"] = json!(bucket);
    tag(bucket.clone()).await;
    let err = restore::handle(&function_config(&bucket, &pattern, &[]), ev.clone(), Duration::from_secs(300))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("pass --identity"), "{err:#}");
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "a refused restore wrote");
    tag(bucket.clone()).await;
    let done = restore::handle(
        &function_config(&bucket, &pattern, &["--identity-secret-arn", &arn]),
        ev,
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 5_000);
    delete_pattern(&mut con, &pattern).await;
}
