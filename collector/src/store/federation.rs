//! Federation's rows (migration 0018): on the upstream, the links lower collectors send
//! through and what a message changed; on the lower collector, its one upstream.

use serde::Serialize;
use sverka_shared::federation::Detail;

use super::Timestamp;

/// A link an upstream made for one of its organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    pub id: i64,
    pub organization_id: i64,
    pub detail: Detail,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// When the last message arrived.
    pub last_received_at: Option<Timestamp>,
    /// When the lower collector counted the current figures applied last.
    pub last_generated_at: Option<Timestamp>,
    /// The newest frozen week held of this link.
    pub newest_week: Option<String>,
}

/// What checking a link's secret needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCredentials {
    pub id: i64,
    pub organization_id: i64,
    pub secret_hash: String,
    pub detail: Detail,
    pub revoked_at: Option<Timestamp>,
}

/// What storing a message changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntakeOutcome {
    /// The current figures (and the tree's names) were newer than the last applied.
    pub current_applied: bool,
    pub weeks_stored: u64,
    pub weeks_known: u64,
    pub newest_week: Option<String>,
}

/// The lower collector's upstream, as `upstream set` configured it.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLink {
    pub url: String,
    /// The link's secret, sent as the bearer token (kept out of `Debug`).
    pub secret: String,
    pub allow_http: bool,
    pub configured_at: Timestamp,
    /// What the upstream said when the link was set: the organization its figures
    /// appear under, and what it receives.
    pub upstream_organization: String,
    pub detail: Detail,
    pub acknowledged_week: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl UpstreamLink {
    /// A link just set: `url` and `secret` as entered (trimmed, no trailing slash),
    /// with what the upstream said it allows; no push yet, no week acknowledged.
    pub fn new(
        url: &str,
        secret: &str,
        allow_http: bool,
        description: &sverka_shared::federation::LinkDescription,
        now: Timestamp,
    ) -> UpstreamLink {
        UpstreamLink {
            url: url.trim().trim_end_matches('/').to_string(),
            secret: secret.trim().to_string(),
            allow_http,
            configured_at: now,
            upstream_organization: description.organization.clone(),
            detail: description.detail,
            acknowledged_week: None,
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
        }
    }
}

impl std::fmt::Debug for UpstreamLink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpstreamLink")
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("upstream_organization", &self.upstream_organization)
            .field("detail", &self.detail)
            .field("acknowledged_week", &self.acknowledged_week)
            .field("last_success_at", &self.last_success_at)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// How a push to the upstream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Acknowledged; the upstream holds frozen weeks up to this one.
    Acknowledged {
        newest_week: Option<String>,
    },
    Failed {
        error: String,
    },
}

/// A federated school's banned messenger, as its lower collector last sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FederatedViolation {
    pub organization_id: i64,
    pub app_id: String,
    pub pcs: i64,
    /// The PCs' names, when the link allows them (empty otherwise).
    pub hosts: Vec<String>,
}
