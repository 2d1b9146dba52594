//! Hosts with a lifecycle: how many hosts an organization's secrets may enroll (a
//! margin over its expected PCs), retiring a host that is gone, merging a duplicate
//! into the host it duplicates, and the list of recent enrollments per secret.
//!
//! A retired host leaves every count and list of current state (coverage, the
//! per-organization counts and so the weekly figures, violations, silent PCs, the
//! school's PC list) and its key stops working; its reports, findings and events stay.
//! Enrolling the same machine again brings it back, within the allowance.

use serde::{Deserialize, Serialize};

use super::{StoreError, StoreResult, Timestamp};

/// How many hosts an organization's enrollment secrets may enroll: its expected PCs
/// plus a margin (`[enrollment]` in the configuration). Retired hosts do not count. An
/// organization whose expected number of PCs is not set (0) has no allowance; only the
/// per-address throttle brakes its enrollments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollmentAllowance {
    /// The margin over the expected PCs, in percent of them.
    pub margin_percent: u32,
    /// The margin is at least this many PCs.
    pub margin_minimum: u32,
}

impl Default for EnrollmentAllowance {
    fn default() -> EnrollmentAllowance {
        EnrollmentAllowance {
            margin_percent: 20,
            margin_minimum: 5,
        }
    }
}

impl EnrollmentAllowance {
    /// The most active hosts an organization expecting `expected_pcs` may have;
    /// `None` (no limit) when it has no expected number.
    pub fn hosts_for(&self, expected_pcs: i64) -> Option<i64> {
        if expected_pcs <= 0 {
            return None;
        }
        let margin = (expected_pcs * i64::from(self.margin_percent) + 99) / 100;
        Some(expected_pcs + margin.max(i64::from(self.margin_minimum)))
    }
}

/// The answer when an organization's allowance is used up.
pub fn allowance_used_up(allowance: i64, expected_pcs: i64) -> StoreError {
    StoreError::Rejected(format!(
        "this organization has enrolled its allowance of {allowance} PCs (it expects \
         {expected_pcs}); an administrator can retire hosts that are gone or raise the \
         expected number of PCs"
    ))
}

/// A host as the list of recent enrollments shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RecentEnrollment {
    pub host_id: i64,
    pub hostname: String,
    pub machine_id: String,
    /// The secret that first enrolled it (`None`: enrolled before secrets were noted).
    pub secret_id: Option<i64>,
    pub enrolled_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    pub merged_into: Option<i64>,
}

/// What a retirement or a merge changed, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredHost {
    pub host_id: i64,
    pub organization_id: i64,
    pub hostname: String,
}

/// A host may be merged into another of the same organization that is still active,
/// and not into itself.
pub fn check_merge(duplicate: &HostLifecycle, target: &HostLifecycle) -> StoreResult<()> {
    if duplicate.id == target.id {
        return Err(StoreError::Invalid(
            "a host cannot be merged into itself".into(),
        ));
    }
    if duplicate.organization_id != target.organization_id {
        return Err(StoreError::Invalid(
            "a duplicate can only be merged into a host of the same organization".into(),
        ));
    }
    if target.retired_at.is_some() {
        return Err(StoreError::Invalid(format!(
            "host {} is retired; merge into an active host",
            target.id
        )));
    }
    Ok(())
}

/// A host's place in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostLifecycle {
    pub id: i64,
    pub organization_id: i64,
    pub hostname: String,
    pub retired_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_a_margin_over_the_expected_pcs() {
        let allowance = EnrollmentAllowance::default();
        for (expected, hosts) in [(1, 6), (20, 25), (25, 30), (26, 32), (1000, 1200)] {
            assert_eq!(
                allowance.hosts_for(expected),
                Some(hosts),
                "expecting {expected}"
            );
        }
        // No expected number: no allowance.
        assert_eq!(allowance.hosts_for(0), None);
    }

    #[test]
    fn merges_stay_within_one_organization_and_end_at_an_active_host() {
        let host = |id, organization_id, retired_at| HostLifecycle {
            id,
            organization_id,
            hostname: format!("pc-{id}"),
            retired_at,
        };
        assert!(check_merge(&host(1, 7, None), &host(2, 7, None)).is_ok());
        assert!(check_merge(&host(1, 7, None), &host(1, 7, None)).is_err());
        assert!(check_merge(&host(1, 7, None), &host(2, 8, None)).is_err());
        assert!(check_merge(&host(1, 7, None), &host(2, 7, Some(5))).is_err());
    }
}
