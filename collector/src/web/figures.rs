//! The overview's figures: the store counts each organization's own PCs in one query,
//! and they are added up along the organization tree here.
//!
//! One meaning for each figure (also on the pages and in docs/collector.md): a PC's
//! state is its last report, however old. "With banned messengers" counts PCs whose
//! last known state has one, silent PCs included (they are also counted apart, as
//! "silent, with banned"); "reported this week" is its own column; shares are of the
//! PCs with a known state (reported at least once). The same figures are
//! frozen once a week (`freeze_week`), which the weekly report and the "change since
//! last week" columns read.

use serde::Serialize;
use std::collections::HashMap;

use super::clock::{Clock, Week};
use super::scope::OrganizationTree;
use crate::store::{
    ApplicationUse, HostListToFreeze, OrganizationCounts, Store, StoreResult, WeeklyFigures,
};

/// An organization's figures, its whole subtree added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub expected_pcs: i64,
    pub enrolled: i64,
    pub reporting: i64,
    pub silent: i64,
    pub with_banned: i64,
    pub with_approved: i64,
    /// PCs that have reported at least once.
    pub known: i64,
    pub silent_with_banned: i64,
    /// PCs where an approved messenger was used in the week (its agent reported a time
    /// of use inside it); `None` for weeks frozen before use was counted.
    #[serde(
        rename = "pcs_that_used_an_approved_messenger",
        skip_serializing_if = "Option::is_none"
    )]
    pub used_approved: Option<i64>,
    /// PCs where a banned messenger was used in the week; `None` likewise.
    #[serde(
        rename = "pcs_that_used_a_banned_messenger",
        skip_serializing_if = "Option::is_none"
    )]
    pub used_banned: Option<i64>,
}

impl Totals {
    /// Share of PCs with a known state that have an approved messenger; `None` when
    /// no PC has reported yet.
    pub fn approved_share(&self) -> Option<f64> {
        (self.known > 0).then(|| self.with_approved as f64 / self.known as f64)
    }

    /// Whether some PC had reported by then (a week before the first report has no
    /// data).
    pub fn has_reports(&self) -> bool {
        self.known > 0 || self.reporting > 0
    }

    /// Share of the PCs that reported in the week where an approved messenger was used
    /// in it; `None` when none reported or use was not counted.
    pub fn approved_use_share(&self) -> Option<f64> {
        let used = self.used_approved?;
        (self.reporting > 0).then(|| used as f64 / self.reporting as f64)
    }

    /// Whether these figures count nothing at all (a row not worth showing).
    pub fn is_empty(&self) -> bool {
        let counted = Totals {
            used_approved: None,
            used_banned: None,
            ..*self
        };
        counted == Totals::default()
            && self.used_approved.unwrap_or(0) == 0
            && self.used_banned.unwrap_or(0) == 0
    }

    /// Share of PCs with a known state that have a banned messenger.
    pub fn banned_share(&self) -> Option<f64> {
        (self.known > 0).then(|| self.with_banned as f64 / self.known as f64)
    }

    fn add(&mut self, counts: &OrganizationCounts) {
        self.enrolled += counts.enrolled;
        self.reporting += counts.reporting;
        self.silent += counts.silent;
        self.with_banned += counts.with_banned;
        self.with_approved += counts.with_approved;
        self.known += counts.known;
        self.silent_with_banned += counts.silent_with_banned;
    }

    /// Adds an organization's use to figures that count use (`Some`).
    fn add_use(&mut self, used: &OrganizationUsed) {
        self.used_approved = self.used_approved.map(|sum| sum + used.approved);
        self.used_banned = self.used_banned.map(|sum| sum + used.banned);
    }

    /// These figures less `other`'s (what an organization's own PCs add to its
    /// children's).
    pub fn minus(self, other: &Totals) -> Totals {
        Totals {
            expected_pcs: self.expected_pcs - other.expected_pcs,
            enrolled: self.enrolled - other.enrolled,
            reporting: self.reporting - other.reporting,
            silent: self.silent - other.silent,
            with_banned: self.with_banned - other.with_banned,
            with_approved: self.with_approved - other.with_approved,
            known: self.known - other.known,
            silent_with_banned: self.silent_with_banned - other.silent_with_banned,
            used_approved: self
                .used_approved
                .map(|used| used - other.used_approved.unwrap_or(0)),
            used_banned: self
                .used_banned
                .map(|used| used - other.used_banned.unwrap_or(0)),
        }
    }

    /// Figures frozen before `known` was kept count it as the PCs that reported.
    pub fn of_week(figures: &WeeklyFigures) -> Totals {
        Totals {
            known: figures.known.unwrap_or(figures.reporting),
            silent_with_banned: figures.silent_with_banned.unwrap_or(0),
            expected_pcs: figures.expected_pcs,
            enrolled: figures.enrolled,
            reporting: figures.reporting,
            silent: figures.silent,
            with_banned: figures.with_banned,
            with_approved: figures.with_approved,
            used_approved: figures.used_approved,
            used_banned: figures.used_banned,
        }
    }

