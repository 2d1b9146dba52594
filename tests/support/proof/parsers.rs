//! Proof suite part: parsers. Every fuzz target of [`crate::fuzz_targets`] runs for
//! [`Budget::fuzz_time_per_target`] in a child process of its own (`sverka-proof` as a
//! fuzz worker), so a panic, an abort or a stack overflow is a crash and never takes the
//! suite down. The worker mutates a corpus with a seeded generator (fastrand: bit flips,
//! interesting bytes, cuts, duplicated and spliced chunks), keeps on disk every input
//! that made its parser answer differently from all inputs before, and saves the input
//! of every crash. Each target's corpus lives under `<artifacts>/corpus/<target>/` and
//! is the next run's starting point.

use anyhow::{Context, bail};
use std::collections::HashSet;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Budget, Figure, Part};
use crate::fuzz_targets::{Target, targets};

/// The environment variable that turns `sverka-proof` into a fuzz worker.
pub const WORKER_VARIABLE: &str = "SVERKA_PROOF_FUZZ_WORKER";
/// Inputs kept per target at most (the corpus stays small enough to read back).
const MAX_CORPUS: usize = 512;
const MAX_INPUT: usize = 256 * 1024;

/// What one worker run measured.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerCounts {
    executions: u64,
    crashes: u64,
    kept: u64,
}

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let worker = worker_binary()?;
    let seed = std::env::var("SVERKA_PROOF_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("parsers: seed {seed} (SVERKA_PROOF_SEED={seed} repeats it)");
    let mut figures = Vec::new();
    let mut total = WorkerCounts::default();
    for (index, target) in targets().iter().enumerate() {
        let folder = budget.artifacts.join("corpus").join(slug(target.name));
        std::fs::create_dir_all(&folder).with_context(|| format!("create {}", folder.display()))?;
        let counts = fuzz_target(
            &worker,
            target,
            &folder,
            budget.fuzz_time_per_target,
            seed.wrapping_add(index as u64),
        )?;
        let corpus = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with("input-"))
                    .count()
            })
            .unwrap_or(0);
        eprintln!(
            "parsers: {}: {} executions, {} crashes, {} kept this run, corpus {corpus}",
            target.name, counts.executions, counts.crashes, counts.kept
        );
        figures.push(Figure::at_most(
            Part::Parsers,
            format!(
                "{}: crashes in {} executions (corpus {corpus})",
                target.name, counts.executions
            ),
            counts.crashes,
            0,
        ));
        if counts.executions == 0 {
            bail!("the fuzz target {} ran no input", target.name);
        }
        total.executions += counts.executions;
        total.crashes += counts.crashes;
    }
    figures.push(Figure::count(
        Part::Parsers,
        format!("targets × time each (executions in all), seed {seed}",),
        format!(
            "{} × {:.1} s ({})",
            targets().len(),
            budget.fuzz_time_per_target.as_secs_f64(),
            total.executions
        ),
    ));
    Ok(figures)
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `sverka-proof` itself when it is the one running; built otherwise (the smoke tests).
fn worker_binary() -> anyhow::Result<PathBuf> {
    let current = std::env::current_exe().context("the running program")?;
    let is_proof = current
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("sverka-proof"));
    if is_proof {
        Ok(current)
    } else {
        Ok(crate::build_binary("sverka-tests", "sverka-proof"))
    }
}

