//! The one SQL implementation of [`Store`], on SQLite or PostgreSQL.
//!
//! Every query and row mapping is written once. A query runs inside `on_backend!`
//! (with the pool) or `on_connection!` (inside a transaction): the macro expands its
//! body once per database, where sqlx's types are concrete, and names the database
//! `D`, whose [`Dialect`](crate::store::dialect::Dialect) gives the few SQL fragments that differ. Rows are read with
//! `#[derive(sqlx::FromRow)]`; database errors become [`StoreError`] through `?`.
//!
//! Code generic over `sqlx::Database` was the other way to write each query once; its
//! bounds (every bound type's `Encode`/`Decode`, `Executor` for every connection
//! reference, all of them proven `Send` for `async_trait`) are repeated on every
//! function and break on higher-ranked lifetimes in async code, while a match over two
//! pools keeps the SQL as plain as a single-backend store.

pub(crate) mod activity;
mod cache;
mod dashboard;
mod federation;
mod lifecycle;
mod mail;
mod notifications;
mod organizations;
mod queries;
pub(crate) mod reports;
mod weeks;
mod worklist;

use async_trait::async_trait;
use sqlx::{PgConnection, SqliteConnection};
use std::path::Path;

use super::FederatedViolation;
use super::dialect::postgres::PgBackend;
use super::dialect::sqlite::SqliteBackend;
use super::{
    ApiTokenCredentials, ApiTokenInfo, ApplicationUse, AuditEntry, CatalogRevision, Changes,
    Channel, Coverage, DeliveryOutcome, EnrolledHost, Enrollment, FindingEvent, FrozenHostList,
    HandledMark, HostApp, HostCredentials, HostDetail, HostEvaluationInput, HostFinding,
    HostListToFreeze, HostState, HostSummary, HostUseDay, IntakeOutcome, JobLease, LinkCredentials,
    LinkInfo, NewAuditEntry, NewNotification, NewOrganization, NewSecret, NewSession, NewUser,
    Notification, Organization, OrganizationCounts, OrganizationUse, PushOutcome, RecentEnrollment,
    RecordOutcome, ReportRecord, RetiredHost, SecretInfo, Session, SilentHost, Store, StoreError,
    StoreResult, Timestamp, UpstreamLink, User, UserChange, UserCredentials, ViolationRow, Webhook,
    WeeklyFigures, WeeklyMail, Worklist, WorklistFilter,
};

/// Runs `$body` with `$pool`, the store's connection pool, once per database; inside,
/// `D` is the database (`sqlx::Sqlite` or `sqlx::Postgres`) and its [`Dialect`](crate::store::dialect::Dialect).
macro_rules! on_backend {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::sql::Backend::Sqlite(backend) => {
                #[allow(unused_imports)]
                use {sqlx::Sqlite as D, $crate::store::dialect::Dialect as _};
                let $pool = &backend.pool;
                $body
            }
            $crate::store::sql::Backend::Postgres(backend) => {
                #[allow(unused_imports)]
                use {sqlx::Postgres as D, $crate::store::dialect::Dialect as _};
                let $pool = &backend.pool;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// Runs `$body` with `$connection`, the open transaction's connection, once per
/// database; inside, `D` is the database and its [`Dialect`](crate::store::dialect::Dialect).
macro_rules! on_connection {
    ($connection:expr, |$conn:ident| $body:expr) => {
        match $connection {
            $crate::store::sql::Connection::Sqlite($conn) => {
                #[allow(unused_imports)]
                use {sqlx::Sqlite as D, $crate::store::dialect::Dialect as _};
                $body
            }
            $crate::store::sql::Connection::Postgres($conn) => {
                #[allow(unused_imports)]
                use {sqlx::Postgres as D, $crate::store::dialect::Dialect as _};
                $body
            }
        }
    };
}
pub(crate) use on_connection;

/// The database behind the store, with what each backend keeps beside its pool (the
/// report writer, the job leases).
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqliteBackend),
    Postgres(Box<PgBackend>),
}

/// A connection inside a transaction, of either database.
#[derive(Debug)]
pub(crate) enum Connection<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c mut SqliteConnection> for Connection<'c> {
    fn from(connection: &'c mut SqliteConnection) -> Connection<'c> {
        Connection::Sqlite(connection)
    }
}

