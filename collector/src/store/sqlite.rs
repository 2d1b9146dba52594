//! The embedded default: one SQLite file in WAL mode. Reports are written by one
//! writer task that commits them in batches (group commit), so thousands of small
//! check-ins a second cost a few transactions, and every report is acknowledged only
//! after its batch committed.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[path = "sqlite_dashboard.rs"]
mod dashboard;

use super::{
    ApiTokenCredentials, ApiTokenInfo, AuditEntry, HandledMark, HostApp, HostDetail, HostSummary,
    NewAuditEntry, NewSession, NewUser, OrganizationCounts, Session, User, UserChange,
    UserCredentials, WeeklyFigures,
};
use super::{
    CatalogRevision, Coverage, EnrolledHost, Enrollment, EvaluatedFindings, FindingEvent,
    HostBefore, HostCredentials, HostEvaluationInput, HostFinding, HostState, JobLease,
    NewOrganization, NewSecret, Organization, RecordOutcome, ReportRecord, SecretInfo, SilentHost,
    Store, StoreError, StoreResult, Timestamp, ViolationRow,
};

/// The most reports committed in one transaction.
const BATCH_LIMIT: usize = 256;
/// A connection that commits checkpoints the write-ahead log itself once it is this
/// many pages long (16 MiB of 4 KiB pages; SQLite's default is 1,000), so that the log
/// starts over (see [`checkpoint_wal`], which does most of the copying).
const WRITER_CHECKPOINT_PAGES: u32 = 4_096;
/// How long the checkpointer lets commits gather before copying them.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);
const VIOLATION: &str = "a.status = 'banned' AND a.strength IN ('installed', 'running')";
const APPROVED: &str = "a.status = 'approved' AND a.strength IN ('installed', 'running')";
const SUBTREE: &str = "WITH RECURSIVE subtree(id) AS (
        SELECT id FROM organizations WHERE id = $1
        UNION ALL
        SELECT o.id FROM organizations o JOIN subtree s ON o.parent_id = s.id)";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<WriteJob>,
    /// Background jobs running now (see [`Store::try_lock_job`]).
    jobs: RunningJobs,
}

/// Names of the background jobs running now.
type RunningJobs = Arc<Mutex<HashSet<String>>>;

/// The running jobs of a database file, shared by every store of this process that
/// opened it (one collector process serves a SQLite file).
fn running_jobs_of(file: &Path) -> RunningJobs {
    static BY_FILE: OnceLock<Mutex<HashMap<PathBuf, RunningJobs>>> = OnceLock::new();
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    match BY_FILE.get_or_init(Mutex::default).lock() {
        Ok(mut by_file) => by_file.entry(file).or_default().clone(),
        Err(_) => Arc::default(),
    }
}

/// Removes a job's name from the running set when its lease is dropped.
#[derive(Debug)]
struct RunningJob {
    name: String,
    jobs: RunningJobs,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.remove(&self.name);
        }
    }
}

#[derive(Debug)]
struct WriteJob {
    record: ReportRecord,
    reply: oneshot::Sender<StoreResult<RecordOutcome>>,
}

impl SqliteStore {
    /// Opens (creating it when missing) the database file and brings its schema up
    /// to date. Must be called inside a tokio runtime.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        SqliteStore::open_with(options).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn open_url(url: &str) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("database URL: {error}")))?
            .create_if_missing(true);
        SqliteStore::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        let file = options.get_filename().to_path_buf();
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("cache_size", "-8000")
            .pragma("temp_store", "memory")
            // When the write-ahead log starts over after a checkpoint, it is cut back
            // to this size.
            .pragma("journal_size_limit", "67108864")
            // Most checkpointing is the background task's ([`checkpoint_wal`]), off
            // the report writer's path.
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(map_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Database(format!("migrating the schema: {error}")))?;
        let (writer, queue) = mpsc::channel(4 * BATCH_LIMIT);
        // The writer tells the checkpointer of each commit; a full channel means it
        // has been told already. The checkpointer stops when the writer does.
        let (committed, commits) = mpsc::channel(1);
        tokio::spawn(write_reports(pool.clone(), queue, committed));
        tokio::spawn(checkpoint_wal(pool.clone(), commits));
        // After connecting: the file exists now, so its canonical path is known.
        let jobs = running_jobs_of(&file);
        Ok(SqliteStore { pool, writer, jobs })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for copying the database elsewhere (`migrate`).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Reads a column, with the store's error.
trait ColumnValue {
    fn value<'r, T, I>(&'r self, index: I) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        I: sqlx::ColumnIndex<SqliteRow>;
}

