//! The current state of a database from its logs and tables, read in any order: per
//! key, the record with the highest sequence number wins, and a deletion hides the key.

use std::collections::HashMap;

use super::Record;

/// The current state of a database, built from the records of its logs and tables in
/// any order: per key, the record with the highest sequence number, tagged with the
/// origin (say, the file) it came from.
#[derive(Debug, Default)]
pub struct Latest {
    by_key: HashMap<Vec<u8>, Newest>,
}

/// The newest record known of a key.
#[derive(Debug)]
struct Newest {
    sequence: u64,
    value: Option<Vec<u8>>,
    origin: usize,
}

impl Latest {
    /// Keeps `record` if it is newer than what is known of its key.
    pub fn insert(&mut self, record: Record<'_>, origin: usize) {
        let newest = Newest {
            sequence: record.sequence,
            value: record.value.map(<[u8]>::to_vec),
            origin,
        };
        match self.by_key.get_mut(record.key) {
            Some(known) if known.sequence >= record.sequence => {}
            Some(known) => *known = newest,
            None => {
                self.by_key.insert(record.key.to_vec(), newest);
            }
        }
    }

    /// The live keys (the newest record a put, not a deletion), sorted by key: (key,
    /// value, origin).
    pub fn live(self) -> Vec<(Vec<u8>, Vec<u8>, usize)> {
        let mut live: Vec<_> = self
            .by_key
            .into_iter()
            .filter_map(|(key, newest)| Some((key, newest.value?, newest.origin)))
            .collect();
        live.sort();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::formats::leveldb::testing::{TableWriter, log};
    use crate::scan::formats::leveldb::{read_log, read_table};

    #[test]
    fn newest_record_wins_and_deletions_hide_keys() {
        let mut latest = Latest::default();
        read_table(
            &TableWriter::default().write(&[
                (b"installed", 5, Some(b"old")),
                (b"updated", 6, Some(b"old")),
                (b"uninstalled", 7, Some(b"old")),
                (b"reinstalled", 8, None),
            ]),
            |record| latest.insert(record, 0),
        )
        .expect("table");
        read_log(
            &log(
                10,
                &[
                    (b"updated", Some(b"new")),
                    (b"uninstalled", None),
                    (b"reinstalled", Some(b"new")),
                ],
            ),
            |record| latest.insert(record, 1),
        );
        // Older than the table's record: a stale deletion loses.
        read_log(&log(1, &[(b"installed", None)]), |record| {
            latest.insert(record, 2)
        });
        assert_eq!(
            latest.live(),
            vec![
                (b"installed".to_vec(), b"old".to_vec(), 0),
                (b"reinstalled".to_vec(), b"new".to_vec(), 1),
                (b"updated".to_vec(), b"new".to_vec(), 1),
            ]
        );
    }
}
