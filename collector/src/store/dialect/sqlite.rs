//! SQLite, the embedded default: one file in WAL mode, served by one collector
//! process. What only SQLite does: opening the file with its pragmas, which error
//! codes may pass, the report writer (one task that commits reports in batches, with
//! a background checkpointer), and job leases held within the process.

use sqlx::error::DatabaseError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

use super::{Dialect, ReportWriter, WriteJob, gather_batch};
use crate::store::sql::Connection;
use crate::store::sql::activity;
use crate::store::sql::reports::{self, FRESH, host_before, report_kind};
use crate::store::{JobLease, RecordOutcome, ReportRecord, StoreError, StoreResult, Timestamp};

impl Dialect for sqlx::Sqlite {
    const GREATEST: &'static str = "MAX";
    const LEAST: &'static str = "MIN";
    const IN_SUBTREE: &'static str = "IN (SELECT id FROM subtree)";
    const IN_ID_LIST: &'static str = "IN (SELECT value FROM json_each($1))";
    const HOSTS_WITH_OPEN_VIOLATIONS: &'static str =
        "hosts h INDEXED BY hosts_with_open_violations";
    const FOR_UPDATE: &'static str = "";
    const BYTEWISE: &'static str = "";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const CATALOG_NUMBERING_LOCK: Option<&'static str> = None;
    const ANALYZE_WEEK_LISTS: Option<&'static str> = None;

    fn findings_of_each_host(condition: &str) -> String {
        format!("JOIN host_apps a ON a.host_id = h.id AND {condition}")
    }

    fn may_pass(error: &dyn DatabaseError) -> bool {
        let code = error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .unwrap_or(0);
        // SQLITE_BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY (primary codes).
        matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
    }
}

/// The most reports committed in one transaction.
const BATCH_LIMIT: usize = 256;
/// A connection that commits checkpoints the write-ahead log itself once it is this
/// many pages long (16 MiB of 4 KiB pages; SQLite's default is 1,000), so that the log
/// starts over (see [`checkpoint_wal`], which does most of the copying).
const WRITER_CHECKPOINT_PAGES: u32 = 4_096;
/// The most of the database file a connection reads through a memory map (1 GiB of
/// address space; the pages themselves are the operating system's cache, shared).
const MMAP_BYTES: u64 = 1 << 30;
/// How long the checkpointer lets commits gather before copying them.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);

/// The pool, the report writer and the running jobs of one SQLite file.
#[derive(Debug, Clone)]
pub(crate) struct SqliteBackend {
    pub(crate) pool: SqlitePool,
    pub(crate) writer: ReportWriter,
    jobs: RunningJobs,
}

