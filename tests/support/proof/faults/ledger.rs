//! What happened to each report, from both ends: the agent's log (every report it
//! spooled, sent and had acknowledged, by its UUIDv7 id) and its spool folder, against
//! the collector's `reports` table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One agent's side, read from its log (all its runs, appended) and its spool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AgentSide {
    /// Every report id the agent made durable: spooled, sent or acknowledged in the
    /// log, or found in the spool (a report spooled by a run killed before it logged).
    pub produced: BTreeSet<String>,
    pub acknowledged: BTreeSet<String>,
    /// Acknowledgements of reports the collector already held (a resend after an
    /// acknowledgement was lost).
    pub duplicate_acknowledgements: usize,
    pub attempts: usize,
    /// Scans whose report could not be written to the spool: the disk was full.
    pub not_spooled_disk_full: usize,
    /// 503 answers the agent got (the database was locked).
    pub answered_503: usize,
}

impl AgentSide {
    /// Reads the agent's log.
    pub fn from_log(text: &str) -> AgentSide {
        let mut side = AgentSide::default();
        for line in text.lines() {
            if line.contains("scanned; report spooled") {
                side.produced.extend(report_id(line));
            } else if line.contains("sending report=") {
                side.attempts += 1;
                side.produced.extend(report_id(line));
            } else if line.contains("acknowledged report=") {
                if let Some(id) = report_id(line) {
                    side.produced.insert(id.clone());
                    side.acknowledged.insert(id);
                }
                if line.contains("duplicate=true") {
                    side.duplicate_acknowledgements += 1;
                }
            } else if line.contains("/spool/") && line.contains("os error 28") {
                side.not_spooled_disk_full += 1;
            }
            if line.contains("the collector answered 503") {
                side.answered_503 += 1;
            }
        }
        side
    }

    /// Adds the reports waiting in a spool folder.
    pub fn add_spooled(&mut self, spool: &Path) {
        self.produced.extend(spooled_ids(spool));
    }
}

/// The report ids waiting in a spool folder (`<id>.json.gz`).
pub fn spooled_ids(spool: &Path) -> Vec<String> {
    std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().is_file())
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".json.gz")
                        .filter(|id| uuid_like(id))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Files the agent set aside (`rejected/`, `damaged/`): reports that will never arrive.
pub fn set_aside(spool: &Path) -> usize {
    ["rejected", "damaged"]
        .iter()
        .map(|folder| {
            std::fs::read_dir(spool.join(folder))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".gz"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// The id in `report=<uuid>` (quoted or not).
fn report_id(line: &str) -> Option<String> {
    let start = line.find("report=")? + "report=".len();
    let id: String = line[start..]
        .trim_start_matches('"')
        .chars()
        .take(36)
        .collect();
    uuid_like(&id).then_some(id)
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36
        && text
            .chars()
            .all(|character| character.is_ascii_hexdigit() || character == '-')
}

/// The collector's side: stored report ids per host name, and how many rows there are.
#[derive(Debug, Default)]
pub struct Stored {
    pub by_host: BTreeMap<String, Vec<String>>,
    pub rows: usize,
    pub distinct: usize,
    /// Reports that arrived after a newer one of their host and were not evaluated.
    pub stale: usize,
}

impl Stored {
    pub fn read(database: &Path) -> anyhow::Result<Stored> {
        let connection = rusqlite::Connection::open(database)?;
        let mut stored = Stored::default();
        let mut statement = connection.prepare(
            "SELECT h.hostname, r.report_id, r.kind FROM reports r
             JOIN hosts h ON h.id = r.host_id ORDER BY r.report_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (host, id, kind) = row?;
            stored.rows += 1;
            if kind == "stale" {
                stored.stale += 1;
            }
            stored.by_host.entry(host).or_default().push(id);
        }
        stored.distinct =
            connection.query_row("SELECT COUNT(DISTINCT report_id) FROM reports", [], |row| {
                row.get::<_, i64>(0)
            })? as usize;
        Ok(stored)
    }
}

/// Produced against stored, over all agents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub produced: usize,
    pub acknowledged: usize,
    pub stored: usize,
    /// Produced and never stored.
    pub lost: Vec<String>,
    /// Stored twice, or stored for a host more often than that host produced reports.
    pub duplicated: usize,
    /// Stored under a host whose agent never produced that id.
    pub stored_not_produced: Vec<String>,
}

/// Compares each host's produced ids with its stored ones.
pub fn reconcile(agents: &BTreeMap<String, AgentSide>, stored: &Stored) -> Reconciliation {
    let mut result = Reconciliation {
        stored: stored.rows,
        duplicated: stored.rows - stored.distinct,
        ..Reconciliation::default()
    };
    for (host, side) in agents {
        result.produced += side.produced.len();
        result.acknowledged += side.acknowledged.len();
        let stored_ids: Vec<&String> = stored.by_host.get(host).into_iter().flatten().collect();
        let stored_set: BTreeSet<&String> = stored_ids.iter().copied().collect();
        result.duplicated += stored_ids.len() - stored_set.len();
        for id in &side.produced {
            if !stored_set.contains(id) {
                result.lost.push(format!("{host} {id}"));
            }
        }
        let extra: Vec<String> = stored_set
            .iter()
            .filter(|id| !side.produced.contains(**id))
            .map(|id| format!("{host} {id}"))
            .collect();
        // More stored than produced for a host is a duplicate made under a new id.
        result.duplicated += stored_set.len().saturating_sub(side.produced.len());
        result.stored_not_produced.extend(extra);
    }
    for (host, ids) in &stored.by_host {
        if !agents.contains_key(host) {
            result
                .stored_not_produced
                .extend(ids.iter().map(|id| format!("{host} {id}")));
        }
    }
    result
}
