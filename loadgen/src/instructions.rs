//! `sverka-loadgen instructions`: the collector's instructions per request, counted by
//! valgrind's callgrind. Unlike CPU time, an instruction count does not move with
//! whatever else the machine is doing, so two builds can be compared on a busy machine.
//!
//! One figure comes from two collector runs under callgrind that differ only in how
//! many requests are measured: the difference of their totals divided by the
//! difference of the counts is one request's cost, while start-up, enrollment, the
//! warm-up reports and shut-down cancel out.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::{Server, all_template_bodies, enroll_hosts, prepare_collector, run_phase, school_pc};

#[derive(Debug, Args)]
pub struct InstructionsOptions {
    /// Enrolled hosts; each sends one full report before the measured requests (at
    /// most 60, what one address may enroll at once under the default limits).
    #[arg(long, default_value_t = 50)]
    hosts: usize,
    /// Measured requests in the longer run of each pair (the shorter sends a fifth).
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Requests in flight at once (at most 16, what one address may upload at once
    /// under the collector's default limits).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Programs in each inventory.
    #[arg(long, default_value_t = 300)]
    inventory_items: usize,
    /// Distinct inventories among the hosts.
    #[arg(long, default_value_t = 20)]
    templates: usize,
    /// The collector's per-address enrollment, connection and upload limits: `default`
    /// (at most 60 hosts and 16 requests in flight), `lifted` (by the `[enrollment]`
    /// and `[connections]` sections), or `absent` for a collector from before those
    /// limits (2026-11-30), which refuses the sections.
    #[arg(long, value_enum, default_value_t = AddressLimits::Default)]
    address_limits: AddressLimits,
    /// Keep each run's callgrind output in this folder (for `callgrind_annotate`),
    /// named by request kind and count.
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// The valgrind to run the collector under.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AddressLimits {
    Default,
    Lifted,
    Absent,
}

/// What one client address may do under the collector's default limits, which this
/// mode keeps unless told otherwise, so that older collectors (without the
/// `[enrollment]` and `[connections]` sections) run with the same configuration:
/// enroll 60 hosts at once (the burst of `[enrollment] per_address_burst`) and have 16
/// uploads in progress.
const MAX_HOSTS: usize = 60;
const MAX_CONCURRENCY: usize = 16;

/// What one request kind costs: the two runs' totals and the figure per request.
struct Measured {
    shorter: (usize, u64),
    longer: (usize, u64),
}

impl Measured {
    fn per_request(&self) -> f64 {
        let instructions = self.longer.1 as f64 - self.shorter.1 as f64;
        instructions / (self.longer.0 - self.shorter.0) as f64
    }
}

pub async fn run(options: InstructionsOptions, collector: PathBuf) -> Result<()> {
    let version = Command::new(&options.valgrind)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} (Debian's package valgrind)",
                options.valgrind.display()
            )
        })?;
    let shorter = (options.requests / 5).max(1);
    if options.requests <= shorter {
        bail!("--requests must be at least 2");
    }
    let (max_hosts, max_concurrency) = match options.address_limits {
        AddressLimits::Default => (MAX_HOSTS, MAX_CONCURRENCY),
        AddressLimits::Lifted | AddressLimits::Absent => (usize::MAX, usize::MAX),
    };
    if !(1..=max_hosts).contains(&options.hosts)
        || !(1..=max_concurrency).contains(&options.concurrency)
    {
        bail!(
            "--hosts and --concurrency must be at least 1, and under the default \
             --address-limits at most {MAX_HOSTS} and {MAX_CONCURRENCY}"
        );
    }
    let (full, check_in) = all_template_bodies(options.templates, options.inventory_items)?;
    let (full, check_in) = (Arc::new(full), Arc::new(check_in));
    println!(
        "sverka-loadgen instructions: {} under {}, {} hosts, {} in flight, {} and {} requests per kind",
        collector.display(),
        String::from_utf8_lossy(&version.stdout).trim(),
        options.hosts,
        options.concurrency,
        shorter,
        options.requests
    );
    for (kind, bodies) in [("check-ins", &check_in), ("full reports", &full)] {
        let mut counts = [(shorter, 0), (options.requests, 0)];
        for (requests, total) in &mut counts {
            let keep = options.profiles.as_ref().map(|folder| {
                folder.join(format!("{}-{requests}.callgrind", kind.replace(' ', "-")))
            });
            *total = session(&options, &collector, &full, bodies, *requests, keep).await?;
        }
        let measured = Measured {
            shorter: counts[0],
            longer: counts[1],
        };
        println!(
            "{kind:<34} {:>12.0} instructions per request (totals {} and {})",
            measured.per_request(),
            measured.shorter.1,
            measured.longer.1
        );
    }
    Ok(())
}

