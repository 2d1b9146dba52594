//! Evidence of last use in offline scans: a data folder's modification time on Linux,
//! a Prefetch entry's on Windows (newer than the data folder), and times that are not
//! trusted (after the scan, before 2000).

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};
use sverka_agent::scan::rfc3339_utc;
use sverka_tests::windows::{TELEGRAM, WindowsVolume, program_with_version};
use sverka_tests::*;

/// Now, to the second (file times are compared as RFC 3339 text).
fn now() -> SystemTime {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

fn set_modified(path: &Path, time: SystemTime) {
    std::fs::File::open(path)
        .and_then(|handle| handle.set_modified(time))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
}

fn last_use(finding: &Value) -> (Option<&str>, Option<&str>) {
    (
        finding["last_used"].as_str(),
        finding["last_used_source"].as_str(),
    )
}

#[test]
fn a_telegram_data_folder_modified_two_days_ago_was_last_used_two_days_ago() {
    let root = FixtureRoot::new();
    root.user("anna", 1000)
        .dir("/home/anna/.local/share/TelegramDesktop/tdata")
        .dir("/home/anna/.ViberPC")
        .dir("/home/anna/.config/discord");
    let two_days_ago = now() - Duration::from_secs(2 * 86_400);
    set_modified(
        &root.local("/home/anna/.local/share/TelegramDesktop"),
        two_days_ago,
    );
    // A clock far ahead, and one never set: neither time is reported.
    set_modified(
        &root.local("/home/anna/.ViberPC"),
        now() + Duration::from_secs(86_400),
    );
    set_modified(
        &root.local("/home/anna/.config/discord"),
        SystemTime::UNIX_EPOCH + Duration::from_secs(86_400),
    );
    let (_, report) = scan_json(&root, &[]);

    let telegram = finding(&report, "telegram").unwrap_or_else(|| panic!("{report:#}"));
    let expected = rfc3339_utc(two_days_ago);
    assert_eq!(
        last_use(telegram),
        (Some(expected.as_str()), Some("data_dir")),
        "{telegram:#}"
    );
    let evidence = &telegram["evidence"][0];
    assert_eq!(evidence["source"], "data_dir");
    assert_eq!(evidence["path"], "/home/anna/.local/share/TelegramDesktop");
    assert_eq!(evidence["last_used"], expected.as_str());

    for app in ["viber", "discord"] {
        let found = finding(&report, app).unwrap_or_else(|| panic!("{app}: {report:#}"));
        assert_eq!(last_use(found), (None, None), "{found:#}");
        assert!(found["evidence"][0].get("last_used").is_none(), "{found:#}");
    }
}

#[test]
fn a_prefetch_entry_newer_than_the_data_folder_gives_prefetch() {
    let volume = WindowsVolume::with_hives();
    volume
        .file(
            "C:\\Users\\anna\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe",
            program_with_version(&TELEGRAM),
        )
        .dir("C:\\Users\\anna\\AppData\\Local\\max\\Cache")
        .file(
            "C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf",
            b"MAM\x04",
        )
        .file("C:\\Windows\\Prefetch\\MAX.EXE-0A0B0C0D.pf", b"MAM\x04")
        .file("C:\\Windows\\Prefetch\\NOTEPAD.EXE-D8414F97.pf", b"MAM\x04")
        .file("C:\\Windows\\Prefetch\\Layout.ini", b"");
    let hour_ago = now() - Duration::from_secs(3600);
    let day_ago = now() - Duration::from_secs(86_400);
    let three_days_ago = now() - Duration::from_secs(3 * 86_400);
    set_modified(
        &volume.local("C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf"),
        hour_ago,
    );
    set_modified(
        &volume.local("C:\\Windows\\Prefetch\\MAX.EXE-0A0B0C0D.pf"),
        day_ago,
    );
    set_modified(
        &volume.local("C:\\Users\\anna\\AppData\\Local\\max"),
        three_days_ago,
    );
    let (_, report) = volume.scan_json();

    let telegram = finding(&report, "telegram").unwrap_or_else(|| panic!("{report:#}"));
    let hour = rfc3339_utc(hour_ago);
    assert_eq!(
        last_use(telegram),
        (Some(hour.as_str()), Some("prefetch")),
        "{telegram:#}"
    );
    let prefetch: Vec<&Value> = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|evidence| evidence["last_used_source"] == "prefetch")
        .collect();
    assert_eq!(prefetch.len(), 1, "{telegram:#}");
    assert_eq!(
        prefetch[0]["path"],
        "C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf"
    );
    assert_eq!(prefetch[0]["strength"], "trace");
    assert_eq!(telegram["strength"], "installed", "{telegram:#}");

    // MAX: the data folder (three days ago) and the Prefetch entry (a day ago).
    let max = finding(&report, "max").unwrap_or_else(|| panic!("{report:#}"));
    let day = rfc3339_utc(day_ago);
    assert_eq!(
        last_use(max),
        (Some(day.as_str()), Some("prefetch")),
        "{max:#}"
    );
    let folder = max["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|evidence| evidence["source"] == "data_dir")
        .unwrap_or_else(|| panic!("{max:#}"));
    assert_eq!(folder["last_used"], rfc3339_utc(three_days_ago).as_str());
    assert_eq!(folder["last_used_source"], "data_dir");

    // Prefetch entries of other programs make no finding and no evidence.
    assert!(!report.to_string().contains("NOTEPAD.EXE"), "{report:#}");
}

/// The service's check between scans, as its child process runs it: a running program
/// named as Telegram is recorded with the time it was seen; the record is kept when the
/// program has ended, and a damaged record starts again without failing the check.
#[test]
fn the_process_check_records_when_a_catalog_program_was_seen_running() {
    let folder = tempfile::tempdir().unwrap();
    let state = folder.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let program_folder = folder.path().join("Telegram");
    std::fs::create_dir_all(&program_folder).unwrap();
    let program = program_folder.join("Telegram");
    let record_path = state.join("seen-running.json");
    std::fs::write(&record_path, b"\x00not a record").unwrap();

    let mut child = spawn_copied_program(Path::new("/bin/sleep"), &program, &["60"]).unwrap();
    let before = now();
    let run = run_agent(&[
        "service-process-check",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let after = SystemTime::now();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("starts again"), "{}", run.stderr);

    let record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", record_path.display()));
    let seen = record["seen_running"]["telegram"]
        .as_u64()
        .unwrap_or_else(|| panic!("telegram not recorded: {record:#}"));
    let seconds = |time: SystemTime| {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert!(
        (seconds(before)..=seconds(after)).contains(&seen),
        "{seen} not between {before:?} and {after:?}"
    );

    // The program has ended: a second check keeps when it was last seen.
    let run = run_agent(&[
        "service-process-check",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["seen_running"]["telegram"].as_u64(), Some(seen));
}
