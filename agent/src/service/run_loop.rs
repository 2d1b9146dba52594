//! `sverka-agent run`: scan, spool, deliver. The service form waits a random start
//! delay (so a school's PCs do not all report in the same second), then scans every
//! interval (with jitter) and keeps delivering the spool with back-off in between;
//! `--once` scans, delivers everything spooled, and says whether it all arrived.
//!
//! Order of events for one report: scan → [`upload::build`] → [`Spool::push`] (durable)
//! → send → acknowledged → removed from the spool → the acknowledged inventory digest
//! is recorded → the catalog is fetched when the acknowledgement names a new one.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use sverka_shared::{Catalog, CatalogMatcher};

use crate::delivery::client::{CatalogFetch, ClientError, CollectorClient};
use crate::delivery::retry::{Backoff, Disposition, disposition};
use crate::delivery::spool::{Spool, SpoolError, SpoolPolicy, SpooledReport};
use crate::delivery::state::{Enrollment, StateDir, StateError};
use crate::delivery::upload;
use crate::scan;
use crate::scan::root::ScanRoot;
use crate::scan::sources::WalkLimits;
use crate::scan::sources::executables::{InventoryOptions, places};
use crate::service::change_watch::ChangeWatcher;
use crate::service::process_check;
use crate::service::scan_child::{self, SCAN_TIME_LIMIT, ScanProcess, ScanProcessError};

/// How `run` behaves; the command line fills it in.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub state: StateDir,
    pub root: ScanRoot,
    pub limits: WalkLimits,
    /// Scan and deliver once, then exit.
    pub once: bool,
    /// The start delay is random in `[0, max_delay]`.
    pub max_delay: Duration,
    /// Time between scans; each wait is this ±10%.
    pub interval: Duration,
    /// Time between the checks of running processes while waiting for the next scan
    /// ([`process_check`]); zero for none.
    pub process_check: Duration,
    pub backoff: Backoff,
    /// With `once`: attempts per report before giving up (the report stays spooled).
    pub attempts: u32,
    pub spool_policy: SpoolPolicy,
    /// Ends the service loop (the Windows service's Stop); never set for `run`.
    pub stop: StopSignal,
    /// Where the loop's scans run (`--once` always scans in this process).
    pub scan_process: ScanProcess,
    /// The change journal the scan reads (the service's child is given the one its
    /// watcher wrote for it); `None`: none.
    pub change_journal: Option<PathBuf>,
    /// Whether the loop runs the change watcher (where it can) for its child scans.
    pub watch_changes: bool,
}

/// A stop request that interrupts the service's waits (start delay, the time between
/// scans, back-off), so a Windows service stops within a second when it is idle.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<(Mutex<bool>, Condvar)>);

impl StopSignal {
    pub fn stop(&self) {
        let (stopped, changed) = &*self.0;
        if let Ok(mut stopped) = stopped.lock() {
            *stopped = true;
        }
        changed.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.0.0.lock().map(|stopped| *stopped).unwrap_or(true)
    }

    /// Waits up to `wait`; `true` when a stop was requested (before or during it).
    pub fn sleep(&self, wait: Duration) -> bool {
        let (stopped, changed) = &*self.0;
        let Ok(guard) = stopped.lock() else {
            return true;
        };
        match changed.wait_timeout_while(guard, wait, |stopped| !*stopped) {
            Ok((guard, _)) => *guard,
            Err(_) => true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    ScanProcess(#[from] ScanProcessError),
    #[error(
        "this agent was enrolled for machine id {enrolled}, but the scanned system's machine id is {}: run `sverka-agent enroll` again",
        if found.is_empty() { "missing" } else { found.as_str() }
    )]
    OtherMachine { enrolled: String, found: String },
    #[error(
        "the collector no longer accepts this host's key ({message}): enroll again with `sverka-agent enroll --server URL --secret SECRET`; reports wait in the spool"
    )]
    Reenroll { message: String },
    #[error(
        "not delivered: {pending} report(s) wait in {spool} and will be sent by the next run (last error: {last_error})"
    )]
    NotDelivered {
        pending: usize,
        spool: String,
        last_error: String,
    },
    #[error(
        "{count} report(s) were rejected by the collector and set aside in {folder} (last: {last_error})"
    )]
    Rejected {
        count: usize,
        folder: String,
        last_error: String,
    },
}

