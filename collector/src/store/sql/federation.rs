//! Federation (migration 0018). On the upstream: links, and a lower collector's message
//! stored in one write transaction (its organizations as rows of the link, its current
//! figures when newer than the last applied, its frozen weeks once; rows written in
//! multi-row statements, organizations only when new or changed). On the lower
//! collector: its upstream and how the pushes went.

use std::collections::{BTreeMap, HashMap};
use sverka_shared::federation::{Detail, FiguresMessage, MemberOrganization};

use super::{SqlStore, cache, on_backend};
use crate::store::{
    FederatedViolation, IntakeOutcome, LinkCredentials, LinkInfo, PushOutcome, StoreError,
    StoreResult, Timestamp, UpstreamLink,
};

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: i64,
    organization_id: i64,
    detail: String,
    created_at: i64,
    revoked_at: Option<i64>,
    last_received_at: Option<i64>,
    last_generated_at: Option<i64>,
    newest_week: Option<String>,
}

fn detail(word: &str) -> StoreResult<Detail> {
    word.parse().map_err(|error: String| {
        StoreError::Database(format!("federation_links.detail: {error}").into())
    })
}

impl TryFrom<LinkRow> for LinkInfo {
    type Error = StoreError;

    fn try_from(row: LinkRow) -> StoreResult<LinkInfo> {
        Ok(LinkInfo {
            id: row.id,
            organization_id: row.organization_id,
            detail: detail(&row.detail)?,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            last_received_at: row.last_received_at,
            last_generated_at: row.last_generated_at,
            newest_week: row.newest_week,
        })
    }
}

const LINK_COLUMNS: &str = "l.id, l.organization_id, l.detail, l.created_at, l.revoked_at,
    l.last_received_at, l.last_generated_at,
    (SELECT MAX(w.week) FROM federated_weeks w JOIN organizations o ON o.id = w.organization_id
     WHERE o.federated_link_id = l.id) AS newest_week";

pub(super) async fn create_link(
    store: &SqlStore,
    organization_id: i64,
    secret_hash: &str,
    detail: Detail,
    now: Timestamp,
) -> StoreResult<LinkInfo> {
    let Some(organization) = super::organizations::organization(store, organization_id).await?
    else {
        return Err(StoreError::NotFound(format!(
            "organization {organization_id}"
        )));
    };
    if organization.federated_link_id.is_some() {
        return Err(StoreError::Rejected(format!(
            "organization {organization_id} is federated: its figures come from another \
             collector, which links to its own upstream"
        )));
    }
    let id: i64 = on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO federation_links (organization_id, secret_hash, detail, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(organization_id)
        .bind(secret_hash)
        .bind(detail.as_str())
        .bind(now)
        .fetch_one(pool)
        .await?
    });
    link(store, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("link {id}")))
}

