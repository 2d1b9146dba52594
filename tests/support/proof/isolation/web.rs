//! A small browser-like HTTP client for the proof suite: keeps cookies, signs in with
//! the login form's CSRF token, creates a personal API token, and enrolls and reports
//! like an agent. Shared by the isolation and hostile-input parts.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::time::Duration;
use sverka_shared::protocol::ReportUpload;
use sverka_shared::report::{HostInfo, SCAN_SCHEMA};
use sverka_shared::{Inventory, Observation, Observed, ScanReport, Scope, Strength};

/// The password every suite user gets.
pub const PASSWORD: &str = "proof suite password 7f3c";

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub location: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client with its own cookies.
#[derive(Debug, Clone)]
pub struct Session {
    http: reqwest::blocking::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

pub fn http_client() -> reqwest::blocking::Client {
    install_crypto_provider();
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// reqwest is built without a TLS provider of its own (plain http is all the suite
/// speaks, but a client cannot be built without one).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The value of `name="csrf" value="..."` on a page.
pub fn csrf_of(page: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker)? + marker.len();
    page[start..].split('"').next().map(str::to_string)
}

impl Session {
    pub fn new(base: &str) -> Session {
        Session {
            http: http_client(),
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    /// A client whose connections come from another loopback address (127.0.0.x): the
    /// sign-in throttle counts failures per address.
    pub fn from_address(base: &str, address: std::net::IpAddr) -> Session {
        install_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .local_address(address)
            .build()
            .unwrap_or_else(|_| http_client());
        Session {
            http,
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Any request; `path` may carry a query and raw (already escaped) bytes.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("a method")?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().with_context(|| format!("request {path}"))?;
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (status, content_type, location) = (
            response.status().as_u16(),
            header("content-type"),
            header("location"),
        );
        let body = response
            .bytes()
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        Ok(Answer {
            status,
            content_type,
            location,
            body,
        })
    }

    pub fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        self.send("GET", path, &[], None)
    }

    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", form_escape(name), form_escape(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            "POST",
            path,
            &[(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            Some(body.into_bytes()),
        )
    }

    /// Signs in with the login form (its CSRF cookie and token).
    pub fn login(base: &str, login: &str) -> anyhow::Result<Session> {
        let mut session = Session::new(base);
        let page = session.get("/login")?.text();
        let csrf = csrf_of(&page).context("the login page has a CSRF token")?;
        let answer = session.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("login", login),
                ("password", PASSWORD),
            ],
        )?;
        if answer.status != 303 {
            bail!(
                "{login} could not sign in: {} {}",
                answer.status,
                answer.text()
            );
        }
        Ok(session)
    }

    /// The signed-in user's CSRF token (from a page that has forms).
    pub fn csrf(&mut self) -> anyhow::Result<String> {
        let page = self.get("/tokens")?.text();
        csrf_of(&page).context("the tokens page has a CSRF token")
    }

    /// Creates a personal API token named `name`; returns it.
    pub fn create_token(&mut self, name: &str) -> anyhow::Result<String> {
        let csrf = self.csrf()?;
        let page = self
            .post_form("/tokens", &[("csrf", &csrf), ("name", name)])?
            .text();
        let start = page.find("sverka_pat_").context("the new token is shown")?;
        Ok(page[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect())
    }
}

/// `application/x-www-form-urlencoded` escaping.
pub fn form_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// An enrolled host: its id and key.
#[derive(Debug, Clone)]
pub struct Host {
    pub id: i64,
    pub key: String,
    pub hostname: String,
}

/// Enrolls like an agent; `Err` with the status when refused.
pub fn enroll(
    http: &reqwest::blocking::Client,
    base: &str,
    secret: &str,
    machine_id: &str,
    hostname: &str,
) -> anyhow::Result<Host> {
    let body = serde_json::json!({
        "secret": secret, "machine_id": machine_id, "hostname": hostname,
        "os_id": "astra", "os_name": "Astra Linux 1.8", "agent_version": "proof"
    });
    let response = http
        .post(format!("{base}/api/v1/enroll"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .context("enroll")?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    if !status.is_success() {
        bail!("enrollment of {hostname:?} refused: {status} {text}");
    }
    let value: serde_json::Value = serde_json::from_str(&text).context("an enrollment")?;
    Ok(Host {
        id: value["host_id"].as_i64().context("host_id")?,
        key: value["host_key"].as_str().context("host_key")?.to_string(),
        hostname: hostname.to_string(),
    })
}

/// A dpkg package observation.
pub fn package(name: &str, version: &str, path: &str, user: Option<&str>) -> Observation {
    Observation {
        observed: Observed::Package {
            manager: sverka_shared::observation::PackageManager::Dpkg,
            name: name.to_string(),
            version: version.to_string(),
            vendor: None,
        },
        path: Some(path.to_string()),
        user: user.map(str::to_string),
        scope: match user {
            Some(_) => Scope::User,
            None => Scope::Machine,
        },
        strength: Strength::Installed,
    }
}

/// A report body with a fresh id, the full inventory and `evidence`.
pub fn report_body(
    hostname: &str,
    agent_version: &str,
    inventory: &[Observation],
    evidence: Vec<Observation>,
) -> Vec<u8> {
    let inventory = Inventory::from_observations(inventory);
    let upload = ReportUpload {
        report_id: uuid_v4_like(),
        scan: ScanReport {
            schema: SCAN_SCHEMA,
            host: HostInfo {
                hostname: hostname.to_string(),
                os_id: "astra".into(),
                os_name: "Astra Linux 1.8".into(),
                os_version: "1.8".into(),
                machine_id: None,
                scanned_root: None,
                agent_version: agent_version.to_string(),
            },
            catalog_version: "proof".into(),
            scanned_at: String::new(),
            duration_ms: 10,
            findings: vec![],
            errors: vec![],
            skipped: vec![],
        },
        inventory_digest: inventory.digest.clone(),
        inventory: Some(inventory.observations),
        evidence,
    };
    serde_json::to_vec(&upload).unwrap_or_default()
}

/// A random version-4 UUID (report ids only need to be unique).
pub fn uuid_v4_like() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// Sends a report with `key`; the answer's status and body.
pub fn send_report(
    http: &reqwest::blocking::Client,
    base: &str,
    key: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let response = http
        .post(format!("{base}/api/v1/reports"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .context("send a report")?;
    let status = response.status().as_u16();
    Ok((status, response.text().unwrap_or_default()))
}

/// Writes the suite's password to a file for `user add --password-file`.
pub fn password_file() -> anyhow::Result<tempfile::NamedTempFile> {
    let file = tempfile::NamedTempFile::new().context("a password file")?;
    std::fs::write(file.path(), format!("{PASSWORD}\n")).context("write the password")?;
    Ok(file)
}

/// Adds a user with the CLI; `organization` for officers and school admins.
pub fn add_user(
    collector: &crate::real_collector::Collector,
    password: &tempfile::NamedTempFile,
    login: &str,
    role: &str,
    organization: Option<i64>,
) -> anyhow::Result<()> {
    let password = password.path().display().to_string();
    let organization = organization.map(|id| id.to_string());
    let mut args = vec![
        "user",
        "add",
        "--login",
        login,
        "--role",
        role,
        "--password-file",
        &password,
    ];
    if let Some(organization) = &organization {
        args.extend(["--org", organization]);
    }
    let run = collector.cli(&args);
    if run.code != 0 {
        bail!("user add {login}: {}", run.stderr);
    }
    Ok(())
}
