//! A real HTTP receiver for the webhook tests: `receiver.py` (Python's standard library
//! only) on 127.0.0.1, checking each call's HMAC signature with the shared secret
//! independently of the collector's code, and writing every request it got to a file
//! the test reads. It may answer 500 or never answer, on request.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running receiver; killed when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    child: Child,
    pub port: u16,
    out: tempfile::TempDir,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the receiver answers its first requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 to every call.
    Ok,
    /// 500 to the first `n` calls, then 200.
    FailFirst(u32),
    /// No answer at all to the first `n` calls, then 200.
    HangFirst(u32),
}

impl WebhookReceiver {
    pub fn start(secret: &str, answer: Answer) -> WebhookReceiver {
        let out = tempfile::tempdir().expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/webhook/receiver.py");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .args(["--secret", secret])
            .arg("--out")
            .arg(out.path().join("requests.jsonl"));
        match answer {
            Answer::Ok => {}
            Answer::FailFirst(n) => {
                command.args(["--fail-first", &n.to_string()]);
            }
            Answer::HangFirst(n) => {
                command.args(["--hang-first", &n.to_string()]);
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver (python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the receiver's first line");
        let port = line
            .strip_prefix("ready ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("the webhook receiver did not start: {line:?}"));
        WebhookReceiver { child, port, out }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, oldest first: `number`, `path`, `notification` (the
    /// header), `signature_ok`, `body` (parsed JSON), `answer` (200, 500 or "hang").
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect()
    }
}
