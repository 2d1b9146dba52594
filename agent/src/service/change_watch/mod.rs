//! The service's change watcher: while the service waits between scans, it learns
//! from the kernel which folders changed, so that the next scan's executable inventory
//! neither lists nor looks at a folder that did not (see
//! [`crate::scan::sources::executables::journal`] for what the journal promises and
//! when a scan trusts it).
//!
//! On Linux it is fanotify with a mark on each watched file system
//! (`FAN_MARK_FILESYSTEM`, Linux 4.20) that reports the folder of each event as a
//! file handle (`FAN_REPORT_DFID_NAME`, Linux 5.9): one mark per file system, however
//! many folders it has, and nothing of the files' contents. It needs the service's
//! root rights (`CAP_SYS_ADMIN`). Where the kernel is older, the rights are missing
//! or the file system cannot report handles, there is no watcher for it, and the
//! scans check every folder's time as before.
//!
//! On Windows it is `ReadDirectoryChangesW` on each fixed drive's root with its whole
//! subtree, a thread per drive; each change names its entry's path under the drive,
//! so the folder is known at once (a short 8.3 name is made long before the journal
//! is written). A change Windows has recorded but the thread not yet read when a
//! journal is written carries a later number: the next scan, not this one, looks at
//! that folder.
//!
//! A thread reads the events as they come (the kernel's queue holds 16,384; an
//! overflow is a loss the journal records, not a silent gap) and numbers each batch.
//! Just before a scan, [`ChangeWatcher::write_journal`] reads what the kernel has
//! queued, names each changed folder by its path, and writes the journal.

pub mod events;
#[cfg(target_os = "linux")]
mod fanotify;
pub mod notify;
#[cfg(windows)]
mod windows;

use std::collections::HashMap;
use std::hash::Hash;
#[cfg(not(any(target_os = "linux", windows)))]
use std::path::{Path, PathBuf};

use crate::scan::sources::executables::journal::{
    ChangeJournal, ChangedFolder, JournalDrive, MAX_JOURNAL_FOLDERS,
};

use self::events::{EventBatch, FolderHandle};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the change watcher needs Linux 5.9 or later and root rights: {0}")]
    Unsupported(String),
    #[error("no change watcher on this system yet")]
    NotOnThisSystem,
    #[error("no file system could be watched ({0})")]
    NothingWatched(String),
    #[error("cannot start the change watcher's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the watcher knows: each changed folder's last change number, and since when
/// that is complete. Pure; fed by the platform's reader, which names a folder its own
/// way (a file handle on Linux, a path on Windows).
#[derive(Debug)]
pub struct JournalState<Folder = FolderHandle> {
    session: String,
    /// The last batch's number.
    seq: u64,
    /// Changes up to this number may have been lost.
    trusted_after: u64,
    folders: HashMap<Folder, u64>,
    devices: Vec<u64>,
    max_folders: usize,
    /// The highest mark of this session a scan said its cache has seen.
    seen: Option<u64>,
    /// Windows: the drive letters in use and the fixed drives when it started.
    drive_letters: u32,
    drives: Vec<JournalDrive>,
}

impl JournalState<FolderHandle> {
    /// Records one batch of fanotify events under a new number.
    pub fn record(&mut self, batch: &EventBatch) {
        self.record_folders(&batch.folders, batch.lost);
    }
}

impl<Folder: Hash + Eq + Clone> JournalState<Folder> {
    pub fn new(session: String, devices: Vec<u64>) -> JournalState<Folder> {
        JournalState {
            session,
            seq: 0,
            trusted_after: 0,
            folders: HashMap::new(),
            devices,
            max_folders: MAX_JOURNAL_FOLDERS,
            seen: None,
            drive_letters: 0,
            drives: Vec::new(),
        }
    }

    /// The same, with the drive letters in use and the fixed drives found when it
    /// started (Windows), which each journal passes on to the scans.
    pub fn with_drives(
        mut self,
        drive_letters: u32,
        drives: Vec<JournalDrive>,
    ) -> JournalState<Folder> {
        self.drive_letters = drive_letters;
        self.drives = drives;
        self
    }

    /// The same, holding at most `max_folders` folders (tests).
    pub fn with_max_folders(mut self, max_folders: usize) -> JournalState<Folder> {
        self.max_folders = max_folders;
        self
    }

