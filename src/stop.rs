//! Clean stops. A signal (SIGINT from Ctrl-C, SIGTERM from an ECS task stop or Lambda's
//! shutdown), a job's own deadline (`--max-duration`, the Lambda's remaining time) or a lock that
//! another run took over asks the running job to stop. Jobs watch for it with [`or_stop`] where
//! dropping the work in hand is safe, and then take their ordinary failure path: the upload is
//! aborted, temporary data removed, the lock released and a partial restore reported. So a stop
//! is a failure with a known cause, never a process that vanishes mid-write. A second signal
//! exits at once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The job was asked to stop; [`Stopped::exit_code`] is what the process should exit with.
#[derive(Debug, thiserror::Error)]
#[error("stopped: {reason}")]
pub struct Stopped {
    pub reason: String,
    signal: Option<i32>,
}

impl Stopped {
    /// 128 + the signal's number for a signal (the shell's convention), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        self.signal.map(|s| (128 + s) as u8).unwrap_or(1)
    }
}

/// One job's stop request: the token, its deadline, and, once cancelled, why.
#[derive(Clone)]
struct Request {
    token: CancellationToken,
    deadline: Option<Instant>,
    why: Arc<OnceLock<(String, Option<i32>)>>,
}

impl Request {
    fn new(token: CancellationToken, deadline: Option<Instant>) -> Self {
        Request { token, deadline, why: Arc::new(OnceLock::new()) }
    }

    fn cancel(&self, reason: String, signal: Option<i32>) {
        let _ = self.why.set((reason, signal));
        self.token.cancel();
    }
}

/// Signals stop every job of the process; deadlines only the job they belong to (a warm Lambda
/// runs one invocation after another in one process).
static PROCESS: LazyLock<Request> = LazyLock::new(|| Request::new(CancellationToken::new(), None));
static CURRENT: LazyLock<Mutex<Request>> = LazyLock::new(|| Mutex::new(PROCESS.clone()));

fn current() -> Request {
    CURRENT.lock().expect("stop state").clone()
}

/// Starts a job: from now on [`or_stop`] also stops it when `deadline` passes. Dropping the
/// returned guard ends the job's deadline.
pub fn begin_job(deadline: Option<Duration>, what: &str) -> JobGuard {
    let request = Request::new(PROCESS.token.child_token(), deadline.map(|d| Instant::now() + d));
    let previous = std::mem::replace(&mut *CURRENT.lock().expect("stop state"), request.clone());
    let timer = deadline.map(|d| {
        let request = request.clone();
        let what = what.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            tracing::warn!("{what} reached its time limit of {} s: stopping it cleanly", d.as_secs());
            request.cancel(format!("{what} reached its time limit of {} s", d.as_secs()), None);
        })
    });
    JobGuard { timer, previous: Some(previous) }
}

/// The deadline to give a job that must be done within `time_left` and needs `margin` after
/// stopping (to report, tag, release): never more than a quarter of the time is kept back.
pub fn deadline_within(time_left: Duration, margin: Duration) -> Duration {
    time_left.saturating_sub(margin.min(time_left / 4))
}

/// Ends a job's deadline when dropped, and makes the job it was started in current again (a
/// container task's handler runs inside the CLI's job).
pub struct JobGuard {
    timer: Option<tokio::task::JoinHandle<()>>,
    previous: Option<Request>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        if let Some(previous) = self.previous.take() {
            *CURRENT.lock().expect("stop state") = previous;
        }
    }
}

/// The time the current job has left before its deadline, if it has one.
pub fn time_left() -> Option<Duration> {
    current().deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Asks the current job to stop (e.g. its lock was taken over by another run).
pub fn request(reason: &str) {
    current().cancel(reason.to_string(), None);
}

/// Whether the current job was asked to stop.
pub fn requested() -> bool {
    current().token.is_cancelled()
}

/// The error that says why the current job stopped.
pub fn stopped_error() -> Stopped {
    let request = current();
    let (reason, signal) = request
        .why
        .get()
        .cloned()
        .or_else(|| PROCESS.why.get().cloned())
        .unwrap_or_else(|| ("a stop was requested".into(), None));
    Stopped { reason, signal }
}

/// Runs `work` unless the current job is asked to stop first; then `work` is dropped and the
/// [`Stopped`] error returned. Use it only around work that is safe to drop half-done.
pub async fn or_stop<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let token = current().token;
    tokio::select! {
        biased;
        () = token.cancelled() => Err(stopped_error().into()),
        done = work => done,
    }
}

