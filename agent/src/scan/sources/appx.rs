//! MSIX/AppX packages (new Teams, WhatsApp, Telegram from the Store, Threema 2.x):
//! each user's AppModel repository (in the classes hive, `UsrClass.dat` for logged-off
//! users), the provisioned and per-user lists of `AppxAllUserStore`, and the package
//! folders under `C:\Program Files\WindowsApps`. Matched by package family name; every
//! package is reported, as inventory.

use sverka_shared::observation::PackageFullName;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::registry::RegistryView;

pub const USER_REPOSITORY: &str =
    "Local Settings\\Software\\Microsoft\\Windows\\CurrentVersion\\AppModel\\Repository\\Packages";
pub const ALL_USER_STORE: &str = "Microsoft\\Windows\\CurrentVersion\\Appx\\AppxAllUserStore";
pub const WINDOWS_APPS: &str = "C:\\Program Files\\WindowsApps";
const MAX_PACKAGES: usize = 100_000;

/// A package as an observation; `None` for a name that is not a package full name.
pub fn appx_observation(
    full_name: &str,
    origin: &str,
    path: String,
    user: Option<&str>,
) -> Option<Observation> {
    let parsed = PackageFullName::parse(full_name)?;
    Some(Observation {
        observed: Observed::AppxPackage {
            full_name: full_name.to_string(),
            family_name: parsed.family_name(),
            version: parsed.version.to_string(),
            origin: origin.to_string(),
        },
        path: Some(path),
        user: user.map(str::to_string),
        scope: Scope::of_profile(&user),
        strength: Strength::Installed,
    })
}

#[derive(Debug)]
pub struct AppxSource;

impl EvidenceSource for AppxSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Appx
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let Some(windows) = context.windows else {
            return;
        };
        for user in &windows.users {
            if let Some(classes) = &user.classes {
                list_packages(
                    classes.as_ref(),
                    USER_REPOSITORY,
                    "user repository",
                    Some(&user.user),
                    output,
                );
            }
        }
        if let Some(software) = &windows.software {
            list_packages(
                software.as_ref(),
                &format!("{ALL_USER_STORE}\\Applications"),
                "provisioned",
                None,
                output,
            );
            // Per-user lists: AppxAllUserStore\<SID>\<package>.
            if let Ok(Some(store)) = software.read_key(ALL_USER_STORE) {
                for sid in store.subkeys.iter().filter(|name| name.starts_with("S-1-")) {
                    let user = context.profiles.names_by_sid.get(sid).cloned();
                    let user = user.unwrap_or_else(|| sid.clone());
                    list_packages(
                        software.as_ref(),
                        &format!("{ALL_USER_STORE}\\{sid}"),
                        "all-user store",
                        Some(&user),
                        output,
                    );
                }
            }
        }
        if let Some(folders) = output.list_folder_windows(context, SourceKind::Appx, WINDOWS_APPS) {
            for folder in folders.flatten().take(MAX_PACKAGES) {
                let name = folder.file_name().to_string_lossy().into_owned();
                let path = context.root.display(&folder.path());
                if let Some(observation) = appx_observation(&name, "WindowsApps folder", path, None)
                {
                    output.observations.push(observation);
                }
            }
        }
    }
}

fn list_packages(
    view: &dyn RegistryView,
    path: &str,
    origin: &str,
    user: Option<&str>,
    output: &mut SourceOutput,
) {
    match view.read_key(path) {
        Ok(Some(key)) => {
            for full_name in key.subkeys.iter().take(MAX_PACKAGES) {
                let location = format!("{}\\{path}\\{full_name}", view.label());
                if let Some(observation) = appx_observation(full_name, origin, location, user) {
                    output.observations.push(observation);
                }
            }
        }
        Ok(None) => {}
        Err(error) => output.error(SourceKind::Appx, Some(error.location), error.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_become_observations_and_other_names_do_not() {
        let teams = appx_observation(
            "MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe",
            "provisioned",
            "HKLM".into(),
            None,
        )
        .expect("a package");
        assert!(matches!(
            &teams.observed,
            Observed::AppxPackage { family_name, version, .. }
                if family_name == "MSTeams_8wekyb3d8bbwe" && version == "24295.605.3225.8804"
        ));
        assert!(appx_observation("Deleted", "WindowsApps folder", "x".into(), None).is_none());
        assert!(
            appx_observation("MovedPackages", "WindowsApps folder", "x".into(), None).is_none()
        );
    }
}
