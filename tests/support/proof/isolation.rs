//! Proof suite part: isolation. A real collector with a region, two municipalities
//! and two schools under each, two enrolled and reporting PCs in every school, and a
//! user of every role (administrator; officer of municipality A; school admin of
//! school A1), each with a personal API token. Every route of [`ROUTES`] (checked
//! against the router's source and both OpenAPI documents, so a new route fails the
//! suite until it is listed) is asked by every role with every id from 1 to ten past
//! the highest existing one: ids in scope, out of scope, and that do not exist.
//!
//! A leak is: an out-of-scope id answered with success; an out-of-scope id answered
//! differently from an id that does not exist (that difference lets ids be probed); or
//! any successful answer (page, CSV, XLSX, JSON) that names an organization, PC or
//! user outside the role's scope (names are unique markers; the ancestors of a user's
//! own organization are part of its context, not a leak).

pub mod web;

use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use super::{Budget, Figure, Part};
use crate::real_collector::Collector;
use web::{Answer, Session};

/// Every route the collector serves: `(method, path)`. The one list the isolation
/// part walks; [`check_route_list`] fails when the router has a route it lacks.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("POST", "/language"),
    ("GET", "/org/{id}"),
    ("GET", "/org/{id}/export/{format}"),
    ("POST", "/org/{id}/children"),
    ("GET", "/school/{id}"),
    ("GET", "/school/{id}/export/{table}/{format}"),
    ("GET", "/host/{id}"),
    ("GET", "/host/{id}/export/{table}/{format}"),
    ("POST", "/host/{id}/handled"),
    ("GET", "/org/{id}/weekly"),
    ("GET", "/org/{id}/weekly/export/{format}"),
    ("GET", "/org/{id}/enrollment"),
    ("POST", "/org/{id}/secrets"),
    ("POST", "/org/{id}/secrets/{secret}/revoke"),
    ("GET", "/catalog"),
    ("POST", "/catalog"),
    ("POST", "/catalog/entry"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{id}/disable"),
    ("GET", "/audit"),
    ("GET", "/tokens"),
    ("POST", "/tokens"),
    ("POST", "/tokens/{id}/revoke"),
    ("GET", "/static/app.css"),
    ("GET", "/static/app.js"),
    ("GET", "/api/v1/dashboard/organizations"),
    ("GET", "/api/v1/dashboard/organizations/{id}/overview"),
    ("GET", "/api/v1/dashboard/organizations/{id}/violations"),
    ("GET", "/api/v1/dashboard/organizations/{id}/silent"),
    ("GET", "/api/v1/dashboard/organizations/{id}/weekly"),
    ("GET", "/api/v1/dashboard/hosts/{id}"),
    ("POST", "/api/v1/enroll"),
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/catalog"),
    ("GET", "/healthz"),
];

const ROUTER_SOURCE: &str = include_str!("../../../collector/src/server.rs");
const AGENT_OPENAPI: &str = include_str!("../../../docs/agent-api.openapi.json");
const DASHBOARD_OPENAPI: &str = include_str!("../../../docs/dashboard-api.openapi.json");

/// The path constants the router names instead of a literal: the agent API's (shared
/// with the agent) and the dashboard JSON API's.
fn path_constant(name: &str) -> Option<&'static str> {
    use sverka_collector::web::json;
    use sverka_shared::protocol;
    Some(match name {
        "ENROLL_PATH" => protocol::ENROLL_PATH,
        "REPORTS_PATH" => protocol::REPORTS_PATH,
        "CATALOG_PATH" => protocol::CATALOG_PATH,
        "ORGANIZATIONS_PATH" => json::ORGANIZATIONS_PATH,
        "OVERVIEW_PATH" => json::OVERVIEW_PATH,
        "VIOLATIONS_PATH" => json::VIOLATIONS_PATH,
        "SILENT_PATH" => json::SILENT_PATH,
        "WEEKLY_PATH" => json::WEEKLY_PATH,
        "HOST_PATH" => json::HOST_PATH,
        _ => return None,
    })
}

