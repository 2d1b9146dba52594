//! Windows detection, end to end: on a mounted Windows volume (`--root`, read from its
//! hive files, on Linux), and for real under Wine, where the cross-compiled
//! `sverka-agent.exe` reads the live registry, offline `NTUSER.DAT`/`UsrClass.dat` of
//! logged-off profiles, program files with version resources and running processes.

use serde_json::Value;
use sverka_tests::real_collector::Collector;
use sverka_tests::windows::{
    TELEGRAM, VIBER, Version, WindowsTarget, WindowsVolume, WinePrefix, fixture_hive, leveldb_log,
    leveldb_table, program_with_version, program_with_version_for, web_app_key, web_app_record,
};
use sverka_tests::*;

const LYNC: Version<'static> = Version {
    company: "Microsoft Corporation",
    product: "Microsoft Office",
    original_filename: "Lync.exe",
    description: "Skype for Business",
};
const TEAMVIEWER: Version<'static> = Version {
    company: "TeamViewer Germany GmbH",
    product: "TeamViewer",
    original_filename: "TeamViewer.exe",
    description: "TeamViewer 15",
};
const TELEGRAF: Version<'static> = Version {
    company: "InfluxData Inc.",
    product: "Telegraf",
    original_filename: "telegraf.exe",
    description: "Telegraf",
};
const WECHAT_DEVTOOLS: Version<'static> = Version {
    company: "腾讯科技(深圳)有限公司",
    product: "微信开发者工具",
    original_filename: "wechatdevtools.exe",
    description: "微信开发者工具",
};

/// Files of a Chromium profile with one installed web app, compacted into a table, and
/// WhatsApp Web, installed (in the table) and uninstalled later (in the log).
fn web_app_files(
    home: &str,
    browser_data: &str,
    profile: &str,
    start_url: &str,
) -> Vec<(String, Vec<u8>)> {
    let base = format!("{home}\\AppData\\Local\\{browser_data}\\{profile}");
    vec![
        (
            format!("{base}\\Preferences"),
            b"{\"profile\":{\"name\":\"Person 1\"}}".to_vec(),
        ),
        (
            format!("{base}\\Web Applications\\Web App Database\\000005.ldb"),
            leveldb_table(&[
                (
                    &web_app_key("ibblmnobmgdmpoeblocemifbpglakpoi"),
                    7,
                    Some(&web_app_record("Web app", start_url)),
                ),
                (
                    &web_app_key("hnpfjngllnobngcgfapefoaidbinmjnm"),
                    8,
                    Some(&web_app_record("WhatsApp Web", "https://web.whatsapp.com/")),
                ),
            ]),
        ),
        (
            format!("{base}\\Web Applications\\Web App Database\\000006.log"),
            leveldb_log(
                9,
                &[(&web_app_key("hnpfjngllnobngcgfapefoaidbinmjnm"), None)],
            ),
        ),
    ]
}

fn sources_of(report: &Value, app: &str) -> Vec<String> {
    let finding = finding(report, app).unwrap_or_else(|| panic!("no {app} finding: {report:#}"));
    evidence_sources(finding)
}

fn details(report: &Value) -> String {
    report["findings"].to_string()
}

fn assert_errors_mention(report: &Value, source: &str, needle: &str) {
    assert!(
        errors_of(report, source)
            .iter()
            .any(|error| error.contains(needle)),
        "no {source} error mentioning {needle:?}: {:#}",
        report["errors"]
    );
}

fn assert_negative_controls_absent(report: &Value) {
    let findings = details(report);
    for control in [
        "TeamViewer",
        "Telegraf",
        "wechat_devtools",
        "微信开发者工具",
        "Calculator",
    ] {
        assert!(!findings.contains(control), "{control} matched: {report:#}");
    }
}

