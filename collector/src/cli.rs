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
use crate::catalog::{CatalogState, set_catalog};
use crate::config::Config;
use crate::export::{csv_for_excel, violations_csv, violations_json};
use crate::store::sqlite::SqliteStore;
use crate::store::{NewOrganization, NewSecret, Store};
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
    /// Database URL (`sqlite:PATH`); overrides the configuration.
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
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!("PostgreSQL is not supported by this build yet; use sqlite:PATH");
    }
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
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening the database {}", path.display()))?;
    Ok(Arc::new(store))
}

async fn run(cli: Cli) -> Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(database) = cli.database {
        config.database = Some(database);
    }
    let store = open_store(&config.database_url()).await?;
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
    }
}

async fn serve(config: Config, store: Arc<dyn Store>) -> Result<()> {
    let catalog = CatalogState::load(store.as_ref()).await?;
    let state = Arc::new(AppState::new(
        store,
        catalog,
        config.limits.clone(),
        config.rate_limit,
    ));
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
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            match poller.refresh_catalog().await {
                Ok(true) => tracing::info!(
                    revision = poller.catalog().revision,
                    "catalog changed; now using the new revision"
                ),
                Ok(false) => {}
                Err(error) => tracing::warn!("cannot reload the catalog: {error}"),
            }
        }
    });

    let retention = i64::from(config.report_retention_days.max(1)) * 86_400;
    let pruner = state.store.clone();
    tokio::spawn(async move {
        loop {
            match pruner.prune_reports(now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "old report ids pruned"),
                Err(error) => tracing::warn!("cannot prune old reports: {error}"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });

    match tls {
        Some(tls) => axum::serve(crate::tls::TlsListener::new(listener, tls)?, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?,
        None => axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?,
    }
    Ok(())
}

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
        } => {
            let organization = store
                .create_organization(NewOrganization {
                    parent_id: parent,
                    name,
                    kind,
                    expected_pcs,
                })
                .await?;
            println!("{}", organization.id);
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
                        "{:indent$}{} {} ({}, {} PCs expected)",
                        "",
                        organization.id,
                        organization.name,
                        organization.kind,
                        organization.expected_pcs,
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
