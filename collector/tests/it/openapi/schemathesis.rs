//! schemathesis (the third-party OpenAPI fuzzer, from PyPI; `scripts/test.sh` installs
//! it and names it in `SVERKA_SCHEMATHESIS`) against the collector served on a
//! loopback socket, one run per document: every check, every phase (examples,
//! coverage, fuzzing, and the stateful links it infers), real credentials for every
//! security scheme, and a bounded example budget with a fixed seed (set
//! `SVERKA_SCHEMATHESIS_SEED` to try another). No failure is allowed. The collector
//! holds the dashboard test's data: organizations, PCs with findings, users.
//!
//! Its settings are in `collector/tests/schemathesis/`, one file per document; the
//! only per-operation setting lets the two bodies whose validity no schema can state
//! be refused with a 422.

use std::path::Path;
use std::sync::Arc;
use sverka_collector::api::RateLimit;
use sverka_collector::api::enrollment::EnrollmentConfig;
use sverka_collector::api::limits::RequestLimits;
use sverka_collector::app::AppState;
use sverka_collector::catalog::CatalogState;
use sverka_collector::config::Config;
use sverka_collector::connections::{self, ConnectionLimits};
use sverka_collector::keys;
use sverka_collector::web::WebState;
use sverka_shared::federation::Detail;

const CONFIGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis");
/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "40";
const SEED: &str = "20261204";

/// Credentials for every security scheme, and the collector serving.
struct Target {
    base: String,
    host_key: String,
    enrollment_secret: String,
    link_secret: String,
    api_token: String,
    _harness: crate::dashboard::Harness,
}

async fn target() -> Target {
    let harness = crate::dashboard::harness().await;
    let store = harness.store.clone();
    let now = sverka_collector::now();
    // A host key of a PC of school A, enrolled as an agent would be.
    let (_, host_key) = crate::dashboard::enrolled_host_with_key(
        store.as_ref(),
        harness.school_a,
        "schemathesis-pc",
    )
    .await;
    // An enrollment secret of a school that expects more PCs than the fuzzer enrolls,
    // so that enrollments with it get past the secret and the allowance to the checks
    // of the rest of the body.
    let roomy_school = crate::dashboard::organization(
        store.as_ref(),
        "Schemathesis school",
        Some(harness.region),
        1_000_000,
    )
    .await;
    let (secret_id, secret_random) =
        crate::dashboard::new_secret(store.as_ref(), roomy_school).await;
    let enrollment_secret = keys::token(secret_id, &secret_random);
    let (link_random, link_hash) = keys::generate();
    let link = store
        .create_link(harness.region, &link_hash, Detail::Pcs, now)
        .await
        .expect("link");
    let link_secret = keys::token(link.id, &link_random);
    let api_token = {
        let mut officer = crate::dashboard::Client::login(&harness, "officer").await;
        officer.create_api_token("schemathesis").await
    };
    // The fuzzer sends thousands of requests from one address with one key: the
    // brakes (tested on their own in `brakes.rs`) would answer most with 429.
    let catalog = CatalogState::load(store.as_ref()).await.expect("catalog");
    let unbraked = RateLimit {
        burst: 1_000_000.0,
        per_minute: 1_000_000.0,
    };
    let app = Arc::new(
        AppState::new(store, catalog, RequestLimits::default(), unbraked).with_enrollment(
            EnrollmentConfig {
                per_address_burst: 1_000_000.0,
                per_address_per_minute: 1_000_000.0,
                ..EnrollmentConfig::default()
            },
        ),
    );
    let config = Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    let web = Arc::new(WebState::new(app, &config).expect("web state"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(connections::serve(
        listener,
        None,
        sverka_collector::server::router(web),
        ConnectionLimits::default(),
        std::future::pending::<()>(),
    ));
    Target {
        base: format!("http://{address}"),
        host_key,
        enrollment_secret,
        link_secret,
        api_token,
        _harness: harness,
    }
}

fn schemathesis() -> String {
    std::env::var("SVERKA_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "SVERKA_SCHEMATHESIS is not set: `bash scripts/test.sh` installs schemathesis \
             from PyPI and sets it (or point it at a schemathesis 4 of your own)"
        )
    })
}

/// Runs schemathesis with `config` (a file of `collector/tests/schemathesis/`) on the
/// document served at `document`; fails with its report. `enrolls`: the document has
/// the enrollment, whose secret is a body field.
async fn fuzz(document: &str, config: &str, enrolls: bool) {
    let target = target().await;
    let program = schemathesis();
    let reports = tempfile::tempdir().expect("a folder for the reports");
    let seed = std::env::var("SVERKA_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
    let location = format!("{}{document}", target.base);
    let junit = reports.path().join("junit.xml");
    // The committed settings, and a valid enrollment secret for half of the
    // enrollments (a secret is a body field, which no auth setting reaches).
    let mut settings = std::fs::read_to_string(Path::new(CONFIGS).join(config))
        .expect("the schemathesis settings");
    if enrolls {
        settings.push_str(&format!(
            "\n[dictionaries.enrollment_secret]\nvalues = [\"{}\"]\n\n\
             [parameters]\n\"body.secret\" = {{ dictionary = \"enrollment_secret\", probability = 0.5 }}\n",
            target.enrollment_secret
        ));
    }
    let config = reports.path().join(config);
    std::fs::write(&config, settings).expect("write the settings");
    let mut command = std::process::Command::new(&program);
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &location])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed, "--workers", "2", "--no-color"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit)
        .env("SVERKA_HOST_KEY", &target.host_key)
        .env("SVERKA_LINK_SECRET", &target.link_secret)
        .env("SVERKA_API_TOKEN", &target.api_token)
        // Its own caches and default report folder go to the temporary folder.
        .current_dir(reports.path());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems in {document} (seed {seed}):\n{stdout}\n{stderr}"
    );
    // It really ran: test cases were generated, and every one passed.
    let (generated, passed) = test_case_counts(&stdout)
        .unwrap_or_else(|| panic!("schemathesis printed no count of test cases:\n{stdout}"));
    assert!(
        generated >= 100 && passed == generated,
        "{generated} test cases generated, {passed} passed:\n{stdout}"
    );
    let report = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert_junit_has_operations(&report, document, Path::new(&junit));
}

/// From the summary's "2148 generated, 2148 passed, 70 skipped".
fn test_case_counts(summary: &str) -> Option<(u64, u64)> {
    let line = summary.lines().find(|line| line.contains(" generated, "))?;
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .map(|word| word.parse::<u64>().ok());
    let generated = numbers.next()??;
    let passed = if line.contains(" passed") {
        numbers.next()??
    } else {
        0
    };
    Some((generated, passed))
}

/// The JUnit report holds one test case per operation of the document.
fn assert_junit_has_operations(report: &str, document: &str, path: &Path) {
    let cases = report.matches("<testcase").count();
    assert!(
        cases >= 6,
        "{}: only {cases} operations tested for {document}:\n{report}",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_the_agent_api() {
    fuzz(
        sverka_collector::api_docs::AGENT_API_DOCUMENT_PATH,
        "agent-api.toml",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_the_dashboard_api() {
    fuzz(
        sverka_collector::api_docs::DASHBOARD_API_DOCUMENT_PATH,
        "dashboard-api.toml",
        false,
    )
    .await;
}
