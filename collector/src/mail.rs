//! E-mail over SMTP (`[mail]`, issue 20): the weekly report that sends itself and the
//! test message of `notify test`. [`Mailer`] wraps lettre's SMTP transport (STARTTLS,
//! implicit TLS, or plain on loopback only; optional authentication; the system's CAs
//! and an optional CA file); [`parse_recipients`] is what an officer's list of
//! addresses must pass before it is stored.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587 by default); refused if the
    /// server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption (port 25 by default): only for a mail server on this machine
    /// (a loopback address), never across a network.
    None,
}

/// `[mail]` in `collector.toml`: without `server`, no mail is sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server's host name or address; empty: mail is off.
    pub server: String,
    /// Its port; default by `security`: 587, 465 or 25.
    pub port: Option<u16>,
    pub security: Security,
    /// The SMTP user, if the server wants authentication.
    pub username: Option<String>,
    /// A file holding the SMTP password (the password itself is never in the config).
    pub password_file: Option<PathBuf>,
    /// The sender, `Sverka <sverka@edu.example>`.
    pub from: String,
    /// A CA certificate (PEM) to trust besides the system's, for a server with the
    /// authority's own CA.
    pub ca_file: Option<PathBuf>,
    /// How long one connection attempt and each SMTP reply may take, in seconds (30);
    /// a whole message may take three times as long.
    pub timeout_seconds: Option<u64>,
    /// How often the collector looks for weekly reports due, in seconds (60).
    pub check_seconds: Option<u64>,
    /// The pause after a first failed try, in seconds (60); it doubles with each
    /// further failure, up to an hour.
    pub retry_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("[mail] {0}")]
    Config(String),
    #[error("the message could not be built: {0}")]
    Message(String),
    #[error("the mail server did not take the message: {0}")]
    Send(String),
}

/// An SMTP connection setting, ready to send.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `server:port (security)`, for messages to people.
    pub describe: String,
    /// How often the weekly reports due are looked for.
    pub check_every: Duration,
    /// The pause after a first failed try.
    pub first_retry: Duration,
    /// How long one whole message may take to send.
    send_limit: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Mailer")
            .field("server", &self.describe)
            .finish_non_exhaustive()
    }
}

fn is_loopback(server: &str) -> bool {
    server == "localhost"
        || server
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

impl Mailer {
    /// The mailer `[mail]` describes; `None` when no server is set (mail is off).
    pub fn from_config(config: &MailConfig) -> Result<Option<Mailer>, MailError> {
        let server = config.server.trim();
        if server.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = config.from.parse().map_err(|error| {
            MailError::Config(format!(
                "from = {:?} is not an address: {error}",
                config.from
            ))
        })?;
        if config.security == Security::None && !is_loopback(server) {
            return Err(MailError::Config(format!(
                "security = \"none\" sends the password and the report in clear text; it is \
                 allowed only for a server on this machine, not {server:?} (use \"starttls\" or \"tls\")"
            )));
        }
        let port = config.port.unwrap_or(match config.security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        let mut tls = TlsParameters::builder(server.to_string());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                MailError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            let certificate = Certificate::from_pem(&pem).map_err(|error| {
                MailError::Config(format!("ca_file {}: {error}", path.display()))
            })?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls
            .build_rustls()
            .map_err(|error| MailError::Config(format!("TLS for {server}: {error}")))?;
        let timeout = Duration::from_secs(config.timeout_seconds.unwrap_or(30).max(1));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
            .port(port)
            .tls(match config.security {
                Security::Starttls => Tls::Required(tls),
                Security::Tls => Tls::Wrapper(tls),
                Security::None => Tls::None,
            })
            .timeout(Some(timeout));
        if let Some(username) = &config.username {
            let password = match &config.password_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|error| {
                        MailError::Config(format!("password_file {}: {error}", path.display()))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                None => {
                    return Err(MailError::Config(format!(
                        "username = {username:?} needs password_file"
                    )));
                }
            };
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        let security = match config.security {
            Security::Starttls => "STARTTLS",
            Security::Tls => "TLS",
            Security::None => "no encryption",
        };
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            describe: format!("{server}:{port} ({security})"),
            check_every: Duration::from_secs(config.check_seconds.unwrap_or(60).max(1)),
            first_retry: Duration::from_secs(config.retry_seconds.unwrap_or(60).max(1)),
            send_limit: timeout * 3,
        }))
    }

    /// Sends one message to `to`: a plain-text body and, when given, one attachment.
    pub async fn send(
        &self,
        to: &[Mailbox],
        subject: &str,
        body: &str,
        attachment: Option<(String, Vec<u8>, &str)>,
    ) -> Result<(), MailError> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for recipient in to {
            message = message.to(recipient.clone());
        }
        let text = SinglePart::plain(body.to_string());
        let message = match attachment {
            Some((file_name, bytes, content_type)) => {
                let content_type = ContentType::parse(content_type)
                    .map_err(|error| MailError::Message(error.to_string()))?;
                message.multipart(
                    MultiPart::mixed()
                        .singlepart(text)
                        .singlepart(Attachment::new(file_name).body(bytes, content_type)),
                )
            }
            None => message.singlepart(text),
        }
        .map_err(|error| MailError::Message(error.to_string()))?;
        // The transport's timeout bounds each network step, not a server that takes
        // the message's data and never answers; the whole send is bounded here.
        match tokio::time::timeout(self.send_limit, self.transport.send(message)).await {
            Ok(sent) => sent
                .map(|_| ())
                .map_err(|error| MailError::Send(error.to_string())),
            Err(_) => Err(MailError::Send(format!(
                "no answer within {} s",
                self.send_limit.as_secs()
            ))),
        }
    }
}

