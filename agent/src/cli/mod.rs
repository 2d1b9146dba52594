//! The command line. Shapes are fixed (acceptance checks rely on them):
//! `sverka-agent scan [--root DIR] [--format table|json] [--catalog FILE]`, exiting 0
//! when no banned application is installed or running, 1 when one is, 2 on error;
//! `sverka-agent enroll --server URL --secret SECRET [--state-dir DIR] [--root DIR]`;
//! `sverka-agent run [--once] [--state-dir DIR] [--root DIR]`, exiting 0 (with
//! `--once`) only when the collector acknowledged every report, 2 otherwise.

pub mod output;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sverka_shared::{Catalog, CatalogMatcher, SourceKind};

use crate::delivery::enroll;
use crate::delivery::retry::Backoff;
use crate::delivery::spool::SpoolPolicy;
use crate::delivery::state::StateDir;
use crate::scan;
use crate::scan::ScanOptions;
use crate::scan::root::ScanRoot;
use crate::scan::sources::WalkLimits;
use crate::scan::sources::executables::InventoryOptions;
use crate::service::config::parse_duration;
use crate::service::run_loop::{self, RunOptions, StopSignal};
use crate::service::scan_child::ScanProcess;

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
    /// Scan on a schedule and report to the collector; --once for one report.
    Run(RunArgs),
    /// The installed service: reads agent.toml (and on Windows the MSI's settings),
    /// enrolls when needed, then runs the schedule (under the Service Control Manager
    /// on Windows, in the foreground otherwise).
    Service(ServiceArgs),
    /// Show the settings, the enrollment and what waits in the spool.
    Status(StatusArgs),
    /// One scan into the spool; the service runs it as a child process for each scan.
    #[command(name = "service-scan", hide = true)]
    ServiceScan(ServiceScanArgs),
    /// One check of running processes into the state folder's record; the service
    /// runs it as a child process between scans.
    #[command(name = "service-process-check", hide = true)]
    ServiceProcessCheck(ServiceProcessCheckArgs),
}

#[derive(Debug, clap::Args)]
struct ServiceProcessCheckArgs {
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ServiceScanArgs {
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = SpoolPolicy::default().max_reports)]
    spool_max_reports: usize,
    #[arg(long, value_name = "BYTES", default_value_t = SpoolPolicy::default().max_bytes)]
    spool_max_bytes: u64,
    /// The change journal the service's watcher wrote for this scan.
    #[arg(long, value_name = "FILE")]
    change_journal: Option<PathBuf>,
    #[command(flatten)]
    walk: WalkArgs,
}

#[derive(Debug, clap::Args)]
struct ServiceArgs {
    /// The settings file (default: /etc/sverka/agent.toml, %ProgramData%\Sverka\agent.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Enroll and scan the system mounted at DIR instead of this one (tests, benchmarks).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The settings file (default: /etc/sverka/agent.toml, %ProgramData%\Sverka\agent.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
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
    #[arg(long, value_name = "DIR", default_value_os_t = crate::service::platform::default_state_dir())]
    state_dir: PathBuf,
    /// Enroll the system mounted at DIR (its machine id and name) instead of this one.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Trust only these CA certificates (PEM) for the collector (pinned; for a
    /// collector with a certificate from the authority's own CA).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Allow a plain http:// collector (the secret, the key and the reports then cross
    /// the network unencrypted).
    #[arg(long)]
    allow_http: bool,
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
    #[arg(long, value_name = "DIR", default_value_os_t = crate::service::platform::default_state_dir())]
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
    /// Time between the cheap checks of running processes between scans, which record
    /// when each catalog application was last seen running (0: none).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15m")]
    process_check: Duration,
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
    /// Without the change watcher: each repeat scan checks every folder's time instead
    /// of looking only at the folders the kernel said changed (Linux).
    #[arg(long)]
    no_change_watch: bool,
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
    /// Remember the executable inventory in FILE, so the next scan with it reads only
    /// new or changed programs (the service keeps it in its state folder).
    #[arg(long, value_name = "FILE")]
    inventory_cache: Option<PathBuf>,
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
    /// Walk toolchain folders too (.cargo, .pyenv, node_modules, ...), and take the
    /// executable inventory inside folders tagged as caches (CACHEDIR.TAG), which are
    /// skipped by default.
    #[arg(long)]
    walk_everything: bool,
    /// Take the executable inventory (every fixed disk's programs outside the walked
    /// folders): on by default in the service (`run`), off by default in `scan`
    /// unless --inventory-cache is given.
    #[arg(long, conflicts_with = "no_inventory")]
    inventory: bool,
    /// Skip the executable inventory.
    #[arg(long)]
    no_inventory: bool,
}

