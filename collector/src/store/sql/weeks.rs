//! Frozen weeks read back: this collector's frozen figures with its federated
//! organizations' own weeks merged in (`store::federated_weeks`), and the weeks there
//! are.

use super::{SqlStore, on_backend};
use crate::store::federated_weeks::{FederationPlace, with_federated_weeks};
use crate::store::{StoreResult, WeeklyFigures};

const FIGURE_COLUMNS: &str = "organization_id, week, expected_pcs, enrolled, reporting, silent,
     with_banned, with_approved, known, silent_with_banned, used_approved, used_banned";

/// The organizations whose lower collector sends them and whose parent is this
/// collector's own: the rows a subtree's frozen figures are corrected by.
const TOPMOST_FEDERATED: &str = "SELECT o.id FROM organizations o
     JOIN organizations p ON p.id = o.parent_id
     WHERE o.federated_link_id IS NOT NULL AND p.federated_link_id IS NULL";

/// Every organization's place (from the organizations kept in memory under the tree's
/// version `tree_version`), or `None` when none is federated (nothing to merge).
async fn federation_places(
    store: &SqlStore,
    tree_version: i64,
) -> StoreResult<Option<Vec<FederationPlace>>> {
    let organizations = super::organizations::organizations_at(store, tree_version).await?;
    if organizations
        .iter()
        .all(|organization| organization.federated_link_id.is_none())
    {
        return Ok(None);
    }
    Ok(Some(
        organizations
            .iter()
            .map(|organization| FederationPlace {
                id: organization.id,
                parent_id: organization.parent_id,
                federated: organization.federated_link_id.is_some(),
                gone: organization.federated_gone_at.is_some(),
            })
            .collect(),
    ))
}

/// Kept in memory under the tree's and the weeks' versions (`cache.rs`).
pub(super) async fn weekly_figures_of_week(
    store: &SqlStore,
    week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    let versions = super::cache::versions(store).await?;
    if let Some(kept) = store.cache.week(week, versions) {
        return Ok(kept.as_ref().clone());
    }
    let rows = read_week(store, versions.tree, week).await?;
    store
        .cache
        .keep_week(week, versions, std::sync::Arc::new(rows.clone()));
    Ok(rows)
}

async fn read_week(
    store: &SqlStore,
    tree_version: i64,
    week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    let mut rows = read_merged(store, tree_version, None, week, week).await?;
    rows.sort_by_key(|figures| figures.organization_id);
    Ok(rows)
}

pub(super) async fn weekly_figures_of_organization(
    store: &SqlStore,
    organization_id: i64,
    from_week: &str,
    to_week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    let versions = super::cache::versions(store).await?;
    let mut rows: Vec<WeeklyFigures> = read_merged(
        store,
        versions.tree,
        Some(organization_id),
        from_week,
        to_week,
    )
    .await?
    .into_iter()
    .filter(|figures| figures.organization_id == organization_id)
    .collect();
    // Week labels are ASCII digits in a fixed layout: byte order is week order.
    rows.sort_by(|a, b| a.week.cmp(&b.week));
    Ok(rows)
}

/// The frozen figures of `from_week..=to_week` (of every organization, or of
/// `organization` and, with federated organizations, the rows its figures are
/// corrected by), with the federated weeks merged in.
async fn read_merged(
    store: &SqlStore,
    tree_version: i64,
    organization: Option<i64>,
    from_week: &str,
    to_week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    let places = federation_places(store, tree_version).await?;
    let (frozen, received): (Vec<WeeklyFigures>, Vec<WeeklyFigures>) = on_backend!(store, |pool| {
        let bytewise = D::BYTEWISE;
        let (which, first_week) = match (organization, &places) {
            (None, _) => (String::new(), 1),
            (Some(_), None) => ("organization_id = $1 AND ".to_string(), 2),
            (Some(_), Some(_)) => (
                format!("(organization_id = $1 OR organization_id IN ({TOPMOST_FEDERATED})) AND "),
                2,
            ),
        };
        let condition = format!(
            "{which}week{bytewise} >= ${first_week} AND week{bytewise} <= ${}",
            first_week + 1
        );
        let mut read = Vec::new();
        for table in ["weekly_snapshots", "federated_weeks"] {
            if table == "federated_weeks" && places.is_none() {
                read.push(Vec::new());
                continue;
            }
            let query = format!("SELECT {FIGURE_COLUMNS} FROM {table} WHERE {condition}");
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(query));
            if let Some(organization) = organization {
                query = query.bind(organization);
            }
            read.push(query.bind(from_week).bind(to_week).fetch_all(pool).await?);
        }
        let received = read.pop().unwrap_or_default();
        (read.pop().unwrap_or_default(), received)
    });
    Ok(match places {
        None => frozen,
        Some(places) => with_federated_weeks(frozen, received, &places),
    })
}

/// The weeks with frozen figures after `after` (all with `None`), oldest first.
pub(super) async fn frozen_weeks(
    store: &SqlStore,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar(
            "SELECT DISTINCT week FROM weekly_snapshots
             WHERE $1 IS NULL OR week > $1 ORDER BY week LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
    }))
}
