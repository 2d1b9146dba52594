//! Slow and hostile clients against the collector served on a loopback socket with
//! short limits (the smoke version of the proof suite's slow-loris part): connections
//! dribbling headers or bodies and idle ones are closed by their timeouts, one address
//! cannot hold more than its connections, and normal reports keep being taken
//! meanwhile. Slow clients come from 127.0.0.2–4, the normal agent from 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use sverka_collector::api::RateLimit;
use sverka_collector::connections::{self, ConnectionLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::api::{enrolled, harness_for, upload};

/// Longer than any limit below plus scheduling slack: a connection still open after
/// this was not closed by a timeout.
const CLOSED_WITHIN: Duration = Duration::from_secs(8);

const LIMITS: ConnectionLimits = ConnectionLimits {
    header_seconds: 1,
    body_seconds: 1,
    idle_seconds: 1,
    tls_handshake_seconds: 1,
    per_address: 40,
    uploads_per_address: 16,
};

/// The collector's connection layer serving on a free loopback port until `stop`.
struct Serving {
    address: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    async fn start(app: &axum::Router, limits: ConnectionLimits) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(connections::serve(
            listener,
            None,
            app.clone(),
            limits,
            async {
                let _ = stopped.await;
            },
        ));
        Serving {
            address,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("task").expect("served");
    }
}

async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::from(source), 0))
        .expect("bind a loopback source address");
    socket.connect(server).await.expect("connect")
}

/// Sends `head` and then `dribble` one byte every 100 ms until the server closes the
/// connection; returns how long that took.
async fn dribble(
    source: [u8; 4],
    server: SocketAddr,
    head: String,
    dribble: &'static [u8],
) -> Duration {
    let started = Instant::now();
    let mut stream = connect_from(source, server).await;
    let closed = async {
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut buffer = [0u8; 1024];
        for byte in dribble.iter().cycle() {
            tokio::select! {
                read = stream.read(&mut buffer) => match read {
                    // A 408 may come first; the close follows it.
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(CLOSED_WITHIN, closed)
        .await
        .expect("a slow connection was not closed by its timeout");
    started.elapsed()
}

/// One request on its own connection from 127.0.0.1; the status code.
async fn request(server: SocketAddr, request: String) -> u16 {
    let mut stream = connect_from([127, 0, 0, 1], server).await;
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn report_request(key: &str, body: &str) -> String {
    format!(
        "POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_are_closed_by_their_timeouts_while_reports_go_on() {
    let h = harness_for(
        RateLimit {
            burst: 1_000.0,
            per_minute: 60_000.0,
        },
        LIMITS,
    )
    .await;
    let host = enrolled(&h.app, &h.secret_a, "machine-busy").await;
    let serving = Serving::start(&h.app, LIMITS).await;
    let server = serving.address;

    // 30 connections dribbling headers, 30 dribbling an enrollment body, 30 that send
    // a report's headers with a key and dribble its body.
    let mut slow = Vec::new();
    for _ in 0..30 {
        slow.push(tokio::spawn(dribble(
            [127, 0, 0, 2],
            server,
            "GET /healthz HTTP/1.1\r\nHost: collector\r\n".into(),
            b"X-Slow: 1\r\n",
        )));
        slow.push(tokio::spawn(dribble(
            [127, 0, 0, 3],
            server,
            "POST /api/v1/enroll HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{"
                .into(),
            b" ",
        )));
        slow.push(tokio::spawn(dribble(
            [127, 0, 0, 4],
            server,
            format!(
                "POST /api/v1/reports HTTP/1.1\r\nHost: collector\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
                host.host_key
            ),
            b" ",
        )));
    }
    // Meanwhile a normal PC reports, one report after the other.
    let normal = enrolled(&h.app, &h.secret_a, "machine-normal").await;
    let mut latencies = Vec::new();
    for index in 0..20 {
        let mut report = upload("machine-normal", &["bash"], index == 0);
        report.scan.scanned_at = format!("2026-11-22T08:{index:02}:00Z");
        let body = serde_json::to_string(&report).expect("json");
        let started = Instant::now();
        let status = request(server, report_request(&normal.host_key, &body)).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "report {index} during the slow-loris");
    }
    let mut closed_after = Vec::new();
    for task in slow {
        closed_after.push(task.await.expect("task"));
    }
    latencies.sort();
    closed_after.sort();
    eprintln!(
        "normal reports: median {:?}, slowest {:?}; slow connections closed after {:?} to {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        closed_after[0],
        closed_after[closed_after.len() - 1]
    );
    assert_eq!(
        h.store.report_count(normal.host_id).await.expect("count"),
        20
    );

    // An idle kept-alive connection is closed too.
    let mut idle = connect_from([127, 0, 0, 2], server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .await
        .expect("write");
    let idle_closed = tokio::time::timeout(CLOSED_WITHIN, async {
        let mut buffer = Vec::new();
        let _ = idle.read_to_end(&mut buffer).await;
        buffer
    })
    .await
    .expect("an idle connection was not closed");
    assert!(String::from_utf8_lossy(&idle_closed).starts_with("HTTP/1.1 200"));

    serving.stop().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_connections() {
    // Long enough that the held connections stay open while the test runs.
    let limits = ConnectionLimits {
        header_seconds: 60,
        ..LIMITS
    };
    let h = harness_for(RateLimit::default(), limits).await;
    let serving = Serving::start(&h.app, limits).await;
    let server = serving.address;
    let mut held = Vec::new();
    for _ in 0..LIMITS.per_address {
        let mut stream = connect_from([127, 0, 0, 5], server).await;
        // A complete request proves the connection was taken.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
            .await
            .expect("write");
        let mut buffer = [0u8; 256];
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    // One more from the same address is closed without an answer.
    let mut extra = connect_from([127, 0, 0, 5], server).await;
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .await;
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(CLOSED_WITHIN, extra.read_to_end(&mut buffer)).await;
    assert!(buffer.is_empty(), "{}", String::from_utf8_lossy(&buffer));
    // Another address is served.
    assert_eq!(
        request(
            server,
            "GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".into()
        )
        .await,
        200
    );
    drop(held);
    serving.stop().await;
}
