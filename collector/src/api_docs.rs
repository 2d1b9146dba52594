//! The OpenAPI documents of the collector's two JSON APIs, generated from the code:
//! the routes come from the same [`OpenApiRouter`]s the server serves
//! ([`crate::server::agent_api_routes`], [`crate::server::dashboard_api_routes`]),
//! each operation from its handler's `#[utoipa::path]`, and every schema from the
//! wire type it describes (`utoipa::ToSchema`). The collector serves each document
//! ([`AGENT_API_DOCUMENT_PATH`], [`DASHBOARD_API_DOCUMENT_PATH`]) and
//! `sverka-collector openapi` prints it; `docs/*.openapi.json` hold the same bytes
//! (a test compares them).
//!
//! Here: the documents' titles and security schemes, and the error answers that many
//! operations share ([`Unauthorized`], [`BodyRefused`], [`NotFoundById`],
//! [`RateLimited`], [`Unavailable`]), each a `sverka_shared::protocol::ApiError` in JSON.

use std::collections::BTreeMap;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, ResponseBuilder, response::Response,
};
use utoipa::{IntoResponses, Modify};

/// Where the collector serves the agent API's document.
pub const AGENT_API_DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where the collector serves the dashboard API's document.
pub const DASHBOARD_API_DOCUMENT_PATH: &str = "/api/v1/dashboard/openapi.json";

/// The agent API's document: what agents and lower collectors send.
pub fn agent_api() -> OpenApi {
    crate::server::agent_api_routes().split_for_parts().1
}

/// The dashboard API's document: the read-only JSON over the dashboard's data.
pub fn dashboard_api() -> OpenApi {
    crate::server::dashboard_api_routes().split_for_parts().1
}

/// A document as the collector serves it and `docs/` keeps it: pretty JSON and a
/// final newline.
pub fn to_json(document: &OpenApi) -> String {
    let mut text = document
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

/// The agent API's title, description and security schemes; its paths come from
/// the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Sverka agent API",
        version = "1",
        description = "What sverka-agent sends to sverka-collector, and what a lower (municipal or regional) collector holding a link secret sends to its upstream (`/api/v1/federation/...`). Every body is JSON in UTF-8; a request body may be sent with `Content-Encoding: gzip`. Every error is an `ApiError` in JSON with a 4xx or 5xx status; 429 and 503 carry `Retry-After` in seconds, and the agent keeps its report in its spool until a 2xx acknowledgement; every 401 carries `WWW-Authenticate: Bearer`. A request's headers must arrive within 10 s and its body within 30 s (408). Enrollment is throttled per client address (429) and limited per organization (403); a report waits for an upload slot, of which one host key or client address holds at most 16 at once (429). The limits given here are the collector's defaults (`[limits]` in collector.toml)."
    ),
    modifiers(&AgentSecurity),
    components(schemas(sverka_shared::protocol::ApiError))
)]
#[derive(Debug)]
pub struct AgentApiInfo;

/// The dashboard API's title, description and security scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Sverka dashboard API",
        version = "1",
        description = "Read-only JSON over the dashboard's figures, for scripts and other systems. A personal API token (created on the dashboard's Tokens page) acts as its user: it sees the organizations that user sees, and anything outside them answers 404 as if it did not exist. Every error is an `ApiError` in JSON; every 401 carries `WWW-Authenticate: Bearer`. Times are Unix seconds (UTC) unless a field says RFC 3339."
    ),
    modifiers(&DashboardSecurity),
    components(schemas(sverka_shared::protocol::ApiError))
)]
#[derive(Debug)]
pub struct DashboardApiInfo;

fn bearer(description: &str) -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(description))
            .build(),
    )
}

#[derive(Debug)]
struct AgentSecurity;

impl Modify for AgentSecurity {
    fn modify(&self, document: &mut OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "hostKey",
            bearer("The host key from enrollment: `<host id>.<64 hex digits>`"),
        );
        components.add_security_scheme(
            "linkSecret",
            bearer(
                "A link secret from the upstream's `sverka-collector link create`: `<link id>.<64 hex digits>`",
            ),
        );
    }
}

#[derive(Debug)]
struct DashboardSecurity;

impl Modify for DashboardSecurity {
    fn modify(&self, document: &mut OpenApi) {
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "apiToken",
                bearer("A personal API token: `sverka_pat_<id>.<64 hex digits>`"),
            );
    }
}

/// An error answer: an `ApiError` in JSON, with the headers named.
fn error_answer(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ApiError")))
            .build(),
    );
    for (name, about) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String)
                        .build(),
                ))
                .description(Some(*about))
                .build(),
        );
    }
    RefOr::T(response.build())
}

fn answers(list: &[(&str, RefOr<Response>)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, response)| (status.to_string(), response.clone()))
        .collect()
}

const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before trying again");

/// 401: no credentials, or not valid ones.
#[derive(Debug)]
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "401",
            error_answer(
                "No credentials, or not valid ones",
                &[(
                    "WWW-Authenticate",
                    "The scheme the server wants: `Bearer realm=\"sverka\"`",
                )],
            ),
        )])
    }
}

/// What a body the collector reads itself can be refused for, before and while it is
/// read: not JSON or not gzip (400), too slow (408), too large (413), an encoding
/// other than identity or gzip (415), and a shape or a value the server does not
/// take (422; the message names it).
#[derive(Debug)]
pub struct BodyRefused;

impl IntoResponses for BodyRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            (
                "400",
                error_answer("The body is not JSON, or not valid gzip", &[]),
            ),
            (
                "408",
                error_answer("The body did not arrive within the time allowed", &[]),
            ),
            (
                "413",
                error_answer("The body is larger than allowed (also once unzipped)", &[]),
            ),
            (
                "415",
                error_answer("A Content-Encoding other than identity or gzip", &[]),
            ),
            (
                "422",
                error_answer(
                    "The body is JSON but not what this operation takes; the message names the first problem",
                    &[],
                ),
            ),
        ])
    }
}

/// The answers of an operation on one object named by its id in the path: 400 when
/// the id is not a whole number, 404 when no such object is within the caller's scope
/// (one outside it answers the same, so its existence does not leak).
#[derive(Debug)]
pub struct NotFoundById;

impl IntoResponses for NotFoundById {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[
            ("400", error_answer("The id is not a whole number", &[])),
            (
                "404",
                error_answer(
                    "No such object, or not within the token's scope (the same answer)",
                    &[],
                ),
            ),
        ])
    }
}

/// 429: too many requests from this client for now.
#[derive(Debug)]
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "429",
            error_answer("Too many requests for now", &[RETRY_AFTER]),
        )])
    }
}

/// 503: the database cannot answer now (locked, full or gone), or no slot is free.
#[derive(Debug)]
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "503",
            error_answer("The collector cannot answer this now", &[RETRY_AFTER]),
        )])
    }
}
