//! The agents under faults: each one's PC image, state folder (a small disk for the
//! disk-full ones) and log, enrolled with the collector (some through the cutting
//! proxy), started, killed and drained.

use anyhow::Context as _;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use tempfile::TempDir;

use super::disk::SmallDisk;
use super::lifecycle::Lifecycle;
use super::proxy::CuttingProxy;
use super::schedule::Plan;
use super::{BASH, MAX, SMALL_DISK_BYTES, TELEGRAM, lock, unix_now};
use crate::real_collector::Collector;
use crate::{FixtureRoot, agent_binary, run_agent};

/// One agent: its PC image, state folder, log, and the running `sverka-agent run`.
#[derive(Debug)]
pub struct Agent {
    pub host: String,
    pub lifecycle: Lifecycle,
    pub disk_full: bool,
    state: PathBuf,
    pub log: PathBuf,
    root: FixtureRoot,
    child: Mutex<Option<Child>>,
    /// When the banned application was removed or installed (Unix seconds).
    pub changed_at: Mutex<Option<i64>>,
    /// Dropped before `_state_folder` (fields drop in order): unmounted first.
    pub disk: Option<SmallDisk>,
    _state_folder: TempDir,
}

impl Agent {
    fn packages(&self, banned: bool) -> Vec<(&'static str, &'static str, &'static str)> {
        if banned {
            vec![TELEGRAM, MAX, BASH]
        } else {
            vec![MAX, BASH]
        }
    }

    /// Rewrites the image's dpkg status atomically (a scan never reads half of it).
    pub fn set_banned_installed(&self, installed: bool) -> anyhow::Result<()> {
        let staging = FixtureRoot::new();
        staging.dpkg(&self.packages(installed));
        let status = self.root.local("/var/lib/dpkg/status");
        let next = status.with_extension("next");
        fs::copy(staging.local("/var/lib/dpkg/status"), &next)?;
        fs::rename(&next, &status)?;
        *lock(&self.changed_at) = Some(unix_now());
        Ok(())
    }

    fn command(&self, arguments: &[String]) -> anyhow::Result<Command> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut command = Command::new(agent_binary());
        command
            .args(arguments)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--root")
            .arg(self.root.path())
            .env("SVERKA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Ok(command)
    }

    /// Starts the reporting service (`run` on a schedule).
    pub fn start(&self, plan: &Plan) -> anyhow::Result<()> {
        let interval = format!("{}ms", plan.interval.as_millis());
        let arguments: Vec<String> = [
            "run",
            "--interval",
            interval.as_str(),
            "--max-delay",
            interval.as_str(),
            "--retry-base",
            "200ms",
            "--retry-cap",
            "2s",
        ]
        .map(String::from)
        .to_vec();
        let child = self
            .command(&arguments)?
            .spawn()
            .context("start the agent")?;
        *lock(&self.child) = Some(child);
        Ok(())
    }

    /// SIGKILL, no matter what it is doing.
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.state.join("spool")
    }

    pub fn log_length(&self) -> u64 {
        fs::metadata(&self.log)
            .map(|metadata| metadata.len())
            .unwrap_or(0)
    }

    /// The log from `offset` on.
    pub fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes each PC image and state folder, and enrolls the agent with the collector;
/// the proxied ones then report through the proxy.
pub fn enroll_agents(
    plan: &Plan,
    collector: &Collector,
    secret: &str,
    proxy: &CuttingProxy,
    logs: &Path,
) -> anyhow::Result<Vec<Agent>> {
    let mut agents = Vec::new();
    for index in 0..plan.agents {
        let host = format!("fault-pc-{index:02}");
        let lifecycle = Lifecycle::of_agent(index);
        let root = FixtureRoot::new();
        root.machine_id(&format!("{host}-{index:025}"))
            .hostname(&host)
            .user("teacher", 1000);
        let state_folder = tempfile::tempdir()?;
        let disk_full = index >= plan.agents - plan.disk_full_agents;
        let disk = if disk_full {
            Some(SmallDisk::mount(state_folder.path(), SMALL_DISK_BYTES)?)
        } else {
            None
        };
        let agent = Agent {
            host,
            lifecycle,
            disk_full,
            state: state_folder.path().to_path_buf(),
            log: logs.join(format!("agent-{index:02}.log")),
            root,
            child: Mutex::new(None),
            changed_at: Mutex::new(None),
            disk,
            _state_folder: state_folder,
        };
        agent
            .root
            .dpkg(&agent.packages(lifecycle.installed_at_start()));
        let enrolled = run_agent(&[
            "enroll",
            "--server",
            &collector.url(),
            "--allow-http",
            "--secret",
            secret,
            "--state-dir",
            &agent.state.display().to_string(),
            "--root",
            &agent.root.path().display().to_string(),
        ]);
        anyhow::ensure!(
            enrolled.code == 0,
            "enrolling {}: {}",
            agent.host,
            enrolled.stderr
        );
        if index < plan.proxied_agents {
            point_at(&agent.state, &proxy.url())?;
        }
        agents.push(agent);
    }
    Ok(agents)
}

/// Points an enrolled agent's state at another address of the same collector.
fn point_at(state: &Path, url: &str) -> anyhow::Result<()> {
    let path = state.join("enrollment.json");
    let mut enrollment: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path)?)?;
    enrollment["server"] = url.into();
    fs::write(&path, enrollment.to_string())?;
    Ok(())
}

/// `run --once` for every agent at once: each delivers its spool and one last report.
/// Returns the agents whose drain did not end with everything acknowledged.
pub fn drain(agents: &[Agent]) -> anyhow::Result<Vec<String>> {
    let arguments: Vec<String> = [
        "run",
        "--once",
        "--attempts",
        "8",
        "--retry-base",
        "200ms",
        "--retry-cap",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    let mut children = Vec::new();
    for agent in agents {
        children.push((agent, agent.command(&arguments)?.spawn()?));
    }
    let mut failed = Vec::new();
    for (agent, mut child) in children {
        let status = child.wait()?;
        if !status.success() {
            failed.push(format!(
                "{} ({status}; see {})",
                agent.host,
                agent.log.display()
            ));
        }
    }
    Ok(failed)
}
