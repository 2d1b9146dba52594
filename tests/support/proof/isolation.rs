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
//!
//! Here: [`ROUTES`], held to the router and the OpenAPI documents, and the run.
//! `world.rs` builds the organizations, PCs and users, `requests.rs` makes the requests,
//! `leaks.rs` tells a leak; `web.rs` is the HTTP client.

mod leaks;
mod requests;
pub mod web;
mod world;

use anyhow::{Context, bail};
use std::collections::BTreeSet;

use super::{Budget, Figure, Part};
use crate::real_collector::Collector;
pub use leaks::answer_text;
use leaks::{Tally, check_idless, check_ids};
use requests::{INSTALLER, IdKind, expand, id_kind};
use world::{World, build_world, role_name};

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
    ("POST", "/host/{id}/retire"),
    ("POST", "/host/{id}/merge"),
    ("GET", "/org/{id}/hosts"),
    ("GET", "/org/{id}/weekly"),
    ("GET", "/org/{id}/weekly/export/{format}"),
    ("GET", "/org/{id}/weekly/pcs"),
    ("GET", "/org/{id}/weekly/print"),
    ("POST", "/org/{id}/weekly/send"),
    ("POST", "/org/{id}/weekly/recipients"),
    ("GET", "/org/{id}/notifications"),
    ("POST", "/org/{id}/notifications/digest"),
    ("POST", "/org/{id}/notifications/webhook"),
    ("GET", "/org/{id}/worklist"),
    ("GET", "/org/{id}/worklist/export/{format}"),
    ("POST", "/org/{id}/worklist/handled"),
    ("GET", "/org/{id}/enrollment"),
    ("GET", "/org/{id}/installers/{file}"),
    ("POST", "/org/{id}/installers/{file}"),
    ("POST", "/org/{id}/secrets"),
    ("POST", "/org/{id}/secrets/{secret}/revoke"),
    ("GET", "/catalog"),
    ("POST", "/catalog"),
    ("POST", "/catalog/entry"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{id}/disable"),
    ("GET", "/audit"),
    ("GET", "/federation"),
    ("POST", "/federation/upstream/check"),
    ("POST", "/federation/upstream"),
    ("POST", "/federation/upstream/push"),
    ("POST", "/federation/upstream/remove"),
    ("POST", "/federation/links"),
    ("POST", "/federation/links/revoke"),
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
    ("GET", "/api/v1/dashboard/openapi.json"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/enroll"),
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/catalog"),
    ("GET", "/api/v1/federation/link"),
    ("POST", "/api/v1/federation/figures"),
    ("GET", "/healthz"),
];

const ROUTER_SOURCE: &str = include_str!("../../../collector/src/server.rs");
const AGENT_OPENAPI: &str = include_str!("../../../docs/agent-api.openapi.json");
const DASHBOARD_OPENAPI: &str = include_str!("../../../docs/dashboard-api.openapi.json");

/// The path constants the router's `.route(` calls name instead of a literal (the
/// routes of both JSON APIs come from their OpenAPI documents).
fn path_constant(name: &str) -> Option<&'static str> {
    use sverka_collector::api_docs;
    Some(match name {
        "AGENT_API_DOCUMENT_PATH" => api_docs::AGENT_API_DOCUMENT_PATH,
        "DASHBOARD_API_DOCUMENT_PATH" => api_docs::DASHBOARD_API_DOCUMENT_PATH,
        "FEDERATION_PAGE_PATH" => sverka_collector::web::federation::FEDERATION_PAGE_PATH,
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

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let route_count = check_route_list()?;
    // An installers folder with one file, so that the download is a read every role
    // in scope gets (and none out of scope).
    let installers = tempfile::tempdir().context("a folder for the installers")?;
    std::fs::write(installers.path().join(INSTALLER), b"not a real MSI")
        .context("write the installer")?;
    let collector = Collector::start_with_config(&format!(
        "[dashboard]\ninstallers = {:?}\n",
        installers.path().display().to_string()
    ));
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
