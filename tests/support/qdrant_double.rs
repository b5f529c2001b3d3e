//! `QdrantDouble`: a **test double** of a Qdrant server, because a real Qdrant does not install
//! from the package registries these machines reach (and there is no Docker). It speaks the real
//! wire protocols — the gRPC `Collections`, `Points` and `Qdrant` services from qdrant-client's
//! generated server traits, and the REST snapshot endpoints — for exactly the calls ngbak makes,
//! following Qdrant's documented behaviour: the `api-key` check on every request (401 /
//! UNAUTHENTICATED), scroll pagination with `next_page_offset`, 404 for missing collections and
//! snapshots. Its snapshot files are its own format (Qdrant's are opaque to ngbak anyway). It can
//! fail on demand: cut a snapshot download short, refuse an upload. Every other RPC answers
//! UNIMPLEMENTED. With NGBAK_TEST_QDRANT_URL set, the tests use a real Qdrant instead.
#![allow(dead_code)]

use ::qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use ::qdrant_client::qdrant::points_server::{Points, PointsServer};
use ::qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use ::qdrant_client::qdrant::*;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use prost::Message;
use serde_json::{json, Value as Json_};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response as Reply, Status};

type R<T> = Result<Reply<T>, Status>;

#[derive(Default)]
struct Collection {
    config: CollectionConfig,
    payload_schema: HashMap<String, PayloadSchemaInfo>,
    /// Points in Qdrant's scroll order: integer ids, then UUIDs.
    points: BTreeMap<(u8, u64, String), RetrievedPoint>,
}

/// Faults to inject.
#[derive(Default, Clone)]
pub struct Faults {
    /// Send only this many bytes of a snapshot download, then drop the connection.
    pub cut_download_after: Option<usize>,
    /// Answer snapshot uploads with HTTP 500.
    pub refuse_upload: bool,
}

#[derive(Default)]
struct Inner {
    collections: BTreeMap<String, Collection>,
    snapshots: BTreeMap<(String, String), Vec<u8>>,
    aliases: BTreeMap<String, String>,
    seq: u64,
    /// Points scroll has answered with their vectors.
    vectors_sent: u64,
}

pub struct Shared {
    api_key: Option<String>,
    version: String,
    inner: Mutex<Inner>,
    pub faults: Mutex<Faults>,
}

/// A running double: its REST and gRPC addresses.
pub struct QdrantDouble {
    pub rest_url: String,
    pub grpc_url: String,
    pub shared: Arc<Shared>,
}

impl QdrantDouble {
    /// Starts a double on two free loopback ports, reporting `version`.
    pub async fn start(api_key: Option<&str>, version: &str) -> Self {
        Self::start_with(api_key, version, None).await
    }

    /// Like [`Self::start`], with gRPC over TLS (ALPN h2, as Qdrant serves it) with the given PEM
    /// certificate chain and key; `grpc_url` is then `https://localhost:<port>`.
    pub async fn start_grpc_tls(api_key: Option<&str>, version: &str, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        Self::start_with(api_key, version, Some(tonic::transport::Identity::from_pem(cert_pem, key_pem))).await
    }

    async fn start_with(api_key: Option<&str>, version: &str, tls: Option<tonic::transport::Identity>) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.map(str::to_string),
            version: version.to_string(),
            inner: Mutex::new(Inner::default()),
            faults: Mutex::new(Faults::default()),
        });
        let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest_url = format!("http://{}", rest.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/", get(root))
            .route("/collections", get(list_collections))
            .route("/collections/aliases", post(change_aliases))
            .route("/aliases", get(list_aliases))
            .route("/collections/{c}", get(collection_info))
            .route("/collections/{c}/snapshots", post(create_snapshot).get(list_snapshots))
            .route("/collections/{c}/snapshots/upload", post(upload_snapshot))
            .route("/collections/{c}/snapshots/{name}", get(download_snapshot).delete(delete_snapshot))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(rest, app).await.unwrap() });

        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_url = match tls {
            Some(_) => format!("https://localhost:{}", grpc.local_addr().unwrap().port()),
            None => format!("http://{}", grpc.local_addr().unwrap()),
        };
        let service = Grpc(shared.clone());
        let key = shared.api_key.clone();
        let check = move |req: Request<()>| -> Result<Request<()>, Status> {
            match &key {
                Some(k) if req.metadata().get("api-key").and_then(|v| v.to_str().ok()) != Some(k.as_str()) => {
                    Err(Status::unauthenticated("Invalid api-key"))
                }
                _ => Ok(req),
            }
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc);
        let mut server = tonic::transport::Server::builder();
        if let Some(identity) = tls {
            server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).unwrap();
        }
        tokio::spawn(
            server
                .add_service(CollectionsServer::with_interceptor(service.clone(), check.clone()))
                .add_service(PointsServer::with_interceptor(service.clone(), check.clone()))
                .add_service(QdrantServer::with_interceptor(service, check))
                .serve_with_incoming(incoming),
        );
        QdrantDouble { rest_url, grpc_url, shared }
    }

    /// Names of the server-side snapshots of a collection.
    pub fn snapshots(&self, collection: &str) -> Vec<String> {
        let inner = self.shared.inner.lock().unwrap();
        inner.snapshots.keys().filter(|(c, _)| c == collection).map(|(_, n)| n.clone()).collect()
    }

    /// How many points scroll has answered with their vectors.
    pub fn vectors_sent(&self) -> u64 {
        self.shared.inner.lock().unwrap().vectors_sent
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }
}

