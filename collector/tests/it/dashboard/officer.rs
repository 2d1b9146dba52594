//! The officer's figures (issue 19): a PC going silent keeps its violations in the
//! figures, PCs enrolled above school level have their own row, and the rows of every
//! table add up to its totals (checked on random trees).

use super::*;
use sverka_collector::web::i18n::Lang;
use sverka_collector::web::pages::overview::overview_table;
use sverka_collector::web::scope::OrganizationTree;
use sverka_collector::web::table::Cell;

pub(super) const DAY: i64 = 86_400;

/// A report received `days_ago` days ago.
async fn report_days_ago(
    store: &dyn Store,
    host_id: i64,
    days_ago: i64,
    findings: Vec<HostFinding>,
) {
    let at = sverka_collector::now() - days_ago * DAY;
    report_with_uses(store, host_id, at, findings, Vec::new()).await;
}

/// A PC of `school` that last reported, with Telegram, 20 days ago.
async fn silent_pc_with_telegram(store: &dyn Store, school: i64) -> i64 {
    let quiet = enrolled_host(store, school, "b-quiet").await;
    report_days_ago(
        store,
        quiet,
        20,
        vec![finding("telegram", "banned", "/var/lib/dpkg/status")],
    )
    .await;
    quiet
}

fn number(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(value) | Cell::IntLink(value, _) => Some(*value),
        _ => None,
    }
}

/// The overview row of `name`, its counts from column 1 on.
fn counts_of(rows: &[Vec<Cell>], name: &str) -> Vec<i64> {
    let row = rows
        .iter()
        .find(|row| matches!(&row[0], Cell::Link(text, _) | Cell::Text(text) if text == name))
        .unwrap_or_else(|| panic!("a row {name}: {rows:?}"));
    row[1..8].iter().filter_map(number).collect()
}

/// A school cannot improve its figures by switching a PC off: the PC keeps its banned
/// messenger in "with banned", is counted as silent (and "of them silent"), the school
/// page shows it as silent with the age of its report.
#[tokio::test]
async fn a_pc_going_silent_keeps_its_violations() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let quiet = silent_pc_with_telegram(store, harness.school_b).await;
    let tree = OrganizationTree::new(store.organizations().await.expect("tree"));
    let table = overview_table(&harness.state, &tree, harness.region, Lang::Ru)
        .await
        .expect("overview");
    // Expected, enrolled, reported this week, silent, with banned, of them silent,
    // with approved.
    assert_eq!(counts_of(&table.rows, "Школа Б"), vec![2, 2, 1, 1, 1, 1, 1]);
    assert_eq!(counts_of(&table.rows, "Школа А"), vec![3, 2, 1, 1, 1, 0, 1]);
    let totals = table.totals.clone().expect("totals");
    assert_eq!(
        totals[1..8].iter().filter_map(number).collect::<Vec<_>>(),
        vec![5, 4, 2, 2, 2, 1, 2]
    );
    // Shares are of the PCs with a known state: 2 of 3 have an approved one.
    assert_eq!(totals[8], Cell::Share(Some(2.0 / 3.0)));

    let mut officer = Client::login(&harness, "officer").await;
    let overview = officer
        .get(&format!("/org/{}", harness.region))
        .await
        .text();
    assert!(overview.contains("id=\"definitions\""), "{overview}");
    assert!(overview.contains("последний отчёт, каким бы давним"));
    let school = officer
        .get(&format!("/school/{}", harness.school_b))
        .await
        .text();
    let start = school.find("id=\"violations-").expect("violations table");
    let violations = &school[start..start + school[start..].find("</table>").expect("end")];
    assert!(violations.contains("host-"), "{violations}");
    assert!(
        violations.contains("молчит, последний отчёт") && violations.contains("20 дн. назад"),
        "{violations}"
    );

    // It reports again without the messenger: the figures drop for a real reason.
    report_days_ago(store, quiet, 0, vec![]).await;
    let table = overview_table(&harness.state, &tree, harness.region, Lang::Ru)
        .await
        .expect("overview");
    assert_eq!(counts_of(&table.rows, "Школа Б"), vec![2, 2, 2, 0, 0, 0, 1]);
}

