//! The operator's commands. Every command opens the same database, so the CLI works
//! while `serve` runs. Commands that create something print its id or secret alone on
//! stdout, for scripts.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{AppState, router};
use crate::catalog::{
    CatalogState, REEVALUATION_JOB, reevaluate_behind, set_catalog, wait_for_job,
};
use crate::config::Config;
use crate::export::{csv_for_excel, violations_csv, violations_json};
use crate::store::SqlStore;
use crate::store::{NewAuditEntry, NewOrganization, NewSecret, NewUser, Role, Store, UserChange};
use crate::{format_time, keys, now};

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
        time_zone: String,
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
        /// Include violations that were resolved.
        #[arg(long)]
        include_resolved: bool,
        #[command(flatten)]
        output: Output,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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

/// Opens the store a database URL names.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    open_store_with(url, crate::store::sql::DEFAULT_POSTGRES_POOL_SIZE).await
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store a database URL names: `postgres://` (at most `pool_size`
/// connections) or SQLite (`sqlite:PATH`, `sqlite://PATH` or a plain path).
pub async fn open_store_with(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    if is_postgres_url(url) {
        let store = SqlStore::open_postgres(url, pool_size)
            .await
            .context("opening the PostgreSQL database")?;
        return Ok(Arc::new(store));
    }
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "sqlite"
    {
        bail!("unsupported database URL scheme {scheme}://; use sqlite:PATH or postgres://");
    }
    Ok(Arc::new(open_sqlite(url).await?))
}

async fn open_sqlite(url: &str) -> Result<SqlStore> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = PathBuf::from(path);
    if let Some(folder) = path.parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the data folder {}", folder.display()))?;
    }
    SqlStore::open_sqlite(&path)
        .await
        .with_context(|| format!("opening the database {}", path.display()))
}

async fn run(cli: Cli) -> Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(database) = cli.database {
        config.database = Some(database);
    }
    if let Command::Migrate { from, to, replace } = &cli.command {
        return migrate(from, to, *replace).await;
    }
    let store = open_store_with(&config.database_url(), config.database_connections).await?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(config, store).await
        }
        Command::Org(command) => org(command, store.as_ref()).await,
        Command::Secret(command) => secret(command, store.as_ref()).await,
        Command::Report(command) => report(command, &config, store.as_ref()).await,
        Command::Catalog(command) => catalog(command, store.as_ref()).await,
        Command::User(command) => user(command, store.as_ref()).await,
        Command::Migrate { .. } => Ok(()),
    }
}

async fn migrate(from: &str, to: &str, replace: bool) -> Result<()> {
    if is_postgres_url(from) {
        bail!("--from takes the SQLite database to copy, not {from}");
    }
    if !is_postgres_url(to) {
        bail!("--to takes a postgres:// URL");
    }
    let source_path = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        .unwrap_or(from);
    if !std::path::Path::new(source_path).is_file() {
        bail!("there is no SQLite database at {source_path}");
    }
    let source = open_sqlite(from).await?;
    let target = SqlStore::open_postgres(to, 4)
        .await
        .context("opening the PostgreSQL database")?;
    let summary = crate::store::migrate::sqlite_to_postgres(&source, &target, replace)
        .await
        .context("copying into PostgreSQL")?;
    for (table, rows) in &summary.tables {
        eprintln!("{table}: {rows} rows");
    }
    eprintln!("migrated {source_path} into PostgreSQL; point the collectors' `database` at it");
    source.close().await;
    target.close().await;
    Ok(())
}

async fn serve(config: Config, store: Arc<dyn Store>) -> Result<()> {
    let catalog = CatalogState::load(store.as_ref()).await?;
    let state = Arc::new(AppState::new(
        store,
        catalog,
        config.limits.clone(),
        config.rate_limit,
    ));
    let web_state = Arc::new(
        crate::web::WebState::new(state.clone(), &config).context("the [dashboard] settings")?,
    );
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let tls = match &config.tls {
        Some(tls) => Some(crate::tls::server_config(tls)?),
        None => None,
    };
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("listening on {scheme}://{address}");
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("listening on {scheme}://{address}");
    let _ = std::io::stdout().flush();

    let poll = Duration::from_secs(config.catalog_poll_seconds.max(1));
    let poller = state.clone();
    tokio::spawn(catch_up_reevaluation(state.clone()));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            match poller.refresh_catalog().await {
                Ok(true) => {
                    tracing::info!(
                        revision = poller.catalog().revision,
                        "catalog changed; now using the new revision"
                    );
                    tokio::spawn(catch_up_reevaluation(poller.clone()));
                }
                Ok(false) => {}
                Err(error) => tracing::warn!("cannot reload the catalog: {error}"),
            }
        }
    });

    let retention = i64::from(config.report_retention_days.max(1)) * 86_400;
    let pruner = state.store.clone();
    tokio::spawn(async move {
        loop {
            // With several collectors on one database, one of them prunes.
            match pruner.try_lock_job(PRUNE_JOB).await {
                Ok(Some(_lease)) => match pruner.prune_reports(now() - retention).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "old report ids pruned"),
                    Err(error) => tracing::warn!("cannot prune old reports: {error}"),
                },
                Ok(None) => tracing::debug!("another collector is pruning old reports"),
                Err(error) => tracing::warn!("cannot prune old reports: {error}"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });

    tokio::spawn(crate::web::figures::run_freezer(
        state.store.clone(),
        web_state.clock.clone(),
        config.silent_after_days,
    ));

    let app = router(state).merge(crate::web::router(web_state));
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        Some(tls) => {
            // `tap_io` (doing nothing) gives the TLS listener axum's peer-address
            // `ConnectInfo`, which the dashboard's sign-in throttling uses.
            use axum::serve::ListenerExt;
            let listener = crate::tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .context("serving")?
        }
        None => axum::serve(listener, service)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?,
    }
    Ok(())
}

