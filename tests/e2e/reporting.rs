//! Reporting: the real `sverka-agent enroll` and `run` against a stand-in collector
//! (`support/collector.rs`): the key is kept, reports are spooled durably and
//! delivered oldest first, the inventory travels only when it changed, outages, rate
//! limits, rejections and revoked keys behave, the collector's catalog is fetched
//! with its ETag and used by the next scan, and HTTPS is verified (a school's own CA
//! with `--ca-cert`).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use sverka_shared::protocol::{CATALOG_PATH, ENROLL_PATH, REPORTS_PATH};
use sverka_tests::*;
use tempfile::TempDir;

/// Waits between attempts are tiny, so failure paths take milliseconds.
const FAST_RETRIES: [&str; 4] = ["--retry-base", "10ms", "--retry-cap", "50ms"];

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub(crate) fn enroll(collector: &TestCollector, root: &FixtureRoot, state: &Path) -> Run {
    run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--allow-http",
        "--secret",
        TEST_SECRET,
        "--state-dir",
        &text(state),
        "--root",
        &text(root.path()),
    ])
}

fn run_once(root: &FixtureRoot, state: &Path, extra: &[&str]) -> Run {
    let state = text(state);
    let root = text(root.path());
    let mut args = vec!["run", "--once", "--state-dir", &state, "--root", &root];
    args.extend_from_slice(&FAST_RETRIES);
    args.extend_from_slice(extra);
    run_agent(&args)
}

