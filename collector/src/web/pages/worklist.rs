//! The officer's worklist (issue 19): the violations of any organization (all its
//! schools) with search and filters, a ranking of its schools, bulk "being handled"
//! with a note (for those who may mark), and the list as CSV or XLSX. The overview's
//! figures link here.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;

use super::school::silence_note;
use super::{
    crumbs, export_response, layout, live_title, organization_href, permit, query_flag,
    tree_permitting,
};
use crate::store::{HandledMark, Store, StoreError, StoreResult, Worklist, WorklistFilter};
use crate::web::auth::{CsrfForm, Viewer};
use crate::web::clock::Clock;
use crate::web::evidence_words::evidence_summary;
use crate::web::figures::Counts;
use crate::web::i18n::Lang;
use crate::web::scope::{Action, OrganizationTree, authorize};
use crate::web::table::{Cell, Table, column};
use crate::web::{WebError, WebState};

/// The most rows a worklist page shows (the count says how many matched).
const PAGE_ROWS: i64 = 500;

/// The worklist's filters as they appear in its address.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct WorklistQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// An organization under the page's one (a school, or a municipality).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub within: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directly: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<u8>,
    /// `yes` or `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled: Option<String>,
}

impl WorklistQuery {
    /// The store's filter, checked against the page's organization (`None`: an
    /// organization outside it was asked for).
    fn filter(
        &self,
        tree: &OrganizationTree,
        id: i64,
        clock: &Clock,
        state: &WebState,
    ) -> Option<WorklistFilter> {
        let within = self.within.unwrap_or(id);
        if !tree.is_within(within, id) {
            return None;
        }
        let now = crate::now();
        let week_start = clock.week_of(now).start;
        Some(WorklistFilter {
            within,
            directly: query_flag(self.directly),
            search: self.q.clone().filter(|text| !text.trim().is_empty()),
            app_id: self.app.clone().filter(|app| !app.is_empty()),
            first_seen_since: query_flag(self.new).then_some(week_start),
            resolved_since: query_flag(self.resolved).then_some(week_start),
            silent_before: query_flag(self.silent)
                .then(|| now - i64::from(state.silent_after_days) * 86_400),
            handled: match self.handled.as_deref() {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            },
            limit: PAGE_ROWS,
        })
    }

