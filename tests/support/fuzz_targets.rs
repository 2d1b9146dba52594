//! Every parser Sverka runs on untrusted input, as fuzz targets: a function from bytes
//! to a small "behaviour" number (what the parser made of the input: how much it read,
//! which error), and seeds built from valid inputs. Shared by the property tests
//! (`tests/e2e/fuzz.rs`) and the proof suite's mutation fuzzer (`proof::parsers`).

use std::hash::{Hash, Hasher};
use std::io::{Cursor, Write as _};
use sverka_agent::scan::formats::{leveldb, pe};
use sverka_agent::scan::registry::hive::Hive;
use sverka_agent::scan::sources::executables::cache as executable_cache;
use sverka_agent::scan::sources::executables::journal as change_journal;
use sverka_agent::scan::sources::{appx, desktop, dpkg, flatpak, rpm, snap, web_apps};
use sverka_agent::scan::{host, registry, users};
use sverka_agent::service::change_watch::events as fanotify_events;
use sverka_agent::service::change_watch::notify as windows_changes;
use sverka_collector::api::limits::{
    RequestLimits, check_string_lengths, decode_body, parse_bounded, parse_typed,
};
use sverka_shared::catalog::{PathPattern, Pattern};
use sverka_shared::protocol::{EnrollRequest, ReportUpload};
use sverka_shared::{Catalog, Observation};

/// One parser under fuzzing.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// Valid inputs (and a few edge cases) the mutations start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Runs the parser; what it returns tells inputs that behave differently apart.
    pub run: fn(&[u8]) -> u64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

/// Every target, in the order the proof suite reports them.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "dpkg status",
            seeds: dpkg_seeds,
            run: run_dpkg,
        },
        Target {
            name: "rpm header",
            seeds: rpm_header_seeds,
            run: run_rpm_header,
        },
        Target {
            name: "rpm Berkeley DB",
            seeds: || vec![valid_berkeley_db().to_vec()],
            run: |bytes| read_all(bytes.to_vec()) as u64,
        },
        Target {
            name: "rpm SQLite",
            seeds: || vec![valid_rpm_sqlite().to_vec()],
            run: run_rpm_sqlite,
        },
        Target {
            name: "desktop entries",
            seeds: desktop_seeds,
            run: run_desktop,
        },
        Target {
            name: "registry hives",
            seeds: || vec![fixture_hive_bytes().to_vec()],
            run: |bytes| read_hive(bytes.to_vec()) as u64,
        },
        Target {
            name: "registry values",
            seeds: || vec![b"\x01h\0i\0\0\0".to_vec(), b"\x04\x2a\0\0\0".to_vec()],
            run: run_registry_value,
        },
        Target {
            name: "PE version resources",
            seeds: || vec![program_bytes().to_vec()],
            run: run_pe,
        },
        Target {
            name: "AppX package names",
            seeds: appx_seeds,
            run: run_appx,
        },
        Target {
            name: "LevelDB log (web apps)",
            seeds: || {
                vec![crate::windows::web_app_log(
                    "abc",
                    "Telegram Web",
                    "https://web.telegram.org/a/",
                )]
            },
            run: |bytes| web_apps::parse_web_app_log(bytes).len() as u64,
        },
        Target {
            name: "LevelDB table (web apps)",
            seeds: || vec![valid_table().to_vec()],
            run: run_leveldb_table,
        },
        Target {
            name: "web app Preferences",
            seeds: preferences_seeds,
            run: run_preferences,
        },
        Target {
            name: "small text parsers",
            seeds: small_seeds,
            run: run_small,
        },
        Target {
            name: "home templates (sssd.conf, smb.conf)",
            seeds: home_template_seeds,
            run: run_home_templates,
        },
        Target {
            name: "Wine registry files",
            seeds: wine_registry_seeds,
            run: run_wine_registry,
        },
        Target {
            name: "SSSD cache",
            seeds: || vec![valid_sssd_cache()],
            run: run_sssd_cache,
        },
        Target {
            name: "executable inventory cache",
            seeds: executable_cache_seeds,
            run: run_executable_cache,
        },
        Target {
            name: "change journal",
            seeds: change_journal_seeds,
            run: run_change_journal,
        },
        Target {
            name: "fanotify events",
            seeds: fanotify_event_seeds,
            run: run_fanotify_events,
        },
        Target {
            name: "Windows change records",
            seeds: windows_change_seeds,
            run: run_windows_changes,
        },
        Target {
            name: "collector report intake",
            seeds: report_seeds,
            run: run_report_intake,
        },
        Target {
            name: "collector enrollment intake",
            seeds: enroll_seeds,
            run: run_enroll_intake,
        },
        Target {
            name: "catalog TOML",
            seeds: catalog_seeds,
            run: run_catalog,
        },
    ]
}

