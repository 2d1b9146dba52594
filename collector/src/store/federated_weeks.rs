//! A week's frozen figures with the federated organizations' own (federation, issue
//! 21). This collector freezes every organization of its tree at its week's end, the
//! federated ones with the last figures their lower collector had sent by then; the
//! lower collector sends its own frozen week later. Once that has arrived, the
//! federated organizations count with it, and every organization of this collector
//! above them with the difference; until then they keep what was frozen here and are
//! marked late, never counted as zero.

use std::collections::HashMap;

use super::WeeklyFigures;

/// What merging needs of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederationPlace {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub federated: bool,
    /// Its lower collector no longer sends it: never late.
    pub gone: bool,
}

/// `frozen`: this collector's frozen figures; `received`: the federated organizations'
/// frozen weeks as their lower collectors sent them; `places`: every organization.
/// Both may hold several weeks. Returns the figures by organization and week, in the
/// order of `frozen` with the received ones of organizations this collector did not
/// freeze after them.
pub fn with_federated_weeks(
    frozen: Vec<WeeklyFigures>,
    received: Vec<WeeklyFigures>,
    places: &[FederationPlace],
) -> Vec<WeeklyFigures> {
    let place: HashMap<i64, FederationPlace> =
        places.iter().map(|place| (place.id, *place)).collect();
    let is_federated = |id: i64| place.get(&id).is_some_and(|place| place.federated);
    let is_gone = |id: i64| place.get(&id).is_some_and(|place| place.gone);
    let mut received: HashMap<(i64, String), WeeklyFigures> = received
        .into_iter()
        .filter(|figures| is_federated(figures.organization_id))
        .map(|figures| ((figures.organization_id, figures.week.clone()), figures))
        .collect();
    let mut merged: Vec<WeeklyFigures> = Vec::with_capacity(frozen.len());
    let mut index: HashMap<(i64, String), usize> = HashMap::new();
    // A federated organization's own row: what it sent, or what was frozen here, late.
    let mut corrections: Vec<(i64, Difference)> = Vec::new();
    for figures in frozen {
        let key = (figures.organization_id, figures.week.clone());
        let row = if is_federated(figures.organization_id) {
            match received.remove(&key) {
                Some(sent) => {
                    if is_topmost_federated(&place, figures.organization_id) {
                        corrections.push((
                            figures.organization_id,
                            Difference::between(Some(&figures), &sent),
                        ));
                    }
                    sent
                }
                None => WeeklyFigures {
                    late: !is_gone(figures.organization_id),
                    ..figures
                },
            }
        } else {
            figures
        };
        index.insert(key, merged.len());
        merged.push(row);
    }
    // Weeks sent of organizations this collector did not freeze (it had not heard of
    // them yet): they count in full above them.
    let mut unfrozen: Vec<WeeklyFigures> = received.into_values().collect();
    unfrozen.sort_by(|a, b| (&a.week, a.organization_id).cmp(&(&b.week, b.organization_id)));
    for sent in unfrozen {
        if is_topmost_federated(&place, sent.organization_id) {
            corrections.push((sent.organization_id, Difference::between(None, &sent)));
        }
        index.insert((sent.organization_id, sent.week.clone()), merged.len());
        merged.push(sent);
    }
    for (organization_id, difference) in corrections {
        let mut above = place
            .get(&organization_id)
            .and_then(|place| place.parent_id);
        let mut steps = 0;
        while let Some(id) = above
            && steps < places.len()
        {
            if let Some(&at) = index.get(&(id, difference.week.clone())) {
                difference.apply(&mut merged[at]);
            }
            above = place.get(&id).and_then(|place| place.parent_id);
            steps += 1;
        }
    }
    merged
}

/// A federated organization whose parent is this collector's own: the figures of
/// those above it hold its whole subtree once.
fn is_topmost_federated(place: &HashMap<i64, FederationPlace>, id: i64) -> bool {
    place.get(&id).is_some_and(|own| {
        own.federated
            && own
                .parent_id
                .and_then(|parent| place.get(&parent))
                .is_none_or(|parent| !parent.federated)
    })
}

/// What a federated organization's sent week adds to what was frozen of it here.
#[derive(Debug)]
struct Difference {
    week: String,
    expected_pcs: i64,
    enrolled: i64,
    reporting: i64,
    silent: i64,
    with_banned: i64,
    with_approved: i64,
    known: Option<i64>,
    silent_with_banned: Option<i64>,
    used_approved: Option<i64>,
    used_banned: Option<i64>,
}

impl Difference {
    fn between(frozen: Option<&WeeklyFigures>, sent: &WeeklyFigures) -> Difference {
        let plain = |field: fn(&WeeklyFigures) -> i64| field(sent) - frozen.map(field).unwrap_or(0);
        // A figure the lower collector did not send changes nothing above.
        let optional = |field: fn(&WeeklyFigures) -> Option<i64>| {
            field(sent).map(|value| value - frozen.and_then(field).unwrap_or(0))
        };
        Difference {
            week: sent.week.clone(),
            expected_pcs: plain(|f| f.expected_pcs),
            enrolled: plain(|f| f.enrolled),
            reporting: plain(|f| f.reporting),
            silent: plain(|f| f.silent),
            with_banned: plain(|f| f.with_banned),
            with_approved: plain(|f| f.with_approved),
            known: optional(|f| f.known),
            silent_with_banned: optional(|f| f.silent_with_banned),
            used_approved: optional(|f| f.used_approved),
            used_banned: optional(|f| f.used_banned),
        }
    }

