//! A read-only reader of LevelDB files, as Chromium's web app database uses them: the
//! write-ahead log (`*.log`, write batches) and the sorted tables compactions write
//! (`*.ldb`, older `*.sst`), plus [`Latest`], which merges what they hold into the
//! database's current state (per key, the entry with the highest sequence number; a
//! deletion hides the key).
//!
//! Everything here is pure (bytes in, records out), OS-independent and bounded: a table
//! is at most [`MAX_TABLE_BYTES`], a block decompresses to at most [`MAX_BLOCK_BYTES`],
//! one table yields at most [`MAX_TABLE_ENTRIES`] entries and [`MAX_DECODED_BYTES`] of
//! decoded blocks and keys. Damaged input ends the read with an error (or, for a log,
//! quietly, as LevelDB itself does with a torn tail); what was read before is kept.
//! Block checksums (masked CRC-32C) are verified.
//!
//! Not read: the `MANIFEST` (which files are live) and the bloom filters. Callers merge
//! every log and table of a database folder, which is the current state as long as the
//! folder holds no obsolete table LevelDB has not yet deleted.
//!
//! Three parts: `log.rs` reads the write-ahead log, `table.rs` the sorted tables, and
//! `merge.rs` holds [`Latest`]. What they share (the record type, varints,
//! little-endian integers) is here.

mod log;
mod merge;
mod table;
#[cfg(test)]
pub(crate) mod testing;

pub use log::{log_records, read_log, write_batch};
pub use merge::Latest;
pub use table::{
    LevelDbError, MAX_BLOCK_BYTES, MAX_DECODED_BYTES, MAX_TABLE_BYTES, MAX_TABLE_ENTRIES,
    TABLE_MAGIC, read_table,
};

/// One entry of a log or table: a put (`value` is `Some`) or a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub sequence: u64,
    pub value: Option<&'a [u8]>,
}

pub(crate) fn varint(bytes: &[u8], position: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A varint that must fit 32 bits, as a length.
fn varint32(bytes: &[u8], position: &mut usize) -> Option<usize> {
    let value = u32::try_from(varint(bytes, position)?).ok()?;
    usize::try_from(value).ok()
}

pub(crate) fn length_prefixed<'a>(bytes: &'a [u8], position: &mut usize) -> Option<&'a [u8]> {
    let length = usize::try_from(varint(bytes, position)?).ok()?;
    let slice = bytes.get(*position..position.checked_add(length)?)?;
    *position += length;
    Some(slice)
}

fn u32_le(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn u64_le(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}
