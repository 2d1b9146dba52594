//! Notifications of what is new: the changes of a window in an organization's subtree
//! (from the finding events and the hosts' last reports), and the outbox of digests
//! and webhook calls, each captured once, claimed before it is sent, then recorded as
//! sent or failed.

use std::collections::BTreeMap;

use super::queries::{SUBTREE, users_of};
use super::{SqlStore, on_backend};
use crate::store::{
    Changes, Channel, DeliveryOutcome, FindingChange, NewNotification, Notification,
    NotificationState, SilentChange, StoreResult, Timestamp, ViolationChange,
};

const NOTIFICATION_COLUMNS: &str = "id, organization_id, channel, day, covered_from,
    covered_until, destination, payload, state, attempts, last_error, next_attempt_at,
    claimed_at, created_at, sent_at";

#[derive(sqlx::FromRow)]
struct EventRow {
    host_id: i64,
    hostname: String,
    organization_id: i64,
    organization: String,
    app_id: String,
    app_name: String,
    users: String,
    #[sqlx(try_from = "String")]
    event: FindingChange,
    at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct SilentRow {
    host_id: i64,
    hostname: String,
    organization_id: i64,
    organization: String,
    last_seen_at: Timestamp,
}

pub(super) async fn changes(
    store: &SqlStore,
    organization_id: i64,
    from: Timestamp,
    until: Timestamp,
    silent_after_seconds: i64,
) -> StoreResult<Changes> {
    if until <= from {
        return Ok(Changes::default());
    }
    // Banned messengers only (what the catalog says of them now); a retired PC has
    // left every count, and its changes are not news either.
    let (events, silent): (Vec<EventRow>, Vec<SilentRow>) = on_backend!(store, |pool| {
        let events = format!(
            "{SUBTREE}
             SELECT e.host_id, h.hostname, h.organization_id, o.name AS organization,
                    e.app_id, a.app_name, a.users, e.event, e.at
             FROM finding_events e
             JOIN hosts h ON h.id = e.host_id
             JOIN organizations o ON o.id = h.organization_id
             JOIN host_apps a ON a.host_id = e.host_id AND a.app_id = e.app_id
             WHERE e.at >= $2 AND e.at < $3 AND h.organization_id {}
               AND a.status = 'banned' AND h.retired_at IS NULL
             ORDER BY e.at, e.id",
            D::IN_SUBTREE
        );
        let silent = format!(
            "{SUBTREE}
             SELECT h.id AS host_id, h.hostname, h.organization_id, o.name AS organization,
                    h.last_seen_at
             FROM hosts h JOIN organizations o ON o.id = h.organization_id
             WHERE h.organization_id {}
               AND h.last_seen_at >= $2 AND h.last_seen_at < $3 AND h.retired_at IS NULL
             ORDER BY o.name, h.hostname, h.id",
            D::IN_SUBTREE
        );
        (
            sqlx::query_as(sqlx::AssertSqlSafe(events))
                .bind(organization_id)
                .bind(from)
                .bind(until)
                .fetch_all(pool)
                .await?,
            sqlx::query_as(sqlx::AssertSqlSafe(silent))
                .bind(organization_id)
                .bind(from.saturating_sub(silent_after_seconds))
                .bind(until.saturating_sub(silent_after_seconds))
                .fetch_all(pool)
                .await?,
        )
    });
    // The last change of each (PC, application) in the window is what it left.
    let mut last: BTreeMap<(i64, String), EventRow> = BTreeMap::new();
    for event in events {
        last.insert((event.host_id, event.app_id.clone()), event);
    }
    let mut changes = Changes::default();
    for event in last.into_values() {
        let change = ViolationChange {
            host_id: event.host_id,
            pc: event.hostname,
            organization_id: event.organization_id,
            organization: event.organization,
            app_id: event.app_id,
            application: event.app_name,
            users: users_of(&event.users),
            at: event.at,
        };
        match event.event {
            FindingChange::Appeared => changes.new_violations.push(change),
            FindingChange::Resolved => changes.resolved_violations.push(change),
        }
    }
    let by_place = |change: &ViolationChange| {
        (
            change.organization.clone(),
            change.pc.clone(),
            change.application.clone(),
        )
    };
    changes.new_violations.sort_by_key(by_place);
    changes.resolved_violations.sort_by_key(by_place);
    changes.silent_pcs = silent
        .into_iter()
        .map(|row| SilentChange {
            host_id: row.host_id,
            pc: row.hostname,
            organization_id: row.organization_id,
            organization: row.organization,
            last_report_at: row.last_seen_at,
        })
        .collect();
    Ok(changes)
}

pub(super) async fn notification_cursor(
    store: &SqlStore,
    organization_id: i64,
    channel: Channel,
) -> StoreResult<Option<Timestamp>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar(
            "SELECT MAX(covered_until) FROM notifications
             WHERE organization_id = $1 AND channel = $2",
        )
        .bind(organization_id)
        .bind(channel.as_str())
        .fetch_one(pool)
        .await?
    }))
}

