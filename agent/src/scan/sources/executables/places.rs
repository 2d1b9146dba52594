//! Where the executable inventory walks, and what it leaves to others.
//!
//! - Windows: every fixed drive (live; under `--root` the image, which is the system
//!   drive), without `Windows`, the recycle bin, `System Volume Information` and the
//!   folders the portable-copy walk already covers (`Program Files`, `Program Files
//!   (x86)`, `ProgramData`, each profile's `AppData\Roaming`, `AppData\Local`,
//!   `Downloads`, `Desktop`: their `.exe` files have their version resources read there).
//! - Linux: every mount of a real local file system (live; not pseudo, network or
//!   removable ones), or the whole image under `--root`, without the system's own
//!   folders (`/usr`, `/bin`, `/lib*`, `/etc`, `/boot`, `/var/lib`, ...: packages are
//!   the package sources' business) and the folders the portable-copy walk covers (every
//!   home, `/opt`, `/usr/local`); and every Wine prefix's `drive_c` outside the folders
//!   the Wine source walks (so `C:\Tools\tg.exe` in a prefix is found).
//! - A Windows scan under Wine skips the drive Wine maps to the Linux root (`Z:`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sverka_shared::SourceKind;

use super::journal::ChangeJournal;
#[cfg(windows)]
use super::journal::JournalDrive;
use crate::scan::fsread::read_bounded;
use crate::scan::root::ScanRoot;
use crate::scan::sources::{ScanContext, SourceOutput, files, wine};

const MAX_MOUNTS_BYTES: u64 = 4 * 1024 * 1024;

/// Folders of a Linux system the inventory never enters (paths of the scanned system).
pub const LINUX_SYSTEM_FOLDERS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/var/lib",
    "/var/cache",
    "/var/log",
    "/snap",
    "/lost+found",
];
/// Folders at the top of every Windows drive the inventory never enters.
pub const WINDOWS_SYSTEM_FOLDERS: &[&str] = &[
    "Windows",
    "$Recycle.Bin",
    "System Volume Information",
    "$WinREAgent",
    "Recovery",
    "Config.Msi",
    "Windows.old",
];
/// File systems of real local disks; every other one (proc, tmpfs, overlay, nfs, cifs,
/// sshfs, fuse...) is not walked on a live Linux system.
pub const LOCAL_FILE_SYSTEMS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "zfs", "bcachefs", "nilfs2",
    "ntfs", "ntfs3", "fuseblk", "vfat", "exfat", "hfsplus",
];

/// One walk of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Where it starts, on this machine.
    pub start: PathBuf,
    /// How errors name it.
    pub shown: String,
    /// The Linux user whose Wine prefix it is.
    pub user: Option<String>,
    /// Whether its file system moves a folder's modification time when an entry is
    /// added, removed or renamed, so a folder's cached listing can be trusted while
    /// the time is unchanged: every Linux file system, and NTFS and ReFS on Windows
    /// (Windows does not do it on FAT and exFAT).
    pub folder_times_kept: bool,
    /// Windows: the serial number of the drive it walks, as the change journal names
    /// the drives it watched.
    pub drive_serial: Option<u64>,
}

/// Folders never entered, compared without regard to case on Windows systems.
#[derive(Debug, Default)]
pub struct Pruned {
    folders: HashSet<String>,
    ignore_case: bool,
}

/// `text` without the separators it ends with (a root stays `/`).
fn without_trailing_separators(text: &str) -> &str {
    match text.trim_end_matches(['/', '\\']) {
        "" => "/",
        trimmed => trimmed,
    }
}

impl Pruned {
    fn new(ignore_case: bool) -> Pruned {
        Pruned {
            folders: HashSet::new(),
            ignore_case,
        }
    }

    fn key(&self, local: &Path) -> String {
        let text = local.to_string_lossy();
        let trimmed = without_trailing_separators(&text);
        if self.ignore_case {
            trimmed.to_lowercase()
        } else {
            trimmed.to_string()
        }
    }

    pub fn add(&mut self, local: &Path) {
        let key = self.key(local);
        self.folders.insert(key);
    }

    pub fn contains(&self, local: &Path) -> bool {
        if self.folders.is_empty() {
            return false;
        }
        if self.ignore_case {
            return self.folders.contains(&self.key(local));
        }
        // As `key` spells it, without a copy.
        self.folders
            .contains(without_trailing_separators(&local.to_string_lossy()))
    }

    /// Whether a folder left out lies below `local` (so its subfolders must be
    /// looked up one by one).
    pub fn any_below(&self, local: &Path) -> bool {
        let folder = self.key(local);
        self.folders
            .iter()
            .any(|pruned| pruned != &folder && super::cache::is_within(pruned, &folder))
    }

