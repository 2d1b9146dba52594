//! An upstream's federation API in-process: a lower collector's composed message goes
//! in and is counted; forged, revoked, malformed, oversized, out-of-tree and future
//! messages get a clear 4xx and store nothing; what a counts-only link or an older
//! upstream does not take is named in the answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use std::io::Write;
use sverka_collector::keys;
use sverka_collector::store::{Store, UpstreamLink};
use sverka_collector::upstream;
use sverka_collector::web::clock::Clock;
use sverka_shared::federation::{
    Detail, FIGURES_PATH, FiguresAck, FiguresMessage, LINK_PATH, LinkDescription,
};

use crate::api::{Answer, enrolled, harness, post, report, send, upload};

async fn link(store: &dyn Store, organization_id: i64, detail: Detail) -> (i64, String) {
    let (random, secret_hash) = keys::generate();
    let link = store
        .create_link(
            organization_id,
            &secret_hash,
            detail,
            sverka_collector::now(),
        )
        .await
        .expect("link");
    (link.id, format!("{}.{random}", link.id))
}

/// A message as a lower collector with one enrolled PC (Telegram installed) composes
/// it: the same code `upstream push` runs.
async fn composed(detail: Detail) -> FiguresMessage {
    let lower = harness().await;
    let host = enrolled(&lower.app, &lower.secret_a, "lower-pc-1").await;
    let mut with_telegram = upload("lower-pc-1", &["telegram-desktop"], true);
    with_telegram.scan.host.hostname = "kab-12".into();
    let answer = report(&lower.app, &host.host_key, &with_telegram).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let clock = Clock::new("Europe/Moscow", "thursday").expect("clock");
    let link = UpstreamLink {
        url: "https://region.example".into(),
        secret: String::new(),
        allow_http: false,
        configured_at: 0,
        upstream_organization: "Region".into(),
        detail,
        acknowledged_week: None,
        last_attempt_at: None,
        last_success_at: None,
        last_error: None,
    };
    let message = upstream::compose(
        lower.store.as_ref(),
        &clock,
        7,
        &link,
        sverka_collector::now(),
    )
    .await
    .expect("composed");
    assert_eq!(
        message.check(),
        Ok(()),
        "a composed message passes the check"
    );
    message
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// The answer has this status and its text says `says`.
fn refused(answer: &Answer, status: StatusCode, says: &str) {
    assert_eq!(answer.status, status, "{}", text(answer));
    assert!(text(answer).contains(says), "{}", text(answer));
}

fn figures(secret: Option<&str>, message: &FiguresMessage) -> Request<Body> {
    post(
        FIGURES_PATH,
        secret,
        serde_json::to_vec(message).expect("json"),
    )
}

async fn enrolled_under(store: &dyn Store, organization_id: i64) -> i64 {
    store.coverage(organization_id, 0).await.expect("coverage")[0].enrolled
}

#[tokio::test]
async fn a_composed_message_is_counted_under_the_link_and_a_resend_changes_nothing() {
    let region = harness().await;
    let (_, secret) = link(region.store.as_ref(), region.school_a, Detail::Pcs).await;

    let describe = Request::get(LINK_PATH)
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .body(Body::empty())
        .unwrap();
    let answer = send(&region.app, describe).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let description: LinkDescription = answer.json();
    assert_eq!(description.organization_id, region.school_a);
    assert_eq!(description.detail, Detail::Pcs);

    let message = composed(Detail::Pcs).await;
    let violation = message
        .violations
        .iter()
        .find(|row| row.app_id == "telegram")
        .expect("telegram in the message");
    assert_eq!(violation.hosts, ["kab-12"], "a pcs link carries PC names");
    let answer = send(&region.app, figures(Some(&secret), &message)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let ack: FiguresAck = answer.json();
    assert!(ack.current_applied);
    assert!(ack.refused.is_empty(), "{:?}", ack.refused);
    assert_eq!(
        enrolled_under(region.store.as_ref(), region.school_a).await,
        1
    );
    let coverage = region.store.coverage(region.school_a, 0).await.unwrap();
    assert_eq!(coverage[0].with_banned, 1);

    let again = send(&region.app, figures(Some(&secret), &message)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(
        !again.json::<FiguresAck>().current_applied,
        "a resend is stale"
    );
    assert_eq!(
        enrolled_under(region.store.as_ref(), region.school_a).await,
        1
    );
}

#[tokio::test]
async fn what_the_link_or_this_release_does_not_take_is_named() {
    let region = harness().await;
    let (_, secret) = link(region.store.as_ref(), region.school_a, Detail::Counts).await;
    let mut message = composed(Detail::Pcs).await;
    message.protocol += 1;
    message
        .not_understood
        .insert("budget".into(), serde_json::json!({"rubles": 1}));
    let answer = send(&region.app, figures(Some(&secret), &message)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", text(&answer));
    let ack: FiguresAck = answer.json();
    assert!(ack.current_applied);
    assert_eq!(ack.refused.len(), 2, "{:?}", ack.refused);
    assert!(ack.refused[0].starts_with("budget: "), "{:?}", ack.refused);
    assert!(ack.refused[1].contains("counts only"), "{:?}", ack.refused);
    assert_eq!(
        enrolled_under(region.store.as_ref(), region.school_a).await,
        1
    );

    // Two versions ahead is refused whole.
    message.protocol += 1;
    message.generated_at += 1;
    let answer = send(&region.app, figures(Some(&secret), &message)).await;
    refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "is not read here",
    );
}

#[tokio::test]
async fn forged_revoked_and_hostile_messages_store_nothing() {
    let region = harness().await;
    let store = region.store.as_ref();
    let (link_id, secret) = link(store, region.school_a, Detail::Counts).await;
    let message = composed(Detail::Counts).await;
    let organizations_before = store.organizations().await.unwrap().len();

    // No secret, a malformed one, a forged one (right id, wrong random part).
    let (forged_random, _) = keys::generate();
    for key in [
        None,
        Some("not-a-secret".to_string()),
        Some(format!("{link_id}.{forged_random}")),
    ] {
        let answer = send(&region.app, figures(key.as_deref(), &message)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{key:?}: {}",
            text(&answer)
        );
        assert!(answer.www_authenticate.is_some());
    }

    let raw = |body: Vec<u8>| post(FIGURES_PATH, Some(&secret), body);
    // Broken JSON, the wrong shape, and a message that fails its check.
    let answer = send(&region.app, raw(b"{\"protocol\":".to_vec())).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", text(&answer));
    let answer = send(&region.app, raw(b"{\"protocol\":\"one\"}".to_vec())).await;
    refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not a figures message",
    );
    let mut cycle = message.clone();
    let first_key = cycle.organizations[0].key.clone();
    cycle.organizations[0].parent = Some(first_key);
    let answer = send(&region.app, figures(Some(&secret), &cycle)).await;
    refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "its own ancestor",
    );
    // Figures for an organization outside the message's tree (another municipality's,
    // the upstream's own): refused, there is no key to write them under.
    let mut outside = message.clone();
    outside.current[0].organization = "999999".into();
    let answer = send(&region.app, figures(Some(&secret), &outside)).await;
    refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, "does not list");
    // Counted far ahead of this clock (it would block every later message).
    let mut future = message.clone();
    future.generated_at += 86_400;
    let answer = send(&region.app, figures(Some(&secret), &future)).await;
    refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ahead of this collector",
    );
    // Oversized on the wire, and a gzip bomb.
    let answer = send(&region.app, raw(vec![b' '; 17 * 1024 * 1024])).await;
    refused(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..200 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = Request::post(FIGURES_PATH)
        .header(header::AUTHORIZATION, format!("Bearer {secret}"))
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(encoder.finish().unwrap()))
        .unwrap();
    let answer = send(&region.app, bomb).await;
    refused(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");
    assert_eq!(
        store.organizations().await.unwrap().len(),
        organizations_before
    );
    assert_eq!(enrolled_under(store, region.school_a).await, 0);

    // Revoked: refused with the reason, nothing stored.
    store
        .revoke_link(link_id, sverka_collector::now())
        .await
        .unwrap();
    let answer = send(&region.app, figures(Some(&secret), &message)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", text(&answer));
    assert!(text(&answer).contains("revoked"), "{}", text(&answer));
    assert_eq!(
        store.organizations().await.unwrap().len(),
        organizations_before
    );
}

/// `upstream push` against the upstream's router served on a loopback socket: a
/// lower collector ten frozen weeks behind sends them oldest first, eight a message,
/// each acknowledged before the next; a push after that sends none again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_sends_every_missing_frozen_week_oldest_first() {
    use sverka_collector::store::{HostListToFreeze, WeeklyFigures};
    let region = harness().await;
    let (link_id, secret) = link(region.store.as_ref(), region.school_a, Detail::Counts).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("address");
    let served = region.app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });

    let lower = harness().await;
    let labels: Vec<String> = (38..48).map(|week| format!("2026-W{week}")).collect();
    for label in &labels {
        let figures = WeeklyFigures {
            organization_id: lower.school_a,
            week: label.clone(),
            expected_pcs: 10,
            enrolled: 3,
            reporting: 3,
            silent: 0,
            with_banned: 1,
            with_approved: 2,
            known: Some(3),
            silent_with_banned: Some(0),
            used_approved: Some(2),
            used_banned: Some(0),
            late: false,
        };
        let hosts = HostListToFreeze {
            week: label.clone(),
            boundaries: "|".into(),
            silent_before: 0,
        };
        lower
            .store
            .freeze_weekly_figures(&[figures], &[], &hosts, 0)
            .await
            .expect("frozen");
    }
    lower
        .store
        .set_upstream(Some(&UpstreamLink {
            url: format!("http://{address}"),
            secret,
            allow_http: true,
            configured_at: 0,
            upstream_organization: "Школа А".into(),
            detail: Detail::Counts,
            acknowledged_week: None,
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
        }))
        .await
        .expect("upstream set");
    let clock = Clock::new("Europe/Moscow", "thursday").expect("clock");
    let config = upstream::UpstreamConfig::default();
    let now = sverka_collector::now();
    let pushed = upstream::push(lower.store.as_ref(), &clock, 7, &config, now)
        .await
        .expect("pushed");
    assert_eq!(pushed.messages, 2, "{pushed:?}");
    assert_eq!(pushed.weeks_stored, 10, "{pushed:?}");
    assert_eq!(pushed.newest_week.as_deref(), Some("2026-W47"));
    let held = region
        .store
        .links()
        .await
        .expect("links")
        .into_iter()
        .find(|info| info.id == link_id)
        .expect("the link");
    assert_eq!(held.newest_week.as_deref(), Some("2026-W47"));
    let state = lower.store.upstream().await.expect("read").expect("set");
    assert_eq!(state.acknowledged_week.as_deref(), Some("2026-W47"));
    assert_eq!(state.last_error, None);

    let again = upstream::push(lower.store.as_ref(), &clock, 7, &config, now + 1)
        .await
        .expect("pushed again");
    assert_eq!((again.messages, again.weeks_stored), (1, 0), "{again:?}");
}