/// Runs `work` to its end; when a stop is asked for meanwhile, gives it `grace` to reach its own
/// safe points and clean up (jobs that write watch for stops themselves), then drops it.
pub async fn finish_or_abandon<T>(work: impl Future<Output = anyhow::Result<T>>, grace: Duration) -> anyhow::Result<T> {
    let token = current().token;
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return done,
        () = token.cancelled() => {}
    }
    match tokio::time::timeout(grace, work).await {
        Ok(done) => done,
        Err(_) => {
            let stopped = stopped_error();
            tracing::error!("the job did not stop within {} s of being asked; abandoning it", grace.as_secs());
            Err(anyhow::Error::new(stopped).context(format!(
                "the job did not finish cleaning up within {} s: run `ngbak list` and `ngbak cleanup` for what it left",
                grace.as_secs()
            )))
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers: the first signal stops the job cleanly, a second one
/// exits at once. Call once, from a binary's `main`, inside the runtime.
pub fn install_signal_handlers() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::warn!("cannot install signal handlers; Ctrl-C will kill ngbak without cleaning up");
        return;
    };
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let (name, number) = tokio::select! {
                _ = int.recv() => ("SIGINT", 2),
                _ = term.recv() => ("SIGTERM", 15),
            };
            seen += 1;
            if FUNCTION_HOST.load(Ordering::SeqCst) && INVOCATIONS.load(Ordering::SeqCst) == 0 {
                eprintln!("ngbak: {name} received while no invocation runs: nothing to clean up, exiting");
                std::process::exit(0);
            }
            if seen > 1 {
                eprintln!("ngbak: second signal ({name}): exiting now, without cleaning up");
                std::process::exit(128 + number);
            }
            eprintln!("ngbak: {name} received: stopping cleanly (aborting uploads, releasing locks); send it again to exit at once");
            PROCESS.cancel(format!("{name} received"), Some(number));
        }
    });
}

/// Set by a Lambda function's host: a signal while no invocation runs ends the process at once.
static FUNCTION_HOST: AtomicBool = AtomicBool::new(false);
/// Invocations running in this process (a function runs one at a time).
static INVOCATIONS: AtomicUsize = AtomicUsize::new(0);
static INVOCATION_ENDED: LazyLock<tokio::sync::Notify> = LazyLock::new(tokio::sync::Notify::new);
/// Time left, after a stopped invocation ended, for its answer to reach the Runtime API.
const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// For a Lambda function's process: from now on a SIGTERM or SIGINT while no invocation runs
/// exits at once with status 0 (there is nothing to clean up; the runtime would otherwise wait
/// for the next event).
pub fn exit_when_signalled_idle() {
    FUNCTION_HOST.store(true, Ordering::SeqCst);
}

/// One invocation running, until dropped.
pub struct Invocation(());

impl Drop for Invocation {
    fn drop(&mut self) {
        INVOCATIONS.fetch_sub(1, Ordering::SeqCst);
        INVOCATION_ENDED.notify_waiters();
    }
}

pub fn begin_invocation() -> Invocation {
    INVOCATIONS.fetch_add(1, Ordering::SeqCst);
    Invocation(())
}

/// Resolves once a signal stopped the process's jobs and no invocation runs any more, leaving
/// the last one's answer a moment to be sent: the function's host then ends.
pub async fn stopped_after_invocation() {
    PROCESS.token.cancelled().await;
    loop {
        let ended = INVOCATION_ENDED.notified();
        if INVOCATIONS.load(Ordering::SeqCst) == 0 {
            break;
        }
        ended.await;
    }
    tokio::time::sleep(ANSWER_GRACE).await;
}

/// Resolves once a signal (SIGINT, SIGTERM) asked the whole process to stop (`ngbak serve`
/// then stops taking requests).
pub async fn signalled() {
    PROCESS.token.cancelled().await;
}
