//! The PostgreSQL side of the dashboard's store methods; `postgres.rs` delegates to
//! these. The SQL is `sqlite_dashboard.rs`'s, with week labels compared byte-wise.

use sqlx::PgPool;
use sqlx::postgres::PgRow;

use super::{ColumnValue, SUBTREE, map_error, users_of};
use crate::store::{
    ApiTokenCredentials, ApiTokenInfo, AuditEntry, HandledMark, HostApp, HostDetail, HostSummary,
    NewAuditEntry, NewSession, NewUser, OrganizationCounts, Role, Session, StoreError, StoreResult,
    Timestamp, User, UserChange, UserCredentials, WeeklyFigures,
};

const USER_COLUMNS: &str = "u.id, u.login, u.role, u.organization_id, u.language, u.created_at,
     u.disabled_at";

fn user_of(row: &PgRow) -> StoreResult<User> {
    let role: String = row.value("role")?;
    Ok(User {
        id: row.value("id")?,
        login: row.value("login")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Database(format!("unknown role {role:?}")))?,
        organization_id: row.value("organization_id")?,
        language: row.value("language")?,
        created_at: row.value("created_at")?,
        disabled_at: row.value("disabled_at")?,
    })
}

fn token_info_of(row: &PgRow) -> StoreResult<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.value("token_id")?,
        user_id: row.value("user_id")?,
        name: row.value("name")?,
        created_at: row.value("token_created_at")?,
        revoked_at: row.value("revoked_at")?,
    })
}

fn figures_of(row: &PgRow) -> StoreResult<WeeklyFigures> {
    Ok(WeeklyFigures {
        organization_id: row.value("organization_id")?,
        week: row.value("week")?,
        expected_pcs: row.value("expected_pcs")?,
        enrolled: row.value("enrolled")?,
        reporting: row.value("reporting")?,
        silent: row.value("silent")?,
        with_banned: row.value("with_banned")?,
        with_approved: row.value("with_approved")?,
    })
}

pub(super) async fn create_user(pool: &PgPool, new: NewUser, now: Timestamp) -> StoreResult<User> {
    let login = new.login.trim().to_string();
    if login.is_empty() || login.len() > 64 || login.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a login is 1 to 64 characters without control characters".into(),
        ));
    }
    match (new.role, new.organization_id) {
        (Role::Administrator, _) | (_, Some(_)) => {}
        (_, None) => {
            return Err(StoreError::Invalid(
                "officers and school admins belong to an organization".into(),
            ));
        }
    }
    if let Some(organization_id) = new.organization_id {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1")
            .bind(organization_id)
            .fetch_optional(pool)
            .await
            .map_err(map_error)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!(
                "organization {organization_id}"
            )));
        }
    }
    let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE lower(login) = $1")
        .bind(login.to_lowercase())
        .fetch_optional(pool)
        .await
        .map_err(map_error)?;
    if taken.is_some() {
        return Err(StoreError::Rejected(format!("the login {login} is taken")));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (login, password_hash, role, organization_id, language, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&login)
    .bind(&new.password_hash)
    .bind(new.role.as_str())
    .bind(new.organization_id)
    .bind(&new.language)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(map_error)?;
    Ok(User {
        id,
        login,
        role: new.role,
        organization_id: new.organization_id,
        language: new.language,
        created_at: now,
        disabled_at: None,
    })
}

pub(super) async fn user(pool: &PgPool, id: i64) -> StoreResult<Option<User>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(map_error)?
    .as_ref()
    .map(user_of)
    .transpose()
}

pub(super) async fn user_credentials(
    pool: &PgPool,
    login: &str,
) -> StoreResult<Option<UserCredentials>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE lower(u.login) = $1"
    )))
    .bind(login.trim().to_lowercase())
    .fetch_optional(pool)
    .await
    .map_err(map_error)?
    .as_ref()
    .map(|row| {
        Ok(UserCredentials {
            user: user_of(row)?,
            password_hash: row.value("password_hash")?,
        })
    })
    .transpose()
}

