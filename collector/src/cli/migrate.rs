//! `sverka-collector migrate`: copies a SQLite deployment into PostgreSQL
//! (`store::migrate::sqlite_to_postgres`).

use anyhow::{Context, Result, bail};

use crate::store::SqlStore;
use crate::store::sql::{is_postgres_url, sqlite_path};

pub(super) async fn migrate(from: &str, to: &str, replace: bool) -> Result<()> {
    if is_postgres_url(from) {
        bail!("--from takes the SQLite database to copy, not {from}");
    }
    if !is_postgres_url(to) {
        bail!("--to takes a postgres:// URL");
    }
    let source_path = sqlite_path(from)?;
    if !source_path.is_file() {
        bail!("there is no SQLite database at {}", source_path.display());
    }
    let source = SqlStore::open_sqlite(source_path)
        .await
        .with_context(|| format!("opening the database {}", source_path.display()))?;
    let target = SqlStore::open_postgres(to, 4)
        .await
        .context("opening the PostgreSQL database")?;
    let summary = crate::store::migrate::sqlite_to_postgres(&source, &target, replace)
        .await
        .context("copying into PostgreSQL")?;
    for (table, rows) in &summary.tables {
        eprintln!("{table}: {rows} rows");
    }
    eprintln!(
        "migrated {} into PostgreSQL; point the collectors' `database` at it",
        source_path.display()
    );
    source.close().await;
    target.close().await;
    Ok(())
}
