//! Reports and findings: applying a report to its host (shared by both databases'
//! batching writers), the findings' lifecycle and events, re-evaluation after a
//! catalog change, inventories and catalog revisions.

use std::collections::HashMap;

use super::{Connection, SqlStore, on_backend, on_connection};
use crate::store::{
    CatalogRevision, ChangeCause, EvaluatedFindings, FindingChange, HostBefore,
    HostEvaluationInput, HostFinding, RecordOutcome, ReportRecord, StoreError, StoreResult,
    Timestamp,
};

/// A banned application present on the host (installed or running).
pub(crate) const VIOLATION: &str = "a.status = 'banned' AND a.strength IN ('installed', 'running')";
/// An approved application present on the host.
pub(crate) const APPROVED: &str =
    "a.status = 'approved' AND a.strength IN ('installed', 'running')";

pub(crate) const DUPLICATE: RecordOutcome = RecordOutcome {
    duplicate: true,
    stale: false,
};
pub(crate) const FRESH: RecordOutcome = RecordOutcome {
    duplicate: false,
    stale: false,
};

impl Connection<'_> {
    /// The same connection for one more call.
    pub(crate) fn reborrow(&mut self) -> Connection<'_> {
        match self {
            Connection::Sqlite(connection) => Connection::Sqlite(connection),
            Connection::Postgres(connection) => Connection::Postgres(connection),
        }
    }
}

/// A host of a batch as the batch finds it.
#[derive(sqlx::FromRow)]
pub(crate) struct BatchHost {
    id: i64,
    #[sqlx(flatten)]
    before: HostBefore,
}

/// The hosts of a batch by id.
pub(crate) fn hosts_by_id(rows: Vec<BatchHost>) -> HashMap<i64, HostBefore> {
    rows.into_iter().map(|row| (row.id, row.before)).collect()
}

/// `full` when the report carried its inventory, else `check-in`.
pub(crate) fn report_kind(record: &ReportRecord) -> &'static str {
    if record.inventory.is_some() {
        "full"
    } else {
        "check-in"
    }
}