/// A mounted Windows volume: hive files, profiles logged off, program files.
fn windows_volume() -> WindowsVolume {
    let volume = WindowsVolume::with_hives();
    volume
        .copy(
            &fixture_hive("anna-UsrClass.dat"),
            "C:\\Users\\anna\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat",
        )
        .copy(
            &fixture_hive("boris-NTUSER.DAT"),
            "C:\\Users\\boris\\NTUSER.DAT",
        )
        .file(
            "C:\\Users\\anna\\Downloads\\homework.exe",
            program_with_version(&VIBER),
        )
        .file(
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\lync.exe",
            program_with_version(&LYNC),
        )
        .file(
            "C:\\Users\\boris\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe",
            program_with_version(&TELEGRAM),
        )
        .file(
            "C:\\Program Files\\TeamViewer\\TeamViewer.exe",
            program_with_version(&TEAMVIEWER),
        )
        .file(
            "C:\\Program Files\\Telegraf\\telegraf.exe",
            program_with_version(&TELEGRAF),
        )
        .file(
            "C:\\Program Files (x86)\\Tencent\\微信web开发者工具\\微信开发者工具.exe",
            program_with_version(&WECHAT_DEVTOOLS),
        )
        .dir("C:\\Program Files\\WindowsApps\\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe")
        .dir("C:\\Program Files\\WindowsApps\\Deleted");
    for (path, bytes) in web_app_files(
        "C:\\Users\\anna",
        "Google\\Chrome\\User Data",
        "Default",
        "https://web.snapchat.com/",
    ) {
        volume.file(&path, bytes);
    }
    // A program cut after its headers: the resource section they point to is missing.
    let broken = program_with_version(&VIBER)[..1024].to_vec();
    volume.file("C:\\Users\\anna\\Desktop\\broken.exe", broken);
    // A profile folder with a damaged hive, not in ProfileList.
    let damaged = std::fs::read(fixture_hive("boris-NTUSER.DAT")).unwrap();
    volume.file("C:\\Users\\carol\\NTUSER.DAT", &damaged[..4096 + 64]);
    volume
}

#[test]
fn a_mounted_windows_volume_is_read_from_its_hive_files() {
    let volume = windows_volume();
    let (code, report) = volume.scan_json();
    assert_eq!(code, 1, "{report:#}");

    let host = &report["host"];
    assert_eq!(host["os_id"], "windows");
    assert_eq!(host["os_name"], "Windows 10 Pro");
    assert_eq!(host["os_version"], "22H2 (build 19045)");
    assert_eq!(host["hostname"], "SCHOOL-PC-12");
    assert_eq!(host["machine_id"], "6f1c2a9e-4b1d-4c55-9d1e-2f6a7b8c9d01");

    // Per-user Inno key of a logged-off user, read from NTUSER.DAT; and a portable copy.
    assert_eq!(
        sources_of(&report, "telegram"),
        vec!["file", "uninstall_key"]
    );
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(telegram["users"], serde_json::json!(["anna", "boris"]));
    // The bundle upgrade code in anna's hive, and the renamed homework.exe.
    let viber = finding(&report, "viber").unwrap();
    assert_eq!(evidence_sources(viber), vec!["file", "uninstall_key"]);
    assert!(viber.to_string().contains("homework.exe"), "{viber:#}");
    // The Machine-Wide Installer (key and upgrade code), the provisioned package, the
    // package folder.
    let teams = finding(&report, "microsoft_teams").unwrap();
    assert_eq!(
        evidence_sources(teams),
        vec!["uninstall_key", "appx", "appx"]
    );
    // 微信 under WOW6432Node, from a UTF-16 hive.
    assert_eq!(sources_of(&report, "wechat"), vec!["uninstall_key"]);
    // Office: the Click-to-Run product id and lync.exe.
    assert_eq!(
        sources_of(&report, "skype_for_business"),
        vec!["file", "uninstall_key"]
    );
    // A store package of a logged-off user, from UsrClass.dat. (Her WhatsApp Web app
    // was uninstalled: the log's deletion hides the compacted table's record.)
    let whatsapp = finding(&report, "whatsapp").unwrap();
    assert_eq!(evidence_sources(whatsapp), vec!["appx"]);
    assert_eq!(whatsapp["users"], serde_json::json!(["anna"]));
    // A Chrome web app, from the web app database's compacted table.
    let snapchat = finding(&report, "snapchat").unwrap();
    assert_eq!(evidence_sources(snapchat), vec!["web_app"]);
    assert_eq!(snapchat["users"], serde_json::json!(["anna"]));
    assert_eq!(sources_of(&report, "discord"), vec!["uninstall_key"]);
    // A package in boris's list of the all-user store (a deprovisioned one is not).
    let threema = finding(&report, "threema").unwrap();
    assert_eq!(threema["users"], serde_json::json!(["boris"]));
    assert!(!details(&report).contains("MicrosoftTeams_"), "{report:#}");
    // Consumer Skype is reported, not a violation.
    assert_eq!(finding(&report, "skype").unwrap()["status"], "watch");
    assert_negative_controls_absent(&report);

    // Bad input: a value of the wrong type, a damaged hive, a profile that is gone, a
    // program with a broken resource section. None stops the scan.
    assert_errors_mention(&report, "uninstall_key", "BrokenTypes");
    assert_errors_mention(&report, "uninstall_key", "carol");
    assert_errors_mention(&report, "file", "left-the-school");
    assert_errors_mention(&report, "file", "broken.exe");
    assert_eq!(report["skipped"][0]["source"], "process");
}

