//! The events the functions accept, and what each one asks for.

use crate::id::BackupId;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The EventBridge envelope (scheduled events and S3 events share it).
#[derive(Debug, Deserialize)]
pub struct EventBridge {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub id: Option<String>,
    pub time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub detail: Value,
}

/// A direct invocation of the backup function (also the input EventBridge Scheduler sends).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectBackup {
    pub backup_id: Option<BackupId>,
    /// Only these configured backends.
    #[serde(default)]
    pub backends: Vec<String>,
    /// The schedule's time (`<aws.scheduler.scheduled-time>`); the id is derived from it, so a
    /// second delivery of the same schedule finds its backup already there.
    pub scheduled_time: Option<DateTime<Utc>>,
}

/// What the backup function was asked to do.
#[derive(Debug, PartialEq)]
pub struct BackupRequest {
    pub backup_id: Option<BackupId>,
    pub backends: Vec<String>,
    /// True when the id came from a schedule time (duplicates are then expected and benign).
    pub from_schedule: bool,
}

pub fn parse_backup_event(event: &Value) -> Result<BackupRequest> {
    if event.get("detail-type").is_some() {
        let eb: EventBridge = serde_json::from_value(event.clone()).context("malformed EventBridge event")?;
        if eb.detail_type != "Scheduled Event" {
            bail!("the backup function takes scheduled events, not {:?} from {}", eb.detail_type, eb.source);
        }
        let time = eb.time.context("scheduled event without a time")?;
        return Ok(BackupRequest {
            backup_id: Some(BackupId::for_time(time)),
            backends: Vec::new(),
            from_schedule: true,
        });
    }
    let direct: DirectBackup = serde_json::from_value(event.clone()).context(
        "malformed backup request: expected an EventBridge scheduled event or {\"backup_id\"?, \"backends\"?, \"scheduled_time\"?}",
    )?;
    let from_schedule = direct.backup_id.is_none() && direct.scheduled_time.is_some();
    let backup_id = direct.backup_id.or(direct.scheduled_time.map(BackupId::for_time));
    Ok(BackupRequest { backup_id, backends: direct.backends, from_schedule })
}

/// What the restore function was asked to do.
#[derive(Debug, PartialEq)]
pub enum RestoreRequest {
    /// An archive was tagged: restore it if the tag says so.
    Tagged { bucket: String, key: String },
    /// A direct invocation naming a backup.
    Direct { backup_id: BackupId },
    /// Anything else: acknowledged and ignored.
    Ignore(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectRestore {
    backup_id: BackupId,
}

pub fn parse_restore_event(event: &Value) -> Result<RestoreRequest> {
    if event.get("detail-type").is_some() {
        let eb: EventBridge = serde_json::from_value(event.clone()).context("malformed EventBridge event")?;
        if eb.source != "aws.s3" || eb.detail_type != "Object Tags Added" {
            return Ok(RestoreRequest::Ignore(format!(
                "{:?} from {} is not a restore trigger",
                eb.detail_type, eb.source
            )));
        }
        let bucket = eb.detail.pointer("/bucket/name").and_then(Value::as_str);
        let key = eb.detail.pointer("/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            bail!("malformed Object Tags Added event: detail.bucket.name and detail.object.key are required");
        };
        return Ok(RestoreRequest::Tagged { bucket: bucket.into(), key: key.into() });
    }
    let direct: DirectRestore = serde_json::from_value(event.clone())
        .context("malformed restore request: expected an S3 Object Tags Added event or {\"backup_id\": \"...\"}")?;
    Ok(RestoreRequest::Direct { backup_id: direct.backup_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_events_name_the_backup_after_their_time() {
        let ev = json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-23T03:00:00Z","detail":{}});
        let req = parse_backup_event(&ev).unwrap();
        assert_eq!(req.backup_id.unwrap().as_str(), "snapshot_2026-11-23T03-00-00Z");
        assert!(req.from_schedule);
        let direct = parse_backup_event(&json!({"backends": ["redis"]})).unwrap();
        assert_eq!(direct, BackupRequest { backup_id: None, backends: vec!["redis".into()], from_schedule: false });
    }

    #[test]
    fn malformed_events_are_refused_clearly() {
        let err = parse_backup_event(&json!({"backup_id": "../etc"})).unwrap_err();
        assert!(format!("{err:#}").contains("invalid backup id"), "{err:#}");
        assert!(parse_backup_event(&json!({"bakup_id": "x"})).is_err());
        assert!(parse_restore_event(&json!({"detail-type":"Object Tags Added","source":"aws.s3","detail":{}})).is_err());
        assert!(matches!(
            parse_restore_event(&json!({"detail-type":"Object Tags Removed","source":"aws.s3","detail":{}})).unwrap(),
            RestoreRequest::Ignore(_)
        ));
    }
}