pub(super) async fn revoke_link(store: &SqlStore, id: i64, now: Timestamp) -> StoreResult<()> {
    let changed = on_backend!(store, |pool| {
        sqlx::query(
            "UPDATE federation_links SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(StoreError::NotFound(format!("link {id}")));
    }
    Ok(())
}

async fn link(store: &SqlStore, id: i64) -> StoreResult<Option<LinkInfo>> {
    let query = format!("SELECT {LINK_COLUMNS} FROM federation_links l WHERE l.id = $1");
    let row: Option<LinkRow> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.map(LinkInfo::try_from).transpose()
}

pub(super) async fn links(store: &SqlStore) -> StoreResult<Vec<LinkInfo>> {
    let query = format!("SELECT {LINK_COLUMNS} FROM federation_links l ORDER BY l.id");
    let rows: Vec<LinkRow> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(LinkInfo::try_from).collect()
}

pub(super) async fn link_credentials(
    store: &SqlStore,
    id: i64,
) -> StoreResult<Option<LinkCredentials>> {
    let row: Option<(i64, i64, String, String, Option<i64>)> = on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id, organization_id, secret_hash, detail, revoked_at
             FROM federation_links WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    row.map(|(id, organization_id, secret_hash, word, revoked_at)| {
        Ok(LinkCredentials {
            id,
            organization_id,
            secret_hash,
            detail: detail(&word)?,
            revoked_at,
        })
    })
    .transpose()
}

/// Rows per multi-row statement: 13 columns at most, well inside SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// A federated organization as held.
#[derive(sqlx::FromRow)]
struct HeldOrganization {
    id: i64,
    federated_key: String,
    parent_id: Option<i64>,
    name: String,
    kind: String,
    expected_pcs: i64,
    federated_gone_at: Option<i64>,
}

impl HeldOrganization {
    fn same(&self, organization: &MemberOrganization, parent_id: i64) -> bool {
        self.federated_gone_at.is_none()
            && self.parent_id == Some(parent_id)
            && self.name == organization.name
            && self.kind == organization.kind
            && self.expected_pcs == organization.expected_pcs
    }
}

/// The message's organizations by depth: roots first, then their children, ...
fn levels(message: &FiguresMessage) -> Vec<Vec<&MemberOrganization>> {
    let parent_of: HashMap<&str, Option<&str>> = message
        .organizations
        .iter()
        .map(|organization| (organization.key.as_str(), organization.parent.as_deref()))
        .collect();
    let depth = |key: &str| {
        let mut depth = 0usize;
        let mut at = parent_of.get(key).copied().flatten();
        while let Some(parent) = at {
            depth += 1;
            if depth > parent_of.len() {
                break;
            }
            at = parent_of.get(parent).copied().flatten();
        }
        depth
    };
    let mut levels: Vec<Vec<&MemberOrganization>> = Vec::new();
    for organization in &message.organizations {
        let depth = depth(&organization.key);
        if levels.len() <= depth {
            levels.resize_with(depth + 1, Vec::new);
        }
        levels[depth].push(organization);
    }
    levels
}

/// Stores a checked message of `link_id` in one write transaction. The link is read
/// (and on PostgreSQL locked) first: a link revoked meanwhile stores nothing. Every
/// organization is the link's, so nothing outside the link's organization is written.
pub(super) async fn store_federated_figures(
    store: &SqlStore,
    link_id: i64,
    message: &FiguresMessage,
    now: Timestamp,
) -> StoreResult<IntakeOutcome> {
    let ordered = levels(message);
    on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let read = format!(
            "SELECT organization_id, revoked_at, last_generated_at FROM federation_links
             WHERE id = $1{}",
            D::FOR_UPDATE
        );
        let (link_organization, revoked_at, last_generated_at): (i64, Option<i64>, Option<i64>) =
            sqlx::query_as(sqlx::AssertSqlSafe(read))
                .bind(link_id)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("link {link_id}")))?;
        if revoked_at.is_some() {
            return Err(StoreError::Rejected(format!("link {link_id} was revoked")));
        }
        let newer = last_generated_at.is_none_or(|last| message.generated_at > last);
        // The link's organizations as held: only what changed is written.
        let existing: Vec<HeldOrganization> = sqlx::query_as(
            "SELECT id, federated_key, parent_id, name, kind, expected_pcs, federated_gone_at
             FROM organizations WHERE federated_link_id = $1",
        )
        .bind(link_id)
        .fetch_all(&mut *transaction)
        .await?;
        let mut ids: HashMap<String, i64> = HashMap::new();
        let mut held: HashMap<String, HeldOrganization> = HashMap::new();
        for organization in existing {
            ids.insert(organization.federated_key.clone(), organization.id);
            held.insert(organization.federated_key.clone(), organization);
        }
        // New organizations one depth at a time (a level's parents exist by then), each
        // level in multi-row statements.
        let mut tree_changed = newer;
        for level in ordered {
            let mut new_rows = Vec::new();
            for organization in level {
                let parent_id = match &organization.parent {
                    Some(parent) => *ids.get(parent).ok_or_else(|| {
                        StoreError::Invalid(format!("parent {parent:?} of {:?}", organization.key))
                    })?,
                    None => link_organization,
                };
                match held.get(&organization.key) {
                    Some(row) if newer && !row.same(organization, parent_id) => {
                        sqlx::query(
                            "UPDATE organizations SET parent_id = $2, name = $3, kind = $4,
                                    expected_pcs = $5, federated_gone_at = NULL WHERE id = $1",
                        )
                        .bind(row.id)
                        .bind(parent_id)
                        .bind(&organization.name)
                        .bind(&organization.kind)
                        .bind(organization.expected_pcs)
                        .execute(&mut *transaction)
                        .await?;
                    }
                    Some(_) => {}
                    None => new_rows.push((parent_id, organization)),
                }
            }
            for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::<D>::new(
                    "INSERT INTO organizations (parent_id, name, kind, expected_pcs, created_at,
                         federated_link_id, federated_key) ",
                );
                insert.push_values(chunk, |mut row, (parent_id, organization)| {
                    row.push_bind(*parent_id)
                        .push_bind(organization.name.clone())
                        .push_bind(organization.kind.clone())
                        .push_bind(organization.expected_pcs)
                        .push_bind(now)
                        .push_bind(link_id)
                        .push_bind(organization.key.clone());
                });
                insert.push(" RETURNING id, federated_key");
                tree_changed = true;
                let created: Vec<(i64, String)> =
                    insert.build_query_as().fetch_all(&mut *transaction).await?;
                ids.extend(created.into_iter().map(|(id, key)| (key, id)));
            }
        }
        // Organizations held but no longer sent (deleted there): kept for the weeks
        // they were counted in, expecting no PC from now on.
        if newer {
            let sent: std::collections::HashSet<&str> = message
                .organizations
                .iter()
                .map(|organization| organization.key.as_str())
                .collect();
            let gone: Vec<i64> = held
                .values()
                .filter(|row| {
                    row.federated_gone_at.is_none() && !sent.contains(row.federated_key.as_str())
                })
                .map(|row| row.id)
                .collect();
            for chunk in gone.chunks(ROWS_PER_STATEMENT) {
                let mut update = sqlx::QueryBuilder::<D>::new(
                    "UPDATE organizations SET expected_pcs = 0, federated_gone_at = ",
                );
                update.push_bind(now).push(" WHERE id IN (");
                let mut ids = update.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                update.push(")");
                update.build().execute(&mut *transaction).await?;
                tree_changed = true;
            }
        }
        let id_of = |key: &str| {
            ids.get(key)
                .copied()
                .ok_or_else(|| StoreError::Invalid(format!("organization {key:?}")))
        };
        if newer {
            for table in ["federated_counts", "federated_violations", "federated_use"] {
                let clear = format!(
                    "DELETE FROM {table} WHERE organization_id IN
                     (SELECT id FROM organizations WHERE federated_link_id = $1)"
                );
                sqlx::query(sqlx::AssertSqlSafe(clear))
                    .bind(link_id)
                    .execute(&mut *transaction)
                    .await?;
            }
            let counts = message
                .current
                .iter()
                .map(|figures| Ok((id_of(&figures.organization)?, figures)))
                .collect::<StoreResult<Vec<_>>>()?;
            for chunk in counts.chunks(ROWS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::<D>::new(
                    "INSERT INTO federated_counts (organization_id, as_of, enrolled, reporting,
                         silent, with_banned, with_approved, known, silent_with_banned) ",
                );
                insert.push_values(chunk, |mut row, (id, figures)| {
                    row.push_bind(*id)
                        .push_bind(message.generated_at)
                        .push_bind(figures.enrolled)
                        .push_bind(figures.reporting)
                        .push_bind(figures.silent)
                        .push_bind(figures.with_banned)
                        .push_bind(figures.with_approved)
                        .push_bind(figures.known)
                        .push_bind(figures.silent_with_banned);
                });
                insert.build().execute(&mut *transaction).await?;
            }
            // One row per organization and application (the last one listed wins).
            let mut violations: BTreeMap<(i64, &str), (i64, String)> = BTreeMap::new();
            for row in &message.violations {
                let hosts = serde_json::to_string(&row.hosts)
                    .map_err(|error| StoreError::Invalid(error.to_string()))?;
                violations.insert((id_of(&row.organization)?, &row.app_id), (row.pcs, hosts));
            }
            let violations: Vec<_> = violations.into_iter().collect();
            for chunk in violations.chunks(ROWS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::<D>::new(
                    "INSERT INTO federated_violations (organization_id, app_id, pcs, hosts) ",
                );
                insert.push_values(chunk, |mut row, ((id, app_id), (pcs, hosts))| {
                    row.push_bind(*id)
                        .push_bind(app_id.to_string())
                        .push_bind(*pcs)
                        .push_bind(hosts.clone());
                });
                insert.build().execute(&mut *transaction).await?;
            }
            if let Some(week) = message.week {
                let mut used: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
                for row in &message.used {
                    used.insert(
                        (id_of(&row.organization)?, &row.app_id, &row.status),
                        row.pcs,
                    );
                }
                let used: Vec<_> = used.into_iter().collect();
                for chunk in used.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<D>::new(
                        "INSERT INTO federated_use (organization_id, app_id, status, week_start,
                             week_end, pcs) ",
                    );
                    insert.push_values(chunk, |mut row, ((id, app_id, status), pcs)| {
                        row.push_bind(*id)
                            .push_bind(app_id.to_string())
                            .push_bind(status.to_string())
                            .push_bind(week.start)
                            .push_bind(week.end)
                            .push_bind(*pcs);
                    });
                    insert.build().execute(&mut *transaction).await?;
                }
            }
        }
        let mut outcome = IntakeOutcome {
            current_applied: newer,
            ..IntakeOutcome::default()
        };
        // Frozen weeks: stored once, never changed; a week listed twice counts once.
        let mut weeks: BTreeMap<(i64, &str), &sverka_shared::federation::WeekFigures> =
            BTreeMap::new();
        for row in &message.weeks {
            weeks
                .entry((id_of(&row.organization)?, &row.week))
                .or_insert(row);
        }
        let weeks: Vec<_> = weeks.into_iter().collect();
        for chunk in weeks.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::<D>::new(
                "INSERT INTO federated_weeks (organization_id, week, received_at, expected_pcs,
                     enrolled, reporting, silent, with_banned, with_approved, known,
                     silent_with_banned, used_approved, used_banned) ",
            );
            insert.push_values(chunk, |mut values, ((id, week), row)| {
                values
                    .push_bind(*id)
                    .push_bind(week.to_string())
                    .push_bind(now)
                    .push_bind(row.expected_pcs)
                    .push_bind(row.enrolled)
                    .push_bind(row.reporting)
                    .push_bind(row.silent)
                    .push_bind(row.with_banned)
                    .push_bind(row.with_approved)
                    .push_bind(row.known)
                    .push_bind(row.silent_with_banned)
                    .push_bind(row.used_approved)
                    .push_bind(row.used_banned);
            });
            insert.push(" ON CONFLICT (organization_id, week) DO NOTHING");
            let stored = insert
                .build()
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            outcome.weeks_stored += stored;
            outcome.weeks_known += chunk.len() as u64 - stored;
        }
        // Readers' caches (`cache.rs`), last: on PostgreSQL the version's row stays
        // locked until the commit.
        for (version, changed) in [
            (cache::TREE, tree_changed),
            (cache::WEEKS, outcome.weeks_stored > 0),
        ] {
            if changed {
                sqlx::query(cache::BUMP_VERSION)
                    .bind(version)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        sqlx::query(
            "UPDATE federation_links SET last_received_at = $2,
                 last_generated_at = CASE WHEN $3 THEN $4 ELSE last_generated_at END
             WHERE id = $1",
        )
        .bind(link_id)
        .bind(now)
        .bind(newer)
        .bind(message.generated_at)
        .execute(&mut *transaction)
        .await?;
        outcome.newest_week = sqlx::query_scalar(
            "SELECT MAX(w.week) FROM federated_weeks w
             JOIN organizations o ON o.id = w.organization_id WHERE o.federated_link_id = $1",
        )
        .bind(link_id)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(outcome)
    })
}