#[test]
fn access_denied_to_another_users_files_is_an_error_not_a_failure() {
    use std::os::unix::fs::PermissionsExt;
    let volume = windows_volume();
    // The agent usually runs as an administrator; as a plain user it is refused.
    for entry in walkdir(volume.path()) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let locked_hive = volume.local("C:\\Users\\boris\\NTUSER.DAT");
    let locked_folder = volume.local("C:\\Users\\anna\\Downloads");
    std::fs::set_permissions(&locked_hive, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&locked_folder, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = run_agent_unprivileged(&[
        "scan",
        "--root",
        &volume.path().to_string_lossy(),
        "--format",
        "json",
    ]);
    std::fs::set_permissions(&locked_folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = run.json();
    assert_eq!(run.code, 1, "{report:#}");
    assert_errors_mention(&report, "uninstall_key", "boris");
    assert_errors_mention(
        &report,
        "uninstall_key",
        "run the agent as an administrator",
    );
    assert_errors_mention(&report, "file", "Downloads");
    // The rest is still reported: anna's hive, the machine's.
    assert!(finding(&report, "wechat").is_some(), "{report:#}");
    assert!(finding(&report, "telegram").is_some(), "{report:#}");
    assert!(
        finding(&report, "discord").is_none(),
        "boris's hive was unreadable"
    );
}

fn walkdir(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![root.to_path_buf()];
    let mut index = 0;
    while index < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[index]) {
            all.extend(entries.flatten().map(|entry| entry.path()));
        }
        index += 1;
    }
    all
}

const PROFILE_LIST: &str =
    r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows NT\CurrentVersion\ProfileList";
const MACHINE_UNINSTALL: &str =
    r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Uninstall";
const MACHINE_UNINSTALL_32: &str =
    r"HKEY_LOCAL_MACHINE\Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Uninstall";

