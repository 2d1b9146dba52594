//! LevelDB's write-ahead log (`*.log`): records in 32 KiB blocks, reassembled into
//! write batches, whose puts and deletions are numbered by sequence. A damaged or torn
//! record ends the read quietly, as LevelDB itself does; what came before is kept.

use super::{Record, length_prefixed, u64_le};

/// The log is written in blocks of this size, each record with a 7-byte header.
const LOG_BLOCK: usize = 32 * 1024;

/// The records of a LevelDB log file: the payloads of complete records, reassembled
/// across blocks. A damaged record ends the read (what came before is kept).
pub fn log_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut position = 0;
    while position + 7 <= bytes.len() {
        let left_in_block = LOG_BLOCK - position % LOG_BLOCK;
        if left_in_block < 7 {
            position += left_in_block;
            continue;
        }
        let length = u16::from_le_bytes([bytes[position + 4], bytes[position + 5]]) as usize;
        let kind = bytes[position + 6];
        let start = position + 7;
        let Some(payload) = bytes.get(start..start + length) else {
            break;
        };
        if length > left_in_block - 7 {
            break;
        }
        match kind {
            1 => records.push(payload.to_vec()), // FULL
            2 => pending = payload.to_vec(),     // FIRST
            3 => pending.extend_from_slice(payload),
            4 => {
                pending.extend_from_slice(payload);
                records.push(std::mem::take(&mut pending));
            }
            0 => {
                // Zero padding at the end of a block (or of a preallocated file).
                position += left_in_block;
                continue;
            }
            _ => break,
        }
        position = start + length;
    }
    records
}

/// The operations of one write batch (a log record): a 12-byte header (sequence number
/// of the first operation, count), then puts and deletions, the i-th numbered
/// `sequence + i`. Returns `false` if the batch is damaged (the operations before the
/// damage were visited).
pub fn write_batch(batch: &[u8], mut visit: impl FnMut(Record<'_>)) -> bool {
    let Some(first) = u64_le(batch) else {
        return false;
    };
    if batch.len() < 12 {
        return false;
    }
    let mut position = 12;
    let mut sequence = first;
    while position < batch.len() {
        let tag = batch[position];
        position += 1;
        let Some(key) = length_prefixed(batch, &mut position) else {
            return false;
        };
        let value = match tag {
            1 => match length_prefixed(batch, &mut position) {
                Some(value) => Some(value),
                None => return false,
            },
            0 => None,
            _ => return false,
        };
        visit(Record {
            key,
            sequence,
            value,
        });
        sequence = sequence.saturating_add(1);
    }
    true
}

/// Every operation of every write batch of a log file.
pub fn read_log(bytes: &[u8], mut visit: impl FnMut(Record<'_>)) {
    for batch in log_records(bytes) {
        write_batch(&batch, &mut visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::formats::leveldb::testing::log;

    #[test]
    fn write_batches_number_their_operations() {
        let mut records = Vec::new();
        let log = log(41, &[(b"a", Some(b"1")), (b"b", None), (b"c", Some(b""))]);
        read_log(&log, |record| {
            records.push((record.key.to_vec(), record.sequence, record.value.is_some()))
        });
        assert_eq!(
            records,
            vec![
                (b"a".to_vec(), 41, true),
                (b"b".to_vec(), 42, false),
                (b"c".to_vec(), 43, true)
            ]
        );
        assert!(!write_batch(&[0; 11], |_| {}));
        assert!(!write_batch(
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7],
            |_| {}
        ));
    }
}
