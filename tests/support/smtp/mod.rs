//! A real SMTP server for the mail tests: aiosmtpd (from PyPI, installed by
//! `scripts/test.sh` into `~/.cache/sverka/smtp-venv`, or the Python that
//! `SVERKA_SMTP_PYTHON` names) running `smtp_server.py` on 127.0.0.1, writing each
//! message it takes to a folder the test reads. It speaks plain SMTP, STARTTLS or
//! implicit TLS (with a throwaway CA's certificate), may ask for a password, and
//! misbehaves on request (`Fault`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::ThrowawayPki;

/// How the server protects the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Starttls,
    Implicit,
}

/// What the server does wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answers the end of a message.
    HangInData,
    /// Drops the connection when a message's data arrives.
    CloseInData,
    /// Answers 451 to the first `n` messages.
    RefuseFirst(u32),
}

/// A running SMTP server; killed when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    out: tempfile::TempDir,
    /// The CA a client must trust (with TLS).
    pub pki: Option<ThrowawayPki>,
    ca_file: Option<PathBuf>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message the server took: its bytes and the envelope's recipients.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub recipients: Vec<String>,
}

fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("SVERKA_SMTP_PYTHON") {
        return PathBuf::from(python);
    }
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/sverka/smtp-venv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: run `bash scripts/test.sh` once (it installs aiosmtpd from PyPI), \
         or set SVERKA_SMTP_PYTHON to a Python with aiosmtpd",
        venv.display()
    );
    venv
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl SmtpServer {
    /// Starts a server; `user` asks for that login and password.
    pub fn start(tls: SmtpTls, user: Option<(&str, &str)>, fault: Option<Fault>) -> SmtpServer {
        SmtpServer::start_on(free_port(), tls, user, fault)
    }

    /// The same on a given port (to come back where a collector expects it).
    pub fn start_on(
        port: u16,
        tls: SmtpTls,
        user: Option<(&str, &str)>,
        fault: Option<Fault>,
    ) -> SmtpServer {
        let out = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/smtp/smtp_server.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(out.path());
        let mut pki = None;
        let mut ca_file = None;
        if tls != SmtpTls::None {
            let throwaway = ThrowawayPki::new();
            let cert = out.path().join("server.pem");
            let key = out.path().join("server.key");
            let ca = out.path().join("ca.pem");
            std::fs::write(&cert, &throwaway.chain_pem).expect("write cert");
            std::fs::write(&key, &throwaway.key_pem).expect("write key");
            std::fs::write(&ca, &throwaway.ca_pem).expect("write CA");
            command
                .args([
                    "--tls",
                    if tls == SmtpTls::Starttls {
                        "starttls"
                    } else {
                        "implicit"
                    },
                ])
                .arg("--cert")
                .arg(&cert)
                .arg("--key")
                .arg(&key);
            pki = Some(throwaway);
            ca_file = Some(ca);
        }
        if let Some((login, password)) = user {
            command.args(["--user", login, "--password", password]);
        }
        if let Some(fault) = fault {
            let fault = match fault {
                Fault::HangInData => "hang-in-data".to_string(),
                Fault::CloseInData => "close-in-data".to_string(),
                Fault::RefuseFirst(n) => format!("refuse-first={n}"),
            };
            command.args(["--fault", &fault]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the SMTP server's first line");
        assert!(
            line.starts_with("ready"),
            "the SMTP server did not start: {line:?}"
        );
        SmtpServer {
            child,
            port,
            out,
            pki,
            ca_file,
        }
    }

    /// The CA file a client must trust (with TLS).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Every message taken so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("read the mail folder")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| Received {
                raw: std::fs::read(&path).expect("read a message"),
                recipients: std::fs::read_to_string(path.with_extension("rcpt"))
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect(),
            })
            .collect()
    }

    /// Stops the server (as a mail server that went down).
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}
