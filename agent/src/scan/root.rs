//! The file system a scan reads: the running system (`/`) or a mounted image
//! (`--root DIR`). Every path a source reads goes through [`ScanRoot::path`], and every
//! path it reports goes through [`ScanRoot::display`], so evidence always names paths as
//! they are on the scanned PC.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ScanRoot {
    root: PathBuf,
    live: bool,
    /// Set when this is a 32-bit agent on 64-bit Windows (live only).
    wow64: Option<Wow64Folders>,
}

/// The real folders of 64-bit Windows as a 32-bit program (under WOW64) must name them:
/// Windows redirects its `System32` to the 32-bit `SysWOW64` and names `Program Files
/// (x86)` in `%ProgramFiles%`; `Sysnative` and `%ProgramW6432%` reach the real ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wow64Folders {
    /// `%SystemRoot%`, `C:\Windows`.
    pub windows: String,
    /// `%ProgramW6432%`, the 64-bit `C:\Program Files`.
    pub program_files: String,
}

impl Wow64Folders {
    /// For this process: `Some` only in a 32-bit build that Windows runs under WOW64
    /// (which sets `PROCESSOR_ARCHITEW6432` for such programs).
    pub fn of_this_process() -> Option<Wow64Folders> {
        if !(cfg!(windows) && cfg!(target_pointer_width = "32")) {
            return None;
        }
        Self::from_environment(|name| std::env::var(name).ok())
    }

    /// From a process's environment: `Some` when it names a 64-bit machine beneath.
    pub fn from_environment(variable: impl Fn(&str) -> Option<String>) -> Option<Wow64Folders> {
        variable("PROCESSOR_ARCHITEW6432").filter(|value| !value.is_empty())?;
        let folder = |name: &str, default: &str| {
            variable(name)
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Some(Wow64Folders {
            windows: folder("SystemRoot", "C:\\Windows"),
            program_files: folder("ProgramW6432", "C:\\Program Files"),
        })
    }

    /// The path a 32-bit program opens to reach `path` of the 64-bit system:
    /// `C:\Windows\System32\...` as `C:\Windows\Sysnative\...`, `C:\Program Files\...`
    /// below `%ProgramW6432%`. Other paths, `Program Files (x86)` among them, stay.
    pub fn native_path(&self, path: &str) -> String {
        let system32 = format!("{}\\System32", self.windows.trim_end_matches('\\'));
        if let Some(rest) = strip_folder(path, &system32) {
            return format!("{}\\Sysnative{rest}", self.windows.trim_end_matches('\\'));
        }
        if let Some(rest) = strip_folder(path, "C:\\Program Files") {
            return format!("{}{rest}", self.program_files.trim_end_matches('\\'));
        }
        path.to_string()
    }
}

/// What follows `folder` in `path` (from its `\` on), when `path` is that folder or
/// inside it; compared without regard to case, as Windows does.
fn strip_folder<'a>(path: &'a str, folder: &str) -> Option<&'a str> {
    let head = path.get(..folder.len())?;
    let rest = path.get(folder.len()..)?;
    (head.eq_ignore_ascii_case(folder) && (rest.is_empty() || rest.starts_with('\\')))
        .then_some(rest)
}

impl ScanRoot {
    /// The running system.
    pub fn live() -> ScanRoot {
        ScanRoot {
            root: PathBuf::from("/"),
            live: true,
            wow64: Wow64Folders::of_this_process(),
        }
    }

    /// A mounted image of another system.
    pub fn image(root: impl Into<PathBuf>) -> ScanRoot {
        ScanRoot {
            root: root.into(),
            live: false,
            wow64: None,
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
    /// lives on this machine. Live on Windows it is the path itself (for a 32-bit agent
    /// on 64-bit Windows, the path that reaches the 64-bit folder); under an image the
    /// drive letter is dropped (the image is the system drive), `..` is dropped, and each
    /// component is looked up without regard to case, as Windows does.
    pub fn windows_path(&self, path: &str) -> PathBuf {
        if self.live && cfg!(windows) {
            return match &self.wow64 {
                Some(folders) => PathBuf::from(folders.native_path(path)),
                None => PathBuf::from(path),
            };
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

    #[test]
    fn a_32_bit_agent_on_64_bit_windows_names_the_real_system_folders() {
        let environment = |name: &str| match name {
            "PROCESSOR_ARCHITEW6432" => Some("AMD64".to_string()),
            "SystemRoot" => Some("C:\\WINDOWS".to_string()),
            "ProgramW6432" => Some("D:\\Program Files".to_string()),
            _ => None,
        };
        let folders = Wow64Folders::from_environment(environment).expect("under WOW64");
        assert_eq!(
            folders.native_path("C:\\Windows\\system32\\notepad.exe"),
            "C:\\WINDOWS\\Sysnative\\notepad.exe"
        );
        assert_eq!(
            folders.native_path("C:\\Program Files\\Viber\\Viber.exe"),
            "D:\\Program Files\\Viber\\Viber.exe"
        );
        assert_eq!(
            folders.native_path("C:\\Program Files"),
            "D:\\Program Files"
        );
        for unchanged in [
            "C:\\Program Files (x86)\\Tencent",
            "C:\\Windows\\System32x\\a.exe",
            "C:\\Users\\anna",
            "C:\\Prog",
        ] {
            assert_eq!(folders.native_path(unchanged), unchanged);
        }
        // A 32-bit Windows, or a 64-bit agent: nothing to map.
        assert_eq!(Wow64Folders::from_environment(|_| None), None);
        let defaults = Wow64Folders::from_environment(|name| {
            (name == "PROCESSOR_ARCHITEW6432").then(|| "AMD64".into())
        })
        .expect("under WOW64");
        assert_eq!(defaults.windows, "C:\\Windows");
        assert_eq!(defaults.program_files, "C:\\Program Files");
    }
}
