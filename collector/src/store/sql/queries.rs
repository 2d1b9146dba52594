//! What the operator asks of an organization and everything under it: violations,
//! coverage, silent PCs, a host's finding events; and pruning the report history.

use super::reports::VIOLATION;
use super::{SqlStore, on_backend};
use crate::store::{
    Coverage, FindingEvent, SilentHost, StoreError, StoreResult, Timestamp, ViolationRow,
};

/// An organization (`$1`) and everything under it, as the CTE `subtree(id)`.
pub(crate) const SUBTREE: &str = "WITH RECURSIVE subtree(id) AS (
        SELECT id FROM organizations WHERE id = $1
        UNION ALL
        SELECT o.id FROM organizations o JOIN subtree s ON o.parent_id = s.id)";

/// A JSON array of user names as stored; anything else reads as no users.
pub(crate) fn users_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

#[derive(sqlx::FromRow)]
pub(super) struct ViolationRecord {
    pub(super) host_id: i64,
    hostname: String,
    organization_id: i64,
    organization: String,
    pub(super) app_id: String,
    app_name: String,
    #[sqlx(try_from = "String")]
    status: sverka_shared::AppStatus,
    #[sqlx(try_from = "String")]
    strength: sverka_shared::Strength,
    users: String,
    first_seen: Timestamp,
    last_seen: Timestamp,
    resolved_at: Option<Timestamp>,
    evidence: String,
    host_last_seen_at: Option<Timestamp>,
}

impl From<ViolationRecord> for ViolationRow {
    fn from(row: ViolationRecord) -> ViolationRow {
        ViolationRow {
            host_id: row.host_id,
            hostname: row.hostname,
            organization_id: row.organization_id,
            organization: row.organization,
            app_id: row.app_id,
            app_name: row.app_name,
            status: row.status,
            strength: row.strength,
            users: users_of(&row.users),
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            resolved_at: row.resolved_at,
            evidence: row.evidence,
            host_last_seen_at: row.host_last_seen_at,
        }
    }
}

