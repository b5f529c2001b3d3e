//! Amazon S3 (and S3-compatible servers) through aws-sdk-s3.
//!
//! Archives go up as multipart uploads with a part size that grows with the archive, so that any
//! object up to S3's 5 TiB limit fits in its 10,000 parts with no tuning, while memory stays
//! bounded by the bytes allowed in flight. Any failure aborts the upload.
//!
//! Over 500 lines on purpose: it is the one implementation of `ObjectStore` for S3, each method a
//! few SDK calls with the error an operator can act on; split, its halves would share every type.

use super::{GetObject, ObjectMeta, ObjectStore, PendingUpload, S3Options, Upload};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption, Tag, Tagging};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;

/// Part size for the first 1,000 parts; it doubles every 1,000 parts after that.
pub const BASE_PART_SIZE: u64 = 8 << 20;
/// S3's part size ceiling.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// Upload bytes held in flight at most (a single part may exceed it once parts grow).
pub const IN_FLIGHT_BYTES: u64 = 32 << 20;

/// The size of part `number` (1-based): 8 MiB for parts 1–1000, 16 MiB for 1001–2000, … so that
/// 10,000 parts hold about 8 TiB, more than S3's 5 TiB object limit.
pub fn part_size(number: u32) -> u64 {
    let doublings = (number.saturating_sub(1) / 1000).min(20);
    (BASE_PART_SIZE << doublings).min(MAX_PART_SIZE)
}

/// The S3-compatible endpoint in use, for errors that cannot say where they failed otherwise.
static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The S3-compatible endpoint in use (redacted), when one is set.
pub fn endpoint() -> Option<&'static str> {
    ENDPOINT.get().map(String::as_str)
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    kms_key_id: Option<String>,
}

impl S3Store {
    pub async fn connect(bucket: &str, prefix: &str, options: &S3Options) -> Result<Self> {
        let mut loader = crate::net::aws::loader();
        let endpoint = options
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty());
        if let Some(e) = &endpoint {
            loader = loader.endpoint_url(e);
            let _ = ENDPOINT.set(crate::net::redact_url(e));
        }
        let shared = loader.load().await;
        let shown = match &endpoint {
            Some(e) => crate::net::redact_url(e),
            None => format!("S3 in {}", shared.region().map_or("the default region".into(), |r| r.to_string())),
        };
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).interceptor(crate::net::aws::RetriesAloud { endpoint: shown });
        if endpoint.is_some() {
            config = config.force_path_style(true);
            if shared.region().is_none() {
                config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
            }
        }
        let mut prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            bucket: bucket.to_string(),
            prefix,
            kms_key_id: options.kms_key_id.clone().filter(|k| !k.is_empty()),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn fail<E>(&self, op: &str, key: &str, err: SdkError<E>) -> anyhow::Error
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        s3_error(op, &self.bucket, &self.full_key(key), err)
    }
}

/// Turns an SDK error into a message that names the operation and object and says what to do.
pub fn s3_error<E>(op: &str, bucket: &str, key: &str, err: SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or_default().to_string();
    let hint = match code.as_str() {
        "NoSuchBucket" => " — the bucket does not exist: create it or fix --store / NGBAK_STORE",
        "AccessDenied" => " — the credentials in use lack permission for this call on this bucket/prefix",
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            " — check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or the function's role)"
        }
        "BadDigest" | "InvalidDigest" => " — the bytes were damaged in transit; run the job again",
        _ if matches!(err, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
            let endpoint = ENDPOINT.get().map(String::as_str).unwrap_or("AWS S3");
            return anyhow!(
                "S3 {op} s3://{bucket}/{key} failed: {} — the S3 endpoint {endpoint} could not be reached or did \
                 not answer: check the network, AWS_ENDPOINT_URL, the region, and for HTTPS the CA (--ca-file); \
                 timeouts: NGBAK_CONNECT_TIMEOUT, NGBAK_REQUEST_TIMEOUT",
                DisplayErrorContext(&err)
            );
        }
        _ => "",
    };
    // A service error says enough in its code, message, status and request id; the SDK's full
    // context would add the whole raw response.
    if let Some(service) = err.as_service_error().filter(|e| e.code().is_some()) {
        let status = status_of(&err).map(|s| format!("HTTP {s}, ")).unwrap_or_default();
        let request = service.meta().extra("aws_request_id").unwrap_or("unknown");
        return anyhow!(
            "S3 {op} s3://{bucket}/{key} failed: {code}: {} ({status}request id {request}){hint}",
            service.message().unwrap_or("no message")
        );
    }
    anyhow!("S3 {op} s3://{bucket}/{key} failed: {}{hint}", DisplayErrorContext(&err))
}

fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[async_trait]
impl ObjectStore for S3Store {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let mut req =
            self.client.put_object().bucket(&self.bucket).key(self.full_key(key)).body(ByteStream::from(body));
        if let Some(k) = &self.kms_key_id {
            req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
        }
        req.send().await.map_err(|e| self.fail("PutObject", key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_none_match("*")
            .body(ByteStream::from(body));
        if let Some(k) = &self.kms_key_id {
            req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            // 412: something is there; 409: a concurrent conditional write is in progress.
            Err(e) if matches!(status_of(&e), Some(412 | 409)) => Ok(false),
            Err(e) => Err(self.fail("conditional PutObject", key, e)),
        }
    }

    async fn replace_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_match(etag)
            .body(ByteStream::from(body));
        if let Some(k) = &self.kms_key_id {
            req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            // 412: another version is there; 404: nothing is; 409: a concurrent conditional write.
            Err(e) if matches!(status_of(&e), Some(412 | 404 | 409)) => Ok(false),
            Err(e) => Err(self.fail("conditional PutObject (If-Match)", key, e)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        self.upload(key, None).await
    }

    async fn start_replacing(&self, key: &str, etag: &str) -> Result<Box<dyn Upload>> {
        self.upload(key, Some(etag.to_string())).await
    }

    async fn get(&self, key: &str, if_match: Option<&str>) -> Result<GetObject> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| self.fail("GetObject", key, e))?;
        let meta = ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or_default().max(0) as u64,
            modified: out.last_modified().and_then(to_chrono),
            etag: out.e_tag().map(str::to_string),
        };
        Ok(GetObject { meta, body: Box::new(out.body.into_async_read()) })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.client.head_object().bucket(&self.bucket).key(self.full_key(key)).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or_default().max(0) as u64,
                modified: out.last_modified().and_then(to_chrono),
                etag: out.e_tag().map(str::to_string),
            })),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail("HeadObject", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.full_key(prefix)).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail("ListObjectsV2", prefix, e))?;
            for obj in page.contents() {
                let Some(full) = obj.key() else { continue };
                let Some(key) = full.strip_prefix(&self.prefix) else { continue };
                if key.contains('/') {
                    continue;
                }
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: obj.size().unwrap_or_default().max(0) as u64,
                    modified: obj.last_modified().and_then(to_chrono),
                    etag: obj.e_tag().map(str::to_string),
                });
            }
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.fail("DeleteObject", key, e))?;
        Ok(())
    }

    async fn get_tags(&self, key: &str) -> Result<BTreeMap<String, String>> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| self.fail("GetObjectTagging", key, e))?;
        Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
    }

    async fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tag_set =
            tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect::<Result<Vec<_>, _>>()?;
        let tagging = Tagging::builder().set_tag_set(Some(tag_set)).build()?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| self.fail("PutObjectTagging", key, e))?;
        Ok(())
    }

    async fn presign_upload(&self, key: &str, parts: u32, expires: Duration) -> Result<super::PresignedUpload> {
        let config = PresigningConfig::expires_in(expires).context("presign expiry must be 1 s to 7 days")?;
        let (full_key, upload_id) = self.create_multipart(key).await?;
        let mut part_urls = Vec::with_capacity(parts as usize);
        for part in 1..=parts as i32 {
            let presigned = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&full_key)
                .upload_id(&upload_id)
                .part_number(part)
                .presigned(config.clone())
                .await
                .map_err(|e| self.fail("presign UploadPart", key, e))?;
            part_urls.push(presigned.uri().to_string());
        }
        Ok(super::PresignedUpload { upload_id, part_urls })
    }

    async fn complete_presigned(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let parts = etags
            .iter()
            .zip(1..)
            .map(|(etag, number)| CompletedPart::builder().part_number(number).e_tag(etag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| self.fail("CompleteMultipartUpload", key, e))?;
        Ok(())
    }

    async fn presign_get(&self, key: &str, expires: Duration) -> Result<String> {
        if self.head(key).await?.is_none() {
            bail!("no object {key} in {}", self.url());
        }
        let config = PresigningConfig::expires_in(expires).context("presign expiry must be 1 s to 7 days")?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .presigned(config)
            .await
            .map_err(|e| self.fail("presign GetObject", key, e))?;
        Ok(req.uri().to_string())
    }

    async fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| self.fail("ListMultipartUploads", "", e))?;
            for u in page.uploads() {
                let (Some(full), Some(upload_id)) = (u.key(), u.upload_id()) else { continue };
                let Some(key) = full.strip_prefix(&self.prefix) else { continue };
                let started = u.initiated().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
                out.push(PendingUpload { key: key.to_string(), upload_id: upload_id.to_string(), started });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        out.sort_by_key(|u| u.started);
        Ok(out)
    }

    async fn abort_pending(&self, upload: &PendingUpload) -> Result<()> {
        abort_upload(&self.client, &self.bucket, &self.full_key(&upload.key), &upload.upload_id).await
    }

    async fn is_locked(&self, key: &str) -> Result<bool> {
        let full = self.full_key(key);
        match self.client.get_object_retention().bucket(&self.bucket).key(&full).send().await {
            Ok(r) => {
                let until = r.retention().and_then(|r| r.retain_until_date()).and_then(to_chrono);
                if until.is_some_and(|t| t > chrono::Utc::now()) {
                    return Ok(true);
                }
            }
            Err(e) if no_lock_configured(e.code()) => {}
            // Not knowing is not "not locked": a delete decision must not rest on it.
            Err(e) => return Err(self.fail("GetObjectRetention", key, e)),
        }
        match self.client.get_object_legal_hold().bucket(&self.bucket).key(&full).send().await {
            Ok(h) => Ok(h.legal_hold().and_then(|l| l.status().cloned())
                == Some(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)),
            Err(e) if no_lock_configured(e.code()) => Ok(false),
            Err(e) => Err(self.fail("GetObjectLegalHold", key, e)),
        }
    }
}

