//! The `Store` contract: every backend must pass the same checks. Each check is a
//! function over `&dyn Store` (or two stores on one database, as two collector
//! processes have); `contract_tests!` turns them into tests for a backend.
//!
//! PostgreSQL runs against a fresh database per test (`ScratchDatabase`, next to
//! `SVERKA_TEST_POSTGRES` or `postgres://127.0.0.1:5432/test`), dropped afterwards;
//! when PostgreSQL is unreachable these tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use sverka_collector::keys;
use sverka_collector::store::SqlStore;
use sverka_collector::store::scratch::ScratchDatabase;
use sverka_collector::store::{
    Enrollment, EvaluatedFindings, HandledMark, HostFinding, NewAuditEntry, NewOrganization,
    NewSecret, NewSession, NewUser, ReportRecord, Role, Store, StoreError, UserChange,
    WeeklyFigures,
};

const DAY: i64 = 86_400;
const T0: i64 = 1_795_000_000;

async fn organization(store: &dyn Store, name: &str, parent: Option<i64>, expected: i64) -> i64 {
    store
        .create_organization(NewOrganization {
            parent_id: parent,
            name: name.into(),
            kind: if parent.is_none() { "region" } else { "school" }.into(),
            expected_pcs: expected,
            time_zone: None,
        })
        .await
        .expect("organization")
        .id
}

/// A secret for the organization: (id, random part).
async fn secret(store: &dyn Store, organization_id: i64, expires_at: Option<i64>) -> (i64, String) {
    let (random, secret_hash) = keys::generate();
    let info = store
        .create_secret(
            NewSecret {
                organization_id,
                secret_hash,
                expires_at,
            },
            T0,
        )
        .await
        .expect("secret");
    (info.id, random)
}

fn enrollment(secret: &(i64, String), machine_id: &str) -> Enrollment {
    Enrollment {
        secret_id: secret.0,
        secret_hash: keys::hash(&secret.1),
        machine_id: machine_id.into(),
        hostname: format!("pc-{machine_id}"),
        os_id: "astra".into(),
        os_name: "Astra Linux".into(),
        agent_version: "0.1.0".into(),
        key_hash: keys::generate().1,
    }
}

async fn host(store: &dyn Store, organization_id: i64, machine_id: &str) -> i64 {
    let secret = secret(store, organization_id, None).await;
    store
        .enroll(enrollment(&secret, machine_id), T0)
        .await
        .expect("enroll")
        .host_id
}

fn finding(app: &str, status: &str) -> HostFinding {
    HostFinding {
        app_id: app.into(),
        app_name: app.to_uppercase(),
        status: status.parse().expect("a catalog status"),
        strength: sverka_shared::Strength::Installed,
        users: vec!["teacher".into()],
        evidence: r#"[{"source":"dpkg","detail":"dpkg package x 1","scope":"machine","strength":"installed"}]"#.into(),
    }
}

fn report(id: &str, host_id: i64, at: i64, findings: Option<Vec<HostFinding>>) -> ReportRecord {
    let findings = findings.map(EvaluatedFindings::new);
    ReportRecord {
        report_id: id.into(),
        host_id,
        received_at: at,
        scanned_at: at,
        hostname: "pc".into(),
        os_id: "astra".into(),
        os_name: "Astra Linux".into(),
        agent_version: "0.1.0".into(),
        scan_errors: 0,
        inventory_digest: "a".repeat(64),
        inventory: Some(("[]".into(), 0)),
        evidence: "[]".into(),
        catalog_revision: 0,
        findings,
    }
}

