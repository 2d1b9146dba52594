//! Federated organizations on an upstream's overview: counted with their lower
//! collector's figures, marked with how old those are, and "late" (still counted with
//! the last figures, never as zero) when none arrived this week.

use super::*;
use std::collections::BTreeMap;
use sverka_shared::federation::{
    CurrentFigures, Detail, FEDERATION_PROTOCOL, FiguresMessage, MemberOrganization,
    SchoolViolations,
};

fn message(name: &str, generated_at: i64, enrolled: i64) -> FiguresMessage {
    FiguresMessage {
        protocol: FEDERATION_PROTOCOL,
        message_id: format!("{name}-{generated_at}"),
        generated_at,
        organizations: vec![MemberOrganization {
            key: "1".into(),
            parent: None,
            name: name.into(),
            kind: "municipality".into(),
            expected_pcs: 50,
        }],
        current: vec![CurrentFigures {
            organization: "1".into(),
            enrolled,
            reporting: enrolled,
            silent: 0,
            with_banned: 3,
            with_approved: enrolled - 3,
            known: enrolled,
            silent_with_banned: 0,
        }],
        violations: Vec::new(),
        used: Vec::new(),
        week: None,
        weeks: Vec::new(),
        not_understood: BTreeMap::new(),
    }
}

#[tokio::test]
async fn federated_members_are_counted_marked_and_shown_late_not_as_zero() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let now = sverka_collector::now();
    for (name, generated_at, enrolled) in [
        ("Северодвинск (свой сервер)", now - 60, 40),
        // Counted three weeks ago and not since.
        ("Новодвинск (свой сервер)", now - 21 * 86_400, 30),
    ] {
        let link = store
            .create_link(harness.region, &"e".repeat(64), Detail::Counts, now)
            .await
            .expect("link");
        store
            .store_federated_figures(link.id, &message(name, generated_at, enrolled), now)
            .await
            .expect("stored");
    }
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer.get(&format!("/org/{}", harness.region)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    let row = |name: &str| {
        let start = text
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {text}"));
        text[start..start + text[start..].find("</tr>").expect("row end")].to_string()
    };
    let fresh = row("Северодвинск (свой сервер)");
    assert!(fresh.contains("данные своего сервера от"), "{fresh}");
    assert!(!fresh.contains("опаздывает"), "{fresh}");
    assert!(fresh.contains(">40<"), "{fresh}");
    let late = row("Новодвинск (свой сервер)");
    assert!(late.contains("опаздывает"), "{late}");
    assert!(
        late.contains(">30<"),
        "counted with its last figures: {late}"
    );
    // The weekly report's live week says the same of the late member.
    let weekly = officer
        .get(&format!("/org/{}/weekly", harness.region))
        .await
        .text();
    let start = weekly
        .find("Новодвинск (свой сервер)")
        .unwrap_or_else(|| panic!("the late member on the weekly page: {weekly}"));
    let late_row = &weekly[start..start + weekly[start..].find("</tr>").expect("row end")];
    assert!(late_row.contains("опаздывает"), "{late_row}");
    let start = weekly
        .find("Северодвинск (свой сервер)")
        .expect("the fresh member");
    let fresh_row = &weekly[start..start + weekly[start..].find("</tr>").expect("row end")];
    assert!(!fresh_row.contains("опаздывает"), "{fresh_row}");

    // The ended week, frozen here with each member's last figures. Северодвинск then
    // sends the week its own collector froze: its row and the region's total count
    // that; Новодвинск, which sent nothing, stays late in the frozen week too.
    let clock = &harness.state.clock;
    let last_week = clock.previous(&clock.week_of(now));
    web::figures::freeze_week(store, &last_week, 7, now)
        .await
        .expect("freeze");
    let frozen_path = format!("/org/{}/weekly?week={}", harness.region, last_week.label);
    let before = officer.get(&frozen_path).await.text();
    assert!(before.contains("неделя закрыта"), "{before}");
    let severodvinsk = store
        .links()
        .await
        .expect("links")
        .into_iter()
        .next()
        .expect("the first link");
    let mut with_week = message("Северодвинск (свой сервер)", now - 30, 40);
    with_week
        .weeks
        .push(sverka_shared::federation::WeekFigures {
            week: last_week.label.clone(),
            organization: "1".into(),
            expected_pcs: 50,
            enrolled: 44,
            reporting: 44,
            silent: 0,
            with_banned: 2,
            with_approved: 42,
            known: Some(44),
            silent_with_banned: Some(0),
            used_approved: None,
            used_banned: None,
        });
    store
        .store_federated_figures(severodvinsk.id, &with_week, now)
        .await
        .expect("stored");
    let frozen = officer.get(&frozen_path).await.text();
    let row_of = |page: &str, name: &str| {
        let start = page
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {page}"));
        page[start..start + page[start..].find("</tr>").expect("row end")].to_string()
    };
    let sent_row = row_of(&frozen, "Северодвинск (свой сервер)");
    assert!(sent_row.contains(">44<"), "{sent_row}");
    assert!(!sent_row.contains("опаздывает"), "{sent_row}");
    assert!(
        row_of(&frozen, "Новодвинск (свой сервер)").contains("опаздывает"),
        "{frozen}"
    );
    let region_week = store
        .weekly_figures_of_week(&last_week.label)
        .await
        .expect("frozen figures")
        .into_iter()
        .find(|row| row.organization_id == harness.region)
        .expect("the region's week");
    let region_before = store.coverage(harness.region, 0).await.expect("coverage")[0].enrolled;
    assert_eq!(region_week.enrolled, region_before - 40 + 44);

    // A federated school's page shows what its collector sent: on a pcs link, the
    // PCs' names.
    let link = store
        .create_link(harness.region, &"f".repeat(64), Detail::Pcs, now)
        .await
        .expect("link");
    let mut with_school = message("Котлас (свой сервер)", now - 30, 12);
    with_school.organizations.push(MemberOrganization {
        key: "2".into(),
        parent: Some("1".into()),
        name: "Котлас: школа №7".into(),
        kind: "school".into(),
        expected_pcs: 12,
    });
    with_school.violations.push(SchoolViolations {
        organization: "2".into(),
        app_id: "telegram".into(),
        pcs: 2,
        hosts: vec!["kab-1".into(), "kab-2".into()],
    });
    store
        .store_federated_figures(link.id, &with_school, now)
        .await
        .expect("stored");
    let school = store
        .organizations()
        .await
        .expect("organizations")
        .into_iter()
        .find(|organization| organization.name == "Котлас: школа №7")
        .expect("the federated school");
    let page = officer.get(&format!("/school/{}", school.id)).await.text();
    assert!(page.contains("section-federated-violations"), "{page}");
    assert!(page.contains("Telegram"), "{page}");
    assert!(page.contains("kab-1, kab-2"), "{page}");
    assert!(page.contains("данные своего сервера от"), "{page}");

    // The region's worklist lists that school's banned messengers beside its own PCs',
    // narrowed by the search; filters its figures cannot answer leave it out.
    let worklist = officer
        .get(&format!("/org/{}/worklist", harness.region))
        .await
        .text();
    let start = worklist
        .find("section-federated-violations")
        .unwrap_or_else(|| panic!("the federated section: {worklist}"));
    let section = &worklist[start..];
    assert!(section.contains("Котлас: школа №7"), "{section}");
    assert!(section.contains("kab-1, kab-2"), "{section}");
    assert!(
        section.contains(&format!("/school/{}", school.id)),
        "{section}"
    );
    let searched = officer
        .get(&format!("/org/{}/worklist?q=kab-2", harness.region))
        .await
        .text();
    assert!(searched.contains("kab-1, kab-2"), "{searched}");
    let other = officer
        .get(&format!(
            "/org/{}/worklist?q=nothing-like-it",
            harness.region
        ))
        .await
        .text();
    assert!(!other.contains("kab-1, kab-2"), "{other}");
    let handled = officer
        .get(&format!("/org/{}/worklist?handled=yes", harness.region))
        .await
        .text();
    assert!(
        !handled.contains("section-federated-violations"),
        "{handled}"
    );

    // The region's total holds both members beside its own PCs.
    let coverage = store.coverage(harness.region, 0).await.expect("coverage");
    let own = coverage[0].enrolled - 70 - 12;
    assert!(own >= 0, "{coverage:?}");
    assert!(
        coverage
            .iter()
            .any(|row| row.organization == "Новодвинск (свой сервер)" && row.enrolled == 30),
        "{coverage:?}"
    );
}

