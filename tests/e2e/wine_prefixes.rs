//! Windows programs under Wine on Linux: every user's prefixes (`~/.wine`,
//! `~/.local/share/wineprefixes/*`, PlayOnLinux, Bottles, Lutris), their `drive_c` walked
//! with version resources, their `system.reg`/`user.reg` read for uninstall entries,
//! and Wine's launchers; with namesakes and damaged registry files beside them.

use sverka_tests::windows::{TELEGRAM, VIBER, Version, program_with_version};
use sverka_tests::*;

const TEAMVIEWER: Version<'static> = Version {
    company: "TeamViewer Germany GmbH",
    product: "TeamViewer",
    original_filename: "TeamViewer.exe",
    description: "TeamViewer 15",
};

const SYSTEM_REG: &str = r#"WINE REGISTRY Version 2
;; All keys relative to \\Machine
#arch=win64

[Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\TeamViewer] 1700000000
"DisplayName"="TeamViewer"
"Publisher"="TeamViewer GmbH"

[Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{0A1B2C3D-0000-0000-0000-000000000000}] 1700000000
#time=1da1234567890ab
"DisplayName"="Viber"
"DisplayVersion"="21.0.0.1"
"BundleUpgradeCode"=str(7):"{E01CB858-ABEC-4384-BFBF-985024A4A8DB}\0"
"#;

const USER_REG: &str = r#"WINE REGISTRY Version 2
;; All keys relative to \\User\\S-1-5-21-0-0-0-1000

[Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{53F49750-6209-4FBF-9CA8-7A333C87D666}_is1] 1700000000
"DisplayName"="AyuGram Desktop version 6.7.8"
"Publisher"="Radolyn Labs"
"InstallLocation"="C:\\users\\anna\\AppData\\Roaming\\AyuGram Desktop\\"
"#;

#[test]
fn wine_prefixes_are_read_like_windows_systems() {
    let root = FixtureRoot::new();
    root.user("anna", 1000).user("boris", 1001);
    // anna's ~/.wine: registry files, a program in her Wine profile, a renamed copy.
    root.file("/home/anna/.wine/system.reg", SYSTEM_REG)
        .file("/home/anna/.wine/user.reg", USER_REG)
        .file(
            "/home/anna/.wine/drive_c/users/anna/AppData/Roaming/Telegram Desktop/Telegram.exe",
            program_with_version(&TELEGRAM),
        )
        .file(
            "/home/anna/.wine/drive_c/users/anna/Downloads/homework.exe",
            program_with_version(&VIBER),
        )
        .file(
            "/home/anna/.wine/drive_c/Program Files/TeamViewer/TeamViewer.exe",
            program_with_version(&TEAMVIEWER),
        );
    // The launcher Wine's menu builder wrote for it.
    root.file(
        "/home/anna/.local/share/applications/wine/Programs/Telegram Desktop/Telegram Desktop.desktop",
        "[Desktop Entry]\nName=Telegram Desktop\nExec=env WINEPREFIX=\"/home/anna/.wine\" wine C:\\\\\\\\users\\\\\\\\anna\\\\\\\\AppData\\\\\\\\Roaming\\\\\\\\Microsoft\\\\\\\\Windows\\\\\\\\Start\\\\ Menu\\\\\\\\Programs\\\\\\\\Telegram\\\\ Desktop\\\\\\\\Telegram.lnk\nType=Application\nStartupWMClass=telegram.exe\n",
    );
    // boris: a named prefix deep enough that a home walk would not reach the program,
    // a PlayOnLinux prefix with a truncated system.reg, a Bottles prefix whose user.reg
    // is not text, and a Lutris game prefix with nothing of note.
    root.file(
        "/home/boris/.local/share/wineprefixes/school/drive_c/users/boris/AppData/Local/Programs/MAX/max.exe",
        program_with_version(&Version {
            company: "Communication Platform LLC",
            product: "MAX",
            original_filename: "max.exe",
            description: "MAX",
        }),
    )
    .file(
        "/home/boris/.PlayOnLinux/wineprefix/office/system.reg",
        &SYSTEM_REG[..SYSTEM_REG.find("21.0.0.1").unwrap()],
    )
    .dir("/home/boris/.PlayOnLinux/wineprefix/office/drive_c")
    .file(
        "/home/boris/.local/share/bottles/bottles/games/user.reg",
        b"\xff\xfe\x00\xd8\x41\x00",
    )
    .file("/home/boris/.local/share/bottles/bottles/games/system.reg", b"\x7fELF")
    .dir("/home/boris/Games/some-game/drive_c/Program Files");
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 1, "{report:#}");

    let telegram = finding(&report, "telegram").unwrap();
    let sources = evidence_sources(telegram);
    for source in ["file", "uninstall_key", "desktop_entry"] {
        assert!(
            sources.iter().any(|kind| kind == source),
            "{source}: {telegram:#}"
        );
    }
    let evidence = telegram["evidence"].to_string();
    assert!(evidence.contains(
        "/home/anna/.wine/drive_c/users/anna/AppData/Roaming/Telegram Desktop/Telegram.exe"
    ));
    assert!(
        evidence.contains("/home/anna/.wine/user.reg"),
        "{telegram:#}"
    );
    assert_eq!(telegram["users"], serde_json::json!(["anna"]));
    let launcher = telegram["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|evidence| evidence["source"] == "desktop_entry")
        .unwrap();
    assert_eq!(
        launcher["strength"], "trace",
        "the .lnk is not there: {launcher:#}"
    );

    let viber = finding(&report, "viber").unwrap();
    let viber_evidence = viber["evidence"].to_string();
    assert!(viber_evidence.contains("homework.exe"), "{viber:#}");
    assert!(
        viber_evidence.contains("/home/anna/.wine/system.reg"),
        "{viber:#}"
    );

    let max = finding(&report, "max").unwrap();
    assert_eq!(max["users"], serde_json::json!(["boris"]));
    assert!(
        max["evidence"]
            .to_string()
            .contains("wineprefixes/school/drive_c"),
        "{max:#}"
    );

    assert!(
        !report["findings"].to_string().contains("TeamViewer"),
        "{report:#}"
    );
    let errors = report["errors"].to_string();
    for needle in [
        "PlayOnLinux/wineprefix/office/system.reg",
        "unterminated",
        "bottles/games/user.reg",
        "not UTF-8 or UTF-16",
        "bottles/games/system.reg",
        "not a registry file",
    ] {
        assert!(
            errors.contains(needle),
            "no error mentioning {needle}: {errors}"
        );
    }
}