    fn address(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

/// The worklist as a table (the page's columns, also its CSV and XLSX).
pub fn worklist_table(list: &Worklist, id: i64, lang: Lang, silent_after_days: u32) -> Table {
    let texts = lang.texts();
    let officer = lang.officer();
    let now = crate::now();
    let silent_since = now - i64::from(silent_after_days) * 86_400;
    let mut table = Table::new(
        format!("worklist-{id}"),
        vec![
            column(texts.computer, 20.0),
            column(officer.school, 22.0),
            column(texts.application, 14.0),
            column(texts.users_column, 16.0),
            column(texts.first_seen, 16.0),
            column(texts.resolved, 16.0),
            column(texts.last_report, 16.0),
            column(officer.state, 20.0),
            column(texts.handled, 26.0),
            column(texts.evidence, 40.0),
        ],
    );
    for row in &list.rows {
        let violation = &row.violation;
        table.rows.push(vec![
            Cell::Link(
                violation.hostname.clone(),
                format!("/host/{}", violation.host_id),
            ),
            Cell::Text(violation.organization.clone()),
            Cell::Text(violation.app_name.clone()),
            Cell::Text(violation.users.join(", ")),
            Cell::Time(Some(violation.first_seen)),
            Cell::Time(violation.resolved_at),
            Cell::Time(violation.host_last_seen_at),
            Cell::Text(silence_note(
                violation.host_last_seen_at,
                silent_since,
                now,
                lang,
            )),
            Cell::Text(match (&row.handled_note, &row.handled_by) {
                (Some(note), Some(by)) => format!("{note} ({by})"),
                (Some(note), None) => note.clone(),
                _ => String::new(),
            }),
            Cell::Text(evidence_summary(
                &violation.app_name,
                &violation.evidence,
                lang,
            )),
        ]);
    }
    table
}

/// Every violation in `id`'s subtree as the worklist's table (the page's CSV and XLSX
/// columns): the open ones, then with `include_resolved` the resolved ones. The CLI's
/// `report violations --format csv` writes this table, so its CSV is the page's.
pub async fn all_violations_table(
    store: &dyn Store,
    id: i64,
    include_resolved: bool,
    silent_after_days: u32,
    lang: Lang,
) -> StoreResult<Table> {
    let mut filter = WorklistFilter {
        within: id,
        directly: false,
        search: None,
        app_id: None,
        first_seen_since: None,
        resolved_since: None,
        silent_before: None,
        handled: None,
        limit: i64::MAX,
    };
    let mut list = store.worklist(&filter).await?;
    if include_resolved {
        filter.resolved_since = Some(i64::MIN);
        list.rows.extend(store.worklist(&filter).await?.rows);
    }
    Ok(worklist_table(&list, id, lang, silent_after_days))
}

/// Schools (organizations without children) of the subtree by PCs with a banned
/// messenger, most first, with their silent PCs.
async fn ranking(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    clock: &Clock,
    lang: Lang,
) -> Result<Markup, WebError> {
    let texts = lang.texts();
    let officer = lang.officer();
    let now = crate::now();
    let counts = Counts::load(
        state.app.store.as_ref(),
        &clock.week_of(now),
        state.silent_after_days,
        now,
    )
    .await?;
    let mut schools: Vec<(i64, crate::web::figures::Totals)> = tree
        .subtree(id)
        .into_iter()
        .filter(|member| tree.children(*member).is_empty())
        .map(|member| (member, counts.totals(tree, member)))
        .filter(|(_, totals)| totals.enrolled > 0)
        .collect();
    schools.sort_by(|(a_id, a), (b_id, b)| {
        b.with_banned
            .cmp(&a.with_banned)
            .then(
                b.banned_share()
                    .partial_cmp(&a.banned_share())
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(a_id.cmp(b_id))
    });
    Ok(html! {
        section #ranking aria-labelledby="ranking-title" {
            h2 #ranking-title { (officer.ranking) }
            @if schools.is_empty() {
                p.empty { (texts.nothing) }
            } @else {
                div.table-wrap { table.data.ranking {
                    thead { tr {
                        th scope="col" { "№" }
                        th scope="col" { (officer.school) }
                        th scope="col" { (texts.with_banned) }
                        th scope="col" { (officer.banned_share) }
                        th scope="col" { (texts.silent) }
                        th scope="col" { (texts.enrolled) }
                    } }
                    tbody {
                        @for (place, (member, totals)) in schools.iter().enumerate() {
                            tr {
                                td.number { (place + 1) }
                                td { a href=(organization_href(tree, *member)) { (tree.get(*member).map(|o| o.name.as_str()).unwrap_or_default()) } }
                                td.number { a href={ "/org/" (id) "/worklist?in=" (member) } { (totals.with_banned) } }
                                td.number { (totals.banned_share().map(|share| lang.percent(share * 100.0)).unwrap_or_default()) }
                                td.number { (totals.silent) }
                                td.number { (totals.enrolled) }
                            }
                        }
                    }
                } }
            }
        }
    })
}

fn filter_form(
    tree: &OrganizationTree,
    id: i64,
    query: &WorklistQuery,
    apps: &[(String, String)],
    lang: Lang,
) -> Markup {
    let texts = lang.texts();
    let officer = lang.officer();
    let checked = |value: Option<u8>| query_flag(value);
    let members: Vec<i64> = tree
        .subtree(id)
        .into_iter()
        .filter(|member| *member != id)
        .collect();
    html! {
        form.filters #worklist-filters method="get" action={ "/org/" (id) "/worklist" } role="search" {
            label { (texts.search) " "
                input type="search" name="q" value=(query.q.clone().unwrap_or_default()) placeholder=(officer.search_placeholder);
            }
            label { (texts.application) " "
                select name="app" {
                    option value="" { (officer.any) }
                    @for (app_id, name) in apps {
                        option value=(app_id) selected[query.app.as_deref() == Some(app_id.as_str())] { (name) }
                    }
                }
            }
            label { (officer.school) " "
                select name="in" {
                    option value="" { (officer.any) }
                    @for member in &members {
                        @if let Some(organization) = tree.get(*member) {
                            option value=(member) selected[query.within == Some(*member)] { (organization.name) }
                        }
                    }
                }
            }
            label { input type="checkbox" name="new" value="1" checked[checked(query.new)]; " " (officer.new_this_week) }
            label { input type="checkbox" name="resolved" value="1" checked[checked(query.resolved)]; " " (officer.resolved_this_week) }
            label { input type="checkbox" name="silent" value="1" checked[checked(query.silent)]; " " (officer.only_silent) }
            label { (officer.handled_state) " "
                select name="handled" {
                    option value="" { (officer.any) }
                    option value="yes" selected[query.handled.as_deref() == Some("yes")] { (officer.handled_yes) }
                    option value="no" selected[query.handled.as_deref() == Some("no")] { (officer.handled_no) }
                }
            }
            @if checked(query.directly) {
                input type="hidden" name="directly" value="1";
            }
            button type="submit" { (officer.apply) }
        }
    }
}

pub async fn worklist_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<WorklistQuery>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
    let lang = viewer.lang;
    let texts = lang.texts();
    let officer = lang.officer();
    let filter = query
        .filter(&tree, id, &clock, &state)
        .ok_or_else(|| WebError::not_found(&viewer))?;
    // The ranking's counts and the worklist are read side by side.
    let (list, ranking_section) = tokio::try_join!(
        async { Ok::<_, WebError>(state.app.store.worklist(&filter).await?) },
        ranking(&state, &tree, id, &clock, lang),
    )?;
    let table = worklist_table(&list, id, lang, state.silent_after_days);
    let apps: Vec<(String, String)> = state
        .app
        .catalog()
        .matcher
        .catalog()
        .apps
        .iter()
        .filter(|app| app.status.as_str() == "banned")
        .map(|app| (app.id.clone(), app.name.clone()))
        .collect();
    let can_mark = authorize(
        &viewer.user,
        Action::MarkHandled,
        Some(filter.within),
        &tree,
    )
    .is_ok();
    let address = query.address();
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let federated = federated_section(&state, &tree, id, &filter, &clock, lang).await?;
    let body = html! {
        (filter_form(&tree, id, &query, &apps, lang))
        p.count #worklist-count { (officer.shown_of) " " (list.rows.len()) " / " (list.matched) }
        @if list.rows.is_empty() {
            p.empty { (texts.nothing) }
        } @else if can_mark {
            form #bulk-handled method="post" action={ "/org/" (id) "/worklist/handled" } {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                input type="hidden" name="back" value=(address);
                (rows_html(&table, &list, &clock, true, lang))
                label { (texts.note) " " input name="note" required maxlength="500"; }
                button type="submit" { (officer.mark_selected) }
            }
        } @else {
            (rows_html(&table, &list, &clock, false, lang))
        }
        p.exports {
            (texts.export) ": "
            a.export href={ "/org/" (id) "/worklist/export/csv?" (address) } download { "CSV" }
            " · "
            a.export href={ "/org/" (id) "/worklist/export/xlsx?" (address) } download { "XLSX" }
        }
        (federated)
        (ranking_section)
    };
    Ok(layout(
        &viewer,
        &format!("{} — {name}", officer.worklist),
        crumbs(&viewer, &tree, id),
        body,
    )
    .into_response())
}

