//! Storage behind one trait, [`Store`], with one SQL implementation, [`SqlStore`], on
//! two databases: SQLite, the embedded default, and PostgreSQL, which serves a region
//! from one database and any number of collector processes. Every query and row
//! mapping is written once (`sql/`); what the two databases really do differently is
//! the dialect seam (`dialect/`). `tests/it/store_contract/` runs one contract
//! against both.
//!
//! Both schemas have the same tables and columns (Unix seconds in integer columns,
//! JSON as text), so [`migrate`] copies a SQLite database to PostgreSQL row by row.

/// The words the store keeps for these enums (`appeared`, `report`, ...).
macro_rules! stored_words {
    ($type:ident, $kind:literal, $($variant:ident => $word:literal),+) => {
        impl $type {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $word),+
                }
            }
        }

        impl TryFrom<String> for $type {
            type Error = UnknownWord;

            fn try_from(text: String) -> Result<$type, UnknownWord> {
                match text.as_str() {
                    $($word => Ok($type::$variant),)+
                    _ => Err(UnknownWord::new($kind, &text)),
                }
            }
        }
    };
}

pub mod dashboard;
pub mod dialect;
pub mod error;
pub mod federated_weeks;
pub mod federation;
mod job_lease;
pub mod lifecycle;
pub mod migrate;
pub mod notifications;
pub mod rules;
pub mod scratch;
pub mod sql;
pub mod worklist;

pub use error::{DatabaseFailure, StoreError, StoreResult};
pub use federation::{
    FederatedViolation, IntakeOutcome, LinkCredentials, LinkInfo, PushOutcome, UpstreamLink,
};
pub use job_lease::JobLease;
pub use notifications::{
    Changes, Channel, DeliveryOutcome, NewNotification, Notification, NotificationState,
    SilentChange, ViolationChange, Webhook, WeeklyMail,
};
pub use sql::SqlStore;
pub use worklist::{Worklist, WorklistFilter, WorklistRow};

pub use lifecycle::{EnrollmentAllowance, RecentEnrollment, RetiredHost};

