//! The messenger catalog: which applications Sverka looks for, their status, and their
//! signatures per evidence kind.
//!
//! The built-in catalog is `builtin.toml` beside this file, compiled into the binary.
//! An operator's own TOML file is merged over it: an entry with a known `id` changes
//! that application (fields given replace, signatures given are added), an entry with a
//! new `id` adds an application. Every error names the file, the line and the key.

mod pattern;

pub use pattern::{PathPattern, Pattern, PatternError, REGEX_PREFIX, folded, is_glob};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The catalog file format version this build understands.
pub const CATALOG_SCHEMA: u32 = 1;

const BUILTIN_TEXT: &str = include_str!("builtin.toml");
const BUILTIN_NAME: &str = "<built-in catalog>";
/// A user catalog larger than this is refused: it is a list of names, not a database.
const MAX_CATALOG_BYTES: u64 = 4 * 1024 * 1024;

/// What the policy says about an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AppStatus {
    /// Must not be on school PCs.
    Banned,
    /// The messengers schools move to (VK Messenger, MAX).
    Approved,
    /// Reported, but not a violation (consumer Skype).
    Watch,
}

impl AppStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AppStatus::Banned => "banned",
            AppStatus::Approved => "approved",
            AppStatus::Watch => "watch",
        }
    }
}

impl std::str::FromStr for AppStatus {
    type Err = crate::report::UnknownWord;

    fn from_str(text: &str) -> Result<AppStatus, crate::report::UnknownWord> {
        [AppStatus::Banned, AppStatus::Approved, AppStatus::Watch]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| crate::report::UnknownWord::new("status", text))
    }
}

impl TryFrom<String> for AppStatus {
    type Error = crate::report::UnknownWord;

    fn try_from(text: String) -> Result<AppStatus, crate::report::UnknownWord> {
        text.parse()
    }
}

impl fmt::Display for AppStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A loaded, validated catalog.
#[derive(Debug, Clone, PartialEq, Hash, Serialize)]
pub struct Catalog {
    pub schema: u32,
    /// The built-in version, with `+local.<digest>` appended when a user file was merged.
    pub version: String,
    #[serde(rename = "app")]
    pub apps: Vec<AppEntry>,
}

/// One application of the catalog.
#[derive(Debug, Clone, PartialEq, Hash, Serialize)]
pub struct AppEntry {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub status: AppStatus,
    pub notes: String,
    /// What cannot be detected about this application, said out loud.
    pub undetectable: String,
    pub signatures: Signatures,
}

/// Signatures per evidence kind. Every list holds patterns (see [`Pattern`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signatures {
    /// dpkg and rpm package names.
    pub packages: Vec<String>,
    /// Flatpak application ids.
    pub flatpak: Vec<String>,
    /// Snap names.
    pub snap: Vec<String>,
    /// `.desktop` file names.
    pub desktop_entries: Vec<String>,
    /// `StartupWMClass` values of `.desktop` launchers.
    pub wm_classes: Vec<String>,
    /// Program files, as path tails (see [`PathPattern`]).
    pub files: Vec<String>,
    /// Process names and executable file names.
    pub processes: Vec<String>,
    /// Data folders relative to a user's home, checked for existence only: a trace.
    pub data_dirs: Vec<String>,
    /// Windows uninstall keys.
    pub uninstall: Vec<UninstallRule>,
    /// MSIX/AppX package family names.
    pub appx: Vec<String>,
    /// PE version information of Windows programs (finds renamed copies).
    pub pe_version: Vec<PeVersionRule>,
    /// Microsoft Office Click-to-Run product ids.
    pub office_products: Vec<String>,
    /// Hosts whose installed web apps (PWAs) belong to the application.
    pub web_apps: Vec<String>,
    /// macOS bundle identifiers.
    pub bundle_ids: Vec<String>,
}

/// A rule over one Windows uninstall key. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UninstallRule {
    /// The key's own name (`{53F4...}_is1`, `Discord`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_code: Option<String>,
    /// A component that alone never makes a finding, only supports one (the Teams
    /// Meeting Add-in).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub supporting: bool,
}

/// A rule over PE version information. Every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeVersionRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_description: Option<String>,
}

/// Why a catalog could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog {file} is larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("{file}:{line}:{column}: {}{message}", key_prefix(key))]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
}

fn key_prefix(key: &Option<String>) -> String {
    match key {
        Some(key) => format!("key `{key}`: "),
        None => String::new(),
    }
}

