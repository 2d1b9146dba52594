//! Web apps (PWAs) installed from Chromium-family browsers (Google Chrome, Microsoft
//! Edge, Yandex Browser, Chromium) in every browser profile of every user: how Teams,
//! WhatsApp, Telegram and Snapchat reach many PCs without an installer.
//!
//! Two places say what is installed, both read bounded and parsed without a browser:
//! - the profile's web app database (`Web Applications\Web App Database`, LevelDB):
//!   its write-ahead logs (`*.log`) and the tables compactions wrote (`*.ldb`, older
//!   `*.sst`), read by [`crate::scan::formats::leveldb`] and merged into the
//!   database's current state (per key the record with the highest sequence number, so
//!   an app uninstalled after its record was compacted is gone). Each live app record
//!   (a protocol buffer) gives its URL fields (start URL, scope, manifest id) and
//!   name. Every log and table in the folder is merged (the `MANIFEST`, which says
//!   which files are live, is not read; LevelDB deletes obsolete files right after a
//!   compaction);
//! - the profile's `Preferences` (JSON): hosted and bookmark apps
//!   (`extensions.settings.<id>.manifest.app.launch.web_url`), which older Chromium
//!   builds and their forks use.
//!
//! Browsing history, cookies and site data are never opened.
//!
//! On Windows the profiles are under each user's `%LocalAppData%` ([`BROWSERS`]); on
//! Linux under the home, for the system package, the flatpak and the snap of each
//! browser ([`LINUX_BROWSERS`]). The launchers a browser writes for its web apps
//! (`~/.local/share/applications/chrome-<app id>-Default.desktop`) name only the app
//! id, so the profile's database is what says which site an app is: each such launcher
//! is evidence of the app it starts ([`web_app_launchers`]), matched by host too.

use std::path::Path;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput, web_app_launchers};
use crate::scan::formats::leveldb::{self, Latest, LevelDbError, length_prefixed, varint};
use crate::scan::fsread::{read_bounded, read_text_lossy};

/// Browsers and their `User Data` folders under `%LocalAppData%`.
pub const BROWSERS: &[(&str, &str)] = &[
    ("Google Chrome", "Google\\Chrome\\User Data"),
    ("Microsoft Edge", "Microsoft\\Edge\\User Data"),
    ("Yandex Browser", "Yandex\\YandexBrowser\\User Data"),
    ("Chromium", "Chromium\\User Data"),
];
/// Browsers and their profile folders relative to a Linux home: the system package's,
/// the flatpak's and the snap's.
pub const LINUX_BROWSERS: &[(&str, &str)] = &[
    ("Google Chrome", ".config/google-chrome"),
    ("Google Chrome", ".config/google-chrome-beta"),
    (
        "Google Chrome",
        ".var/app/com.google.Chrome/config/google-chrome",
    ),
    ("Microsoft Edge", ".config/microsoft-edge"),
    (
        "Microsoft Edge",
        ".var/app/com.microsoft.Edge/config/microsoft-edge",
    ),
    ("Yandex Browser", ".config/yandex-browser"),
    ("Yandex Browser", ".config/yandex-browser-beta"),
    (
        "Yandex Browser",
        ".var/app/ru.yandex.Browser/config/yandex-browser",
    ),
    ("Chromium", ".config/chromium"),
    ("Chromium", ".var/app/org.chromium.Chromium/config/chromium"),
    ("Chromium", "snap/chromium/common/chromium"),
];
const MAX_PREFERENCES_BYTES: u64 = 16 * 1024 * 1024;
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// The most logs and tables read from one web app database (it holds a handful).
const MAX_DATABASE_FILES: usize = 64;
const MAX_TEXT_CHARS: usize = 2048;
const RECORD_PREFIX: &[u8] = b"web_apps-dt-";

