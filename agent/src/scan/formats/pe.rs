//! PE version information: the `VS_VERSIONINFO` resource of a Windows program, whose
//! strings (CompanyName, ProductName, OriginalFilename, FileDescription) name the
//! program even when its file was renamed (`homework.exe` that is Viber).
//!
//! Pure parsing over bytes (headers → section table → resource directory → `RT_VERSION`
//! → `StringFileInfo`), with every offset checked; a thin reader reads only the headers
//! and the resource section, never the rest of the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use sverka_shared::observation::VersionInfo;

/// How much of the file start holds the headers and section table.
pub const HEADER_BYTES: usize = 64 * 1024;
/// The largest resource section read.
pub const MAX_RESOURCE_BYTES: u32 = 32 * 1024 * 1024;
const RT_VERSION: u32 = 16;
/// The most entries one resource directory level may list.
const MAX_DIRECTORY_ENTRIES: usize = 4096;
const MAX_STRING_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    #[error("not a PE program")]
    NotPe,
    #[error("damaged PE file: {0}")]
    Damaged(&'static str),
    #[error("resource section larger than {} MB", MAX_RESOURCE_BYTES >> 20)]
    ResourcesTooLarge,
    #[error("cannot read: {0}")]
    Io(String),
}

/// Where the resources are, from the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSection {
    /// File offset and size of the section that holds the resource directory.
    pub file_offset: u32,
    pub file_size: u32,
    /// The section's virtual address, and the resource directory's.
    pub section_rva: u32,
    pub directory_rva: u32,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the resource section from the first bytes of a file; `Ok(None)` for a program
/// without resources.
pub fn resource_section(header: &[u8]) -> Result<Option<ResourceSection>, PeError> {
    if !header.starts_with(b"MZ") {
        return Err(PeError::NotPe);
    }
    let pe = u32_at(header, 0x3C).ok_or(PeError::Damaged("DOS header"))? as usize;
    if header.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(PeError::NotPe);
    }
    let coff = pe + 4;
    let sections = u16_at(header, coff + 2).ok_or(PeError::Damaged("COFF header"))? as usize;
    let optional_size = u16_at(header, coff + 16).ok_or(PeError::Damaged("COFF header"))? as usize;
    let optional = coff + 20;
    let directories = match u16_at(header, optional).ok_or(PeError::Damaged("optional header"))? {
        0x10B => optional + 96,
        0x20B => optional + 112,
        _ => return Err(PeError::Damaged("unknown optional header")),
    };
    let directory_count = u32_at(header, directories - 4).unwrap_or(0);
    if directory_count < 3 {
        return Ok(None);
    }
    let directory_rva =
        u32_at(header, directories + 16).ok_or(PeError::Damaged("data directories"))?;
    if directory_rva == 0 {
        return Ok(None);
    }
    let table = optional + optional_size;
    for index in 0..sections.min(96) {
        let entry = table + index * 40;
        let (Some(virtual_size), Some(section_rva), Some(raw_size), Some(raw_offset)) = (
            u32_at(header, entry + 8),
            u32_at(header, entry + 12),
            u32_at(header, entry + 16),
            u32_at(header, entry + 20),
        ) else {
            return Err(PeError::Damaged("section table past the headers"));
        };
        let span = virtual_size.max(raw_size);
        if directory_rva >= section_rva && directory_rva - section_rva < span {
            return Ok(Some(ResourceSection {
                file_offset: raw_offset,
                file_size: raw_size,
                section_rva,
                directory_rva,
            }));
        }
    }
    Err(PeError::Damaged("resource directory outside every section"))
}

