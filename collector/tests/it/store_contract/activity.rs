//! Application use (issue 20): the uses reports carry, counted per organization and
//! week to the second at the week's boundaries, whichever way the writer applied the
//! report (a report that changes findings, a check-in that changes nothing, a stale
//! one); retired PCs out of the counts; the week's use frozen with its figures, once.

use sverka_collector::store::{AppUse, ApplicationUse, OrganizationUse, Store, WeeklyFigures};
use sverka_shared::AppStatus;

use super::officer::list;
use super::{DAY, T0, finding, host, organization, report};

fn used(app: &str, status: AppStatus, at: i64) -> AppUse {
    AppUse {
        app_id: app.into(),
        status,
        used_at: at,
    }
}

async fn send(store: &dyn Store, id: u32, host_id: i64, at: i64, uses: Vec<AppUse>) {
    let mut record = report(
        &format!("0190a0b0-0000-7000-8000-0000000{id:05}"),
        host_id,
        at,
        Some(vec![
            finding("max", "approved"),
            finding("telegram", "banned"),
        ]),
    );
    record.uses = uses;
    let outcome = store.record_report(record).await.expect("report");
    assert!(!outcome.duplicate);
}

fn by_status(rows: &[OrganizationUse], organization_id: i64, status: &str) -> i64 {
    rows.iter()
        .filter(|row| row.organization_id == organization_id && row.status == status)
        .map(|row| row.pcs)
        .sum()
}

