//! A stand-in collector for the agent's end-to-end tests: plain HTTP/1.1 on
//! `127.0.0.1:0`, one connection at a time, every request recorded. It speaks the agent
//! API (`sverka_shared::protocol`) with a small memory: enroll gives each machine id a
//! host and a fresh key, reports are acknowledged (`duplicate` when seen before), the
//! catalog is served with an ETag. Scripted replies override the next answers to a path,
//! and the collector can be stopped and started again on the same port (an outage).
//! [`TestCollector::start_tls`] serves HTTPS with a certificate from a throwaway CA.

use flate2::read::GzDecoder;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sverka_shared::protocol::{
    ApiError, CATALOG_PATH, ENROLL_PATH, EnrollRequest, EnrollResponse, REPORTS_PATH, ReportAck,
    ReportUpload,
};

/// The enrollment secret the stand-in accepts.
pub const TEST_SECRET: &str = "school-secret";
pub const TEST_ORGANIZATION: &str = "Школа №5";

/// One request as the collector received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as it arrived (gzip-compressed when `Content-Encoding: gzip`).
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == &name.to_ascii_lowercase())
            .map(|(_, value)| value.as_str())
    }

    /// The body, decompressed when it was sent compressed.
    pub fn decoded_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut decoded = Vec::new();
            GzDecoder::new(self.body.as_slice())
                .read_to_end(&mut decoded)
                .expect("the body is valid gzip");
            decoded
        } else {
            self.body.clone()
        }
    }

    /// The body as a report upload (panics when it is not one).
    pub fn upload(&self) -> ReportUpload {
        serde_json::from_slice(&self.decoded_body()).expect("the body is a ReportUpload")
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An error answer with the API's JSON error body.
    pub fn error(status: u16, error: &str, message: &str) -> Reply {
        let body = serde_json::to_vec(&ApiError {
            error: error.into(),
            message: message.into(),
        })
        .expect("json");
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Default)]
struct Memory {
    requests: Vec<Request>,
    scripted: VecDeque<(String, Reply)>,
    hosts: HashMap<String, i64>,
    keys: HashSet<String>,
    reports: HashSet<String>,
    catalog: Option<(String, String)>,
    inventory_wanted_once: bool,
}

#[derive(Debug)]
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The stand-in collector. Stopped when dropped.
#[derive(Debug)]
pub struct TestCollector {
    address: SocketAddr,
    memory: Arc<Mutex<Memory>>,
    running: Option<Running>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl TestCollector {
    pub fn start() -> TestCollector {
        TestCollector::start_with(None)
    }

    /// An HTTPS collector for `127.0.0.1`; returns it and its CA certificate (PEM).
    pub fn start_tls() -> (TestCollector, String) {
        let (config, ca_pem) = tls_config();
        (TestCollector::start_with(Some(Arc::new(config))), ca_pem)
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> TestCollector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let mut collector = TestCollector {
            address,
            memory: Arc::default(),
            running: None,
            tls,
        };
        collector.serve(listener);
        collector
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Stops answering: connections are refused until [`TestCollector::restart`].
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.store(true, Ordering::SeqCst);
            // Wake the accept call.
            let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
            running.thread.join().expect("collector thread");
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).expect("bind the same port again");
        self.serve(listener);
    }

    /// The next request to `path` gets `reply` instead of the normal answer (queued in
    /// order; each reply is used once). The request still has its normal effect (a
    /// report is stored), as when a collector fails after storing.
    pub fn script(&self, path: &str, reply: Reply) {
        self.memory().scripted.push_back((path.to_string(), reply));
    }

    /// Serves `text` as the catalog with this ETag from now on; acknowledgements name it.
    pub fn set_catalog(&self, text: &str, etag: &str) {
        self.memory().catalog = Some((text.to_string(), etag.to_string()));
    }

    /// The next acknowledgement asks for the full inventory.
    pub fn want_inventory_once(&self) {
        self.memory().inventory_wanted_once = true;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.memory().requests.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|request| request.path == path)
            .collect()
    }

    /// The report uploads received, in order (scripted failures included).
    pub fn uploads(&self) -> Vec<ReportUpload> {
        self.requests_to(REPORTS_PATH)
            .iter()
            .map(Request::upload)
            .collect()
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().expect("collector memory")
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let memory = Arc::clone(&self.memory);
        let stopping = Arc::clone(&stop);
        let tls = self.tls.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else {
                    continue;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = match &tls {
                    Some(config) => rustls::ServerConnection::new(Arc::clone(config))
                        .map_err(std::io::Error::other)
                        .and_then(|connection| {
                            handle(rustls::StreamOwned::new(connection, stream), &memory)
                        }),
                    None => handle(stream, &memory),
                };
            }
        });
        self.running = Some(Running { stop, thread });
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a server certificate for `127.0.0.1` it issued, as PEM.
#[derive(Debug, Clone)]
pub struct ThrowawayPki {
    pub ca_pem: String,
    /// The server certificate followed by the CA's.
    pub chain_pem: String,
    pub key_pem: String,
    chain_der: Vec<Vec<u8>>,
    key_der: Vec<u8>,
}

