//! Sverka's collector: receives agent reports over HTTP, keeps each host's findings
//! over time per organization, and answers the questions of the people who act on them.
//! `src/main.rs` only calls [`cli::main`].
//!
//! - [`app`]: the state every request shares, and opening the store.
//! - [`server`]: every route in one router, and serving it (plain or TLS);
//!   [`connections`]: the accept loop with its time and per-address limits.
//! - [`jobs`]: the background jobs of a running server.
//! - [`api`]: the agent API (enroll, reports, catalog) and its limits.
//! - [`api_docs`]: the OpenAPI documents of both JSON APIs, generated from the routes,
//!   handlers and wire types.
//! - [`web`]: the dashboard for people and its JSON API.
//! - [`cli`]: the operator's commands.
//! - [`upstream`]: federation's lower side, pushing figures to an upstream collector
//!   (the upstream's side is [`api::federation`]).
//! - [`store`]: the `Store` trait and its SQLite and PostgreSQL implementations.
//! - [`catalog`], [`evaluate`]: the collector's catalog, and findings made with it.
//! - [`config`], [`tls`], [`keys`], [`export`]: settings, TLS, secrets and host keys,
//!   violation exports.

pub mod api;
pub mod api_docs;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod connections;
pub mod evaluate;
pub mod export;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod notify;
pub mod server;
pub mod store;
pub mod tls;
pub mod upstream;
pub mod web;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// The collector's client for the calls it makes (webhooks, the upstream): one call
/// may take `timeout` in all, redirects are not followed (a POST would turn into a
/// GET), TLS through rustls with ring.
pub(crate) fn outbound_http_client(
    timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider; ring is ours. Installing
    // fails harmlessly when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("sverka-collector/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Unix seconds as RFC 3339 UTC, for people and exports.
pub fn format_time(seconds: i64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
