//! The pages people read, one file per page group: [`sign_in`], [`overview`] (also the
//! home page), [`school`] and [`host`] (a PC). Here: the frame every page shares, the
//! scope check as "not found", and exports. Each table is built once by a function
//! that both the page and its CSV/XLSX export call, so what is exported is what is
//! shown.

pub mod host;
pub mod overview;
pub mod school;
pub mod sign_in;
pub mod worklist;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use std::sync::Arc;

use super::auth::Viewer;
use super::exports::{ExportTitle, content_disposition};
use super::i18n::{Lang, Texts};
use super::scope::{Action, OrganizationTree, authorize};
use super::table::Table;
use super::{WebError, WebState};

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
                    nav aria-label=(viewer.lang.officer().main_menu) {
                        a href="/" { (texts.overview) }
                        a href="/catalog" { (texts.catalog) }
                        a href="/tokens" { (texts.tokens) }
                        @if is_admin {
                            a href="/users" { (texts.users) }
                            a href="/audit" { (texts.audit) }
                            a href="/federation" { (super::federation::texts(viewer.lang).title) }
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
                    nav.crumbs aria-label=(viewer.lang.officer().breadcrumbs) { (crumbs) }
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

/// The organization tree, built once per change of the organizations
/// ([`crate::web::scope::TreeCache`]).
pub async fn load_tree(state: &WebState) -> Result<Arc<OrganizationTree>, WebError> {
    let organizations = state.app.store.organizations_shared().await?;
    Ok(state.trees.tree_of(organizations))
}

/// The organization tree, once the viewer may do `action` on `organization_id`: the
/// opening of every handler that acts on an organization ("not found" when refused).
pub async fn tree_permitting(
    state: &WebState,
    viewer: &Viewer,
    action: Action,
    organization_id: Option<i64>,
) -> Result<Arc<OrganizationTree>, WebError> {
    let tree = load_tree(state).await?;
    permit(viewer, action, organization_id, &tree)?;
    Ok(tree)
}

/// [`authorize`], answering "not found" when refused.
pub fn permit(
    viewer: &Viewer,
    action: Action,
    organization_id: Option<i64>,
    tree: &OrganizationTree,
) -> Result<(), WebError> {
    authorize(&viewer.user, action, organization_id, tree).map_err(|_| WebError::not_found(viewer))
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
/// A page's on/off query setting (`&silent=1`): on when present and not `0`.
pub fn query_flag(value: Option<u8>) -> bool {
    value.is_some_and(|value| value != 0)
}

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

/// A table as a download, under its title (the XLSX title block and the file name).
pub fn export_response(
    table: &Table,
    format: &str,
    clock: &crate::web::clock::Clock,
    viewer: &Viewer,
    title: &ExportTitle,
) -> Result<Response, WebError> {
    let (body, content_type, extension) = match format {
        "csv" => (
            table
                .csv(clock)
                .map_err(|error| WebError::Internal(format!("CSV export: {error}")))?,
            "text/csv; charset=utf-8",
            "csv",
        ),
        "xlsx" => (
            table
                .xlsx_titled(clock, &title.lines(clock, viewer.lang))
                .map_err(|error| WebError::Internal(format!("XLSX export: {error}")))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        _ => return Err(WebError::not_found(viewer)),
    };
    let disposition = content_disposition(&title.file_name(extension));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// The title of a live export of `id` (this week, as of now).
pub fn live_title(
    tree: &OrganizationTree,
    id: i64,
    subject: &str,
    clock: &crate::web::clock::Clock,
    lang: Lang,
) -> ExportTitle {
    let now = crate::now();
    let officer = lang.officer();
    ExportTitle {
        subject: subject.to_string(),
        organization: tree.get(id).map(|o| o.name.clone()).unwrap_or_default(),
        week: clock.week_of(now),
        state: format!(
            "{}, {} {}",
            officer.live_week,
            officer.as_of,
            clock.date_time(now)
        ),
        generated_at: now,
    }
}

/// The evidence of a finding (stored as JSON) as one line for a table.
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
