//! The change journal: which folders changed while the service watched the disks, so a
//! repeat inventory in the service neither lists nor even looks at a folder that did
//! not change, nor at the program files in it. Pure (de)serialization and the rule of
//! when a journal may be trusted, the same on every OS, bounded, and fuzzed.
//!
//! The service's change watcher (`service::change_watch`, fanotify on Linux) numbers
//! what it learns in order: every folder in which an entry was created, deleted,
//! renamed, written and closed, or had its attributes (times, mode) changed, carries
//! the number of the last such change. Just before a scan, the watcher reads every
//! change the kernel has queued and writes the journal: `at` is the highest number
//! written. The scan remembers in its cache the `session` and `at` of the journal it
//! started with ([`JournalMark`]). The next scan then knows that every folder whose
//! number is above that `at` may have changed since, and that every other folder did
//! not: a change made before the journal was written carries a number up to `at` and
//! was seen by the scan that read it; one made later carries a higher number.
//!
//! Under a trusted journal, a folder with no change in or below it
//! ([`ChangesSince::touched`]) stands for its whole subtree as the cache has it; one
//! with changes only below it is taken from the cache and walked into; a changed one is
//! listed and its programs checked.
//!
//! A journal is trusted only for a cache made in the same watching session (a new
//! service, or a new boot, is a new session) and not before `trusted_after`: the
//! number at which the watcher last lost changes (the kernel's queue overflowed, or
//! the journal grew past its bound and was emptied). It covers only the file systems
//! listed in `devices`.
//!
//! The file is JSON: `{"journal": "sverka change journal", "session", "written_at",
//! "at", "trusted_after", "devices": [...], "changed": [{"path", "seq"}], "seen",
//! "drive_letters", "drives": [{"root", "serial", "file_system"}]}`. After the scan,
//! the mark of the cache on disk goes back to the watcher in the file beside it
//! ([`seen_file`], `{"session", "at"}`): no later scan asks about changes up to that
//! number, so the watcher forgets them; `seen` is the last number it was told, so a
//! scan whose cache it has already been told of writes nothing.
//!
//! On Windows the watcher also writes the fixed drives it found when it started
//! (`drives`) and the drive letters then in use (`drive_letters`, the mask
//! `GetLogicalDrives` gives): while the same letters are in use and every one of those
//! drives is still watched, a scan plans its walks from them
//! ([`ChangeJournal::current_drives`]) instead of asking the system about each drive
//! again (a trip to Wine's mount manager per question under Wine). A drive that goes
//! away ends its watch, and one that comes changes the letters.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the first field says, so another JSON file is not taken for a journal.
pub const JOURNAL_MARKER: &str = "sverka change journal";
/// The largest journal file read.
pub const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;
/// The most changed folders a journal holds; past it the watcher empties it and
/// distrusts what came before (a repeat scan then checks every folder once).
pub const MAX_JOURNAL_FOLDERS: usize = 200_000;
/// A journal written longer ago than this is stale (its watcher may have stopped since).
pub const FRESH_FOR_SECONDS: i64 = 600;
const MAX_PATH_CHARS: usize = 4096;
const MAX_DEVICES: usize = 1024;
/// The longest drive root and file system name a journal's drive may have.
const MAX_DRIVE_NAME_CHARS: usize = 260;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("damaged change journal: {0}")]
    Damaged(String),
    #[error("not a change journal")]
    NotAJournal,
    #[error("change journal larger than its bounds ({0})")]
    TooLarge(&'static str),
}

/// Which journal a cache was made with: its session and the last change number in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalMark {
    pub session: String,
    pub at: u64,
}

/// One folder that changed, with the number of its last change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFolder {
    pub path: String,
    pub seq: u64,
}

/// A fixed drive the Windows watcher found when it started, with what the inventory's
/// plan needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalDrive {
    /// Its root, `C:\`.
    pub root: String,
    /// Its volume serial number (how `devices` names it).
    pub serial: u64,
    pub file_system: String,
}

