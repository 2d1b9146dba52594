//! Notifications of what is new (issue 20): a daily digest per organization by e-mail
//! to the people who act on it (new banned messengers, resolved ones, PCs gone silent),
//! and an optional webhook per organization, a JSON POST signed with HMAC-SHA256, for
//! the region's own systems.
//!
//! Both work as an outbox: the changes of a window are captured in the database
//! ([`Store::record_notification`]) before anything is sent, and the next window
//! starts where the last one ended, so nothing is left out or told twice. Nothing is
//! sent for an organization with nothing new. Windows end `settle_seconds` before now,
//! so a report still being written is not cut in half. Delivery is claimed in the
//! database, tried again with growing pauses and given up after a bound; a webhook
//! call that a stopped collector left unfinished is made again (its receiver knows it
//! by `X-Sverka-Notification`), a digest mail is not (it may have gone out).

pub mod digest;
pub mod webhook;

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::store::{
    Changes, Channel, DeliveryOutcome, NewNotification, Notification, NotificationState, Store,
    StoreResult, Timestamp,
};
use crate::web::WebState;
use crate::web::scope::OrganizationTree;

/// The job lease of capturing and sending daily digests.
pub const DIGEST_JOB: &str = "daily-digest";
/// The job lease of capturing and calling webhooks.
pub const WEBHOOK_JOB: &str = "webhooks";

/// The first digest or webhook call of an organization covers at most this much of
/// what happened before it was set up.
pub const FIRST_WINDOW_SECONDS: i64 = 86_400;

/// `[notifications]` in collector.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// When the daily digest goes out, local time of each organization (`07:00`).
    pub digest_time: String,
    /// How often the collector looks for what is due (seconds).
    pub check_seconds: u64,
    /// A window ends this many seconds before now, so a report being written when it
    /// is cut is told in the next one.
    pub settle_seconds: u64,
    /// How long one webhook call may take (connecting, sending, the answer).
    pub webhook_timeout_seconds: u64,
    /// Tries of one webhook call before it is given up.
    pub webhook_attempts: i64,
    /// The pause after the first failed try (doubling, at most an hour).
    pub retry_seconds: u64,
}

impl Default for NotificationsConfig {
    fn default() -> NotificationsConfig {
        NotificationsConfig {
            digest_time: "07:00".into(),
            check_seconds: 60,
            settle_seconds: 120,
            webhook_timeout_seconds: 10,
            webhook_attempts: 8,
            retry_seconds: 60,
        }
    }
}

impl NotificationsConfig {
    /// `digest_time` as minutes past midnight, or why it is not a time.
    pub fn digest_minutes(&self) -> Result<u16, String> {
        let text = self.digest_time.trim();
        let invalid = || format!("digest_time = {text:?} is not a time of day such as \"07:00\"");
        let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
        let hours: u16 = hours.parse().map_err(|_| invalid())?;
        let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
        if hours > 23 || minutes > 59 || text.len() > 5 {
            return Err(invalid());
        }
        Ok(hours * 60 + minutes)
    }

    fn first_retry(&self) -> i64 {
        self.retry_seconds.max(1) as i64
    }
}

/// The window of the next notification of (`organization_id`, `channel`): from the
/// end of the last one (or a day back, the first time) to `settle_seconds` before
/// `now`; `None` when it would be empty (a clock set back ends before it starts).
pub async fn next_window(
    store: &dyn Store,
    organization_id: i64,
    channel: Channel,
    config: &NotificationsConfig,
    now: Timestamp,
) -> StoreResult<Option<(Timestamp, Timestamp)>> {
    let until = now - config.settle_seconds as i64;
    let from = store
        .notification_cursor(organization_id, channel)
        .await?
        .unwrap_or(until - FIRST_WINDOW_SECONDS);
    Ok((from < until).then_some((from, until)))
}

/// What capturing the next window gave.
#[derive(Debug)]
enum Captured {
    /// A notification, with news to send (`pending`) or a digest day without
    /// (`nothing_new`).
    New(Notification),
    /// Another round or collector captured this window (or digest day) first.
    Already,
    /// The window is empty, or (the webhook) has nothing new: nothing was written.
    Nothing,
}

