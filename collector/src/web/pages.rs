//! The pages people read: sign-in, the overview of an organization, a school's PCs, a
//! PC's details. Each table is built once by a function that both the page and its
//! CSV/XLSX export call, so what is exported is what is shown.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::auth::{
    ADDRESS_FAILURES, CsrfForm, LANGUAGE_COOKIE, LOGIN_CSRF_COOKIE, LOGIN_FAILURES, SESSION_COOKIE,
    Viewer, cookie, new_token, set_cookie, start_session, verify_password,
};
use super::figures::{Counts, Totals};
use super::i18n::{Lang, Texts};
use super::scope::{Action, OrganizationTree, authorize};
use super::table::{Cell, SortOrder, Table, column};
use super::{WebState, store_failure};
use crate::store::{HandledMark, UserChange, WeeklyFigures};

/// A handler's failure, already an answer.
pub type PageResult = Result<Response, Response>;

/// The frame of every page for a signed-in viewer.
pub fn layout(viewer: &Viewer, title: &str, crumbs: Markup, body: Markup) -> Markup {
    let texts = viewer.lang.texts();
    let is_admin = viewer.user.role == crate::store::Role::Administrator;
    html! {
        (DOCTYPE)
        html lang=(viewer.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Sverka" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Сверка" }
                    nav {
                        a href="/" { (texts.overview) }
                        a href="/catalog" { (texts.catalog) }
                        a href="/tokens" { (texts.tokens) }
                        @if is_admin {
                            a href="/users" { (texts.users) }
                            a href="/audit" { (texts.audit) }
                        }
                    }
                    div.account {
                        span.login { (viewer.user.login) }
                        form.inline method="post" action="/language" {
                            input type="hidden" name="csrf" value=(viewer.csrf_token);
                            input type="hidden" name="language" value=(viewer.lang.other().code());
                            input type="hidden" name="back" value=(viewer.path);
                            button #switch-language type="submit" { (texts.switch_to) }
                        }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf_token);
                            button #logout type="submit" { (texts.sign_out) }
                        }
                    }
                }
                main {
                    nav.crumbs { (crumbs) }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with a message only (refused forms, sign-in problems).
pub fn message_page(lang: Lang, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                title { "Sverka" }
                link rel="stylesheet" href="/static/app.css";
            }
            body { main { p.message { (message) } p { a href="/" { "⟵" } } } }
        }
    }
}