impl ColumnValue for SqliteRow {
    fn value<'r, T, I>(&'r self, index: I) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        I: sqlx::ColumnIndex<SqliteRow>,
    {
        self.try_get(index).map_err(map_error)
    }
}

/// Turns database errors into the store's: locked, busy, full or I/O problems are
/// `Unavailable` (the collector answers 503 and the agent retries).
fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .unwrap_or(0);
            // SQLITE_BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY (primary codes).
            if matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14) {
                StoreError::Unavailable(database.message().to_string())
            } else {
                StoreError::Database(database.message().to_string())
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Database(error.to_string()),
    }
}

/// Copies committed pages from the write-ahead log into the database file, on its own
/// connection and so on another thread than the report writer's: done by the
/// committing connection alone (SQLite's default), a checkpoint's copying and syncing
/// took a third of the writer's time under a stream of check-ins.
///
/// Passive checkpoints never wait for the writer, but the log only starts over when a
/// transaction begins with every page of it copied, which a steady stream of commits
/// rarely allows: with this task alone, the log grew past 64 MiB in the contract test.
/// So the committing connection still checkpoints once the log is
/// [`WRITER_CHECKPOINT_PAGES`] long; by then this task has copied nearly all of it,
/// the writer's checkpoint copies the rest and syncs, and the log starts over.
async fn checkpoint_wal(pool: SqlitePool, mut commits: mpsc::Receiver<()>) {
    while commits.recv().await.is_some() {
        // Lets a few commits gather, so a burst costs one checkpoint and one sync.
        tokio::time::sleep(CHECKPOINT_PAUSE).await;
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) => {}
            // The pool is closed (the store was dropped) or the database is gone.
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => tracing::warn!("checkpointing the write-ahead log: {error}"),
        }
    }
}

