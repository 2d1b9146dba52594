//! The executable inventory: programs outside the walked folders (`/srv`, a Wine
//! prefix's `C:\Tools`, `C:\Users\Public`, `C:\Games`), found by their version resource
//! or name wherever they sit, with negative controls beside each; its cache (a repeat
//! scan reads only what changed; a damaged or foreign cache is an error and rebuilt).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sverka_tests::windows::{TELEGRAM, VIBER, Version, WindowsVolume, program_with_version};
use sverka_tests::*;

const NOTEPAD: Version<'static> = Version {
    company: "Notepad++ Team",
    product: "Notepad++",
    original_filename: "notepad++.exe",
    description: "Notepad++",
};

/// A program padded to `size` bytes, so two programs can have the same size.
fn padded(version: &Version<'_>, size: usize) -> Vec<u8> {
    let mut bytes = program_with_version(version);
    assert!(bytes.len() <= size, "{} > {size}", bytes.len());
    bytes.resize(size, 0);
    bytes
}

fn executable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every evidence path of a report.
fn evidence_paths(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|finding| finding["evidence"].as_array().into_iter().flatten())
        .filter_map(|evidence| evidence["path"].as_str().map(str::to_string))
        .collect()
}

fn has_evidence(report: &Value, app: &str, path: &str) -> bool {
    finding(report, app).is_some_and(|finding| {
        finding["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|evidence| evidence["path"] == path)
    })
}

#[test]
fn programs_outside_the_walked_folders_are_found_on_linux() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    // /srv: the official tarball's layout, a renamed AppImage, a renamed Windows
    // program (for Wine), each with a namesake beside it that is not a messenger.
    root.program("/srv/apps/Telegram/Telegram")
        .file("/srv/apps/Telegram/Telegram.txt", "readme")
        .file(
            "/srv/other/Telegram/Telegram",
            "#!/bin/sh\necho not a program\n",
        )
        .program("/srv/apps/telegram-bot")
        .appimage("/srv/share/Telegram-x64.AppImage")
        .appimage("/srv/share/notes.AppImage")
        .file("/srv/share/homework.exe", program_with_version(&TELEGRAM))
        .file("/srv/share/editor.exe", program_with_version(&NOTEPAD))
        .file("/srv/share/broken.exe", b"MZ\x90\0\x03\0\0\0garbage");
    for program in ["/srv/apps/Telegram/Telegram", "/srv/apps/telegram-bot"] {
        executable(&root.local(program));
    }
    // A second disk mounted at /data: a Viber for Wine, deep down.
    root.file(
        "/data/backup/2024/tools/portable/v/app.exe",
        program_with_version(&VIBER),
    );
    // anna's Wine prefix: a renamed Telegram in C:\Tools; the same program in the
    // prefix's Windows folder is the system's business, not the inventory's.
    root.file(
        "/home/anna/.wine/drive_c/Tools/homework.exe",
        program_with_version(&TELEGRAM),
    )
    .file(
        "/home/anna/.wine/drive_c/windows/system32/tg.exe",
        program_with_version(&TELEGRAM),
    );
    // System folders are the package sources' business.
    root.program("/usr/lib/Telegram/Telegram");
    executable(&root.local("/usr/lib/Telegram/Telegram"));

    let (code, report) = scan_json(&root, &["--inventory"]);
    assert_eq!(code, 1, "{report:#}");
    for path in [
        "/srv/apps/Telegram/Telegram",
        "/srv/share/Telegram-x64.AppImage",
        "/srv/share/homework.exe",
        "/home/anna/.wine/drive_c/Tools/homework.exe",
    ] {
        assert!(
            has_evidence(&report, "telegram", path),
            "{path}: {report:#}"
        );
    }
    assert!(
        has_evidence(
            &report,
            "viber",
            "/data/backup/2024/tools/portable/v/app.exe"
        ),
        "{report:#}"
    );
    let telegram = finding(&report, "telegram").unwrap();
    let wine_copy = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|evidence| evidence["path"] == "/home/anna/.wine/drive_c/Tools/homework.exe")
        .unwrap();
    assert_eq!(wine_copy["user"], "anna", "{wine_copy:#}");
    assert!(
        wine_copy["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Telegram"),
        "{wine_copy:#}"
    );
    let paths = evidence_paths(&report);
    for control in [
        "/srv/apps/Telegram/Telegram.txt",
        "/srv/other/Telegram/Telegram",
        "/srv/apps/telegram-bot",
        "/srv/share/notes.AppImage",
        "/srv/share/editor.exe",
        "/home/anna/.wine/drive_c/windows/system32/tg.exe",
        "/usr/lib/Telegram/Telegram",
    ] {
        assert!(
            !paths.iter().any(|path| path == control),
            "{control}: {report:#}"
        );
    }
    // The damaged program is an error entry, nothing more.
    let errors = errors_of(&report, "file").join("\n");
    assert!(
        errors.contains("executable inventory: 1 program(s) had unreadable headers")
            && errors.contains("/srv/share/broken.exe"),
        "{errors}"
    );
    // Every file is reported once, whichever sources could see it.
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), paths.len(), "{paths:?}");

    // --no-inventory: only the walked folders.
    let (_, without) = scan_json(&root, &["--no-inventory"]);
    assert!(finding(&without, "viber").is_none(), "{without:#}");
}

