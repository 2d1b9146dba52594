//! Forms that change things: a catalog entry, the language, handled notes, secrets
//! and the catalog, and the weekly figures they show.

use super::*;

/// The catalog page's small form changes one application or adds one, and the
/// catalog in force follows at once.
#[tokio::test]
async fn one_catalog_entry_from_the_form() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer.get("/catalog").await.text();
    assert!(page.contains("id=\"catalog-entry\""), "{page}");
    let max_row = |page: &str| {
        let start = page.find("<code>max</code>").expect("max in the catalog");
        page[start..start + page[start..].find("</tr>").expect("row end")].to_string()
    };
    assert!(max_row(&page).contains("разрешено"), "{}", max_row(&page));

    let changed = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[
                ("id", "max"),
                ("status", "banned"),
                ("signature_kind", "packages"),
                ("signature", ""),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let text = changed.text();
    assert!(text.contains("catalog-saved"));
    assert!(max_row(&text).contains("запрещено"), "{}", max_row(&text));
    assert_eq!(
        harness
            .state
            .app
            .catalog()
            .matcher
            .catalog()
            .apps
            .iter()
            .find(|app| app.id == "max")
            .map(|app| app.status.as_str()),
        Some("banned")
    );

    let added = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[
                ("id", "element"),
                ("name", "Element"),
                ("status", "watch"),
                ("signature_kind", "packages"),
                ("signature", "element-desktop"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    assert!(
        added.text().contains("packages: element-desktop"),
        "{}",
        added.text()
    );
    let stored = harness
        .store
        .current_catalog()
        .await
        .expect("catalog")
        .expect("stored")
        .overrides;
    assert!(
        stored.contains("id = \"max\"") && stored.contains("id = \"element\""),
        "{stored}"
    );

    // A new application without a status is refused by the catalog's own check, and
    // nothing is stored; school admins cannot use the form.
    let refused = officer
        .submit(
            "/catalog",
            "/catalog/entry",
            &[("id", "nostatus"), ("name", "No status")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    let unchanged = harness
        .store
        .current_catalog()
        .await
        .expect("catalog")
        .expect("stored")
        .overrides;
    assert_eq!(unchanged, stored);
    let mut school = Client::login(&harness, "school-a").await;
    let denied = school
        .submit(
            "/catalog",
            "/catalog/entry",
            &[("id", "max"), ("status", "approved")],
        )
        .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn language_weekly_figures_notes_secrets_and_catalog() {
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let overview_path = format!("/org/{}", harness.region);
    let russian = officer.get(&overview_path).await.text();
    assert!(russian.contains("Отчитались за неделю"));
    officer
        .submit(&overview_path, "/language", &[("language", "en")])
        .await;
    let english = officer.get(&overview_path).await.text();
    assert!(english.contains("Reported this week"), "{english}");
    assert!(english.contains("lang=\"en\""));

    // Freeze last week's figures; the weekly page and its trend read them.
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let last_week = clock.previous(&clock.week_of(now));
    let frozen = web::figures::freeze_week(harness.store.as_ref(), &last_week, 7, now)
        .await
        .expect("freeze");
    assert_eq!(frozen, 3, "one row per organization");
    let weekly = officer
        .get(&format!(
            "/org/{}/weekly?week={}",
            harness.region, last_week.label
        ))
        .await
        .text();
    assert!(weekly.contains(&last_week.label));
    assert!(weekly.contains("frozen"));
    assert!(weekly.contains("<svg"));
    assert!(weekly.contains("<polyline"));
    let weekly_csv = officer
        .get(&format!(
            "/org/{}/weekly/export/csv?week={}",
            harness.region, last_week.label
        ))
        .await
        .text();
    assert!(weekly_csv.starts_with('\u{feff}'));

    // Officers may not mark violations; school admins may.
    let mut school = Client::login(&harness, "school-a").await;
    let host_page = format!("/host/{}", harness.host_a);
    let officer_note = officer
        .submit(
            &host_page,
            &format!("{host_page}/handled"),
            &[("app_id", "telegram"), ("note", "x")],
        )
        .await;
    assert_eq!(officer_note.status, StatusCode::NOT_FOUND);
    let note = school
        .submit(
            &host_page,
            &format!("{host_page}/handled"),
            &[("app_id", "telegram"), ("note", "удалим в понедельник")],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let page = school
        .get(&format!("/school/{}", harness.school_a))
        .await
        .text();
    assert!(page.contains("удалим в понедельник (school-a)"));

    // Secrets: created with the install commands, shown once; school admins cannot revoke.
    // Post/redirect/get: the form answers with a redirect, the page shows the secret
    // once, and a refresh neither shows it again nor creates another.
    let enrollment = format!("/org/{}/enrollment", harness.school_a);
    let posted = school
        .submit(
            &enrollment,
            &format!("/org/{}/secrets", harness.school_a),
            &[("days", "30")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.text());
    assert_eq!(posted.location(), enrollment);
    let created = school.get(&enrollment).await.text();
    assert!(created.contains("id=\"new-secret\""), "{created}");
    assert!(!created.contains("id=\"loopback-warning\""), "{created}");
    let again = school.get(&enrollment).await.text();
    assert!(!again.contains("id=\"new-secret\""), "shown once");
    // Opened on a loopback address, the page warns that other PCs cannot reach it.
    let on_loopback = Request::get(&enrollment)
        .header(header::HOST, "127.0.0.1:8440")
        .header(header::COOKIE, school.cookie_header())
        .body(Body::empty())
        .expect("request");
    let warned = school.send(on_loopback).await.text();
    assert!(warned.contains("id=\"loopback-warning\""), "{warned}");
    assert!(created.contains(&format!(
        "msiexec /i sverka-agent-{}.msi /qn SERVER_URL=",
        env!("CARGO_PKG_VERSION")
    )));
    let secrets = harness
        .store
        .secrets(harness.school_a)
        .await
        .expect("secrets");
    let newest = secrets.last().expect("a secret");
    assert!(created.contains(&format!("ENROLL_SECRET=&quot;{}.", newest.id)));
    let revoke = school
        .submit(
            &format!("/org/{}/enrollment", harness.school_a),
            &format!("/org/{}/secrets/{}/revoke", harness.school_a, newest.id),
            &[],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    let revoke = officer
        .submit(
            &format!("/org/{}/enrollment", harness.school_a),
            &format!("/org/{}/secrets/{}/revoke", harness.school_a, newest.id),
            &[],
        )
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);

    // A catalog change from the page is stored and evaluated at once.
    let bad = officer
        .submit("/catalog", "/catalog", &[("overrides", "[[apps]]\nid = ")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut school_catalog = school.get("/catalog").await.text();
    assert!(
        !school_catalog.contains("catalog-overrides"),
        "school admins only read"
    );
    school_catalog.clear();
    let saved = officer
        .submit("/catalog", "/catalog", &[("overrides", "")])
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert!(saved.text().contains("catalog-saved"));
    assert!(
        harness
            .store
            .current_catalog()
            .await
            .expect("catalog")
            .is_some()
    );
}

/// The recently enrolled PCs of a school; an officer retires one and merges another
/// into the PC it duplicates, both in the audit log; a school admin sees the list but
/// cannot change it.
#[tokio::test]
async fn officers_retire_and_merge_hosts_from_the_recent_enrollments() {
    let harness = harness().await;
    let duplicate = enrolled_host(harness.store.as_ref(), harness.school_a, "a1-again").await;
    let list_path = format!("/org/{}/hosts", harness.school_a);
    let mut school = Client::login(&harness, "school-a").await;
    let listed = school.get(&list_path).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.text().contains("recent-hosts"));
    assert!(
        !listed.text().contains("/retire"),
        "school admins only read"
    );
    let refused = school
        .submit(&list_path, &format!("/host/{}/retire", harness.host_a), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);

    let mut officer = Client::login(&harness, "officer").await;
    let page = officer.get(&list_path).await.text();
    assert!(page.contains(&format!("/host/{duplicate}/merge")), "{page}");
    let merged = officer
        .submit(
            &list_path,
            &format!("/host/{duplicate}/merge"),
            &[("into", &harness.host_a.to_string())],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.text());
    let into_itself = officer
        .submit(
            &list_path,
            &format!("/host/{}/merge", harness.host_a),
            &[("into", &harness.host_a.to_string())],
        )
        .await;
    assert_eq!(into_itself.status, StatusCode::UNPROCESSABLE_ENTITY);
    let silent = harness
        .store
        .silent_hosts(harness.school_a, sverka_collector::now())
        .await
        .expect("silent")
        .into_iter()
        .find(|row| row.host_id != harness.host_a)
        .expect("the silent PC")
        .host_id;
    let retired = officer
        .submit(&list_path, &format!("/host/{silent}/retire"), &[])
        .await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER);
    let coverage = harness
        .store
        .coverage(harness.school_a, 0)
        .await
        .expect("coverage");
    assert_eq!(coverage[0].enrolled, 1);
    let audit = harness.store.audit_log(10).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert!(actions.contains(&"retire_host"), "{actions:?}");
    assert!(actions.contains(&"merge_host"), "{actions:?}");
    let page = officer.get(&list_path).await.text();
    assert!(page.contains(&format!("/host/{}", harness.host_a)));
}
