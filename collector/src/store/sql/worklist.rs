//! The officer's worklist (issue 19) in two steps: the page's keys from narrow rows (a
//! host and an application id, sorted, at most the limit) with the number of all
//! matches (from the hosts' counters when nothing but place and silence is
//! filtered, else a window count in the same pass), then the wide rows (evidence,
//! users, the handled note) of those keys alone. Sorting a region's 20,000 open
//! violations with their evidence and a window count over them cost four fifths of
//! the page.
//!
//! Every filter is bound as a parameter (`$n IS NULL OR ...`). The SQL text depends only
//! on whether open or resolved violations are listed (open ones are found through the
//! hosts that have one: the partial index `hosts_with_open_violations`, which a query
//! may use only when its text implies the index's condition; see
//! `Dialect::HOSTS_WITH_OPEN_VIOLATIONS`), and for the count on whether a filter looks
//! into the findings (if none does, the hosts' counters are summed).

use std::collections::HashMap;

use super::queries::{SUBTREE, ViolationRecord};
use super::reports::VIOLATION;
use super::{SqlStore, on_backend};
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
    let (open_state, host_has_open) = if open {
        (
            "a.resolved_at IS NULL AND $5 IS NULL",
            "AND h.open_banned > 0",
        )
    } else {
        ("a.resolved_at >= $5", "")
    };
    let condition = format!(
        "{VIOLATION} AND {open_state}
         AND ($4 IS NULL OR a.first_seen >= $4)
         AND ($3 IS NULL OR a.app_id = $3)"
    );
    let (keys, matched): (Vec<WorklistKey>, i64) = on_backend!(store, |pool| {
        let matching = format!(
            "FROM {hosts}
             JOIN organizations o ON o.id = h.organization_id
             {findings}
             LEFT JOIN handled_marks m ON m.host_id = h.id AND m.app_id = a.app_id
             WHERE h.organization_id {in_subtree} AND h.retired_at IS NULL {host_has_open}
               AND (NOT $2 OR h.organization_id = $1)
               AND ($6 IS NULL OR h.last_seen_at IS NULL OR h.last_seen_at < $6)
               AND ($7 IS NULL OR ($7 AND m.host_id IS NOT NULL)
                    OR (NOT $7 AND m.host_id IS NULL))
               AND ($8 IS NULL
                    OR lower(h.hostname) LIKE $8 ESCAPE '\\' OR h.hostname LIKE $9 ESCAPE '\\'
                    OR lower(a.users) LIKE $8 ESCAPE '\\' OR a.users LIKE $9 ESCAPE '\\'
                    OR lower(a.app_name) LIKE $8 ESCAPE '\\' OR a.app_name LIKE $9 ESCAPE '\\'
                    OR lower(a.app_id) LIKE $8 ESCAPE '\\')",
            hosts = if open {
                D::HOSTS_WITH_OPEN_VIOLATIONS
            } else {
                "hosts h"
            },
            findings = D::findings_of_each_host(&condition),
            in_subtree = D::IN_SUBTREE
        );
        // Open violations filtered by nothing but where the PCs are and when they last
        // reported are the hosts' own counters, summed from their covering index,
        // beside the page's keys. With any other filter the keys and their count come
        // from one pass (`COUNT(*) OVER ()` before the limit), not from the same join
        // run twice side by side (on two cores, beside the ranking's count, that took
        // 110-120 ms each for a search in a region against 67 ms for one).
        let by_counters = open
            && parameters.app_id.is_none()
            && filter.first_seen_since.is_none()
            && filter.handled.is_none()
            && parameters.folded.is_none();
        let order = "ORDER BY o.name, h.hostname, h.id, a.app_id LIMIT $10";
        // Not kept prepared: PostgreSQL plans a kept statement once for any values
        // after five runs, and that plan expected one row from every step (a nested
        // loop over the handled notes per violation: 134 ms instead of 59 ms for a
        // region). Planned with the values each time, the unset filters fold away.
        if by_counters {
            let keys_query =
                format!("{SUBTREE} SELECT h.id AS host_id, a.app_id {matching} {order}");
            let count_query = format!(
                "{SUBTREE} SELECT CAST(COALESCE(SUM(h.open_banned), 0) AS BIGINT)
                 FROM hosts h
                 WHERE h.organization_id {in_subtree} AND h.retired_at IS NULL
                   AND (NOT $2 OR h.organization_id = $1)
                   AND ($6 IS NULL OR h.last_seen_at IS NULL OR h.last_seen_at < $6)
                   AND $3 IS NULL AND $4 IS NULL AND $5 IS NULL AND $7 IS NULL
                   AND $8 IS NULL AND $9 IS NULL",
                in_subtree = D::IN_SUBTREE
            );
            let keys = bind_filter!(
                sqlx::query_as(sqlx::AssertSqlSafe(keys_query)).persistent(false),
                &parameters
            )
            .bind(filter.limit.max(0))
            .fetch_all(pool);
            let matched = bind_filter!(
                sqlx::query_scalar(sqlx::AssertSqlSafe(count_query)).persistent(false),
                &parameters
            )
            .fetch_one(pool);
            tokio::try_join!(keys, matched)?
        } else {
            // At least one row is read, so that a limit of 0 still learns the count.
            let query = format!(
                "{SUBTREE} SELECT h.id AS host_id, a.app_id, COUNT(*) OVER () AS matched
                 {matching} {order}"
            );
            let counted: Vec<CountedKey> = bind_filter!(
                sqlx::query_as(sqlx::AssertSqlSafe(query)).persistent(false),
                &parameters
            )
            .bind(filter.limit.max(1))
            .fetch_all(pool)
            .await?;
            let matched = counted.first().map_or(0, |key| key.matched);
            let keys: Vec<WorklistKey> = counted
                .into_iter()
                .take(usize::try_from(filter.limit).unwrap_or(0))
                .map(|counted| counted.key)
                .collect();
            (keys, matched)
        }
    });
    let rows = rows_of(store, keys).await?;
    Ok(Worklist { matched, rows })
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
