//! SSSD's cache of domain users (`/var/lib/sss/db/cache_<domain>.ldb`), read from the
//! file without a running daemon: a TDB file (a header, a hash table, then records of
//! key and data one after another) whose records are LDB messages. Each user's entry
//! (`DN=NAME=<name>,CN=USERS,CN=<domain>,CN=SYSDB`) gives `name`, `uidNumber` and
//! `homeDirectory`.
//!
//! [`parse_sssd_cache`] is pure and bounded: the records are walked in file order and
//! checked (a record that runs past the file or has an unknown magic ends the walk
//! with an error, keeping the users read before it); a TDB of an unknown version, or
//! LDB messages packed in a format this reader does not know, are errors.

/// A domain user as SSSD's cache has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedUser {
    /// As SSSD stores it: `ivanov@school.local` (qualified) in current versions.
    pub name: String,
    pub domain: String,
    pub uid: Option<u32>,
    pub home: String,
}

/// Why (part of) a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SssdCacheError {
    #[error("not a TDB file")]
    NotTdb,
    #[error("TDB version {0:#x} is not known")]
    UnknownTdbVersion(u32),
    #[error("corrupted: {0} at offset {1}")]
    Corrupted(&'static str, usize),
    #[error("LDB packing format {0:#x} is not known")]
    UnknownPacking(u32),
}

/// The users read, and the problem that ended the walk early, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheContents {
    pub users: Vec<CachedUser>,
    pub error: Option<SssdCacheError>,
}

const TDB_MAGIC_FOOD: &[u8] = b"TDB file\n";
const TDB_VERSION: u32 = 0x2601_1967 + 6;
const TDB_HEADER_BYTES: usize = 168;
const RECORD_HEADER_BYTES: usize = 24;
const TDB_MAGIC: u32 = 0x2601_1999;
const TDB_FREE_MAGIC: u32 = !TDB_MAGIC;
const TDB_DEAD_MAGIC: u32 = 0xFEE1_DEAD;
const TDB_RECOVERY_MAGIC: u32 = 0xF53B_C0E7;
const TDB_RECOVERY_INVALID_MAGIC: u32 = 0;
const LDB_PACKING_FORMAT_NODN: u32 = 0x2601_1966;
const LDB_PACKING_FORMAT: u32 = 0x2601_1967;
/// The most users taken from one cache.
const MAX_USERS: usize = 200_000;

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    })
}

/// Reads the users of an SSSD cache file.
pub fn parse_sssd_cache(bytes: &[u8]) -> Result<CacheContents, SssdCacheError> {
    if !bytes.starts_with(TDB_MAGIC_FOOD) || bytes.len() < TDB_HEADER_BYTES {
        return Err(SssdCacheError::NotTdb);
    }
    let version = u32_at(bytes, 32, false).ok_or(SssdCacheError::NotTdb)?;
    let big_endian = match version {
        TDB_VERSION => false,
        other if other.swap_bytes() == TDB_VERSION => true,
        other => return Err(SssdCacheError::UnknownTdbVersion(other)),
    };
    let hash_size = u32_at(bytes, 36, big_endian).ok_or(SssdCacheError::NotTdb)? as usize;
    let mut offset = hash_size
        .checked_add(1)
        .and_then(|entries| entries.checked_mul(4))
        .and_then(|table| table.checked_add(TDB_HEADER_BYTES))
        .filter(|start| *start <= bytes.len())
        .ok_or(SssdCacheError::Corrupted(
            "hash table larger than the file",
            36,
        ))?;
    let mut contents = CacheContents::default();
    while offset + RECORD_HEADER_BYTES <= bytes.len() {
        let field = |index: usize| u32_at(bytes, offset + index * 4, big_endian).unwrap_or(0);
        let (record_length, key_length, data_length, magic) = (
            field(1) as usize,
            field(2) as usize,
            field(3) as usize,
            field(5),
        );
        let body = offset + RECORD_HEADER_BYTES;
        let Some(end) = body
            .checked_add(record_length)
            .filter(|end| *end <= bytes.len())
        else {
            contents.error = Some(SssdCacheError::Corrupted(
                "record runs past the end",
                offset,
            ));
            break;
        };
        match magic {
            TDB_MAGIC => {
                if key_length.saturating_add(data_length) > record_length {
                    contents.error =
                        Some(SssdCacheError::Corrupted("record lengths disagree", offset));
                    break;
                }
                let key = &bytes[body..body + key_length];
                let data = &bytes[body + key_length..body + key_length + data_length];
                match user_of(key, data) {
                    Ok(Some(user)) if contents.users.len() < MAX_USERS => contents.users.push(user),
                    Ok(_) => {}
                    Err(error) => {
                        contents.error = Some(error);
                        break;
                    }
                }
            }
            TDB_FREE_MAGIC | TDB_DEAD_MAGIC | TDB_RECOVERY_MAGIC | TDB_RECOVERY_INVALID_MAGIC => {}
            _ => {
                contents.error = Some(SssdCacheError::Corrupted("unknown record", offset));
                break;
            }
        }
        // An empty recovery record would not advance: stop rather than loop.
        if end == offset {
            break;
        }
        offset = end;
    }
    Ok(contents)
}

