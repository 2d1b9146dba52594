//! Web apps (PWAs) installed from Chromium-family browsers (Google Chrome, Microsoft
//! Edge, Yandex Browser, Chromium) in every browser profile of every user: how Teams,
//! WhatsApp, Telegram and Snapchat reach many PCs without an installer.
//!
//! Two places say what is installed, both read bounded and parsed without a browser:
//! - the profile's web app database (`Web Applications\Web App Database`, LevelDB):
//!   its write-ahead log records (`*.log`) hold each app's protocol-buffer record,
//!   whose URL fields (start URL, scope, manifest id) and name are taken;
//! - the profile's `Preferences` (JSON): hosted and bookmark apps
//!   (`extensions.settings.<id>.manifest.app.launch.web_url`), which older Chromium
//!   builds and their forks use.
//!
//! Browsing history, cookies and site data are never opened. Known gap: records that
//! LevelDB has already compacted into its (compressed) `*.ldb` tables are not read.

use std::path::Path;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::fsread::{read_bounded, read_text_lossy};

/// Browsers and their `User Data` folders under `%LocalAppData%`.
pub const BROWSERS: &[(&str, &str)] = &[
    ("Google Chrome", "Google\\Chrome\\User Data"),
    ("Microsoft Edge", "Microsoft\\Edge\\User Data"),
    ("Yandex Browser", "Yandex\\YandexBrowser\\User Data"),
    ("Chromium", "Chromium\\User Data"),
];
const MAX_PREFERENCES_BYTES: u64 = 16 * 1024 * 1024;
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
const MAX_TEXT_CHARS: usize = 2048;
/// LevelDB's log is written in blocks of this size, each record with a 7-byte header.
const LOG_BLOCK: usize = 32 * 1024;

/// An installed web app as a browser profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledWebApp {
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
        for extension in settings.values() {
            let manifest = &extension["manifest"];
            let Some(url) = manifest
                .pointer("/app/launch/web_url")
                .and_then(|url| url.as_str())
            else {
                continue;
            };
            apps.push(InstalledWebApp {
                name: clip(manifest["name"].as_str().unwrap_or_default()),
                start_url: clip(url),
                scope: manifest["scope"].as_str().map(clip),
            });
        }
    }
    Ok(apps)
}

/// The records of a LevelDB log file: the payloads of complete records, reassembled
/// across blocks. A damaged record ends the read (what came before is kept).
pub fn leveldb_log_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut position = 0;
    while position + 7 <= bytes.len() {
        let left_in_block = LOG_BLOCK - position % LOG_BLOCK;
        if left_in_block < 7 {
            position += left_in_block;
            continue;
        }
        let length = u16::from_le_bytes([bytes[position + 4], bytes[position + 5]]) as usize;
        let kind = bytes[position + 6];
        let start = position + 7;
        let Some(payload) = bytes.get(start..start + length) else {
            break;
        };
        if length > left_in_block - 7 {
            break;
        }
        match kind {
            1 => records.push(payload.to_vec()), // FULL
            2 => pending = payload.to_vec(),     // FIRST
            3 => pending.extend_from_slice(payload),
            4 => {
                pending.extend_from_slice(payload);
                records.push(std::mem::take(&mut pending));
            }
            0 => {
                // Zero padding at the end of a block (or of a preallocated file).
                position += left_in_block;
                continue;
            }
            _ => break,
        }
        position = start + length;
    }
    records
}

fn varint(bytes: &[u8], position: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn length_prefixed<'a>(bytes: &'a [u8], position: &mut usize) -> Option<&'a [u8]> {
    let length = usize::try_from(varint(bytes, position)?).ok()?;
    let slice = bytes.get(*position..position.checked_add(length)?)?;
    *position += length;
    Some(slice)
}

