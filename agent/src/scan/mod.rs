//! The scan half: what is on this PC. A scan discovers the users, runs every evidence
//! source (each on its own thread, so the slow file walk does not hold up the rest),
//! and matches what they saw against the catalog. A source that fails, or even panics,
//! becomes an entry in `errors`; the others still report.
//!
//! Nothing here knows about the collector: no module of this half imports
//! [`crate::delivery`], [`crate::service`] or [`crate::cli`].

pub mod formats;
pub mod fsread;
pub mod host;
pub mod last_use;
pub mod registry;
pub mod root;
pub mod seen_running;
pub mod sources;
pub mod thread_time;
pub mod users;
pub mod windows_system;

use std::time::{Instant, SystemTime};
use sverka_shared::report::{SCAN_SCHEMA, SkippedSource};
use sverka_shared::{CatalogMatcher, Observation, ScanReport, SourceError, SourceKind};

use crate::scan::root::ScanRoot;
use crate::scan::sources::executables::InventoryOptions;
use crate::scan::sources::{EvidenceSource, ScanContext, SourceOutput, WalkLimits};
use crate::scan::windows_system::WindowsSystem;

/// Everything a scan produced: the report, and the raw observations (the machine's
/// software inventory, which the collector will receive).
#[derive(Debug)]
pub struct ScanOutcome {
    pub report: ScanReport,
    pub observations: Vec<Observation>,
}

/// How a scan looks: the walks' limits and the executable inventory's options (with
/// the cache file, which the caller places in the agent's state folder).
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub limits: WalkLimits,
    pub inventory: InventoryOptions,
    /// The service's record of programs seen running between scans (the state
    /// folder's `seen-running.json`), read by a live scan; `None` for none.
    pub seen_running_file: Option<std::path::PathBuf>,
}

/// Runs every registered source over `root`.
pub fn scan(
    root: &ScanRoot,
    matcher: &CatalogMatcher,
    options: &ScanOptions,
    progress: &dyn Fn(SourceKind),
) -> ScanOutcome {
    scan_with(root, matcher, options, sources::all(), progress)
}

/// Runs the given sources; tests use it to run a source that misbehaves.
pub fn scan_with(
    root: &ScanRoot,
    matcher: &CatalogMatcher,
    options: &ScanOptions,
    sources: Vec<Box<dyn EvidenceSource>>,
    progress: &dyn Fn(SourceKind),
) -> ScanOutcome {
    let started = Instant::now();
    let scan_time = SystemTime::now();
    let scanned_at = rfc3339_utc(scan_time);
    let (windows, mut profiles) = if root.is_windows() {
        let (windows, profiles) = WindowsSystem::open(root);
        (Some(windows), profiles)
    } else {
        (None, users::discover(root))
    };
    users::stamp_last_used(root, &mut profiles, windows.is_some());
    let mut errors: Vec<SourceError> = profiles
        .problems
        .iter()
        .map(|problem| SourceError {
            source: SourceKind::File,
            message: format!("user profiles: {problem}"),
            path: None,
        })
        .collect();
    if let Some(windows) = &windows {
        errors.extend(windows.errors.iter().cloned());
    }
    let context = ScanContext {
        root,
        profiles: &profiles,
        matcher,
        limits: options.limits,
        windows: windows.as_ref(),
        inventory: &options.inventory,
        // The record is this machine's: an image's scan does not read it.
        seen_running: options
            .seen_running_file
            .as_deref()
            .filter(|_| root.is_live()),
    };

    let outputs: Vec<(SourceKind, Result<SourceOutput, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| {
                let context = &context;
                let handle = scope.spawn(move || {
                    let mut output = SourceOutput::default();
                    source.collect(context, &mut output);
                    output
                });
                (source.kind(), handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(kind, handle)| {
                let result = handle.join().map_err(|panic| {
                    let reason = panic
                        .downcast_ref::<&str>()
                        .map(|text| text.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown cause".into());
                    format!("the source stopped unexpectedly: {reason}")
                });
                progress(kind);
                (kind, result)
            })
            .collect()
    });

    let mut observations = Vec::new();
    let mut skipped: Vec<SkippedSource> = Vec::new();
    let mut uses = Vec::new();
    for (kind, result) in outputs {
        match result {
            Ok(output) => {
                observations.extend(output.observations);
                uses.extend(output.uses);
                errors.extend(output.errors);
                skipped.extend(output.skipped);
            }
            Err(message) => errors.push(SourceError {
                source: kind,
                message,
                path: None,
            }),
        }
    }

    let mut findings = matcher.findings(&observations);
    stamp_profile_freshness(&mut findings, &profiles);
    last_use::apply(&mut findings, uses, scan_time);
    let report = ScanReport {
        schema: SCAN_SCHEMA,
        host: host::describe(root, windows.as_ref()),
        catalog_version: matcher.catalog().version.clone(),
        scanned_at,
        duration_ms: started.elapsed().as_millis() as u64,
        findings,
        errors,
        skipped,
    };
    ScanOutcome {
        report,
        observations,
    }
}

/// Marks each piece of evidence from a user's profile with when that profile was last
/// used.
fn stamp_profile_freshness(findings: &mut [sverka_shared::Finding], profiles: &users::Profiles) {
    for evidence in findings
        .iter_mut()
        .flat_map(|finding| finding.evidence.iter_mut())
    {
        let Some(user) = &evidence.user else { continue };
        evidence.profile_last_used = profiles
            .users
            .iter()
            .find(|profile| &profile.name == user)
            .and_then(|profile| profile.last_used)
            .map(rfc3339_utc);
    }
}

/// Formats a time as `2026-11-22T08:15:00Z` without a date-time dependency.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let at = |seconds| rfc3339_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_337_700), "2026-11-22T08:55:00Z");
    }
}
