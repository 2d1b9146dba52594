//! Pages that change things: enrollment secrets and install commands, adding
//! organizations, the catalog, users, personal API tokens, and the audit log. Every
//! change is written to the audit log.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::sync::Arc;

use super::audit_words;
use super::auth::{API_TOKEN_PREFIX, CsrfForm, Viewer, check_password_rules, hash_password};
use super::install::install_commands;
use super::pages::{crumbs, layout, load_tree, tree_permitting};
use super::scope::Action;
use super::{WebError, WebState};
use crate::keys;
use crate::store::{NewOrganization, NewSecret, NewUser, Role, StoreError, UserChange};

/// A 422 with a message page in the viewer's language.
pub(crate) fn refused(viewer: &Viewer, message: impl Into<String>) -> WebError {
    WebError::unprocessable(viewer.lang, message)
}

/// Store errors a person can fix become a message page; the rest a 5xx.
pub(crate) fn store_refusal(viewer: &Viewer, error: StoreError) -> WebError {
    match error {
        StoreError::Invalid(message) | StoreError::Rejected(message) => refused(viewer, message),
        StoreError::NotFound(_) => WebError::not_found(viewer),
        other => WebError::Store(other),
    }
}

pub(crate) fn server_url(state: &WebState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("sverka.example");
    let scheme = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn copyable(id: &str, text: &str, lang: crate::web::i18n::Lang) -> Markup {
    let officer = lang.officer();
    html! {
        div.copy {
            pre id=(id) { code { (text) } }
            button.copy-button type="button" data-copy=(id) data-copied=(officer.copied)
                data-manual=(officer.copy_manually) { (officer.copy) }
        }
    }
}

async fn enrollment_body(
    state: &WebState,
    viewer: &Viewer,
    headers: &HeaderMap,
    id: i64,
    new_secret: Option<&str>,
) -> Result<Markup, WebError> {
    let tree = load_tree(state).await?;
    let clock = state.clock_for(&tree, id);
    let texts = viewer.lang.texts();
    let secrets = state.app.store.secrets(id).await?;
    let can_create =
        super::scope::authorize(&viewer.user, Action::CreateSecret, Some(id), &tree).is_ok();
    let can_revoke =
        super::scope::authorize(&viewer.user, Action::RevokeSecret, Some(id), &tree).is_ok();
    let now = crate::now();
    let url = server_url(state, headers);
    let placeholder = match viewer.lang {
        super::i18n::Lang::Ru => "<СЕКРЕТ>",
        super::i18n::Lang::En => "<SECRET>",
    };
    let commands = install_commands(&url, new_secret.unwrap_or(placeholder));
    let installers = super::installers::section(state, viewer, id, new_secret).await;
    Ok(html! {
        @if super::flash::is_loopback_url(&url) {
            p.notice #loopback-warning role="alert" { (viewer.lang.officer().loopback_warning) " (" (url) ")" }
        }
        @if let Some(secret) = new_secret {
            div.notice {
                p { (texts.new_secret_once) }
                (copyable("new-secret", secret, viewer.lang))
            }
        }
        p { a #recent-hosts-link href={ "/org/" (id) "/hosts" } { (texts.recent_enrollments) } }
        h2 { (texts.secrets) }
        @if secrets.is_empty() { p.empty { (texts.nothing) } } @else {
            table.data #secrets {
                thead { tr { th { "id" } th { (texts.created) } th { (texts.expires) } th { (texts.status) } th { span.visually-hidden { (texts.actions) } } } }
                tbody {
                    @for secret in &secrets {
                        tr {
                            td.number { (secret.id) }
                            td { (clock.date_time(secret.created_at)) }
                            td { @if let Some(at) = secret.expires_at { (clock.date_time(at)) } }
                            td {
                                @if let Some(at) = secret.revoked_at { (texts.revoked) " " (clock.date_time(at)) }
                                @else if secret.expires_at.is_some_and(|at| at <= now) { "—" }
                                @else { (texts.valid) }
                            }
                            td {
                                @if can_revoke && secret.revoked_at.is_none() {
                                    form.inline method="post" action={ "/org/" (id) "/secrets/" (secret.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                                        button type="submit" { (texts.revoke) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_create {
            form method="post" action={ "/org/" (id) "/secrets" } {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                label { (texts.expires) " (" "дней / days" ")" input name="days" type="number" min="0" value="30"; }
                button #create-secret type="submit" { (texts.create_secret) }
            }
        }
        (installers)
        h2 { (texts.install_commands) }
        p { (texts.install_hint) }
        @for (index, command) in commands.iter().enumerate() {
            h3 { (command.title) }
            (copyable(&format!("install-{index}"), &command.command, viewer.lang))
        }
    })
}

pub async fn enrollment_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::Read, Some(id)).await?;
    let new_secret = super::flash::new_secret_of(&headers);
    let body = enrollment_body(&state, &viewer, &headers, id, new_secret.as_deref()).await?;
    let name = tree.get(id).map(|o| o.name.clone()).unwrap_or_default();
    let title = format!("{} — {name}", viewer.lang.texts().enrollment);
    let mut response = layout(&viewer, &title, crumbs(&viewer, &tree, id), body).into_response();
    if new_secret.is_some()
        && let Some(clear) = super::flash::clear_new_secret(id, state.secure_cookies)
    {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    days: Option<String>,
}

pub async fn create_secret(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<SecretForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::CreateSecret, Some(id)).await?;
    let days: i64 = form
        .form
        .days
        .as_deref()
        .map(str::trim)
        .filter(|days| !days.is_empty())
        .map_or(Ok(0), str::parse)
        .map_err(|_| refused(&viewer, viewer.lang.texts().bad_form))?;
    let (random, secret_hash) = keys::generate();
    let now = crate::now();
    let info = state
        .app
        .store
        .create_secret(
            NewSecret {
                organization_id: id,
                secret_hash,
                expires_at: (days > 0).then(|| now + days.min(3650) * 86_400),
            },
            now,
        )
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "create_secret",
            Some(id),
            format!("secret {} (expires in {days} days)", info.id),
        )
        .await;
    let secret = keys::token(info.id, &random);
    // Post/redirect/get: the page shows the secret once (see `web::flash`).
    let mut response = Redirect::to(&format!("/org/{id}/enrollment")).into_response();
    if let Some(cookie) = super::flash::new_secret_cookie(id, &secret, state.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

pub async fn revoke_secret(
    State(state): State<Arc<WebState>>,
    Path((id, secret)): Path<(i64, i64)>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::RevokeSecret, Some(id)).await?;
    let belongs = state
        .app
        .store
        .secrets(id)
        .await?
        .iter()
        .any(|info| info.id == secret);
    if !belongs {
        return Err(WebError::not_found(&viewer));
    }
    state
        .app
        .store
        .revoke_secret(secret, crate::now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "revoke_secret",
            Some(id),
            format!("secret {secret}"),
        )
        .await;
    Ok(Redirect::to(&format!("/org/{id}/enrollment")).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct OrganizationForm {
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    expected_pcs: String,
    /// Empty: inherit the parent's time zone.
    #[serde(default)]
    time_zone: String,
}

pub async fn add_organization(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<OrganizationForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageOrganizations, Some(id)).await?;
    let expected_pcs: i64 = match form.form.expected_pcs.trim() {
        "" => 0,
        text => text
            .parse()
            .map_err(|_| refused(&viewer, viewer.lang.texts().bad_form))?,
    };
    let kind = match form.form.kind.as_str() {
        "municipality" => "municipality",
        _ => "school",
    };
    let name = form.form.name.trim().to_string();
    if name.chars().any(char::is_control) || name.len() > 300 {
        return Err(refused(&viewer, viewer.lang.texts().bad_form));
    }
    let created = state
        .app
        .store
        .create_organization(NewOrganization {
            parent_id: Some(id),
            name: name.clone(),
            kind: kind.into(),
            expected_pcs,
            time_zone: Some(form.form.time_zone.clone()),
        })
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "add_organization",
            Some(created.id),
            format!("{name} ({kind}, {expected_pcs} PCs) under {id}"),
        )
        .await;
    Ok(Redirect::to(&format!("/org/{id}")).into_response())
}

// The catalog.

/// A short list of an application's signatures for the catalog table.
fn signature_summary(signatures: &sverka_shared::catalog::Signatures) -> String {
    let groups: [(&str, &[String]); 7] = [
        ("packages", &signatures.packages),
        ("flatpak", &signatures.flatpak),
        ("snap", &signatures.snap),
        ("processes", &signatures.processes),
        ("files", &signatures.files),
        ("appx", &signatures.appx),
        ("web apps", &signatures.web_apps),
    ];
    let mut parts: Vec<String> = groups
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(name, list)| format!("{name}: {}", list.join(", ")))
        .collect();
    if !signatures.uninstall.is_empty() {
        parts.push(format!("uninstall rules: {}", signatures.uninstall.len()));
    }
    parts.join("; ")
}

async fn catalog_body(
    state: &WebState,
    viewer: &Viewer,
    saved: Option<usize>,
) -> Result<Markup, WebError> {
    let texts = viewer.lang.texts();
    let tree = load_tree(state).await?;
    let can_edit = super::scope::authorize(&viewer.user, Action::EditCatalog, None, &tree).is_ok();
    let stored = state.app.store.current_catalog().await?;
    let catalog = state.app.catalog();
    let applications = &catalog.matcher.catalog().apps;
    Ok(html! {
        @if let Some(count) = saved { p.notice #catalog-saved { (texts.catalog_saved) " " (count) } }
        p.subtitle { "revision " (catalog.revision) " · " (catalog.matcher.catalog().version) }
        table.data #catalog {
            thead { tr { th { "id" } th { (texts.name) } th { (texts.status) } th { (texts.signatures) } } }
            tbody {
                @for application in applications {
                    tr {
                        td { code { (application.id) } }
                        td { (application.name) }
                        td { (texts.word(application.status.as_str())) }
                        td.signatures { (signature_summary(&application.signatures)) }
                    }
                }
            }
        }
        @if can_edit {
            h2 { (texts.catalog_entry) }
            p { (texts.catalog_entry_hint) }
            form.catalog-entry #catalog-entry method="post" action="/catalog/entry" {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                label { "id" input name="id" required pattern="[a-z0-9_]{1,64}"; }
                label { (texts.name) input name="name"; }
                label { (texts.status) select name="status" {
                    option value="" { "—" }
                    @for status in super::catalog_entry::STATUSES {
                        option value=(status) { (texts.word(status)) }
                    }
                } }
                label { (texts.signatures) select name="signature_kind" {
                    @for kind in super::catalog_entry::SIGNATURE_KINDS {
                        option value=(kind) { (kind) }
                    }
                } }
                label { (texts.signature) input name="signature"; }
                button #save-catalog-entry type="submit" { (texts.save) }
            }
            h2 { (texts.catalog_overrides) }
            p { (texts.catalog_hint) }
            form method="post" action="/catalog" {
                input type="hidden" name="csrf" value=(viewer.csrf_token);
                textarea #catalog-overrides name="overrides" rows="16" cols="100" spellcheck="false" aria-label=(texts.catalog_overrides) {
                    (stored.map(|stored| stored.overrides).unwrap_or_default())
                }
                button #save-catalog type="submit" { (texts.save) }
            }
        }
    })
}

pub async fn catalog_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let body = catalog_body(&state, &viewer, None).await?;
    Ok(layout(&viewer, viewer.lang.texts().catalog, html! {}, body).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct CatalogForm {
    overrides: String,
}

pub async fn save_catalog(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<CatalogForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::EditCatalog, None).await?;
    let overrides = form.form.overrides.replace("\r\n", "\n");
    store_catalog(&state, &viewer, &overrides, "set_catalog").await
}

#[derive(Debug, serde::Deserialize)]
pub struct CatalogEntryForm {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    signature_kind: String,
    #[serde(default)]
    signature: String,
}

/// The catalog page's small form: one application added or changed in the additions.
pub async fn save_catalog_entry(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<CatalogEntryForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::EditCatalog, None).await?;
    let current = state
        .app
        .store
        .current_catalog()
        .await?
        .map(|stored| stored.overrides)
        .unwrap_or_default();
    let entry = form.form;
    let overrides = super::catalog_entry::apply_entry(
        &current,
        &super::catalog_entry::EntryChange {
            id: entry.id,
            name: entry.name,
            status: entry.status,
            signature_kind: entry.signature_kind,
            signature: entry.signature,
        },
    )
    .map_err(|error| refused(&viewer, error.to_string()))?;
    store_catalog(&state, &viewer, &overrides, "set_catalog_entry").await
}

/// Stores new additions (checked first), re-evaluates every PC, and shows the page.
async fn store_catalog(
    state: &WebState,
    viewer: &Viewer,
    overrides: &str,
    action: &str,
) -> Result<Response, WebError> {
    let viewer = viewer.clone();
    let (revision, evaluated) = crate::catalog::set_catalog(
        state.app.store.as_ref(),
        "the catalog form",
        overrides,
        crate::now(),
    )
    .await
    .map_err(|error| match error {
        crate::catalog::CatalogLoadError::Catalog(error) => refused(&viewer, error.to_string()),
        crate::catalog::CatalogLoadError::Store(error) => WebError::Store(error),
    })?;
    if let Err(error) = state.app.refresh_catalog().await {
        tracing::warn!("cannot reload the catalog: {error}");
    }
    state
        .audit(
            &viewer.user.login,
            action,
            None,
            format!("revision {revision}, {evaluated} PCs evaluated again"),
        )
        .await;
    let body = catalog_body(state, &viewer, Some(evaluated)).await?;
    Ok(layout(&viewer, viewer.lang.texts().catalog, html! {}, body).into_response())
}

// Users.

pub async fn users_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::ManageUsers, None).await?;
    let texts = viewer.lang.texts();
    let users = state.app.store.users().await?;
    let body = html! {
        table.data #users {
            thead { tr { th { (texts.login) } th { (texts.role) } th { (texts.organization) } th { (texts.language) } th { (texts.status) } th { span.visually-hidden { (texts.actions) } } } }
            tbody {
                @for user in &users {
                    tr {
                        td { (user.login) }
                        td { (user.role.as_str()) }
                        td { @if let Some(id) = user.organization_id { (tree.get(id).map(|o| o.name.as_str()).unwrap_or("?")) " (" (id) ")" } }
                        td { (user.language) }
                        td { @if user.disabled_at.is_some() { (texts.disabled) } @else { (texts.valid) } }
                        td {
                            @if user.disabled_at.is_none() && user.id != viewer.user.id {
                                form.inline method="post" action={ "/users/" (user.id) "/disable" } {
                                    input type="hidden" name="csrf" value=(viewer.csrf_token);
                                    button type="submit" { (texts.disable) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (texts.add) }
        form method="post" action="/users" {
            input type="hidden" name="csrf" value=(viewer.csrf_token);
            label { (texts.login) input name="login" required; }
            label { (texts.password) input name="password" type="password" minlength="10" required; }
            label { (texts.role) select name="role" {
                // The least privilege first, and so the default.
                @for role in [Role::SchoolAdmin, Role::Officer, Role::Administrator] {
                    option value=(role.as_str()) { (viewer.lang.officer().role(role)) }
                }
            } }
            label { (texts.organization) select name="organization_id" {
                option value="" { "—" }
                @for id in tree.ids() {
                    @if let Some(organization) = tree.get(id) { option value=(id) { (organization.name) " (" (id) ")" } }
                }
            } }
            button type="submit" { (texts.add) }
        }
    };
    Ok(layout(&viewer, texts.users, html! {}, body).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct UserForm {
    login: String,
    password: String,
    role: String,
    #[serde(default)]
    organization_id: String,
}

pub async fn add_user(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<UserForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageUsers, None).await?;
    let role = Role::parse(&form.form.role)
        .ok_or_else(|| refused(&viewer, viewer.lang.texts().bad_form))?;
    let organization_id = match form.form.organization_id.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| refused(&viewer, viewer.lang.texts().bad_form))?,
        ),
    };
    check_password_rules(&form.form.password).map_err(|message| refused(&viewer, message))?;
    let password = form.form.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| WebError::Internal(format!("hashing a password: {error}")))?
        .map_err(|error| WebError::Internal(error.to_string()))?;
    let user = state
        .app
        .store
        .create_user(
            NewUser {
                login: form.form.login.clone(),
                password_hash,
                role,
                organization_id: if role == Role::Administrator {
                    None
                } else {
                    organization_id
                },
                language: "ru".into(),
            },
            crate::now(),
        )
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "add_user",
            user.organization_id,
            format!("{} ({})", user.login, user.role.as_str()),
        )
        .await;
    Ok(Redirect::to("/users").into_response())
}

pub async fn disable_user(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    tree_permitting(&state, &viewer, Action::ManageUsers, None).await?;
    let change = UserChange {
        disabled: Some(true),
        ..UserChange::default()
    };
    state
        .app
        .store
        .update_user(id, change, crate::now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "disable_user",
            None,
            format!("user {id}"),
        )
        .await;
    Ok(Redirect::to("/users").into_response())
}

pub async fn audit_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let tree = tree_permitting(&state, &viewer, Action::ReadAudit, None).await?;
    let texts = viewer.lang.texts();
    let entries = state.app.store.audit_log(500).await?;
    let body = html! {
        table.data #audit {
            thead { tr { th { (texts.at) } th { (texts.actor) } th { (texts.action) } th { (texts.organization) } th { (texts.details) } } }
            tbody {
                @for entry in &entries {
                    tr {
                        td { (state.clock.date_time(entry.at)) }
                        td { (entry.actor) }
                        td title=(entry.action) { (audit_words::action_name(viewer.lang, &entry.action)) }
                        td {
                            @if let Some(id) = entry.organization_id {
                                @match tree.get(id) {
                                    Some(organization) => { (organization.name) " (" (id) ")" }
                                    None => { (id) }
                                }
                            }
                        }
                        td { (audit_words::detail(viewer.lang, &entry.action, &entry.detail)) }
                    }
                }
            }
        }
    };
    Ok(layout(&viewer, texts.audit, html! {}, body).into_response())
}

// Personal API tokens.

async fn tokens_body(
    state: &WebState,
    viewer: &Viewer,
    new_token: Option<&str>,
) -> Result<Markup, WebError> {
    let texts = viewer.lang.texts();
    let tokens = state.app.store.api_tokens(viewer.user.id).await?;
    Ok(html! {
        @if let Some(token) = new_token {
            div.notice { p { (texts.new_token_once) } (copyable("new-token", token, viewer.lang)) }
        }
        table.data #tokens {
            thead { tr { th { "id" } th { (texts.token_name) } th { (texts.created) } th { (texts.status) } th { span.visually-hidden { (texts.actions) } } } }
            tbody {
                @for token in &tokens {
                    tr {
                        td.number { (token.id) }
                        td { (token.name) }
                        td { (state.clock.date_time(token.created_at)) }
                        td { @if let Some(at) = token.revoked_at { (texts.revoked) " " (state.clock.date_time(at)) } @else { (texts.valid) } }
                        td { @if token.revoked_at.is_none() {
                            form.inline method="post" action={ "/tokens/" (token.id) "/revoke" } {
                                input type="hidden" name="csrf" value=(viewer.csrf_token);
                                button type="submit" { (texts.revoke) }
                            }
                        } }
                    }
                }
            }
        }
        form method="post" action="/tokens" {
            input type="hidden" name="csrf" value=(viewer.csrf_token);
            label { (texts.token_name) input name="name" maxlength="100"; }
            button #create-token type="submit" { (texts.add) }
        }
        p { "GET /api/v1/dashboard/... — Authorization: Bearer " code { (API_TOKEN_PREFIX) "…" } }
    })
}

pub async fn tokens_page(
    State(state): State<Arc<WebState>>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let body = tokens_body(&state, &viewer, None).await?;
    Ok(layout(&viewer, viewer.lang.texts().tokens, html! {}, body).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(state): State<Arc<WebState>>,
    form: CsrfForm<TokenForm>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    let (random, token_hash) = keys::generate();
    let info = state
        .app
        .store
        .create_api_token(viewer.user.id, &form.form.name, &token_hash, crate::now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "create_api_token",
            None,
            format!("token {} ({})", info.id, info.name),
        )
        .await;
    let token = format!("{API_TOKEN_PREFIX}{}", keys::token(info.id, &random));
    let body = tokens_body(&state, &viewer, Some(&token)).await?;
    Ok(layout(&viewer, viewer.lang.texts().tokens, html! {}, body).into_response())
}

pub async fn revoke_token(
    State(state): State<Arc<WebState>>,
    Path(id): Path<i64>,
    form: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let viewer = form.viewer;
    state
        .app
        .store
        .revoke_api_token(viewer.user.id, id, crate::now())
        .await
        .map_err(|error| store_refusal(&viewer, error))?;
    state
        .audit(
            &viewer.user.login,
            "revoke_api_token",
            None,
            format!("token {id}"),
        )
        .await;
    Ok(Redirect::to("/tokens").into_response())
}