pub use dashboard::{
    ApiTokenCredentials, ApiTokenInfo, AuditEntry, FrozenHost, FrozenHostList, HandledMark,
    HostApp, HostDetail, HostListToFreeze, HostSummary, NewAuditEntry, NewSession, NewUser,
    OrganizationCounts, Role, Session, User, UserChange, UserCredentials, WeeklyFigures,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sverka_shared::report::UnknownWord;
use sverka_shared::{AppStatus, Strength};

/// Unix seconds, UTC.
pub type Timestamp = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Organization {
    pub id: i64,
    #[schema(required = true)]
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: String,
    pub expected_pcs: i64,
    /// Its own IANA time zone; `None` inherits the parent's (then the collector's).
    #[schema(required = true)]
    pub time_zone: Option<String>,
    /// Its own reporting cut-off (`thursday 15:00`, see
    /// [`rules::checked_report_cutoff`]); `None` inherits. Not part of the JSON API.
    #[serde(skip)]
    #[sqlx(default)]
    pub report_cutoff: Option<String>,
    /// Who receives its weekly report by e-mail (addresses, comma-separated); `None`:
    /// nobody. Not inherited, not part of the JSON API.
    #[serde(skip)]
    #[sqlx(default)]
    pub report_recipients: Option<String>,
    /// Who receives its daily digest of what is new (addresses, comma-separated);
    /// `None`: nobody. Not inherited, not part of the JSON API.
    #[serde(skip)]
    #[sqlx(default)]
    pub digest_recipients: Option<String>,
    /// Where its webhook posts what is new (the secret is read apart, see
    /// [`Store::organization_webhook`]); `None`: no webhook.
    #[serde(skip)]
    #[sqlx(default)]
    pub webhook_url: Option<String>,
    /// The upstream link whose lower collector sends this organization's figures
    /// (federation); `None` for an organization of this collector's own.
    #[serde(skip)]
    #[sqlx(default)]
    pub federated_link_id: Option<i64>,
    /// When its lower collector counted the figures held of it (federation).
    #[serde(skip)]
    #[sqlx(default)]
    pub federated_as_of: Option<Timestamp>,
    /// When its lower collector stopped sending it (deleted there): kept for the
    /// weeks it was counted in, expecting no PC since (federation).
    #[serde(skip)]
    #[sqlx(default)]
    pub federated_gone_at: Option<Timestamp>,
}

impl Organization {
    /// A federated organization whose lower collector has sent no figures counted
    /// since `since` (the week's start): late, shown with its last figures.
    pub fn is_late(&self, since: Timestamp) -> bool {
        self.is_sent_by_lower_collector() && self.federated_as_of.is_none_or(|as_of| as_of < since)
    }

    /// A federated organization its lower collector still sends (not removed there).
    pub fn is_sent_by_lower_collector(&self) -> bool {
        self.federated_link_id.is_some() && self.federated_gone_at.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: String,
    pub expected_pcs: i64,
    pub time_zone: Option<String>,
}

pub use rules::{checked_report_cutoff, checked_time_zone};

#[derive(Debug, Clone)]
pub struct NewSecret {
    pub organization_id: i64,
    pub secret_hash: String,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SecretInfo {
    pub id: i64,
    pub organization_id: i64,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// An agent presenting a secret. The store checks the secret and creates the host, or
/// gives the existing host of this machine in that organization a new key.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret_id: i64,
    pub secret_hash: String,
    pub machine_id: String,
    pub hostname: String,
    pub os_id: String,
    pub os_name: String,
    pub agent_version: String,
    pub key_hash: String,
    /// How many active hosts the organization may have; a new host beyond it is
    /// `Rejected`.
    pub allowance: EnrollmentAllowance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledHost {
    pub host_id: i64,
    pub organization: Organization,
    /// The machine was enrolled in this organization before.
    pub re_enrolled: bool,
}

/// What the collector needs to check a host key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostCredentials {
    pub host_id: i64,
    pub organization_id: i64,
    pub machine_id: String,
    pub key_hash: String,
}

/// What decides whether a check-in changes anything.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostState {
    pub inventory_digest: Option<String>,
    pub last_scan_at: Option<Timestamp>,
    pub catalog_revision: i64,
}

/// One application on one host as the collector evaluated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFinding {
    pub app_id: String,
    pub app_name: String,
    pub status: AppStatus,
    pub strength: Strength,
    pub users: Vec<String>,
    /// JSON array of `sverka_shared::Evidence`.
    pub evidence: String,
}

/// A host's evaluated findings with their digest (computed once, where the evaluation
/// happened, so the single writer only compares digests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatedFindings {
    pub list: Vec<HostFinding>,
    pub digest: String,
}

impl EvaluatedFindings {
    pub fn new(list: Vec<HostFinding>) -> EvaluatedFindings {
        let digest = crate::keys::hash(&serde_json::to_string(&list).unwrap_or_default());
        EvaluatedFindings { list, digest }
    }
}

/// A report to store. `findings: None` leaves the host's findings as they are (the
/// collector lacks the inventory it would need to evaluate them).
#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub report_id: String,
    pub host_id: i64,
    pub received_at: Timestamp,
    pub scanned_at: Timestamp,
    pub hostname: String,
    pub os_id: String,
    pub os_name: String,
    pub agent_version: String,
    pub scan_errors: i64,
    pub inventory_digest: String,
    /// The inventory, when the report carried it: (JSON body, item count).
    pub inventory: Option<(String, i64)>,
    /// JSON array of the report's evidence observations.
    pub evidence: String,
    pub catalog_revision: i64,
    pub findings: Option<EvaluatedFindings>,
    /// When the PC last used the applications of its findings, as far as the report
    /// says and the collector trusts it ([`AppUse`]).
    pub uses: Vec<AppUse>,
}

/// A time of program activity of one of a report's findings (the agent's `last_used`:
/// a data folder's or Prefetch file's modification time, a program seen running), kept
/// per host, application and day. Only applications the collector's own evaluation
/// found carry one, and only times the collector trusts (see
/// `api::reports::trusted_use_time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUse {
    pub app_id: String,
    /// The application's status in the collector's catalog at the report.
    pub status: AppStatus,
    pub used_at: Timestamp,
}

