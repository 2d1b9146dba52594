//! A read-only reader of Windows registry hive files (the `regf` format of `NTUSER.DAT`,
//! `UsrClass.dat` and `Windows\System32\config\SOFTWARE`), over bytes already in memory.
//!
//! Only what the agent needs: key nodes (`nk`), their subkey lists (`lf`, `lh`, `li`,
//! `ri`), value lists and values (`vk`, big data `db`). Every offset and length is
//! checked against the file; a damaged hive gives a [`HiveError`], never a panic, and a
//! key whose list is damaged still lets its siblings be read.
//!
//! Why our own: the maintained hive crates are GPL-licensed (nt-hive, nt_hive2, which
//! this Apache-2.0 project cannot ship), or a forensic toolkit (notatin: transaction
//! logs, deleted-cell recovery, a terminal UI's dependencies) far beyond a read of a few
//! keys. The format is small, and this reader is fuzzed in `tests/e2e/fuzz.rs`.

use std::fmt;

use super::RegValue;

/// Where hive bins start: the base block is 4 KiB.
const BINS_START: usize = 4096;
/// The most bytes one value may hold; more is an absurd length for the keys we read.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// The most subkeys or values one key may list.
const MAX_LIST_ITEMS: usize = 1 << 20;
/// Data of more than this many bytes is kept in a big-data (`db`) cell.
const BIG_DATA_SEGMENT: usize = 16_344;

/// Why a hive, or a part of it, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HiveError {
    #[error("not a registry hive (no `regf` signature)")]
    NotAHive,
    #[error("the hive file is truncated ({0} bytes)")]
    Truncated(usize),
    #[error("damaged hive: {what} at offset {offset:#x}")]
    Damaged { what: &'static str, offset: usize },
    #[error("value `{name}` is {size} bytes long, more than {MAX_VALUE_BYTES} (absurd)")]
    ValueTooLong { name: String, size: usize },
}

fn damaged(what: &'static str, offset: usize) -> HiveError {
    HiveError::Damaged { what, offset }
}

/// A parsed hive: the file's bytes and where its root key is.
#[derive(Clone)]
pub struct Hive {
    bytes: Vec<u8>,
    root: usize,
}

impl fmt::Debug for Hive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hive")
            .field("bytes", &self.bytes.len())
            .field("root", &self.root)
            .finish()
    }
}

/// A key's values by name, and the values that could not be read.
pub type KeyValues = (Vec<(String, RegValue)>, Vec<HiveError>);

