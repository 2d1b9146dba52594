//! The weekly report: an organization's overview figures frozen for a week (the week
//! ending at the organization's cut-off, Thursday by default), a trend chart drawn on
//! the server as SVG, and the same report as CSV or XLSX (also `sverka-collector report
//! weekly`). It never invents: a week is frozen, or the current one (live, "as of"), or
//! has no data; future weeks cannot be opened; the chart leaves gaps.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::activity;
use super::clock::{Clock, Week};
use super::exports::ExportTitle;
use super::figures::{Counts, Row, Totals, table_rows};
use super::i18n::Lang;
use super::pages::overview::{row_name, worklist_href};
use super::pages::{crumbs, layout, organization_href, tree_permitting};
use super::scope::{Action, OrganizationTree};
use super::table::{Cell, SortOrder, Table, column};
use super::weekly_pcs::frozen_list_href;
use super::{WebError, WebState, auth::Viewer};
use crate::store::{ApplicationUse, Store, StoreResult};

/// Weeks shown in the trend chart.
const TREND_WEEKS: usize = 12;

/// What is known of a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekState {
    /// Figures frozen when the week ended.
    Frozen,
    /// The current week, counted now (`as_of`).
    Live { as_of: i64 },
    /// A past week never frozen (or a week in the future): nothing to show.
    NoData,
}

/// One week's figures of every organization: frozen, or for the current week computed
/// now; a past week that was never frozen has none.
#[derive(Debug)]
pub struct WeekFigures {
    pub week: Week,
    pub frozen: bool,
    pub state: WeekState,
    pub totals: HashMap<i64, Totals>,
    /// Every organization's own PCs per application used in the week.
    pub applications: Vec<ApplicationUse>,
    /// Federated organizations whose lower collector has not sent this week: counted
    /// with the last figures it sent, and said to be late.
    pub late: HashSet<i64>,
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
            let applications = store.weekly_app_use_of_week(&week.label).await?;
            // A federated organization this collector froze nothing of is late too.
            let held: HashSet<i64> = frozen
                .iter()
                .map(|figures| figures.organization_id)
                .collect();
            let late = frozen
                .iter()
                .filter(|figures| figures.late)
                .map(|figures| figures.organization_id)
                .chain(tree.ids().into_iter().filter(|&id| {
                    !held.contains(&id)
                        && tree
                            .get(id)
                            .is_some_and(|organization| organization.is_sent_by_lower_collector())
                }))
                .collect();
            return Ok(WeekFigures {
                week,
                frozen: true,
                state: WeekState::Frozen,
                totals: frozen
                    .iter()
                    .map(|figures| (figures.organization_id, Totals::of_week(figures)))
                    .collect(),
                applications,
                late,
            });
        }
        let now = crate::now();
        if !(week.start <= now && now < week.end) {
            return Ok(WeekFigures {
                week,
                frozen: false,
                state: WeekState::NoData,
                totals: HashMap::new(),
                applications: Vec::new(),
                late: HashSet::new(),
            });
        }
        let counts = Counts::load_with_use(store, &week, silent_after_days, now).await?;
        Ok(WeekFigures {
            frozen: false,
            state: WeekState::Live { as_of: now },
            totals: tree
                .ids()
                .into_iter()
                .map(|id| (id, counts.totals(tree, id)))
                .collect(),
            applications: counts.applications,
            late: tree
                .ids()
                .into_iter()
                .filter(|&id| {
                    tree.get(id)
                        .is_some_and(|organization| organization.is_late(week.start))
                })
                .collect(),
            week,
        })
    }

    /// Whether the week has figures for `id`: frozen or live, and some PC of it had
    /// reported by then (weeks before the first report have no data).
    pub fn has_data(&self, id: i64) -> bool {
        self.state != WeekState::NoData && self.totals.get(&id).is_some_and(Totals::has_reports)
    }
}

fn delta(now: Option<f64>, before: Option<f64>) -> Cell {
    Cell::Delta(now.zip(before).map(|(now, before)| now - before))
}

/// Where a row's counts of PCs with banned messengers link: for a live week the
/// worklist of the row (see `worklist_href`), which shows PCs as they are now; for a
/// frozen week the PCs its figures counted then (`weekly_pcs::frozen_list_href`).
#[derive(Debug, Clone, Copy)]
struct CountLink<'w> {
    scope: i64,
    row: Row,
    /// The frozen week's label; `None`: a live week.
    frozen_week: Option<&'w str>,
}

