//! What a hostile rerun of the CLI found (issue 28), held: no password in anything ngbak prints
//! or stores whatever shape its URL has, a restore onto a new machine, `presign`'s range, and a
//! silent S3 endpoint that is said aloud.

mod common;

use common::*;
use proptest::prelude::*;
use std::path::Path;

/// Every byte of every file under `dir` (the store, the restored directory …).
fn stored_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out += &stored_text(&path);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default());
        }
    }
    out
}

/// A URL of `shape` for `scheme` carrying `password`, pointing at a closed loopback port.
fn url_of(shape: usize, scheme: &str, password: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
    match shape {
        0 => format!("{scheme}://user:{password}@127.0.0.1:1"),
        1 => format!("{scheme}//user:{password}@127.0.0.1:notaport"), // the `:` after the scheme missing
        2 => format!("user:{password}@127.0.0.1:1"),                  // no scheme
        3 => format!("{scheme}://user:{encoded}@127.0.0.1:1"),        // percent-encoded
        4 => format!("{scheme}://127.0.0.1:1/?password={password}&db=0"), // a query-string secret
        _ => format!("{scheme}://user:{password}@[::1]:1"),           // an IPv6 host
    }
}

/// Runs `ngbak check` and `ngbak backup` with `flag URL`, logs at trace level, and asserts that
/// `password` is in nothing printed or stored.
fn assert_hidden(flag: &str, url: &str, password: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let quick = ["--connect-timeout", "1", "--request-timeout", "1", "--max-attempts", "1"];
    for verb in [&["check", "--json"][..], &["backup", "--json"][..]] {
        let mut args = vec!["--store", store];
        args.extend(quick);
        args.extend(verb);
        args.extend([flag, url]);
        let out = ngbak(&args, &[("RUST_LOG", "trace")]);
        for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains(password), "`ngbak {verb:?} {flag} {url}` shows the password on {what}:\n{text}");
        }
    }
    let stored = stored_text(dir.path());
    assert!(!stored.contains(password), "`{flag} {url}` left the password in the store");
}

/// The three URLs of the issue, by name.
#[test]
fn the_three_mistyped_urls_of_the_report_hide_their_password() {
    assert_hidden("--redis-url", "redis//:PW-issue28-a@127.0.0.1:notaport", "PW-issue28-a");
    assert_hidden("--neo4j-uri", "bolt//root:PW-issue28-b@127.0.0.1:notaport", "PW-issue28-b");
    assert_hidden("--qdrant-url", "http//user:PW-issue28-c@qdrant:6333", "PW-issue28-c");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any password, in any URL shape, for every URL setting.
    #[test]
    fn no_url_setting_shows_its_password(
        setting in 0usize..4,
        shape in 0usize..6,
        tail in "[A-Za-z0-9._~!$*-]{6,14}",
    ) {
        let password = format!("Pw{tail}");
        let (flag, scheme) = [("--redis-url", "redis"), ("--neo4j-uri", "bolt"), ("--qdrant-url", "http"), ("--qdrant-grpc-url", "http")][setting];
        let url = url_of(shape, scheme, &password);
        if flag == "--qdrant-grpc-url" {
            // gRPC is used in points mode, beside a REST URL.
            let dir = tempfile::tempdir().unwrap();
            let store = dir.path().to_str().unwrap().to_string();
            let out = ngbak(
                &["--store", &store, "--connect-timeout", "1", "check", "--qdrant-url", "http://127.0.0.1:1",
                  "--qdrant-mode", "points", flag, &url],
                &[("RUST_LOG", "trace")],
            );
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            prop_assert!(!text.contains(&password), "{flag} {url}:\n{text}");
        } else {
            assert_hidden(flag, &url, &password);
        }
    }
}

/// Restoring onto a new machine: the working directory and its parents do not exist yet.
#[tokio::test]
async fn a_restore_creates_a_working_directory_whose_parents_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let workdir = sample_workdir();
    json_of(&ngbak(
        &["--store", store, "backup", "--id", "new_machine", "--kv-dir", workdir.to_str().unwrap(), "--json"],
        &[],
    ));
    let target = dir.path().join("a/b/new");
    let out = ngbak(&["--store", store, "restore", "new_machine", "--kv-dir", target.to_str().unwrap(), "--json"], &[]);
    json_of(&out);
    for entry in std::fs::read_dir(&workdir).unwrap() {
        let entry = entry.unwrap();
        let restored = std::fs::read(target.join(entry.file_name())).expect("the file was restored");
        assert_eq!(restored, std::fs::read(entry.path()).unwrap(), "{:?}", entry.file_name());
    }
    // A parent that is a file cannot hold a directory: said plainly, nothing written.
    std::fs::write(dir.path().join("plain-file"), b"x").unwrap();
    let blocked = dir.path().join("plain-file/new");
    let out = ngbak(&["--store", store, "restore", "new_machine", "--kv-dir", blocked.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not a directory") && stderr.contains("plain-file"), "{stderr}");
}

#[test]
fn presign_refuses_an_expiry_outside_what_s3_accepts() {
    for bad in ["0", "604801"] {
        let out = ngbak(&["--store", "/tmp/ngbak-presign-range", "presign", "any", "--expires", bad], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--expires {bad} was accepted");
        assert!(stderr.contains("1..=604800"), "--expires {bad}: {stderr}");
    }
}

/// An S3 endpoint that accepts connections and never answers: each retry is said on stderr,
/// naming the endpoint, the attempt and the wait.
#[tokio::test]
async fn a_silent_s3_endpoint_is_said_aloud_at_each_retry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // accepted, never answered
        }
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = tokio::task::spawn_blocking(move || {
        ngbak(
            &["--store", "s3://silent-bucket/x", "--request-timeout", "1", "--max-attempts", "3", "list"],
            &[
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ],
        )
    })
    .await
    .unwrap();
    held.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a store that never answers cannot list");
    for attempt in [2, 3] {
        let line = format!("127.0.0.1:{port}/: attempt {} of 3 failed or got no answer within 1 s", attempt - 1);
        assert!(stderr.contains(&line), "no line for attempt {attempt}: {stderr}");
        assert!(stderr.contains(&format!("retrying, attempt {attempt} of 3")), "{stderr}");
    }
}
