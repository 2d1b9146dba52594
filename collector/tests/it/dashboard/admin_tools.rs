//! The school admin's and the officer's tools: the agent's installers served from the
//! configured folder (listed, streamed, refused outside the scope and for any name the
//! folder does not list, an MSI written with the school's settings), the audit log in
//! both languages, and the weekly page's figures linked to the worklist.

use super::*;
use sverka_collector::config::DashboardConfig;
use sverka_collector::web::installers::msi_with_settings;

/// A small MSI made here: a Property table with a version and a stale setting.
fn small_msi() -> Vec<u8> {
    let mut package =
        msi::Package::create(msi::PackageType::Installer, Cursor::new(Vec::new())).expect("msi");
    package
        .create_table(
            "Property",
            vec![
                msi::Column::build("Property").primary_key().id_string(72),
                msi::Column::build("Value").formatted_string(0),
            ],
        )
        .expect("table");
    package
        .insert_rows(
            msi::Insert::into("Property")
                .row(vec!["ProductVersion".into(), "0.1.0".into()])
                .row(vec!["SERVER_URL".into(), "https://old.example".into()]),
        )
        .expect("rows");
    package.flush().expect("flush");
    package.into_inner().expect("inner").into_inner()
}

/// The Property table of an MSI, read with the `msi` crate.
fn properties(msi: &[u8]) -> HashMap<String, String> {
    let mut package = msi::Package::open(Cursor::new(msi.to_vec())).expect("an MSI");
    let rows = package
        .select_rows(msi::Select::table("Property"))
        .expect("Property");
    rows.map(|row| {
        let text = |index: usize| row[index].as_str().unwrap_or_default().to_string();
        (text(0), text(1))
    })
    .collect()
}

/// The harness's router again, with `installers` as the installers folder.
fn with_installers(harness: &mut Harness, installers: &std::path::Path) {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        dashboard: DashboardConfig {
            installers: Some(installers.to_path_buf()),
            ..DashboardConfig::default()
        },
        ..Config::default()
    };
    let state = Arc::new(WebState::new(harness.state.app.clone(), &config).expect("web state"));
    harness.app = sverka_collector::server::router(state.clone());
    harness.state = state;
}

