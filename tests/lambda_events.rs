//! The Lambda handlers driven by the files in `events/`, and the real trigger path:
//! tag the archive in S3 → EventBridge rule → SQS queue → restore handler, exactly once.

mod common;

use clap::Parser;
use common::*;
use ngbak::lambda::{backup, restore, FunctionConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const PREFIX: &str = "ngbak";
const SCHEDULED_ID: &str = "snapshot_2026-11-23T03-00-00Z";

fn config(bucket: &str, pattern: &str) -> FunctionConfig {
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").ok(),
        Some(s3_endpoint()),
        "the functions find S3 through AWS_ENDPOINT_URL, which `make test` sets"
    );
    let store = format!("s3://{bucket}/{PREFIX}");
    FunctionConfig::try_parse_from(["test", "--store", &store, "--redis-url", &redis_url(), "--redis-pattern", pattern])
        .unwrap()
}

/// `events/object-tags-added.json` pointed at `key` in `bucket`.
fn tags_added(file: &str, bucket: &str, key: Option<&str>) -> Value {
    let mut ev = event(file);
    ev["detail"]["bucket"]["name"] = json!(bucket);
    if let Some(key) = key {
        ev["detail"]["object"]["key"] = json!(key);
    }
    ev
}

async fn set_tag(bucket: &str, key: &str, value: &str) {
    let tag = aws_sdk_s3::types::Tag::builder().key("ngbak-restore").value(value).build().unwrap();
    let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
    s3_client().await.put_object_tagging().bucket(bucket).key(key).tagging(tagging).send().await.unwrap();
}

async fn tags(bucket: &str, key: &str) -> BTreeMap<String, String> {
    let out = s3_client().await.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
    out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

fn status(result: &anyhow::Result<Value>) -> String {
    match result {
        Ok(v) => v["status"].as_str().unwrap_or("?").to_string(),
        Err(e) => format!("error: {e:#}"),
    }
}

/// Seeds Redis, runs the scheduled backup, then empties Redis so a restore is observable.
async fn backed_up(bucket: &str) -> (FunctionConfig, String, BTreeMap<Vec<u8>, KeyState>) {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let config = config(bucket, &pattern);
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let out = backup::handle(&config, event("scheduled.json")).await.unwrap();
    assert_eq!(out["status"], "completed");
    assert_eq!(out["backup_id"], SCHEDULED_ID);
    assert_eq!(out["backends"]["redis"]["stats"]["keys"], 13);
    delete_pattern(&mut con, &pattern).await;
    (config, pattern, before)
}

#[tokio::test]
async fn scheduled_event_backs_up_once_even_when_delivered_twice() {
    let bucket = new_bucket().await;
    let (config, _, _) = backed_up(&bucket).await;
    let again = backup::handle(&config, event("scheduled.json")).await.unwrap();
    assert_eq!(again["status"], "duplicate");
    let scheduler = backup::handle(&config, event("scheduler.json")).await.unwrap();
    assert_eq!(scheduler["status"], "duplicate", "the Scheduler input names the same schedule time");
    let mut keys = bucket_keys(&bucket).await;
    keys.sort();
    assert_eq!(keys, vec![format!("{PREFIX}/{SCHEDULED_ID}.manifest.json"), format!("{PREFIX}/{SCHEDULED_ID}.ngbak")]);

    let direct = backup::handle(&config, event("backup-direct.json")).await;
    assert!(format!("{:#}", direct.unwrap_err()).contains("\"jsonkv\" was asked for but is not configured"));
    let malformed = backup::handle(&config, json!({"backup_id": "a/../b"})).await.unwrap_err();
    assert!(format!("{malformed:#}").contains("invalid backup id"));
}

#[tokio::test]
async fn tag_events_restore_only_when_requested() {
    let bucket = new_bucket().await;
    let (config, pattern, before) = backed_up(&bucket).await;
    let key = format!("{PREFIX}/{SCHEDULED_ID}.ngbak");
    let event = tags_added("object-tags-added.json", &bucket, None);
    assert_eq!(event["detail"]["object"]["key"], key, "the event file names the scheduled backup");
    let run = || restore::handle(&config, event.clone(), Duration::from_secs(60));

    assert_eq!(status(&run().await), "ignored", "no tag yet");
    set_tag(&bucket, &key, "later").await;
    assert_eq!(status(&run().await), "ignored", "another tag value");
    let other = tags_added("object-tags-added-other-key.json", &bucket, None);
    assert_eq!(status(&restore::handle(&config, other, Duration::from_secs(60)).await), "ignored", "not an archive");
    let foreign = tags_added("object-tags-added.json", "some-other-bucket", None);
    assert_eq!(status(&restore::handle(&config, foreign, Duration::from_secs(60)).await), "ignored", "another bucket");
    let mut con = redis().await;
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "an ignored event restored");

    set_tag(&bucket, &key, "requested").await;
    let done = run().await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 5000);
    assert_eq!(tags(&bucket, &key).await["ngbak-restore"], "completed");
    let report = s3_client()
        .await
        .get_object()
        .bucket(&bucket)
        .key(format!("{PREFIX}/{SCHEDULED_ID}.restore-report.json"))
        .send()
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&report.body.collect().await.unwrap().to_vec()).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["report"]["backends"]["redis"]["restored"]["keys"], 13);
    assert_eq!(status(&run().await), "ignored", "the same event again after completion");

    let direct = restore::handle(&config, event_with_id(SCHEDULED_ID), Duration::from_secs(60)).await.unwrap();
    assert_eq!(direct["status"], "completed");
    delete_pattern(&mut con, &pattern).await;
}

