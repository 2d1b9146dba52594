//! Federation for the administrator (issue 21), what `sverka-collector upstream` and
//! `link` do on the command line: on a lower collector, its upstream (checked with the
//! upstream first, so the administrator sees where the figures will appear and what
//! will be sent before saving), a push now, removing it; on an upstream, the links
//! lower collectors send through (a new link's secret shown once), revoking them.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;
use std::time::Duration;
use sverka_shared::federation::{Detail, LinkDescription};

use super::admin::{refused, store_refusal};
use super::auth::{CsrfForm, Viewer};
use super::i18n::Lang;
use super::pages::{layout, tree_permitting};
use super::scope::{Action, OrganizationTree};
use super::{WebError, WebState};
use crate::store::UpstreamLink;
use crate::upstream::{self, UpstreamError};
use crate::{keys, now};

pub const FEDERATION_PAGE_PATH: &str = "/federation";

pub async fn federation_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let body = page_body(&state, &viewer, None).await?;
    Ok(layout(&viewer, texts(viewer.lang).title, html! {}, body).into_response())
}

async fn page_body(
    state: &WebState,
    viewer: &Viewer,
    new_secret: Option<(&str, &str)>,
) -> Result<Markup, WebError> {
    let tree = tree_permitting(state, viewer, Action::ManageFederation, None).await?;
    let words = texts(viewer.lang);
    let upstream = state.app.store.upstream().await?;
    let links = state.app.store.links().await?;
    let time = |at: Option<i64>| {
        at.map_or_else(|| words.never.to_string(), |at| state.clock.date_time(at))
    };
    let name_of = |id: i64| {
        tree.get(id)
            .map_or_else(|| format!("#{id}"), |org| org.name.clone())
    };
    Ok(html! {
        section #upstream {
            h2 { (words.upstream) }
            @match &upstream {
                None => p { (words.no_upstream) },
                Some(link) => {
                    dl.facts {
                        dt { (words.address) } dd { (link.url) }
                        dt { (words.appears_under) } dd { (link.upstream_organization) }
                        dt { (words.sent) } dd { (words.what_is_sent(link.detail)) }
                        dt { (words.last_push) } dd { (time(link.last_attempt_at)) }
                        dt { (words.last_acknowledged) } dd { (time(link.last_success_at)) }
                        dt { (words.newest_week) } dd { (link.acknowledged_week.as_deref().unwrap_or("—")) }
                        @if let Some(error) = &link.last_error {
                            dt { (words.last_error) } dd.error #upstream-error { (error) }
                        }
                    }
                    form.inline method="post" action="/federation/upstream/push" {
                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                        button #push-now type="submit" { (words.push_now) }
                    }
                    form.inline method="post" action="/federation/upstream/remove" {
                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                        button type="submit" { (words.remove) }
                    }
                }
            }
            h3 { (words.connect) }
            p { (words.connect_help) }
            form #upstream-check method="post" action="/federation/upstream/check" {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                label { (words.address) input name="url" type="url" required placeholder="https://region.example:8440"; }
                label { (words.secret) input name="secret" type="password" required autocomplete="off"; }
                label.check { input name="allow_http" type="checkbox" value="1"; (words.allow_http) }
                button type="submit" { (words.check) }
            }
        }
        section #links {
            h2 { (words.links) }
            p { (words.links_help) }
            @if let Some((organization, secret)) = new_secret {
                div.notice #new-link-secret role="status" {
                    p { (words.new_secret) " «" (organization) "»:" }
                    p { code { (secret) } }
                }
            }
            @if links.is_empty() {
                p { (words.no_links) }
            } @else {
                table.data {
                    thead { tr {
                        th { "№" } th { (words.organization) } th { (words.detail) }
                        th { (words.state) } th { (words.last_received) } th { (words.newest_week) }
                        th { span.visually-hidden { (words.actions) } }
                    } }
                    tbody {
                        @for link in &links {
                            tr {
                                td { (link.id) }
                                td { (name_of(link.organization_id)) }
                                td { (words.detail_name(link.detail)) }
                                td { @match link.revoked_at {
                                    Some(at) => { (words.revoked) " " (state.clock.date_time(at)) },
                                    None => (words.active),
                                } }
                                td { (time(link.last_received_at)) }
                                td { (link.newest_week.as_deref().unwrap_or("—")) }
                                td { @if link.revoked_at.is_none() {
                                    form.inline method="post" action="/federation/links/revoke" {
                                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                                        input type="hidden" name="id" value=(link.id);
                                        button type="submit" { (words.revoke) }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            h3 { (words.new_link) }
            form #link-create method="post" action="/federation/links" {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                label { (words.organization) select name="organization_id" required {
                    @for id in linkable(&tree) {
                        option value=(id) { (name_of(id)) }
                    }
                } }
                label { (words.detail) select name="detail" {
                    @for detail in [Detail::Counts, Detail::Pcs] {
                        option value=(detail.as_str()) { (words.detail_name(detail)) }
                    }
                } }
                button type="submit" { (words.create) }
            }
        }
    })
}

/// The organizations a link can be made for: this collector's own (a federated one
/// belongs to its lower collector), parents first.
fn linkable(tree: &OrganizationTree) -> Vec<i64> {
    tree.roots()
        .iter()
        .flat_map(|&root| tree.subtree(root))
        .filter(|&id| {
            tree.get(id)
                .is_some_and(|org| org.federated_link_id.is_none())
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
pub struct UpstreamForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    allow_http: String,
}

impl UpstreamForm {
    fn allow_http(&self) -> bool {
        !self.allow_http.is_empty()
    }
}

/// An id a form sent, or the form refused.
fn form_id(viewer: &Viewer, text: &str) -> Result<i64, WebError> {
    text.trim()
        .parse()
        .map_err(|_| refused(viewer, viewer.lang.texts().bad_form))
}

/// Asks the upstream what the link allows; a person-readable refusal otherwise.
async fn describe(
    state: &WebState,
    viewer: &Viewer,
    form: &UpstreamForm,
) -> Result<LinkDescription, WebError> {
    let words = texts(viewer.lang);
    if keys::parse_token(&form.secret).is_none() {
        return Err(refused(viewer, words.not_a_secret));
    }
    let timeout = Duration::from_secs(state.upstream.timeout_seconds.max(1));
    upstream::describe_link(&form.url, &form.secret, form.allow_http(), timeout)
        .await
        .map_err(|error| match error {
            UpstreamError::Store(error) => store_refusal(viewer, error),
            other => refused(viewer, format!("{}: {other}", words.upstream_said)),
        })
}

/// The first step: shows where the figures will appear and what will be sent, and
/// asks to confirm; nothing is saved yet.
pub async fn check_upstream(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<UpstreamForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageFederation, None).await?;
    let description = describe(&state, &viewer, &form.form).await?;
    let words = texts(viewer.lang);
    let body = html! {
        p #upstream-confirm-text {
            (words.will_appear_under) " «" (description.organization) "» " (words.at) " " (form.form.url.trim()) "."
        }
        p #upstream-what-is-sent { (words.what_is_sent(description.detail)) }
        form method="post" action="/federation/upstream" {
            input type="hidden" name="csrf" value=(viewer.csrf_token);
            input type="hidden" name="url" value=(form.form.url.trim());
            input type="hidden" name="secret" value=(form.form.secret.trim());
            @if form.form.allow_http() { input type="hidden" name="allow_http" value="1"; }
            button #upstream-confirm type="submit" { (words.confirm) }
        }
        p { a href=(FEDERATION_PAGE_PATH) { (words.cancel) } }
    };
    Ok(layout(&viewer, words.confirm_title, html! {}, body).into_response())
}

/// The second step: asks the upstream again and saves the link.
pub async fn set_upstream(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<UpstreamForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageFederation, None).await?;
    let description = describe(&state, &viewer, &form.form).await?;
    let link = UpstreamLink::new(
        &form.form.url,
        &form.form.secret,
        form.form.allow_http(),
        &description,
        now(),
    );
    let url = link.url.clone();
    state
        .app
        .store
        .set_upstream(Some(&link))
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "set_upstream",
            None,
            format!("upstream {url} ({})", description.detail.as_str()),
        )
        .await;
    Ok(Redirect::to(FEDERATION_PAGE_PATH).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

/// Sends what is due now; how it went shows on the page (the last push, its error).
pub async fn push_now(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageFederation, None).await?;
    let pushed = upstream::push(
        state.app.store.as_ref(),
        &state.clock,
        state.silent_after_days,
        &state.upstream,
        now(),
    )
    .await;
    match pushed {
        Ok(_) => {}
        Err(UpstreamError::NotConfigured) => {
            return Err(refused(&viewer, texts(viewer.lang).no_upstream));
        }
        Err(UpstreamError::Store(error)) => return Err(WebError::Store(error)),
        // Recorded: the page shows it.
        Err(error) => tracing::warn!("a push from the dashboard failed: {error}"),
    }
    Ok(Redirect::to(FEDERATION_PAGE_PATH).into_response())
}

