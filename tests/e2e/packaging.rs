//! The packages school IT admins install, built by `packaging/build-linux.sh` and
//! `packaging/build-msi.sh` from the binaries this test run built: their contents
//! (`dpkg-deb`, `rpm -qp`, `msiinfo`), the debs installed, upgraded, removed and purged
//! in a throwaway root (maintainer scripts included), the systemd units verified, the
//! installed agent's service mode enrolling with a collector over TLS with a pinned CA,
//! and the MSI under Wine in one prefix: installed with its service running and
//! enrolling, the service stopped, a major upgrade to a newer MSI keeping the identity
//! and the spool, and the uninstall leaving the state folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use sverka_tests::real_collector::{Collector, collector_binary};
use sverka_tests::windows::{WinePrefix, agent_exe};
use sverka_tests::{FixtureRoot, Run, agent_binary, require_tool, run_command};
use tempfile::TempDir;

fn packaging_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .canonicalize()
        .expect("packaging folder")
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn run_ok(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = command.output().expect("run the command");
    assert!(
        output.status.success(),
        "{description} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until `done` holds (a minute at most), calling `context` for the message.
fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out waiting until {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The four Linux packages of version 0.1.0, built once per test process.
fn linux_packages() -> &'static Path {
    static PACKAGES: OnceLock<PathBuf> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packages-0.1.0");
        let _ = fs::remove_dir_all(&out);
        build_linux_packages(&out, "0.1.0");
        out
    })
}

/// The four Linux packages, built with the given version.
fn build_linux_packages(out: &Path, version: &str) {
    require_tool("dpkg-deb", "dpkg");
    require_tool("rpmbuild", "rpm");
    run_ok(
        Command::new("bash")
            .arg(packaging_dir().join("build-linux.sh"))
            .args(["--agent", &text(agent_binary())])
            .args(["--collector", &text(collector_binary())])
            .args(["--out", &text(out), "--version", version]),
    );
}

fn dpkg(root: &Path, args: &[&str]) -> Run {
    let mut command = Command::new("dpkg");
    command
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            // The throwaway root has no libc6 package: the binaries run on this host.
            "--force-depends",
        ])
        .args(args)
        .env("DPKG_ROOT", root);
    run_command(command)
}

