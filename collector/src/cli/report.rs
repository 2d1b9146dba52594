//! `sverka-collector report`: violations, coverage and silent PCs as a table, JSON or
//! CSV, and the weekly figures as XLSX, CSV or JSON.

use anyhow::{Context, Result, bail};
use std::io::Write;

use super::{Format, Output, ReportCommand, require_organization};
use crate::config::Config;
use crate::export::{csv_for_excel, violations_json};
use crate::store::Store;
use crate::web::activity;
use crate::web::clock::Clock;
use crate::web::figures::applications_of_subtree;
use crate::web::i18n::Lang;
use crate::web::pages::worklist::all_violations_table;
use crate::web::scope::OrganizationTree;
use crate::web::weekly;
use crate::{format_time, now};

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

pub(super) async fn report(
    command: ReportCommand,
    config: &Config,
    store: &dyn Store,
) -> Result<()> {
    match command {
        ReportCommand::Violations {
            org,
            include_resolved,
            output,
            language,
        } => {
            require_organization(store, org).await?;
            let bytes = match output.format {
                // The worklist page's CSV: its columns, words and times.
                Format::Csv => {
                    let tree = OrganizationTree::new(store.organizations().await?);
                    let clock = organization_clock(config, &tree, org)?;
                    let lang = Lang::parse(&language);
                    all_violations_table(
                        store,
                        org,
                        include_resolved,
                        config.silent_after_days,
                        lang,
                    )
                    .await?
                    .csv(&clock)?
                }
                Format::Json => {
                    let rows = store.violations(org, include_resolved).await?;
                    let mut json = violations_json(&rows).into_bytes();
                    json.push(b'\n');
                    json
                }
                Format::Table => {
                    let rows = store.violations(org, include_resolved).await?;
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

/// The organization's clock as its pages have it: its time zone and report cut-off.
fn organization_clock(config: &Config, tree: &OrganizationTree, org: i64) -> Result<Clock> {
    let clock = config.dashboard.clock()?;
    let clock = match tree.time_zone(org) {
        Some(zone) => clock.with_zone(zone)?,
        None => clock,
    };
    Ok(crate::web::clock::with_cutoff_of(clock, tree, org))
}

async fn weekly_report(
    config: &Config,
    store: &dyn Store,
    org: i64,
    week: Option<String>,
    format: &str,
    language: &str,
) -> Result<Vec<u8>> {
    require_organization(store, org).await?;
    let tree = OrganizationTree::new(store.organizations().await?);
    let clock = organization_clock(config, &tree, org)?;
    let week = match week {
        Some(label) => clock
            .parse_week(&label)
            .with_context(|| format!("{label} is not a week like 2026-W47"))?,
        None => {
            // The week the page opens on: the one being reported on its due day, else
            // the last frozen one.
            let last_ended = clock.previous(&clock.week_of(now()));
            let frozen = store
                .weekly_figures_of_week(&last_ended.label)
                .await?
                .iter()
                .any(|figures| figures.organization_id == org);
            weekly::default_week(&clock, now(), frozen)
        }
    };
    let previous = clock.previous(&week);
    let figures = weekly::WeekFigures::load(store, &tree, week, config.silent_after_days).await?;
    if !figures.has_data(org) {
        bail!(
            "no data for {}: it was never frozen, or no PC of organization {org} had reported by then",
            figures.week.label
        );
    }
    let before =
        weekly::WeekFigures::load(store, &tree, previous, config.silent_after_days).await?;
    let lang = Lang::parse(language);
    let catalog = crate::catalog::CatalogState::load(store).await?;
    let names = activity::application_names(catalog.matcher.catalog());
    Ok(match format {
        "xlsx" => {
            weekly::weekly_workbook(&figures, Some(&before), &tree, org, lang, &clock, &names)?
        }
        "csv" => {
            weekly::weekly_table(&figures, Some(&before), &tree, org, lang, false).csv(&clock)?
        }
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
                    value["share_of_reporting_pcs_that_used_an_approved_messenger"] =
                        serde_json::json!(totals.approved_use_share());
                    let applications: Vec<serde_json::Value> =
                        applications_of_subtree(&tree, id, &figures.applications)
                            .into_iter()
                            .map(|((app, status), pcs)| {
                                serde_json::json!({
                                    "app": app,
                                    "name": names.get(&app).cloned().unwrap_or_else(|| app.clone()),
                                    "status": status,
                                    "pcs_that_used_it": pcs,
                                })
                            })
                            .collect();
                    value["applications_used"] = serde_json::json!(applications);
                    Some(value)
                })
                .collect();
            let mail = store
                .weekly_mail(org, &figures.week.label)
                .await?
                .map(|mail| {
                    serde_json::json!({
                        "state": mail.state,
                        "recipients": mail.recipients,
                        "attempts": mail.attempts,
                        "sent_at": mail.sent_at.map(format_time),
                        "last_error": mail.last_error,
                        "next_attempt_at": mail.next_attempt_at.map(format_time),
                        "sent_by": mail.sent_by,
                    })
                });
            let mut json = serde_json::to_vec_pretty(&serde_json::json!({
                "week": figures.week.label,
                "frozen": figures.frozen,
                "organizations": rows,
                "mail": mail,
            }))?;
            json.push(b'\n');
            json
        }
        other => bail!("unknown format {other} (xlsx, csv or json)"),
    })
}
