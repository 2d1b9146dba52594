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
        OrgCommand::Set {
            org,
            time_zone,
            report_cutoff,
            report_recipients,
        } => {
            if time_zone.is_none() && report_cutoff.is_none() && report_recipients.is_none() {
                anyhow::bail!(
                    "nothing to change: give --time-zone, --report-cutoff or --report-recipients"
                );
            }
            if let Some(recipients) = &report_recipients {
                let organization = store
                    .set_organization_report_recipients(org, Some(recipients))
                    .await?;
                println!(
                    "{} {}: weekly report recipients {}",
                    organization.id,
                    organization.name,
                    organization
                        .report_recipients
                        .as_deref()
                        .unwrap_or("none (no mail)")
                );
            }
            if let Some(cutoff) = &report_cutoff {
                let organization = store
                    .set_organization_report_cutoff(org, Some(cutoff))
                    .await?;
                let tree = crate::web::scope::OrganizationTree::new(store.organizations().await?);
                println!(
                    "{} {}: report due {}",
                    organization.id,
                    organization.name,
                    match (
                        &organization.report_cutoff,
                        tree.report_cutoff(organization.id)
                    ) {
                        (Some(own), _) => own.clone(),
                        (None, Some(inherited)) => format!("{inherited} (inherited)"),
                        (None, None) =>
                            "at the collector's week end ([dashboard] week_ends_on)".into(),
                    }
                );
            }
            let Some(time_zone) = time_zone else {
                return Ok(());
            };
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