/// The banned messengers of the schools under `id` that report through their own
/// collector (federation), as it sent them, narrowed by the application and the search;
/// nothing under filters their figures cannot answer (new or resolved this week,
/// silent, handled).
async fn federated_section(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    filter: &WorklistFilter,
    clock: &Clock,
    lang: Lang,
) -> Result<Markup, WebError> {
    let answerable = !filter.directly
        && filter.first_seen_since.is_none()
        && filter.resolved_since.is_none()
        && filter.silent_before.is_none()
        && filter.handled.is_none();
    if !answerable
        || !tree.subtree(filter.within).iter().any(|&member| {
            tree.get(member)
                .is_some_and(|org| org.federated_link_id.is_some())
        })
    {
        return Ok(html! {});
    }
    let catalog = state.app.catalog();
    let search = filter.search.as_deref().map(str::to_lowercase);
    let rows: Vec<_> = state
        .app
        .store
        .federated_violations(None)
        .await?
        .into_iter()
        .filter(|row| tree.is_within(row.organization_id, filter.within))
        .filter(|row| filter.app_id.as_ref().is_none_or(|app| *app == row.app_id))
        .filter(|row| {
            search.as_ref().is_none_or(|search| {
                let app_name = catalog
                    .matcher
                    .catalog()
                    .app(&row.app_id)
                    .map_or(String::new(), |app| app.name.to_lowercase());
                let school = tree
                    .get(row.organization_id)
                    .map_or(String::new(), |org| org.name.to_lowercase());
                app_name.contains(search.as_str())
                    || row.app_id.contains(search.as_str())
                    || school.contains(search.as_str())
                    || row
                        .hosts
                        .iter()
                        .any(|host| host.to_lowercase().contains(search.as_str()))
            })
        })
        .collect();
    let table = super::school::federated_violations_table(state, id, &rows, Some(tree), lang);
    let officer = lang.officer();
    Ok(html! {
        section id="section-federated-violations" {
            h2 { (officer.federated_violations_below) " (" (table.rows.len()) ")" }
            (table.fixed_html(clock, lang.texts().nothing))
        }
    })
}