/// Captures the changes of the next window of (`organization_id`, `channel`): a
/// notification to send when there is something new, a `nothing_new` row for a
/// digest `day` without news (the day is done), nothing otherwise.
async fn capture(
    state: &WebState,
    organization_id: i64,
    channel: Channel,
    day: Option<String>,
    destination: &str,
    config: &NotificationsConfig,
    now: Timestamp,
) -> StoreResult<Captured> {
    let store = state.app.store.as_ref();
    let Some((from, until)) = next_window(store, organization_id, channel, config, now).await?
    else {
        return Ok(Captured::Nothing);
    };
    let silent_after = i64::from(state.silent_after_days) * 86_400;
    let changes = store
        .changes(organization_id, from, until, silent_after)
        .await?;
    if changes.is_empty() && day.is_none() {
        // The next window simply grows; nothing is written.
        return Ok(Captured::Nothing);
    }
    let payload = if changes.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&changes).map_err(|error| {
            crate::store::StoreError::Invalid(format!("the changes as JSON: {error}"))
        })?)
    };
    let new = NewNotification {
        organization_id,
        channel,
        day,
        covered_from: from,
        covered_until: until,
        destination: destination.to_string(),
        payload,
    };
    let Some(id) = store.record_notification(&new, now).await? else {
        return Ok(Captured::Already);
    };
    Ok(Captured::New(Notification {
        id,
        organization_id,
        channel,
        state: match new.payload {
            Some(_) => NotificationState::Pending,
            None => NotificationState::NothingNew,
        },
        day: new.day,
        covered_from: from,
        covered_until: until,
        destination: new.destination,
        payload: new.payload,
        attempts: 0,
        last_error: None,
        next_attempt_at: None,
        claimed_at: None,
        created_at: now,
        sent_at: None,
    }))
}

/// The changes a captured notification carries.
pub fn changes_of(notification: &Notification) -> Changes {
    notification
        .payload
        .as_deref()
        .and_then(|payload| serde_json::from_str(payload).ok())
        .unwrap_or_default()
}

/// The daily digests' job, one round: each organization with digest recipients whose
/// digest time has come today (in its time zone) gets today's digest captured once;
/// then every digest due is sent. `done` remembers the days already captured, so a
/// round does not read the database for them again.
pub async fn digest_round(
    state: &WebState,
    mailer: &crate::mail::Mailer,
    config: &NotificationsConfig,
    done: &mut HashSet<(i64, String)>,
    now: Timestamp,
) -> StoreResult<u64> {
    let store = state.app.store.as_ref();
    let minutes = config.digest_minutes().unwrap_or(7 * 60);
    let tree = OrganizationTree::new(store.organizations().await?);
    let mut today = HashSet::new();
    for id in tree.ids() {
        let Some(recipients) = tree
            .get(id)
            .and_then(|organization| organization.digest_recipients.clone())
        else {
            continue;
        };
        let clock = state.clock_for(&tree, id);
        let day = clock.date_of(now).to_string();
        today.insert(day.clone());
        if now < clock.at_minutes_of_day(now, minutes) || done.contains(&(id, day.clone())) {
            continue;
        }
        let captured = capture(
            state,
            id,
            Channel::Digest,
            Some(day.clone()),
            &recipients,
            config,
            now,
        )
        .await?;
        match captured {
            Captured::New(notification) => tracing::info!(
                organization = id,
                %day,
                notification = notification.id,
                news = notification.payload.is_some(),
                "daily digest captured"
            ),
            Captured::Already => {}
            // A clock set back: the day is tried again in the next round.
            Captured::Nothing => continue,
        }
        done.insert((id, day));
    }
    // Only today's days (in every organization's zone) need remembering.
    done.retain(|(_, day)| today.contains(day));
    send_due_digests(state, mailer, config, &tree, now).await
}