impl<'c> From<&'c mut PgConnection> for Connection<'c> {
    fn from(connection: &'c mut PgConnection) -> Connection<'c> {
        Connection::Postgres(connection)
    }
}

/// The collector's store on SQLite (the embedded default: one file) or PostgreSQL (a
/// region: one database, any number of collector processes).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) backend: Backend,
    /// What this process keeps between reads (`cache.rs`), shared by clones.
    cache: std::sync::Arc<cache::ReadCache>,
}

/// Connections per collector process on PostgreSQL unless the configuration says
/// otherwise.
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 16;

/// Whether a `database` setting names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The SQLite file a `database` setting names (`sqlite://PATH`, `sqlite:PATH` or a
/// plain path); an error for any other scheme and for an empty setting.
pub fn sqlite_path(url: &str) -> StoreResult<&Path> {
    let unsupported = || {
        StoreError::Invalid(format!(
            "database {url:?}: give a SQLite file (sqlite://PATH or a path) or a postgres:// URL"
        ))
    };
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) => path,
        None if url.contains("://") => return Err(unsupported()),
        None => url,
    };
    if path.is_empty() {
        return Err(unsupported());
    }
    Ok(Path::new(path))
}

impl SqlStore {
    /// Opens the database a `database` setting names: `postgres://` or
    /// `postgresql://` (with up to `postgres_pool_size` connections), or a SQLite file
    /// as `sqlite://PATH`, `sqlite:PATH` or a plain path (the file and its folder are
    /// created when missing). Any other scheme, or nothing, is an error that says so.
    /// Brings the schema up to date. Must be called inside a tokio runtime.
    pub async fn open(url: &str, postgres_pool_size: u32) -> StoreResult<SqlStore> {
        if is_postgres_url(url) {
            return SqlStore::open_postgres(url, postgres_pool_size).await;
        }
        SqlStore::open_sqlite(sqlite_path(url)?).await
    }

    /// Opens (creating it and its folder when missing) a SQLite database file.
    pub async fn open_sqlite(path: &Path) -> StoreResult<SqlStore> {
        if let Some(folder) = path.parent()
            && !folder.as_os_str().is_empty()
        {
            std::fs::create_dir_all(folder).map_err(|error| {
                StoreError::Invalid(format!(
                    "creating the data folder {}: {error}",
                    folder.display()
                ))
            })?;
        }
        Ok(SqlStore {
            backend: Backend::Sqlite(SqliteBackend::open_file(path).await?),
            cache: Default::default(),
        })
    }

