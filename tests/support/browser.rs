//! A real browser for the dashboard's tests: Debian's headless Chromium driven over
//! WebDriver (W3C) by Debian's `chromedriver`, both started per `Browser` and stopped
//! when it is dropped. Each browser gets a fresh profile and its own download folder.
//!
//! The test command installs `chromium` and `chromium-driver`; when either is missing
//! `Browser::start` fails loudly instead of skipping.

use base64::Engine;
use serde_json::{Value, json};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long `find` and `wait_for` keep trying.
const WAIT: Duration = Duration::from_secs(10);

/// Where tests save screenshots and other artifacts: `target/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("test-artifacts");
    fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// A headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    _profile: TempDir,
    downloads: TempDir,
}

/// An element found on the current page.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: the dashboard tests need Debian's chromium and \
                 chromium-driver (scripts/test.sh installs them)"
            );
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|response| response.bytes().ok())
                .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
                .is_some_and(|status| status["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready on port {port}"
            );
            sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = tempfile::tempdir().expect("download dir");
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                // A dialog a page opens stays open for `alert_text` to see.
                "unhandledPromptBehavior": "ignore",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1400,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                    "prefs": {
                        "download.default_directory": downloads.path(),
                        "download.prompt_for_download": false,
                        "intl.accept_languages": "ru-RU,ru",
                    },
                },
            }},
        });
        let answer: Value = http
            .post(format!("{base}/session"))
            .header("content-type", "application/json")
            .body(capabilities.to_string())
            .send()
            .and_then(|response| response.bytes())
            .map(|body| serde_json::from_slice(&body).unwrap_or(Value::Null))
            .expect("create a WebDriver session");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session from chromedriver: {answer}"))
            .to_owned();
        let browser = Browser {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            _profile: profile,
            downloads,
        };
        // Headless Chromium saves downloads only where DevTools allows it.
        let download_path = browser.downloads.path().to_string_lossy().into_owned();
        browser.command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Browser.setDownloadBehavior",
                "params": { "behavior": "allow", "downloadPath": download_path },
            })),
        );
        browser
    }

    /// One WebDriver command; panics with the driver's message when it fails.
    fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method.clone(), path, body) {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {method} {path}: {error}"),
        }
    }

    /// One WebDriver command; `Err` holds the driver's error name and message.
    fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().map_err(|error| error.to_string())?;
        let ok = response.status().is_success();
        let body = response.bytes().map_err(|error| error.to_string())?;
        let answer: Value = serde_json::from_slice(&body).map_err(|error| error.to_string())?;
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                answer["value"]["error"].as_str().unwrap_or("error"),
                answer["value"]["message"].as_str().unwrap_or_default()
            ))
        }
    }

    /// Opens `url` and waits until the page has loaded (or a dialog it opened is
    /// showing: see `alert_text`).
    pub fn goto(&self, url: &str) {
        if let Err(error) =
            self.try_command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            && !error.starts_with("unexpected alert open")
        {
            panic!("WebDriver open {url}: {error}");
        }
    }

    pub fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.command(reqwest::Method::GET, "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's current HTML, as the browser holds it.
    pub fn page_source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching a CSS selector (none is not an error).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.command(
            reqwest::Method::POST,
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|element| element[ELEMENT_KEY].as_str())
                    .map(|id| Element { id: id.to_owned() })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching a CSS selector, waiting up to 10 s for it to appear.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css, WAIT)
            .unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.current_url()))
    }

    /// The first element matching a CSS selector within `wait`, if any.
    pub fn try_find(&self, css: &str, wait: Duration) -> Option<Element> {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find_all(css).into_iter().next() {
                return Some(element);
            }
            if started.elapsed() >= wait {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.element_text(&element)
    }

    pub fn element_text(&self, element: &Element) -> String {
        self.command(
            reqwest::Method::GET,
            &format!("/element/{}/text", element.id),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// An attribute of an element (`None` when it has none).
    pub fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.command(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", element.id),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.click_element(&element);
    }

    pub fn click_element(&self, element: &Element) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.id),
            Some(json!({})),
        );
    }

    /// Replaces the value of the input matching `css` with `value`.
    pub fn fill(&self, css: &str, value: &str) {
        let element = self.find(css);
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.id),
            Some(json!({})),
        );
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.id),
            Some(json!({ "text": value })),
        );
    }

    /// Runs a script in the page and returns its result.
    pub fn execute(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The text of an open `alert`/`confirm`/`prompt` dialog, if one is open: a script
    /// injected into a page shows up here.
    pub fn alert_text(&self) -> Option<String> {
        self.try_command(reqwest::Method::GET, "/alert/text", None)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
    }

    /// The value of a cookie of the current page's site.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.try_command(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .ok()
            .and_then(|cookie| cookie["value"].as_str().map(str::to_owned))
    }

    /// Every cookie of the current page's site, as WebDriver describes them
    /// (`name`, `value`, `httpOnly`, `secure`, `sameSite`, ...).
    pub fn cookies(&self) -> Vec<Value> {
        self.command(reqwest::Method::GET, "/cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn delete_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None);
    }

    /// Saves a PNG screenshot of the page as `target/test-artifacts/<name>.png` and
    /// returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = artifacts_dir().join(format!("{name}.png"));
        fs::write(&path, png).expect("save the screenshot");
        path
    }

    /// The folder the browser downloads into.
    pub fn download_dir(&self) -> &Path {
        self.downloads.path()
    }

    /// Waits until a completed download whose file name ends with `suffix` appears and
    /// returns its path.
    pub fn wait_for_download(&self, suffix: &str) -> PathBuf {
        let started = Instant::now();
        loop {
            let paths: Vec<PathBuf> = fs::read_dir(self.downloads.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .collect();
            // Chromium reserves the final name with an empty file while it still
            // writes into a `.crdownload` one: done once that is gone.
            let writing = paths
                .iter()
                .any(|path| path.to_string_lossy().ends_with(".crdownload"));
            let done = paths.into_iter().find(|path| {
                let name = path.to_string_lossy();
                name.ends_with(suffix) && !name.ends_with(".crdownload")
            });
            if let (Some(path), false) = (done, writing) {
                return path;
            }
            assert!(
                started.elapsed() < WAIT,
                "no download ending in {suffix:?} within {WAIT:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `condition` (a JavaScript expression) is true on the page.
    pub fn wait_for(&self, condition: &str) {
        let started = Instant::now();
        while self.execute(&format!("return Boolean({condition});")) != json!(true) {
            assert!(
                started.elapsed() < WAIT,
                "{condition} did not become true within {WAIT:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

/// The pinned axe-core release the accessibility test injects; `scripts/test.sh`
/// installs it from the npm registry.
pub const AXE_CORE_VERSION: &str = "4.10.3";

/// Where `scripts/test.sh` installs axe-core: `$SVERKA_AXE_CORE` when set, else
/// `~/.cache/sverka/axe-core-<version>/node_modules/axe-core/axe.min.js`.
pub fn axe_core_script() -> PathBuf {
    if let Some(path) = std::env::var_os("SVERKA_AXE_CORE") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache")
        .join("sverka")
        .join(format!("axe-core-{AXE_CORE_VERSION}"))
        .join("node_modules")
        .join("axe-core")
        .join("axe.min.js")
}

/// One accessibility rule an axe-core run found broken on a page.
#[derive(Debug, Clone)]
pub struct AxeViolation {
    pub rule: String,
    pub impact: String,
    pub help: String,
    /// CSS selectors of (up to five of) the elements that break it.
    pub targets: Vec<String>,
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} at {}",
            self.rule,
            self.impact,
            self.help,
            self.targets.join(", ")
        )
    }
}

impl Browser {
    /// Injects axe-core (read from `script`, the file `axe_core_script` names) into
    /// the current page through WebDriver and runs it on the whole document: every
    /// rule axe-core checks by default (WCAG 2.x A and AA and best practices), with
    /// each violation's impact. WebDriver's scripts are not subject to the page's
    /// Content-Security-Policy, so the page itself needs no change.
    pub fn axe_violations(&self, script: &str) -> Vec<AxeViolation> {
        self.execute(script);
        let found = self.execute(
            "return axe.run(document, { resultTypes: ['violations'] }).then(r => \
             r.violations.map(v => ({ rule: v.id, impact: v.impact || '', help: v.help, \
             targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')) })));",
        );
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core gave no result list: {found}"))
            .iter()
            .map(|violation| AxeViolation {
                rule: violation["rule"].as_str().unwrap_or_default().to_owned(),
                impact: violation["impact"].as_str().unwrap_or_default().to_owned(),
                help: violation["help"].as_str().unwrap_or_default().to_owned(),
                targets: violation["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|target| target.as_str().map(str::to_owned))
                    .collect(),
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.session).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
