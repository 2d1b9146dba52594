//! The dialect seam: everything SQLite and PostgreSQL really do differently, in one
//! place. The store's queries and row mappings are written once (`store/sql/`); they
//! take the few SQL fragments that differ from [`Dialect`], and the operations that
//! differ live in this module's two files.
//!
//! | what                        | SQLite                          | PostgreSQL                                   |
//! |-----------------------------|---------------------------------|----------------------------------------------|
//! | the larger of two values    | `MAX(a, b)`                     | `GREATEST(a, b)`                             |
//! | the smaller of two values   | `MIN(a, b)`                     | `LEAST(a, b)`                                |
//! | hosts of a subtree          | `IN (SELECT id FROM subtree)`   | `= ANY(ARRAY(SELECT id FROM subtree))`       |
//! | ids bound as one JSON array | `IN (SELECT value FROM json_each(...))` | `= ANY(ARRAY(... jsonb_array_elements_text))` |
//! | hosts with open violations  | `INDEXED BY` the partial index  | the planner picks it                         |
//! | each host's findings        | a join                          | a `LATERAL` subquery per host (primary key)  |
//! | a row about to be changed   | read (the writer holds the file)| `FOR UPDATE`                                 |
//! | week labels compared        | byte-wise already               | `COLLATE "C"`                                |
//! | a write transaction         | `BEGIN IMMEDIATE`               | `BEGIN`                                      |
//! | numbering catalog revisions | the write transaction's lock    | an advisory transaction lock                 |
//! | errors that may pass (503)  | busy, locked, I/O, full, ...    | connection, resources, shutdown, deadlock    |
//! | opening                     | a file: WAL, pragmas            | a URL: user fallback, pool size              |
//! | planner settings            | none                            | `jit = off`, `random_page_cost = 1.1`        |
//! | the batching report writer  | one task, rows as one JSON text | writer tasks, arrays, hosts locked in order  |
//! | background job leases       | a set per file in this process  | session advisory locks                       |
//!
//! The last two rows are whole operations ([`sqlite`], [`postgres`]); both writers
//! apply a report that changes findings through the same code (`sql/reports.rs`).

pub mod postgres;
pub mod sqlite;

use sqlx::error::DatabaseError;
use tokio::sync::{mpsc, oneshot};

use crate::store::{RecordOutcome, ReportRecord, StoreError, StoreResult};

/// The SQL that differs between the two databases. Implemented by `sqlx::Sqlite` and
/// `sqlx::Postgres`, so a query written once names the fragment as `D::GREATEST`
/// inside [`crate::store::sql`]'s `on_backend!`.
pub trait Dialect: sqlx::Database {
    /// The larger of two values, as a function name: `GREATEST(a, b)`.
    const GREATEST: &'static str;
    /// The smaller of two values, as a function name: `LEAST(a, b)`.
    const LEAST: &'static str;
    /// `h.organization_id {IN_SUBTREE}`: the organization ids of a `subtree` CTE.
    /// PostgreSQL cannot tell how many rows a recursive query yields and guessed
    /// hundreds, which made it scan every host of a region for one school's page; an
    /// array makes it use the index on `hosts(organization_id, ...)`.
    const IN_SUBTREE: &'static str;
    /// `h.id {IN_ID_LIST}`: the ids bound as `$1`, one JSON array of integers (one
    /// parameter, so the statement's text stays the same for any number of ids).
    const IN_ID_LIST: &'static str;
    /// `FROM {HOSTS_WITH_OPEN_VIOLATIONS}`: the hosts `h` of a query whose text says
    /// `h.open_banned > 0 AND h.retired_at IS NULL`, through the partial index of such
    /// hosts. SQLite 3.50's planner ranks it level with `hosts_enrolled`, which
    /// visits every host of a region; PostgreSQL's counts rows and picks it.
    const HOSTS_WITH_OPEN_VIOLATIONS: &'static str;
    /// Appended to a `SELECT` of a row the transaction will change.
    const FOR_UPDATE: &'static str;
    /// Appended to a text column compared byte by byte (ISO week labels).
    const BYTEWISE: &'static str;
    /// Starts a transaction that will write. SQLite takes the write lock at once, so
    /// a transaction that reads first never fails to upgrade its lock.
    const BEGIN_WRITE: &'static str;
    /// Run first in the transaction that numbers a new catalog revision, so two
    /// processes number in turn (SQLite has one writer at a time anyway).
    const CATALOG_NUMBERING_LOCK: Option<&'static str>;
    /// Run after a frozen week's list of PCs is written (20,000 rows for a region at
    /// once). PostgreSQL plans with the statistics of the table as it was before, an
    /// empty one the first week, and read the region's list row by row against the
    /// subtree's array (125 ms instead of 37 ms) until autovacuum analysed it. SQLite
    /// plans without statistics.
    const ANALYZE_WEEK_LISTS: Option<&'static str>;

    /// `FROM hosts h ... {findings_of_each_host(condition)}`: the `host_apps a` rows of
    /// each host that meet `condition`. PostgreSQL reads them one host at a time
    /// through the primary key (a `LATERAL` subquery that `OFFSET 0` keeps from being
    /// turned back into a join: 1 ms for a school, 14 ms for 4,000 PCs).
    fn findings_of_each_host(condition: &str) -> String;

    /// True when a database error may pass by itself (locked, busy, out of resources,
    /// a deadlock): the request is answered 503 and retried.
    fn may_pass(error: &dyn DatabaseError) -> bool;
}

/// [`Dialect::may_pass`] of the database the error came from.
pub(crate) fn may_pass(error: &dyn DatabaseError) -> bool {
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        <sqlx::Sqlite as Dialect>::may_pass(error)
    } else {
        <sqlx::Postgres as Dialect>::may_pass(error)
    }
}

/// A report handed to a backend's writer, and where its outcome goes (only after the
/// batch it is in has committed).
pub(crate) struct WriteJob {
    pub(crate) record: ReportRecord,
    pub(crate) reply: oneshot::Sender<StoreResult<RecordOutcome>>,
}

impl std::fmt::Debug for WriteJob {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WriteJob")
            .field("report_id", &self.record.report_id)
            .finish_non_exhaustive()
    }
}

/// The sending side of a backend's report writer: `record_report` hands its report
/// over and waits for the outcome.
#[derive(Debug, Clone)]
pub(crate) struct ReportWriter {
    jobs: mpsc::Sender<WriteJob>,
}

impl ReportWriter {
    /// A writer handle and the queue its tasks take reports from.
    pub(crate) fn channel(capacity: usize) -> (ReportWriter, mpsc::Receiver<WriteJob>) {
        let (jobs, queue) = mpsc::channel(capacity);
        (ReportWriter { jobs }, queue)
    }

    pub(crate) async fn record(&self, record: ReportRecord) -> StoreResult<RecordOutcome> {
        let stopped = || StoreError::Unavailable("the report writer has stopped".into());
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(WriteJob { record, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// A batch: `first` and whatever else is waiting in `queue` now, up to `limit`.
pub(crate) fn gather_batch(
    first: WriteJob,
    queue: &mut mpsc::Receiver<WriteJob>,
    limit: usize,
) -> Vec<WriteJob> {
    let mut batch = vec![first];
    while batch.len() < limit {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}