/// A stable number for what a parser answered (its error's kind, or what it read).
pub fn behaviour(value: impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The first word of an error: its kind, without the input-specific detail.
fn kind_of(error: impl std::fmt::Display) -> String {
    error
        .to_string()
        .split([':', ' '])
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A valid Berkeley DB hash file with rpm headers, built once by Berkeley DB itself.
pub fn valid_berkeley_db() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let root = crate::FixtureRoot::new();
        let blobs: Vec<Vec<u8>> = (0..12)
            .map(|index| crate::rpm_header(&format!("p{index}"), &"9".repeat(index * 300 + 1)))
            .collect();
        root.rpm_berkeley_db("/db", &blobs);
        std::fs::read(root.local("/db/Packages")).expect("read Packages")
    })
}

/// A valid SQLite rpmdb with two packages.
pub fn valid_rpm_sqlite() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let root = crate::FixtureRoot::new();
        root.rpm_sqlite("/db", &[("telegram-desktop", "4.6.5"), ("bash", "5.2")]);
        std::fs::read(root.local("/db/rpmdb.sqlite")).expect("read rpmdb.sqlite")
    })
}

/// A valid web app database table (one Snappy-compressed data block).
pub fn valid_table() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        use crate::windows::{web_app_key, web_app_record};
        let record = web_app_record("Telegram Web", "https://web.telegram.org/a/");
        crate::windows::leveldb_table(&[
            (&web_app_key("abc"), 4, Some(&record)),
            (&web_app_key("def"), 5, None),
        ])
    })
}

/// Reads every record of a Berkeley DB file and parses each as an rpm header.
pub fn read_all(bytes: Vec<u8>) -> usize {
    let mut count = 0;
    if let Ok(mut database) = rpm::bdb::BdbHash::open(Cursor::new(bytes)) {
        let _ = database.for_each(|record| {
            if let Ok((_, value)) = record {
                let _ = rpm::header::parse_header(&value);
                count += 1;
            }
        });
    }
    count
}

/// Reads everything a hive offers the agent, the way the Windows sources do.
pub fn read_hive(bytes: Vec<u8>) -> usize {
    let Ok(hive) = Hive::parse(bytes) else {
        return 0;
    };
    let mut seen = 0;
    let mut pending = vec![hive.root()];
    while let Some(key) = pending.pop() {
        seen += 1;
        if seen > 2000 {
            break;
        }
        let _ = hive.key_name(key);
        let _ = hive.values(key);
        if let Ok(children) = hive.subkeys(key) {
            pending.extend(children.into_iter().take(64));
        }
    }
    let _ = hive.open("Microsoft\\Windows\\CurrentVersion\\Uninstall");
    seen
}

pub fn fixture_hive_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        std::fs::read(crate::windows::fixture_hive("SOFTWARE")).expect("read the fixture hive")
    })
}

pub fn program_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        crate::windows::program_with_version(&crate::windows::Version {
            company: "Viber Media S.à r.l.",
            product: "Viber",
            original_filename: "Viber.exe",
            description: "Viber",
        })
    })
}

