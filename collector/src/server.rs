//! The HTTP server: [`router`], every route the collector serves (the agent API and the
//! dashboard) in one place, and [`serve`], which builds the state, listens (plain or
//! TLS), starts the background jobs of [`crate::jobs`] and serves until a signal.

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{get, post};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api;
use crate::api_docs;
use crate::app::AppState;
use crate::catalog::CatalogState;
use crate::config::Config;
use crate::jobs;
use crate::store::Store;
use crate::web::{self, WebState, admin, host_lifecycle, json, pages, weekly};

/// Every route: the agent API (JSON errors, and the fallback for unknown paths) and
/// the dashboard (pages, exports, its JSON API; security headers on every answer).
/// The proof suite's isolation part reads this function's source for the route list.
pub fn router(state: Arc<WebState>) -> Router {
    let body_limit = state.app.connections.body();
    agent_api(state.app.clone())
        .merge(dashboard(state))
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::connections::body_deadline(body_limit, request, next)
        }))
}

/// The agent API's routes with their OpenAPI operations: the one list both the
/// server and [`crate::api_docs::agent_api`] read.
pub(crate) fn agent_api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(api_docs::AgentApiInfo::openapi())
        .routes(routes!(api::enrollment::enroll))
        .routes(routes!(api::reports::receive_report))
        .routes(routes!(api::catalog))
        .routes(routes!(api::federation::describe_link))
        .routes(routes!(api::federation::receive_figures))
        .routes(routes!(api::health))
}

fn agent_api(state: Arc<AppState>) -> Router {
    let (routes, document) = with_document(agent_api_routes());
    routes
        .route(api_docs::AGENT_API_DOCUMENT_PATH, get(document))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(api::error::json_errors))
        .with_state(state)
}

/// An API's routes, and the handler that answers with its OpenAPI document (made
/// once; each answer shares its bytes). The caller routes it, so the route stays
/// visible in the router.
fn with_document<S>(
    routes: OpenApiRouter<S>,
) -> (
    Router<S>,
    impl Fn() -> std::future::Ready<axum::response::Response> + Clone + Send + Sync + 'static,
)
where
    S: Clone + Send + Sync + 'static,
{
    use axum::response::IntoResponse;
    let (routes, document) = routes.split_for_parts();
    let document = axum::body::Bytes::from(api_docs::to_json(&document));
    let answer = move || {
        let content_type = [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )];
        std::future::ready((content_type, document.clone()).into_response())
    };
    (routes, answer)
}

