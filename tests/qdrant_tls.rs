//! Qdrant REST over HTTPS with a private CA: the Qdrant test double behind a socat TLS proxy
//! (the test CA and certificate that tests/servers/start-tls.sh made), backed up in snapshot
//! mode through the real `ngbak` binary with `--ca-file`, and refused without it. And gRPC over
//! TLS (points mode): the double's gRPC server speaks TLS itself (socat cannot negotiate HTTP/2
//! by ALPN), trusted through `--ca-file` too (ngbak builds the gRPC channel's TLS itself).

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use qdrant_double::QdrantDouble;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const KEY: &str = "ngbak-tls-qdrant-key";

/// A socat TLS listener in front of `target`, stopped when dropped.
struct TlsProxy {
    child: Child,
    port: u16,
}

impl TlsProxy {
    fn start(target: &str, cert: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let target = target.trim_start_matches("http://");
        let child = Command::new("socat")
            .arg(format!("OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},verify=0", cert.display()))
            .arg(format!("TCP:{target}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (tests/servers/install.sh installs it)");
        for _ in 0..40 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        TlsProxy { child, port }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ngbak(args: Vec<String>, envs: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngbak"));
        for inherited in ["NGBAK_STORE", "REDIS_URL", "NEO4J_URI", "QDRANT_URL", "QDRANT_GRPC_URL", "NGBAK_CA_FILE"] {
            cmd.env_remove(inherited);
        }
        cmd.env("RUST_LOG", "warn").args(args).envs(envs).output().expect("running the ngbak binary")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn qdrant_rest_over_https_with_a_private_ca_backs_up_snapshots() {
    let ca = std::env::var("NGBAK_TEST_CA_FILE").expect("NGBAK_TEST_CA_FILE: run under tests/servers/with-servers.sh");
    let cert = Path::new(&ca).parent().unwrap().join("server-bundle.pem");
    let double = QdrantDouble::start(Some(KEY), "1.15.0").await;
    double.seed_hybrid("entities", 20, 8);
    let proxy = TlsProxy::start(&double.rest_url, &cert);
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("NGBAK_STORE", dir.path().to_str().unwrap().to_string()),
        ("QDRANT_URL", format!("https://127.0.0.1:{}", proxy.port)),
        ("QDRANT_API_KEY", KEY.to_string()),
    ];

    let out = ngbak(vec!["--ca-file".into(), ca.clone(), "backup".into(), "--json".into()], env.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["backends"]["qdrant"]["stats"]["vectors"], 20, "{summary}");

    let refused = ngbak(vec!["backup".into(), "--id".into(), "without_the_ca".into()], env).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "without the CA the server is not trusted");
    assert!(stderr.contains(&format!("127.0.0.1:{}", proxy.port)), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
}

/// Points mode over TLS gRPC, backed up and restored through the real `ngbak` binary, the private
/// CA given with `--ca-file` (`NGBAK_CA_FILE`) like for every other client. Without it the server
/// is refused, by host:port, as a certificate problem.
#[tokio::test(flavor = "multi_thread")]
async fn qdrant_grpc_over_tls_backs_up_and_restores_points_with_the_ca_file() {
    let ca = std::env::var("NGBAK_TEST_CA_FILE").expect("NGBAK_TEST_CA_FILE: run under tests/servers/with-servers.sh");
    let dir_tls = Path::new(&ca).parent().unwrap();
    let cert = std::fs::read(dir_tls.join("server.pem")).unwrap();
    let key = std::fs::read(dir_tls.join("server.key")).unwrap();
    let double = QdrantDouble::start_grpc_tls(Some(KEY), "1.15.0", &cert, &key).await;
    double.seed_hybrid("entities", 20, 8);
    assert!(double.grpc_url.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("NGBAK_STORE", dir.path().to_str().unwrap().to_string()),
        ("QDRANT_URL", double.rest_url.clone()),
        ("QDRANT_GRPC_URL", double.grpc_url.clone()),
        ("QDRANT_API_KEY", KEY.to_string()),
        ("NGBAK_QDRANT_MODE", "points".to_string()),
        ("NGBAK_REQUEST_TIMEOUT", "5".to_string()),
    ];
    let trusted = [env.clone(), vec![("NGBAK_CA_FILE", ca.clone())]].concat();

    let out = ngbak(vec!["backup".into(), "--id".into(), "grpc_tls".into(), "--json".into()], trusted.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["backends"]["qdrant"]["stats"]["vectors"], 20, "{summary}");
    assert_eq!(summary["backends"]["qdrant"]["details"]["mode"], "points", "{summary}");

    // Restored beside the original over the same TLS channel, and proven by the read-back.
    let args = ["restore", "grpc_tls", "--restore-as", "entities_tls", "--json"];
    let out = ngbak(args.iter().map(|a| a.to_string()).collect(), trusted).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["backends"]["qdrant"]["verified"], true, "{report}");
    assert_eq!(report["backends"]["qdrant"]["restored"]["vectors"], 20, "{report}");

    let refused = ngbak(vec!["backup".into(), "--id".into(), "grpc_untrusted".into()], env).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "without the CA the gRPC server is not trusted");
    let port = double.grpc_url.rsplit(':').next().unwrap();
    assert!(stderr.contains(&format!("localhost:{port}")), "{stderr}");
    assert!(stderr.contains("certificate"), "a certificate problem, said as one: {stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
}
