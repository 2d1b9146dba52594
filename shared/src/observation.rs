//! What an evidence source saw, before the catalog says what it means.
//!
//! Sources report every package they list (that is also the machine's software
//! inventory), but only the files, launchers and processes the catalog asked about.

use serde::{Deserialize, Serialize};

use crate::report::{Scope, SourceKind, Strength};

/// One thing a source saw, with where it saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        /// A Windows program's version resource, which names it even when renamed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_info: Option<VersionInfo>,
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
        /// The executable's version resource (Windows programs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_info: Option<VersionInfo>,
    },
    /// An entry of a Windows `...\CurrentVersion\Uninstall` key (Add/Remove Programs).
    UninstallEntry {
        /// The key's own name: a product code `{...}`, `{...}_is1`, or a plain name.
        key_name: String,
        #[serde(default)]
        display_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publisher: Option<String>,
        /// The MSI upgrade code or the bundle upgrade code, braced and upper-case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upgrade_code: Option<String>,
        /// Which registry it was read from: `HKLM`, `HKLM\WOW6432Node`, `HKU\<SID>`.
        hive: String,
    },
    /// An MSIX/AppX package, per user or provisioned for every user.
    AppxPackage {
        /// `Name_Version_Architecture_ResourceId_PublisherId`.
        full_name: String,
        /// `Name_PublisherId`, what the catalog matches.
        family_name: String,
        #[serde(default)]
        version: String,
        /// Where it was listed: `user repository`, `provisioned`, `WindowsApps folder`.
        origin: String,
    },
    /// A Microsoft Office Click-to-Run product (`ProductReleaseIds`).
    OfficeProduct { product_id: String },
    /// A web app (PWA) installed from a Chromium-family browser.
    WebApp {
        browser: String,
        /// The browser profile folder (`Default`, `Profile 1`).
        profile: String,
        #[serde(default)]
        name: String,
        start_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
}

/// The strings of a Windows program's `VS_VERSIONINFO` resource that name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
}

impl VersionInfo {
    pub fn is_empty(&self) -> bool {
        self.company_name.is_none()
            && self.product_name.is_none()
            && self.original_filename.is_none()
            && self.file_description.is_none()
    }

    /// `Viber 24.1 (Viber Media S.à r.l.)`, for evidence details.
    pub fn describe(&self) -> String {
        let name = self
            .product_name
            .as_deref()
            .or(self.file_description.as_deref())
            .or(self.original_filename.as_deref())
            .unwrap_or("?");
        let mut text = name.to_string();
        if let Some(version) = &self.product_version {
            text.push(' ');
            text.push_str(version);
        }
        if let Some(company) = &self.company_name {
            text.push_str(&format!(" ({company})"));
        }
        text
    }
}

/// The parts of an MSIX/AppX package full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFullName<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub resource_id: &'a str,
    pub publisher_id: &'a str,
}

impl<'a> PackageFullName<'a> {
    /// Splits `Name_Version_Arch_ResourceId_PublisherId` (the resource id may be empty or
    /// `~`); `None` for anything else.
    pub fn parse(full_name: &'a str) -> Option<PackageFullName<'a>> {
        let mut parts = full_name.split('_');
        let parsed = PackageFullName {
            name: parts.next()?,
            version: parts.next()?,
            architecture: parts.next()?,
            resource_id: parts.next()?,
            publisher_id: parts.next()?,
        };
        let plausible = parts.next().is_none()
            && !parsed.name.is_empty()
            && parsed.publisher_id.len() == 13
            && parsed
                .publisher_id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric())
            && !parsed.version.is_empty();
        plausible.then_some(parsed)
    }

    pub fn family_name(&self) -> String {
        format!("{}_{}", self.name, self.publisher_id)
    }
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
            Observed::UninstallEntry { .. } | Observed::OfficeProduct { .. } => {
                SourceKind::UninstallKey
            }
            Observed::AppxPackage { .. } => SourceKind::Appx,
            Observed::WebApp { .. } => SourceKind::WebApp,
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
            Observed::File {
                file_name,
                format,
                version_info,
            } => match version_info {
                Some(info) => format!("{} {file_name}: {}", format.as_str(), info.describe()),
                None => format!("{} {file_name}", format.as_str()),
            },
            Observed::DataDir { relative_path } => {
                format!("leftover data folder ~/{relative_path} (not read)")
            }
            Observed::Process {
                pid,
                name,
                executable,
                version_info,
            } => {
                let mut text = match executable {
                    Some(executable) => format!("process {name} (pid {pid}) running {executable}"),
                    None => format!("process {name} (pid {pid})"),
                };
                if let Some(info) = version_info {
                    text.push_str(&format!(": {}", info.describe()));
                }
                text
            }
            Observed::UninstallEntry {
                key_name,
                display_name,
                display_version,
                publisher,
                upgrade_code,
                hive,
            } => {
                let mut text = format!("uninstall entry {hive}\\...\\Uninstall\\{key_name}");
                if !display_name.is_empty() {
                    text.push_str(&format!(" \"{display_name}\""));
                }
                if let Some(version) = display_version {
                    text.push_str(&format!(" {version}"));
                }
                if let Some(publisher) = publisher {
                    text.push_str(&format!(" by {publisher}"));
                }
                if let Some(upgrade_code) = upgrade_code {
                    text.push_str(&format!(", upgrade code {upgrade_code}"));
                }
                text
            }
            Observed::AppxPackage {
                full_name, origin, ..
            } => format!("AppX package {full_name} ({origin})"),
            Observed::OfficeProduct { product_id } => {
                format!("Office Click-to-Run product {product_id}")
            }
            Observed::WebApp {
                browser,
                profile,
                name,
                start_url,
                ..
            } => format!("{browser} web app \"{name}\" ({start_url}), browser profile {profile}"),
        }
    }

    pub fn version(&self) -> Option<&str> {
        match self {
            Observed::Package { version, .. } if !version.is_empty() => Some(version),
            Observed::Flatpak { branch, .. } => branch.as_deref(),
            Observed::Snap { revision, .. } => revision.as_deref(),
            Observed::UninstallEntry {
                display_version, ..
            } => display_version.as_deref(),
            Observed::AppxPackage { version, .. } if !version.is_empty() => Some(version),
            Observed::File { version_info, .. } | Observed::Process { version_info, .. } => {
                version_info
                    .as_ref()
                    .and_then(|info| info.product_version.as_deref())
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    #[test]
    fn package_full_names_give_family_names() {
        let check = |full: &str, family: Option<&str>| {
            assert_eq!(
                PackageFullName::parse(full).map(|parsed| parsed.family_name()),
                family.map(str::to_string),
                "{full}"
            );
        };
        check(
            "MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe",
            Some("MSTeams_8wekyb3d8bbwe"),
        );
        check(
            "Microsoft.SkypeApp_15.0.0.0_neutral_~_kzf8qxf38zg5c",
            Some("Microsoft.SkypeApp_kzf8qxf38zg5c"),
        );
        check("MSTeams_8wekyb3d8bbwe", None);
        check("a_b_c_d_e_f", None);
        check("_1_x64__8wekyb3d8bbwe", None);
        check("", None);
    }
}
