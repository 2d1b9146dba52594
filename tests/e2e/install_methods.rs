//! Every Linux install method of every messenger that exists on Linux is found, with
//! the right user, scope and strength.

use serde_json::Value;
use std::path::Path;
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
    let mut child = spawn_copied_program(Path::new("/bin/sleep"), &program, &["30"]).unwrap();
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

/// The 2026 catalog on Linux: Telegram forks (AyuGram, Materialgram), MAX as its
/// native package, the 2025 Electron build and ALT's repack, VK Messenger (legacy) and
/// VK WorkSpace, with their namesakes beside them.
#[test]
fn the_2026_clients_on_linux_and_their_namesakes() {
    let root = FixtureRoot::new();
    root.os_release("altlinux", "ALT Workstation 11");
    root.user("anna", 1000).user("boris", 1001);
    root.dpkg(&[
        ("max", "26.33.0.76189", "install ok installed"),
        ("vk-messenger", "6.0.57", "install ok installed"),
        ("vkteams", "1.0", "install ok installed"),
        // Namesakes: TDLib and bot libraries, Signal, Element.
        ("libtdjson1.8.0", "1.8.0", "install ok installed"),
        ("telegram-bot-api", "7.0", "install ok installed"),
        ("python3-telegram-bot", "20.7", "install ok installed"),
        ("signal-desktop", "7.40.0", "install ok installed"),
        ("element-desktop", "1.11.85", "install ok installed"),
    ]);
    root.flatpak_user("anna", "com.ayugram.desktop")
        .flatpak_user("anna", "org.signal.Signal")
        .flatpak_user("anna", "im.riot.Riot");
    root.launcher(
        "/home/boris/.local/share/applications/io.github.kukuruzka165.materialgram.desktop",
        "materialgram",
        "/home/boris/Apps/materialgram/materialgram -- %u",
        None,
    );
    root.program("/home/boris/Apps/materialgram/materialgram");
    root.program("/opt/MAX/MAX");
    root.program("/opt/max/bin/max");
    root.program("/opt/Signal/signal-desktop");
    root.program("/opt/Element/element-desktop");
    root.program("/home/anna/Games/Game/lib64/libdiscord_game_sdk.so");
    root.program("/home/anna/Games/Game/discord_game_sdk.so");
    root.program("/usr/local/lib/libtdjson.so.1.8.0");
    root.dir("/home/anna/.local/share/AyuGramDesktop/tdata");
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "{report:#}");

    let telegram = assert_found(&report, "telegram", "flatpak");
    assert_eq!(telegram["users"], serde_json::json!(["anna", "boris"]));
    assert!(details_of(telegram).contains("com.ayugram.desktop"));
    assert!(details_of(telegram).contains("AyuGramDesktop"));
    assert_found(&report, "telegram", "desktop_entry");
    assert!(details_of(telegram).contains("materialgram"));

    let max = assert_found(&report, "max", "dpkg");
    assert_eq!(max["status"], "approved");
    let max_files: Vec<&str> = max["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|evidence| evidence["source"] == "file")
        .filter_map(|evidence| evidence["path"].as_str())
        .collect();
    assert_eq!(max_files.len(), 2, "{max:#}");
    assert!(max_files.contains(&"/opt/MAX/MAX") && max_files.contains(&"/opt/max/bin/max"));

    let vk = assert_found(&report, "vk_messenger", "dpkg");
    assert_eq!(vk["status"], "approved");
    assert_eq!(vk["name"], "VK Messenger (legacy)");
    let workspace = assert_found(&report, "vk_workspace", "dpkg");
    assert_eq!(workspace["status"], "approved");
    assert!(finding(&report, "microsoft_teams").is_none(), "{report:#}");

    let mut ids = finding_ids(&report);
    ids.sort();
    assert_eq!(
        ids,
        vec!["max", "telegram", "vk_messenger", "vk_workspace"],
        "namesakes (TDLib, bot libraries, game SDKs, Signal, Element) are not flagged"
    );
}

fn details_of(finding: &Value) -> String {
    finding["evidence"].to_string()
}

