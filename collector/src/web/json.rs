//! The read-only JSON API over the dashboard's data (`/api/v1/dashboard/...`,
//! `docs/dashboard-api.openapi.json`). A personal API token acts as its user: the same
//! [`super::scope::authorize`] check, the same "not found" outside the user's scope.
//! Its routes are in [`crate::server::router`].

// Handlers answer with a `Response` on both sides (a refusal is a JSON answer too),
// as axum's own rejections do; boxing every refusal would buy nothing.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use sverka_shared::protocol::ApiError;

use super::auth::api_user;
use super::figures::{Counts, Totals, applications_of_subtree};
use super::scope::{Action, OrganizationTree, authorize};
use super::weekly::{WeekFigures, WeekState};
use super::{WebState, store_failure};
use crate::export::ViolationExport;
use crate::store::{Organization, User};

pub const ORGANIZATIONS_PATH: &str = "/api/v1/dashboard/organizations";
pub const OVERVIEW_PATH: &str = "/api/v1/dashboard/organizations/{id}/overview";
pub const VIOLATIONS_PATH: &str = "/api/v1/dashboard/organizations/{id}/violations";
pub const SILENT_PATH: &str = "/api/v1/dashboard/organizations/{id}/silent";
pub const WEEKLY_PATH: &str = "/api/v1/dashboard/organizations/{id}/weekly";
pub const HOST_PATH: &str = "/api/v1/dashboard/hosts/{id}";
/// Every path of this API (the OpenAPI test compares them with the document).
pub const PATHS: [&str; 6] = [
    ORGANIZATIONS_PATH,
    OVERVIEW_PATH,
    VIOLATIONS_PATH,
    SILENT_PATH,
    WEEKLY_PATH,
    HOST_PATH,
];

fn failure(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: error.to_string(),
            message: message.to_string(),
        }),
    )
        .into_response()
}

fn not_found() -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such object, or not within your token's scope",
    )
}

async fn caller(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<(User, OrganizationTree), Response> {
    let user = match api_user(state, headers).await {
        Some(Ok(user)) => user,
        Some(Err(response)) => return Err(response),
        None => {
            return Err(failure(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a personal API token is required (Authorization: Bearer sverka_pat_...)",
            ));
        }
    };
    let tree = state
        .app
        .store
        .organizations()
        .await
        .map(OrganizationTree::new)
        .map_err(store_failure)?;
    Ok((user, tree))
}

fn permit(user: &User, organization_id: i64, tree: &OrganizationTree) -> Result<(), Response> {
    authorize(user, Action::Read, Some(organization_id), tree).map_err(|_| not_found())
}

pub async fn organizations(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<Organization>>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    let visible = tree
        .ids()
        .into_iter()
        .filter(|id| authorize(&user, Action::Read, Some(*id), &tree).is_ok())
        .filter_map(|id| tree.get(id).cloned())
        .collect();
    Ok(Json(visible))
}

/// One row of the overview.
#[derive(Debug, Serialize)]
pub struct OverviewRow {
    pub organization_id: i64,
    pub organization: String,
    #[serde(flatten)]
    pub totals: Totals,
    pub approved_share: Option<f64>,
    /// Of the PCs that reported in the week, the share where an approved messenger was
    /// used in it; absent where use is not counted (the overview, weeks frozen before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of_reporting_pcs_that_used_an_approved_messenger: Option<f64>,
}

/// The PCs of an organization's subtree that used one application in the week.
#[derive(Debug, Serialize)]
pub struct ApplicationUsed {
    pub app: String,
    pub name: String,
    /// `banned`, `approved` or `watch`: the application's status when it was used.
    pub status: String,
    pub pcs_that_used_it: i64,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub week: String,
    pub rows: Vec<OverviewRow>,
    pub total: OverviewRow,
}

fn overview_row(tree: &OrganizationTree, id: i64, totals: Totals) -> OverviewRow {
    OverviewRow {
        organization_id: id,
        organization: tree.get(id).map(|o| o.name.clone()).unwrap_or_default(),
        approved_share: totals.approved_share(),
        share_of_reporting_pcs_that_used_an_approved_messenger: totals.approved_use_share(),
        totals,
    }
}

pub async fn overview(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Overview>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    permit(&user, id, &tree)?;
    let now = crate::now();
    let week = state.clock_for(&tree, id).week_of(now);
    let counts = Counts::load(
        state.app.store.as_ref(),
        &week,
        state.silent_after_days,
        now,
    )
    .await
    .map_err(store_failure)?;
    let rows = tree
        .children(id)
        .iter()
        .map(|child| overview_row(&tree, *child, counts.totals(&tree, *child)))
        .collect();
    Ok(Json(Overview {
        week: week.label,
        rows,
        total: overview_row(&tree, id, counts.totals(&tree, id)),
    }))
}

pub async fn violations(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ViolationExport>>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    permit(&user, id, &tree)?;
    let rows = state
        .app
        .store
        .violations(id, false)
        .await
        .map_err(store_failure)?;
    Ok(Json(rows.iter().map(ViolationExport::from).collect()))
}

pub async fn silent(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Vec<crate::store::SilentHost>>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    permit(&user, id, &tree)?;
    let since = crate::now() - i64::from(state.silent_after_days) * 86_400;
    let rows = state
        .app
        .store
        .silent_hosts(id, since)
        .await
        .map_err(store_failure)?;
    Ok(Json(rows))
}

#[derive(Debug, serde::Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Weekly {
    pub week: String,
    pub frozen: bool,
    /// "frozen" (figures kept when the week ended) or "live" (the current week,
    /// counted at `as_of`).
    pub state: &'static str,
    /// When a live week's figures were counted (RFC 3339); absent for a frozen week.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub rows: Vec<OverviewRow>,
    pub total: OverviewRow,
    /// The PCs of the organization's subtree per application used in the week (empty
    /// where use is not counted).
    pub applications_used: Vec<ApplicationUsed>,
}

