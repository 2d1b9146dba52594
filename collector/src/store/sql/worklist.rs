//! The officer's worklist (issue 19) in two steps: the page's keys from narrow rows (a
//! host and an application id, sorted, at most the limit) with the number of all
//! matches (from the hosts' counters when nothing but place and silence is
//! filtered, else a window count in the same pass), then the wide rows (evidence,
//! users, the handled note) of those keys alone. Sorting a region's 20,000 open
//! violations with their evidence and a window count over them cost four fifths of
//! the page.
//!
//! Every filter is bound as a parameter (`$n IS NULL OR ...`). The SQL text depends
//! only on whether open or resolved violations are listed (open ones are found through
//! the hosts that have one: the partial index `hosts_with_open_violations`, which a
//! query may use only when its text implies the index's condition; see
//! `Dialect::HOSTS_WITH_OPEN_VIOLATIONS`), on whether a filter looks into the findings
//! (if none does, the hosts' counters give the count and say which organizations fill
//! the page), and then on those organizations' ids, and on whether a search is read
//! in two parts (where an index finds it inside the findings).
//!
//! No statement is kept prepared: PostgreSQL plans a kept statement once for any values
//! after five runs, and that plan expected one row from every step (a nested loop over
//! the handled notes per violation: 134 ms instead of 59 ms for a region). Planned
//! with the values each time, the unset filters fold away.

use std::collections::HashMap;

use super::queries::{SUBTREE, ViolationRecord};
use super::reports::VIOLATION;
use super::{Backend, SqlStore, on_backend};
use crate::store::dialect::Dialect;
use crate::store::{StoreResult, ViolationRow, Worklist, WorklistFilter, WorklistRow};

/// One matched violation's key, in the worklist's order.
#[derive(sqlx::FromRow)]
struct WorklistKey {
    host_id: i64,
    app_id: String,
}

/// A key with the number of all matches (a window count over the narrow rows).
#[derive(sqlx::FromRow)]
struct CountedKey {
    #[sqlx(flatten)]
    key: WorklistKey,
    matched: i64,
}

#[derive(sqlx::FromRow)]
struct WorklistRecord {
    #[sqlx(flatten)]
    violation: ViolationRecord,
    handled_note: Option<String>,
    handled_by: Option<String>,
    handled_at: Option<i64>,
}

/// `%text%` for `LIKE ... ESCAPE '\'`, the text's own `%`, `_` and `\` escaped.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// Binds the worklist's filter parameters `$1` to `$9` (the keys' query adds `$10`, the
/// limit).
macro_rules! bind_filter {
    ($query:expr, $parameters:expr) => {{
        let parameters = $parameters;
        $query
            .bind(parameters.filter.within)
            .bind(parameters.filter.directly)
            .bind(&parameters.app_id)
            .bind(parameters.filter.first_seen_since)
            .bind(parameters.filter.resolved_since)
            .bind(parameters.filter.silent_before)
            .bind(parameters.filter.handled)
            .bind(&parameters.folded)
            .bind(&parameters.as_typed)
    }};
}

/// A filter's values as the queries bind them.
struct Parameters<'a> {
    filter: &'a WorklistFilter,
    app_id: Option<String>,
    /// The search, lowercased, as a `LIKE` pattern.
    folded: Option<String>,
    /// The search as typed, as a `LIKE` pattern (SQLite folds ASCII letters only).
    as_typed: Option<String>,
}

