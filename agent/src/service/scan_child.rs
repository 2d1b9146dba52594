//! The service's scans run in a short-lived child process: the long-running service
//! (`sverka-agent service`, `run` without `--once`) starts this same program as
//! `sverka-agent service-scan`, which scans, writes the report into the spool and exits.
//! The service itself only waits, delivers the spool and talks to the collector, so:
//!
//! - it never keeps a scan's memory between scans (an allocator keeps a process's peak;
//!   an exited child gives everything back, on every OS);
//! - a scan that crashes (a stack overflow or an abort is not a panic a thread can
//!   catch) or hangs ends alone: the service logs an error, delivers what is spooled and
//!   scans again at the next interval;
//! - a stop during a scan ends the child at once (the spool's writes are atomic).
//!
//! The child's log lines arrive on its stderr and are logged again by the service at
//! their level, prefixed with `scan:`, so they reach the journal or the Windows log file.
//! This is the watcher/worker split osquery uses.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::service::run_loop::{RunOptions, StopSignal};

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "service-scan";
/// A scan that takes longer is ended (walks are bounded; a scan takes seconds or a few
/// minutes, so this only ends one that hangs on a broken disk or share).
pub const SCAN_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often the service looks whether the child has ended.
const POLL: Duration = Duration::from_millis(200);
/// A log line of the child is cut here.
const MAX_LINE_BYTES: u64 = 4096;
/// The child's last lines, quoted in the error when it fails.
const LAST_LINES: usize = 5;

/// Where the scans of the run loop happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanProcess {
    /// In this process (`run --once`, which exits after one scan anyway; tests).
    InProcess,
    /// In a child process: `program service-scan ...`.
    Child { program: PathBuf },
}

impl ScanProcess {
    /// This program as the scan's child, or in-process when the running program's
    /// path cannot be found (logged).
    pub fn this_program() -> ScanProcess {
        match std::env::current_exe() {
            Ok(program) => ScanProcess::Child { program },
            Err(error) => {
                tracing::warn!(
                    "the running program's path is unknown ({error}); scans run inside the service"
                );
                ScanProcess::InProcess
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanProcessError {
    #[error("cannot start the scan process {program}: {source}")]
    Start {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for the scan process: {0}")]
    Wait(#[source] std::io::Error),
    #[error("the scan process failed ({status}){}", last_words_suffix(.last_words))]
    Failed { status: String, last_words: String },
    #[error("the scan took longer than {} min and was ended; the next scan is at the next interval", .limit.as_secs() / 60)]
    TimedOut { limit: Duration },
}

fn last_words_suffix(last_words: &str) -> String {
    if last_words.is_empty() {
        String::new()
    } else {
        format!("; its last log lines: {last_words}")
    }
}

/// What a scan in a child process came to when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildScan {
    /// The report is in the spool.
    Spooled,
    /// The service was stopped; the child was ended.
    Stopped,
}

/// The child's command line for `options` (the state folder, the root, the walk limits
/// and the spool's bounds).
pub fn arguments(options: &RunOptions, change_journal: Option<&Path>) -> Vec<OsString> {
    let mut arguments: Vec<OsString> = vec![
        SUBCOMMAND.into(),
        "--state-dir".into(),
        options.state.path().as_os_str().to_owned(),
    ];
    if !options.root.is_live() {
        arguments.push("--root".into());
        arguments.push(options.root.root().as_os_str().to_owned());
    }
    arguments.extend([
        "--walk-depth".into(),
        options.limits.max_depth.to_string().into(),
        "--walk-entries".into(),
        options.limits.max_entries.to_string().into(),
        "--spool-max-reports".into(),
        options.spool_policy.max_reports.to_string().into(),
        "--spool-max-bytes".into(),
        options.spool_policy.max_bytes.to_string().into(),
    ]);
    if !options.limits.prune_toolchains {
        arguments.push("--walk-everything".into());
    }
    if !options.limits.executable_inventory {
        arguments.push("--no-inventory".into());
    }
    if let Some(journal) = change_journal {
        arguments.push("--change-journal".into());
        arguments.push(journal.as_os_str().to_owned());
    }
    arguments
}

/// `program` as a child of the service: no input or output, its log lines (stderr)
/// piped to the service, and on Windows no console window.
pub(crate) fn child_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt as _;
        // A service has no console; the child gets none either (no window in session 0).
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        command.creation_flags(CREATE_NO_WINDOW);
    }
    command
}

/// Runs `program service-scan ...` and waits for it, up to `time_limit` or a stop.
pub fn scan_in_child(
    program: &Path,
    options: &RunOptions,
    change_journal: Option<&Path>,
    time_limit: Duration,
) -> Result<ChildScan, ScanProcessError> {
    let mut command = child_command(program);
    command.args(arguments(options, change_journal));
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| ScanProcessError::Start {
        program: program.display().to_string(),
        source,
    })?;
    tracing::info!(pid = child.id(), "scanning in a child process");
    let forwarder = child.stderr.take().map(|stderr| {
        std::thread::Builder::new()
            .name("scan log".into())
            .spawn(move || forward_log(stderr))
    });
    let outcome = wait(&mut child, &options.stop, started, time_limit);
    // The child has ended (or was ended): its stderr reaches its end too.
    let last_words = match forwarder {
        Some(Ok(thread)) => thread.join().unwrap_or_default(),
        _ => Vec::new(),
    };
    let status = match outcome? {
        Waited::Exited(status) => status,
        Waited::Stopped => {
            tracing::info!("the service is stopping: the scan was ended");
            return Ok(ChildScan::Stopped);
        }
        Waited::TimedOut => return Err(ScanProcessError::TimedOut { limit: time_limit }),
    };
    if status.success() {
        tracing::info!(
            milliseconds = started.elapsed().as_millis() as u64,
            "the scan process finished"
        );
        return Ok(ChildScan::Spooled);
    }
    Err(ScanProcessError::Failed {
        status: describe(status),
        last_words: last_words.join(" | "),
    })
}

pub(crate) enum Waited {
    Exited(ExitStatus),
    Stopped,
    TimedOut,
}

pub(crate) fn wait(
    child: &mut Child,
    stop: &StopSignal,
    started: Instant,
    time_limit: Duration,
) -> Result<Waited, ScanProcessError> {
    loop {
        if let Some(status) = child.try_wait().map_err(ScanProcessError::Wait)? {
            return Ok(Waited::Exited(status));
        }
        let stopped = stop.sleep(POLL);
        if stopped || started.elapsed() >= time_limit {
            if let Err(error) = child.kill() {
                tracing::warn!("cannot end the scan process: {error}");
            }
            let _ = child.wait();
            return Ok(if stopped {
                Waited::Stopped
            } else {
                Waited::TimedOut
            });
        }
    }
}

/// Logs the child's lines again at their level; returns the last few.
pub(crate) fn forward_log(stderr: impl Read) -> Vec<String> {
    let mut reader = BufReader::new(stderr);
    let mut last = VecDeque::with_capacity(LAST_LINES);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        relog(text);
        if last.len() == LAST_LINES {
            last.pop_front();
        }
        last.push_back(text.to_string());
    }
    last.into()
}

/// Reads one line, keeping at most [`MAX_LINE_BYTES`] of it; the bytes consumed.
fn read_bounded_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', line)?;
    if read as u64 == MAX_LINE_BYTES && line.last() != Some(&b'\n') {
        // Skip the rest of an over-long line.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let more = reader
                .by_ref()
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut rest)?;
            if more == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
    }
    Ok(read)
}

