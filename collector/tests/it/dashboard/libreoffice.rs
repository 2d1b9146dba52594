//! The exports opened by a real spreadsheet program: LibreOffice (headless) converts
//! the overview's, the weekly report's and the worklist's XLSX to PDF, and poppler's
//! `pdfinfo`/`pdftotext` read the PDF back: one landscape page per sheet (so every
//! column fits the page's width), with the title block and every column header whole
//! on it. Headers are read in Carlito, the font metric-compatible with Excel's Calibri
//! (Debian's `fonts-crosextra-carlito`), as a school's Excel would show them.
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
    // The XLSX names Calibri; without a font of its metrics LibreOffice lays the
    // sheet out in a wider one than any Excel would.
    let calibri = run("fc-match", &["Calibri"]);
    assert!(
        calibri.contains("Carlito"),
        "Calibri is {calibri:?} here, not Carlito: install Debian's \
         fonts-crosextra-carlito (scripts/test.sh installs it)"
    );
}

/// One sheet of an export: its title block's lines and its header row.
struct Sheet {
    title: Vec<String>,
    header: Vec<String>,
}

/// Every sheet of an export, as the XLSX holds them.
fn sheets(xlsx: &[u8]) -> Vec<Sheet> {
    use calamine::{Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(xlsx.to_vec())).expect("an xlsx workbook");
    let count = workbook.sheet_names().len();
    (0..count)
        .map(|index| {
            let sheet = workbook
                .worksheet_range_at(index)
                .expect("a sheet")
                .expect("range");
            let rows: Vec<Vec<String>> = sheet
                .rows()
                .map(|row| row.iter().map(|cell| cell.to_string()).collect())
                .collect();
            // Three title lines, an empty row, then the header (rendering.rs checks this).
            Sheet {
                title: rows[..3].iter().map(|row| row[0].clone()).collect(),
                header: rows[4]
                    .iter()
                    .filter(|cell| !cell.is_empty())
                    .cloned()
                    .collect(),
            }
        })
        .collect()
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

/// Checks one converted export: one landscape page per sheet (so every column fits
/// the page's width: a column that does not fit goes to a page of its own), each
/// holding its sheet's title block and every header whole.
fn check_pdf(pdf: &Path, sheets: &[Sheet]) {
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
        sheets.len().to_string(),
        "{pdf_path}: not one page per sheet (a column does not fit the page's width)"
    );
    let size = field("Page size:");
    let mut sides = size
        .split_whitespace()
        .filter_map(|word| word.parse::<f64>().ok());
    let (width, height) = (sides.next().unwrap_or(0.0), sides.next().unwrap_or(0.0));
    assert!(width > height, "{pdf_path}: not landscape ({size})");
    for (index, sheet) in sheets.iter().enumerate() {
        let number = (index + 1).to_string();
        let page = run(
            "pdftotext",
            &["-layout", "-f", &number, "-l", &number, &pdf_path, "-"],
        );
        // Wrapped header cells break their words over lines; read cells as words.
        let page_words = words(&page);
        for line in &sheet.title {
            assert!(
                page_words.contains(&words(line)),
                "{pdf_path}: the title line {line:?} is not whole on page {number}:\n{page}"
            );
        }
        for name in &sheet.header {
            for word in name.split_whitespace() {
                assert!(
                    page.contains(word),
                    "{pdf_path}: the header {name:?} is not whole on page {number} \
                     ({word:?} missing):\n{page}"
                );
            }
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
        exports.push((name, file, sheets(&answer.body)));
    }

    // One LibreOffice run converts all three, with a profile of its own so that
    // parallel runs do not share one.
    let profile = format!(
        "-env:UserInstallation=file://{}/profile",
        folder.path().display()
    );
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

    for (name, _, sheets) in &exports {
        assert!(
            sheets.iter().all(|sheet| sheet.header.len() >= 5),
            "{name}: a table of five columns or more"
        );
        check_pdf(&out_dir.join(format!("{name}.pdf")), sheets);
    }
}
