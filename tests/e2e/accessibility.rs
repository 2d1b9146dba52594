//! An axe-core run on every page of the dashboard, in Russian and in English: a real
//! collector with agents that reported, headless Chromium over WebDriver, and axe-core
//! (the pinned release `support/browser.rs` names, installed from the npm registry by
//! `scripts/test.sh`) injected into each page. No page may have a violation of any
//! impact (critical, serious, moderate or minor).

use crate::dashboard::{BASH, PASSWORD, TELEGRAM, report, sign_in};
use sverka_tests::browser::{AXE_CORE_VERSION, AxeViolation, Browser, axe_core_script};
use sverka_tests::real_collector::Collector;

/// The impacts that fail the test: every one axe-core reports.
const FAILING: [&str; 4] = ["critical", "serious", "moderate", "minor"];

/// Reads the axe-core script, or fails saying how to install it.
fn axe_core() -> String {
    let path = axe_core_script();
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "axe-core {AXE_CORE_VERSION} is missing at {} ({error}): scripts/test.sh installs \
             it (`npm install --prefix ~/.cache/sverka/axe-core-{AXE_CORE_VERSION} \
             axe-core@{AXE_CORE_VERSION}`; Debian's npm), or set SVERKA_AXE_CORE to its \
             axe.min.js",
            path.display()
        )
    })
}

/// Opens `path`, runs axe-core, and adds what it found to `failures` (an impact axe-core
/// adds in a later release is printed).
fn check_page(
    browser: &Browser,
    url: &str,
    path: &str,
    lang: &str,
    axe: &str,
    failures: &mut Vec<String>,
) {
    browser.goto(&format!("{url}{path}"));
    browser.wait_for(&format!("document.documentElement.lang === '{lang}'"));
    let found: Vec<AxeViolation> = browser.axe_violations(axe);
    for violation in found {
        if FAILING.contains(&violation.impact.as_str()) {
            failures.push(format!("{lang} {path}: {violation}"));
        } else {
            eprintln!("axe-core, not failing: {lang} {path}: {violation}");
        }
    }
}

/// The id of `name` among the rows of `report coverage --org ORG`.
fn federated_id(collector: &Collector, organization: i64, name: &str) -> Option<i64> {
    let text = collector.cli_ok(&[
        "report",
        "coverage",
        "--org",
        &organization.to_string(),
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&text).expect("coverage JSON");
    rows.as_array()?
        .iter()
        .find(|row| row["organization"] == name)
        .and_then(|row| row["organization_id"].as_i64())
}

#[test]
fn axe_core_finds_no_violation_on_any_dashboard_page() {
    let axe = axe_core();
    let collector = Collector::start();
    let url = collector.url();
    let region = collector.add_org("Ставропольский край", "region", None);
    let school = collector.add_org("Школа №1", "school", Some(region));
    collector.add_user("admin", "administrator", PASSWORD, None);
    let secret = collector.secret(school);
    let _pcs = [
        report(&collector, &secret, "a1", "kab-12-pc-01", &[TELEGRAM, BASH]),
        report(&collector, &secret, "a2", "kab-12-pc-02", &[BASH]),
    ];
    let violations = collector.violations(region, false);
    let host = violations[0]["host_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a violation: {violations}"));
    // A municipality on its own collector, federated under the region: its school's
    // page lists what that collector sent; the federation page lists the link.
    let lower = Collector::start();
    let municipality = lower.add_org("Котлас", "municipality", None);
    let lower_school = lower.add_org("Котлас: школа №7", "school", Some(municipality));
    let lower_secret = lower.secret(lower_school);
    let _lower_pc = report(
        &lower,
        &lower_secret,
        "k1",
        "kab-7-pc-01",
        &[TELEGRAM, BASH],
    );
    let link = collector.cli_ok(&[
        "link",
        "create",
        "--org",
        &region.to_string(),
        "--detail",
        "pcs",
    ]);
    lower.cli_ok(&[
        "upstream",
        "set",
        "--url",
        &url,
        "--secret",
        &link,
        "--allow-http",
    ]);
    lower.cli_ok(&["upstream", "push"]);
    let federated_school = federated_id(&collector, region, "Котлас")
        .and_then(|id| federated_id(&collector, id, "Котлас: школа №7"))
        .expect("the federated school on the region's collector");
    let pages = [
        format!("/org/{region}"),
        format!("/school/{school}"),
        format!("/host/{host}"),
        format!("/org/{region}/weekly"),
        format!("/org/{region}/weekly/print"),
        format!("/org/{region}/weekly/pcs"),
        format!("/org/{region}/worklist"),
        format!("/org/{region}/worklist?q=telegram&silent=1"),
        format!("/org/{school}/enrollment"),
        format!("/org/{school}/hosts"),
        format!("/org/{school}/notifications"),
        "/catalog".to_string(),
        "/users".to_string(),
        "/audit".to_string(),
        "/tokens".to_string(),
        "/federation".to_string(),
        format!("/school/{federated_school}"),
    ];

    let browser = Browser::start();
    let mut failures = Vec::new();
    for lang in ["ru", "en"] {
        check_page(
            &browser,
            &url,
            &format!("/login?lang={lang}"),
            lang,
            &axe,
            &mut failures,
        );
    }
    sign_in(&browser, &url, "admin");
    for lang in ["ru", "en"] {
        if lang == "en" {
            browser.goto(&format!("{url}/org/{region}"));
            browser.click("#switch-language");
            browser.wait_for("document.documentElement.lang === 'en'");
        }
        for path in &pages {
            check_page(&browser, &url, path, lang, &axe, &mut failures);
        }
        // The enrollment page with a new secret and its install commands shown.
        browser.goto(&format!("{url}/org/{school}/enrollment"));
        browser.click("#create-secret");
        browser.wait_for("document.getElementById('new-secret') !== null");
        let shown: Vec<AxeViolation> = browser.axe_violations(&axe);
        failures.extend(
            shown
                .iter()
                .filter(|violation| FAILING.contains(&violation.impact.as_str()))
                .map(|violation| format!("{lang} enrollment with a new secret: {violation}")),
        );
    }
    assert!(
        failures.is_empty(),
        "axe-core {AXE_CORE_VERSION} found {} violations:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