/// The addresses an officer entered (separated by commas, semicolons or new lines),
/// each checked; an error names the first one that is not an address. At most 20.
pub fn parse_recipients(text: &str) -> Result<Vec<Mailbox>, String> {
    let mut recipients = Vec::new();
    for part in text
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let mailbox: Mailbox = part
            .parse()
            .map_err(|_| format!("«{part}» is not an e-mail address (like ivanova@edu.example)"))?;
        recipients.push(mailbox);
    }
    if recipients.len() > 20 {
        return Err(format!(
            "{} addresses; at most 20 (use a mailing list for more)",
            recipients.len()
        ));
    }
    Ok(recipients)
}

/// Recipients as stored: the addresses alone, comma-separated.
pub fn recipients_text(recipients: &[Mailbox]) -> String {
    recipients
        .iter()
        .map(|mailbox| mailbox.email.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_one_by_one() {
        let parsed = parse_recipients("ivanova@edu.example; Петров <petrov@uo.example>\n")
            .expect("two addresses");
        assert_eq!(
            recipients_text(&parsed),
            "ivanova@edu.example, petrov@uo.example"
        );
        assert_eq!(parse_recipients(" , ").expect("none"), vec![]);
        let error = parse_recipients("ivanova@edu.example, ivanova-at-edu").unwrap_err();
        assert!(error.contains("«ivanova-at-edu»"), "{error}");
        let many = (0..21)
            .map(|n| format!("u{n}@x.example"))
            .collect::<Vec<_>>();
        assert!(parse_recipients(&many.join(",")).is_err());
    }

    #[test]
    fn plain_smtp_is_only_for_this_machine() {
        let config = |server: &str| MailConfig {
            server: server.into(),
            security: Security::None,
            from: "sverka@edu.example".into(),
            ..MailConfig::default()
        };
        assert!(Mailer::from_config(&config("127.0.0.1")).is_ok());
        let error = Mailer::from_config(&config("smtp.edu.example")).unwrap_err();
        assert!(error.to_string().contains("clear text"), "{error}");
        assert!(
            Mailer::from_config(&MailConfig::default())
                .unwrap()
                .is_none()
        );
        let bad_from = MailConfig {
            from: "nobody".into(),
            ..config("127.0.0.1")
        };
        assert!(Mailer::from_config(&bad_from).is_err());
    }
}