pub fn executable_cache_seeds() -> Vec<Vec<u8>> {
    use sverka_shared::observation::{FileFormat, VersionInfo};
    let mut cache = executable_cache::ExecutableCache {
        plan: "0123456789abcdef".into(),
        full_walk_at: 1_700_000_000,
        ..executable_cache::ExecutableCache::default()
    };
    cache.folders.insert(
        "/srv/share".into(),
        executable_cache::CachedFolder {
            listing: Some(executable_cache::CachedListing {
                modified_ns: 1_700_000_000_000_000_000,
                folders: vec!["apps".into(), "Загрузки".into()],
                candidates: vec!["homework.exe".into()],
            }),
            files: vec![(
                "homework.exe".into(),
                executable_cache::CachedFile {
                    size: 8192,
                    modified_ns: 1_700_000_000_000_000_000,
                    program: Some(FileFormat::Pe),
                    version_info: Some(VersionInfo {
                        product_name: Some("Telegram Desktop".into()),
                        company_name: Some("Telegram FZ-LLC".into()),
                        ..VersionInfo::default()
                    }),
                    matched: true,
                },
            )],
        },
    );
    cache.folders.insert(
        "/srv/share/apps/Telegram".into(),
        executable_cache::CachedFolder {
            listing: None,
            files: vec![(
                "Telegram".into(),
                executable_cache::CachedFile {
                    size: 4096,
                    modified_ns: -1,
                    program: Some(FileFormat::Elf),
                    version_info: None,
                    matched: false,
                },
            )],
        },
    );
    let small = executable_cache::serialize_cache(&cache, EXECUTABLE_CACHE_VERSION);
    // One large enough to have an index (a line after the header naming the first
    // folder line of each stretch), so mutations reach its reader too.
    for index in 0..400 {
        cache.folders.insert(
            format!("/srv/share{}/d{index}", index % 7),
            executable_cache::CachedFolder {
                listing: Some(executable_cache::CachedListing {
                    modified_ns: 1_700_000_000_000_000_000,
                    folders: vec![],
                    candidates: vec![format!("tool{index}.exe")],
                }),
                files: vec![],
            },
        );
    }
    let indexed = executable_cache::serialize_cache(&cache, EXECUTABLE_CACHE_VERSION);
    assert!(indexed.len() > 2 * executable_cache::INDEX_STRIDE);
    vec![small, indexed]
}

/// The agent version the fuzzed caches claim (the parser's check is part of the target).
const EXECUTABLE_CACHE_VERSION: &str = "fuzz";

pub fn run_executable_cache(bytes: &[u8]) -> u64 {
    // Read as a scan reads it: lines looked up, subtrees carried, a new cache assembled.
    if let Ok(mut view) =
        executable_cache::CacheView::open(bytes.to_vec(), EXECUTABLE_CACHE_VERSION)
    {
        let mut assembly = executable_cache::CacheAssembly::default();
        let lines: Vec<_> = view.lines().into_iter().take(16).collect();
        for line in lines {
            let Ok(path) = view.path_at(line.start) else {
                continue;
            };
            let within = view.within(&path);
            let _ = view.count_lines(within.clone());
            if let Some(at) = view.find(&path) {
                if view.has_listing(at, &path) && at % 2 == 0 {
                    let subtree = view.subtree(at, &path);
                    assembly.carry(&mut view, subtree);
                } else if let Some(folder) = view.folder(at, &path) {
                    assembly.folder(path, folder);
                } else {
                    let line = view.line_run(at);
                    assembly.carry(&mut view, line);
                }
            }
        }
        let _ = assembly.body(&mut view);
    }
    match executable_cache::parse_cache(bytes, EXECUTABLE_CACHE_VERSION) {
        Ok(cache) => {
            // What was read writes back and reads again as the same cache.
            let again = executable_cache::serialize_cache(&cache, EXECUTABLE_CACHE_VERSION);
            assert_eq!(
                executable_cache::parse_cache(&again, EXECUTABLE_CACHE_VERSION).as_ref(),
                Ok(&cache),
                "a cache does not read back as written"
            );
            // And a scan finds every folder of it.
            let mut view = executable_cache::CacheView::open(again, EXECUTABLE_CACHE_VERSION)
                .expect("a written cache opens");
            for path in cache.folders.keys() {
                assert!(
                    view.find(path).is_some(),
                    "{path} is not found in its cache"
                );
            }
            behaviour(cache.folders.len().min(8))
        }
        Err(error) => behaviour(kind_of(error)),
    }
}

