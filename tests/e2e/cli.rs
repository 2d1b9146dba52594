//! The command line: exit codes, the documented JSON shape, the table, and `--catalog`.

use serde_json::Value;
use sverka_tests::*;

#[test]
fn exit_codes_clean_found_and_error() {
    let clean = FixtureRoot::new();
    clean.dpkg(&[("coreutils", "9.1", "install ok installed")]);
    assert_eq!(scan_json(&clean, &[]).0, 0);

    let watch_only = FixtureRoot::new();
    watch_only.dpkg(&[
        ("skypeforlinux", "8.1", "install ok installed"),
        ("max", "26.1", "install ok installed"),
    ]);
    assert_eq!(
        scan_json(&watch_only, &[]).0,
        0,
        "watch and approved applications are not violations"
    );

    let banned = FixtureRoot::new();
    banned.dpkg(&[("discord", "0.0.76", "install ok installed")]);
    assert_eq!(scan_json(&banned, &[]).0, 1);

    let missing_root = run_agent(&["scan", "--root", "/nonexistent/image"]);
    assert_eq!(missing_root.code, 2);
    assert!(
        missing_root.stderr.contains("/nonexistent/image"),
        "{}",
        missing_root.stderr
    );
    assert_eq!(run_agent(&["scan", "--format", "xml"]).code, 2);
    assert_eq!(run_agent(&["frobnicate"]).code, 2);
}

/// A key and the check its value must pass.
type KeyCheck<'a> = (&'a str, fn(&Value) -> bool);

fn assert_keys(value: &Value, required: &[KeyCheck<'_>], context: &str) {
    for (key, check) in required {
        assert!(
            check(&value[key]),
            "{context}.{key} has the wrong type or is missing: {value:#}"
        );
    }
}

#[test]
fn json_has_the_documented_shape() {
    let root = FixtureRoot::new();
    root.user("anna", 1000)
        .dpkg(&[("telegram-desktop", "4.6.5", "install ok installed")]);
    root.flatpak_user("anna", "org.telegram.desktop");
    root.file("/var/lib/rpm/Packages", b"junk");
    let (_, report) = scan_json(&root, &[]);
    assert_eq!(report["schema"], 1);
    assert_keys(
        &report,
        &[
            ("host", Value::is_object),
            ("catalog_version", Value::is_string),
            ("scanned_at", Value::is_string),
            ("duration_ms", Value::is_u64),
            ("findings", Value::is_array),
            ("errors", Value::is_array),
            ("skipped", Value::is_array),
        ],
        "report",
    );
    assert_keys(
        &report["host"],
        &[
            ("hostname", Value::is_string),
            ("os_id", Value::is_string),
            ("machine_id", Value::is_string),
        ],
        "host",
    );
    let telegram = finding(&report, "telegram").unwrap();
    assert_keys(
        telegram,
        &[
            ("app", Value::is_string),
            ("name", Value::is_string),
            ("status", Value::is_string),
            ("strength", Value::is_string),
            ("users", Value::is_array),
            ("evidence", Value::is_array),
        ],
        "finding",
    );
    for evidence in telegram["evidence"].as_array().unwrap() {
        assert_keys(
            evidence,
            &[
                ("source", Value::is_string),
                ("detail", Value::is_string),
                ("path", Value::is_string),
                ("scope", Value::is_string),
                ("strength", Value::is_string),
            ],
            "evidence",
        );
    }
    let user_evidence = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["scope"] == "user")
        .unwrap();
    assert_eq!(user_evidence["user"], "anna");
    let error = &report["errors"][0];
    assert_keys(
        error,
        &[("source", Value::is_string), ("message", Value::is_string)],
        "error",
    );
    // The JSON reads back into the shared wire type.
    let typed: sverka_shared::ScanReport = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(typed.findings.len(), 1);
}

#[test]
fn the_documented_example_parses_as_a_report() {
    let document =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scan-json.md"))
            .unwrap();
    let example = document
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let typed: sverka_shared::ScanReport = serde_json::from_str(example).unwrap();
    assert_eq!(typed.findings[0].app, "telegram");
}

