//! The operator's commands: the clap definitions and the dispatch here, one file per
//! command group. Every command opens the same database, so the CLI works while
//! `serve` runs. Commands that create something print its id or secret alone on
//! stdout, for scripts.

mod catalog;
mod federation;
mod host;
mod migrate;
mod org;
mod report;
mod secret;
mod serve;
mod user;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::open_store_with;
use crate::config::Config;
use crate::store::{Role, Store};

#[derive(Debug, Parser)]
#[command(
    name = "sverka-collector",
    version,
    about = "Receives Sverka agents' reports and keeps violation lists per organization"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL (`sqlite:PATH` or `postgres://USER@HOST/DATABASE`); overrides the
    /// configuration.
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server agents report to.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8440.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Organizations: regions, municipalities, schools.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Enrollment secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Enrolled PCs: the recent ones, retiring a PC, merging a duplicate.
    #[command(subcommand)]
    Host(HostCommand),
    /// Violations, coverage and silent PCs.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The catalog the collector evaluates with and agents download.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Copy a SQLite deployment into PostgreSQL with all its history (stop `serve`
    /// first; the SQLite file is only read).
    Migrate {
        /// The SQLite database: a path or a `sqlite://` URL.
        #[arg(long, value_name = "SQLITE")]
        from: String,
        /// The PostgreSQL database: `postgres://USER@HOST:PORT/DATABASE`.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Delete the rows the PostgreSQL database already has (otherwise a database
        /// that is not empty is refused).
        #[arg(long)]
        replace: bool,
    },
    /// People who sign in to the dashboard.
    #[command(subcommand)]
    User(UserCommand),
    /// Messages the collector sends (the weekly report by e-mail).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Links lower collectors send their figures through (on a regional or federal
    /// collector).
    #[command(subcommand)]
    Link(federation::LinkCommand),
    /// The upstream collector this one sends its figures to (on a municipal or
    /// regional collector).
    #[command(subcommand)]
    Upstream(federation::UpstreamCommand),
    /// Print an API's OpenAPI document (the one the collector serves, and
    /// `docs/*.openapi.json`); opens no database.
    Openapi {
        #[arg(value_enum)]
        api: ApiDocument,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ApiDocument {
    /// What agents and lower collectors send (`docs/agent-api.openapi.json`).
    Agent,
    /// The dashboard's read-only JSON API (`docs/dashboard-api.openapi.json`).
    Dashboard,
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Send a test message to an organization's weekly report recipients through
    /// `[mail]`, to check the mail settings.
    Test {
        #[arg(long)]
        org: i64,
    },
    /// Send an organization's digest of what is new since its last digest, now, to
    /// its digest recipients (nothing is sent when nothing is new).
    Digest {
        #[arg(long)]
        org: i64,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from stdin (one line) or from --password-file.
    Add {
        #[arg(long)]
        login: String,
        /// administrator, officer or school_admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The organization an officer or school admin covers.
        #[arg(long)]
        org: Option<i64>,
        /// Read the password from this file (first line) instead of stdin.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// ru (default) or en.
        #[arg(long, default_value = "ru")]
        language: String,
    },
    /// List users.
    List,
    /// Disable a user: their sessions end and they can no longer sign in.
    Disable {
        #[arg(long)]
        login: String,
    },
    /// Set a new password (from stdin or --password-file); ends the user's sessions.
    Password {
        #[arg(long)]
        login: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "administrator, officer or school_admin".to_string())
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Add an organization; prints its id.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: Option<i64>,
        /// region, municipality, school, ...
        #[arg(long, default_value = "school")]
        kind: String,
        #[arg(long, default_value_t = 0)]
        expected_pcs: i64,
        /// Its own time zone for dates and week boundaries (an IANA name such as
        /// Europe/Samara); without it, the parent's (then `[dashboard] time_zone`).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Change an organization's settings.
    Set {
        #[arg(long)]
        org: i64,
        /// Its own time zone (an IANA name such as Europe/Samara); an empty value
        /// goes back to inheriting the parent's.
        #[arg(long)]
        time_zone: Option<String>,
        /// The day and time its weekly report is due, which ends its reporting week
        /// (`thursday 15:00`; a day alone is the end of that day); an empty value goes
        /// back to inheriting the parent's (then `[dashboard] week_ends_on`).
        #[arg(long)]
        report_cutoff: Option<String>,
        /// Who receives its weekly report by e-mail, addresses separated by commas
        /// (sent when the week ends, through `[mail]`); an empty value: nobody.
        #[arg(long)]
        report_recipients: Option<String>,
        /// Who receives its daily digest of what is new (banned messengers found and
        /// gone, PCs gone silent), addresses separated by commas (through `[mail]`, at
        /// `[notifications] digest_time`); an empty value: nobody.
        #[arg(long)]
        digest_recipients: Option<String>,
        /// Post what is new to this URL as signed JSON (see docs/collector.md); needs
        /// --webhook-secret-file.
        #[arg(long, requires = "webhook_secret_file", conflicts_with = "no_webhook")]
        webhook_url: Option<String>,
        /// The webhook's HMAC secret: the first line of this file (16 to 256
        /// characters), shared with the receiver.
        #[arg(long, requires = "webhook_url")]
        webhook_secret_file: Option<std::path::PathBuf>,
        /// Remove the organization's webhook.
        #[arg(long)]
        no_webhook: bool,
    },
    /// List organizations as a tree.
    List,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Create an enrollment secret; prints it (it is shown only once).
    Create {
        #[arg(long)]
        org: i64,
        /// How long it stays valid, e.g. `30d`, `12h` (default: until revoked).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// Revoke a secret: agents can no longer enroll with it.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List an organization's secrets (never the secrets themselves).
    List {
        #[arg(long)]
        org: i64,
    },
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// An organization's most recently enrolled PCs (retired ones too), newest first,
    /// with the secret that enrolled each.
    Recent {
        #[arg(long)]
        org: i64,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Retire a PC that is gone: it leaves every count, its key stops working, its
    /// history stays. Enrolling the machine again brings it back.
    Retire {
        #[arg(long)]
        id: i64,
    },
    /// Merge a duplicate into the PC it duplicates (same organization): the duplicate
    /// is retired and points at the other.
    Merge {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        into: i64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
    Table,
}

#[derive(Debug, Args)]
struct Output {
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to a file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Banned messengers per PC in an organization and everything under it.
    Violations {
        #[arg(long)]
        org: i64,
        /// Include violations that were resolved (after the open ones).
        #[arg(long)]
        include_resolved: bool,
        #[command(flatten)]
        output: Output,
        /// Language of the CSV's column titles and texts (the worklist page's CSV):
        /// ru or en.
        #[arg(long, default_value = "ru")]
        language: String,
    },
    /// PCs expected, enrolled, reporting and silent; share with an approved messenger.
    Coverage {
        #[arg(long)]
        org: i64,
        /// Reported within this many days counts as reporting (default: the
        /// configuration's `silent_after_days`).
        #[arg(long)]
        days: Option<u32>,
        #[command(flatten)]
        output: Output,
    },
    /// The weekly figures of an organization (frozen at the week's end; a week not
    /// frozen yet is computed now).
    Weekly {
        #[arg(long)]
        org: i64,
        /// ISO week of the week's last day, e.g. 2026-W47 (default: the last week
        /// that ended).
        #[arg(long)]
        week: Option<String>,
        /// xlsx, csv or json.
        #[arg(long, default_value = "xlsx")]
        format: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Language of the column titles: ru or en.
        #[arg(long, default_value = "ru")]
        language: String,
    },
    /// PCs that have not reported within the period.
    Silent {
        #[arg(long)]
        org: i64,
        #[arg(long)]
        days: Option<u32>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Merge a catalog file over the built-in catalog and re-evaluate every PC.
    Set { file: PathBuf },
    /// Print the collector's current catalog.
    Show,
}

/// The log filter from `RUST_LOG` (`debug`, `info,sverka_collector::jobs=debug`),
/// `info,sqlx=warn` when unset or not understood. A `Targets` filter, not an
/// `EnvFilter`, whose regex-automata full-DFA builder would also make every catalog
/// glob and expression compile into a dense DFA (see the agent's `log_filter`).
fn log_filter() -> tracing_subscriber::filter::Targets {
    parse_log_filter(std::env::var("RUST_LOG").ok().as_deref())
}

fn parse_log_filter(directives: Option<&str>) -> tracing_subscriber::filter::Targets {
    let default = || {
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::INFO)
            .with_target("sqlx", tracing::Level::WARN)
    };
    directives
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(default)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish()
            .with(log_filter())
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Openapi { api } = &cli.command {
        let document = match api {
            ApiDocument::Agent => crate::api_docs::agent_api(),
            ApiDocument::Dashboard => crate::api_docs::dashboard_api(),
        };
        print!("{}", crate::api_docs::to_json(&document));
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(database) = cli.database {
        config.database = Some(database);
    }
    if let Command::Migrate { from, to, replace } = &cli.command {
        return migrate::migrate(from, to, *replace).await;
    }
    let store = open_store_with(&config.database_url(), config.database_connections).await?;
    match cli.command {
        Command::Serve { listen } => serve::serve(config, listen, store).await,
        Command::Org(command) => org::org(command, store.as_ref()).await,
        Command::Secret(command) => secret::secret(command, store.as_ref()).await,
        Command::Host(command) => host::host(command, store.as_ref()).await,
        Command::Report(command) => report::report(command, &config, store.as_ref()).await,
        Command::Catalog(command) => catalog::catalog(command, store.as_ref()).await,
        Command::User(command) => user::user(command, store.as_ref()).await,
        Command::Notify(NotifyCommand::Test { org }) => {
            notify_test(&config, store.as_ref(), org).await
        }
        Command::Notify(NotifyCommand::Digest { org }) => notify_digest(&config, store, org).await,
        Command::Link(command) => federation::link(command, store.as_ref()).await,
        Command::Upstream(command) => federation::upstream(command, &config, store.as_ref()).await,
        Command::Migrate { .. } | Command::Openapi { .. } => Ok(()),
    }
}

/// `notify test`: a test message to the organization's recipients, now.
async fn notify_test(config: &Config, store: &dyn Store, org: i64) -> Result<()> {
    let Some(organization) = store.organization(org).await? else {
        bail!("organization {org} does not exist");
    };
    let Some(mailer) = crate::mail::Mailer::from_config(&config.mail)? else {
        bail!("no mail server: set [mail] server (and from) in collector.toml");
    };
    let Some(recipients) = organization.report_recipients.clone() else {
        bail!(
            "organization {org} has no recipients: org set --org {org} --report-recipients ADDRESSES"
        );
    };
    crate::web::weekly_mail::send_test(&mailer, &recipients, &organization.name)
        .await
        .map_err(|error| anyhow::anyhow!("not sent through {}: {error}", mailer.describe))?;
    println!(
        "a test message to {recipients} was taken by {}",
        mailer.describe
    );
    Ok(())
}

/// `notify digest`: what is new since the organization's last digest, to its digest
/// recipients, now.
async fn notify_digest(config: &Config, store: Arc<dyn Store>, org: i64) -> Result<()> {
    require_organization(store.as_ref(), org).await?;
    let Some(mailer) = crate::mail::Mailer::from_config(&config.mail)? else {
        bail!("no mail server: set [mail] server (and from) in collector.toml");
    };
    let catalog = crate::catalog::CatalogState::load(store.as_ref()).await?;
    let app = Arc::new(crate::app::AppState::new(
        store,
        catalog,
        config.limits.clone(),
        config.rate_limit,
    ));
    let state = crate::web::WebState::new(app, config).context("the [dashboard] settings")?;
    let outcome =
        crate::notify::digest_now(&state, &mailer, &config.notifications, org, crate::now())
            .await?;
    match outcome {
        None => println!("nothing new since the last digest: nothing was sent"),
        Some(crate::store::DeliveryOutcome::Sent) => {
            println!("the digest was taken by {}", mailer.describe);
        }
        Some(crate::store::DeliveryOutcome::Failed { error, retry_at }) => bail!(
            "the digest was not sent through {}: {error}{}",
            mailer.describe,
            if retry_at.is_some() {
                " (the collector will try again)"
            } else {
                ""
            }
        ),
    }
    Ok(())
}

/// Fails with a clear message when the organization does not exist.
async fn require_organization(store: &dyn Store, id: i64) -> Result<()> {
    if store.organization(id).await?.is_none() {
        bail!("organization {id} does not exist");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_log_filter;
    use tracing::Level;

    #[test]
    fn log_filter_quiets_sqlx_by_default_and_reads_rust_log_directives() {
        let default = parse_log_filter(None);
        assert!(default.would_enable("sverka_collector::jobs", &Level::INFO));
        assert!(!default.would_enable("sqlx::query", &Level::INFO));
        assert!(default.would_enable("sqlx::query", &Level::WARN));

        let debug = parse_log_filter(Some("debug"));
        assert!(debug.would_enable("sverka_collector::jobs", &Level::DEBUG));

        let not_understood = parse_log_filter(Some("jobs=loud"));
        assert!(!not_understood.would_enable("sqlx::query", &Level::INFO));
    }
}