    pub fn to_week(self, organization_id: i64, week: &str) -> WeeklyFigures {
        WeeklyFigures {
            organization_id,
            week: week.to_string(),
            expected_pcs: self.expected_pcs,
            enrolled: self.enrolled,
            reporting: self.reporting,
            silent: self.silent,
            with_banned: self.with_banned,
            with_approved: self.with_approved,
            known: Some(self.known),
            silent_with_banned: Some(self.silent_with_banned),
            used_approved: self.used_approved,
            used_banned: self.used_banned,
            late: false,
        }
    }
}

/// A row of an overview or weekly table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Row {
    /// A sub-organization with everything under it (or the organization itself when
    /// it has none).
    Member(i64),
    /// The PCs enrolled directly under the organization (with a municipality's secret),
    /// and the PCs it expects itself.
    DirectlyUnder(i64),
}

/// The rows of `id`'s table with their figures: one per child, and one for what is
/// directly under `id` when there is anything; the rows always add up to
/// `totals_of(id)`. Without children, the organization itself is the one row.
pub fn table_rows(
    tree: &OrganizationTree,
    id: i64,
    totals_of: impl Fn(i64) -> Totals,
) -> Vec<(Row, Totals)> {
    let children = tree.children(id);
    if children.is_empty() {
        return vec![(Row::Member(id), totals_of(id))];
    }
    let mut rows: Vec<(Row, Totals)> = children
        .iter()
        .map(|child| (Row::Member(*child), totals_of(*child)))
        .collect();
    let mut own = totals_of(id);
    for (_, totals) in &rows {
        own = own.minus(totals);
    }
    if !own.is_empty() {
        rows.push((Row::DirectlyUnder(id), own));
    }
    rows
}

/// An organization's own PCs that used an approved, and a banned, application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OrganizationUsed {
    approved: i64,
    banned: i64,
}

/// Every organization's own counts, by id.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    counts: HashMap<i64, OrganizationCounts>,
    /// `None` when use was not counted.
    used: Option<HashMap<i64, OrganizationUsed>>,
    /// The organizations' own PCs per application that used it in the week.
    pub applications: Vec<ApplicationUse>,
}

impl Counts {
    /// Counts as of `week`: reporting means reported since the week began; silent means
    /// not reported for `silent_after_days` before the week's end (or now, if sooner).
    /// Use is not counted (the overview's pages do not show it); see
    /// [`Counts::load_with_use`].
    pub async fn load(
        store: &dyn Store,
        week: &Week,
        silent_after_days: u32,
        now: i64,
    ) -> StoreResult<Counts> {
        let rows = store
            .organization_counts(week.start, silent_before(week, silent_after_days, now))
            .await?;
        Ok(Counts {
            counts: rows
                .into_iter()
                .map(|row| (row.organization_id, row))
                .collect(),
            used: None,
            applications: Vec::new(),
        })
    }

    /// [`Counts::load`] and the week's use: PCs with a time of use inside the week,
    /// per status and per application (the weekly report and its freeze).
    pub async fn load_with_use(
        store: &dyn Store,
        week: &Week,
        silent_after_days: u32,
        now: i64,
    ) -> StoreResult<Counts> {
        // Two independent reads, each on a connection of its own: side by side.
        let (mut counts, (statuses, applications)) = tokio::try_join!(
            Counts::load(store, week, silent_after_days, now),
            store.organization_use(week.start, week.end)
        )?;
        let mut used: HashMap<i64, OrganizationUsed> = HashMap::new();
        for row in statuses {
            let entry = used.entry(row.organization_id).or_default();
            match row.status.as_str() {
                "approved" => entry.approved += row.pcs,
                "banned" => entry.banned += row.pcs,
                _ => {}
            }
        }
        counts.used = Some(used);
        counts.applications = applications;
        Ok(counts)
    }

    /// The totals of `id` and everything under it.
    pub fn totals(&self, tree: &OrganizationTree, id: i64) -> Totals {
        let counted = self.used.is_some().then_some(0);
        let mut totals = Totals {
            used_approved: counted,
            used_banned: counted,
            ..Totals::default()
        };
        for member in tree.subtree(id) {
            if let Some(organization) = tree.get(member) {
                totals.expected_pcs += organization.expected_pcs;
            }
            if let Some(counts) = self.counts.get(&member) {
                totals.add(counts);
            }
            if let Some(used) = self.used.as_ref().and_then(|used| used.get(&member)) {
                totals.add_use(used);
            }
        }
        totals
    }
}

