//! The audit log for people: each action's name in Russian and English, and the
//! details in the reader's language. The log stores actions as ids (`retire_host`)
//! and details as English text of a fixed shape per action (`host 7 (kab-12)`), which
//! the CLI and old rows share; the page translates the fixed words of each shape and
//! keeps what people or agents typed (names, notes, host names) as it is. A detail of
//! an unknown shape is shown as stored.

use super::i18n::Lang;
use crate::store::Role;

/// An action id as people read it; an unknown id as it is.
pub fn action_name(lang: Lang, action: &str) -> &str {
    let (ru, en) = match action {
        "login" => ("Вход", "Signed in"),
        "login_failed" => ("Неудачный вход", "Failed sign-in"),
        "login_throttled" => ("Вход приостановлен", "Sign-in throttled"),
        "logout" => ("Выход", "Signed out"),
        "add_organization" => ("Организация добавлена", "Organization added"),
        "create_secret" => ("Секрет подключения создан", "Enrollment secret created"),
        "revoke_secret" => ("Секрет подключения отозван", "Enrollment secret revoked"),
        "set_catalog" => ("Каталог изменён", "Catalog changed"),
        "set_catalog_entry" => ("Запись каталога сохранена", "Catalog entry saved"),
        "add_user" => ("Пользователь добавлен", "User added"),
        "disable_user" => ("Пользователь отключён", "User disabled"),
        "set_password" => ("Пароль изменён", "Password changed"),
        "create_api_token" => ("Токен API создан", "API token created"),
        "revoke_api_token" => ("Токен API отозван", "API token revoked"),
        "retire_host" => ("ПК выведен из учёта", "PC retired"),
        "merge_host" => ("ПК объединён с другим", "PC merged"),
        "mark_handled" => ("Нарушение в работе", "Violation being handled"),
        "download_installer" => ("Установщик скачан", "Installer downloaded"),
        "weekly_mail" => (
            "Еженедельный отчёт отправлен вручную",
            "Weekly report sent by hand",
        ),
        "report_recipients" => ("Получатели отчёта изменены", "Report recipients changed"),
        "digest_recipients" => ("Получатели сводки изменены", "Digest recipients changed"),
        "webhook" => ("Webhook изменён", "Webhook changed"),
        "set_upstream" => ("Вышестоящий сервер подключён", "Upstream server set"),
        "remove_upstream" => ("Вышестоящий сервер отключён", "Upstream server removed"),
        "create_link" => ("Связь с нижестоящим сервером создана", "Link created"),
        "revoke_link" => ("Связь с нижестоящим сервером отозвана", "Link revoked"),
        _ => return action,
    };
    match lang {
        Lang::Ru => ru,
        Lang::En => en,
    }
}

/// An action's detail in the reader's language.
pub fn detail(lang: Lang, action: &str, detail: &str) -> String {
    match lang {
        Lang::En => english_detail(action, detail),
        Lang::Ru => russian_detail(action, detail).unwrap_or_else(|| detail.to_string()),
    }
}

/// English details are stored in English; only role ids become role names.
fn english_detail(action: &str, detail: &str) -> String {
    if action == "add_user"
        && let Some((login, role)) = login_and_role(detail)
    {
        return format!("{login} ({})", Lang::En.officer().role(role));
    }
    detail.to_string()
}

/// `login (role_id)`.
fn login_and_role(detail: &str) -> Option<(&str, Role)> {
    let (login, role) = detail.rsplit_once(" (")?;
    Some((login, Role::parse(role.strip_suffix(')')?)?))
}

/// `host 7 (name)` → `ПК 7 (name)`.
fn russian_host(text: &str) -> Option<String> {
    text.strip_prefix("host ").map(|rest| format!("ПК {rest}"))
}