pub(super) async fn record_notification(
    store: &SqlStore,
    new: &NewNotification,
    now: Timestamp,
) -> StoreResult<Option<i64>> {
    let state = match new.payload {
        Some(_) => NotificationState::Pending,
        None => NotificationState::NothingNew,
    };
    // A window (or a digest day) captured by another collector first is not captured
    // again.
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO notifications (organization_id, channel, day, covered_from,
                 covered_until, destination, payload, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .bind(new.organization_id)
        .bind(new.channel.as_str())
        .bind(&new.day)
        .bind(new.covered_from)
        .bind(new.covered_until)
        .bind(&new.destination)
        .bind(&new.payload)
        .bind(state.as_str())
        .bind(now)
        .fetch_optional(pool)
        .await?
    }))
}

pub(super) async fn due_notifications(
    store: &SqlStore,
    channel: Channel,
    now: Timestamp,
    stale_before: Option<Timestamp>,
) -> StoreResult<Vec<Notification>> {
    let query = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications
         WHERE channel = $1
           AND (state = 'pending'
                OR (state = 'failed' AND next_attempt_at IS NOT NULL AND next_attempt_at <= $2)
                OR (state = 'sending' AND $3 IS NOT NULL AND claimed_at < $3))
         ORDER BY id"
    );
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(channel.as_str())
            .bind(now)
            .bind(stale_before)
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn claim_notification(
    store: &SqlStore,
    id: i64,
    now: Timestamp,
    stale_before: Option<Timestamp>,
) -> StoreResult<Option<i64>> {
    // The same conditions as `due_notifications`, checked again in the one statement
    // that claims: two collectors claiming at once, one gets it.
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar(
            "UPDATE notifications SET state = 'sending', attempts = attempts + 1,
                 claimed_at = $2
             WHERE id = $1
               AND (state = 'pending'
                    OR (state = 'failed' AND next_attempt_at IS NOT NULL
                        AND next_attempt_at <= $2)
                    OR (state = 'sending' AND $3 IS NOT NULL AND claimed_at < $3))
             RETURNING attempts",
        )
        .bind(id)
        .bind(now)
        .bind(stale_before)
        .fetch_optional(pool)
        .await?
    }))
}

pub(super) async fn finish_notification(
    store: &SqlStore,
    id: i64,
    outcome: &DeliveryOutcome,
    now: Timestamp,
) -> StoreResult<()> {
    let (state, error, retry_at, sent_at) = match outcome {
        DeliveryOutcome::Sent => (NotificationState::Sent, None, None, Some(now)),
        DeliveryOutcome::Failed { error, retry_at } => (
            NotificationState::Failed,
            Some(error.as_str()),
            *retry_at,
            None,
        ),
    };
    on_backend!(store, |pool| {
        sqlx::query(
            "UPDATE notifications SET state = $2, last_error = $3, next_attempt_at = $4,
                 sent_at = $5
             WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(error)
        .bind(retry_at)
        .bind(sent_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub(super) async fn notifications(
    store: &SqlStore,
    organization_id: i64,
    limit: i64,
) -> StoreResult<Vec<Notification>> {
    let query = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE organization_id = $1
         ORDER BY id DESC LIMIT $2"
    );
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(organization_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

pub(super) async fn prune_notifications(store: &SqlStore, before: Timestamp) -> StoreResult<u64> {
    // Each organization's newest notification of a channel is where the next one
    // starts: it stays, whatever its age. So do those still on their way.
    Ok(on_backend!(store, |pool| {
        sqlx::query(
            "DELETE FROM notifications
             WHERE created_at < $1
               AND (state IN ('sent', 'nothing_new')
                    OR (state = 'failed' AND next_attempt_at IS NULL))
               AND EXISTS (SELECT 1 FROM notifications newer
                           WHERE newer.organization_id = notifications.organization_id
                             AND newer.channel = notifications.channel
                             AND newer.covered_until > notifications.covered_until)",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()
    }))
}
