//! Signing with a key kept in AWS KMS: the real KMS client of ngbak against LocalStack's KMS,
//! which has no Ed25519 keys (so a key of the spec it has is refused, by name), and against
//! `KmsEd25519StandIn` (the test double of KMS's Ed25519 signing, named so): the backup is
//! signed in minisign's format, checked by the standard `minisign -V`, and trusted through the
//! key's public half read from KMS.

mod common;
#[path = "support/kms_standin.rs"]
mod kms_standin;

use common::*;
use kms_standin::KmsEd25519StandIn;

async fn localstack_kms() -> aws_sdk_kms::Client {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    aws_sdk_kms::Client::new(&shared)
}

#[tokio::test]
async fn a_kms_key_of_another_spec_is_refused_before_anything_is_stored() {
    let kms = localstack_kms().await;
    let made = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .expect("LocalStack creates a P-256 signing key");
    let key = made.key_metadata().unwrap().key_id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sample = sample_workdir();
    let out = ngbak(
        &[
            "--store",
            store.to_str().unwrap(),
            "backup",
            "--kv-dir",
            sample.to_str().unwrap(),
            "--kms-signing-key",
            &key,
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is ECC_NIST_P256, not ECC_NIST_EDWARDS25519"), "{stderr}");
    assert!(!store.exists() || std::fs::read_dir(&store).unwrap().next().is_none(), "something was stored");
}

// Multi-threaded: the stand-in answers while the test waits on the ngbak process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kms_signed_backup_verifies_with_minisign_and_through_the_kms_public_key() {
    let standin = KmsEd25519StandIn::start().await;
    let kms_env = [("AWS_ENDPOINT_URL_KMS", standin.endpoint.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = store_dir.to_str().unwrap();
    let sample = sample_workdir();
    let summary = json_of(&ngbak(
        &[
            "--store",
            store,
            "backup",
            "--kv-dir",
            sample.to_str().unwrap(),
            "--id",
            "k1",
            "--kms-signing-key",
            &standin.key_id,
            "--json",
        ],
        &kms_env,
    ));
    // The public key as minisign holds it, printed by ngbak from KMS.
    let shown = ngbak(&["keygen", "--kms-key", &standin.key_id], &kms_env);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown = String::from_utf8(shown.stdout).unwrap();
    let public = shown.split_whitespace().find(|w| w.starts_with("RW")).expect("a minisign public key").to_string();
    assert!(shown.contains(summary["signed_by"].as_str().unwrap()), "{shown} / {summary}");

    let minisign = std::process::Command::new("minisign")
        .args(["-V", "-P", &public, "-m", store_dir.join("k1.manifest.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        minisign.status.success(),
        "{}{}",
        String::from_utf8_lossy(&minisign.stdout),
        String::from_utf8_lossy(&minisign.stderr)
    );

    // Trusted through KMS (kms:GetPublicKey only), or by the printed key: the same signer.
    for trust in [["--trusted-kms-key", standin.key_id.as_str()], ["--trusted-key", public.as_str()]] {
        let verified =
            json_of(&ngbak(&[&["--store", store][..], &trust, &["verify", "k1", "--json"]].concat(), &kms_env));
        assert_eq!(verified["signature"]["status"], "verified", "{verified}");
        assert_eq!(verified["signature"]["key_id"], summary["signed_by"]);
    }
    // Another KMS key's signature is not this one's.
    let other = KmsEd25519StandIn::start().await;
    let out = ngbak(
        &["--store", store, "--trusted-kms-key", &other.key_id, "verify", "k1"],
        &[("AWS_ENDPOINT_URL_KMS", other.endpoint.as_str())],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("which is not trusted"));
}
