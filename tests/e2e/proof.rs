//! The proof suite's smoke run (`sverka-proof --smoke`): every part, with every check,
//! on a short budget. The full budget is `scripts/proof.sh`.

use sverka_tests::proof::{Budget, Part, assert_met};

fn smoke(part: Part) {
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("proof")
        .join(part.name().replace(' ', "-"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let figures = part
        .run(&Budget::smoke(artifacts))
        .unwrap_or_else(|error| panic!("{} could not run: {error:#}", part.name()));
    eprintln!(
        "{}",
        sverka_tests::proof::Table {
            figures: figures.clone()
        }
        .markdown()
    );
    assert_met(&figures);
}

#[test]
fn faults_lose_and_duplicate_no_report() {
    smoke(Part::Faults);
}

#[test]
fn hostile_input_gets_no_5xx_and_reaches_no_page_unneutralized() {
    smoke(Part::Hostile);
}

#[test]
fn no_route_leaks_another_organization() {
    smoke(Part::Isolation);
}

#[test]
fn parsers_survive_their_fuzz_budget() {
    smoke(Part::Parsers);
}

#[test]
fn slow_clients_are_closed_by_their_timeouts_and_reports_go_on() {
    smoke(Part::SlowClients);
}

#[test]
fn the_agent_scan_finishes_under_the_units_cpu_quota() {
    smoke(Part::Guard);
}

#[test]
fn the_parser_fuzzer_counts_panics_and_aborts_as_crashes() {
    for name in ["canary: panics", "canary: aborts"] {
        let folder = tempfile::tempdir().unwrap();
        let (executions, crashes) = sverka_tests::proof::parsers::fuzz_named(
            name,
            folder.path(),
            std::time::Duration::from_millis(300),
            7,
        )
        .unwrap();
        assert!(
            executions >= 1 && crashes >= 1,
            "{name}: {executions} executions, {crashes} crashes"
        );
        let saved = std::fs::read_dir(folder.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("crash-"))
            .count();
        assert!(saved >= 1, "{name}: no crash input saved");
    }
}

#[test]
fn the_isolation_route_list_matches_the_router() {
    let routes = sverka_tests::proof::isolation::check_route_list().unwrap();
    assert_eq!(routes, sverka_tests::proof::isolation::ROUTES.len());
}
