//! The dashboard's part of the store: people, sessions, API tokens, the audit log,
//! per-organization counts, the school and PC pages, handled notes and weekly figures.

use super::queries::{SUBTREE, users_of};
use super::{SqlStore, on_backend};
use crate::store::rules;
use crate::store::{
    ApiTokenCredentials, ApiTokenInfo, ApplicationUse, AuditEntry, FrozenHost, FrozenHostList,
    HandledMark, HostApp, HostDetail, HostListToFreeze, HostSummary, NewAuditEntry, NewSession,
    NewUser, OrganizationCounts, Session, StoreError, StoreResult, Timestamp, User, UserChange,
    UserCredentials, WeeklyFigures,
};

const USER_COLUMNS: &str = "u.id, u.login, u.role, u.organization_id, u.language, u.created_at,
     u.disabled_at";
const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.name, t.created_at, t.revoked_at";

/// A user and a value of another table, read from one row (the other table's columns
/// come first, the user's are prefixed `u_`).
#[derive(sqlx::FromRow)]
struct WithUser<T> {
    #[sqlx(flatten)]
    value: T,
    #[sqlx(flatten)]
    user: PrefixedUser,
}

/// A [`User`] whose columns are prefixed `u_`, for rows that carry a user beside
/// something else with the same column names.
#[derive(sqlx::FromRow)]
struct PrefixedUser {
    u_id: i64,
    u_login: String,
    #[sqlx(try_from = "String")]
    u_role: crate::store::Role,
    u_organization_id: Option<i64>,
    u_language: String,
    u_created_at: Timestamp,
    u_disabled_at: Option<Timestamp>,
}

impl From<PrefixedUser> for User {
    fn from(row: PrefixedUser) -> User {
        User {
            id: row.u_id,
            login: row.u_login,
            role: row.u_role,
            organization_id: row.u_organization_id,
            language: row.u_language,
            created_at: row.u_created_at,
            disabled_at: row.u_disabled_at,
        }
    }
}

/// The user columns of `u`, prefixed `u_`.
const PREFIXED_USER_COLUMNS: &str = "u.id AS u_id, u.login AS u_login, u.role AS u_role,
     u.organization_id AS u_organization_id, u.language AS u_language,
     u.created_at AS u_created_at, u.disabled_at AS u_disabled_at";

#[derive(sqlx::FromRow)]
struct PasswordHash {
    password_hash: String,
}

