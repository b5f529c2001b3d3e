//! Progress: a bar on a terminal, nothing extra otherwise (the JSON logs say what happens).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// The tracked job's tracker (see [`track`]), captured where the progress starts.
    tracker: Option<std::sync::Arc<Tracker>>,
}

impl Progress {
    /// Shows a bar only when `wanted` and stderr is a terminal.
    pub fn new(label: &str, wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {bytes} ({bytes_per_sec}) {elapsed} {wide_msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Progress { bar, tracker: current() }
    }

    pub fn add(&self, bytes: u64) {
        if let Some(t) = &self.tracker {
            t.add_bytes(bytes);
        }
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    pub fn set_message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// What a job has done so far, for whoever watches it from elsewhere (the HTTP API's jobs): the
/// phase, the archive bytes moved, the entries and the records per backend. A job runs inside
/// [`track`]; the pipeline reports into the tracker of the task it runs in, if there is one.
#[derive(Debug, Default)]
pub struct Tracker {
    bytes: std::sync::atomic::AtomicU64,
    entries: std::sync::atomic::AtomicU64,
    phase: std::sync::Mutex<String>,
    records: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// A tracker's reading at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    /// What the job is doing (`verifying`, `safety backup`, `writing`, `reading back`, …).
    pub phase: String,
    /// Archive bytes written (backup) or read (verify, restore) so far.
    pub bytes: u64,
    /// Archive entries done so far.
    pub entries: u64,
    /// Records restored so far, per backend.
    pub records: std::collections::BTreeMap<String, u64>,
}

tokio::task_local! {
    static TRACKER: std::sync::Arc<Tracker>;
}

/// Runs `work` with `tracker` receiving its progress.
pub async fn track<F: std::future::Future>(tracker: std::sync::Arc<Tracker>, work: F) -> F::Output {
    TRACKER.scope(tracker, work).await
}

/// The tracker of the job this task runs, if it is tracked.
pub fn current() -> Option<std::sync::Arc<Tracker>> {
    TRACKER.try_with(|t| t.clone()).ok()
}

/// Says what the tracked job (if any) is doing now; its bytes and entries count from zero again
/// (a restore reads the archive once to prove it, once to write it).
pub fn phase(what: &str) {
    if let Some(t) = current() {
        *t.phase.lock().expect("phase lock") = what.to_string();
        t.bytes.store(0, std::sync::atomic::Ordering::Relaxed);
        t.entries.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One archive entry of `bytes` bytes done by the tracked job (if any).
pub fn entry_done(bytes: u64) {
    if let Some(t) = current() {
        t.add_bytes(bytes);
        t.entries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `records` more records of `backend` written by the tracked job (if any).
pub fn records_written(backend: &str, records: u64) {
    if let Some(t) = current() {
        *t.records.lock().expect("records lock").entry(backend.to_string()).or_default() += records;
    }
}

impl Tracker {
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        use std::sync::atomic::Ordering::Relaxed;
        Snapshot {
            phase: self.phase.lock().expect("phase lock").clone(),
            bytes: self.bytes.load(Relaxed),
            entries: self.entries.load(Relaxed),
            records: self.records.lock().expect("records lock").clone(),
        }
    }
}
