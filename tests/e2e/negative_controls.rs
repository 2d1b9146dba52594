//! Namesakes that must never be flagged (from the reference's negative controls).

use sverka_tests::*;

#[test]
fn namesake_packages_files_and_launchers_are_not_flagged() {
    let root = FixtureRoot::new();
    root.user("anna", 1000);
    root.dpkg(&[
        ("telegraf", "1.26", "install ok installed"),
        ("telegram-send", "0.34", "install ok installed"),
        (
            "python3-python-telegram-bot",
            "13.7",
            "install ok installed",
        ),
        ("node-telegram-bot-api", "0.61", "install ok installed"),
        ("teamviewer", "15.48", "install ok installed"),
        ("t1-teams", "0.5", "install ok installed"),
        ("python3-openid-teams", "1.2", "install ok installed"),
        (
            "php-symfony-microsoft-teams-notifier",
            "6.2",
            "install ok installed",
        ),
        ("purple-discord", "0.9", "install ok installed"),
        ("python3-discord", "2.1", "install ok installed"),
        ("ruby-discordrb-webhooks", "3.4", "install ok installed"),
        ("snap", "2013-11-29", "install ok installed"),
        ("snapd", "2.57", "install ok installed"),
        ("vibesql", "1.0", "install ok installed"),
    ]);
    root.rpm_sqlite(
        "/var/lib/rpm",
        &[("telegraf", "1.26"), ("vk-teams", "24.1")],
    );
    root.program("/usr/bin/telegraf");
    root.program("/opt/teamviewer/tv_bin/TeamViewer");
    root.appimage("/home/anna/Загрузки/VibeSQL.AppImage");
    root.program("/home/anna/VibeSQL/VibeSQL");
    root.program("/home/anna/Telegram/Updater");
    root.file(
        "/home/anna/notes/Telegram",
        "a text file named like the program, not a program\n",
    );
    root.launcher(
        "/usr/share/applications/telegraf.desktop",
        "Telegraf",
        "/usr/bin/telegraf",
        None,
    );
    root.launcher(
        "/usr/share/applications/teamviewer.desktop",
        "TeamViewer",
        "/opt/teamviewer/tv_bin/script/teamviewer",
        Some("TeamViewer"),
    );
    root.launcher(
        "/usr/share/applications/snap-store.desktop",
        "Snap Store",
        "/snap/bin/snap-store",
        None,
    );
    let (code, report) = scan_json(&root, &[]);
    assert_eq!(code, 0, "{report:#}");
    // VK Teams (VK WorkSpace) is its own approved application, never Microsoft Teams.
    assert_eq!(
        finding_ids(&report),
        vec!["vk_workspace"],
        "namesakes flagged: {report:#}"
    );
    assert_eq!(
        finding(&report, "vk_workspace").unwrap()["status"],
        "approved"
    );
}
