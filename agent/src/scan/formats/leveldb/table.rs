//! LevelDB's sorted tables (`*.ldb`, older `*.sst`): the footer names the index block,
//! whose entries name the data blocks; blocks are checked against their masked CRC-32C
//! and Snappy-decompressed. Every read is bounded (a budget per table, and the `MAX_`
//! constants).

use std::borrow::Cow;

use super::{Record, u32_le, u64_le, varint, varint32};

/// The last 8 bytes of every table, little-endian.
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// The largest table read.
pub const MAX_TABLE_BYTES: usize = 64 * 1024 * 1024;
/// The largest block (after decompression) read; LevelDB writes blocks of about 4 KiB.
pub const MAX_BLOCK_BYTES: usize = 4 * 1024 * 1024;
/// The most entries read from one table.
pub const MAX_TABLE_ENTRIES: usize = 1_000_000;
/// The most bytes of decompressed blocks and rebuilt keys one table may cost.
pub const MAX_DECODED_BYTES: usize = 256 * 1024 * 1024;

/// Metaindex handle + index handle (at most 40 bytes), then the magic number.
pub(super) const FOOTER_BYTES: usize = 48;
/// After each block: compression type (1 byte) and masked CRC-32C (4 bytes).
const BLOCK_TRAILER_BYTES: usize = 5;
pub(super) const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Why a table could not be read (whole or in part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelDbError {
    #[error("shorter than a LevelDB table footer")]
    TooShort,
    #[error("larger than {} MB", MAX_TABLE_BYTES >> 20)]
    TooLarge,
    #[error("not a LevelDB table (wrong magic number)")]
    BadMagic,
    #[error("malformed table footer")]
    BadFooter,
    #[error("block handle {offset}+{size} is outside the table")]
    BadHandle { offset: u64, size: u64 },
    #[error("block at offset {offset}: checksum mismatch")]
    Checksum { offset: u64 },
    #[error("block at offset {offset}: unknown compression type {kind}")]
    Compression { offset: u64, kind: u8 },
    #[error("block at offset {offset}: damaged Snappy data")]
    Snappy { offset: u64 },
    #[error("block at offset {offset}: larger than {} MB", MAX_BLOCK_BYTES >> 20)]
    BlockTooLarge { offset: u64 },
    #[error("block at offset {offset}: malformed entry")]
    BadEntry { offset: u64 },
    #[error("more than {MAX_TABLE_ENTRIES} entries or {} MB decoded", MAX_DECODED_BYTES >> 20)]
    TooMuchData,
}

#[derive(Debug, Clone, Copy)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

fn block_handle(bytes: &[u8], position: &mut usize) -> Option<BlockHandle> {
    Some(BlockHandle {
        offset: varint(bytes, position)?,
        size: varint(bytes, position)?,
    })
}

/// What one table read may still cost.
struct Budget {
    bytes: usize,
    entries: usize,
}

impl Budget {
    fn charge(&mut self, bytes: usize) -> Result<(), LevelDbError> {
        self.bytes = self
            .bytes
            .checked_sub(bytes)
            .ok_or(LevelDbError::TooMuchData)?;
        Ok(())
    }
}

pub(super) fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A block's contents (decompressed), its trailer checked.
fn read_block<'a>(
    table: &'a [u8],
    handle: BlockHandle,
    budget: &mut Budget,
) -> Result<Cow<'a, [u8]>, LevelDbError> {
    let outside = LevelDbError::BadHandle {
        offset: handle.offset,
        size: handle.size,
    };
    let start = usize::try_from(handle.offset).map_err(|_| outside.clone())?;
    let size = usize::try_from(handle.size).map_err(|_| outside.clone())?;
    let end = start.checked_add(size).ok_or(outside.clone())?;
    let data = table.get(start..end).ok_or(outside.clone())?;
    let trailer = table
        .get(end..end.saturating_add(BLOCK_TRAILER_BYTES))
        .filter(|trailer| trailer.len() == BLOCK_TRAILER_BYTES)
        .ok_or(outside)?;
    let kind = trailer[0];
    let mut digest = CASTAGNOLI.digest();
    digest.update(data);
    digest.update(&trailer[..1]);
    if u32_le(&trailer[1..]) != Some(mask_crc(digest.finalize())) {
        return Err(LevelDbError::Checksum {
            offset: handle.offset,
        });
    }
    let block = match kind {
        0 => Cow::Borrowed(data),
        1 => {
            let damaged = LevelDbError::Snappy {
                offset: handle.offset,
            };
            let length = ::snap::raw::decompress_len(data).map_err(|_| damaged.clone())?;
            if length > MAX_BLOCK_BYTES {
                return Err(LevelDbError::BlockTooLarge {
                    offset: handle.offset,
                });
            }
            budget.charge(length)?;
            Cow::Owned(
                ::snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|_| damaged)?,
            )
        }
        kind => {
            return Err(LevelDbError::Compression {
                offset: handle.offset,
                kind,
            });
        }
    };
    if block.len() > MAX_BLOCK_BYTES {
        return Err(LevelDbError::BlockTooLarge {
            offset: handle.offset,
        });
    }
    Ok(block)
}