#[derive(sqlx::FromRow)]
struct SessionColumns {
    csrf_token: String,
    expires_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct TokenColumns {
    #[sqlx(flatten)]
    info: ApiTokenInfo,
    token_hash: String,
}

pub(super) async fn create_user(
    store: &SqlStore,
    new: NewUser,
    now: Timestamp,
) -> StoreResult<User> {
    let login = rules::check_new_user(&new.login, new.role, new.organization_id)?;
    if let Some(organization_id) = new.organization_id
        && super::organizations::organization(store, organization_id)
            .await?
            .is_none()
    {
        return Err(StoreError::NotFound(format!(
            "organization {organization_id}"
        )));
    }
    let taken: Option<i64> = on_backend!(store, |pool| {
        sqlx::query_scalar("SELECT id FROM users WHERE lower(login) = $1")
            .bind(rules::login_key(&login))
            .fetch_optional(pool)
            .await?
    });
    if taken.is_some() {
        return Err(StoreError::Rejected(format!("the login {login} is taken")));
    }
    let id: i64 = on_backend!(store, |pool| {
        sqlx::query_scalar(
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
        .await?
    });
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

pub(super) async fn user(store: &SqlStore, id: i64) -> StoreResult<Option<User>> {
    let query = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

pub(super) async fn user_credentials(
    store: &SqlStore,
    login: &str,
) -> StoreResult<Option<UserCredentials>> {
    let query = format!(
        "SELECT u.password_hash, {PREFIXED_USER_COLUMNS} FROM users u WHERE lower(u.login) = $1"
    );
    let row: Option<WithUser<PasswordHash>> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(rules::login_key(login))
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|row| UserCredentials {
        user: row.user.into(),
        password_hash: row.value.password_hash,
    }))
}

pub(super) async fn users(store: &SqlStore) -> StoreResult<Vec<User>> {
    let query = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.login");
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn update_user(
    store: &SqlStore,
    id: i64,
    change: UserChange,
    now: Timestamp,
) -> StoreResult<()> {
    on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *transaction)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        if let Some(hash) = &change.password_hash {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(id)
                .bind(hash)
                .execute(&mut *transaction)
                .await?;
        }
        if let Some(language) = &change.language {
            sqlx::query("UPDATE users SET language = $2 WHERE id = $1")
                .bind(id)
                .bind(language)
                .execute(&mut *transaction)
                .await?;
        }
        if let Some(disabled) = change.disabled {
            sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1")
                .bind(id)
                .bind(disabled.then_some(now))
                .execute(&mut *transaction)
                .await?;
        }
        if change.password_hash.is_some() || change.disabled == Some(true) {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

pub(super) async fn create_session(store: &SqlStore, session: NewSession) -> StoreResult<()> {
    on_backend!(store, |pool| {
        // Expired sessions go whenever a new one is made.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(pool)
            .await?;
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
        .await?;
    });
    Ok(())
}

pub(super) async fn session(
    store: &SqlStore,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<Session>> {
    let query = format!(
        "SELECT s.csrf_token, s.expires_at, {PREFIXED_USER_COLUMNS}
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
    );
    let row: Option<WithUser<SessionColumns>> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|row| Session {
        user: row.user.into(),
        csrf_token: row.value.csrf_token,
        expires_at: row.value.expires_at,
    }))
}

pub(super) async fn delete_session(store: &SqlStore, token_hash: &str) -> StoreResult<()> {
    on_backend!(store, |pool| {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub(super) async fn create_api_token(
    store: &SqlStore,
    user_id: i64,
    name: &str,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<ApiTokenInfo> {
    if user(store, user_id).await?.is_none() {
        return Err(StoreError::NotFound(format!("user {user_id}")));
    }
    let name = rules::check_token_name(name)?;
    let id: i64 = on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(now)
        .fetch_one(pool)
        .await?
    });
    Ok(ApiTokenInfo {
        id,
        user_id,
        name: name.to_string(),
        created_at: now,
        revoked_at: None,
    })
}

pub(super) async fn api_tokens(store: &SqlStore, user_id: i64) -> StoreResult<Vec<ApiTokenInfo>> {
    let query =
        format!("SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.id");
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(user_id)
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn revoke_api_token(
    store: &SqlStore,
    user_id: i64,
    id: i64,
    now: Timestamp,
) -> StoreResult<()> {
    let done = on_backend!(store, |pool| {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3)
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if done == 0 {
        return Err(StoreError::NotFound(format!("API token {id}")));
    }
    Ok(())
}

pub(super) async fn api_token(
    store: &SqlStore,
    id: i64,
) -> StoreResult<Option<ApiTokenCredentials>> {
    let query = format!(
        "SELECT {TOKEN_COLUMNS}, t.token_hash, {PREFIXED_USER_COLUMNS}
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL"
    );
    let row: Option<WithUser<TokenColumns>> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|row| ApiTokenCredentials {
        info: row.value.info,
        user: row.user.into(),
        token_hash: row.value.token_hash,
    }))
}

pub(super) async fn record_audit(store: &SqlStore, entry: NewAuditEntry) -> StoreResult<()> {
    on_backend!(store, |pool| {
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
        .await?;
    });
    Ok(())
}

pub(super) async fn audit_log(store: &SqlStore, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id, at, actor, action, organization_id, detail FROM audit_log
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?
    }))
}

/// Per organization, from each host's own row: `open_banned`/`open_approved` are kept
/// with its findings, and `hosts_active_counters` covers the whole aggregate.
/// A host's state is its last report: the banned and approved counts do not look at
/// when it reported.
pub(super) async fn organization_counts(
    store: &SqlStore,
    reporting_since: Timestamp,
    silent_before: Timestamp,
) -> StoreResult<Vec<OrganizationCounts>> {
    // The federated organizations' counts change only with a lower collector's message:
    // kept in memory under the tree's version (read first, see `cache.rs`).
    let versions = super::cache::versions(store).await?;
    let kept = store.cache.federated_counts(versions.tree);
    let (mut rows, federated): (Vec<OrganizationCounts>, Option<Vec<OrganizationCounts>>) =
        on_backend!(store, |pool| {
            let own = sqlx::query_as(
                "SELECT h.organization_id,
                    COUNT(*) AS enrolled,
                    SUM(CASE WHEN h.last_seen_at >= $1 THEN 1 ELSE 0 END) AS reporting,
                    SUM(CASE WHEN h.last_seen_at IS NULL OR h.last_seen_at < $2 THEN 1 ELSE 0 END)
                       AS silent,
                    SUM(CASE WHEN h.open_banned > 0 THEN 1 ELSE 0 END) AS with_banned,
                    SUM(CASE WHEN h.open_approved > 0 THEN 1 ELSE 0 END) AS with_approved,
                    SUM(CASE WHEN h.last_seen_at IS NOT NULL THEN 1 ELSE 0 END) AS known,
                    SUM(CASE WHEN (h.last_seen_at IS NULL OR h.last_seen_at < $2)
                              AND h.open_banned > 0 THEN 1 ELSE 0 END) AS silent_with_banned
                 FROM hosts h WHERE h.retired_at IS NULL
                 GROUP BY h.organization_id",
            )
            .bind(reporting_since)
            .bind(silent_before)
            .fetch_all(pool)
            .await?;
            let federated = match kept {
                Some(_) => None,
                None => Some(
                    sqlx::query_as(
                        "SELECT organization_id, enrolled, reporting, silent, with_banned,
                            with_approved, known, silent_with_banned
                         FROM federated_counts",
                    )
                    .fetch_all(pool)
                    .await?,
                ),
            };
            (own, federated)
        });
    let federated = match kept {
        Some(kept) => kept,
        None => {
            let federated = std::sync::Arc::new(federated.unwrap_or_default());
            store
                .cache
                .keep_federated_counts(versions.tree, federated.clone());
            federated
        }
    };
    // A federated organization has no hosts here: the two never share an organization.
    rows.extend(federated.iter().cloned());
    rows.sort_unstable_by_key(|row| row.organization_id);
    Ok(rows)
}

pub(super) async fn host_summaries(
    store: &SqlStore,
    organization_id: i64,
) -> StoreResult<Vec<HostSummary>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT h.id AS host_id, h.hostname, h.os_name, h.agent_version, h.last_seen_at,
                    h.open_banned, h.open_approved
             FROM hosts h WHERE h.organization_id = $1 AND h.retired_at IS NULL
             ORDER BY h.hostname, h.id",
        )
        .bind(organization_id)
        .fetch_all(pool)
        .await?
    }))
}

