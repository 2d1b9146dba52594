//! Wine's registry files (`system.reg`, `user.reg`, `userdef.reg` in a prefix): plain
//! text, `WINE REGISTRY Version 2`, one `[Key\\Path] <time>` line per key followed by its
//! values (`"Name"="text"`, `str(2):"..."`, `str(7):"..."`, `dword:0000002a`,
//! `hex:..`/`hex(b):..` with `\` continuation lines); strings escape `\\`, `\"`, `\n`,
//! `\0` and non-ASCII characters as `\x`+hex. Exported `.reg` files (`REGEDIT4`,
//! `Windows Registry Editor Version 5.00`, often UTF-16LE with a byte order mark) are
//! read the same way.
//!
//! [`parse_wine_registry`] is pure and bounded: a file that is not a registry file, is
//! not UTF-8 or UTF-16, or holds more keys than [`MAX_KEYS`] is an error; a line that
//! cannot be read (a truncated string, a bad number) is a problem of its key, and the
//! rest is still read. [`WineRegistryView`] serves the keys through [`RegistryView`], so
//! the uninstall logic of a Windows system reads a Wine prefix unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{RegValue, RegistryError, RegistryKey, RegistryView};

/// The most keys one file may hold (a fresh prefix's `system.reg` has about 10,000).
pub const MAX_KEYS: usize = 2_000_000;
/// The largest registry file read.
pub const MAX_REGISTRY_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Problems kept per key; more are counted in the last one.
const MAX_PROBLEMS_PER_KEY: usize = 8;

/// Why a file could not be read as a registry at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WineRegistryError {
    #[error("not a registry file (first line {0:?})")]
    NotARegistry(String),
    #[error("not UTF-8 or UTF-16 text (invalid byte at offset {0})")]
    NotText(usize),
    #[error("more than {MAX_KEYS} keys")]
    TooManyKeys,
}

/// The keys of one registry file, by their path in lower case.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WineRegistry {
    keys: BTreeMap<String, RegistryKey>,
}

impl WineRegistry {
    /// The key at `path` (`Software\Microsoft\...`, any case), when the file has it or a
    /// key below it.
    pub fn key(&self, path: &str) -> Option<&RegistryKey> {
        self.keys.get(&normalize_path(path))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn normalize_path(path: &str) -> String {
    path.split('\\')
        .filter(|part| !part.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("\\")
}

/// Decodes the bytes of a registry file: UTF-16LE after a byte order mark, UTF-8
/// otherwise (with or without a byte order mark).
fn decode(bytes: &[u8]) -> Result<String, WineRegistryError> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
            .collect();
        return String::from_utf16(&units).map_err(|_| {
            let at = char::decode_utf16(units.iter().copied())
                .take_while(Result::is_ok)
                .map(|c| c.map(char::len_utf16).unwrap_or(1))
                .sum::<usize>();
            WineRegistryError::NotText(2 + at * 2)
        });
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    String::from_utf8(bytes.to_vec())
        .map_err(|error| WineRegistryError::NotText(error.utf8_error().valid_up_to()))
}

/// Parses a registry file.
pub fn parse_wine_registry(bytes: &[u8]) -> Result<WineRegistry, WineRegistryError> {
    let text = decode(bytes)?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    let known = [
        "WINE REGISTRY Version 2",
        "REGEDIT4",
        "Windows Registry Editor Version 5.00",
    ];
    if !known.iter().any(|header| first.starts_with(header)) {
        return Err(WineRegistryError::NotARegistry(
            first.chars().take(40).collect(),
        ));
    }
    let mut registry = WineRegistry::default();
    let mut current: Option<String> = None;
    let mut pending = String::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        // A hex value continues on the next line after a `\`.
        if !pending.is_empty() {
            pending.push_str(line.trim_start());
            if pending.ends_with('\\') {
                pending.pop();
                continue;
            }
            let whole = std::mem::take(&mut pending);
            add_value(&mut registry, current.as_deref(), &whole);
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            match key_path(trimmed) {
                Some(path) => {
                    let original = strip_root(&path);
                    let path = normalize_path(&original);
                    if !registry.keys.contains_key(&path) {
                        if registry.keys.len() >= MAX_KEYS {
                            return Err(WineRegistryError::TooManyKeys);
                        }
                        add_key(&mut registry, &original);
                    }
                    current = Some(path);
                }
                None => current = None,
            }
            continue;
        }
        if trimmed.ends_with('\\') && is_hex_value(trimmed) {
            pending = trimmed.trim_end_matches('\\').to_string();
            continue;
        }
        add_value(&mut registry, current.as_deref(), trimmed);
    }
    if !pending.is_empty() {
        let whole = std::mem::take(&mut pending);
        add_value(&mut registry, current.as_deref(), &whole);
    }
    Ok(registry)
}

/// Exported files name the root (`HKEY_LOCAL_MACHINE\Software\...`); Wine's own files
/// are relative to it already.
fn strip_root(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    for root in [
        "hkey_local_machine\\",
        "hkey_current_user\\",
        "hkey_users\\",
    ] {
        if lower.starts_with(root) {
            return path[root.len()..].to_string();
        }
    }
    path.to_string()
}

fn is_hex_value(line: &str) -> bool {
    line.split_once('=')
        .is_some_and(|(_, value)| value.trim_start().starts_with("hex"))
}

/// The path of a `[Key\\Path] 1700000000` line, `\\` unescaped to `\`.
fn key_path(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let end = inner.rfind(']')?;
    let escaped = &inner[..end];
    let mut path = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => path.push('\\'),
                Some(other) => {
                    path.push('\\');
                    path.push(other);
                }
                None => path.push('\\'),
            }
        } else {
            path.push(c);
        }
    }
    (!path.trim().is_empty()).then_some(path)
}

