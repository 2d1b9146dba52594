//! Proof suite part: faults. Real agents (`sverka-agent run`, each with its own state
//! folder and fixture PC) report to a real collector on 127.0.0.1 for the budget's
//! time while, on a random schedule:
//!
//! - the collector is killed with SIGKILL and started again on its port;
//! - agents are killed with SIGKILL right after they logged `sending` (mid-send) and
//!   started again on the same state folder;
//! - an agent's disk fills up (its state folder is a small tmpfs, filled by a filler
//!   file while its spool holds reports, freed later);
//! - the collector's SQLite file is locked (`BEGIN EXCLUSIVE` held longer than the
//!   collector's busy timeout), so it must answer 503;
//! - some agents reach the collector through a proxy that cuts connections mid-request
//!   and mid-answer;
//! - the banned application is removed from some PCs' images and installed on others.
//!
//! Then the faults stop, every agent drains its spool (`run --once`), and both ends
//! are counted: every report id an agent made durable (its log and spool) against the
//! collector's `reports` table, per host; and every finding's lifecycle in
//! `host_apps`/`finding_events` against what was done to the images.

mod disk;
mod ledger;
mod lifecycle;
mod proxy;

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

use super::{Budget, Figure, Part};
use crate::real_collector::Collector;
use crate::{FixtureRoot, agent_binary, run_agent};
use disk::SmallDisk;
use ledger::AgentSide;
use lifecycle::{Expected, Lifecycle};
use proxy::CuttingProxy;

const PART: Part = Part::Faults;
const TELEGRAM: (&str, &str, &str) = ("telegram-desktop", "4.6.5+ds-2", "install ok installed");
const MAX: (&str, &str, &str) = ("max", "25.10.1", "install ok installed");
const BASH: (&str, &str, &str) = ("bash", "5.2.15-2", "install ok installed");
/// The collector's SQLite busy timeout is 5 s: a lock held longer makes it answer 503.
const LOCK_HOLD: Duration = Duration::from_millis(6_500);
/// Only a report that arrives in the first moments of the lock waits out the busy
/// timeout; on a loaded machine no agent may send then (they back off after the
/// collector's kills). So the lock is held on until an agent has been answered 503,
/// at most this long.
const LOCK_HOLD_MAX: Duration = Duration::from_secs(30);
/// How long a disk stays full at most, waiting for a scan to be refused by it.
const DISK_FULL_MAX: Duration = Duration::from_secs(30);
/// The disk-full agent's disk: room for its enrollment, the collector's catalog and a
/// few dozen reports.
const SMALL_DISK_BYTES: u64 = 2 * 1024 * 1024;

/// The schedule's sizes, derived from the budget.
#[derive(Debug, Clone)]
struct Plan {
    agents: usize,
    duration: Duration,
    collector_kills: usize,
    /// Time between an agent's scans.
    interval: Duration,
    proxied_agents: usize,
    disk_full_agents: usize,
    database_locks: usize,
    /// Pause between two agent kills: a random time in this range.
    agent_kill_pause: (Duration, Duration),
    /// How long the collector stays down after a kill: a random time in this range.
    collector_downtime: (Duration, Duration),
}

impl Plan {
    fn new(budget: &Budget) -> Plan {
        let agents = budget.fault_agents;
        let (interval, agent_kill_pause, collector_downtime, database_locks) = if budget.smoke {
            (
                Duration::from_secs(1),
                (Duration::from_millis(400), Duration::from_millis(1_200)),
                (Duration::from_millis(300), Duration::from_millis(1_000)),
                1,
            )
        } else {
            (
                Duration::from_secs(6),
                (Duration::from_millis(1_000), Duration::from_millis(4_000)),
                (Duration::from_millis(500), Duration::from_millis(4_000)),
                3,
            )
        };
        Plan {
            agents,
            duration: budget.fault_duration,
            collector_kills: budget.fault_collector_kills,
            interval,
            proxied_agents: (agents / 5).max(2),
            disk_full_agents: if agents >= 20 { 2 } else { 1 },
            database_locks,
            agent_kill_pause,
            collector_downtime,
        }
    }
}

/// One fault on the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    KillCollector { down: Duration },
    LockDatabase,
    FillDisks,
    RemoveBannedApp,
    InstallBannedApp,
}