fn event_with_id(id: &str) -> Value {
    let mut ev = event("restore-direct.json");
    ev["backup_id"] = json!(id);
    ev
}

#[tokio::test]
async fn two_deliveries_at_once_restore_exactly_once() {
    let bucket = new_bucket().await;
    let (config, pattern, before) = backed_up(&bucket).await;
    let key = format!("{PREFIX}/{SCHEDULED_ID}.ngbak");
    set_tag(&bucket, &key, "requested").await;
    let event = tags_added("object-tags-added.json", &bucket, None);
    let (a, b, c) = tokio::join!(
        restore::handle(&config, event.clone(), Duration::from_secs(60)),
        restore::handle(&config, event.clone(), Duration::from_secs(60)),
        restore::handle(&config, event.clone(), Duration::from_secs(60)),
    );
    let mut statuses = vec![status(&a), status(&b), status(&c)];
    statuses.sort();
    assert_eq!(statuses, vec!["completed", "ignored", "ignored"]);
    assert_same_keys(&before, &redis_snapshot(&mut redis().await, &pattern).await, 5000);
    assert!(!bucket_keys(&bucket).await.iter().any(|k| k.ends_with(".lock")), "a lock was left behind");
    delete_pattern(&mut redis().await, &pattern).await;
}

/// Creates the EventBridge wiring the deployment has: bucket notifications to EventBridge, and
/// a rule for this bucket's `Object Tags Added` events that delivers to an SQS queue.
async fn wire_events(bucket: &str) -> (aws_sdk_sqs::Client, String) {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    let notification = aws_sdk_s3::types::NotificationConfiguration::builder()
        .event_bridge_configuration(aws_sdk_s3::types::EventBridgeConfiguration::builder().build())
        .build();
    s3_client()
        .await
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(notification)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&shared);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{bucket}-restores"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let events = aws_sdk_eventbridge::Client::new(&shared);
    let pattern = json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Tags Added"],
        "detail": { "bucket": { "name": [bucket] }, "object": { "key": [{ "suffix": ".ngbak" }] } }
    });
    let rule = format!("{bucket}-restore");
    events.put_rule().name(&rule).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("restore-queue").arn(queue_arn).build().unwrap();
    events.put_targets().rule(&rule).targets(target).send().await.unwrap();
    (sqs, queue_url)
}