pub async fn organizations_form_a_tree(store: &dyn Store) {
    let region = organization(store, "Ставропольский край", None, 0).await;
    let town = organization(store, "Город", Some(region), 2).await;
    let school = organization(store, "Школа №1", Some(town), 30).await;
    let all = store.organizations().await.expect("list");
    assert_eq!(all.len(), 3);
    let stored = store
        .organization(school)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.parent_id, Some(town));
    assert_eq!(stored.name, "Школа №1");
    assert_eq!(stored.expected_pcs, 30);
    let missing_parent = store
        .create_organization(NewOrganization {
            parent_id: Some(9_999),
            name: "x".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await;
    assert!(matches!(missing_parent, Err(StoreError::NotFound(_))));
    let unnamed = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "  ".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await;
    assert!(matches!(unnamed, Err(StoreError::Invalid(_))));
    assert_eq!(store.organization(9_999).await.expect("get"), None);

    // Time zones: set on creation or later, cleared by an empty name, checked.
    let zoned = store
        .create_organization(NewOrganization {
            parent_id: Some(region),
            name: "Самара".into(),
            kind: "municipality".into(),
            expected_pcs: 0,
            time_zone: Some("Europe/Samara".into()),
        })
        .await
        .expect("zoned");
    assert_eq!(zoned.time_zone.as_deref(), Some("Europe/Samara"));
    assert_eq!(
        store.organization(zoned.id).await.expect("get"),
        Some(zoned.clone())
    );
    let bad_zone = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "Марс".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: Some("Mars/Olympus".into()),
        })
        .await;
    assert!(matches!(bad_zone, Err(StoreError::Invalid(_))));
    let moved = store
        .set_organization_time_zone(town, Some("Asia/Yekaterinburg"))
        .await
        .expect("set");
    assert_eq!(moved.time_zone.as_deref(), Some("Asia/Yekaterinburg"));
    assert!(matches!(
        store
            .set_organization_time_zone(town, Some("Nowhere"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .set_organization_time_zone(9_999, Some("Europe/Moscow"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let cleared = store
        .set_organization_time_zone(zoned.id, None)
        .await
        .expect("clear");
    assert_eq!(cleared.time_zone, None);
    assert_eq!(
        store
            .organization(town)
            .await
            .expect("get")
            .and_then(|town| town.time_zone),
        Some("Asia/Yekaterinburg".into())
    );
}

pub async fn enrollment_follows_the_secret_and_the_machine(store: &dyn Store) {
    let school_a = organization(store, "A", None, 10).await;
    let school_b = organization(store, "B", None, 10).await;
    let secret_a = secret(store, school_a, None).await;
    let secret_b = secret(store, school_b, None).await;

    let first = store
        .enroll(enrollment(&secret_a, "machine-1"), T0)
        .await
        .expect("enroll");
    assert_eq!(first.organization.id, school_a);
    assert!(!first.re_enrolled);
    let key_before = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host")
        .key_hash;

    // A reinstalled agent: same machine, same host, a new key.
    let again = store
        .enroll(enrollment(&secret_a, "machine-1"), T0 + 10)
        .await
        .expect("re-enroll");
    assert_eq!(again.host_id, first.host_id);
    assert!(again.re_enrolled);
    let credentials = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host");
    assert_ne!(credentials.key_hash, key_before);
    assert_eq!(credentials.machine_id, "machine-1");
    assert_eq!(credentials.organization_id, school_a);

    // The secret decides the organization: school B's secret never touches A's host.
    let in_b = store
        .enroll(enrollment(&secret_b, "machine-1"), T0)
        .await
        .expect("enroll in B");
    assert_ne!(in_b.host_id, first.host_id);
    assert_eq!(in_b.organization.id, school_b);
    let a_after = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host");
    assert_eq!(a_after.key_hash, credentials.key_hash);

    // A wrong secret, a revoked one, an expired one.
    let mut forged = enrollment(&secret_a, "machine-2");
    forged.secret_hash = keys::hash("0".repeat(64).as_str());
    assert!(matches!(
        store.enroll(forged, T0).await,
        Err(StoreError::Rejected(_))
    ));
    store
        .revoke_secret(secret_a.0, T0 + 20)
        .await
        .expect("revoke");
    assert!(matches!(
        store.enroll(enrollment(&secret_a, "machine-3"), T0 + 30).await,
        Err(StoreError::Rejected(message)) if message.contains("revoked")
    ));
    let expiring = secret(store, school_a, Some(T0 + 100)).await;
    assert!(
        store
            .enroll(enrollment(&expiring, "machine-4"), T0 + 99)
            .await
            .is_ok()
    );
    assert!(matches!(
        store.enroll(enrollment(&expiring, "machine-5"), T0 + 100).await,
        Err(StoreError::Rejected(message)) if message.contains("expired")
    ));
    let listed = store.secrets(school_a).await.expect("secrets");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].revoked_at, Some(T0 + 20));
    assert!(matches!(
        store.revoke_secret(9_999, T0).await,
        Err(StoreError::NotFound(_))
    ));
}

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

/// The dashboard's counters checked against the findings themselves: every host's
/// `open_banned`/`open_approved` equals its open banned/approved findings (installed or
/// running) as `host_apps` lists them, and the overview and the coverage count the
/// hosts reporting since `since` that have any. Returns `(with_banned, with_approved)`.
async fn counters_match_findings(
    store: &dyn Store,
    parent: i64,
    organization_id: i64,
    since: i64,
) -> (i64, i64) {
    let counts_as_findings = |status: &str, apps: &[sverka_collector::store::HostApp]| {
        apps.iter()
            .filter(|app| {
                app.resolved_at.is_none()
                    && app.status.as_str() == status
                    && app.strength >= sverka_shared::Strength::Installed
            })
            .count() as i64
    };
    let mut expected = (0, 0);
    for summary in store
        .host_summaries(organization_id)
        .await
        .expect("summaries")
    {
        let apps = store.host_apps(summary.host_id).await.expect("apps");
        let banned = counts_as_findings("banned", &apps);
        let approved = counts_as_findings("approved", &apps);
        assert_eq!(
            (summary.open_banned, summary.open_approved),
            (banned, approved),
            "host {} ({:?})",
            summary.host_id,
            apps
        );
        if summary.last_seen_at.is_some_and(|seen| seen >= since) {
            expected.0 += i64::from(banned > 0);
            expected.1 += i64::from(approved > 0);
        }
    }
    let overview = store
        .organization_counts(since, since)
        .await
        .expect("counts")
        .into_iter()
        .find(|row| row.organization_id == organization_id)
        .map(|row| (row.with_banned, row.with_approved))
        .unwrap_or_default();
    assert_eq!(overview, expected, "overview of {organization_id}");
    let coverage = store
        .coverage(parent, since)
        .await
        .expect("coverage")
        .into_iter()
        .find(|row| row.organization_id == organization_id)
        .map(|row| (row.with_banned, row.with_approved))
        .expect("a coverage row per child");
    assert_eq!(coverage, expected, "coverage of {organization_id}");
    expected
}

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
    // Silent hosts are not counted, but their counters stay right.
    assert_eq!(
        counters_match_findings(store, region, school, T0 + 10 * DAY).await,
        (0, 0)
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
    assert_eq!((total.with_banned, total.with_approved), (1, 1));
    assert_eq!(
        (a.organization_id, a.enrolled, a.reporting, a.silent),
        (school_a, 3, 2, 1)
    );
    assert!((a.approved_share() - 0.5).abs() < 1e-9);
    assert_eq!(
        (b.organization_id, b.reporting, b.silent, b.with_approved),
        (school_b, 0, 1, 0)
    );
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

/// Check-ins that change nothing arrive together (the backends apply such a batch with
/// one statement per table): each report id is stored once however often it is sent,
/// every host's open findings are seen again, and an older scan delivered late among
/// them is kept out of the findings.
pub async fn check_ins_at_once_are_each_stored_once(store: Arc<dyn Store>) {
    let school = organization(store.as_ref(), "Check-ins", None, 100).await;
    let mut hosts = Vec::new();
    for index in 0..40 {
        let host_id = host(store.as_ref(), school, &format!("check-in-{index}")).await;
        let first = report(
            &format!("first-{index}"),
            host_id,
            T0 + 10,
            Some(vec![finding("viber", "banned")]),
        );
        store.record_report(first).await.expect("first report");
        hosts.push(host_id);
    }
    let check_in = |id: String, host_id: i64, at: i64| {
        let mut check_in = report(&id, host_id, at, Some(vec![finding("viber", "banned")]));
        check_in.inventory = None;
        check_in
    };

    // Each check-in twice at once (resent after a lost answer), with a late older scan.
    let mut tasks = Vec::new();
    for (index, host_id) in hosts.iter().copied().enumerate() {
        for (kind, record) in [
            (
                "check-in",
                check_in(format!("check-in-{index}"), host_id, T0 + 20),
            ),
            (
                "check-in",
                check_in(format!("check-in-{index}"), host_id, T0 + 20),
            ),
            (
                "late",
                report(&format!("late-{index}"), host_id, T0 + 5, Some(vec![])),
            ),
        ] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                (
                    index,
                    kind,
                    store.record_report(record).await.expect("stored"),
                )
            }));
        }
    }
    let mut stored_check_ins = vec![0; hosts.len()];
    for task in tasks {
        let (index, kind, outcome) = task.await.expect("task");
        match kind {
            "late" => assert!(outcome.stale && !outcome.duplicate, "{outcome:?}"),
            _ => stored_check_ins[index] += usize::from(!outcome.duplicate),
        }
    }
    assert_eq!(stored_check_ins, vec![1; hosts.len()]);

    // One check-in per host at once, then all of them again: stored, then duplicates.
    for (wave, expect_duplicate) in [(1, false), (2, true)] {
        let mut tasks = Vec::new();
        for (index, host_id) in hosts.iter().copied().enumerate() {
            let store = store.clone();
            let record = check_in(format!("again-{index}"), host_id, T0 + 30);
            tasks.push(tokio::spawn(
                async move { store.record_report(record).await },
            ));
        }
        for task in tasks {
            let outcome = task.await.expect("task").expect("stored");
            assert_eq!(outcome.duplicate, expect_duplicate, "wave {wave}");
            assert!(!outcome.stale);
        }
    }
    for host_id in &hosts {
        assert_eq!(store.report_count(*host_id).await.expect("count"), 4);
    }
    let open = store.violations(school, false).await.expect("open");
    assert_eq!(open.len(), hosts.len());
    for row in &open {
        assert_eq!(
            (row.first_seen, row.last_seen),
            (T0 + 10, T0 + 30),
            "{row:?}"
        );
    }
}