/// Domain users (SSSD, Winbind, FreeIPA) are not in `passwd`: their homes are found
/// from the configured home templates and the usual layouts, each named for its real
/// user; a folder of homes is never a user; bad templates are errors.
#[test]
fn domain_users_homes_are_found_and_named_for_their_users() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    // `/home/<domain>/<user>`, nothing configured: found by its shape.
    root.file("/home/school.local/ivanov.ii/.bashrc", "")
        .program("/home/school.local/ivanov.ii/Telegram/Telegram")
        .file("/home/school.local/petrova/.profile", "")
        .dir("/home/school.local/petrova/.local/share/AyuGramDesktop/tdata");
    // `/home/<user>@<domain>`.
    root.file("/home/sidorov@school.local/.profile", "")
        .program("/home/sidorov@school.local/Загрузки/Telegram/Telegram");
    // SSSD's override_homedir for a FreeIPA domain, outside /home.
    root.file(
        "/etc/sssd/sssd.conf",
        "[sssd]\ndomains = ipa.school.ru\n[domain/ipa.school.ru]\nid_provider = ipa\noverride_homedir = /srv/homes/%d/%u\n",
    )
    .program("/srv/homes/ipa.school.ru/kuznetsov/Apps/Telegram/Telegram");
    // Winbind's template homedir with the workgroup as the domain.
    root.file(
        "/etc/samba/smb.conf",
        "[global]\n  workgroup = SCHOOL\n  security = ads\n  template homedir = /home/%D/%U\n",
    )
    .program("/home/SCHOOL/smirnov/Telegram/Telegram");
    // Bad templates: not absolute, a loop of links, a link out of the image.
    root.file(
        "/etc/sssd/conf.d/90-bad.conf",
        "[domain/bad.local]\nfallback_homedir = home/%u\noverride_homedir = /loop/%u\n[nss]\noverride_homedir = /escape/%d/%u\n",
    )
    .link("loop", "/loop")
    .link("/", "/escape");
    // SSSD's cache names a user whose home is elsewhere; a cache of another format.
    use sverka_agent::scan::users::sssd_cache::{CachedUser, build_sssd_cache};
    let mut future = build_sssd_cache(&[]);
    future[32..36].copy_from_slice(&0x2601_2000u32.to_le_bytes());
    root.file(
        "/var/lib/sss/db/cache_school.local.ldb",
        build_sssd_cache(&[CachedUser {
            name: "sokolova@school.local".into(),
            domain: "school.local".into(),
            uid: Some(1_851_000_777),
            home: "/srv/ad/sokolova".into(),
        }]),
    )
    .file("/var/lib/sss/db/cache_old.ldb", future)
    .program("/srv/ad/sokolova/Telegram/Telegram");
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "{report:#}");
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(
        telegram["users"],
        serde_json::json!([
            "ivanov.ii@school.local",
            "kuznetsov@ipa.school.ru",
            "petrova@school.local",
            "sidorov@school.local",
            "smirnov@SCHOOL",
            "sokolova@school.local"
        ]),
        "{telegram:#}"
    );
    let paths = telegram["evidence"].to_string();
    assert!(paths.contains("/srv/homes/ipa.school.ru/kuznetsov/Apps/Telegram/Telegram"));
    assert!(!paths.contains("\"school.local\""), "{telegram:#}");
    let errors = report["errors"].to_string();
    for needle in [
        "`home/%u`",
        "is not an absolute path",
        "/loop",
        "loop of symbolic links",
        "/escape",
        "outside the scanned root",
        "SSSD cache /var/lib/sss/db/cache_old.ldb: TDB version",
    ] {
        assert!(
            errors.contains(needle),
            "no error mentioning {needle}: {errors}"
        );
    }
}

/// Evidence from a user's profile says when the profile was last used, in the JSON and
/// in the table, so a departed teacher's profile shows as such.
#[test]
fn evidence_from_a_profile_says_when_it_was_last_used() {
    let root = FixtureRoot::new();
    root.user("anna", 1000).user("departed", 1001);
    root.program("/home/anna/Telegram/Telegram")
        .program("/home/departed/Telegram/Telegram")
        .dir("/home/departed/.cache")
        .program("/opt/viber/Viber");
    // 2019-06-01T00:00:00Z, set last: creating files changes a folder's time.
    let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_559_347_200);
    for folder in ["/home/departed/.cache", "/home/departed"] {
        std::fs::File::open(root.local(folder))
            .and_then(|handle| handle.set_modified(long_ago))
            .expect("set the folder's time");
    }
    let (_, report) = scan_json(&root, &[]);
    let telegram = finding(&report, "telegram").unwrap();
    let last_used = |user: &str| {
        telegram["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|evidence| evidence["user"] == user)
            .and_then(|evidence| evidence["profile_last_used"].as_str())
            .unwrap_or_else(|| panic!("no profile time for {user}: {telegram:#}"))
            .to_string()
    };
    assert_eq!(last_used("departed"), "2019-06-01T00:00:00Z");
    assert!(last_used("anna").as_str() > "2026-01-01", "{telegram:#}");
    let viber = finding(&report, "viber").unwrap();
    assert!(
        viber["evidence"][0].get("profile_last_used").is_none(),
        "machine evidence has no profile: {viber:#}"
    );
    let table = run_agent(&["scan", "--root", &root.path().to_string_lossy()]);
    assert!(
        table
            .stdout
            .contains("[departed, profile last used 2019-06-01]"),
        "{}",
        table.stdout
    );
}