    /// The folders, in order (what a plan's identity is made of).
    pub fn sorted(&self) -> Vec<&str> {
        let mut folders: Vec<&str> = self.folders.iter().map(String::as_str).collect();
        folders.sort_unstable();
        folders
    }
}

/// The mount points of a `/proc/self/mounts` text (its second field, with the kernel's
/// octal escapes of space, tab, newline and backslash undone).
pub fn mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|field| {
            PathBuf::from(
                field
                    .replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

/// A mounted volume, as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub mount_point: PathBuf,
    pub file_system: String,
    pub removable: bool,
    /// Windows: the drive's serial number, when it gave one.
    pub serial: Option<u64>,
}

impl Volume {
    /// A fixed drive as the change journal passes it on.
    #[cfg(windows)]
    fn of_journal(drive: &JournalDrive) -> Volume {
        Volume {
            mount_point: PathBuf::from(&drive.root),
            file_system: drive.file_system.clone(),
            removable: false,
            serial: Some(drive.serial),
        }
    }

    /// The journal's record of a fixed drive, when it has a serial number.
    #[cfg(windows)]
    pub fn to_journal(&self) -> Option<JournalDrive> {
        Some(JournalDrive {
            root: self.mount_point.to_string_lossy().into_owned(),
            serial: self.serial?,
            file_system: self.file_system.clone(),
        })
    }
}

/// The volumes of the running system worth walking: real local file systems, not
/// removable, each mount point once.
pub fn local_fixed_volumes(volumes: &[Volume], windows: bool) -> Vec<Volume> {
    let mut seen = HashSet::new();
    volumes
        .iter()
        .filter(|volume| !volume.removable)
        .filter(|volume| {
            windows
                || LOCAL_FILE_SYSTEMS
                    .iter()
                    .any(|known| volume.file_system.eq_ignore_ascii_case(known))
        })
        .filter(|volume| seen.insert(volume.mount_point.clone()))
        .cloned()
        .collect()
}

/// Whether a volume's file system moves a folder's modification time when an entry is
/// added, removed or renamed: every one Linux mounts; on Windows NTFS and ReFS, not FAT
/// or exFAT.
pub fn keeps_folder_times(file_system: &str, windows: bool) -> bool {
    !windows
        || ["ntfs", "refs"]
            .iter()
            .any(|kept| file_system.eq_ignore_ascii_case(kept))
}

/// The running system's volumes: on Linux as sysinfo lists them (from `/proc/mounts`
/// and the block devices' `removable` flag).
#[cfg(not(windows))]
fn live_volumes(output: &mut SourceOutput) -> Vec<Volume> {
    match sysinfo::Disks::new_with_refreshed_list() {
        Ok(disks) => disks
            .iter()
            .map(|disk| Volume {
                mount_point: disk.mount_point().to_path_buf(),
                file_system: disk.file_system().to_string_lossy().into_owned(),
                removable: disk.is_removable(),
                serial: None,
            })
            .collect(),
        Err(error) => {
            output.error(
                SourceKind::File,
                None,
                format!("executable inventory: cannot list the volumes: {error}"),
            );
            Vec::new()
        }
    }
}

/// The running system's volumes: on Windows its drive letters (sysinfo lists volumes
/// by their GUID names, which Wine does not give for drives mapped to folders).
#[cfg(windows)]
fn live_volumes(_output: &mut SourceOutput) -> Vec<Volume> {
    super::win32::volumes_of(super::win32::drive_letters())
}

/// The running Windows system's fixed drives among the drive `letters` in use.
#[cfg(windows)]
fn fixed_drives_among(letters: u32) -> Vec<Volume> {
    local_fixed_volumes(&super::win32::volumes_of(letters), true)
}

/// The running Windows system's fixed drives, with the drive letters in use, as the
/// service's change watcher records them when it starts.
#[cfg(windows)]
pub fn live_fixed_drives() -> (u32, Vec<Volume>) {
    let letters = super::win32::drive_letters();
    (letters, fixed_drives_among(letters))
}

/// The running system's fixed drives the walks start from: those the service's
/// change journal names while they stand ([`ChangeJournal::current_drives`]: the same
/// drive letters in use, each still watched), else as the system lists them now; and
/// whether they came from the journal.
#[cfg(windows)]
fn fixed_drives(
    journal: Option<&ChangeJournal>,
    now_s: i64,
    _output: &mut SourceOutput,
) -> (Vec<Volume>, bool) {
    let letters = super::win32::drive_letters();
    match journal.and_then(|journal| journal.current_drives(letters, now_s)) {
        Some(drives) => (drives.iter().map(Volume::of_journal).collect(), true),
        None => (fixed_drives_among(letters), false),
    }
}

/// A live scan with a Windows plan runs on Windows; elsewhere this is the mounts.
#[cfg(not(windows))]
fn fixed_drives(
    _journal: Option<&ChangeJournal>,
    _now_s: i64,
    output: &mut SourceOutput,
) -> (Vec<Volume>, bool) {
    (local_fixed_volumes(&live_volumes(output), true), false)
}

/// The inventory's walks, what they leave out, and where the drives came from.
#[derive(Debug)]
pub struct Plan {
    pub walks: Vec<Walk>,
    pub pruned: Pruned,
    /// The Windows drives were taken from the service's change journal, not asked for.
    pub drives_from_journal: bool,
}

/// The file systems the inventory walks, as the service's change watcher watches
/// them: every local fixed volume of the running system (on Windows every fixed drive
/// by its letter, as the walks start from them), or the image's root.
pub fn watched_places(root: &ScanRoot) -> Vec<PathBuf> {
    if !root.is_live() {
        return vec![root.root().to_path_buf()];
    }
    let mut scratch = SourceOutput::default();
    local_fixed_volumes(&live_volumes(&mut scratch), cfg!(windows))
        .into_iter()
        .map(|volume| volume.mount_point)
        .collect()
}

/// Wine maps a drive letter (`Z:`) to the Linux file system's root; the Linux scan is
/// that system's, so a Windows scan under Wine leaves it alone (the drives are listed
/// without it). Each folder is looked at without opening it: under Wine an open is
/// three trips to its server.
#[cfg(windows)]
pub fn is_unix_root_through_wine(drive: &Path) -> bool {
    // Wine shows a mount point such as `/proc` as a link (a reparse point): what
    // counts is that a folder is there, not what kind.
    let is_folder =
        |name: &str| super::Facts::read(&drive.join(name), true).is_ok_and(|facts| !facts.is_file);
    !is_folder("Windows") && ["etc", "usr", "proc"].into_iter().all(is_folder)
}

/// The inventory's walks of the scanned system, and the folders they leave out; the
/// service's change `journal` may name the drives (at `now_s`, seconds since 1970).
pub fn plan(
    context: &ScanContext<'_>,
    journal: Option<&ChangeJournal>,
    now_s: i64,
    output: &mut SourceOutput,
) -> Plan {
    let root = context.root;
    let windows = context.windows.is_some();
    let mut pruned = Pruned::new(windows);
    for start in files::walk_starts(context) {
        pruned.add(&start.0);
    }
    let mut walks = Vec::new();
    let mut drives_from_journal = false;
    if windows {
        // Under an image, the image's folders live on this (Linux) system.
        let drives: Vec<(PathBuf, bool, Option<u64>)> = if root.is_live() {
            let (drives, from_journal) = fixed_drives(journal, now_s, output);
            drives_from_journal = from_journal;
            drives
                .into_iter()
                .map(|volume| {
                    let kept = keeps_folder_times(&volume.file_system, true);
                    (volume.mount_point, kept, volume.serial)
                })
                .collect()
        } else {
            vec![(root.root().to_path_buf(), true, None)]
        };
        for (drive, folder_times_kept, drive_serial) in drives {
            for folder in WINDOWS_SYSTEM_FOLDERS {
                pruned.add(&drive.join(folder));
            }
            // Under an image, `windows_path` finds each name whatever its case.
            if !root.is_live() {
                for folder in WINDOWS_SYSTEM_FOLDERS {
                    pruned.add(&root.windows_path(folder));
                }
            }
            walks.push(Walk {
                shown: root.display(&drive),
                start: drive,
                user: None,
                folder_times_kept,
                drive_serial,
            });
        }
        return Plan {
            walks,
            pruned,
            drives_from_journal,
        };
    }
    for folder in LINUX_SYSTEM_FOLDERS {
        pruned.add(&root.path(folder));
    }
    if root.is_live() {
        // Every mount is a walk of its own or none: no walk crosses into another.
        match read_bounded(Path::new("/proc/self/mounts"), MAX_MOUNTS_BYTES) {
            Ok((bytes, _)) => {
                for mount in mount_points(&String::from_utf8_lossy(&bytes)) {
                    if mount != Path::new("/") {
                        pruned.add(&mount);
                    }
                }
            }
            Err(error) => output.error(
                SourceKind::File,
                Some("/proc/self/mounts".into()),
                format!("executable inventory: cannot read the mounts: {error}"),
            ),
        }
        for volume in local_fixed_volumes(&live_volumes(output), false) {
            let mount = volume.mount_point;
            if pruned.contains(&mount)
                || LINUX_SYSTEM_FOLDERS
                    .iter()
                    .any(|system| mount.starts_with(system))
            {
                continue;
            }
            walks.push(Walk {
                shown: mount.to_string_lossy().into_owned(),
                start: mount,
                user: None,
                folder_times_kept: true,
                drive_serial: None,
            });
        }
    } else {
        walks.push(Walk {
            start: root.root().to_path_buf(),
            shown: "/".into(),
            user: None,
            folder_times_kept: true,
            drive_serial: None,
        });
    }
    for user in &context.profiles.users {
        for prefix in wine::prefixes_of(root, &user.home) {
            let drive_c = format!("{prefix}/drive_c");
            pruned.add(&root.path(format!("{drive_c}/windows")));
            for folder in wine::walked_folders(root, &prefix) {
                pruned.add(&root.path(folder));
            }
            walks.push(Walk {
                start: root.path(&drive_c),
                shown: drive_c,
                user: Some(user.name.clone()),
                folder_times_kept: true,
                drive_serial: None,
            });
        }
    }
    Plan {
        walks,
        pruned,
        drives_from_journal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(mount: &str, file_system: &str, removable: bool) -> Volume {
        Volume {
            mount_point: PathBuf::from(mount),
            file_system: file_system.into(),
            removable,
            serial: None,
        }
    }

    #[test]
    fn only_fixed_local_volumes_are_walked() {
        let volumes = [
            volume("/", "ext4", false),
            volume("/srv", "xfs", false),
            volume("/srv", "xfs", false),
            volume("/media/anna/USB", "vfat", true),
            volume("/mnt/share", "cifs", false),
            volume("/mnt/nfs", "nfs4", false),
            volume("/tmp", "tmpfs", false),
            volume("/data", "fuseblk", false),
        ];
        let mounts = |volumes: Vec<Volume>| -> Vec<PathBuf> {
            volumes
                .into_iter()
                .map(|volume| volume.mount_point)
                .collect()
        };
        assert_eq!(
            mounts(local_fixed_volumes(&volumes, false)),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/srv"),
                PathBuf::from("/data")
            ]
        );
        let drives = [volume("C:\\", "NTFS", false), volume("E:\\", "FAT32", true)];
        assert_eq!(
            mounts(local_fixed_volumes(&drives, true)),
            vec![PathBuf::from("C:\\")]
        );
        assert!(keeps_folder_times("NTFS", true) && keeps_folder_times("ReFS", true));
        assert!(!keeps_folder_times("FAT32", true) && !keeps_folder_times("exFAT", true));
        assert!(keeps_folder_times("vfat", false));
    }

    #[test]
    fn mount_points_are_read_with_their_escapes() {
        let text = "/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/sdb1 /media/anna/My\\040Disk vfat rw 0 0\n\n";
        assert_eq!(
            mount_points(text),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/proc"),
                PathBuf::from("/media/anna/My Disk")
            ]
        );
        let mut pruned = Pruned::new(false);
        pruned.add(Path::new("/"));
        assert!(pruned.contains(Path::new("/")));
        assert!(!pruned.contains(Path::new("/srv")));
    }

    #[test]
    fn pruned_folders_ignore_case_and_trailing_separators_on_windows() {
        let mut pruned = Pruned::new(true);
        pruned.add(Path::new("C:\\Program Files\\"));
        assert!(pruned.contains(Path::new("c:\\program files")));
        let mut exact = Pruned::new(false);
        exact.add(Path::new("/home/anna/"));
        assert!(exact.contains(Path::new("/home/anna")));
        assert!(!exact.contains(Path::new("/home/Anna")));
    }

    #[test]
    fn a_folder_has_folders_left_out_below_it_by_path_not_by_name() {
        let mut pruned = Pruned::new(false);
        pruned.add(Path::new("/home/anna/.wine"));
        pruned.add(Path::new("/proc/"));
        for above in ["/", "/home", "/home/anna/", "/home/anna"] {
            assert!(pruned.any_below(Path::new(above)), "{above}");
        }
        for beside in [
            "/home/anna/.wine",
            "/home/ann",
            "/home/anna/.wine/drive_c",
            "/srv",
        ] {
            assert!(!pruned.any_below(Path::new(beside)), "{beside}");
        }
        // A backslash separates folders on Windows only.
        let mut windows = Pruned::new(true);
        windows.add(Path::new("C:\\Program Files"));
        assert_eq!(windows.any_below(Path::new("c:\\")), cfg!(windows));
        assert!(!windows.any_below(Path::new("C:\\Program Files")));
        assert!(!windows.any_below(Path::new("D:\\")));
    }
}
