//! Support for Sverka's end-to-end tests: fixture roots built by the tests themselves
//! (a few files each, never a copy of this machine), a runner for the real
//! `sverka-agent` binary, and a stand-in collector (`collector.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod btrfs;
mod collector;
pub mod fuzz_targets;
pub mod proof;
pub mod real_collector;
pub mod smtp;
pub mod webhook;
pub mod windows;
pub use collector::*;

use serde_json::Value;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use sverka_agent::scan::sources::rpm::header::{
    TAG_ARCH, TAG_NAME, TAG_RELEASE, TAG_VENDOR, TAG_VERSION, build_header,
};
use tempfile::TempDir;

/// The first bytes of a Linux program: enough for the agent's format check.
pub const ELF_HEADER: &[u8] =
    b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00";
/// An AppImage (type 2): an ELF with `AI\x02` at offset 8.
pub const APPIMAGE_HEADER: &[u8] =
    b"\x7fELF\x02\x01\x01\x00AI\x02\x00\x00\x00\x00\x00\x02\x00>\x00";

/// A throwaway system image.
#[derive(Debug)]
pub struct FixtureRoot {
    dir: TempDir,
}

impl Default for FixtureRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl FixtureRoot {
    pub fn new() -> FixtureRoot {
        FixtureRoot::new_in(tempfile::tempdir().expect("tempdir"))
    }