/// Every event delivered to the queue within `wait`.
async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message().queue_url(queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    out
}

#[tokio::test]
async fn tagging_in_s3_reaches_the_restore_function_through_eventbridge_exactly_once() {
    if std::env::var("NGBAK_TEST_S3_SERVER").as_deref() == Ok("moto") {
        eprintln!(
            "NOTE: running against moto, which emits extra Object Tags Added events; the handler must ignore them"
        );
    }
    let bucket = new_bucket().await;
    let (sqs, queue_url) = wire_events(&bucket).await;
    let (config, pattern, before) = backed_up(&bucket).await;
    let key = format!("{PREFIX}/{SCHEDULED_ID}.ngbak");
    assert!(drain(&sqs, &queue_url, Duration::from_secs(1))
        .await
        .iter()
        .all(|e| e["detail"]["object"]["key"] != key || e["detail-type"] != "Object Tags Added"));

    set_tag(&bucket, &key, "requested").await;
    let delivered = drain(&sqs, &queue_url, Duration::from_secs(4)).await;
    assert!(!delivered.is_empty(), "no Object Tags Added event reached the queue");
    let ev = &delivered[0];
    assert_eq!(ev["detail-type"], "Object Tags Added");
    assert_eq!(ev["detail"]["object"]["key"], key);

    // At-least-once delivery: the same event twice, at the same time.
    let (a, b) = tokio::join!(
        restore::handle(&config, ev.clone(), Duration::from_secs(60)),
        restore::handle(&config, ev.clone(), Duration::from_secs(60)),
    );
    let mut statuses = vec![status(&a), status(&b)];
    for extra in &delivered[1..] {
        statuses.push(status(&restore::handle(&config, extra.clone(), Duration::from_secs(60)).await));
    }
    // The function's own tag changes (running, completed) come back as events too.
    let own = drain(&sqs, &queue_url, Duration::from_secs(4)).await;
    assert!(!own.is_empty(), "the function's own tag changes should fire events as well");
    for e in own {
        statuses.push(status(&restore::handle(&config, e, Duration::from_secs(60)).await));
    }
    assert_eq!(statuses.iter().filter(|s| *s == "completed").count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| s == "completed" || s == "ignored"), "{statuses:?}");
    assert_same_keys(&before, &redis_snapshot(&mut redis().await, &pattern).await, 10_000);
    assert_eq!(tags(&bucket, &key).await["ngbak-restore"], "completed");
    delete_pattern(&mut redis().await, &pattern).await;
}

/// The functions check every configured backend before they start: a backend that is down fails
/// the job up front, named by host and port, with nothing stored and nothing written.
#[tokio::test]
async fn a_backend_that_is_down_fails_both_functions_before_anything_is_stored_or_written() {
    let bucket = new_bucket().await;
    let (config, pattern, _) = backed_up(&bucket).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut down = config.clone();
    down.backends.neo4j.neo4j_uri = Some(format!("bolt://127.0.0.1:{closed}"));
    let before = bucket_keys(&bucket).await;

    let err = backup::handle(&down, json!({ "backup_id": "snapshot_2026-11-24T00-00-00Z" })).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("preflight failed") && text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert_eq!(bucket_keys(&bucket).await, before, "a backup that could not start stored something");

    let err = restore::handle(&down, event_with_id(SCHEDULED_ID), Duration::from_secs(60)).await.unwrap_err();
    assert!(format!("{err:#}").contains("preflight failed"), "{err:#}");
    let mut con = redis().await;
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "the restore wrote into Redis");
    let report = ngbak::store::get_bytes(
        s3_store(&bucket, PREFIX).await.as_ref(),
        &format!("{SCHEDULED_ID}.restore-report.json"),
    )
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(report["error"].as_str().unwrap().contains(&format!("127.0.0.1:{closed}")), "{report}");
}
