//! Windows uninstall keys (Add/Remove Programs): `HKLM` (64-bit and `WOW6432Node`),
//! every user's hive (live when logged on, `NTUSER.DAT` read offline otherwise), MSI
//! upgrade codes (`Installer\UpgradeCodes`, packed GUIDs) and bundle upgrade codes, and
//! Microsoft Office Click-to-Run product ids. Every entry is reported: it is the
//! machine's software inventory.

use std::collections::BTreeMap;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::registry::{RegistryKey, RegistryView};

pub const MACHINE_UNINSTALL: &str = "Microsoft\\Windows\\CurrentVersion\\Uninstall";
pub const MACHINE_UNINSTALL_32: &str = "WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall";
pub const USER_UNINSTALL: &str = "Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall";
pub const MACHINE_UPGRADE_CODES: &str = "Classes\\Installer\\UpgradeCodes";
pub const USER_UPGRADE_CODES: &str = "Software\\Microsoft\\Installer\\UpgradeCodes";
pub const CLICK_TO_RUN: &str = "Microsoft\\Office\\ClickToRun\\Configuration";
/// The most uninstall entries read from one key.
const MAX_ENTRIES: usize = 100_000;

/// Turns a packed GUID (as the MSI keys store them: 32 hex digits, each group reversed)
/// into `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
pub fn unpack_guid(packed: &str) -> Option<String> {
    if packed.len() != 32 || !packed.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let upper = packed.to_ascii_uppercase();
    let reversed = |range: std::ops::Range<usize>| upper[range].chars().rev().collect::<String>();
    let mut tail = String::new();
    for pair in (16..32).step_by(2) {
        tail.push_str(&reversed(pair..pair + 2));
    }
    Some(format!(
        "{{{}-{}-{}-{}-{}}}",
        reversed(0..8),
        reversed(8..12),
        reversed(12..16),
        &tail[..4],
        &tail[4..]
    ))
}

/// A braced, upper-case GUID, or `None` for anything else.
pub fn normalize_guid(text: &str) -> Option<String> {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    let valid = inner.len() == 36
        && inner.char_indices().all(|(index, character)| match index {
            8 | 13 | 18 | 23 => character == '-',
            _ => character.is_ascii_hexdigit(),
        });
    valid.then(|| format!("{{{}}}", inner.to_ascii_uppercase()))
}

/// Product code → upgrade code, from an `Installer\UpgradeCodes` key (each subkey is a
/// packed upgrade code whose value names are packed product codes).
pub fn upgrade_codes(
    view: &dyn RegistryView,
    path: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let codes = match view.read_key(path) {
        Ok(Some(key)) => key,
        Ok(None) => return map,
        Err(error) => {
            problems.push(error.to_string());
            return map;
        }
    };
    for packed_upgrade in codes.subkeys.iter().take(MAX_ENTRIES) {
        let Some(upgrade) = unpack_guid(packed_upgrade) else {
            continue;
        };
        match view.read_key(&format!("{path}\\{packed_upgrade}")) {
            Ok(Some(key)) => {
                for (packed_product, _) in &key.values {
                    if let Some(product) = unpack_guid(packed_product) {
                        map.insert(product, upgrade.clone());
                    }
                }
            }
            Ok(None) => {}
            Err(error) => problems.push(error.to_string()),
        }
    }
    map
}

/// One uninstall key as an observation; problems with its values are returned (the
/// entry is still reported with what could be read).
pub fn uninstall_entry(
    key_name: &str,
    key: &RegistryKey,
    hive: &str,
    upgrade_codes: &BTreeMap<String, String>,
) -> (Observed, Vec<String>) {
    let mut problems: Vec<String> = key
        .problems
        .iter()
        .map(|problem| format!("uninstall key {key_name}: {problem}"))
        .collect();
    let mut text = |name: &str| match key.string(name) {
        Ok(value) => value,
        Err(message) => {
            problems.push(format!("uninstall key {key_name}: {message}"));
            None
        }
    };
    let display_name = text("DisplayName").unwrap_or_default();
    let display_version = text("DisplayVersion");
    let publisher = text("Publisher");
    let upgrade_code = key
        .lines("BundleUpgradeCode")
        .iter()
        .chain(key.lines("UpgradeCode").iter())
        .find_map(|code| normalize_guid(code))
        .or_else(|| {
            normalize_guid(key_name).and_then(|product| upgrade_codes.get(&product).cloned())
        });
    (
        Observed::UninstallEntry {
            key_name: key_name.to_string(),
            display_name,
            display_version,
            publisher,
            upgrade_code,
            hive: hive.to_string(),
        },
        problems,
    )
}

/// The product ids of Office Click-to-Run's `ProductReleaseIds` (`A,B,C`).
pub fn office_product_ids(key: &RegistryKey) -> Vec<String> {
    key.string("ProductReleaseIds")
        .ok()
        .flatten()
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.len() <= 128)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
pub struct UninstallKeySource;

