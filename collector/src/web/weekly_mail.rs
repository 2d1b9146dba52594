//! The weekly report that sends itself (issue 20): once an organization's week has
//! ended (at its own cut-off, in its own time zone) and its figures are frozen, the
//! collector e-mails the frozen report (a short summary in Russian, the workbook
//! attached) to the organization's recipients. Each week is claimed in the database
//! before it is handed to the mail server, so it is sent once across restarts and
//! collectors; a failure is tried again with a growing pause; a send interrupted by a
//! stop is not repeated by itself (the weekly page says so, and offers "send now").

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

use super::activity;
use super::admin::{refused, store_refusal};
use super::auth::CsrfForm;
use super::clock::{Clock, Week};
use super::i18n::Lang;
use super::pages::tree_permitting;
use super::scope::{Action, OrganizationTree};
use super::weekly::{WeekFigures, weekly_workbook};
use super::{WebError, WebState, auth::Viewer};

use crate::mail::{Mailer, parse_recipients};
use crate::store::{DeliveryOutcome, StoreResult, Timestamp, WeeklyMail};

/// The job lease of sending weekly reports (see `Store::try_lock_job`).
pub const WEEKLY_MAIL_JOB: &str = "weekly-mail";

/// Tries of one week's report before the collector stops trying by itself (the
/// weekly page then offers "send now"): with the pauses doubling to an hour, about
/// five hours of a mail server that does not take it.
pub const MAX_ATTEMPTS: i64 = 12;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The pause before try `attempt + 1` after `attempt` failed: `first` (a minute by
/// default), doubling, at most an hour (or `first`, if longer).
pub fn retry_pause(attempt: i64, first: i64) -> i64 {
    let doublings = attempt.clamp(1, 13) - 1;
    first
        .max(1)
        .saturating_mul(1 << doublings)
        .min(3_600.max(first))
}

/// One week's report of one organization, ready to send: subject, body, workbook.
#[derive(Debug)]
pub struct WeeklyMessage {
    pub subject: String,
    pub body: String,
    pub attachment: (String, Vec<u8>),
}

/// The message of `id`'s report for `week` (frozen, or `None` when it has no data).
pub async fn weekly_message(
    state: &WebState,
    tree: &OrganizationTree,
    id: i64,
    week: Week,
) -> Result<Option<WeeklyMessage>, WebError> {
    let lang = Lang::Ru;
    let store = state.app.store.as_ref();
    let clock = state.clock_for(tree, id).in_language(lang);
    let previous = clock.previous(&week);
    let figures = WeekFigures::load(store, tree, week, state.silent_after_days).await?;
    if !figures.has_data(id) {
        return Ok(None);
    }
    let before = WeekFigures::load(store, tree, previous, state.silent_after_days).await?;
    let names = activity::application_names(state.app.catalog().matcher.catalog());
    let workbook = weekly_workbook(&figures, Some(&before), tree, id, lang, &clock, &names)
        .map_err(|error| WebError::Internal(format!("weekly XLSX: {error}")))?;
    let title = super::weekly::weekly_title(&figures, tree, id, &clock, lang);
    let name = title.organization.clone();
    let totals = figures.totals.get(&id).copied().unwrap_or_default();
    let percent = |share: Option<f64>| {
        share
            .map(|share| lang.percent(share * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    let mut body = format!(
        "Еженедельный отчёт Sverka: {name}, неделя {label} ({from} — {to}).\n\
         Состояние недели: {state}.\n\n\
         ПК ожидается: {expected}; подключено: {enrolled}; отчитались за неделю: {reporting}; молчат: {silent}.\n\
         С запрещёнными мессенджерами: {banned} (из них молчат: {silent_banned}).\n\
         С разрешённым мессенджером: {approved} ({approved_share}).\n",
        label = figures.week.label,
        from = clock.date(clock.date_of(figures.week.start)),
        to = clock.date(figures.week.last_day),
        state = title.state,
        expected = totals.expected_pcs,
        enrolled = totals.enrolled,
        reporting = totals.reporting,
        silent = totals.silent,
        banned = totals.with_banned,
        silent_banned = totals.silent_with_banned,
        approved = totals.with_approved,
        approved_share = percent(totals.approved_share()),
    );
    if let (Some(used_approved), Some(used_banned)) = (totals.used_approved, totals.used_banned) {
        body.push_str(&format!(
            "Использовали разрешённый мессенджер за неделю: {used_approved} ПК ({share} отчитавшихся); \
             запрещённый: {used_banned} ПК.\n",
            share = percent(totals.approved_use_share()),
        ));
    }
    body.push_str("\nПодробности — во вложенной таблице XLSX");
    if let Some(url) = &state.public_url {
        body.push_str(&format!(
            " и на странице {}/org/{id}/weekly?week={}",
            url.trim_end_matches('/'),
            figures.week.label
        ));
    }
    body.push_str(".\n\nПисьмо отправлено Sverka автоматически; отвечать на него не нужно.\n");
    Ok(Some(WeeklyMessage {
        subject: format!(
            "Sverka: еженедельный отчёт — {name} — неделя {}",
            figures.week.label
        ),
        body,
        attachment: (title.file_name("xlsx"), workbook),
    }))
}

/// Sends `message` and says how it went (a failure is tried again after
/// [`retry_pause`] when `attempt` is given).
async fn deliver(
    mailer: &Mailer,
    recipients: &str,
    message: WeeklyMessage,
    attempt: Option<i64>,
    now: Timestamp,
) -> DeliveryOutcome {
    let to = match parse_recipients(recipients) {
        Ok(to) if !to.is_empty() => to,
        Ok(_) => {
            return DeliveryOutcome::Failed {
                error: "no recipients".into(),
                retry_at: None,
            };
        }
        Err(error) => {
            return DeliveryOutcome::Failed {
                error,
                retry_at: None,
            };
        }
    };
    let (file_name, bytes) = message.attachment;
    match mailer
        .send(
            &to,
            &message.subject,
            &message.body,
            Some((file_name, bytes, XLSX)),
        )
        .await
    {
        Ok(()) => DeliveryOutcome::Sent,
        Err(error) => DeliveryOutcome::Failed {
            error: error.to_string(),
            retry_at: attempt
                .filter(|attempt| *attempt < MAX_ATTEMPTS)
                .map(|attempt| now + retry_pause(attempt, mailer.first_retry.as_secs() as i64)),
        },
    }
}

/// One round of the job: every organization with recipients whose last ended week is
/// frozen and not yet sent (or failed and due again) gets its report. Returns how many
/// were sent.
pub async fn send_due_reports(
    state: &WebState,
    mailer: &Mailer,
    now: Timestamp,
) -> StoreResult<u64> {
    let store = state.app.store.as_ref();
    let tree = OrganizationTree::new(store.organizations().await?);
    let mut frozen_weeks: HashMap<String, Vec<i64>> = HashMap::new();
    let mut sent = 0;
    for id in tree.ids() {
        let Some(recipients) = tree
            .get(id)
            .and_then(|organization| organization.report_recipients.clone())
            .filter(|recipients| !recipients.trim().is_empty())
        else {
            continue;
        };
        let clock = state.clock_for(&tree, id);
        let week = clock.previous(&clock.week_of(now));
        if !frozen_weeks.contains_key(&week.label) {
            let frozen = store
                .weekly_figures_of_week(&week.label)
                .await?
                .into_iter()
                .map(|figures| figures.organization_id)
                .collect();
            frozen_weeks.insert(week.label.clone(), frozen);
        }
        if !frozen_weeks[&week.label].contains(&id) {
            continue;
        }
        let label = week.label.clone();
        let Some(attempt) = store
            .claim_weekly_mail(id, &label, &recipients, now)
            .await?
        else {
            continue;
        };
        let outcome = match weekly_message(state, &tree, id, week).await {
            Ok(Some(message)) => deliver(mailer, &recipients, message, Some(attempt), now).await,
            Ok(None) => DeliveryOutcome::Failed {
                error: "the week has no data".into(),
                retry_at: None,
            },
            Err(error) => DeliveryOutcome::Failed {
                error: format!("the report could not be made: {error:?}"),
                retry_at: Some(now + retry_pause(attempt, mailer.first_retry.as_secs() as i64)),
            },
        };
        match &outcome {
            DeliveryOutcome::Sent => {
                sent += 1;
                tracing::info!(organization = id, week = %label, recipients = %recipients, "weekly report sent");
            }
            DeliveryOutcome::Failed { error, retry_at } => tracing::warn!(
                organization = id,
                week = %label,
                attempt,
                retry_at,
                "the weekly report was not sent: {error}"
            ),
        }
        store
            .finish_weekly_mail(id, &label, &recipients, &outcome, None, crate::now())
            .await?;
    }
    Ok(sent)
}

/// What the weekly page says about the week's mail.
pub fn mail_status(mail: Option<&WeeklyMail>, recipients: Option<&str>, clock: &Clock) -> Markup {
    html! {
        p.mail #weekly-mail {
            @match mail {
                Some(mail) if mail.state == "sent" => {
                    "Отчёт отправлен по почте "
                    (mail.sent_at.map(|at| clock.date_time(at)).unwrap_or_default())
                    ": " (mail.recipients)
                    @if let Some(by) = &mail.sent_by { " (отправил " (by) ")" }
                    "."
                }
                Some(mail) if mail.state == "sending" => {
                    "Отправка началась " (clock.date_time(mail.claimed_at))
                    " и была прервана (сборщик остановился). Письмо могло уйти; проверьте почту \
                     получателей и при необходимости отправьте снова."
                }
                Some(mail) => {
                    "Отчёт не отправлен (попыток: " (mail.attempts) "): "
                    (mail.last_error.clone().unwrap_or_default())
                    @if let Some(at) = mail.next_attempt_at { ". Следующая попытка: " (clock.date_time(at)) }
                    "."
                }
                None => {
                    @match recipients {
                        Some(recipients) => { "Получатели еженедельного отчёта: " (recipients) "." }
                        None => { "Получатели еженедельного отчёта не заданы." }
                    }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SendQuery {
    week: String,
}

/// "Send now": the frozen week's report to the organization's recipients, at once,
/// by the person who pressed it (officers and administrators); recorded and audited.
pub async fn send_now(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    Query(query): Query<SendQuery>,
    form: CsrfForm<super::admin::NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let tree = tree_permitting(&state, &viewer, Action::ManageOrganizations, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let Some(week) = clock.parse_week(&query.week) else {
        return Err(refused(&viewer, "week is not like 2026-W47"));
    };
    let back = format!("/org/{id}/weekly?week={}", week.label);
    let Some(mailer) = state.mailer.clone() else {
        return Err(refused(
            &viewer,
            "Почта не настроена на этом сборщике ([mail] в collector.toml).",
        ));
    };
    let Some(recipients) = tree
        .get(id)
        .and_then(|organization| organization.report_recipients.clone())
    else {
        return Err(refused(
            &viewer,
            "У организации не заданы получатели еженедельного отчёта.",
        ));
    };
    let frozen = state
        .app
        .store
        .weekly_figures_of_week(&week.label)
        .await?
        .iter()
        .any(|figures| figures.organization_id == id);
    if !frozen {
        return Err(refused(
            &viewer,
            "Отправить можно только зафиксированную (закрытую) неделю.",
        ));
    }
    let label = week.label.clone();
    let now = crate::now();
    let outcome = match weekly_message(&state, &tree, id, week).await? {
        Some(message) => deliver(&mailer, &recipients, message, None, now).await,
        None => DeliveryOutcome::Failed {
            error: "the week has no data".into(),
            retry_at: None,
        },
    };
    state
        .app
        .store
        .finish_weekly_mail(
            id,
            &label,
            &recipients,
            &outcome,
            Some(&viewer.user.login),
            now,
        )
        .await?;
    let detail = match &outcome {
        DeliveryOutcome::Sent => format!("weekly report {label} sent to {recipients}"),
        DeliveryOutcome::Failed { error, .. } => format!("weekly report {label} not sent: {error}"),
    };
    state
        .audit(&viewer.user.login, "weekly_mail", Some(id), detail)
        .await;
    Ok(Redirect::to(&back).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct RecipientsForm {
    #[serde(default)]
    recipients: String,
    #[serde(default)]
    week: String,
}

/// Sets who receives the organization's weekly report; an entry that is not an
/// address is refused with a message that names it, and nothing is changed.
pub async fn set_recipients(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<RecipientsForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageOrganizations, Some(id)).await?;
    if let Err(message) = parse_recipients(&form.form.recipients) {
        return Err(refused(&viewer, format!("Адреса не сохранены: {message}")));
    }
    let saved = state
        .app
        .store
        .set_organization_report_recipients(id, Some(&form.form.recipients))
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "report_recipients",
            Some(id),
            format!(
                "weekly report recipients: {}",
                saved.report_recipients.as_deref().unwrap_or("none")
            ),
        )
        .await;
    let week = form.form.week.trim();
    let back = if week.is_empty() || !week.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        format!("/org/{id}/weekly")
    } else {
        format!("/org/{id}/weekly?week={week}")
    };
    Ok(Redirect::to(&back).into_response())
}

/// The weekly page's mail section: its state for the week, "send now" for a frozen
/// week, and the recipients' form (for those who may change them).
#[derive(Debug)]
pub struct MailSection<'a> {
    pub viewer: &'a Viewer,
    pub id: i64,
    pub week: &'a str,
    pub frozen: bool,
    pub mail: Option<&'a WeeklyMail>,
    pub recipients: Option<&'a str>,
    pub may_manage: bool,
    pub mail_configured: bool,
}

impl MailSection<'_> {
    pub fn html(&self, clock: &Clock) -> Markup {
        let (id, week) = (self.id, self.week);
        html! {
            section #mail aria-labelledby="mail-title" {
                h2 #mail-title { "Рассылка отчёта" }
                (mail_status(self.mail, self.recipients, clock))
                @if !self.mail_configured {
                    p.note { "Почта на этом сборщике не настроена ([mail] в collector.toml): отчёт не рассылается." }
                }
                @if self.may_manage {
                    @if self.frozen && self.mail_configured && self.recipients.is_some() {
                        form.inline method="post" action={ "/org/" (id) "/weekly/send?week=" (week) } {
                            input type="hidden" name="csrf" value=(self.viewer.csrf_token);
                            button type="submit" #send-now { "Отправить сейчас" }
                        }
                    }
                    form method="post" action={ "/org/" (id) "/weekly/recipients" } {
                        input type="hidden" name="csrf" value=(self.viewer.csrf_token);
                        input type="hidden" name="week" value=(week);
                        label for="recipients" { "Получатели (адреса через запятую)" }
                        input #recipients type="text" name="recipients" value=(self.recipients.unwrap_or_default()) size="60";
                        button type="submit" { "Сохранить" }
                    }
                }
            }
        }
    }
}

/// The test message of `notify test`.
pub async fn send_test(
    mailer: &Mailer,
    recipients: &str,
    organization: &str,
) -> Result<(), String> {
    let to = parse_recipients(recipients)?;
    if to.is_empty() {
        return Err("no recipients".into());
    }
    mailer
        .send(
            &to,
            &format!("Sverka: проверка почты — {organization}"),
            &format!(
                "Это проверочное письмо Sverka. Еженедельный отчёт организации «{organization}» \
                 будет приходить на эти адреса после окончания каждой отчётной недели.\n"
            ),
            None,
        )
        .await
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_mail_is_tried_again_after_a_growing_pause() {
        assert_eq!(retry_pause(1, 60), 60);
        assert_eq!(retry_pause(2, 60), 120);
        assert_eq!(retry_pause(6, 60), 1_920);
        assert_eq!(retry_pause(7, 60), 3_600);
        assert_eq!(retry_pause(100, 60), 3_600);
        assert_eq!(retry_pause(0, 60), 60);
        assert_eq!(retry_pause(3, 1), 4);
        assert_eq!(retry_pause(2, 7_200), 7_200);
    }
}