impl SqliteBackend {
    /// Opens (creating it when missing) the database file and brings its schema up to
    /// date.
    pub(crate) async fn open_file(path: &Path) -> StoreResult<SqliteBackend> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        SqliteBackend::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> StoreResult<SqliteBackend> {
        let file = options.get_filename().to_path_buf();
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("cache_size", "-8000")
            // Reads map the file instead of copying each page with a system call: a
            // region's worklist spent two fifths of its time in `pread`. Writes still
            // go through the write-ahead log.
            .pragma("mmap_size", MMAP_BYTES.to_string())
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
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|error| {
                StoreError::Database(format!("migrating the schema: {error}").into())
            })?;
        let writer = start_writer(&pool);
        // After connecting: the file exists now, so its canonical path is known.
        let jobs = running_jobs_of(&file);
        Ok(SqliteBackend { pool, writer, jobs })
    }

    /// One collector process serves a SQLite file, so a job is held within it.
    pub(crate) fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>> {
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

/// Names of the background jobs running now.
type RunningJobs = Arc<Mutex<HashSet<String>>>;

/// The running jobs of a database file, shared by every store of this process that
/// opened it.
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

/// Starts the one writer task and its checkpointer.
fn start_writer(pool: &SqlitePool) -> ReportWriter {
    let (writer, queue) = ReportWriter::channel(4 * BATCH_LIMIT);
    // The writer tells the checkpointer of each commit; a full channel means it has
    // been told already. The checkpointer stops when the writer does.
    let (committed, commits) = mpsc::channel(1);
    tokio::spawn(write_reports(pool.clone(), queue, committed));
    tokio::spawn(checkpoint_wal(pool.clone(), commits));
    writer
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
        let batch = gather_batch(first, &mut jobs, BATCH_LIMIT);
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
                for job in batch {
                    let _ = job.reply.send(Err(error.clone()));
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
    let mut connection = pool.acquire().await?;
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
                let store_inventory = !known_inventories.contains(&record.inventory_digest);
                outcomes.push(
                    in_transaction(connection, async |connection| {
                        reports::apply_report(Connection::from(connection), record, store_inventory)
                            .await
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
        .await?;
    match work(&mut *connection).await {
        Ok(value) => match sqlx::query("COMMIT").execute(&mut *connection).await {
            Ok(_) => Ok(value),
            Err(error) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                Err(error.into())
            }
        },
        Err(error) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            Err(error)
        }
    }
}

async fn apply_batch(
    connection: &mut SqliteConnection,
    records: &[&ReportRecord],
    known_inventories: &HashSet<String>,
) -> StoreResult<Vec<StoreResult<RecordOutcome>>> {
    // 1. Store the report ids; the ones that were already there are duplicates.
    // A report id is unique per host: the key is (host, report id).
    let mut first_of_id: HashMap<(i64, &str), usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        first_of_id
            .entry((record.host_id, record.report_id.as_str()))
            .or_insert(index);
    }
    // Each batch statement takes its rows as one JSON parameter, so its SQL text never
    // changes and SQLite prepares it once.
    let rows: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .filter(|(index, record)| {
            first_of_id.get(&(record.host_id, record.report_id.as_str())) == Some(index)
        })
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
    let inserted: HashSet<(i64, String)> = sqlx::query_as(
        "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5
         FROM json_each($1) WHERE true
         ON CONFLICT (report_id, host_id) DO NOTHING RETURNING host_id, report_id",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .collect();
    let new: Vec<usize> = (0..records.len())
        .filter(|index| {
            let record = records[*index];
            first_of_id.get(&(record.host_id, record.report_id.as_str())) == Some(index)
                && inserted.contains(&(record.host_id, record.report_id.clone()))
        })
        .collect();
    let mut outcomes: Vec<StoreResult<RecordOutcome>> =
        records.iter().map(|_| Ok(reports::DUPLICATE)).collect();
    if new.is_empty() {
        return Ok(outcomes);
    }

    // 2. The hosts' state, to tell reports that change nothing from the rest.
    let host_ids: Vec<i64> = new.iter().map(|index| records[*index].host_id).collect();
    let hosts = reports::hosts_by_id(
        sqlx::query_as(
            "SELECT id, last_scan_at, findings_digest FROM hosts
         WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(serde_json::to_string(&host_ids).unwrap_or_default())
        .fetch_all(&mut *connection)
        .await?,
    );
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
            outcomes[index] = Ok(FRESH);
        }
    }

    // 3. Reports that change nothing: one statement for the hosts, one for their open
    // findings (rows seen later already are left alone).
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
        .await?;
        let seen: Vec<(i64, Timestamp)> = unchanged
            .iter()
            .map(|(record, _)| (record.host_id, record.scanned_at))
            .collect();
        sqlx::query(
            "WITH v AS (SELECT value->>0 AS host_id, value->>1 AS seen FROM json_each($1))
             UPDATE host_apps SET last_seen = v.seen
             FROM v WHERE host_apps.host_id = v.host_id AND host_apps.resolved_at IS NULL
               AND host_apps.last_seen < v.seen",
        )
        .bind(serde_json::to_string(&seen).unwrap_or_default())
        .execute(&mut *connection)
        .await?;
        let records: Vec<&ReportRecord> = unchanged.iter().map(|(record, _)| *record).collect();
        activity::record_uses(Connection::from(&mut *connection), &records).await?;
    }

    // 4. The rest, one by one, in arrival order; their ids are stored already.
    for index in one_by_one {
        let record = records[index];
        let host = host_before(Connection::from(&mut *connection), record.host_id).await?;
        if record.is_stale(&host) {
            sqlx::query("UPDATE reports SET kind = 'stale' WHERE report_id = $1 AND host_id = $2")
                .bind(&record.report_id)
                .bind(record.host_id)
                .execute(&mut *connection)
                .await?;
        }
        let store_inventory = !known_inventories.contains(&record.inventory_digest);
        outcomes[index] = Ok(reports::apply_new_report(
            Connection::from(&mut *connection),
            record,
            &host,
            store_inventory,
        )
        .await?);
    }
    Ok(outcomes)
}