/// The arguments of one `.route(` call: the text up to its closing parenthesis.
fn route_arguments(after_call: &str) -> &str {
    let mut depth = 1;
    for (index, character) in after_call.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &after_call[..index];
                }
            }
            _ => {}
        }
    }
    after_call
}

/// The routes the collector serves, read from the router's source (`server.rs`, every
/// route in one place) and the two OpenAPI documents (which the collector's own tests
/// hold to its routes).
pub fn served_routes() -> anyhow::Result<BTreeSet<(String, String)>> {
    let mut routes = BTreeSet::new();
    for piece in ROUTER_SOURCE.split(".route(").skip(1) {
        let (path, handlers) = route_arguments(piece)
            .split_once(',')
            .context("a route without handlers in server.rs")?;
        let path = path.trim();
        let path = match path
            .strip_prefix('"')
            .and_then(|path| path.strip_suffix('"'))
        {
            Some(literal) => literal,
            None => {
                let name = path.rsplit("::").next().unwrap_or(path);
                path_constant(name).with_context(|| {
                    format!("the route path {path} in server.rs is neither a literal nor a known constant")
                })?
            }
        };
        for (marker, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
            ("patch(", "PATCH"),
        ] {
            if handlers.contains(marker) {
                routes.insert((method.to_string(), path.to_string()));
            }
        }
    }
    for document in [AGENT_OPENAPI, DASHBOARD_OPENAPI] {
        let value: serde_json::Value =
            serde_json::from_str(document).context("an OpenAPI document")?;
        for (path, operations) in value["paths"].as_object().context("paths")? {
            for method in operations.as_object().context("operations")?.keys() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    for path in sverka_collector::web::json::PATHS {
        routes.insert(("GET".to_string(), path.to_string()));
    }
    Ok(routes)
}

/// Fails when a served route is missing from [`ROUTES`] or listed but not served.
pub fn check_route_list() -> anyhow::Result<usize> {
    let served = served_routes()?;
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&served).collect();
    if !missing.is_empty() || !stale.is_empty() {
        bail!(
            "the isolation route list is out of date: not listed {missing:?}, not served {stale:?}"
        );
    }
    if served.len() < 30 {
        bail!(
            "only {} routes read from the router: the reading broke",
            served.len()
        );
    }
    Ok(served.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Administrator,
    OfficerA,
    SchoolAdminA1,
}

/// The world the part builds; ids read back from the collector.
struct World {
    /// Organization id → (name, parent).
    organizations: BTreeMap<i64, (String, Option<i64>)>,
    /// Host id → (host name, organization).
    hosts: BTreeMap<i64, (String, i64)>,
    /// Secret id → organization.
    secrets: BTreeMap<i64, i64>,
    /// User id → (login, organization).
    users: BTreeMap<i64, (String, Option<i64>)>,
    /// Token id → user id.
    tokens: BTreeMap<i64, i64>,
    roles: Vec<RoleUser>,
}

struct RoleUser {
    role: Role,
    login: String,
    user_id: i64,
    home: Option<i64>,
    session: Session,
    token: String,
    csrf: String,
}

impl World {
    fn within(&self, id: i64, home: i64) -> bool {
        let mut current = Some(id);
        while let Some(at) = current {
            if at == home {
                return true;
            }
            current = self.organizations.get(&at).and_then(|(_, parent)| *parent);
        }
        false
    }

    fn ancestors(&self, id: i64) -> BTreeSet<i64> {
        let mut found = BTreeSet::new();
        let mut current = Some(id);
        while let Some(at) = current {
            found.insert(at);
            current = self.organizations.get(&at).and_then(|(_, parent)| *parent);
        }
        found
    }

    fn org_in_scope(&self, home: Option<i64>, id: i64) -> bool {
        match home {
            None => self.organizations.contains_key(&id),
            Some(home) => self.within(id, home),
        }
    }

    /// Names that must never reach this user: organizations outside its subtree (but
    /// its own organization's ancestors), their PCs, and users of other organizations.
    fn foreign_markers(&self, user: &RoleUser) -> Vec<String> {
        let Some(home) = user.home else {
            return Vec::new();
        };
        let context = self.ancestors(home);
        let mut markers = Vec::new();
        for (id, (name, _)) in &self.organizations {
            if !self.within(*id, home) && !context.contains(id) {
                markers.push(name.clone());
            }
        }
        for (name, organization) in self.hosts.values() {
            if !self.within(*organization, home) {
                markers.push(name.clone());
            }
        }
        for (login, organization) in self.users.values() {
            if organization.is_none_or(|organization| !self.within(organization, home)) {
                markers.push(login.clone());
            }
        }
        markers
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Administrator => "administrator",
        Role::OfficerA => "officer of municipality A",
        Role::SchoolAdminA1 => "school admin of school A1",
    }
}

fn build_world(collector: &Collector, tag: &str) -> anyhow::Result<World> {
    let region = collector.add_org(&format!("region-{tag}"), "region", None);
    let mut schools = Vec::new();
    for municipality in ["A", "B"] {
        let id = collector.add_org(
            &format!("muni-{municipality}-{tag}"),
            "municipality",
            Some(region),
        );
        for school in 1..=2 {
            let name = format!("school-{municipality}{school}-{tag}");
            schools.push((
                collector.add_org(&name, "school", Some(id)),
                format!("{municipality}{school}"),
            ));
        }
    }
    let http = web::http_client();
    let base = collector.url();
    for (school, label) in &schools {
        let secret = collector.secret(*school);
        for pc in 1..=2 {
            let hostname = format!("pc-{label}-{pc}-{tag}");
            let host = web::enroll(
                &http,
                &base,
                &secret,
                &format!("machine-{label}-{pc}-{tag}"),
                &hostname,
            )?;
            let inventory = [web::package(
                "telegram-desktop",
                "4.6.5",
                "/var/lib/dpkg/status",
                None,
            )];
            let (status, text) = web::send_report(
                &http,
                &base,
                &host.key,
                web::report_body(&hostname, "proof", &inventory, vec![]),
            )?;
            if status != 200 {
                bail!("a report of {hostname} was refused: {status} {text}");
            }
        }
    }
    let password = web::password_file()?;
    let muni_a = schools[0].0;
    let muni_a = read_parent(collector, muni_a)?;
    let school_a1 = schools[0].0;
    let specs = [
        (Role::Administrator, "administrator", None),
        (Role::OfficerA, "officer", Some(muni_a)),
        (Role::SchoolAdminA1, "school_admin", Some(school_a1)),
    ];
    let mut roles = Vec::new();
    for (_, role_text, home) in specs {
        let login = format!("{}-{tag}", role_text.replace('_', "-"));
        web::add_user(collector, &password, &login, role_text, home)?;
    }
    for (role, role_text, home) in specs {
        let login = format!("{}-{tag}", role_text.replace('_', "-"));
        let mut session = Session::login(&base, &login)?;
        let token = session.create_token(&format!("token-of-{login}"))?;
        let csrf = session.csrf()?;
        roles.push(RoleUser {
            role,
            login,
            user_id: 0,
            home,
            session,
            token,
            csrf,
        });
    }
    let mut world = read_world(collector)?;
    for user in &mut roles {
        user.user_id = world
            .users
            .iter()
            .find(|(_, (login, _))| *login == user.login)
            .map(|(id, _)| *id)
            .context("a suite user in the database")?;
    }
    world.roles = roles;
    Ok(world)
}

fn read_parent(collector: &Collector, id: i64) -> anyhow::Result<i64> {
    let connection = rusqlite::Connection::open(collector.database())?;
    Ok(connection.query_row(
        "SELECT parent_id FROM organizations WHERE id = ?1",
        [id],
        |row| row.get(0),
    )?)
}

/// Every id the collector holds, read from its database.
fn read_world(collector: &Collector) -> anyhow::Result<World> {
    let connection =
        rusqlite::Connection::open(collector.database()).context("open the database")?;
    let organizations = connection
        .prepare("SELECT id, name, parent_id FROM organizations")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let hosts = connection
        .prepare("SELECT id, hostname, organization_id FROM hosts")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let secrets = connection
        .prepare("SELECT id, organization_id FROM enrollment_secrets")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let users = connection
        .prepare("SELECT id, login, organization_id FROM users")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let tokens = connection
        .prepare("SELECT id, user_id FROM api_tokens")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(World {
        organizations,
        hosts,
        secrets,
        users,
        tokens,
        roles: Vec::new(),
    })
}

/// What an answer says, as text: XLSX cells read back, everything else as is.
pub fn answer_text(answer: &Answer) -> String {
    if answer.content_type.contains("spreadsheetml") || answer.body.starts_with(b"PK\x03\x04") {
        use calamine::Reader;
        let mut text = String::new();
        if let Ok(mut workbook) = calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(
            Cursor::new(answer.body.clone()),
        ) {
            for name in workbook.sheet_names() {
                if let Ok(range) = workbook.worksheet_range(&name) {
                    for row in range.rows() {
                        for cell in row {
                            text.push_str(&cell.to_string());
                            text.push('\t');
                        }
                        text.push('\n');
                    }
                }
            }
        }
        return text;
    }
    answer.text()
}

/// An answer with what makes two requests' answers differ only by their own id
/// taken out: the requested path, and both compared ids wherever they stand alone
/// (both in both answers, so that an incidental `8` in `utf-8` is treated alike).
fn normalized(answer: &Answer, path: &str, ids: [i64; 2]) -> (u16, String, String) {
    let clean = |text: &str| {
        let text = text.replace(path, "{path}");
        let text = replace_number(&text, ids[0]);
        replace_number(&text, ids[1])
    };
    (
        answer.status,
        clean(&answer.location),
        clean(&answer_text(answer)),
    )
}

/// `text` with the number `id` (not part of a longer number) replaced by `{id}`.
fn replace_number(text: &str, id: i64) -> String {
    let needle = id.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find(&needle) {
        let start = at + found;
        let end = start + needle.len();
        let before = start > 0 && bytes[start - 1].is_ascii_digit();
        let after = end < bytes.len() && bytes[end].is_ascii_digit();
        out.push_str(&text[at..start]);
        out.push_str(if before || after { &needle } else { "{id}" });
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    in_scope_ok: u64,
    in_scope_asked: u64,
    leaks: Vec<String>,
    /// Every name some role must not see ...
    guarded: BTreeSet<String>,
    /// ... and those of them the administrator did see: the marker check can see them.
    seen_by_administrator: BTreeSet<String>,
}

impl Tally {
    fn leak(&mut self, text: String) {
        if self.leaks.len() < 40 {
            eprintln!("isolation: LEAK {text}");
        }
        self.leaks.push(text);
    }
}

fn is_success(status: u16) -> bool {
    (200..400).contains(&status)
}

/// A request as `user`: pages with its session, the JSON API with its token.
fn ask(
    user: &mut RoleUser,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    if path.starts_with("/api/") {
        let token = user.token.clone();
        return user.session.clone_without_cookies().send(
            method,
            path,
            &[("authorization", format!("Bearer {token}"))],
            None,
        );
    }
    if method == "POST" {
        let mut fields = vec![("csrf", user.csrf.as_str())];
        fields.extend_from_slice(form);
        user.session.post_form(path, &fields)
    } else {
        user.session.get(path)
    }
}

impl Session {
    fn clone_without_cookies(&self) -> Session {
        let mut session = self.clone();
        session.cookies.clear();
        session
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Organization,
    Host,
    User,
    Token,
    Secret,
}

fn id_kind(path: &str) -> Option<IdKind> {
    if !path.contains("{id}") {
        return None;
    }
    Some(if path.contains("/secrets/{secret}") {
        IdKind::Secret
    } else if path.starts_with("/host/") || path.starts_with("/api/v1/dashboard/hosts/") {
        IdKind::Host
    } else if path.starts_with("/users/") {
        IdKind::User
    } else if path.starts_with("/tokens/") {
        IdKind::Token
    } else {
        IdKind::Organization
    })
}

/// The concrete paths of a template for one id (every export format and table).
fn expand(template: &str, smoke: bool) -> Vec<String> {
    let formats: &[&str] = if smoke { &["csv"] } else { &["csv", "xlsx"] };
    let tables: &[&str] = if template.starts_with("/host/") {
        if smoke {
            &["findings"]
        } else {
            &["findings", "inventory", "timeline"]
        }
    } else if smoke {
        &["violations"]
    } else {
        &["violations", "silent", "clean"]
    };
    let mut paths = vec![template.to_string()];
    if template.contains("{format}") {
        paths = paths
            .iter()
            .flat_map(|path| {
                formats
                    .iter()
                    .map(move |format| path.replace("{format}", format))
            })
            .collect();
    }
    if template.contains("{table}") {
        paths = paths
            .iter()
            .flat_map(|path| {
                tables
                    .iter()
                    .map(move |table| path.replace("{table}", table))
            })
            .collect();
    }
    paths
}

fn form_for(template: &str) -> Vec<(&'static str, &'static str)> {
    match template {
        "/org/{id}/children" => vec![
            ("name", "intruder-org"),
            ("kind", "school"),
            ("expected_pcs", "1"),
        ],
        "/host/{id}/handled" => vec![("app_id", "telegram"), ("note", "intruder")],
        "/org/{id}/secrets" => vec![("days", "1")],
        "/users" => vec![
            ("login", "intruder"),
            ("password", "intruder password 1234"),
            ("role", "administrator"),
            ("organization_id", ""),
        ],
        "/catalog" => vec![("overrides", "")],
        "/catalog/entry" => vec![
            ("id", "intruder-app"),
            ("name", "Intruder"),
            ("status", "banned"),
            ("signature_kind", "packages"),
            ("signature", "intruder"),
        ],
        _ => vec![],
    }
}

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let route_count = check_route_list()?;
    let collector = Collector::start();
    let tag = format!("zq{}", fastrand::u32(1000..9999));
    let mut world = build_world(&collector, &tag)?;
    let mut tally = Tally::default();

    // Ids from 1 to ten past the highest of each kind.
    let highest = |ids: Vec<i64>| ids.into_iter().max().unwrap_or(0) + 10;
    let range_of = |kind: IdKind, world: &World| -> Vec<i64> {
        let top = match kind {
            IdKind::Organization => highest(world.organizations.keys().copied().collect()),
            IdKind::Host => highest(world.hosts.keys().copied().collect()),
            IdKind::User => highest(world.users.keys().copied().collect()),
            IdKind::Token => highest(world.tokens.keys().copied().collect()),
            IdKind::Secret => highest(world.secrets.keys().copied().collect()),
        };
        (1..=top).collect()
    };

    let mut roles = std::mem::take(&mut world.roles);
    for user in &roles {
        tally.guarded.extend(world.foreign_markers(user));
    }
    // GETs first, then the id-less forms, then the forms on ids (which must change
    // nothing, but would if they leaked).
    for pass in ["GET", "POST"] {
        for user in &mut roles {
            let markers = world.foreign_markers(user);
            for (method, template) in ROUTES {
                if *method != pass {
                    continue;
                }
                let kind = id_kind(template);
                match kind {
                    None => check_idless(&world, user, method, template, &markers, &mut tally)?,
                    Some(kind) => {
                        for concrete in expand(template, budget.smoke) {
                            let ids = range_of(kind, &world);
                            check_ids(
                                &world, user, method, &concrete, template, kind, &ids, &markers,
                                &mut tally,
                            )?;
                        }
                    }
                }
            }
        }
    }
    // The agent API does not take a person's credentials, and a PC's key is no
    // person's: the dashboard API refuses it.
    let http = web::http_client();
    for user in &roles {
        for path in ["/api/v1/catalog", "/api/v1/reports"] {
            let method = if path.ends_with("reports") {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            };
            let answer = http
                .request(method, format!("{}{path}", collector.url()))
                .header("authorization", format!("Bearer {}", user.token))
                .header("cookie", user.session.cookie_header())
                .body(web::report_body("x", "proof", &[], vec![]))
                .send()?;
            tally.requests += 1;
            if answer.status().is_success() {
                tally.leak(format!(
                    "{} reached {path} with a person's credentials",
                    role_name(user.role)
                ));
            }
        }
    }
    let log = collector.log();
    if log.contains("panicked") {
        bail!("the collector panicked during the isolation run:\n{log}");
    }
    eprintln!(
        "isolation: {} requests, {} routes, {} in-scope answers of {} successful, {} leaks",
        tally.requests,
        route_count,
        tally.in_scope_ok,
        tally.in_scope_asked,
        tally.leaks.len()
    );
    let mut figures = vec![
        Figure::count(
            Part::Isolation,
            format!(
                "requests: {route_count} routes × 3 roles × ids 1..max+10 (in, out of scope, nonexistent)"
            ),
            tally.requests,
        ),
        Figure::checked(
            Part::Isolation,
            "in-scope reads answered (the data is there to leak)",
            format!("{} / {}", tally.in_scope_ok, tally.in_scope_asked),
            "all",
            tally.in_scope_asked > 0 && tally.in_scope_ok == tally.in_scope_asked,
        ),
        Figure::checked(
            Part::Isolation,
            "guarded names the administrator sees (the leak check can see them)",
            format!(
                "{} / {}",
                tally.seen_by_administrator.len(),
                tally.guarded.len()
            ),
            "all",
            !tally.guarded.is_empty() && tally.seen_by_administrator.len() == tally.guarded.len(),
        ),
        Figure::at_most(Part::Isolation, "leaks", tally.leaks.len() as u64, 0),
    ];
    if !tally.leaks.is_empty() {
        let path = budget.artifacts.join("isolation-leaks.txt");
        std::fs::write(&path, tally.leaks.join("\n"))?;
        figures.push(Figure::count(
            Part::Isolation,
            "leaks listed in",
            path.display(),
        ));
    }
    Ok(figures)
}

fn check_markers(
    user: &RoleUser,
    path: &str,
    answer: &Answer,
    markers: &[String],
    tally: &mut Tally,
) {
    if !(200..300).contains(&answer.status) {
        return;
    }
    let text = answer_text(answer);
    if user.role == Role::Administrator {
        let seen: Vec<String> = tally
            .guarded
            .iter()
            .filter(|marker| text.contains(marker.as_str()))
            .cloned()
            .collect();
        tally.seen_by_administrator.extend(seen);
    }
    for marker in markers {
        if text.contains(marker.as_str()) {
            tally.leak(format!("{} saw {marker:?} on {path}", role_name(user.role)));
        }
    }
}

fn check_idless(
    _world: &World,
    user: &mut RoleUser,
    method: &str,
    template: &str,
    markers: &[String],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    match (method, template) {
        // Signing in and out and the language concern only the session itself;
        // agent routes are checked with a person's credentials at the end.
        ("POST", "/login" | "/logout" | "/language" | "/tokens")
        | (_, "/api/v1/enroll" | "/api/v1/reports") => return Ok(()),
        ("POST", _) => {
            // Forms only some roles may send: the others must be refused.
            let allowed = matches!(
                (template, user.role),
                (_, Role::Administrator) | ("/catalog" | "/catalog/entry", Role::OfficerA)
            );
            if allowed {
                return Ok(());
            }
            let answer = ask(user, method, template, &form_for(template))?;
            tally.requests += 1;
            if is_success(answer.status) {
                tally.leak(format!(
                    "{} was allowed POST {template}: {}",
                    role_name(user.role),
                    answer.status
                ));
            }
        }
        _ => {
            let answer = ask(user, method, template, &[])?;
            tally.requests += 1;
            check_markers(user, template, &answer, markers, tally);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_ids(
    world: &World,
    user: &mut RoleUser,
    method: &str,
    concrete: &str,
    template: &str,
    kind: IdKind,
    ids: &[i64],
    markers: &[String],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let home = user
        .home
        .unwrap_or_else(|| *world.organizations.keys().next().unwrap_or(&1));
    // Whether an id exists, and whether it is in the user's scope.
    let (scope_home, role, user_id) = (user.home, user.role, user.user_id);
    let classify = |id: i64| -> (bool, bool) {
        match kind {
            IdKind::Organization => (
                world.organizations.contains_key(&id),
                world.org_in_scope(scope_home, id),
            ),
            IdKind::Host => match world.hosts.get(&id) {
                Some((_, organization)) => (true, world.org_in_scope(scope_home, *organization)),
                None => (false, false),
            },
            IdKind::Secret => match world.secrets.get(&id) {
                Some(organization) => (true, world.org_in_scope(scope_home, *organization)),
                None => (false, false),
            },
            IdKind::User => (world.users.contains_key(&id), role == Role::Administrator),
            IdKind::Token => match world.tokens.get(&id) {
                Some(owner) => (true, *owner == user_id || role == Role::Administrator),
                None => (false, false),
            },
        }
    };
    let path_of = |id: i64| -> String {
        if kind == IdKind::Secret {
            concrete
                .replace("{id}", &home.to_string())
                .replace("{secret}", &id.to_string())
        } else {
            concrete.replace("{id}", &id.to_string())
        }
    };
    let form = form_for(template);
    let nonexistent = *ids.last().context("no ids")?;
    let reference_path = path_of(nonexistent);
    let reference_answer = ask(user, method, &reference_path, &form)?;
    tally.requests += 1;
    let reference_status = reference_answer.status;
    if is_success(reference_status) && method == "POST" || (200..300).contains(&reference_status) {
        tally.leak(format!(
            "{} got {} for a nonexistent id on {reference_path}",
            role_name(user.role),
            reference_status
        ));
    }
    for &id in ids {
        let (exists, in_scope) = classify(id);
        if method == "POST" && in_scope {
            // Forms in scope would change the world; they are the dashboard tests'.
            continue;
        }
        let path = path_of(id);
        let answer = ask(user, method, &path, &form)?;
        tally.requests += 1;
        if in_scope {
            // A school page is only for schools; every other read must answer.
            let is_school = world
                .organizations
                .get(&id)
                .is_some_and(|(name, _)| name.starts_with("school-"));
            if method == "GET" && (is_school || !template.starts_with("/school/")) {
                tally.in_scope_asked += 1;
                if answer.status == 200 {
                    tally.in_scope_ok += 1;
                } else {
                    eprintln!(
                        "isolation: {} got {} for in-scope {path}",
                        role_name(user.role),
                        answer.status
                    );
                }
            }
            check_markers(user, &path, &answer, markers, tally);
            continue;
        }
        let what = if exists {
            "out-of-scope"
        } else {
            "nonexistent"
        };
        if exists
            && ((200..300).contains(&answer.status)
                || method == "POST" && is_success(answer.status))
        {
            tally.leak(format!(
                "{} got {} for {what} {method} {path}",
                role_name(user.role),
                answer.status
            ));
            continue;
        }
        let reference = normalized(&reference_answer, &reference_path, [id, nonexistent]);
        if normalized(&answer, &path, [id, nonexistent]) != reference {
            if tally.leaks.is_empty() {
                // The first difference, whole, for whoever reads the leak list.
                let _ = std::fs::write(
                    std::env::temp_dir().join("sverka-isolation-first-difference.txt"),
                    format!(
                        "{path}:\n{:?}\n\n{reference_path}:\n{:?}\n",
                        normalized(&answer, &path, [id, nonexistent]),
                        reference
                    ),
                );
            }
            tally.leak(format!(
                "{} told {what} {method} {path} ({}) from a nonexistent id ({})",
                role_name(user.role),
                answer.status,
                reference.0
            ));
        }
        check_markers(user, &path, &answer, markers, tally);
    }
    Ok(())
}
