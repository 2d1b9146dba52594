//! `sverka-collector secret`: create, revoke and list enrollment secrets.

use anyhow::Result;

use super::SecretCommand;
use crate::store::{NewSecret, Store};
use crate::{format_time, keys, now};

pub(super) async fn secret(command: SecretCommand, store: &dyn Store) -> Result<()> {
    match command {
        SecretCommand::Create { org, expires } => {
            let (random, secret_hash) = keys::generate();
            let created = now();
            let info = store
                .create_secret(
                    NewSecret {
                        organization_id: org,
                        secret_hash,
                        expires_at: expires.map(|duration| created + duration.as_secs() as i64),
                    },
                    created,
                )
                .await?;
            println!("{}", keys::token(info.id, &random));
        }
        SecretCommand::Revoke { id } => {
            store.revoke_secret(id, now()).await?;
            eprintln!("secret {id} revoked");
        }
        SecretCommand::List { org } => {
            for secret in store.secrets(org).await? {
                let state = match (secret.revoked_at, secret.expires_at) {
                    (Some(at), _) => format!("revoked {}", format_time(at)),
                    (None, Some(at)) if at <= now() => format!("expired {}", format_time(at)),
                    (None, Some(at)) => format!("valid until {}", format_time(at)),
                    (None, None) => "valid until revoked".into(),
                };
                println!(
                    "{} created {} {state}",
                    secret.id,
                    format_time(secret.created_at)
                );
            }
        }
    }
    Ok(())
}
