//! The file system a scan reads: the running system (`/`) or a mounted image
//! (`--root DIR`). Every path a source reads goes through [`ScanRoot::path`], and every
//! path it reports goes through [`ScanRoot::display`], so evidence always names paths as
//! they are on the scanned PC.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ScanRoot {
    root: PathBuf,
    live: bool,
}

impl ScanRoot {
    /// The running system.
    pub fn live() -> ScanRoot {
        ScanRoot {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    /// A mounted image of another system.
    pub fn image(root: impl Into<PathBuf>) -> ScanRoot {
        ScanRoot {
            root: root.into(),
            live: false,
        }
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an absolute path of the scanned system lives on this machine. `..` and
    /// the root component are dropped, so nothing resolves outside the image.
    pub fn path(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let mut joined = self.root.clone();
        for component in absolute.as_ref().components() {
            if let Component::Normal(part) = component {
                joined.push(part);
            }
        }
        joined
    }

    /// How a path read under this root looks on the scanned system.
    pub fn display(&self, local: &Path) -> String {
        if self.live {
            return local.to_string_lossy().into_owned();
        }
        match local.strip_prefix(&self.root) {
            Ok(inside) => format!("/{}", inside.to_string_lossy()),
            Err(_) => local.to_string_lossy().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_stay_inside_the_image() {
        let root = ScanRoot::image("/mnt/pc");
        assert_eq!(
            root.path("/var/lib/dpkg/status"),
            PathBuf::from("/mnt/pc/var/lib/dpkg/status")
        );
        assert_eq!(
            root.path("/../../etc/shadow"),
            PathBuf::from("/mnt/pc/etc/shadow")
        );
        assert_eq!(
            root.display(Path::new("/mnt/pc/home/anna/x")),
            "/home/anna/x"
        );
        let live = ScanRoot::live();
        assert_eq!(live.path("/etc/passwd"), PathBuf::from("/etc/passwd"));
        assert_eq!(live.display(Path::new("/etc/passwd")), "/etc/passwd");
    }
}
