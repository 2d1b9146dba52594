//! The executable inventory: every program file on the fixed disks, outside the system
//! folders and the folders other sources walk ([`places`] says which), with its PE
//! version resource where it has one, matched against the catalog, so a renamed
//! portable copy is found wherever it sits (`D:\Games\homework.exe` that is Telegram,
//! `/srv/share/Telegram-x64.AppImage`).
//!
//! Programs are `.exe` files (every system: Windows drives, and Wine's programs on
//! Linux) and, on Linux, ELF files and AppImages: files named `*.AppImage`, and files
//! whose name has no extension or a program's (`.bin`, `.run`, `.x86_64`, `.x86`) and
//! that are executable or named in the catalog; a document, picture or library (`.so`)
//! is never opened. Toolchain folders are skipped as in the other walks, and so are
//! folders tagged as caches by the Cache Directory Tagging convention (a
//! `CACHEDIR.TAG` file that starts with its signature, as Cargo's `target` folders
//! and other build caches carry): seen in the listing at no extra cost. An ELF
//! file has no version resource: it matches by its name and path, like the portable-
//! copy walk's. What is read: names, sizes and modification times, the first 16 bytes
//! (the ELF/PE magic), and a PE program's headers and resource section.
//!
//! Bounded: walks do not follow links (no loops), stay off pseudo, network and
//! removable file systems, and share one budget of directory entries and time; past it
//! the inventory stops and says so. Cached: what each file was is remembered by (path,
//! size, modification time) in [`InventoryOptions::cache_file`] (the agent's state
//! folder), so a repeat scan opens only new or changed files; and what each folder
//! held is remembered by its modification time, so a repeat scan lists only the folders
//! whose entries changed ([`cache`]). Folder times are trusted only where the file
//! system keeps them (see [`places::Walk::folder_times_kept`]), not for a folder
//! changed within the last seconds (the time may not have moved yet), and not beyond
//! [`FULL_WALK_EVERY`]: then every folder is listed afresh. A damaged cache, or one of
//! another agent version, is an error entry and is rebuilt.

pub mod cache;
pub mod journal;
pub mod places;
#[cfg(windows)]
pub(crate) mod win32;

use std::collections::HashSet;
use std::ffi::OsString;
use std::hash::{Hash as _, Hasher as _};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sverka_shared::observation::{FileFormat, VersionInfo};
use sverka_shared::{Observation, SourceKind};

use self::cache::{CacheAssembly, CacheHeader, CacheView, CachedFile, CachedFolder, CachedListing};
use self::journal::{ChangeJournal, ChangesSince, Distrust, parse_journal};
use self::places::{Pruned, Walk};
use super::files::{self, Unreadable};
use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::formats::pe;
use crate::scan::fsread::{read_header, read_opened_bounded};

const HEADER_BYTES: usize = 16;
/// How deep below a volume's root the inventory looks.
pub const MAX_DEPTH: usize = 24;
/// How long a cached folder listing may stand in for listing the folder: past it, a
/// scan lists every folder afresh (a file system that does not move a folder's time
/// when an entry is added cannot hide a program longer than this).
pub const FULL_WALK_EVERY: Duration = Duration::from_secs(24 * 3600);
/// A folder changed this recently is listed again next time: its time may not have
/// moved yet for a change made in the same tick (two seconds on FAT).
const SETTLED_AFTER: Duration = Duration::from_secs(3);
/// The file that tags a folder as a cache (https://bford.info/cachedir/), and how it
/// must start.
const CACHE_TAG_NAME: &str = "CACHEDIR.TAG";
const CACHE_TAG_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
/// Extensions of Linux program files (besides none at all).
const LINUX_PROGRAM_EXTENSIONS: &[&str] = &["appimage", "bin", "run", "x86_64", "x86"];

/// How the scan takes the executable inventory (whether it does:
/// [`super::WalkLimits::executable_inventory`]).
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// Where the cache lives; `None`: no cache (every file is read).
    pub cache_file: Option<PathBuf>,
    /// The service's change journal, written for this scan ([`journal`]); `None`: none.
    pub change_journal: Option<PathBuf>,
    /// Directory entries all walks together may visit.
    pub max_entries: u64,
    /// How long all walks together may take.
    pub time_budget: Duration,
}

impl Default for InventoryOptions {
    fn default() -> InventoryOptions {
        InventoryOptions {
            cache_file: None,
            change_journal: None,
            max_entries: 3_000_000,
            time_budget: Duration::from_secs(120),
        }
    }
}

/// What one inventory did, for the log and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryStats {
    pub entries_visited: u64,
    /// Folders listed (read from the disk).
    pub folders_listed: u64,
    /// Folders whose listing came from the cache (unchanged since it was written).
    pub folders_from_cache: u64,
    /// Of those, the folders the change journal vouched for: not even looked at.
    pub folders_unchanged: u64,
    /// Runs of the last cache's lines carried over unread, each a subtree the journal
    /// saw no change in or the untouched subfolders of a folder it did.
    pub kept_runs: u64,
    /// Candidate files whose facts came from the cache.
    pub from_cache: u64,
    /// Candidate files opened and read.
    pub read: u64,
    /// Program files (PE, ELF, AppImage) known.
    pub programs: u64,
    /// Folders skipped as caches (a `CACHEDIR.TAG` with the convention's signature).
    pub cache_folders_skipped: u64,
    /// The Windows drives were taken from the service's change journal.
    pub drives_from_journal: bool,
    /// Microseconds spent reading the last cache (the header alone when it answered).
    pub cache_read_us: u64,
    /// Reads of the last cache's file after its header.
    pub cache_reads: u64,
    /// Microseconds spent assembling and writing the next cache.
    pub cache_write_us: u64,
    /// Bytes written to the cache's files (0: the cache stood as it was).
    pub cache_bytes_written: u64,
}

#[derive(Debug)]
pub struct ExecutableInventorySource;

impl EvidenceSource for ExecutableInventorySource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        if context.limits.executable_inventory {
            let started = Instant::now();
            let cpu_started = crate::scan::thread_time::thread_cpu_time();
            let stats = take_inventory(context, output);
            // The inventory's own work, without its waits for a core (Linux only).
            let cpu_us = crate::scan::thread_time::thread_cpu_time()
                .zip(cpu_started)
                .map(|(now, started)| now.saturating_sub(started).as_micros() as u64);
            tracing::info!(
                entries = stats.entries_visited,
                folders_listed = stats.folders_listed,
                folders_from_cache = stats.folders_from_cache,
                folders_unchanged = stats.folders_unchanged,
                kept_runs = stats.kept_runs,
                programs = stats.programs,
                read = stats.read,
                from_cache = stats.from_cache,
                cache_folders_skipped = stats.cache_folders_skipped,
                drives_from_journal = stats.drives_from_journal,
                cache_read_us = stats.cache_read_us,
                cache_reads = stats.cache_reads,
                cache_write_us = stats.cache_write_us,
                cache_bytes_written = stats.cache_bytes_written,
                inventory_us = started.elapsed().as_micros() as u64,
                inventory_cpu_us = cpu_us,
                "executable inventory"
            );
        }
    }
}

