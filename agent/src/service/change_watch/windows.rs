//! The Windows change watcher's reader: `ReadDirectoryChangesW` on each fixed drive's
//! root with its whole subtree, through overlapped I/O so that the reading thread can
//! look at the stop flag between waits. One of the modules allowed `unsafe`: the
//! calls go through `windows-sys`, which no maintained safe wrapper covers for
//! overlapped directory reads.
//!
//! Between two reads Windows keeps recording into a buffer of the size of the first
//! read's (64 KiB here); when that overflows, the next read completes with no bytes,
//! which [`super::notify::parse_notify`] reports as a loss.

#![allow(unsafe_code)]

use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, ERROR_NOTIFY_ENUM_DIR, GetLastError,
    HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OVERLAPPED, FILE_LIST_DIRECTORY,
    FILE_NOTIFY_CHANGE_ATTRIBUTES, FILE_NOTIFY_CHANGE_CREATION, FILE_NOTIFY_CHANGE_DIR_NAME,
    FILE_NOTIFY_CHANGE_FILE_NAME, FILE_NOTIFY_CHANGE_LAST_WRITE, FILE_NOTIFY_CHANGE_SIZE,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, GetLongPathNameW, OPEN_EXISTING,
    ReadDirectoryChangesW,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Threading::{CreateEventW, ResetEvent, WaitForSingleObject};

use super::Named;
use super::notify::{NotifyBatch, parse_notify};

/// The buffer of each read, in `u32`s (DWORD-aligned, as the call wants): 64 KiB, the
/// most a read over the network would take and plenty for a local drive.
const BUFFER_WORDS: usize = 16 * 1024;
/// What counts as a change: an entry created, deleted or renamed (files and folders),
/// written, resized, or its attributes or times changed.
const CHANGES: u32 = FILE_NOTIFY_CHANGE_FILE_NAME
    | FILE_NOTIFY_CHANGE_DIR_NAME
    | FILE_NOTIFY_CHANGE_ATTRIBUTES
    | FILE_NOTIFY_CHANGE_SIZE
    | FILE_NOTIFY_CHANGE_LAST_WRITE
    | FILE_NOTIFY_CHANGE_CREATION;

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain([0]).collect()
}

/// A handle closed when dropped.
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by this module and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// One folder watched with its subtree: the open folder, its event, and the read in
/// flight.
pub struct DirectoryWatch {
    place: String,
    // Dropped in this order: the read is cancelled and waited for (in `Drop`) before
    // the folder and the event are closed and the buffer freed.
    folder: Owned,
    event: Owned,
    overlapped: Box<OVERLAPPED>,
    buffer: Box<[u32]>,
    pending: bool,
}

// SAFETY: kernel handles (the folder's, the event's, the copy of the event's in the
// OVERLAPPED) may be used from any thread; the watch is moved to its reading thread
// once and used there alone.
unsafe impl Send for DirectoryWatch {}

