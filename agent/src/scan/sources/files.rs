//! Portable copies: program files found by bounded walks over every user's home and
//! over `/opt` and `/usr/local` (tarballs, AppImages, unpacked zips, also in localized
//! folders such as `~/Загрузки`). Walks never follow symbolic links, stop at a depth
//! and an entry limit (and say so), and read at most the first 16 bytes of a file whose
//! name the catalog asks about, to tell a program from anything else.
//!
//! On Windows the walks cover every profile's `AppData\Roaming`, `AppData\Local`,
//! `Downloads` and `Desktop`, and `Program Files`, `Program Files (x86)` and
//! `ProgramData`; every `.exe` there also has its version resource read (headers and
//! resource section only, see [`crate::scan::formats::pe`]), so a renamed copy is
//! found, and so is Skype for Business's `lync.exe` inside an Office installation.

use std::path::{Path, PathBuf};
use sverka_shared::observation::{FileFormat, VersionInfo};
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};
use walkdir::WalkDir;

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::formats::pe;
use crate::scan::fsread::read_header;

pub const MACHINE_FOLDERS: &[&str] = &["/opt", "/usr/local"];
pub const WINDOWS_MACHINE_FOLDERS: &[&str] = &[
    "C:\\Program Files",
    "C:\\Program Files (x86)",
    "C:\\ProgramData",
];
/// Folders of a Windows profile that are walked, relative to the profile.
pub const WINDOWS_PROFILE_FOLDERS: &[&str] =
    &["AppData\\Roaming", "AppData\\Local", "Downloads", "Desktop"];
/// Folders that language toolchains and package managers own and fill with tens of
/// thousands of files, none of them a messenger. Walks do not enter them unless
/// `prune_toolchains` is off (`--walk-everything`). A copy hidden in one of them is still
/// found when it runs.
pub const TOOLCHAIN_FOLDERS: &[&str] = &[
    ".cargo",
    ".rustup",
    ".pyenv",
    ".rbenv",
    ".nvm",
    ".npm",
    ".m2",
    ".gradle",
    ".git",
    "node_modules",
    "__pycache__",
    "site-packages",
    // Compiler caches (sccache, ccache): hundreds of folders of object files.
    "sccache",
    ".ccache",
];
const HEADER_BYTES: usize = 16;

#[derive(Debug)]
pub struct PortableFileSource;

impl EvidenceSource for PortableFileSource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let windows = context.windows.is_some();
        for (start, folder, user) in walk_starts(context) {
            // Wine prefixes' `drive_c` are walked by the Wine source, as Windows folders.
            let prefixes: Vec<PathBuf> = match (&user, windows) {
                (Some(_), false) => super::wine::prefixes_of(context.root, &folder)
                    .into_iter()
                    .map(|prefix| context.root.path(format!("{prefix}/drive_c")))
                    .collect(),
                _ => Vec::new(),
            };
            walk_pruning(
                context,
                start,
                &folder,
                user.as_deref(),
                windows,
                &prefixes,
                output,
            );
        }
    }
}

/// Where the portable-copy walks start: (local path, the path on the scanned system,
/// the user whose profile it is). The executable inventory leaves these to this source.
pub fn walk_starts(context: &ScanContext<'_>) -> Vec<(PathBuf, String, Option<String>)> {
    let mut starts = Vec::new();
    if context.windows.is_some() {
        for folder in WINDOWS_MACHINE_FOLDERS {
            starts.push((context.root.windows_path(folder), folder.to_string(), None));
        }
        for user in &context.profiles.users {
            for relative in WINDOWS_PROFILE_FOLDERS {
                let folder = format!("{}\\{relative}", user.home.trim_end_matches('\\'));
                starts.push((
                    context.root.windows_path(&folder),
                    folder,
                    Some(user.name.clone()),
                ));
            }
        }
        return starts;
    }
    for folder in MACHINE_FOLDERS {
        starts.push((context.root.path(folder), folder.to_string(), None));
    }
    for user in &context.profiles.users {
        starts.push((
            context.root.path(&user.home),
            user.home.clone(),
            Some(user.name.clone()),
        ));
    }
    starts
}

/// Walks one folder of the scanned system (`folder` names it in errors). With
/// `read_versions`, every `.exe` has its version resource read and is reported when
/// that names a catalog application.
pub fn walk(
    context: &ScanContext<'_>,
    start: PathBuf,
    folder: &str,
    user: Option<&str>,
    read_versions: bool,
    output: &mut SourceOutput,
) {
    walk_pruning(context, start, folder, user, read_versions, &[], output);
}

/// [`walk`], never entering the folders of `pruned` (local paths).
pub fn walk_pruning(
    context: &ScanContext<'_>,
    start: PathBuf,
    folder: &str,
    user: Option<&str>,
    read_versions: bool,
    pruned: &[PathBuf],
    output: &mut SourceOutput,
) {
    if !start.is_dir() {
        return;
    }
    let mut state = WalkState {
        context,
        user,
        read_versions,
        observations: Vec::new(),
        unreadable_versions: Unreadable::default(),
        unreadable: Unreadable::default(),
        stopped: false,
    };
    walk_with_walkdir(&mut state, &start, pruned);
    output.observations.append(&mut state.observations);
    if state.stopped {
        output.error(
            SourceKind::File,
            Some(folder.to_string()),
            format!(
                "walk stopped after {} entries; files deeper in this folder were not checked",
                context.limits.max_entries
            ),
        );
    }
    state.unreadable_versions.report(
        output,
        Some(folder.to_string()),
        "",
        "program(s) had unreadable version information",
    );
    state.unreadable.report(
        output,
        Some(folder.to_string()),
        "",
        "folder(s) or file(s) could not be read",
    );
}

