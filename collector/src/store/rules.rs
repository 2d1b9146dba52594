//! The rules every backend enforces on what it is asked to store: names, logins,
//! notes, token names, and whether an enrollment secret may still enroll. The SQL
//! implementation calls these before it writes; they are plain functions, tested here.

use super::dashboard::Role;
use super::{NewOrganization, StoreError, StoreResult, Timestamp, Webhook};

/// An organization needs a name and a non-negative number of expected PCs; its time
/// zone, when given, is one jiff knows. Returns the time zone as stored.
pub fn check_new_organization(new: &NewOrganization) -> StoreResult<Option<String>> {
    if new.name.trim().is_empty() {
        return Err(StoreError::Invalid("an organization needs a name".into()));
    }
    if new.expected_pcs < 0 {
        return Err(StoreError::Invalid(
            "the expected number of PCs cannot be negative".into(),
        ));
    }
    checked_time_zone(new.time_zone.as_deref())
}

/// An organization's time zone as stored: an IANA name jiff knows (`Europe/Samara`),
/// or `None` (empty text too) to inherit.
pub fn checked_time_zone(name: Option<&str>) -> StoreResult<Option<String>> {
    match name.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) if jiff::tz::TimeZone::get(name).is_ok() => Ok(Some(name.to_string())),
        Some(name) => Err(StoreError::Invalid(format!(
            "unknown time zone {name:?} (an IANA name such as Europe/Moscow)"
        ))),
    }
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// An organization's weekly report recipients as stored: each address checked, joined
/// with commas; empty or `None` clears them.
pub fn checked_report_recipients(recipients: Option<&str>) -> StoreResult<Option<String>> {
    let Some(text) = recipients else {
        return Ok(None);
    };
    let parsed = crate::mail::parse_recipients(text).map_err(StoreError::Invalid)?;
    Ok((!parsed.is_empty()).then(|| crate::mail::recipients_text(&parsed)))
}

/// The shortest webhook secret taken: the HMAC key must not be guessable.
pub const WEBHOOK_SECRET_MIN_CHARS: usize = 16;

/// An address the collector calls out to (a webhook, an upstream collector): an
/// `http://` or `https://` URL of at most 2,000 characters with a host and no user
/// name or password in it (they would be shown on pages and in logs; the call is
/// authenticated otherwise). The error says why not.
pub fn checked_outbound_url(url: &str) -> Result<reqwest::Url, String> {
    let url = url.trim();
    if url.len() > 2_000 {
        return Err("longer than 2,000 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|error| error.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("only http:// and https:// are taken".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it names no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a user name or password in the URL would be shown on pages and in logs;              the call is authenticated otherwise"
            .into());
    }
    Ok(parsed)
}

/// A webhook as stored: a [`checked_outbound_url`] and a secret of 16 to 256
/// characters without spaces at its ends.
pub fn checked_webhook(webhook: &Webhook) -> StoreResult<Webhook> {
    let url = webhook.url.trim();
    checked_outbound_url(url)
        .map_err(|why| StoreError::Invalid(format!("webhook URL {url:?}: {why}")))?;
    let secret = webhook.secret.trim();
    let length = secret.chars().count();
    if !(WEBHOOK_SECRET_MIN_CHARS..=256).contains(&length) {
        return Err(StoreError::Invalid(format!(
            "the webhook secret has {length} characters; it needs {WEBHOOK_SECRET_MIN_CHARS} to 256"
        )));
    }
    Ok(Webhook {
        url: url.to_string(),
        secret: secret.to_string(),
    })
}

