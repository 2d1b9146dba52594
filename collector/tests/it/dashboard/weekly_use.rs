//! The weekly report's use figures (issue 20) as the officer reads them: PCs that used
//! an approved or a banned messenger in the week, per application, the ranking of the
//! schools, frozen with the week; and the weekly report's recipients checked when
//! entered.

use super::officer::{DAY, report_with_uses};
use super::*;

fn use_of(app: &str, status: &str, at: i64) -> sverka_collector::store::AppUse {
    sverka_collector::store::AppUse {
        app_id: app.into(),
        status: status.parse().expect("a status"),
        used_at: at,
    }
}

/// The weekly report's use figures (issue 20): a PC that used MAX last week and not
/// this one, a PC that used Telegram this week; frozen with last week, live for this
/// one, with the change, per application and the ranking of the schools; in the page,
/// the JSON API and the workbook; a week frozen before use was counted says so.
#[tokio::test]
async fn the_weekly_report_counts_use_and_ranks_the_schools() {
    let harness = harness().await;
    let clock = &harness.state.clock;
    let store = harness.store.as_ref();
    let now = sverka_collector::now();
    let current = clock.week_of(now);
    let last_week = clock.previous(&current);
    let older = clock.previous(&last_week);
    let max = || finding("max", "approved", "/var/lib/dpkg/status");
    let telegram = || finding("telegram", "banned", "/var/lib/dpkg/status");

    let a_max = enrolled_host(store, harness.school_a, "a-max").await;
    let b_both = enrolled_host(store, harness.school_b, "b-both").await;
    report_with_uses(
        store,
        a_max,
        last_week.start + DAY,
        vec![max()],
        vec![use_of("max", "approved", last_week.start + 7_200)],
    )
    .await;
    report_with_uses(
        store,
        b_both,
        last_week.start + DAY,
        vec![max(), telegram()],
        vec![use_of("max", "approved", last_week.start + DAY - 10)],
    )
    .await;
    let this_week = now.min(current.start + 60);
    report_with_uses(
        store,
        b_both,
        this_week,
        vec![max(), telegram()],
        vec![use_of("telegram", "banned", this_week)],
    )
    .await;
    web::figures::freeze_week(store, &last_week, 7, now)
        .await
        .expect("freeze");

    let mut officer = Client::login(&harness, "officer").await;
    let token = officer.create_api_token("use").await;
    let mut raw = Client::new(&harness);
    let mut weekly_api = async |week: &str| {
        let request = Request::get(format!(
            "/api/v1/dashboard/organizations/{}/weekly?week={week}",
            harness.region
        ))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
        let answer = raw.send(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        serde_json::from_slice::<serde_json::Value>(&answer.body).expect("json")
    };
    let frozen = weekly_api(&last_week.label).await;
    assert_eq!(frozen["frozen"], true, "{frozen}");
    let total = &frozen["total"];
    assert_eq!(total["pcs_that_used_an_approved_messenger"], 2, "{frozen}");
    assert_eq!(total["pcs_that_used_a_banned_messenger"], 0, "{frozen}");
    assert_eq!(
        frozen["applications_used"],
        serde_json::json!([{"app": "max", "name": "MAX", "status": "approved", "pcs_that_used_it": 2}])
    );
    let by_school = |json: &serde_json::Value, school: i64, field: &str| {
        json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["organization_id"] == school)
            .map(|row| row[field].clone())
    };
    assert_eq!(
        by_school(
            &frozen,
            harness.school_a,
            "pcs_that_used_an_approved_messenger"
        ),
        Some(1.into())
    );
    let live = weekly_api(&current.label).await;
    assert_eq!(live["state"], "live", "{live}");
    assert_eq!(
        live["total"]["pcs_that_used_an_approved_messenger"], 0,
        "{live}"
    );
    assert_eq!(
        live["total"]["pcs_that_used_a_banned_messenger"], 1,
        "{live}"
    );
    assert_eq!(
        by_school(&live, harness.school_b, "pcs_that_used_a_banned_messenger"),
        Some(1.into())
    );
    // The overview's rows do not count use and leave its fields out.
    let request = Request::get(format!(
        "/api/v1/dashboard/organizations/{}/overview",
        harness.region
    ))
    .header(header::AUTHORIZATION, format!("Bearer {token}"))
    .body(Body::empty())
    .expect("request");
    let overview = Client::new(&harness).send(request).await.text();
    assert!(overview.contains("\"with_banned\""), "{overview}");
    assert!(!overview.contains("pcs_that_used"), "{overview}");

    // The page: the use table with its change, the applications, the ranking.
    let page = officer
        .get(&format!(
            "/org/{}/weekly?week={}",
            harness.region, current.label
        ))
        .await
        .text();
    assert!(page.contains("id=\"use-title\""), "{page}");
    assert!(page.contains(&format!("id=\"use-{}-{}\"", harness.region, current.label)));
    assert!(page.contains("Использовали запрещённый мессенджер, ПК"));
    // Telegram this week, MAX the week before (none this week: −2).
    let applications = page
        .split(&format!("id=\"use-by-application-{}", harness.region))
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    let telegram_row = applications
        .find("TELEGRAM")
        .or(applications.find("Telegram"));
    assert!(telegram_row.is_some(), "{applications}");
    assert!(
        applications.contains("−2") || applications.contains("-2"),
        "{applications}"
    );
    let ranking = page
        .split("id=\"use-ranking-title\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{page}"));
    // No school used an approved messenger this week (share 0); B comes first, with
    // its PC where Telegram was used.
    let first_row = ranking
        .split("<tbody>")
        .nth(1)
        .and_then(|body| body.split("</tr>").next())
        .unwrap_or_else(|| panic!("{ranking}"));
    assert!(first_row.contains("Школа Б"), "{first_row}");

    // A PC's page: each application's last use and the weeks it was used in.
    let host_page = officer.get(&format!("/host/{b_both}")).await.text();
    assert!(host_page.contains("Недели использования"), "{host_page}");
    let telegram_row = host_page
        .split("<tr>")
        .find(|row| row.contains("<td>TELEGRAM</td>"))
        .unwrap_or_else(|| panic!("{host_page}"));
    assert!(telegram_row.contains(&current.label), "{telegram_row}");
    assert!(!telegram_row.contains(&last_week.label), "{telegram_row}");
    let max_row = host_page
        .split("id=\"section-approved\"")
        .nth(1)
        .and_then(|approved| {
            approved
                .split("<tr>")
                .find(|row| row.contains("<td>MAX</td>"))
        })
        .unwrap_or_else(|| panic!("{host_page}"));
    assert!(max_row.contains(&last_week.label), "{max_row}");
    assert!(!max_row.contains(&current.label), "{max_row}");

    // The workbook has the use, the applications and the ranking as sheets.
    let xlsx = officer
        .get(&format!(
            "/org/{}/weekly/export/xlsx?week={}",
            harness.region, last_week.label
        ))
        .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    use calamine::{Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.body.clone())).expect("xlsx");
    let names = workbook.sheet_names();
    for sheet in ["Использование", "По приложениям", "Рейтинг школ"]
    {
        assert!(names.iter().any(|name| name == sheet), "{names:?}");
    }
    let range = workbook
        .worksheet_range("По приложениям")
        .expect("applications sheet");
    let cells: Vec<String> = range.cells().map(|(_, _, cell)| cell.to_string()).collect();
    assert!(cells.iter().any(|cell| cell == "MAX"), "{cells:?}");
    assert!(cells.iter().any(|cell| cell == "разрешён"), "{cells:?}");

    // A week frozen before use was counted has no use figures, not zeros.
    let figures = sverka_collector::store::WeeklyFigures {
        organization_id: harness.region,
        week: older.label.clone(),
        expected_pcs: 5,
        enrolled: 3,
        reporting: 2,
        silent: 1,
        with_banned: 1,
        with_approved: 1,
        known: Some(2),
        silent_with_banned: Some(0),
        used_approved: None,
        used_banned: None,
        late: false,
    };
    store
        .freeze_weekly_figures(
            &[figures],
            &[],
            &sverka_collector::store::HostListToFreeze {
                week: older.label.clone(),
                boundaries: "|".into(),
                silent_before: older.start,
            },
            now,
        )
        .await
        .expect("freeze");
    let page = officer
        .get(&format!(
            "/org/{}/weekly?week={}",
            harness.region, older.label
        ))
        .await
        .text();
    assert!(page.contains("id=\"use-not-counted\""), "{page}");
    let old = weekly_api(&older.label).await;
    assert!(
        old["total"]
            .get("pcs_that_used_an_approved_messenger")
            .is_none(),
        "{old}"
    );
}