/// The worklist's rows, with a checkbox per violation when they may be marked.
fn rows_html(
    table: &Table,
    list: &Worklist,
    clock: &Clock,
    checkboxes: bool,
    lang: Lang,
) -> Markup {
    let officer = lang.officer();
    html! {
        div.table-wrap { table.data #worklist {
            thead { tr {
                @if checkboxes { th scope="col" { (officer.select) } }
                @for column in &table.columns { th scope="col" { (column.title) } }
            } }
            tbody {
                @for (cells, row) in table.rows.iter().zip(&list.rows) {
                    tr {
                        @if checkboxes {
                            td { input type="checkbox" name="pick"
                                value={ (row.violation.host_id) ":" (row.violation.app_id) }
                                aria-label={ (officer.select) ": " (row.violation.hostname) ", " (row.violation.app_name) }; }
                        }
                        @for cell in cells {
                            @match cell {
                                Cell::Link(text, href) => { td { a href=(href) { (text) } } }
                                Cell::Text(text) => { td { (text) } }
                                other => { td.number { (other.display(clock)) } }
                            }
                        }
                    }
                }
            }
        } }
    }
}

pub async fn worklist_export(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path((id, format)): Path<(i64, String)>,
    Query(query): Query<WorklistQuery>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let mut filter = query
        .filter(&tree, id, &clock, &state)
        .ok_or_else(|| WebError::not_found(&viewer))?;
    filter.limit = i64::MAX;
    let list = state.app.store.worklist(&filter).await?;
    let table = worklist_table(&list, id, viewer.lang, state.silent_after_days);
    let title = live_title(
        &tree,
        id,
        viewer.lang.officer().worklist,
        &clock,
        viewer.lang,
    );
    export_response(&table, &format, &clock, &viewer, &title)
}

/// Marks every picked violation (`host_id:app_id`) as being handled with one note,
/// each where the viewer may mark; then back to the same list (post/redirect/get).
pub async fn mark_handled_many(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let field = |name: &str| {
        form.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let note = field("note");
    let back = field("back");
    let bad = || WebError::unprocessable(viewer.lang, viewer.lang.texts().bad_form);
    let picks: Vec<(i64, String)> = form
        .form
        .iter()
        .filter(|(key, _)| key == "pick")
        .map(|(_, value)| {
            let (host, app) = value.split_once(':')?;
            Some((host.parse().ok()?, app.to_string()))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    if picks.is_empty() || note.is_empty() {
        return Err(bad());
    }
    let store = state.app.store.as_ref();
    for (host_id, app_id) in &picks {
        let host = store
            .host_detail(*host_id)
            .await?
            .ok_or_else(|| WebError::not_found(&viewer))?;
        if !tree.is_within(host.organization_id, id) {
            return Err(WebError::not_found(&viewer));
        }
        permit(
            &viewer,
            Action::MarkHandled,
            Some(host.organization_id),
            &tree,
        )?;
        store
            .mark_handled(HandledMark {
                host_id: *host_id,
                app_id: app_id.clone(),
                note: note.clone(),
                by_login: viewer.user.login.clone(),
                at: crate::now(),
            })
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) | StoreError::Invalid(_) => bad(),
                other => WebError::Store(other),
            })?;
        state
            .audit(
                &viewer.user.login,
                "mark_handled",
                Some(host.organization_id),
                format!("host {host_id} ({}), {app_id}: {note}", host.hostname),
            )
            .await;
    }
    // Only the list's own filters go back into the address.
    let back: WorklistQuery = serde_urlencoded::from_str(&back).unwrap_or_default();
    let address = back.address();
    let target = if address.is_empty() {
        format!("/org/{id}/worklist")
    } else {
        format!("/org/{id}/worklist?{address}")
    };
    Ok(Redirect::to(&target).into_response())
}
