//! The officer's figures (issue 19): a PC's state is its last report, however old, so
//! a PC that goes silent keeps its violations in the counts; frozen weeks keep the
//! base of the shares.

use super::*;
use sverka_collector::store::{HostListToFreeze, WeeklyFigures};

pub async fn silent_pcs_keep_their_last_known_state(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let school = organization(store, "School", Some(region), 4).await;
    let fresh = host(store, school, "fresh").await;
    let gone_quiet = host(store, school, "quiet").await;
    let clean_quiet = host(store, school, "clean").await;
    let _never = host(store, school, "never").await;
    store
        .record_report(report(
            "fresh-1",
            fresh,
            T0 + 20 * DAY,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("fresh");
    store
        .record_report(report(
            "quiet-1",
            gone_quiet,
            T0,
            Some(vec![
                finding("telegram", "banned"),
                finding("max", "approved"),
            ]),
        ))
        .await
        .expect("quiet");
    store
        .record_report(report("clean-1", clean_quiet, T0, Some(vec![])))
        .await
        .expect("clean");

    let now = T0 + 21 * DAY;
    let counts = store
        .organization_counts(now - 7 * DAY, now - 7 * DAY)
        .await
        .expect("counts");
    let row = counts
        .iter()
        .find(|row| row.organization_id == school)
        .expect("school counts");
    assert_eq!(
        (row.enrolled, row.reporting, row.silent, row.known),
        (4, 1, 3, 3),
        "{row:?}"
    );
    assert_eq!(
        (row.with_banned, row.silent_with_banned, row.with_approved),
        (1, 1, 2),
        "the silent PC keeps its banned and approved messengers: {row:?}"
    );

    // Earlier, all three reported within the week: nothing is silent, same state.
    let then = T0 + DAY;
    let counts = store
        .organization_counts(then - 7 * DAY, then - 7 * DAY)
        .await
        .expect("counts then");
    let row = counts
        .iter()
        .find(|row| row.organization_id == school)
        .expect("school counts");
    assert_eq!(
        (
            row.reporting,
            row.silent,
            row.with_banned,
            row.silent_with_banned
        ),
        (3, 1, 1, 0),
        "{row:?}"
    );

    // The PC reports again without the messenger: it leaves the count.
    store
        .record_report(report(
            "quiet-2",
            gone_quiet,
            now,
            Some(vec![finding("max", "approved")]),
        ))
        .await
        .expect("quiet again");
    let counts = store
        .organization_counts(now - 7 * DAY, now - 7 * DAY)
        .await
        .expect("counts after");
    let row = counts
        .iter()
        .find(|row| row.organization_id == school)
        .expect("school counts");
    assert_eq!((row.with_banned, row.silent_with_banned), (0, 0), "{row:?}");

    // Frozen figures keep the base of the shares and the silent PCs with banned ones.
    let frozen = WeeklyFigures {
        organization_id: school,
        week: "2026-W48".into(),
        expected_pcs: 4,
        enrolled: 4,
        reporting: 1,
        silent: 3,
        with_banned: 1,
        with_approved: 2,
        known: Some(3),
        silent_with_banned: Some(1),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    store
        .freeze_weekly_figures(
            std::slice::from_ref(&frozen),
            &[],
            &list("2026-W48", now),
            now,
        )
        .await
        .expect("freeze");
    let read = store
        .weekly_figures_of_week("2026-W48")
        .await
        .expect("read");
    assert_eq!(read, vec![frozen]);
}

/// The worklist: an organization's violations across its schools, searched by PC,
/// user and application, filtered by application, school, new or resolved this week,
/// silent PCs and handled notes; the count covers every match beyond the limit.
pub async fn worklist_searches_and_filters(store: &dyn Store) {
    use sverka_collector::store::{HandledMark, WorklistFilter};
    let region = organization(store, "Region", None, 0).await;
    let north = organization(store, "North", Some(region), 2).await;
    let south = organization(store, "South", Some(region), 2).await;
    let other = organization(store, "Other", None, 0).await;
    let in_north = host(store, north, "n1").await;
    let in_south = host(store, south, "s1").await;
    let at_region = host(store, region, "r1").await;
    let elsewhere = host(store, other, "o1").await;
    let week_start = T0 + 20 * DAY;
    let send = |id: &str, host_id: i64, hostname: &str, at: i64, findings: Vec<HostFinding>| {
        let mut record = report(id, host_id, at, Some(findings));
        record.hostname = hostname.into();
        record
    };
    let mut sidorov = finding("telegram", "banned");
    sidorov.users = vec!["sidorov".into()];
    for record in [
        send(
            "w1",
            in_north,
            "KAB-12-PC",
            T0,
            vec![sidorov, finding("whatsapp", "banned")],
        ),
        send(
            "w2",
            in_south,
            "lab-3",
            T0 + 21 * DAY,
            vec![finding("telegram", "banned")],
        ),
        send(
            "w3",
            at_region,
            "office",
            T0 + 21 * DAY,
            vec![finding("viber", "banned"), finding("max", "approved")],
        ),
        send(
            "w4",
            elsewhere,
            "kab-99",
            T0 + 21 * DAY,
            vec![finding("telegram", "banned")],
        ),
    ] {
        store.record_report(record).await.expect("report");
    }
    let all = WorklistFilter {
        within: region,
        limit: 100,
        ..WorklistFilter::default()
    };
    let keys = |list: &sverka_collector::store::Worklist| {
        list.rows
            .iter()
            .map(|row| (row.violation.hostname.clone(), row.violation.app_id.clone()))
            .collect::<Vec<_>>()
    };
    let pair = |host: &str, app: &str| (host.to_string(), app.to_string());
    let list = store.worklist(&all).await.expect("all");
    assert_eq!(
        list.matched, 4,
        "approved apps and other regions are left out"
    );
    assert_eq!(
        keys(&list),
        vec![
            pair("KAB-12-PC", "telegram"),
            pair("KAB-12-PC", "whatsapp"),
            pair("office", "viber"),
            pair("lab-3", "telegram"),
        ]
    );
    // Each row carries its violation's facts as the violations report has them.
    let violations = store.violations(region, false).await.expect("violations");
    assert_eq!(
        list.rows
            .iter()
            .map(|row| row.violation.clone())
            .collect::<Vec<_>>(),
        violations
    );
    assert_eq!(list.rows[0].violation.users, vec!["sidorov".to_string()]);
    assert_eq!(list.rows[0].violation.organization, "North");
    let only =
        |filter: WorklistFilter| async move { keys(&store.worklist(&filter).await.expect("list")) };
    // Search by PC (any case), by user, by application name; wildcards are literal.
    for (text, expected) in [
        (
            "kab-12",
            vec![pair("KAB-12-PC", "telegram"), pair("KAB-12-PC", "whatsapp")],
        ),
        ("SIDOROV", vec![pair("KAB-12-PC", "telegram")]),
        ("Viber", vec![pair("office", "viber")]),
        ("%", vec![]),
        ("_", vec![]),
        // On the PC's name alone; on the PC's name and its finding (listed once).
        ("ice", vec![pair("office", "viber")]),
        (
            "e",
            vec![
                pair("KAB-12-PC", "telegram"),
                pair("KAB-12-PC", "whatsapp"),
                pair("office", "viber"),
                pair("lab-3", "telegram"),
            ],
        ),
    ] {
        let filter = WorklistFilter {
            search: Some(text.into()),
            ..all.clone()
        };
        let found = store.worklist(&filter).await.expect("search");
        assert_eq!(keys(&found), expected, "search {text:?}");
        assert_eq!(found.matched, expected.len() as i64, "search {text:?}");
    }
    let filter = WorklistFilter {
        app_id: Some("telegram".into()),
        ..all.clone()
    };
    assert_eq!(
        only(filter).await,
        vec![pair("KAB-12-PC", "telegram"), pair("lab-3", "telegram")]
    );
    let filter = WorklistFilter {
        within: south,
        ..all.clone()
    };
    assert_eq!(only(filter).await, vec![pair("lab-3", "telegram")]);
    let filter = WorklistFilter {
        directly: true,
        ..all.clone()
    };
    assert_eq!(
        only(filter).await,
        vec![pair("office", "viber")],
        "directly under the region"
    );
    let filter = WorklistFilter {
        first_seen_since: Some(week_start),
        ..all.clone()
    };
    assert_eq!(
        only(filter).await,
        vec![pair("office", "viber"), pair("lab-3", "telegram")]
    );
    let filter = WorklistFilter {
        silent_before: Some(week_start),
        ..all.clone()
    };
    assert_eq!(
        only(filter).await,
        vec![pair("KAB-12-PC", "telegram"), pair("KAB-12-PC", "whatsapp")]
    );

    store
        .mark_handled(HandledMark {
            host_id: in_south,
            app_id: "telegram".into(),
            note: "removing on Monday".into(),
            by_login: "school".into(),
            at: T0 + 21 * DAY,
        })
        .await
        .expect("mark");
    let filter = WorklistFilter {
        handled: Some(true),
        ..all.clone()
    };
    let handled = store.worklist(&filter).await.expect("handled");
    assert_eq!(keys(&handled), vec![pair("lab-3", "telegram")]);
    assert_eq!(
        handled.rows[0].handled_note.as_deref(),
        Some("removing on Monday")
    );
    let filter = WorklistFilter {
        handled: Some(false),
        ..all.clone()
    };
    assert_eq!(
        store.worklist(&filter).await.expect("not handled").matched,
        3
    );

    // A report without WhatsApp resolves it: "resolved this week" lists it, open ones don't.
    store
        .record_report(send(
            "w5",
            in_north,
            "KAB-12-PC",
            T0 + 22 * DAY,
            vec![finding("telegram", "banned")],
        ))
        .await
        .expect("resolve");
    let filter = WorklistFilter {
        resolved_since: Some(week_start),
        ..all.clone()
    };
    let resolved = store.worklist(&filter).await.expect("resolved");
    assert_eq!(keys(&resolved), vec![pair("KAB-12-PC", "whatsapp")]);
    assert_eq!(resolved.rows[0].violation.resolved_at, Some(T0 + 22 * DAY));
    assert_eq!(store.worklist(&all).await.expect("open").matched, 3);

    // The count agrees with the rows for every filter (the unfiltered ones are summed
    // from the hosts' counters, the rest counted from the rows).
    for filter in [
        all.clone(),
        WorklistFilter {
            within: south,
            ..all.clone()
        },
        WorklistFilter {
            directly: true,
            ..all.clone()
        },
        WorklistFilter {
            silent_before: Some(week_start),
            ..all.clone()
        },
        WorklistFilter {
            app_id: Some("telegram".into()),
            ..all.clone()
        },
        WorklistFilter {
            resolved_since: Some(week_start),
            ..all.clone()
        },
    ] {
        let list = store.worklist(&filter).await.expect("list");
        assert_eq!(list.matched, list.rows.len() as i64, "{filter:?}");
    }

    // The limit cuts the rows, not the count.
    let filter = WorklistFilter {
        limit: 1,
        ..all.clone()
    };
    let first = store.worklist(&filter).await.expect("limited");
    assert_eq!((first.rows.len(), first.matched), (1, 3));
    // A filter that looks into the findings counts in the same pass as it reads the
    // keys: the limit cuts the rows there too, down to none, and not the count.
    for (limit, rows) in [(3, 3), (1, 1), (0, 0)] {
        let filter = WorklistFilter {
            limit,
            first_seen_since: Some(0),
            ..all.clone()
        };
        let list = store.worklist(&filter).await.expect("limited, filtered");
        assert_eq!((list.rows.len(), list.matched), (rows, 3), "limit {limit}");
    }
}

/// The list of PCs a week's frozen figures counted, for the weeks and boundaries `week`.
pub fn list(week: &str, silent_before: i64) -> HostListToFreeze {
    HostListToFreeze {
        week: week.into(),
        boundaries: "|".into(),
        silent_before,
    }
}

/// The PCs behind a frozen week's figures: every PC (not retired) with a banned
/// messenger when the week was frozen, with the organization it was in; read for an
/// organization's subtree or for the PCs directly under it; written once, so a PC that
/// gets a banned messenger after the freeze does not join the week's list.
pub async fn frozen_weeks_keep_the_pcs_they_counted(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let municipality = organization(store, "Municipality", Some(region), 0).await;
    let school = organization(store, "School", Some(municipality), 4).await;
    let other = organization(store, "Other region", None, 0).await;
    let banned = vec![finding("telegram", "banned")];
    let fresh = host(store, school, "fresh").await;
    let quiet = host(store, school, "quiet").await;
    let approved = host(store, school, "approved").await;
    let retired = host(store, school, "retired").await;
    let direct = host(store, municipality, "direct").await;
    let elsewhere = host(store, other, "elsewhere").await;
    let now = T0 + 20 * DAY;
    for (id, host_id, at, findings) in [
        ("fresh-1", fresh, now, banned.clone()),
        ("quiet-1", quiet, T0, banned.clone()),
        (
            "approved-1",
            approved,
            now,
            vec![finding("max", "approved")],
        ),
        ("retired-1", retired, now, banned.clone()),
        ("direct-1", direct, now, banned.clone()),
        ("elsewhere-1", elsewhere, now, banned.clone()),
    ] {
        store
            .record_report(report(id, host_id, at, Some(findings)))
            .await
            .expect("report");
    }
    store.retire_host(retired, now).await.expect("retire");
    let silent_before = now - 7 * DAY;
    let figures = |organization_id| WeeklyFigures {
        organization_id,
        week: "2026-W48".into(),
        expected_pcs: 4,
        enrolled: 1,
        reporting: 1,
        silent: 0,
        with_banned: 1,
        with_approved: 0,
        known: Some(1),
        silent_with_banned: Some(0),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    store
        .freeze_weekly_figures(
            &[figures(region)],
            &[],
            &list("2026-W48", silent_before),
            now,
        )
        .await
        .expect("freeze");

    let ids = |list: &sverka_collector::store::FrozenHostList| {
        let mut ids: Vec<i64> = list.hosts.iter().map(|host| host.host_id).collect();
        ids.sort();
        ids
    };
    let of_region = store
        .frozen_host_list("2026-W48", "|", region, false)
        .await
        .expect("region's list")
        .expect("a list was kept");
    assert_eq!(
        (of_region.frozen_at, of_region.silent_before),
        (now, silent_before)
    );
    assert_eq!(ids(&of_region), vec![fresh, quiet, direct], "{of_region:?}");
    let of_school = store
        .frozen_host_list("2026-W48", "|", school, false)
        .await
        .expect("school's list")
        .expect("a list was kept");
    assert_eq!(ids(&of_school), vec![fresh, quiet]);
    let silent: Vec<i64> = of_school
        .hosts
        .iter()
        .filter(|host| host.silent(&of_school))
        .map(|host| host.host_id)
        .collect();
    assert_eq!(
        silent,
        vec![quiet],
        "the PC last seen before the cut is silent"
    );
    let quiet_row = of_school
        .hosts
        .iter()
        .find(|host| host.host_id == quiet)
        .expect("quiet");
    assert_eq!(
        (
            quiet_row.organization_id,
            quiet_row.last_seen_at,
            quiet_row.open_banned
        ),
        (school, Some(T0), 1)
    );
    let directly = store
        .frozen_host_list("2026-W48", "|", municipality, true)
        .await
        .expect("directly under")
        .expect("a list was kept");
    assert_eq!(ids(&directly), vec![direct]);
    let of_other = store
        .frozen_host_list("2026-W48", "|", other, false)
        .await
        .expect("other's list")
        .expect("a list was kept");
    assert_eq!(ids(&of_other), vec![elsewhere]);

    // A PC that gets a banned messenger later, and the week frozen again (the job runs
    // every ten minutes): the week's list stays as it was.
    store
        .record_report(report(
            "approved-2",
            approved,
            now + 60,
            Some(banned.clone()),
        ))
        .await
        .expect("approved now banned");
    let added = store
        .freeze_weekly_figures(
            &[figures(region), figures(other)],
            &[],
            &list("2026-W48", now),
            now + 600,
        )
        .await
        .expect("freeze again, with an organization's figures new");
    assert_eq!(added, 1);
    let again = store
        .frozen_host_list("2026-W48", "|", region, false)
        .await
        .expect("again")
        .expect("kept");
    assert_eq!(again, of_region);

    // Figures all frozen before (by a version that kept no list): no list is made up
    // afterwards from a later state.
    let added = store
        .freeze_weekly_figures(
            &[figures(region)],
            &[],
            &HostListToFreeze {
                boundaries: "Asia/Kamchatka|".into(),
                ..list("2026-W48", now)
            },
            now + 1200,
        )
        .await
        .expect("freeze what was frozen");
    assert_eq!(added, 0);

    // Another week or other boundaries: no list.
    for (week, boundaries) in [("2026-W47", "|"), ("2026-W48", "Asia/Kamchatka|")] {
        assert_eq!(
            store
                .frozen_host_list(week, boundaries, region, false)
                .await
                .expect("no list"),
            None
        );
    }
}

/// The worklist of open violations filtered by place alone takes its page from the
/// leading organizations that fill it: cut at any limit, the page is the same prefix
/// of the whole order that a filter looking into the findings lists, also where two
/// schools share a name and their PCs interleave.
pub async fn worklist_pages_cut_anywhere_agree_with_the_whole_order(store: &dyn Store) {
    use sverka_collector::store::WorklistFilter;
    let region = organization(store, "Region", None, 0).await;
    let mut schools = Vec::new();
    for name in [
        "Школа 2",
        "Lyceum",
        "Школа 1",
        "Lyceum",
        "Gymnasium",
        "Empty",
    ] {
        schools.push(organization(store, name, Some(region), 4).await);
    }
    // PCs named so that the two Lyceums' PCs interleave; one, two or no violations.
    let mut sent = 0;
    for (index, school) in schools.iter().enumerate().take(5) {
        for pc in 0..3 {
            let hostname = format!("pc-{pc}-{}", index % 2);
            let host_id = host(store, *school, &hostname).await;
            let findings = match (index + pc) % 3 {
                0 => vec![finding("telegram", "banned"), finding("max", "approved")],
                1 => vec![finding("telegram", "banned"), finding("whatsapp", "banned")],
                _ => vec![finding("max", "approved")],
            };
            sent += 1;
            let mut record = report(&format!("cut-{sent}"), host_id, T0, Some(findings));
            record.hostname = hostname;
            store.record_report(record).await.expect("report");
        }
    }
    let keys = |list: &sverka_collector::store::Worklist| {
        list.rows
            .iter()
            .map(|row| (row.violation.host_id, row.violation.app_id.clone()))
            .collect::<Vec<_>>()
    };
    for (directly, silent_before) in [(false, None), (false, Some(T0 + 1)), (true, None)] {
        let by_place = WorklistFilter {
            within: region,
            directly,
            silent_before,
            limit: 1000,
            ..WorklistFilter::default()
        };
        // Every violation was first seen at T0: a filter that holds for all of them and
        // makes the query look into the findings.
        let whole = store
            .worklist(&WorklistFilter {
                first_seen_since: Some(T0),
                ..by_place.clone()
            })
            .await
            .expect("whole");
        let whole_keys = keys(&whole);
        let expected = if directly { 0 } else { 15 };
        assert_eq!(whole.matched, expected, "directly {directly}");
        assert_eq!(whole_keys.len(), expected as usize);
        for limit in 0..=whole_keys.len() + 1 {
            let page = store
                .worklist(&WorklistFilter {
                    limit: limit as i64,
                    ..by_place.clone()
                })
                .await
                .expect("page");
            assert_eq!(page.matched, whole.matched, "limit {limit}");
            assert_eq!(
                keys(&page),
                whole_keys[..limit.min(whole_keys.len())],
                "limit {limit}, directly {directly}, silent before {silent_before:?}"
            );
        }
    }
}
