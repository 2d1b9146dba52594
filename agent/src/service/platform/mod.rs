//! What only the Windows service needs from the OS: the settings the MSI wrote to the
//! registry, the state folder's access list, the Service Control Manager, a log file.
//! On Linux systemd does the equivalent (the unit's settings, `StateDirectory=`, the
//! journal), so there is no Linux counterpart beyond the state folder's default.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

use std::path::PathBuf;

/// The state folder unless `--state-dir` says otherwise: `/var/lib/sverka` on Unix,
/// `%ProgramData%\Sverka` on Windows (the folder the MSI created, as it recorded it in
/// the registry, when there is one: a service's environment may lack `ProgramData`, as
/// under Wine).
pub fn default_state_dir() -> PathBuf {
    #[cfg(windows)]
    if let Some(folder) = registry_state_dir() {
        return folder;
    }
    if cfg!(windows) {
        let program_data = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        program_data.join("Sverka")
    } else {
        PathBuf::from("/var/lib/sverka")
    }
}