/// Registers a key and every missing parent, each in its parent's subkeys (by its
/// name as written; keys are found without regard to case).
fn add_key(registry: &mut WineRegistry, original: &str) {
    let mut parent = String::new();
    for part in original.split('\\').filter(|part| !part.is_empty()) {
        let lower = part.to_lowercase();
        let child = if parent.is_empty() {
            lower
        } else {
            format!("{parent}\\{lower}")
        };
        if !registry.keys.contains_key(&child) {
            registry.keys.insert(child.clone(), RegistryKey::default());
            let parent_key = registry.keys.entry(parent.clone()).or_default();
            parent_key.subkeys.push(part.to_string());
        }
        parent = child;
    }
}

fn add_value(registry: &mut WineRegistry, current: Option<&str>, line: &str) {
    let Some(path) = current else { return };
    let Some(key) = registry.keys.get_mut(path) else {
        return;
    };
    match parse_value_line(line) {
        Ok((name, value)) => key.values.push((name, value)),
        Err(problem) => {
            if key.problems.len() < MAX_PROBLEMS_PER_KEY {
                key.problems.push(problem);
            }
        }
    }
}

/// `"Name"=value` or `@=value`.
fn parse_value_line(line: &str) -> Result<(String, RegValue), String> {
    let (name, rest) = if let Some(rest) = line.strip_prefix('@') {
        (String::new(), rest)
    } else if line.starts_with('"') {
        let (name, rest) =
            quoted(line).ok_or_else(|| format!("unterminated value name: {}", shorten(line)))?;
        (name, rest)
    } else {
        return Err(format!("unreadable line: {}", shorten(line)));
    };
    let data = rest
        .trim_start()
        .strip_prefix('=')
        .ok_or_else(|| format!("value `{name}` has no `=`"))?
        .trim();
    let value = parse_data(data).map_err(|problem| format!("value `{name}`: {problem}"))?;
    Ok((name, value))
}

