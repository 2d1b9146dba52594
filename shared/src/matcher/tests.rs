//! Data-driven tests of what the built-in catalog matches, and what it must not.

use super::*;
use crate::observation::{FileFormat, PackageManager};

fn matcher() -> CatalogMatcher {
    CatalogMatcher::new(Catalog::builtin().expect("built-in catalog"))
}

fn observation(observed: Observed, path: Option<&str>) -> Observation {
    Observation {
        observed,
        path: path.map(str::to_string),
        user: None,
        scope: Scope::Machine,
        strength: Strength::Installed,
    }
}

fn apps_hit(matcher: &CatalogMatcher, observation: &Observation) -> Vec<String> {
    matcher
        .hits_for(observation)
        .into_iter()
        .map(|hit| matcher.catalog().apps[hit.app].id.clone())
        .collect()
}

fn package(name: &str) -> Observation {
    observation(
        Observed::Package {
            manager: PackageManager::Dpkg,
            name: name.into(),
            version: "1.0".into(),
            vendor: None,
        },
        None,
    )
}

fn flatpak(id: &str) -> Observation {
    observation(
        Observed::Flatpak {
            id: id.into(),
            branch: None,
        },
        None,
    )
}

fn snap(name: &str) -> Observation {
    observation(
        Observed::Snap {
            name: name.into(),
            revision: None,
        },
        None,
    )
}

fn file(path: &str) -> Observation {
    observation(
        Observed::File {
            file_name: base_name(path).into(),
            format: FileFormat::Elf,
        },
        Some(path),
    )
}

fn launcher(file_name: &str, program: Option<&str>, wm_class: Option<&str>) -> Observation {
    observation(
        Observed::DesktopEntry {
            file_name: file_name.into(),
            name: None,
            program: program.map(str::to_string),
            wm_class: wm_class.map(str::to_string),
        },
        None,
    )
}

fn process(name: &str, executable: Option<&str>) -> Observation {
    observation(
        Observed::Process {
            pid: 42,
            name: name.into(),
            executable: executable.map(str::to_string),
        },
        None,
    )
}

#[test]
fn every_linux_install_method_is_recognised() {
    let matcher = matcher();
    let cases: Vec<(Observation, &str)> = vec![
        (package("telegram-desktop"), "telegram"),
        (package("discord"), "discord"),
        (package("viber"), "viber"),
        (package("teams"), "microsoft_teams"),
        (package("teams-for-linux"), "microsoft_teams"),
        (package("skypeforlinux"), "skype"),
        (package("wechat"), "wechat"),
        (package("threema"), "threema"),
        (package("vk-messenger"), "vk_messenger"),
        (package("max"), "max"),
        (flatpak("org.telegram.desktop"), "telegram"),
        (flatpak("com.discordapp.Discord"), "discord"),
        (flatpak("com.viber.Viber"), "viber"),
        (flatpak("com.microsoft.Teams"), "microsoft_teams"),
        (flatpak("com.github.eneshecan.WhatsAppForLinux"), "whatsapp"),
        (flatpak("io.github.mimbrero.WhatsAppDesktop"), "whatsapp"),
        (flatpak("ch.threema.threema-web-desktop"), "threema"),
        (flatpak("com.tencent.WeChat"), "wechat"),
        (snap("telegram-desktop"), "telegram"),
        (snap("discord"), "discord"),
        (
            file("/home/anna/Загрузки/tsetup.5.8.3/Telegram/Telegram"),
            "telegram",
        ),
        (
            file("/home/anna/Apps/Telegram_Desktop-x86_64.AppImage"),
            "telegram",
        ),
        (file("/opt/viber/Viber"), "viber"),
        (file("/usr/share/discord/Discord"), "discord"),
        (file("/opt/wechat/wechat"), "wechat"),
        (file("/usr/share/max/bin/max"), "max"),
        (file("/opt/vk-messenger/vk-messenger"), "vk_messenger"),
        (
            launcher("org.telegram.desktop._7c3a1f.desktop", None, None),
            "telegram",
        ),
        (
            launcher("appimagekit_0d1f-Telegram_Desktop.desktop", None, None),
            "telegram",
        ),
        (
            launcher("homework.desktop", Some("/opt/viber/Viber"), None),
            "viber",
        ),
        (
            launcher("x.desktop", None, Some("TelegramDesktop")),
            "telegram",
        ),
        (
            process("telegram-deskto", Some("/usr/bin/telegram-desktop")),
            "telegram",
        ),
        (
            process("Telegram", Some("/home/a/Telegram/Telegram")),
            "telegram",
        ),
        (process("max", Some("/usr/share/max/bin/max")), "max"),
    ];
    for (observation, expected) in cases {
        assert_eq!(
            apps_hit(&matcher, &observation),
            vec![expected.to_string()],
            "{observation:?}"
        );
    }
}

