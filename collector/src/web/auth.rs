//! Signing in: argon2id password hashes, session cookies (only SHA-256 of the random
//! token is stored), a CSRF token per session checked on every form, login throttling
//! per login and per address, and personal API tokens.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::i18n::Lang;
use super::{WebError, WebState};
use crate::keys;
use crate::store::{NewSession, Session, User};

pub const SESSION_COOKIE: &str = "sverka_session";
/// The language of the sign-in page, before anyone is signed in.
pub const LANGUAGE_COOKIE: &str = "sverka_lang";
/// Double-submit token of the sign-in form (there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "sverka_login_csrf";
/// Prefix of personal API tokens: `sverka_pat_<id>.<64 hex>`.
pub const API_TOKEN_PREFIX: &str = "sverka_pat_";
const FORM_LIMIT: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct PasswordError(String);

/// An argon2id hash in PHC format.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError(error.to_string()))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Refuses passwords too short to be worth hashing.
pub fn check_password_rules(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 10 {
        return Err("a password has at least 10 characters");
    }
    if password.len() > 1024 {
        return Err("a password has at most 1024 bytes");
    }
    Ok(())
}

/// A fresh random token: (the text handed out, the hash to store).
pub fn new_token() -> (String, String) {
    keys::generate()
}

/// Failed sign-ins per key (a login or an address) within a window.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of one login within the window before it is refused for the window.
pub const LOGIN_FAILURES: usize = 5;
/// Failures from one address within the window.
pub const ADDRESS_FAILURES: usize = 20;

impl Throttle {
    fn recent(failures: &mut Vec<Instant>) -> usize {
        failures.retain(|at| at.elapsed() < THROTTLE_WINDOW);
        failures.len()
    }

    /// Whether any of the keys is over its limit.
    pub fn blocked(&self, keys: &[(&str, usize)]) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return true;
        };
        keys.iter().any(|(key, limit)| {
            failures
                .get_mut(*key)
                .is_some_and(|list| Throttle::recent(list) >= *limit)
        })
    }

    pub fn fail(&self, keys: &[&str]) {
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() > 100_000 {
                failures.retain(|_, list| Throttle::recent(list) > 0);
            }
            for key in keys {
                failures
                    .entry(key.to_string())
                    .or_default()
                    .push(Instant::now());
            }
        }
    }

    pub fn clear(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when the
/// collector is served over TLS.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    text
}

/// Starts a session for a signed-in user; returns the `Set-Cookie` value.
pub async fn start_session(
    state: &WebState,
    user: &User,
) -> Result<String, crate::store::StoreError> {
    let (token, token_hash) = new_token();
    let (csrf_token, _) = new_token();
    let now = crate::now();
    state
        .app
        .store
        .create_session(NewSession {
            token_hash,
            user_id: user.id,
            csrf_token,
            created_at: now,
            expires_at: now + state.session_seconds,
        })
        .await?;
    Ok(set_cookie(
        SESSION_COOKIE,
        &token,
        Some(state.session_seconds),
        state.secure_cookies,
    ))
}

/// The signed-in person of a page request. Without a valid session, pages redirect
/// to the sign-in page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub csrf_token: String,
    pub lang: Lang,
    /// SHA-256 of the session token (to end it).
    pub session_hash: String,
    /// The path of the page (with its query), to come back to after a switch.
    pub path: String,
}

impl Viewer {
    fn from_session(session: Session, session_hash: String, path: String) -> Viewer {
        Viewer {
            path,
            lang: Lang::parse(&session.user.language),
            user: session.user,
            csrf_token: session.csrf_token,
            session_hash,
        }
    }
}

/// The viewer of a session cookie: without a valid session, to the sign-in page.
async fn viewer_of(parts: &Parts, state: &WebState) -> Result<Viewer, WebError> {
    let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
    if token.len() != 64 || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(WebError::SignIn);
    }
    let token_hash = keys::hash(token);
    match state.app.store.session(&token_hash, crate::now()).await {
        Ok(Some(session)) => {
            let path = parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |path| path.as_str().to_string());
            Ok(Viewer::from_session(session, token_hash, path))
        }
        Ok(None) => Err(WebError::SignIn),
        Err(error) => Err(WebError::Store(error)),
    }
}

impl FromRequestParts<Arc<WebState>> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Viewer, WebError> {
        viewer_of(parts, state).await
    }
}

/// A form posted by a signed-in viewer whose CSRF token matched their session's.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub viewer: Viewer,
    pub form: T,
}

#[derive(Debug, serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Parses an urlencoded body (the parser axum's `Form` uses).
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

impl<T: DeserializeOwned> FromRequest<Arc<WebState>> for CsrfForm<T> {
    /// No viewer as for pages; a missing or wrong CSRF token, or a body that is not
    /// the expected form, is a 403 saying the form was not accepted.
    type Rejection = WebError;

    async fn from_request(
        request: Request<Body>,
        state: &Arc<WebState>,
    ) -> Result<CsrfForm<T>, WebError> {
        let (parts, body) = request.into_parts();
        let viewer = viewer_of(&parts, state).await?;
        let bad = || WebError::bad_form(viewer.lang);
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| bad())?;
        let presented: CsrfField = parse_form(&bytes).ok_or_else(bad)?;
        if !keys::same_hash(&presented.csrf, &viewer.csrf_token) {
            return Err(bad());
        }
        let form: T = parse_form(&bytes).ok_or_else(bad)?;
        Ok(CsrfForm { viewer, form })
    }
}

/// The user of a personal API token in `Authorization: Bearer sverka_pat_<id>.<hex>`.
pub async fn api_user(state: &WebState, headers: &HeaderMap) -> Option<Result<User, Response>> {
    let token = keys::bearer(headers)?
        .trim()
        .strip_prefix(API_TOKEN_PREFIX)?;
    let (id, random) = keys::parse_token(token)?;
    match state.app.store.api_token(id).await {
        Ok(Some(credentials)) if keys::same_hash(&credentials.token_hash, &keys::hash(random)) => {
            Some(Ok(credentials.user))
        }
        Ok(_) => None,
        Err(error) => Some(Err(super::store_failure(error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_password_rules("short").is_err());
    }

    #[test]
    fn throttle_counts_failures_per_key() {
        let throttle = Throttle::default();
        for _ in 0..LOGIN_FAILURES {
            assert!(!throttle.blocked(&[("login:a", LOGIN_FAILURES)]));
            throttle.fail(&["login:a"]);
        }
        assert!(throttle.blocked(&[("login:a", LOGIN_FAILURES)]));
        assert!(!throttle.blocked(&[("login:b", LOGIN_FAILURES)]));
        throttle.clear("login:a");
        assert!(!throttle.blocked(&[("login:a", LOGIN_FAILURES)]));
    }

    #[test]
    fn forms_and_cookies_parse() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Note {
            csrf: String,
            note: String,
            host: i64,
        }
        assert_eq!(
            parse_form::<Note>(b"csrf=ab&note=%D0%A8+x&host=7&extra=1"),
            Some(Note {
                csrf: "ab".into(),
                note: "Ш x".into(),
                host: 7
            })
        );
        assert_eq!(parse_form::<Note>(b"csrf=ab&note=x&host=seven"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; sverka_session=abc".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(
            set_cookie("n", "v", Some(5), true),
            "n=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=5; Secure"
        );
    }
}