/// An installed web app as a browser profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledWebApp {
    /// The browser's app id (`hnpfjngllnobngcgfapefoaidbinmjnm`), which its launchers name.
    pub id: String,
    pub name: String,
    pub start_url: String,
    pub scope: Option<String>,
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// Hosted and bookmark apps from a profile's `Preferences`; `Err` for text that is not
/// JSON.
pub fn parse_preferences(text: &str) -> Result<Vec<InstalledWebApp>, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("Preferences is not JSON: {error}"))?;
    let mut apps = Vec::new();
    if let Some(settings) = json
        .pointer("/extensions/settings")
        .and_then(|settings| settings.as_object())
    {
        for (id, extension) in settings {
            let manifest = &extension["manifest"];
            let Some(url) = manifest
                .pointer("/app/launch/web_url")
                .and_then(|url| url.as_str())
            else {
                continue;
            };
            apps.push(InstalledWebApp {
                id: clip(id),
                name: clip(manifest["name"].as_str().unwrap_or_default()),
                start_url: clip(url),
                scope: manifest["scope"].as_str().map(clip),
            });
        }
    }
    Ok(apps)
}

/// Walks a protocol-buffer message, collecting its strings (nested messages included),
/// to a bounded depth.
fn protobuf_strings(message: &[u8], depth: usize, found: &mut Vec<(u64, String)>) -> bool {
    let mut position = 0;
    while position < message.len() {
        let Some(key) = varint(message, &mut position) else {
            return false;
        };
        let field = key >> 3;
        match key & 7 {
            0 => {
                if varint(message, &mut position).is_none() {
                    return false;
                }
            }
            1 => position += 8,
            5 => position += 4,
            2 => {
                let Some(bytes) = length_prefixed(message, &mut position) else {
                    return false;
                };
                // Printable text is a string; anything else may be a nested message.
                let printable = std::str::from_utf8(bytes)
                    .ok()
                    .filter(|text| !text.chars().any(char::is_control));
                if let Some(text) = printable {
                    found.push((field, clip(text)));
                } else if depth < 4 {
                    let mut nested = Vec::new();
                    if protobuf_strings(bytes, depth + 1, &mut nested) {
                        found.extend(nested);
                    }
                }
            }
            _ => return false,
        }
    }
    position == message.len()
}

/// An installed app from one web app database record (key `web_apps-dt-<app id>`).
pub fn web_app_from_record(key: &[u8], value: &[u8]) -> Option<InstalledWebApp> {
    if !key.starts_with(RECORD_PREFIX) {
        return None;
    }
    let mut strings = Vec::new();
    protobuf_strings(value, 0, &mut strings);
    let is_url = |text: &str| text.starts_with("https://") || text.starts_with("http://");
    let mut urls = strings.iter().filter(|(_, text)| is_url(text));
    let start_url = urls.next()?.1.clone();
    let scope = urls.next().map(|(_, text)| text.clone());
    let name = strings
        .iter()
        .find(|(_, text)| {
            !is_url(text) && !text.is_empty() && text.chars().all(|c| !c.is_control())
        })
        .map(|(_, text)| text.clone())
        .unwrap_or_default();
    Some(InstalledWebApp {
        id: clip(&String::from_utf8_lossy(&key[RECORD_PREFIX.len()..])),
        name,
        start_url,
        scope,
    })
}

/// One file of a web app database.
#[derive(Debug, Clone, Copy)]
pub enum DatabaseFile<'a> {
    /// A write-ahead log (`*.log`).
    Log(&'a [u8]),
    /// A table (`*.ldb`, `*.sst`).
    Table(&'a [u8]),
}

/// What a web app database holds now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DatabaseApps {
    /// Each installed app with the index of the file its current record is in.
    pub apps: Vec<(InstalledWebApp, usize)>,
    /// Tables that could not be read (whole or in part), by file index.
    pub errors: Vec<(usize, LevelDbError)>,
}

/// The apps installed now according to a web app database's logs and tables, merged
/// by sequence number (deletions and updates in newer records win).
pub fn web_apps_in_database(files: &[DatabaseFile<'_>]) -> DatabaseApps {
    let mut latest = Latest::default();
    let mut errors = Vec::new();
    for (origin, file) in files.iter().enumerate() {
        let mut keep = |record: leveldb::Record<'_>| {
            if record.key.starts_with(RECORD_PREFIX) {
                latest.insert(record, origin);
            }
        };
        match file {
            DatabaseFile::Log(bytes) => leveldb::read_log(bytes, &mut keep),
            DatabaseFile::Table(bytes) => {
                if let Err(error) = leveldb::read_table(bytes, &mut keep) {
                    errors.push((origin, error));
                }
            }
        }
    }
    let mut apps: Vec<(InstalledWebApp, usize)> = Vec::new();
    for (key, value, origin) in latest.live() {
        if let Some(app) = web_app_from_record(&key, &value)
            && !apps.iter().any(|(known, _)| *known == app)
        {
            apps.push((app, origin));
        }
    }
    DatabaseApps { apps, errors }
}

