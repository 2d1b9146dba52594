//! The dashboard in-process (axum router + a real SQLite file): signing in, CSRF,
//! throttling, the scope check on pages, exports and the JSON API, escaping of what
//! agents sent, exports read back, weekly figures, secrets and the catalog.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod admin_tools;
mod changes;
mod federated;
mod libreoffice;
mod officer;
mod rendering;
mod weekly_use;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;
use sverka_collector::api::RateLimit;
use sverka_collector::api::limits::RequestLimits;
use sverka_collector::app::AppState;
use sverka_collector::catalog::CatalogState;
use sverka_collector::config::Config;
use sverka_collector::keys;
use sverka_collector::store::SqlStore;
use sverka_collector::store::{
    Enrollment, EnrollmentAllowance, EvaluatedFindings, HostFinding, NewOrganization, NewSecret,
    NewUser, ReportRecord, Role, Store, StoreError,
};
use sverka_collector::web::{self, WebState};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";
const XSS_HOST: &str = "<img src=x onerror=alert(1)>";

pub(crate) struct Harness {
    pub(crate) app: Router,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) state: Arc<WebState>,
    pub(crate) region: i64,
    pub(crate) school_a: i64,
    pub(crate) school_b: i64,
    pub(crate) host_a: i64,
    pub(crate) host_b: i64,
    pub(crate) _folder: tempfile::TempDir,
}

pub(crate) async fn organization(
    store: &dyn Store,
    name: &str,
    parent: Option<i64>,
    expected: i64,
) -> i64 {
    store
        .create_organization(NewOrganization {
            parent_id: parent,
            name: name.into(),
            kind: "school".into(),
            expected_pcs: expected,
            time_zone: None,
        })
        .await
        .expect("organization")
        .id
}

/// A new enrollment secret of the organization: its id and its random part (the
/// agent sends `keys::token(id, random)`).
pub(crate) async fn new_secret(store: &dyn Store, organization_id: i64) -> (i64, String) {
    let (random, secret_hash) = keys::generate();
    let secret = store
        .create_secret(
            NewSecret {
                organization_id,
                secret_hash,
                expires_at: None,
            },
            sverka_collector::now(),
        )
        .await
        .expect("secret");
    (secret.id, random)
}

async fn enrolled_host(store: &dyn Store, organization_id: i64, machine: &str) -> i64 {
    enrolled_host_with_key(store, organization_id, machine)
        .await
        .0
}

/// A PC enrolled as an agent would be: its id and its host key.
pub(crate) async fn enrolled_host_with_key(
    store: &dyn Store,
    organization_id: i64,
    machine: &str,
) -> (i64, String) {
    let (secret_id, secret_random) = new_secret(store, organization_id).await;
    let (key_random, key_hash) = keys::generate();
    let host_id = store
        .enroll(
            Enrollment {
                secret_id,
                secret_hash: keys::hash(&secret_random),
                machine_id: machine.into(),
                hostname: machine.into(),
                os_id: "astra".into(),
                os_name: "Astra Linux".into(),
                agent_version: "0.1.0".into(),
                key_hash,
                // The dashboard's fixtures may hold more PCs than their schools expect.
                allowance: EnrollmentAllowance {
                    margin_percent: 0,
                    margin_minimum: 10_000,
                },
            },
            sverka_collector::now(),
        )
        .await
        .expect("enroll")
        .host_id;
    (host_id, keys::token(host_id, &key_random))
}

fn finding(app: &str, status: &str, path: &str) -> HostFinding {
    HostFinding {
        app_id: app.into(),
        app_name: app.to_uppercase(),
        status: status.parse().expect("a catalog status"),
        strength: sverka_shared::Strength::Installed,
        users: vec!["=cmd|' /C calc'!A0".into()],
        evidence: serde_json::json!([{
            "source": "dpkg", "detail": format!("dpkg package {app} 1.0"), "path": path,
            "scope": "machine", "strength": "installed"
        }])
        .to_string(),
    }
}

