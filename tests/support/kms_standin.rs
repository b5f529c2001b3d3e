//! `KmsEd25519StandIn`: a **test double** of AWS KMS's `GetPublicKey` and `Sign` for one key of
//! spec ECC_NIST_EDWARDS25519, because LocalStack (the emulator these tests run) has no Ed25519
//! keys: its CreateKey refuses that key spec. It speaks KMS's own wire protocol (AWS JSON 1.1,
//! `X-Amz-Target: TrentService.*`, blobs in base64) so that ngbak's real KMS client talks to it,
//! and signs with ring's Ed25519 — another implementation than the one that verifies (minisign's).
//! Signatures are pure Ed25519 over the raw message, as KMS's ED25519_SHA_512 with MessageType
//! RAW makes them. Any other call, key or algorithm is answered with KMS's error shapes.
#![allow(dead_code)]

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct KmsEd25519StandIn {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_KMS`.
    pub endpoint: String,
    /// The one key id it knows.
    pub key_id: String,
    /// The raw 32-byte public key.
    pub public: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn error(kind: &str, message: &str) -> Response {
    let body = json!({ "__type": kind, "message": message });
    (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.1")], body.to_string()).into_response()
}

impl KmsEd25519StandIn {
    pub async fn start() -> Self {
        let seed: [u8; 32] = rand_seed();
        let pair = Arc::new(Ed25519KeyPair::from_seed_unchecked(&seed).unwrap());
        let public = pair.public_key().as_ref().to_vec();
        let key_id = format!("standin-{}", uuid::Uuid::new_v4());
        let known = key_id.clone();
        let der = [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &public].concat();
        let app = axum::Router::new().route(
            "/",
            post(move |headers: HeaderMap, body: String| {
                let pair = pair.clone();
                let known = known.clone();
                let der = der.clone();
                async move {
                    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if request["KeyId"].as_str() != Some(known.as_str()) {
                        return error("NotFoundException", "no such key");
                    }
                    let answer = match target.as_str() {
                        "TrentService.GetPublicKey" => json!({
                            "KeyId": known, "PublicKey": b64(&der), "KeySpec": "ECC_NIST_EDWARDS25519",
                            "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ED25519_SHA_512"]
                        }),
                        "TrentService.Sign" => {
                            if request["SigningAlgorithm"] != "ED25519_SHA_512" || request["MessageType"] != "RAW" {
                                return error("ValidationException", "unsupported algorithm or message type");
                            }
                            let Some(message) = request["Message"]
                                .as_str()
                                .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
                            else {
                                return error("ValidationException", "no message");
                            };
                            if message.len() > 4096 {
                                return error("ValidationException", "message longer than 4096 bytes");
                            }
                            json!({
                                "KeyId": known, "Signature": b64(pair.sign(&message).as_ref()),
                                "SigningAlgorithm": "ED25519_SHA_512"
                            })
                        }
                        other => {
                            return error("UnsupportedOperationException", &format!("{other} is not stood in for"))
                        }
                    };
                    ([("content-type", "application/x-amz-json-1.1")], answer.to_string()).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        KmsEd25519StandIn { endpoint, key_id, public }
    }
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).unwrap();
    seed
}