impl CatalogError {
    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            CatalogError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            CatalogError::Invalid { key, .. } => key.as_deref(),
            _ => None,
        }
    }
}

impl Catalog {
    /// The catalog shipped inside the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog {
            schema: CATALOG_SCHEMA,
            version: String::new(),
            apps: Vec::new(),
        };
        catalog.merge_text(BUILTIN_NAME, BUILTIN_TEXT, true)?;
        Ok(catalog)
    }

    /// A complete catalog from text, such as the one the collector serves: nothing
    /// of the built-in catalog is kept, and the text must carry its own `version`.
    /// `file` is only used in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Catalog, CatalogError> {
        if text.len() as u64 > MAX_CATALOG_BYTES {
            return Err(CatalogError::TooLarge {
                file: file.to_string(),
                limit: MAX_CATALOG_BYTES,
            });
        }
        let mut catalog = Catalog {
            schema: CATALOG_SCHEMA,
            version: String::new(),
            apps: Vec::new(),
        };
        catalog.merge_text(file, text, true)?;
        Ok(catalog)
    }

    /// The built-in catalog with the operator's file merged over it.
    pub fn builtin_with_overrides(file: &Path) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::builtin()?;
        catalog.merge_file(file)?;
        Ok(catalog)
    }

    pub fn merge_file(&mut self, file: &Path) -> Result<(), CatalogError> {
        let name = file.display().to_string();
        let metadata = std::fs::metadata(file).map_err(|source| CatalogError::Read {
            file: name.clone(),
            source,
        })?;
        if metadata.len() > MAX_CATALOG_BYTES {
            return Err(CatalogError::TooLarge {
                file: name,
                limit: MAX_CATALOG_BYTES,
            });
        }
        let bytes = std::fs::read(file).map_err(|source| CatalogError::Read {
            file: name.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|error| {
            let offset = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
            invalid(
                &name,
                &text,
                offset..offset,
                None,
                "file is not valid UTF-8",
            )
        })?;
        self.merge_text(&name, &text, false)
    }

    /// Merges catalog text over this catalog. `file` is only used in errors.
    pub fn merge_text(
        &mut self,
        file: &str,
        text: &str,
        is_builtin: bool,
    ) -> Result<(), CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            invalid(file, text, span, None, error.message())
        })?;
        if let Some(schema) = &raw.schema
            && *schema.get_ref() != CATALOG_SCHEMA
        {
            return Err(invalid(
                file,
                text,
                schema.span(),
                Some("schema".into()),
                &format!(
                    "catalog schema {} is not supported (this build reads schema {CATALOG_SCHEMA})",
                    schema.get_ref()
                ),
            ));
        }
        if is_builtin {
            self.version = match raw.version {
                Some(version) => version.into_inner(),
                None => return Err(invalid(file, text, 0..0, None, "missing `version`")),
            };
        } else {
            let digest = Sha256::digest(text.as_bytes());
            let short: String = digest
                .iter()
                .take(4)
                .map(|byte| format!("{byte:02x}"))
                .collect();
            self.version = format!("{}+local.{short}", self.version);
        }

        let mut seen_ids: Vec<&str> = Vec::new();
        for (index, raw_app) in raw.app.iter().enumerate() {
            let id = raw_app.id.get_ref().as_str();
            let key_of = |field: &str| Some(format!("app[{index}].{field}"));
            if !is_valid_id(id) {
                return Err(invalid(
                    file,
                    text,
                    raw_app.id.span(),
                    key_of("id"),
                    "an id is 1 to 64 characters of a-z, 0-9 and _",
                ));
            }
            if seen_ids.contains(&id) {
                return Err(invalid(
                    file,
                    text,
                    raw_app.id.span(),
                    key_of("id"),
                    &format!("application `{id}` appears twice in this file"),
                ));
            }
            seen_ids.push(id);
            validate_signatures(file, text, &raw_app.signatures, index)?;
            self.apply(file, text, raw_app, index)?;
        }
        Ok(())
    }

    fn apply(
        &mut self,
        file: &str,
        text: &str,
        raw_app: &RawApp,
        index: usize,
    ) -> Result<(), CatalogError> {
        let id = raw_app.id.get_ref();
        let signatures = raw_app.signatures.to_signatures();
        if let Some(existing) = self.apps.iter_mut().find(|app| &app.id == id) {
            if let Some(name) = &raw_app.name {
                existing.name = name.clone();
            }
            if let Some(vendor) = &raw_app.vendor {
                existing.vendor = vendor.clone();
            }
            if let Some(status) = raw_app.status {
                existing.status = status;
            }
            if let Some(notes) = &raw_app.notes {
                existing.notes = notes.clone();
            }
            if let Some(undetectable) = &raw_app.undetectable {
                existing.undetectable = undetectable.clone();
            }
            existing.signatures.extend(signatures);
            return Ok(());
        }
        let missing = |field: &str| {
            invalid(
                file,
                text,
                raw_app.id.span(),
                Some(format!("app[{index}].{field}")),
                &format!("new application `{id}` needs `{field}`"),
            )
        };
        let name = raw_app.name.clone().ok_or_else(|| missing("name"))?;
        let status = raw_app.status.ok_or_else(|| missing("status"))?;
        self.apps.push(AppEntry {
            id: id.clone(),
            name,
            vendor: raw_app.vendor.clone().unwrap_or_default(),
            status,
            notes: raw_app.notes.clone().unwrap_or_default(),
            undetectable: raw_app.undetectable.clone().unwrap_or_default(),
            signatures,
        });
        Ok(())
    }

    pub fn app(&self, id: &str) -> Option<&AppEntry> {
        self.apps.iter().find(|app| app.id == id)
    }

    /// The catalog as TOML, in the same format it is read from.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