/// Everything a Windows PC can hold, in one Wine prefix: machine and per-user uninstall
/// keys (live and offline), store packages, program files, a renamed copy running, web
/// apps; then the Teams Meeting Add-in alone, and with Teams.
#[test]
fn under_wine_the_agent_finds_every_install_method() {
    let mut prefix = WinePrefix::new();
    let own_user = prefix.own_user();
    prefix.registry(&format!(
        r#"[{PROFILE_LIST}\S-1-5-21-1111-2222-3333-1001]
"ProfileImagePath"="C:\\users\\anna"

[{PROFILE_LIST}\S-1-5-21-1111-2222-3333-1002]
"ProfileImagePath"="C:\\users\\boris"

[{PROFILE_LIST}\S-1-5-21-1111-2222-3333-1003]
"ProfileImagePath"="C:\\users\\gone"

[{MACHINE_UNINSTALL}\{{0F2C5D1E-7B3A-4C9D-8E1F-2A3B4C5D6E7F}}]
"DisplayName"="Viber"
"DisplayVersion"="24.1.0.0"

[HKEY_LOCAL_MACHINE\Software\Classes\Installer\UpgradeCodes\E191C3CC91143BA419A769AE8C77E406]
"E1D5C2F0A3B7D9C4E8F1A2B3C4D5E6F7"=""

[{MACHINE_UNINSTALL}\{{A7AB73A3-CB10-4AA5-9D38-6AEFFBDE4C91}}]
"DisplayName"="Microsoft Teams Meeting Add-in for Microsoft Office"
"Publisher"="Microsoft"

[{MACHINE_UNINSTALL}\TeamViewer]
"DisplayName"="TeamViewer"
"Publisher"="TeamViewer GmbH"

[{MACHINE_UNINSTALL}\Telegraf]
"DisplayName"="Telegraf (x86)"
"Publisher"="InfluxData"

[{MACHINE_UNINSTALL}\Skype_is1]
"DisplayName"="Skype version 8.110"
"Publisher"="Skype Technologies S.A."

[{MACHINE_UNINSTALL_32}\WeChat]
"DisplayName"="微信"
"Publisher"="腾讯科技(深圳)有限公司"

[{MACHINE_UNINSTALL_32}\wechat_devtools]
"DisplayName"="微信开发者工具"
"Publisher"="腾讯科技(深圳)有限公司"

[HKEY_LOCAL_MACHINE\Software\Microsoft\Office\ClickToRun\Configuration]
"ProductReleaseIds"="O365ProPlusRetail,SkypeforBusinessRetail"

[HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Uninstall\{{53F49750-6209-4FBF-9CA8-7A333C87D1ED}}_is1]
"DisplayName"="Telegram Desktop"
"Publisher"="Telegram FZ-LLC"
"DisplayVersion"="5.8.3"

[HKEY_CURRENT_USER\Software\Classes\Local Settings\Software\Microsoft\Windows\CurrentVersion\AppModel\Repository\Packages\Threema.Desktop.Consumer_2.0.0.0_x64__cvh4qa9n1gk2r]
"DisplayName"="Threema"
"#
    ));
    prefix
        .copy(&fixture_hive("anna-NTUSER.DAT"), "C:\\users\\anna\\NTUSER.DAT")
        .copy(
            &fixture_hive("anna-UsrClass.dat"),
            "C:\\users\\anna\\AppData\\Local\\Microsoft\\Windows\\UsrClass.dat",
        )
        .file("C:\\users\\anna\\Downloads\\homework.exe", program_with_version(&VIBER))
        .file("C:\\users\\boris\\Music\\notes.exe", program_with_version(&TELEGRAM))
        .file(
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\lync.exe",
            program_with_version(&LYNC),
        )
        .file("C:\\Program Files\\TeamViewer\\TeamViewer.exe", program_with_version(&TEAMVIEWER))
        .file("C:\\Program Files\\Telegraf\\telegraf.exe", program_with_version(&TELEGRAF))
        .file(
            "C:\\Program Files (x86)\\Tencent\\微信web开发者工具\\微信开发者工具.exe",
            program_with_version(&WECHAT_DEVTOOLS),
        )
        .dir("C:\\Program Files\\WindowsApps\\TelegramMessengerLLP.TelegramDesktop_5.8.3.0_x64__t4vj0pshhgkwm");
    let damaged = std::fs::read(fixture_hive("boris-NTUSER.DAT")).unwrap();
    prefix.file("C:\\users\\boris\\NTUSER.DAT", &damaged[..4096 + 64]);
    for (path, bytes) in web_app_files(
        "C:\\users\\anna",
        "Microsoft\\Edge\\User Data",
        "Profile 1",
        "https://discord.com/app",
    ) {
        prefix.file(&path, bytes);
    }
    // Windows' Prefetch entry of Viber (the live reader lists C:\Windows\Prefetch and
    // reads each entry's time, never its contents): Viber last ran two hours ago.
    let prefetch = "C:\\windows\\Prefetch\\VIBER.EXE-1A2B3C4D.pf";
    prefix.file(prefetch, b"MAM\x04");
    let two_hours_ago = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(
            std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - 7_200,
        );
    std::fs::File::open(prefix.local(prefetch))
        .and_then(|file| file.set_modified(two_hours_ago))
        .expect("set the Prefetch entry's time");
    prefix.start("C:\\users\\boris\\Music\\notes.exe");
    // A renamed Telegram running from the 64-bit System32, which a 32-bit program sees
    // only as Sysnative (System32 is its own SysWOW64).
    prefix.file(
        "C:\\windows\\system32\\updater64.exe",
        program_with_version(&TELEGRAM),
    );
    prefix.start("C:\\windows\\system32\\updater64.exe");

    let (code, report) = prefix.scan_json();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["host"]["os_id"], "windows");
    assert!(
        report["host"]["machine_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "MachineGuid: {report:#}"
    );

    // The logged-on user's HKCU key, the Store package folder, and the renamed copy
    // running from Music (a folder no walk covers): found as a process.
    let telegram = finding(&report, "telegram").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(telegram["strength"], "running", "{telegram:#}");
    let sources = evidence_sources(telegram);
    for source in ["process", "uninstall_key", "appx"] {
        assert!(sources.contains(&source.to_string()), "{telegram:#}");
    }
    assert!(telegram.to_string().contains("notes.exe"), "{telegram:#}");
    let users = telegram["users"].as_array().unwrap();
    assert!(
        users.contains(&Value::from(own_user.clone())),
        "{telegram:#}"
    );
    assert!(
        users.contains(&Value::from("anna")),
        "anna's offline hive: {telegram:#}"
    );
    // The MSI's upgrade code (no publisher, no name rule), anna's bundle, homework.exe.
    let viber = finding(&report, "viber").unwrap();
    assert!(viber.to_string().contains("homework.exe"), "{viber:#}");
    assert!(viber.to_string().contains("0F2C5D1E"), "{viber:#}");
    assert_eq!(
        (
            viber["last_used"].as_str(),
            viber["last_used_source"].as_str()
        ),
        (
            Some(sverka_agent::scan::rfc3339_utc(two_hours_ago).as_str()),
            Some("prefetch")
        ),
        "{viber:#}"
    );
    assert_eq!(sources_of(&report, "wechat"), vec!["uninstall_key"]);
    assert_eq!(
        sources_of(&report, "skype_for_business"),
        vec!["file", "uninstall_key"]
    );
    // Not the uninstalled WhatsApp Web app of the web app database.
    assert_eq!(sources_of(&report, "whatsapp"), vec!["appx"]);
    assert_eq!(
        finding(&report, "threema").unwrap()["users"],
        serde_json::json!([own_user])
    );
    // An Edge web app, from the compacted table.
    assert_eq!(sources_of(&report, "discord"), vec!["web_app"]);
    assert_eq!(finding(&report, "skype").unwrap()["status"], "watch");
    // The Meeting Add-in alone is no Teams.
    assert!(finding(&report, "microsoft_teams").is_none(), "{report:#}");
    assert_negative_controls_absent(&report);
    assert_errors_mention(&report, "uninstall_key", "boris");
    assert_errors_mention(&report, "uninstall_key", "BrokenTypes");
    assert_errors_mention(&report, "file", "gone");
    assert!(
        telegram.to_string().contains("updater64.exe"),
        "{telegram:#}"
    );

    // The 32-bit agent (for 32-bit Windows) on this 64-bit Windows finds the same: the
    // keys of the registry's 64-bit view (Viber's, written by a 64-bit regedit) and of
    // WOW6432Node, `Program Files` (lync.exe) and the program in System32.
    let (code_x86, report_x86) = prefix.scan_json_for(WindowsTarget::X86);
    assert_eq!(code_x86, 1, "{report_x86:#}");
    assert_eq!(
        comparable_findings(&report_x86),
        comparable_findings(&report),
        "the 32-bit agent's findings differ from the 64-bit agent's"
    );
    assert_eq!(report_x86["host"], report["host"]);

    // New Teams provisioned for every user: now the add-in supports the finding.
    prefix.registry(
        r"[HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Appx\AppxAllUserStore\Applications\MSTeams_24295.605.3225.8804_x64__8wekyb3d8bbwe]
",
    );
    let (_, report) = prefix.scan_json();
    let teams = finding(&report, "microsoft_teams").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(evidence_sources(teams), vec!["uninstall_key", "appx"]);
    assert!(teams.to_string().contains("Meeting Add-in"), "{teams:#}");

    // The same PC reports to a real collector: enrolled by its MachineGuid, a full
    // report and then a check-in, evaluated by the collector from the Windows
    // inventory (uninstall keys, AppX) and evidence (files, processes, web apps).
    let collector = Collector::start();
    let school = collector.add_org("Школа №3", "school", None);
    let state = "C:\\ProgramData\\Sverka";
    prefix.enroll_agent(&collector.url(), &collector.secret(school), state);
    for _ in 0..2 {
        let run = prefix.run_agent(&[
            "run",
            "--once",
            "--retry-base",
            "100ms",
            "--retry-cap",
            "200ms",
            "--state-dir",
            state,
        ]);
        assert_eq!(run.code, 0, "{}\n{}", run.stderr, collector.log());
    }
    let stored = collector.stored_reports();
    assert_eq!(stored.len(), 1, "one host: {stored:?}");
    assert_eq!(stored[0].1, 2, "a full report and a check-in: {stored:?}");
    let violations = collector.violations(school, false);
    let apps: Vec<&str> = violations
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["app"].as_str().unwrap_or_default())
        .collect();
    for app in [
        "telegram",
        "viber",
        "wechat",
        "whatsapp",
        "discord",
        "microsoft_teams",
    ] {
        assert!(apps.contains(&app), "{app} missing from {violations:#}");
    }
    assert!(
        !apps.contains(&"skype"),
        "consumer Skype is not a violation"
    );
}

