//! What pages and exports show: agent strings escaped, exports read back, status
//! words translated, dates and weeks in each organization's time zone.

use super::*;

#[tokio::test]
async fn agent_strings_are_escaped_and_exports_read_back() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let school = officer
        .get(&format!("/school/{}", harness.school_a))
        .await
        .text();
    assert!(school.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!school.contains(XSS_HOST));
    let host = officer
        .get(&format!("/host/{}", harness.host_a))
        .await
        .text();
    assert!(host.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!host.contains("<img"));

    let csv = officer
        .get(&format!(
            "/school/{}/export/violations/csv",
            harness.school_a
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("disposition")
            .contains(".csv")
    );
    let text = String::from_utf8(csv.body.clone()).expect("utf-8");
    assert!(text.starts_with("\u{feff}Компьютер;Приложение;"), "{text}");
    assert!(text.contains(XSS_HOST));
    assert!(text.contains("'=cmd|"), "formula neutralised: {text}");

    let xlsx = officer
        .get(&format!("/org/{}/export/xlsx", harness.region))
        .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    use calamine::{Data, Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.body.clone())).expect("an xlsx workbook");
    let sheet = workbook
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("range");
    let rows: Vec<Vec<Data>> = sheet.rows().map(|row| row.to_vec()).collect();
    // The title block (organization, week, live "as of", generated at), an empty row,
    // then the header.
    assert_eq!(rows[0][0], Data::String("Обзор — Регион".into()));
    assert!(
        matches!(&rows[1][0], Data::String(line) if line.contains("текущая неделя") && line.contains("по состоянию на")),
        "{:?}",
        rows[1]
    );
    assert!(matches!(&rows[2][0], Data::String(line) if line.starts_with("Сформировано: ")));
    assert_eq!(rows[4][0], Data::String("Организация".into()));
    let disposition = xlsx.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .expect("disposition");
    assert!(
        disposition.contains("filename*=UTF-8''%D0%9E%D0%B1%D0%B7%D0%BE%D1%80-%D0%A0%D0%B5%D0%B3%D0%B8%D0%BE%D0%BD-20"),
        "Обзор-Регион-<week>.xlsx: {disposition}"
    );
    // Школа А: 3 expected, 2 enrolled, 1 reporting, 1 silent (never reported), 1 with
    // banned, none of them silent, 1 with approved, share 100 % (of the 1 known).
    let school_a = rows
        .iter()
        .find(|row| row[0] == Data::String("Школа А".into()))
        .expect("school A row");
    assert_eq!(
        school_a[1..9].to_vec(),
        vec![
            Data::Float(3.0),
            Data::Float(2.0),
            Data::Float(1.0),
            Data::Float(1.0),
            Data::Float(1.0),
            Data::Float(0.0),
            Data::Float(1.0),
            Data::Float(1.0),
        ]
    );
    let total = rows.last().expect("totals");
    assert_eq!(total[0], Data::String("Итого".into()));
    assert_eq!(total[2], Data::Float(3.0), "enrolled in the region");

    let host_csv = officer
        .get(&format!("/school/{}/export/clean/csv", harness.school_b))
        .await
        .text();
    assert!(host_csv.contains("'=HYPERLINK"), "{host_csv}");
}

/// The findings table's status, strength and cause words follow the user's language on
/// the page and in its exports.
#[tokio::test]
async fn status_words_are_translated_on_pages_and_exports() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let host_page = format!("/host/{}", harness.host_a);
    let findings_csv = format!("/host/{}/export/findings/csv", harness.host_a);
    let russian = officer.get(&host_page).await.text();
    assert!(russian.contains("<td>запрещено</td>"), "{russian}");
    assert!(russian.contains("<td>установлено</td>"), "{russian}");
    assert!(russian.contains("<td>отчёт ПК</td>"), "{russian}");
    assert!(!russian.contains("<td>banned</td>"));
    let csv = officer.get(&findings_csv).await.text();
    assert!(csv.contains(";запрещено;установлено;"), "{csv}");
    let catalog = officer.get("/catalog").await.text();
    assert!(catalog.contains("<td>запрещено</td>"), "{catalog}");

    officer
        .submit(&host_page, "/language", &[("language", "en")])
        .await;
    let english = officer.get(&host_page).await.text();
    assert!(english.contains("<td>banned</td>"), "{english}");
    assert!(english.contains("<td>installed</td>"), "{english}");
    assert!(english.contains("<td>PC report</td>"), "{english}");
    let csv = officer.get(&findings_csv).await.text();
    assert!(csv.contains(";banned;installed;"), "{csv}");
}

