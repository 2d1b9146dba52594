//! Snap: mounted snaps under `/snap/<name>/current` and the package files
//! `/var/lib/snapd/snaps/<name>_<revision>.snap` (present even when the image is not
//! running and nothing is mounted).

use std::collections::BTreeMap;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};

pub const MOUNTS: &str = "/snap";
pub const PACKAGE_FILES: &str = "/var/lib/snapd/snaps";

/// `telegram-desktop_6123.snap` → (`telegram-desktop`, `6123`).
pub fn parse_snap_file_name(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".snap")?;
    let (name, revision) = stem.rsplit_once('_')?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || matches!(character, '-' | '_')
        });
    let valid_revision = !revision.is_empty()
        && revision
            .chars()
            .all(|character| character.is_ascii_alphanumeric());
    (valid_name && valid_revision).then(|| (name.to_string(), revision.to_string()))
}

#[derive(Debug)]
pub struct SnapSource;

impl EvidenceSource for SnapSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Snap
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        // name → (revision, path)
        let mut snaps: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
        if let Some(entries) = output.list_folder(context, SourceKind::Snap, PACKAGE_FILES) {
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if let Some((name, revision)) = parse_snap_file_name(&file_name) {
                    snaps.insert(
                        name,
                        (Some(revision), format!("{PACKAGE_FILES}/{file_name}")),
                    );
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(context.root.path(MOUNTS)) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let current = entry.path().join("current");
                if name == "bin" || std::fs::symlink_metadata(&current).is_err() {
                    continue;
                }
                let revision = std::fs::read_link(&current)
                    .ok()
                    .map(|target| target.to_string_lossy().into_owned());
                snaps
                    .entry(name.clone())
                    .or_insert((revision, format!("{MOUNTS}/{name}")));
            }
        }
        for (name, (revision, path)) in snaps {
            output.observations.push(Observation {
                observed: Observed::Snap { name, revision },
                path: Some(path),
                user: None,
                scope: Scope::Machine,
                strength: Strength::Installed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_file_names() {
        assert_eq!(
            parse_snap_file_name("telegram-desktop_6123.snap"),
            Some(("telegram-desktop".into(), "6123".into()))
        );
        assert_eq!(
            parse_snap_file_name("core22_x1.snap"),
            Some(("core22".into(), "x1".into()))
        );
        assert_eq!(parse_snap_file_name("partial"), None);
        assert_eq!(parse_snap_file_name("_1.snap"), None);
        assert_eq!(parse_snap_file_name("Bad Name_1.snap"), None);
    }
}
