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
use crate::api_docs::{NotFoundById, Unauthorized, Unavailable};
use crate::export::ViolationExport;
use crate::store::{Organization, User};
use sverka_shared::federation::is_week_label;

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

/// The organizations the token's user sees
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/organizations",
    tag = "dashboard",
    security(("apiToken" = [])),
    responses(
        (status = 200, description = "Parents before children", body = Vec<Organization>),
        Unauthorized,
        Unavailable,
    )
)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverviewRow {
    pub organization_id: i64,
    pub organization: String,
    #[serde(flatten)]
    pub totals: Totals,
    #[schema(required = true)]
    pub approved_share: Option<f64>,
    /// Of the PCs that reported in the week, the share where an approved messenger was
    /// used in it; absent where use is not counted (the overview, weeks frozen before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of_reporting_pcs_that_used_an_approved_messenger: Option<f64>,
}

/// The PCs of an organization's subtree that used one application in the week.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationUsed {
    pub app: String,
    pub name: String,
    /// `banned`, `approved` or `watch`: the application's status when it was used.
    pub status: String,
    pub pcs_that_used_it: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// The organization's figures now, and its children's
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/organizations/{id}/overview",
    tag = "dashboard",
    security(("apiToken" = [])),
    params(("id" = i64, Path, description = "The organization's id")),
    responses(
        (status = 200, description = "The figures of this week so far", body = Overview),
        NotFoundById,
        Unauthorized,
        Unavailable,
    )
)]
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

/// The open violations in the organization's subtree
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/organizations/{id}/violations",
    tag = "dashboard",
    security(("apiToken" = [])),
    params(("id" = i64, Path, description = "The organization's id")),
    responses(
        (status = 200, description = "One row per PC and banned application", body = Vec<ViolationExport>),
        NotFoundById,
        Unauthorized,
        Unavailable,
    )
)]
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

/// The PCs of the organization's subtree that have not reported lately
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/organizations/{id}/silent",
    tag = "dashboard",
    security(("apiToken" = [])),
    params(("id" = i64, Path, description = "The organization's id")),
    responses(
        (status = 200, description = "Silent PCs", body = Vec<crate::store::SilentHost>),
        NotFoundById,
        Unauthorized,
        Unavailable,
    )
)]
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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeekQuery {
    /// An ISO week, `2026-W47` (its last day's); without it, the week before the
    /// current one.
    #[param(pattern = r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$")]
    week: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// One week's figures: a frozen week, or the current one (live)
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/organizations/{id}/weekly",
    tag = "dashboard",
    security(("apiToken" = [])),
    params(
        ("id" = i64, Path, description = "The organization's id"),
        WeekQuery,
    ),
    responses(
        (status = 200, description = "The week's figures", body = Weekly),
        (status = 404, description = "No such organization or week, not within the token's scope, or no data for the week (never frozen, not begun, or before the first report): `error` is `no_data` for the last", body = ApiError),
        (status = 400, description = "The id is not a whole number", body = ApiError),
        (status = 422, description = "The week is not like `2026-W47`", body = ApiError),
        Unauthorized,
        Unavailable,
    )
)]
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
        Some(label) if !is_week_label(label) => {
            return Err(failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "week is not like 2026-W47",
            ));
        }
        // Shaped like a week, but a year without a week 53 (or beyond the calendar).
        Some(label) => clock.parse_week(label).ok_or_else(|| {
            failure(
                StatusCode::NOT_FOUND,
                "no_data",
                &format!("there is no week {label}"),
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostAnswer {
    pub host: crate::store::HostDetail,
    pub applications: Vec<crate::store::HostApp>,
    pub events: Vec<crate::store::FindingEvent>,
}

/// One PC: its facts, its applications and their history
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/hosts/{id}",
    tag = "dashboard",
    security(("apiToken" = [])),
    params(("id" = i64, Path, description = "The PC's id")),
    responses(
        (status = 200, description = "The PC", body = HostAnswer),
        NotFoundById,
        Unauthorized,
        Unavailable,
    )
)]
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