/// Web apps installed from Chromium-family browsers on Linux (system, flatpak and snap
/// installs), from each profile's web app database and Preferences, matched by host.
#[test]
fn web_apps_of_linux_browsers_are_found_by_host() {
    use sverka_tests::windows::{leveldb_table, web_app_key, web_app_log, web_app_record};
    let root = FixtureRoot::new();
    root.user("anna", 1000).user("boris", 1001);
    let database = "Web Applications/Web App Database";
    let chrome = "/home/anna/.config/google-chrome/Default";
    root.file(&format!("{chrome}/Preferences"), "{\"profile\":{}}")
        .file(
            &format!("{chrome}/{database}/000003.log"),
            web_app_log(
                "hnpfjngllnobngcgfapefoaidbinmjnm",
                "WhatsApp Web",
                "https://web.whatsapp.com/",
            ),
        )
        .file(
            &format!("{chrome}/{database}/000005.ldb"),
            leveldb_table(&[(
                &web_app_key("aghbiahbpaijignceidepookljebhfak"),
                4,
                Some(&web_app_record("Google Search", "https://www.google.com/")),
            )]),
        );
    // The launcher Chrome writes names only the app id.
    root.launcher(
        "/home/anna/.local/share/applications/chrome-hnpfjngllnobngcgfapefoaidbinmjnm-Default.desktop",
        "WhatsApp Web",
        "/opt/google/chrome/google-chrome --profile-directory=Default --app-id=hnpfjngllnobngcgfapefoaidbinmjnm",
        Some("crx__hnpfjngllnobngcgfapefoaidbinmjnm"),
    );
    // Negative controls: a launcher of an app that is no messenger (Google Search,
    // in the table), and one whose app no profile lists.
    root.launcher(
        "/home/anna/.local/share/applications/chrome-aghbiahbpaijignceidepookljebhfak-Default.desktop",
        "Google Search",
        "/opt/google/chrome/google-chrome --profile-directory=Default --app-id=aghbiahbpaijignceidepookljebhfak",
        None,
    )
    .launcher(
        "/home/anna/.local/share/applications/chrome-aaaabbbbccccddddeeeeffffgggghhhh-Default.desktop",
        "Some App",
        "/opt/google/chrome/google-chrome --profile-directory=Default --app-id=aaaabbbbccccddddeeeeffffgggghhhh",
        None,
    );
    let yandex = "/home/anna/.var/app/ru.yandex.Browser/config/yandex-browser/Profile 1";
    root.file(
        &format!("{yandex}/Preferences"),
        r#"{"extensions":{"settings":{"abc":{"manifest":{"name":"Telegram","app":{"launch":{"web_url":"https://web.telegram.org/k/"}}}}}}}"#,
    );
    let chromium = "/home/boris/snap/chromium/common/chromium/Default";
    root.file(&format!("{chromium}/Preferences"), "{}").file(
        &format!("{chromium}/{database}/000004.log"),
        web_app_log(
            "cifhbcnohmdccbgoicgdjpfamggdegmo",
            "Microsoft Teams",
            "https://teams.microsoft.com/v2/",
        ),
    );
    // A profile from a future browser: Preferences that is not JSON, a damaged table.
    let edge = "/home/boris/.config/microsoft-edge/Default";
    root.file(&format!("{edge}/Preferences"), "\u{0}\u{1}binary")
        .file(
            &format!("{edge}/{database}/000009.ldb"),
            b"not a table at all, too short?",
        );
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "{report:#}");
    let whatsapp = assert_found(&report, "whatsapp", "web_app");
    assert_eq!(whatsapp["users"], serde_json::json!(["anna"]));
    assert!(
        whatsapp["evidence"].to_string().contains("Google Chrome"),
        "{whatsapp:#}"
    );
    // Chrome's launcher names only the app id: tied to the profile's app, it matches by
    // host like the database record.
    let launcher = whatsapp["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|evidence| {
            evidence["path"]
                == "/home/anna/.local/share/applications/chrome-hnpfjngllnobngcgfapefoaidbinmjnm-Default.desktop"
        })
        .unwrap_or_else(|| panic!("no launcher evidence: {whatsapp:#}"));
    assert_eq!(launcher["source"], "web_app", "{launcher:#}");
    assert!(
        launcher["detail"].to_string().contains("web.whatsapp.com"),
        "{launcher:#}"
    );
    assert!(
        !report
            .to_string()
            .contains("aaaabbbbccccddddeeeeffffgggghhhh"),
        "{report:#}"
    );
    let telegram = assert_found(&report, "telegram", "web_app");
    assert!(
        telegram["evidence"].to_string().contains("Yandex Browser"),
        "{telegram:#}"
    );
    let teams = assert_found(&report, "microsoft_teams", "web_app");
    assert_eq!(teams["users"], serde_json::json!(["boris"]));
    let mut ids = finding_ids(&report);
    ids.sort();
    assert_eq!(
        ids,
        vec!["microsoft_teams", "telegram", "whatsapp"],
        "google.com is no messenger"
    );
    let errors = errors_of(&report, "web_app").join("\n");
    assert!(
        errors.contains("microsoft-edge/Default/Preferences"),
        "{errors}"
    );
    assert!(errors.contains("not JSON"), "{errors}");
    assert!(errors.contains("000009.ldb"), "{errors}");
}
