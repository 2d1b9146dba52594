//! Notifications of what is new (issue 20): the changes of a window in a subtree (each
//! PC and banned messenger once, as its last change left it; PCs gone silent; nothing
//! from elsewhere, from approved applications or from retired PCs), and the outbox
//! that tells each window once: captured once, claimed by one, tried again when due,
//! given up, pruned without losing where the next one starts.

use sverka_collector::store::{
    Channel, DeliveryOutcome, NewNotification, NotificationState, Store, StoreError, Webhook,
};

use super::{T0, finding, host, organization, report};

async fn send(store: &dyn Store, id: u32, host_id: i64, at: i64, apps: &[(&str, &str)]) {
    let findings = apps
        .iter()
        .map(|(app, status)| finding(app, status))
        .collect();
    let record = report(
        &format!("0190a0b0-0000-7000-8000-0000001{id:05}"),
        host_id,
        at,
        Some(findings),
    );
    assert!(!store.record_report(record).await.expect("report").duplicate);
}

fn pcs_and_apps(changes: &[sverka_collector::store::ViolationChange]) -> Vec<(i64, &str)> {
    changes
        .iter()
        .map(|change| (change.host_id, change.app_id.as_str()))
        .collect()
}

pub async fn changes_are_told_once_per_window(store: &dyn Store) {
    let region = organization(store, "R", None, 0).await;
    let school_a = organization(store, "A", Some(region), 2).await;
    let school_b = organization(store, "B", Some(region), 2).await;
    let elsewhere = organization(store, "Elsewhere", None, 1).await;
    let a1 = host(store, school_a, "a1").await;
    let a2 = host(store, school_a, "a2").await;
    let b1 = host(store, school_b, "b1").await;
    let c1 = host(store, elsewhere, "c1").await;
    const SILENT_AFTER: i64 = 1_000;

    send(store, 1, a2, T0 + 50, &[]).await;
    send(
        store,
        2,
        a1,
        T0 + 100,
        &[("telegram", "banned"), ("max", "approved")],
    )
    .await;
    send(store, 3, b1, T0 + 200, &[("whatsapp", "banned")]).await;
    send(store, 4, c1, T0 + 300, &[("telegram", "banned")]).await;

    let changes = store
        .changes(region, T0, T0 + 1_000, SILENT_AFTER)
        .await
        .expect("changes");
    assert_eq!(
        pcs_and_apps(&changes.new_violations),
        vec![(a1, "telegram"), (b1, "whatsapp")],
        "banned messengers of the subtree only, ordered by place"
    );
    let first = &changes.new_violations[0];
    assert_eq!(
        (
            first.pc.as_str(),
            first.organization_id,
            first.organization.as_str()
        ),
        ("pc", school_a, "A")
    );
    assert_eq!(
        (first.application.as_str(), first.users.clone(), first.at),
        ("TELEGRAM", vec!["teacher".to_string()], T0 + 100)
    );
    assert!(changes.resolved_violations.is_empty() && changes.silent_pcs.is_empty());
    let school_only = store
        .changes(school_a, T0, T0 + 1_000, SILENT_AFTER)
        .await
        .expect("changes");
    assert_eq!(
        pcs_and_apps(&school_only.new_violations),
        vec![(a1, "telegram")]
    );
    // [from, until): a change at `from` is in, one at `until` is out.
    let edges = store
        .changes(region, T0 + 100, T0 + 200, SILENT_AFTER)
        .await
        .expect("changes");
    assert_eq!(pcs_and_apps(&edges.new_violations), vec![(a1, "telegram")]);
    let empty = store
        .changes(region, T0 + 200, T0 + 200, SILENT_AFTER)
        .await
        .expect("changes");
    assert!(empty.is_empty());

    // Telegram goes from a1: over the whole window its last change is that it went.
    send(store, 5, a1, T0 + 500, &[("max", "approved")]).await;
    let changes = store
        .changes(region, T0, T0 + 1_000, SILENT_AFTER)
        .await
        .expect("changes");
    assert_eq!(
        pcs_and_apps(&changes.new_violations),
        vec![(b1, "whatsapp")]
    );
    assert_eq!(
        pcs_and_apps(&changes.resolved_violations),
        vec![(a1, "telegram")]
    );
    assert_eq!(changes.resolved_violations[0].at, T0 + 500);

    // a2's last report (T0 + 50) is older than SILENT_AFTER from T0 + 1,050 on.
    let silent = store
        .changes(region, T0 + 1_000, T0 + 1_100, SILENT_AFTER)
        .await
        .expect("changes");
    assert_eq!(
        silent
            .silent_pcs
            .iter()
            .map(|pc| (pc.host_id, pc.last_report_at))
            .collect::<Vec<_>>(),
        vec![(a2, T0 + 50)]
    );
    assert!(silent.new_violations.is_empty() && silent.resolved_violations.is_empty());
    let not_yet = store
        .changes(region, T0 + 1_000, T0 + 1_050, SILENT_AFTER)
        .await
        .expect("changes");
    assert!(not_yet.is_empty(), "{not_yet:?}");

    // A retired PC's changes are not news.
    store.retire_host(b1, T0 + 600).await.expect("retire");
    let changes = store
        .changes(region, T0, T0 + 1_000, SILENT_AFTER)
        .await
        .expect("changes");
    assert!(changes.new_violations.is_empty(), "{changes:?}");
}

