//! A read-only reader of Berkeley DB hash files, enough to list the values of rpm's
//! `Packages` database (ALT Linux, older RED OS) without linking Berkeley DB and
//! without ever opening the file for writing.
//!
//! Layout: page 0 is the hash metadata page (magic `0x061561`, page size, last page
//! number; the byte order is the creating machine's and is told by the magic). Hash
//! pages (types 2 and 13) hold key/data item pairs addressed by an index of offsets
//! after the 26-byte page header; an item is stored inline (`H_KEYDATA`) or in a chain
//! of overflow pages (`H_OFFPAGE`, page type 7), which is how rpm headers usually are.
//! Pages are read one at a time, so memory stays at one page plus one value.

use std::io::{self, Read, Seek, SeekFrom};

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const PAGE_HEADER: usize = 26;
const PAGE_INVALID: u8 = 0;
const PAGE_HASH_UNSORTED: u8 = 2;
const PAGE_HASH_META: u8 = 8;
const PAGE_OVERFLOW: u8 = 7;
const PAGE_HASH: u8 = 13;
const ITEM_KEYDATA: u8 = 1;
const ITEM_DUPLICATE: u8 = 2;
const ITEM_OFFPAGE: u8 = 3;
const ITEM_OFFDUP: u8 = 4;
/// No rpm header comes near this; a larger value is damage.
const MAX_VALUE: u32 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BdbError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a Berkeley DB file")]
    NotBerkeleyDb,
    #[error("a Berkeley DB btree, not the hash database rpm uses for Packages")]
    Btree,
    #[error("unsupported Berkeley DB hash file: {0}")]
    Unsupported(String),
    #[error("damaged page {page}: {reason}")]
    Damaged { page: u32, reason: String },
}

/// An open hash database.
#[derive(Debug)]
pub struct BdbHash<R> {
    reader: R,
    page_size: usize,
    last_page: u32,
    big_endian: bool,
    truncated: bool,
}

/// A key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

impl<R: Read + Seek> BdbHash<R> {
    pub fn open(mut reader: R) -> Result<BdbHash<R>, BdbError> {
        let mut meta = [0u8; 64];
        reader.seek(SeekFrom::Start(0))?;
        if reader.read_exact(&mut meta).is_err() {
            return Err(BdbError::NotBerkeleyDb);
        }
        let magic_le = u32::from_le_bytes([meta[12], meta[13], meta[14], meta[15]]);
        let magic_be = u32::from_be_bytes([meta[12], meta[13], meta[14], meta[15]]);
        let big_endian = match (magic_le, magic_be) {
            (HASH_MAGIC, _) => false,
            (_, HASH_MAGIC) => true,
            (BTREE_MAGIC, _) | (_, BTREE_MAGIC) => return Err(BdbError::Btree),
            _ => return Err(BdbError::NotBerkeleyDb),
        };
        let read32 = |at: usize| {
            let bytes = [meta[at], meta[at + 1], meta[at + 2], meta[at + 3]];
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        let version = read32(16);
        let page_size = read32(20);
        let encryption = meta[24];
        let flags = meta[26];
        let last_page = read32(32);
        if !(7..=10).contains(&version) {
            return Err(BdbError::Unsupported(format!("hash version {version}")));
        }
        if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
            return Err(BdbError::Unsupported(format!("page size {page_size}")));
        }
        if encryption != 0 {
            return Err(BdbError::Unsupported("encrypted".into()));
        }
        if flags & 0x01 != 0 {
            return Err(BdbError::Unsupported("pages carry checksums".into()));
        }
        let length = reader.seek(SeekFrom::End(0))?;
        let pages_in_file = (length / u64::from(page_size)) as u32;
        Ok(BdbHash {
            reader,
            page_size: page_size as usize,
            // A file shorter than its metadata says is read as far as it goes.
            last_page: last_page.min(pages_in_file.saturating_sub(1)),
            big_endian,
            truncated: u64::from(last_page) >= u64::from(pages_in_file),
        })
    }

    /// Whether the file ends before the last page its metadata names.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// How many pages are read (fewer than the metadata says when the file is short).
    pub fn page_count(&self) -> u32 {
        self.last_page + 1
    }

    fn u16_at(&self, page: &[u8], at: usize) -> Option<u16> {
        let bytes = [*page.get(at)?, *page.get(at + 1)?];
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    fn u32_at(&self, page: &[u8], at: usize) -> Option<u32> {
        let bytes = [
            *page.get(at)?,
            *page.get(at + 1)?,
            *page.get(at + 2)?,
            *page.get(at + 3)?,
        ];
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn read_page(&mut self, number: u32, page: &mut [u8]) -> Result<(), BdbError> {
        self.reader
            .seek(SeekFrom::Start(u64::from(number) * self.page_size as u64))?;
        self.reader
            .read_exact(page)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => BdbError::Damaged {
                    page: number,
                    reason: "the file ends inside this page".into(),
                },
                _ => BdbError::Io(error),
            })
    }

