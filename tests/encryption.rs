//! Encrypted archives (README, "Encryption"): age to one and two recipients, round trips through
//! the CLI, the sidecar that tells nothing of the knowledge base, every class of damaged
//! ciphertext refused before any write, `rekey` that leaves the body's bytes as they were, the
//! safety backup encrypted like the archive it protects, and no identity in any output.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A new age identity written to `dir/<name>.txt`: (its file, its recipient).
fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let made = age::x25519::Identity::generate();
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, format!("# {name}\n{}\n", made.to_string().expose_secret())).unwrap();
    (path, made.to_public().to_string())
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            out.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
        }
    }
    out
}

/// The sample working directory with one large document of random text, so that the archive
/// spans several 64 KiB chunks of age's STREAM.
fn large_workdir(dir: &Path) -> PathBuf {
    let workdir = dir.join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    for (name, bytes) in files(&sample_workdir()) {
        std::fs::write(workdir.join(name), bytes).unwrap();
    }
    let docs = workdir.join("kv_store_full_docs.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&docs).unwrap()).unwrap();
    let random: String = (0..300_000).map(|_| format!("{:x}", rand_nibble())).collect();
    doc["doc-large"] = serde_json::json!({ "content": random });
    std::fs::write(&docs, serde_json::to_vec(&doc).unwrap()).unwrap();
    workdir
}

fn rand_nibble() -> u8 {
    (uuid::Uuid::new_v4().as_bytes()[0]) & 0x0f
}

fn run(store: &Path, args: &[&str]) -> std::process::Output {
    ngbak(&[&["--store", store.to_str().unwrap()][..], args].concat(), &[])
}

fn refused(out: &std::process::Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "accepted what must be refused: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    stderr
}

/// Where the body (nonce, then chunks) of an age file starts: after the `--- MAC` line.
fn body_offset(file: &[u8]) -> usize {
    let mac = file.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
    mac + file[mac..].iter().position(|b| *b == b'\n').unwrap() + 1
}

/// Rewrites the sidecar's archive digest to the archive as it now is (as an attacker who
/// changed it would), so that only the age layer can tell.
fn recompute_sidecar(store: &Path, id: &str) {
    use sha2::Digest;
    let archive = std::fs::read(store.join(format!("{id}.ngbak"))).unwrap();
    let path = store.join(format!("{id}.manifest.json"));
    let mut sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    sidecar["archive"]["size"] = serde_json::json!(archive.len());
    sidecar["archive"]["sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(&archive)));
    std::fs::write(&path, serde_json::to_vec_pretty(&sidecar).unwrap()).unwrap();
}

#[test]
fn encrypted_backups_round_trip_and_damage_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let (id1, r1) = identity(dir.path(), "one");
    let (id2, r2) = identity(dir.path(), "two");
    let (id3, _) = identity(dir.path(), "stranger");
    let store = dir.path().join("store");
    let workdir = large_workdir(dir.path());
    let w = workdir.to_str().unwrap();
    let backed = json_of(&run(&store, &["backup", "--kv-dir", w, "--id", "one", "--encrypt-to", &r1, "--json"]));
    assert_eq!(backed["encrypted_to"], serde_json::json!([r1]));
    let recipients_file = dir.path().join("recipients.txt");
    std::fs::write(&recipients_file, format!("# the restore role\n{r1}\n# break-glass\n{r2}\n")).unwrap();
    json_of(&run(
        &store,
        &["backup", "--kv-dir", w, "--id", "two", "--encrypt-to", recipients_file.to_str().unwrap(), "--json"],
    ));

    // The sidecar says who it is encrypted to and how big it is; nothing of what it holds.
    let sidecar = String::from_utf8(std::fs::read(store.join("two.manifest.json")).unwrap()).unwrap();
    assert!(sidecar.contains(&r1) && sidecar.contains(&r2), "{sidecar}");
    for secret in ["entities", "kv/json", "doc-large", "full_docs", "stats"] {
        assert!(!sidecar.contains(secret), "the sidecar shows {secret:?}: {sidecar}");
    }
    let archive = std::fs::read(store.join("one.ngbak")).unwrap();
    assert!(archive.starts_with(b"age-encryption.org/v1\n"));
    assert!(!archive.windows(9).any(|w| w == b"doc-large"), "plaintext in the archive");

    // Without an identity: the ciphertext is proved (size and SHA-256); listed without counts.
    let plain = json_of(&run(&store, &["verify", "one", "--json"]));
    assert_eq!((plain["checked"].as_str(), plain["entries"].as_u64()), (Some("ciphertext"), Some(0)));
    let listed = json_of(&run(&store, &["list", "--json"]));
    assert!(listed.as_array().unwrap().iter().all(|b| b["stats"] == serde_json::json!({})), "{listed}");
    // With one: every entry. Two recipients: either identity opens it.
    for (id, key) in [("one", &id1), ("two", &id1), ("two", &id2)] {
        let checked = json_of(&run(&store, &["--identity", key.to_str().unwrap(), "verify", id, "--json"]));
        assert_eq!(checked["checked"], "entries", "{id}");
        assert!(checked["entries"].as_u64().unwrap() > 3);
    }
    // The standard age tool opens it too.
    if let Ok(out) = std::process::Command::new("age")
        .args(["-d", "-i", id2.to_str().unwrap()])
        .arg(store.join("two.ngbak"))
        .output()
    {
        assert!(
            out.status.success() && out.stdout.starts_with(&[0x1f, 0x8b]),
            "age -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Restored exactly with the identity; refused before any write without it or with another.
    let target = dir.path().join("target");
    let t = target.to_str().unwrap();
    refused(&run(&store, &["restore", "two", "--kv-dir", t]), "pass --identity");
    refused(&run(&store, &["--identity", id3.to_str().unwrap(), "restore", "two", "--kv-dir", t]), "cannot open");
    assert!(!target.exists(), "a refused restore created the target");
    let restored =
        json_of(&run(&store, &["--identity", id2.to_str().unwrap(), "restore", "two", "--kv-dir", t, "--json"]));
    assert_eq!(files(&target), files(&workdir), "{restored}");

    // A restore over it takes a safety backup encrypted to the same recipients.
    std::fs::write(target.join("kv_store_full_docs.json"), b"{}").unwrap();
    let over = json_of(&run(
        &store,
        &["--identity", id1.to_str().unwrap(), "restore", "two", "--kv-dir", t, "--kv-mode", "replace", "--json"],
    ));
    let safety = over["safety_backup"].as_str().expect("a safety backup").to_string();
    let safety_sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join(format!("{safety}.manifest.json"))).unwrap()).unwrap();
    assert_eq!(safety_sidecar["encryption"]["recipients"], serde_json::json!([r1, r2]));
    assert!(safety_sidecar.get("sealed_manifest").is_some());
    assert!(std::fs::read(store.join(format!("{safety}.ngbak"))).unwrap().starts_with(b"age-encryption.org/v1\n"));

    // Every class of damage, the sidecar recomputed each time so that only the age layer can
    // tell: refused by verify and restore, the target left byte for byte as it was.
    let before = files(&target);
    let body = body_offset(&archive);
    let chunk = 64 * 1024 + 16;
    let chunks = (archive.len() - body - 16).div_ceil(chunk);
    assert!(chunks >= 3, "the test archive spans {chunks} chunks");
    let flip = |at: usize| {
        let mut a = archive.clone();
        a[at] ^= 0x01;
        a
    };
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("a header byte".into(), flip(30)),
        ("the header's MAC".into(), flip(body - 3)),
        ("the nonce".into(), flip(body + 3)),
        ("the first chunk".into(), flip(body + 16 + 100)),
        ("a middle chunk".into(), flip(body + 16 + chunk + 100)),
        ("the last chunk's tag".into(), flip(archive.len() - 1)),
        ("cut at a chunk boundary".into(), archive[..body + 16 + chunk].to_vec()),
        ("cut inside a chunk".into(), archive[..body + 16 + chunk + 500].to_vec()),
        ("cut inside the header".into(), archive[..body - 10].to_vec()),
        ("bytes appended".into(), [archive.clone(), b"appended".to_vec()].concat()),
    ];
    let id1s = id1.to_str().unwrap();
    for (what, bytes) in cases {
        std::fs::write(store.join("one.ngbak"), &bytes).unwrap();
        recompute_sidecar(&store, "one");
        let verified = run(&store, &["--identity", id1s, "verify", "one"]);
        assert!(!verified.status.success(), "verify accepted {what}");
        for mode in ["merge", "replace"] {
            let out = run(&store, &["--identity", id1s, "restore", "one", "--kv-dir", t, "--kv-mode", mode]);
            assert!(!out.status.success(), "restore ({mode}) accepted {what}");
            assert_eq!(files(&target), before, "a refused restore ({mode}) of {what} changed the target");
        }
    }
    std::fs::write(store.join("one.ngbak"), &archive).unwrap();
    recompute_sidecar(&store, "one");

    // Rekey: only the header changes; the old identity no longer opens it, the new one does.
    let (id4, r4) = identity(dir.path(), "new");
    let rekeyed = json_of(&run(&store, &["--identity", id1s, "rekey", "one", "--encrypt-to", &r4, "--json"]));
    assert_eq!(rekeyed[0]["to"], serde_json::json!([r4]), "{rekeyed}");
    let after = std::fs::read(store.join("one.ngbak")).unwrap();
    assert_eq!(after[body_offset(&after)..], archive[body..], "the body's bytes changed");
    assert_ne!(after[..body_offset(&after)], archive[..body], "the header did not change");
    refused(&run(&store, &["--identity", id1s, "verify", "one"]), "cannot open");
    let t4 = dir.path().join("target4");
    json_of(&run(
        &store,
        &["--identity", id4.to_str().unwrap(), "restore", "one", "--kv-dir", t4.to_str().unwrap(), "--json"],
    ));
    assert_eq!(files(&t4), files(&workdir));

    // --require-encrypted: a plain backup is neither written nor read.
    refused(&run(&store, &["--require-encrypted", "--identity", id1s, "backup", "--kv-dir", w]), "no recipient");
    json_of(&run(&store, &["backup", "--kv-dir", w, "--id", "plain", "--json"]));
    refused(&run(&store, &["--require-encrypted", "--identity", id1s, "verify", "plain"]), "not encrypted");
    refused(
        &run(&store, &["--require-encrypted", "--identity", id1s, "restore", "plain", "--kv-dir", t]),
        "not encrypted",
    );
    assert_eq!(files(&target), before);
}

