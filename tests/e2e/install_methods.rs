//! Every Linux install method of every messenger that exists on Linux is found, with
//! the right user, scope and strength.

use serde_json::Value;
use sverka_tests::*;

/// Asserts that `app` is found with evidence from `source` and returns the finding.
fn assert_found<'a>(report: &'a Value, app: &str, source: &str) -> &'a Value {
    let found = finding(report, app).unwrap_or_else(|| panic!("{app} not found in {report:#}"));
    assert!(
        evidence_sources(found).iter().any(|kind| kind == source),
        "{app} has no {source} evidence: {found:#}"
    );
    found
}

#[test]
fn dpkg_packages_of_every_messenger_packaged_for_debian() {
    let root = FixtureRoot::new();
    root.os_release("astra", "Astra Linux 1.7").dpkg(&[
        ("telegram-desktop", "4.6.5+ds-2", "install ok installed"),
        ("discord", "0.0.76", "install ok installed"),
        ("viber", "21.0.0.1", "install ok installed"),
        ("teams", "1.5.00.23861", "install ok installed"),
        ("skypeforlinux", "8.110", "install ok installed"),
        ("wechat", "4.0.1", "install ok installed"),
        ("threema", "1.2.41", "install ok installed"),
        ("whatsapp-for-linux", "1.6.4", "install ok installed"),
        ("vk-messenger", "6.0.57", "install ok installed"),
        ("max", "26.33.0", "install ok installed"),
        ("coreutils", "9.1-1", "install ok installed"),
    ]);
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "banned messengers were found");
    for app in [
        "telegram",
        "discord",
        "viber",
        "microsoft_teams",
        "wechat",
        "threema",
        "whatsapp",
        "skype",
        "vk_messenger",
        "max",
    ] {
        let found = assert_found(&report, app, "dpkg");
        assert_eq!(found["strength"], "installed");
        assert_eq!(found["evidence"][0]["scope"], "machine");
        assert_eq!(found["evidence"][0]["path"], "/var/lib/dpkg/status");
    }
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(telegram["status"], "banned");
    assert_eq!(telegram["evidence"][0]["version"], "4.6.5+ds-2");
    assert_eq!(finding(&report, "skype").unwrap()["status"], "watch");
    assert_eq!(finding(&report, "max").unwrap()["status"], "approved");
    assert_eq!(report["host"]["os_id"], "astra");
    assert_eq!(report["host"]["hostname"], "school-pc-7");
}

#[test]
fn a_removed_package_with_configuration_left_is_not_installed() {
    let root = FixtureRoot::new();
    root.dpkg(&[
        ("telegram-desktop", "4.6.5", "deinstall ok config-files"),
        ("viber", "21", "purge ok not-installed"),
    ]);
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 0);
    assert!(finding_ids(&report).is_empty(), "{report:#}");
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}

#[test]
fn rpm_sqlite_database_of_red_os_is_read() {
    let root = FixtureRoot::new();
    root.os_release("redos", "RED OS 8").rpm_sqlite(
        "/var/lib/rpm",
        &[
            ("telegram-desktop", "4.16.8"),
            ("max", "26.33.0"),
            ("bash", "5.2"),
        ],
    );
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1);
    let telegram = assert_found(&report, "telegram", "rpm");
    assert_eq!(telegram["evidence"][0]["version"], "4.16.8-alt1");
    assert_eq!(telegram["evidence"][0]["path"], "/var/lib/rpm/rpmdb.sqlite");
    assert_found(&report, "max", "rpm");
}

