//! The scan report: what `sverka-agent scan --format json` prints and what later goes
//! over the wire to the collector.
//!
//! Every type here crosses a process boundary, so it is versioned: [`SCAN_SCHEMA`] is
//! bumped only on an incompatible change, and fields added later carry
//! `#[serde(default)]` so that old agents and new collectors keep understanding each
//! other. Unknown fields are tolerated when reading.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::catalog::AppStatus;

/// Version of the JSON shape of [`ScanReport`].
pub const SCAN_SCHEMA: u32 = 1;

/// One complete scan of one machine (or of a mounted image of one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanReport {
    /// The version of this JSON shape (`SCAN_SCHEMA`); the collector reads 1 only.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1))]
    pub schema: u32,
    pub host: HostInfo,
    pub catalog_version: String,
    /// When the scan started, RFC 3339 in UTC.
    #[serde(default)]
    pub scanned_at: String,
    #[serde(default)]
    pub duration_ms: u64,
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub findings: Vec<Finding>,
    /// Sources that failed, wholly or in part. A failed source never hides the others.
    #[cfg_attr(feature = "openapi", schema(max_items = 50_000))]
    pub errors: Vec<SourceError>,
    /// Sources that were deliberately not run, with the reason (for example processes
    /// during an offline scan of an image).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50_000))]
    pub skipped: Vec<SkippedSource>,
}

impl ScanReport {
    /// The findings that make this machine non-compliant: a banned application that is
    /// installed or running. Leftover traces do not count.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|finding| finding.is_violation())
    }
}

/// The machine a report describes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostInfo {
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 255, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub hostname: String,
    /// `ID` from os-release (`astra`, `altlinux`, `redos`, `debian`, ...) or `windows`.
    #[serde(default)]
    pub os_id: String,
    /// `PRETTY_NAME` from os-release, or the Windows product name.
    #[serde(default)]
    pub os_name: String,
    #[serde(default)]
    pub os_version: String,
    /// `/etc/machine-id` on Linux, `MachineGuid` on Windows; stable across reinstalls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Set when the scan read a mounted image instead of the running system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_root: Option<String>,
    #[serde(default)]
    pub agent_version: String,
}

/// Everything found about one catalog application on the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// Stable catalog id, e.g. `telegram`.
    pub app: String,
    pub name: String,
    #[serde(default)]
    pub vendor: String,
    pub status: AppStatus,
    /// The strongest strength among the evidence.
    pub strength: Strength,
    /// The user profiles the evidence belongs to (empty when all evidence is machine-wide).
    #[serde(default)]
    pub users: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// When the application was last used on this machine, as far as its evidence
    /// shows (`2026-12-01T10:00:00Z`, UTC): the latest `last_used` among `evidence`.
    /// Absent when no evidence carries a time. Added after schema 1 first shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// Which evidence gave `last_used`: a `LastUseSource` word (`data_dir`,
    /// `prefetch`, `process`). Kept a string on the wire, so a word added later never
    /// makes an older reader refuse a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_source: Option<String>,
}

impl Finding {
    pub fn is_violation(&self) -> bool {
        self.status == AppStatus::Banned && self.strength >= Strength::Installed
    }
}

/// One observation that ties an application to this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    pub source: SourceKind,
    /// What matched, for people: `telegram-desktop 4.6.5+ds-2 (dpkg)`.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub scope: Scope,
    pub strength: Strength,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For evidence from a user's profile: when that profile was last used
    /// (`2019-05-31T14:02:11Z`; the hive file's or the home's modification time, or
    /// the scan's time while the user is logged on), so a departed user's profile shows
    /// as such. Added after schema 1 first shipped; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_last_used: Option<String>,
    /// When this evidence shows the application was last used (RFC 3339, UTC): a data
    /// folder's modification time, a Prefetch file's modification time, or when the
    /// program was seen running. Only times of program activity, never content; a time
    /// after the scan (beyond a small clock skew) or before 2000 is never reported.
    /// Added after schema 1 first shipped; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// What kind of time `last_used` is: a `LastUseSource` word (`data_dir`,
    /// `prefetch`, `process`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_source: Option<String>,
}

impl Evidence {
    /// Machine-wide trace evidence that only tells of an application's use (a Prefetch
    /// entry, the service's record of a program seen running): no user, no version, no
    /// time yet.
    pub fn machine_trace(source: SourceKind, detail: String, path: Option<String>) -> Evidence {
        Evidence {
            source,
            detail,
            path,
            user: None,
            scope: Scope::Machine,
            strength: Strength::Trace,
            version: None,
            profile_last_used: None,
            last_used: None,
            last_used_source: None,
        }
    }
}

/// What a time of last use was read from. On the wire (in [`Evidence`] and
/// [`Finding`]) it is its word, a plain string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LastUseSource {
    /// The modification time of the application's own data folder (the folder itself,
    /// never a file inside it).
    DataDir,
    /// The modification time of the program's Windows Prefetch file
    /// (`C:\Windows\Prefetch\TELEGRAM.EXE-1A2B3C4D.pf`; never its contents).
    Prefetch,
    /// The program was seen running: at the scan, or by the service's check between
    /// scans.
    Process,
}

impl LastUseSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            LastUseSource::DataDir => "data_dir",
            LastUseSource::Prefetch => "prefetch",
            LastUseSource::Process => "process",
        }
    }
}

