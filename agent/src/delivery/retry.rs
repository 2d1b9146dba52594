//! When to try a report again, as pure functions: what an answer means
//! ([`disposition`]), how long to wait before attempt n ([`Backoff::wait`]: exponential
//! back-off with full jitter, never less than the collector's `Retry-After`), and how to
//! read `Retry-After` ([`parse_retry_after`], seconds or an HTTP date).

use std::time::{Duration, SystemTime};

/// What to do with a report after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The collector is unreachable, busy or failing: keep the report, wait, try again.
    Retry,
    /// The collector will never accept this report (a 4xx other than 401, 404, 405,
    /// 408, 429): set it aside and go on with the next.
    Reject,
    /// The host key is no longer valid (401): stop; the admin must enroll again.
    Reenroll,
}

/// What an HTTP status means for a report; `None` is a failure without an answer
/// (connection refused, timeout, a reset).
pub fn disposition(status: Option<u16>) -> Disposition {
    match status {
        Some(401) => Disposition::Reenroll,
        // Busy, or timed out; 404 and 405 say the URL does not lead to a collector
        // (yet), which is no fault of the report.
        Some(404 | 405 | 408 | 429) => Disposition::Retry,
        Some(status) if (400..500).contains(&status) => Disposition::Reject,
        _ => Disposition::Retry,
    }
}

/// Exponential back-off with full jitter: before retry `n` (0 for the first retry) wait
/// a uniformly random time in `[0, min(cap, base * 2^n)]`, but at least what the
/// collector asked for with `Retry-After` (itself capped by `max_retry_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A collector asking for a longer pause than this is waited out only this long.
    pub max_retry_after: Duration,
}

impl Backoff {
    /// For the service: 5 s doubling up to 15 min.
    pub const SERVICE: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(15 * 60),
        max_retry_after: Duration::from_secs(60 * 60),
    };
    /// For `run --once`, which someone is waiting for: 1 s doubling up to 10 s.
    pub const ONCE: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(60),
    };

    /// The wait before retry `retry` (0-based). `unit_random` is uniform in `[0, 1)`;
    /// it is a parameter so this stays a pure function.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        let ceiling = self
            .base
            .checked_mul(2u32.saturating_pow(retry.min(31)))
            .unwrap_or(self.cap)
            .min(self.cap);
        let jittered = ceiling.mul_f64(unit_random.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// `Retry-After` as a wait from `now`: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`; a date in the past means no wait). Anything else is
/// ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_answer_means() {
        let cases = [
            (None, Disposition::Retry),
            (Some(500), Disposition::Retry),
            (Some(502), Disposition::Retry),
            (Some(503), Disposition::Retry),
            (Some(408), Disposition::Retry),
            (Some(429), Disposition::Retry),
            (Some(401), Disposition::Reenroll),
            (Some(400), Disposition::Reject),
            (Some(403), Disposition::Reject),
            (Some(404), Disposition::Retry),
            (Some(413), Disposition::Reject),
            (Some(422), Disposition::Reject),
            (Some(302), Disposition::Retry),
        ];
        for (status, expected) in cases {
            assert_eq!(disposition(status), expected, "{status:?}");
        }
    }

    #[test]
    fn back_off_doubles_up_to_the_cap_with_full_jitter() {
        let backoff = Backoff::SERVICE;
        let seconds = |retry, random| backoff.wait(retry, None, random).as_secs_f64();
        // The top of the range doubles from 5 s and stops at 15 min.
        let tops: Vec<f64> = (0..10).map(|retry| seconds(retry, 1.0)).collect();
        assert_eq!(
            tops,
            [
                5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 900.0, 900.0
            ]
        );
        assert_eq!(seconds(u32::MAX, 1.0), 900.0);
        // Full jitter: anywhere from zero to the top.
        assert_eq!(seconds(3, 0.0), 0.0);
        assert_eq!(seconds(3, 0.25), 10.0);
        assert_eq!(seconds(3, 7.0), 40.0, "random values are clamped");
    }

    #[test]
    fn retry_after_is_a_floor_within_its_own_cap() {
        let backoff = Backoff::ONCE;
        let wait = |retry_after: u64, random| {
            backoff
                .wait(0, Some(Duration::from_secs(retry_after)), random)
                .as_secs_f64()
        };
        assert_eq!(wait(3, 0.0), 3.0, "the collector's pause is waited out");
        assert_eq!(wait(0, 0.5), 0.5, "a shorter pause leaves the jitter");
        assert_eq!(wait(86_400, 0.0), 60.0, "an absurd pause is capped");
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 22 Nov 2026 08:00:00 GMT").unwrap();
        let cases = [
            ("120", Some(120)),
            (" 7 ", Some(7)),
            ("0", Some(0)),
            ("Sun, 22 Nov 2026 08:00:30 GMT", Some(30)),
            ("Sun, 22 Nov 2026 07:00:00 GMT", Some(0)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now).map(|wait| wait.as_secs()),
                expected,
                "{value:?}"
            );
        }
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
