//! PostgreSQL: one database for a whole region, shared by any number of collector
//! processes behind a load balancer. Reports are committed in batches by a few writer
//! tasks (`postgres_writer.rs`); a batch first locks its hosts' rows in id order
//! (`SELECT ... FOR UPDATE`), so two collectors given reports of the same host at once
//! apply them one after the other; the report id's primary key stores a report once
//! however many collectors receive it. Background jobs take a session
//! advisory lock ([`Store::try_lock_job`]), so they run in one process at a time.
//!
//! The module follows `sqlite.rs`: the store and its helpers first, the trait methods
//! last in the trait's order.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

#[path = "postgres_dashboard.rs"]
mod dashboard;
#[path = "postgres_writer.rs"]
mod writer;

use super::{
    ApiTokenCredentials, ApiTokenInfo, AuditEntry, HandledMark, HostApp, HostDetail, HostSummary,
    NewAuditEntry, NewSession, NewUser, OrganizationCounts, Session, User, UserChange,
    UserCredentials, WeeklyFigures,
};
use super::{
    CatalogRevision, Coverage, EnrolledHost, Enrollment, EvaluatedFindings, FindingEvent,
    HostCredentials, HostEvaluationInput, HostFinding, HostState, JobLease, NewOrganization,
    NewSecret, Organization, RecordOutcome, ReportRecord, SecretInfo, SilentHost, Store,
    StoreError, StoreResult, Timestamp, ViolationRow,
};

/// Connections per collector process unless the configuration says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;
const VIOLATION: &str = "a.status = 'banned' AND a.strength IN ('installed', 'running')";
const APPROVED: &str = "a.status = 'approved' AND a.strength IN ('installed', 'running')";
/// An organization and everything under it. PostgreSQL cannot tell how many
/// organizations a recursive query yields and guesses hundreds, which made it scan all
/// hosts and findings of the region for one school's page (136 ms at 100,000 PCs).
/// So the hosts are asked for with `organization_id = ANY(ARRAY(SELECT id FROM
/// subtree))` (the index on `hosts(organization_id, ...)`), and their findings one host
/// at a time through the primary key (a `LATERAL` subquery that `OFFSET 0` keeps from
/// being turned back into a join): 1 ms for a school, 14 ms for a municipality of
/// 4,000 PCs, 0.36 s for the region's whole list (an export).
const SUBTREE: &str = "WITH RECURSIVE subtree(id) AS (
        SELECT id FROM organizations WHERE id = $1
        UNION ALL
        SELECT o.id FROM organizations o JOIN subtree s ON o.parent_id = s.id)";
/// The advisory lock `save_catalog` takes so that two processes number revisions in
/// turn (job locks use keys derived from their names, see [`job_lock_key`]).
const CATALOG_REVISION_LOCK: i64 = 0x5356_4b41_0000_0001;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
    writer: writer::ReportWriter,
}

impl PgStore {
    /// Connects to a `postgres://` URL with up to `pool_size` connections and brings
    /// the schema up to date (migrations run under PostgreSQL's own lock, so collectors
    /// starting together migrate once).
    pub async fn open(url: &str, pool_size: u32) -> StoreResult<PgStore> {
        let options = connect_options(url)
            .map_err(|error| StoreError::Invalid(format!("database URL: {error}")))?
            .application_name("sverka-collector");
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Database(format!("migrating the schema: {error}")))?;
        // A quarter of the connections commit reports; the rest serve everything else
        // (host key checks, the dashboard, background jobs).
        let writer = writer::ReportWriter::start(&pool, (pool_size / 4).max(1) as usize);
        Ok(PgStore {
            pool,
            options,
            writer,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for copying a database into this one (`migrate`).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Parses a `postgres://` URL. Without a user in it, the user is `PGUSER`, else
/// `USER` or `LOGNAME`, else the name of the process's user as sqlx finds it; when
/// that cannot be found either (sqlx then says `anonymous`), `postgres`.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let names_user = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .is_some_and(|authority| authority.contains('@'));
    if names_user || std::env::var_os("PGUSER").is_some() {
        return Ok(options);
    }
    let from_environment = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|name| !name.is_empty());
    Ok(match from_environment {
        Some(user) => options.username(&user),
        None if options.get_username() == "anonymous" => options.username("postgres"),
        None => options,
    })
}

/// Reads a column, with the store's error.
trait ColumnValue {
    fn value<'r, T, I>(&'r self, index: I) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        I: sqlx::ColumnIndex<PgRow>;
}

