//! Reports and findings: a report stored once, findings that open, resolve and come
//! back, shared inventories, catalog revisions and re-evaluation, and two mended drifts
//! between the backends.

use super::{DAY, T0, finding, host, organization, report};
use sverka_collector::store::{Store, StoreError};

pub async fn a_report_is_stored_exactly_once(store: &dyn Store) {
    let school = organization(store, "S", None, 1).await;
    let host_id = host(store, school, "m").await;
    let record = report(
        "0190a0b0-0000-7000-8000-000000000001",
        host_id,
        T0,
        Some(vec![]),
    );
    let first = store.record_report(record.clone()).await.expect("first");
    assert!(!first.duplicate);
    let second = store.record_report(record).await.expect("second");
    assert!(second.duplicate);
    assert_eq!(store.report_count(host_id).await.expect("count"), 1);
    let later = report(
        "0190a0b0-0000-7000-8000-000000000003",
        host_id,
        T0 + 100 * DAY,
        Some(vec![]),
    );
    store.record_report(later).await.expect("later");
    assert_eq!(store.prune_reports(T0 + DAY).await.expect("prune"), 1);
    assert_eq!(store.report_count(host_id).await.expect("count"), 1);
    let unknown_host = report("0190a0b0-0000-7000-8000-000000000002", 9_999, T0, None);
    assert!(matches!(
        store.record_report(unknown_host).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A report id is unique per host: another host's report with the same id is its
/// own report, and a duplicate only of itself.
pub async fn report_ids_are_unique_per_host(store: &dyn Store) {
    let school = organization(store, "S", None, 2).await;
    let first = host(store, school, "m1").await;
    let second = host(store, school, "m2").await;
    let id = "0190a0b0-0000-7000-8000-0000000000aa";
    let outcome = store
        .record_report(report(id, first, T0, Some(vec![])))
        .await
        .expect("first host");
    assert!(!outcome.duplicate);
    let outcome = store
        .record_report(report(
            id,
            second,
            T0,
            Some(vec![finding("telegram", "banned")]),
        ))
        .await
        .expect("second host");
    assert!(!outcome.duplicate, "another host's id is not a duplicate");
    assert_eq!(store.report_count(first).await.expect("count"), 1);
    assert_eq!(store.report_count(second).await.expect("count"), 1);
    assert_eq!(store.violations(school, false).await.expect("v").len(), 1);
    let again = store
        .record_report(report(id, second, T0, Some(vec![])))
        .await
        .expect("again");
    assert!(again.duplicate);
    // Both hosts in one batch with the same id: each stored once.
    let batch_id = "0190a0b0-0000-7000-8000-0000000000bb";
    let outcomes = futures_util::future::join_all([
        store.record_report(report(batch_id, first, T0 + 10, Some(vec![]))),
        store.record_report(report(batch_id, second, T0 + 10, Some(vec![]))),
    ])
    .await;
    for outcome in outcomes {
        assert!(!outcome.expect("batch").duplicate);
    }
    assert_eq!(store.report_count(first).await.expect("count"), 2);
    assert_eq!(store.report_count(second).await.expect("count"), 2);
}

pub async fn findings_open_resolve_and_come_back(store: &dyn Store) {
    let school = organization(store, "S", None, 1).await;
    let host_id = host(store, school, "m").await;
    let with_telegram = || {
        Some(vec![
            finding("telegram", "banned"),
            finding("max", "approved"),
        ])
    };
    store
        .record_report(report("r1", host_id, T0, with_telegram()))
        .await
        .expect("r1");
    let open = store.violations(school, false).await.expect("violations");
    assert_eq!(open.len(), 1, "approved apps are not violations");
    assert_eq!(open[0].app_id, "telegram");
    assert_eq!(open[0].first_seen, T0);
    assert_eq!(open[0].users, vec!["teacher".to_string()]);

    // A check-in without findings to evaluate keeps them and moves last_seen.
    store
        .record_report(report("r2", host_id, T0 + DAY, None))
        .await
        .expect("r2");
    let open = store.violations(school, false).await.expect("violations");
    assert_eq!((open[0].first_seen, open[0].last_seen), (T0, T0 + DAY));

    // Removed: resolved at the next report.
    store
        .record_report(report(
            "r3",
            host_id,
            T0 + 2 * DAY,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("r3");
    assert!(
        store
            .violations(school, false)
            .await
            .expect("open")
            .is_empty()
    );
    let all = store.violations(school, true).await.expect("all");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].resolved_at, Some(T0 + 2 * DAY));

    // A late report from before the removal changes nothing.
    let stale = store
        .record_report(report("r-old", host_id, T0 + DAY + 5, with_telegram()))
        .await
        .expect("stale");
    assert!(stale.stale);
    assert!(
        store
            .violations(school, false)
            .await
            .expect("open")
            .is_empty()
    );

    // It comes back.
    store
        .record_report(report("r4", host_id, T0 + 3 * DAY, with_telegram()))
        .await
        .expect("r4");
    let open = store.violations(school, false).await.expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].first_seen, T0 + 3 * DAY);
    assert_eq!(open[0].resolved_at, None);
    let events: Vec<(String, String, i64)> = store
        .finding_events(host_id)
        .await
        .expect("events")
        .into_iter()
        .filter(|event| event.app_id == "telegram")
        .map(|event| {
            (
                event.event.as_str().to_string(),
                event.cause.as_str().to_string(),
                event.at,
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("appeared".into(), "report".into(), T0),
            ("resolved".into(), "report".into(), T0 + 2 * DAY),
            ("appeared".into(), "report".into(), T0 + 3 * DAY),
        ]
    );
}

pub async fn identical_inventories_are_stored_once(store: &dyn Store) {
    let school = organization(store, "Lab", None, 2).await;
    let first = host(store, school, "pc-1").await;
    let second = host(store, school, "pc-2").await;
    let mut one = report("i1", first, T0, Some(vec![]));
    one.inventory = Some((r#"[{"x":1}]"#.into(), 1));
    let mut two = report("i2", second, T0, Some(vec![]));
    two.inventory = Some((r#"[{"x":1}]"#.into(), 1));
    store.record_report(one).await.expect("one");
    store.record_report(two).await.expect("two");
    assert_eq!(store.inventory_count().await.expect("count"), 1);
    assert_eq!(
        store
            .inventory(&"a".repeat(64))
            .await
            .expect("body")
            .as_deref(),
        Some(r#"[{"x":1}]"#)
    );
    assert_eq!(store.inventory(&"b".repeat(64)).await.expect("body"), None);
    let state = store
        .host_state(second)
        .await
        .expect("state")
        .expect("host");
    assert_eq!(
        state.inventory_digest.as_deref(),
        Some("a".repeat(64).as_str())
    );
    assert_eq!(state.last_scan_at, Some(T0));
}

pub async fn catalog_revisions_and_reevaluation(store: &dyn Store) {
    assert_eq!(store.current_catalog().await.expect("none"), None);
    assert_eq!(
        store.save_catalog("version = \"1\"", T0).await.expect("r1"),
        1
    );
    assert_eq!(
        store.save_catalog("version = \"2\"", T0).await.expect("r2"),
        2
    );
    let current = store
        .current_catalog()
        .await
        .expect("current")
        .expect("some");
    assert_eq!(
        (current.revision, current.overrides.as_str()),
        (2, "version = \"2\"")
    );

    let school = organization(store, "S", None, 1).await;
    let host_id = host(store, school, "m").await;
    store
        .record_report(report("e1", host_id, T0, Some(vec![])))
        .await
        .expect("clean report");
    let hosts = store.hosts_for_evaluation(0, 10).await.expect("hosts");
    assert!(hosts.iter().any(|host| host.host_id == host_id));
    store
        .apply_evaluation(host_id, vec![finding("wechat", "banned")], 2, T0 + 5)
        .await
        .expect("apply");
    let open = store.violations(school, false).await.expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].app_id, "wechat");
    let events = store.finding_events(host_id).await.expect("events");
    assert_eq!(
        events.last().map(|event| event.cause.as_str()),
        Some("catalog")
    );
    assert_eq!(
        store
            .host_state(host_id)
            .await
            .expect("state")
            .expect("host")
            .catalog_revision,
        2
    );
    // Hosts evaluated with an older revision than the current one are the ones a
    // collector catching up with a change evaluates again.
    assert!(
        store
            .hosts_behind_catalog(2, 0, 10)
            .await
            .expect("behind")
            .is_empty()
    );
    let behind = store.hosts_behind_catalog(3, 0, 10).await.expect("behind");
    assert_eq!(
        behind.iter().map(|host| host.host_id).collect::<Vec<_>>(),
        vec![host_id]
    );
}

/// Mended drift: SQLite used to apply a re-evaluation to a host that is gone (an
/// error from a foreign key, or nothing at all with no findings); PostgreSQL said
/// `NotFound`. Both say `NotFound` now and store nothing.
pub async fn evaluating_a_missing_host_is_not_found(store: &dyn Store) {
    for findings in [vec![], vec![finding("telegram", "banned")]] {
        let outcome = store.apply_evaluation(4_242, findings, 1, T0).await;
        assert!(
            matches!(outcome, Err(StoreError::NotFound(ref what)) if what == "host 4242"),
            "{outcome:?}"
        );
    }
    assert!(store.host_apps(4_242).await.expect("apps").is_empty());
    assert!(
        store
            .finding_events(4_242)
            .await
            .expect("events")
            .is_empty()
    );
}

/// Mended drift: an open finding's last sighting only moves forward, whichever path
/// applies the check-in (PostgreSQL skipped updates that changed nothing, SQLite's
/// batch wrote every open row). A finding opened by a catalog change at a later time
/// than the next check-in's scan keeps that later time.
pub async fn a_finding_is_never_seen_earlier_than_it_was(store: &dyn Store) {
    let school = organization(store, "Школа", None, 1).await;
    let host_id = host(store, school, "m-1").await;
    let telegram = || vec![finding("telegram", "banned")];
    store
        .record_report(report("r-1", host_id, T0, Some(telegram())))
        .await
        .expect("first");
    let with_wechat = vec![finding("telegram", "banned"), finding("wechat", "banned")];
    store
        .apply_evaluation(host_id, with_wechat.clone(), 1, T0 + 100)
        .await
        .expect("catalog");
    let last_seen = |apps: Vec<sverka_collector::store::HostApp>, app: &str| {
        apps.into_iter()
            .find(|found| found.app_id == app)
            .map(|found| found.last_seen)
    };
    // A check-in scanned between the two: not stale (the host's last scan is T0), and
    // it sees what is stored, so it only says "seen again".
    let mut check_in = report("r-2", host_id, T0 + 50, Some(with_wechat.clone()));
    check_in.inventory = None;
    check_in.catalog_revision = 1;
    let outcome = store.record_report(check_in).await.expect("check-in");
    assert!(!outcome.duplicate && !outcome.stale, "{outcome:?}");
    let apps = store.host_apps(host_id).await.expect("apps");
    assert_eq!(last_seen(apps.clone(), "wechat"), Some(T0 + 100));
    assert_eq!(last_seen(apps, "telegram"), Some(T0 + 100));
    let mut later = report("r-3", host_id, T0 + 200, Some(with_wechat));
    later.inventory = None;
    later.catalog_revision = 1;
    store.record_report(later).await.expect("later");
    let apps = store.host_apps(host_id).await.expect("apps");
    assert_eq!(last_seen(apps.clone(), "wechat"), Some(T0 + 200));
    assert_eq!(last_seen(apps, "telegram"), Some(T0 + 200));
}