#[test]
fn a_downloaded_encrypted_archive_verifies_and_imports_with_the_identity_and_no_key_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (id1, r1) = identity(dir.path(), "one");
    let secret_line = std::fs::read_to_string(&id1).unwrap().lines().nth(1).unwrap().to_string();
    let store = dir.path().join("store");
    let sample = sample_workdir();
    let envs = [("NGBAK_IDENTITY", secret_line.as_str()), ("RUST_LOG", "trace")];
    let backup = ngbak(
        &[
            "--store",
            store.to_str().unwrap(),
            "backup",
            "--kv-dir",
            sample.to_str().unwrap(),
            "--id",
            "kept",
            "--encrypt-to",
            &r1,
        ],
        &envs,
    );
    assert!(backup.status.success());
    let file = store.join("kept.ngbak");
    let checked = ngbak(&["verify", "--file", file.to_str().unwrap(), "--json"], &envs);
    let report = json_of(&checked);
    assert_eq!(report["backup_id"], "kept");
    let elsewhere = dir.path().join("elsewhere");
    let imported = ngbak(&["--store", elsewhere.to_str().unwrap(), "import", file.to_str().unwrap(), "--json"], &envs);
    json_of(&imported);
    let sidecar = String::from_utf8(std::fs::read(elsewhere.join("kept.manifest.json")).unwrap()).unwrap();
    assert!(sidecar.contains("sealed_manifest") && sidecar.contains(&r1), "{sidecar}");
    let target = dir.path().join("target");
    let restored = ngbak(
        &["--store", elsewhere.to_str().unwrap(), "restore", "kept", "--kv-dir", target.to_str().unwrap()],
        &envs,
    );
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert_eq!(files(&target), files(&sample));
    // Without the identity the file is refused, saying what is missing.
    let out = ngbak(&["verify", "--file", file.to_str().unwrap()], &[]);
    refused(&out, "no identity was given");
    let help = ngbak(&["restore", "--help"], &envs);
    for out in [&backup, &checked, &imported, &restored, &help] {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // The key material after the AGE-SECRET-KEY-1 prefix (which `--help` names, as it should).
        assert!(!text.contains(&secret_line[16..46]), "an identity showed: {text}");
    }
}

