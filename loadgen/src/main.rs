//! `sverka-loadgen`: simulates many agents against a real `sverka-collector` process
//! and, in the same run and with the same client, against a trivial axum handler that
//! only reads the body and answers, so the figures say what Sverka's own work costs.
//!
//! Phases: enrollment, full reports (each carrying a 300-program inventory), unchanged
//! check-ins, and optionally a boot storm of many hosts for the collector's peak memory.
//! Throughput, p50/p99 latency and the collector's peak resident memory are printed.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sverka_shared::observation::PackageManager;
use sverka_shared::protocol::{ENROLL_PATH, EnrollResponse, REPORTS_PATH, ReportUpload};
use sverka_shared::report::SCAN_SCHEMA;
use sverka_shared::{HostInfo, Inventory, Observation, Observed, ScanReport, Scope, Strength};

mod instructions;
mod region;

const PLACEHOLDER_ID: &str = "00000000-0000-7000-8000-000000000000";

#[derive(Debug, Parser)]
#[command(name = "sverka-loadgen", about = "Load generator for sverka-collector")]
struct Options {
    #[command(subcommand)]
    command: Option<Mode>,
    /// The collector binary (default: `sverka-collector` next to this one).
    #[arg(long)]
    collector: Option<PathBuf>,
    /// Simulated agents (enrolled hosts) for the throughput phases.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Requests in flight at once (concurrent agents).
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Length of each throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Programs in each inventory.
    #[arg(long, default_value_t = 300)]
    inventory_items: usize,
    /// Distinct inventories among the hosts (labs of identical PCs share one).
    #[arg(long, default_value_t = 20)]
    templates: usize,
    /// After the throughput phases, grow to this many hosts, each sending one full
    /// report (a morning boot storm), and report the collector's peak memory.
    #[arg(long, default_value_t = 0)]
    memory_hosts: usize,
    /// Offered rate of full reports in the paced phase, where latency is measured at a
    /// fixed load (from each request's scheduled start, so queueing counts).
    #[arg(long, default_value_t = 2000.0)]
    paced_rate: f64,
    /// Offered rate of check-ins in the paced phase.
    #[arg(long, default_value_t = 10000.0)]
    paced_check_in_rate: f64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve the trivial baseline handler (used by the load generator itself).
    TrivialServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// A whole region on one database: boot storm, hourly check-ins, the coverage
    /// query, database size, and 1, 2, 4 ... collector processes.
    Region(region::RegionOptions),
    /// The collector's instructions per check-in and per full report, counted under
    /// valgrind's callgrind (repeatable on a busy machine, unlike CPU time).
    Instructions(instructions::InstructionsOptions),
}

fn main() -> Result<()> {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let collector = options.collector.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap_or_default()
            .with_file_name("sverka-collector")
    });
    match options.command {
        Some(Mode::TrivialServer { ref listen }) => runtime.block_on(trivial_server(listen)),
        Some(Mode::Region(region)) => runtime.block_on(region::run(region, collector)),
        Some(Mode::Instructions(instructions)) => {
            runtime.block_on(instructions::run(instructions, collector))
        }
        None => runtime.block_on(run(options)),
    }
}

/// The baseline: reads the body and answers a fixed acknowledgement.
async fn trivial_server(listen: &str) -> Result<()> {
    async fn acknowledge(body: axum::body::Bytes) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"report_id": "x", "duplicate": false, "len": body.len()}))
    }
    let app = axum::Router::new().route(
        REPORTS_PATH,
        axum::routing::post(acknowledge)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A child process that is killed when dropped.
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

impl Server {
    fn start(mut command: Command) -> Result<Server> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the server did not start: {line:?}");
        };
        Ok(Server {
            url: url.to_string(),
            child,
        })
    }

    /// CPU time the server process has used so far (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => (user + system) / 100.0,
            _ => 0.0,
        }
    }

    fn peak_memory_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

fn collector_command(binary: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("--config").arg(config);
    command
}