pub async fn weekly(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<WeekQuery>,
) -> Result<Json<Weekly>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    permit(&user, id, &tree)?;
    let clock = state.clock_for(&tree, id);
    let week = match &query.week {
        Some(label) => clock.parse_week(label).ok_or_else(|| {
            failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "week is not like 2026-W47",
            )
        })?,
        None => clock.previous(&clock.week_of(crate::now())),
    };
    let figures = WeekFigures::load(
        state.app.store.as_ref(),
        &tree,
        week,
        state.silent_after_days,
    )
    .await
    .map_err(store_failure)?;
    // A week never frozen, before the first report or not begun has no figures: say
    // so rather than answer zeros.
    if !figures.has_data(id) {
        return Err(failure(
            StatusCode::NOT_FOUND,
            "no_data",
            &format!(
                "no data for {}: the week was never frozen, has not begun, or no PC had reported by then",
                figures.week.label
            ),
        ));
    }
    // `has_data` is false for `NoData`, so a week here is frozen or live.
    let (state_word, as_of) = match figures.state {
        WeekState::Live { as_of } => ("live", Some(crate::format_time(as_of))),
        WeekState::Frozen | WeekState::NoData => ("frozen", None),
    };
    let totals = |id: i64| figures.totals.get(&id).copied().unwrap_or_default();
    let names = super::activity::application_names(state.app.catalog().matcher.catalog());
    let applications_used = applications_of_subtree(&tree, id, &figures.applications)
        .into_iter()
        .map(|((app, status), pcs)| ApplicationUsed {
            name: names.get(&app).cloned().unwrap_or_else(|| app.clone()),
            app,
            status,
            pcs_that_used_it: pcs,
        })
        .collect();
    Ok(Json(Weekly {
        week: figures.week.label.clone(),
        frozen: figures.frozen,
        state: state_word,
        as_of,
        rows: tree
            .children(id)
            .iter()
            .map(|child| overview_row(&tree, *child, totals(*child)))
            .collect(),
        total: overview_row(&tree, id, totals(id)),
        applications_used,
    }))
}

#[derive(Debug, Serialize)]
pub struct HostAnswer {
    pub host: crate::store::HostDetail,
    pub applications: Vec<crate::store::HostApp>,
    pub events: Vec<crate::store::FindingEvent>,
}

pub async fn host(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<HostAnswer>, Response> {
    let (user, tree) = caller(&state, &headers).await?;
    let store = state.app.store.as_ref();
    let host = store
        .host_detail(id)
        .await
        .map_err(store_failure)?
        .ok_or_else(not_found)?;
    permit(&user, host.organization_id, &tree)?;
    let applications = store.host_apps(id).await.map_err(store_failure)?;
    let events = store.finding_events(id).await.map_err(store_failure)?;
    Ok(Json(HostAnswer {
        host,
        applications,
        events,
    }))
}