/// A reporting cut-off as stored: a day of the week and, optionally, a time
/// (`thursday 15:00`; `thursday` alone is the end of that day), or `None` (empty text
/// too) to inherit. Day names may be cut to three letters and any case.
pub fn checked_report_cutoff(text: Option<&str>) -> StoreResult<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let invalid = || {
        StoreError::Invalid(format!(
            "{text:?} is not a reporting cut-off (a day and a time, such as thursday 15:00)"
        ))
    };
    let mut parts = text.split_whitespace();
    let day = parts.next().unwrap_or_default().to_lowercase();
    let day = WEEKDAYS
        .iter()
        .find(|name| day.len() >= 3 && name.starts_with(day.as_str()))
        .ok_or_else(invalid)?;
    let time = match parts.next() {
        None => None,
        Some(time) => {
            let (hours, minutes) = time.split_once(':').ok_or_else(invalid)?;
            let hours: u8 = hours.parse().map_err(|_| invalid())?;
            let minutes: u8 = minutes.parse().map_err(|_| invalid())?;
            if hours > 23 || minutes > 59 || minutes_text_len(time) {
                return Err(invalid());
            }
            Some(format!("{hours:02}:{minutes:02}"))
        }
    };
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok(Some(match time {
        Some(time) => format!("{day} {time}"),
        None => day.to_string(),
    }))
}

/// Whether the minutes of `HH:MM` are not two digits.
fn minutes_text_len(time: &str) -> bool {
    time.split_once(':')
        .is_none_or(|(_, minutes)| minutes.len() != 2)
}

/// A login as stored (trimmed): 1 to 64 characters without control characters.
/// Officers and school admins belong to an organization; administrators may not.
pub fn check_new_user(
    login: &str,
    role: Role,
    organization_id: Option<i64>,
) -> StoreResult<String> {
    let login = login.trim();
    if login.is_empty() || login.len() > 64 || login.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a login is 1 to 64 characters without control characters".into(),
        ));
    }
    if role != Role::Administrator && organization_id.is_none() {
        return Err(StoreError::Invalid(
            "officers and school admins belong to an organization".into(),
        ));
    }
    Ok(login.to_string())
}

/// Logins are compared without regard to case (and surrounding space).
pub fn login_key(login: &str) -> String {
    login.trim().to_lowercase()
}

/// A token name as stored (trimmed): at most 100 characters, no control characters.
pub fn check_token_name(name: &str) -> StoreResult<&str> {
    let name = name.trim();
    if name.len() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a token name is at most 100 characters without control characters".into(),
        ));
    }
    Ok(name)
}

/// A handled note is at most 2000 bytes.
pub fn check_note(note: &str) -> StoreResult<()> {
    if note.len() > 2000 {
        return Err(StoreError::Invalid(
            "a note is at most 2000 bytes long".into(),
        ));
    }
    Ok(())
}

/// An enrollment secret as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSecret {
    pub organization_id: i64,
    pub secret_hash: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The organization a presented secret enrolls into, if it may: it exists, its hash
