//! Tests of catalog loading, merging and error reporting.

use super::*;

fn builtin() -> Catalog {
    Catalog::builtin().expect("the built-in catalog loads")
}

fn merge(text: &str) -> Result<Catalog, CatalogError> {
    let mut catalog = builtin();
    catalog.merge_text("local.toml", text, false)?;
    Ok(catalog)
}

#[test]
fn builtin_catalog_covers_every_required_application() {
    let catalog = builtin();
    let expected = [
        ("discord", AppStatus::Banned),
        ("microsoft_teams", AppStatus::Banned),
        ("skype_for_business", AppStatus::Banned),
        ("snapchat", AppStatus::Banned),
        ("telegram", AppStatus::Banned),
        ("threema", AppStatus::Banned),
        ("viber", AppStatus::Banned),
        ("whatsapp", AppStatus::Banned),
        ("wechat", AppStatus::Banned),
        ("vk_messenger", AppStatus::Approved),
        ("max", AppStatus::Approved),
        ("vk_workspace", AppStatus::Approved),
        ("skype", AppStatus::Watch),
    ];
    for (id, status) in expected {
        let app = catalog
            .app(id)
            .unwrap_or_else(|| panic!("{id} is in the catalog"));
        assert_eq!(app.status, status, "{id}");
        assert!(
            !app.name.is_empty() && !app.vendor.is_empty(),
            "{id} has a name and vendor"
        );
    }
    assert_eq!(catalog.apps.len(), expected.len());
    assert_eq!(catalog.schema, CATALOG_SCHEMA);
    assert!(!catalog.version.is_empty());
    let snapchat = catalog.app("snapchat").expect("snapchat");
    assert!(
        snapchat.undetectable.contains("browser"),
        "what cannot be detected about Snapchat is written down"
    );
    let vk_messenger = catalog.app("vk_messenger").expect("vk_messenger");
    assert!(
        vk_messenger.name.contains("legacy") && vk_messenger.notes.starts_with("Legacy"),
        "VK Messenger is marked legacy: {vk_messenger:?}"
    );
}

/// Every signature added for the 2026 catalog says where it comes from and how sure
/// it is (`[V]`, `[C]`, `[R]`, `[I]`), so the lines that name the 2026 clients are
/// checked for a marker.
#[test]
fn signatures_of_the_2026_clients_carry_their_certainty() {
    let text = include_str!("builtin.toml");
    let mut checked = 0;
    for line in text.lines() {
        let signature = line.split('#').next().unwrap_or_default();
        let names_a_2026_client = [
            "AyuGram",
            "ayugram",
            "materialgram",
            "WhatsApp.Root",
            "2024",
            "vkteams",
            "VK_is1",
            "max-qt",
            "pro.max.ru",
        ]
        .iter()
        .any(|name| signature.contains(name));
        let is_prose = ["notes", "undetectable", "name", "vendor", "version"]
            .iter()
            .any(|key| signature.trim_start().starts_with(key));
        if names_a_2026_client && signature.contains('"') && !is_prose {
            checked += 1;
            let comment = line
                .split_once('#')
                .map(|(_, comment)| comment)
                .unwrap_or_default();
            assert!(
                ["[V]", "[C]", "[R]", "[I]"]
                    .iter()
                    .any(|marker| comment.contains(marker)),
                "no source and certainty beside: {line}"
            );
        }
    }
    assert!(checked >= 20, "only {checked} signature lines checked");
}

#[test]
fn a_local_file_changes_a_status_and_adds_signatures() {
    let catalog = merge(
        r#"
[[app]]
id = "skype"
status = "banned"

[app.signatures]
packages = ["skype-preview"]
"#,
    )
    .expect("merges");
    let skype = catalog.app("skype").expect("skype");
    assert_eq!(skype.status, AppStatus::Banned);
    assert!(
        skype
            .signatures
            .packages
            .contains(&"skypeforlinux".to_string())
    );
    assert!(
        skype
            .signatures
            .packages
            .contains(&"skype-preview".to_string())
    );
    assert!(
        catalog.version.starts_with("2026.12.02+local."),
        "{}",
        catalog.version
    );
}

#[test]
fn a_local_file_adds_an_application() {
    let catalog = merge(
        r#"
[[app]]
id = "element"
name = "Element"
status = "watch"
signatures = { flatpak = ["im.riot.Riot"] }
"#,
    )
    .expect("merges");
    let element = catalog.app("element").expect("added");
    assert_eq!(element.status, AppStatus::Watch);
    assert_eq!(element.signatures.flatpak, vec!["im.riot.Riot".to_string()]);
}

