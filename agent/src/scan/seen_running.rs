//! The service's record of when each catalog application was last seen running
//! between scans (`seen-running.json` in the state folder). The service looks at the
//! process table a few times an hour ([`running_apps`] over a process snapshot),
//! merges what it saw into the record ([`SeenRunning::merge`]) and writes it
//! atomically; the next scan reads it ([`read_record`]) and turns it into `process`
//! evidence of last use ([`SeenRunning::marks`]). Only application ids and times are
//! kept: no process names, paths or users.
//!
//! ```json
//! {"schema": 1, "seen_running": {"telegram": 1796119200}}
//! ```
//!
//! Times are seconds since 1970 (UTC). A damaged or foreign file is an error for the
//! report and counts as an empty record; the service's next check writes a good one.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};
use sverka_shared::{CatalogMatcher, Evidence, LastUseSource, SourceKind};

use crate::scan::fsread::read_text_lossy;
use crate::scan::last_use::{CLOCK_SKEW, UseMark, UseSubject};
use crate::scan::sources::processes::{ProcessSnapshot, process_observation};

/// The record's file name in the state folder.
pub const RECORD_FILE: &str = "seen-running.json";
/// The version of the record's shape.
pub const RECORD_SCHEMA: u32 = 1;
/// A record holds a few catalog ids; a bigger file is not ours.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// At most this many applications are kept (the oldest go first).
pub const MAX_APPS: usize = 512;
/// A catalog id is short.
const MAX_ID_LEN: usize = 64;

/// When each application was last seen running, in seconds since 1970.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenRunning {
    pub apps: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    schema: u32,
    seen_running: BTreeMap<String, u64>,
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

fn is_catalog_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// Parses a record; anything that is not one (another shape, another schema, a
/// name that is no catalog id, too many entries) is an error.
pub fn parse_record(text: &str) -> Result<SeenRunning, String> {
    let file: RecordFile =
        serde_json::from_str(text).map_err(|error| format!("not a record: {error}"))?;
    if file.schema != RECORD_SCHEMA {
        return Err(format!(
            "record schema {} (this agent reads {RECORD_SCHEMA})",
            file.schema
        ));
    }
    if file.seen_running.len() > MAX_APPS {
        return Err(format!(
            "{} applications (at most {MAX_APPS})",
            file.seen_running.len()
        ));
    }
    if let Some(id) = file.seen_running.keys().find(|id| !is_catalog_id(id)) {
        return Err(format!("{id:?} is not a catalog id"));
    }
    Ok(SeenRunning {
        apps: file.seen_running,
    })
}

/// The record's text, as [`parse_record`] reads it.
pub fn serialize_record(record: &SeenRunning) -> String {
    let file = RecordFile {
        schema: RECORD_SCHEMA,
        seen_running: record.apps.clone(),
    };
    serde_json::to_string_pretty(&file).map_or_else(|_| String::new(), |text| text + "\n")
}

