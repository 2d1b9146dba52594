//! Row types of the dashboard's part of the [`super::Store`]: people, sessions, API
//! tokens, the audit log, handled notes, per-organization counts and weekly figures.

use serde::Serialize;

use super::Timestamp;
use sverka_shared::report::UnknownWord;
use sverka_shared::{AppStatus, Strength};

/// What a person may do; see `web::scope` for the one place that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, everywhere.
    Administrator,
    /// An organization and everything under it: read, manage schools, secrets and the
    /// catalog.
    Officer,
    /// One school: read, create enrollment secrets, mark violations as being handled.
    SchoolAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Administrator, Role::Officer, Role::SchoolAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Officer => "officer",
            Role::SchoolAdmin => "school_admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

/// A role as stored; an unknown word is an error, not a guess.
impl TryFrom<String> for Role {
    type Error = UnknownWord;

    fn try_from(text: String) -> Result<Role, UnknownWord> {
        Role::parse(&text).ok_or_else(|| UnknownWord::new("role", &text))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub login: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// `None` only for administrators.
    pub organization_id: Option<i64>,
    /// `ru` or `en`.
    pub language: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct NewUser {
    pub login: String,
    pub password_hash: String,
    pub role: Role,
    pub organization_id: Option<i64>,
    pub language: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NewUser")
            .field("login", &self.login)
            .field("role", &self.role)
            .field("organization_id", &self.organization_id)
            .finish_non_exhaustive()
    }
}

/// A user with the hash to check a password against.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Changes to a user; `None` leaves a field as it is. Disabling or a new password ends
/// the user's sessions.
#[derive(Clone, Default)]
pub struct UserChange {
    pub password_hash: Option<String>,
    pub language: Option<String>,
    pub disabled: Option<bool>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UserChange")
            .field("password_changed", &self.password_hash.is_some())
            .field("language", &self.language)
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A token's owner and stored hash, to check a presented token against.
#[derive(Debug, Clone)]
pub struct ApiTokenCredentials {
    pub info: ApiTokenInfo,
    pub user: User,
    pub token_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    /// The login, or `cli` for the command line.
    pub actor: String,
    pub action: String,
    pub organization_id: Option<i64>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub organization_id: Option<i64>,
    pub detail: String,
}

/// A note that a violation is being handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HandledMark {
    pub host_id: i64,
    pub app_id: String,
    pub note: String,
    pub by_login: String,
    pub at: Timestamp,
}

/// The PCs of one organization alone (not its subtree); the dashboard adds them up
/// along the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, sqlx::FromRow)]
///
/// A PC's state is its last report, however old: `with_banned` and `with_approved`
/// count every PC whose last known state has such a messenger, silent or not, so
/// switching PCs off never improves the figures.
pub struct OrganizationCounts {
    pub organization_id: i64,
    pub enrolled: i64,
    /// Reported since the reporting cut-off.
    pub reporting: i64,
    /// Not reported since the silence cut-off (or never).
    pub silent: i64,
    /// PCs whose last known state has an open banned finding.
    pub with_banned: i64,
    /// PCs whose last known state has an approved messenger.
    pub with_approved: i64,
    /// PCs that have reported at least once (the base of the shares).
    pub known: i64,
    /// Silent PCs whose last known state has an open banned finding.
    pub silent_with_banned: i64,
}

/// One PC of an organization, for the school page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HostSummary {
    pub host_id: i64,
    pub hostname: String,
    pub os_name: String,
    pub agent_version: String,
    pub last_seen_at: Option<Timestamp>,
    pub open_banned: i64,
    pub open_approved: i64,
}

/// Everything the PC page shows about the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HostDetail {
    pub host_id: i64,
    pub organization_id: i64,
    pub machine_id: String,
    pub hostname: String,
    pub os_id: String,
    pub os_name: String,
    pub agent_version: String,
    pub enrolled_at: i64,
    #[schema(required = true)]
    pub last_seen_at: Option<i64>,
    #[schema(required = true)]
    pub last_scan_at: Option<i64>,
    #[schema(required = true)]
    pub inventory_digest: Option<String>,
    pub catalog_revision: i64,
}

/// One application on one host, open or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HostApp {
    pub app_id: String,
    pub app_name: String,
    pub status: AppStatus,
    pub strength: Strength,
    pub users: Vec<String>,
    /// JSON array of `sverka_shared::Evidence`.
    pub evidence: String,
    pub first_seen: i64,
    pub last_seen: i64,
    #[schema(required = true)]
    pub resolved_at: Option<i64>,
}

/// An organization's overview figures (its whole subtree) for one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WeeklyFigures {
    pub organization_id: i64,
    /// ISO week of the week's last day, `2026-W47`.
    pub week: String,
    pub expected_pcs: i64,
    pub enrolled: i64,
    pub reporting: i64,
    pub silent: i64,
    pub with_banned: i64,
    pub with_approved: i64,
    /// PCs with a known state; `None` in figures frozen before it was kept.
    pub known: Option<i64>,
    /// Silent PCs with a banned messenger; `None` in figures frozen before it was kept.
    pub silent_with_banned: Option<i64>,
    /// PCs that used an approved application in the week; `None` in figures frozen
    /// before use was counted.
    pub used_approved: Option<i64>,
    /// PCs that used a banned application in the week; `None` likewise.
    pub used_banned: Option<i64>,
    /// A federated organization whose lower collector has not sent this week's figures:
    /// they are the last ones it had sent when this collector froze the week.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// Which PCs a week's frozen figures counted: written once with the figures, for the
/// organizations frozen together (the same week boundaries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostListToFreeze {
    /// ISO week of the week's last day, `2026-W47`.
    pub week: String,
    /// The week boundaries of the organizations frozen together
    /// (`web::figures::boundaries_key`).
    pub boundaries: String,
    /// A PC that had not reported since then was silent.
    pub silent_before: Timestamp,
}

/// A week's frozen list of PCs with a banned messenger, for one organization's subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenHostList {
    pub frozen_at: Timestamp,
    pub silent_before: Timestamp,
    /// By organization, then host name.
    pub hosts: Vec<FrozenHost>,
}

/// A PC as it was when its week was frozen.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FrozenHost {
    pub host_id: i64,
    /// The organization the PC was in then.
    pub organization_id: i64,
    pub hostname: String,
    pub last_seen_at: Option<Timestamp>,
    /// How many banned messengers it had open.
    pub open_banned: i64,
}

impl FrozenHost {
    /// Whether the PC was silent when its week was frozen.
    pub fn silent(&self, list: &FrozenHostList) -> bool {
        self.last_seen_at.is_none_or(|at| at < list.silent_before)
    }
}