pub(super) async fn host_detail(store: &SqlStore, host_id: i64) -> StoreResult<Option<HostDetail>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id AS host_id, organization_id, machine_id, hostname, os_id, os_name,
                    agent_version, enrolled_at, last_seen_at, last_scan_at, inventory_digest,
                    catalog_revision
             FROM hosts WHERE id = $1",
        )
        .bind(host_id)
        .fetch_optional(pool)
        .await?
    }))
}

#[derive(sqlx::FromRow)]
struct HostAppRecord {
    app_id: String,
    app_name: String,
    #[sqlx(try_from = "String")]
    status: sverka_shared::AppStatus,
    #[sqlx(try_from = "String")]
    strength: sverka_shared::Strength,
    users: String,
    evidence: String,
    first_seen: Timestamp,
    last_seen: Timestamp,
    resolved_at: Option<Timestamp>,
}

pub(super) async fn host_apps(store: &SqlStore, host_id: i64) -> StoreResult<Vec<HostApp>> {
    let rows: Vec<HostAppRecord> = on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT app_id, app_name, status, strength, users, evidence, first_seen, last_seen,
                    resolved_at
             FROM host_apps WHERE host_id = $1
             ORDER BY CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END, app_name, app_id",
        )
        .bind(host_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|row| HostApp {
            app_id: row.app_id,
            app_name: row.app_name,
            status: row.status,
            strength: row.strength,
            users: users_of(&row.users),
            evidence: row.evidence,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            resolved_at: row.resolved_at,
        })
        .collect())
}

pub(super) async fn mark_handled(store: &SqlStore, mark: HandledMark) -> StoreResult<()> {
    rules::check_note(&mark.note)?;
    let known: Option<i64> = on_backend!(store, |pool| {
        sqlx::query_scalar("SELECT host_id FROM host_apps WHERE host_id = $1 AND app_id = $2")
            .bind(mark.host_id)
            .bind(&mark.app_id)
            .fetch_optional(pool)
            .await?
    });
    if known.is_none() {
        return Err(StoreError::NotFound(format!(
            "application {} on host {}",
            mark.app_id, mark.host_id
        )));
    }
    on_backend!(store, |pool| {
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
        .await?;
    });
    Ok(())
}