#[test]
fn the_table_says_what_for_whom_where_and_how_sure() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    root.program("/home/anna/Загрузки/Telegram/Telegram");
    root.dpkg(&[("max", "26.1", "install ok installed")]);
    let run = run_agent(&["scan", "--root", &root.path().to_string_lossy()]);
    assert_eq!(run.code, 1);
    let table = run.stdout;
    assert!(table.contains("school-pc-7"), "{table}");
    assert!(
        table.contains("banned")
            && table.contains("Telegram")
            && table.contains("installed")
            && table.contains("anna"),
        "{table}"
    );
    assert!(
        table.contains("/home/anna/Загрузки/Telegram/Telegram"),
        "{table}"
    );
    assert!(
        table.contains("Result: 1 banned messenger(s) installed or running: Telegram."),
        "{table}"
    );
    assert!(
        table.contains("Approved messenger(s) present: MAX."),
        "{table}"
    );
    assert!(table.contains("Skipped process"), "{table}");
    assert!(
        run.stderr.is_empty(),
        "no progress output without a terminal: {}",
        run.stderr
    );
}

#[test]
fn a_hostile_file_name_cannot_drive_the_terminal() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    root.program("/home/anna/\u{1b}[2J\u{1b}]0;pwned\u{7}/Telegram/Telegram");
    let run = run_agent(&["scan", "--root", &root.path().to_string_lossy()]);
    assert!(run.stdout.contains("Telegram"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "escape sequences are neutralised"
    );
}

#[test]
fn a_local_catalog_changes_statuses_and_adds_applications() {
    let root = FixtureRoot::new();
    root.dpkg(&[
        ("skypeforlinux", "8.1", "install ok installed"),
        ("element-desktop", "1.11", "install ok installed"),
    ]);
    let catalog = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        catalog.path(),
        "[[app]]\nid = \"skype\"\nstatus = \"banned\"\n\n[[app]]\nid = \"element\"\nname = \"Element\"\nvendor = \"Element\"\nstatus = \"watch\"\nsignatures = { packages = [\"element-desktop\"] }\n",
    )
    .unwrap();
    let (code, report) = scan_json(&root, &["--catalog", &catalog.path().to_string_lossy()]);
    assert_eq!(code, 1, "skype is banned by the local catalog");
    assert_eq!(finding(&report, "skype").unwrap()["status"], "banned");
    assert_eq!(finding(&report, "element").unwrap()["status"], "watch");
    assert!(
        report["catalog_version"]
            .as_str()
            .unwrap()
            .contains("+local.")
    );
}

#[test]
fn catalog_errors_name_the_file_line_and_key() {
    let root = FixtureRoot::new();
    let catalog = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        catalog.path(),
        "# local rules\n[[app]]\nid = \"skype\"\nstatus = \"forbidden\"\n",
    )
    .unwrap();
    let path = catalog.path().to_string_lossy().into_owned();
    let run = run_agent(&[
        "scan",
        "--root",
        &root.path().to_string_lossy(),
        "--catalog",
        &path,
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(&format!("{path}:4:")), "{}", run.stderr);
    assert!(run.stderr.contains("key `status`"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let missing = run_agent(&[
        "scan",
        "--root",
        &root.path().to_string_lossy(),
        "--catalog",
        "/nonexistent/rules.toml",
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("/nonexistent/rules.toml"),
        "{}",
        missing.stderr
    );
}

#[test]
fn the_built_in_catalog_prints_and_reads_back_as_a_local_catalog() {
    let run = run_agent(&["catalog"]);
    assert_eq!(run.code, 0);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &run.stdout).unwrap();
    let root = FixtureRoot::new();
    let (code, _) = scan_json(&root, &["--catalog", &file.path().to_string_lossy()]);
    assert_eq!(code, 0);
}

#[test]
fn a_live_scan_of_this_machine_completes() {
    let run = run_agent(&["scan", "--format", "json"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let report = run.json();
    assert!(
        report["skipped"].as_array().unwrap().is_empty(),
        "a live scan inspects processes"
    );
    assert!(report["host"]["scanned_root"].is_null());
}
