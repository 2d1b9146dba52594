//! Sverka's collector: receives agent reports over HTTP, keeps each host's findings
//! over time per organization, and answers the questions of the people who act on them.
//!
//! - [`store`]: the `Store` trait and its SQLite implementation.
//! - [`api`]: the agent API (enroll, reports, catalog) on axum.
//! - [`evaluate`]: turning inventories and evidence into findings with the catalog.
//! - [`catalog`]: the collector's current catalog and its re-evaluation.
//! - [`config`]: TOML configuration with environment overrides.
//! - [`cli`]: the operator's commands.
//! - [`web`]: the dashboard for people and its JSON API.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod evaluate;
pub mod export;
pub mod keys;
pub mod limits;
pub mod store;
pub mod tls;
pub mod web;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC, for people and exports.
pub fn format_time(seconds: i64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
