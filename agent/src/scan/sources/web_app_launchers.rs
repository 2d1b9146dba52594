//! The launchers Chromium-family browsers write on Linux for their web apps
//! (`~/.local/share/applications/chrome-<app id>-Default.desktop`, `msedge-...`,
//! `chromium-...`): they name only the app id (`--app-id=...`) and the profile
//! (`--profile-directory=...`), so each is tied to the app of that id in that profile's
//! web app database or `Preferences` (read by [`super::web_apps`]) and becomes evidence
//! of that app, matched by its host like the rest. A launcher whose app no profile
//! lists says nothing of a site and is left to the launcher source.

use sverka_shared::SourceKind;

use super::desktop::{exec_words, parse_desktop_entry};
use super::web_apps::{ProfileApp, web_app_observation};
use super::{ScanContext, SourceOutput};
use crate::scan::fsread::read_text_lossy;

/// Where browsers write their web apps' launchers, relative to a home.
pub const LAUNCHER_FOLDER: &str = ".local/share/applications";
const MAX_LAUNCHER_BYTES: u64 = 256 * 1024;
const MAX_LAUNCHERS: usize = 20_000;
/// Words of a launcher's `Exec` that name each browser (the system package, flatpak, snap).
const BROWSER_WORDS: &[(&str, &[&str])] = &[
    (
        "Google Chrome",
        &["google-chrome", "com.google.Chrome", "/chrome"],
    ),
    (
        "Microsoft Edge",
        &["microsoft-edge", "msedge", "com.microsoft.Edge"],
    ),
    ("Yandex Browser", &["yandex", "ru.yandex.Browser"]),
    ("Chromium", &["chromium"]),
];

/// What a web app launcher starts: the app id and, when it says so, the profile folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAppLaunch {
    pub app_id: String,
    pub profile: Option<String>,
}

/// Whether a text is a Chromium app id: 32 letters from `a` to `p`.
fn is_app_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| (b'a'..=b'p').contains(&byte))
}

/// The app id and profile an `Exec` line passes (`--app-id=ID`, `--profile-directory=P`,
/// also as two words); `None` when it starts no web app.
pub fn web_app_launch(exec: &str) -> Option<WebAppLaunch> {
    let words = exec_words(exec);
    let value = |flag: &str| {
        words.iter().enumerate().find_map(|(index, word)| {
            word.strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
                .or_else(|| {
                    (word == flag)
                        .then(|| words.get(index + 1).cloned())
                        .flatten()
                })
        })
    };
    let app_id = value("--app-id").filter(|id| is_app_id(id))?;
    Some(WebAppLaunch {
        app_id,
        profile: value("--profile-directory").filter(|profile| !profile.is_empty()),
    })
}

/// Whether a file name looks like a browser's web app launcher (`<browser>-<app id>-
/// <profile>.desktop`), so other launchers are not read twice.
pub fn is_web_app_launcher_name(file_name: &str) -> bool {
    file_name.ends_with(".desktop") && file_name.split('-').any(is_app_id)
}

/// The installed app a launcher starts: the same app id, in the launcher's profile when
/// it names one, in the browser its `Exec` names when several have it.
pub fn app_for_launch<'a>(
    launch: &WebAppLaunch,
    exec: &str,
    installed: &'a [ProfileApp],
) -> Option<&'a ProfileApp> {
    let candidates: Vec<&ProfileApp> = installed
        .iter()
        .filter(|known| known.app.id == launch.app_id)
        .filter(|known| {
            launch
                .profile
                .as_ref()
                .is_none_or(|profile| *profile == known.profile)
        })
        .collect();
    let named = |known: &&ProfileApp| -> bool {
        BROWSER_WORDS
            .iter()
            .filter(|(browser, _)| *browser == known.browser)
            .any(|(_, words)| words.iter().any(|word| exec.contains(word)))
    };
    candidates
        .iter()
        .copied()
        .find(named)
        .or_else(|| candidates.first().copied())
}

