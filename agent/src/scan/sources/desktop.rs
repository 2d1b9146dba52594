//! freedesktop `.desktop` launchers: system menus, flatpak and snap exports, autostart,
//! and each user's menu entries and desktop shortcuts (also under localized names such
//! as `~/Рабочий стол`, read from `~/.config/user-dirs.dirs`). A launcher whose program
//! exists is evidence of an install; one whose program is gone is a trace.

use std::path::Path;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::fsread::read_text_lossy;
use crate::scan::root::ScanRoot;
use crate::scan::users::UserProfile;

pub const SYSTEM_FOLDERS: &[&str] = &[
    "/usr/share/applications",
    "/usr/local/share/applications",
    "/var/lib/flatpak/exports/share/applications",
    "/var/lib/snapd/desktop/applications",
    "/etc/xdg/autostart",
];
pub const USER_FOLDERS: &[&str] = &[
    ".local/share/applications",
    ".local/share/flatpak/exports/share/applications",
    ".config/autostart",
    "Desktop",
    "Рабочий стол",
];
/// Folders searched for a launcher's program when `Exec` names no absolute path.
const PROGRAM_FOLDERS: &[&str] = &[
    "/usr/bin",
    "/usr/local/bin",
    "/bin",
    "/usr/games",
    "/snap/bin",
    "/var/lib/flatpak/exports/bin",
];
const MAX_DESKTOP_FILE: u64 = 256 * 1024;
const MAX_FILES_PER_FOLDER: usize = 20_000;

/// The keys of the `[Desktop Entry]` group that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopEntry {
    pub name: Option<String>,
    pub exec: Option<String>,
    pub wm_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesktopEntryError {
    #[error("no [Desktop Entry] group (not a launcher, or damaged)")]
    NoGroup,
}

/// Parses the `[Desktop Entry]` group of a launcher; other groups and localized keys
/// are ignored.
pub fn parse_desktop_entry(text: &str) -> Result<DesktopEntry, DesktopEntryError> {
    let mut entry = DesktopEntry::default();
    let mut in_group = false;
    let mut found = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_group = line == "[Desktop Entry]";
            found |= in_group;
            continue;
        }
        if !in_group {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "Name" => entry.name = Some(value),
            "Exec" => entry.exec = Some(unescape_value(&value)),
            "StartupWMClass" => entry.wm_class = Some(value),
            _ => {}
        }
    }
    if found {
        Ok(entry)
    } else {
        Err(DesktopEntryError::NoGroup)
    }
}

/// A string value as the desktop entry specification escapes it (`\\s`, `\\n`, `\\t`,
/// `\\r`, `\\\\`); the `Exec` quoting rules apply after this.
fn unescape_value(value: &str) -> String {
    let mut unescaped = String::with_capacity(value.len());
    let mut characters = value.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            unescaped.push(character);
            continue;
        }
        match characters.next() {
            Some('s') => unescaped.push(' '),
            Some('n') => unescaped.push('\n'),
            Some('t') => unescaped.push('\t'),
            Some('r') => unescaped.push('\r'),
            Some('\\') => unescaped.push('\\'),
            // Anything else is left for the `Exec` quoting rules.
            Some(other) => {
                unescaped.push('\\');
                unescaped.push(other);
            }
            None => unescaped.push('\\'),
        }
    }
    unescaped
}

/// What a launcher starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchTarget {
    Program(String),
    /// `flatpak run <id>`.
    Flatpak(String),
    /// A Windows program run by Wine (`env WINEPREFIX=... wine C:\\...\\x.exe`, as
    /// Wine's menu builder writes launchers): the prefix when the launcher names one, and
    /// the program's Windows path (often a `.lnk` of the Start menu).
    Wine {
        prefix: Option<String>,
        program: String,
    },
}

/// The names Wine's loader goes by in launchers.
const WINE_LOADERS: &[&str] = &[
    "wine",
    "wine64",
    "wine-stable",
    "wine64-stable",
    "wine-development",
];

