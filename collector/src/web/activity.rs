//! The weekly report's use figures (issue 20): per organization, the PCs where an
//! approved and where a banned messenger was used in the week (an agent reported a
//! time of program activity inside it) beside the PCs that reported, with the change
//! since the week before; the PCs per application; and the ranking of the schools with
//! the lowest approved-use share and the most banned use. Frozen with the week like
//! the other figures (`figures::freeze_week`); a week frozen before use was counted
//! shows no use figures rather than zeros.

use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

use super::figures::{Totals, applications_of_subtree, table_rows};
use super::i18n::Lang;
use super::pages::organization_href;
use super::pages::overview::row_name;
use super::scope::OrganizationTree;
use super::table::{Cell, Table, column};
use super::weekly::WeekFigures;

/// Rows of the ranking shown on the page (the workbook has every school).
pub const RANKING_ON_PAGE: usize = 15;

/// The words of this module, per language.
#[derive(Debug)]
pub struct ActivityTexts {
    pub title: &'static str,
    pub used_approved: &'static str,
    pub approved_use_share: &'static str,
    pub change_approved_use: &'static str,
    pub used_banned: &'static str,
    pub change_banned_use: &'static str,
    pub applications: &'static str,
    pub application: &'static str,
    pub status: &'static str,
    pub statuses: [&'static str; 3],
    pub pcs_this_week: &'static str,
    pub pcs_week_before: &'static str,
    pub change: &'static str,
    pub ranking: &'static str,
    pub ranking_note: &'static str,
    pub place: &'static str,
    pub school: &'static str,
    pub not_counted: &'static str,
    pub definitions: &'static str,
    pub sheet: &'static str,
    pub ranking_sheet: &'static str,
    pub last_used: &'static str,
    pub weeks_used: &'static str,
}

impl ActivityTexts {
    /// A catalog status word for people.
    pub fn status(&self, status: &str) -> &'static str {
        match status {
            "banned" => self.statuses[0],
            "approved" => self.statuses[1],
            _ => self.statuses[2],
        }
    }
}

static RU: ActivityTexts = ActivityTexts {
    title: "Использование за неделю",
    used_approved: "Использовали разрешённый мессенджер, ПК",
    approved_use_share: "Доля отчитавшихся ПК с использованием разрешённого, %",
    change_approved_use: "Изменение доли, п. п.",
    used_banned: "Использовали запрещённый мессенджер, ПК",
    change_banned_use: "Изменение, ПК",
    applications: "По приложениям",
    application: "Приложение",
    status: "Статус",
    statuses: ["запрещён", "разрешён", "под наблюдением"],
    pcs_this_week: "ПК за неделю",
    pcs_week_before: "ПК неделей раньше",
    change: "Изменение",
    ranking: "Школы с наименьшей долей использования разрешённых мессенджеров",
    ranking_note: "Сначала школы с наименьшей долей, при равной доле — с большим числом ПК, \
        где использовался запрещённый мессенджер.",
    place: "№",
    school: "Школа",
    not_counted: "Использование за эту неделю не подсчитывалось: неделя зафиксирована до того, \
        как Sverka начала его учитывать.",
    definitions: "«Использовали» — ПК, на которых программа запускалась в течение недели: \
        агент сообщил время её последней активности (изменение папки данных программы, \
        файл Prefetch Windows, запущенный процесс), и это время приходится на неделю. \
        Содержимое переписки не читается. Доля — от ПК, отчитавшихся за неделю.",
    sheet: "Использование",
    ranking_sheet: "Рейтинг школ",
    last_used: "Последнее использование",
    weeks_used: "Недели использования",
};

static EN: ActivityTexts = ActivityTexts {
    title: "Use this week",
    used_approved: "Used an approved messenger, PCs",
    approved_use_share: "Share of reporting PCs that used an approved one, %",
    change_approved_use: "Change in share, pp",
    used_banned: "Used a banned messenger, PCs",
    change_banned_use: "Change, PCs",
    applications: "By application",
    application: "Application",
    status: "Status",
    statuses: ["banned", "approved", "watched"],
    pcs_this_week: "PCs this week",
    pcs_week_before: "PCs the week before",
    change: "Change",
    ranking: "Schools with the lowest share of approved messenger use",
    ranking_note: "Lowest share first; at an equal share, more PCs where a banned \
        messenger was used first.",
    place: "No.",
    school: "School",
    not_counted: "Use was not counted for this week: it was frozen before Sverka counted it.",
    definitions: "\"Used\" counts PCs where the program ran during the week: the agent \
        reported the time of its last activity (its data folder changed, its Windows \
        Prefetch entry, a running process) and that time falls in the week. No message \
        content is read. The share is of the PCs that reported this week.",
    sheet: "Use",
    ranking_sheet: "School ranking",
    last_used: "Last used",
    weeks_used: "Weeks used",
};

