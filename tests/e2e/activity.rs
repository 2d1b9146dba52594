//! Use, end to end: a real agent scans a Windows volume where MAX was last used in the
//! week that ended and Telegram this week (a data folder's and a Prefetch entry's
//! modification times), reports to a real collector, and `report weekly --format json`
//! counts the PCs that used an approved and a banned messenger in each week: the ended
//! week frozen by the collector's own job when it starts again, this week live.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, SystemTime};
use sverka_tests::real_collector::Collector;
use sverka_tests::windows::{TELEGRAM, WindowsVolume, program_with_version};

fn set_modified(path: &Path, unix_seconds: i64) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_seconds as u64);
    std::fs::File::open(path)
        .and_then(|handle| handle.set_modified(time))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn weekly(collector: &Collector, organization: i64, week: &str) -> Value {
    let json = collector.cli_ok(&[
        "report",
        "weekly",
        "--org",
        &organization.to_string(),
        "--week",
        week,
        "--format",
        "json",
    ]);
    serde_json::from_str(&json).unwrap_or_else(|error| panic!("{error}: {json}"))
}

fn of(report: &Value, organization: i64) -> &Value {
    report["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["organization_id"] == organization)
        .unwrap_or_else(|| panic!("{organization}: {report:#}"))
}

#[test]
fn max_used_last_week_and_telegram_this_week_reach_the_weekly_figures() {
    let mut collector = Collector::start();
    // The collector's freeze at start has run (with no organization yet), so the ended
    // week is frozen only when it starts again, after the report.
    wait_for(
        "the first freeze check",
        || {
            collector
                .log()
                .contains("weekly figures: every ended week is frozen")
        },
        || collector.log(),
    );
    let region = collector.add_org("Регион", "region", None);
    let school = collector.add_org("Школа 7", "school", Some(region));
    let secret = collector.secret(school);

    let clock = sverka_collector::config::Config::default()
        .dashboard
        .clock()
        .expect("the default clock");
    let now = sverka_collector::now();
    let current = clock.week_of(now);
    let ended = clock.previous(&current);
    let max_used = ended.start + 3 * 3_600;
    let telegram_used = current.start + (now - current.start) / 2;

    let volume = WindowsVolume::with_hives();
    volume
        .file("C:\\Program Files\\MAX\\max.exe", b"MZ")
        .dir("C:\\Users\\anna\\AppData\\Local\\max\\Cache")
        .file(
            "C:\\Users\\anna\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe",
            program_with_version(&TELEGRAM),
        )
        .file(
            "C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf",
            b"MAM\x04",
        );
    set_modified(
        &volume.local("C:\\Users\\anna\\AppData\\Local\\max"),
        max_used,
    );
    set_modified(
        &volume.local("C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf"),
        telegram_used,
    );

    let _state = crate::dashboard::enroll_and_report(&collector, &secret, volume.path());

    // This week, live: Telegram used, MAX not (its last use was the week before).
    let live = weekly(&collector, region, &current.label);
    assert_eq!(live["frozen"], false, "{live:#}");
    let live_school = of(&live, school);
    assert_eq!(
        live_school["pcs_that_used_a_banned_messenger"], 1,
        "{live:#}"
    );
    assert_eq!(
        live_school["pcs_that_used_an_approved_messenger"], 0,
        "{live:#}"
    );
    assert_eq!(
        of(&live, region)["pcs_that_used_a_banned_messenger"],
        1,
        "{live:#}"
    );
    let applications = live_school["applications_used"].as_array().unwrap();
    assert_eq!(applications.len(), 1, "{live:#}");
    assert_eq!(applications[0]["app"], "telegram");
    assert_eq!(applications[0]["status"], "banned");

    // The ended week, frozen by the collector's job when it starts again: MAX used,
    // Telegram not; still so after another restart.
    collector.restart();
    let week_arg = ended.label.clone();
    let region_arg = region.to_string();
    wait_for(
        "the ended week frozen",
        || {
            let run = collector.cli(&[
                "report",
                "weekly",
                "--org",
                &region_arg,
                "--week",
                &week_arg,
                "--format",
                "json",
            ]);
            run.code == 0 && run.stdout.contains("\"frozen\": true")
        },
        || collector.log(),
    );
    collector.restart();
    let frozen = weekly(&collector, region, &ended.label);
    let frozen_school = of(&frozen, school);
    assert_eq!(
        frozen_school["pcs_that_used_an_approved_messenger"], 1,
        "{frozen:#}"
    );
    assert_eq!(
        frozen_school["pcs_that_used_a_banned_messenger"], 0,
        "{frozen:#}"
    );
    let applications = frozen_school["applications_used"].as_array().unwrap();
    assert_eq!(applications.len(), 1, "{frozen:#}");
    assert_eq!(applications[0]["app"], "max");
    assert_eq!(applications[0]["name"], "MAX");
    assert_eq!(applications[0]["pcs_that_used_it"], 1);
}
