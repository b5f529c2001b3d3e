//! ngbak: back up and restore a GraphRAG deployment as one streaming `.ngbak` archive.
//!
//! Data flows `sources` (backend exporters and restorers) → `archive` (tar, gzip, hashing,
//! manifest) → `store` (S3 or a directory); `pipeline` wires them into jobs, and `cli` and
//! `lambda` are thin entry points on top.

pub mod alloc;
pub mod archive;
pub mod check;
pub mod cli;
pub mod config;
pub mod id;
pub mod lambda;
pub mod net;
pub mod pipeline;
pub mod progress;
pub mod runner;
pub mod secrets;
pub mod sources;
pub mod stop;
pub mod store;
pub mod telemetry;