#[test]
fn programs_anywhere_on_a_windows_volume_are_found_once() {
    let volume = WindowsVolume::new();
    volume
        .file("C:\\Tools\\homework.exe", program_with_version(&TELEGRAM))
        .file("C:\\Tools\\notepad.exe", program_with_version(&NOTEPAD))
        .file("C:\\Tools\\broken.exe", b"MZ\x90\0\x03\0\0\0garbage")
        .file("C:\\Tools\\readme.exe.txt", program_with_version(&VIBER))
        .file(
            "C:\\Users\\Public\\Documents\\v\\chat.exe",
            program_with_version(&VIBER),
        )
        .file(
            "C:\\Games\\x\\y\\z\\game.exe",
            program_with_version(&NOTEPAD),
        )
        .file(
            "C:\\Windows\\System32\\tg.exe",
            program_with_version(&TELEGRAM),
        )
        .file(
            "C:\\Program Files\\Telegram Desktop\\Telegram.exe",
            program_with_version(&TELEGRAM),
        );
    let root = volume.path().to_string_lossy().into_owned();
    let run = run_agent(&["scan", "--root", &root, "--format", "json", "--inventory"]);
    let report = run.json();
    assert_eq!(run.code, 1, "{report:#}");
    assert!(
        has_evidence(&report, "telegram", "/Tools/homework.exe"),
        "{report:#}"
    );
    assert!(
        has_evidence(&report, "viber", "/Users/Public/Documents/v/chat.exe"),
        "{report:#}"
    );
    let paths = evidence_paths(&report);
    for control in [
        "/Tools/notepad.exe",
        "/Tools/readme.exe.txt",
        "/Games/x/y/z/game.exe",
        "/Windows/System32/tg.exe",
    ] {
        assert!(
            !paths.iter().any(|path| path == control),
            "{control}: {report:#}"
        );
    }
    // Program Files is the portable-copy walk's: its program is evidence once.
    let in_program_files = paths
        .iter()
        .filter(|path| path.ends_with("Telegram Desktop/Telegram.exe"))
        .count();
    assert_eq!(in_program_files, 1, "{paths:?}");
    let errors = errors_of(&report, "file").join("\n");
    assert!(errors.contains("/Tools/broken.exe"), "{errors}");
}

#[test]
fn a_repeat_scan_reads_only_what_changed() {
    let root = FixtureRoot::new();
    let state = tempfile::tempdir().unwrap();
    let cache = state.path().join("executables.json");
    let cache_arg = cache.to_string_lossy().into_owned();
    let program = root.local("/srv/share/homework.exe");
    root.file("/srv/share/homework.exe", padded(&TELEGRAM, 32768));
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let set_modified = |time: SystemTime| {
        fs::File::options()
            .write(true)
            .open(&program)
            .and_then(|handle| handle.set_modified(time))
            .unwrap();
    };
    set_modified(long_ago);

    let (_, first) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&first, "telegram", "/srv/share/homework.exe"),
        "{first:#}"
    );
    let cached = fs::read_to_string(&cache).unwrap();
    assert!(
        cached.contains("homework.exe") && cached.contains("Telegram Desktop"),
        "{cached}"
    );

    // Other contents, the same size and modification time: the cache answers, so the
    // file is not read again (and it still says Telegram).
    fs::write(&program, padded(&VIBER, 32768)).unwrap();
    set_modified(long_ago);
    let (_, repeat) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&repeat, "telegram", "/srv/share/homework.exe"),
        "{repeat:#}"
    );
    assert!(finding(&repeat, "viber").is_none(), "{repeat:#}");
    assert!(errors_of(&repeat, "file").is_empty(), "{repeat:#}");

    // A new modification time: read again.
    set_modified(long_ago + Duration::from_secs(60));
    let (_, changed) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&changed, "viber", "/srv/share/homework.exe"),
        "{changed:#}"
    );
    assert!(finding(&changed, "telegram").is_none(), "{changed:#}");

    // Without the cache every file is read.
    fs::remove_file(&cache).unwrap();
    set_modified(long_ago + Duration::from_secs(60));
    let (_, uncached) = scan_json(&root, &["--inventory"]);
    assert!(
        has_evidence(&uncached, "viber", "/srv/share/homework.exe"),
        "{uncached:#}"
    );
    assert!(!cache.exists());
}

