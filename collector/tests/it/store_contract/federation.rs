//! Federation on both databases: a lower collector's message stored under its link's
//! organization, counted as local figures; stale figures, resent weeks and a revoked
//! link change nothing; the lower collector's upstream and its cursor.

use std::collections::BTreeMap;
use sverka_collector::store::{PushOutcome, Store, StoreError, UpstreamLink, WeeklyFigures};
use sverka_shared::federation::{
    CurrentFigures, Detail, FEDERATION_PROTOCOL, FiguresMessage, MemberOrganization,
    SchoolViolations, WeekFigures,
};

use super::{T0, organization};

fn member(key: &str, parent: Option<&str>, name: &str, expected: i64) -> MemberOrganization {
    MemberOrganization {
        key: key.into(),
        parent: parent.map(str::to_string),
        name: name.into(),
        kind: if parent.is_none() {
            "municipality"
        } else {
            "school"
        }
        .into(),
        expected_pcs: expected,
    }
}

fn current(key: &str, enrolled: i64, with_banned: i64) -> CurrentFigures {
    CurrentFigures {
        organization: key.into(),
        enrolled,
        reporting: enrolled,
        silent: 0,
        with_banned,
        with_approved: enrolled - with_banned,
        known: enrolled,
        silent_with_banned: 0,
    }
}

fn week(label: &str, key: &str, enrolled: i64) -> WeekFigures {
    WeekFigures {
        week: label.into(),
        organization: key.into(),
        expected_pcs: 30,
        enrolled,
        reporting: enrolled,
        silent: 0,
        with_banned: 1,
        with_approved: 2,
        known: Some(enrolled),
        silent_with_banned: Some(0),
        used_approved: Some(1),
        used_banned: None,
    }
}

/// A municipality "7" with two schools "8" and "9", as its collector sends it.
fn message(generated_at: i64, school_pcs: i64) -> FiguresMessage {
    FiguresMessage {
        protocol: FEDERATION_PROTOCOL,
        message_id: format!("m-{generated_at}"),
        generated_at,
        organizations: vec![
            member("9", Some("7"), "School 9", 10),
            member("7", None, "Severodvinsk", 0),
            member("8", Some("7"), "School 8", 20),
        ],
        current: vec![current("8", school_pcs, 1), current("9", 4, 0)],
        violations: vec![SchoolViolations {
            organization: "8".into(),
            app_id: "telegram".into(),
            pcs: 1,
            hosts: Vec::new(),
        }],
        used: Vec::new(),
        week: None,
        weeks: vec![week("2026-W47", "7", school_pcs + 4)],
        not_understood: BTreeMap::new(),
    }
}

