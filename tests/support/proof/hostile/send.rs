//! Sending the generated requests and counting the answers by class, forged
//! credentials or CSRF-less forms that were taken; and the valid reports full of
//! payloads that the pages and exports are read back with.

use anyhow::bail;
use std::collections::BTreeMap;

use super::generate::{
    broken_json, concrete_path, forged_cookie, forged_key, forged_token, form_body, gzip,
    hostile_report, hostile_report_with, hostile_string,
};
use super::{FORMULA_PAYLOADS, SCRIPT_PAYLOADS, Stage};
use crate::proof::isolation::web::{self, Answer, Session};

/// What the run counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub success: u64,
    pub client_errors: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    /// Requests the collector closed before answering (an oversize body cut off).
    pub closed: u64,
    pub forged_accepted: u64,
    pub csrf_accepted: u64,
    pub per_route: BTreeMap<(&'static str, &'static str), u64>,
    five_hundreds: Vec<String>,
    pub accepted: Vec<String>,
}

impl Tally {
    fn record(
        &mut self,
        route: (&'static str, &'static str),
        what: &str,
        answer: &anyhow::Result<Answer>,
    ) {
        self.sent += 1;
        *self.per_route.entry(route).or_default() += 1;
        match answer {
            Ok(answer) => match answer.status {
                429 => self.rate_limited += 1,
                400..=499 => self.client_errors += 1,
                500..=599 => {
                    self.server_errors += 1;
                    if self.five_hundreds.len() < 20 {
                        let text: String = answer.text().chars().take(200).collect();
                        eprintln!("hostile: {} for {what}: {text}", answer.status);
                        self.five_hundreds
                            .push(format!("{} {what}: {text}", answer.status));
                    }
                }
                _ => self.success += 1,
            },
            Err(_) => self.closed += 1,
        }
    }
}

/// A form or credential was taken: a success, or a redirect anywhere but sign-in.
fn accepted(answer: &anyhow::Result<Answer>) -> bool {
    match answer {
        Ok(answer) => {
            (200..300).contains(&answer.status)
                || (300..400).contains(&answer.status) && !answer.location.starts_with("/login")
        }
        Err(_) => false,
    }
}