/// Sets a folder's (or file's) modification time.
fn set_modified(path: &Path, time: SystemTime) {
    fs::File::open(path)
        .and_then(|handle| handle.set_modified(time))
        .unwrap();
}

#[test]
fn a_repeat_scan_lists_only_the_folders_that_changed() {
    let root = FixtureRoot::new();
    let state = tempfile::tempdir().unwrap();
    let cache = state.path().join("executables.json");
    let cache_arg = cache.to_string_lossy().into_owned();
    let share = root.local("/srv/share");
    root.file("/srv/share/homework.exe", program_with_version(&TELEGRAM));
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    set_modified(&share, long_ago);

    let (_, first) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&first, "telegram", "/srv/share/homework.exe"),
        "{first:#}"
    );
    // JSON Lines: a header, then one line per folder.
    let cached = fs::read_to_string(&cache).unwrap();
    let share_key = share.to_string_lossy().into_owned();
    let folder = cached
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|folder| folder["path"] == share_key.as_str())
        .unwrap_or_else(|| panic!("{cached}"));
    assert_eq!(
        folder["listing"]["candidates"],
        serde_json::json!(["homework.exe"])
    );
    assert_eq!(folder["files"][0]["name"], "homework.exe", "{folder:#}");

    // A program added: the folder's time moves, so it is listed again.
    root.file("/srv/share/photos.exe", program_with_version(&VIBER));
    set_modified(&share, long_ago + Duration::from_secs(60));
    let (_, added) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&added, "viber", "/srv/share/photos.exe"),
        "{added:#}"
    );
    assert!(
        has_evidence(&added, "telegram", "/srv/share/homework.exe"),
        "{added:#}"
    );

    // A program removed the same way: gone from the findings.
    fs::remove_file(root.local("/srv/share/homework.exe")).unwrap();
    set_modified(&share, long_ago + Duration::from_secs(120));
    let (_, removed) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(finding(&removed, "telegram").is_none(), "{removed:#}");

    // A file system that does not move the folder's time (FAT on Windows) hides an
    // added program from the cached listing until the next full walk...
    root.file("/srv/share/homework.exe", program_with_version(&TELEGRAM));
    set_modified(&share, long_ago + Duration::from_secs(120));
    let (_, hidden) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        finding(&hidden, "telegram").is_none(),
        "the listing was not reused: {hidden:#}"
    );
    // ...which comes once a day: here, a cache whose last full walk is a day old.
    let header = |cache: &Path| -> (Value, String) {
        let text = fs::read_to_string(cache).unwrap();
        let (header, folders) = text.split_once('\n').unwrap();
        (serde_json::from_str(header).unwrap(), folders.to_string())
    };
    let (mut aged, folders) = header(&cache);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    aged["full_walk_at"] = serde_json::json!(now - 24 * 3600 - 1);
    fs::write(&cache, format!("{aged}\n{folders}")).unwrap();
    let (_, full) = scan_json(&root, &["--inventory-cache", &cache_arg]);
    assert!(
        has_evidence(&full, "telegram", "/srv/share/homework.exe"),
        "{full:#}"
    );
    let (rewritten, _) = header(&cache);
    assert!(
        rewritten["full_walk_at"].as_u64().unwrap() >= now,
        "{rewritten:#}"
    );
}

