//! The officer's words (issue 19) in Russian and English, kept apart from
//! [`super::i18n::Texts`]: figure definitions, "directly under", the weekly report's
//! states and the worklist. One struct per language, so a missing translation is a
//! compile error.

use super::i18n::Lang;

#[derive(Debug)]
pub struct OfficerTexts {
    pub silent_with_banned: &'static str,
    /// What each figure means, shown under the overview and weekly tables.
    pub definitions: &'static str,
    pub directly_under: &'static str,
    /// A federated organization: its figures come from its own collector, as of ...
    pub federated_as_of: &'static str,
    /// ... and none arrived this week: shown with the last ones, never as zero.
    pub federated_late: &'static str,
    /// ... or its own collector stopped sending it (deleted there) on ...
    pub federated_gone: &'static str,
    /// The school page of a federated organization: its PCs are on its own collector.
    pub federated_violations: &'static str,
    /// The worklist's section of schools that report through their own collector.
    pub federated_violations_below: &'static str,
    pub federated_school_text: &'static str,
    pub pcs: &'static str,
    pub pc_names: &'static str,
    pub silent_since: &'static str,
    pub days_ago: &'static str,
    pub today: &'static str,
    pub no_data: &'static str,
    pub no_data_text: &'static str,
    pub as_of: &'static str,
    pub live_week: &'static str,
    pub frozen_week: &'static str,
    pub change_reporting: &'static str,
    pub banned_share: &'static str,
    pub with_approved: &'static str,
    pub worklist: &'static str,
    pub search_placeholder: &'static str,
    pub school: &'static str,
    pub any: &'static str,
    pub new_this_week: &'static str,
    pub resolved_this_week: &'static str,
    pub only_silent: &'static str,
    pub handled_state: &'static str,
    pub handled_yes: &'static str,
    pub handled_no: &'static str,
    pub apply: &'static str,
    pub mark_selected: &'static str,
    pub select: &'static str,
    pub ranking: &'static str,
    pub state: &'static str,
    pub open: &'static str,
    pub resolved: &'static str,
    pub shown_of: &'static str,
    pub cutoff: &'static str,
    pub weeks: &'static str,
    pub printable: &'static str,
    pub data_table: &'static str,
    pub silent_banner: &'static str,
    pub technical_evidence: &'static str,
    pub approved_apps: &'static str,
    pub main_menu: &'static str,
    pub breadcrumbs: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub copy_manually: &'static str,
    pub roles: [&'static str; 3],
    pub loopback_warning: &'static str,
    pub installers: &'static str,
    pub no_installers: &'static str,
    pub installers_hint: &'static str,
    pub msi_with_settings: &'static str,
}

impl OfficerTexts {
    /// A role's name for people.
    pub fn role(&self, role: crate::store::Role) -> &'static str {
        match role {
            crate::store::Role::Administrator => self.roles[0],
            crate::store::Role::Officer => self.roles[1],
            crate::store::Role::SchoolAdmin => self.roles[2],
        }
    }
}

impl Lang {
    pub fn officer(self) -> &'static OfficerTexts {
        match self {
            Lang::Ru => &RU,
            Lang::En => &EN,
        }
    }

    /// A percentage in this language's number format: `12,5 %` / `12.5%`.
    pub fn percent(self, value: f64) -> String {
        match self {
            Lang::Ru => format!("{value:.1}\u{a0}%").replace('.', ","),
            Lang::En => format!("{value:.1}%"),
        }
    }
}

