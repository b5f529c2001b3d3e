//! ngbak: back up and restore a GraphRAG deployment as one streaming `.ngbak` archive.
//!
//! Data flows `backends` (one folder per backend: export, restore, read-back) → `archive` (tar,
//! compression, hashing, manifest) → `store` (S3 or a directory); `pipeline` wires them into
//! jobs; `handoff` decides where a job runs; `cli`, `lambda` and `runner` (the container task)
//! are the hosts on top, and `api` the HTTP face over them (`ngbak serve`, the API function).

pub mod alloc;
pub mod api;
pub mod archive;
pub mod authenticity;
pub mod backends;
pub mod check;
pub mod cli;
pub mod config;
pub mod consistency;
pub mod encryption;
pub mod failure;
pub mod handoff;
pub mod id;
pub mod lambda;
pub mod net;
pub mod pipeline;
pub mod progress;
pub mod runner;
pub mod secrets;
pub mod stop;
pub mod store;
pub mod telemetry;
