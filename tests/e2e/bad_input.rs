//! Damaged and hostile input: no panic, an entry in `errors`, and the other sources
//! still report.

use sverka_tests::*;

/// A root whose flatpak shows Telegram, so every test can check the rest still reports.
fn root_with_a_good_source() -> FixtureRoot {
    let root = FixtureRoot::new();
    root.flatpak_system("org.telegram.desktop");
    root
}

fn assert_other_sources_still_report(report: &serde_json::Value) {
    assert!(
        finding(report, "telegram").is_some(),
        "the flatpak finding is missing: {report:#}"
    );
}

#[test]
fn a_truncated_dpkg_status_file() {
    let root = root_with_a_good_source();
    root.file(
        "/var/lib/dpkg/status",
        "Package: viber\nStatus: install ok installed\nVersion: 21\n\nPackage: disc",
    );
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1);
    assert_other_sources_still_report(&report);
    assert!(
        finding(&report, "viber").is_some(),
        "the complete stanza is still read"
    );
    assert!(
        errors_of(&report, "dpkg")
            .iter()
            .any(|error| error.contains("truncated")),
        "{report:#}"
    );
}

#[test]
fn a_dpkg_status_file_of_binary_junk() {
    let root = root_with_a_good_source();
    let junk: Vec<u8> = (0..20_000u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    root.file("/var/lib/dpkg/status", junk);
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    let errors = errors_of(&report, "dpkg");
    assert!(
        errors.iter().any(|error| error.contains("not UTF-8")),
        "{report:#}"
    );
    assert!(
        errors.iter().any(|error| error.contains("damaged")),
        "{report:#}"
    );
}

#[test]
fn a_dpkg_status_that_is_a_folder_or_unreadable() {
    let root = root_with_a_good_source();
    root.dir("/var/lib/dpkg/status");
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    assert!(
        errors_of(&report, "dpkg")[0].contains("cannot read"),
        "{report:#}"
    );
}

#[test]
fn damaged_rpm_databases_of_every_format() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "/var/lib/rpm/rpmdb.sqlite",
            b"SQLite format 3\0 but not really".to_vec(),
            "not a readable rpm SQLite database",
        ),
        (
            "/var/lib/rpm/Packages",
            vec![0u8; 8192],
            "not a Berkeley DB file",
        ),
        (
            "/var/lib/rpm/Packages",
            b"short".to_vec(),
            "not a Berkeley DB file",
        ),
        ("/var/lib/rpm/Packages.db", b"RpmP".to_vec(), "ndb format"),
    ];
    for (path, contents, message) in cases {
        let root = root_with_a_good_source();
        root.file(path, contents);
        let (_, report) = scan_json(&root, &[]);
        assert_other_sources_still_report(&report);
        let errors = errors_of(&report, "rpm");
        assert!(
            errors.iter().any(|error| error.contains(message)),
            "{path}: {errors:?}"
        );
    }
}

#[test]
fn a_berkeley_db_with_a_damaged_page_still_yields_the_other_packages() {
    let root = root_with_a_good_source();
    let blobs: Vec<Vec<u8>> = (0..40)
        .map(|index| rpm_header(&format!("package-{index}"), "1.0"))
        .chain([rpm_header("viber", "21")])
        .collect();
    root.rpm_berkeley_db("/var/lib/rpm", &blobs);
    let path = root.local("/var/lib/rpm/Packages");
    let mut bytes = std::fs::read(&path).unwrap();
    // Scribble over the index of page 2.
    for byte in &mut bytes[2 * 4096 + 20..2 * 4096 + 60] {
        *byte = 0xff;
    }
    std::fs::write(&path, bytes).unwrap();
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    assert!(
        !errors_of(&report, "rpm").is_empty(),
        "the damage is reported: {report:#}"
    );
}

#[test]
fn a_truncated_berkeley_db() {
    let root = root_with_a_good_source();
    let blobs: Vec<Vec<u8>> = (0..60)
        .map(|index| rpm_header(&format!("package-{index}"), "1.0"))
        .collect();
    root.rpm_berkeley_db("/var/lib/rpm", &blobs);
    let path = root.local("/var/lib/rpm/Packages");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2 + 100]).unwrap();
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    assert!(
        errors_of(&report, "rpm")
            .iter()
            .any(|error| error.contains("truncated")),
        "{report:#}"
    );
}

#[test]
fn a_locked_rpm_sqlite_database_is_still_read() {
    let root = root_with_a_good_source();
    root.rpm_sqlite("/var/lib/rpm", &[("viber", "21")]);
    let connection = rusqlite::Connection::open(root.local("/var/lib/rpm/rpmdb.sqlite")).unwrap();
    connection
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO Packages (blob) VALUES (x'00');")
        .unwrap();
    let (_, report) = scan_json(&root, &[]);
    drop(connection);
    assert_other_sources_still_report(&report);
    assert!(finding(&report, "viber").is_some(), "{report:#}");
    assert!(
        errors_of(&report, "rpm")
            .iter()
            .any(|error| error.contains("immutable")),
        "{report:#}"
    );
}

