//! A CPU control group of its own with a quota, as systemd makes one for `CPUQuota=`:
//! cgroup v2 (`cpu.max`) when `/sys/fs/cgroup` is the unified hierarchy, cgroup v1
//! (`cpu.cfs_period_us`, `cpu.cfs_quota_us`) otherwise. Removed on drop.

use anyhow::Context as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// systemd's period for `CPUQuota=`.
pub const PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug)]
pub struct CpuGroup {
    path: PathBuf,
    pub version: Version,
}

impl CpuGroup {
    /// Creates the group with `share` of one core (0.25 for `CPUQuota=25%`).
    pub fn create(share: f64) -> anyhow::Result<CpuGroup> {
        let period_us = PERIOD.as_micros() as u64;
        let quota_us = ((period_us as f64) * share).round() as u64;
        let name = format!("sverka-proof-{}", std::process::id());
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            let controllers = fs::read_to_string(root.join("cgroup.controllers"))?;
            anyhow::ensure!(
                controllers.split_whitespace().any(|name| name == "cpu"),
                "cgroup v2 without the cpu controller ({controllers:?}): the unit's CPUQuota cannot be applied"
            );
            // Children of the root may use the cpu controller once it is enabled there.
            fs::write(root.join("cgroup.subtree_control"), "+cpu")
                .context("enabling the cpu controller in /sys/fs/cgroup/cgroup.subtree_control")?;
            let path = root.join(&name);
            fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
            let group = CpuGroup {
                path,
                version: Version::V2,
            };
            group.write("cpu.max", &format!("{quota_us} {period_us}"))?;
            return Ok(group);
        }
        let hierarchy = v1_cpu_hierarchy()?;
        let path = hierarchy.join(&name);
        fs::create_dir(&path).with_context(|| {
            format!(
                "creating {} (the guard part needs root and a writable cpu cgroup)",
                path.display()
            )
        })?;
        let group = CpuGroup {
            path,
            version: Version::V1,
        };
        group.write("cpu.cfs_period_us", &period_us.to_string())?;
        group.write("cpu.cfs_quota_us", &quota_us.to_string())?;
        Ok(group)
    }

    /// The file a process's id is written to, to move it in.
    pub fn procs(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Periods in which the group was held back by its quota.
    pub fn throttled_periods(&self) -> u64 {
        fs::read_to_string(self.path.join("cpu.stat"))
            .ok()
            .and_then(|stat| {
                stat.lines().find_map(|line| {
                    line.strip_prefix("nr_throttled ")
                        .and_then(|count| count.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self.path.join(file);
        fs::write(&path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // The processes in it have ended; the kernel may take a moment to let go.
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("guard: could not remove {}", self.path.display());
    }
}

/// The cgroup v1 cpu hierarchy, at this process's own group in it.
fn v1_cpu_hierarchy() -> anyhow::Result<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mount = ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
        .iter()
        .map(|name| root.join(name))
        .find(|path| path.join("cpu.cfs_quota_us").exists())
        .context("no cgroup v1 cpu hierarchy under /sys/fs/cgroup (nor cgroup v2): the unit's CPUQuota cannot be applied")?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let _id = fields.next()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            controllers
                .split(',')
                .any(|controller| controller == "cpu")
                .then(|| path.trim_start_matches('/').to_string())
        })
        .unwrap_or_default();
    Ok(mount.join(own))
}
