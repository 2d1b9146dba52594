//! A small disk for an agent's state folder (its spool): a size-limited tmpfs mounted
//! over the folder, filled to the last byte by a filler file and freed again. Mounting
//! needs root (`mount -t tmpfs`); when it is refused the faults part fails and says so.

use anyhow::Context as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const FILLER: &str = "filler";

#[derive(Debug)]
pub struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` over the (empty) folder `at`.
    pub fn mount(at: &Path, bytes: u64) -> anyhow::Result<SmallDisk> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("sverka-proof-disk")
            .arg(at)
            .output()
            .context("running `mount` for the disk-full agent's small disk")?;
        anyhow::ensure!(
            output.status.success(),
            "mounting a {bytes}-byte tmpfs at {} for the disk-full agent failed (the faults part needs root for `mount -t tmpfs`): {}",
            at.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(SmallDisk {
            mount_point: at.to_path_buf(),
        })
    }

    /// Writes a filler file until the disk is full; returns its size.
    pub fn fill(&self) -> io::Result<u64> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.mount_point.join(FILLER))?;
        let mut written = 0;
        for chunk in [64 * 1024, 4096, 512, 1] {
            written += write_until_full(&mut file, chunk)?;
        }
        Ok(written)
    }

    /// Removes the filler: the agent can write again.
    pub fn free(&self) -> io::Result<()> {
        match fs::remove_file(self.mount_point.join(FILLER)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// Appends `chunk`-sized blocks until the disk says it is full.
fn write_until_full(file: &mut File, chunk: usize) -> io::Result<u64> {
    let block = vec![0u8; chunk];
    let mut written = 0;
    loop {
        match file.write(&block) {
            Ok(0) => return Ok(written),
            Ok(count) => written += count as u64,
            Err(error) if error.raw_os_error() == Some(28) => return Ok(written),
            Err(error) => return Err(error),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount_point)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Something still holds a file open there: detach it now, it goes when
            // that ends.
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(&self.mount_point)
                .status();
        }
    }
}
