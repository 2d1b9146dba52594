//! The dashboard for people: server-rendered pages (maud, escaped by default), a
//! little JavaScript, exports, and a read-only JSON API with personal tokens. Its
//! routes are in [`crate::server::router`].
//!
//! - [`auth`]: passwords, sessions, CSRF, throttling, API tokens.
//! - [`scope`]: [`scope::authorize`], the one check every route makes.
//! - [`error`]: [`WebError`], the one failure type of page handlers.
//! - [`pages`]: sign-in, overview, school and PC pages; [`weekly`]: frozen weekly
//!   figures and the trend chart; [`admin`]: enrollment, catalog, users, audit, tokens;
//!   [`federation`]: the upstream and the links of lower collectors;
//!   [`host_lifecycle`]: recently enrolled PCs, retiring and merging them.
//! - [`table`]: the table type behind pages and CSV/XLSX exports.
//! - [`json`]: the JSON API under `/api/v1/dashboard/`.

pub mod activity;
pub mod admin;
pub mod audit_words;
pub mod auth;
pub mod catalog_entry;
pub mod clock;
pub mod error;
pub mod evidence_words;
pub mod exports;
pub mod federation;
pub mod figures;
pub mod flash;
pub mod host_lifecycle;
pub mod i18n;
pub mod install;
pub mod installers;
pub mod json;
pub mod notifications;
pub mod officer_texts;
pub mod pages;
pub mod scope;
pub mod table;
pub mod weekly;
pub mod weekly_mail;
pub mod weekly_pcs;
pub mod weekly_print;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

use crate::app::AppState;
use crate::store::{NewAuditEntry, StoreError};
use auth::Throttle;
use clock::Clock;
pub use error::WebError;

/// Everything the dashboard's handlers share.
#[derive(Debug)]
pub struct WebState {
    pub app: Arc<AppState>,
    pub clock: Clock,
    pub secure_cookies: bool,
    pub session_seconds: i64,
    pub public_url: Option<String>,
    pub silent_after_days: u32,
    pub throttle: Throttle,
    /// The folder of the agent's installers (`[dashboard] installers`).
    pub installers: Option<std::path::PathBuf>,
    /// The SMTP server the weekly report goes through (`[mail]`); `None`: no mail.
    pub mailer: Option<crate::mail::Mailer>,
    /// `[upstream]`: how long a push from the dashboard may take.
    pub upstream: crate::upstream::UpstreamConfig,
    /// The organization tree, built once per change of the organizations.
    pub trees: scope::TreeCache,
}

impl WebState {
    /// The clock of an organization: its time zone (own or inherited), or the
    /// collector's when it has none.
    pub fn clock_for(&self, tree: &scope::OrganizationTree, organization_id: i64) -> Clock {
        let zoned = match tree.time_zone(organization_id) {
            Some(zone) => self.clock.with_zone(zone).unwrap_or_else(|error| {
                tracing::warn!(organization_id, "{error}; using the collector's time zone");
                self.clock.clone()
            }),
            None => self.clock.clone(),
        };
        clock::with_cutoff_of(zoned, tree, organization_id)
    }

    pub fn new(
        app: Arc<AppState>,
        config: &crate::config::Config,
    ) -> Result<WebState, clock::ClockError> {
        Ok(WebState {
            app,
            clock: config.dashboard.clock()?,
            secure_cookies: config.dashboard.secure_cookies_for(&config.listen),
            session_seconds: i64::from(config.dashboard.session_hours.max(1)) * 3600,
            public_url: config.dashboard.public_url.clone(),
            silent_after_days: config.silent_after_days,
            throttle: Throttle::default(),
            installers: config.dashboard.installers.clone(),
            mailer: None,
            upstream: config.upstream.clone(),
            trees: scope::TreeCache::default(),
        })
    }

    /// The same state sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Option<crate::mail::Mailer>) -> WebState {
        self.mailer = mailer;
        self
    }

    /// Writes an audit entry; a failure is logged, never shown.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        organization_id: Option<i64>,
        detail: String,
    ) {
        let entry = NewAuditEntry {
            at: crate::now(),
            actor: actor.to_string(),
            action: action.to_string(),
            organization_id,
            detail,
        };
        if let Err(error) = self.app.store.record_audit(entry).await {
            tracing::error!("cannot write the audit log: {error}");
        }
    }
}

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Security headers on every dashboard answer, and the handler's time as
/// `Server-Timing` (the benchmark reads it).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={elapsed:.2}")) {
        headers.insert("server-timing", value);
    }
    response
}

/// A store failure as an answer: 503 when it may pass, 500 otherwise (logged); the
/// JSON API answers it as pages do.
pub fn store_failure(error: StoreError) -> Response {
    WebError::Store(error).into_response()
}

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

pub(crate) async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}

pub(crate) async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
        .into_response()
}