/// A report's findings without what differs between two runs of the same scan: a
/// process's id in its detail, and the times that are the scan's own (a logged-on
/// profile's last use, a running program's last use).
fn comparable_findings(report: &Value) -> Value {
    let mut findings = report["findings"].clone();
    let without_scan_time = |fields: &mut serde_json::Map<String, Value>| {
        if fields.get("last_used_source") == Some(&Value::from("process")) {
            fields.remove("last_used");
        }
    };
    for finding in findings.as_array_mut().into_iter().flatten() {
        if let Some(fields) = finding.as_object_mut() {
            without_scan_time(fields);
        }
        for evidence in finding["evidence"].as_array_mut().into_iter().flatten() {
            let Some(fields) = evidence.as_object_mut() else {
                continue;
            };
            fields.remove("profile_last_used");
            without_scan_time(fields);
            if let Some(Value::String(detail)) = fields.get_mut("detail")
                && let Some(start) = detail.find("(pid ")
                && let Some(length) = detail[start..].find(')')
            {
                detail.replace_range(start..start + length + 1, "(pid)");
            }
        }
    }
    findings
}

/// The 2026 catalog on a mounted Windows volume without hives (profiles from
/// `C:\Users`): WhatsApp's WebView2 build, AyuGram per user and Materialgram portable,
/// MAX per machine and per user with its data folder, and their namesakes beside them
/// (a game's Discord SDK, Signal, Element).
#[test]
fn the_2026_clients_on_a_windows_volume_and_their_namesakes() {
    const NEUTRAL: Version<'static> = Version {
        company: "Example Ltd",
        product: "Example",
        original_filename: "example.exe",
        description: "Example",
    };
    const MAX: Version<'static> = Version {
        company: "Communication Platform LLC",
        product: "MAX",
        original_filename: "max.exe",
        description: "MAX",
    };
    const SIGNAL: Version<'static> = Version {
        company: "Signal Messenger, LLC",
        product: "Signal",
        original_filename: "Signal.exe",
        description: "Signal",
    };
    let volume = WindowsVolume::new();
    volume
        .file(
            "C:\\Program Files\\WindowsApps\\5319275a.whatsappdesktop_2.2632.100.0_x64__cv1g1gvanyjgm\\WhatsApp.Root.exe",
            program_with_version(&NEUTRAL),
        )
        .file(
            "C:\\Users\\anna\\AppData\\Roaming\\AyuGram Desktop\\AyuGram.exe",
            program_with_version(&NEUTRAL),
        )
        .file(
            "C:\\Users\\boris\\Downloads\\mg\\materialgram.exe",
            program_with_version(&NEUTRAL),
        )
        .file(
            "C:\\Program Files\\MAX\\max.exe",
            program_with_version(&MAX),
        )
        .file(
            "C:\\Users\\boris\\AppData\\Local\\Programs\\MAX\\max.exe",
            program_with_version(&NEUTRAL),
        )
        .dir("C:\\Users\\anna\\AppData\\Local\\max\\Cache")
        // Namesakes.
        .file(
            "C:\\Program Files (x86)\\Some Game\\discord_game_sdk.dll",
            program_with_version(&NEUTRAL),
        )
        .file(
            "C:\\Program Files (x86)\\Some Game\\Plugins\\discord-rpc.dll",
            program_with_version(&NEUTRAL),
        )
        .file(
            "C:\\Users\\anna\\AppData\\Local\\Programs\\signal-desktop\\Signal.exe",
            program_with_version(&SIGNAL),
        )
        .file(
            "C:\\Users\\anna\\AppData\\Local\\element-desktop\\Element.exe",
            program_with_version(&NEUTRAL),
        );
    let (code, report) = volume.scan_json();
    assert_eq!(code, 1, "{report:#}");

    let whatsapp = finding(&report, "whatsapp").unwrap();
    assert!(
        details(&report).contains("WhatsApp.Root.exe"),
        "{whatsapp:#}"
    );
    // The package folder is also seen as the package itself.
    assert!(
        evidence_sources(whatsapp).contains(&"file".to_string()),
        "{whatsapp:#}"
    );
    let telegram = finding(&report, "telegram").unwrap();
    assert_eq!(telegram["users"], serde_json::json!(["anna", "boris"]));
    let max = finding(&report, "max").unwrap();
    assert_eq!(max["status"], "approved");
    assert_eq!(max["users"], serde_json::json!(["anna", "boris"]));
    let max_sources = evidence_sources(max);
    assert_eq!(
        max_sources
            .iter()
            .filter(|source| *source == "file")
            .count(),
        2,
        "{max:#}"
    );
    assert!(max_sources.contains(&"data_dir".to_string()), "{max:#}");
    assert!(
        max.to_string()
            .contains("C:\\\\Users\\\\anna\\\\AppData\\\\Local\\\\max"),
        "{max:#}"
    );

    let mut ids = finding_ids(&report);
    ids.sort();
    assert_eq!(
        ids,
        vec!["max", "telegram", "whatsapp"],
        "the game SDKs, Signal and Element are not flagged: {report:#}"
    );
}

