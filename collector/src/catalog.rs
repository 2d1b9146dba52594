//! The collector's catalog: the built-in one with the operator's additions
//! (`sverka-collector catalog set FILE`) merged over it. Agents fetch it at check-in
//! (with an ETag), and a change re-evaluates every stored inventory at once.

use std::sync::Arc;
use std::time::Duration;
use sverka_shared::{Catalog, CatalogError, CatalogMatcher};

use crate::evaluate::{Evaluator, host_findings_from_json};
use crate::store::{CatalogRevision, HostEvaluationInput, JobLease, Store, StoreError};

/// The job name of re-evaluating hosts with a new catalog (see `Store::try_lock_job`):
/// one process at a time, whether `catalog set` or a collector catching up.
pub const REEVALUATION_JOB: &str = "catalog-reevaluation";

/// One revision of the catalog, compiled.
#[derive(Debug)]
pub struct CatalogState {
    pub revision: i64,
    pub matcher: CatalogMatcher,
    /// The complete catalog as TOML, as agents receive it.
    pub toml: String,
    pub etag: String,
}

impl CatalogState {
    /// The built-in catalog with `overrides` merged over it.
    pub fn build(overrides: Option<&CatalogRevision>) -> Result<CatalogState, CatalogError> {
        let mut catalog = Catalog::builtin()?;
        let revision = match overrides {
            Some(stored) => {
                catalog.merge_text(
                    &format!("catalog revision {}", stored.revision),
                    &stored.overrides,
                    false,
                )?;
                // Reports name the catalog they were scanned with.
                catalog.version = format!("{}+r{}", catalog.version, stored.revision);
                stored.revision
            }
            None => 0,
        };
        let toml = catalog.to_toml();
        let digest = crate::keys::hash(&toml);
        let etag = format!("\"{revision}-{}\"", &digest[..16]);
        Ok(CatalogState {
            revision,
            matcher: CatalogMatcher::new(catalog),
            toml,
            etag,
        })
    }

    /// The catalog the store holds now.
    pub async fn load(store: &dyn Store) -> Result<CatalogState, CatalogLoadError> {
        let stored = store.current_catalog().await?;
        Ok(CatalogState::build(stored.as_ref())?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogLoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored catalog does not load: {0}")]
    Catalog(#[from] CatalogError),
}

/// Checks an operator's catalog file, stores it as a new revision and re-evaluates
/// every host with it. Returns the new revision and the number of hosts evaluated.
pub async fn set_catalog(
    store: &dyn Store,
    file_name: &str,
    overrides: &str,
    now: i64,
) -> Result<(i64, usize), CatalogLoadError> {
    let mut check = Catalog::builtin()?;
    check.merge_text(file_name, overrides, false)?;
    let revision = store.save_catalog(overrides, now).await?;
    // Another `catalog set` (or a collector catching up) may be evaluating: wait for
    // it, then evaluate with the newest revision.
    let _lease = wait_for_job(store, REEVALUATION_JOB).await?;
    let state = CatalogState::load(store).await?;
    let evaluated = reevaluate_all(store, &state, now).await?;
    Ok((revision, evaluated))
}

/// Takes a background job, waiting while another holder has it.
pub async fn wait_for_job(store: &dyn Store, name: &str) -> Result<JobLease, StoreError> {
    loop {
        if let Some(lease) = store.try_lock_job(name).await? {
            return Ok(lease);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Evaluates every host's stored inventory and evidence with `state`'s catalog.
pub async fn reevaluate_all(
    store: &dyn Store,
    state: &CatalogState,
    now: i64,
) -> Result<usize, StoreError> {
    reevaluate(store, state, now, false).await
}

/// Evaluates again the hosts last evaluated with an older revision than `state`'s: a
/// collector that received their reports before it noticed the change evaluated them
/// with the old catalog. Cheap when there are none.
pub async fn reevaluate_behind(
    store: &dyn Store,
    state: &CatalogState,
    now: i64,
) -> Result<usize, StoreError> {
    reevaluate(store, state, now, true).await
}

async fn reevaluate(
    store: &dyn Store,
    state: &CatalogState,
    now: i64,
    only_behind: bool,
) -> Result<usize, StoreError> {
    // Each distinct inventory is read and matched once, however many hosts share it.
    let evaluator = Evaluator::default();
    let mut after = 0;
    let mut evaluated = 0;
    loop {
        let page: Vec<HostEvaluationInput> = if only_behind {
            store
                .hosts_behind_catalog(state.revision, after, 500)
                .await?
        } else {
            store.hosts_for_evaluation(after, 500).await?
        };
        let Some(last) = page.last() else { break };
        after = last.host_id;
        for host in page {
            let matched = match &host.inventory_digest {
                Some(digest) => {
                    let key = (digest.clone(), state.revision);
                    match evaluator.cached(&key) {
                        Some(matched) => matched,
                        None => {
                            let body = store.inventory(digest).await?;
                            let observations: Vec<sverka_shared::Observation> = body
                                .as_deref()
                                .and_then(|body| serde_json::from_str(body).ok())
                                .unwrap_or_default();
                            let matched =
                                evaluator.evaluate_inventory(&state.matcher, &observations);
                            evaluator.remember(key, matched.clone());
                            matched
                        }
                    }
                }
                None => Arc::new(Vec::new()),
            };
            let findings = host_findings_from_json(&state.matcher, &matched, &host.evidence);
            store
                .apply_evaluation(host.host_id, findings, state.revision, now)
                .await?;
            evaluated += 1;
        }
    }
    Ok(evaluated)
}