#[test]
fn negative_controls_match_nothing() {
    let matcher = matcher();
    let cases = vec![
        package("telegraf"),
        package("telegram-send"),
        package("python3-python-telegram-bot"),
        package("node-telegram-bot-api"),
        package("php-symfony-telegram-notifier"),
        package("teamviewer"),
        package("t1-teams"),
        package("python3-openid-teams"),
        package("php-symfony-microsoft-teams-notifier"),
        package("purple-discord"),
        package("python3-discord"),
        package("ruby-discordrb-webhooks"),
        package("libdatetime-calendar-discordian-perl"),
        package("snap"),
        package("snapd"),
        package("vibesql"),
        package("vk-teams"),
        snap("snapd"),
        file("/usr/bin/telegraf"),
        file("/opt/teamviewer/tv_bin/TeamViewer"),
        file("/home/a/VibeSQL/VibeSQL"),
        file("/home/a/VibeSQL.AppImage"),
        file("/home/a/Telegram/Updater"),
        file("/home/a/Discord/Update.exe"),
        file(r"C:\Program Files (x86)\Tencent\微信web开发者工具\wechatdevtools.exe"),
        process("telegraf", Some("/usr/bin/telegraf")),
        process("TeamViewer", Some("/opt/teamviewer/tv_bin/TeamViewer")),
        launcher("telegraf.desktop", Some("/usr/bin/telegraf"), None),
    ];
    for observation in cases {
        assert!(
            apps_hit(&matcher, &observation).is_empty(),
            "{observation:?} must not match"
        );
    }
}

#[test]
fn wants_file_name_is_the_quick_filter_for_walks() {
    let matcher = matcher();
    for name in [
        "Telegram",
        "telegram",
        "Telegram_Desktop.AppImage",
        "Viber.exe",
        "lync.exe",
        "max",
    ] {
        assert!(matcher.wants_file_name(name), "{name}");
    }
    for name in [
        "README.md",
        "telegraf",
        "VibeSQL.AppImage",
        "Update.exe",
        "libc.so.6",
    ] {
        assert!(!matcher.wants_file_name(name), "{name}");
    }
}

#[test]
fn findings_group_evidence_per_application_with_users_and_strength() {
    let matcher = matcher();
    let mut per_user = file("/home/anna/Telegram/Telegram");
    per_user.user = Some("anna".into());
    per_user.scope = Scope::User;
    let mut running = process("Telegram", Some("/home/anna/Telegram/Telegram"));
    running.user = Some("anna".into());
    running.scope = Scope::User;
    running.strength = Strength::Running;
    let mut leftover = observation(
        Observed::DataDir {
            relative_path: ".ViberPC".into(),
        },
        Some("/home/boris/.ViberPC"),
    );
    leftover.user = Some("boris".into());
    leftover.scope = Scope::User;
    leftover.strength = Strength::Trace;
    let observations = vec![
        package("telegram-desktop"),
        per_user.clone(),
        per_user,
        running,
        leftover,
        package("max"),
        package("coreutils"),
    ];
    let findings = matcher.findings(&observations);
    let ids: Vec<&str> = findings
        .iter()
        .map(|finding| finding.app.as_str())
        .collect();
    assert_eq!(
        ids,
        vec!["telegram", "viber", "max"],
        "banned first, then approved"
    );

    let telegram = &findings[0];
    assert_eq!(telegram.strength, Strength::Running);
    assert_eq!(telegram.users, vec!["anna".to_string()]);
    assert_eq!(
        telegram.evidence.len(),
        3,
        "duplicate evidence is kept once"
    );
    assert_eq!(
        telegram.evidence[0].strength,
        Strength::Running,
        "strongest first"
    );
    assert!(telegram.is_violation());

    let viber = &findings[1];
    assert_eq!(viber.strength, Strength::Trace);
    assert!(
        !viber.is_violation(),
        "a leftover data folder is not a violation"
    );
    assert_eq!(viber.evidence[0].source, crate::report::SourceKind::DataDir);
}

#[test]
fn flatpak_and_snap_data_folders_are_derived_from_their_ids() {
    let matcher = matcher();
    let folders: Vec<&str> = matcher.data_dirs().map(|(_, folder)| folder).collect();
    assert!(folders.contains(&".var/app/org.telegram.desktop"));
    assert!(folders.contains(&"snap/telegram-desktop"));
    assert!(folders.contains(&".local/share/TelegramDesktop"));
}
