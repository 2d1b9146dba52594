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

/// Records the uses `records` carry (reports just stored, not duplicates): each widens
/// its day's first and last time. The same use recorded twice changes nothing, and the
/// order reports arrive in does not matter.
pub(crate) async fn record_uses(
    connection: Connection<'_>,
    records: &[&ReportRecord],
) -> StoreResult<()> {
    if records.iter().all(|record| record.uses.is_empty()) {
        return Ok(());
    }
    on_connection!(connection, |connection| {
        let query = format!(
            "INSERT INTO app_use_days (day, host_id, app_id, status, first_used_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (day, host_id, app_id) DO UPDATE SET
               status = CASE WHEN excluded.last_used_at >= app_use_days.last_used_at
                        THEN excluded.status ELSE app_use_days.status END,
               first_used_at = {least}(app_use_days.first_used_at, excluded.first_used_at),
               last_used_at = {greatest}(app_use_days.last_used_at, excluded.last_used_at)",
            least = D::LEAST,
            greatest = D::GREATEST,
        );
        for record in records {
            for used in &record.uses {
                sqlx::query(sqlx::AssertSqlSafe(query.as_str()))
                    .bind(day_of(used.used_at))
                    .bind(record.host_id)
                    .bind(&used.app_id)
                    .bind(used.status.as_str())
                    .bind(used.used_at)
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

pub(super) async fn organization_use(
    store: &SqlStore,
    from: Timestamp,
    until: Timestamp,
) -> StoreResult<(Vec<OrganizationUse>, Vec<ApplicationUse>)> {
    let (first_day, last_day) = (day_of(from), day_of(until - 1));
    // Each PC's uses are made distinct first (a PC used MAX on five days: one row),
    // then joined to its organization: the join and the count see one row per PC and
    // application, not per day.
    let by_status = format!(
        "WITH used AS (
             SELECT DISTINCT u.host_id, u.status FROM app_use_days u WHERE {USED_IN_SPAN})
         SELECT h.organization_id, used.status, COUNT(*) AS pcs
         FROM used JOIN hosts h ON h.id = used.host_id
         WHERE h.retired_at IS NULL
         GROUP BY h.organization_id, used.status ORDER BY h.organization_id, used.status"
    );
    let by_application = format!(
        "WITH used AS (
             SELECT DISTINCT u.host_id, u.app_id, u.status FROM app_use_days u
             WHERE {USED_IN_SPAN})
         SELECT h.organization_id, used.app_id, used.status, COUNT(*) AS pcs
         FROM used JOIN hosts h ON h.id = used.host_id
         WHERE h.retired_at IS NULL
         GROUP BY h.organization_id, used.app_id, used.status
         ORDER BY h.organization_id, used.app_id, used.status"
    );
    Ok(on_backend!(store, |pool| {
        let statuses: Vec<OrganizationUse> = sqlx::query_as(sqlx::AssertSqlSafe(by_status))
            .bind(first_day)
            .bind(last_day)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await?;
        let applications: Vec<ApplicationUse> = sqlx::query_as(sqlx::AssertSqlSafe(by_application))
            .bind(first_day)
            .bind(last_day)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await?;
        (statuses, applications)
    }))
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

pub(super) async fn prune_use_days(store: &SqlStore, before: Timestamp) -> StoreResult<u64> {
    Ok(on_backend!(store, |pool| {
        sqlx::query("DELETE FROM app_use_days WHERE day < $1")
            .bind(day_of(before))
            .execute(pool)
            .await?
            .rows_affected()
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
