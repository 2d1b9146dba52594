//! The federation protocol: what a lower collector (a municipality's) sends to its
//! upstream (the region's, the country's) about the organizations it serves, and the
//! answers. Figures only, never reports: the upstream holds no PC of a lower collector,
//! only its counts and (when the link allows) the names of PCs with a banned messenger.
//!
//! A message is idempotent: its current figures apply only when they are newer than the
//! last applied (`generated_at`), and a frozen week, once stored, never changes. Fields
//! added later get `#[serde(default)]`; a field this release does not know is kept in
//! `not_understood` so the upstream can say what it refused.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an upstream describes a link to the lower collector holding its secret.
pub const LINK_PATH: &str = "/api/v1/federation/link";
/// Where a lower collector sends its figures.
pub const FIGURES_PATH: &str = "/api/v1/federation/figures";

/// The protocol version this release writes.
pub const FEDERATION_PROTOCOL: u32 = 1;

/// The versions an upstream of this release reads: its own, and the next release's
/// (whose additions it reports as refused instead of failing the message).
pub const READABLE_PROTOCOLS: [u32; 2] = [FEDERATION_PROTOCOL, FEDERATION_PROTOCOL + 1];

/// The most a message may carry (the upstream refuses more, naming the limit).
pub mod bounds {
    pub const ORGANIZATIONS: usize = 20_000;
    pub const WEEK_ROWS: usize = 200_000;
    pub const VIOLATION_ROWS: usize = 200_000;
    pub const USE_ROWS: usize = 200_000;
    pub const HOSTS_PER_VIOLATION: usize = 10_000;
    pub const KEY_CHARS: usize = 64;
    pub const NAME_CHARS: usize = 200;
    pub const HOSTNAME_CHARS: usize = 255;
    pub const APP_ID_CHARS: usize = 64;
    /// A count of PCs larger than any region has.
    pub const COUNT: i64 = 100_000_000;
}

/// What the upstream receives about each school's violations: counts only, or also the
/// names of the PCs. Chosen by the upstream when it creates the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Detail {
    /// Per school and banned messenger: how many PCs.
    Counts,
    /// Also which PCs (their host names).
    Pcs,
}

impl Detail {
    pub const fn as_str(self) -> &'static str {
        match self {
            Detail::Counts => "counts",
            Detail::Pcs => "pcs",
        }
    }
}

impl std::str::FromStr for Detail {
    type Err = String;

    fn from_str(text: &str) -> Result<Detail, String> {
        match text {
            "counts" => Ok(Detail::Counts),
            "pcs" => Ok(Detail::Pcs),
            other => Err(format!(
                "unknown detail {other:?}: give counts or pcs (PC names too)"
            )),
        }
    }
}

/// `GET /api/v1/federation/link`: what the link's secret allows, shown to the lower
/// collector's administrator before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkDescription {
    pub link_id: i64,
    /// The upstream's organization the lower collector's organizations appear under.
    pub organization_id: i64,
    pub organization: String,
    pub detail: Detail,
    /// The protocol versions the upstream reads.
    pub protocols: Vec<u32>,
}

/// `POST /api/v1/federation/figures`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiguresMessage {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2))]
    pub protocol: u32,
    /// A UUID, for the logs of both sides.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub message_id: String,
    /// When the lower collector counted the current figures (Unix seconds).
    #[cfg_attr(feature = "openapi", schema(minimum = 946_684_800))]
    pub generated_at: i64,
    /// The lower collector's organizations, parents before children.
    #[cfg_attr(feature = "openapi", schema(max_items = 20_000))]
    pub organizations: Vec<MemberOrganization>,
    /// Each organization's own PCs (not its subtree's) as of `generated_at`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20_000))]
    pub current: Vec<CurrentFigures>,
    /// Per organization and banned messenger: its own PCs that have it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 200_000))]
    pub violations: Vec<SchoolViolations>,
    /// Per organization, application and status: its own PCs that used it in the
    /// lower collector's current week.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 200_000))]
    pub used: Vec<ApplicationPcs>,
    /// The lower collector's current week, which `used` counts.
    #[serde(default)]
    pub week: Option<WeekSpan>,
    /// Frozen weeks the upstream has not acknowledged, oldest first: each
    /// organization's figures with everything under it, as the lower collector froze
    /// them.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 200_000))]
    pub weeks: Vec<WeekFigures>,
    /// Fields of a newer protocol this release does not read.
    #[serde(flatten)]
    pub not_understood: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberOrganization {
    /// The lower collector's id for it (its organization id, as text).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub key: String,
    /// Its parent's key; `None` for a root, which appears under the link's organization.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub parent: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub expected_pcs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeekSpan {
    pub start: i64,
    pub end: i64,
}

