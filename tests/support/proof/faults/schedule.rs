//! The faults' schedule and the threads that make them: the collector killed and
//! restarted, its database locked, the small disks filled, the banned application
//! removed and installed; and agents killed right after they log `sending`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::agents::Agent;
use super::ledger::{self, AgentSide};
use super::lifecycle::Lifecycle;
use super::{Budget, DISK_FULL_MAX, Done, LOCK_HOLD, LOCK_HOLD_MAX};
use crate::real_collector::Collector;

/// The schedule's sizes, derived from the budget.
#[derive(Debug, Clone)]
pub struct Plan {
    pub agents: usize,
    duration: Duration,
    pub collector_kills: usize,
    /// Time between an agent's scans.
    pub interval: Duration,
    pub proxied_agents: usize,
    pub disk_full_agents: usize,
    database_locks: usize,
    /// Pause between two agent kills: a random time in this range.
    agent_kill_pause: (Duration, Duration),
    /// How long the collector stays down after a kill: a random time in this range.
    collector_downtime: (Duration, Duration),
}

impl Plan {
    pub fn new(budget: &Budget) -> Plan {
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

/// Runs the schedule's faults in order until it is done and the duration is over.
pub fn run_schedule(
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
                // DISK_FULL_MAX. Every report still spooled from before that the agent
                // delivers frees room a new scan could take, so the disk is filled again
                // while waiting.
                let filled = Instant::now();
                while filled.elapsed() < DISK_FULL_MAX
                    && !full.iter().zip(&refilled).all(|(agent, offset)| {
                        AgentSide::from_log(&agent.log_since(*offset)).not_spooled_disk_full > 0
                    })
                {
                    for agent in &full {
                        if let Some(disk) = &agent.disk {
                            disk.fill()?;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
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
pub fn kill_agents(
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
