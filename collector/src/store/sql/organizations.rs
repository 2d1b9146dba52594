//! The organization tree, enrollment secrets, and hosts: enrolling and what the agent
//! API checks on every request.

use super::{SqlStore, on_backend};
use crate::store::lifecycle;
use crate::store::rules::{self, StoredSecret};
use crate::store::{
    EnrolledHost, Enrollment, HostCredentials, HostState, NewOrganization, NewSecret, Organization,
    SecretInfo, StoreError, StoreResult, Timestamp, Webhook,
};

/// An organization's columns, read from `ORGANIZATIONS` (with its link's time of the
/// last figures when it is federated).
const ORGANIZATION_COLUMNS: &str =
    "o.id, o.parent_id, o.name, o.kind, o.expected_pcs, o.time_zone, o.report_cutoff,
     o.report_recipients, o.digest_recipients, o.webhook_url, o.federated_link_id,
     l.last_generated_at AS federated_as_of, o.federated_gone_at";
const ORGANIZATIONS: &str =
    "organizations o LEFT JOIN federation_links l ON l.id = o.federated_link_id";

pub(super) async fn create_organization(
    store: &SqlStore,
    new: NewOrganization,
) -> StoreResult<Organization> {
    let time_zone = rules::check_new_organization(&new)?;
    if let Some(parent) = new.parent_id {
        match organization(store, parent).await? {
            None => return Err(StoreError::NotFound(format!("organization {parent}"))),
            Some(federated) if federated.federated_link_id.is_some() => {
                return Err(not_here(&federated, "add organizations"));
            }
            Some(_) => {}
        }
    }
    let now = crate::now();
    let id: i64 = on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO organizations (parent_id, name, kind, expected_pcs, created_at, time_zone)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.parent_id)
        .bind(&new.name)
        .bind(&new.kind)
        .bind(new.expected_pcs)
        .bind(now)
        .bind(&time_zone)
        .fetch_one(pool)
        .await?
    });
    Ok(Organization {
        id,
        parent_id: new.parent_id,
        name: new.name,
        kind: new.kind,
        expected_pcs: new.expected_pcs,
        time_zone,
        report_cutoff: None,
        report_recipients: None,
        digest_recipients: None,
        webhook_url: None,
        federated_link_id: None,
        federated_as_of: None,
        federated_gone_at: None,
    })
}

/// A federated organization belongs to the collector that sends its figures: its
/// tree and PCs are changed there.
fn not_here(federated: &Organization, what: &str) -> StoreError {
    StoreError::Rejected(format!(
        "organization {} ({}) is federated: its figures come from another collector; \
         {what} there",
        federated.id, federated.name
    ))
}

pub(super) async fn set_organization_report_cutoff(
    store: &SqlStore,
    id: i64,
    report_cutoff: Option<&str>,
) -> StoreResult<Organization> {
    let report_cutoff = rules::checked_report_cutoff(report_cutoff)?;
    set_organization_setting(store, id, OrganizationSetting::ReportCutoff, report_cutoff).await
}

pub(super) async fn set_organization_report_recipients(
    store: &SqlStore,
    id: i64,
    recipients: Option<&str>,
) -> StoreResult<Organization> {
    let recipients = rules::checked_report_recipients(recipients)?;
    set_organization_setting(store, id, OrganizationSetting::ReportRecipients, recipients).await
}

pub(super) async fn set_organization_digest_recipients(
    store: &SqlStore,
    id: i64,
    recipients: Option<&str>,
) -> StoreResult<Organization> {
    let recipients = rules::checked_report_recipients(recipients)?;
    set_organization_setting(store, id, OrganizationSetting::DigestRecipients, recipients).await
}

pub(super) async fn set_organization_webhook(
    store: &SqlStore,
    id: i64,
    webhook: Option<&Webhook>,
) -> StoreResult<Organization> {
    let webhook = webhook.map(rules::checked_webhook).transpose()?;
    let changed = on_backend!(store, |pool| {
        sqlx::query("UPDATE organizations SET webhook_url = $2, webhook_secret = $3 WHERE id = $1")
            .bind(id)
            .bind(webhook.as_ref().map(|webhook| &webhook.url))
            .bind(webhook.as_ref().map(|webhook| &webhook.secret))
            .execute(pool)
            .await?
            .rows_affected()
    });
    changed_organization(store, id, changed).await
}

