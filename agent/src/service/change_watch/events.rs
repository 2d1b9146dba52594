//! The kernel's fanotify event records, read from bytes: pure, the same on every OS,
//! bounded, and fuzzed. Only what the change watcher needs is kept: which folder an
//! event happened in (the directory file handle of a `FAN_REPORT_DIR_FID` record),
//! whether the kernel's queue overflowed, and any file descriptor the kernel opened
//! with the event (so the reader closes it).
//!
//! Layout (`linux/fanotify.h`, in the machine's byte order): each event is a
//! `fanotify_event_metadata` (`event_len: u32`, `vers: u8`, `reserved: u8`,
//! `metadata_len: u16`, `mask: u64`, `fd: i32`, `pid: i32`) followed, up to
//! `event_len`, by information records: a header (`info_type: u8`, `pad: u8`,
//! `len: u16`, `len` counting the header) and, for the file-identifier types, the file
//! system id (8 bytes) and a `file_handle` (`handle_bytes: u32`, `handle_type: i32`,
//! then `handle_bytes` bytes), then, for `DFID_NAME`, the entry's name.

/// The metadata version this parser reads (`FANOTIFY_METADATA_VERSION`).
pub const METADATA_VERSION: u8 = 3;
/// `FAN_Q_OVERFLOW`: the kernel's queue overflowed; events were lost.
pub const QUEUE_OVERFLOW: u64 = 0x0000_4000;
/// The largest file handle the kernel gives (`MAX_HANDLE_SZ`).
pub const MAX_HANDLE_BYTES: usize = 128;
const METADATA_BYTES: usize = 24;
const INFO_HEADER_BYTES: usize = 4;
const INFO_TYPE_FID: u8 = 1;
const INFO_TYPE_DFID_NAME: u8 = 2;
const INFO_TYPE_DFID: u8 = 3;

/// A folder as the kernel names it: the file system's id and the folder's handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FolderHandle {
    pub fsid: [u8; 8],
    pub handle_type: i32,
    pub handle: Vec<u8>,
}

/// What one read of the fanotify descriptor said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventBatch {
    /// The folders events happened in, in order (repeats kept).
    pub folders: Vec<FolderHandle>,
    /// Events were lost: the queue overflowed, or a record could not be read (an event
    /// without its folder is a change the journal would miss).
    pub lost: bool,
    /// File descriptors the kernel opened with events, for the reader to close.
    pub descriptors: Vec<i32>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The events in `bytes`, as one `read` of a fanotify descriptor returned them.
pub fn parse_events(bytes: &[u8]) -> EventBatch {
    let mut batch = EventBatch::default();
    let mut at = 0;
    while at < bytes.len() {
        match parse_event(&bytes[at..], &mut batch) {
            Some(length) => at += length,
            None => {
                batch.lost = true;
                break;
            }
        }
    }
    batch
}

/// One event at the start of `bytes`; its length, or `None` when it cannot be read.
fn parse_event(bytes: &[u8], batch: &mut EventBatch) -> Option<usize> {
    let event_len = u32_at(bytes, 0)? as usize;
    let version = *bytes.get(4)?;
    let metadata_len = u16_at(bytes, 6)? as usize;
    let mask = u64_at(bytes, 8)?;
    let fd = i32::from_ne_bytes(bytes.get(16..20)?.try_into().ok()?);
    if version != METADATA_VERSION
        || metadata_len < METADATA_BYTES
        || event_len < metadata_len
        || event_len > bytes.len()
    {
        return None;
    }
    if fd >= 0 {
        batch.descriptors.push(fd);
    }
    if mask & QUEUE_OVERFLOW != 0 {
        batch.lost = true;
        return Some(event_len);
    }
    let mut folder = None;
    let mut record = metadata_len;
    while record < event_len {
        let info = &bytes[record..event_len];
        let info_type = *info.first()?;
        let len = u16_at(info, 2)? as usize;
        if len < INFO_HEADER_BYTES || len > info.len() {
            return None;
        }
        if matches!(
            info_type,
            INFO_TYPE_FID | INFO_TYPE_DFID_NAME | INFO_TYPE_DFID
        ) && folder.is_none()
        {
            folder = Some(parse_handle(&info[INFO_HEADER_BYTES..len])?);
        }
        record += len;
    }
    match folder {
        Some(folder) => batch.folders.push(folder),
        // A change without its folder: the journal cannot say where it was.
        None => batch.lost = true,
    }
    Some(event_len)
}

