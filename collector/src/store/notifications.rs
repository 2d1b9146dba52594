//! What the collector tells people and systems by itself: the weekly report by e-mail
//! ([`WeeklyMail`]) and the notifications of what is new in an organization, a daily
//! digest by e-mail and a signed webhook ([`Notification`], [`Changes`]).
//!
//! A notification is captured before it is sent (an outbox row with its changes as
//! JSON). The next one of the same organization and channel covers the time from where
//! the last one ended, so nothing is left out and nothing is told twice.

use serde::{Deserialize, Serialize};

use super::{Timestamp, UnknownWord};

/// An organization's weekly report mail for one week.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WeeklyMail {
    pub organization_id: i64,
    pub week: String,
    /// `sending`, `sent` or `failed`.
    pub state: String,
    pub recipients: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub claimed_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    /// Who pressed "send now"; `None`: the schedule.
    pub sent_by: Option<String>,
}

/// How one try of a mail or a webhook call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    /// Not sent: the error, and when to try again (`None`: not by itself).
    Failed {
        error: String,
        retry_at: Option<Timestamp>,
    },
}

/// How a notification reaches people or systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The daily digest by e-mail (to the organization's digest recipients).
    Digest,
    /// A JSON POST signed with the organization's webhook secret.
    Webhook,
}

/// Where a notification is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// A digest day with nothing new: recorded (the next one starts after it), not sent.
    NothingNew,
    /// Captured, not tried yet.
    Pending,
    /// Claimed by a collector that is sending it.
    Sending,
    Sent,
    /// The last try failed: tried again from `next_attempt_at` (`None`: given up).
    Failed,
}

stored_words!(Channel, "notification channel", Digest => "digest", Webhook => "webhook");
stored_words!(
    NotificationState,
    "notification state",
    NothingNew => "nothing_new",
    Pending => "pending",
    Sending => "sending",
    Sent => "sent",
    Failed => "failed"
);

/// An organization's webhook: where it posts and the secret it signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        formatter
            .debug_struct("Webhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A banned messenger that appeared on a PC, or was resolved, in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationChange {
    pub host_id: i64,
    pub pc: String,
    pub organization_id: i64,
    pub organization: String,
    pub app_id: String,
    pub application: String,
    pub users: Vec<String>,
    /// When the collector recorded the change.
    pub at: Timestamp,
}

/// A PC that went silent in a window: its last report became older than the
/// collector's `silent_after_days`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilentChange {
    pub host_id: i64,
    pub pc: String,
    pub organization_id: i64,
    pub organization: String,
    pub last_report_at: Timestamp,
}

/// What changed in an organization and everything under it in `[from, until)`: each
/// (PC, banned messenger) once, as its last change in the window left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub new_violations: Vec<ViolationChange>,
    pub resolved_violations: Vec<ViolationChange>,
    pub silent_pcs: Vec<SilentChange>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.new_violations.is_empty()
            && self.resolved_violations.is_empty()
            && self.silent_pcs.is_empty()
    }
}

/// A notification to capture: `payload` is `None` for a digest day with nothing new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub organization_id: i64,
    pub channel: Channel,
    /// A scheduled digest's local day (`2026-12-03`); `None` otherwise.
    pub day: Option<String>,
    pub covered_from: Timestamp,
    pub covered_until: Timestamp,
    /// The recipients (digest) or the URL (webhook) at capture.
    pub destination: String,
    pub payload: Option<String>,
}

/// A captured notification and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub organization_id: i64,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub day: Option<String>,
    pub covered_from: Timestamp,
    pub covered_until: Timestamp,
    pub destination: String,
    pub payload: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: NotificationState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub claimed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}