    /// Records one batch of changes under a new number: the folders they happened in,
    /// and whether changes were lost before them.
    pub fn record_folders(&mut self, folders: &[Folder], lost: bool) {
        self.seq += 1;
        if lost {
            self.lose();
        }
        for folder in folders {
            if self.folders.len() >= self.max_folders && !self.folders.contains_key(folder) {
                self.lose();
            }
            self.folders.insert(folder.clone(), self.seq);
        }
    }

    /// Forgets the changes up to `at` of this session: the cache on disk has seen them,
    /// and no later scan asks about them (its cache's mark is at least `at`).
    pub fn forget_through(&mut self, session: &str, at: u64) {
        if session == self.session && at <= self.seq {
            self.folders.retain(|_, seq| *seq > at);
            self.seen = self.seen.max(Some(at));
        }
    }

    /// The file system `device` is no longer watched: the journal stops speaking for
    /// it (its walks go by folder times again).
    pub fn stop_covering(&mut self, device: u64) {
        self.devices.retain(|watched| *watched != device);
    }

    /// Changes may have been lost: whatever was known is dropped, and only caches made
    /// from now on are answered for.
    pub fn lose(&mut self) {
        self.folders.clear();
        self.trusted_after = self.seq;
    }

    /// The journal as of now, each folder named by `resolve`. A folder that has no
    /// path any more is left out (its parent changed too, when it went); one that
    /// cannot be named is a change the journal cannot place, so it answers for no
    /// cache made before now.
    pub fn journal(
        &mut self,
        written_at: i64,
        mut resolve: impl FnMut(&Folder) -> Named,
    ) -> ChangeJournal {
        let mut by_path: HashMap<String, u64> = HashMap::new();
        let mut unplaced = false;
        for (folder, seq) in &self.folders {
            match resolve(folder) {
                Named::Path(path) => {
                    let known = by_path.entry(path).or_default();
                    *known = (*known).max(*seq);
                }
                Named::Gone => {}
                Named::Unknown => unplaced = true,
            }
        }
        if unplaced {
            tracing::info!(
                "a changed folder could not be named: the next scan checks every folder"
            );
            self.trusted_after = self.seq;
        }
        let mut journal = ChangeJournal::new(self.session.clone());
        journal.written_at = written_at;
        journal.at = self.seq;
        journal.trusted_after = self.trusted_after;
        journal.devices = self.devices.clone();
        journal.seen = self.seen;
        journal.drive_letters = self.drive_letters;
        journal.drives = self.drives.clone();
        journal.changed = by_path
            .into_iter()
            .map(|(path, seq)| ChangedFolder { path, seq })
            .collect();
        journal
    }
}

/// What a folder's handle names now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Path(String),
    /// It was deleted.
    Gone,
    /// It cannot be told (another file system, a handle the kernel no longer takes).
    Unknown,
}

#[cfg(target_os = "linux")]
pub use self::linux::ChangeWatcher;
#[cfg(windows)]
pub use self::on_windows::ChangeWatcher;

/// No watcher on this system: scans check every folder's time.
#[cfg(not(any(target_os = "linux", windows)))]
#[derive(Debug)]
pub struct ChangeWatcher;

#[cfg(not(any(target_os = "linux", windows)))]
impl ChangeWatcher {
    pub fn start(_places: &[PathBuf]) -> Result<ChangeWatcher, WatchError> {
        Err(WatchError::NotOnThisSystem)
    }

    pub fn write_journal(&self, _file: &Path) -> std::io::Result<()> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub fn forget_seen(&self, _file: &Path) {}
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::fanotify::{Fanotify, READ_BUFFER_BYTES};
    use super::{JournalState, WatchError, lock, now_seconds, take_seen_mark, write_journal_file};

    /// How long the reading thread waits for events before it looks at the stop flag.
    const WAIT: Duration = Duration::from_millis(500);

    struct Shared {
        source: Fanotify,
        state: Mutex<JournalState>,
        stop: AtomicBool,
    }

    /// A running watcher; dropping it stops its thread.
    pub struct ChangeWatcher {
        shared: Arc<Shared>,
        thread: Option<JoinHandle<()>>,
    }

