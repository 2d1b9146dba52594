//! The exports opened by a real spreadsheet program: LibreOffice (headless) converts
//! the overview's, the weekly report's and the worklist's XLSX to PDF, and poppler's
//! `pdfinfo`/`pdftotext` read the PDF back: one landscape page (so every column fits
//! the page's width), with the title block and every column header whole on it.
//!
//! Needs Debian's `libreoffice-calc-nogui` and `poppler-utils` (the full suite,
//! `scripts/test.sh`, installs them); without them the test fails and names them.

use super::*;
use std::path::Path;
use std::process::Command;

/// The programs this test runs, and the Debian package of each.
const TOOLS: [(&str, &str); 3] = [
    ("libreoffice", "libreoffice-calc-nogui"),
    ("pdfinfo", "poppler-utils"),
    ("pdftotext", "poppler-utils"),
];

fn require_tools() {
    for (program, package) in TOOLS {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{program} is missing: this test opens the exports in LibreOffice; install \
             Debian's {package} (scripts/test.sh installs it)"
        );
    }
}

/// The title block's lines and the header row of an export, as the XLSX holds them.
fn title_and_header(xlsx: &[u8]) -> (Vec<String>, Vec<String>) {
    use calamine::{Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.to_vec())).expect("an xlsx workbook");
    let sheet = workbook
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("range");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|row| row.iter().map(|cell| cell.to_string()).collect())
        .collect();
    // Three title lines, an empty row, then the header (rendering.rs checks this).
    let title = rows[..3].iter().map(|row| row[0].clone()).collect();
    let header = rows[4].iter().filter(|cell| !cell.is_empty()).cloned().collect();
    (title, header)
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Words of `text` in order, whitespace of any kind (line breaks of a wrapped cell
/// included) one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks one converted export: one landscape page holding the title and headers.
fn check_pdf(pdf: &Path, title: &[String], header: &[String]) {
    let pdf_path = pdf.to_string_lossy();
    let info = run("pdfinfo", &[&pdf_path]);
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("pdfinfo gave no {name}: {info}"))
            .to_string()
    };
    assert_eq!(
        field("Pages:"),
        "1",
        "{pdf_path}: the table spills onto more pages (a column does not fit the \
         page's width)"
    );
    let size = field("Page size:");
    let mut sides = size
        .split_whitespace()
        .filter_map(|word| word.parse::<f64>().ok());
    let (width, height) = (sides.next().unwrap_or(0.0), sides.next().unwrap_or(0.0));
    assert!(width > height, "{pdf_path}: not landscape ({size})");
    let page = run("pdftotext", &["-layout", "-f", "1", "-l", "1", &pdf_path, "-"]);
    // Wrapped header cells break their words over lines; read cells as words.
    let page_words = words(&page);
    for line in title {
        assert!(
            page_words.contains(&words(line)),
            "{pdf_path}: the title line {line:?} is not whole on page 1:\n{page}"
        );
    }
    for name in header {
        for word in name.split_whitespace() {
            assert!(
                page.contains(word),
                "{pdf_path}: the header {name:?} is not whole on page 1 ({word:?} \
                 missing):\n{page}"
            );
        }
    }
}

#[tokio::test]
async fn libreoffice_prints_each_export_on_one_page_with_its_title_and_headers() {
    require_tools();
    let harness = harness().await;
    let mut officer = Client::login(&harness, "officer").await;
    let folder = tempfile::tempdir().expect("tempdir");
    let region = harness.region;
    let mut exports = Vec::new();
    for (name, path) in [
        ("overview", format!("/org/{region}/export/xlsx")),
        ("weekly", format!("/org/{region}/weekly/export/xlsx")),
        ("worklist", format!("/org/{region}/worklist/export/xlsx")),
    ] {
        let answer = officer.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
        let file = folder.path().join(format!("{name}.xlsx"));
        std::fs::write(&file, &answer.body).expect("write the export");
        exports.push((name, file, title_and_header(&answer.body)));
    }

    // One LibreOffice run converts all three, with a profile of its own so that
    // parallel runs do not share one.
    let profile = format!("-env:UserInstallation=file://{}/profile", folder.path().display());
    let out_dir = folder.path().join("pdf");
    let out = out_dir.to_string_lossy().into_owned();
    let mut args = vec![
        profile.as_str(),
        "--headless",
        "--norestore",
        "--convert-to",
        "pdf",
        "--outdir",
        &out,
    ];
    let inputs: Vec<String> = exports
        .iter()
        .map(|(_, file, _)| file.to_string_lossy().into_owned())
        .collect();
    args.extend(inputs.iter().map(String::as_str));
    run("libreoffice", &args);

    for (name, _, (title, header)) in &exports {
        assert!(header.len() >= 5, "{name}: {header:?}");
        check_pdf(&out_dir.join(format!("{name}.pdf")), title, header);
    }
}