fn parse_data(data: &str) -> Result<RegValue, String> {
    if data.starts_with('"') {
        let (text, _) = quoted(data).ok_or("unterminated string (a truncated file?)")?;
        return Ok(RegValue::String(text));
    }
    if let Some(rest) = data.strip_prefix("str(") {
        let (kind, rest) = rest.split_once("):").ok_or("bad str(...) type")?;
        let (text, _) =
            quoted(rest.trim_start()).ok_or("unterminated string (a truncated file?)")?;
        return Ok(match kind {
            "7" => RegValue::MultiString(
                text.split('\0')
                    .filter(|line| !line.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            _ => RegValue::String(text),
        });
    }
    if let Some(hex) = data.strip_prefix("dword:") {
        return u32::from_str_radix(hex.trim(), 16)
            .map(RegValue::Dword)
            .map_err(|_| format!("bad dword {}", shorten(hex)));
    }
    if let Some(rest) = data.strip_prefix("hex") {
        let (kind, bytes) = match rest.strip_prefix(':') {
            Some(bytes) => (3, bytes),
            None => {
                let rest = rest.strip_prefix('(').ok_or("bad hex type")?;
                let (kind, bytes) = rest.split_once("):").ok_or("bad hex type")?;
                let kind = u32::from_str_radix(kind, 16).map_err(|_| "bad hex type")?;
                (kind, bytes)
            }
        };
        let bytes = hex_bytes(bytes)?;
        return Ok(match kind {
            2 | 1 => RegValue::String(utf16_string(&bytes)),
            7 => RegValue::MultiString(
                utf16_string(&bytes)
                    .split('\0')
                    .filter(|line| !line.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            4 if bytes.len() == 4 => {
                RegValue::Dword(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            }
            11 if bytes.len() == 8 => RegValue::Qword(u64::from_le_bytes([
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            ])),
            3 => RegValue::Binary(bytes),
            other => RegValue::Other(other),
        });
    }
    Err(format!("unknown value type {}", shorten(data)))
}

fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|byte| !byte.is_empty())
        .map(|byte| {
            u8::from_str_radix(byte, 16).map_err(|_| format!("bad hex byte {}", shorten(byte)))
        })
        .collect()
}

fn utf16_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches('\0')
        .to_string()
}

/// A quoted string at the start of `text` (which starts with `"`), unescaped, and the
/// text after its closing quote; `None` when it is not closed.
fn quoted(text: &str) -> Option<(String, &str)> {
    let inner = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &inner[at + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    '0' => value.push('\0'),
                    'x' => {
                        // Up to four hex digits: a UTF-16 code unit.
                        let rest = &inner[at + 2..];
                        let digits: String = rest
                            .chars()
                            .take(4)
                            .take_while(char::is_ascii_hexdigit)
                            .collect();
                        for _ in 0..digits.len() {
                            chars.next();
                        }
                        let unit = u32::from_str_radix(&digits, 16).unwrap_or(0xFFFD);
                        value.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                    }
                    other => value.push(other),
                }
            }
            other => value.push(other),
        }
    }
    None
}