    fn apply(&self, figures: &mut WeeklyFigures) {
        let add = |value: &mut i64, difference: i64| *value = (*value + difference).max(0);
        // A figure frozen here before it was kept stays unknown.
        let add_optional = |value: &mut Option<i64>, difference: Option<i64>| {
            if let (Some(value), Some(difference)) = (value.as_mut(), difference) {
                *value = (*value + difference).max(0);
            }
        };
        add(&mut figures.expected_pcs, self.expected_pcs);
        add(&mut figures.enrolled, self.enrolled);
        add(&mut figures.reporting, self.reporting);
        add(&mut figures.silent, self.silent);
        add(&mut figures.with_banned, self.with_banned);
        add(&mut figures.with_approved, self.with_approved);
        add_optional(&mut figures.known, self.known);
        add_optional(&mut figures.silent_with_banned, self.silent_with_banned);
        add_optional(&mut figures.used_approved, self.used_approved);
        add_optional(&mut figures.used_banned, self.used_banned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(organization_id: i64, week: &str, enrolled: i64) -> WeeklyFigures {
        WeeklyFigures {
            organization_id,
            week: week.to_string(),
            expected_pcs: enrolled,
            enrolled,
            reporting: enrolled,
            silent: 0,
            with_banned: enrolled / 2,
            with_approved: 0,
            known: Some(enrolled),
            silent_with_banned: Some(0),
            used_approved: None,
            used_banned: None,
            late: false,
        }
    }

    /// Region 1 > municipality 2 (own) > school 3 (own); region 1 > municipality 4
    /// (federated) > school 5 (federated).
    fn places() -> Vec<FederationPlace> {
        let place = |id, parent_id, federated| FederationPlace {
            id,
            parent_id,
            federated,
            gone: false,
        };
        vec![
            place(1, None, false),
            place(2, Some(1), false),
            place(3, Some(2), false),
            place(4, Some(1), true),
            place(5, Some(4), true),
        ]
    }

    fn enrolled_of(rows: &[WeeklyFigures], id: i64, week: &str) -> Option<(i64, bool)> {
        rows.iter()
            .find(|row| row.organization_id == id && row.week == week)
            .map(|row| (row.enrolled, row.late))
    }

    #[test]
    fn a_sent_week_replaces_the_federated_rows_and_corrects_those_above_once() {
        // Frozen here: the federated municipality had 10 PCs (school 5: 6), the own
        // municipality 20: the region 30.
        let frozen = vec![
            figures(1, "2026-W47", 30),
            figures(2, "2026-W47", 20),
            figures(3, "2026-W47", 20),
            figures(4, "2026-W47", 10),
            figures(5, "2026-W47", 6),
        ];
        // The municipality sent 14 (school 5: 8).
        let received = vec![figures(4, "2026-W47", 14), figures(5, "2026-W47", 8)];
        let merged = with_federated_weeks(frozen, received, &places());
        assert_eq!(enrolled_of(&merged, 1, "2026-W47"), Some((34, false)));
        assert_eq!(enrolled_of(&merged, 2, "2026-W47"), Some((20, false)));
        assert_eq!(enrolled_of(&merged, 4, "2026-W47"), Some((14, false)));
        assert_eq!(enrolled_of(&merged, 5, "2026-W47"), Some((8, false)));
        let region = merged.iter().find(|row| row.organization_id == 1).unwrap();
        assert_eq!(region.with_banned, 15 - 5 + 7);
        assert_eq!(region.known, Some(34));
    }

    #[test]
    fn a_week_not_sent_keeps_what_was_frozen_and_is_late() {
        let frozen = vec![
            figures(1, "2026-W47", 30),
            figures(4, "2026-W47", 10),
            figures(5, "2026-W47", 6),
            figures(1, "2026-W48", 31),
            figures(4, "2026-W48", 11),
        ];
        // Only week 47 arrived.
        let received = vec![figures(4, "2026-W47", 12)];
        let merged = with_federated_weeks(frozen, received, &places());
        assert_eq!(enrolled_of(&merged, 1, "2026-W47"), Some((32, false)));
        assert_eq!(enrolled_of(&merged, 5, "2026-W47"), Some((6, true)));
        assert_eq!(enrolled_of(&merged, 1, "2026-W48"), Some((31, false)));
        assert_eq!(enrolled_of(&merged, 4, "2026-W48"), Some((11, true)));
    }

    #[test]
    fn a_week_frozen_there_but_not_here_counts_in_full_above() {
        let frozen = vec![figures(1, "2026-W47", 30)];
        let received = vec![figures(4, "2026-W47", 12), figures(5, "2026-W47", 7)];
        let merged = with_federated_weeks(frozen, received, &places());
        assert_eq!(enrolled_of(&merged, 1, "2026-W47"), Some((42, false)));
        assert_eq!(enrolled_of(&merged, 4, "2026-W47"), Some((12, false)));
        assert_eq!(enrolled_of(&merged, 5, "2026-W47"), Some((7, false)));
    }

    #[test]
    fn rows_of_organizations_not_federated_are_never_replaced() {
        let frozen = vec![figures(2, "2026-W47", 20)];
        let received = vec![figures(2, "2026-W47", 99)];
        let merged = with_federated_weeks(frozen, received, &places());
        assert_eq!(merged.len(), 1);
        assert_eq!(enrolled_of(&merged, 2, "2026-W47"), Some((20, false)));
    }
}
