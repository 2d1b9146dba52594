//! Application use: the days each host used each application (`app_use_days`,
//! written by both databases' report writers in the report's transaction), what an
//! organization's PCs used in a span of time, and a host's days of use.

use super::{Connection, SqlStore, on_backend, on_connection};
use crate::store::{
    ApplicationUse, HostUseDay, OrganizationUse, ReportRecord, StoreResult, Timestamp,
};

const DAY: Timestamp = 86_400;

/// The UTC day a time falls on (days since 1970-01-01).
pub(crate) fn day_of(at: Timestamp) -> Timestamp {
    at.div_euclid(DAY)
}

/// The `app_id` of a host's latest use of any application with a status (catalog ids
/// are never empty): the PCs per status count these rows, each PC once.
const ANY_APPLICATION: &str = "";

/// Records the uses `records` carry (reports just stored, not duplicates): each widens
/// its day's first and last time. The same use recorded twice changes nothing, and the
/// order reports arrive in does not matter. Each day row written moves its host's
/// latest use of the application, and of any application, with the row's status
/// (`app_use_latest`); a status the row no longer has (a later use that day with
/// another status) is counted again from its days when the day held its latest use.
pub(crate) async fn record_uses(
    connection: Connection<'_>,
    records: &[&ReportRecord],
) -> StoreResult<()> {
    if records.iter().all(|record| record.uses.is_empty()) {
        return Ok(());
    }
    on_connection!(connection, |connection| {
        let day_query = format!(
            "INSERT INTO app_use_days (day, host_id, app_id, status, first_used_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (day, host_id, app_id) DO UPDATE SET
               status = CASE WHEN excluded.last_used_at >= app_use_days.last_used_at
                        THEN excluded.status ELSE app_use_days.status END,
               first_used_at = {least}(app_use_days.first_used_at, excluded.first_used_at),
               last_used_at = {greatest}(app_use_days.last_used_at, excluded.last_used_at)
             RETURNING status, last_used_at",
            least = D::LEAST,
            greatest = D::GREATEST,
        );
        let latest_query = format!(
            "INSERT INTO app_use_latest (host_id, app_id, status, organization_id, last_used_at)
             SELECT id, $2, $3, organization_id, $4 FROM hosts WHERE id = $1
             ON CONFLICT (host_id, app_id, status) DO UPDATE SET
               last_used_at = {greatest}(COALESCE(app_use_latest.last_used_at, excluded.last_used_at),
                                         excluded.last_used_at)",
            greatest = D::GREATEST,
        );
        for record in records {
            for used in &record.uses {
                let day = day_of(used.used_at);
                let (status, last_used_at): (String, Timestamp) =
                    sqlx::query_as(sqlx::AssertSqlSafe(day_query.as_str()))
                        .bind(day)
                        .bind(record.host_id)
                        .bind(&used.app_id)
                        .bind(used.status.as_str())
                        .bind(used.used_at)
                        .fetch_one(&mut *connection)
                        .await?;
                for app_id in [used.app_id.as_str(), ANY_APPLICATION] {
                    sqlx::query(sqlx::AssertSqlSafe(latest_query.as_str()))
                        .bind(record.host_id)
                        .bind(app_id)
                        .bind(&status)
                        .bind(last_used_at)
                        .execute(&mut *connection)
                        .await?;
                }
                // Another status whose latest use was this day's row, before the row
                // took this status: its latest is its other days' (or none).
                sqlx::query(
                    "UPDATE app_use_latest SET last_used_at = (
                         SELECT MAX(u.last_used_at) FROM app_use_days u
                         WHERE u.host_id = app_use_latest.host_id
                           AND (app_use_latest.app_id = '' OR u.app_id = app_use_latest.app_id)
                           AND u.status = app_use_latest.status)
                     WHERE host_id = $1 AND app_id IN ($2, '') AND status <> $3
                       AND last_used_at >= $4 AND last_used_at < $5",
                )
                .bind(record.host_id)
                .bind(&used.app_id)
                .bind(&status)
                .bind(day * DAY)
                .bind((day + 1) * DAY)
                .execute(&mut *connection)
                .await?;
            }
        }
    });
    Ok(())
}

/// The rows of `[from, until)`'s days with a use inside it: a day holds at most one
/// boundary of a span longer than a day, so its first or its last time is inside
/// whenever any use of it was.
const USED_IN_SPAN: &str = "u.day >= $1 AND u.day <= $2
     AND ((u.first_used_at >= $3 AND u.first_used_at < $4)
       OR (u.last_used_at >= $3 AND u.last_used_at < $4))";

