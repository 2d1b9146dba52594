//! A PC's page: its details, findings (and marking one handled), its inventory with
//! a search, and the timeline of findings appearing and disappearing; each table also
//! as CSV and XLSX.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

use super::school::silence_note;
use super::{
    crumbs, evidence_text, export_links, export_response, layout, live_title, load_tree, permit,
};
use crate::store::{FindingChange, HandledMark, StoreError};
use crate::web::auth::{CsrfForm, Viewer};
use crate::web::evidence_words::evidence_summary;
use crate::web::i18n::Lang;
use crate::web::scope::{Action, OrganizationTree, authorize};
use crate::web::table::{Cell, SortOrder, Table, column};
use crate::web::{WebError, WebState};
use sverka_shared::AppStatus;

#[derive(Debug, Default, serde::Deserialize)]
pub struct HostQuery {
    q: Option<String>,
    sort: Option<usize>,
    dir: Option<crate::web::table::Direction>,
}

/// The host, when it exists and lies in the viewer's scope.
pub async fn scoped_host(
    state: &WebState,
    viewer: &Viewer,
    tree: &OrganizationTree,
    id: i64,
    action: Action,
) -> Result<crate::store::HostDetail, WebError> {
    let host = state
        .app
        .store
        .host_detail(id)
        .await?
        .ok_or_else(|| WebError::not_found(viewer))?;
    permit(viewer, action, Some(host.organization_id), tree)?;
    Ok(host)
}