/// The faults in time order, as offsets from the start.
fn schedule(plan: &Plan) -> Vec<(Duration, Fault)> {
    let within = |from: f64, to: f64| plan.duration.mul_f64(from + (to - from) * fastrand::f64());
    let between = |(low, high): (Duration, Duration)| low + (high - low).mul_f64(fastrand::f64());
    let mut faults = Vec::new();
    for _ in 0..plan.collector_kills {
        faults.push((
            within(0.05, 0.9),
            Fault::KillCollector {
                down: between(plan.collector_downtime),
            },
        ));
    }
    for _ in 0..plan.database_locks {
        faults.push((within(0.1, 0.8), Fault::LockDatabase));
    }
    faults.push((within(0.2, 0.6), Fault::FillDisks));
    faults.push((plan.duration.mul_f64(0.4), Fault::RemoveBannedApp));
    faults.push((plan.duration.mul_f64(0.55), Fault::InstallBannedApp));
    faults.sort_by_key(|fault| fault.0);
    faults
}

/// One agent: its PC image, state folder, log, and the running `sverka-agent run`.
#[derive(Debug)]
struct Agent {
    host: String,
    lifecycle: Lifecycle,
    disk_full: bool,
    state: PathBuf,
    log: PathBuf,
    root: FixtureRoot,
    child: Mutex<Option<Child>>,
    /// When the banned application was removed or installed (Unix seconds).
    changed_at: Mutex<Option<i64>>,
    /// Dropped before `_state_folder` (fields drop in order): unmounted first.
    disk: Option<SmallDisk>,
    _state_folder: TempDir,
}

impl Agent {
    fn packages(&self, banned: bool) -> Vec<(&'static str, &'static str, &'static str)> {
        if banned {
            vec![TELEGRAM, MAX, BASH]
        } else {
            vec![MAX, BASH]
        }
    }

    /// Rewrites the image's dpkg status atomically (a scan never reads half of it).
    fn set_banned_installed(&self, installed: bool) -> anyhow::Result<()> {
        let staging = FixtureRoot::new();
        staging.dpkg(&self.packages(installed));
        let status = self.root.local("/var/lib/dpkg/status");
        let next = status.with_extension("next");
        fs::copy(staging.local("/var/lib/dpkg/status"), &next)?;
        fs::rename(&next, &status)?;
        *lock(&self.changed_at) = Some(unix_now());
        Ok(())
    }

    fn command(&self, arguments: &[String]) -> anyhow::Result<Command> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut command = Command::new(agent_binary());
        command
            .args(arguments)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--root")
            .arg(self.root.path())
            .env("SVERKA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Ok(command)
    }

    /// Starts the reporting service (`run` on a schedule).
    fn start(&self, plan: &Plan) -> anyhow::Result<()> {
        let interval = format!("{}ms", plan.interval.as_millis());
        let arguments: Vec<String> = [
            "run",
            "--interval",
            interval.as_str(),
            "--max-delay",
            interval.as_str(),
            "--retry-base",
            "200ms",
            "--retry-cap",
            "2s",
        ]
        .map(String::from)
        .to_vec();
        let child = self
            .command(&arguments)?
            .spawn()
            .context("start the agent")?;
        *lock(&self.child) = Some(child);
        Ok(())
    }

