//! Federation with real processes: two municipal collectors on SQLite with real agents,
//! a regional collector on PostgreSQL above them, and a federal one above it. Links
//! made on the upstreams, set with `upstream set`, figures sent with `upstream push`
//! and by the serving collector's own job; the upstream down and back, a revoked link,
//! plain http refused unless allowed.

use serde_json::Value;
use sverka_tests::real_collector::{Collector, scratch_postgres};

use crate::collector::{BASH, MAX, TELEGRAM, enroll, pc, run_once};
use crate::mail::wait_for;

/// `report coverage --org ORG --format json`: the organization's row, then one per
/// child.
fn coverage_rows(collector: &Collector, organization: i64) -> Value {
    let text = collector.cli_ok(&[
        "report",
        "coverage",
        "--org",
        &organization.to_string(),
        "--format",
        "json",
    ]);
    serde_json::from_str(&text).expect("coverage JSON")
}

/// The organization's own coverage row.
fn coverage(collector: &Collector, organization: i64) -> Value {
    coverage_rows(collector, organization)[0].clone()
}

fn enrolled(collector: &Collector, organization: i64) -> i64 {
    coverage(collector, organization)["enrolled"]
        .as_i64()
        .expect("enrolled")
}

/// A municipality with one school and a PC per package list, each enrolled and
/// reported once.
fn municipality(collector: &Collector, name: &str, pcs: &[&[(&str, &str, &str)]]) -> i64 {
    let municipality = collector.add_org(name, "municipality", None);
    let school = collector.add_org(&format!("{name}: школа №1"), "school", Some(municipality));
    let secret = collector.secret(school);
    for (index, packages) in pcs.iter().enumerate() {
        let root = pc(&format!("{name}-pc-{index}"), packages);
        let state = tempfile::tempdir().expect("state");
        enroll(collector, &secret, state.path(), &root);
        let (code, log) = run_once(state.path(), &root);
        assert_eq!(code, 0, "{log}");
    }
    municipality
}

#[test]
fn municipal_collectors_report_up_to_the_region_and_the_region_to_the_country() {
    let federal = Collector::start();
    let country = federal.add_org("Российская Федерация", "country", None);
    let database = scratch_postgres();
    let mut region = Collector::start_on_postgres(database.url());
    let region_org = region.add_org("Ставропольский край", "region", None);
    let own_school = region.add_org("Краевая школа", "school", Some(region_org));
    assert!(own_school > region_org);

    let first = Collector::start();
    municipality(&first, "Северодвинск", &[&[TELEGRAM, BASH], &[MAX, BASH]]);
    // The second municipality's collector pushes by itself every second.
    let second = Collector::start_with_config("[upstream]\npush_seconds = 1\n");
    municipality(&second, "Невинномысск", &[&[TELEGRAM, BASH]]);

    // Links: counts only for the first, PC names for the second.
    let first_link = region.cli_ok(&["link", "create", "--org", &region_org.to_string()]);
    let second_link = region.cli_ok(&[
        "link",
        "create",
        "--org",
        &region_org.to_string(),
        "--detail",
        "pcs",
    ]);

    // Plain http is refused unless allowed; a wrong secret is refused by the upstream.
    let refused = first.cli(&[
        "upstream",
        "set",
        "--url",
        &region.url(),
        "--secret",
        &first_link,
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("--allow-http"),
        "{}",
        refused.stderr
    );
    let (forged, _) = sverka_collector::keys::generate();
    let link_id = first_link.split('.').next().expect("an id");
    let wrong = first.cli(&[
        "upstream",
        "set",
        "--url",
        &region.url(),
        "--secret",
        &format!("{link_id}.{forged}"),
        "--allow-http",
    ]);
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    // Before anything is set, a push says so.
    let unset = first.cli(&["upstream", "push"]);
    assert_ne!(unset.code, 0);
    assert!(
        unset.stderr.contains("no upstream is set"),
        "{}",
        unset.stderr
    );

    // The administrator is shown what the link sends before anything is sent.
    let shown = first.cli_ok(&[
        "upstream",
        "set",
        "--url",
        &region.url(),
        "--secret",
        &first_link,
        "--allow-http",
    ]);
    assert!(shown.contains("Ставропольский край"), "{shown}");
    assert!(shown.contains("no PC names"), "{shown}");
    let pushed = first.cli_ok(&["upstream", "push"]);
    assert!(pushed.starts_with("acknowledged"), "{pushed}");
    assert_eq!(enrolled(&region, region_org), 2);
    assert_eq!(coverage(&region, region_org)["with_banned"], 1);

    let shown = second.cli_ok(&[
        "upstream",
        "set",
        "--url",
        &region.url(),
        "--secret",
        &second_link,
        "--allow-http",
    ]);
    assert!(shown.contains("names of the PCs"), "{shown}");
    wait_for(
        "the second collector's own push job to send its figures",
        60,
        || enrolled(&region, region_org) == 3,
        || second.log(),
    );
    assert_eq!(coverage(&region, region_org)["with_banned"], 2);
    let links = region.cli_ok(&["link", "list"]);
    assert_eq!(links.lines().count(), 2, "{links}");
    assert!(!links.contains("nothing received yet"), "{links}");

    // The region sends its own and its federated figures to the country.
    let federal_link = federal.cli_ok(&["link", "create", "--org", &country.to_string()]);
    region.cli_ok(&[
        "upstream",
        "set",
        "--url",
        &federal.url(),
        "--secret",
        &federal_link,
        "--allow-http",
    ]);
    region.cli_ok(&["upstream", "push"]);
    assert_eq!(enrolled(&federal, country), 3);
    assert_eq!(coverage(&federal, country)["with_banned"], 2);
    // The region's tree appears under the country, with the municipalities under it.
    let children = coverage_rows(&federal, country);
    assert_eq!(
        children[1]["organization"], "Ставропольский край",
        "{children}"
    );
    assert_eq!(children[1]["enrolled"], 3, "{children}");

    // The region down: the push fails and says why; back, the next push delivers what
    // changed meanwhile.
    region.kill();
    let down = first.cli(&["upstream", "push"]);
    assert_ne!(down.code, 0);
    assert!(down.stderr.contains("unreachable"), "{}", down.stderr);
    let status = first.cli_ok(&["upstream", "show"]);
    assert!(
        status.contains("last error: the upstream is unreachable"),
        "{status}"
    );
    let school = first.add_org("Северодвинск: школа №2", "school", None);
    let secret = first.secret(school);
    let root = pc("late-pc", &[TELEGRAM, BASH]);
    let state = tempfile::tempdir().expect("state");
    enroll(&first, &secret, state.path(), &root);
    assert_eq!(run_once(state.path(), &root).0, 0);
    region.restart();
    first.cli_ok(&["upstream", "push"]);
    assert_eq!(enrolled(&region, region_org), 4);
    let status = first.cli_ok(&["upstream", "show"]);
    assert!(!status.contains("last error"), "{status}");

    // A revoked link: refused with the reason, nothing more counted.
    region.cli_ok(&["link", "revoke", "--id", link_id]);
    let revoked = first.cli(&["upstream", "push"]);
    assert_ne!(revoked.code, 0);
    assert!(revoked.stderr.contains("revoked"), "{}", revoked.stderr);
    assert_eq!(enrolled(&region, region_org), 4);
    for collector in [&federal, &region, &first, &second] {
        assert!(!collector.log().contains("panicked"), "{}", collector.log());
    }
}