/// Runs `run` until it fails (the service) or once.
pub fn run(options: &RunOptions) -> Result<(), RunError> {
    let enrollment = options.state.enrollment()?;
    let spool = Spool::open(options.state.spool_path(), options.spool_policy)?;
    tracing::info!(
        server = enrollment.server,
        host_id = enrollment.host_id,
        organization = enrollment.organization_name,
        "reporting"
    );
    if sleep_logged(
        &options.stop,
        random_up_to(options.max_delay),
        "start delay",
    ) {
        return Ok(());
    }
    if options.once {
        return run_once(options, &spool);
    }
    let mut sender = Sender::new(options, &spool);
    let watcher = start_change_watcher(options);
    loop {
        let next_scan = Instant::now() + jittered(options.interval);
        // Re-read each cycle, so a service picks up a new enrollment without a restart.
        match options.state.enrollment() {
            Ok(enrollment) => {
                if let Err(error) = scan_in_loop(options, &spool, &enrollment, watcher.as_ref()) {
                    tracing::error!("{error}");
                }
                if options.stop.is_stopped() {
                    tracing::info!("stopping");
                    return Ok(());
                }
                match sender.flush(&enrollment, Some(next_scan)) {
                    Ok(_) => {}
                    Err(RunError::Reenroll { message }) => tracing::error!(
                        "the collector no longer accepts this host's key ({message}): enroll again; reports wait in the spool"
                    ),
                    Err(error) => tracing::error!("{error}"),
                }
            }
            Err(error) => tracing::error!("{error}"),
        }
        if options.stop.is_stopped() {
            return Ok(());
        }
        if wait_for_next_scan(options, next_scan) {
            tracing::info!("stopping");
            return Ok(());
        }
    }
}

fn run_once(options: &RunOptions, spool: &Spool) -> Result<(), RunError> {
    let enrollment = options.state.enrollment()?;
    let spooled = scan_and_spool(options, spool, &enrollment);
    if let Err(RunError::OtherMachine { .. }) = spooled {
        return spooled;
    }
    // A report that could not be spooled (a full disk) does not hold back older ones.
    let mut sender = Sender::new(options, spool);
    let outcome = sender.flush(&enrollment, None)?;
    spooled?;
    if let Some(last_error) = outcome.stopped {
        return Err(RunError::NotDelivered {
            pending: spool.pending()?.len(),
            spool: spool.dir().display().to_string(),
            last_error,
        });
    }
    if let Some(last_error) = outcome.last_rejection {
        return Err(RunError::Rejected {
            count: outcome.rejected,
            folder: spool.dir().join("rejected").display().to_string(),
            last_error,
        });
    }
    tracing::info!(
        delivered = outcome.delivered,
        "every report was acknowledged"
    );
    Ok(())
}

/// The catalog scans use: the collector's, when one is cached and parses; otherwise
/// the built-in one.
pub fn scan_catalog(state: &StateDir) -> Catalog {
    match state.cached_catalog() {
        Ok(Some(text)) => match Catalog::from_toml("the collector's catalog", &text) {
            Ok(catalog) => return catalog,
            Err(error) => tracing::warn!("{error}; scanning with the built-in catalog"),
        },
        Ok(None) => {}
        Err(error) => tracing::warn!("{error}; scanning with the built-in catalog"),
    }
    match Catalog::builtin() {
        Ok(catalog) => catalog,
        Err(error) => {
            // The built-in catalog is tested; this is a broken build, not a broken PC.
            tracing::error!("the built-in catalog does not load: {error}");
            Catalog {
                schema: sverka_shared::catalog::CATALOG_SCHEMA,
                version: "none".into(),
                apps: Vec::new(),
            }
        }
    }
}

/// The change watcher for the service's scans, when they take the executable
/// inventory in a child process and the system can watch (logged either way).
fn start_change_watcher(options: &RunOptions) -> Option<ChangeWatcher> {
    if !options.watch_changes
        || !options.limits.executable_inventory
        || !matches!(options.scan_process, ScanProcess::Child { .. })
    {
        return None;
    }
    let places = places::watched_places(&options.root);
    match ChangeWatcher::start(&places) {
        Ok(watcher) => {
            tracing::info!(
                "watching the disks for changes: repeat scans look only at changed folders"
            );
            Some(watcher)
        }
        Err(error) => {
            tracing::info!("{error}; each scan checks every folder's time");
            None
        }
    }
}

