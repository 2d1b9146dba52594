//! `sverka-dashboard-bench --federated-regions N` (issue 21's figures): a federal
//! collector receiving one weekly round from N regional collectors, each summing its
//! municipalities and schools, over HTTP as `upstream push` sends it (gzip JSON, one
//! message per region): the first round (every organization new), the next week's
//! round (the tree known, new figures and a new frozen week), and a resend of it
//! (changes nothing). Then the federal overview page beside a static file, and the
//! bytes a municipal collector sends in a week.

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use sverka_collector::store::{NewOrganization, Store};
use sverka_shared::federation::{
    ApplicationPcs, CurrentFigures, Detail, FEDERATION_PROTOCOL, FIGURES_PATH, FiguresAck,
    FiguresMessage, MemberOrganization, SchoolViolations, WeekFigures, WeekSpan,
};

use super::{Options, create_bench_user, sign_in, start_collector, time_page, time_query};

/// A region (key "r"), its municipalities ("m<i>") and schools ("s<i>"), each school
/// with `pcs_per_school` PCs; figures differ by region and week so nothing repeats.
fn region_message(
    region: usize,
    municipalities: usize,
    schools: usize,
    pcs_per_school: i64,
    week: (&str, i64, i64),
    generated_at: i64,
) -> FiguresMessage {
    let (label, start, end) = week;
    let mut organizations = vec![MemberOrganization {
        key: "r".into(),
        parent: None,
        name: format!("Регион {region:02}"),
        kind: "region".into(),
        expected_pcs: 0,
    }];
    let mut current = Vec::new();
    let mut violations = Vec::new();
    let mut used = Vec::new();
    let mut weeks = Vec::new();
    for municipality in 0..municipalities {
        organizations.push(MemberOrganization {
            key: format!("m{municipality}"),
            parent: Some("r".into()),
            name: format!("Муниципалитет {region:02}-{municipality:02}"),
            kind: "municipality".into(),
            expected_pcs: 0,
        });
    }
    for school in 0..schools {
        let key = format!("s{school}");
        let with_banned = ((school + region + generated_at as usize) % 7) as i64;
        organizations.push(MemberOrganization {
            key: key.clone(),
            parent: Some(format!("m{}", school % municipalities.max(1))),
            name: format!("Школа {region:02}-{school:04}"),
            kind: "school".into(),
            expected_pcs: pcs_per_school,
        });
        current.push(CurrentFigures {
            organization: key.clone(),
            enrolled: pcs_per_school,
            reporting: pcs_per_school - 2,
            silent: 2,
            with_banned,
            with_approved: pcs_per_school - with_banned,
            known: pcs_per_school,
            silent_with_banned: i64::from(with_banned > 3),
        });
        for (app_id, pcs) in [("telegram", with_banned), ("whatsapp", with_banned / 2)] {
            if pcs > 0 {
                violations.push(SchoolViolations {
                    organization: key.clone(),
                    app_id: app_id.into(),
                    pcs,
                    hosts: Vec::new(),
                });
            }
        }
        for (app_id, status, pcs) in [
            ("", "approved", pcs_per_school / 2),
            ("max", "approved", pcs_per_school / 2),
            ("", "banned", with_banned / 2),
        ] {
            used.push(ApplicationPcs {
                organization: key.clone(),
                app_id: app_id.into(),
                status: status.into(),
                pcs,
            });
        }
        weeks.push(WeekFigures {
            week: label.into(),
            organization: key,
            expected_pcs: pcs_per_school,
            enrolled: pcs_per_school,
            reporting: pcs_per_school - 2,
            silent: 2,
            with_banned,
            with_approved: pcs_per_school - with_banned,
            known: Some(pcs_per_school),
            silent_with_banned: Some(0),
            used_approved: Some(pcs_per_school / 2),
            used_banned: Some(with_banned / 2),
        });
    }
    FiguresMessage {
        protocol: FEDERATION_PROTOCOL,
        message_id: format!("bench-{region}-{generated_at}"),
        generated_at,
        organizations,
        current,
        violations,
        used,
        week: Some(WeekSpan { start, end }),
        weeks,
        not_understood: BTreeMap::new(),
    }
}

fn gzip(json: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json)?;
    Ok(encoder.finish()?)
}

/// Sends every region's body once, in order; the total and the slowest, in seconds.
async fn round(
    client: &reqwest::Client,
    url: &str,
    bodies: &[(String, Vec<u8>)],
) -> Result<(f64, f64, u64, bool)> {
    let started = Instant::now();
    let mut slowest = 0f64;
    let mut weeks_stored = 0;
    let mut applied = true;
    for (secret, body) in bodies {
        let one = Instant::now();
        let response = client
            .post(format!("{url}{FIGURES_PATH}"))
            .bearer_auth(secret)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body.clone())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{}: {}", response.status(), response.text().await?);
        }
        let ack: FiguresAck = serde_json::from_slice(&response.bytes().await?)?;
        weeks_stored += ack.weeks_stored;
        applied &= ack.current_applied;
        slowest = slowest.max(one.elapsed().as_secs_f64());
    }
    Ok((
        started.elapsed().as_secs_f64(),
        slowest,
        weeks_stored,
        applied,
    ))
}

