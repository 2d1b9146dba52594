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
#[derive(Debug)]
pub struct Evaluator {
    matched: Mutex<HashMap<(String, i64), MatchedInventory>>,
    /// The findings of PCs that sent no evidence besides their inventory.
    inventory_findings: Mutex<HashMap<(String, i64), EvaluatedFindings>>,
    /// Inventories as sent (their bytes, by a hash keyed at random for this process)
    /// that were found to match the digest they came with.
    checked_inventories: Mutex<HashMap<u64, String>>,
    /// This process's random key for [`Evaluator::inventory_bytes_key`].
    inventory_key: [u8; 32],
}

impl Default for Evaluator {
    fn default() -> Evaluator {
        Evaluator {
            matched: Mutex::default(),
            inventory_findings: Mutex::default(),
            checked_inventories: Mutex::default(),
            inventory_key: rand::random(),
        }
    }
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

    /// The key of an inventory's bytes as sent: 64 bits of their keyed BLAKE3 hash with
    /// this process's random key, so bytes cannot be made to share another inventory's
    /// key on purpose. BLAKE3 rather than std's SipHash, which was 2.0% of the
    /// collector's CPU samples under a stream of full reports (BLAKE3: 1.6%).
    pub fn inventory_bytes_key(&self, raw: &str) -> u64 {
        let hash = blake3::keyed_hash(&self.inventory_key, raw.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    /// Whether bytes with this key were found to match `digest` before: the same bytes
    /// would be judged the same way, so they need not be parsed and hashed again.
    pub fn checked_before(&self, bytes_key: u64, digest: &str) -> bool {
        self.checked_inventories
            .lock()
            .is_ok_and(|checked| checked.get(&bytes_key).is_some_and(|known| known == digest))
    }

    /// Remembers that bytes with this key match `digest`.
    pub fn remember_checked(&self, bytes_key: u64, digest: &str) {
        if let Ok(mut checked) = self.checked_inventories.lock() {
            if checked.len() >= CACHE_LIMIT {
                checked.clear();
            }
            checked.insert(bytes_key, digest.to_string());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_inventories_are_known_by_their_bytes_and_digest() {
        let evaluator = Evaluator::default();
        let sent = r#"[{"source":"dpkg","name":"bash"}]"#;
        let key = evaluator.inventory_bytes_key(sent);
        assert!(!evaluator.checked_before(key, "digest-a"));
        evaluator.remember_checked(key, "digest-a");
        assert!(evaluator.checked_before(key, "digest-a"));
        // The same bytes with another digest, and other bytes with this digest: unknown.
        assert!(!evaluator.checked_before(key, "digest-b"));
        let other = evaluator.inventory_bytes_key(r#"[{"source":"dpkg","name":"zsh"}]"#);
        assert_ne!(other, key);
        assert!(!evaluator.checked_before(other, "digest-a"));
        // Another process (another random key) does not share the keys.
        assert_ne!(Evaluator::default().inventory_bytes_key(sent), key);
    }
}
