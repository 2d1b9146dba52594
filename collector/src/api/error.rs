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
        response
    }
}