fn error_of(text: &str) -> CatalogError {
    merge(text).expect_err("the catalog is refused")
}

#[test]
fn errors_name_the_file_line_and_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        // (text, line, key, part of the message)
        (
            "[[app]]\nid = \"x\"\nstatuss = \"banned\"\n",
            3,
            "statuss",
            "unknown field",
        ),
        (
            "[[app]]\nid = \"skype\"\nstatus = \"forbidden\"\n",
            3,
            "status",
            "unknown variant",
        ),
        (
            "[[app]]\nid = \"new_app\"\nstatus = \"banned\"\n",
            2,
            "app[0].name",
            "needs `name`",
        ),
        (
            "[[app]]\nid = \"skype\"\n[app.signatures]\npackages = [\"ok\", \"re:(\"]\n",
            4,
            "app[0].signatures.packages[1]",
            "invalid regular expression",
        ),
        ("[[app]]\nid = \"Bad Id\"\n", 2, "app[0].id", "an id is"),
        ("schema = 7\n", 1, "schema", "not supported"),
        (
            "[[app]]\nid = \"skype\"\n[app.signatures]\nuninstall = [{}]\n",
            4,
            "app[0].signatures.uninstall",
            "at least one field",
        ),
        (
            "[[app]]\nid = \"skype\"\n[app.signatures]\ndata_dirs = [\"../etc\"]\n",
            4,
            "app[0].signatures.data_dirs[0]",
            "relative",
        ),
        ("[[app]\nid = 1\n", 1, "", "expected `]`"),
    ];
    for (text, line, key, message) in cases {
        let error = error_of(text);
        let shown = error.to_string();
        assert!(shown.starts_with("local.toml:"), "{shown}");
        assert_eq!(error.line(), Some(*line), "{text:?}: {shown}");
        if !key.is_empty() {
            assert_eq!(error.key(), Some(*key), "{text:?}: {shown}");
        }
        assert!(shown.to_lowercase().contains(message), "{text:?}: {shown}");
    }
}

#[test]
fn unreadable_and_oversized_files_are_errors_naming_the_file() {
    let missing = Catalog::builtin_with_overrides(Path::new("/nonexistent/catalog.toml"))
        .expect_err("missing file");
    assert!(missing.to_string().contains("/nonexistent/catalog.toml"));

    let folder = tempfile::tempdir().expect("tempdir");
    let binary = folder.path().join("binary.toml");
    std::fs::write(&binary, b"version = \"\xff\xfe\"\n").expect("write");
    let error = Catalog::builtin_with_overrides(&binary).expect_err("not UTF-8");
    assert!(error.to_string().contains("binary.toml:1:"), "{error}");

    let huge = folder.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 5 * 1024 * 1024]).expect("write");
    let error = Catalog::builtin_with_overrides(&huge).expect_err("too large");
    assert!(matches!(error, CatalogError::TooLarge { .. }), "{error}");
}

#[test]
fn the_catalog_round_trips_through_its_own_toml() {
    let catalog = builtin();
    let text = catalog.to_toml();
    let mut reread = Catalog {
        schema: CATALOG_SCHEMA,
        version: String::new(),
        apps: Vec::new(),
    };
    reread
        .merge_text("round-trip", &text, true)
        .expect("rereads");
    assert_eq!(reread, catalog);
}

#[test]
fn a_complete_catalog_from_text_keeps_nothing_of_the_builtin_one() {
    let text = "version = \"collector.7\"\n\n[[app]]\nid = \"element\"\nname = \"Element\"\nstatus = \"banned\"\nsignatures = { packages = [\"element-desktop\"] }\n";
    let catalog = Catalog::from_toml("collector catalog", text).expect("loads");
    assert_eq!(catalog.version, "collector.7");
    let ids: Vec<&str> = catalog.apps.iter().map(|app| app.id.as_str()).collect();
    assert_eq!(ids, ["element"]);
    let round_trip = Catalog::from_toml("again", &builtin().to_toml()).expect("loads");
    assert_eq!(round_trip, builtin());

    let missing_version = Catalog::from_toml("collector catalog", "[[app]]\nid = \"x\"\n");
    assert!(
        missing_version
            .unwrap_err()
            .to_string()
            .contains("missing `version`")
    );
}
