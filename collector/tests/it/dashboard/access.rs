//! Signing in (sessions, CSRF, throttling) and the scope check on pages, exports
//! and the JSON API.

use super::*;

#[tokio::test]
async fn sign_in_sessions_csrf_and_throttling() {
    let harness = harness().await;
    let mut anonymous = Client::new(&harness);
    let answer = anonymous.get(&format!("/org/{}", harness.region)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/login");
    let login_page = anonymous.get("/login").await;
    let csp = login_page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        login_page.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
    assert!(login_page.text().contains("Вход в Сверку"));

    // Without the sign-in form's token the password is not even checked.
    let forged = anonymous
        .post("/login", &[("login", "admin"), ("password", PASSWORD)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let wrong = anonymous.try_login("admin", "wrong password!").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Неверный логин или пароль"));

    let mut admin = Client::login(&harness, "ADMIN").await;
    let cookie = admin
        .cookies
        .get("sverka_session")
        .expect("session")
        .clone();
    assert_eq!(cookie.len(), 64);
    let home = admin.get("/").await;
    assert_eq!(home.location(), format!("/org/{}", harness.region));
    let overview = admin.get(&format!("/org/{}", harness.region)).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.headers.contains_key("server-timing"));

    // A form without its CSRF token is refused and changes nothing.
    let no_token = admin.post("/logout", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(
        admin.get(&format!("/org/{}", harness.region)).await.status,
        StatusCode::OK
    );
    let out = admin
        .submit(&format!("/org/{}", harness.region), "/logout", &[])
        .await;
    assert_eq!(out.location(), "/login");
    // The old cookie no longer works, even when presented again.
    let mut replay = Client::new(&harness);
    replay.cookies.insert("sverka_session".into(), cookie);
    assert_eq!(
        replay
            .get(&format!("/org/{}", harness.region))
            .await
            .location(),
        "/login"
    );

    // Five failures lock the login, even for the right password.
    let mut attacker = Client::new(&harness);
    for _ in 0..web::auth::LOGIN_FAILURES {
        let answer = attacker.try_login("officer", "guess guess guess").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let locked = attacker.try_login("officer", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text().contains("Слишком много попыток"));

    // Every sign-in and failure is in the audit log, which only administrators read.
    let actions: Vec<String> = harness
        .store
        .audit_log(100)
        .await
        .expect("audit")
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    for action in ["login", "login_failed", "logout", "login_throttled"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    let mut school = Client::login(&harness, "school-a").await;
    assert_eq!(school.get("/audit").await.status, StatusCode::NOT_FOUND);
    let mut admin = Client::login(&harness, "admin").await;
    let audit = admin.get("/audit").await;
    assert!(audit.text().contains("login_failed"));
}

#[tokio::test]
async fn scope_is_enforced_on_pages_exports_and_api() {
    let harness = harness().await;
    let mut school = Client::login(&harness, "school-a").await;
    assert_eq!(
        school.get("/").await.location(),
        format!("/school/{}", harness.school_a)
    );
    let own = school.get(&format!("/school/{}", harness.school_a)).await;
    assert_eq!(own.status, StatusCode::OK);
    let foreign_paths = [
        format!("/school/{}", harness.school_b),
        format!("/org/{}", harness.region),
        format!("/org/{}/weekly", harness.school_b),
        format!("/org/{}/enrollment", harness.school_b),
        format!("/host/{}", harness.host_b),
        format!("/host/{}/export/findings/csv", harness.host_b),
        format!("/school/{}/export/violations/xlsx", harness.school_b),
        format!("/org/{}/export/csv", harness.region),
        "/host/999999".to_string(),
        "/users".to_string(),
    ];
    let main_of = |page: String| page[page.find("<main>").expect("main")..].to_string();
    let missing = main_of(school.get("/host/999999").await.text());
    for path in &foreign_paths {
        let answer = school.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        // Another school's PC looks exactly like one that does not exist.
        if path.starts_with("/host/") && !path.contains("export") {
            assert_eq!(main_of(answer.text()), missing, "{path}");
        }
    }
    assert_eq!(
        school
            .get(&format!("/host/{}", harness.host_a))
            .await
            .status,
        StatusCode::OK
    );
    // Forms are checked as well: no secrets or notes in another school.
    let refused = school
        .submit(
            &format!("/school/{}", harness.school_a),
            &format!("/org/{}/secrets", harness.school_b),
            &[("days", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(
        harness
            .store
            .secrets(harness.school_b)
            .await
            .expect("s")
            .len()
            == 1
    );
    let note = school
        .submit(
            &format!("/school/{}", harness.school_a),
            &format!("/host/{}/handled", harness.host_b),
            &[("app_id", "max"), ("note", "x")],
        )
        .await;
    assert_eq!(note.status, StatusCode::NOT_FOUND);

    // The officer covers the region; the API token acts as its user.
    let mut officer = Client::login(&harness, "officer").await;
    assert_eq!(
        officer
            .get(&format!("/host/{}", harness.host_b))
            .await
            .status,
        StatusCode::OK
    );
    let token = school.create_api_token("scripts").await;
    let api = |path: String, token: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    let mut raw = Client::new(&harness);
    let own = raw
        .send(api(
            format!(
                "/api/v1/dashboard/organizations/{}/violations",
                harness.school_a
            ),
            &token,
        ))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    let rows: serde_json::Value = serde_json::from_slice(&own.body).expect("json");
    assert_eq!(rows.as_array().expect("rows").len(), 1);
    assert_eq!(rows[0]["host"], XSS_HOST);
    // The API keeps the stored words, whatever the user's language.
    assert_eq!(
        (&rows[0]["status"], &rows[0]["strength"]),
        (
            &serde_json::json!("banned"),
            &serde_json::json!("installed")
        )
    );
    for path in [
        format!(
            "/api/v1/dashboard/organizations/{}/violations",
            harness.school_b
        ),
        format!("/api/v1/dashboard/hosts/{}", harness.host_b),
        format!(
            "/api/v1/dashboard/organizations/{}/overview",
            harness.region
        ),
    ] {
        let answer = raw.send(api(path.clone(), &token)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let listed = raw
        .send(api("/api/v1/dashboard/organizations".into(), &token))
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).expect("json");
    assert_eq!(listed.as_array().expect("list").len(), 1);
    let bad = raw
        .send(api(
            "/api/v1/dashboard/organizations".into(),
            "sverka_pat_1.0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}