/// After a catalog change (and at start, in case a collector died while catching up):
/// hosts whose last report was evaluated with an older revision, by a collector that
/// had not noticed the change yet, are evaluated again, by one collector at a time.
async fn catch_up_reevaluation(state: Arc<AppState>) {
    let lease = match wait_for_job(state.store.as_ref(), REEVALUATION_JOB).await {
        Ok(lease) => lease,
        Err(error) => {
            tracing::warn!("cannot catch up with the catalog: {error}");
            return;
        }
    };
    let catalog = state.catalog();
    match reevaluate_behind(state.store.as_ref(), &catalog, now()).await {
        Ok(0) => {}
        Ok(evaluated) => tracing::info!(
            evaluated,
            revision = catalog.revision,
            "hosts evaluated with an older catalog were evaluated again"
        ),
        Err(error) => tracing::warn!("cannot catch up with the catalog: {error}"),
    }
    drop(lease);
}

/// The job name of pruning old report ids (see `Store::try_lock_job`).
pub const PRUNE_JOB: &str = "prune-reports";

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn org(command: OrgCommand, store: &dyn Store) -> Result<()> {
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

async fn secret(command: SecretCommand, store: &dyn Store) -> Result<()> {
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
            println!("{}.{random}", info.id);
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

fn write_output(output: &Output, bytes: &[u8]) -> Result<()> {
    match &output.out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

fn since(config: &Config, days: Option<u32>) -> i64 {
    now() - i64::from(days.unwrap_or(config.silent_after_days)) * 86_400
}

async fn require_organization(store: &dyn Store, id: i64) -> Result<()> {
    if store.organization(id).await?.is_none() {
        bail!("organization {id} does not exist");
    }
    Ok(())
}

async fn report(command: ReportCommand, config: &Config, store: &dyn Store) -> Result<()> {
    match command {
        ReportCommand::Violations {
            org,
            include_resolved,
            output,
        } => {
            require_organization(store, org).await?;
            let rows = store.violations(org, include_resolved).await?;
            let bytes = match output.format {
                Format::Json => {
                    let mut json = violations_json(&rows).into_bytes();
                    json.push(b'\n');
                    json
                }
                Format::Csv => violations_csv(&rows)?,
                Format::Table => {
                    let mut text = String::new();
                    for row in &rows {
                        text.push_str(&format!(
                            "{}\t{}\t{}\t{}\tsince {}\n",
                            crate::export::neutral_cell(&row.organization),
                            crate::export::neutral_cell(&row.hostname),
                            row.app_name,
                            row.users.join(","),
                            format_time(row.first_seen)
                        ));
                    }
                    if rows.is_empty() {
                        text.push_str("no violations\n");
                    }
                    text.into_bytes()
                }
            };
            write_output(&output, &bytes)
        }
        ReportCommand::Coverage { org, days, output } => {
            require_organization(store, org).await?;
            let rows = store.coverage(org, since(config, days)).await?;
            let bytes = match output.format {
                Format::Json => {
                    let values: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|row| {
                            let mut value = serde_json::to_value(row).unwrap_or_default();
                            value["approved_share"] = serde_json::json!(row.approved_share());
                            value
                        })
                        .collect();
                    let mut json = serde_json::to_vec_pretty(&values)?;
                    json.push(b'\n');
                    json
                }
                Format::Csv => csv_for_excel(
                    &[
                        "Организация",
                        "Ожидается ПК",
                        "Подключено",
                        "Отчитались",
                        "Молчат",
                        "С запрещёнными",
                        "С разрешённым мессенджером, %",
                    ],
                    &rows
                        .iter()
                        .map(|row| {
                            vec![
                                row.organization.clone(),
                                row.expected_pcs.to_string(),
                                row.enrolled.to_string(),
                                row.reporting.to_string(),
                                row.silent.to_string(),
                                row.with_banned.to_string(),
                                format!("{:.1}", row.approved_share() * 100.0).replace('.', ","),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?,
                Format::Table => {
                    let mut text = String::from(
                        "organization\texpected\tenrolled\treporting\tsilent\tbanned\tapproved\n",
                    );
                    for row in &rows {
                        text.push_str(&format!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{:.0}%\n",
                            crate::export::neutral_cell(&row.organization),
                            row.expected_pcs,
                            row.enrolled,
                            row.reporting,
                            row.silent,
                            row.with_banned,
                            row.approved_share() * 100.0
                        ));
                    }
                    text.into_bytes()
                }
            };
            write_output(&output, &bytes)
        }
        ReportCommand::Weekly {
            org,
            week,
            format,
            out,
            language,
        } => {
            let bytes = weekly_report(config, store, org, week, &format, &language).await?;
            match &out {
                Some(path) => std::fs::write(path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?,
                None if format == "xlsx" => {
                    bail!("an XLSX report needs --out FILE")
                }
                None => std::io::stdout().write_all(&bytes)?,
            }
            Ok(())
        }
        ReportCommand::Silent { org, days, output } => {
            require_organization(store, org).await?;
            let rows = store.silent_hosts(org, since(config, days)).await?;
            let bytes = match output.format {
                Format::Json => {
                    let mut json = serde_json::to_vec_pretty(&rows)?;
                    json.push(b'\n');
                    json
                }
                Format::Csv => csv_for_excel(
                    &["Организация", "Компьютер", "Последний отчёт"],
                    &rows
                        .iter()
                        .map(|row| {
                            vec![
                                row.organization.clone(),
                                row.hostname.clone(),
                                row.last_seen_at.map(format_time).unwrap_or_default(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?,
                Format::Table => rows
                    .iter()
                    .map(|row| {
                        format!(
                            "{}\t{}\t{}\n",
                            crate::export::neutral_cell(&row.organization),
                            crate::export::neutral_cell(&row.hostname),
                            row.last_seen_at
                                .map(format_time)
                                .unwrap_or_else(|| "never reported".into())
                        )
                    })
                    .collect::<String>()
                    .into_bytes(),
            };
            write_output(&output, &bytes)
        }
    }
}

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

async fn user(command: UserCommand, store: &dyn Store) -> Result<()> {
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

async fn weekly_report(
    config: &Config,
    store: &dyn Store,
    org: i64,
    week: Option<String>,
    format: &str,
    language: &str,
) -> Result<Vec<u8>> {
    use crate::web::{clock::Clock, scope::OrganizationTree, weekly};
    require_organization(store, org).await?;
    let tree = OrganizationTree::new(store.organizations().await?);
    let clock = Clock::new(&config.dashboard.time_zone, &config.dashboard.week_ends_on)?;
    let clock = match tree.time_zone(org) {
        Some(zone) => clock.with_zone(zone)?,
        None => clock,
    };
    let week = match week {
        Some(label) => clock
            .parse_week(&label)
            .with_context(|| format!("{label} is not a week like 2026-W47"))?,
        None => clock.previous(&clock.week_of(now())),
    };
    let figures = weekly::WeekFigures::load(store, &tree, week, config.silent_after_days).await?;
    let lang = crate::web::i18n::Lang::parse(language);
    Ok(match format {
        "xlsx" => weekly::weekly_workbook(&figures, &tree, org, lang, &clock)?,
        "csv" => weekly::weekly_table(&figures, &tree, org, lang, false).csv(&clock)?,
        "json" => {
            let rows: Vec<serde_json::Value> = tree
                .subtree(org)
                .into_iter()
                .filter_map(|id| {
                    let totals = figures.totals.get(&id).copied().unwrap_or_default();
                    let organization = tree.get(id)?;
                    let mut value = serde_json::to_value(totals).ok()?;
                    value["organization_id"] = serde_json::json!(id);
                    value["organization"] = serde_json::json!(organization.name);
                    value["approved_share"] = serde_json::json!(totals.approved_share());
                    Some(value)
                })
                .collect();
            let mut json = serde_json::to_vec_pretty(&serde_json::json!({
                "week": figures.week.label,
                "frozen": figures.frozen,
                "organizations": rows,
            }))?;
            json.push(b'\n');
            json
        }
        other => bail!("unknown format {other} (xlsx, csv or json)"),
    })
}

async fn catalog(command: CatalogCommand, store: &dyn Store) -> Result<()> {
    match command {
        CatalogCommand::Set { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (revision, evaluated) =
                set_catalog(store, &file.display().to_string(), &text, now()).await?;
            eprintln!("catalog revision {revision} stored; {evaluated} PCs evaluated again");
        }
        CatalogCommand::Show => {
            let state = CatalogState::load(store).await?;
            print!("{}", state.toml);
        }
    }
    Ok(())
}