    impl ChangeWatcher {
        /// Watches the file systems of `places` (those that can be watched; the rest
        /// are named in the log).
        pub fn start(places: &[PathBuf]) -> Result<ChangeWatcher, WatchError> {
            let source = Fanotify::watch(places)?;
            let session = uuid::Uuid::now_v7().to_string();
            let state = JournalState::new(session, source.devices());
            let shared = Arc::new(Shared {
                source,
                state: Mutex::new(state),
                stop: AtomicBool::new(false),
            });
            let reader = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("change watcher".into())
                .spawn(move || {
                    let mut buffer = vec![0_u8; READ_BUFFER_BYTES];
                    while !reader.stop.load(Ordering::Relaxed) {
                        if reader.source.wait(WAIT) {
                            drain(&reader.source, &mut lock(&reader.state), &mut buffer);
                        }
                    }
                })
                .map_err(WatchError::Thread)?;
            Ok(ChangeWatcher {
                shared,
                thread: Some(thread),
            })
        }

        /// Forgets what the scan's cache has seen, as the scan wrote it beside the
        /// journal `file` (nothing when it wrote nothing).
        pub fn forget_seen(&self, file: &Path) {
            if let Some(mark) = take_seen_mark(file) {
                lock(&self.shared.state).forget_through(&mark.session, mark.at);
            }
        }

        /// Reads every change the kernel has queued and writes the journal to `file`.
        pub fn write_journal(&self, file: &Path) -> std::io::Result<()> {
            let journal = {
                let mut state = lock(&self.shared.state);
                drain(
                    &self.shared.source,
                    &mut state,
                    &mut vec![0_u8; READ_BUFFER_BYTES],
                );
                state.journal(now_seconds(), |folder| self.shared.source.path_of(folder))
            };
            write_journal_file(file, &journal)
        }
    }

    impl std::fmt::Debug for ChangeWatcher {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter
                .debug_struct("ChangeWatcher")
                .finish_non_exhaustive()
        }
    }

    impl Drop for ChangeWatcher {
        fn drop(&mut self) {
            self.shared.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Reads until the kernel's queue is empty.
    fn drain(source: &Fanotify, state: &mut JournalState, buffer: &mut [u8]) {
        loop {
            match source.read_batch(buffer) {
                Ok(Some(batch)) => state.record(&batch),
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!("the change watcher cannot read its events: {error}");
                    state.lose();
                    return;
                }
            }
        }
    }
}

/// The seconds since 1970 a journal is stamped with.
#[cfg(any(target_os = "linux", windows))]
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs() as i64)
        .unwrap_or(0)
}

/// What the scan's cache has seen, as the scan wrote it beside the journal `file`
/// (removed once read; `None` when it wrote nothing).
#[cfg(any(target_os = "linux", windows))]
fn take_seen_mark(
    file: &std::path::Path,
) -> Option<crate::scan::sources::executables::journal::JournalMark> {
    use crate::scan::fsread::read_bounded;
    use crate::scan::sources::executables::journal::{parse_mark, seen_file};
    let seen = seen_file(file);
    let mark = read_bounded(&seen, 4096)
        .ok()
        .and_then(|(bytes, _)| parse_mark(&bytes));
    let _ = std::fs::remove_file(&seen);
    mark
}

/// Writes `journal` to `file` for the scan about to start.
#[cfg(any(target_os = "linux", windows))]
fn write_journal_file(file: &std::path::Path, journal: &ChangeJournal) -> std::io::Result<()> {
    tracing::debug!(
        at = journal.at,
        changed = journal.changed.len(),
        "change journal written"
    );
    crate::delivery::fswrite::write_atomic(
        file,
        &crate::scan::sources::executables::journal::serialize_journal(journal),
    )
}

/// The watcher's state behind its lock; a panic while holding it leaves plain data
/// behind, so it goes on with it.
#[cfg(any(target_os = "linux", windows))]
fn lock<Folder>(
    state: &std::sync::Mutex<JournalState<Folder>>,
) -> std::sync::MutexGuard<'_, JournalState<Folder>> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(windows)]
mod on_windows {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::windows::{DirectoryWatch, name_folder};
    use super::{JournalState, WatchError, lock, now_seconds, take_seen_mark, write_journal_file};
    use crate::scan::sources::executables::places::live_fixed_drives;

    /// How long a reading thread waits for changes before it looks at the stop flag.
    const WAIT: Duration = Duration::from_millis(500);

    #[derive(Debug)]
    struct Shared {
        state: Mutex<JournalState<String>>,
        stop: AtomicBool,
    }

    /// A running watcher, a thread per watched drive; dropping it stops them.
    #[derive(Debug)]
    pub struct ChangeWatcher {
        shared: Arc<Shared>,
        threads: Vec<JoinHandle<()>>,
    }

