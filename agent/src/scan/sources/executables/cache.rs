//! The executable inventory's cache file: what the last scan learned about each folder
//! and each program file, so a repeat scan reads only what changed. Pure
//! (de)serialization and lookup, the same on every OS, bounded, and fuzzed: the file
//! lives in the agent's state folder, but a damaged or foreign one must only cost a
//! rebuild.
//!
//! The file is JSON Lines. The first line is the header: `{"cache": "sverka executable
//! inventory", "agent_version", "full_walk_at", "journal"?, "plan"?, "matched": [{"path",
//! "size", "modified_ns", "program", "version_info"?}], "whole_walks"?: [...], "folders",
//! "index_bytes"?}`. A cache of more than one stretch of [`INDEX_STRIDE`] bytes of folder
//! lines has an index as its second line, of `index_bytes` bytes: `{"index": [[offset,
//! path], ...]}`. Every other line is one folder: `{"path", "listing"?: {"modified_ns",
//! "folders", "candidates"}, "files": [{"name", "size", "modified_ns", "program",
//! "version_info"?, "matched"?}]}`. It holds
//! names, sizes, modification times, what the first bytes said (`program`: `elf`,
//! `app_image`, `pe`, or `null` for a file that is not a program) and a PE version
//! resource; nothing else of a file.
//!
//! - A folder's `listing` is its subfolders and the files whose names may be programs,
//!   as the last walk saw it, valid while the folder's own modification time is
//!   unchanged (adding, removing or renaming an entry changes it), as `updatedb`
//!   reuses unchanged folders. It is left out for a folder changed too recently, or
//!   whose names are not all Unicode.
//! - Its `files` are the facts of its program files, each valid while the file's size
//!   and modification time are unchanged.
//! - `full_walk_at` (seconds since 1970) is when every folder was last listed afresh.
//! - `journal` (`{"session", "at"}`) names the change journal the cache was made with
//!   ([`super::journal`]), when the service's watcher gave one.
//! - `plan` is a digest of what the walks were (the catalog, the walks' starts, the
//!   folders left out, the limits); each file's `matched` says whether it matched the
//!   catalog then, and the header's `matched` repeats those files with their paths.
//!   Under the same plan and a journal that saw no change in or below a folder, the
//!   folder's whole subtree stands as the cache has it: its lines are carried into the
//!   next cache unread, and only the header's matched programs are matched again.
//! - `whole_walks` are the walks' starts the cache holds with their listing, and
//!   `folders` counts its folder lines: when the journal saw no change below any walk's
//!   start, the header alone answers the scan.
//!
//! Folder lines are sorted so that every subtree is one run of lines: by path, with a
//! path separator before every other character ([`compare_paths`]), which is also the
//! order a walk visits folders in (depth first, names in byte order). The index names
//! the first folder line of every stretch of [`INDEX_STRIDE`] bytes of them, with its
//! path and where it starts (counted from the first folder line). A scan reads the
//! header; a search for a folder reads the index (once, the first time one is needed),
//! finds in it the stretch the folder's line lies in, reads that stretch in one read
//! and searches it ([`CacheView`]): it neither reads the blocks nor parses the lines of
//! folders it does not look at, a
//! line's path is compared where it lies (JSON is parsed only for a path with escapes
//! other than a Windows path's backslashes), and a kept subtree's folder line is read
//! no further than its path; a cache whose lines all stand is not written again. So a
//! repeat scan that the journal answers costs in proportion to what changed, not to
//! the cache.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sverka_shared::observation::{FileFormat, VersionInfo};

use super::journal::JournalMark;

/// What the first field says, so another JSON file is not taken for a cache.
pub const CACHE_MARKER: &str = "sverka executable inventory";
/// The largest cache file read.
pub const MAX_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// The most folders a cache holds (more than the inventory's entry budget visits).
pub const MAX_CACHE_FOLDERS: usize = 1_000_000;
const MAX_PATH_CHARS: usize = 4096;
/// How every folder line starts (its path first, so a lookup reads only that).
const FOLDER_LINE_START: &[u8] = b"{\"path\":";
/// How the index line starts.
const INDEX_LINE_START: &[u8] = b"{\"index\":";
/// The index names the first folder line of every stretch of this many bytes of folder
/// lines: a search reads the index and one stretch.
pub const INDEX_STRIDE: usize = 16 * 1024;
/// The most entries an index holds (one a stretch of the largest cache, and one more).
const MAX_INDEX_ENTRIES: usize = (MAX_CACHE_BYTES as usize).div_ceil(INDEX_STRIDE) + 1;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    pub size: u64,
    /// Nanoseconds since 1970 (negative before).
    pub modified_ns: i64,
    /// What the first bytes say; `None`: not a program.
    pub program: Option<FileFormat>,
    pub version_info: Option<VersionInfo>,
    /// Whether the program matched the catalog when the cache was made (valid while
    /// the cache's `plan` is the scan's).
    pub matched: bool,
}

/// What one folder held when it was last listed, valid while its modification time is
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedListing {
    /// Nanoseconds since 1970 (negative before).
    pub modified_ns: i64,
    /// The names of its subfolders (not links).
    pub folders: Vec<String>,
    /// The names of its files that may be programs ([`super::candidate`]).
    pub candidates: Vec<String>,
}

/// One folder of the cache: its listing, if it may stand in for listing it, and the
/// facts of its program files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachedFolder {
    pub listing: Option<CachedListing>,
    /// By file name, sorted.
    pub files: Vec<(String, CachedFile)>,
}

impl CachedFolder {
    /// The cached facts of the file `name`, if its size and modification time still
    /// match.
    pub fn file(&self, name: &str, size: u64, modified_ns: i64) -> Option<&CachedFile> {
        self.known_file(name)
            .filter(|cached| cached.size == size && cached.modified_ns == modified_ns)
    }

    /// The cached facts of the file `name`, whatever its size and time now.
    pub fn known_file(&self, name: &str) -> Option<&CachedFile> {
        self.files
            .binary_search_by(|(file, _)| file.as_str().cmp(name))
            .ok()
            .map(|at| &self.files[at].1)
    }

    /// The listing, if the folder's modification time still matches.
    pub fn listing_at(&self, modified_ns: i64) -> Option<&CachedListing> {
        self.listing
            .as_ref()
            .filter(|listing| listing.modified_ns == modified_ns)
    }
}

/// The cache's header: when, under which plan and journal, and what matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHeader {
    /// When every folder was last listed afresh (seconds since 1970); 0: never.
    pub full_walk_at: i64,
    /// The change journal the cache was made with, if any ([`super::journal`]).
    pub journal: Option<JournalMark>,
    /// What the walks were and what they matched against (the catalog, the walks'
    /// starts, the folders left out, the limits), as a digest: a folder's cached
    /// subtree stands for walking it only under the same plan.
    pub plan: String,
    /// The programs that matched the catalog, by path.
    pub matched: Vec<(String, CachedFile)>,
    /// The walks' starts whose folder the cache holds with its listing (so all of the
    /// walk: a scan that the journal tells nothing changed below any of them needs
    /// nothing but this header).
    pub whole_walks: Vec<String>,
    /// How many folders the cache holds.
    pub folders: usize,
}

/// A whole cache, every folder read: for tests, the fuzzer, and a cache written from
/// scratch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutableCache {
    pub full_walk_at: i64,
    pub journal: Option<JournalMark>,
    pub plan: String,
    /// Every folder, by local path.
    pub folders: HashMap<String, CachedFolder>,
}

impl ExecutableCache {
    /// The cached facts of the file at `path`, if its size and modification time still
    /// match.
    pub fn lookup(&self, path: &str, size: u64, modified_ns: i64) -> Option<&CachedFile> {
        let (folder, name) = split_path(path)?;
        self.folders.get(folder)?.file(name, size, modified_ns)
    }

    /// The programs of every folder that matched, by path.
    fn matched(&self) -> Vec<(String, CachedFile)> {
        let mut matched = Vec::new();
        for (folder, cached) in &self.folders {
            for (name, file) in &cached.files {
                if file.matched {
                    matched.push((join_path(folder, name), file.clone()));
                }
            }
        }
        matched.sort_by(|(left, _), (right, _)| compare_paths(left, right));
        matched
    }
}

/// Whether `byte` separates the components of a path the walk keys folders by.
fn is_separator(byte: u8) -> bool {
    byte == b'/' || (cfg!(windows) && byte == b'\\')
}

/// The order of folder lines: by path, a separator before every other character, so
/// that every folder's subtree follows it as one run (`/srv/a`, `/srv/a/x`, `/srv/a b`).
pub fn compare_paths(left: &str, right: &str) -> Ordering {
    let key = |byte: u8| if is_separator(byte) { 0 } else { byte };
    // Two spellings of one path (`C:\a`, `C:/a`) are still two keys.
    left.bytes()
        .map(key)
        .cmp(right.bytes().map(key))
        .then_with(|| left.cmp(right))
}

/// Whether `path` is `folder` or lies below it, by the text of the paths.
pub fn is_within(path: &str, folder: &str) -> bool {
    let Some(rest) = path.as_bytes().strip_prefix(folder.as_bytes()) else {
        return false;
    };
    rest.is_empty()
        || folder.bytes().last().is_some_and(is_separator)
        || rest.first().copied().is_some_and(is_separator)
}

/// The folder a file's path lies in.
pub fn folder_of(path: &str) -> Option<&str> {
    split_path(path).map(|(folder, _)| folder)
}

/// A file's path as its folder's path and its name.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let at = path.bytes().rposition(is_separator)?;
    // A root keeps its separator (`/`, `C:\`).
    let folder = if at == 0 || !path[..at].bytes().any(is_separator) {
        &path[..=at]
    } else {
        &path[..at]
    };
    Some((folder, &path[at + 1..]))
}