impl ThrowawayPki {
    pub fn new() -> ThrowawayPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Sverka test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        ThrowawayPki {
            ca_pem: ca.pem(),
            chain_pem: format!("{}{}", server.pem(), ca.pem()),
            key_pem: server_key.serialize_pem(),
            chain_der: vec![server.der().to_vec(), ca.der().to_vec()],
            key_der: server_key.serialize_der(),
        }
    }
}

impl Default for ThrowawayPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A server certificate for `127.0.0.1` issued by a throwaway CA, and the CA as PEM.
fn tls_config() -> (rustls::ServerConfig, String) {
    let pki = ThrowawayPki::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            pki.chain_der
                .iter()
                .map(|der| rustls::pki_types::CertificateDer::from(der.clone()))
                .collect(),
            rustls::pki_types::PrivateKeyDer::try_from(pki.key_der.clone())
                .expect("server key DER"),
        )
        .expect("server TLS config");
    (config, pki.ca_pem)
}

fn handle(mut stream: impl Read + Write, memory: &Mutex<Memory>) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    if method.is_empty() {
        return Ok(());
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request = Request {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    };
    let reply = {
        let mut memory = memory.lock().expect("collector memory");
        memory.requests.push(request.clone());
        // The normal answer is always worked out, so a scripted failure behaves like a
        // collector that stored the report and then failed to say so.
        let normal = answer(&request, &mut memory);
        let scripted = memory
            .scripted
            .iter()
            .position(|(path, _)| path == &request.path)
            .and_then(|index| memory.scripted.remove(index))
            .map(|(_, reply)| reply);
        scripted.unwrap_or(normal)
    };
    drop(reader);
    let mut writer = stream;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.write_all(&reply.body)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn json_reply(value: &impl serde::Serialize) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(value).expect("json"),
    }
}

/// The normal answers of the agent API.
fn answer(request: &Request, memory: &mut Memory) -> Reply {
    let authorized = request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|key| memory.keys.contains(key));
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", ENROLL_PATH) => {
            let Ok(enroll) = serde_json::from_slice::<EnrollRequest>(&request.body) else {
                return Reply::error(400, "bad_request", "not an enrollment request");
            };
            if enroll.secret != TEST_SECRET {
                return Reply::error(403, "forbidden", "unknown enrollment secret");
            }
            let next_id = memory.hosts.len() as i64 + 1;
            let host_id = *memory.hosts.entry(enroll.machine_id).or_insert(next_id);
            let host_key = format!("{host_id}.key{}", memory.keys.len() + 1);
            memory.keys.insert(host_key.clone());
            json_reply(&EnrollResponse {
                host_id,
                host_key,
                organization_id: 1,
                organization_name: TEST_ORGANIZATION.into(),
            })
        }
        ("POST", REPORTS_PATH) => {
            if !authorized {
                return Reply::error(401, "unauthorized", "unknown host key");
            }
            let Ok(upload) = serde_json::from_slice::<ReportUpload>(&request.decoded_body()) else {
                return Reply::error(400, "bad_request", "not a report");
            };
            let duplicate = !memory.reports.insert(upload.report_id.clone());
            let inventory_wanted = std::mem::take(&mut memory.inventory_wanted_once);
            json_reply(&ReportAck {
                report_id: upload.report_id,
                duplicate,
                inventory_wanted,
                catalog_etag: memory
                    .catalog
                    .as_ref()
                    .map(|(_, etag)| etag.clone())
                    .unwrap_or_default(),
            })
        }
        ("GET", CATALOG_PATH) => {
            if !authorized {
                return Reply::error(401, "unauthorized", "unknown host key");
            }
            match &memory.catalog {
                None => Reply::error(404, "not_found", "no catalog"),
                Some((_, etag)) if request.header("if-none-match") == Some(etag.as_str()) => {
                    Reply {
                        status: 304,
                        headers: vec![("ETag".into(), etag.clone())],
                        body: Vec::new(),
                    }
                }
                Some((text, etag)) => Reply {
                    status: 200,
                    headers: vec![
                        ("Content-Type".into(), "application/toml".into()),
                        ("ETag".into(), etag.clone()),
                    ],
                    body: text.clone().into_bytes(),
                },
            }
        }
        _ => Reply::error(404, "not_found", &json!({"path": request.path}).to_string()),
    }
}

/// The JSON of an enroll request body (for assertions).
pub fn enroll_json(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("enroll body is JSON")
}