/// The weekly page's mail section: recipients entered by an officer (an entry that is
/// not an address refused, naming it, nothing saved), shown on the page and in the
/// audit log; a school admin sees no form; "send now" on a collector without `[mail]`
/// says so.
#[tokio::test]
async fn weekly_report_recipients_are_checked_when_entered() {
    let harness = harness().await;
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let last_week = clock.previous(&clock.week_of(now));
    web::figures::freeze_week(harness.store.as_ref(), &last_week, 7, now)
        .await
        .expect("freeze");
    let page = format!("/org/{}/weekly?week={}", harness.school_a, last_week.label);
    let action = format!("/org/{}/weekly/recipients", harness.school_a);
    let mut officer = Client::login(&harness, "officer").await;
    let text = officer.get(&page).await.text();
    assert!(text.contains("id=\"mail-title\""), "{text}");
    assert!(
        text.contains("Получатели еженедельного отчёта не заданы"),
        "{text}"
    );
    assert!(
        text.contains("Почта на этом сборщике не настроена"),
        "{text}"
    );

    let refused = officer
        .submit(
            &page,
            &action,
            &[
                ("recipients", "ivanova@edu.example, ivanova-at-edu"),
                ("week", &last_week.label),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.text().contains("«ivanova-at-edu»"),
        "{}",
        refused.text()
    );
    let school = harness
        .store
        .organization(harness.school_a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(school.report_recipients, None, "nothing saved");

    let saved = officer
        .submit(
            &page,
            &action,
            &[
                ("recipients", "ivanova@edu.example; petrov@uo.example"),
                ("week", &last_week.label),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text());
    let text = officer.get(&page).await.text();
    assert!(
        text.contains("Получатели еженедельного отчёта: ivanova@edu.example, petrov@uo.example"),
        "{text}"
    );
    let audit = harness.store.audit_log(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|entry| entry.action == "report_recipients"),
        "{audit:?}"
    );

    // "Send now" without a mail server: refused with the reason, nothing recorded.
    let send = officer
        .submit(
            &page,
            &format!(
                "/org/{}/weekly/send?week={}",
                harness.school_a, last_week.label
            ),
            &[],
        )
        .await;
    assert_eq!(send.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        send.text().contains("Почта не настроена"),
        "{}",
        send.text()
    );
    assert!(
        harness
            .store
            .weekly_mail(harness.school_a, &last_week.label)
            .await
            .unwrap()
            .is_none()
    );

    // A school admin reads the section but has no form.
    let mut school_admin = Client::login(&harness, "school-a").await;
    let text = school_admin.get(&page).await.text();
    assert!(text.contains("id=\"mail-title\""), "{text}");
    assert!(!text.contains("name=\"recipients\""), "{text}");
}