/// The file system id and `file_handle` of a file-identifier record's body.
fn parse_handle(body: &[u8]) -> Option<FolderHandle> {
    let fsid: [u8; 8] = body.get(0..8)?.try_into().ok()?;
    let handle_bytes = u32_at(body, 8)? as usize;
    let handle_type = i32::from_ne_bytes(body.get(12..16)?.try_into().ok()?);
    if handle_bytes == 0 || handle_bytes > MAX_HANDLE_BYTES {
        return None;
    }
    let handle = body.get(16..16 + handle_bytes)?.to_vec();
    Some(FolderHandle {
        fsid,
        handle_type,
        handle,
    })
}

/// Bytes of one event as the kernel lays it out (tests and fuzzing).
pub fn encode_event(mask: u64, fd: i32, records: &[(u8, Option<&FolderHandle>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (info_type, folder, name) in records {
        let mut record = vec![*info_type, 0, 0, 0];
        if let Some(folder) = folder {
            record.extend_from_slice(&folder.fsid);
            record.extend_from_slice(&(folder.handle.len() as u32).to_ne_bytes());
            record.extend_from_slice(&folder.handle_type.to_ne_bytes());
            record.extend_from_slice(&folder.handle);
        }
        record.extend_from_slice(name);
        while record.len() % 4 != 0 {
            record.push(0);
        }
        let len = record.len() as u16;
        record[2..4].copy_from_slice(&len.to_ne_bytes());
        body.extend(record);
    }
    let event_len = (METADATA_BYTES + body.len()) as u32;
    let mut event = Vec::new();
    event.extend_from_slice(&event_len.to_ne_bytes());
    event.push(METADATA_VERSION);
    event.push(0);
    event.extend_from_slice(&(METADATA_BYTES as u16).to_ne_bytes());
    event.extend_from_slice(&mask.to_ne_bytes());
    event.extend_from_slice(&fd.to_ne_bytes());
    event.extend_from_slice(&4242_i32.to_ne_bytes());
    event.extend(body);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(byte: u8) -> FolderHandle {
        FolderHandle {
            fsid: [byte; 8],
            handle_type: 1,
            handle: vec![byte; 8],
        }
    }

    const CREATE: u64 = 0x100;

    #[test]
    fn events_name_their_folders_in_order() {
        let mut bytes = encode_event(
            CREATE,
            -1,
            &[(INFO_TYPE_DFID_NAME, Some(&folder(1)), b"a.exe\0")],
        );
        bytes.extend(encode_event(
            CREATE,
            -1,
            &[(INFO_TYPE_DFID, Some(&folder(2)), b"")],
        ));
        let batch = parse_events(&bytes);
        assert_eq!(batch.folders, vec![folder(1), folder(2)]);
        assert!(!batch.lost);
        assert!(batch.descriptors.is_empty());
    }

    #[test]
    fn an_overflow_or_an_event_without_its_folder_is_a_loss() {
        let overflow = encode_event(QUEUE_OVERFLOW, -1, &[]);
        assert!(parse_events(&overflow).lost);
        // A record of another type (a pidfd) and no folder.
        let no_folder = encode_event(CREATE, -1, &[(4, None, &[0, 0, 0, 0])]);
        let batch = parse_events(&no_folder);
        assert!(batch.lost && batch.folders.is_empty());
    }

    #[test]
    fn descriptors_the_kernel_opened_are_handed_back() {
        let bytes = encode_event(CREATE, 7, &[(INFO_TYPE_DFID, Some(&folder(3)), b"")]);
        assert_eq!(parse_events(&bytes).descriptors, vec![7]);
    }

    #[test]
    fn cut_or_damaged_events_stop_the_batch_as_a_loss() {
        let mut bytes = encode_event(CREATE, -1, &[(INFO_TYPE_DFID, Some(&folder(1)), b"")]);
        let second = encode_event(CREATE, -1, &[(INFO_TYPE_DFID, Some(&folder(2)), b"")]);
        bytes.extend_from_slice(&second[..second.len() - 3]);
        let batch = parse_events(&bytes);
        assert_eq!((batch.folders, batch.lost), (vec![folder(1)], true));
        let mut other_version =
            encode_event(CREATE, -1, &[(INFO_TYPE_DFID, Some(&folder(1)), b"")]);
        other_version[4] = 9;
        assert!(parse_events(&other_version).lost);
        let mut huge_handle = encode_event(CREATE, -1, &[(INFO_TYPE_DFID, Some(&folder(1)), b"")]);
        huge_handle[METADATA_BYTES + 12..METADATA_BYTES + 16]
            .copy_from_slice(&4096_u32.to_ne_bytes());
        assert!(parse_events(&huge_handle).lost);
        let mut zero_record = encode_event(CREATE, -1, &[(INFO_TYPE_DFID, Some(&folder(1)), b"")]);
        zero_record[METADATA_BYTES + 2..METADATA_BYTES + 4].copy_from_slice(&0_u16.to_ne_bytes());
        assert!(parse_events(&zero_record).lost);
        assert_eq!(parse_events(&[]), EventBatch::default());
    }
}