pub async fn remove_upstream(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageFederation, None).await?;
    state.app.store.set_upstream(None).await?;
    state
        .audit(
            &viewer.user.login,
            "remove_upstream",
            None,
            "upstream removed".into(),
        )
        .await;
    Ok(Redirect::to(FEDERATION_PAGE_PATH).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    detail: String,
}

/// A new link; its secret is shown on the answer only (its hash is kept).
pub async fn create_link(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<LinkForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let words = texts(viewer.lang);
    let organization_id = form_id(&viewer, &form.form.organization_id)?;
    let tree = tree_permitting(
        &state,
        &viewer,
        Action::ManageFederation,
        Some(organization_id),
    )
    .await?;
    let detail: Detail = form
        .form
        .detail
        .parse()
        .map_err(|_| refused(&viewer, viewer.lang.texts().bad_form))?;
    let (random, secret_hash) = keys::generate();
    let link = state
        .app
        .store
        .create_link(organization_id, &secret_hash, detail, now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "create_link",
            Some(organization_id),
            format!("link {} ({})", link.id, detail.as_str()),
        )
        .await;
    let secret = keys::token(link.id, &random);
    let organization = tree
        .get(organization_id)
        .map(|org| org.name.clone())
        .unwrap_or_default();
    let body = page_body(&state, &viewer, Some((&organization, &secret))).await?;
    Ok(layout(&viewer, words.title, html! {}, body).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    id: String,
}

pub async fn revoke_link(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<RevokeForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageFederation, None).await?;
    let id = form_id(&viewer, &form.form.id)?;
    state
        .app
        .store
        .revoke_link(id, now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "revoke_link",
            None,
            format!("link {id}"),
        )
        .await;
    Ok(Redirect::to(FEDERATION_PAGE_PATH).into_response())
}

