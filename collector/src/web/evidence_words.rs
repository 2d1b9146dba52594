//! Evidence for people (issue 19): one line per finding in the reader's language —
//! "Telegram: установлен пакетом для всех пользователей; также копия программы в
//! «Загрузках» пользователя sidorov" — built from the stored evidence; the technical
//! lines stay a click away on the PC page.

use sverka_shared::report::{Scope, SourceKind};
use sverka_shared::{Evidence, Strength};

use super::i18n::Lang;

/// Where a file lies, in words: the user's Downloads or Desktop, or nothing special.
fn place(path: &str, lang: Lang) -> Option<&'static str> {
    let lower = path.to_lowercase();
    let downloads = lower.contains("/downloads/")
        || lower.contains("\\downloads\\")
        || lower.contains("/загрузки/");
    let desktop = lower.contains("/desktop/")
        || lower.contains("\\desktop\\")
        || lower.contains("/рабочий стол/");
    match (lang, downloads, desktop) {
        (Lang::Ru, true, _) => Some("в «Загрузках»"),
        (Lang::Ru, _, true) => Some("на рабочем столе"),
        (Lang::En, true, _) => Some("in Downloads"),
        (Lang::En, _, true) => Some("on the desktop"),
        _ => None,
    }
}

/// One piece of evidence as a phrase.
fn phrase(evidence: &Evidence, lang: Lang) -> String {
    let ru = lang == Lang::Ru;
    let what = match (evidence.source, ru) {
        (SourceKind::Dpkg | SourceKind::Rpm, true) => "установлен пакетом",
        (SourceKind::Dpkg | SourceKind::Rpm, false) => "installed as a package",
        (SourceKind::Flatpak, true) => "установлен через Flatpak",
        (SourceKind::Flatpak, false) => "installed with Flatpak",
        (SourceKind::Snap, true) => "установлен через Snap",
        (SourceKind::Snap, false) => "installed with Snap",
        (SourceKind::DesktopEntry, true) => "есть ярлык запуска",
        (SourceKind::DesktopEntry, false) => "has a launcher",
        (SourceKind::File, true) => "копия программы",
        (SourceKind::File, false) => "a copy of the program",
        (SourceKind::DataDir, true) => "остались данные программы",
        (SourceKind::DataDir, false) => "its data folder is left",
        (SourceKind::Process, true) => "запущен",
        (SourceKind::Process, false) => "running",
        (SourceKind::UninstallKey, true) => "установлен (в списке программ Windows)",
        (SourceKind::UninstallKey, false) => "installed (in Windows' programs list)",
        (SourceKind::Appx, true) => "установлен из Microsoft Store",
        (SourceKind::Appx, false) => "installed from the Microsoft Store",
        (SourceKind::WebApp, true) => "установлен как веб-приложение браузера",
        (SourceKind::WebApp, false) => "installed as a browser web app",
        (SourceKind::Bundle, true) => "установлен как приложение macOS",
        (SourceKind::Bundle, false) => "installed as a macOS application",
    };
    let mut text = what.to_string();
    if let Some(place) = evidence.path.as_deref().and_then(|path| place(path, lang)) {
        text.push(' ');
        text.push_str(place);
    }
    match (&evidence.user, evidence.scope, ru) {
        (Some(user), _, true) => text.push_str(&format!(" пользователя {user}")),
        (Some(user), _, false) => text.push_str(&format!(" of user {user}")),
        (None, Scope::Machine, true) if evidence.strength != Strength::Running => {
            text.push_str(" для всех пользователей")
        }
        (None, Scope::Machine, false) if evidence.strength != Strength::Running => {
            text.push_str(" for all users")
        }
        _ => {}
    }
    text
}

/// The finding as one line: the application, its strongest evidence, then the rest
/// ("also ..."); repeated phrases once. Unreadable evidence gives the name alone.
pub fn evidence_summary(app_name: &str, evidence_json: &str, lang: Lang) -> String {
    let mut evidence: Vec<Evidence> = serde_json::from_str(evidence_json).unwrap_or_default();
    let rank = |strength: Strength| match strength {
        Strength::Running => 0,
        Strength::Installed => 1,
        Strength::Trace => 2,
    };
    evidence.sort_by_key(|evidence| rank(evidence.strength));
    let mut phrases: Vec<String> = Vec::new();
    for item in &evidence {
        let text = phrase(item, lang);
        if !phrases.contains(&text) {
            phrases.push(text);
        }
    }
    let also = match lang {
        Lang::Ru => "; также ",
        Lang::En => "; also ",
    };
    match phrases.split_first() {
        None => app_name.to_string(),
        Some((first, [])) => format!("{app_name}: {first}"),
        Some((first, rest)) => format!("{app_name}: {first}{also}{}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_read_as_sentences() {
        let json = serde_json::json!([
            {"source": "file", "detail": "Telegram.exe 4.1", "path": "/home/sidorov/Downloads/Telegram/Telegram",
             "user": "sidorov", "scope": "user", "strength": "installed"},
            {"source": "dpkg", "detail": "dpkg package telegram-desktop 4.6", "path": "/var/lib/dpkg/status",
             "scope": "machine", "strength": "installed"},
            {"source": "process", "detail": "telegram-desktop pid 41", "scope": "machine", "strength": "running"},
        ])
        .to_string();
        assert_eq!(
            evidence_summary("Telegram", &json, Lang::Ru),
            "Telegram: запущен; также копия программы в «Загрузках» пользователя sidorov, \
             установлен пакетом для всех пользователей"
        );
        assert_eq!(
            evidence_summary("Telegram", &json, Lang::En),
            "Telegram: running; also a copy of the program in Downloads of user sidorov, \
             installed as a package for all users"
        );
        assert_eq!(evidence_summary("Viber", "not json", Lang::Ru), "Viber");
    }
}
