//! Running processes (through `sysinfo`): name, executable path and owner. Only the
//! processes the catalog knows are reported. An offline scan of an image has no
//! processes, and says so.

use sverka_shared::report::SkippedSource;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{EvidenceSource, ScanContext, SourceOutput};

/// What the agent knows of one running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSnapshot {
    pub pid: u32,
    pub name: String,
    pub executable: Option<String>,
    pub uid: Option<u32>,
}

/// Turns a process into an observation; the owner is named from the scanned users.
pub fn process_observation(process: ProcessSnapshot, user_name: Option<String>) -> Observation {
    let executable = process
        .executable
        .map(|path| path.trim_end_matches(" (deleted)").to_string())
        .filter(|path| !path.is_empty());
    let user = user_name.or_else(|| process.uid.map(|uid| format!("uid {uid}")));
    Observation {
        path: executable.clone(),
        observed: Observed::Process {
            pid: process.pid,
            name: process.name,
            executable,
            version_info: None,
        },
        scope: if process.uid.is_some_and(|uid| uid != 0) {
            Scope::User
        } else {
            Scope::Machine
        },
        user: user.filter(|_| process.uid.is_some_and(|uid| uid != 0)),
        strength: Strength::Running,
    }
}

/// Reads the process table of the running system.
pub fn snapshot() -> Result<Vec<ProcessSnapshot>, String> {
    let mut system =
        System::new().map_err(|error| format!("cannot read the process table: {error}"))?;
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .without_tasks()
            .with_exe(UpdateKind::OnlyIfNotSet)
            .with_user(UpdateKind::OnlyIfNotSet),
    );
    Ok(system
        .processes()
        .values()
        .filter(|process| process.thread_kind().is_none())
        .map(|process| ProcessSnapshot {
            pid: process.pid().as_u32(),
            name: process.name().to_string_lossy().into_owned(),
            executable: process
                .exe()
                .map(|path| path.to_string_lossy().into_owned()),
            uid: process
                .user_id()
                .and_then(|uid| uid.to_string().parse().ok()),
        })
        .collect())
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
        for process in processes {
            let owner = process
                .uid
                .and_then(|uid| context.profiles.names_by_uid.get(&uid).cloned());
            let observation = process_observation(process, owner);
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
            },
            Some("anna".into()),
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
            },
            Some("root".into()),
        );
        assert_eq!((system.scope, system.user), (Scope::Machine, None));
    }
}