/// Runs the inventory: opens the cache, walks, matches, writes the new cache.
pub fn take_inventory(context: &ScanContext<'_>, output: &mut SourceOutput) -> InventoryStats {
    let options = context.inventory;
    let now = SystemTime::now();
    let now_s = modified_ns(Ok(now)) / 1_000_000_000;
    let journal = options
        .change_journal
        .as_deref()
        .and_then(|file| load_journal(file, output));
    let places::Plan {
        walks,
        pruned,
        drives_from_journal,
    } = places::plan(context, journal.as_ref(), now_s, output);
    let plan = plan_digest(context, &walks, &pruned);
    let reading = Instant::now();
    // The cache is opened once: its header may answer alone; else the walk reads the
    // lines it looks at.
    let opened = options.cache_file.as_deref().map(open_cache);
    if let Some(mut stats) = answer_from_header(
        context,
        (&walks, &pruned, &plan),
        journal.as_ref(),
        opened.as_ref().and_then(|opened| opened.as_ref().ok()),
        now_s,
        output,
    ) {
        stats.drives_from_journal = drives_from_journal;
        return stats;
    }
    let previous = match (options.cache_file.as_deref(), opened) {
        (Some(file), Some(opened)) => load_cache(file, opened, output),
        _ => CacheView::default(),
    };
    let cache_read_us = reading.elapsed().as_micros() as u64;
    // Folder listings are reused until the next full walk is due.
    let full_walk_due = full_walk_due(previous.header().full_walk_at, now_s);
    let changes = journal.as_ref().and_then(|journal| {
        journal
            .changes_since(previous.header().journal.as_ref(), now_s)
            .inspect_err(|distrust| {
                let why = match distrust {
                    Distrust::OtherSession => "the cache was made without it",
                    Distrust::ChangesLost => "changes may have been lost since the cache",
                    Distrust::Stale => "it was written too long ago",
                };
                tracing::info!("executable inventory: the change journal is not used: {why}");
            })
            .ok()
    });
    let settled_before = modified_ns(Ok(now - SETTLED_AFTER));
    let keep_subtrees = previous.header().plan == plan;
    let mut inventory = Inventory {
        context,
        previous,
        next: CacheAssembly::default(),
        matched: Vec::new(),
        keep_subtrees,
        kept: Vec::new(),
        kept_runs: Vec::new(),
        carried_alone: 0,
        walk_starts: walks
            .iter()
            .map(|walk| walk.start.to_string_lossy().into_owned())
            .collect(),
        whole_walks: Vec::new(),
        pruned,
        reuse_folders: !full_walk_due,
        changes,
        settled_before,
        deadline: Instant::now() + options.time_budget,
        stats: InventoryStats {
            drives_from_journal,
            cache_read_us,
            ..InventoryStats::default()
        },
        stopped: None,
        damaged: Unreadable::default(),
        unreadable: Unreadable::default(),
        observations: Vec::new(),
    };
    for walk in &walks {
        if inventory.stopped.is_some() {
            break;
        }
        inventory.walk(walk);
    }
    inventory.carry_kept();
    let stopped = inventory.stopped.is_some();
    let damage = inventory.previous.damage().cloned();
    // A stopped inventory keeps what it did not reach for next time.
    if stopped && damage.is_none() {
        inventory.carry_unreached();
    }
    inventory.report(output);
    let Inventory {
        mut previous,
        next,
        mut matched,
        changes,
        mut stats,
        mut whole_walks,
        kept_runs,
        carried_alone,
        ..
    } = inventory;
    let writing = Instant::now();
    whole_walks.sort();
    if let (Some(file), Some(damage)) = (&options.cache_file, &damage) {
        output.error(
            SourceKind::File,
            Some(file.to_string_lossy().into_owned()),
            format!("executable inventory: {damage}; rebuilt"),
        );
    }
    let Some(file) = &options.cache_file else {
        return stats;
    };
    matched.sort_by(|(left, _), (right, _)| cache::compare_paths(left, right));
    let body = next.body(&mut previous);
    // None: every line carried as it was.
    let same_body = match &body {
        None => true,
        Some(body) => body.as_slice() == previous.body(),
    };
    let last = previous.header().clone();
    let last = &last;
    // The kept subtrees' folders, counted without reading them when the cache stands
    // (its lines are then the kept runs' and those carried one by one).
    let kept_run_count = kept_runs.len() as u64;
    let kept_lines = match &body {
        None => (last.folders as u64).saturating_sub(carried_alone),
        Some(_) => kept_runs
            .into_iter()
            .map(|run| previous.count_lines(run) as u64)
            .sum(),
    };
    stats.folders_unchanged += kept_lines;
    stats.kept_runs = kept_run_count;
    stats.folders_from_cache += kept_lines;
    let full_walk_at = if full_walk_due && !stopped {
        now_s
    } else {
        last.full_walk_at
    };
    // What the walks found, compared as the bytes the cache would hold.
    let found_the_same = !stopped
        && damage.is_none()
        && full_walk_at == last.full_walk_at
        && matched == last.matched
        && same_body;
    // The cache is marked with the journal it now agrees with. A stopped inventory did
    // not look at every folder, so it keeps the mark it had; so does a cache that did
    // not change under a journal that answered for it (not written again: its mark
    // only says which changes to look at, and an older one says more of them).
    let mark = match &journal {
        _ if stopped => last.journal.clone(),
        Some(_) if changes.is_some() && found_the_same => last.journal.clone(),
        Some(journal) => Some(journal.mark()),
        None => None,
    };
    let header = CacheHeader {
        full_walk_at,
        journal: mark,
        plan,
        matched,
        // A stopped inventory's cache is not all of any walk.
        whole_walks: if stopped { Vec::new() } else { whole_walks },
        folders: match &body {
            Some(body) if !same_body => memchr::memchr_iter(b'\n', body).count(),
            _ => last.folders,
        },
    };
    let unchanged = damage.is_none() && header == *last && same_body;
    let on_disk = if unchanged {
        &header.journal
    } else {
        // Every line carried as it was (only the header changed): the lines are read
        // whole before the file is closed, and written from where they were read.
        if body.is_none() {
            previous.body();
        }
        // Windows renames the new cache over the old one only once that is closed.
        previous.close_file();
        let written = match (&body, previous.damage()) {
            (Some(body), _) => write_cache(file, &header, body),
            // Unread, the old lines stay as they are, under the old header.
            (None, Some(damage)) => Err(std::io::Error::other(damage.to_string())),
            (None, None) => write_cache(file, &header, previous.body()),
        };
        match written {
            Ok(written) => {
                stats.cache_bytes_written = written;
                &header.journal
            }
            Err(error) => {
                output.error(
                    SourceKind::File,
                    Some(file.to_string_lossy().into_owned()),
                    format!("executable inventory: cannot write the cache: {error}"),
                );
                &last.journal
            }
        }
    };
    stats.cache_write_us = writing.elapsed().as_micros() as u64;
    stats.cache_reads = previous.file_reads();
    if let (Some(journal_file), Some(journal), Some(mark)) =
        (&options.change_journal, &journal, on_disk)
    {
        tell_watcher_seen(journal_file, journal, mark);
    }
    stats
}

/// Whether the once-a-day full walk is due, the last one made at `last_full_walk`
/// (seconds since 1970; one in the future is due too).
fn full_walk_due(last_full_walk: i64, now_s: i64) -> bool {
    !(0..FULL_WALK_EVERY.as_secs() as i64).contains(&(now_s - last_full_walk))
}

/// Tells the service's change watcher, in the file beside its `journal`, what the
/// cache on disk has seen: it may forget the changes up to that mark (nothing to write
/// when the journal says it was told already).
fn tell_watcher_seen(journal_file: &Path, journal: &ChangeJournal, mark: &journal::JournalMark) {
    if journal.has_seen(mark) {
        return;
    }
    if let Err(error) = std::fs::write(
        journal::seen_file(journal_file),
        journal::serialize_mark(mark),
    ) {
        tracing::debug!("cannot tell the change watcher what the cache has seen: {error}");
    }
}

/// The inventory from the cache's header alone, when the service's journal says
/// nothing changed in or below any walk's start since the cache (apart from folders
/// the walks never enter: the system's, the other sources', the agent's own state),
/// the cache holds each walk whole, and the plan is the same: then every walk would
/// stand as the cache has it, so the programs that matched are matched again and the
/// cache stays as it is, unread. `None`: the scan must walk.
fn answer_from_header(
    context: &ScanContext<'_>,
    (walks, pruned, plan): (&[Walk], &Pruned, &str),
    journal: Option<&ChangeJournal>,
    opened: Option<&OpenedCache>,
    now_s: i64,
    output: &mut SourceOutput,
) -> Option<InventoryStats> {
    let options = context.inventory;
    let (journal_file, journal, opened) = (options.change_journal.as_deref()?, journal?, opened?);
    let line = opened.header_line.strip_suffix(b"\n")?;
    let header = cache::parse_header(line, env!("CARGO_PKG_VERSION")).ok()?;
    if full_walk_due(header.full_walk_at, now_s) || header.plan != plan {
        return None;
    }
    let changes = journal.changes_since(header.journal.as_ref(), now_s).ok()?;
    let mut users = Vec::new();
    for walk in walks {
        let key = walk.start.to_string_lossy().into_owned();
        let whole = header.whole_walks.binary_search(&key).is_ok();
        if !whole || !journal_covers(&changes, walk) {
            return None;
        }
        if changes.touched(&key)
            && changes.folders.iter().any(|folder| {
                walk_enters(
                    &walk.start,
                    Path::new(folder),
                    pruned,
                    context.limits.prune_toolchains,
                )
            })
        {
            return None;
        }
        users.push(KeptRoot::whole(key, walk.user.clone()));
    }
    let users = KeptRoots::new(users);
    let mut stats = InventoryStats {
        folders_unchanged: header.folders as u64,
        folders_from_cache: header.folders as u64,
        ..InventoryStats::default()
    };
    for (path, file) in &header.matched {
        let Some(user) = cache::folder_of(path).and_then(|folder| users.user_of(folder)) else {
            continue;
        };
        if file.program.is_none() {
            continue;
        }
        stats.programs += 1;
        stats.from_cache += 1;
        output
            .observations
            .extend(rematch_cached(context, path, file, user.as_deref()));
    }
    // The cache on disk has seen what it had seen: the watcher may forget that much.
    if let Some(mark) = &header.journal {
        tell_watcher_seen(journal_file, journal, mark);
    }
    Some(stats)
}

/// The observation of the program file at `path` (a path of this machine), when the
/// catalog matches it; `None` when it does not.
fn matched_observation(
    context: &ScanContext<'_>,
    path: &Path,
    file_name: &str,
    format: FileFormat,
    version_info: Option<VersionInfo>,
    user: Option<&str>,
) -> Option<Observation> {
    let observation =
        files::program_observation(context, path, file_name, format, version_info, user);
    (!context.matcher.hits_for(&observation).is_empty()).then_some(observation)
}

/// A program the cache's header says matched, matched again as the cache has it
/// (`None` when it is not a program or no longer matches).
fn rematch_cached(
    context: &ScanContext<'_>,
    path: &str,
    file: &CachedFile,
    user: Option<&str>,
) -> Option<Observation> {
    let local = Path::new(path);
    let file_name = local
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let version_info = file.version_info.clone();
    matched_observation(
        context,
        local,
        &file_name,
        file.program?,
        version_info,
        user,
    )
}

/// Whether the walk from `start` would reach `folder`: it lies in or below `start`
/// and neither it nor a folder between them is one the walks leave out.
fn walk_enters(start: &Path, folder: &Path, pruned: &Pruned, prune_toolchains: bool) -> bool {
    if !folder.starts_with(start) {
        return false;
    }
    folder
        .ancestors()
        .take_while(|above| *above != start)
        .all(|above| {
            !pruned.contains(above)
                && !above
                    .file_name()
                    .is_some_and(|name| files::is_pruned(prune_toolchains, name))
        })
}

/// The cache file, opened, with its length and its first line (its header, bounded).
struct OpenedCache {
    file: std::fs::File,
    length: u64,
    header_line: Vec<u8>,
}

