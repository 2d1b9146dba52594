//! Proof suite part: slow clients (slow-loris). A real `sverka-collector serve` first
//! takes normal reports and serves a page with nothing else going on (the idle
//! figures), then the same while [`Budget::slow_connections`] connections from ten
//! other loopback addresses dribble headers, enrollment bodies and report bodies one
//! byte at a time for [`Budget::slow_duration`], each reconnecting when the collector
//! closes it. Measured side by side: the p99 of a normal report and of a page, idle
//! and under attack; counted: slow connections opened, and those the collector did not
//! close by its timeouts (0 allowed). A connection the collector refuses at once (a
//! rate limit, a host's or address's full share of upload slots) is opened again a
//! second later: this part measures slow clients, not a flood of new connections.
//!
//! The normal agent reports from 127.0.0.1 over a new connection each time; the
//! attackers use 127.0.0.2 to 127.0.0.11, under the per-address connection bound.

use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use sverka_shared::observation::PackageManager;
use sverka_shared::protocol::ReportUpload;
use sverka_shared::report::SCAN_SCHEMA;
use sverka_shared::{HostInfo, Inventory, Observation, Observed, ScanReport, Scope, Strength};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Budget, Figure, Part};
use crate::real_collector::Collector;

/// The attackers' loopback addresses.
const ATTACKER_ADDRESSES: u8 = 10;
/// A normal report is held to this p99 under attack (the target).
const REPORT_P99_TARGET: Duration = Duration::from_millis(100);
/// Pause between two normal reports (and two page loads).
const NORMAL_PAUSE: Duration = Duration::from_millis(20);

pub fn run(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(budget))
}

/// The collector's limits in this run: the shipped defaults at the full budget, short
/// ones for the smoke run (so its connections time out within its few seconds).
fn limits(budget: &Budget) -> (u64, u64) {
    if budget.smoke { (1, 2) } else { (10, 30) }
}

async fn run_async(budget: &Budget) -> anyhow::Result<Vec<Figure>> {
    let (header_seconds, body_seconds) = limits(budget);
    // The per-host rate limit would refuse a PC reporting every few milliseconds; this
    // part measures intake, not that limit.
    let collector = Collector::start_with_config(&format!(
        "[rate_limit]\nburst = 1e12\nper_minute = 1e12\n\
         [connections]\nheader_seconds = {header_seconds}\nbody_seconds = {body_seconds}\n"
    ));
    let server: SocketAddr = collector
        .url()
        .trim_start_matches("http://")
        .parse()
        .context("the collector's address")?;
    let organization = collector.add_org("Slow clients", "school", None);
    let secret = collector.secret(organization);
    let normal_key = enroll(server, &secret, "normal-pc").await?;
    let attacker_keys = [
        enroll(server, &secret, "attacker-1").await?,
        enroll(server, &secret, "attacker-2").await?,
    ];
    // The first report carries the inventory; the measured ones are check-ins.
    let status = send(server, [127, 0, 0, 1], report_request(&normal_key, 0, true)).await?;
    if status != 200 {
        bail!("the first normal report was answered {status}");
    }

    let phase = budget.slow_duration.max(Duration::from_secs(3));
    let idle = measure_normal(server, &normal_key, phase / 2, 1).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for index in 0..budget.slow_connections {
        let address = [
            127,
            0,
            0,
            2 + (index % usize::from(ATTACKER_ADDRESSES)) as u8,
        ];
        let head = match index % 3 {
            0 => "GET /login HTTP/1.1\r\nHost: collector\r\n".to_string(),
            1 => "POST /api/v1/enroll HTTP/1.1\r\nHost: collector\r\n\
                  Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
                .to_string(),
            _ => format!(
                "POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{",
                attacker_keys[index % attacker_keys.len()]
            ),
        };
        let dribbled: &'static [u8] = if index % 3 == 0 {
            b"X-Slow: 1\r\n"
        } else {
            b" "
        };
        attackers.push(tokio::spawn(attack(
            server,
            address,
            head,
            dribbled,
            stop.clone(),
            opened.clone(),
        )));
    }
    // Let the attack build up before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let attacked = measure_normal(server, &normal_key, phase, 1_000_000).await?;
    stop.store(true, Ordering::Relaxed);
    // Each attacker's last connection must still be closed by the collector.
    let mut not_closed = 0u64;
    let mut longest = Duration::ZERO;
    for attacker in attackers {
        let outcome = attacker.await.context("an attacker")?;
        not_closed += outcome.not_closed;
        longest = longest.max(outcome.longest);
    }
    let slowest_allowed = Duration::from_secs(header_seconds.max(body_seconds) + 5);
    let part = Part::SlowClients;
    let millis = |duration: Duration| format!("{:.1} ms", duration.as_secs_f64() * 1000.0);
    Ok(vec![
        Figure::count(
            part,
            "slow connections opened",
            opened.load(Ordering::Relaxed),
        ),
        Figure::at_most(
            part,
            "slow connections not closed by their timeout",
            not_closed,
            0,
        ),
        Figure::checked(
            part,
            "longest-lived slow connection",
            format!("{:.1} s", longest.as_secs_f64()),
            format!("≤ {} s", slowest_allowed.as_secs()),
            longest <= slowest_allowed,
        ),
        Figure::count(
            part,
            "normal reports, idle / under attack",
            format!("{} / {}", idle.reports.len(), attacked.reports.len()),
        ),
        Figure::at_most(
            part,
            "normal reports and pages refused under attack",
            attacked.failures,
            0,
        ),
        Figure::count(
            part,
            "report p99, idle collector",
            millis(p99(&idle.reports)),
        ),
        Figure::checked(
            part,
            "report p99 under attack",
            millis(p99(&attacked.reports)),
            format!("< {}", millis(REPORT_P99_TARGET)),
            p99(&attacked.reports) < REPORT_P99_TARGET,
        ),
        Figure::count(part, "page p99, idle collector", millis(p99(&idle.pages))),
        Figure::count(part, "page p99 under attack", millis(p99(&attacked.pages))),
    ])
}

