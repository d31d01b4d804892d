//! # tenant-scope-cli
//!
//! The library half of the `tenant-scope` command line: [`codegen`], SeaORM entities generated from
//! the live schema with tenant scoping built in. The binary (`src/main.rs`) adds `check` (the schema
//! lint and integrity scan of `tenant_scope_schema::check`) and `check --source` (the source guard of
//! `tenant_scope_guard`).
#![forbid(unsafe_code)]

pub mod codegen;