impl ColumnValue for PgRow {
    fn value<'r, T, I>(&'r self, index: I) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        I: sqlx::ColumnIndex<PgRow>,
    {
        self.try_get(index).map_err(map_error)
    }
}

/// Turns database errors into the store's: a lost connection, a server shutting down or
/// out of resources, a deadlock or serialization failure are `Unavailable` (the
/// collector answers 503 and the agent retries).
pub(crate) fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            // 08: connection exception; 53: insufficient resources; 57P: operator
            // intervention (shutdown); 40001/40P01: serialization failure, deadlock.
            if code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
            {
                StoreError::Unavailable(database.message().to_string())
            } else {
                StoreError::Database(database.message().to_string())
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Database(error.to_string()),
    }
}

/// The advisory lock key of a job: the first 8 bytes of SHA-256 of its name, so keys
/// are stable across processes and versions.
fn job_lock_key(name: &str) -> i64 {
    let digest = crate::keys::hash(&format!("sverka-job:{name}"));
    i64::from_str_radix(&digest[..16], 16)
        .or_else(|_| u64::from_str_radix(&digest[..16], 16).map(|key| key as i64))
        .unwrap_or(0)
}

/// A connection holding a job's session advisory lock. Dropping it closes the
/// connection, which ends the session and so releases the lock.
#[derive(Debug)]
struct LockConnection(Option<PgConnection>);

impl Drop for LockConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = connection.close().await;
            });
        }
    }
}

fn report_kind(record: &ReportRecord) -> &'static str {
    if record.inventory.is_some() {
        "full"
    } else {
        "check-in"
    }
}