    /// SIGKILL, no matter what it is doing.
    fn kill(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spool(&self) -> PathBuf {
        self.state.join("spool")
    }

    fn log_length(&self) -> u64 {
        fs::metadata(&self.log)
            .map(|metadata| metadata.len())
            .unwrap_or(0)
    }

    /// The log from `offset` on.
    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Counts of what the fault makers did.
#[derive(Debug, Default)]
struct Done {
    collector_kills: usize,
    database_locks: usize,
    disk_fills: usize,
    /// Reports the disk-full agents had acknowledged while their disk was full.
    delivered_from_full_disk: usize,
}

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let plan = Plan::new(budget);
    anyhow::ensure!(
        plan.agents >= plan.proxied_agents + plan.disk_full_agents + 2,
        "the faults part needs at least {} agents",
        plan.proxied_agents + plan.disk_full_agents + 2
    );
    let logs = budget.artifacts.join("faults");
    if logs.exists() {
        fs::remove_dir_all(&logs).with_context(|| format!("clear {}", logs.display()))?;
    }
    fs::create_dir_all(&logs)?;

    let mut collector = Collector::start();
    let school = collector.add_org("Школа №1 (отказы)", "school", None);
    let secret = collector.secret(school);
    let proxy =
        CuttingProxy::start(collector_port(&collector)?).context("start the cutting proxy")?;

    let agents = enroll_agents(&plan, &collector, &secret, &proxy, &logs)?;
    let started = unix_now();
    for agent in &agents {
        agent.start(&plan)?;
    }
    let agents = Arc::new(agents);

    // Agent kills run beside the schedule, on their own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let disks_full = Arc::new(AtomicBool::new(false));
    let agent_kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (agents, stop, disks_full, kills, plan) = (
            Arc::clone(&agents),
            Arc::clone(&stop),
            Arc::clone(&disks_full),
            Arc::clone(&agent_kills),
            plan.clone(),
        );
        std::thread::spawn(move || kill_agents(&agents, &plan, &stop, &disks_full, &kills))
    };

    let began = Instant::now();
    let mut done = Done::default();
    let faulted = run_schedule(
        &plan,
        &mut collector,
        &agents,
        &disks_full,
        began,
        &mut done,
    );
    stop.store(true, Ordering::SeqCst);
    let _ = killer.join();
    for agent in agents.iter() {
        agent.kill();
    }
    faulted?;

    // The final drain: no more faults; each agent delivers what it holds (and one
    // last report) with `run --once`.
    proxy.set_cutting(false);
    if !collector_answers(&collector) {
        collector.restart();
    }
    for agent in agents.iter() {
        if let Some(disk) = &agent.disk {
            disk.free()?;
        }
    }
    let mut sides: BTreeMap<String, AgentSide> = BTreeMap::new();
    for agent in agents.iter() {
        let mut side = AgentSide::default();
        side.add_spooled(&agent.spool());
        sides.insert(agent.host.clone(), side);
    }
    let drained = unix_now();
    let failed_drains = drain(&agents)?;

    for agent in agents.iter() {
        let text = fs::read_to_string(&agent.log).unwrap_or_default();
        let side = sides.entry(agent.host.clone()).or_default();
        let from_log = AgentSide::from_log(&text);
        side.produced.extend(from_log.produced);
        side.acknowledged = from_log.acknowledged;
        side.duplicate_acknowledgements = from_log.duplicate_acknowledgements;
        side.attempts = from_log.attempts;
        side.not_spooled_disk_full = from_log.not_spooled_disk_full;
        side.answered_503 = from_log.answered_503;
    }
    let left_in_spools: usize = agents
        .iter()
        .map(|agent| ledger::spooled_ids(&agent.spool()).len())
        .sum();
    let set_aside: usize = agents
        .iter()
        .map(|agent| ledger::set_aside(&agent.spool()))
        .sum();
    let stored = ledger::Stored::read(&collector.database())?;
    let reconciliation = ledger::reconcile(&sides, &stored);
    let expected: Vec<Expected> = agents
        .iter()
        .map(|agent| Expected {
            host: agent.host.clone(),
            lifecycle: agent.lifecycle,
            changed_at: *lock(&agent.changed_at),
        })
        .collect();
    let verdict = lifecycle::check(&collector.database(), &expected, started, drained)?;

    let mut details = String::new();
    for line in reconciliation
        .lost
        .iter()
        .map(|id| format!("lost: {id}"))
        .chain(
            reconciliation
                .stored_not_produced
                .iter()
                .map(|id| format!("stored, never produced: {id}")),
        )
        .chain(
            verdict
                .wrong
                .iter()
                .map(|wrong| format!("lifecycle: {wrong}")),
        )
    {
        eprintln!("faults: {line}");
        details.push_str(&line);
        details.push('\n');
    }
    fs::write(logs.join("problems.txt"), &details)?;
    fs::write(logs.join("collector.log"), collector.log())?;