pub async fn concurrent_reports_all_land(store: Arc<dyn Store>) {
    let school = organization(store.as_ref(), "Busy", None, 100).await;
    let mut hosts = Vec::new();
    for index in 0..50 {
        hosts.push(host(store.as_ref(), school, &format!("busy-{index}")).await);
    }
    let mut tasks = Vec::new();
    for (index, host_id) in hosts.iter().copied().enumerate() {
        for round in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("busy-{index}-{round}");
                let at = T0 + round;
                store
                    .record_report(report(
                        &id,
                        host_id,
                        at,
                        Some(vec![finding("viber", "banned")]),
                    ))
                    .await
            }));
        }
    }
    for task in tasks {
        let outcome = task.await.expect("task").expect("stored");
        assert!(!outcome.duplicate);
    }
    for host_id in &hosts {
        assert_eq!(store.report_count(*host_id).await.expect("count"), 4);
    }
    assert_eq!(
        store.violations(school, false).await.expect("open").len(),
        50
    );

    // Reports that open and resolve findings, all at once: whichever order they apply
    // in, each host's counters are those of its findings.
    let mut tasks = Vec::new();
    for (index, host_id) in hosts.iter().copied().enumerate() {
        for round in 0..4_i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let findings = match (index + round as usize) % 3 {
                    0 => vec![],
                    1 => vec![finding("viber", "banned"), finding("max", "approved")],
                    _ => vec![finding("max", "approved")],
                };
                let id = format!("flip-{index}-{round}");
                store
                    .record_report(report(&id, host_id, T0 + 10 + round, Some(findings)))
                    .await
            }));
        }
    }
    for task in tasks {
        task.await.expect("task").expect("stored");
    }
    let (with_banned, with_approved) =
        counters_match_findings(store.as_ref(), school, school, T0).await;
    // The last round (3) decides: (index + 3) % 3 == 1 for a third of the hosts.
    let last_round_banned = (0..50).filter(|index| (index + 3) % 3 == 1).count() as i64;
    let last_round_approved = (0..50).filter(|index| (index + 3) % 3 != 0).count() as i64;
    assert_eq!(
        (with_banned, with_approved),
        (last_round_banned, last_round_approved)
    );
}

fn new_user(login: &str, role: Role, organization_id: Option<i64>) -> NewUser {
    NewUser {
        login: login.into(),
        password_hash: format!("hash-of-{login}"),
        role,
        organization_id,
        language: "ru".into(),
    }
}