fn cli_output(binary: &Path, config: &Path, arguments: &[&str]) -> Result<String> {
    let output = collector_command(binary, config)
        .args(arguments)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "sverka-collector {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

fn package(name: String, version: &str) -> Observation {
    Observation {
        observed: Observed::Package {
            manager: PackageManager::Dpkg,
            name,
            version: version.into(),
            vendor: Some("Debian".into()),
        },
        path: Some("/var/lib/dpkg/status".into()),
        user: None,
        scope: Scope::Machine,
        strength: Strength::Installed,
    }
}

/// Report bodies (full, check-in) for one inventory template. A few templates carry
/// a banned messenger and most carry an approved one, as a real region would.
fn template_bodies(template: usize, items: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut observations: Vec<Observation> = (0..items)
        .map(|index| {
            package(
                format!("lib-package-{index:04}"),
                &format!("1.{template}.{index}"),
            )
        })
        .collect();
    if template.is_multiple_of(4) {
        observations.push(package("telegram-desktop".into(), "4.6.5"));
    }
    if !template.is_multiple_of(3) {
        observations.push(package("max".into(), "25.10"));
    }
    let inventory = Inventory::from_observations(&observations);
    let mut upload = ReportUpload {
        report_id: PLACEHOLDER_ID.into(),
        scan: ScanReport {
            schema: SCAN_SCHEMA,
            host: HostInfo {
                hostname: format!("lab-{template}"),
                os_id: "astra".into(),
                os_name: "Astra Linux 1.8".into(),
                os_version: "1.8".into(),
                // Left out so that one body serves every host of a template; the
                // collector checks it only when present.
                machine_id: None,
                scanned_root: None,
                agent_version: "loadgen".into(),
            },
            catalog_version: "loadgen".into(),
            scanned_at: String::new(),
            duration_ms: 50,
            findings: vec![],
            errors: vec![],
            skipped: vec![],
        },
        inventory_digest: inventory.digest.clone(),
        inventory: Some(inventory.observations),
        evidence: vec![],
    };
    let full = serde_json::to_vec(&upload)?;
    upload.inventory = None;
    let check_in = serde_json::to_vec(&upload)?;
    Ok((full, check_in))
}

/// Request bodies, one per inventory template.
type Bodies = Vec<Vec<u8>>;

/// The full and check-in bodies of `templates` inventory templates (at least one).
fn all_template_bodies(templates: usize, items: usize) -> Result<(Bodies, Bodies)> {
    let mut full = Vec::new();
    let mut check_in = Vec::new();
    for template in 0..templates.max(1) {
        let (full_body, check_in_body) = template_bodies(template, items)?;
        full.push(full_body);
        check_in.push(check_in_body);
    }
    Ok((full, check_in))
}

fn with_fresh_id(template: &[u8]) -> Vec<u8> {
    let mut body = template.to_vec();
    let placeholder = PLACEHOLDER_ID.as_bytes();
    if let Some(position) = body
        .windows(placeholder.len())
        .position(|window| window == placeholder)
    {
        body[position..position + placeholder.len()]
            .copy_from_slice(uuid::Uuid::now_v7().to_string().as_bytes());
    }
    body
}

#[derive(Debug, Default)]
struct PhaseResult {
    requests: usize,
    failures: usize,
    seconds: f64,
    latencies_us: Vec<u32>,
}

impl PhaseResult {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }
    fn percentile_ms(&self, percentile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * percentile).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// One report from host `host`, with a fresh id; whether it was acknowledged. Failures
/// are printed with their status and message.
async fn send_report(
    client: &reqwest::Client,
    endpoint: &str,
    keys: &[String],
    bodies: &[Vec<u8>],
    host: usize,
) -> bool {
    let answer = client
        .post(endpoint)
        .header("authorization", format!("Bearer {}", keys[host]))
        .header("content-type", "application/json")
        .body(with_fresh_id(&bodies[host % bodies.len()]))
        .send()
        .await;
    match answer {
        Ok(response) => {
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
            if !status.is_success() {
                eprintln!("{status}: {}", String::from_utf8_lossy(&body));
            }
            status.is_success()
        }
        Err(error) => {
            // reqwest's own message names only the URL; the cause is in its sources.
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("request failed: {message}");
            false
        }
    }
}

fn micros_since(start: Instant) -> u32 {
    start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

type WorkerResult = (Vec<u32>, usize);

/// Gathers the workers' latencies and failures into one phase result; the phase lasts
/// from `started` until the last worker is done.
async fn collect_phase(
    workers: Vec<tokio::task::JoinHandle<WorkerResult>>,
    started: Instant,
) -> PhaseResult {
    let mut result = PhaseResult::default();
    for worker in workers {
        if let Ok((latencies, failures)) = worker.await {
            result.requests += latencies.len();
            result.failures += failures;
            result.latencies_us.extend(latencies);
        }
    }
    result.seconds = started.elapsed().as_secs_f64();
    result.latencies_us.sort_unstable();
    result
}

/// Sends reports with `concurrency` requests in flight for `duration`, or `total`
/// requests when given; request `i` is host `i % hosts`'s, sends
/// `bodies[host % bodies.len()]` and goes to `urls[i % urls.len()]` (several URLs:
/// collector processes behind a round-robin load balancer).
async fn run_phase(
    client: &reqwest::Client,
    urls: &[String],
    keys: Arc<Vec<String>>,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    duration: Duration,
    total: Option<usize>,
) -> PhaseResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let endpoints: Arc<Vec<String>> = Arc::new(
        urls.iter()
            .map(|url| format!("{url}{REPORTS_PATH}"))
            .collect(),
    );
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, endpoints, keys, bodies, next) = (
            client.clone(),
            endpoints.clone(),
            keys.clone(),
            bodies.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                match total {
                    Some(total) if index >= total => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let host = index % keys.len();
                let endpoint = &endpoints[index % endpoints.len()];
                let sent = Instant::now();
                let ok = send_report(&client, endpoint, &keys, &bodies, host).await;
                latencies.push(micros_since(sent));
                if !ok {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    collect_phase(workers, started).await
}

/// Sends at a fixed offered `rate` spread over `concurrency` agents for `duration`;
/// latency counts from when each request was due.
async fn run_paced_phase(
    client: &reqwest::Client,
    url: &str,
    keys: Arc<Vec<String>>,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    rate: f64,
    duration: Duration,
) -> PhaseResult {
    let started = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(concurrency as f64 / rate.max(1.0));
    let endpoint = format!("{url}{REPORTS_PATH}");
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, endpoint, keys, bodies) = (
            client.clone(),
            endpoint.clone(),
            keys.clone(),
            bodies.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let offset = interval.mul_f64(worker as f64 / concurrency as f64);
            let mut due = started + offset;
            let mut round = 0usize;
            while due < started + duration {
                tokio::time::sleep_until(due).await;
                let host = (worker + round * concurrency) % keys.len();
                let ok = send_report(&client, &endpoint, &keys, &bodies, host).await;
                latencies.push(micros_since(due.into_std()));
                if !ok {
                    failures += 1;
                }
                round += 1;
                due += interval;
            }
            (latencies, failures)
        }));
    }
    collect_phase(workers, started.into_std()).await
}

