//! Violation lists as JSON and as CSV that opens correctly in a Russian-locale Excel
//! (UTF-8 with a byte order mark, `;` between fields). Cells that a spreadsheet would
//! run as a formula are neutralised.

use serde::Serialize;

use crate::format_time;
use crate::store::ViolationRow;

/// One host and application, as `report violations --format json` prints it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViolationExport {
    pub host: String,
    pub host_id: i64,
    pub organization: String,
    pub organization_id: i64,
    pub app: String,
    pub app_name: String,
    pub status: String,
    pub strength: String,
    pub users: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// The evidence as the PC reported it (`null` where the stored text does not read).
    #[schema(value_type = Option<Vec<sverka_shared::Evidence>>)]
    pub evidence: serde_json::Value,
}

impl From<&ViolationRow> for ViolationExport {
    fn from(row: &ViolationRow) -> ViolationExport {
        ViolationExport {
            host: row.hostname.clone(),
            host_id: row.host_id,
            organization: row.organization.clone(),
            organization_id: row.organization_id,
            app: row.app_id.clone(),
            app_name: row.app_name.clone(),
            status: row.status.as_str().to_string(),
            strength: row.strength.as_str().to_string(),
            users: row.users.clone(),
            first_seen: format_time(row.first_seen),
            last_seen: format_time(row.last_seen),
            resolved_at: row.resolved_at.map(format_time),
            evidence: serde_json::from_str(&row.evidence).unwrap_or(serde_json::Value::Null),
        }
    }
}

pub fn violations_json(rows: &[ViolationRow]) -> String {
    let exports: Vec<ViolationExport> = rows.iter().map(ViolationExport::from).collect();
    serde_json::to_string_pretty(&exports).unwrap_or_else(|_| "[]".into())
}

/// A cell a spreadsheet shows as text, never runs as a formula.
pub fn neutral_cell(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    // Control characters became spaces, and a spreadsheet (or an importer that trims
    // cells) may skip leading blanks: the first visible character decides.
    if clean.trim_start().starts_with(['=', '+', '-', '@']) {
        format!("'{clean}")
    } else {
        clean
    }
}

/// CSV with a BOM and `;`, ready for Excel in a Russian locale.
pub fn csv_for_excel(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row.iter().map(|cell| neutral_cell(cell)))?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_excel_gets_a_bom() {
        assert_eq!(neutral_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutral_cell("-1+1"), "'-1+1");
        assert_eq!(neutral_cell("Школа №5"), "Школа №5");
        assert_eq!(neutral_cell("a\r\nb"), "a  b");
        assert_eq!(neutral_cell("\t=1+1"), "' =1+1");
        assert_eq!(neutral_cell("  @SUM(A1)"), "'  @SUM(A1)");
        let csv = csv_for_excel(&["a", "b"], &[vec!["1;2".into(), "@x".into()]]).expect("csv");
        let text = String::from_utf8(csv).expect("utf-8");
        assert_eq!(text, "\u{feff}a;b\n\"1;2\";'@x\n");
    }
}
