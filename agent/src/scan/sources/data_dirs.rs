//! Leftover data folders (`~/.local/share/TelegramDesktop`, `~/.ViberPC`, a flatpak's
//! `~/.var/app/<id>`): checked for existence only, never opened. They are traces: the
//! application was used by this profile, and may have been removed since. The
//! folder's own modification time (read with its metadata, as its existence is) is
//! evidence of last use; nothing inside it is listed or read.

use sverka_shared::{LastUseSource, Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::last_use::{UseMark, UseSubject};

#[derive(Debug)]
pub struct DataDirSource;

impl EvidenceSource for DataDirSource {
    fn kind(&self) -> SourceKind {
        SourceKind::DataDir
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        let mut folders: Vec<&str> = context
            .matcher
            .data_dirs()
            .map(|(_, folder)| folder)
            .collect();
        folders.sort_unstable();
        folders.dedup();
        let windows = context.windows.is_some();
        for user in &context.profiles.users {
            for folder in &folders {
                // On Windows the folder is written with `\` and found without regard to
                // case (`AppData/Local/max` is `C:\Users\anna\AppData\Local\max`).
                let (shown, local) = if windows {
                    let shown = format!(
                        "{}\\{}",
                        user.home.trim_end_matches('\\'),
                        folder.replace('/', "\\")
                    );
                    let local = context.root.windows_path(&shown);
                    (shown, local)
                } else {
                    let shown = format!("{}/{folder}", user.home);
                    let local = context.root.path(&shown);
                    (shown, local)
                };
                let Ok(metadata) = std::fs::symlink_metadata(local) else {
                    continue;
                };
                if metadata.is_dir() {
                    // The folder's own time (what changed in it last), never a file's.
                    if let Ok(modified) = metadata.modified() {
                        output.uses.push(UseMark {
                            at: modified,
                            source: LastUseSource::DataDir,
                            subject: UseSubject::Evidence {
                                kind: SourceKind::DataDir,
                                path: shown.clone(),
                            },
                        });
                    }
                    output.observations.push(Observation {
                        observed: Observed::DataDir {
                            relative_path: folder.to_string(),
                        },
                        path: Some(shown),
                        user: Some(user.name.clone()),
                        scope: Scope::User,
                        strength: Strength::Trace,
                    });
                }
            }
        }
    }
}