static RU: OfficerTexts = OfficerTexts {
    silent_with_banned: "Из них молчат",
    definitions: "Состояние ПК — его последний отчёт, каким бы давним он ни был. \
        «С запрещёнными мессенджерами» — ПК, в последнем отчёте которых есть запрещённый \
        мессенджер, включая молчащие («из них молчат»). «Отчитались за неделю» — ПК, \
        приславшие отчёт с начала недели. «Молчат» — ПК без отчёта за последние дни \
        (или ни разу). Доли считаются от ПК, приславших хотя бы один отчёт. Выключение \
        ПК не улучшает показатели.",
    directly_under: "Напрямую в",
    federated_as_of: "данные своего сервера от",
    federated_late: "опаздывает: за эту неделю данных нет, показаны последние",
    federated_gone: "удалена на своём сервере",
    federated_violations: "Запрещённые мессенджеры по данным её сервера",
    federated_violations_below: "Школы со своим сервером: запрещённые мессенджеры по их данным",
    federated_school_text: "ПК этой организации подключены к её собственному серверу; \
        здесь — то, что он прислал.",
    pcs: "ПК",
    pc_names: "Имена ПК",
    silent_since: "молчит, последний отчёт",
    days_ago: "дн. назад",
    today: "сегодня",
    no_data: "Нет данных",
    no_data_text: "За эту неделю данных нет: ПК организации ещё не присылали отчётов.",
    as_of: "по состоянию на",
    live_week: "текущая неделя, данные меняются",
    frozen_week: "неделя закрыта, цифры зафиксированы",
    change_reporting: "Изменение «отчитались»",
    banned_share: "С запрещёнными, %",
    with_approved: "С разрешённым мессенджером",
    worklist: "Список нарушений",
    search_placeholder: "ПК, пользователь или приложение",
    school: "Школа",
    any: "все",
    new_this_week: "новые за неделю",
    resolved_this_week: "устранённые за неделю",
    only_silent: "только молчащие ПК",
    handled_state: "Отметка «в работе»",
    handled_yes: "есть",
    handled_no: "нет",
    apply: "Показать",
    mark_selected: "Отметить выбранные: в работе",
    select: "Выбрать",
    ranking: "Школы по числу ПК с нарушениями",
    state: "Состояние",
    open: "не устранено",
    resolved: "устранено",
    shown_of: "показано",
    cutoff: "Отчёт сдаётся",
    weeks: "Недели",
    printable: "Версия для печати",
    data_table: "таблица",
    silent_banner: "Ниже — его состояние по последнему отчёту; нарушения остаются в отчётах, пока ПК не пришлёт новый",
    technical_evidence: "Технические подробности",
    approved_apps: "Разрешённые мессенджеры",
    main_menu: "Главное меню",
    breadcrumbs: "Путь к странице",
    copy: "Копировать",
    copied: "Скопировано",
    copy_manually: "Текст выделен: нажмите Ctrl+C",
    roles: [
        "администратор",
        "специалист управления образования",
        "администратор школы",
    ],
    loopback_warning: "Команды ниже указывают на адрес этого компьютера (loopback): с других ПК он недоступен. Откройте панель по сетевому адресу сервера или задайте public_url в настройках",
    installers: "Установщики агента",
    no_installers: "В папке установщиков нет файлов агента (sverka-agent*.msi, .deb, .rpm).",
    installers_hint: "MSI с настройками содержит адрес сервера и секрет этой школы: храните его как сам секрет. Подпись MSI при записи настроек снимается.",
    msi_with_settings: "MSI с настройками этой школы",
};

static EN: OfficerTexts = OfficerTexts {
    silent_with_banned: "Of them silent",
    definitions: "A PC's state is its last report, however old. \"With banned \
        messengers\" counts PCs whose last report has a banned messenger, silent ones \
        included (\"of them silent\"). \"Reported this week\" counts PCs that reported \
        since the week began. \"Silent\" counts PCs without a report for the last days \
        (or ever). Shares are of the PCs that reported at least once. Switching PCs off \
        never improves the figures.",
    directly_under: "Directly under",
    federated_as_of: "figures from its own collector of",
    federated_late: "late: no figures this week, the last ones are shown",
    federated_gone: "removed on its own server on",
    federated_violations: "Banned messengers as its own collector reports them",
    federated_violations_below: "Schools with their own server: banned messengers as they report them",
    federated_school_text: "This organization's PCs report to its own collector; \
        this is what that collector sent.",
    pcs: "PCs",
    pc_names: "PC names",
    silent_since: "silent, last report",
    days_ago: "days ago",
    today: "today",
    no_data: "No data",
    no_data_text: "There is no data for this week: the organization's PCs had not reported yet.",
    as_of: "as of",
    live_week: "current week, figures still change",
    frozen_week: "week closed, figures frozen",
    change_reporting: "Change in reported",
    banned_share: "With banned, %",
    with_approved: "With an approved messenger",
    worklist: "Violations list",
    search_placeholder: "PC, user or application",
    school: "School",
    any: "all",
    new_this_week: "new this week",
    resolved_this_week: "resolved this week",
    only_silent: "silent PCs only",
    handled_state: "Being handled",
    handled_yes: "yes",
    handled_no: "no",
    apply: "Show",
    mark_selected: "Mark selected as being handled",
    select: "Select",
    ranking: "Schools by PCs with violations",
    state: "State",
    open: "open",
    resolved: "resolved",
    shown_of: "shown",
    cutoff: "Report due",
    weeks: "Weeks",
    printable: "Printable version",
    data_table: "table",
    silent_banner: "What follows is its state as of its last report; its violations stay in the figures until it reports again",
    technical_evidence: "Technical details",
    approved_apps: "Approved messengers",
    main_menu: "Main menu",
    breadcrumbs: "Breadcrumbs",
    copy: "Copy",
    copied: "Copied",
    copy_manually: "Text selected: press Ctrl+C",
    roles: ["administrator", "education officer", "school admin"],
    loopback_warning: "The commands below point at this computer's loopback address, which other PCs cannot reach. Open the dashboard by the server's network address or set public_url in the configuration",
    installers: "Agent installers",
    no_installers: "The installers folder holds no agent files (sverka-agent*.msi, .deb, .rpm).",
    installers_hint: "An MSI with settings holds the server's address and this school's secret: keep it as private as the secret. Writing the settings removes the MSI's signature.",
    msi_with_settings: "MSI with this school's settings",
};