/// One scan of the service loop, in a child process or in this one.
fn scan_in_loop(
    options: &RunOptions,
    spool: &Spool,
    enrollment: &Enrollment,
    watcher: Option<&ChangeWatcher>,
) -> Result<(), RunError> {
    match &options.scan_process {
        ScanProcess::InProcess => scan_and_spool(options, spool, enrollment),
        // Stopped or not, the loop looks at the stop signal next.
        ScanProcess::Child { program } => {
            let journal = watcher.and_then(|watcher| {
                let file = options.state.change_journal_path();
                watcher
                    .write_journal(&file)
                    .inspect_err(|error| {
                        tracing::warn!(
                            "cannot write the change journal {}: {error}; the scan checks every folder",
                            file.display()
                        )
                    })
                    .ok()
                    .map(|()| file)
            });
            let scanned =
                scan_child::scan_in_child(program, options, journal.as_deref(), SCAN_TIME_LIMIT);
            if let (Some(watcher), Some(file)) = (watcher, &journal) {
                watcher.forget_seen(file);
            }
            scanned?;
            Ok(())
        }
    }
}

/// `sverka-agent service-scan`, the service's child process: one scan into the spool.
pub fn scan_into_spool(options: &RunOptions) -> Result<(), RunError> {
    let enrollment = options.state.enrollment()?;
    let spool = Spool::open(options.state.spool_path(), options.spool_policy)?;
    scan_and_spool(options, &spool, &enrollment)
}

/// Scans and writes the report to the spool.
fn scan_and_spool(
    options: &RunOptions,
    spool: &Spool,
    enrollment: &Enrollment,
) -> Result<(), RunError> {
    let matcher = CatalogMatcher::new(scan_catalog(&options.state));
    let scan_options = scan::ScanOptions {
        limits: options.limits,
        inventory: InventoryOptions {
            cache_file: Some(options.state.executable_cache_path()),
            change_journal: options.change_journal.clone(),
            ..InventoryOptions::default()
        },
        seen_running_file: Some(options.state.seen_running_path()),
    };
    let outcome = scan::scan(&options.root, &matcher, &scan_options, &|_| {});
    // The report names the machine it describes; it must be the enrolled one.
    let found = outcome.report.host.machine_id.clone().unwrap_or_default();
    if found != enrollment.machine_id {
        return Err(RunError::OtherMachine {
            enrolled: enrollment.machine_id.clone(),
            found,
        });
    }
    let acknowledged = options.state.acknowledged();
    let report = upload::build(&outcome, &matcher, acknowledged.inventory_digest.as_deref());
    spool.push(&report)?;
    tracing::info!(
        report = report.report_id,
        catalog = outcome.report.catalog_version,
        findings = outcome.report.findings.len(),
        violations = outcome.report.violations().count(),
        scan_ms = outcome.report.duration_ms,
        inventory = if report.inventory.is_some() {
            "included"
        } else {
            "unchanged"
        },
        "scanned; report spooled"
    );
    Ok(())
}

/// What one pass over the spool did.
#[derive(Debug, Default)]
struct FlushOutcome {
    delivered: usize,
    rejected: usize,
    last_rejection: Option<String>,
    /// Why delivery stopped with reports left, if it did.
    stopped: Option<String>,
}

/// Delivers the spool; keeps the back-off state between passes of the service loop.
struct Sender<'a> {
    options: &'a RunOptions,
    spool: &'a Spool,
    client: Option<CollectorClient>,
    /// Failed attempts in a row, across reports and passes.
    failures: u32,
    /// The catalog ETag whose fetch failed in this pass (not retried until the next).
    catalog_failed: Option<String>,
}

