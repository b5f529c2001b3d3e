//! Locks are leases: renewed while their job runs, never claimed past the job's deadline, and a
//! job whose lock another run took over is told to stop. (One test: the stop state is per process.)

mod common;

use common::*;
use ngbak::store::lock;
use std::time::Duration;

#[tokio::test]
async fn a_lock_is_renewed_while_held_capped_by_the_deadline_and_a_takeover_stops_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let key = "leases.lock";

    // Renewed: a 600 ms lease is still held, with a later expiry, after 1.5 s.
    let job = ngbak::stop::begin_job(None, "the test job");
    let held = lock::acquire(store.clone(), key, "first", Duration::from_millis(600)).await.unwrap().unwrap();
    let first = lock::read(store.as_ref(), key).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let renewed = lock::read(store.as_ref(), key).await.unwrap().unwrap();
    assert!(!renewed.expired && renewed.expires_at > first.expires_at, "not renewed: {first:?} then {renewed:?}");
    assert!(!ngbak::stop::requested());

    // Taken over (as `--force` does): the first job is asked to stop, and its release leaves the
    // new holder's lock alone.
    let second = lock::acquire_or_take_over(store.clone(), key, "second", Duration::from_secs(600), true)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(ngbak::stop::requested(), "the job whose lock was taken over was not stopped");
    let why = ngbak::stop::stopped_error().reason;
    assert!(why.contains("taken over by second"), "{why}");
    held.release().await.unwrap();
    assert_eq!(lock::read(store.as_ref(), key).await.unwrap().unwrap().holder, "second");
    second.release().await.unwrap();
    assert!(lock::read(store.as_ref(), key).await.unwrap().is_none());
    drop(job);

    // A job with a deadline never claims past it (plus a minute to report and clean up).
    let _job = ngbak::stop::begin_job(Some(Duration::from_secs(5)), "the short job");
    let capped = lock::acquire(store.clone(), key, "short", lock::LEASE).await.unwrap().unwrap();
    let info = lock::read(store.as_ref(), key).await.unwrap().unwrap();
    let claim = (info.expires_at.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((60..=66).contains(&claim), "a 5 s job claimed {claim} s");
    capped.release().await.unwrap();
}

/// The write a renewal makes: only over the version it read, in both stores (a lock another run
/// took meanwhile must not be overwritten).
#[tokio::test]
async fn an_object_is_replaced_only_while_it_is_the_version_read() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = new_bucket().await;
    for store in [local_store(dir.path()), s3_store(&bucket, "locks").await] {
        let key = "renewed.lock";
        assert!(store.put_if_absent(key, "first".into()).await.unwrap());
        let read = store.head(key).await.unwrap().unwrap().etag.unwrap();
        assert!(store.replace_if_match(key, "renewed".into(), &read).await.unwrap(), "{}", store.url());
        assert_eq!(ngbak::store::get_bytes(store.as_ref(), key).await.unwrap(), b"renewed");

        // Another writer came between: the stale version is refused and its write stays.
        tokio::time::sleep(Duration::from_millis(20)).await; // a new mtime for the directory store
        let stale = store.head(key).await.unwrap().unwrap().etag.unwrap();
        store.delete(key).await.unwrap();
        assert!(store.put_if_absent(key, "taken over".into()).await.unwrap());
        assert!(!store.replace_if_match(key, "renewed again".into(), &stale).await.unwrap(), "{}", store.url());
        assert_eq!(ngbak::store::get_bytes(store.as_ref(), key).await.unwrap(), b"taken over");

        // Gone: nothing is written.
        store.delete(key).await.unwrap();
        assert!(!store.replace_if_match(key, "renewed".into(), &stale).await.unwrap(), "{}", store.url());
        assert!(store.head(key).await.unwrap().is_none());
    }
}