/// A file's path from its folder's and its name.
fn join_path(folder: &str, name: &str) -> String {
    if folder.bytes().last().is_some_and(is_separator) {
        format!("{folder}{name}")
    } else {
        let separator = if cfg!(windows) { '\\' } else { '/' };
        format!("{folder}{separator}{name}")
    }
}

/// A name inside a folder: one path component, never a way out of it.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.chars().count() <= MAX_PATH_CHARS
}

/// The text of the JSON string `json` starts with, when it holds no escape but `\\`
/// and no control character: where it lies when it holds no escape, else unescaped into
/// `scratch`. `None` for any other string (or none), which a JSON parser must read.
fn plain_json_string<'a>(json: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    read_plain_json_string(json, scratch).map(|(text, _)| text)
}

/// [`plain_json_string`], with how many bytes of `json` the string spans (its quotes
/// included).
fn read_plain_json_string<'a>(
    json: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Option<(&'a [u8], usize)> {
    let quoted = json.strip_prefix(b"\"")?;
    let first = memchr::memchr2(b'"', b'\\', quoted)?;
    let plain = |text: &[u8]| !text.iter().any(|byte| *byte < 0x20);
    if quoted[first] == b'"' {
        let text = &quoted[..first];
        return plain(text).then_some((text, first + 2));
    }
    scratch.clear();
    let mut from = 0;
    let mut at = first;
    loop {
        scratch.extend_from_slice(&quoted[from..at]);
        if quoted[at] == b'"' {
            break;
        }
        if quoted.get(at + 1) != Some(&b'\\') {
            return None;
        }
        scratch.push(b'\\');
        from = at + 2;
        at = from + memchr::memchr2(b'"', b'\\', quoted.get(from..)?)?;
    }
    plain(scratch).then_some((scratch.as_slice(), at + 2))
}

/// Whether JSON escapes something in `text` (quotes, backslashes, control
/// characters): else its JSON string is `text` between quotes.
fn needs_escape(text: &str) -> bool {
    text.bytes()
        .any(|byte| byte == b'"' || byte == b'\\' || byte < 0x20)
}

fn path_is_bad(path: &str) -> bool {
    // A path of no more bytes than that has no more characters.
    path.is_empty()
        || path.contains('\0')
        || path.len() > MAX_PATH_CHARS && path.chars().count() > MAX_PATH_CHARS
}

/// A file's facts as the header and a folder line spell them.
#[derive(Serialize, Deserialize)]
struct FileEntry {
    #[serde(alias = "name")]
    path: String,
    size: u64,
    modified_ns: i64,
    program: Option<FileFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_info: Option<VersionInfo>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    matched: bool,
}

/// A file of a folder line (`name`, not `path`).
#[derive(Serialize)]
struct NamedFileEntry<'a> {
    name: &'a str,
    size: u64,
    modified_ns: i64,
    program: Option<FileFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: &'a Option<VersionInfo>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    matched: bool,
}

impl FileEntry {
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

#[derive(Serialize)]
struct HeaderOut<'a> {
    cache: &'static str,
    agent_version: &'a str,
    full_walk_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: &'a Option<JournalMark>,
    #[serde(skip_serializing_if = "str::is_empty")]
    plan: &'a str,
    matched: Vec<FileEntry>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    whole_walks: &'a [String],
    folders: usize,
    #[serde(skip_serializing_if = "is_zero")]
    index_bytes: usize,
}

fn is_zero(number: &usize) -> bool {
    *number == 0
}

#[derive(Deserialize)]
struct HeaderIn {
    #[serde(default)]
    full_walk_at: i64,
    #[serde(default)]
    journal: Option<JournalMark>,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    matched: Vec<FileEntry>,
    #[serde(default)]
    whole_walks: Vec<String>,
    #[serde(default)]
    folders: usize,
    #[serde(default)]
    index_bytes: usize,
}

#[derive(Serialize)]
struct FolderOut<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    listing: &'a Option<CachedListing>,
    files: Vec<NamedFileEntry<'a>>,
}

#[derive(Deserialize)]
struct FolderIn {
    path: String,
    #[serde(default)]
    listing: Option<CachedListing>,
    #[serde(default)]
    files: Vec<FileEntry>,
}

/// The header line's bytes (with its newline), of a cache whose index line (after it)
/// has `index_bytes` bytes.
fn header_line(header: &CacheHeader, index_bytes: usize, agent_version: &str) -> Vec<u8> {
    let out = HeaderOut {
        cache: CACHE_MARKER,
        agent_version,
        full_walk_at: header.full_walk_at,
        journal: &header.journal,
        plan: &header.plan,
        matched: header
            .matched
            .iter()
            .map(|(path, file)| FileEntry {
                path: path.clone(),
                size: file.size,
                modified_ns: file.modified_ns,
                program: file.program,
                version_info: file.version_info.clone(),
                matched: false,
            })
            .collect(),
        whole_walks: &header.whole_walks,
        folders: header.folders,
        index_bytes,
    };
    // Plain data of strings and numbers: serializing cannot fail.
    let mut line = serde_json::to_vec(&out).unwrap_or_default();
    line.push(b'\n');
    line
}