/// One row of [`organization_use`]'s query: an organization's PCs per application and
/// status, or ([`ANY_APPLICATION`]) per status, each PC counted once.
#[derive(sqlx::FromRow)]
struct UseRow {
    organization_id: i64,
    app_id: String,
    status: String,
    pcs: i64,
}

pub(super) async fn organization_use(
    store: &SqlStore,
    from: Timestamp,
    until: Timestamp,
) -> StoreResult<(Vec<OrganizationUse>, Vec<ApplicationUse>)> {
    let (first_day, last_day) = (day_of(from), day_of(until - 1));
    // A PC used an application (or any application, `app_id` empty) with a status in
    // the span when its latest use is inside it; none when its latest is before it;
    // when its latest is after the span (a past week), when one of its days has a use
    // inside. One row per PC, application and status: both counts in one pass over
    // an index in the order of the groups, retired PCs left out.
    let query = format!(
        "SELECT l.organization_id, l.app_id, l.status, COUNT(*) AS pcs
         FROM app_use_latest l
         WHERE l.last_used_at >= $3
           AND (l.last_used_at < $4 OR EXISTS (
                SELECT 1 FROM app_use_days u
                WHERE u.host_id = l.host_id
                  AND (l.app_id = '' OR u.app_id = l.app_id)
                  AND u.status = l.status AND {USED_IN_SPAN}))
           AND l.host_id NOT IN (SELECT id FROM hosts WHERE retired_at IS NOT NULL)
         GROUP BY l.organization_id, l.app_id, l.status
         ORDER BY l.organization_id, l.app_id, l.status"
    );
    let mut rows: Vec<UseRow> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(first_day)
            .bind(last_day)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await?
    });
    // Federated organizations: their lower collector's count of its week whose middle
    // lies in the span (its week's boundaries may differ by a time zone).
    let federated: Vec<UseRow> = on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT organization_id, app_id, status, pcs FROM federated_use
             WHERE (week_start + week_end) / 2 >= $1 AND (week_start + week_end) / 2 < $2
             ORDER BY organization_id, app_id, status",
        )
        .bind(from)
        .bind(until)
        .fetch_all(pool)
        .await?
    });
    rows.extend(federated);
    let (statuses, applications): (Vec<UseRow>, Vec<UseRow>) = rows
        .into_iter()
        .partition(|row| row.app_id == ANY_APPLICATION);
    let statuses = statuses
        .into_iter()
        .map(|row| OrganizationUse {
            organization_id: row.organization_id,
            status: row.status,
            pcs: row.pcs,
        })
        .collect();
    let applications = applications
        .into_iter()
        .map(|row| ApplicationUse {
            organization_id: row.organization_id,
            app_id: row.app_id,
            status: row.status,
            pcs: row.pcs,
        })
        .collect();
    Ok((statuses, applications))
}

pub(super) async fn host_use_days(
    store: &SqlStore,
    host_id: i64,
    since: Timestamp,
) -> StoreResult<Vec<HostUseDay>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT app_id, status, first_used_at, last_used_at FROM app_use_days
             WHERE host_id = $1 AND day >= $2 ORDER BY day, app_id",
        )
        .bind(host_id)
        .bind(day_of(since))
        .fetch_all(pool)
        .await?
    }))
}

pub(super) async fn weekly_app_use_of_week(
    store: &SqlStore,
    week: &str,
) -> StoreResult<Vec<ApplicationUse>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT organization_id, app_id, status, pcs FROM weekly_app_use
             WHERE week = $1 ORDER BY organization_id, app_id, status",
        )
        .bind(week)
        .fetch_all(pool)
        .await?
    }))
}

/// Deletes the days before `before`'s day, and the latest uses that were on them (a
/// latest use before the first day kept was on a deleted day, and so was every other
/// use of its status). Returns the days deleted.
pub(super) async fn prune_use_days(store: &SqlStore, before: Timestamp) -> StoreResult<u64> {
    let first_kept = day_of(before);
    Ok(on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let pruned = sqlx::query("DELETE FROM app_use_days WHERE day < $1")
            .bind(first_kept)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM app_use_latest WHERE last_used_at IS NULL OR last_used_at < $1")
            .bind(first_kept * DAY)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        pruned
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_days_since_1970_also_before_it() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
        // 2026-12-03T10:00:00Z
        assert_eq!(day_of(1_796_292_000), 20_790);
    }
}
