//! Post/redirect/get for a new enrollment secret: the form's answer is a redirect to
//! the enrollment page, and the secret rides along once in a short-lived cookie
//! (HttpOnly, SameSite=Strict, only for that page) which the page clears as it shows
//! it, so refreshing never creates a second secret and never shows this one again.
//! Also: whether install commands would point agents at a loopback address.

use axum::http::{HeaderMap, HeaderValue, header};

const NEW_SECRET_COOKIE: &str = "sverka_new_secret";
/// Long enough to follow the redirect, short enough not to linger.
const NEW_SECRET_SECONDS: u32 = 120;

fn cookie(organization_id: i64, value: &str, max_age: u32, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{NEW_SECRET_COOKIE}={value}; Path=/org/{organization_id}/enrollment; Max-Age={max_age}; \
         HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// The cookie that carries a new secret to the enrollment page of its organization.
pub fn new_secret_cookie(organization_id: i64, secret: &str, secure: bool) -> Option<HeaderValue> {
    cookie(organization_id, secret, NEW_SECRET_SECONDS, secure)
}

/// The cookie that clears it.
pub fn clear_new_secret(organization_id: i64, secure: bool) -> Option<HeaderValue> {
    cookie(organization_id, "", 0, secure)
}

/// The new secret the request carries, if any (`<id>.<hex>`, nothing else).
pub fn new_secret_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NEW_SECRET_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| {
            value.split_once('.').is_some_and(|(id, random)| {
                !id.is_empty()
                    && id.bytes().all(|byte| byte.is_ascii_digit())
                    && !random.is_empty()
                    && random.bytes().all(|byte| byte.is_ascii_hexdigit())
            })
        })
}

/// Whether a server address (`http://127.0.0.1:8440`) is one agents on other PCs
/// cannot reach: a loopback name or address.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_recognised() {
        assert!(is_loopback_url("http://127.0.0.1:8440"));
        assert!(is_loopback_url("http://localhost:8440"));
        assert!(is_loopback_url("https://[::1]:8440/"));
        assert!(!is_loopback_url("https://sverka.school.example"));
        assert!(!is_loopback_url("http://10.0.0.5:8440"));
    }

    #[test]
    fn only_a_secret_shaped_cookie_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; sverka_new_secret=12.abcdef"),
        );
        assert_eq!(new_secret_of(&headers).as_deref(), Some("12.abcdef"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sverka_new_secret=<script>"),
        );
        assert_eq!(new_secret_of(&headers), None);
    }
}