/// One organization's own PCs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentFigures {
    pub organization: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub enrolled: i64,
    /// Reported in the current week.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub reporting: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub silent: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub with_banned: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub with_approved: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub known: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub silent_with_banned: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchoolViolations {
    pub organization: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub app_id: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub pcs: i64,
    /// The PCs' names, only on a link whose detail is `pcs`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10_000))]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationPcs {
    pub organization: String,
    /// The application, or empty for "any application of this status".
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 64,
            pattern = r"^$|^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub app_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 16,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub status: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub pcs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeekFigures {
    /// ISO week of the week's last day, `2026-W47`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$")
    )]
    pub week: String,
    pub organization: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub expected_pcs: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub enrolled: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub reporting: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub silent: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub with_banned: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub with_approved: i64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub known: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub silent_with_banned: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub used_approved: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub used_banned: Option<i64>,
}

/// The upstream's answer to a message it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiguresAck {
    pub message_id: String,
    /// The current figures were newer than the last ones and replaced them.
    pub current_applied: bool,
    /// Frozen weeks stored now, and those stored before (a resend).
    pub weeks_stored: u64,
    pub weeks_known: u64,
    /// The newest frozen week the upstream holds of this link (the lower collector
    /// sends the weeks after it next time).
    pub newest_week: Option<String>,
    /// What the upstream did not take, each with why (fields of a newer protocol, PC
    /// names on a link that allows counts only).
    pub refused: Vec<String>,
}