/// The entries of a block: keys stored as a shared prefix length plus the rest, then
/// the restart array (u32 offsets) and its length (u32).
fn block_entries(
    block: &[u8],
    offset: u64,
    budget: &mut Budget,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), LevelDbError>,
) -> Result<(), LevelDbError> {
    let bad = LevelDbError::BadEntry { offset };
    let count_at = block.len().checked_sub(4).ok_or(bad.clone())?;
    let restarts = u32_le(&block[count_at..]).ok_or(bad.clone())?;
    let entries_end = usize::try_from(restarts)
        .ok()
        .and_then(|restarts| restarts.checked_mul(4))
        .and_then(|bytes| count_at.checked_sub(bytes))
        .ok_or(bad.clone())?;
    let entries = &block[..entries_end];
    let mut key = Vec::new();
    let mut position = 0;
    while position < entries.len() {
        let (Some(shared), Some(unshared), Some(value_length)) = (
            varint32(entries, &mut position),
            varint32(entries, &mut position),
            varint32(entries, &mut position),
        ) else {
            return Err(bad);
        };
        if shared > key.len() {
            return Err(bad);
        }
        let unshared_end = position.checked_add(unshared).ok_or(bad.clone())?;
        let value_end = unshared_end.checked_add(value_length).ok_or(bad.clone())?;
        let (Some(rest), Some(value)) = (
            entries.get(position..unshared_end),
            entries.get(unshared_end..value_end),
        ) else {
            return Err(bad);
        };
        position = value_end;
        budget.charge(shared + unshared)?;
        budget.entries = budget
            .entries
            .checked_sub(1)
            .ok_or(LevelDbError::TooMuchData)?;
        key.truncate(shared);
        key.extend_from_slice(rest);
        visit(&key, value)?;
    }
    Ok(())
}