fn shorten(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

/// A Wine registry file served as a hive: `base` is the key the hive's root is at
/// (`Software` for `system.reg` read as `HKLM\SOFTWARE`, empty for `user.reg`).
#[derive(Debug, Clone)]
pub struct WineRegistryView {
    label: String,
    registry: Arc<WineRegistry>,
    base: String,
}

impl WineRegistryView {
    pub fn new(label: String, registry: Arc<WineRegistry>, base: &str) -> WineRegistryView {
        WineRegistryView {
            label,
            registry,
            base: normalize_path(base),
        }
    }
}

impl RegistryView for WineRegistryView {
    fn label(&self) -> &str {
        &self.label
    }

    fn read_key(&self, path: &str) -> Result<Option<RegistryKey>, RegistryError> {
        let full = if self.base.is_empty() {
            path.to_string()
        } else {
            format!("{}\\{path}", self.base)
        };
        Ok(self.registry.key(&full).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM_REG: &str = "WINE REGISTRY Version 2\n\
;; All keys relative to \\\\Machine\n\
#arch=win64\n\
\n\
[Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Uninstall\\\\{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1] 1700000000\n\
#time=1da1234567890ab\n\
\"DisplayName\"=\"Telegram Desktop\"\n\
\"DisplayVersion\"=\"5.8.3\"\n\
\"Publisher\"=\"Telegram FZ-LLC\"\n\
\"InstallLocation\"=str(2):\"C:\\\\users\\\\anna\\\\AppData\\\\Roaming\\\\Telegram Desktop\\\\\"\n\
\"EstimatedSize\"=dword:0002a3f0\n\
\"Comments\"=\"\\x0412\\x041a \\\"quoted\\\"\"\n\
\"Blob\"=hex:01,02,\\\n  03,04\n\
\"Bad\"=dword:zz\n\
\n\
[Software\\\\Wine\\\\Drives] 1700000000\n\
\"c:\"=\"hd\"\n";

    #[test]
    fn a_wine_system_reg_is_read() {
        let registry = parse_wine_registry(SYSTEM_REG.as_bytes()).expect("parses");
        let key = registry
            .key("software\\microsoft\\windows\\currentversion\\uninstall\\{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1")
            .expect("the key");
        assert_eq!(
            key.string("DisplayName").unwrap().as_deref(),
            Some("Telegram Desktop")
        );
        assert_eq!(
            key.string("InstallLocation").unwrap().as_deref(),
            Some("C:\\users\\anna\\AppData\\Roaming\\Telegram Desktop\\")
        );
        assert_eq!(key.value("EstimatedSize"), Some(&RegValue::Dword(0x2a3f0)));
        assert_eq!(
            key.string("Comments").unwrap().as_deref(),
            Some("ВК \"quoted\"")
        );
        assert_eq!(key.value("Blob"), Some(&RegValue::Binary(vec![1, 2, 3, 4])));
        assert_eq!(key.problems.len(), 1, "{:?}", key.problems);
        let uninstall = registry
            .key("Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall")
            .expect("a parent made from its child");
        assert_eq!(
            uninstall.subkeys,
            vec!["{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1"]
        );
        let view = WineRegistryView::new("system.reg".into(), Arc::new(registry), "Software");
        assert!(view.read_key("Wine\\Drives").unwrap().is_some());
    }

    #[test]
    fn exported_utf16_files_are_read() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Viber]\r\n\"DisplayName\"=\"Viber\"\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let registry = parse_wine_registry(&bytes).expect("parses");
        assert!(
            registry
                .key("Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Viber")
                .is_some()
        );
    }

    #[test]
    fn bad_files_are_errors_and_bad_lines_problems() {
        assert!(matches!(
            parse_wine_registry(b"\x7fELF\x02\x01"),
            Err(WineRegistryError::NotARegistry(_))
        ));
        assert!(matches!(
            parse_wine_registry(b"WINE REGISTRY Version 2\n[A] 1\n\"x\"=\"\xff\xfe\"\n"),
            Err(WineRegistryError::NotText(_))
        ));
        let mut odd = vec![0xFF, 0xFE];
        odd.extend([0x00, 0xD8, 0x41, 0x00]);
        assert!(matches!(
            parse_wine_registry(&odd),
            Err(WineRegistryError::NotText(_))
        ));
        // Cut in the middle of a string and of a continued hex value.
        let truncated = &SYSTEM_REG[..SYSTEM_REG.find("Telegram FZ").unwrap() + 4];
        let registry = parse_wine_registry(truncated.as_bytes()).expect("what is there is read");
        let key = registry
            .key("Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1")
            .unwrap();
        assert_eq!(
            key.string("DisplayName").unwrap().as_deref(),
            Some("Telegram Desktop")
        );
        assert!(
            key.problems
                .iter()
                .any(|problem| problem.contains("unterminated")),
            "{:?}",
            key.problems
        );
        let cut_hex = "WINE REGISTRY Version 2\n[K] 1\n\"b\"=hex:01,\\\n";
        assert!(parse_wine_registry(cut_hex.as_bytes()).is_ok());
    }
}