impl fmt::Display for LastUseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where evidence came from. Some kinds only exist on one OS; the list is the same
/// everywhere so that reports from every platform share one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SourceKind {
    /// Debian-family package database (`/var/lib/dpkg/status`).
    Dpkg,
    /// RPM database (BerkeleyDB on ALT Linux and older RED OS, SQLite on newer).
    Rpm,
    /// Flatpak applications, system-wide and per user.
    Flatpak,
    /// Snap packages.
    Snap,
    /// freedesktop `.desktop` launchers, system-wide and per user.
    DesktopEntry,
    /// Executables and AppImages found by bounded walks (portable copies).
    File,
    /// A leftover data folder, checked for existence only and never read.
    DataDir,
    /// Running processes.
    Process,
    /// Windows uninstall keys (machine and per-user hives).
    UninstallKey,
    /// Windows MSIX/AppX packages.
    Appx,
    /// Web apps (PWAs) installed from a Chromium-family browser.
    WebApp,
    /// macOS application bundles.
    Bundle,
}

impl SourceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Dpkg => "dpkg",
            SourceKind::Rpm => "rpm",
            SourceKind::Flatpak => "flatpak",
            SourceKind::Snap => "snap",
            SourceKind::DesktopEntry => "desktop_entry",
            SourceKind::File => "file",
            SourceKind::DataDir => "data_dir",
            SourceKind::Process => "process",
            SourceKind::UninstallKey => "uninstall_key",
            SourceKind::Appx => "appx",
            SourceKind::WebApp => "web_app",
            SourceKind::Bundle => "bundle",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether evidence belongs to the whole machine or to one user's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    Machine,
    User,
}

impl Scope {
    /// `User` for evidence that belongs to a profile, `Machine` otherwise.
    pub fn of_profile<T>(user: &Option<T>) -> Scope {
        if user.is_some() {
            Scope::User
        } else {
            Scope::Machine
        }
    }
}

/// How sure the evidence is that the application is usable on the machine.
/// Ordered: `Trace < Installed < Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Strength {
    /// Only a leftover: a data folder, a launcher whose program is gone.
    Trace,
    /// A package, an installed program or a program file is present.
    Installed,
    /// The program is running now.
    Running,
}

impl Strength {
    pub const fn as_str(self) -> &'static str {
        match self {
            Strength::Trace => "trace",
            Strength::Installed => "installed",
            Strength::Running => "running",
        }
    }
}

impl std::str::FromStr for Strength {
    type Err = UnknownWord;

    fn from_str(text: &str) -> Result<Strength, UnknownWord> {
        [Strength::Trace, Strength::Installed, Strength::Running]
            .into_iter()
            .find(|strength| strength.as_str() == text)
            .ok_or_else(|| UnknownWord::new("strength", text))
    }
}

impl TryFrom<String> for Strength {
    type Error = UnknownWord;

    fn try_from(text: String) -> Result<Strength, UnknownWord> {
        text.parse()
    }
}

/// A word of a closed set (a status, a strength, a role) that this version does not
/// know: stored or sent by a newer version, or damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}")]
pub struct UnknownWord {
    pub kind: &'static str,
    pub text: String,
}

impl UnknownWord {
    pub fn new(kind: &'static str, text: &str) -> UnknownWord {
        UnknownWord {
            kind,
            text: text.to_string(),
        }
    }
}

impl fmt::Display for Strength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source that could not be read, wholly or in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceError {
    pub source: SourceKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A source that was not run on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedSource {
    pub source: SourceKind,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_orders_trace_below_installed_below_running() {
        assert!(Strength::Trace < Strength::Installed);
        assert!(Strength::Installed < Strength::Running);
    }

    #[test]
    fn report_reads_with_unknown_and_missing_optional_fields() {
        let json = r#"{"schema":1,"host":{"hostname":"pc-1","future":"x"},"catalog_version":"v",
            "findings":[],"errors":[],"added_later":{"a":1}}"#;
        let report: ScanReport = serde_json::from_str(json).expect("valid report");
        assert_eq!(report.host.hostname, "pc-1");
        assert!(report.skipped.is_empty());
    }

    #[test]
    fn last_use_is_optional_both_ways() {
        let old = r#"{"app":"telegram","name":"Telegram","status":"banned","strength":"trace",
            "evidence":[{"source":"data_dir","detail":"d","scope":"user","strength":"trace"}]}"#;
        let finding: Finding = serde_json::from_str(old).expect("an older finding reads");
        assert_eq!(
            (
                finding.last_used.as_deref(),
                finding.evidence[0].last_used.as_deref()
            ),
            (None, None)
        );
        let text = serde_json::to_string(&finding).expect("serialise");
        assert!(!text.contains("last_used"), "{text}");
        let new = old.replace(
            r#""evidence""#,
            r#""last_used":"2026-12-01T10:00:00Z","last_used_source":"some_later_word","evidence""#,
        );
        let finding: Finding = serde_json::from_str(&new).expect("a newer finding reads");
        assert_eq!(finding.last_used.as_deref(), Some("2026-12-01T10:00:00Z"));
        assert_eq!(finding.last_used_source.as_deref(), Some("some_later_word"));
    }

    #[test]
    fn only_installed_or_running_banned_findings_are_violations() {
        let finding = |status, strength| Finding {
            app: "x".into(),
            name: "X".into(),
            vendor: String::new(),
            status,
            strength,
            users: vec![],
            evidence: vec![],
            last_used: None,
            last_used_source: None,
        };
        assert!(finding(AppStatus::Banned, Strength::Installed).is_violation());
        assert!(finding(AppStatus::Banned, Strength::Running).is_violation());
        assert!(!finding(AppStatus::Banned, Strength::Trace).is_violation());
        assert!(!finding(AppStatus::Watch, Strength::Running).is_violation());
        assert!(!finding(AppStatus::Approved, Strength::Installed).is_violation());
    }
}
