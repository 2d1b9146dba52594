//! Windows' change records (`FILE_NOTIFY_INFORMATION`, as `ReadDirectoryChangesW`
//! fills its buffer), read from bytes: pure, the same on every OS, bounded, and
//! fuzzed. Only what the change watcher needs is kept: the folder each change
//! happened in, as a path under the watched folder, and whether changes were lost.
//!
//! Layout (`winnt.h`, little-endian): each record is `NextEntryOffset: u32` (bytes to
//! the next record, 0 for the last), `Action: u32`, `FileNameLength: u32` (bytes), then
//! the entry's name in UTF-16, relative to the watched folder (`Data\sub\tg.exe`). An
//! empty buffer after a successful read means Windows' own buffer overflowed: changes
//! were lost.

/// The most records one buffer is read for (a 64 KiB buffer holds at most 4,096).
const MAX_RECORDS: usize = 16_384;
const HEADER_BYTES: usize = 12;

/// What one completed read said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NotifyBatch {
    /// The folders changes happened in, as paths under the watched folder (repeats
    /// kept, in order).
    pub folders: Vec<String>,
    /// Changes were lost: Windows' buffer overflowed, or a record could not be read (a
    /// change without its folder is one the journal would miss).
    pub lost: bool,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The changes in the first `bytes.len()` bytes a read of the watched folder `place`
/// (`C:\`, as the inventory's walks spell it) returned.
pub fn parse_notify(place: &str, bytes: &[u8]) -> NotifyBatch {
    let mut batch = NotifyBatch::default();
    if bytes.is_empty() {
        batch.lost = true;
        return batch;
    }
    let mut at = 0;
    for _ in 0..MAX_RECORDS {
        let Some(folder) = record_folder(place, bytes, at) else {
            batch.lost = true;
            return batch;
        };
        batch.folders.push(folder);
        // The record was read whole, so its offset field is there.
        let next = u32_at(bytes, at).unwrap_or(0) as usize;
        if next == 0 {
            return batch;
        }
        match at.checked_add(next) {
            Some(following) if following < bytes.len() => at = following,
            _ => {
                batch.lost = true;
                return batch;
            }
        }
    }
    batch.lost = true;
    batch
}

/// The folder of the record at `at`: the watched folder joined with the entry name's
/// folder part. `None` when the record runs past the buffer or its name is not
/// UTF-16 that names a path below the watched folder.
fn record_folder(place: &str, bytes: &[u8], at: usize) -> Option<String> {
    let name_bytes = u32_at(bytes, at + 8)? as usize;
    let start = at.checked_add(HEADER_BYTES)?;
    let name = bytes.get(start..start.checked_add(name_bytes)?)?;
    if name.is_empty() || name.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = name
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let name = String::from_utf16(&units).ok()?.replace('/', "\\");
    let parent = match name.rfind('\\') {
        Some(at) => &name[..at],
        None => "",
    };
    if name.contains('\0')
        || parent
            .split('\\')
            .any(|part| matches!(part, "." | "..") || (part.is_empty() && !parent.is_empty()))
    {
        return None;
    }
    Some(join(place, parent))
}

/// `folder` under `place`, spelled as `Path::join` spells it on Windows.
fn join(place: &str, folder: &str) -> String {
    if folder.is_empty() {
        place.to_string()
    } else if place.ends_with('\\') {
        format!("{place}{folder}")
    } else {
        format!("{place}\\{folder}")
    }
}

/// The bytes of `records` (action, name) as Windows lays them out (tests, fuzz seeds).
pub fn encode_notify(records: &[(u32, &str)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (index, (action, name)) in records.iter().enumerate() {
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let length = (HEADER_BYTES + name.len()).next_multiple_of(4);
        let next = if index + 1 == records.len() {
            0
        } else {
            length
        };
        bytes.extend((next as u32).to_le_bytes());
        bytes.extend(action.to_le_bytes());
        bytes.extend((name.len() as u32).to_le_bytes());
        bytes.extend(&name);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_names_the_folder_its_entry_lies_in() {
        let bytes = encode_notify(&[
            (1, "Data\\Tools\\tg.exe"),
            (3, "top.exe"),
            (2, "Data/old"),
            (4, "Игры\\Telegram\\Telegram.exe"),
        ]);
        let batch = parse_notify("C:\\", &bytes);
        assert!(!batch.lost);
        assert_eq!(
            batch.folders,
            ["C:\\Data\\Tools", "C:\\", "C:\\Data", "C:\\Игры\\Telegram"]
        );
        assert_eq!(
            parse_notify("D:\\Share", &encode_notify(&[(1, "a\\b.exe")])).folders,
            ["D:\\Share\\a"]
        );
    }

    #[test]
    fn an_empty_or_damaged_buffer_is_a_loss() {
        assert!(parse_notify("C:\\", &[]).lost);
        let bytes = encode_notify(&[(1, "Data\\a.exe"), (1, "Data\\b.exe")]);
        // Cut inside the second record: the first stands, the loss is said.
        let cut = parse_notify("C:\\", &bytes[..bytes.len() - 6]);
        assert_eq!(cut.folders, ["C:\\Data"]);
        assert!(cut.lost);
        // A name that is not UTF-16 (a lone surrogate), one that climbs out, an odd
        // length, an offset past the end.
        let mut surrogate = encode_notify(&[(1, "ab\\c")]);
        surrogate[12..14].copy_from_slice(&0xD800_u16.to_le_bytes());
        assert!(parse_notify("C:\\", &surrogate).lost);
        assert!(parse_notify("C:\\", &encode_notify(&[(1, "..\\x.exe")])).lost);
        assert!(parse_notify("C:\\", &encode_notify(&[(1, "a\\\\x.exe")])).lost);
        let mut odd = encode_notify(&[(1, "ab\\c")]);
        odd[8] = 7;
        assert!(parse_notify("C:\\", &odd).lost);
        let mut past = encode_notify(&[(1, "a\\b")]);
        past[0] = 200;
        assert_eq!(parse_notify("C:\\", &past).folders, ["C:\\a"]);
        assert!(parse_notify("C:\\", &past).lost);
    }
}
