//! Hosts' lifecycle in SQL: retiring, merging a duplicate, and the recent
//! enrollments (see [`crate::store::lifecycle`] for what they mean).

use super::{SqlStore, on_backend};
use crate::store::lifecycle::{self, HostLifecycle, RecentEnrollment, RetiredHost};
use crate::store::{StoreError, StoreResult, Timestamp};

const LIFECYCLE_COLUMNS: &str = "id, organization_id, hostname, retired_at";

fn retired(host: HostLifecycle) -> RetiredHost {
    RetiredHost {
        host_id: host.id,
        organization_id: host.organization_id,
        hostname: host.hostname,
    }
}

pub(super) async fn retire_host(
    store: &SqlStore,
    host_id: i64,
    now: Timestamp,
) -> StoreResult<RetiredHost> {
    let host: Option<HostLifecycle> = on_backend!(store, |pool| {
        let query = format!(
            "UPDATE hosts SET retired_at = COALESCE(retired_at, $2) WHERE id = $1
             RETURNING {LIFECYCLE_COLUMNS}"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(host_id)
            .bind(now)
            .fetch_optional(pool)
            .await?
    });
    host.map(retired)
        .ok_or_else(|| StoreError::NotFound(format!("host {host_id}")))
}

/// Both hosts are read and the duplicate retired in one transaction (the target is
/// locked on PostgreSQL, so it cannot be retired meanwhile).
pub(super) async fn merge_host(
    store: &SqlStore,
    duplicate: i64,
    into: i64,
    now: Timestamp,
) -> StoreResult<RetiredHost> {
    Ok(on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let read = format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM hosts WHERE id = $1{}",
            D::FOR_UPDATE
        );
        let mut hosts = Vec::new();
        for id in [duplicate, into] {
            let host: HostLifecycle = sqlx::query_as(sqlx::AssertSqlSafe(read.as_str()))
                .bind(id)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("host {id}")))?;
            hosts.push(host);
        }
        lifecycle::check_merge(&hosts[0], &hosts[1])?;
        sqlx::query(
            "UPDATE hosts SET retired_at = COALESCE(retired_at, $2), merged_into = $3
             WHERE id = $1",
        )
        .bind(duplicate)
        .bind(now)
        .bind(into)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        retired(hosts.swap_remove(0))
    }))
}

pub(super) async fn recent_enrollments(
    store: &SqlStore,
    organization_id: i64,
    limit: i64,
) -> StoreResult<Vec<RecentEnrollment>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id AS host_id, hostname, machine_id, enrolled_by_secret AS secret_id,
                    enrolled_at, last_seen_at, retired_at, merged_into
             FROM hosts WHERE organization_id = $1
             ORDER BY enrolled_at DESC, id DESC LIMIT $2",
        )
        .bind(organization_id)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(pool)
        .await?
    }))
}
