//! Bounded reads of the files the configuration names (the config file itself, rule files,
//! policy files, TLS files): regular files only, never more than a limit held in memory.

use std::path::Path;

/// Reads a UTF-8 text file of at most `max` bytes. Only regular files (or symlinks to them)
/// are opened, so a FIFO cannot block a reload and a device cannot feed it forever; never more
/// than `max + 1` bytes are held, even from a file still growing. A larger file is an error
/// that names the limit.
pub fn read_bounded(path: &Path, max: usize, what: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut buf)?;
    if buf.len() > max {
        return Err(std::io::Error::other(format!(
            "{what} is larger than {} MiB",
            max >> 20
        )));
    }
    String::from_utf8(buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}