pub(super) async fn violations(
    store: &SqlStore,
    organization_id: i64,
    include_resolved: bool,
) -> StoreResult<Vec<ViolationRow>> {
    let rows: Vec<ViolationRecord> = on_backend!(store, |pool| {
        let query = format!(
            "{SUBTREE}
             SELECT h.id AS host_id, h.hostname, o.id AS organization_id,
                    o.name AS organization, a.app_id, a.app_name, a.status, a.strength,
                    a.users, a.first_seen, a.last_seen, a.resolved_at, a.evidence,
                    h.last_seen_at AS host_last_seen_at
             FROM hosts h
             JOIN organizations o ON o.id = h.organization_id
             {}
             WHERE h.organization_id {} AND h.retired_at IS NULL
             ORDER BY o.name, h.hostname, h.id, a.app_id",
            D::findings_of_each_host(&format!("{VIOLATION} AND ($2 OR a.resolved_at IS NULL)")),
            D::IN_SUBTREE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .bind(include_resolved)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(ViolationRow::from).collect())
}

#[derive(sqlx::FromRow)]
struct CoverageCounts {
    id: i64,
    name: String,
    expected_pcs: i64,
    enrolled: i64,
    reporting: i64,
    with_banned: i64,
    with_approved: i64,
    known: i64,
}

impl CoverageCounts {
    fn add(&mut self, other: &CoverageCounts) {
        self.expected_pcs += other.expected_pcs;
        self.enrolled += other.enrolled;
        self.reporting += other.reporting;
        self.with_banned += other.with_banned;
        self.with_approved += other.with_approved;
        self.known += other.known;
    }
}

impl From<CoverageCounts> for Coverage {
    fn from(counts: CoverageCounts) -> Coverage {
        Coverage {
            organization_id: counts.id,
            organization: counts.name,
            expected_pcs: counts.expected_pcs,
            enrolled: counts.enrolled,
            reporting: counts.reporting,
            silent: counts.enrolled - counts.reporting,
            with_banned: counts.with_banned,
            with_approved: counts.with_approved,
            known: counts.known,
        }
    }
}

/// One query for the organization and all its children: each organization under
/// `organization_id` is labelled with the child it lies under (or the organization
/// itself), hosts are counted per organization (in the order of the covering index
/// `hosts_active_counters`, from the hosts' own counters; a federated organization's
/// as its lower collector last sent them) and the counts added up per label; the
/// organization's own row is the sum.
pub(super) async fn coverage(
    store: &SqlStore,
    organization_id: i64,
    since: Timestamp,
) -> StoreResult<Vec<Coverage>> {
    let Some(organization) = super::organizations::organization(store, organization_id).await?
    else {
        return Err(StoreError::NotFound(format!(
            "organization {organization_id}"
        )));
    };
    let query = "WITH RECURSIVE labelled(id, top) AS (
            SELECT id, id FROM organizations WHERE parent_id = $1
            UNION ALL
            SELECT o.id, l.top FROM organizations o JOIN labelled l ON o.parent_id = l.id),
         scope AS (SELECT id, top FROM labelled UNION ALL SELECT $1, $1),
         expected AS (
            SELECT s.top, CAST(SUM(o.expected_pcs) AS BIGINT) AS expected_pcs
            FROM scope s JOIN organizations o ON o.id = s.id GROUP BY s.top),
         per_organization AS (
            SELECT h.organization_id, COUNT(*) AS enrolled,
                   SUM(CASE WHEN h.last_seen_at >= $2 THEN 1 ELSE 0 END) AS reporting,
                   SUM(CASE WHEN h.open_banned > 0 THEN 1 ELSE 0 END) AS with_banned,
                   SUM(CASE WHEN h.open_approved > 0 THEN 1 ELSE 0 END) AS with_approved,
                   SUM(CASE WHEN h.last_seen_at IS NOT NULL THEN 1 ELSE 0 END) AS known
            FROM hosts h WHERE h.organization_id IN (SELECT id FROM scope)
              AND h.retired_at IS NULL
            GROUP BY h.organization_id
            UNION ALL
            SELECT f.organization_id, f.enrolled, f.reporting, f.with_banned, f.with_approved,
                   f.known
            FROM federated_counts f WHERE f.organization_id IN (SELECT id FROM scope)),
         host_counts AS (
            SELECT s.top, CAST(SUM(c.enrolled) AS BIGINT) AS enrolled,
                   CAST(SUM(c.reporting) AS BIGINT) AS reporting,
                   CAST(SUM(c.with_banned) AS BIGINT) AS with_banned,
                   CAST(SUM(c.with_approved) AS BIGINT) AS with_approved,
                   CAST(SUM(c.known) AS BIGINT) AS known
            FROM scope s JOIN per_organization c ON c.organization_id = s.id GROUP BY s.top)
         SELECT o.id, o.name, COALESCE(e.expected_pcs, 0) AS expected_pcs,
                COALESCE(c.enrolled, 0) AS enrolled, COALESCE(c.reporting, 0) AS reporting,
                COALESCE(c.with_banned, 0) AS with_banned,
                COALESCE(c.with_approved, 0) AS with_approved,
                COALESCE(c.known, 0) AS known
         FROM organizations o
         LEFT JOIN expected e ON e.top = o.id
         LEFT JOIN host_counts c ON c.top = o.id
         WHERE o.parent_id = $1 OR o.id = $1";
    let per_label: Vec<CoverageCounts> = on_backend!(store, |pool| {
        sqlx::query_as(query)
            .bind(organization_id)
            .bind(since)
            .fetch_all(pool)
            .await?
    });
    let mut total = CoverageCounts {
        id: organization.id,
        name: organization.name,
        expected_pcs: 0,
        enrolled: 0,
        reporting: 0,
        with_banned: 0,
        with_approved: 0,
        known: 0,
    };
    for counts in &per_label {
        total.add(counts);
    }
    let mut children: Vec<CoverageCounts> = per_label
        .into_iter()
        .filter(|counts| counts.id != organization_id)
        .collect();
    children.sort_by(|left, right| (&left.name, left.id).cmp(&(&right.name, right.id)));
    Ok(std::iter::once(total)
        .chain(children)
        .map(Coverage::from)
        .collect())
}

pub(super) async fn silent_hosts(
    store: &SqlStore,
    organization_id: i64,
    since: Timestamp,
) -> StoreResult<Vec<SilentHost>> {
    Ok(on_backend!(store, |pool| {
        let query = format!(
            "{SUBTREE}
             SELECT h.id AS host_id, h.hostname, o.id AS organization_id,
                    o.name AS organization, h.last_seen_at
             FROM hosts h JOIN organizations o ON o.id = h.organization_id
             WHERE h.organization_id {}
               AND (h.last_seen_at IS NULL OR h.last_seen_at < $2) AND h.retired_at IS NULL
             ORDER BY o.name, h.hostname, h.id",
            D::IN_SUBTREE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .bind(since)
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn finding_events(
    store: &SqlStore,
    host_id: i64,
) -> StoreResult<Vec<FindingEvent>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT host_id, app_id, event, at, cause FROM finding_events
             WHERE host_id = $1 ORDER BY at, id",
        )
        .bind(host_id)
        .fetch_all(pool)
        .await?
    }))
}

pub(super) async fn prune_reports(store: &SqlStore, before: Timestamp) -> StoreResult<u64> {
    Ok(on_backend!(store, |pool| {
        sqlx::query("DELETE FROM reports WHERE received_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
    }))
}