    impl ChangeWatcher {
        /// Watches the drives `places` (their roots; those that cannot be watched are
        /// named in the log). The journals pass on the fixed drives found now, when
        /// each has a serial number, so the scans need not ask for them again.
        pub fn start(places: &[PathBuf]) -> Result<ChangeWatcher, WatchError> {
            let (drive_letters, drives) = live_fixed_drives();
            let serial_of = |place: &PathBuf| {
                drives
                    .iter()
                    .find(|drive| drive.mount_point == *place)
                    .and_then(|drive| drive.serial)
            };
            let mut watches = Vec::new();
            let mut devices = Vec::new();
            let mut refused = Vec::new();
            for place in places {
                match (DirectoryWatch::open(place), serial_of(place)) {
                    (Ok(watch), Some(serial)) => {
                        watches.push((watch, serial));
                        devices.push(serial);
                    }
                    (Err(error), _) => refused.push(format!("{}: {error}", place.display())),
                    (Ok(_), None) => refused.push(format!("{}: no serial number", place.display())),
                }
            }
            for refusal in &refused {
                tracing::info!("the change watcher does not watch {refusal}");
            }
            if watches.is_empty() {
                return Err(WatchError::NothingWatched(refused.join("; ")));
            }
            let mut state = JournalState::new(uuid::Uuid::now_v7().to_string(), devices);
            // A drive without a serial number cannot be vouched for: then none are.
            if let Some(journal_drives) = drives.iter().map(|drive| drive.to_journal()).collect() {
                state = state.with_drives(drive_letters, journal_drives);
            }
            let shared = Arc::new(Shared {
                state: Mutex::new(state),
                stop: AtomicBool::new(false),
            });
            let mut threads = Vec::new();
            for (mut watch, serial) in watches {
                let reader = Arc::clone(&shared);
                let thread = std::thread::Builder::new()
                    .name("change watcher".into())
                    .spawn(move || {
                        while !reader.stop.load(Ordering::Relaxed) {
                            match watch.wait(WAIT) {
                                Ok(Some(batch)) => {
                                    lock(&reader.state).record_folders(&batch.folders, batch.lost)
                                }
                                Ok(None) => {}
                                Err(error) => {
                                    tracing::warn!(
                                        "the change watcher cannot read the changes of a drive ({error}); that drive's scans check every folder"
                                    );
                                    lock(&reader.state).stop_covering(serial);
                                    return;
                                }
                            }
                        }
                    });
                match thread {
                    Ok(thread) => threads.push(thread),
                    Err(error) => {
                        // Stop the threads already started (dropping the watcher does).
                        drop(ChangeWatcher { shared, threads });
                        return Err(WatchError::Thread(error));
                    }
                }
            }
            Ok(ChangeWatcher { shared, threads })
        }

        /// Forgets what the scan's cache has seen, as the scan wrote it beside the
        /// journal `file` (nothing when it wrote nothing).
        pub fn forget_seen(&self, file: &Path) {
            if let Some(mark) = take_seen_mark(file) {
                lock(&self.shared.state).forget_through(&mark.session, mark.at);
            }
        }

        /// Writes the journal of the changes read so far to `file`.
        pub fn write_journal(&self, file: &Path) -> std::io::Result<()> {
            let journal =
                lock(&self.shared.state).journal(now_seconds(), |folder| name_folder(folder));
            write_journal_file(file, &journal)
        }
    }