pub async fn a_link_places_the_lower_tree_and_counts_it(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let own_school = organization(store, "Regional school", Some(region), 5).await;
    let link = store
        .create_link(region, &"a".repeat(64), Detail::Counts, T0)
        .await
        .expect("link");
    assert_eq!(link.organization_id, region);
    assert_eq!(link.detail, Detail::Counts);

    let outcome = store
        .store_federated_figures(link.id, &message(T0 + 10, 6), T0 + 20)
        .await
        .expect("stored");
    assert!(outcome.current_applied);
    assert_eq!((outcome.weeks_stored, outcome.weeks_known), (1, 0));
    assert_eq!(outcome.newest_week.as_deref(), Some("2026-W47"));

    // The lower collector's tree appears under the link's organization, marked as the
    // link's, parents first whatever the message's order.
    let organizations = store.organizations().await.expect("organizations");
    let named = |name: &str| {
        organizations
            .iter()
            .find(|org| org.name == name)
            .unwrap_or_else(|| panic!("{name} in {organizations:?}"))
            .clone()
    };
    let municipality = named("Severodvinsk");
    assert_eq!(municipality.parent_id, Some(region));
    assert_eq!(municipality.federated_link_id, Some(link.id));
    assert_eq!(named("School 8").parent_id, Some(municipality.id));
    assert_eq!(named("School 9").expected_pcs, 10);
    assert_eq!(named("Regional school").federated_link_id, None);

    // Counted like local PCs: the region's coverage adds its own school (no PCs) and
    // the federated municipality's 10.
    let coverage = store.coverage(region, T0).await.expect("coverage");
    assert_eq!(coverage[0].organization_id, region);
    assert_eq!(coverage[0].expected_pcs, 35);
    assert_eq!(coverage[0].enrolled, 10);
    assert_eq!(coverage[0].with_banned, 1);
    let federated_row = coverage
        .iter()
        .find(|row| row.organization_id == municipality.id)
        .expect("a row for the federated municipality");
    assert_eq!((federated_row.enrolled, federated_row.known), (10, 10));
    assert!(coverage.iter().any(|row| row.organization_id == own_school));
    let counts = store.organization_counts(T0, T0).await.expect("counts");
    let school_8 = counts
        .iter()
        .find(|row| row.organization_id == named("School 8").id)
        .expect("school 8's own counts");
    assert_eq!((school_8.enrolled, school_8.with_banned), (6, 1));

    let held = store
        .federated_violations(Some(named("School 8").id))
        .await
        .expect("violations");
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].app_id.as_str(), held[0].pcs), ("telegram", 1));
    assert!(held[0].hosts.is_empty());

    // An older message (an old backup, a late delivery) changes no current figure and
    // no name; its new week is still stored once.
    let mut stale = message(T0 + 5, 99);
    stale.organizations[1].name = "Old name".into();
    stale.weeks.push(week("2026-W46", "7", 3));
    let outcome = store
        .store_federated_figures(link.id, &stale, T0 + 30)
        .await
        .expect("stale stored");
    assert!(!outcome.current_applied);
    assert_eq!((outcome.weeks_stored, outcome.weeks_known), (1, 1));
    assert_eq!(
        store.coverage(region, T0).await.expect("coverage")[0].enrolled,
        10
    );
    assert_eq!(
        store
            .organization(municipality.id)
            .await
            .expect("read")
            .expect("kept")
            .name,
        "Severodvinsk"
    );

    // The same message again (a replay) changes nothing; a newer one replaces the
    // current figures, renames and moves, and keeps the frozen week as it was.
    let replay = store
        .store_federated_figures(link.id, &message(T0 + 10, 6), T0 + 40)
        .await
        .expect("replayed");
    assert!(!replay.current_applied);
    assert_eq!((replay.weeks_stored, replay.weeks_known), (0, 1));
    let mut newer = message(T0 + 50, 2);
    newer.organizations[1].name = "Severodvinsk city".into();
    newer.weeks = vec![week("2026-W47", "7", 500)];
    let outcome = store
        .store_federated_figures(link.id, &newer, T0 + 60)
        .await
        .expect("newer");
    assert!(outcome.current_applied);
    assert_eq!((outcome.weeks_stored, outcome.weeks_known), (0, 1));
    assert_eq!(
        store.coverage(region, T0).await.expect("coverage")[0].enrolled,
        6
    );
    let info = store
        .links()
        .await
        .expect("links")
        .into_iter()
        .find(|info| info.id == link.id)
        .expect("the link");
    assert_eq!(info.last_generated_at, Some(T0 + 50));
    assert_eq!(info.last_received_at, Some(T0 + 60));
    assert_eq!(info.newest_week.as_deref(), Some("2026-W47"));

    // A federated organization cannot get links of its own.
    let refused = store
        .create_link(municipality.id, &"b".repeat(64), Detail::Pcs, T0)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );

    // A federated organization's tree and PCs belong to its own collector.
    let child = store
        .create_organization(sverka_collector::store::NewOrganization {
            parent_id: Some(municipality.id),
            name: "A school added here".into(),
            kind: "school".into(),
            expected_pcs: 1,
            time_zone: None,
        })
        .await;
    assert!(matches!(child, Err(StoreError::Rejected(_))), "{child:?}");
    let secret = store
        .create_secret(
            sverka_collector::store::NewSecret {
                organization_id: named("School 8").id,
                secret_hash: "d".repeat(64),
                expires_at: None,
            },
            T0,
        )
        .await;
    assert!(matches!(secret, Err(StoreError::Rejected(_))), "{secret:?}");

    // Revoked: the next message stores nothing.
    store.revoke_link(link.id, T0 + 70).await.expect("revoke");
    let credentials = store
        .link_credentials(link.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(credentials.revoked_at, Some(T0 + 70));
    let after = store
        .store_federated_figures(link.id, &message(T0 + 80, 40), T0 + 90)
        .await;
    assert!(matches!(after, Err(StoreError::Rejected(_))), "{after:?}");
    assert_eq!(
        store.coverage(region, T0).await.expect("coverage")[0].enrolled,
        6
    );
    assert!(matches!(
        store.revoke_link(9_999, T0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn the_lower_collector_keeps_its_upstream_and_cursor(store: &dyn Store) {
    assert_eq!(store.upstream().await.expect("read"), None);
    let link = UpstreamLink {
        url: "https://region.example:8440".into(),
        secret: format!("3.{}", "c".repeat(64)),
        allow_http: false,
        configured_at: T0,
        upstream_organization: "Region".into(),
        detail: Detail::Pcs,
        acknowledged_week: None,
        last_attempt_at: None,
        last_success_at: None,
        last_error: None,
    };
    store.set_upstream(Some(&link)).await.expect("set");
    assert_eq!(store.upstream().await.expect("read"), Some(link.clone()));
    assert!(
        !format!("{link:?}").contains(&"c".repeat(64)),
        "no secret in Debug"
    );

    let failed = PushOutcome::Failed {
        error: "the upstream is unreachable".into(),
    };
    store.record_push(&failed, T0 + 1).await.expect("failed");
    let stored = store.upstream().await.expect("read").expect("set");
    assert_eq!(stored.last_attempt_at, Some(T0 + 1));
    assert_eq!(stored.last_success_at, None);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("the upstream is unreachable")
    );

    let acknowledged = PushOutcome::Acknowledged {
        newest_week: Some("2026-W47".into()),
    };
    store.record_push(&acknowledged, T0 + 2).await.expect("ok");
    let stored = store.upstream().await.expect("read").expect("set");
    assert_eq!(stored.last_success_at, Some(T0 + 2));
    assert_eq!(stored.last_error, None);
    assert_eq!(stored.acknowledged_week.as_deref(), Some("2026-W47"));

    // A new link starts over; removing it leaves none.
    store.set_upstream(Some(&link)).await.expect("set again");
    let stored = store.upstream().await.expect("read").expect("set");
    assert_eq!(stored.acknowledged_week, None);
    store.set_upstream(None).await.expect("remove");
    assert_eq!(store.upstream().await.expect("read"), None);

    // The frozen weeks after a cursor, oldest first.
    assert_eq!(
        store.frozen_weeks(None, 10).await.expect("weeks"),
        Vec::<String>::new()
    );
    let region = organization(store, "Region", None, 0).await;
    let school = organization(store, "School", Some(region), 4).await;
    for label in ["2026-W47", "2026-W09", "2026-W10"] {
        let figures = |organization_id| WeeklyFigures {
            organization_id,
            week: label.into(),
            expected_pcs: 4,
            enrolled: 2,
            reporting: 2,
            silent: 0,
            with_banned: 1,
            with_approved: 1,
            known: Some(2),
            silent_with_banned: Some(0),
            used_approved: None,
            used_banned: None,
            late: false,
        };
        store
            .freeze_weekly_figures(
                &[figures(region), figures(school)],
                &[],
                &super::officer::list(label, T0),
                T0,
            )
            .await
            .expect("freeze");
    }
    assert_eq!(
        store.frozen_weeks(None, 10).await.expect("weeks"),
        ["2026-W09", "2026-W10", "2026-W47"]
    );
    assert_eq!(
        store
            .frozen_weeks(Some("2026-W09"), 1)
            .await
            .expect("weeks"),
        ["2026-W10"]
    );
    assert!(
        store
            .frozen_weeks(Some("2026-W47"), 10)
            .await
            .expect("weeks")
            .is_empty()
    );
}

/// Frozen figures read back with the federated weeks: what the lower collector froze
/// replaces what was frozen here of its organizations, those above are corrected by the
/// difference, and a week it has not sent keeps this collector's, marked late.
pub async fn frozen_weeks_count_what_the_lower_collector_froze(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let own_school = organization(store, "Regional school", Some(region), 5).await;
    let link = store
        .create_link(region, &"e".repeat(64), Detail::Pcs, T0)
        .await
        .expect("link");
    // The municipality sends its current figures and its week 47 (10 PCs).
    store
        .store_federated_figures(link.id, &message(T0 + 10, 6), T0 + 20)
        .await
        .expect("stored");
    let organizations = store.organizations().await.expect("organizations");
    let id_of = |name: &str| {
        organizations
            .iter()
            .find(|org| org.name == name)
            .map(|org| org.id)
            .unwrap_or_else(|| panic!("{name} in {organizations:?}"))
    };
    let municipality = id_of("Severodvinsk");
    let school_8 = id_of("School 8");

    // Here, weeks 47 and 48 were frozen with 3 PCs of the region's own school and the
    // municipality's last current figures (8 PCs, school 8: 4).
    let figures = |organization_id, label: &str, enrolled| WeeklyFigures {
        organization_id,
        week: label.into(),
        expected_pcs: 30,
        enrolled,
        reporting: enrolled,
        silent: 0,
        with_banned: 1,
        with_approved: 0,
        known: Some(enrolled),
        silent_with_banned: Some(0),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    for label in ["2026-W47", "2026-W48"] {
        store
            .freeze_weekly_figures(
                &[
                    figures(region, label, 11),
                    figures(own_school, label, 3),
                    figures(municipality, label, 8),
                    figures(school_8, label, 4),
                ],
                &[],
                &super::officer::list(label, T0),
                T0,
            )
            .await
            .expect("freeze");
    }

    let week_47 = store.weekly_figures_of_week("2026-W47").await.expect("W47");
    let enrolled = |rows: &[WeeklyFigures], id| {
        rows.iter()
            .find(|row| row.organization_id == id)
            .map(|row| (row.enrolled, row.late))
    };
    assert_eq!(enrolled(&week_47, region), Some((3 + 10, false)));
    assert_eq!(enrolled(&week_47, own_school), Some((3, false)));
    assert_eq!(enrolled(&week_47, municipality), Some((10, false)));
    // The municipality sent no row of school 8 for week 47: what was frozen here.
    assert_eq!(enrolled(&week_47, school_8), Some((4, true)));
    let week_48 = store.weekly_figures_of_week("2026-W48").await.expect("W48");
    assert_eq!(enrolled(&week_48, region), Some((11, false)));
    assert_eq!(enrolled(&week_48, municipality), Some((8, true)));

    let trend = store
        .weekly_figures_of_organization(region, "2026-W01", "2026-W52")
        .await
        .expect("trend");
    let trend: Vec<(&str, i64)> = trend
        .iter()
        .map(|row| (row.week.as_str(), row.enrolled))
        .collect();
    assert_eq!(trend, [("2026-W47", 13), ("2026-W48", 11)]);
    let trend = store
        .weekly_figures_of_organization(municipality, "2026-W47", "2026-W48")
        .await
        .expect("trend");
    assert_eq!(
        trend
            .iter()
            .map(|row| (row.enrolled, row.late))
            .collect::<Vec<_>>(),
        [(10, false), (8, true)]
    );

    // Every federated organization's violations at once, by organization.
    let all = store.federated_violations(None).await.expect("violations");
    assert_eq!(
        all.iter()
            .map(|row| (row.organization_id, row.app_id.as_str(), row.pcs))
            .collect::<Vec<_>>(),
        [(school_8, "telegram", 1)]
    );

    // School 9 deleted on the municipality's collector: kept (its weeks stay), expecting
    // no PC and marked; sent again, it is back as it was.
    let expected =
        || async move { store.coverage(region, T0).await.expect("coverage")[0].expected_pcs };
    assert_eq!(expected().await, 5 + 30);
    let mut without_9 = message(T0 + 30, 6);
    without_9.organizations.retain(|org| org.key != "9");
    without_9.current.retain(|row| row.organization != "9");
    without_9.weeks.clear();
    store
        .store_federated_figures(link.id, &without_9, T0 + 40)
        .await
        .expect("stored");
    let school_9 = store
        .organizations()
        .await
        .expect("organizations")
        .into_iter()
        .find(|org| org.name == "School 9")
        .expect("kept");
    assert_eq!(school_9.federated_gone_at, Some(T0 + 40));
    assert_eq!(school_9.expected_pcs, 0);
    assert_eq!(expected().await, 5 + 20);
    // Never late once gone: frozen here with no week of its own, it is not late.
    store
        .freeze_weekly_figures(
            &[
                figures(school_9.id, "2026-W49", 0),
                figures(school_8, "2026-W49", 4),
            ],
            &[],
            &super::officer::list("2026-W49", T0),
            T0,
        )
        .await
        .expect("freeze");
    let week_49 = store.weekly_figures_of_week("2026-W49").await.expect("W49");
    assert_eq!(enrolled(&week_49, school_9.id), Some((0, false)));
    assert_eq!(enrolled(&week_49, school_8), Some((4, true)));
    let mut again = message(T0 + 50, 6);
    again.weeks.clear();
    store
        .store_federated_figures(link.id, &again, T0 + 60)
        .await
        .expect("stored");
    let school_9 = store
        .organization(school_9.id)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (school_9.federated_gone_at, school_9.expected_pcs),
        (None, 10)
    );
    assert_eq!(expected().await, 5 + 30);
}

/// Two collector processes on one database: what one writes, the other's next read
/// shows, though each keeps the tree, the federated counts and frozen weeks in memory
/// (an organization added or renamed, a lower collector's message, a freeze).
pub async fn what_one_store_writes_the_other_reads_at_once(
    first: std::sync::Arc<dyn Store>,
    second: std::sync::Arc<dyn Store>,
) {
    let names = |organizations: Vec<sverka_collector::store::Organization>| {
        organizations
            .into_iter()
            .map(|org| org.name)
            .collect::<Vec<_>>()
    };
    let region = organization(first.as_ref(), "Region", None, 0).await;
    assert_eq!(
        names(second.organizations().await.expect("read")),
        ["Region"]
    );
    // Read again from memory, then an organization added by the other.
    assert_eq!(
        names(second.organizations().await.expect("read")),
        ["Region"]
    );
    organization(first.as_ref(), "School", Some(region), 3).await;
    assert_eq!(
        names(second.organizations().await.expect("read")),
        ["Region", "School"]
    );

    // A lower collector's message through the first: the second counts it.
    let link = first
        .create_link(region, &"9".repeat(64), Detail::Counts, T0)
        .await
        .expect("link");
    let enrolled = |store: std::sync::Arc<dyn Store>| async move {
        store
            .organization_counts(T0, T0)
            .await
            .expect("counts")
            .iter()
            .map(|row| row.enrolled)
            .sum::<i64>()
    };
    assert_eq!(enrolled(second.clone()).await, 0);
    first
        .store_federated_figures(link.id, &message(T0 + 10, 6), T0 + 20)
        .await
        .expect("stored");
    assert_eq!(enrolled(second.clone()).await, 10);
    assert!(
        second
            .organizations()
            .await
            .expect("read")
            .iter()
            .any(|org| org.name == "Severodvinsk" && org.federated_as_of == Some(T0 + 10))
    );
    // Newer current figures: counted at once by the other.
    first
        .store_federated_figures(link.id, &message(T0 + 30, 1), T0 + 40)
        .await
        .expect("stored");
    assert_eq!(enrolled(second.clone()).await, 5);

    // A week frozen by the first after the second read it empty.
    assert!(
        second
            .weekly_figures_of_week("2026-W30")
            .await
            .expect("read")
            .is_empty()
    );
    let frozen = WeeklyFigures {
        organization_id: region,
        week: "2026-W30".into(),
        expected_pcs: 3,
        enrolled: 2,
        reporting: 2,
        silent: 0,
        with_banned: 0,
        with_approved: 2,
        known: Some(2),
        silent_with_banned: Some(0),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    first
        .freeze_weekly_figures(
            std::slice::from_ref(&frozen),
            &[],
            &super::officer::list("2026-W30", T0),
            T0,
        )
        .await
        .expect("freeze");
    assert_eq!(
        second
            .weekly_figures_of_week("2026-W30")
            .await
            .expect("read"),
        [frozen]
    );
}
