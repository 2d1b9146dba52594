//! The daily digest by e-mail, in Russian: what is new in an organization since the
//! last digest (banned messengers found, banned messengers gone, PCs gone silent),
//! each PC on a line, with a link to the organization's list of violations.

use super::Tried;
use crate::mail::{Mailer, parse_recipients};
use crate::store::{Changes, Notification};
use crate::web::WebState;
use crate::web::clock::Clock;
use crate::web::scope::OrganizationTree;

/// Lines per section; the rest is counted ("… и ещё 12").
pub const LINES_PER_SECTION: usize = 200;

/// A digest ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMessage {
    pub subject: String,
    pub body: String,
}

/// The digest of `changes` in `organization` for `[from, until)`, in `clock`'s zone.
pub fn digest_message(
    organization: &str,
    changes: &Changes,
    (from, until): (i64, i64),
    clock: &Clock,
    silent_after_days: u32,
    link: Option<String>,
) -> DigestMessage {
    let subject = format!(
        "Sverka: новое в «{organization}» — нарушений: {}, устранено: {}, перестали отвечать: {}",
        changes.new_violations.len(),
        changes.resolved_violations.len(),
        changes.silent_pcs.len()
    );
    let mut body = format!(
        "Сводка Sverka для «{organization}» с {} по {}.\n",
        clock.date_time(from),
        clock.date_time(until)
    );
    let place = |pc: &str, where_: &str| {
        if where_ == organization {
            pc.to_string()
        } else {
            format!("{pc} ({where_})")
        }
    };
    let mut section = |title: String, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        body.push_str(&format!("\n{title} ({}):\n", lines.len()));
        for line in lines.iter().take(LINES_PER_SECTION) {
            body.push_str(&format!("- {line}\n"));
        }
        if lines.len() > LINES_PER_SECTION {
            body.push_str(&format!("… и ещё {}\n", lines.len() - LINES_PER_SECTION));
        }
    };
    section(
        "Найдены запрещённые мессенджеры".into(),
        changes
            .new_violations
            .iter()
            .map(|change| {
                let users = if change.users.is_empty() {
                    String::new()
                } else {
                    format!("; пользователи: {}", change.users.join(", "))
                };
                format!(
                    "{}: {}{users}; найден {}",
                    place(&change.pc, &change.organization),
                    change.application,
                    clock.date_time(change.at)
                )
            })
            .collect(),
    );
    section(
        "Устранены".into(),
        changes
            .resolved_violations
            .iter()
            .map(|change| {
                format!(
                    "{}: {} больше не найден ({})",
                    place(&change.pc, &change.organization),
                    change.application,
                    clock.date_time(change.at)
                )
            })
            .collect(),
    );
    section(
        format!("Перестали отчитываться (нет отчётов дольше {silent_after_days} дн.)"),
        changes
            .silent_pcs
            .iter()
            .map(|pc| {
                format!(
                    "{}: последний отчёт {}",
                    place(&pc.pc, &pc.organization),
                    clock.date_time(pc.last_report_at)
                )
            })
            .collect(),
    );
    if let Some(link) = link {
        body.push_str(&format!("\nСписок нарушений: {link}\n"));
    }
    body.push_str(
        "\nПисьмо отправлено Sverka автоматически, когда появилось новое; отвечать на него не нужно.\n",
    );
    DigestMessage { subject, body }
}

/// Sends a captured digest to the recipients it was captured for. A failure to send
/// may pass; recipients that no longer parse cannot.
pub async fn deliver(
    state: &WebState,
    mailer: &Mailer,
    tree: &OrganizationTree,
    notification: &Notification,
) -> Tried {
    let to = match parse_recipients(&notification.destination) {
        Ok(to) if !to.is_empty() => to,
        Ok(_) => return Tried::hopeless("no recipients"),
        Err(error) => return Tried::hopeless(error),
    };
    let id = notification.organization_id;
    let name = tree
        .get(id)
        .map(|organization| organization.name.clone())
        .unwrap_or_else(|| format!("организация {id}"));
    let link = state
        .public_url
        .as_ref()
        .map(|url| format!("{}/org/{id}/worklist", url.trim_end_matches('/')));
    let message = digest_message(
        &name,
        &super::changes_of(notification),
        (notification.covered_from, notification.covered_until),
        &state.clock_for(tree, id),
        state.silent_after_days,
        link,
    );
    match mailer
        .send(&to, &message.subject, &message.body, None)
        .await
    {
        Ok(()) => Tried::Sent,
        Err(error) => Tried::may_pass(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SilentChange, ViolationChange};

    fn change(pc: &str, organization: &str, application: &str, users: &[&str]) -> ViolationChange {
        ViolationChange {
            host_id: 1,
            pc: pc.into(),
            organization_id: 2,
            organization: organization.into(),
            app_id: application.to_lowercase(),
            application: application.into(),
            users: users.iter().map(|user| user.to_string()).collect(),
            at: 1_796_000_000,
        }
    }

    #[test]
    fn the_digest_names_each_pc_and_what_changed() {
        let clock = Clock::new("Europe/Moscow", "thursday").unwrap();
        let changes = Changes {
            new_violations: vec![
                change("PC-01", "Школа 12", "Telegram", &["ivanov"]),
                change("PC-07", "Школа 5", "WhatsApp", &[]),
            ],
            resolved_violations: vec![change("PC-02", "Школа 12", "Viber", &[])],
            silent_pcs: vec![SilentChange {
                host_id: 3,
                pc: "PC-03".into(),
                organization_id: 2,
                organization: "Школа 12".into(),
                last_report_at: 1_795_000_000,
            }],
        };
        let message = digest_message(
            "Школа 12",
            &changes,
            (1_795_900_000, 1_796_000_000),
            &clock,
            7,
            Some("https://sverka.example/org/2/worklist".into()),
        );
        assert_eq!(
            message.subject,
            "Sverka: новое в «Школа 12» — нарушений: 2, устранено: 1, перестали отвечать: 1"
        );
        let body = &message.body;
        assert!(
            body.contains("Найдены запрещённые мессенджеры (2):\n"),
            "{body}"
        );
        assert!(
            body.contains("- PC-01: Telegram; пользователи: ivanov; найден "),
            "{body}"
        );
        assert!(
            body.contains("- PC-07 (Школа 5): WhatsApp; найден "),
            "{body}"
        );
        assert!(
            body.contains("Устранены (1):\n- PC-02: Viber больше не найден"),
            "{body}"
        );
        assert!(
            body.contains(
                "Перестали отчитываться (нет отчётов дольше 7 дн.) (1):\n- PC-03: последний отчёт "
            ),
            "{body}"
        );
        assert!(body.contains("Список нарушений: https://sverka.example/org/2/worklist"));
    }

    #[test]
    fn a_long_section_is_cut_and_counted() {
        let clock = Clock::new("Europe/Moscow", "thursday").unwrap();
        let changes = Changes {
            new_violations: (0..LINES_PER_SECTION + 12)
                .map(|n| change(&format!("PC-{n:03}"), "Школа", "Telegram", &[]))
                .collect(),
            ..Changes::default()
        };
        let message = digest_message("Школа", &changes, (0, 1), &clock, 7, None);
        assert_eq!(message.body.matches("\n- PC-").count(), LINES_PER_SECTION);
        assert!(message.body.contains("… и ещё 12\n"));
        assert!(!message.body.contains("Устранены"));
        assert!(!message.body.contains("Список нарушений"));
    }
}