    /// The same image in the (empty) folder `dir`: a file system mounted over it, say.
    pub fn new_in(dir: TempDir) -> FixtureRoot {
        let root = FixtureRoot { dir };
        root.file("/etc/hostname", "school-pc-7\n");
        root.file("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        root.file(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        );
        root.dir("/root");
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where an absolute path of the image lives.
    pub fn local(&self, absolute: &str) -> PathBuf {
        self.dir.path().join(absolute.trim_start_matches('/'))
    }

    pub fn dir(&self, absolute: &str) -> &Self {
        fs::create_dir_all(self.local(absolute)).expect("create dir");
        self
    }

    pub fn file(&self, absolute: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.local(absolute);
        fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
        fs::write(path, contents).expect("write");
        self
    }

    pub fn append(&self, absolute: &str, contents: &str) -> &Self {
        let path = self.local(absolute);
        let mut existing = fs::read_to_string(&path).unwrap_or_default();
        existing.push_str(contents);
        self.file(absolute, existing)
    }

    /// A program file (ELF header and some padding).
    pub fn program(&self, absolute: &str) -> &Self {
        let mut bytes = ELF_HEADER.to_vec();
        bytes.resize(4096, 0);
        self.file(absolute, bytes)
    }

    pub fn appimage(&self, absolute: &str) -> &Self {
        let mut bytes = APPIMAGE_HEADER.to_vec();
        bytes.resize(4096, 0);
        self.file(absolute, bytes)
    }

    pub fn link(&self, target: &str, absolute: &str) -> &Self {
        let path = self.local(absolute);
        fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
        symlink(target, path).expect("symlink");
        self
    }

    /// The image's `/etc/machine-id` (every fixture root starts with the same one).
    pub fn machine_id(&self, id: &str) -> &Self {
        self.file("/etc/machine-id", format!("{id}\n"))
    }

    pub fn hostname(&self, name: &str) -> &Self {
        self.file("/etc/hostname", format!("{name}\n"))
    }

    pub fn os_release(&self, id: &str, pretty_name: &str) -> &Self {
        self.file(
            "/etc/os-release",
            format!("ID={id}\nPRETTY_NAME=\"{pretty_name}\"\nVERSION_ID=1\n"),
        )
    }

    /// A person with a home folder and a `passwd` line.
    pub fn user(&self, name: &str, uid: u32) -> &Self {
        self.append(
            "/etc/passwd",
            &format!("{name}:x:{uid}:{uid}:{name}:/home/{name}:/bin/bash\n"),
        );
        self.dir(&format!("/home/{name}"))
    }

    /// `/var/lib/dpkg/status` with the given (name, version, status) stanzas.
    pub fn dpkg(&self, packages: &[(&str, &str, &str)]) -> &Self {
        let mut text = String::new();
        for (name, version, status) in packages {
            text.push_str(&format!(
                "Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: amd64\nMaintainer: Someone <someone@example.org>\nVersion: {version}\nDescription: {name}\n a package\n .\n more text\n\n"
            ));
        }
        self.file("/var/lib/dpkg/status", text)
    }

    /// A SQLite rpmdb in the schema rpm uses, with headers for (name, version).
    pub fn rpm_sqlite(&self, directory: &str, packages: &[(&str, &str)]) -> &Self {
        self.dir(directory);
        let connection =
            rusqlite::Connection::open(self.local(&format!("{directory}/rpmdb.sqlite")))
                .expect("open");
        connection
            .execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);")
            .expect("schema");
        for (name, version) in packages {
            let blob = rpm_header(name, version);
            connection
                .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .expect("insert");
        }
        self
    }

    /// A Berkeley DB hash `Packages` file made by Berkeley DB's own `db5.3_load`.
    pub fn rpm_berkeley_db(&self, directory: &str, blobs: &[Vec<u8>]) -> &Self {
        self.dir(directory);
        let mut dump = String::from(
            "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END\n 00000000\n 05000000\n",
        );
        for (index, blob) in blobs.iter().enumerate() {
            let key = (index as u32 + 1).to_le_bytes();
            dump.push_str(&format!(" {}\n {}\n", hex(&key), hex(blob)));
        }
        dump.push_str("DATA=END\n");
        let dump_path = self.local("/tmp/packages.dump");
        fs::create_dir_all(dump_path.parent().expect("parent")).expect("dir");
        fs::write(&dump_path, dump).expect("write dump");
        let output = Command::new(require_tool("db5.3_load", "db5.3-util"))
            .arg("-f")
            .arg(&dump_path)
            .arg(self.local(&format!("{directory}/Packages")))
            .output()
            .expect("run db5.3_load");
        assert!(
            output.status.success(),
            "db5.3_load: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        fs::remove_file(dump_path).expect("remove dump");
        self
    }

    pub fn flatpak_system(&self, id: &str) -> &Self {
        self.dir(&format!(
            "/var/lib/flatpak/app/{id}/x86_64/stable/active/files"
        ));
        self.link(
            "x86_64/stable",
            &format!("/var/lib/flatpak/app/{id}/current"),
        )
    }

    pub fn flatpak_user(&self, user: &str, id: &str) -> &Self {
        let base = format!("/home/{user}/.local/share/flatpak/app/{id}");
        self.dir(&format!("{base}/x86_64/stable/active/files"));
        self.link("x86_64/stable", &format!("{base}/current"))
    }

    /// A snap as an image has it: the package file, and the mount point's `current`.
    pub fn snap(&self, name: &str, revision: &str) -> &Self {
        self.file(
            &format!("/var/lib/snapd/snaps/{name}_{revision}.snap"),
            b"hsqs",
        );
        self.dir(&format!("/snap/{name}/{revision}"));
        self.link(revision, &format!("/snap/{name}/current"))
    }

    pub fn launcher(
        &self,
        absolute: &str,
        name: &str,
        exec: &str,
        wm_class: Option<&str>,
    ) -> &Self {
        let mut text = format!("[Desktop Entry]\nType=Application\nName={name}\nExec={exec}\n");
        if let Some(class) = wm_class {
            text.push_str(&format!("StartupWMClass={class}\n"));
        }
        self.file(absolute, text)
    }
}

/// An rpm header blob for a package.
pub fn rpm_header(name: &str, version: &str) -> Vec<u8> {
    build_header(
        &[
            (TAG_NAME, name),
            (TAG_VERSION, version),
            (TAG_RELEASE, "alt1"),
            (TAG_ARCH, "x86_64"),
            (TAG_VENDOR, "ALT Linux Team"),
        ],
        &[],
    )
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The path of a tool the test command installs; a missing tool fails the test loudly.
pub fn require_tool(tool: &str, debian_package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|folder| folder.join(tool))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{tool}` is missing: install the Debian package `{debian_package}` (the README's test command does)")
    })
}

/// The `sverka-agent` binary, built once per test process so it is never stale.
pub fn agent_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary("sverka-agent", "sverka-agent"))
}

/// The Linux target of the shipped packages: static binaries that start on any x86-64
/// Linux (packaging/README.md says why).
pub const SHIPPED_LINUX_TARGET: &str = "x86_64-unknown-linux-musl";

/// `sverka-agent` and `sverka-collector` built for [`SHIPPED_LINUX_TARGET`] (debug),
/// once per test process, as the Linux packages carry them.
pub fn shipped_linux_binaries() -> &'static (PathBuf, PathBuf) {
    static BINARIES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINARIES.get_or_init(|| {
        (
            build_binary_for("sverka-agent", "sverka-agent", Some(SHIPPED_LINUX_TARGET)),
            build_binary_for(
                "sverka-collector",
                "sverka-collector",
                Some(SHIPPED_LINUX_TARGET),
            ),
        )
    })
}

fn build_binary(package: &str, binary: &str) -> PathBuf {
    build_binary_for(package, binary, None)
}

/// Builds a binary of the workspace, for this machine or for `target`.
fn build_binary_for(package: &str, binary: &str, target: Option<&str>) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo test` gives the test process the package's variables; some build scripts
    // (ring's) track them, so passing them on would rebuild the agent's TLS stack on
    // every alternation between `cargo test` and this build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    command.args([
        "build",
        "--quiet",
        "--package",
        package,
        "--bin",
        binary,
        "--message-format=json",
    ]);
    if let Some(target) = target {
        command.args(["--target", target]);
        if target.ends_with("-linux-musl") {
            // SQLite and ring are C: compiled against musl, not this machine's glibc.
            // By name, as packaging/build-all.sh sets it: build scripts track the value.
            require_tool("musl-gcc", "musl-tools");
            command.env(format!("CC_{}", target.replace('-', "_")), "musl-gcc");
        }
    }
    // The proof suite's full run (`scripts/proof.sh`) measures release binaries.
    if std::env::var_os("SVERKA_TEST_RELEASE").is_some_and(|value| value == "1") {
        command.arg("--release");
    }
    let output = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == binary
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the binary")
}

