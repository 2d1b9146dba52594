//! Several `sverka-collector serve` processes on one PostgreSQL database, with real
//! agents spread over them: every report stored exactly once through a collector
//! killed with SIGKILL, the same report sent to two collectors at once, and a catalog
//! change made through one reaching the other.

use std::path::Path;
use sverka_tests::FixtureRoot;
use sverka_tests::real_collector::{Collector, scratch_postgres};
use tempfile::TempDir;

use crate::collector::{BASH, MAX, TELEGRAM, enroll, pc, run_once, run_once_command, spooled};

/// Points an enrolled agent's state at another collector (all collectors on one
/// database know every host's key).
fn move_to(state: &Path, collector_url: &str) {
    let path = state.join("enrollment.json");
    let mut enrollment: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("enrollment")).expect("json");
    enrollment["server"] = collector_url.into();
    std::fs::write(&path, enrollment.to_string()).expect("write enrollment");
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn two_collectors_on_postgres_store_every_report_once_through_a_sigkill() {
    let database = scratch_postgres();
    let first = Collector::start_on_postgres(database.url());
    let mut second = Collector::start_on_postgres(database.url());
    let school = first.add_org("Школа №12", "school", None);
    let secret = second.secret(school);
    let pcs: Vec<(FixtureRoot, TempDir)> = (0..6)
        .map(|index| {
            let packages = if index % 3 == 0 {
                vec![TELEGRAM, BASH]
            } else {
                vec![MAX, BASH]
            };
            (
                pc(&format!("pc-{index}"), &packages),
                tempfile::tempdir().expect("state"),
            )
        })
        .collect();
    // Even PCs report to the first collector, odd ones to the second.
    for (index, (root, state)) in pcs.iter().enumerate() {
        let collector = if index % 2 == 0 { &first } else { &second };
        enroll(collector, &secret, state.path(), root);
    }
    let mut runs_per_pc = [0i64; 6];
    let run_all = |runs: &mut [i64; 6]| {
        let children: Vec<_> = pcs
            .iter()
            .map(|(root, state)| run_once_command(state.path(), root).spawn().expect("spawn"))
            .collect();
        let codes: Vec<i32> = children
            .into_iter()
            .map(|child| {
                child
                    .wait_with_output()
                    .expect("agent")
                    .status
                    .code()
                    .unwrap_or(-1)
            })
            .collect();
        for run in runs.iter_mut() {
            *run += 1;
        }
        codes
    };

    // Round 1: both collectors up, all agents at once.
    assert_eq!(run_all(&mut runs_per_pc), vec![0; 6]);
    // Round 2: all agents at once, the second collector killed in the middle.
    let children: Vec<_> = pcs
        .iter()
        .map(|(root, state)| run_once_command(state.path(), root).spawn().expect("spawn"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    second.kill();
    for (index, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("agent");
        runs_per_pc[index] += 1;
        if index % 2 == 0 {
            assert_eq!(
                output.status.code(),
                Some(0),
                "the first collector stayed up: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    // Round 3: the second collector is back on its port; everything spooled arrives.
    second.restart();
    assert_eq!(
        run_all(&mut runs_per_pc),
        vec![0; 6],
        "{}\n{}",
        first.log(),
        second.log()
    );
    for (_, state) in &pcs {
        assert_eq!(spooled(state.path()), 0);
    }

    // The same PC's spooled report sent to both collectors at once (a state folder
    // copied beside the first one, pointed at the other collector), each copy with a
    // new report of its own.
    let (root, state) = &pcs[0];
    move_to(state.path(), "http://127.0.0.1:9");
    let (code, _) = run_once(state.path(), root);
    assert_ne!(code, 0, "nothing listens on port 9");
    runs_per_pc[0] += 1;
    assert_eq!(spooled(state.path()), 1);
    let twin = tempfile::tempdir().expect("twin");
    copy_folder(state.path(), twin.path());
    move_to(state.path(), &first.url());
    move_to(twin.path(), &second.url());
    let children = [
        run_once_command(state.path(), root).spawn().expect("spawn"),
        run_once_command(twin.path(), root).spawn().expect("spawn"),
    ];
    // Each copy made one new report; the spooled one went to both and counts once.
    for child in children {
        let output = child.wait_with_output().expect("agent");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        runs_per_pc[0] += 1;
    }
    let stored = second.stored_reports();
    let expected: Vec<(String, i64)> = (0..6)
        .map(|index| (format!("pc-{index}"), runs_per_pc[index]))
        .collect();
    assert_eq!(stored, expected, "every report stored exactly once");
    let violations = first.violations(school, false);
    let hosts: Vec<&str> = violations
        .as_array()
        .expect("array")
        .iter()
        .map(|row| row["host"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(hosts, vec!["pc-0", "pc-3"]);
}

#[test]
fn a_catalog_change_through_one_collector_reaches_the_other() {
    let database = scratch_postgres();
    let first = Collector::start_on_postgres(database.url());
    let second = Collector::start_on_postgres(database.url());
    let school = first.add_org("Лицей №2", "school", None);
    let secret = first.secret(school);
    let root = pc("lab-7", &[BASH]);
    let state = tempfile::tempdir().expect("state");
    enroll(&second, &secret, state.path(), &root);
    assert_eq!(run_once(state.path(), &root).0, 0);

    let rules = state.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[app]]\nid = \"homework_chat\"\nname = \"Homework Chat\"\nstatus = \"banned\"\n\
         signatures = { packages = [\"homework-chat\"] }\n",
    )
    .expect("rules");
    first.cli_ok(&["catalog", "set", &rules.display().to_string()]);

    // The second collector serves the new revision (the agent fetches it when the
    // acknowledgement names a new ETag).
    let mut cached = String::new();
    for _ in 0..20 {
        let (code, stderr) = run_once(state.path(), &root);
        assert_eq!(code, 0, "{stderr}");
        cached = std::fs::read_to_string(state.path().join("catalog.toml")).unwrap_or_default();
        if cached.contains("homework_chat") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(cached.contains("homework_chat") && cached.contains("+r1"));

    // And evaluates with it: the package installed now is a violation at once.
    root.dpkg(&[("homework-chat", "1.0", "install ok installed"), BASH]);
    assert_eq!(run_once(state.path(), &root).0, 0);
    let violations = first.violations(school, false);
    assert_eq!(violations[0]["app"], "homework_chat", "{violations}");
    assert_eq!(violations[0]["host"], "lab-7");
}