/// Whether `week` is an ISO week label, `2026-W01` to `2026-W53`.
pub fn is_week_label(week: &str) -> bool {
    let bytes = week.as_bytes();
    if bytes.len() != 8 || &bytes[4..6] != b"-W" {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if !digits(0..4) || !digits(6..8) {
        return false;
    }
    matches!(week[6..8].parse::<u8>(), Ok(1..=53))
}

impl FiguresMessage {
    /// Everything the upstream checks before it stores anything, the first failure
    /// named: the protocol, the bounds, every key known and every parent chain ending
    /// at a root, counts within reason, week labels.
    pub fn check(&self) -> Result<(), String> {
        if !READABLE_PROTOCOLS.contains(&self.protocol) {
            return Err(format!(
                "protocol {} is not read here (this upstream reads {READABLE_PROTOCOLS:?})",
                self.protocol
            ));
        }
        text("message_id", &self.message_id, 64)?;
        if self.generated_at < 946_684_800 {
            return Err("generated_at is before 2000".into());
        }
        within(
            "organizations",
            self.organizations.len(),
            bounds::ORGANIZATIONS,
        )?;
        within("weeks", self.weeks.len(), bounds::WEEK_ROWS)?;
        within("violations", self.violations.len(), bounds::VIOLATION_ROWS)?;
        within("used", self.used.len(), bounds::USE_ROWS)?;
        within("current", self.current.len(), bounds::ORGANIZATIONS)?;
        let mut parents: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for organization in &self.organizations {
            text(
                "an organization's key",
                &organization.key,
                bounds::KEY_CHARS,
            )?;
            text(
                "an organization's name",
                &organization.name,
                bounds::NAME_CHARS,
            )?;
            text(
                "an organization's kind",
                &organization.kind,
                bounds::KEY_CHARS,
            )?;
            count("expected_pcs", organization.expected_pcs)?;
            if let Some(parent) = &organization.parent {
                text("a parent's key", parent, bounds::KEY_CHARS)?;
            }
            if parents
                .insert(&organization.key, organization.parent.as_deref())
                .is_some()
            {
                return Err(format!(
                    "organization {:?} is listed twice",
                    organization.key
                ));
            }
        }
        for (key, parent) in &parents {
            // Every parent chain ends at a root within as many steps as there are
            // organizations (more steps: a cycle).
            let mut at = *parent;
            let mut steps = 0;
            while let Some(parent) = at {
                steps += 1;
                if steps > parents.len() {
                    return Err(format!("organization {key:?} is its own ancestor"));
                }
                at = *parents.get(parent).ok_or_else(|| {
                    format!(
                        "organization {key:?} names a parent {parent:?} the message does not list"
                    )
                })?;
            }
        }
        let known = |key: &str| -> Result<(), String> {
            if parents.contains_key(key) {
                Ok(())
            } else {
                Err(format!(
                    "figures for organization {key:?}, which the message does not list"
                ))
            }
        };
        let mut seen_current = std::collections::BTreeSet::new();
        for figures in &self.current {
            known(&figures.organization)?;
            if !seen_current.insert(figures.organization.as_str()) {
                return Err(format!(
                    "current figures of {:?} are listed twice",
                    figures.organization
                ));
            }
            for value in [
                figures.enrolled,
                figures.reporting,
                figures.silent,
                figures.with_banned,
                figures.with_approved,
                figures.known,
                figures.silent_with_banned,
            ] {
                count("a current figure", value)?;
            }
        }
        for row in &self.violations {
            known(&row.organization)?;
            text("an application id", &row.app_id, bounds::APP_ID_CHARS)?;
            count("a violation's PCs", row.pcs)?;
            within(
                "a violation's hosts",
                row.hosts.len(),
                bounds::HOSTS_PER_VIOLATION,
            )?;
            for host in &row.hosts {
                text("a host name", host, bounds::HOSTNAME_CHARS)?;
            }
        }
        for row in &self.used {
            known(&row.organization)?;
            if !row.app_id.is_empty() {
                text("an application id", &row.app_id, bounds::APP_ID_CHARS)?;
            }
            text("a status", &row.status, 16)?;
            count("a use count", row.pcs)?;
        }
        if let Some(week) = self.week
            && week.end <= week.start
        {
            return Err("the current week ends before it starts".into());
        }
        for row in &self.weeks {
            known(&row.organization)?;
            if !is_week_label(&row.week) {
                return Err(format!(
                    "{:?} is not a week (2026-W01 to 2026-W53)",
                    row.week
                ));
            }
            for value in [
                row.expected_pcs,
                row.enrolled,
                row.reporting,
                row.silent,
                row.with_banned,
                row.with_approved,
            ]
            .into_iter()
            .chain(
                [
                    row.known,
                    row.silent_with_banned,
                    row.used_approved,
                    row.used_banned,
                ]
                .into_iter()
                .flatten(),
            ) {
                count("a week's figure", value)?;
            }
        }
        Ok(())
    }
}

fn within(what: &str, length: usize, max: usize) -> Result<(), String> {
    if length > max {
        return Err(format!("{what}: {length} entries, at most {max} are taken"));
    }
    Ok(())
}

fn text(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    // Characters, as the OpenAPI document's `maxLength` counts them.
    if value.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

fn count(what: &str, value: i64) -> Result<(), String> {
    if !(0..=bounds::COUNT).contains(&value) {
        return Err(format!("{what} is {value}, outside 0 to {}", bounds::COUNT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organization(key: &str, parent: Option<&str>) -> MemberOrganization {
        MemberOrganization {
            key: key.into(),
            parent: parent.map(str::to_string),
            name: format!("Org {key}"),
            kind: "school".into(),
            expected_pcs: 10,
        }
    }

    fn message(organizations: Vec<MemberOrganization>) -> FiguresMessage {
        FiguresMessage {
            protocol: FEDERATION_PROTOCOL,
            message_id: "m1".into(),
            generated_at: 1_800_000_000,
            organizations,
            current: Vec::new(),
            violations: Vec::new(),
            used: Vec::new(),
            week: None,
            weeks: Vec::new(),
            not_understood: BTreeMap::new(),
        }
    }

    #[test]
    fn a_tree_with_roots_and_known_parents_passes() {
        let good = message(vec![
            organization("1", None),
            organization("2", Some("1")),
            organization("3", Some("2")),
        ]);
        assert_eq!(good.check(), Ok(()));
    }

    #[test]
    fn cycles_unknown_parents_and_unlisted_figures_are_named() {
        let cycle = message(vec![
            organization("1", Some("2")),
            organization("2", Some("1")),
        ]);
        assert!(cycle.check().unwrap_err().contains("its own ancestor"));
        let orphan = message(vec![organization("1", Some("9"))]);
        assert!(orphan.check().unwrap_err().contains("parent \"9\""));
        let twice = message(vec![organization("1", None), organization("1", None)]);
        assert!(twice.check().unwrap_err().contains("listed twice"));
        let mut unlisted = message(vec![organization("1", None)]);
        unlisted.violations.push(SchoolViolations {
            organization: "7".into(),
            app_id: "telegram".into(),
            pcs: 1,
            hosts: Vec::new(),
        });
        assert!(unlisted.check().unwrap_err().contains("does not list"));
    }

    #[test]
    fn bad_numbers_weeks_and_protocols_are_refused() {
        let mut negative = message(vec![organization("1", None)]);
        negative.organizations[0].expected_pcs = -1;
        assert!(negative.check().unwrap_err().contains("outside 0"));
        let mut future = message(vec![organization("1", None)]);
        future.protocol = FEDERATION_PROTOCOL + 2;
        assert!(future.check().unwrap_err().contains("is not read here"));
        for (label, valid) in [
            ("2026-W01", true),
            ("2026-W53", true),
            ("2026-W00", false),
            ("2026-W54", false),
            ("2026W47", false),
            ("２０２６-W47", false),
        ] {
            assert_eq!(is_week_label(label), valid, "{label}");
        }
    }

    #[test]
    fn fields_of_a_newer_protocol_are_kept_apart() {
        let text = r#"{"protocol":2,"message_id":"m","generated_at":1800000000,
            "organizations":[],"budget":{"x":1}}"#;
        let parsed: FiguresMessage = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.check(), Ok(()));
        assert_eq!(
            parsed.not_understood.keys().collect::<Vec<_>>(),
            vec!["budget"]
        );
    }
}
