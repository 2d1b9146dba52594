//! Dates for people: the organization's time zone (default Europe/Moscow), the Russian
//! date format, and reporting weeks that end on a chosen day (Thursday by default),
//! named by the ISO week of their last day (`2026-W47`).

use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("{0:?} is not a day of the week (monday ... sunday)")]
    Weekday(String),
}

/// A time zone and the day weeks end on.
#[derive(Debug, Clone)]
pub struct Clock {
    zone: TimeZone,
    week_ends_on: Weekday,
}

/// One reporting week: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    pub label: String,
    pub start: i64,
    pub end: i64,
    /// The week's last day.
    pub last_day: Date,
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text.trim().to_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl Clock {
    pub fn new(time_zone: &str, week_ends_on: &str) -> Result<Clock, ClockError> {
        let zone =
            TimeZone::get(time_zone).map_err(|_| ClockError::TimeZone(time_zone.to_string()))?;
        let week_ends_on = parse_weekday(week_ends_on)
            .ok_or_else(|| ClockError::Weekday(week_ends_on.to_string()))?;
        Ok(Clock { zone, week_ends_on })
    }

    /// The same week end in another time zone.
    pub fn with_zone(&self, time_zone: &str) -> Result<Clock, ClockError> {
        let zone =
            TimeZone::get(time_zone).map_err(|_| ClockError::TimeZone(time_zone.to_string()))?;
        Ok(Clock {
            zone,
            week_ends_on: self.week_ends_on,
        })
    }

    fn date_of(&self, seconds: i64) -> Date {
        jiff::Timestamp::from_second(seconds)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone())
            .date()
    }

    fn start_of(&self, date: Date) -> i64 {
        date.to_zoned(self.zone.clone())
            .map(|zoned| zoned.timestamp().as_second())
            .unwrap_or(0)
    }

    /// `22.11.2026 14:05` in the clock's time zone.
    pub fn date_time(&self, seconds: i64) -> String {
        jiff::Timestamp::from_second(seconds)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone())
            .strftime("%d.%m.%Y %H:%M")
            .to_string()
    }

    /// `22.11.2026`.
    pub fn date(&self, date: Date) -> String {
        date.strftime("%d.%m.%Y").to_string()
    }

    /// Seconds east of UTC at that moment (for spreadsheet dates, which have no zone).
    pub fn offset_seconds(&self, seconds: i64) -> i64 {
        let timestamp =
            jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        i64::from(self.zone.to_offset(timestamp).seconds())
    }

    fn week_ending(&self, last_day: Date) -> Week {
        let iso = last_day.iso_week_date();
        let end = self.start_of(last_day.tomorrow().unwrap_or(last_day));
        let first_day = last_day
            .checked_sub(jiff::Span::new().days(6))
            .unwrap_or(last_day);
        Week {
            label: format!("{:04}-W{:02}", iso.year(), iso.week()),
            start: self.start_of(first_day),
            end,
            last_day,
        }
    }

    /// The week that contains the moment.
    pub fn week_of(&self, seconds: i64) -> Week {
        let date = self.date_of(seconds);
        let ahead = (self.week_ends_on.to_monday_zero_offset()
            - date.weekday().to_monday_zero_offset())
        .rem_euclid(7);
        let last_day = date
            .checked_add(jiff::Span::new().days(i64::from(ahead)))
            .unwrap_or(date);
        self.week_ending(last_day)
    }

    /// The week before `week`.
    pub fn previous(&self, week: &Week) -> Week {
        let last_day = week
            .last_day
            .checked_sub(jiff::Span::new().days(7))
            .unwrap_or(week.last_day);
        self.week_ending(last_day)
    }

    /// A week by its label, `2026-W47`: the one whose last day lies in that ISO week.
    pub fn parse_week(&self, label: &str) -> Option<Week> {
        let (year, week) = label.trim().split_once("-W")?;
        let year: i16 = year.parse().ok()?;
        let week: i8 = week.parse().ok()?;
        let last_day = ISOWeekDate::new(year, week, self.week_ends_on).ok()?.date();
        Some(self.week_ending(last_day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moscow() -> Clock {
        Clock::new("Europe/Moscow", "thursday").expect("clock")
    }

    #[test]
    fn weeks_end_on_thursday_in_moscow() {
        let clock = moscow();
        // Sunday 22 November 2026, 12:00 Moscow (09:00 UTC).
        let sunday = 1_795_338_000;
        assert_eq!(clock.date_time(sunday), "22.11.2026 12:00");
        let week = clock.week_of(sunday);
        assert_eq!(week.label, "2026-W48");
        assert_eq!(clock.date(week.last_day), "26.11.2026");
        // Friday 20 November 00:00 Moscow = 19 November 21:00 UTC.
        assert_eq!(clock.date_time(week.start), "20.11.2026 00:00");
        assert_eq!(week.end - week.start, 7 * 86_400);
        let previous = clock.previous(&week);
        assert_eq!(previous.label, "2026-W47");
        assert_eq!(previous.end, week.start);
        assert_eq!(clock.parse_week("2026-W47"), Some(previous));
        assert_eq!(clock.parse_week("2026-W48"), Some(week));
        assert_eq!(clock.parse_week("2026-W99"), None);
        assert_eq!(clock.parse_week("junk"), None);
        // A Thursday belongs to the week it ends.
        let thursday = clock.parse_week("2026-W47").expect("week").end - 1;
        assert_eq!(clock.week_of(thursday).label, "2026-W47");
    }

    #[test]
    fn another_zone_moves_dates_and_week_boundaries() {
        let samara = moscow().with_zone("Europe/Samara").expect("samara");
        // Sunday 22 November 2026, 09:00 UTC: 13:00 in Samara (UTC+4).
        assert_eq!(samara.date_time(1_795_338_000), "22.11.2026 13:00");
        let in_moscow = moscow().week_of(1_795_338_000);
        let in_samara = samara.week_of(1_795_338_000);
        assert_eq!(in_samara.label, in_moscow.label);
        // The week still ends on Thursday, an hour earlier in absolute time.
        assert_eq!(in_moscow.start - in_samara.start, 3600);
        assert_eq!(samara.date(in_samara.last_day), "26.11.2026");
        assert!(moscow().with_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Clock::new("Mars/Olympus", "thursday").is_err());
        assert!(Clock::new("Europe/Moscow", "someday").is_err());
        assert_eq!(moscow().offset_seconds(1_795_338_000), 3 * 3600);
    }
}