fn p99(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted
        .get((sorted.len() * 99 / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

struct Measured {
    reports: Vec<Duration>,
    pages: Vec<Duration>,
    failures: u64,
}

/// Normal reports (each a check-in with a later scan time) and sign-in page loads,
/// one after the other, for `duration`; report numbers start at `first`.
async fn measure_normal(
    server: SocketAddr,
    key: &str,
    duration: Duration,
    first: u64,
) -> anyhow::Result<Measured> {
    let mut measured = Measured {
        reports: Vec::new(),
        pages: Vec::new(),
        failures: 0,
    };
    let end = Instant::now() + duration;
    let mut number = first;
    while Instant::now() < end {
        let started = Instant::now();
        let status = send(server, [127, 0, 0, 1], report_request(key, number, false)).await?;
        measured.reports.push(started.elapsed());
        measured.failures += u64::from(status != 200);
        number += 1;
        let started = Instant::now();
        let status = send(
            server,
            [127, 0, 0, 1],
            "GET /login HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n".into(),
        )
        .await?;
        measured.pages.push(started.elapsed());
        measured.failures += u64::from(status != 200);
        tokio::time::sleep(NORMAL_PAUSE).await;
    }
    Ok(measured)
}

struct AttackOutcome {
    not_closed: u64,
    longest: Duration,
}

/// One attacker: connects from `source`, sends `head`, then one byte of `dribbled`
/// every 200 ms until the collector closes the connection; again until `stop`. Its
/// last connection is given the collector's longest timeout and a margin to close.
async fn attack(
    server: SocketAddr,
    source: [u8; 4],
    head: String,
    dribbled: &'static [u8],
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
) -> AttackOutcome {
    let mut outcome = AttackOutcome {
        not_closed: 0,
        longest: Duration::ZERO,
    };
    loop {
        let Ok(mut stream) = connect_from(source, server).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut stopped_at: Option<Instant> = None;
        let _ = stream.write_all(head.as_bytes()).await;
        let mut buffer = [0u8; 512];
        let mut next_byte = dribbled.iter().cycle();
        let closed = loop {
            if stopped_at.is_none() && stop.load(Ordering::Relaxed) {
                stopped_at = Some(Instant::now());
            }
            // After the attack, the collector has its longest timeout and a margin.
            if stopped_at.is_some_and(|at| at.elapsed() > Duration::from_secs(40)) {
                break false;
            }
            tokio::select! {
                read = stream.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => break true,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    let byte = next_byte.next().copied().unwrap_or(b' ');
                    if stream.write_all(&[byte]).await.is_err() {
                        break true;
                    }
                }
            }
        };
        let lived = started.elapsed();
        outcome.longest = outcome.longest.max(lived);
        if !closed {
            outcome.not_closed += 1;
        }
        if stopped_at.is_some() || stop.load(Ordering::Relaxed) {
            return outcome;
        }
        // Refused at once (a rate limit, a full share of upload slots): a slow client
        // comes back a second later rather than turning into a connection flood.
        if lived < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn connect_from(source: [u8; 4], server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(source), 0))?;
    socket.connect(server).await
}

/// Sends one request on a new connection from `source`; the answer's status.
async fn send(server: SocketAddr, source: [u8; 4], request: String) -> anyhow::Result<u16> {
    let mut stream = connect_from(source, server).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

async fn enroll(server: SocketAddr, secret: &str, machine_id: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "secret": secret, "machine_id": machine_id, "hostname": machine_id,
        "os_id": "astra", "os_name": "Astra Linux 1.8", "agent_version": "proof"
    })
    .to_string();
    let mut stream = connect_from([127, 0, 0, 1], server).await?;
    stream
        .write_all(
            format!(
                "POST /api/v1/enroll HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("enrolling {machine_id}: {text}"))?;
    Ok(value["host_key"]
        .as_str()
        .context("an enrollment without a host key")?
        .to_string())
}

/// Report `number` of the normal PC, as an HTTP request that closes its connection.
fn report_request(key: &str, number: u64, with_inventory: bool) -> String {
    let observations = vec![Observation {
        observed: Observed::Package {
            manager: PackageManager::Dpkg,
            name: "bash".into(),
            version: "5.2".into(),
            vendor: None,
        },
        path: None,
        user: None,
        scope: Scope::Machine,
        strength: Strength::Installed,
    }];
    let inventory = Inventory::from_observations(&observations);
    // Scan times a second apart, so no report is older than the one before.
    let scanned = 1_790_000_000 + number as i64;
    let upload = ReportUpload {
        report_id: uuid_for(number),
        scan: ScanReport {
            schema: SCAN_SCHEMA,
            host: HostInfo {
                hostname: "normal-pc".into(),
                os_id: "astra".into(),
                os_name: "Astra Linux".into(),
                os_version: "1.8".into(),
                machine_id: None,
                scanned_root: None,
                agent_version: "proof".into(),
            },
            catalog_version: "proof".into(),
            scanned_at: sverka_collector::format_time(scanned),
            duration_ms: 10,
            findings: vec![],
            errors: vec![],
            skipped: vec![],
        },
        inventory_digest: inventory.digest.clone(),
        inventory: with_inventory.then_some(inventory.observations),
        evidence: vec![],
    };
    let body = serde_json::to_string(&upload).unwrap_or_default();
    format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A UUID-shaped report id unique to `number`.
fn uuid_for(number: u64) -> String {
    format!("0190a0b0-0000-7000-8000-{number:012x}")
}