pub fn change_journal_seeds() -> Vec<Vec<u8>> {
    let mut journal = change_journal::ChangeJournal::new("0193a1b2-session".into());
    journal.written_at = 1_700_000_000;
    journal.at = 12;
    journal.trusted_after = 3;
    journal.devices = vec![2049, 64769];
    journal.changed = vec![
        change_journal::ChangedFolder {
            path: "/srv/share".into(),
            seq: 12,
        },
        change_journal::ChangedFolder {
            path: "/home/school.local/anna/Загрузки".into(),
            seq: 4,
        },
    ];
    vec![change_journal::serialize_journal(&journal)]
}

pub fn run_change_journal(bytes: &[u8]) -> u64 {
    match change_journal::parse_journal(bytes) {
        Ok(journal) => {
            // What was read writes back and reads again as the same journal, and it
            // answers only for its own session's caches.
            let again = change_journal::serialize_journal(&journal);
            let read = change_journal::parse_journal(&again).expect("a journal reads back");
            assert_eq!(read.at, journal.at);
            let answer = journal.changes_since(Some(&journal.mark()), journal.written_at);
            assert!(
                answer.is_ok(),
                "a fresh journal does not answer for its own mark"
            );
            behaviour(journal.changed.len().min(8))
        }
        Err(error) => behaviour(kind_of(error)),
    }
}

pub fn fanotify_event_seeds() -> Vec<Vec<u8>> {
    let folder = fanotify_events::FolderHandle {
        fsid: [1, 2, 3, 4, 5, 6, 7, 8],
        handle_type: 1,
        handle: vec![0x81, 0, 0, 0, 0x2e, 0x4d, 0x1c, 0x9a],
    };
    let mut batch = fanotify_events::encode_event(0x100, -1, &[(2, Some(&folder), b"tg.exe\0")]);
    batch.extend(fanotify_events::encode_event(
        0x8,
        -1,
        &[(3, Some(&folder), b"")],
    ));
    vec![
        batch,
        fanotify_events::encode_event(fanotify_events::QUEUE_OVERFLOW, -1, &[]),
    ]
}

pub fn run_fanotify_events(bytes: &[u8]) -> u64 {
    let batch = fanotify_events::parse_events(bytes);
    // A descriptor handed back is one the kernel would have opened: never negative.
    assert!(batch.descriptors.iter().all(|fd| *fd >= 0));
    assert!(
        batch
            .folders
            .iter()
            .all(|folder| folder.handle.len() <= fanotify_events::MAX_HANDLE_BYTES)
    );
    behaviour((batch.folders.len().min(8), batch.lost))
}

pub fn windows_change_seeds() -> Vec<Vec<u8>> {
    vec![
        windows_changes::encode_notify(&[
            (1, "Data\\Tools\\tg.exe"),
            (3, "top.exe"),
            (4, "Игры\\Telegram\\Telegram.exe"),
        ]),
        windows_changes::encode_notify(&[(2, "Users\\Public\\Downloads\\WhatsApp.exe")]),
    ]
}

pub fn run_windows_changes(bytes: &[u8]) -> u64 {
    let batch = windows_changes::parse_notify("C:\\", bytes);
    // Every folder named lies on the watched drive, and none climbs out of it.
    assert!(batch.folders.iter().all(|folder| {
        folder.starts_with("C:\\") && !folder.split('\\').any(|part| part == "..")
    }));
    behaviour((batch.folders.len().min(8), batch.lost))
}

