//! The weekly report: an organization's overview figures frozen for a week (the week
//! ending on Thursday by default), a trend chart drawn on the server as SVG, and the
//! same report as CSV or XLSX (also `sverka-collector report weekly`).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

use super::clock::{Clock, Week};
use super::figures::{Counts, Totals};
use super::i18n::Lang;
use super::pages::{crumbs, layout, load_tree, organization_href, permit};
use super::scope::{Action, OrganizationTree};
use super::table::{Cell, SortOrder, Table, column};
use super::{WebError, WebState, auth::Viewer};
use crate::store::{Store, StoreResult};

/// Weeks shown in the trend chart.
const TREND_WEEKS: usize = 12;

/// One week's figures of every organization, frozen or (for a week not frozen yet)
/// computed now.
#[derive(Debug)]
pub struct WeekFigures {
    pub week: Week,
    pub frozen: bool,
    pub totals: HashMap<i64, Totals>,
}

impl WeekFigures {
    pub async fn load(
        store: &dyn Store,
        tree: &OrganizationTree,
        week: Week,
        silent_after_days: u32,
    ) -> StoreResult<WeekFigures> {
        let frozen = store.weekly_figures_of_week(&week.label).await?;
        if !frozen.is_empty() {
            return Ok(WeekFigures {
                week,
                frozen: true,
                totals: frozen
                    .iter()
                    .map(|figures| (figures.organization_id, Totals::of_week(figures)))
                    .collect(),
            });
        }
        let now = crate::now();
        let counts = Counts::load(store, &week, silent_after_days, now).await?;
        Ok(WeekFigures {
            week,
            frozen: false,
            totals: tree
                .ids()
                .into_iter()
                .map(|id| (id, counts.totals(tree, id)))
                .collect(),
        })
    }
}

fn figures_row(name: Cell, totals: &Totals) -> Vec<Cell> {
    vec![
        name,
        Cell::Int(totals.expected_pcs),
        Cell::Int(totals.enrolled),
        Cell::Int(totals.reporting),
        Cell::Int(totals.with_banned),
        Cell::Share(totals.approved_share()),
        Cell::Int(totals.silent),
    ]
}

/// The week's table: one row per sub-organization (or the organization itself when it
/// has none) and the totals; with `everything`, every organization of the subtree.
pub fn weekly_table(
    figures: &WeekFigures,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    everything: bool,
) -> Table {
    let texts = lang.texts();
    let name = if everything {
        format!("weekly-{id}-{}-all", figures.week.label)
    } else {
        format!("weekly-{id}-{}", figures.week.label)
    };
    let mut table = Table::new(
        name,
        vec![
            column(texts.organization, 40.0),
            column(texts.expected, 12.0),
            column(texts.enrolled, 12.0),
            column(texts.reported_this_week, 14.0),
            column(texts.with_banned, 16.0),
            column(texts.approved_share, 16.0),
            column(texts.silent, 10.0),
        ],
    );
    let members: Vec<i64> = if everything {
        tree.subtree(id)
    } else if tree.children(id).is_empty() {
        vec![id]
    } else {
        tree.children(id).to_vec()
    };
    for member in members {
        let Some(organization) = tree.get(member) else {
            continue;
        };
        let totals = figures.totals.get(&member).copied().unwrap_or_default();
        let name = Cell::Link(organization.name.clone(), organization_href(tree, member));
        table.rows.push(figures_row(name, &totals));
    }
    if !everything {
        let totals = figures.totals.get(&id).copied().unwrap_or_default();
        table.totals = Some(figures_row(Cell::Text(texts.total.to_string()), &totals));
    }
    table
}

/// The weekly report as an XLSX workbook: the summary and every organization.
pub fn weekly_workbook(
    figures: &WeekFigures,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    clock: &Clock,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    weekly_table(figures, tree, id, lang, false).add_sheet(
        &mut workbook,
        clock,
        &figures.week.label,
    )?;
    weekly_table(figures, tree, id, lang, true).add_sheet(
        &mut workbook,
        clock,
        lang.texts().organizations,
    )?;
    workbook.save_to_buffer()
}

/// One point of the trend: a week and two shares in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub week: String,
    pub banned_percent: f64,
    pub approved_percent: f64,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

pub async fn trend(
    store: &dyn Store,
    clock: &Clock,
    id: i64,
    last: &WeekFigures,
) -> StoreResult<Vec<TrendPoint>> {
    let mut first = last.week.clone();
    for _ in 1..TREND_WEEKS {
        first = clock.previous(&first);
    }
    let mut points: Vec<TrendPoint> = store
        .weekly_figures_of_organization(id, &first.label, &last.week.label)
        .await?
        .iter()
        .map(|figures| TrendPoint {
            week: figures.week.clone(),
            banned_percent: percent(figures.with_banned, figures.reporting),
            approved_percent: percent(figures.with_approved, figures.reporting),
        })
        .collect();
    if !last.frozen
        && let Some(totals) = last.totals.get(&id)
    {
        points.push(TrendPoint {
            week: last.week.label.clone(),
            banned_percent: percent(totals.with_banned, totals.reporting),
            approved_percent: percent(totals.with_approved, totals.reporting),
        });
    }
    Ok(points)
}

