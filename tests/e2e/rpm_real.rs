//! The rpm readers against databases made by the real tools: `rpm` itself writes a
//! SQLite rpmdb, Berkeley DB's `db5.3_load` writes the hash file, and `rpm` reads that
//! one back too, so both fixtures are what real systems carry.

use std::process::Command;
use sverka_tests::*;

fn build_rpm(work: &std::path::Path, name: &str, version: &str) -> std::path::PathBuf {
    let spec = work.join(format!("{name}.spec"));
    std::fs::write(
        &spec,
        format!("Name: {name}\nVersion: {version}\nRelease: alt1\nSummary: fixture\nLicense: MIT\nBuildArch: noarch\n%description\n{}\n%files\n", "fixture ".repeat(600)),
    )
    .unwrap();
    let output = Command::new(require_tool("rpmbuild", "rpm"))
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", work.join("top").display()))
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    work.join(format!("top/RPMS/noarch/{name}-{version}-alt1.noarch.rpm"))
}

fn rpm_query(database: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let output = Command::new(require_tool("rpm", "rpm"))
        .arg("--dbpath")
        .arg(database)
        .args(extra)
        .args(["-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE}\\n"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rpm -qa: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn databases_written_by_rpm_and_berkeley_db_read_like_rpm_reads_them() {
    let work = tempfile::tempdir().unwrap();
    let packages: Vec<_> = [
        ("telegram-desktop", "4.16.8"),
        ("viber", "21.0"),
        ("telegraf", "1.26.0"),
    ]
    .iter()
    .map(|(name, version)| build_rpm(work.path(), name, version))
    .collect();

    // RED OS 8 style: rpm writes rpmdb.sqlite.
    let sqlite_root = FixtureRoot::new();
    let database = sqlite_root.local("/var/lib/rpm");
    std::fs::create_dir_all(&database).unwrap();
    let rpm = require_tool("rpm", "rpm");
    let status = Command::new(&rpm)
        .arg("--dbpath")
        .arg(&database)
        .arg("--initdb")
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new(&rpm)
        .arg("--dbpath")
        .arg(&database)
        .args(["-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos"])
        .args(&packages)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rpm -i: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let truth = rpm_query(&database, &[]);
    assert_eq!(truth.len(), 3);

    let before: Vec<_> = std::fs::read_dir(&database)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    let sqlite_bytes = std::fs::read(database.join("rpmdb.sqlite")).unwrap();
    let (code, report) = scan_json(&sqlite_root, &[]);
    assert_eq!(code, 1);
    let mut seen: Vec<String> = finding(&report, "telegram")
        .into_iter()
        .chain(finding(&report, "viber"))
        .map(|found| format!("{}", found["evidence"][0]["detail"]))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "\"rpm package telegram-desktop 4.16.8-alt1\"",
            "\"rpm package viber 21.0-alt1\""
        ]
    );
    assert!(
        finding(&report, "telegram").is_some() && finding_ids(&report).len() == 2,
        "telegraf is not Telegram: {report:#}"
    );
    assert!(errors_of(&report, "rpm").is_empty(), "{report:#}");
    // Read-only: the database is byte for byte the same and no file was added.
    assert_eq!(
        std::fs::read(database.join("rpmdb.sqlite")).unwrap(),
        sqlite_bytes
    );
    let after: Vec<_> = std::fs::read_dir(&database)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "{before:?} vs {after:?}");

    // ALT Linux style: the same headers in a Berkeley DB hash file.
    let connection = rusqlite::Connection::open_with_flags(
        database.join("rpmdb.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let blobs: Vec<Vec<u8>> = connection
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        blobs.iter().any(|blob| blob.len() > 4096),
        "one header is large enough for overflow pages"
    );
    let bdb_root = FixtureRoot::new();
    bdb_root.rpm_berkeley_db("/var/lib/rpm", &blobs);
    let bdb_database = bdb_root.local("/var/lib/rpm");
    assert_eq!(
        rpm_query(&bdb_database, &["--define", "_db_backend bdb_ro"]),
        truth,
        "rpm itself reads the fixture"
    );
    let bdb_bytes = std::fs::read(bdb_database.join("Packages")).unwrap();
    let (code, bdb_report) = scan_json(&bdb_root, &[]);
    assert_eq!(code, 1);
    assert_eq!(finding_ids(&bdb_report), finding_ids(&report));
    assert!(errors_of(&bdb_report, "rpm").is_empty(), "{bdb_report:#}");
    assert_eq!(
        std::fs::read(bdb_database.join("Packages")).unwrap(),
        bdb_bytes
    );
}
