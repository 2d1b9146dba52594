//! Row and filter types of the officer's worklist (issue 19): the violations of an
//! organization and everything under it, searched and filtered in one query.

use serde::Serialize;

use super::{Timestamp, ViolationRow};

/// What the worklist shows. Every filter narrows; `None` leaves it out.
#[derive(Debug, Clone, Default)]
pub struct WorklistFilter {
    /// The organization whose PCs (its whole subtree) are listed.
    pub within: i64,
    /// Only PCs enrolled directly under `within`, not under its children.
    pub directly: bool,
    /// Part of a PC's name, a user's name or an application's name or id; letters
    /// match in either case (SQLite folds the case of ASCII letters only).
    pub search: Option<String>,
    pub app_id: Option<String>,
    /// Only violations first seen at or after this time (new this week).
    pub first_seen_since: Option<Timestamp>,
    /// Violations resolved at or after this time instead of open ones.
    pub resolved_since: Option<Timestamp>,
    /// Only PCs that have not reported since this time (or never).
    pub silent_before: Option<Timestamp>,
    /// Only violations with (`true`) or without (`false`) a "being handled" note.
    pub handled: Option<bool>,
    /// The most rows returned (the count covers them all).
    pub limit: i64,
}

/// One violation of the worklist, with its note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorklistRow {
    pub violation: ViolationRow,
    pub handled_note: Option<String>,
    pub handled_by: Option<String>,
    pub handled_at: Option<Timestamp>,
}

/// The rows (at most `limit`) and how many matched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Worklist {
    pub rows: Vec<WorklistRow>,
    pub matched: i64,
}
