//! `POST /api/v1/reports`: a host's report, bounded and checked, evaluated with the
//! collector's catalog (the inventory part cached per digest and revision), stored,
//! and acknowledged by its id only after it was stored.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use std::sync::Arc;
use sverka_shared::protocol::{ApiError, ReportAck, ReportUpload};
use sverka_shared::report::SCAN_SCHEMA;
use sverka_shared::{Inventory, Observation};

use super::enrollment::client_address;
use super::limits::{RequestLimits, check_string_lengths, decode_body, parse_typed};
use super::{ApiFailure, bounded_text, content_encoding, read_body};
use crate::api_docs::{BodyRefused, RateLimited, Unauthorized, Unavailable};
use crate::app::AppState;
use crate::evaluate::host_findings;
use crate::store::{AppUse, EvaluatedFindings, HostCredentials, ReportRecord};

/// The scan time, trusted only as far as it is plausible: never after the moment the
/// report arrived, and the arrival time when it cannot be read.
fn scanned_at(text: &str, received_at: i64) -> i64 {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|elapsed| elapsed.as_secs() as i64)
        .map_or(received_at, |seconds| seconds.min(received_at))
}

/// 2000-01-01T00:00:00Z: a time of use before it is a clock that was never set.
const EARLIEST_USE: i64 = 946_684_800;
/// How far after the scan a time of use may be and still count (as the scan's time),
/// as the agent allows it.
const USE_CLOCK_SKEW: i64 = 5 * 60;

/// A finding's `last_used` as far as the collector trusts it for a scan made at
/// `scanned_at` (itself never after the report arrived): times before 2000 and times
/// later than the scan by more than the skew are refused (the clock that wrote them was
/// wrong, so they say nothing), a time within the skew counts as the scan's time.
pub(crate) fn trusted_use_time(text: &str, scanned_at: i64) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let at = i64::try_from(at).ok()?;
    if at < EARLIEST_USE {
        return None;
    }
    if at <= scanned_at {
        return Some(at);
    }
    (at <= scanned_at + USE_CLOCK_SKEW).then_some(scanned_at)
}

/// The uses a report shows: for each application the collector's own evaluation found,
/// the latest trusted `last_used` the agent reported for it. The agent's word alone
/// never makes a use: an application the collector did not find on the PC has none.
fn uses_of(
    findings: &EvaluatedFindings,
    reported: &[sverka_shared::Finding],
    scanned_at: i64,
) -> Vec<AppUse> {
    let mut uses: Vec<AppUse> = Vec::new();
    for finding in &findings.list {
        let latest = reported
            .iter()
            .filter(|agent| agent.app == finding.app_id)
            .filter_map(|agent| agent.last_used.as_deref())
            .filter_map(|text| {
                let trusted = trusted_use_time(text, scanned_at);
                if trusted.is_none() {
                    tracing::debug!(app = %finding.app_id, last_used = text, "a time of use refused");
                }
                trusted
            })
            .max();
        if let Some(used_at) = latest {
            uses.push(AppUse {
                app_id: finding.app_id.clone(),
                status: finding.status,
                used_at,
            });
        }
    }
    uses
}

/// A [`sverka_shared::protocol::ReportUpload`] as received: the inventory stays raw JSON until the collector
/// knows it needs it, so a report whose inventory digest it already holds costs no more
/// to decode than a check-in.
#[derive(Debug, serde::Deserialize)]
struct IncomingReport {
    report_id: String,
    scan: sverka_shared::ScanReport,
    inventory_digest: String,
    #[serde(default)]
    inventory: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    evidence: Vec<Observation>,
}

