//! Times of use through the agent API in-process (issue 20): taken from the agent's
//! findings only for what the collector's own evaluation found, and only when
//! plausible.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use sverka_shared::Strength;

use super::api::{enrolled, harness, report, upload};

/// An agent finding as the agent reports it, with its time of last use.
fn agent_finding(
    app: &str,
    status: sverka_shared::AppStatus,
    last_used: &str,
) -> sverka_shared::Finding {
    sverka_shared::Finding {
        app: app.into(),
        name: app.to_uppercase(),
        vendor: String::new(),
        status,
        strength: Strength::Installed,
        users: vec![],
        evidence: vec![],
        last_used: Some(last_used.into()),
        last_used_source: Some("data_dir".into()),
    }
}

/// Times of use are taken from the agent's findings only for applications the
/// collector's own evaluation found, only when plausible (not after the scan by more
/// than five minutes, not before 2000), and count in the week they fall in.
#[tokio::test]
async fn times_of_use_count_only_for_what_the_collector_found_and_only_when_plausible() {
    use sverka_shared::AppStatus;
    let h = harness().await;
    let host = enrolled(&h.app, &h.secret_a, "machine-use").await;
    let mut first = upload("machine-use", &["telegram-desktop", "max", "bash"], true);
    first.scan.scanned_at = "2026-11-22T08:00:00Z".into();
    first.scan.findings = vec![
        agent_finding("max", AppStatus::Approved, "2026-11-21T10:00:00Z"),
        // Three minutes after the scan: counts as the scan's time.
        agent_finding("telegram", AppStatus::Banned, "2026-11-22T08:03:00Z"),
        // The collector did not find Viber on this PC: the agent's word alone is no use.
        agent_finding("viber", AppStatus::Banned, "2026-11-21T10:00:00Z"),
    ];
    assert_eq!(
        report(&h.app, &host.host_key, &first).await.status,
        StatusCode::OK
    );

    // A check-in whose times are not to be trusted: a day after the scan, and 1980.
    let mut check_in = upload("machine-use", &["telegram-desktop", "max", "bash"], false);
    check_in.scan.scanned_at = "2026-11-22T09:00:00Z".into();
    check_in.scan.findings = vec![
        agent_finding("max", AppStatus::Approved, "2026-11-23T09:00:00Z"),
        agent_finding("telegram", AppStatus::Banned, "1980-01-01T00:00:00Z"),
        agent_finding("telegram", AppStatus::Banned, "not a time"),
    ];
    assert_eq!(
        report(&h.app, &host.host_key, &check_in).await.status,
        StatusCode::OK
    );

    let scan = 1_795_334_400; // 2026-11-22T08:00:00Z
    let days = h
        .store
        .host_use_days(host.host_id, scan - 7 * 86_400)
        .await
        .expect("days");
    let uses: Vec<(&str, &str, i64, i64)> = days
        .iter()
        .map(|day| {
            (
                day.app_id.as_str(),
                day.status.as_str(),
                day.first_used_at,
                day.last_used_at,
            )
        })
        .collect();
    assert_eq!(
        uses,
        vec![
            ("max", "approved", scan - 79_200, scan - 79_200),
            ("telegram", "banned", scan, scan),
        ]
    );
    let (statuses, _) = h
        .store
        .organization_use(scan - 2 * 86_400, scan + 86_400)
        .await
        .expect("use");
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|row| row.pcs == 1 && row.organization_id == h.school_a)
    );
}
