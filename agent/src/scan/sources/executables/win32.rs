//! The Windows calls the executable inventory makes through `windows-sys` (one of the
//! two modules allowed `unsafe`; no maintained safe wrapper covers them):
//!
//! - the drives by letter (`GetLogicalDrives`, `GetDriveTypeW`) with their file systems
//!   and serial numbers (`GetVolumeInformationW`, one call for both; the serial names
//!   the drives the service's change watcher watched): sysinfo lists volumes by their
//!   GUID names, which Wine does not give for drives mapped to folders;
//! - a file's or folder's attributes, size and time in one call that opens nothing
//!   (`GetFileAttributesExW`), where `std::fs::symlink_metadata` opens a handle, which
//!   on a school PC passes every antivirus filter, and under Wine costs three trips to
//!   the Wine server;
//! - an open file's type and length (`GetFileType`, `GetFileSizeEx`), where
//!   `File::metadata` also asks for the volume's serial number: under Wine nine trips
//!   to its server and its mount manager, for each of the journal and the cache.

#![allow(unsafe_code)]

use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Storage::FileSystem::{
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT, FILE_TYPE_DISK, GetDriveTypeW,
    GetFileAttributesExW, GetFileExInfoStandard, GetFileSizeEx, GetFileType, GetLogicalDrives,
    GetVolumeInformationW, WIN32_FILE_ATTRIBUTE_DATA,
};

use super::Facts;
use super::places::Volume;

/// `GetDriveTypeW`'s answers (WinBase.h).
const DRIVE_REMOVABLE: u32 = 2;
const DRIVE_FIXED: u32 = 3;
/// 1601-01-01 to 1970-01-01 in the 100 ns ticks of a `FILETIME`.
const TICKS_BEFORE_1970: i64 = 116_444_736_000_000_000;

fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
    text.encode_wide().chain([0]).collect()
}

/// The drive letters in use, a bit per letter (`A:` the lowest).
pub fn drive_letters() -> u32 {
    // SAFETY: takes nothing, returns a bit mask of the drive letters in use.
    unsafe { GetLogicalDrives() }
}

/// The fixed and removable drives among the `letters` in use (under Wine, not the one
/// that maps the Linux system's root).
pub fn volumes_of(letters: u32) -> Vec<Volume> {
    let mut volumes = Vec::new();
    for index in 0..26u8 {
        if letters & (1 << index) == 0 {
            continue;
        }
        let root = format!("{}:\\", char::from(b'A' + index));
        let name = wide(root.as_ref());
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call.
        let kind = unsafe { GetDriveTypeW(name.as_ptr()) };
        if kind != DRIVE_FIXED && kind != DRIVE_REMOVABLE {
            continue;
        }
        // Under Wine, the Linux system's root (`Z:`) is not a drive of the Windows
        // system; asking for its file system also costs Wine a try to open the disk.
        if super::places::is_unix_root_through_wine(Path::new(&root)) {
            continue;
        }
        let mut file_system = [0u16; 64];
        let mut serial = 0_u32;
        // SAFETY: `name` as above; `serial` and the file system's buffer are valid for
        // what is written to them (the buffer for the length passed), and the outputs
        // not wanted are null, which the call allows.
        let answered = unsafe {
            GetVolumeInformationW(
                name.as_ptr(),
                std::ptr::null_mut(),
                0,
                &raw mut serial,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                file_system.as_mut_ptr(),
                file_system.len() as u32,
            )
        } != 0;
        let length = file_system
            .iter()
            .position(|unit| *unit == 0)
            .unwrap_or(file_system.len());
        volumes.push(Volume {
            mount_point: PathBuf::from(root),
            file_system: if answered {
                String::from_utf16_lossy(&file_system[..length])
            } else {
                String::new()
            },
            removable: kind == DRIVE_REMOVABLE,
            serial: answered.then_some(u64::from(serial)),
        });
    }
    volumes
}

/// A file's or folder's facts without opening it; a link (reparse point) is not
/// followed. Paths the call refuses (longer than `MAX_PATH`) go through std.
pub fn facts(path: &Path) -> std::io::Result<Facts> {
    let name = wide(path.as_os_str());
    let mut data = WIN32_FILE_ATTRIBUTE_DATA {
        dwFileAttributes: 0,
        ftCreationTime: Default::default(),
        ftLastAccessTime: Default::default(),
        ftLastWriteTime: Default::default(),
        nFileSizeHigh: 0,
        nFileSizeLow: 0,
    };
    // SAFETY: `name` is a NUL-terminated UTF-16 string and `data` the structure this
    // information level writes; both outlive the call.
    let answered = unsafe {
        GetFileAttributesExW(name.as_ptr(), GetFileExInfoStandard, (&raw mut data).cast())
    } != 0;
    if !answered {
        return std::fs::symlink_metadata(path).map(|metadata| Facts::of(&metadata));
    }
    let link = data.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;
    let folder = data.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0;
    let ticks = (i64::from(data.ftLastWriteTime.dwHighDateTime) << 32)
        | i64::from(data.ftLastWriteTime.dwLowDateTime);
    Ok(Facts {
        is_dir: folder && !link,
        is_file: !folder && !link,
        size: (u64::from(data.nFileSizeHigh) << 32) | u64::from(data.nFileSizeLow),
        modified_ns: (ticks - TICKS_BEFORE_1970).saturating_mul(100),
        executable: true,
    })
}

/// The length of an open file that is a file on a disk (not a device, a pipe or a
/// console), asked of its handle.
pub fn disk_file_length(file: &std::fs::File) -> std::io::Result<u64> {
    use std::os::windows::io::AsRawHandle as _;
    let handle = file.as_raw_handle();
    // SAFETY: `handle` is the open file's, valid while `file` is borrowed.
    if unsafe { GetFileType(handle) } != FILE_TYPE_DISK {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut length = 0_i64;
    // SAFETY: as above; `length` is valid for the 64-bit write.
    if unsafe { GetFileSizeEx(handle, &raw mut length) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    u64::try_from(length).map_err(|_| std::io::Error::other("negative file length"))
}
