//! [`WebError`]: every way a dashboard page, form or export fails, as one answer.
//! A refusal a person can act on is a 4xx with a message; a failure on the server is
//! logged in full here and answered with a generic body (axum: "don't expose any
//! details about the error to the client").

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::auth::Viewer;
use super::i18n::Lang;
use super::pages::{layout, message_page};
use crate::store::StoreError;

/// A page handler's failure (`Result<Response, WebError>`), also the rejection of the
/// [`Viewer`] and `CsrfForm` extractors.
#[derive(Debug)]
pub enum WebError {
    /// Absent, or outside the viewer's scope: the same "not found" page (404) either
    /// way, so ids cannot be probed.
    NotFound(Box<Viewer>),
    /// No valid session: a redirect to the sign-in page.
    SignIn,
    /// A refusal a person can act on (a bad form, a value the store refused): a 4xx
    /// and a page with the message.
    Refused {
        status: StatusCode,
        lang: Lang,
        message: String,
    },
    /// A body over its limit, answered 413 without a page.
    TooLarge,
    /// The database: 503 with `Retry-After` when it may pass, 500 otherwise.
    Store(StoreError),
    /// Any other failure on the server (an export that cannot be built): a bare 500.
    /// The text is what the log says.
    Internal(String),
}

impl WebError {
    /// "Not found", in the viewer's frame and language.
    pub fn not_found(viewer: &Viewer) -> WebError {
        WebError::NotFound(Box::new(viewer.clone()))
    }

    /// A 422 with a message page: a value the person can correct.
    pub fn unprocessable(lang: Lang, message: impl Into<String>) -> WebError {
        WebError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            message: message.into(),
        }
    }

    /// A 403 saying the form was not accepted (missing or wrong CSRF token, a body
    /// that is not the expected form).
    pub fn bad_form(lang: Lang) -> WebError {
        WebError::Refused {
            status: StatusCode::FORBIDDEN,
            lang,
            message: lang.texts().bad_form.to_string(),
        }
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> WebError {
        WebError::Store(error)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound(viewer) => {
                let texts = viewer.lang.texts();
                (
                    StatusCode::NOT_FOUND,
                    layout(
                        &viewer,
                        texts.not_found,
                        html! {},
                        html! { p.message #not-found { (texts.not_found_text) } },
                    ),
                )
                    .into_response()
            }
            WebError::SignIn => Redirect::to("/login").into_response(),
            WebError::Refused {
                status,
                lang,
                message,
            } => (status, message_page(lang, &message)).into_response(),
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            WebError::Store(StoreError::Unavailable(message)) => {
                tracing::warn!("database unavailable: {message}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "15")],
                    "the database is busy; try again shortly",
                )
                    .into_response()
            }
            WebError::Store(other) => {
                tracing::error!("dashboard: {other}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
            WebError::Internal(message) => {
                tracing::error!("{message}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
