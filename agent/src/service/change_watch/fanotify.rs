//! The Linux reader behind the change watcher: fanotify's system calls (one of the
//! modules allowed `unsafe`: the `libc` calls have no maintained safe wrapper that
//! reports directory file handles). The events' bytes are read by the pure
//! [`super::events`] parser; a folder's handle is turned into its path with
//! `open_by_handle_at` and `/proc/self/fd`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io::Read as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::Duration;

use super::events::{EventBatch, FolderHandle, MAX_HANDLE_BYTES, parse_events};
use super::{Named, WatchError};

/// What changes a folder's entries or a file in it: entries created, deleted or
/// renamed (files and folders), a file written and closed, or its times or mode
/// changed. Plain writes without a close (logs) are not asked for.
const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;
/// A read buffer's size: many events at once.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

struct Mount {
    fsid: [u8; 8],
    /// Any open folder of the file system, for `open_by_handle_at`.
    folder: File,
}

pub struct Fanotify {
    events: File,
    mounts: Vec<Mount>,
    devices: Vec<u64>,
}

impl Fanotify {
    /// A fanotify descriptor with a mark on the file system of each of `places`.
    pub fn watch(places: &[PathBuf]) -> Result<Fanotify, WatchError> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_REPORT_DFID_NAME
            | libc::FAN_NONBLOCK
            | libc::FAN_CLOEXEC;
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_CLOEXEC) as u32) };
        if fd < 0 {
            return Err(WatchError::Unsupported(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        // SAFETY: a descriptor just opened and owned by nothing else.
        let events = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut watcher = Fanotify {
            events,
            mounts: Vec::new(),
            devices: Vec::new(),
        };
        let mut refused = Vec::new();
        for place in places {
            match watcher.mark(place) {
                Ok(()) => {}
                Err(error) => refused.push(format!("{}: {error}", place.display())),
            }
        }
        if watcher.mounts.is_empty() {
            return Err(WatchError::NothingWatched(refused.join("; ")));
        }
        for refusal in refused {
            tracing::info!("not watched for changes: {refusal}");
        }
        Ok(watcher)
    }

    fn mark(&mut self, place: &std::path::Path) -> std::io::Result<()> {
        let device = std::fs::metadata(place)?.dev();
        if self.devices.contains(&device) {
            return Ok(());
        }
        let folder = File::open(place)?;
        let path = CString::new(place.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: a valid descriptor and a NUL-terminated path; the result is checked.
        let marked = unsafe {
            libc::fanotify_mark(
                self.events.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                MASK,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        if marked != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `statfs` is plain data, filled by the call, whose result is checked.
        let mut status: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(folder.as_raw_fd(), &mut status) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fsid_t` is two 32-bit integers, eight bytes, as the events carry it.
        let fsid: [u8; 8] = unsafe { std::mem::transmute(status.f_fsid) };
        self.mounts.push(Mount { fsid, folder });
        self.devices.push(device);
        Ok(())
    }

    /// The watched file systems (`st_dev`).
    pub fn devices(&self) -> Vec<u64> {
        self.devices.clone()
    }

    /// Waits up to `timeout` for events; whether some are there.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut poll = libc::pollfd {
            fd: self.events.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid `pollfd`; the result is checked.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) };
        ready > 0
    }

    /// The events queued now, read into `buffer`; `None` when there are none.
    pub fn read_batch(&self, buffer: &mut [u8]) -> std::io::Result<Option<EventBatch>> {
        let read = loop {
            match (&self.events).read(buffer) {
                Ok(read) => break read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) => return Err(error),
            }
        };
        if read == 0 {
            return Ok(None);
        }
        let batch = parse_events(&buffer[..read]);
        for descriptor in &batch.descriptors {
            // SAFETY: the kernel opened it for this process with the event; nothing else
            // owns it.
            drop(unsafe { OwnedFd::from_raw_fd(*descriptor) });
        }
        Ok(Some(batch))
    }

    /// What a folder an event named is now: its path, gone, or unknown. Its own
    /// file system's mount is tried first, then the others (a btrfs subvolume
    /// reports its own id but opens through its file system's mount).
    pub fn path_of(&self, folder: &FolderHandle) -> Named {
        if folder.handle.len() > MAX_HANDLE_BYTES {
            return Named::Unknown;
        }
        if let Some(own) = self.mounts.iter().find(|mount| mount.fsid == folder.fsid) {
            return open_by_handle(own, folder);
        }
        // Another file system's mount says "gone" of a handle it does not know: only a
        // path it finds counts.
        self.mounts
            .iter()
            .map(|mount| open_by_handle(mount, folder))
            .find(|named| matches!(named, Named::Path(_)))
            .unwrap_or(Named::Unknown)
    }
}

/// The folder's path through one mount.
fn open_by_handle(mount: &Mount, folder: &FolderHandle) -> Named {
    // `struct file_handle`: handle_bytes (u32), handle_type (i32), the bytes; held
    // in u32s for its alignment.
    let mut raw = vec![0_u32; 2 + MAX_HANDLE_BYTES / 4];
    raw[0] = folder.handle.len() as u32;
    raw[1] = folder.handle_type as u32;
    for (word, chunk) in raw[2..].iter_mut().zip(folder.handle.chunks(4)) {
        let mut bytes = [0_u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_ne_bytes(bytes);
    }
    // SAFETY: a valid descriptor and a `file_handle` whose `handle_bytes` fits the
    // buffer; the result is checked.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.folder.as_raw_fd(),
            raw.as_mut_ptr().cast::<libc::file_handle>(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ESTALE) | Some(libc::ENOENT) => Named::Gone,
            _ => Named::Unknown,
        };
    }
    // SAFETY: a descriptor just opened and owned by nothing else.
    let opened = unsafe { OwnedFd::from_raw_fd(fd) };
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd())) else {
        return Named::Unknown;
    };
    let path = path.to_string_lossy();
    if path.ends_with(" (deleted)") {
        Named::Gone
    } else if path.starts_with('/') {
        Named::Path(path.into_owned())
    } else {
        Named::Unknown
    }
}