/// Every web app launcher in a Linux user's applications folder that starts an app a
/// profile of the user lists: evidence of that app.
pub fn observe(
    context: &ScanContext<'_>,
    home: &str,
    user: &str,
    installed: &[ProfileApp],
    output: &mut SourceOutput,
) {
    if installed.is_empty() {
        return;
    }
    let folder = format!("{}/{LAUNCHER_FOLDER}", home.trim_end_matches('/'));
    let Some(entries) = output.list_folder(context, SourceKind::WebApp, &folder) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| is_web_app_launcher_name(name))
        .take(MAX_LAUNCHERS)
        .collect();
    names.sort();
    for name in names {
        let shown = format!("{folder}/{name}");
        // Unreadable or damaged launchers are the launcher source's to report.
        let Ok(text) = read_text_lossy(&context.root.path(&shown), MAX_LAUNCHER_BYTES) else {
            continue;
        };
        let Some(exec) = parse_desktop_entry(&text.text)
            .ok()
            .and_then(|entry| entry.exec)
        else {
            continue;
        };
        let Some(launch) = web_app_launch(&exec) else {
            continue;
        };
        if let Some(known) = app_for_launch(&launch, &exec, installed) {
            output.observations.push(web_app_observation(
                known.browser,
                &known.profile,
                &known.app,
                shown,
                user,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::sources::web_apps::InstalledWebApp;

    const WHATSAPP: &str = "hnpfjngllnobngcgfapefoaidbinmjnm";

    fn installed(browser: &'static str, profile: &str, id: &str, url: &str) -> ProfileApp {
        ProfileApp {
            browser,
            profile: profile.into(),
            app: InstalledWebApp {
                id: id.into(),
                name: "app".into(),
                start_url: url.into(),
                scope: None,
            },
        }
    }

    #[test]
    fn launchers_name_the_app_id_and_profile() {
        assert_eq!(
            web_app_launch(&format!(
                "/opt/google/chrome/google-chrome --profile-directory=Default --app-id={WHATSAPP}"
            )),
            Some(WebAppLaunch {
                app_id: WHATSAPP.into(),
                profile: Some("Default".into())
            })
        );
        assert_eq!(
            web_app_launch(&format!(
                "flatpak run --command=/app/bin/chromium org.chromium.Chromium \"--profile-directory=Profile 1\" --app-id {WHATSAPP}"
            )),
            Some(WebAppLaunch {
                app_id: WHATSAPP.into(),
                profile: Some("Profile 1".into())
            })
        );
        assert_eq!(web_app_launch("/usr/bin/telegram-desktop -- %u"), None);
        assert_eq!(web_app_launch("chrome --app-id=not-an-id"), None);
        assert_eq!(web_app_launch("chrome --app-id="), None);
        assert!(is_web_app_launcher_name(&format!(
            "chrome-{WHATSAPP}-Default.desktop"
        )));
        assert!(is_web_app_launcher_name(&format!(
            "msedge-{WHATSAPP}-Profile_1.desktop"
        )));
        assert!(!is_web_app_launcher_name("org.telegram.desktop.desktop"));
        assert!(!is_web_app_launcher_name(&format!(
            "chrome-{WHATSAPP}-Default.txt"
        )));
    }

    #[test]
    fn a_launcher_is_tied_to_its_profile_and_browser() {
        let apps = [
            installed(
                "Microsoft Edge",
                "Default",
                WHATSAPP,
                "https://edge.example/",
            ),
            installed(
                "Google Chrome",
                "Profile 1",
                WHATSAPP,
                "https://other.example/",
            ),
            installed(
                "Google Chrome",
                "Default",
                WHATSAPP,
                "https://web.whatsapp.com/",
            ),
        ];
        let exec = format!(
            "/opt/google/chrome/google-chrome --profile-directory=Default --app-id={WHATSAPP}"
        );
        let launch = web_app_launch(&exec).unwrap();
        let found = app_for_launch(&launch, &exec, &apps).unwrap();
        assert_eq!(found.app.start_url, "https://web.whatsapp.com/");
        let other = WebAppLaunch {
            app_id: "a".repeat(32),
            profile: None,
        };
        assert!(app_for_launch(&other, &exec, &apps).is_none());
        // No profile named: the app of that id in the browser the Exec names.
        let edge = WebAppLaunch {
            app_id: WHATSAPP.into(),
            profile: None,
        };
        let found = app_for_launch(&edge, "/usr/bin/microsoft-edge-stable", &apps).unwrap();
        assert_eq!(found.browser, "Microsoft Edge");
    }
}