fn dpkg_seeds() -> Vec<Vec<u8>> {
    let root = crate::FixtureRoot::new();
    root.dpkg(&[
        ("telegram-desktop", "4.6.5+ds-2", "install ok installed"),
        ("max", "25.10.1", "deinstall ok config-files"),
    ]);
    vec![std::fs::read(root.local("/var/lib/dpkg/status")).unwrap_or_default()]
}

fn run_dpkg(bytes: &[u8]) -> u64 {
    let parsed = dpkg::parse_dpkg_status(&lossy(bytes));
    let names: Vec<bool> = parsed
        .packages
        .iter()
        .map(|package| package.files_present())
        .collect();
    assert!(
        parsed
            .packages
            .iter()
            .all(|package| !package.name.is_empty()),
        "a package without a name"
    );
    behaviour(names)
}

fn rpm_header_seeds() -> Vec<Vec<u8>> {
    vec![
        crate::rpm_header("telegram-desktop", "4.6.5"),
        crate::rpm_header("max", &"9".repeat(300)),
    ]
}

fn run_rpm_header(bytes: &[u8]) -> u64 {
    match rpm::header::parse_header(bytes) {
        Ok(package) => behaviour((package.name.len().min(4), package.full_version().len())),
        Err(error) => behaviour(kind_of(error)),
    }
}

fn run_rpm_sqlite(bytes: &[u8]) -> u64 {
    let Ok(folder) = tempfile::tempdir() else {
        return 0;
    };
    let path = folder.path().join("rpmdb.sqlite");
    if std::fs::write(&path, bytes).is_err() {
        return 0;
    }
    match rpm::read_sqlite(&path) {
        Ok(read) => behaviour(format!("{read:?}").len().min(64)),
        Err(error) => behaviour(kind_of(error)),
    }
}

fn desktop_seeds() -> Vec<Vec<u8>> {
    vec![
        b"[Desktop Entry]\nType=Application\nName=Telegram\nName[ru]=\xd0\xa2\xd0\xb5\xd0\xbb\xd0\xb5\xd0\xb3\xd1\x80\xd0\xb0\xd0\xbc\nExec=env BAMF=1 \"/opt/Telegram/Telegram\" -- %u\nStartupWMClass=TelegramDesktop\n".to_vec(),
        b"[Desktop Entry]\nExec=flatpak run --branch=stable org.telegram.desktop @@u %U @@\n".to_vec(),
        b"XDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/\\xd0\\x97\"\n".to_vec(),
    ]
}

fn run_desktop(bytes: &[u8]) -> u64 {
    let text = lossy(bytes);
    let mut shape = Vec::new();
    match desktop::parse_desktop_entry(&text) {
        Ok(entry) => {
            shape.push(1);
            if let Some(exec) = entry.exec {
                shape.push(u8::from(desktop::launch_target(&exec).is_some()));
            }
        }
        Err(error) => shape.push(kind_of(error).len() as u8),
    }
    shape.push(u8::from(desktop::launch_target(&text).is_some()));
    shape.push(desktop::parse_user_dirs(&text).len().min(8) as u8);
    behaviour(shape)
}

fn run_registry_value(bytes: &[u8]) -> u64 {
    let (kind, data) = bytes
        .split_first()
        .map_or((0, &[][..]), |(kind, data)| (u32::from(*kind % 16), data));
    behaviour((
        kind,
        format!("{:?}", registry::RegValue::decode(kind, data))
            .len()
            .min(32),
    ))
}

fn run_pe(bytes: &[u8]) -> u64 {
    let info = pe::parse_pe_version_info(bytes);
    let resource = pe::parse_version_resource(bytes);
    behaviour((
        format!("{info:?}").len().min(200) / 8,
        format!("{resource:?}").len().min(200) / 8,
    ))
}

fn appx_seeds() -> Vec<Vec<u8>> {
    vec![
        b"TelegramMessengerLLP.TelegramDesktop_4.16.8.0_x64__t4vj0pshhgkwm".to_vec(),
        b"MSTeams_24004.1403.2634.2418_x64__8wekyb3d8bbwe".to_vec(),
        b"5319275A.WhatsAppDesktop_2.2403.6.0_neutral_~_cv1g1gvanyjgm".to_vec(),
    ]
}

