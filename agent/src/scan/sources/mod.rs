//! Evidence sources: one file per source, each a pure parser (compiled and tested on
//! every OS) plus a thin reader. All sources are registered in [`all`]; the list is
//! the same on every OS, and a source that has nothing to read on a system (no dpkg
//! database on RED OS, no registry on Linux) simply observes nothing. The Windows
//! sources (`uninstall`, `appx`) read through [`ScanContext::windows`], which is set
//! for a live Windows scan and for `--root` on a Windows volume; `web_apps` reads the
//! browser profiles of both systems, and `wine` the Wine prefixes of a Linux system.
//!
//! Besides observations, a source may hand in times of program activity
//! ([`SourceOutput::uses`]: a data folder's modification time, a Prefetch entry's, the
//! service's record of programs seen running), which [`crate::scan::last_use`] turns
//! into each finding's `last_used`.

pub mod appx;
pub mod data_dirs;
pub mod desktop;
pub mod dpkg;
pub mod executables;
pub mod files;
pub mod flatpak;
pub mod prefetch;
pub mod processes;
pub mod rpm;
pub mod snap;
pub mod uninstall;
pub mod web_app_launchers;
pub mod web_apps;
pub mod wine;

use sverka_shared::report::SkippedSource;
use sverka_shared::{CatalogMatcher, Observation, SourceError, SourceKind};

use crate::scan::last_use::UseMark;
use crate::scan::root::ScanRoot;
use crate::scan::users::Profiles;
use crate::scan::windows_system::WindowsSystem;

/// Limits of the bounded file walks.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// How deep below a walk's starting folder to look.
    pub max_depth: usize,
    /// How many directory entries one walk may visit before it stops (and says so).
    pub max_entries: u64,
    /// Whether walks skip toolchain folders (see [`files::TOOLCHAIN_FOLDERS`]).
    pub prune_toolchains: bool,
    /// Whether the scan takes the executable inventory ([`executables`]).
    pub executable_inventory: bool,
}

impl Default for WalkLimits {
    fn default() -> WalkLimits {
        WalkLimits {
            max_depth: 8,
            max_entries: 2_000_000,
            prune_toolchains: true,
            executable_inventory: true,
        }
    }
}

/// What every source gets to work with.
#[derive(Debug)]
pub struct ScanContext<'a> {
    pub root: &'a ScanRoot,
    pub profiles: &'a Profiles,
    pub matcher: &'a CatalogMatcher,
    pub limits: WalkLimits,
    /// The registry and profiles of a Windows system; `None` on Linux.
    pub windows: Option<&'a WindowsSystem>,
    /// Whether and how to take the executable inventory (and where its cache is).
    pub inventory: &'a executables::InventoryOptions,
    /// The service's record of programs seen running between scans
    /// ([`crate::scan::seen_running`]), read by the process source of a live scan.
    pub seen_running: Option<&'a std::path::Path>,
}

/// What a source hands back: what it saw, and what it could not read.
#[derive(Debug, Default)]
pub struct SourceOutput {
    pub observations: Vec<Observation>,
    pub errors: Vec<SourceError>,
    pub skipped: Vec<SkippedSource>,
    /// Times of program activity, for the findings' `last_used`.
    pub uses: Vec<UseMark>,
}

impl SourceOutput {
    /// Lists a folder of the scanned system. A folder that does not exist is simply
    /// absent (`None`); one that cannot be listed is also an error of `source`.
    pub fn list_folder(
        &mut self,
        context: &ScanContext<'_>,
        source: SourceKind,
        folder: &str,
    ) -> Option<std::fs::ReadDir> {
        self.list_local(&context.root.path(folder), source, folder)
    }

    /// Lists a folder of a scanned Windows system (`C:\\Program Files\\WindowsApps`),
    /// like [`SourceOutput::list_folder`].
    pub fn list_folder_windows(
        &mut self,
        context: &ScanContext<'_>,
        source: SourceKind,
        folder: &str,
    ) -> Option<std::fs::ReadDir> {
        self.list_local(&context.root.windows_path(folder), source, folder)
    }

    /// Lists `local` (where `folder` of the scanned system lives on this machine).
    fn list_local(
        &mut self,
        local: &std::path::Path,
        source: SourceKind,
        folder: &str,
    ) -> Option<std::fs::ReadDir> {
        match std::fs::read_dir(local) {
            Ok(entries) => Some(entries),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                self.error(
                    source,
                    Some(folder.to_string()),
                    format!("cannot list: {error}"),
                );
                None
            }
        }
    }

    pub fn error(&mut self, source: SourceKind, path: Option<String>, message: impl Into<String>) {
        self.errors.push(SourceError {
            source,
            message: message.into(),
            path,
        });
    }
}

/// One kind of evidence.
pub trait EvidenceSource: Send + Sync {
    fn kind(&self) -> SourceKind;
    /// Observes what this source can see. Never fails whole: problems go to
    /// `output.errors`, and whatever could be read is still reported.
    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput);
}

/// Every source, in the order their results are listed.
pub fn all() -> Vec<Box<dyn EvidenceSource>> {
    vec![
        Box::new(dpkg::DpkgSource),
        Box::new(rpm::RpmSource),
        Box::new(flatpak::FlatpakSource),
        Box::new(snap::SnapSource),
        Box::new(desktop::DesktopEntrySource),
        Box::new(files::PortableFileSource),
        Box::new(data_dirs::DataDirSource),
        Box::new(processes::ProcessSource),
        Box::new(prefetch::PrefetchSource),
        Box::new(uninstall::UninstallKeySource),
        Box::new(appx::AppxSource),
        Box::new(web_apps::WebAppSource),
        Box::new(wine::WinePrefixSource),
        Box::new(executables::ExecutableInventorySource),
    ]
}
