//! Telling a leak: answers read as text and compared with a nonexistent id's with the
//! ids taken out, out-of-scope successes, and names of other organizations' schools,
//! PCs and users in an answer.

use anyhow::Context;
use std::collections::BTreeSet;
use std::io::Cursor;

use super::requests::{IdKind, ask, form_for};
use super::web::Answer;
use super::world::{Role, RoleUser, World, role_name};

/// What an answer says, as text: XLSX cells read back, everything else as is.
pub fn answer_text(answer: &Answer) -> String {
    if answer.content_type.contains("spreadsheetml") || answer.body.starts_with(b"PK\x03\x04") {
        use calamine::Reader;
        let mut text = String::new();
        if let Ok(mut workbook) = calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(
            Cursor::new(answer.body.clone()),
        ) {
            for name in workbook.sheet_names() {
                if let Ok(range) = workbook.worksheet_range(&name) {
                    for row in range.rows() {
                        for cell in row {
                            text.push_str(&cell.to_string());
                            text.push('\t');
                        }
                        text.push('\n');
                    }
                }
            }
        }
        return text;
    }
    answer.text()
}

/// An answer with what makes two requests' answers differ only by their own id
/// taken out: the requested path, and both compared ids wherever they stand alone
/// (both in both answers, so that an incidental `8` in `utf-8` is treated alike).
fn normalized(answer: &Answer, path: &str, ids: [i64; 2]) -> (u16, String, String) {
    let clean = |text: &str| {
        let text = text.replace(path, "{path}");
        let text = replace_number(&text, ids[0]);
        replace_number(&text, ids[1])
    };
    (
        answer.status,
        clean(&answer.location),
        clean(&answer_text(answer)),
    )
}

