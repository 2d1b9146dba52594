//! Bounded reads. Everything the agent reads from a PC is read through these helpers,
//! so a huge, endless or hostile file (a status file symlinked to `/dev/zero`) costs at
//! most the stated number of bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Reads at most `limit` bytes; returns the bytes and whether the file was longer.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<(Vec<u8>, bool)> {
    let file = File::open(path)?;
    let length = regular_file_length(&file)?;
    read_opened_bounded(file, length, limit)
}

/// The length of an opened file; an error when it is not a regular file.
pub fn regular_file_length(file: &File) -> io::Result<u64> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(metadata.len())
}

/// Reads at most `limit` bytes of an opened `file` of `length` bytes; returns the
/// bytes and whether the file was longer.
pub fn read_opened_bounded(file: File, length: u64, limit: u64) -> io::Result<(Vec<u8>, bool)> {
    // Sized from the start: a large file is read in one pass, not grown into.
    let mut bytes = Vec::with_capacity(length.min(limit) as usize + 1);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    let truncated = bytes.len() as u64 > limit;
    bytes.truncate(limit as usize);
    Ok((bytes, truncated))
}

/// The first bytes of a file, for recognising its format.
pub fn read_header(path: &Path, length: usize) -> io::Result<Vec<u8>> {
    let mut header = vec![0; length];
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < length {
        match file.read(&mut header[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    header.truncate(filled);
    Ok(header)
}

/// A text file read with a size bound; invalid UTF-8 is replaced, and said.
pub fn read_text_lossy(path: &Path, limit: u64) -> io::Result<LossyText> {
    let (bytes, truncated) = read_bounded(path, limit)?;
    let (text, replaced) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(error) => (String::from_utf8_lossy(error.as_bytes()).into_owned(), true),
    };
    Ok(LossyText {
        text,
        truncated,
        replaced_invalid_utf8: replaced,
    })
}

#[derive(Debug)]
pub struct LossyText {
    pub text: String,
    pub truncated: bool,
    pub replaced_invalid_utf8: bool,
}