/// The text of the element with `id` on a page (its first text node).
fn element_text(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {page}"));
    let after = &page[start..];
    let open = after.find("<code>").expect("code") + "<code>".len();
    after[open..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn installers_are_listed_streamed_and_written_with_the_schools_settings() {
    let mut harness = harness().await;
    let folder = tempfile::tempdir().expect("installers");
    let deb: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
    let files: [(&str, Vec<u8>); 7] = [
        ("sverka-agent-0.1.0.msi", small_msi()),
        ("sverka-agent-0.1.0-x86.msi", small_msi()),
        ("sverka-agent_0.1.0_amd64.deb", deb.clone()),
        ("sverka-agent-0.1.0-1.x86_64.rpm", b"rpm".to_vec()),
        (
            "sverka-collector_0.1.0_amd64.deb",
            b"not for schools".to_vec(),
        ),
        ("notes.txt", b"private".to_vec()),
        (".sverka-agent.msi", b"hidden".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(folder.path().join(name), bytes).expect("write");
    }
    std::fs::create_dir(folder.path().join("sverka-agent-dir.deb")).expect("dir");
    with_installers(&mut harness, folder.path());
    let school_a = harness.school_a;
    let base = format!("/org/{school_a}/installers");

    let mut school = Client::login(&harness, "school-a").await;
    let page = school
        .get(&format!("/org/{school_a}/enrollment"))
        .await
        .text();
    for listed in &files[..4] {
        assert!(
            page.contains(&format!("href=\"{base}/{}\"", listed.0)),
            "{}: {page}",
            listed.0
        );
    }
    assert!(page.contains("Windows x86, 32-bit (MSI)"));
    for hidden in [
        "sverka-collector_",
        "notes.txt",
        ".sverka-agent.msi",
        "sverka-agent-dir",
    ] {
        assert!(!page.contains(hidden), "{hidden} is offered: {page}");
    }
    assert!(
        !page.contains("msi-with-settings"),
        "no secret shown, no MSI with it"
    );

    // Streamed as it is, named, in the audit log.
    let download = school
        .get(&format!("{base}/sverka-agent_0.1.0_amd64.deb"))
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, deb);
    assert_eq!(
        download.headers[header::CONTENT_TYPE],
        "application/vnd.debian.binary-package"
    );
    assert!(
        download.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("disposition")
            .contains("filename=\"sverka-agent_0.1.0_amd64.deb\"")
    );
    // Nothing the folder does not list, nothing outside it, nothing of another school.
    for refused in [
        format!("{base}/notes.txt"),
        format!("{base}/sverka-collector_0.1.0_amd64.deb"),
        format!("{base}/..%2Fnotes.txt"),
        format!("{base}/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"),
        format!("{base}/.sverka-agent.msi"),
        format!("{base}/sverka-agent-dir.deb"),
        format!("{base}/sverka-agent-0.2.0.msi"),
        format!(
            "/org/{}/installers/sverka-agent_0.1.0_amd64.deb",
            harness.school_b
        ),
    ] {
        let answer = school.get(&refused).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{refused}");
    }

    // A new secret: each MSI is offered with it written in.
    let created = school
        .submit(
            &format!("/org/{school_a}/enrollment"),
            &format!("/org/{school_a}/secrets"),
            &[("days", "30")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let page = school
        .get(&format!("/org/{school_a}/enrollment"))
        .await
        .text();
    let secret = element_text(&page, "new-secret");
    assert_eq!(
        page.matches("class=\"msi-with-settings\"").count(),
        2,
        "{page}"
    );
    let csrf = csrf_of(&page);
    let msi_path = format!("{base}/sverka-agent-0.1.0.msi");
    let configured = school
        .post(&msi_path, &[("csrf", &csrf), ("secret", &secret)])
        .await;
    assert_eq!(configured.status, StatusCode::OK, "{}", configured.text());
    assert_eq!(configured.headers[header::CACHE_CONTROL], "no-store");
    let written = properties(&configured.body);
    assert_eq!(written["ENROLL_SECRET"], secret);
    // No public_url and no Host header: the fallback address, plain http here.
    assert_eq!(written["SERVER_URL"], "http://sverka.example");
    assert_eq!(written["ALLOW_HTTP"], "1");
    assert_eq!(written["ProductVersion"], "0.1.0");

    // A secret that is not this school's, a deb, and no CSRF token are refused.
    let secret_b = {
        let mut officer = Client::login(&harness, "officer").await;
        let school_b = harness.school_b;
        officer
            .submit(
                &format!("/org/{school_b}/enrollment"),
                &format!("/org/{school_b}/secrets"),
                &[],
            )
            .await;
        element_text(
            &officer
                .get(&format!("/org/{school_b}/enrollment"))
                .await
                .text(),
            "new-secret",
        )
    };
    for (path, secret) in [
        (msi_path.as_str(), secret_b.as_str()),
        (msi_path.as_str(), "12345.abc"),
        (msi_path.as_str(), "../../etc"),
        (
            &format!("{base}/sverka-agent_0.1.0_amd64.deb") as &str,
            secret.as_str(),
        ),
    ] {
        let answer = school
            .post(path, &[("csrf", &csrf), ("secret", secret)])
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {secret}"
        );
    }
    let no_csrf = school.post(&msi_path, &[("secret", &secret)]).await;
    assert_ne!(no_csrf.status, StatusCode::OK);

    // The audit log names both downloads, in the reader's language.
    let audit = harness.store.audit_log(50).await.expect("audit");
    let downloads: Vec<&str> = audit
        .iter()
        .filter(|entry| entry.action == "download_installer")
        .map(|entry| entry.detail.as_str())
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    let mut admin = Client::login(&harness, "admin").await;
    let russian = admin.get("/audit").await.text();
    assert!(russian.contains("Установщик скачан"), "{russian}");
    assert!(
        russian.contains("sverka-agent-0.1.0.msi с настройками (секрет"),
        "{russian}"
    );
    assert!(russian.contains("Секрет подключения создан"));
    assert!(russian.contains("Вход"));
    assert!(!russian.contains(">download_installer<"));
    admin
        .submit("/audit", "/language", &[("language", "en")])
        .await;
    let english = admin.get("/audit").await.text();
    assert!(english.contains("Installer downloaded"), "{english}");
    assert!(english.contains("Enrollment secret created"));
    assert!(english.contains("with settings (secret"));
}

/// With no folder configured the page has no installers section and the route is 404.
#[tokio::test]
async fn without_a_folder_no_installers_are_offered() {
    let harness = harness().await;
    let mut school = Client::login(&harness, "school-a").await;
    let school_a = harness.school_a;
    let page = school
        .get(&format!("/org/{school_a}/enrollment"))
        .await
        .text();
    assert!(!page.contains("id=\"installers\""));
    let answer = school
        .get(&format!(
            "/org/{school_a}/installers/sverka-agent-0.1.0.msi"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// The MSI the collector writes, read by msitools' `msiinfo` (the tool Windows
/// packagers use on Linux): the settings are rows of its Property table.
#[test]
fn msiinfo_reads_the_settings_the_collector_wrote() {
    let msiinfo = std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("msiinfo"))
                .find(|candidate| candidate.is_file())
        })
        .expect("msiinfo is missing: install Debian's msitools (scripts/test.sh installs it)");
    let edited = msi_with_settings(
        small_msi(),
        &[
            ("SERVER_URL", "https://sverka.edu.example".into()),
            ("ENROLL_SECRET", "7.abc".into()),
        ],
    )
    .expect("edited");
    let folder = tempfile::tempdir().expect("tempdir");
    let file = folder.path().join("school.msi");
    std::fs::write(&file, edited).expect("write");
    let output = std::process::Command::new(msiinfo)
        .arg("export")
        .arg(&file)
        .arg("Property")
        .output()
        .expect("msiinfo");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    for row in [
        "SERVER_URL\thttps://sverka.edu.example",
        "ENROLL_SECRET\t7.abc",
        "ProductVersion\t0.1.0",
    ] {
        assert!(table.contains(row), "{row}: {table}");
    }
    assert!(
        !table.contains("old.example"),
        "the old value is replaced: {table}"
    );
}

/// The weekly page's counts of PCs with banned messengers link to the worklist behind
/// them while the week is live; a frozen week's figures are not linked to today's list.
#[tokio::test]
async fn the_live_weekly_figures_link_to_the_worklist() {
    let harness = harness().await;
    let region = harness.region;
    let mut officer = Client::login(&harness, "officer").await;
    let live = officer.get(&format!("/org/{region}/weekly")).await.text();
    let school_row = format!("href=\"/org/{region}/worklist?in={}\"", harness.school_a);
    assert!(live.contains(&school_row), "{live}");
    assert!(
        live.contains(&format!(
            "href=\"/org/{region}/worklist?in={}&amp;silent=1\"",
            harness.school_a
        )),
        "{live}"
    );
    assert!(
        live.contains(&format!("href=\"/org/{region}/worklist\"")),
        "the total: {live}"
    );
    // The link leads to the PCs behind the figure.
    let worklist = officer
        .get(&format!("/org/{region}/worklist?in={}", harness.school_a))
        .await;
    assert_eq!(worklist.status, StatusCode::OK);
    assert!(
        worklist
            .text()
            .contains("&lt;img src=x onerror=alert(1)&gt;")
    );

    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let last_week = clock.previous(&clock.week_of(now));
    web::figures::freeze_week(harness.store.as_ref(), &last_week, 7, now)
        .await
        .expect("freeze");
    let frozen = officer
        .get(&format!("/org/{region}/weekly?week={}", last_week.label))
        .await
        .text();
    assert!(frozen.contains("неделя закрыта"), "{frozen}");
    assert!(!frozen.contains("/worklist?in="), "{frozen}");
}
