//! When each finding's application was last used: the latest of the times of program
//! activity the sources read (a data folder's modification time, a Prefetch file's
//! modification time, a program seen running), each kept in the piece of evidence it
//! came from. Pure: the sources hand in [`UseMark`]s, [`apply`] stamps the findings.
//!
//! Times are not trusted blindly: one before 2000 is dropped, one after the scan by
//! more than [`CLOCK_SKEW`] is dropped (the clock that wrote it was wrong, so the time
//! says nothing), and one within the skew counts as the scan's time.
//!
//! Marks only stamp findings the other evidence made: a Prefetch entry or the service's
//! record of a program seen running never makes a finding alone (an application whose
//! files, packages and data folders are all gone is not on the machine any more).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use sverka_shared::{Evidence, Finding, LastUseSource, SourceKind, Strength};

use crate::scan::rfc3339_utc;

/// How far after the scan a time may be and still count (as the scan's time).
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// 2000-01-01T00:00:00Z: anything earlier is a clock that was never set.
pub const EARLIEST_TRUSTED: Duration = Duration::from_secs(946_684_800);

/// A time of program activity a source read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseMark {
    pub at: SystemTime,
    pub source: LastUseSource,
    pub subject: UseSubject,
}

/// What a [`UseMark`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseSubject {
    /// The evidence of this kind at this path, which the same source observed (a data
    /// folder).
    Evidence { kind: SourceKind, path: String },
    /// A catalog application by id, with the evidence that tells of its use (a Prefetch
    /// entry, the service's record of it running), added to its finding if it has one.
    App { app: String, evidence: Evidence },
}

/// `at` as far as it is trusted for a scan made at `scanned_at`.
pub fn trusted(at: SystemTime, scanned_at: SystemTime) -> Option<SystemTime> {
    if at < SystemTime::UNIX_EPOCH + EARLIEST_TRUSTED {
        return None;
    }
    if at <= scanned_at {
        return Some(at);
    }
    (at <= scanned_at + CLOCK_SKEW).then_some(scanned_at)
}

