//! # tenant-scope-catalog
//!
//! What tenant-scope knows about a live database, read from it.
#![forbid(unsafe_code)]

mod backend;
pub mod contract;

pub use backend::{Backend, UnsupportedUrl};