/// The puts of a LevelDB write batch: (key, value).
pub fn write_batch_puts(batch: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut puts = Vec::new();
    let mut position = 12; // sequence number and count
    while position < batch.len() {
        let tag = batch[position];
        position += 1;
        let Some(key) = length_prefixed(batch, &mut position) else {
            break;
        };
        match tag {
            1 => match length_prefixed(batch, &mut position) {
                Some(value) => puts.push((key, value)),
                None => break,
            },
            0 => {} // deletion
            _ => break,
        }
    }
    puts
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
    if !key.starts_with(b"web_apps-dt-") {
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
        name,
        start_url,
        scope,
    })
}

/// Every installed app in a web app database log file's bytes.
pub fn parse_web_app_log(bytes: &[u8]) -> Vec<InstalledWebApp> {
    let mut apps: Vec<InstalledWebApp> = Vec::new();
    for record in leveldb_log_records(bytes) {
        for (key, value) in write_batch_puts(&record) {
            if let Some(app) = web_app_from_record(key, value)
                && !apps.contains(&app)
            {
                apps.push(app);
            }
        }
    }
    apps
}

#[derive(Debug)]
pub struct WebAppSource;

impl EvidenceSource for WebAppSource {
    fn kind(&self) -> SourceKind {
        SourceKind::WebApp
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        if context.windows.is_none() {
            return;
        }
        for user in &context.profiles.users {
            for (browser, user_data) in BROWSERS {
                let folder = format!(
                    "{}\\AppData\\Local\\{user_data}",
                    user.home.trim_end_matches('\\')
                );
                let Some(profiles) =
                    output.list_folder_windows(context, SourceKind::WebApp, &folder)
                else {
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
                        output.observations.push(Observation {
                            observed: Observed::WebApp {
                                browser: browser.to_string(),
                                profile: profile_name.clone(),
                                name: app.name,
                                start_url: app.start_url,
                                scope: app.scope,
                            },
                            path: Some(path),
                            user: Some(user.name.clone()),
                            scope: Scope::User,
                            strength: Strength::Installed,
                        });
                    }
                }
            }
        }
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
    let Ok(files) = std::fs::read_dir(&database) else {
        return apps;
    };
    for file in files.flatten() {
        let path = file.path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("log") {
            continue;
        }
        let shown = context.root.display(&path);
        match read_bounded(&path, MAX_LOG_BYTES) {
            Ok((bytes, _)) => apps.extend(
                parse_web_app_log(&bytes)
                    .into_iter()
                    .map(|app| (app, shown.clone())),
            ),
            Err(error) => output.error(
                SourceKind::WebApp,
                Some(shown),
                format!("cannot read: {error}"),
            ),
        }
    }
    apps
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint_bytes(mut value: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        loop {
            let byte = (value & 0x7F) as u8;
            value >>= 7;
            if value == 0 {
                bytes.push(byte);
                return bytes;
            }
            bytes.push(byte | 0x80);
        }
    }

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = varint_bytes(number << 3 | 2);
        out.extend(varint_bytes(bytes.len() as u64));
        out.extend_from_slice(bytes);
        out
    }

    /// A web app database log holding one app, laid out as LevelDB writes it.
    pub(crate) fn web_app_log(app_id: &str, name: &str, start_url: &str, scope: &str) -> Vec<u8> {
        let mut sync = field(1, start_url.as_bytes());
        sync.extend(field(2, name.as_bytes()));
        let mut proto = field(1, &sync);
        proto.extend(field(2, name.as_bytes()));
        proto.extend(field(6, scope.as_bytes()));
        let key = format!("web_apps-dt-{app_id}");
        let mut batch = vec![0u8; 8];
        batch.extend_from_slice(&1u32.to_le_bytes());
        batch.push(1);
        batch.extend(varint_bytes(key.len() as u64));
        batch.extend_from_slice(key.as_bytes());
        batch.extend(varint_bytes(proto.len() as u64));
        batch.extend(proto);
        let mut log = vec![0u8; 4];
        log.extend_from_slice(&(batch.len() as u16).to_le_bytes());
        log.push(1);
        log.extend(batch);
        log
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
        assert!(parse_preferences("{").is_err());
        assert_eq!(parse_preferences("[]"), Ok(vec![]));
    }
}
