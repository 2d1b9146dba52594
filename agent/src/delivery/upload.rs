//! One report for the collector, made from a scan: a fresh UUIDv7 id, the scan, the
//! inventory's digest, the inventory itself only when the collector does not hold it,
//! and the non-inventory observations that matched the catalog as evidence.

use sverka_shared::protocol::ReportUpload;
use sverka_shared::{CatalogMatcher, Inventory};

use crate::scan::ScanOutcome;

/// Builds the report. `acknowledged_digest` is the digest of the last inventory the
/// collector acknowledged (`None` when it holds none or asked for it again).
pub fn build(
    outcome: &ScanOutcome,
    matcher: &CatalogMatcher,
    acknowledged_digest: Option<&str>,
) -> ReportUpload {
    let inventory = Inventory::from_observations(&outcome.observations);
    let send_inventory = acknowledged_digest != Some(inventory.digest.as_str());
    let evidence = outcome
        .observations
        .iter()
        .filter(|observation| observation.inventory_item().is_none())
        .filter(|observation| !matcher.hits_for(observation).is_empty())
        .cloned()
        .collect();
    ReportUpload {
        report_id: uuid::Uuid::now_v7().to_string(),
        scan: outcome.report.clone(),
        inventory_digest: inventory.digest,
        inventory: send_inventory.then_some(inventory.observations),
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sverka_shared::observation::{FileFormat, PackageManager};
    use sverka_shared::report::{HostInfo, SCAN_SCHEMA};
    use sverka_shared::{Catalog, Observation, Observed, ScanReport, Scope, Strength};

    fn observation(observed: Observed, path: &str) -> Observation {
        Observation {
            observed,
            path: Some(path.into()),
            user: None,
            scope: Scope::Machine,
            strength: Strength::Installed,
        }
    }

    fn outcome() -> ScanOutcome {
        let package = |name: &str| {
            observation(
                Observed::Package {
                    manager: PackageManager::Dpkg,
                    name: name.into(),
                    version: "1".into(),
                    vendor: None,
                },
                "/var/lib/dpkg/status",
            )
        };
        let file = |name: &str, path: &str| {
            observation(
                Observed::File {
                    file_name: name.into(),
                    format: FileFormat::Elf,
                    version_info: None,
                },
                path,
            )
        };
        ScanOutcome {
            report: ScanReport {
                schema: SCAN_SCHEMA,
                host: HostInfo::default(),
                catalog_version: "test".into(),
                scanned_at: String::new(),
                duration_ms: 0,
                findings: Vec::new(),
                errors: Vec::new(),
                skipped: Vec::new(),
            },
            observations: vec![
                package("coreutils"),
                package("telegram-desktop"),
                file("Telegram", "/opt/Telegram/Telegram"),
                file("notes", "/opt/notes/notes"),
            ],
        }
    }

    #[test]
    fn inventory_only_when_the_collector_lacks_it_and_evidence_only_when_it_matched() {
        let matcher = CatalogMatcher::new(Catalog::builtin().unwrap());
        let outcome = outcome();
        let first = build(&outcome, &matcher, None);
        let inventory = first.inventory.as_ref().unwrap();
        assert_eq!(inventory.len(), 2, "packages are inventory, files are not");
        assert_eq!(first.inventory_digest.len(), 64);
        let evidence: Vec<&str> = first
            .evidence
            .iter()
            .filter_map(|observation| observation.path.as_deref())
            .collect();
        assert_eq!(evidence, ["/opt/Telegram/Telegram"]);

        let unchanged = build(&outcome, &matcher, Some(&first.inventory_digest));
        assert_eq!(unchanged.inventory, None);
        assert_eq!(unchanged.inventory_digest, first.inventory_digest);
        assert!(
            unchanged.report_id > first.report_id,
            "ids sort by creation"
        );
        assert!(build(&outcome, &matcher, Some("older")).inventory.is_some());
        assert_eq!(
            uuid::Uuid::parse_str(&first.report_id)
                .unwrap()
                .get_version_num(),
            7
        );
    }
}
