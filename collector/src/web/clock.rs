//! Dates for people: the organization's time zone (default Europe/Moscow), the Russian
//! date format, and reporting weeks that end at a cut-off, a chosen day (Thursday by
//! default) and time (the end of that day by default), named by the ISO week of their
//! last day (`2026-W47`).

use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("{0:?} is not a day of the week (monday ... sunday)")]
    Weekday(String),
    #[error("{0:?} is not a reporting cut-off (a day and a time, such as thursday 15:00)")]
    Cutoff(String),
}

/// A time zone and the cut-off weeks end at.
#[derive(Debug, Clone)]
pub struct Clock {
    zone: TimeZone,
    week_ends_on: Weekday,
    /// The time of day the week ends; `None`: at the end of `week_ends_on`.
    cutoff: Option<jiff::civil::Time>,
    /// Numbers on pages with a decimal point (English) rather than a comma.
    decimal_point: bool,
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
        Ok(Clock {
            zone,
            week_ends_on,
            cutoff: None,
            decimal_point: false,
        })
    }

    /// The same time zone with another cut-off: `thursday 15:00`, or `thursday` for the
    /// end of that day (as `store::checked_report_cutoff` stores it).
    pub fn with_cutoff(&self, cutoff: &str) -> Result<Clock, ClockError> {
        let invalid = || ClockError::Cutoff(cutoff.to_string());
        let mut parts = cutoff.split_whitespace();
        let week_ends_on = parts.next().and_then(parse_weekday).ok_or_else(invalid)?;
        let time = match parts.next() {
            None => None,
            Some(text) => {
                let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
                let hours: i8 = hours.parse().map_err(|_| invalid())?;
                let minutes: i8 = minutes.parse().map_err(|_| invalid())?;
                Some(jiff::civil::Time::new(hours, minutes, 0, 0).map_err(|_| invalid())?)
            }
        };
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Clock {
            zone: self.zone.clone(),
            week_ends_on,
            cutoff: time,
            decimal_point: self.decimal_point,
        })
    }

    /// The same clock for a page in `lang`: English pages write numbers with a decimal
    /// point (exports keep the Russian comma, for a Russian-locale spreadsheet).
    pub fn in_language(mut self, lang: super::i18n::Lang) -> Clock {
        self.decimal_point = lang == super::i18n::Lang::En;
        self
    }

    /// Whether numbers on pages take a decimal point.
    pub fn decimal_point(&self) -> bool {
        self.decimal_point
    }

    /// The cut-off for people: `четверг 15:00` / `Thursday 15:00`, the day alone when
    /// the week ends at midnight.
    pub fn cutoff_text(&self, lang: super::i18n::Lang) -> String {
        let day = match (lang, self.week_ends_on) {
            (super::i18n::Lang::Ru, Weekday::Monday) => "понедельник",
            (super::i18n::Lang::Ru, Weekday::Tuesday) => "вторник",
            (super::i18n::Lang::Ru, Weekday::Wednesday) => "среда",
            (super::i18n::Lang::Ru, Weekday::Thursday) => "четверг",
            (super::i18n::Lang::Ru, Weekday::Friday) => "пятница",
            (super::i18n::Lang::Ru, Weekday::Saturday) => "суббота",
            (super::i18n::Lang::Ru, Weekday::Sunday) => "воскресенье",
            (super::i18n::Lang::En, Weekday::Monday) => "Monday",
            (super::i18n::Lang::En, Weekday::Tuesday) => "Tuesday",
            (super::i18n::Lang::En, Weekday::Wednesday) => "Wednesday",
            (super::i18n::Lang::En, Weekday::Thursday) => "Thursday",
            (super::i18n::Lang::En, Weekday::Friday) => "Friday",
            (super::i18n::Lang::En, Weekday::Saturday) => "Saturday",
            (super::i18n::Lang::En, Weekday::Sunday) => "Sunday",
        };
        match self.cutoff {
            Some(time) => format!("{day} {}", time.strftime("%H:%M")),
            None => day.to_string(),
        }
    }

    /// Whether `seconds` falls on the day the current week's report is due, before
    /// the cut-off: on that day, pages open on the week being reported.
    pub fn is_due_day(&self, seconds: i64) -> bool {
        self.week_of(seconds).last_day == self.date_of(seconds)
    }

    /// The same week end in another time zone.
    pub fn with_zone(&self, time_zone: &str) -> Result<Clock, ClockError> {
        let zone =
            TimeZone::get(time_zone).map_err(|_| ClockError::TimeZone(time_zone.to_string()))?;
        Ok(Clock {
            zone,
            week_ends_on: self.week_ends_on,
            cutoff: self.cutoff,
            decimal_point: self.decimal_point,
        })
    }

    pub fn date_of(&self, seconds: i64) -> Date {
        jiff::Timestamp::from_second(seconds)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone())
            .date()
    }

    /// Local midnight of the day of `seconds`, plus `minutes`.
    pub fn at_minutes_of_day(&self, seconds: i64, minutes: u16) -> i64 {
        self.start_of(self.date_of(seconds)) + i64::from(minutes) * 60
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

    /// The moment the week whose last day is `last_day` ends.
    fn end_of(&self, last_day: Date) -> i64 {
        match self.cutoff {
            Some(time) => last_day
                .to_datetime(time)
                .to_zoned(self.zone.clone())
                .map(|zoned| zoned.timestamp().as_second())
                .unwrap_or(0),
            None => self.start_of(last_day.tomorrow().unwrap_or(last_day)),
        }
    }

    fn week_ending(&self, last_day: Date) -> Week {
        let iso = last_day.iso_week_date();
        let week_before = last_day
            .checked_sub(jiff::Span::new().days(7))
            .unwrap_or(last_day);
        Week {
            label: format!("{:04}-W{:02}", iso.year(), iso.week()),
            start: self.end_of(week_before),
            end: self.end_of(last_day),
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
        let week = self.week_ending(last_day);
        if seconds < week.end {
            return week;
        }
        // Past the cut-off on the last day: the next week has begun.
        let next = last_day
            .checked_add(jiff::Span::new().days(7))
            .unwrap_or(last_day);
        self.week_ending(next)
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

/// `clock` with the reporting cut-off of an organization (its own or inherited); an
/// unreadable one is logged and the clock's kept.
pub fn with_cutoff_of(clock: Clock, tree: &super::scope::OrganizationTree, id: i64) -> Clock {
    match tree.report_cutoff(id) {
        Some(cutoff) => clock.with_cutoff(cutoff).unwrap_or_else(|error| {
            tracing::warn!(organization_id = id, "{error}; using the collector's week");
            clock
        }),
        None => clock,
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

    /// A cut-off on Thursday at 15:00, in Moscow and in Kamchatka (UTC+12): the week
    /// ends at 15:00 local time; before it, Thursday is the due day of the current week.
    #[test]
    fn a_cutoff_time_ends_the_week_in_each_zone() {
        for (zone, offset_hours) in [("Europe/Moscow", 3), ("Asia/Kamchatka", 12)] {
            let clock = moscow()
                .with_zone(zone)
                .expect("zone")
                .with_cutoff("thursday 15:00")
                .expect("cut-off");
            // Thursday 26 November 2026, 00:00 UTC, shifted to local midnight.
            let local_midnight = 1_795_651_200 - offset_hours * 3600;
            let morning = local_midnight + 10 * 3600;
            let afternoon = local_midnight + 16 * 3600;
            let week = clock.week_of(morning);
            assert_eq!(week.label, "2026-W48", "{zone}");
            assert_eq!(week.end, local_midnight + 15 * 3600, "{zone}");
            assert_eq!(week.end - week.start, 7 * 86_400, "{zone}");
            assert_eq!(clock.date_time(week.end), "26.11.2026 15:00", "{zone}");
            assert!(clock.is_due_day(morning), "{zone}");
            let next = clock.week_of(afternoon);
            assert_eq!(next.label, "2026-W49", "{zone}");
            assert_eq!(next.start, week.end, "{zone}");
            assert!(!clock.is_due_day(afternoon), "{zone}");
            assert_eq!(clock.previous(&next), week, "{zone}");
            assert_eq!(clock.parse_week("2026-W48"), Some(week), "{zone}");
            // On Wednesday the report is not due yet.
            assert!(!clock.is_due_day(morning - 86_400), "{zone}");
        }
        let friday = moscow().with_cutoff("friday").expect("friday");
        assert_eq!(friday.cutoff_text(crate::web::i18n::Lang::Ru), "пятница");
        assert_eq!(
            moscow()
                .with_cutoff("thursday 09:30")
                .expect("cut-off")
                .cutoff_text(crate::web::i18n::Lang::En),
            "Thursday 09:30"
        );
        assert!(moscow().with_cutoff("thursday 25:00").is_err());
        assert!(moscow().with_cutoff("someday").is_err());
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Clock::new("Mars/Olympus", "thursday").is_err());
        assert!(Clock::new("Europe/Moscow", "someday").is_err());
        assert_eq!(moscow().offset_seconds(1_795_338_000), 3 * 3600);
    }
}
