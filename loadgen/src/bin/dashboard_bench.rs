//! The dashboard's benchmark: fills a database through the collector's `Store` with
//! a region of municipalities, schools and PCs (100,000 PCs in 1,000 schools by
//! default), starts the real collector on it, signs in, and times the main pages and
//! the region's weekly XLSX: the server's own time (`Server-Timing`) and the time the
//! client waited, beside a static file served by the same server as the baseline.
//! Before the pages, the store's region-wide queries (the overview's per-organization
//! counts and the region's coverage) are timed directly. `--database postgres` runs
//! the same on a scratch PostgreSQL database (next to `SVERKA_TEST_POSTGRES`).

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use sverka_collector::store::SqlStore;
use sverka_collector::store::scratch::ScratchDatabase;
use sverka_collector::store::{
    AppUse, Enrollment, EvaluatedFindings, HostFinding, NewOrganization, NewSecret, NewUser,
    ReportRecord, Role, Store,
};
use sverka_shared::observation::PackageManager;
use sverka_shared::{Inventory, Observation, Observed, Scope, Strength};

#[derive(Debug, Parser)]
#[command(about = "Times the dashboard's pages on a large generated database")]
struct Options {
    #[arg(long, default_value_t = 100_000)]
    hosts: usize,
    #[arg(long, default_value_t = 1_000)]
    schools: usize,
    #[arg(long, default_value_t = 20)]
    municipalities: usize,
    /// Timed requests per page (after three warm-up requests).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// `sqlite` (a file in a temporary folder) or `postgres` (a scratch database next
    /// to `SVERKA_TEST_POSTGRES`, dropped afterwards).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Keeps the database afterwards (PostgreSQL's, or SQLite's folder) and prints its
    /// URL (to look into a query with `EXPLAIN ANALYZE`, profile a collector on it or
    /// time another build's pages on the same data); drop it by hand.
    #[arg(long)]
    keep_database: bool,
    /// Instead of the dashboard's pages: a federal collector receiving one weekly
    /// round from this many regional collectors, each of `--municipalities` and
    /// `--schools` with `--hosts / --schools` PCs per school (issue 21's figures).
    #[arg(long, default_value_t = 0)]
    federated_regions: usize,
}

#[path = "dashboard_bench/federation.rs"]
mod federation;

const PASSWORD: &str = "benchmark password";

fn main() -> Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

fn finding(app: &str, name: &str, status: sverka_shared::AppStatus) -> HostFinding {
    HostFinding {
        app_id: app.into(),
        app_name: name.into(),
        status,
        strength: sverka_shared::Strength::Installed,
        users: vec!["teacher".into()],
        evidence: format!(
            r#"[{{"source":"dpkg","detail":"dpkg package {app} 1.0","path":"/var/lib/dpkg/status","scope":"machine","strength":"installed"}}]"#
        ),
    }
}

/// A 300-package inventory, shared by every PC (inventories are content-addressed).
fn inventory() -> (String, String, i64) {
    let observations: Vec<Observation> = (0..300)
        .map(|index| Observation {
            observed: Observed::Package {
                manager: PackageManager::Dpkg,
                name: format!("package-{index:03}"),
                version: format!("1.{index}.0-1"),
                vendor: None,
            },
            path: Some("/var/lib/dpkg/status".into()),
            user: None,
            scope: Scope::Machine,
            strength: Strength::Installed,
        })
        .collect();
    let inventory = Inventory::from_observations(&observations);
    let body = serde_json::to_string(&inventory.observations).unwrap_or_default();
    (inventory.digest, body, observations.len() as i64)
}

struct Populated {
    region: i64,
    municipality: i64,
    school: i64,
    host: i64,
}

