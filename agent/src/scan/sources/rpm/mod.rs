//! rpm (ALT Linux, RED OS, the Fedora family): the package database read directly and
//! read-only, whatever its format:
//! - SQLite `rpmdb.sqlite` (rpm ≥ 4.16: RED OS 8, Fedora ≥ 33), opened read-only, and
//!   as an immutable file when it cannot be opened normally (a read-only image, a lock);
//! - Berkeley DB hash `Packages` (ALT Linux, RED OS 7), read by [`bdb`] without Berkeley
//!   DB itself;
//! - `Packages.db` (ndb, openSUSE) is recognised and reported as unsupported.
//!
//! The database locations are looked up under the root; nothing depends on the
//! distribution's name.

pub mod bdb;
pub mod header;

use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;
use sverka_shared::observation::PackageManager;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use header::{RpmPackage, parse_header};

/// Where rpm keeps its database, newest layout first.
pub const DATABASE_DIRS: &[&str] = &["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpmDbFormat {
    Sqlite,
    BerkeleyDb,
    Ndb,
}

impl RpmDbFormat {
    const FILES: [(&'static str, RpmDbFormat); 3] = [
        ("rpmdb.sqlite", RpmDbFormat::Sqlite),
        ("Packages", RpmDbFormat::BerkeleyDb),
        ("Packages.db", RpmDbFormat::Ndb),
    ];
}

/// The packages of one database, and the records that could not be read.
#[derive(Debug, Default)]
pub struct RpmRead {
    pub packages: Vec<RpmPackage>,
    pub problems: Vec<String>,
}

impl RpmRead {
    fn take_header(&mut self, record: &str, blob: &[u8]) {
        match parse_header(blob) {
            Ok(package) => self.packages.push(package),
            Err(error) => {
                if self.problems.len() < 5 {
                    self.problems.push(format!("{record}: {error}"));
                }
            }
        }
    }
}

/// Reads a SQLite rpmdb read-only.
pub fn read_sqlite(path: &Path) -> Result<RpmRead, String> {
    let open = |immutable: bool| -> rusqlite::Result<Connection> {
        let uri = sqlite_uri(path, immutable);
        let connection = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_millis(1500))?;
        Ok(connection)
    };
    let query = |connection: &Connection| -> rusqlite::Result<RpmRead> {
        let mut statement = connection.prepare("SELECT hnum, blob FROM Packages")?;
        let mut rows = statement.query([])?;
        let mut read = RpmRead::default();
        while let Some(row) = rows.next()? {
            let number: i64 = row.get(0).unwrap_or(-1);
            match row.get_ref(1)?.as_blob() {
                Ok(blob) => read.take_header(&format!("package #{number}"), blob),
                Err(_) => read
                    .problems
                    .push(format!("package #{number}: not a header blob")),
            }
        }
        Ok(read)
    };
    match open(false).and_then(|connection| query(&connection)) {
        Ok(read) => Ok(read),
        Err(first) => {
            // A read-only image or a database locked by a running rpm: read the file as
            // it is, without locks and without a journal.
            match open(true).and_then(|connection| query(&connection)) {
                Ok(mut read) => {
                    read.problems.push(format!(
                        "the database could not be opened normally ({first}); read as an immutable file"
                    ));
                    Ok(read)
                }
                Err(second) => Err(format!("not a readable rpm SQLite database: {second}")),
            }
        }
    }
}

fn sqlite_uri(path: &Path, immutable: bool) -> String {
    let mut uri = String::from("file:");
    for character in path.to_string_lossy().chars() {
        match character {
            '?' | '#' | '%' => uri.push_str(&format!("%{:02X}", character as u32)),
            other => uri.push(other),
        }
    }
    uri.push_str(if immutable {
        "?mode=ro&immutable=1"
    } else {
        "?mode=ro"
    });
    uri
}

/// Reads a Berkeley DB `Packages` file read-only.
pub fn read_berkeley_db(path: &Path) -> Result<RpmRead, String> {
    let file = File::open(path).map_err(|error| format!("cannot open: {error}"))?;
    let mut database =
        bdb::BdbHash::open(BufReader::new(file)).map_err(|error| error.to_string())?;
    let mut read = RpmRead::default();
    if database.is_truncated() {
        read.problems.push(
            "the file is shorter than its metadata says (truncated?); the pages present were read"
                .into(),
        );
    }
    let mut damaged = 0usize;
    let mut first_damage = None;
    database
        .for_each(|record| match record {
            Ok((key, value)) => {
                // Record 0 holds rpm's next instance number, not a header.
                if key.iter().all(|byte| *byte == 0) {
                    return;
                }
                let number = match key.as_slice() {
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]).to_string(),
                    _ => "?".into(),
                };
                read.take_header(&format!("package #{number}"), &value);
            }
            Err(error) => {
                damaged += 1;
                first_damage.get_or_insert_with(|| error.to_string());
            }
        })
        .map_err(|error| error.to_string())?;
    if let Some(first) = first_damage {
        read.problems.push(format!(
            "{damaged} damaged record(s) skipped (first: {first})"
        ));
    }
    Ok(read)
}

#[derive(Debug)]
pub struct RpmSource;

impl EvidenceSource for RpmSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Rpm
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        for directory in DATABASE_DIRS {
            // /var/lib/rpm is often a symlink to /usr/lib/sysimage/rpm: read one of them.
            let found = RpmDbFormat::FILES.iter().find_map(|(file, format)| {
                let local = context.root.path(directory).join(file);
                local
                    .is_file()
                    .then(|| (local, format!("{directory}/{file}"), *format))
            });
            let Some((local, shown, format)) = found else {
                continue;
            };
            let result = match format {
                RpmDbFormat::Sqlite => read_sqlite(&local),
                RpmDbFormat::BerkeleyDb => read_berkeley_db(&local),
                RpmDbFormat::Ndb => Err("the ndb format (Packages.db) is not supported".into()),
            };
            match result {
                Ok(read) => {
                    for problem in read.problems {
                        output.error(SourceKind::Rpm, Some(shown.clone()), problem);
                    }
                    output
                        .observations
                        .extend(read.packages.into_iter().map(|package| Observation {
                            observed: Observed::Package {
                                manager: PackageManager::Rpm,
                                version: package.full_version(),
                                vendor:
                                    (!package.vendor.is_empty()).then(|| package.vendor.clone()),
                                name: package.name,
                            },
                            path: Some(shown.clone()),
                            user: None,
                            scope: Scope::Machine,
                            strength: Strength::Installed,
                        }));
                }
                Err(message) => output.error(SourceKind::Rpm, Some(shown), message),
            }
            return;
        }
    }
}