fn dashboard(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(pages::overview::home))
        .route(
            "/login",
            get(pages::sign_in::login_page).post(pages::sign_in::login_submit),
        )
        .route("/logout", post(pages::sign_in::logout))
        .route("/language", post(pages::sign_in::switch_language))
        .route("/org/{id}", get(pages::overview::overview))
        .route(
            "/org/{id}/export/{format}",
            get(pages::overview::overview_export),
        )
        .route("/org/{id}/children", post(admin::add_organization))
        .route("/school/{id}", get(pages::school::school))
        .route(
            "/school/{id}/export/{table}/{format}",
            get(pages::school::school_export),
        )
        .route("/host/{id}", get(pages::host::host))
        .route(
            "/host/{id}/export/{table}/{format}",
            get(pages::host::host_export),
        )
        .route("/host/{id}/handled", post(pages::host::mark_handled))
        .route("/host/{id}/retire", post(host_lifecycle::retire_host))
        .route("/host/{id}/merge", post(host_lifecycle::merge_host))
        .route("/org/{id}/hosts", get(host_lifecycle::recent_hosts_page))
        .route("/org/{id}/weekly", get(weekly::weekly_page))
        .route(
            "/org/{id}/weekly/pcs",
            get(web::weekly_pcs::frozen_pcs_page),
        )
        .route(
            "/org/{id}/weekly/print",
            get(web::weekly_print::weekly_print),
        )
        .route("/org/{id}/worklist", get(pages::worklist::worklist_page))
        .route(
            "/org/{id}/worklist/handled",
            post(pages::worklist::mark_handled_many),
        )
        .route(
            "/org/{id}/worklist/export/{format}",
            get(pages::worklist::worklist_export),
        )
        .route("/org/{id}/weekly/send", post(web::weekly_mail::send_now))
        .route(
            "/org/{id}/notifications",
            get(web::notifications::notifications_page),
        )
        .route(
            "/org/{id}/notifications/digest",
            post(web::notifications::set_digest_recipients),
        )
        .route(
            "/org/{id}/notifications/webhook",
            post(web::notifications::set_webhook),
        )
        .route(
            "/org/{id}/weekly/recipients",
            post(web::weekly_mail::set_recipients),
        )
        .route(
            "/org/{id}/weekly/export/{format}",
            get(weekly::weekly_export),
        )
        .route("/org/{id}/enrollment", get(admin::enrollment_page))
        .route(
            "/org/{id}/installers/{file}",
            get(web::installers::download_installer)
                .post(web::installers::download_msi_with_settings),
        )
        .route("/org/{id}/secrets", post(admin::create_secret))
        .route(
            "/org/{id}/secrets/{secret}/revoke",
            post(admin::revoke_secret),
        )
        .route(
            "/catalog",
            get(admin::catalog_page).post(admin::save_catalog),
        )
        .route("/catalog/entry", post(admin::save_catalog_entry))
        .route("/users", get(admin::users_page).post(admin::add_user))
        .route("/users/{id}/disable", post(admin::disable_user))
        .route("/audit", get(admin::audit_page))
        .route(
            web::federation::FEDERATION_PAGE_PATH,
            get(web::federation::federation_page),
        )
        .route(
            "/federation/upstream/check",
            post(web::federation::check_upstream),
        )
        .route("/federation/upstream", post(web::federation::set_upstream))
        .route("/federation/upstream/push", post(web::federation::push_now))
        .route(
            "/federation/upstream/remove",
            post(web::federation::remove_upstream),
        )
        .route("/federation/links", post(web::federation::create_link))
        .route(
            "/federation/links/revoke",
            post(web::federation::revoke_link),
        )
        .route("/tokens", get(admin::tokens_page).post(admin::create_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/static/app.css", get(web::app_css))
        .route("/static/app.js", get(web::app_js))
        .merge(dashboard_json_api())
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(state)
}

/// The dashboard API's routes with their OpenAPI operations: the one list both the
/// server and [`crate::api_docs::dashboard_api`] read.
pub(crate) fn dashboard_api_routes() -> OpenApiRouter<Arc<WebState>> {
    OpenApiRouter::with_openapi(api_docs::DashboardApiInfo::openapi())
        .routes(routes!(json::organizations))
        .routes(routes!(json::overview))
        .routes(routes!(json::violations))
        .routes(routes!(json::silent))
        .routes(routes!(json::weekly))
        .routes(routes!(json::host))
}

/// The dashboard's JSON API: every error in the agent API's JSON shape.
fn dashboard_json_api() -> Router<Arc<WebState>> {
    let (routes, document) = with_document(dashboard_api_routes());
    routes
        .route(api_docs::DASHBOARD_API_DOCUMENT_PATH, get(document))
        .route_layer(axum::middleware::from_fn(api::error::json_errors))
}

/// `sverka-collector serve`: answers agents and people on `config.listen` until
/// SIGTERM or Ctrl-C, with the background jobs running beside it.
pub async fn serve(config: Config, store: Arc<dyn Store>) -> Result<()> {
    let catalog = CatalogState::load(store.as_ref()).await?;
    let state = Arc::new(
        AppState::new(store, catalog, config.limits.clone(), config.rate_limit)
            .with_enrollment(config.enrollment)
            .with_connection_limits(config.connections),
    );
    let mailer = crate::mail::Mailer::from_config(&config.mail)?;
    config
        .notifications
        .digest_minutes()
        .map_err(|error| anyhow::anyhow!("[notifications] {error}"))?;
    let web_state = Arc::new(
        WebState::new(state.clone(), &config)
            .context("the [dashboard] settings")?
            .with_mailer(mailer.clone()),
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

    tokio::spawn(jobs::catch_up_reevaluation(state.clone()));
    tokio::spawn(jobs::poll_catalog(
        state.clone(),
        Duration::from_secs(config.catalog_poll_seconds.max(1)),
    ));
    tokio::spawn(jobs::prune_reports(
        state.store.clone(),
        i64::from(config.report_retention_days.max(1)) * 86_400,
    ));
    tokio::spawn(jobs::freeze_weeks(
        state.store.clone(),
        web_state.clock.clone(),
        config.silent_after_days,
    ));

    tokio::spawn(crate::upstream::push_job(
        state.store.clone(),
        web_state.clock.clone(),
        config.silent_after_days,
        config.upstream.clone(),
    ));

    let notifications = config.notifications.clone();
    match mailer {
        Some(mailer) => {
            tracing::info!(server = %mailer.describe, "weekly reports and daily digests are sent by mail");
            tokio::spawn(jobs::send_weekly_reports(web_state.clone(), mailer.clone()));
            tokio::spawn(jobs::send_daily_digests(
                web_state.clone(),
                mailer,
                notifications.clone(),
            ));
        }
        None => tracing::info!(
            "no [mail] server: weekly reports and daily digests are not sent by mail"
        ),
    }
    let webhooks = crate::notify::webhook::WebhookClient::new(Duration::from_secs(
        notifications.webhook_timeout_seconds.max(1),
    ))
    .map_err(|error| anyhow::anyhow!(error))?;
    tokio::spawn(jobs::call_webhooks(
        web_state.clone(),
        webhooks,
        notifications,
    ));

    let limits = config.connections;
    crate::connections::serve(listener, tls, router(web_state), limits, shutdown_signal())
        .await
        .context("serving")?;
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
