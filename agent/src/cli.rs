//! The command line. Shapes are fixed (acceptance checks rely on them):
//! `sverka-agent scan [--root DIR] [--format table|json] [--catalog FILE]`, exiting 0
//! when no banned application is installed or running, 1 when one is, 2 on error;
//! `sverka-agent enroll --server URL --secret SECRET [--state-dir DIR] [--root DIR]`;
//! `sverka-agent run [--once] [--state-dir DIR] [--root DIR]`, exiting 0 (with
//! `--once`) only when the collector acknowledged every report, 2 otherwise.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sverka_shared::{Catalog, CatalogMatcher, SourceKind};

use crate::enroll;
use crate::output;
use crate::retry::Backoff;
use crate::root::ScanRoot;
use crate::run::{self, RunOptions};
use crate::scan;
use crate::sources::WalkLimits;
use crate::spool::SpoolPolicy;
use crate::state::StateDir;

pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_BANNED_FOUND: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "sverka-agent",
    version,
    about = "Finds banned and approved messengers on this PC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan this PC (or a mounted image) and print what was found.
    Scan(ScanArgs),
    /// Print the built-in catalog as TOML (a starting point for --catalog files).
    Catalog,
    /// Enroll this PC with a collector, using the school's enrollment secret.
    Enroll(EnrollArgs),
    /// Scan on a schedule and report to the collector (the service); --once for one report.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    /// The collector's base URL, e.g. https://sverka.edu.example
    #[arg(long, value_name = "URL")]
    server: String,
    /// The enrollment secret the school was given.
    #[arg(
        long,
        value_name = "SECRET",
        env = "SVERKA_ENROLL_SECRET",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    secret: Secret,
    /// Where the agent keeps its enrollment, state and spool.
    #[arg(long, value_name = "DIR", default_value_os_t = StateDir::default_path())]
    state_dir: PathBuf,
    /// Enroll the system mounted at DIR (its machine id and name) instead of this one.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Trust these CA certificates (PEM) for the collector, besides the system's (for a
    /// collector with a certificate from the authority's own CA).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// The enrollment secret, redacted in `Debug`.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.trim().is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(Secret(text.to_string()))
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Scan and report once, then exit: 0 when the collector acknowledged everything.
    #[arg(long)]
    once: bool,
    /// Where the agent keeps its enrollment, state and spool.
    #[arg(long, value_name = "DIR", default_value_os_t = StateDir::default_path())]
    state_dir: PathBuf,
    /// Scan the system mounted at DIR instead of this one.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The first scan waits a random time up to this (default 300 s; 0 with --once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_delay: Option<Duration>,
    /// Time between scans (±10%), e.g. 3600, 90m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    interval: Duration,
    /// With --once: attempts per report before giving up (it stays in the spool).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    attempts: u32,
    /// The first wait after a failed attempt; waits double up to --retry-cap, with full
    /// jitter (default 5 s; 1 s with --once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    retry_base: Option<Duration>,
    /// The longest wait between attempts (default 15 min; 10 s with --once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    retry_cap: Option<Duration>,
    #[command(flatten)]
    walk: WalkArgs,
}

#[derive(Debug, clap::Args)]
struct ScanArgs {
    /// Scan a mounted system image at DIR instead of the running system.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// A TOML catalog merged over the built-in one.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    #[command(flatten)]
    walk: WalkArgs,
}

#[derive(Debug, clap::Args)]
struct WalkArgs {
    /// How deep the walks for portable copies go below each folder.
    #[arg(long, value_name = "N", default_value_t = WalkLimits::default().max_depth)]
    walk_depth: usize,
    /// How many entries one walk may visit before it stops.
    #[arg(long, value_name = "N", default_value_t = WalkLimits::default().max_entries)]
    walk_entries: u64,
    /// Walk toolchain folders too (.cargo, .pyenv, node_modules, ...), which are skipped
    /// by default.
    #[arg(long)]
    walk_everything: bool,
}

impl WalkArgs {
    fn limits(&self) -> WalkLimits {
        WalkLimits {
            max_depth: self.walk_depth,
            max_entries: self.walk_entries,
            prune_toolchains: !self.walk_everything,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Runs the command line and returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_CLEAN
            };
        }
    };
    match run(cli) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("sverka-agent: error: {error:#}");
            EXIT_ERROR
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Catalog => {
            let catalog = Catalog::builtin().context("loading the built-in catalog")?;
            write_stdout(&catalog.to_toml())?;
            Ok(EXIT_CLEAN)
        }
        Command::Enroll(args) => run_enroll(args),
        Command::Run(args) => run_run(args),
    }
}