/// Runs one target for `time` in workers; a worker that dies (abort, stack overflow,
/// a signal) counts one crash, its last input is saved, and a new worker goes on with
/// the time left.
fn fuzz_target(
    worker: &Path,
    target: &Target,
    folder: &Path,
    time: Duration,
    seed: u64,
) -> anyhow::Result<WorkerCounts> {
    let deadline = Instant::now() + time;
    let mut counts = WorkerCounts::default();
    let mut restarts = 0u64;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && counts.executions > 0 {
            break;
        }
        let output = Command::new(worker)
            .env(WORKER_VARIABLE, target.name)
            .env("SVERKA_PROOF_FUZZ_DIR", folder)
            .env(
                "SVERKA_PROOF_FUZZ_MILLIS",
                left.as_millis().max(1).to_string(),
            )
            .env("SVERKA_PROOF_SEED", seed.wrapping_add(restarts).to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("start the fuzz worker {}", worker.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        // The worker prints its counts every few thousand executions and at the end,
        // so a worker that dies still tells how far it came.
        if let Some(last) = text.lines().rev().find_map(parse_counts) {
            counts.executions += last.executions;
            counts.crashes += last.crashes;
            counts.kept += last.kept;
        }
        if output.status.success() {
            break;
        }
        counts.crashes += 1;
        counts.executions += 1;
        let current = folder.join("current-input");
        let crash = folder.join(format!("crash-died-{seed}-{restarts}"));
        let _ = std::fs::copy(&current, &crash);
        eprintln!(
            "parsers: {}: the worker died ({}); its input is {}",
            target.name,
            output.status,
            crash.display()
        );
        restarts += 1;
        if restarts > 50 {
            break;
        }
    }
    Ok(counts)
}

/// Targets that crash on their own seed: the suite's check that a panic and an abort
/// are counted as crashes and their inputs saved.
fn canary_targets() -> Vec<Target> {
    vec![
        Target {
            name: "canary: panics",
            seeds: || vec![b"boom".to_vec()],
            run: |bytes| {
                assert!(bytes != b"boom", "the canary's panic");
                0
            },
        },
        Target {
            name: "canary: aborts",
            seeds: || vec![b"abort".to_vec()],
            run: |bytes| {
                if bytes == b"abort" {
                    std::process::abort();
                }
                0
            },
        },
    ]
}

/// Fuzzes one target (a canary too) by name in worker processes for `time`; its
/// executions and crashes.
pub fn fuzz_named(
    name: &str,
    folder: &Path,
    time: Duration,
    seed: u64,
) -> anyhow::Result<(u64, u64)> {
    let target = targets()
        .into_iter()
        .chain(canary_targets())
        .find(|target| target.name == name)
        .with_context(|| format!("no fuzz target {name:?}"))?;
    std::fs::create_dir_all(folder).with_context(|| format!("create {}", folder.display()))?;
    let counts = fuzz_target(&worker_binary()?, &target, folder, time, seed)?;
    Ok((counts.executions, counts.crashes))
}

fn parse_counts(line: &str) -> Option<WorkerCounts> {
    let mut fields = line.strip_prefix("counts ")?.split(' ');
    Some(WorkerCounts {
        executions: fields.next()?.parse().ok()?,
        crashes: fields.next()?.parse().ok()?,
        kept: fields.next()?.parse().ok()?,
    })
}

/// The worker: `sverka-proof` started with [`WORKER_VARIABLE`] naming a target.
/// Returns the process's exit code.
pub fn worker_main(target_name: &str) -> i32 {
    let Some(target) = targets()
        .into_iter()
        .chain(canary_targets())
        .find(|target| target.name == target_name)
    else {
        eprintln!("no fuzz target {target_name:?}");
        return 2;
    };
    let folder = PathBuf::from(std::env::var_os("SVERKA_PROOF_FUZZ_DIR").unwrap_or_default());
    let millis: u64 = std::env::var("SVERKA_PROOF_FUZZ_MILLIS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1000);
    let seed: u64 = std::env::var("SVERKA_PROOF_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    match fuzz_in_process(&target, &folder, Duration::from_millis(millis), seed) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("fuzz worker: {error:#}");
            3
        }
    }
}

fn fuzz_in_process(
    target: &Target,
    folder: &Path,
    time: Duration,
    seed: u64,
) -> anyhow::Result<()> {
    // Panics are counted and their input saved; their messages would only flood stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut corpus: Vec<Vec<u8>> = (target.seeds)();
    for entry in std::fs::read_dir(folder)
        .with_context(|| format!("read {}", folder.display()))?
        .filter_map(Result::ok)
    {
        if entry.file_name().to_string_lossy().starts_with("input-")
            && let Ok(bytes) = std::fs::read(entry.path())
        {
            corpus.push(bytes);
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut seen: HashSet<u64> = HashSet::new();
    let mut counts = WorkerCounts::default();
    let mut current =
        std::fs::File::create(folder.join("current-input")).context("create current-input")?;
    // The seeds and the kept corpus first, as they are.
    let mut queue: Vec<Vec<u8>> = corpus.clone();
    let deadline = Instant::now() + time;
    let mut kept_on_disk = corpus.len();
    loop {
        let input = match queue.pop() {
            Some(input) => input,
            None => {
                if Instant::now() >= deadline {
                    break;
                }
                mutate(&mut rng, &corpus)
            }
        };
        current.seek(SeekFrom::Start(0))?;
        current.write_all(&input)?;
        current.set_len(input.len() as u64)?;
        counts.executions += 1;
        let answer = std::panic::catch_unwind(|| (target.run)(&input));
        match answer {
            Ok(behaviour) => {
                if seen.insert(behaviour) && kept_on_disk < MAX_CORPUS {
                    let name = format!("input-{:016x}", crate::fuzz_targets::behaviour(&input));
                    let path = folder.join(name);
                    if !path.exists() {
                        std::fs::write(&path, &input)?;
                        counts.kept += 1;
                        kept_on_disk += 1;
                    }
                    corpus.push(input);
                }
            }
            Err(_) => {
                counts.crashes += 1;
                let name = format!("crash-{:016x}", crate::fuzz_targets::behaviour(&input));
                std::fs::write(folder.join(name), &input)?;
            }
        }
        if counts.executions.is_multiple_of(2048) {
            println!(
                "counts {} {} {}",
                counts.executions, counts.crashes, counts.kept
            );
        }
    }
    println!(
        "counts {} {} {}",
        counts.executions, counts.crashes, counts.kept
    );
    Ok(())
}

const INTERESTING: [u8; 12] = [
    0, 1, 0x7f, 0x80, 0xff, b'\n', b'"', b'{', b'[', b'=', b':', b'\\',
];

/// One mutation of a corpus entry (or a splice of two).
fn mutate(rng: &mut fastrand::Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.usize(..corpus.len())].clone();
    for _ in 0..rng.usize(1..=8) {
        let length = bytes.len();
        match rng.u8(..9) {
            0 if length > 0 => {
                let at = rng.usize(..length);
                bytes[at] ^= 1 << rng.u8(..8);
            }
            1 if length > 0 => {
                let at = rng.usize(..length);
                bytes[at] = INTERESTING[rng.usize(..INTERESTING.len())];
            }
            2 if length > 0 => {
                let at = rng.usize(..length);
                bytes[at] = rng.u8(..);
            }
            3 if length > 0 => bytes.truncate(rng.usize(..length)),
            4 if length > 1 => {
                let start = rng.usize(..length);
                let end = rng.usize(start..=length.min(start + 64));
                bytes.drain(start..end);
            }
            5 if length > 0 && length < MAX_INPUT => {
                // A chunk repeated: long strings, deep nesting, many records.
                let start = rng.usize(..length);
                let end = rng.usize(start..=length.min(start + 32));
                let chunk = bytes[start..end].to_vec();
                let times = rng.usize(1..=64);
                let at = rng.usize(..=length);
                for _ in 0..times {
                    bytes.splice(at..at, chunk.iter().copied());
                }
            }
            6 => {
                let other = &corpus[rng.usize(..corpus.len())];
                if !other.is_empty() {
                    let start = rng.usize(..other.len());
                    let end = rng.usize(start..=other.len());
                    let at = rng.usize(..=bytes.len());
                    bytes.splice(at..at, other[start..end].iter().copied());
                }
            }
            7 if length >= 4 => {
                // A little-endian or big-endian number overwritten with an edge value.
                let at = rng.usize(..=length - 4);
                let value: u32 = [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 0x1000][rng.usize(..6)];
                let encoded = if rng.bool() {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                bytes[at..at + 4].copy_from_slice(&encoded);
            }
            _ => {
                let at = rng.usize(..=bytes.len());
                bytes.insert(at, rng.u8(..));
            }
        }
    }
    bytes.truncate(MAX_INPUT);
    bytes
}