async fn report(store: &dyn Store, host_id: i64, hostname: &str, findings: Vec<HostFinding>) {
    let now = sverka_collector::now();
    store
        .record_report(ReportRecord {
            report_id: uuid_like(host_id, now),
            host_id,
            received_at: now,
            scanned_at: now,
            hostname: hostname.into(),
            os_id: "astra".into(),
            os_name: "Astra Linux".into(),
            agent_version: "0.1.0".into(),
            scan_errors: 0,
            inventory_digest: "b".repeat(64),
            inventory: Some(("[]".into(), 0)),
            evidence: "[]".into(),
            catalog_revision: 0,
            findings: Some(EvaluatedFindings::new(findings)),
            uses: Vec::new(),
        })
        .await
        .expect("report");
}

fn uuid_like(host_id: i64, now: i64) -> String {
    format!("0190{host_id:04x}-0000-7000-8000-{now:012x}")
}

pub(crate) async fn harness() -> Harness {
    let folder = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open_sqlite(&folder.path().join("dashboard.db"))
            .await
            .expect("store"),
    );
    let region = organization(store.as_ref(), "Регион", None, 0).await;
    let school_a = organization(store.as_ref(), "Школа А", Some(region), 3).await;
    let school_b = organization(store.as_ref(), "Школа Б", Some(region), 2).await;
    let host_a = enrolled_host(store.as_ref(), school_a, "a1").await;
    let host_b = enrolled_host(store.as_ref(), school_b, "b1").await;
    let _silent = enrolled_host(store.as_ref(), school_a, "a-silent").await;
    report(
        store.as_ref(),
        host_a,
        XSS_HOST,
        vec![
            finding("telegram", "banned", "/var/lib/dpkg/status"),
            finding("max", "approved", "/opt/max"),
        ],
    )
    .await;
    report(
        store.as_ref(),
        host_b,
        "=HYPERLINK(\"http://evil\")",
        vec![finding("max", "approved", "/opt/max")],
    )
    .await;
    let hash = web::auth::hash_password(PASSWORD).expect("hash");
    for (login, role, org) in [
        ("admin", Role::Administrator, None),
        ("officer", Role::Officer, Some(region)),
        ("school-a", Role::SchoolAdmin, Some(school_a)),
    ] {
        store
            .create_user(
                NewUser {
                    login: login.into(),
                    password_hash: hash.clone(),
                    role,
                    organization_id: org,
                    language: "ru".into(),
                },
                sverka_collector::now(),
            )
            .await
            .expect("user");
    }
    let catalog = CatalogState::load(store.as_ref()).await.expect("catalog");
    let app_state = Arc::new(AppState::new(
        store.clone(),
        catalog,
        RequestLimits::default(),
        RateLimit::default(),
    ));
    let config = Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    let state = Arc::new(WebState::new(app_state, &config).expect("web state"));
    let app = sverka_collector::server::router(state.clone());
    Harness {
        app,
        store,
        state,
        region,
        school_a,
        school_b,
        host_a,
        host_b,
        _folder: folder,
    }
}

/// A browser-like client: keeps cookies, finds the CSRF token on pages.
pub(crate) struct Client<'h> {
    harness: &'h Harness,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

impl<'h> Client<'h> {
    fn new(harness: &'h Harness) -> Client<'h> {
        Client {
            harness,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: Request<Body>) -> Answer {
        let response: Response<Body> = self
            .harness
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("answer");
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(form).expect("form");
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Creates a personal API token on the tokens page and returns it as shown once.
    pub(crate) async fn create_api_token(&mut self, name: &str) -> String {
        let page = self
            .submit("/tokens", "/tokens", &[("name", name)])
            .await
            .text();
        let start = page.find("sverka_pat_").expect("new token shown");
        page[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect()
    }

    async fn try_login(&mut self, login: &str, password: &str) -> Answer {
        let page = self.get("/login").await.text();
        let csrf = csrf_of(&page);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("lang", "ru"),
                ("login", login),
                ("password", password),
            ],
        )
        .await
    }

    pub(crate) async fn login(harness: &'h Harness, login: &str) -> Client<'h> {
        let mut client = Client::new(harness);
        let answer = client.try_login(login, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        client
    }

    /// A form post with the CSRF token of `page`.
    async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let html = self.get(page).await.text();
        let csrf = csrf_of(&html);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}
