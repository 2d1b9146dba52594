//! The officer's worklist (issue 19) in one query: the violations of an organization's
//! subtree with every filter bound as a parameter (`$n IS NULL OR ...`), so the SQL
//! text is the same whatever is filtered, and the number matched from a window count.

use super::queries::{SUBTREE, ViolationRecord};
use super::reports::VIOLATION;
use super::{SqlStore, on_backend};
use crate::store::{StoreResult, ViolationRow, Worklist, WorklistFilter, WorklistRow};

#[derive(sqlx::FromRow)]
struct WorklistRecord {
    #[sqlx(flatten)]
    violation: ViolationRecord,
    handled_note: Option<String>,
    handled_by: Option<String>,
    handled_at: Option<i64>,
    matched: i64,
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

pub(super) async fn worklist(store: &SqlStore, filter: &WorklistFilter) -> StoreResult<Worklist> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let folded = search.map(|text| like_pattern(&text.to_lowercase()));
    let as_typed = search.map(like_pattern);
    let app_id = filter
        .app_id
        .as_deref()
        .filter(|app| !app.is_empty())
        .map(str::to_string);
    let condition = format!(
        "{VIOLATION}
         AND (($6 IS NULL AND a.resolved_at IS NULL) OR a.resolved_at >= $6)
         AND ($5 IS NULL OR a.first_seen >= $5)
         AND ($4 IS NULL OR a.app_id = $4)"
    );
    let rows: Vec<WorklistRecord> = on_backend!(store, |pool| {
        let query = format!(
            "{SUBTREE}
             SELECT h.id AS host_id, h.hostname, o.id AS organization_id,
                    o.name AS organization, a.app_id, a.app_name, a.status, a.strength,
                    a.users, a.first_seen, a.last_seen, a.resolved_at, a.evidence,
                    h.last_seen_at AS host_last_seen_at,
                    m.note AS handled_note, m.by_login AS handled_by, m.at AS handled_at,
                    COUNT(*) OVER () AS matched
             FROM hosts h
             JOIN organizations o ON o.id = h.organization_id
             {findings}
             LEFT JOIN handled_marks m ON m.host_id = h.id AND m.app_id = a.app_id
             WHERE h.organization_id {in_subtree} AND h.retired_at IS NULL
               AND (NOT $2 OR h.organization_id = $1)
               AND ($7 IS NULL OR h.last_seen_at IS NULL OR h.last_seen_at < $7)
               AND ($8 IS NULL OR ($8 AND m.host_id IS NOT NULL)
                    OR (NOT $8 AND m.host_id IS NULL))
               AND ($9 IS NULL
                    OR lower(h.hostname) LIKE $9 ESCAPE '\\' OR h.hostname LIKE $10 ESCAPE '\\'
                    OR lower(a.users) LIKE $9 ESCAPE '\\' OR a.users LIKE $10 ESCAPE '\\'
                    OR lower(a.app_name) LIKE $9 ESCAPE '\\' OR a.app_name LIKE $10 ESCAPE '\\'
                    OR lower(a.app_id) LIKE $9 ESCAPE '\\')
             ORDER BY o.name, h.hostname, h.id, a.app_id
             LIMIT $3",
            findings = D::findings_of_each_host(&condition),
            in_subtree = D::IN_SUBTREE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(filter.within)
            .bind(filter.directly)
            .bind(filter.limit.max(0))
            .bind(&app_id)
            .bind(filter.first_seen_since)
            .bind(filter.resolved_since)
            .bind(filter.silent_before)
            .bind(filter.handled)
            .bind(&folded)
            .bind(&as_typed)
            .fetch_all(pool)
            .await?
    });
    let matched = rows.first().map_or(0, |row| row.matched);
    Ok(Worklist {
        matched,
        rows: rows
            .into_iter()
            .map(|row| WorklistRow {
                violation: ViolationRow::from(row.violation),
                handled_note: row.handled_note,
                handled_by: row.handled_by,
                handled_at: row.handled_at,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(super::like_pattern("Сидоров"), "%Сидоров%");
    }
}
