//! `sverka-agent enroll`: introduce this PC (or, with `--root`, a mounted image) to the
//! collector with the school's enrollment secret, and keep the host key it answers with.

use sverka_shared::protocol::EnrollRequest;

use crate::delivery::client::{ClientError, CollectorClient};
use crate::delivery::state::{Enrollment, StateDir, StateError};
use crate::scan::host;
use crate::scan::root::ScanRoot;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(
        "{path} is missing or empty: the collector tells PCs apart by their machine id (on Linux, `systemd-machine-id-setup` creates it)"
    )]
    NoMachineId { path: String },
    #[error("enrollment failed")]
    Client(#[from] ClientError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Enrolls and stores the enrollment in the state folder, replacing an earlier one
/// (and its CA certificates: `ca_pem` is trusted for this collector from now on).
pub fn enroll(
    server: &str,
    secret: &str,
    ca_pem: Option<&[u8]>,
    state: &StateDir,
    root: &ScanRoot,
) -> Result<Enrollment, EnrollError> {
    // On Windows the identity is MachineGuid in the SOFTWARE hive (live, or the
    // mounted volume's hive file).
    let windows = root
        .is_windows()
        .then(|| crate::scan::windows_system::WindowsSystem::open(root).0);
    let host = host::describe(root, windows.as_ref());
    let machine_id =
        host.machine_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| EnrollError::NoMachineId {
                path: if windows.is_some() {
                    "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid".to_string()
                } else {
                    root.path("/etc/machine-id").display().to_string()
                },
            })?;
    let client = CollectorClient::new(server, ca_pem)?;
    tracing::info!(server = client.server(), machine_id, "enrolling");
    let response = client.enroll(&EnrollRequest {
        secret: secret.to_string(),
        machine_id: machine_id.clone(),
        hostname: host.hostname,
        os_id: host.os_id,
        os_name: host.os_name,
        agent_version: host.agent_version,
    })?;
    let enrollment = Enrollment {
        server: client.server().to_string(),
        host_id: response.host_id,
        host_key: response.host_key,
        organization_id: response.organization_id,
        organization_name: response.organization_name,
        machine_id,
    };
    state.save_enrollment(&enrollment)?;
    state.save_collector_ca(ca_pem)?;
    Ok(enrollment)
}
