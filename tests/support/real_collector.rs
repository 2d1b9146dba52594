//! A real `sverka-collector` process on 127.0.0.1 with its own SQLite file (or on a
//! PostgreSQL database several of them share), for end-to-end tests: started, killed
//! with SIGKILL, restarted on the same port.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tempfile::TempDir;

use crate::{Run, ThrowawayPki, build_binary, run_command};

pub fn collector_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary("sverka-collector", "sverka-collector"))
}

#[derive(Debug)]
pub struct Collector {
    folder: TempDir,
    port: u16,
    child: Option<Child>,
    /// A `postgres://` URL; `None` for the collector's own SQLite file.
    postgres: Option<String>,
    /// `collector.toml` with `[tls]`, when it serves HTTPS itself.
    tls_config: Option<PathBuf>,
    /// `collector.toml` with other settings.
    plain_config: Option<PathBuf>,
}

impl Collector {
    /// Starts `serve` on a free port with a new database.
    pub fn start() -> Collector {
        Collector::start_with(None)
    }

    /// Starts `serve` on a free port on a PostgreSQL database (other collectors may
    /// share it).
    pub fn start_on_postgres(url: &str) -> Collector {
        Collector::start_with(Some(url.to_string()))
    }

    fn start_with(postgres: Option<String>) -> Collector {
        let folder = tempfile::tempdir().expect("tempdir");
        let mut collector = Collector {
            folder,
            port: 0,
            child: None,
            postgres,
            tls_config: None,
            plain_config: None,
        };
        collector.serve("127.0.0.1:0");
        collector
    }

    /// Starts `serve` on a free port with a new database and this `collector.toml`.
    pub fn start_with_config(toml: &str) -> Collector {
        Collector::start_configured(toml, None)
    }

    /// Starts `serve` on a free port with this `collector.toml`, on a PostgreSQL
    /// database (other collectors may share it) or, with `None`, a new SQLite file.
    pub fn start_configured(toml: &str, postgres: Option<&str>) -> Collector {
        let folder = tempfile::tempdir().expect("tempdir");
        let config = folder.path().join("collector.toml");
        std::fs::write(&config, toml).expect("write the config");
        let mut collector = Collector {
            folder,
            port: 0,
            child: None,
            postgres: postgres.map(str::to_string),
            tls_config: None,
            plain_config: Some(config),
        };
        collector.serve("127.0.0.1:0");
        collector
    }