/// Every installed app in a web app database log file's bytes (on its own).
pub fn parse_web_app_log(bytes: &[u8]) -> Vec<InstalledWebApp> {
    web_apps_in_database(&[DatabaseFile::Log(bytes)])
        .apps
        .into_iter()
        .map(|(app, _)| app)
        .collect()
}

#[derive(Debug)]
pub struct WebAppSource;

impl EvidenceSource for WebAppSource {
    fn kind(&self) -> SourceKind {
        SourceKind::WebApp
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let windows = context.windows.is_some();
        for user in &context.profiles.users {
            let mut installed: Vec<ProfileApp> = Vec::new();
            let browsers: Vec<(&str, String)> = if windows {
                BROWSERS
                    .iter()
                    .map(|(browser, user_data)| {
                        let home = user.home.trim_end_matches('\\');
                        (*browser, format!("{home}\\AppData\\Local\\{user_data}"))
                    })
                    .collect()
            } else {
                LINUX_BROWSERS
                    .iter()
                    .map(|(browser, folder)| (*browser, format!("{}/{folder}", user.home)))
                    .collect()
            };
            for (browser, folder) in browsers {
                let listed = if windows {
                    output.list_folder_windows(context, SourceKind::WebApp, &folder)
                } else {
                    output.list_folder(context, SourceKind::WebApp, &folder)
                };
                let Some(profiles) = listed else {
                    continue;
                };
                for profile in profiles.flatten() {
                    let local = profile.path();
                    if !local.join("Preferences").is_file() {
                        continue;
                    }
                    let profile_name = profile.file_name().to_string_lossy().into_owned();
                    let apps = read_profile(context, &local, output);
                    for (app, path) in apps {
                        output.observations.push(web_app_observation(
                            browser,
                            &profile_name,
                            &app,
                            path,
                            &user.name,
                        ));
                        installed.push(ProfileApp {
                            browser,
                            profile: profile_name.clone(),
                            app,
                        });
                    }
                }
            }
            if !windows {
                web_app_launchers::observe(context, &user.home, &user.name, &installed, output);
            }
        }
    }
}

/// An app installed in one browser profile.
#[derive(Debug, Clone)]
pub struct ProfileApp {
    pub browser: &'static str,
    pub profile: String,
    pub app: InstalledWebApp,
}

/// The evidence of one installed web app (its record, or a launcher of it).
pub fn web_app_observation(
    browser: &str,
    profile: &str,
    app: &InstalledWebApp,
    path: String,
    user: &str,
) -> Observation {
    Observation {
        observed: Observed::WebApp {
            browser: browser.to_string(),
            profile: profile.to_string(),
            name: app.name.clone(),
            start_url: app.start_url.clone(),
            scope: app.scope.clone(),
        },
        path: Some(path),
        user: Some(user.to_string()),
        scope: Scope::User,
        strength: Strength::Installed,
    }
}

