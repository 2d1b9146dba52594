//! The benchmark's load generator and the demo script keep working (their figures are
//! measured by `bench/collector-load.sh`, not asserted here).

use std::process::Command;
use sverka_tests::real_collector::loadgen_binary;

#[test]
fn the_load_generator_measures_a_real_collector_beside_the_baseline() {
    let output = Command::new(loadgen_binary())
        .args([
            "--hosts",
            "30",
            "--concurrency",
            "10",
            "--seconds",
            "1",
            "--inventory-items",
            "50",
            "--templates",
            "3",
            "--paced-rate",
            "40",
            "--paced-check-in-rate",
            "80",
            "--memory-hosts",
            "60",
        ])
        .output()
        .expect("run the load generator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "trivial axum handler, full bodies",
        "sverka-collector, full reports",
        "sverka-collector, check-ins",
        "paced 40 full reports/s",
        "boot storm: 60 hosts",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // No failed request in any phase.
    for row in stdout.lines().filter(|line| line.contains("req/s")) {
        assert!(row.trim_end().ends_with(" 0 failed"), "{row}");
    }
}
