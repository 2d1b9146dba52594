//! One table type behind every page table and every export: HTML (sortable by links,
//! no JavaScript needed), CSV for a Russian-locale Excel (BOM, `;`) and XLSX with typed
//! columns and widths. Text from agents is escaped in HTML by maud and neutralised in
//! CSV and XLSX so a spreadsheet never runs it as a formula.

use maud::{Markup, html};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::cmp::Ordering;

use super::clock::Clock;
use crate::export::{csv_for_excel, neutral_cell};

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Text that links to a page of the dashboard.
    Link(String, String),
    Int(i64),
    /// A count that links to the list of what it counts.
    IntLink(i64, String),
    /// A share, 0.0 to 1.0; `None` shows as empty.
    Share(Option<f64>),
    /// A signed change; `None` when there is nothing to compare with.
    Delta(Option<f64>),
    /// Unix seconds; `None` shows as empty.
    Time(Option<i64>),
}

impl Cell {
    fn order(&self, other: &Cell) -> Ordering {
        fn number(cell: &Cell) -> Option<f64> {
            match cell {
                Cell::Int(value) | Cell::IntLink(value, _) => Some(*value as f64),
                Cell::Share(value) | Cell::Delta(value) => *value,
                Cell::Time(value) => value.map(|value| value as f64),
                Cell::Text(_) | Cell::Link(..) => None,
            }
        }
        fn text(cell: &Cell) -> Option<String> {
            match cell {
                Cell::Text(text) | Cell::Link(text, _) => Some(text.to_lowercase()),
                _ => None,
            }
        }
        match (number(self), number(other)) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => text(self).cmp(&text(other)),
        }
    }

    /// The cell as text for people (HTML and CSV), in the Russian number format.
    pub fn display(&self, clock: &Clock) -> String {
        match self {
            Cell::Text(text) | Cell::Link(text, _) => text.clone(),
            Cell::Int(value) | Cell::IntLink(value, _) => value.to_string(),
            Cell::Share(Some(share)) if clock.decimal_point() => format!("{:.1}", share * 100.0),
            Cell::Share(Some(share)) => format!("{:.1}", share * 100.0).replace('.', ","),
            Cell::Delta(Some(delta)) => {
                let text = if delta.fract() == 0.0 {
                    format!("{delta:+.0}")
                } else if clock.decimal_point() {
                    format!("{delta:+.1}")
                } else {
                    format!("{delta:+.1}").replace('.', ",")
                };
                text.replace('-', "−")
            }
            Cell::Time(Some(seconds)) => clock.date_time(*seconds),
            Cell::Share(None) | Cell::Delta(None) | Cell::Time(None) => String::new(),
        }
    }
}

impl Cell {
    /// The cell in a CSV file: as on the page, except that changes are plain signed
    /// numbers (`-2`, `3,5`), which spreadsheets read as numbers.
    pub fn csv_value(&self, clock: &Clock) -> String {
        match self {
            Cell::Delta(Some(delta)) => {
                if delta.fract() == 0.0 {
                    format!("{delta:.0}")
                } else {
                    format!("{delta:.1}").replace('.', ",")
                }
            }
            Cell::Share(Some(share)) => format!("{:.1}", share * 100.0).replace('.', ","),
            other => other.display(clock),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    /// Width in Excel characters.
    pub width: f64,
}

pub fn column(title: &'static str, width: f64) -> Column {
    Column { title, width }
}

#[derive(Debug, Clone)]
pub struct Table {
    /// File name stem of exports and the id of the HTML table.
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    pub totals: Option<Vec<Cell>>,
}

/// `?sort=N&dir=desc` on a page.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct SortOrder {
    pub sort: Option<usize>,
    pub dir: Option<Direction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Asc,
    Desc,
}

impl Table {
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Table {
        Table {
            name: name.into(),
            columns,
            rows: Vec::new(),
            totals: None,
        }
    }