/// A small deterministic generator, so a failing tree can be rebuilt from its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Random trees with PCs enrolled at every level (municipality secrets included),
/// some silent, some never reporting: in every table the rows add up to the totals,
/// and each PC is in exactly one row.
#[tokio::test]
async fn rows_add_up_to_the_totals_on_random_trees() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    for seed in 1..=6_u64 {
        let mut random = Lcg(seed);
        let root = organization(store, &format!("Край {seed}"), None, 0).await;
        let mut organizations = vec![root];
        for index in 0..(4 + random.below(6)) {
            let parent = organizations[random.below(organizations.len() as u64) as usize];
            let expected = random.below(4) as i64;
            let id =
                organization(store, &format!("О-{seed}-{index}"), Some(parent), expected).await;
            organizations.push(id);
        }
        let mut hosts = 0;
        for index in 0..(3 + random.below(10)) {
            let at = organizations[random.below(organizations.len() as u64) as usize];
            let host = enrolled_host(store, at, &format!("r{seed}-{index}")).await;
            hosts += 1;
            let findings = match random.below(3) {
                0 => vec![finding("telegram", "banned", "/x")],
                1 => vec![finding("max", "approved", "/opt/max")],
                _ => vec![],
            };
            match random.below(3) {
                0 => {}
                1 => report_days_ago(store, host, 30, findings).await,
                _ => report_days_ago(store, host, 0, findings).await,
            }
        }
        let tree = OrganizationTree::new(store.organizations().await.expect("tree"));
        for id in tree.subtree(root) {
            if tree.children(id).is_empty() {
                continue;
            }
            let table = overview_table(&harness.state, &tree, id, Lang::Ru)
                .await
                .expect("overview");
            let totals = table.totals.clone().expect("totals");
            for column in 1..8 {
                let sum: i64 = table
                    .rows
                    .iter()
                    .filter_map(|row| number(&row[column]))
                    .sum();
                assert_eq!(
                    Some(sum),
                    number(&totals[column]),
                    "seed {seed}, organization {id}, column {column}: {table:?}"
                );
            }
        }
        let table = overview_table(&harness.state, &tree, root, Lang::Ru)
            .await
            .expect("overview");
        let totals = table.totals.expect("totals");
        assert_eq!(
            number(&totals[2]),
            Some(hosts),
            "seed {seed}: every PC counted"
        );
    }
}

/// A PC enrolled with the region's own secret has a row "directly under" the region,
/// which links to its violations.
#[tokio::test]
async fn pcs_enrolled_above_school_level_have_their_own_row() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let direct = enrolled_host(store, harness.region, "region-pc").await;
    report_days_ago(store, direct, 0, vec![finding("telegram", "banned", "/x")]).await;
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer
        .get(&format!("/org/{}", harness.region))
        .await
        .text();
    assert!(page.contains("Напрямую в «Регион»"), "{page}");
    let tree = OrganizationTree::new(store.organizations().await.expect("tree"));
    let table = overview_table(&harness.state, &tree, harness.region, Lang::Ru)
        .await
        .expect("overview");
    assert_eq!(
        counts_of(&table.rows, "Напрямую в «Регион»"),
        vec![0, 1, 1, 0, 1, 0, 0]
    );
    let Cell::Link(_, href) = &table.rows.last().expect("row")[0] else {
        panic!("a link");
    };
    assert_eq!(
        href,
        &format!("/org/{0}/worklist?in={0}&directly=1", harness.region)
    );
}

