//! `sverka-loadgen region`: a whole region on one database. Builds the organization
//! tree (region → municipalities → schools, one enrollment secret per school), enrolls
//! the hosts, and measures the morning boot storm (every host one full report), one
//! round of hourly check-ins (the collectors' and the database's CPU for it), the
//! region-wide coverage query, the database size per host, and throughput with
//! several collector processes on one PostgreSQL database (load spread over their
//! URLs round-robin, as a load balancer would).

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sverka_collector::store::scratch::ScratchDatabase;
use sverka_collector::store::{NewOrganization, NewSecret, Store};

use crate::{Server, print_row, run_phase};

#[derive(Debug, Args)]
pub struct RegionOptions {
    /// `sqlite` (a new file in a temporary folder), `postgres` (a new database next
    /// to `SVERKA_TEST_POSTGRES`, dropped afterwards), or a `postgres://` URL of an
    /// empty database.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Simulated PCs in the region.
    #[arg(long, default_value_t = 100_000)]
    hosts: usize,
    /// Schools; every 40 form a municipality.
    #[arg(long, default_value_t = 1_000)]
    schools: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Collector process counts to measure throughput with (PostgreSQL only; SQLite
    /// is served by one process), e.g. `1,2,4`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    collectors: Vec<usize>,
    /// Length of each throughput phase per collector count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// PostgreSQL connections per collector process.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    #[arg(long, default_value_t = 300)]
    inventory_items: usize,
    #[arg(long, default_value_t = 20)]
    templates: usize,
}

/// Collector processes on one database, stopped when dropped.
struct Collectors {
    servers: Vec<Server>,
}

impl Collectors {
    fn start(binary: &Path, config: &Path, count: usize) -> Result<Collectors> {
        let mut servers = Vec::new();
        for _ in 0..count {
            let mut command = Command::new(binary);
            command.arg("--config").arg(config).arg("serve");
            servers.push(Server::start(command)?);
        }
        Ok(Collectors { servers })
    }

    fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|server| server.url.clone())
            .collect()
    }

    fn cpu_seconds(&self) -> f64 {
        self.servers.iter().map(Server::cpu_seconds).sum()
    }

    fn peak_memory_mib(&self) -> f64 {
        self.servers
            .iter()
            .filter_map(Server::peak_memory_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }
}

/// CPU seconds used so far by the PostgreSQL backends serving `database` (their
/// process titles name it); background writers shared with other databases are not
/// counted.
fn postgres_cpu_seconds(database: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let needle = format!(" {database} ");
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.bytes().all(|byte| byte.is_ascii_digit()))
        })
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if !cmdline.starts_with("postgres:") || !cmdline.contains(&needle) {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .sum()
}

/// Enrolls `hosts` PCs, host `i` with the secret of school `i * schools / hosts`.
async fn enroll_region(
    client: &reqwest::Client,
    urls: &[String],
    secrets: Vec<String>,
    hosts: usize,
) -> Result<Vec<String>> {
    let body = move |index: usize| {
        let school = index * secrets.len() / hosts;
        serde_json::json!({
            "secret": secrets[school], "machine_id": format!("region-{index:08}"),
            "hostname": format!("school{school}-pc{index}"), "os_id": "astra",
            "os_name": "Astra Linux 1.8", "agent_version": "loadgen"
        })
    };
    crate::enroll_hosts(client, urls, 0..hosts, Arc::new(body)).await
}

/// Region, municipalities of 40 schools, schools; a secret per school. Returns the
/// region's id and the schools' secrets.
async fn build_tree(store: &dyn Store, schools: usize, hosts: usize) -> Result<(i64, Vec<String>)> {
    let organization = |parent_id, name: String, kind: &str, expected_pcs| NewOrganization {
        parent_id,
        name,
        kind: kind.into(),
        expected_pcs,
        time_zone: None,
    };
    let region = store
        .create_organization(organization(None, "Region".into(), "region", 0))
        .await?
        .id;
    let per_school = (hosts / schools.max(1)) as i64;
    let mut secrets = Vec::with_capacity(schools);
    let mut municipality = region;
    for school in 0..schools {
        if school % 40 == 0 {
            municipality = store
                .create_organization(organization(
                    Some(region),
                    format!("Municipality {}", school / 40),
                    "municipality",
                    0,
                ))
                .await?
                .id;
        }
        let id = store
            .create_organization(organization(
                Some(municipality),
                format!("School {school}"),
                "school",
                per_school,
            ))
            .await?
            .id;
        let (random, secret_hash) = sverka_collector::keys::generate();
        let secret = store
            .create_secret(
                NewSecret {
                    organization_id: id,
                    secret_hash,
                    expires_at: None,
                },
                sverka_collector::now(),
            )
            .await?;
        secrets.push(format!("{}.{random}", secret.id));
    }
    Ok((region, secrets))
}

