//! The Windows service: settings under `HKLM\SOFTWARE\Sverka\Agent` (written by the MSI
//! from its properties), the state folder restricted to SYSTEM and Administrators, the
//! Service Control Manager (`windows-service`: Stop and Shutdown end the service within
//! a second when idle; recovery actions restart it after a failure), and the log file
//! `%ProgramData%\Sverka\logs\agent.log.<date>` (a service has no console).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceState, ServiceStatus,
    ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::service::config::Overrides;
use crate::service::run_loop::StopSignal;

/// The service's name, as the MSI registers it.
pub const SERVICE_NAME: &str = "SverkaAgent";
/// Where the MSI writes its properties.
pub const SETTINGS_KEY: &str = r"SOFTWARE\Sverka\Agent";
/// Full control for SYSTEM and Administrators only, inherited by everything inside,
/// and nothing inherited from `ProgramData` (which lets every user read and create).
pub const STATE_DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
/// `StartServiceCtrlDispatcher` outside the Service Control Manager.
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

/// The MSI's settings; empty when the key is missing.
pub fn registry_settings() -> Overrides {
    let Ok(key) = windows_registry::LOCAL_MACHINE.open(SETTINGS_KEY) else {
        return Overrides::default();
    };
    // Strings as the MSI writes them; a DWORD (set by hand) is read as its number.
    let text = |name: &str| -> Option<String> {
        key.get_string(name)
            .ok()
            .or_else(|| key.get_u32(name).ok().map(|number| number.to_string()))
    };
    Overrides {
        server_url: text("ServerUrl"),
        enroll_secret: text("EnrollSecret"),
        ca_file: text("CaFile"),
        allow_http: text("AllowHttp"),
    }
}

/// The state folder the MSI created (`StateDir`, `C:\ProgramData\Sverka\`), if any.
pub fn registry_state_dir() -> Option<PathBuf> {
    let key = windows_registry::LOCAL_MACHINE.open(SETTINGS_KEY).ok()?;
    let folder = key.get_string("StateDir").ok()?;
    let folder = folder.trim().trim_end_matches('\\');
    (!folder.is_empty()).then(|| PathBuf::from(folder))
}

/// Removes the enrollment secret from the registry once this PC is enrolled.
pub fn forget_enroll_secret() {
    let removed = windows_registry::LOCAL_MACHINE
        .options()
        .read()
        .write()
        .open(SETTINGS_KEY)
        .and_then(|key| key.remove_value("EnrollSecret"));
    match removed {
        Ok(()) => tracing::info!("the enrollment secret was removed from HKLM\\{SETTINGS_KEY}"),
        Err(error) => tracing::debug!("no enrollment secret to remove from the registry: {error}"),
    }
}

/// Sets the state folder's access list to [`STATE_DIR_SDDL`]; logged when it fails.
pub fn restrict_state_dir(path: &Path) {
    match security::set_dacl(path, STATE_DIR_SDDL) {
        Ok(()) => tracing::info!(
            folder = %path.display(),
            "the state folder is readable by SYSTEM and Administrators only"
        ),
        Err(error) => tracing::warn!(
            folder = %path.display(),
            "cannot restrict the state folder's access list: {error}"
        ),
    }
}

/// The state folder's access list as SDDL (for `sverka-agent status`).
pub fn folder_access(path: &Path) -> std::io::Result<String> {
    security::dacl_sddl(path)
}

static CONFIG: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Runs the service under the Service Control Manager. `Ok(false)` when this process
/// was not started by it (then the caller runs in the foreground).
pub fn run_under_service_manager(config: Option<PathBuf>) -> windows_service::Result<bool> {
    let _ = CONFIG.set(config);
    match windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => Ok(true),
        Err(windows_service::Error::Winapi(error))
            if error.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

windows_service::define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Err(error) = serve() {
        tracing::error!("the service could not talk to the Service Control Manager: {error}");
    }
}

