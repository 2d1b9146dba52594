//! The home page (to the viewer's own organization, or a list of the roots) and the
//! overview of an organization: one row per sub-organization with this week's figures
//! and the change since last week's frozen ones.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

use super::{crumbs, export_links, export_response, layout, load_tree, organization_href, permit};
use crate::store::WeeklyFigures;
use crate::web::auth::Viewer;
use crate::web::figures::{Counts, Totals};
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

/// One row per sub-organization, with totals.
pub async fn overview_table(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
) -> Result<Table, WebError> {
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
    .await?;
    let previous = clock.previous(&week);
    let last_week: HashMap<i64, WeeklyFigures> = state
        .app
        .store
        .weekly_figures_of_week(&previous.label)
        .await?
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
) -> Result<Response, WebError> {
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
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let table = overview_table(&state, &tree, id, viewer.lang).await?;
    export_response(&table, &format, &clock, &viewer)
}
