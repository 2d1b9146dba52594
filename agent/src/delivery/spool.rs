//! The durable spool: every report is written here (gzip-compressed JSON, exactly the
//! body that is sent) before it is sent, and removed only once the collector
//! acknowledged it. It survives a collector outage and a reboot; the oldest report is
//! sent first.
//!
//! ```text
//! spool/<report id>.json.gz   waiting to be acknowledged (UUIDv7 names sort oldest first)
//! spool/rejected/             reports the collector will never accept, with a .txt reason
//! spool/damaged/              files that could not be read back, set aside
//! ```
//!
//! Policy: at most [`SpoolPolicy::max_reports`] reports (500) and
//! [`SpoolPolicy::max_bytes`] bytes on disk (64 MiB). Over the bound the oldest reports
//! are dropped first, and each drop is logged: every report is a full snapshot, so the
//! newest carries the machine's current state. The newest report is never dropped.
//! `rejected/` and `damaged/` keep the last [`KEEP_SET_ASIDE`] entries each.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use sverka_shared::protocol::ReportUpload;

use crate::delivery::fswrite::{
    TEMP_PREFIX, create_private_dir, remove_durably, rename_durably, write_atomic,
};
use crate::scan::fsread::read_bounded;

const REPORT_SUFFIX: &str = ".json.gz";
const REJECTED_DIR: &str = "rejected";
const DAMAGED_DIR: &str = "damaged";
/// How many set-aside reports `rejected/` and `damaged/` keep.
pub const KEEP_SET_ASIDE: usize = 50;
/// A report never expands past this when read back (a gzip bomb is damage).
const MAX_REPORT_JSON_BYTES: u64 = 256 * 1024 * 1024;

/// How much the spool may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolPolicy {
    pub max_reports: usize,
    pub max_bytes: u64,
}

impl Default for SpoolPolicy {
    fn default() -> Self {
        SpoolPolicy {
            max_reports: 500,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode report {id}: {message}")]
    Encode { id: String, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A report file waiting in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// A spooled report read back: the body to send and what it says.
#[derive(Debug)]
pub struct SpooledReport {
    pub id: String,
    /// The gzip-compressed JSON body, sent as is with `Content-Encoding: gzip`.
    pub gzip_body: Vec<u8>,
    pub upload: ReportUpload,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    policy: SpoolPolicy,
}

impl Spool {
    /// Opens (creating) the spool folder and removes temporary files a crash left.
    pub fn open(dir: impl Into<PathBuf>, policy: SpoolPolicy) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        create_private_dir(&dir).map_err(io_error(&dir))?;
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => tracing::info!("removed an unfinished spool file {}", path.display()),
                    Err(error) => tracing::warn!("cannot remove {}: {error}", path.display()),
                }
            }
        }
        Ok(Spool { dir, policy })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a report durably (temp file, fsync, rename, fsync of the folder), then
    /// applies the bounds. Returns the ids of the reports the bounds dropped.
    pub fn push(&self, upload: &ReportUpload) -> Result<Vec<String>, SpoolError> {
        let id = &upload.report_id;
        let body = encode(upload).map_err(|message| SpoolError::Encode {
            id: id.clone(),
            message,
        })?;
        let path = self.dir.join(format!("{id}{REPORT_SUFFIX}"));
        write_atomic(&path, &body).map_err(io_error(&path))?;
        self.enforce_bounds(Some(id))
    }

    /// The waiting reports, oldest first. Files that are not reports are set aside.
    pub fn pending(&self) -> Result<Vec<Pending>, SpoolError> {
        let mut pending = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            match name.strip_suffix(REPORT_SUFFIX) {
                Some(id) if uuid::Uuid::try_parse(id).is_ok() => pending.push(Pending {
                    id: id.to_string(),
                    path: entry.path(),
                    bytes: metadata.len(),
                }),
                _ => self.set_aside_damaged(&entry.path(), "not a report file"),
            }
        }
        pending.sort_by(|left, right| left.id.cmp(&right.id));
        Ok(pending)
    }