/// Windows 7 SP1: the agent built for the tier-3 target `x86_64-win7-windows-gnu` imports
/// none of the functions Windows 7 lacks (the standard build imports `ProcessPrng`, and
/// the check says so), and it runs in a Wine prefix that calls itself Windows 7 without
/// the `ProcessPrng` stand-in the standard build needs under Wine 8: machine uninstall
/// entries and a renamed program running are found.
#[test]
fn the_windows_7_build_imports_nothing_windows_7_lacks_and_scans_as_windows_7() {
    windows_7_build_imports_nothing_it_lacks_and_scans(WindowsTarget::Win7X64, WindowsTarget::X64);
}

/// The same for the 32-bit Windows 7 build (`i686-win7-windows-gnu`), in a 32-bit
/// prefix that calls itself Windows 7, beside the standard x86 build's imports.
#[test]
fn the_32_bit_windows_7_build_imports_nothing_windows_7_lacks_and_scans_as_windows_7() {
    windows_7_build_imports_nothing_it_lacks_and_scans(WindowsTarget::Win7X86, WindowsTarget::X86);
}

/// `target`'s agent passes `check-win7-imports.sh` where `standard` (the same
/// architecture's Windows 10 build) fails it on `ProcessPrng`, and scans a prefix of
/// its architecture set to Windows 7, finding an uninstall entry and a renamed program
/// (of that architecture) running.
fn windows_7_build_imports_nothing_it_lacks_and_scans(
    target: WindowsTarget,
    standard: WindowsTarget,
) {
    let arch = target.wine_arch();
    require_tool("x86_64-w64-mingw32-objdump", "binutils-mingw-w64-x86-64");
    let check =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/check-win7-imports.sh");
    let win7 = sverka_tests::windows::agent_exe_for(target);
    assert!(
        !win7.with_file_name("bcryptprimitives.dll").exists(),
        "the Windows 7 build must run without the ProcessPrng stand-in"
    );
    let imports = |exe: &std::path::Path| {
        let mut command = std::process::Command::new("bash");
        command.arg(&check).arg(exe);
        run_command(command)
    };
    let run = imports(win7);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("kernel32.dll"), "{}", run.stdout);
    let standard = imports(sverka_tests::windows::agent_exe_for(standard));
    assert_eq!(standard.code, 1, "{}{}", standard.stdout, standard.stderr);
    assert!(
        standard.stderr.contains("ProcessPrng"),
        "{}",
        standard.stderr
    );

    let mut prefix = WinePrefix::with_arch(arch);
    let version = prefix.wine(&["winecfg", "-v", "win7"]);
    assert_eq!(version.code, 0, "{}", version.stderr);
    prefix.registry(&format!(
        r#"[{MACHINE_UNINSTALL}\WeChat]
"DisplayName"="微信"
"Publisher"="腾讯科技(深圳)有限公司"
"#
    ));
    prefix.file(
        "C:\\Games\\notes.exe",
        program_with_version_for(&TELEGRAM, arch),
    );
    prefix.start("C:\\Games\\notes.exe");

    let (code, report) = prefix.scan_json_for(target);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        report["host"]["os_name"]
            .as_str()
            .is_some_and(|name| name.contains("Windows 7")),
        "{report:#}"
    );
    assert_eq!(sources_of(&report, "wechat"), vec!["uninstall_key"]);
    let telegram = finding(&report, "telegram").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(telegram["strength"], "running", "{telegram:#}");
    assert!(telegram.to_string().contains("notes.exe"), "{telegram:#}");
}