fn folder_bytes(folder: &Path) -> u64 {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|metadata| metadata.is_file())
                .map(|metadata| metadata.len())
                .sum()
        })
        .unwrap_or(0)
}

pub async fn run(options: RegionOptions, collector: PathBuf) -> Result<()> {
    let work = std::env::temp_dir().join(format!("sverka-region-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // `--database postgres`: a scratch database next to SVERKA_TEST_POSTGRES, dropped
    // at the end.
    let scratch = if options.database == "postgres" {
        Some(ScratchDatabase::create().await?)
    } else {
        None
    };
    let url = match &scratch {
        Some(scratch) => scratch.url().to_string(),
        None => options.database.clone(),
    };
    let result = run_in(&options, &url, &collector, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    drop(scratch);
    result
}

async fn run_in(options: &RegionOptions, url: &str, collector: &Path, work: &Path) -> Result<()> {
    let postgres = url.starts_with("postgres");
    let (url, backend) = if postgres {
        (url.to_string(), "PostgreSQL")
    } else {
        (
            format!("sqlite://{}", work.join("sverka.db").display()),
            "SQLite",
        )
    };
    let config = work.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{url}\"\ndatabase_connections = {}\n\
             # The whole region enrolls and reports from this one address: no per-host\n\
             # or per-address limit may deny anything while throughput is measured.\n\
             [rate_limit]\nburst = 1e12\nper_minute = 1e12\n\
             [enrollment]\nper_address_burst = 1e12\nper_address_per_minute = 1e12\n\
             [connections]\nper_address = 1000000\nuploads_per_address = 1000000\n",
            options.connections
        ),
    )?;
    let store = sverka_collector::app::open_store_with(&url, 4).await?;
    let tree_started = Instant::now();
    let (region, secrets) = build_tree(store.as_ref(), options.schools, options.hosts).await?;
    println!(
        "[{backend}] region: {} hosts in {} schools ({} municipalities), tree built in {:.1} s",
        options.hosts,
        options.schools,
        options.schools.div_ceil(40),
        tree_started.elapsed().as_secs_f64()
    );
    let database_name = sverka_collector::store::dialect::postgres::connect_options(&url)
        .ok()
        .and_then(|options| options.get_database().map(str::to_string))
        .unwrap_or_default();

    // Idle connections are dropped before the collector closes them (it closes a
    // connection that sends nothing for `[connections] header_seconds`, 10 s by
    // default), as the agent does, so no request goes out on one being closed.
    // reqwest has rustls without a default provider in this workspace: ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .pool_idle_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut full = Vec::new();
    let mut check_in = Vec::new();
    for template in 0..options.templates.max(1) {
        let (full_body, check_in_body) = crate::template_bodies(template, options.inventory_items)?;
        full.push(full_body);
        check_in.push(check_in_body);
    }
    let (full, check_in) = (Arc::new(full), Arc::new(check_in));

    let one = Collectors::start(collector, &config, 1)?;
    let started = Instant::now();
    let keys = Arc::new(enroll_region(&client, &one.urls(), secrets, options.hosts).await?);
    println!(
        "[{backend}] enrollment: {} hosts in {:.1} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );

    let cpu_before = one.cpu_seconds();
    let database_before = postgres_cpu_seconds(&database_name);
    let storm = run_phase(
        &client,
        &one.urls(),
        keys.clone(),
        full.clone(),
        options.concurrency,
        Duration::ZERO,
        Some(keys.len()),
    )
    .await;
    print_row(&format!("[{backend}] boot storm"), &storm);
    println!(
        "[{backend}] boot storm: {} full reports in {:.1} s ({:.0}/s), {} failed; collector CPU {:.1} s{}",
        storm.requests,
        storm.seconds,
        storm.per_second(),
        storm.failures,
        one.cpu_seconds() - cpu_before,
        if postgres {
            format!(
                ", PostgreSQL backends' CPU {:.1} s",
                postgres_cpu_seconds(&database_name) - database_before
            )
        } else {
            String::new()
        }
    );

    let cpu_before = one.cpu_seconds();
    let database_before = postgres_cpu_seconds(&database_name);
    let hourly = run_phase(
        &client,
        &one.urls(),
        keys.clone(),
        check_in.clone(),
        options.concurrency,
        Duration::ZERO,
        Some(keys.len()),
    )
    .await;
    let collector_cpu = one.cpu_seconds() - cpu_before;
    let database_cpu = if postgres {
        postgres_cpu_seconds(&database_name) - database_before
    } else {
        0.0
    };
    print_row(&format!("[{backend}] hourly check-ins"), &hourly);
    println!(
        "[{backend}] hourly check-ins of all {} hosts: collector CPU {:.1} s = {:.2}% of one core over an hour{}",
        hourly.requests,
        collector_cpu,
        collector_cpu / 3600.0 * 100.0,
        if postgres {
            format!(
                "; PostgreSQL backends {:.1} s = {:.2}%; together {:.2}%",
                database_cpu,
                database_cpu / 3600.0 * 100.0,
                (collector_cpu + database_cpu) / 3600.0 * 100.0
            )
        } else {
            " (SQLite runs inside the collector)".into()
        }
    );
    println!(
        "[{backend}] collector peak memory: {:.1} MiB",
        one.peak_memory_mib()
    );

    let since = sverka_collector::now() - 7 * 86_400;
    let mut timings = Vec::new();
    let mut rows = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        rows = store.coverage(region, since).await?;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    timings.sort_by(f64::total_cmp);
    let total = rows.first().context("coverage has the region's row")?;
    println!(
        "[{backend}] region coverage query: median {:.1} ms, max {:.1} ms (region: {} enrolled, {} reporting, {} with a banned messenger; {} municipality rows)",
        timings[timings.len() / 2],
        timings[timings.len() - 1],
        total.enrolled,
        total.reporting,
        total.with_banned,
        rows.len() - 1
    );
    drop(one);

    let database_bytes = if postgres {
        let pool = sqlx_database_size(&url).await?;
        pool as u64
    } else {
        folder_bytes(work)
    };
    println!(
        "[{backend}] database: {:.1} MiB, {:.0} bytes per host",
        database_bytes as f64 / 1024.0 / 1024.0,
        database_bytes as f64 / options.hosts.max(1) as f64
    );

    let counts: Vec<usize> = if postgres {
        options.collectors.clone()
    } else {
        vec![1]
    };
    for count in counts {
        let collectors = Collectors::start(collector, &config, count)?;
        let duration = Duration::from_secs(options.seconds);
        let cpu_before = collectors.cpu_seconds();
        let fulls = run_phase(
            &client,
            &collectors.urls(),
            keys.clone(),
            full.clone(),
            options.concurrency,
            duration,
            None,
        )
        .await;
        let full_cpu = collectors.cpu_seconds() - cpu_before;
        let cpu_before = collectors.cpu_seconds();
        let check_ins = run_phase(
            &client,
            &collectors.urls(),
            keys.clone(),
            check_in.clone(),
            options.concurrency,
            duration,
            None,
        )
        .await;
        let check_in_cpu = collectors.cpu_seconds() - cpu_before;
        println!(
            "[{backend}] {count} collector process(es): full reports {:>6.0}/s ({} failed, collectors {:.2} cores), check-ins {:>6.0}/s ({} failed, collectors {:.2} cores)",
            fulls.per_second(),
            fulls.failures,
            full_cpu / fulls.seconds.max(1e-9),
            check_ins.per_second(),
            check_ins.failures,
            check_in_cpu / check_ins.seconds.max(1e-9)
        );
    }
    if storm.failures + hourly.failures > 0 {
        bail!("some reports failed");
    }
    Ok(())
}

/// `pg_database_size` of the database `url` names.
async fn sqlx_database_size(url: &str) -> Result<i64> {
    use sqlx::Connection;
    let options = sverka_collector::store::dialect::postgres::connect_options(url)?;
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut connection)
        .await?;
    let _ = connection.close().await;
    Ok(size)
}
