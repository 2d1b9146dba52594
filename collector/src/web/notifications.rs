//! An organization's notifications page: who receives its daily digest of what is new
//! (school admins set it for their school, officers and administrators for any in
//! their scope), its webhook (officers and administrators; the secret is written,
//! never shown), and the recent digests and webhook calls with how each went. Every
//! change goes to the audit log.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::sync::Arc;

use super::admin::{refused, store_refusal};
use super::auth::{CsrfForm, Viewer};
use super::i18n::Lang;
use super::pages::{crumbs, layout, tree_permitting};
use super::scope::{Action, authorize};
use super::{WebError, WebState};
use crate::store::{Channel, NotificationState, Webhook};

/// How many recent notifications the page lists.
const RECENT_LIMIT: i64 = 50;

/// The words of this page, per language.
#[derive(Debug)]
pub struct NotificationTexts {
    pub title: &'static str,
    pub hint: &'static str,
    pub digest: &'static str,
    pub digest_hint: &'static str,
    pub recipients: &'static str,
    pub nobody: &'static str,
    pub save: &'static str,
    pub webhook: &'static str,
    pub webhook_hint: &'static str,
    pub webhook_url: &'static str,
    pub webhook_secret: &'static str,
    pub no_webhook: &'static str,
    pub remove_webhook: &'static str,
    pub recent: &'static str,
    pub channel: &'static str,
    pub channels: [&'static str; 2],
    pub window: &'static str,
    pub destination: &'static str,
    pub state: &'static str,
    pub states: [&'static str; 5],
    pub attempts: &'static str,
    pub next_attempt: &'static str,
    pub mail_off: &'static str,
}

static RU: NotificationTexts = NotificationTexts {
    title: "Уведомления",
    hint: "Sverka сообщает только новое: найденные и устранённые запрещённые мессенджеры и ПК, \
           переставшие отчитываться. Если нового нет, ничего не отправляется.",
    digest: "Ежедневная сводка по почте",
    digest_hint: "Приходит раз в день в указанное в настройках сборщика время ([notifications] digest_time).",
    recipients: "Получатели (адреса через запятую)",
    nobody: "Получатели сводки не заданы.",
    save: "Сохранить",
    webhook: "Webhook для систем региона",
    webhook_hint: "JSON POST с подписью HMAC-SHA256 в заголовке X-Sverka-Signature (см. docs/collector.md).",
    webhook_url: "Адрес (https://…)",
    webhook_secret: "Секрет подписи (16–256 символов)",
    no_webhook: "Webhook не задан.",
    remove_webhook: "Удалить webhook",
    recent: "Последние уведомления",
    channel: "Канал",
    channels: ["сводка", "webhook"],
    window: "Период",
    destination: "Куда",
    state: "Состояние",
    states: [
        "нового не было",
        "ожидает отправки",
        "отправляется",
        "отправлено",
        "не отправлено",
    ],
    attempts: "Попыток",
    next_attempt: "следующая попытка",
    mail_off: "Почта на этом сборщике не настроена ([mail] в collector.toml): сводки не рассылаются.",
};

static EN: NotificationTexts = NotificationTexts {
    title: "Notifications",
    hint: "Sverka tells only what is new: banned messengers found and gone, and PCs that \
           stopped reporting. When nothing is new, nothing is sent.",
    digest: "Daily digest by e-mail",
    digest_hint: "Sent once a day at the time the collector's settings give ([notifications] digest_time).",
    recipients: "Recipients (addresses separated by commas)",
    nobody: "No digest recipients are set.",
    save: "Save",
    webhook: "Webhook for the region's systems",
    webhook_hint: "A JSON POST signed with HMAC-SHA256 in the X-Sverka-Signature header (see docs/collector.md).",
    webhook_url: "URL (https://…)",
    webhook_secret: "Signing secret (16–256 characters)",
    no_webhook: "No webhook is set.",
    remove_webhook: "Remove the webhook",
    recent: "Recent notifications",
    channel: "Channel",
    channels: ["digest", "webhook"],
    window: "Period",
    destination: "To",
    state: "State",
    states: ["nothing new", "waiting", "sending", "sent", "not sent"],
    attempts: "Tries",
    next_attempt: "next try",
    mail_off: "Mail is not set up on this collector ([mail] in collector.toml): no digests are sent.",
};

impl Lang {
    pub fn notifications(self) -> &'static NotificationTexts {
        match self {
            Lang::Ru => &RU,
            Lang::En => &EN,
        }
    }
}

fn channel_word(texts: &NotificationTexts, channel: Channel) -> &'static str {
    match channel {
        Channel::Digest => texts.channels[0],
        Channel::Webhook => texts.channels[1],
    }
}

fn state_word(texts: &NotificationTexts, state: NotificationState) -> &'static str {
    match state {
        NotificationState::NothingNew => texts.states[0],
        NotificationState::Pending => texts.states[1],
        NotificationState::Sending => texts.states[2],
        NotificationState::Sent => texts.states[3],
        NotificationState::Failed => texts.states[4],
    }
}

