//! The installed service's settings (`sverka-agent service`), from three places, each
//! over the one before:
//!
//! 1. `agent.toml` (`/etc/sverka/agent.toml`, `%ProgramData%\Sverka\agent.toml`;
//!    `--config FILE`); a missing default file is no error, unknown keys are;
//! 2. on Windows, the values the MSI writes from its properties under
//!    `HKLM\SOFTWARE\Sverka\Agent` (`ServerUrl`, `EnrollSecret`, `CaFile`, `AllowHttp`);
//! 3. the environment (`SVERKA_SERVER_URL`, `SVERKA_ENROLL_SECRET`, `SVERKA_CA_FILE`,
//!    `SVERKA_ALLOW_HTTP`): on Linux the unit reads them from `/etc/sverka/agent.env`.
//!
//! The enrollment secret is only needed until the PC is enrolled.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret file is one line.
const MAX_SECRET_BYTES: u64 = 4096;
/// A settings file is small.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: `{key}`: {message}")]
    Value {
        path: String,
        key: String,
        message: String,
    },
}

/// How often the service looks at running processes between scans by default.
pub const DEFAULT_PROCESS_CHECK: Duration = Duration::from_secs(15 * 60);

/// `agent.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfigFile {
    /// The collector's base URL.
    pub server_url: Option<String>,
    /// The school's enrollment secret (needed until the PC is enrolled).
    pub enroll_secret: Option<Secret>,
    /// A file holding the enrollment secret, instead of `enroll_secret`.
    pub enroll_secret_file: Option<PathBuf>,
    /// The CA (PEM) the collector's certificate must chain to; pinned when given.
    pub ca_file: Option<PathBuf>,
    /// Allow a plain `http://` collector.
    pub allow_http: Option<bool>,
    pub state_dir: Option<PathBuf>,
    /// Time between scans, e.g. `1h`, `90m`.
    pub interval: Option<String>,
    /// The longest random wait before the first scan, e.g. `300s`.
    pub max_delay: Option<String>,
    /// Time between the cheap checks of running processes between scans, e.g. `15m`;
    /// `0` turns them off.
    pub process_check_interval: Option<String>,
}

/// The enrollment secret, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where each setting came from does not matter once they are read: this is what the
/// service runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    pub server_url: Option<String>,
    pub enroll_secret: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub allow_http: bool,
    pub state_dir: PathBuf,
    pub interval: Duration,
    pub max_delay: Duration,
    /// Time between the checks of running processes between scans; zero for none.
    pub process_check_interval: Duration,
    /// The file the settings were read from (for messages), if there was one.
    pub source: String,
}

/// Settings that come from outside the file (the registry, the environment); empty
/// values count as absent, as an MSI property left empty writes an empty value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub server_url: Option<String>,
    pub enroll_secret: Option<String>,
    pub ca_file: Option<String>,
    pub allow_http: Option<String>,
}

impl Overrides {
    /// `SVERKA_SERVER_URL`, `SVERKA_ENROLL_SECRET`, `SVERKA_CA_FILE`, `SVERKA_ALLOW_HTTP`.
    pub fn from_environment(variable: impl Fn(&str) -> Option<String>) -> Overrides {
        Overrides {
            server_url: variable("SVERKA_SERVER_URL"),
            enroll_secret: variable("SVERKA_ENROLL_SECRET"),
            ca_file: variable("SVERKA_CA_FILE"),
            allow_http: variable("SVERKA_ALLOW_HTTP"),
        }
    }
}

/// `/etc/sverka/agent.toml` on Unix, `%ProgramData%\Sverka\agent.toml` on Windows.
pub fn default_config_path() -> PathBuf {
    if cfg!(windows) {
        crate::service::platform::default_state_dir().join("agent.toml")
    } else {
        PathBuf::from("/etc/sverka/agent.toml")
    }
}