    let sum = |field: fn(&AgentSide) -> usize| sides.values().map(field).sum::<usize>();
    let proxy_stats = proxy.stats();
    let seconds = began.elapsed().as_secs();
    let figures = vec![
        Figure::count(PART, "agents reporting", plan.agents),
        Figure::count(
            PART,
            "time under faults",
            format!("{} min {} s", seconds / 60, seconds % 60),
        ),
        Figure::at_least(
            PART,
            "collector killed with SIGKILL and restarted",
            done.collector_kills as u64,
            plan.collector_kills as u64,
        ),
        Figure::at_least(
            PART,
            "agents killed with SIGKILL just after `sending`",
            agent_kills.load(Ordering::SeqCst) as u64,
            1,
        ),
        Figure::at_least(
            PART,
            "connections cut by the proxy mid-request",
            proxy_stats.cut_requests,
            1,
        ),
        Figure::at_least(
            PART,
            "connections cut by the proxy mid-answer",
            proxy_stats.cut_answers,
            1,
        ),
        Figure::count(
            PART,
            "database locked (BEGIN EXCLUSIVE held past the 5 s busy timeout until an agent got a 503, at most 30 s)",
            done.database_locks,
        ),
        Figure::count(PART, "small disks filled to the last byte", done.disk_fills),
        Figure::at_least(
            PART,
            "503 answers while the database was locked",
            sum(|side| side.answered_503) as u64,
            1,
        ),
        Figure::at_least(
            PART,
            "scans not spooled because the disk was full",
            sum(|side| side.not_spooled_disk_full) as u64,
            1,
        ),
        Figure::at_least(
            PART,
            "reports delivered from a full disk",
            done.delivered_from_full_disk as u64,
            1,
        ),
        Figure::at_least(
            PART,
            "reports produced",
            reconciliation.produced as u64,
            (plan.agents * 3) as u64,
        ),
        Figure::count(PART, "send attempts", sum(|side| side.attempts)),
        Figure::count(PART, "reports acknowledged", reconciliation.acknowledged),
        Figure::count(
            PART,
            "resent after a lost acknowledgement (the collector said duplicate)",
            sum(|side| side.duplicate_acknowledgements),
        ),
        Figure::count(PART, "reports stored", reconciliation.stored),
        Figure::at_most(PART, "reports lost", reconciliation.lost.len() as u64, 0),
        Figure::at_most(
            PART,
            "reports duplicated",
            reconciliation.duplicated as u64,
            0,
        ),
        Figure::at_most(
            PART,
            "reports stored that no agent produced",
            reconciliation.stored_not_produced.len() as u64,
            0,
        ),
        Figure::at_most(
            PART,
            "reports left in a spool or set aside after the drain",
            (left_in_spools + set_aside) as u64,
            0,
        ),
        Figure::at_most(
            PART,
            "final drains that failed",
            failed_drains.len() as u64,
            0,
        ),
        Figure::count(
            PART,
            "reports stored late (older than the host's newest)",
            stored.stale,
        ),
        Figure::count(PART, "finding lifecycles checked", verdict.checked),
        Figure::at_most(
            PART,
            "finding lifecycles wrong",
            verdict.wrong.len() as u64,
            0,
        ),
    ];
    for failure in &failed_drains {
        eprintln!("faults: final drain failed: {failure}");
    }
    // Unmounts the small disks (the agents are stopped).
    drop(agents);
    Ok(figures)
}

fn collector_port(collector: &Collector) -> anyhow::Result<u16> {
    collector
        .url()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .context("the collector's port")
}

/// Whether the collector's port takes connections.
fn collector_answers(collector: &Collector) -> bool {
    collector_port(collector).is_ok_and(|port| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )
        .is_ok()
    })
}