impl Lang {
    pub fn activity(self) -> &'static ActivityTexts {
        match self {
            Lang::Ru => &RU,
            Lang::En => &EN,
        }
    }
}

fn optional_count(value: Option<i64>) -> Cell {
    match value {
        Some(value) => Cell::Int(value),
        None => Cell::Text(String::new()),
    }
}

fn change(now: Option<f64>, before: Option<f64>) -> Cell {
    Cell::Delta(now.zip(before).map(|(now, before)| now - before))
}

fn percent_points(totals: Option<&Totals>) -> Option<f64> {
    totals
        .and_then(Totals::approved_use_share)
        .map(|share| share * 100.0)
}

fn use_row(name: Cell, totals: &Totals, before: Option<&Totals>) -> Vec<Cell> {
    vec![
        name,
        Cell::Int(totals.reporting),
        optional_count(totals.used_approved),
        Cell::Share(totals.approved_use_share()),
        change(percent_points(Some(totals)), percent_points(before)),
        optional_count(totals.used_banned),
        change(
            totals.used_banned.map(|used| used as f64),
            before
                .and_then(|before| before.used_banned)
                .map(|used| used as f64),
        ),
    ]
}

/// Whether the week counted use for `id` (weeks frozen before it did not).
pub fn use_counted(figures: &WeekFigures, id: i64) -> bool {
    figures
        .totals
        .get(&id)
        .is_some_and(|totals| totals.used_approved.is_some())
}

/// The week's use figures: one row per sub-organization and one for PCs directly
/// under `id` (the rows add up to the total), with the change since `before`.
pub fn use_table(
    figures: &WeekFigures,
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
) -> Table {
    let texts = lang.texts();
    let activity = lang.activity();
    let mut table = Table::new(
        format!("use-{id}-{}", figures.week.label),
        vec![
            column(texts.organization, 40.0),
            column(texts.reported_this_week, 13.0),
            column(activity.used_approved, 16.0),
            column(activity.approved_use_share, 16.0),
            column(activity.change_approved_use, 12.0),
            column(activity.used_banned, 16.0),
            column(activity.change_banned_use, 12.0),
        ],
    );
    let totals_of = |member: i64| figures.totals.get(&member).copied().unwrap_or_default();
    let before_rows = super::weekly::rows_of_week(before, tree, id);
    for (key, totals) in table_rows(tree, id, totals_of) {
        let Some(name) = row_name(tree, id, key, lang) else {
            continue;
        };
        table
            .rows
            .push(use_row(name, &totals, before_rows.get(&key)));
    }
    let before_total = before
        .filter(|before| before.has_data(id))
        .and_then(|before| before.totals.get(&id));
    table.totals = Some(use_row(
        Cell::Text(texts.total.to_string()),
        &totals_of(id),
        before_total,
    ));
    table
}

/// The PCs of `id`'s subtree per application used in the week, beside the week before.
pub fn applications_table(
    figures: &WeekFigures,
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    names: &HashMap<String, String>,
) -> Table {
    let activity = lang.activity();
    let mut table = Table::new(
        format!("use-by-application-{id}-{}", figures.week.label),
        vec![
            column(activity.application, 30.0),
            column(activity.status, 16.0),
            column(activity.pcs_this_week, 14.0),
            column(activity.pcs_week_before, 14.0),
            column(activity.change, 12.0),
        ],
    );
    let now = applications_of_subtree(tree, id, &figures.applications);
    let earlier: Option<BTreeMap<(String, String), i64>> = before
        .filter(|before| use_counted(before, id))
        .map(|before| applications_of_subtree(tree, id, &before.applications));
    let mut keys: Vec<&(String, String)> = now.keys().collect();
    if let Some(earlier) = &earlier {
        keys.extend(earlier.keys().filter(|key| !now.contains_key(*key)));
    }
    keys.sort();
    for key in keys {
        let (app_id, status) = key;
        let this_week = now.get(key).copied().unwrap_or(0);
        let week_before = earlier
            .as_ref()
            .map(|earlier| earlier.get(key).copied().unwrap_or(0));
        table.rows.push(vec![
            Cell::Text(names.get(app_id).cloned().unwrap_or_else(|| app_id.clone())),
            Cell::Text(activity.status(status).to_string()),
            Cell::Int(this_week),
            optional_count(week_before),
            change(
                Some(this_week as f64),
                week_before.map(|count| count as f64),
            ),
        ]);
    }
    // Banned first, then approved, each by the most PCs.
    table.rows.sort_by_key(|row| {
        let banned_first = match &row[1] {
            Cell::Text(status) if status == activity.statuses[0] => 0,
            Cell::Text(status) if status == activity.statuses[1] => 1,
            _ => 2,
        };
        let pcs = match row[2] {
            Cell::Int(pcs) => -pcs,
            _ => 0,
        };
        (banned_first, pcs)
    });
    table
}