impl ServiceSettings {
    /// Reads `config` (or the default file, which may be missing), then the registry
    /// (Windows) and the environment over it.
    pub fn load(config: Option<&Path>) -> Result<ServiceSettings, ConfigError> {
        let path = config
            .map(Path::to_path_buf)
            .unwrap_or_else(default_config_path);
        let file = read_config_file(&path, config.is_some())?;
        let environment = Overrides::from_environment(|name| std::env::var(name).ok());
        #[cfg(windows)]
        let layers = [crate::service::platform::registry_settings(), environment];
        #[cfg(not(windows))]
        let layers = [environment];
        ServiceSettings::resolve(file, &layers, &path.display().to_string())
    }

    /// The file's settings with each override applied in turn.
    pub fn resolve(
        file: AgentConfigFile,
        overrides: &[Overrides],
        source: &str,
    ) -> Result<ServiceSettings, ConfigError> {
        let value_error = |key: &str, message: String| ConfigError::Value {
            path: source.to_string(),
            key: key.to_string(),
            message,
        };
        let duration = |key: &str, text: &Option<String>, default: Duration| match text {
            Some(text) => parse_duration(text).map_err(|message| value_error(key, message)),
            None => Ok(default),
        };
        let interval = duration("interval", &file.interval, Duration::from_secs(3600))?;
        if interval.is_zero() {
            return Err(value_error("interval", "must be longer than 0".into()));
        }
        let mut settings = ServiceSettings {
            server_url: non_empty(file.server_url),
            enroll_secret: file
                .enroll_secret
                .filter(|secret| !secret.0.trim().is_empty()),
            ca_file: file.ca_file,
            allow_http: file.allow_http.unwrap_or(false),
            state_dir: file
                .state_dir
                .unwrap_or_else(crate::service::platform::default_state_dir),
            interval,
            max_delay: duration("max_delay", &file.max_delay, Duration::from_secs(300))?,
            process_check_interval: duration(
                "process_check_interval",
                &file.process_check_interval,
                DEFAULT_PROCESS_CHECK,
            )?,
            source: source.to_string(),
        };
        if settings.enroll_secret.is_none()
            && let Some(secret_file) = &file.enroll_secret_file
        {
            settings.enroll_secret = Some(
                read_secret_file(secret_file)
                    .map_err(|message| value_error("enroll_secret_file", message))?,
            );
        }
        for layer in overrides {
            if let Some(url) = non_empty(layer.server_url.clone()) {
                settings.server_url = Some(url);
            }
            if let Some(secret) = non_empty(layer.enroll_secret.clone()) {
                settings.enroll_secret = Some(Secret(secret));
            }
            if let Some(ca_file) = non_empty(layer.ca_file.clone()) {
                settings.ca_file = Some(PathBuf::from(ca_file));
            }
            if let Some(allow) = non_empty(layer.allow_http.clone()) {
                settings.allow_http = parse_flag(&allow)
                    .ok_or_else(|| value_error("allow_http", format!("`{allow}` is not 1/0")))?;
            }
        }
        Ok(settings)
    }
}

fn read_config_file(path: &Path, required: bool) -> Result<AgentConfigFile, ConfigError> {
    let text = match crate::scan::fsread::read_text_lossy(path, MAX_CONFIG_BYTES) {
        Ok(text) => text.text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(AgentConfigFile::default());
        }
        Err(error) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                message: error.to_string(),
            });
        }
    };
    parse_config(&text, &path.display().to_string())
}

/// Parses `agent.toml`; errors name the line and the key.
pub fn parse_config(text: &str, path: &str) -> Result<AgentConfigFile, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let line = error.span().map(|span| {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            before.iter().filter(|&&byte| byte == b'\n').count() + 1
        });
        let message = error.message().trim().to_string();
        ConfigError::Parse {
            path: match line {
                Some(line) => format!("{path}:{line}"),
                None => path.to_string(),
            },
            message,
        }
    })
}

fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let (bytes, truncated) = crate::scan::fsread::read_bounded(path, MAX_SECRET_BYTES)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if truncated {
        return Err(format!("{} is too large for a secret", path.display()));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not text", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret(secret.to_string()))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// `1`, `true`, `yes` or `0`, `false`, `no` (an MSI property or an environment variable).
fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// `90`, `90s`, `1.5m`, `1h`, `250ms`: a number of seconds, or one with a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90, 90s, 5m, 1h, 250ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("90", Some(90.0)),
            ("90s", Some(90.0)),
            ("1.5m", Some(90.0)),
            ("1h", Some(3600.0)),
            ("250ms", Some(0.25)),
            ("0", Some(0.0)),
            ("", None),
            ("h", None),
            ("5 days", None),
            ("-1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_duration(text)
                    .ok()
                    .map(|duration| duration.as_secs_f64()),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_file_then_the_registry_then_the_environment() {
        let file = parse_config(
            "server_url = \"https://file.example\"\nenroll_secret = \"from-file\"\ninterval = \"90m\"\nstate_dir = \"/srv/sverka\"\n",
            "agent.toml",
        )
        .unwrap();
        let registry = Overrides {
            server_url: Some("https://registry.example".into()),
            enroll_secret: Some(String::new()),
            ca_file: Some("C:\\ca.pem".into()),
            allow_http: Some("0".into()),
        };
        let environment = Overrides {
            allow_http: Some("1".into()),
            ..Overrides::default()
        };
        let settings =
            ServiceSettings::resolve(file, &[registry, environment], "agent.toml").unwrap();
        assert_eq!(
            settings.server_url.as_deref(),
            Some("https://registry.example")
        );
        // An empty MSI property does not erase the file's secret.
        assert_eq!(settings.enroll_secret, Some(Secret("from-file".into())));
        assert_eq!(settings.ca_file, Some(PathBuf::from("C:\\ca.pem")));
        assert!(settings.allow_http);
        assert_eq!(settings.interval, Duration::from_secs(5400));
        assert_eq!(settings.max_delay, Duration::from_secs(300));
        assert_eq!(settings.process_check_interval, DEFAULT_PROCESS_CHECK);
        assert_eq!(settings.state_dir, PathBuf::from("/srv/sverka"));
        assert!(!format!("{settings:?}").contains("from-file"));
    }

    #[test]
    fn the_secret_can_live_in_its_own_file() {
        let folder = tempfile::tempdir().unwrap();
        let secret_file = folder.path().join("secret");
        std::fs::write(&secret_file, "12.abcdef\n").unwrap();
        let file = AgentConfigFile {
            enroll_secret_file: Some(secret_file.clone()),
            ..AgentConfigFile::default()
        };
        let settings = ServiceSettings::resolve(file, &[], "agent.toml").unwrap();
        assert_eq!(settings.enroll_secret, Some(Secret("12.abcdef".into())));
        std::fs::write(&secret_file, "  \n").unwrap();
        let file = AgentConfigFile {
            enroll_secret_file: Some(secret_file),
            ..AgentConfigFile::default()
        };
        let error = ServiceSettings::resolve(file, &[], "agent.toml").unwrap_err();
        assert!(error.to_string().contains("enroll_secret_file"), "{error}");
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let error = parse_config("server_url = \"x\"\nserver = \"y\"\n", "agent.toml").unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("agent.toml:2:"), "{text}");
        assert!(text.contains("server"), "{text}");
        let file = parse_config("interval = \"0\"\n", "agent.toml").unwrap();
        let error = ServiceSettings::resolve(file, &[], "agent.toml").unwrap_err();
        assert!(error.to_string().contains("`interval`"), "{error}");
        let bad_flag = Overrides {
            allow_http: Some("maybe".into()),
            ..Overrides::default()
        };
        assert!(ServiceSettings::resolve(AgentConfigFile::default(), &[bad_flag], "x").is_err());
    }

    #[test]
    fn a_missing_default_file_is_no_error_but_a_missing_named_one_is() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("agent.toml");
        assert!(read_config_file(&missing, false).is_ok());
        assert!(read_config_file(&missing, true).is_err());
    }
}
