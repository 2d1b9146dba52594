//! The agent's state folder (`/var/lib/sverka`, `%ProgramData%\Sverka`): the
//! enrollment (collector URL, host id and key), what the collector last acknowledged
//! (the inventory digest, the catalog's ETag), the collector's catalog, and the spool.
//!
//! ```text
//! enrollment.json   server, host id, host key, organization (0600: the key is a secret)
//! state.json        acknowledged inventory digest, catalog ETag
//! catalog.toml      the collector's catalog, as it sent it
//! collector-ca.pem  a CA the collector's certificate chains to, when not a public one
//! spool/            reports not yet acknowledged (see `spool.rs`)
//! executables.json  the executable inventory's cache (written by the scan, see
//!                   `scan/sources/executables/`)
//! seen-running.json when each catalog application was last seen running between
//!                   scans (written by `service/process_check.rs`, read by the scan)
//! ```
//!
//! Every file is replaced atomically ([`crate::delivery::fswrite::write_atomic`]). The
//! catalog text is written before its ETag, so a crash between the two only causes a
//! refetch.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::delivery::fswrite::{create_private_dir, write_atomic};
use crate::scan::fsread::read_text_lossy;

const ENROLLMENT_FILE: &str = "enrollment.json";
const STATE_FILE: &str = "state.json";
const CATALOG_FILE: &str = "catalog.toml";
const CA_FILE: &str = "collector-ca.pem";
/// A CA bundle is a few kilobytes.
pub const MAX_CA_BYTES: u64 = 1024 * 1024;
const SPOOL_DIR: &str = "spool";
const EXECUTABLE_CACHE_FILE: &str = "executables.json";
const CHANGE_JOURNAL_FILE: &str = "changes.json";
/// State files are small; a bigger one is not ours.
const MAX_STATE_BYTES: u64 = 1024 * 1024;
/// The collector's catalog may not be larger than a catalog file may be.
pub const MAX_CATALOG_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state folder {path}: {source}")]
    Create {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "this agent is not enrolled ({path} is missing): run `sverka-agent enroll --server URL --secret SECRET` first"
    )]
    NotEnrolled { path: String },
}

/// What `enroll` stores: where to report, and as whom.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The collector's base URL, without a trailing `/`.
    pub server: String,
    pub host_id: i64,
    pub host_key: String,
    pub organization_id: i64,
    pub organization_name: String,
    /// The machine id the host was enrolled with; `run` refuses to report another one.
    pub machine_id: String,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("server", &self.server)
            .field("host_id", &self.host_id)
            .field("host_key", &"<redacted>")
            .field("organization_id", &self.organization_id)
            .field("organization_name", &self.organization_name)
            .field("machine_id", &self.machine_id)
            .finish()
    }
}

/// What the collector acknowledged last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// The digest of the last inventory the collector stored; reports whose digest
    /// matches leave the inventory out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_digest: Option<String>,
    /// The ETag of `catalog.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_etag: Option<String>,
}

