//! The executable inventory's cache file: what the last scan learned about each
//! program file, keyed by its path and checked against its size and modification time,
//! so a repeat scan reads only what changed. Pure (de)serialization, the same on every
//! OS, bounded, and fuzzed: the file lives in the agent's state folder, but a damaged
//! or foreign one must only cost a rebuild.
//!
//! The file is JSON: `{"cache": "sverka executable inventory", "agent_version": ...,
//! "full_walk_at": ..., "entries": [{"path", "size", "modified_ns", "program",
//! "version_info"?}], "folders": [{"path", "modified_ns", "folders", "candidates"}]}`. It
//! holds names, sizes, modification times, what the first bytes said (`program`:
//! `elf`, `app_image`, `pe`, or `null` for a file that is not a program) and a PE
//! version resource; nothing else of a file.
//!
//! `folders` is each folder's listing as the last walk saw it: its subfolders and the
//! files whose names may be programs, valid while the folder's own modification time is
//! unchanged (adding, removing or renaming an entry changes it), as `updatedb` reuses
//! unchanged folders. A repeat scan then lists only the folders that changed; it still
//! checks every listed program file's size and time. `full_walk_at` (seconds since
//! 1970) is when every folder was last listed afresh. `journal` (`{"session", "at"}`)
//! names the change journal the cache was made with ([`super::journal`]), when the
//! service's watcher gave one. `plan` is a digest of what the walks were (the catalog,
//! the walks' starts, the folders left out, the limits) and each program's `matched`
//! says whether it matched the catalog then: under the same plan and a journal that
//! saw no change in or below a folder, the folder's whole subtree stands as the cache
//! has it, and only the programs that matched are matched again.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sverka_shared::observation::{FileFormat, VersionInfo};

use super::journal::JournalMark;

/// What the first field says, so another JSON file is not taken for a cache.
pub const CACHE_MARKER: &str = "sverka executable inventory";
/// The largest cache file read.
pub const MAX_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// The most entries a cache holds (more than the inventory's file budget visits).
pub const MAX_CACHE_ENTRIES: usize = 1_000_000;
const MAX_PATH_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("damaged cache file: {0}")]
    Damaged(String),
    #[error("not an executable inventory cache")]
    NotACache,
    #[error("cache of agent version {found}, this is {current}")]
    OtherVersion { found: String, current: String },
    #[error("cache larger than its bounds ({0})")]
    TooLarge(&'static str),
}

/// What is known of one file, valid while its size and modification time are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFile {
    pub size: u64,
    /// Nanoseconds since 1970 (negative before).
    pub modified_ns: i64,
    /// What the first bytes say; `None`: not a program.
    pub program: Option<FileFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    /// Whether the program matched the catalog when the cache was made (valid while
    /// the cache's `plan` is the scan's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub matched: bool,
}

/// What one folder held when it was last listed, valid while its modification time is
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFolder {
    /// Nanoseconds since 1970 (negative before).
    pub modified_ns: i64,
    /// The names of its subfolders (not links).
    pub folders: Vec<String>,
    /// The names of its files that may be programs ([`super::candidate`]).
    pub candidates: Vec<String>,
}

/// Every file and folder the last scan looked at, by local path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutableCache {
    pub files: HashMap<String, CachedFile>,
    pub folders: HashMap<String, CachedFolder>,
    /// When every folder was last listed afresh (seconds since 1970); 0: never.
    pub full_walk_at: i64,
    /// The change journal the cache was made with, if any ([`super::journal`]).
    pub journal: Option<JournalMark>,
    /// What the walks were and what they matched against (the catalog, the walks'
    /// starts, the folders left out, the limits), as a digest: a folder's cached
    /// subtree stands for walking it only under the same plan.
    pub plan: String,
}

impl ExecutableCache {
    /// The cached facts of `path`, if its size and modification time still match.
    pub fn lookup(&self, path: &str, size: u64, modified_ns: i64) -> Option<&CachedFile> {
        self.files
            .get(path)
            .filter(|cached| cached.size == size && cached.modified_ns == modified_ns)
    }

    /// The listing of `path`, if the folder's modification time still matches.
    pub fn folder(&self, path: &str, modified_ns: i64) -> Option<&CachedFolder> {
        self.folders
            .get(path)
            .filter(|cached| cached.modified_ns == modified_ns)
    }
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    cache: String,
    agent_version: String,
    #[serde(default)]
    full_walk_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal: Option<JournalMark>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    plan: String,
    entries: Vec<FileEntry>,
    #[serde(default)]
    folders: Vec<FolderEntry>,
}