fn open_cache(file: &Path) -> std::io::Result<OpenedCache> {
    use std::io::{BufRead as _, Read as _};
    let (handle, length) = open_own_file(file)?;
    let mut header_line = Vec::new();
    std::io::BufReader::with_capacity(4096, (&handle).take(cache::MAX_CACHE_BYTES))
        .read_until(b'\n', &mut header_line)?;
    Ok(OpenedCache {
        file: handle,
        length,
        header_line,
    })
}

/// One of the agent's own files (the cache, the journal), opened, with its length;
/// an error when it is not a regular file.
fn open_own_file(file: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let handle = std::fs::File::open(file)?;
    #[cfg(windows)]
    let length = win32::disk_file_length(&handle)?;
    #[cfg(not(windows))]
    let length = crate::scan::fsread::regular_file_length(&handle)?;
    Ok((handle, length))
}

/// At most `limit` bytes of one of the agent's own files; whether it was longer.
fn read_own_file(file: &Path, limit: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let (handle, length) = open_own_file(file)?;
    read_opened_bounded(handle, length, limit)
}

/// The cache of the last scan, opened for lookups; a missing one is empty, a bad one
/// an error and empty.
fn load_cache(
    file: &Path,
    opened: std::io::Result<OpenedCache>,
    output: &mut SourceOutput,
) -> CacheView {
    let shown = Some(file.to_string_lossy().into_owned());
    let opened = match opened {
        Ok(opened) if opened.length > cache::MAX_CACHE_BYTES => {
            output.error(
                SourceKind::File,
                shown,
                "executable inventory: cache file too large; rebuilt",
            );
            return CacheView::default();
        }
        Ok(opened) => opened,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return CacheView::default();
        }
        Err(error) => {
            output.error(
                SourceKind::File,
                shown,
                format!("executable inventory: cannot read the cache ({error}); rebuilt"),
            );
            return CacheView::default();
        }
    };
    match CacheView::open_file(
        opened.file,
        opened.length,
        &opened.header_line,
        env!("CARGO_PKG_VERSION"),
    ) {
        Ok(cache) => cache,
        Err(error) => {
            output.error(
                SourceKind::File,
                shown,
                format!("executable inventory: {error}; rebuilt"),
            );
            CacheView::default()
        }
    }
}

/// The service's change journal; a missing one is none, a bad one an error and none.
fn load_journal(file: &Path, output: &mut SourceOutput) -> Option<ChangeJournal> {
    let shown = Some(file.to_string_lossy().into_owned());
    let parsed = match read_own_file(file, journal::MAX_JOURNAL_BYTES) {
        Ok((_, true)) => Err("change journal too large".to_string()),
        Ok((bytes, false)) => parse_journal(&bytes).map_err(|error| error.to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => Err(format!("cannot read the change journal ({error})")),
    };
    parsed
        .map_err(|error| {
            output.error(
                SourceKind::File,
                shown,
                format!("executable inventory: {error}; every folder is checked"),
            )
        })
        .ok()
}

/// Writes the cache through a temporary file and a rename, so a crash leaves the old
/// one or the new one, never half of one.
fn write_cache(file: &Path, header: &CacheHeader, body: &[u8]) -> std::io::Result<u64> {
    let bytes = cache::cache_file_bytes(header, body, env!("CARGO_PKG_VERSION"));
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, &bytes)?;
    std::fs::rename(&temporary, file)?;
    Ok(bytes.len() as u64)
}

/// What the walk knows of a folder's lines in the last cache when it gets to it.
#[derive(Debug)]
enum CacheLines {
    /// Nothing yet: they are looked for.
    Unknown,
    /// The cache holds no line of the folder.
    Absent,
    /// The folder's line, and the run of its subtree.
    Found { at: usize, subtree: Range<usize> },
}

struct Inventory<'a, 'c> {
    context: &'a ScanContext<'c>,
    /// The last scan's cache, read as the walk asks for folders.
    previous: CacheView,
    /// The next cache: folders found afresh, and runs of the last one carried over.
    next: CacheAssembly,
    /// The programs that matched, by path, for the next cache's header.
    matched: Vec<(String, CachedFile)>,
    pruned: Pruned,
    /// Whether cached folder listings may stand in for listing (no full walk is due).
    reuse_folders: bool,
    /// What the change journal says changed since the cache, when it answers for it.
    changes: Option<ChangesSince>,
    /// Whether the cache was made under this scan's plan, so a subtree the journal saw
    /// no change in may stand as the cache has it (its programs' matches included).
    keep_subtrees: bool,
    /// The subtrees so kept, with the user of their walk.
    kept: Vec<KeptRoot>,
    /// The runs of the last cache's lines so kept (counted at the end, read only if
    /// the cache is written).
    kept_runs: Vec<Range<usize>>,
    /// How many of its lines were carried over one by one.
    carried_alone: u64,
    /// Where every walk starts, by the cache's keys.
    walk_starts: Vec<String>,
    /// The walks whose start the next cache holds with its listing.
    whole_walks: Vec<String>,
    /// Folders modified at or after this time (ns since 1970) are not cached.
    settled_before: i64,
    deadline: Instant,
    stats: InventoryStats,
    /// Why the inventory stopped early, if it did.
    stopped: Option<String>,
    damaged: Unreadable,
    unreadable: Unreadable,
    observations: Vec<Observation>,
}

/// What the walk needs to know of a file or folder (without opening it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// A folder, not a link to one.
    pub is_dir: bool,
    /// A file, not a link to one.
    pub is_file: bool,
    pub size: u64,
    /// Nanoseconds since 1970 (negative before; 0 when unknown).
    pub modified_ns: i64,
    /// Has an execute bit (always true on Windows).
    pub executable: bool,
}

impl Facts {
    fn of(metadata: &std::fs::Metadata) -> Facts {
        Facts {
            is_dir: metadata.is_dir(),
            is_file: metadata.is_file(),
            size: metadata.len(),
            modified_ns: modified_ns(metadata.modified()),
            executable: is_executable(metadata),
        }
    }

    /// A path's facts, not following a link (the start of a walk is followed).
    #[cfg(not(windows))]
    fn read(path: &Path, follow: bool) -> std::io::Result<Facts> {
        let metadata = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }?;
        Ok(Facts::of(&metadata))
    }

    /// A path's facts, not following a link. A walk's start on Windows is a drive's
    /// root or a folder of the image, never a link.
    #[cfg(windows)]
    fn read(path: &Path, _follow: bool) -> std::io::Result<Facts> {
        win32::facts(path)
    }
}

/// A folder's subfolders and possible program files.
#[derive(Debug, Default)]
struct Listing {
    folders: Vec<OsString>,
    candidates: Vec<OsString>,
}

impl Listing {
    fn from_cache(cached: &CachedListing) -> Listing {
        let names = |names: &[String]| names.iter().map(OsString::from).collect();
        Listing {
            folders: names(&cached.folders),
            candidates: names(&cached.candidates),
        }
    }

    /// The listing as the cache keeps it; `None` when a name is not Unicode.
    fn to_cache(&self, modified_ns: i64) -> Option<CachedListing> {
        let names = |names: &[OsString]| {
            names
                .iter()
                .map(|name| name.to_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
        };
        Some(CachedListing {
            modified_ns,
            folders: names(&self.folders)?,
            candidates: names(&self.candidates)?,
        })
    }
}

/// What kind of program a file's name says it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// A `.exe`: a Windows program, with a version resource to read.
    WindowsProgram,
    /// A Linux program: read the first bytes if it is executable (an AppImage always).
    LinuxProgram { always: bool },
}

/// What a file's name says it may be; `None` for files never opened.
pub fn candidate(file_name: &str, linux: bool) -> Option<Candidate> {
    // After the last dot but a leading one (`.bashrc` has none); asked of every file a
    // walk meets, so compared in place, not lower-cased into a new string.
    let extension = file_name
        .rfind('.')
        .filter(|at| *at > 0)
        .map(|at| &file_name[at + 1..]);
    match extension {
        Some(extension) if extension.eq_ignore_ascii_case("exe") => Some(Candidate::WindowsProgram),
        _ if !linux => None,
        None => Some(Candidate::LinuxProgram { always: false }),
        Some(extension) if extension.eq_ignore_ascii_case("appimage") => {
            Some(Candidate::LinuxProgram { always: true })
        }
        Some(extension)
            if LINUX_PROGRAM_EXTENSIONS
                .iter()
                .any(|known| extension.eq_ignore_ascii_case(known)) =>
        {
            Some(Candidate::LinuxProgram { always: false })
        }
        Some(_) => None,
    }
}

/// foldhash's seed for the plan digest: any fixed number (a random one would make every
/// scan's plan new).
const PLAN_DIGEST_SEED: u64 = 0x5645_524b_4120_706c;

