//! What the report says about the machine: its name, its OS from os-release (or the
//! Windows registry), and its machine id (`/etc/machine-id`, or Windows' `MachineGuid`,
//! which the collector uses as the host's identity). Detection never depends on the
//! OS's name; this is for people.

use sverka_shared::HostInfo;

use crate::scan::fsread::read_text_lossy;
use crate::scan::registry::RegistryView;
use crate::scan::root::ScanRoot;
use crate::scan::windows_system::WindowsSystem;

/// The fields of os-release that the report uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub pretty_name: String,
    pub version_id: String,
}

/// Parses os-release (`KEY=value`, values optionally quoted).
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => release.id = value,
            "PRETTY_NAME" => release.pretty_name = value,
            "VERSION_ID" => release.version_id = value,
            "NAME" if release.pretty_name.is_empty() => release.pretty_name = value,
            _ => {}
        }
    }
    release
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .or_else(|| {
            value
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .unwrap_or(value);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

const SMALL_FILE: u64 = 64 * 1024;

fn first_line(root: &ScanRoot, path: &str) -> Option<String> {
    let text = read_text_lossy(&root.path(path), SMALL_FILE).ok()?;
    let line = text.text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// Host facts of a Windows system from its `SOFTWARE` and `SYSTEM` hives.
pub fn describe_windows(
    software: Option<&dyn RegistryView>,
    system: Option<&dyn RegistryView>,
) -> HostInfo {
    let string = |view: Option<&dyn RegistryView>, key: &str, value: &str| {
        view.and_then(|view| view.read_key(key).ok().flatten())
            .and_then(|key| key.string(value).ok().flatten())
    };
    let current = "Microsoft\\Windows NT\\CurrentVersion";
    let version = string(software, current, "DisplayVersion")
        .or_else(|| string(software, current, "CurrentVersion"));
    let build = string(software, current, "CurrentBuild");
    HostInfo {
        hostname: string(
            system,
            "ControlSet001\\Control\\ComputerName\\ComputerName",
            "ComputerName",
        )
        .unwrap_or_default(),
        os_id: "windows".into(),
        os_name: string(software, current, "ProductName").unwrap_or_default(),
        os_version: match (version, build) {
            (Some(version), Some(build)) => format!("{version} (build {build})"),
            (version, build) => version.or(build).unwrap_or_default(),
        },
        machine_id: string(software, "Microsoft\\Cryptography", "MachineGuid"),
        scanned_root: None,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

pub fn describe(root: &ScanRoot, windows: Option<&WindowsSystem>) -> HostInfo {
    if let Some(windows) = windows {
        let mut host = describe_windows(windows.software.as_deref(), windows.system.as_deref());
        if root.is_live() {
            if let Ok(name) = sysinfo::System::host_name() {
                host.hostname = name;
            }
        } else {
            host.scanned_root = Some(root.root().to_string_lossy().into_owned());
        }
        return host;
    }
    let release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| read_text_lossy(&root.path(path), SMALL_FILE).ok())
        .map(|text| parse_os_release(&text.text))
        .unwrap_or_default();
    let hostname = if root.is_live() {
        sysinfo::System::host_name()
            .ok()
            .or_else(|| first_line(root, "/etc/hostname"))
            .unwrap_or_default()
    } else {
        first_line(root, "/etc/hostname").unwrap_or_default()
    };
    HostInfo {
        hostname,
        os_id: release.id,
        os_name: release.pretty_name,
        os_version: release.version_id,
        machine_id: first_line(root, "/etc/machine-id"),
        scanned_root: (!root.is_live()).then(|| root.root().to_string_lossy().into_owned()),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_of_the_russian_distributions() {
        let astra = parse_os_release(
            "PRETTY_NAME=\"Astra Linux\"\nNAME=\"Astra Linux\"\nID=astra\nVERSION_ID=1.7_x86-64\n",
        );
        assert_eq!(
            (astra.id.as_str(), astra.pretty_name.as_str()),
            ("astra", "Astra Linux")
        );
        let alt = parse_os_release("NAME=\"ALT Workstation\"\nID=altlinux\nVERSION_ID=10.2\n");
        assert_eq!(
            (alt.id.as_str(), alt.pretty_name.as_str()),
            ("altlinux", "ALT Workstation")
        );
        let redos = parse_os_release(
            "NAME='RED OS'\nID='redos'\nVERSION_ID='7.3'\nPRETTY_NAME='RED OS MUROM (7.3.4)'\n",
        );
        assert_eq!(
            (redos.id.as_str(), redos.version_id.as_str()),
            ("redos", "7.3")
        );
        assert_eq!(redos.pretty_name, "RED OS MUROM (7.3.4)");
    }
}