/// The watcher's journal as written for one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeJournal {
    pub journal: String,
    /// A new one for each watching session.
    pub session: String,
    /// When it was written (seconds since 1970).
    pub written_at: i64,
    /// The highest change number in it.
    pub at: u64,
    /// Changes up to this number may have been lost.
    pub trusted_after: u64,
    /// The file systems watched (`st_dev`).
    pub devices: Vec<u64>,
    pub changed: Vec<ChangedFolder>,
    /// The highest mark of this session a scan has told the watcher its cache has seen.
    #[serde(default)]
    pub seen: Option<u64>,
    /// Windows: the drive letters in use when the watcher listed `drives` (a bit per
    /// letter, `A:` the lowest); 0 elsewhere.
    #[serde(default)]
    pub drive_letters: u32,
    /// Windows: the fixed drives the watcher found, watched or not.
    #[serde(default)]
    pub drives: Vec<JournalDrive>,
}

/// What a trusted journal says about a cache: the folders that may have changed
/// since the cache was made, and the file systems it speaks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesSince {
    pub folders: HashSet<String>,
    /// The changed folders and every folder above them, each with the names of its
    /// subfolders that are touched too (sorted; none for a changed folder with
    /// nothing changed below it).
    touched: HashMap<String, Vec<String>>,
    pub devices: HashSet<u64>,
}

impl ChangesSince {
    fn new(folders: HashSet<String>, devices: HashSet<u64>) -> ChangesSince {
        let mut touched: HashMap<String, Vec<String>> = HashMap::new();
        for folder in &folders {
            let mut below: Option<&Path> = None;
            for above in Path::new(folder).ancestors() {
                let subfolders = touched
                    .entry(above.to_string_lossy().into_owned())
                    .or_default();
                if let Some(name) = below.and_then(Path::file_name) {
                    subfolders.push(name.to_string_lossy().into_owned());
                }
                below = Some(above);
            }
        }
        for subfolders in touched.values_mut() {
            subfolders.sort_unstable();
            subfolders.dedup();
        }
        ChangesSince {
            folders,
            touched,
            devices,
        }
    }

    /// Whether `folder` (a path as the walk keys it) may have changed.
    pub fn changed(&self, folder: &str) -> bool {
        self.folders.contains(folder)
    }

    /// Whether anything in or below `folder` may have changed.
    pub fn touched(&self, folder: &str) -> bool {
        self.touched.contains_key(folder)
    }

    /// The names of `folder`'s subfolders in or below which something may have
    /// changed, sorted (none when `folder` is not touched).
    pub fn touched_subfolders(&self, folder: &str) -> &[String] {
        self.touched.get(folder).map_or(&[], Vec::as_slice)
    }
}

/// Why a journal was not used for this scan (said in the log, not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    /// The cache was made without a journal, or with another session's.
    OtherSession,
    /// Changes may have been lost after the cache was made.
    ChangesLost,
    /// Written too long ago.
    Stale,
}

impl ChangeJournal {
    pub fn new(session: String) -> ChangeJournal {
        ChangeJournal {
            journal: JOURNAL_MARKER.to_string(),
            session,
            ..ChangeJournal::default()
        }
    }

    /// The mark a cache made with this journal carries.
    pub fn mark(&self) -> JournalMark {
        JournalMark {
            session: self.session.clone(),
            at: self.at,
        }
    }

    /// Whether it was written recently enough, at `now` (seconds since 1970), to speak
    /// for the disks now.
    fn fresh(&self, now: i64) -> bool {
        (-60..FRESH_FOR_SECONDS).contains(&(now - self.written_at))
    }

    /// The folders changed since a cache marked `since` was made, if this journal may
    /// answer for that cache at `now` (seconds since 1970).
    pub fn changes_since(
        &self,
        since: Option<&JournalMark>,
        now: i64,
    ) -> Result<ChangesSince, Distrust> {
        if !self.fresh(now) {
            return Err(Distrust::Stale);
        }
        let Some(since) = since.filter(|since| since.session == self.session) else {
            return Err(Distrust::OtherSession);
        };
        if since.at < self.trusted_after || since.at > self.at {
            return Err(Distrust::ChangesLost);
        }
        Ok(ChangesSince::new(
            self.changed
                .iter()
                .filter(|folder| folder.seq > since.at)
                .map(|folder| folder.path.clone())
                .collect(),
            self.devices.iter().copied().collect(),
        ))
    }