/// The identity of a scan's plan: the catalog, the walks, the folders left out and the
/// limits. Hashed with foldhash's fixed-seed hash (the cache is of one agent build, and
/// a digest that changes with the build only makes the next scan go through the cache's
/// folders and match their programs again); the catalog as its fields. std's SipHash
/// took three times as long over the catalog, half a quiet scan's work; the catalog's
/// JSON, streamed into the hash, four times as long again.
fn plan_digest(context: &ScanContext<'_>, walks: &[Walk], pruned: &Pruned) -> String {
    use std::hash::BuildHasher;
    let mut hasher = foldhash::fast::FixedState::with_seed(PLAN_DIGEST_SEED).build_hasher();
    context.matcher.catalog().hash(&mut hasher);
    for walk in walks {
        (&walk.start, &walk.user, walk.folder_times_kept).hash(&mut hasher);
    }
    pruned.sorted().hash(&mut hasher);
    (
        context.limits.prune_toolchains,
        context.windows.is_none(),
        MAX_DEPTH,
    )
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A subtree a scan keeps as the cache has it (its programs matched again from the
/// cache's header).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeptRoot {
    /// The folder at its top, as the walk keys folders.
    root: String,
    /// The user of its walk.
    user: Option<String>,
    /// Folders below the root, with theirs, that are not kept: the walk goes into
    /// them, or another walk does.
    without: Vec<String>,
}

impl KeptRoot {
    /// The whole subtree of `root`.
    fn whole(root: String, user: Option<String>) -> KeptRoot {
        KeptRoot {
            root,
            user,
            without: Vec::new(),
        }
    }

    /// Whether `folder`, at or below the root, is kept.
    fn keeps(&self, folder: &str) -> bool {
        !self
            .without
            .iter()
            .any(|walked| cache::is_within(folder, walked))
    }
}

/// The subtrees a scan keeps, in path order.
struct KeptRoots(Vec<KeptRoot>);

impl KeptRoots {
    fn new(mut roots: Vec<KeptRoot>) -> KeptRoots {
        roots.sort_unstable_by(|left, right| left.root.cmp(&right.root));
        KeptRoots(roots)
    }

    /// The user of the kept subtree `folder` lies in, when one keeps it: the nearest
    /// root at or above it decides. By the text of the path, as the walk keys folders:
    /// above `/srv/share` are `/srv` and `/`; above `C:\Data` is `C:\`.
    fn user_of(&self, folder: &str) -> Option<&Option<String>> {
        let separators: &[char] = if cfg!(windows) { &['\\', '/'] } else { &['/'] };
        let get = |above: &str| {
            self.0
                .binary_search_by(|kept| kept.root.as_str().cmp(above))
                .ok()
                .map(|at| &self.0[at])
        };
        let mut end = folder.len();
        let nearest = loop {
            if let Some(kept) = get(&folder[..end]) {
                break kept;
            }
            let at = folder[..end].rfind(separators)?;
            // A root keeps its separator.
            if let Some(kept) = get(&folder[..=at]) {
                break kept;
            }
            if at == 0 {
                return None;
            }
            end = at;
        };
        nearest.keeps(folder).then_some(&nearest.user)
    }
}

/// Whether the change journal speaks for `walk`: its file system is one the watcher
/// watched, and its start is spelled as the watcher names folders (no link or `..`
/// on the way, or the journal's paths would not be the walk's).
#[cfg(unix)]
fn journal_covers(changes: &ChangesSince, walk: &Walk) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let start = walk.start.as_path();
    std::fs::canonicalize(start).is_ok_and(|real| real == start)
        && std::fs::metadata(start).is_ok_and(|metadata| changes.devices.contains(&metadata.dev()))
}

/// Whether the change journal speaks for `walk`: a drive's root (as the watcher and
/// the walks both take them from the drive letters), on a drive the watcher watched,
/// by its serial number.
#[cfg(windows)]
fn journal_covers(changes: &ChangesSince, walk: &Walk) -> bool {
    walk.drive_serial
        .is_some_and(|serial| changes.devices.contains(&serial))
}

#[cfg(not(any(unix, windows)))]
fn journal_covers(_changes: &ChangesSince, _walk: &Walk) -> bool {
    false
}

/// Whether `tag` starts with the Cache Directory Tagging signature.
fn is_tagged_cache(tag: &Path) -> bool {
    read_header(tag, CACHE_TAG_SIGNATURE.len())
        .is_ok_and(|header| header.as_slice() == CACHE_TAG_SIGNATURE)
}

fn modified_ns(modified: std::io::Result<SystemTime>) -> i64 {
    match modified {
        Ok(time) => match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos())
                .map(|nanos| -nanos)
                .unwrap_or(i64::MIN),
        },
        Err(_) => 0,
    }
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    true
}

impl Inventory<'_, '_> {
    fn walk(&mut self, walk: &Walk) {
        // Not `Path::is_dir`: on Windows it opens the folder and asks for its volume's
        // serial number (under Wine eleven trips to its server and mount manager).
        if !Facts::read(&walk.start, true).is_ok_and(|facts| facts.is_dir) {
            return;
        }
        let linux = self.context.windows.is_none();
        let pruned = std::mem::take(&mut self.pruned);
        // The change journal answers for the folders of the file systems it watched.
        let changes = self.changes.take();
        let answering = changes
            .as_ref()
            .filter(|changes| self.reuse_folders && journal_covers(changes, walk));
        self.walk_pruning(walk, linux, &pruned, answering);
        self.changes = changes;
        self.pruned = pruned;
    }

    fn walk_pruning(
        &mut self,
        walk: &Walk,
        linux: bool,
        pruned: &Pruned,
        changes: Option<&ChangesSince>,
    ) {
        let prune_toolchains = self.context.limits.prune_toolchains;
        let matcher = self.context.matcher;
        let reuse_folders = self.reuse_folders && walk.folder_times_kept;
        // Depth first, in name order; a walk does not follow links.
        let mut pending: Vec<(PathBuf, usize, CacheLines)> =
            vec![(walk.start.clone(), 0, CacheLines::Unknown)];
        while let Some((folder, depth, lines)) = pending.pop() {
            if self.over_budget() {
                return;
            }
            let key = folder.to_string_lossy().into_owned();
            let (found_at, known_subtree) = match lines {
                CacheLines::Unknown => (self.previous.find(&key), None),
                CacheLines::Absent => (None, None),
                CacheLines::Found { at, subtree } => (Some(at), Some(subtree)),
            };
            // A folder the journal saw no change in stands as the cache has it, with
            // everything below it but the subfolders it saw a change in or below:
            // its lines are carried over unread (its own read no further than to see
            // that it holds a listing), in runs between those of the subfolders the
            // walk goes into, which are found from its line.
            if let (Some(changes), Some(at)) = (changes, found_at)
                && self.keep_subtrees
                && !changes.changed(&key)
                && self.previous.has_listing(at, &key)
            {
                if depth == 0 {
                    self.whole_walks.push(key.clone());
                }
                let subtree = match known_subtree {
                    Some(subtree) => subtree,
                    None => self.previous.subtree(at, &key),
                };
                let touched = changes.touched_subfolders(&key);
                let mut walked = Vec::with_capacity(touched.len());
                let prunes_below = !touched.is_empty() && pruned.any_below(&folder);
                for name in touched.iter().rev() {
                    let child = folder.join(name);
                    let child_key = child.to_string_lossy().into_owned();
                    let (lines, subtree) = match self.previous.find_below(at, &child_key) {
                        Some(at) => {
                            let subtree = self.previous.subtree(at, &child_key);
                            let lines = CacheLines::Found {
                                at,
                                subtree: subtree.clone(),
                            };
                            (lines, subtree)
                        }
                        None => (CacheLines::Absent, 0..0),
                    };
                    walked.push((child_key, subtree));
                    // A subfolder the walks leave out is not gone into (nor kept).
                    if depth + 1 < MAX_DEPTH
                        && !files::is_pruned(prune_toolchains, name.as_ref())
                        && !(prunes_below && pruned.contains(&child))
                    {
                        pending.push((child, depth + 1, lines));
                    }
                }
                self.keep(key, at, subtree, walked, &walk.user);
                continue;
            }
            let old = found_at.and_then(|at| Some((at, self.previous.folder(at, &key)?)));
            let old_listing = old.as_ref().and_then(|(_, old)| old.listing.as_ref());
            // A folder the journal saw no change in is taken from the cache unseen,
            // and so are the facts of its program files.
            let vouched = changes
                .filter(|changes| !changes.changed(&key))
                .and(old_listing)
                .map(|cached| (cached.modified_ns, Listing::from_cache(cached)));
            let unchanged = vouched.is_some();
            let (modified, cached) = match vouched {
                Some((modified, listing)) => {
                    self.stats.folders_unchanged += 1;
                    (modified, Some(listing))
                }
                None => {
                    let modified = match Facts::read(&folder, depth == 0) {
                        Ok(facts) if facts.is_dir => facts.modified_ns,
                        // Gone or replaced since its parent was listed.
                        Ok(_) => continue,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(error) => {
                            self.unreadable(&folder, &error);
                            continue;
                        }
                    };
                    // Under the journal a folder it names is listed afresh (a change
                    // may leave its time as it was); without, its time decides.
                    let cached = (changes.is_none() && reuse_folders)
                        .then(|| old.as_ref().and_then(|(_, old)| old.listing_at(modified)))
                        .flatten()
                        .map(Listing::from_cache);
                    (modified, cached)
                }
            };
            let listing = match cached {
                Some(listing) => {
                    self.stats.folders_from_cache += 1;
                    self.stats.entries_visited +=
                        (listing.folders.len() + listing.candidates.len()) as u64;
                    listing
                }
                None => match self.list(&folder, linux) {
                    Ok(listing) => listing,
                    Err(error) => {
                        self.unreadable(&folder, &error);
                        continue;
                    }
                },
            };
            // A listing cut short by the budget is neither used nor kept.
            if self.stopped.is_some() {
                return;
            }
            let old_folder = old.as_ref().map(|(_, old)| old);
            let mut files = Vec::new();
            for name in &listing.candidates {
                let file_name = name.to_string_lossy();
                let Some(candidate) = candidate(&file_name, linux) else {
                    continue;
                };
                let path = folder.join(name);
                let known = unchanged
                    .then(|| old_folder.and_then(|old| old.known_file(&file_name)))
                    .flatten();
                let facts = match known {
                    Some(known) => Facts {
                        is_dir: false,
                        is_file: true,
                        size: known.size,
                        modified_ns: known.modified_ns,
                        executable: true,
                    },
                    None => match Facts::read(&path, false) {
                        Ok(facts) => facts,
                        Err(_) => continue,
                    },
                };
                // An extensionless file is opened when it is executable or the catalog
                // asks about its name (a copy on a disk mounted without exec bits).
                if !facts.is_file
                    || facts.size == 0
                    || candidate == (Candidate::LinuxProgram { always: false })
                        && !facts.executable
                        && !matcher.wants_file_name(&file_name)
                {
                    continue;
                }
                let cached =
                    old_folder.and_then(|old| old.file(&file_name, facts.size, facts.modified_ns));
                let file = self.visit(
                    &path,
                    &file_name,
                    candidate,
                    facts,
                    cached,
                    walk.user.as_deref(),
                );
                files.push((file_name.into_owned(), file));
            }
            if depth + 1 < MAX_DEPTH {
                let prunes_below = pruned.any_below(&folder);
                for name in listing.folders.iter().rev() {
                    let child = folder.join(name);
                    if files::is_pruned(prune_toolchains, name)
                        || prunes_below && pruned.contains(&child)
                    {
                        continue;
                    }
                    pending.push((child, depth + 1, CacheLines::Unknown));
                }
            }
            // A folder whose names are not all Unicode, or that changed within the
            // last seconds, is listed again next time (the cache's JSON holds text).
            files.sort_by(|(left, _), (right, _)| left.cmp(right));
            files.dedup_by(|(left, _), (right, _)| left == right);
            let found = CachedFolder {
                listing: (modified < self.settled_before)
                    .then(|| listing.to_cache(modified))
                    .flatten(),
                files,
            };
            if depth == 0 && found.listing.is_some() {
                self.whole_walks.push(key.clone());
            }
            match old {
                // As the cache has it: its line is carried over as it was.
                Some((at, old)) if old == found => {
                    let line = self.previous.line_run(at);
                    self.next.carry(&mut self.previous, line);
                    self.carried_alone += 1;
                }
                _ if found.listing.is_none() && found.files.is_empty() => {}
                _ => self.next.folder(key, found),
            }
        }
    }