pub(super) async fn users(pool: &PgPool) -> StoreResult<Vec<User>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u ORDER BY u.login"
    )))
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(user_of)
    .collect()
}

pub(super) async fn update_user(
    pool: &PgPool,
    id: i64,
    change: UserChange,
    now: Timestamp,
) -> StoreResult<()> {
    let mut transaction = pool.begin().await.map_err(map_error)?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(map_error)?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("user {id}")));
    }
    if let Some(hash) = &change.password_hash {
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
    }
    if let Some(language) = &change.language {
        sqlx::query("UPDATE users SET language = $2 WHERE id = $1")
            .bind(id)
            .bind(language)
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
    }
    if let Some(disabled) = change.disabled {
        sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1")
            .bind(id)
            .bind(disabled.then_some(now))
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
    }
    if change.password_hash.is_some() || change.disabled == Some(true) {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(map_error)?;
    }
    transaction.commit().await.map_err(map_error)
}

pub(super) async fn create_session(pool: &PgPool, session: NewSession) -> StoreResult<()> {
    // Expired sessions go whenever a new one is made.
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(session.created_at)
        .execute(pool)
        .await
        .map_err(map_error)?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&session.token_hash)
    .bind(session.user_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn session(
    pool: &PgPool,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<Session>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
    )))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(map_error)?
    .as_ref()
    .map(|row| {
        Ok(Session {
            user: user_of(row)?,
            csrf_token: row.value("csrf_token")?,
            expires_at: row.value("expires_at")?,
        })
    })
    .transpose()
}

pub(super) async fn delete_session(pool: &PgPool, token_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await
        .map_err(map_error)?;
    Ok(())
}

pub(super) async fn create_api_token(
    pool: &PgPool,
    user_id: i64,
    name: &str,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<ApiTokenInfo> {
    if user(pool, user_id).await?.is_none() {
        return Err(StoreError::NotFound(format!("user {user_id}")));
    }
    let name = name.trim();
    if name.len() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a token name is at most 100 characters without control characters".into(),
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, name, token_hash, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(map_error)?;
    Ok(ApiTokenInfo {
        id,
        user_id,
        name: name.to_string(),
        created_at: now,
        revoked_at: None,
    })
}

pub(super) async fn api_tokens(pool: &PgPool, user_id: i64) -> StoreResult<Vec<ApiTokenInfo>> {
    sqlx::query(
        "SELECT id AS token_id, user_id, name, created_at AS token_created_at, revoked_at
         FROM api_tokens WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(token_info_of)
    .collect()
}

pub(super) async fn revoke_api_token(
    pool: &PgPool,
    user_id: i64,
    id: i64,
    now: Timestamp,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3)
         WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await
    .map_err(map_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("API token {id}")));
    }
    Ok(())
}

pub(super) async fn api_token(pool: &PgPool, id: i64) -> StoreResult<Option<ApiTokenCredentials>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, t.id AS token_id, t.user_id, t.name,
                t.created_at AS token_created_at, t.revoked_at, t.token_hash
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(map_error)?
    .as_ref()
    .map(|row| {
        Ok(ApiTokenCredentials {
            info: token_info_of(row)?,
            user: user_of(row)?,
            token_hash: row.value("token_hash")?,
        })
    })
    .transpose()
}