/// What host `index` sends to enroll.
type EnrollmentBody = Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>;

/// Enrolls hosts `hosts` with 64 requests in flight, worker `w` through
/// `urls[w % urls.len()]`, host `i` sending `body(i)`. Returns their host keys in
/// host order.
async fn enroll_hosts(
    client: &reqwest::Client,
    urls: &[String],
    hosts: std::ops::Range<usize>,
    body: EnrollmentBody,
) -> Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(hosts.start));
    let mut workers = Vec::new();
    for worker in 0..64 {
        let (client, url, body, next, end) = (
            client.clone(),
            format!("{}{ENROLL_PATH}", urls[worker % urls.len()]),
            body.clone(),
            next.clone(),
            hosts.end,
        );
        workers.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end {
                    break;
                }
                let request = body(index).to_string();
                let response = client.post(&url).body(request).send().await?;
                if !response.status().is_success() {
                    bail!("enrollment failed: {}", response.status());
                }
                let enrolled: EnrollResponse = serde_json::from_slice(&response.bytes().await?)?;
                keys.push((index, enrolled.host_key));
            }
            Ok::<_, anyhow::Error>(keys)
        }));
    }
    let mut keys = Vec::new();
    for worker in workers {
        keys.extend(worker.await??);
    }
    keys.sort();
    Ok(keys.into_iter().map(|(_, key)| key).collect())
}

