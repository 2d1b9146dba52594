//! The agent API between `sverka-agent` and `sverka-collector` (version 1, under
//! `/api/v1`). `docs/agent-api.openapi.json` describes the same in OpenAPI.
//!
//! - `POST /api/v1/enroll` with [`EnrollRequest`] → [`EnrollResponse`]. The secret
//!   decides the organization; the machine id decides the host, so an agent that is
//!   reinstalled re-enrolls into the same host (and gets a new key).
//! - `POST /api/v1/reports` with `Authorization: Bearer <host key>` and a
//!   [`ReportUpload`] body (JSON, optionally `Content-Encoding: gzip`) →
//!   [`ReportAck`]. A report id that was already stored is acknowledged again with
//!   `duplicate: true` and stored once.
//! - `GET /api/v1/catalog` with the host key and optionally `If-None-Match` → the
//!   collector's catalog as TOML with an `ETag`, or `304 Not Modified`.
//!
//! Errors are JSON [`ApiError`] with a 4xx or 5xx status. `429` and `503` carry
//! `Retry-After` (seconds); the agent keeps the report in its spool and waits.

use serde::{Deserialize, Serialize};

use crate::observation::Observation;
use crate::report::ScanReport;

pub const API_PREFIX: &str = "/api/v1";
pub const ENROLL_PATH: &str = "/api/v1/enroll";
pub const REPORTS_PATH: &str = "/api/v1/reports";
pub const CATALOG_PATH: &str = "/api/v1/catalog";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The enrollment secret the school was given (`sverka-collector secret create`).
    pub secret: String,
    /// `/etc/machine-id` on Linux, `MachineGuid` on Windows.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 256,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub machine_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 255,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub hostname: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub os_id: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub os_name: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    pub host_id: i64,
    /// The host's own key, `<host id>.<random>`; the collector keeps only its hash.
    pub host_key: String,
    pub organization_id: i64,
    pub organization_name: String,
}

/// One report: a scan, and the software inventory when it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportUpload {
    /// A UUIDv7, made when the report was written to the agent's spool; a report sent
    /// twice has the same id.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^(?!0{8}-0{4}-0{4}-0{4}-0{12}$)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )
    )]
    pub report_id: String,
    pub scan: ScanReport,
    /// SHA-256 (hex) of the machine's full inventory in its canonical form
    /// (`Inventory::digest`).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub inventory_digest: String,
    /// The full inventory, sent only when the collector has not acknowledged this
    /// digest before (or asked for it with `inventory_wanted`). Without it the report
    /// is a small check-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 50_000))]
    pub inventory: Option<Vec<Observation>>,
    /// The observations that are not inventory but matched the agent's catalog
    /// (program files, launchers, processes, data folders), so the collector can
    /// evaluate them with its own catalog.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 5_000))]
    pub evidence: Vec<Observation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportAck {
    pub report_id: String,
    /// The report had been stored before; it was not stored again.
    #[serde(default)]
    pub duplicate: bool,
    /// The collector does not hold the inventory with this digest: send it with the
    /// next report.
    #[serde(default)]
    pub inventory_wanted: bool,
    /// The ETag of the collector's current catalog; fetch it when it differs from the
    /// one the agent holds.
    #[serde(default)]
    pub catalog_etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Machine-readable: `bad_request`, `unauthorized`, `forbidden`, `too_large`,
    /// `unprocessable`, `rate_limited`, `unavailable`, ...
    pub error: String,
    /// For people.
    pub message: String,
}
