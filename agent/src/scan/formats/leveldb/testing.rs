//! Test-only writers of LevelDB files: tables ([`TableWriter`]) and logs ([`log`]), for
//! this module's tests and the web app source's.

use super::table::{CASTAGNOLI, FOOTER_BYTES, TABLE_MAGIC, mask_crc};

/// A table entry: user key, sequence number, value (`None`: a deletion).
pub(crate) type TableEntry<'a> = (&'a [u8], u64, Option<&'a [u8]>);

pub(crate) fn varint_bytes(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}

/// A test-only table writer: `entries` (user key, sequence, value or deletion) in
/// data blocks of `per_block` entries, a restart every `restart_interval` entries,
/// blocks Snappy-compressed or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableWriter {
    pub per_block: usize,
    pub restart_interval: usize,
    pub snappy: bool,
}

impl Default for TableWriter {
    fn default() -> Self {
        TableWriter {
            per_block: 2,
            restart_interval: 2,
            snappy: true,
        }
    }
}

impl TableWriter {
    pub(crate) fn block(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut block = Vec::new();
        let mut restarts = Vec::new();
        let mut last: &[u8] = &[];
        for (index, (key, value)) in entries.iter().enumerate() {
            let shared = if index % self.restart_interval == 0 {
                restarts.push(block.len() as u32);
                0
            } else {
                key.iter().zip(last).take_while(|(a, b)| a == b).count()
            };
            block.extend(varint_bytes(shared as u64));
            block.extend(varint_bytes((key.len() - shared) as u64));
            block.extend(varint_bytes(value.len() as u64));
            block.extend_from_slice(&key[shared..]);
            block.extend_from_slice(value);
            last = key;
        }
        if restarts.is_empty() {
            restarts.push(0);
        }
        for restart in &restarts {
            block.extend(restart.to_le_bytes());
        }
        block.extend((restarts.len() as u32).to_le_bytes());
        block
    }

    /// Appends a block with its trailer; returns its handle, encoded.
    pub(crate) fn write_block(&self, table: &mut Vec<u8>, raw: Vec<u8>) -> Vec<u8> {
        let (data, kind) = if self.snappy {
            let compressed = ::snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy compresses");
            (compressed, 1u8)
        } else {
            (raw, 0u8)
        };
        let mut handle = varint_bytes(table.len() as u64);
        handle.extend(varint_bytes(data.len() as u64));
        let mut digest = CASTAGNOLI.digest();
        digest.update(&data);
        digest.update(&[kind]);
        table.extend_from_slice(&data);
        table.push(kind);
        table.extend(mask_crc(digest.finalize()).to_le_bytes());
        handle
    }

    pub(crate) fn write(&self, entries: &[TableEntry<'_>]) -> Vec<u8> {
        self.write_mutated(entries, &mut |_| {})
    }

    /// A table whose blocks `mutate` changed before they were compressed and
    /// checksummed: damage the checksums do not catch.
    pub(crate) fn write_mutated(
        &self,
        entries: &[TableEntry<'_>],
        mutate: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Vec<u8> {
        let mut block = |entries: &[(Vec<u8>, Vec<u8>)]| {
            let mut block = self.block(entries);
            mutate(&mut block);
            block
        };
        let internal: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|&(key, sequence, value)| {
                let mut internal = key.to_vec();
                let kind = u64::from(value.is_some());
                internal.extend((sequence << 8 | kind).to_le_bytes());
                (internal, value.unwrap_or_default().to_vec())
            })
            .collect();
        let mut table = Vec::new();
        let mut index = Vec::new();
        for chunk in internal.chunks(self.per_block.max(1)) {
            let handle = self.write_block(&mut table, block(chunk));
            let last_key = chunk.last().map(|(key, _)| key.clone()).unwrap_or_default();
            index.push((last_key, handle));
        }
        let metaindex = self.write_block(&mut table, block(&[]));
        let index = self.write_block(&mut table, block(&index));
        let mut footer = metaindex;
        footer.extend(index);
        footer.resize(FOOTER_BYTES - 8, 0);
        footer.extend(TABLE_MAGIC.to_le_bytes());
        table.extend(footer);
        table
    }
}

/// A log file of one write batch holding `operations` from `sequence` on.
pub(crate) fn log(sequence: u64, operations: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    let mut batch = sequence.to_le_bytes().to_vec();
    batch.extend((operations.len() as u32).to_le_bytes());
    for (key, value) in operations {
        batch.push(u8::from(value.is_some()));
        batch.extend(varint_bytes(key.len() as u64));
        batch.extend_from_slice(key);
        if let Some(value) = value {
            batch.extend(varint_bytes(value.len() as u64));
            batch.extend_from_slice(value);
        }
    }
    let mut log = vec![0u8; 4];
    log.extend((batch.len() as u16).to_le_bytes());
    log.push(1);
    log.extend(batch);
    log
}
