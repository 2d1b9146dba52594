//! Who may do what where: [`authorize`] is the one function every page, form, export
//! and API route asks. An organization is covered when it lies in the user's subtree;
//! a host is covered when its organization is.

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::{Organization, Role, User};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See an organization's figures, PCs and secrets' list, or a global page.
    Read,
    /// Add organizations under one.
    ManageOrganizations,
    /// Create enrollment secrets.
    CreateSecret,
    /// Revoke enrollment secrets.
    RevokeSecret,
    /// Mark a violation as being handled.
    MarkHandled,
    /// Choose who receives an organization's daily digest of what is new.
    SetDigestRecipients,
    /// Retire a host or merge a duplicate into another.
    RetireHosts,
    /// Change the catalog (global).
    EditCatalog,
    /// Add and disable users (global).
    ManageUsers,
    /// Read the audit log (global).
    ReadAudit,
    /// Set this collector's upstream; make and revoke links for lower collectors
    /// (global).
    ManageFederation,
}

/// The tree last built, beside the organizations it was built from: while the store
/// hands out the same `Arc` (nothing changed), the same tree serves every request.
#[derive(Debug, Default)]
pub struct TreeCache {
    kept: std::sync::Mutex<Option<BuiltTree>>,
}

#[derive(Debug)]
struct BuiltTree {
    from: Arc<Vec<Organization>>,
    tree: Arc<OrganizationTree>,
}

impl TreeCache {
    pub fn tree_of(&self, organizations: Arc<Vec<Organization>>) -> Arc<OrganizationTree> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(built) = kept.as_ref()
            && Arc::ptr_eq(&built.from, &organizations)
        {
            return built.tree.clone();
        }
        let tree = Arc::new(OrganizationTree::new(organizations.as_ref().clone()));
        *kept = Some(BuiltTree {
            from: organizations,
            tree: tree.clone(),
        });
        tree
    }
}

/// The organizations as a tree, loaded once per request.
#[derive(Debug, Clone, Default)]
pub struct OrganizationTree {
    by_id: HashMap<i64, Organization>,
    children: HashMap<i64, Vec<i64>>,
    roots: Vec<i64>,
}

impl OrganizationTree {
    pub fn new(organizations: Vec<Organization>) -> OrganizationTree {
        let mut tree = OrganizationTree::default();
        for organization in organizations {
            match organization.parent_id {
                Some(parent) => tree
                    .children
                    .entry(parent)
                    .or_default()
                    .push(organization.id),
                None => tree.roots.push(organization.id),
            }
            tree.by_id.insert(organization.id, organization);
        }
        // By name, ignoring case: each name lowered once (a federal tree sorts 87,000).
        for children in tree.children.values_mut() {
            children.sort_by_cached_key(|id| {
                let name = tree.by_id.get(id).map(|o| o.name.to_lowercase());
                (name, *id)
            });
        }
        tree
    }

    pub fn get(&self, id: i64) -> Option<&Organization> {
        self.by_id.get(&id)
    }

