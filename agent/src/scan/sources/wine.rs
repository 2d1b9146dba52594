//! Windows programs under Wine on Linux (common on Astra): every user's Wine prefixes
//! (`~/.wine`, `~/.local/share/wineprefixes/*`, PlayOnLinux's `~/.PlayOnLinux/wineprefix/*`,
//! Bottles' `~/.local/share/bottles/bottles/*` and its flatpak's, Lutris' `~/Games/*`).
//! In each, `drive_c` is walked like a Windows system's folders (Program Files,
//! ProgramData, each Wine user's AppData, Downloads and Desktop), with every `.exe`'s
//! version resource read, and `system.reg`/`user.reg` are parsed
//! ([`crate::scan::registry::wine_reg`]) for the same uninstall keys a Windows PC has.
//! Evidence belongs to the Linux user, and its path names the prefix.

use std::path::PathBuf;
use std::sync::Arc;

use sverka_shared::SourceKind;

use super::uninstall::{
    MACHINE_UNINSTALL, MACHINE_UNINSTALL_32, MACHINE_UPGRADE_CODES, USER_UNINSTALL,
    USER_UPGRADE_CODES, read_uninstall, upgrade_codes,
};
use super::{EvidenceSource, ScanContext, SourceOutput, files};
use crate::scan::fsread::read_bounded;
use crate::scan::registry::RegistryView;
use crate::scan::registry::wine_reg::{
    MAX_REGISTRY_FILE_BYTES, WineRegistryView, parse_wine_registry,
};
use crate::scan::root::ScanRoot;

/// Single prefixes, relative to a home.
const PREFIXES: &[&str] = &[".wine"];
/// Folders of prefixes, relative to a home: each folder inside is a prefix.
const PREFIX_FOLDERS: &[&str] = &[
    ".local/share/wineprefixes",
    ".PlayOnLinux/wineprefix",
    ".local/share/bottles/bottles",
    ".var/app/com.usebottles.bottles/data/bottles/bottles",
    "Games",
];
/// Folders of `drive_c` walked for every prefix.
const MACHINE_FOLDERS: &[&str] = &["Program Files", "Program Files (x86)", "ProgramData"];
/// Folders of each Wine user (`drive_c/users/<name>`), walked.
const PROFILE_FOLDERS: &[&str] = &[
    "AppData/Roaming",
    "AppData/Local",
    "Application Data",
    "Local Settings/Application Data",
    "Downloads",
    "Desktop",
];
const MAX_PREFIXES_PER_FOLDER: usize = 256;

/// The Wine prefixes of a home, as paths of the scanned system: folders with a
/// `system.reg` or a `drive_c`.
pub fn prefixes_of(root: &ScanRoot, home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    let mut candidates: Vec<String> = PREFIXES
        .iter()
        .map(|prefix| format!("{home}/{prefix}"))
        .collect();
    for folder in PREFIX_FOLDERS {
        let shown = format!("{home}/{folder}");
        let Ok(entries) = std::fs::read_dir(root.path(&shown)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .take(MAX_PREFIXES_PER_FOLDER)
            .collect();
        names.sort();
        candidates.extend(names.into_iter().map(|name| format!("{shown}/{name}")));
    }
    candidates
        .into_iter()
        .filter(|prefix| {
            let local = root.path(prefix);
            is_real_dir(&local.join("drive_c")) || local.join("system.reg").is_file()
        })
        .collect()
}

/// A folder, not a link to one.
fn is_real_dir(local: &std::path::Path) -> bool {
    std::fs::symlink_metadata(local)
        .map(|metadata| metadata.is_dir())
        .unwrap_or(false)
}

#[derive(Debug)]
pub struct WinePrefixSource;

impl EvidenceSource for WinePrefixSource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        if context.windows.is_some() {
            return;
        }
        for user in &context.profiles.users {
            for prefix in prefixes_of(context.root, &user.home) {
                read_registry(context, &prefix, &user.name, output);
                walk_drive_c(context, &prefix, &user.name, output);
            }
        }
    }
}

/// `system.reg` as `HKLM\SOFTWARE` and `user.reg` as the user's hive: their uninstall
/// entries, with the uninstall logic of a Windows system.
fn read_registry(context: &ScanContext<'_>, prefix: &str, user: &str, output: &mut SourceOutput) {
    let mut problems = Vec::new();
    if let Some(system) = open(context, &format!("{prefix}/system.reg"), "Software", output) {
        let codes = upgrade_codes(&system, MACHINE_UPGRADE_CODES, &mut problems);
        for path in [MACHINE_UNINSTALL, MACHINE_UNINSTALL_32] {
            read_uninstall(&system, path, system.label(), &codes, Some(user), output);
        }
    }
    if let Some(user_hive) = open(context, &format!("{prefix}/user.reg"), "", output) {
        let codes = upgrade_codes(&user_hive, USER_UPGRADE_CODES, &mut problems);
        read_uninstall(
            &user_hive,
            USER_UNINSTALL,
            user_hive.label(),
            &codes,
            Some(user),
            output,
        );
    }
    for problem in problems {
        output.error(SourceKind::UninstallKey, Some(prefix.to_string()), problem);
    }
}

fn open(
    context: &ScanContext<'_>,
    file: &str,
    base: &str,
    output: &mut SourceOutput,
) -> Option<WineRegistryView> {
    let local = context.root.path(file);
    let (bytes, truncated) = match read_bounded(&local, MAX_REGISTRY_FILE_BYTES) {
        Ok(read) => read,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            output.error(
                SourceKind::UninstallKey,
                Some(file.to_string()),
                format!("cannot read: {error}"),
            );
            return None;
        }
    };
    if truncated {
        output.error(
            SourceKind::UninstallKey,
            Some(file.to_string()),
            format!("larger than {MAX_REGISTRY_FILE_BYTES} bytes: only the beginning was read"),
        );
    }
    match parse_wine_registry(&bytes) {
        Ok(registry) => Some(WineRegistryView::new(
            file.to_string(),
            Arc::new(registry),
            base,
        )),
        Err(error) => {
            output.error(
                SourceKind::UninstallKey,
                Some(file.to_string()),
                error.to_string(),
            );
            None
        }
    }
}

/// `drive_c`'s program folders and every Wine user's profile folders.
fn walk_drive_c(context: &ScanContext<'_>, prefix: &str, user: &str, output: &mut SourceOutput) {
    for folder in walked_folders(context.root, prefix) {
        let start: PathBuf = context.root.path(&folder);
        files::walk(context, start, &folder, Some(user), true, output);
    }
}

/// The folders of a prefix's `drive_c` this source walks (paths of the scanned system):
/// the program folders and every Wine user's profile folders.
pub fn walked_folders(root: &ScanRoot, prefix: &str) -> Vec<String> {
    let drive_c = format!("{prefix}/drive_c");
    let mut folders: Vec<String> = MACHINE_FOLDERS
        .iter()
        .map(|folder| format!("{drive_c}/{folder}"))
        .collect();
    if let Ok(entries) = std::fs::read_dir(root.path(format!("{drive_c}/users"))) {
        let mut wine_users: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .take(MAX_PREFIXES_PER_FOLDER)
            .collect();
        wine_users.sort();
        for wine_user in wine_users {
            for folder in PROFILE_FOLDERS {
                folders.push(format!("{drive_c}/users/{wine_user}/{folder}"));
            }
        }
    }
    folders
}
