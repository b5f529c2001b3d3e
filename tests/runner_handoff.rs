//! Growing past Lambda, end to end against LocalStack S3 and the real Redis: an archive too big
//! for the restore function's remaining time is tagged, the function hands it off (RunTask, sent
//! by aws-sdk-ecs to a recording stand-in for the ECS API), and the "task" - the `ngbak` binary
//! started here with the task's environment and the recorded command - restores, writes the
//! report and sets the tag to `completed`.

mod common;
#[path = "support/ecs_standin.rs"]
mod ecs_standin;

use clap::Parser;
use common::*;
use ecs_standin::{EcsStandIn, TASK_ARN};
use ngbak::handoff::{history, RunnerConfig};
use ngbak::id::BackupId;
use ngbak::lambda::{backup, restore, FunctionConfig};
use serde_json::{json, Value};
use std::time::Duration;

const PREFIX: &str = "ngbak";

fn tagged(bucket: &str, key: &str) -> Value {
    let mut ev = event("object-tags-added.json");
    ev["detail"]["bucket"]["name"] = json!(bucket);
    ev["detail"]["object"]["key"] = json!(key);
    ev
}

async fn tag(bucket: &str, key: &str) -> Option<String> {
    let out = s3_client().await.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
    out.tag_set().iter().find(|t| t.key() == "ngbak-restore").map(|t| t.value().to_string())
}

async fn request_restore(bucket: &str, key: &str) {
    let tag = aws_sdk_s3::types::Tag::builder().key("ngbak-restore").value("requested").build().unwrap();
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
    s3_client().await.put_object_tagging().bucket(bucket).key(key).tagging(tagging).send().await.unwrap();
}

#[tokio::test]
async fn a_restore_too_big_for_lambda_is_handed_to_the_task_which_completes_it() {
    // The function's hand-off settings, as the template sets them; ECS is the stand-in.
    let ecs = EcsStandIn::default();
    let ecs_url = ecs.start().await;
    for (k, v) in [
        ("AWS_ENDPOINT_URL_ECS", ecs_url.as_str()),
        ("NGBAK_RUNNER", "auto"),
        ("NGBAK_ECS_CLUSTER", "ngbak-test"),
        ("NGBAK_ECS_TASK_DEFINITION", "ngbak-test-task"),
        ("NGBAK_ECS_SUBNETS", "subnet-0a,subnet-0b"),
        ("NGBAK_ECS_SECURITY_GROUPS", "sg-0c"),
        // About 10 bytes/s until a restore has been measured: the archive below needs minutes.
        ("NGBAK_ASSUMED_RESTORE_MIBPS", "0.00001"),
    ] {
        std::env::set_var(k, v);
    }

    let bucket = new_bucket().await;
    let prefix = format!("ngh_{}", unique());
    let pattern = format!("{prefix}:*");
    let store_url = format!("s3://{bucket}/{PREFIX}");
    let config = FunctionConfig::try_parse_from([
        "test",
        "--store",
        &store_url,
        "--redis-url",
        &redis_url(),
        "--redis-pattern",
        &pattern,
    ])
    .unwrap();
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let out = backup::handle(&config, json!({ "backup_id": format!("handoff_{}", unique()) })).await.unwrap();
    assert_eq!(out["status"], "completed", "{out}");
    let id: BackupId = out["backup_id"].as_str().unwrap().parse().unwrap();
    let key = format!("{PREFIX}/{}", id.archive_key());
    delete_pattern(&mut con, &pattern).await;

    // The decision, from the archive's real size and the assumed rate.
    let store = s3_store(&bucket, PREFIX).await;
    let bytes = history::archive_bytes(store.as_ref(), &id).await.unwrap();
    let runner = RunnerConfig::from_env().unwrap();
    let fits = |left| history_decision(&runner, &store, &id, left);
    assert!(bytes > 1000, "archive of {bytes} bytes: at 10 B/s it needs {} s", bytes / 10);
    assert!(fits(Duration::from_secs(24 * 3600)).await.is_none(), "a day is enough");
    let why = fits(Duration::from_secs(60)).await.expect("60 s is not enough");
    assert!(why.contains("60 s left"), "{why}");

    // Tag → the function hands off, and answers with the task.
    request_restore(&bucket, &key).await;
    let answer = restore::handle(&config, tagged(&bucket, &key), Duration::from_secs(60)).await.unwrap();
    assert_eq!(answer["status"], "handed_off", "{answer}");
    assert_eq!(answer["task_arn"], TASK_ARN);
    assert_eq!(tag(&bucket, &key).await.as_deref(), Some("running"), "the function marks it taken");
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "the function restored nothing itself");

    // What RunTask asked ECS for, as the SDK sent it.
    let calls = ecs.run_task_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["cluster"], "ngbak-test");
    assert_eq!(call["taskDefinition"], "ngbak-test-task");
    assert_eq!(call["launchType"], "FARGATE");
    assert_eq!(call["count"], 1);
    let vpc = &call["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(vpc["subnets"], json!(["subnet-0a", "subnet-0b"]));
    assert_eq!(vpc["securityGroups"], json!(["sg-0c"]));
    assert_eq!(vpc["assignPublicIp"], "DISABLED");
    let container = &call["overrides"]["containerOverrides"][0];
    assert_eq!(container["name"], "ngbak");
    assert_eq!(container["command"], json!(["job", "restore", id.as_str()]));

    // A second delivery of the tag event finds the tag moved on, and starts no second task.
    let again = restore::handle(&config, tagged(&bucket, &key), Duration::from_secs(60)).await.unwrap();
    assert_eq!(again["status"], "ignored", "{again}");
    assert_eq!(ecs.run_task_calls().len(), 1);

    // The task: the same binary, with the task definition's environment (the functions' settings)
    // plus the overrides RunTask carried, and nothing else.
    let args: Vec<&str> = container["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let overrides: Vec<(&str, &str)> = container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["name"].as_str().unwrap(), kv["value"].as_str().unwrap()))
        .collect();
    let url = redis_url();
    let definition = [("NGBAK_STORE", store_url.as_str()), ("REDIS_URL", &url), ("NGBAK_REDIS_PATTERNS", &pattern)];
    let done = task(&args, &[&definition[..], &overrides[..]].concat());
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "task failed: {}\n{stdout}", String::from_utf8_lossy(&done.stderr));

    // Report, tag, data and metric lines, as the function would have left them.
    let report: Value =
        serde_json::from_slice(&ngbak::store::get_bytes(store.as_ref(), &id.report_key()).await.unwrap()).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(tag(&bucket, &key).await.as_deref(), Some("completed"));
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 2000);
    assert!(stdout.contains("\"RestoreSuccess\":1.0"), "the task's log lacks the EMF metric line:\n{stdout}");
    assert_eq!(ecs.run_task_calls().len(), 1, "the task never hands off again");

    // That restore is now measured: the next decision uses its rate, not the assumed one.
    let rate = history::measured_restore_rate(store.as_ref()).await.unwrap().expect("a measured rate");
    assert!(rate > 1000.0, "measured {rate} B/s");
    assert!(fits(Duration::from_secs(60)).await.is_none(), "at the measured rate the archive fits in 60 s");

    // A backup too long for the time left (the last one's duration, x 1.5, + 30 s > 20 s) is handed
    // off too, and the task makes it.
    let answer = backup::handle_within(&config, json!({ "backup_id": "handoff_backup" }), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(answer["status"], "handed_off", "{answer}");
    let calls = ecs.run_task_calls();
    assert_eq!(calls.len(), 2);
    let command = &calls[1]["overrides"]["containerOverrides"][0]["command"];
    assert_eq!(command, &json!(["job", "backup", "--id", "handoff_backup"]));
    let args: Vec<&str> = command.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let done = task(&args, &definition);
    assert!(done.status.success(), "backup task failed: {}", String::from_utf8_lossy(&done.stderr));
    let backed_up =
        ngbak::pipeline::restore::load_sidecar(store.as_ref(), &"handoff_backup".parse().unwrap()).await.unwrap();
    assert_eq!(backed_up.manifest.backends["redis"].stats["keys"], 13);
}