fn read_profile(
    context: &ScanContext<'_>,
    profile: &Path,
    output: &mut SourceOutput,
) -> Vec<(InstalledWebApp, String)> {
    let mut apps = Vec::new();
    let preferences = profile.join("Preferences");
    let shown = context.root.display(&preferences);
    match read_text_lossy(&preferences, MAX_PREFERENCES_BYTES) {
        Ok(text) if text.truncated => output.error(
            SourceKind::WebApp,
            Some(shown),
            format!("larger than {} MB, not read", MAX_PREFERENCES_BYTES >> 20),
        ),
        Ok(text) => match parse_preferences(&text.text) {
            Ok(found) => apps.extend(found.into_iter().map(|app| (app, shown.clone()))),
            Err(message) => output.error(SourceKind::WebApp, Some(shown), message),
        },
        Err(error) => output.error(
            SourceKind::WebApp,
            Some(shown),
            format!("cannot read: {error}"),
        ),
    }
    let database = profile.join("Web Applications").join("Web App Database");
    let Ok(entries) = std::fs::read_dir(&database) else {
        return apps;
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|extension| extension.to_str()),
                Some("log" | "ldb" | "sst")
            )
        })
        .collect();
    paths.sort();
    if paths.len() > MAX_DATABASE_FILES {
        output.error(
            SourceKind::WebApp,
            Some(context.root.display(&database)),
            format!("more than {MAX_DATABASE_FILES} logs and tables, only the first read"),
        );
        paths.truncate(MAX_DATABASE_FILES);
    }
    let mut contents = Vec::new();
    for path in paths {
        let is_log = path.extension().and_then(|extension| extension.to_str()) == Some("log");
        let limit = if is_log {
            MAX_LOG_BYTES
        } else {
            leveldb::MAX_TABLE_BYTES as u64
        };
        let shown = context.root.display(&path);
        match read_bounded(&path, limit) {
            // A log's torn or overlong tail is skipped; a table must be whole.
            Ok((_, true)) if !is_log => output.error(
                SourceKind::WebApp,
                Some(shown),
                format!("larger than {} MB, not read", limit >> 20),
            ),
            Ok((bytes, _)) => contents.push((shown, is_log, bytes)),
            Err(error) => output.error(
                SourceKind::WebApp,
                Some(shown),
                format!("cannot read: {error}"),
            ),
        }
    }
    let files: Vec<DatabaseFile<'_>> = contents
        .iter()
        .map(|(_, is_log, bytes)| match is_log {
            true => DatabaseFile::Log(bytes),
            false => DatabaseFile::Table(bytes),
        })
        .collect();
    let found = web_apps_in_database(&files);
    for (origin, error) in found.errors {
        output.error(
            SourceKind::WebApp,
            Some(contents[origin].0.clone()),
            format!("damaged LevelDB table: {error}"),
        );
    }
    apps.extend(
        found
            .apps
            .into_iter()
            .map(|(app, origin)| (app, contents[origin].0.clone())),
    );
    apps
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::formats::leveldb::testing::{TableWriter, log, varint_bytes};

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = varint_bytes(number << 3 | 2);
        out.extend(varint_bytes(bytes.len() as u64));
        out.extend_from_slice(bytes);
        out
    }

    /// An app's protocol-buffer record, laid out as Chromium writes it.
    fn web_app_record(name: &str, start_url: &str, scope: &str) -> Vec<u8> {
        let mut sync = field(1, start_url.as_bytes());
        sync.extend(field(2, name.as_bytes()));
        let mut proto = field(1, &sync);
        proto.extend(field(2, name.as_bytes()));
        proto.extend(field(6, scope.as_bytes()));
        proto
    }

    /// A web app database log holding one app, laid out as LevelDB writes it.
    pub(crate) fn web_app_log(app_id: &str, name: &str, start_url: &str, scope: &str) -> Vec<u8> {
        let key = format!("web_apps-dt-{app_id}");
        let record = web_app_record(name, start_url, scope);
        log(1, &[(key.as_bytes(), Some(&record))])
    }

    fn app(id: &str, name: &str, url: &str) -> InstalledWebApp {
        InstalledWebApp {
            id: id.into(),
            name: name.into(),
            start_url: url.into(),
            scope: Some(url.into()),
        }
    }

    #[test]
    fn compacted_tables_and_logs_merge_by_sequence_number() {
        let telegram = web_app_record(
            "Telegram Web",
            "https://web.telegram.org/a/",
            "https://web.telegram.org/a/",
        );
        let whatsapp = web_app_record(
            "WhatsApp",
            "https://web.whatsapp.com/",
            "https://web.whatsapp.com/",
        );
        let teams_old = web_app_record(
            "Teams",
            "https://teams.live.com/",
            "https://teams.live.com/",
        );
        let teams_new = web_app_record(
            "Teams",
            "https://teams.microsoft.com/v2/",
            "https://teams.microsoft.com/v2/",
        );
        let discord = web_app_record(
            "Discord",
            "https://discord.com/app",
            "https://discord.com/app",
        );
        for snappy in [false, true] {
            let table = TableWriter {
                snappy,
                ..TableWriter::default()
            }
            .write(&[
                (b"web_apps-dt-discord", 3, Some(&discord)),
                (b"web_apps-dt-teams", 4, Some(&teams_old)),
                (b"web_apps-dt-telegram", 5, Some(&telegram)),
                (b"web_apps-dt-whatsapp", 6, Some(&whatsapp)),
            ]);
            // Installed and compacted: found, attributed to the table.
            let found = web_apps_in_database(&[DatabaseFile::Table(&table)]);
            assert_eq!(found.errors, vec![]);
            assert_eq!(found.apps.len(), 4, "{found:?}");
            assert!(found.apps.contains(&(
                app("telegram", "Telegram Web", "https://web.telegram.org/a/"),
                0
            )));

            // Later: WhatsApp uninstalled, Teams updated, in the log.
            let log = log(
                9,
                &[
                    (b"web_apps-dt-whatsapp", None),
                    (b"web_apps-dt-teams", Some(&teams_new)),
                ],
            );
            let expected = vec![
                (app("discord", "Discord", "https://discord.com/app"), 1),
                (app("teams", "Teams", "https://teams.microsoft.com/v2/"), 0),
                (
                    app("telegram", "Telegram Web", "https://web.telegram.org/a/"),
                    1,
                ),
            ];
            // The order of the files does not matter, sequence numbers do.
            let found =
                web_apps_in_database(&[DatabaseFile::Log(&log), DatabaseFile::Table(&table)]);
            assert_eq!(found.apps, expected);
            assert_eq!(found.errors, vec![]);
            let found =
                web_apps_in_database(&[DatabaseFile::Table(&table), DatabaseFile::Log(&log)]);
            let origins: Vec<usize> = found.apps.iter().map(|(_, origin)| *origin).collect();
            assert_eq!(origins, vec![0, 1, 0]);
        }
    }

    #[test]
    fn a_damaged_table_is_an_error_and_the_log_still_counts() {
        let record = web_app_record(
            "Discord",
            "https://discord.com/app",
            "https://discord.com/app",
        );
        let mut table = TableWriter::default().write(&[(b"web_apps-dt-x", 3, Some(&record))]);
        let last = table.len() - 1;
        table[last] ^= 0xFF;
        let log = web_app_log(
            "y",
            "Telegram Web",
            "https://web.telegram.org/a/",
            "https://web.telegram.org/a/",
        );
        let found = web_apps_in_database(&[DatabaseFile::Table(&table), DatabaseFile::Log(&log)]);
        assert_eq!(found.errors, vec![(0, LevelDbError::BadMagic)]);
        assert_eq!(
            found.apps,
            vec![(app("y", "Telegram Web", "https://web.telegram.org/a/"), 1)]
        );
    }

    #[test]
    fn apps_from_the_web_app_database_log() {
        let log = web_app_log(
            "ibblmnobmgdmpoeblocemifbpglakpoi",
            "Telegram Web",
            "https://web.telegram.org/a/",
            "https://web.telegram.org/a/",
        );
        assert_eq!(
            parse_web_app_log(&log),
            vec![InstalledWebApp {
                id: "ibblmnobmgdmpoeblocemifbpglakpoi".into(),
                name: "Telegram Web".into(),
                start_url: "https://web.telegram.org/a/".into(),
                scope: Some("https://web.telegram.org/a/".into()),
            }]
        );
        for cut in 0..log.len() {
            let _ = parse_web_app_log(&log[..cut]);
        }
    }

    #[test]
    fn bookmark_apps_from_preferences() {
        let text = r#"{"extensions":{"settings":{"abc":{"manifest":{"name":"WhatsApp Web","app":{"launch":{"web_url":"https://web.whatsapp.com/"}}}},"def":{"manifest":{"name":"An extension"}}}}}"#;
        let apps = parse_preferences(text).expect("JSON");
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].start_url, "https://web.whatsapp.com/");
        assert_eq!(apps[0].id, "abc");
        assert!(parse_preferences("{").is_err());
        assert_eq!(parse_preferences("[]"), Ok(vec![]));
    }
}
