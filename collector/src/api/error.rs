//! [`ApiFailure`]: every failure of the agent API as one JSON `ApiError` answer. A
//! 4xx carries a message for the agent's log; a database failure is logged in full
//! here and answered with a generic message (503 with `Retry-After` when it may pass).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sverka_shared::protocol::ApiError;

use super::UNAVAILABLE_RETRY_SECONDS;
use super::limits::LimitError;
use crate::store::StoreError;

/// An error answer: status, a machine-readable code and a message for people.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    error: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiFailure {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        message: impl Into<String>,
    ) -> ApiFailure {
        ApiFailure {
            status,
            error,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiFailure {
        self.retry_after = Some(seconds);
        self
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }
}

impl From<StoreError> for ApiFailure {
    fn from(error: StoreError) -> ApiFailure {
        match error {
            StoreError::Unavailable(message) => {
                tracing::warn!("database unavailable: {message}");
                ApiFailure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the collector cannot store this now; try again later",
                )
                .retry_after(UNAVAILABLE_RETRY_SECONDS)
            }
            StoreError::NotFound(what) => ApiFailure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            StoreError::Rejected(message) => {
                ApiFailure::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            StoreError::Invalid(message) => ApiFailure::unprocessable(message),
            StoreError::Database(message) => {
                tracing::error!("database error: {message}");
                ApiFailure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the collector failed to store this",
                )
            }
        }
    }
}

impl From<LimitError> for ApiFailure {
    fn from(error: LimitError) -> ApiFailure {
        let (status, code) = match &error {
            LimitError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            LimitError::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding")
            }
            LimitError::BadCompression(_) | LimitError::BadJson(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            LimitError::Shape(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
        };
        ApiFailure::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.error.to_string(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the scheme that would be accepted.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sverka\""),
            );
        }
        response
    }
}

/// The `error` code of a status without a more specific one.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware for both JSON APIs: every error answer is an `ApiError` in JSON, also
/// the ones axum makes itself (a path that does not parse, a method the route does not
/// take) and plain-text ones; a 5xx says nothing more than its status. Every 401 names
/// the scheme it wants (`WWW-Authenticate: Bearer`).
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let mut response = if is_json {
        response
    } else {
        let (parts, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 16 * 1024)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .unwrap_or_default();
        let message = if text.is_empty() || status.is_server_error() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            text
        };
        let mut answer = (
            status,
            axum::Json(ApiError {
                error: code_of(status).to_string(),
                message,
            }),
        )
            .into_response();
        for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
            if let Some(value) = parts.headers.get(&name) {
                answer.headers_mut().insert(name, value.clone());
            }
        }
        answer
    };
    if status == StatusCode::UNAUTHORIZED
        && !response.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sverka\""),
        );
    }
    response
}
