//! The command line. Shapes are fixed (acceptance checks rely on them):
//! `sverka-agent scan [--root DIR] [--format table|json] [--catalog FILE]`, exiting 0
//! when no banned application is installed or running, 1 when one is, 2 on error.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use sverka_shared::{Catalog, CatalogMatcher, SourceKind};

use crate::output;
use crate::root::ScanRoot;
use crate::scan;
use crate::sources::WalkLimits;

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
    }
}

fn run_scan(args: ScanArgs) -> anyhow::Result<i32> {
    let catalog = match &args.catalog {
        Some(file) => Catalog::builtin_with_overrides(file)?,
        None => Catalog::builtin().context("loading the built-in catalog")?,
    };
    let root = match &args.root {
        Some(directory) => {
            anyhow::ensure!(
                directory.is_dir(),
                "--root {} is not a folder",
                directory.display()
            );
            ScanRoot::image(directory.clone())
        }
        None => ScanRoot::live(),
    };
    let matcher = CatalogMatcher::new(catalog);
    let limits = WalkLimits {
        max_depth: args.walk_depth,
        max_entries: args.walk_entries,
        prune_toolchains: !args.walk_everything,
    };
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
