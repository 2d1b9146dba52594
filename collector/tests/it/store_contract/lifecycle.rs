//! Hosts' lifecycle: the enrollment allowance, retiring, merging a duplicate, the
//! recent enrollments, and that a retired host leaves every count while its history
//! stays.

use super::*;

fn with_allowance(secret: &(i64, String), machine_id: &str) -> Enrollment {
    Enrollment {
        allowance: EnrollmentAllowance::default(),
        ..enrollment(secret, machine_id)
    }
}

fn is_allowance_error(result: &Result<sverka_collector::store::EnrolledHost, StoreError>) -> bool {
    matches!(result, Err(StoreError::Rejected(message)) if message.contains("allowance of"))
}

pub async fn enrollment_stops_at_the_allowance(store: &dyn Store) {
    // Expecting 10 PCs: 10 + max(20 %, 5) = 15 active hosts.
    let school = organization(store, "S", None, 10).await;
    let first_secret = secret(store, school, None).await;
    let second_secret = secret(store, school, None).await;
    for pc in 0..15 {
        // Both secrets draw on the organization's one allowance.
        let secret = if pc % 2 == 0 {
            &first_secret
        } else {
            &second_secret
        };
        store
            .enroll(with_allowance(secret, &format!("m{pc}")), T0 + pc)
            .await
            .expect("within the allowance");
    }
    let over = store
        .enroll(with_allowance(&first_secret, "m15"), T0 + 20)
        .await;
    assert!(is_allowance_error(&over), "{over:?}");
    // A machine enrolled before gets a new key: no new host.
    let again = store
        .enroll(with_allowance(&first_secret, "m3"), T0 + 21)
        .await
        .expect("re-enrolling a known machine");
    assert!(again.re_enrolled);
    // Retiring a host makes room; its key stops working.
    let retired = store
        .retire_host(again.host_id, T0 + 22)
        .await
        .expect("retire");
    assert_eq!(retired.organization_id, school);
    assert_eq!(
        store.host_credentials(again.host_id).await.expect("read"),
        None
    );
    let newcomer = store
        .enroll(with_allowance(&second_secret, "m15"), T0 + 23)
        .await
        .expect("room after retiring");
    // The retired machine coming back needs room too, and gets its host back.
    let back = store
        .enroll(with_allowance(&first_secret, "m3"), T0 + 24)
        .await;
    assert!(is_allowance_error(&back), "{back:?}");
    store
        .retire_host(newcomer.host_id, T0 + 25)
        .await
        .expect("retire");
    let back = store
        .enroll(with_allowance(&first_secret, "m3"), T0 + 26)
        .await
        .expect("back within the allowance");
    assert_eq!(back.host_id, again.host_id);
    assert!(
        store
            .host_credentials(back.host_id)
            .await
            .expect("read")
            .is_some()
    );
    // The recent enrollments name the secret of each host, newest first.
    let recent = store.recent_enrollments(school, 100).await.expect("recent");
    assert_eq!(recent.len(), 16);
    assert_eq!(recent[0].host_id, newcomer.host_id);
    assert_eq!(recent[0].secret_id, Some(second_secret.0));
    assert!(recent[0].retired_at.is_some());
    assert_eq!(
        recent
            .iter()
            .filter(|host| host.secret_id == Some(first_secret.0))
            .count(),
        8
    );
    assert_eq!(
        store
            .recent_enrollments(school, 3)
            .await
            .expect("recent")
            .len(),
        3
    );
}

pub async fn enrollments_at_once_stop_at_the_allowance(store: Arc<dyn Store>) {
    // Expecting 1 PC: 1 + 5 = 6 active hosts, whatever the race.
    let school = organization(store.as_ref(), "S", None, 1).await;
    let secret = secret(store.as_ref(), school, None).await;
    let attempts = (0..40).map(|pc| {
        let store = store.clone();
        let enrollment = with_allowance(&secret, &format!("burst-{pc}"));
        tokio::spawn(async move { store.enroll(enrollment, T0).await })
    });
    let mut enrolled = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("task") {
            Ok(_) => enrolled += 1,
            refused => assert!(is_allowance_error(&refused), "{refused:?}"),
        }
    }
    assert_eq!(enrolled, 6);
}