/// The schools (organizations without children) of `id`'s subtree that reported in
/// the week, lowest approved-use share first, then the most PCs with banned use.
pub fn school_ranking(
    figures: &WeekFigures,
    tree: &OrganizationTree,
    id: i64,
) -> Vec<(i64, Totals)> {
    let mut schools: Vec<(i64, Totals)> = tree
        .subtree(id)
        .into_iter()
        .filter(|member| tree.children(*member).is_empty())
        .filter_map(|member| Some((member, *figures.totals.get(&member)?)))
        .filter(|(_, totals)| totals.reporting > 0 && totals.used_approved.is_some())
        .collect();
    schools.sort_by(|(a_id, a), (b_id, b)| {
        let share = |totals: &Totals| totals.approved_use_share().unwrap_or(0.0);
        share(a)
            .total_cmp(&share(b))
            .then(b.used_banned.cmp(&a.used_banned))
            .then(a_id.cmp(b_id))
    });
    schools
}

/// The ranking as a table (`limit` rows at most).
pub fn ranking_table(
    figures: &WeekFigures,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    limit: usize,
) -> Table {
    let texts = lang.texts();
    let activity = lang.activity();
    let mut table = Table::new(
        format!("use-ranking-{id}-{}", figures.week.label),
        vec![
            column(activity.place, 6.0),
            column(activity.school, 40.0),
            column(texts.reported_this_week, 13.0),
            column(activity.used_approved, 16.0),
            column(activity.approved_use_share, 16.0),
            column(activity.used_banned, 16.0),
        ],
    );
    for (place, (member, totals)) in school_ranking(figures, tree, id)
        .into_iter()
        .take(limit)
        .enumerate()
    {
        let name = tree.get(member).map(|o| o.name.clone()).unwrap_or_default();
        table.rows.push(vec![
            Cell::Int(place as i64 + 1),
            Cell::Link(name, organization_href(tree, member)),
            Cell::Int(totals.reporting),
            optional_count(totals.used_approved),
            Cell::Share(totals.approved_use_share()),
            optional_count(totals.used_banned),
        ]);
    }
    table
}

/// The section of the weekly page: the use table, the applications, the ranking.
pub fn use_section(
    figures: &WeekFigures,
    before: Option<&WeekFigures>,
    tree: &OrganizationTree,
    id: i64,
    lang: Lang,
    names: &HashMap<String, String>,
    clock: &super::clock::Clock,
) -> Markup {
    let texts = lang.texts();
    let activity = lang.activity();
    html! {
        section #use aria-labelledby="use-title" {
            h2 #use-title { (activity.title) }
            @if use_counted(figures, id) {
                (use_table(figures, before, tree, id, lang).fixed_html(clock, texts.nothing))
                h3 { (activity.applications) }
                (applications_table(figures, before, tree, id, lang, names).fixed_html(clock, texts.nothing))
                @if !tree.children(id).is_empty() {
                    h3 #use-ranking-title { (activity.ranking) }
                    p.note { (activity.ranking_note) }
                    (ranking_table(figures, tree, id, lang, RANKING_ON_PAGE).fixed_html(clock, texts.nothing))
                }
                p.definitions #use-definitions { (activity.definitions) }
            } @else {
                p.no-data #use-not-counted { (activity.not_counted) }
            }
        }
    }
}

/// The catalog's application names by id.
pub fn application_names(catalog: &sverka_shared::Catalog) -> HashMap<String, String> {
    catalog
        .apps
        .iter()
        .map(|app| (app.id.clone(), app.name.clone()))
        .collect()
}

/// Weeks of use shown for a PC's application.
pub const WEEKS_SHOWN: i64 = 12;

/// A PC's use of one application: its last time, and the weeks it was used in (of the
/// last [`WEEKS_SHOWN`], newest first, by the organization's clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostUse {
    pub last_used_at: i64,
    pub weeks: Vec<String>,
}

/// The use of each application of a PC, by application id.
pub async fn host_uses(
    store: &dyn crate::store::Store,
    host_id: i64,
    clock: &super::clock::Clock,
) -> crate::store::StoreResult<HashMap<String, HostUse>> {
    let now = crate::now();
    let since = clock.week_of(now).start - (WEEKS_SHOWN - 1) * 7 * 86_400;
    let mut uses: HashMap<String, (i64, std::collections::BTreeSet<String>)> = HashMap::new();
    for day in store.host_use_days(host_id, since).await? {
        let entry = uses.entry(day.app_id.clone()).or_default();
        entry.0 = entry.0.max(day.last_used_at);
        for at in [day.first_used_at, day.last_used_at] {
            if at >= since {
                entry.1.insert(clock.week_of(at).label);
            }
        }
    }
    Ok(uses
        .into_iter()
        .map(|(app, (last_used_at, weeks))| {
            (
                app,
                HostUse {
                    last_used_at,
                    weeks: weeks.into_iter().rev().collect(),
                },
            )
        })
        .collect())
}