/// The weekly report never invents: a past week never frozen says "no data" (no table,
/// no export), a future week cannot be opened, the current week is live "as of", a
/// frozen week says so; the chart has gaps, not zeros; the table has change columns.
#[tokio::test]
async fn the_weekly_report_never_invents() {
    let harness = harness().await;
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let current = clock.week_of(now);
    let last_week = clock.previous(&current);
    let long_ago = clock.previous(&clock.previous(&last_week));
    let next_week = clock.week_of(current.end + 3600);
    let mut officer = Client::login(&harness, "officer").await;
    let page = |week: &str| format!("/org/{}/weekly?week={week}", harness.region);

    let before = officer.get(&page(&long_ago.label)).await;
    assert_eq!(before.status, StatusCode::OK);
    let text = before.text();
    assert!(text.contains("id=\"no-data\""), "{text}");
    assert!(
        !text.contains("id=\"weekly-"),
        "no table for a week without data"
    );
    let export = officer
        .get(&format!(
            "/org/{}/weekly/export/xlsx?week={}",
            harness.region, long_ago.label
        ))
        .await;
    assert_eq!(export.status, StatusCode::NOT_FOUND);
    let future = officer.get(&page(&next_week.label)).await;
    assert_eq!(
        future.status,
        StatusCode::NOT_FOUND,
        "future weeks cannot be opened"
    );

    let live = officer.get(&page(&current.label)).await.text();
    assert!(
        live.contains("текущая неделя, данные меняются, по состоянию на"),
        "{live}"
    );
    assert!(
        !live.contains(&format!("week={}\"", next_week.label)),
        "no link to the future"
    );
    assert!(live.contains("Изменение «отчитались»"));
    // Twelve weeks in the chart's table, all but the current one without data.
    let gaps = live.matches("<td class=\"number\">—</td>").count();
    assert_eq!(gaps, 2 * 11, "{live}");
    assert_eq!(live.matches("<polyline class=\"banned\"").count(), 1);

    web::figures::freeze_week(harness.store.as_ref(), &last_week, 7, now)
        .await
        .expect("freeze");
    let frozen = officer.get(&page(&last_week.label)).await.text();
    assert!(
        frozen.contains("неделя закрыта, цифры зафиксированы"),
        "{frozen}"
    );
    let default = officer
        .get(&format!("/org/{}/weekly", harness.region))
        .await
        .text();
    let expected = if clock.is_due_day(now) {
        &current
    } else {
        &last_week
    };
    assert!(
        default.contains(&format!("{} {}", "Неделя", expected.label)),
        "opens on {}: {default}",
        expected.label
    );
    let print = officer
        .get(&format!(
            "/org/{}/weekly/print?week={}",
            harness.region, last_week.label
        ))
        .await;
    assert_eq!(print.status, StatusCode::OK);
    assert!(print.text().contains("id=\"title-block\""));
    assert!(print.text().contains("Еженедельный отчёт — Регион"));

    // The JSON API tells the same three kinds of week apart, never answering zeros.
    let token = officer.create_api_token("weekly").await;
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
        let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        (answer.status, json)
    };
    for week in [&long_ago.label, &next_week.label] {
        let (status, json) = weekly_api(week).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{week}: {json}");
        assert_eq!(json["error"], "no_data", "{json}");
    }
    let (status, json) = weekly_api(&current.label).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (&json["state"], json["frozen"].as_bool()),
        (&"live".into(), Some(false))
    );
    assert!(json["as_of"].is_string(), "{json}");
    let (status, json) = weekly_api(&last_week.label).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["state"], "frozen", "{json}");
    assert!(json.get("as_of").is_none(), "{json}");
}