impl EvidenceSource for UninstallKeySource {
    fn kind(&self) -> SourceKind {
        SourceKind::UninstallKey
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let Some(windows) = context.windows else {
            return;
        };
        let mut problems = Vec::new();
        if let Some(software) = &windows.software {
            let codes = upgrade_codes(software.as_ref(), MACHINE_UPGRADE_CODES, &mut problems);
            for (path, hive) in [
                (MACHINE_UNINSTALL, "HKLM"),
                (MACHINE_UNINSTALL_32, "HKLM\\WOW6432Node"),
            ] {
                read_uninstall(software.as_ref(), path, hive, &codes, None, output);
            }
            match software.read_key(CLICK_TO_RUN) {
                Ok(Some(key)) => {
                    for product_id in office_product_ids(&key) {
                        output.observations.push(Observation {
                            observed: Observed::OfficeProduct { product_id },
                            path: Some(format!("{}\\{CLICK_TO_RUN}", software.label())),
                            user: None,
                            scope: Scope::Machine,
                            strength: Strength::Installed,
                        });
                    }
                }
                Ok(None) => {}
                Err(error) => problems.push(error.to_string()),
            }
        }
        for user in &windows.users {
            let Some(ntuser) = &user.ntuser else {
                continue;
            };
            let codes = upgrade_codes(ntuser.as_ref(), USER_UPGRADE_CODES, &mut problems);
            read_uninstall(
                ntuser.as_ref(),
                USER_UNINSTALL,
                ntuser.label(),
                &codes,
                Some(&user.user),
                output,
            );
        }
        for problem in problems {
            output.error(SourceKind::UninstallKey, None, problem);
        }
    }
}

pub fn read_uninstall(
    view: &dyn RegistryView,
    path: &str,
    hive: &str,
    codes: &BTreeMap<String, String>,
    user: Option<&str>,
    output: &mut SourceOutput,
) {
    let list = match view.read_key(path) {
        Ok(Some(list)) => list,
        Ok(None) => return,
        Err(error) => {
            output.error(
                SourceKind::UninstallKey,
                Some(error.location),
                error.message,
            );
            return;
        }
    };
    for key_name in list.subkeys.iter().take(MAX_ENTRIES) {
        let key_path = format!("{path}\\{key_name}");
        match view.read_key(&key_path) {
            Ok(Some(key)) => {
                let (observed, problems) = uninstall_entry(key_name, &key, hive, codes);
                let location = format!("{}\\{key_path}", view.label());
                for problem in problems {
                    output.error(SourceKind::UninstallKey, Some(location.clone()), problem);
                }
                output.observations.push(Observation {
                    observed,
                    path: Some(location),
                    user: user.map(str::to_string),
                    scope: Scope::of_profile(&user),
                    strength: Strength::Installed,
                });
            }
            Ok(None) => {}
            Err(error) => output.error(
                SourceKind::UninstallKey,
                Some(error.location),
                error.message,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::registry::RegValue;

    #[test]
    fn packed_guids_unpack() {
        // The Teams Machine-Wide Installer's upgrade code, as MSI packs it.
        assert_eq!(
            unpack_guid("E0EB900415D519D59BC40DD0B7F58E92").as_deref(),
            Some("{4009BE0E-5D51-5D91-B94C-D00D7B5FE829}")
        );
        assert_eq!(unpack_guid("xyz"), None);
        assert_eq!(
            normalize_guid(" {cc3c191e-4119-4ab3-917a-96eac8774e60} ").as_deref(),
            Some("{CC3C191E-4119-4AB3-917A-96EAC8774E60}")
        );
        assert_eq!(normalize_guid("Discord"), None);
    }

    #[test]
    fn entries_read_what_they_can() {
        let key = RegistryKey {
            subkeys: vec![],
            values: vec![
                ("DisplayName".into(), RegValue::String("Viber".into())),
                ("Publisher".into(), RegValue::Dword(1)),
                (
                    "BundleUpgradeCode".into(),
                    RegValue::MultiString(vec!["{e01cb858-abec-4384-bfbf-985024a4a8db}".into()]),
                ),
            ],
            problems: vec![],
        };
        let (observed, problems) =
            uninstall_entry("{0A}", &key, "HKU\\S-1-5-21-1", &BTreeMap::new());
        let Observed::UninstallEntry {
            display_name,
            publisher,
            upgrade_code,
            ..
        } = observed
        else {
            unreachable!("an uninstall entry")
        };
        assert_eq!(display_name, "Viber");
        assert_eq!(publisher, None);
        assert_eq!(
            upgrade_code.as_deref(),
            Some("{E01CB858-ABEC-4384-BFBF-985024A4A8DB}")
        );
        assert_eq!(problems.len(), 1, "{problems:?}");

        let msi = RegistryKey::default();
        let codes = BTreeMap::from([(
            "{731F6BAA-A986-45A4-8936-7C3AAAAA760B}".to_string(),
            "{4009BE0E-5D51-5D91-B94C-D00D7B5FE829}".to_string(),
        )]);
        let (observed, _) = uninstall_entry(
            "{731f6baa-a986-45a4-8936-7c3aaaaa760b}",
            &msi,
            "HKLM",
            &codes,
        );
        assert!(matches!(
            observed,
            Observed::UninstallEntry { upgrade_code: Some(code), .. } if code == "{4009BE0E-5D51-5D91-B94C-D00D7B5FE829}"
        ));
    }

    #[test]
    fn office_products_are_split() {
        let key = RegistryKey {
            values: vec![(
                "ProductReleaseIds".into(),
                RegValue::String("O365ProPlusRetail, SkypeforBusinessRetail,".into()),
            )],
            ..RegistryKey::default()
        };
        assert_eq!(
            office_product_ids(&key),
            vec!["O365ProPlusRetail", "SkypeforBusinessRetail"]
        );
    }
}