pub(super) async fn worklist(store: &SqlStore, filter: &WorklistFilter) -> StoreResult<Worklist> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let parameters = Parameters {
        filter,
        app_id: filter
            .app_id
            .as_deref()
            .filter(|app| !app.is_empty())
            .map(str::to_string),
        folded: search.map(|text| like_pattern(&text.to_lowercase())),
        as_typed: search.map(like_pattern),
    };
    // Open violations: the hosts' own counter names the hosts that have one, and the
    // text says so, so that the partial index is chosen. `$5` stays in the text (as a
    // condition that holds) so that both texts bind the same parameters.
    let open = filter.resolved_since.is_none();
    let open_state = if open {
        "a.resolved_at IS NULL AND $5 IS NULL"
    } else {
        "a.resolved_at >= $5"
    };
    let condition = format!(
        "{VIOLATION} AND {open_state}
         AND ($4 IS NULL OR a.first_seen >= $4)
         AND ($3 IS NULL OR a.app_id = $3)"
    );
    // Open violations filtered by nothing but where the PCs are and when they last
    // reported are counted by the hosts' own counters.
    let by_counters = open
        && parameters.app_id.is_none()
        && filter.first_seen_since.is_none()
        && filter.handled.is_none()
        && parameters.folded.is_none();
    let (keys, matched) = if by_counters {
        keys_by_counters(store, &parameters, &condition).await?
    } else {
        keys_with_window_count(store, &parameters, &condition, open).await?
    };
    let rows = rows_of(store, keys).await?;
    Ok(Worklist { matched, rows })
}

/// Which violations a keys query reads, as far as the search goes.
#[derive(Clone, Copy)]
enum Part {
    /// All that match (no search, or `$8 IS NULL OR` anything matching).
    Whole,
    /// Those on PCs whose name matches the search.
    PcMatches,
    /// Those whose finding (users, application) matches on PCs whose name does not:
    /// the findings are joined, not visited PC by PC, so that the search's trigram
    /// index (PostgreSQL's migration 0020) finds them.
    FindingMatchesOnly,
}

/// The search on the PC's name (`$8` folded, `$9` as typed).
const PC_MATCHES: &str =
    "(lower(h.hostname) LIKE $8 ESCAPE '\\' OR h.hostname LIKE $9 ESCAPE '\\')";
/// The text of a finding that the search's trigram index holds (PostgreSQL only, as
/// migration 0020 writes it): the searched columns, folded and as stored, kept apart
/// by a control character (a search holding one is never split).
const INDEXED_FINDING_TEXT: &str = "(lower(a.users) || chr(1) || a.users || chr(1)
        || lower(a.app_name) || chr(1) || a.app_name || chr(1) || lower(a.app_id))";
/// The search on the finding: its users, the application's name and id.
const FINDING_MATCHES: &str = "(lower(a.users) LIKE $8 ESCAPE '\\' OR a.users LIKE $9 ESCAPE '\\'
     OR lower(a.app_name) LIKE $8 ESCAPE '\\' OR a.app_name LIKE $9 ESCAPE '\\'
     OR lower(a.app_id) LIKE $8 ESCAPE '\\')";

/// The keys' `FROM ... WHERE` over the PCs of the organizations `place` names (a
/// condition on `h.organization_id`), binding the filter's `$1` to `$9`.
fn matching<D: Dialect>(place: &str, condition: &str, open: bool, part: Part) -> String {
    let (hosts, host_has_open) = match (open, part) {
        (true, Part::FindingMatchesOnly) => ("hosts h", "AND h.open_banned > 0"),
        (true, _) => (D::HOSTS_WITH_OPEN_VIOLATIONS, "AND h.open_banned > 0"),
        (false, _) => ("hosts h", ""),
    };
    let (findings, search) = match part {
        Part::Whole => (
            D::findings_of_each_host(condition),
            format!("($8 IS NULL OR {PC_MATCHES} OR {FINDING_MATCHES})"),
        ),
        Part::PcMatches => (D::findings_of_each_host(condition), PC_MATCHES.to_string()),
        Part::FindingMatchesOnly => (
            format!("JOIN host_apps a ON a.host_id = h.id AND {condition}"),
            format!(
                "({INDEXED_FINDING_TEXT} LIKE $8 ESCAPE '\\'
                  OR {INDEXED_FINDING_TEXT} LIKE $9 ESCAPE '\\') AND NOT {PC_MATCHES}"
            ),
        ),
    };
    format!(
        "FROM {hosts}
         JOIN organizations o ON o.id = h.organization_id
         {findings}
         LEFT JOIN handled_marks m ON m.host_id = h.id AND m.app_id = a.app_id
         WHERE h.organization_id {place} AND h.retired_at IS NULL {host_has_open}
           AND (NOT $2 OR h.organization_id = $1)
           AND ($6 IS NULL OR h.last_seen_at IS NULL OR h.last_seen_at < $6)
           AND ($7 IS NULL OR ($7 AND m.host_id IS NOT NULL)
                OR (NOT $7 AND m.host_id IS NULL))
           AND {search}"
    )
}

