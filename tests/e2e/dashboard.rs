//! The dashboard as people use it: a real collector on 127.0.0.1, real agents that
//! enrolled and reported, and a headless Chromium driven over WebDriver. Signs in,
//! reads the overview against what the agents reported, opens a school and a PC,
//! exports CSV and XLSX and reads them back, switches the language, is refused another
//! school's pages, and sees an agent's `<img onerror>` host name as text. Screenshots
//! of the main pages go to `target/test-artifacts/dashboard-*.png`.

use std::io::Cursor;
use sverka_tests::browser::Browser;
use sverka_tests::real_collector::Collector;
use sverka_tests::{FixtureRoot, run_agent};
use tempfile::TempDir;

pub(crate) const PASSWORD: &str = "correct horse battery staple";
const XSS_HOST: &str = "<img src=x onerror=alert(1)>";
pub(crate) const TELEGRAM: (&str, &str, &str) =
    ("telegram-desktop", "4.6.5+ds-2", "install ok installed");
const MAX: (&str, &str, &str) = ("max", "25.10.1", "install ok installed");
pub(crate) const BASH: (&str, &str, &str) = ("bash", "5.2.15-2", "install ok installed");

/// Enrolls a PC image and sends one report.
pub(crate) fn report(
    collector: &Collector,
    secret: &str,
    machine: &str,
    hostname: &str,
    packages: &[(&str, &str, &str)],
) -> TempDir {
    let root = FixtureRoot::new();
    root.machine_id(&format!("{machine}-00000000000000000000000000"))
        .hostname(hostname)
        .user("teacher", 1000)
        .dpkg(packages);
    enroll_and_report(collector, secret, root.path())
}

/// Enrolls the machine under `root` (an image of a PC) with `secret` and sends one
/// report of it; returns the agent's state folder.
pub(crate) fn enroll_and_report(
    collector: &Collector,
    secret: &str,
    root: &std::path::Path,
) -> TempDir {
    let state = tempfile::tempdir().expect("state");
    let state_dir = state.path().display().to_string();
    let root_dir = root.display().to_string();
    let run = run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--allow-http",
        "--secret",
        secret,
        "--state-dir",
        &state_dir,
        "--root",
        &root_dir,
    ]);
    assert_eq!(run.code, 0, "enroll: {}", run.stderr);
    let run = run_agent(&[
        "run",
        "--once",
        "--attempts",
        "2",
        "--retry-base",
        "100ms",
        "--retry-cap",
        "200ms",
        "--state-dir",
        &state_dir,
        "--root",
        &root_dir,
    ]);
    assert_eq!(run.code, 0, "run: {}", run.stderr);
    state
}

/// The rows of the page's first data table (body and footer), cell texts trimmed.
fn table_rows(browser: &Browser, table: &str) -> Vec<Vec<String>> {
    let script = format!(
        "return Array.from(document.querySelectorAll('{table} tbody tr, {table} tfoot tr'))\
         .map(r => Array.from(r.cells).map(c => c.textContent.trim()));"
    );
    serde_json::from_value(browser.execute(&script)).expect("rows")
}

/// Downloads a URL with the browser's own session (an export link's target).
fn download(browser: &Browser, path: &str) -> (u64, String, Vec<u8>) {
    let script = format!(
        "var x = new XMLHttpRequest(); x.open('GET', '{path}', false);\
         x.overrideMimeType('text/plain; charset=x-user-defined'); x.send();\
         var s = x.responseText, out = [];\
         for (var i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 255);\
         return [x.status, x.getResponseHeader('content-type') || '', out];"
    );
    let value = browser.execute(&script);
    let status = value[0].as_u64().expect("status");
    let content_type = value[1].as_str().unwrap_or_default().to_string();
    let bytes = value[2]
        .as_array()
        .expect("bytes")
        .iter()
        .map(|byte| byte.as_u64().unwrap_or(0) as u8)
        .collect();
    (status, content_type, bytes)
}

pub(crate) fn sign_in(browser: &Browser, url: &str, login: &str) {
    browser.goto(&format!("{url}/login"));
    browser.fill("#login", login);
    browser.fill("#password", PASSWORD);
    browser.click("#sign-in");
    browser.wait_for("location.pathname !== '/login'");
}

