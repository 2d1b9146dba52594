//! Every finding's lifecycle, read from the collector's database after the run:
//! `host_apps` (first_seen, last_seen, resolved_at) and `finding_events` (appeared,
//! resolved) must agree with each other and with what was done to each PC's image.

use std::collections::BTreeMap;
use std::path::Path;

/// The banned application the faults part installs and removes.
pub const BANNED_APP: &str = "telegram";
/// Seconds of slack between the moment the image changed and the scan times the
/// collector records (whole seconds; a scan that started just before the change may
/// or may not have read it).
const SLACK_SECONDS: i64 = 3;

/// What happened to the banned application on one PC's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Installed from the start, removed at the given time.
    RemovedPartway,
    /// Installed partway.
    InstalledPartway,
    /// Installed throughout.
    Throughout,
    /// Never installed.
    Never,
}

impl Lifecycle {
    pub fn of_agent(index: usize) -> Lifecycle {
        match index % 4 {
            0 => Lifecycle::RemovedPartway,
            1 => Lifecycle::InstalledPartway,
            2 => Lifecycle::Throughout,
            _ => Lifecycle::Never,
        }
    }

    pub fn installed_at_start(self) -> bool {
        matches!(self, Lifecycle::RemovedPartway | Lifecycle::Throughout)
    }
}

/// One PC's expectation: its lifecycle and, when the image changed, when (Unix seconds).
#[derive(Debug, Clone)]
pub struct Expected {
    pub host: String,
    pub lifecycle: Lifecycle,
    pub changed_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct Row {
    first_seen: i64,
    last_seen: i64,
    resolved_at: Option<i64>,
}

/// The number of lifecycles checked, and what was wrong with them.
#[derive(Debug, Default)]
pub struct Verdict {
    pub checked: usize,
    pub wrong: Vec<String>,
}

/// Checks every (host, application) row, and each PC's banned application against its
/// expectation. `started` and `drained` bound the run (Unix seconds).
pub fn check(
    database: &Path,
    expected: &[Expected],
    started: i64,
    drained: i64,
) -> anyhow::Result<Verdict> {
    let connection = rusqlite::Connection::open(database)?;
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut statement = connection.prepare(
        "SELECT h.hostname, a.app_id, a.first_seen, a.last_seen, a.resolved_at
         FROM host_apps a JOIN hosts h ON h.id = a.host_id",
    )?;
    for row in statement.query_map([], |row| {
        Ok((
            (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            Row {
                first_seen: row.get(2)?,
                last_seen: row.get(3)?,
                resolved_at: row.get(4)?,
            },
        ))
    })? {
        let (key, value) = row?;
        rows.insert(key, value);
    }
    let mut events: BTreeMap<(String, String), Vec<(String, i64)>> = BTreeMap::new();
    let mut statement = connection.prepare(
        "SELECT h.hostname, e.app_id, e.event, e.at FROM finding_events e
         JOIN hosts h ON h.id = e.host_id ORDER BY e.id",
    )?;
    for row in statement.query_map([], |row| {
        Ok((
            (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            (row.get::<_, String>(2)?, row.get::<_, i64>(3)?),
        ))
    })? {
        let (key, event) = row?;
        events.entry(key).or_default().push(event);
    }

    let mut verdict = Verdict::default();
    // Every row on its own: its events alternate from `appeared`, in time order, and
    // its dates are the events'.
    for (key, row) in &rows {
        verdict.checked += 1;
        let history = events.get(key).cloned().unwrap_or_default();
        if let Some(problem) = consistent(row, &history) {
            verdict.wrong.push(format!(
                "{} {}: {problem} ({row:?}, {history:?})",
                key.0, key.1
            ));
        }
    }
    for key in events.keys() {
        if !rows.contains_key(key) {
            verdict
                .wrong
                .push(format!("{} {}: events without a finding", key.0, key.1));
        }
    }
    // The banned application on each PC, against what was done to the image.
    for pc in expected {
        verdict.checked += 1;
        let key = (pc.host.clone(), BANNED_APP.to_string());
        let history: Vec<&str> = events
            .get(&key)
            .map(|events| events.iter().map(|(event, _)| event.as_str()).collect())
            .unwrap_or_default();
        if let Some(problem) = as_expected(pc, rows.get(&key), &history, started, drained) {
            verdict.wrong.push(format!(
                "{} {BANNED_APP} ({:?}, changed at {:?}): {problem} ({:?}, {history:?})",
                pc.host,
                pc.lifecycle,
                pc.changed_at,
                rows.get(&key)
            ));
        }
    }
    Ok(verdict)
}

fn consistent(row: &Row, history: &[(String, i64)]) -> Option<String> {
    if history.is_empty() {
        return Some("no events".into());
    }
    for (index, (event, _)) in history.iter().enumerate() {
        let expected = if index % 2 == 0 {
            "appeared"
        } else {
            "resolved"
        };
        if event != expected {
            return Some(format!("event {index} is `{event}`, not `{expected}`"));
        }
    }
    if history.windows(2).any(|pair| pair[1].1 < pair[0].1) {
        return Some("events out of time order".into());
    }
    if row.first_seen > row.last_seen {
        return Some("first_seen after last_seen".into());
    }
    let last_appeared = history
        .iter()
        .rev()
        .find(|(event, _)| event == "appeared")
        .map(|(_, at)| *at);
    if last_appeared != Some(row.first_seen) {
        return Some("first_seen is not the time it (last) appeared".into());
    }
    let last = history.last().map(|(event, at)| (event.as_str(), *at));
    match (row.resolved_at, last) {
        (Some(resolved), Some(("resolved", at))) if resolved == at => {
            (row.last_seen > resolved).then(|| "last_seen after resolved_at".into())
        }
        (None, Some(("appeared", _))) => None,
        _ => Some("resolved_at does not match the last event".into()),
    }
}

fn as_expected(
    pc: &Expected,
    row: Option<&Row>,
    history: &[&str],
    started: i64,
    drained: i64,
) -> Option<String> {
    let changed = pc.changed_at.unwrap_or(started);
    match (pc.lifecycle, row) {
        (Lifecycle::Never, None) if history.is_empty() => None,
        (Lifecycle::Never, _) => Some("a finding for an application never installed".into()),
        (_, None) => Some("no finding".into()),
        (Lifecycle::RemovedPartway, Some(row)) => {
            if history != ["appeared", "resolved"] {
                Some("not appeared once and resolved once".into())
            } else if row.first_seen < started - SLACK_SECONDS {
                Some("first seen before the run began".into())
            } else if row.last_seen > changed + SLACK_SECONDS {
                Some("last seen after it was removed".into())
            } else if row
                .resolved_at
                .is_none_or(|resolved| resolved < changed - SLACK_SECONDS)
            {
                Some("resolved before it was removed".into())
            } else {
                None
            }
        }
        (Lifecycle::InstalledPartway | Lifecycle::Throughout, Some(row)) => {
            if history != ["appeared"] || row.resolved_at.is_some() {
                Some("not open with one `appeared` event".into())
            } else if row.first_seen < changed - SLACK_SECONDS {
                Some("first seen before it was installed".into())
            } else if row.last_seen < drained - SLACK_SECONDS {
                Some("not seen by the last report".into())
            } else {
                None
            }
        }
    }
}