/// "Not found": the answer for anything outside the viewer's scope as well, so ids
/// cannot be probed.
pub fn not_found(viewer: &Viewer) -> Response {
    let texts = viewer.lang.texts();
    (
        StatusCode::NOT_FOUND,
        layout(
            viewer,
            texts.not_found,
            html! {},
            html! { p.message #not-found { (texts.not_found_text) } },
        ),
    )
        .into_response()
}

pub async fn load_tree(state: &WebState) -> Result<OrganizationTree, Response> {
    state
        .app
        .store
        .organizations()
        .await
        .map(OrganizationTree::new)
        .map_err(store_failure)
}

/// [`authorize`], answering "not found" when refused.
pub fn permit(
    viewer: &Viewer,
    action: Action,
    organization_id: Option<i64>,
    tree: &OrganizationTree,
) -> Result<(), Response> {
    authorize(&viewer.user, action, organization_id, tree).map_err(|_| not_found(viewer))
}

/// Breadcrumbs from the viewer's home down to `id` (links only within scope).
pub fn crumbs(viewer: &Viewer, tree: &OrganizationTree, id: i64) -> Markup {
    html! {
        @for organization in tree.path_to(id) {
            @if authorize(&viewer.user, Action::Read, Some(organization.id), tree).is_ok() {
                a href=(organization_href(tree, organization.id)) { (organization.name) }
                " / "
            }
        }
    }
}

/// Organizations with children get the overview; the others the school page.
pub fn organization_href(tree: &OrganizationTree, id: i64) -> String {
    if tree.children(id).is_empty() {
        format!("/school/{id}")
    } else {
        format!("/org/{id}")
    }
}

pub fn export_links(texts: &Texts, base: &str) -> Markup {
    html! {
        p.exports {
            (texts.export) ": "
            a.export href={ (base) "/csv" } download { "CSV" }
            " · "
            a.export href={ (base) "/xlsx" } download { "XLSX" }
        }
    }
}

/// A table as a download.
pub fn export_response(
    table: &Table,
    format: &str,
    clock: &super::clock::Clock,
    viewer: &Viewer,
) -> PageResult {
    let (body, content_type, extension) = match format {
        "csv" => (
            table.csv(clock).map_err(|error| {
                tracing::error!("CSV export: {error}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            })?,
            "text/csv; charset=utf-8",
            "csv",
        ),
        "xlsx" => (
            table.xlsx(clock).map_err(|error| {
                tracing::error!("XLSX export: {error}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            })?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        _ => return Err(not_found(viewer)),
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", table.name);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

// Signing in and out.

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
    HASH.get_or_init(|| super::auth::hash_password("not a real password").unwrap_or_default())
}

pub async fn login_submit(
    State(state): State<Arc<WebState>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let connection = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0);
    let form: LoginForm = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => super::auth::parse_form(&bytes).unwrap_or(LoginForm {
            csrf: String::new(),
            lang: String::new(),
            login: String::new(),
            password: String::new(),
        }),
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let lang = Lang::parse(&form.lang);
    let texts = lang.texts();
    let expected_csrf = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected_csrf.is_empty() || !crate::keys::same_hash(expected_csrf, &form.csrf) {
        return login_answer(&state, lang, StatusCode::FORBIDDEN, Some(texts.bad_form));
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
        return login_answer(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some(texts.too_many_attempts),
        );
    }
    let credentials = match state.app.store.user_credentials(&form.login).await {
        Ok(credentials) => credentials,
        Err(error) => return store_failure(error),
    };
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
            return login_answer(
                &state,
                lang,
                StatusCode::UNAUTHORIZED,
                Some(texts.wrong_password),
            );
        }
    };
    state.throttle.clear(&login_key);
    let cookie = match start_session(&state, &user).await {
        Ok(cookie) => cookie,
        Err(error) => return store_failure(error),
    };
    state
        .audit(&user.login, "login", user.organization_id, String::new())
        .await;
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, serde::Deserialize)]
pub struct Empty {}

pub async fn logout(State(state): State<Arc<WebState>>, form: CsrfForm<Empty>) -> Response {
    let viewer = form.viewer;
    if let Err(error) = state.app.store.delete_session(&viewer.session_hash).await {
        return store_failure(error);
    }
    state
        .audit(&viewer.user.login, "logout", None, String::new())
        .await;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", Some(0), state.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
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
) -> Response {
    let lang = Lang::parse(&form.form.language);
    let change = UserChange {
        language: Some(lang.code().to_string()),
        ..UserChange::default()
    };
    if let Err(error) = state
        .app
        .store
        .update_user(form.viewer.user.id, change, crate::now())
        .await
    {
        return store_failure(error);
    }
    let _ = headers;
    Redirect::to(local_path(&form.form.back)).into_response()
}

pub async fn home(State(state): State<Arc<WebState>>, viewer: Viewer) -> PageResult {
    let tree = load_tree(&state).await?;
    if let Some(home) = super::scope::home_organization(&viewer.user, &tree)
        && tree.get(home).is_some()
    {
        return Ok(Redirect::to(&organization_href(&tree, home)).into_response());
    }
    let texts = viewer.lang.texts();
    let body = html! {
        ul.roots {
            @for id in tree.roots() {
                @if let Some(organization) = tree.get(*id) {
                    li { a href=(organization_href(&tree, *id)) { (organization.name) } }
                }
            }
        }
    };
    Ok(layout(&viewer, texts.choose_organization, html! {}, body).into_response())
}

// The overview.

fn delta(now: Option<f64>, before: Option<f64>) -> Cell {
    Cell::Delta(now.zip(before).map(|(now, before)| now - before))
}

/// One row per sub-organization, with totals.
pub async fn overview_table(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
) -> Result<Table, Response> {
    let texts = lang.texts();
    let now = crate::now();
    let clock = state.clock_for(tree, id);
    let week = clock.week_of(now);
    let counts = Counts::load(
        state.app.store.as_ref(),
        &week,
        state.silent_after_days,
        now,
    )
    .await
    .map_err(store_failure)?;
    let previous = clock.previous(&week);
    let last_week: HashMap<i64, WeeklyFigures> = state
        .app
        .store
        .weekly_figures_of_week(&previous.label)
        .await
        .map_err(store_failure)?
        .into_iter()
        .map(|figures| (figures.organization_id, figures))
        .collect();
    let mut table = Table::new(
        format!("overview-{id}"),
        vec![
            column(texts.organization, 40.0),
            column(texts.expected, 12.0),
            column(texts.enrolled, 12.0),
            column(texts.reported_this_week, 14.0),
            column(texts.with_banned, 16.0),
            column(texts.approved_share, 16.0),
            column(texts.silent, 10.0),
            column(texts.change_banned, 18.0),
            column(texts.change_approved, 14.0),
        ],
    );
    let row = |name: Cell, totals: &Totals, before: Option<&WeeklyFigures>| {
        let before = before.map(Totals::of_week);
        vec![
            name,
            Cell::Int(totals.expected_pcs),
            Cell::Int(totals.enrolled),
            Cell::Int(totals.reporting),
            Cell::Int(totals.with_banned),
            Cell::Share(totals.approved_share()),
            Cell::Int(totals.silent),
            delta(
                Some(totals.with_banned as f64),
                before.map(|before| before.with_banned as f64),
            ),
            delta(
                totals.approved_share().map(|share| share * 100.0),
                before
                    .and_then(|before| before.approved_share())
                    .map(|share| share * 100.0),
            ),
        ]
    };
    let children = tree.children(id);
    let members: Vec<i64> = if children.is_empty() {
        vec![id]
    } else {
        children.to_vec()
    };
    for child in members {
        let Some(organization) = tree.get(child) else {
            continue;
        };
        let totals = counts.totals(tree, child);
        let name = Cell::Link(organization.name.clone(), organization_href(tree, child));
        table.rows.push(row(name, &totals, last_week.get(&child)));
    }
    let totals = counts.totals(tree, id);
    table.totals = Some(row(
        Cell::Text(texts.total.to_string()),
        &totals,
        last_week.get(&id),
    ));
    Ok(table)
}

pub async fn overview(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(order): Query<SortOrder>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.texts();
    let mut table = overview_table(&state, &tree, id, viewer.lang).await?;
    table.sort(order);
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let week = clock.week_of(crate::now());
    let can_add = authorize(&viewer.user, Action::ManageOrganizations, Some(id), &tree).is_ok();
    let body = html! {
        p.subtitle { (texts.week) " " (week.label) " (" (texts.week_ending) " " (clock.date(week.last_day)) ")" }
        p.links {
            a href={ "/org/" (id) "/weekly" } { (texts.weekly) }
            " · "
            a href={ "/org/" (id) "/enrollment" } { (texts.enrollment) }
        }
        (table.html(&clock, &format!("/org/{id}"), order, texts.nothing))
        (export_links(texts, &format!("/org/{id}/export")))
        @if can_add {
            details.add-organization {
                summary { (texts.add_organization) }
                form method="post" action={ "/org/" (id) "/children" } {
                    input type="hidden" name="csrf" value=(viewer.csrf_token);
                    label { (texts.name) input name="name" required; }
                    label { (texts.kind) select name="kind" {
                        option value="school" { "school" }
                        option value="municipality" { "municipality" }
                    } }
                    label { (texts.expected_pcs) input name="expected_pcs" type="number" min="0" value="0"; }
                    label { (texts.time_zone) input name="time_zone" placeholder=(tree.time_zone(id).unwrap_or("Europe/Moscow")); }
                    button type="submit" { (texts.add) }
                }
            }
        }
    };
    Ok(layout(&viewer, &name, crumbs(&viewer, &tree, id), body).into_response())
}

pub async fn overview_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, format)): Path<(i64, String)>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let table = overview_table(&state, &tree, id, viewer.lang).await?;
    export_response(&table, &format, &clock, &viewer)
}

// The school page.

fn evidence_text(json: &str) -> String {
    let evidence: Vec<sverka_shared::Evidence> = serde_json::from_str(json).unwrap_or_default();
    evidence
        .iter()
        .map(|evidence| match &evidence.path {
            Some(path) => format!("{} ({path})", evidence.detail),
            None => evidence.detail.clone(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Violations, silent PCs and clean PCs of an organization.
pub async fn school_tables(state: &WebState, id: i64, lang: Lang) -> Result<[Table; 3], Response> {
    let texts = lang.texts();
    let store = state.app.store.as_ref();
    let now = crate::now();
    let silent_since = now - i64::from(state.silent_after_days) * 86_400;
    let violations = store.violations(id, false).await.map_err(store_failure)?;
    let marks: HashMap<(i64, String), HandledMark> = store
        .handled_marks(id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .map(|mark| ((mark.host_id, mark.app_id.clone()), mark))
        .collect();
    let silent = store
        .silent_hosts(id, silent_since)
        .await
        .map_err(store_failure)?;
    let hosts = store.host_summaries(id).await.map_err(store_failure)?;

    let mut violation_table = Table::new(
        format!("violations-{id}"),
        vec![
            column(texts.computer, 24.0),
            column(texts.application, 18.0),
            column(texts.users_column, 20.0),
            column(texts.evidence, 60.0),
            column(texts.first_seen, 17.0),
            column(texts.last_seen, 17.0),
            column(texts.handled, 30.0),
        ],
    );
    for row in &violations {
        let mark = marks.get(&(row.host_id, row.app_id.clone()));
        violation_table.rows.push(vec![
            Cell::Link(row.hostname.clone(), format!("/host/{}", row.host_id)),
            Cell::Text(row.app_name.clone()),
            Cell::Text(row.users.join(", ")),
            Cell::Text(evidence_text(&row.evidence)),
            Cell::Time(Some(row.first_seen)),
            Cell::Time(Some(row.last_seen)),
            Cell::Text(
                mark.map(|mark| format!("{} ({})", mark.note, mark.by_login))
                    .unwrap_or_default(),
            ),
        ]);
    }
    let mut silent_table = Table::new(
        format!("silent-{id}"),
        vec![
            column(texts.computer, 24.0),
            column(texts.last_report, 17.0),
        ],
    );
    let silent_ids: std::collections::HashSet<i64> =
        silent.iter().map(|host| host.host_id).collect();
    for host in &silent {
        silent_table.rows.push(vec![
            Cell::Link(host.hostname.clone(), format!("/host/{}", host.host_id)),
            Cell::Time(host.last_seen_at),
        ]);
    }
    let mut clean_table = Table::new(
        format!("clean-{id}"),
        vec![
            column(texts.computer, 24.0),
            column(texts.os, 24.0),
            column(texts.agent_version, 12.0),
            column(texts.last_report, 17.0),
        ],
    );
    for host in hosts
        .iter()
        .filter(|host| host.open_banned == 0 && !silent_ids.contains(&host.host_id))
    {
        clean_table.rows.push(vec![
            Cell::Link(host.hostname.clone(), format!("/host/{}", host.host_id)),
            Cell::Text(host.os_name.clone()),
            Cell::Text(host.agent_version.clone()),
            Cell::Time(host.last_seen_at),
        ]);
    }
    Ok([violation_table, silent_table, clean_table])
}

pub async fn school(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(order): Query<SortOrder>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.texts();
    let [mut violations, mut silent, mut clean] = school_tables(&state, id, viewer.lang).await?;
    for table in [&mut violations, &mut silent, &mut clean] {
        table.sort(order);
    }
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let base = format!("/school/{id}");
    let section = |title: &str, key: &str, table: &Table| {
        html! {
            section id={ "section-" (key) } {
                h2 { (title) " (" (table.rows.len()) ")" }
                (table.html(&clock, &base, order, texts.nothing))
                (export_links(texts, &format!("{base}/export/{key}")))
            }
        }
    };
    let body = html! {
        p.links {
            a href={ "/org/" (id) "/enrollment" } { (texts.enrollment) }
            " · "
            a href={ "/org/" (id) "/weekly" } { (texts.weekly) }
        }
        (section(texts.violations, "violations", &violations))
        (section(texts.silent_pcs, "silent", &silent))
        (section(texts.clean_pcs, "clean", &clean))
    };
    Ok(layout(&viewer, &name, crumbs(&viewer, &tree, id), body).into_response())
}

pub async fn school_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, table, format)): Path<(i64, String, String)>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let [violations, silent, clean] = school_tables(&state, id, viewer.lang).await?;
    let table = match table.as_str() {
        "violations" => violations,
        "silent" => silent,
        "clean" => clean,
        _ => return Err(not_found(&viewer)),
    };
    export_response(&table, &format, &clock, &viewer)
}

// The PC page.

#[derive(Debug, Default, serde::Deserialize)]
pub struct HostQuery {
    q: Option<String>,
    sort: Option<usize>,
    dir: Option<super::table::Direction>,
}

/// The host, when it exists and lies in the viewer's scope.
pub async fn scoped_host(
    state: &WebState,
    viewer: &Viewer,
    tree: &OrganizationTree,
    id: i64,
    action: Action,
) -> Result<crate::store::HostDetail, Response> {
    let host = state
        .app
        .store
        .host_detail(id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| not_found(viewer))?;
    permit(viewer, action, Some(host.organization_id), tree)?;
    Ok(host)
}

/// Findings, inventory (filtered by `query`) and timeline of a host.
pub async fn host_tables(
    state: &WebState,
    host: &crate::store::HostDetail,
    query: &str,
    lang: Lang,
) -> Result<[Table; 3], Response> {
    let texts = lang.texts();
    let store = state.app.store.as_ref();
    let apps = store.host_apps(host.host_id).await.map_err(store_failure)?;
    let marks: HashMap<String, HandledMark> = store
        .handled_marks(host.organization_id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|mark| mark.host_id == host.host_id)
        .map(|mark| (mark.app_id.clone(), mark))
        .collect();
    let mut findings = Table::new(
        format!("findings-{}", host.host_id),
        vec![
            column(texts.application, 18.0),
            column(texts.status, 10.0),
            column(texts.strength, 10.0),
            column(texts.users_column, 20.0),
            column(texts.evidence, 60.0),
            column(texts.first_seen, 17.0),
            column(texts.last_seen, 17.0),
            column(texts.resolved, 17.0),
            column(texts.handled, 30.0),
        ],
    );
    for app in &apps {
        findings.rows.push(vec![
            Cell::Text(app.app_name.clone()),
            Cell::Text(texts.word(&app.status).to_string()),
            Cell::Text(texts.word(&app.strength).to_string()),
            Cell::Text(app.users.join(", ")),
            Cell::Text(evidence_text(&app.evidence)),
            Cell::Time(Some(app.first_seen)),
            Cell::Time(Some(app.last_seen)),
            Cell::Time(app.resolved_at),
            Cell::Text(
                marks
                    .get(&app.app_id)
                    .map(|mark| format!("{} ({})", mark.note, mark.by_login))
                    .unwrap_or_default(),
            ),
        ]);
    }
    let mut inventory = Table::new(
        format!("inventory-{}", host.host_id),
        vec![
            column(texts.name, 40.0),
            column(texts.version, 20.0),
            column(texts.kind, 12.0),
            column(texts.users_column, 16.0),
        ],
    );
    if let Some(digest) = &host.inventory_digest {
        let body = store.inventory(digest).await.map_err(store_failure)?;
        let observations: Vec<sverka_shared::Observation> = body
            .as_deref()
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or_default();
        let needle = query.trim().to_lowercase();
        let mut items: Vec<_> = observations
            .iter()
            .filter_map(sverka_shared::Observation::inventory_item)
            .filter(|item| {
                needle.is_empty()
                    || item.name.to_lowercase().contains(&needle)
                    || item.version.to_lowercase().contains(&needle)
            })
            .collect();
        items.sort();
        for item in items {
            inventory.rows.push(vec![
                Cell::Text(item.name),
                Cell::Text(item.version),
                Cell::Text(item.source.as_str().to_string()),
                Cell::Text(item.user.unwrap_or_default()),
            ]);
        }
    }
    let names: HashMap<&str, &str> = apps
        .iter()
        .map(|app| (app.app_id.as_str(), app.app_name.as_str()))
        .collect();
    let mut timeline = Table::new(
        format!("timeline-{}", host.host_id),
        vec![
            column(texts.at, 17.0),
            column(texts.application, 18.0),
            column(texts.event, 12.0),
            column(texts.cause, 10.0),
        ],
    );
    for event in store
        .finding_events(host.host_id)
        .await
        .map_err(store_failure)?
        .iter()
        .rev()
    {
        timeline.rows.push(vec![
            Cell::Time(Some(event.at)),
            Cell::Text(
                names
                    .get(event.app_id.as_str())
                    .map_or_else(|| event.app_id.clone(), |name| name.to_string()),
            ),
            Cell::Text(
                if event.event == "appeared" {
                    texts.appeared
                } else {
                    texts.disappeared
                }
                .to_string(),
            ),
            Cell::Text(texts.word(&event.cause).to_string()),
        ]);
    }
    Ok([findings, inventory, timeline])
}

pub async fn host(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<HostQuery>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    let host = scoped_host(&state, &viewer, &tree, id, Action::Read).await?;
    let clock = state.clock_for(&tree, host.organization_id);
    let texts = viewer.lang.texts();
    let search = query.q.clone().unwrap_or_default();
    let order = SortOrder {
        sort: query.sort,
        dir: query.dir,
    };
    let [mut findings, mut inventory, mut timeline] =
        host_tables(&state, &host, &search, viewer.lang).await?;
    for table in [&mut findings, &mut inventory, &mut timeline] {
        table.sort(order);
    }
    let can_mark = authorize(
        &viewer.user,
        Action::MarkHandled,
        Some(host.organization_id),
        &tree,
    )
    .is_ok();
    let open_banned: Vec<_> = state
        .app
        .store
        .host_apps(host.host_id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|app| app.resolved_at.is_none() && app.status == "banned")
        .collect();
    let base = format!("/host/{id}");
    let time = |seconds: Option<i64>| {
        seconds.map_or_else(|| texts.never.to_string(), |at| clock.date_time(at))
    };
    let body = html! {
        dl.details #host-details {
            dt { (texts.computer) } dd #hostname { (host.hostname) }
            dt { (texts.os) } dd { (host.os_name) }
            dt { (texts.agent_version) } dd { (host.agent_version) }
            dt { (texts.machine_id) } dd { code { (host.machine_id) } }
            dt { (texts.enrolled_at) } dd { (clock.date_time(host.enrolled_at)) }
            dt { (texts.last_report) } dd { (time(host.last_seen_at)) }
            dt { (texts.last_scan) } dd { (time(host.last_scan_at)) }
        }
        section #section-findings {
            h2 { (texts.findings) }
            (findings.html(&clock, &base, order, texts.nothing))
            (export_links(texts, &format!("{base}/export/findings")))
            @if can_mark && !open_banned.is_empty() {
                form.handled method="post" action={ (base) "/handled" } {
                    input type="hidden" name="csrf" value=(viewer.csrf_token);
                    label { (texts.application) select name="app_id" {
                        @for app in &open_banned { option value=(app.app_id) { (app.app_name) } }
                    } }
                    label { (texts.note) input name="note" maxlength="500" required; }
                    button type="submit" { (texts.mark_handled) }
                }
            }
        }
        section #section-inventory {
            h2 { (texts.inventory) " (" (inventory.rows.len()) ")" }
            form.search method="get" action=(base) {
                input #inventory-search name="q" type="search" value=(search) placeholder=(texts.search);
                button type="submit" { (texts.search) }
            }
            (inventory.html(&clock, &base, order, texts.nothing))
            (export_links(texts, &format!("{base}/export/inventory")))
        }
        section #section-timeline {
            h2 { (texts.timeline) }
            (timeline.html(&clock, &base, order, texts.nothing))
            (export_links(texts, &format!("{base}/export/timeline")))
        }
    };
    Ok(layout(
        &viewer,
        &host.hostname,
        crumbs(&viewer, &tree, host.organization_id),
        body,
    )
    .into_response())
}