    /// Carries the cache's `lines` of the subtree `root` (its line at `at`), but not
    /// those of the folders `walked` (the paths the walk goes into, with their lines),
    /// nor those of another walk that starts below `root` (a Wine prefix's `drive_c`
    /// in a home the walk of `/` leaves out): that walk carries or lists its own. The
    /// programs of what is carried are reported from the cache's header at the end.
    fn keep(
        &mut self,
        root: String,
        at: usize,
        lines: Range<usize>,
        mut walked: Vec<(String, Range<usize>)>,
        user: &Option<String>,
    ) {
        for start in &self.walk_starts {
            if *start != root && cache::is_within(start, &root) {
                walked.push((start.clone(), self.previous.within(start)));
            }
        }
        walked.sort_by_key(|(_, walked)| walked.start);
        let mut pieces = Vec::new();
        let mut from = lines.start;
        for (_, walked) in &walked {
            if walked.start > from {
                pieces.push(from..walked.start.min(lines.end));
            }
            from = from.max(walked.end);
        }
        if from < lines.end {
            pieces.push(from..lines.end);
        }
        for piece in pieces {
            if piece.start == at {
                self.next.carry_found(&self.previous, &root, piece.clone());
            } else {
                self.next.carry(&mut self.previous, piece.clone());
            }
            self.kept_runs.push(piece);
        }
        self.kept.push(KeptRoot {
            root,
            user: user.clone(),
            without: walked.into_iter().map(|(path, _)| path).collect(),
        });
    }

    /// Whether the inventory's budget of entries or time is spent (and says why).
    fn over_budget(&mut self) -> bool {
        if self.stats.entries_visited > self.context.inventory.max_entries {
            self.stopped = Some(format!(
                "after {} directory entries",
                self.context.inventory.max_entries
            ));
        } else if Instant::now() > self.deadline {
            self.stopped = Some(format!(
                "after {} s",
                self.context.inventory.time_budget.as_secs()
            ));
        }
        self.stopped.is_some()
    }

    /// A folder's subfolders and possible program files, read from the disk, in name
    /// order; nothing for a folder tagged as a cache (unless toolchain folders are
    /// walked too), a listing the cache keeps like any other, so a repeat scan does
    /// not look inside either. The budget holds inside a folder too: past it the
    /// listing is partial and `stopped` says why.
    fn list(&mut self, folder: &Path, linux: bool) -> std::io::Result<Listing> {
        self.stats.folders_listed += 1;
        let mut listing = Listing::default();
        let mut cache_tag = false;
        for entry in std::fs::read_dir(folder)? {
            self.stats.entries_visited += 1;
            if (self.stats.entries_visited.is_multiple_of(4096)
                || self.stats.entries_visited > self.context.inventory.max_entries)
                && self.over_budget()
            {
                break;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    self.unreadable(folder, &error);
                    continue;
                }
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            // The name is copied out of the entry once.
            let name = entry.file_name();
            if file_type.is_dir() {
                listing.folders.push(name);
            } else if file_type.is_file() && name == CACHE_TAG_NAME {
                cache_tag = true;
            } else if file_type.is_file() && candidate(&name.to_string_lossy(), linux).is_some() {
                listing.candidates.push(name);
            }
        }
        if cache_tag
            && self.context.limits.prune_toolchains
            && self.stopped.is_none()
            && is_tagged_cache(&folder.join(CACHE_TAG_NAME))
        {
            self.stats.cache_folders_skipped += 1;
            return Ok(Listing::default());
        }
        listing.folders.sort_unstable();
        listing.candidates.sort_unstable();
        Ok(listing)
    }

    fn unreadable(&mut self, path: &Path, error: &std::io::Error) {
        let root = self.context.root;
        self.unreadable
            .add(|| format!("{}: {error}", root.display(path)));
    }

    /// One candidate file: its facts from the cache or from its first bytes, then the
    /// catalog's say.
    fn visit(
        &mut self,
        path: &Path,
        file_name: &str,
        candidate: Candidate,
        facts: Facts,
        cached: Option<&CachedFile>,
        user: Option<&str>,
    ) -> CachedFile {
        let (size, modified) = (facts.size, facts.modified_ns);
        let mut known = match cached {
            Some(cached) => {
                self.stats.from_cache += 1;
                cached.clone()
            }
            None => {
                self.stats.read += 1;
                let (program, version_info) = self.read(path, candidate);
                CachedFile {
                    size,
                    modified_ns: modified,
                    program,
                    version_info,
                    matched: false,
                }
            }
        };
        known.matched = false;
        if let Some(format) = known.program {
            self.stats.programs += 1;
            known.matched = self.observe(path, file_name, format, known.version_info.clone(), user);
            if known.matched {
                self.matched
                    .push((path.to_string_lossy().into_owned(), known.clone()));
            }
        }
        known
    }

    /// What a file is, from its first bytes (and a PE program's version resource).
    fn read(
        &mut self,
        path: &Path,
        candidate: Candidate,
    ) -> (Option<FileFormat>, Option<VersionInfo>) {
        let root = self.context.root;
        match candidate {
            Candidate::WindowsProgram => match pe::read_version_info(path) {
                Ok(info) => (Some(FileFormat::Pe), info),
                // A `.exe` that is not a program at all is simply not one.
                Err(pe::PeError::NotPe) => (None, None),
                Err(error) => {
                    self.damaged
                        .add(|| format!("{}: {error}", root.display(path)));
                    (Some(FileFormat::Pe), None)
                }
            },
            Candidate::LinuxProgram { .. } => match read_header(path, HEADER_BYTES) {
                Ok(header) => (
                    FileFormat::sniff(&header).filter(|format| *format != FileFormat::Pe),
                    None,
                ),
                Err(error) => {
                    self.unreadable
                        .add(|| format!("{}: {error}", root.display(path)));
                    (None, None)
                }
            },
        }
    }

    fn observe(
        &mut self,
        path: &Path,
        file_name: &str,
        format: FileFormat,
        version_info: Option<VersionInfo>,
        user: Option<&str>,
    ) -> bool {
        let observation =
            matched_observation(self.context, path, file_name, format, version_info, user);
        let matched = observation.is_some();
        self.observations.extend(observation);
        matched
    }

    /// Reports the programs that matched in the kept subtrees (matched again: the
    /// catalog is the same, so only those can), from the cache's header; their lines
    /// were carried over as the walk met them.
    fn carry_kept(&mut self) {
        if self.kept.is_empty() {
            return;
        }
        let kept = KeptRoots::new(std::mem::take(&mut self.kept));
        let matched: Vec<(String, CachedFile, Option<String>)> = self
            .previous
            .header()
            .matched
            .iter()
            .filter_map(|(path, file)| {
                let user = kept.user_of(cache::folder_of(path)?)?;
                Some((path.clone(), file.clone(), user.clone()))
            })
            .collect();
        for (path, file, user) in matched {
            if file.program.is_none() {
                continue;
            }
            self.stats.programs += 1;
            self.stats.from_cache += 1;
            // The same catalog matches the same facts, unless the cache was edited.
            if let Some(observation) = rematch_cached(self.context, &path, &file, user.as_deref()) {
                self.observations.push(observation);
                self.matched.push((path, file));
            }
        }
    }

    /// For a stopped inventory: carries the folders of the last cache that this scan
    /// did not reach, with the programs in them that matched, so the next scan still
    /// has them.
    fn carry_unreached(&mut self) {
        let fresh: HashSet<String> = self.next.fresh_paths().map(str::to_string).collect();
        let mut carried: Vec<Range<usize>> = self.next.carried().collect();
        carried.sort_by_key(|lines| lines.start);
        let mut carried = carried.into_iter().peekable();
        let mut unreached = HashSet::new();
        for line in self.previous.lines() {
            // The carried runs are of whole lines and never overlap.
            while carried.next_if(|run| run.end <= line.start).is_some() {}
            if carried.peek().is_some_and(|run| run.contains(&line.start)) {
                continue;
            }
            let Ok(path) = self.previous.path_at(line.start) else {
                continue;
            };
            if !fresh.contains(&path) {
                self.next.carry(&mut self.previous, line);
                self.carried_alone += 1;
                unreached.insert(path);
            }
        }
        let matched = self.previous.header().matched.iter().filter(|(path, _)| {
            cache::folder_of(path).is_some_and(|folder| unreached.contains(folder))
        });
        let matched: Vec<_> = matched.cloned().collect();
        self.matched.extend(matched);
    }