/// matches (compared in constant time), it is not revoked and has not expired. An
/// unknown secret and a wrong hash answer alike.
pub fn check_secret(
    stored: Option<StoredSecret>,
    presented_hash: &str,
    now: Timestamp,
) -> StoreResult<i64> {
    let unknown = || StoreError::Rejected("unknown enrollment secret".into());
    let secret = stored.ok_or_else(unknown)?;
    if !crate::keys::same_hash(&secret.secret_hash, presented_hash) {
        return Err(unknown());
    }
    if secret.revoked_at.is_some() {
        return Err(StoreError::Rejected(
            "this enrollment secret was revoked".into(),
        ));
    }
    if secret.expires_at.is_some_and(|expires| expires <= now) {
        return Err(StoreError::Rejected(
            "this enrollment secret has expired".into(),
        ));
    }
    Ok(secret.organization_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cutoffs_are_a_day_and_a_time() {
        let check = |text: &str| checked_report_cutoff(Some(text));
        assert_eq!(
            check("Thursday 15:00").expect("ok").as_deref(),
            Some("thursday 15:00")
        );
        assert_eq!(
            check(" fri 9:05 ").expect("ok").as_deref(),
            Some("friday 09:05")
        );
        assert_eq!(check("thu").expect("ok").as_deref(), Some("thursday"));
        assert_eq!(check("").expect("ok"), None);
        assert_eq!(checked_report_cutoff(None).expect("ok"), None);
        for bad in [
            "th",
            "someday",
            "thursday 24:00",
            "thursday 15",
            "thursday 15:7",
            "mon 10:00 x",
        ] {
            assert!(matches!(check(bad), Err(StoreError::Invalid(_))), "{bad}");
        }
    }

    fn secret(expires_at: Option<i64>, revoked_at: Option<i64>) -> StoredSecret {
        StoredSecret {
            organization_id: 7,
            secret_hash: crate::keys::hash("right"),
            expires_at,
            revoked_at,
        }
    }

    fn rejection(result: StoreResult<i64>) -> String {
        match result {
            Err(StoreError::Rejected(message)) => message,
            other => format!("not a rejection: {other:?}"),
        }
    }

    #[test]
    fn secrets_enroll_only_while_valid() {
        let right = crate::keys::hash("right");
        let wrong = crate::keys::hash("wrong");
        assert_eq!(
            check_secret(Some(secret(None, None)), &right, 100).ok(),
            Some(7)
        );
        assert_eq!(
            check_secret(Some(secret(Some(101), None)), &right, 100).ok(),
            Some(7)
        );
        assert_eq!(
            rejection(check_secret(Some(secret(None, None)), &wrong, 100)),
            "unknown enrollment secret"
        );
        assert_eq!(
            rejection(check_secret(None, &right, 100)),
            "unknown enrollment secret"
        );
        assert_eq!(
            rejection(check_secret(Some(secret(None, Some(50))), &right, 100)),
            "this enrollment secret was revoked"
        );
        assert_eq!(
            rejection(check_secret(Some(secret(Some(100), None)), &right, 100)),
            "this enrollment secret has expired"
        );
    }

    #[test]
    fn logins_are_trimmed_bounded_and_need_an_organization_below_administrator() {
        assert_eq!(
            check_new_user("  anna ", Role::Officer, Some(1)).ok(),
            Some("anna".to_string())
        );
        assert!(check_new_user("root", Role::Administrator, None).is_ok());
        for (login, role, organization) in [
            ("", Role::Administrator, None),
            ("a\u{7}b", Role::Administrator, None),
            (&"x".repeat(65) as &str, Role::Administrator, None),
            ("anna", Role::SchoolAdmin, None),
        ] {
            assert!(
                matches!(
                    check_new_user(login, role, organization),
                    Err(StoreError::Invalid(_))
                ),
                "{login:?} {role:?} {organization:?}"
            );
        }
        assert_eq!(login_key(" AnNa "), "anna");
    }

    #[test]
    fn organizations_notes_and_token_names_are_checked() {
        let organization =
            |name: &str, expected_pcs: i64, time_zone: Option<&str>| NewOrganization {
                parent_id: None,
                name: name.into(),
                kind: "school".into(),
                expected_pcs,
                time_zone: time_zone.map(str::to_string),
            };
        assert_eq!(
            check_new_organization(&organization("Школа", 3, Some(" Europe/Samara "))).ok(),
            Some(Some("Europe/Samara".to_string()))
        );
        assert_eq!(
            check_new_organization(&organization("Школа", 0, Some(""))).ok(),
            Some(None)
        );
        for bad in [
            organization(" ", 3, None),
            organization("Школа", -1, None),
            organization("Школа", 1, Some("Mars/Olympus")),
        ] {
            assert!(matches!(
                check_new_organization(&bad),
                Err(StoreError::Invalid(_))
            ));
        }
        assert!(check_note(&"я".repeat(1000)).is_ok());
        assert!(check_note(&"я".repeat(1001)).is_err());
        assert_eq!(check_token_name(" ci ").ok(), Some("ci"));
        assert!(check_token_name(&"t".repeat(101)).is_err());
        assert!(check_token_name("a\nb").is_err());
    }
}
