//! What the dashboard reads: the per-host counters, coverage of a subtree, the
//! per-organization counts and host pages, the audit log, handled marks and the weekly
//! figures.

use super::{DAY, T0, counters_match_findings, finding, host, organization, report};
use sverka_collector::store::{HandledMark, NewAuditEntry, Store, StoreError, WeeklyFigures};

/// The per-host counters follow each finding through appear → resolve → reappear, a
/// finding that is only a trace, two banned apps on one host, a stale report, a check-in
/// without findings, and a catalog change of an app's status.
pub async fn counters_follow_the_findings(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let school = organization(store, "School", Some(region), 3).await;
    let a = host(store, school, "a").await;
    let b = host(store, school, "b").await;
    let _never = host(store, school, "c").await;
    let since = T0 - DAY;
    let check = |expected: (i64, i64)| async move {
        assert_eq!(
            counters_match_findings(store, region, school, since).await,
            expected
        );
    };
    check((0, 0)).await;

    let telegram_and_max = || {
        Some(vec![
            finding("telegram", "banned"),
            finding("max", "approved"),
        ])
    };
    store
        .record_report(report("c1", a, T0, telegram_and_max()))
        .await
        .expect("appears");
    check((1, 1)).await;
    let mut trace = finding("viber", "banned");
    trace.strength = sverka_shared::Strength::Trace;
    let mut running = finding("whatsapp", "banned");
    running.strength = sverka_shared::Strength::Running;
    store
        .record_report(report("c2", b, T0, Some(vec![trace.clone()])))
        .await
        .expect("a trace");
    check((1, 1)).await;
    store
        .record_report(report("c3", b, T0 + 1, Some(vec![trace, running])))
        .await
        .expect("running");
    check((2, 1)).await;

    // Resolved, then a late report from before that changes nothing, then back.
    store
        .record_report(report(
            "c4",
            a,
            T0 + DAY,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("resolves");
    check((1, 1)).await;
    let stale = store
        .record_report(report("c5", a, T0 + 5, telegram_and_max()))
        .await
        .expect("stale");
    assert!(stale.stale);
    check((1, 1)).await;
    store
        .record_report(report("c6", a, T0 + 2 * DAY, None))
        .await
        .expect("check-in");
    check((1, 1)).await;
    store
        .record_report(report(
            "c7",
            a,
            T0 + 3 * DAY,
            Some(vec![
                finding("telegram", "banned"),
                finding("wechat", "banned"),
                finding("max", "approved"),
            ]),
        ))
        .await
        .expect("reappears with another");
    check((2, 1)).await;
    let summary = store.host_summaries(school).await.expect("summaries");
    assert_eq!(
        summary
            .iter()
            .find(|row| row.host_id == a)
            .map(|row| (row.open_banned, row.open_approved)),
        Some((2, 1))
    );

    // The catalog changes telegram to approved and wechat disappears from it.
    store
        .apply_evaluation(
            a,
            vec![finding("telegram", "approved"), finding("max", "approved")],
            1,
            T0 + 4 * DAY,
        )
        .await
        .expect("re-evaluated");
    check((1, 1)).await;
    store
        .apply_evaluation(b, vec![], 1, T0 + 4 * DAY)
        .await
        .expect("re-evaluated");
    check((0, 1)).await;
    // Silent hosts keep their last known state (and their counters stay right).
    assert_eq!(
        counters_match_findings(store, region, school, T0 + 10 * DAY).await,
        (0, 1)
    );
}

pub async fn coverage_counts_the_subtree(store: &dyn Store) {
    let town = organization(store, "Town", None, 1).await;
    let school_a = organization(store, "A", Some(town), 3).await;
    let school_b = organization(store, "B", Some(town), 2).await;
    let a1 = host(store, school_a, "a1").await;
    let a2 = host(store, school_a, "a2").await;
    let _a3_never_reports = host(store, school_a, "a3").await;
    let b1 = host(store, school_b, "b1").await;
    let now = T0 + 10 * DAY;
    store
        .record_report(report(
            "c1",
            a1,
            now,
            Some(vec![finding("telegram", "banned")]),
        ))
        .await
        .expect("a1");
    store
        .record_report(report(
            "c2",
            a2,
            now,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("a2");
    store
        .record_report(report("c3", b1, T0, Some(vec![finding("max", "approved")])))
        .await
        .expect("b1 long ago");
    let rows = store.coverage(town, now - 7 * DAY).await.expect("coverage");
    assert_eq!(rows.len(), 3);
    let (total, a, b) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(total.organization_id, town);
    assert_eq!(
        (
            total.expected_pcs,
            total.enrolled,
            total.reporting,
            total.silent
        ),
        (6, 4, 2, 2)
    );
    // b1 went silent with MAX: its last known state still counts.
    assert_eq!(
        (total.with_banned, total.with_approved, total.known),
        (1, 2, 3)
    );
    assert_eq!(
        (a.organization_id, a.enrolled, a.reporting, a.silent),
        (school_a, 3, 2, 1)
    );
    assert!((a.approved_share() - 0.5).abs() < 1e-9);
    assert_eq!(
        (b.organization_id, b.reporting, b.silent, b.with_approved),
        (school_b, 0, 1, 1)
    );
    assert!((b.approved_share() - 1.0).abs() < 1e-9);
    let silent = store
        .silent_hosts(town, now - 7 * DAY)
        .await
        .expect("silent");
    let names: Vec<&str> = silent.iter().map(|host| host.hostname.as_str()).collect();
    assert_eq!(names, vec!["pc-a3", "pc"]);
    assert_eq!(silent[0].last_seen_at, None);
    // A school's list never shows another school's PCs.
    let only_b = store.violations(school_b, true).await.expect("b");
    assert!(only_b.is_empty());
    assert!(matches!(
        store.coverage(9_999, now).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn audit_notes_and_weekly_figures(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let school_a = organization(store, "A", Some(region), 2).await;
    let school_b = organization(store, "B", Some(region), 2).await;
    for (index, action) in ["login", "create_secret", "logout"].iter().enumerate() {
        store
            .record_audit(NewAuditEntry {
                at: T0 + index as i64,
                actor: "officer".into(),
                action: action.to_string(),
                organization_id: Some(school_a),
                detail: "detail".into(),
            })
            .await
            .expect("audit");
    }
    let log = store.audit_log(2).await.expect("log");
    assert_eq!(
        log.iter()
            .map(|entry| entry.action.as_str())
            .collect::<Vec<_>>(),
        vec!["logout", "create_secret"],
        "newest first, limited"
    );

    let a1 = host(store, school_a, "a1").await;
    let b1 = host(store, school_b, "b1").await;
    store
        .record_report(report(
            "n1",
            a1,
            T0,
            Some(vec![finding("telegram", "banned")]),
        ))
        .await
        .expect("a1");
    let mark = |host_id, app: &str, note: &str| HandledMark {
        host_id,
        app_id: app.into(),
        note: note.into(),
        by_login: "school".into(),
        at: T0,
    };
    store
        .mark_handled(mark(a1, "telegram", "first"))
        .await
        .expect("mark");
    store
        .mark_handled(mark(a1, "telegram", "removing on Monday"))
        .await
        .expect("again");
    assert!(
        matches!(
            store.mark_handled(mark(b1, "telegram", "x")).await,
            Err(StoreError::NotFound(_))
        ),
        "no such finding on that host"
    );
    let marks = store.handled_marks(region).await.expect("marks");
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].note, "removing on Monday");
    assert!(store.handled_marks(school_b).await.expect("b").is_empty());

    let figures = |organization_id, week: &str, banned| WeeklyFigures {
        organization_id,
        week: week.into(),
        expected_pcs: 4,
        enrolled: 2,
        reporting: 2,
        silent: 0,
        with_banned: banned,
        with_approved: 1,
        known: Some(2),
        silent_with_banned: Some(0),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    let added = store
        .freeze_weekly_figures(
            &[
                figures(region, "2026-W46", 2),
                figures(school_a, "2026-W46", 1),
            ],
            &[],
            &super::officer::list("2026-W46", T0),
            T0,
        )
        .await
        .expect("freeze");
    assert_eq!(added, 2);
    // Frozen figures stay as they were.
    let again = store
        .freeze_weekly_figures(
            &[
                figures(region, "2026-W46", 9),
                figures(region, "2026-W47", 1),
            ],
            &[],
            &super::officer::list("2026-W46", T0),
            T0,
        )
        .await
        .expect("freeze again");
    assert_eq!(again, 1);
    let week = store
        .weekly_figures_of_week("2026-W46")
        .await
        .expect("week");
    assert_eq!(week.len(), 2);
    assert_eq!(week[0], figures(region, "2026-W46", 2));
    let trend = store
        .weekly_figures_of_organization(region, "2026-W40", "2026-W52")
        .await
        .expect("trend");
    assert_eq!(
        trend
            .iter()
            .map(|f| (f.week.as_str(), f.with_banned))
            .collect::<Vec<_>>(),
        vec![("2026-W46", 2), ("2026-W47", 1)]
    );
    assert!(
        store
            .weekly_figures_of_week("2026-W45")
            .await
            .expect("none")
            .is_empty()
    );
}

pub async fn per_organization_counts_and_host_pages(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let school = organization(store, "School", Some(region), 3).await;
    let empty = organization(store, "Empty", Some(region), 1).await;
    let a = host(store, school, "a").await;
    let b = host(store, school, "b").await;
    let _never = host(store, school, "c").await;
    let now = T0 + 10 * DAY;
    store
        .record_report(report(
            "p1",
            a,
            now,
            Some(vec![
                finding("telegram", "banned"),
                finding("max", "approved"),
            ]),
        ))
        .await
        .expect("a");
    store
        .record_report(report("p2", b, now, Some(vec![finding("max", "approved")])))
        .await
        .expect("b");
    let counts = store
        .organization_counts(now - 7 * DAY, now - 7 * DAY)
        .await
        .expect("counts");
    assert_eq!(counts.len(), 1, "only organizations with hosts: {counts:?}");
    let row = counts[0];
    assert_eq!(row.organization_id, school);
    assert_eq!(
        (
            row.enrolled,
            row.reporting,
            row.silent,
            row.with_banned,
            row.with_approved
        ),
        (3, 2, 1, 1, 2)
    );
    assert!(counts.iter().all(|row| row.organization_id != empty));

    let summaries = store.host_summaries(school).await.expect("summaries");
    assert_eq!(summaries.len(), 3);
    let first = &summaries[0];
    assert_eq!(
        (first.host_id, first.open_banned, first.open_approved),
        (a, 1, 1)
    );
    assert_eq!(first.last_seen_at, Some(now));
    assert!(
        store.host_summaries(region).await.expect("none").is_empty(),
        "own hosts only"
    );

    let detail = store.host_detail(a).await.expect("detail").expect("exists");
    assert_eq!(
        (detail.organization_id, detail.machine_id.as_str()),
        (school, "a")
    );
    assert_eq!(detail.last_scan_at, Some(now));
    assert!(store.host_detail(9_999).await.expect("detail").is_none());

    // The finding resolves; host_apps lists open ones first.
    store
        .record_report(report(
            "p3",
            a,
            now + DAY,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("a again");
    let apps = store.host_apps(a).await.expect("apps");
    assert_eq!(
        apps.iter()
            .map(|app| (app.app_id.as_str(), app.resolved_at))
            .collect::<Vec<_>>(),
        vec![("max", None), ("telegram", Some(now + DAY))]
    );
    assert_eq!(apps[1].users, vec!["teacher".to_string()]);
}