/// A reporting cut-off per organization: stored checked, inherited, and the weekly
/// page says when the report is due.
#[tokio::test]
async fn a_reporting_cutoff_per_organization() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    store
        .set_organization_report_cutoff(harness.region, Some("Thu 15:00"))
        .await
        .expect("cut-off");
    assert!(matches!(
        store
            .set_organization_report_cutoff(harness.school_a, Some("someday"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let tree = OrganizationTree::new(store.organizations().await.expect("tree"));
    assert_eq!(tree.report_cutoff(harness.school_a), Some("thursday 15:00"));
    let clock = harness.state.clock_for(&tree, harness.school_a);
    let week = clock.week_of(sverka_collector::now());
    assert_eq!(clock.date_time(week.end).get(11..), Some("15:00"));
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer
        .get(&format!("/org/{}/weekly", harness.region))
        .await
        .text();
    assert!(page.contains("Отчёт сдаётся: четверг 15:00"), "{page}");
}

/// The worklist across schools: search, filters, bulk "being handled" for a school
/// admin (post/redirect/get), refused for an officer, exports with a title.
#[tokio::test]
async fn the_worklist_across_schools() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let b2 = enrolled_host(store, harness.school_b, "b2").await;
    report_days_ago(store, b2, 0, vec![finding("telegram", "banned", "/x")]).await;
    let mut officer = Client::login(&harness, "officer").await;
    let base = format!("/org/{}/worklist", harness.region);
    let all = officer.get(&base).await.text();
    assert!(all.contains("id=\"worklist\""), "{all}");
    assert!(all.contains("показано 2 / 2"), "{all}");
    assert!(all.contains("id=\"ranking\""));
    assert!(!all.contains("id=\"bulk-handled\""), "officers do not mark");
    let in_b = officer
        .get(&format!("{base}?in={}", harness.school_b))
        .await
        .text();
    assert!(in_b.contains("показано 1 / 1"), "{in_b}");
    let searched = officer.get(&format!("{base}?q=host-")).await.text();
    assert!(searched.contains("показано 1 / 1"), "{searched}");
    let outside = officer.get(&format!("{base}?in=99999")).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);

    let csv = officer
        .get(&format!(
            "/org/{}/worklist/export/csv?app=telegram",
            harness.region
        ))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(
        csv.text().lines().count(),
        3,
        "header and two rows: {}",
        csv.text()
    );

    let mut school = Client::login(&harness, "school-a").await;
    let own = format!("/org/{}/worklist", harness.school_a);
    let page = school.get(&own).await.text();
    assert!(page.contains("id=\"bulk-handled\""), "{page}");
    let pick = format!("{}:telegram", harness.host_a);
    let marked = school
        .submit(
            &own,
            &format!("{own}/handled"),
            &[
                ("pick", &pick),
                ("note", "удалим в понедельник"),
                ("back", "handled=no"),
            ],
        )
        .await;
    assert_eq!(marked.status, StatusCode::SEE_OTHER, "{}", marked.text());
    assert_eq!(marked.location(), format!("{own}?handled=no"));
    let handled = school.get(&format!("{own}?handled=yes")).await.text();
    assert!(
        handled.contains("удалим в понедельник (school-a)"),
        "{handled}"
    );
    let other_school = format!("{}:telegram", b2);
    let refused = school
        .submit(
            &own,
            &format!("{own}/handled"),
            &[("pick", &other_school), ("note", "x")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "another school's PC");
}

/// English pages write numbers with a decimal point; the CSV keeps the comma for a
/// Russian-locale spreadsheet.
#[tokio::test]
async fn english_pages_write_decimal_points() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let third = enrolled_host(store, harness.school_b, "b-third").await;
    report_days_ago(store, third, 0, vec![]).await;
    let mut officer = Client::login(&harness, "officer").await;
    let overview = format!("/org/{}", harness.region);
    // Школа Б: 1 of 2 PCs with an approved messenger.
    assert!(officer.get(&overview).await.text().contains(">50,0<"));
    officer
        .submit(&overview, "/language", &[("language", "en")])
        .await;
    let english = officer.get(&overview).await.text();
    assert!(english.contains(">50.0<"), "{english}");
    let csv = officer
        .get(&format!("/org/{}/export/csv", harness.region))
        .await
        .text();
    assert!(csv.contains(";50,0;"), "{csv}");
}

/// The number in `<... id="{id}">N<`.
fn number_with_id(page: &str, id: &str) -> i64 {
    let marker = format!("id=\"{id}\">");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id}: {page}"))
        + marker.len();
    page[start..]
        .split('<')
        .next()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("no number at {id}: {page}"))
}