#[test]
fn a_passphrase_archive_round_trips_and_a_wrong_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sample = sample_workdir();
    let s = store.to_str().unwrap();
    let with = |phrase: &'static str, args: &[&str]| {
        ngbak(&[&["--store", s][..], args].concat(), &[("NGBAK_PASSPHRASE", phrase)])
    };
    let made = json_of(&with(
        "correct horse battery staple",
        &["backup", "--kv-dir", sample.to_str().unwrap(), "--id", "p", "--json"],
    ));
    assert_eq!(made["encrypted_to"], serde_json::json!(["scrypt"]));
    let target = dir.path().join("target");
    refused(&with("wrong horse", &["restore", "p", "--kv-dir", target.to_str().unwrap()]), "cannot open");
    assert!(!target.exists());
    json_of(&with("correct horse battery staple", &["restore", "p", "--kv-dir", target.to_str().unwrap(), "--json"]));
    assert_eq!(files(&target), files(&sample));
    let (_, r1) = identity(dir.path(), "one");
    refused(&with("x", &["backup", "--kv-dir", sample.to_str().unwrap(), "--encrypt-to", &r1]), "cannot be combined");
    let text = format!("{:?}", with("correct horse battery staple", &["restore", "--help"]));
    assert!(!text.contains("battery staple"), "the passphrase showed");
}