// ------------------------------------------------------------------ REST

/// The 401 answer for a request without the right `api-key` header, if it lacks one.
fn rejected(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match &shared.api_key {
        Some(k) if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(k.as_str()) => Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "status": { "error": "Must provide an API key or an Authorization bearer token" } })),
            )
                .into_response(),
        ),
        _ => None,
    }
}

fn ok(result: Json_) -> Response {
    Json(json!({ "result": result, "status": "ok", "time": 0.0 })).into_response()
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "status": { "error": format!("Not found: {what}") } }))).into_response()
}

async fn root(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    Json(json!({ "title": "qdrant - vector search engine (ngbak test double)", "version": s.version })).into_response()
}

async fn list_collections(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let names: Vec<_> = s.inner.lock().unwrap().collections.keys().map(|n| json!({ "name": n })).collect();
    ok(json!({ "collections": names }))
}

async fn collection_info(State(s): State<Arc<Shared>>, h: HeaderMap, Path(c): Path<String>) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let inner = s.inner.lock().unwrap();
    match inner.collections.get(&c) {
        Some(coll) => ok(json!({ "status": "green", "points_count": coll.points.len(), "config": { "params": {} } })),
        None => not_found(format!("Collection `{c}` doesn't exist!")),
    }
}

/// The double's snapshot file: the collection info, then every point, length-delimited.
fn snapshot_bytes(coll: &Collection) -> Vec<u8> {
    let info = CollectionInfo {
        config: Some(coll.config.clone()),
        payload_schema: coll.payload_schema.clone(),
        ..Default::default()
    };
    let mut out = info.encode_length_delimited_to_vec();
    for p in coll.points.values() {
        out.extend(p.encode_length_delimited_to_vec());
    }
    out
}

fn collection_from_snapshot(mut bytes: &[u8]) -> Result<Collection, prost::DecodeError> {
    let info = CollectionInfo::decode_length_delimited(&mut bytes)?;
    let mut coll = Collection {
        config: info.config.unwrap_or_default(),
        payload_schema: info.payload_schema,
        ..Default::default()
    };
    while !bytes.is_empty() {
        let p = RetrievedPoint::decode_length_delimited(&mut bytes)?;
        coll.points.insert(order_key(p.id.as_ref().unwrap()), p);
    }
    Ok(coll)
}

async fn create_snapshot(State(s): State<Arc<Shared>>, h: HeaderMap, Path(c): Path<String>) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let mut inner = s.inner.lock().unwrap();
    let Some(coll) = inner.collections.get(&c) else { return not_found(format!("Collection `{c}` doesn't exist!")) };
    let bytes = snapshot_bytes(coll);
    inner.seq += 1;
    let name = format!("{c}-{}-2026-11-23-03-00-00.snapshot", inner.seq);
    let size = bytes.len();
    inner.snapshots.insert((c, name.clone()), bytes);
    ok(json!({ "name": name, "size": size, "creation_time": "2026-11-23T03:00:00" }))
}

async fn list_snapshots(State(s): State<Arc<Shared>>, h: HeaderMap, Path(c): Path<String>) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let inner = s.inner.lock().unwrap();
    let names: Vec<_> = inner.snapshots.keys().filter(|(k, _)| k == &c).map(|(_, n)| json!({ "name": n })).collect();
    ok(json!(names))
}