/// A user from one record, when the record is a user's entry.
fn user_of(key: &[u8], data: &[u8]) -> Result<Option<CachedUser>, SssdCacheError> {
    let key = String::from_utf8_lossy(key);
    let key = key.trim_end_matches('\0');
    let Some(dn) = key.strip_prefix("DN=") else {
        return Ok(None);
    };
    let upper = dn.to_ascii_uppercase();
    let Some(users_at) = upper.find(",CN=USERS,CN=") else {
        return Ok(None);
    };
    let domain_part = &dn[users_at + ",CN=USERS,CN=".len()..];
    let domain = domain_part
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let attributes = unpack_ldb_message(data)?;
    let value = |name: &str| {
        attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let (Some(name), Some(home)) = (value("name"), value("homeDirectory")) else {
        return Ok(None);
    };
    if name.is_empty() || !home.starts_with('/') {
        return Ok(None);
    }
    Ok(Some(CachedUser {
        name,
        domain,
        uid: value("uidNumber").and_then(|uid| uid.parse().ok()),
        home,
    }))
}

/// The first value of each attribute of an LDB message packed in format 1.
fn unpack_ldb_message(data: &[u8]) -> Result<Vec<(String, String)>, SssdCacheError> {
    let corrupted = || SssdCacheError::Corrupted("LDB message cut short", 0);
    let format = u32_at(data, 0, false).ok_or_else(corrupted)?;
    let count = u32_at(data, 4, false).ok_or_else(corrupted)? as usize;
    let mut at = 8;
    let text = |at: &mut usize| -> Result<String, SssdCacheError> {
        let rest = data.get(*at..).ok_or_else(corrupted)?;
        let end = rest
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(corrupted)?;
        *at += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    match format {
        LDB_PACKING_FORMAT => {
            text(&mut at)?;
        }
        LDB_PACKING_FORMAT_NODN => {}
        other => return Err(SssdCacheError::UnknownPacking(other)),
    }
    let mut attributes = Vec::new();
    for _ in 0..count.min(4096) {
        let name = text(&mut at)?;
        let values = u32_at(data, at, false).ok_or_else(corrupted)? as usize;
        at += 4;
        let mut first = None;
        for _ in 0..values {
            let length = u32_at(data, at, false).ok_or_else(corrupted)? as usize;
            at += 4;
            let value = data
                .get(at..at.checked_add(length).ok_or_else(corrupted)?)
                .ok_or_else(corrupted)?;
            first.get_or_insert_with(|| String::from_utf8_lossy(value).into_owned());
            at += length + 1;
        }
        if let Some(first) = first {
            attributes.push((name, first));
        }
    }
    Ok(attributes)
}

/// Test and fuzz support: a cache file as SSSD's TDB writes it (little-endian, format 1
/// messages), holding the given users, a free record, and an unrelated entry.
pub fn build_sssd_cache(users: &[CachedUser]) -> Vec<u8> {
    let mut file = TDB_MAGIC_FOOD.to_vec();
    file.resize(32, 0);
    let hash_size: u32 = 7;
    file.extend(TDB_VERSION.to_le_bytes());
    file.extend(hash_size.to_le_bytes());
    file.resize(TDB_HEADER_BYTES + (hash_size as usize + 1) * 4, 0);
    let mut record = |key: &[u8], data: &[u8], magic: u32| {
        let padding = 8;
        let length = (key.len() + data.len() + padding) as u32;
        for word in [0, length, key.len() as u32, data.len() as u32, 0, magic] {
            file.extend(word.to_le_bytes());
        }
        file.extend_from_slice(key);
        file.extend_from_slice(data);
        file.extend(std::iter::repeat_n(0u8, padding));
    };
    record(
        b"DN=@BASEINFO\0",
        &message("@BASEINFO", &[("sequenceNumber", "5")]),
        TDB_MAGIC,
    );
    record(b"", &[0u8; 16], TDB_FREE_MAGIC);
    for user in users {
        let dn = format!("name={},cn=users,cn={},cn=sysdb", user.name, user.domain);
        let key = format!("DN={}\0", dn.to_ascii_uppercase());
        let uid = user.uid.map(|uid| uid.to_string()).unwrap_or_default();
        let mut attributes = vec![
            ("objectCategory", "user"),
            ("name", user.name.as_str()),
            ("homeDirectory", user.home.as_str()),
        ];
        if user.uid.is_some() {
            attributes.push(("uidNumber", uid.as_str()));
        }
        record(key.as_bytes(), &message(&dn, &attributes), TDB_MAGIC);
    }
    file
}

fn message(dn: &str, attributes: &[(&str, &str)]) -> Vec<u8> {
    let mut data = LDB_PACKING_FORMAT.to_le_bytes().to_vec();
    data.extend((attributes.len() as u32).to_le_bytes());
    data.extend(dn.as_bytes());
    data.push(0);
    for (name, value) in attributes {
        data.extend(name.as_bytes());
        data.push(0);
        data.extend(1u32.to_le_bytes());
        data.extend((value.len() as u32).to_le_bytes());
        data.extend(value.as_bytes());
        data.push(0);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivanov() -> CachedUser {
        CachedUser {
            name: "ivanov@school.local".into(),
            domain: "school.local".into(),
            uid: Some(1_851_000_123),
            home: "/home/school.local/ivanov".into(),
        }
    }

    #[test]
    fn users_are_read_from_a_cache() {
        let contents = parse_sssd_cache(&build_sssd_cache(&[ivanov()])).expect("reads");
        assert_eq!(contents.error, None);
        assert_eq!(contents.users.len(), 1);
        let user = &contents.users[0];
        assert_eq!(user.name, "ivanov@school.local");
        assert_eq!(user.domain.to_ascii_lowercase(), "school.local");
        assert_eq!(user.uid, Some(1_851_000_123));
        assert_eq!(user.home, "/home/school.local/ivanov");
    }

    #[test]
    fn bad_caches_are_errors() {
        assert_eq!(
            parse_sssd_cache(b"SQLite format 3\0"),
            Err(SssdCacheError::NotTdb)
        );
        let mut future = build_sssd_cache(&[ivanov()]);
        future[32..36].copy_from_slice(&0x2601_1999u32.to_le_bytes());
        assert!(matches!(
            parse_sssd_cache(&future),
            Err(SssdCacheError::UnknownTdbVersion(_))
        ));
        // Cut inside the user's record: the walk ends with an error, nothing is made up.
        let whole = build_sssd_cache(&[ivanov()]);
        let contents = parse_sssd_cache(&whole[..whole.len() - 20]).expect("the header reads");
        assert!(contents.users.is_empty());
        assert!(matches!(
            contents.error,
            Some(SssdCacheError::Corrupted(..))
        ));
        // Messages packed in a format this reader does not know.
        let mut repacked = whole.clone();
        let at = repacked
            .windows(4)
            .rposition(|window| window == LDB_PACKING_FORMAT.to_le_bytes())
            .unwrap();
        repacked[at..at + 4].copy_from_slice(&0x2601_1968u32.to_le_bytes());
        let contents = parse_sssd_cache(&repacked).unwrap();
        assert_eq!(
            contents.error,
            Some(SssdCacheError::UnknownPacking(0x2601_1968))
        );
    }
}
