//! What a collector process keeps in memory between reads, checked against the
//! database's `read_versions` (migration 0019) on every read: the organizations, the
//! federated organizations' current counts, and a few weeks' frozen figures. A federal
//! collector's tree has 87,000 organizations, most of them federated, and every page
//! needs all of them; they change when a lower collector's message arrives (hourly)
//! or an organization is edited, not between two page views.
//!
//! A read takes the versions first, then the rows, and keeps the rows under those
//! versions; a write bumps its version in its own transaction (own organizations by
//! triggers, a lower collector's message and a freeze explicitly). So rows kept are
//! never newer than their version says, and a version moved by any process on the
//! database, a CLI beside the server too, makes the next read load them again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{SqlStore, on_backend};
use crate::store::{Organization, OrganizationCounts, StoreResult, WeeklyFigures};

/// The version names of `read_versions`.
pub(super) const TREE: &str = "tree";
pub(super) const WEEKS: &str = "weeks";

/// Bumps version `$1` (inside the writer's transaction).
pub(super) const BUMP_VERSION: &str = "INSERT INTO read_versions (name, version) VALUES ($1, 1)
     ON CONFLICT (name) DO UPDATE SET version = read_versions.version + 1";

/// Frozen weeks kept: the weekly page, its previous week and the overview's.
const WEEKS_KEPT: usize = 6;

/// The versions of one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Versions {
    pub tree: i64,
    pub weeks: i64,
}

#[derive(Debug)]
struct Kept<T> {
    version: i64,
    rows: Arc<T>,
}

/// A frozen week's figures as read under some versions.
#[derive(Debug)]
struct KeptWeek {
    label: String,
    versions: Versions,
    rows: Arc<Vec<WeeklyFigures>>,
}

#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    organizations: Mutex<Option<Kept<Vec<Organization>>>>,
    federated_counts: Mutex<Option<Kept<Vec<OrganizationCounts>>>>,
    /// By week label, newest use last.
    weeks: Mutex<VecDeque<KeptWeek>>,
}

fn hit<T>(slot: &Mutex<Option<Kept<T>>>, version: i64) -> Option<Arc<T>> {
    let kept = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    kept.as_ref()
        .filter(|kept| kept.version == version)
        .map(|kept| kept.rows.clone())
}

fn keep<T>(slot: &Mutex<Option<Kept<T>>>, version: i64, rows: Arc<T>) {
    let mut kept = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *kept = Some(Kept { version, rows });
}

impl ReadCache {
    pub(super) fn organizations(&self, version: i64) -> Option<Arc<Vec<Organization>>> {
        hit(&self.organizations, version)
    }

    pub(super) fn keep_organizations(&self, version: i64, rows: Arc<Vec<Organization>>) {
        keep(&self.organizations, version, rows);
    }

    pub(super) fn federated_counts(&self, version: i64) -> Option<Arc<Vec<OrganizationCounts>>> {
        hit(&self.federated_counts, version)
    }

    pub(super) fn keep_federated_counts(&self, version: i64, rows: Arc<Vec<OrganizationCounts>>) {
        keep(&self.federated_counts, version, rows);
    }

    pub(super) fn week(&self, label: &str, versions: Versions) -> Option<Arc<Vec<WeeklyFigures>>> {
        let mut weeks = self
            .weeks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = weeks
            .iter()
            .position(|kept| kept.label == label && kept.versions == versions)?;
        let kept = weeks.remove(at)?;
        let rows = kept.rows.clone();
        weeks.push_back(kept);
        Some(rows)
    }

    pub(super) fn keep_week(&self, label: &str, versions: Versions, rows: Arc<Vec<WeeklyFigures>>) {
        let mut weeks = self
            .weeks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        weeks.retain(|kept| kept.label != label);
        weeks.push_back(KeptWeek {
            label: label.to_string(),
            versions,
            rows,
        });
        while weeks.len() > WEEKS_KEPT {
            weeks.pop_front();
        }
    }
}

/// The versions now (0 for one never bumped).
pub(super) async fn versions(store: &SqlStore) -> StoreResult<Versions> {
    let rows: Vec<(String, i64)> = on_backend!(store, |pool| {
        sqlx::query_as("SELECT name, version FROM read_versions")
            .fetch_all(pool)
            .await?
    });
    let mut versions = Versions::default();
    for (name, version) in rows {
        match name.as_str() {
            TREE => versions.tree = version,
            WEEKS => versions.weeks = version,
            _ => {}
        }
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(label: &str) -> Arc<Vec<WeeklyFigures>> {
        Arc::new(vec![WeeklyFigures {
            organization_id: 1,
            week: label.into(),
            expected_pcs: 0,
            enrolled: 0,
            reporting: 0,
            silent: 0,
            with_banned: 0,
            with_approved: 0,
            known: None,
            silent_with_banned: None,
            used_approved: None,
            used_banned: None,
            late: false,
        }])
    }

    #[test]
    fn rows_are_kept_under_their_version_only() {
        let cache = ReadCache::default();
        assert!(cache.federated_counts(0).is_none());
        cache.keep_federated_counts(3, Arc::new(Vec::new()));
        assert!(cache.federated_counts(3).is_some());
        assert!(cache.federated_counts(4).is_none());
        let at = Versions { tree: 1, weeks: 2 };
        cache.keep_week("2026-W47", at, week("2026-W47"));
        assert!(cache.week("2026-W47", at).is_some());
        assert!(
            cache
                .week("2026-W47", Versions { tree: 1, weeks: 3 })
                .is_none()
        );
        assert!(cache.week("2026-W48", at).is_none());
    }

    #[test]
    fn the_least_recently_read_week_goes_first() {
        let cache = ReadCache::default();
        let at = Versions::default();
        for index in 0..WEEKS_KEPT {
            let label = format!("2026-W{index:02}");
            cache.keep_week(&label, at, week(&label));
        }
        // Reading the oldest keeps it; the next one kept pushes out the second.
        assert!(cache.week("2026-W00", at).is_some());
        cache.keep_week("2026-W40", at, week("2026-W40"));
        assert!(cache.week("2026-W00", at).is_some());
        assert!(cache.week("2026-W01", at).is_none());
        assert!(cache.week("2026-W40", at).is_some());
    }
}
