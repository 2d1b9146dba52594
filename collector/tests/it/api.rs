//! The agent API in-process (axum router + a real SQLite file): the happy path, and
//! every kind of bad or hostile input answered with a clear 4xx and nothing stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::sync::Arc;
use sverka_collector::api::RateLimit;
use sverka_collector::api::limits::RequestLimits;
use sverka_collector::app::AppState;
use sverka_collector::catalog::CatalogState;
use sverka_collector::config::Config;
use sverka_collector::connections::ConnectionLimits;
use sverka_collector::keys;
use sverka_collector::server::router;
use sverka_collector::store::SqlStore;
use sverka_collector::store::{NewOrganization, NewSecret, Store};
use sverka_collector::web::WebState;
use sverka_shared::observation::PackageManager;
use sverka_shared::protocol::{EnrollResponse, ReportAck, ReportUpload};
use sverka_shared::report::SCAN_SCHEMA;
use sverka_shared::{HostInfo, Inventory, Observation, Observed, ScanReport, Scope, Strength};
use tower::ServiceExt;

pub(crate) struct Harness {
    pub(crate) app: Router,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) school_a: i64,
    school_b: i64,
    pub(crate) secret_a: String,
    secret_b: String,
    _folder: tempfile::TempDir,
}

async fn harness_with(rate: RateLimit) -> Harness {
    harness_for(rate, ConnectionLimits::default()).await
}

/// The harness with these connection limits (for tests that serve it on a socket).
pub(crate) async fn harness_for(rate: RateLimit, connections: ConnectionLimits) -> Harness {
    let folder = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open_sqlite(&folder.path().join("api.db"))
            .await
            .expect("store"),
    );
    let mut schools = Vec::new();
    let mut secrets = Vec::new();
    for name in ["Школа А", "Школа Б"] {
        let school = store
            .create_organization(NewOrganization {
                parent_id: None,
                name: name.into(),
                kind: "school".into(),
                expected_pcs: 10,
                time_zone: None,
            })
            .await
            .expect("organization");
        let (random, secret_hash) = keys::generate();
        let info = store
            .create_secret(
                NewSecret {
                    organization_id: school.id,
                    secret_hash,
                    expires_at: None,
                },
                sverka_collector::now(),
            )
            .await
            .expect("secret");
        schools.push(school.id);
        secrets.push(format!("{}.{random}", info.id));
    }
    let catalog = CatalogState::load(store.as_ref()).await.expect("catalog");
    let state = Arc::new(
        AppState::new(store.clone(), catalog, RequestLimits::default(), rate)
            .with_connection_limits(connections),
    );
    let web_state = WebState::new(state, &Config::default()).expect("web state");
    Harness {
        app: router(Arc::new(web_state)),
        store,
        school_a: schools[0],
        school_b: schools[1],
        secret_a: secrets[0].clone(),
        secret_b: secrets[1].clone(),
        _folder: folder,
    }
}

pub(crate) async fn harness() -> Harness {
    harness_with(RateLimit::default()).await
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<String>,
    etag: Option<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) www_authenticate: Option<String>,
}

impl Answer {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn error_code(&self) -> String {
        let value: serde_json::Value = self.json();
        value["error"].as_str().unwrap_or_default().to_string()
    }
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header_text(header::RETRY_AFTER);
    let etag = header_text(header::ETAG);
    let www_authenticate = header_text(header::WWW_AUTHENTICATE);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Answer {
        status,
        retry_after,
        etag,
        body,
        www_authenticate,
    }
}

pub(crate) fn post(path: &str, key: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::from(body)).expect("request")
}

pub(crate) async fn enroll(app: &Router, secret: &str, machine_id: &str) -> Answer {
    let body = serde_json::json!({
        "secret": secret, "machine_id": machine_id, "hostname": format!("pc-{machine_id}"),
        "os_id": "astra", "os_name": "Astra Linux 1.8", "agent_version": "0.1.0"
    });
    send(
        app,
        post("/api/v1/enroll", None, body.to_string().into_bytes()),
    )
    .await
}