fn run_appx(bytes: &[u8]) -> u64 {
    let text = lossy(bytes);
    let observation = appx::appx_observation(&text, "fuzz", "C:\\x".into(), Some("pupil"));
    behaviour(format!("{observation:?}").len().min(400) / 16)
}

fn run_leveldb_table(bytes: &[u8]) -> u64 {
    let mut records = 0usize;
    let read = leveldb::read_table(bytes, |_| records += 1);
    let found = web_apps::web_apps_in_database(&[web_apps::DatabaseFile::Table(bytes)]);
    behaviour((
        read.is_ok(),
        records.min(16),
        found.apps.len(),
        found.errors.len(),
    ))
}

fn preferences_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"extensions":{"settings":{"abc":{"manifest":{"name":"Telegram Web","app":{"launch":{"web_url":"https://web.telegram.org/a/"}}},"from_webstore":false}}},"web_apps":{"daily_metrics":{"https://web.max.ru/":{}}}}"#.to_vec(),
        b"{}".to_vec(),
    ]
}

fn run_preferences(bytes: &[u8]) -> u64 {
    match web_apps::parse_preferences(&lossy(bytes)) {
        Ok(apps) => behaviour(apps.len()),
        Err(error) => behaviour(kind_of(error)),
    }
}

fn home_template_seeds() -> Vec<Vec<u8>> {
    vec![
        b"[sssd]\ndomains = school.local\n[nss]\nhomedir_substring = /srv\n[domain/school.local]\noverride_homedir = %H/%d/%l/%u\nfallback_homedir = /home/%f\n".to_vec(),
        b"[global]\n workgroup = SCHOOL\n security = ads\n template homedir = /home/%D/%U\n".to_vec(),
    ]
}

/// Both configuration parsers, then every template compiled and matched against a few
/// folder names, as discovery does.
pub fn run_home_templates(bytes: &[u8]) -> u64 {
    use users::home_templates::{
        Bindings, Dialect, DomainConfig, HomeLayout, parse_smb_conf, parse_sssd_conf,
    };
    let text = lossy(bytes);
    let mut config = DomainConfig::default();
    parse_sssd_conf(&text, "sssd.conf", &mut config);
    parse_smb_conf(&text, "smb.conf", &mut config);
    let mut matched = 0usize;
    let mut errors = Vec::new();
    for template in &config.templates {
        for dialect in [Dialect::Sssd, Dialect::Samba] {
            match HomeLayout::parse(&template.template, dialect) {
                Ok(layout) => {
                    for index in 0..layout.components.len() {
                        for name in ["school.local", "ivanov@school.local", "p", "1001", ""] {
                            matched += usize::from(
                                layout
                                    .match_name(index, name, &Bindings::default())
                                    .is_some(),
                            );
                        }
                    }
                }
                Err(error) => errors.push(kind_of(error)),
            }
        }
    }
    behaviour((config.domains.len().min(4), matched.min(8), errors))
}

