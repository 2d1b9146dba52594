//! `sverka-proof`: runs the proof suite (faults, hostile input, isolation, parser
//! fuzzing, the agent's resource guard, slow clients) and prints its table of figures. Exits 1 when
//! a target was missed or a part could not run.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;
use sverka_tests::proof::{Budget, Part, Table, parsers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PartArg {
    All,
    Faults,
    Hostile,
    Isolation,
    Parsers,
    Guard,
    SlowClients,
}

#[derive(Debug, Parser)]
#[command(
    name = "sverka-proof",
    about = "Sverka's proof suite: faults, hostile input, isolation, parsers, resource guard"
)]
struct Args {
    /// The parts to run.
    #[arg(value_enum, default_values_t = [PartArg::All])]
    parts: Vec<PartArg>,
    /// The test command's short budget instead of the full one.
    #[arg(long)]
    smoke: bool,
    /// Logs, the kept fuzz corpus and crash inputs.
    #[arg(long, default_value = "target/proof")]
    artifacts: PathBuf,
    /// Also write the table (Markdown) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    if let Ok(target) = std::env::var(parsers::WORKER_VARIABLE) {
        std::process::exit(parsers::worker_main(&target));
    }
    let args = Args::parse();
    std::fs::create_dir_all(&args.artifacts)
        .with_context(|| format!("create {}", args.artifacts.display()))?;
    let budget = if args.smoke {
        Budget::smoke(args.artifacts.clone())
    } else {
        Budget::full(args.artifacts.clone())
    };
    let mut parts: Vec<Part> = Vec::new();
    for part in &args.parts {
        match part {
            PartArg::All => parts.extend(Part::ALL),
            PartArg::Faults => parts.push(Part::Faults),
            PartArg::Hostile => parts.push(Part::Hostile),
            PartArg::Isolation => parts.push(Part::Isolation),
            PartArg::Parsers => parts.push(Part::Parsers),
            PartArg::Guard => parts.push(Part::Guard),
            PartArg::SlowClients => parts.push(Part::SlowClients),
        }
    }
    parts.sort();
    parts.dedup();

    let mut table = Table::default();
    let mut failed_parts = Vec::new();
    for part in parts {
        eprintln!("sverka-proof: {} ...", part.name());
        let started = Instant::now();
        match part.run(&budget) {
            Ok(figures) => {
                eprintln!(
                    "sverka-proof: {} done in {:.0} s",
                    part.name(),
                    started.elapsed().as_secs_f64()
                );
                table.figures.extend(figures);
            }
            Err(error) => {
                eprintln!("sverka-proof: {} could not run: {error:#}", part.name());
                failed_parts.push(part.name());
            }
        }
    }
    let markdown = table.markdown();
    println!("{markdown}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("write {}", path.display()))?;
    }
    let missed = table.missed();
    if !failed_parts.is_empty() || !missed.is_empty() {
        eprintln!(
            "sverka-proof: {} target(s) missed; parts that could not run: {}",
            missed.len(),
            if failed_parts.is_empty() {
                "none".to_string()
            } else {
                failed_parts.join(", ")
            }
        );
        std::process::exit(1);
    }
    Ok(())
}
