//! dpkg (Debian, Astra Linux): `/var/lib/dpkg/status`, parsed directly.
//!
//! A package counts when its files are on disk: state `installed`, `triggers-pending`,
//! `triggers-awaited`, `half-configured` or `unpacked`. A removed package whose
//! configuration files remain (`config-files`) is not installed and is not reported.

use sverka_shared::observation::PackageManager;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::fsread::read_text_lossy;

pub const STATUS_PATH: &str = "/var/lib/dpkg/status";
const MAX_STATUS_BYTES: u64 = 64 * 1024 * 1024;

/// One stanza of the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub maintainer: String,
    /// The third word of `Status:`, e.g. `installed` or `config-files`.
    pub state: String,
}

impl DpkgPackage {
    pub fn files_present(&self) -> bool {
        matches!(
            self.state.as_str(),
            "installed" | "triggers-pending" | "triggers-awaited" | "half-configured" | "unpacked"
        )
    }
}

/// The packages of a status file and what was wrong with it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DpkgStatus {
    pub packages: Vec<DpkgPackage>,
    pub problems: Vec<String>,
}

/// Parses a dpkg status file. Damaged stanzas are skipped and described in `problems`.
pub fn parse_dpkg_status(text: &str) -> DpkgStatus {
    let mut status = DpkgStatus::default();
    let mut bad_lines = 0usize;
    let mut first_bad_line = 0usize;
    let mut incomplete = 0usize;
    let mut stanza: Vec<(&str, &str)> = Vec::new();
    let mut stanza_line = 1;

    let mut finish = |stanza: &mut Vec<(&str, &str)>, line: usize, status: &mut DpkgStatus| {
        if stanza.is_empty() {
            return;
        }
        let field = |name: &str| {
            stanza
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_string())
        };
        match (field("Package"), field("Status")) {
            (Some(name), Some(state_words)) if !name.is_empty() => {
                let state = state_words
                    .split_whitespace()
                    .nth(2)
                    .unwrap_or("")
                    .to_string();
                status.packages.push(DpkgPackage {
                    name,
                    version: field("Version").unwrap_or_default(),
                    architecture: field("Architecture").unwrap_or_default(),
                    maintainer: field("Maintainer").unwrap_or_default(),
                    state,
                });
            }
            _ => {
                incomplete += 1;
                if incomplete == 1 {
                    status.problems.push(format!(
                        "stanza at line {line} has no Package or Status field"
                    ));
                }
            }
        }
        stanza.clear();
    };

    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            finish(&mut stanza, stanza_line, &mut status);
            stanza_line = index + 2;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue; // continuation of a multi-line field (Description, Conffiles)
        }
        match line.split_once(':') {
            Some((key, value))
                if !key.is_empty() && !key.contains(char::is_whitespace) && !key.contains('\0') =>
            {
                stanza.push((key, value))
            }
            _ => {
                bad_lines += 1;
                if bad_lines == 1 {
                    first_bad_line = index + 1;
                }
            }
        }
    }
    finish(&mut stanza, stanza_line, &mut status);

    if bad_lines > 0 {
        status.problems.push(format!(
            "{bad_lines} line(s) are not `Field: value` (first at line {first_bad_line}); the file is damaged"
        ));
    }
    if incomplete > 1 {
        status.problems.push(format!(
            "{incomplete} stanzas in all lack a Package or Status field"
        ));
    }
    if !text.is_empty() && !text.ends_with('\n') {
        status
            .problems
            .push("the file ends in the middle of a line (truncated?)".into());
    }
    status
}

#[derive(Debug)]
pub struct DpkgSource;

impl EvidenceSource for DpkgSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Dpkg
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let path = context.root.path(STATUS_PATH);
        let shown = Some(STATUS_PATH.to_string());
        let text = match read_text_lossy(&path, MAX_STATUS_BYTES) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(error) => {
                output.error(
                    SourceKind::Dpkg,
                    shown,
                    format!("cannot read the status file: {error}"),
                );
                return;
            }
        };
        if text.truncated {
            output.error(
                SourceKind::Dpkg,
                shown.clone(),
                format!("status file larger than {MAX_STATUS_BYTES} bytes; the rest was not read"),
            );
        }
        if text.replaced_invalid_utf8 {
            output.error(
                SourceKind::Dpkg,
                shown.clone(),
                "status file contains bytes that are not UTF-8; they were replaced",
            );
        }
        let parsed = parse_dpkg_status(&text.text);
        for problem in parsed.problems {
            output.error(SourceKind::Dpkg, shown.clone(), problem);
        }
        output.observations.extend(
            parsed
                .packages
                .into_iter()
                .filter(DpkgPackage::files_present)
                .map(|package| Observation {
                    observed: Observed::Package {
                        manager: PackageManager::Dpkg,
                        name: package.name,
                        version: package.version,
                        vendor: (!package.maintainer.is_empty()).then_some(package.maintainer),
                    },
                    path: shown.clone(),
                    user: None,
                    scope: Scope::Machine,
                    strength: Strength::Installed,
                }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_present(text: &str) -> Vec<String> {
        parse_dpkg_status(text)
            .packages
            .into_iter()
            .filter(DpkgPackage::files_present)
            .map(|package| package.name)
            .collect()
    }

    #[test]
    fn only_packages_whose_files_are_present_count() {
        let text = "Package: telegram-desktop\nStatus: install ok installed\nVersion: 4.6.5+ds-2\nDescription: fast\n messaging\n\n\
                    Package: viber\nStatus: deinstall ok config-files\nVersion: 21\n\n\
                    Package: discord\nStatus: install ok unpacked\n\n\
                    Package: zoom\nStatus: purge ok not-installed\n\n\
                    Package: skypeforlinux\nStatus: install ok triggers-pending\n";
        assert_eq!(
            names_present(text),
            vec!["telegram-desktop", "discord", "skypeforlinux"]
        );
        assert!(parse_dpkg_status(text).problems.is_empty());
    }

    #[test]
    fn damage_is_described_and_the_rest_still_parsed() {
        let truncated = "Package: telegram-desktop\nStatus: install ok installed\n\nPackage: vib";
        let parsed = parse_dpkg_status(truncated);
        assert_eq!(parsed.packages.len(), 1);
        assert!(
            parsed
                .problems
                .iter()
                .any(|problem| problem.contains("truncated")),
            "{:?}",
            parsed.problems
        );
        assert!(
            parsed
                .problems
                .iter()
                .any(|problem| problem.contains("no Package or Status"))
        );

        let junk = "Package: discord\nStatus: install ok installed\n\n\u{0}\u{1}garbage\u{fffd}\n\nPackage: viber\nStatus: install ok installed\n";
        let parsed = parse_dpkg_status(junk);
        assert_eq!(names_present(junk), vec!["discord", "viber"]);
        assert!(
            parsed
                .problems
                .iter()
                .any(|problem| problem.contains("not `Field: value`"))
        );
    }
}
