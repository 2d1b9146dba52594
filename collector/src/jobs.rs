//! The background jobs of a running `serve`, each a loop started by
//! [`crate::server::serve`]: [`poll_catalog`], [`catch_up_reevaluation`],
//! [`prune_reports`], [`freeze_weeks`], [`send_weekly_reports`], [`send_daily_digests`]
//! and [`call_webhooks`]. With several collectors on one database,
//! the work of each is done by one process at a time (`Store::try_lock_job`).

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::catalog::{REEVALUATION_JOB, reevaluate_behind, wait_for_job};
use crate::now;
use crate::store::Store;
use crate::web::clock::Clock;
use crate::web::figures::freeze_ended_weeks;

/// The job name of pruning old report ids (see `Store::try_lock_job`).
pub const PRUNE_JOB: &str = "prune-reports";
/// The job name of freezing weekly figures (see `Store::try_lock_job`).
pub const FREEZE_JOB: &str = "freeze-weekly-figures";

/// Every `every`, looks for a catalog revision stored by another process (or the
/// CLI), switches to it, and starts [`catch_up_reevaluation`].
pub async fn poll_catalog(state: Arc<AppState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match state.refresh_catalog().await {
            Ok(true) => {
                tracing::info!(
                    revision = state.catalog().revision,
                    "catalog changed; now using the new revision"
                );
                tokio::spawn(catch_up_reevaluation(state.clone()));
            }
            Ok(false) => {}
            Err(error) => tracing::warn!("cannot reload the catalog: {error}"),
        }
    }
}

/// After a catalog change (and at start, in case a collector died while catching up):
/// hosts whose last report was evaluated with an older revision, by a collector that
/// had not noticed the change yet, are evaluated again, by one collector at a time.
pub async fn catch_up_reevaluation(state: Arc<AppState>) {
    let lease = match wait_for_job(state.store.as_ref(), REEVALUATION_JOB).await {
        Ok(lease) => lease,
        Err(error) => {
            tracing::warn!("cannot catch up with the catalog: {error}");
            return;
        }
    };
    let catalog = state.catalog();
    match reevaluate_behind(state.store.as_ref(), &catalog, now()).await {
        Ok(0) => {}
        Ok(evaluated) => tracing::info!(
            evaluated,
            revision = catalog.revision,
            "hosts evaluated with an older catalog were evaluated again"
        ),
        Err(error) => tracing::warn!("cannot catch up with the catalog: {error}"),
    }
    drop(lease);
}

/// Every hour, forgets report ids older than `retention_seconds` (the window in
/// which a resent report is known as a duplicate), and the days of application use
/// as old (the weekly figures keep what was counted).
pub async fn prune_reports(store: Arc<dyn Store>, retention_seconds: i64) {
    loop {
        // With several collectors on one database, one of them prunes.
        match store.try_lock_job(PRUNE_JOB).await {
            Ok(Some(_lease)) => {
                let before = now() - retention_seconds;
                match store.prune_reports(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old report ids pruned"),
                    Err(error) => tracing::warn!("cannot prune old reports: {error}"),
                }
                match store.prune_use_days(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old days of application use pruned"),
                    Err(error) => tracing::warn!("cannot prune old days of use: {error}"),
                }
                match store.prune_notifications(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old notifications pruned"),
                    Err(error) => tracing::warn!("cannot prune old notifications: {error}"),
                }
            }
            Ok(None) => tracing::debug!("another collector is pruning old reports"),
            Err(error) => tracing::warn!("cannot prune old reports: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Once a week has ended (in each organization's time zone), freezes its figures
/// ([`freeze_ended_weeks`]; checked every ten minutes, so a collector that was down
/// freezes the week when it comes back). With several collectors on one database,
/// one of them does it (a job lease); freezing twice would change nothing anyway,
/// frozen rows are never overwritten.
pub async fn freeze_weeks(store: Arc<dyn Store>, clock: Clock, silent_after_days: u32) {
    let mut first = true;
    loop {
        match store.try_lock_job(FREEZE_JOB).await {
            Ok(Some(lease)) => {
                let now = crate::now();
                match freeze_ended_weeks(store.as_ref(), &clock, silent_after_days, now).await {
                    // Said once, at start: the operator (and a test) knows the check ran.
                    Ok(0) if first => tracing::info!("weekly figures: every ended week is frozen"),
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "weekly figures frozen"),
                    Err(error) => tracing::warn!("cannot freeze the weekly figures: {error}"),
                }
                drop(lease);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot take the weekly-figures job: {error}"),
        }
        first = false;
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
}

/// Every `[notifications] check_seconds` (a minute), captures and sends the daily
/// digests that are due ([`crate::notify::digest_round`]), one process at a time.
pub async fn send_daily_digests(
    state: Arc<crate::web::WebState>,
    mailer: crate::mail::Mailer,
    config: crate::notify::NotificationsConfig,
) {
    let mut done = std::collections::HashSet::new();
    loop {
        match state
            .app
            .store
            .try_lock_job(crate::notify::DIGEST_JOB)
            .await
        {
            Ok(Some(lease)) => {
                let round = crate::notify::digest_round(&state, &mailer, &config, &mut done, now());
                if let Err(error) = round.await {
                    tracing::warn!("cannot send the daily digests: {error}");
                }
                drop(lease);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot take the daily-digest job: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(config.check_seconds.max(1))).await;
    }
}

/// Every `[notifications] check_seconds`, captures what is new for each organization
/// with a webhook and makes the calls due ([`crate::notify::webhook_round`]), one
/// process at a time. A hanging receiver holds one call for at most its timeout.
pub async fn call_webhooks(
    state: Arc<crate::web::WebState>,
    client: crate::notify::webhook::WebhookClient,
    config: crate::notify::NotificationsConfig,
) {
    loop {
        match state
            .app
            .store
            .try_lock_job(crate::notify::WEBHOOK_JOB)
            .await
        {
            Ok(Some(lease)) => {
                if let Err(error) =
                    crate::notify::webhook_round(&state, &client, &config, now()).await
                {
                    tracing::warn!("cannot call the webhooks: {error}");
                }
                drop(lease);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot take the webhooks job: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(config.check_seconds.max(1))).await;
    }
}

/// Every `[mail] check_seconds` (a minute), sends the weekly reports that are due by mail
/// ([`crate::web::weekly_mail::send_due_reports`]): one process at a time (a job
/// lease), each week claimed in the database before it is sent.
pub async fn send_weekly_reports(state: Arc<crate::web::WebState>, mailer: crate::mail::Mailer) {
    use crate::web::weekly_mail::{WEEKLY_MAIL_JOB, send_due_reports};
    loop {
        match state.app.store.try_lock_job(WEEKLY_MAIL_JOB).await {
            Ok(Some(lease)) => {
                if let Err(error) = send_due_reports(&state, &mailer, now()).await {
                    tracing::warn!("cannot send the weekly reports: {error}");
                }
                drop(lease);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot take the weekly-mail job: {error}"),
        }
        tokio::time::sleep(mailer.check_every).await;
    }
}