pub(super) async fn record_audit(pool: &PgPool, entry: NewAuditEntry) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, organization_id, detail)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(entry.organization_id)
    .bind(&entry.detail)
    .execute(pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn audit_log(pool: &PgPool, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    sqlx::query(
        "SELECT id, at, actor, action, organization_id, detail FROM audit_log
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(|row| {
        Ok(AuditEntry {
            id: row.value("id")?,
            at: row.value("at")?,
            actor: row.value("actor")?,
            action: row.value("action")?,
            organization_id: row.value("organization_id")?,
            detail: row.value("detail")?,
        })
    })
    .collect()
}

/// Per organization, from each host's own row: `open_banned`/`open_approved` are kept
/// with its findings, and `hosts_organization_counters` covers the whole aggregate.
pub(super) async fn organization_counts(
    pool: &PgPool,
    reporting_since: Timestamp,
    silent_before: Timestamp,
) -> StoreResult<Vec<OrganizationCounts>> {
    let query = "SELECT h.organization_id,
                COUNT(*) AS enrolled,
                SUM(CASE WHEN h.last_seen_at >= $1 THEN 1 ELSE 0 END) AS reporting,
                SUM(CASE WHEN h.last_seen_at IS NULL OR h.last_seen_at < $2 THEN 1 ELSE 0 END)
                   AS silent,
                SUM(CASE WHEN h.last_seen_at >= $1 AND h.open_banned > 0 THEN 1 ELSE 0 END)
                   AS with_banned,
                SUM(CASE WHEN h.last_seen_at >= $1 AND h.open_approved > 0 THEN 1 ELSE 0 END)
                   AS with_approved
         FROM hosts h GROUP BY h.organization_id ORDER BY h.organization_id";
    sqlx::query(query)
        .bind(reporting_since)
        .bind(silent_before)
        .fetch_all(pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(|row| {
            Ok(OrganizationCounts {
                organization_id: row.value("organization_id")?,
                enrolled: row.value("enrolled")?,
                reporting: row.value("reporting")?,
                silent: row.value("silent")?,
                with_banned: row.value("with_banned")?,
                with_approved: row.value("with_approved")?,
            })
        })
        .collect()
}

pub(super) async fn host_summaries(
    pool: &PgPool,
    organization_id: i64,
) -> StoreResult<Vec<HostSummary>> {
    sqlx::query(
        "SELECT h.id, h.hostname, h.os_name, h.agent_version, h.last_seen_at, h.open_banned,
                h.open_approved
         FROM hosts h WHERE h.organization_id = $1 ORDER BY h.hostname, h.id",
    )
    .bind(organization_id)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(|row| {
        Ok(HostSummary {
            host_id: row.value("id")?,
            hostname: row.value("hostname")?,
            os_name: row.value("os_name")?,
            agent_version: row.value("agent_version")?,
            last_seen_at: row.value("last_seen_at")?,
            open_banned: row.value("open_banned")?,
            open_approved: row.value("open_approved")?,
        })
    })
    .collect()
}

pub(super) async fn host_detail(pool: &PgPool, host_id: i64) -> StoreResult<Option<HostDetail>> {
    sqlx::query(
        "SELECT id, organization_id, machine_id, hostname, os_id, os_name, agent_version,
                enrolled_at, last_seen_at, last_scan_at, inventory_digest, catalog_revision
         FROM hosts WHERE id = $1",
    )
    .bind(host_id)
    .fetch_optional(pool)
    .await
    .map_err(map_error)?
    .map(|row| {
        Ok(HostDetail {
            host_id: row.value("id")?,
            organization_id: row.value("organization_id")?,
            machine_id: row.value("machine_id")?,
            hostname: row.value("hostname")?,
            os_id: row.value("os_id")?,
            os_name: row.value("os_name")?,
            agent_version: row.value("agent_version")?,
            enrolled_at: row.value("enrolled_at")?,
            last_seen_at: row.value("last_seen_at")?,
            last_scan_at: row.value("last_scan_at")?,
            inventory_digest: row.value("inventory_digest")?,
            catalog_revision: row.value("catalog_revision")?,
        })
    })
    .transpose()
}

pub(super) async fn host_apps(pool: &PgPool, host_id: i64) -> StoreResult<Vec<HostApp>> {
    sqlx::query(
        "SELECT app_id, app_name, status, strength, users, evidence, first_seen, last_seen,
                resolved_at
         FROM host_apps WHERE host_id = $1
         ORDER BY CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END, app_name, app_id",
    )
    .bind(host_id)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(|row| {
        let users: String = row.value("users")?;
        Ok(HostApp {
            app_id: row.value("app_id")?,
            app_name: row.value("app_name")?,
            status: row.value("status")?,
            strength: row.value("strength")?,
            users: users_of(&users),
            evidence: row.value("evidence")?,
            first_seen: row.value("first_seen")?,
            last_seen: row.value("last_seen")?,
            resolved_at: row.value("resolved_at")?,
        })
    })
    .collect()
}

pub(super) async fn mark_handled(pool: &PgPool, mark: HandledMark) -> StoreResult<()> {
    if mark.note.len() > 2000 {
        return Err(StoreError::Invalid(
            "a note is at most 2000 bytes long".into(),
        ));
    }
    let known: Option<i64> =
        sqlx::query_scalar("SELECT host_id FROM host_apps WHERE host_id = $1 AND app_id = $2")
            .bind(mark.host_id)
            .bind(&mark.app_id)
            .fetch_optional(pool)
            .await
            .map_err(map_error)?;
    if known.is_none() {
        return Err(StoreError::NotFound(format!(
            "application {} on host {}",
            mark.app_id, mark.host_id
        )));
    }
    sqlx::query(
        "INSERT INTO handled_marks (host_id, app_id, note, by_login, at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (host_id, app_id) DO UPDATE
         SET note = excluded.note, by_login = excluded.by_login, at = excluded.at",
    )
    .bind(mark.host_id)
    .bind(&mark.app_id)
    .bind(&mark.note)
    .bind(&mark.by_login)
    .bind(mark.at)
    .execute(pool)
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(super) async fn handled_marks(
    pool: &PgPool,
    organization_id: i64,
) -> StoreResult<Vec<HandledMark>> {
    let query = format!(
        "{SUBTREE}
         SELECT m.host_id, m.app_id, m.note, m.by_login, m.at
         FROM handled_marks m JOIN hosts h ON h.id = m.host_id
         WHERE h.organization_id = ANY(ARRAY(SELECT id FROM subtree))
         ORDER BY m.host_id, m.app_id"
    );
    sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(organization_id)
        .fetch_all(pool)
        .await
        .map_err(map_error)?
        .iter()
        .map(|row| {
            Ok(HandledMark {
                host_id: row.value("host_id")?,
                app_id: row.value("app_id")?,
                note: row.value("note")?,
                by_login: row.value("by_login")?,
                at: row.value("at")?,
            })
        })
        .collect()
}

pub(super) async fn freeze_weekly_figures(
    pool: &PgPool,
    figures: &[WeeklyFigures],
    now: Timestamp,
) -> StoreResult<u64> {
    let mut transaction = pool.begin().await.map_err(map_error)?;
    let mut added = 0;
    for row in figures {
        let done = sqlx::query(
            "INSERT INTO weekly_snapshots (organization_id, week, expected_pcs, enrolled,
                 reporting, silent, with_banned, with_approved, frozen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (organization_id, week) DO NOTHING",
        )
        .bind(row.organization_id)
        .bind(&row.week)
        .bind(row.expected_pcs)
        .bind(row.enrolled)
        .bind(row.reporting)
        .bind(row.silent)
        .bind(row.with_banned)
        .bind(row.with_approved)
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(map_error)?;
        added += done.rows_affected();
    }
    transaction.commit().await.map_err(map_error)?;
    Ok(added)
}

const FIGURE_COLUMNS: &str = "organization_id, week, expected_pcs, enrolled, reporting, silent,
     with_banned, with_approved";

pub(super) async fn weekly_figures_of_week(
    pool: &PgPool,
    week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FIGURE_COLUMNS} FROM weekly_snapshots WHERE week = $1 ORDER BY organization_id"
    )))
    .bind(week)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(figures_of)
    .collect()
}

pub(super) async fn weekly_figures_of_organization(
    pool: &PgPool,
    organization_id: i64,
    from_week: &str,
    to_week: &str,
) -> StoreResult<Vec<WeeklyFigures>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FIGURE_COLUMNS} FROM weekly_snapshots
         WHERE organization_id = $1 AND week COLLATE \"C\" >= $2 AND week COLLATE \"C\" <= $3
         ORDER BY week COLLATE \"C\""
    )))
    .bind(organization_id)
    .bind(from_week)
    .bind(to_week)
    .fetch_all(pool)
    .await
    .map_err(map_error)?
    .iter()
    .map(figures_of)
    .collect()
}