/// One folder's line (with its newline); its path first, as lookups read it.
pub fn folder_line(path: &str, folder: &CachedFolder) -> Vec<u8> {
    let out = FolderOut {
        path,
        listing: &folder.listing,
        files: folder
            .files
            .iter()
            .map(|(name, file)| NamedFileEntry {
                name,
                size: file.size,
                modified_ns: file.modified_ns,
                program: file.program,
                version_info: &file.version_info,
                matched: file.matched,
            })
            .collect(),
    };
    let mut line = serde_json::to_vec(&out).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The cache's first line, its header, of a cache of `agent_version`.
pub fn parse_header(line: &[u8], agent_version: &str) -> Result<CacheHeader, CacheError> {
    parse_header_line(line, agent_version).map(|(header, _)| header)
}

/// The header, and how many bytes the index line after it has (0: none).
fn parse_header_line(line: &[u8], agent_version: &str) -> Result<(CacheHeader, usize), CacheError> {
    // The marker and version first, so a foreign file says what it is, not where it
    // broke.
    #[derive(Deserialize)]
    struct Marker {
        cache: Option<String>,
        agent_version: Option<String>,
    }
    let marker: Marker =
        serde_json::from_slice(line).map_err(|error| CacheError::Damaged(error.to_string()))?;
    if marker.cache.as_deref() != Some(CACHE_MARKER) {
        return Err(CacheError::NotACache);
    }
    let found = marker.agent_version.unwrap_or_default();
    if found != agent_version {
        return Err(CacheError::OtherVersion {
            found,
            current: agent_version.to_string(),
        });
    }
    let header: HeaderIn =
        serde_json::from_slice(line).map_err(|error| CacheError::Damaged(error.to_string()))?;
    if header.matched.len() > MAX_CACHE_FOLDERS || header.whole_walks.len() > MAX_CACHE_FOLDERS {
        return Err(CacheError::TooLarge("header"));
    }
    let mut matched = Vec::with_capacity(header.matched.len());
    for entry in header.matched {
        if path_is_bad(&entry.path) || split_path(&entry.path).is_none() {
            return Err(CacheError::Damaged(
                "a matched program's path is empty, too long or not in a folder".into(),
            ));
        }
        let (path, mut file) = entry.into_parts();
        file.matched = true;
        matched.push((path, file));
    }
    if header.whole_walks.iter().any(|path| path_is_bad(path)) {
        return Err(CacheError::Damaged(
            "a whole walk's path is empty or too long".into(),
        ));
    }
    let index_bytes = header.index_bytes;
    Ok((
        CacheHeader {
            full_walk_at: header.full_walk_at,
            journal: header.journal,
            plan: header.plan,
            matched,
            whole_walks: header.whole_walks,
            folders: header.folders,
        },
        index_bytes,
    ))
}

/// A stretch of folder lines a search narrows to: the line at `low` is not past what is
/// looked for, the one at `high` is (or it is the end of the file); each with the path
/// the index gives it, when the index named it.
struct Stretch {
    low: usize,
    high: usize,
    low_indexed: Option<String>,
    high_indexed: Option<String>,
}

/// A cache's index, read: where each entry's line starts in the file, and its path
/// (in `paths`, all of them one after the other).
#[derive(Debug, Default)]
struct LineIndex {
    paths: String,
    entries: Vec<(usize, Range<usize>)>,
}

impl LineIndex {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn at(&self, entry: usize) -> usize {
        self.entries[entry].0
    }

    fn path(&self, entry: usize) -> &str {
        &self.paths[self.entries[entry].1.clone()]
    }

    /// Every entry: where its line starts, and its path.
    fn entries(&self) -> impl Iterator<Item = (usize, &str)> {
        (0..self.len()).map(|entry| (self.at(entry), self.path(entry)))
    }

    /// The entries whose lines start after `low`, then those of them whose path
    /// `is_past` says no to: `(after, past)`, the first of each.
    fn partition(&self, low: usize, is_past: impl Fn(&str) -> bool) -> (usize, usize) {
        let after = self.entries.partition_point(|(at, _)| *at <= low);
        let past = after
            + self.entries[after..]
                .partition_point(|(_, path)| !is_past(&self.paths[path.clone()]));
        (after, past)
    }
}

/// The index line of the folder lines `body` (with its newline), or nothing when they
/// fit in one stretch: the first line that starts in each stretch of [`INDEX_STRIDE`]
/// bytes after the first, where it starts (counted from the body's start) and its path.
/// A line whose path does not read plainly is left out (the stretch before it is then
/// searched with it).
fn index_line(body: &[u8]) -> Vec<u8> {
    let mut entries: Vec<(usize, String)> = Vec::new();
    let mut scratch = Vec::new();
    let mut stretch = INDEX_STRIDE;
    while stretch < body.len() {
        let start = match body[stretch - 1] {
            b'\n' => stretch,
            _ => match memchr::memchr(b'\n', &body[stretch..]) {
                Some(newline) => stretch + newline + 1,
                None => break,
            },
        };
        if start >= body.len() {
            break;
        }
        let path = body[start..]
            .strip_prefix(FOLDER_LINE_START)
            .and_then(|rest| plain_json_string(rest, &mut scratch))
            .and_then(|path| std::str::from_utf8(path).ok());
        if let Some(path) = path {
            entries.push((start, path.to_string()));
        }
        stretch = (start / INDEX_STRIDE + 1) * INDEX_STRIDE;
    }
    if entries.is_empty() {
        return Vec::new();
    }
    #[derive(Serialize)]
    struct IndexOut {
        index: Vec<(usize, String)>,
    }
    let mut line = serde_json::to_vec(&IndexOut { index: entries }).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The index line (`line`, without its newline), its entries' lines counted from the
/// file's `body_start`; damage when it is not as [`index_line`] writes it, or an entry
/// lies outside the folder lines' `body_bytes` or not after the one before. Read where
/// it lies, not by a JSON parser: an entry is `[offset,"path"]` and its path is one
/// that [`plain_json_string`] reads (a search reads the index whole, the first time it
/// needs it). Whether each entry names its line is checked when a search uses it.
fn parse_index(line: &[u8], body_start: usize, body_bytes: usize) -> Result<LineIndex, CacheError> {
    let damaged = |what: &str| CacheError::Damaged(format!("the cache's index: {what}"));
    let mut rest = line
        .strip_prefix(INDEX_LINE_START)
        .and_then(|rest| rest.strip_prefix(b"["))
        .ok_or_else(|| damaged("not an index line"))?;
    // The paths one after the other, checked as UTF-8 once at the end (each path is
    // whole: the ranges fall between characters).
    let mut paths = Vec::with_capacity(line.len());
    let mut entries: Vec<(usize, Range<usize>)> = Vec::with_capacity(line.len() / 16);
    let mut scratch = Vec::new();
    if rest != b"]}" {
        loop {
            if entries.len() == MAX_INDEX_ENTRIES {
                return Err(CacheError::TooLarge("index"));
            }
            let entry = rest
                .strip_prefix(b"[")
                .ok_or_else(|| damaged("an entry is not [offset,path]"))?;
            let digits = entry
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            let offset = entry[..digits]
                .iter()
                .try_fold(0_usize, |number, digit| {
                    number
                        .checked_mul(10)?
                        .checked_add(usize::from(digit - b'0'))
                })
                .filter(|offset| *offset > 0 && *offset < body_bytes)
                .ok_or_else(|| damaged("an entry's offset is not one of the folder lines'"))?;
            let at = body_start + offset;
            if entries.last().is_some_and(|(last, _)| *last >= at) {
                return Err(damaged("entries out of order"));
            }
            let quoted = entry[digits..]
                .strip_prefix(b",")
                .ok_or_else(|| damaged("an entry is not [offset,path]"))?;
            // No control character, so no NUL: an empty path or one too long is bad.
            let (path, length) = read_plain_json_string(quoted, &mut scratch)
                .filter(|(path, _)| !path.is_empty() && path.len() <= 4 * MAX_PATH_CHARS)
                .ok_or_else(|| damaged("an entry's path is not a plain string of a path"))?;
            let start = paths.len();
            paths.extend_from_slice(path);
            entries.push((at, start..paths.len()));
            rest = quoted[length..]
                .strip_prefix(b"]")
                .ok_or_else(|| damaged("an entry is not [offset,path]"))?;
            if rest == b"]}" {
                break;
            }
            rest = rest
                .strip_prefix(b",")
                .ok_or_else(|| damaged("entries not separated by commas"))?;
        }
    }
    // All of them UTF-8, and each on its own (not a character split between two).
    let paths = String::from_utf8(paths)
        .ok()
        .filter(|paths| {
            entries.iter().all(|(_, path)| {
                paths.is_char_boundary(path.start) && paths.is_char_boundary(path.end)
            })
        })
        .ok_or_else(|| damaged("a path is not UTF-8"))?;
    if entries
        .iter()
        .any(|(_, path)| path.len() > MAX_PATH_CHARS && path_is_bad(&paths[path.clone()]))
    {
        return Err(damaged("an entry's path is too long"));
    }
    Ok(LineIndex { paths, entries })
}

/// The bytes of a cache file: all of them in memory, or read from the file a block at a
/// time as they are first asked for, so a scan that looks at a few folders reads a few
/// blocks (in a buffer of the file's size whose untouched pages cost nothing).
#[derive(Debug, Default)]
struct CacheBytes {
    bytes: Vec<u8>,
    /// Which blocks of `bytes` hold the file's bytes (all of them without a file).
    loaded: Vec<bool>,
    file: Option<std::fs::File>,
    /// How many reads of the file were made (each a system call; under Wine a trip
    /// through its server too).
    reads: u64,
}

/// The size of the blocks a cache file is read in.
const BLOCK_BYTES: usize = 4 * 1024;

impl CacheBytes {
    fn in_memory(bytes: Vec<u8>) -> CacheBytes {
        CacheBytes {
            loaded: vec![true; bytes.len().div_ceil(BLOCK_BYTES)],
            bytes,
            file: None,
            reads: 0,
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Makes sure `range` (clamped to the file) is read, each run of blocks not read
    /// yet in one read (the whole file in one when the next cache is written from
    /// it); an error reading it is damage.
    fn load(&mut self, range: Range<usize>) -> Result<(), CacheError> {
        let end = range.end.min(self.bytes.len());
        if range.start >= end {
            return Ok(());
        }
        let blocks = range.start / BLOCK_BYTES..(end - 1) / BLOCK_BYTES + 1;
        let mut block = blocks.start;
        while block < blocks.end {
            if self.loaded[block] {
                block += 1;
                continue;
            }
            let first = block;
            while block < blocks.end && !self.loaded[block] {
                block += 1;
            }
            let Some(file) = &self.file else {
                return Err(CacheError::Damaged(
                    "the cache file was closed before it was read".into(),
                ));
            };
            let start = first * BLOCK_BYTES;
            let stop = (block * BLOCK_BYTES).min(self.bytes.len());
            read_exact_at(file, &mut self.bytes[start..stop], start as u64).map_err(|error| {
                CacheError::Damaged(format!("cannot read the cache at byte {start}: {error}"))
            })?;
            self.reads += 1;
            self.loaded[first..block].fill(true);
        }
        Ok(())
    }
}

/// Reads `buffer.len()` bytes of `file` at `offset`.
fn read_exact_at(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
    }
    #[cfg(windows)]
    {
        let mut filled = 0;
        while filled < buffer.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buffer[filled..],
                offset + filled as u64,
            )? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                read => filled += read,
            }
        }
        Ok(())
    }
}

/// A cache file opened for lookups: its header read, each folder line found by a
/// search of its index and then of the stretch of lines the index narrows it to, and
/// parsed only when asked for. A line is named by where it starts (its byte offset in
/// the file), a run of lines by the bytes it spans; a cache opened from its file reads
/// only its index and the stretches that the searches and the lines looked at lie in.
#[derive(Debug, Default)]
pub struct CacheView {
    bytes: CacheBytes,
    header: CacheHeader,
    /// Where the index line starts (right after the header; it ends at `body_start`).
    index_start: usize,
    /// The index, once a search has read it (empty for a cache without one).
    index: Option<LineIndex>,
    /// Where the folder lines start (after the header and the index).
    body_start: usize,
    /// The line after the last one found (or the end): a walk asks for folders in the
    /// cache's order, so the next one asked for is mostly this one.
    cursor: usize,
    /// What was found damaged while reading lines; from then on nothing is found.
    damage: Option<CacheError>,
    /// A path read with escapes, unescaped (kept to spare an allocation each time).
    path_scratch: Vec<u8>,
}

impl CacheView {
    /// Opens a cache written by [`serialize_cache`] or [`CacheAssembly`] of the same
    /// `agent_version`, all in memory: checks the header.
    pub fn open(bytes: Vec<u8>, agent_version: &str) -> Result<CacheView, CacheError> {
        if bytes.len() as u64 > MAX_CACHE_BYTES {
            return Err(CacheError::TooLarge("file size"));
        }
        CacheView::over(CacheBytes::in_memory(bytes), agent_version)
    }

    /// Opens the cache `file` of `length` bytes (at most [`MAX_CACHE_BYTES`]) whose
    /// first line, the header, is `header_line` (with its newline, or all of a file
    /// without one); the rest is read as it is asked for.
    pub fn open_file(
        file: std::fs::File,
        length: u64,
        header_line: &[u8],
        agent_version: &str,
    ) -> Result<CacheView, CacheError> {
        if length > MAX_CACHE_BYTES {
            return Err(CacheError::TooLarge("file size"));
        }
        let length = length as usize;
        let mut bytes = CacheBytes {
            bytes: vec![0; length],
            loaded: vec![false; length.div_ceil(BLOCK_BYTES)],
            file: Some(file),
            reads: 0,
        };
        if header_line.len() > length {
            return Err(CacheError::Damaged(
                "the cache file shrank while read".into(),
            ));
        }
        bytes.bytes[..header_line.len()].copy_from_slice(header_line);
        // The header's blocks are read again only where the header ends mid-block.
        for block in 0..header_line.len() / BLOCK_BYTES {
            bytes.loaded[block] = true;
        }
        CacheView::over(bytes, agent_version)
    }