pub async fn retired_hosts_leave_every_count(store: &dyn Store) {
    let region = organization(store, "R", None, 0).await;
    let school = organization(store, "S", Some(region), 3).await;
    let kept = host(store, school, "kept").await;
    let gone = host(store, school, "gone").await;
    let silent = host(store, school, "silent").await;
    for (index, host_id) in [kept, gone].into_iter().enumerate() {
        store
            .record_report(report(
                &format!("0190a0b0-0000-7000-8000-00000000010{index}"),
                host_id,
                T0,
                Some(vec![
                    finding("telegram", "banned"),
                    finding("max", "approved"),
                ]),
            ))
            .await
            .expect("report");
    }
    let since = T0 - DAY;
    let counts = |coverage: &[sverka_collector::store::Coverage]| {
        let row = &coverage[0];
        (
            row.enrolled,
            row.reporting,
            row.with_banned,
            row.with_approved,
        )
    };
    assert_eq!(
        counts(&store.coverage(region, since).await.expect("c")),
        (3, 2, 2, 2)
    );
    store.retire_host(gone, T0 + 1).await.expect("retire");
    store.retire_host(silent, T0 + 1).await.expect("retire");
    // Retiring twice changes nothing.
    store.retire_host(silent, T0 + 5).await.expect("again");
    assert_eq!(
        counts(&store.coverage(region, since).await.expect("c")),
        (1, 1, 1, 1)
    );
    assert_eq!(
        counts(&store.coverage(school, since).await.expect("c")),
        (1, 1, 1, 1)
    );
    let per_organization = store
        .organization_counts(since, since)
        .await
        .expect("counts");
    let row = per_organization
        .iter()
        .find(|row| row.organization_id == school)
        .expect("the school's row");
    assert_eq!(
        (
            row.enrolled,
            row.reporting,
            row.silent,
            row.with_banned,
            row.with_approved
        ),
        (1, 1, 0, 1, 1)
    );
    let violations = store.violations(region, true).await.expect("violations");
    assert_eq!(
        violations.iter().map(|row| row.host_id).collect::<Vec<_>>(),
        vec![kept]
    );
    assert!(
        store
            .silent_hosts(region, T0 + DAY)
            .await
            .expect("silent")
            .iter()
            .all(|row| row.host_id == kept)
    );
    let listed: Vec<i64> = store
        .host_summaries(school)
        .await
        .expect("summaries")
        .into_iter()
        .map(|row| row.host_id)
        .collect();
    assert_eq!(listed, vec![kept]);
    // Its history stays.
    assert_eq!(store.report_count(gone).await.expect("reports"), 1);
    assert!(!store.finding_events(gone).await.expect("events").is_empty());
    assert_eq!(store.host_apps(gone).await.expect("apps").len(), 2);
    assert!(store.host_detail(gone).await.expect("detail").is_some());
    assert!(matches!(
        store.retire_host(9_999, T0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn a_duplicate_merges_into_the_host_it_duplicates(store: &dyn Store) {
    let school = organization(store, "S", None, 3).await;
    let other_school = organization(store, "T", None, 3).await;
    let original = host(store, school, "original").await;
    let duplicate = host(store, school, "duplicate").await;
    let elsewhere = host(store, other_school, "elsewhere").await;
    for (duplicate_id, into) in [(duplicate, duplicate), (duplicate, elsewhere)] {
        assert!(matches!(
            store.merge_host(duplicate_id, into, T0).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        store.merge_host(duplicate, 9_999, T0).await,
        Err(StoreError::NotFound(_))
    ));
    let merged = store
        .merge_host(duplicate, original, T0 + 1)
        .await
        .expect("merge");
    assert_eq!(
        (merged.host_id, merged.organization_id),
        (duplicate, school)
    );
    assert_eq!(store.host_credentials(duplicate).await.expect("read"), None);
    // Nothing merges into a retired host.
    let third = host(store, school, "third").await;
    assert!(matches!(
        store.merge_host(third, duplicate, T0 + 2).await,
        Err(StoreError::Invalid(_))
    ));
    let recent = store.recent_enrollments(school, 10).await.expect("recent");
    let row = recent
        .iter()
        .find(|row| row.host_id == duplicate)
        .expect("listed");
    assert_eq!(
        (row.retired_at, row.merged_into),
        (Some(T0 + 1), Some(original))
    );
    assert_eq!(store.coverage(school, 0).await.expect("c")[0].enrolled, 2);
}
