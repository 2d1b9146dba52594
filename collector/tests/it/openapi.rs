//! `docs/agent-api.openapi.json` must describe the API the code serves: the same
//! paths, and for every wire type exactly the fields it serialises.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeSet;
use sverka_shared::federation::{FIGURES_PATH, LINK_PATH};
use sverka_shared::protocol::{
    ApiError, CATALOG_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse, REPORTS_PATH, ReportAck,
};

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/agent-api.openapi.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("valid JSON")
}

fn properties(spec: &Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} has properties"))
        .keys()
        .cloned()
        .collect()
}

fn fields(value: impl serde::Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .expect("serialise")
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn the_spec_lists_every_endpoint() {
    let spec = spec();
    let paths: BTreeSet<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        ENROLL_PATH,
        REPORTS_PATH,
        CATALOG_PATH,
        "/healthz",
        LINK_PATH,
        FIGURES_PATH,
    ] {
        assert!(paths.contains(path), "{path} is missing from the spec");
    }
    assert_eq!(
        paths.len(),
        6,
        "the spec lists an endpoint the code does not serve"
    );
}

#[test]
fn the_spec_schemas_match_the_wire_types() {
    let spec = spec();
    let enroll = EnrollRequest {
        secret: "1.x".into(),
        machine_id: "m".into(),
        hostname: "h".into(),
        os_id: String::new(),
        os_name: String::new(),
        agent_version: String::new(),
    };
    assert_eq!(properties(&spec, "EnrollRequest"), fields(enroll));
    let enrolled = EnrollResponse {
        host_id: 1,
        host_key: "1.x".into(),
        organization_id: 1,
        organization_name: "S".into(),
    };
    assert_eq!(properties(&spec, "EnrollResponse"), fields(enrolled));
    let ack = ReportAck {
        report_id: "r".into(),
        duplicate: false,
        inventory_wanted: false,
        catalog_etag: String::new(),
    };
    assert_eq!(properties(&spec, "ReportAck"), fields(ack));
    let error = ApiError {
        error: "e".into(),
        message: "m".into(),
    };
    assert_eq!(properties(&spec, "ApiError"), fields(error));
    let upload_fields: BTreeSet<String> = [
        "report_id",
        "scan",
        "inventory_digest",
        "inventory",
        "evidence",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(properties(&spec, "ReportUpload"), upload_fields);
}

#[test]
fn the_spec_schemas_match_the_federation_types() {
    use sverka_shared::federation::*;
    let spec = spec();
    let link = LinkDescription {
        link_id: 1,
        organization_id: 2,
        organization: "Region".into(),
        detail: Detail::Counts,
        protocols: vec![1, 2],
    };
    assert_eq!(properties(&spec, "LinkDescription"), fields(link));
    let ack = FiguresAck {
        message_id: "m".into(),
        current_applied: true,
        weeks_stored: 1,
        weeks_known: 0,
        newest_week: None,
        refused: Vec::new(),
    };
    assert_eq!(properties(&spec, "FiguresAck"), fields(ack));
    let message = FiguresMessage {
        protocol: FEDERATION_PROTOCOL,
        message_id: "m".into(),
        generated_at: 1_800_000_000,
        organizations: Vec::new(),
        current: Vec::new(),
        violations: Vec::new(),
        used: Vec::new(),
        week: None,
        weeks: Vec::new(),
        not_understood: Default::default(),
    };
    assert_eq!(properties(&spec, "FiguresMessage"), fields(message));
    let member = MemberOrganization {
        key: "1".into(),
        parent: None,
        name: "n".into(),
        kind: "school".into(),
        expected_pcs: 1,
    };
    assert_eq!(properties(&spec, "MemberOrganization"), fields(member));
    let current = CurrentFigures {
        organization: "1".into(),
        enrolled: 0,
        reporting: 0,
        silent: 0,
        with_banned: 0,
        with_approved: 0,
        known: 0,
        silent_with_banned: 0,
    };
    assert_eq!(properties(&spec, "CurrentFigures"), fields(current));
    let violations = SchoolViolations {
        organization: "1".into(),
        app_id: "telegram".into(),
        pcs: 1,
        hosts: Vec::new(),
    };
    assert_eq!(properties(&spec, "SchoolViolations"), fields(violations));
    let used = ApplicationPcs {
        organization: "1".into(),
        app_id: String::new(),
        status: "approved".into(),
        pcs: 1,
    };
    assert_eq!(properties(&spec, "ApplicationPcs"), fields(used));
    assert_eq!(
        properties(&spec, "WeekSpan"),
        fields(WeekSpan { start: 0, end: 1 })
    );
    let week = WeekFigures {
        week: "2026-W47".into(),
        organization: "1".into(),
        expected_pcs: 0,
        enrolled: 0,
        reporting: 0,
        silent: 0,
        with_banned: 0,
        with_approved: 0,
        known: None,
        silent_with_banned: None,
        used_approved: None,
        used_banned: None,
    };
    assert_eq!(properties(&spec, "WeekFigures"), fields(week));
}

fn dashboard_spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/dashboard-api.openapi.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("valid JSON")
}