pub async fn uses_are_counted_per_week_and_frozen_with_it(store: &dyn Store) {
    let region = organization(store, "R", None, 0).await;
    let school_a = organization(store, "A", Some(region), 2).await;
    let school_b = organization(store, "B", Some(region), 2).await;
    let first = host(store, school_a, "first").await;
    let second = host(store, school_a, "second").await;
    let third = host(store, school_b, "third").await;
    let retired = host(store, school_b, "retired").await;
    // The week [T0, T0 + 7 days): T0 is in the middle of a UTC day, so the days that
    // hold its boundaries also hold times outside it.
    let (start, end) = (T0, T0 + 7 * DAY);
    assert_ne!(start % DAY, 0);

    // The first report opens findings (applied one by one); the next ones change
    // nothing (check-ins applied together): both record their uses.
    send(
        store,
        1,
        first,
        start + DAY,
        vec![
            used("max", AppStatus::Approved, start + DAY - 100),
            used("telegram", AppStatus::Banned, start - 3_600),
        ],
    )
    .await;
    send(
        store,
        2,
        first,
        start + 2 * DAY,
        vec![used("telegram", AppStatus::Banned, start - 1_800)],
    )
    .await;
    // On the day of the week's end: one use just before it, one just after.
    send(
        store,
        3,
        second,
        end + 60,
        vec![used("max", AppStatus::Approved, end + 10)],
    )
    .await;
    send(
        store,
        4,
        second,
        end + 120,
        vec![used("max", AppStatus::Approved, end - 10)],
    )
    .await;
    // A report older than the host's last one (stale) still tells of a use.
    send(store, 5, third, start + 3 * DAY, vec![]).await;
    send(
        store,
        6,
        third,
        start + 2 * DAY,
        vec![used("telegram", AppStatus::Banned, start + DAY)],
    )
    .await;
    // A retired PC's use counts no more.
    send(
        store,
        7,
        retired,
        start + DAY,
        vec![used("max", AppStatus::Approved, start + DAY)],
    )
    .await;
    store
        .retire_host(retired, start + 2 * DAY)
        .await
        .expect("retire");

    let (statuses, applications) = store.organization_use(start, end).await.expect("use");
    assert_eq!(
        by_status(&statuses, school_a, "approved"),
        2,
        "{statuses:?}"
    );
    assert_eq!(by_status(&statuses, school_a, "banned"), 0, "{statuses:?}");
    assert_eq!(by_status(&statuses, school_b, "banned"), 1, "{statuses:?}");
    assert_eq!(
        by_status(&statuses, school_b, "approved"),
        0,
        "{statuses:?}"
    );
    assert_eq!(by_status(&statuses, region, "approved"), 0, "{statuses:?}");
    assert_eq!(
        applications,
        vec![
            ApplicationUse {
                organization_id: school_a,
                app_id: "max".into(),
                status: "approved".into(),
                pcs: 2,
            },
            ApplicationUse {
                organization_id: school_b,
                app_id: "telegram".into(),
                status: "banned".into(),
                pcs: 1,
            },
        ]
    );
    // The week before has the first PC's Telegram, the week after the second's MAX.
    let (before, _) = store
        .organization_use(start - 7 * DAY, start)
        .await
        .expect("use");
    assert_eq!(by_status(&before, school_a, "banned"), 1, "{before:?}");
    assert_eq!(by_status(&before, school_a, "approved"), 0, "{before:?}");
    let (after, _) = store
        .organization_use(end, end + 7 * DAY)
        .await
        .expect("use");
    assert_eq!(by_status(&after, school_a, "approved"), 1, "{after:?}");
    assert_eq!(by_status(&after, school_b, "banned"), 0, "{after:?}");

    // A host's days: the first and last time of each day.
    let days = store
        .host_use_days(first, start - 7 * DAY)
        .await
        .expect("days");
    let telegram = days
        .iter()
        .find(|day| day.app_id == "telegram")
        .unwrap_or_else(|| panic!("{days:?}"));
    assert_eq!(
        (telegram.first_used_at, telegram.last_used_at),
        (start - 3_600, start - 1_800)
    );
    assert_eq!(telegram.status, "banned");
    assert!(days.iter().any(|day| day.app_id == "max"), "{days:?}");
    assert!(
        store
            .host_use_days(first, start + 7 * DAY)
            .await
            .expect("days")
            .is_empty()
    );

    // Pruning keeps the days from the day of its limit on.
    let pruned = store.prune_use_days(start + DAY).await.expect("prune");
    assert_eq!(pruned, 1, "the first PC's Telegram day before the week");
    let (kept, _) = store.organization_use(start, end).await.expect("use");
    assert_eq!(by_status(&kept, school_a, "approved"), 2, "{kept:?}");
    let (before_pruned, _) = store
        .organization_use(start - 7 * DAY, start)
        .await
        .expect("use");
    assert_eq!(by_status(&before_pruned, school_a, "banned"), 0);

    // Frozen with the week's figures, once: a later freeze changes nothing.
    let figures = |organization_id, used_approved| WeeklyFigures {
        organization_id,
        week: "2026-W48".into(),
        expected_pcs: 2,
        enrolled: 2,
        reporting: 2,
        silent: 0,
        with_banned: 1,
        with_approved: 2,
        known: Some(2),
        silent_with_banned: Some(0),
        used_approved: Some(used_approved),
        used_banned: Some(0),
    };
    let added = store
        .freeze_weekly_figures(
            &[figures(school_a, 2)],
            &applications,
            &list("2026-W48", start),
            end,
        )
        .await
        .expect("freeze");
    assert_eq!(added, 1);
    let changed = vec![ApplicationUse {
        organization_id: school_a,
        app_id: "max".into(),
        status: "approved".into(),
        pcs: 9,
    }];
    store
        .freeze_weekly_figures(
            &[figures(school_a, 9)],
            &changed,
            &list("2026-W48", start),
            end,
        )
        .await
        .expect("freeze again");
    let frozen = store
        .weekly_figures_of_week("2026-W48")
        .await
        .expect("read");
    assert_eq!(frozen.len(), 1);
    assert_eq!(frozen[0].used_approved, Some(2));
    assert_eq!(frozen[0].used_banned, Some(0));
    // Only the rows of the organizations frozen then (school B's figures were not).
    assert_eq!(
        store
            .weekly_app_use_of_week("2026-W48")
            .await
            .expect("read"),
        applications[..1].to_vec()
    );
}