pub async fn users_sessions_and_tokens(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let admin = store
        .create_user(new_user("Admin", Role::Administrator, None), T0)
        .await
        .expect("admin");
    assert_eq!(admin.organization_id, None);
    let officer = store
        .create_user(new_user("officer", Role::Officer, Some(region)), T0)
        .await
        .expect("officer");
    // Logins are unique without regard to case; officers need an organization.
    assert!(matches!(
        store
            .create_user(new_user("ADMIN", Role::Administrator, None), T0)
            .await,
        Err(StoreError::Rejected(_))
    ));
    assert!(matches!(
        store
            .create_user(new_user("lost", Role::SchoolAdmin, None), T0)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .create_user(new_user("nowhere", Role::Officer, Some(9_999)), T0)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let credentials = store
        .user_credentials("ADMIN")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(credentials.user, admin);
    assert_eq!(credentials.password_hash, "hash-of-Admin");
    assert!(
        store
            .user_credentials("nobody")
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(
        store.user(officer.id).await.expect("user"),
        Some(officer.clone())
    );
    assert_eq!(store.users().await.expect("users").len(), 2);

    // Sessions: found by hash until they expire, the user is disabled or changes password.
    let session = |hash: &str, expires_at| NewSession {
        token_hash: hash.into(),
        user_id: officer.id,
        csrf_token: format!("csrf-{hash}"),
        created_at: T0,
        expires_at,
    };
    store
        .create_session(session("s1", T0 + DAY))
        .await
        .expect("s1");
    store
        .create_session(session("s2", T0 + 10))
        .await
        .expect("s2");
    let found = store
        .session("s1", T0 + 5)
        .await
        .expect("s1")
        .expect("live");
    assert_eq!(
        (found.user.id, found.csrf_token.as_str()),
        (officer.id, "csrf-s1")
    );
    assert!(
        store.session("s2", T0 + 10).await.expect("s2").is_none(),
        "expired"
    );
    assert!(store.session("s3", T0).await.expect("s3").is_none());
    store.delete_session("s1").await.expect("logout");
    assert!(store.session("s1", T0 + 5).await.expect("s1").is_none());
    store
        .create_session(session("s4", T0 + DAY))
        .await
        .expect("s4");
    store
        .update_user(
            officer.id,
            UserChange {
                language: Some("en".into()),
                ..UserChange::default()
            },
            T0,
        )
        .await
        .expect("language");
    let found = store.session("s4", T0).await.expect("s4").expect("kept");
    assert_eq!(found.user.language, "en");
    store
        .update_user(
            officer.id,
            UserChange {
                password_hash: Some("new".into()),
                ..UserChange::default()
            },
            T0,
        )
        .await
        .expect("password");
    assert!(
        store.session("s4", T0).await.expect("s4").is_none(),
        "ended"
    );
    assert_eq!(
        store
            .user_credentials("officer")
            .await
            .expect("c")
            .expect("u")
            .password_hash,
        "new"
    );

    // API tokens act as their user until revoked or the user is disabled.
    let token = store
        .create_api_token(officer.id, "reports", "token-hash", T0)
        .await
        .expect("token");
    let presented = store
        .api_token(token.id)
        .await
        .expect("token")
        .expect("live");
    assert_eq!(presented.user.id, officer.id);
    assert_eq!(presented.token_hash, "token-hash");
    assert!(
        matches!(
            store.revoke_api_token(admin.id, token.id, T0).await,
            Err(StoreError::NotFound(_))
        ),
        "another user's token"
    );
    store
        .create_session(session("s5", T0 + DAY))
        .await
        .expect("s5");
    store
        .update_user(
            officer.id,
            UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
            T0 + 1,
        )
        .await
        .expect("disable");
    assert!(
        store.api_token(token.id).await.expect("token").is_none(),
        "disabled"
    );
    assert!(store.session("s5", T0).await.expect("s5").is_none());
    assert_eq!(
        store
            .user(officer.id)
            .await
            .expect("u")
            .expect("u")
            .disabled_at,
        Some(T0 + 1)
    );
    store
        .update_user(
            officer.id,
            UserChange {
                disabled: Some(false),
                ..UserChange::default()
            },
            T0 + 2,
        )
        .await
        .expect("enable");
    assert!(store.api_token(token.id).await.expect("token").is_some());
    store
        .revoke_api_token(officer.id, token.id, T0 + 3)
        .await
        .expect("revoke");
    assert!(
        store.api_token(token.id).await.expect("token").is_none(),
        "revoked"
    );
    let listed = store.api_tokens(officer.id).await.expect("tokens");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0 + 3));
    assert!(matches!(
        store.update_user(9_999, UserChange::default(), T0).await,
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
    };
    let added = store
        .freeze_weekly_figures(
            &[
                figures(region, "2026-W46", 2),
                figures(school_a, "2026-W46", 1),
            ],
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

/// Two processes on one database: each round, every host's report is sent to both
/// stores at once (an agent retrying at the other collector) while all hosts report
/// together. Every id is stored once and acknowledged as new exactly once, and the
/// findings' lifecycle is exactly the one a single store gives.
pub async fn two_stores_store_each_report_once(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let school = organization(first.as_ref(), "Twice", None, 10).await;
    let mut hosts = Vec::new();
    for index in 0..10 {
        hosts.push(host(first.as_ref(), school, &format!("twice-{index}")).await);
    }
    let mut fresh = 0;
    for round in 0..6i64 {
        // Rounds 0-2 have Viber, 3-5 do not: it opens at round 0 and is resolved at
        // round 3.
        let findings = if round < 3 {
            vec![finding("viber", "banned")]
        } else {
            vec![]
        };
        let mut tasks = Vec::new();
        for (index, host_id) in hosts.iter().copied().enumerate() {
            let record = report(
                &format!("twice-{index}-{round}"),
                host_id,
                T0 + round * 60,
                Some(findings.clone()),
            );
            for store in [first.clone(), second.clone()] {
                let record = record.clone();
                tasks.push(tokio::spawn(
                    async move { store.record_report(record).await },
                ));
            }
        }
        for task in tasks {
            let outcome = task.await.expect("task").expect("stored");
            assert!(!outcome.stale);
            if !outcome.duplicate {
                fresh += 1;
            }
        }
    }
    assert_eq!(fresh, 60, "each of the 60 reports is new exactly once");
    for host_id in &hosts {
        assert_eq!(first.report_count(*host_id).await.expect("count"), 6);
        assert_eq!(second.report_count(*host_id).await.expect("count"), 6);
    }
    assert!(
        second
            .violations(school, false)
            .await
            .expect("open")
            .is_empty()
    );
    let history = second.violations(school, true).await.expect("all");
    assert_eq!(history.len(), 10);
    for row in &history {
        assert_eq!(
            (row.first_seen, row.last_seen, row.resolved_at),
            (T0, T0 + 120, Some(T0 + 180)),
            "{row:?}"
        );
    }
    for host_id in &hosts {
        let events = first.finding_events(*host_id).await.expect("events");
        let kinds: Vec<(&str, i64)> = events
            .iter()
            .map(|event| (event.event.as_str(), event.at))
            .collect();
        assert_eq!(kinds, [("appeared", T0), ("resolved", T0 + 180)]);
    }
    let on_first = counters_match_findings(first.as_ref(), school, school, T0).await;
    let on_second = counters_match_findings(second.as_ref(), school, school, T0).await;
    assert_eq!((on_first.0, on_first), (0, on_second));
}

/// Reports arriving together are committed together (a batch); one that cannot be
/// stored (its host is gone) fails alone, with its own error, and the others land.
pub async fn a_bad_report_fails_alone(store: Arc<dyn Store>) {
    let school = organization(store.as_ref(), "Batch", None, 10).await;
    let mut hosts = Vec::new();
    for index in 0..8 {
        hosts.push(host(store.as_ref(), school, &format!("batch-{index}")).await);
    }
    let missing_host = hosts.iter().max().copied().unwrap_or_default() + 1_000;
    let mut tasks = Vec::new();
    for (index, host_id) in hosts
        .iter()
        .copied()
        .chain(std::iter::once(missing_host))
        .enumerate()
    {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let record = report(
                &format!("batch-{index}"),
                host_id,
                T0,
                Some(vec![finding("viber", "banned")]),
            );
            (host_id, store.record_report(record).await)
        }));
    }
    for task in tasks {
        let (host_id, outcome) = task.await.expect("task");
        if host_id == missing_host {
            assert!(
                matches!(outcome, Err(StoreError::NotFound(_))),
                "a report of a host that is not there: {outcome:?}"
            );
        } else {
            assert!(!outcome.expect("stored").duplicate);
        }
    }
    for host_id in &hosts {
        assert_eq!(store.report_count(*host_id).await.expect("count"), 1);
    }
    assert_eq!(
        store.violations(school, false).await.expect("open").len(),
        8
    );
}

/// Many PCs bring the same new inventories at once, through two stores on one
/// database, each batch meeting them in another order: every report lands on the
/// first try (no batch waits on another in a cycle) and each inventory is stored once.
pub async fn crossing_new_inventories_all_land(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let school = organization(first.as_ref(), "Lab", None, 120).await;
    let mut hosts = Vec::new();
    for index in 0..120 {
        hosts.push(host(first.as_ref(), school, &format!("lab-{index}")).await);
    }
    let digests: Vec<String> = (0..16u8)
        .map(|digest| format!("{:x}", digest + 10).repeat(64))
        .collect();
    let mut tasks = Vec::new();
    for round in 0..2i64 {
        for (index, host_id) in hosts.iter().copied().enumerate() {
            // Hosts in ascending order bring the digests in descending order, so two
            // batches meet the same new inventories the other way round.
            let digest = digests
                [(digests.len() - 1 - index % digests.len() + round as usize) % digests.len()]
            .clone();
            let store = if index % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut record = report(
                    &format!("lab-{index}-{round}"),
                    host_id,
                    T0 + round * 60,
                    Some(vec![finding("viber", "banned")]),
                );
                record.inventory_digest = digest.clone();
                record.inventory = Some((format!("[\"{digest}\"]"), 1));
                store.record_report(record).await
            }));
        }
    }
    for task in tasks {
        let outcome = task.await.expect("task").expect("stored on the first try");
        assert!(!outcome.duplicate);
    }
    assert_eq!(
        first.inventory_count().await.expect("inventories"),
        digests.len() as i64
    );
    for host_id in &hosts {
        assert_eq!(second.report_count(*host_id).await.expect("count"), 2);
    }
}

