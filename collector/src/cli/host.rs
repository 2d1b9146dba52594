//! `sverka-collector host`: an organization's recent enrollments, retiring a PC and
//! merging a duplicate, each change written to the audit log (actor `cli`).

use anyhow::Result;

use super::{HostCommand, require_organization};
use crate::store::{NewAuditEntry, RetiredHost, Store};
use crate::{format_time, now};

async fn audit(
    store: &dyn Store,
    action: &str,
    retired: &RetiredHost,
    detail: String,
) -> Result<()> {
    store
        .record_audit(NewAuditEntry {
            at: now(),
            actor: "cli".into(),
            action: action.into(),
            organization_id: Some(retired.organization_id),
            detail,
        })
        .await?;
    Ok(())
}

pub(super) async fn host(command: HostCommand, store: &dyn Store) -> Result<()> {
    match command {
        HostCommand::Recent { org, limit } => {
            require_organization(store, org).await?;
            println!("host\tsecret\tenrolled\tstate\thostname");
            for host in store.recent_enrollments(org, limit).await? {
                let state = match (host.merged_into, host.retired_at) {
                    (Some(into), _) => format!("merged into {into}"),
                    (None, Some(at)) => format!("retired {}", format_time(at)),
                    (None, None) => "active".into(),
                };
                let secret = host.secret_id.map_or("-".into(), |id| id.to_string());
                println!(
                    "{}\t{secret}\t{}\t{state}\t{}",
                    host.host_id,
                    format_time(host.enrolled_at),
                    host.hostname
                );
            }
        }
        HostCommand::Retire { id } => {
            let retired = store.retire_host(id, now()).await?;
            let detail = format!("host {id} ({})", retired.hostname);
            audit(store, "retire_host", &retired, detail).await?;
            eprintln!("host {id} retired");
        }
        HostCommand::Merge { id, into } => {
            let retired = store.merge_host(id, into, now()).await?;
            let detail = format!("host {id} ({}) merged into host {into}", retired.hostname);
            audit(store, "merge_host", &retired, detail).await?;
            eprintln!("host {id} merged into host {into}");
        }
    }
    Ok(())
}
