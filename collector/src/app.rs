//! The application state every request shares ([`AppState`]), and what builds it: the
//! store a database URL names ([`open_store_with`]) and the catalog.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::api::RateLimit;
use crate::api::enrollment::EnrollmentConfig;
use crate::api::host_auth::Bucket;
use crate::api::limits::RequestLimits;
use crate::api::slots::SlotLimits;
use crate::catalog::CatalogState;
use crate::connections::ConnectionLimits;
use crate::evaluate::Evaluator;
use crate::store::SqlStore;
use crate::store::{HostCredentials, Store};

/// Shared by every request.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: RequestLimits,
    pub rate: RateLimit,
    catalog: RwLock<Arc<CatalogState>>,
    /// Inventories already matched, per (digest, catalog revision).
    pub(crate) evaluator: Evaluator,
    /// Host keys checked recently (see `api::host_auth`).
    pub(crate) credentials: Mutex<HashMap<i64, (HostCredentials, Instant)>>,
    /// Each host's token bucket (see `api::host_auth`).
    pub(crate) buckets: Mutex<HashMap<i64, Bucket>>,
    /// Bounds the reports read, decoded and evaluated at once, fairly shared.
    pub(crate) upload_slots: SlotLimits,
    /// The brake on enrollment (see `api::enrollment`).
    pub enrollment: EnrollmentConfig,
    /// Each client address's enrollment bucket.
    pub(crate) enrollment_buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// Time limits of connections and request bodies.
    pub connections: ConnectionLimits,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: CatalogState,
        limits: RequestLimits,
        rate: RateLimit,
    ) -> AppState {
        AppState {
            store,
            limits,
            rate,
            catalog: RwLock::new(Arc::new(catalog)),
            evaluator: Evaluator::default(),
            credentials: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            upload_slots: SlotLimits::default(),
            enrollment: EnrollmentConfig::default(),
            enrollment_buckets: Mutex::new(HashMap::new()),
            connections: ConnectionLimits::default(),
        }
    }

    /// The same state with these connection limits.
    pub fn with_connection_limits(mut self, connections: ConnectionLimits) -> AppState {
        self.upload_slots = SlotLimits::new(
            crate::api::slots::REPORT_SLOTS,
            connections.uploads_per_address,
        );
        self.connections = connections;
        self
    }

    /// The same state with this brake on enrollment.
    pub fn with_enrollment(mut self, enrollment: EnrollmentConfig) -> AppState {
        self.enrollment = enrollment;
        self
    }

    pub fn catalog(&self) -> Arc<CatalogState> {
        match self.catalog.read() {
            Ok(catalog) => catalog.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace_catalog(&self, catalog: CatalogState) {
        let catalog = Arc::new(catalog);
        match self.catalog.write() {
            Ok(mut current) => *current = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }

    /// Reloads the catalog when the store holds a newer revision (another process or
    /// the CLI changed it).
    pub async fn refresh_catalog(&self) -> Result<bool, crate::catalog::CatalogLoadError> {
        let stored = self.store.current_catalog().await?;
        let revision = stored.as_ref().map_or(0, |stored| stored.revision);
        if revision == self.catalog().revision {
            return Ok(false);
        }
        self.replace_catalog(CatalogState::build(stored.as_ref())?);
        Ok(true)
    }
}

/// Opens the store a `database` setting names (see [`SqlStore::open`]), with at most
/// `pool_size` connections on PostgreSQL.
pub async fn open_store_with(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    let store = SqlStore::open(url, pool_size)
        .await
        .with_context(|| format!("opening the database {url}"))?;
    Ok(Arc::new(store))
}