impl Signatures {
    fn extend(&mut self, other: Signatures) {
        self.packages.extend(other.packages);
        self.flatpak.extend(other.flatpak);
        self.snap.extend(other.snap);
        self.desktop_entries.extend(other.desktop_entries);
        self.wm_classes.extend(other.wm_classes);
        self.files.extend(other.files);
        self.processes.extend(other.processes);
        self.data_dirs.extend(other.data_dirs);
        self.uninstall.extend(other.uninstall);
        self.appx.extend(other.appx);
        self.pe_version.extend(other.pe_version);
        self.office_products.extend(other.office_products);
        self.web_apps.extend(other.web_apps);
        self.bundle_ids.extend(other.bundle_ids);
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

// ---- the raw, span-carrying shape of a catalog file ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    schema: Option<Spanned<u32>>,
    version: Option<Spanned<String>>,
    #[serde(default)]
    app: Vec<RawApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    id: Spanned<String>,
    name: Option<String>,
    vendor: Option<String>,
    status: Option<AppStatus>,
    notes: Option<String>,
    undetectable: Option<String>,
    #[serde(default)]
    signatures: RawSignatures,
}

type Patterns = Vec<Spanned<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSignatures {
    packages: Patterns,
    flatpak: Patterns,
    snap: Patterns,
    desktop_entries: Patterns,
    wm_classes: Patterns,
    files: Patterns,
    processes: Patterns,
    data_dirs: Patterns,
    uninstall: Vec<Spanned<RawUninstallRule>>,
    appx: Patterns,
    pe_version: Vec<Spanned<RawPeVersionRule>>,
    office_products: Patterns,
    web_apps: Patterns,
    bundle_ids: Patterns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawUninstallRule {
    key: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    publisher: Option<Spanned<String>>,
    upgrade_code: Option<Spanned<String>>,
    supporting: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPeVersionRule {
    company_name: Option<Spanned<String>>,
    product_name: Option<Spanned<String>>,
    original_filename: Option<Spanned<String>>,
    file_description: Option<Spanned<String>>,
}

fn plain(patterns: &Patterns) -> Vec<String> {
    patterns
        .iter()
        .map(|pattern| pattern.get_ref().clone())
        .collect()
}

fn plain_option(value: &Option<Spanned<String>>) -> Option<String> {
    value.as_ref().map(|value| value.get_ref().clone())
}

impl RawSignatures {
    fn to_signatures(&self) -> Signatures {
        Signatures {
            packages: plain(&self.packages),
            flatpak: plain(&self.flatpak),
            snap: plain(&self.snap),
            desktop_entries: plain(&self.desktop_entries),
            wm_classes: plain(&self.wm_classes),
            files: plain(&self.files),
            processes: plain(&self.processes),
            data_dirs: plain(&self.data_dirs),
            uninstall: self
                .uninstall
                .iter()
                .map(|rule| {
                    let rule = rule.get_ref();
                    UninstallRule {
                        key: plain_option(&rule.key),
                        display_name: plain_option(&rule.display_name),
                        publisher: plain_option(&rule.publisher),
                        upgrade_code: plain_option(&rule.upgrade_code),
                        supporting: rule.supporting,
                    }
                })
                .collect(),
            appx: plain(&self.appx),
            pe_version: self
                .pe_version
                .iter()
                .map(|rule| {
                    let rule = rule.get_ref();
                    PeVersionRule {
                        company_name: plain_option(&rule.company_name),
                        product_name: plain_option(&rule.product_name),
                        original_filename: plain_option(&rule.original_filename),
                        file_description: plain_option(&rule.file_description),
                    }
                })
                .collect(),
            office_products: plain(&self.office_products),
            web_apps: plain(&self.web_apps),
            bundle_ids: plain(&self.bundle_ids),
        }
    }
}

fn validate_signatures(
    file: &str,
    text: &str,
    signatures: &RawSignatures,
    index: usize,
) -> Result<(), CatalogError> {
    let check_names = |field: &str, patterns: &Patterns| -> Result<(), CatalogError> {
        for (position, pattern) in patterns.iter().enumerate() {
            if let Err(PatternError(message)) = Pattern::check(pattern.get_ref()) {
                return Err(invalid(
                    file,
                    text,
                    pattern.span(),
                    Some(format!("app[{index}].signatures.{field}[{position}]")),
                    &message,
                ));
            }
        }
        Ok(())
    };
    check_names("packages", &signatures.packages)?;
    check_names("flatpak", &signatures.flatpak)?;
    check_names("snap", &signatures.snap)?;
    check_names("desktop_entries", &signatures.desktop_entries)?;
    check_names("wm_classes", &signatures.wm_classes)?;
    check_names("processes", &signatures.processes)?;
    check_names("appx", &signatures.appx)?;
    check_names("office_products", &signatures.office_products)?;
    check_names("web_apps", &signatures.web_apps)?;
    check_names("bundle_ids", &signatures.bundle_ids)?;
    for (position, pattern) in signatures.files.iter().enumerate() {
        if let Err(PatternError(message)) = PathPattern::check(pattern.get_ref()) {
            return Err(invalid(
                file,
                text,
                pattern.span(),
                Some(format!("app[{index}].signatures.files[{position}]")),
                &message,
            ));
        }
    }
    for (position, folder) in signatures.data_dirs.iter().enumerate() {
        let relative = folder.get_ref();
        if relative.starts_with('/') || relative.split('/').any(|part| part == "..") {
            return Err(invalid(
                file,
                text,
                folder.span(),
                Some(format!("app[{index}].signatures.data_dirs[{position}]")),
                "a data folder is a path relative to the user's home, without `..`",
            ));
        }
    }
    let check_fields = |field: &str,
                        rule_span: Range<usize>,
                        values: &[(&str, &Option<Spanned<String>>)]|
     -> Result<(), CatalogError> {
        if values.iter().all(|(_, value)| value.is_none()) {
            return Err(invalid(
                file,
                text,
                rule_span,
                Some(format!("app[{index}].signatures.{field}")),
                "a rule needs at least one field to match on",
            ));
        }
        for (name, value) in values {
            if let Some(value) = value
                && let Err(PatternError(message)) = Pattern::check(value.get_ref())
            {
                return Err(invalid(
                    file,
                    text,
                    value.span(),
                    Some(format!("app[{index}].signatures.{field}.{name}")),
                    &message,
                ));
            }
        }
        Ok(())
    };
    for rule in &signatures.uninstall {
        let inner = rule.get_ref();
        check_fields(
            "uninstall",
            rule.span(),
            &[
                ("key", &inner.key),
                ("display_name", &inner.display_name),
                ("publisher", &inner.publisher),
                ("upgrade_code", &inner.upgrade_code),
            ],
        )?;
    }
    for rule in &signatures.pe_version {
        let inner = rule.get_ref();
        check_fields(
            "pe_version",
            rule.span(),
            &[
                ("company_name", &inner.company_name),
                ("product_name", &inner.product_name),
                ("original_filename", &inner.original_filename),
                ("file_description", &inner.file_description),
            ],
        )?;
    }
    Ok(())
}

/// Builds an error that points at `span` in `text`, as a 1-based line and column.
fn invalid(
    file: &str,
    text: &str,
    span: Range<usize>,
    key: Option<String>,
    message: &str,
) -> CatalogError {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    // Without a key of our own, name the key written on the offending line.
    let key = key.or_else(|| {
        let line_text = text[line_start..].lines().next().unwrap_or("");
        let (candidate, _) = line_text.split_once('=')?;
        let candidate = candidate.trim().trim_matches('"');
        (!candidate.is_empty()).then(|| candidate.to_string())
    });
    CatalogError::Invalid {
        file: file.to_string(),
        line,
        column,
        key,
        message: message.trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