    fn report(&mut self, output: &mut SourceOutput) {
        output.observations.append(&mut self.observations);
        if let Some(reason) = &self.stopped {
            output.error(
                SourceKind::File,
                None,
                format!(
                    "executable inventory stopped {reason}; programs further on were not checked"
                ),
            );
        }
        self.damaged.report(
            output,
            None,
            "executable inventory: ",
            "program(s) had unreadable headers or version information",
        );
        self.unreadable.report(
            output,
            None,
            "executable inventory: ",
            "folder(s) or file(s) could not be read",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::cache::parse_cache;
    use super::*;

    /// The paths of a report's Telegram evidence, in order.
    fn telegram_evidence(report: &sverka_shared::report::ScanReport) -> Vec<String> {
        let mut paths: Vec<String> = report
            .findings
            .iter()
            .filter(|finding| finding.app == "telegram")
            .flat_map(|finding| finding.evidence.iter())
            .filter_map(|evidence| evidence.path.clone())
            .collect();
        paths.sort();
        paths
    }

    /// A system image for the inventory's tests: a temporary folder named by its real
    /// path (as the journal names folders) with an `/etc/passwd` holding `passwd`.
    #[cfg(unix)]
    fn test_image(passwd: &str) -> (tempfile::TempDir, PathBuf) {
        let image = tempfile::tempdir().unwrap();
        let path = std::fs::canonicalize(image.path()).unwrap();
        std::fs::create_dir_all(path.join("etc")).unwrap();
        std::fs::write(path.join("etc/passwd"), passwd).unwrap();
        (image, path)
    }

    /// Sets `folder`'s modification time long ago: settled, so its listing is cached.
    #[cfg(unix)]
    fn settle(folder: &Path) {
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        std::fs::File::open(folder)
            .and_then(|handle| handle.set_modified(long_ago))
            .unwrap();
    }

    /// Folders `share/d0`... (`count` of them), each with a program in its subfolder
    /// `below` (`""`: in itself), Telegram in d7's and a tool in the others', every
    /// folder settled.
    #[cfg(unix)]
    fn share_of_programs(share: &Path, count: usize, below: &str) {
        for index in 0..count {
            let folder = share.join(format!("d{index}"));
            let programs = folder.join(below);
            write_program(&programs.join(if index == 7 {
                "Telegram.AppImage"
            } else {
                "tool"
            }));
            settle(&programs);
            settle(&folder);
        }
    }

    /// Writes a small executable ELF program at `path`, its folders made.
    #[cfg(unix)]
    fn write_program(path: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, [b"\x7fELF\x02\x01\x01".as_slice(), &[0; 57]].concat()).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// An image scanned again and again with the inventory's cache and a change
    /// journal written by hand, as the service's watcher would.
    #[cfg(unix)]
    struct JournalScans {
        image: PathBuf,
        cache_file: PathBuf,
        journal_file: PathBuf,
        device: u64,
        now: i64,
        matcher: sverka_shared::CatalogMatcher,
        _state: tempfile::TempDir,
    }

    #[cfg(unix)]
    impl JournalScans {
        fn new(image: &Path) -> JournalScans {
            use std::os::unix::fs::MetadataExt as _;
            let state = tempfile::tempdir().unwrap();
            JournalScans {
                image: image.to_path_buf(),
                cache_file: state.path().join("executables.json"),
                journal_file: state.path().join("changes.json"),
                device: std::fs::metadata(image).unwrap().dev(),
                now: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
                matcher: sverka_shared::CatalogMatcher::new(
                    sverka_shared::Catalog::builtin().unwrap(),
                ),
                _state: state,
            }
        }

        /// Writes the journal: change number `at`, the folders `changed` at it.
        fn write_journal(&self, at: u64, changed: &[&Path]) {
            let mut journal = ChangeJournal::new("session".into());
            journal.written_at = self.now;
            journal.at = at;
            journal.devices = vec![self.device];
            journal.changed = changed
                .iter()
                .map(|path| journal::ChangedFolder {
                    path: path.to_string_lossy().into_owned(),
                    seq: at,
                })
                .collect();
            std::fs::write(&self.journal_file, journal::serialize_journal(&journal)).unwrap();
        }

        /// One scan with the inventory, the cache and the journal; no errors.
        fn scan(&self) -> sverka_shared::report::ScanReport {
            let report = self.report();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            report
        }

        /// The inventory alone, as a scan takes it, with what it did; no errors.
        fn inventory(&self) -> (InventoryStats, Vec<Observation>) {
            use crate::scan::{ScanRoot, WalkLimits};
            let image = ScanRoot::image(&self.image);
            let profiles = crate::scan::users::discover(&image);
            let options = InventoryOptions {
                cache_file: Some(self.cache_file.clone()),
                change_journal: Some(self.journal_file.clone()),
                ..InventoryOptions::default()
            };
            let context = ScanContext {
                root: &image,
                profiles: &profiles,
                matcher: &self.matcher,
                limits: WalkLimits {
                    executable_inventory: true,
                    ..WalkLimits::default()
                },
                windows: None,
                inventory: &options,
                seen_running: None,
            };
            let mut output = SourceOutput::default();
            let stats = take_inventory(&context, &mut output);
            assert!(output.errors.is_empty(), "{:?}", output.errors);
            (stats, output.observations)
        }

        /// One scan with the inventory, the cache and the journal.
        fn report(&self) -> sverka_shared::report::ScanReport {
            use crate::scan::{ScanOptions, ScanRoot, scan};
            let mut options = ScanOptions {
                inventory: InventoryOptions {
                    cache_file: Some(self.cache_file.clone()),
                    change_journal: Some(self.journal_file.clone()),
                    ..InventoryOptions::default()
                },
                ..ScanOptions::default()
            };
            options.limits.executable_inventory = true;
            let image = ScanRoot::image(&self.image);
            scan(&image, &self.matcher, &options, &|_| {}).report
        }
    }

    #[test]
    fn names_say_which_files_may_be_programs() {
        let windows = Some(Candidate::WindowsProgram);
        let linux = Some(Candidate::LinuxProgram { always: false });
        let app_image = Some(Candidate::LinuxProgram { always: true });
        // (name, on Linux, what it may be). The last dot decides, whatever the case,
        // but a leading one; a name ending in a dot has an empty extension, which no
        // program has.
        let cases = [
            ("tg.EXE", false, windows),
            ("tg.exe", true, windows),
            ("Мессенджер.Exe", false, windows),
            ("notes.txt", false, None),
            ("exe.txt", false, None),
            ("Telegram", false, None),
            ("Telegram", true, linux),
            ("Telegram-x64.AppImage", true, app_image),
            ("setup.run", true, linux),
            ("setup.1.BIN", true, linux),
            ("game.X86_64", true, linux),
            (".hidden", true, linux),
            ("libfoo.so", true, None),
            ("photo.jpg", true, None),
            ("report.tar.gz", true, None),
            ("draft.", true, None),
        ];
        for (name, on_linux, expected) in cases {
            assert_eq!(
                candidate(name, on_linux),
                expected,
                "{name} (Linux: {on_linux})"
            );
        }
    }

    #[test]
    fn the_entry_budget_holds_inside_one_folder_and_keeps_no_partial_listing() {
        use crate::scan::{ScanOptions, ScanRoot, scan};
        use sverka_shared::{Catalog, CatalogMatcher};

        let image = tempfile::tempdir().unwrap();
        let share = image.path().join("srv/share");
        std::fs::create_dir_all(&share).unwrap();
        for index in 0..50 {
            std::fs::write(share.join(format!("file{index}.dat")), b"x").unwrap();
        }
        // Settled long ago, so a complete listing of it would be kept.
        std::fs::File::open(&share)
            .and_then(|folder| {
                folder.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            })
            .unwrap();
        let cache_file = image.path().join("executables.json");
        let options = ScanOptions {
            inventory: InventoryOptions {
                cache_file: Some(cache_file.clone()),
                max_entries: 10,
                ..InventoryOptions::default()
            },
            ..ScanOptions::default()
        };
        let matcher = CatalogMatcher::new(Catalog::builtin().unwrap());
        let outcome = scan(&ScanRoot::image(image.path()), &matcher, &options, &|_| {});
        assert!(
            outcome.report.errors.iter().any(|error| error
                .message
                .contains("executable inventory stopped after 10 directory entries")),
            "{:?}",
            outcome.report.errors
        );
        let cache = std::fs::read(&cache_file).unwrap_or_default();
        let cache = parse_cache(&cache, env!("CARGO_PKG_VERSION")).unwrap_or_default();
        let share_key = share.to_string_lossy().into_owned();
        assert!(!cache.folders.contains_key(&share_key), "{cache:?}");
    }

    #[test]
    fn folders_tagged_as_caches_are_skipped_unless_walking_everything() {
        use crate::scan::{ScanOptions, ScanRoot, scan};
        #[cfg(unix)]
        use std::os::unix::fs::PermissionsExt as _;
        use sverka_shared::{Catalog, CatalogMatcher};

        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("etc")).unwrap();
        std::fs::write(
            image.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        let share = image.path().join("srv/share");
        for (folder, tag) in [
            ("tagged", CACHE_TAG_SIGNATURE.to_vec()),
            // A tag without the signature is any file.
            ("looks-tagged", b"Signature: not this one".to_vec()),
        ] {
            let program = share.join(folder).join("Telegram");
            std::fs::create_dir_all(&program).unwrap();
            let tag = [tag.as_slice(), b"\n# a build cache\n"].concat();
            std::fs::write(share.join(folder).join(CACHE_TAG_NAME), tag).unwrap();
            let elf = [b"\x7fELF\x02\x01\x01".as_slice(), &[0; 57]].concat();
            std::fs::write(program.join("Telegram"), elf).unwrap();
            #[cfg(unix)]
            std::fs::set_permissions(
                program.join("Telegram"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        let matcher = CatalogMatcher::new(Catalog::builtin().unwrap());
        let found = |prune_toolchains: bool| {
            let mut options = ScanOptions::default();
            options.limits.executable_inventory = true;
            options.limits.prune_toolchains = prune_toolchains;
            let outcome = scan(&ScanRoot::image(image.path()), &matcher, &options, &|_| {});
            assert!(
                outcome.report.errors.is_empty(),
                "{:?}",
                outcome.report.errors
            );
            let mut paths = telegram_evidence(&outcome.report);
            paths.retain(|path| path.contains("/srv/share/"));
            paths
        };
        assert_eq!(found(true), ["/srv/share/looks-tagged/Telegram/Telegram"]);
        assert_eq!(
            found(false),
            [
                "/srv/share/looks-tagged/Telegram/Telegram",
                "/srv/share/tagged/Telegram/Telegram"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_change_journal_vouches_for_the_folders_it_saw_no_change_in() {
        let (_image, image_path) = test_image("root:x:0:0::/root:/bin/sh\n");
        let share = image_path.join("srv/share");
        std::fs::create_dir_all(&share).unwrap();
        settle(&share);
        settle(&image_path.join("srv"));
        let scans = JournalScans::new(&image_path);
        let (cache_file, journal_file) = (&scans.cache_file, &scans.journal_file);
        let write_journal = |at: u64, changed: &[&Path]| scans.write_journal(at, changed);
        let scan_once = || {
            let report = scans.scan();
            let cache = std::fs::read(cache_file).unwrap();
            let cache = parse_cache(&cache, env!("CARGO_PKG_VERSION")).unwrap();
            (
                telegram_evidence(&report),
                cache.journal.map(|mark| mark.at),
            )
        };
        let telegram_found = || {
            let (paths, mark) = scan_once();
            (!paths.is_empty(), mark)
        };
        let telegram_paths = || scan_once().0;

        // The first scan has no cache to answer for; it marks the cache it writes.
        write_journal(1, &[]);
        assert_eq!(telegram_found(), (false, Some(1)));
        // A program added where the folder's time says nothing changed.
        let program = share.join("Telegram/Telegram");
        write_program(&program);
        settle(&share);
        // A journal that saw no change there vouches for the cached listing: the
        // folder is not even looked at (nor is the cache written again).
        write_journal(2, &[]);
        assert_eq!(telegram_found(), (false, Some(1)));
        // One that saw the change has the folder listed again.
        write_journal(3, &[&share]);
        assert_eq!(telegram_found(), (true, Some(3)));
        // The watcher is told what the cache on disk has seen, so it may forget it.
        let seen = std::fs::read(journal::seen_file(journal_file)).unwrap();
        assert_eq!(journal::parse_mark(&seen).map(|mark| mark.at), Some(3));
        // Nothing changed anywhere: the whole walk stands as the cache has it, and the
        // program it matched is reported from there (a copy hidden as above is not
        // seen, which shows nothing was looked at).
        let hidden = share.join("Hidden/Telegram/Telegram");
        std::fs::create_dir_all(hidden.parent().unwrap()).unwrap();
        std::fs::copy(&program, &hidden).unwrap();
        settle(&share);
        write_journal(4, &[]);
        let paths = telegram_paths();
        assert_eq!(paths, ["/srv/share/Telegram/Telegram"]);
        std::fs::remove_dir_all(share.join("Hidden")).unwrap();
        settle(&share);
        // A journal that lost changes since the cache answers for nothing: the
        // folders' times do, as without a journal (the program moved to another
        // folder; trusted, the journal would have kept the old listing).
        std::fs::create_dir(share.join("Other")).unwrap();
        std::fs::rename(share.join("Telegram"), share.join("Other/Telegram")).unwrap();
        write_journal(5, &[]);
        let mut lost: ChangeJournal = parse_journal(&std::fs::read(journal_file).unwrap()).unwrap();
        lost.trusted_after = 5;
        std::fs::write(journal_file, journal::serialize_journal(&lost)).unwrap();
        assert_eq!(telegram_found(), (true, Some(5)));
    }

    /// A document saved in a walked folder (a PC in use) has that folder listed again
    /// under the journal, and when its programs are as they were the cache is not
    /// written again: one changed folder costs its listing, not a new cache. A program
    /// saved there is found and written into the cache.
    #[cfg(unix)]
    #[test]
    fn a_document_saved_between_journal_scans_leaves_the_cache_as_it_was() {
        let (_image, image_path) = test_image("root:x:0:0::/root:/bin/sh\n");
        // Many folders beside the one that changes, each holding a program.
        share_of_programs(&image_path.join("srv/share"), 40, "");
        settle(&image_path.join("srv/share"));
        settle(&image_path.join("srv"));
        let scans = JournalScans::new(&image_path);
        scans.write_journal(1, &[]);
        assert_eq!(
            telegram_evidence(&scans.scan()),
            ["/srv/share/d7/Telegram.AppImage"]
        );
        let written = std::fs::read(&scans.cache_file).unwrap();
        let written_at = std::fs::metadata(&scans.cache_file)
            .unwrap()
            .modified()
            .unwrap();

        let documents = image_path.join("srv/share/d3");
        std::fs::write(documents.join("report.txt"), "draft").unwrap();
        settle(&documents);
        scans.write_journal(2, &[&documents]);
        assert_eq!(
            telegram_evidence(&scans.scan()),
            ["/srv/share/d7/Telegram.AppImage"]
        );
        assert!(
            std::fs::read(&scans.cache_file).unwrap() == written,
            "the cache's bytes changed"
        );
        assert_eq!(
            std::fs::metadata(&scans.cache_file)
                .unwrap()
                .modified()
                .unwrap(),
            written_at,
            "the cache was written again"
        );

        // A renamed copy saved there instead: found, and in the next cache.
        let copy = documents.join("Telegram-portable.AppImage");
        write_program(&copy);
        settle(&documents);
        scans.write_journal(3, &[&documents]);
        assert_eq!(
            telegram_evidence(&scans.scan()),
            [
                "/srv/share/d3/Telegram-portable.AppImage",
                "/srv/share/d7/Telegram.AppImage"
            ]
        );
        let cache = parse_cache(
            &std::fs::read(&scans.cache_file).unwrap(),
            env!("CARGO_PKG_VERSION"),
        )
        .unwrap();
        assert!(
            cache
                .lookup(
                    &copy.to_string_lossy(),
                    64,
                    modified_ns(std::fs::metadata(&copy).and_then(|m| m.modified()))
                )
                .is_some()
        );
        assert_eq!(
            cache.folders.len(),
            parse_cache(&written, env!("CARGO_PKG_VERSION"))
                .unwrap()
                .folders
                .len()
        );

        // The daily full walk, due and finding every folder as it was: only the header
        // is new, the folder lines are written again as they were.
        let before = std::fs::read(&scans.cache_file).unwrap();
        let split = |bytes: &[u8]| {
            let end = memchr::memchr(b'\n', bytes).unwrap() + 1;
            (bytes[..end].to_vec(), bytes[end..].to_vec())
        };
        let (header, lines) = split(&before);
        let mut header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        header["full_walk_at"] = serde_json::json!(scans.now - 2 * 86_400);
        let mut due = serde_json::to_vec(&header).unwrap();
        due.push(b'\n');
        due.extend_from_slice(&lines);
        std::fs::write(&scans.cache_file, &due).unwrap();
        scans.write_journal(4, &[]);
        assert_eq!(telegram_evidence(&scans.scan()).len(), 2);
        let (header, after) = split(&std::fs::read(&scans.cache_file).unwrap());
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert!(header["full_walk_at"].as_i64().unwrap() >= scans.now);
        assert!(after == lines, "the folder lines changed");
    }

    /// Below a folder the journal saw a change under, the subfolders it saw none in
    /// are carried as runs of the cache's lines, not looked at one by one, and their
    /// programs are reported from the cache's header; the cache that comes of it is
    /// the one a scan without a cache writes.
    #[cfg(unix)]
    #[test]
    fn the_untouched_subfolders_of_a_touched_folder_are_carried_in_runs() {
        let (_image, image_path) = test_image("root:x:0:0::/root:/bin/sh\n");
        let share = image_path.join("srv/share");
        share_of_programs(&share, 60, "sub");
        for folder in [
            &share,
            &image_path.join("srv"),
            &image_path.join("etc"),
            &image_path,
        ] {
            settle(folder);
        }
        let scans = JournalScans::new(&image_path);
        // The paths of the programs that matched (the tools match nothing).
        let matched = |observations: &[Observation]| -> Vec<String> {
            let mut paths: Vec<String> = observations
                .iter()
                .filter_map(|observation| observation.path.clone())
                .collect();
            paths.sort();
            paths
        };
        scans.write_journal(1, &[]);
        let (first, observations) = scans.inventory();
        assert_eq!(first.kept_runs, 0);
        assert_eq!(
            matched(&observations),
            ["/srv/share/d7/sub/Telegram.AppImage"]
        );

        // A portable copy saved in one subfolder's subfolder.
        let changed = share.join("d31/sub");
        let copy = changed.join("Telegram-portable.AppImage");
        write_program(&copy);
        settle(&changed);
        // The watcher saw a change in d7's too, where nothing new is to be found.
        let seen = share.join("d7/sub");
        scans.write_journal(2, &[&changed, &seen]);
        let (busy, observations) = scans.inventory();
        assert_eq!(
            matched(&observations),
            [
                "/srv/share/d31/sub/Telegram-portable.AppImage",
                "/srv/share/d7/sub/Telegram.AppImage"
            ]
        );
        // Only the changed folders were listed, and d7's program reported once. The
        // rest went over as seven runs of lines: one for each folder on the way down
        // (`/`, `/srv`, the share, d31, d7: its own line, with the subfolders before
        // the first touched one), and the share's subfolders between d31 and d7 and
        // after d7.
        assert_eq!(busy.folders_listed, 2);
        assert_eq!(busy.kept_runs, 7, "{busy:?}");
        assert_eq!(busy.read, 1, "only the new program is read: {busy:?}");
        // Every folder of the walk (`/`, `/srv`, the share, its 120 below) was
        // listed or vouched for.
        assert_eq!(
            busy.folders_unchanged + busy.folders_listed,
            123,
            "{busy:?}"
        );

        // The cache's lines are those of a scan with no cache at all.
        let body = |file: &Path| {
            let bytes = std::fs::read(file).unwrap();
            let start = memchr::memchr(b'\n', &bytes).unwrap() + 1;
            bytes[start..].to_vec()
        };
        let fresh = JournalScans::new(&image_path);
        fresh.write_journal(1, &[]);
        fresh.inventory();
        assert!(
            body(&scans.cache_file) == body(&fresh.cache_file),
            "the carried cache differs from a fresh one"
        );
    }

    /// A new catalog (the collector sends one) is a new plan: the next scan matches
    /// every program again, though the journal saw no change and the cache's header
    /// alone would otherwise answer. The same catalog again lets the header answer.
    #[cfg(unix)]
    #[test]
    fn a_new_catalog_matches_every_cached_program_again_under_a_quiet_journal() {
        let (_image, image_path) = test_image("root:x:0:0::/root:/bin/sh\n");
        let folder = image_path.join("srv/tools");
        write_program(&folder.join("chatty"));
        settle(&folder);
        settle(&image_path.join("srv"));
        let mut scans = JournalScans::new(&image_path);
        let chatty_paths = |report: &sverka_shared::report::ScanReport| -> Vec<String> {
            report
                .findings
                .iter()
                .filter(|finding| finding.app == "chatty")
                .flat_map(|finding| finding.evidence.iter())
                .filter_map(|evidence| evidence.path.clone())
                .collect()
        };
        scans.write_journal(1, &[]);
        assert!(chatty_paths(&scans.scan()).is_empty());
        scans.write_journal(2, &[]);
        assert!(chatty_paths(&scans.scan()).is_empty());

        let mut catalog = sverka_shared::Catalog::builtin().unwrap();
        let mut chatty = catalog.apps[0].clone();
        chatty.id = "chatty".into();
        chatty.name = "Chatty".into();
        chatty.signatures = sverka_shared::catalog::Signatures {
            files: vec!["chatty".into()],
            ..Default::default()
        };
        catalog.apps.push(chatty);
        scans.matcher = sverka_shared::CatalogMatcher::new(catalog);
        scans.write_journal(3, &[]);
        assert_eq!(chatty_paths(&scans.scan()), ["/srv/tools/chatty"]);
        // The same catalog again: the header's matched programs answer.
        scans.write_journal(4, &[]);
        assert_eq!(chatty_paths(&scans.scan()), ["/srv/tools/chatty"]);
    }

    /// A walk of `/` kept whole does not carry the folders of a Wine prefix's walk in
    /// a home it leaves out: that walk keeps or lists its own, and every folder is in
    /// the next cache once, in order.
    #[cfg(unix)]
    #[test]
    fn a_kept_walk_leaves_the_walks_below_it_their_own_folders() {
        let (_image, image_path) = test_image("anna:x:1000:1000::/home/anna:/bin/sh\n");
        let add_program = |path: &str| write_program(&image_path.join(path));
        add_program("srv/share/Telegram/Telegram");
        add_program("home/anna/.wine/drive_c/Tools/Telegram/Telegram");
        // Every folder settled long ago, so its listing is kept and may stand.
        let settle_all = || {
            let mut folders = vec![image_path.clone()];
            while let Some(folder) = folders.pop() {
                for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                    if entry.file_type().unwrap().is_dir() {
                        folders.push(entry.path());
                    }
                }
                settle(&folder);
            }
        };
        settle_all();
        let scans = JournalScans::new(&image_path);
        let write_journal = |at: u64, changed: &[&Path]| scans.write_journal(at, changed);
        let scan_once = || {
            let mut paths = telegram_evidence(&scans.scan());
            paths.retain(|path| path.ends_with("/Telegram"));
            // Every folder once, in the cache's order.
            let text = std::fs::read_to_string(&scans.cache_file).unwrap();
            let folders: Vec<String> = text
                .lines()
                .skip(1)
                .map(|line| {
                    let folder: serde_json::Value = serde_json::from_str(line).unwrap();
                    folder["path"].as_str().unwrap().to_string()
                })
                .collect();
            for pair in folders.windows(2) {
                assert_eq!(
                    cache::compare_paths(&pair[0], &pair[1]),
                    std::cmp::Ordering::Less,
                    "{folders:#?}"
                );
            }
            paths
        };
        let found = [
            "/home/anna/.wine/drive_c/Tools/Telegram/Telegram",
            "/srv/share/Telegram/Telegram",
        ];
        write_journal(1, &[]);
        assert_eq!(scan_once(), found);
        // Nothing changed: both walks stand as the cache has them.
        write_journal(2, &[]);
        assert_eq!(scan_once(), found);
        // A change in the prefix: the walk of `/` is kept whole, the prefix's walk
        // lists the folder that changed.
        add_program("home/anna/.wine/drive_c/Tools/Other/Telegram/Telegram");
        settle_all();
        let tools = image_path.join("home/anna/.wine/drive_c/Tools");
        write_journal(3, &[&tools]);
        assert_eq!(
            scan_once(),
            [
                "/home/anna/.wine/drive_c/Tools/Other/Telegram/Telegram",
                found[0],
                found[1]
            ]
        );
        write_journal(4, &[]);
        assert_eq!(scan_once().len(), 3);

        // Nothing changed below any walk's start: the cache's header alone answers,
        // its folders' lines are not read (a damaged one is not noticed)...
        let text = std::fs::read_to_string(&scans.cache_file).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = r#"{"path":"damaged"#;
        std::fs::write(&scans.cache_file, lines.join("\n")).unwrap();
        write_journal(5, &[]);
        let mut paths = telegram_evidence(&scans.scan());
        paths.retain(|path| path.ends_with("/Telegram"));
        assert_eq!(paths.len(), 3, "{paths:?}");
        // Changes only in folders the walks never enter (the system's, the prefix's
        // Windows folder) leave the header answering.
        let log = image_path.join("var/log/journal");
        let prefix_windows = image_path.join("home/anna/.wine/drive_c/windows/system32");
        write_journal(6, &[&log, &prefix_windows]);
        let mut paths = telegram_evidence(&scans.scan());
        paths.retain(|path| path.ends_with("/Telegram"));
        assert_eq!(paths.len(), 3, "{paths:?}");
        // ...until a change sends the scan into the walk: then it is, and rebuilt.
        write_journal(7, &[&tools]);
        let report = scans.report();
        assert!(
            report
                .errors
                .iter()
                .any(|error| error.message.contains("damaged cache file")),
            "{:?}",
            report.errors
        );
        assert_eq!(telegram_evidence(&report).len(), 3);
        write_journal(8, &[]);
        assert_eq!(scan_once().len(), 3);
    }

    #[test]
    fn a_kept_subtree_is_found_from_any_folder_below_it_but_those_left_out() {
        let anna = Some("anna".to_string());
        let kept = KeptRoots::new(vec![
            KeptRoot::whole("/srv/share".to_string(), anna.clone()),
            KeptRoot::whole("/".to_string(), None),
        ]);
        assert_eq!(kept.user_of("/srv/share/a"), Some(&anna));
        assert_eq!(kept.user_of("/srv/share"), Some(&anna));
        assert_eq!(kept.user_of("/srv/shared"), Some(&None));
        let only_share = KeptRoots::new(vec![KeptRoot::whole("/srv/share".to_string(), None)]);
        assert_eq!(only_share.user_of("/srv/shared"), None);
        assert_eq!(only_share.user_of("/srv"), None);
        assert_eq!(only_share.user_of(""), None);

        // `/srv` without `/srv/share`, which the walk goes into, and below that a
        // folder kept whole.
        let around = KeptRoots::new(vec![
            KeptRoot::whole("/srv/share/old".to_string(), anna.clone()),
            KeptRoot {
                root: "/srv".to_string(),
                user: None,
                without: vec!["/srv/share".to_string(), "/srv/wine/drive_c".to_string()],
            },
        ]);
        assert_eq!(around.user_of("/srv/data/deep"), Some(&None));
        assert_eq!(around.user_of("/srv/shared"), Some(&None));
        assert_eq!(around.user_of("/srv/wine"), Some(&None));
        assert_eq!(around.user_of("/srv"), Some(&None));
        assert_eq!(around.user_of("/srv/share"), None);
        assert_eq!(around.user_of("/srv/share/new"), None);
        assert_eq!(around.user_of("/srv/wine/drive_c/Tools"), None);
        assert_eq!(around.user_of("/srv/share/old/a"), Some(&anna));
    }

    #[test]
    fn modification_times_before_1970_stay_negative() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(2);
        assert_eq!(modified_ns(Ok(before)), -2_000_000_000);
        let after = SystemTime::UNIX_EPOCH + Duration::from_nanos(5);
        assert_eq!(modified_ns(Ok(after)), 5);
    }
}
