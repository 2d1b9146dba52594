//! The Windows registry as the sources see it: one [`RegistryView`] per hive (the
//! machine's `SOFTWARE`, a user's `NTUSER.DAT`, a user's `UsrClass.dat`), whether it is
//! read live through the registry API (`live.rs`, Windows only) or from a hive file
//! (`hive.rs`, every OS: logged-off users, and `--root` on a mounted Windows volume).
//! The uninstall, AppX, profile and host logic only ever sees this trait, so it is
//! tested on Linux.
//!
//! Paths are `\`-separated and relative to the hive's root: `Microsoft\Windows\...` for
//! `SOFTWARE`, `Software\Microsoft\...` for a user.

pub mod hive;
#[cfg(windows)]
pub mod live;
pub mod wine_reg;

use std::path::Path;

use crate::scan::fsread::read_bounded;
use hive::{Hive, HiveError};

/// A registry value, decoded. Strings lose their trailing NULs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_SZ` and `REG_EXPAND_SZ` (not expanded).
    String(String),
    MultiString(Vec<String>),
    Dword(u32),
    Qword(u64),
    Binary(Vec<u8>),
    /// Any other type, by number.
    Other(u32),
}

pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_BINARY: u32 = 3;
pub const REG_DWORD: u32 = 4;
pub const REG_MULTI_SZ: u32 = 7;
pub const REG_QWORD: u32 = 11;

impl RegValue {
    /// Decodes raw value bytes of a registry type.
    pub fn decode(kind: u32, data: &[u8]) -> RegValue {
        match kind {
            REG_SZ | REG_EXPAND_SZ => RegValue::String(hive::decode_utf16(data)),
            REG_MULTI_SZ => {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                    .collect();
                RegValue::MultiString(
                    units
                        .split(|&unit| unit == 0)
                        .filter(|part| !part.is_empty())
                        .map(String::from_utf16_lossy)
                        .collect(),
                )
            }
            REG_DWORD if data.len() >= 4 => {
                RegValue::Dword(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
            }
            REG_QWORD if data.len() >= 8 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&data[..8]);
                RegValue::Qword(u64::from_le_bytes(bytes))
            }
            REG_BINARY => RegValue::Binary(data.to_vec()),
            other => RegValue::Other(other),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            RegValue::String(_) => "a string",
            RegValue::MultiString(_) => "REG_MULTI_SZ",
            RegValue::Dword(_) => "REG_DWORD",
            RegValue::Qword(_) => "REG_QWORD",
            RegValue::Binary(_) => "REG_BINARY",
            RegValue::Other(_) => "an unusual type",
        }
    }
}

/// One key as read: its subkey names and its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryKey {
    pub subkeys: Vec<String>,
    pub values: Vec<(String, RegValue)>,
    /// Values that could not be read (damaged cells, absurd lengths).
    pub problems: Vec<String>,
}

/// The longest string value the agent takes; a longer one is absurd for the values it
/// reads (names, versions, paths) and is reported instead.
pub const MAX_STRING_CHARS: usize = 4096;

impl RegistryKey {
    pub fn value(&self, name: &str) -> Option<&RegValue> {
        self.values
            .iter()
            .find(|(value_name, _)| value_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// A string value (a one-line `REG_MULTI_SZ` counts). A value of another type or of
    /// absurd length is an error naming the value; a missing one is `Ok(None)`.
    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        let text = match self.value(name) {
            None => return Ok(None),
            Some(RegValue::String(text)) => text.clone(),
            Some(RegValue::MultiString(lines)) if lines.len() <= 1 => {
                lines.first().cloned().unwrap_or_default()
            }
            Some(other) => {
                return Err(format!(
                    "value `{name}` is {}, not a string",
                    other.type_name()
                ));
            }
        };
        if text.chars().count() > MAX_STRING_CHARS {
            return Err(format!(
                "value `{name}` is longer than {MAX_STRING_CHARS} characters"
            ));
        }
        let trimmed = text.trim();
        Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
    }

    /// The lines of a `REG_MULTI_SZ` value (a plain string is one line).
    pub fn lines(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(RegValue::MultiString(lines)) => lines.clone(),
            Some(RegValue::String(text)) => vec![text.clone()],
            _ => Vec::new(),
        }
    }
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RegistryError {
    /// The hive and key: `HKLM\SOFTWARE\Microsoft\...`, `C:\Users\anna\NTUSER.DAT: ...`.
    pub location: String,
    pub message: String,
}

/// One hive, read-only.
pub trait RegistryView: Send + Sync + std::fmt::Debug {
    /// How evidence names this hive: `HKLM\SOFTWARE`, `HKU\S-1-5-21-...`.
    fn label(&self) -> &str;
    /// The key at `path` (relative to the hive root), or `None` when it does not exist.
    fn read_key(&self, path: &str) -> Result<Option<RegistryKey>, RegistryError>;
}

/// A hive file read into memory.
#[derive(Debug)]
pub struct HiveFileView {
    label: String,
    hive: Hive,
}

/// The largest hive file read (a big `SOFTWARE` hive is a few hundred MB).
pub const MAX_HIVE_BYTES: u64 = 512 * 1024 * 1024;

impl HiveFileView {
    /// Reads and checks a hive file. `label` names it in evidence and errors.
    pub fn open(path: &Path, label: String) -> Result<HiveFileView, RegistryError> {
        let error = |message: String| RegistryError {
            location: label.clone(),
            message,
        };
        let (bytes, truncated) = read_bounded(path, MAX_HIVE_BYTES).map_err(|io| {
            let hint = if io.kind() == std::io::ErrorKind::PermissionDenied {
                " (another user's profile: run the agent as an administrator)"
            } else {
                ""
            };
            error(format!("cannot read the hive file: {io}{hint}"))
        })?;
        if truncated {
            return Err(error(format!(
                "hive file larger than {} MB, not read",
                MAX_HIVE_BYTES >> 20
            )));
        }
        HiveFileView::from_bytes(bytes, label.clone()).map_err(|hive| error(hive.to_string()))
    }