/// The ids of the reports waiting in the spool, oldest first.
fn spooled(state: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(state.join("spool"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".json.gz").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn files_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A PC with Telegram as a package and as a portable copy.
fn school_pc() -> FixtureRoot {
    let root = FixtureRoot::new();
    root.user("anna", 1000)
        .dpkg(&[
            ("coreutils", "9.1", "install ok installed"),
            ("telegram-desktop", "4.6.5", "install ok installed"),
        ])
        .program("/home/anna/Downloads/Telegram/Telegram");
    root
}

/// An enrolled PC: the stand-in collector, the image, the state folder.
fn enrolled() -> (TestCollector, FixtureRoot, TempDir) {
    let collector = TestCollector::start();
    let root = school_pc();
    let state = tempfile::tempdir().unwrap();
    let enrolled = enroll(&collector, &root, state.path());
    assert_eq!(enrolled.code, 0, "{}", enrolled.stderr);
    (collector, root, state)
}

#[test]
fn enroll_keeps_the_key_and_reports_carry_the_inventory_only_when_it_changed() {
    let (collector, root, state) = enrolled();
    let enrollment: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(state.path().join("enrollment.json")).unwrap())
            .unwrap();
    let key = enrollment["host_key"].as_str().unwrap().to_string();
    assert_eq!(key, "1.key1");
    assert_eq!(enrollment["host_id"], 1);
    assert_eq!(enrollment["server"], collector.url());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(state.path().join("enrollment.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let enroll_request = &collector.requests_to(ENROLL_PATH)[0];
    let sent = enroll_json(enroll_request);
    assert_eq!(sent["machine_id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(sent["hostname"], "school-pc-7");
    assert_eq!(sent["secret"], TEST_SECRET);

    let first = run_once(&root, state.path(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let requests = collector.requests_to(REPORTS_PATH);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("content-encoding"), Some("gzip"));
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    let upload = requests[0].upload();
    assert_eq!(uuid_version(&upload.report_id), 7);
    assert_eq!(
        upload.scan.host.machine_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert!(
        upload
            .scan
            .findings
            .iter()
            .any(|finding| finding.app == "telegram")
    );
    let inventory = upload
        .inventory
        .as_ref()
        .expect("the first report carries the inventory");
    let names: Vec<String> = inventory
        .iter()
        .filter_map(|observation| observation.inventory_item().map(|item| item.name))
        .collect();
    assert_eq!(names, ["coreutils", "telegram-desktop"]);
    let evidence: Vec<&str> = upload
        .evidence
        .iter()
        .filter_map(|observation| observation.path.as_deref())
        .collect();
    assert!(
        evidence.contains(&"/home/anna/Downloads/Telegram/Telegram"),
        "{evidence:?}"
    );
    assert!(
        upload
            .evidence
            .iter()
            .all(|observation| observation.inventory_item().is_none()),
        "packages travel in the inventory, not as evidence"
    );
    assert!(spooled(state.path()).is_empty());

    let unchanged = run_once(&root, state.path(), &[]);
    assert_eq!(unchanged.code, 0, "{}", unchanged.stderr);
    let second = collector.uploads()[1].clone();
    assert_eq!(second.inventory, None, "an unchanged inventory stays home");
    assert_eq!(second.inventory_digest, upload.inventory_digest);
    assert!(second.report_id > upload.report_id);

    // The collector lost it: the next report carries it again.
    collector.want_inventory_once();
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    assert_eq!(collector.uploads()[2].inventory, None);
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    assert!(collector.uploads()[3].inventory.is_some());

    // New software: a new digest and the inventory with it.
    root.append(
        "/var/lib/dpkg/status",
        "Package: vim\nStatus: install ok installed\nVersion: 9.0\n\n",
    );
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    let changed = collector.uploads()[4].clone();
    assert_ne!(changed.inventory_digest, upload.inventory_digest);
    assert_eq!(changed.inventory.map(|inventory| inventory.len()), Some(3));
}

fn uuid_version(id: &str) -> usize {
    // xxxxxxxx-xxxx-Vxxx-...
    id.chars()
        .nth(14)
        .and_then(|digit| digit.to_digit(16))
        .unwrap() as usize
}

#[test]
fn an_outage_keeps_the_report_and_the_next_run_sends_the_oldest_first() {
    let (mut collector, root, state) = enrolled();
    collector.stop();
    let down = run_once(&root, state.path(), &[]);
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(down.stderr.contains("not delivered"), "{}", down.stderr);
    assert!(
        down.stderr.contains("will be sent by the next run"),
        "{}",
        down.stderr
    );
    let waiting = spooled(state.path());
    assert_eq!(waiting.len(), 1);

    collector.restart();
    let up = run_once(&root, state.path(), &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let uploads = collector.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(
        uploads[0].report_id, waiting[0],
        "the spooled report goes first"
    );
    assert!(uploads[1].report_id > uploads[0].report_id);
    assert!(uploads[0].inventory.is_some() && uploads[1].inventory.is_some());
    assert!(spooled(state.path()).is_empty());
}

#[test]
fn rate_limits_are_waited_out_and_unavailability_keeps_the_report() {
    let (collector, root, state) = enrolled();
    collector.script(
        REPORTS_PATH,
        Reply::error(429, "rate_limited", "slow down").header("Retry-After", "1"),
    );
    let started = Instant::now();
    let limited = run_once(&root, state.path(), &[]);
    assert_eq!(limited.code, 0, "{}", limited.stderr);
    let requests = collector.requests_to(REPORTS_PATH);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].upload(),
        requests[1].upload(),
        "the same report again"
    );
    assert!(
        limited.stderr.contains("duplicate=true"),
        "the collector had stored it; a duplicate counts as acknowledged: {}",
        limited.stderr
    );
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    assert!(started.elapsed() < Duration::from_secs(20));

    for _ in 0..3 {
        collector.script(
            REPORTS_PATH,
            Reply::error(503, "unavailable", "maintenance").header("Retry-After", "0"),
        );
    }
    let unavailable = run_once(&root, state.path(), &[]);
    assert_eq!(unavailable.code, 2, "{}", unavailable.stderr);
    assert!(
        unavailable.stderr.contains("maintenance"),
        "{}",
        unavailable.stderr
    );
    assert_eq!(
        collector.requests_to(REPORTS_PATH).len(),
        5,
        "three attempts"
    );
    assert_eq!(spooled(state.path()).len(), 1);

    let recovered = run_once(&root, state.path(), &["--attempts", "1"]);
    assert_eq!(recovered.code, 0, "{}", recovered.stderr);
    assert!(spooled(state.path()).is_empty());
}

#[test]
fn rejected_reports_are_set_aside_and_a_revoked_key_asks_to_enroll_again() {
    let (collector, root, state) = enrolled();
    collector.script(
        REPORTS_PATH,
        Reply::error(422, "unprocessable", "scan schema 1 is too old"),
    );
    let rejected = run_once(&root, state.path(), &[]);
    assert_eq!(rejected.code, 2, "{}", rejected.stderr);
    assert!(rejected.stderr.contains("rejected"), "{}", rejected.stderr);
    assert!(
        spooled(state.path()).is_empty(),
        "a rejected report leaves the queue"
    );
    let set_aside = files_in(&state.path().join("spool/rejected"));
    assert_eq!(set_aside.len(), 2, "{set_aside:?}");
    let reason_file = set_aside
        .iter()
        .find(|name| name.ends_with(".txt"))
        .unwrap();
    let reason = fs::read_to_string(state.path().join("spool/rejected").join(reason_file)).unwrap();
    assert!(
        reason.contains("422") && reason.contains("too old"),
        "{reason}"
    );

    collector.script(
        REPORTS_PATH,
        Reply::error(401, "unauthorized", "key revoked"),
    );
    let revoked = run_once(&root, state.path(), &[]);
    assert_eq!(revoked.code, 2, "{}", revoked.stderr);
    assert!(
        revoked.stderr.contains("sverka-agent enroll"),
        "{}",
        revoked.stderr
    );
    assert_eq!(
        collector.requests_to(REPORTS_PATH).len(),
        2,
        "no retry with a revoked key"
    );
    assert_eq!(
        spooled(state.path()).len(),
        1,
        "the report waits for a new key"
    );

    let again = enroll(&collector, &root, state.path());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    assert!(spooled(state.path()).is_empty());
}

#[test]
fn images_with_different_machine_ids_enroll_as_different_hosts() {
    let collector = TestCollector::start();
    let first = FixtureRoot::new();
    first
        .machine_id("11111111111111111111111111111111")
        .hostname("class-1");
    let second = FixtureRoot::new();
    second
        .machine_id("22222222222222222222222222222222")
        .hostname("class-2");
    let first_state = tempfile::tempdir().unwrap();
    let second_state = tempfile::tempdir().unwrap();

    let one = enroll(&collector, &first, first_state.path());
    let two = enroll(&collector, &second, second_state.path());
    assert_eq!((one.code, two.code), (0, 0), "{}{}", one.stderr, two.stderr);
    assert!(
        one.stdout.contains(TEST_ORGANIZATION) && one.stdout.contains("host 1"),
        "{}",
        one.stdout
    );
    assert!(two.stdout.contains("host 2"), "{}", two.stdout);
    let sent: Vec<(String, String)> = collector
        .requests_to(ENROLL_PATH)
        .iter()
        .map(|request| {
            let body = enroll_json(request);
            (
                body["machine_id"].as_str().unwrap().to_string(),
                body["hostname"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("11111111111111111111111111111111".into(), "class-1".into()),
            ("22222222222222222222222222222222".into(), "class-2".into())
        ]
    );

    // Reporting another image than the enrolled one is refused, before any upload.
    let crossed = run_once(&second, first_state.path(), &[]);
    assert_eq!(crossed.code, 2);
    assert!(crossed.stderr.contains("machine id"), "{}", crossed.stderr);
    assert!(collector.requests_to(REPORTS_PATH).is_empty());

    let anonymous = FixtureRoot::new();
    fs::remove_file(anonymous.local("/etc/machine-id")).unwrap();
    let refused = enroll(&collector, &anonymous, tempfile::tempdir().unwrap().path());
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("machine-id"), "{}", refused.stderr);

    let not_enrolled = run_once(
        &first,
        &tempfile::tempdir().unwrap().path().join("none"),
        &[],
    );
    assert_eq!(not_enrolled.code, 2);
    assert!(
        not_enrolled.stderr.contains("not enrolled"),
        "{}",
        not_enrolled.stderr
    );

    let wrong_secret = run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--allow-http",
        "--secret",
        "guess",
        "--state-dir",
        &text(&first_state.path().join("other")),
        "--root",
        &text(first.path()),
    ]);
    assert_eq!(wrong_secret.code, 2);
    assert!(
        wrong_secret.stderr.contains("403"),
        "{}",
        wrong_secret.stderr
    );
}

const COLLECTOR_CATALOG: &str = r#"
version = "collector-1"

[[app]]
id = "element"
name = "Element"
status = "banned"
signatures = { packages = ["element-desktop"] }
"#;

#[test]
fn the_collectors_catalog_is_fetched_with_its_etag_and_used_by_the_next_scan() {
    let (collector, root, state) = enrolled();
    root.append(
        "/var/lib/dpkg/status",
        "Package: element-desktop\nStatus: install ok installed\nVersion: 1.11\n\n",
    );
    collector.set_catalog(COLLECTOR_CATALOG, "\"c1\"");

    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    let fetches = collector.requests_to(CATALOG_PATH);
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0].header("if-none-match"), None);
    assert_eq!(
        fs::read_to_string(state.path().join("catalog.toml")).unwrap(),
        COLLECTOR_CATALOG
    );
    let first = &collector.uploads()[0];
    assert_ne!(
        first.scan.catalog_version, "collector-1",
        "fetched after the scan"
    );

    let second_run = run_once(&root, state.path(), &[]);
    assert_eq!(second_run.code, 0, "{}", second_run.stderr);
    let second = &collector.uploads()[1];
    assert_eq!(second.scan.catalog_version, "collector-1");
    let apps: Vec<&str> = second
        .scan
        .findings
        .iter()
        .map(|finding| finding.app.as_str())
        .collect();
    assert_eq!(
        apps,
        ["element"],
        "the collector's catalog replaces the built-in one"
    );
    assert_eq!(
        collector.requests_to(CATALOG_PATH).len(),
        1,
        "same ETag, no fetch"
    );

    collector.set_catalog(
        &COLLECTOR_CATALOG.replace("collector-1", "collector-2"),
        "\"c2\"",
    );
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    let fetches = collector.requests_to(CATALOG_PATH);
    assert_eq!(fetches.len(), 2);
    assert_eq!(fetches[1].header("if-none-match"), Some("\"c1\""));
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    assert_eq!(collector.uploads()[3].scan.catalog_version, "collector-2");

    // A catalog that does not load: scans fall back to the built-in catalog.
    collector.set_catalog("version = \"broken\"\n[[app]\n", "\"c3\"");
    assert_eq!(run_once(&root, state.path(), &[]).code, 0);
    let fallback = run_once(&root, state.path(), &[]);
    assert_eq!(fallback.code, 0);
    assert!(
        fallback.stderr.contains("built-in catalog"),
        "{}",
        fallback.stderr
    );
    let last = collector.uploads().pop().unwrap();
    assert!(
        last.scan
            .findings
            .iter()
            .any(|finding| finding.app == "telegram")
    );
}

#[test]
fn a_damaged_spool_file_is_set_aside_and_the_rest_is_delivered() {
    let (collector, root, state) = enrolled();
    let spool = state.path().join("spool");
    fs::create_dir_all(&spool).unwrap();
    let damaged = "01900000-0000-7000-8000-000000000000.json.gz";
    fs::write(spool.join(damaged), b"\x1f\x8b\x08\x00truncated").unwrap();
    let run = run_once(&root, state.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("damaged"), "{}", run.stderr);
    assert_eq!(collector.uploads().len(), 1);
    let aside = files_in(&spool.join("damaged"));
    assert!(
        aside.iter().any(|name| name.ends_with(damaged)),
        "{aside:?}"
    );
    assert!(spooled(state.path()).is_empty());
}

#[test]
fn the_service_scans_on_its_interval() {
    let (collector, root, state) = enrolled();
    let mut child = std::process::Command::new(agent_binary())
        .args([
            "run",
            "--state-dir",
            &text(state.path()),
            "--root",
            &text(root.path()),
        ])
        .args(["--max-delay", "0", "--interval", "300ms"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while collector.uploads().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let uploads = collector.uploads();
    assert!(uploads.len() >= 3, "{} reports", uploads.len());
    assert!(uploads[0].inventory.is_some());
    assert!(uploads[1].inventory.is_none() && uploads[2].inventory.is_none());
    assert!(uploads[1].report_id > uploads[0].report_id);
    // The loop scans in a child process (`service-scan`); its report says what a scan
    // in one process says.
    let (_, scanned) = scan_json(&root, &[]);
    let reported = serde_json::to_value(&uploads[0].scan).unwrap();
    for field in ["host", "catalog_version", "findings", "errors", "skipped"] {
        assert_eq!(reported[field], scanned[field], "{field}");
    }
    assert!(
        reported["findings"]
            .as_array()
            .is_some_and(|findings| !findings.is_empty())
    );
}

#[test]
fn the_service_backs_off_through_an_outage_and_delivers_afterwards() {
    let (mut collector, root, state) = enrolled();
    collector.stop();
    let mut child = std::process::Command::new(agent_binary())
        .args([
            "run",
            "--state-dir",
            &text(state.path()),
            "--root",
            &text(root.path()),
        ])
        .args(["--max-delay", "0", "--interval", "5s"])
        .args(["--retry-base", "50ms", "--retry-cap", "200ms"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while spooled(state.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let waiting = spooled(state.path());
    collector.restart();
    while collector.uploads().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Delivered by a retry within the same interval, not by the next scan.
    std::thread::sleep(Duration::from_millis(100));
    let uploads = collector.uploads();
    let left = spooled(state.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        uploads.len(),
        1,
        "one report, sent once the collector was back"
    );
    assert_eq!(uploads[0].report_id, waiting[0]);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn https_collectors_are_verified_and_a_schools_own_ca_can_be_trusted() {
    let (collector, ca_pem) = TestCollector::start_tls();
    assert!(collector.url().starts_with("https://"));
    let root = school_pc();
    let state = tempfile::tempdir().unwrap();
    let untrusted = enroll(&collector, &root, state.path());
    assert_eq!(untrusted.code, 2, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("certificate") && untrusted.stderr.contains("--ca-cert"),
        "{}",
        untrusted.stderr
    );
    assert!(!state.path().join("enrollment.json").exists());

    let ca_file = state.path().join("school-ca.pem");
    fs::write(&ca_file, &ca_pem).unwrap();
    let trusted = run_agent(&[
        "enroll",
        "--server",
        &collector.url(),
        "--secret",
        TEST_SECRET,
        "--state-dir",
        &text(state.path()),
        "--root",
        &text(root.path()),
        "--ca-cert",
        &text(&ca_file),
    ]);
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert_eq!(
        fs::read_to_string(state.path().join("collector-ca.pem")).unwrap(),
        ca_pem
    );
    let run = run_once(&root, state.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(collector.uploads().len(), 1);
}