    pub fn sort(&mut self, order: SortOrder) {
        let Some(index) = order.sort.filter(|index| *index < self.columns.len()) else {
            return;
        };
        let descending = order.dir == Some(Direction::Desc);
        self.rows.sort_by(|a, b| {
            let ordering = match (a.get(index), b.get(index)) {
                (Some(a), Some(b)) => a.order(b),
                _ => Ordering::Equal,
            };
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }

    /// The table with sort links in its header; `base` is the page's path, with the
    /// page's own query (`?week=2026-W47`) when it has one.
    pub fn html(&self, clock: &Clock, base: &str, order: SortOrder, empty: &str) -> Markup {
        if self.rows.is_empty() {
            return html! { p.empty { (empty) } };
        }
        let joint = if base.contains('?') { '&' } else { '?' };
        html! {
            div.table-wrap {
                table.data id=(self.name) {
                    thead { tr {
                        @for (index, column) in self.columns.iter().enumerate() {
                            @let next = if order.sort == Some(index) && order.dir != Some(Direction::Desc) { "desc" } else { "asc" };
                            @let mark = match (order.sort == Some(index), order.dir) {
                                (true, Some(Direction::Desc)) => " ↓",
                                (true, _) => " ↑",
                                _ => "",
                            };
                            @let sorted = match (order.sort == Some(index), order.dir) {
                                (true, Some(Direction::Desc)) => Some("descending"),
                                (true, _) => Some("ascending"),
                                _ => None,
                            };
                            th scope="col" aria-sort=[sorted] { a href={ (base) (joint) "sort=" (index) "&dir=" (next) "#" (self.name) } { (column.title) (mark) } }
                        }
                    } }
                    tbody {
                        @for row in &self.rows {
                            tr { @for cell in row { (cell_html(cell, clock)) } }
                        }
                    }
                    @if let Some(totals) = &self.totals {
                        tfoot { tr { @for cell in totals { (cell_html(cell, clock)) } } }
                    }
                }
            }
        }
    }

    /// The table in the order it has, without sort links (a page's second table: the
    /// page's `?sort=` is its main table's).
    pub fn fixed_html(&self, clock: &Clock, empty: &str) -> Markup {
        if self.rows.is_empty() {
            return html! { p.empty { (empty) } };
        }
        html! {
            div.table-wrap {
                table.data id=(self.name) {
                    thead { tr {
                        @for column in &self.columns {
                            th scope="col" { (column.title) }
                        }
                    } }
                    tbody {
                        @for row in &self.rows {
                            tr { @for cell in row { (cell_html(cell, clock)) } }
                        }
                    }
                    @if let Some(totals) = &self.totals {
                        tfoot { tr { @for cell in totals { (cell_html(cell, clock)) } } }
                    }
                }
            }
        }
    }

    fn all_rows(&self) -> impl Iterator<Item = &Vec<Cell>> {
        self.rows.iter().chain(self.totals.iter())
    }

    /// CSV for a Russian-locale spreadsheet: numbers (counts, shares in percent,
    /// changes) are plain numbers with a decimal comma, so they sum and sort as
    /// numbers; the header is the first line.
    pub fn csv(&self, clock: &Clock) -> Result<Vec<u8>, csv::Error> {
        let header: Vec<&str> = self.columns.iter().map(|column| column.title).collect();
        let rows: Vec<Vec<String>> = self
            .all_rows()
            .map(|row| row.iter().map(|cell| cell.csv_value(clock)).collect())
            .collect();
        csv_for_excel(&header, &rows)
    }

    pub fn xlsx(&self, clock: &Clock) -> Result<Vec<u8>, XlsxError> {
        self.xlsx_titled(clock, &[])
    }

    /// The table as a workbook under a title block (one line per cell of column A).
    pub fn xlsx_titled(&self, clock: &Clock, title: &[String]) -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        self.add_titled_sheet(&mut workbook, clock, &self.name, title)?;
        workbook.save_to_buffer()
    }

    /// Adds the table as a worksheet (names are cut to Excel's 31 characters).
    pub fn add_sheet(
        &self,
        workbook: &mut Workbook,
        clock: &Clock,
        sheet_name: &str,
    ) -> Result<(), XlsxError> {
        self.add_titled_sheet(workbook, clock, sheet_name, &[])
    }

    /// Adds the table as a worksheet ready to print: the title block on top (first line
    /// bold), then the header row, which repeats on every printed page; landscape A4,
    /// fitted to the page width.
    pub fn add_titled_sheet(
        &self,
        workbook: &mut Workbook,
        clock: &Clock,
        sheet_name: &str,
        title: &[String],
    ) -> Result<(), XlsxError> {
        let header = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(rust_xlsxwriter::FormatAlign::Top)
            .set_border(rust_xlsxwriter::FormatBorder::Thin)
            .set_background_color("EEF1F5");
        let integer = Format::new().set_num_format("0");
        let share = Format::new().set_num_format("0.0%");
        let delta = Format::new().set_num_format("+0.0;−0.0;0");
        let time = Format::new().set_num_format("dd.mm.yyyy hh:mm");
        let sheet = workbook.add_worksheet();
        let name: String = sheet_name
            .chars()
            .filter(|character| !"[]:*?/\\".contains(*character))
            .take(31)
            .collect();
        sheet.set_name(if name.is_empty() { "Sheet1" } else { &name })?;
        let heading = Format::new().set_bold().set_font_size(13);
        for (line, text) in title.iter().enumerate() {
            if line == 0 {
                sheet.write_string_with_format(0, 0, neutral_cell(text), &heading)?;
            } else {
                sheet.write_string(line as u32, 0, neutral_cell(text))?;
            }
        }
        // The header row, after the title block and an empty row.
        let header_row = if title.is_empty() {
            0
        } else {
            title.len() as u32 + 1
        };
        // Every header whole: a column at least as wide as its longest word, and the
        // header row as tall as its most wrapped header (spreadsheet programs other
        // than Excel do not grow a row for wrapped text by themselves).
        let widths: Vec<f64> = self
            .columns
            .iter()
            .map(|column| column.width.max(header_word_width(column.title)))
            .collect();
        let header_lines = self
            .columns
            .iter()
            .zip(&widths)
            .map(|(column, width)| wrapped_lines(column.title, *width))
            .max()
            .unwrap_or(1);
        sheet.set_row_height(header_row, 15.0 * header_lines as f64 + 3.0)?;
        for (index, (column, width)) in self.columns.iter().zip(&widths).enumerate() {
            let index = index as u16;
            sheet.set_column_width(index, *width)?;
            sheet.write_string_with_format(header_row, index, column.title, &header)?;
        }
        sheet.set_landscape();
        sheet.set_paper_size(9);
        sheet.set_print_fit_to_pages(1, 0);
        sheet.set_repeat_rows(header_row, header_row)?;
        sheet.set_margins(0.4, 0.4, 0.5, 0.5, 0.3, 0.3);
        for (row_index, row) in self.all_rows().enumerate() {
            let row_number = row_index as u32 + header_row + 1;
            for (column_index, cell) in row.iter().enumerate() {
                let column_number = column_index as u16;
                match cell {
                    Cell::Text(text) | Cell::Link(text, _) => {
                        sheet.write_string(row_number, column_number, neutral_cell(text))?;
                    }
                    Cell::Int(value) | Cell::IntLink(value, _) => {
                        sheet.write_number_with_format(
                            row_number,
                            column_number,
                            *value as f64,
                            &integer,
                        )?;
                    }
                    Cell::Share(Some(value)) => {
                        sheet.write_number_with_format(
                            row_number,
                            column_number,
                            *value,
                            &share,
                        )?;
                    }
                    Cell::Delta(Some(value)) => {
                        sheet.write_number_with_format(
                            row_number,
                            column_number,
                            *value,
                            &delta,
                        )?;
                    }
                    Cell::Time(Some(seconds)) => {
                        // Spreadsheet dates are days since 1899-12-30 in local time.
                        let local = seconds + clock.offset_seconds(*seconds);
                        let serial = local as f64 / 86_400.0 + 25_569.0;
                        sheet.write_number_with_format(row_number, column_number, serial, &time)?;
                    }
                    Cell::Share(None) | Cell::Delta(None) | Cell::Time(None) => {}
                }
            }
        }
        let last_row = self.all_rows().count() as u32 + header_row;
        if !self.columns.is_empty() {
            sheet.set_freeze_panes(header_row + 1, 0)?;
            sheet.autofilter(header_row, 0, last_row, self.columns.len() as u16 - 1)?;
        }
        Ok(())
    }
}

fn cell_html(cell: &Cell, clock: &Clock) -> Markup {
    match cell {
        Cell::Link(text, href) => html! { td { a href=(href) { (text) } } },
        Cell::Text(text) => html! { td { (text) } },
        Cell::IntLink(value, href) => html! { td.number { a href=(href) { (value) } } },
        _ => html! { td.number { (cell.display(clock)) } },
    }
}

/// How much wider than a plain character a bold header character is, in a column
/// width's units (with a margin for fonts wider than the default one).
const BOLD_CHARACTER: f64 = 1.2;
/// A cell's padding, in a column width's units.
const CELL_PADDING: f64 = 1.5;

/// The column width the longest word of a header needs, unbroken.
fn header_word_width(title: &str) -> f64 {
    let longest = title
        .split_whitespace()
        .map(|word| word.chars().count())
        .max()
        .unwrap_or(0);
    longest as f64 * BOLD_CHARACTER + CELL_PADDING
}

/// How many lines a bold header takes in a wrapped cell `width` wide: words are not
/// broken, a line takes words while they fit.
fn wrapped_lines(title: &str, width: f64) -> usize {
    let room = (width - CELL_PADDING).max(1.0);
    let mut lines = 1;
    let mut used = 0.0;
    for word in title.split_whitespace() {
        let length = word.chars().count() as f64 * BOLD_CHARACTER;
        if used == 0.0 {
            used = length;
        } else if used + BOLD_CHARACTER + length <= room {
            used += BOLD_CHARACTER + length;
        } else {
            lines += 1;
            used = length;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new("Europe/Moscow", "thursday").expect("clock")
    }

    #[test]
    fn headers_wrap_by_words_and_columns_hold_their_longest_word() {
        // 10 letters: 10 × 1.2 + 1.5.
        assert!((header_word_width("Отчитались за неделю") - 13.5).abs() < 1e-9);
        assert_eq!(wrapped_lines("Отчитались за неделю", 13.5), 2);
        assert_eq!(wrapped_lines("Отчитались за неделю", 30.0), 1);
        assert_eq!(wrapped_lines("С запрещёнными мессенджерами", 20.0), 2);
        assert_eq!(wrapped_lines("С запрещёнными мессенджерами", 16.0), 3);
        assert_eq!(wrapped_lines("", 10.0), 1);
    }

    fn table() -> Table {
        let mut table = Table::new("t", vec![column("Имя", 20.0), column("N", 8.0)]);
        table.rows = vec![
            vec![Cell::Text("=cmd|' /C calc'!A0".into()), Cell::Int(3)],
            vec![
                Cell::Text("<img src=x onerror=alert(1)>".into()),
                Cell::Int(10),
            ],
            vec![Cell::Text("Школа".into()), Cell::Share(Some(0.125))],
        ];
        table
    }

    #[test]
    fn html_escapes_and_sorts() {
        let mut table = table();
        table.sort(SortOrder {
            sort: Some(1),
            dir: Some(Direction::Desc),
        });
        assert_eq!(table.rows[0][1], Cell::Int(10));
        let html = table
            .html(&clock(), "/x", SortOrder::default(), "")
            .into_string();
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"));
        assert!(html.contains("12,5"));
    }

    #[test]
    fn csv_and_xlsx_neutralise_formulas() {
        let csv = String::from_utf8(table().csv(&clock()).expect("csv")).expect("utf-8");
        assert!(csv.starts_with("\u{feff}Имя;N\n"));
        assert!(csv.contains("'=cmd"));
        let xlsx = table().xlsx(&clock()).expect("xlsx");
        assert!(xlsx.starts_with(b"PK"));
    }
}
