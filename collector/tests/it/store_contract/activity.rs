//! Application use (issue 20): the uses reports carry, counted per organization and
//! week to the second at the week's boundaries, whichever way the writer applied the
//! report (a report that changes findings, a check-in that changes nothing, a stale
//! one); retired PCs out of the counts; the week's use frozen with its figures, once.

use std::collections::{BTreeMap, BTreeSet};
use sverka_collector::store::{
    AppUse, ApplicationUse, HostUseDay, OrganizationUse, Store, WeeklyFigures,
};
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
        late: false,
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

/// What `organization_use` must say for `[from, until)`, counted here from every
/// host's day rows (organization, the host's days): (organization, application or ""
/// for the status alone, status) and the PCs.
fn use_from_days(
    hosts: &[(i64, Vec<HostUseDay>)],
    from: i64,
    until: i64,
) -> BTreeMap<(i64, String, String), i64> {
    let inside = |at: i64| at >= from && at < until;
    let mut pcs = BTreeMap::new();
    for (organization_id, days) in hosts {
        let mut used = BTreeSet::new();
        for day in days
            .iter()
            .filter(|day| inside(day.first_used_at) || inside(day.last_used_at))
        {
            used.insert((String::new(), day.status.clone()));
            used.insert((day.app_id.clone(), day.status.clone()));
        }
        for (app, status) in used {
            *pcs.entry((*organization_id, app, status)).or_insert(0) += 1;
        }
    }
    pcs
}

/// A day whose status changes with a later use that day (the catalog changed), a use
/// older than its day's latest with another status, a latest use after the span: the
/// counts equal the day rows' at every cut-off around each time of use, also after
/// pruning.
pub async fn use_counts_follow_the_day_rows_at_every_cut_off(store: &dyn Store) {
    let region = organization(store, "R", None, 0).await;
    let school = organization(store, "A", Some(region), 4).await;
    let flipped = host(store, school, "flipped").await;
    let kept = host(store, school, "kept").await;
    let two_days = host(store, school, "two-days").await;
    let ahead = host(store, school, "ahead").await;
    let start = T0;
    let (banned, approved) = (AppStatus::Banned, AppStatus::Approved);
    // Banned, then approved later the same day: the day is approved.
    send(
        store,
        1,
        flipped,
        start + DAY,
        vec![used("telegram", banned, start + DAY + 100)],
    )
    .await;
    send(
        store,
        2,
        flipped,
        start + DAY + 300,
        vec![used("telegram", approved, start + DAY + 200)],
    )
    .await;
    // Approved told after a later banned use of the same day: the day stays banned.
    send(
        store,
        3,
        kept,
        start + DAY,
        vec![used("telegram", banned, start + DAY + 200)],
    )
    .await;
    send(
        store,
        4,
        kept,
        start + DAY + 300,
        vec![used("telegram", approved, start + DAY + 100)],
    )
    .await;
    // Banned on two days, the later one turned approved: banned's latest is the first.
    send(
        store,
        5,
        two_days,
        start + DAY,
        vec![used("telegram", banned, start + DAY)],
    )
    .await;
    send(
        store,
        6,
        two_days,
        start + 3 * DAY,
        vec![used("telegram", banned, start + 3 * DAY)],
    )
    .await;
    send(
        store,
        7,
        two_days,
        start + 3 * DAY + 200,
        vec![
            used("telegram", approved, start + 3 * DAY + 100),
            used("max", approved, start + 2 * DAY),
        ],
    )
    .await;
    // A use in the week and one a month later (a clock ahead).
    send(
        store,
        8,
        ahead,
        start + 40 * DAY,
        vec![
            used("max", approved, start + 2 * DAY),
            used("max", approved, start + 30 * DAY),
        ],
    )
    .await;

    let hosts = [
        (school, flipped),
        (school, kept),
        (school, two_days),
        (school, ahead),
    ];
    let mut times = vec![
        start,
        start + DAY,
        start + 2 * DAY,
        start + 3 * DAY,
        start + 30 * DAY,
    ];
    times.extend([100, 200].map(|offset| start + DAY + offset));
    times.extend([100, 200].map(|offset| start + 3 * DAY + offset));
    let mut cut_offs: Vec<i64> = times
        .iter()
        .flat_map(|at| [at - 1, *at, at + 1])
        .chain([start - 7 * DAY, start + 60 * DAY])
        .collect();
    cut_offs.sort_unstable();
    cut_offs.dedup();
    let check = |pruned: bool| {
        let cut_offs = cut_offs.clone();
        async move {
            let mut days = Vec::new();
            for (organization_id, host_id) in hosts {
                let host_days = store.host_use_days(host_id, 0).await.expect("days");
                days.push((organization_id, host_days));
            }
            for (index, from) in cut_offs.iter().enumerate() {
                for until in &cut_offs[index + 1..] {
                    let (statuses, applications) =
                        store.organization_use(*from, *until).await.expect("use");
                    let mut counted = BTreeMap::new();
                    for row in statuses {
                        counted.insert((row.organization_id, String::new(), row.status), row.pcs);
                    }
                    for row in applications {
                        counted.insert((row.organization_id, row.app_id, row.status), row.pcs);
                    }
                    let expected = use_from_days(&days, *from, *until);
                    assert_eq!(counted, expected, "[{from}, {until}), pruned: {pruned}");
                }
            }
        }
    };
    check(false).await;
    // The day rows' statuses themselves, as the cases above say.
    let statuses = |host_id| async move {
        let days = store.host_use_days(host_id, 0).await.expect("days");
        days.into_iter()
            .map(|day| (day.app_id, day.status, day.first_used_at, day.last_used_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(flipped).await,
        vec![(
            "telegram".into(),
            "approved".into(),
            start + DAY + 100,
            start + DAY + 200
        )]
    );
    assert_eq!(
        statuses(kept).await,
        vec![(
            "telegram".into(),
            "banned".into(),
            start + DAY + 100,
            start + DAY + 200
        )]
    );
    let (week, _) = store
        .organization_use(start, start + 7 * DAY)
        .await
        .expect("use");
    assert_eq!(by_status(&week, school, "banned"), 2, "{week:?}");
    assert_eq!(by_status(&week, school, "approved"), 3, "{week:?}");
    // Pruned up to the day of the second day's uses: what is left still counts alike.
    store.prune_use_days(start + 2 * DAY).await.expect("prune");
    check(true).await;
}
