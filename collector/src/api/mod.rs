//! The agent API on axum (see `sverka_shared::protocol` and
//! `docs/agent-api.openapi.json`); its routes are in [`crate::server::router`].
//!
//! Every handler answers untrusted input with a 4xx and a JSON `ApiError`; a
//! database that is locked, full or gone answers 503 with `Retry-After`, so agents
//! keep their spool and try again.
//!
//! - [`error`]: [`ApiFailure`], the one error answer of every handler.
//! - [`host_auth`]: host keys (checked and cached) and each host's token bucket.
//! - [`limits`]: body and JSON limits, checked before anything is parsed.
//! - [`enrollment`]: `POST /api/v1/enroll`.
//! - [`reports`]: `POST /api/v1/reports`; [`slots`]: its upload slots, shared fairly.
//! - [`federation`]: an upstream's side of federation, `GET /api/v1/federation/link`
//!   and `POST /api/v1/federation/figures`, for lower collectors (not agents).
//! - here: `GET /api/v1/catalog`, `/healthz`, the fallback, and helpers they share.

pub mod enrollment;
pub mod error;
pub mod federation;
pub mod host_auth;
pub mod limits;
pub mod reports;
pub mod slots;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::api_docs::{RateLimited, Unauthorized, Unavailable};
use crate::app::AppState;
pub use enrollment::enroll;
pub use error::ApiFailure;
pub use host_auth::RateLimit;
pub use reports::receive_report;

/// What a 503 asks agents to wait, in seconds.
const UNAVAILABLE_RETRY_SECONDS: u64 = 15;

/// Is the collector up
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = String, content_type = "text/plain; charset=utf-8", example = "ok"))
)]
pub async fn health() -> &'static str {
    "ok"
}

pub async fn not_found() -> ApiFailure {
    ApiFailure::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiFailure> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if crate::connections::is_body_deadline(&error) {
            return ApiFailure::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body did not arrive in time",
            );
        }
        ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes or was cut off"),
        )
    })
}

pub(crate) fn content_encoding(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?"))
}

fn bounded_text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiFailure> {
    if required && value.trim().is_empty() {
        return Err(ApiFailure::unprocessable(format!("{field} is empty")));
    }
    // Characters, as the OpenAPI document's `maxLength` counts them.
    if value.chars().count() > max {
        return Err(ApiFailure::unprocessable(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiFailure::unprocessable(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// The collector's catalog, or 304 when the agent's `If-None-Match` names it.
#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "agents",
    security(("hostKey" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of the catalog the agent holds")),
    responses(
        (status = 200, description = "The catalog, as TOML", body = String, content_type = "application/toml; charset=utf-8",
            headers(("ETag" = String, description = "The catalog's version"))),
        (status = 304, description = "Unchanged since the ETag given", headers(("ETag" = String))),
        Unauthorized,
        RateLimited,
        Unavailable,
    )
)]
pub async fn catalog(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    state.authenticate(&headers).await?;
    let catalog = state.catalog();
    let etag = HeaderValue::from_str(&catalog.etag)
        .map_err(|_| ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "etag"))?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == catalog.etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/toml; charset=utf-8"),
            ),
        ],
        catalog.toml.clone(),
    )
        .into_response())
}