impl<'a> Sender<'a> {
    fn new(options: &'a RunOptions, spool: &'a Spool) -> Sender<'a> {
        Sender {
            options,
            spool,
            client: None,
            failures: 0,
            catalog_failed: None,
        }
    }

    /// The HTTP client, made again when the enrollment names another collector.
    fn client(&mut self, enrollment: &Enrollment) -> Result<&CollectorClient, RunError> {
        let stale = self
            .client
            .as_ref()
            .is_none_or(|client| client.server() != enrollment.server);
        let client = match self.client.take() {
            Some(client) if !stale => client,
            _ => {
                let ca = self.options.state.collector_ca()?;
                CollectorClient::new(&enrollment.server, ca.as_deref())?
            }
        };
        Ok(self.client.insert(client))
    }

    /// Sends the spool oldest first. Stops when a report could not be delivered within
    /// the attempts (`--once`) or before `deadline` (the next scan of the service).
    fn flush(
        &mut self,
        enrollment: &Enrollment,
        deadline: Option<Instant>,
    ) -> Result<FlushOutcome, RunError> {
        let mut outcome = FlushOutcome::default();
        self.catalog_failed = None;
        // Damaged files that could not even be moved aside are skipped in this pass.
        let mut unreadable = HashSet::new();
        loop {
            let next = self
                .spool
                .pending()?
                .into_iter()
                .find(|pending| !unreadable.contains(&pending.id));
            let Some(pending) = next else {
                return Ok(outcome);
            };
            // A damaged file is set aside by `load`; go on with the next.
            let Some(report) = self.spool.load(&pending) else {
                unreadable.insert(pending.id);
                continue;
            };
            if let Some(reason) = self.deliver(enrollment, &report, deadline, &mut outcome)? {
                outcome.stopped = Some(reason);
                return Ok(outcome);
            }
        }
    }

    /// Tries one report until it is acknowledged or rejected (`None`), or until the
    /// attempts or the time run out (`Some(last error)`).
    fn deliver(
        &mut self,
        enrollment: &Enrollment,
        report: &SpooledReport,
        deadline: Option<Instant>,
        outcome: &mut FlushOutcome,
    ) -> Result<Option<String>, RunError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            tracing::info!(
                report = report.id,
                bytes = report.gzip_body.len(),
                attempt = attempts,
                "sending"
            );
            let started = Instant::now();
            let sent = self.client(enrollment)?.send_report(
                &enrollment.host_key,
                &report.id,
                report.gzip_body.clone(),
            );
            let error = match sent {
                Ok(ack) => {
                    tracing::info!(
                        report = report.id,
                        duplicate = ack.duplicate,
                        milliseconds = started.elapsed().as_millis() as u64,
                        "acknowledged"
                    );
                    self.failures = 0;
                    self.spool.acknowledge(&report.id)?;
                    self.record_ack(enrollment, report, &ack);
                    outcome.delivered += 1;
                    return Ok(None);
                }
                Err(error) => error,
            };
            match disposition(error.status()) {
                Disposition::Reenroll => {
                    return Err(RunError::Reenroll {
                        message: error.to_string(),
                    });
                }
                Disposition::Reject => {
                    tracing::error!(report = report.id, "rejected, set aside: {error}");
                    self.spool.reject(&report.id, &error.to_string())?;
                    outcome.rejected += 1;
                    outcome.last_rejection = Some(error.to_string());
                    return Ok(None);
                }
                Disposition::Retry => {}
            }
            self.failures = self.failures.saturating_add(1);
            if self.options.once && attempts >= self.options.attempts {
                tracing::warn!(report = report.id, attempts, "not delivered: {error}");
                return Ok(Some(error.to_string()));
            }
            let wait =
                self.options
                    .backoff
                    .wait(self.failures - 1, error.retry_after(), fastrand::f64());
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait >= left {
                    tracing::warn!(
                        report = report.id,
                        "not delivered: {error}; trying again after the next scan"
                    );
                    return Ok(Some(error.to_string()));
                }
            }
            tracing::warn!(
                report = report.id,
                "not delivered: {error}; trying again in {:.1} s",
                wait.as_secs_f64()
            );
            if self.options.stop.sleep(wait) {
                return Ok(Some("stopping".into()));
            }
        }
    }

    /// Records what the acknowledgement says: the inventory the collector now holds
    /// (or wants again), and the catalog it serves.
    fn record_ack(
        &mut self,
        enrollment: &Enrollment,
        report: &SpooledReport,
        ack: &sverka_shared::protocol::ReportAck,
    ) {
        let mut state = self.options.state.acknowledged();
        let before = state.clone();
        if ack.inventory_wanted {
            tracing::info!(
                "the collector asked for the full inventory; the next report carries it"
            );
            state.inventory_digest = None;
        } else if report.upload.inventory.is_some() {
            state.inventory_digest = Some(report.upload.inventory_digest.clone());
        }
        if state != before
            && let Err(error) = self.options.state.save_acknowledged(&state)
        {
            tracing::warn!("{error}");
        }
        let etag = ack.catalog_etag.as_str();
        let current = state
            .catalog_etag
            .as_deref()
            .is_some_and(|held| same_etag(held, etag));
        let failed = self.catalog_failed.as_deref() == Some(etag);
        if etag.is_empty() || current || failed {
            return;
        }
        // Conditional only when the catalog the ETag belongs to is still there.
        let cached = matches!(self.options.state.cached_catalog(), Ok(Some(_)));
        let held = state.catalog_etag.as_deref().filter(|_| cached);
        if let Err(error) = self.fetch_catalog(enrollment, held, etag) {
            tracing::warn!("the collector's catalog was not fetched: {error}");
            self.catalog_failed = Some(etag.to_string());
        }
    }

    fn fetch_catalog(
        &mut self,
        enrollment: &Enrollment,
        held: Option<&str>,
        announced: &str,
    ) -> Result<(), RunError> {
        let fetched = self
            .client(enrollment)?
            .fetch_catalog(&enrollment.host_key, held)?;
        match fetched {
            CatalogFetch::NotModified => {
                tracing::info!("the collector's catalog is unchanged");
            }
            CatalogFetch::Changed { text, etag } => {
                let etag = if etag.is_empty() {
                    announced.to_string()
                } else {
                    etag
                };
                match Catalog::from_toml("the collector's catalog", &text) {
                    Ok(catalog) => tracing::info!(
                        version = catalog.version,
                        etag,
                        "fetched the collector's catalog; the next scan uses it"
                    ),
                    Err(error) => tracing::warn!(
                        etag,
                        "fetched the collector's catalog, but it does not load ({error}); scans use the built-in catalog until it is fixed"
                    ),
                }
                self.options.state.save_catalog(&text, &etag)?;
            }
        }
        Ok(())
    }
}