    pub fn from_bytes(bytes: Vec<u8>, label: String) -> Result<HiveFileView, HiveError> {
        Ok(HiveFileView {
            label,
            hive: Hive::parse(bytes)?,
        })
    }
}

impl RegistryView for HiveFileView {
    fn label(&self) -> &str {
        &self.label
    }

    fn read_key(&self, path: &str) -> Result<Option<RegistryKey>, RegistryError> {
        let error = |error: HiveError| RegistryError {
            location: format!("{}\\{path}", self.label),
            message: error.to_string(),
        };
        // The reader is written not to panic; this is the last line of defence, so one
        // damaged hive can never take the others' evidence with it.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Some(key) = self.hive.open(path)? else {
                return Ok(None);
            };
            let mut subkeys = Vec::new();
            let mut problems = Vec::new();
            for child in self.hive.subkeys(key)? {
                match self.hive.key_name(child) {
                    Ok(name) => subkeys.push(name),
                    Err(error) => problems.push(error.to_string()),
                }
            }
            let (values, value_problems) = self.hive.values(key)?;
            problems.extend(value_problems.iter().map(HiveError::to_string));
            Ok(Some(RegistryKey {
                subkeys,
                values,
                problems,
            }))
        }));
        match read {
            Ok(result) => result.map_err(error),
            Err(_) => Err(RegistryError {
                location: format!("{}\\{path}", self.label),
                message: "the hive reader stopped on damaged data".into(),
            }),
        }
    }
}

/// Expands the environment variables Windows writes into profile paths.
pub fn expand_system_variables(text: &str) -> String {
    let mut expanded = text.to_string();
    for (variable, value) in [
        ("%SystemDrive%", "C:"),
        ("%SystemRoot%", "C:\\Windows"),
        ("%windir%", "C:\\Windows"),
        ("%ProgramData%", "C:\\ProgramData"),
    ] {
        while let Some(start) = expanded
            .to_ascii_lowercase()
            .find(&variable.to_ascii_lowercase())
        {
            expanded.replace_range(start..start + variable.len(), value);
        }
    }
    expanded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_the_wrong_type_or_absurd_length_are_errors() {
        let key = RegistryKey {
            subkeys: vec![],
            values: vec![
                ("DisplayName".into(), RegValue::Dword(5)),
                ("Publisher".into(), RegValue::String("x".repeat(5000))),
                ("DisplayVersion".into(), RegValue::String(" 1.2 \0".into())),
                (
                    "BundleUpgradeCode".into(),
                    RegValue::MultiString(vec!["{A}".into()]),
                ),
            ],
            problems: vec![],
        };
        assert!(key.string("displayname").is_err());
        assert!(key.string("Publisher").is_err());
        assert_eq!(
            key.string("DisplayVersion"),
            Ok(Some("1.2 \0".trim().into()))
        );
        assert_eq!(key.string("Missing"), Ok(None));
        assert_eq!(key.lines("BundleUpgradeCode"), vec!["{A}".to_string()]);
    }

    #[test]
    fn multi_strings_and_numbers_decode() {
        let data: Vec<u8> = "a\0bc\0\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            RegValue::decode(REG_MULTI_SZ, &data),
            RegValue::MultiString(vec!["a".into(), "bc".into()])
        );
        assert_eq!(RegValue::decode(REG_DWORD, &[1, 0]), RegValue::Other(4));
        assert_eq!(
            RegValue::decode(REG_QWORD, &[1, 0, 0, 0, 0, 0, 0, 0]),
            RegValue::Qword(1)
        );
    }

    #[test]
    fn system_variables_expand() {
        assert_eq!(
            expand_system_variables("%SystemDrive%\\Users\\anna"),
            "C:\\Users\\anna"
        );
        assert_eq!(
            expand_system_variables("%systemroot%\\ServiceProfiles"),
            "C:\\Windows\\ServiceProfiles"
        );
    }
}