impl WalkArgs {
    /// The walks' limits; `inventory_by_default` is the command's default for the
    /// executable inventory when neither --inventory nor --no-inventory is given.
    fn limits(&self, inventory_by_default: bool) -> WalkLimits {
        WalkLimits {
            max_depth: self.walk_depth,
            max_entries: self.walk_entries,
            prune_toolchains: !self.walk_everything,
            executable_inventory: !self.no_inventory && (self.inventory || inventory_by_default),
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
        Command::Service(args) => run_service(args),
        Command::Status(args) => run_status(args),
        Command::ServiceScan(args) => run_service_scan(args),
        Command::ServiceProcessCheck(args) => {
            crate::service::scan_child::init_child_logging();
            crate::service::process_check::check(&StateDir::new(args.state_dir));
            Ok(EXIT_CLEAN)
        }
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

/// The log filter from `SVERKA_LOG`: a level (`debug`) or directives
/// (`info,sverka_agent::delivery=debug`); `info` when unset or not understood.
///
/// A `Targets` filter rather than an `EnvFilter`: `EnvFilter` brings in
/// regex-automata's full-DFA builder, and with it every catalog glob is compiled into
/// a dense DFA at start-up, about a third of a default scan's CPU (docs/performance.md).
pub(crate) fn log_filter() -> tracing_subscriber::filter::Targets {
    parse_log_filter(std::env::var("SVERKA_LOG").ok().as_deref())
}

fn parse_log_filter(directives: Option<&str>) -> tracing_subscriber::filter::Targets {
    directives
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        })
}

/// Human-readable logs on stderr; `SVERKA_LOG` (e.g. `debug`) changes the level.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .finish()
        .with(log_filter())
        .try_init();
}