async fn download_snapshot(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    Path((c, name)): Path<(String, String)>,
) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let Some(bytes) = s.inner.lock().unwrap().snapshots.get(&(c, name.clone())).cloned() else {
        return not_found(format!("Snapshot {name} not found"));
    };
    let len = bytes.len();
    let cut = s.faults.lock().unwrap().cut_download_after;
    let body = match cut {
        Some(n) => {
            let head = bytes::Bytes::copy_from_slice(&bytes[..n.min(len)]);
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                vec![Ok(head), Err(std::io::Error::other("connection dropped by the test double"))];
            Body::from_stream(futures::stream::iter(chunks))
        }
        None => Body::from(bytes),
    };
    Response::builder()
        .header("content-length", len)
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap()
}

async fn delete_snapshot(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    Path((c, name)): Path<(String, String)>,
) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    match s.inner.lock().unwrap().snapshots.remove(&(c, name.clone())) {
        Some(_) => ok(json!(true)),
        None => not_found(format!("Snapshot {name} not found")),
    }
}

async fn upload_snapshot(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    Path(c): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mut form: Multipart,
) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    assert_eq!(q.get("priority").map(String::as_str), Some("snapshot"), "ngbak uploads with priority=snapshot");
    let mut data = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("snapshot") {
            let name = field.file_name().unwrap_or("upload.snapshot").to_string();
            data = Some((name, field.bytes().await.unwrap()));
        }
    }
    let Some((name, data)) = data else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "status": { "error": "no snapshot field" } }))).into_response();
    };
    // Like Qdrant (seen on 1.15): the uploaded file stays among the collection's snapshots, under
    // the uploaded file name, whether recovery succeeds or not, until someone deletes it.
    s.inner.lock().unwrap().snapshots.insert((c.clone(), name), data.to_vec());
    if s.faults.lock().unwrap().refuse_upload {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "status": { "error": "Service internal error: refused by the test double" } })),
        )
            .into_response();
    }
    match collection_from_snapshot(&data) {
        Ok(coll) => {
            s.inner.lock().unwrap().collections.insert(c, coll);
            ok(json!(true))
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "status": { "error": format!("bad snapshot: {e}") } })))
            .into_response(),
    }
}

/// `POST /collections/aliases`: all actions or none, as Qdrant applies them.
async fn change_aliases(State(s): State<Arc<Shared>>, h: HeaderMap, Json(body): Json<Json_>) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let mut inner = s.inner.lock().unwrap();
    let mut aliases = inner.aliases.clone();
    for action in body["actions"].as_array().cloned().unwrap_or_default() {
        if let Some(a) = action.get("create_alias") {
            let (c, name) =
                (a["collection_name"].as_str().unwrap_or_default(), a["alias_name"].as_str().unwrap_or_default());
            if !inner.collections.contains_key(c) {
                return not_found(format!("Collection `{c}` doesn't exist!"));
            }
            aliases.insert(name.to_string(), c.to_string());
        } else if let Some(a) = action.get("delete_alias") {
            let name = a["alias_name"].as_str().unwrap_or_default();
            if aliases.remove(name).is_none() {
                return not_found(format!("Alias {name} does not exist"));
            }
        }
    }
    inner.aliases = aliases;
    ok(json!(true))
}

async fn list_aliases(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(e) = rejected(&s, &h) {
        return e;
    }
    let inner = s.inner.lock().unwrap();
    let list: Vec<_> = inner.aliases.iter().map(|(a, c)| json!({ "alias_name": a, "collection_name": c })).collect();
    ok(json!({ "aliases": list }))
}

/// The collection an alias points to.
impl QdrantDouble {
    pub fn alias(&self, name: &str) -> Option<String> {
        self.shared.inner.lock().unwrap().aliases.get(name).cloned()
    }
}

// ------------------------------------------------------------------ gRPC

#[derive(Clone)]
struct Grpc(Arc<Shared>);

fn order_key(id: &PointId) -> (u8, u64, String) {
    match &id.point_id_options {
        Some(point_id::PointIdOptions::Num(n)) => (0, *n, String::new()),
        Some(point_id::PointIdOptions::Uuid(u)) => (1, 0, u.clone()),
        None => (2, 0, String::new()),
    }
}

