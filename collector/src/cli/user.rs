//! `sverka-collector user`: add, list and disable dashboard users, set passwords.
//! Every change is written to the audit log as the actor `cli`.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

use super::{UserCommand, require_organization};
use crate::now;
use crate::store::{NewAuditEntry, NewUser, Role, Store, UserChange};

/// A password from a file's first line or from stdin's.
fn read_password(file: Option<&PathBuf>) -> Result<String> {
    let text = match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line
        }
    };
    let password = text.lines().next().unwrap_or_default().to_string();
    crate::web::auth::check_password_rules(&password)
        .map_err(|message| anyhow::anyhow!(message))?;
    Ok(password)
}

async fn cli_audit(store: &dyn Store, action: &str, organization_id: Option<i64>, detail: String) {
    let entry = NewAuditEntry {
        at: now(),
        actor: "cli".into(),
        action: action.into(),
        organization_id,
        detail,
    };
    if let Err(error) = store.record_audit(entry).await {
        eprintln!("warning: cannot write the audit log: {error}");
    }
}

pub(super) async fn user(command: UserCommand, store: &dyn Store) -> Result<()> {
    match command {
        UserCommand::Add {
            login,
            role,
            org,
            password_file,
            language,
        } => {
            if role != Role::Administrator && org.is_none() {
                bail!("an officer or school admin needs --org");
            }
            if let Some(org) = org {
                require_organization(store, org).await?;
            }
            let password = read_password(password_file.as_ref())?;
            let password_hash = crate::web::auth::hash_password(&password)?;
            let user = store
                .create_user(
                    NewUser {
                        login,
                        password_hash,
                        role,
                        organization_id: if role == Role::Administrator {
                            None
                        } else {
                            org
                        },
                        language: crate::web::i18n::Lang::parse(&language).code().to_string(),
                    },
                    now(),
                )
                .await?;
            cli_audit(
                store,
                "add_user",
                user.organization_id,
                format!("{} ({})", user.login, user.role.as_str()),
            )
            .await;
            println!("{}", user.id);
        }
        UserCommand::List => {
            for user in store.users().await? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    user.id,
                    crate::export::neutral_cell(&user.login),
                    user.role.as_str(),
                    user.organization_id
                        .map(|id| id.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if user.disabled_at.is_some() {
                        "\tdisabled"
                    } else {
                        ""
                    }
                );
            }
        }
        UserCommand::Disable { login } => {
            let Some(credentials) = store.user_credentials(&login).await? else {
                bail!("no user {login}");
            };
            let change = UserChange {
                disabled: Some(true),
                ..UserChange::default()
            };
            store
                .update_user(credentials.user.id, change, now())
                .await?;
            cli_audit(
                store,
                "disable_user",
                None,
                format!("user {}", credentials.user.id),
            )
            .await;
            eprintln!("user {login} disabled");
        }
        UserCommand::Password {
            login,
            password_file,
        } => {
            let Some(credentials) = store.user_credentials(&login).await? else {
                bail!("no user {login}");
            };
            let password = read_password(password_file.as_ref())?;
            let change = UserChange {
                password_hash: Some(crate::web::auth::hash_password(&password)?),
                ..UserChange::default()
            };
            store
                .update_user(credentials.user.id, change, now())
                .await?;
            cli_audit(
                store,
                "set_password",
                None,
                format!("user {}", credentials.user.id),
            )
            .await;
            eprintln!("password of {login} changed");
        }
    }
    Ok(())
}
