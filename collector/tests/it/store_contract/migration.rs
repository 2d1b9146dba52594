//! SQLite's data copied into PostgreSQL, and SQLite's write-ahead log under a stream of
//! reports. The tests themselves are declared in `mod.rs`, so that their names stay
//! `store_contract::…`.

use super::{DAY, T0, enrollment, finding, host, open_sqlite, organization, report, secret};
use sverka_collector::store::scratch::ScratchDatabase;
use sverka_collector::store::{SqlStore, Store, StoreError};

/// A deployment's SQLite database, filled through the Store API with everything it
/// keeps (an organization tree three levels deep, secrets revoked and expiring, hosts
/// enrolled and re-enrolled, reports with findings that open, resolve, come back and
/// are re-evaluated, shared inventories, catalog revisions), copied into PostgreSQL:
/// every Store query answers the same on both, ids continue after the copied ones,
/// and a non-empty target is refused unless replacing is asked for.
pub async fn sqlite_migrates_to_postgres_with_all_its_history() {
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
            // Every PC used MAX the day before each report; some used Telegram too.
            record.uses = vec![sverka_collector::store::AppUse {
                app_id: "max".into(),
                status: sverka_shared::AppStatus::Approved,
                used_at: T0 + day * DAY - 3_600,
            }];
            if index.is_multiple_of(2) {
                record.uses.push(sverka_collector::store::AppUse {
                    app_id: "telegram".into(),
                    status: sverka_shared::AppStatus::Banned,
                    used_at: T0 + day * DAY - 60,
                });
            }
            source.record_report(record).await.expect("report");
        }
        if index == 5 {
            source
                .record_report(report("late", host_id, T0 + DAY, Some(vec![])))
                .await
                .expect("stale");
        }
    }
    source
        .set_organization_report_recipients(schools[0], Some("ivanova@edu.example"))
        .await
        .expect("recipients to copy");
    source
        .set_organization_digest_recipients(schools[1], Some("it@school.example"))
        .await
        .expect("digest recipients to copy");
    source
        .set_organization_webhook(
            schools[0],
            Some(&sverka_collector::store::Webhook {
                url: "https://region.example/hook".into(),
                secret: "0123456789abcdef".into(),
            }),
        )
        .await
        .expect("a webhook to copy");
    let notification = sverka_collector::store::NewNotification {
        organization_id: schools[0],
        channel: sverka_collector::store::Channel::Webhook,
        day: None,
        covered_from: T0,
        covered_until: T0 + DAY,
        destination: "https://region.example/hook".into(),
        payload: Some("{}".into()),
    };
    source
        .record_notification(&notification, T0 + DAY)
        .await
        .expect("a notification to copy");
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
    assert_eq!(copied["app_use_days"], 9 * 4 + 5 * 4);
    assert_eq!(copied["notifications"], 1);
    let target: &dyn Store = &postgres;
    assert_eq!(
        source.notifications(schools[0], 10).await.expect("s"),
        target.notifications(schools[0], 10).await.expect("t")
    );
    assert_eq!(
        source.organization_webhook(schools[0]).await.expect("s"),
        target.organization_webhook(schools[0]).await.expect("t")
    );

    assert_eq!(
        source.organizations().await.expect("source"),
        target.organizations().await.expect("target")
    );
    let since = T0 + 2 * DAY;
    assert_eq!(
        source
            .organization_use(T0 - DAY, T0 + 4 * DAY)
            .await
            .expect("s"),
        target
            .organization_use(T0 - DAY, T0 + 4 * DAY)
            .await
            .expect("t")
    );
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
pub async fn sqlite_write_ahead_log_starts_over_under_a_stream_of_reports() {
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