async fn write_reports(
    pool: SqlitePool,
    mut jobs: mpsc::Receiver<WriteJob>,
    committed: mpsc::Sender<()>,
) {
    // Inventories this writer has committed: a lab of identical PCs sends the same
    // one many times, and its body need not travel to SQLite again.
    let mut known_inventories: HashSet<String> = HashSet::new();
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_LIMIT {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let records: Vec<&ReportRecord> = batch.iter().map(|job| &job.record).collect();
        let result = commit_batch(&pool, &records, &known_inventories).await;
        let _ = committed.try_send(());
        match result {
            Ok(outcomes) => {
                if known_inventories.len() > 200_000 {
                    known_inventories.clear();
                }
                for (record, outcome) in records.iter().zip(&outcomes) {
                    if outcome.is_ok() && record.inventory.is_some() {
                        known_inventories.insert(record.inventory_digest.clone());
                    }
                }
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Commits a batch in one transaction. The common case, a report that changes no
/// finding, costs a handful of statements for the whole batch; reports that change
/// findings are applied one by one inside the same transaction. If anything but an
/// unavailable database fails, the batch is rolled back and each report is committed
/// alone, so one bad report fails alone.
async fn commit_batch(
    pool: &SqlitePool,
    records: &[&ReportRecord],
    known_inventories: &HashSet<String>,
) -> StoreResult<Vec<StoreResult<RecordOutcome>>> {
    let mut connection = pool.acquire().await.map_err(map_error)?;
    let connection: &mut SqliteConnection = &mut connection;
    let batch = in_transaction(connection, async |connection| {
        apply_batch(connection, records, known_inventories).await
    })
    .await;
    match batch {
        Ok(outcomes) => Ok(outcomes),
        Err(error @ StoreError::Unavailable(_)) => Err(error),
        Err(_) => {
            let mut outcomes = Vec::with_capacity(records.len());
            for record in records {
                outcomes.push(
                    in_transaction(connection, async |connection| {
                        apply_report(connection, record, known_inventories).await
                    })
                    .await,
                );
            }
            Ok(outcomes)
        }
    }
}

async fn in_transaction<T>(
    connection: &mut SqliteConnection,
    work: impl AsyncFnOnce(&mut SqliteConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
        .map_err(map_error)?;
    match work(&mut *connection).await {
        Ok(value) => match sqlx::query("COMMIT").execute(&mut *connection).await {
            Ok(_) => Ok(value),
            Err(error) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                Err(map_error(error))
            }
        },
        Err(error) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            Err(error)
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

async fn apply_batch(
    connection: &mut SqliteConnection,
    records: &[&ReportRecord],
    known_inventories: &HashSet<String>,
) -> StoreResult<Vec<StoreResult<RecordOutcome>>> {
    let duplicate = RecordOutcome {
        duplicate: true,
        stale: false,
    };
    let fresh = RecordOutcome {
        duplicate: false,
        stale: false,
    };
    // 1. Store the report ids; the ones that were already there are duplicates.
    let mut first_of_id: HashMap<&str, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        first_of_id
            .entry(record.report_id.as_str())
            .or_insert(index);
    }
    // Each batch statement takes its rows as one JSON parameter, so its SQL text never
    // changes and SQLite prepares it once.
    let rows: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .filter(|(index, record)| first_of_id.get(record.report_id.as_str()) == Some(index))
        .map(|(_, record)| {
            serde_json::json!([
                record.report_id,
                record.host_id,
                record.received_at,
                record.scanned_at,
                report_kind(record),
                record.scan_errors
            ])
        })
        .collect();
    let inserted: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5
         FROM json_each($1) WHERE true
         ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .fetch_all(&mut *connection)
    .await
    .map_err(map_error)?
    .into_iter()
    .collect();
    let new: Vec<usize> = (0..records.len())
        .filter(|index| {
            let record = records[*index];
            first_of_id.get(record.report_id.as_str()) == Some(index)
                && inserted.contains(&record.report_id)
        })
        .collect();
    let mut outcomes: Vec<StoreResult<RecordOutcome>> =
        records.iter().map(|_| Ok(duplicate)).collect();
    if new.is_empty() {
        return Ok(outcomes);
    }

    // 2. The hosts' state, to tell reports that change nothing from the rest.
    let host_ids: Vec<i64> = new.iter().map(|index| records[*index].host_id).collect();
    let hosts: HashMap<i64, HostBefore> = sqlx::query(
        "SELECT id, last_scan_at, findings_digest FROM hosts
         WHERE id IN (SELECT value FROM json_each($1))",
    )
    .bind(serde_json::to_string(&host_ids).unwrap_or_default())
    .fetch_all(&mut *connection)
    .await
    .map_err(map_error)?
    .iter()
    .map(|row| {
        let host = HostBefore {
            last_scan_at: row.value(1)?,
            findings_digest: row.value(2)?,
        };
        Ok((row.value::<i64, _>(0)?, host))
    })
    .collect::<StoreResult<_>>()?;
    let mut reports_per_host: HashMap<i64, usize> = HashMap::new();
    for index in &new {
        *reports_per_host.entry(records[*index].host_id).or_default() += 1;
    }
    let mut unchanged: Vec<(&ReportRecord, Option<String>)> = Vec::new();
    let mut one_by_one: Vec<usize> = Vec::new();
    for index in new {
        let record = records[index];
        let Some(host) = hosts.get(&record.host_id) else {
            return Err(StoreError::NotFound(format!("host {}", record.host_id)));
        };
        let digest = record
            .findings
            .as_ref()
            .map(|findings| findings.digest.clone());
        let needs_inventory =
            record.inventory.is_some() && !known_inventories.contains(&record.inventory_digest);
        if !record.only_sees_again(host) || needs_inventory || reports_per_host[&record.host_id] > 1
        {
            one_by_one.push(index);
        } else {
            unchanged.push((record, digest));
            outcomes[index] = Ok(fresh);
        }
    }

    // 3. Reports that change nothing: one statement for the hosts, one for their open
    // findings.
    if !unchanged.is_empty() {
        let rows: Vec<serde_json::Value> = unchanged
            .iter()
            .map(|(record, digest)| {
                serde_json::json!([
                    record.host_id,
                    record.received_at,
                    record.hostname,
                    record.os_id,
                    record.os_name,
                    record.agent_version,
                    record.scanned_at,
                    digest.is_some(),
                    record.inventory_digest,
                    record.evidence,
                    record.catalog_revision
                ])
            })
            .collect();
        sqlx::query(
            "WITH v AS (
                SELECT value->>0 AS id, value->>1 AS received_at, value->>2 AS hostname,
                       value->>3 AS os_id, value->>4 AS os_name, value->>5 AS agent_version,
                       value->>6 AS scanned_at, value->>7 AS evaluated,
                       value->>8 AS inventory_digest, value->>9 AS evidence,
                       value->>10 AS catalog_revision
                FROM json_each($1))
             UPDATE hosts SET
                last_seen_at = MAX(COALESCE(hosts.last_seen_at, 0), v.received_at),
                hostname = v.hostname, os_id = v.os_id, os_name = v.os_name,
                agent_version = v.agent_version, last_scan_at = v.scanned_at,
                inventory_digest = CASE WHEN v.evaluated THEN v.inventory_digest
                                   ELSE hosts.inventory_digest END,
                evidence = CASE WHEN v.evaluated THEN v.evidence ELSE hosts.evidence END,
                catalog_revision = CASE WHEN v.evaluated THEN v.catalog_revision
                                   ELSE hosts.catalog_revision END
             FROM v WHERE hosts.id = v.id",
        )
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *connection)
        .await
        .map_err(map_error)?;
        let seen: Vec<(i64, Timestamp)> = unchanged
            .iter()
            .map(|(record, _)| (record.host_id, record.scanned_at))
            .collect();
        sqlx::query(
            "WITH v AS (SELECT value->>0 AS host_id, value->>1 AS seen FROM json_each($1))
             UPDATE host_apps SET last_seen = MAX(host_apps.last_seen, v.seen)
             FROM v WHERE host_apps.host_id = v.host_id AND host_apps.resolved_at IS NULL",
        )
        .bind(serde_json::to_string(&seen).unwrap_or_default())
        .execute(&mut *connection)
        .await
        .map_err(map_error)?;
    }

    // 4. The rest, one by one, in arrival order.
    for index in one_by_one {
        outcomes[index] =
            Ok(apply_inserted_report(connection, records[index], known_inventories).await?);
    }
    Ok(outcomes)
}

/// Stores one report: its id, then its effect on the host.
async fn apply_report(
    connection: &mut SqliteConnection,
    record: &ReportRecord,
    known_inventories: &HashSet<String>,
) -> StoreResult<RecordOutcome> {
    let inserted = sqlx::query(
        "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM hosts WHERE id = $2)
         ON CONFLICT (report_id) DO NOTHING",
    )
    .bind(&record.report_id)
    .bind(record.host_id)
    .bind(record.received_at)
    .bind(record.scanned_at)
    .bind(report_kind(record))
    .bind(record.scan_errors)
    .execute(&mut *connection)
    .await
    .map_err(map_error)?;
    if inserted.rows_affected() == 0 {
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM hosts WHERE id = $1")
            .bind(record.host_id)
            .fetch_optional(&mut *connection)
            .await
            .map_err(map_error)?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("host {}", record.host_id)));
        }
        return Ok(RecordOutcome {
            duplicate: true,
            stale: false,
        });
    }
    apply_inserted_report(connection, record, known_inventories).await
}

