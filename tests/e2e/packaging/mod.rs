//! The packages school IT admins install, built by `packaging/build-linux.sh` and
//! `packaging/build-msi.sh` from the binaries this test run built: their contents
//! (`dpkg-deb`, `rpm -qp`, `msiinfo`), the debs installed, upgraded, removed and purged
//! in a throwaway root (maintainer scripts included), the systemd units verified, the
//! installed agent's service mode enrolling with a collector over TLS with a pinned CA,
//! and the MSI under Wine in one prefix: installed with its service running and
//! enrolling, the service stopped, a major upgrade to a newer MSI keeping the identity
//! and the spool, and the uninstall leaving the state folder.
//!
//! Here: what both use, and the tests (declared here so that their names stay
//! `packaging::…`); their bodies are in `linux.rs` and `msi.rs`.

mod linux;
mod msi;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use sverka_tests::real_collector::Collector;

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

/// Waits until the collector stored a first report (a service enrolled and delivered),
/// showing the service's `log` and the collector's when it does not.
fn wait_for_first_report(collector: &Collector, log: impl Fn() -> String) {
    wait_for_reports(
        "the service enrolled and its first report was stored",
        collector,
        1,
        log,
    );
}

/// Waits until the collector's first host has `reports` stored reports.
fn wait_for_reports(what: &str, collector: &Collector, reports: i64, log: impl Fn() -> String) {
    wait_until(
        what,
        || {
            collector
                .stored_reports()
                .first()
                .is_some_and(|host| host.1 >= reports)
        },
        || format!("{}\n{}", log(), collector.log()),
    );
}

/// What the Windows service wrote to the log files in its state folder.
fn service_logs(state: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(state.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    text
}

/// Kills the child when dropped (a failed assertion must not leave a service running).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Linux packages' contents, and the debs installed, upgraded, removed and purged.
#[test]
fn linux_packages_hold_the_service_and_install_upgrade_and_purge_cleanly() {
    linux::linux_packages_hold_the_service_and_install_upgrade_and_purge_cleanly();
}

/// No libc, no rpmlib feature rpm 4.11 lacks, xz payloads; a newer glibc refused.
#[test]
fn linux_packages_need_no_libc_and_nothing_old_rpm_and_dpkg_lack() {
    linux::linux_packages_need_no_libc_and_nothing_old_rpm_and_dpkg_lack();
}

/// The agent from the deb enrolls over TLS with a pinned CA.
#[test]
fn the_installed_agent_service_enrolls_over_tls_with_a_pinned_ca() {
    linux::the_installed_agent_service_enrolls_over_tls_with_a_pinned_ca();
}

/// The MSI under Wine: installed, enrolling, upgraded and uninstalled.
#[test]
fn the_msi_installs_enrolls_upgrades_and_uninstalls_under_wine() {
    msi::the_msi_installs_enrolls_upgrades_and_uninstalls_under_wine();
}

/// The Windows 7 MSI under Wine set to Windows 7: installed, its service reporting.
#[test]
fn the_windows_7_msi_installs_and_its_service_reports_on_windows_7() {
    msi::the_windows_7_msi_installs_and_its_service_reports_on_windows_7();
}

/// The 32-bit Windows 7 MSI under a 32-bit Wine set to Windows 7: installed, its
/// service reporting.
#[test]
fn the_32_bit_windows_7_msi_installs_and_its_service_reports_on_windows_7() {
    msi::the_32_bit_windows_7_msi_installs_and_its_service_reports_on_windows_7();
}

/// The x86 MSI on 32-bit Windows under Wine: installed, its service reporting.
#[test]
fn the_x86_msi_installs_and_its_service_reports_on_32_bit_windows() {
    msi::the_x86_msi_installs_and_its_service_reports_on_32_bit_windows();
}