fn webhook_window(organization_id: i64, from: i64, until: i64) -> NewNotification {
    NewNotification {
        organization_id,
        channel: Channel::Webhook,
        day: None,
        covered_from: from,
        covered_until: until,
        destination: "https://region.example/hook".into(),
        payload: Some(r#"{"new_violations":[]}"#.into()),
    }
}

pub async fn the_outbox_sends_each_notification_once(store: &dyn Store) {
    let region = organization(store, "R", None, 0).await;
    let now = T0 + 10_000;
    assert_eq!(
        store
            .notification_cursor(region, Channel::Webhook)
            .await
            .unwrap(),
        None
    );
    let first = store
        .record_notification(&webhook_window(region, T0, T0 + 1_000), now)
        .await
        .expect("record")
        .expect("captured");
    // The same window again (another collector, another round): not captured twice.
    assert_eq!(
        store
            .record_notification(&webhook_window(region, T0, T0 + 1_000), now)
            .await
            .expect("record"),
        None
    );
    assert_eq!(
        store
            .notification_cursor(region, Channel::Webhook)
            .await
            .unwrap(),
        Some(T0 + 1_000)
    );
    assert_eq!(
        store
            .notification_cursor(region, Channel::Digest)
            .await
            .unwrap(),
        None
    );
    // A digest day is captured once, news or not; a day with none is not sent.
    let day = |from: i64| NewNotification {
        organization_id: region,
        channel: Channel::Digest,
        day: Some("2026-12-03".into()),
        covered_from: from,
        covered_until: from + 10,
        destination: "admin@school.example".into(),
        payload: None,
    };
    assert!(
        store
            .record_notification(&day(T0), now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.record_notification(&day(T0 + 10), now).await.unwrap(),
        None
    );
    assert!(
        store
            .due_notifications(Channel::Digest, now, None)
            .await
            .unwrap()
            .is_empty(),
        "a day with nothing new is not sent"
    );

    let due = store
        .due_notifications(Channel::Webhook, now, None)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id, due[0].state, due[0].attempts),
        (first, NotificationState::Pending, 0)
    );
    assert_eq!(
        store.claim_notification(first, now, None).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.claim_notification(first, now, None).await.unwrap(),
        None,
        "claimed once"
    );
    // Left `sending` by a collector that stopped: claimed again only when stale.
    assert_eq!(
        store
            .claim_notification(first, now + 5, Some(now))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_notification(first, now + 5, Some(now + 1))
            .await
            .unwrap(),
        Some(2)
    );
    let failed = DeliveryOutcome::Failed {
        error: "500 Internal Server Error".into(),
        retry_at: Some(now + 60),
    };
    store
        .finish_notification(first, &failed, now + 6)
        .await
        .unwrap();
    assert!(
        store
            .due_notifications(Channel::Webhook, now + 59, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .due_notifications(Channel::Webhook, now + 60, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_notification(first, now + 60, None)
            .await
            .unwrap(),
        Some(3)
    );
    store
        .finish_notification(first, &DeliveryOutcome::Sent, now + 61)
        .await
        .unwrap();
    let sent = store
        .notifications(region, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|notification| notification.id == first)
        .expect("listed");
    assert_eq!(
        (sent.state, sent.attempts, sent.sent_at, sent.last_error),
        (NotificationState::Sent, 3, Some(now + 61), None)
    );
    assert!(
        store
            .due_notifications(Channel::Webhook, now + 10_000, Some(now + 10_000))
            .await
            .unwrap()
            .is_empty()
    );

    // Given up: never due again.
    let second = store
        .record_notification(&webhook_window(region, T0 + 1_000, T0 + 2_000), now)
        .await
        .unwrap()
        .unwrap();
    store.claim_notification(second, now, None).await.unwrap();
    let given_up = DeliveryOutcome::Failed {
        error: "the organization's webhook was removed".into(),
        retry_at: None,
    };
    store
        .finish_notification(second, &given_up, now)
        .await
        .unwrap();
    assert!(
        store
            .due_notifications(Channel::Webhook, now + 100_000, None)
            .await
            .unwrap()
            .is_empty()
    );

    // Pruning keeps each channel's newest (where the next one starts).
    let pruned = store.prune_notifications(now + 100_000).await.unwrap();
    assert_eq!(pruned, 1, "only the first webhook call goes");
    let left: Vec<_> = store
        .notifications(region, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|notification| (notification.channel, notification.covered_until))
        .collect();
    assert_eq!(
        left,
        vec![(Channel::Webhook, T0 + 2_000), (Channel::Digest, T0 + 10)]
    );
    assert_eq!(
        store
            .notification_cursor(region, Channel::Webhook)
            .await
            .unwrap(),
        Some(T0 + 2_000)
    );
}

pub async fn notification_settings_are_checked(store: &dyn Store) {
    let school = organization(store, "School", None, 1).await;
    let hook = |url: &str, secret: &str| Webhook {
        url: url.into(),
        secret: secret.into(),
    };
    for (url, secret) in [
        ("ftp://region.example/hook", "0123456789abcdef"),
        ("not a url", "0123456789abcdef"),
        ("https://user:pw@region.example/hook", "0123456789abcdef"),
        ("https://region.example/hook", "short"),
    ] {
        let refused = store
            .set_organization_webhook(school, Some(&hook(url, secret)))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{url} {secret}: {refused:?}"
        );
    }
    let set = store
        .set_organization_webhook(
            school,
            Some(&hook(" https://region.example/hook ", "0123456789abcdef")),
        )
        .await
        .expect("a good webhook");
    assert_eq!(
        set.webhook_url.as_deref(),
        Some("https://region.example/hook")
    );
    let stored = store
        .organization_webhook(school)
        .await
        .unwrap()
        .expect("set");
    assert_eq!(stored.secret, "0123456789abcdef");
    assert!(!format!("{stored:?}").contains("0123456789abcdef"));
    store.set_organization_webhook(school, None).await.unwrap();
    assert_eq!(store.organization_webhook(school).await.unwrap(), None);
    assert_eq!(
        store
            .organization(school)
            .await
            .unwrap()
            .unwrap()
            .webhook_url,
        None
    );

    assert!(matches!(
        store
            .set_organization_digest_recipients(school, Some("not an address"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let set = store
        .set_organization_digest_recipients(school, Some("admin@school.example"))
        .await
        .unwrap();
    assert_eq!(
        set.digest_recipients.as_deref(),
        Some("admin@school.example")
    );
    assert!(matches!(
        store.set_organization_webhook(999_999, None).await,
        Err(StoreError::NotFound(_))
    ));
}