/// The page's words; one struct per language, so a missing translation does not
/// compile.
#[derive(Debug)]
pub struct FederationTexts {
    pub title: &'static str,
    upstream: &'static str,
    no_upstream: &'static str,
    address: &'static str,
    appears_under: &'static str,
    sent: &'static str,
    last_push: &'static str,
    last_acknowledged: &'static str,
    newest_week: &'static str,
    last_error: &'static str,
    never: &'static str,
    push_now: &'static str,
    remove: &'static str,
    connect: &'static str,
    connect_help: &'static str,
    secret: &'static str,
    allow_http: &'static str,
    check: &'static str,
    not_a_secret: &'static str,
    upstream_said: &'static str,
    confirm_title: &'static str,
    will_appear_under: &'static str,
    at: &'static str,
    confirm: &'static str,
    cancel: &'static str,
    counts_sent: &'static str,
    pcs_sent: &'static str,
    counts: &'static str,
    pcs: &'static str,
    links: &'static str,
    links_help: &'static str,
    no_links: &'static str,
    new_secret: &'static str,
    organization: &'static str,
    detail: &'static str,
    state: &'static str,
    last_received: &'static str,
    actions: &'static str,
    revoked: &'static str,
    active: &'static str,
    revoke: &'static str,
    new_link: &'static str,
    create: &'static str,
}

impl FederationTexts {
    fn what_is_sent(&self, detail: Detail) -> &'static str {
        match detail {
            Detail::Counts => self.counts_sent,
            Detail::Pcs => self.pcs_sent,
        }
    }

    fn detail_name(&self, detail: Detail) -> &'static str {
        match detail {
            Detail::Counts => self.counts,
            Detail::Pcs => self.pcs,
        }
    }
}

