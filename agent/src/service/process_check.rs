//! The service's cheap look at running processes between scans, a few times an hour
//! (`process_check_interval`, 15 minutes by default): the process table's names and
//! executable paths only (no owners, no version resources, no disk walk), matched
//! with the catalog the scans use, and merged into the state folder's record of when
//! each catalog application was last seen running (`scan/seen_running.rs`, written
//! atomically only when it changed). The next scan reads the record as `process`
//! evidence of last use.

use std::time::SystemTime;
use sverka_shared::CatalogMatcher;

use crate::delivery::fswrite::write_atomic;
use crate::delivery::state::StateDir;
use crate::scan::seen_running::{self, SeenRunning};
use crate::scan::sources::processes;
use crate::service::run_loop::scan_catalog;

/// One check: never fails the service; problems are logged.
pub fn check(state: &StateDir) {
    let processes = match processes::snapshot_without_owners() {
        Ok(processes) => processes,
        Err(message) => {
            tracing::warn!("process check: {message}");
            return;
        }
    };
    let matcher = CatalogMatcher::new(scan_catalog(state));
    let running = seen_running::running_apps(&matcher, &processes);
    drop(matcher);
    if let Err(message) = record(state, &running, SystemTime::now()) {
        tracing::warn!("process check: {message}");
    }
}

/// Merges `running` (seen at `now`) into the state folder's record. A damaged record
/// is logged and started again.
pub fn record(
    state: &StateDir,
    running: &std::collections::BTreeSet<String>,
    now: SystemTime,
) -> Result<(), String> {
    let path = state.seen_running_path();
    let mut record = match seen_running::read_record(&path) {
        Ok(record) => record,
        Err(message) => {
            tracing::warn!(
                "{}: {message}; the record of programs seen running starts again",
                path.display()
            );
            SeenRunning::default()
        }
    };
    if !record.merge(running, now) {
        return Ok(());
    }
    if !running.is_empty() {
        tracing::debug!(apps = ?running, "seen running");
    }
    write_atomic(&path, seen_running::serialize_record(&record).as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    #[test]
    fn checks_merge_into_the_record_and_a_damaged_one_starts_again() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path());
        let at = |seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let apps = |names: &[&str]| -> BTreeSet<String> {
            names.iter().map(|name| name.to_string()).collect()
        };
        record(&state, &apps(&["telegram"]), at(1_796_119_200)).unwrap();
        record(&state, &apps(&["max"]), at(1_796_120_100)).unwrap();
        let read = seen_running::read_record(&state.seen_running_path()).unwrap();
        assert_eq!(read.apps["telegram"], 1_796_119_200);
        assert_eq!(read.apps["max"], 1_796_120_100);

        std::fs::write(state.seen_running_path(), b"\x00garbage").unwrap();
        record(&state, &apps(&["max"]), at(1_796_121_000)).unwrap();
        let read = seen_running::read_record(&state.seen_running_path()).unwrap();
        assert_eq!(read.apps.len(), 1);
        assert_eq!(read.apps["max"], 1_796_121_000);
    }

    #[test]
    fn a_check_of_this_machine_writes_a_readable_record_or_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path());
        check(&state);
        let read = seen_running::read_record(&state.seen_running_path());
        assert!(read.is_ok(), "{read:?}");
    }
}