pub(super) async fn federated_violations(
    store: &SqlStore,
    organization_id: Option<i64>,
) -> StoreResult<Vec<FederatedViolation>> {
    let rows: Vec<(i64, String, i64, String)> = on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT organization_id, app_id, pcs, hosts FROM federated_violations
             WHERE $1 IS NULL OR organization_id = $1 ORDER BY organization_id, app_id",
        )
        .bind(organization_id)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(organization_id, app_id, pcs, hosts)| {
            Ok(FederatedViolation {
                organization_id,
                app_id,
                pcs,
                hosts: serde_json::from_str(&hosts).map_err(|error| {
                    StoreError::Database(format!("federated_violations.hosts: {error}").into())
                })?,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct UpstreamRow {
    url: String,
    secret: String,
    allow_http: i64,
    configured_at: i64,
    upstream_organization: String,
    detail: String,
    acknowledged_week: Option<String>,
    last_attempt_at: Option<i64>,
    last_success_at: Option<i64>,
    last_error: Option<String>,
}

pub(super) async fn upstream(store: &SqlStore) -> StoreResult<Option<UpstreamLink>> {
    let row: Option<UpstreamRow> = on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT url, secret, allow_http, configured_at, upstream_organization, detail,
                    acknowledged_week, last_attempt_at, last_success_at, last_error
             FROM upstream_link WHERE id = 1",
        )
        .fetch_optional(pool)
        .await?
    });
    row.map(|row| {
        Ok(UpstreamLink {
            url: row.url,
            secret: row.secret,
            allow_http: row.allow_http != 0,
            configured_at: row.configured_at,
            upstream_organization: row.upstream_organization,
            detail: detail(&row.detail)?,
            acknowledged_week: row.acknowledged_week,
            last_attempt_at: row.last_attempt_at,
            last_success_at: row.last_success_at,
            last_error: row.last_error,
        })
    })
    .transpose()
}