fn check_upload(
    upload: &IncomingReport,
    credentials: &HostCredentials,
    limits: &RequestLimits,
) -> Result<(), ApiFailure> {
    // The hyphenated form only (36 characters), as the document's pattern says.
    let id = uuid::Uuid::try_parse(&upload.report_id)
        .ok()
        .filter(|_| upload.report_id.len() == 36)
        .ok_or_else(|| ApiFailure::unprocessable("report_id is not a UUID"))?;
    if id.is_nil() {
        return Err(ApiFailure::unprocessable("report_id is the nil UUID"));
    }
    if upload.scan.schema != SCAN_SCHEMA {
        return Err(ApiFailure::unprocessable(format!(
            "report schema {} is not supported (this collector reads schema {SCAN_SCHEMA})",
            upload.scan.schema
        )));
    }
    if upload.inventory_digest.len() != 64
        || !upload
            .inventory_digest
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit())
    {
        return Err(ApiFailure::unprocessable(
            "inventory_digest is not a SHA-256 in hex",
        ));
    }
    if upload.scan.findings.len() > limits.max_findings {
        return Err(ApiFailure::unprocessable(format!(
            "{} findings in one report (at most {})",
            upload.scan.findings.len(),
            limits.max_findings
        )));
    }
    let longest_list = upload.scan.errors.len().max(upload.scan.skipped.len());
    if longest_list > limits.max_array_items {
        return Err(ApiFailure::unprocessable(format!(
            "a list of {longest_list} items (at most {})",
            limits.max_array_items
        )));
    }
    if upload.evidence.len() > limits.max_evidence {
        return Err(ApiFailure::unprocessable(format!(
            "{} evidence observations in one report (at most {})",
            upload.evidence.len(),
            limits.max_evidence
        )));
    }
    bounded_text("hostname", &upload.scan.host.hostname, 255, false)?;
    if let Some(machine_id) = &upload.scan.host.machine_id
        && machine_id.trim() != credentials.machine_id
    {
        return Err(ApiFailure::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this report describes another machine than the one this key was issued to",
        ));
    }
    Ok(())
}

/// The inventory a report carries, parsed and held to its limits and to the digest
/// the report names.
fn checked_inventory(
    raw: &serde_json::value::RawValue,
    digest: &str,
    limits: &RequestLimits,
) -> Result<Inventory, ApiFailure> {
    let observations: Vec<Observation> = parse_typed(raw.get().as_bytes(), "an inventory")?;
    if observations.len() > limits.max_array_items {
        return Err(ApiFailure::unprocessable(format!(
            "an inventory of {} items (at most {})",
            observations.len(),
            limits.max_array_items
        )));
    }
    let inventory = Inventory::from_observations(&observations);
    if inventory.digest != digest {
        return Err(ApiFailure::unprocessable(
            "inventory_digest does not match the inventory sent",
        ));
    }
    Ok(inventory)
}

