//! Every Rust source file is named in ARCHITECTURE.md, by the rule stated at its top:
//! inside its crate's section (from the `## collector/` heading to the next `## `
//! heading), its path from the crate's folder (`src/store/mod.rs`, `tests/api.rs`) or
//! from `src/` (`store/mod.rs`, `windows.rs`), or a shorter tail of it that no other
//! Rust file of the crate ends with (`scope.rs` while the crate has one `scope.rs`);
//! anywhere, its path from the workspace root (`collector/src/store/mod.rs`). A path
//! counts only whole: `mod.rs` inside `store/mod.rs` names nothing. The other way round, a path from the workspace root must name a file that
//! exists, so a moved file cannot leave its old path behind.

use std::path::{Path, PathBuf};

/// The crates' folders, each with its section in ARCHITECTURE.md (`## shared/ ...`).
const CRATES: &[&str] = &["shared", "agent", "collector", "loadgen", "tests"];

#[test]
fn every_rust_file_is_named_in_architecture_md() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let map = std::fs::read_to_string(workspace.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut unnamed = Vec::new();
    for krate in CRATES {
        let section = crate_section(&map, krate);
        let inside: Vec<String> = rust_files(&workspace.join(krate))
            .iter()
            .map(|file| {
                file.strip_prefix(workspace.join(krate))
                    .expect("inside the crate")
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        for path in &inside {
            let from_root = format!("{krate}/{path}");
            let named = names_whole(&map, &from_root)
                || names_whole(section, path)
                || path
                    .strip_prefix("src/")
                    .is_some_and(|below_src| names_whole(section, below_src))
                || unique_tails(path, &inside)
                    .iter()
                    .any(|tail| names_whole(section, tail));
            if !named {
                unnamed.push(from_root);
            }
        }
    }
    assert!(
        unnamed.is_empty(),
        "ARCHITECTURE.md does not name {} Rust file(s); name each by the rule at the top of \
         ARCHITECTURE.md (in its crate's section, its path from the crate's folder or from \
         src/, or a tail no other file of the crate ends with; anywhere, its path from the \
         workspace root):\n  {}",
        unnamed.len(),
        unnamed.join("\n  ")
    );
}

#[test]
fn every_path_from_the_workspace_root_names_a_file() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let map = std::fs::read_to_string(workspace.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let missing: Vec<String> = paths_from_root(&map)
        .into_iter()
        .filter(|path| !workspace.join(path).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn a_path_counts_only_whole() {
    let text = "`src/store/mod.rs` and `cli.rs`, (e2e/main.rs), sources/rpm/header.rs.";
    assert!(names_whole(text, "src/store/mod.rs"));
    assert!(!names_whole(text, "store/mod.rs"));
    assert!(!names_whole(text, "mod.rs"));
    assert!(names_whole(text, "cli.rs"));
    assert!(!names_whole(text, "src/cli.rs"));
    assert!(names_whole(text, "e2e/main.rs"));
    assert!(names_whole(text, "sources/rpm/header.rs"));
    assert!(!names_whole(text, "rpm/header.rs"));
    assert!(!names_whole("`cli.rsx`", "cli.rs"));

    let map = "# A\n`x.rs`\n## agent/ (sverka-agent)\n`scan.rs`\n## collector/ (c)\n`api.rs`\n";
    assert_eq!(crate_section(map, "agent"), "`scan.rs`\n");
    assert_eq!(crate_section(map, "collector"), "`api.rs`\n");
    assert_eq!(crate_section(map, "shared"), "");

    let crate_files = [
        "src/web/scope.rs".to_string(),
        "src/store/mod.rs".to_string(),
        "src/web/mod.rs".to_string(),
        "src/store/dashboard.rs".to_string(),
        "tests/dashboard.rs".to_string(),
    ];
    assert_eq!(
        unique_tails("src/web/scope.rs", &crate_files),
        vec!["src/web/scope.rs", "web/scope.rs", "scope.rs"]
    );
    assert_eq!(
        unique_tails("src/store/mod.rs", &crate_files),
        vec!["src/store/mod.rs", "store/mod.rs"]
    );
    assert_eq!(
        unique_tails("tests/dashboard.rs", &crate_files),
        vec!["tests/dashboard.rs"]
    );

    let paths = paths_from_root(
        "`agent/src/scan.rs`, tests/e2e/cli.rs. `tests/api.rs` (collector's), \
         `src/agent/x.rs`, collector/migrations/0001.sql",
    );
    assert_eq!(paths, vec!["agent/src/scan.rs", "tests/e2e/cli.rs"]);
}

/// The tails of `path` (whole components: `src/web/scope.rs`, `web/scope.rs`,
/// `scope.rs`) that no other path of `all` ends with.
fn unique_tails(path: &str, all: &[String]) -> Vec<String> {
    let components: Vec<&str> = path.split('/').collect();
    (0..components.len())
        .map(|start| components[start..].join("/"))
        .filter(|tail| {
            !all.iter().any(|other| {
                other != path && (other == tail || other.ends_with(&format!("/{tail}")))
            })
        })
        .collect()
}

/// Whether `text` holds `path` as a whole path: not as the tail of a longer path nor
/// the head of a longer name.
fn names_whole(text: &str, path: &str) -> bool {
    let part_of_path = |character: char| character.is_alphanumeric() || "_./-".contains(character);
    text.match_indices(path).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + path.len()..].chars().next();
        !before.is_some_and(part_of_path)
            && !after.is_some_and(|character| character.is_alphanumeric() || character == '_')
    })
}

/// The `*.rs` paths in `text` that start at a crate's folder: paths from the workspace
/// root. `tests/NAME.rs` is left out: in a crate's section it is that crate's
/// integration test, named from the crate's folder.
fn paths_from_root(text: &str) -> Vec<String> {
    let part_of_path = |character: char| character.is_alphanumeric() || "_./-".contains(character);
    text.split(|character: char| !part_of_path(character))
        .map(|token| token.trim_end_matches('.'))
        .filter(|token| token.ends_with(".rs"))
        .filter(|token| {
            let mut components = token.split('/');
            let first = components.next().unwrap_or_default();
            let rest = components.count();
            CRATES.contains(&first) && !(first == "tests" && rest == 1)
        })
        .map(str::to_string)
        .collect()
}

/// The text of a crate's section: after its `## <crate>/` heading, up to the next `## `
/// heading; empty when there is none.
fn crate_section<'a>(map: &'a str, krate: &str) -> &'a str {
    let heading = format!("## {krate}/");
    let mut offset = 0;
    let mut start = None;
    for line in map.split_inclusive('\n') {
        if line.starts_with("## ") {
            if let Some(start) = start {
                return &map[start..offset];
            }
            if line.starts_with(&heading) {
                start = Some(offset + line.len());
            }
        }
        offset += line.len();
    }
    start.map_or("", |start| &map[start..])
}

/// Every `*.rs` file under a folder, skipping build output and hidden folders.
fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("reading {}: {error}", current.display()));
        for entry in entries {
            let entry = entry.expect("a folder entry");
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