/// A file's facts with its path beside them (`{"path", ...facts}`). Spelled out, not
/// `#[serde(flatten)]`, which makes serde buffer every entry before reading it (a
/// fifth of a repeat scan's time went there).
#[derive(Serialize, Deserialize)]
struct FileEntry {
    path: String,
    size: u64,
    modified_ns: i64,
    program: Option<FileFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_info: Option<VersionInfo>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    matched: bool,
}

impl FileEntry {
    fn new(path: &str, file: &CachedFile) -> FileEntry {
        FileEntry {
            path: path.to_string(),
            size: file.size,
            modified_ns: file.modified_ns,
            program: file.program,
            version_info: file.version_info.clone(),
            matched: file.matched,
        }
    }

    fn into_parts(self) -> (String, CachedFile) {
        let file = CachedFile {
            size: self.size,
            modified_ns: self.modified_ns,
            program: self.program,
            version_info: self.version_info,
            matched: self.matched,
        };
        (self.path, file)
    }
}

/// A folder's listing with its path beside it.
#[derive(Serialize, Deserialize)]
struct FolderEntry {
    path: String,
    modified_ns: i64,
    folders: Vec<String>,
    candidates: Vec<String>,
}

/// A map's entries in path order (the same cache, the same bytes).
fn sorted_entries<Facts, Entry>(
    map: &HashMap<String, Facts>,
    entry: impl Fn(&str, &Facts) -> Entry,
) -> Vec<Entry> {
    let mut paths: Vec<&String> = map.keys().collect();
    paths.sort_unstable();
    paths
        .into_iter()
        .map(|path| entry(path, &map[path]))
        .collect()
}

/// A name inside a folder: one path component, never a way out of it.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.chars().count() <= MAX_PATH_CHARS
}

/// Reads a cache written by [`serialize_cache`] of the same `agent_version`.
pub fn parse_cache(bytes: &[u8], agent_version: &str) -> Result<ExecutableCache, CacheError> {
    if bytes.len() as u64 > MAX_CACHE_BYTES {
        return Err(CacheError::TooLarge("file size"));
    }
    // The marker and version first, so a foreign file says what it is, not where it broke.
    #[derive(Deserialize)]
    struct Header {
        cache: Option<String>,
        agent_version: Option<String>,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|error| CacheError::Damaged(error.to_string()))?;
    if header.cache.as_deref() != Some(CACHE_MARKER) {
        return Err(CacheError::NotACache);
    }
    let found = header.agent_version.unwrap_or_default();
    if found != agent_version {
        return Err(CacheError::OtherVersion {
            found,
            current: agent_version.to_string(),
        });
    }
    let file: CacheFile =
        serde_json::from_slice(bytes).map_err(|error| CacheError::Damaged(error.to_string()))?;
    let names: usize = file
        .folders
        .iter()
        .map(|entry| entry.folders.len() + entry.candidates.len())
        .sum();
    if file.entries.len() + file.folders.len() + names > MAX_CACHE_ENTRIES {
        return Err(CacheError::TooLarge("entries"));
    }
    let path_is_bad = |path: &str| path.is_empty() || path.chars().count() > MAX_PATH_CHARS;
    let mut files = HashMap::with_capacity(file.entries.len());
    for entry in file.entries {
        if path_is_bad(&entry.path) {
            return Err(CacheError::Damaged(
                "an entry's path is empty or too long".into(),
            ));
        }
        let (path, file) = entry.into_parts();
        files.insert(path, file);
    }
    let mut folders = HashMap::with_capacity(file.folders.len());
    for entry in file.folders {
        if path_is_bad(&entry.path) {
            return Err(CacheError::Damaged(
                "a folder's path is empty or too long".into(),
            ));
        }
        let listed = entry.folders.iter();
        if !listed
            .chain(&entry.candidates)
            .all(|name| is_plain_name(name))
        {
            return Err(CacheError::Damaged(format!(
                "folder {} lists a name that is not a plain file name",
                entry.path
            )));
        }
        folders.insert(
            entry.path,
            CachedFolder {
                modified_ns: entry.modified_ns,
                folders: entry.folders,
                candidates: entry.candidates,
            },
        );
    }
    Ok(ExecutableCache {
        files,
        folders,
        full_walk_at: file.full_walk_at,
        journal: file.journal,
        plan: file.plan,
    })
}