pub fn wine_registry_seeds() -> Vec<Vec<u8>> {
    let text = "WINE REGISTRY Version 2\n;; All keys relative to \\\\Machine\n#arch=win64\n\n[Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Uninstall\\\\Viber] 1700000000\n#time=1da\n\"DisplayName\"=\"Viber \\x0412\"\n\"Size\"=dword:0002a3f0\n\"Codes\"=str(7):\"{E01CB858-ABEC-4384-BFBF-985024A4A8DB}\\0\"\n\"Blob\"=hex(2):41,00,\\\n  42,00,00,00\n@=\"default\"\n";
    let mut exported = vec![0xFF, 0xFE];
    exported.extend(
        "Windows Registry Editor Version 5.00\r\n[HKEY_CURRENT_USER\\Software\\X]\r\n\"A\"=\"b\"\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    vec![text.as_bytes().to_vec(), exported]
}

/// The Wine registry parser, then the uninstall keys read through its view.
pub fn run_wine_registry(bytes: &[u8]) -> u64 {
    use sverka_agent::scan::registry::RegistryView;
    use sverka_agent::scan::registry::wine_reg::{WineRegistryView, parse_wine_registry};
    match parse_wine_registry(bytes) {
        Ok(registry) => {
            let keys = registry.len().min(16);
            let view = WineRegistryView::new(
                "system.reg".into(),
                std::sync::Arc::new(registry),
                "Software",
            );
            let uninstall = view
                .read_key("Microsoft\\Windows\\CurrentVersion\\Uninstall")
                .ok()
                .flatten()
                .map(|key| key.subkeys.len().min(8) + key.problems.len().min(8) * 16);
            behaviour((keys, uninstall))
        }
        Err(error) => behaviour(kind_of(error)),
    }
}

pub fn valid_sssd_cache() -> Vec<u8> {
    use users::sssd_cache::{CachedUser, build_sssd_cache};
    build_sssd_cache(&[CachedUser {
        name: "ivanov@school.local".into(),
        domain: "school.local".into(),
        uid: Some(1_851_000_123),
        home: "/home/school.local/ivanov".into(),
    }])
}

pub fn run_sssd_cache(bytes: &[u8]) -> u64 {
    match users::sssd_cache::parse_sssd_cache(bytes) {
        Ok(contents) => behaviour((contents.users.len().min(4), contents.error.map(kind_of))),
        Err(error) => behaviour(kind_of(error)),
    }
}

fn small_seeds() -> Vec<Vec<u8>> {
    vec![
        b"root:x:0:0:root:/root:/bin/bash\nteacher:x:1000:1000:,,,:/home/teacher:/bin/bash\n"
            .to_vec(),
        b"ID=astra\nPRETTY_NAME=\"Astra Linux 1.8\"\nVERSION_ID=1.8\n".to_vec(),
        b"telegram-desktop_6123.snap".to_vec(),
        b"re:^telegram(-desktop)?$".to_vec(),
        b"~/.local/share/TelegramDesktop/**".to_vec(),
    ]
}

fn run_small(bytes: &[u8]) -> u64 {
    let text = lossy(bytes);
    behaviour((
        users::parse_passwd(&text).0.len().min(8),
        format!("{:?}", host::parse_os_release(&text)).len() / 16,
        snap::parse_snap_file_name(&text).is_some(),
        flatpak::parse_current_link(&text).is_some(),
        flatpak::is_application_id(&text),
        Pattern::parse(&text).is_ok(),
        PathPattern::parse(&text).is_ok(),
    ))
}

/// A valid report upload as an agent sends it.
pub fn valid_report_json() -> Vec<u8> {
    let observations = vec![Observation {
        observed: sverka_shared::Observed::Package {
            manager: sverka_shared::observation::PackageManager::Dpkg,
            name: "telegram-desktop".into(),
            version: "4.6.5".into(),
            vendor: None,
        },
        path: Some("/var/lib/dpkg/status".into()),
        user: None,
        scope: sverka_shared::Scope::Machine,
        strength: sverka_shared::Strength::Installed,
    }];
    let inventory = sverka_shared::Inventory::from_observations(&observations);
    let upload = ReportUpload {
        report_id: "0190f0a0-0000-7000-8000-000000000001".into(),
        scan: sverka_shared::ScanReport {
            schema: sverka_shared::report::SCAN_SCHEMA,
            host: sverka_shared::report::HostInfo {
                hostname: "kab-12-pc-01".into(),
                os_id: "astra".into(),
                os_name: "Astra Linux 1.8".into(),
                os_version: "1.8".into(),
                machine_id: None,
                scanned_root: None,
                agent_version: "fuzz".into(),
            },
            catalog_version: "builtin".into(),
            scanned_at: "2026-11-20T08:00:00Z".into(),
            duration_ms: 10,
            findings: vec![],
            errors: vec![],
            skipped: vec![],
        },
        inventory_digest: inventory.digest.clone(),
        inventory: Some(inventory.observations),
        evidence: vec![],
    };
    serde_json::to_vec(&upload).unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Limits small enough that mutated inputs hit every one of them.
fn fuzz_limits() -> RequestLimits {
    RequestLimits {
        max_body_bytes: 64 * 1024,
        max_decompressed_bytes: 256 * 1024,
        max_string_bytes: 512,
        max_array_items: 64,
        max_depth: 16,
        max_findings: 16,
        max_evidence: 16,
    }
}

fn report_seeds() -> Vec<Vec<u8>> {
    // The first byte chooses the body's encoding: even for none, odd for gzip.
    let json = valid_report_json();
    let mut plain = vec![0u8];
    plain.extend(&json);
    let mut compressed = vec![1u8];
    compressed.extend(gzip(&json));
    vec![plain, compressed]
}

/// The collector's intake of a report body: decoding, the string and depth bounds,
/// then the typed parse, the way `POST /api/v1/reports` runs them.
fn run_report_intake(bytes: &[u8]) -> u64 {
    let (encoding, body) = bytes
        .split_first()
        .map_or((None, &[][..]), |(first, body)| {
            (if first % 2 == 1 { Some("gzip") } else { None }, body)
        });
    let limits = fuzz_limits();
    let plain = match decode_body(body, encoding, &limits) {
        Ok(plain) => plain,
        Err(error) => return behaviour(("decode", kind_of(error))),
    };
    if let Err(error) = check_string_lengths(&plain, limits.max_string_bytes) {
        return behaviour(("strings", kind_of(error)));
    }
    if let Err(error) = parse_bounded(&plain, &limits) {
        return behaviour(("bounded", kind_of(error)));
    }
    match parse_typed::<ReportUpload>(&plain, "a report") {
        Ok(upload) => behaviour((
            "report",
            upload.inventory.map(|inventory| inventory.len().min(8)),
            upload.scan.findings.len().min(8),
        )),
        Err(error) => behaviour(("typed", kind_of(error))),
    }
}

fn enroll_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{"secret":"sverka_es_1.abcdef","machine_id":"0123456789abcdef","hostname":"pc-1","os_id":"astra","os_name":"Astra Linux","agent_version":"1.0"}"#.to_vec(),
    ]
}

