//! How a report is shown: a table for people, documented JSON for programs.

use std::fmt::Write as _;
use sverka_shared::{AppStatus, ScanReport};

/// The report as pretty JSON (the documented `schema: 1` shape).
pub fn json(report: &ScanReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
}

fn pad(text: &str, width: usize) -> String {
    let length = text.chars().count();
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(' ', width.saturating_sub(length)));
    padded
}

/// Makes a string safe for a terminal: control characters (escape sequences in a file
/// name, say) are shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                '?'
            } else {
                character
            }
        })
        .collect()
}

/// The report as a table: what, how sure, for whom, and the evidence for it.
pub fn table(report: &ScanReport) -> String {
    let mut out = String::new();
    let host = &report.host;
    let os = if host.os_name.is_empty() {
        host.os_id.clone()
    } else {
        host.os_name.clone()
    };
    let _ = writeln!(
        out,
        "Sverka scan of {} ({}){}, catalog {}, {} ms",
        printable(&host.hostname),
        printable(&os),
        host.scanned_root
            .as_deref()
            .map(|root| format!(", image at {}", printable(root)))
            .unwrap_or_default(),
        printable(&report.catalog_version),
        report.duration_ms
    );
    let _ = writeln!(out);
    if report.findings.is_empty() {
        let _ = writeln!(out, "No catalog application was found.");
    } else {
        let headers = ["STATUS", "APPLICATION", "HOW SURE", "USERS"];
        let rows: Vec<[String; 4]> = report
            .findings
            .iter()
            .map(|finding| {
                [
                    finding.status.to_string(),
                    printable(&finding.name),
                    finding.strength.to_string(),
                    if finding.users.is_empty() {
                        "(machine)".to_string()
                    } else {
                        printable(&finding.users.join(", "))
                    },
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..4)
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .chain([headers[column].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let _ = writeln!(
            out,
            "{}  {}  {}  {}  EVIDENCE",
            pad(headers[0], widths[0]),
            pad(headers[1], widths[1]),
            pad(headers[2], widths[2]),
            pad(headers[3], widths[3])
        );
        let indent = widths.iter().sum::<usize>() + 8;
        for (row, finding) in rows.iter().zip(&report.findings) {
            let mut line = format!(
                "{}  {}  {}  {}  ",
                pad(&row[0], widths[0]),
                pad(&row[1], widths[1]),
                pad(&row[2], widths[2]),
                pad(&row[3], widths[3])
            );
            for (index, evidence) in finding.evidence.iter().enumerate() {
                if index > 0 {
                    line = " ".repeat(indent);
                }
                let last_used = evidence
                    .profile_last_used
                    .as_deref()
                    .map(|time| {
                        let day = time.get(..10).unwrap_or(time);
                        format!(", profile last used {}", printable(day))
                    })
                    .unwrap_or_default();
                let whose = evidence
                    .user
                    .as_deref()
                    .map(|user| format!(" [{}{last_used}]", printable(user)))
                    .unwrap_or_default();
                let location = evidence
                    .path
                    .as_deref()
                    .map(|path| format!(" at {}", printable(path)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{line}{}: {}{location}{whose} ({})",
                    evidence.source,
                    printable(&evidence.detail),
                    evidence.strength
                );
            }
        }
    }
    let _ = writeln!(out);
    let banned: Vec<&str> = report
        .violations()
        .map(|finding| finding.name.as_str())
        .collect();
    let approved: Vec<&str> = report
        .findings
        .iter()
        .filter(|finding| {
            finding.status == AppStatus::Approved
                && finding.strength >= sverka_shared::Strength::Installed
        })
        .map(|finding| finding.name.as_str())
        .collect();
    if banned.is_empty() {
        let _ = writeln!(out, "Result: no banned messenger is installed or running.");
    } else {
        let _ = writeln!(
            out,
            "Result: {} banned messenger(s) installed or running: {}.",
            banned.len(),
            printable(&banned.join(", "))
        );
    }
    if !approved.is_empty() {
        let _ = writeln!(
            out,
            "Approved messenger(s) present: {}.",
            printable(&approved.join(", "))
        );
    }
    for skipped in &report.skipped {
        let _ = writeln!(
            out,
            "Skipped {}: {}",
            skipped.source,
            printable(&skipped.reason)
        );
    }
    if !report.errors.is_empty() {
        let _ = writeln!(
            out,
            "Could not read everything ({} problem(s)):",
            report.errors.len()
        );
        for error in &report.errors {
            let path = error
                .path
                .as_deref()
                .map(|path| format!(" {}:", printable(path)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}:{path} {}",
                error.source,
                printable(&error.message)
            );
        }
    }
    out
}