/// Host `index` of one school with enrollment secret `secret`.
fn school_pc(secret: String) -> EnrollmentBody {
    Arc::new(move |index| {
        serde_json::json!({
            "secret": secret, "machine_id": format!("loadgen-{index:08}"),
            "hostname": format!("pc-{index}"), "os_id": "astra",
            "os_name": "Astra Linux 1.8", "agent_version": "loadgen"
        })
    })
}

fn print_cpu(name: &str, server: &Server, before: f64, result: &PhaseResult) {
    let used = server.cpu_seconds() - before;
    if result.requests > 0 {
        println!(
            "{name:<34} {:>9.1} µs of collector CPU per request ({:.2} cores busy)",
            used * 1e6 / result.requests as f64,
            used / result.seconds.max(1e-9)
        );
    }
}

fn print_row(name: &str, result: &PhaseResult) {
    println!(
        "{name:<34} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>8} requests  {} failed",
        result.per_second(),
        result.percentile_ms(0.50),
        result.percentile_ms(0.99),
        result.requests,
        result.failures
    );
}

/// Writes a collector configuration in `work` (the database goes there too) with the
/// per-host rate limit lifted, adds one organization and returns the configuration's
/// path and that organization's enrollment secret. With `lift_address_limits` the
/// per-address enrollment, connection and upload limits are lifted too (the
/// `[enrollment]` and `[connections]` sections, which collectors before 2026-11-30 do
/// not know).
fn prepare_collector(
    collector: &Path,
    work: &Path,
    lift_address_limits: bool,
) -> Result<(PathBuf, String)> {
    std::fs::create_dir_all(work)?;
    let config = work.join("collector.toml");
    let address_limits = if lift_address_limits {
        "[enrollment]\nper_address_burst = 1e12\nper_address_per_minute = 1e12\n\
         [connections]\nper_address = 1000000\nuploads_per_address = 1000000\n"
    } else {
        ""
    };
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
             # Throughput is measured without the per-host limit denying anything,\n\
             # and thousands of PCs enroll and report from this one address.\n\
             [rate_limit]\nburst = 1e12\nper_minute = 1e12\n{address_limits}",
            work.display()
        ),
    )?;
    let organization = cli_output(collector, &config, &["org", "add", "--name", "Load"])?;
    let secret = cli_output(
        collector,
        &config,
        &["secret", "create", "--org", &organization],
    )?;
    Ok((config, secret))
}