/// Send a report
///
/// A report id that was stored before for this host is acknowledged again with
/// `duplicate: true` and stored once.
#[utoipa::path(
    post,
    path = "/api/v1/reports",
    tag = "agents",
    security(("hostKey" = [])),
    request_body(content = ReportUpload, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before)", body = ReportAck),
        (status = 403, description = "The report describes another machine than the key's", body = ApiError),
        Unauthorized,
        BodyRefused,
        RateLimited,
        Unavailable,
    )
)]
pub async fn receive_report(
    State(state): State<Arc<AppState>>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ReportAck>, ApiFailure> {
    let credentials = state.authenticate(&headers).await?;
    state.take_token(credentials.host_id)?;
    // A fair share of the slots that bound how many reports are read, decoded and
    // evaluated at once; the body must arrive within the body deadline.
    let _slot = state
        .upload_slots
        .take(credentials.host_id, client_address(&extensions))
        .await?;
    let raw = read_body(body, state.limits.max_body_bytes).await?;
    let plain = decode_body(&raw, content_encoding(&headers), &state.limits)?;
    drop(raw);
    check_string_lengths(&plain, state.limits.max_string_bytes)?;
    let upload: IncomingReport = parse_typed(&plain, "a report")?;
    check_upload(&upload, &credentials, &state.limits)?;

    let received_at = crate::now();
    let catalog = state.catalog();
    let digest = upload.inventory_digest.clone();
    let cache_key = (digest.clone(), catalog.revision);
    // An inventory sent is always checked, whether or not its digest is known: the
    // same report is judged the same way before and after the collector has seen it.
    // Bytes already found to match this digest are judged by that (they would parse
    // and hash the same), unless the inventory must be evaluated anyway: a lab of
    // identical PCs costs one parse, not one per report.
    let known = state.evaluator.cached(&cache_key);
    let sent = match &upload.inventory {
        Some(raw) => {
            let bytes_key = state.evaluator.inventory_bytes_key(raw.get());
            if known.is_some() && state.evaluator.checked_before(bytes_key, &digest) {
                None
            } else {
                let inventory = checked_inventory(raw, &digest, &state.limits)?;
                state.evaluator.remember_checked(bytes_key, &digest);
                Some(inventory)
            }
        }
        None => None,
    };
    let mut inventory_wanted = false;
    // A digest the collector already evaluated needs neither evaluating nor storing
    // again: identical PCs cost one copy and one evaluation.
    let (inventory_record, matched, fresh) = match known {
        Some(matched) => (None, Some(matched), false),
        None => match sent {
            Some(inventory) => {
                let matched = state
                    .evaluator
                    .evaluate_inventory(&catalog.matcher, &inventory.observations);
                let body = serde_json::to_string(&inventory.observations)
                    .map_err(|error| ApiFailure::unprocessable(error.to_string()))?;
                (
                    Some((body, inventory.observations.len() as i64)),
                    Some(matched),
                    true,
                )
            }
            None => match state.store.inventory(&digest).await? {
                Some(body) => {
                    let observations: Vec<Observation> =
                        serde_json::from_str(&body).unwrap_or_default();
                    let matched = state
                        .evaluator
                        .evaluate_inventory(&catalog.matcher, &observations);
                    (None, Some(matched), true)
                }
                None => {
                    inventory_wanted = true;
                    (None, None, false)
                }
            },
        },
    };
    let findings = matched.as_ref().map(|matched| {
        if upload.evidence.is_empty() {
            // Most PCs: the findings follow from the inventory alone, shared by every PC
            // with the same inventory.
            state.evaluator.inventory_findings(&cache_key, || {
                EvaluatedFindings::new(host_findings(&catalog.matcher, matched, &[]))
            })
        } else {
            EvaluatedFindings::new(host_findings(&catalog.matcher, matched, &upload.evidence))
        }
    });
    let evidence = serde_json::to_string(&upload.evidence)
        .map_err(|error| ApiFailure::unprocessable(error.to_string()))?;
    let host = &upload.scan.host;
    let scanned_at = scanned_at(&upload.scan.scanned_at, received_at);
    let uses = findings
        .as_ref()
        .map(|findings| uses_of(findings, &upload.scan.findings, scanned_at))
        .unwrap_or_default();
    let record = ReportRecord {
        report_id: upload.report_id.clone(),
        host_id: credentials.host_id,
        received_at,
        scanned_at,
        hostname: host.hostname.clone(),
        os_id: host.os_id.chars().take(64).collect(),
        os_name: host.os_name.chars().take(256).collect(),
        agent_version: host.agent_version.chars().take(64).collect(),
        scan_errors: upload.scan.errors.len() as i64,
        inventory_digest: digest,
        inventory: inventory_record,
        evidence,
        catalog_revision: catalog.revision,
        findings,
        uses,
    };
    drop(plain);
    let outcome = state.store.record_report(record).await?;
    // Only a stored inventory may be taken as known.
    if fresh && let Some(matched) = matched {
        state.evaluator.remember(cache_key, matched);
    }
    Ok(axum::Json(ReportAck {
        report_id: upload.report_id,
        duplicate: outcome.duplicate,
        inventory_wanted,
        catalog_etag: catalog.etag.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_times_are_never_later_than_arrival() {
        assert_eq!(
            scanned_at("2026-11-22T08:00:00Z", 2_000_000_000),
            1_795_334_400
        );
        assert_eq!(
            scanned_at("2099-01-01T00:00:00Z", 1_795_334_400),
            1_795_334_400
        );
        assert_eq!(scanned_at("yesterday", 42), 42);
    }

    #[test]
    fn times_of_use_are_trusted_only_when_plausible() {
        let scan = 1_796_292_000; // 2026-12-03T10:00:00Z
        // Before the scan: as sent, to the second.
        assert_eq!(
            trusted_use_time("2026-12-01T09:30:15Z", scan),
            Some(scan - 2 * 86_400 - 1_785)
        );
        // Within five minutes after it: the scan's time; later: refused.
        assert_eq!(trusted_use_time("2026-12-03T10:04:00Z", scan), Some(scan));
        assert_eq!(trusted_use_time("2026-12-03T10:06:00Z", scan), None);
        assert_eq!(trusted_use_time("2099-01-01T00:00:00Z", scan), None);
        // A clock never set, and words that are not times.
        assert_eq!(trusted_use_time("1980-01-01T00:00:00Z", scan), None);
        assert_eq!(trusted_use_time("1970-01-01T00:00:00Z", scan), None);
        assert_eq!(trusted_use_time("last tuesday", scan), None);
        assert_eq!(trusted_use_time("", scan), None);
        assert_eq!(trusted_use_time("99999-01-01T00:00:00Z", scan), None);
    }
}
