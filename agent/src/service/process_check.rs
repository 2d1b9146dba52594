//! The service's cheap look at running processes between scans, a few times an hour
//! (`process_check_interval`, 15 minutes by default): the process table's names and
//! executable paths only (no owners, no version resources, no disk walk), matched
//! with the catalog the scans use, and merged into the state folder's record of when
//! each catalog application was last seen running (`scan/seen_running.rs`, written
//! atomically only when it changed). The next scan reads the record as `process`
//! evidence of last use.
//!
//! Where the scans run in a child process, so do the checks (`sverka-agent
//! service-process-check`): a check in the service itself left it 2.8 MB more resident
//! for good (12.6 MB against 9.8 MB in `bench/agent-idle.sh`), above the 10 MB target.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use sverka_shared::CatalogMatcher;

use crate::delivery::fswrite::write_atomic;
use crate::delivery::state::StateDir;
use crate::scan::seen_running::{self, SeenRunning};
use crate::scan::sources::processes;
use crate::service::run_loop::{StopSignal, scan_catalog};
use crate::service::scan_child::{self, ScanProcess, Waited};

/// The hidden subcommand a check's child process runs.
pub const SUBCOMMAND: &str = "service-process-check";
/// A check takes milliseconds; one that hangs (a process table that does not answer)
/// is ended.
const CHECK_TIME_LIMIT: Duration = Duration::from_secs(60);

/// One check where the scans happen: in a child process of `program`, or here.
pub fn check_where(scan_process: &ScanProcess, state: &StateDir, stop: &StopSignal) {
    match scan_process {
        ScanProcess::InProcess => check(state),
        ScanProcess::Child { program } => check_in_child(program, state, stop),
    }
}

/// Runs `program service-process-check --state-dir DIR` and waits for it; its log lines
/// are logged again by the service. Never fails the service.
fn check_in_child(program: &Path, state: &StateDir, stop: &StopSignal) {
    let mut command = scan_child::child_command(program);
    command.arg(SUBCOMMAND).arg("--state-dir").arg(state.path());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            tracing::warn!("process check: cannot start {}: {error}", program.display());
            return;
        }
    };
    let forwarder = child.stderr.take().map(|stderr| {
        std::thread::Builder::new()
            .name("process check log".into())
            .spawn(move || scan_child::forward_log(stderr))
    });
    let outcome = scan_child::wait(&mut child, stop, Instant::now(), CHECK_TIME_LIMIT);
    if let Some(Ok(thread)) = forwarder {
        let _ = thread.join();
    }
    match outcome {
        Ok(Waited::Exited(status)) if !status.success() => {
            tracing::warn!("process check: the check's process failed ({status})");
        }
        Ok(Waited::TimedOut) => tracing::warn!(
            "process check: ended after {} s",
            CHECK_TIME_LIMIT.as_secs()
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!("process check: {error}"),
    }
}

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