#[test]
fn plain_sidecar_counts_keep_the_listing_readable_and_the_archive_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let (id1, r1) = identity(dir.path(), "one");
    let store = dir.path().join("store");
    let sample = sample_workdir();
    let w = sample.to_str().unwrap();
    json_of(&run(
        &store,
        &["backup", "--kv-dir", w, "--id", "counted", "--encrypt-to", &r1, "--plain-sidecar-counts", "--json"],
    ));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("counted.manifest.json")).unwrap()).unwrap();
    assert_eq!(sidecar["encryption"]["counts_readable"], true, "{sidecar}");
    assert!(sidecar.get("sealed_manifest").is_none() && sidecar["backends"]["jsonkv"]["stats"]["entities"].is_u64());
    assert!(std::fs::read(store.join("counted.ngbak")).unwrap().starts_with(b"age-encryption.org/v1\n"));
    let listed = json_of(&run(&store, &["list", "--json"]));
    assert!(listed[0]["stats"]["entities"].is_u64(), "{listed}");
    assert_eq!(listed[0]["encrypted_to"], serde_json::json!([r1]));
    let checked = json_of(&run(&store, &["verify", "counted", "--json"]));
    assert_eq!(checked["checked"], "ciphertext", "{checked}");
    // Readable counts do not make the archive readable: restoring still needs the identity.
    let target = dir.path().join("target");
    refused(&run(&store, &["restore", "counted", "--kv-dir", target.to_str().unwrap()]), "no identity was given");
    assert!(!target.exists());
    json_of(&run(
        &store,
        &["--identity", id1.to_str().unwrap(), "restore", "counted", "--kv-dir", target.to_str().unwrap(), "--json"],
    ));
    assert_eq!(files(&target), files(&sample));
}