/// A frozen week's "with banned" figures link to the PCs they counted, kept when the
/// week was frozen: the list is as long as the figure (and its silent part as "of them
/// silent"), and a PC cleaned after the freeze stays on the week's list.
#[tokio::test]
async fn frozen_figures_link_to_the_pcs_they_counted() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let quiet = silent_pc_with_telegram(store, harness.school_b).await;
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let current = clock.week_of(now);
    let last_week = clock.previous(&current);
    web::figures::freeze_week(store, &last_week, 7, now)
        .await
        .expect("freeze");
    let tree = OrganizationTree::new(store.organizations().await.expect("tree"));
    let figures = web::weekly::WeekFigures::load(store, &tree, last_week.clone(), 7)
        .await
        .expect("figures");
    let mut officer = Client::login(&harness, "officer").await;
    let weekly = officer
        .get(&format!(
            "/org/{}/weekly?week={}",
            harness.region, last_week.label
        ))
        .await
        .text();
    for (id, silent) in [
        (harness.region, false),
        (harness.region, true),
        (harness.school_b, false),
        (harness.school_b, true),
    ] {
        let totals = figures.totals[&id];
        let (expected, extra) = if silent {
            (totals.silent_with_banned, "&silent=1")
        } else {
            (totals.with_banned, "")
        };
        let link = format!("/org/{id}/weekly/pcs?week={}{extra}", last_week.label);
        assert!(
            weekly.contains(&format!("href=\"{}\"", link.replace('&', "&amp;"))),
            "the frozen figure links to {link}: {weekly}"
        );
        let list = officer.get(&link).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(
            number_with_id(&list.text(), "pc-count"),
            expected,
            "{link}: {}",
            list.text()
        );
    }
    assert!(figures.totals[&harness.school_b].silent_with_banned >= 1);

    // Cleaned since: the live worklist no longer has it, the frozen week's list does.
    report_days_ago(store, quiet, 0, vec![]).await;
    let school_list = officer
        .get(&format!(
            "/org/{}/weekly/pcs?week={}&silent=1",
            harness.school_b, last_week.label
        ))
        .await
        .text();
    assert!(
        school_list.contains(&format!("/host/{quiet}\"")),
        "{school_list}"
    );
    let worklist = officer
        .get(&format!("/org/{}/worklist", harness.school_b))
        .await
        .text();
    assert!(
        !worklist.contains(&format!("/host/{quiet}\"")),
        "{worklist}"
    );

    // The current week has no frozen list; the page says so and points to the worklist.
    let live = officer
        .get(&format!(
            "/org/{}/weekly/pcs?week={}",
            harness.region, current.label
        ))
        .await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(live.text().contains("id=\"no-list\""), "{}", live.text());
    // Future weeks cannot be opened; other organizations' lists are not shown.
    let next_week = clock.week_of(current.end + 3600);
    let future = officer
        .get(&format!(
            "/org/{}/weekly/pcs?week={}",
            harness.region, next_week.label
        ))
        .await;
    assert_eq!(future.status, StatusCode::NOT_FOUND);
}

/// A school whose last week was frozen before its first PC reported opens on the
/// current (live) week, not on an empty frozen one, and its printable report is there.
#[tokio::test]
async fn a_week_frozen_before_the_first_report_is_not_the_default() {
    let harness = harness().await;
    let store = harness.store.as_ref();
    let new_school = organization(store, "Новая школа", Some(harness.region), 1).await;
    let clock = &harness.state.clock;
    let now = sverka_collector::now();
    let current = clock.week_of(now);
    let last_week = clock.previous(&current);
    web::figures::freeze_week(store, &last_week, 7, now)
        .await
        .expect("freeze before the school's first report");
    let pc = enrolled_host(store, new_school, "new-1").await;
    report_days_ago(
        store,
        pc,
        0,
        vec![finding("telegram", "banned", "/var/lib/dpkg/status")],
    )
    .await;
    let mut officer = Client::login(&harness, "officer").await;
    let page = officer
        .get(&format!("/org/{new_school}/weekly"))
        .await
        .text();
    assert!(
        page.contains(&format!("Неделя {}", current.label)),
        "opens on the live week {}: {page}",
        current.label
    );
    let print = officer
        .get(&format!("/org/{new_school}/weekly/print"))
        .await;
    assert_eq!(print.status, StatusCode::OK, "{}", print.text());
    // The region, whose last week was frozen with data, still opens on it (unless the
    // report is due today).
    let region = officer
        .get(&format!("/org/{}/weekly", harness.region))
        .await
        .text();
    let expected = if clock.is_due_day(now) {
        &current
    } else {
        &last_week
    };
    assert!(
        region.contains(&format!("Неделя {}", expected.label)),
        "{region}"
    );
}

/// A report received at `at` with these findings and uses.
pub(super) async fn report_with_uses(
    store: &dyn Store,
    host_id: i64,
    at: i64,
    findings: Vec<HostFinding>,
    uses: Vec<sverka_collector::store::AppUse>,
) {
    let record = ReportRecord {
        report_id: uuid_like(host_id, at),
        host_id,
        received_at: at,
        scanned_at: at,
        hostname: format!("host-{host_id}"),
        os_id: "astra".into(),
        os_name: "Astra Linux".into(),
        agent_version: "0.1.0".into(),
        scan_errors: 0,
        inventory_digest: "c".repeat(64),
        inventory: Some(("[]".into(), 0)),
        evidence: "[]".into(),
        catalog_revision: 0,
        findings: Some(EvaluatedFindings::new(findings)),
        uses,
    };
    store.record_report(record).await.expect("report");
}