/// A background job runs in one holder at a time across two stores on one database,
/// and is free again once its lease is dropped.
pub async fn a_job_runs_once_across_stores(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let lease = first
        .try_lock_job("weekly-snapshot")
        .await
        .expect("lock")
        .expect("free at first");
    assert_eq!(lease.name(), "weekly-snapshot");
    assert!(
        second
            .try_lock_job("weekly-snapshot")
            .await
            .expect("lock")
            .is_none()
    );
    assert!(
        first
            .try_lock_job("weekly-snapshot")
            .await
            .expect("lock")
            .is_none()
    );
    let other = second
        .try_lock_job("prune-reports")
        .await
        .expect("lock")
        .expect("another job is free");
    drop(lease);
    // Releasing may take a moment (PostgreSQL closes the lease's connection).
    let mut again = None;
    for _ in 0..100 {
        again = second.try_lock_job("weekly-snapshot").await.expect("lock");
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "the job is free after its lease was dropped"
    );
    assert!(
        first
            .try_lock_job("prune-reports")
            .await
            .expect("lock")
            .is_none()
    );
    drop(other);
}

/// A catalog revision saved through one store is what the other reads (a collector
/// polls `current_catalog` to follow `catalog set` run against another process), and
/// revisions saved through both at once are numbered without gaps or clashes.
pub async fn catalog_revisions_are_shared(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for index in 0..10 {
        let store = if index % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.save_catalog(&format!("# edit {index}"), T0).await
        }));
    }
    let mut revisions: Vec<i64> = Vec::new();
    for task in tasks {
        revisions.push(task.await.expect("task").expect("saved"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=10).collect::<Vec<_>>());
    let seen_by_first = first.current_catalog().await.expect("first").expect("some");
    let seen_by_second = second
        .current_catalog()
        .await
        .expect("second")
        .expect("some");
    assert_eq!(seen_by_first, seen_by_second);
    assert_eq!(seen_by_first.revision, 10);
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

/// Enrollment is one body on both databases now (it was an upsert on PostgreSQL and a
/// read-then-write on SQLite): one machine enrolled many times at once ends as one
/// host, enrolled once and re-enrolled the other times, with the key of one of them.
pub async fn one_machine_enrolled_at_once_is_one_host(store: Arc<dyn Store>) {
    let school = organization(store.as_ref(), "Школа", None, 1).await;
    let secret = secret(store.as_ref(), school, None).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let enrollment = enrollment(&secret, "same-machine");
        tasks.push(tokio::spawn(async move {
            let key_hash = enrollment.key_hash.clone();
            (
                store.enroll(enrollment, T0).await.expect("enroll"),
                key_hash,
            )
        }));
    }
    let mut enrolled = Vec::new();
    for task in tasks {
        enrolled.push(task.await.expect("task"));
    }
    let host_id = enrolled[0].0.host_id;
    assert!(enrolled.iter().all(|(host, _)| host.host_id == host_id));
    assert_eq!(
        enrolled
            .iter()
            .filter(|(host, _)| !host.re_enrolled)
            .count(),
        1,
        "exactly one enrollment created the host"
    );
    let key = store
        .host_credentials(host_id)
        .await
        .expect("credentials")
        .expect("host")
        .key_hash;
    assert!(enrolled.iter().any(|(_, key_hash)| *key_hash == key));
    assert_eq!(store.host_summaries(school).await.expect("hosts").len(), 1);
}

