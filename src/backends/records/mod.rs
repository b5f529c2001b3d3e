//! The record formats the backends share: NDJSON parts (one record a line, cut at a size) and
//! the fast JSON string writer of the canonical lines (FORMAT.md).

pub(crate) mod json_text;
pub mod ndjson;
