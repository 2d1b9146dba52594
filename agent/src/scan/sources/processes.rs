//! Running processes (through `sysinfo`): name, executable path and owner. Only the
//! processes the catalog knows are reported. An offline scan of an image has no
//! processes, and says so. On Windows each executable's version resource is read too,
//! so a renamed portable copy running from an odd folder is recognised. A live scan
//! also reads the service's record of programs seen running between scans
//! ([`crate::scan::seen_running`]), evidence of last use.

use sverka_shared::observation::VersionInfo;
use sverka_shared::report::SkippedSource;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::formats::pe;
use crate::scan::seen_running;

/// What the agent knows of one running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSnapshot {
    pub pid: u32,
    pub name: String,
    pub executable: Option<String>,
    pub uid: Option<u32>,
    /// Windows: the owner's SID.
    pub sid: Option<String>,
}

/// Whether a Windows SID is a person's account (not SYSTEM or a service).
pub fn is_person_sid(sid: &str) -> bool {
    sid.starts_with("S-1-5-21-") || sid.starts_with("S-1-12-1-")
}

/// Turns a process into an observation; the owner is named from the scanned users.
pub fn process_observation(
    process: ProcessSnapshot,
    user_name: Option<String>,
    version_info: Option<VersionInfo>,
) -> Observation {
    let executable = process
        .executable
        .map(|path| path.trim_end_matches(" (deleted)").to_string())
        .filter(|path| !path.is_empty());
    let is_person = process.uid.is_some_and(|uid| uid != 0)
        || process.sid.as_deref().is_some_and(is_person_sid);
    let user = user_name
        .or_else(|| process.uid.map(|uid| format!("uid {uid}")))
        .or_else(|| process.sid.clone());
    Observation {
        path: executable.clone(),
        observed: Observed::Process {
            pid: process.pid,
            name: process.name,
            executable,
            version_info,
        },
        scope: if is_person {
            Scope::User
        } else {
            Scope::Machine
        },
        user: user.filter(|_| is_person),
        strength: Strength::Running,
    }
}

/// Reads the process table of the running system.
pub fn snapshot() -> Result<Vec<ProcessSnapshot>, String> {
    snapshot_with(true)
}

/// Reads the process table with names and executable paths only (no owners): the
/// service's cheap check between scans.
pub fn snapshot_without_owners() -> Result<Vec<ProcessSnapshot>, String> {
    snapshot_with(false)
}

fn snapshot_with(owners: bool) -> Result<Vec<ProcessSnapshot>, String> {
    let mut system =
        System::new().map_err(|error| format!("cannot read the process table: {error}"))?;
    let kind = ProcessRefreshKind::nothing()
        .without_tasks()
        .with_exe(UpdateKind::OnlyIfNotSet);
    let kind = if owners {
        kind.with_user(UpdateKind::OnlyIfNotSet)
    } else {
        kind
    };
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    Ok(system
        .processes()
        .values()
        .filter(|process| process.thread_kind().is_none())
        .map(|process| ProcessSnapshot {
            pid: process.pid().as_u32(),
            name: process.name().to_string_lossy().into_owned(),
            executable: process
                .exe()
                .filter(|path| !path.as_os_str().is_empty())
                .map(|path| path.to_string_lossy().into_owned())
                .or_else(|| image_path_of(process.pid().as_u32())),
            uid: process
                .user_id()
                .and_then(|uid| uid.to_string().parse().ok()),
            sid: process
                .user_id()
                .map(|uid| uid.to_string())
                .filter(|owner| owner.starts_with("S-1-")),
        })
        .collect())
}

/// The executable of a process whose path `sysinfo` could not give (it gives none or an
/// empty one). On Windows that is
/// a 64-bit process seen by a 32-bit agent: `sysinfo` reads the path from the process's
/// own memory, which a 32-bit program cannot; `QueryFullProcessImageNameW` asks the
/// kernel, across bitness. Elsewhere there is nothing more to ask.
#[cfg(windows)]
fn image_path_of(pid: u32) -> Option<String> {
    windows_image_path::of(pid)
}