/// Every entry of a table (`*.ldb`, `*.sst`): the footer names the index block, whose
/// values are the handles of the data blocks, whose keys are internal keys (user key,
/// then 8 bytes: `sequence << 8 | type`, type 1 a value, 0 a deletion). Entries before
/// an error have been visited.
pub fn read_table(table: &[u8], mut visit: impl FnMut(Record<'_>)) -> Result<(), LevelDbError> {
    if table.len() > MAX_TABLE_BYTES {
        return Err(LevelDbError::TooLarge);
    }
    let footer_at = table
        .len()
        .checked_sub(FOOTER_BYTES)
        .ok_or(LevelDbError::TooShort)?;
    let footer = &table[footer_at..];
    if u64_le(&footer[FOOTER_BYTES - 8..]) != Some(TABLE_MAGIC) {
        return Err(LevelDbError::BadMagic);
    }
    let mut position = 0;
    let (Some(_metaindex), Some(index)) = (
        block_handle(footer, &mut position),
        block_handle(footer, &mut position),
    ) else {
        return Err(LevelDbError::BadFooter);
    };
    if position > FOOTER_BYTES - 8 {
        return Err(LevelDbError::BadFooter);
    }
    // Blocks lie before the footer.
    let blocks = &table[..footer_at];
    let mut budget = Budget {
        bytes: MAX_DECODED_BYTES,
        entries: MAX_TABLE_ENTRIES,
    };
    let index_block = read_block(blocks, index, &mut budget)?;
    let mut handles = Vec::new();
    block_entries(&index_block, index.offset, &mut budget, |_, value| {
        let mut position = 0;
        match block_handle(value, &mut position) {
            Some(handle) => {
                handles.push(handle);
                Ok(())
            }
            None => Err(LevelDbError::BadEntry {
                offset: index.offset,
            }),
        }
    })?;
    for handle in handles {
        let block = read_block(blocks, handle, &mut budget)?;
        block_entries(&block, handle.offset, &mut budget, |internal_key, value| {
            let bad = LevelDbError::BadEntry {
                offset: handle.offset,
            };
            let split = internal_key.len().checked_sub(8).ok_or(bad.clone())?;
            let (key, trailer) = internal_key.split_at(split);
            let trailer = u64_le(trailer).ok_or(bad.clone())?;
            let value = match trailer & 0xFF {
                1 => Some(value),
                0 => None,
                _ => return Err(bad),
            };
            visit(Record {
                key,
                sequence: trailer >> 8,
                value,
            });
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::formats::leveldb::testing::{TableEntry, TableWriter, varint_bytes};

    type Owned = (Vec<u8>, u64, Option<Vec<u8>>);

    fn table_records(table: &[u8]) -> (Vec<Owned>, Result<(), LevelDbError>) {
        let mut records = Vec::new();
        let result = read_table(table, |record| {
            records.push((
                record.key.to_vec(),
                record.sequence,
                record.value.map(<[u8]>::to_vec),
            ));
        });
        (records, result)
    }

    fn sample_entries() -> Vec<TableEntry<'static>> {
        vec![
            (b"web_apps-dt-aaa", 7, Some(b"first")),
            (b"web_apps-dt-aab", 9, None),
            (b"web_apps-dt-aab", 3, Some(b"second, older")),
            (b"web_apps-dt-abc", 4, Some(b"third")),
            (b"web_apps-meta", 2, Some(&[0u8; 300])),
        ]
    }

    #[test]
    fn tables_read_whole_compressed_or_not_with_any_block_layout() {
        let expected: Vec<Owned> = sample_entries()
            .iter()
            .map(|(key, sequence, value)| (key.to_vec(), *sequence, value.map(<[u8]>::to_vec)))
            .collect();
        for snappy in [false, true] {
            for per_block in 1..=5 {
                for restart_interval in 1..=3 {
                    let writer = TableWriter {
                        per_block,
                        restart_interval,
                        snappy,
                    };
                    let (records, result) = table_records(&writer.write(&sample_entries()));
                    assert_eq!(result, Ok(()), "{writer:?}");
                    assert_eq!(records, expected, "{writer:?}");
                }
            }
        }
        let (records, result) = table_records(&TableWriter::default().write(&[]));
        assert_eq!((records, result), (vec![], Ok(())));
    }

    #[test]
    fn damaged_tables_are_errors() {
        let valid = TableWriter {
            per_block: 1,
            restart_interval: 1,
            snappy: false,
        }
        .write(&sample_entries());
        let footer_at = valid.len() - FOOTER_BYTES;

        assert_eq!(
            read_table(&valid[..20], |_| {}),
            Err(LevelDbError::TooShort)
        );
        let mut magic = valid.clone();
        *magic.last_mut().unwrap() ^= 1;
        assert_eq!(read_table(&magic, |_| {}), Err(LevelDbError::BadMagic));
        // A footer of unterminated varints.
        let mut footer = valid.clone();
        footer[footer_at..footer_at + 40].fill(0xFF);
        assert_eq!(read_table(&footer, |_| {}), Err(LevelDbError::BadFooter));
        // An index handle pointing far beyond the file.
        let mut huge = valid[..footer_at].to_vec();
        huge.extend(varint_bytes(0));
        huge.extend(varint_bytes(0));
        huge.extend(varint_bytes(u64::MAX / 2));
        huge.extend(varint_bytes(u64::MAX / 2));
        huge.resize(footer_at + 40, 0);
        huge.extend(TABLE_MAGIC.to_le_bytes());
        assert!(matches!(
            read_table(&huge, |_| {}),
            Err(LevelDbError::BadHandle { .. })
        ));
        // A flipped byte in the first data block: its checksum no longer matches.
        let mut flipped = valid.clone();
        flipped[3] ^= 0x40;
        let mut seen = 0;
        assert_eq!(
            read_table(&flipped, |_| seen += 1),
            Err(LevelDbError::Checksum { offset: 0 })
        );
        assert_eq!(seen, 0);
        // The table cut short: its footer is gone.
        for cut in [valid.len() - 1, valid.len() / 2, FOOTER_BYTES] {
            assert!(read_table(&valid[..cut], |_| {}).is_err());
        }
        assert_eq!(
            read_table(&vec![0; MAX_TABLE_BYTES + 1], |_| {}),
            Err(LevelDbError::TooLarge)
        );
    }

    /// A table of one raw (uncompressed) data block, its checksums right.
    fn table_with_data_block(block: Vec<u8>) -> Vec<u8> {
        let writer = TableWriter {
            snappy: false,
            ..TableWriter::default()
        };
        let mut table = Vec::new();
        let handle = writer.write_block(&mut table, block);
        let metaindex = writer.write_block(&mut table, writer.block(&[]));
        let index =
            writer.write_block(&mut table, writer.block(&[(b"zzzzzzzzz".to_vec(), handle)]));
        let mut footer = metaindex;
        footer.extend(index);
        footer.resize(FOOTER_BYTES - 8, 0);
        footer.extend(TABLE_MAGIC.to_le_bytes());
        table.extend(footer);
        table
    }

    #[test]
    fn malformed_blocks_are_errors_after_the_good_entries() {
        let entry = |shared: u64, unshared: u64, value: u64, rest: &[u8]| {
            let mut bytes = varint_bytes(shared);
            bytes.extend(varint_bytes(unshared));
            bytes.extend(varint_bytes(value));
            bytes.extend_from_slice(rest);
            bytes
        };
        let good = entry(0, 9, 1, b"k\x01\x05\x00\x00\x00\x00\x00\x00v");
        let restarts_one = [0u8, 0, 0, 0, 1, 0, 0, 0];
        let cases: Vec<Vec<u8>> = vec![
            // Shares more than the previous key has.
            entry(20, 1, 0, b"x"),
            // A length running past the block.
            entry(0, 1 << 31, 0, b""),
            entry(
                0,
                9,
                u64::from(u32::MAX),
                b"k\x05\x00\x00\x00\x00\x00\x00\x00",
            ),
            // A length that is not a 32-bit varint.
            entry(0, 1 << 40, 0, b""),
            // An unterminated varint.
            vec![0xFF; 12],
            // An internal key shorter than its trailer.
            entry(0, 3, 0, b"key"),
            // An unknown value type.
            entry(0, 9, 0, b"k\x07\x00\x00\x00\x00\x00\x00\x00"),
        ];
        for case in cases {
            let mut block = good.clone();
            block.extend(&case);
            block.extend(restarts_one);
            let mut seen = Vec::new();
            let result = read_table(&table_with_data_block(block), |record| {
                seen.push((record.key.to_vec(), record.sequence))
            });
            assert_eq!(
                result,
                Err(LevelDbError::BadEntry { offset: 0 }),
                "{case:?}"
            );
            assert_eq!(seen, vec![(b"k".to_vec(), 5)], "{case:?}");
        }
        // A restart count larger than the block.
        let mut block = good.clone();
        block.extend(u32::MAX.to_le_bytes());
        assert_eq!(
            read_table(&table_with_data_block(block), |_| {}),
            Err(LevelDbError::BadEntry { offset: 0 })
        );
        assert!(read_table(&table_with_data_block(vec![1, 0]), |_| {}).is_err());
    }

    #[test]
    fn snappy_blocks_that_lie_about_their_length_are_errors() {
        let writer = TableWriter {
            snappy: false,
            ..TableWriter::default()
        };
        for (data, expected) in [
            // Claims 100 MB: refused before any allocation.
            (
                varint_bytes(100 << 20),
                LevelDbError::BlockTooLarge { offset: 0 },
            ),
            // Claims 10 bytes, holds a copy from before its start.
            (
                vec![10, 0x01 << 2 | 1, 0x20],
                LevelDbError::Snappy { offset: 0 },
            ),
        ] {
            let mut table = Vec::new();
            let mut digest = CASTAGNOLI.digest();
            digest.update(&data);
            digest.update(&[1]);
            let size = data.len();
            table.extend(data);
            table.push(1);
            table.extend(mask_crc(digest.finalize()).to_le_bytes());
            let index = [varint_bytes(0), varint_bytes(size as u64)].concat();
            let metaindex = writer.write_block(&mut table, writer.block(&[]));
            let index = writer.write_block(&mut table, writer.block(&[(b"k".to_vec(), index)]));
            let mut footer = metaindex;
            footer.extend(index);
            footer.resize(FOOTER_BYTES - 8, 0);
            footer.extend(TABLE_MAGIC.to_le_bytes());
            table.extend(footer);
            assert_eq!(read_table(&table, |_| {}), Err(expected));
        }
    }

    #[test]
    fn random_mutations_of_valid_tables_never_panic() {
        let mut random = fastrand::Rng::with_seed(7);
        let mut read_whole = 0;
        for round in 0..20_000 {
            let writer = TableWriter {
                per_block: random.usize(1..4),
                restart_interval: random.usize(1..4),
                snappy: random.bool(),
            };
            let flips = random.usize(0..3);
            let mut mutate = |block: &mut Vec<u8>| {
                for _ in 0..flips {
                    if !block.is_empty() && random.u8(..8) == 0 {
                        let at = random.usize(..block.len());
                        block[at] = random.u8(..);
                    }
                }
            };
            let mut table = writer.write_mutated(&sample_entries(), &mut mutate);
            // Every other round, damage the file itself (checksums, handles, footer).
            if round % 2 == 1 {
                for _ in 0..random.usize(1..4) {
                    let at = random.usize(..table.len());
                    table[at] = random.u8(..);
                }
                table.truncate(random.usize(table.len() / 2..=table.len()));
            }
            let mut count = 0;
            if read_table(&table, |_| count += 1).is_ok() && count == sample_entries().len() {
                read_whole += 1;
            }
        }
        // Undamaged tables (no flip landed) are among them, and read whole.
        assert!(read_whole > 1000, "{read_whole}");
    }
}