/// `text` with the number `id` (not part of a longer number) replaced by `{id}`.
fn replace_number(text: &str, id: i64) -> String {
    let needle = id.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find(&needle) {
        let start = at + found;
        let end = start + needle.len();
        let before = start > 0 && bytes[start - 1].is_ascii_digit();
        let after = end < bytes.len() && bytes[end].is_ascii_digit();
        out.push_str(&text[at..start]);
        out.push_str(if before || after { &needle } else { "{id}" });
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[derive(Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub in_scope_ok: u64,
    pub in_scope_asked: u64,
    pub leaks: Vec<String>,
    /// Every name some role must not see ...
    pub guarded: BTreeSet<String>,
    /// ... and those of them the administrator did see: the marker check can see them.
    pub seen_by_administrator: BTreeSet<String>,
}

impl Tally {
    pub fn leak(&mut self, text: String) {
        if self.leaks.len() < 40 {
            eprintln!("isolation: LEAK {text}");
        }
        self.leaks.push(text);
    }
}

fn is_success(status: u16) -> bool {
    (200..400).contains(&status)
}

fn check_markers(
    user: &RoleUser,
    path: &str,
    answer: &Answer,
    markers: &[String],
    tally: &mut Tally,
) {
    if !(200..300).contains(&answer.status) {
        return;
    }
    let text = answer_text(answer);
    if user.role == Role::Administrator {
        let seen: Vec<String> = tally
            .guarded
            .iter()
            .filter(|marker| text.contains(marker.as_str()))
            .cloned()
            .collect();
        tally.seen_by_administrator.extend(seen);
    }
    for marker in markers {
        if text.contains(marker.as_str()) {
            tally.leak(format!("{} saw {marker:?} on {path}", role_name(user.role)));
        }
    }
}

pub fn check_idless(
    _world: &World,
    user: &mut RoleUser,
    method: &str,
    template: &str,
    markers: &[String],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    match (method, template) {
        // Signing in and out and the language concern only the session itself;
        // agent routes are checked with a person's credentials at the end.
        ("POST", "/login" | "/logout" | "/language" | "/tokens")
        | (_, "/api/v1/enroll" | "/api/v1/reports") => return Ok(()),
        ("POST", _) => {
            // Forms only some roles may send: the others must be refused.
            let allowed = matches!(
                (template, user.role),
                (_, Role::Administrator) | ("/catalog" | "/catalog/entry", Role::OfficerA)
            );
            if allowed {
                return Ok(());
            }
            let answer = ask(user, method, template, &form_for(template))?;
            tally.requests += 1;
            if is_success(answer.status) {
                tally.leak(format!(
                    "{} was allowed POST {template}: {}",
                    role_name(user.role),
                    answer.status
                ));
            }
        }
        _ => {
            let answer = ask(user, method, template, &[])?;
            tally.requests += 1;
            check_markers(user, template, &answer, markers, tally);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn check_ids(
    world: &World,
    user: &mut RoleUser,
    method: &str,
    concrete: &str,
    template: &str,
    kind: IdKind,
    ids: &[i64],
    markers: &[String],
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let home = user
        .home
        .unwrap_or_else(|| *world.organizations.keys().next().unwrap_or(&1));
    // Whether an id exists, and whether it is in the user's scope.
    let (scope_home, role, user_id) = (user.home, user.role, user.user_id);
    let classify = |id: i64| -> (bool, bool) {
        match kind {
            IdKind::Organization => (
                world.organizations.contains_key(&id),
                world.org_in_scope(scope_home, id),
            ),
            IdKind::Host => match world.hosts.get(&id) {
                Some((_, organization)) => (true, world.org_in_scope(scope_home, *organization)),
                None => (false, false),
            },
            IdKind::Secret => match world.secrets.get(&id) {
                Some(organization) => (true, world.org_in_scope(scope_home, *organization)),
                None => (false, false),
            },
            IdKind::User => (world.users.contains_key(&id), role == Role::Administrator),
            IdKind::Token => match world.tokens.get(&id) {
                Some(owner) => (true, *owner == user_id || role == Role::Administrator),
                None => (false, false),
            },
        }
    };
    let path_of = |id: i64| -> String {
        if kind == IdKind::Secret {
            concrete
                .replace("{id}", &home.to_string())
                .replace("{secret}", &id.to_string())
        } else {
            concrete.replace("{id}", &id.to_string())
        }
    };
    let form = form_for(template);
    let nonexistent = *ids.last().context("no ids")?;
    let reference_path = path_of(nonexistent);
    let reference_answer = ask(user, method, &reference_path, &form)?;
    tally.requests += 1;
    let reference_status = reference_answer.status;
    if is_success(reference_status) && method == "POST" || (200..300).contains(&reference_status) {
        tally.leak(format!(
            "{} got {} for a nonexistent id on {reference_path}",
            role_name(user.role),
            reference_status
        ));
    }
    for &id in ids {
        let (exists, in_scope) = classify(id);
        if method == "POST" && in_scope {
            // Forms in scope would change the world; they are the dashboard tests'.
            continue;
        }
        let path = path_of(id);
        let answer = ask(user, method, &path, &form)?;
        tally.requests += 1;
        if in_scope {
            // A school page is only for schools; every other read must answer.
            let is_school = world
                .organizations
                .get(&id)
                .is_some_and(|(name, _)| name.starts_with("school-"));
            if method == "GET" && (is_school || !template.starts_with("/school/")) {
                tally.in_scope_asked += 1;
                if answer.status == 200 {
                    tally.in_scope_ok += 1;
                } else {
                    eprintln!(
                        "isolation: {} got {} for in-scope {path}",
                        role_name(user.role),
                        answer.status
                    );
                }
            }
            check_markers(user, &path, &answer, markers, tally);
            continue;
        }
        let what = if exists {
            "out-of-scope"
        } else {
            "nonexistent"
        };
        if exists
            && ((200..300).contains(&answer.status)
                || method == "POST" && is_success(answer.status))
        {
            tally.leak(format!(
                "{} got {} for {what} {method} {path}",
                role_name(user.role),
                answer.status
            ));
            continue;
        }
        let reference = normalized(&reference_answer, &reference_path, [id, nonexistent]);
        if normalized(&answer, &path, [id, nonexistent]) != reference {
            if tally.leaks.is_empty() {
                // The first difference, whole, for whoever reads the leak list.
                let _ = std::fs::write(
                    std::env::temp_dir().join("sverka-isolation-first-difference.txt"),
                    format!(
                        "{path}:\n{:?}\n\n{reference_path}:\n{:?}\n",
                        normalized(&answer, &path, [id, nonexistent]),
                        reference
                    ),
                );
            }
            tally.leak(format!(
                "{} told {what} {method} {path} ({}) from a nonexistent id ({})",
                role_name(user.role),
                answer.status,
                reference.0
            ));
        }
        check_markers(user, &path, &answer, markers, tally);
    }
    Ok(())
}
