//! `sverka-collector org`: add, change and list organizations.

use anyhow::{Context, Result};

use super::OrgCommand;
use crate::store::{NewOrganization, Store, Webhook};

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
            digest_recipients,
            webhook_url,
            webhook_secret_file,
            no_webhook,
        } => {
            if time_zone.is_none()
                && report_cutoff.is_none()
                && report_recipients.is_none()
                && digest_recipients.is_none()
                && webhook_url.is_none()
                && !no_webhook
            {
                anyhow::bail!(
                    "nothing to change: give --time-zone, --report-cutoff, --report-recipients, \
                     --digest-recipients, --webhook-url or --no-webhook"
                );
            }
            if let Some(recipients) = &digest_recipients {
                let organization = store
                    .set_organization_digest_recipients(org, Some(recipients))
                    .await?;
                println!(
                    "{} {}: daily digest recipients {}",
                    organization.id,
                    organization.name,
                    organization
                        .digest_recipients
                        .as_deref()
                        .unwrap_or("none (no digest)")
                );
            }
            if let (Some(url), Some(file)) = (&webhook_url, &webhook_secret_file) {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the webhook secret {}", file.display()))?;
                let secret = text.lines().next().unwrap_or_default().to_string();
                let organization = store
                    .set_organization_webhook(
                        org,
                        Some(&Webhook {
                            url: url.clone(),
                            secret,
                        }),
                    )
                    .await?;
                println!(
                    "{} {}: webhook {}",
                    organization.id,
                    organization.name,
                    organization.webhook_url.unwrap_or_default()
                );
            }
            if no_webhook {
                let organization = store.set_organization_webhook(org, None).await?;
                println!("{} {}: no webhook", organization.id, organization.name);
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
