//! `sverka-collector migrate`: copies a deployment's SQLite database into PostgreSQL,
//! every table and row with its ids and history, then moves PostgreSQL's identity
//! sequences past the copied ids.
//!
//! The copy is driven by the schemas, not by a list: every table of the SQLite file
//! (except SQLite's and sqlx's own, and the versions readers' caches go by) must
//! exist in PostgreSQL with the same columns, and each value is read as the type the
//! PostgreSQL column has. Tables are copied parents first (by their foreign keys) and
//! rows in primary key order, in one
//! PostgreSQL transaction: a failed migration leaves the target as it was.

use futures_util::TryStreamExt;
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteRow;
use sqlx::{Arguments, Row};
use std::collections::{BTreeMap, BTreeSet};

use super::{SqlStore, StoreError, StoreResult};

/// Rows per `INSERT` (PostgreSQL takes at most 65,535 parameters per statement).
const ROWS_PER_INSERT: usize = 500;

/// What was copied: (table, rows) in copy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSummary {
    pub tables: Vec<(String, u64)>,
}

/// Column types this copy knows, as PostgreSQL names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Integer,
    Text,
    Boolean,
    Real,
    Bytes,
}

impl ColumnType {
    fn from_postgres(data_type: &str) -> Option<ColumnType> {
        match data_type {
            "bigint" | "integer" | "smallint" => Some(ColumnType::Integer),
            "text" | "character varying" => Some(ColumnType::Text),
            "boolean" => Some(ColumnType::Boolean),
            "double precision" | "real" => Some(ColumnType::Real),
            "bytea" => Some(ColumnType::Bytes),
            _ => None,
        }
    }
}

fn sqlite_error(error: sqlx::Error) -> StoreError {
    StoreError::Database(format!("reading the SQLite database: {error}").into())
}

fn pg_error(error: sqlx::Error) -> StoreError {
    StoreError::from(error)
}

/// Copies everything in `source` into `target`. The target must have no rows unless
/// `replace` is set, in which case its rows are deleted first (in the same
/// transaction). The source should not be written meanwhile (stop `serve` first); it
/// is read in one transaction, so the copy is consistent in any case.
pub async fn sqlite_to_postgres(
    source: &SqlStore,
    target: &SqlStore,
    replace: bool,
) -> StoreResult<MigrationSummary> {
    let source = source.sqlite_pool().ok_or_else(|| {
        StoreError::Invalid("the database to migrate from must be a SQLite one".into())
    })?;
    let target = target.postgres_pool().ok_or_else(|| {
        StoreError::Invalid("the database to migrate to must be a PostgreSQL one".into())
    })?;
    let mut reader = source.acquire().await.map_err(sqlite_error)?;
    sqlx::query("BEGIN")
        .execute(&mut *reader)
        .await
        .map_err(sqlite_error)?;
    let result = copy_tables(&mut reader, target, replace).await;
    let _ = sqlx::query("ROLLBACK").execute(&mut *reader).await;
    result
}

