//! The dashboard in-process (axum router + a real SQLite file): signing in, CSRF,
//! throttling, the scope check on pages, exports and the JSON API, escaping of what
//! agents sent, exports read back, weekly figures, secrets and the catalog.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;
use sverka_collector::api::{AppState, RateLimit};
use sverka_collector::catalog::CatalogState;
use sverka_collector::config::Config;
use sverka_collector::keys;
use sverka_collector::limits::RequestLimits;
use sverka_collector::store::{
    Enrollment, EvaluatedFindings, HostFinding, NewOrganization, NewSecret, NewUser, ReportRecord,
    Role, SqlStore, Store, StoreError,
};
use sverka_collector::web::{self, WebState};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";
const XSS_HOST: &str = "<img src=x onerror=alert(1)>";

struct Harness {
    app: Router,
    store: Arc<dyn Store>,
    state: Arc<WebState>,
    region: i64,
    school_a: i64,
    school_b: i64,
    host_a: i64,
    host_b: i64,
    _folder: tempfile::TempDir,
}

async fn organization(store: &dyn Store, name: &str, parent: Option<i64>, expected: i64) -> i64 {
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

async fn enrolled_host(store: &dyn Store, organization_id: i64, machine: &str) -> i64 {
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
    store
        .enroll(
            Enrollment {
                secret_id: secret.id,
                secret_hash: keys::hash(&random),
                machine_id: machine.into(),
                hostname: machine.into(),
                os_id: "astra".into(),
                os_name: "Astra Linux".into(),
                agent_version: "0.1.0".into(),
                key_hash: keys::generate().1,
            },
            sverka_collector::now(),
        )
        .await
        .expect("enroll")
        .host_id
}

fn finding(app: &str, status: &str, path: &str) -> HostFinding {
    HostFinding {
        app_id: app.into(),
        app_name: app.to_uppercase(),
        status: status.into(),
        strength: "installed".into(),
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
        })
        .await
        .expect("report");
}

fn uuid_like(host_id: i64, now: i64) -> String {
    format!("0190{host_id:04x}-0000-7000-8000-{now:012x}")
}