impl CountLink<'_> {
    /// The address, narrowed by `extra` (`&silent=1`).
    fn href(&self, extra: &str) -> String {
        match self.frozen_week {
            Some(week) => frozen_list_href(self.scope, self.row, week, extra),
            None => worklist_href(self.scope, self.row, extra),
        }
    }
}

/// A count, linked to the PCs behind it when there is a link.
fn count(value: i64, link: Option<String>) -> Cell {
    match link {
        Some(href) => Cell::IntLink(value, href),
        None => Cell::Int(value),
    }
}

fn figures_row(
    name: Cell,
    totals: &Totals,
    before: Option<&Totals>,
    count_link: Option<CountLink>,
) -> Vec<Cell> {
    let link = |extra: &str| count_link.map(|link| link.href(extra));
    vec![
        name,
        Cell::Int(totals.expected_pcs),
        Cell::Int(totals.enrolled),
        Cell::Int(totals.reporting),
        Cell::Int(totals.silent),
        count(totals.with_banned, link("")),
        count(totals.silent_with_banned, link("&silent=1")),
        Cell::Int(totals.with_approved),
        Cell::Share(totals.approved_share()),
        delta(
            Some(totals.reporting as f64),
            before.map(|before| before.reporting as f64),
        ),
        delta(
            Some(totals.with_banned as f64),
            before.map(|before| before.with_banned as f64),
        ),
        delta(
            totals.approved_share().map(|share| share * 100.0),
            before
                .and_then(Totals::approved_share)
                .map(|share| share * 100.0),
        ),
    ]
}

/// The rows of `id`'s table in the week before (none when it has no data), by row.
pub fn rows_of_week(
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
) -> HashMap<Row, Totals> {
    match before {
        Some(before) if before.has_data(id) => table_rows(tree, id, |member| {
            before.totals.get(&member).copied().unwrap_or_default()
        })
        .into_iter()
        .collect(),
        _ => HashMap::new(),
    }
}

/// The week's table: one row per sub-organization (or the organization itself when it
/// has none) and one for PCs directly under it, and the totals; with `everything`,
/// every organization of the subtree. The change columns compare with `before` (the
/// week before) where it has data.
pub fn weekly_table(
    figures: &WeekFigures,
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    everything: bool,
) -> Table {
    let texts = lang.texts();
    let officer = lang.officer();
    let name = if everything {
        format!("weekly-{id}-{}-all", figures.week.label)
    } else {
        format!("weekly-{id}-{}", figures.week.label)
    };
    let mut table = Table::new(
        name,
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
            column(officer.change_reporting, 13.0),
            column(texts.change_banned, 16.0),
            column(texts.change_approved, 13.0),
        ],
    );
    let totals_of = |member: i64| figures.totals.get(&member).copied().unwrap_or_default();
    let before_of = |member: i64| {
        before
            .filter(|before| before.has_data(member))
            .and_then(|before| before.totals.get(&member))
    };
    if everything {
        for member in tree.subtree(id) {
            let Some(organization) = tree.get(member) else {
                continue;
            };
            let name = Cell::Link(organization.name.clone(), organization_href(tree, member));
            table.rows.push(figures_row(
                name,
                &totals_of(member),
                before_of(member),
                None,
            ));
        }
        return table;
    }
    let before_rows = rows_of_week(before, tree, id);
    let link_of = |row: Row| {
        let frozen_week = match figures.state {
            WeekState::Live { .. } => None,
            WeekState::Frozen => Some(figures.week.label.as_str()),
            WeekState::NoData => return None,
        };
        Some(CountLink {
            scope: id,
            row,
            frozen_week,
        })
    };
    for (key, totals) in table_rows(tree, id, totals_of) {
        let Some(mut name) = row_name(tree, id, key, lang) else {
            continue;
        };
        // A federated member with no figures of this week is counted with its last
        // ones and said to be late.
        if let (Row::Member(member), Cell::Link(text, _)) = (key, &mut name)
            && figures.late.contains(&member)
        {
            text.push_str(&format!(" ({})", officer.federated_late));
        }
        let link = link_of(key);
        table
            .rows
            .push(figures_row(name, &totals, before_rows.get(&key), link));
    }
    let link = link_of(Row::Member(id));
    table.totals = Some(figures_row(
        Cell::Text(texts.total.to_string()),
        &totals_of(id),
        before_of(id),
        link,
    ));
    table
}

