//! What the hostile part sends: hostile strings, JSON broken or mistyped in many ways,
//! gzip bombs, forged keys, cookies and tokens, route paths with hostile ids, hostile
//! form bodies, and valid reports whose every agent-supplied string is a payload.

use std::io::Write as _;

use super::{FORMULA_PAYLOADS, ODD_IDS, SCRIPT_PAYLOADS, SQL_PAYLOADS, Stage, TRAVERSALS};
use crate::proof::isolation::web;

pub fn gzip_zeros(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..size / chunk.len() {
        let _ = encoder.write_all(&chunk);
    }
    encoder.finish().unwrap_or_default()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A hostile string of every kind.
pub fn hostile_string(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..7) {
        0 => SCRIPT_PAYLOADS[rng.usize(..SCRIPT_PAYLOADS.len())].to_string(),
        1 => FORMULA_PAYLOADS[rng.usize(..FORMULA_PAYLOADS.len())].to_string(),
        2 => SQL_PAYLOADS[rng.usize(..SQL_PAYLOADS.len())].to_string(),
        3 => TRAVERSALS[rng.usize(..TRAVERSALS.len())].to_string(),
        4 => "A".repeat(rng.usize(256..20_000)),
        5 => "\u{202e}\u{0}\u{feff}😀 Ω \\u0000 %s%n {{7*7}} ${jndi:ldap://x}".to_string(),
        _ => (0..rng.usize(0..64)).map(|_| rng.char(..)).collect(),
    }
}

