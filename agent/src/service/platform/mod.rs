//! What only the Windows service needs from the OS: the settings the MSI wrote to the
//! registry, the state folder's access list, the Service Control Manager, a log file.
//! On Linux systemd does the equivalent (the unit's settings, `StateDirectory=`, the
//! journal), so there is no Linux counterpart.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
