//! `sverka-agent service`: what the installed service runs (systemd on Linux, the
//! Service Control Manager on Windows). It reads its settings
//! ([`crate::service::config`]), enrolls with the configured secret when this PC is not
//! enrolled yet (retrying while the collector cannot be reached or the settings are
//! incomplete), and then scans and reports on the schedule until it is stopped. Once
//! enrolled it never needs the secret again: the identity is the host key in the state
//! folder, which upgrades keep.

use std::time::Duration;
use sverka_shared::error_chain;

use crate::delivery::client::{self, ClientError};
use crate::delivery::enroll::{self, EnrollError};
use crate::delivery::retry::{Backoff, Disposition, disposition};
use crate::delivery::spool::SpoolPolicy;
use crate::delivery::state::{MAX_CA_BYTES, StateDir, StateError};
use crate::scan::root::ScanRoot;
use crate::scan::sources::WalkLimits;
use crate::service::config::{ConfigError, ServiceSettings};
use crate::service::run_loop::{self, RunError, RunOptions, StopSignal};
use crate::service::scan_child::ScanProcess;

/// How long an unconfigured service waits before it reads its settings again.
const UNCONFIGURED_WAIT: Duration = Duration::from_secs(60);
/// A refused secret is tried again this rarely (the admin may fix it meanwhile).
const REFUSED_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the CA file {path}: {message}")]
    CaFile { path: String, message: String },
}

/// Runs the service until `stop` (Windows) or until the process is ended (systemd).
/// `root` is the live system for the installed service, or a mounted image.
pub fn run(
    config: Option<&std::path::Path>,
    root: &ScanRoot,
    stop: &StopSignal,
) -> Result<(), ServiceError> {
    let settings = ServiceSettings::load(config)?;
    let state = StateDir::new(&settings.state_dir);
    state.create()?;
    #[cfg(windows)]
    crate::service::platform::restrict_state_dir(state.path());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        settings = settings.source,
        state = %state.path().display(),
        "service starting"
    );
    if !enroll_when_needed(config, &state, root, stop)? {
        return Ok(());
    }
    // A CA configured after enrollment (or changed) is pinned from now on.
    let settings = ServiceSettings::load(config)?;
    if let Some(ca_file) = &settings.ca_file {
        let pem = read_ca(ca_file)?;
        if state.collector_ca()?.as_deref() != Some(pem.as_slice()) {
            state.save_collector_ca(Some(&pem))?;
            tracing::info!(ca = %ca_file.display(), "the collector's CA is pinned");
        }
    }
    let options = RunOptions {
        state,
        root: root.clone(),
        limits: WalkLimits::default(),
        once: false,
        max_delay: settings.max_delay,
        interval: settings.interval,
        process_check: settings.process_check_interval,
        backoff: Backoff::SERVICE,
        attempts: 1,
        spool_policy: SpoolPolicy::default(),
        stop: stop.clone(),
        // Each scan in a child process: the service never holds a scan's memory, and a
        // scan that crashes or hangs ends alone.
        scan_process: ScanProcess::this_program(),
        change_journal: None,
        watch_changes: true,
    };
    run_loop::run(&options)?;
    Ok(())
}

/// Enrolls unless already enrolled; `false` when stopped before it could.
fn enroll_when_needed(
    config: Option<&std::path::Path>,
    state: &StateDir,
    root: &ScanRoot,
    stop: &StopSignal,
) -> Result<bool, ServiceError> {
    let mut failures = 0u32;
    let mut said_unconfigured = false;
    loop {
        match state.enrollment() {
            Ok(enrollment) => {
                tracing::info!(
                    host_id = enrollment.host_id,
                    server = enrollment.server,
                    "enrolled"
                );
                return Ok(true);
            }
            Err(StateError::NotEnrolled { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        // Read again each time: the admin may fill the settings in after installing.
        let settings = ServiceSettings::load(config)?;
        let (Some(server), Some(secret)) = (&settings.server_url, &settings.enroll_secret) else {
            if !said_unconfigured {
                tracing::warn!(
                    "not enrolled and no collector configured: set server_url and enroll_secret in {} (or SVERKA_SERVER_URL and SVERKA_ENROLL_SECRET; on Windows the MSI properties SERVER_URL and ENROLL_SECRET); checking again every {} s",
                    settings.source,
                    UNCONFIGURED_WAIT.as_secs()
                );
                said_unconfigured = true;
            }
            if stop.sleep(UNCONFIGURED_WAIT) {
                return Ok(false);
            }
            continue;
        };
        let attempt = client::require_https(server, settings.allow_http)
            .map_err(EnrollError::Client)
            .and_then(|()| {
                let ca = match &settings.ca_file {
                    Some(ca_file) => Some(read_ca(ca_file).map_err(|error| {
                        EnrollError::Client(ClientError::Setup(error.to_string()))
                    })?),
                    None => None,
                };
                enroll::enroll(server, &secret.0, ca.as_deref(), state, root)
            });
        let error = match attempt {
            Ok(enrollment) => {
                tracing::info!(
                    organization = enrollment.organization_name,
                    host_id = enrollment.host_id,
                    "enrolled; the enrollment secret is no longer needed"
                );
                #[cfg(windows)]
                crate::service::platform::forget_enroll_secret();
                return Ok(true);
            }
            Err(error) => error,
        };
        failures = failures.saturating_add(1);
        let status = match &error {
            EnrollError::Client(client) => client.status(),
            _ => None,
        };
        let wait = match (&error, disposition(status)) {
            (EnrollError::Client(ClientError::BadUrl { .. }), _) => UNCONFIGURED_WAIT,
            (_, Disposition::Retry) => {
                let retry_after = match &error {
                    EnrollError::Client(client) => client.retry_after(),
                    _ => None,
                };
                Backoff::SERVICE.wait(failures - 1, retry_after, fastrand::f64())
            }
            _ => REFUSED_WAIT,
        };
        tracing::error!(
            "{}; trying again in {:.0} s",
            error_chain(&error),
            wait.as_secs_f64()
        );
        if stop.sleep(wait) {
            return Ok(false);
        }
    }
}

fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, ServiceError> {
    let ca_error = |message: String| ServiceError::CaFile {
        path: path.display().to_string(),
        message,
    };
    let (pem, truncated) = crate::scan::fsread::read_bounded(path, MAX_CA_BYTES)
        .map_err(|error| ca_error(error.to_string()))?;
    if truncated {
        return Err(ca_error("too large".into()));
    }
    client::parse_ca_pem(&pem).map_err(|error| ca_error(error.to_string()))?;
    Ok(pem)
}