/// A stored point as the server returns it (vectors as `VectorOutput`).
fn retrieved(p: PointStruct) -> RetrievedPoint {
    let out = |v: Vector| VectorOutput {
        vector: v.vector.map(|inner| match inner {
            vector::Vector::Dense(d) => vector_output::Vector::Dense(d),
            vector::Vector::Sparse(s) => vector_output::Vector::Sparse(s),
            vector::Vector::MultiDense(m) => vector_output::Vector::MultiDense(m),
            other => panic!("the test double stores no {other:?}"),
        }),
        ..Default::default()
    };
    let vectors = p.vectors.and_then(|v| v.vectors_options).map(|o| VectorsOutput {
        vectors_options: Some(match o {
            vectors::VectorsOptions::Vector(v) => vectors_output::VectorsOptions::Vector(out(v)),
            vectors::VectorsOptions::Vectors(named) => vectors_output::VectorsOptions::Vectors(NamedVectorsOutput {
                vectors: named.vectors.into_iter().map(|(k, v)| (k, out(v))).collect(),
            }),
        }),
    });
    RetrievedPoint { id: p.id, payload: p.payload, vectors, ..Default::default() }
}

/// Keeps of a point what a read asked for: the payload fields selected, the vectors when asked.
/// (Unset selectors keep everything, as this double always answered.)
fn select(p: &mut RetrievedPoint, payload: Option<&WithPayloadSelector>, vectors: Option<&WithVectorsSelector>) {
    use with_payload_selector::SelectorOptions as P;
    match payload.and_then(|w| w.selector_options.as_ref()) {
        Some(P::Enable(false)) => p.payload.clear(),
        Some(P::Include(i)) => p.payload.retain(|k, _| i.fields.contains(k)),
        Some(P::Exclude(e)) => p.payload.retain(|k, _| !e.fields.contains(k)),
        Some(P::Enable(true)) | None => {}
    }
    if let Some(with_vectors_selector::SelectorOptions::Enable(false)) =
        vectors.and_then(|w| w.selector_options.as_ref())
    {
        p.vectors = None;
    }
}

fn missing(c: &str) -> Status {
    Status::not_found(format!("Not found: Collection `{c}` doesn't exist!"))
}

fn done() -> CollectionOperationResponse {
    CollectionOperationResponse { result: true, time: 0.0 }
}

fn updated() -> PointsOperationResponse {
    PointsOperationResponse {
        result: Some(UpdateResult { operation_id: Some(0), status: UpdateStatus::Completed as i32 }),
        time: 0.0,
        usage: None,
    }
}

/// RPCs ngbak never calls answer UNIMPLEMENTED. (Written in the boxed-future form that
/// `#[async_trait]` gives trait methods, since a macro expands after that attribute has run.)
macro_rules! unimplemented_rpcs {
    ($($name:ident($req:ty) -> $resp:ty;)*) => {
        $(fn $name<'life0, 'async_trait>(
            &'life0 self,
            _: Request<$req>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = R<$resp>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(Status::unimplemented(concat!("the Qdrant test double does not implement ", stringify!($name)))) })
        })*
    };
}