/// The task's environment: AWS access to the test S3 server, plus the given settings.
fn task(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ngbak"));
    cmd.env_clear().args(args);
    for var in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        cmd.env(var, std::env::var(var).unwrap());
    }
    cmd.envs(env.iter().copied()).output().unwrap()
}

#[tokio::test]
async fn a_failing_task_exits_non_zero_after_writing_the_report_and_the_failed_tag() {
    let bucket = new_bucket().await;
    let store_url = format!("s3://{bucket}/{PREFIX}");
    let prefix = format!("ngf_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let settings = [("NGBAK_STORE", store_url.as_str()), ("NGBAK_REDIS_PATTERNS", pattern.as_str())];
    let url = redis_url();
    let backed_up = task(&["job", "backup", "--id", "handoff_fails"], &[settings[0], settings[1], ("REDIS_URL", &url)]);
    assert!(backed_up.status.success(), "{}", String::from_utf8_lossy(&backed_up.stderr));
    assert!(String::from_utf8_lossy(&backed_up.stdout).contains("\"BackupSuccess\":1.0"));
    let key = format!("{PREFIX}/handoff_fails.ngbak");
    request_restore(&bucket, &key).await;

    // Nothing listens on port 1: the restore fails after verification.
    let failed =
        task(&["job", "restore", "handoff_fails"], &[settings[0], settings[1], ("REDIS_URL", "redis://127.0.0.1:1")]);
    assert!(!failed.status.success(), "a failed job must exit non-zero");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("handoff_fails"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(String::from_utf8_lossy(&failed.stdout).contains("\"Failures\":1.0"), "the failure metric line");
    let store = s3_store(&bucket, PREFIX).await;
    let id: BackupId = "handoff_fails".parse().unwrap();
    let report: Value =
        serde_json::from_slice(&ngbak::store::get_bytes(store.as_ref(), &id.report_key()).await.unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(tag(&bucket, &key).await.as_deref(), Some("failed"));
    delete_pattern(&mut con, &pattern).await;
}

async fn history_decision(
    runner: &RunnerConfig,
    store: &std::sync::Arc<dyn ngbak::store::ObjectStore>,
    id: &BackupId,
    left: Duration,
) -> Option<String> {
    ngbak::handoff::restore_decision(runner, store.as_ref(), id, left).await.unwrap()
}
