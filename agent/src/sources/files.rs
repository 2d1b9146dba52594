//! Portable copies: program files found by bounded walks over every user's home and
//! over `/opt` and `/usr/local` (tarballs, AppImages, unpacked zips, also in localized
//! folders such as `~/Загрузки`). Walks never follow symbolic links, stop at a depth
//! and an entry limit (and say so), and read at most the first 16 bytes of a file whose
//! name the catalog asks about, to tell a program from anything else.

use std::path::Path;
use sverka_shared::observation::FileFormat;
use sverka_shared::{Observation, Observed, Scope, SourceKind, Strength};
use walkdir::WalkDir;

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::fsread::read_header;

pub const MACHINE_FOLDERS: &[&str] = &["/opt", "/usr/local"];
/// Folders that language toolchains and package managers own and fill with tens of
/// thousands of files, none of them a messenger. Walks do not enter them unless
/// `prune_toolchains` is off (`--walk-everything`). A copy hidden in one of them is still
/// found when it runs.
pub const TOOLCHAIN_FOLDERS: &[&str] = &[
    ".cargo",
    ".rustup",
    ".pyenv",
    ".rbenv",
    ".nvm",
    ".npm",
    ".m2",
    ".gradle",
    ".git",
    "node_modules",
    "__pycache__",
    "site-packages",
];
const HEADER_BYTES: usize = 16;

#[derive(Debug)]
pub struct PortableFileSource;

impl EvidenceSource for PortableFileSource {
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        for folder in MACHINE_FOLDERS {
            walk(context, folder, None, output);
        }
        for user in &context.profiles.users {
            walk(context, &user.home, Some(&user.name), output);
        }
    }
}

/// Walks one folder of the scanned system.
pub fn walk(
    context: &ScanContext<'_>,
    folder: &str,
    user: Option<&str>,
    output: &mut SourceOutput,
) {
    let start = context.root.path(folder);
    if !start.is_dir() {
        return;
    }
    let mut visited: u64 = 0;
    let mut unreadable: u64 = 0;
    let mut first_unreadable = None;
    let prune = context.limits.prune_toolchains;
    let walker = WalkDir::new(&start)
        .follow_links(false)
        .max_depth(context.limits.max_depth)
        .same_file_system(context.root.is_live())
        .into_iter()
        .filter_entry(|entry| {
            !(prune
                && entry.depth() > 0
                && entry.file_type().is_dir()
                && entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| TOOLCHAIN_FOLDERS.contains(&name)))
        });
    for entry in walker {
        visited += 1;
        if visited > context.limits.max_entries {
            output.error(
                SourceKind::File,
                Some(folder.to_string()),
                format!(
                    "walk stopped after {} entries; files deeper in this folder were not checked",
                    context.limits.max_entries
                ),
            );
            break;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                unreadable += 1;
                first_unreadable.get_or_insert_with(|| {
                    let path = error
                        .path()
                        .map(|path| context.root.display(path))
                        .unwrap_or_default();
                    let reason = error
                        .io_error()
                        .map(|io| io.to_string())
                        .unwrap_or_else(|| error.to_string());
                    format!("{path}: {reason}")
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy();
        if !context.matcher.wants_file_name(&file_name) {
            continue;
        }
        if let Some(observation) = program_file(context, entry.path(), &file_name, user) {
            output.observations.push(observation);
        }
    }
    if unreadable > 0 {
        output.error(
            SourceKind::File,
            Some(folder.to_string()),
            format!(
                "{unreadable} folder(s) or file(s) could not be read (first: {})",
                first_unreadable.unwrap_or_default()
            ),
        );
    }
}

fn program_file(
    context: &ScanContext<'_>,
    local: &Path,
    file_name: &str,
    user: Option<&str>,
) -> Option<Observation> {
    let header = read_header(local, HEADER_BYTES).ok()?;
    let format = FileFormat::sniff(&header)?;
    Some(Observation {
        observed: Observed::File {
            file_name: file_name.to_string(),
            format,
            version_info: None,
        },
        path: Some(context.root.display(local)),
        user: user.map(str::to_string),
        scope: Scope::of_profile(&user),
        strength: Strength::Installed,
    })
}
