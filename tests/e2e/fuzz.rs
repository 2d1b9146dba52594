//! Property-based fuzzing of every parser the agent runs on input from a PC: arbitrary
//! bytes and mutations of valid inputs must never panic. The targets run on every test
//! run with proptest's default budget; `PROPTEST_CASES=100000 cargo test fuzz` runs a
//! longer campaign, and failures are kept by proptest as regression seeds.

use proptest::prelude::*;
use std::io::Cursor;
use sverka_agent::sources::{desktop, dpkg, flatpak, rpm, snap};
use sverka_agent::{host, users};
use sverka_shared::Catalog;
use sverka_shared::catalog::{PathPattern, Pattern};

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A valid Berkeley DB hash file with rpm headers, built once by Berkeley DB itself.
fn valid_berkeley_db() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let root = sverka_tests::FixtureRoot::new();
        let blobs: Vec<Vec<u8>> = (0..12)
            .map(|index| {
                sverka_tests::rpm_header(&format!("p{index}"), &"9".repeat(index * 300 + 1))
            })
            .collect();
        root.rpm_berkeley_db("/db", &blobs);
        std::fs::read(root.local("/db/Packages")).unwrap()
    })
}

fn read_all(bytes: Vec<u8>) -> usize {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

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
fn the_valid_berkeley_db_reads_whole() {
    assert_eq!(
        read_all(valid_berkeley_db().to_vec()),
        13,
        "12 headers and rpm's counter record"
    );
}
