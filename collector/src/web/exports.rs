//! What makes an export ready to send: a title block (organization, what and which
//! week, frozen or live, when it was made) and a file name that says the same
//! (`Нарушения-Школа-1-2026-W48.xlsx`), sent with an ASCII fallback for old clients.

use super::clock::{Clock, Week};
use super::i18n::Lang;

/// The title of an export.
#[derive(Debug, Clone)]
pub struct ExportTitle {
    /// What the table is: "Нарушения", "Обзор", "Еженедельный отчёт".
    pub subject: String,
    pub organization: String,
    pub week: Week,
    /// "неделя закрыта, цифры зафиксированы" or "текущая неделя, ... по состоянию на ...".
    pub state: String,
    pub generated_at: i64,
}

impl ExportTitle {
    /// The title block: one line each.
    pub fn lines(&self, clock: &Clock, lang: Lang) -> Vec<String> {
        let texts = lang.texts();
        let generated = match lang {
            Lang::Ru => "Сформировано",
            Lang::En => "Generated",
        };
        vec![
            format!("{} — {}", self.subject, self.organization),
            format!(
                "{} {} ({} {}), {}",
                texts.week,
                self.week.label,
                texts.week_ending,
                clock.date(self.week.last_day),
                self.state
            ),
            format!("{generated}: {}", clock.date_time(self.generated_at)),
        ]
    }

    /// `subject-organization-week.extension`, letters and digits of any script kept,
    /// everything else a dash.
    pub fn file_name(&self, extension: &str) -> String {
        format!(
            "{}-{}-{}.{extension}",
            file_stem(&self.subject),
            file_stem(&self.organization),
            self.week.label
        )
    }
}

/// Letters and digits kept, runs of anything else one dash, at most 60 characters.
pub fn file_stem(text: &str) -> String {
    let mut stem = String::new();
    for character in text.chars() {
        if character.is_alphanumeric() {
            stem.push(character);
        } else if !stem.ends_with('-') && !stem.is_empty() {
            stem.push('-');
        }
    }
    let stem: String = stem.trim_end_matches('-').chars().take(60).collect();
    if stem.is_empty() {
        "export".into()
    } else {
        stem
    }
}

/// `attachment` with the name as UTF-8 (RFC 6266 `filename*`) and an ASCII fallback.
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "-._".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file_name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_what_and_which_week() {
        let clock = Clock::new("Europe/Moscow", "thursday").expect("clock");
        let title = ExportTitle {
            subject: "Нарушения".into(),
            organization: "Школа №1 «Солнышко»".into(),
            week: clock.parse_week("2026-W48").expect("week"),
            state: "зафиксировано".into(),
            generated_at: 1_795_338_000,
        };
        assert_eq!(
            title.file_name("xlsx"),
            "Нарушения-Школа-1-Солнышко-2026-W48.xlsx"
        );
        let lines = title.lines(&clock, Lang::Ru);
        assert_eq!(lines[0], "Нарушения — Школа №1 «Солнышко»");
        assert_eq!(
            lines[1],
            "Неделя 2026-W48 (неделя по 26.11.2026), зафиксировано"
        );
        assert_eq!(lines[2], "Сформировано: 22.11.2026 12:00");
        let disposition = content_disposition(&title.file_name("csv"));
        assert!(disposition.starts_with("attachment; filename=\"_________-"));
        assert!(
            disposition.contains("filename*=UTF-8''%D0%9D"),
            "{disposition}"
        );
        assert_eq!(file_stem("///"), "export");
    }
}
