//! `collector.toml`, with environment overrides (`SVERKA_COLLECTOR_LISTEN`,
//! `SVERKA_COLLECTOR_DATABASE`, `SVERKA_COLLECTOR_DATA_DIR`) and command-line flags over
//! both.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::api::RateLimit;
use crate::api::enrollment::EnrollmentConfig;
use crate::api::limits::RequestLimits;
use crate::connections::ConnectionLimits;
use crate::tls::TlsConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8440";
pub const DATABASE_FILE: &str = "sverka.db";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// `sqlite:PATH` (or a plain path) or `postgres://USER@HOST:PORT/DATABASE`. Defaults to `sverka.db` in `data_dir`.
    pub database: Option<String>,
    /// Where the embedded database lives.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL connections each collector process keeps at most (SQLite: unused).
    /// N collectors need N times this within the server's `max_connections`.
    pub database_connections: u32,
    /// A PC that has not reported for this many days is silent.
    pub silent_after_days: u32,
    /// How often a running collector looks for a catalog changed by another process.
    pub catalog_poll_seconds: u64,
    /// How long report ids are kept (the window in which a resent report is known as
    /// a duplicate, and the check-in history). Agents give up resending long before.
    pub report_retention_days: u32,
    pub limits: RequestLimits,
    pub rate_limit: RateLimit,
    pub enrollment: EnrollmentConfig,
    pub connections: ConnectionLimits,
    pub dashboard: DashboardConfig,
    /// Serve HTTPS with these certificate files (absent: plain HTTP, for a reverse
    /// proxy in front or a private network).
    pub tls: Option<TlsConfig>,
    /// The SMTP server the weekly report is sent through (absent: no mail).
    pub mail: crate::mail::MailConfig,
    /// The daily digest and the webhooks (`[notifications]`); the digest goes through
    /// `[mail]`.
    pub notifications: crate::notify::NotificationsConfig,
    /// Pushing figures to an upstream collector (`[upstream]`; the upstream itself is
    /// set with `sverka-collector upstream set`).
    pub upstream: crate::upstream::UpstreamConfig,
}

/// The web dashboard for people (`[dashboard]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// Time zone of dates on pages and in exports (IANA name).
    pub time_zone: String,
    /// The day a reporting week ends on (the orders ask for figures every Thursday).
    pub week_ends_on: String,
    /// Mark cookies `Secure` (HTTPS only). Default: on, unless the collector listens
    /// on a loopback address (plain http on 127.0.0.1 for tests and local use). Set
    /// it to `true` behind a TLS-terminating proxy.
    pub secure_cookies: Option<bool>,
    /// The URL agents use to reach the collector, for the install commands on the
    /// enrollment page (default: the address the browser used).
    pub public_url: Option<String>,
    /// How long a login lasts.
    pub session_hours: u32,
    /// A folder with the agent's installers (`sverka-agent*.msi`, `.deb`, `.rpm`) that
    /// the enrollment page offers for download (none: no downloads).
    pub installers: Option<PathBuf>,
}

impl Default for DashboardConfig {
    fn default() -> DashboardConfig {
        DashboardConfig {
            time_zone: "Europe/Moscow".into(),
            week_ends_on: "thursday".into(),
            secure_cookies: None,
            public_url: None,
            session_hours: 12,
            installers: None,
        }
    }
}

impl DashboardConfig {
    /// The collector's clock: its time zone and the day its reporting weeks end on.
    pub fn clock(&self) -> Result<crate::web::clock::Clock, crate::web::clock::ClockError> {
        crate::web::clock::Clock::new(&self.time_zone, &self.week_ends_on)
    }

    /// Whether cookies get `Secure` when listening on `listen`.
    pub fn secure_cookies_for(&self, listen: &str) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            let host = listen
                .rsplit_once(':')
                .map_or(listen, |(host, _)| host)
                .trim_matches(['[', ']']);
            !(host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|address| address.is_loopback()))
        })
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: DEFAULT_LISTEN.into(),
            database: None,
            data_dir: None,
            database_connections: crate::store::sql::DEFAULT_POSTGRES_POOL_SIZE,
            silent_after_days: 7,
            catalog_poll_seconds: 1,
            report_retention_days: 90,
            limits: RequestLimits::default(),
            rate_limit: RateLimit::default(),
            enrollment: EnrollmentConfig::default(),
            connections: ConnectionLimits::default(),
            dashboard: DashboardConfig::default(),
            tls: None,
            mail: crate::mail::MailConfig::default(),
            notifications: crate::notify::NotificationsConfig::default(),
            upstream: crate::upstream::UpstreamConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Reads the file (when given), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|error| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: error.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_environment(|name| std::env::var(name).ok());
        Ok(config)
    }

    pub fn apply_environment(&mut self, variable: impl Fn(&str) -> Option<String>) {
        if let Some(listen) = variable("SVERKA_COLLECTOR_LISTEN") {
            self.listen = listen;
        }
        if let Some(database) = variable("SVERKA_COLLECTOR_DATABASE") {
            self.database = Some(database);
        }
        if let Some(data_dir) = variable("SVERKA_COLLECTOR_DATA_DIR") {
            self.data_dir = Some(PathBuf::from(data_dir));
        }
    }

    /// The database URL, defaulting to a file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.clone(),
            None => {
                let folder = self.data_dir.clone().unwrap_or_else(default_data_dir);
                format!("sqlite://{}", folder.join(DATABASE_FILE).display())
            }
        }
    }
}

/// `/var/lib/sverka-collector` for root, otherwise the user's data folder.
pub fn default_data_dir() -> PathBuf {
    #[cfg(unix)]
    if std::env::var("USER").as_deref() == Ok("root")
        || std::env::var("HOME").as_deref() == Ok("/root")
    {
        return PathBuf::from("/var/lib/sverka-collector");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(data).join("sverka-collector");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/sverka-collector");
    }
    PathBuf::from("sverka-collector-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut config: Config = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nsilent_after_days = 3\n[limits]\nmax_findings = 10\n",
        )
        .expect("config");
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.limits.max_findings, 10);
        assert_eq!(config.silent_after_days, 3);
        config.apply_environment(|name| {
            (name == "SVERKA_COLLECTOR_DATA_DIR").then(|| "/srv/sverka".to_string())
        });
        assert_eq!(config.database_url(), "sqlite:///srv/sverka/sverka.db");
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
        let config: Config =
            toml::from_str("[tls]\ncert_file = \"/etc/c.pem\"\nkey_file = \"/etc/k.pem\"\n")
                .expect("tls config");
        assert_eq!(
            config.tls.map(|tls| tls.key_file),
            Some(PathBuf::from("/etc/k.pem"))
        );
        assert!(toml::from_str::<Config>("[tls]\ncert_file = \"/etc/c.pem\"\n").is_err());
    }

    #[test]
    fn cookies_are_secure_unless_on_loopback() {
        let dashboard = DashboardConfig::default();
        assert!(!dashboard.secure_cookies_for("127.0.0.1:8440"));
        assert!(!dashboard.secure_cookies_for("[::1]:8440"));
        assert!(!dashboard.secure_cookies_for("localhost:8440"));
        assert!(dashboard.secure_cookies_for("0.0.0.0:8440"));
        assert!(dashboard.secure_cookies_for("10.1.2.3:443"));
        let forced = DashboardConfig {
            secure_cookies: Some(true),
            ..DashboardConfig::default()
        };
        assert!(forced.secure_cookies_for("127.0.0.1:8440"));
    }
}
