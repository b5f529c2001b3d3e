//! The jobs, wiring sources, the archive and a store together.

pub mod backup;
pub mod catalog;
pub mod cleanup;
pub mod import;
pub mod restore;
pub mod retention;

/// Version stamped into archives.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
