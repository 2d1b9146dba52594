//! Reading back what the run left: every page and CSV/XLSX export as an administrator
//! (no payload as markup, no formula cell), the hostile PC's page in headless Chromium
//! (no script ran), and the tables SQL injection would have dropped or emptied.

use anyhow::{Context, bail};
use std::time::Duration;

use super::{RAW_HTML_MARKERS, Stage};
use crate::proof::isolation::answer_text;
use crate::proof::isolation::web::{self, Answer};
use crate::real_collector::Collector;

#[derive(Debug, Default)]
pub struct Neutral {
    pub pages: u64,
    pub csv: u64,
    pub xlsx: u64,
    pub payloads_seen: u64,
    pub unneutralized: Vec<String>,
}

fn formula_start(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell that is a plain number (a negative count is no formula).
fn is_number(cell: &str) -> bool {
    cell.replace(',', ".").trim().parse::<f64>().is_ok()
}

fn check_cell(neutral: &mut Neutral, source: &str, cell: &str) {
    if cell.contains("cmd|") || cell.contains("HYPERLINK") || cell.contains("__pwned") {
        neutral.payloads_seen += 1;
    }
    // A spreadsheet, or an importer that trims cells, may skip leading blanks: the
    // first visible character counts.
    if formula_start(cell.trim_start()) && !is_number(cell) {
        neutral
            .unneutralized
            .push(format!("{source}: cell {cell:?}"));
    }
}

/// Splits CSV (`;`, RFC 4180 quoting) into cells.
fn csv_cells(text: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ';') | (false, '\n') => cells.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

pub fn check_pages_and_exports(
    stage: &mut Stage,
    hosts: &[(i64, String)],
) -> anyhow::Result<Neutral> {
    let mut neutral = Neutral::default();
    let (region, school) = (stage.region, stage.school);
    let mut pages = vec![
        format!("/org/{region}"),
        format!("/org/{school}"),
        format!("/school/{school}"),
        format!("/org/{region}/weekly"),
        format!("/org/{school}/weekly"),
        format!("/org/{school}/enrollment"),
        "/catalog".to_string(),
        "/users".to_string(),
        "/audit".to_string(),
        "/tokens".to_string(),
    ];
    let mut exports = Vec::new();
    for format in ["csv", "xlsx"] {
        exports.push(format!("/org/{region}/export/{format}"));
        exports.push(format!("/org/{school}/weekly/export/{format}"));
        for table in ["violations", "silent", "clean"] {
            exports.push(format!("/school/{school}/export/{table}/{format}"));
        }
        for (host, _) in hosts {
            for table in ["findings", "inventory", "timeline"] {
                exports.push(format!("/host/{host}/export/{table}/{format}"));
            }
        }
    }
    for (host, _) in hosts {
        pages.push(format!("/host/{host}"));
    }
    for language in ["en", "ru"] {
        let answer = stage.admin.post_form(
            "/language",
            &[
                ("csrf", &stage.admin_csrf),
                ("language", language),
                ("back", "/"),
            ],
        )?;
        if answer.status >= 400 {
            bail!("switching the language: {}", answer.status);
        }
        for page in &pages {
            let answer = stage.admin.get(page)?;
            if answer.status != 200 {
                bail!("{page} answered {} to the administrator", answer.status);
            }
            neutral.pages += 1;
            let html = answer.text();
            for marker in RAW_HTML_MARKERS {
                if html.contains(marker) {
                    neutral
                        .unneutralized
                        .push(format!("{page}: raw {marker:?} in HTML"));
                }
            }
            neutral.payloads_seen += html.matches("&lt;script&gt;window.__pwned").count() as u64
                + html.matches("&lt;img src=x onerror").count() as u64;
        }
        for export in &exports {
            let answer = stage.admin.get(export)?;
            if answer.status != 200 {
                bail!("{export} answered {} to the administrator", answer.status);
            }
            if export.ends_with("csv") {
                neutral.csv += 1;
                for cell in csv_cells(&answer.text()) {
                    check_cell(&mut neutral, export, &cell);
                }
            } else {
                neutral.xlsx += 1;
                check_xlsx(&mut neutral, export, &answer)?;
            }
        }
    }
    Ok(neutral)
}

fn check_xlsx(neutral: &mut Neutral, source: &str, answer: &Answer) -> anyhow::Result<()> {
    use calamine::{Data, Reader, Xlsx};
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(answer.body.clone()))
            .with_context(|| format!("{source} is an XLSX workbook"))?;
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .with_context(|| format!("{source}: a sheet"))?;
        for cell in range.used_cells() {
            if let (_, _, Data::String(text)) = cell {
                check_cell(neutral, source, text);
            }
        }
        let formulas = workbook
            .worksheet_formula(&name)
            .with_context(|| format!("{source}: formulas"))?;
        let count = formulas
            .used_cells()
            .filter(|(_, _, text)| !text.is_empty())
            .count();
        if count > 0 {
            neutral
                .unneutralized
                .push(format!("{source}: {count} formula cells"));
        }
    }
    // Not text of its own: the answer as text must hold no payload as markup either.
    let _ = answer_text(answer);
    Ok(())
}

/// Opens the hostile PC's page in headless Chromium; whether any script ran.
pub fn browser_check(stage: &Stage, host: Option<i64>) -> anyhow::Result<bool> {
    let host = host.context("no hostile host")?;
    let url = stage.collector.url();
    let browser = crate::browser::Browser::start();
    browser.goto(&format!("{url}/login"));
    browser.fill("#login", "admin");
    browser.fill("#password", web::PASSWORD);
    browser.click("#sign-in");
    browser.wait_for("location.pathname !== '/login'");
    let mut ran = false;
    for page in [format!("/host/{host}"), format!("/school/{}", stage.school)] {
        browser.goto(&format!("{url}{page}"));
        std::thread::sleep(Duration::from_millis(300));
        if browser.alert_text().is_some() {
            eprintln!("hostile: an alert is open on {page}");
            ran = true;
            continue;
        }
        let state = browser.execute(
            "return [typeof window.__pwned, document.title, \
             document.querySelectorAll('[onerror],[onload],img[src=x]').length, \
             document.body.innerText.includes('window.__pwned')];",
        );
        eprintln!("hostile: Chromium on {page}: {state}");
        let pwned =
            state[0] != "undefined" || state[1] == "pwned" || state[2].as_u64().unwrap_or(1) > 0;
        if state[3] != true {
            bail!("the payload is not on {page} at all: the browser check would prove nothing");
        }
        ran |= pwned;
    }
    Ok(ran)
}

/// The tables SQL injection would have dropped or emptied are there and full.
pub fn database_intact(collector: &Collector) -> bool {
    let Ok(connection) = rusqlite::Connection::open(collector.database()) else {
        return false;
    };
    let count = |table: &str| -> i64 {
        connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap_or(-1)
    };
    count("hosts") > 0 && count("reports") > 0 && count("users") >= 2 && count("organizations") >= 2
}
