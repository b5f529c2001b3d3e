//! Qdrant's gRPC services, called through the generated clients on a channel we build
//! ([`crate::net::clients::qdrant_channel`]): qdrant-client's own `Qdrant` builds its TLS from the
//! system roots alone, so `--ca-file` could not reach it. Each call carries the API key, the
//! policy's answer timeout (set on the channel), and reads and repeatable writes are retried on
//! transport failures like every other backend's.

use crate::net::timeouts::backoff;
use crate::net::{policy, redact::scrub};
use anyhow::{anyhow, Result};
use backon::Retryable;
use qdrant_client::qdrant::{
    collections_client::CollectionsClient, points_client::PointsClient, qdrant_client::QdrantClient,
    CollectionExistsRequest, CollectionInfo, CreateCollection, CreateFieldIndexCollection, DeleteCollection,
    GetCollectionInfoRequest, HealthCheckReply, HealthCheckRequest, ScrollPoints, ScrollResponse, UpsertPoints,
};
use std::future::Future;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Qdrant's API key header.
const API_KEY_HEADER: &str = "api-key";

/// One gRPC connection to Qdrant (opened on first use, re-opened by tonic when it drops).
#[derive(Clone)]
pub struct Grpc {
    channel: Channel,
    api_key: Option<MetadataValue<Ascii>>,
}

/// Whether a failed call may be sent again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, and writes that land the same however often they are sent (upserts by id).
    Safe,
    /// Creating or dropping a collection: a second attempt after a lost answer would fail or
    /// undo, so it is sent once.
    Once,
}

impl Grpc {
    /// The client for `url` (`http://` or `https://`, port 6334 by default).
    pub fn new(url: &str, api_key: Option<&str>) -> Result<Grpc> {
        let channel = crate::net::clients::qdrant_channel(url)?;
        let api_key = api_key
            .map(|k| k.parse::<MetadataValue<Ascii>>())
            .transpose()
            .map_err(|_| anyhow!("the Qdrant API key holds characters a gRPC header cannot carry"))?;
        Ok(Grpc { channel, api_key })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(key) = &self.api_key {
            request.metadata_mut().insert(API_KEY_HEADER, key.clone());
        }
        request
    }

    fn collections(&self) -> CollectionsClient<Channel> {
        CollectionsClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    fn points(&self) -> PointsClient<Channel> {
        PointsClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    /// Runs `op`, again after a backoff while it fails on the transport and `repeat` allows.
    async fn call<T, F, Fut>(&self, what: &str, repeat: Repeat, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let attempts = if repeat == Repeat::Safe { policy().max_attempts.max(1) } else { 1 };
        let result = (|| async { op().await.map(tonic::Response::into_inner) })
            .retry(backoff(attempts))
            .sleep(tokio::time::sleep)
            .when(is_transient)
            .notify(|status, pause| {
                tracing::warn!(
                    what,
                    error = %describe(status),
                    retry_in_ms = pause.as_millis() as u64,
                    "Qdrant gRPC call failed; retrying"
                )
            })
            .await;
        result.map_err(|status| anyhow!("{}", describe(&status)))
    }

    pub async fn health_check(&self) -> Result<HealthCheckReply> {
        let client = QdrantClient::new(self.channel.clone());
        self.call("health check", Repeat::Safe, || async {
            client.clone().health_check(self.request(HealthCheckRequest {})).await
        })
        .await
    }

    pub async fn collection_exists(&self, name: &str) -> Result<bool> {
        let message = CollectionExistsRequest { collection_name: name.to_string() };
        let reply = self
            .call("collection exists", Repeat::Safe, || async {
                self.collections().collection_exists(self.request(message.clone())).await
            })
            .await?;
        Ok(reply.result.is_some_and(|r| r.exists))
    }

    pub async fn collection_info(&self, name: &str) -> Result<CollectionInfo> {
        let message = GetCollectionInfoRequest { collection_name: name.to_string() };
        let reply = self
            .call("collection info", Repeat::Safe, || async {
                self.collections().get(self.request(message.clone())).await
            })
            .await?;
        reply.result.ok_or_else(|| anyhow!("Qdrant returned no info for {name}"))
    }

    pub async fn delete_collection(&self, message: DeleteCollection) -> Result<()> {
        self.call("delete collection", Repeat::Once, || async {
            self.collections().delete(self.request(message.clone())).await
        })
        .await?;
        Ok(())
    }

    pub async fn create_collection(&self, message: CreateCollection) -> Result<()> {
        self.call("create collection", Repeat::Once, || async {
            self.collections().create(self.request(message.clone())).await
        })
        .await?;
        Ok(())
    }

    pub async fn create_field_index(&self, message: CreateFieldIndexCollection) -> Result<()> {
        self.call("create payload index", Repeat::Safe, || async {
            self.points().create_field_index(self.request(message.clone())).await
        })
        .await?;
        Ok(())
    }

    pub async fn scroll(&self, message: ScrollPoints) -> Result<ScrollResponse> {
        self.call("scroll", Repeat::Safe, || async { self.points().scroll(self.request(message.clone())).await }).await
    }

    pub async fn upsert_points(&self, message: UpsertPoints) -> Result<()> {
        self.call("upsert", Repeat::Safe, || async { self.points().upsert(self.request(message.clone())).await })
            .await?;
        Ok(())
    }
}

/// Failures of the connection, not answers of the server: worth another attempt.
fn is_transient(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
        && !describe(status).contains("certificate")
}

/// The code, the server's message and, for a transport failure, its cause (a certificate
/// the channel does not trust, a refused connection, a timeout), scrubbed of secrets.
fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text += &format!(": {cause_text}");
        }
        source = cause.source();
    }
    scrub(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_are_retried() {
        assert!(is_transient(&Status::unavailable("connection reset")));
        assert!(!is_transient(&Status::invalid_argument("bad vector size")));
        assert!(!is_transient(&Status::not_found("no such collection")));
        assert!(!is_transient(&Status::unauthenticated("bad api key")));
        assert!(!is_transient(&Status::unavailable("invalid peer certificate: UnknownIssuer")));
    }
}
