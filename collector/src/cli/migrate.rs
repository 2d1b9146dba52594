//! `sverka-collector migrate`: copies a SQLite deployment into PostgreSQL
//! (`store::migrate::sqlite_to_postgres`).

use anyhow::{Context, Result, bail};

use crate::app::{is_postgres_url, open_sqlite};
use crate::store::SqlStore;

pub(super) async fn migrate(from: &str, to: &str, replace: bool) -> Result<()> {
    if is_postgres_url(from) {
        bail!("--from takes the SQLite database to copy, not {from}");
    }
    if !is_postgres_url(to) {
        bail!("--to takes a postgres:// URL");
    }
    let source_path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .unwrap_or(from);
    if !std::path::Path::new(source_path).is_file() {
        bail!("there is no SQLite database at {source_path}");
    }
    let source = open_sqlite(from).await?;
    let target = SqlStore::open_postgres(to, 4)
        .await
        .context("opening the PostgreSQL database")?;
    let summary = crate::store::migrate::sqlite_to_postgres(&source, &target, replace)
        .await
        .context("copying into PostgreSQL")?;
    for (table, rows) in &summary.tables {
        eprintln!("{table}: {rows} rows");
    }
    eprintln!("migrated {source_path} into PostgreSQL; point the collectors' `database` at it");
    source.close().await;
    target.close().await;
    Ok(())
}
