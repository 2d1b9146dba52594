//! The home page (to the viewer's own organization, or a list of the roots) and the
//! overview of an organization: one row per sub-organization with this week's figures
//! and the change since last week's frozen ones.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

use super::{
    crumbs, export_links, export_response, layout, live_title, load_tree, organization_href,
    tree_permitting,
};
use crate::web::auth::Viewer;
use crate::web::figures::{Counts, Row, Totals, table_rows};
use crate::web::i18n::Lang;
use crate::web::scope::{Action, OrganizationTree, authorize};
use crate::web::table::{Cell, SortOrder, Table, column};
use crate::web::{WebError, WebState};

pub async fn home(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    if let Some(home) = crate::web::scope::home_organization(&viewer.user, &tree)
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

fn delta(now: Option<f64>, before: Option<f64>) -> Cell {
    Cell::Delta(now.zip(before).map(|(now, before)| now - before))
}

/// The worklist of `scope` narrowed to a row of a table (`extra` adds filters).
pub fn worklist_href(scope: i64, row: Row, extra: &str) -> String {
    let narrowed = match row {
        Row::Member(member) if member == scope => String::new(),
        Row::Member(member) => format!("&in={member}"),
        Row::DirectlyUnder(member) => format!("&in={member}&directly=1"),
    };
    format!("/org/{scope}/worklist?{narrowed}{extra}")
        .replace("?&", "?")
        .trim_end_matches('?')
        .to_string()
}

/// The name and link of a row: a sub-organization, or "directly under ...".
pub fn row_name(tree: &OrganizationTree, scope: i64, row: Row, lang: Lang) -> Option<Cell> {
    match row {
        Row::Member(member) => tree.get(member).map(|organization| {
            Cell::Link(organization.name.clone(), organization_href(tree, member))
        }),
        Row::DirectlyUnder(member) => tree.get(member).map(|organization| {
            Cell::Link(
                format!("{} «{}»", lang.officer().directly_under, organization.name),
                worklist_href(scope, row, ""),
            )
        }),
    }
}

/// How old a federated organization's figures are ("figures from its own collector of
/// DATE"), and "late" when none arrived since `week_start`: its last figures are shown
/// (and counted), never zeros. `None` for an organization of this collector's own.
pub fn federated_note(
    tree: &OrganizationTree,
    member: i64,
    clock: &crate::web::clock::Clock,
    week_start: i64,
    lang: Lang,
) -> Option<String> {
    let organization = tree.get(member)?;
    organization.federated_link_id?;
    let officer = lang.officer();
    if let Some(gone_at) = organization.federated_gone_at {
        return Some(format!(
            "{} {}",
            officer.federated_gone,
            clock.date_time(gone_at)
        ));
    }
    let as_of = organization
        .federated_as_of
        .map(|as_of| format!("{} {}", officer.federated_as_of, clock.date_time(as_of)));
    Some(match (as_of, organization.is_late(week_start)) {
        (Some(as_of), false) => as_of,
        (Some(as_of), true) => format!("{as_of}; {}", officer.federated_late),
        (None, _) => officer.federated_late.to_string(),
    })
}

/// One row per sub-organization (and one for PCs directly under it), with totals;
/// the rows add up to the totals.
pub async fn overview_table(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
) -> Result<Table, WebError> {
    let texts = lang.texts();
    let officer = lang.officer();
    let now = crate::now();
    let clock = state.clock_for(tree, id);
    let week = clock.week_of(now);
    let counts = Counts::load(
        state.app.store.as_ref(),
        &week,
        state.silent_after_days,
        now,
    )
    .await?;
    let previous = clock.previous(&week);
    let last_week: HashMap<i64, Totals> = state
        .app
        .store
        .weekly_figures_of_week(&previous.label)
        .await?
        .iter()
        .map(|figures| (figures.organization_id, Totals::of_week(figures)))
        .collect();
    let mut table = Table::new(
        format!("overview-{id}"),
        vec![
            column(texts.organization, 40.0),
            column(texts.expected, 11.0),
            column(texts.enrolled, 11.0),
            column(texts.reported_this_week, 13.0),
            column(texts.silent, 10.0),
            column(texts.with_banned, 16.0),
            column(officer.silent_with_banned, 11.0),
            column(officer.with_approved, 14.0),
            column(texts.approved_share, 14.0),
            column(texts.change_banned, 16.0),
            column(texts.change_approved, 13.0),
        ],
    );
    let row = |name: Cell, key: Row, totals: &Totals, before: Option<&Totals>| {
        vec![
            name,
            Cell::Int(totals.expected_pcs),
            Cell::Int(totals.enrolled),
            Cell::Int(totals.reporting),
            Cell::Int(totals.silent),
            Cell::IntLink(totals.with_banned, worklist_href(id, key, "")),
            Cell::IntLink(
                totals.silent_with_banned,
                worklist_href(id, key, "&silent=1"),
            ),
            Cell::Int(totals.with_approved),
            Cell::Share(totals.approved_share()),
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
    let before_rows: HashMap<Row, Totals> = if last_week.contains_key(&id) {
        table_rows(tree, id, |member| {
            last_week.get(&member).copied().unwrap_or_default()
        })
        .into_iter()
        .collect()
    } else {
        HashMap::new()
    };
    for (key, totals) in table_rows(tree, id, |member| counts.totals(tree, member)) {
        let Some(mut name) = row_name(tree, id, key, lang) else {
            continue;
        };
        if let (Row::Member(member), Cell::Link(text, _)) = (key, &mut name)
            && let Some(note) = federated_note(tree, member, &clock, week.start, lang)
        {
            text.push_str(&format!(" ({note})"));
        }
        table
            .rows
            .push(row(name, key, &totals, before_rows.get(&key)));
    }
    let totals = counts.totals(tree, id);
    table.totals = Some(row(
        Cell::Text(texts.total.to_string()),
        Row::Member(id),
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
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
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
            a href={ "/org/" (id) "/worklist" } { (viewer.lang.officer().worklist) }
            " · "
            a href={ "/org/" (id) "/enrollment" } { (texts.enrollment) }
            " · "
            a href={ "/org/" (id) "/notifications" } { (viewer.lang.notifications().title) }
        }
        (table.html(&clock, &format!("/org/{id}"), order, texts.nothing))
        p.definitions #definitions { (viewer.lang.officer().definitions) }
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
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let table = overview_table(&state, &tree, id, viewer.lang).await?;
    let title = live_title(&tree, id, viewer.lang.texts().overview, &clock, viewer.lang);
    export_response(&table, &format, &clock, &viewer, &title)
}