/// ETags compared as the same entity tag (`W/"x"`, `"x"` and `x` are one tag).
fn same_etag(left: &str, right: &str) -> bool {
    let bare = |tag: &str| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag.trim_matches('"').to_string()
    };
    bare(left) == bare(right)
}

/// A uniformly random duration in `[0, limit]`.
fn random_up_to(limit: Duration) -> Duration {
    limit.mul_f64(fastrand::f64())
}

/// The interval ±10%.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + 0.2 * fastrand::f64())
}

/// Waits until `next_scan`, checking the running processes every `process_check`
/// meanwhile; `true` when a stop was requested.
fn wait_for_next_scan(options: &RunOptions, next_scan: Instant) -> bool {
    let now = Instant::now();
    if next_scan <= now {
        return options.stop.is_stopped();
    }
    if options.process_check.is_zero() {
        return sleep_logged(&options.stop, next_scan - now, "next scan");
    }
    tracing::info!(
        "next scan: waiting {:.1} s, checking processes every {:.1} s",
        (next_scan - now).as_secs_f64(),
        options.process_check.as_secs_f64()
    );
    loop {
        let now = Instant::now();
        if next_scan <= now {
            return options.stop.is_stopped();
        }
        if options
            .stop
            .sleep((next_scan - now).min(options.process_check))
        {
            return true;
        }
        if Instant::now() < next_scan {
            process_check::check_where(&options.scan_process, &options.state, &options.stop);
        }
    }
}

/// Waits (logged); `true` when a stop was requested.
fn sleep_logged(stop: &StopSignal, wait: Duration, what: &str) -> bool {
    if wait.is_zero() {
        return stop.is_stopped();
    }
    tracing::info!("{what}: waiting {:.1} s", wait.as_secs_f64());
    stop.sleep(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_ends_a_wait_at_once() {
        let stop = StopSignal::default();
        assert!(!stop.sleep(Duration::from_millis(10)));
        let stopper = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stopper.stop();
        });
        assert!(stop.sleep(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(stop.is_stopped());
        thread.join().unwrap();
    }

    #[test]
    fn etags_compare_as_tags() {
        assert!(same_etag("\"abc\"", "abc"));
        assert!(same_etag("W/\"abc\"", "\"abc\""));
        assert!(!same_etag("\"abc\"", "\"abd\""));
    }

    #[test]
    fn a_broken_collector_catalog_falls_back_to_the_builtin_one() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path());
        let builtin = Catalog::builtin().unwrap();
        assert_eq!(scan_catalog(&state), builtin);
        state.save_catalog("version = \"c1\"\n[[app]]\nid = \"element\"\nname = \"Element\"\nstatus = \"banned\"\n", "\"1\"").unwrap();
        assert_eq!(scan_catalog(&state).version, "c1");
        state.save_catalog("[[app]\nbroken", "\"2\"").unwrap();
        assert_eq!(scan_catalog(&state), builtin);
    }
}
