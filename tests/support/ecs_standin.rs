//! `EcsStandIn`: a **recording stand-in for the ECS API**, because ECS cannot run on these
//! machines. It speaks the wire protocol aws-sdk-ecs uses (AWS JSON 1.1: `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`), records every request's
//! operation and JSON body, and answers `RunTask` with one task ARN — so the tests check the
//! request the real SDK sends, not a struct. It starts nothing: the tests run the task's command
//! themselves. Any other operation answers 400 `UnknownOperationException`.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/ngbak-test/0123456789abcdef";

#[derive(Clone, Default)]
pub struct EcsStandIn {
    /// (operation, JSON body), in arrival order.
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl EcsStandIn {
    /// Serves on a free loopback port; returns the endpoint URL (for `AWS_ENDPOINT_URL_ECS`).
    pub async fn start(&self) -> String {
        let app = axum::Router::new().route("/", post(answer)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    pub fn run_task_calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().iter().filter(|(op, _)| op == "RunTask").map(|(_, b)| b.clone()).collect()
    }
}

async fn answer(State(me): State<EcsStandIn>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let op = target.rsplit('.').next().unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    me.calls.lock().unwrap().push((op.clone(), body));
    let json_type = [("content-type", "application/x-amz-json-1.1")];
    if op == "RunTask" {
        let reply = json!({ "tasks": [{ "taskArn": TASK_ARN, "lastStatus": "PROVISIONING" }], "failures": [] });
        (StatusCode::OK, json_type, reply.to_string())
    } else {
        let reply = json!({ "__type": "UnknownOperationException", "message": format!("stand-in has no {target}") });
        (StatusCode::BAD_REQUEST, json_type, reply.to_string())
    }
}