#[test]
fn people_use_the_dashboard_in_a_browser() {
    let collector = Collector::start();
    let url = collector.url();
    let region = collector.add_org("Ставропольский край", "region", None);
    let school_a = collector.add_org("Школа №1", "school", Some(region));
    let school_b = collector.add_org("Школа №2", "school", Some(region));
    // Time zones from the CLI: a bad name is refused; the region's own zone is the
    // default one spelled out, so the page's dates stay as the agents' reports expect.
    let bad_zone = collector.cli(&[
        "org",
        "set",
        "--org",
        &region.to_string(),
        "--time-zone",
        "Mars/Olympus",
    ]);
    assert_ne!(bad_zone.code, 0, "an unknown time zone is refused");
    assert!(
        collector
            .cli_ok(&[
                "org",
                "set",
                "--org",
                &region.to_string(),
                "--time-zone",
                "Europe/Moscow",
            ])
            .ends_with("time zone Europe/Moscow")
    );
    let bad_new = collector.cli(&[
        "org",
        "add",
        "--name",
        "Школа на Марсе",
        "--parent",
        &region.to_string(),
        "--time-zone",
        "Mars/Olympus",
    ]);
    assert_ne!(bad_new.code, 0, "an unknown time zone is refused");
    let listed = collector.cli_ok(&["org", "list"]);
    assert!(
        listed.starts_with(&format!(
            "{region} Ставропольский край (region, 0 PCs expected, Europe/Moscow)"
        )),
        "{listed}"
    );
    assert!(!listed.contains("Марсе"), "{listed}");
    collector.add_user("admin", "administrator", PASSWORD, None);
    collector.add_user("school1", "school_admin", PASSWORD, Some(school_a));

    let secret_a = collector.secret(school_a);
    let secret_b = collector.secret(school_b);
    let _pcs = [
        report(&collector, &secret_a, "a1", XSS_HOST, &[TELEGRAM, BASH]),
        report(&collector, &secret_a, "a2", "kab-12-pc-02", &[MAX, BASH]),
        report(&collector, &secret_a, "a3", "kab-12-pc-03", &[BASH]),
        report(&collector, &secret_b, "b1", "b-pc-01", &[TELEGRAM, MAX]),
    ];
    let violations = collector.violations(region, false);
    let host_of = |name: &str| {
        violations
            .as_array()
            .expect("violations")
            .iter()
            .find(|row| row["host"] == name)
            .and_then(|row| row["host_id"].as_i64())
            .unwrap_or_else(|| panic!("{name} has a violation: {violations}"))
    };
    let (xss_host, host_b) = (host_of(XSS_HOST), host_of("b-pc-01"));

    let browser = Browser::start();
    browser.goto(&format!("{url}/login"));
    browser.screenshot("dashboard-01-login");
    sign_in(&browser, &url, "admin");

    // The overview: one row per school, the numbers the agents reported.
    assert!(
        browser.current_url().ends_with(&format!("/org/{region}")),
        "{}",
        browser.current_url()
    );
    assert!(browser.text("h1").contains("Ставропольский край"));
    let rows = table_rows(&browser, &format!("#overview-{region}"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Organization, expected, enrolled, reported, silent, with banned, of them silent,
    // with approved, approved %.
    assert_eq!(
        rows[0][..9],
        ["Школа №1", "0", "3", "3", "0", "1", "0", "1", "33,3"],
        "{rows:?}"
    );
    assert_eq!(
        rows[1][..9],
        ["Школа №2", "0", "1", "1", "0", "1", "0", "1", "100,0"],
        "{rows:?}"
    );
    assert_eq!(
        rows[2][..9],
        ["Итого", "0", "4", "4", "0", "2", "0", "2", "50,0"],
        "{rows:?}"
    );
    browser.screenshot("dashboard-02-overview");

    // Exports of the overview, downloaded by clicking their links and read back.
    browser.click(&format!("a[href='/org/{region}/export/csv']"));
    let csv_file = browser.wait_for_download(".csv");
    let csv = String::from_utf8(std::fs::read(&csv_file).expect("read the CSV")).expect("UTF-8");
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert!(
        lines[0].starts_with("Организация;Ожидается ПК;Подключено;"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("Школа №1;0;3;3;0;1;0;1;33,3"),
        "{}",
        lines[1]
    );
    // The CLI's violations CSV is the worklist page's CSV, the same text.
    let answer = browser.execute(&format!(
        "var x = new XMLHttpRequest(); x.open('GET', '/org/{region}/worklist/export/csv', false);\
         x.send(); return [x.status, x.responseText];"
    ));
    assert_eq!(answer[0], 200, "{answer}");
    // The page's text as the browser decodes it (UTF-8, the BOM taken off).
    let page_csv = answer[1]
        .as_str()
        .expect("the CSV's text")
        .trim()
        .to_string();
    let cli_csv = collector.cli_ok(&[
        "report",
        "violations",
        "--org",
        &region.to_string(),
        "--format",
        "csv",
    ]);
    assert_eq!(page_csv, cli_csv.trim_start_matches('\u{feff}'));
    assert!(cli_csv.starts_with("\u{feff}Компьютер;Школа;"), "{cli_csv}");
    assert!(cli_csv.contains("b-pc-01;Школа №2;Telegram"), "{cli_csv}");
    browser.click(&format!("a[href='/org/{region}/export/xlsx']"));
    let xlsx = std::fs::read(browser.wait_for_download(".xlsx")).expect("read the XLSX");
    use calamine::{Data, Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx)).expect("an XLSX workbook");
    let sheet = workbook
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("cells");
    let cells: Vec<Vec<Data>> = sheet.rows().map(|row| row.to_vec()).collect();
    // A title block of three lines and an empty row above the header.
    assert_eq!(cells[4][0], Data::String("Организация".into()));
    assert_eq!(cells[5][0], Data::String("Школа №1".into()));
    assert_eq!(cells[5][2], Data::Float(3.0), "numbers are numbers");
    assert!(matches!(cells[5][8], Data::Float(share) if (share - 1.0 / 3.0).abs() < 1e-9));

    // The school page: the agent's host name is text, never markup.
    browser.click(&format!("a[href='/school/{school_a}']"));
    browser.wait_for(&format!("location.pathname === '/school/{school_a}'"));
    assert!(
        browser
            .current_url()
            .ends_with(&format!("/school/{school_a}"))
    );
    let violations_table = browser.text(&format!("#violations-{school_a}"));
    assert!(violations_table.contains(XSS_HOST), "{violations_table}");
    assert!(violations_table.contains("Telegram"), "{violations_table}");
    let images = browser.execute("return document.querySelectorAll('img').length;");
    assert_eq!(
        images,
        serde_json::json!(0),
        "no element was made from the host name"
    );
    assert_eq!(browser.alert_text(), None, "no script ran");
    let clean = table_rows(&browser, &format!("#clean-{school_a}"));
    assert_eq!(clean.len(), 2, "{clean:?}");
    browser.screenshot("dashboard-03-school");
    let (status, _, school_csv) = download(
        &browser,
        &format!("/school/{school_a}/export/violations/csv"),
    );
    assert_eq!(status, 200);
    let school_csv = String::from_utf8(school_csv).expect("UTF-8");
    assert!(school_csv.contains(XSS_HOST));

    // The PC page.
    browser.click(&format!(
        "#violations-{school_a} a[href='/host/{xss_host}']"
    ));
    assert_eq!(browser.text("#hostname"), XSS_HOST);
    assert_eq!(browser.alert_text(), None);
    assert_eq!(browser.title(), format!("{XSS_HOST} — Sverka"));
    // The history comes before the inventory, which is collapsed until opened.
    let order = browser.execute(
        "const t = document.getElementById('section-timeline'); \
         const i = document.getElementById('section-inventory'); \
         return [!!(t.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING), \
                 document.getElementById('inventory-details').open];",
    );
    assert_eq!(order, serde_json::json!([true, false]));
    browser.click("#inventory-details summary");
    assert!(
        browser
            .text("#section-inventory")
            .contains("telegram-desktop")
    );
    assert!(browser.text("#section-timeline").contains("Telegram"));
    browser.screenshot("dashboard-04-pc");

    // The weekly report with its chart, and the enrollment page.
    browser.goto(&format!("{url}/org/{region}/weekly"));
    let lines = browser.execute("return document.querySelectorAll('svg#trend polyline').length;");
    assert_eq!(lines, serde_json::json!(2));
    browser.screenshot("dashboard-05-weekly");
    browser.goto(&format!("{url}/org/{school_a}/enrollment"));
    browser.click("#create-secret");
    browser.wait_for("document.getElementById('new-secret') !== null");
    let secret = browser.text("#new-secret");
    assert!(
        browser
            .text("#install-0")
            .contains(&format!("ENROLL_SECRET=\"{secret}\""))
    );
    browser.screenshot("dashboard-06-enrollment");

    // English, per user.
    browser.goto(&format!("{url}/org/{region}"));
    browser.click("#switch-language");
    browser.wait_for("document.documentElement.lang === 'en'");
    assert!(
        browser.current_url().ends_with(&format!("/org/{region}")),
        "back on the page"
    );
    let header = browser.text(&format!("#overview-{region} thead"));
    assert!(header.contains("Reported this week"), "{header}");
    browser.screenshot("dashboard-07-overview-english");
    browser.click("#logout");
    browser.wait_for("location.pathname === '/login'");
    assert!(browser.current_url().ends_with("/login"));

    // A school admin sees their school and nothing of the other one.
    sign_in(&browser, &url, "school1");
    assert!(
        browser
            .current_url()
            .ends_with(&format!("/school/{school_a}"))
    );
    for path in [
        format!("/school/{school_b}"),
        format!("/host/{host_b}"),
        format!("/org/{region}"),
    ] {
        browser.goto(&format!("{url}{path}"));
        assert!(
            browser.text("#not-found").contains("недоступна"),
            "{path}: {}",
            browser.text("main")
        );
    }
    let (status, _, _) = download(
        &browser,
        &format!("/school/{school_b}/export/violations/csv"),
    );
    assert_eq!(status, 404);
    browser.screenshot("dashboard-08-refused");
}

/// The catalog page's form, used in the browser with no TOML typed: an administrator
/// bans an application the built-in catalog does not know (by its package name) and
/// changes the status of one it knows, and the PCs that reported them show the new
/// violations at once (the collector evaluates every PC again).
#[test]
fn the_catalog_entry_form_works_without_toml() {
    let collector = Collector::start();
    let url = collector.url();
    let region = collector.add_org("Регион", "region", None);
    let school = collector.add_org("Школа №3", "school", Some(region));
    collector.add_user("admin", "administrator", PASSWORD, None);
    let secret = collector.secret(school);
    let _pc = report(&collector, &secret, "c1", "kab-3-pc-01", &[MAX, BASH]);
    let apps_with_violations = || -> Vec<String> {
        let mut apps: Vec<String> = collector
            .violations(region, false)
            .as_array()
            .expect("violations")
            .iter()
            .filter_map(|row| row["app"].as_str().map(str::to_owned))
            .collect();
        apps.sort();
        apps
    };
    assert_eq!(
        apps_with_violations(),
        Vec::<String>::new(),
        "MAX is approved"
    );

    let browser = Browser::start();
    sign_in(&browser, &url, "admin");
    // A new application, found by its package.
    browser.goto(&format!("{url}/catalog"));
    browser.fill("#catalog-entry input[name=id]", "gnu_shell");
    browser.fill("#catalog-entry input[name=name]", "GNU Bash");
    browser.execute(
        "document.querySelector('#catalog-entry select[name=status]').value = 'banned'; \
         document.querySelector('#catalog-entry select[name=signature_kind]').value = 'packages';",
    );
    browser.fill("#catalog-entry input[name=signature]", "bash");
    browser.click("#save-catalog-entry");
    browser.wait_for("document.getElementById('catalog-saved') !== null");
    let catalog = browser.text("#catalog");
    assert!(catalog.contains("GNU Bash"), "{catalog}");
    assert!(catalog.contains("packages: bash"), "{catalog}");
    // A known application's status.
    browser.goto(&format!("{url}/catalog"));
    browser.fill("#catalog-entry input[name=id]", "max");
    browser
        .execute("document.querySelector('#catalog-entry select[name=status]').value = 'banned';");
    browser.click("#save-catalog-entry");
    browser.wait_for("document.getElementById('catalog-saved') !== null");

    assert_eq!(apps_with_violations(), ["gnu_shell", "max"]);
    browser.goto(&format!("{url}/school/{school}"));
    let violations = browser.text(&format!("#violations-{school}"));
    assert!(violations.contains("GNU Bash"), "{violations}");
    // The text area holds what the form wrote, for whoever wants to read TOML.
    browser.goto(&format!("{url}/catalog"));
    let stored = browser.execute("return document.getElementById('catalog-overrides').value;");
    let stored = stored.as_str().unwrap_or_default();
    assert!(
        stored.contains("id = \"gnu_shell\"") && stored.contains("id = \"max\""),
        "{stored}"
    );
}