/// The effect of a report whose id was just stored.
async fn apply_inserted_report(
    connection: &mut SqliteConnection,
    record: &ReportRecord,
    known_inventories: &HashSet<String>,
) -> StoreResult<RecordOutcome> {
    let host = sqlx::query("SELECT last_scan_at, findings_digest FROM hosts WHERE id = $1")
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
    if let Some((body, item_count)) = &record.inventory
        && !known_inventories.contains(&record.inventory_digest)
    {
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
        sqlx::query("UPDATE reports SET kind = 'stale' WHERE report_id = $1")
            .bind(&record.report_id)
            .execute(&mut *connection)
            .await
            .map_err(map_error)?;
        sqlx::query(
            "UPDATE hosts SET last_seen_at = MAX(COALESCE(last_seen_at, 0), $2) WHERE id = $1",
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
        "UPDATE hosts SET last_seen_at = MAX(COALESCE(last_seen_at, 0), $2), hostname = $3,
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
                "UPDATE host_apps SET last_seen = MAX(last_seen, $2)
                 WHERE host_id = $1 AND resolved_at IS NULL",
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

/// Brings `host_apps` in line with `findings` as of `at`: new applications open,
/// applications that came back reopen, missing ones are resolved; each change is an
/// event. The host's `open_banned`/`open_approved` counters are recounted.
async fn apply_findings(
    connection: &mut SqliteConnection,
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
            .into_iter()
            .filter_map(|row| Some((row.try_get(0).ok()?, row.try_get(1).ok()?)))
            .collect();
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
                     last_seen = CASE WHEN $9 THEN $8 ELSE MAX(last_seen, $8) END,
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
    connection: &mut SqliteConnection,
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

fn organization_of(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Organization> {
    Ok(Organization {
        id: row.value("id")?,
        parent_id: row.value("parent_id")?,
        name: row.value("name")?,
        kind: row.value("kind")?,
        expected_pcs: row.value("expected_pcs")?,
        time_zone: row.value("time_zone")?,
    })
}

fn secret_of(row: &sqlx::sqlite::SqliteRow) -> StoreResult<SecretInfo> {
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
impl Store for SqliteStore {
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
        let mut transaction = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_error)?;
        let secret = sqlx::query(
            "SELECT organization_id, secret_hash, expires_at, revoked_at
             FROM enrollment_secrets WHERE id = $1",
        )
        .bind(enrollment.secret_id)
        .fetch_optional(&mut *transaction)
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
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM hosts WHERE organization_id = $1 AND machine_id = $2",
        )
        .bind(organization_id)
        .bind(&enrollment.machine_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(map_error)?;
        let host_id = match existing {
            Some(host_id) => {
                sqlx::query(
                    "UPDATE hosts SET key_hash = $2, hostname = $3, os_id = $4, os_name = $5,
                     agent_version = $6 WHERE id = $1",
                )
                .bind(host_id)
                .bind(&enrollment.key_hash)
                .bind(&enrollment.hostname)
                .bind(&enrollment.os_id)
                .bind(&enrollment.os_name)
                .bind(&enrollment.agent_version)
                .execute(&mut *transaction)
                .await
                .map_err(map_error)?;
                host_id
            }
            None => sqlx::query_scalar(
                "INSERT INTO hosts (organization_id, machine_id, hostname, os_id, os_name,
                 agent_version, key_hash, enrolled_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(organization_id)
            .bind(&enrollment.machine_id)
            .bind(&enrollment.hostname)
            .bind(&enrollment.os_id)
            .bind(&enrollment.os_name)
            .bind(&enrollment.agent_version)
            .bind(&enrollment.key_hash)
            .bind(now)
            .fetch_one(&mut *transaction)
            .await
            .map_err(map_error)?,
        };
        transaction.commit().await.map_err(map_error)?;
        let organization = self
            .organization(organization_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organization {organization_id}")))?;
        Ok(EnrolledHost {
            host_id,
            organization,
            re_enrolled: existing.is_some(),
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
        let (reply, outcome) = oneshot::channel();
        self.writer
            .send(WriteJob { record, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the report writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the report writer has stopped".into()))?
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
        let mut transaction = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_error)?;
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
        sqlx::query_scalar(
            "INSERT INTO catalog_revisions (revision, overrides, created_at)
             SELECT COALESCE(MAX(revision), 0) + 1, $1, $2 FROM catalog_revisions
             RETURNING revision",
        )
        .bind(overrides)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_error)
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
             FROM host_apps a
             JOIN hosts h ON h.id = a.host_id
             JOIN organizations o ON o.id = h.organization_id
             WHERE h.organization_id IN (SELECT id FROM subtree) AND {VIOLATION}
               AND ($2 OR a.resolved_at IS NULL)
             ORDER BY o.name, h.hostname, h.id, a.app_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(query.clone()))
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
                SELECT s.top, SUM(o.expected_pcs) AS expected_pcs
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
                SELECT s.top, SUM(c.enrolled) AS enrolled, SUM(c.reporting) AS reporting,
                       SUM(c.with_banned) AS with_banned,
                       SUM(c.with_approved) AS with_approved
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
             WHERE h.organization_id IN (SELECT id FROM subtree)
               AND (h.last_seen_at IS NULL OR h.last_seen_at < $2)
             ORDER BY o.name, h.hostname, h.id"
        );
        sqlx::query(sqlx::AssertSqlSafe(query.clone()))
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

    async fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>> {
        let mut jobs = self
            .jobs
            .lock()
            .map_err(|_| StoreError::Database("the job set is poisoned".into()))?;
        if !jobs.insert(name.to_string()) {
            return Ok(None);
        }
        Ok(Some(JobLease::new(
            name,
            RunningJob {
                name: name.to_string(),
                jobs: self.jobs.clone(),
            },
        )))
    }
}