/// Sends every digest due (captured, or failed and due again); a digest a stopped
/// collector left `sending` is not sent again by itself.
async fn send_due_digests(
    state: &WebState,
    mailer: &crate::mail::Mailer,
    config: &NotificationsConfig,
    tree: &OrganizationTree,
    now: Timestamp,
) -> StoreResult<u64> {
    let store = state.app.store.as_ref();
    let mut sent = 0;
    for notification in store.due_notifications(Channel::Digest, now, None).await? {
        let outcome = send_digest(state, mailer, config, tree, &notification, now).await?;
        sent += u64::from(outcome == Some(DeliveryOutcome::Sent));
    }
    Ok(sent)
}

/// Claims a captured digest, sends it, and records how it went (a failure that may
/// pass is tried again, up to the weekly report's number of tries); `None` when
/// another round or collector has it.
async fn send_digest(
    state: &WebState,
    mailer: &crate::mail::Mailer,
    config: &NotificationsConfig,
    tree: &OrganizationTree,
    notification: &Notification,
    now: Timestamp,
) -> StoreResult<Option<DeliveryOutcome>> {
    let store = state.app.store.as_ref();
    let Some(attempt) = store.claim_notification(notification.id, now, None).await? else {
        return Ok(None);
    };
    let tried = digest::deliver(state, mailer, tree, notification).await;
    let outcome = with_retry(
        tried,
        attempt,
        crate::web::weekly_mail::MAX_ATTEMPTS,
        config,
        now,
    );
    log_outcome(notification, attempt, &outcome);
    store
        .finish_notification(notification.id, &outcome, crate::now())
        .await?;
    Ok(Some(outcome))
}

/// A digest of what is new now, asked for by hand (`notify digest`): captured and
/// sent at once. `Ok(None)`: nothing new since the last one.
pub async fn digest_now(
    state: &WebState,
    mailer: &crate::mail::Mailer,
    config: &NotificationsConfig,
    organization_id: i64,
    now: Timestamp,
) -> StoreResult<Option<DeliveryOutcome>> {
    let store = state.app.store.as_ref();
    let tree = OrganizationTree::new(store.organizations().await?);
    let Some(recipients) = tree
        .get(organization_id)
        .and_then(|organization| organization.digest_recipients.clone())
    else {
        return Err(crate::store::StoreError::Invalid(format!(
            "organization {organization_id} has no digest recipients"
        )));
    };
    let Captured::New(notification) = capture(
        state,
        organization_id,
        Channel::Digest,
        None,
        &recipients,
        config,
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    send_digest(state, mailer, config, &tree, &notification, now).await
}

/// The webhooks' job, one round: each organization with a webhook gets the changes
/// since its last call captured (when there are any), then every call due is made,
/// a few at a time, each bounded by `webhook_timeout_seconds`.
pub async fn webhook_round(
    state: &WebState,
    client: &webhook::WebhookClient,
    config: &NotificationsConfig,
    now: Timestamp,
) -> StoreResult<u64> {
    let store = state.app.store.as_ref();
    let tree = OrganizationTree::new(store.organizations().await?);
    for id in tree.ids() {
        let Some(url) = tree
            .get(id)
            .and_then(|organization| organization.webhook_url.clone())
        else {
            continue;
        };
        if let Captured::New(notification) =
            capture(state, id, Channel::Webhook, None, &url, config, now).await?
        {
            tracing::info!(
                organization = id,
                notification = notification.id,
                "webhook call captured"
            );
        }
    }
    // A call claimed more than a few timeouts ago by a collector that stopped is made
    // again: its receiver knows a repeat by the notification's id.
    let stale_before = now - 3 * config.webhook_timeout_seconds.max(1) as i64 - 60;
    let due = store
        .due_notifications(Channel::Webhook, now, Some(stale_before))
        .await?;
    let tree = &tree;
    let calls = due.into_iter().map(|notification| async move {
        let Some(attempt) = store
            .claim_notification(notification.id, now, Some(stale_before))
            .await?
        else {
            return StoreResult::Ok(false);
        };
        let outcome = client.deliver(store, tree, &notification).await;
        let outcome = with_retry(outcome, attempt, config.webhook_attempts, config, now);
        log_outcome(&notification, attempt, &outcome);
        store
            .finish_notification(notification.id, &outcome, crate::now())
            .await?;
        Ok(outcome == DeliveryOutcome::Sent)
    });
    use futures_util::StreamExt;
    let results: Vec<StoreResult<bool>> = futures_util::stream::iter(calls)
        .buffer_unordered(8)
        .collect()
        .await;
    let mut sent = 0;
    for result in results {
        sent += u64::from(result?);
    }
    Ok(sent)
}

/// How one try of a digest or a webhook call went, before the retry policy says when
/// to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    Sent,
    /// `may_pass`: the failure may pass (a server down, an answer 500), so trying
    /// again makes sense; otherwise (recipients or a webhook removed) it does not.
    Failed {
        error: String,
        may_pass: bool,
    },
}