/// Stores one report in the open transaction: locks the host (the batch has locked it
/// already), stores the id (a duplicate stops there), the inventory, and the report's
/// effect on the host.
async fn apply_report(
    connection: &mut PgConnection,
    record: &ReportRecord,
) -> StoreResult<RecordOutcome> {
    let host =
        sqlx::query("SELECT last_scan_at, findings_digest FROM hosts WHERE id = $1 FOR UPDATE")
            .bind(record.host_id)
            .fetch_optional(&mut *connection)
            .await
            .map_err(map_error)?;
    let Some(host) = host else {
        return Err(StoreError::NotFound(format!("host {}", record.host_id)));
    };
    let last_scan_at: Option<Timestamp> = host.value(0)?;
    let previous_findings: String = host.value(1)?;
    let stale = last_scan_at.is_some_and(|last| record.scanned_at < last);
    let inserted = sqlx::query(
        "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (report_id) DO NOTHING",
    )
    .bind(&record.report_id)
    .bind(record.host_id)
    .bind(record.received_at)
    .bind(record.scanned_at)
    .bind(if stale { "stale" } else { report_kind(record) })
    .bind(record.scan_errors)
    .execute(&mut *connection)
    .await
    .map_err(map_error)?;
    if inserted.rows_affected() == 0 {
        return Ok(RecordOutcome {
            duplicate: true,
            stale: false,
        });
    }
    if let Some((body, item_count)) = &record.inventory {
        sqlx::query(
            "INSERT INTO inventories (digest, body, item_count, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(&record.inventory_digest)
        .bind(body)
        .bind(item_count)
        .bind(record.received_at)
        .execute(&mut *connection)
        .await
        .map_err(map_error)?;
    }
    if stale {
        sqlx::query(
            "UPDATE hosts SET last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $2) WHERE id = $1",
        )
        .bind(record.host_id)
        .bind(record.received_at)
        .execute(&mut *connection)
        .await
        .map_err(map_error)?;
        return Ok(RecordOutcome {
            duplicate: false,
            stale: true,
        });
    }
    let findings_digest = record
        .findings
        .as_ref()
        .map(|findings| findings.digest.clone());
    let changed = findings_digest
        .as_ref()
        .is_some_and(|digest| *digest != previous_findings);
    sqlx::query(
        "UPDATE hosts SET last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $2), hostname = $3,
         os_id = $4, os_name = $5, agent_version = $6, last_scan_at = $7,
         inventory_digest = CASE WHEN $8 THEN $9 ELSE inventory_digest END,
         evidence = CASE WHEN $8 THEN $10 ELSE evidence END,
         catalog_revision = CASE WHEN $8 THEN $11 ELSE catalog_revision END,
         findings_digest = CASE WHEN $8 THEN $12 ELSE findings_digest END
         WHERE id = $1",
    )
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
    .await
    .map_err(map_error)?;
    match &record.findings {
        Some(findings) if changed => {
            apply_findings(
                connection,
                record.host_id,
                &findings.list,
                record.scanned_at,
                "report",
            )
            .await?;
        }
        _ => {
            // Nothing changed (or nothing could be evaluated): the open findings were
            // seen again.
            sqlx::query(
                "UPDATE host_apps SET last_seen = GREATEST(last_seen, $2)
                 WHERE host_id = $1 AND resolved_at IS NULL AND last_seen < $2",
            )
            .bind(record.host_id)
            .bind(record.scanned_at)
            .execute(&mut *connection)
            .await
            .map_err(map_error)?;
        }
    }
    Ok(RecordOutcome {
        duplicate: false,
        stale: false,
    })
}

/// Brings `host_apps` in line with `findings` as of `at` (the host row is locked by the
/// caller): new applications open, applications that came back reopen, missing ones
/// are resolved; each change is an event. The host's `open_banned`/`open_approved`
/// counters are recounted.
async fn apply_findings(
    connection: &mut PgConnection,
    host_id: i64,
    findings: &[HostFinding],
    at: Timestamp,
    cause: &str,
) -> StoreResult<()> {
    let existing: HashMap<String, Option<Timestamp>> =
        sqlx::query("SELECT app_id, resolved_at FROM host_apps WHERE host_id = $1")
            .bind(host_id)
            .fetch_all(&mut *connection)
            .await
            .map_err(map_error)?
            .iter()
            .map(|row| Ok((row.value(0)?, row.value(1)?)))
            .collect::<StoreResult<_>>()?;
    for finding in findings {
        let users = serde_json::to_string(&finding.users).unwrap_or_else(|_| "[]".into());
        let reopened = match existing.get(&finding.app_id) {
            None => {
                sqlx::query(
                    "INSERT INTO host_apps (host_id, app_id, app_name, status, strength, users,
                     evidence, first_seen, last_seen, resolved_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, NULL)",
                )
                .bind(host_id)
                .bind(&finding.app_id)
                .bind(&finding.app_name)
                .bind(&finding.status)
                .bind(&finding.strength)
                .bind(&users)
                .bind(&finding.evidence)
                .bind(at)
                .execute(&mut *connection)
                .await
                .map_err(map_error)?;
                true
            }
            Some(resolved_at) => {
                let reopen = resolved_at.is_some();
                sqlx::query(
                    "UPDATE host_apps SET app_name = $3, status = $4, strength = $5, users = $6,
                     evidence = $7,
                     first_seen = CASE WHEN $9 THEN $8 ELSE first_seen END,
                     last_seen = CASE WHEN $9 THEN $8 ELSE GREATEST(last_seen, $8) END,
                     resolved_at = NULL
                     WHERE host_id = $1 AND app_id = $2",
                )
                .bind(host_id)
                .bind(&finding.app_id)
                .bind(&finding.app_name)
                .bind(&finding.status)
                .bind(&finding.strength)
                .bind(&users)
                .bind(&finding.evidence)
                .bind(at)
                .bind(reopen)
                .execute(&mut *connection)
                .await
                .map_err(map_error)?;
                reopen
            }
        };
        if reopened {
            record_event(connection, host_id, &finding.app_id, "appeared", at, cause).await?;
        }
    }
    for (app_id, resolved_at) in &existing {
        let still_there = findings.iter().any(|finding| &finding.app_id == app_id);
        if resolved_at.is_none() && !still_there {
            sqlx::query("UPDATE host_apps SET resolved_at = $3 WHERE host_id = $1 AND app_id = $2")
                .bind(host_id)
                .bind(app_id)
                .bind(at)
                .execute(&mut *connection)
                .await
                .map_err(map_error)?;
            record_event(connection, host_id, app_id, "resolved", at, cause).await?;
        }
    }
    // The host's counters, in the same transaction as the rows they count.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE hosts SET
            open_banned = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = $1
                           AND a.resolved_at IS NULL AND {VIOLATION}),
            open_approved = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = $1
                             AND a.resolved_at IS NULL AND {APPROVED})
         WHERE id = $1"
    )))
    .bind(host_id)
    .execute(&mut *connection)
    .await
    .map_err(map_error)?;
    Ok(())
}