async fn run(options: Options) -> Result<()> {
    let me = std::env::current_exe()?;
    let collector = options
        .collector
        .clone()
        .unwrap_or_else(|| me.with_file_name("sverka-collector"));
    let work = std::env::temp_dir().join(format!("sverka-loadgen-{}", std::process::id()));
    let (config, secret) = prepare_collector(&collector, &work, true)?;

    let mut serve = collector_command(&collector, &config);
    serve.arg("serve");
    let server = Server::start(serve)?;
    let mut trivial_command = Command::new(&me);
    trivial_command.arg("trivial-server");
    let trivial = Server::start(trivial_command)?;

    // Idle connections are dropped before the collector closes them (it closes a
    // connection that sends nothing for `[connections] header_seconds`, 10 s by
    // default), as the agent does, so no request goes out on one being closed.
    // reqwest has rustls without a default provider in this workspace: ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .pool_idle_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;

    println!(
        "sverka-loadgen: {} hosts, {} in flight, {} s per phase, {}-program inventories in {} templates",
        options.hosts,
        options.concurrency,
        options.seconds,
        options.inventory_items,
        options.templates
    );
    let started = Instant::now();
    let keys = enroll_hosts(
        &client,
        std::slice::from_ref(&server.url),
        0..options.hosts,
        school_pc(secret.clone()),
    )
    .await?;
    let enroll_seconds = started.elapsed().as_secs_f64();
    println!(
        "{:<34} {:>9.0} hosts/s ({} hosts in {:.1} s)",
        "enrollment",
        keys.len() as f64 / enroll_seconds,
        keys.len(),
        enroll_seconds
    );
    let keys = Arc::new(keys);
    let (full, check_in) = all_template_bodies(options.templates, options.inventory_items)?;
    println!(
        "report sizes: full {} bytes, check-in {} bytes",
        full[0].len(),
        check_in[0].len()
    );
    let full = Arc::new(full);
    let check_in = Arc::new(check_in);
    let duration = Duration::from_secs(options.seconds);
    let concurrency = options.concurrency;

    // The same closed-loop phase against the trivial handler, then the collector.
    let side_by_side = async |bodies: &Arc<Vec<Vec<u8>>>, baseline: &str, collector: &str| {
        let phase = async |url: &String| {
            let urls = std::slice::from_ref(url);
            let (keys, bodies) = (keys.clone(), bodies.clone());
            run_phase(&client, urls, keys, bodies, concurrency, duration, None).await
        };
        let baseline_result = phase(&trivial.url).await;
        print_row(baseline, &baseline_result);
        let cpu_before = server.cpu_seconds();
        let collector_result = phase(&server.url).await;
        print_row(&format!("sverka-collector, {collector}"), &collector_result);
        print_cpu(
            &format!("  {collector}"),
            &server,
            cpu_before,
            &collector_result,
        );
        collector_result
    };
    let collector_full =
        side_by_side(&full, "trivial axum handler, full bodies", "full reports").await;
    let collector_check_in =
        side_by_side(&check_in, "trivial axum handler, check-ins", "check-ins").await;
    let paced_full = run_paced_phase(
        &client,
        &server.url,
        keys.clone(),
        full.clone(),
        concurrency,
        options.paced_rate,
        duration,
    )
    .await;
    print_row(
        &format!("paced {:.0} full reports/s", options.paced_rate),
        &paced_full,
    );
    let paced_check_in = run_paced_phase(
        &client,
        &server.url,
        keys.clone(),
        check_in.clone(),
        concurrency,
        options.paced_check_in_rate,
        duration,
    )
    .await;
    print_row(
        &format!("paced {:.0} check-ins/s", options.paced_check_in_rate),
        &paced_check_in,
    );
    println!(
        "collector peak memory after the phases: {:.1} MiB",
        server.peak_memory_kib().unwrap_or(0) as f64 / 1024.0
    );

    if options.memory_hosts > options.hosts {
        let started = Instant::now();
        let more = enroll_hosts(
            &client,
            std::slice::from_ref(&server.url),
            options.hosts..options.memory_hosts,
            school_pc(secret.clone()),
        )
        .await?;
        println!(
            "{:<34} {:>9.0} hosts/s ({} more hosts in {:.1} s)",
            "enrollment (boot storm set-up)",
            more.len() as f64 / started.elapsed().as_secs_f64(),
            more.len(),
            started.elapsed().as_secs_f64()
        );
        let mut all = keys.as_ref().clone();
        all.extend(more);
        let hosts = all.len();
        let storm = run_phase(
            &client,
            std::slice::from_ref(&server.url),
            Arc::new(all),
            full.clone(),
            concurrency,
            duration,
            Some(hosts),
        )
        .await;
        print_row("boot storm: one full report each", &storm);
        println!(
            "boot storm: {hosts} hosts in {:.1} s; collector peak memory {:.1} MiB; database {:.1} MiB",
            storm.seconds,
            server.peak_memory_kib().unwrap_or(0) as f64 / 1024.0,
            folder_size(&work) as f64 / 1024.0 / 1024.0
        );
    }
    drop(server);
    drop(trivial);
    let _ = std::fs::remove_dir_all(&work);
    if collector_full.failures + collector_check_in.failures > 0 {
        bail!("some reports failed");
    }
    Ok(())
}

fn folder_size(folder: &Path) -> u64 {
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
