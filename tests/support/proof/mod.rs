//! The proof suite (`sverka-proof`): faults, hostile input, isolation, parser fuzzing,
//! the agent's resource guard and slow clients, each measured on real processes and printed as one
//! table of figures against their targets. The same code runs in two sizes: the full
//! budget (`sverka-proof all`, minutes) and a smoke budget the test command runs
//! (`tests/e2e/proof.rs`, about a minute in all).

pub mod faults;
pub mod guard;
pub mod hostile;
pub mod isolation;
pub mod parsers;
pub mod slow_clients;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One part of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Faults,
    Hostile,
    Isolation,
    Parsers,
    Guard,
    SlowClients,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Faults,
        Part::Hostile,
        Part::Isolation,
        Part::Parsers,
        Part::Guard,
        Part::SlowClients,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Faults => "faults",
            Part::Hostile => "hostile input",
            Part::Isolation => "isolation",
            Part::Parsers => "parsers",
            Part::Guard => "resource guard",
            Part::SlowClients => "slow clients",
        }
    }

    /// Runs this part within `budget`. A part that cannot run at all (a tool missing,
    /// no permission for a cgroup) is an error, never a silently empty table.
    pub fn run(self, budget: &Budget) -> anyhow::Result<Vec<Figure>> {
        match self {
            Part::Faults => faults::run(budget),
            Part::Hostile => hostile::run(budget),
            Part::Isolation => isolation::run(budget),
            Part::Parsers => parsers::run(budget),
            Part::Guard => guard::run(budget),
            Part::SlowClients => slow_clients::run(budget),
        }
    }
}

/// How much each part does: the full suite or the test command's smoke run.
#[derive(Debug, Clone)]
pub struct Budget {
    pub smoke: bool,
    /// Agents reporting at once through the faults.
    pub fault_agents: usize,
    /// How long they report.
    pub fault_duration: Duration,
    /// How often the collector is killed with SIGKILL in that time.
    pub fault_collector_kills: usize,
    /// Generated hostile requests, over all endpoints.
    pub hostile_requests: usize,
    /// Fuzzing time per parser target.
    pub fuzz_time_per_target: Duration,
    /// Programs in the resource guard's fixture PC (its scan's size).
    pub guard_programs: usize,
    /// Connections dribbling headers or bodies at once in the slow-clients part.
    pub slow_connections: usize,
    /// How long they keep at it (and how long the normal reports are measured).
    pub slow_duration: Duration,
    /// Where logs, the kept fuzz corpus and any crash inputs go.
    pub artifacts: PathBuf,
}

impl Budget {
    /// The published figures: the numbers.
    pub fn full(artifacts: PathBuf) -> Budget {
        Budget {
            smoke: false,
            fault_agents: 50,
            fault_duration: Duration::from_secs(600),
            fault_collector_kills: 10,
            hostile_requests: 5_000,
            fuzz_time_per_target: Duration::from_secs(30),
            guard_programs: 50_000,
            slow_connections: 1_000,
            slow_duration: Duration::from_secs(120),
            artifacts,
        }
    }

    /// The test command's version: every part, with every check, briefly.
    pub fn smoke(artifacts: PathBuf) -> Budget {
        Budget {
            smoke: true,
            fault_agents: 6,
            fault_duration: Duration::from_secs(15),
            fault_collector_kills: 2,
            hostile_requests: 600,
            fuzz_time_per_target: Duration::from_millis(400),
            guard_programs: 8_000,
            slow_connections: 60,
            slow_duration: Duration::from_secs(4),
            artifacts,
        }
    }
}

/// One measured figure and, when it has one, its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub part: Part,
    pub measure: String,
    pub value: String,
    /// The target as people read it (`0`, `≤ 1 core`), empty for a plain count.
    pub target: String,
    /// `None` for a figure without a target (requests sent, seconds taken).
    pub met: Option<bool>,
}

impl Figure {
    /// A count with no target: context for the other figures.
    pub fn count(part: Part, measure: impl Into<String>, value: impl ToString) -> Figure {
        Figure {
            part,
            measure: measure.into(),
            value: value.to_string(),
            target: String::new(),
            met: None,
        }
    }

    /// A count that must stay at or below `most` (lost reports: at most 0).
    pub fn at_most(part: Part, measure: impl Into<String>, value: u64, most: u64) -> Figure {
        Figure {
            part,
            measure: measure.into(),
            value: value.to_string(),
            target: if most == 0 {
                "0".into()
            } else {
                format!("≤ {most}")
            },
            met: Some(value <= most),
        }
    }

    /// A count that must reach `least` (collector kills: at least 10).
    pub fn at_least(part: Part, measure: impl Into<String>, value: u64, least: u64) -> Figure {
        Figure {
            part,
            measure: measure.into(),
            value: value.to_string(),
            target: format!("≥ {least}"),
            met: Some(value >= least),
        }
    }

    /// A figure checked some other way (a measured share against a limit).
    pub fn checked(
        part: Part,
        measure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Figure {
        Figure {
            part,
            measure: measure.into(),
            value: value.into(),
            target: target.into(),
            met: Some(met),
        }
    }
}

/// Every figure of a run.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub figures: Vec<Figure>,
}

impl Table {
    /// Figures whose target was missed.
    pub fn missed(&self) -> Vec<&Figure> {
        self.figures
            .iter()
            .filter(|figure| figure.met == Some(false))
            .collect()
    }

    /// The table as Markdown, the way the README publishes it.
    pub fn markdown(&self) -> String {
        let mut text = String::from("| Part | Measure | Value | Target | Met |\n");
        text.push_str("|---|---|---:|---:|---|\n");
        for figure in &self.figures {
            let met = match figure.met {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None => "",
            };
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} |",
                figure.part.name(),
                figure.measure,
                figure.value,
                figure.target,
                met
            );
        }
        text
    }
}

/// Asserts a part's figures met their targets (the smoke tests' check), naming each
/// missed one.
pub fn assert_met(figures: &[Figure]) {
    let missed: Vec<String> = figures
        .iter()
        .filter(|figure| figure.met == Some(false))
        .map(|figure| {
            format!(
                "{}: {} = {} (target {})",
                figure.part.name(),
                figure.measure,
                figure.value,
                figure.target
            )
        })
        .collect();
    assert!(missed.is_empty(), "targets missed:\n{}", missed.join("\n"));
    assert!(
        figures.iter().any(|figure| figure.met.is_some()),
        "a part measured nothing against a target"
    );
}
