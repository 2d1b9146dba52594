//! The `Store` contract: every backend must pass the same checks. Each check is a
//! function over `&dyn Store` (or two stores on one database, as two collector
//! processes have); `contract_tests!` turns them into tests for a backend.
//!
//! PostgreSQL runs against a fresh database per test (`ScratchDatabase`, next to
//! `SVERKA_TEST_POSTGRES` or `postgres://127.0.0.1:5432/test`), dropped afterwards;
//! when PostgreSQL is unreachable these tests fail and say so.
//!
//! Here: the helpers every check uses, the macro and the backend openers. The checks,
//! by topic: `organizations.rs` (the tree, enrollment, users, sessions and tokens),
//! `reports.rs` (reports, findings, inventories, catalog revisions), `dashboard.rs`
//! (counters, coverage, per-organization counts, audit, handled marks, weekly figures),
//! `lifecycle.rs` (the enrollment allowance, retiring and merging hosts),
//! `activity.rs` (application use per week, frozen with the week; the counts against
//! the day rows at every cut-off), `federation.rs` (a lower collector's figures under
//! its link, stale and resent ones, a revoked link; the lower side's upstream),
//! `concurrency.rs` (at once, on one store and on two over one database) and
//! `migration.rs` (SQLite into PostgreSQL, SQLite's write-ahead log).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod activity;
mod concurrency;
mod dashboard;
mod federation;
mod lifecycle;
mod migration;
mod notifications;
mod officer;
mod organizations;
mod reports;

use std::sync::Arc;
use sverka_collector::keys;
use sverka_collector::store::SqlStore;
use sverka_collector::store::scratch::ScratchDatabase;
use sverka_collector::store::{
    Enrollment, EnrollmentAllowance, EvaluatedFindings, HostFinding, NewOrganization, NewSecret,
    ReportRecord, Store, StoreError,
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
        // The allowance has checks of its own; the others enroll freely.
        allowance: EnrollmentAllowance {
            margin_percent: 0,
            margin_minimum: 10_000,
        },
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
        uses: Vec::new(),
    }
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
        // A PC's state is its last report, however old.
        expected.0 += i64::from(banned > 0);
        expected.1 += i64::from(approved > 0);
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