/// Sets (replacing any: a new link starts with nothing acknowledged) or with `None`
/// removes the upstream.
pub(super) async fn set_upstream(store: &SqlStore, link: Option<&UpstreamLink>) -> StoreResult<()> {
    on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM upstream_link")
            .execute(&mut *transaction)
            .await?;
        if let Some(link) = link {
            sqlx::query(
                "INSERT INTO upstream_link (id, url, secret, allow_http, configured_at,
                     upstream_organization, detail)
                 VALUES (1, $1, $2, $3, $4, $5, $6)",
            )
            .bind(&link.url)
            .bind(&link.secret)
            .bind(i64::from(link.allow_http))
            .bind(link.configured_at)
            .bind(&link.upstream_organization)
            .bind(link.detail.as_str())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
    });
    Ok(())
}

/// Records how a push ended; an acknowledged one moves the acknowledged week forward
/// (never back: an upstream restored from an old backup asks for older weeks by
/// answering with an older one, which is taken as the new cursor).
pub(super) async fn record_push(
    store: &SqlStore,
    outcome: &PushOutcome,
    now: Timestamp,
) -> StoreResult<()> {
    on_backend!(store, |pool| {
        match outcome {
            PushOutcome::Acknowledged { newest_week } => {
                sqlx::query(
                    "UPDATE upstream_link SET last_attempt_at = $1, last_success_at = $1,
                         last_error = NULL, acknowledged_week = $2 WHERE id = 1",
                )
                .bind(now)
                .bind(newest_week)
                .execute(pool)
                .await?;
            }
            PushOutcome::Failed { error } => {
                sqlx::query(
                    "UPDATE upstream_link SET last_attempt_at = $1, last_error = $2 WHERE id = 1",
                )
                .bind(now)
                .bind(error)
                .execute(pool)
                .await?;
            }
        }
    });
    Ok(())
}
