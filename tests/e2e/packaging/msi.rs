//! The MSI under Wine in one prefix: its tables, installed with its service running
//! and enrolling, the service stopped, a major upgrade to a newer MSI keeping the
//! identity and the spool, and the uninstall leaving the state folder. The x86 MSI on
//! 32-bit Windows (a `WINEARCH=win32` prefix): installed, its service enrolling and
//! reporting, its agent finding what the prefix holds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use sverka_tests::real_collector::Collector;
use sverka_tests::windows::{
    Version, WindowsTarget, WinePrefix, agent_exe, agent_exe_for, program_with_version,
};
use sverka_tests::{finding, require_tool};

use super::{
    ChildGuard, packaging_dir, run_ok, service_logs, text, wait_for_first_report, wait_until,
};

fn build_msi(out: &Path, version: &str) -> PathBuf {
    build_msi_for(out, version, WindowsTarget::X64)
}

/// The MSI of `target`'s agent: `sverka-agent-<V>.msi` (x64), `...-x86.msi`,
/// `...-win7-x64.msi` or `...-win7-x86.msi`.
fn build_msi_for(out: &Path, version: &str, target: WindowsTarget) -> PathBuf {
    require_tool("wixl", "wixl");
    let (arch, suffix) = match target {
        WindowsTarget::X64 => ("x64", ""),
        WindowsTarget::X86 => ("x86", "-x86"),
        WindowsTarget::Win7X64 => ("win7-x64", "-win7-x64"),
        WindowsTarget::Win7X86 => ("win7-x86", "-win7-x86"),
    };
    run_ok(
        Command::new("bash")
            .arg(packaging_dir().join("build-msi.sh"))
            .args(["--arch", arch, "--exe", &text(agent_exe_for(target))])
            .args(["--out", &text(out), "--version", version]),
    );
    out.join(format!("sverka-agent-{version}{suffix}.msi"))
}