async fn populate(store: Arc<dyn Store>, options: &Options) -> Result<Populated> {
    let started = Instant::now();
    let region = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "Регион".into(),
            kind: "region".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await?
        .id;
    let mut municipalities = Vec::new();
    for index in 0..options.municipalities.max(1) {
        municipalities.push(
            store
                .create_organization(NewOrganization {
                    parent_id: Some(region),
                    name: format!("Муниципалитет {index:02}"),
                    kind: "municipality".into(),
                    expected_pcs: 0,
                    time_zone: None,
                })
                .await?
                .id,
        );
    }
    let per_school = options.hosts / options.schools.max(1);
    let now = sverka_collector::now();
    let mut host_ids = Vec::with_capacity(options.hosts);
    let mut schools = Vec::new();
    for index in 0..options.schools.max(1) {
        let school = store
            .create_organization(NewOrganization {
                parent_id: Some(municipalities[index % municipalities.len()]),
                name: format!("Школа №{index}"),
                kind: "school".into(),
                expected_pcs: per_school as i64,
                time_zone: None,
            })
            .await?
            .id;
        schools.push(school);
        let (random, secret_hash) = sverka_collector::keys::generate();
        let secret = store
            .create_secret(
                NewSecret {
                    organization_id: school,
                    secret_hash,
                    expires_at: None,
                },
                now,
            )
            .await?;
        for pc in 0..per_school {
            let machine = format!("{index:04}-{pc:03}");
            let enrolled = store
                .enroll(
                    Enrollment {
                        secret_id: secret.id,
                        secret_hash: sverka_collector::keys::hash(&random),
                        machine_id: machine.clone(),
                        hostname: format!("school{index}-pc{pc:03}"),
                        os_id: "astra".into(),
                        os_name: "Astra Linux 1.8".into(),
                        agent_version: "0.1.0".into(),
                        key_hash: String::new(),
                        allowance: sverka_collector::store::EnrollmentAllowance::default(),
                    },
                    now,
                )
                .await?;
            host_ids.push(enrolled.host_id);
        }
    }
    println!(
        "populated {} organizations and {} PCs in {:.1} s",
        1 + municipalities.len() + schools.len(),
        host_ids.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (digest, body, items) = inventory();
    // Use of MAX and Telegram reported with the reports: on five days of the last
    // ended week and two days of this one (the rows a week's count passes over).
    let clock = sverka_collector::config::DashboardConfig::default().clock()?;
    let this_week = clock.week_of(now);
    let last_week = clock.previous(&this_week);
    let use_days: Vec<i64> = (0..5)
        .map(|day| last_week.start + day * 86_400 + 3_600)
        .chain((0..2).map(|day| this_week.start + day * 86_400 + 60))
        .filter(|at| *at <= now)
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, host_id) in host_ids.iter().copied().enumerate() {
        let store = store.clone();
        let digest = digest.clone();
        let body = (index == 0).then(|| (body.clone(), items));
        let use_days = use_days.clone();
        tasks.spawn(async move {
            let mut findings = Vec::new();
            if index % 5 == 0 {
                findings.push(finding(
                    "telegram",
                    "Telegram",
                    sverka_shared::AppStatus::Banned,
                ));
            }
            if index % 2 == 0 {
                findings.push(finding("max", "MAX", sverka_shared::AppStatus::Approved));
            }
            // Four in five PCs with MAX used it, one in two with Telegram did.
            let mut uses = Vec::new();
            for (app, status, used) in [
                (
                    "max",
                    sverka_shared::AppStatus::Approved,
                    index % 10 < 8 && index % 2 == 0,
                ),
                (
                    "telegram",
                    sverka_shared::AppStatus::Banned,
                    index % 10 == 0,
                ),
            ] {
                if used {
                    uses.extend(use_days.iter().map(|at| AppUse {
                        app_id: app.into(),
                        status,
                        used_at: *at,
                    }));
                }
            }
            // Some PCs went silent a while ago.
            let at = if index % 17 == 0 {
                now - 30 * 86_400
            } else {
                now
            };
            store
                .record_report(ReportRecord {
                    report_id: format!("00000000-0000-7000-8000-{index:012}"),
                    host_id,
                    received_at: at,
                    scanned_at: at,
                    hostname: format!("pc-{host_id}"),
                    os_id: "astra".into(),
                    os_name: "Astra Linux 1.8".into(),
                    agent_version: "0.1.0".into(),
                    scan_errors: 0,
                    inventory_digest: digest,
                    inventory: body,
                    evidence: "[]".into(),
                    catalog_revision: 0,
                    findings: Some(EvaluatedFindings::new(findings)),
                    uses,
                })
                .await
        });
        if index == 0 {
            // The inventory's body travels with the first report only.
            if let Some(result) = tasks.join_next().await {
                result??;
            }
        }
        if tasks.len() >= 2_000 {
            while let Some(result) = tasks.join_next().await {
                result??;
            }
        }
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    println!(
        "{} reports stored in {:.1} s",
        host_ids.len(),
        started.elapsed().as_secs_f64()
    );
    create_bench_user(store.as_ref(), now).await?;
    Ok(Populated {
        region,
        municipality: municipalities[0],
        school: schools[0],
        host: host_ids[0],
    })
}

/// The administrator the benchmark signs in as.
async fn create_bench_user(store: &dyn Store, now: i64) -> Result<()> {
    let password_hash = sverka_collector::web::auth::hash_password(PASSWORD)?;
    store
        .create_user(
            NewUser {
                login: "bench".into(),
                password_hash,
                role: Role::Administrator,
                organization_id: None,
                language: "ru".into(),
            },
            now,
        )
        .await?;
    Ok(())
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_collector(database_url: &str) -> Result<Server> {
    let me = std::env::current_exe()?;
    let binary = me
        .parent()
        .map(|folder| folder.join("sverka-collector"))
        .context("the collector binary beside this one")?;
    let mut child = Command::new(&binary)
        .args([
            "--database",
            database_url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        bail!("the collector did not start: {line:?}");
    };
    Ok(Server {
        url: url.to_string(),
        child,
    })
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

async fn sign_in(client: &reqwest::Client, url: &str) -> Result<String> {
    let page = client.get(format!("{url}/login")).send().await?;
    let login_csrf = cookie_value(&page, "sverka_login_csrf").context("login cookie")?;
    let form = format!("csrf={login_csrf}&lang=ru&login=bench&password=benchmark+password");
    let answer = client
        .post(format!("{url}/login"))
        .header(
            reqwest::header::COOKIE,
            format!("sverka_login_csrf={login_csrf}"),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await?;
    cookie_value(&answer, "sverka_session").context("signed in")
}

/// Median and worst of the server's own time and of the client's wait, in ms.
async fn time_page(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    path: &str,
    runs: usize,
) -> Result<(f64, f64, f64, f64, usize)> {
    let mut server = Vec::new();
    let mut client_side = Vec::new();
    let mut size = 0;
    for run in 0..runs + 3 {
        let started = Instant::now();
        let response = client
            .get(format!("{url}{path}"))
            .header(reqwest::header::COOKIE, format!("sverka_session={session}"))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{path}: {}", response.status());
        }
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split("dur=").nth(1))
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let body = response.bytes().await?;
        let waited = started.elapsed().as_secs_f64() * 1000.0;
        size = body.len();
        if run >= 3 {
            server.push(timing);
            client_side.push(waited);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    };
    let worst = |values: &[f64]| values.iter().copied().fold(f64::MIN, f64::max);
    Ok((
        median(&mut server),
        worst(&server),
        median(&mut client_side),
        worst(&client_side),
        size,
    ))
}

/// Median and worst of `runs` calls of a store query, in ms.
async fn time_query<T, F, Fut>(runs: usize, mut query: F) -> Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sverka_collector::store::StoreResult<T>>,
{
    let mut timings = Vec::with_capacity(runs);
    for run in 0..runs + 1 {
        let started = Instant::now();
        query().await?;
        if run > 0 {
            timings.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    timings.sort_by(f64::total_cmp);
    Ok((timings[timings.len() / 2], timings[timings.len() - 1]))
}

/// The overview's per-organization count as it was before the hosts' counters
/// (migration 0003): an `EXISTS` over `host_apps` per host, each PC by its last known
/// state (silent ones too), retired PCs left out. Timed on the same database for
/// comparison; the answer must match the store's.
const COUNTS_BEFORE_COUNTERS: &str = "SELECT h.organization_id,
        COUNT(*) AS enrolled,
        SUM(CASE WHEN EXISTS (
               SELECT 1 FROM host_apps a WHERE a.host_id = h.id AND a.resolved_at IS NULL
               AND a.status = 'banned' AND a.strength IN ('installed', 'running'))
            THEN 1 ELSE 0 END) AS with_banned,
        SUM(CASE WHEN EXISTS (
               SELECT 1 FROM host_apps a WHERE a.host_id = h.id AND a.resolved_at IS NULL
               AND a.status = 'approved' AND a.strength IN ('installed', 'running'))
            THEN 1 ELSE 0 END) AS with_approved
 FROM hosts h WHERE h.retired_at IS NULL GROUP BY h.organization_id ORDER BY h.organization_id";

/// Median and worst of `runs` runs of [`COUNTS_BEFORE_COUNTERS`], and the region's
/// (with_banned, with_approved) by it.
async fn time_counts_before(database_url: &str, runs: usize) -> Result<((f64, f64), (i64, i64))> {
    use sqlx::{Connection, Row};
    let mut timings = Vec::new();
    let mut sums = (0, 0);
    let fold = |rows: &[(i64, i64)]| {
        rows.iter().fold((0, 0), |(banned, approved), row| {
            (banned + row.0, approved + row.1)
        })
    };
    // Times the query on a fresh connection of either backend (the two connection
    // types share no trait that runs it) and sums its rows.
    macro_rules! timed_counts {
        ($connection:expr) => {{
            let mut connection = $connection;
            let started_query = Instant::now();
            let rows = sqlx::query(COUNTS_BEFORE_COUNTERS)
                .fetch_all(&mut connection)
                .await?;
            let elapsed = started_query.elapsed();
            let _ = connection.close().await;
            let rows: Vec<(i64, i64)> = rows
                .iter()
                .map(|row| Ok((row.try_get(2)?, row.try_get(3)?)))
                .collect::<Result<_, sqlx::Error>>()?;
            (elapsed, rows)
        }};
    }
    for run in 0..runs + 1 {
        let (elapsed, rows) = if let Some(path) = database_url.strip_prefix("sqlite://") {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            timed_counts!(sqlx::SqliteConnection::connect_with(&options).await?)
        } else {
            let options =
                sverka_collector::store::dialect::postgres::connect_options(database_url)?;
            timed_counts!(sqlx::PgConnection::connect_with(&options).await?)
        };
        if run > 0 {
            timings.push(elapsed.as_secs_f64() * 1000.0);
        }
        sums = fold(&rows);
    }
    timings.sort_by(f64::total_cmp);
    Ok((
        (timings[timings.len() / 2], timings[timings.len() - 1]),
        sums,
    ))
}

async fn run(options: Options) -> Result<()> {
    let folder = tempfile::tempdir()?;
    let (store, database_url, _scratch): (Arc<dyn Store>, String, Option<ScratchDatabase>) =
        match options.database.as_str() {
            "sqlite" => {
                let database: PathBuf = folder.path().join("bench.db");
                let store = SqlStore::open_sqlite(&database).await?;
                (
                    Arc::new(store),
                    format!("sqlite://{}", database.display()),
                    None,
                )
            }
            "postgres" => {
                let scratch = ScratchDatabase::create().await?;
                let store = SqlStore::open_postgres(scratch.url(), 16).await?;
                (Arc::new(store), scratch.url().to_string(), Some(scratch))
            }
            other => bail!("--database is sqlite or postgres, not {other:?}"),
        };
    if options.federated_regions > 0 {
        return federation::run(&options, store, &database_url).await;
    }
    let populated = populate(store.clone(), &options).await?;
    if let Some(scratch) = &_scratch {
        // What autovacuum does some time after a bulk load: planner statistics and the
        // visibility map (index-only scans). Timed here rather than waited for.
        use sqlx::Connection;
        let started = Instant::now();
        let options = sverka_collector::store::dialect::postgres::connect_options(scratch.url())?;
        let mut connection = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query("VACUUM (ANALYZE)")
            .execute(&mut connection)
            .await?;
        let _ = connection.close().await;
        println!(
            "VACUUM (ANALYZE) after the load: {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let now = sverka_collector::now();
    let since = now - 7 * 86_400;
    let region_id = populated.region;
    let (counts_median, counts_max) =
        time_query(7, || store.organization_counts(since, since)).await?;
    let (coverage_median, coverage_max) =
        time_query(7, || store.coverage(region_id, since)).await?;
    // The worklist page's query alone: the region's first 500 open violations.
    let worklist_filter = sverka_collector::store::WorklistFilter {
        within: region_id,
        limit: 500,
        ..Default::default()
    };
    let (worklist_median, worklist_max) =
        time_query(7, || store.worklist(&worklist_filter)).await?;
    let region_counts = store.coverage(region_id, since).await?;
    let region_row = region_counts
        .first()
        .context("coverage has the region's row")?;
    let ((before_median, before_max), before_sums) = time_counts_before(&database_url, 7).await?;
    if before_sums != (region_row.with_banned, region_row.with_approved) {
        bail!(
            "the counters disagree with host_apps: {:?} by counters, {before_sums:?} by EXISTS",
            (region_row.with_banned, region_row.with_approved)
        );
    }
    println!(
        "\n[{}] store queries over all {} PCs, median / max of 7:",
        options.database, options.hosts
    );
    println!(
        "  per-organization counts (the overview's one query) {counts_median:>8.2} ms {counts_max:>8.2} ms"
    );
    println!(
        "  region coverage (region and its municipalities)   {coverage_median:>8.2} ms {coverage_max:>8.2} ms"
    );
    println!(
        "  worklist of the region (its first 500 rows)        {worklist_median:>8.2} ms {worklist_max:>8.2} ms"
    );
    println!(
        "  before the counters: the same counts by EXISTS     {before_median:>8.2} ms {before_max:>8.2} ms"
    );
    println!(
        "  (region: {} enrolled, {} reporting, {} with a banned messenger, {} with an approved one; the same by both)",
        region_row.enrolled, region_row.reporting, region_row.with_banned, region_row.with_approved
    );
    // The last ended week frozen, as the collector's job does once a week has ended:
    // its figures, and the PCs with a banned messenger they counted.
    let clock = sverka_collector::config::DashboardConfig::default().clock()?;
    let this_week = clock.week_of(now);
    let last_week = clock.previous(&this_week);
    let live_week = this_week.label;
    // The week's figures as counted before use was (issue 20), beside the same with
    // use, then the freeze that counts and stores both.
    use sverka_collector::web::figures::Counts;
    let (without_use_median, without_use_max) =
        time_query(3, || Counts::load(store.as_ref(), &last_week, 7, now)).await?;
    let (with_use_median, with_use_max) = time_query(3, || {
        Counts::load_with_use(store.as_ref(), &last_week, 7, now)
    })
    .await?;
    let counted = Counts::load_with_use(store.as_ref(), &last_week, 7, now).await?;
    let tree = sverka_collector::web::scope::OrganizationTree::new(store.organizations().await?);
    let region_totals = counted.totals(&tree, region_id);
    println!(
        "\n[{}] the last week's figures, median / max of 3:",
        options.database
    );
    println!(
        "  counted without use (before issue 20)            {without_use_median:>8.2} ms {without_use_max:>8.2} ms"
    );
    println!(
        "  counted with use (PCs that used approved/banned) {with_use_median:>8.2} ms {with_use_max:>8.2} ms"
    );
    println!(
        "  (region: {} PCs used an approved messenger, {} a banned one, over {} application rows)",
        region_totals.used_approved.unwrap_or(0),
        region_totals.used_banned.unwrap_or(0),
        counted.applications.len()
    );
    let started = Instant::now();
    sverka_collector::web::figures::freeze_week(store.as_ref(), &last_week, 7, now).await?;
    let last_week = last_week.label;
    println!(
        "freezing the last week (figures with use, and the PCs behind them): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let server = start_collector(&database_url)?;
    // reqwest has rustls without a default provider in this workspace: ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = sign_in(&client, &server.url).await?;
    let Populated {
        region,
        municipality,
        school,
        host,
    } = populated;
    let pages = [
        ("baseline: /static/app.css", "/static/app.css".to_string()),
        ("overview of the region", format!("/org/{region}")),
        ("overview of a municipality", format!("/org/{municipality}")),
        ("school page (100 PCs)", format!("/school/{school}")),
        ("PC page (300 programs)", format!("/host/{host}")),
        // The page opens on the live week, or on the day the report is due, on the
        // week being reported (frozen once its cut-off has passed): both named.
        ("weekly report page", format!("/org/{region}/weekly")),
        (
            "weekly page, live week",
            format!("/org/{region}/weekly?week={live_week}"),
        ),
        (
            "weekly page, frozen week",
            format!("/org/{region}/weekly?week={last_week}"),
        ),
        (
            "frozen week: PCs of the region",
            format!("/org/{region}/weekly/pcs?week={last_week}"),
        ),
        (
            "frozen week: PCs of a school",
            format!("/org/{school}/weekly/pcs?week={last_week}"),
        ),
        ("worklist of the region", format!("/org/{region}/worklist")),
        (
            "worklist: search + 2 filters",
            format!("/org/{region}/worklist?q=pc-1&app=telegram&handled=no"),
        ),
        (
            "worklist of a school",
            format!("/org/{region}/worklist?in={school}"),
        ),
        ("region overview CSV", format!("/org/{region}/export/csv")),
        (
            "weekly region XLSX",
            format!("/org/{region}/weekly/export/xlsx"),
        ),
        (
            "weekly region XLSX, live week",
            format!("/org/{region}/weekly/export/xlsx?week={live_week}"),
        ),
    ];
    println!(
        "\n{} PCs in {} schools, {} timed requests each (after 3 warm-ups)",
        options.hosts, options.schools, options.runs
    );
    println!(
        "{:<30} {:>14} {:>12} {:>14} {:>12} {:>10}",
        "page", "server median", "server max", "client median", "client max", "bytes"
    );
    for (name, path) in pages {
        let (server_median, server_max, client_median, client_max, size) =
            time_page(&client, &server.url, &session, &path, options.runs).await?;
        println!(
            "{name:<30} {server_median:>11.2} ms {server_max:>9.2} ms {client_median:>11.2} ms {client_max:>9.2} ms {size:>10}"
        );
    }
    if options.keep_database {
        drop(server);
        match _scratch {
            Some(scratch) => {
                println!(
                    "\nkept: {} (region {region_id}, last week {last_week}); DROP DATABASE {} when done",
                    scratch.url(),
                    scratch.name()
                );
                std::mem::forget(scratch);
            }
            None => println!(
                "\nkept: {database_url} (region {region_id}, last week {last_week}); remove {} when done",
                folder.keep().display()
            ),
        }
    }
    Ok(())
}
