//! The Linux packages, built from the static musl binaries they ship: their contents,
//! what they need from the system (no libc; only rpmlib features rpm 4.11 has; xz
//! payloads), the refusal of a binary that needs a newer glibc, the debs installed,
//! upgraded, removed and purged in a throwaway root, and the installed agent's service
//! enrolling over TLS.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use sverka_tests::real_collector::Collector;
use sverka_tests::{
    FixtureRoot, Run, agent_binary, require_tool, run_command, shipped_linux_binaries,
};
use tempfile::TempDir;

use super::{ChildGuard, packaging_dir, run_ok, text, wait_for_first_report, wait_for_reports};

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

/// The four Linux packages, built with the given version from the static binaries.
fn build_linux_packages(out: &Path, version: &str) {
    let (agent, collector) = shipped_linux_binaries();
    run_ok(&mut build_linux_command(agent, collector, out, version));
}

fn build_linux_command(agent: &Path, collector: &Path, out: &Path, version: &str) -> Command {
    require_tool("dpkg-deb", "dpkg");
    require_tool("rpmbuild", "rpm");
    require_tool("objdump", "binutils");
    let mut command = Command::new("bash");
    command
        .arg(packaging_dir().join("build-linux.sh"))
        .args(["--agent", &text(agent)])
        .args(["--collector", &text(collector)])
        .args(["--out", &text(out), "--version", version]);
    command
}

/// What rpm 4.11 (RED OS 7.3; ALT has 4.13) provides of the `rpmlib()` features a
/// package may require: the names, without their versions.
const RPMLIB_OF_RPM_4_11: &[&str] = &[
    "rpmlib(CompressedFileNames)",
    "rpmlib(FileDigests)",
    "rpmlib(PayloadFilesHavePrefix)",
    "rpmlib(PayloadIsXz)",
];

/// The packages need no libc (static binaries), no rpmlib feature rpm 4.11 lacks, and
/// their payloads are xz, which rpm 4.11 and Astra Linux 1.7's dpkg 1.19 read; a
/// binary that needs a glibc newer than 2.17 is refused.
pub fn linux_packages_need_no_libc_and_nothing_old_rpm_and_dpkg_lack() {
    let dist = linux_packages();
    let file_tool = require_tool("file", "file");
    for (name, deb, rpm) in [
        (
            "sverka-agent",
            "sverka-agent_0.1.0_amd64.deb",
            "sverka-agent-0.1.0-1.x86_64.rpm",
        ),
        (
            "sverka-collector",
            "sverka-collector_0.1.0_amd64.deb",
            "sverka-collector-0.1.0-1.x86_64.rpm",
        ),
    ] {
        let deb = text(&dist.join(deb));
        let rpm = text(&dist.join(rpm));

        // The binary as packaged: static, no glibc symbol versions, no libraries.
        let unpacked = tempfile::tempdir().unwrap();
        run_ok(Command::new("dpkg-deb").args(["-x", &deb, &text(unpacked.path())]));
        let binary = unpacked.path().join("usr/bin").join(name);
        let kind = run_ok(Command::new(&file_tool).arg(&binary));
        assert!(
            kind.contains("static-pie linked") || kind.contains("statically linked"),
            "{kind}"
        );
        let dynamic = run_command({
            let mut command = Command::new("objdump");
            command.arg("-T").arg(&binary);
            command
        });
        assert!(
            !format!("{}{}", dynamic.stdout, dynamic.stderr).contains("GLIBC_"),
            "{name} needs glibc: {}",
            dynamic.stdout
        );
        let headers = run_ok(Command::new("objdump").arg("-p").arg(&binary));
        assert!(
            !headers.contains("NEEDED"),
            "{name} needs libraries: {headers}"
        );
        // It starts (a static binary of this machine's architecture).
        let help = run_ok(Command::new(&binary).arg("--version"));
        assert!(help.contains(name), "{help}");

        // The deb: no dependency at all, xz members (dpkg 1.19 reads them; not zstd).
        let info = run_ok(Command::new("dpkg-deb").args(["-I", &deb]));
        assert!(
            !info.contains("Depends:"),
            "a static binary needs no package: {info}"
        );
        let members = run_ok(Command::new(require_tool("ar", "binutils")).args(["t", &deb]));
        assert_eq!(
            members.lines().collect::<Vec<_>>(),
            ["debian-binary", "control.tar.xz", "data.tar.xz"],
            "{deb}"
        );

        // The rpm: only /bin/sh (the scriptlets) and rpmlib features of rpm 4.11.
        let requires = run_ok(Command::new("rpm").args(["-qp", "--requires", &rpm]));
        for line in requires.lines() {
            let requirement = line.split_whitespace().next().unwrap_or_default();
            assert!(
                requirement == "/bin/sh" || RPMLIB_OF_RPM_4_11.contains(&requirement),
                "{name}: {line} is not something rpm 4.11 and a bare system have:\n{requires}"
            );
        }
        assert!(requires.contains("rpmlib(PayloadIsXz)"), "{requires}");
        let payload = run_ok(Command::new("rpm").args([
            "-qp",
            "--qf",
            "%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}",
            &rpm,
        ]));
        // xz, and SHA-256 file digests (algorithm 8, rpmlib(FileDigests)).
        assert_eq!(payload, "xz 8", "{name}");
        // rpm 4.11 checks a header by its SHA-1 digest.
        let digest = run_ok(Command::new("rpm").args(["-qp", "--qf", "%{SHA1HEADER}", &rpm]));
        assert_eq!(digest.len(), 40, "{name}: {digest}");
    }

    // This machine's own (glibc) build needs a newer glibc than 2.17: refused.
    let refused = run_command(build_linux_command(
        agent_binary(),
        &shipped_linux_binaries().1,
        tempfile::tempdir().unwrap().path(),
        "0.1.0",
    ));
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("newer than the supported floor 2.17"),
        "{}",
        refused.stderr
    );
}

fn dpkg(root: &Path, args: &[&str]) -> Run {
    let mut command = Command::new("dpkg");
    command
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            // Nothing to depend on (the binaries are static); kept so a dynamically
            // linked build (which depends on libc6) installs in the empty root too.
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

pub fn linux_packages_hold_the_service_and_install_upgrade_and_purge_cleanly() {
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
pub fn the_installed_agent_service_enrolls_over_tls_with_a_pinned_ca() {
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
    wait_for_first_report(&collector, log);
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
    wait_for_reports("the restarted service reported again", &collector, 2, log);
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