/// The trend as an SVG chart: shares of reporting PCs with a banned messenger (red)
/// and with an approved one (green), 0–100 %.
pub fn trend_svg(points: &[TrendPoint], lang: Lang) -> Markup {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 40.0;
    const BOTTOM: f64 = 30.0;
    const TOP: f64 = 10.0;
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let step = if points.len() > 1 {
        plot_width / (points.len() - 1) as f64
    } else {
        0.0
    };
    let x = |index: usize| LEFT + step * index as f64;
    let y = |value: f64| TOP + plot_height * (1.0 - value.clamp(0.0, 100.0) / 100.0);
    let line = |value: fn(&TrendPoint) -> f64| {
        points
            .iter()
            .enumerate()
            .map(|(index, point)| format!("{:.1},{:.1}", x(index), y(value(point))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (banned_label, approved_label) = match lang {
        Lang::Ru => ("с запрещёнными, %", "с разрешённым, %"),
        Lang::En => ("with banned, %", "with approved, %"),
    };
    html! {
        svg #trend xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" {
            title { (lang.texts().trend) }
            @for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
                line x1=(LEFT) x2=(WIDTH - 10.0) y1=(y(tick)) y2=(y(tick)) stroke="#ddd" stroke-width="1" {}
                text x=(LEFT - 4.0) y=(y(tick) + 4.0) text-anchor="end" font-size="10" fill="#555" { (tick) }
            }
            @for (index, point) in points.iter().enumerate() {
                text x=(x(index)) y=(HEIGHT - 10.0) text-anchor="middle" font-size="9" fill="#555" { (point.week.get(5..).unwrap_or(&point.week)) }
            }
            @if !points.is_empty() {
                polyline.banned points=(line(|point| point.banned_percent)) fill="none" stroke="#c62828" stroke-width="2" {}
                polyline.approved points=(line(|point| point.approved_percent)) fill="none" stroke="#2e7d32" stroke-width="2" {}
                @for (index, point) in points.iter().enumerate() {
                    circle cx=(x(index)) cy=(y(point.banned_percent)) r="3" fill="#c62828" {}
                    circle cx=(x(index)) cy=(y(point.approved_percent)) r="3" fill="#2e7d32" {}
                }
            }
            text x=(LEFT + 8.0) y=(TOP + 12.0) font-size="11" fill="#c62828" { (banned_label) }
            text x=(LEFT + 150.0) y=(TOP + 12.0) font-size="11" fill="#2e7d32" { (approved_label) }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
    sort: Option<usize>,
    dir: Option<super::table::Direction>,
}

/// The requested week, or by default the last one that has ended.
fn requested_week(clock: &Clock, query: &WeekQuery) -> Option<Week> {
    match &query.week {
        Some(label) if !label.is_empty() => clock.parse_week(label),
        _ => Some(clock.previous(&clock.week_of(crate::now()))),
    }
}

pub async fn weekly_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<WeekQuery>,
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.texts();
    let week = requested_week(&clock, &query).ok_or_else(|| WebError::not_found(&viewer))?;
    let store = state.app.store.as_ref();
    let figures = WeekFigures::load(store, &tree, week, state.silent_after_days).await?;
    let points = trend(store, &clock, id, &figures).await?;
    let mut table = weekly_table(&figures, &tree, id, viewer.lang, false);
    let order = SortOrder {
        sort: query.sort,
        dir: query.dir,
    };
    table.sort(order);
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let previous = clock.previous(&figures.week);
    let next_week = clock.parse_week(&figures.week.label).map(|week| {
        let after = week.end + 86_400;
        clock.week_of(after)
    });
    let base = format!("/org/{id}/weekly");
    let label = &figures.week.label;
    let body = html! {
        p.subtitle #week-label {
            (texts.week) " " (label) " (" (texts.week_ending) " " (clock.date(figures.week.last_day)) "), "
            @if figures.frozen { (texts.frozen) } @else { (texts.live) }
        }
        p.links {
            a href={ (base) "?week=" (previous.label) } { "← " (previous.label) }
            @if let Some(next_week) = next_week {
                " · " a href={ (base) "?week=" (next_week.label) } { (next_week.label) " →" }
            }
        }
        (table.html(&clock, &base, order, texts.nothing))
        p.exports {
            (texts.export) ": "
            a.export href={ (base) "/export/csv?week=" (label) } download { "CSV" }
            " · "
            a.export href={ (base) "/export/xlsx?week=" (label) } download { "XLSX" }
        }
        h2 { (texts.trend) }
        div.chart { (trend_svg(&points, viewer.lang)) }
    };
    Ok(layout(
        &viewer,
        &format!("{} — {name}", texts.weekly),
        crumbs(&viewer, &tree, id),
        body,
    )
    .into_response())
}

pub async fn weekly_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, format)): Path<(i64, String)>,
    Query(query): Query<WeekQuery>,
) -> Result<Response, WebError> {
    let tree = load_tree(&state).await?;
    permit(&viewer, Action::Read, Some(id), &tree)?;
    let clock = state.clock_for(&tree, id);
    let week = requested_week(&clock, &query).ok_or_else(|| WebError::not_found(&viewer))?;
    let figures = WeekFigures::load(
        state.app.store.as_ref(),
        &tree,
        week,
        state.silent_after_days,
    )
    .await?;
    match format.as_str() {
        "xlsx" => {
            let body = weekly_workbook(&figures, &tree, id, viewer.lang, &clock)
                .map_err(|error| WebError::Internal(format!("weekly XLSX: {error}")))?;
            let name = format!("weekly-{id}-{}.xlsx", figures.week.label);
            Ok((
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                body,
            )
                .into_response())
        }
        _ => {
            let table = weekly_table(&figures, &tree, id, viewer.lang, false);
            super::pages::export_response(&table, &format, &clock, &viewer)
        }
    }
}