/// The cache file's bytes, entries sorted by path (the same cache, the same bytes).
pub fn serialize_cache(cache: &ExecutableCache, agent_version: &str) -> Vec<u8> {
    let file = CacheFile {
        cache: CACHE_MARKER.to_string(),
        agent_version: agent_version.to_string(),
        full_walk_at: cache.full_walk_at,
        journal: cache.journal.clone(),
        plan: cache.plan.clone(),
        entries: sorted_entries(&cache.files, FileEntry::new),
        folders: sorted_entries(&cache.folders, |path, folder: &CachedFolder| FolderEntry {
            path: path.to_string(),
            modified_ns: folder.modified_ns,
            folders: folder.folders.clone(),
            candidates: folder.candidates.clone(),
        }),
    };
    // Plain data of strings and numbers: serializing cannot fail.
    serde_json::to_vec(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExecutableCache {
        let mut cache = ExecutableCache::default();
        cache.files.insert(
            "/srv/tools/tg.exe".into(),
            CachedFile {
                size: 1234,
                modified_ns: 1_700_000_000_123_456_789,
                program: Some(FileFormat::Pe),
                version_info: Some(VersionInfo {
                    product_name: Some("Telegram Desktop".into()),
                    ..VersionInfo::default()
                }),
                matched: true,
            },
        );
        cache.files.insert(
            "/srv/notes".into(),
            CachedFile {
                size: 10,
                modified_ns: -5,
                program: None,
                version_info: None,
                matched: false,
            },
        );
        cache.folders.insert(
            "/srv".into(),
            CachedFolder {
                modified_ns: 1_700_000_000_000_000_001,
                folders: vec!["tools".into()],
                candidates: vec!["notes".into()],
            },
        );
        cache.full_walk_at = 1_700_000_000;
        cache.journal = Some(JournalMark {
            session: "s".into(),
            at: 7,
        });
        cache.plan = "p".into();
        cache
    }

    #[test]
    fn a_cache_reads_back_as_written() {
        let cache = sample();
        let bytes = serialize_cache(&cache, "1.2.3");
        assert_eq!(parse_cache(&bytes, "1.2.3"), Ok(cache.clone()));
        assert_eq!(
            bytes,
            serialize_cache(&parse_cache(&bytes, "1.2.3").unwrap(), "1.2.3")
        );
        let cached = cache.lookup("/srv/tools/tg.exe", 1234, 1_700_000_000_123_456_789);
        assert_eq!(cached.and_then(|file| file.program), Some(FileFormat::Pe));
        assert!(
            cache
                .lookup("/srv/tools/tg.exe", 1235, 1_700_000_000_123_456_789)
                .is_none()
        );
        assert!(cache.lookup("/srv/tools/tg.exe", 1234, 1).is_none());
        let listing = cache.folder("/srv", 1_700_000_000_000_000_001);
        assert_eq!(
            listing.map(|folder| folder.folders.clone()),
            Some(vec!["tools".into()])
        );
        assert!(cache.folder("/srv", 1_700_000_000_000_000_002).is_none());
    }

    #[test]
    fn a_folder_listing_that_leads_out_of_its_folder_is_damage() {
        for name in ["..", ".", "", "a/b", "a\\b", "a\u{0}b"] {
            let text = serde_json::json!({
                "cache": CACHE_MARKER,
                "agent_version": "1",
                "entries": [],
                "folders": [{"path": "/srv", "modified_ns": 1, "folders": [name], "candidates": []}],
            });
            let bytes = serde_json::to_vec(&text).unwrap();
            assert!(
                matches!(parse_cache(&bytes, "1"), Err(CacheError::Damaged(_))),
                "{name:?}"
            );
        }
        // A cache written before folders were kept still reads.
        let old = format!(r#"{{"cache":"{CACHE_MARKER}","agent_version":"1","entries":[]}}"#);
        assert_eq!(
            parse_cache(old.as_bytes(), "1"),
            Ok(ExecutableCache::default())
        );
    }

    #[test]
    fn foreign_damaged_and_other_version_caches_are_errors() {
        let bytes = serialize_cache(&sample(), "1.2.3");
        assert_eq!(
            parse_cache(&bytes, "1.2.4"),
            Err(CacheError::OtherVersion {
                found: "1.2.3".into(),
                current: "1.2.4".into()
            })
        );
        assert!(matches!(
            parse_cache(&bytes[..bytes.len() / 2], "1.2.3"),
            Err(CacheError::Damaged(_))
        ));
        assert_eq!(
            parse_cache(br#"{"entries": []}"#, "1.2.3"),
            Err(CacheError::NotACache)
        );
        assert!(matches!(
            parse_cache(b"\xff\xfe garbage", "1.2.3"),
            Err(CacheError::Damaged(_))
        ));
        let empty_path = format!(
            r#"{{"cache":"{CACHE_MARKER}","agent_version":"1","entries":[{{"path":"","size":1,"modified_ns":1,"program":null}}]}}"#
        );
        assert!(matches!(
            parse_cache(empty_path.as_bytes(), "1"),
            Err(CacheError::Damaged(_))
        ));
    }
}