/// A key node inside a hive (its cell offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyNode(usize);

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at.checked_add(2)?)
        .map(|slice| u16::from_le_bytes([slice[0], slice[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at.checked_add(4)?)
        .map(|slice| u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

impl Hive {
    /// Checks the base block and the root key. The checksum and sequence numbers are
    /// not required to agree: a hive copied from a running system is often "dirty" and
    /// still readable.
    pub fn parse(bytes: Vec<u8>) -> Result<Hive, HiveError> {
        if bytes.len() < 4 || &bytes[..4] != b"regf" {
            return Err(HiveError::NotAHive);
        }
        if bytes.len() < BINS_START + 32 {
            return Err(HiveError::Truncated(bytes.len()));
        }
        let root = u32_at(&bytes, 0x24).ok_or(HiveError::Truncated(bytes.len()))? as usize;
        let hive = Hive { bytes, root };
        hive.key_cell(KeyNode(root))?;
        Ok(hive)
    }

    pub fn root(&self) -> KeyNode {
        KeyNode(self.root)
    }

    /// The data of the allocated cell at `offset` (relative to the first hive bin).
    fn cell(&self, offset: usize) -> Result<&[u8], HiveError> {
        let start = BINS_START
            .checked_add(offset)
            .ok_or(damaged("cell offset", offset))?;
        let size = u32_at(&self.bytes, start).ok_or(damaged("cell past the end", offset))? as i32;
        if size >= 0 {
            return Err(damaged("reference to a free cell", offset));
        }
        let length = size.unsigned_abs() as usize;
        if length < 4 {
            return Err(damaged("cell too small", offset));
        }
        self.bytes
            .get(start + 4..start + length)
            .ok_or(damaged("cell past the end", offset))
    }

    fn key_cell(&self, key: KeyNode) -> Result<&[u8], HiveError> {
        let cell = self.cell(key.0)?;
        if cell.len() < 0x4C || &cell[..2] != b"nk" {
            return Err(damaged("not a key node", key.0));
        }
        Ok(cell)
    }

    /// A key's name.
    pub fn key_name(&self, key: KeyNode) -> Result<String, HiveError> {
        let cell = self.key_cell(key)?;
        let flags = u16_at(cell, 0x02).unwrap_or(0);
        let length = u16_at(cell, 0x48).unwrap_or(0) as usize;
        let raw = cell
            .get(0x4C..0x4C + length)
            .ok_or(damaged("key name past its cell", key.0))?;
        Ok(decode_name(raw, flags & 0x20 != 0))
    }

    /// The subkeys of a key.
    pub fn subkeys(&self, key: KeyNode) -> Result<Vec<KeyNode>, HiveError> {
        let cell = self.key_cell(key)?;
        let count = u32_at(cell, 0x14).unwrap_or(0) as usize;
        let list = u32_at(cell, 0x1C).unwrap_or(u32::MAX);
        if count == 0 || list == u32::MAX {
            return Ok(Vec::new());
        }
        if count > MAX_LIST_ITEMS {
            return Err(damaged("absurd subkey count", key.0));
        }
        let mut found = Vec::with_capacity(count.min(4096));
        self.collect_list(list as usize, &mut found, true)?;
        Ok(found)
    }

    fn collect_list(
        &self,
        offset: usize,
        found: &mut Vec<KeyNode>,
        allow_index_root: bool,
    ) -> Result<(), HiveError> {
        let cell = self.cell(offset)?;
        let signature = cell.get(..2).ok_or(damaged("subkey list", offset))?;
        let count = u16_at(cell, 2).ok_or(damaged("subkey list", offset))? as usize;
        let (stride, nested) = match signature {
            b"lf" | b"lh" => (8, false),
            b"li" => (4, false),
            b"ri" if allow_index_root => (4, true),
            _ => return Err(damaged("unknown subkey list", offset)),
        };
        for index in 0..count {
            let item = u32_at(cell, 4 + index * stride)
                .ok_or(damaged("subkey list past its cell", offset))?
                as usize;
            if nested {
                self.collect_list(item, found, false)?;
            } else {
                found.push(KeyNode(item));
            }
            if found.len() > MAX_LIST_ITEMS {
                return Err(damaged("absurd subkey count", offset));
            }
        }
        Ok(())
    }

    /// The subkey of `key` named `name`, compared without regard to case.
    pub fn subkey(&self, key: KeyNode, name: &str) -> Result<Option<KeyNode>, HiveError> {
        let wanted = name.to_lowercase();
        for child in self.subkeys(key)? {
            // A child whose name cannot be read is not the one asked for.
            if let Ok(child_name) = self.key_name(child)
                && (child_name.eq_ignore_ascii_case(name) || child_name.to_lowercase() == wanted)
            {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// The key at a `\`-separated path below the root, if it exists.
    pub fn open(&self, path: &str) -> Result<Option<KeyNode>, HiveError> {
        let mut key = self.root();
        for part in path.split('\\').filter(|part| !part.is_empty()) {
            match self.subkey(key, part)? {
                Some(child) => key = child,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
    }

    /// The values of a key, by name (the default value is named ``). A value that
    /// cannot be read is left out and reported in the second list.
    pub fn values(&self, key: KeyNode) -> Result<KeyValues, HiveError> {
        let cell = self.key_cell(key)?;
        let count = u32_at(cell, 0x24).unwrap_or(0) as usize;
        let list = u32_at(cell, 0x28).unwrap_or(u32::MAX);
        let mut values = Vec::new();
        let mut problems = Vec::new();
        if count == 0 || list == u32::MAX {
            return Ok((values, problems));
        }
        if count > MAX_LIST_ITEMS {
            return Err(damaged("absurd value count", key.0));
        }
        let list_cell = self.cell(list as usize)?;
        for index in 0..count {
            let Some(offset) = u32_at(list_cell, index * 4) else {
                problems.push(damaged("value list past its cell", list as usize));
                break;
            };
            match self.value(offset as usize) {
                Ok(value) => values.push(value),
                Err(error) => problems.push(error),
            }
        }
        Ok((values, problems))
    }

    fn value(&self, offset: usize) -> Result<(String, RegValue), HiveError> {
        let cell = self.cell(offset)?;
        if cell.len() < 0x14 || &cell[..2] != b"vk" {
            return Err(damaged("not a value", offset));
        }
        let name_length = u16_at(cell, 2).unwrap_or(0) as usize;
        let raw_size = u32_at(cell, 4).unwrap_or(0);
        let data_offset = u32_at(cell, 8).unwrap_or(0);
        let kind = u32_at(cell, 0x0C).unwrap_or(0);
        let flags = u16_at(cell, 0x10).unwrap_or(0);
        let raw_name = cell
            .get(0x14..0x14 + name_length)
            .ok_or(damaged("value name past its cell", offset))?;
        let name = decode_name(raw_name, flags & 1 != 0);
        let inline = raw_size & 0x8000_0000 != 0;
        let size = (raw_size & 0x7FFF_FFFF) as usize;
        if size > MAX_VALUE_BYTES {
            return Err(HiveError::ValueTooLong { name, size });
        }
        let data: Vec<u8> = if inline {
            data_offset.to_le_bytes()[..size.min(4)].to_vec()
        } else if size == 0 {
            Vec::new()
        } else {
            self.value_data(data_offset as usize, size)?
        };
        Ok((name, RegValue::decode(kind, &data)))
    }

    fn value_data(&self, offset: usize, size: usize) -> Result<Vec<u8>, HiveError> {
        let cell = self.cell(offset)?;
        if size > BIG_DATA_SEGMENT && cell.get(..2) == Some(b"db") {
            let segments = u16_at(cell, 2).unwrap_or(0) as usize;
            let list = u32_at(cell, 4).ok_or(damaged("big data", offset))? as usize;
            let list_cell = self.cell(list)?;
            let mut data = Vec::with_capacity(size);
            for index in 0..segments {
                let segment = u32_at(list_cell, index * 4)
                    .ok_or(damaged("big data list past its cell", list))?
                    as usize;
                let bytes = self.cell(segment)?;
                let wanted = (size - data.len()).min(BIG_DATA_SEGMENT).min(bytes.len());
                data.extend_from_slice(&bytes[..wanted]);
                if data.len() >= size {
                    break;
                }
            }
            return Ok(data);
        }
        cell.get(..size)
            .map(<[u8]>::to_vec)
            .ok_or(damaged("value data past its cell", offset))
    }
}

/// Key and value names are Latin-1 when the "compressed" flag is set, else UTF-16LE.
fn decode_name(raw: &[u8], compressed: bool) -> String {
    if compressed {
        raw.iter().map(|&byte| byte as char).collect()
    } else {
        decode_utf16(raw)
    }
}

/// UTF-16LE bytes to text, up to the first NUL; broken surrogates are replaced.
pub fn decode_utf16(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hive built in memory: one key `Software` with a value, in the layout Windows
    /// writes (base block, one hive bin, cells).
    pub(crate) fn tiny_hive() -> Vec<u8> {
        let mut bin: Vec<u8> = Vec::new();
        let cell = |bin: &mut Vec<u8>, data: &[u8]| -> u32 {
            let offset = bin.len() as u32;
            let length = (data.len() + 4).div_ceil(8) * 8;
            bin.extend_from_slice(&(-(length as i32)).to_le_bytes());
            bin.extend_from_slice(data);
            bin.resize(offset as usize + length, 0);
            offset
        };
        let header = 32; // the hbin header comes first
        bin.resize(header, 0);
        let key_node =
            |name: &str, subkeys: u32, subkey_list: u32, values: u32, value_list: u32| {
                let mut data = vec![0u8; 0x4C];
                data[..2].copy_from_slice(b"nk");
                data[2..4].copy_from_slice(&0x20u16.to_le_bytes());
                data[0x14..0x18].copy_from_slice(&subkeys.to_le_bytes());
                data[0x1C..0x20].copy_from_slice(&subkey_list.to_le_bytes());
                data[0x24..0x28].copy_from_slice(&values.to_le_bytes());
                data[0x28..0x2C].copy_from_slice(&value_list.to_le_bytes());
                data[0x48..0x4A].copy_from_slice(&(name.len() as u16).to_le_bytes());
                data.extend_from_slice(name.as_bytes());
                data
            };
        let text: Vec<u8> = "Telegram Desktop\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let data = cell(&mut bin, &text);
        let mut value = vec![0u8; 0x14];
        value[..2].copy_from_slice(b"vk");
        value[2..4].copy_from_slice(&11u16.to_le_bytes());
        value[4..8].copy_from_slice(&(text.len() as u32).to_le_bytes());
        value[8..12].copy_from_slice(&data.to_le_bytes());
        value[12..16].copy_from_slice(&1u32.to_le_bytes());
        value[16..18].copy_from_slice(&1u16.to_le_bytes());
        value.extend_from_slice(b"DisplayName");
        let value = cell(&mut bin, &value);
        let dword = {
            let mut data = vec![0u8; 0x14];
            data[..2].copy_from_slice(b"vk");
            data[2..4].copy_from_slice(&5u16.to_le_bytes());
            data[4..8].copy_from_slice(&0x8000_0004u32.to_le_bytes());
            data[8..12].copy_from_slice(&7u32.to_le_bytes());
            data[12..16].copy_from_slice(&4u32.to_le_bytes());
            data[16..18].copy_from_slice(&1u16.to_le_bytes());
            data.extend_from_slice(b"Flags");
            cell(&mut bin, &data)
        };
        let mut list = Vec::new();
        list.extend_from_slice(&value.to_le_bytes());
        list.extend_from_slice(&dword.to_le_bytes());
        let value_list = cell(&mut bin, &list);
        let child = cell(&mut bin, &key_node("Software", 0, u32::MAX, 2, value_list));
        let mut subkeys = b"lf".to_vec();
        subkeys.extend_from_slice(&1u16.to_le_bytes());
        subkeys.extend_from_slice(&child.to_le_bytes());
        subkeys.extend_from_slice(b"Soft");
        let subkey_list = cell(&mut bin, &subkeys);
        let root = cell(&mut bin, &key_node("ROOT", 1, subkey_list, 0, u32::MAX));
        bin[..4].copy_from_slice(b"hbin");
        let size = bin.len().div_ceil(4096) * 4096;
        bin.resize(size, 0);
        bin[8..12].copy_from_slice(&(size as u32).to_le_bytes());
        let mut file = vec![0u8; BINS_START];
        file[..4].copy_from_slice(b"regf");
        file[0x24..0x28].copy_from_slice(&root.to_le_bytes());
        file[0x28..0x2C].copy_from_slice(&(size as u32).to_le_bytes());
        file.extend(bin);
        file
    }

    #[test]
    fn reads_keys_and_values() {
        let hive = Hive::parse(tiny_hive()).expect("valid hive");
        let key = hive.open("SOFTWARE").expect("readable").expect("exists");
        assert_eq!(hive.key_name(key).expect("name"), "Software");
        let (values, problems) = hive.values(key).expect("values");
        assert!(problems.is_empty());
        assert_eq!(
            values,
            vec![
                (
                    "DisplayName".to_string(),
                    RegValue::String("Telegram Desktop".into())
                ),
                ("Flags".to_string(), RegValue::Dword(7)),
            ]
        );
        assert_eq!(hive.open("Software\\Missing").expect("readable"), None);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        assert_eq!(
            Hive::parse(b"nope".to_vec()).err(),
            Some(HiveError::NotAHive)
        );
        let good = tiny_hive();
        assert!(matches!(
            Hive::parse(good[..BINS_START + 40].to_vec()),
            Err(HiveError::Damaged { .. })
        ));
        assert_eq!(
            Hive::parse(good[..BINS_START].to_vec()).err(),
            Some(HiveError::Truncated(BINS_START))
        );
        let mut wrong_root = good.clone();
        wrong_root[0x24..0x28].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        assert!(Hive::parse(wrong_root).is_err());
        // Every single-byte corruption of the bins reads or fails, never panics.
        for position in BINS_START..good.len().min(BINS_START + 600) {
            let mut bytes = good.clone();
            bytes[position] ^= 0xFF;
            if let Ok(hive) = Hive::parse(bytes)
                && let Ok(Some(key)) = hive.open("Software")
            {
                let _ = hive.values(key);
            }
        }
    }
}