macro_rules! contract_tests {
    ($backend:ident, $open:expr, $open_again:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn organizations_form_a_tree() {
                let (store, _keep) = $open.await;
                super::organizations_form_a_tree(store.as_ref()).await;
            }
            #[tokio::test]
            async fn enrollment_follows_the_secret_and_the_machine() {
                let (store, _keep) = $open.await;
                super::enrollment_follows_the_secret_and_the_machine(store.as_ref()).await;
            }
            #[tokio::test]
            async fn a_report_is_stored_exactly_once() {
                let (store, _keep) = $open.await;
                super::a_report_is_stored_exactly_once(store.as_ref()).await;
            }
            #[tokio::test]
            async fn findings_open_resolve_and_come_back() {
                let (store, _keep) = $open.await;
                super::findings_open_resolve_and_come_back(store.as_ref()).await;
            }
            #[tokio::test]
            async fn identical_inventories_are_stored_once() {
                let (store, _keep) = $open.await;
                super::identical_inventories_are_stored_once(store.as_ref()).await;
            }
            #[tokio::test]
            async fn coverage_counts_the_subtree() {
                let (store, _keep) = $open.await;
                super::coverage_counts_the_subtree(store.as_ref()).await;
            }
            #[tokio::test]
            async fn counters_follow_the_findings() {
                let (store, _keep) = $open.await;
                super::counters_follow_the_findings(store.as_ref()).await;
            }
            #[tokio::test]
            async fn catalog_revisions_and_reevaluation() {
                let (store, _keep) = $open.await;
                super::catalog_revisions_and_reevaluation(store.as_ref()).await;
            }
            #[tokio::test]
            async fn users_sessions_and_tokens() {
                let (store, _keep) = $open.await;
                super::users_sessions_and_tokens(store.as_ref()).await;
            }
            #[tokio::test]
            async fn audit_notes_and_weekly_figures() {
                let (store, _keep) = $open.await;
                super::audit_notes_and_weekly_figures(store.as_ref()).await;
            }
            #[tokio::test]
            async fn per_organization_counts_and_host_pages() {
                let (store, _keep) = $open.await;
                super::per_organization_counts_and_host_pages(store.as_ref()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_reports_all_land() {
                let (store, _keep) = $open.await;
                super::concurrent_reports_all_land(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn check_ins_at_once_are_each_stored_once() {
                let (store, _keep) = $open.await;
                super::check_ins_at_once_are_each_stored_once(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_bad_report_fails_alone() {
                let (store, _keep) = $open.await;
                super::a_bad_report_fails_alone(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crossing_new_inventories_all_land() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::crossing_new_inventories_all_land(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_stores_store_each_report_once() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::two_stores_store_each_report_once(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_job_runs_once_across_stores() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::a_job_runs_once_across_stores(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn catalog_revisions_are_shared() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::catalog_revisions_are_shared(store, second).await;
            }
            #[tokio::test]
            async fn evaluating_a_missing_host_is_not_found() {
                let (store, _keep) = $open.await;
                super::evaluating_a_missing_host_is_not_found(store.as_ref()).await;
            }
            #[tokio::test]
            async fn a_finding_is_never_seen_earlier_than_it_was() {
                let (store, _keep) = $open.await;
                super::a_finding_is_never_seen_earlier_than_it_was(store.as_ref()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_machine_enrolled_at_once_is_one_host() {
                let (store, _keep) = $open.await;
                super::one_machine_enrolled_at_once_is_one_host(store).await;
            }
        }
    };
}

async fn open_sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let folder = tempfile::tempdir().expect("tempdir");
    let store = open_sqlite_again(&folder).await;
    (store, folder)
}

async fn open_sqlite_again(folder: &tempfile::TempDir) -> Arc<dyn Store> {
    let store = SqlStore::open_sqlite(&folder.path().join("contract.db"))
        .await
        .expect("open sqlite");
    Arc::new(store)
}

async fn open_postgres() -> (Arc<dyn Store>, ScratchDatabase) {
    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = open_postgres_again(&database).await;
    (store, database)
}

async fn open_postgres_again(database: &ScratchDatabase) -> Arc<dyn Store> {
    let store = SqlStore::open_postgres(database.url(), 8)
        .await
        .unwrap_or_else(|error| panic!("opening {}: {error}", database.url()));
    Arc::new(store)
}

contract_tests!(sqlite, open_sqlite(), open_sqlite_again);
contract_tests!(postgres, open_postgres(), open_postgres_again);

/// A deployment's SQLite database, filled through the Store API with everything it
/// keeps (an organization tree three levels deep, secrets revoked and expiring, hosts
/// enrolled and re-enrolled, reports with findings that open, resolve, come back and
/// are re-evaluated, shared inventories, catalog revisions), copied into PostgreSQL:
/// every Store query answers the same on both, ids continue after the copied ones,
/// and a non-empty target is refused unless replacing is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrates_to_postgres_with_all_its_history() {
    use sverka_collector::store::migrate::sqlite_to_postgres;

    let folder = tempfile::tempdir().expect("tempdir");
    let sqlite = SqlStore::open_sqlite(&folder.path().join("deployment.db"))
        .await
        .expect("open sqlite");
    let source: &dyn Store = &sqlite;
    let region = organization(source, "Край", None, 0).await;
    let town = organization(source, "Город", Some(region), 0).await;
    let village = organization(source, "Село", Some(region), 0).await;
    source
        .set_organization_time_zone(village, Some("Europe/Samara"))
        .await
        .expect("a time zone to copy");
    let schools = [
        organization(source, "Школа №1", Some(town), 3).await,
        organization(source, "Школа №2", Some(town), 2).await,
        organization(source, "Школа №3", Some(village), 4).await,
    ];
    let revoked = secret(source, schools[0], None).await;
    source
        .revoke_secret(revoked.0, T0 + 1)
        .await
        .expect("revoke");
    let _expiring = secret(source, schools[1], Some(T0 + 30 * DAY)).await;
    let mut hosts = Vec::new();
    for (index, school) in schools.iter().enumerate() {
        for pc in 0..3 {
            hosts.push(host(source, *school, &format!("m-{index}-{pc}")).await);
        }
    }
    // Re-enrolled: same host, new key.
    let again = secret(source, schools[0], None).await;
    source
        .enroll(enrollment(&again, "m-0-0"), T0 + 2)
        .await
        .expect("re-enroll");
    source.save_catalog("# first", T0).await.expect("catalog");
    for (index, host_id) in hosts.iter().copied().enumerate() {
        let apps = |day: i64| {
            let mut list = vec![finding("max", "approved")];
            if !(index + day as usize).is_multiple_of(3) {
                list.push(finding("telegram", "banned"));
            }
            if index.is_multiple_of(4) {
                list.push(finding("viber", "banned"));
            }
            list
        };
        for day in 0..4i64 {
            let mut record = report(
                &format!("m-{index}-{day}"),
                host_id,
                T0 + day * DAY,
                Some(apps(day)),
            );
            record.inventory_digest = format!("{:064}", index % 3);
            record.inventory = Some((format!("[{{\"lab\":{}}}]", index % 3), 1));
            source.record_report(record).await.expect("report");
        }
        if index == 5 {
            source
                .record_report(report("late", host_id, T0 + DAY, Some(vec![])))
                .await
                .expect("stale");
        }
    }
    // One host never reports (silent); a catalog change re-evaluates one host.
    let _silent = host(source, schools[2], "never").await;
    source
        .save_catalog("# second", T0 + 5 * DAY)
        .await
        .expect("catalog");
    source
        .apply_evaluation(hosts[4], vec![finding("wechat", "banned")], 2, T0 + 5 * DAY)
        .await
        .expect("evaluate");

    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let postgres = SqlStore::open_postgres(database.url(), 4)
        .await
        .expect("open postgres");
    let summary = sqlite_to_postgres(&sqlite, &postgres, false)
        .await
        .expect("migrate");
    let copied: std::collections::HashMap<&str, u64> = summary
        .tables
        .iter()
        .map(|(table, rows)| (table.as_str(), *rows))
        .collect();
    assert_eq!(copied["organizations"], 6);
    assert_eq!(copied["hosts"], 10);
    assert_eq!(copied["reports"], 37);
    assert_eq!(copied["catalog_revisions"], 2);
    let target: &dyn Store = &postgres;

    assert_eq!(
        source.organizations().await.expect("source"),
        target.organizations().await.expect("target")
    );
    let since = T0 + 2 * DAY;
    for organization in source.organizations().await.expect("list") {
        let id = organization.id;
        assert_eq!(
            source.secrets(id).await.expect("s"),
            target.secrets(id).await.expect("t")
        );
        for include_resolved in [false, true] {
            assert_eq!(
                source.violations(id, include_resolved).await.expect("s"),
                target.violations(id, include_resolved).await.expect("t"),
                "violations of {id}"
            );
        }
        assert_eq!(
            source.coverage(id, since).await.expect("s"),
            target.coverage(id, since).await.expect("t"),
            "coverage of {id}"
        );
        assert_eq!(
            source.silent_hosts(id, since).await.expect("s"),
            target.silent_hosts(id, since).await.expect("t")
        );
        // The hosts' open_banned/open_approved counters come along.
        assert_eq!(
            source.host_summaries(id).await.expect("s"),
            target.host_summaries(id).await.expect("t"),
            "host summaries of {id}"
        );
    }
    let copied_counts = target
        .organization_counts(since, since)
        .await
        .expect("target counts");
    assert_eq!(
        source
            .organization_counts(since, since)
            .await
            .expect("source counts"),
        copied_counts
    );
    let mut counted = Vec::new();
    for organization in target.organizations().await.expect("list") {
        counted.extend(target.host_summaries(organization.id).await.expect("t"));
    }
    assert!(
        counted.iter().any(|host| host.open_banned > 0),
        "some copied host has an open banned finding: {counted:?}"
    );
    for host_id in hosts.iter().copied().chain([9_999]) {
        assert_eq!(
            source.host_credentials(host_id).await.expect("s"),
            target.host_credentials(host_id).await.expect("t")
        );
        assert_eq!(
            source.host_state(host_id).await.expect("s"),
            target.host_state(host_id).await.expect("t")
        );
        assert_eq!(
            source.report_count(host_id).await.expect("s"),
            target.report_count(host_id).await.expect("t")
        );
        assert_eq!(
            source.finding_events(host_id).await.expect("s"),
            target.finding_events(host_id).await.expect("t")
        );
    }
    assert_eq!(
        source.hosts_for_evaluation(0, 100).await.expect("s").len(),
        target.hosts_for_evaluation(0, 100).await.expect("t").len()
    );
    // Three labs and the late report's own.
    assert_eq!(target.inventory_count().await.expect("count"), 4);
    for digest in (0..3)
        .map(|lab| format!("{lab:064}"))
        .chain(["a".repeat(64)])
    {
        assert_eq!(
            source.inventory(&digest).await.expect("s"),
            target.inventory(&digest).await.expect("t")
        );
    }
    assert_eq!(
        source.current_catalog().await.expect("s"),
        target.current_catalog().await.expect("t")
    );

    // The copy goes on where the SQLite database stopped: new ids follow the copied
    // ones, a report id already received is still a duplicate, secrets still work.
    let next = organization(target, "Школа №4", Some(village), 1).await;
    assert_eq!(next, schools[2] + 1);
    let new_host = host(target, next, "after").await;
    assert!(new_host > hosts.iter().copied().max().unwrap_or(0) + 1);
    let resent = target
        .record_report(report("m-3-3", hosts[3], T0 + 3 * DAY, Some(vec![])))
        .await
        .expect("resent");
    assert!(resent.duplicate);
    assert_eq!(
        target.save_catalog("# third", T0).await.expect("catalog"),
        3
    );
    let revoked_still = target.enroll(enrollment(&revoked, "another"), T0 + 3).await;
    assert!(matches!(revoked_still, Err(StoreError::Rejected(_))));

    // Not into a database that has rows, unless asked to replace them.
    let refused = sqlite_to_postgres(&sqlite, &postgres, false).await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(_))),
        "{refused:?}"
    );
    sqlite_to_postgres(&sqlite, &postgres, true)
        .await
        .expect("replace");
    assert_eq!(
        source.organizations().await.expect("s"),
        target.organizations().await.expect("t")
    );
    postgres.close().await;
}

/// SQLite's write-ahead log is checkpointed mostly by a background task, not by the
/// writer: under a steady stream of reports the log must still start over (at about
/// 16 MiB; 17–36 MiB were seen on a busy machine), not grow to the 64 MiB and more it
/// reached with the background task alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_ahead_log_starts_over_under_a_stream_of_reports() {
    let (store, folder) = open_sqlite().await;
    let school = organization(store.as_ref(), "Log", None, 1).await;
    let host_id = host(store.as_ref(), school, "log").await;
    let log = folder.path().join("contract.db-wal");
    let mut longest = 0;
    // A new 40 KB inventory in every report: over 64 MB through the log in all.
    for index in 0..1_200 {
        let mut record = report(&format!("log-{index}"), host_id, T0 + index, None);
        record.inventory_digest = format!("{index:064}");
        record.inventory = Some((format!("[\"{}{index}\"]", "x".repeat(40_000)), 1));
        store.record_report(record).await.expect("stored");
        longest = longest.max(std::fs::metadata(&log).map_or(0, |file| file.len()));
    }
    assert!(longest > 0, "no write-ahead log at {}", log.display());
    assert!(
        longest < 48 << 20,
        "the write-ahead log grew to {longest} bytes"
    );
}

/// The backend follows the URL's scheme; any other scheme is an error that names the
/// two it takes.
#[tokio::test]
async fn the_database_url_chooses_the_backend() {
    let folder = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", folder.path().join("url.db").display());
    let store = SqlStore::open(&url, 4).await.expect("sqlite url");
    assert_eq!(store.backend_name(), "sqlite");
    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = SqlStore::open(database.url(), 4)
        .await
        .expect("postgres url");
    assert_eq!(store.backend_name(), "postgres");
    store.close().await;
    for url in [
        "mysql://localhost/sverka",
        "/var/lib/sverka/collector.db",
        "",
    ] {
        match SqlStore::open(url, 4).await {
            Err(StoreError::Invalid(message)) => assert!(
                message.contains("sqlite://") && message.contains("postgres://"),
                "{message}"
            ),
            other => panic!("{url:?} gave {other:?}"),
        }
    }
}
