//! A Windows system as the sources see it: its registry hives (live, or hive files for
//! logged-off users and for `--root` on a mounted Windows volume) and its user profiles
//! (`ProfileList` plus the folders under `C:\Users`).
//!
//! The profile logic is pure over [`RegistryView`]s and paths under the [`ScanRoot`], so
//! it runs on Linux against a fake Windows volume.

use std::collections::BTreeMap;
use sverka_shared::{SourceError, SourceKind};

use crate::scan::registry::{HiveFileView, RegistryView, expand_system_variables};
use crate::scan::root::ScanRoot;
use crate::scan::users::{Profiles, UserProfile};

pub const PROFILE_LIST: &str = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";
/// Where a user's classes hive (the per-user AppX repository) lives in a profile.
pub const USR_CLASS: &str = "AppData\\Local\\Microsoft\\Windows\\UsrClass.dat";
/// Folders under `C:\Users` that are not people.
const NOT_PEOPLE: &[&str] = &["Public", "Default", "Default User", "All Users"];

/// A user's registry hives, when they could be opened.
#[derive(Debug)]
pub struct UserHives {
    pub user: String,
    /// `NTUSER.DAT`: `Software\Microsoft\Windows\CurrentVersion\Uninstall`, ...
    pub ntuser: Option<Box<dyn RegistryView>>,
    /// `UsrClass.dat`: `Local Settings\Software\Microsoft\...\AppModel\Repository`.
    pub classes: Option<Box<dyn RegistryView>>,
}

/// The registry of the scanned Windows system.
#[derive(Debug, Default)]
pub struct WindowsSystem {
    /// `HKLM\SOFTWARE` (or `Windows\System32\config\SOFTWARE`).
    pub software: Option<Box<dyn RegistryView>>,
    /// `HKLM\SYSTEM`, for the computer name.
    pub system: Option<Box<dyn RegistryView>>,
    pub users: Vec<UserHives>,
    /// Hives that could not be opened.
    pub errors: Vec<SourceError>,
}

/// One `ProfileList` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileListEntry {
    pub sid: String,
    /// `C:\Users\anna`, variables expanded.
    pub path: String,
}

/// Reads `ProfileList`: people's profiles (service accounts left out) and the folder
/// that holds profiles. Problems are returned as text.
pub fn parse_profile_list(
    software: &dyn RegistryView,
) -> (Vec<ProfileListEntry>, Option<String>, Vec<String>) {
    let mut problems = Vec::new();
    let list = match software.read_key(PROFILE_LIST) {
        Ok(Some(list)) => list,
        Ok(None) => return (Vec::new(), None, problems),
        Err(error) => {
            problems.push(error.to_string());
            return (Vec::new(), None, problems);
        }
    };
    let profiles_directory = list
        .string("ProfilesDirectory")
        .ok()
        .flatten()
        .map(|path| expand_system_variables(&path));
    let mut entries = Vec::new();
    for sid in &list.subkeys {
        if !sid.starts_with("S-1-5-21-") && !sid.starts_with("S-1-12-1-") {
            continue; // SYSTEM, LOCAL SERVICE, NETWORK SERVICE
        }
        match software.read_key(&format!("{PROFILE_LIST}\\{sid}")) {
            Ok(Some(key)) => match key.string("ProfileImagePath") {
                Ok(Some(path)) => entries.push(ProfileListEntry {
                    sid: sid.clone(),
                    path: expand_system_variables(&path),
                }),
                Ok(None) => problems.push(format!("profile {sid} has no ProfileImagePath")),
                Err(message) => problems.push(format!("profile {sid}: {message}")),
            },
            Ok(None) => {}
            Err(error) => problems.push(error.to_string()),
        }
    }
    (entries, profiles_directory, problems)
}

/// The last component of a Windows path: a profile's user name.
pub fn last_component(path: &str) -> &str {
    path.trim_end_matches(['\\', '/'])
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
}