pub async fn run(options: &Options, store: Arc<dyn Store>, database_url: &str) -> Result<()> {
    let regions = options.federated_regions;
    let schools = options.schools;
    let municipalities = options.municipalities.max(1);
    let pcs_per_school = (options.hosts / schools.max(1)).max(1) as i64;
    let now = sverka_collector::now();
    let country = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "Российская Федерация".into(),
            kind: "country".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await?
        .id;
    create_bench_user(store.as_ref(), now).await?;
    let mut secrets = Vec::new();
    for _ in 0..regions {
        let (random, hash) = sverka_collector::keys::generate();
        let link = store
            .create_link(country, &hash, Detail::Counts, now)
            .await?;
        secrets.push(format!("{}.{random}", link.id));
    }
    drop(store);

    let clock = sverka_collector::config::DashboardConfig::default().clock()?;
    let this_week = clock.week_of(now);
    let last_week = clock.previous(&this_week);
    let week_before = clock.previous(&last_week);
    let bodies = |week: &sverka_collector::web::clock::Week, generated_at: i64| {
        secrets
            .iter()
            .enumerate()
            .map(|(region, secret)| {
                let message = region_message(
                    region,
                    municipalities,
                    schools,
                    pcs_per_school,
                    (&week.label, week.start, week.end),
                    generated_at,
                );
                let json = serde_json::to_vec(&message)?;
                Ok((secret.clone(), gzip(&json)?))
            })
            .collect::<Result<Vec<_>>>()
    };
    let first_bodies = bodies(&week_before, now - 7 * 86_400)?;
    let next_bodies = bodies(&last_week, now - 60)?;
    let wire: usize = next_bodies.iter().map(|(_, body)| body.len()).sum();

    let server = start_collector(database_url)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    println!(
        "\n[{}] a federal collector, {regions} regions of {municipalities} municipalities and \
         {schools} schools ({} organizations, {} PCs), one message per region \
         ({:.0} KiB gzip on average):",
        options.database,
        regions * (1 + municipalities + schools),
        regions as i64 * schools as i64 * pcs_per_school,
        wire as f64 / regions.max(1) as f64 / 1024.0
    );
    println!("{:<44} {:>10} {:>14}", "round", "total", "slowest region");
    for (name, bodies, expect_weeks) in [
        ("first round (every organization new)", &first_bodies, true),
        ("next week's round (tree known)", &next_bodies, true),
        (
            "the same round again (changes nothing)",
            &next_bodies,
            false,
        ),
    ] {
        let (total, slowest, weeks, applied) = round(&client, &server.url, bodies).await?;
        if expect_weeks != (weeks > 0) || expect_weeks != applied {
            bail!("{name}: {weeks} weeks stored, current applied {applied}");
        }
        println!("{name:<44} {:>8.2} s {:>11.0} ms", total, slowest * 1000.0);
    }

    let session = sign_in(&client, &server.url).await?;
    println!(
        "{:<30} {:>14} {:>12} {:>14} {:>12} {:>10}",
        "page", "server median", "server max", "client median", "client max", "bytes"
    );
    for (name, path) in [
        ("baseline: /static/app.css", "/static/app.css".to_string()),
        ("federal overview", format!("/org/{country}")),
    ] {
        let (server_median, server_max, client_median, client_max, size) =
            time_page(&client, &server.url, &session, &path, options.runs).await?;
        println!(
            "{name:<30} {server_median:>11.2} ms {server_max:>9.2} ms {client_median:>11.2} ms {client_max:>9.2} ms {size:>10}"
        );
    }

    // Where the overview's time goes: its two store reads, timed in this process.
    let store = sverka_collector::store::SqlStore::open(database_url, 4).await?;
    let (tree_median, tree_max) = time_query(5, || store.organizations()).await?;
    let since = now - 7 * 86_400;
    let (counts_median, counts_max) =
        time_query(5, || store.organization_counts(since, since)).await?;
    println!(
        "  store: every organization (the tree)  {tree_median:>8.2} ms {tree_max:>8.2} ms; \
         per-organization counts {counts_median:>8.2} ms {counts_max:>8.2} ms (median / max of 5)"
    );
    store.close().await;

    // What one municipal collector sends in a week: a push an hour of its current
    // figures (one municipality of `schools / municipalities` schools), and its frozen
    // week once.
    let municipal_schools = (schools / municipalities).max(1);
    let hourly = region_message(
        0,
        1,
        municipal_schools,
        pcs_per_school,
        (&this_week.label, this_week.start, this_week.end),
        now,
    );
    let mut without_weeks = hourly.clone();
    without_weeks.weeks.clear();
    let push_bytes = gzip(&serde_json::to_vec(&without_weeks)?)?.len();
    let week_bytes = gzip(&serde_json::to_vec(&hourly)?)?.len();
    let weekly = 167 * push_bytes + week_bytes;
    println!(
        "a municipal collector of {municipal_schools} schools: {push_bytes} bytes a push \
         (gzip), {week_bytes} with its frozen week; {weekly} bytes a week at one push an \
         hour ({:.1} KiB)",
        weekly as f64 / 1024.0
    );
    drop(server);
    Ok(())
}