/// Sends one generated request for `route`.
pub fn hostile_request(
    rng: &mut fastrand::Rng,
    stage: &mut Stage,
    route: (&'static str, &'static str),
    index: usize,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (method, template) = route;
    let base = stage.collector.url();
    let mut anonymous = if template == "/login" || template == "/api/v1/enroll" {
        // Sign-in and enrollment attempts come from many loopback addresses, so that
        // the per-address throttles leave most of them to the parsers.
        Session::from_address(
            &base,
            std::net::IpAddr::from([127, 0, 0, 2 + (index % 250) as u8]),
        )
    } else {
        Session::new(&base)
    };
    match template {
        "/api/v1/enroll" => {
            let valid = serde_json::json!({
                "secret": stage.secret, "machine_id": format!("enroll-{index}"),
                "hostname": "pc", "os_id": "astra", "os_name": "Astra", "agent_version": "1"
            });
            let valid = serde_json::to_vec(&valid).unwrap_or_default();
            let (body, encoding) = match rng.u8(..6) {
                0 => {
                    // Valid, with a hostile string in a field (a new host).
                    let mut value: serde_json::Value =
                        serde_json::from_slice(&valid).unwrap_or_default();
                    let fields = [
                        "hostname",
                        "machine_id",
                        "os_name",
                        "agent_version",
                        "os_id",
                        "secret",
                    ];
                    value[fields[rng.usize(..fields.len())]] =
                        serde_json::json!(hostile_string(rng));
                    (serde_json::to_vec(&value).unwrap_or_default(), None)
                }
                1 => (stage.gzip_bomb.clone(), Some("gzip")),
                2 => (gzip(&broken_json(rng, &valid)), Some("gzip")),
                3 => (
                    valid.clone(),
                    Some(["br", "deflate", "gzip, gzip", "identity;q=0"][rng.usize(..4)]),
                ),
                4 => (vec![b'{'; rng.usize(65 * 1024..200 * 1024)], None),
                _ => (broken_json(rng, &valid), None),
            };
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(encoding) = encoding {
                headers.push(("content-encoding", encoding.to_string()));
            }
            let answer = anonymous.send(method, template, &headers, Some(body));
            tally.record(route, "enroll", &answer);
        }
        "/api/v1/reports" => {
            let (host_id, key) = stage.keys[index % stage.keys.len()].clone();
            let forged = rng.u8(..6) == 0;
            let key = if forged { forged_key(rng, stage) } else { key };
            let mut headers = vec![
                ("authorization", format!("Bearer {key}")),
                ("content-type", "application/json".to_string()),
            ];
            let body = match rng.u8(..9) {
                0 => {
                    headers.push(("content-encoding", "gzip".to_string()));
                    stage.gzip_bomb.clone()
                }
                1 if index.is_multiple_of(25) => vec![b' '; 9 * 1024 * 1024],
                2 => {
                    headers.push(("content-encoding", "gzip".to_string()));
                    let mut bytes = gzip(&stage.valid_report);
                    bytes.truncate(bytes.len() / 2);
                    bytes
                }
                3 => {
                    // Valid with hostile strings: accepted, shown later.
                    hostile_report(rng, &format!("lab-pc-{host_id}"))
                }
                4 => {
                    // Replayed: the same report again (must be acknowledged once).
                    stage.valid_report.clone()
                }
                5 => {
                    // Another machine's report with this key.
                    let mut value: serde_json::Value =
                        serde_json::from_slice(&stage.valid_report).unwrap_or_default();
                    value["scan"]["host"]["machine_id"] = serde_json::json!("someone-else");
                    value["report_id"] = serde_json::json!(web::uuid_v4_like());
                    serde_json::to_vec(&value).unwrap_or_default()
                }
                _ => broken_json(rng, &stage.valid_report),
            };
            let answer = anonymous.send(method, template, &headers, Some(body));
            if forged && accepted(&answer) {
                tally.forged_accepted += 1;
                tally
                    .accepted
                    .push(format!("a report with the forged key {key:?}"));
            }
            tally.record(route, "report", &answer);
        }
        "/api/v1/federation/link" | "/api/v1/federation/figures" => {
            // A lower collector's routes: no link exists in the stage, so every
            // secret is forged (shaped like one, or a host key) and nothing may pass.
            let key = if rng.bool() {
                forged_key(rng, stage)
            } else {
                stage.keys[0].1.clone()
            };
            let mut headers = vec![
                ("authorization", format!("Bearer {key}")),
                ("content-type", "application/json".to_string()),
            ];
            let message = serde_json::json!({
                "protocol": 1, "message_id": hostile_string(rng),
                "generated_at": 1_800_000_000,
                "organizations": [{"key": "1", "parent": "1", "name": hostile_string(rng),
                                   "kind": "school", "expected_pcs": -5}],
                "current": [{"organization": "2", "enrolled": i64::MAX}]
            });
            let message = serde_json::to_vec(&message).unwrap_or_default();
            let body = match (method, rng.u8(..3)) {
                ("GET", _) => None,
                (_, 0) => {
                    headers.push(("content-encoding", "gzip".to_string()));
                    Some(stage.gzip_bomb.clone())
                }
                (_, 1) => Some(broken_json(rng, &message)),
                _ => Some(message),
            };
            let answer = anonymous.send(method, template, &headers, body);
            if accepted(&answer) {
                tally.forged_accepted += 1;
                tally
                    .accepted
                    .push(format!("{template} with the forged link secret {key:?}"));
            }
            tally.record(route, template, &answer);
        }
        "/api/v1/catalog" | "/healthz" => {
            let key = if rng.bool() {
                forged_key(rng, stage)
            } else {
                stage.keys[0].1.clone()
            };
            let headers = vec![
                ("authorization", format!("Bearer {key}")),
                (
                    "if-none-match",
                    hostile_string(rng).replace(['\r', '\n', '\0'], ""),
                ),
            ];
            let answer = anonymous.send(method, template, &headers, None);
            if template == "/api/v1/catalog" && key != stage.keys[0].1 && accepted(&answer) {
                tally.forged_accepted += 1;
                tally
                    .accepted
                    .push(format!("the catalog with the forged key {key:?}"));
            }
            tally.record(route, template, &answer);
        }
        // The OpenAPI documents are public: any credentials, or none, get the same
        // document.
        "/api/v1/openapi.json" | "/api/v1/dashboard/openapi.json" => {
            let headers = vec![(
                "authorization",
                format!("Bearer {}", forged_token(rng, stage)),
            )];
            let answer = anonymous.send(method, template, &headers, None);
            tally.record(route, template, &answer);
        }
        _ if template.starts_with("/api/v1/dashboard/") => {
            let path = concrete_path(rng, stage, template);
            let (token, forged) = if rng.u8(..3) == 0 {
                (stage.valid_token.clone(), false)
            } else {
                (forged_token(rng, stage), true)
            };
            let answer = anonymous.send(
                method,
                &path,
                &[("authorization", format!("Bearer {token}"))],
                None,
            );
            if forged && accepted(&answer) {
                tally.forged_accepted += 1;
                tally
                    .accepted
                    .push(format!("{path} with the forged token {token:?}"));
            }
            tally.record(route, &path, &answer);
        }
        _ => {
            let path = if template.contains('{') {
                concrete_path(rng, stage, template)
            } else {
                template.to_string()
            };
            // Who asks: the administrator, nobody, or a forged or replayed cookie.
            let who = rng.u8(..3);
            let cookie = match who {
                0 => stage.admin.cookie_header(),
                1 => String::new(),
                _ => forged_cookie(rng, stage),
            };
            let mut headers = vec![("cookie", cookie)];
            let answer = if method == "POST" {
                headers.push((
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                ));
                // The CSRF token: missing, wrong, or (for the administrator on forms that
                // change nothing dangerous) right, with hostile values.
                let safe = matches!(
                    template,
                    "/org/{id}/children"
                        | "/host/{id}/handled"
                        | "/org/{id}/secrets"
                        | "/catalog"
                        | "/catalog/entry"
                        | "/users"
                        | "/tokens"
                        | "/language"
                );
                let csrf_choice = rng.u8(..3);
                let csrf = match csrf_choice {
                    0 => None,
                    1 => Some(format!("{:064x}", rng.u128(..))),
                    _ if template == "/login" => {
                        let page = anonymous
                            .get("/login")
                            .ok()
                            .map(|page| page.text())
                            .unwrap_or_default();
                        web::csrf_of(&page)
                    }
                    _ if who == 0 && safe => Some(stage.admin_csrf.clone()),
                    _ => Some(String::new()),
                };
                let with_valid_token =
                    csrf_choice == 2 && (template == "/login" || who == 0 && safe);
                let body = form_body(rng, template, csrf.as_deref());
                if template == "/login" {
                    // The login form's own CSRF cookie comes with the page.
                    let cookie = anonymous.cookie_header();
                    headers[0].1 = cookie;
                }
                let answer = anonymous.send(method, &path, &headers, Some(body));
                if !with_valid_token && accepted(&answer) {
                    tally.csrf_accepted += 1;
                    tally
                        .accepted
                        .push(format!("POST {path} without a valid CSRF token"));
                }
                if who == 2 && template != "/login" && accepted(&answer) {
                    tally.forged_accepted += 1;
                    tally
                        .accepted
                        .push(format!("POST {path} with a forged cookie"));
                }
                answer
            } else {
                let answer = anonymous.send(method, &path, &headers, None);
                let public = matches!(template, "/login" | "/static/app.css" | "/static/app.js");
                if who == 2 && !public && accepted(&answer) {
                    tally.forged_accepted += 1;
                    tally
                        .accepted
                        .push(format!("GET {path} with a forged cookie"));
                }
                answer
            };
            tally.record(route, &format!("{method} {path}"), &answer);
        }
    }
    Ok(())
}