impl Tried {
    fn may_pass(error: String) -> Tried {
        Tried::Failed {
            error,
            may_pass: true,
        }
    }

    fn hopeless(error: impl Into<String>) -> Tried {
        Tried::Failed {
            error: error.into(),
            may_pass: false,
        }
    }
}

/// A failure that may pass is tried again after
/// [`crate::web::weekly_mail::retry_pause`], unless it was the last of `attempts`.
fn with_retry(
    tried: Tried,
    attempt: i64,
    attempts: i64,
    config: &NotificationsConfig,
    now: Timestamp,
) -> DeliveryOutcome {
    match tried {
        Tried::Sent => DeliveryOutcome::Sent,
        Tried::Failed { error, may_pass } => DeliveryOutcome::Failed {
            error,
            retry_at: (may_pass && attempt < attempts)
                .then(|| now + crate::web::weekly_mail::retry_pause(attempt, config.first_retry())),
        },
    }
}

fn log_outcome(notification: &Notification, attempt: i64, outcome: &DeliveryOutcome) {
    let channel = notification.channel.as_str();
    match outcome {
        DeliveryOutcome::Sent => tracing::info!(
            organization = notification.organization_id,
            notification = notification.id,
            channel,
            attempt,
            "notification sent"
        ),
        DeliveryOutcome::Failed { error, retry_at } => tracing::warn!(
            organization = notification.organization_id,
            notification = notification.id,
            channel,
            attempt,
            retry_at,
            "notification not sent: {error}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_time_is_a_time_of_day() {
        let at = |text: &str| {
            NotificationsConfig {
                digest_time: text.into(),
                ..NotificationsConfig::default()
            }
            .digest_minutes()
        };
        assert_eq!(at("07:00"), Ok(420));
        assert_eq!(at("0:05"), Ok(5));
        assert_eq!(at("23:59"), Ok(1_439));
        for bad in ["24:00", "7", "07:60", "-1:00", "07:00:00", "", "семь"] {
            assert!(at(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_failure_is_tried_again_until_the_last_attempt() {
        let config = NotificationsConfig::default();
        let failed = || Tried::may_pass("500".into());
        let retry_at = |outcome: DeliveryOutcome| match outcome {
            DeliveryOutcome::Failed { error, retry_at } => {
                assert_eq!(error, "500");
                retry_at
            }
            DeliveryOutcome::Sent => panic!("not sent"),
        };
        assert_eq!(
            retry_at(with_retry(failed(), 1, 8, &config, 1_000)),
            Some(1_060)
        );
        assert_eq!(
            retry_at(with_retry(failed(), 3, 8, &config, 1_000)),
            Some(1_240)
        );
        assert_eq!(retry_at(with_retry(failed(), 8, 8, &config, 1_000)), None);
        assert_eq!(
            with_retry(Tried::hopeless("500"), 1, 8, &config, 1_000),
            DeliveryOutcome::Failed {
                error: "500".into(),
                retry_at: None
            }
        );
        assert_eq!(
            with_retry(Tried::Sent, 8, 8, &config, 1_000),
            DeliveryOutcome::Sent
        );
    }
}
