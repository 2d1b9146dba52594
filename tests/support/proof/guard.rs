//! Proof suite part: the agent's resource guard on a weak PC. The agent's scan of a
//! fixture PC with `Budget::guard_programs` programs runs twice: unconstrained (every
//! core, no quota, nothing else running), then on a weak PC profile: one core
//! (`taskset -c 0`) shared with a CPU hog (`yes`, a lesson's program at full tilt), in
//! a CPU control group with the quota of the shipped systemd unit (`CPUQuota=` read
//! from `packaging/linux/sverka-agent.service`). Measured for each: exit code and
//! wall time, CPU time and share ((utime + stime) / wall, from `/proc/<pid>/stat` read
//! when the process is a zombie, so it is final), and peak memory (`VmHWM` from
//! `/proc/<pid>/status`, sampled every few milliseconds). Targets: the scan finishes
//! and finds the planted Telegram; its CPU share stays within the quota (what the
//! quota allows in the periods the scan spanned); its peak memory stays under the
//! unit's `MemoryMax=`.

mod cgroup;

use anyhow::Context as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Budget, Figure, Part};
use crate::{FixtureRoot, agent_binary};
use cgroup::{CpuGroup, PERIOD};

const PART: Part = Part::Guard;
/// How often the scan's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The limits of the shipped unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitLimits {
    pub file: PathBuf,
    /// `CPUQuota=` as a share of one core (0.25 for 25%).
    pub cpu_quota: f64,
    /// `MemoryMax=` in bytes, when set.
    pub memory_max: Option<u64>,
}

impl UnitLimits {
    /// Reads the agent's unit file from `packaging/`.
    pub fn shipped() -> anyhow::Result<UnitLimits> {
        let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
        let file = find_unit(&packaging)?
            .with_context(|| format!("no sverka-agent*.service under {}", packaging.display()))?;
        let text = fs::read_to_string(&file)?;
        UnitLimits::parse(file, &text)
    }

    pub fn parse(file: PathBuf, text: &str) -> anyhow::Result<UnitLimits> {
        let setting = |key: &str| {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .next_back()
                .map(str::trim)
        };
        let quota =
            setting("CPUQuota").with_context(|| format!("{} sets no CPUQuota=", file.display()))?;
        let percent: f64 = quota
            .strip_suffix('%')
            .and_then(|number| number.trim().parse().ok())
            .with_context(|| {
                format!("CPUQuota={quota} in {} is not a percentage", file.display())
            })?;
        let memory_max = setting("MemoryMax").and_then(parse_bytes);
        Ok(UnitLimits {
            file,
            cpu_quota: percent / 100.0,
            memory_max,
        })
    }
}