/// A JSON body broken in one of many ways, starting from a valid one.
pub fn broken_json(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
    match rng.u8(..11) {
        0 => valid[..rng.usize(..valid.len().max(1))].to_vec(),
        1 => b"{\"report_id\": ".to_vec(),
        2 => {
            let depth = rng.usize(100..100_000);
            let mut body = "[".repeat(depth).into_bytes();
            body.extend("]".repeat(depth).into_bytes());
            body
        }
        3 => {
            let depth = rng.usize(20..5_000);
            let mut body = Vec::new();
            for _ in 0..depth {
                body.extend(b"{\"a\":");
            }
            body.extend(b"1");
            body.extend("}".repeat(depth).into_bytes());
            body
        }
        4 => {
            let mut body = b"{\"report_id\":\"".to_vec();
            body.extend([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            body.extend(b"\"}");
            body
        }
        5 => {
            let mut body = valid.to_vec();
            for _ in 0..rng.usize(1..8) {
                let at = rng.usize(..body.len().max(1));
                if at < body.len() {
                    body[at] = rng.u8(..);
                }
            }
            body
        }
        6 => wrong_types(rng, valid),
        7 => {
            // A huge array of small items.
            let items = rng.usize(50_001..120_000);
            let mut body = b"{\"report_id\":\"x\",\"evidence\":[".to_vec();
            for index in 0..items {
                if index > 0 {
                    body.push(b',');
                }
                body.extend(b"{}");
            }
            body.extend(b"]}");
            body
        }
        8 => {
            // A huge string.
            let mut value: serde_json::Value = serde_json::from_slice(valid).unwrap_or_default();
            value["scan"]["host"]["hostname"] =
                serde_json::Value::String("x".repeat(rng.usize(9_000..2_000_000)));
            serde_json::to_vec(&value).unwrap_or_default()
        }
        9 => b"null".to_vec(),
        _ => (0..rng.usize(0..2048)).map(|_| rng.u8(..)).collect(),
    }
}

/// A valid JSON body with one value replaced by another type.
fn wrong_types(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(valid) else {
        return valid.to_vec();
    };
    let mut paths = Vec::new();
    collect_paths(&value, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return valid.to_vec();
    }
    let path = &paths[rng.usize(..paths.len())];
    let replacement = match rng.u8(..7) {
        0 => serde_json::json!(null),
        1 => serde_json::json!(-1),
        2 => serde_json::json!(1.5e308),
        3 => serde_json::json!(true),
        4 => serde_json::json!([]),
        5 => serde_json::json!({"$ne": 1}),
        _ => serde_json::json!(hostile_string(rng)),
    };
    let mut target = &mut value;
    for key in path {
        target = match key {
            PathKey::Field(name) => &mut target[name.as_str()],
            PathKey::Index(index) => &mut target[*index],
        };
    }
    *target = replacement;
    serde_json::to_vec(&value).unwrap_or_default()
}

enum PathKey {
    Field(String),
    Index(usize),
}

fn collect_paths(value: &serde_json::Value, at: &mut Vec<PathKey>, out: &mut Vec<Vec<PathKey>>) {
    let copy = |at: &Vec<PathKey>| {
        at.iter()
            .map(|key| match key {
                PathKey::Field(name) => PathKey::Field(name.clone()),
                PathKey::Index(index) => PathKey::Index(*index),
            })
            .collect::<Vec<_>>()
    };
    if !at.is_empty() {
        out.push(copy(at));
    }
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                at.push(PathKey::Field(key.clone()));
                collect_paths(child, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate().take(4) {
                at.push(PathKey::Index(index));
                collect_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// A forged credential of every kind: random, injected, a real host's id with a
/// wrong secret.
pub fn forged_key(rng: &mut fastrand::Rng, stage: &Stage) -> String {
    match rng.u8(..6) {
        0 => format!("{}.{}", stage.keys[0].0, "0".repeat(64)),
        1 => SQL_PAYLOADS[rng.usize(..SQL_PAYLOADS.len())].to_string(),
        2 => format!("{}.{}", i64::MAX, "f".repeat(64)),
        3 => format!("-1.{}", "a".repeat(64)),
        4 => {
            // A real key with its last character changed.
            let mut key = stage.keys[rng.usize(..stage.keys.len())].1.clone();
            let last = if key.ends_with('0') { '1' } else { '0' };
            key.pop();
            key.push(last);
            key
        }
        _ => "x".repeat(rng.usize(0..5000)),
    }
}

pub fn forged_cookie(rng: &mut fastrand::Rng, stage: &Stage) -> String {
    match rng.u8(..6) {
        0 => stage.logged_out_cookie.clone(),
        1 => format!("sverka_session={}", "0".repeat(64)),
        2 => format!(
            "sverka_session={}",
            SQL_PAYLOADS[rng.usize(..SQL_PAYLOADS.len())]
        ),
        3 => format!("sverka_session={}", "f".repeat(rng.usize(0..9000))),
        4 => "sverka_session=; sverka_session=../../etc/passwd".to_string(),
        _ => format!("sverka_session={:064x}", rng.u128(..)),
    }
}

pub fn forged_token(rng: &mut fastrand::Rng, stage: &Stage) -> String {
    match rng.u8(..4) {
        0 => stage.revoked_token.clone(),
        1 => format!("sverka_pat_1.{}", "0".repeat(64)),
        2 => format!(
            "sverka_pat_{}",
            SQL_PAYLOADS[rng.usize(..SQL_PAYLOADS.len())]
        ),
        _ => {
            let mut token = stage.valid_token.clone();
            token.pop();
            token.push('z');
            token
        }
    }
}

/// A path for a route template with hostile or real ids.
pub fn concrete_path(rng: &mut fastrand::Rng, stage: &Stage, template: &str) -> String {
    let id = |rng: &mut fastrand::Rng| -> String {
        match rng.u8(..4) {
            0 => TRAVERSALS[rng.usize(..TRAVERSALS.len())].to_string(),
            1 => ODD_IDS[rng.usize(..ODD_IDS.len())].to_string(),
            2 => stage.region.to_string(),
            _ => stage.keys[rng.usize(..stage.keys.len())].0.to_string(),
        }
    };
    let mut path = template
        .replace("{id}", &id(rng))
        .replace("{secret}", &id(rng));
    let formats = ["csv", "xlsx", "json", "..%2f..%2fetc", "CSV", "xlsx%00.csv"];
    path = path.replace("{format}", formats[rng.usize(..formats.len())]);
    let tables = [
        "violations",
        "silent",
        "clean",
        "findings",
        "inventory",
        "timeline",
        "../users",
        "%3Cscript%3E",
    ];
    path = path.replace("{table}", tables[rng.usize(..tables.len())]);
    if rng.u8(..3) == 0 {
        let queries = [
            "?lang=%3Cscript%3Ealert(1)%3C/script%3E",
            "?sort=1%27%20OR%20%271%27=%271",
            "?page=-1&page=99999999999999999999",
            "?week=2026-W99",
            "?back=//evil.example/",
            "?%ff%fe=%c3%28",
        ];
        path.push_str(queries[rng.usize(..queries.len())]);
    }
    path
}

/// A hostile form body for a route.
pub fn form_body(rng: &mut fastrand::Rng, template: &str, csrf: Option<&str>) -> Vec<u8> {
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(csrf) = csrf {
        fields.push(("csrf".into(), csrf.into()));
    }
    let names: &[&str] = match template {
        "/login" => &["login", "password", "lang"],
        "/language" => &["language", "back"],
        "/org/{id}/children" => &["name", "kind", "expected_pcs"],
        "/host/{id}/handled" => &["app_id", "note"],
        "/org/{id}/secrets" => &["days"],
        "/catalog" => &["overrides"],
        "/catalog/entry" => &["id", "name", "status", "signature_kind", "signature"],
        "/users" => &["login", "password", "role", "organization_id"],
        "/tokens" => &["name"],
        _ => &["x"],
    };
    for name in names {
        fields.push((name.to_string(), hostile_string(rng)));
    }
    if template == "/catalog" && rng.bool() {
        fields.push((
            "overrides".into(),
            format!(
                "[[app]]\nid = \"x{}\"\nname = \"{}\"\nstatus = \"banned\"\n[app.signatures]\npackages = [\"{}\"]\n",
                rng.u32(..),
                SCRIPT_PAYLOADS[0].replace('"', "'"),
                "re:(a+)+$"
            ),
        ));
    }
    let mut body: Vec<u8> = fields
        .iter()
        .map(|(name, value)| format!("{}={}", web::form_escape(name), web::form_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    if rng.u8(..8) == 0 {
        body.extend(b"&%ff%fe=%c3%28&=&&a");
    }
    body
}

/// A valid report whose every agent-supplied string is a payload.
pub fn hostile_report(rng: &mut fastrand::Rng, hostname: &str) -> Vec<u8> {
    let mut payload = || {
        let all: Vec<&str> = SCRIPT_PAYLOADS
            .iter()
            .chain(FORMULA_PAYLOADS.iter())
            .chain(SQL_PAYLOADS.iter())
            .copied()
            .collect();
        all[rng.usize(..all.len())].to_string()
    };
    hostile_report_with(hostname, &mut payload)
}

pub fn hostile_report_with(hostname: &str, payload: &mut dyn FnMut() -> String) -> Vec<u8> {
    use sverka_shared::{Observation, Observed, Scope, Strength};
    let inventory = vec![
        web::package("telegram-desktop", &payload(), &payload(), Some(&payload())),
        web::package(&payload(), &payload(), &payload(), None),
        Observation {
            observed: Observed::DesktopEntry {
                file_name: format!("{}.desktop", payload()),
                name: Some(payload()),
                program: Some(payload()),
                wm_class: Some(payload()),
            },
            path: Some(payload()),
            user: Some(payload()),
            scope: Scope::User,
            strength: Strength::Installed,
        },
        Observation {
            observed: Observed::UninstallEntry {
                key_name: payload(),
                display_name: format!("Telegram Desktop {}", payload()),
                display_version: Some(payload()),
                publisher: Some(payload()),
                upgrade_code: Some(payload()),
                hive: payload(),
            },
            path: Some(payload()),
            user: None,
            scope: Scope::Machine,
            strength: Strength::Installed,
        },
    ];
    let evidence = vec![Observation {
        observed: Observed::Process {
            pid: 4242,
            name: "Telegram".into(),
            executable: Some(payload()),
            version_info: None,
        },
        path: Some(payload()),
        user: Some(payload()),
        scope: Scope::User,
        strength: Strength::Running,
    }];
    web::report_body(hostname, &payload(), &inventory, evidence)
}