/// Makes each PC image and state folder, and enrolls the agent with the collector;
/// the proxied ones then report through the proxy.
fn enroll_agents(
    plan: &Plan,
    collector: &Collector,
    secret: &str,
    proxy: &CuttingProxy,
    logs: &Path,
) -> anyhow::Result<Vec<Agent>> {
    let mut agents = Vec::new();
    for index in 0..plan.agents {
        let host = format!("fault-pc-{index:02}");
        let lifecycle = Lifecycle::of_agent(index);
        let root = FixtureRoot::new();
        root.machine_id(&format!("{host}-{index:025}"))
            .hostname(&host)
            .user("teacher", 1000);
        let state_folder = tempfile::tempdir()?;
        let disk_full = index >= plan.agents - plan.disk_full_agents;
        let disk = if disk_full {
            Some(SmallDisk::mount(state_folder.path(), SMALL_DISK_BYTES)?)
        } else {
            None
        };
        let agent = Agent {
            host,
            lifecycle,
            disk_full,
            state: state_folder.path().to_path_buf(),
            log: logs.join(format!("agent-{index:02}.log")),
            root,
            child: Mutex::new(None),
            changed_at: Mutex::new(None),
            disk,
            _state_folder: state_folder,
        };
        agent
            .root
            .dpkg(&agent.packages(lifecycle.installed_at_start()));
        let enrolled = run_agent(&[
            "enroll",
            "--server",
            &collector.url(),
            "--allow-http",
            "--secret",
            secret,
            "--state-dir",
            &agent.state.display().to_string(),
            "--root",
            &agent.root.path().display().to_string(),
        ]);
        anyhow::ensure!(
            enrolled.code == 0,
            "enrolling {}: {}",
            agent.host,
            enrolled.stderr
        );
        if index < plan.proxied_agents {
            point_at(&agent.state, &proxy.url())?;
        }
        agents.push(agent);
    }
    Ok(agents)
}

/// Points an enrolled agent's state at another address of the same collector.
fn point_at(state: &Path, url: &str) -> anyhow::Result<()> {
    let path = state.join("enrollment.json");
    let mut enrollment: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path)?)?;
    enrollment["server"] = url.into();
    fs::write(&path, enrollment.to_string())?;
    Ok(())
}

/// Runs the schedule's faults in order until it is done and the duration is over.
fn run_schedule(
    plan: &Plan,
    collector: &mut Collector,
    agents: &[Agent],
    disks_full: &AtomicBool,
    began: Instant,
    done: &mut Done,
) -> anyhow::Result<()> {
    for (at, fault) in schedule(plan) {
        if let Some(wait) = at.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
        eprintln!("faults: {:>5.1} s {fault:?}", began.elapsed().as_secs_f64());
        match fault {
            Fault::KillCollector { down } => {
                collector.kill();
                done.collector_kills += 1;
                std::thread::sleep(down);
                collector.restart();
            }
            Fault::LockDatabase => {
                let offsets: Vec<u64> = agents.iter().map(Agent::log_length).collect();
                let answered_503 = || {
                    agents.iter().zip(&offsets).any(|(agent, offset)| {
                        AgentSide::from_log(&agent.log_since(*offset)).answered_503 > 0
                    })
                };
                hold_database_lock(&collector.database(), answered_503)?;
                done.database_locks += 1;
            }
            Fault::FillDisks => {
                // Reports pile up in the spool while the collector is down; then the
                // disk fills; the collector comes back and the spooled reports must
                // still be delivered from the full disk. Delivering them frees a little
                // room, so the disk is filled again: new scans cannot be spooled until
                // it is freed.
                disks_full.store(true, Ordering::SeqCst);
                collector.kill();
                done.collector_kills += 1;
                std::thread::sleep(plan.interval * 2);
                let full: Vec<&Agent> = agents.iter().filter(|agent| agent.disk_full).collect();
                let mut waiting = Vec::new();
                for agent in &full {
                    if let Some(disk) = &agent.disk {
                        disk.fill()?;
                    }
                    waiting.push((agent.log_length(), ledger::spooled_ids(&agent.spool())));
                    done.disk_fills += 1;
                }
                collector.restart();
                // Until a report spooled before the disk filled has been delivered (at
                // most DISK_FULL_MAX): the agents may be backing off after the kill.
                let restarted = Instant::now();
                std::thread::sleep(plan.interval * 3);
                while restarted.elapsed() < DISK_FULL_MAX
                    && !full.iter().zip(&waiting).any(|(agent, (offset, spooled))| {
                        let side = AgentSide::from_log(&agent.log_since(*offset));
                        spooled.iter().any(|id| side.acknowledged.contains(id))
                    })
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                let mut refilled = Vec::new();
                for (agent, (offset, spooled)) in full.iter().zip(waiting) {
                    let acknowledged = AgentSide::from_log(&agent.log_since(offset)).acknowledged;
                    done.delivered_from_full_disk += spooled
                        .iter()
                        .filter(|id| acknowledged.contains(*id))
                        .count();
                    if let Some(disk) = &agent.disk {
                        disk.fill()?;
                    }
                    refilled.push(agent.log_length());
                }
                // Full until each of these agents has had a scan refused by the disk (a
                // scan takes longer than the interval on a loaded machine), at most
                // DISK_FULL_MAX.
                let filled = Instant::now();
                std::thread::sleep(plan.interval * 2);
                while filled.elapsed() < DISK_FULL_MAX
                    && !full.iter().zip(&refilled).all(|(agent, offset)| {
                        AgentSide::from_log(&agent.log_since(*offset)).not_spooled_disk_full > 0
                    })
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                for agent in &full {
                    if let Some(disk) = &agent.disk {
                        disk.free()?;
                    }
                }
                disks_full.store(false, Ordering::SeqCst);
            }
            Fault::RemoveBannedApp | Fault::InstallBannedApp => {
                let (lifecycle, installed) = if fault == Fault::RemoveBannedApp {
                    (Lifecycle::RemovedPartway, false)
                } else {
                    (Lifecycle::InstalledPartway, true)
                };
                for agent in agents.iter().filter(|agent| agent.lifecycle == lifecycle) {
                    agent.set_banned_installed(installed)?;
                }
            }
        }
    }
    if let Some(left) = plan.duration.checked_sub(began.elapsed()) {
        std::thread::sleep(left);
    }
    Ok(())
}

