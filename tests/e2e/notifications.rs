//! Notifications of what is new (issue 20, item 4) from a real collector: the
//! webhook's calls reach a real HTTP receiver that checks their HMAC signature with
//! Python's own `hmac`; a receiver that answers 500 gets the same call again until it
//! takes it, one that never answers is given up after the bounded tries without
//! holding up another organization's calls; the daily digest reaches a real SMTP
//! server once a day, tells only what is new and is not sent when nothing is.

use mail_parser::MessageParser;
use serde_json::Value;
use std::time::{Duration, Instant};
use sverka_tests::real_collector::Collector;
use sverka_tests::smtp::{SmtpServer, SmtpTls};
use sverka_tests::webhook::{Answer, WebhookReceiver};

use crate::dashboard::{BASH, TELEGRAM, report};
use crate::mail::wait_for;

const SECRET: &str = "a shared secret of the region";

/// `[notifications]` checked every second, windows that end now, quick retries.
const FAST: &str = "[notifications]\ncheck_seconds = 1\nsettle_seconds = 0\nretry_seconds = 1\n\
                    webhook_timeout_seconds = 2\nwebhook_attempts = 3\n";

fn set_webhook(collector: &Collector, organization: i64, url: &str) {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let out = collector.cli_ok(&[
        "org",
        "set",
        "--org",
        &organization.to_string(),
        "--webhook-url",
        url,
        "--webhook-secret-file",
        &file.display().to_string(),
    ]);
    assert!(out.contains(&format!("webhook {url}")), "{out}");
}

