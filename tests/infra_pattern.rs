//! The restore rule in infra/template.yaml, checked with a real EventBridge pattern matcher
//! (LocalStack's TestEventPattern) against the files in events/.

mod common;

use common::*;
use serde_json::{json, Value};

/// The rule's pattern as the template defines it, for the bucket and prefix of events/.
fn template_pattern() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.tools/pytools/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: `make test` installs it (tests/servers/install.sh --with-deploy-tools)"
    );
    let out = std::process::Command::new(python)
        .current_dir(root)
        .args(["infra/restore_pattern.py", "ngbak-backups", "ngbak/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn matches(pattern: &str, event: &Value) -> bool {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    let client = aws_sdk_eventbridge::Client::new(&shared);
    client.test_event_pattern().event_pattern(pattern).event(event.to_string()).send().await.unwrap().result()
}

#[tokio::test]
async fn the_restore_rule_matches_tagged_archives_and_nothing_else() {
    let pattern = template_pattern();
    assert!(pattern.contains("Object Tags Added"), "{pattern}");
    assert!(matches(&pattern, &event("object-tags-added.json")).await, "a tagged archive must trigger a restore");

    assert!(!matches(&pattern, &event("object-tags-added-other-key.json")).await, "a tagged sidecar");
    assert!(!matches(&pattern, &event("scheduled.json")).await, "a scheduled event");
    let mut other_bucket = event("object-tags-added.json");
    other_bucket["detail"]["bucket"]["name"] = json!("someone-elses-bucket");
    assert!(!matches(&pattern, &other_bucket).await, "another bucket");
    let mut outside_prefix = event("object-tags-added.json");
    outside_prefix["detail"]["object"]["key"] = json!("elsewhere/snapshot_2026-11-23T03-00-00Z.ngbak");
    assert!(!matches(&pattern, &outside_prefix).await, "outside the prefix");
    let mut removed = event("object-tags-added.json");
    removed["detail-type"] = json!("Object Tags Deleted");
    assert!(!matches(&pattern, &removed).await, "tags removed");
}