/// Holds `BEGIN EXCLUSIVE` on the collector's SQLite file from this process (another
/// process, as far as the collector can tell) for [`LOCK_HOLD`], then on until
/// `answered_503` says an agent was refused, or [`LOCK_HOLD_MAX`] has passed.
fn hold_database_lock(database: &Path, answered_503: impl Fn() -> bool) -> anyhow::Result<()> {
    let connection = rusqlite::Connection::open(database)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    connection.execute_batch("BEGIN EXCLUSIVE")?;
    let locked = Instant::now();
    std::thread::sleep(LOCK_HOLD);
    while !answered_503() && locked.elapsed() < LOCK_HOLD_MAX {
        std::thread::sleep(Duration::from_millis(200));
    }
    connection.execute_batch("COMMIT")?;
    Ok(())
}

/// Kills a random agent with SIGKILL just after it logs `sending`, starts it again on
/// the same state folder, and pauses; until `stop`. The disk-full agents are spared
/// while their disk is full (that scenario counts their deliveries).
fn kill_agents(
    agents: &[Agent],
    plan: &Plan,
    stop: &AtomicBool,
    disks_full: &AtomicBool,
    kills: &AtomicUsize,
) {
    let (low, high) = plan.agent_kill_pause;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(low + (high - low).mul_f64(fastrand::f64()));
        let agent = &agents[fastrand::usize(..agents.len())];
        if agent.disk_full && disks_full.load(Ordering::SeqCst) {
            continue;
        }
        let offset = agent.log_length();
        let give_up = Instant::now() + plan.interval * 3;
        let mut sending = false;
        while Instant::now() < give_up && !stop.load(Ordering::SeqCst) {
            if agent.log_since(offset).contains("sending report=") {
                sending = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !sending {
            continue;
        }
        agent.kill();
        kills.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..500)));
        if !stop.load(Ordering::SeqCst)
            && let Err(error) = agent.start(plan)
        {
            eprintln!("faults: restarting {}: {error:#}", agent.host);
        }
    }
}

/// `run --once` for every agent at once: each delivers its spool and one last report.
/// Returns the agents whose drain did not end with everything acknowledged.
fn drain(agents: &[Agent]) -> anyhow::Result<Vec<String>> {
    let arguments: Vec<String> = [
        "run",
        "--once",
        "--attempts",
        "8",
        "--retry-base",
        "200ms",
        "--retry-cap",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    let mut children = Vec::new();
    for agent in agents {
        children.push((agent, agent.command(&arguments)?.spawn()?));
    }
    let mut failed = Vec::new();
    for (agent, mut child) in children {
        let status = child.wait()?;
        if !status.success() {
            failed.push(format!(
                "{} ({status}; see {})",
                agent.host,
                agent.log.display()
            ));
        }
    }
    Ok(failed)
}
