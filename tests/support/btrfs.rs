//! A btrfs file system for tests of what the agent does on one: a sparse image file
//! formatted by `mkfs.btrfs` and loop-mounted over a fresh folder, which a
//! [`FixtureRoot`](crate::FixtureRoot) then fills. Needs root (`mount -o loop`), the
//! kernel's btrfs and btrfs-progs (the suite installs them); when any is missing the
//! test fails and says which.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The image's size: sparse, so only what is written takes disk space (btrfs needs
/// more than 109 MiB).
const IMAGE_BYTES: u64 = 256 * 1024 * 1024;

/// A mounted btrfs image; unmounted (and its image deleted) when dropped.
#[derive(Debug)]
pub struct BtrfsMount {
    mount_point: PathBuf,
    _image: TempDir,
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run it ({error})"));
    assert!(
        output.status.success(),
        "{what} failed (needs root, the kernel's btrfs and btrfs-progs): {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

impl BtrfsMount {
    /// Formats an image and mounts it over the empty folder `at`.
    pub fn over(at: &Path) -> BtrfsMount {
        let image_dir = tempfile::tempdir().expect("tempdir");
        let image = image_dir.path().join("btrfs.img");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(IMAGE_BYTES))
            .expect("the image file");
        run(
            Command::new("mkfs.btrfs").arg("-q").arg(&image),
            "mkfs.btrfs",
        );
        run(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(at),
            "mount -o loop (a btrfs image)",
        );
        BtrfsMount {
            mount_point: at.to_path_buf(),
            _image: image_dir,
        }
    }

    /// Makes `path` (a path below the mount point) a subvolume of its own.
    pub fn subvolume(&self, path: &Path) {
        assert!(path.starts_with(&self.mount_point), "{}", path.display());
        run(
            Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(path),
            "btrfs subvolume create",
        );
    }
}

impl Drop for BtrfsMount {
    fn drop(&mut self) {
        // Lazily, in case a process of a failed test still holds a file there.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        let _ = std::fs::remove_dir(&self.mount_point);
    }
}
