//! What an evidence source saw, before the catalog says what it means.
//!
//! Sources report every package they list (that is also the machine's software
//! inventory), but only the files, launchers and processes the catalog asked about.

use serde::{Deserialize, Serialize};

use crate::report::{Scope, SourceKind, Strength};

/// One thing a source saw, with where it saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub observed: Observed,
    /// A path a person can check: the package database, the file, the launcher.
    pub path: Option<String>,
    /// The user profile it belongs to, when it belongs to one.
    pub user: Option<String>,
    pub scope: Scope,
    pub strength: Strength,
}

/// The kinds of things sources observe. Each variant names what the catalog matches on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observed {
    /// A package from a package database (dpkg or rpm).
    Package {
        manager: PackageManager,
        name: String,
        version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor: Option<String>,
    },
    Flatpak {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
    },
    Snap {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<String>,
    },
    /// A `.desktop` launcher.
    DesktopEntry {
        file_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The program the launcher starts (first word of `Exec`, unquoted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        program: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wm_class: Option<String>,
    },
    /// A program file found on disk; `path` holds its full path.
    File {
        file_name: String,
        format: FileFormat,
    },
    /// A data folder that exists; `relative_path` is relative to the user's home.
    DataDir { relative_path: String },
    Process {
        pid: u32,
        /// The process name as the kernel reports it (may be truncated).
        name: String,
        /// The executable's full path when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        executable: Option<String>,
    },
}

impl Observed {
    pub fn source_kind(&self) -> SourceKind {
        match self {
            Observed::Package {
                manager: PackageManager::Dpkg,
                ..
            } => SourceKind::Dpkg,
            Observed::Package {
                manager: PackageManager::Rpm,
                ..
            } => SourceKind::Rpm,
            Observed::Flatpak { .. } => SourceKind::Flatpak,
            Observed::Snap { .. } => SourceKind::Snap,
            Observed::DesktopEntry { .. } => SourceKind::DesktopEntry,
            Observed::File { .. } => SourceKind::File,
            Observed::DataDir { .. } => SourceKind::DataDir,
            Observed::Process { .. } => SourceKind::Process,
        }
    }

    /// A one-line description for people, used as the evidence `detail`.
    pub fn describe(&self) -> String {
        match self {
            Observed::Package {
                manager,
                name,
                version,
                ..
            } => format!("{} package {name} {version}", manager.as_str()),
            Observed::Flatpak { id, branch } => match branch {
                Some(branch) => format!("flatpak {id} ({branch})"),
                None => format!("flatpak {id}"),
            },
            Observed::Snap { name, revision } => match revision {
                Some(revision) => format!("snap {name} (revision {revision})"),
                None => format!("snap {name}"),
            },
            Observed::DesktopEntry {
                file_name, program, ..
            } => match program {
                Some(program) => format!("launcher {file_name} starts {program}"),
                None => format!("launcher {file_name}"),
            },
            Observed::File { file_name, format } => {
                format!("{} {file_name}", format.as_str())
            }
            Observed::DataDir { relative_path } => {
                format!("leftover data folder ~/{relative_path} (not read)")
            }
            Observed::Process {
                pid,
                name,
                executable,
            } => match executable {
                Some(executable) => format!("process {name} (pid {pid}) running {executable}"),
                None => format!("process {name} (pid {pid})"),
            },
        }
    }

    pub fn version(&self) -> Option<&str> {
        match self {
            Observed::Package { version, .. } if !version.is_empty() => Some(version),
            Observed::Flatpak { branch, .. } => branch.as_deref(),
            Observed::Snap { revision, .. } => revision.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    Dpkg,
    Rpm,
}

impl PackageManager {
    pub const fn as_str(self) -> &'static str {
        match self {
            PackageManager::Dpkg => "dpkg",
            PackageManager::Rpm => "rpm",
        }
    }
}

/// What the first bytes of a program file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// A Linux ELF executable.
    Elf,
    /// An AppImage (ELF with the AppImage magic at offset 8).
    AppImage,
    /// A Windows PE executable.
    Pe,
}

impl FileFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            FileFormat::Elf => "program",
            FileFormat::AppImage => "AppImage",
            FileFormat::Pe => "Windows program",
        }
    }

    /// Recognises a program from at most its first 16 bytes; `None` for anything else
    /// (scripts, data, text), which is never reported as a program.
    pub fn sniff(header: &[u8]) -> Option<FileFormat> {
        if header.starts_with(b"\x7fELF") {
            if header.get(8..11) == Some(b"AI\x02") || header.get(8..11) == Some(b"AI\x01") {
                Some(FileFormat::AppImage)
            } else {
                Some(FileFormat::Elf)
            }
        } else if header.starts_with(b"MZ") {
            Some(FileFormat::Pe)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_tells_programs_from_everything_else() {
        let appimage = b"\x7fELF\x02\x01\x01\x00AI\x02\x00\x00\x00\x00\x00";
        assert_eq!(FileFormat::sniff(appimage), Some(FileFormat::AppImage));
        assert_eq!(
            FileFormat::sniff(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00"),
            Some(FileFormat::Elf)
        );
        assert_eq!(FileFormat::sniff(b"MZ\x90\x00"), Some(FileFormat::Pe));
        assert_eq!(FileFormat::sniff(b"#!/bin/sh\n"), None);
        assert_eq!(FileFormat::sniff(b""), None);
        assert_eq!(FileFormat::sniff(b"\x7fEL"), None);
    }
}
