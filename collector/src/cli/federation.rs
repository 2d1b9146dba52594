//! `sverka-collector link` (on an upstream: the links lower collectors send through)
//! and `sverka-collector upstream` (on a lower collector: where it sends its figures).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::time::Duration;
use sverka_shared::federation::Detail;

use crate::config::Config;
use crate::store::{Store, UpstreamLink};
use crate::upstream::{self, UpstreamError};
use crate::{format_time, keys, now};

#[derive(Debug, Subcommand)]
pub(super) enum LinkCommand {
    /// Create a link for an organization of this collector; prints its secret (shown
    /// only once), which the lower collector's administrator enters with `upstream set`.
    Create {
        #[arg(long)]
        org: i64,
        /// What the lower collector sends about each school's violations: counts, or
        /// pcs (the PCs' names too).
        #[arg(long, default_value = "counts", value_parser = parse_detail)]
        detail: Detail,
    },
    /// Revoke a link: its secret stops working at once; what it sent stays.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List the links, with when each last sent figures.
    List,
}

#[derive(Debug, Subcommand)]
pub(super) enum UpstreamCommand {
    /// Set the upstream collector this one sends its figures to: asks the upstream
    /// what the link allows, shows it, and saves the link.
    Set {
        /// The upstream collector's address, e.g. https://region.example:8440.
        #[arg(long)]
        url: String,
        /// The link secret the upstream's administrator made (`link create`).
        #[arg(long)]
        secret: String,
        /// Allow plain http (a private network only).
        #[arg(long)]
        allow_http: bool,
    },
    /// Send what is due now; exits 0 only when the upstream acknowledged it.
    Push,
    /// Show the upstream and how the last push went.
    Show,
    /// Stop sending figures to the upstream.
    Remove,
}

fn parse_detail(text: &str) -> Result<Detail, String> {
    text.parse()
}

pub(super) async fn link(command: LinkCommand, store: &dyn Store) -> Result<()> {
    match command {
        LinkCommand::Create { org, detail } => {
            let (random, secret_hash) = keys::generate();
            let link = store.create_link(org, &secret_hash, detail, now()).await?;
            println!("{}", keys::token(link.id, &random));
        }
        LinkCommand::Revoke { id } => {
            store.revoke_link(id, now()).await?;
            eprintln!("link {id} revoked");
        }
        LinkCommand::List => {
            for link in store.links().await? {
                let state = match link.revoked_at {
                    Some(at) => format!("revoked {}", format_time(at)),
                    None => "active".into(),
                };
                let last = link.last_received_at.map_or_else(
                    || "nothing received yet".into(),
                    |at| format!("last figures {}", format_time(at)),
                );
                println!(
                    "{} org {} detail {} {state}, {last}, newest week {}",
                    link.id,
                    link.organization_id,
                    link.detail.as_str(),
                    link.newest_week.as_deref().unwrap_or("none")
                );
            }
        }
    }
    Ok(())
}

pub(super) async fn upstream(
    command: UpstreamCommand,
    config: &Config,
    store: &dyn Store,
) -> Result<()> {
    let timeout = Duration::from_secs(config.upstream.timeout_seconds.max(1));
    match command {
        UpstreamCommand::Set {
            url,
            secret,
            allow_http,
        } => {
            if keys::parse_token(&secret).is_none() {
                bail!(
                    "not a link secret (it looks like 12.0123…: the upstream's `link create` prints one)"
                );
            }
            let description = upstream::describe_link(&url, &secret, allow_http, timeout)
                .await
                .context("asking the upstream what the link allows")?;
            store
                .set_upstream(Some(&UpstreamLink::new(
                    &url,
                    &secret,
                    allow_http,
                    &description,
                    now(),
                )))
                .await?;
            println!(
                "upstream set: this collector's organizations will appear under \"{}\" there",
                description.organization
            );
            println!("{}", what_is_sent(description.detail));
        }
        UpstreamCommand::Push => {
            let clock = config.dashboard.clock()?;
            let pushed = upstream::push(
                store,
                &clock,
                config.silent_after_days,
                &config.upstream,
                now(),
            )
            .await
            .map_err(|error| match error {
                UpstreamError::NotConfigured => anyhow::anyhow!("{error}"),
                other => anyhow::anyhow!("not acknowledged: {other}"),
            })?;
            println!(
                "acknowledged: {} message(s), {} frozen week figure(s) stored, newest week held \
                 upstream: {}",
                pushed.messages,
                pushed.weeks_stored,
                pushed.newest_week.as_deref().unwrap_or("none")
            );
            for refused in pushed.refused {
                println!("not taken by the upstream: {refused}");
            }
        }
        UpstreamCommand::Show => {
            let Some(link) = store.upstream().await? else {
                println!("no upstream is set");
                return Ok(());
            };
            println!("upstream: {}", link.url);
            println!("appears under: {}", link.upstream_organization);
            println!("{}", what_is_sent(link.detail));
            let time = |at: Option<i64>| at.map_or_else(|| "never".into(), format_time);
            println!("last push: {}", time(link.last_attempt_at));
            println!("last acknowledged: {}", time(link.last_success_at));
            if let Some(error) = &link.last_error {
                println!("last error: {error}");
            }
            println!(
                "newest frozen week held upstream: {}",
                link.acknowledged_week.as_deref().unwrap_or("none")
            );
        }
        UpstreamCommand::Remove => {
            store.set_upstream(None).await?;
            eprintln!("upstream removed: no figures are sent");
        }
    }
    Ok(())
}

fn what_is_sent(detail: Detail) -> &'static str {
    match detail {
        Detail::Counts => {
            "sent: every organization's figures and, per school and banned messenger, how many PCs have it (no PC names)"
        }
        Detail::Pcs => {
            "sent: every organization's figures and, per school and banned messenger, the names of the PCs that have it"
        }
    }
}