fn scan_root(directory: Option<&Path>) -> anyhow::Result<ScanRoot> {
    match directory {
        Some(directory) => {
            anyhow::ensure!(
                directory.is_dir(),
                "--root {} is not a folder",
                directory.display()
            );
            Ok(ScanRoot::image(directory))
        }
        None => Ok(ScanRoot::live()),
    }
}

/// Human-readable logs on stderr; `SVERKA_LOG` (e.g. `debug`) changes the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SVERKA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

fn run_enroll(args: EnrollArgs) -> anyhow::Result<i32> {
    init_logging();
    let root = scan_root(args.root.as_deref())?;
    let state = StateDir::new(args.state_dir);
    let ca_pem = match &args.ca_cert {
        Some(file) => {
            let (pem, truncated) = crate::fsread::read_bounded(file, crate::state::MAX_CA_BYTES)
                .with_context(|| format!("reading --ca-cert {}", file.display()))?;
            anyhow::ensure!(!truncated, "--ca-cert {} is too large", file.display());
            Some(pem)
        }
        None => None,
    };
    let enrollment = enroll::enroll(
        &args.server,
        &args.secret.0,
        ca_pem.as_deref(),
        &state,
        &root,
    )?;
    write_stdout(&format!(
        "enrolled in {} as host {} (collector {}, state in {})\n",
        enrollment.organization_name,
        enrollment.host_id,
        enrollment.server,
        state.path().display()
    ))?;
    Ok(EXIT_CLEAN)
}

fn run_run(args: RunArgs) -> anyhow::Result<i32> {
    init_logging();
    let root = scan_root(args.root.as_deref())?;
    let defaults = if args.once {
        Backoff::ONCE
    } else {
        Backoff::SERVICE
    };
    let backoff = Backoff {
        base: args.retry_base.unwrap_or(defaults.base),
        cap: args.retry_cap.unwrap_or(defaults.cap),
        max_retry_after: defaults.max_retry_after,
    };
    anyhow::ensure!(
        args.once || !args.interval.is_zero(),
        "--interval must be longer than 0"
    );
    let default_delay = if args.once { 0 } else { 300 };
    let options = RunOptions {
        state: StateDir::new(args.state_dir),
        root,
        limits: args.walk.limits(),
        once: args.once,
        max_delay: args.max_delay.unwrap_or(Duration::from_secs(default_delay)),
        interval: args.interval,
        backoff,
        attempts: args.attempts,
        spool_policy: SpoolPolicy::default(),
    };
    run::run(&options)?;
    Ok(EXIT_CLEAN)
}

/// `90`, `90s`, `1.5m`, `1h`, `250ms`: a number of seconds, or one with a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90, 90s, 5m, 1h, 250ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

fn run_scan(args: ScanArgs) -> anyhow::Result<i32> {
    let catalog = match &args.catalog {
        Some(file) => Catalog::builtin_with_overrides(file)?,
        None => Catalog::builtin().context("loading the built-in catalog")?,
    };
    let root = scan_root(args.root.as_deref())?;
    let matcher = CatalogMatcher::new(catalog);
    let limits = args.walk.limits();
    let progress = Progress::new();
    let outcome = scan::scan(&root, &matcher, limits, &|kind| progress.finished(kind));
    progress.clear();
    let report = outcome.report;
    let text = match args.format {
        Format::Json => output::json(&report) + "\n",
        Format::Table => output::table(&report),
    };
    write_stdout(&text)?;
    Ok(if report.violations().next().is_some() {
        EXIT_BANNED_FOUND
    } else {
        EXIT_CLEAN
    })
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("writing the report")?;
    stdout.flush().context("writing the report")?;
    Ok(())
}

/// A spinner on stderr, shown only on a terminal and only once a scan takes a while.
struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: Mutex<bool>,
    interactive: bool,
}

impl Progress {
    const DELAY: Duration = Duration::from_millis(400);

    fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} scanning… {msg}") {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            shown: Mutex::new(false),
            interactive: std::io::stderr().is_terminal(),
        }
    }

    fn finished(&self, kind: SourceKind) {
        if !self.interactive {
            return;
        }
        if let Ok(mut shown) = self.shown.lock()
            && !*shown
            && self.started.elapsed() > Progress::DELAY
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(120));
            *shown = true;
        }
        self.bar.set_message(format!("{kind} done"));
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("90", Some(90.0)),
            ("90s", Some(90.0)),
            ("1.5m", Some(90.0)),
            ("1h", Some(3600.0)),
            ("250ms", Some(0.25)),
            ("0", Some(0.0)),
            ("", None),
            ("h", None),
            ("5 days", None),
            ("-1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_duration(text)
                    .ok()
                    .map(|duration| duration.as_secs_f64()),
                expected,
                "{text:?}"
            );
        }
    }
}
