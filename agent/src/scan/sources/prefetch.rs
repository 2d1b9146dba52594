//! Windows Prefetch entries (`C:\Windows\Prefetch\TELEGRAM.EXE-1A2B3C4D.pf`): Windows
//! writes one for a program when it starts, so the file's modification time tells
//! when the program last ran. Only the folder is listed and each entry's time read;
//! no Prefetch file is ever opened. An entry names only the program's file name (cut
//! to 29 characters), which [`CatalogMatcher::apps_of_windows_program`] ties to
//! catalog applications; it becomes evidence of last use ([`UseMark`]) for a finding
//! the other sources made, never a finding of its own.

use std::time::SystemTime;
use sverka_shared::{CatalogMatcher, Evidence, LastUseSource, SourceKind};

use super::{EvidenceSource, ScanContext, SourceOutput};
use crate::scan::last_use::{UseMark, UseSubject};

/// Where Windows keeps its Prefetch files.
pub const PREFETCH_FOLDER: &str = "C:\\Windows\\Prefetch";
/// Windows keeps at most 1,024 entries; a folder with far more is not read further.
const MAX_ENTRIES: usize = 16_384;
/// How many characters of a program's name a Prefetch file name keeps.
const NAME_LIMIT: usize = 29;

/// A Prefetch file name taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchName<'a> {
    /// The program's file name as Windows wrote it (upper case): `TELEGRAM.EXE`.
    pub program: &'a str,
    /// The name may be cut: it is as long as Windows keeps.
    pub cut: bool,
}

/// `TELEGRAM.EXE-1A2B3C4D.pf` → `TELEGRAM.EXE`: a program name, a dash, eight hex
/// digits (a hash of the program's path), `.pf` in any case. Anything else is `None`.
pub fn parse_prefetch_name(file_name: &str) -> Option<PrefetchName<'_>> {
    let split = file_name.len().checked_sub(3)?;
    let (stem, suffix) = (file_name.get(..split)?, file_name.get(split..)?);
    if !suffix.eq_ignore_ascii_case(".pf") {
        return None;
    }
    let (program, hash) = stem.rsplit_once('-')?;
    if hash.len() != 8 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    if program.is_empty() {
        return None;
    }
    Some(PrefetchName {
        program,
        cut: program.chars().count() >= NAME_LIMIT,
    })
}

/// The marks a Prefetch entry makes: one per catalog application its program is.
pub fn prefetch_marks(
    matcher: &CatalogMatcher,
    file_name: &str,
    shown_path: &str,
    modified: SystemTime,
) -> Vec<UseMark> {
    let Some(name) = parse_prefetch_name(file_name) else {
        return Vec::new();
    };
    let apps = &matcher.catalog().apps;
    matcher
        .apps_of_windows_program(name.program, name.cut)
        .into_iter()
        .filter_map(|index| apps.get(index))
        .map(|app| UseMark {
            at: modified,
            source: LastUseSource::Prefetch,
            subject: UseSubject::App {
                app: app.id.clone(),
                evidence: Evidence::machine_trace(
                    SourceKind::File,
                    format!("Prefetch entry {file_name}: {} ran", name.program),
                    Some(shown_path.to_string()),
                ),
            },
        })
        .collect()
}

#[derive(Debug)]
pub struct PrefetchSource;

impl EvidenceSource for PrefetchSource {
    /// Prefetch files are files; their evidence is `file` evidence.
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn collect(&self, context: &ScanContext<'_>, output: &mut SourceOutput) {
        if context.windows.is_none() {
            return;
        }
        let Some(entries) = output.list_folder_windows(context, SourceKind::File, PREFETCH_FOLDER)
        else {
            return;
        };
        for entry in entries.take(MAX_ENTRIES) {
            let Ok(entry) = entry else { continue };
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if parse_prefetch_name(&file_name).is_none() {
                continue;
            }
            let shown = format!("{PREFETCH_FOLDER}\\{file_name}");
            // The entry's own metadata (no link followed, the file never opened).
            let modified = entry.metadata().and_then(|metadata| metadata.modified());
            match modified {
                Ok(modified) => output.uses.extend(prefetch_marks(
                    context.matcher,
                    &file_name,
                    &shown,
                    modified,
                )),
                Err(error) => output.error(
                    SourceKind::File,
                    Some(shown),
                    format!("cannot read the Prefetch entry's time: {error}"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use sverka_shared::Catalog;
    use sverka_shared::Strength;

    #[test]
    fn prefetch_names() {
        let check = |file_name: &str, expected: Option<(&str, bool)>| {
            assert_eq!(
                parse_prefetch_name(file_name).map(|name| (name.program, name.cut)),
                expected,
                "{file_name}"
            );
        };
        check("TELEGRAM.EXE-1A2B3C4D.pf", Some(("TELEGRAM.EXE", false)));
        check("TELEGRAM.EXE-1a2b3c4d.PF", Some(("TELEGRAM.EXE", false)));
        check("MY-TOOL.EXE-0000FFFF.pf", Some(("MY-TOOL.EXE", false)));
        check(
            "TELEGRAM DESKTOP PORTABLE VER-12345678.pf",
            Some(("TELEGRAM DESKTOP PORTABLE VER", true)),
        );
        check("Layout.ini", None);
        check("TELEGRAM.EXE-1A2B3C4.pf", None);
        check("TELEGRAM.EXE-1A2B3C4G.pf", None);
        check("TELEGRAM.EXE.pf", None);
        check("-1A2B3C4D.pf", None);
        check("AgAppLaunch.db", None);
        check(".pf", None);
        check("пф", None);
        check("ТЕЛЕГРАМ.EXE-1A2B3C4D.pf", Some(("ТЕЛЕГРАМ.EXE", false)));
    }

    #[test]
    fn entries_of_catalog_programs_make_prefetch_marks() {
        let matcher = CatalogMatcher::new(Catalog::builtin().unwrap());
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_119_200);
        let path = "C:\\Windows\\Prefetch\\TELEGRAM.EXE-1A2B3C4D.pf";
        let marks = prefetch_marks(&matcher, "TELEGRAM.EXE-1A2B3C4D.pf", path, time);
        assert_eq!(marks.len(), 1, "{marks:?}");
        assert_eq!(
            (marks[0].at, marks[0].source),
            (time, LastUseSource::Prefetch)
        );
        let UseSubject::App { app, evidence } = &marks[0].subject else {
            panic!("{marks:?}");
        };
        assert_eq!(app, "telegram");
        assert_eq!(evidence.path.as_deref(), Some(path));
        assert_eq!(evidence.strength, Strength::Trace);
        for other in [
            "NOTEPAD.EXE-D8414F97.pf",
            "TELEGRAF.EXE-11111111.pf",
            "README.txt",
        ] {
            assert!(
                prefetch_marks(&matcher, other, path, time).is_empty(),
                "{other}"
            );
        }
    }
}