#[tonic::async_trait]
impl Qdrant for Grpc {
    async fn health_check(&self, _: Request<HealthCheckRequest>) -> R<HealthCheckReply> {
        Ok(Reply::new(HealthCheckReply {
            title: "qdrant (test double)".into(),
            version: self.0.version.clone(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl Collections for Grpc {
    async fn get(&self, r: Request<GetCollectionInfoRequest>) -> R<GetCollectionInfoResponse> {
        let c = r.into_inner().collection_name;
        let inner = self.0.inner.lock().unwrap();
        let coll = inner.collections.get(&c).ok_or_else(|| missing(&c))?;
        let info = CollectionInfo {
            status: CollectionStatus::Green as i32,
            config: Some(coll.config.clone()),
            payload_schema: coll.payload_schema.clone(),
            points_count: Some(coll.points.len() as u64),
            ..Default::default()
        };
        Ok(Reply::new(GetCollectionInfoResponse { result: Some(info), time: 0.0 }))
    }

    async fn list(&self, _: Request<ListCollectionsRequest>) -> R<ListCollectionsResponse> {
        let inner = self.0.inner.lock().unwrap();
        let collections = inner.collections.keys().map(|n| CollectionDescription { name: n.clone() }).collect();
        Ok(Reply::new(ListCollectionsResponse { collections, time: 0.0 }))
    }

    #[allow(deprecated)]
    async fn create(&self, r: Request<CreateCollection>) -> R<CollectionOperationResponse> {
        let c = r.into_inner();
        let mut inner = self.0.inner.lock().unwrap();
        if inner.collections.contains_key(&c.collection_name) {
            return Err(Status::already_exists(format!("Collection `{}` already exists!", c.collection_name)));
        }
        let config = CollectionConfig {
            params: Some(CollectionParams {
                shard_number: c.shard_number.unwrap_or(1),
                on_disk_payload: c.on_disk_payload.unwrap_or(true),
                vectors_config: c.vectors_config,
                replication_factor: c.replication_factor,
                write_consistency_factor: c.write_consistency_factor,
                sharding_method: c.sharding_method,
                sparse_vectors_config: c.sparse_vectors_config,
                payload: c.payload,
                ..Default::default()
            }),
            hnsw_config: c.hnsw_config,
            optimizer_config: c.optimizers_config,
            wal_config: c.wal_config,
            quantization_config: c.quantization_config,
            strict_mode_config: c.strict_mode_config,
            metadata: c.metadata,
        };
        inner.collections.insert(c.collection_name, Collection { config, ..Default::default() });
        Ok(Reply::new(done()))
    }

    async fn delete(&self, r: Request<DeleteCollection>) -> R<CollectionOperationResponse> {
        let c = r.into_inner().collection_name;
        let removed = self.0.inner.lock().unwrap().collections.remove(&c).is_some();
        Ok(Reply::new(CollectionOperationResponse { result: removed, time: 0.0 }))
    }

    async fn update_aliases(&self, r: Request<ChangeAliases>) -> R<CollectionOperationResponse> {
        let mut inner = self.0.inner.lock().unwrap();
        let mut aliases = inner.aliases.clone(); // all or nothing, as Qdrant applies them
        for op in r.into_inner().actions {
            match op.action {
                Some(alias_operations::Action::CreateAlias(a)) => {
                    if !inner.collections.contains_key(&a.collection_name) {
                        return Err(missing(&a.collection_name));
                    }
                    aliases.insert(a.alias_name, a.collection_name);
                }
                Some(alias_operations::Action::DeleteAlias(a)) => {
                    aliases
                        .remove(&a.alias_name)
                        .ok_or_else(|| Status::not_found(format!("Alias {} does not exist", a.alias_name)))?;
                }
                Some(alias_operations::Action::RenameAlias(a)) => {
                    let target = aliases.remove(&a.old_alias_name).ok_or_else(|| Status::not_found("no such alias"))?;
                    aliases.insert(a.new_alias_name, target);
                }
                None => {}
            }
        }
        inner.aliases = aliases;
        Ok(Reply::new(done()))
    }

    async fn list_aliases(&self, _: Request<ListAliasesRequest>) -> R<ListAliasesResponse> {
        let inner = self.0.inner.lock().unwrap();
        let aliases = inner
            .aliases
            .iter()
            .map(|(a, c)| AliasDescription { alias_name: a.clone(), collection_name: c.clone() })
            .collect();
        Ok(Reply::new(ListAliasesResponse { aliases, time: 0.0 }))
    }

    async fn collection_exists(&self, r: Request<CollectionExistsRequest>) -> R<CollectionExistsResponse> {
        let exists = self.0.inner.lock().unwrap().collections.contains_key(&r.into_inner().collection_name);
        Ok(Reply::new(CollectionExistsResponse { result: Some(CollectionExists { exists }), time: 0.0 }))
    }

    unimplemented_rpcs! {
        update(UpdateCollection) -> CollectionOperationResponse;
        list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
        collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
        update_collection_cluster_setup(UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
        create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

#[tonic::async_trait]
impl Points for Grpc {
    async fn upsert(&self, r: Request<UpsertPoints>) -> R<PointsOperationResponse> {
        let u = r.into_inner();
        let mut inner = self.0.inner.lock().unwrap();
        let coll = inner.collections.get_mut(&u.collection_name).ok_or_else(|| missing(&u.collection_name))?;
        for p in u.points {
            let key = order_key(p.id.as_ref().ok_or_else(|| Status::invalid_argument("point without id"))?);
            coll.points.insert(key, retrieved(p));
        }
        Ok(Reply::new(updated()))
    }

    async fn scroll(&self, r: Request<ScrollPoints>) -> R<ScrollResponse> {
        let s = r.into_inner();
        let inner = self.0.inner.lock().unwrap();
        let coll = inner.collections.get(&s.collection_name).ok_or_else(|| missing(&s.collection_name))?;
        let limit = s.limit.unwrap_or(10) as usize;
        let start = s.offset.as_ref().map(order_key).unwrap_or((0, 0, String::new()));
        let mut page: Vec<RetrievedPoint> =
            coll.points.range(start..).take(limit + 1).map(|(_, p)| p.clone()).collect();
        let next_page_offset = if page.len() > limit { page.pop().and_then(|p| p.id) } else { None };
        for p in &mut page {
            select(p, s.with_payload.as_ref(), s.with_vectors.as_ref());
        }
        drop(inner);
        self.0.inner.lock().unwrap().vectors_sent += page.iter().filter(|p| p.vectors.is_some()).count() as u64;
        Ok(Reply::new(ScrollResponse { next_page_offset, result: page, time: 0.0, usage: None }))
    }

    async fn count(&self, r: Request<CountPoints>) -> R<CountResponse> {
        let c = r.into_inner().collection_name;
        let inner = self.0.inner.lock().unwrap();
        let n = inner.collections.get(&c).ok_or_else(|| missing(&c))?.points.len() as u64;
        Ok(Reply::new(CountResponse { result: Some(CountResult { count: n }), time: 0.0, usage: None }))
    }

    async fn create_field_index(&self, r: Request<CreateFieldIndexCollection>) -> R<PointsOperationResponse> {
        let f = r.into_inner();
        let mut inner = self.0.inner.lock().unwrap();
        let coll = inner.collections.get_mut(&f.collection_name).ok_or_else(|| missing(&f.collection_name))?;
        let info = PayloadSchemaInfo {
            data_type: f.field_type.unwrap_or_default(),
            params: f.field_index_params,
            points: Some(0),
        };
        coll.payload_schema.insert(f.field_name, info);
        Ok(Reply::new(updated()))
    }

    unimplemented_rpcs! {
        delete(DeletePoints) -> PointsOperationResponse;
        get(GetPoints) -> GetResponse;
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        set_payload(SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search(SearchPoints) -> SearchResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query(QueryPoints) -> QueryResponse;
        query_batch(QueryBatchPoints) -> QueryBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        facet(FacetCounts) -> FacetResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}

impl QdrantDouble {
    /// Fills a nano-graphrag hybrid collection directly (for the benchmark): `n` points with a
    /// `dim`-dimensional dense vector, sparse vectors `sparse` and `sparse_name`, and payloads.
    pub fn seed_hybrid(&self, name: &str, n: u64, dim: u64) {
        let params = VectorParams { size: dim, distance: Distance::Cosine as i32, ..Default::default() };
        let config = CollectionConfig {
            params: Some(CollectionParams {
                shard_number: 1,
                vectors_config: Some(VectorsConfig {
                    config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                        map: HashMap::from([("dense".to_string(), params)]),
                    })),
                }),
                sparse_vectors_config: Some(SparseVectorConfig {
                    map: HashMap::from([
                        ("sparse".into(), SparseVectorParams::default()),
                        ("sparse_name".into(), SparseVectorParams::default()),
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut coll = Collection { config, ..Default::default() };
        for i in 0..n {
            let out = |v: vector_output::Vector| VectorOutput { vector: Some(v), ..Default::default() };
            let named = HashMap::from([
                (
                    "dense".to_string(),
                    out(vector_output::Vector::Dense(DenseVector {
                        data: (0..dim).map(|d| ((i * dim + d) as f32).sin()).collect(),
                    })),
                ),
                (
                    "sparse".to_string(),
                    out(vector_output::Vector::Sparse(SparseVector {
                        indices: vec![(i % 1000) as u32, 5000],
                        values: vec![0.5, 0.25],
                    })),
                ),
                (
                    "sparse_name".to_string(),
                    out(vector_output::Vector::Sparse(SparseVector {
                        indices: vec![(i % 50) as u32],
                        values: vec![1.0],
                    })),
                ),
            ]);
            let payload = HashMap::from([
                ("entity_name".to_string(), Value::from(format!("ENTITY-{i}"))),
                ("entity_type".to_string(), Value::from("PERSON")),
                (
                    "content".to_string(),
                    Value::from(format!("Entity {i}: a description of some length, as nano-graphrag stores it.")),
                ),
            ]);
            let id = PointId { point_id_options: Some(point_id::PointIdOptions::Num(i)) };
            let p = RetrievedPoint {
                id: Some(id.clone()),
                payload,
                vectors: Some(VectorsOutput {
                    vectors_options: Some(vectors_output::VectorsOptions::Vectors(NamedVectorsOutput {
                        vectors: named,
                    })),
                }),
                ..Default::default()
            };
            coll.points.insert(order_key(&id), p);
        }
        self.shared.inner.lock().unwrap().collections.insert(name.to_string(), coll);
    }
}