fn run_enroll_intake(bytes: &[u8]) -> u64 {
    let limits = fuzz_limits();
    match parse_bounded(bytes, &limits) {
        Ok(value) => behaviour((
            "parsed",
            serde_json::from_value::<EnrollRequest>(value).is_ok(),
        )),
        Err(error) => behaviour(("bounded", kind_of(error))),
    }
}

fn catalog_seeds() -> Vec<Vec<u8>> {
    vec![
        b"[[app]]\nid = \"telegram\"\nname = \"Telegram\"\nstatus = \"banned\"\n[app.signatures]\npackages = [\"re:^telegram\"]\nflatpak = [\"org.telegram.desktop\"]\n".to_vec(),
        b"[[app]]\nid = \"max\"\nname = \"MAX\"\nstatus = \"approved\"\n[app.signatures]\nfiles = [\"MAX.exe\"]\ndata_dirs = [\"~/.config/max\"]\n".to_vec(),
    ]
}

/// The built-in catalog, loaded once (each input merges over a copy).
fn builtin_catalog() -> Option<&'static Catalog> {
    static CATALOG: std::sync::OnceLock<Option<Catalog>> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().ok()).as_ref()
}

fn run_catalog(bytes: &[u8]) -> u64 {
    let Some(mut catalog) = builtin_catalog().cloned() else {
        return 0;
    };
    match catalog.merge_text("fuzz.toml", &lossy(bytes), false) {
        Ok(()) => behaviour("merged"),
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.starts_with("fuzz.toml"),
                "a catalog error that does not name its file: {text}"
            );
            behaviour(
                text.split(':')
                    .nth(2)
                    .unwrap_or_default()
                    .chars()
                    .take(24)
                    .collect::<String>(),
            )
        }
    }
}
