//! Leftover data folders (`~/.local/share/TelegramDesktop`, `~/.ViberPC`, a flatpak's
//! `~/.var/app/<id>`): checked for existence only, never opened. They are traces: the
//! application was used by this profile, and may have been removed since.

use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};

use super::{EvidenceSource, ScanContext, SourceOutput};

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
                let is_folder = std::fs::symlink_metadata(local)
                    .map(|metadata| metadata.is_dir())
                    .unwrap_or(false);
                if is_folder {
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