/// Splits an `Exec` value into words, honouring double quotes and backslashes.
pub fn exec_words(exec: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut characters = exec.chars();
    while let Some(character) = characters.next() {
        match character {
            '"' => quoted = !quoted,
            '\\' => {
                if let Some(next) = characters.next() {
                    current.push(next);
                }
            }
            whitespace if whitespace.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The program an `Exec` line starts, past `env VAR=value` and through `flatpak run`.
pub fn launch_target(exec: &str) -> Option<LaunchTarget> {
    let words = exec_words(exec);
    let mut rest = words.iter().map(String::as_str).peekable();
    let mut program = rest.next()?;
    let mut wine_prefix = None;
    if program.rsplit('/').next() == Some("env") {
        while let Some(word) = rest.peek() {
            if word.contains('=') || word.starts_with('-') {
                if let Some(prefix) = word.strip_prefix("WINEPREFIX=") {
                    wine_prefix = Some(prefix.to_string());
                }
                rest.next();
            } else {
                break;
            }
        }
        program = rest.next()?;
    }
    if WINE_LOADERS.contains(&program.rsplit('/').next().unwrap_or_default()) {
        let windows_program = rest.find(|word| {
            !word.starts_with('-') && !word.starts_with('/') && !word.eq_ignore_ascii_case("start")
        })?;
        return Some(LaunchTarget::Wine {
            prefix: wine_prefix,
            program: windows_program.to_string(),
        });
    }
    if program.rsplit('/').next() == Some("flatpak") {
        let mut after_run = rest.skip_while(|word| *word != "run").skip(1);
        return after_run
            .find(|word| !word.starts_with('-'))
            .map(|id| LaunchTarget::Flatpak(id.to_string()));
    }
    (!program.starts_with('%')).then(|| LaunchTarget::Program(program.to_string()))
}

/// `XDG_DESKTOP_DIR` and `XDG_DOWNLOAD_DIR` from `user-dirs.dirs`, relative to home.
pub fn parse_user_dirs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(key, _)| matches!(key.trim(), "XDG_DESKTOP_DIR" | "XDG_DOWNLOAD_DIR"))
        .filter_map(|(_, value)| {
            let value = value.trim().trim_matches('"');
            let relative = value.strip_prefix("$HOME/")?;
            (!relative.is_empty() && !relative.split('/').any(|part| part == ".."))
                .then(|| relative.to_string())
        })
        .collect()
}

/// The localized desktop and downloads folders of a user, relative to home.
pub fn user_named_folders(root: &ScanRoot, user: &UserProfile) -> Vec<String> {
    read_text_lossy(
        &root.path(format!("{}/.config/user-dirs.dirs", user.home)),
        64 * 1024,
    )
    .map(|text| parse_user_dirs(&text.text))
    .unwrap_or_default()
}

fn has_extension(name: &str, extension: &str) -> bool {
    name.len() > extension.len()
        && name
            .get(name.len() - extension.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(extension))
}

/// Where a Wine launcher's Windows program (`C:\\users\\...`) is on this system:
/// under the launcher's prefix (or `~/.wine`), its components found without regard to
/// case, as Wine does.
fn wine_program_path(
    root: &ScanRoot,
    home: Option<&str>,
    prefix: &Option<String>,
    program: &str,
) -> Option<std::path::PathBuf> {
    let prefix = match (prefix, home) {
        (Some(prefix), _) => prefix.clone(),
        (None, Some(home)) => format!("{home}/.wine"),
        (None, None) => return None,
    };
    // Only C: (`drive_c`): the other drives are links that may lead anywhere.
    let (drive, rest) = program.split_once(':')?;
    if !drive.eq_ignore_ascii_case("c") {
        return None;
    }
    let mut local = root.path(format!("{prefix}/drive_c"));
    for component in rest.split(['\\', '/']).filter(|part| !part.is_empty()) {
        let exact = local.join(component);
        local = if exact.exists() {
            exact
        } else {
            std::fs::read_dir(&local)
                .ok()?
                .flatten()
                .take(MAX_FILES_PER_FOLDER)
                .find(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .eq_ignore_ascii_case(component)
                })?
                .path()
        };
    }
    local.exists().then_some(local)
}

