//! Signed backups in S3 through the functions: the backup function signs with a key it reads
//! from Secrets Manager (on LocalStack), the restore function trusts the public key only, and a
//! forged archive laid over the genuine one by someone who can write to the bucket is refused
//! when its tag fires the restore, with Redis untouched and the report naming the kind.

mod common;

use common::*;
use ngbak::lambda::{backup, restore};
use serde_json::json;
use std::time::Duration;

const PREFIX: &str = "ngbak";
const SCHEDULED_ID: &str = "snapshot_2026-11-23T03-00-00Z";

fn tags_added(bucket: &str) -> serde_json::Value {
    let mut ev = event("object-tags-added.json");
    ev["detail"]["bucket"]["name"] = json!(bucket);
    ev
}

async fn tag_for_restore(bucket: &str, key: &str) {
    let tag = aws_sdk_s3::types::Tag::builder().key("ngbak-restore").value("requested").build().unwrap();
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
    s3_client().await.put_object_tagging().bucket(bucket).key(key).tagging(tagging).send().await.unwrap();
}

async fn object(bucket: &str, key: &str) -> Vec<u8> {
    let out = s3_client().await.get_object().bucket(bucket).key(key).send().await.unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn put(bucket: &str, key: &str, bytes: Vec<u8>) {
    s3_client().await.put_object().bucket(bucket).key(key).body(bytes.into()).send().await.unwrap();
}

#[tokio::test]
async fn the_restore_function_refuses_a_forged_archive_and_restores_the_signed_one() {
    let made = ngbak::authenticity::generate(None).unwrap();
    let arn = create_secret("ngbak-signing", &json!({ "signing_key": made.secret_file }).to_string()).await;
    let bucket = new_bucket().await;
    let prefix = format!("ngsig_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let genuine = redis_snapshot(&mut con, &pattern).await;

    // The scheduled backup signs with the key from Secrets Manager.
    let backing_up = function_config(&bucket, &pattern, &["--signing-key-secret-arn", &arn]);
    let out = backup::handle(&backing_up, event("scheduled.json")).await.unwrap();
    assert_eq!(
        (out["status"].as_str(), out["signed_by"].as_str()),
        (Some("completed"), Some(made.id.as_str())),
        "{out}"
    );
    let keys: Vec<String> = ["ngbak", "manifest.json", "manifest.json.minisig"]
        .iter()
        .map(|suffix| format!("{PREFIX}/{SCHEDULED_ID}.{suffix}"))
        .collect();
    let mut genuine_objects = Vec::new();
    for key in &keys {
        genuine_objects.push(object(&bucket, key).await);
    }

    // Someone with write access to the bucket poisons one key, backs it up under the same id with
    // ngbak itself (every hash consistent), and lays archive and sidecar over the genuine ones.
    let poisoned_key = format!("{prefix}:full_docs:doc-1");
    redis::cmd("SET").arg(&poisoned_key).arg("{\"content\": \"poisoned\"}").query_async::<()>(&mut con).await.unwrap();
    let attacker_store = format!("s3://{bucket}/attacker");
    let forged = ngbak(
        &[
            "--store",
            &attacker_store,
            "backup",
            "--redis-url",
            &redis_url(),
            "--redis-pattern",
            &pattern,
            "--id",
            SCHEDULED_ID,
        ],
        &[],
    );
    assert!(forged.status.success(), "{}", String::from_utf8_lossy(&forged.stderr));
    for (key, suffix) in keys.iter().zip(["ngbak", "manifest.json"]) {
        put(&bucket, key, object(&bucket, &format!("attacker/{SCHEDULED_ID}.{suffix}")).await).await;
    }
    // What the live Redis holds now must survive the refused restore, byte for byte.
    delete_pattern(&mut con, &pattern).await;
    redis::cmd("SET")
        .arg(format!("{prefix}:live"))
        .arg("written after the backup")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let live = redis_snapshot(&mut con, &pattern).await;

    let trusted = made.public_base64.clone();
    for mode in ["merge", "replace"] {
        let restoring = function_config(&bucket, &pattern, &["--trusted-key", &trusted, "--kv-mode", mode]);
        tag_for_restore(&bucket, &keys[0]).await;
        let err = restore::handle(&restoring, tags_added(&bucket), Duration::from_secs(300)).await.unwrap_err();
        let answer = ngbak::lambda::error_response(&err);
        assert_eq!(answer.error_type, "Unauthenticated", "{err:#}");
        assert!(answer.error_message.contains("does not match its sidecar"), "{}", answer.error_message);
        assert_eq!(redis_snapshot(&mut con, &pattern).await, live, "a refused restore ({mode}) changed Redis");
        let report: serde_json::Value =
            serde_json::from_slice(&object(&bucket, &format!("{PREFIX}/{SCHEDULED_ID}.restore-report.json")).await)
                .unwrap();
        assert_eq!(report["kind"], "Unauthenticated", "{report}");
    }

    // The genuine backup put back: the same function restores it, and says who signed it. Given
    // the signing key too (the template's SignSafetyBackups), it signs its safety backup.
    for (key, bytes) in keys.iter().zip(genuine_objects) {
        put(&bucket, key, bytes).await;
    }
    let restoring = function_config(
        &bucket,
        &pattern,
        &["--trusted-key", &trusted, "--kv-mode", "replace", "--signing-key-secret-arn", &arn],
    );
    tag_for_restore(&bucket, &keys[0]).await;
    let done = restore::handle(&restoring, tags_added(&bucket), Duration::from_secs(300)).await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["report"]["signature"], json!({"status": "verified", "key_id": made.id}), "{done}");
    assert_same_keys(&genuine, &redis_snapshot(&mut con, &pattern).await, 5_000);
    let safety: ngbak::id::BackupId =
        done["report"]["safety_backup"].as_str().expect("a safety backup").parse().unwrap();
    let store = s3_store(&bucket, PREFIX).await;
    let trust = ngbak::authenticity::AuthArgs { trusted_keys: vec![trusted.clone()], ..Default::default() }
        .trust()
        .await
        .unwrap();
    let (_, signed) = ngbak::pipeline::restore::load_trusted(store.as_ref(), &safety, &trust).await.unwrap();
    assert_eq!(signed, ngbak::authenticity::Provenance::Verified { key_id: made.id.clone() });
    delete_pattern(&mut con, &pattern).await;
}