/// PCs (not retired) of one organization (not its subtree) that used applications in a
/// span of time: per status, each PC counted once whatever it used.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrganizationUse {
    pub organization_id: i64,
    /// `approved`, `banned` or `watch`.
    pub status: String,
    pub pcs: i64,
}

/// PCs (not retired) of one organization (not its subtree) that used one application
/// in a span of time (also the frozen rows of a week, `weekly_app_use`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApplicationUse {
    pub organization_id: i64,
    pub app_id: String,
    pub status: String,
    pub pcs: i64,
}

/// One use of an application by a host as stored: a day's first and last time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostUseDay {
    pub app_id: String,
    pub status: String,
    pub first_used_at: Timestamp,
    pub last_used_at: Timestamp,
}

/// A host's row as a report finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HostBefore {
    pub last_scan_at: Option<Timestamp>,
    pub findings_digest: String,
}

impl ReportRecord {
    /// True when the host has applied a later scan already: the report is kept in the
    /// history but changes no finding.
    pub(crate) fn is_stale(&self, host: &HostBefore) -> bool {
        host.last_scan_at.is_some_and(|last| self.scanned_at < last)
    }

    /// True when applying the report only records that the host and its open findings
    /// were seen again: it is not older than the host's last scan, and its findings
    /// (when they could be evaluated) are the ones stored. Most reports are such
    /// check-ins; both backends apply a batch's worth of them with one statement per
    /// table instead of several statements per report.
    pub(crate) fn only_sees_again(&self, host: &HostBefore) -> bool {
        let stale = self.is_stale(host);
        let changes = self
            .findings
            .as_ref()
            .is_some_and(|findings| findings.digest != host.findings_digest);
        !stale && !changes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The report id was stored before; nothing was changed.
    pub duplicate: bool,
    /// The report was older than one already applied: kept in the history, but the
    /// host's findings were not changed by it.
    pub stale: bool,
}

/// A host whose findings are evaluated again after a catalog change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HostEvaluationInput {
    pub host_id: i64,
    pub inventory_digest: Option<String>,
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationRow {
    pub host_id: i64,
    pub hostname: String,
    pub organization_id: i64,
    pub organization: String,
    pub app_id: String,
    pub app_name: String,
    pub status: AppStatus,
    pub strength: Strength,
    pub users: Vec<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// JSON array of `sverka_shared::Evidence`.
    pub evidence: String,
    /// When the host last reported (the age of what is known about it).
    pub host_last_seen_at: Option<Timestamp>,
}

/// Coverage of one organization and everything under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub organization_id: i64,
    pub organization: String,
    pub expected_pcs: i64,
    pub enrolled: i64,
    /// Reported since the cut-off.
    pub reporting: i64,
    /// Enrolled, but not reported since the cut-off.
    pub silent: i64,
    /// PCs whose last known state has an open banned finding (installed or running),
    /// silent ones included: a PC's state is its last report, however old.
    pub with_banned: i64,
    /// PCs whose last known state has an approved messenger installed.
    pub with_approved: i64,
    /// PCs that have reported at least once (the base of the share).
    pub known: i64,
}