#[test]
fn rpm_berkeley_db_of_alt_linux_is_read_including_large_headers() {
    let root = FixtureRoot::new();
    let mut blobs = vec![
        rpm_header("telegram-desktop", "4.9.5"),
        rpm_header("glibc", "2.32"),
    ];
    // A 12 kB summary makes this header span several overflow pages.
    blobs.push(sverka_agent::scan::sources::rpm::header::build_header(
        &[
            (1000, "viber"),
            (1001, "21.0"),
            (1002, "alt1"),
            (1004, &"a long summary ".repeat(800)),
        ],
        &[],
    ));
    root.os_release("altlinux", "ALT Workstation 10")
        .rpm_berkeley_db("/var/lib/rpm", &blobs);
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_found(&report, "telegram", "rpm");
    let viber = assert_found(&report, "viber", "rpm");
    assert_eq!(viber["evidence"][0]["version"], "21.0-alt1");
    assert!(errors_of(&report, "rpm").is_empty(), "{report:#}");
}

#[test]
fn flatpak_system_and_per_user() {
    let root = FixtureRoot::new();
    root.user("anna", 1000).user("boris", 1001);
    root.flatpak_system("com.viber.Viber")
        .flatpak_user("anna", "org.telegram.desktop")
        .flatpak_user("boris", "com.github.eneshecan.WhatsAppForLinux")
        .flatpak_user("boris", "io.github.mimbrero.WhatsAppDesktop")
        .flatpak_system("com.discordapp.Discord")
        .flatpak_system("com.tencent.WeChat")
        .flatpak_system("ch.threema.threema-web-desktop")
        .flatpak_system("com.microsoft.Teams");
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1);
    let telegram = assert_found(&report, "telegram", "flatpak");
    assert_eq!(telegram["users"], serde_json::json!(["anna"]));
    assert_eq!(telegram["evidence"][0]["scope"], "user");
    assert_eq!(
        telegram["evidence"][0]["detail"],
        "flatpak org.telegram.desktop (stable)"
    );
    let whatsapp = assert_found(&report, "whatsapp", "flatpak");
    assert_eq!(whatsapp["users"], serde_json::json!(["boris"]));
    assert_eq!(whatsapp["evidence"].as_array().unwrap().len(), 2);
    for app in ["viber", "discord", "wechat", "threema", "microsoft_teams"] {
        assert_eq!(
            assert_found(&report, app, "flatpak")["evidence"][0]["scope"],
            "machine"
        );
    }
}

#[test]
fn snaps_mounted_or_only_downloaded() {
    let root = FixtureRoot::new();
    root.snap("telegram-desktop", "6123");
    root.file("/var/lib/snapd/snaps/discord_210.snap", b"hsqs");
    root.snap("core22", "1380");
    let (_, report) = scan_json(&root, &[]);
    let telegram = assert_found(&report, "telegram", "snap");
    assert_eq!(telegram["evidence"][0]["version"], "6123");
    assert_found(&report, "discord", "snap");
    assert_eq!(finding_ids(&report).len(), 2, "{report:#}");
}

#[test]
fn the_telegram_tarball_in_a_localized_downloads_folder_and_its_launcher() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    root.program("/home/anna/Загрузки/tsetup.5.8.3/Telegram/Telegram");
    root.file(
        "/home/anna/Загрузки/tsetup.5.8.3/Telegram/Updater",
        b"\x7fELF",
    );
    root.launcher(
        "/home/anna/.local/share/applications/org.telegram.desktop._1a2b3c4d5e.desktop",
        "Telegram",
        "/home/anna/Загрузки/tsetup.5.8.3/Telegram/Telegram -- %u",
        Some("TelegramDesktop"),
    );
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1);
    let telegram = assert_found(&report, "telegram", "file");
    assert_found(&report, "telegram", "desktop_entry");
    assert_eq!(telegram["users"], serde_json::json!(["anna"]));
    let file = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["source"] == "file")
        .unwrap();
    assert_eq!(
        file["path"],
        "/home/anna/Загрузки/tsetup.5.8.3/Telegram/Telegram"
    );
    assert_eq!(file["user"], "anna");
    assert_eq!(file["scope"], "user");
    let launcher = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["source"] == "desktop_entry")
        .unwrap();
    assert_eq!(launcher["strength"], "installed", "its program exists");
    assert_eq!(
        telegram["evidence"].as_array().unwrap().len(),
        2,
        "Updater is not evidence: {telegram:#}"
    );
}