pub(super) async fn handled_marks(
    store: &SqlStore,
    organization_id: i64,
) -> StoreResult<Vec<HandledMark>> {
    Ok(on_backend!(store, |pool| {
        let query = format!(
            "{SUBTREE}
             SELECT m.host_id, m.app_id, m.note, m.by_login, m.at
             FROM handled_marks m JOIN hosts h ON h.id = m.host_id
             WHERE h.organization_id {}
             ORDER BY m.host_id, m.app_id",
            D::IN_SUBTREE
        );
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn freeze_weekly_figures(
    store: &SqlStore,
    figures: &[WeeklyFigures],
    applications: &[ApplicationUse],
    hosts: &HostListToFreeze,
    now: Timestamp,
) -> StoreResult<u64> {
    Ok(on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let mut added = 0;
        for row in figures {
            let new = sqlx::query(
                "INSERT INTO weekly_snapshots (organization_id, week, expected_pcs, enrolled,
                     reporting, silent, with_banned, with_approved, known, silent_with_banned,
                     used_approved, used_banned, frozen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
            .bind(row.known)
            .bind(row.silent_with_banned)
            .bind(row.used_approved)
            .bind(row.used_banned)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            if new == 1 {
                added += 1;
                // The organization's own PCs per application, with its figures: frozen
                // once, like them.
                for used in applications
                    .iter()
                    .filter(|used| used.organization_id == row.organization_id)
                {
                    sqlx::query(
                        "INSERT INTO weekly_app_use (organization_id, week, app_id, status, pcs)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (organization_id, week, app_id, status) DO NOTHING",
                    )
                    .bind(used.organization_id)
                    .bind(&row.week)
                    .bind(&used.app_id)
                    .bind(&used.status)
                    .bind(used.pcs)
                    .execute(&mut *transaction)
                    .await?;
                }
            }
        }
        if added > 0 {
            sqlx::query(super::cache::BUMP_VERSION)
                .bind(super::cache::WEEKS)
                .execute(&mut *transaction)
                .await?;
        }
        // The PCs behind the figures, written once and only with new figures: a later
        // freeze of the same week (every ten minutes, or by another collector) finds
        // the list and keeps it as it was, and figures frozen before the list was kept
        // (by an earlier version) get none rather than one of a later state.
        let mut new_list = false;
        if added > 0 {
            new_list = sqlx::query(
                "INSERT INTO weekly_host_lists (week, boundaries, silent_before, frozen_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (week, boundaries) DO NOTHING",
            )
            .bind(&hosts.week)
            .bind(&hosts.boundaries)
            .bind(hosts.silent_before)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected()
                == 1;
            if new_list {
                sqlx::query(
                    "INSERT INTO weekly_list_hosts (week, boundaries, host_id, organization_id,
                         hostname, last_seen_at, open_banned)
                     SELECT $1, $2, h.id, h.organization_id, h.hostname, h.last_seen_at,
                         h.open_banned
                     FROM hosts h WHERE h.retired_at IS NULL AND h.open_banned > 0",
                )
                .bind(&hosts.week)
                .bind(&hosts.boundaries)
                .execute(&mut *transaction)
                .await?;
            }
        }
        transaction.commit().await?;
        if new_list && let Some(analyze) = D::ANALYZE_WEEK_LISTS {
            sqlx::query(analyze).execute(pool).await?;
        }
        added
    }))
}

pub(super) async fn frozen_host_list(
    store: &SqlStore,
    week: &str,
    boundaries: &str,
    organization_id: i64,
    directly_under: bool,
) -> StoreResult<Option<FrozenHostList>> {
    Ok(on_backend!(store, |pool| {
        let list: Option<(Timestamp, Timestamp)> = sqlx::query_as(
            "SELECT frozen_at, silent_before FROM weekly_host_lists
             WHERE week = $1 AND boundaries = $2",
        )
        .bind(week)
        .bind(boundaries)
        .fetch_optional(pool)
        .await?;
        match list {
            None => None,
            Some((frozen_at, silent_before)) => {
                let which = if directly_under {
                    "= $1"
                } else {
                    D::IN_SUBTREE
                };
                let query = format!(
                    "{SUBTREE}
                     SELECT l.host_id, l.organization_id, l.hostname, l.last_seen_at,
                         l.open_banned
                     FROM weekly_list_hosts l JOIN organizations o ON o.id = l.organization_id
                     WHERE l.week = $2 AND l.boundaries = $3 AND l.organization_id {which}
                     ORDER BY o.name, l.hostname, l.host_id"
                );
                let hosts: Vec<FrozenHost> = sqlx::query_as(sqlx::AssertSqlSafe(query))
                    .bind(organization_id)
                    .bind(week)
                    .bind(boundaries)
                    .fetch_all(pool)
                    .await?;
                Some(FrozenHostList {
                    frozen_at,
                    silent_before,
                    hosts,
                })
            }
        }
    }))
}