/// The title of the week's report of `id`.
pub fn weekly_title(
    figures: &WeekFigures,
    tree: &OrganizationTree,
    id: i64,
    clock: &Clock,
    lang: Lang,
) -> ExportTitle {
    ExportTitle {
        subject: lang.texts().weekly.to_string(),
        organization: tree.get(id).map(|o| o.name.clone()).unwrap_or_default(),
        week: figures.week.clone(),
        state: week_state_text(figures, clock, lang),
        generated_at: crate::now(),
    }
}

/// The weekly report as an XLSX workbook: the summary and every organization, each
/// under the report's title block, ready to print.
pub fn weekly_workbook(
    figures: &WeekFigures,
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    clock: &Clock,
    names: &HashMap<String, String>,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let title = weekly_title(figures, tree, id, clock, lang).lines(clock, lang);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    weekly_table(figures, before, tree, id, lang, false).add_titled_sheet(
        &mut workbook,
        clock,
        &figures.week.label,
        &title,
    )?;
    weekly_table(figures, before, tree, id, lang, true).add_titled_sheet(
        &mut workbook,
        clock,
        lang.texts().organizations,
        &title,
    )?;
    if activity::use_counted(figures, id) {
        let texts = lang.activity();
        activity::use_table(figures, before, tree, id, lang).add_titled_sheet(
            &mut workbook,
            clock,
            texts.sheet,
            &title,
        )?;
        activity::applications_table(figures, before, tree, id, lang, names).add_titled_sheet(
            &mut workbook,
            clock,
            texts.applications,
            &title,
        )?;
        if !tree.children(id).is_empty() {
            activity::ranking_table(figures, tree, id, lang, usize::MAX).add_titled_sheet(
                &mut workbook,
                clock,
                texts.ranking_sheet,
                &title,
            )?;
        }
    }
    workbook.save_to_buffer()
}