/// Stamps each finding's evidence with the trusted times of `marks` (and evidence of a
/// program running at the scan with the scan's time), adds the evidence of marks about
/// an application, and sets each finding's `last_used` to the latest of its evidence.
pub fn apply(findings: &mut [Finding], marks: Vec<UseMark>, scanned_at: SystemTime) {
    let mut by_evidence: BTreeMap<(SourceKind, String), (SystemTime, LastUseSource)> =
        BTreeMap::new();
    // Per application and kind of time, only the latest mark's evidence is added.
    let mut by_app: BTreeMap<(String, LastUseSource), (SystemTime, Evidence)> = BTreeMap::new();
    for mark in marks {
        let Some(at) = trusted(mark.at, scanned_at) else {
            continue;
        };
        match mark.subject {
            UseSubject::Evidence { kind, path } => {
                let slot = by_evidence.entry((kind, path)).or_insert((at, mark.source));
                if at > slot.0 {
                    *slot = (at, mark.source);
                }
            }
            UseSubject::App { app, evidence } => {
                let slot = by_app
                    .entry((app, mark.source))
                    .or_insert_with(|| (at, evidence.clone()));
                if at > slot.0 {
                    *slot = (at, evidence);
                }
            }
        }
    }
    for finding in findings.iter_mut() {
        let mut times: Vec<Option<(SystemTime, LastUseSource)>> = finding
            .evidence
            .iter()
            .map(|evidence| {
                if evidence.strength == Strength::Running {
                    return Some((scanned_at, LastUseSource::Process));
                }
                let path = evidence.path.clone()?;
                by_evidence.get(&(evidence.source, path)).copied()
            })
            .collect();
        let running_now = finding
            .evidence
            .iter()
            .any(|evidence| evidence.strength == Strength::Running);
        for ((app, source), (at, evidence)) in &by_app {
            if *app != finding.app {
                continue;
            }
            // A program running now was used now: its record from before adds nothing.
            if *source == LastUseSource::Process && running_now {
                continue;
            }
            if !finding.evidence.contains(evidence) {
                finding.evidence.push(evidence.clone());
                times.push(Some((*at, *source)));
            }
        }
        for (evidence, time) in finding.evidence.iter_mut().zip(&times) {
            if let Some((at, source)) = time {
                evidence.last_used = Some(rfc3339_utc(*at));
                evidence.last_used_source = Some(source.as_str().to_string());
            }
        }
        let latest = times.into_iter().flatten().max();
        finding.last_used = latest.map(|(at, _)| rfc3339_utc(at));
        finding.last_used_source = latest.map(|(_, source)| source.as_str().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sverka_shared::{AppStatus, Scope};

    const SCAN: u64 = 1_796_119_200; // 2026-12-01T10:00:00Z

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn evidence(source: SourceKind, path: &str, strength: Strength) -> Evidence {
        Evidence {
            source,
            detail: format!("{source} {path}"),
            path: Some(path.into()),
            user: None,
            scope: Scope::Machine,
            strength,
            version: None,
            profile_last_used: None,
            last_used: None,
            last_used_source: None,
        }
    }

    fn finding(app: &str, evidence: Vec<Evidence>) -> Finding {
        Finding {
            app: app.into(),
            name: app.into(),
            vendor: String::new(),
            status: AppStatus::Banned,
            strength: Strength::Installed,
            users: vec![],
            evidence,
            last_used: None,
            last_used_source: None,
        }
    }

    fn data_dir_mark(path: &str, seconds: u64) -> UseMark {
        UseMark {
            at: at(seconds),
            source: LastUseSource::DataDir,
            subject: UseSubject::Evidence {
                kind: SourceKind::DataDir,
                path: path.into(),
            },
        }
    }

    fn prefetch_mark(app: &str, file: &str, seconds: u64) -> UseMark {
        UseMark {
            at: at(seconds),
            source: LastUseSource::Prefetch,
            subject: UseSubject::App {
                app: app.into(),
                evidence: evidence(SourceKind::File, file, Strength::Trace),
            },
        }
    }

    fn last_use(finding: &Finding) -> (Option<&str>, Option<&str>) {
        (
            finding.last_used.as_deref(),
            finding.last_used_source.as_deref(),
        )
    }

    #[test]
    fn times_before_2000_or_after_the_scan_are_not_trusted() {
        let scan = at(SCAN);
        assert_eq!(trusted(at(SCAN - 86_400), scan), Some(at(SCAN - 86_400)));
        assert_eq!(trusted(scan, scan), Some(scan));
        // Within the skew: the scan's time; beyond it: nothing.
        assert_eq!(trusted(at(SCAN + 60), scan), Some(scan));
        assert_eq!(trusted(at(SCAN + 300), scan), Some(scan));
        assert_eq!(trusted(at(SCAN + 301), scan), None);
        assert_eq!(trusted(at(SCAN + 10 * 365 * 86_400), scan), None);
        assert_eq!(trusted(at(946_684_800), scan), Some(at(946_684_800)));
        assert_eq!(trusted(at(946_684_799), scan), None);
        assert_eq!(trusted(SystemTime::UNIX_EPOCH, scan), None);
    }

    #[test]
    fn the_latest_evidence_gives_last_used() {
        let folder = "/home/anna/.local/share/TelegramDesktop";
        let mut findings = vec![
            finding(
                "telegram",
                vec![
                    evidence(
                        SourceKind::Dpkg,
                        "/var/lib/dpkg/status",
                        Strength::Installed,
                    ),
                    evidence(SourceKind::DataDir, folder, Strength::Trace),
                ],
            ),
            finding(
                "viber",
                vec![evidence(
                    SourceKind::DataDir,
                    "/home/anna/.ViberPC",
                    Strength::Trace,
                )],
            ),
        ];
        let two_days_ago = SCAN - 2 * 86_400;
        apply(
            &mut findings,
            vec![
                data_dir_mark(folder, two_days_ago),
                // A Prefetch file newer than the folder wins, and is added as evidence.
                prefetch_mark(
                    "telegram",
                    "C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf",
                    SCAN - 3600,
                ),
                prefetch_mark(
                    "telegram",
                    "C:\\Windows\\Prefetch\\TELEGRAM.EXE-99999999.pf",
                    SCAN - 7200,
                ),
                // A mark for an application without a finding makes none.
                prefetch_mark(
                    "discord",
                    "C:\\Windows\\Prefetch\\DISCORD.EXE-12345678.pf",
                    SCAN,
                ),
            ],
            at(SCAN),
        );
        let telegram = &findings[0];
        assert_eq!(
            last_use(telegram),
            (Some("2026-12-01T09:00:00Z"), Some("prefetch"))
        );
        assert_eq!(telegram.evidence.len(), 3, "{telegram:#?}");
        assert_eq!(telegram.evidence[0].last_used, None);
        assert_eq!(
            telegram.evidence[1].last_used.as_deref(),
            Some("2026-11-29T10:00:00Z")
        );
        assert_eq!(
            telegram.evidence[1].last_used_source.as_deref(),
            Some("data_dir")
        );
        assert_eq!(
            telegram.evidence[2].path.as_deref(),
            Some("C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf")
        );
        assert_eq!(
            telegram.evidence[2].last_used_source.as_deref(),
            Some("prefetch")
        );
        assert_eq!(last_use(&findings[1]), (None, None));
        assert_eq!(findings.len(), 2);
    }

    #[test]
    fn untrusted_times_leave_the_evidence_without_one() {
        let folder = "/home/anna/.local/share/TelegramDesktop";
        for seconds in [SCAN + 3600, 0, 915_148_800 /* 1999-01-01 */] {
            let mut findings = vec![finding(
                "telegram",
                vec![evidence(SourceKind::DataDir, folder, Strength::Trace)],
            )];
            apply(
                &mut findings,
                vec![data_dir_mark(folder, seconds)],
                at(SCAN),
            );
            assert_eq!(last_use(&findings[0]), (None, None), "{seconds}");
            assert_eq!(findings[0].evidence[0].last_used, None);
        }
        // Slightly ahead (a clock a little fast): the scan's time.
        let mut findings = vec![finding(
            "telegram",
            vec![evidence(SourceKind::DataDir, folder, Strength::Trace)],
        )];
        apply(
            &mut findings,
            vec![data_dir_mark(folder, SCAN + 120)],
            at(SCAN),
        );
        assert_eq!(
            last_use(&findings[0]),
            (Some("2026-12-01T10:00:00Z"), Some("data_dir"))
        );
    }

    #[test]
    fn a_program_running_at_the_scan_was_used_at_the_scan() {
        let folder = "/home/anna/.local/share/TelegramDesktop";
        let record = UseMark {
            at: at(SCAN - 600),
            source: LastUseSource::Process,
            subject: UseSubject::App {
                app: "telegram".into(),
                evidence: Evidence {
                    path: None,
                    ..evidence(SourceKind::Process, "", Strength::Trace)
                },
            },
        };
        let mut running = vec![finding(
            "telegram",
            vec![
                evidence(
                    SourceKind::Process,
                    "/opt/Telegram/Telegram",
                    Strength::Running,
                ),
                evidence(SourceKind::DataDir, folder, Strength::Trace),
            ],
        )];
        apply(
            &mut running,
            vec![data_dir_mark(folder, SCAN - 60), record.clone()],
            at(SCAN),
        );
        assert_eq!(
            last_use(&running[0]),
            (Some("2026-12-01T10:00:00Z"), Some("process"))
        );
        assert_eq!(
            running[0].evidence.len(),
            2,
            "the record adds nothing to a running program"
        );

        // Not running now, seen running ten minutes ago by the service's check.
        let mut seen = vec![finding(
            "telegram",
            vec![evidence(SourceKind::DataDir, folder, Strength::Trace)],
        )];
        apply(
            &mut seen,
            vec![data_dir_mark(folder, SCAN - 86_400), record],
            at(SCAN),
        );
        assert_eq!(
            last_use(&seen[0]),
            (Some("2026-12-01T09:50:00Z"), Some("process"))
        );
        assert_eq!(seen[0].evidence.len(), 2);
        assert_eq!(seen[0].evidence[1].source, SourceKind::Process);
        assert_eq!(seen[0].evidence[1].strength, Strength::Trace);
    }
}