pub(crate) async fn enrolled(app: &Router, secret: &str, machine_id: &str) -> EnrollResponse {
    let answer = enroll(app, secret, machine_id).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

pub(crate) fn package(name: &str) -> Observation {
    Observation {
        observed: Observed::Package {
            manager: PackageManager::Dpkg,
            name: name.into(),
            version: "1.0".into(),
            vendor: None,
        },
        path: Some("/var/lib/dpkg/status".into()),
        user: None,
        scope: Scope::Machine,
        strength: Strength::Installed,
    }
}

pub(crate) fn upload(machine_id: &str, packages: &[&str], with_inventory: bool) -> ReportUpload {
    let observations: Vec<Observation> = packages.iter().map(|name| package(name)).collect();
    let inventory = Inventory::from_observations(&observations);
    ReportUpload {
        report_id: uuid::Uuid::now_v7().to_string(),
        scan: ScanReport {
            schema: SCAN_SCHEMA,
            host: HostInfo {
                hostname: format!("pc-{machine_id}"),
                os_id: "astra".into(),
                os_name: "Astra Linux".into(),
                os_version: "1.8".into(),
                machine_id: Some(machine_id.into()),
                scanned_root: None,
                agent_version: "0.1.0".into(),
            },
            catalog_version: "test".into(),
            scanned_at: "2026-11-22T08:00:00Z".into(),
            duration_ms: 10,
            findings: vec![],
            errors: vec![],
            skipped: vec![],
        },
        inventory_digest: inventory.digest.clone(),
        inventory: with_inventory.then_some(inventory.observations),
        evidence: vec![],
    }
}

pub(crate) async fn report(app: &Router, key: &str, upload: &ReportUpload) -> Answer {
    let body = serde_json::to_vec(upload).expect("json");
    send(app, post("/api/v1/reports", Some(key), body)).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).expect("write");
    encoder.finish().expect("finish")
}

#[tokio::test]
async fn enroll_report_and_check_in() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-a1").await;
    assert_eq!(host.organization_id, h.school_a);
    assert_eq!(host.organization_name, "Школа А");

    let first = upload("machine-a1", &["telegram-desktop", "max", "bash"], true);
    let answer = report(&h.app, &host.host_key, &first).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let ack: ReportAck = answer.json();
    assert_eq!(ack.report_id, first.report_id);
    assert!(!ack.duplicate && !ack.inventory_wanted);
    assert!(!ack.catalog_etag.is_empty());

    let violations = h
        .store
        .violations(h.school_a, false)
        .await
        .expect("violations");
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].app_id, "telegram");
    assert_eq!(violations[0].hostname, "pc-machine-a1");

    // The same report again: acknowledged, stored once.
    let again = report(&h.app, &host.host_key, &first).await;
    assert!(again.json::<ReportAck>().duplicate);
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 1);

    // A check-in without the inventory: evaluated from the stored one.
    let mut check_in = upload("machine-a1", &["telegram-desktop", "max", "bash"], false);
    check_in.scan.scanned_at = "2026-11-22T09:00:00Z".into();
    let ack: ReportAck = report(&h.app, &host.host_key, &check_in).await.json();
    assert!(!ack.inventory_wanted && !ack.duplicate);
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 2);
    assert_eq!(
        h.store
            .violations(h.school_a, false)
            .await
            .expect("v")
            .len(),
        1
    );

    // Telegram removed: resolved at the next report.
    let mut cleaned = upload("machine-a1", &["max", "bash"], true);
    cleaned.scan.scanned_at = "2026-11-22T10:00:00Z".into();
    assert_eq!(
        report(&h.app, &host.host_key, &cleaned).await.status,
        StatusCode::OK
    );
    assert!(
        h.store
            .violations(h.school_a, false)
            .await
            .expect("v")
            .is_empty()
    );
    let coverage = h.store.coverage(h.school_a, 0).await.expect("coverage");
    assert_eq!((coverage[0].reporting, coverage[0].with_approved), (1, 1));

    // An unknown digest without an inventory: accepted, and the inventory is asked for.
    let mut unknown = upload("machine-a1", &["something-else"], false);
    unknown.scan.scanned_at = "2026-11-22T11:00:00Z".into();
    let ack: ReportAck = report(&h.app, &host.host_key, &unknown).await.json();
    assert!(ack.inventory_wanted);
}

