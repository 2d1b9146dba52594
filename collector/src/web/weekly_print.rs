//! The weekly report as a page to print or save as PDF from the browser: the title
//! block, the table, the definitions and the chart with its numbers, without the
//! dashboard's navigation.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, html};
use std::sync::Arc;

use super::pages::tree_permitting;
use super::scope::Action;
use super::table::SortOrder;
use super::weekly::{
    WeekQuery, requested_figures, trend, trend_svg, trend_table, weekly_table, weekly_title,
};
use super::{WebError, WebState, auth::Viewer};

pub async fn weekly_print(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(query): Query<WeekQuery>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id).in_language(viewer.lang);
    let store = state.app.store.as_ref();
    let now = crate::now();
    let (figures, before) =
        requested_figures(&state, &viewer, &tree, &clock, id, &query, now).await?;
    if !figures.has_data(id) {
        return Err(WebError::not_found(&viewer));
    }
    let lang = viewer.lang;
    let points = trend(store, &clock, id, &figures).await?;
    let table = weekly_table(&figures, Some(&before), &tree, id, lang, false);
    let title = weekly_title(&figures, &tree, id, &clock, lang).lines(&clock, lang);
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                title { (title.first().cloned().unwrap_or_default()) " — Sverka" }
                link rel="stylesheet" href="/static/app.css";
            }
            body.print {
                main {
                    header.title-block #title-block {
                        @for (index, line) in title.iter().enumerate() {
                            @if index == 0 { h1 { (line) } } @else { p { (line) } }
                        }
                    }
                    (table.html(&clock, &format!("/org/{id}/weekly"), SortOrder::default(), lang.texts().nothing))
                    p.definitions { (lang.officer().definitions) }
                    section.chart-section aria-label=(lang.texts().trend) {
                        h2 { (lang.texts().trend) }
                        div.chart { (trend_svg(&points, lang)) }
                        (trend_table(&points, lang))
                    }
                }
            }
        }
    };
    Ok(page.into_response())
}
