//! Agents and a collector as real processes on 127.0.0.1: enrollment, reports that
//! survive a collector killed with SIGKILL, findings over time, the catalog from the
//! collector, and the operator's exports.

use std::path::Path;
use std::process::Command;
use sverka_tests::real_collector::Collector;
use sverka_tests::{FixtureRoot, agent_binary, run_agent};
use tempfile::TempDir;

pub(crate) const TELEGRAM: (&str, &str, &str) =
    ("telegram-desktop", "4.6.5+ds-2", "install ok installed");
pub(crate) const MAX: (&str, &str, &str) = ("max", "25.10.1", "install ok installed");
pub(crate) const BASH: (&str, &str, &str) = ("bash", "5.2.15-2", "install ok installed");

/// A PC image with its own machine id and name.
pub(crate) fn pc(name: &str, packages: &[(&str, &str, &str)]) -> FixtureRoot {
    let root = FixtureRoot::new();
    root.machine_id(&format!("{name}-0000000000000000000000000"))
        .hostname(name)
        .user("teacher", 1000)
        .dpkg(packages);
    root
}

pub(crate) fn enroll(collector: &Collector, secret: &str, state: &Path, root: &FixtureRoot) {
    let run = run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--allow-http",
        "--secret",
        secret,
        "--state-dir",
        &state.display().to_string(),
        "--root",
        &root.path().display().to_string(),
    ]);
    assert_eq!(run.code, 0, "enroll: {}", run.stderr);
}

pub(crate) fn run_once_command(state: &Path, root: &FixtureRoot) -> Command {
    let mut command = Command::new(agent_binary());
    command.args([
        "run",
        "--once",
        "--attempts",
        "2",
        "--retry-base",
        "100ms",
        "--retry-cap",
        "200ms",
        "--state-dir",
        &state.display().to_string(),
        "--root",
        &root.path().display().to_string(),
    ]);
    command
}

