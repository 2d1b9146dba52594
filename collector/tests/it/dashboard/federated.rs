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
