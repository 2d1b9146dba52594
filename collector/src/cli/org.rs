//! `sverka-collector org`: add, change and list organizations.

use anyhow::Result;

use super::OrgCommand;
use crate::store::{NewOrganization, Store};

pub(super) async fn org(command: OrgCommand, store: &dyn Store) -> Result<()> {
    match command {
        OrgCommand::Add {
            name,
            parent,
            kind,
            expected_pcs,
            time_zone,
        } => {
            let organization = store
                .create_organization(NewOrganization {
                    parent_id: parent,
                    name,
                    kind,
                    expected_pcs,
                    time_zone,
                })
                .await?;
            println!("{}", organization.id);
        }
        OrgCommand::Set { org, time_zone } => {
            let organization = store
                .set_organization_time_zone(org, Some(&time_zone))
                .await?;
            let tree = crate::web::scope::OrganizationTree::new(store.organizations().await?);
            println!(
                "{} {}: time zone {}",
                organization.id,
                organization.name,
                match (&organization.time_zone, tree.time_zone(organization.id)) {
                    (Some(own), _) => own.clone(),
                    (None, Some(inherited)) => format!("{inherited} (inherited)"),
                    (None, None) => "of the collector ([dashboard] time_zone)".into(),
                }
            );
        }
        OrgCommand::List => {
            let organizations = store.organizations().await?;
            fn print(
                organizations: &[crate::store::Organization],
                parent: Option<i64>,
                depth: usize,
            ) {
                for organization in organizations.iter().filter(|o| o.parent_id == parent) {
                    println!(
                        "{:indent$}{} {} ({}, {} PCs expected{})",
                        "",
                        organization.id,
                        organization.name,
                        organization.kind,
                        organization.expected_pcs,
                        organization
                            .time_zone
                            .as_deref()
                            .map(|zone| format!(", {zone}"))
                            .unwrap_or_default(),
                        indent = depth * 2
                    );
                    print(organizations, Some(organization.id), depth + 1);
                }
            }
            print(&organizations, None, 0);
        }
    }
    Ok(())
}
