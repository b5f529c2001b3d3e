//! The `ngbak` binary as operators and scripts run it: flags and variables, `--json` output, exit
//! codes, and secrets read from Secrets Manager ARNs (LocalStack's Secrets Manager).

mod common;

use common::*;

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    aws_sdk_secretsmanager::Client::new(&shared)
}

#[tokio::test]
async fn cli_backs_up_lists_verifies_and_restores_redis_whose_url_is_a_secret() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/cli");
    let prefix = format!("ngcli_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let arn = create_secret("ngbak-test", &serde_json::json!({ "url": redis_url() }).to_string()).await;
    let env = [("NGBAK_STORE", store.as_str()), ("REDIS_URL_SECRET_ARN", arn.as_str())];

    let backup = json_of(&ngbak(&["backup", "--redis-pattern", &pattern, "--json"], &env));
    let id = backup["backup_id"].as_str().expect("backup_id").to_string();
    assert_eq!(backup["backends"]["redis"]["stats"]["keys"], 13, "{backup}");
    assert_eq!(backup["archive_key"], format!("{id}.ngbak"), "keys are relative to the store's prefix");

    let listed = json_of(&ngbak(&["list", "--json"], &env));
    let ids: Vec<&str> = listed.as_array().expect("a list").iter().filter_map(|b| b["backup_id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()], "{listed}");

    let verified = json_of(&ngbak(&["verify", &id, "--json"], &env));
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["archive_sha256"], backup["sha256"]);

    delete_pattern(&mut con, &pattern).await;
    let restored = json_of(&ngbak(&["restore", &id, "--redis-pattern", &pattern, "--json"], &env));
    assert_eq!(restored["backends"]["redis"]["restored"]["keys"], 13, "{restored}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 1000);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn cli_fails_with_a_reason_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();

    let missing = ngbak(&["--store", store, "restore", "snapshot_2020-01-01T00-00-00Z"], &[]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("snapshot_2020-01-01T00-00-00Z"), "the error names the backup: {stderr}");

    let bad_id = ngbak(&["--store", store, "inspect", "../etc/passwd"], &[]);
    assert!(!bad_id.status.success());
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("[A-Za-z0-9_-]"));

    let no_arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ngbak-missing-secret";
    let kv = sample_workdir();
    let unreadable = ngbak(
        &["--store", store, "backup", "--kv-dir", kv.to_str().unwrap()],
        &[("NEO4J_URI", "bolt://127.0.0.1:1"), ("NEO4J_PASSWORD_SECRET_ARN", no_arn)],
    );
    let stderr = String::from_utf8_lossy(&unreadable.stderr);
    assert!(!unreadable.status.success());
    assert!(stderr.contains(no_arn) && stderr.contains("NEO4J_PASSWORD_SECRET_ARN"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a failed backup leaves nothing in the store");
}

#[tokio::test]
async fn a_secret_fills_only_what_is_not_given_directly() {
    use ngbak::config::BackendArgs;
    let plain = create_secret("ngbak-test", "qdrant-key-from-secret").await;
    let json = create_secret("ngbak-test", r#"{"username": "neo4j", "password": "pw-from-secret"}"#).await;
    let client = secrets_client().await;

    let mut backends = BackendArgs::default();
    backends.neo4j.neo4j_password_secret_arn = Some(json.clone());
    backends.qdrant.qdrant_api_key_secret_arn = Some(plain);
    backends.redis.redis_url = Some("redis://given".into());
    backends.redis.redis_url_secret_arn =
        Some("arn:aws:secretsmanager:us-east-1:000000000000:secret:never-read".into());
    ngbak::secrets::resolve_with(&client, &mut backends).await.unwrap();
    assert_eq!(backends.neo4j.neo4j_password.as_deref(), Some("pw-from-secret"), "a JSON secret gives its field");
    assert_eq!(
        backends.qdrant.qdrant_api_key.as_deref(),
        Some("qdrant-key-from-secret"),
        "a plain secret is the value"
    );
    assert_eq!(backends.redis.redis_url.as_deref(), Some("redis://given"), "a direct value wins; its ARN is not read");
}

/// One restore at a time per store: a CLI restore while another holds the store's restore lock is
/// refused, naming the holder; `--force` takes a stale lock over.
#[tokio::test]
async fn a_restore_is_refused_while_another_holds_the_store_lock_and_force_takes_it_over() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store = local_store(&store_dir);
    let summary = backup_sample(store.clone(), Default::default()).await.unwrap();
    let held = ngbak::store::lock::acquire(
        store.clone(),
        ngbak::store::lock::RESTORE_LOCK,
        "a restore function run",
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap()
    .unwrap();
    let target = dir.path().join("restored");
    let args = [
        "--store",
        store_dir.to_str().unwrap(),
        "restore",
        summary.backup_id.as_str(),
        "--kv-dir",
        target.to_str().unwrap(),
    ];
    let out = ngbak(&args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("another restore is running")
            && stderr.contains("a restore function run"),
        "{stderr}"
    );
    assert!(!target.exists(), "the refused restore wrote something");
    let out = ngbak(&[&args[..], &["--force"]].concat(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(target.join("kv_store_full_docs.json").exists());
    assert!(store.head(ngbak::store::lock::RESTORE_LOCK).await.unwrap().is_none(), "the lock was not released");
    drop(held);
}