/// The result of one `sverka-agent` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn run_agent(args: &[&str]) -> Run {
    let mut command = Command::new(agent_binary());
    command.args(args);
    run_command(command)
}

/// Copies an executable (such as `/bin/sleep`) to `destination` and starts it there with
/// `args`. A freshly written executable can be refused with "Text file busy" (ETXTBSY)
/// while another test thread's `fork` still holds the copy's write descriptor open in
/// a child that has not yet reached `exec`; that lasts microseconds, so the start is
/// retried for a short while before the error is returned.
pub fn spawn_copied_program(
    source: &Path,
    destination: &Path,
    args: &[&str],
) -> std::io::Result<std::process::Child> {
    fs::copy(source, destination)?;
    let mut attempts = 0;
    loop {
        match Command::new(destination).args(args).spawn() {
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 100 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Runs a command to the end and keeps its exit status and output.
pub fn run_command(mut command: Command) -> Run {
    let output: Output = command.output().expect("run the program");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the agent as `nobody` (through `setpriv`), for tests of what an unprivileged
/// account cannot read. The binary and the fixture must be readable by that account.
pub fn run_agent_unprivileged(args: &[&str]) -> Run {
    let setpriv = require_tool("setpriv", "util-linux");
    let mut command = Command::new(setpriv);
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(agent_binary())
        .args(args);
    run_command(command)
}

/// `sverka-agent scan --root ROOT --format json [extra...]`, parsed.
pub fn scan_json(root: &FixtureRoot, extra: &[&str]) -> (i32, Value) {
    let root_arg = root.path().to_string_lossy().into_owned();
    let mut args = vec!["scan", "--root", root_arg.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let run = run_agent(&args);
    (run.code, run.json())
}

/// Fails the test unless the service whose log this is started its change watcher
/// and some scan took folders from the cache unseen, on the journal's word (its
/// `folders_unchanged` count above zero).
pub fn assert_change_journal_answered(log: &str) {
    assert!(log.contains("watching the disks for changes"), "{log}");
    let unchanged: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split("folders_unchanged=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(unchanged.iter().any(|count| *count > 0), "{log}");
}

/// The finding for `app` in a JSON report.
pub fn finding<'a>(report: &'a Value, app: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()?
        .iter()
        .find(|finding| finding["app"] == app)
}

/// The ids of all findings.
pub fn finding_ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .filter_map(|finding| finding["app"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The sources of a finding's evidence, e.g. `["dpkg", "file"]`.
pub fn evidence_sources(finding: &Value) -> Vec<String> {
    finding["evidence"]
        .as_array()
        .map(|evidence| {
            evidence
                .iter()
                .filter_map(|item| item["source"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The messages of the report's errors for one source.
pub fn errors_of(report: &Value, source: &str) -> Vec<String> {
    report["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|error| error["source"] == source)
                .map(|error| {
                    format!(
                        "{} {}",
                        error["path"].as_str().unwrap_or(""),
                        error["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