pub fn texts(lang: Lang) -> &'static FederationTexts {
    match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    }
}

static RU: FederationTexts = FederationTexts {
    title: "Обмен с другими серверами",
    upstream: "Вышестоящий сервер",
    no_upstream: "Вышестоящий сервер не задан: показатели этого сервера никуда не отправляются.",
    address: "Адрес",
    appears_under: "Показатели появляются там в организации",
    sent: "Отправляется",
    last_push: "Последняя отправка",
    last_acknowledged: "Последняя принятая",
    newest_week: "Последняя закрытая неделя там",
    last_error: "Последняя ошибка",
    never: "никогда",
    push_now: "Отправить сейчас",
    remove: "Отключить",
    connect: "Подключить вышестоящий сервер",
    connect_help: "Адрес и секрет связи даёт администратор вышестоящего сервера \
        (регионального или федерального). Перед сохранением будет показано, что именно \
        туда отправляется.",
    secret: "Секрет связи",
    allow_http: "Разрешить http без шифрования (только в закрытой сети)",
    check: "Проверить",
    not_a_secret: "Это не секрет связи: он выглядит как 12.0123…",
    upstream_said: "Вышестоящий сервер не подтвердил связь",
    confirm_title: "Подтвердите подключение",
    will_appear_under: "Показатели всех организаций этого сервера появятся в организации",
    at: "на сервере",
    confirm: "Подключить и отправлять",
    cancel: "Отмена",
    counts_sent: "Отправляются показатели каждой организации и, по каждой школе и \
        запрещённому мессенджеру, число ПК с ним — без имён ПК.",
    pcs_sent: "Отправляются показатели каждой организации и, по каждой школе и \
        запрещённому мессенджеру, имена ПК, на которых он есть.",
    counts: "только числа",
    pcs: "числа и имена ПК",
    links: "Нижестоящие серверы",
    links_help: "Муниципальный сервер со своей базой отправляет сюда показатели своих \
        школ по секрету связи. Его организации появятся под выбранной.",
    no_links: "Связей нет.",
    new_secret: "Секрет новой связи (показан один раз) для организации",
    organization: "Организация",
    detail: "Подробность",
    state: "Состояние",
    last_received: "Последние показатели",
    actions: "Действия",
    revoked: "отозвана",
    active: "действует",
    revoke: "Отозвать",
    new_link: "Новая связь",
    create: "Создать секрет связи",
};

static EN: FederationTexts = FederationTexts {
    title: "Exchange with other servers",
    upstream: "Upstream server",
    no_upstream: "No upstream server is set: this server's figures are sent nowhere.",
    address: "Address",
    appears_under: "Figures appear there under",
    sent: "Sent",
    last_push: "Last push",
    last_acknowledged: "Last acknowledged",
    newest_week: "Newest frozen week there",
    last_error: "Last error",
    never: "never",
    push_now: "Send now",
    remove: "Disconnect",
    connect: "Connect an upstream server",
    connect_help: "The upstream server's administrator (regional or federal) gives the \
        address and the link secret. What is sent there is shown before saving.",
    secret: "Link secret",
    allow_http: "Allow plain http (a private network only)",
    check: "Check",
    not_a_secret: "Not a link secret: one looks like 12.0123…",
    upstream_said: "The upstream server did not confirm the link",
    confirm_title: "Confirm the connection",
    will_appear_under: "The figures of all this server's organizations will appear under",
    at: "on the server",
    confirm: "Connect and send",
    cancel: "Cancel",
    counts_sent: "Sent: every organization's figures and, per school and banned \
        messenger, how many PCs have it (no PC names).",
    pcs_sent: "Sent: every organization's figures and, per school and banned \
        messenger, the names of the PCs that have it.",
    counts: "counts only",
    pcs: "counts and PC names",
    links: "Lower servers",
    links_help: "A municipal server with its own database sends its schools' figures \
        here with a link secret. Its organizations appear under the chosen one.",
    no_links: "No links.",
    new_secret: "The new link's secret (shown once) for",
    organization: "Organization",
    detail: "Detail",
    state: "State",
    last_received: "Last figures",
    actions: "Actions",
    revoked: "revoked",
    active: "active",
    revoke: "Revoke",
    new_link: "New link",
    create: "Create a link secret",
};