/// An empty system for dpkg: its database, and the account files the collector's
/// system user goes into.
fn throwaway_root() -> TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    for folder in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        fs::create_dir_all(root.path().join(folder)).expect("create");
    }
    fs::write(root.path().join("var/lib/dpkg/status"), "").expect("status");
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(root.path().join("etc/group"), "root:x:0:\n").expect("group");
    root
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn linux_packages_hold_the_service_and_install_upgrade_and_purge_cleanly() {
    let dist = linux_packages();
    let package = |name: &str| text(&dist.join(name));
    let agent_deb = package("sverka-agent_0.1.0_amd64.deb");
    let collector_deb = package("sverka-collector_0.1.0_amd64.deb");
    let agent_rpm = package("sverka-agent-0.1.0-1.x86_64.rpm");
    let collector_rpm = package("sverka-collector-0.1.0-1.x86_64.rpm");

    // What each package holds.
    let listing = run_ok(Command::new("dpkg-deb").args(["-c", &agent_deb]));
    for path in [
        "./usr/bin/sverka-agent",
        "./lib/systemd/system/sverka-agent.service",
        "./etc/sverka/agent.toml",
    ] {
        assert!(listing.contains(path), "{path} missing:\n{listing}");
    }
    let info = run_ok(Command::new("dpkg-deb").args(["-I", &agent_deb]));
    assert!(info.contains("Package: sverka-agent"), "{info}");
    assert!(info.contains("Depends: libc6 (>= 2."), "{info}");
    let control = tempfile::tempdir().unwrap();
    run_ok(Command::new("dpkg-deb").args(["-e", &agent_deb, &text(control.path())]));
    assert_eq!(
        fs::read_to_string(control.path().join("conffiles")).unwrap(),
        "/etc/sverka/agent.toml\n"
    );
    let listing = run_ok(Command::new("dpkg-deb").args(["-c", &collector_deb]));
    for path in [
        "./usr/bin/sverka-collector",
        "./lib/systemd/system/sverka-collector.service",
        "./usr/lib/sysusers.d/sverka-collector.conf",
        "./etc/sverka/collector.toml",
    ] {
        assert!(listing.contains(path), "{path} missing:\n{listing}");
    }
    require_tool("rpm", "rpm");
    let files = run_ok(Command::new("rpm").args(["-qlp", &agent_rpm]));
    for path in [
        "/usr/bin/sverka-agent",
        "/usr/lib/systemd/system/sverka-agent.service",
        "/etc/sverka/agent.toml",
        "/var/lib/sverka",
    ] {
        assert!(files.lines().any(|line| line == path), "{path}:\n{files}");
    }
    let config = run_ok(Command::new("rpm").args(["-qcp", &agent_rpm]));
    assert_eq!(config.trim(), "/etc/sverka/agent.toml");
    let scripts = run_ok(Command::new("rpm").args(["-qp", "--scripts", &collector_rpm]));
    assert!(
        scripts.contains("useradd -r -g sverka-collector"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl enable sverka-collector.service"),
        "{scripts}"
    );
    let payload = run_ok(Command::new("rpm").args([
        "-qp",
        "--qf",
        "%{PAYLOADCOMPRESSOR} %{ARCH}",
        &collector_rpm,
    ]));
    assert_eq!(payload, "xz x86_64");
    let owners = run_ok(Command::new("rpm").args(["-qlvp", &collector_rpm]));
    let data = owners
        .lines()
        .find(|line| line.ends_with("/var/lib/sverka-collector"))
        .unwrap_or_else(|| panic!("{owners}"));
    assert!(data.starts_with("drwxr-x---"), "{data}");
    assert!(
        data.contains("sverka-c"),
        "owned by the collector's user: {data}"
    );

    // Installed into a throwaway root, maintainer scripts and all.
    let root = throwaway_root();
    let installed = dpkg(root.path(), &["-i", &agent_deb, &collector_deb]);
    assert_eq!(
        installed.code, 0,
        "{}\n{}",
        installed.stdout, installed.stderr
    );
    assert!(
        installed
            .stdout
            .contains("set server_url and enroll_secret"),
        "the agent says what to configure: {}",
        installed.stdout
    );
    let r = root.path();
    assert!(r.join("usr/bin/sverka-agent").is_file());
    assert_eq!(mode(&r.join("etc/sverka/agent.toml")), 0o600);
    assert_eq!(mode(&r.join("var/lib/sverka")), 0o700);
    let passwd = fs::read_to_string(r.join("etc/passwd")).unwrap();
    let collector_user = passwd
        .lines()
        .find(|line| line.starts_with("sverka-collector:"))
        .unwrap_or_else(|| panic!("no system user: {passwd}"));
    let uid: u32 = collector_user.split(':').nth(2).unwrap().parse().unwrap();
    assert!(uid < 1000, "a system user: {collector_user}");
    {
        use std::os::unix::fs::MetadataExt;
        let data = fs::metadata(r.join("var/lib/sverka-collector")).unwrap();
        assert_eq!(data.uid(), uid);
        assert_eq!(data.mode() & 0o777, 0o750);
    }

    // The units, checked by systemd against the installed root (with this host's
    // units beside them: the targets they are ordered after).
    run_ok(Command::new("cp").args([
        "-rn",
        "/lib/systemd/system/.",
        &text(&r.join("lib/systemd/system")),
    ]));
    for unit in ["sverka-agent.service", "sverka-collector.service"] {
        let verify = run_command({
            let mut command = Command::new(require_tool("systemd-analyze", "systemd"));
            command
                .arg(format!("--root={}", r.display()))
                .args(["verify", &format!("/lib/systemd/system/{unit}")]);
            command
        });
        assert_eq!(
            verify.code, 0,
            "{unit}: {}\n{}",
            verify.stdout, verify.stderr
        );
        assert!(
            verify.stderr.trim().is_empty(),
            "{unit}: no warnings:\n{}",
            verify.stderr
        );
    }
    let unit = fs::read_to_string(r.join("lib/systemd/system/sverka-agent.service")).unwrap();
    for line in [
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CPUQuota=25%",
        "Nice=19",
        "StateDirectory=sverka",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|unit_line| unit_line == line), "{line}");
    }

    // The installed agent refuses plain HTTP unless allowed.
    let http = run_command({
        let mut command = Command::new(r.join("usr/bin/sverka-agent"));
        command.args([
            "enroll",
            "--server",
            "http://127.0.0.1:9",
            "--secret",
            "1.x",
            "--state-dir",
            &text(&r.join("tmp-state")),
        ]);
        command
    });
    assert_eq!(http.code, 2);
    assert!(http.stderr.contains("allow_http"), "{}", http.stderr);

    // An upgrade keeps the admin's settings and the PC's state.
    fs::write(
        r.join("etc/sverka/agent.toml"),
        "server_url = \"https://sverka.edu.example\"\n",
    )
    .unwrap();
    fs::write(r.join("var/lib/sverka/enrollment.json"), "{}").unwrap();
    let newer = tempfile::tempdir().unwrap();
    build_linux_packages(newer.path(), "0.1.1");
    let upgraded = dpkg(
        r,
        &[
            "-i",
            &text(&newer.path().join("sverka-agent_0.1.1_amd64.deb")),
        ],
    );
    assert_eq!(upgraded.code, 0, "{}\n{}", upgraded.stdout, upgraded.stderr);
    let status = dpkg(r, &["-s", "sverka-agent"]);
    assert!(
        status.stdout.contains("Version: 0.1.1"),
        "{}",
        status.stdout
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/sverka/agent.toml")).unwrap(),
        "server_url = \"https://sverka.edu.example\"\n"
    );
    assert!(r.join("var/lib/sverka/enrollment.json").is_file());

    // Removal keeps the state and says so; purge deletes it.
    let removed = dpkg(r, &["-r", "sverka-agent"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(
        removed.stdout.contains("kept /var/lib/sverka"),
        "{}",
        removed.stdout
    );
    assert!(!r.join("usr/bin/sverka-agent").exists());
    assert!(r.join("var/lib/sverka/enrollment.json").is_file());
    let purged = dpkg(r, &["-P", "sverka-agent", "sverka-collector"]);
    assert_eq!(purged.code, 0, "{}", purged.stderr);
    assert!(!r.join("var/lib/sverka").exists());
    assert!(!r.join("var/lib/sverka-collector").exists());
    assert!(!r.join("etc/sverka").exists());
}

/// The agent from the deb, run as its unit runs it (`service --config`, here over a
/// small PC image rather than this machine), against a real collector serving TLS
/// itself with a certificate from a throwaway CA.
#[test]
fn the_installed_agent_service_enrolls_over_tls_with_a_pinned_ca() {
    let root = throwaway_root();
    let r = root.path();
    let installed = dpkg(
        r,
        &[
            "-i",
            &text(&linux_packages().join("sverka-agent_0.1.0_amd64.deb")),
        ],
    );
    assert_eq!(installed.code, 0, "{}", installed.stderr);

    let (collector, pki) = Collector::start_tls();
    assert!(collector.url().starts_with("https://"));
    let school = collector.add_org("Школа №7", "school", None);
    let secret = collector.secret(school);
    let ca_file = r.join("etc/sverka/collector-ca.pem");
    fs::write(&ca_file, &pki.ca_pem).unwrap();
    let state = r.join("var/lib/sverka");
    // The packaged settings file with the admin's lines added; the secret comes from
    // the environment file's variable, as the unit passes it.
    let mut settings = fs::read_to_string(r.join("etc/sverka/agent.toml")).unwrap();
    settings.push_str(&format!(
        "server_url = \"{}\"\nca_file = \"{}\"\nstate_dir = \"{}\"\nmax_delay = \"0s\"\n",
        collector.url(),
        ca_file.display(),
        state.display()
    ));
    fs::write(r.join("etc/sverka/agent.toml"), settings).unwrap();
    let pc = FixtureRoot::new();
    pc.machine_id("deb00000000000000000000000000001")
        .hostname("pc-astra")
        .os_release("astra", "Astra Linux 1.8");
    let log_file = r.join("agent.log");
    let mut service = ChildGuard(
        Command::new(r.join("usr/bin/sverka-agent"))
            .args(["service", "--config"])
            .arg(r.join("etc/sverka/agent.toml"))
            .arg("--root")
            .arg(pc.path())
            .env("SVERKA_ENROLL_SECRET", &secret)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || fs::read_to_string(&log_file).unwrap_or_default();
    wait_until(
        "the service enrolled and its first report was stored",
        || {
            collector
                .stored_reports()
                .first()
                .is_some_and(|host| host.1 >= 1)
        },
        || format!("{}\n{}", log(), collector.log()),
    );
    let enrollment: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(state.join("enrollment.json")).unwrap()).unwrap();
    assert_eq!(enrollment["server"], collector.url());
    assert_eq!(enrollment["machine_id"], "deb00000000000000000000000000001");
    assert_eq!(
        fs::read_to_string(state.join("collector-ca.pem")).unwrap(),
        pki.ca_pem,
        "the configured CA is pinned"
    );
    assert!(
        log().contains("the enrollment secret is no longer needed"),
        "{}",
        log()
    );
    assert_eq!(
        service.0.try_wait().unwrap(),
        None,
        "still running: {}",
        log()
    );
    drop(service);

    // Restarted without the secret (as after an upgrade): the same host, no new enrollment.
    let mut restarted = ChildGuard(
        Command::new(r.join("usr/bin/sverka-agent"))
            .args(["service", "--config"])
            .arg(r.join("etc/sverka/agent.toml"))
            .arg("--root")
            .arg(pc.path())
            .env_remove("SVERKA_ENROLL_SECRET")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(
        "the restarted service reported again",
        || {
            collector
                .stored_reports()
                .first()
                .is_some_and(|host| host.1 >= 2)
        },
        || format!("{}\n{}", log(), collector.log()),
    );
    assert_eq!(collector.stored_reports().len(), 1, "one host");
    assert_eq!(restarted.0.try_wait().unwrap(), None, "{}", log());
    let status = run_command({
        let mut command = Command::new(r.join("usr/bin/sverka-agent"));
        command
            .args(["status", "--config"])
            .arg(r.join("etc/sverka/agent.toml"));
        command
    });
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("enrolled: host"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("spooled reports: 0"),
        "{}",
        status.stdout
    );
}

/// Kills the child when dropped (a failed assertion must not leave a service running).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn build_msi(out: &Path, version: &str) -> PathBuf {
    require_tool("wixl", "wixl");
    run_ok(
        Command::new("bash")
            .arg(packaging_dir().join("build-msi.sh"))
            .args(["--exe", &text(agent_exe())])
            .args(["--out", &text(out), "--version", version]),
    );
    out.join(format!("sverka-agent-{version}.msi"))
}

fn msi_tables(msi: &Path) -> String {
    run_ok(
        Command::new(require_tool("msiinfo", "msitools"))
            .arg("tables")
            .arg(msi),
    )
}

fn msi_table(msi: &Path, table: &str) -> String {
    run_ok(
        Command::new(require_tool("msiinfo", "msitools"))
            .arg("export")
            .arg(msi)
            .arg(table),
    )
}

const SERVICE_KEY: &str = r"HKLM\System\CurrentControlSet\Services\SverkaAgent";
const SETTINGS_KEY: &str = r"HKLM\Software\Sverka\Agent";

#[test]
fn the_msi_installs_enrolls_upgrades_and_uninstalls_under_wine() {
    let dist = tempfile::tempdir().unwrap();
    let msi = build_msi(dist.path(), "0.1.0");
    let newer = build_msi(dist.path(), "0.1.1");

    // What the MSI holds.
    let tables = msi_tables(&msi);
    for table in [
        "File",
        "ServiceInstall",
        "ServiceControl",
        "Registry",
        "CreateFolder",
        "Upgrade",
    ] {
        assert!(
            tables.lines().any(|line| line == table),
            "{table}: {tables}"
        );
    }
    let service = msi_table(&msi, "ServiceInstall");
    let row = service
        .lines()
        .find(|line| line.starts_with("SverkaAgentService\t"))
        .unwrap_or_else(|| panic!("{service}"));
    let columns: Vec<&str> = row.split('\t').collect();
    // Name, type 16 (own process), start 2 (automatic), LocalSystem, `service`.
    assert_eq!(columns[1], "SverkaAgent");
    assert_eq!(&columns[3..6], ["16", "2", "1"]);
    assert_eq!(columns[8], "LocalSystem");
    assert_eq!(columns[10], "service");
    let registry = msi_table(&msi, "Registry");
    for value in [
        "[SERVER_URL]",
        "[ENROLL_SECRET]",
        "[CA_FILE]",
        "[ALLOW_HTTP]",
    ] {
        assert!(registry.contains(value), "{value}: {registry}");
    }
    let properties = msi_table(&msi, "Property");
    assert!(
        properties.contains("MsiHiddenProperties\tENROLL_SECRET"),
        "{properties}"
    );
    // For Software Installation: a copy with the settings in its Property table.
    let school_msi = dist.path().join("school5/sverka-agent-0.1.0.msi");
    run_ok(
        Command::new("bash")
            .arg(packaging_dir().join("msi-with-settings.sh"))
            .arg(&msi)
            .arg(&school_msi)
            .args([
                "SERVER_URL=https://sverka.edu.example",
                "ENROLL_SECRET=7.abc",
            ]),
    );
    let school_properties = msi_table(&school_msi, "Property");
    for row in [
        "SERVER_URL\thttps://sverka.edu.example",
        "ENROLL_SECRET\t7.abc",
        "ProductVersion\t0.1.0",
        "UpgradeCode\t",
    ] {
        assert!(
            school_properties.contains(row),
            "{row}: {school_properties}"
        );
    }

    let (collector, pki) = Collector::start_tls();
    let school = collector.add_org("Школа №9", "school", None);
    let secret = collector.secret(school);
    let prefix = WinePrefix::new();
    // Wine 8 lacks ProcessPrng, which Rust's std needs: its stand-in goes where the
    // program will be (real Windows has it, so the MSI does not carry it).
    prefix.copy(
        &agent_exe().with_file_name("bcryptprimitives.dll"),
        r"C:\Program Files\Sverka\bcryptprimitives.dll",
    );
    prefix.file(r"C:\sverka\collector-ca.pem", &pki.ca_pem);
    // The first scan without the random start delay.
    prefix.file(r"C:\ProgramData\Sverka\agent.toml", "max_delay = \"0s\"\n");
    // Wine ends its services with the last ordinary program; one that waits on its
    // input keeps them running, as Windows would.
    let _keeper = ChildGuard(
        Command::new("wine")
            .arg("cmd")
            .env("WINEPREFIX", prefix.path())
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wine cmd"),
    );
    let install = prefix.wine(&[
        "msiexec",
        "/i",
        &text(&msi),
        "/qn",
        &format!("SERVER_URL={}", collector.url()),
        &format!("ENROLL_SECRET={secret}"),
        r"CA_FILE=C:\sverka\collector-ca.pem",
    ]);
    assert_eq!(install.code, 0, "{}", install.stderr);
    assert!(
        prefix
            .local(r"C:\Program Files\Sverka\sverka-agent.exe")
            .is_file()
    );

    // The service as the MSI registered it.
    let registered = prefix.wine(&["reg", "query", SERVICE_KEY]);
    assert_eq!(registered.code, 0, "{}", registered.stderr);
    let service = registered.stdout.to_lowercase();
    assert!(
        service.contains("start    reg_dword    0x2"),
        "{}",
        registered.stdout
    );
    assert!(
        service.contains("objectname    reg_sz    localsystem"),
        "{}",
        registered.stdout
    );
    assert!(
        service.contains(r"c:\program files\sverka\sverka-agent.exe"),
        "{}",
        registered.stdout
    );
    assert!(service.contains("service"), "{}", registered.stdout);

    // Started by the MSI, it enrolls with the properties and reports.
    let state = prefix.local(r"C:\ProgramData\Sverka");
    let log = || {
        let logs = state.join("logs");
        let mut text = String::new();
        for entry in fs::read_dir(logs).into_iter().flatten().flatten() {
            text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    };
    wait_until(
        "the service enrolled and its first report was stored",
        || {
            collector
                .stored_reports()
                .first()
                .is_some_and(|host| host.1 >= 1)
        },
        || format!("{}\n{}", log(), collector.log()),
    );
    let enrollment = fs::read_to_string(state.join("enrollment.json")).unwrap();
    assert!(enrollment.contains("\"host_key\""), "{enrollment}");
    assert_eq!(
        fs::read_to_string(state.join("collector-ca.pem")).unwrap(),
        pki.ca_pem
    );
    let settings = prefix.wine(&["reg", "query", SETTINGS_KEY]);
    assert!(
        settings.stdout.contains(&collector.url()),
        "{}",
        settings.stdout
    );
    assert!(
        !settings.stdout.contains(&secret),
        "the secret is removed once enrolled: {}",
        settings.stdout
    );
    let status = prefix.wine(&[r"C:\Program Files\Sverka\sverka-agent.exe", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("enrolled: host"),
        "{}",
        status.stdout
    );
    // The service set the folder's access list (SetNamedSecurityInfoW succeeded);
    // Wine 8 accepts it but reads back its own default, so what Windows then enforces
    // cannot be shown here.
    assert!(
        status.stdout.contains("state access: D:"),
        "{}",
        status.stdout
    );
    assert!(
        log().contains("the state folder is readable by SYSTEM and Administrators only"),
        "{}",
        log()
    );
    // The scan ran in a child process of the service (`service-scan`).
    assert!(log().contains("scanning in a child process"), "{}", log());
    assert!(log().contains("scan: "), "{}", log());

    // Stop: the service ends its wait at once.
    let started = Instant::now();
    let stopped = prefix.wine(&["net", "stop", "SverkaAgent"]);
    assert_eq!(stopped.code, 0, "{}\n{}", stopped.stdout, log());
    assert!(started.elapsed() < Duration::from_secs(30));
    wait_until(
        "the service logged its stop",
        || log().contains("service stopped"),
        log,
    );

    // A report waits in the spool while the service is stopped (as after an outage).
    let installed_exe = r"C:\Program Files\Sverka\sverka-agent.exe";
    let spooled = prefix.wine(&[
        installed_exe,
        "service-scan",
        "--state-dir",
        r"C:\ProgramData\Sverka",
    ]);
    assert_eq!(spooled.code, 0, "{}", spooled.stderr);
    let waiting = spool_ids(&state.join("spool"));
    assert_eq!(waiting.len(), 1, "{waiting:?}");

    // A major upgrade to a newer MSI, without any property.
    let old_product = msi_property(&msi, "ProductCode");
    let new_product = msi_property(&newer, "ProductCode");
    assert_ne!(old_product, new_product);
    let upgrade = prefix.wine(&["msiexec", "/i", &text(&newer), "/qn"]);
    assert_eq!(upgrade.code, 0, "{}\n{}", upgrade.stderr, log());
    assert_eq!(
        installed_version(&prefix, &old_product),
        None,
        "the old product is removed"
    );
    assert_eq!(
        installed_version(&prefix, &new_product).as_deref(),
        Some("0.1.1")
    );
    // The upgraded service starts, delivers the waiting report as the same host, and
    // reports again.
    wait_until(
        "the upgraded service delivered the spooled report",
        || stored_report_ids(&collector).contains(&waiting[0]),
        || format!("{}\n{}", log(), collector.log()),
    );
    wait_until(
        "the upgraded service's own report arrived",
        || stored_report_ids(&collector).len() >= 3,
        || format!("{}\n{}", log(), collector.log()),
    );
    assert_eq!(
        fs::read_to_string(state.join("enrollment.json")).unwrap(),
        enrollment,
        "the upgrade kept the enrollment"
    );
    let hosts = collector.stored_reports();
    assert_eq!(hosts.len(), 1, "one host: {hosts:?}");
    assert!(spool_ids(&state.join("spool")).is_empty());
    assert!(
        prefix.local(installed_exe).is_file(),
        "the upgrade installed the program"
    );

    // Uninstall: the service, the program and the MSI's settings go; the state stays.
    let uninstall = prefix.wine(&["msiexec", "/x", &text(&newer), "/qn"]);
    assert_eq!(uninstall.code, 0, "{}\n{}", uninstall.stderr, log());
    assert!(!prefix.local(installed_exe).exists());
    let gone = prefix.wine(&["reg", "query", SERVICE_KEY]);
    assert_ne!(gone.code, 0, "the service is removed: {}", gone.stdout);
    assert_eq!(installed_version(&prefix, &new_product), None);
    let settings = prefix.wine(&["reg", "query", SETTINGS_KEY]);
    assert!(
        !settings.stdout.contains("ServerUrl"),
        "the MSI's settings are removed: {}",
        settings.stdout
    );
    assert_eq!(
        fs::read_to_string(state.join("enrollment.json")).unwrap(),
        enrollment,
        "the state folder is left behind"
    );
    assert!(state.join("logs").is_dir());
}

/// The report ids waiting in a spool folder.
fn spool_ids(spool: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(spool)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json.gz").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

/// Every report id the collector stored.
fn stored_report_ids(collector: &Collector) -> Vec<String> {
    let connection = rusqlite::Connection::open(collector.database()).unwrap();
    let mut statement = connection.prepare("SELECT report_id FROM reports").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn msi_property(msi: &Path, name: &str) -> String {
    let properties = msi_table(msi, "Property");
    properties
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("{name}: {properties}"))
        .trim()
        .to_string()
}

/// The version Windows Installer registered for a product code, if it is installed.
fn installed_version(prefix: &WinePrefix, product_code: &str) -> Option<String> {
    let key = format!(r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\{product_code}");
    let query = prefix.wine(&["reg", "query", &key, "/v", "DisplayVersion"]);
    if query.code != 0 {
        return None;
    }
    query
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("DisplayVersion"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .map(str::to_string)
}