/// Things that could not be read during one walk: how many, and the first.
#[derive(Debug, Default)]
pub(crate) struct Unreadable {
    count: u64,
    first: Option<String>,
}

impl Unreadable {
    pub(crate) fn add(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        self.first.get_or_insert_with(what);
    }

    /// One error entry for all of them, if there were any: `{prefix}{count} {what}
    /// (first: ...)`.
    pub(crate) fn report(
        &self,
        output: &mut SourceOutput,
        path: Option<String>,
        prefix: &str,
        what: &str,
    ) {
        if self.count > 0 {
            output.error(
                SourceKind::File,
                path,
                format!(
                    "{prefix}{} {what} (first: {})",
                    self.count,
                    self.first.as_deref().unwrap_or_default()
                ),
            );
        }
    }
}

struct WalkState<'a, 'c> {
    context: &'a ScanContext<'c>,
    user: Option<&'a str>,
    read_versions: bool,
    observations: Vec<Observation>,
    unreadable_versions: Unreadable,
    unreadable: Unreadable,
    stopped: bool,
}

/// Whether a walk skips a folder of this name (a toolchain's, unless walking everything).
pub fn is_pruned(prune_toolchains: bool, folder_name: &std::ffi::OsStr) -> bool {
    prune_toolchains
        && folder_name
            .to_str()
            .is_some_and(|name| TOOLCHAIN_FOLDERS.contains(&name))
}

impl WalkState<'_, '_> {
    /// Looks at one regular file met by a walk.
    fn visit_file(&mut self, path: &Path, file_name: &str, length: impl FnOnce() -> u64) {
        let context = self.context;
        let wanted = context.matcher.wants_file_name(file_name);
        // Empty `.exe` files are App Execution Aliases (reparse points under
        // `AppData\Local\Microsoft\WindowsApps`): nothing to read.
        let is_exe = self.read_versions && has_exe_extension(file_name) && length() > 0;
        if !wanted && !is_exe {
            return;
        }
        let version_info = if is_exe {
            match pe::read_version_info(path) {
                Ok(info) => info,
                // A `.exe` that is not a program at all is simply not one.
                Err(pe::PeError::NotPe) => None,
                Err(error) => {
                    self.unreadable_versions
                        .add(|| format!("{}: {error}", context.root.display(path)));
                    None
                }
            }
        } else {
            None
        };
        if let Some(observation) = program_file(context, path, file_name, self.user, version_info)
            && (wanted || !context.matcher.hits_for(&observation).is_empty())
        {
            self.observations.push(observation);
        }
    }
}

/// A walk that does not follow links (symbolic links, junctions), and on a live Linux
/// system stays on one file system (off /proc, /sys and network mounts). Not on
/// Windows: walkdir would open every folder to compare its volume, and mount points
/// inside the walked folders are rare there.
fn walk_with_walkdir(state: &mut WalkState<'_, '_>, start: &Path, pruned: &[PathBuf]) {
    let context = state.context;
    let prune = context.limits.prune_toolchains;
    let walker = WalkDir::new(start)
        .follow_links(false)
        .max_depth(context.limits.max_depth)
        .same_file_system(context.root.is_live() && !cfg!(windows))
        .into_iter()
        .filter_entry(|entry| {
            !(entry.depth() > 0
                && entry.file_type().is_dir()
                && (is_pruned(prune, entry.file_name())
                    || pruned.iter().any(|folder| folder == entry.path())))
        });
    let mut visited: u64 = 0;
    for entry in walker {
        visited += 1;
        if visited > context.limits.max_entries {
            state.stopped = true;
            break;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                state.unreadable.add(|| {
                    let path = error
                        .path()
                        .map(|path| context.root.display(path))
                        .unwrap_or_default();
                    let reason = error
                        .io_error()
                        .map(|io| io.to_string())
                        .unwrap_or_else(|| error.to_string());
                    format!("{path}: {reason}")
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy();
        state.visit_file(entry.path(), &file_name, || {
            entry.metadata().map(|metadata| metadata.len()).unwrap_or(0)
        });
    }
}

fn has_exe_extension(file_name: &str) -> bool {
    file_name.len() > 4
        && file_name
            .get(file_name.len() - 4..)
            .is_some_and(|extension| extension.eq_ignore_ascii_case(".exe"))
}

fn program_file(
    context: &ScanContext<'_>,
    local: &Path,
    file_name: &str,
    user: Option<&str>,
    version_info: Option<VersionInfo>,
) -> Option<Observation> {
    let header = read_header(local, HEADER_BYTES).ok()?;
    let format = FileFormat::sniff(&header)?;
    Some(program_observation(
        context,
        local,
        file_name,
        format,
        version_info,
        user,
    ))
}

/// A program file found installed at `local` (a path of this machine), in `user`'s
/// profile or the machine's.
pub fn program_observation(
    context: &ScanContext<'_>,
    local: &Path,
    file_name: &str,
    format: FileFormat,
    version_info: Option<VersionInfo>,
    user: Option<&str>,
) -> Observation {
    Observation {
        observed: Observed::File {
            file_name: file_name.to_string(),
            format,
            version_info,
        },
        path: Some(context.root.display(local)),
        user: user.map(str::to_string),
        scope: Scope::of_profile(&user),
        strength: Strength::Installed,
    }
}