/// The answers S3 gives for an object that has no retention or legal hold (or a bucket without
/// Object Lock): these mean "not locked"; any other error means "unknown".
fn no_lock_configured(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("NoSuchObjectLockConfiguration" | "ObjectLockConfigurationNotFoundError" | "InvalidRequest" | "NoSuchKey")
    )
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A multipart upload whose parts go up in parallel, bounded by [`IN_FLIGHT_BYTES`].
impl S3Store {
    /// Starts a multipart upload to `key` (with the store's SSE-KMS key): its full key and id.
    async fn create_multipart(&self, key: &str) -> Result<(String, String)> {
        let full_key = self.full_key(key);
        let mut req = self.client.create_multipart_upload().bucket(&self.bucket).key(&full_key);
        if let Some(k) = &self.kms_key_id {
            req = req.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(k);
        }
        let created = req.send().await.map_err(|e| self.fail("CreateMultipartUpload", key, e))?;
        let upload_id = created.upload_id().context("S3 returned no upload id")?.to_string();
        Ok((full_key, upload_id))
    }

    /// A multipart upload that completes only while nothing is at the key (`replacing` none), or
    /// while the object there is still that version.
    async fn upload(&self, key: &str, replacing: Option<String>) -> Result<Box<dyn Upload>> {
        let (full_key, upload_id) = self.create_multipart(key).await?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full_key,
            upload_id,
            buffer: BytesMut::new(),
            next_part: 1,
            in_flight: JoinSet::new(),
            in_flight_bytes: 0,
            done: Vec::new(),
            size: 0,
            replacing,
        }))
    }
}

struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    buffer: BytesMut,
    next_part: u32,
    in_flight: JoinSet<Result<(CompletedPart, u64)>>,
    in_flight_bytes: u64,
    done: Vec<CompletedPart>,
    size: u64,
    /// Replace the object while it is this version (ETag); else never replace one.
    replacing: Option<String>,
}

impl S3Upload {
    fn send_part(&mut self, body: Bytes) {
        let number = self.next_part;
        self.next_part += 1;
        let len = body.len() as u64;
        self.in_flight_bytes += len;
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number as i32)
            .body(ByteStream::from(body));
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        self.in_flight.spawn(async move {
            let out = req.send().await.map_err(|e| s3_error(&format!("UploadPart {number}"), &bucket, &key, e))?;
            let part =
                CompletedPart::builder().part_number(number as i32).set_e_tag(out.e_tag().map(str::to_string)).build();
            Ok((part, len))
        });
    }

    /// Waits for one part in flight to finish.
    async fn reap_one(&mut self) -> Result<()> {
        if let Some(joined) = self.in_flight.join_next().await {
            let (part, len) = joined.context("part upload task failed")??;
            self.in_flight_bytes -= len;
            self.done.push(part);
        }
        Ok(())
    }
}