    /// Calls `visit` with every key/value record, or with the error that made one
    /// unreadable; damage in one page never stops the others from being read. Only an
    /// I/O error stops the walk.
    pub fn for_each(
        &mut self,
        mut visit: impl FnMut(Result<Record, BdbError>),
    ) -> Result<(), BdbError> {
        let mut page = vec![0u8; self.page_size];
        for number in 1..=self.last_page {
            match self.read_page(number, &mut page) {
                Ok(()) => {}
                Err(BdbError::Io(error)) => return Err(BdbError::Io(error)),
                Err(damage) => {
                    visit(Err(damage));
                    continue;
                }
            }
            let kind = page[25];
            if kind != PAGE_HASH && kind != PAGE_HASH_UNSORTED {
                if !matches!(kind, PAGE_INVALID | PAGE_OVERFLOW | PAGE_HASH_META) {
                    visit(Err(BdbError::Damaged {
                        page: number,
                        reason: format!("unknown page type {kind}"),
                    }));
                }
                continue;
            }
            let entries = usize::from(self.u16_at(&page, 20).unwrap_or(0));
            if PAGE_HEADER + entries * 2 > self.page_size {
                visit(Err(BdbError::Damaged {
                    page: number,
                    reason: format!("{entries} entries do not fit"),
                }));
                continue;
            }
            let mut pair = 0;
            while pair + 1 < entries {
                let key = self.item(&page, number, pair);
                let value = self.item(&page, number, pair + 1);
                let record = match (key, value) {
                    (Ok(key), Ok(value)) => self
                        .resolve(key, number)
                        .and_then(|key| self.resolve(value, number).map(|value| (key, value))),
                    (Err(error), _) | (_, Err(error)) => Err(error),
                };
                visit(record);
                pair += 2;
            }
        }
        Ok(())
    }

    /// The item at `index` of a hash page, still unresolved.
    fn item(&self, page: &[u8], number: u32, index: usize) -> Result<Item, BdbError> {
        let damaged = |reason: &str| BdbError::Damaged {
            page: number,
            reason: reason.into(),
        };
        let offset = usize::from(
            self.u16_at(page, PAGE_HEADER + index * 2)
                .ok_or_else(|| damaged("index"))?,
        );
        let end = if index == 0 {
            self.page_size
        } else {
            usize::from(
                self.u16_at(page, PAGE_HEADER + (index - 1) * 2)
                    .ok_or_else(|| damaged("index"))?,
            )
        };
        if offset < PAGE_HEADER || offset >= end || end > self.page_size {
            return Err(damaged("item offsets out of order"));
        }
        match page[offset] {
            ITEM_KEYDATA => Ok(Item::Inline(page[offset + 1..end].to_vec())),
            ITEM_OFFPAGE => {
                let first = self
                    .u32_at(page, offset + 4)
                    .ok_or_else(|| damaged("overflow item"))?;
                let length = self
                    .u32_at(page, offset + 8)
                    .ok_or_else(|| damaged("overflow item"))?;
                Ok(Item::Overflow { first, length })
            }
            ITEM_DUPLICATE | ITEM_OFFDUP => Err(damaged("duplicate items are not used by rpm")),
            other => Err(damaged(&format!("unknown item type {other}"))),
        }
    }

    fn resolve(&mut self, item: Item, from_page: u32) -> Result<Vec<u8>, BdbError> {
        let (mut next, length) = match item {
            Item::Inline(bytes) => return Ok(bytes),
            Item::Overflow { first, length } => (first, length),
        };
        if length > MAX_VALUE {
            return Err(BdbError::Damaged {
                page: from_page,
                reason: format!("value of {length} bytes"),
            });
        }
        let mut value = Vec::with_capacity(length as usize);
        let mut page = vec![0u8; self.page_size];
        let most_pages = length as usize / (self.page_size - PAGE_HEADER) + 2;
        for _ in 0..most_pages {
            if next == 0 || value.len() >= length as usize {
                break;
            }
            if next > self.last_page {
                return Err(BdbError::Damaged {
                    page: next,
                    reason: "overflow chain leaves the file".into(),
                });
            }
            self.read_page(next, &mut page)?;
            if page[25] != PAGE_OVERFLOW {
                return Err(BdbError::Damaged {
                    page: next,
                    reason: "overflow chain reaches a page of another kind".into(),
                });
            }
            let on_page = usize::from(self.u16_at(&page, 22).unwrap_or(0));
            let chunk = page
                .get(PAGE_HEADER..PAGE_HEADER + on_page)
                .ok_or(BdbError::Damaged {
                    page: next,
                    reason: "overflow length exceeds the page".into(),
                })?;
            value.extend_from_slice(chunk);
            next = self.u32_at(&page, 16).unwrap_or(0);
        }
        if value.len() != length as usize {
            return Err(BdbError::Damaged {
                page: from_page,
                reason: format!("overflow value is {} bytes, expected {length}", value.len()),
            });
        }
        Ok(value)
    }
}

#[derive(Debug)]
enum Item {
    Inline(Vec<u8>),
    Overflow { first: u32, length: u32 },
}