/// One collector run under callgrind: enroll the hosts, one full report each, then
/// `requests` reports from `bodies`; returns the run's total instruction count, and
/// copies callgrind's output to `keep` when given.
async fn session(
    options: &InstructionsOptions,
    collector: &Path,
    full: &Arc<Vec<Vec<u8>>>,
    bodies: &Arc<Vec<Vec<u8>>>,
    requests: usize,
    keep: Option<PathBuf>,
) -> Result<u64> {
    let work = tempfile::tempdir()?;
    let (config, secret) = prepare_collector(
        collector,
        work.path(),
        options.address_limits == AddressLimits::Lifted,
    )?;
    let out = work.path().join("callgrind.out");
    let mut command = Command::new(&options.valgrind);
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(collector)
        .arg("--config")
        .arg(&config)
        .arg("serve");
    let mut server = Server::start(command)?;
    let urls = std::slice::from_ref(&server.url);
    // Everything runs at valgrind's pace: minutes, not seconds, are normal.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Idle connections are dropped before the collector closes them (after 10 s).
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .build()?;
    let keys = Arc::new(enroll_hosts(&client, urls, 0..options.hosts, school_pc(secret)).await?);
    let phase = async |bodies: &Arc<Vec<Vec<u8>>>, total: usize| {
        let unbounded = Duration::from_secs(24 * 3600);
        let (keys, bodies) = (keys.clone(), bodies.clone());
        run_phase(
            &client,
            urls,
            keys,
            bodies,
            options.concurrency,
            unbounded,
            Some(total),
        )
        .await
    };
    let warm_up = phase(full, options.hosts).await;
    let measured = phase(bodies, requests).await;
    if warm_up.failures + measured.failures > 0 {
        bail!(
            "{} of {} reports failed",
            warm_up.failures + measured.failures,
            warm_up.requests + measured.requests
        );
    }
    // The collector's idle connections close with the client, so it stops at once.
    drop(client);
    let stopped = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()?;
    if !stopped.success() {
        bail!("could not stop the collector");
    }
    let status = server.child.wait()?;
    if !status.success() {
        bail!("the collector under callgrind exited with {status}");
    }
    let profile = std::fs::read_to_string(&out)
        .with_context(|| format!("reading callgrind's output {}", out.display()))?;
    if let Some(keep) = keep {
        if let Some(folder) = keep.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::copy(&out, &keep).with_context(|| format!("keeping {}", keep.display()))?;
    }
    total_instructions(&profile).context("callgrind's output has no totals line")
}

/// The `totals:` (or, in older files, `summary:`) line of a callgrind output file.
fn total_instructions(profile: &str) -> Option<u64> {
    let line = |prefix: &str| {
        profile
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    line("totals:").or_else(|| line("summary:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_callgrind_output() {
        let profile = "version: 1\nevents: Ir\nfn=(1) main\n3 10\nsummary: 1234\ntotals: 5678\n";
        assert_eq!(total_instructions(profile), Some(5678));
        assert_eq!(total_instructions("events: Ir\nsummary: 99\n"), Some(99));
        assert_eq!(total_instructions("events: Ir\n"), None);
        assert_eq!(total_instructions("totals: many\n"), None);
    }

    #[test]
    fn one_request_costs_the_difference_over_the_extra_requests() {
        let measured = Measured {
            shorter: (200, 1_000_000),
            longer: (1000, 9_000_000),
        };
        assert_eq!(measured.per_request(), 10_000.0);
    }
}