#[test]
fn binary_junk_in_a_launcher_and_non_utf8_names() {
    let root = root_with_a_good_source();
    root.user("anna", 1000);
    root.file(
        "/usr/share/applications/junk.desktop",
        b"\x00\x01\x02\xff\xfe garbage \x7fELF",
    );
    root.file(
        "/usr/share/applications/half.desktop",
        b"[Desktop Entry]\nName=\xff\xfe\nExec=/opt/viber/Viber\n",
    );
    // A file and a folder whose names are not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let odd = root
        .local("/home/anna")
        .join(std::ffi::OsStr::from_bytes(b"\xff\xfe-folder"));
    std::fs::create_dir_all(odd.join("Telegram")).unwrap();
    std::fs::write(odd.join("Telegram/Telegram"), ELF_HEADER).unwrap();
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    let launcher_errors = errors_of(&report, "desktop_entry");
    assert!(
        launcher_errors
            .iter()
            .any(|error| error.contains("junk.desktop")),
        "{report:#}"
    );
    assert!(
        finding(&report, "viber").is_some(),
        "the half-readable launcher still counts"
    );
    let telegram = finding(&report, "telegram").unwrap();
    assert!(
        evidence_sources(telegram).contains(&"file".to_string()),
        "{telegram:#}"
    );
}

#[test]
fn symlink_loops_and_links_out_of_the_home_are_not_followed() {
    let root = root_with_a_good_source();
    root.user("anna", 1000);
    root.link("/home/anna", "/home/anna/loop");
    root.link("..", "/home/anna/up");
    root.program("/srv/elsewhere/Telegram/Telegram");
    root.link("/srv/elsewhere", "/home/anna/elsewhere");
    let (_, report) = scan_json(&root, &["--inventory"]);
    let telegram = finding(&report, "telegram").unwrap();
    // The program is found where it is (by the executable inventory, in /srv), never
    // through the links of the home.
    let mut sources = evidence_sources(telegram);
    sources.sort();
    assert_eq!(
        sources,
        vec!["file", "flatpak"],
        "links are not followed: {telegram:#}"
    );
    let evidence = telegram["evidence"].to_string();
    assert!(
        evidence.contains("\"/srv/elsewhere/Telegram/Telegram\"")
            && !evidence.contains("/home/anna/"),
        "links are not followed: {telegram:#}"
    );
    let (_, without) = scan_json(&root, &["--no-inventory"]);
    let telegram = finding(&without, "telegram").unwrap();
    assert_eq!(evidence_sources(telegram), vec!["flatpak"], "{telegram:#}");
}

#[test]
fn unreadable_folders_are_reported_and_the_rest_walked() {
    // Run as an unprivileged user (the agent usually runs as root, which no folder
    // permission stops; a pupil's locked folder on a network home can still refuse).
    let root = root_with_a_good_source();
    root.user("anna", 1000);
    root.program("/home/anna/Telegram/Telegram");
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::Permissions::from_mode(0o755);
    for folder in ["/", "/home", "/home/anna", "/home/anna/Telegram"] {
        std::fs::set_permissions(root.local(folder), open.clone()).unwrap();
    }
    std::fs::set_permissions(
        root.local("/home/anna/Telegram/Telegram"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let locked = root.local("/home/anna/private");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = run_agent_unprivileged(&[
        "scan",
        "--root",
        &root.path().to_string_lossy(),
        "--format",
        "json",
    ]);
    std::fs::set_permissions(&locked, open).unwrap();
    let report = run.json();
    let telegram = finding(&report, "telegram").unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        evidence_sources(telegram).contains(&"file".to_string()),
        "{telegram:#}"
    );
    let errors = errors_of(&report, "file");
    assert!(
        errors.iter().any(
            |error| error.contains("could not be read") && error.contains("/home/anna/private")
        ),
        "{report:#}"
    );
}

#[test]
fn walks_stop_at_their_limits_and_say_so() {
    let root = root_with_a_good_source();
    root.user("anna", 1000);
    for index in 0..300 {
        root.file(&format!("/home/anna/many/file-{index}"), "x");
    }
    root.program("/home/anna/a/b/c/d/e/f/g/h/i/j/Telegram/Telegram");
    let (_, report) = scan_json(&root, &["--walk-entries", "100"]);
    assert!(
        errors_of(&report, "file")
            .iter()
            .any(|error| error.contains("stopped after 100 entries")),
        "{report:#}"
    );
    let (_, report) = scan_json(&root, &[]);
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(
        evidence_sources(telegram),
        vec!["flatpak"],
        "deeper than the depth limit: {telegram:#}"
    );
}

#[test]
fn toolchain_folders_are_skipped_unless_asked() {
    let root = root_with_a_good_source();
    root.user("anna", 1000);
    root.program("/home/anna/.cargo/registry/Telegram/Telegram");
    root.program("/home/anna/work/node_modules/x/Telegram/Telegram");
    let (_, report) = scan_json(&root, &[]);
    assert_eq!(
        evidence_sources(finding(&report, "telegram").unwrap()),
        vec!["flatpak"]
    );
    let (_, report) = scan_json(&root, &["--walk-everything"]);
    let sources = evidence_sources(finding(&report, "telegram").unwrap());
    assert_eq!(
        sources.iter().filter(|source| *source == "file").count(),
        2,
        "{report:#}"
    );
}

#[test]
fn a_huge_passwd_or_status_file_is_read_only_up_to_a_bound() {
    let root = root_with_a_good_source();
    // /var/lib/dpkg/status as a link to an endless device: bounded reads, no hang.
    root.link("/dev/zero", "/var/lib/dpkg/status");
    let (_, report) = scan_json(&root, &[]);
    assert_other_sources_still_report(&report);
    assert!(
        errors_of(&report, "dpkg")
            .iter()
            .any(|error| error.contains("not a regular file")),
        "{report:#}"
    );
}