fn applications(changes: &Value) -> Vec<(String, String)> {
    changes
        .as_array()
        .expect("a list")
        .iter()
        .map(|change| {
            (
                change["pc"].as_str().unwrap_or_default().to_string(),
                change["application"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn the_webhook_posts_what_is_new_signed_and_again_until_taken() {
    let receiver = WebhookReceiver::start(SECRET, Answer::FailFirst(2));
    let collector = Collector::start_with_config(FAST);
    let region = collector.add_org("Регион", "region", None);
    let school = collector.add_org("Школа 7", "school", Some(region));
    // Bad settings are refused with the reason, and nothing is set.
    let short = tempfile::tempdir().unwrap();
    std::fs::write(short.path().join("secret"), "short\n").unwrap();
    let refused = collector.cli(&[
        "org",
        "set",
        "--org",
        &region.to_string(),
        "--webhook-url",
        &receiver.url("/sverka"),
        "--webhook-secret-file",
        &short.path().join("secret").display().to_string(),
    ]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("16 to 256"), "{}", refused.stderr);
    let refused = collector.cli(&[
        "org",
        "set",
        "--org",
        &region.to_string(),
        "--webhook-url",
        "ftp://127.0.0.1/x",
        "--webhook-secret-file",
        &short.path().join("secret").display().to_string(),
    ]);
    assert!(
        refused.stderr.contains("only http:// and https://"),
        "{}",
        refused.stderr
    );
    set_webhook(&collector, region, &receiver.url("/sverka"));

    let secret = collector.secret(school);
    let _pc = report(
        &collector,
        &secret,
        "hook-1",
        "pc-hook-1",
        &[TELEGRAM, BASH],
    );
    wait_for(
        "the call taken after two 500s",
        30,
        || {
            receiver
                .requests()
                .iter()
                .any(|request| request["answer"] == 200)
        },
        || format!("{:?}\n{}", receiver.requests(), collector.log()),
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for request in &requests {
        assert_eq!(request["signature_ok"], true, "{request}");
        assert_eq!(request["path"], "/sverka");
        assert_eq!(request["content_type"], "application/json");
        // The same call each time: one notification, one body.
        assert_eq!(request["notification"], requests[0]["notification"]);
        assert_eq!(request["body"], requests[0]["body"]);
    }
    assert_eq!(
        requests
            .iter()
            .map(|request| request["answer"].clone())
            .collect::<Vec<_>>(),
        [Value::from(500), Value::from(500), Value::from(200)]
    );
    let body = &requests[2]["body"];
    assert_eq!(body["organization"]["name"], "Регион");
    assert_eq!(body["organization"]["id"], region);
    assert_eq!(
        applications(&body["new_violations"]),
        [("pc-hook-1".to_string(), "telegram".to_string())]
    );
    assert_eq!(body["new_violations"][0]["organization"]["name"], "Школа 7");
    // A package installed for all users names none.
    assert_eq!(body["new_violations"][0]["users"], serde_json::json!([]));
    assert!(body["from"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(body["resolved_violations"], serde_json::json!([]));
    assert_eq!(body["silent_pcs"], serde_json::json!([]));

    // Nothing new: no call. Telegram gone: one new call that says so.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.requests().len(), 3);
    let _again = report(&collector, &secret, "hook-1", "pc-hook-1", &[BASH]);
    wait_for(
        "the call about the resolved violation",
        30,
        || receiver.requests().len() == 4,
        || format!("{:?}\n{}", receiver.requests(), collector.log()),
    );
    let call = &receiver.requests()[3];
    assert_eq!(call["signature_ok"], true);
    assert_ne!(call["notification"], requests[0]["notification"]);
    assert_eq!(
        applications(&call["body"]["resolved_violations"]),
        [("pc-hook-1".to_string(), "telegram".to_string())]
    );
    assert_eq!(call["body"]["new_violations"], serde_json::json!([]));
    // The new window starts where the last one ended.
    assert_eq!(call["body"]["from"], requests[0]["body"]["until"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.requests().len(), 4, "{:?}", receiver.requests());
}

#[test]
fn a_webhook_that_never_answers_is_given_up_and_holds_up_no_other() {
    let hanging = WebhookReceiver::start(SECRET, Answer::HangFirst(100));
    let working = WebhookReceiver::start(SECRET, Answer::Ok);
    let collector = Collector::start_with_config(FAST);
    let stuck = collector.add_org("Район А", "municipality", None);
    let fine = collector.add_org("Район Б", "municipality", None);
    set_webhook(&collector, stuck, &hanging.url("/a"));
    set_webhook(&collector, fine, &working.url("/b"));
    let _a = report(
        &collector,
        &collector.secret(stuck),
        "hang-a",
        "pc-a",
        &[TELEGRAM],
    );
    wait_for(
        "the first call to the hanging receiver",
        30,
        || !hanging.requests().is_empty(),
        || collector.log(),
    );
    // While a call hangs, another organization's news goes out.
    let started = Instant::now();
    let _b = report(
        &collector,
        &collector.secret(fine),
        "hang-b",
        "pc-b",
        &[TELEGRAM],
    );
    wait_for(
        "the working receiver's call",
        15,
        || !working.requests().is_empty(),
        || collector.log(),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(working.requests()[0]["signature_ok"], true);
    // Three tries of two seconds each, with pauses of one and two seconds, then no more.
    wait_for(
        "the hanging call given up",
        60,
        || collector.log().contains("attempt=3"),
        || collector.log(),
    );
    std::thread::sleep(Duration::from_secs(5));
    let tries = hanging.requests();
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(tries.iter().all(|request| request["signature_ok"] == true));
    assert!(
        tries
            .iter()
            .all(|request| request["notification"] == tries[0]["notification"])
    );
    assert_eq!(working.requests().len(), 1);
}

#[test]
fn the_daily_digest_tells_what_is_new_once_and_nothing_when_nothing_is() {
    let smtp = SmtpServer::start(SmtpTls::None, None, None);
    let config = format!(
        "{FAST}digest_time = \"00:00\"\n[mail]\nserver = \"127.0.0.1\"\nport = {}\n\
         security = \"none\"\nfrom = \"Sverka <sverka@uo.example>\"\ntimeout_seconds = 3\n\
         check_seconds = 1\nretry_seconds = 1\n",
        smtp.port
    );
    let mut collector = Collector::start_with_config(&config);
    let school = collector.add_org("Школа 3", "school", None);
    let secret = collector.secret(school);
    let _pc = report(
        &collector,
        &secret,
        "digest-1",
        "pc-digest-1",
        &[TELEGRAM, BASH],
    );
    // Windows end at the current second: the report's is over before the digest is set.
    std::thread::sleep(Duration::from_millis(1_100));
    let refused = collector.cli(&[
        "org",
        "set",
        "--org",
        &school.to_string(),
        "--digest-recipients",
        "admin@school.example, admin-at-school",
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("«admin-at-school»"),
        "{}",
        refused.stderr
    );
    collector.cli_ok(&[
        "org",
        "set",
        "--org",
        &school.to_string(),
        "--digest-recipients",
        "admin@school.example",
    ]);

    // Today's digest (its time, 00:00, has come): the day before and today so far.
    wait_for(
        "today's digest",
        30,
        || smtp.messages().len() == 1,
        || collector.log(),
    );
    let received = &smtp.messages()[0];
    assert_eq!(received.recipients, ["admin@school.example"]);
    let message = MessageParser::default().parse(&received.raw).unwrap();
    let subject = message.subject().unwrap_or_default().to_string();
    assert_eq!(
        subject,
        "Sverka: новое в «Школа 3» — нарушений: 1, устранено: 0, перестали отвечать: 0"
    );
    let body = message
        .body_text(0)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        body.contains("Найдены запрещённые мессенджеры (1):\n- pc-digest-1: Telegram; найден "),
        "{body}"
    );

    // Asked for by hand with nothing new: nothing is sent.
    let out = collector.cli_ok(&["notify", "digest", "--org", &school.to_string()]);
    assert!(out.contains("nothing new"), "{out}");
    // Telegram removed: the next digest tells only that.
    let _again = report(&collector, &secret, "digest-1", "pc-digest-1", &[BASH]);
    std::thread::sleep(Duration::from_millis(1_100));
    let out = collector.cli_ok(&["notify", "digest", "--org", &school.to_string()]);
    assert!(out.contains("taken by"), "{out}");
    assert_eq!(smtp.messages().len(), 2);
    let raw = smtp.messages()[1].raw.clone();
    let message = MessageParser::default().parse(&raw).unwrap();
    let body = message
        .body_text(0)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        body.contains("Устранены (1):\n- pc-digest-1: Telegram больше не найден"),
        "{body}"
    );
    assert!(!body.contains("Найдены"), "{body}");

    // Today's scheduled digest is done: restarts do not send it again.
    collector.restart();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(smtp.messages().len(), 2, "{}", collector.log());
}
