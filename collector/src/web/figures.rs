//! The overview's figures: the store counts each organization's own PCs in one query,
//! and they are added up along the organization tree here. The same figures are
//! frozen once a week (`freeze_week`), which the weekly report and the "change since
//! last week" columns read.

use serde::Serialize;
use std::collections::HashMap;

use super::clock::{Clock, Week};
use super::scope::OrganizationTree;
use crate::store::{OrganizationCounts, Store, StoreResult, WeeklyFigures};

/// An organization's figures, its whole subtree added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    pub expected_pcs: i64,
    pub enrolled: i64,
    pub reporting: i64,
    pub silent: i64,
    pub with_banned: i64,
    pub with_approved: i64,
}

impl Totals {
    /// Share of reporting PCs with an approved messenger; `None` when none reported.
    pub fn approved_share(&self) -> Option<f64> {
        (self.reporting > 0).then(|| self.with_approved as f64 / self.reporting as f64)
    }

    fn add(&mut self, counts: &OrganizationCounts) {
        self.enrolled += counts.enrolled;
        self.reporting += counts.reporting;
        self.silent += counts.silent;
        self.with_banned += counts.with_banned;
        self.with_approved += counts.with_approved;
    }

    pub fn of_week(figures: &WeeklyFigures) -> Totals {
        Totals {
            expected_pcs: figures.expected_pcs,
            enrolled: figures.enrolled,
            reporting: figures.reporting,
            silent: figures.silent,
            with_banned: figures.with_banned,
            with_approved: figures.with_approved,
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
        }
    }
}

/// Every organization's own counts, by id.
#[derive(Debug, Clone, Default)]
pub struct Counts(HashMap<i64, OrganizationCounts>);

impl Counts {
    /// Counts as of `week`: reporting means reported since the week began; silent means
    /// not reported for `silent_after_days` before the week's end (or now, if sooner).
    pub async fn load(
        store: &dyn Store,
        week: &Week,
        silent_after_days: u32,
        now: i64,
    ) -> StoreResult<Counts> {
        let silent_before = week.end.min(now) - i64::from(silent_after_days) * 86_400;
        let rows = store.organization_counts(week.start, silent_before).await?;
        Ok(Counts(
            rows.into_iter()
                .map(|row| (row.organization_id, row))
                .collect(),
        ))
    }

    /// The totals of `id` and everything under it.
    pub fn totals(&self, tree: &OrganizationTree, id: i64) -> Totals {
        let mut totals = Totals::default();
        for member in tree.subtree(id) {
            if let Some(organization) = tree.get(member) {
                totals.expected_pcs += organization.expected_pcs;
            }
            if let Some(counts) = self.0.get(&member) {
                totals.add(counts);
            }
        }
        totals
    }
}

/// Freezes every organization's figures of `week` (figures frozen before are kept).
pub async fn freeze_week(
    store: &dyn Store,
    week: &Week,
    silent_after_days: u32,
    now: i64,
) -> StoreResult<u64> {
    let tree = OrganizationTree::new(store.organizations().await?);
    let counts = Counts::load(store, week, silent_after_days, now).await?;
    let figures: Vec<WeeklyFigures> = tree
        .ids()
        .into_iter()
        .map(|id| counts.totals(&tree, id).to_week(id, &week.label))
        .collect();
    store.freeze_weekly_figures(&figures, now).await
}

/// Freezes, for every organization, the last week that has ended in its own time zone
/// (see [`OrganizationTree::time_zone`]): an organization's figures, its subtree
/// included, are counted with its own week boundaries. Organizations are grouped by
/// zone, so this is one count per time zone in use, not per organization.
pub async fn freeze_ended_weeks(
    store: &dyn Store,
    clock: &Clock,
    silent_after_days: u32,
    now: i64,
) -> StoreResult<u64> {
    let tree = OrganizationTree::new(store.organizations().await?);
    let mut by_zone: std::collections::BTreeMap<Option<&str>, Vec<i64>> = Default::default();
    for id in tree.ids() {
        by_zone.entry(tree.time_zone(id)).or_default().push(id);
    }
    let mut frozen = 0;
    for (zone, ids) in by_zone {
        let zone_clock = match zone.map(|zone| clock.with_zone(zone)) {
            Some(Ok(zone_clock)) => zone_clock,
            Some(Err(error)) => {
                tracing::warn!("{error}; freezing with the collector's time zone");
                clock.clone()
            }
            None => clock.clone(),
        };
        let ended = zone_clock.previous(&zone_clock.week_of(now));
        let counts = Counts::load(store, &ended, silent_after_days, now).await?;
        let figures: Vec<WeeklyFigures> = ids
            .into_iter()
            .map(|id| counts.totals(&tree, id).to_week(id, &ended.label))
            .collect();
        frozen += store.freeze_weekly_figures(&figures, now).await?;
    }
    Ok(frozen)
}
