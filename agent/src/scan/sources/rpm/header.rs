//! RPM package headers, as stored in every rpm database format: a count of index
//! entries, the length of the data area, the index (tag, type, offset, count; all
//! big-endian) and the data. Only the few tags the inventory needs are read.

/// What the inventory needs from a header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmPackage {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: String,
    pub vendor: String,
}

impl RpmPackage {
    /// `[epoch:]version-release`, as `rpm -q` shows it.
    pub fn full_version(&self) -> String {
        let mut text = String::new();
        if let Some(epoch) = self.epoch {
            text.push_str(&format!("{epoch}:"));
        }
        text.push_str(&self.version);
        if !self.release.is_empty() {
            text.push('-');
            text.push_str(&self.release);
        }
        text
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header is shorter than its own index says ({0} bytes)")]
    Truncated(usize),
    #[error("header index has an absurd size ({entries} entries, {data} data bytes)")]
    Absurd { entries: u32, data: u32 },
    #[error("header has no package name")]
    NoName,
}

pub const TAG_NAME: u32 = 1000;
pub const TAG_VERSION: u32 = 1001;
pub const TAG_RELEASE: u32 = 1002;
pub const TAG_EPOCH: u32 = 1003;
pub const TAG_VENDOR: u32 = 1011;
pub const TAG_ARCH: u32 = 1022;

pub const TYPE_INT32: u32 = 4;
pub const TYPE_STRING: u32 = 6;
pub const TYPE_STRING_ARRAY: u32 = 8;
pub const TYPE_I18NSTRING: u32 = 9;

/// The magic that starts a header inside an `.rpm` file (not inside a database).
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// rpm's own limits on a header.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 256 * 1024 * 1024;

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// Reads the package identity from a header blob.
pub fn parse_header(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    let blob = blob.strip_prefix(&HEADER_MAGIC[..]).unwrap_or(blob);
    let entries = be32(blob, 0).ok_or(HeaderError::Truncated(blob.len()))?;
    let data_length = be32(blob, 4).ok_or(HeaderError::Truncated(blob.len()))?;
    if entries > MAX_ENTRIES || data_length > MAX_DATA {
        return Err(HeaderError::Absurd {
            entries,
            data: data_length,
        });
    }
    let index_end = 8 + entries as usize * 16;
    let data = blob
        .get(index_end..index_end + data_length as usize)
        .ok_or(HeaderError::Truncated(blob.len()))?;

    let mut package = RpmPackage::default();
    for entry in 0..entries as usize {
        let at = 8 + entry * 16;
        let (Some(tag), Some(kind), Some(offset)) =
            (be32(blob, at), be32(blob, at + 4), be32(blob, at + 8))
        else {
            return Err(HeaderError::Truncated(blob.len()));
        };
        let offset = offset as usize;
        let string = || -> Option<String> {
            if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
                return None;
            }
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|byte| *byte == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        match tag {
            TAG_NAME => package.name = string().unwrap_or_default(),
            TAG_VERSION => package.version = string().unwrap_or_default(),
            TAG_RELEASE => package.release = string().unwrap_or_default(),
            TAG_VENDOR => package.vendor = string().unwrap_or_default(),
            TAG_ARCH => package.arch = string().unwrap_or_default(),
            TAG_EPOCH if kind == TYPE_INT32 => package.epoch = be32(data, offset),
            _ => {}
        }
    }
    if package.name.is_empty() {
        return Err(HeaderError::NoName);
    }
    Ok(package)
}

/// Builds a header blob holding the given string and int32 tags: the inverse of
/// [`parse_header`], used by tests and fixture builders.
pub fn build_header(strings: &[(u32, &str)], int32s: &[(u32, u32)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    let entries = strings.len() + int32s.len();
    for (tag, value) in int32s {
        while data.len() % 4 != 0 {
            data.push(0);
        }
        index.push((*tag, TYPE_INT32, data.len() as u32, 1u32));
        data.extend_from_slice(&value.to_be_bytes());
    }
    for (tag, value) in strings {
        index.push((*tag, TYPE_STRING, data.len() as u32, 1u32));
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    let mut blob = Vec::with_capacity(8 + entries * 16 + data.len());
    blob.extend_from_slice(&(entries as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    for (tag, kind, offset, count) in index {
        for value in [tag, kind, offset, count] {
            blob.extend_from_slice(&value.to_be_bytes());
        }
    }
    blob.extend_from_slice(&data);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_header_reads_back() {
        let blob = build_header(
            &[
                (TAG_NAME, "telegram-desktop"),
                (TAG_VERSION, "4.6.5"),
                (TAG_RELEASE, "alt1"),
                (TAG_ARCH, "x86_64"),
                (TAG_VENDOR, "ALT Linux Team"),
            ],
            &[(TAG_EPOCH, 2)],
        );
        let package = parse_header(&blob).expect("parses");
        assert_eq!(package.name, "telegram-desktop");
        assert_eq!(package.full_version(), "2:4.6.5-alt1");
        assert_eq!(package.vendor, "ALT Linux Team");
        let mut with_magic = HEADER_MAGIC.to_vec();
        with_magic.extend_from_slice(&blob);
        assert_eq!(parse_header(&with_magic).expect("parses"), package);
    }

    #[test]
    fn damaged_headers_are_errors() {
        let blob = build_header(&[(TAG_NAME, "viber")], &[]);
        assert!(matches!(
            parse_header(&blob[..blob.len() - 3]),
            Err(HeaderError::Truncated(_))
        ));
        assert!(matches!(
            parse_header(&[0xff; 8]),
            Err(HeaderError::Absurd { .. })
        ));
        assert_eq!(
            parse_header(&build_header(&[(TAG_VERSION, "1")], &[])),
            Err(HeaderError::NoName)
        );
        assert!(parse_header(&[]).is_err());
    }
}