fn run_enroll(args: EnrollArgs) -> anyhow::Result<i32> {
    init_logging();
    crate::delivery::client::require_https(&args.server, args.allow_http)?;
    let root = scan_root(args.root.as_deref())?;
    let state = StateDir::new(args.state_dir);
    let ca_pem = match &args.ca_cert {
        Some(file) => {
            let (pem, truncated) =
                crate::scan::fsread::read_bounded(file, crate::delivery::state::MAX_CA_BYTES)
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
        limits: args.walk.limits(true),
        once: args.once,
        max_delay: args.max_delay.unwrap_or(Duration::from_secs(default_delay)),
        interval: args.interval,
        process_check: args.process_check,
        backoff,
        attempts: args.attempts,
        spool_policy: SpoolPolicy::default(),
        stop: StopSignal::default(),
        // The loop's scans in a child process, so it never holds a scan's memory.
        scan_process: if args.once {
            ScanProcess::InProcess
        } else {
            ScanProcess::this_program()
        },
        change_journal: None,
        watch_changes: !args.no_change_watch,
    };
    run_loop::run(&options)?;
    Ok(EXIT_CLEAN)
}

fn run_service_scan(args: ServiceScanArgs) -> anyhow::Result<i32> {
    crate::service::scan_child::init_child_logging();
    let options = RunOptions {
        state: StateDir::new(args.state_dir),
        root: scan_root(args.root.as_deref())?,
        limits: args.walk.limits(true),
        once: true,
        max_delay: Duration::ZERO,
        interval: Duration::ZERO,
        process_check: Duration::ZERO,
        backoff: Backoff::ONCE,
        attempts: 1,
        spool_policy: SpoolPolicy {
            max_reports: args.spool_max_reports,
            max_bytes: args.spool_max_bytes,
        },
        stop: StopSignal::default(),
        scan_process: ScanProcess::InProcess,
        change_journal: args.change_journal,
        watch_changes: false,
    };
    run_loop::scan_into_spool(&options)?;
    crate::service::scan_child::log_peak_memory();
    Ok(EXIT_CLEAN)
}

fn run_service(args: ServiceArgs) -> anyhow::Result<i32> {
    let root = scan_root(args.root.as_deref())?;
    #[cfg(windows)]
    if args.root.is_none() {
        init_service_logging();
        if crate::service::platform::run_under_service_manager(args.config.clone())
            .context("starting the service")?
        {
            return Ok(EXIT_CLEAN);
        }
    }
    #[cfg(not(windows))]
    init_logging();
    // Not under the Service Control Manager (systemd, or by hand): in the foreground
    // until the process is ended.
    crate::service::os_service::run(args.config.as_deref(), &root, &StopSignal::default())?;
    Ok(EXIT_CLEAN)
}

/// Windows: the service has no console, so logs also go to a file in
/// `%ProgramData%\Sverka\logs` (a new file each day, the last 14 kept).
#[cfg(windows)]
fn init_service_logging() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = log_filter();
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_filter(filter.clone());
    let log_dir = crate::service::platform::log_dir();
    let _ = std::fs::create_dir_all(&log_dir);
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("agent.log")
        .max_log_files(14)
        .build(log_dir)
        .ok()
        .map(|appender| {
            tracing_subscriber::fmt::layer()
                .with_writer(appender)
                .with_ansi(false)
                .with_target(false)
                .with_filter(filter)
        });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

fn run_status(args: StatusArgs) -> anyhow::Result<i32> {
    let settings = crate::service::config::ServiceSettings::load(args.config.as_deref())?;
    let state = StateDir::new(&settings.state_dir);
    let mut text = format!("settings: {}\n", settings.source);
    let configured = |value: bool| if value { "set" } else { "not set" };
    text.push_str(&format!(
        "server_url: {}\nenroll_secret: {}\nca_file: {}\nallow_http: {}\nstate: {}\n",
        settings.server_url.as_deref().unwrap_or("not set"),
        configured(settings.enroll_secret.is_some()),
        settings
            .ca_file
            .as_ref()
            .map_or("not set".to_string(), |file| file.display().to_string()),
        settings.allow_http,
        state.path().display(),
    ));
    #[cfg(windows)]
    match crate::service::platform::folder_access(state.path()) {
        Ok(sddl) => text.push_str(&format!("state access: {sddl}\n")),
        Err(error) => text.push_str(&format!("state access: unknown ({error})\n")),
    }
    let enrolled = match state.enrollment() {
        Ok(enrollment) => {
            text.push_str(&format!(
                "enrolled: host {} in {} (collector {})\n",
                enrollment.host_id, enrollment.organization_name, enrollment.server
            ));
            true
        }
        Err(error) => {
            text.push_str(&format!("enrolled: no ({error})\n"));
            false
        }
    };
    let pending = crate::delivery::spool::Spool::open(state.spool_path(), SpoolPolicy::default())
        .and_then(|spool| spool.pending())
        .map(|pending| pending.len());
    match pending {
        Ok(count) => text.push_str(&format!("spooled reports: {count}\n")),
        Err(error) => text.push_str(&format!("spooled reports: unknown ({error})\n")),
    }
    write_stdout(&text)?;
    Ok(if enrolled { EXIT_CLEAN } else { EXIT_ERROR })
}

fn run_scan(args: ScanArgs) -> anyhow::Result<i32> {
    let catalog = match &args.catalog {
        Some(file) => Catalog::builtin_with_overrides(file)?,
        None => Catalog::builtin().context("loading the built-in catalog")?,
    };
    let root = scan_root(args.root.as_deref())?;
    let matcher = CatalogMatcher::new(catalog);
    let options = ScanOptions {
        limits: args.walk.limits(args.inventory_cache.is_some()),
        inventory: InventoryOptions {
            cache_file: args.inventory_cache,
            ..InventoryOptions::default()
        },
        seen_running_file: None,
    };
    let progress = Progress::new();
    let outcome = scan::scan(&root, &matcher, &options, &|kind| progress.finished(kind));
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
    use super::parse_log_filter;
    use tracing::Level;

    #[test]
    fn log_filter_reads_a_level_or_directives_and_falls_back_to_info() {
        let info = parse_log_filter(None);
        assert!(info.would_enable("sverka_agent::scan", &Level::INFO));
        assert!(!info.would_enable("sverka_agent::scan", &Level::DEBUG));

        let debug = parse_log_filter(Some("debug"));
        assert!(debug.would_enable("sverka_agent::scan", &Level::DEBUG));
        assert!(!debug.would_enable("sverka_agent::scan", &Level::TRACE));

        let directives = parse_log_filter(Some("warn,sverka_agent::delivery=trace"));
        assert!(directives.would_enable("sverka_agent::delivery::spool", &Level::TRACE));
        assert!(!directives.would_enable("sverka_agent::scan", &Level::INFO));

        let not_understood = parse_log_filter(Some("delivery=loud"));
        assert!(not_understood.would_enable("sverka_agent::scan", &Level::INFO));
        assert!(!not_understood.would_enable("sverka_agent::scan", &Level::DEBUG));
    }
}