    fn over(bytes: CacheBytes, agent_version: &str) -> Result<CacheView, CacheError> {
        let all = &bytes.bytes;
        let header_end = memchr::memchr(b'\n', all).unwrap_or(all.len());
        let (header, index_bytes) = parse_header_line(&all[..header_end], agent_version)?;
        let index_start = (header_end + 1).min(all.len());
        let body_start = index_start
            .checked_add(index_bytes)
            .filter(|body_start| *body_start <= all.len())
            .ok_or_else(|| {
                CacheError::Damaged("the cache's index runs past the end of the file".into())
            })?;
        Ok(CacheView {
            header,
            index_start,
            index: None,
            body_start,
            cursor: body_start,
            bytes,
            damage: None,
            path_scratch: Vec::new(),
        })
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    /// Closes the file the cache is read from (what was read stays), so that a new
    /// cache may replace it: Windows does not rename a file over one that is open.
    pub fn close_file(&mut self) {
        self.bytes.file = None;
    }

    /// Whether the cache holds no folder.
    pub fn is_empty(&self) -> bool {
        self.body_start >= self.bytes.len()
    }

    /// Where the folder lines start.
    pub fn body_start(&self) -> usize {
        self.body_start
    }

    /// Where the file ends.
    pub fn end(&self) -> usize {
        self.bytes.len()
    }

    /// Whether `range` is a run of folder lines' bytes this cache could hold: not
    /// empty, after the header, within the file.
    fn holds_lines(&self, range: &Range<usize>) -> bool {
        !range.is_empty() && range.start >= self.body_start && range.end <= self.end()
    }

    /// Every folder line as the run of it alone (where it starts, where the next
    /// starts), in order (the whole file is read).
    pub fn lines(&mut self) -> Vec<Range<usize>> {
        let mut lines = Vec::new();
        let mut at = self.body_start;
        while at < self.bytes.len() {
            let line = self.line_run(at);
            at = line.end;
            lines.push(line);
        }
        lines
    }

    /// The run of the line at `at` alone.
    pub fn line_run(&mut self, at: usize) -> Range<usize> {
        at..self.next_line(at)
    }

    /// How many folder lines the run `range` holds (read for it).
    pub fn count_lines(&mut self, range: Range<usize>) -> usize {
        match self.lines_bytes(range) {
            [] => 0,
            bytes => {
                memchr::memchr_iter(b'\n', bytes).count() + usize::from(!bytes.ends_with(b"\n"))
            }
        }
    }

    /// How many reads of the file were made after its header.
    pub fn file_reads(&self) -> u64 {
        self.bytes.reads
    }

    /// The damage found while reading lines, if any (the file is then rebuilt).
    pub fn damage(&self) -> Option<&CacheError> {
        self.damage.as_ref()
    }

    /// The folder lines' bytes, as written (the whole file is read).
    pub fn body(&mut self) -> &[u8] {
        let start = self.body_start;
        self.lines_bytes(start..self.bytes.len())
    }

    /// Records what was found damaged (the first damage found is the one said).
    fn damaged(&mut self, error: CacheError) {
        self.damage.get_or_insert(error);
    }

    /// Reads `range` of the file; `false` (and the cache damaged) when it cannot be.
    fn load(&mut self, range: Range<usize>) -> bool {
        match self.bytes.load(range) {
            Ok(()) => true,
            Err(error) => {
                self.damaged(error);
                false
            }
        }
    }

    /// Reads `range` of the file; the damage found when it cannot be.
    fn read(&mut self, range: Range<usize>) -> Result<(), CacheError> {
        match self.load(range) {
            true => Ok(()),
            false => Err(self
                .damage
                .clone()
                .unwrap_or_else(|| CacheError::Damaged("the cache could not be read".into()))),
        }
    }

    /// Where the line starting at `at` ends (its newline, or the end of the file).
    fn line_end(&mut self, at: usize) -> usize {
        let end = self.bytes.len();
        let mut from = at;
        while from < end {
            // Block by block: a line is mostly far shorter than one.
            let stop = ((from / BLOCK_BYTES + 1) * BLOCK_BYTES).min(end);
            if !self.load(from..stop) {
                return end;
            }
            if let Some(newline) = memchr::memchr(b'\n', &self.bytes.bytes[from..stop]) {
                return from + newline;
            }
            from = stop;
        }
        end
    }

    /// Where the line after the one starting at `at` starts (or the end of the file).
    fn next_line(&mut self, at: usize) -> usize {
        (self.line_end(at) + 1).min(self.bytes.len())
    }

    /// The first line that starts at `offset` or after it (or the end of the file).
    fn line_from(&mut self, offset: usize) -> usize {
        if offset >= self.bytes.len() {
            return self.bytes.len();
        }
        if offset <= self.body_start {
            return self.body_start;
        }
        if !self.load(offset - 1..offset) {
            return self.bytes.len();
        }
        if self.bytes.bytes[offset - 1] == b'\n' {
            return offset;
        }
        self.next_line(offset)
    }

    fn line(&mut self, at: usize) -> &[u8] {
        let end = self.line_end(at);
        self.lines_bytes(at..end)
    }

    /// The path of the folder line starting at `at`, read from the line's start alone.
    pub fn path_at(&mut self, at: usize) -> Result<String, CacheError> {
        self.with_path_at(at, str::to_string)
    }

    /// `use_path` of the path of the folder line starting at `at`. A path written
    /// without escapes but `\\` (a Windows path) or none (most others: JSON escapes
    /// only quotes, backslashes and control characters) is read without parsing JSON:
    /// where it lies, or unescaped into a buffer kept for it.
    fn with_path_at<R>(
        &mut self,
        at: usize,
        use_path: impl FnOnce(&str) -> R,
    ) -> Result<R, CacheError> {
        let damaged = || CacheError::Damaged(format!("the folder line at byte {at} has no path"));
        let bad = || {
            CacheError::Damaged(format!(
                "the folder line at byte {at}: the path is empty or too long"
            ))
        };
        let mut scratch = std::mem::take(&mut self.path_scratch);
        let rest = self
            .line(at)
            .strip_prefix(FOLDER_LINE_START)
            .ok_or_else(damaged);
        let answer = rest.and_then(|rest| {
            let parsed;
            let path = match plain_json_string(rest, &mut scratch) {
                Some(plain) => std::str::from_utf8(plain).map_err(|_| damaged())?,
                None => {
                    let mut reader = serde_json::Deserializer::from_slice(rest);
                    parsed = String::deserialize(&mut reader).map_err(|_| damaged())?;
                    parsed.as_str()
                }
            };
            if path_is_bad(path) {
                return Err(bad());
            }
            Ok(use_path(path))
        });
        self.path_scratch = scratch;
        answer
    }

    /// Whether the line at `at`, the folder `path`'s, holds a listing, read from the
    /// line's start as [`folder_line`] writes it (`false` for a line written otherwise:
    /// then the whole line must be read).
    pub fn has_listing(&mut self, at: usize, path: &str) -> bool {
        let quoted = match needs_escape(path) {
            false => None,
            true => match serde_json::to_string(path) {
                Ok(quoted) => Some(quoted),
                Err(_) => return false,
            },
        };
        let line = self.line(at);
        let Some(rest) = line.strip_prefix(FOLDER_LINE_START) else {
            return false;
        };
        let after = match &quoted {
            Some(quoted) => rest.strip_prefix(quoted.as_bytes()),
            None => rest
                .strip_prefix(b"\"")
                .and_then(|rest| rest.strip_prefix(path.as_bytes()))
                .and_then(|rest| rest.strip_prefix(b"\"")),
        };
        after.is_some_and(|rest| rest.starts_with(br#","listing":{"#))
    }

    /// The line of the folder at `path`, if the cache holds it.
    pub fn find(&mut self, path: &str) -> Option<usize> {
        self.find_from(self.body_start, path)
    }

    /// The line of the folder at `path`, if the cache holds it, looked for from the
    /// line at `at`: that of a folder above it (its line is in the run of that one's
    /// subtree, so the cost follows the distance between the two).
    pub fn find_below(&mut self, at: usize, path: &str) -> Option<usize> {
        self.find_from(at.max(self.body_start), path)
    }

    fn find_from(&mut self, from: usize, path: &str) -> Option<usize> {
        if self.damage.is_some() {
            return None;
        }
        let at = match self.search(from, path) {
            Ok(at) => at,
            Err(error) => {
                self.damaged(error);
                return None;
            }
        };
        match at {
            Ok(at) => {
                self.cursor = self.next_line(at);
                Some(at)
            }
            Err(insert_at) => {
                self.cursor = insert_at;
                None
            }
        }
    }

    /// Where `path`'s line is (`Ok`), or where it would be (`Err`), knowing it is not
    /// before the line at `from`: the line at the cursor first, then a search from
    /// `from`.
    fn search(&mut self, from: usize, path: &str) -> Result<Result<usize, usize>, CacheError> {
        if self.cursor < self.bytes.len()
            && self.cursor >= self.body_start
            && self.with_path_at(self.cursor, |found| found == path)?
        {
            return Ok(Ok(self.cursor));
        }
        self.first_line_where(from, |found| compare_paths(found, path) != Ordering::Less)
            .and_then(|at| {
                Ok(match at {
                    at if at < self.bytes.len()
                        && self.with_path_at(at, |found| found == path)? =>
                    {
                        Ok(at)
                    }
                    at => Err(at),
                })
            })
    }

    /// The first line from `from` (a line's start) whose path `is_past` says yes to
    /// (false for every line before it, true from it on), or the end of the file. The
    /// line at `from` and the next first (most runs looked for, a folder without
    /// subfolders, end there); then the index narrows the search to one stretch of
    /// lines, which is read at once and searched by halving.
    fn first_line_where(
        &mut self,
        from: usize,
        is_past: impl Fn(&str) -> bool,
    ) -> Result<usize, CacheError> {
        let end = self.bytes.len();
        if from >= end || self.with_path_at(from, &is_past)? {
            return Ok(from.min(end));
        }
        let next = self.next_line(from);
        if next >= end || self.with_path_at(next, &is_past)? {
            return Ok(next);
        }
        // The line at `low` is not past; the first past one is after it, by `high`.
        let Stretch {
            mut low,
            mut high,
            low_indexed,
            mut high_indexed,
        } = self.stretch_after(next, &is_past)?;
        // The stretch in one read, with the byte before it (a line ends there).
        self.read(low.saturating_sub(1).max(self.body_start)..high)?;
        if let Some(path) = low_indexed {
            self.check_indexed(low, &path)?;
        }
        loop {
            let next = self.next_line(low);
            if next >= high {
                // The answer is the index's line: it must be where the index says.
                if let Some(path) = high_indexed {
                    self.check_indexed(high, &path)?;
                }
                return Ok(high);
            }
            let middle = match self.line_from(low + (high - low) / 2) {
                middle if middle > low && middle < high => middle,
                _ => next,
            };
            if self.with_path_at(middle, &is_past)? {
                high = middle;
                high_indexed = None;
            } else {
                low = middle;
            }
        }
    }

    /// The stretch of lines the first line past `low` (a line that is not past) lies
    /// in, by the index.
    fn stretch_after(
        &mut self,
        low: usize,
        is_past: impl Fn(&str) -> bool,
    ) -> Result<Stretch, CacheError> {
        let end = self.bytes.len();
        let index = self.index()?;
        let (after, past) = index.partition(low, is_past);
        let (low, low_indexed) = match past > after {
            true => (index.at(past - 1), Some(index.path(past - 1).to_string())),
            false => (low, None),
        };
        let (high, high_indexed) = match past < index.len() {
            true => (index.at(past), Some(index.path(past).to_string())),
            false => (end, None),
        };
        Ok(Stretch {
            low,
            high,
            low_indexed,
            high_indexed,
        })
    }

    /// The index, read the first time it is asked for (empty for a cache without one).
    fn index(&mut self) -> Result<&LineIndex, CacheError> {
        if self.index.is_none() {
            let range = self.index_start..self.body_start;
            let index = match range.len() {
                0 => LineIndex::default(),
                _ => {
                    self.read(range.clone())?;
                    let line = self.bytes.bytes[range].strip_suffix(b"\n").ok_or_else(|| {
                        CacheError::Damaged("the cache's index line is cut short".into())
                    })?;
                    parse_index(line, self.body_start, self.bytes.len() - self.body_start)?
                }
            };
            self.index = Some(index);
        }
        Ok(self.index.get_or_insert_default())
    }

    /// Damage unless the line at `at` is the folder `path`'s, as the index says.
    fn check_indexed(&mut self, at: usize, path: &str) -> Result<(), CacheError> {
        let starts_line =
            at == self.body_start || { self.load(at - 1..at) && self.bytes.bytes[at - 1] == b'\n' };
        if starts_line && self.with_path_at(at, |found| found == path)? {
            return Ok(());
        }
        Err(CacheError::Damaged(format!(
            "the cache's index names {path} at byte {at}, where its line is not"
        )))
    }

    /// The folder on the line at `at`, parsed; `None` (and the cache damaged) when the
    /// line does not read as a folder of `path`.
    pub fn folder(&mut self, at: usize, path: &str) -> Option<CachedFolder> {
        match self.parse_folder(at) {
            Ok((found, folder)) if found == path => Some(folder),
            Ok((found, _)) => {
                self.damaged(CacheError::Damaged(format!(
                    "the folder line at byte {at} is {found}, not {path}"
                )));
                None
            }
            Err(error) => {
                self.damaged(error);
                None
            }
        }
    }

    fn parse_folder(&mut self, at: usize) -> Result<(String, CachedFolder), CacheError> {
        let entry: FolderIn = serde_json::from_slice(self.line(at)).map_err(|error| {
            CacheError::Damaged(format!("the folder line at byte {at}: {error}"))
        })?;
        if path_is_bad(&entry.path) {
            return Err(CacheError::Damaged(format!(
                "the folder line at byte {at}: the path is empty or too long"
            )));
        }
        if let Some(listing) = &entry.listing
            && !listing
                .folders
                .iter()
                .chain(&listing.candidates)
                .all(|name| is_plain_name(name))
        {
            return Err(CacheError::Damaged(format!(
                "folder {} lists a name that is not a plain file name",
                entry.path
            )));
        }
        let mut files = Vec::with_capacity(entry.files.len());
        for file in entry.files {
            if !is_plain_name(&file.path) {
                return Err(CacheError::Damaged(format!(
                    "folder {} has a file whose name is not a plain file name",
                    entry.path
                )));
            }
            files.push(file.into_parts());
        }
        files.sort_by(|(left, _), (right, _)| left.cmp(right));
        files.dedup_by(|(left, _), (right, _)| left == right);
        Ok((
            entry.path,
            CachedFolder {
                listing: entry.listing,
                files,
            },
        ))
    }

    /// The lines of the folder `path` (if the cache holds it) and of every folder
    /// below it: one run, by the cache's order (empty when damaged).
    pub fn within(&mut self, path: &str) -> Range<usize> {
        if self.damage.is_some() {
            return 0..0;
        }
        let start = match self.search(self.body_start, path) {
            Ok(Ok(at) | Err(at)) => at,
            Err(error) => {
                self.damaged(error);
                return 0..0;
            }
        };
        self.run_below(start, path)
    }

    /// The lines of the folder `path`, found on the line at `at`, and of every folder
    /// below it; the next folder looked for is taken to be the one after them.
    pub fn subtree(&mut self, at: usize, path: &str) -> Range<usize> {
        // The line at `at` is `path`'s own: the run goes on from the next one.
        let next = self.next_line(at);
        let run = match self.run_below(next, path) {
            below if below.start == next => at..below.end,
            _ => 0..0,
        };
        if !run.is_empty() {
            self.cursor = run.end;
        }
        run
    }

    /// The run of lines from `start` that lie within `path`.
    fn run_below(&mut self, start: usize, path: &str) -> Range<usize> {
        match self.first_line_where(start, |below| !is_within(below, path)) {
            Ok(end) => start..end,
            Err(error) => {
                self.damaged(error);
                0..0
            }
        }
    }

    /// The bytes of the lines `range` (a run of whole lines), as written (read for it;
    /// none when they cannot be).
    fn lines_bytes(&mut self, range: Range<usize>) -> &[u8] {
        if !self.load(range.clone()) {
            return &[];
        }
        self.bytes.bytes.get(range).unwrap_or_default()
    }
}

/// One piece of the next cache: a folder as this scan found it, or lines of the last
/// cache carried over as they were.
#[derive(Debug)]
pub enum CachePiece {
    Folder(String, CachedFolder),
    Carried(Range<usize>),
}

/// The next cache, assembled from pieces of the last one and what this scan found.
#[derive(Debug, Default)]
pub struct CacheAssembly {
    pieces: Vec<(String, CachePiece)>,
}

impl CacheAssembly {
    pub fn folder(&mut self, path: String, folder: CachedFolder) {
        self.pieces
            .push((path.clone(), CachePiece::Folder(path, folder)));
    }

    /// Lines `range` of `view`, as they are (nothing when the first line's path does
    /// not read).
    pub fn carry(&mut self, view: &mut CacheView, range: Range<usize>) {
        if !view.holds_lines(&range) {
            return;
        }
        if let Ok(path) = view.path_at(range.start) {
            self.pieces.push((path, CachePiece::Carried(range)));
        }
    }

    /// Lines `range` of `view`, as they are, the first of them found to be the folder
    /// `path`'s (so not read again).
    pub fn carry_found(&mut self, view: &CacheView, path: &str, range: Range<usize>) {
        if view.holds_lines(&range) {
            self.pieces
                .push((path.to_string(), CachePiece::Carried(range)));
        }
    }

    /// The paths of the folders this scan wrote afresh.
    pub fn fresh_paths(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|(path, piece)| match piece {
            CachePiece::Folder(..) => Some(path.as_str()),
            CachePiece::Carried(_) => None,
        })
    }

    /// The lines of `view` this assembly carries.
    pub fn carried(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.pieces.iter().filter_map(|(_, piece)| match piece {
            CachePiece::Carried(range) => Some(range.clone()),
            CachePiece::Folder(..) => None,
        })
    }

    /// The folder lines, sorted (pieces never overlap: a carried run is a subtree the
    /// walk did not enter); `None` when every line of `view` is carried as it was
    /// (nothing changed: nothing to copy, and nothing more of it read).
    pub fn body(mut self, view: &mut CacheView) -> Option<Vec<u8>> {
        self.pieces
            .sort_by(|(left, _), (right, _)| compare_paths(left, right));
        let mut next_line = view.body_start;
        let whole = self.pieces.iter().all(|(_, piece)| match piece {
            CachePiece::Carried(range) if range.start == next_line => {
                next_line = range.end;
                true
            }
            _ => false,
        });
        if whole && next_line == view.end() {
            return None;
        }
        let mut body = Vec::new();
        for (_, piece) in self.pieces {
            match piece {
                CachePiece::Folder(path, folder) => body.extend(folder_line(&path, &folder)),
                CachePiece::Carried(range) => {
                    body.extend_from_slice(view.lines_bytes(range));
                    if body.last() != Some(&b'\n') {
                        body.push(b'\n');
                    }
                }
            }
        }
        Some(body)
    }
}

/// A whole cache file from its header and its folder lines (the index made of them).
pub fn cache_file_bytes(header: &CacheHeader, body: &[u8], agent_version: &str) -> Vec<u8> {
    let index = index_line(body);
    let mut bytes = header_line(header, index.len(), agent_version);
    bytes.reserve(index.len() + body.len());
    bytes.extend_from_slice(&index);
    bytes.extend_from_slice(body);
    bytes
}

/// Reads a whole cache written by [`serialize_cache`] of the same `agent_version`, its
/// index checked against its lines.
pub fn parse_cache(bytes: &[u8], agent_version: &str) -> Result<ExecutableCache, CacheError> {
    let mut view = CacheView::open(bytes.to_vec(), agent_version)?;
    let entries: Vec<(usize, String)> = view
        .index()?
        .entries()
        .map(|(at, path)| (at, path.to_string()))
        .collect();
    for (at, path) in entries {
        view.check_indexed(at, &path)?;
    }
    let mut folders = HashMap::new();
    for at in view.lines().into_iter().map(|line| line.start) {
        if folders.len() == MAX_CACHE_FOLDERS {
            return Err(CacheError::TooLarge("folders"));
        }
        // Every line must be found as a lookup finds it: by the path it starts with.
        let start = view.path_at(at)?;
        let (path, folder) = view.parse_folder(at)?;
        if path != start {
            return Err(CacheError::Damaged(format!(
                "the folder line at byte {at} names two paths"
            )));
        }
        folders.insert(path, folder);
    }
    let header = view.header;
    Ok(ExecutableCache {
        full_walk_at: header.full_walk_at,
        journal: header.journal,
        plan: header.plan,
        folders,
    })
}

/// The cache file's bytes, folders in the cache's order (the same cache, the same
/// bytes).
pub fn serialize_cache(cache: &ExecutableCache, agent_version: &str) -> Vec<u8> {
    let header = CacheHeader {
        full_walk_at: cache.full_walk_at,
        journal: cache.journal.clone(),
        plan: cache.plan.clone(),
        matched: cache.matched(),
        whole_walks: Vec::new(),
        folders: cache.folders.len(),
    };
    let mut paths: Vec<&String> = cache.folders.keys().collect();
    paths.sort_by(|left, right| compare_paths(left, right));
    let mut body = Vec::new();
    for path in paths {
        body.extend(folder_line(path, &cache.folders[path]));
    }
    cache_file_bytes(&header, &body, agent_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `bytes` read as a cache of `version` is damage.
    fn is_damage(bytes: &[u8], version: &str) -> bool {
        matches!(parse_cache(bytes, version), Err(CacheError::Damaged(_)))
    }

    /// The header of an empty cache of agent version 1.
    fn bare_header() -> String {
        format!(r#"{{"cache":"{CACHE_MARKER}","agent_version":"1"}}"#)
    }

    fn program(size: u64, matched: bool) -> CachedFile {
        CachedFile {
            size,
            modified_ns: 1_700_000_000_123_456_789,
            program: Some(FileFormat::Pe),
            version_info: Some(VersionInfo {
                product_name: Some("Telegram Desktop".into()),
                ..VersionInfo::default()
            }),
            matched,
        }
    }

    fn sample() -> ExecutableCache {
        let mut cache = ExecutableCache::default();
        cache.folders.insert(
            "/srv/tools".into(),
            CachedFolder {
                listing: None,
                files: vec![
                    (
                        "notes".into(),
                        CachedFile {
                            size: 10,
                            modified_ns: -5,
                            program: None,
                            version_info: None,
                            matched: false,
                        },
                    ),
                    ("tg.exe".into(), program(1234, true)),
                ],
            },
        );
        for (path, folders) in [
            ("/srv", vec!["a b".to_string(), "a".into(), "tools".into()]),
            ("/srv/a", vec!["x".into()]),
            ("/srv/a/x", vec![]),
            ("/srv/a b", vec![]),
            ("/", vec!["srv".into()]),
        ] {
            cache.folders.insert(
                path.into(),
                CachedFolder {
                    listing: Some(CachedListing {
                        modified_ns: 1_700_000_000_000_000_001,
                        folders,
                        candidates: vec![],
                    }),
                    files: vec![],
                },
            );
        }
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
        let listing = cache.folders["/srv"].listing_at(1_700_000_000_000_000_001);
        assert_eq!(listing.map(|listing| listing.folders.len()), Some(3));
        assert!(cache.folders["/srv"].listing_at(2).is_none());
    }

    /// A cache of agent version 1 opened from its file (`bytes`, written to a
    /// temporary file that is gone once opened), read a block at a time.
    fn view_of_file(bytes: &[u8]) -> CacheView {
        let file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &file, bytes).unwrap();
        let header_end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |at| at + 1);
        CacheView::open_file(file, bytes.len() as u64, &bytes[..header_end], "1").unwrap()
    }

    /// The paths of the folder lines in the run `lines`.
    fn paths_in(view: &mut CacheView, lines: Range<usize>) -> Vec<String> {
        view.lines()
            .into_iter()
            .filter(|line| lines.contains(&line.start))
            .map(|line| view.path_at(line.start).unwrap())
            .collect()
    }

    #[test]
    fn folders_are_kept_in_walk_order_with_every_subtree_in_one_run() {
        let bytes = serialize_cache(&sample(), "1");
        let mut view = CacheView::open(bytes, "1").unwrap();
        let all = view.body_start..view.end();
        let paths = paths_in(&mut view, all.clone());
        assert_eq!(
            paths,
            ["/", "/srv", "/srv/a", "/srv/a/x", "/srv/a b", "/srv/tools"]
        );
        let starts: Vec<usize> = view.lines().into_iter().map(|line| line.start).collect();
        assert_eq!(view.count_lines(all.clone()), 6);
        // The header repeats what matched, with its path.
        let matched: Vec<&str> = view
            .header()
            .matched
            .iter()
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(matched, ["/srv/tools/tg.exe"]);
        // Found out of order as well as in it; a missing folder is not found.
        for (path, line) in [("/srv/a b", 4), ("/", 0), ("/srv/a", 2), ("/srv/tools", 5)] {
            assert_eq!(view.find(path), Some(starts[line]), "{path}");
        }
        assert_eq!(view.find("/srv/b"), None);
        assert_eq!(view.find("/srv/a/x/y"), None);
        let within = |view: &mut CacheView, path| {
            let run = view.within(path);
            paths_in(view, run)
        };
        assert_eq!(within(&mut view, "/srv/a"), ["/srv/a", "/srv/a/x"]);
        assert_eq!(view.within("/"), all);
        assert_eq!(within(&mut view, "/srv/a/x"), ["/srv/a/x"]);
        // Below a folder the cache does not hold, what it holds there.
        assert_eq!(view.within("/srv/0"), starts[2]..starts[2]);
        assert_eq!(within(&mut view, "/srv/a/"), ["/srv/a/x"]);
        // A subtree found from its folder's line; the next lookup starts after it.
        let at = view.find("/srv/a").unwrap();
        assert!(view.has_listing(at, "/srv/a"));
        let tools = view.find("/srv/tools").unwrap();
        assert!(!view.has_listing(tools, "/srv/tools"));
        // Asked with another folder's path, the line says no.
        assert!(!view.has_listing(at, "/srv/a b"));
        let run = view.subtree(at, "/srv/a");
        assert_eq!(view.count_lines(run.clone()), 2);
        assert_eq!(view.cursor, run.end);
        assert_eq!(view.find("/srv/a b"), Some(starts[4]));
        let at = view.find("/srv/tools").unwrap();
        let folder = view.folder(at, "/srv/tools").unwrap();
        assert!(
            folder
                .file("tg.exe", 1234, 1_700_000_000_123_456_789)
                .is_some()
        );
        assert!(view.damage().is_none());
    }

    #[test]
    fn every_folder_and_subtree_of_a_large_cache_is_found_as_a_scan_of_all_lines_finds_it() {
        // Folders of uneven depth and line length, so that the searches' probes land
        // mid-line, near and far.
        let mut cache = ExecutableCache::default();
        for index in 0..1500_usize {
            let mut path = format!("/srv/s{}", index % 7);
            for depth in 0..(index % 4) {
                path.push_str(&format!(
                    "/d{}{}",
                    index % (11 + depth),
                    "x".repeat(index % 37)
                ));
            }
            let files = (0..index % 3)
                .map(|file| (format!("f{file}.exe"), program(index as u64, false)))
                .collect();
            cache.folders.insert(
                path,
                CachedFolder {
                    listing: None,
                    files,
                },
            );
        }
        let bytes = serialize_cache(&cache, "1");
        assert!(bytes.len() > 4 * INDEX_STRIDE);
        // Read from its file, a block at a time, as a scan reads it.
        let mut view = view_of_file(&bytes);
        let body_start = view.body_start;
        // One folder found: some blocks read, not the file.
        assert!(view.find("/srv/s3").is_some());
        let read = view.bytes.loaded.iter().filter(|loaded| **loaded).count();
        assert!(read < view.bytes.loaded.len(), "{read} blocks read");
        let everything = view.body_start..view.end();
        let every = paths_in(&mut view, everything);
        assert_eq!(every.len(), cache.folders.len());
        let missing = ["/srv/s3/d0", "/srv/s9", "/srv/s1/zzz", "/", "/srw"];
        for path in every.iter().map(String::as_str).chain(missing) {
            let expected: Vec<&String> = every
                .iter()
                .filter(|below| is_within(below, path))
                .collect();
            let run = view.within(path);
            assert_eq!(
                paths_in(&mut view, run.clone()).iter().collect::<Vec<_>>(),
                expected,
                "{path}"
            );
            assert_eq!(view.count_lines(run.clone()), expected.len(), "{path}");
            let found = view.find(path);
            match found {
                Some(at) => {
                    assert_eq!(view.path_at(at).unwrap(), path);
                    assert_eq!(view.subtree(at, path), run, "{path}");
                }
                None => assert!(!cache.folders.contains_key(path), "{path} not found"),
            }
            // Looked for from the line of any folder above it, as the walk looks for
            // a subfolder: the same line.
            for above in every
                .iter()
                .filter(|above| *above != path && is_within(path, above))
            {
                let above_at = view.find(above).unwrap();
                assert_eq!(
                    view.find_below(above_at, path),
                    found,
                    "{path} below {above}"
                );
            }
        }
        assert!(view.damage().is_none());
        assert!(view.body() == &bytes[body_start..]);
    }

    #[test]
    fn paths_with_and_without_escapes_read_as_json_reads_them() {
        // Read where they lie (no escape), unescaped by hand (only `\\`), or left to
        // the JSON parser (any other escape): each as JSON has it.
        let paths = [
            "/srv/plain",
            "/srv/Загрузки/Telegram",
            r"C:\Users\Public\Игры",
            r"D:\",
            "/srv/quote\"d",
            r"/srv/back\slash\",
            "/srv/tab\there",
            "/srv/line\u{2028}sep",
        ];
        for path in paths {
            let json = serde_json::to_vec(path).unwrap();
            let mut scratch = Vec::new();
            let plain = plain_json_string(&json, &mut scratch);
            match path.contains(['"', '\t']) {
                true => assert_eq!(plain, None, "{path}"),
                false => assert_eq!(plain, Some(path.as_bytes()), "{path}"),
            }
        }
        // Escapes JSON allows but the cache's writer does not use.
        for (json, text) in [
            (r#""C:\u005cData""#, r"C:\Data"),
            (r#""\/srv""#, "/srv"),
            (r#""C:\\Data\n""#, "C:\\Data\n"),
        ] {
            let mut scratch = Vec::new();
            assert_eq!(
                plain_json_string(json.as_bytes(), &mut scratch),
                None,
                "{json}"
            );
            assert_eq!(serde_json::from_str::<String>(json).unwrap(), text);
        }
        for unfinished in [&br#""C:\"#[..], br#""C:\\Data"#, br#""srv"#, b"srv"] {
            let mut scratch = Vec::new();
            assert_eq!(plain_json_string(unfinished, &mut scratch), None);
        }
        // In a cache: each folder found, its path read, its listing seen, its subtree
        // its own.
        let mut cache = ExecutableCache::default();
        for path in paths {
            let listing = CachedListing {
                modified_ns: 1,
                folders: vec![],
                candidates: vec!["tool.exe".into()],
            };
            cache.folders.insert(
                path.into(),
                CachedFolder {
                    listing: Some(listing),
                    files: vec![],
                },
            );
        }
        let bytes = serialize_cache(&cache, "1");
        let mut view = view_of_file(&bytes);
        let mut sorted = paths.to_vec();
        sorted.sort_by(|left, right| compare_paths(left, right));
        for path in sorted {
            let at = view
                .find(path)
                .unwrap_or_else(|| panic!("{path} not found"));
            assert_eq!(view.path_at(at).unwrap(), path);
            assert!(view.has_listing(at, path), "{path}");
            let expected = paths.iter().filter(|other| is_within(other, path)).count();
            let run = view.subtree(at, path);
            assert_eq!(view.count_lines(run), expected, "{path}");
        }
        assert!(view.damage().is_none());
    }

    #[test]
    fn a_cache_read_from_its_file_reads_the_blocks_of_the_folders_looked_at() {
        let cache = shares(20_000);
        let bytes = serialize_cache(&cache, "1");
        let mut view = view_of_file(&bytes);
        let body_start = view.body_start;
        let blocks = view.bytes.loaded.len();
        let read = |view: &CacheView| view.bytes.loaded.iter().filter(|loaded| **loaded).count();
        // A folder and the subtree beside it, as a walk under the journal asks: a
        // handful of blocks of the file's hundreds.
        let at = view.find("/srv/share8/d12345").unwrap();
        assert!(view.has_listing(at, "/srv/share8/d12345"));
        let run = view.subtree(at, "/srv/share8/d12345");
        assert_eq!(view.count_lines(run), 1);
        let folder = view.folder(at, "/srv/share8/d12345").unwrap();
        assert!(
            folder
                .file("tool12345", 64, 1_700_000_000_123_456_789)
                .is_some()
        );
        assert!(blocks > 1000, "{blocks} blocks");
        // The index's block, and the stretch the folder lies in, each in one read.
        assert!(read(&view) <= 10, "{} of {blocks} blocks read", read(&view));
        assert!(view.file_reads() <= 3, "{} reads", view.file_reads());
        // All of it, when asked for, reads as written: the blocks not read yet, each
        // run of them in one read.
        let reads_before = view.file_reads();
        assert!(view.body() == &bytes[body_start..]);
        assert_eq!(read(&view), blocks);
        assert!(view.file_reads() - reads_before <= reads_before + 1);
        assert!(view.damage().is_none());
        // A cache written from the one before reads all of it in one read.
        let mut view = view_of_file(&bytes);
        assert!(view.body() == &bytes[body_start..]);
        assert_eq!(view.file_reads(), 1);
    }

    /// A cache of `folders` leaf folders under 13 shares, each with a program.
    fn shares(folders: usize) -> ExecutableCache {
        let mut cache = ExecutableCache::default();
        for index in 0..folders {
            let listing = CachedListing {
                modified_ns: 1,
                folders: vec![],
                candidates: vec![format!("tool{index}")],
            };
            cache.folders.insert(
                format!("/srv/share{}/d{index}", index % 13),
                CachedFolder {
                    listing: Some(listing),
                    files: vec![(format!("tool{index}"), program(64, false))],
                },
            );
        }
        cache
    }

    /// The cache `bytes` (of agent version 1) with `index_line` for its index line and
    /// its header's `index_bytes` set to `index_bytes` (left out when `None`).
    fn with_index_line(bytes: &[u8], index_line: &[u8], index_bytes: Option<usize>) -> Vec<u8> {
        let view = CacheView::open(bytes.to_vec(), "1").unwrap();
        let mut header: serde_json::Value =
            serde_json::from_slice(&bytes[..view.index_start - 1]).unwrap();
        let fields = header.as_object_mut().unwrap();
        match index_bytes {
            Some(index_bytes) => fields.insert("index_bytes".into(), index_bytes.into()),
            None => fields.remove("index_bytes"),
        };
        let mut out = serde_json::to_vec(&header).unwrap();
        out.push(b'\n');
        out.extend_from_slice(index_line);
        out.extend_from_slice(&bytes[view.body_start..]);
        out
    }

    /// The cache `bytes` with its index line made by `edit` of the index's entries.
    fn with_index(bytes: &[u8], edit: impl FnOnce(&mut Vec<(usize, String)>)) -> Vec<u8> {
        let view = CacheView::open(bytes.to_vec(), "1").unwrap();
        let line = &bytes[view.index_start..view.body_start - 1];
        let mut index: serde_json::Value = serde_json::from_slice(line).unwrap();
        let mut entries: Vec<(usize, String)> =
            serde_json::from_value(index["index"].take()).unwrap();
        edit(&mut entries);
        index["index"] = serde_json::json!(entries);
        let mut new_line = serde_json::to_vec(&index).unwrap();
        new_line.push(b'\n');
        with_index_line(bytes, &new_line, Some(new_line.len()))
    }

    #[test]
    fn the_index_names_the_first_line_of_every_stretch_and_narrows_each_search_to_one() {
        let cache = shares(20_000);
        let bytes = serialize_cache(&cache, "1");
        let mut view = view_of_file(&bytes);
        let body_bytes = view.end() - view.body_start;
        let entries: Vec<(usize, String)> = view
            .index()
            .unwrap()
            .entries()
            .map(|(at, path)| (at, path.to_string()))
            .collect();
        // One entry a stretch after the first, each a line's start, with its path.
        assert_eq!(entries.len(), body_bytes.div_ceil(INDEX_STRIDE) - 1);
        for (number, (at, path)) in entries.into_iter().enumerate() {
            let stretch = view.body_start + (number + 1) * INDEX_STRIDE;
            assert!(at >= stretch && at < stretch + 512, "{at} {path}");
            assert_eq!(view.path_at(at).unwrap(), path);
            assert_eq!(bytes[at - 1], b'\n');
        }
        // Every search, far or near, in order or not: the index (read once) and the
        // stretch its answer lies in, each in one read.
        let mut view = view_of_file(&bytes);
        for path in ["/srv/share8/d12345", "/srv/share1/d14", "/srv/share12/d25"] {
            let reads = view.file_reads();
            let at = view.find(path).unwrap();
            let run = view.within(path);
            assert_eq!(run.start, at);
            assert_eq!(view.count_lines(run), 1);
            assert!(
                view.file_reads() - reads <= 3,
                "{path}: {} reads",
                view.file_reads() - reads
            );
        }
        // A share's subtree: its end found in one stretch.
        let run = view.within("/srv/share3");
        assert_eq!(view.count_lines(run), 20_000 / 13 + 1);
        assert!(view.damage().is_none());
        // Windows paths (each backslash escaped in JSON) read back from the index too.
        let mut windows = ExecutableCache::default();
        for (path, folder) in shares(3000).folders {
            let path = format!(r"C:\Data{}", path.replace('/', r"\"));
            windows.folders.insert(path, folder);
        }
        let bytes = serialize_cache(&windows, "1");
        let mut view = view_of_file(&bytes);
        assert!(view.index().unwrap().len() > 10);
        for path in windows.folders.keys() {
            let at = view
                .find(path)
                .unwrap_or_else(|| panic!("{path} not found"));
            assert_eq!(view.path_at(at).unwrap(), *path);
        }
        assert!(view.damage().is_none());
        assert_eq!(parse_cache(&bytes, "1"), Ok(windows));
        // Small caches have none, and are searched whole.
        let small = serialize_cache(&shares(20), "1");
        let mut view = view_of_file(&small);
        assert_eq!(view.index_start, view.body_start);
        assert!(view.find("/srv/share7/d7").is_some());
    }

    #[test]
    fn a_large_cache_without_an_index_is_searched_whole() {
        let cache = shares(3000);
        let bytes = serialize_cache(&cache, "1");
        let view = CacheView::open(bytes.clone(), "1").unwrap();
        assert!(view.body_start > view.index_start, "written with an index");
        // The same cache with no index line and no index_bytes in its header.
        let plain = with_index_line(&bytes, b"", None);
        assert!(!String::from_utf8_lossy(&plain).contains("index"));
        assert_eq!(parse_cache(&plain, "1"), Ok(cache.clone()));
        let mut view = view_of_file(&plain);
        for path in cache.folders.keys().take(50) {
            assert!(view.find(path).is_some(), "{path}");
        }
        let run = view.within("/srv/share0");
        assert_eq!(view.count_lines(run), 3000 / 13 + 1);
        assert!(view.damage().is_none());
    }

    #[test]
    fn a_damaged_index_is_damage_found_when_it_is_used() {
        let cache = shares(5000);
        let bytes = serialize_cache(&cache, "1");
        let looked_for = "/srv/share5/d3000";
        let damaged = [
            // An entry's path not its line's.
            with_index(&bytes, |entries| entries[3].1 = "/srv/share0/d1".into()),
            with_index(&bytes, |entries| {
                entries.iter_mut().for_each(|entry| entry.1.push('x'))
            }),
            // An entry's offset mid-line, or moved to another line.
            with_index(&bytes, |entries| {
                entries.iter_mut().for_each(|entry| entry.0 += 3)
            }),
            with_index(&bytes, |entries| {
                let moved = entries[5].0;
                entries.iter_mut().for_each(|entry| entry.0 -= 1);
                entries[5].0 = moved - 200;
            }),
            // Out of order, outside the body, empty path.
            with_index(&bytes, |entries| entries.swap(1, 2)),
            with_index(&bytes, |entries| {
                entries.push((usize::MAX / 2, "/zzz".into()))
            }),
            with_index(&bytes, |entries| entries[0].0 = 0),
            with_index(&bytes, |entries| entries[2].1 = String::new()),
        ];
        for (case, damaged) in damaged.iter().enumerate() {
            assert!(is_damage(damaged, "1"), "case {case}");
            let mut view = view_of_file(damaged);
            // Found or not, never a wrong line; a search that uses a damaged entry
            // finds the damage, and from then on nothing is found.
            for path in cache.folders.keys() {
                if let Some(at) = view.find(path) {
                    assert_eq!(view.path_at(at).unwrap(), *path, "case {case}");
                }
            }
            assert!(view.damage().is_some(), "case {case}");
            assert_eq!(view.find(looked_for), None, "case {case}");
        }
        // The index line cut, not an index, or its length past the file: damage.
        let view = CacheView::open(bytes.clone(), "1").unwrap();
        let index_line = &bytes[view.index_start..view.body_start];
        let rebuilt = |line: &[u8], index_bytes| with_index_line(&bytes, line, Some(index_bytes));
        // A character split between two entries' paths, and bytes that are not UTF-8.
        let mut split_character = br#"{"index":[[1,"/srv/"#.to_vec();
        split_character.push(0xd0);
        split_character.extend_from_slice(br#""],[2,""#);
        split_character.push(0x96);
        split_character.extend_from_slice(b"x\"]]}\n");
        for damaged in [
            rebuilt(&split_character, split_character.len()),
            rebuilt(&index_line[..index_line.len() - 1], index_line.len()),
            rebuilt(br#"{"other":[]}"#, 12),
            rebuilt(b"[1, 2]\n", 7),
            rebuilt(index_line, index_line.len() - 5),
        ] {
            assert!(is_damage(&damaged, "1"));
            let mut view = view_of_file(&damaged);
            assert_eq!(view.find(looked_for), None);
            assert!(view.damage().is_some());
        }
        assert!(is_damage(&rebuilt(index_line, bytes.len()), "1"));
    }

    #[test]
    fn an_assembly_of_carried_and_fresh_folders_is_a_sorted_cache() {
        let cache = sample();
        let bytes = serialize_cache(&cache, "1");
        let mut view = CacheView::open(bytes, "1").unwrap();
        let mut assembly = CacheAssembly::default();
        // What a walk does: a fresh root, the subtree `/srv/a` carried, `/srv/tools`
        // changed, `/srv/a b` gone.
        let mut tools = cache.folders["/srv/tools"].clone();
        tools.files.truncate(1);
        assembly.folder("/srv/tools".into(), tools.clone());
        let range = view.within("/srv/a");
        assembly.carry(&mut view, range);
        assembly.folder("/".into(), cache.folders["/"].clone());
        assembly.folder("/srv".into(), cache.folders["/srv"].clone());
        let header = CacheHeader::default();
        let written = cache_file_bytes(&header, &assembly.body(&mut view).unwrap(), "1");
        let read = parse_cache(&written, "1").unwrap();
        let mut expected = cache.clone();
        expected.folders.remove("/srv/a b");
        expected.folders.insert("/srv/tools".into(), tools);
        assert_eq!(read.folders, expected.folders);
        // Every line carried as it was, in pieces: the body is the last one's, not
        // copied.
        let starts: Vec<usize> = view.lines().into_iter().map(|line| line.start).collect();
        let mut carried = CacheAssembly::default();
        let end = view.end();
        carried.carry(&mut view, starts[2]..end);
        carried.carry(&mut view, starts[0]..starts[2]);
        assert_eq!(carried.body(&mut view), None);
        // Less than every line: a body of what was carried.
        let mut part = CacheAssembly::default();
        part.carry(&mut view, starts[2]..end);
        let body = part.body(&mut view).unwrap();
        assert_eq!(body, view.lines_bytes(starts[2]..end));
        // Written in order: the next scan finds each by binary search.
        let mut reread = CacheView::open(written, "1").unwrap();
        for path in ["/srv/tools", "/srv/a/x", "/"] {
            assert!(reread.find(path).is_some(), "{path}");
        }
    }

    #[test]
    fn paths_order_with_separators_first_and_subtrees_are_found_by_text() {
        assert_eq!(compare_paths("/srv/a/x", "/srv/a b"), Ordering::Less);
        assert_eq!(compare_paths("/srv/a", "/srv/a/x"), Ordering::Less);
        assert_eq!(compare_paths("/srv/b", "/srv/a/x"), Ordering::Greater);
        assert!(is_within("/srv/a/x", "/srv/a"));
        assert!(is_within("/srv/a", "/srv/a"));
        assert!(is_within("/srv", "/"));
        assert!(!is_within("/srv/ab", "/srv/a"));
        assert!(!is_within("/srv", "/srv/a"));
        assert_eq!(split_path("/srv/tg.exe"), Some(("/srv", "tg.exe")));
        assert_eq!(split_path("/tg.exe"), Some(("/", "tg.exe")));
        assert_eq!(split_path("tg.exe"), None);
        assert_eq!(join_path("/", "srv"), "/srv");
        assert_eq!(join_path("/srv", "a"), "/srv/a");
    }

    #[test]
    fn a_folder_listing_that_leads_out_of_its_folder_is_damage() {
        for name in ["..", ".", "", "a/b", "a\\b", "a\u{0}b"] {
            let header = bare_header();
            let name = serde_json::to_string(name).unwrap();
            let listing = format!(
                r#"{{"path":"/srv","listing":{{"modified_ns":1,"folders":[{name}],"candidates":[]}}}}"#
            );
            let file = format!(
                r#"{{"path":"/srv","files":[{{"name":{name},"size":1,"modified_ns":1,"program":null}}]}}"#
            );
            for line in [listing, file] {
                let bytes = format!("{header}\n{line}\n");
                assert!(is_damage(bytes.as_bytes(), "1"), "{name:?}");
                let mut view = CacheView::open(bytes.into_bytes(), "1").unwrap();
                let at = view.find("/srv").unwrap();
                assert!(view.folder(at, "/srv").is_none());
                assert!(matches!(view.damage(), Some(CacheError::Damaged(_))));
                // Damaged, the rest of the cache answers nothing.
                assert_eq!(view.find("/srv"), None);
            }
        }
        // A header alone is an empty cache.
        let empty = bare_header();
        assert_eq!(
            parse_cache(empty.as_bytes(), "1"),
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
        let header_end = bytes.iter().position(|byte| *byte == b'\n').unwrap();
        assert!(is_damage(&bytes[..header_end / 2], "1.2.3"));
        // Cut inside a folder line: that line is damaged.
        assert!(is_damage(&bytes[..bytes.len() - 10], "1.2.3"));
        assert_eq!(
            parse_cache(br#"{"entries": []}"#, "1.2.3"),
            Err(CacheError::NotACache)
        );
        assert!(is_damage(b"\xff\xfe garbage", "1.2.3"));
        let header = bare_header();
        for line in [
            r#"{"path":"","files":[]}"#,
            r#"{"files":[],"path":"/srv"}"#,
            r#"["/srv"]"#,
        ] {
            let bytes = format!("{header}\n{line}\n");
            assert!(is_damage(bytes.as_bytes(), "1"), "{line}");
        }
        let bad_match = format!(
            r#"{{"cache":"{CACHE_MARKER}","agent_version":"1","matched":[{{"path":"","size":1,"modified_ns":1,"program":null}}]}}"#
        );
        assert!(is_damage(bad_match.as_bytes(), "1"));
    }
}