/// Reads the record at `path`; a missing file is an empty record.
pub fn read_record(path: &Path) -> Result<SeenRunning, String> {
    match read_text_lossy(path, MAX_RECORD_BYTES) {
        Ok(text) => parse_record(&text.text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(SeenRunning::default()),
        Err(error) => Err(error.to_string()),
    }
}

/// The catalog applications among running processes (matched by name and executable
/// path, as the scan's process source matches them).
pub fn running_apps(matcher: &CatalogMatcher, processes: &[ProcessSnapshot]) -> BTreeSet<String> {
    let apps = &matcher.catalog().apps;
    processes
        .iter()
        .flat_map(|process| matcher.hits_for(&process_observation(process.clone(), None, None)))
        .filter(|hit| !hit.supporting)
        .filter_map(|hit| apps.get(hit.app).map(|app| app.id.clone()))
        .collect()
}

impl SeenRunning {
    /// Records `apps` as seen running at `now`; `true` when the record changed. A time
    /// after `now` (a clock set back since) is replaced, never kept.
    pub fn merge(&mut self, apps: &BTreeSet<String>, now: SystemTime) -> bool {
        let now = seconds(now);
        let mut changed = false;
        for app in apps.iter().filter(|app| is_catalog_id(app)) {
            let slot = self.apps.entry(app.clone()).or_insert(0);
            if *slot != now {
                *slot = now;
                changed = true;
            }
        }
        let ahead = now + CLOCK_SKEW.as_secs();
        let before = self.apps.len();
        self.apps.retain(|_, at| *at <= ahead);
        changed |= self.apps.len() != before;
        while self.apps.len() > MAX_APPS {
            let oldest = self
                .apps
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(app, _)| app.clone());
            match oldest {
                Some(app) => self.apps.remove(&app),
                None => break,
            };
            changed = true;
        }
        changed
    }

    /// The record as `process` evidence of last use, one mark per application.
    pub fn marks(&self) -> Vec<UseMark> {
        self.apps
            .iter()
            .map(|(app, at)| UseMark {
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(*at),
                source: LastUseSource::Process,
                subject: UseSubject::App {
                    app: app.clone(),
                    evidence: Evidence::machine_trace(
                        SourceKind::Process,
                        "seen running by the service's check between scans".into(),
                        None,
                    ),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sverka_shared::Catalog;
    use sverka_shared::Strength;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn set(apps: &[&str]) -> BTreeSet<String> {
        apps.iter().map(|app| app.to_string()).collect()
    }

    #[test]
    fn merging_keeps_the_latest_time_and_drops_times_ahead() {
        let mut record = SeenRunning::default();
        assert!(record.merge(&set(&["telegram", "max"]), at(1_000_000_000)));
        assert!(!record.merge(&set(&["telegram"]), at(1_000_000_000)));
        assert!(record.merge(&set(&["telegram"]), at(1_000_000_900)));
        assert!(!record.merge(&set(&[]), at(1_000_000_900)));
        assert_eq!(record.apps["telegram"], 1_000_000_900);
        assert_eq!(record.apps["max"], 1_000_000_000, "not seen again, kept");
        // The clock was set back: what lies ahead of it is not kept.
        assert!(record.merge(&set(&["max"]), at(999_000_000)));
        assert_eq!(record.apps, BTreeMap::from([("max".into(), 999_000_000)]));
        // Names that are no catalog ids are never recorded.
        assert!(!record.merge(&set(&["../x", ""]), at(999_000_000)));
    }

    #[test]
    fn the_record_is_bounded_oldest_first() {
        let mut record = SeenRunning::default();
        for index in 0..MAX_APPS as u64 {
            record
                .apps
                .insert(format!("app{index}"), 1_000_000_000 + index);
        }
        assert!(record.merge(&set(&["telegram"]), at(1_100_000_000)));
        assert_eq!(record.apps.len(), MAX_APPS);
        assert!(!record.apps.contains_key("app0"));
        assert!(record.apps.contains_key("telegram"));
    }

    #[test]
    fn a_record_reads_back_and_damaged_ones_are_errors() {
        let mut record = SeenRunning::default();
        record.merge(&set(&["telegram", "vk-messenger"]), at(1_796_119_200));
        assert_eq!(parse_record(&serialize_record(&record)), Ok(record.clone()));
        for damaged in [
            "",
            "{\"schema\":1,\"seen_runn",
            "[]",
            "{\"schema\":2,\"seen_running\":{}}",
            "{\"schema\":1,\"seen_running\":{\"telegram\":-1}}",
            "{\"schema\":1,\"seen_running\":{\"telegram\":\"yesterday\"}}",
            "{\"schema\":1,\"seen_running\":{\"a b\":1}}",
            "\u{0}\u{1}binary",
        ] {
            assert!(parse_record(damaged).is_err(), "{damaged:?}");
        }
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join(RECORD_FILE);
        assert_eq!(
            read_record(&path),
            Ok(SeenRunning::default()),
            "missing: empty"
        );
        std::fs::write(&path, b"{\"schema\":1,").unwrap();
        assert!(read_record(&path).is_err());
        std::fs::write(&path, serialize_record(&record)).unwrap();
        assert_eq!(read_record(&path), Ok(record));
    }

    #[test]
    fn running_catalog_programs_are_named_by_their_ids() {
        let matcher = CatalogMatcher::new(Catalog::builtin().unwrap());
        let process = |name: &str, executable: Option<&str>| ProcessSnapshot {
            pid: 1,
            name: name.into(),
            executable: executable.map(str::to_string),
            uid: Some(1000),
            sid: None,
        };
        let running = running_apps(
            &matcher,
            &[
                process("telegram-desktop", None),
                process("Telegram", Some("/home/anna/Telegram/Telegram")),
                process("bash", Some("/usr/bin/bash")),
                process("telegraf", Some("/usr/bin/telegraf")),
            ],
        );
        assert_eq!(running, set(&["telegram"]));
    }

    #[test]
    fn marks_are_process_evidence_that_never_claims_running() {
        let mut record = SeenRunning::default();
        record.merge(&set(&["telegram"]), at(1_796_119_200));
        let marks = record.marks();
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].source, LastUseSource::Process);
        let UseSubject::App { app, evidence } = &marks[0].subject else {
            panic!("{marks:?}");
        };
        assert_eq!(app, "telegram");
        assert_eq!(
            (evidence.source, evidence.strength),
            (SourceKind::Process, Strength::Trace)
        );
    }
}
