//! Data-driven tests of what the built-in catalog matches, and what it must not.

use super::*;
use crate::observation::{FileFormat, PackageManager, VersionInfo};

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
            version_info: None,
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
            version_info: None,
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
fn the_2026_clients_on_linux_are_recognised() {
    let matcher = matcher();
    let cases: Vec<(Observation, &str)> = vec![
        (package("ayugram-desktop"), "telegram"),
        (package("materialgram"), "telegram"),
        (flatpak("com.ayugram.desktop"), "telegram"),
        (flatpak("io.github.kukuruzka165.materialgram"), "telegram"),
        (
            launcher("com.ayugram.desktop.desktop", None, None),
            "telegram",
        ),
        (
            launcher("io.github.kukuruzka165.materialgram.desktop", None, None),
            "telegram",
        ),
        (
            launcher("x.desktop", None, Some("com.ayugram.desktop")),
            "telegram",
        ),
        (file("/opt/ayugram/ayugram"), "telegram"),
        (file("/home/a/Загрузки/AyuGram"), "telegram"),
        (
            process("materialgram", Some("/usr/bin/materialgram")),
            "telegram",
        ),
        (file("/opt/max/bin/max"), "max"),
        (file("/opt/MAX/MAX"), "max"),
        (file("/opt/max-qt/max.exe"), "max"),
        (package("max-qt"), "max"),
        (package("vk"), "vk_messenger"),
        (package("vkteams"), "vk_workspace"),
        (package("vk-teams"), "vk_workspace"),
        (launcher("vkteams.desktop", None, None), "vk_workspace"),
        (file("/opt/vkteams/vkteams"), "vk_workspace"),
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
        snap("snapd"),
        // TDLib and bot libraries are not Telegram clients.
        package("tdlib"),
        package("libtdjson1.8.0"),
        package("telegram-bot-api"),
        package("python3-telegram-bot"),
        file("/usr/lib/x86_64-linux-gnu/libtdjson.so.1.8.0"),
        // Game SDKs that carry Discord's name.
        file("/home/a/Games/Terraria/lib64/libdiscord_game_sdk.so"),
        file("/home/a/Games/Game/discord_game_sdk.so"),
        file("/home/a/.steam/steamapps/common/Game/Plugins/x86_64/discord-rpc.so"),
        package("discord-rpc"),
        // Signal and Element, which the orders do not name.
        package("signal-desktop"),
        flatpak("org.signal.Signal"),
        file("/opt/Signal/signal-desktop"),
        launcher(
            "signal-desktop.desktop",
            Some("/opt/Signal/signal-desktop"),
            None,
        ),
        process("signal-desktop", Some("/opt/Signal/signal-desktop")),
        package("element-desktop"),
        flatpak("im.riot.Riot"),
        file("/opt/Element/element-desktop"),
        launcher(
            "element-desktop.desktop",
            Some("/opt/Element/element-desktop"),
            None,
        ),
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

fn uninstall(
    key_name: &str,
    display_name: &str,
    publisher: Option<&str>,
    upgrade_code: Option<&str>,
) -> Observation {
    observation(
        Observed::UninstallEntry {
            key_name: key_name.into(),
            display_name: display_name.into(),
            display_version: Some("1.0".into()),
            publisher: publisher.map(str::to_string),
            upgrade_code: upgrade_code.map(str::to_string),
            hive: "HKLM".into(),
        },
        None,
    )
}

fn appx(family_name: &str) -> Observation {
    observation(
        Observed::AppxPackage {
            full_name: format!("{family_name}_full"),
            family_name: family_name.into(),
            version: "1.0.0.0".into(),
            origin: "provisioned".into(),
        },
        None,
    )
}

fn version_info(company: &str, product: &str, original: &str) -> VersionInfo {
    VersionInfo {
        company_name: Some(company.into()),
        product_name: Some(product.into()),
        original_filename: Some(original.into()),
        file_description: Some(product.into()),
        product_version: None,
    }
}

fn renamed_exe(path: &str, info: VersionInfo) -> Observation {
    observation(
        Observed::File {
            file_name: base_name(path).into(),
            format: FileFormat::Pe,
            version_info: Some(info),
        },
        Some(path),
    )
}

fn renamed_process(executable: &str, info: VersionInfo) -> Observation {
    observation(
        Observed::Process {
            pid: 7,
            name: base_name(executable).into(),
            executable: Some(executable.into()),
            version_info: Some(info),
        },
        None,
    )
}

fn web_app(start_url: &str) -> Observation {
    observation(
        Observed::WebApp {
            browser: "Google Chrome".into(),
            profile: "Default".into(),
            name: "app".into(),
            start_url: start_url.into(),
            scope: None,
        },
        None,
    )
}

fn office(product_id: &str) -> Observation {
    observation(
        Observed::OfficeProduct {
            product_id: product_id.into(),
        },
        None,
    )
}

#[test]
fn every_windows_install_method_is_recognised() {
    let matcher = matcher();
    let cases = vec![
        (
            uninstall(
                "{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1",
                "Telegram Desktop",
                Some("Telegram FZ-LLC"),
                None,
            ),
            "telegram",
        ),
        (
            uninstall(
                "{0A1B2C3D-0000-0000-0000-000000000000}",
                "Viber",
                None,
                Some("{CC3C191E-4119-4AB3-917A-96EAC8774E60}"),
            ),
            "viber",
        ),
        (
            uninstall(
                "{11111111-0000-0000-0000-000000000000}",
                "Teams Machine-Wide Installer",
                Some("Microsoft Corporation"),
                Some("{4009be0e-5d51-5d91-b94c-d00d7b5fe829}"),
            ),
            "microsoft_teams",
        ),
        (
            uninstall("Discord", "Discord", Some("Discord Inc."), None),
            "discord",
        ),
        (
            uninstall("Weixin", "微信", Some("腾讯科技(深圳)有限公司"), None),
            "wechat",
        ),
        (
            uninstall(
                "Skype_is1",
                "Skype version 8.110",
                Some("Skype Technologies S.A."),
                None,
            ),
            "skype",
        ),
        (appx("MSTeams_8wekyb3d8bbwe"), "microsoft_teams"),
        (appx("5319275A.WhatsAppDesktop_cv1g1gvanyjgm"), "whatsapp"),
        (appx("Threema.Desktop.Work_cvh4qa9n1gk2r"), "threema"),
        (
            appx("TelegramMessengerLLP.TelegramDesktop_t4vj0pshhgkwm"),
            "telegram",
        ),
        (
            renamed_exe(
                r"C:\Users\anna\Downloads\homework.exe",
                version_info("Viber Media S.à r.l.", "Viber", "Viber.exe"),
            ),
            "viber",
        ),
        (
            renamed_process(
                r"C:\Users\anna\Music\x.exe",
                version_info("Telegram FZ-LLC", "Telegram Desktop", "Telegram.exe"),
            ),
            "telegram",
        ),
        (
            renamed_exe(
                r"C:\Program Files\Microsoft Office\root\Office16\LYNC.EXE",
                version_info("Microsoft Corporation", "Microsoft Office", "Lync.exe"),
            ),
            "skype_for_business",
        ),
        (office("SkypeforBusinessRetail"), "skype_for_business"),
        (office("SkypeforBusiness2024Volume"), "skype_for_business"),
        (office("SkypeforBusiness2024Retail"), "skype_for_business"),
        (
            uninstall(
                "SkypeforBusiness2024Volume - ru-ru",
                "Skype for Business LTSC 2024 - ru-ru",
                Some("Microsoft Corporation"),
                None,
            ),
            "skype_for_business",
        ),
        (
            uninstall(
                "{53F49750-6209-4FBF-9CA8-7A333C87D666}_is1",
                "AyuGram Desktop version 6.7.8",
                Some("Radolyn Labs"),
                None,
            ),
            "telegram",
        ),
        (
            renamed_exe(
                r"C:\Users\anna\AppData\Roaming\AyuGram Desktop\AyuGram.exe",
                version_info("Radolyn Labs", "AyuGram Desktop", "AyuGram.exe"),
            ),
            "telegram",
        ),
        (
            file(r"C:\Users\anna\Downloads\materialgram\materialgram.exe"),
            "telegram",
        ),
        (
            file(
                r"C:\Program Files\WindowsApps\5319275a.whatsappdesktop_2.2632.100.0_x64__cv1g1gvanyjgm\WhatsApp.Root.exe",
            ),
            "whatsapp",
        ),
        (
            process(
                "WhatsApp.Root.exe",
                Some(
                    r"C:\Program Files\WindowsApps\5319275a.whatsappdesktop_2.2632.100.0_x64__cv1g1gvanyjgm\WhatsApp.Root.exe",
                ),
            ),
            "whatsapp",
        ),
        (
            uninstall(
                "{1DB05575-EA00-4D4C-8B86-4E22934A8377}",
                "MAX",
                Some("Communication Platform LLC"),
                Some("{C75CA842-16FD-4019-A356-5F1D958B2D22}"),
            ),
            "max",
        ),
        (file(r"C:\Program Files\MAX\max.exe"), "max"),
        (
            file(r"C:\Users\anna\AppData\Local\Programs\MAX\max.exe"),
            "max",
        ),
        (web_app("https://pro.max.ru/"), "max"),
        (
            uninstall("VK_is1", "VK version 5.3.2", Some("V Kontakte LLC"), None),
            "vk_messenger",
        ),
        (
            uninstall(
                "{E8E91573-7048-4192-8D77-BF0634FF75DE}",
                "VK WorkSpace 26.2.12.101023",
                Some("VK DIGITAL TECHNOLOGIES LLC"),
                None,
            ),
            "vk_workspace",
        ),
        (web_app("https://web.telegram.org/a/"), "telegram"),
        (web_app("https://web.whatsapp.com/"), "whatsapp"),
        (
            web_app("https://teams.microsoft.com/v2/"),
            "microsoft_teams",
        ),
        (web_app("https://discord.com/app"), "discord"),
        (web_app("https://web.snapchat.com/"), "snapchat"),
        (web_app("https://web.max.ru/"), "max"),
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
fn windows_negative_controls_match_nothing_and_the_add_in_only_supports() {
    let matcher = matcher();
    let cases = vec![
        uninstall("TeamViewer", "TeamViewer", Some("TeamViewer GmbH"), None),
        uninstall("Telegraf", "Telegraf (x86)", Some("InfluxData"), None),
        uninstall(
            "wechat_devtools",
            "微信开发者工具",
            Some("腾讯科技(深圳)有限公司"),
            None,
        ),
        uninstall("VibeSQL", "VibeSQL", Some("Vibe Inc."), None),
        uninstall(
            "{22222222-0000-0000-0000-000000000000}",
            "Viberate",
            Some("Viber Media S.à r.l."),
            None,
        ),
        appx("Microsoft.WindowsCalculator_8wekyb3d8bbwe"),
        renamed_exe(
            r"C:\Program Files\TeamViewer\TeamViewer.exe",
            version_info("TeamViewer Germany GmbH", "TeamViewer", "TeamViewer.exe"),
        ),
        renamed_exe(
            r"C:\Program Files (x86)\Tencent\微信web开发者工具\微信开发者工具.exe",
            version_info("Tencent", "微信开发者工具", "wechatdevtools.exe"),
        ),
        renamed_process(
            r"C:\Program Files\Telegraf\telegraf.exe",
            version_info("InfluxData Inc.", "Telegraf", "telegraf.exe"),
        ),
        web_app("https://www.google.com/"),
        web_app("https://discord.com.evil.example/"),
        web_app("not a url"),
        office("O365ProPlusRetail"),
        office("ProPlus2024Volume"),
        // Game SDKs that carry Discord's name, Signal and Element.
        file(r"C:\Games\Game\discord_game_sdk.dll"),
        file(r"C:\Games\Game\Plugins\discord-rpc.dll"),
        renamed_exe(
            r"C:\Users\anna\AppData\Local\Programs\signal-desktop\Signal.exe",
            version_info("Signal Messenger, LLC", "Signal", "Signal.exe"),
        ),
        renamed_exe(
            r"C:\Users\anna\AppData\Local\element-desktop\Element.exe",
            version_info("Element", "Element", "Element.exe"),
        ),
        uninstall(
            "signal-desktop",
            "Signal 7.40.0",
            Some("Signal Messenger, LLC"),
            None,
        ),
        uninstall("element-desktop", "Element", Some("Element"), None),
        // VK WorkSpace is not Microsoft Teams; a namesake of VK is not VK Messenger.
        uninstall(
            "{A0000000-0000-0000-0000-000000000000}",
            "VK Teams Bot SDK",
            Some("Someone Else"),
            None,
        ),
    ];
    for observation in cases {
        assert!(
            apps_hit(&matcher, &observation).is_empty(),
            "{observation:?} must not match"
        );
    }
    let add_in = uninstall(
        "{A7AB73A3-CB10-4AA5-9D38-6AEFFBDE4C91}",
        "Microsoft Teams Meeting Add-in for Microsoft Office",
        Some("Microsoft"),
        None,
    );
    let hits = matcher.hits_for(&add_in);
    assert_eq!(hits.len(), 1);
    assert!(hits[0].supporting);
    assert!(matcher.findings(std::slice::from_ref(&add_in)).is_empty());
    let findings = matcher.findings(&[add_in, appx("MSTeams_8wekyb3d8bbwe")]);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].app, "microsoft_teams");
    assert_eq!(
        findings[0].evidence.len(),
        2,
        "the add-in supports the finding"
    );
}

#[test]
fn url_hosts() {
    assert_eq!(
        url_host("https://web.telegram.org/a/").as_deref(),
        Some("web.telegram.org")
    );
    assert_eq!(
        url_host("https://user@Discord.com:443/app?x#y").as_deref(),
        Some("discord.com")
    );
    assert_eq!(
        url_host("teams.microsoft.com").as_deref(),
        Some("teams.microsoft.com")
    );
    assert_eq!(url_host("https:///"), None);
}

#[test]
fn windows_programs_by_their_prefetch_names() {
    let matcher = matcher();
    let apps = |name: &str, cut: bool| -> Vec<String> {
        matcher
            .apps_of_windows_program(name, cut)
            .into_iter()
            .map(|index| matcher.catalog().apps[index].id.clone())
            .collect()
    };
    // Process names and the last component of `files` patterns, in any case.
    assert_eq!(apps("TELEGRAM.EXE", false), ["telegram"]);
    assert_eq!(apps("AYUGRAM.EXE", false), ["telegram"]);
    assert_eq!(apps("KOTATOGRAM.EXE", false), ["telegram"]);
    // A Linux program name is no Windows program, and namesakes are not guessed.
    assert!(apps("TELEGRAM-DESKTOP.EXE", false).is_empty());
    assert!(apps("TELEGRAF.EXE", false).is_empty());
    assert!(apps("UPDATE.EXE", false).is_empty());
    // A cut name matches the exact names it begins.
    assert_eq!(apps("TELEGRAM.E", true), ["telegram"]);
    assert!(apps("TELEGRAM.E", false).is_empty());
}