fn open_software(root: &ScanRoot) -> Result<Box<dyn RegistryView>, SourceError> {
    #[cfg(windows)]
    if root.is_live() {
        return Ok(Box::new(crate::scan::registry::live::LiveView::software()));
    }
    open_hive_file(root, "C:\\Windows\\System32\\config\\SOFTWARE")
}

fn open_system(root: &ScanRoot) -> Result<Box<dyn RegistryView>, SourceError> {
    #[cfg(windows)]
    if root.is_live() {
        return Ok(Box::new(crate::scan::registry::live::LiveView::system()));
    }
    open_hive_file(root, "C:\\Windows\\System32\\config\\SYSTEM")
}

fn open_hive_file(root: &ScanRoot, path: &str) -> Result<Box<dyn RegistryView>, SourceError> {
    let local = root.windows_path(path);
    HiveFileView::open(&local, path.to_string())
        .map(|view| Box::new(view) as Box<dyn RegistryView>)
        .map_err(|error| SourceError {
            source: SourceKind::UninstallKey,
            message: error.message,
            path: Some(error.location),
        })
}

/// The hives loaded under `HKEY_USERS` (live scans on Windows only).
fn loaded_hives(root: &ScanRoot, errors: &mut Vec<SourceError>) -> Vec<String> {
    #[cfg(windows)]
    if root.is_live() {
        return match crate::scan::registry::live::loaded_user_hives() {
            Ok(names) => names,
            Err(error) => {
                errors.push(SourceError {
                    source: SourceKind::UninstallKey,
                    message: error.to_string(),
                    path: None,
                });
                Vec::new()
            }
        };
    }
    let _ = (root, errors);
    Vec::new()
}

impl WindowsSystem {
    /// Opens the machine's hives, finds the profiles and opens each profile's hives:
    /// live under `HKEY_USERS` when loaded, from the profile's files otherwise.
    pub fn open(root: &ScanRoot) -> (WindowsSystem, Profiles) {
        let mut system = WindowsSystem::default();
        let mut profiles = Profiles::default();
        match open_software(root) {
            Ok(view) => system.software = Some(view),
            Err(error) => system.errors.push(error),
        }
        system.system = open_system(root).ok();
        let (entries, profiles_directory, problems) = match &system.software {
            Some(software) => parse_profile_list(software.as_ref()),
            None => (Vec::new(), None, Vec::new()),
        };
        profiles.problems.extend(problems);
        let loaded = loaded_hives(root, &mut system.errors);

        // Profiles by home folder (lower-cased), from ProfileList and from the folder.
        let mut by_home: BTreeMap<String, UserProfile> = BTreeMap::new();
        for entry in entries {
            let local = root.windows_path(&entry.path);
            if !local.is_dir() {
                profiles.problems.push(format!(
                    "profile {} points to {}, which does not exist",
                    entry.sid, entry.path
                ));
                continue;
            }
            let name = last_component(&entry.path).to_string();
            profiles
                .names_by_sid
                .insert(entry.sid.clone(), name.clone());
            by_home.insert(
                entry.path.to_lowercase(),
                UserProfile {
                    name,
                    home: entry.path.clone(),
                    uid: None,
                    loaded: loaded.iter().any(|hive| hive == &entry.sid),
                    sid: Some(entry.sid),
                    last_used: None,
                },
            );
        }
        let users_folder = profiles_directory.unwrap_or_else(|| "C:\\Users".into());
        let local_users = root.windows_path(&users_folder);
        match std::fs::read_dir(&local_users) {
            Ok(folders) => {
                for folder in folders.flatten() {
                    let is_dir = folder
                        .file_type()
                        .map(|kind| kind.is_dir())
                        .unwrap_or(false);
                    let name = folder.file_name().to_string_lossy().into_owned();
                    if !is_dir
                        || NOT_PEOPLE
                            .iter()
                            .any(|skip| skip.eq_ignore_ascii_case(&name))
                    {
                        continue;
                    }
                    let home = format!("{}\\{name}", users_folder.trim_end_matches('\\'));
                    by_home
                        .entry(home.to_lowercase())
                        .or_insert_with(|| UserProfile {
                            name,
                            home,
                            uid: None,
                            sid: None,
                            loaded: false,
                            last_used: None,
                        });
                }
            }
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => profiles
                .problems
                .push(format!("{users_folder} cannot be listed: {error}")),
            Err(_) => {}
        }
        profiles.users = by_home.into_values().collect();

        for user in &profiles.users {
            let hives = system.user_hives(root, user, &loaded);
            system.users.push(hives);
        }
        (system, profiles)
    }