fn find_unit(folder: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut entries: Vec<PathBuf> = fs::read_dir(folder)
        .with_context(|| format!("read {}", folder.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            if let Some(found) = find_unit(&path)? {
                return Ok(Some(found));
            }
        } else if name.starts_with("sverka-agent") && name.ends_with(".service") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// systemd's sizes: `256M`, `1G`, `1048576`; `infinity` is no limit.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|character: char| !character.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// One measured scan.
#[derive(Debug, Clone)]
struct Measured {
    code: Option<i32>,
    wall: Duration,
    cpu: Duration,
    peak_memory_bytes: u64,
    found_telegram: bool,
}

impl Measured {
    fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Finished: exit 0 (nothing banned) or 1 (banned found), never 2 or a signal.
    fn finished(&self) -> bool {
        matches!(self.code, Some(0 | 1))
    }

    fn summary(&self) -> String {
        format!(
            "exit {}, {:.2} s wall, {:.2} s CPU ({:.0}% of a core), peak {:.1} MiB",
            self.code
                .map_or("by a signal".to_string(), |code| code.to_string()),
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.share() * 100.0,
            mebibytes(self.peak_memory_bytes)
        )
    }
}

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let limits = UnitLimits::shipped()?;
    let taskset = find_tool("taskset", "util-linux")?;
    let yes = find_tool("yes", "coreutils")?;
    let ticks = clock_ticks_per_second();
    let pc = weak_pc(budget.guard_programs);
    let output = budget.artifacts.join("guard");
    fs::create_dir_all(&output)?;
    let scan: Vec<std::ffi::OsString> = vec![
        agent_binary().into(),
        "scan".into(),
        "--root".into(),
        pc.path().into(),
        "--format".into(),
        "json".into(),
    ];
    // A first scan warms the page cache, so both measured scans read the same way.
    let _ = Command::new(&scan[0])
        .args(&scan[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();

    let mut command = Command::new(&scan[0]);
    command.args(&scan[1..]);
    let unconstrained = measure(command, &output.join("unconstrained.json"), ticks)?;

    let group = CpuGroup::create(limits.cpu_quota)?;
    let mut hog = Hog::start(&taskset, &yes)?;
    // The shell moves itself into the group, then becomes the agent on core 0.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(group.procs())
        .arg(&taskset)
        .args(["-c", "0"])
        .args(&scan);
    let weak = measure(command, &output.join("weak.json"), ticks);
    let hog_alive = hog.alive();
    drop(hog);
    let throttled = group.throttled_periods();
    let version = group.version;
    drop(group);
    let weak = weak?;
    anyhow::ensure!(hog_alive, "the CPU hog ended before the scan did");

    // What the quota allows over the scan's wall time: the share of every period it
    // spanned, counting the partial periods at both ends whole.
    let periods = (weak.wall.as_secs_f64() / PERIOD.as_secs_f64()).ceil() + 1.0;
    let allowed = PERIOD.mul_f64(limits.cpu_quota * periods);
    let unit_name = limits
        .file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let quota_percent = limits.cpu_quota * 100.0;
    eprintln!("guard: unconstrained: {}", unconstrained.summary());
    eprintln!(
        "guard: weak PC (1 core + hog, CPUQuota={quota_percent:.0}% via cgroup {version:?}): {}",
        weak.summary()
    );

    let mut figures = vec![
        Figure::count(PART, "programs on the fixture PC", budget.guard_programs),
        Figure::checked(
            PART,
            "unconstrained scan finishes and finds the planted Telegram",
            unconstrained.summary(),
            "exit 1, Telegram found",
            unconstrained.finished() && unconstrained.found_telegram,
        ),
        Figure::checked(
            PART,
            format!(
                "weak PC scan (1 core beside a CPU hog, {unit_name} CPUQuota={quota_percent:.0}%) finishes and finds the planted Telegram"
            ),
            weak.summary(),
            "exit 1, Telegram found",
            weak.finished() && weak.found_telegram,
        ),
        Figure::checked(
            PART,
            "weak PC scan: CPU share",
            format!(
                "{:.1}% of a core ({:.2} s CPU in {:.2} s)",
                weak.share() * 100.0,
                weak.cpu.as_secs_f64(),
                weak.wall.as_secs_f64()
            ),
            format!(
                "≤ {quota_percent:.0}% of the 100 ms periods it ran in (≤ {:.2} s CPU)",
                allowed.as_secs_f64()
            ),
            weak.cpu <= allowed,
        ),
        Figure::at_least(
            PART,
            "weak PC scan: 100 ms periods held back by the quota",
            throttled,
            1,
        ),
        Figure::count(
            PART,
            "weak PC scan: wall time against unconstrained",
            format!(
                "{:.2} s against {:.2} s ({:.1}×)",
                weak.wall.as_secs_f64(),
                unconstrained.wall.as_secs_f64(),
                weak.wall.as_secs_f64() / unconstrained.wall.as_secs_f64().max(f64::EPSILON)
            ),
        ),
    ];
    let peak = weak.peak_memory_bytes.max(unconstrained.peak_memory_bytes);
    let memory = format!(
        "{:.1} MiB (unconstrained {:.1} MiB)",
        mebibytes(weak.peak_memory_bytes),
        mebibytes(unconstrained.peak_memory_bytes)
    );
    figures.push(match limits.memory_max {
        Some(max) => Figure::checked(
            PART,
            "weak PC scan: peak memory (VmHWM)",
            memory,
            format!("≤ {:.0} MiB (MemoryMax)", mebibytes(max)),
            peak > 0 && peak <= max,
        ),
        None => Figure::checked(
            PART,
            "weak PC scan: peak memory (VmHWM)",
            memory,
            "measured",
            peak > 0,
        ),
    });
    Ok(figures)
}

/// Runs `command` to its end with stdout to `report`, sampling its peak memory, and
/// reads its final CPU time while it is a zombie (not yet reaped).
fn measure(mut command: Command, report: &Path, ticks: f64) -> anyhow::Result<Measured> {
    let stdout = fs::File::create(report)?;
    let started = Instant::now();
    let mut child = command
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .context("start the scan")?;
    let stat_path = format!("/proc/{}/stat", child.id());
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib: u64 = 0;
    let cpu_ticks = loop {
        let stat = fs::read_to_string(&stat_path).context("read the scan's /proc stat")?;
        // Fields after the command name in parentheses: state is the first, utime and
        // stime the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        if fields.first() == Some(&"Z") {
            let time = |index: usize| {
                fields
                    .get(index)
                    .and_then(|value| value.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            break time(11) + time(12);
        }
        if let Ok(status) = fs::read_to_string(&status_path)
            && let Some(kib) = status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    let wall = started.elapsed();
    let status = child.wait()?;
    let text = fs::read_to_string(report).unwrap_or_default();
    let found_telegram = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|report| crate::finding(&report, "telegram").is_some());
    Ok(Measured {
        code: status.code(),
        wall,
        cpu: Duration::from_secs_f64(cpu_ticks as f64 / ticks),
        peak_memory_bytes: peak_kib * 1024,
        found_telegram,
    })
}

/// A CPU hog on core 0, ended on drop.
#[derive(Debug)]
struct Hog(Child);

impl Hog {
    fn start(taskset: &Path, yes: &Path) -> anyhow::Result<Hog> {
        let child = Command::new(taskset)
            .args(["-c", "0"])
            .arg(yes)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the CPU hog")?;
        Ok(Hog(child))
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_tool(tool: &str, debian_package: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|folder| folder.join(tool))
                .find(|candidate| candidate.is_file())
        })
        .with_context(|| {
            format!("`{tool}` is missing: install the Debian package `{debian_package}`")
        })
}

/// `getconf CLK_TCK`: the unit of utime and stime in `/proc/<pid>/stat`.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A PC with `programs` programs: half dpkg packages, a quarter program files under
/// `/opt` (walked for portable copies), a quarter launchers; and one portable
/// Telegram the scan must find.
fn weak_pc(programs: usize) -> FixtureRoot {
    let root = FixtureRoot::new();
    root.hostname("weak-pc").user("pupil", 1000);
    let packages: Vec<(String, String)> = (0..programs / 2)
        .map(|index| (format!("school-app-{index}"), format!("1.{index}")))
        .collect();
    let stanzas: Vec<(&str, &str, &str)> = packages
        .iter()
        .map(|(name, version)| (name.as_str(), version.as_str(), "install ok installed"))
        .collect();
    root.dpkg(&stanzas);
    for index in 0..programs / 4 {
        root.program(&format!(
            "/opt/vendor-{}/tool-{index}/tool-{index}",
            index / 100
        ));
    }
    for index in 0..programs - programs / 2 - programs / 4 {
        root.launcher(
            &format!("/usr/share/applications/lesson-{index}.desktop"),
            &format!("Lesson {index}"),
            &format!("/opt/vendor-0/tool-{index}/tool-{index} %U"),
            None,
        );
    }
    root.program("/opt/Telegram/Telegram");
    root
}
