//! Signing in and out, and switching the language: the sign-in form (its own CSRF
//! cookie, as there is no session yet), throttled by login and by address, with
//! every attempt in the audit log.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use std::sync::{Arc, OnceLock};

use crate::store::UserChange;
use crate::web::auth::{
    ADDRESS_FAILURES, CsrfForm, LANGUAGE_COOKIE, LOGIN_CSRF_COOKIE, LOGIN_FAILURES, SESSION_COOKIE,
    cookie, new_token, set_cookie, start_session, verify_password,
};
use crate::web::i18n::Lang;
use crate::web::{WebError, WebState};

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    lang: Option<String>,
}

fn login_lang(headers: &HeaderMap, query: Option<&str>) -> Lang {
    query
        .or_else(|| cookie(headers, LANGUAGE_COOKIE))
        .map(Lang::parse)
        .unwrap_or_default()
}

fn login_form(lang: Lang, csrf: &str, error: Option<&str>) -> Markup {
    let texts = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (texts.login_title) }
                link rel="stylesheet" href="/static/app.css";
            }
            body.login {
                main {
                    h1 { (texts.login_title) }
                    @if let Some(error) = error { p.error #login-error { (error) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="lang" value=(lang.code());
                        label { (texts.login) input #login name="login" autocomplete="username" required; }
                        label { (texts.password) input #password name="password" type="password" autocomplete="current-password" required; }
                        button #sign-in type="submit" { (texts.sign_in) }
                    }
                    p { a #login-language href={ "/login?lang=" (lang.other().code()) } { (texts.switch_to) } }
                }
            }
        }
    }
}

fn login_answer(state: &WebState, lang: Lang, status: StatusCode, error: Option<&str>) -> Response {
    let (csrf, _) = new_token();
    let cookies = [
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(3600), state.secure_cookies),
        set_cookie(LANGUAGE_COOKIE, lang.code(), None, state.secure_cookies),
    ];
    let mut response = (status, login_form(lang, &csrf, error)).into_response();
    for value in cookies {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub async fn login_page(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let lang = login_lang(&headers, query.lang.as_deref());
    login_answer(&state, lang, StatusCode::OK, None)
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// A hash to check against when the login does not exist, so both cost the same.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::web::auth::hash_password("not a real password").unwrap_or_default())
}

pub async fn login_submit(
    State(state): State<Arc<WebState>>,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let connection = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0);
    let form: LoginForm = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => crate::web::auth::parse_form(&bytes).unwrap_or(LoginForm {
            csrf: String::new(),
            lang: String::new(),
            login: String::new(),
            password: String::new(),
        }),
        Err(_) => return Err(WebError::TooLarge),
    };
    let lang = Lang::parse(&form.lang);
    let texts = lang.texts();
    let expected_csrf = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected_csrf.is_empty() || !crate::keys::same_hash(expected_csrf, &form.csrf) {
        return Ok(login_answer(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            Some(texts.bad_form),
        ));
    }
    let login_key = format!("login:{}", form.login.trim().to_lowercase());
    let address_key = format!(
        "address:{}",
        connection.map_or_else(|| "unknown".to_string(), |address| address.ip().to_string())
    );
    if state.throttle.blocked(&[
        (&login_key, LOGIN_FAILURES),
        (&address_key, ADDRESS_FAILURES),
    ]) {
        state
            .audit(&form.login, "login_throttled", None, address_key.clone())
            .await;
        return Ok(login_answer(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some(texts.too_many_attempts),
        ));
    }
    let credentials = state.app.store.user_credentials(&form.login).await?;
    let password = form.password.clone();
    let hash = credentials
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |c| c.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let user = match credentials {
        Some(credentials) if matches && credentials.user.disabled_at.is_none() => credentials.user,
        _ => {
            state.throttle.fail(&[&login_key, &address_key]);
            state
                .audit(&form.login, "login_failed", None, address_key.clone())
                .await;
            return Ok(login_answer(
                &state,
                lang,
                StatusCode::UNAUTHORIZED,
                Some(texts.wrong_password),
            ));
        }
    };
    state.throttle.clear(&login_key);
    let cookie = start_session(&state, &user).await?;
    state
        .audit(&user.login, "login", user.organization_id, String::new())
        .await;
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct Empty {}

pub async fn logout(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    state.app.store.delete_session(&viewer.session_hash).await?;
    state
        .audit(&viewer.user.login, "logout", None, String::new())
        .await;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", Some(0), state.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct LanguageForm {
    language: String,
    #[serde(default)]
    back: String,
}

/// A path on this site to go back to; anything else (another site, `//host`) is `/`.
fn local_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control);
    if local { path } else { "/" }
}

pub async fn switch_language(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    form: CsrfForm<LanguageForm>,
) -> Result<Response, WebError> {
    let lang = Lang::parse(&form.form.language);
    let change = UserChange {
        language: Some(lang.code().to_string()),
        ..UserChange::default()
    };
    state
        .app
        .store
        .update_user(form.viewer.user.id, change, crate::now())
        .await?;
    let _ = headers;
    Ok(Redirect::to(local_path(&form.form.back)).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(super::local_path("/org/1?sort=2"), "/org/1?sort=2");
        for foreign in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "",
            "x",
        ] {
            assert_eq!(super::local_path(foreign), "/", "{foreign}");
        }
    }
}