macro_rules! contract_tests {
    ($backend:ident, $open:expr, $open_again:path) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn organizations_form_a_tree() {
                let (store, _keep) = $open.await;
                super::organizations::organizations_form_a_tree(store.as_ref()).await;
            }
            #[tokio::test]
            async fn enrollment_follows_the_secret_and_the_machine() {
                let (store, _keep) = $open.await;
                super::organizations::enrollment_follows_the_secret_and_the_machine(store.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn a_report_is_stored_exactly_once() {
                let (store, _keep) = $open.await;
                super::reports::a_report_is_stored_exactly_once(store.as_ref()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn report_ids_are_unique_per_host() {
                let (store, _keep) = $open.await;
                super::reports::report_ids_are_unique_per_host(store.as_ref()).await;
            }
            #[tokio::test]
            async fn findings_open_resolve_and_come_back() {
                let (store, _keep) = $open.await;
                super::reports::findings_open_resolve_and_come_back(store.as_ref()).await;
            }
            #[tokio::test]
            async fn identical_inventories_are_stored_once() {
                let (store, _keep) = $open.await;
                super::reports::identical_inventories_are_stored_once(store.as_ref()).await;
            }
            #[tokio::test]
            async fn a_link_places_the_lower_tree_and_counts_it() {
                let (store, _keep) = $open.await;
                super::federation::a_link_places_the_lower_tree_and_counts_it(store.as_ref()).await;
            }
            #[tokio::test]
            async fn the_lower_collector_keeps_its_upstream_and_cursor() {
                let (store, _keep) = $open.await;
                super::federation::the_lower_collector_keeps_its_upstream_and_cursor(
                    store.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn frozen_weeks_count_what_the_lower_collector_froze() {
                let (store, _keep) = $open.await;
                super::federation::frozen_weeks_count_what_the_lower_collector_froze(
                    store.as_ref(),
                )
                .await;
            }
            #[tokio::test]
            async fn coverage_counts_the_subtree() {
                let (store, _keep) = $open.await;
                super::dashboard::coverage_counts_the_subtree(store.as_ref()).await;
            }
            #[tokio::test]
            async fn counters_follow_the_findings() {
                let (store, _keep) = $open.await;
                super::dashboard::counters_follow_the_findings(store.as_ref()).await;
            }
            #[tokio::test]
            async fn catalog_revisions_and_reevaluation() {
                let (store, _keep) = $open.await;
                super::reports::catalog_revisions_and_reevaluation(store.as_ref()).await;
            }
            #[tokio::test]
            async fn users_sessions_and_tokens() {
                let (store, _keep) = $open.await;
                super::organizations::users_sessions_and_tokens(store.as_ref()).await;
            }
            #[tokio::test]
            async fn audit_notes_and_weekly_figures() {
                let (store, _keep) = $open.await;
                super::dashboard::audit_notes_and_weekly_figures(store.as_ref()).await;
            }
            #[tokio::test]
            async fn per_organization_counts_and_host_pages() {
                let (store, _keep) = $open.await;
                super::dashboard::per_organization_counts_and_host_pages(store.as_ref()).await;
            }
            #[tokio::test]
            async fn silent_pcs_keep_their_last_known_state() {
                let (store, _keep) = $open.await;
                super::officer::silent_pcs_keep_their_last_known_state(store.as_ref()).await;
            }
            #[tokio::test]
            async fn frozen_weeks_keep_the_pcs_they_counted() {
                let (store, _keep) = $open.await;
                super::officer::frozen_weeks_keep_the_pcs_they_counted(store.as_ref()).await;
            }
            #[tokio::test]
            async fn worklist_searches_and_filters() {
                let (store, _keep) = $open.await;
                super::officer::worklist_searches_and_filters(store.as_ref()).await;
            }
            #[tokio::test]
            async fn worklist_pages_cut_anywhere_agree_with_the_whole_order() {
                let (store, _keep) = $open.await;
                super::officer::worklist_pages_cut_anywhere_agree_with_the_whole_order(
                    store.as_ref(),
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_reports_all_land() {
                let (store, _keep) = $open.await;
                super::concurrency::concurrent_reports_all_land(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn check_ins_at_once_are_each_stored_once() {
                let (store, _keep) = $open.await;
                super::concurrency::check_ins_at_once_are_each_stored_once(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_bad_report_fails_alone() {
                let (store, _keep) = $open.await;
                super::concurrency::a_bad_report_fails_alone(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crossing_new_inventories_all_land() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::concurrency::crossing_new_inventories_all_land(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_stores_store_each_report_once() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::concurrency::two_stores_store_each_report_once(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_job_runs_once_across_stores() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::concurrency::a_job_runs_once_across_stores(store, second).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn what_one_store_writes_the_other_reads_at_once() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::federation::what_one_store_writes_the_other_reads_at_once(store, second)
                    .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn catalog_revisions_are_shared() {
                let (store, keep) = $open.await;
                let second = $open_again(&keep).await;
                super::concurrency::catalog_revisions_are_shared(store, second).await;
            }
            #[tokio::test]
            async fn uses_are_counted_per_week_and_frozen_with_it() {
                let (store, _keep) = $open.await;
                super::activity::uses_are_counted_per_week_and_frozen_with_it(store.as_ref()).await;
            }
            #[tokio::test]
            async fn changes_are_told_once_per_window() {
                let (store, _keep) = $open.await;
                super::notifications::changes_are_told_once_per_window(store.as_ref()).await;
            }
            #[tokio::test]
            async fn the_outbox_sends_each_notification_once() {
                let (store, _keep) = $open.await;
                super::notifications::the_outbox_sends_each_notification_once(store.as_ref()).await;
            }
            #[tokio::test]
            async fn notification_settings_are_checked() {
                let (store, _keep) = $open.await;
                super::notifications::notification_settings_are_checked(store.as_ref()).await;
            }
            #[tokio::test]
            async fn use_counts_follow_the_day_rows_at_every_cut_off() {
                let (store, _keep) = $open.await;
                super::activity::use_counts_follow_the_day_rows_at_every_cut_off(store.as_ref())
                    .await;
            }
            #[tokio::test]
            async fn evaluating_a_missing_host_is_not_found() {
                let (store, _keep) = $open.await;
                super::reports::evaluating_a_missing_host_is_not_found(store.as_ref()).await;
            }
            #[tokio::test]
            async fn a_finding_is_never_seen_earlier_than_it_was() {
                let (store, _keep) = $open.await;
                super::reports::a_finding_is_never_seen_earlier_than_it_was(store.as_ref()).await;
            }
            #[tokio::test]
            async fn enrollment_stops_at_the_allowance() {
                let (store, _keep) = $open.await;
                super::lifecycle::enrollment_stops_at_the_allowance(store.as_ref()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn enrollments_at_once_stop_at_the_allowance() {
                let (store, _keep) = $open.await;
                super::lifecycle::enrollments_at_once_stop_at_the_allowance(store).await;
            }
            #[tokio::test]
            async fn retired_hosts_leave_every_count() {
                let (store, _keep) = $open.await;
                super::lifecycle::retired_hosts_leave_every_count(store.as_ref()).await;
            }
            #[tokio::test]
            async fn a_duplicate_merges_into_the_host_it_duplicates() {
                let (store, _keep) = $open.await;
                super::lifecycle::a_duplicate_merges_into_the_host_it_duplicates(store.as_ref())
                    .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_machine_enrolled_at_once_is_one_host() {
                let (store, _keep) = $open.await;
                super::concurrency::one_machine_enrolled_at_once_is_one_host(store).await;
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

/// The SQLite database of a deployment copied into PostgreSQL with all its history
/// (`migration.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrates_to_postgres_with_all_its_history() {
    migration::sqlite_migrates_to_postgres_with_all_its_history().await;
}

/// SQLite's write-ahead log starts over under a stream of reports (`migration.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_ahead_log_starts_over_under_a_stream_of_reports() {
    migration::sqlite_write_ahead_log_starts_over_under_a_stream_of_reports().await;
}

/// The backend follows the URL's scheme (a plain path is a SQLite file, created with its
/// folder); any other scheme, or nothing, is an error that names what it takes.
#[tokio::test]
async fn the_database_url_chooses_the_backend() {
    let folder = tempfile::tempdir().expect("tempdir");
    for url in [
        format!("sqlite://{}", folder.path().join("url.db").display()),
        format!("sqlite:{}", folder.path().join("colon.db").display()),
        folder
            .path()
            .join("new/folder/plain.db")
            .display()
            .to_string(),
    ] {
        let store = SqlStore::open(&url, 4).await.expect("sqlite url");
        assert_eq!(store.backend_name(), "sqlite", "{url}");
        store.close().await;
    }
    assert!(folder.path().join("new/folder/plain.db").is_file());
    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let store = SqlStore::open(database.url(), 4)
        .await
        .expect("postgres url");
    assert_eq!(store.backend_name(), "postgres");
    store.close().await;
    for url in ["mysql://localhost/sverka", "sqlite://", ""] {
        match SqlStore::open(url, 4).await {
            Err(StoreError::Invalid(message)) => assert!(
                message.contains("sqlite://") && message.contains("postgres://"),
                "{message}"
            ),
            other => panic!("{url:?} gave {other:?}"),
        }
    }
}

/// The collector's PostgreSQL connections turn JIT off and price random reads as on
/// SSDs (`PLANNER_SETTINGS`), and the server takes them; a setting the URL's `options`
/// already makes is the administrator's and stays as the URL says.
#[tokio::test]
async fn postgres_connections_carry_the_planner_settings_unless_the_url_sets_them() {
    use sqlx::Connection;
    use sverka_collector::store::dialect::postgres::{connect_options, with_planner_settings};
    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    async fn shown(url: &str) -> (String, String) {
        let options = with_planner_settings(connect_options(url).expect("url parses"));
        let mut connection = sqlx::PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|error| panic!("connecting with {options:?}: {error}"));
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut connection)
            .await
            .expect("SHOW jit");
        let cost: String = sqlx::query_scalar("SHOW random_page_cost")
            .fetch_one(&mut connection)
            .await
            .expect("SHOW random_page_cost");
        let _ = connection.close().await;
        (jit, cost)
    }
    assert_eq!(
        shown(database.url()).await,
        ("off".to_string(), "1.1".to_string())
    );
    let separator = if database.url().contains('?') {
        '&'
    } else {
        '?'
    };
    for (chosen, expected) in [
        ("-c%20jit%3Don", ("on", "1.1")),
        ("--random-page-cost%3D3", ("off", "3")),
        ("-cjit%3Don%20-c%20random_page_cost%3D2", ("on", "2")),
    ] {
        let url = format!("{}{separator}options={chosen}", database.url());
        assert_eq!(
            shown(&url).await,
            (expected.0.to_string(), expected.1.to_string()),
            "{url}"
        );
    }
}

/// Migration 0020 makes the worklist search's trigram index where `pg_trgm` can be
/// created. A role without CREATE on its database (it may create tables, not
/// extensions) migrates without the index, and the search gives the same answers.
#[tokio::test]
async fn postgres_without_pg_trgm_migrates_and_searches_the_same() {
    use sqlx::Connection;
    async fn has_search_index(url: &str) -> bool {
        let mut connection = sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'host_apps_search_trigrams')",
        )
        .fetch_one(&mut connection)
        .await
        .expect("pg_indexes")
    }
    let with_rights = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    open_postgres_again(&with_rights).await;
    assert!(has_search_index(with_rights.url()).await);

    let database = ScratchDatabase::create()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let role = format!("{}_plain", database.name());
    let mut admin = sqlx::PgConnection::connect(database.url())
        .await
        .expect("admin connection");
    for statement in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .expect("role set-up");
    }
    // The test's own login, acting as that role from the start of every session.
    let separator = if database.url().contains('?') {
        '&'
    } else {
        '?'
    };
    let as_role = format!("{}{separator}options=-c%20role%3D{role}", database.url());
    let store = SqlStore::open_postgres(&as_role, 4)
        .await
        .unwrap_or_else(|error| panic!("migrating as {role}: {error}"));
    assert!(!has_search_index(database.url()).await);
    officer::worklist_searches_and_filters(&store).await;
    drop(store);
    let _ = admin.close().await;
    drop(database);
    let mut cleanup = sqlx::PgConnection::connect(with_rights.url())
        .await
        .expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
        .execute(&mut cleanup)
        .await
        .expect("drop role");
}
