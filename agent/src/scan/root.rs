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

    /// Where a Windows path of the scanned system (`C:\\Users\\anna`, `\\ProgramData`)
    /// lives on this machine. Live on Windows it is the path itself; under an image the
    /// drive letter is dropped (the image is the system drive), `..` is dropped, and each
    /// component is looked up without regard to case, as Windows does.
    pub fn windows_path(&self, path: &str) -> PathBuf {
        if self.live && cfg!(windows) {
            return PathBuf::from(path);
        }
        let without_drive = match path.as_bytes() {
            [letter, b':', ..] if letter.is_ascii_alphabetic() => &path[2..],
            _ => path,
        };
        let mut joined = self.root.clone();
        for part in without_drive
            .split(['\\', '/'])
            .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        {
            let exact = joined.join(part);
            if exact.exists() {
                joined = exact;
                continue;
            }
            let folded = std::fs::read_dir(&joined).ok().and_then(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name())
                    .find(|name| {
                        name.to_str()
                            .is_some_and(|name| name.to_lowercase() == part.to_lowercase())
                    })
            });
            joined = match folded {
                Some(name) => joined.join(name),
                None => exact,
            };
        }
        joined
    }

    /// Whether the scanned system is Windows: the running system when built for Windows,
    /// or an image with a `SOFTWARE` hive or a `Users` folder and no `/etc`.
    pub fn is_windows(&self) -> bool {
        if self.live {
            return cfg!(windows);
        }
        self.windows_path("Windows\\System32\\config\\SOFTWARE")
            .is_file()
            || (self.windows_path("Users").is_dir() && !self.root.join("etc").is_dir())
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

    #[test]
    fn windows_paths_under_an_image_ignore_case_and_drive() {
        let folder = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(folder.path().join("Users/anna/AppData")).expect("mkdir");
        let root = ScanRoot::image(folder.path());
        assert_eq!(
            root.windows_path("C:\\users\\ANNA\\appdata\\Local"),
            folder.path().join("Users/anna/AppData/Local")
        );
        assert_eq!(
            root.windows_path("\\..\\..\\Users"),
            folder.path().join("Users")
        );
        assert!(root.is_windows());
        assert!(!ScanRoot::image("/nonexistent").is_windows());
    }
}