    impl Drop for ChangeWatcher {
        fn drop(&mut self) {
            self.shared.stop.store(true, Ordering::Relaxed);
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(byte: u8) -> FolderHandle {
        FolderHandle {
            fsid: [0; 8],
            handle_type: 1,
            handle: vec![byte],
        }
    }

    fn batch(folders: &[u8], lost: bool) -> EventBatch {
        EventBatch {
            folders: folders.iter().map(|byte| folder(*byte)).collect(),
            lost,
            descriptors: Vec::new(),
        }
    }

    fn path_of(folder: &FolderHandle) -> Named {
        match folder.handle[0] {
            9 => Named::Gone,
            8 => Named::Unknown,
            byte => Named::Path(format!("/srv/{byte}")),
        }
    }

    use crate::scan::sources::executables::journal::serialize_journal;

    fn changed(journal: &ChangeJournal) -> Vec<(String, u64)> {
        let mut changed: Vec<(String, u64)> = journal
            .changed
            .iter()
            .map(|folder| (folder.path.clone(), folder.seq))
            .collect();
        changed.sort();
        changed
    }

    #[test]
    fn each_folder_carries_its_last_changes_number() {
        let mut state = JournalState::new("s".into(), vec![7]);
        state.record(&batch(&[1, 2], false));
        state.record(&batch(&[1, 9], false));
        let journal = state.journal(100, path_of);
        assert_eq!(
            changed(&journal),
            vec![("/srv/1".into(), 2), ("/srv/2".into(), 1)]
        );
        assert_eq!(
            (journal.at, journal.trusted_after, journal.devices.clone()),
            (2, 0, vec![7])
        );
        // What it writes, a scan reads.
        let bytes = serialize_journal(&journal);
        let read = crate::scan::sources::executables::journal::parse_journal(&bytes).unwrap();
        assert_eq!(read.at, 2);
    }

    #[test]
    fn a_loss_or_too_many_folders_distrusts_what_came_before() {
        let mut state = JournalState::new("s".into(), vec![7]);
        state.record(&batch(&[1], false));
        state.record(&batch(&[2], true));
        let journal = state.journal(100, path_of);
        assert_eq!(changed(&journal), vec![("/srv/2".into(), 2)]);
        assert_eq!(journal.trusted_after, 2);

        let mut small = JournalState::new("s".into(), vec![7]).with_max_folders(2);
        small.record(&batch(&[1, 2], false));
        small.record(&batch(&[2], false));
        assert_eq!(small.journal(100, path_of).trusted_after, 0);
        small.record(&batch(&[3], false));
        let journal = small.journal(100, path_of);
        assert_eq!(journal.trusted_after, 3);
        assert_eq!(changed(&journal), vec![("/srv/3".into(), 3)]);
    }

    #[test]
    fn what_the_cache_has_seen_is_forgotten() {
        let mut state = JournalState::new("s".into(), vec![7]);
        state.record(&batch(&[1], false));
        state.record(&batch(&[2], false));
        state.forget_through("other", 2);
        state.forget_through("s", 3);
        assert_eq!(changed(&state.journal(100, path_of)).len(), 2);
        assert_eq!(state.journal(100, path_of).seen, None);
        state.forget_through("s", 1);
        let journal = state.journal(100, path_of);
        assert_eq!(changed(&journal), vec![("/srv/2".into(), 2)]);
        // The journal says what it was told, so the next scan need not tell it again.
        assert_eq!(journal.seen, Some(1));
        let bytes = serialize_journal(&journal);
        let read = crate::scan::sources::executables::journal::parse_journal(&bytes).unwrap();
        assert!(!read.has_seen(&read.mark()) && read.seen == Some(1));
        let told = crate::scan::sources::executables::journal::JournalMark {
            session: "s".into(),
            at: 1,
        };
        assert!(read.has_seen(&told));
        state.forget_through("s", 2);
        state.forget_through("s", 1);
        assert_eq!(state.journal(100, path_of).seen, Some(2));
    }

    #[test]
    fn a_folder_named_by_its_path_and_a_drive_no_longer_watched() {
        let drive = |root: &str, serial| JournalDrive {
            root: root.into(),
            serial,
            file_system: "NTFS".into(),
        };
        let mut state: JournalState<String> = JournalState::new("s".into(), vec![7, 8])
            .with_drives(0b1100, vec![drive("C:\\", 7), drive("D:\\", 8)]);
        state.record_folders(&["C:\\Data".to_string(), "D:\\".to_string()], false);
        let journal = state.journal(100, |path| Named::Path(path.clone()));
        assert_eq!(journal.current_drives(0b1100, 100).map(<[_]>::len), Some(2));
        state.stop_covering(8);
        let journal = state.journal(100, |path| Named::Path(path.clone()));
        assert_eq!(journal.devices, vec![7]);
        // A scan then asks the system for the drives again.
        assert_eq!(journal.drives.len(), 2);
        assert_eq!(journal.current_drives(0b1100, 100), None);
        assert_eq!(
            changed(&journal),
            vec![("C:\\Data".into(), 1), ("D:\\".into(), 1)]
        );
    }

    #[test]
    fn a_folder_that_cannot_be_named_distrusts_what_came_before() {
        let mut state = JournalState::new("s".into(), vec![7]);
        state.record(&batch(&[1], false));
        state.record(&batch(&[8], false));
        let journal = state.journal(100, path_of);
        assert_eq!(journal.trusted_after, 2);
        assert_eq!(changed(&journal), vec![("/srv/1".into(), 1)]);
    }
}