#[tokio::test]
async fn reinstalled_agent_gets_the_same_host_and_the_old_key_stops_working() {
    let h = harness().await;
    let first = enrolled(&h.app, &h.secret_a, "machine-r").await;
    let second = enrolled(&h.app, &h.secret_a, "machine-r").await;
    assert_eq!(first.host_id, second.host_id);
    assert_ne!(first.host_key, second.host_key);
    let old = report(
        &h.app,
        &first.host_key,
        &upload("machine-r", &["bash"], true),
    )
    .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = report(
        &h.app,
        &second.host_key,
        &upload("machine-r", &["bash"], true),
    )
    .await;
    assert_eq!(new.status, StatusCode::OK);
}

#[tokio::test]
async fn enrollment_refuses_bad_secrets_and_bad_fields() {
    let h = harness().await;
    for secret in ["", "nonsense", "1.abc", &format!("{}x", h.secret_a)] {
        let answer = enroll(&h.app, secret, "m").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{secret}");
    }
    // A well-formed secret with the wrong random part.
    let (id, _) = h.secret_a.split_once('.').expect("token");
    let forged = format!("{id}.{}", "0".repeat(64));
    assert_eq!(
        enroll(&h.app, &forged, "m").await.status,
        StatusCode::FORBIDDEN
    );
    // Revoked.
    let secret_id: i64 = id.parse().expect("id");
    h.store
        .revoke_secret(secret_id, sverka_collector::now())
        .await
        .expect("revoke");
    let revoked = enroll(&h.app, &h.secret_a, "m").await;
    assert_eq!(revoked.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&revoked.body).contains("revoked"));
    // Fields.
    for body in [
        serde_json::json!({"secret": h.secret_b, "machine_id": "", "hostname": "x"}),
        serde_json::json!({"secret": h.secret_b, "machine_id": "m", "hostname": "x".repeat(300)}),
        // One character over the 255 the OpenAPI document states.
        serde_json::json!({"secret": h.secret_b, "machine_id": "m", "hostname": "ш".repeat(256)}),
        serde_json::json!({"secret": h.secret_b, "machine_id": "m", "hostname": "  "}),
        serde_json::json!({"secret": h.secret_b, "machine_id": "m", "hostname": "x", "os_id": "x".repeat(65)}),
        serde_json::json!({"secret": h.secret_b, "machine_id": "m\u{0}", "hostname": "x"}),
        serde_json::json!({"secret": h.secret_b, "machine_id": 5, "hostname": "x"}),
        serde_json::json!({"secret": h.secret_b}),
    ] {
        let answer = send(
            &h.app,
            post("/api/v1/enroll", None, body.to_string().into_bytes()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // The limits count characters, as the document's maxLength does: 255 Cyrillic
    // letters (510 bytes) are a valid host name.
    let longest = serde_json::json!({"secret": h.secret_b, "machine_id": "m-longest", "hostname": "ш".repeat(255)});
    let answer = send(
        &h.app,
        post("/api/v1/enroll", None, longest.to_string().into_bytes()),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let huge = vec![b'{'; 100_000];
    assert_eq!(
        send(&h.app, post("/api/v1/enroll", None, huge))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(h.store.organizations().await.expect("orgs").len() == 2);
    assert_eq!(
        h.store.coverage(h.school_b, 0).await.expect("c")[0].enrolled,
        1,
        "only the PC with the longest valid name"
    );
}

#[tokio::test]
async fn a_key_only_reports_for_its_own_machine() {
    let h = harness().await;
    let in_a = enrolled(&h.app, &h.secret_a, "machine-a").await;
    let in_b = enrolled(&h.app, &h.secret_b, "machine-b").await;
    // School A's host reporting as school B's machine.
    let answer = report(
        &h.app,
        &in_a.host_key,
        &upload("machine-b", &["telegram-desktop"], true),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Another host's id with this host's random part.
    let (_, random) = in_a.host_key.split_once('.').expect("key");
    let forged = format!("{}.{random}", in_b.host_id);
    let answer = report(
        &h.app,
        &forged,
        &upload("machine-b", &["telegram-desktop"], true),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    for key in [None, Some("garbage"), Some("99.0000")] {
        let answer = report_raw(&h.app, key, b"{}".to_vec()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(answer.error_code(), "unauthorized");
    }
    assert!(
        h.store
            .violations(h.school_b, true)
            .await
            .expect("b")
            .is_empty()
    );
    assert!(
        h.store
            .violations(h.school_a, true)
            .await
            .expect("a")
            .is_empty()
    );
}

async fn report_raw(app: &Router, key: Option<&str>, body: Vec<u8>) -> Answer {
    send(app, post("/api/v1/reports", key, body)).await
}

#[tokio::test]
async fn hostile_report_bodies_get_a_clear_4xx_and_store_nothing() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-h").await;
    let key = host.host_key.as_str();
    let valid = serde_json::to_value(upload("machine-h", &["telegram-desktop"], true)).expect("v");

    let mut cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        ("empty", vec![], StatusCode::BAD_REQUEST),
        (
            "truncated",
            br#"{"report_id": "01"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid utf-8",
            b"{\"report_id\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "deep nesting",
            format!("{{\"extra\":{}", "[".repeat(50_000)).into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type",
            br#"{"report_id": 5}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "array",
            b"[1,2,3]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    let mut with = |label: &'static str, change: &dyn Fn(&mut serde_json::Value), status| {
        let mut value = valid.clone();
        change(&mut value);
        cases.push((label, serde_json::to_vec(&value).expect("json"), status));
    };
    with(
        "not a uuid",
        &|v| v["report_id"] = "'; DROP TABLE hosts; --".into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "huge string",
        &|v| v["scan"]["host"]["hostname"] = "x".repeat(100_000).into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "schema 99",
        &|v| v["scan"]["schema"] = 99.into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "bad digest",
        &|v| v["inventory_digest"] = "zz".into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "digest mismatch",
        &|v| v["inventory_digest"] = "0".repeat(64).into(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "10,000 findings",
        &|v| {
            let finding = serde_json::json!({"app": "telegram", "name": "Telegram", "status": "banned",
            "strength": "installed", "evidence": []});
            v["scan"]["findings"] = serde_json::Value::Array(vec![finding; 10_000]);
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "huge array",
        &|v| v["scan"]["errors"] = serde_json::Value::Array(vec![1.into(); 60_000]),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    with(
        "unknown fields are bounded",
        &|v| v["extra"] = serde_json::json!({"a": "x".repeat(20_000)}),
        StatusCode::UNPROCESSABLE_ENTITY,
    );

    for (label, body, status) in cases {
        let answer = report_raw(&h.app, Some(key), body).await;
        assert_eq!(
            answer.status,
            status,
            "{label}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let error: serde_json::Value = answer.json();
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{label}"
        );
    }
    // Unknown fields within bounds are tolerated.
    let mut tolerant = valid.clone();
    tolerant["future_field"] = serde_json::json!({"x": 1});
    let answer = report_raw(&h.app, Some(key), serde_json::to_vec(&tolerant).expect("j")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 1);
}

#[tokio::test]
async fn compressed_bodies_are_bounded() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-z").await;
    let body = serde_json::to_vec(&upload("machine-z", &["viber"], true)).expect("json");
    let gzip_request = |body: Vec<u8>| {
        Request::post("/api/v1/reports")
            .header(header::AUTHORIZATION, format!("Bearer {}", host.host_key))
            .header(header::CONTENT_ENCODING, "gzip")
            .body(Body::from(body))
            .expect("request")
    };
    let answer = send(&h.app, gzip_request(gzip(&body))).await;
    assert_eq!(answer.status, StatusCode::OK);
    // A zip bomb: 100 MB of zeros in about 100 KB.
    let bomb = gzip(&vec![b'0'; 100 * 1024 * 1024]);
    let answer = send(&h.app, gzip_request(bomb)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer = send(&h.app, gzip_request(b"not gzip at all".to_vec())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // Oversize on the wire.
    let answer = report_raw(&h.app, Some(&host.host_key), vec![b' '; 9 * 1024 * 1024]).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 1);
}

#[tokio::test]
async fn a_flooding_host_is_rate_limited_with_retry_after() {
    let h = harness_with(RateLimit {
        burst: 5.0,
        per_minute: 6.0,
    })
    .await;
    let host = enrolled(&h.app, &h.secret_a, "machine-f").await;
    let other = enrolled(&h.app, &h.secret_a, "machine-g").await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let answer = report(
            &h.app,
            &host.host_key,
            &upload("machine-f", &["bash"], true),
        )
        .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = answer
                .retry_after
                .as_deref()
                .expect("Retry-After")
                .parse()
                .expect("n");
            assert!((1..=60).contains(&wait));
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 5);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        15
    );
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 5);
    // Another host is not affected.
    let answer = report(
        &h.app,
        &other.host_key,
        &upload("machine-g", &["bash"], true),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn catalog_is_served_with_an_etag() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-c").await;
    let get = |etag: Option<&str>| {
        let mut builder = Request::get("/api/v1/catalog")
            .header(header::AUTHORIZATION, format!("Bearer {}", host.host_key));
        if let Some(etag) = etag {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        builder.body(Body::empty()).expect("request")
    };
    let first = send(&h.app, get(None)).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.etag.clone().expect("etag");
    let text = String::from_utf8(first.body.clone()).expect("utf-8");
    let mut catalog = sverka_shared::Catalog::builtin().expect("builtin");
    catalog.apps.clear();
    catalog
        .merge_text("served", &text, true)
        .expect("the served catalog loads");
    assert!(catalog.app("telegram").is_some());
    let second = send(&h.app, get(Some(&etag))).await;
    assert_eq!(second.status, StatusCode::NOT_MODIFIED);
    let anonymous = send(
        &h.app,
        Request::get("/api/v1/catalog")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_locked_database_answers_503_with_retry_after() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-l").await;
    // Another process holds the write lock longer than the store's busy timeout.
    let path = h._folder.path().join("api.db");
    let locker = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(&path).expect("open");
        connection.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        std::thread::sleep(std::time::Duration::from_secs(7));
        connection.execute_batch("COMMIT").expect("unlock");
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let locked_upload = upload("machine-l", &["telegram-desktop"], true);
    let answer = report(&h.app, &host.host_key, &locked_upload).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.retry_after.is_some());
    assert_eq!(answer.error_code(), "unavailable");
    locker.join().expect("locker");
    // Once the lock is gone the same report is stored, once.
    let answer = report(&h.app, &host.host_key, &locked_upload).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.json::<ReportAck>().duplicate);
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 1);
}

#[tokio::test]
async fn report_ids_are_per_host() {
    let h = harness().await;
    let first = enrolled(&h.app, &h.secret_a, "machine-p1").await;
    let second = enrolled(&h.app, &h.secret_a, "machine-p2").await;
    let own = upload("machine-p1", &["bash"], true);
    let ack: ReportAck = report(&h.app, &first.host_key, &own).await.json();
    assert!(!ack.duplicate);
    // Another host sending the same report id: its own report, not a duplicate, and
    // the first host's report stays.
    let mut borrowed = upload("machine-p2", &["bash"], true);
    borrowed.report_id = own.report_id.clone();
    let ack: ReportAck = report(&h.app, &second.host_key, &borrowed).await.json();
    assert!(!ack.duplicate);
    assert_eq!(h.store.report_count(first.host_id).await.expect("count"), 1);
    assert_eq!(
        h.store.report_count(second.host_id).await.expect("count"),
        1
    );
    let again: ReportAck = report(&h.app, &second.host_key, &borrowed).await.json();
    assert!(again.duplicate);
}

#[tokio::test]
async fn an_invalid_inventory_is_refused_whether_or_not_its_digest_is_known() {
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-v").await;
    let with_known_digest = |known: &ReportUpload| {
        let mut upload = upload("machine-v", &["bash"], true);
        upload.inventory_digest = known.inventory_digest.clone();
        // The inventory no longer matches the digest it claims.
        upload.inventory = Some(vec![package("telegram-desktop")]);
        upload
    };
    let reference = upload("machine-v", &["bash"], true);
    // Before the digest is known: refused.
    let before = report(&h.app, &host.host_key, &with_known_digest(&reference)).await;
    assert_eq!(before.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The collector learns the digest from a valid report.
    assert_eq!(
        report(&h.app, &host.host_key, &reference).await.status,
        StatusCode::OK
    );
    // After: judged the same.
    let after = report(&h.app, &host.host_key, &with_known_digest(&reference)).await;
    assert_eq!(
        after.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&after.body)
    );
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 1);
    // The valid inventory again (bytes already checked against its digest): accepted.
    let same_again = upload("machine-v", &["bash"], true);
    assert_eq!(same_again.inventory_digest, reference.inventory_digest);
    assert_eq!(
        report(&h.app, &host.host_key, &same_again).await.status,
        StatusCode::OK
    );
    assert_eq!(h.store.report_count(host.host_id).await.expect("count"), 2);
    // And the forged one after it: still refused.
    let forged = report(&h.app, &host.host_key, &with_known_digest(&reference)).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
}
