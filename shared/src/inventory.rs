//! The machine's software inventory: what its package databases, registry and store
//! sources list. The agent sends it to the collector (only when its digest changed),
//! and the collector matches stored inventories again when the catalog changes.
//!
//! An inventory is kept as the [`Observation`]s themselves, so that matching it again
//! later is the same code as matching it on the PC; [`InventoryItem`] is the flat
//! view people see (name, version, publisher, source, user).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::observation::{Observation, Observed};
use crate::report::SourceKind;

/// One installed program as a row of a table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InventoryItem {
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    pub source: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Observation {
    /// The inventory row of an observation that lists installed software (a package, a
    /// store package, an uninstall entry); `None` for files, launchers, processes and
    /// data folders, which are evidence but not inventory.
    pub fn inventory_item(&self) -> Option<InventoryItem> {
        let (name, publisher) = match &self.observed {
            Observed::Package { name, vendor, .. } => (name.clone(), vendor.clone()),
            Observed::Flatpak { id, .. } => (id.clone(), None),
            Observed::Snap { name, .. } => (name.clone(), None),
            Observed::UninstallEntry {
                key_name,
                display_name,
                publisher,
                ..
            } => {
                let name = if display_name.is_empty() {
                    key_name
                } else {
                    display_name
                };
                (name.clone(), publisher.clone())
            }
            Observed::AppxPackage { family_name, .. } => (family_name.clone(), None),
            Observed::OfficeProduct { product_id } => {
                (product_id.clone(), Some("Microsoft Corporation".into()))
            }
            Observed::DesktopEntry { .. }
            | Observed::File { .. }
            | Observed::DataDir { .. }
            | Observed::Process { .. }
            | Observed::WebApp { .. } => return None,
        };
        Some(InventoryItem {
            name,
            version: self.observed.version().unwrap_or_default().to_string(),
            publisher,
            source: self.observed.source_kind(),
            user: self.user.clone(),
        })
    }
}

/// A machine's inventory in a canonical order, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Hex SHA-256 of the canonical JSON of `observations`.
    pub digest: String,
    pub observations: Vec<Observation>,
}

impl Inventory {
    /// Keeps the inventory observations, sorted and without duplicates, so that the
    /// same software always gives the same digest whatever order the sources ran in.
    pub fn from_observations<'a>(observations: impl IntoIterator<Item = &'a Observation>) -> Self {
        let mut keyed: Vec<(String, Observation)> = observations
            .into_iter()
            .filter(|observation| observation.inventory_item().is_some())
            .map(|observation| (canonical_json(observation), observation.clone()))
            .collect();
        keyed.sort_by(|left, right| left.0.cmp(&right.0));
        keyed.dedup_by(|left, right| left.0 == right.0);
        let mut hasher = Sha256::new();
        for (json, _) in &keyed {
            hasher.update(json.as_bytes());
            hasher.update(b"\n");
        }
        Inventory {
            digest: hex(&hasher.finalize()),
            observations: keyed
                .into_iter()
                .map(|(_, observation)| observation)
                .collect(),
        }
    }

    /// The digest of observations as they arrived (for checking a received inventory).
    pub fn recompute_digest(&self) -> String {
        Inventory::from_observations(&self.observations).digest
    }

    pub fn items(&self) -> Vec<InventoryItem> {
        self.observations
            .iter()
            .filter_map(Observation::inventory_item)
            .collect()
    }
}

fn canonical_json(observation: &Observation) -> String {
    // Serialising plain data into a String cannot fail; an empty key would only sort
    // the item first.
    serde_json::to_string(observation).unwrap_or_default()
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::PackageManager;
    use crate::report::{Scope, Strength};

    fn package(name: &str, version: &str) -> Observation {
        Observation {
            observed: Observed::Package {
                manager: PackageManager::Dpkg,
                name: name.into(),
                version: version.into(),
                vendor: Some("Vendor".into()),
            },
            path: Some("/var/lib/dpkg/status".into()),
            user: None,
            scope: Scope::Machine,
            strength: Strength::Installed,
        }
    }

    #[test]
    fn digest_ignores_order_and_duplicates_but_not_versions() {
        let first = [package("a", "1"), package("b", "2")];
        let second = [package("b", "2"), package("a", "1"), package("a", "1")];
        let changed = [package("a", "1"), package("b", "3")];
        let digest = |items: &[Observation]| Inventory::from_observations(items).digest;
        assert_eq!(digest(&first), digest(&second));
        assert_ne!(digest(&first), digest(&changed));
        assert_eq!(digest(&first).len(), 64);
        assert_eq!(Inventory::from_observations(&second).observations.len(), 2);
    }

    #[test]
    fn only_software_lists_are_inventory() {
        let process = Observation {
            observed: Observed::Process {
                pid: 1,
                name: "x".into(),
                executable: None,
                version_info: None,
            },
            path: None,
            user: None,
            scope: Scope::Machine,
            strength: Strength::Running,
        };
        let inventory = Inventory::from_observations(&[process, package("a", "1")]);
        let items = inventory.items();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].name, "a");
        assert_eq!(items[0].version, "1");
        assert_eq!(items[0].publisher.as_deref(), Some("Vendor"));
        assert_eq!(items[0].source, SourceKind::Dpkg);
    }

    #[test]
    fn uninstall_entries_and_appx_packages_are_inventory_rows() {
        let entry = Observation {
            observed: Observed::UninstallEntry {
                key_name: "{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1".into(),
                display_name: "Telegram Desktop".into(),
                display_version: Some("5.8.3".into()),
                publisher: Some("Telegram FZ-LLC".into()),
                upgrade_code: None,
                hive: "HKU\\S-1-5-21-1-2-3-1001".into(),
            },
            path: None,
            user: Some("anna".into()),
            scope: Scope::User,
            strength: Strength::Installed,
        };
        let appx = Observation {
            observed: Observed::AppxPackage {
                full_name: "MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe".into(),
                family_name: "MSTeams_8wekyb3d8bbwe".into(),
                version: "24295.605.3225.8804".into(),
                origin: "provisioned".into(),
            },
            path: None,
            user: None,
            scope: Scope::Machine,
            strength: Strength::Installed,
        };
        let items = Inventory::from_observations(&[entry, appx]).items();
        assert_eq!(items.len(), 2);
        let telegram = items
            .iter()
            .find(|item| item.source == SourceKind::UninstallKey);
        let telegram = telegram.expect("uninstall row");
        assert_eq!(
            (telegram.name.as_str(), telegram.version.as_str()),
            ("Telegram Desktop", "5.8.3")
        );
        assert_eq!(telegram.user.as_deref(), Some("anna"));
        assert_eq!(telegram.publisher.as_deref(), Some("Telegram FZ-LLC"));
        let teams = items.iter().find(|item| item.source == SourceKind::Appx);
        assert_eq!(
            teams.map(|item| item.name.as_str()),
            Some("MSTeams_8wekyb3d8bbwe")
        );
    }
}