    pub fn children(&self, id: i64) -> &[i64] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every organization's id.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.by_id.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn roots(&self) -> &[i64] {
        &self.roots
    }

    /// `id` itself and everything under it.
    pub fn subtree(&self, id: i64) -> Vec<i64> {
        let mut found = Vec::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            if self.by_id.contains_key(&next) {
                found.push(next);
                stack.extend(self.children(next).iter().copied());
            }
        }
        found
    }

    /// Whether `id` is `ancestor` or lies under it.
    pub fn is_within(&self, id: i64, ancestor: i64) -> bool {
        let mut current = Some(id);
        // The depth is bounded by the number of organizations, even if a cycle slipped in.
        for _ in 0..=self.by_id.len() {
            match current {
                Some(next) if next == ancestor => return true,
                Some(next) => current = self.by_id.get(&next).and_then(|o| o.parent_id),
                None => return false,
            }
        }
        false
    }

    /// The time zone `id` uses: its own, else the nearest ancestor's; `None` means the
    /// collector's.
    pub fn time_zone(&self, id: i64) -> Option<&str> {
        let mut current = self.by_id.get(&id);
        for _ in 0..=self.by_id.len() {
            let organization = current?;
            if let Some(zone) = organization.time_zone.as_deref() {
                return Some(zone);
            }
            current = organization
                .parent_id
                .and_then(|parent| self.by_id.get(&parent));
        }
        None
    }

    /// The reporting cut-off `id` uses: its own, else the nearest ancestor's; `None`
    /// means the collector's `week_ends_on`.
    pub fn report_cutoff(&self, id: i64) -> Option<&str> {
        let mut current = self.by_id.get(&id);
        for _ in 0..=self.by_id.len() {
            let organization = current?;
            if let Some(cutoff) = organization.report_cutoff.as_deref() {
                return Some(cutoff);
            }
            current = organization
                .parent_id
                .and_then(|parent| self.by_id.get(&parent));
        }
        None
    }

    /// The chain from a root down to `id` (for breadcrumbs).
    pub fn path_to(&self, id: i64) -> Vec<&Organization> {
        let mut path = Vec::new();
        let mut current = self.by_id.get(&id);
        while let Some(organization) = current {
            if path.len() > self.by_id.len() {
                break;
            }
            path.push(organization);
            current = organization
                .parent_id
                .and_then(|parent| self.by_id.get(&parent));
        }
        path.reverse();
        path
    }
}

/// Refused; pages answer "not found" so ids outside the user's scope cannot be probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not permitted")]
pub struct Denied;

/// Decides whether `user` may do `action` on `organization_id` (`None`: a global
/// page or action). Disabled users may do nothing.
pub fn authorize(
    user: &User,
    action: Action,
    organization_id: Option<i64>,
    tree: &OrganizationTree,
) -> Result<(), Denied> {
    if user.disabled_at.is_some() {
        return Err(Denied);
    }
    if let Some(id) = organization_id
        && tree.get(id).is_none()
    {
        return Err(Denied);
    }
    let allowed_action = match user.role {
        Role::Administrator => true,
        Role::Officer => matches!(
            action,
            Action::Read
                | Action::ManageOrganizations
                | Action::CreateSecret
                | Action::RevokeSecret
                | Action::RetireHosts
                | Action::EditCatalog
                | Action::SetDigestRecipients
        ),
        Role::SchoolAdmin => matches!(
            action,
            Action::Read | Action::CreateSecret | Action::MarkHandled | Action::SetDigestRecipients
        ),
    };
    if !allowed_action {
        return Err(Denied);
    }
    let in_scope = match (user.role, organization_id, user.organization_id) {
        (Role::Administrator, _, _) => true,
        (_, None, _) => true,
        (_, Some(target), Some(home)) => tree.is_within(target, home),
        (_, Some(_), None) => false,
    };
    if in_scope { Ok(()) } else { Err(Denied) }
}