#[test]
fn a_damaged_or_foreign_cache_is_an_error_and_rebuilt() {
    let root = FixtureRoot::new();
    root.file("/srv/share/homework.exe", program_with_version(&TELEGRAM));
    let state = tempfile::tempdir().unwrap();
    let cache = state.path().join("executables.json");
    let cache_arg = cache.to_string_lossy().into_owned();
    // A scan of the cache as it is now: says it was `expected` and rebuilt it, finds
    // the program all the same, and the next scan reads the rebuilt cache without
    // complaint.
    let scan_finds_and_rebuilds = |expected: &str| {
        let (_, report) = scan_json(&root, &["--inventory-cache", &cache_arg]);
        let errors = errors_of(&report, "file").join("\n");
        assert!(
            errors.contains(expected) && errors.contains("rebuilt"),
            "{expected}: {errors}"
        );
        assert!(
            has_evidence(&report, "telegram", "/srv/share/homework.exe"),
            "{report:#}"
        );
        let (_, again) = scan_json(&root, &["--inventory-cache", &cache_arg]);
        assert!(errors_of(&again, "file").is_empty(), "{again:#}");
        assert!(
            has_evidence(&again, "telegram", "/srv/share/homework.exe"),
            "{again:#}"
        );
    };
    let foreign = r#"{"cache":"sverka executable inventory","agent_version":"0.0.0-other"}"#;
    for (contents, expected) in [
        (
            &b"{\"cache\": \"sverka executable inv"[..],
            "damaged cache file",
        ),
        (b"\xff\xfe\x00garbage", "damaged cache file"),
        (b"{\"spool\": []}", "not an executable inventory cache"),
        (foreign.as_bytes(), "cache of agent version 0.0.0-other"),
    ] {
        fs::write(&cache, contents).unwrap();
        scan_finds_and_rebuilds(expected);
    }

    // A cache whose header is sound but one folder's line is not: found damaged when
    // the scan reads that line, and rebuilt.
    let share = serde_json::to_string(&root.local("/srv/share")).unwrap();
    let start = format!("{{\"path\":{share}");
    let text = fs::read_to_string(&cache).unwrap();
    assert!(text.lines().any(|line| line.starts_with(&start)), "{text}");
    let damaged: Vec<String> = text
        .lines()
        .map(|line| match line.starts_with(&start) {
            true => format!("{start},\"files\":\"not a list\"}}"),
            false => line.to_string(),
        })
        .collect();
    fs::write(&cache, damaged.join("\n")).unwrap();
    scan_finds_and_rebuilds("damaged cache file");
}

/// The service's change watcher (fanotify, Linux 5.9 and root rights) tells each scan
/// which folders changed since the last: a program added where the folder's time was
/// set back (which hides it from a scan that goes by folder times) is found by the next
/// scan, and the folders the watcher saw no change in are not even looked at.
#[test]
fn the_services_change_watcher_finds_what_folder_times_hide() {
    watcher_finds_what_folder_times_hide(&FixtureRoot::new());
}

/// The same on btrfs, with `/srv` a subvolume of its own (another device number and
/// file system id than the image's root, on the same file system): the watcher's mark
/// on the root's file system sees the subvolume's changes too, and names their folders
/// through the root's mount.
#[test]
fn the_services_change_watcher_sees_into_a_btrfs_subvolume() {
    let folder = tempfile::tempdir().unwrap();
    let btrfs = sverka_tests::btrfs::BtrfsMount::over(folder.path());
    btrfs.subvolume(&folder.path().join("srv"));
    let root = FixtureRoot::new_in(folder);
    use std::os::unix::fs::MetadataExt as _;
    let device = |path: &str| fs::metadata(root.local(path)).unwrap().dev();
    assert_ne!(device("/"), device("/srv"));
    watcher_finds_what_folder_times_hide(&root);
}

/// A program added where the folder's time was set back is found by the service's
/// scans under its change watcher, and the journal answered for the folders unseen.
fn watcher_finds_what_folder_times_hide(root: &FixtureRoot) {
    let collector = TestCollector::start();
    root.user("anna", 1000);
    root.file("/srv/share/homework.exe", program_with_version(&TELEGRAM));
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let share = root.local("/srv/share");
    set_modified(&share, long_ago);
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_string_lossy().into_owned();
    let root_arg = root.path().to_string_lossy().into_owned();
    let enrolled = crate::reporting::enroll(&collector, root, state.path());
    assert_eq!(enrolled.code, 0, "{}", enrolled.stderr);
    let log = state.path().join("service.log");
    let mut service = std::process::Command::new(agent_binary())
        .args(["run", "--state-dir", &state_arg, "--root", &root_arg])
        .args(["--max-delay", "0", "--interval", "1s"])
        .env("SVERKA_LOG", "info")
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let report = |index: usize| serde_json::to_value(&collector.uploads()[index].scan).unwrap();
    let wait_for = |count: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while collector.uploads().len() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            collector.uploads().len() >= count,
            "{} reports; the service's log: {}",
            collector.uploads().len(),
            fs::read_to_string(&log).unwrap_or_default()
        );
    };
    // Two scans: the first makes the cache, the second is answered by the journal.
    wait_for(2);
    assert!(has_evidence(
        &report(1),
        "telegram",
        "/srv/share/homework.exe"
    ));
    assert!(finding(&report(1), "viber").is_none());

    root.file("/srv/share/photos.exe", program_with_version(&VIBER));
    set_modified(&share, long_ago);
    // The scan running now may have listed the folder before the change; the one
    // after it has not.
    let after = collector.uploads().len() + 2;
    wait_for(after);
    service.kill().unwrap();
    service.wait().unwrap();
    let found = report(after - 1);
    assert!(
        has_evidence(&found, "viber", "/srv/share/photos.exe")
            && has_evidence(&found, "telegram", "/srv/share/homework.exe"),
        "{found:#}"
    );
    let log = fs::read_to_string(&log).unwrap();
    assert_change_journal_answered(&log);
}