/// The page's order; the limit is `$10`.
const ORDER: &str = "ORDER BY o.name, h.hostname, h.id, a.app_id LIMIT $10";

/// An organization's open violations under a filter of place and silence alone.
#[derive(sqlx::FromRow)]
struct OrganizationMatches {
    id: i64,
    name: String,
    matched: i64,
}

/// Open violations filtered by nothing but where the PCs are and when they last
/// reported. Each organization's number of matches is the sum of its hosts' counters
/// (read from their covering index), in the page's order of organizations; the keys
/// are then sorted among the fewest leading organizations that fill the page (and
/// any that share the last one's name, whose PCs the order interleaves). A region's
/// first 500 rows come from a dozen schools: sorting all its 20,000 PCs with a
/// violation to keep 500 took 59-67 ms on PostgreSQL at 100,000 PCs.
async fn keys_by_counters(
    store: &SqlStore,
    parameters: &Parameters<'_>,
    condition: &str,
) -> StoreResult<(Vec<WorklistKey>, i64)> {
    let filter = parameters.filter;
    let per_organization: Vec<OrganizationMatches> = on_backend!(store, |pool| {
        let query = format!(
            "{SUBTREE} SELECT o.id, o.name, CAST(SUM(h.open_banned) AS BIGINT) AS matched
             FROM hosts h
             JOIN organizations o ON o.id = h.organization_id
             WHERE h.organization_id {in_subtree} AND h.retired_at IS NULL
               AND h.open_banned > 0
               AND (NOT $2 OR h.organization_id = $1)
               AND ($3 IS NULL OR h.last_seen_at IS NULL OR h.last_seen_at < $3)
             GROUP BY o.id, o.name
             ORDER BY o.name, o.id",
            in_subtree = D::IN_SUBTREE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .persistent(false)
            .bind(filter.within)
            .bind(filter.directly)
            .bind(filter.silent_before)
            .fetch_all(pool)
            .await?
    });
    let matched = per_organization
        .iter()
        .map(|organization| organization.matched)
        .sum();
    let limit = filter.limit.max(0);
    let mut chosen: Vec<String> = Vec::new();
    let mut covered = 0;
    let mut last_name: Option<&str> = None;
    for organization in &per_organization {
        if covered >= limit && last_name != Some(organization.name.as_str()) {
            break;
        }
        chosen.push(organization.id.to_string());
        covered += organization.matched;
        last_name = Some(&organization.name);
    }
    if chosen.is_empty() {
        return Ok((Vec::new(), matched));
    }
    // Ids read from the database a moment ago, written into the text as numbers.
    let place = format!("IN ({})", chosen.join(", "));
    let keys = on_backend!(store, |pool| {
        let query = format!(
            "SELECT h.id AS host_id, a.app_id {matching} {ORDER}",
            matching = matching::<D>(&place, condition, true, Part::Whole)
        );
        bind_filter!(
            sqlx::query_as(sqlx::AssertSqlSafe(query)).persistent(false),
            parameters
        )
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok((keys, matched))
}

/// Any other filter: the keys and the number of all matches from one pass
/// (`COUNT(*) OVER ()` before the limit), not from the same join run twice side by
/// side (on two cores, beside the ranking's count, that took 110-120 ms each for a
/// search in a region against 67 ms for one).
async fn keys_with_window_count(
    store: &SqlStore,
    parameters: &Parameters<'_>,
    condition: &str,
    open: bool,
) -> StoreResult<(Vec<WorklistKey>, i64)> {
    let filter = parameters.filter;
    let finding_search_index = match &store.backend {
        Backend::Sqlite(_) => false,
        Backend::Postgres(backend) => backend.finding_search_index,
    };
    let counted: Vec<CountedKey> = on_backend!(store, |pool| {
        // At least one row is read, so that a limit of 0 still learns the count.
        let split = finding_search_index
            && parameters
                .as_typed
                .as_deref()
                .is_some_and(|search| !search.contains('\u{1}'));
        let query = if split {
            // A search, where an index finds its text inside the findings: the
            // violations on PCs whose name matches, and apart from them those whose
            // finding matches. Visiting each PC's findings to test the search on them
            // cost a region 20,000 index probes (65-100 ms on PostgreSQL at 100,000
            // PCs, 30 ms split). Without that index (SQLite; PostgreSQL without
            // `pg_trgm`) the second part would visit them all the same, after the
            // first: one pass is faster there.
            format!(
                "{SUBTREE}, matches AS (
                     SELECT h.id AS host_id, a.app_id, o.name AS organization, h.hostname
                     {pc_matches}
                     UNION ALL
                     SELECT h.id AS host_id, a.app_id, o.name AS organization, h.hostname
                     {finding_matches})
                 SELECT host_id, app_id, COUNT(*) OVER () AS matched FROM matches
                 ORDER BY organization, hostname, host_id, app_id LIMIT $10",
                pc_matches = matching::<D>(D::IN_SUBTREE, condition, open, Part::PcMatches),
                finding_matches =
                    matching::<D>(D::IN_SUBTREE, condition, open, Part::FindingMatchesOnly),
            )
        } else {
            format!(
                "{SUBTREE} SELECT h.id AS host_id, a.app_id, COUNT(*) OVER () AS matched
                 {matching} {ORDER}",
                matching = matching::<D>(D::IN_SUBTREE, condition, open, Part::Whole)
            )
        };
        bind_filter!(
            sqlx::query_as(sqlx::AssertSqlSafe(query)).persistent(false),
            parameters
        )
        .bind(filter.limit.max(1))
        .fetch_all(pool)
        .await?
    });
    let matched = counted.first().map_or(0, |key| key.matched);
    let keys = counted
        .into_iter()
        .take(usize::try_from(filter.limit).unwrap_or(0))
        .map(|counted| counted.key)
        .collect();
    Ok((keys, matched))
}

/// The wide rows of `keys`, in their order. Hosts and their findings are never
/// deleted, so every key read a moment ago still has its row (its facts may be newer).
async fn rows_of(store: &SqlStore, keys: Vec<WorklistKey>) -> StoreResult<Vec<WorklistRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut host_ids: Vec<i64> = keys.iter().map(|key| key.host_id).collect();
    host_ids.sort_unstable();
    host_ids.dedup();
    let host_ids = serde_json::to_string(&host_ids).unwrap_or_default();
    let records: Vec<WorklistRecord> = on_backend!(store, |pool| {
        let query = format!(
            "SELECT h.id AS host_id, h.hostname, o.id AS organization_id,
                    o.name AS organization, a.app_id, a.app_name, a.status, a.strength,
                    a.users, a.first_seen, a.last_seen, a.resolved_at, a.evidence,
                    h.last_seen_at AS host_last_seen_at,
                    m.note AS handled_note, m.by_login AS handled_by, m.at AS handled_at
             FROM hosts h
             JOIN organizations o ON o.id = h.organization_id
             JOIN host_apps a ON a.host_id = h.id
             LEFT JOIN handled_marks m ON m.host_id = h.id AND m.app_id = a.app_id
             WHERE h.id {in_ids}",
            in_ids = D::IN_ID_LIST
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(&host_ids)
            .fetch_all(pool)
            .await?
    });
    let mut by_key: HashMap<(i64, String), WorklistRecord> = records
        .into_iter()
        .map(|record| {
            let key = (record.violation.host_id, record.violation.app_id.clone());
            (key, record)
        })
        .collect();
    Ok(keys
        .into_iter()
        .filter_map(|key| by_key.remove(&(key.host_id, key.app_id)))
        .map(|row| WorklistRow {
            violation: ViolationRow::from(row.violation),
            handled_note: row.handled_note,
            handled_by: row.handled_by,
            handled_at: row.handled_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(super::like_pattern("Сидоров"), "%Сидоров%");
    }
}