    /// Reads a report back. A file that cannot be read or decoded is moved to
    /// `damaged/` (and logged), and `None` is returned so the caller goes on.
    pub fn load(&self, pending: &Pending) -> Option<SpooledReport> {
        match decode(&pending.path, self.policy.max_bytes) {
            Ok((upload, gzip_body)) if upload.report_id == pending.id => Some(SpooledReport {
                id: pending.id.clone(),
                gzip_body,
                upload,
            }),
            Ok(_) => {
                self.set_aside_damaged(&pending.path, "the report id inside is not the file's");
                None
            }
            // Gone: another `run` on this state folder delivered it meanwhile.
            Err(_) if !pending.path.exists() => None,
            Err(reason) => {
                self.set_aside_damaged(&pending.path, &reason);
                None
            }
        }
    }

    /// The collector acknowledged the report: it leaves the spool.
    pub fn acknowledge(&self, id: &str) -> Result<(), SpoolError> {
        let path = self.dir.join(format!("{id}{REPORT_SUFFIX}"));
        match remove_durably(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(io_error(&path)(error)),
            _ => Ok(()),
        }
    }

    /// The collector will never accept the report: it moves to `rejected/` with the
    /// reason beside it, so the queue goes on.
    /// A report another `run` on the same state folder already handled is left alone.
    pub fn reject(&self, id: &str, reason: &str) -> Result<(), SpoolError> {
        let folder = self.dir.join(REJECTED_DIR);
        create_private_dir(&folder).map_err(io_error(&folder))?;
        let from = self.dir.join(format!("{id}{REPORT_SUFFIX}"));
        let to = folder.join(format!("{id}{REPORT_SUFFIX}"));
        match rename_durably(&from, &to) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            moved => moved.map_err(io_error(&from))?,
        }
        let reason_path = folder.join(format!("{id}.txt"));
        write_atomic(&reason_path, format!("{reason}\n").as_bytes())
            .map_err(io_error(&reason_path))?;
        prune(&folder, KEEP_SET_ASIDE);
        Ok(())
    }

    /// Drops the oldest reports while the spool is over its bounds; never the newest,
    /// nor `keep` (the report just written: after the clock of a PC went back, its id
    /// may sort before older ones).
    pub fn enforce_bounds(&self, keep: Option<&str>) -> Result<Vec<String>, SpoolError> {
        let pending = self.pending()?;
        let mut count = pending.len();
        let mut bytes: u64 = pending.iter().map(|report| report.bytes).sum();
        let mut dropped = Vec::new();
        let newest = pending.last().map(|report| report.id.clone());
        for report in &pending {
            if count <= 1 || (count <= self.policy.max_reports && bytes <= self.policy.max_bytes) {
                break;
            }
            if Some(report.id.as_str()) == keep || Some(&report.id) == newest.as_ref() {
                continue;
            }
            match remove_durably(&report.path) {
                Ok(()) => {
                    tracing::warn!(
                        report = %report.id,
                        "spool over its bound ({count} reports, {bytes} bytes; at most {} and {}): dropped the oldest report",
                        self.policy.max_reports,
                        self.policy.max_bytes
                    );
                    dropped.push(report.id.clone());
                }
                Err(error) => tracing::warn!("cannot drop {}: {error}", report.path.display()),
            }
            count -= 1;
            bytes = bytes.saturating_sub(report.bytes);
        }
        Ok(dropped)
    }

    fn set_aside_damaged(&self, path: &Path, reason: &str) {
        let folder = self.dir.join(DAMAGED_DIR);
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis())
            .unwrap_or(0);
        let target = folder.join(format!("{millis:015}-{name}"));
        let moved = create_private_dir(&folder).and_then(|()| rename_durably(path, &target));
        match moved {
            Ok(()) => {
                tracing::warn!(
                    "damaged spool file {} ({reason}) moved to {}",
                    path.display(),
                    target.display()
                );
                prune(&folder, KEEP_SET_ASIDE);
            }
            Err(error) => tracing::error!(
                "damaged spool file {} ({reason}) could not be moved aside: {error}",
                path.display()
            ),
        }
    }
}

/// The gzip-compressed JSON of a report.
pub fn encode(upload: &ReportUpload) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(upload).map_err(|error| error.to_string())?;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(&json)
        .map_err(|error| error.to_string())?;
    encoder.finish().map_err(|error| error.to_string())
}