    /// Starts `serve` with native TLS (`[tls]` in its config file): a certificate for
    /// 127.0.0.1 from a throwaway CA, returned with it.
    pub fn start_tls() -> (Collector, ThrowawayPki) {
        let folder = tempfile::tempdir().expect("tempdir");
        let pki = ThrowawayPki::new();
        let cert_file = folder.path().join("collector.crt");
        let key_file = folder.path().join("collector.key");
        std::fs::write(&cert_file, &pki.chain_pem).expect("write the certificate");
        std::fs::write(&key_file, &pki.key_pem).expect("write the key");
        let config = folder.path().join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                cert_file.display(),
                key_file.display()
            ),
        )
        .expect("write the config");
        let mut collector = Collector {
            folder,
            port: 0,
            child: None,
            postgres: None,
            tls_config: Some(config),
            plain_config: None,
        };
        collector.serve("127.0.0.1:0");
        (collector, pki)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_config.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn database(&self) -> PathBuf {
        self.folder.path().join("sverka.db")
    }

    fn database_url(&self) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.database().display()),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("serve.log")).unwrap_or_default()
    }

    fn serve(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.folder.path().join("serve.log"))
            .expect("log file");
        let mut command = Command::new(collector_binary());
        if let Some(config) = self.tls_config.as_ref().or(self.plain_config.as_ref()) {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args([
                "--database",
                &self.database_url(),
                "serve",
                "--listen",
                listen,
            ])
            .env("SVERKA_COLLECTOR_DATA_DIR", self.folder.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the collector");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_default();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the collector did not start: {line:?}\n{}", self.log())
            });
        self.port = port;
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flushing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and database.
    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port);
        self.serve(&listen);
    }

    /// Runs a CLI command on the same database (and with the same configuration file,
    /// unless `args` give another).
    pub fn cli(&self, args: &[&str]) -> Run {
        let mut command = Command::new(collector_binary());
        command.args(["--database", &self.database_url()]);
        if let Some(config) = &self.plain_config
            && !args.contains(&"--config")
        {
            command.arg("--config").arg(config);
        }
        command.args(args);
        run_command(command)
    }

    /// A CLI command that must succeed; its stdout, trimmed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let run = self.cli(args);
        assert_eq!(run.code, 0, "sverka-collector {args:?}: {}", run.stderr);
        run.stdout.trim().to_string()
    }

    pub fn add_org(&self, name: &str, kind: &str, parent: Option<i64>) -> i64 {
        let mut args = vec!["org", "add", "--name", name, "--kind", kind];
        let parent = parent.map(|parent| parent.to_string());
        if let Some(parent) = &parent {
            args.extend(["--parent", parent]);
        }
        self.cli_ok(&args).parse().expect("an id")
    }

    /// Adds a dashboard user through the CLI (`user add`), its password given in a
    /// file as an administrator would; `organization` for the roles that need one.
    pub fn add_user(&self, login: &str, role: &str, password: &str, organization: Option<i64>) {
        let file = tempfile::NamedTempFile::new().expect("password file");
        std::fs::write(file.path(), format!("{password}\n")).expect("write the password");
        let path = file.path().display().to_string();
        let organization = organization.map(|id| id.to_string());
        let mut args = vec!["user", "add", "--login", login, "--role", role];
        if let Some(id) = &organization {
            args.extend(["--org", id.as_str()]);
        }
        args.extend(["--password-file", path.as_str()]);
        self.cli_ok(&args);
    }

    pub fn secret(&self, organization: i64) -> String {
        self.cli_ok(&["secret", "create", "--org", &organization.to_string()])
    }

    pub fn violations(&self, organization: i64, include_resolved: bool) -> Value {
        let organization = organization.to_string();
        let mut args = vec![
            "report",
            "violations",
            "--org",
            &organization,
            "--format",
            "json",
        ];
        if include_resolved {
            args.push("--include-resolved");
        }
        serde_json::from_str(&self.cli_ok(&args)).expect("violations JSON")
    }

    /// Reports stored per host name, read from the database itself.
    pub fn stored_reports(&self) -> Vec<(String, i64)> {
        if let Some(url) = &self.postgres {
            return postgres_stored_reports(url);
        }
        let connection = rusqlite::Connection::open(self.database()).expect("open the database");
        let mut statement = connection.prepare(STORED_REPORTS).expect("query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("counts")
    }
}

const STORED_REPORTS: &str = "SELECT h.hostname, COUNT(r.report_id) FROM hosts h
    LEFT JOIN reports r ON r.host_id = h.id GROUP BY h.id ORDER BY h.hostname";

fn postgres_stored_reports(url: &str) -> Vec<(String, i64)> {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options =
            sverka_collector::store::dialect::postgres::connect_options(url).expect("url");
        let mut connection = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect to PostgreSQL");
        let rows: Vec<(String, i64)> = sqlx::query_as(STORED_REPORTS)
            .fetch_all(&mut connection)
            .await
            .expect("stored reports");
        let _ = connection.close().await;
        rows
    })
}

/// A PostgreSQL database of its own for a test, dropped with it; PostgreSQL being
/// unreachable fails the test with the reason.
pub fn scratch_postgres() -> sverka_collector::store::scratch::ScratchDatabase {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(sverka_collector::store::scratch::ScratchDatabase::create())
        .unwrap_or_else(|error| panic!("{error}"))
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The load generator, built beside the collector (it starts the collector found next
/// to itself).
pub fn loadgen_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        collector_binary();
        build_binary("sverka-loadgen", "sverka-loadgen")
    })
}
