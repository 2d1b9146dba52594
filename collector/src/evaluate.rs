//! Findings from what an agent sent: its inventory (matched once per digest and
//! catalog revision, so a lab of identical PCs is matched once) and its evidence
//! observations, with the collector's catalog. The collector's evaluation, not the
//! agent's, decides what is stored, so a catalog change applies to every host at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use sverka_shared::{CatalogMatcher, Observation};

use crate::store::{EvaluatedFindings, HostFinding};

/// How many (digest, revision) results the cache keeps before starting over.
const CACHE_LIMIT: usize = 50_000;

/// The inventory observations that hit the catalog, shared between hosts.
pub type MatchedInventory = Arc<Vec<Observation>>;

/// Caches which inventory observations hit the catalog, per (digest, catalog revision).
#[derive(Debug, Default)]
pub struct Evaluator {
    matched: Mutex<HashMap<(String, i64), MatchedInventory>>,
    /// The findings of PCs that sent no evidence besides their inventory.
    inventory_findings: Mutex<HashMap<(String, i64), EvaluatedFindings>>,
}

impl Evaluator {
    /// The observations of an inventory that hit the catalog (not cached: a caller
    /// [`Evaluator::remember`]s it once the inventory is known to be stored).
    pub fn evaluate_inventory(
        &self,
        matcher: &CatalogMatcher,
        inventory: &[Observation],
    ) -> MatchedInventory {
        Arc::new(
            inventory
                .iter()
                .filter(|observation| !matcher.hits_for(observation).is_empty())
                .cloned()
                .collect(),
        )
    }

    /// Keeps a result for (digest, catalog revision).
    pub fn remember(&self, key: (String, i64), matched: MatchedInventory) {
        if let Ok(mut cache) = self.matched.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, matched);
        }
    }

    /// The findings of a PC whose only evidence is its inventory, evaluated once per
    /// (digest, catalog revision).
    pub fn inventory_findings(
        &self,
        key: &(String, i64),
        evaluate: impl FnOnce() -> EvaluatedFindings,
    ) -> EvaluatedFindings {
        if let Some(found) = self
            .inventory_findings
            .lock()
            .ok()
            .and_then(|cache| cache.get(key).cloned())
        {
            return found;
        }
        let findings = evaluate();
        if let Ok(mut cache) = self.inventory_findings.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key.clone(), findings.clone());
        }
        findings
    }

    /// A cached result, if any.
    pub fn cached(&self, key: &(String, i64)) -> Option<Arc<Vec<Observation>>> {
        self.matched.lock().ok()?.get(key).cloned()
    }
}

/// The host's findings from its matched inventory and its evidence. Only what is
/// installed or running is tracked over time: leftover traces (a data folder) do not
/// keep a finding open, so removing a messenger resolves it even if its folder stays.
pub fn host_findings(
    matcher: &CatalogMatcher,
    matched_inventory: &[Observation],
    evidence: &[Observation],
) -> Vec<HostFinding> {
    let mut observations = Vec::with_capacity(matched_inventory.len() + evidence.len());
    observations.extend_from_slice(matched_inventory);
    observations.extend_from_slice(evidence);
    matcher
        .findings(&observations)
        .into_iter()
        .filter(|finding| finding.strength >= sverka_shared::Strength::Installed)
        .map(|finding| HostFinding {
            app_id: finding.app,
            app_name: finding.name,
            status: finding.status,
            strength: finding.strength,
            users: finding.users,
            evidence: serde_json::to_string(&finding.evidence).unwrap_or_else(|_| "[]".into()),
        })
        .collect()
}

/// Like [`host_findings`], with the evidence as stored (a JSON array).
pub fn host_findings_from_json(
    matcher: &CatalogMatcher,
    matched_inventory: &[Observation],
    evidence_json: &str,
) -> Vec<HostFinding> {
    let evidence: Vec<Observation> = serde_json::from_str(evidence_json).unwrap_or_default();
    host_findings(matcher, matched_inventory, &evidence)
}