/// Hosts named after each payload, with reports full of payloads: `(host id, name)`.
pub fn report_hostile_hosts(stage: &mut Stage) -> anyhow::Result<Vec<(i64, String)>> {
    let http = web::http_client();
    let base = stage.collector.url();
    let mut hosts = Vec::new();
    let names: Vec<&str> = SCRIPT_PAYLOADS
        .iter()
        .chain(FORMULA_PAYLOADS.iter())
        .copied()
        .collect();
    for (index, name) in names.iter().enumerate() {
        // Host names with control characters are refused at enrollment (a 4xx); the
        // payload then goes in a plain-named host's other strings.
        let host = match web::enroll(
            &http,
            &base,
            &stage.secret,
            &format!("payload-machine-{index}"),
            name,
        ) {
            Ok(host) => host,
            Err(_) => web::enroll(
                &http,
                &base,
                &stage.secret,
                &format!("payload-machine-{index}"),
                &format!("payload-pc-{index}"),
            )?,
        };
        let mut turn = index;
        let all: Vec<&str> = SCRIPT_PAYLOADS
            .iter()
            .chain(FORMULA_PAYLOADS.iter())
            .copied()
            .collect();
        let mut payload = || {
            turn += 1;
            all[turn % all.len()].to_string()
        };
        let body = hostile_report_with(&host.hostname, &mut payload);
        let (status, text) = web::send_report(&http, &base, &host.key, body)?;
        if status != 200 {
            bail!("a valid report full of payloads was refused: {status} {text}");
        }
        hosts.push((host.id, host.hostname.clone()));
    }
    Ok(hosts)
}