/// The PCs per application (id, status) of `id` and everything under it, from every
/// organization's own rows.
pub fn applications_of_subtree(
    tree: &OrganizationTree,
    id: i64,
    own_rows: &[ApplicationUse],
) -> std::collections::BTreeMap<(String, String), i64> {
    let members: std::collections::HashSet<i64> = tree.subtree(id).into_iter().collect();
    let mut sums = std::collections::BTreeMap::new();
    for row in own_rows {
        if members.contains(&row.organization_id) {
            *sums
                .entry((row.app_id.clone(), row.status.clone()))
                .or_insert(0) += row.pcs;
        }
    }
    sums
}

/// A PC that has not reported since this moment is silent in `week`: `silent_after_days`
/// before the week's end (or now, if sooner).
pub fn silent_before(week: &Week, silent_after_days: u32, now: i64) -> i64 {
    week.end.min(now) - i64::from(silent_after_days) * 86_400
}

/// The key of an organization's week boundaries, its time zone and reporting cut-off
/// (its own or inherited; empty: the collector's): the organizations frozen together
/// share it, and so does the list of PCs their frozen figures counted.
pub fn boundaries_key(tree: &OrganizationTree, id: i64) -> String {
    format!(
        "{}|{}",
        tree.time_zone(id).unwrap_or(""),
        tree.report_cutoff(id).unwrap_or("")
    )
}

/// Freezes every organization's figures of `week` (figures frozen before are kept),
/// the same week for all of them whatever their boundaries (a test's or an operator's
/// freeze; the collector's own job is [`freeze_ended_weeks`]).
pub async fn freeze_week(
    store: &dyn Store,
    week: &Week,
    silent_after_days: u32,
    now: i64,
) -> StoreResult<u64> {
    let tree = OrganizationTree::new(store.organizations().await?);
    let counts = Counts::load_with_use(store, week, silent_after_days, now).await?;
    let mut by_boundaries: std::collections::BTreeMap<String, Vec<WeeklyFigures>> =
        Default::default();
    for id in tree.ids() {
        by_boundaries
            .entry(boundaries_key(&tree, id))
            .or_default()
            .push(counts.totals(&tree, id).to_week(id, &week.label));
    }
    let mut frozen = 0;
    for (boundaries, figures) in by_boundaries {
        let hosts = HostListToFreeze {
            week: week.label.clone(),
            boundaries,
            silent_before: silent_before(week, silent_after_days, now),
        };
        frozen += store
            .freeze_weekly_figures(&figures, &counts.applications, &hosts, now)
            .await?;
    }
    Ok(frozen)
}

/// Freezes, for every organization, the last week that has ended in its own time zone
/// (see [`OrganizationTree::time_zone`]) at its own reporting cut-off
/// ([`OrganizationTree::report_cutoff`]): an organization's figures, its subtree
/// included, are counted with its own week boundaries. Organizations are grouped by
/// zone and cut-off, so this is one count per pair in use, not per organization.
pub async fn freeze_ended_weeks(
    store: &dyn Store,
    clock: &Clock,
    silent_after_days: u32,
    now: i64,
) -> StoreResult<u64> {
    let tree = OrganizationTree::new(store.organizations().await?);
    type Boundaries<'t> = (Option<&'t str>, Option<&'t str>);
    let mut by_boundaries: std::collections::BTreeMap<Boundaries, Vec<i64>> = Default::default();
    for id in tree.ids() {
        by_boundaries
            .entry((tree.time_zone(id), tree.report_cutoff(id)))
            .or_default()
            .push(id);
    }
    let mut frozen = 0;
    for ((zone, _), ids) in by_boundaries {
        let zone_clock = match zone.map(|zone| clock.with_zone(zone)) {
            Some(Ok(zone_clock)) => zone_clock,
            Some(Err(error)) => {
                tracing::warn!("{error}; freezing with the collector's time zone");
                clock.clone()
            }
            None => clock.clone(),
        };
        let Some(first) = ids.first() else {
            continue;
        };
        let zone_clock = super::clock::with_cutoff_of(zone_clock, &tree, *first);
        let ended = zone_clock.previous(&zone_clock.week_of(now));
        let counts = Counts::load_with_use(store, &ended, silent_after_days, now).await?;
        let hosts = HostListToFreeze {
            week: ended.label.clone(),
            boundaries: boundaries_key(&tree, *first),
            silent_before: silent_before(&ended, silent_after_days, now),
        };
        let figures: Vec<WeeklyFigures> = ids
            .into_iter()
            .map(|id| counts.totals(&tree, id).to_week(id, &ended.label))
            .collect();
        frozen += store
            .freeze_weekly_figures(&figures, &counts.applications, &hosts, now)
            .await?;
    }
    Ok(frozen)
}
