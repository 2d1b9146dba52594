//! Flatpak: applications installed system-wide (`/var/lib/flatpak/app`) and per user
//! (`~/.local/share/flatpak/app`). An application folder holds `<arch>/<branch>`
//! deployments and a `current` link to the active one.

use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};

pub const SYSTEM_APPS: &str = "/var/lib/flatpak/app";
pub const USER_APPS: &str = ".local/share/flatpak/app";

/// The branch of the active deployment from the `current` link (`x86_64/stable`).
pub fn parse_current_link(target: &str) -> Option<String> {
    let mut parts = target.trim_end_matches('/').split('/');
    let arch = parts.next()?;
    let branch = parts.next()?;
    (parts.next().is_none() && !arch.is_empty() && !branch.is_empty()).then(|| branch.to_string())
}

/// Whether a folder name looks like a flatpak application id (reverse DNS).
pub fn is_application_id(name: &str) -> bool {
    name.split('.').count() >= 2
        && name.split('.').all(|part| !part.is_empty())
        && name.len() <= 255
        && name.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-')
        })
}

#[derive(Debug)]
pub struct FlatpakSource;

impl EvidenceSource for FlatpakSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Flatpak
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let mut installations = vec![(SYSTEM_APPS.to_string(), None)];
        for user in &context.profiles.users {
            installations.push((
                format!("{}/{USER_APPS}", user.home),
                Some(user.name.clone()),
            ));
        }
        for (folder, user) in installations {
            let Some(entries) = output.list_folder(context, SourceKind::Flatpak, &folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !is_application_id(&id) {
                    continue;
                }
                let branch = std::fs::read_link(entry.path().join("current"))
                    .ok()
                    .and_then(|target| parse_current_link(&target.to_string_lossy()));
                output.observations.push(Observation {
                    path: Some(format!("{folder}/{id}")),
                    observed: Observed::Flatpak { id, branch },
                    scope: Scope::of_profile(&user),
                    user: user.clone(),
                    strength: Strength::Installed,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_links_and_ids() {
        assert_eq!(parse_current_link("x86_64/stable"), Some("stable".into()));
        assert_eq!(parse_current_link("x86_64/stable/"), Some("stable".into()));
        assert_eq!(parse_current_link("stable"), None);
        assert_eq!(parse_current_link("../../etc/passwd"), None);
        assert!(is_application_id("org.telegram.desktop"));
        assert!(!is_application_id(".removed"));
        assert!(!is_application_id("README"));
    }
}
