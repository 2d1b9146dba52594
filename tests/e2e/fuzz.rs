//! Property-based fuzzing of every parser the agent runs on input from a PC: arbitrary
//! bytes and mutations of valid inputs must never panic. The targets run on every test
//! run with proptest's default budget; `PROPTEST_CASES=100000 cargo test fuzz` runs a
//! longer campaign, and failures are kept by proptest as regression seeds.

use proptest::prelude::*;
use sverka_agent::scan::formats::{leveldb, pe};
use sverka_agent::scan::sources::{desktop, dpkg, flatpak, rpm, snap, web_apps};
use sverka_agent::scan::{host, registry, users};
use sverka_shared::Catalog;
use sverka_shared::catalog::{PathPattern, Pattern};

use sverka_tests::fuzz_targets::{
    fixture_hive_bytes, lossy, program_bytes, read_all, read_hive, valid_berkeley_db, valid_table,
};

fn mutate(valid: &[u8], flips: &[(prop::sample::Index, u8)], cut: prop::sample::Index) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for (index, value) in flips {
        let at = index.index(bytes.len());
        bytes[at] = *value;
    }
    let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
    bytes.truncate(keep);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn hive_from_arbitrary_bytes(bins in proptest::collection::vec(any::<u8>(), 0..8192), root in any::<u32>()) {
        let mut bytes = vec![0u8; 4096];
        bytes[..4].copy_from_slice(b"regf");
        bytes[0x24..0x28].copy_from_slice(&(root % 8192).to_le_bytes());
        bytes.extend(bins);
        let _ = read_hive(bytes);
    }

    #[test]
    fn hive_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let _ = read_hive(mutate(fixture_hive_bytes(), &flips, cut));
    }

    #[test]
    fn registry_values(kind in 0u32..12, data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = registry::RegValue::decode(kind, &data);
    }

    #[test]
    fn pe_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut file = b"MZ".to_vec();
        file.extend(bytes);
        let _ = pe::parse_pe_version_info(&file);
        let _ = pe::parse_version_resource(&file);
    }

    #[test]
    fn pe_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let _ = pe::parse_pe_version_info(&mutate(program_bytes(), &flips, cut));
    }

    #[test]
    fn web_app_database_logs(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = web_apps::parse_web_app_log(&bytes);
    }

    #[test]
    fn web_app_database_log_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20), cut in any::<prop::sample::Index>()) {
        let valid = sverka_tests::windows::web_app_log("abc", "Telegram Web", "https://web.telegram.org/a/");
        let _ = web_apps::parse_web_app_log(&mutate(&valid, &flips, cut));
    }

    #[test]
    fn leveldb_tables(bytes in proptest::collection::vec(any::<u8>(), 0..4096), magic in any::<bool>()) {
        // Half the inputs end in the table magic number, so the footer parser is reached.
        let mut table = bytes;
        if magic {
            table.extend(0xdb47_7524_8b80_fb57u64.to_le_bytes());
        }
        let _ = leveldb::read_table(&table, |_| {});
        let _ = web_apps::web_apps_in_database(&[web_apps::DatabaseFile::Table(&table)]);
    }

    #[test]
    fn leveldb_table_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20), cut in any::<prop::sample::Index>()) {
        let _ = leveldb::read_table(&mutate(valid_table(), &flips, cut), |_| {});
    }

    #[test]
    fn browser_preferences(text in "\\{(\"(extensions|settings|manifest|app|launch|web_url|name)\":[{\\[\"a-z:/.0-9,\\]}]{0,12}){0,12}") {
        let _ = web_apps::parse_preferences(&text);
    }

    #[test]
    fn dpkg_status(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = dpkg::parse_dpkg_status(&lossy(&bytes));
    }

    #[test]
    fn dpkg_status_text(text in "(Package|Status|Version|[A-Za-z-]{0,8})(: ?)?[ -~\\n\\t]{0,64}(\\n[ \\t]?[ -~]{0,40}){0,30}") {
        let parsed = dpkg::parse_dpkg_status(&text);
        for package in parsed.packages {
            prop_assert!(!package.name.is_empty());
        }
    }

    #[test]
    fn rpm_header(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = rpm::header::parse_header(&bytes);
    }

    #[test]
    fn rpm_header_with_a_plausible_index(entries in 0u32..40, data_length in 0u32..512, rest in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let mut blob = entries.to_be_bytes().to_vec();
        blob.extend_from_slice(&data_length.to_be_bytes());
        blob.extend(rest);
        let _ = rpm::header::parse_header(&blob);
    }

    #[test]
    fn berkeley_db_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
        let _ = read_all(bytes);
    }

    #[test]
    fn berkeley_db_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid_berkeley_db().to_vec();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        bytes.truncate(keep);
        let _ = read_all(bytes);
    }

    #[test]
    fn desktop_entries(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = lossy(&bytes);
        if let Ok(entry) = desktop::parse_desktop_entry(&text)
            && let Some(exec) = entry.exec
        {
            let _ = desktop::launch_target(&exec);
        }
        let _ = desktop::launch_target(&text);
        let _ = desktop::parse_user_dirs(&text);
    }

    #[test]
    fn desktop_entry_text(exec in "(env |flatpak run )?[\"\\\\ a-zA-Z/%=.-]{0,60}") {
        let text = format!("[Desktop Entry]\nName=x\nExec={exec}\n");
        let entry = desktop::parse_desktop_entry(&text).unwrap();
        let _ = desktop::launch_target(entry.exec.as_deref().unwrap_or(""));
    }

    #[test]
    fn wine_registry_from_arbitrary_text(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut file = b"WINE REGISTRY Version 2\n".to_vec();
        file.extend(bytes);
        let _ = sverka_tests::fuzz_targets::run_wine_registry(&file);
    }

    #[test]
    fn wine_registry_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>(), seed in 0usize..2) {
        let seeds = sverka_tests::fuzz_targets::wine_registry_seeds();
        let _ = sverka_tests::fuzz_targets::run_wine_registry(&mutate(&seeds[seed], &flips, cut));
    }

    #[test]
    fn executable_cache_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        // Behind a sound header, so the folder lines are what is fuzzed.
        let mut file = br#"{"cache":"sverka executable inventory","agent_version":"fuzz"}"#.to_vec();
        file.push(b'\n');
        file.extend(bytes);
        let _ = sverka_tests::fuzz_targets::run_executable_cache(&file);
    }

    #[test]
    fn executable_cache_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        for valid in sverka_tests::fuzz_targets::executable_cache_seeds() {
            let _ = sverka_tests::fuzz_targets::run_executable_cache(&mutate(&valid, &flips, cut));
        }
    }

    #[test]
    fn executable_cache_index_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12)) {
        // The bytes flipped all in the index line (the second), which mutations of the
        // whole file rarely reach.
        let mut bytes = sverka_tests::fuzz_targets::executable_cache_seeds().pop().unwrap();
        let mut lines = bytes.iter().enumerate().filter(|(_, byte)| **byte == b'\n').map(|(at, _)| at);
        let (header_end, index_end) = (lines.next().unwrap(), lines.next().unwrap());
        for (index, value) in &flips {
            bytes[header_end + 1 + index.index(index_end - header_end - 1)] = *value;
        }
        let _ = sverka_tests::fuzz_targets::run_executable_cache(&bytes);
    }

    #[test]
    fn change_journal_and_fanotify_events_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = sverka_tests::fuzz_targets::run_change_journal(&bytes);
        let _ = sverka_tests::fuzz_targets::run_fanotify_events(&bytes);
        let _ = sverka_tests::fuzz_targets::run_windows_changes(&bytes);
    }

    #[test]
    fn change_journal_and_fanotify_events_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        for valid in sverka_tests::fuzz_targets::change_journal_seeds() {
            let _ = sverka_tests::fuzz_targets::run_change_journal(&mutate(&valid, &flips, cut));
        }
        for valid in sverka_tests::fuzz_targets::fanotify_event_seeds() {
            let _ = sverka_tests::fuzz_targets::run_fanotify_events(&mutate(&valid, &flips, cut));
        }
        for valid in sverka_tests::fuzz_targets::windows_change_seeds() {
            let _ = sverka_tests::fuzz_targets::run_windows_changes(&mutate(&valid, &flips, cut));
        }
    }

    #[test]
    fn sssd_cache_from_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut file = sverka_tests::fuzz_targets::valid_sssd_cache()[..200].to_vec();
        file.extend(bytes);
        let _ = sverka_tests::fuzz_targets::run_sssd_cache(&file);
    }

    #[test]
    fn sssd_cache_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let valid = sverka_tests::fuzz_targets::valid_sssd_cache();
        let _ = sverka_tests::fuzz_targets::run_sssd_cache(&mutate(&valid, &flips, cut));
    }

    #[test]
    fn home_templates_from_arbitrary_text(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = sverka_tests::fuzz_targets::run_home_templates(&bytes);
    }

    #[test]
    fn home_templates_mutated(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let seed = b"[sssd]\ndomains = school.local\n[domain/school.local]\noverride_homedir = /srv/%d/%l/%u\nfallback_homedir = /home/%f\n[global]\ntemplate homedir = /home/%D/%U\n";
        let _ = sverka_tests::fuzz_targets::run_home_templates(&mutate(seed, &flips, cut));
    }

    #[test]
    fn small_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = lossy(&bytes);
        let _ = users::parse_passwd(&text);
        let _ = host::parse_os_release(&text);
        let _ = snap::parse_snap_file_name(&text);
        let _ = flatpak::parse_current_link(&text);
        let _ = flatpak::is_application_id(&text);
        let _ = Pattern::parse(&text);
        let _ = PathPattern::parse(&text);
    }

    #[test]
    fn catalog_text(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut catalog = Catalog::builtin().unwrap();
        let _ = catalog.merge_text("fuzz.toml", &lossy(&bytes), false);
    }

    #[test]
    fn catalog_structured(id in "[a-z_]{0,10}", status in "(banned|approved|watch|[a-z]{0,6})", pattern in "(re:)?[\\[\\]{}()*?a-z.^$|\\\\]{0,20}") {
        let text = format!("[[app]]\nid = \"{id}\"\nname = \"X\"\nstatus = \"{status}\"\n[app.signatures]\npackages = [\"{}\"]\n", pattern.replace('\\', "\\\\").replace('"', ""));
        let mut catalog = Catalog::builtin().unwrap();
        if let Err(error) = catalog.merge_text("fuzz.toml", &text, false) {
            prop_assert!(error.to_string().starts_with("fuzz.toml:"));
        }
    }
}