/// Reads the version strings from a resource section's bytes.
pub fn version_info_in_section(
    section: &[u8],
    layout: &ResourceSection,
) -> Result<Option<VersionInfo>, PeError> {
    let base = (layout.directory_rva - layout.section_rva) as usize;
    let at_rva = |rva: u32| {
        rva.checked_sub(layout.section_rva)
            .map(|offset| offset as usize)
    };
    // Level 1: resource types; level 2: names; level 3: languages.
    let Some(names) = directory_entry(section, base, 0, Some(RT_VERSION))? else {
        return Ok(None);
    };
    let Some(languages) = directory_entry(section, base, names, None)? else {
        return Ok(None);
    };
    let Some(data_entry) = directory_entry(section, base, languages, None)? else {
        return Ok(None);
    };
    let entry = base + data_entry;
    let rva = u32_at(section, entry).ok_or(PeError::Damaged("resource data entry"))?;
    let size = u32_at(section, entry + 4).ok_or(PeError::Damaged("resource data entry"))? as usize;
    let start = at_rva(rva).ok_or(PeError::Damaged("version resource outside its section"))?;
    let data = section
        .get(start..start.saturating_add(size))
        .ok_or(PeError::Damaged("version resource outside its section"))?;
    Ok(parse_version_resource(data))
}

/// One step down the resource tree: the first entry with `id` (or the first entry at
/// all), as an offset relative to the directory base. At the last level the offset is
/// of a data entry.
fn directory_entry(
    section: &[u8],
    base: usize,
    directory: usize,
    id: Option<u32>,
) -> Result<Option<usize>, PeError> {
    let at = base + directory;
    let named = u16_at(section, at + 12).ok_or(PeError::Damaged("resource directory"))? as usize;
    let ids = u16_at(section, at + 14).ok_or(PeError::Damaged("resource directory"))? as usize;
    let total = (named + ids).min(MAX_DIRECTORY_ENTRIES);
    for index in 0..total {
        let entry = at + 16 + index * 8;
        let name = u32_at(section, entry).ok_or(PeError::Damaged("resource directory entry"))?;
        let target =
            u32_at(section, entry + 4).ok_or(PeError::Damaged("resource directory entry"))?;
        let wanted = match id {
            Some(id) => name & 0x8000_0000 == 0 && name == id,
            None => true,
        };
        if wanted {
            let offset = (target & 0x7FFF_FFFF) as usize;
            if offset == directory {
                return Err(PeError::Damaged("resource directory loops"));
            }
            return Ok(Some(offset));
        }
    }
    Ok(None)
}

/// A version-resource block: `wLength, wValueLength, wType, szKey, padding, value,
/// padding, children`.
struct Block<'a> {
    key: String,
    value: &'a [u8],
    value_is_text: bool,
    children: &'a [u8],
}

fn align4(offset: usize) -> usize {
    (offset + 3) & !3
}

fn parse_block(data: &[u8]) -> Option<(Block<'_>, usize)> {
    let length = u16_at(data, 0)? as usize;
    let value_length = u16_at(data, 2)? as usize;
    let kind = u16_at(data, 4)?;
    if length < 6 || length > data.len() {
        return None;
    }
    let block = &data[..length];
    let mut cursor = 6;
    let mut key_units = Vec::new();
    while let Some(unit) = u16_at(block, cursor) {
        cursor += 2;
        if unit == 0 {
            break;
        }
        key_units.push(unit);
    }
    let value_start = align4(cursor).min(length);
    // Text values count UTF-16 units, binary values count bytes.
    let value_bytes = if kind == 1 {
        value_length * 2
    } else {
        value_length
    };
    let value_end = (value_start + value_bytes).min(length);
    let children_start = align4(value_end).min(length);
    Some((
        Block {
            key: String::from_utf16_lossy(&key_units),
            value: &block[value_start..value_end],
            value_is_text: kind == 1,
            children: &block[children_start..],
        },
        align4(length),
    ))
}

fn blocks(mut data: &[u8]) -> impl Iterator<Item = Block<'_>> {
    std::iter::from_fn(move || {
        let (block, next) = parse_block(data)?;
        data = data.get(next..).unwrap_or(&[]);
        Some(block)
    })
}