    /// Whether the watcher has already been told that the cache on disk has seen
    /// `mark` (so telling it again changes nothing).
    pub fn has_seen(&self, mark: &JournalMark) -> bool {
        mark.session == self.session && self.seen.is_some_and(|seen| mark.at <= seen)
    }

    /// The fixed drives as the watcher found them, while they still stand at `now`:
    /// the journal is fresh, the drive letters in use are the same (`letters`, as the
    /// system gives them now) and each of those drives is still watched (a drive that
    /// went away took its watch with it; one that came changed the letters). `None`:
    /// the system is asked.
    pub fn current_drives(&self, letters: u32, now: i64) -> Option<&[JournalDrive]> {
        (self.fresh(now)
            && self.drive_letters != 0
            && letters == self.drive_letters
            && !self.drives.is_empty()
            && self
                .drives
                .iter()
                .all(|drive| self.devices.contains(&drive.serial)))
        .then_some(self.drives.as_slice())
    }
}

/// Where the scan tells the watcher the mark of the cache on disk.
pub fn seen_file(journal_file: &Path) -> PathBuf {
    let mut name = journal_file.as_os_str().to_owned();
    name.push(".seen");
    PathBuf::from(name)
}

pub fn serialize_mark(mark: &JournalMark) -> Vec<u8> {
    serde_json::to_vec(mark).unwrap_or_default()
}

/// A mark written by [`serialize_mark`]; `None` for anything else.
pub fn parse_mark(bytes: &[u8]) -> Option<JournalMark> {
    serde_json::from_slice(bytes)
        .ok()
        .filter(|mark: &JournalMark| !mark.session.is_empty() && mark.session.len() <= 128)
}

/// Reads a journal written by [`serialize_journal`].
pub fn parse_journal(bytes: &[u8]) -> Result<ChangeJournal, JournalError> {
    if bytes.len() as u64 > MAX_JOURNAL_BYTES {
        return Err(JournalError::TooLarge("file size"));
    }
    #[derive(Deserialize)]
    struct Header {
        journal: Option<String>,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|error| JournalError::Damaged(error.to_string()))?;
    if header.journal.as_deref() != Some(JOURNAL_MARKER) {
        return Err(JournalError::NotAJournal);
    }
    let journal: ChangeJournal =
        serde_json::from_slice(bytes).map_err(|error| JournalError::Damaged(error.to_string()))?;
    if journal.changed.len() > MAX_JOURNAL_FOLDERS {
        return Err(JournalError::TooLarge("folders"));
    }
    if journal.devices.len() > MAX_DEVICES {
        return Err(JournalError::TooLarge("devices"));
    }
    if journal.drives.len() > MAX_DEVICES {
        return Err(JournalError::TooLarge("drives"));
    }
    for drive in &journal.drives {
        if drive.root.is_empty()
            || drive.root.chars().count() > MAX_DRIVE_NAME_CHARS
            || drive.file_system.chars().count() > MAX_DRIVE_NAME_CHARS
        {
            return Err(JournalError::Damaged(
                "a drive's root is empty or a name is too long".into(),
            ));
        }
    }
    if journal.seen.is_some_and(|seen| seen > journal.at) {
        return Err(JournalError::Damaged("seen is past the last change".into()));
    }
    if journal.session.is_empty() {
        return Err(JournalError::Damaged("no session".into()));
    }
    if journal.trusted_after > journal.at {
        return Err(JournalError::Damaged(
            "trusted_after is past the last change".into(),
        ));
    }
    for folder in &journal.changed {
        if folder.path.is_empty() || folder.path.chars().count() > MAX_PATH_CHARS {
            return Err(JournalError::Damaged(
                "a folder's path is empty or too long".into(),
            ));
        }
        if folder.seq > journal.at {
            return Err(JournalError::Damaged(format!(
                "folder {} changed after the journal's last change",
                folder.path
            )));
        }
    }
    Ok(journal)
}