#[cfg(not(windows))]
fn image_path_of(_pid: u32) -> Option<String> {
    None
}

#[cfg(windows)]
mod windows_image_path {
    #![allow(unsafe_code)]

    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
        QueryFullProcessImageNameW,
    };

    /// The longest path Windows gives (`\\?\` paths), in UTF-16 units.
    const LONGEST_PATH: usize = 32_768;

    pub fn of(pid: u32) -> Option<String> {
        // SAFETY: OpenProcess takes plain values; a null handle is checked below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            return None;
        }
        let mut buffer = vec![0u16; LONGEST_PATH];
        let mut length = LONGEST_PATH as u32;
        // SAFETY: the buffer holds `length` UTF-16 units and outlives the call; the
        // handle was opened above and is closed once, right after.
        let succeeded = unsafe {
            QueryFullProcessImageNameW(handle, PROCESS_NAME_WIN32, buffer.as_mut_ptr(), &mut length)
        };
        // SAFETY: the handle is valid and not used after this.
        unsafe { CloseHandle(handle) };
        let path = buffer.get(..length as usize)?;
        (succeeded != 0 && !path.is_empty()).then(|| String::from_utf16_lossy(path))
    }
}

#[derive(Debug)]
pub struct ProcessSource;

impl EvidenceSource for ProcessSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Process
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        if !context.root.is_live() {
            output.skipped.push(SkippedSource {
                source: SourceKind::Process,
                reason: "offline scan of an image: there are no running processes to inspect"
                    .into(),
            });
            return;
        }
        let processes = match snapshot() {
            Ok(processes) => processes,
            Err(message) => {
                output.error(SourceKind::Process, None, message);
                return;
            }
        };
        if let Some(record) = context.seen_running {
            match seen_running::read_record(record) {
                Ok(record) => output.uses.extend(record.marks()),
                Err(message) => output.error(
                    SourceKind::Process,
                    Some(record.display().to_string()),
                    format!(
                        "the record of programs seen running between scans is damaged ({message}); treated as empty"
                    ),
                ),
            }
        }
        let read_versions = context.windows.is_some();
        for process in processes {
            let owner = process
                .uid
                .and_then(|uid| context.profiles.names_by_uid.get(&uid).cloned())
                .or_else(|| {
                    let sid = process.sid.as_ref()?;
                    context.profiles.names_by_sid.get(sid).cloned()
                });
            let version_info = process
                .executable
                .as_deref()
                .filter(|_| read_versions)
                // A 32-bit agent on 64-bit Windows reaches System32 as Sysnative.
                .and_then(|executable| {
                    pe::read_version_info(&context.root.windows_path(executable)).ok()
                })
                .flatten();
            let observation = process_observation(process, owner, version_info);
            if !context.matcher.hits_for(&observation).is_empty() {
                output.observations.push(observation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_deleted_executables() {
        let observation = process_observation(
            ProcessSnapshot {
                pid: 7,
                name: "Telegram".into(),
                executable: Some("/home/anna/Telegram/Telegram (deleted)".into()),
                uid: Some(1000),
                sid: None,
            },
            Some("anna".into()),
            None,
        );
        assert_eq!(observation.user.as_deref(), Some("anna"));
        assert_eq!(observation.scope, Scope::User);
        assert_eq!(
            observation.path.as_deref(),
            Some("/home/anna/Telegram/Telegram")
        );
        let system = process_observation(
            ProcessSnapshot {
                pid: 1,
                name: "init".into(),
                executable: None,
                uid: Some(0),
                sid: None,
            },
            Some("root".into()),
            None,
        );
        assert_eq!((system.scope, system.user), (Scope::Machine, None));
        let windows = process_observation(
            ProcessSnapshot {
                pid: 9,
                name: "homework.exe".into(),
                executable: Some("C:\\Users\\anna\\Music\\homework.exe".into()),
                uid: None,
                sid: Some("S-1-5-21-1-2-3-1001".into()),
            },
            Some("anna".into()),
            None,
        );
        assert_eq!(
            (windows.scope, windows.user.as_deref()),
            (Scope::User, Some("anna"))
        );
    }
}
