//! Reports, enrollments, jobs and catalog revisions arriving at once, on one store and
//! on two stores over one database (two collector processes).

use super::{T0, counters_match_findings, enrollment, finding, host, organization, report, secret};
use std::sync::Arc;
use sverka_collector::store::{Store, StoreError};

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