#[test]
fn the_dashboard_spec_lists_every_endpoint() {
    use sverka_collector::web::json::PATHS;
    let spec = dashboard_spec();
    let paths: BTreeSet<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = PATHS.into_iter().collect();
    assert_eq!(paths, served);
}

#[test]
fn the_dashboard_spec_schemas_match_the_answers() {
    use sverka_collector::store::{
        FindingEvent, HostApp, HostDetail, Organization, SilentHost, Timestamp,
    };
    use sverka_collector::web::figures::Totals;
    use sverka_collector::web::json::{ApplicationUsed, HostAnswer, Overview, OverviewRow, Weekly};
    let spec = dashboard_spec();
    // A weekly row that counted use (the overview's rows leave the use fields out).
    let row = || OverviewRow {
        organization_id: 1,
        organization: "o".into(),
        totals: Totals {
            used_approved: Some(0),
            used_banned: Some(0),
            ..Totals::default()
        },
        approved_share: None,
        share_of_reporting_pcs_that_used_an_approved_messenger: Some(0.0),
    };
    assert_eq!(properties(&spec, "OverviewRow"), fields(row()));
    let overview = Overview {
        week: "2026-W47".into(),
        rows: vec![],
        total: row(),
    };
    assert_eq!(properties(&spec, "Overview"), fields(overview));
    let weekly = Weekly {
        week: "2026-W47".into(),
        frozen: false,
        state: "live",
        as_of: Some("2026-11-26T12:00:00Z".into()),
        rows: vec![],
        total: row(),
        applications_used: vec![],
    };
    assert_eq!(properties(&spec, "Weekly"), fields(weekly));
    let used = ApplicationUsed {
        app: "max".into(),
        name: "MAX".into(),
        status: "approved".into(),
        pcs_that_used_it: 1,
    };
    assert_eq!(properties(&spec, "ApplicationUsed"), fields(used));
    let organization = Organization {
        id: 1,
        parent_id: None,
        name: "n".into(),
        kind: "school".into(),
        expected_pcs: 0,
        time_zone: None,
        report_cutoff: None,
        report_recipients: None,
        digest_recipients: None,
        webhook_url: None,
        federated_link_id: None,
        federated_as_of: None,
        federated_gone_at: None,
    };
    assert_eq!(properties(&spec, "Organization"), fields(organization));
    let silent = SilentHost {
        host_id: 1,
        hostname: "h".into(),
        organization_id: 1,
        organization: "o".into(),
        last_seen_at: None,
    };
    assert_eq!(properties(&spec, "SilentHost"), fields(silent));
    let time: Option<Timestamp> = Some(1);
    let detail = HostDetail {
        host_id: 1,
        organization_id: 1,
        machine_id: "m".into(),
        hostname: "h".into(),
        os_id: String::new(),
        os_name: String::new(),
        agent_version: String::new(),
        enrolled_at: 0,
        last_seen_at: time,
        last_scan_at: time,
        inventory_digest: None,
        catalog_revision: 0,
    };
    assert_eq!(properties(&spec, "HostDetail"), fields(detail.clone()));
    let app = HostApp {
        app_id: "a".into(),
        app_name: "A".into(),
        status: sverka_shared::AppStatus::Banned,
        strength: sverka_shared::Strength::Installed,
        users: vec![],
        evidence: "[]".into(),
        first_seen: 0,
        last_seen: 0,
        resolved_at: None,
    };
    assert_eq!(properties(&spec, "HostApp"), fields(app.clone()));
    let event = FindingEvent {
        host_id: 1,
        app_id: "a".into(),
        event: sverka_collector::store::FindingChange::Appeared,
        at: 0,
        cause: sverka_collector::store::ChangeCause::Report,
    };
    assert_eq!(properties(&spec, "FindingEvent"), fields(event.clone()));
    let host = HostAnswer {
        host: detail,
        applications: vec![app],
        events: vec![event],
    };
    assert_eq!(properties(&spec, "Host"), fields(host));
    let mut violation = fields(sverka_collector::export::ViolationExport {
        host: "h".into(),
        host_id: 1,
        organization: "o".into(),
        organization_id: 1,
        app: "a".into(),
        app_name: "A".into(),
        status: "banned".into(),
        strength: "installed".into(),
        users: vec![],
        first_seen: String::new(),
        last_seen: String::new(),
        resolved_at: None,
        evidence: serde_json::Value::Null,
    });
    // Only present on resolved violations.
    violation.insert("resolved_at".into());
    assert_eq!(properties(&spec, "Violation"), violation);
}