/// The host a report is for, as the report finds it (on PostgreSQL the row is locked
/// until the transaction ends); `NotFound` when there is no such host.
pub(crate) async fn host_before(
    connection: Connection<'_>,
    host_id: i64,
) -> StoreResult<HostBefore> {
    let host: Option<HostBefore> = on_connection!(connection, |connection| {
        let query = format!(
            "SELECT last_scan_at, findings_digest FROM hosts WHERE id = $1{}",
            D::FOR_UPDATE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(host_id)
            .fetch_optional(&mut *connection)
            .await?
    });
    host.ok_or_else(|| StoreError::NotFound(format!("host {host_id}")))
}

/// Stores one report in the open transaction: its host, its id (a report received
/// before stops there: `duplicate`), then its effect ([`apply_new_report`]).
pub(crate) async fn apply_report(
    mut connection: Connection<'_>,
    record: &ReportRecord,
    store_inventory: bool,
) -> StoreResult<RecordOutcome> {
    let host = host_before(connection.reborrow(), record.host_id).await?;
    let kind = if record.is_stale(&host) {
        "stale"
    } else {
        report_kind(record)
    };
    let inserted = on_connection!(connection.reborrow(), |connection| {
        sqlx::query(
            "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (report_id, host_id) DO NOTHING",
        )
        .bind(&record.report_id)
        .bind(record.host_id)
        .bind(record.received_at)
        .bind(record.scanned_at)
        .bind(kind)
        .bind(record.scan_errors)
        .execute(&mut *connection)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Ok(DUPLICATE);
    }
    apply_new_report(connection, record, &host, store_inventory).await
}

/// The effect of a report whose id was just stored, on `host` as it was before: its
/// inventory (unless the caller stored it already), and unless the report is older
/// than the host's last scan (`stale`: only the host's last contact moves), the host's
/// facts and findings. Findings that differ from the stored ones open, resolve and
/// reopen ([`apply_findings`]); otherwise the open ones were seen again. The report's
/// uses are recorded in every case.
pub(crate) async fn apply_new_report(
    mut connection: Connection<'_>,
    record: &ReportRecord,
    host: &HostBefore,
    store_inventory: bool,
) -> StoreResult<RecordOutcome> {
    // A use is a fact of its time, also in a report older than the host's last scan.
    super::activity::record_uses(connection.reborrow(), &[record]).await?;
    let stale = record.is_stale(host);
    let findings_digest = record
        .findings
        .as_ref()
        .map(|findings| findings.digest.clone());
    let changed = findings_digest
        .as_ref()
        .is_some_and(|digest| *digest != host.findings_digest);
    on_connection!(connection, |connection| {
        if store_inventory && let Some((body, item_count)) = &record.inventory {
            sqlx::query(
                "INSERT INTO inventories (digest, body, item_count, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&record.inventory_digest)
            .bind(body)
            .bind(item_count)
            .bind(record.received_at)
            .execute(&mut *connection)
            .await?;
        }
        if stale {
            let query = format!(
                "UPDATE hosts SET last_seen_at = {}(COALESCE(last_seen_at, 0), $2) WHERE id = $1",
                D::GREATEST
            );
            sqlx::query(sqlx::AssertSqlSafe(query))
                .bind(record.host_id)
                .bind(record.received_at)
                .execute(&mut *connection)
                .await?;
            return Ok(RecordOutcome {
                duplicate: false,
                stale: true,
            });
        }
        let query = format!(
            "UPDATE hosts SET last_seen_at = {}(COALESCE(last_seen_at, 0), $2), hostname = $3,
             os_id = $4, os_name = $5, agent_version = $6, last_scan_at = $7,
             inventory_digest = CASE WHEN $8 THEN $9 ELSE inventory_digest END,
             evidence = CASE WHEN $8 THEN $10 ELSE evidence END,
             catalog_revision = CASE WHEN $8 THEN $11 ELSE catalog_revision END,
             findings_digest = CASE WHEN $8 THEN $12 ELSE findings_digest END
             WHERE id = $1",
            D::GREATEST
        );
        sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(record.host_id)
            .bind(record.received_at)
            .bind(&record.hostname)
            .bind(&record.os_id)
            .bind(&record.os_name)
            .bind(&record.agent_version)
            .bind(record.scanned_at)
            .bind(record.findings.is_some())
            .bind(&record.inventory_digest)
            .bind(&record.evidence)
            .bind(record.catalog_revision)
            .bind(findings_digest.as_deref().unwrap_or_default())
            .execute(&mut *connection)
            .await?;
        match &record.findings {
            Some(findings) if changed => {
                apply_findings(
                    Connection::from(&mut *connection),
                    record.host_id,
                    &findings.list,
                    record.scanned_at,
                    ChangeCause::Report,
                )
                .await?;
            }
            _ => {
                // Nothing changed (or nothing could be evaluated): the open findings
                // were seen again. Rows seen later already are left alone.
                sqlx::query(
                    "UPDATE host_apps SET last_seen = $2
                     WHERE host_id = $1 AND resolved_at IS NULL AND last_seen < $2",
                )
                .bind(record.host_id)
                .bind(record.scanned_at)
                .execute(&mut *connection)
                .await?;
            }
        }
        Ok(FRESH)
    })
}

/// Brings `host_apps` in line with `findings` as of `at` (the caller holds the host):
/// new applications open, applications that came back reopen, missing ones are
/// resolved; each change is an event with its `cause`. The host's
/// `open_banned`/`open_approved` counters are recounted in the same transaction, the
/// only place they change.
pub(crate) async fn apply_findings(
    connection: Connection<'_>,
    host_id: i64,
    findings: &[HostFinding],
    at: Timestamp,
    cause: ChangeCause,
) -> StoreResult<()> {
    on_connection!(connection, |connection| {
        let existing: HashMap<String, Option<Timestamp>> =
            sqlx::query_as("SELECT app_id, resolved_at FROM host_apps WHERE host_id = $1")
                .bind(host_id)
                .fetch_all(&mut *connection)
                .await?
                .into_iter()
                .collect();
        // New applications open; known ones take the new facts, and those resolved
        // before reopen with this report's time as their first sighting.
        let upsert = format!(
            "INSERT INTO host_apps (host_id, app_id, app_name, status, strength, users,
             evidence, first_seen, last_seen, resolved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, NULL)
             ON CONFLICT (host_id, app_id) DO UPDATE SET
               app_name = excluded.app_name, status = excluded.status,
               strength = excluded.strength, users = excluded.users,
               evidence = excluded.evidence,
               first_seen = CASE WHEN host_apps.resolved_at IS NULL THEN host_apps.first_seen
                            ELSE excluded.first_seen END,
               last_seen = CASE WHEN host_apps.resolved_at IS NULL
                           THEN {}(host_apps.last_seen, excluded.last_seen)
                           ELSE excluded.last_seen END,
               resolved_at = NULL",
            D::GREATEST
        );
        let mut events: Vec<(&str, FindingChange)> = Vec::new();
        for finding in findings {
            let users = serde_json::to_string(&finding.users).unwrap_or_else(|_| "[]".into());
            sqlx::query(sqlx::AssertSqlSafe(upsert.as_str()))
                .bind(host_id)
                .bind(&finding.app_id)
                .bind(&finding.app_name)
                .bind(finding.status.as_str())
                .bind(finding.strength.as_str())
                .bind(&users)
                .bind(&finding.evidence)
                .bind(at)
                .execute(&mut *connection)
                .await?;
            // New, or back after it was resolved.
            let reopened = existing
                .get(&finding.app_id)
                .is_none_or(|resolved_at| resolved_at.is_some());
            if reopened {
                events.push((finding.app_id.as_str(), FindingChange::Appeared));
            }
        }
        for (app_id, resolved_at) in &existing {
            let still_there = findings.iter().any(|finding| &finding.app_id == app_id);
            if resolved_at.is_none() && !still_there {
                sqlx::query(
                    "UPDATE host_apps SET resolved_at = $3 WHERE host_id = $1 AND app_id = $2",
                )
                .bind(host_id)
                .bind(app_id)
                .bind(at)
                .execute(&mut *connection)
                .await?;
                events.push((app_id.as_str(), FindingChange::Resolved));
            }
        }
        for (app_id, event) in events {
            sqlx::query(
                "INSERT INTO finding_events (host_id, app_id, event, at, cause)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(host_id)
            .bind(app_id)
            .bind(event.as_str())
            .bind(at)
            .bind(cause.as_str())
            .execute(&mut *connection)
            .await?;
        }
        let counters = format!(
            "UPDATE hosts SET
                open_banned = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = $1
                               AND a.resolved_at IS NULL AND {VIOLATION}),
                open_approved = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = $1
                                 AND a.resolved_at IS NULL AND {APPROVED})
             WHERE id = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(counters))
            .bind(host_id)
            .execute(&mut *connection)
            .await?;
        Ok(())
    })
}

pub(super) async fn inventory(store: &SqlStore, digest: &str) -> StoreResult<Option<String>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar("SELECT body FROM inventories WHERE digest = $1")
            .bind(digest)
            .fetch_optional(pool)
            .await?
    }))
}

