//! Throwaway PostgreSQL databases for tests and benchmarks: each one is created fresh
//! (`sverka_test_<pid>_<n>`) next to the database an admin URL names, and dropped when
//! its [`ScratchDatabase`] is dropped, so runs never see each other's rows.
//!
//! The admin URL is `SVERKA_TEST_POSTGRES`, or `postgres://127.0.0.1:5432/test`.
//! PostgreSQL being unreachable is an error that says so (tests fail, never skip);
//! `scripts/test.sh` starts the local cluster first.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::dialect::postgres::connect_options;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const DEFAULT_ADMIN_URL: &str = "postgres://127.0.0.1:5432/test";

/// A database that exists while this value lives.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(
        "PostgreSQL is not reachable at {url}: {source}. Start it (scripts/test.sh runs \
         `pg_ctlcluster <version> main start`) or point SVERKA_TEST_POSTGRES at a server \
         where this user may create databases"
    )]
    Unreachable { url: String, source: sqlx::Error },
    #[error("creating the scratch database {name}: {source}")]
    Create { name: String, source: sqlx::Error },
    #[error("the admin URL {url} does not parse: {source}")]
    Url { url: String, source: sqlx::Error },
}

impl ScratchDatabase {
    /// The admin URL tests use.
    pub fn admin_url() -> String {
        std::env::var("SVERKA_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
    }

    /// Creates a new, empty database. Must be called inside a tokio runtime.
    pub async fn create() -> Result<ScratchDatabase, ScratchError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin_url = ScratchDatabase::admin_url();
        let admin = connect_options(&admin_url).map_err(|source| ScratchError::Url {
            url: admin_url.clone(),
            source,
        })?;
        let name = format!(
            "sverka_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = PgConnection::connect_with(&admin).await.map_err(|source| {
            ScratchError::Unreachable {
                url: admin_url.clone(),
                source,
            }
        })?;
        // A database of the same name can be left over from a killed run of a process
        // that had this id.
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .map_err(|source| ScratchError::Create {
                    name: name.clone(),
                    source,
                })?;
        }
        let _ = connection.close().await;
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Ok(ScratchDatabase { admin, name, url })
    }

    /// The database's `postgres://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database (ending any session still connected to it), on a thread of
    /// its own so that this works inside and outside an async runtime.
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut connection) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut connection)
                        .await;
                    let _ = connection.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}