fn program_exists(root: &ScanRoot, user: Option<&UserProfile>, target: &LaunchTarget) -> bool {
    match target {
        LaunchTarget::Program(program) if program.starts_with('/') => root.path(program).exists(),
        LaunchTarget::Program(program) => {
            let mut folders: Vec<String> = PROGRAM_FOLDERS
                .iter()
                .map(|folder| folder.to_string())
                .collect();
            if let Some(user) = user {
                folders.push(format!("{}/.local/bin", user.home));
            }
            !program.contains('/')
                && folders
                    .iter()
                    .any(|folder| root.path(folder).join(program).exists())
        }
        LaunchTarget::Wine { prefix, program } => {
            let Some(home) = user.map(|user| user.home.as_str()) else {
                return prefix.is_some()
                    && wine_program_path(root, None, prefix, program).is_some();
            };
            wine_program_path(root, Some(home), prefix, program).is_some()
        }
        LaunchTarget::Flatpak(id) => {
            root.path(super::flatpak::SYSTEM_APPS).join(id).exists()
                || user.is_some_and(|user| {
                    root.path(format!("{}/{}", user.home, super::flatpak::USER_APPS))
                        .join(id)
                        .exists()
                })
        }
    }
}

#[derive(Debug)]
pub struct DesktopEntrySource;

impl EvidenceSource for DesktopEntrySource {
    fn kind(&self) -> SourceKind {
        SourceKind::DesktopEntry
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        for folder in SYSTEM_FOLDERS {
            read_folder(context, folder, None, output);
        }
        for user in &context.profiles.users {
            let mut folders: Vec<String> = USER_FOLDERS
                .iter()
                .map(|folder| folder.to_string())
                .collect();
            for named in user_named_folders(context.root, user) {
                if !folders.contains(&named) {
                    folders.push(named);
                }
            }
            for folder in folders {
                read_folder(
                    context,
                    &format!("{}/{folder}", user.home),
                    Some(user),
                    output,
                );
            }
        }
    }
}

/// How deep below a user's `.local/share/applications` launchers are read (Wine's
/// menu builder writes them to `wine/Programs/<folder>/`).
const MAX_MENU_DEPTH: usize = 4;

fn read_folder(
    context: &ScanContext<'_>,
    folder: &str,
    user: Option<&UserProfile>,
    output: &mut SourceOutput,
) {
    let depth = if user.is_some() && folder.ends_with("/.local/share/applications") {
        MAX_MENU_DEPTH
    } else {
        0
    };
    read_folder_to_depth(context, folder, user, depth, output);
}

fn read_folder_to_depth(
    context: &ScanContext<'_>,
    folder: &str,
    user: Option<&UserProfile>,
    depth: usize,
    output: &mut SourceOutput,
) {
    let Some(entries) = output.list_folder(context, SourceKind::DesktopEntry, folder) else {
        return;
    };
    for entry in entries.flatten().take(MAX_FILES_PER_FOLDER) {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let is_folder = entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false);
        if is_folder && depth > 0 {
            let inner = format!("{folder}/{file_name}");
            read_folder_to_depth(context, &inner, user, depth - 1, output);
            continue;
        }
        if !file_name.ends_with(".desktop") {
            continue;
        }
        let shown = format!("{folder}/{file_name}");
        read_launcher(context, &entry.path(), &file_name, &shown, user, output);
    }
}