/// Reads and decodes a spool file: the report and its compressed bytes.
fn decode(path: &Path, max_file_bytes: u64) -> Result<(ReportUpload, Vec<u8>), String> {
    let (gzip_body, truncated) =
        read_bounded(path, max_file_bytes).map_err(|error| format!("cannot read it: {error}"))?;
    if truncated {
        return Err(format!("larger than {max_file_bytes} bytes"));
    }
    let mut json = Vec::new();
    GzDecoder::new(gzip_body.as_slice())
        .take(MAX_REPORT_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|error| format!("not gzip: {error}"))?;
    if json.len() as u64 > MAX_REPORT_JSON_BYTES {
        return Err(format!("expands past {MAX_REPORT_JSON_BYTES} bytes"));
    }
    let upload: ReportUpload =
        serde_json::from_slice(&json).map_err(|error| format!("not a report: {error}"))?;
    Ok((upload, gzip_body))
}

/// Keeps the newest `keep` entries of a set-aside folder (by name, which sorts by
/// time), counting a report and its `.txt` reason as one.
fn prune(folder: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let stem = |name: &str| name.split('.').next().unwrap_or_default().to_string();
    let mut stems: Vec<String> = names.iter().map(|name| stem(name)).collect();
    stems.dedup();
    if stems.len() <= keep {
        return;
    }
    let old: Vec<String> = stems[..stems.len() - keep].to_vec();
    for name in names.iter().filter(|name| old.contains(&stem(name))) {
        let _ = fs::remove_file(folder.join(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sverka_shared::report::{HostInfo, SCAN_SCHEMA, ScanReport};

    fn upload() -> ReportUpload {
        ReportUpload {
            report_id: uuid::Uuid::now_v7().to_string(),
            scan: ScanReport {
                schema: SCAN_SCHEMA,
                host: HostInfo::default(),
                catalog_version: "test".into(),
                scanned_at: String::new(),
                duration_ms: 0,
                findings: Vec::new(),
                errors: Vec::new(),
                skipped: Vec::new(),
            },
            inventory_digest: "d".into(),
            inventory: None,
            evidence: Vec::new(),
        }
    }

    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn reports_come_back_oldest_first_and_leave_when_acknowledged() {
        let folder = tempfile::tempdir().unwrap();
        let spool = Spool::open(folder.path().join("spool"), SpoolPolicy::default()).unwrap();
        let reports: Vec<ReportUpload> = (0..3).map(|_| upload()).collect();
        // Pushed out of order: the order is the ids' (creation) order, not the writes'.
        for index in [2, 0, 1] {
            assert!(spool.push(&reports[index]).unwrap().is_empty());
        }
        let pending = spool.pending().unwrap();
        let ids: Vec<&str> = pending.iter().map(|report| report.id.as_str()).collect();
        let expected: Vec<&str> = reports
            .iter()
            .map(|report| report.report_id.as_str())
            .collect();
        assert_eq!(ids, expected);

        let loaded = spool.load(&pending[0]).unwrap();
        assert_eq!(loaded.upload, reports[0]);
        let mut json = Vec::new();
        GzDecoder::new(loaded.gzip_body.as_slice())
            .read_to_end(&mut json)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<ReportUpload>(&json).unwrap(),
            reports[0]
        );

        spool.acknowledge(&reports[0].report_id).unwrap();
        spool.acknowledge(&reports[0].report_id).unwrap();
        assert_eq!(spool.pending().unwrap().len(), 2);
    }

    #[test]
    fn over_the_bounds_the_oldest_are_dropped_but_never_the_newest() {
        let folder = tempfile::tempdir().unwrap();
        let policy = SpoolPolicy {
            max_reports: 3,
            max_bytes: u64::MAX,
        };
        let spool = Spool::open(folder.path(), policy).unwrap();
        let reports: Vec<ReportUpload> = (0..5).map(|_| upload()).collect();
        let mut dropped = Vec::new();
        for report in &reports {
            dropped.extend(spool.push(report).unwrap());
        }
        assert_eq!(
            dropped,
            [reports[0].report_id.clone(), reports[1].report_id.clone()]
        );
        let left: Vec<String> = spool.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(
            left,
            [2, 3, 4].map(|index| reports[index].report_id.clone())
        );

        let tiny = Spool::open(
            folder.path(),
            SpoolPolicy {
                max_reports: 100,
                max_bytes: 1,
            },
        )
        .unwrap();
        let newest = upload();
        let dropped = tiny.push(&newest).unwrap();
        assert_eq!(dropped.len(), 3, "every older report goes");
        let left: Vec<String> = tiny.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(
            left,
            [newest.report_id],
            "the newest stays even over the byte bound"
        );
    }

    #[test]
    fn a_report_written_after_the_clock_went_back_is_kept() {
        let folder = tempfile::tempdir().unwrap();
        let policy = SpoolPolicy {
            max_reports: 2,
            max_bytes: u64::MAX,
        };
        let spool = Spool::open(folder.path(), policy).unwrap();
        let older: Vec<ReportUpload> = (0..2).map(|_| upload()).collect();
        for report in &older {
            spool.push(report).unwrap();
        }
        let mut from_the_past = upload();
        from_the_past.report_id = "01000000-0000-7000-8000-000000000000".into();
        let dropped = spool.push(&from_the_past).unwrap();
        assert_eq!(dropped, [older[0].report_id.clone()]);
        let left: Vec<String> = spool.pending().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(left, [from_the_past.report_id, older[1].report_id.clone()]);
    }

    #[test]
    fn damaged_files_are_set_aside_without_blocking_the_rest() {
        let folder = tempfile::tempdir().unwrap();
        let spool = Spool::open(folder.path(), SpoolPolicy::default()).unwrap();
        let good = upload();
        spool.push(&good).unwrap();
        let truncated_id = uuid::Uuid::now_v7().to_string();
        let body = encode(&upload()).unwrap();
        fs::write(
            folder.path().join(format!("{truncated_id}{REPORT_SUFFIX}")),
            &body[..body.len() / 2],
        )
        .unwrap();
        let plain_id = uuid::Uuid::now_v7().to_string();
        fs::write(
            folder.path().join(format!("{plain_id}{REPORT_SUFFIX}")),
            b"{\"not\": \"gzip\"}",
        )
        .unwrap();
        let other = upload();
        let renamed_id = uuid::Uuid::now_v7().to_string();
        fs::write(
            folder.path().join(format!("{renamed_id}{REPORT_SUFFIX}")),
            encode(&other).unwrap(),
        )
        .unwrap();
        fs::write(folder.path().join("notes.txt"), b"hello").unwrap();
        fs::write(folder.path().join(format!("{TEMP_PREFIX}1-x")), b"half").unwrap();

        let spool = Spool::open(folder.path(), SpoolPolicy::default()).unwrap();
        let pending = spool.pending().unwrap();
        assert_eq!(pending.len(), 4, "{pending:?}");
        let loaded: Vec<String> = pending
            .iter()
            .filter_map(|report| spool.load(report))
            .map(|report| report.id)
            .collect();
        assert_eq!(loaded, std::slice::from_ref(&good.report_id));
        assert!(
            spool
                .pending()
                .unwrap()
                .iter()
                .all(|p| p.id == good.report_id)
        );
        let damaged = names(&folder.path().join(DAMAGED_DIR));
        assert_eq!(damaged.len(), 4, "{damaged:?}");
        for id in [&truncated_id, &plain_id, &renamed_id] {
            assert!(
                damaged.iter().any(|name| name.contains(id.as_str())),
                "{damaged:?}"
            );
        }
        assert!(damaged.iter().any(|name| name.ends_with("notes.txt")));
        assert!(
            !names(folder.path())
                .iter()
                .any(|name| name.starts_with(TEMP_PREFIX))
        );
    }

    #[test]
    fn rejected_reports_keep_their_reason_and_the_folder_is_bounded() {
        let folder = tempfile::tempdir().unwrap();
        let spool = Spool::open(folder.path(), SpoolPolicy::default()).unwrap();
        let reports: Vec<ReportUpload> = (0..KEEP_SET_ASIDE + 2).map(|_| upload()).collect();
        for report in &reports {
            spool.push(report).unwrap();
            spool
                .reject(&report.report_id, "422 unprocessable: bad scan")
                .unwrap();
        }
        assert!(spool.pending().unwrap().is_empty());
        let rejected = folder.path().join(REJECTED_DIR);
        let last = &reports[reports.len() - 1].report_id;
        assert_eq!(
            fs::read_to_string(rejected.join(format!("{last}.txt"))).unwrap(),
            "422 unprocessable: bad scan\n"
        );
        assert_eq!(names(&rejected).len(), 2 * KEEP_SET_ASIDE);
        // Already handled by another run: nothing to do, no error.
        spool.reject(&reports[0].report_id, "again").unwrap();
        assert_eq!(names(&rejected).len(), 2 * KEEP_SET_ASIDE);
        assert!(
            !rejected
                .join(format!("{}.txt", reports[0].report_id))
                .exists()
        );
    }
}
