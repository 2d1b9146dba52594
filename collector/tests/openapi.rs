//! `docs/agent-api.openapi.json` must describe the API the code serves: the same
//! paths, and for every wire type exactly the fields it serialises.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeSet;
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
    for path in [ENROLL_PATH, REPORTS_PATH, CATALOG_PATH, "/healthz"] {
        assert!(paths.contains(path), "{path} is missing from the spec");
    }
    assert_eq!(
        paths.len(),
        4,
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