async fn harness() -> Harness {
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
    let state = Arc::new(WebState::new(app_state.clone(), &config).expect("web state"));
    let app = sverka_collector::api::router(app_state).merge(web::router(state.clone()));
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
struct Client<'h> {
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

    async fn login(harness: &'h Harness, login: &str) -> Client<'h> {
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

#[tokio::test]
async fn sign_in_sessions_csrf_and_throttling() {
    let harness = harness().await;
    let mut anonymous = Client::new(&harness);
    let answer = anonymous.get(&format!("/org/{}", harness.region)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/login");
    let login_page = anonymous.get("/login").await;
    let csp = login_page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        login_page.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
    assert!(login_page.text().contains("Вход в Сверку"));

    // Without the sign-in form's token the password is not even checked.
    let forged = anonymous
        .post("/login", &[("login", "admin"), ("password", PASSWORD)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let wrong = anonymous.try_login("admin", "wrong password!").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Неверный логин или пароль"));

    let mut admin = Client::login(&harness, "ADMIN").await;
    let cookie = admin
        .cookies
        .get("sverka_session")
        .expect("session")
        .clone();
    assert_eq!(cookie.len(), 64);
    let home = admin.get("/").await;
    assert_eq!(home.location(), format!("/org/{}", harness.region));
    let overview = admin.get(&format!("/org/{}", harness.region)).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.headers.contains_key("server-timing"));

    // A form without its CSRF token is refused and changes nothing.
    let no_token = admin.post("/logout", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(
        admin.get(&format!("/org/{}", harness.region)).await.status,
        StatusCode::OK
    );
    let out = admin
        .submit(&format!("/org/{}", harness.region), "/logout", &[])
        .await;
    assert_eq!(out.location(), "/login");
    // The old cookie no longer works, even when presented again.
    let mut replay = Client::new(&harness);
    replay.cookies.insert("sverka_session".into(), cookie);
    assert_eq!(
        replay
            .get(&format!("/org/{}", harness.region))
            .await
            .location(),
        "/login"
    );

    // Five failures lock the login, even for the right password.
    let mut attacker = Client::new(&harness);
    for _ in 0..web::auth::LOGIN_FAILURES {
        let answer = attacker.try_login("officer", "guess guess guess").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let locked = attacker.try_login("officer", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text().contains("Слишком много попыток"));

    // Every sign-in and failure is in the audit log, which only administrators read.
    let actions: Vec<String> = harness
        .store
        .audit_log(100)
        .await
        .expect("audit")
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    for action in ["login", "login_failed", "logout", "login_throttled"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    let mut school = Client::login(&harness, "school-a").await;
    assert_eq!(school.get("/audit").await.status, StatusCode::NOT_FOUND);
    let mut admin = Client::login(&harness, "admin").await;
    let audit = admin.get("/audit").await;
    assert!(audit.text().contains("login_failed"));
}

#[tokio::test]
async fn scope_is_enforced_on_pages_exports_and_api() {
    let harness = harness().await;
    let mut school = Client::login(&harness, "school-a").await;
    assert_eq!(
        school.get("/").await.location(),
        format!("/school/{}", harness.school_a)
    );
    let own = school.get(&format!("/school/{}", harness.school_a)).await;
    assert_eq!(own.status, StatusCode::OK);
    let foreign_paths = [
        format!("/school/{}", harness.school_b),
        format!("/org/{}", harness.region),
        format!("/org/{}/weekly", harness.school_b),
        format!("/org/{}/enrollment", harness.school_b),
        format!("/host/{}", harness.host_b),
        format!("/host/{}/export/findings/csv", harness.host_b),
        format!("/school/{}/export/violations/xlsx", harness.school_b),
        format!("/org/{}/export/csv", harness.region),
        "/host/999999".to_string(),
        "/users".to_string(),
    ];
    let main_of = |page: String| page[page.find("<main>").expect("main")..].to_string();
    let missing = main_of(school.get("/host/999999").await.text());
    for path in &foreign_paths {
        let answer = school.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        // Another school's PC looks exactly like one that does not exist.
        if path.starts_with("/host/") && !path.contains("export") {
            assert_eq!(main_of(answer.text()), missing, "{path}");
        }
    }
    assert_eq!(
        school
            .get(&format!("/host/{}", harness.host_a))
            .await
            .status,
        StatusCode::OK
    );
    // Forms are checked as well: no secrets or notes in another school.
    let refused = school
        .submit(
            &format!("/school/{}", harness.school_a),
            &format!("/org/{}/secrets", harness.school_b),
            &[("days", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(
        harness
            .store
            .secrets(harness.school_b)
            .await
            .expect("s")
            .len()
            == 1
    );
    let note = school
        .submit(
            &format!("/school/{}", harness.school_a),
            &format!("/host/{}/handled", harness.host_b),
            &[("app_id", "max"), ("note", "x")],
        )
        .await;
    assert_eq!(note.status, StatusCode::NOT_FOUND);

    // The officer covers the region; the API token acts as its user.
    let mut officer = Client::login(&harness, "officer").await;
    assert_eq!(
        officer
            .get(&format!("/host/{}", harness.host_b))
            .await
            .status,
        StatusCode::OK
    );
    let page = school
        .submit("/tokens", "/tokens", &[("name", "scripts")])
        .await
        .text();
    let token_start = page.find("sverka_pat_").expect("new token shown");
    let token: String = page[token_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let api = |path: String, token: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    let mut raw = Client::new(&harness);
    let own = raw
        .send(api(
            format!(
                "/api/v1/dashboard/organizations/{}/violations",
                harness.school_a
            ),
            &token,
        ))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    let rows: serde_json::Value = serde_json::from_slice(&own.body).expect("json");
    assert_eq!(rows.as_array().expect("rows").len(), 1);
    assert_eq!(rows[0]["host"], XSS_HOST);
    // The API keeps the stored words, whatever the user's language.
    assert_eq!(
        (&rows[0]["status"], &rows[0]["strength"]),
        (
            &serde_json::json!("banned"),
            &serde_json::json!("installed")
        )
    );
    for path in [
        format!(
            "/api/v1/dashboard/organizations/{}/violations",
            harness.school_b
        ),
        format!("/api/v1/dashboard/hosts/{}", harness.host_b),
        format!(
            "/api/v1/dashboard/organizations/{}/overview",
            harness.region
        ),
    ] {
        let answer = raw.send(api(path.clone(), &token)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let listed = raw
        .send(api("/api/v1/dashboard/organizations".into(), &token))
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).expect("json");
    assert_eq!(listed.as_array().expect("list").len(), 1);
    let bad = raw
        .send(api(
            "/api/v1/dashboard/organizations".into(),
            "sverka_pat_1.0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn agent_strings_are_escaped_and_exports_read_back() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let school = officer
        .get(&format!("/school/{}", harness.school_a))
        .await
        .text();
    assert!(school.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!school.contains(XSS_HOST));
    let host = officer
        .get(&format!("/host/{}", harness.host_a))
        .await
        .text();
    assert!(host.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!host.contains("<img"));

    let csv = officer
        .get(&format!(
            "/school/{}/export/violations/csv",
            harness.school_a
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("disposition")
            .contains(".csv")
    );
    let text = String::from_utf8(csv.body.clone()).expect("utf-8");
    assert!(text.starts_with("\u{feff}Компьютер;Приложение;"), "{text}");
    assert!(text.contains(XSS_HOST));
    assert!(text.contains("'=cmd|"), "formula neutralised: {text}");

    let xlsx = officer
        .get(&format!("/org/{}/export/xlsx", harness.region))
        .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    use calamine::{Data, Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.body.clone())).expect("an xlsx workbook");
    let sheet = workbook
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("range");
    let rows: Vec<Vec<Data>> = sheet.rows().map(|row| row.to_vec()).collect();
    assert_eq!(rows[0][0], Data::String("Организация".into()));
    // Школа А: 3 expected, 2 enrolled, 1 reporting, 1 with banned, share 100 %, 1 silent.
    let school_a = rows
        .iter()
        .find(|row| row[0] == Data::String("Школа А".into()))
        .expect("school A row");
    assert_eq!(
        school_a[1..7].to_vec(),
        vec![
            Data::Float(3.0),
            Data::Float(2.0),
            Data::Float(1.0),
            Data::Float(1.0),
            Data::Float(1.0),
            Data::Float(1.0),
        ]
    );
    let total = rows.last().expect("totals");
    assert_eq!(total[0], Data::String("Итого".into()));
    assert_eq!(total[2], Data::Float(3.0), "enrolled in the region");

    let host_csv = officer
        .get(&format!("/school/{}/export/clean/csv", harness.school_b))
        .await
        .text();
    assert!(host_csv.contains("'=HYPERLINK"), "{host_csv}");
}

/// The findings table's status, strength and cause words follow the user's language on
/// the page and in its exports.
#[tokio::test]
async fn status_words_are_translated_on_pages_and_exports() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let host_page = format!("/host/{}", harness.host_a);
    let findings_csv = format!("/host/{}/export/findings/csv", harness.host_a);
    let russian = officer.get(&host_page).await.text();
    assert!(russian.contains("<td>запрещено</td>"), "{russian}");
    assert!(russian.contains("<td>установлено</td>"), "{russian}");
    assert!(russian.contains("<td>отчёт ПК</td>"), "{russian}");
    assert!(!russian.contains("<td>banned</td>"));
    let csv = officer.get(&findings_csv).await.text();
    assert!(csv.contains(";запрещено;установлено;"), "{csv}");
    let catalog = officer.get("/catalog").await.text();
    assert!(catalog.contains("<td>запрещено</td>"), "{catalog}");

    officer
        .submit(&host_page, "/language", &[("language", "en")])
        .await;
    let english = officer.get(&host_page).await.text();
    assert!(english.contains("<td>banned</td>"), "{english}");
    assert!(english.contains("<td>installed</td>"), "{english}");
    assert!(english.contains("<td>PC report</td>"), "{english}");
    let csv = officer.get(&findings_csv).await.text();
    assert!(csv.contains(";banned;installed;"), "{csv}");
}

/// An organization's own time zone (or its parent's) dates its pages and exports and
/// bounds its weeks; unknown zone names are refused.
#[tokio::test]
async fn organization_time_zones_for_dates_and_weeks() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let moscow = &harness.state.clock;
    let kamchatka = moscow.with_zone("Asia/Kamchatka").expect("zone");
    let samara = moscow.with_zone("Europe/Samara").expect("zone");
    let enrolled_at = |host_id: i64| async move {
        store
            .host_detail(host_id)
            .await
            .expect("detail")
            .expect("host")
            .enrolled_at
    };
    let (at_a, at_b) = (
        enrolled_at(harness.host_a).await,
        enrolled_at(harness.host_b).await,
    );
    let mut officer = Client::login(&harness, "officer").await;
    let page_a = format!("/host/{}", harness.host_a);
    let page_b = format!("/host/{}", harness.host_b);
    assert!(
        officer
            .get(&page_a)
            .await
            .text()
            .contains(&moscow.date_time(at_a))
    );

    // The school's own zone; the other school inherits the region's.
    store
        .set_organization_time_zone(harness.school_a, Some("Asia/Kamchatka"))
        .await
        .expect("set");
    store
        .set_organization_time_zone(harness.region, Some("Europe/Samara"))
        .await
        .expect("set");
    let text = officer.get(&page_a).await.text();
    assert!(text.contains(&kamchatka.date_time(at_a)), "{text}");
    assert!(!text.contains(&moscow.date_time(at_a)));
    let appeared_at = store.finding_events(harness.host_a).await.expect("events")[0].at;
    let csv = officer
        .get(&format!("/host/{}/export/timeline/csv", harness.host_a))
        .await
        .text();
    assert!(csv.contains(&kamchatka.date_time(appeared_at)), "{csv}");
    assert!(!csv.contains(&moscow.date_time(appeared_at)), "{csv}");
    let text = officer.get(&page_b).await.text();
    assert!(text.contains(&samara.date_time(at_b)), "{text}");

    // Unknown names are refused by the store and by the form; empty inherits again.
    assert!(matches!(
        store
            .set_organization_time_zone(harness.school_b, Some("Mars/Olympus"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let overview = format!("/org/{}", harness.region);
    let children = format!("{overview}/children");
    let mut add_school = async |name: &str, time_zone: &str| {
        let fields = [("name", name), ("kind", "school"), ("time_zone", time_zone)];
        officer.submit(&overview, &children, &fields).await
    };
    let refused = add_school("Школа В", "Mars/Olympus").await;
    assert_ne!(refused.status, StatusCode::SEE_OTHER, "{}", refused.text());
    let added = add_school("Школа Г", "Asia/Omsk").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text());
    let organizations = store.organizations().await.expect("list");
    let school_g = organizations
        .iter()
        .find(|organization| organization.name == "Школа Г")
        .expect("added")
        .clone();
    assert_eq!(school_g.time_zone.as_deref(), Some("Asia/Omsk"));
    assert!(
        organizations
            .iter()
            .all(|organization| organization.name != "Школа В")
    );
    let region = store
        .set_organization_time_zone(harness.region, Some(""))
        .await
        .expect("inherit");
    assert_eq!(region.time_zone, None);

    // Thursday 26 November 2026, 20:00 UTC: Friday 08:00 in Kamchatka, so its week
    // 2026-W48 has ended there; still Thursday (23:00) in Moscow, where the last
    // ended week is 2026-W47.
    let now = 1_795_723_200;
    web::figures::freeze_ended_weeks(store, moscow, 7, now)
        .await
        .expect("freeze");
    let frozen = |week: &'static str| async move {
        let mut ids: Vec<i64> = store
            .weekly_figures_of_week(week)
            .await
            .expect("figures")
            .iter()
            .map(|figures| figures.organization_id)
            .collect();
        ids.sort_unstable();
        ids
    };
    // Школа Г (Omsk, Friday 02:00) has ended the week too.
    let mut ended_east = vec![harness.school_a, school_g.id];
    ended_east.sort_unstable();
    assert_eq!(frozen("2026-W48").await, ended_east);
    let mut moscow_ids = [harness.region, harness.school_b];
    moscow_ids.sort_unstable();
    let w47 = frozen("2026-W47").await;
    assert!(!w47.contains(&harness.school_a), "{w47:?}");
    assert!(moscow_ids.iter().all(|id| w47.contains(id)), "{w47:?}");
}

/// The catalog page's small form changes one application or adds one, and the
/// catalog in force follows at once.
#[tokio::test]
async fn one_catalog_entry_from_the_form() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer.get("/catalog").await.text();
    assert!(page.contains("id=\"catalog-entry\""), "{page}");
    let max_row = |page: &str| {
        let start = page.find("<code>max</code>").expect("max in the catalog");
        page[start..start + page[start..].find("</tr>").expect("row end")].to_string()
    };
    assert!(max_row(&page).contains("разрешено"), "{}", max_row(&page));

    let changed = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[
                ("id", "max"),
                ("status", "banned"),
                ("signature_kind", "packages"),
                ("signature", ""),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let text = changed.text();
    assert!(text.contains("catalog-saved"));
    assert!(max_row(&text).contains("запрещено"), "{}", max_row(&text));
    assert_eq!(
        harness
            .state
            .app
            .catalog()
            .matcher
            .catalog()
            .apps
            .iter()
            .find(|app| app.id == "max")
            .map(|app| app.status.as_str()),
        Some("banned")
    );

    let added = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[
                ("id", "element"),
                ("name", "Element"),
                ("status", "watch"),
                ("signature_kind", "packages"),
                ("signature", "element-desktop"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    assert!(
        added.text().contains("packages: element-desktop"),
        "{}",
        added.text()
    );
    let stored = harness
        .store
        .current_catalog()
        .await
        .expect("catalog")
        .expect("stored")
        .overrides;
    assert!(
        stored.contains("id = \"max\"") && stored.contains("id = \"element\""),
        "{stored}"
    );

    // A new application without a status is refused by the catalog's own check, and
    // nothing is stored; school admins cannot use the form.
    let refused = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[("id", "nostatus"), ("name", "No status")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    let unchanged = harness
        .store
        .current_catalog()
        .await
        .expect("catalog")
        .expect("stored")
        .overrides;
    assert_eq!(unchanged, stored);
    let mut school = Client::login(&harness, "school-a").await;
    let denied = school
        .submit(
            "/catalog",
            "/catalog/entry",
            &[("id", "max"), ("status", "approved")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn language_weekly_figures_notes_secrets_and_catalog() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let overview_path = format!("/org/{}", harness.region);
    let russian = officer.get(&overview_path).await.text();
    assert!(russian.contains("Отчитались за неделю"));
    officer
        .submit(&overview_path, "/language", &[("language", "en")])
        .await;
    let english = officer.get(&overview_path).await.text();
    assert!(english.contains("Reported this week"), "{english}");
    assert!(english.contains("lang=\"en\""));

    // Freeze last week's figures; the weekly page and its trend read them.
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let last_week = clock.previous(&clock.week_of(now));
    let frozen = web::figures::freeze_week(harness.store.as_ref(), &last_week, 7, now)
        .await
        .expect("freeze");
    assert_eq!(frozen, 3, "one row per organization");
    let weekly = officer
        .get(&format!(
            "/org/{}/weekly?week={}",
            harness.region, last_week.label
        ))
        .await
        .text();
    assert!(weekly.contains(&last_week.label));
    assert!(weekly.contains("frozen"));
    assert!(weekly.contains("<svg"));
    assert!(weekly.contains("<polyline"));
    let weekly_csv = officer
        .get(&format!(
            "/org/{}/weekly/export/csv?week={}",
            harness.region, last_week.label
        ))
        .await
        .text();
    assert!(weekly_csv.starts_with('\u{feff}'));

    // Officers may not mark violations; school admins may.
    let mut school = Client::login(&harness, "school-a").await;
    let host_page = format!("/host/{}", harness.host_a);
    let officer_note = officer
        .submit(
            &host_page,
            &format!("{host_page}/handled"),
            &[("app_id", "telegram"), ("note", "x")],
        )
        .await;
    assert_eq!(officer_note.status, StatusCode::NOT_FOUND);
    let note = school
        .submit(
            &host_page,
            &format!("{host_page}/handled"),
            &[("app_id", "telegram"), ("note", "удалим в понедельник")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let page = school
        .get(&format!("/school/{}", harness.school_a))
        .await
        .text();
    assert!(page.contains("удалим в понедельник (school-a)"));

    // Secrets: created with the install commands, shown once; school admins cannot revoke.
    let created = school
        .submit(
            &format!("/org/{}/enrollment", harness.school_a),
            &format!("/org/{}/secrets", harness.school_a),
            &[("days", "30")],
        )
        .await
        .text();
    assert!(created.contains(&format!(
        "msiexec /i sverka-agent-{}.msi /qn SERVER_URL=",
        env!("CARGO_PKG_VERSION")
    )));
    let secrets = harness
        .store
        .secrets(harness.school_a)
        .await
        .expect("secrets");
    let newest = secrets.last().expect("a secret");
    assert!(created.contains(&format!("ENROLL_SECRET=&quot;{}.", newest.id)));
    let revoke = school
        .submit(
            &format!("/org/{}/enrollment", harness.school_a),
            &format!("/org/{}/secrets/{}/revoke", harness.school_a, newest.id),
            &[],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    let revoke = officer
        .submit(
            &format!("/org/{}/enrollment", harness.school_a),
            &format!("/org/{}/secrets/{}/revoke", harness.school_a, newest.id),
            &[],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);

    // A catalog change from the page is stored and evaluated at once.
    let bad = officer
        .submit("/catalog", "/catalog", &[("overrides", "[[apps]]\nid = ")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut school_catalog = school.get("/catalog").await.text();
    assert!(
        !school_catalog.contains("catalog-overrides"),
        "school admins only read"
    );
    school_catalog.clear();
    let saved = officer
        .submit("/catalog", "/catalog", &[("overrides", "")])
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert!(saved.text().contains("catalog-saved"));
    assert!(
        harness
            .store
            .current_catalog()
            .await
            .expect("catalog")
            .is_some()
    );
}