/// The journal file's bytes, folders in path order.
pub fn serialize_journal(journal: &ChangeJournal) -> Vec<u8> {
    let mut journal = journal.clone();
    journal.journal = JOURNAL_MARKER.to_string();
    journal
        .changed
        .sort_by(|left, right| left.path.cmp(&right.path));
    // Plain data of strings and numbers: serializing cannot fail.
    serde_json::to_vec(&journal).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChangeJournal {
        let mut journal = ChangeJournal::new("session-1".into());
        journal.written_at = 1_000;
        journal.at = 40;
        journal.trusted_after = 10;
        journal.devices = vec![2049];
        journal.changed = vec![
            ChangedFolder {
                path: "/srv/new".into(),
                seq: 35,
            },
            ChangedFolder {
                path: "/srv/old".into(),
                seq: 12,
            },
        ];
        journal
    }

    fn mark(session: &str, at: u64) -> JournalMark {
        JournalMark {
            session: session.into(),
            at,
        }
    }

    #[test]
    fn a_journal_reads_back_as_written() {
        let journal = sample();
        let bytes = serialize_journal(&journal);
        assert_eq!(parse_journal(&bytes), Ok(journal));
        let mark = mark("session-1", 20);
        assert_eq!(parse_mark(&serialize_mark(&mark)), Some(mark));
        assert_eq!(parse_mark(br#"{"session": "", "at": 1}"#), None);
        assert_eq!(parse_mark(b"{"), None);
        assert_eq!(
            seen_file(Path::new("/var/lib/sverka/changes.json")),
            Path::new("/var/lib/sverka/changes.json.seen")
        );
    }

    #[test]
    fn only_changes_after_the_caches_mark_count() {
        let journal = sample();
        let changes = journal
            .changes_since(Some(&mark("session-1", 20)), 1_001)
            .unwrap();
        assert_eq!(changes.folders, HashSet::from(["/srv/new".to_string()]));
        assert!(changes.changed("/srv/new") && !changes.changed("/srv/old"));
        assert!(changes.touched("/srv") && changes.touched("/") && changes.touched("/srv/new"));
        assert!(!changes.touched("/srv/old") && !changes.touched("/srv/new/below"));
        assert_eq!(changes.devices, HashSet::from([2049]));
        let all = journal
            .changes_since(Some(&mark("session-1", 10)), 1_001)
            .unwrap();
        assert_eq!(all.folders.len(), 2);
        assert_eq!(all.touched_subfolders("/"), ["srv"]);
        assert_eq!(all.touched_subfolders("/srv"), ["new", "old"]);
        assert!(all.touched_subfolders("/srv/new").is_empty() && all.touched("/srv/new"));
        assert!(all.touched_subfolders("/elsewhere").is_empty());
        assert_eq!(changes.touched_subfolders("/srv"), ["new"]);
        let none = journal
            .changes_since(Some(&mark("session-1", 40)), 1_001)
            .unwrap();
        assert!(none.folders.is_empty());
    }

    #[test]
    fn a_journal_of_another_session_with_lost_changes_or_stale_is_not_trusted() {
        let journal = sample();
        assert_eq!(
            journal.changes_since(None, 1_001),
            Err(Distrust::OtherSession)
        );
        assert_eq!(
            journal.changes_since(Some(&mark("session-0", 20)), 1_001),
            Err(Distrust::OtherSession)
        );
        // Made before the last loss, or with a number this journal never gave.
        assert_eq!(
            journal.changes_since(Some(&mark("session-1", 9)), 1_001),
            Err(Distrust::ChangesLost)
        );
        assert_eq!(
            journal.changes_since(Some(&mark("session-1", 41)), 1_001),
            Err(Distrust::ChangesLost)
        );
        assert_eq!(
            journal.changes_since(Some(&mark("session-1", 20)), 1_000 + FRESH_FOR_SECONDS),
            Err(Distrust::Stale)
        );
        assert_eq!(
            journal.changes_since(Some(&mark("session-1", 20)), 900),
            Err(Distrust::Stale)
        );
    }

    #[test]
    fn foreign_damaged_and_inconsistent_journals_are_errors() {
        let bytes = serialize_journal(&sample());
        assert!(matches!(
            parse_journal(&bytes[..bytes.len() / 2]),
            Err(JournalError::Damaged(_))
        ));
        assert_eq!(
            parse_journal(br#"{"cache": "x"}"#),
            Err(JournalError::NotAJournal)
        );
        assert!(matches!(
            parse_journal(b"\xff\xfe"),
            Err(JournalError::Damaged(_))
        ));
        let mut ahead = sample();
        ahead.changed[0].seq = 41;
        assert!(matches!(
            parse_journal(&serialize_journal(&ahead)),
            Err(JournalError::Damaged(_))
        ));
        let mut inverted = sample();
        inverted.trusted_after = 41;
        assert!(matches!(
            parse_journal(&serialize_journal(&inverted)),
            Err(JournalError::Damaged(_))
        ));
        let mut no_session = sample();
        no_session.session.clear();
        assert!(matches!(
            parse_journal(&serialize_journal(&no_session)),
            Err(JournalError::Damaged(_))
        ));
        let mut empty_path = sample();
        empty_path.changed[0].path.clear();
        assert!(matches!(
            parse_journal(&serialize_journal(&empty_path)),
            Err(JournalError::Damaged(_))
        ));
        let mut seen_ahead = sample();
        seen_ahead.seen = Some(41);
        assert!(matches!(
            parse_journal(&serialize_journal(&seen_ahead)),
            Err(JournalError::Damaged(_))
        ));
        let mut nameless_drive = with_drives(sample());
        nameless_drive.drives[0].root.clear();
        assert!(matches!(
            parse_journal(&serialize_journal(&nameless_drive)),
            Err(JournalError::Damaged(_))
        ));
        let mut long_name = with_drives(sample());
        long_name.drives[0].file_system = "N".repeat(MAX_DRIVE_NAME_CHARS + 1);
        assert!(matches!(
            parse_journal(&serialize_journal(&long_name)),
            Err(JournalError::Damaged(_))
        ));
        let mut many_drives = with_drives(sample());
        many_drives.drives = vec![many_drives.drives[0].clone(); MAX_DEVICES + 1];
        assert_eq!(
            parse_journal(&serialize_journal(&many_drives)),
            Err(JournalError::TooLarge("drives"))
        );
    }

    /// The sample as the Windows watcher writes it: `C:` (watched, serial 2049) and
    /// `D:` (serial 7) in use, with `Z:`.
    fn with_drives(mut journal: ChangeJournal) -> ChangeJournal {
        journal.drive_letters = 0b1 << 25 | 0b1100;
        journal.devices = vec![2049, 7];
        journal.drives = vec![
            JournalDrive {
                root: "C:\\".into(),
                serial: 2049,
                file_system: "NTFS".into(),
            },
            JournalDrive {
                root: "D:\\".into(),
                serial: 7,
                file_system: "FAT32".into(),
            },
        ];
        journal
    }

    #[test]
    fn the_watchers_drives_stand_while_the_same_letters_are_in_use_and_watched() {
        let journal = with_drives(sample());
        assert_eq!(
            parse_journal(&serialize_journal(&journal)),
            Ok(journal.clone())
        );
        let letters = journal.drive_letters;
        let roots = |drives: Option<&[JournalDrive]>| {
            drives.map(|drives| {
                drives
                    .iter()
                    .map(|drive| drive.root.clone())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            roots(journal.current_drives(letters, 1_001)),
            Some(vec!["C:\\".to_string(), "D:\\".to_string()])
        );
        // A drive letter more (a stick, a new disk) or fewer.
        assert_eq!(journal.current_drives(letters | 0b10000, 1_001), None);
        assert_eq!(journal.current_drives(letters & !0b1000, 1_001), None);
        // Stale.
        assert_eq!(
            journal.current_drives(letters, 1_000 + FRESH_FOR_SECONDS),
            None
        );
        // A drive no longer watched (it went away, or its watch failed).
        let mut unwatched = journal.clone();
        unwatched.devices = vec![2049];
        assert_eq!(unwatched.current_drives(letters, 1_001), None);
        // A journal without drives (Linux, or a watcher before them) says nothing.
        assert_eq!(sample().current_drives(0, 1_001), None);
        assert_eq!(sample().current_drives(letters, 1_001), None);
    }

    #[test]
    fn the_watcher_has_seen_the_marks_up_to_the_last_it_was_told() {
        let mut journal = sample();
        assert!(!journal.has_seen(&mark("session-1", 20)));
        journal.seen = Some(20);
        assert!(journal.has_seen(&mark("session-1", 20)));
        assert!(journal.has_seen(&mark("session-1", 12)));
        assert!(!journal.has_seen(&mark("session-1", 21)));
        assert!(!journal.has_seen(&mark("session-0", 12)));
    }
}