async fn copy_tables(
    reader: &mut sqlx::SqliteConnection,
    target: &sqlx::PgPool,
    replace: bool,
) -> StoreResult<MigrationSummary> {
    let tables: Vec<String> = sqlx::query_scalar(
        // `read_versions` keys readers' caches: the target's triggers keep its own.
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' AND name <> 'read_versions'
         ORDER BY name",
    )
    .fetch_all(&mut *reader)
    .await
    .map_err(sqlite_error)?;
    // Parents first: a table comes after every table its foreign keys name.
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for table in &tables {
        let referenced: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT \"table\" FROM pragma_foreign_key_list('{table}')"
        )))
        .fetch_all(&mut *reader)
        .await
        .map_err(sqlite_error)?;
        parents.insert(
            table.clone(),
            referenced
                .into_iter()
                .filter(|parent| parent != table && tables.contains(parent))
                .collect(),
        );
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < tables.len() {
        let ready: Vec<String> = parents
            .iter()
            .filter(|(table, needs)| {
                !order.contains(table) && needs.iter().all(|p| order.contains(p))
            })
            .map(|(table, _)| table.clone())
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Invalid(
                "the SQLite tables' foreign keys form a cycle".into(),
            ));
        }
        order.extend(ready);
    }

    let mut writer = target.begin().await.map_err(pg_error)?;
    let mut columns_of: BTreeMap<String, Vec<(String, ColumnType)>> = BTreeMap::new();
    for table in &order {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut *writer)
        .await
        .map_err(pg_error)?;
        if columns.is_empty() {
            return Err(StoreError::Invalid(format!(
                "PostgreSQL has no table {table}: is this collector older than the one that \
                 wrote the SQLite file?"
            )));
        }
        let source_columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut *reader)
        .await
        .map_err(sqlite_error)?;
        let mut typed = Vec::new();
        for name in source_columns {
            let Some((_, data_type)) = columns.iter().find(|(column, _)| *column == name) else {
                return Err(StoreError::Invalid(format!(
                    "PostgreSQL's table {table} has no column {name}"
                )));
            };
            let Some(column_type) = ColumnType::from_postgres(data_type) else {
                return Err(StoreError::Invalid(format!(
                    "{table}.{name}: PostgreSQL type {data_type} is not one this copy knows"
                )));
            };
            typed.push((name, column_type));
        }
        columns_of.insert(table.clone(), typed);
    }

    // The target must be empty, or emptied on request (children first).
    for table in order.iter().rev() {
        if replace {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *writer)
                .await
                .map_err(pg_error)?;
        } else {
            let rows: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut *writer)
                    .await
                    .map_err(pg_error)?;
            if rows > 0 {
                return Err(StoreError::Rejected(format!(
                    "the PostgreSQL database is not empty ({table} has {rows} rows); \
                     migrate into an empty database, or pass --replace to delete its rows"
                )));
            }
        }
    }

    let mut summary = MigrationSummary { tables: Vec::new() };
    for table in &order {
        let columns = &columns_of[table];
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let column_list = names.join(", ");
        // Primary key order (rowid for rowid tables), so parents precede children
        // within a self-referencing table such as organizations.
        let key: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk"
        )))
        .fetch_all(&mut *reader)
        .await
        .map_err(sqlite_error)?;
        let order_by = if key.is_empty() {
            "rowid".to_string()
        } else {
            key.join(", ")
        };
        let select = format!("SELECT {column_list} FROM {table} ORDER BY {order_by}");
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *reader);
        let mut copied = 0u64;
        let mut chunk: Vec<SqliteRow> = Vec::with_capacity(ROWS_PER_INSERT);
        loop {
            let row = rows.try_next().await.map_err(sqlite_error)?;
            let done = row.is_none();
            chunk.extend(row);
            if chunk.len() == ROWS_PER_INSERT || (done && !chunk.is_empty()) {
                insert_rows(&mut writer, table, columns, &chunk).await?;
                copied += chunk.len() as u64;
                chunk.clear();
            }
            if done {
                break;
            }
        }
        drop(rows);
        summary.tables.push((table.clone(), copied));
    }

    // Identity columns continue after the copied ids.
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut *writer)
    .await
    .map_err(pg_error)?;
    for (table, column) in identities {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                           COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        )))
        .execute(&mut *writer)
        .await
        .map_err(pg_error)?;
    }
    writer.commit().await.map_err(pg_error)?;
    Ok(summary)
}

/// One multi-row `INSERT` of SQLite rows, keeping their ids.
async fn insert_rows(
    writer: &mut sqlx::PgConnection,
    table: &str,
    columns: &[(String, ColumnType)],
    rows: &[SqliteRow],
) -> StoreResult<()> {
    let column_list = columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut arguments = PgArguments::default();
    let mut tuples = Vec::with_capacity(rows.len());
    let mut next = 1;
    for row in rows {
        let mut placeholders = Vec::with_capacity(columns.len());
        for (index, (name, column_type)) in columns.iter().enumerate() {
            bind_value(&mut arguments, row, index, *column_type)
                .map_err(|error| StoreError::Database(format!("{table}.{name}: {error}").into()))?;
            placeholders.push(format!("${next}"));
            next += 1;
        }
        tuples.push(format!("({})", placeholders.join(", ")));
    }
    let statement = format!(
        "INSERT INTO {table} ({column_list}) OVERRIDING SYSTEM VALUE VALUES {}",
        tuples.join(", ")
    );
    sqlx::query_with(sqlx::AssertSqlSafe(statement), arguments)
        .execute(&mut *writer)
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Adds column `index` of a SQLite row to `arguments` as `column_type`.
fn bind_value(
    arguments: &mut PgArguments,
    row: &SqliteRow,
    index: usize,
    column_type: ColumnType,
) -> Result<(), sqlx::error::BoxDynError> {
    match column_type {
        ColumnType::Integer => arguments.add(row.try_get::<Option<i64>, _>(index)?),
        ColumnType::Text => arguments.add(row.try_get::<Option<String>, _>(index)?),
        ColumnType::Boolean => arguments.add(row.try_get::<Option<bool>, _>(index)?),
        ColumnType::Real => arguments.add(row.try_get::<Option<f64>, _>(index)?),
        ColumnType::Bytes => arguments.add(row.try_get::<Option<Vec<u8>>, _>(index)?),
    }
}