pub(super) async fn organization_webhook(
    store: &SqlStore,
    id: i64,
) -> StoreResult<Option<Webhook>> {
    let row: Option<(Option<String>, Option<String>)> = on_backend!(store, |pool| {
        sqlx::query_as("SELECT webhook_url, webhook_secret FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(match row {
        Some((Some(url), Some(secret))) => Some(Webhook { url, secret }),
        _ => None,
    })
}

pub(super) async fn set_organization_time_zone(
    store: &SqlStore,
    id: i64,
    time_zone: Option<&str>,
) -> StoreResult<Organization> {
    let time_zone = rules::checked_time_zone(time_zone)?;
    set_organization_setting(store, id, OrganizationSetting::TimeZone, time_zone).await
}

/// An organization's settings, each a column of its own (the time zone and cut-off
/// are inherited by its children; the recipients are its own).
#[derive(Clone, Copy)]
enum OrganizationSetting {
    TimeZone,
    ReportCutoff,
    ReportRecipients,
    DigestRecipients,
}

/// Writes one checked setting (or clears it) and reads the organization back.
async fn set_organization_setting(
    store: &SqlStore,
    id: i64,
    setting: OrganizationSetting,
    value: Option<String>,
) -> StoreResult<Organization> {
    let statement = match setting {
        OrganizationSetting::TimeZone => "UPDATE organizations SET time_zone = $2 WHERE id = $1",
        OrganizationSetting::ReportCutoff => {
            "UPDATE organizations SET report_cutoff = $2 WHERE id = $1"
        }
        OrganizationSetting::ReportRecipients => {
            "UPDATE organizations SET report_recipients = $2 WHERE id = $1"
        }
        OrganizationSetting::DigestRecipients => {
            "UPDATE organizations SET digest_recipients = $2 WHERE id = $1"
        }
    };
    let changed = on_backend!(store, |pool| {
        sqlx::query(statement)
            .bind(id)
            .bind(&value)
            .execute(pool)
            .await?
            .rows_affected()
    });
    changed_organization(store, id, changed).await
}

/// The organization a setting was written to, read back; `NotFound` when the write
/// `changed` no row.
async fn changed_organization(
    store: &SqlStore,
    id: i64,
    changed: u64,
) -> StoreResult<Organization> {
    let missing = || StoreError::NotFound(format!("organization {id}"));
    if changed == 0 {
        return Err(missing());
    }
    organization(store, id).await?.ok_or_else(missing)
}

pub(super) async fn organization(store: &SqlStore, id: i64) -> StoreResult<Option<Organization>> {
    let query = format!("SELECT {ORGANIZATION_COLUMNS} FROM {ORGANIZATIONS} WHERE o.id = $1");
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(pool)
            .await?
    }))
}

/// Every organization, kept in memory under the tree's version (`cache.rs`).
pub(super) async fn organizations(store: &SqlStore) -> StoreResult<Vec<Organization>> {
    Ok(cached_organizations(store).await?.as_ref().clone())
}

pub(super) async fn cached_organizations(
    store: &SqlStore,
) -> StoreResult<std::sync::Arc<Vec<Organization>>> {
    let versions = super::cache::versions(store).await?;
    organizations_at(store, versions.tree).await
}

/// The organizations under the tree's version `tree_version`, read by the caller
/// before (kept, or read now and kept).
pub(super) async fn organizations_at(
    store: &SqlStore,
    tree_version: i64,
) -> StoreResult<std::sync::Arc<Vec<Organization>>> {
    if let Some(kept) = store.cache.organizations(tree_version) {
        return Ok(kept);
    }
    let query = format!("SELECT {ORGANIZATION_COLUMNS} FROM {ORGANIZATIONS} ORDER BY o.id");
    let rows: Vec<Organization> = on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_all(pool)
            .await?
    });
    let rows = std::sync::Arc::new(rows);
    store.cache.keep_organizations(tree_version, rows.clone());
    Ok(rows)
}

pub(super) async fn create_secret(
    store: &SqlStore,
    new: NewSecret,
    now: Timestamp,
) -> StoreResult<SecretInfo> {
    match organization(store, new.organization_id).await? {
        None => {
            return Err(StoreError::NotFound(format!(
                "organization {}",
                new.organization_id
            )));
        }
        Some(federated) if federated.federated_link_id.is_some() => {
            return Err(not_here(&federated, "enroll PCs"));
        }
        Some(_) => {}
    }
    let id: i64 = on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO enrollment_secrets (organization_id, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.organization_id)
        .bind(&new.secret_hash)
        .bind(now)
        .bind(new.expires_at)
        .fetch_one(pool)
        .await?
    });
    Ok(SecretInfo {
        id,
        organization_id: new.organization_id,
        created_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
    })
}

