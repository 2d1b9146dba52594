//! The weekly report by e-mail: who receives an organization's report, and each
//! week's mail claimed before sending, then recorded as sent or failed.

use super::{SqlStore, on_backend};
use crate::store::{DeliveryOutcome, StoreResult, Timestamp, WeeklyMail};

pub(super) async fn claim_weekly_mail(
    store: &SqlStore,
    organization_id: i64,
    week: &str,
    recipients: &str,
    now: Timestamp,
) -> StoreResult<Option<i64>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_scalar(
            "INSERT INTO weekly_mail (organization_id, week, state, recipients, attempts,
                 claimed_at)
             VALUES ($1, $2, 'sending', $3, 1, $4)
             ON CONFLICT (organization_id, week) DO UPDATE SET
                 state = 'sending', recipients = excluded.recipients,
                 attempts = weekly_mail.attempts + 1, claimed_at = excluded.claimed_at
             WHERE weekly_mail.state = 'failed'
               AND weekly_mail.next_attempt_at IS NOT NULL
               AND weekly_mail.next_attempt_at <= excluded.claimed_at
             RETURNING attempts",
        )
        .bind(organization_id)
        .bind(week)
        .bind(recipients)
        .bind(now)
        .fetch_optional(pool)
        .await?
    }))
}

pub(super) async fn finish_weekly_mail(
    store: &SqlStore,
    organization_id: i64,
    week: &str,
    recipients: &str,
    outcome: &DeliveryOutcome,
    sent_by: Option<&str>,
    now: Timestamp,
) -> StoreResult<()> {
    let (state, error, retry_at, sent_at) = match outcome {
        DeliveryOutcome::Sent => ("sent", None, None, Some(now)),
        DeliveryOutcome::Failed { error, retry_at } => {
            ("failed", Some(error.as_str()), *retry_at, None)
        }
    };
    // A "send now" has no claim: it writes the row whatever was there.
    on_backend!(store, |pool| {
        sqlx::query(
            "INSERT INTO weekly_mail (organization_id, week, state, recipients, attempts,
                 last_error, claimed_at, sent_at, next_attempt_at, sent_by)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9)
             ON CONFLICT (organization_id, week) DO UPDATE SET
                 state = excluded.state, recipients = excluded.recipients,
                 attempts = CASE WHEN excluded.sent_by IS NULL THEN weekly_mail.attempts
                            ELSE weekly_mail.attempts + 1 END,
                 last_error = excluded.last_error,
                 sent_at = COALESCE(excluded.sent_at, weekly_mail.sent_at),
                 next_attempt_at = excluded.next_attempt_at,
                 sent_by = COALESCE(excluded.sent_by, weekly_mail.sent_by)",
        )
        .bind(organization_id)
        .bind(week)
        .bind(state)
        .bind(recipients)
        .bind(error)
        .bind(now)
        .bind(sent_at)
        .bind(retry_at)
        .bind(sent_by)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub(super) async fn weekly_mail(
    store: &SqlStore,
    organization_id: i64,
    week: &str,
) -> StoreResult<Option<WeeklyMail>> {
    Ok(on_backend!(store, |pool| {
        sqlx::query_as(
            "SELECT organization_id, week, state, recipients, attempts, last_error,
                 claimed_at, sent_at, next_attempt_at, sent_by
             FROM weekly_mail WHERE organization_id = $1 AND week = $2",
        )
        .bind(organization_id)
        .bind(week)
        .fetch_optional(pool)
        .await?
    }))
}