    fn user_hives(&mut self, root: &ScanRoot, user: &UserProfile, loaded: &[String]) -> UserHives {
        let mut hives = UserHives {
            user: user.name.clone(),
            ntuser: None,
            classes: None,
        };
        #[cfg(windows)]
        if root.is_live()
            && let Some(sid) = &user.sid
            && user.loaded
        {
            use crate::scan::registry::live::LiveView;
            hives.ntuser = Some(Box::new(LiveView::user(sid)));
            let classes = format!("{sid}_Classes");
            hives.classes = Some(if loaded.iter().any(|hive| hive == &classes) {
                Box::new(LiveView::user(&classes))
            } else {
                Box::new(LiveView::user(&format!("{sid}\\Software\\Classes")))
            });
            return hives;
        }
        let _ = loaded;
        let home = user.home.trim_end_matches('\\');
        for (file, slot) in [
            ("NTUSER.DAT", &mut hives.ntuser),
            (USR_CLASS, &mut hives.classes),
        ] {
            let path = format!("{home}\\{file}");
            let local = root.windows_path(&path);
            if !local.exists() {
                continue;
            }
            match HiveFileView::open(&local, path.clone()) {
                Ok(view) => *slot = Some(Box::new(view)),
                Err(error) => self.errors.push(SourceError {
                    source: SourceKind::UninstallKey,
                    message: format!("user {}: {}", user.name, error.message),
                    path: Some(path),
                }),
            }
        }
        hives
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_software() -> HiveFileView {
        let bytes = include_bytes!("../../../tests/fixtures/windows/SOFTWARE").to_vec();
        HiveFileView::from_bytes(bytes, "SOFTWARE".into()).expect("fixture hive")
    }

    #[test]
    fn profile_list_gives_people_with_expanded_paths() {
        let (entries, directory, problems) = parse_profile_list(&fixture_software());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(directory.as_deref(), Some("C:\\Users"));
        let paths: Vec<(&str, &str)> = entries
            .iter()
            .map(|entry| (entry.sid.as_str(), entry.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("S-1-5-21-1111-2222-3333-1001", "C:\\Users\\anna"),
                ("S-1-5-21-1111-2222-3333-1002", "C:\\Users\\boris"),
                ("S-1-5-21-1111-2222-3333-1009", "C:\\Users\\left-the-school"),
            ],
            "S-1-5-18 (SYSTEM) is not a person"
        );
    }

    #[test]
    fn host_facts_come_from_the_hives() {
        let host = crate::scan::host::describe_windows(Some(&fixture_software()), None);
        assert_eq!(host.os_id, "windows");
        assert_eq!(host.os_name, "Windows 10 Pro");
        assert_eq!(host.os_version, "22H2 (build 19045)");
        assert_eq!(
            host.machine_id.as_deref(),
            Some("6f1c2a9e-4b1d-4c55-9d1e-2f6a7b8c9d01")
        );
        assert_eq!(host.hostname, "");
    }

    #[test]
    fn last_components_name_users() {
        assert_eq!(last_component("C:\\Users\\anna"), "anna");
        assert_eq!(last_component("C:\\Users\\Анна.SCHOOL\\"), "Анна.SCHOOL");
    }
}