/// One point of the trend: a week and two shares in percent; `None` where the week
/// has no data (a gap in the chart, never a zero).
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub week: String,
    pub banned_percent: Option<f64>,
    pub approved_percent: Option<f64>,
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// The last [`TREND_WEEKS`] weeks up to `last`, every week a point (with data or a
/// gap); the current week is live.
pub async fn trend(
    store: &dyn Store,
    clock: &Clock,
    id: i64,
    last: &WeekFigures,
) -> StoreResult<Vec<TrendPoint>> {
    let mut weeks = vec![last.week.clone()];
    for _ in 1..TREND_WEEKS {
        let before = clock.previous(weeks.last().unwrap_or(&last.week));
        weeks.push(before);
    }
    weeks.reverse();
    let first = weeks
        .first()
        .map(|week| week.label.clone())
        .unwrap_or_default();
    let frozen: HashMap<String, Totals> = store
        .weekly_figures_of_organization(id, &first, &last.week.label)
        .await?
        .iter()
        .map(|figures| (figures.week.clone(), Totals::of_week(figures)))
        .collect();
    let live = (!last.frozen)
        .then(|| last.totals.get(&id).copied())
        .flatten();
    Ok(weeks
        .iter()
        .map(|week| {
            let totals = frozen
                .get(&week.label)
                .copied()
                .or_else(|| (week.label == last.week.label).then_some(live).flatten());
            TrendPoint {
                week: week.label.clone(),
                banned_percent: totals.and_then(|totals| percent(totals.with_banned, totals.known)),
                approved_percent: totals
                    .and_then(|totals| percent(totals.with_approved, totals.known)),
            }
        })
        .collect())
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
    // One polyline per run of weeks with data: a week without data is a gap.
    let runs = |value: fn(&TrendPoint) -> Option<f64>| {
        let mut runs: Vec<String> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for (index, point) in points.iter().enumerate() {
            match value(point) {
                Some(value) => current.push(format!("{:.1},{:.1}", x(index), y(value))),
                None if current.is_empty() => {}
                None => runs.push(std::mem::take(&mut current).join(" ")),
            }
        }
        if !current.is_empty() {
            runs.push(current.join(" "));
        }
        runs
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
            @for run in runs(|point| point.banned_percent) {
                polyline.banned points=(run) fill="none" stroke="#c62828" stroke-width="2" {}
            }
            @for run in runs(|point| point.approved_percent) {
                polyline.approved points=(run) fill="none" stroke="#2e7d32" stroke-width="2" {}
            }
            @for (index, point) in points.iter().enumerate() {
                @if let Some(value) = point.banned_percent {
                    circle cx=(x(index)) cy=(y(value)) r="3" fill="#c62828" {}
                }
                @if let Some(value) = point.approved_percent {
                    circle cx=(x(index)) cy=(y(value)) r="3" fill="#2e7d32" {}
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

impl WeekQuery {
    /// The table's order the query asks for.
    pub fn sort_order(&self) -> SortOrder {
        SortOrder {
            sort: self.sort,
            dir: self.dir,
        }
    }
}

/// The week a page opens on: on the day the report is due (before the cut-off) the
/// week being reported, the current one; otherwise the last week that has ended, when
/// it was frozen for the organization with data, else the current one.
pub fn default_week(clock: &Clock, now: i64, last_ended_frozen: bool) -> Week {
    let current = clock.week_of(now);
    if clock.is_due_day(now) || !last_ended_frozen {
        current
    } else {
        clock.previous(&current)
    }
}

/// The requested week (or the default); `None` for a label that is not a week or a
/// week that has not begun.
pub async fn requested_week(
    store: &dyn Store,
    clock: &Clock,
    id: i64,
    query: &WeekQuery,
    now: i64,
) -> StoreResult<Option<Week>> {
    let week = match &query.week {
        Some(label) if !label.is_empty() => clock.parse_week(label),
        _ => {
            let last_ended = clock.previous(&clock.week_of(now));
            // Frozen with data: a week frozen before the organization's first PC
            // reported (a new school) is no week to open on.
            let frozen = store
                .weekly_figures_of_week(&last_ended.label)
                .await?
                .iter()
                .any(|figures| {
                    figures.organization_id == id && Totals::of_week(figures).has_reports()
                });
            Some(default_week(clock, now, frozen))
        }
    };
    Ok(week.filter(|week| week.start <= now))
}

/// The figures of the week a page asks for and of the week before it; "not found" for
/// a label that is not a week or a week that has not begun.
pub async fn requested_figures(
    state: &WebState,
    viewer: &Viewer,
    tree: &OrganizationTree,
    clock: &Clock,
    id: i64,
    query: &WeekQuery,
    now: i64,
) -> Result<(WeekFigures, WeekFigures), WebError> {
    let week = requested_week(state.app.store.as_ref(), clock, id, query, now)
        .await?
        .ok_or_else(|| WebError::not_found(viewer))?;
    Ok(week_and_before(state, tree, clock, week).await?)
}

/// The week asked for and the week before it.
pub async fn week_and_before(
    state: &WebState,
    tree: &OrganizationTree,
    clock: &Clock,
    week: Week,
) -> StoreResult<(WeekFigures, WeekFigures)> {
    let store = state.app.store.as_ref();
    let previous = clock.previous(&week);
    let figures = WeekFigures::load(store, tree, week, state.silent_after_days).await?;
    let before = WeekFigures::load(store, tree, previous, state.silent_after_days).await?;
    Ok((figures, before))
}

/// "frozen" or "live, as of ..." for the week's heading and exports.
pub fn week_state_text(figures: &WeekFigures, clock: &Clock, lang: Lang) -> String {
    let officer = lang.officer();
    match figures.state {
        WeekState::Frozen => officer.frozen_week.to_string(),
        WeekState::Live { as_of } => format!(
            "{}, {} {}",
            officer.live_week,
            officer.as_of,
            clock.date_time(as_of)
        ),
        WeekState::NoData => officer.no_data.to_string(),
    }
}

/// The trend's numbers as a table (for screen readers and for copying).
pub fn trend_table(points: &[TrendPoint], lang: Lang) -> Markup {
    let texts = lang.texts();
    let officer = lang.officer();
    let cell = |value: Option<f64>| match value {
        Some(value) => lang.percent(value),
        None => "—".to_string(),
    };
    html! {
        details.trend-data {
            summary { (texts.trend) ": " (officer.data_table) }
            table.data #trend-data {
                thead { tr {
                    th scope="col" { (texts.week) }
                    th scope="col" { (officer.banned_share) }
                    th scope="col" { (texts.approved_share) }
                } }
                tbody {
                    @for point in points {
                        tr {
                            th scope="row" { (point.week) }
                            td.number { (cell(point.banned_percent)) }
                            td.number { (cell(point.approved_percent)) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn weekly_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<WeekQuery>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
    let texts = viewer.lang.texts();
    let officer = viewer.lang.officer();
    let store = state.app.store.as_ref();
    let now = crate::now();
    let (figures, before) =
        requested_figures(&state, &viewer, &tree, &clock, id, &query, now).await?;
    let points = trend(store, &clock, id, &figures).await?;
    let mut table = weekly_table(&figures, Some(&before), &tree, id, viewer.lang, false);
    let order = query.sort_order();
    table.sort(order);
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let previous = clock.previous(&figures.week);
    let current = clock.week_of(now);
    let next_week = (figures.week.end <= current.start).then(|| clock.week_of(figures.week.end));
    let base = format!("/org/{id}/weekly");
    let label = &figures.week.label;
    let has_data = figures.has_data(id);
    let names = activity::application_names(state.app.catalog().matcher.catalog());
    let mail = store.weekly_mail(id, label).await?;
    let recipients = tree
        .get(id)
        .and_then(|organization| organization.report_recipients.clone());
    let may_manage =
        super::scope::authorize(&viewer.user, Action::ManageOrganizations, Some(id), &tree).is_ok();
    let mail_section = super::weekly_mail::MailSection {
        viewer: &viewer,
        id,
        week: label,
        frozen: figures.state == WeekState::Frozen,
        mail: mail.as_ref(),
        recipients: recipients.as_deref(),
        may_manage,
        mail_configured: state.mailer.is_some(),
    }
    .html(&clock);
    let body = html! {
        p.subtitle #week-label {
            (texts.week) " " (label) " (" (texts.week_ending) " " (clock.date(figures.week.last_day)) "), "
            span #week-state { (week_state_text(&figures, &clock, viewer.lang)) }
        }
        p.cutoff { (officer.cutoff) ": " (clock.cutoff_text(viewer.lang)) }
        nav.weeks aria-label=(officer.weeks) {
            a href={ (base) "?week=" (previous.label) } { "← " (previous.label) }
            @if let Some(next_week) = &next_week {
                " · " a href={ (base) "?week=" (next_week.label) } { (next_week.label) " →" }
            }
            " · " a href={ (base) "/print?week=" (label) } { (officer.printable) }
        }
        @if has_data {
            (table.html(&clock, &format!("{base}?week={label}"), order, texts.nothing))
            p.definitions #definitions { (officer.definitions) }
            p.exports {
                (texts.export) ": "
                a.export href={ (base) "/export/csv?week=" (label) } download { "CSV" }
                " · "
                a.export href={ (base) "/export/xlsx?week=" (label) } download { "XLSX" }
            }
            (activity::use_section(&figures, Some(&before), &tree, id, viewer.lang, &names, &clock))
            (mail_section)
        } @else {
            p.no-data #no-data { strong { (officer.no_data) } ". " (officer.no_data_text) }
        }
        h2 { (texts.trend) }
        div.chart { (trend_svg(&points, viewer.lang)) }
        (trend_table(&points, viewer.lang))
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
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let now = crate::now();
    let (figures, before) =
        requested_figures(&state, &viewer, &tree, &clock, id, &query, now).await?;
    if !figures.has_data(id) {
        return Err(WebError::not_found(&viewer));
    }
    match format.as_str() {
        "xlsx" => {
            let names = activity::application_names(state.app.catalog().matcher.catalog());
            let body = weekly_workbook(
                &figures,
                Some(&before),
                &tree,
                id,
                viewer.lang,
                &clock,
                &names,
            )
            .map_err(|error| WebError::Internal(format!("weekly XLSX: {error}")))?;
            let title = weekly_title(&figures, &tree, id, &clock, viewer.lang);
            Ok((
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        super::exports::content_disposition(&title.file_name("xlsx")),
                    ),
                ],
                body,
            )
                .into_response())
        }
        _ => {
            let table = weekly_table(&figures, Some(&before), &tree, id, viewer.lang, false);
            let title = weekly_title(&figures, &tree, id, &clock, viewer.lang);
            super::pages::export_response(&table, &format, &clock, &viewer, &title)
        }
    }
}
