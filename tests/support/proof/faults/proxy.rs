//! A TCP proxy on 127.0.0.1 between some agents and the collector that cuts
//! connections in the middle: after a random number of bytes of the request (the
//! report's body, mostly) or of the answer (the acknowledgement, after the collector
//! may already have stored the report). Plain threads, one pair per connection; it
//! follows the collector across restarts on the same port.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How far into a connection a cut may come: within its first report or two (a
/// report's request is about 1 KB: headers and a gzip body) or its first few
/// acknowledgements (about 300 bytes each).
const MAX_REQUEST_BYTES_BEFORE_CUT: u64 = 1_500;
const MAX_ANSWER_BYTES_BEFORE_CUT: u64 = 900;

/// What the proxy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub connections: u64,
    /// Connections cut while the agent was sending.
    pub cut_requests: u64,
    /// Connections cut while the collector was answering.
    pub cut_answers: u64,
}

#[derive(Debug)]
struct Shared {
    upstream_port: u16,
    cutting: AtomicBool,
    stopped: AtomicBool,
    connections: AtomicU64,
    cut_requests: AtomicU64,
    cut_answers: AtomicU64,
}

#[derive(Debug)]
pub struct CuttingProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl CuttingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream_port`, cutting.
    pub fn start(upstream_port: u16) -> io::Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream_port,
            cutting: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            cut_requests: AtomicU64::new(0),
            cut_answers: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let connection = Arc::clone(&accepting);
                std::thread::spawn(move || forward(client, &connection));
            }
        });
        Ok(CuttingProxy { port, shared })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// New connections are cut (`true`) or forwarded whole (`false`, the final drain).
    pub fn set_cutting(&self, cutting: bool) {
        self.shared.cutting.store(cutting, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            connections: self.shared.connections.load(Ordering::SeqCst),
            cut_requests: self.shared.cut_requests.load(Ordering::SeqCst),
            cut_answers: self.shared.cut_answers.load(Ordering::SeqCst),
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: to the collector, both ways, cut where this connection's fate says.
fn forward(client: TcpStream, shared: &Shared) {
    let number = shared.connections.fetch_add(1, Ordering::SeqCst);
    // The collector being down (killed, restarting) closes the agent's connection at
    // once, as a refused connection would.
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", shared.upstream_port)) else {
        return;
    };
    let (request_limit, answer_limit) = if shared.cutting.load(Ordering::SeqCst) {
        // Every other connection is cut while the agent sends, the others while the
        // collector answers; where, is random.
        if number.is_multiple_of(2) {
            (Some(fastrand::u64(1..MAX_REQUEST_BYTES_BEFORE_CUT)), None)
        } else {
            (None, Some(fastrand::u64(1..MAX_ANSWER_BYTES_BEFORE_CUT)))
        }
    } else {
        (None, None)
    };
    let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let requests = std::thread::spawn(move || pump(client_reader, upstream_writer, request_limit));
    let answer_cut = pump(upstream, client, answer_limit);
    let request_cut = requests.join().unwrap_or(false);
    if request_cut {
        shared.cut_requests.fetch_add(1, Ordering::SeqCst);
    }
    if answer_cut {
        shared.cut_answers.fetch_add(1, Ordering::SeqCst);
    }
}

/// Copies until the end, an error or `limit` bytes; then closes both sockets. Returns
/// whether it cut at the limit.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<u64>) -> bool {
    let mut buffer = [0u8; 4096];
    let mut forwarded: u64 = 0;
    let mut cut = false;
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read as u64,
        };
        let allowed = limit.map_or(read, |limit| read.min(limit - forwarded));
        if to.write_all(&buffer[..allowed as usize]).is_err() {
            break;
        }
        forwarded += allowed;
        if limit == Some(forwarded) {
            cut = true;
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    cut
}