/// Findings, inventory (filtered by `query`) and timeline of a host.
pub async fn host_tables(
    state: &WebState,
    host: &crate::store::HostDetail,
    query: &str,
    lang: Lang,
    clock: &crate::web::clock::Clock,
) -> Result<[Table; 3], WebError> {
    let texts = lang.texts();
    let store = state.app.store.as_ref();
    let apps = store.host_apps(host.host_id).await?;
    let uses = crate::web::activity::host_uses(store, host.host_id, clock).await?;
    let marks: HashMap<String, HandledMark> = store
        .handled_marks(host.organization_id)
        .await?
        .into_iter()
        .filter(|mark| mark.host_id == host.host_id)
        .map(|mark| (mark.app_id.clone(), mark))
        .collect();
    let mut findings = Table::new(
        format!("findings-{}", host.host_id),
        vec![
            column(texts.application, 16.0),
            column(lang.officer().state, 14.0),
            column(texts.status, 10.0),
            column(texts.strength, 10.0),
            column(texts.users_column, 16.0),
            column(texts.first_seen, 16.0),
            column(texts.resolved, 16.0),
            column(texts.handled, 26.0),
            column(texts.evidence, 45.0),
            column(texts.last_seen, 16.0),
            column(lang.activity().last_used, 16.0),
            column(lang.activity().weeks_used, 24.0),
        ],
    );
    // Open findings first (banned before others), resolved ones last; approved
    // applications are listed apart on the page (see `host`).
    let mut ordered: Vec<&crate::store::HostApp> = apps.iter().collect();
    ordered.sort_by_key(|app| {
        (
            app.resolved_at.is_some(),
            app.status != AppStatus::Banned,
            app.app_name.to_lowercase(),
        )
    });
    for app in ordered {
        let state = match app.resolved_at {
            Some(_) => lang.officer().resolved.to_string(),
            None => lang.officer().open.to_string(),
        };
        findings.rows.push(vec![
            Cell::Text(app.app_name.clone()),
            Cell::Text(state),
            Cell::Text(texts.word(app.status.as_str()).to_string()),
            Cell::Text(texts.word(app.strength.as_str()).to_string()),
            Cell::Text(app.users.join(", ")),
            Cell::Time(Some(app.first_seen)),
            Cell::Time(app.resolved_at),
            Cell::Text(
                marks
                    .get(&app.app_id)
                    .map(|mark| format!("{} ({})", mark.note, mark.by_login))
                    .unwrap_or_default(),
            ),
            Cell::Text(evidence_summary(&app.app_name, &app.evidence, lang)),
            Cell::Time(Some(app.last_seen)),
            Cell::Time(uses.get(&app.app_id).map(|used| used.last_used_at)),
            Cell::Text(
                uses.get(&app.app_id)
                    .map(|used| used.weeks.join(", "))
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
        let body = store.inventory(digest).await?;
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
    for event in store.finding_events(host.host_id).await?.iter().rev() {
        timeline.rows.push(vec![
            Cell::Time(Some(event.at)),
            Cell::Text(
                names
                    .get(event.app_id.as_str())
                    .map_or_else(|| event.app_id.clone(), |name| name.to_string()),
            ),
            Cell::Text(
                if event.event == FindingChange::Appeared {
                    texts.appeared
                } else {
                    texts.disappeared
                }
                .to_string(),
            ),
            Cell::Text(texts.word(event.cause.as_str()).to_string()),
        ]);
    }
    Ok([findings, inventory, timeline])
}

pub async fn host(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<HostQuery>,
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    let host = scoped_host(&state, &viewer, &tree, id, Action::Read).await?;
    let clock = state
        .clock_for(&tree, host.organization_id)
        .in_language(viewer.lang);
    let texts = viewer.lang.texts();
    let search = query.q.clone().unwrap_or_default();
    let order = SortOrder {
        sort: query.sort,
        dir: query.dir,
    };
    let [mut findings, mut inventory, mut timeline] =
        host_tables(&state, &host, &search, viewer.lang, &clock).await?;
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
    let apps = state.app.store.host_apps(host.host_id).await?;
    let open_banned: Vec<_> = apps
        .iter()
        .filter(|app| app.resolved_at.is_none() && app.status == AppStatus::Banned)
        .collect();
    // Approved applications are listed apart from the findings.
    let approved_names: Vec<String> = apps
        .iter()
        .filter(|app| app.status == AppStatus::Approved)
        .map(|app| app.app_name.clone())
        .collect();
    let status_approved = texts.word(AppStatus::Approved.as_str()).to_string();
    let (approved_rows, other_rows): (Vec<_>, Vec<_>) = findings
        .rows
        .drain(..)
        .partition(|row| row.get(2) == Some(&Cell::Text(status_approved.clone())));
    findings.rows = other_rows;
    let mut approved = findings.clone();
    approved.name = format!("approved-{}", host.host_id);
    approved.rows = approved_rows;
    let technical: Vec<(String, String)> = apps
        .iter()
        .map(|app| (app.app_name.clone(), evidence_text(&app.evidence)))
        .collect();
    let now = crate::now();
    let silent_since = now - i64::from(state.silent_after_days) * 86_400;
    let silence = silence_note(host.last_seen_at, silent_since, now, viewer.lang);
    let base = format!("/host/{id}");
    let time = |seconds: Option<i64>| {
        seconds.map_or_else(|| texts.never.to_string(), |at| clock.date_time(at))
    };
    let body = html! {
        @if !silence.is_empty() {
            p.notice #silent-banner role="status" {
                (silence) ". " (viewer.lang.officer().silent_banner)
            }
        }
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
            details.technical #technical-evidence {
                summary { (viewer.lang.officer().technical_evidence) }
                ul {
                    @for (name, evidence) in &technical {
                        li { strong { (name) } ": " code { (evidence) } }
                    }
                }
            }
        }
        @if !approved_names.is_empty() {
            section #section-approved {
                h2 { (viewer.lang.officer().approved_apps) }
                (approved.html(&clock, &base, order, texts.nothing))
            }
        }
        section #section-timeline {
            h2 { (texts.timeline) }
            (timeline.html(&clock, &base, order, texts.nothing))
            (export_links(texts, &format!("{base}/export/timeline")))
        }
        section #section-inventory {
            details #inventory-details open[!search.is_empty()] {
                summary { h2.inline { (texts.inventory) " (" (inventory.rows.len()) ")" } }
                form.search method="get" action=(base) role="search" {
                    label { (texts.search) " "
                        input #inventory-search name="q" type="search" value=(search);
                    }
                    button type="submit" { (texts.search) }
                }
                (inventory.html(&clock, &base, order, texts.nothing))
                (export_links(texts, &format!("{base}/export/inventory")))
            }
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
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    let host = scoped_host(&state, &viewer, &tree, id, Action::Read).await?;
    let clock = state.clock_for(&tree, host.organization_id);
    let [findings, inventory, timeline] =
        host_tables(&state, &host, "", viewer.lang, &clock).await?;
    let texts = viewer.lang.texts();
    let (table, subject) = match table.as_str() {
        "findings" => (findings, texts.findings),
        "inventory" => (inventory, texts.inventory),
        "timeline" => (timeline, texts.timeline),
        _ => return Err(WebError::not_found(&viewer)),
    };
    let mut title = live_title(&tree, host.organization_id, subject, &clock, viewer.lang);
    title.subject = format!("{subject} — {}", host.hostname);
    export_response(&table, &format, &clock, &viewer, &title)
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
) -> Result<Response, WebError> {
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
            StoreError::NotFound(_) | StoreError::Invalid(_) => {
                WebError::unprocessable(viewer.lang, viewer.lang.texts().bad_form)
            }
            other => WebError::Store(other),
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