/// The state folder.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spool_path(&self) -> PathBuf {
        self.path.join(SPOOL_DIR)
    }

    /// The executable inventory's cache (written by the scan, which is handed this path).
    pub fn executable_cache_path(&self) -> PathBuf {
        self.path.join(EXECUTABLE_CACHE_FILE)
    }

    /// The service's change journal, written for each scan (see
    /// `scan::sources::executables::journal`).
    pub fn change_journal_path(&self) -> PathBuf {
        self.path.join(CHANGE_JOURNAL_FILE)
    }

    /// The service's record of programs seen running between scans (written by the
    /// service's process check, read by the scan: see `scan/seen_running.rs`).
    pub fn seen_running_path(&self) -> PathBuf {
        self.path.join(crate::scan::seen_running::RECORD_FILE)
    }

    /// Creates the folder (private to the agent's account) when it is missing.
    pub fn create(&self) -> Result<(), StateError> {
        create_private_dir(&self.path).map_err(|source| StateError::Create {
            path: self.path.display().to_string(),
            source,
        })
    }

    pub fn enrollment(&self) -> Result<Enrollment, StateError> {
        let path = self.path.join(ENROLLMENT_FILE);
        match self.read_json(&path)? {
            Some(enrollment) => Ok(enrollment),
            None => Err(StateError::NotEnrolled {
                path: path.display().to_string(),
            }),
        }
    }

    /// Stores a new enrollment, replacing the old one. A different collector or host
    /// knows nothing of what the old one acknowledged, so that is forgotten too.
    pub fn save_enrollment(&self, enrollment: &Enrollment) -> Result<(), StateError> {
        self.create()?;
        let previous: Option<Enrollment> = self
            .read_json(&self.path.join(ENROLLMENT_FILE))
            .ok()
            .flatten();
        self.write_json(ENROLLMENT_FILE, enrollment)?;
        let same_host = previous.is_some_and(|previous| {
            previous.server == enrollment.server && previous.host_id == enrollment.host_id
        });
        if !same_host {
            self.save_acknowledged(&Acknowledged::default())?;
        }
        Ok(())
    }

    /// What the collector acknowledged; nothing when the file is missing or damaged
    /// (the next report then carries the full inventory, which is always safe).
    pub fn acknowledged(&self) -> Acknowledged {
        match self.read_json(&self.path.join(STATE_FILE)) {
            Ok(state) => state.unwrap_or_default(),
            Err(error) => {
                tracing::warn!("{error}; starting from an empty state");
                Acknowledged::default()
            }
        }
    }

    pub fn save_acknowledged(&self, state: &Acknowledged) -> Result<(), StateError> {
        self.write_json(STATE_FILE, state)
    }

    /// The extra CA certificates (PEM) `enroll --ca-cert` stored, if any.
    pub fn collector_ca(&self) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.path.join(CA_FILE);
        match crate::scan::fsread::read_bounded(&path, MAX_CA_BYTES) {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StateError::Read {
                path: path.display().to_string(),
                message: error.to_string(),
            }),
        }
    }

    /// Stores (or, with `None`, removes) the extra CA certificates.
    pub fn save_collector_ca(&self, pem: Option<&[u8]>) -> Result<(), StateError> {
        let path = self.path.join(CA_FILE);
        let written = match pem {
            Some(pem) => write_atomic(&path, pem),
            None => match crate::delivery::fswrite::remove_durably(&path) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        written.map_err(|source| StateError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// The cached collector catalog's text, if there is one.
    pub fn cached_catalog(&self) -> Result<Option<String>, StateError> {
        let path = self.path.join(CATALOG_FILE);
        match read_text_lossy(&path, MAX_CATALOG_BYTES) {
            Ok(text) => Ok(Some(text.text)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StateError::Read {
                path: path.display().to_string(),
                message: error.to_string(),
            }),
        }
    }

    /// Caches the collector's catalog and its ETag (text first, then the ETag).
    pub fn save_catalog(&self, text: &str, etag: &str) -> Result<(), StateError> {
        let path = self.path.join(CATALOG_FILE);
        write_atomic(&path, text.as_bytes()).map_err(|source| StateError::Write {
            path: path.display().to_string(),
            source,
        })?;
        let mut state = self.acknowledged();
        state.catalog_etag = Some(etag.to_string());
        self.save_acknowledged(&state)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, StateError> {
        let text = match read_text_lossy(path, MAX_STATE_BYTES) {
            Ok(text) => text.text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(StateError::Read {
                    path: path.display().to_string(),
                    message: error.to_string(),
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| StateError::Read {
                path: path.display().to_string(),
                message: error.to_string(),
            })
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let path = self.path.join(name);
        let mut text = serde_json::to_string_pretty(value).map_err(|error| StateError::Write {
            path: path.display().to_string(),
            source: io::Error::other(error),
        })?;
        text.push('\n');
        write_atomic(&path, text.as_bytes()).map_err(|source| StateError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment(server: &str, host_id: i64) -> Enrollment {
        Enrollment {
            server: server.into(),
            host_id,
            host_key: format!("{host_id}.secret"),
            organization_id: 1,
            organization_name: "Школа №5".into(),
            machine_id: "0123".into(),
        }
    }

    #[test]
    fn enrollment_round_trips_and_a_missing_one_says_how_to_enroll() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path().join("sverka"));
        let error = state.enrollment().unwrap_err();
        assert!(error.to_string().contains("sverka-agent enroll"), "{error}");
        state.save_enrollment(&enrollment("http://a", 7)).unwrap();
        assert_eq!(state.enrollment().unwrap(), enrollment("http://a", 7));
        assert!(!format!("{:?}", state.enrollment().unwrap()).contains("7.secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.path().join("sverka/enrollment.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn enrolling_elsewhere_forgets_what_the_old_collector_acknowledged() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path());
        state.save_enrollment(&enrollment("http://a", 7)).unwrap();
        state.save_catalog("version = \"x\"\n", "\"e1\"").unwrap();
        let mut acknowledged = state.acknowledged();
        acknowledged.inventory_digest = Some("d1".into());
        state.save_acknowledged(&acknowledged).unwrap();

        // The same host again (a new key): the collector still holds the inventory.
        state.save_enrollment(&enrollment("http://a", 7)).unwrap();
        assert_eq!(state.acknowledged().inventory_digest.as_deref(), Some("d1"));
        assert_eq!(state.acknowledged().catalog_etag.as_deref(), Some("\"e1\""));
        assert_eq!(
            state.cached_catalog().unwrap().as_deref(),
            Some("version = \"x\"\n")
        );

        state.save_enrollment(&enrollment("http://b", 7)).unwrap();
        assert_eq!(state.acknowledged(), Acknowledged::default());
    }

    #[test]
    fn a_damaged_state_file_means_an_empty_state() {
        let folder = tempfile::tempdir().unwrap();
        let state = StateDir::new(folder.path());
        std::fs::write(folder.path().join(STATE_FILE), b"{\"inventory_dig").unwrap();
        assert_eq!(state.acknowledged(), Acknowledged::default());
        assert_eq!(state.cached_catalog().unwrap(), None);
    }
}