/// The service's change watcher on Windows (`ReadDirectoryChangesW` on each fixed
/// drive, here Wine's `C:`): a program added where the folder's time was set back
/// (which hides it from a scan that goes by folder times) is found by the next scans,
/// and the folders the watcher saw no change in are not even looked at.
#[test]
fn under_wine_the_services_change_watcher_finds_what_folder_times_hide() {
    let prefix = WinePrefix::new();
    prefix.file(
        "C:\\Data\\share\\homework.exe",
        program_with_version(&TELEGRAM),
    );
    let share = prefix.local("C:\\Data\\share");
    let long_ago =
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let set_back = |folder: &std::path::Path| {
        std::fs::File::open(folder)
            .and_then(|handle| handle.set_modified(long_ago))
            .unwrap()
    };
    set_back(&share);
    let collector = Collector::start();
    let school = collector.add_org("Школа №5", "school", None);
    let state = "C:\\ProgramData\\Sverka";
    prefix.enroll_agent(&collector.url(), &collector.secret(school), state);
    let log = prefix.path().join("service.log");
    let mut service = prefix.spawn_agent(
        &[
            "run",
            "--state-dir",
            state,
            "--max-delay",
            "0",
            "--interval",
            "1s",
        ],
        &log,
    );
    let reports = || {
        collector
            .stored_reports()
            .first()
            .map(|(_, count)| *count)
            .unwrap_or(0)
    };
    let wait_for = |count: i64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while reports() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(
            reports() >= count,
            "{} reports; the service's log: {}",
            reports(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let apps = || -> Vec<String> {
        collector
            .violations(school, false)
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["app"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // Two scans: the first makes the cache, the second is answered by the journal.
    wait_for(2);
    assert!(apps().contains(&"telegram".to_string()), "{:?}", apps());
    assert!(!apps().contains(&"viber".to_string()), "{:?}", apps());

    prefix.file("C:\\Data\\share\\photos.exe", program_with_version(&VIBER));
    set_back(&share);
    // The scan running now may have listed the folder before the change, or the
    // watcher not yet read it; the ones after have.
    let after = reports() + 3;
    wait_for(after);
    let found = apps();
    service.kill().unwrap();
    service.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        found.contains(&"viber".to_string()) && found.contains(&"telegram".to_string()),
        "{found:?}\n{log}"
    );
    assert_change_journal_answered(&log);
    // The cache was written again with the new program: Windows replaces it only once
    // the scan has closed the old one it read from.
    let cache =
        std::fs::read_to_string(prefix.local("C:\\ProgramData\\Sverka\\executables.json")).unwrap();
    assert!(cache.contains("photos.exe"), "{log}");
    assert!(!log.contains("cannot write the cache"), "{log}");
    // The journal names the fixed drive the watcher found (C:, not Wine's Z:) and the
    // last mark a scan told it of; the journal scans planned their walks from those
    // drives instead of asking Wine for each again.
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(prefix.local("C:\\ProgramData\\Sverka\\changes.json")).unwrap(),
    )
    .unwrap();
    let roots: Vec<&str> = journal["drives"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|drive| drive["root"].as_str())
        .collect();
    assert_eq!(roots, vec!["C:\\"], "{journal}");
    assert!(
        journal["drive_letters"].as_u64().unwrap() & 0b100 != 0,
        "{journal}"
    );
    assert!(journal["seen"].as_u64().is_some(), "{journal}");
    assert!(log.contains("drives_from_journal=true"), "{log}");
}