pub(super) async fn revoke_secret(store: &SqlStore, id: i64, now: Timestamp) -> StoreResult<()> {
    let done = on_backend!(store, |pool| {
        sqlx::query(
            "UPDATE enrollment_secrets SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    if done == 0 {
        return Err(StoreError::NotFound(format!("enrollment secret {id}")));
    }
    Ok(())
}

pub(super) async fn secrets(
    store: &SqlStore,
    organization_id: i64,
) -> StoreResult<Vec<SecretInfo>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id, organization_id, created_at, expires_at, revoked_at
             FROM enrollment_secrets WHERE organization_id = $1 ORDER BY id",
        )
        .bind(organization_id)
        .fetch_all(pool)
        .await?
    }))
}

/// Checks the secret, then creates the host, or gives the host this machine already has
/// in that organization the new key (bringing it back if it was retired). A host that
/// would be new (or come back) must fit the organization's allowance: its active hosts
/// are counted with the secret's row locked (PostgreSQL) or inside SQLite's one write
/// transaction, so enrollments at once cannot pass it together. The insert and the
/// update are two statements of one transaction on both databases.
pub(super) async fn enroll(
    store: &SqlStore,
    enrollment: Enrollment,
    now: Timestamp,
) -> StoreResult<EnrolledHost> {
    let (host_id, inserted, organization_id) = on_backend!(store, |pool| {
        let mut transaction = pool.begin_with(D::BEGIN_WRITE).await?;
        let secret_query = format!(
            "SELECT organization_id, secret_hash, expires_at, revoked_at
             FROM enrollment_secrets WHERE id = $1{}",
            D::FOR_UPDATE
        );
        let stored: Option<StoredSecret> = sqlx::query_as(sqlx::AssertSqlSafe(secret_query))
            .bind(enrollment.secret_id)
            .fetch_optional(&mut *transaction)
            .await?;
        let organization_id = rules::check_secret(stored, &enrollment.secret_hash, now)?;
        let known: Option<(i64, Option<Timestamp>)> = sqlx::query_as(
            "SELECT id, retired_at FROM hosts WHERE organization_id = $1 AND machine_id = $2",
        )
        .bind(organization_id)
        .bind(&enrollment.machine_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let adds_an_active_host = known.is_none_or(|(_, retired_at)| retired_at.is_some());
        if adds_an_active_host {
            let (active, expected_pcs): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM hosts
                         WHERE organization_id = $1 AND retired_at IS NULL),
                        expected_pcs
                 FROM organizations WHERE id = $1",
            )
            .bind(organization_id)
            .fetch_one(&mut *transaction)
            .await?;
            if let Some(allowance) = enrollment.allowance.hosts_for(expected_pcs)
                && active >= allowance
            {
                return Err(lifecycle::allowance_used_up(allowance, expected_pcs));
            }
        }
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO hosts (organization_id, machine_id, hostname, os_id, os_name,
             agent_version, key_hash, enrolled_at, enrolled_by_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (organization_id, machine_id) DO NOTHING RETURNING id",
        )
        .bind(organization_id)
        .bind(&enrollment.machine_id)
        .bind(&enrollment.hostname)
        .bind(&enrollment.os_id)
        .bind(&enrollment.os_name)
        .bind(&enrollment.agent_version)
        .bind(&enrollment.key_hash)
        .bind(now)
        .bind(enrollment.secret_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let host_id: i64 = match inserted {
            Some(host_id) => host_id,
            None => {
                sqlx::query_scalar(
                    "UPDATE hosts SET key_hash = $3, hostname = $4, os_id = $5, os_name = $6,
                     agent_version = $7, retired_at = NULL, merged_into = NULL
                     WHERE organization_id = $1 AND machine_id = $2 RETURNING id",
                )
                .bind(organization_id)
                .bind(&enrollment.machine_id)
                .bind(&enrollment.key_hash)
                .bind(&enrollment.hostname)
                .bind(&enrollment.os_id)
                .bind(&enrollment.os_name)
                .bind(&enrollment.agent_version)
                .fetch_one(&mut *transaction)
                .await?
            }
        };
        transaction.commit().await?;
        (host_id, inserted.is_some(), organization_id)
    });
    let organization = organization(store, organization_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("organization {organization_id}")))?;
    Ok(EnrolledHost {
        host_id,
        organization,
        re_enrolled: !inserted,
    })
}

pub(super) async fn host_credentials(
    store: &SqlStore,
    host_id: i64,
) -> StoreResult<Option<HostCredentials>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT id AS host_id, organization_id, machine_id, key_hash FROM hosts
             WHERE id = $1 AND retired_at IS NULL",
        )
        .bind(host_id)
        .fetch_optional(pool)
        .await?
    }))
}

pub(super) async fn host_state(store: &SqlStore, host_id: i64) -> StoreResult<Option<HostState>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT inventory_digest, last_scan_at, catalog_revision FROM hosts WHERE id = $1",
        )
        .bind(host_id)
        .fetch_optional(pool)
        .await?
    }))
}