/// Parses a `VS_VERSIONINFO` resource; `None` when it holds none of the names.
pub fn parse_version_resource(data: &[u8]) -> Option<VersionInfo> {
    let (root, _) = parse_block(data)?;
    if root.key != "VS_VERSION_INFO" {
        return None;
    }
    let mut info = VersionInfo::default();
    for child in blocks(root.children).filter(|block| block.key == "StringFileInfo") {
        // The first string table (language) that names the program wins.
        for table in blocks(child.children) {
            for string in blocks(table.children) {
                let text = if string.value_is_text {
                    crate::scan::registry::hive::decode_utf16(string.value)
                } else {
                    String::from_utf8_lossy(string.value).into_owned()
                };
                let text: String = text.trim().chars().take(MAX_STRING_CHARS).collect();
                if text.is_empty() {
                    continue;
                }
                let slot = match string.key.as_str() {
                    "CompanyName" => &mut info.company_name,
                    "ProductName" => &mut info.product_name,
                    "OriginalFilename" => &mut info.original_filename,
                    "FileDescription" => &mut info.file_description,
                    "ProductVersion" => &mut info.product_version,
                    _ => continue,
                };
                slot.get_or_insert(text);
            }
            if !info.is_empty() {
                break;
            }
        }
    }
    (!info.is_empty()).then_some(info)
}

/// Version information of a whole file in memory (tests and fuzzing).
pub fn parse_pe_version_info(file: &[u8]) -> Result<Option<VersionInfo>, PeError> {
    let header = &file[..file.len().min(HEADER_BYTES)];
    let Some(layout) = resource_section(header)? else {
        return Ok(None);
    };
    let start = layout.file_offset as usize;
    let section = file
        .get(
            start
                ..start
                    .saturating_add(layout.file_size as usize)
                    .min(file.len()),
        )
        .ok_or(PeError::Damaged(
            "resource section past the end of the file",
        ))?;
    version_info_in_section(section, &layout)
}