/// The federation page, as the administrators of a region and of a municipality use
/// it: the region makes a link (its secret shown once); the municipality checks the
/// upstream, is shown where its figures will appear and what is sent, confirms, and
/// sends at once; the region sees them arrive; a wrong secret is refused with the
/// upstream's reason; other roles do not see the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_connect_collectors_on_the_federation_page() {
    let region = harness().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let served = region.app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });

    let mut officer = Client::login(&region, "officer").await;
    assert_eq!(
        officer.get("/federation").await.status,
        StatusCode::NOT_FOUND
    );
    let mut region_admin = Client::login(&region, "admin").await;
    let page = region_admin.get("/federation").await.text();
    assert!(page.contains("Вышестоящий сервер не задан"), "{page}");
    assert!(page.contains("Связей нет"), "{page}");
    let created = region_admin
        .submit(
            "/federation",
            "/federation/links",
            &[
                ("organization_id", &region.region.to_string()),
                ("detail", "pcs"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let created = created.text();
    let start = created.find("<code>").expect("the new secret") + "<code>".len();
    let secret = created[start..start + created[start..].find("</code>").expect("end")].to_string();
    assert!(secret.contains('.'), "{secret}");
    // Shown once: the page does not show it again.
    assert!(
        !region_admin
            .get("/federation")
            .await
            .text()
            .contains(&secret)
    );

    let municipality = harness().await;
    let mut admin = Client::login(&municipality, "admin").await;
    // The secret with its last character changed (to another one: a secret that ends
    // in '0' must not be "changed" to itself).
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let wrong_secret = format!("{}{last}", &secret[..secret.len() - 1]);
    let wrong = admin
        .submit(
            "/federation",
            "/federation/upstream/check",
            &[
                ("url", &address),
                ("secret", &wrong_secret),
                ("allow_http", "1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().contains("не подтвердил"), "{}", wrong.text());
    let plain = admin
        .submit(
            "/federation",
            "/federation/upstream/check",
            &[("url", &address), ("secret", &secret)],
        )
        .await;
    assert_eq!(plain.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plain.text().contains("allow-http"), "{}", plain.text());

    let check = admin
        .submit(
            "/federation",
            "/federation/upstream/check",
            &[("url", &address), ("secret", &secret), ("allow_http", "1")],
        )
        .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.text());
    let check = check.text();
    assert!(check.contains("«Регион»"), "{check}");
    assert!(check.contains("имена ПК, на которых он есть"), "{check}");
    // Nothing is saved before the administrator confirms.
    assert_eq!(municipality.store.upstream().await.expect("read"), None);
    let csrf = csrf_of(&check);
    let confirmed = admin
        .post(
            "/federation/upstream",
            &[
                ("csrf", &csrf),
                ("url", &address),
                ("secret", &secret),
                ("allow_http", "1"),
            ],
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.text()
    );
    let saved = municipality
        .store
        .upstream()
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(saved.upstream_organization, "Регион");

    let pushed = admin
        .submit("/federation", "/federation/upstream/push", &[])
        .await;
    assert_eq!(pushed.status, StatusCode::SEE_OTHER, "{}", pushed.text());
    let page = admin.get("/federation").await.text();
    assert!(page.contains(&address), "{page}");
    assert!(!page.contains("upstream-error"), "{page}");
    assert!(
        municipality
            .store
            .upstream()
            .await
            .expect("read")
            .expect("set")
            .last_success_at
            .is_some()
    );
    // The region counts the municipality's PCs and lists when they arrived.
    let coverage = region
        .store
        .coverage(region.region, 0)
        .await
        .expect("coverage");
    assert!(
        coverage
            .iter()
            .any(|row| row.organization == "Регион" && row.enrolled == 6),
        "{coverage:?}"
    );
    let links = region_admin.get("/federation").await.text();
    assert!(!links.contains("никогда</td>"), "{links}");

    // Revoked on the region: the next push from the municipality records the refusal.
    let link_id = secret.split('.').next().expect("id");
    let revoked = region_admin
        .submit(
            "/federation",
            "/federation/links/revoke",
            &[("id", link_id)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    admin
        .submit("/federation", "/federation/upstream/push", &[])
        .await;
    let page = admin.get("/federation").await.text();
    assert!(page.contains("upstream-error"), "{page}");
    assert!(page.contains("revoked"), "{page}");
    let removed = admin
        .submit("/federation", "/federation/upstream/remove", &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(municipality.store.upstream().await.expect("read"), None);
}