/// `GET /org/{id}/notifications`.
pub async fn notifications_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.notifications();
    let organization = tree
        .get(id)
        .cloned()
        .ok_or_else(|| WebError::not_found(&viewer))?;
    let may_set_digest =
        authorize(&viewer.user, Action::SetDigestRecipients, Some(id), &tree).is_ok();
    let may_set_webhook =
        authorize(&viewer.user, Action::ManageOrganizations, Some(id), &tree).is_ok();
    let recent = state.app.store.notifications(id, RECENT_LIMIT).await?;
    let body = html! {
        p { (texts.hint) }
        section #digest aria-labelledby="digest-title" {
            h2 #digest-title { (texts.digest) }
            p.note { (texts.digest_hint) }
            @if state.mailer.is_none() { p.note #mail-off { (texts.mail_off) } }
            @if may_set_digest {
                form method="post" action={ "/org/" (id) "/notifications/digest" } {
                    input type="hidden" name="csrf" value=(viewer.csrf_token);
                    label for="digest-recipients" { (texts.recipients) }
                    input #digest-recipients type="text" name="recipients" size="60"
                        value=(organization.digest_recipients.clone().unwrap_or_default());
                    button type="submit" { (texts.save) }
                }
            } @else {
                p #digest-recipients-text {
                    (organization.digest_recipients.clone().unwrap_or_else(|| texts.nobody.into()))
                }
            }
        }
        section #webhook aria-labelledby="webhook-title" {
            h2 #webhook-title { (texts.webhook) }
            p.note { (texts.webhook_hint) }
            p #webhook-url { (organization.webhook_url.clone().unwrap_or_else(|| texts.no_webhook.into())) }
            @if may_set_webhook {
                form method="post" action={ "/org/" (id) "/notifications/webhook" } {
                    input type="hidden" name="csrf" value=(viewer.csrf_token);
                    label for="webhook-url-input" { (texts.webhook_url) }
                    input #webhook-url-input type="url" name="url" size="60" required
                        value=(organization.webhook_url.clone().unwrap_or_default());
                    label for="webhook-secret" { (texts.webhook_secret) }
                    input #webhook-secret type="password" name="secret" minlength="16" maxlength="256" required autocomplete="off";
                    button type="submit" { (texts.save) }
                }
                @if organization.webhook_url.is_some() {
                    form.inline method="post" action={ "/org/" (id) "/notifications/webhook" } {
                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                        input type="hidden" name="remove" value="1";
                        button type="submit" #remove-webhook { (texts.remove_webhook) }
                    }
                }
            }
        }
        section #recent-notifications aria-labelledby="recent-title" {
            h2 #recent-title { (texts.recent) }
            @if recent.is_empty() { p.empty { (viewer.lang.texts().nothing) } } @else {
                table.data #notifications {
                    thead { tr {
                        th { (texts.channel) } th { (texts.window) } th { (texts.destination) }
                        th { (texts.state) } th { (texts.attempts) }
                    } }
                    tbody {
                        @for notification in &recent {
                            tr {
                                td { (channel_word(texts, notification.channel)) }
                                td { (clock.date_time(notification.covered_from)) " — " (clock.date_time(notification.covered_until)) }
                                td { (notification.destination) }
                                td {
                                    (state_word(texts, notification.state))
                                    @if let Some(at) = notification.sent_at { " " (clock.date_time(at)) }
                                    @if let Some(error) = &notification.last_error { ": " (error) }
                                    @if let (NotificationState::Failed, Some(at)) = (notification.state, notification.next_attempt_at) {
                                        " (" (texts.next_attempt) " " (clock.date_time(at)) ")"
                                    }
                                }
                                td.number { (notification.attempts) }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("{} — {}", texts.title, organization.name);
    Ok(layout(&viewer, &title, crumbs(&viewer, &tree, id), body).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct DigestForm {
    #[serde(default)]
    recipients: String,
}

/// `POST /org/{id}/notifications/digest`: an entry that is not an address is refused
/// with a message that names it, and nothing is changed.
pub async fn set_digest_recipients(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<DigestForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::SetDigestRecipients, Some(id)).await?;
    let saved = state
        .app
        .store
        .set_organization_digest_recipients(id, Some(&form.form.recipients))
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "digest_recipients",
            Some(id),
            format!(
                "daily digest recipients: {}",
                saved.digest_recipients.as_deref().unwrap_or("none")
            ),
        )
        .await;
    Ok(Redirect::to(&format!("/org/{id}/notifications")).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    remove: String,
}

/// `POST /org/{id}/notifications/webhook`: sets the webhook (URL and secret, both
/// checked) or, with `remove`, removes it.
pub async fn set_webhook(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<WebhookForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageOrganizations, Some(id)).await?;
    let webhook = if form.form.remove.is_empty() {
        if form.form.url.trim().is_empty() {
            return Err(refused(&viewer, "webhook URL is empty"));
        }
        Some(Webhook {
            url: form.form.url.clone(),
            secret: form.form.secret.clone(),
        })
    } else {
        None
    };
    let saved = state
        .app
        .store
        .set_organization_webhook(id, webhook.as_ref())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "webhook",
            Some(id),
            match &saved.webhook_url {
                Some(url) => format!("webhook set: {url}"),
                None => "webhook removed".into(),
            },
        )
        .await;
    Ok(Redirect::to(&format!("/org/{id}/notifications")).into_response())
}