#[test]
fn appimages_and_portable_copies_on_the_desktop_and_in_opt() {
    let root = FixtureRoot::new();
    root.user("anna", 1000).user("boris", 1001);
    root.appimage("/home/anna/Рабочий стол/Telegram_Desktop-x86_64.AppImage");
    root.appimage("/home/boris/Apps/MAX.AppImage");
    root.program("/opt/viber/Viber");
    root.program("/opt/wechat/wechat");
    root.program("/home/boris/tools/discord/Discord");
    root.program("/usr/local/max/bin/max");
    let (_, report) = scan_json(&root, &[]);
    let telegram = assert_found(&report, "telegram", "file");
    assert!(
        telegram["evidence"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("AppImage")
    );
    assert_eq!(telegram["users"], serde_json::json!(["anna"]));
    assert_eq!(
        assert_found(&report, "viber", "file")["evidence"][0]["scope"],
        "machine"
    );
    assert_found(&report, "wechat", "file");
    assert_eq!(
        assert_found(&report, "discord", "file")["users"],
        serde_json::json!(["boris"])
    );
    assert_eq!(
        assert_found(&report, "max", "file")["evidence"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn launchers_of_removed_programs_and_leftover_data_are_traces() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    root.launcher(
        "/home/anna/.local/share/applications/viber.desktop",
        "Viber",
        "/opt/viber/Viber %u",
        None,
    );
    root.dir("/home/anna/.ViberPC/380123456789");
    root.dir("/home/anna/.local/share/TelegramDesktop/tdata");
    root.dir("/home/anna/.var/app/com.discordapp.Discord");
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 0, "traces alone are not a violation: {report:#}");
    for app in ["viber", "telegram", "discord"] {
        let found = finding(&report, app).unwrap_or_else(|| panic!("{app}: {report:#}"));
        assert_eq!(found["strength"], "trace", "{found:#}");
        assert_eq!(found["users"], serde_json::json!(["anna"]));
    }
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(telegram["evidence"][0]["source"], "data_dir");
    assert_eq!(
        telegram["evidence"][0]["path"],
        "/home/anna/.local/share/TelegramDesktop"
    );
}

#[test]
fn users_missing_from_passwd_are_scanned_from_home() {
    let root = FixtureRoot::new();
    // A directory-service user: a home folder, no passwd line.
    root.program("/home/ivanov.ii/Telegram/Telegram");
    let (_, report) = scan_json(&root, &[]);
    assert_eq!(
        finding(&report, "telegram").unwrap()["users"],
        serde_json::json!(["ivanov.ii"])
    );
}

#[test]
fn offline_scans_skip_processes_and_say_so() {
    let root = FixtureRoot::new();
    let (_, report) = scan_json(&root, &[]);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["source"], "process");
    assert!(report["host"]["scanned_root"].as_str().unwrap().len() > 1);
}

#[test]
fn a_running_renamed_portable_copy_is_found_by_its_path() {
    // A real process: a copy of `sleep` placed where a portable Telegram lives.
    let folder = tempfile::tempdir().unwrap();
    let program_folder = folder.path().join("Telegram");
    std::fs::create_dir_all(&program_folder).unwrap();
    let program = program_folder.join("Telegram");
    std::fs::copy("/bin/sleep", &program).unwrap();
    let mut child = std::process::Command::new(&program)
        .arg("30")
        .spawn()
        .unwrap();
    let run = run_agent(&["scan", "--format", "json"]);
    let _ = child.kill();
    let _ = child.wait();
    let report = run.json();
    let telegram = finding(&report, "telegram")
        .unwrap_or_else(|| panic!("running copy not found: {report:#}"));
    let process = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["source"] == "process")
        .unwrap_or_else(|| panic!("{telegram:#}"));
    assert_eq!(process["strength"], "running");
    assert_eq!(process["path"], program.to_string_lossy().as_ref());
    assert_eq!(telegram["strength"], "running");
    assert_eq!(run.code, 1);
}