impl Coverage {
    /// Share of the PCs with a known state that have an approved messenger, 0.0 to 1.0.
    pub fn approved_share(&self) -> f64 {
        if self.known == 0 {
            0.0
        } else {
            self.with_approved as f64 / self.known as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SilentHost {
    pub host_id: i64,
    pub hostname: String,
    pub organization_id: i64,
    pub organization: String,
    #[schema(required = true)]
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FindingEvent {
    pub host_id: i64,
    pub app_id: String,
    #[sqlx(try_from = "String")]
    pub event: FindingChange,
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub cause: ChangeCause,
}

/// What happened to a host's application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingChange {
    /// It was found, for the first time or again after it had been resolved.
    Appeared,
    /// It is no longer found.
    Resolved,
}

/// What made a finding change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// A report from the PC.
    Report,
    /// The catalog changed, and the PC's last inventory was evaluated again.
    Catalog,
}

stored_words!(FindingChange, "finding change", Appeared => "appeared", Resolved => "resolved");
stored_words!(ChangeCause, "cause", Report => "report", Catalog => "catalog");

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CatalogRevision {
    pub revision: i64,
    /// TOML merged over the built-in catalog.
    pub overrides: String,
}

/// Everything the collector keeps. Implementations must be safe to share between the
/// HTTP server's tasks and must let a CLI process use the same database at once.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn create_organization(&self, new: NewOrganization) -> StoreResult<Organization>;
    async fn organization(&self, id: i64) -> StoreResult<Option<Organization>>;
    async fn organizations(&self) -> StoreResult<Vec<Organization>>;
    /// Every organization, as kept in memory: the same `Arc` until any organization
    /// changes (so a caller may keep what it built from them beside it).
    async fn organizations_shared(&self) -> StoreResult<std::sync::Arc<Vec<Organization>>>;
    /// Sets (or with `None`, clears: inherit) an organization's own time zone.
    async fn set_organization_time_zone(
        &self,
        id: i64,
        time_zone: Option<&str>,
    ) -> StoreResult<Organization>;
    /// Sets (or with `None`, clears) who receives an organization's weekly report by
    /// e-mail; the addresses are checked (`mail::parse_recipients`).
    async fn set_organization_report_recipients(
        &self,
        id: i64,
        recipients: Option<&str>,
    ) -> StoreResult<Organization>;
    /// Sets (or with `None`, clears) who receives an organization's daily digest of
    /// what is new; the addresses are checked as the weekly report's are.
    async fn set_organization_digest_recipients(
        &self,
        id: i64,
        recipients: Option<&str>,
    ) -> StoreResult<Organization>;
    /// Sets (or with `None`, removes) an organization's webhook; the URL and the
    /// secret are checked (`rules::checked_webhook`).
    async fn set_organization_webhook(
        &self,
        id: i64,
        webhook: Option<&Webhook>,
    ) -> StoreResult<Organization>;
    async fn organization_webhook(&self, id: i64) -> StoreResult<Option<Webhook>>;
    /// What changed in `organization_id` and everything under it in `[from, until)`:
    /// banned messengers that appeared or were resolved (each PC and application once,
    /// as its last change left it), and PCs whose last report became older than
    /// `silent_after_seconds`. Retired PCs are left out.
    async fn changes(
        &self,
        organization_id: i64,
        from: Timestamp,
        until: Timestamp,
        silent_after_seconds: i64,
    ) -> StoreResult<Changes>;
    /// Where the next notification of (`organization_id`, `channel`) starts: the end
    /// of the last one captured.
    async fn notification_cursor(
        &self,
        organization_id: i64,
        channel: Channel,
    ) -> StoreResult<Option<Timestamp>>;
    /// Captures a notification; `None` when its window (or digest day) was captured
    /// already.
    async fn record_notification(
        &self,
        new: &NewNotification,
        now: Timestamp,
    ) -> StoreResult<Option<i64>>;
    /// Notifications of `channel` to send now: pending, failed and due again, and
    /// (with `stale_before`) claimed before it by a collector that did not finish.
    async fn due_notifications(
        &self,
        channel: Channel,
        now: Timestamp,
        stale_before: Option<Timestamp>,
    ) -> StoreResult<Vec<Notification>>;
    /// Claims a due notification for sending; returns the attempt's number, or `None`
    /// when it is not due (any more).
    async fn claim_notification(
        &self,
        id: i64,
        now: Timestamp,
        stale_before: Option<Timestamp>,
    ) -> StoreResult<Option<i64>>;
    async fn finish_notification(
        &self,
        id: i64,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// An organization's notifications, newest first.
    async fn notifications(
        &self,
        organization_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<Notification>>;
    /// Deletes notifications created before `before` that are done (each channel's
    /// newest one of an organization stays: the next starts from it).
    async fn prune_notifications(&self, before: Timestamp) -> StoreResult<u64>;
    /// Claims the weekly report mail of (`organization_id`, `week`) for sending to
    /// `recipients`: only when none was claimed before, or the last try failed and its
    /// `next_attempt_at` has come. Returns the attempt's number when claimed. Two
    /// collectors claiming at once: one gets it.
    async fn claim_weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
        recipients: &str,
        now: Timestamp,
    ) -> StoreResult<Option<i64>>;
    /// Records how a claimed (or, with `sent_by`, a "send now") weekly mail ended.
    async fn finish_weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
        recipients: &str,
        outcome: &DeliveryOutcome,
        sent_by: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The weekly report mail of (`organization_id`, `week`), if any was tried.
    async fn weekly_mail(
        &self,
        organization_id: i64,
        week: &str,
    ) -> StoreResult<Option<WeeklyMail>>;
    /// The officer's worklist: violations of `filter.within`'s subtree, filtered,
    /// ordered by organization, PC and application, at most `filter.limit` of them.
    async fn worklist(&self, filter: &WorklistFilter) -> StoreResult<Worklist>;
    /// Sets (or with `None`, clears: inherit) an organization's reporting cut-off, the
    /// day and time its weekly report is due (`thursday 15:00`).
    async fn set_organization_report_cutoff(
        &self,
        id: i64,
        report_cutoff: Option<&str>,
    ) -> StoreResult<Organization>;

    async fn create_secret(&self, new: NewSecret, now: Timestamp) -> StoreResult<SecretInfo>;
    async fn revoke_secret(&self, id: i64, now: Timestamp) -> StoreResult<()>;
    async fn secrets(&self, organization_id: i64) -> StoreResult<Vec<SecretInfo>>;

    /// Checks the secret (exists, hash matches, not expired, not revoked) and creates or
    /// updates the host in the secret's organization.
    async fn enroll(&self, enrollment: Enrollment, now: Timestamp) -> StoreResult<EnrolledHost>;
    /// The credentials of an active host (`None` for a retired one: its key stops
    /// working).
    async fn host_credentials(&self, host_id: i64) -> StoreResult<Option<HostCredentials>>;
    /// Retires a host: it leaves every count, its key stops working, its history stays.
    /// Retiring a retired host changes nothing.
    async fn retire_host(&self, host_id: i64, now: Timestamp) -> StoreResult<RetiredHost>;
    /// Retires `duplicate` as a duplicate of `into` (an active host of the same
    /// organization).
    async fn merge_host(
        &self,
        duplicate: i64,
        into: i64,
        now: Timestamp,
    ) -> StoreResult<RetiredHost>;
    /// The organization's most recently enrolled hosts (retired ones too), newest
    /// first, with the secret that enrolled each.
    async fn recent_enrollments(
        &self,
        organization_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<RecentEnrollment>>;
    async fn host_state(&self, host_id: i64) -> StoreResult<Option<HostState>>;

    /// Stores a report exactly once (by id) and applies its findings to the host.
    async fn record_report(&self, record: ReportRecord) -> StoreResult<RecordOutcome>;
    /// An inventory's JSON body by digest.
    async fn inventory(&self, digest: &str) -> StoreResult<Option<String>>;
    async fn inventory_count(&self) -> StoreResult<i64>;
    async fn report_count(&self, host_id: i64) -> StoreResult<i64>;

    /// Hosts in id order after `after_host_id`, for re-evaluation in pages.
    async fn hosts_for_evaluation(
        &self,
        after_host_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<HostEvaluationInput>> {
        // Every host's revision is older than the largest one there can be.
        self.hosts_behind_catalog(i64::MAX, after_host_id, limit)
            .await
    }
    /// Hosts last evaluated with a catalog revision older than `revision`, in id order
    /// after `after_host_id`: reports that a collector evaluated before it noticed a
    /// catalog change another process made.
    async fn hosts_behind_catalog(
        &self,
        revision: i64,
        after_host_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<HostEvaluationInput>>;
    /// Replaces a host's findings after a catalog change.
    async fn apply_evaluation(
        &self,
        host_id: i64,
        findings: Vec<HostFinding>,
        catalog_revision: i64,
        now: Timestamp,
    ) -> StoreResult<()>;

    async fn current_catalog(&self) -> StoreResult<Option<CatalogRevision>>;
    async fn save_catalog(&self, overrides: &str, now: Timestamp) -> StoreResult<i64>;

    /// Open and resolved findings of the organization and everything under it.
    async fn violations(
        &self,
        organization_id: i64,
        include_resolved: bool,
    ) -> StoreResult<Vec<ViolationRow>>;
    /// Coverage of the organization itself (first row) and of each of its children.
    async fn coverage(&self, organization_id: i64, since: Timestamp) -> StoreResult<Vec<Coverage>>;
    async fn silent_hosts(
        &self,
        organization_id: i64,
        since: Timestamp,
    ) -> StoreResult<Vec<SilentHost>>;
    async fn finding_events(&self, host_id: i64) -> StoreResult<Vec<FindingEvent>>;

    /// Forgets report ids received before `before` (the deduplication window and the
    /// check-in history); findings and their events are kept. Returns how many went.
    async fn prune_reports(&self, before: Timestamp) -> StoreResult<u64>;
    /// Deletes the days of application use before the day of `before` (the weekly
    /// figures keep what was counted); returns how many were deleted.
    async fn prune_use_days(&self, before: Timestamp) -> StoreResult<u64>;

    // The dashboard: people, sessions, tokens, audit, notes and figures.

    /// Creates a user; a login taken already is `Rejected`.
    async fn create_user(&self, new: NewUser, now: Timestamp) -> StoreResult<User>;
    async fn user(&self, id: i64) -> StoreResult<Option<User>>;
    /// The user and password hash of a login (compared without regard to case).
    async fn user_credentials(&self, login: &str) -> StoreResult<Option<UserCredentials>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Changes a user; a new password or disabling ends every session of the user.
    async fn update_user(&self, id: i64, change: UserChange, now: Timestamp) -> StoreResult<()>;

    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    /// The session of a token hash, when it exists, has not expired and its user is
    /// not disabled.
    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<ApiTokenInfo>;
    async fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenInfo>>;
    /// Revokes one of the user's tokens (`NotFound` when the user has no such token).
    async fn revoke_api_token(&self, user_id: i64, id: i64, now: Timestamp) -> StoreResult<()>;
    /// A token with its user, when it exists, is not revoked and its user is enabled.
    async fn api_token(&self, id: i64) -> StoreResult<Option<ApiTokenCredentials>>;

    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()>;
    /// The newest entries first.
    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditEntry>>;

    /// Counts of every organization's own PCs (not its subtree's).
    async fn organization_counts(
        &self,
        reporting_since: Timestamp,
        silent_before: Timestamp,
    ) -> StoreResult<Vec<OrganizationCounts>>;
    /// The PCs of every organization (its own, not its subtree's) that used an
    /// application in `[from, until)`: per organization and status, and per
    /// organization and application.
    async fn organization_use(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> StoreResult<(Vec<OrganizationUse>, Vec<ApplicationUse>)>;
    /// A host's days of use since `since`, oldest first.
    async fn host_use_days(&self, host_id: i64, since: Timestamp) -> StoreResult<Vec<HostUseDay>>;
    /// The PCs of one organization (not its subtree), by host name.
    async fn host_summaries(&self, organization_id: i64) -> StoreResult<Vec<HostSummary>>;
    async fn host_detail(&self, host_id: i64) -> StoreResult<Option<HostDetail>>;
    /// Every application the host has or had, open ones first.
    async fn host_apps(&self, host_id: i64) -> StoreResult<Vec<HostApp>>;
    /// Sets (replaces) the note on a host's application.
    async fn mark_handled(&self, mark: HandledMark) -> StoreResult<()>;
    /// Notes on the hosts of an organization and everything under it.
    async fn handled_marks(&self, organization_id: i64) -> StoreResult<Vec<HandledMark>>;

    /// Stores figures of a week; figures frozen before are kept. Returns how many rows
    /// were new. In the same transaction, when some figures are new and for the first
    /// time for its week and boundaries, `hosts` keeps every PC (not retired) with a
    /// banned messenger, as the figures counted them; a list written before is kept as
    /// it was. `applications` (the week's PCs per application) are stored with the
    /// figures of their organization when those are new.
    async fn freeze_weekly_figures(
        &self,
        figures: &[WeeklyFigures],
        applications: &[ApplicationUse],
        hosts: &HostListToFreeze,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// The frozen list of PCs with a banned messenger of `week` and `boundaries`, those
    /// that were in `organization_id` or under it (or, with `directly_under`, in it
    /// alone); `None` when no list was kept for that week.
    async fn frozen_host_list(
        &self,
        week: &str,
        boundaries: &str,
        organization_id: i64,
        directly_under: bool,
    ) -> StoreResult<Option<FrozenHostList>>;
    /// Every organization's frozen figures of one week. A federated organization
    /// counts with the week its lower collector froze, once sent, and the
    /// organizations above it with the difference; until then with what was frozen
    /// here, marked `late` (`store::federated_weeks`).
    async fn weekly_figures_of_week(&self, week: &str) -> StoreResult<Vec<WeeklyFigures>>;
    /// Every organization's own frozen PCs per application of one week.
    async fn weekly_app_use_of_week(&self, week: &str) -> StoreResult<Vec<ApplicationUse>>;
    /// One organization's frozen figures, oldest week first, `from_week..=to_week`,
    /// federated weeks merged in as by [`Store::weekly_figures_of_week`].
    async fn weekly_figures_of_organization(
        &self,
        organization_id: i64,
        from_week: &str,
        to_week: &str,
    ) -> StoreResult<Vec<WeeklyFigures>>;

    // Federation: links on the upstream, the upstream on the lower collector.

    /// Makes a link for `organization_id` (not a federated one) with the SHA-256 of
    /// its secret's random part.
    async fn create_link(
        &self,
        organization_id: i64,
        secret_hash: &str,
        detail: sverka_shared::federation::Detail,
        now: Timestamp,
    ) -> StoreResult<LinkInfo>;
    /// Revokes a link: its secret stops working at once, what it sent stays.
    async fn revoke_link(&self, id: i64, now: Timestamp) -> StoreResult<()>;
    async fn links(&self) -> StoreResult<Vec<LinkInfo>>;
    async fn link_credentials(&self, id: i64) -> StoreResult<Option<LinkCredentials>>;
    /// Stores a checked message of a link (`FiguresMessage::check`): its organizations
    /// under the link's, its current figures only when newer than the last applied,
    /// each frozen week once. A revoked link is `Rejected` and stores nothing.
    async fn store_federated_figures(
        &self,
        link_id: i64,
        message: &sverka_shared::federation::FiguresMessage,
        now: Timestamp,
    ) -> StoreResult<IntakeOutcome>;
    /// A federated organization's own banned messengers as its lower collector last
    /// sent them (with `None`, every federated organization's), by organization and
    /// application.
    async fn federated_violations(
        &self,
        organization_id: Option<i64>,
    ) -> StoreResult<Vec<FederatedViolation>>;
    async fn upstream(&self) -> StoreResult<Option<UpstreamLink>>;
    /// Sets (a new link starts with no week acknowledged) or with `None` removes the
    /// upstream.
    async fn set_upstream(&self, link: Option<&UpstreamLink>) -> StoreResult<()>;
    async fn record_push(&self, outcome: &PushOutcome, now: Timestamp) -> StoreResult<()>;
    /// The weeks with frozen figures after `after` (every one with `None`), oldest
    /// first, at most `limit`.
    async fn frozen_weeks(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<String>>;

    /// Takes the background job `name` (`"prune-reports"`, `"catalog-reevaluation"`,
    /// ...) for this process, or `None` when another holder has it: with several
    /// collectors on one database, a job runs in one of them at a time. Run the job
    /// while holding the lease; drop it when done. PostgreSQL holds a session advisory
    /// lock on a connection of its own (released also when the process dies); SQLite,
    /// which one collector process serves, holds it within this store.
    async fn try_lock_job(&self, name: &str) -> StoreResult<Option<JobLease>>;
}