fn read_launcher(
    context: &ScanContext<'_>,
    local: &Path,
    file_name: &str,
    shown: &str,
    user: Option<&UserProfile>,
    output: &mut SourceOutput,
) {
    let parsed = read_text_lossy(local, MAX_DESKTOP_FILE)
        .map_err(|error| format!("cannot read: {error}"))
        .and_then(|text| parse_desktop_entry(&text.text).map_err(|error| error.to_string()));
    let entry = match parsed {
        Ok(entry) => entry,
        Err(message) => {
            output.error(SourceKind::DesktopEntry, Some(shown.to_string()), message);
            return;
        }
    };
    let target = entry.exec.as_deref().and_then(launch_target);
    let strength = match &target {
        Some(target) if program_exists(context.root, user, target) => Strength::Installed,
        _ => Strength::Trace,
    };
    let program = target.map(|target| match target {
        LaunchTarget::Program(program) => program,
        LaunchTarget::Flatpak(id) => id,
        // A Start-menu link: Wine names the window class after the program it starts.
        LaunchTarget::Wine { program, .. } if has_extension(&program, ".lnk") => entry
            .wm_class
            .clone()
            .filter(|class| has_extension(class, ".exe"))
            .unwrap_or(program),
        LaunchTarget::Wine { program, .. } => program,
    });
    output.observations.push(Observation {
        observed: Observed::DesktopEntry {
            file_name: file_name.to_string(),
            name: entry.name,
            program,
            wm_class: entry.wm_class,
        },
        path: Some(shown.to_string()),
        user: user.map(|user| user.name.clone()),
        scope: Scope::of_profile(&user),
        strength,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_and_their_programs() {
        let entry = parse_desktop_entry(
            "# c\n[Desktop Entry]\nName=Telegram\nName[ru]=Телеграм\nExec=env QT_X=1 \"/home/a/My Apps/Telegram/Telegram\" -- %u\nStartupWMClass=TelegramDesktop\n[Desktop Action x]\nExec=other\n",
        )
        .expect("parses");
        assert_eq!(entry.name.as_deref(), Some("Telegram"));
        assert_eq!(entry.wm_class.as_deref(), Some("TelegramDesktop"));
        assert_eq!(
            launch_target(entry.exec.as_deref().expect("exec")),
            Some(LaunchTarget::Program(
                "/home/a/My Apps/Telegram/Telegram".into()
            ))
        );
        assert_eq!(
            launch_target(
                "/usr/bin/flatpak run --branch=stable --arch=x86_64 --command=telegram-desktop org.telegram.desktop -- %u"
            ),
            Some(LaunchTarget::Flatpak("org.telegram.desktop".into()))
        );
        // Wine's menu builder: a Start-menu link, run by wine in a named prefix.
        assert_eq!(
            launch_target(
                "env WINEPREFIX=\"/home/anna/.wine\" wine C:\\\\users\\\\anna\\\\Start\\ Menu\\\\Programs\\\\Telegram\\ Desktop\\\\Telegram.lnk"
            ),
            Some(LaunchTarget::Wine {
                prefix: Some("/home/anna/.wine".into()),
                program: "C:\\users\\anna\\Start Menu\\Programs\\Telegram Desktop\\Telegram.lnk"
                    .into(),
            })
        );
        assert_eq!(
            launch_target("wine64 start /unix /home/a/x.exe"),
            None,
            "a Unix path run through `start /unix` names no Windows program"
        );
        assert_eq!(launch_target("%U"), None);
        assert_eq!(launch_target(""), None);
        assert_eq!(
            parse_desktop_entry("\u{0}\u{1}ELF junk"),
            Err(DesktopEntryError::NoGroup)
        );
    }

    #[test]
    fn localized_user_folders() {
        let text = "XDG_DESKTOP_DIR=\"$HOME/Рабочий стол\"\nXDG_DOWNLOAD_DIR=\"$HOME/Загрузки\"\nXDG_MUSIC_DIR=\"$HOME/Музыка\"\nXDG_DOWNLOAD_DIR=\"/etc\"\n";
        assert_eq!(
            parse_user_dirs(text),
            vec!["Рабочий стол".to_string(), "Загрузки".to_string()]
        );
    }
}