/// Where a user starts: their organization, or the single root for administrators.
pub fn home_organization(user: &User, tree: &OrganizationTree) -> Option<i64> {
    match user.organization_id {
        Some(id) => Some(id),
        None => match tree.roots() {
            [only] => Some(*only),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organization(id: i64, parent: Option<i64>) -> Organization {
        Organization {
            id,
            parent_id: parent,
            name: format!("org {id}"),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: None,
            report_cutoff: None,
            report_recipients: None,
            digest_recipients: None,
            webhook_url: None,
            federated_link_id: None,
            federated_as_of: None,
            federated_gone_at: None,
        }
    }

    #[test]
    fn a_tree_is_built_once_per_list_of_organizations() {
        let cache = TreeCache::default();
        let first = Arc::new(vec![organization(1, None), organization(2, Some(1))]);
        let built = cache.tree_of(first.clone());
        assert_eq!(built.children(1), [2]);
        assert!(Arc::ptr_eq(&built, &cache.tree_of(first)));
        // Another list (the organizations changed): another tree.
        let second = Arc::new(vec![organization(1, None)]);
        let rebuilt = cache.tree_of(second);
        assert!(!Arc::ptr_eq(&built, &rebuilt));
        assert!(rebuilt.children(1).is_empty());
    }

    #[test]
    fn time_zones_are_inherited() {
        let mut region = organization(1, None);
        region.time_zone = Some("Europe/Samara".into());
        let town = organization(2, Some(1));
        let mut school = organization(3, Some(2));
        school.time_zone = Some("Asia/Yekaterinburg".into());
        let other = organization(4, None);
        let tree = OrganizationTree::new(vec![region, town, school, other]);
        assert_eq!(tree.time_zone(1), Some("Europe/Samara"));
        assert_eq!(tree.time_zone(2), Some("Europe/Samara"));
        assert_eq!(tree.time_zone(3), Some("Asia/Yekaterinburg"));
        assert_eq!(tree.time_zone(4), None);
        assert_eq!(tree.time_zone(99), None);
    }

    fn user(role: Role, organization_id: Option<i64>) -> User {
        User {
            id: 1,
            login: "u".into(),
            role,
            organization_id,
            language: "ru".into(),
            created_at: 0,
            disabled_at: None,
        }
    }

    #[test]
    fn roles_cover_their_subtree_only() {
        // 1 region > 2 town > 3, 4 schools; 5 another region.
        let tree = OrganizationTree::new(vec![
            organization(1, None),
            organization(2, Some(1)),
            organization(3, Some(2)),
            organization(4, Some(2)),
            organization(5, None),
        ]);
        let admin = user(Role::Administrator, None);
        let officer = user(Role::Officer, Some(2));
        let school = user(Role::SchoolAdmin, Some(3));
        let check = |user: &User, action, org| authorize(user, action, org, &tree).is_ok();

        for org in [1, 2, 3, 4, 5] {
            assert!(check(&admin, Action::Read, Some(org)));
        }
        assert!(check(&admin, Action::ManageUsers, None));
        assert!(
            !check(&admin, Action::Read, Some(99)),
            "unknown organization"
        );

        assert!(check(&officer, Action::Read, Some(2)));
        assert!(check(&officer, Action::Read, Some(4)));
        assert!(!check(&officer, Action::Read, Some(1)), "the parent");
        assert!(!check(&officer, Action::Read, Some(5)));
        assert!(check(&officer, Action::ManageOrganizations, Some(2)));
        assert!(check(&officer, Action::RevokeSecret, Some(3)));
        assert!(check(&officer, Action::EditCatalog, None));
        assert!(!check(&officer, Action::ManageUsers, None));
        assert!(!check(&officer, Action::ReadAudit, None));
        assert!(!check(&officer, Action::MarkHandled, Some(3)));

        assert!(check(&school, Action::Read, Some(3)));
        assert!(!check(&school, Action::Read, Some(4)), "the sibling school");
        assert!(!check(&school, Action::Read, Some(2)));
        assert!(check(&school, Action::CreateSecret, Some(3)));
        assert!(check(&school, Action::MarkHandled, Some(3)));
        assert!(!check(&school, Action::RevokeSecret, Some(3)));
        assert!(!check(&school, Action::EditCatalog, None));
        assert!(!check(&school, Action::ManageOrganizations, Some(3)));

        let mut disabled = admin.clone();
        disabled.disabled_at = Some(1);
        assert!(!check(&disabled, Action::Read, Some(1)));

        assert_eq!(tree.subtree(2).len(), 3);
        assert_eq!(
            tree.path_to(3).iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(home_organization(&admin, &tree), None, "two roots");
        assert_eq!(home_organization(&school, &tree), Some(3));
    }
}
