//! PostgreSQL: one database for a whole region, shared by any number of collector
//! processes behind a load balancer. What only PostgreSQL does: connecting (a URL,
//! the user when the URL names none, a pool size), which error codes may pass, the
//! report writers (a few tasks that commit batches, hosts locked in id order, arrays
//! for the batch's check-ins), and job leases as session advisory locks.
//!
//! Reports of one host apply in order whichever process received them: a batch first
//! locks its hosts' rows (`SELECT ... FOR UPDATE`); the report id's primary key stores
//! a report once however many collectors receive it.

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

use super::{Dialect, ReportWriter, WriteJob, gather_batch};
use crate::store::sql::Connection;
use crate::store::sql::activity;
use crate::store::sql::reports::{self, report_kind};
use crate::store::{JobLease, RecordOutcome, ReportRecord, StoreError, StoreResult};

impl Dialect for sqlx::Postgres {
    const GREATEST: &'static str = "GREATEST";
    const LEAST: &'static str = "LEAST";
    const IN_SUBTREE: &'static str = "= ANY(ARRAY(SELECT id FROM subtree))";
    const IN_ID_LIST: &'static str =
        "= ANY(ARRAY(SELECT CAST(jsonb_array_elements_text(CAST($1 AS jsonb)) AS BIGINT)))";
    const HOSTS_WITH_OPEN_VIOLATIONS: &'static str = "hosts h";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BYTEWISE: &'static str = " COLLATE \"C\"";
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// An advisory lock for this transaction; job leases use keys derived from their
    /// names ([`job_lock_key`]).
    const CATALOG_NUMBERING_LOCK: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(x'53564b4100000001'::bigint)");
    const ANALYZE_WEEK_LISTS: Option<&'static str> = Some("ANALYZE weekly_list_hosts");

    fn findings_of_each_host(condition: &str) -> String {
        format!(
            "CROSS JOIN LATERAL (
                SELECT * FROM host_apps a WHERE a.host_id = h.id AND {condition} OFFSET 0) a"
        )
    }

    fn may_pass(error: &dyn DatabaseError) -> bool {
        let code = error.code().unwrap_or_default();
        // 08: connection exception; 53: insufficient resources; 57P: operator
        // intervention (shutdown); 40001/40P01: serialization failure, deadlock.
        code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == "40001"
            || code == "40P01"
    }
}

/// Reports in one transaction at most. The hosts of a batch stay locked until it
/// commits, so this also bounds how long another collector's report of one of them
/// waits.
const BATCH_LIMIT: usize = 64;

/// The pool, the report writers and how to open a connection of one's own (for a
/// job's advisory lock).
#[derive(Debug, Clone)]
pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
    options: PgConnectOptions,
    pub(crate) writer: ReportWriter,
    /// Whether the worklist search's trigram index exists (migration 0020 makes it
    /// only where `pg_trgm` could be created).
    pub(crate) finding_search_index: bool,
}