/// The MSI writes the four properties Group Policy passes (the collector's address, the
/// school's secret, the CA file, plain HTTP allowed) to the agent's registry settings.
fn assert_group_policy_properties(msi: &Path) {
    let registry = msi_table(msi, "Registry");
    for value in [
        "[SERVER_URL]",
        "[ENROLL_SECRET]",
        "[CA_FILE]",
        "[ALLOW_HTTP]",
    ] {
        assert!(registry.contains(value), "{value}: {registry}");
    }
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

pub fn the_msi_installs_enrolls_upgrades_and_uninstalls_under_wine() {
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
    assert_group_policy_properties(&msi);
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

    // The collector's own edit of the same MSI (the enrollment page's "MSI with this
    // school's settings") gives the same rows and keeps every table.
    let edited = sverka_collector::web::installers::msi_with_settings(
        fs::read(&msi).unwrap(),
        &[
            ("SERVER_URL", "https://sverka.edu.example".to_string()),
            ("ENROLL_SECRET", "7.abc".to_string()),
        ],
    )
    .unwrap();
    let collector_msi = dist.path().join("collector-edited.msi");
    fs::write(&collector_msi, edited).unwrap();
    assert_eq!(msi_tables(&collector_msi), tables);
    let collector_properties = msi_table(&collector_msi, "Property");
    for row in [
        "SERVER_URL\thttps://sverka.edu.example",
        "ENROLL_SECRET\t7.abc",
        "ProductVersion\t0.1.0",
        "MsiHiddenProperties\tENROLL_SECRET",
    ] {
        assert!(
            collector_properties.contains(row),
            "{row}: {collector_properties}"
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
    let _keeper = ChildGuard(prefix.spawn_service_keeper());
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
    let log = || service_logs(&state);
    wait_for_first_report(&collector, log);
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
    let upgrade = prefix.wine(&[
        "msiexec",
        "/i",
        &text(&newer),
        "/qn",
        "/l*v",
        r"C:\sverka\upgrade.log",
    ]);
    let upgrade_log = || {
        fs::read(prefix.local(r"C:\sverka\upgrade.log"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(upgrade.code, 0, "{}\n{}", upgrade.stderr, upgrade_log());
    // Wine's msiexec has returned before the new product's registration could be
    // read in one CI run out of many (the old one was already gone): the
    // registration is waited for, with the installer's own log if it never comes.
    wait_until(
        "the upgrade registered the new product",
        || installed_version(&prefix, &new_product).as_deref() == Some("0.1.1"),
        || format!("{}\n{}", upgrade_log(), log()),
    );
    assert_eq!(
        installed_version(&prefix, &old_product),
        None,
        "the old product is removed"
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
    // The agent removes a spooled report only after the collector has stored it:
    // the file may outlive the stored row by a moment.
    wait_until(
        "the delivered reports left the spool",
        || spool_ids(&state.join("spool")).is_empty(),
        || format!("{:?}\n{}", spool_ids(&state.join("spool")), log()),
    );
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

/// The x86 MSI on 32-bit Windows: a 32-bit package with the same Group Policy
/// properties, installed by msiexec with them; its service starts, enrolls and reports,
/// and its agent finds the machine's and the user's uninstall keys and a program in
/// `Program Files`.
pub fn the_x86_msi_installs_and_its_service_reports_on_32_bit_windows() {
    let dist = tempfile::tempdir().unwrap();
    let msi = build_msi_for(dist.path(), "0.1.0", WindowsTarget::X86);
    let summary = run_ok(
        Command::new(require_tool("msiinfo", "msitools"))
            .arg("suminfo")
            .arg(&msi),
    );
    assert!(summary.contains("Template: Intel;1033"), "{summary}");
    let directories = msi_table(&msi, "Directory");
    assert!(
        directories.contains("INSTALLDIR\tProgramFilesFolder\tSverka"),
        "{directories}"
    );
    let components = msi_table(&msi, "Component");
    assert!(
        components.contains("AgentExe\t{3C8E1F0A-2B4D-4F6A-8E1C-5D7B9A0C2E41}\tINSTALLDIR\t0\t"),
        "a 32-bit component: {components}"
    );
    // The same properties as the x64 MSI (Group Policy passes them to either), and
    // its upgrade code, so either replaces the other.
    assert_group_policy_properties(&msi);
    assert!(
        msi_property(&msi, "MsiHiddenProperties").contains("ENROLL_SECRET"),
        "the secret kept out of the log"
    );
    let wxs = fs::read_to_string(packaging_dir().join("windows/sverka-agent.wxs")).unwrap();
    let upgrade_code = msi_property(&msi, "UpgradeCode");
    assert!(
        wxs.contains(&format!(
            "UpgradeCode=\"{}\"",
            upgrade_code.trim_matches(['{', '}'])
        )),
        "{upgrade_code}"
    );

    installs_and_its_service_reports(&msi, WindowsTarget::X86, WinePrefix::win32());
}

/// The Windows 7 MSI (the x64 MSI around the agent built for x86_64-win7-windows-gnu)
/// in a Wine prefix set to Windows 7 SP1, without the `ProcessPrng` stand-in: installed,
/// its service enrolling and reporting, its own scan finding the programs.
pub fn the_windows_7_msi_installs_and_its_service_reports_on_windows_7() {
    windows_7_msi_installs_and_its_service_reports(WindowsTarget::Win7X64);
}

/// The same for the 32-bit Windows 7 MSI (i686-win7-windows-gnu) in a 32-bit prefix.
pub fn the_32_bit_windows_7_msi_installs_and_its_service_reports_on_windows_7() {
    windows_7_msi_installs_and_its_service_reports(WindowsTarget::Win7X86);
}

fn windows_7_msi_installs_and_its_service_reports(target: WindowsTarget) {
    let (name, template) = match target {
        WindowsTarget::Win7X64 => ("sverka-agent-0.1.0-win7-x64.msi", "x64;1033"),
        WindowsTarget::Win7X86 => ("sverka-agent-0.1.0-win7-x86.msi", "Intel;1033"),
        other => panic!("{other:?} is not a Windows 7 build"),
    };
    let prefix = WinePrefix::with_arch(target.wine_arch());
    let dist = tempfile::tempdir().unwrap();
    let msi = build_msi_for(dist.path(), "0.1.0", target);
    assert!(msi.ends_with(name), "{}", msi.display());
    let summary = run_ok(
        Command::new(require_tool("msiinfo", "msitools"))
            .arg("suminfo")
            .arg(&msi),
    );
    assert!(
        summary.contains(&format!("Template: {template}")),
        "{summary}"
    );
    assert_group_policy_properties(&msi);
    let version = prefix.wine(&["winecfg", "-v", "win7"]);
    assert_eq!(version.code, 0, "{}", version.stderr);
    installs_and_its_service_reports(&msi, target, prefix);
}

/// Installs `msi` of `target`'s agent into `prefix` with a collector's address and a
/// school's secret: the service enrolls and its first report shows the programs put
/// there, and the installed agent's own scan finds them.
fn installs_and_its_service_reports(msi: &Path, target: WindowsTarget, prefix: WinePrefix) {
    let collector = Collector::start();
    let school = collector.add_org("Школа №11", "school", None);
    let secret = collector.secret(school);
    prefix.registry(
        r#"[HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Uninstall\{0F2C5D1E-7B3A-4C9D-8E1F-2A3B4C5D6E7F}]
"DisplayName"="Viber"
"DisplayVersion"="24.1.0.0"

[HKEY_LOCAL_MACHINE\Software\Classes\Installer\UpgradeCodes\E191C3CC91143BA419A769AE8C77E406]
"E1D5C2F0A3B7D9C4E8F1A2B3C4D5E6F7"=""

[HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Uninstall\{53F49750-6209-4FBF-9CA8-7A333C87D1ED}_is1]
"DisplayName"="Telegram Desktop"
"Publisher"="Telegram FZ-LLC"
"#,
    );
    const LYNC: Version<'static> = Version {
        company: "Microsoft Corporation",
        product: "Microsoft Office",
        original_filename: "Lync.exe",
        description: "Skype for Business",
    };
    prefix.file(
        r"C:\Program Files\Microsoft Office\root\Office16\lync.exe",
        program_with_version(&LYNC),
    );
    // Rust's std for Windows 10 needs `ProcessPrng`, which Wine 8 lacks; the Windows 7
    // build does not call it.
    if !target.is_windows_7() {
        prefix.copy(
            &agent_exe_for(target).with_file_name("bcryptprimitives.dll"),
            r"C:\Program Files\Sverka\bcryptprimitives.dll",
        );
    }
    prefix.file(r"C:\ProgramData\Sverka\agent.toml", "max_delay = \"0s\"\n");
    let _keeper = ChildGuard(prefix.spawn_service_keeper());
    let install = prefix.wine(&[
        "msiexec",
        "/i",
        &text(msi),
        "/qn",
        &format!("SERVER_URL={}", collector.url()),
        &format!("ENROLL_SECRET={secret}"),
        "ALLOW_HTTP=1",
    ]);
    assert_eq!(install.code, 0, "{}", install.stderr);
    let installed_exe = r"C:\Program Files\Sverka\sverka-agent.exe";
    assert!(prefix.local(installed_exe).is_file());
    let state = prefix.local(r"C:\ProgramData\Sverka");
    let log = || service_logs(&state);
    wait_for_first_report(&collector, log);
    let violations = collector.violations(school, false).to_string();
    for app in ["viber", "telegram"] {
        assert!(violations.contains(app), "{app}: {violations}");
    }

    // The installed agent's own scan.
    let scan = prefix.wine(&[installed_exe, "scan", "--format", "json"]);
    let report = scan.json();
    assert_eq!(scan.code, 1, "{report:#}");
    assert_eq!(report["host"]["os_id"], "windows");
    for (app, source) in [
        ("viber", "uninstall_key"),
        ("telegram", "uninstall_key"),
        ("skype_for_business", "file"),
    ] {
        let found = finding(&report, app).unwrap_or_else(|| panic!("no {app}: {report:#}"));
        assert!(found.to_string().contains(source), "{found:#}");
    }
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