pub(crate) fn run_once(state: &Path, root: &FixtureRoot) -> (i32, String) {
    let output = run_once_command(state, root)
        .output()
        .expect("run the agent");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn spooled(state: &Path) -> usize {
    std::fs::read_dir(state.join("spool"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().is_file())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn every_report_arrives_exactly_once_through_a_collector_killed_mid_run() {
    let mut collector = Collector::start();
    let school = collector.add_org("Школа №7", "school", None);
    let secret = collector.secret(school);
    let pcs: Vec<(FixtureRoot, TempDir)> = (0..4)
        .map(|index| {
            let packages = if index % 2 == 0 {
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
    for (root, state) in &pcs {
        enroll(&collector, &secret, state.path(), root);
    }
    let mut runs_per_pc = [0i64; 4];

    // Round 1: everything up.
    for (index, (root, state)) in pcs.iter().enumerate() {
        let (code, stderr) = run_once(state.path(), root);
        assert_eq!(code, 0, "{stderr}");
        runs_per_pc[index] += 1;
    }
    // Round 2: all agents report at once and the collector is killed in the middle.
    let children: Vec<_> = pcs
        .iter()
        .map(|(root, state)| run_once_command(state.path(), root).spawn().expect("spawn"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    collector.kill();
    for (index, child) in children.into_iter().enumerate() {
        let _ = child.wait_with_output().expect("agent");
        runs_per_pc[index] += 1;
    }
    // Round 3: the collector is down; reports wait in the spool.
    for (index, (root, state)) in pcs.iter().enumerate() {
        let (code, _) = run_once(state.path(), root);
        assert_ne!(
            code, 0,
            "a report cannot be acknowledged by a collector that is down"
        );
        assert!(spooled(state.path()) >= 1);
        runs_per_pc[index] += 1;
    }
    // Round 4: back up; each agent delivers what waited, then its new report.
    collector.restart();
    for (index, (root, state)) in pcs.iter().enumerate() {
        let (code, stderr) = run_once(state.path(), root);
        assert_eq!(code, 0, "{stderr}\n{}", collector.log());
        assert_eq!(
            spooled(state.path()),
            0,
            "the spool is empty once acknowledged"
        );
        runs_per_pc[index] += 1;
    }
    let stored = collector.stored_reports();
    let expected: Vec<(String, i64)> = (0..4)
        .map(|index| (format!("pc-{index}"), runs_per_pc[index]))
        .collect();
    assert_eq!(stored, expected, "every report stored exactly once");

    let violations = collector.violations(school, false);
    let hosts: Vec<&str> = violations
        .as_array()
        .expect("array")
        .iter()
        .map(|row| row["host"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(hosts, vec!["pc-0", "pc-2"]);
}

#[test]
fn a_removed_application_is_resolved_at_the_next_report() {
    let collector = Collector::start();
    let town = collector.add_org("Город", "municipality", None);
    let school_a = collector.add_org("Школа А", "school", Some(town));
    let school_b = collector.add_org("Школа Б", "school", Some(town));
    let secret = collector.secret(school_a);
    let _unused_b = collector.secret(school_b);
    let root = pc("teacher-pc", &[TELEGRAM, MAX, BASH]);
    root.dir("/home/teacher/.local/share/TelegramDesktop");
    let state = tempfile::tempdir().expect("state");
    enroll(&collector, &secret, state.path(), &root);
    assert_eq!(run_once(state.path(), &root).0, 0);

    let open = collector.violations(town, false);
    let rows = open.as_array().expect("array");
    assert_eq!(rows.len(), 1, "{open}");
    let row = &rows[0];
    assert_eq!(row["host"], "teacher-pc");
    assert_eq!(row["organization"], "Школа А");
    assert_eq!(row["app"], "telegram");
    assert_eq!(row["status"], "banned");
    assert!(
        row["first_seen"]
            .as_str()
            .unwrap_or_default()
            .ends_with('Z')
    );
    let evidence = row["evidence"].as_array().expect("evidence");
    assert!(
        evidence.iter().any(|item| item["source"] == "dpkg"),
        "{row}"
    );
    assert!(
        collector
            .violations(school_b, true)
            .as_array()
            .expect("b")
            .is_empty()
    );

    let coverage: serde_json::Value = serde_json::from_str(&collector.cli_ok(&[
        "report",
        "coverage",
        "--org",
        &town.to_string(),
        "--format",
        "json",
    ]))
    .expect("coverage");
    assert_eq!(coverage[0]["reporting"], 1);
    assert_eq!(coverage[0]["with_banned"], 1);
    assert_eq!(coverage[0]["approved_share"], 1.0);
    assert_eq!(coverage[1]["organization"], "Школа А");
    assert_eq!(coverage[2]["enrolled"], 0);

    // The teacher removes Telegram.
    root.dpkg(&[MAX, BASH]);
    assert_eq!(run_once(state.path(), &root).0, 0);
    assert!(
        collector
            .violations(town, false)
            .as_array()
            .expect("open")
            .is_empty()
    );
    let all = collector.violations(town, true);
    let resolved = &all.as_array().expect("all")[0];
    assert_eq!(resolved["app"], "telegram");
    assert!(resolved["resolved_at"].is_string(), "{resolved}");

    // CSV for Excel in a Russian locale.
    let csv_path = state.path().join("violations.csv");
    collector.cli_ok(&[
        "report",
        "violations",
        "--org",
        &town.to_string(),
        "--include-resolved",
        "--format",
        "csv",
        "--out",
        &csv_path.display().to_string(),
    ]);
    let csv = std::fs::read(&csv_path).expect("csv");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM");
    let text = String::from_utf8(csv[3..].to_vec()).expect("utf-8");
    // The worklist page's columns: the open violations first, then the resolved one.
    assert!(
        text.starts_with("Компьютер;Школа;Приложение;Пользователи;Впервые замечено;Устранено"),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].starts_with("teacher-pc;Школа А;Telegram;"),
        "{text}"
    );
    let resolved_cell = rows[0].split(';').nth(5).unwrap_or_default();
    assert!(!resolved_cell.is_empty(), "resolved at: {text}");
}

#[test]
fn a_catalog_change_shows_its_results_without_waiting_for_agents() {
    let collector = Collector::start();
    let school = collector.add_org("Лицей", "school", None);
    let secret = collector.secret(school);
    let root = pc(
        "lab-1",
        &[("homework-chat", "1.0", "install ok installed"), BASH],
    );
    let state = tempfile::tempdir().expect("state");
    enroll(&collector, &secret, state.path(), &root);
    assert_eq!(run_once(state.path(), &root).0, 0);
    assert!(
        collector
            .violations(school, false)
            .as_array()
            .expect("v")
            .is_empty()
    );

    let rules = state.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[app]]\nid = \"homework_chat\"\nname = \"Homework Chat\"\nstatus = \"banned\"\n\
         signatures = { packages = [\"homework-chat\"] }\n",
    )
    .expect("rules");
    let run = collector.cli(&["catalog", "set", &rules.display().to_string()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("1 PCs evaluated again"),
        "{}",
        run.stderr
    );
    let violations = collector.violations(school, false);
    assert_eq!(violations[0]["app"], "homework_chat", "{violations}");

    // A broken catalog file is refused with its line and changes nothing.
    std::fs::write(&rules, "[[app]]\nid = \"x\"\nstatus = \"forbidden\"\n").expect("rules");
    let refused = collector.cli(&["catalog", "set", &rules.display().to_string()]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("rules.toml:3"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        collector
            .violations(school, false)
            .as_array()
            .expect("v")
            .len(),
        1
    );

    // The agent picks the collector's catalog up at a next report, once the running
    // collector noticed the new revision (it looks every second).
    let mut cached = String::new();
    let mut log = String::new();
    for _ in 0..10 {
        let (code, stderr) = run_once(state.path(), &root);
        assert_eq!(code, 0, "{stderr}");
        log.push_str(&stderr);
        cached = std::fs::read_to_string(state.path().join("catalog.toml")).unwrap_or_default();
        if cached.contains("homework_chat") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        cached.contains("homework_chat"),
        "the agent cached the collector's catalog: {log}"
    );
    assert!(
        cached.contains("+r1"),
        "the catalog version names the revision"
    );
}

#[test]
fn enrollment_with_a_revoked_or_foreign_secret_is_refused() {
    let collector = Collector::start();
    let school = collector.add_org("Школа", "school", None);
    let secret = collector.secret(school);
    let secret_id = secret.split('.').next().expect("id").to_string();
    collector.cli_ok(&["secret", "revoke", "--id", &secret_id]);
    let root = pc("pc-x", &[BASH]);
    let state = tempfile::tempdir().expect("state");
    let run = run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--allow-http",
        "--secret",
        &secret,
        "--state-dir",
        &state.path().display().to_string(),
        "--root",
        &root.path().display().to_string(),
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert!(collector.stored_reports().is_empty());
}