async fn record_event(
    connection: &mut PgConnection,
    host_id: i64,
    app_id: &str,
    event: &str,
    at: Timestamp,
    cause: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO finding_events (host_id, app_id, event, at, cause) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(host_id)
    .bind(app_id)
    .bind(event)
    .bind(at)
    .bind(cause)
    .execute(&mut *connection)
    .await
    .map_err(map_error)?;
    Ok(())
}

fn organization_of(row: &PgRow) -> StoreResult<Organization> {
    Ok(Organization {
        id: row.value("id")?,
        parent_id: row.value("parent_id")?,
        name: row.value("name")?,
        kind: row.value("kind")?,
        expected_pcs: row.value("expected_pcs")?,
        time_zone: row.value("time_zone")?,
    })
}

fn secret_of(row: &PgRow) -> StoreResult<SecretInfo> {
    Ok(SecretInfo {
        id: row.value("id")?,
        organization_id: row.value("organization_id")?,
        created_at: row.value("created_at")?,
        expires_at: row.value("expires_at")?,
        revoked_at: row.value("revoked_at")?,
    })
}

fn users_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

#[async_trait]
impl Store for PgStore {
    async fn create_organization(&self, new: NewOrganization) -> StoreResult<Organization> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("an organization needs a name".into()));
        }
        if new.expected_pcs < 0 {
            return Err(StoreError::Invalid(
                "the expected number of PCs cannot be negative".into(),
            ));
        }
        let time_zone = super::checked_time_zone(new.time_zone.as_deref())?;
        if let Some(parent) = new.parent_id
            && self.organization(parent).await?.is_none()
        {
            return Err(StoreError::NotFound(format!("organization {parent}")));
        }
        let now = crate::now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO organizations (parent_id, name, kind, expected_pcs, created_at, time_zone)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.parent_id)
        .bind(&new.name)
        .bind(&new.kind)
        .bind(new.expected_pcs)
        .bind(now)
        .bind(&time_zone)
        .fetch_one(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(Organization {
            id,
            parent_id: new.parent_id,
            name: new.name,
            kind: new.kind,
            expected_pcs: new.expected_pcs,
            time_zone,
        })
    }

    async fn set_organization_time_zone(
        &self,
        id: i64,
        time_zone: Option<&str>,
    ) -> StoreResult<Organization> {
        let time_zone = super::checked_time_zone(time_zone)?;
        let changed = sqlx::query("UPDATE organizations SET time_zone = $2 WHERE id = $1")
            .bind(id)
            .bind(&time_zone)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("organization {id}")));
        }
        self.organization(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organization {id}")))
    }

    async fn organization(&self, id: i64) -> StoreResult<Option<Organization>> {
        sqlx::query(
            "SELECT id, parent_id, name, kind, expected_pcs, time_zone FROM organizations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?
        .as_ref()
        .map(organization_of)
        .transpose()
    }

    async fn organizations(&self) -> StoreResult<Vec<Organization>> {
        sqlx::query("SELECT id, parent_id, name, kind, expected_pcs, time_zone FROM organizations ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(organization_of)
            .collect()
    }

    async fn create_secret(&self, new: NewSecret, now: Timestamp) -> StoreResult<SecretInfo> {
        if self.organization(new.organization_id).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "organization {}",
                new.organization_id
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO enrollment_secrets (organization_id, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.organization_id)
        .bind(&new.secret_hash)
        .bind(now)
        .bind(new.expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_error)?;
        Ok(SecretInfo {
            id,
            organization_id: new.organization_id,
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        })
    }

    async fn revoke_secret(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE enrollment_secrets SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("enrollment secret {id}")));
        }
        Ok(())
    }

    async fn secrets(&self, organization_id: i64) -> StoreResult<Vec<SecretInfo>> {
        sqlx::query(
            "SELECT id, organization_id, created_at, expires_at, revoked_at
             FROM enrollment_secrets WHERE organization_id = $1 ORDER BY id",
        )
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(secret_of)
        .collect()
    }

    async fn enroll(&self, enrollment: Enrollment, now: Timestamp) -> StoreResult<EnrolledHost> {
        let secret = sqlx::query(
            "SELECT organization_id, secret_hash, expires_at, revoked_at
             FROM enrollment_secrets WHERE id = $1",
        )
        .bind(enrollment.secret_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        let Some(secret) = secret else {
            return Err(StoreError::Rejected("unknown enrollment secret".into()));
        };
        let stored_hash: String = secret.value("secret_hash")?;
        if !crate::keys::same_hash(&stored_hash, &enrollment.secret_hash) {
            return Err(StoreError::Rejected("unknown enrollment secret".into()));
        }
        let revoked_at: Option<i64> = secret.value("revoked_at")?;
        if revoked_at.is_some() {
            return Err(StoreError::Rejected(
                "this enrollment secret was revoked".into(),
            ));
        }
        let expires_at: Option<i64> = secret.value("expires_at")?;
        if expires_at.is_some_and(|expires| expires <= now) {
            return Err(StoreError::Rejected(
                "this enrollment secret has expired".into(),
            ));
        }
        let organization_id: i64 = secret.value("organization_id")?;
        // One statement, so two collectors enrolling the same machine at once end with
        // one host (the later key wins). `xmax = 0` tells an inserted row.
        let row = sqlx::query(
            "INSERT INTO hosts (organization_id, machine_id, hostname, os_id, os_name,
             agent_version, key_hash, enrolled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (organization_id, machine_id) DO UPDATE SET
               key_hash = EXCLUDED.key_hash, hostname = EXCLUDED.hostname,
               os_id = EXCLUDED.os_id, os_name = EXCLUDED.os_name,
               agent_version = EXCLUDED.agent_version
             RETURNING id, (xmax = 0) AS inserted",
        )
        .bind(organization_id)
        .bind(&enrollment.machine_id)
        .bind(&enrollment.hostname)
        .bind(&enrollment.os_id)
        .bind(&enrollment.os_name)
        .bind(&enrollment.agent_version)
        .bind(&enrollment.key_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_error)?;
        let host_id: i64 = row.value("id")?;
        let inserted: bool = row.value("inserted")?;
        let organization = self
            .organization(organization_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organization {organization_id}")))?;
        Ok(EnrolledHost {
            host_id,
            organization,
            re_enrolled: !inserted,
        })
    }

    async fn host_credentials(&self, host_id: i64) -> StoreResult<Option<HostCredentials>> {
        let row = sqlx::query(
            "SELECT id, organization_id, machine_id, key_hash FROM hosts WHERE id = $1",
        )
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.map(|row| {
            Ok(HostCredentials {
                host_id: row.value("id")?,
                organization_id: row.value("organization_id")?,
                machine_id: row.value("machine_id")?,
                key_hash: row.value("key_hash")?,
            })
        })
        .transpose()
    }

    async fn host_state(&self, host_id: i64) -> StoreResult<Option<HostState>> {
        let row = sqlx::query(
            "SELECT inventory_digest, last_scan_at, catalog_revision FROM hosts WHERE id = $1",
        )
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.map(|row| {
            Ok(HostState {
                inventory_digest: row.value("inventory_digest")?,
                last_scan_at: row.value("last_scan_at")?,
                catalog_revision: row.value("catalog_revision")?,
            })
        })
        .transpose()
    }

    async fn record_report(&self, record: ReportRecord) -> StoreResult<RecordOutcome> {
        self.writer.record(record).await
    }

    async fn inventory(&self, digest: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT body FROM inventories WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)
    }

    async fn inventory_count(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM inventories")
            .fetch_one(&self.pool)
            .await
            .map_err(map_error)
    }

    async fn report_count(&self, host_id: i64) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM reports WHERE host_id = $1")
            .bind(host_id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_error)
    }

    async fn hosts_behind_catalog(
        &self,
        revision: i64,
        after_host_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<HostEvaluationInput>> {
        sqlx::query(
            "SELECT id, inventory_digest, evidence FROM hosts
             WHERE id > $1 AND last_scan_at IS NOT NULL AND catalog_revision < $3
             ORDER BY id LIMIT $2",
        )
        .bind(after_host_id)
        .bind(limit)
        .bind(revision)
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(|row| {
            Ok(HostEvaluationInput {
                host_id: row.value("id")?,
                inventory_digest: row.value("inventory_digest")?,
                evidence: row.value("evidence")?,
            })
        })
        .collect()
    }

    async fn apply_evaluation(
        &self,
        host_id: i64,
        findings: Vec<HostFinding>,
        catalog_revision: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut transaction = self.pool.begin().await.map_err(map_error)?;
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT id FROM hosts WHERE id = $1 FOR UPDATE")
                .bind(host_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(map_error)?;
        if locked.is_none() {
            return Err(StoreError::NotFound(format!("host {host_id}")));
        }
        apply_findings(&mut transaction, host_id, &findings, now, "catalog").await?;
        let findings_digest = EvaluatedFindings::new(findings).digest;
        sqlx::query("UPDATE hosts SET catalog_revision = $2, findings_digest = $3 WHERE id = $1")
            .bind(host_id)
            .bind(catalog_revision)
            .bind(findings_digest)
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
        transaction.commit().await.map_err(map_error)
    }

    async fn current_catalog(&self) -> StoreResult<Option<CatalogRevision>> {
        let row = sqlx::query(
            "SELECT revision, overrides FROM catalog_revisions ORDER BY revision DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(map_error)?;
        row.map(|row| {
            Ok(CatalogRevision {
                revision: row.value("revision")?,
                overrides: row.value("overrides")?,
            })
        })
        .transpose()
    }

    async fn save_catalog(&self, overrides: &str, now: Timestamp) -> StoreResult<i64> {
        let mut transaction = self.pool.begin().await.map_err(map_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CATALOG_REVISION_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO catalog_revisions (revision, overrides, created_at)
             SELECT COALESCE(MAX(revision), 0) + 1, $1, $2 FROM catalog_revisions
             RETURNING revision",
        )
        .bind(overrides)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(map_error)?;
        transaction.commit().await.map_err(map_error)?;
        Ok(revision)
    }

    async fn violations(
        &self,
        organization_id: i64,
        include_resolved: bool,
    ) -> StoreResult<Vec<ViolationRow>> {
        let query = format!(
            "{SUBTREE}
             SELECT h.id AS host_id, h.hostname, o.id AS organization_id, o.name AS organization,
                    a.app_id, a.app_name, a.status, a.strength, a.users, a.first_seen,
                    a.last_seen, a.resolved_at, a.evidence
             FROM hosts h
             JOIN organizations o ON o.id = h.organization_id
             CROSS JOIN LATERAL (
                SELECT * FROM host_apps a WHERE a.host_id = h.id AND {VIOLATION}
                  AND ($2 OR a.resolved_at IS NULL)
                OFFSET 0) a
             WHERE h.organization_id = ANY(ARRAY(SELECT id FROM subtree))
             ORDER BY o.name, h.hostname, h.id, a.app_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .bind(include_resolved)
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(|row| {
                let users: String = row.value("users")?;
                Ok(ViolationRow {
                    host_id: row.value("host_id")?,
                    hostname: row.value("hostname")?,
                    organization_id: row.value("organization_id")?,
                    organization: row.value("organization")?,
                    app_id: row.value("app_id")?,
                    app_name: row.value("app_name")?,
                    status: row.value("status")?,
                    strength: row.value("strength")?,
                    users: users_of(&users),
                    first_seen: row.value("first_seen")?,
                    last_seen: row.value("last_seen")?,
                    resolved_at: row.value("resolved_at")?,
                    evidence: row.value("evidence")?,
                })
            })
            .collect()
    }

    /// One query for the organization and all its children: each organization under
    /// `organization_id` is labelled with the child it lies under (or the organization
    /// itself), hosts are counted per organization (in the order of the covering index
    /// `hosts_organization_counters`, from the hosts' own counters) and the counts
    /// added up per label; the organization's own row is the sum.
    async fn coverage(&self, organization_id: i64, since: Timestamp) -> StoreResult<Vec<Coverage>> {
        let Some(organization) = self.organization(organization_id).await? else {
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
                SELECT s.top, SUM(o.expected_pcs)::BIGINT AS expected_pcs
                FROM scope s JOIN organizations o ON o.id = s.id GROUP BY s.top),
             per_organization AS (
                SELECT h.organization_id, COUNT(*) AS enrolled,
                       SUM(CASE WHEN h.last_seen_at >= $2 THEN 1 ELSE 0 END) AS reporting,
                       SUM(CASE WHEN h.last_seen_at >= $2 AND h.open_banned > 0 THEN 1 ELSE 0 END)
                          AS with_banned,
                       SUM(CASE WHEN h.last_seen_at >= $2 AND h.open_approved > 0 THEN 1 ELSE 0 END)
                          AS with_approved
                FROM hosts h WHERE h.organization_id IN (SELECT id FROM scope)
                GROUP BY h.organization_id),
             host_counts AS (
                SELECT s.top, SUM(c.enrolled)::BIGINT AS enrolled, SUM(c.reporting)::BIGINT AS reporting,
                       SUM(c.with_banned)::BIGINT AS with_banned,
                       SUM(c.with_approved)::BIGINT AS with_approved
                FROM scope s JOIN per_organization c ON c.organization_id = s.id GROUP BY s.top)
             SELECT o.id, o.name, COALESCE(e.expected_pcs, 0) AS expected_pcs,
                    COALESCE(c.enrolled, 0) AS enrolled, COALESCE(c.reporting, 0) AS reporting,
                    COALESCE(c.with_banned, 0) AS with_banned,
                    COALESCE(c.with_approved, 0) AS with_approved
             FROM organizations o
             LEFT JOIN expected e ON e.top = o.id
             LEFT JOIN host_counts c ON c.top = o.id
             WHERE o.parent_id = $1 OR o.id = $1";
        let mut per_label: Vec<(i64, String, [i64; 5])> = sqlx::query(query)
            .bind(organization_id)
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(|row| {
                Ok((
                    row.value("id")?,
                    row.value("name")?,
                    [
                        row.value("expected_pcs")?,
                        row.value("enrolled")?,
                        row.value("reporting")?,
                        row.value("with_banned")?,
                        row.value("with_approved")?,
                    ],
                ))
            })
            .collect::<StoreResult<_>>()?;
        let coverage = |id: i64, name: String, counts: [i64; 5]| Coverage {
            organization_id: id,
            organization: name,
            expected_pcs: counts[0],
            enrolled: counts[1],
            reporting: counts[2],
            silent: counts[1] - counts[2],
            with_banned: counts[3],
            with_approved: counts[4],
        };
        let mut total = [0i64; 5];
        for (_, _, counts) in &per_label {
            for (sum, count) in total.iter_mut().zip(counts) {
                *sum += count;
            }
        }
        per_label.retain(|(id, _, _)| *id != organization_id);
        per_label.sort_by(|left, right| (&left.1, left.0).cmp(&(&right.1, right.0)));
        let mut rows = Vec::with_capacity(per_label.len() + 1);
        rows.push(coverage(organization.id, organization.name, total));
        for (id, name, counts) in per_label {
            rows.push(coverage(id, name, counts));
        }
        Ok(rows)
    }

    async fn silent_hosts(
        &self,
        organization_id: i64,
        since: Timestamp,
    ) -> StoreResult<Vec<SilentHost>> {
        let query = format!(
            "{SUBTREE}
             SELECT h.id, h.hostname, o.id AS organization_id, o.name AS organization,
                    h.last_seen_at
             FROM hosts h JOIN organizations o ON o.id = h.organization_id
             WHERE h.organization_id = ANY(ARRAY(SELECT id FROM subtree))
               AND (h.last_seen_at IS NULL OR h.last_seen_at < $2)
             ORDER BY o.name, h.hostname, h.id"
        );
        sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?
            .iter()
            .map(|row| {
                Ok(SilentHost {
                    host_id: row.value("id")?,
                    hostname: row.value("hostname")?,
                    organization_id: row.value("organization_id")?,
                    organization: row.value("organization")?,
                    last_seen_at: row.value("last_seen_at")?,
                })
            })
            .collect()
    }

    async fn finding_events(&self, host_id: i64) -> StoreResult<Vec<FindingEvent>> {
        sqlx::query(
            "SELECT host_id, app_id, event, at, cause FROM finding_events
             WHERE host_id = $1 ORDER BY at, id",
        )
        .bind(host_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(|row| {
            Ok(FindingEvent {
                host_id: row.value("host_id")?,
                app_id: row.value("app_id")?,
                event: row.value("event")?,
                at: row.value("at")?,
                cause: row.value("cause")?,
            })
        })
        .collect()
    }

    async fn prune_reports(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM reports WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>> {
        let mut connection = PgConnection::connect_with(&self.options)
            .await
            .map_err(map_error)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(job_lock_key(name))
            .fetch_one(&mut connection)
            .await
            .map_err(map_error)?;
        if !locked {
            let _ = connection.close().await;
            return Ok(None);
        }
        Ok(Some(JobLease::new(name, LockConnection(Some(connection)))))
    }

    async fn create_user(&self, new: NewUser, now: Timestamp) -> StoreResult<User> {
        dashboard::create_user(&self.pool, new, now).await
    }
    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        dashboard::user(&self.pool, id).await
    }
    async fn user_credentials(&self, login: &str) -> StoreResult<Option<UserCredentials>> {
        dashboard::user_credentials(&self.pool, login).await
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        dashboard::users(&self.pool).await
    }
    async fn update_user(&self, id: i64, change: UserChange, now: Timestamp) -> StoreResult<()> {
        dashboard::update_user(&self.pool, id, change, now).await
    }
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        dashboard::create_session(&self.pool, session).await
    }
    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        dashboard::session(&self.pool, token_hash, now).await
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        dashboard::delete_session(&self.pool, token_hash).await
    }
    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<ApiTokenInfo> {
        dashboard::create_api_token(&self.pool, user_id, name, token_hash, now).await
    }
    async fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenInfo>> {
        dashboard::api_tokens(&self.pool, user_id).await
    }
    async fn revoke_api_token(&self, user_id: i64, id: i64, now: Timestamp) -> StoreResult<()> {
        dashboard::revoke_api_token(&self.pool, user_id, id, now).await
    }
    async fn api_token(&self, id: i64) -> StoreResult<Option<ApiTokenCredentials>> {
        dashboard::api_token(&self.pool, id).await
    }
    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        dashboard::record_audit(&self.pool, entry).await
    }
    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        dashboard::audit_log(&self.pool, limit).await
    }
    async fn organization_counts(
        &self,
        reporting_since: Timestamp,
        silent_before: Timestamp,
    ) -> StoreResult<Vec<OrganizationCounts>> {
        dashboard::organization_counts(&self.pool, reporting_since, silent_before).await
    }
    async fn host_summaries(&self, organization_id: i64) -> StoreResult<Vec<HostSummary>> {
        dashboard::host_summaries(&self.pool, organization_id).await
    }
    async fn host_detail(&self, host_id: i64) -> StoreResult<Option<HostDetail>> {
        dashboard::host_detail(&self.pool, host_id).await
    }
    async fn host_apps(&self, host_id: i64) -> StoreResult<Vec<HostApp>> {
        dashboard::host_apps(&self.pool, host_id).await
    }
    async fn mark_handled(&self, mark: HandledMark) -> StoreResult<()> {
        dashboard::mark_handled(&self.pool, mark).await
    }
    async fn handled_marks(&self, organization_id: i64) -> StoreResult<Vec<HandledMark>> {
        dashboard::handled_marks(&self.pool, organization_id).await
    }
    async fn freeze_weekly_figures(
        &self,
        figures: &[WeeklyFigures],
        now: Timestamp,
    ) -> StoreResult<u64> {
        dashboard::freeze_weekly_figures(&self.pool, figures, now).await
    }
    async fn weekly_figures_of_week(&self, week: &str) -> StoreResult<Vec<WeeklyFigures>> {
        dashboard::weekly_figures_of_week(&self.pool, week).await
    }
    async fn weekly_figures_of_organization(
        &self,
        organization_id: i64,
        from_week: &str,
        to_week: &str,
    ) -> StoreResult<Vec<WeeklyFigures>> {
        dashboard::weekly_figures_of_organization(&self.pool, organization_id, from_week, to_week)
            .await
    }
}