pub async fn host_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, table, format)): Path<(i64, String, String)>,
) -> PageResult {
    let tree = load_tree(&state).await?;
    let host = scoped_host(&state, &viewer, &tree, id, Action::Read).await?;
    let clock = state.clock_for(&tree, host.organization_id);
    let [findings, inventory, timeline] = host_tables(&state, &host, "", viewer.lang).await?;
    let table = match table.as_str() {
        "findings" => findings,
        "inventory" => inventory,
        "timeline" => timeline,
        _ => return Err(not_found(&viewer)),
    };
    export_response(&table, &format, &clock, &viewer)
}

#[derive(Debug, serde::Deserialize)]
pub struct HandledForm {
    app_id: String,
    note: String,
}

pub async fn mark_handled(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<HandledForm>,
) -> PageResult {
    let viewer = form.viewer;
    let tree = load_tree(&state).await?;
    let host = scoped_host(&state, &viewer, &tree, id, Action::MarkHandled).await?;
    let note = form.form.note.trim().to_string();
    state
        .app
        .store
        .mark_handled(HandledMark {
            host_id: host.host_id,
            app_id: form.form.app_id.clone(),
            note: note.clone(),
            by_login: viewer.user.login.clone(),
            at: crate::now(),
        })
        .await
        .map_err(|error| match error {
            crate::store::StoreError::NotFound(_) | crate::store::StoreError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                message_page(viewer.lang, viewer.lang.texts().bad_form),
            )
                .into_response(),
            other => store_failure(other),
        })?;
    state
        .audit(
            &viewer.user.login,
            "mark_handled",
            Some(host.organization_id),
            format!(
                "host {} ({}), {}: {note}",
                host.host_id, host.hostname, form.form.app_id
            ),
        )
        .await;
    Ok(Redirect::to(&format!("/host/{id}")).into_response())
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