impl PgBackend {
    /// Connects with up to `pool_size` connections and brings the schema up to date
    /// (migrations run under PostgreSQL's own lock, so collectors starting together
    /// migrate once).
    pub(crate) async fn open(url: &str, pool_size: u32) -> StoreResult<PgBackend> {
        let options = with_planner_settings(
            connect_options(url)
                .map_err(|error| StoreError::Invalid(format!("database URL: {error}")))?
                .application_name("sverka-collector"),
        );
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| {
                StoreError::Database(format!("migrating the schema: {error}").into())
            })?;
        let finding_search_index = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes
                WHERE indexname = 'host_apps_search_trigrams' AND schemaname = current_schema())",
        )
        .fetch_one(&pool)
        .await?;
        // A quarter of the connections commit reports; the rest serve everything else
        // (host key checks, the dashboard, background jobs).
        let writer = start_writers(&pool, (pool_size / 4).max(1) as usize);
        Ok(PgBackend {
            pool,
            options,
            writer,
            finding_search_index,
        })
    }

    /// A session advisory lock on a connection of its own: released when the lease
    /// is dropped, and when the process dies.
    pub(crate) async fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>> {
        let mut connection = PgConnection::connect_with(&self.options).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(job_lock_key(name))
            .fetch_one(&mut connection)
            .await?;
        if !locked {
            let _ = connection.close().await;
            return Ok(None);
        }
        Ok(Some(JobLease::new(name, LockConnection(Some(connection)))))
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

/// What the collector's connections tell PostgreSQL's planner, unless the URL's
/// `options` already sets the same parameter (a database administrator's choice wins):
/// - `jit = off`: every query here runs for milliseconds, while compiling one costs
///   250–300 ms. The week's use query (an `OR EXISTS` subplan) is estimated above the
///   JIT thresholds, so with JIT it took 670 ms instead of 120 (100,000 PCs).
/// - `random_page_cost = 1.1`: the hot tables live in memory or on SSDs, where a
///   random read costs about what a sequential one does. With the default 4 the
///   planner reads `app_use_latest` whole and sorts it on disk instead of walking the
///   index that is already in the count's order (120 ms instead of 35).
pub const PLANNER_SETTINGS: [(&str, &str); 2] = [("jit", "off"), ("random_page_cost", "1.1")];

/// `options` with [`PLANNER_SETTINGS`] added where the URL leaves them unset.
pub fn with_planner_settings(options: PgConnectOptions) -> PgConnectOptions {
    let chosen = options.get_options().unwrap_or_default().to_string();
    let unset: Vec<(&str, &str)> = PLANNER_SETTINGS
        .into_iter()
        .filter(|(name, _)| !sets_parameter(&chosen, name))
        .collect();
    if unset.is_empty() {
        options
    } else {
        options.options(unset)
    }
}

/// Whether a libpq `options` string (`-c name=value`, `-cname=value` or
/// `--name=value`, separated by spaces) sets `name`.
fn sets_parameter(options: &str, name: &str) -> bool {
    options
        .split_whitespace()
        .filter_map(|word| {
            let setting = word
                .strip_prefix("--")
                .or_else(|| word.strip_prefix("-c"))
                .unwrap_or(word);
            setting
                .split_once('=')
                .map(|(key, _)| key.replace('-', "_"))
        })
        .any(|key| key == name)
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

/// The writer tasks. A commit waits for the WAL to reach the disk; one transaction per report made the
/// boot storm wait for one flush per report (about 600 reports/s, bound by commit
/// latency with the cores mostly idle). So a few writer tasks take whatever reports
/// are waiting, up to [`BATCH_LIMIT`], and apply them in one transaction:
///
/// - the hosts of the batch are locked first, in host id order, so two batches (in
///   this process or another collector on the same database) never wait on each other
///   in a cycle;
/// - the reports that only say a host was seen again (most check-ins; see
///   `ReportRecord::only_sees_again`) are then applied together, one statement per
///   table for the whole batch, and every other report exactly as it would be alone
///   (`reports::apply_report`);
/// - if anything but an unavailable database fails, the batch is rolled back and each
///   report is committed alone, so one bad report fails alone;
/// - a report is acknowledged only after its batch committed.
fn start_writers(pool: &PgPool, writers: usize) -> ReportWriter {
    let (writer, queue) = ReportWriter::channel(4 * BATCH_LIMIT);
    let queue = Arc::new(Mutex::new(queue));
    for _ in 0..writers.max(1) {
        tokio::spawn(write_reports(pool.clone(), Arc::clone(&queue)));
    }
    writer
}

/// One writer: takes the reports waiting (the queue is shared, one writer takes at a
/// time), commits them, answers each.
async fn write_reports(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<WriteJob>>>) {
    loop {
        let mut batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            gather_batch(first, &mut queue, BATCH_LIMIT)
        };
        // Host id order is the lock order; the sort is stable, so one host's reports
        // keep their arrival order.
        batch.sort_by_key(|job| job.record.host_id);
        let records: Vec<&ReportRecord> = batch.iter().map(|job| &job.record).collect();
        let outcomes = commit_batch(&pool, &records).await;
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// The outcome of each of `records` (sorted by host id).
async fn commit_batch(pool: &PgPool, records: &[&ReportRecord]) -> Vec<StoreResult<RecordOutcome>> {
    match apply_in_one_transaction(pool, records).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(error) if records.len() == 1 || matches!(error, StoreError::Unavailable(_)) => {
            records.iter().map(|_| Err(error.clone())).collect()
        }
        Err(_) => {
            let mut outcomes = Vec::with_capacity(records.len());
            for record in records {
                let alone = apply_in_one_transaction(pool, std::slice::from_ref(record)).await;
                outcomes.push(alone.and_then(|outcome| {
                    outcome.into_iter().next().ok_or_else(|| {
                        StoreError::Database("a report applied alone had no outcome".into())
                    })
                }));
            }
            outcomes
        }
    }
}

/// Applies `records` (sorted by host id) in one transaction: every host locked first,
/// then the batch's inventories stored, then the reports that only say a host was seen
/// again all together, then each other report alone. Any failure rolls the whole batch
/// back.
async fn apply_in_one_transaction(
    pool: &PgPool,
    records: &[&ReportRecord],
) -> StoreResult<Vec<RecordOutcome>> {
    let mut transaction = pool.begin().await?;
    let mut host_ids: Vec<i64> = records.iter().map(|record| record.host_id).collect();
    host_ids.dedup();
    let hosts = reports::hosts_by_id(
        sqlx::query_as(
            "SELECT id, last_scan_at, findings_digest FROM hosts WHERE id = ANY($1)
         ORDER BY id FOR UPDATE",
        )
        .bind(&host_ids)
        .fetch_all(&mut *transaction)
        .await?,
    );
    insert_inventories(&mut transaction, records).await?;

    // A host with several reports in the batch, a report id met twice, or a report
    // that changes something: applied alone, in order, after the rest.
    let mut reports_per_host: HashMap<i64, usize> = HashMap::new();
    for record in records {
        *reports_per_host.entry(record.host_id).or_default() += 1;
    }
    let mut ids_seen: HashSet<(i64, &str)> = HashSet::new();
    let (together, alone): (Vec<usize>, Vec<usize>) = (0..records.len()).partition(|&index| {
        let record = records[index];
        ids_seen.insert((record.host_id, record.report_id.as_str()))
            && reports_per_host[&record.host_id] == 1
            && hosts
                .get(&record.host_id)
                .is_some_and(|host| record.only_sees_again(host))
    });
    let mut outcomes = vec![reports::DUPLICATE; records.len()];
    let fresh = apply_seen_again(&mut transaction, records, &together).await?;
    let mut fresh_records = Vec::new();
    for index in together {
        let record = records[index];
        outcomes[index].duplicate = !fresh.contains(&(record.host_id, record.report_id.clone()));
        if !outcomes[index].duplicate {
            fresh_records.push(record);
        }
    }
    activity::record_uses(Connection::from(&mut *transaction), &fresh_records).await?;
    for index in alone {
        // The batch stored its inventories already.
        outcomes[index] =
            reports::apply_report(Connection::from(&mut *transaction), records[index], false)
                .await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// Applies the reports at `indexes` of `records`, each of which only says its host
/// (locked, with no other report in the batch) was seen again: one statement stores
/// their ids, one updates their hosts, one their open findings. Returns the ids that
/// were new (the rest were received before and change nothing).
async fn apply_seen_again(
    connection: &mut PgConnection,
    records: &[&ReportRecord],
    indexes: &[usize],
) -> StoreResult<HashSet<(i64, String)>> {
    if indexes.is_empty() {
        return Ok(HashSet::new());
    }
    let batch: Vec<&ReportRecord> = indexes.iter().map(|&index| records[index]).collect();
    let column = |value: fn(&ReportRecord) -> i64| -> Vec<i64> {
        batch.iter().map(|record| value(record)).collect()
    };
    let fresh: HashSet<(i64, String)> = sqlx::query_as(
        "INSERT INTO reports (report_id, host_id, received_at, scanned_at, kind, scan_errors)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                              $6::bigint[])
         ON CONFLICT (report_id, host_id) DO NOTHING RETURNING host_id, report_id",
    )
    .bind(
        batch
            .iter()
            .map(|record| record.report_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(|record| record.host_id))
    .bind(column(|record| record.received_at))
    .bind(column(|record| record.scanned_at))
    .bind(
        batch
            .iter()
            .map(|record| report_kind(record))
            .collect::<Vec<_>>(),
    )
    .bind(column(|record| record.scan_errors))
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .collect();
    let batch: Vec<&ReportRecord> = batch
        .into_iter()
        .filter(|record| fresh.contains(&(record.host_id, record.report_id.clone())))
        .collect();
    if batch.is_empty() {
        return Ok(fresh);
    }
    let text = |value: fn(&ReportRecord) -> &str| -> Vec<&str> {
        batch.iter().map(|record| value(record)).collect()
    };
    let column = |value: fn(&ReportRecord) -> i64| -> Vec<i64> {
        batch.iter().map(|record| value(record)).collect()
    };
    sqlx::query(
        "UPDATE hosts h SET last_seen_at = GREATEST(COALESCE(h.last_seen_at, 0), v.received_at),
             hostname = v.hostname, os_id = v.os_id, os_name = v.os_name,
             agent_version = v.agent_version, last_scan_at = v.scanned_at,
             inventory_digest = CASE WHEN v.evaluated THEN v.inventory_digest
                                ELSE h.inventory_digest END,
             evidence = CASE WHEN v.evaluated THEN v.evidence ELSE h.evidence END,
             catalog_revision = CASE WHEN v.evaluated THEN v.catalog_revision
                                ELSE h.catalog_revision END
         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::bool[], $9::text[], $10::text[], $11::bigint[])
              AS v(id, received_at, hostname, os_id, os_name, agent_version, scanned_at,
                   evaluated, inventory_digest, evidence, catalog_revision)
         WHERE h.id = ANY($1) AND h.id = v.id",
    )
    .bind(column(|record| record.host_id))
    .bind(column(|record| record.received_at))
    .bind(text(|record| &record.hostname))
    .bind(text(|record| &record.os_id))
    .bind(text(|record| &record.os_name))
    .bind(text(|record| &record.agent_version))
    .bind(column(|record| record.scanned_at))
    .bind(
        batch
            .iter()
            .map(|record| record.findings.is_some())
            .collect::<Vec<_>>(),
    )
    .bind(text(|record| &record.inventory_digest))
    .bind(text(|record| &record.evidence))
    .bind(column(|record| record.catalog_revision))
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        // `a.host_id = ANY($1)` lets PostgreSQL find the rows through the primary key;
        // without it, knowing nothing of the array's size, it read the whole table
        // (33 ms a batch at 100,000 PCs).
        "UPDATE host_apps a SET last_seen = v.seen
         FROM UNNEST($1::bigint[], $2::bigint[]) AS v(host_id, seen)
         WHERE a.host_id = ANY($1) AND a.host_id = v.host_id AND a.resolved_at IS NULL
           AND a.last_seen < v.seen",
    )
    .bind(column(|record| record.host_id))
    .bind(column(|record| record.scanned_at))
    .execute(&mut *connection)
    .await?;
    Ok(fresh)
}

/// Stores the batch's inventories, in digest order, before any report is applied. Two
/// batches that bring the same new inventory wait on each other's insert; taking
/// those waits in one order (after all host locks, which are taken in one order too)
/// is what keeps two batches from waiting on each other in a cycle.
async fn insert_inventories(
    connection: &mut PgConnection,
    records: &[&ReportRecord],
) -> StoreResult<()> {
    let mut inventories: Vec<(&str, &str, i64, i64)> = records
        .iter()
        .filter_map(|record| {
            let (body, item_count) = record.inventory.as_ref()?;
            Some((
                record.inventory_digest.as_str(),
                body.as_str(),
                *item_count,
                record.received_at,
            ))
        })
        .collect();
    if inventories.is_empty() {
        return Ok(());
    }
    inventories.sort_by_key(|inventory| inventory.0);
    inventories.dedup_by_key(|inventory| inventory.0);
    sqlx::query(
        "INSERT INTO inventories (digest, body, item_count, created_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) ORDER BY 1
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(inventories.iter().map(|row| row.0).collect::<Vec<_>>())
    .bind(inventories.iter().map(|row| row.1).collect::<Vec<_>>())
    .bind(inventories.iter().map(|row| row.2).collect::<Vec<_>>())
    .bind(inventories.iter().map(|row| row.3).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    Ok(())
}