fn serve() -> windows_service::Result<()> {
    let stop = StopSignal::default();
    let handler_stop = stop.clone();
    let status = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            handler_stop.stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    let report = |state: ServiceState, exit_code: ServiceExitCode, wait_hint: Duration| {
        let accepted = if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        };
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepted,
            exit_code,
            checkpoint: 0,
            wait_hint,
            process_id: None,
        })
    };
    report(
        ServiceState::Running,
        ServiceExitCode::Win32(0),
        Duration::ZERO,
    )?;
    configure_recovery();
    let config = CONFIG.get().cloned().flatten();
    let outcome = crate::service::os_service::run(
        config.as_deref(),
        &crate::scan::root::ScanRoot::live(),
        &stop,
    );
    report(
        ServiceState::StopPending,
        ServiceExitCode::Win32(0),
        Duration::from_secs(10),
    )?;
    let exit_code = match outcome {
        Ok(()) => {
            tracing::info!("service stopped");
            ServiceExitCode::Win32(0)
        }
        Err(error) => {
            tracing::error!("the service stops: {error}");
            // A service-specific failure: the recovery actions restart it.
            ServiceExitCode::ServiceSpecific(2)
        }
    };
    report(ServiceState::Stopped, exit_code, Duration::ZERO)
}

/// Restart after a failure (a crash, or a stop with an error): after 1 minute, again
/// after 1 minute, then after 5 minutes; the count resets after a day. The MSI cannot
/// say this (wixl has no `ServiceConfig`), so the service sets it on itself at start.
fn configure_recovery() {
    let configured = (|| -> windows_service::Result<()> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
        let service = manager.open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_CONFIG | ServiceAccess::CHANGE_CONFIG | ServiceAccess::START,
        )?;
        let restart = |seconds| ServiceAction {
            action_type: ServiceActionType::Restart,
            delay: Duration::from_secs(seconds),
        };
        service.update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(60), restart(60), restart(300)]),
        })?;
        service.set_failure_actions_on_non_crash_failures(true)
    })();
    match configured {
        Ok(()) => tracing::info!("recovery: restart 1 min after a failure"),
        Err(error) => tracing::warn!("cannot set the service's recovery actions: {error}"),
    }
}

/// The log folder of the service (`%ProgramData%\Sverka\logs`).
pub fn log_dir() -> PathBuf {
    super::default_state_dir().join("logs")
}

mod security {
    //! One of two places with `unsafe` (the other, the executable inventory's
    //! `win32.rs`, lists drives and reads file times): the Win32 security calls
    //! that set and read a folder's access list (no maintained safe wrapper covers
    //! them).
    #![allow(unsafe_code)]

    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use windows_sys::Win32::Foundation::{ERROR_SUCCESS, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl,
        PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    };

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// Frees a buffer the system allocated with `LocalAlloc`.
    struct LocalBuffer(*mut core::ffi::c_void);

    impl Drop for LocalBuffer {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: the pointer came from a Win32 call that documents LocalFree.
                unsafe {
                    LocalFree(self.0);
                }
            }
        }
    }

    pub fn set_dacl(path: &Path, sddl: &str) -> std::io::Result<()> {
        let sddl = wide(std::ffi::OsStr::new(sddl));
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; the out-pointer is valid; the descriptor
        // is freed by `LocalBuffer`.
        let converted = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if converted == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let descriptor = LocalBuffer(descriptor);
        let mut present = 0;
        let mut defaulted = 0;
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: the descriptor is valid while `descriptor` lives; out-pointers are valid.
        let found = unsafe {
            GetSecurityDescriptorDacl(descriptor.0, &mut present, &mut dacl, &mut defaulted)
        };
        if found == 0 || present == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let name = wide(path.as_os_str());
        // SAFETY: `name` is NUL-terminated; `dacl` points into `descriptor`, alive here.
        let status = unsafe {
            SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        };
        if status != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(status as i32));
        }
        Ok(())
    }

    pub fn dacl_sddl(path: &Path) -> std::io::Result<String> {
        let name = wide(path.as_os_str());
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; the descriptor is freed by `LocalBuffer`.
        let status = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut descriptor,
            )
        };
        if status != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(status as i32));
        }
        let descriptor = LocalBuffer(descriptor);
        let mut text: *mut u16 = std::ptr::null_mut();
        let mut length = 0u32;
        // SAFETY: the descriptor is valid; the string is freed by `LocalBuffer`.
        let converted = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor.0,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                &mut length,
            )
        };
        if converted == 0 || text.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let text = LocalBuffer(text.cast());
        // SAFETY: the system wrote `length` UTF-16 units (with the NUL) at `text`.
        let units = unsafe { std::slice::from_raw_parts(text.0 as *const u16, length as usize) };
        let units = units.split(|unit| *unit == 0).next().unwrap_or_default();
        Ok(String::from_utf16_lossy(units))
    }
}