fn russian_detail(action: &str, detail: &str) -> Option<String> {
    match action {
        "create_secret" => {
            let (secret, days) = detail
                .strip_prefix("secret ")?
                .split_once(" (expires in ")?;
            let days = days.strip_suffix(" days)")?;
            Some(format!("секрет {secret} (действует {days} дн.)"))
        }
        "revoke_secret" => Some(format!("секрет {}", detail.strip_prefix("secret ")?)),
        "add_organization" => {
            let (organization, parent) = detail.rsplit_once(" under ")?;
            let (name, kind_and_count) = organization.rsplit_once(" (")?;
            let (kind, count) = kind_and_count.strip_suffix(" PCs)")?.split_once(", ")?;
            let kind = match kind {
                "school" => "школа",
                "municipality" => "муниципалитет",
                "region" => "регион",
                other => other,
            };
            Some(format!(
                "{name} ({kind}, ожидается ПК: {count}) в организации {parent}"
            ))
        }
        "set_catalog" | "set_catalog_entry" => {
            let (revision, evaluated) = detail.strip_prefix("revision ")?.split_once(", ")?;
            let evaluated = evaluated.strip_suffix(" PCs evaluated again")?;
            Some(format!(
                "ревизия {revision}, заново оценено ПК: {evaluated}"
            ))
        }
        "add_user" => {
            let (login, role) = login_and_role(detail)?;
            Some(format!("{login} ({})", Lang::Ru.officer().role(role)))
        }
        "disable_user" | "set_password" => {
            Some(format!("пользователь {}", detail.strip_prefix("user ")?))
        }
        "create_api_token" | "revoke_api_token" => {
            Some(format!("токен {}", detail.strip_prefix("token ")?))
        }
        "retire_host" | "mark_handled" => russian_host(detail),
        "merge_host" => {
            let (host, into) = detail.rsplit_once(" merged into host ")?;
            Some(format!("{} объединён с ПК {into}", russian_host(host)?))
        }
        "login_failed" | "login_throttled" => Some(format!("адрес {detail}")),
        "download_installer" => {
            let (file, organization) = detail.rsplit_once(" for organization ")?;
            let file = match file.split_once(" with settings (secret ") {
                Some((file, secret)) => format!(
                    "{file} с настройками (секрет {}",
                    secret
                        .strip_suffix(')')
                        .map_or(secret.to_string(), |id| format!("{id})"))
                ),
                None => file.to_string(),
            };
            Some(format!("{file} для организации {organization}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_the_collector_writes_has_words_in_both_languages() {
        let written = [
            "login",
            "login_failed",
            "login_throttled",
            "logout",
            "add_organization",
            "create_secret",
            "revoke_secret",
            "set_catalog",
            "set_catalog_entry",
            "add_user",
            "disable_user",
            "set_password",
            "create_api_token",
            "revoke_api_token",
            "retire_host",
            "merge_host",
            "mark_handled",
            "download_installer",
        ];
        for action in written {
            for lang in [Lang::Ru, Lang::En] {
                assert_ne!(action_name(lang, action), action, "{action} in {lang:?}");
            }
        }
        assert_eq!(action_name(Lang::Ru, "something_new"), "something_new");
    }

    #[test]
    fn details_keep_what_people_typed_and_translate_the_rest() {
        let cases = [
            (
                "create_secret",
                "secret 5 (expires in 30 days)",
                "секрет 5 (действует 30 дн.)",
            ),
            (
                "add_organization",
                "Школа (под) 1 (school, 30 PCs) under 2",
                "Школа (под) 1 (школа, ожидается ПК: 30) в организации 2",
            ),
            (
                "set_catalog",
                "revision 4, 12 PCs evaluated again",
                "ревизия 4, заново оценено ПК: 12",
            ),
            (
                "add_user",
                "ivanov (school_admin)",
                "ivanov (администратор школы)",
            ),
            ("disable_user", "user 3", "пользователь 3"),
            ("create_api_token", "token 2 (bi)", "токен 2 (bi)"),
            (
                "merge_host",
                "host 7 (pc (old)) merged into host 9",
                "ПК 7 (pc (old)) объединён с ПК 9",
            ),
            (
                "mark_handled",
                "host 7 (kab-1), telegram: звонили",
                "ПК 7 (kab-1), telegram: звонили",
            ),
            ("retire_host", "an old free text", "an old free text"),
            (
                "download_installer",
                "sverka-agent-0.1.0.msi with settings (secret 4) for organization 2",
                "sverka-agent-0.1.0.msi с настройками (секрет 4) для организации 2",
            ),
        ];
        for (action, stored, russian) in cases {
            assert_eq!(detail(Lang::Ru, action, stored), russian, "{action}");
        }
        assert_eq!(
            detail(Lang::En, "add_user", "ivanov (school_admin)"),
            format!("ivanov ({})", Lang::En.officer().role(Role::SchoolAdmin))
        );
        assert_eq!(detail(Lang::En, "retire_host", "host 7 (x)"), "host 7 (x)");
    }
}