#[test]
fn the_valid_fuzz_seeds_read_whole() {
    assert!(read_hive(fixture_hive_bytes().to_vec()) > 20);
    let info = pe::parse_pe_version_info(program_bytes()).unwrap().unwrap();
    assert_eq!(info.product_name.as_deref(), Some("Viber"));
    let log =
        sverka_tests::windows::web_app_log("abc", "Telegram Web", "https://web.telegram.org/a/");
    assert_eq!(web_apps::parse_web_app_log(&log).len(), 1);
    let found = web_apps::web_apps_in_database(&[web_apps::DatabaseFile::Table(valid_table())]);
    assert_eq!((found.apps.len(), found.errors.len()), (1, 0));
    // The new targets' seeds are read whole, so mutations start from real input.
    let cache =
        users::sssd_cache::parse_sssd_cache(&sverka_tests::fuzz_targets::valid_sssd_cache())
            .unwrap();
    assert_eq!((cache.users.len(), cache.error), (1, None));
    for seed in sverka_tests::fuzz_targets::wine_registry_seeds() {
        let registry = sverka_agent::scan::registry::wine_reg::parse_wine_registry(&seed).unwrap();
        assert!(registry.len() >= 3, "{registry:?}");
    }
    let mut config = users::home_templates::DomainConfig::default();
    users::home_templates::parse_sssd_conf(
        "[domain/school.local]\noverride_homedir = /home/%d/%u\n",
        "sssd.conf",
        &mut config,
    );
    assert_eq!(config.templates.len(), 1);
    let folders: Vec<usize> = sverka_tests::fuzz_targets::executable_cache_seeds()
        .iter()
        .map(|seed| {
            sverka_agent::scan::sources::executables::cache::parse_cache(seed, "fuzz")
                .unwrap()
                .folders
                .len()
        })
        .collect();
    assert_eq!(folders, [2, 402]);
}

#[test]
fn the_valid_berkeley_db_reads_whole() {
    assert_eq!(
        read_all(valid_berkeley_db().to_vec()),
        13,
        "12 headers and rpm's counter record"
    );
}
