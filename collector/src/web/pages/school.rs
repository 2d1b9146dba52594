//! A school's page: its violations (with handled notes), silent PCs and clean PCs,
//! each table also as CSV and XLSX.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

use super::{crumbs, export_links, export_response, layout, live_title, tree_permitting};
use crate::store::HandledMark;
use crate::web::auth::Viewer;
use crate::web::evidence_words::evidence_summary;
use crate::web::i18n::Lang;
use crate::web::scope::Action;
use crate::web::table::{Cell, SortOrder, Table, column};
use crate::web::{WebError, WebState};

/// "silent, last report 20 days ago" for a PC that has not reported since
/// `silent_since`; empty for one that has.
pub fn silence_note(last_seen_at: Option<i64>, silent_since: i64, now: i64, lang: Lang) -> String {
    let officer = lang.officer();
    match last_seen_at {
        Some(at) if at >= silent_since => String::new(),
        Some(at) => {
            let days = (now - at).max(0) / 86_400;
            if days == 0 {
                format!("{} {}", officer.silent_since, officer.today)
            } else {
                format!("{} {days} {}", officer.silent_since, officer.days_ago)
            }
        }
        None => format!("{} {}", officer.silent_since, lang.texts().never),
    }
}

/// Violations, silent PCs and clean PCs of an organization.
pub async fn school_tables(state: &WebState, id: i64, lang: Lang) -> Result<[Table; 3], WebError> {
    let texts = lang.texts();
    let store = state.app.store.as_ref();
    let now = crate::now();
    let silent_since = now - i64::from(state.silent_after_days) * 86_400;
    let violations = store.violations(id, false).await?;
    let marks: HashMap<(i64, String), HandledMark> = store
        .handled_marks(id)
        .await?
        .into_iter()
        .map(|mark| ((mark.host_id, mark.app_id.clone()), mark))
        .collect();
    let silent = store.silent_hosts(id, silent_since).await?;
    let hosts = store.host_summaries(id).await?;

    let mut violation_table = Table::new(
        format!("violations-{id}"),
        vec![
            column(texts.computer, 20.0),
            column(texts.application, 14.0),
            column(texts.users_column, 16.0),
            column(texts.first_seen, 16.0),
            column(texts.last_report, 16.0),
            column(lang.officer().state, 20.0),
            column(texts.handled, 26.0),
            column(texts.evidence, 45.0),
        ],
    );
    for row in &violations {
        let mark = marks.get(&(row.host_id, row.app_id.clone()));
        let state = silence_note(row.host_last_seen_at, silent_since, now, lang);
        violation_table.rows.push(vec![
            Cell::Link(row.hostname.clone(), format!("/host/{}", row.host_id)),
            Cell::Text(row.app_name.clone()),
            Cell::Text(row.users.join(", ")),
            Cell::Time(Some(row.first_seen)),
            Cell::Time(row.host_last_seen_at),
            Cell::Text(state),
            Cell::Text(
                mark.map(|mark| format!("{} ({})", mark.note, mark.by_login))
                    .unwrap_or_default(),
            ),
            Cell::Text(evidence_summary(&row.app_name, &row.evidence, lang)),
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
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
    let texts = viewer.lang.texts();
    // A federated organization's PCs are on its own collector: what it sent instead.
    if let Some(organization) = tree.get(id)
        && organization.federated_link_id.is_some()
    {
        let as_of = organization.federated_as_of;
        let body = federated_school(&state, id, as_of, &clock, viewer.lang, order).await?;
        let name = organization.name.clone();
        return Ok(layout(&viewer, &name, crumbs(&viewer, &tree, id), body).into_response());
    }
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
            " · "
            a href={ "/org/" (id) "/notifications" } { (viewer.lang.notifications().title) }
        }
        (section(texts.violations, "violations", &violations))
        (section(texts.silent_pcs, "silent", &silent))
        (section(texts.clean_pcs, "clean", &clean))
    };
    Ok(layout(&viewer, &name, crumbs(&viewer, &tree, id), body).into_response())
}

/// Federated organizations' banned messengers as their collectors sent them: per
/// school (named, linked, when `tree` is given) and application, how many PCs, and
/// their names when the link allows them.
pub(super) fn federated_violations_table(
    state: &WebState,
    id: i64,
    rows: &[crate::store::FederatedViolation],
    tree: Option<&crate::web::scope::OrganizationTree>,
    lang: Lang,
) -> Table {
    let texts = lang.texts();
    let officer = lang.officer();
    let catalog = state.app.catalog();
    let mut columns = vec![
        column(texts.application, 20.0),
        column(officer.pcs, 8.0),
        column(officer.pc_names, 60.0),
    ];
    if tree.is_some() {
        columns.insert(0, column(texts.organization, 30.0));
    }
    let mut table = Table::new(format!("federated-violations-{id}"), columns);
    for row in rows {
        let name = catalog
            .matcher
            .catalog()
            .app(&row.app_id)
            .map_or(row.app_id.clone(), |app| app.name.clone());
        let mut cells = vec![
            Cell::Text(name),
            Cell::Int(row.pcs),
            Cell::Text(row.hosts.join(", ")),
        ];
        if let Some(tree) = tree {
            let school = tree.get(row.organization_id).map_or_else(
                || format!("#{}", row.organization_id),
                |org| org.name.clone(),
            );
            cells.insert(
                0,
                Cell::Link(school, format!("/school/{}", row.organization_id)),
            );
        }
        table.rows.push(cells);
    }
    table
}

/// A federated organization's page: its PCs are on its own collector, so what that
/// collector last sent: banned messengers with how many PCs (and their names when the
/// link allows them).
async fn federated_school(
    state: &WebState,
    id: i64,
    as_of: Option<i64>,
    clock: &crate::web::clock::Clock,
    lang: Lang,
    order: SortOrder,
) -> Result<maud::Markup, WebError> {
    let texts = lang.texts();
    let officer = lang.officer();
    let rows = state.app.store.federated_violations(Some(id)).await?;
    let mut table = federated_violations_table(state, id, &rows, None, lang);
    table.sort(order);
    Ok(html! {
        p { (officer.federated_school_text) }
        @if let Some(as_of) = as_of {
            p { (officer.federated_as_of) " " (clock.date_time(as_of)) }
        }
        section id="section-federated-violations" {
            h2 { (officer.federated_violations) " (" (table.rows.len()) ")" }
            (table.html(clock, &format!("/school/{id}"), order, texts.nothing))
        }
    })
}

pub async fn school_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, table, format)): Path<(i64, String, String)>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let [violations, silent, clean] = school_tables(&state, id, viewer.lang).await?;
    let texts = viewer.lang.texts();
    let (table, subject) = match table.as_str() {
        "violations" => (violations, texts.violations),
        "silent" => (silent, texts.silent_pcs),
        "clean" => (clean, texts.clean_pcs),
        _ => return Err(WebError::not_found(&viewer)),
    };
    let title = live_title(&tree, id, subject, &clock, viewer.lang);
    export_response(&table, &format, &clock, &viewer, &title)
}
