//! What the isolation part asks: a request as a role's user, the kind of id a route
//! template takes, its concrete paths and the form it posts.

use super::web::{Answer, Session};
use super::world::RoleUser;

/// A request as `user`: pages with its session, the JSON API with its token.
pub fn ask(
    user: &mut RoleUser,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    if path.starts_with("/api/") {
        let token = user.token.clone();
        return user.session.clone_without_cookies().send(
            method,
            path,
            &[("authorization", format!("Bearer {token}"))],
            None,
        );
    }
    if method == "POST" {
        let mut fields = vec![("csrf", user.csrf.as_str())];
        fields.extend_from_slice(form);
        user.session.post_form(path, &fields)
    } else {
        user.session.get(path)
    }
}

impl Session {
    fn clone_without_cookies(&self) -> Session {
        let mut session = self.clone();
        session.cookies.clear();
        session
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Organization,
    Host,
    User,
    Token,
    Secret,
}

pub fn id_kind(path: &str) -> Option<IdKind> {
    if !path.contains("{id}") {
        return None;
    }
    Some(if path.contains("/secrets/{secret}") {
        IdKind::Secret
    } else if path.starts_with("/host/") || path.starts_with("/api/v1/dashboard/hosts/") {
        IdKind::Host
    } else if path.starts_with("/users/") {
        IdKind::User
    } else if path.starts_with("/tokens/") {
        IdKind::Token
    } else {
        IdKind::Organization
    })
}

/// The installer the proof's installers folder holds.
pub const INSTALLER: &str = "sverka-agent-0.1.0.msi";

/// The current reporting week's label (`2026-W49`) for the collector's default clock,
/// which the proof world keeps.
fn current_week_label() -> String {
    let clock = sverka_collector::config::DashboardConfig::default()
        .clock()
        .expect("the collector's default clock");
    clock.week_of(sverka_collector::now()).label
}

/// The concrete paths of a template for one id (every export format and table).
pub fn expand(template: &str, smoke: bool) -> Vec<String> {
    let formats: &[&str] = if smoke { &["csv"] } else { &["csv", "xlsx"] };
    let tables: &[&str] = if template.starts_with("/host/") {
        if smoke {
            &["findings"]
        } else {
            &["findings", "inventory", "timeline"]
        }
    } else if smoke {
        &["violations"]
    } else {
        &["violations", "silent", "clean"]
    };
    // The proof's installers folder holds this one file (see `INSTALLER`).
    let mut paths = vec![template.replace("{file}", INSTALLER)];
    // The weekly API answers for the live week (a past week of this new world was
    // never frozen, and says so with 404 `no_data`).
    if template.ends_with("/weekly") && template.starts_with("/api/") {
        paths = paths
            .iter()
            .map(|path| format!("{path}?week={}", current_week_label()))
            .collect();
    }
    if template.contains("{format}") {
        paths = paths
            .iter()
            .flat_map(|path| {
                formats
                    .iter()
                    .map(move |format| path.replace("{format}", format))
            })
            .collect();
    }
    if template.contains("{table}") {
        paths = paths
            .iter()
            .flat_map(|path| {
                tables
                    .iter()
                    .map(move |table| path.replace("{table}", table))
            })
            .collect();
    }
    paths
}

pub fn form_for(template: &str) -> Vec<(&'static str, &'static str)> {
    match template {
        "/org/{id}/children" => vec![
            ("name", "intruder-org"),
            ("kind", "school"),
            ("expected_pcs", "1"),
        ],
        "/host/{id}/handled" => vec![("app_id", "telegram"), ("note", "intruder")],
        "/org/{id}/secrets" => vec![("days", "1")],
        "/org/{id}/installers/{file}" => vec![("secret", "1.intruder")],
        "/users" => vec![
            ("login", "intruder"),
            ("password", "intruder password 1234"),
            ("role", "administrator"),
            ("organization_id", ""),
        ],
        "/catalog" => vec![("overrides", "")],
        "/catalog/entry" => vec![
            ("id", "intruder-app"),
            ("name", "Intruder"),
            ("status", "banned"),
            ("signature_kind", "packages"),
            ("signature", "intruder"),
        ],
        _ => vec![],
    }
}