/// An organization's own time zone (or its parent's) dates its pages and exports and
/// bounds its weeks; unknown zone names are refused.
#[tokio::test]
async fn organization_time_zones_for_dates_and_weeks() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let moscow = &harness.state.clock;
    let kamchatka = moscow.with_zone("Asia/Kamchatka").expect("zone");
    let samara = moscow.with_zone("Europe/Samara").expect("zone");
    let enrolled_at = |host_id: i64| async move {
        store
            .host_detail(host_id)
            .await
            .expect("detail")
            .expect("host")
            .enrolled_at
    };
    let (at_a, at_b) = (
        enrolled_at(harness.host_a).await,
        enrolled_at(harness.host_b).await,
    );
    let mut officer = Client::login(&harness, "officer").await;
    let page_a = format!("/host/{}", harness.host_a);
    let page_b = format!("/host/{}", harness.host_b);
    assert!(
        officer
            .get(&page_a)
            .await
            .text()
            .contains(&moscow.date_time(at_a))
    );

    // The school's own zone; the other school inherits the region's.
    store
        .set_organization_time_zone(harness.school_a, Some("Asia/Kamchatka"))
        .await
        .expect("set");
    store
        .set_organization_time_zone(harness.region, Some("Europe/Samara"))
        .await
        .expect("set");
    let text = officer.get(&page_a).await.text();
    assert!(text.contains(&kamchatka.date_time(at_a)), "{text}");
    assert!(!text.contains(&moscow.date_time(at_a)));
    let appeared_at = store.finding_events(harness.host_a).await.expect("events")[0].at;
    let csv = officer
        .get(&format!("/host/{}/export/timeline/csv", harness.host_a))
        .await
        .text();
    assert!(csv.contains(&kamchatka.date_time(appeared_at)), "{csv}");
    assert!(!csv.contains(&moscow.date_time(appeared_at)), "{csv}");
    let text = officer.get(&page_b).await.text();
    assert!(text.contains(&samara.date_time(at_b)), "{text}");

    // Unknown names are refused by the store and by the form; empty inherits again.
    assert!(matches!(
        store
            .set_organization_time_zone(harness.school_b, Some("Mars/Olympus"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let overview = format!("/org/{}", harness.region);
    let children = format!("{overview}/children");
    let mut add_school = async |name: &str, time_zone: &str| {
        let fields = [("name", name), ("kind", "school"), ("time_zone", time_zone)];
        officer.submit(&overview, &children, &fields).await
    };
    let refused = add_school("Школа В", "Mars/Olympus").await;
    assert_ne!(refused.status, StatusCode::SEE_OTHER, "{}", refused.text());
    let added = add_school("Школа Г", "Asia/Omsk").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text());
    let organizations = store.organizations().await.expect("list");
    let school_g = organizations
        .iter()
        .find(|organization| organization.name == "Школа Г")
        .expect("added")
        .clone();
    assert_eq!(school_g.time_zone.as_deref(), Some("Asia/Omsk"));
    assert!(
        organizations
            .iter()
            .all(|organization| organization.name != "Школа В")
    );
    let region = store
        .set_organization_time_zone(harness.region, Some(""))
        .await
        .expect("inherit");
    assert_eq!(region.time_zone, None);

    // Thursday 26 November 2026, 20:00 UTC: Friday 08:00 in Kamchatka, so its week
    // 2026-W48 has ended there; still Thursday (23:00) in Moscow, where the last
    // ended week is 2026-W47.
    let now = 1_795_723_200;
    web::figures::freeze_ended_weeks(store, moscow, 7, now)
        .await
        .expect("freeze");
    let frozen = |week: &'static str| async move {
        let mut ids: Vec<i64> = store
            .weekly_figures_of_week(week)
            .await
            .expect("figures")
            .iter()
            .map(|figures| figures.organization_id)
            .collect();
        ids.sort_unstable();
        ids
    };
    // Школа Г (Omsk, Friday 02:00) has ended the week too.
    let mut ended_east = vec![harness.school_a, school_g.id];
    ended_east.sort_unstable();
    assert_eq!(frozen("2026-W48").await, ended_east);
    let mut moscow_ids = [harness.region, harness.school_b];
    moscow_ids.sort_unstable();
    let w47 = frozen("2026-W47").await;
    assert!(!w47.contains(&harness.school_a), "{w47:?}");
    assert!(moscow_ids.iter().all(|id| w47.contains(id)), "{w47:?}");
}