    /// Connects to a `postgres://` URL with up to `pool_size` connections (migrations
    /// run under PostgreSQL's own lock, so collectors starting together migrate once).
    pub async fn open_postgres(url: &str, pool_size: u32) -> StoreResult<SqlStore> {
        Ok(SqlStore {
            backend: Backend::Postgres(Box::new(PgBackend::open(url, pool_size).await?)),
            cache: Default::default(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_backend!(self, |pool| pool.close().await)
    }

    /// The SQLite pool, for copying the database elsewhere (`migrate`).
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.backend {
            Backend::Sqlite(backend) => Some(&backend.pool),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for copying a database into this one (`migrate`).
    pub(crate) fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(backend) => Some(&backend.pool),
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_organization(&self, new: NewOrganization) -> StoreResult<Organization> {
        organizations::create_organization(self, new).await
    }
    async fn organization(&self, id: i64) -> StoreResult<Option<Organization>> {
        organizations::organization(self, id).await
    }
    async fn organizations(&self) -> StoreResult<Vec<Organization>> {
        organizations::organizations(self).await
    }
    async fn organizations_shared(&self) -> StoreResult<std::sync::Arc<Vec<Organization>>> {
        organizations::cached_organizations(self).await
    }
    async fn set_organization_time_zone(
        &self,
        id: i64,
        time_zone: Option<&str>,
    ) -> StoreResult<Organization> {
        organizations::set_organization_time_zone(self, id, time_zone).await
    }
    async fn worklist(&self, filter: &WorklistFilter) -> StoreResult<Worklist> {
        worklist::worklist(self, filter).await
    }
    async fn set_organization_report_recipients(
        &self,
        id: i64,
        recipients: Option<&str>,
    ) -> StoreResult<Organization> {
        organizations::set_organization_report_recipients(self, id, recipients).await
    }
    async fn set_organization_digest_recipients(
        &self,
        id: i64,
        recipients: Option<&str>,
    ) -> StoreResult<Organization> {
        organizations::set_organization_digest_recipients(self, id, recipients).await
    }
    async fn set_organization_webhook(
        &self,
        id: i64,
        webhook: Option<&Webhook>,
    ) -> StoreResult<Organization> {
        organizations::set_organization_webhook(self, id, webhook).await
    }
    async fn organization_webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        organizations::organization_webhook(self, id).await
    }
    async fn changes(
        &self,
        organization_id: i64,
        from: Timestamp,
        until: Timestamp,
        silent_after_seconds: i64,
    ) -> StoreResult<Changes> {
        notifications::changes(self, organization_id, from, until, silent_after_seconds).await
    }
    async fn notification_cursor(
        &self,
        organization_id: i64,
        channel: Channel,
    ) -> StoreResult<Option<Timestamp>> {
        notifications::notification_cursor(self, organization_id, channel).await
    }
    async fn record_notification(
        &self,
        new: &NewNotification,
        now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        notifications::record_notification(self, new, now).await
    }
    async fn due_notifications(
        &self,
        channel: Channel,
        now: Timestamp,
        stale_before: Option<Timestamp>,
    ) -> StoreResult<Vec<Notification>> {
        notifications::due_notifications(self, channel, now, stale_before).await
    }
    async fn claim_notification(
        &self,
        id: i64,
        now: Timestamp,
        stale_before: Option<Timestamp>,
    ) -> StoreResult<Option<i64>> {
        notifications::claim_notification(self, id, now, stale_before).await
    }
    async fn finish_notification(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> StoreResult<()> {
        notifications::finish_notification(self, id, outcome, now).await
    }
    async fn notifications(
        &self,
        organization_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        notifications::notifications(self, organization_id, limit).await
    }
    async fn prune_notifications(&self, before: Timestamp) -> StoreResult<u64> {
        notifications::prune_notifications(self, before).await
    }
    async fn claim_weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
        recipients: &str,
        now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        mail::claim_weekly_mail(self, organization_id, week, recipients, now).await
    }
    async fn finish_weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
        recipients: &str,
        outcome: &DeliveryOutcome,
        sent_by: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        mail::finish_weekly_mail(
            self,
            organization_id,
            week,
            recipients,
            outcome,
            sent_by,
            now,
        )
        .await
    }
    async fn weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
    ) -> StoreResult<Option<WeeklyMail>> {
        mail::weekly_mail(self, organization_id, week).await
    }
    async fn set_organization_report_cutoff(
        &self,
        id: i64,
        report_cutoff: Option<&str>,
    ) -> StoreResult<Organization> {
        organizations::set_organization_report_cutoff(self, id, report_cutoff).await
    }

    async fn create_secret(&self, new: NewSecret, now: Timestamp) -> StoreResult<SecretInfo> {
        organizations::create_secret(self, new, now).await
    }
    async fn revoke_secret(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        organizations::revoke_secret(self, id, now).await
    }
    async fn secrets(&self, organization_id: i64) -> StoreResult<Vec<SecretInfo>> {
        organizations::secrets(self, organization_id).await
    }

    async fn enroll(&self, enrollment: Enrollment, now: Timestamp) -> StoreResult<EnrolledHost> {
        organizations::enroll(self, enrollment, now).await
    }
    async fn host_credentials(&self, host_id: i64) -> StoreResult<Option<HostCredentials>> {
        organizations::host_credentials(self, host_id).await
    }
    async fn retire_host(&self, host_id: i64, now: Timestamp) -> StoreResult<RetiredHost> {
        lifecycle::retire_host(self, host_id, now).await
    }
    async fn merge_host(
        &self,
        duplicate: i64,
        into: i64,
        now: Timestamp,
    ) -> StoreResult<RetiredHost> {
        lifecycle::merge_host(self, duplicate, into, now).await
    }
    async fn recent_enrollments(
        &self,
        organization_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<RecentEnrollment>> {
        lifecycle::recent_enrollments(self, organization_id, limit).await
    }
    async fn host_state(&self, host_id: i64) -> StoreResult<Option<HostState>> {
        organizations::host_state(self, host_id).await
    }

    async fn record_report(&self, record: ReportRecord) -> StoreResult<RecordOutcome> {
        match &self.backend {
            Backend::Sqlite(backend) => backend.writer.record(record).await,
            Backend::Postgres(backend) => backend.writer.record(record).await,
        }
    }
    async fn inventory(&self, digest: &str) -> StoreResult<Option<String>> {
        reports::inventory(self, digest).await
    }
    async fn inventory_count(&self) -> StoreResult<i64> {
        reports::inventory_count(self).await
    }
    async fn report_count(&self, host_id: i64) -> StoreResult<i64> {
        reports::report_count(self, host_id).await
    }

    async fn hosts_behind_catalog(
        &self,
        revision: i64,
        after_host_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<HostEvaluationInput>> {
        reports::hosts_behind_catalog(self, revision, after_host_id, limit).await
    }
    async fn apply_evaluation(
        &self,
        host_id: i64,
        findings: Vec<HostFinding>,
        catalog_revision: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        reports::apply_evaluation(self, host_id, findings, catalog_revision, now).await
    }

    async fn current_catalog(&self) -> StoreResult<Option<CatalogRevision>> {
        reports::current_catalog(self).await
    }
    async fn save_catalog(&self, overrides: &str, now: Timestamp) -> StoreResult<i64> {
        reports::save_catalog(self, overrides, now).await
    }

    async fn violations(
        &self,
        organization_id: i64,
        include_resolved: bool,
    ) -> StoreResult<Vec<ViolationRow>> {
        queries::violations(self, organization_id, include_resolved).await
    }
    async fn coverage(&self, organization_id: i64, since: Timestamp) -> StoreResult<Vec<Coverage>> {
        queries::coverage(self, organization_id, since).await
    }
    async fn silent_hosts(
        &self,
        organization_id: i64,
        since: Timestamp,
    ) -> StoreResult<Vec<SilentHost>> {
        queries::silent_hosts(self, organization_id, since).await
    }
    async fn finding_events(&self, host_id: i64) -> StoreResult<Vec<FindingEvent>> {
        queries::finding_events(self, host_id).await
    }
    async fn prune_reports(&self, before: Timestamp) -> StoreResult<u64> {
        queries::prune_reports(self, before).await
    }
    async fn prune_use_days(&self, before: Timestamp) -> StoreResult<u64> {
        activity::prune_use_days(self, before).await
    }

    async fn create_user(&self, new: NewUser, now: Timestamp) -> StoreResult<User> {
        dashboard::create_user(self, new, now).await
    }
    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        dashboard::user(self, id).await
    }
    async fn user_credentials(&self, login: &str) -> StoreResult<Option<UserCredentials>> {
        dashboard::user_credentials(self, login).await
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        dashboard::users(self).await
    }
    async fn update_user(&self, id: i64, change: UserChange, now: Timestamp) -> StoreResult<()> {
        dashboard::update_user(self, id, change, now).await
    }
    async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        dashboard::create_session(self, session).await
    }
    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        dashboard::session(self, token_hash, now).await
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        dashboard::delete_session(self, token_hash).await
    }
    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<ApiTokenInfo> {
        dashboard::create_api_token(self, user_id, name, token_hash, now).await
    }
    async fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenInfo>> {
        dashboard::api_tokens(self, user_id).await
    }
    async fn revoke_api_token(&self, user_id: i64, id: i64, now: Timestamp) -> StoreResult<()> {
        dashboard::revoke_api_token(self, user_id, id, now).await
    }
    async fn api_token(&self, id: i64) -> StoreResult<Option<ApiTokenCredentials>> {
        dashboard::api_token(self, id).await
    }
    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        dashboard::record_audit(self, entry).await
    }
    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        dashboard::audit_log(self, limit).await
    }
    async fn organization_counts(
        &self,
        reporting_since: Timestamp,
        silent_before: Timestamp,
    ) -> StoreResult<Vec<OrganizationCounts>> {
        dashboard::organization_counts(self, reporting_since, silent_before).await
    }
    async fn organization_use(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> StoreResult<(Vec<OrganizationUse>, Vec<ApplicationUse>)> {
        activity::organization_use(self, from, until).await
    }
    async fn host_use_days(&self, host_id: i64, since: Timestamp) -> StoreResult<Vec<HostUseDay>> {
        activity::host_use_days(self, host_id, since).await
    }
    async fn host_summaries(&self, organization_id: i64) -> StoreResult<Vec<HostSummary>> {
        dashboard::host_summaries(self, organization_id).await
    }
    async fn host_detail(&self, host_id: i64) -> StoreResult<Option<HostDetail>> {
        dashboard::host_detail(self, host_id).await
    }
    async fn host_apps(&self, host_id: i64) -> StoreResult<Vec<HostApp>> {
        dashboard::host_apps(self, host_id).await
    }
    async fn mark_handled(&self, mark: HandledMark) -> StoreResult<()> {
        dashboard::mark_handled(self, mark).await
    }
    async fn handled_marks(&self, organization_id: i64) -> StoreResult<Vec<HandledMark>> {
        dashboard::handled_marks(self, organization_id).await
    }
    async fn freeze_weekly_figures(
        &self,
        figures: &[WeeklyFigures],
        applications: &[ApplicationUse],
        hosts: &HostListToFreeze,
        now: Timestamp,
    ) -> StoreResult<u64> {
        dashboard::freeze_weekly_figures(self, figures, applications, hosts, now).await
    }
    async fn frozen_host_list(
        &self,
        week: &str,
        boundaries: &str,
        organization_id: i64,
        directly_under: bool,
    ) -> StoreResult<Option<FrozenHostList>> {
        dashboard::frozen_host_list(self, week, boundaries, organization_id, directly_under).await
    }
    async fn weekly_figures_of_week(&self, week: &str) -> StoreResult<Vec<WeeklyFigures>> {
        weeks::weekly_figures_of_week(self, week).await
    }
    async fn weekly_app_use_of_week(&self, week: &str) -> StoreResult<Vec<ApplicationUse>> {
        activity::weekly_app_use_of_week(self, week).await
    }
    async fn weekly_figures_of_organization(
        &self,
        organization_id: i64,
        from_week: &str,
        to_week: &str,
    ) -> StoreResult<Vec<WeeklyFigures>> {
        weeks::weekly_figures_of_organization(self, organization_id, from_week, to_week).await
    }

    async fn create_link(
        &self,
        organization_id: i64,
        secret_hash: &str,
        detail: sverka_shared::federation::Detail,
        now: Timestamp,
    ) -> StoreResult<LinkInfo> {
        federation::create_link(self, organization_id, secret_hash, detail, now).await
    }
    async fn revoke_link(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        federation::revoke_link(self, id, now).await
    }
    async fn links(&self) -> StoreResult<Vec<LinkInfo>> {
        federation::links(self).await
    }
    async fn link_credentials(&self, id: i64) -> StoreResult<Option<LinkCredentials>> {
        federation::link_credentials(self, id).await
    }
    async fn store_federated_figures(
        &self,
        link_id: i64,
        message: &sverka_shared::federation::FiguresMessage,
        now: Timestamp,
    ) -> StoreResult<IntakeOutcome> {
        federation::store_federated_figures(self, link_id, message, now).await
    }
    async fn federated_violations(
        &self,
        organization_id: Option<i64>,
    ) -> StoreResult<Vec<FederatedViolation>> {
        federation::federated_violations(self, organization_id).await
    }
    async fn upstream(&self) -> StoreResult<Option<UpstreamLink>> {
        federation::upstream(self).await
    }
    async fn set_upstream(&self, link: Option<&UpstreamLink>) -> StoreResult<()> {
        federation::set_upstream(self, link).await
    }
    async fn record_push(&self, outcome: &PushOutcome, now: Timestamp) -> StoreResult<()> {
        federation::record_push(self, outcome, now).await
    }
    async fn frozen_weeks(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<String>> {
        weeks::frozen_weeks(self, after, limit).await
    }
    async fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>> {
        match &self.backend {
            Backend::Sqlite(backend) => backend.try_lock_job(name),
            Backend::Postgres(backend) => backend.try_lock_job(name).await,
        }
    }
}
