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
//!
//! Here: the run and what it counts. `schedule.rs` plans and makes the faults,
//! `agents.rs` sets up, starts, kills and drains the agents, `disk.rs` and `proxy.rs`
//! are two of the faults, `ledger.rs` and `lifecycle.rs` check the two ends.

mod agents;
mod disk;
mod ledger;
mod lifecycle;
mod proxy;
mod schedule;

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Budget, Figure, Part};
use crate::real_collector::Collector;
use agents::{drain, enroll_agents};
use ledger::AgentSide;
use lifecycle::Expected;
use proxy::CuttingProxy;
use schedule::{Plan, kill_agents, run_schedule};

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
