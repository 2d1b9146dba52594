//! Hosts' lifecycle on the dashboard: an organization's recently enrolled PCs with the
//! secret that enrolled each, and (for administrators and officers) retiring a PC or
//! merging a duplicate into the PC it duplicates. Every change goes to the audit log.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::sync::Arc;

use super::admin::NoFields;
use super::auth::CsrfForm;
use super::pages::host::scoped_host;
use super::pages::{crumbs, layout, load_tree, tree_permitting};
use super::scope::{Action, authorize};
use super::{WebError, WebState};
use crate::store::{RetiredHost, StoreError};

/// How many recent enrollments the page lists.
const RECENT_LIMIT: i64 = 200;

/// `GET /org/{id}/hosts`: the organization's most recently enrolled PCs.
pub async fn recent_hosts_page(
    State(state): State<Arc<WebState>>,
    viewer: super::auth::Viewer,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.texts();
    let can_retire = authorize(&viewer.user, Action::RetireHosts, Some(id), &tree).is_ok();
    let hosts = state.app.store.recent_enrollments(id, RECENT_LIMIT).await?;
    let time =
        |at: Option<i64>| at.map_or_else(|| texts.never.to_string(), |at| clock.date_time(at));
    let body = html! {
        p { (texts.recent_enrollments_hint) }
        @if hosts.is_empty() { p.empty { (texts.nothing) } } @else {
            table.data #recent-hosts {
                thead { tr {
                    th { "id" } th { (texts.computer) } th { (texts.secret) }
                    th { (texts.enrolled_at) } th { (texts.last_seen) } th { (texts.status) } th { span.visually-hidden { (texts.actions) } }
                } }
                tbody {
                    @for host in &hosts {
                        tr {
                            td.number { a href={ "/host/" (host.host_id) } { (host.host_id) } }
                            td { (host.hostname) }
                            td.number { @if let Some(secret) = host.secret_id { (secret) } }
                            td { (clock.date_time(host.enrolled_at)) }
                            td { (time(host.last_seen_at)) }
                            td {
                                @if let Some(into) = host.merged_into {
                                    (texts.merged_into) " " a href={ "/host/" (into) } { (into) }
                                } @else if let Some(at) = host.retired_at {
                                    (texts.retired) " " (clock.date_time(at))
                                } @else { (texts.active) }
                            }
                            td {
                                @if can_retire && host.retired_at.is_none() {
                                    form.inline method="post" action={ "/host/" (host.host_id) "/retire" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                                        button type="submit" { (texts.retire) }
                                    }
                                    form.inline method="post" action={ "/host/" (host.host_id) "/merge" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                                        label { (texts.merge_into) input name="into" type="number" min="1" required; }
                                        button type="submit" { "↦" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let title = format!("{} — {name}", texts.recent_enrollments);
    Ok(layout(&viewer, &title, crumbs(&viewer, &tree, id), body).into_response())
}

/// A refusal the person can fix as a message page; the rest as usual.
fn refusal(viewer: &super::auth::Viewer, error: StoreError) -> WebError {
    match error {
        StoreError::Invalid(message) | StoreError::Rejected(message) => {
            WebError::unprocessable(viewer.lang, &message)
        }
        StoreError::NotFound(_) => WebError::not_found(viewer),
        other => WebError::Store(other),
    }
}

/// After a retirement: the host's key is no longer trusted from the cache, the audit
/// log has it, and the person is back at the list.
async fn after_retiring(
    state: &WebState,
    login: &str,
    action: &str,
    retired: &RetiredHost,
    detail: String,
) -> Response {
    state.app.forget_credentials(retired.host_id);
    state
        .audit(login, action, Some(retired.organization_id), detail)
        .await;
    Redirect::to(&format!("/org/{}/hosts", retired.organization_id)).into_response()
}

/// `POST /host/{id}/retire`.
pub async fn retire_host(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let tree = load_tree(&state).await?;
    scoped_host(&state, &viewer, &tree, id, Action::RetireHosts).await?;
    let retired = state
        .app
        .store
        .retire_host(id, crate::now())
        .await
        .map_err(|error| refusal(&viewer, error))?;
    let detail = format!("host {id} ({})", retired.hostname);
    Ok(after_retiring(&state, &viewer.user.login, "retire_host", &retired, detail).await)
}

#[derive(Debug, serde::Deserialize)]
pub struct MergeForm {
    into: String,
}

/// `POST /host/{id}/merge`: `into` is the host this one duplicates.
pub async fn merge_host(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<MergeForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let tree = load_tree(&state).await?;
    scoped_host(&state, &viewer, &tree, id, Action::RetireHosts).await?;
    let into: i64 = form
        .form
        .into
        .trim()
        .parse()
        .map_err(|_| WebError::unprocessable(viewer.lang, viewer.lang.texts().bad_form))?;
    let retired = state
        .app
        .store
        .merge_host(id, into, crate::now())
        .await
        .map_err(|error| refusal(&viewer, error))?;
    let detail = format!("host {id} ({}) merged into host {into}", retired.hostname);
    Ok(after_retiring(&state, &viewer.user.login, "merge_host", &retired, detail).await)
}