/// A collector between municipalities and the country: what its municipality sent of
/// its schools' banned messengers goes up as sent (PC names only on a pcs link), and
/// an ended week the municipality has not sent yet is held back until it arrives, or
/// sent as it was frozen here once the grace after the week's end has passed.
#[tokio::test]
async fn a_region_forwards_its_members_schools_and_waits_for_their_week() {
    use sverka_collector::store::{HostListToFreeze, WeeklyFigures};
    use sverka_shared::federation::WeekFigures;

    let region = harness().await;
    let (link_id, _) = link(region.store.as_ref(), region.school_a, Detail::Pcs).await;
    let sent = composed(Detail::Pcs).await;
    let generated_at = sent.generated_at;
    region
        .store
        .store_federated_figures(link_id, &sent, generated_at)
        .await
        .expect("stored");

    let clock = Clock::new("Europe/Moscow", "thursday").expect("clock");
    let week = clock.parse_week("2026-W47").expect("a week");
    // The region freezes the week with the municipality's last current figures.
    let organizations = region.store.organizations().await.expect("organizations");
    let frozen: Vec<WeeklyFigures> = organizations
        .iter()
        .map(|organization| WeeklyFigures {
            organization_id: organization.id,
            week: week.label.clone(),
            expected_pcs: 1,
            enrolled: 1,
            reporting: 1,
            silent: 0,
            with_banned: 1,
            with_approved: 0,
            known: Some(1),
            silent_with_banned: Some(0),
            used_approved: None,
            used_banned: None,
            late: false,
        })
        .collect();
    let hosts = HostListToFreeze {
        week: week.label.clone(),
        boundaries: "|".into(),
        silent_before: 0,
    };
    region
        .store
        .freeze_weekly_figures(&frozen, &[], &hosts, week.end)
        .await
        .expect("frozen");

    let to_country = UpstreamLink {
        url: "https://country.example".into(),
        secret: String::new(),
        allow_http: false,
        configured_at: 0,
        upstream_organization: "Country".into(),
        detail: Detail::Counts,
        acknowledged_week: None,
        last_attempt_at: None,
        last_success_at: None,
        last_error: None,
    };
    let compose = |link: UpstreamLink, now: i64| {
        let store = region.store.clone();
        let clock = clock.clone();
        async move {
            upstream::compose(store.as_ref(), &clock, 7, &link, now)
                .await
                .expect("composed")
        }
    };
    // The municipality's school with Telegram goes up under its own key, without the
    // PC's name on a counts link and with it on a pcs link.
    let lower_key = &sent.violations[0].organization;
    let school_name = &sent
        .organizations
        .iter()
        .find(|organization| &organization.key == lower_key)
        .expect("listed")
        .name;
    let school_key = organizations
        .iter()
        .find(|organization| {
            organization.federated_link_id == Some(link_id) && &organization.name == school_name
        })
        .map(|organization| organization.id.to_string())
        .expect("the federated school");
    let up = compose(to_country.clone(), week.end + 3_600).await;
    assert_eq!(up.check(), Ok(()));
    let forwarded = up
        .violations
        .iter()
        .find(|row| row.organization == school_key)
        .expect("the federated school's violation goes up");
    assert_eq!((forwarded.app_id.as_str(), forwarded.pcs), ("telegram", 1));
    assert!(forwarded.hosts.is_empty(), "{forwarded:?}");
    let with_names = UpstreamLink {
        detail: Detail::Pcs,
        ..to_country.clone()
    };
    let up_with_names = compose(with_names, week.end + 3_600).await;
    let forwarded = up_with_names
        .violations
        .iter()
        .find(|row| row.organization == school_key)
        .expect("forwarded");
    assert_eq!(forwarded.hosts, ["kab-12"]);

    // An hour after the week's end the municipality's week has not come: held back.
    assert!(up.weeks.is_empty(), "{:?}", up.weeks);
    // Past the grace it goes up as frozen here.
    let late = compose(
        to_country.clone(),
        week.end + upstream::LATE_MEMBER_GRACE_SECONDS + 1,
    )
    .await;
    assert!(late.weeks.iter().any(|row| row.week == week.label));

    // Once the municipality's week has arrived, it goes up at once, with its figures.
    let mut with_week = sent.clone();
    with_week.generated_at = generated_at + 1;
    with_week.message_id = "with-week".into();
    with_week.weeks = sent
        .organizations
        .iter()
        .map(|organization| WeekFigures {
            week: week.label.clone(),
            organization: organization.key.clone(),
            expected_pcs: 5,
            enrolled: 4,
            reporting: 4,
            silent: 0,
            with_banned: 2,
            with_approved: 2,
            known: Some(4),
            silent_with_banned: Some(0),
            used_approved: Some(2),
            used_banned: Some(1),
        })
        .collect();
    region
        .store
        .store_federated_figures(link_id, &with_week, generated_at + 2)
        .await
        .expect("stored");
    let up = compose(to_country, week.end + 3_600).await;
    let school_week = up
        .weeks
        .iter()
        .find(|row| row.week == week.label && row.organization == school_key)
        .expect("the federated school's week goes up");
    assert_eq!(
        (school_week.enrolled, school_week.used_banned),
        (4, Some(1))
    );
}
