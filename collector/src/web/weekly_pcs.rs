//! The PCs behind a frozen week's figures: `GET /org/{id}/weekly/pcs?week=2026-W47`
//! lists the PCs that had a banned messenger when the week was frozen (`&silent=1`:
//! the silent ones among them; `&direct=1`: those directly under the organization,
//! not in a school under it), as the weekly report's frozen figures counted them. A
//! live week's figures link to the worklist instead, which shows PCs as they are now.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use std::sync::Arc;

use super::figures::{Row, boundaries_key};
use super::i18n::Lang;
use super::pages::{crumbs, layout, query_flag, tree_permitting};
use super::scope::{Action, OrganizationTree};
use super::table::{Cell, Table, column};
use super::weekly::{WeekQuery, requested_week};
use super::{WebError, WebState, auth::Viewer};
use crate::store::FrozenHostList;

/// What narrows the list (the week and the order are a [`WeekQuery`]).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PcsFilter {
    /// `1`: the silent PCs only.
    silent: Option<u8>,
    /// `1`: the PCs directly under the organization only.
    direct: Option<u8>,
}

/// Where a frozen week's figure of `row` (in `scope`'s table) links: the PCs it
/// counted; `extra` narrows them (`&silent=1`).
pub fn frozen_list_href(scope: i64, row: Row, week: &str, extra: &str) -> String {
    match row {
        Row::Member(member) => format!("/org/{member}/weekly/pcs?week={week}{extra}"),
        Row::DirectlyUnder(_) => format!("/org/{scope}/weekly/pcs?week={week}&direct=1{extra}"),
    }
}

/// The most PCs one page lists (a region's list can hold tens of thousands); the
/// count above the table is of all of them.
const PAGE_ROWS: usize = 1_000;

struct Words {
    title: &'static str,
    first_rows: &'static str,
    silent_title: &'static str,
    frozen_at: &'static str,
    not_kept: &'static str,
    live_instead: &'static str,
    banned_count: &'static str,
    silent: &'static str,
    yes: &'static str,
    directly_under: &'static str,
}

const RU: Words = Words {
    title: "ПК с запрещёнными мессенджерами",
    first_rows: "Показаны первые 1000 в выбранном порядке; откройте муниципалитет или школу, чтобы увидеть остальные.",
    silent_title: "Молчащие ПК с запрещёнными мессенджерами",
    frozen_at: "по состоянию на момент фиксации недели",
    not_kept: "Для этой недели список ПК не сохранён: неделя не зафиксирована или зафиксирована до того, как списки стали сохраняться.",
    live_instead: "Текущее состояние — в списке нарушений",
    banned_count: "Запрещённых мессенджеров",
    silent: "Молчит",
    yes: "да",
    directly_under: "только ПК, подключённые напрямую к организации",
};

const EN: Words = Words {
    title: "PCs with banned messengers",
    first_rows: "The first 1,000 in the chosen order are shown; open a municipality or a school to see the rest.",
    silent_title: "Silent PCs with banned messengers",
    frozen_at: "as they were when the week was frozen",
    not_kept: "No list of PCs was kept for this week: it was not frozen, or it was frozen before such lists were kept.",
    live_instead: "The current state is in the worklist",
    banned_count: "Banned messengers",
    silent: "Silent",
    yes: "yes",
    directly_under: "only the PCs enrolled directly under the organization",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    }
}

/// The list as a table: one row per PC, its organization then, when it last reported
/// and whether it was silent.
fn pcs_table(
    list: &FrozenHostList,
    tree: &OrganizationTree,
    lang: Lang,
    silent_only: bool,
) -> Table {
    let texts = lang.texts();
    let words = words(lang);
    let mut table = Table::new(
        "frozen-pcs",
        vec![
            column(texts.organization, 40.0),
            column(texts.computer, 24.0),
            column(texts.last_seen, 18.0),
            column(words.silent, 10.0),
            column(words.banned_count, 14.0),
        ],
    );
    for host in &list.hosts {
        let silent = host.silent(list);
        if silent_only && !silent {
            continue;
        }
        let organization = tree
            .get(host.organization_id)
            .map(|organization| organization.name.clone())
            .unwrap_or_else(|| host.organization_id.to_string());
        table.rows.push(vec![
            Cell::Text(organization),
            Cell::Link(host.hostname.clone(), format!("/host/{}", host.host_id)),
            Cell::Time(host.last_seen_at),
            Cell::Text(if silent { words.yes } else { "" }.to_string()),
            Cell::Int(host.open_banned),
        ]);
    }
    table
}

pub async fn frozen_pcs_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<WeekQuery>,
    Query(filter): Query<PcsFilter>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
    let store = state.app.store.as_ref();
    let week = requested_week(store, &clock, id, &query, crate::now())
        .await?
        .ok_or_else(|| WebError::not_found(&viewer))?;
    let silent_only = query_flag(filter.silent);
    let directly_under = query_flag(filter.direct);
    let list = store
        .frozen_host_list(&week.label, &boundaries_key(&tree, id), id, directly_under)
        .await?;
    let lang = viewer.lang;
    let words = words(lang);
    let texts = lang.texts();
    let heading = if silent_only {
        words.silent_title
    } else {
        words.title
    };
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let order = query.sort_order();
    let mut base = format!("/org/{id}/weekly/pcs?week={}", week.label);
    if silent_only {
        base.push_str("&silent=1");
    }
    if directly_under {
        base.push_str("&direct=1");
    }
    // The table and the count of all its PCs (it shows the first `PAGE_ROWS`).
    let table = list.as_ref().map(|list| {
        let mut table = pcs_table(list, &tree, lang, silent_only);
        table.sort(order);
        let count = table.rows.len();
        table.rows.truncate(PAGE_ROWS);
        (table, count)
    });
    let body = html! {
        p.subtitle #week-label {
            (texts.week) " " (week.label) " (" (texts.week_ending) " " (clock.date(week.last_day)) ")"
            @if directly_under { ", " (words.directly_under) }
        }
        @match (&list, &table) {
            (Some(list), Some((table, count))) => {
                p #frozen-at { (words.frozen_at) " (" (clock.date_time(list.frozen_at)) "): " strong #pc-count { (count) } }
                @if *count > table.rows.len() { p #first-rows { (words.first_rows) } }
                (table.html(&clock, &base, order, texts.nothing))
            }
            _ => {
                p.no-data #no-list { (words.not_kept) }
            }
        }
        p { a href={ "/org/" (id) "/worklist" } { (words.live_instead) } }
    };
    Ok(layout(
        &viewer,
        &format!("{heading} — {} — {name}", week.label),
        crumbs(&viewer, &tree, id),
        body,
    )
    .into_response())
}
