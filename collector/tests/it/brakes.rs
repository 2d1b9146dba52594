//! The agent API's brakes in-process: the enrollment allowance and the per-address
//! enrollment throttle, retired hosts, and one JSON error shape on both APIs (with
//! `WWW-Authenticate` on 401).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use std::net::SocketAddr;

use super::api::{Answer, enroll, enrolled, harness, post, report, send, upload};

#[tokio::test]
async fn a_thousand_enrollments_stop_at_the_schools_allowance() {
    let h = harness().await;
    // The school expects 10 PCs: 10 + max(20 %, 5) = 15.
    let mut enrolled = 0;
    for machine in 0..1_000 {
        let answer = enroll(&h.app, &h.secret_a, &format!("flood-{machine}")).await;
        match answer.status {
            StatusCode::OK => enrolled += 1,
            StatusCode::FORBIDDEN => {
                let error: serde_json::Value = answer.json();
                let message = error["message"].as_str().unwrap_or_default();
                assert!(message.contains("allowance of 15 PCs"), "{message}");
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&answer.body)),
        }
    }
    assert_eq!(enrolled, 15);
    let coverage = h.store.coverage(h.school_a, 0).await.expect("coverage");
    assert_eq!(coverage[0].enrolled, 15);
}

async fn enroll_from(h: &super::api::Harness, address: [u8; 4], machine: &str) -> Answer {
    let body = serde_json::json!({
        "secret": h.secret_a, "machine_id": machine, "hostname": machine,
        "os_id": "astra", "os_name": "Astra Linux 1.8", "agent_version": "0.1.0"
    });
    let mut request = post("/api/v1/enroll", None, body.to_string().into_bytes());
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((address, 40_000))));
    send(&h.app, request).await
}

#[tokio::test]
async fn enrollment_is_throttled_per_address() {
    let h = harness().await;
    // The default burst is 60 enrollments per address; the same machine enrolling
    // again stays within the allowance, so only the throttle can refuse.
    for attempt in 0..60 {
        let answer = enroll_from(&h, [10, 0, 0, 1], "same-pc").await;
        assert_eq!(answer.status, StatusCode::OK, "attempt {attempt}");
    }
    let refused = enroll_from(&h, [10, 0, 0, 1], "same-pc").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.retry_after.is_some());
    let error: serde_json::Value = refused.json();
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many enrollments from this address"),
        "{error}"
    );
    // Another address is not affected.
    assert_eq!(
        enroll_from(&h, [10, 0, 0, 2], "same-pc").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_retired_hosts_key_stops_working_until_it_enrolls_again() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-retired").await;
    h.store
        .retire_host(host.host_id, sverka_collector::now())
        .await
        .expect("retire");
    // The key was checked before: the cache must not keep it alive, so use a fresh
    // key that was never cached.
    let answer = report(
        &h.app,
        &host.host_key,
        &upload("machine-retired", &["bash"], true),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some("Bearer realm=\"sverka\"")
    );
    let back = enrolled(&h.app, &h.secret_a, "machine-retired").await;
    assert_eq!(back.host_id, host.host_id);
    let answer = report(
        &h.app,
        &back.host_key,
        &upload("machine-retired", &["bash"], true),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn every_error_of_both_apis_is_json() {
    let h = harness().await;
    let request = |method: &str, path: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    for (method, path, status, code) in [
        (
            "GET",
            "/api/v1/reports",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v1/nothing",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/catalog",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "GET",
            "/api/v1/dashboard/organizations",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "GET",
            "/api/v1/dashboard/hosts/not-a-number",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "DELETE",
            "/api/v1/dashboard/hosts/1",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let answer = send(&h.app, request(method, path)).await;
        assert_eq!(answer.status, status, "{method} {path}");
        let error: serde_json::Value = answer.json();
        assert_eq!(error["error"], code, "{method} {path}: {error}");
        assert!(!error["message"].as_str().unwrap_or_default().is_empty());
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                answer
                    .www_authenticate
                    .as_deref()
                    .is_some_and(|value| value.starts_with("Bearer")),
                "{method} {path}"
            );
        }
    }
}
