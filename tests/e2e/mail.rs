//! The weekly report that sends itself (issue 20), with a real SMTP server (aiosmtpd)
//! on 127.0.0.1: sent once the week is frozen, with the workbook attached, over
//! STARTTLS with a password, once across restarts and with two collectors on one
//! PostgreSQL database; a mail server that is down, drops the connection or never
//! answers is tried again until the report goes out once; bad addresses are refused
//! when entered; `notify test` checks the settings (also over implicit TLS, and with a
//! wrong password it says so).

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use sverka_tests::real_collector::{Collector, scratch_postgres};
use sverka_tests::smtp::{Fault, SmtpServer, SmtpTls, free_port};

use crate::dashboard::{BASH, TELEGRAM, report};

/// Waits (at most `seconds`) until `done`; fails with `context` when it never is.
pub(crate) fn wait_for(
    what: &str,
    seconds: u64,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `[mail]` for a collector sending through `port`.
fn mail_config(
    folder: &Path,
    port: u16,
    security: &str,
    login: Option<(&str, &str)>,
    ca_file: Option<&Path>,
) -> String {
    let mut toml = format!(
        "[mail]\nserver = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\n\
         from = \"Sverka <sverka@uo.example>\"\ntimeout_seconds = 3\ncheck_seconds = 1\n\
         retry_seconds = 1\n"
    );
    if let Some((user, password)) = login {
        let file = folder.join(format!("smtp-password-{port}"));
        std::fs::write(&file, format!("{password}\n")).unwrap();
        toml.push_str(&format!(
            "username = \"{user}\"\npassword_file = \"{}\"\n",
            file.display()
        ));
    }
    if let Some(ca) = ca_file {
        toml.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
    }
    toml
}

/// Waits until one of the collectors ran its first freeze check (with no organization
/// yet), so the ended week is frozen only at a next start, after a PC reported.
fn wait_for_first_freeze(collectors: &[&Collector]) {
    wait_for(
        "the first freeze check",
        30,
        || {
            collectors.iter().any(|collector| {
                collector
                    .log()
                    .contains("weekly figures: every ended week is frozen")
            })
        },
        || collectors.iter().map(|collector| collector.log()).collect(),
    );
}

/// A region and a school with recipients.
fn school_with_recipients(collector: &Collector) -> (i64, i64) {
    let region = collector.add_org("Регион", "region", None);
    let school = collector.add_org("Школа 12", "school", Some(region));
    collector.cli_ok(&[
        "org",
        "set",
        "--org",
        &school.to_string(),
        "--report-recipients",
        "ivanova@edu.example, Петров <petrov@uo.example>",
    ]);
    (region, school)
}

fn ended_week() -> String {
    let clock = sverka_collector::config::Config::default()
        .dashboard
        .clock()
        .unwrap();
    clock
        .previous(&clock.week_of(sverka_collector::now()))
        .label
}

fn weekly_mail(collector: &Collector, school: i64, week: &str) -> Value {
    let run = collector.cli(&[
        "report",
        "weekly",
        "--org",
        &school.to_string(),
        "--week",
        week,
        "--format",
        "json",
    ]);
    if run.code != 0 {
        return Value::Null;
    }
    serde_json::from_str::<Value>(&run.stdout).unwrap()["mail"].clone()
}

#[test]
fn the_weekly_report_is_mailed_once_with_its_workbook_across_restarts() {
    let smtp = SmtpServer::start(SmtpTls::Starttls, Some(("sverka", "s3cret pass")), None);
    let folder = tempfile::tempdir().unwrap();
    let config = mail_config(
        folder.path(),
        smtp.port,
        "starttls",
        Some(("sverka", "s3cret pass")),
        smtp.ca_file(),
    );
    let mut collector = Collector::start_with_config(&config);
    wait_for_first_freeze(&[&collector]);
    let (_, school) = school_with_recipients(&collector);
    // An address that is not one is refused when entered, naming it; nothing changes.
    let refused = collector.cli(&[
        "org",
        "set",
        "--org",
        &school.to_string(),
        "--report-recipients",
        "ivanova@edu.example, ivanova-at-edu",
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("«ivanova-at-edu»"),
        "{}",
        refused.stderr
    );

    let secret = collector.secret(school);
    let _pc = report(&collector, &secret, "mail-1", "pc-1", &[TELEGRAM, BASH]);

    // The settings checked by hand first.
    let test = collector.cli(&["notify", "test", "--org", &school.to_string()]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    wait_for(
        "the test message",
        10,
        || smtp.messages().len() == 1,
        String::new,
    );

    // At its next start the collector freezes the ended week and mails it.
    collector.restart();
    wait_for(
        "the weekly report by mail",
        30,
        || smtp.messages().len() == 2,
        || collector.log(),
    );
    let received = &smtp.messages()[1];
    let mut recipients = received.recipients.clone();
    recipients.sort();
    assert_eq!(recipients, ["ivanova@edu.example", "petrov@uo.example"]);
    let message = MessageParser::default()
        .parse(&received.raw)
        .expect("a MIME message");
    let week = ended_week();
    let subject = message.subject().unwrap_or_default();
    assert!(
        subject.contains("еженедельный отчёт")
            && subject.contains("Школа 12")
            && subject.contains(&week),
        "{subject}"
    );
    let body = message.body_text(0).unwrap_or_default();
    assert!(body.contains("С запрещёнными мессенджерами: 1"), "{body}");
    assert!(body.contains("подключено: 1"), "{body}");
    let attachment = message.attachment(0).expect("the workbook attached");
    let name = attachment.attachment_name().unwrap_or_default();
    assert!(name.ends_with(".xlsx") && name.contains(&week), "{name}");
    use calamine::{Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(attachment.contents().to_vec()))
            .expect("the attachment opens as XLSX");
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<String> = sheet.cells().map(|(_, _, cell)| cell.to_string()).collect();
    assert!(
        cells.iter().any(|cell| cell.contains("Школа 12")),
        "{cells:?}"
    );

    let mail = weekly_mail(&collector, school, &week);
    assert_eq!(mail["state"], "sent", "{mail}");
    assert_eq!(mail["recipients"], "ivanova@edu.example, petrov@uo.example");

    // Never twice: two more starts, several checks each.
    for _ in 0..2 {
        collector.restart();
        std::thread::sleep(Duration::from_secs(3));
    }
    assert_eq!(smtp.messages().len(), 2, "{}", collector.log());
}

#[test]
fn a_mail_server_that_is_down_drops_or_hangs_gets_the_report_once_in_the_end() {
    let port = free_port();
    let folder = tempfile::tempdir().unwrap();
    let mut collector =
        Collector::start_with_config(&mail_config(folder.path(), port, "none", None, None));
    wait_for_first_freeze(&[&collector]);
    let (_, school) = school_with_recipients(&collector);
    let secret = collector.secret(school);
    let _pc = report(&collector, &secret, "mail-2", "pc-2", &[TELEGRAM, BASH]);
    let week = ended_week();

    // Down: nothing listens.
    collector.restart();
    wait_for(
        "a failed try",
        30,
        || weekly_mail(&collector, school, &week)["state"] == "failed",
        || collector.log(),
    );
    let failed = weekly_mail(&collector, school, &week);
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|error| !error.is_empty()),
        "{failed}"
    );
    assert!(failed["next_attempt_at"].is_string(), "{failed}");

    // Up, but it drops the connection when the message comes: tried again, failed.
    let dropping = SmtpServer::start_on(port, SmtpTls::None, None, Some(Fault::CloseInData));
    let before = weekly_mail(&collector, school, &week)["attempts"]
        .as_i64()
        .unwrap();
    wait_for(
        "a try against the dropping server",
        30,
        || {
            weekly_mail(&collector, school, &week)["attempts"]
                .as_i64()
                .unwrap()
                > before + 1
        },
        || collector.log(),
    );
    assert_eq!(weekly_mail(&collector, school, &week)["state"], "failed");
    assert!(dropping.messages().is_empty());
    dropping.stop();

    // Never answering the message's end: the try times out (3 s) and fails.
    let hanging = SmtpServer::start_on(port, SmtpTls::None, None, Some(Fault::HangInData));
    let before = weekly_mail(&collector, school, &week)["attempts"]
        .as_i64()
        .unwrap();
    wait_for(
        "a try against the hanging server",
        40,
        || {
            let mail = weekly_mail(&collector, school, &week);
            mail["attempts"].as_i64().unwrap() > before && mail["state"] == "failed"
        },
        || collector.log(),
    );
    hanging.stop();

    // A server that works: the report arrives, once.
    let working = SmtpServer::start_on(port, SmtpTls::None, None, None);
    wait_for(
        "the report at last",
        60,
        || working.messages().len() == 1,
        || collector.log(),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(working.messages().len(), 1);
    let mail = weekly_mail(&collector, school, &week);
    assert_eq!(mail["state"], "sent", "{mail}");
    assert!(mail["attempts"].as_i64().unwrap() >= 3, "{mail}");
}

#[test]
fn notify_test_speaks_implicit_tls_and_names_a_refused_password() {
    let smtp = SmtpServer::start(SmtpTls::Implicit, Some(("sverka", "right")), None);
    let folder = tempfile::tempdir().unwrap();
    let good = mail_config(
        folder.path(),
        smtp.port,
        "tls",
        Some(("sverka", "right")),
        smtp.ca_file(),
    );
    let collector = Collector::start_with_config(&good);
    wait_for_first_freeze(&[&collector]);
    let (_, school) = school_with_recipients(&collector);
    let sent = collector.cli(&["notify", "test", "--org", &school.to_string()]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    wait_for(
        "the test message",
        10,
        || smtp.messages().len() == 1,
        String::new,
    );

    // The same settings with a wrong password: the CLI (reading the same database with
    // another config) says the server refused it, and nothing is sent.
    let wrong_config = folder.path().join("wrong.toml");
    std::fs::write(
        &wrong_config,
        mail_config(
            folder.path(),
            smtp.port,
            "tls",
            Some(("sverka", "wrong")),
            smtp.ca_file(),
        ),
    )
    .unwrap();
    let refused = collector.cli(&[
        "--config",
        wrong_config.to_str().unwrap(),
        "notify",
        "test",
        "--org",
        &school.to_string(),
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("535") || refused.stderr.to_lowercase().contains("authentication"),
        "{}",
        refused.stderr
    );
    // Without the CA, the server's certificate is not trusted.
    let untrusted_config = folder.path().join("untrusted.toml");
    std::fs::write(
        &untrusted_config,
        mail_config(
            folder.path(),
            smtp.port,
            "tls",
            Some(("sverka", "right")),
            None,
        ),
    )
    .unwrap();
    let untrusted = collector.cli(&[
        "--config",
        untrusted_config.to_str().unwrap(),
        "notify",
        "test",
        "--org",
        &school.to_string(),
    ]);
    assert_ne!(untrusted.code, 0, "{}", untrusted.stdout);
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn two_collectors_on_postgres_send_the_weekly_report_once() {
    let database = scratch_postgres();
    let smtp = SmtpServer::start(SmtpTls::None, None, None);
    let folder = tempfile::tempdir().unwrap();
    let config = mail_config(folder.path(), smtp.port, "none", None, None);
    let mut first = Collector::start_configured(&config, Some(database.url()));
    let mut second = Collector::start_configured(&config, Some(database.url()));
    wait_for_first_freeze(&[&first, &second]);
    let (_, school) = school_with_recipients(&first);
    let secret = first.secret(school);
    let _pc = report(&first, &secret, "mail-3", "pc-3", &[TELEGRAM, BASH]);
    first.restart();
    second.restart();
    wait_for(
        "the weekly report by mail",
        40,
        || !smtp.messages().is_empty(),
        || format!("{}\n{}", first.log(), second.log()),
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        smtp.messages().len(),
        1,
        "{}\n{}",
        first.log(),
        second.log()
    );
}

#[test]
fn an_officer_sends_a_week_now_and_a_school_admin_sets_the_digest_on_the_page() {
    use sverka_tests::proof::isolation::web::{PASSWORD, Session, csrf_of};
    let smtp = SmtpServer::start(SmtpTls::None, None, None);
    let folder = tempfile::tempdir().unwrap();
    let mut collector =
        Collector::start_with_config(&mail_config(folder.path(), smtp.port, "none", None, None));
    wait_for_first_freeze(&[&collector]);
    let (region, school) = school_with_recipients(&collector);
    let secret = collector.secret(school);
    let _pc = report(
        &collector,
        &secret,
        "send-now",
        "pc-send-now",
        &[TELEGRAM, BASH],
    );
    collector.restart();
    wait_for(
        "the scheduled weekly report",
        30,
        || smtp.messages().len() == 1,
        || collector.log(),
    );
    let week = ended_week();

    // "Send now" by an officer of the region: a second message, recorded as theirs.
    collector.add_user("officer-r", "officer", PASSWORD, Some(region));
    let mut officer = Session::login(&collector.url(), "officer-r").expect("sign in");
    let page = officer
        .get(&format!("/org/{school}/weekly?week={week}"))
        .unwrap()
        .text();
    assert!(page.contains("id=\"send-now\""), "{page}");
    let csrf = csrf_of(&page).expect("a CSRF token");
    let sent = officer
        .post_form(
            &format!("/org/{school}/weekly/send?week={week}"),
            &[("csrf", &csrf)],
        )
        .unwrap();
    assert_eq!(sent.status, 303, "{}", sent.text());
    assert_eq!(smtp.messages().len(), 2);
    let raw = smtp.messages()[1].raw.clone();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(
        message.subject().unwrap_or_default().contains(&week),
        "{:?}",
        message.subject()
    );
    assert!(message.attachment(0).is_some(), "the workbook is attached");
    let mail = weekly_mail(&collector, school, &week);
    assert_eq!(mail["state"], "sent", "{mail}");
    assert_eq!(mail["sent_by"], "officer-r", "{mail}");
    let page = officer
        .get(&format!("/org/{school}/weekly?week={week}"))
        .unwrap()
        .text();
    assert!(page.contains("(отправил officer-r)"), "{page}");

    // A school admin sets the school's digest recipients on its notifications page; a
    // bad address is refused with a message naming it, the webhook is not theirs.
    collector.add_user("admin-s", "school_admin", PASSWORD, Some(school));
    let mut admin = Session::login(&collector.url(), "admin-s").expect("sign in");
    let page = admin.get(&format!("/org/{school}/notifications")).unwrap();
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(page.contains("id=\"digest-recipients\""), "{page}");
    assert!(!page.contains("id=\"webhook-secret\""), "{page}");
    let csrf = csrf_of(&page).unwrap();
    let refused = admin
        .post_form(
            &format!("/org/{school}/notifications/digest"),
            &[
                ("csrf", &csrf),
                ("recipients", "it@school.example, it-at-school"),
            ],
        )
        .unwrap();
    assert_eq!(refused.status, 422);
    assert!(
        refused.text().contains("«it-at-school»"),
        "{}",
        refused.text()
    );
    let saved = admin
        .post_form(
            &format!("/org/{school}/notifications/digest"),
            &[("csrf", &csrf), ("recipients", "it@school.example")],
        )
        .unwrap();
    assert_eq!(saved.status, 303, "{}", saved.text());
    let page = admin
        .get(&format!("/org/{school}/notifications"))
        .unwrap()
        .text();
    assert!(page.contains("value=\"it@school.example\""), "{page}");
    let webhook = admin
        .post_form(
            &format!("/org/{school}/notifications/webhook"),
            &[
                ("csrf", &csrf),
                ("url", "https://region.example/hook"),
                ("secret", "0123456789abcdef"),
            ],
        )
        .unwrap();
    assert_eq!(webhook.status, 404, "{}", webhook.text());
    // The officer may set it; the secret is not shown back.
    let csrf = officer.csrf().unwrap();
    let set = officer
        .post_form(
            &format!("/org/{school}/notifications/webhook"),
            &[
                ("csrf", &csrf),
                ("url", "https://region.example/hook"),
                ("secret", "0123456789abcdef"),
            ],
        )
        .unwrap();
    assert_eq!(set.status, 303, "{}", set.text());
    let page = officer
        .get(&format!("/org/{school}/notifications"))
        .unwrap()
        .text();
    assert!(page.contains("https://region.example/hook"), "{page}");
    assert!(!page.contains("0123456789abcdef"), "{page}");
}

/// The collector's own send round at chosen times, in this process, over a stopped
/// collector's database: the week is sent once its cut-off has passed, not before, and
/// not again when the clock is set back across the cut-off and comes forward again.
#[test]
fn a_clock_set_back_across_the_week_end_sends_the_week_once() {
    use std::sync::Arc;
    use sverka_collector::web::figures::freeze_ended_weeks;
    use sverka_collector::web::weekly_mail::send_due_reports;
    let smtp = SmtpServer::start(SmtpTls::None, None, None);
    let folder = tempfile::tempdir().unwrap();
    let config_text = mail_config(folder.path(), smtp.port, "none", None, None);
    // A collector without [mail]: only the rounds below send.
    let mut collector = Collector::start();
    let (_, school) = school_with_recipients(&collector);
    let config: sverka_collector::config::Config = toml::from_str(&config_text).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let week = runtime.block_on(async {
        let url = format!("sqlite://{}", collector.database().display());
        let store: Arc<dyn sverka_collector::store::Store> = Arc::new(
            sverka_collector::store::SqlStore::open(&url, 1)
                .await
                .unwrap(),
        );
        let catalog = sverka_collector::catalog::CatalogState::load(store.as_ref())
            .await
            .unwrap();
        let app = Arc::new(sverka_collector::app::AppState::new(
            store.clone(),
            catalog,
            config.limits.clone(),
            config.rate_limit,
        ));
        let state = sverka_collector::web::WebState::new(app, &config).unwrap();
        let mailer = sverka_collector::mail::Mailer::from_config(&config.mail)
            .unwrap()
            .expect("a mailer");
        let clock = config.dashboard.clock().unwrap();
        // The week the PC reports in, and its cut-off.
        let week = clock.week_of(sverka_collector::now());
        let round = |now: i64| {
            let (store, clock, state, mailer) = (store.clone(), &clock, &state, &mailer);
            async move {
                freeze_ended_weeks(store.as_ref(), clock, 7, now)
                    .await
                    .unwrap();
                send_due_reports(state, mailer, now).await.unwrap()
            }
        };
        // Now, before any PC: the week before is frozen with no data and not sent.
        assert_eq!(round(sverka_collector::now()).await, 0, "the week before");
        let secret = collector.secret(school);
        let _pc = report(&collector, &secret, "clock", "pc-clock", &[TELEGRAM, BASH]);
        assert_eq!(round(week.end - 60).await, 0, "before the cut-off");
        assert_eq!(smtp.messages().len(), 0);
        assert_eq!(round(week.end + 60).await, 1, "after the cut-off");
        assert_eq!(smtp.messages().len(), 1);
        // Set back across the cut-off, then forward again.
        assert_eq!(round(week.end - 600).await, 0, "set back");
        assert_eq!(round(week.end - 1).await, 0, "still before");
        assert_eq!(round(week.end + 120).await, 0, "forward again");
        assert_eq!(smtp.messages().len(), 1);
        week
    });
    collector.kill();
    let raw = smtp.messages()[0].raw.clone();
    let message = MessageParser::default().parse(&raw).unwrap();
    assert!(
        message.subject().unwrap_or_default().contains(&week.label),
        "{:?}",
        message.subject()
    );
    let mail = weekly_mail(&collector, school, &week.label);
    assert_eq!(
        (mail["state"].clone(), mail["attempts"].clone()),
        ("sent".into(), 1.into()),
        "{mail}"
    );
}