impl S3Upload {
    /// Whether the object under the key now is this upload, completed: same size, and the
    /// multipart ETag its parts give.
    async fn completed_as(&self, expected_etag: Option<&str>) -> bool {
        let Some(expected) = expected_etag else { return false };
        match self.client.head_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(head) => {
                head.content_length() == Some(self.size as i64)
                    && head.e_tag().map(|t| t.trim_matches('"')) == Some(expected)
            }
            Err(_) => false,
        }
    }
}

/// Aborts a multipart upload (`full_key` includes the store's prefix), freeing its parts.
async fn abort_upload(client: &Client, bucket: &str, full_key: &str, upload_id: &str) -> Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(full_key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| s3_error("AbortMultipartUpload", bucket, full_key, e))?;
    Ok(())
}

/// The ETag S3 gives a multipart object: the hex MD5 of the parts' binary MD5s, `-`, the number
/// of parts. `None` when a part's ETag is not a plain MD5.
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    use md5::Digest;
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for p in parts {
        md5s.extend(hex::decode(p.e_tag()?.trim_matches('"')).ok().filter(|d| d.len() == 16)?);
    }
    Some(format!("{}-{}", hex::encode(md5::Md5::digest(&md5s)), parts.len()))
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        loop {
            let want = part_size(self.next_part);
            if (self.buffer.len() as u64) < want {
                return Ok(());
            }
            if self.next_part > 10_000 {
                bail!("archive exceeds S3's 10,000-part limit (over 5 TiB)");
            }
            while !self.in_flight.is_empty() && self.in_flight_bytes + want > IN_FLIGHT_BYTES {
                self.reap_one().await?;
            }
            let part = self.buffer.split_to(want as usize).freeze();
            self.send_part(part);
        }
    }

    async fn complete(mut self: Box<Self>) -> Result<u64> {
        if !self.buffer.is_empty() || self.next_part == 1 {
            let last = self.buffer.split().freeze();
            self.send_part(last);
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let expected_etag = multipart_etag(&parts);
        // Conditional: an object that appeared under the key meanwhile (a second backup with the
        // same id) is never overwritten; this upload fails instead.
        let request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
        let completed = match &self.replacing {
            Some(etag) => request.if_match(etag).send().await,
            None => request.if_none_match("*").send().await,
        };
        match completed {
            Ok(_) => Ok(self.size),
            // An attempt completed it and its answer was lost (the SDK's retry then finds no
            // upload, or an object under the key): the object there is this upload's own.
            Err(_) if self.completed_as(expected_etag.as_deref()).await => {
                tracing::warn!(key = %self.key, "the upload was completed by an attempt whose answer was lost");
                Ok(self.size)
            }
            Err(e) => {
                let taken = e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
                    || e.code() == Some("PreconditionFailed");
                let error = if taken {
                    anyhow!(
                        "s3://{}/{} appeared while this upload ran (another job with the same id finished \
                         first); it was left as it is and this upload was discarded",
                        self.bucket,
                        self.key
                    )
                } else {
                    s3_error("CompleteMultipartUpload", &self.bucket, &self.key, e)
                };
                // Nothing may stay pending: a failed completion aborts the upload.
                if let Err(a) = abort_upload(&self.client, &self.bucket, &self.key, &self.upload_id).await {
                    return Err(error.context(format!(
                        "and aborting the upload failed too ({a:#}): a lifecycle rule removes it, or run \
                         `ngbak cleanup`"
                    )));
                }
                Err(error)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        abort_upload(&self.client, &self.bucket, &self.key, &self.upload_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_reach_five_tib_within_ten_thousand_parts() {
        let total: u64 = (1..=10_000).map(part_size).sum();
        assert!(total >= 5 << 40, "10,000 parts hold only {total} bytes");
        assert!((1..=10_000).all(|n| part_size(n) >= 5 << 20 && part_size(n) <= MAX_PART_SIZE));
        assert_eq!(part_size(1), BASE_PART_SIZE);
        assert_eq!(part_size(1000), BASE_PART_SIZE);
        assert_eq!(part_size(1001), 2 * BASE_PART_SIZE);
    }
}