/// A line of the child's log (`LEVEL message`, see [`init_child_logging`]) logged at
/// its level.
fn relog(line: &str) {
    let (level, message) = line.split_once(' ').unwrap_or((line, ""));
    let message = message.trim_start();
    match level {
        "ERROR" => tracing::error!("scan: {message}"),
        "WARN" => tracing::warn!("scan: {message}"),
        "INFO" => tracing::info!("scan: {message}"),
        "DEBUG" => tracing::debug!("scan: {message}"),
        "TRACE" => tracing::trace!("scan: {message}"),
        _ => tracing::error!("scan: {line}"),
    }
}

/// The child's log format: `LEVEL message fields`, no time (the service adds its own)
/// and no colours.
pub fn init_child_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .finish()
        .with(crate::cli::log_filter())
        .try_init();
}

/// Logs this process's peak resident memory (the scan's peak, in the child), where the
/// OS tells it without privileges (Linux: `VmHWM` in `/proc/self/status`).
pub fn log_peak_memory() {
    #[cfg(target_os = "linux")]
    {
        let status = crate::scan::fsread::read_bounded(Path::new("/proc/self/status"), 64 * 1024)
            .map(|read| read.0);
        let peak_kb = status.ok().and_then(|status| {
            String::from_utf8_lossy(&status).lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        });
        if let Some(peak_kb) = peak_kb {
            tracing::info!(peak_resident_kb = peak_kb, "the scan process ends");
        }
    }
}

