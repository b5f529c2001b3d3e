//! The operator HTTP API, over real HTTP: `ngbak serve` started as a process on a directory store
//! and on LocalStack S3, with the real Redis, driven by a plain HTTP client through every route:
//! backup → list → download (the stored bytes) → upload into a second store → restore → read
//! back equal; jobs followed through their events; and the bad inputs, each refused with nothing
//! stored and no backend touched.

mod common;

use common::*;
use futures::StreamExt;
use ngbak::id::BackupId;
use ngbak::store::ObjectStore;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

fn authed(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.bearer_auth(TOKEN)
}

async fn get(s: &Served, path: &str) -> (u16, Value) {
    let response = authed(client().get(s.url(path))).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(s: &Served, path: &str, body: Value) -> (u16, Value) {
    let response = authed(client().post(s.url(path))).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A problem document: the status, `application/problem+json`, a detail and a next step.
async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let kind = response.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(kind, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert!(body["next_step"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

/// Follows a job through `GET /jobs/{job}/events` to its end; every event in order.
async fn follow(s: &Served, job: &str) -> Vec<Value> {
    let response = authed(client().get(s.url(&format!("/jobs/{job}/events")))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|block| block.contains("event: job"))
        .map(|block| {
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert!(!events.is_empty(), "no event for job {job}: {text}");
    events
}

/// Starts a job (202 with its id and Location) and follows it to its end; the final record.
async fn run(s: &Served, path: &str, body: Value) -> Value {
    let response = authed(client().post(s.url(path))).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202, "{path}: {}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = response.json().await.unwrap();
    let job = accepted["job"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/jobs/{job}"));
    let events = follow(s, &job).await;
    let last = events.last().unwrap().clone();
    assert_eq!(last["status"], "completed", "{path}: {last:#}");
    // GET answers what the events ended with.
    assert_eq!(get(s, &format!("/jobs/{job}")).await.1, last);
    last
}

async fn object(store: &Arc<dyn ObjectStore>, key: &str) -> Vec<u8> {
    ngbak::store::get_within(store.as_ref(), key, 1 << 30).await.unwrap().1
}

/// The whole story on one kind of store: `first` and `second` are two stores of that kind.
async fn backup_download_upload_restore(first: (&str, Arc<dyn ObjectStore>), second: (&str, Arc<dyn ObjectStore>)) {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let a = Served::start(first.0, &pattern, &[]);
    let b = Served::start(second.0, &pattern, &[]);
    let id = format!("api_{}", unique());

    let done = run(&a, "/backups", json!({ "id": id })).await;
    assert_eq!(done["kind"], "backup");
    assert_eq!(done["report"]["backup_id"], id.as_str());
    assert!(done["progress"]["bytes"].as_u64().unwrap() > 0, "{done:#}");
    // The same id again: 409, and nothing started.
    let again = authed(client().post(a.url("/backups"))).json(&json!({ "id": id })).send().await.unwrap();
    problem(again, 409).await;

    let (status, page) = get(&a, "/backups").await;
    assert_eq!(status, 200);
    let listed = page["backups"].as_array().unwrap().iter().find(|b| b["backup_id"] == id.as_str()).unwrap().clone();
    assert_eq!(listed["stats"]["keys"], 13, "{listed:#}");
    assert_eq!(listed["status"], "complete");
    let (status, detail) = get(&a, &format!("/backups/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["manifest"]["backup_id"], id.as_str(), "{detail:#}");
    assert_eq!(detail["manifest"]["archive"]["sha256"], listed["sha256"], "{detail:#}");

    let verified = run(&a, &format!("/backups/{id}/verify"), json!({})).await;
    assert_eq!(verified["report"]["backup_id"], id.as_str());
    assert_eq!(verified["report"]["ok"], true, "{verified:#}");
    assert_eq!(verified["report"]["checked"], "entries", "{verified:#}");

    let download = authed(client().get(a.url(&format!("/backups/{id}/download")))).send().await.unwrap();
    assert_eq!(download.status().as_u16(), 200);
    let file = download.bytes().await.unwrap().to_vec();
    let id_ = BackupId::from_archive_key(&format!("{id}.ngbak")).unwrap();
    assert_eq!(file, object(&first.1, &id_.archive_key()).await, "the download is the stored archive");

    // Into the second store, as an operator's own file.
    let uploaded = authed(client().post(b.url(&format!("/uploads?id={id}")))).body(file.clone()).send().await.unwrap();
    assert_eq!(uploaded.status().as_u16(), 201, "{}", uploaded.text().await.unwrap());
    assert_eq!(object(&second.1, &id_.archive_key()).await, file);
    let again = authed(client().post(b.url(&format!("/uploads?id={id}")))).body(file.clone()).send().await.unwrap();
    problem(again, 409).await;

    // A restore that writes must be confirmed with the id.
    delete_pattern(&mut con, &pattern).await;
    let unconfirmed = authed(client().post(b.url(&format!("/backups/{id}/restore")))).json(&json!({})).send().await;
    let body = problem(unconfirmed.unwrap(), 400).await;
    assert!(body["detail"].as_str().unwrap().contains("confirm"), "{body}");
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "an unconfirmed restore wrote");

    let dry = run(&b, &format!("/backups/{id}/restore"), json!({ "dry_run": true })).await;
    assert_eq!(dry["kind"], "dry_run");
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "a dry run wrote");

    let restored = run(&b, &format!("/backups/{id}/restore"), json!({ "confirm": id })).await;
    let report = &restored["report"];
    assert_eq!(report["backends"]["redis"]["verified"], true, "{restored:#}");
    assert_eq!(restored["progress"]["records"]["redis"], 13, "{restored:#}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 5_000);
    // The backup's page shows that restore as its last.
    let (_, detail) = get(&b, &format!("/backups/{id}")).await;
    assert_eq!(detail["last_restore"]["status"], "completed");

    // Deleted: gone, then 404.
    let deleted = authed(client().delete(b.url(&format!("/backups/{id}")))).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(second.1.head(&id_.archive_key()).await.unwrap().is_none());
    assert!(second.1.head(&id_.sidecar_key()).await.unwrap().is_none());
    let gone = authed(client().delete(b.url(&format!("/backups/{id}")))).send().await.unwrap();
    problem(gone, 404).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_through_a_directory_store() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (dirs.0.path().to_str().unwrap(), dirs.1.path().to_str().unwrap());
    backup_download_upload_restore((a, local_store(dirs.0.path())), (b, local_store(dirs.1.path()))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_through_s3() {
    let (first, second) = (new_bucket().await, new_bucket().await);
    let (a, b) = (format!("s3://{first}/ngbak"), format!("s3://{second}/ngbak"));
    backup_download_upload_restore((&a, s3_store(&first, "ngbak").await), (&b, s3_store(&second, "ngbak").await)).await;
}

/// An archive made by the CLI, to upload and damage.
fn archive_file(dir: &std::path::Path, pattern: &str, id: &str) -> Vec<u8> {
    let store = dir.join("made");
    let url = redis_url();
    let out = ngbak(
        &["--store", store.to_str().unwrap(), "backup", "--id", id, "--redis-url", &url, "--redis-pattern", pattern],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(store.join(format!("{id}.ngbak"))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let work = tempfile::tempdir().unwrap();
    let id = format!("bad_{}", unique());
    let file = archive_file(work.path(), &pattern, &id);
    let store_dir = work.path().join("served");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store = local_store(&store_dir);
    let s =
        Served::start(store_dir.to_str().unwrap(), &pattern, &["--max-upload-bytes", &(file.len() + 10).to_string()]);
    let c = client();

    // No token, a wrong one, the token as a cookie without the page's header on a POST.
    problem(c.get(s.url("/backups")).send().await.unwrap(), 401).await;
    problem(c.get(s.url("/backups")).bearer_auth("wrong").send().await.unwrap(), 401).await;
    let cookie = format!("ngbak_token={TOKEN}");
    assert_eq!(c.get(s.url("/backups")).header("cookie", &cookie).send().await.unwrap().status(), 200);
    let forged = c.post(s.url("/backups")).header("cookie", &cookie).json(&json!({})).send().await.unwrap();
    problem(forged, 403).await;

    // Ids and bodies, checked before any store call.
    problem(authed(c.get(s.url("/backups/..%2Fetc"))).send().await.unwrap(), 400).await;
    problem(authed(c.get(s.url("/backups/nothing_here"))).send().await.unwrap(), 404).await;
    problem(authed(c.post(s.url("/backups/nothing_here/verify"))).send().await.unwrap(), 404).await;
    problem(authed(c.delete(s.url("/backups/nothing_here"))).send().await.unwrap(), 404).await;
    problem(authed(c.get(s.url("/jobs/nothing_here"))).send().await.unwrap(), 404).await;
    problem(authed(c.get(s.url("/jobs/bad!id"))).send().await.unwrap(), 400).await;
    let wrong_type = authed(c.post(s.url("/backups"))).body(r#"{"only": 5}"#).send().await.unwrap();
    let body = problem(wrong_type, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("invalid type"), "{body}");
    let unknown = authed(c.post(s.url("/backups"))).body(r#"{"idd": "x"}"#).send().await.unwrap();
    let body = problem(unknown, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("idd"), "{body}");
    let codec = authed(c.post(s.url("/backups"))).json(&json!({"codec": "lzma"})).send().await.unwrap();
    let body = problem(codec, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("codec"), "{body}");

    // Uploads: not an archive, truncated, tampered, another id, too large, broken off.
    let mut tampered = file.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not an archive", b"hello, this is not an archive".repeat(10), 422),
        ("truncated", file[..file.len() * 2 / 3].to_vec(), 422),
        ("tampered", tampered, 422),
        ("trailing bytes", [file.clone(), b"extra".to_vec()].concat(), 422),
        ("too large", [file.clone(), vec![0; 100]].concat(), 413),
    ];
    for (what, body, status) in cases {
        let response = authed(c.post(s.url(&format!("/uploads?id={id}")))).body(body).send().await.unwrap();
        let refused = problem(response, status).await;
        assert!(refused["detail"].as_str().unwrap().contains("nothing was stored"), "{what}: {refused}");
    }
    let other = authed(c.post(s.url("/uploads?id=another_id"))).body(file.clone()).send().await.unwrap();
    problem(other, 422).await;
    // A client that stops halfway: the body stream fails mid-way.
    let half = file[..file.len() / 2].to_vec();
    let stream = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from(half)),
        Err(std::io::Error::other("client went away")),
    ]);
    let broken = authed(c.post(s.url(&format!("/uploads?id={id}"))))
        .header("content-length", file.len().to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(broken.is_err() || broken.unwrap().status().as_u16() >= 400);
    // The server notices the broken connection; give it a moment to abort.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left: Vec<String> = store.list("").await.unwrap().into_iter().map(|o| o.key).collect();
    assert!(left.iter().all(|k| !k.ends_with(".ngbak") && !k.ends_with(".manifest.json")), "{left:?}");
    assert!(store.pending_uploads().await.unwrap().is_empty(), "a pending upload stayed");

    // The real file passes after all that, under its limit.
    let ok = authed(c.post(s.url(&format!("/uploads?id={id}")))).body(file.clone()).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 201);

    // A restore while another holds the store's restore lock: 409 naming the holder.
    let held = ngbak::store::lock::acquire(
        store.clone(),
        ngbak::store::lock::RESTORE_LOCK,
        "someone else's restore",
        ngbak::store::lock::LEASE,
    )
    .await
    .unwrap()
    .unwrap();
    let busy =
        authed(c.post(s.url(&format!("/backups/{id}/restore")))).json(&json!({"confirm": id})).send().await.unwrap();
    let body = problem(busy, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("someone else's restore"), "{body}");
    // Jobs others run show up, seen through their lock.
    let (_, jobs) = get(&s, "/jobs").await;
    assert!(jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["host"] == "someone else's restore" && j["status"] == "running"));
    held.release().await.unwrap();
    assert_eq!(redis_snapshot(&mut con, &pattern).await.len(), 13, "the backend was touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_jobs_each_keep_their_own_record_and_cli_restores_show_up() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = dir.path().to_str().unwrap();
    let s = Served::start(store_url, &pattern, &[]);
    let id = format!("conc_{}", unique());
    run(&s, "/backups", json!({ "id": id })).await;
    let verify = format!("/backups/{id}/verify");
    let started = futures::future::join_all((0..6).map(|_| post(&s, &verify, json!({})))).await;
    let jobs: Vec<String> = started
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202);
            body["job"].as_str().unwrap().to_string()
        })
        .collect();
    for job in &jobs {
        let last = follow(&s, job).await.pop().unwrap();
        assert_eq!(last["status"], "completed");
        assert_eq!(last["job"], job.as_str());
        assert_eq!(last["kind"], "verify");
    }
    // A restore run from the CLI is a job too (seen through its report).
    let url = redis_url();
    let out = ngbak(&["--store", store_url, "restore", &id, "--redis-url", &url, "--redis-pattern", &pattern], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, listed) = get(&s, "/jobs").await;
    let cli =
        listed["jobs"].as_array().unwrap().iter().find(|j| j["source"] == "cli").cloned().expect("the CLI restore");
    assert_eq!(cli["status"], "completed");
    assert_eq!(cli["backup_id"], id.as_str());
    let (status, same) = get(&s, &format!("/jobs/{}", cli["job"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert_eq!(same["job"], cli["job"]);

    // The API document names every route.
    let (_, doc) = get(&s, "/openapi.json").await;
    for path in [
        "/api/v1/backups",
        "/api/v1/backups/{id}",
        "/api/v1/backups/{id}/download",
        "/api/v1/backups/{id}/verify",
        "/api/v1/backups/{id}/restore",
        "/api/v1/uploads",
        "/api/v1/jobs",
        "/api/v1/jobs/{job}",
        "/api/v1/jobs/{job}/events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let out = ngbak(&["--store", dir.path().to_str().unwrap(), "serve", "--listen", "0.0.0.0:0"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without TLS") && stderr.contains("--insecure-behind-proxy"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_token_is_printed_once_with_the_page_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ngbak_command(&["--store", dir.path().to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"], &[])
        .env_remove("NGBAK_API_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let open = lines.by_ref().map(|l| l.unwrap()).find(|l| l.contains("/?token=")).expect("the page's address");
    let token = open.rsplit("token=").next().unwrap().to_string();
    assert!(token.len() >= 40, "{open}");
    let base = open.split_whitespace().last().unwrap().split("/?").next().unwrap().to_string();
    let answer = client().get(format!("{base}/api/v1/jobs")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    terminate(&child);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().all(|l| !l.contains(&token)), "the token was printed again: {rest:?}");
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_goes_silent_is_given_up_and_leaves_nothing() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let work = tempfile::tempdir().unwrap();
    let id = format!("silent_{}", unique());
    let file = archive_file(work.path(), &pattern, &id);
    let store_dir = work.path().join("served");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store = local_store(&store_dir);
    let s = Served::start(store_dir.to_str().unwrap(), &pattern, &["--request-timeout", "2"]);
    // Half the file, then nothing more, with the connection held open.
    let half = bytes::Bytes::from(file[..file.len() / 2].to_vec());
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(half)]).chain(futures::stream::pending());
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        authed(client().post(s.url(&format!("/uploads?id={id}")))).body(reqwest::Body::wrap_stream(stream)).send(),
    )
    .await
    .expect("the server held a silent upload open");
    if let Ok(response) = answer {
        let refused = problem(response, 422).await;
        assert!(refused["detail"].as_str().unwrap().contains("sent nothing"), "{refused}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "given up after {:?}", started.elapsed());
    let left: Vec<String> = store.list("").await.unwrap().into_iter().map(|o| o.key).collect();
    assert!(left.iter().all(|k| !k.ends_with(".ngbak") && !k.ends_with(".manifest.json")), "{left:?}");
    assert!(store.pending_uploads().await.unwrap().is_empty(), "a pending upload stayed");
    delete_pattern(&mut con, &pattern).await;
}