/// Reads a program's version information: the headers, then the resource section only.
pub fn read_version_info(path: &Path) -> Result<Option<VersionInfo>, PeError> {
    let io = |error: std::io::Error| PeError::Io(error.to_string());
    let mut file = File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(PeError::Io("not a regular file".into()));
    }
    let mut header = Vec::with_capacity(HEADER_BYTES);
    (&mut file)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    let Some(layout) = resource_section(&header)? else {
        return Ok(None);
    };
    if layout.file_size > MAX_RESOURCE_BYTES {
        return Err(PeError::ResourcesTooLarge);
    }
    file.seek(SeekFrom::Start(u64::from(layout.file_offset)))
        .map_err(io)?;
    let mut section = Vec::new();
    file.take(u64::from(layout.file_size))
        .read_to_end(&mut section)
        .map_err(io)?;
    version_info_in_section(&section, &layout)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn utf16z(text: &str) -> Vec<u8> {
        text.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    /// A version block as Windows' resource compiler lays it out.
    fn block(key: &str, value: &[u8], text: bool, children: &[Vec<u8>]) -> Vec<u8> {
        let mut data = vec![0u8; 6];
        data.extend(utf16z(key));
        data.resize(data.len().next_multiple_of(4), 0);
        data.extend_from_slice(value);
        data.resize(data.len().next_multiple_of(4), 0);
        for child in children {
            data.extend_from_slice(child);
            data.resize(data.len().next_multiple_of(4), 0);
        }
        let length = data.len() as u16;
        let value_length = if text { value.len() / 2 } else { value.len() } as u16;
        data[0..2].copy_from_slice(&length.to_le_bytes());
        data[2..4].copy_from_slice(&value_length.to_le_bytes());
        data[4..6].copy_from_slice(&(text as u16).to_le_bytes());
        data
    }

    /// A minimal PE32+ program whose only section holds a version resource.
    pub(crate) fn pe_with_version(strings: &[(&str, &str)]) -> Vec<u8> {
        let entries: Vec<Vec<u8>> = strings
            .iter()
            .map(|(key, value)| block(key, &utf16z(value), true, &[]))
            .collect();
        let table = block("040904b0", &[], true, &entries);
        let string_file_info = block("StringFileInfo", &[], true, &[table]);
        let version = block("VS_VERSION_INFO", &[0u8; 52], false, &[string_file_info]);
        const SECTION_RVA: u32 = 0x1000;
        const FILE_OFFSET: usize = 0x400;
        // Resource tree: root (type 16) → name (id 1) → language (0x409) → data entry.
        let mut rsrc = Vec::new();
        let directory = |rsrc: &mut Vec<u8>, id: u32, target: u32| {
            rsrc.extend_from_slice(&[0u8; 12]);
            rsrc.extend_from_slice(&0u16.to_le_bytes());
            rsrc.extend_from_slice(&1u16.to_le_bytes());
            rsrc.extend_from_slice(&id.to_le_bytes());
            rsrc.extend_from_slice(&target.to_le_bytes());
        };
        directory(&mut rsrc, 16, 0x8000_0000 | 24);
        directory(&mut rsrc, 1, 0x8000_0000 | 48);
        directory(&mut rsrc, 0x409, 72);
        let data_rva = SECTION_RVA + 88;
        rsrc.extend_from_slice(&data_rva.to_le_bytes());
        rsrc.extend_from_slice(&(version.len() as u32).to_le_bytes());
        rsrc.extend_from_slice(&[0u8; 8]);
        rsrc.extend_from_slice(&version);
        let raw_size = rsrc.len().div_ceil(0x200) * 0x200;
        rsrc.resize(raw_size, 0);

        let mut file = vec![0u8; FILE_OFFSET];
        file[..2].copy_from_slice(b"MZ");
        file[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        let pe = 0x80;
        file[pe..pe + 4].copy_from_slice(b"PE\0\0");
        let coff = pe + 4;
        file[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
        file[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        file[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        let optional = coff + 20;
        file[optional..optional + 2].copy_from_slice(&0x20Bu16.to_le_bytes());
        file[optional + 108..optional + 112].copy_from_slice(&16u32.to_le_bytes());
        let directories = optional + 112;
        file[directories + 16..directories + 20].copy_from_slice(&SECTION_RVA.to_le_bytes());
        file[directories + 20..directories + 24].copy_from_slice(&(raw_size as u32).to_le_bytes());
        let section = optional + 240;
        file[section..section + 5].copy_from_slice(b".rsrc");
        file[section + 8..section + 12].copy_from_slice(&(raw_size as u32).to_le_bytes());
        file[section + 12..section + 16].copy_from_slice(&SECTION_RVA.to_le_bytes());
        file[section + 16..section + 20].copy_from_slice(&(raw_size as u32).to_le_bytes());
        file[section + 20..section + 24].copy_from_slice(&(FILE_OFFSET as u32).to_le_bytes());
        file.extend(rsrc);
        file
    }

    #[test]
    fn version_strings_of_a_renamed_program() {
        let file = pe_with_version(&[
            ("CompanyName", "Viber Media S.à r.l."),
            ("FileDescription", "Viber"),
            ("ProductName", "Viber"),
            ("OriginalFilename", "Viber.exe"),
            ("ProductVersion", "24.1.0.0"),
        ]);
        let info = parse_pe_version_info(&file)
            .expect("readable")
            .expect("has version info");
        assert_eq!(info.company_name.as_deref(), Some("Viber Media S.à r.l."));
        assert_eq!(info.product_name.as_deref(), Some("Viber"));
        assert_eq!(info.original_filename.as_deref(), Some("Viber.exe"));
        assert_eq!(info.product_version.as_deref(), Some("24.1.0.0"));
    }

    #[test]
    fn broken_programs_are_errors_not_panics() {
        assert_eq!(
            parse_pe_version_info(b"MZ"),
            Err(PeError::Damaged("DOS header"))
        );
        assert_eq!(parse_pe_version_info(b"\x7fELF"), Err(PeError::NotPe));
        let good = pe_with_version(&[("ProductName", "Viber")]);
        for cut in (0..good.len()).step_by(7) {
            let _ = parse_pe_version_info(&good[..cut]);
        }
        for position in 0..good.len() {
            let mut bytes = good.clone();
            bytes[position] ^= 0xA5;
            let _ = parse_pe_version_info(&bytes);
        }
    }
}