/// An exit status in words: the code, or on Linux the signal that ended it.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("ended by signal {signal}");
        }
    }
    match status.code() {
        // Windows: an exception ends a program with its NTSTATUS (0xC0000005 ...).
        Some(code) if !(0..=0xFFFF).contains(&code) => format!("exit code {:#010X}", code as u32),
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_the_next_line_is_read_whole() {
        let long = "x".repeat(MAX_LINE_BYTES as usize * 3);
        let input = format!("{long}\nINFO next\n");
        let mut reader = BufReader::new(input.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_bounded_line(&mut reader, &mut line).unwrap(), 4096);
        assert_eq!(line.len(), 4096);
        line.clear();
        read_bounded_line(&mut reader, &mut line).unwrap();
        assert_eq!(line, b"INFO next\n");
        line.clear();
        assert_eq!(read_bounded_line(&mut reader, &mut line).unwrap(), 0);
    }

    #[test]
    fn the_last_lines_are_kept() {
        let input: String = (1..=8).map(|n| format!(" INFO line {n}\n\n")).collect();
        let last = forward_log(input.as_bytes());
        assert_eq!(
            last,
            [
                "INFO line 4",
                "INFO line 5",
                "INFO line 6",
                "INFO line 7",
                "INFO line 8"
            ]
        );
    }

    /// A stand-in for the agent as the scan's child: a shell script.
    #[cfg(unix)]
    fn script(folder: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = folder.join("child.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[cfg(unix)]
    fn options(state: &Path) -> RunOptions {
        RunOptions {
            state: crate::delivery::state::StateDir::new(state),
            root: crate::scan::root::ScanRoot::image("/srv/image"),
            limits: crate::scan::sources::WalkLimits::default(),
            once: false,
            max_delay: Duration::ZERO,
            interval: Duration::from_millis(50),
            process_check: Duration::ZERO,
            backoff: crate::delivery::retry::Backoff::ONCE,
            attempts: 1,
            spool_policy: crate::delivery::spool::SpoolPolicy::default(),
            stop: StopSignal::default(),
            scan_process: ScanProcess::InProcess,
            change_journal: None,
            watch_changes: false,
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_child_gets_the_state_folder_root_and_limits() {
        let folder = tempfile::tempdir().unwrap();
        let seen = folder.path().join("arguments");
        let program = script(
            folder.path(),
            &format!("echo \"$@\" > '{}'", seen.display()),
        );
        let options = options(folder.path());
        let outcome = scan_in_child(&program, &options, None, SCAN_TIME_LIMIT).unwrap();
        assert_eq!(outcome, ChildScan::Spooled);
        let limits = crate::scan::sources::WalkLimits::default();
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap().trim(),
            format!(
                "service-scan --state-dir {} --root /srv/image --walk-depth {} --walk-entries {} --spool-max-reports 500 --spool-max-bytes 67108864",
                folder.path().display(),
                limits.max_depth,
                limits.max_entries
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_crashing_child_is_an_error_with_its_last_words() {
        let folder = tempfile::tempdir().unwrap();
        let program = script(
            folder.path(),
            "echo ' INFO reading the dpkg database' >&2\necho 'ERROR about to fall over' >&2\nkill -SEGV $$",
        );
        let error = scan_in_child(&program, &options(folder.path()), None, SCAN_TIME_LIMIT)
            .unwrap_err()
            .to_string();
        assert!(error.contains("ended by signal 11"), "{error}");
        assert!(
            error.contains("INFO reading the dpkg database | ERROR about to fall over"),
            "{error}"
        );
        let error = scan_in_child(
            &program.with_file_name("missing"),
            &options(folder.path()),
            None,
            SCAN_TIME_LIMIT,
        )
        .unwrap_err();
        assert!(matches!(error, ScanProcessError::Start { .. }), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_stop_or_the_time_limit_ends_a_hanging_child() {
        let folder = tempfile::tempdir().unwrap();
        let program = script(folder.path(), "exec sleep 60");
        let options = options(folder.path());
        let started = Instant::now();
        let error =
            scan_in_child(&program, &options, None, Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(error, ScanProcessError::TimedOut { .. }),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        let stopper = options.stop.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stopper.stop();
        });
        let started = Instant::now();
        let outcome = scan_in_child(&program, &options, None, SCAN_TIME_LIMIT).unwrap();
        assert_eq!(outcome, ChildScan::Stopped);
        assert!(started.elapsed() < Duration::from_secs(10));
        thread.join().unwrap();
    }

    /// The loop outlives a scan process that crashes every time: it scans again at
    /// each interval and stops when asked.
    #[cfg(unix)]
    #[test]
    fn the_run_loop_survives_crashing_scans() {
        let folder = tempfile::tempdir().unwrap();
        let state = crate::delivery::state::StateDir::new(folder.path().join("state"));
        state.create().unwrap();
        state
            .save_enrollment(&crate::delivery::state::Enrollment {
                server: "http://127.0.0.1:9".into(),
                host_id: 1,
                host_key: "1.key".into(),
                organization_id: 1,
                organization_name: "School".into(),
                machine_id: "m".into(),
            })
            .unwrap();
        let attempts = folder.path().join("attempts");
        let program = script(
            folder.path(),
            &format!("echo scan >> '{}'\nkill -SEGV $$", attempts.display()),
        );
        let mut options = options(state.path());
        options.scan_process = ScanProcess::Child { program };
        let stop = options.stop.clone();
        let thread = std::thread::spawn(move || crate::service::run_loop::run(&options));
        let deadline = Instant::now() + Duration::from_secs(30);
        let count = || {
            std::fs::read_to_string(&attempts)
                .map(|text| text.lines().count())
                .unwrap_or(0)
        };
        while count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(count() >= 3, "{} scans", count());
        assert!(!thread.is_finished(), "the loop is still running");
        stop.stop();
        thread.join().unwrap().unwrap();
    }
}
