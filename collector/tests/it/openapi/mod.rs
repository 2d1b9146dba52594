//! The OpenAPI documents are generated from the code (`sverka_collector::api_docs`):
//! `docs/*.openapi.json` and what the collector serves are those same bytes, every
//! documented operation is served (and nothing else under the APIs), and for every
//! wire type the schema's properties are exactly the fields it serialises (serde
//! attributes a schema could miss). `schemathesis` runs the third-party fuzzer against
//! both documents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod schemathesis;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use std::collections::BTreeSet;
use sverka_collector::api_docs;
use sverka_shared::federation::{FIGURES_PATH, LINK_PATH};
use sverka_shared::protocol::{
    ApiError, CATALOG_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse, REPORTS_PATH, ReportAck,
};
use tower::ServiceExt;

const AGENT_DOCUMENT: &str = include_str!("../../../../docs/agent-api.openapi.json");
const DASHBOARD_DOCUMENT: &str = include_str!("../../../../docs/dashboard-api.openapi.json");

fn spec() -> Value {
    serde_json::from_str(AGENT_DOCUMENT).expect("valid JSON")
}

fn dashboard_spec() -> Value {
    serde_json::from_str(DASHBOARD_DOCUMENT).expect("valid JSON")
}

/// A schema's properties, with those of the schemas it is made of (`allOf`, as a
/// flattened field makes it).
fn properties(spec: &Value, schema: &str) -> BTreeSet<String> {
    let schema_value = &spec["components"]["schemas"][schema];
    let mut found: BTreeSet<String> = schema_value["properties"]
        .as_object()
        .map(|fields| fields.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema_value["allOf"].as_array().into_iter().flatten() {
        match part["$ref"].as_str() {
            Some(reference) => {
                let name = reference.rsplit('/').next().expect("a schema name");
                found.extend(properties(spec, name));
            }
            None => found.extend(
                part["properties"]
                    .as_object()
                    .expect("an allOf part with properties")
                    .keys()
                    .cloned(),
            ),
        }
    }
    assert!(!found.is_empty(), "schema {schema} has properties");
    found
}

#[test]
fn the_documents_in_docs_are_the_generated_ones() {
    for (file, generated, which) in [
        (AGENT_DOCUMENT, api_docs::agent_api(), "agent"),
        (DASHBOARD_DOCUMENT, api_docs::dashboard_api(), "dashboard"),
    ] {
        assert!(
            file == api_docs::to_json(&generated),
            "docs/{which}-api.openapi.json is not what the code generates: run \
             `cargo run -p sverka-collector -- openapi {which} > docs/{which}-api.openapi.json`"
        );
    }
}

/// Every documented operation answers on its path and method (with no credentials:
/// never the "no such endpoint" of a route that does not exist), the documents
/// themselves are served byte for byte, and a path beside them is not found.
#[tokio::test]
async fn the_collector_serves_the_documents_and_every_documented_operation() {
    let harness = crate::dashboard::harness().await;
    let send = |method: Method, path: String| {
        let app = harness.app.clone();
        async move {
            let answer = app
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(path)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from("{}"))
                        .expect("request"),
                )
                .await
                .expect("answer");
            let status = answer.status();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
                .await
                .expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for (served_at, file) in [
        (api_docs::AGENT_API_DOCUMENT_PATH, AGENT_DOCUMENT),
        (api_docs::DASHBOARD_API_DOCUMENT_PATH, DASHBOARD_DOCUMENT),
    ] {
        let (status, body) = send(Method::GET, served_at.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{served_at}");
        assert!(body == file, "{served_at} serves other bytes than docs/");
        let document: Value = serde_json::from_str(file).expect("JSON");
        let operations = document["paths"].as_object().expect("paths");
        assert!(
            operations.len() >= 6,
            "{served_at}: {} paths",
            operations.len()
        );
        for (path, methods) in operations {
            for method in methods.as_object().expect("operations").keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                let (status, body) = send(method.clone(), path.replace("{id}", "1")).await;
                assert!(
                    status != StatusCode::NOT_FOUND || !body.contains("no such endpoint"),
                    "{method} {path} is documented but not served: {status} {body}"
                );
                assert!(
                    !status.is_server_error(),
                    "{method} {path}: {status} {body}"
                );
            }
        }
    }
    let (status, body) = send(Method::GET, "/api/v1/not-documented".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("no such endpoint"), "{body}");
}

#[test]
fn the_agent_document_names_the_paths_the_agent_uses() {
    let spec = spec();
    let paths: BTreeSet<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let used: BTreeSet<&str> = [
        ENROLL_PATH,
        REPORTS_PATH,
        CATALOG_PATH,
        "/healthz",
        LINK_PATH,
        FIGURES_PATH,
    ]
    .into_iter()
    .collect();
    assert_eq!(paths, used);
}

/// Required fields are marked: a response missing one fails a schema check.
#[test]
fn the_documents_mark_required_fields() {
    let spec = spec();
    let required = |spec: &Value, schema: &str| -> BTreeSet<String> {
        spec["components"]["schemas"][schema]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has required fields"))
            .iter()
            .map(|name| name.as_str().expect("a name").to_string())
            .collect()
    };
    assert_eq!(
        required(&spec, "ReportAck"),
        ["report_id".to_string()].into_iter().collect()
    );
    assert!(required(&spec, "ScanReport").contains("findings"));
    let dashboard = dashboard_spec();
    // Always sent, sometimes null: required and nullable.
    assert!(required(&dashboard, "HostApp").contains("resolved_at"));
    assert!(required(&dashboard, "HostDetail").contains("last_seen_at"));
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
    assert_eq!(properties(&spec, "HostAnswer"), fields(host));
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
    assert_eq!(properties(&spec, "ViolationExport"), violation);
}