impl DirectoryWatch {
    /// Opens `place` (a drive's root, `C:\`) and starts the first read: changes from
    /// now on are recorded.
    pub fn open(place: &Path) -> std::io::Result<DirectoryWatch> {
        let name = wide(place);
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call; the
        // security attributes and template are null, which the call allows.
        let folder = unsafe {
            CreateFileW(
                name.as_ptr(),
                FILE_LIST_DIRECTORY,
                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if folder == INVALID_HANDLE_VALUE {
            return Err(std::io::Error::last_os_error());
        }
        let folder = Owned(folder);
        // SAFETY: a manual-reset event, unnamed, not signalled; null attributes.
        let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if event.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: OVERLAPPED is plain data; all zero is its documented initial state.
        let mut overlapped: Box<OVERLAPPED> = Box::new(unsafe { std::mem::zeroed() });
        overlapped.hEvent = event;
        let mut watch = DirectoryWatch {
            place: place.to_string_lossy().into_owned(),
            folder,
            event: Owned(event),
            overlapped,
            buffer: vec![0_u32; BUFFER_WORDS].into_boxed_slice(),
            pending: false,
        };
        watch.start_read()?;
        Ok(watch)
    }

    /// Starts the next read.
    fn start_read(&mut self) -> std::io::Result<()> {
        // SAFETY: this watch's own event; no read is in flight.
        unsafe { ResetEvent(self.event.0) };
        // SAFETY: the folder is open for overlapped reads; the buffer and the
        // OVERLAPPED are boxed and live until the read has completed or been cancelled
        // and waited for (`Drop`); the event is the OVERLAPPED's own.
        let started = unsafe {
            ReadDirectoryChangesW(
                self.folder.0,
                self.buffer.as_mut_ptr().cast(),
                (self.buffer.len() * 4) as u32,
                1,
                CHANGES,
                std::ptr::null_mut(),
                &mut *self.overlapped,
                None,
            )
        } != 0;
        if !started {
            // SAFETY: reads this thread's last error.
            let error = unsafe { GetLastError() };
            if error != ERROR_IO_PENDING {
                return Err(std::io::Error::from_raw_os_error(error as i32));
            }
        }
        self.pending = true;
        Ok(())
    }

    /// Waits up to `timeout` for the read in flight; the changes it brought (and the
    /// next read started), or `None` when none came in time.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<Option<NotifyBatch>> {
        if !self.pending {
            self.start_read()?;
        }
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: waits on this watch's own event.
        let waited = unsafe { WaitForSingleObject(self.event.0, millis) };
        if waited == WAIT_TIMEOUT {
            return Ok(None);
        }
        if waited != WAIT_OBJECT_0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut bytes = 0_u32;
        // SAFETY: the read in flight on this folder with this OVERLAPPED; not waiting.
        let done =
            unsafe { GetOverlappedResult(self.folder.0, &*self.overlapped, &mut bytes, 0) } != 0;
        let batch = if done {
            self.pending = false;
            let length = (bytes as usize).min(self.buffer.len() * 4);
            // SAFETY: the completed read wrote `bytes` bytes at the buffer's start; a
            // u32 slice may be read as bytes.
            let filled =
                unsafe { std::slice::from_raw_parts(self.buffer.as_ptr().cast::<u8>(), length) };
            parse_notify(&self.place, filled)
        } else {
            // SAFETY: reads this thread's last error.
            match unsafe { GetLastError() } {
                ERROR_IO_INCOMPLETE => return Ok(None),
                ERROR_NOTIFY_ENUM_DIR => {
                    self.pending = false;
                    NotifyBatch {
                        folders: Vec::new(),
                        lost: true,
                    }
                }
                error => {
                    self.pending = false;
                    return Err(std::io::Error::from_raw_os_error(error as i32));
                }
            }
        };
        // Changes from here to the next read are kept by Windows in the folder's own
        // buffer; an error starting it shows at the next wait.
        let _ = self.start_read();
        Ok(Some(batch))
    }
}

impl Drop for DirectoryWatch {
    fn drop(&mut self) {
        if self.pending {
            let mut bytes = 0_u32;
            // SAFETY: cancels this watch's own read, then waits for it to end, so the
            // kernel no longer writes to the buffer or the OVERLAPPED freed next.
            unsafe {
                CancelIoEx(self.folder.0, &*self.overlapped);
                GetOverlappedResult(self.folder.0, &*self.overlapped, &mut bytes, 1);
            }
        }
    }
}

/// What a changed folder's path names now: itself, or, where a part of it is a short
/// (8.3) name, its long name, which the walks use; a folder that is gone is gone.
pub fn name_folder(path: &str) -> Named {
    if !path.contains('~') {
        return Named::Path(path.to_string());
    }
    let name = wide(Path::new(path));
    let mut long = vec![0_u16; 1024];
    loop {
        // SAFETY: `name` is NUL-terminated; `long` is valid for the length passed.
        let length =
            unsafe { GetLongPathNameW(name.as_ptr(), long.as_mut_ptr(), long.len() as u32) }
                as usize;
        if length == 0 {
            return if Path::new(path).exists() {
                Named::Unknown
            } else {
                Named::Gone
            };
        }
        if length < long.len() {
            return match String::from_utf16(&long[..length]) {
                Ok(long) => Named::Path(long),
                Err(_) => Named::Unknown,
            };
        }
        if long.len() >= 32 * 1024 {
            return Named::Unknown;
        }
        long.resize(length + 1, 0);
    }
}