pub(super) async fn inventory_count(store: &SqlStore) -> StoreResult<i64> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM inventories")
            .fetch_one(pool)
            .await?
    }))
}

pub(super) async fn report_count(store: &SqlStore, host_id: i64) -> StoreResult<i64> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM reports WHERE host_id = $1")
            .bind(host_id)
            .fetch_one(pool)
            .await?
    }))
}

pub(super) async fn hosts_behind_catalog(
    store: &SqlStore,
    revision: i64,
    after_host_id: i64,
    limit: i64,
) -> StoreResult<Vec<HostEvaluationInput>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id AS host_id, inventory_digest, evidence FROM hosts
             WHERE id > $1 AND last_scan_at IS NOT NULL AND catalog_revision < $3
             ORDER BY id LIMIT $2",
        )
        .bind(after_host_id)
        .bind(limit)
        .bind(revision)
        .fetch_all(pool)
        .await?
    }))
}

/// Replaces a host's findings after a catalog change; a host that is gone is
/// `NotFound` on both databases.
pub(super) async fn apply_evaluation(
    store: &SqlStore,
    host_id: i64,
    findings: Vec<HostFinding>,
    catalog_revision: i64,
    now: Timestamp,
) -> StoreResult<()> {
    on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        host_before(Connection::from(&mut *transaction), host_id).await?;
        apply_findings(
            Connection::from(&mut *transaction),
            host_id,
            &findings,
            now,
            ChangeCause::Catalog,
        )
        .await?;
        let findings_digest = EvaluatedFindings::new(findings).digest;
        sqlx::query("UPDATE hosts SET catalog_revision = $2, findings_digest = $3 WHERE id = $1")
            .bind(host_id)
            .bind(catalog_revision)
            .bind(findings_digest)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    });
    Ok(())
}

pub(super) async fn current_catalog(store: &SqlStore) -> StoreResult<Option<CatalogRevision>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT revision, overrides FROM catalog_revisions ORDER BY revision DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?
    }))
}

/// Stores a new catalog revision, numbered one past the newest; two processes number
/// in turn ([`crate::store::dialect::Dialect::CATALOG_NUMBERING_LOCK`]).
pub(super) async fn save_catalog(
    store: &SqlStore,
    overrides: &str,
    now: Timestamp,
) -> StoreResult<i64> {
    Ok(on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        if let Some(lock) = D::CATALOG_NUMBERING_LOCK {
            sqlx::query(lock).execute(&mut *transaction).await?;
        }
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO catalog_revisions (revision, overrides, created_at)
             SELECT COALESCE(MAX(revision), 0) + 1, $1, $2 FROM catalog_revisions
             RETURNING revision",
        )
        .bind(overrides)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        revision
    }))
}
