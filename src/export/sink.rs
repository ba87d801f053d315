//! Where the flow log's lines go: standard output, or a file rotated by size. Lines are
//! buffered and written in batches; a line counts as written once its batch reached the
//! file, and as lost when the write failed.
//!
//! Rotation: before a line would take the file past `max_size`, `f.{N-1}` becomes `f.{N}`, …,
//! `f` becomes `f.1` (`N` = `max_files`; the oldest falls off), and a new `f` is started. A
//! line longer than `max_size` gets a file of its own. Only a regular file rotates: a FIFO or
//! a device (`/dev/stdout`) is written as it is.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes buffered before a write even while more lines are queued.
pub const BATCH_BYTES: usize = 64 * 1024;

/// A failed write: why, and how many lines it lost (and wrote, before it failed).
#[derive(Debug)]
pub struct WriteFailed {
    /// Lines written before the failure.
    pub written: u64,
    /// Lines lost (buffered lines whose write failed).
    pub lost: u64,
    /// The error.
    pub error: io::Error,
    /// What was being done: `open`, `write`, `rotate`.
    pub doing: &'static str,
}

/// The flow log's output.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    buf: Vec<u8>,
    pending: u64,
}

#[derive(Debug)]
enum Target {
    Stdout,
    File(LogFile),
}

/// A file rotated by size.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    max_size: u64,
    max_files: usize,
    /// Open file, its size (bytes written), and whether it rotates (a regular file).
    open: Option<(File, u64, bool)>,
}

impl WriteFailed {
    fn new(written: u64, lost: u64, error: io::Error, doing: &'static str) -> Self {
        Self {
            written,
            lost,
            error,
            doing,
        }
    }
}

impl Sink {
    /// Standard output.
    pub fn stdout() -> Self {
        Self::with(Target::Stdout)
    }

    /// The file `path`, appended to, rotated before it would pass `max_size` bytes, keeping
    /// `max_files` rotated files. Opened on the first line (a FIFO's open waits for a reader).
    pub fn file(path: &Path, max_size: u64, max_files: usize) -> Self {
        Self::with(Target::File(LogFile {
            path: path.to_path_buf(),
            max_size,
            max_files,
            open: None,
        }))
    }

    fn with(target: Target) -> Self {
        Self {
            target,
            buf: Vec::with_capacity(BATCH_BYTES),
            pending: 0,
        }
    }

    /// Lines buffered and not yet written.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Adds one line (ending in `\n`); writes the batch first when the file must rotate or
    /// the batch is full. Returns the lines written by those writes; on failure, the error
    /// says how many were written and how many lost (this line among them when it was).
    pub fn push(&mut self, line: &[u8]) -> Result<u64, WriteFailed> {
        let mut written = 0;
        if let Target::File(f) = &mut self.target {
            if let Err(error) = f.ensure_open() {
                // A closed file holds no batch (a failed write drops it): only this line.
                return Err(WriteFailed::new(0, 1, error, "open"));
            }
            if f.must_rotate(self.buf.len() as u64, line.len() as u64) {
                written = self.flush().map_err(|mut e| {
                    e.lost += 1; // this line goes with its batch
                    e
                })?;
                if let Err(error) = self.rotate() {
                    // The line still goes into the current file.
                    self.buffer(line);
                    return Err(WriteFailed::new(written, 0, error, "rotate"));
                }
            }
        }
        self.buffer(line);
        if self.buf.len() >= BATCH_BYTES {
            written += self.flush().map_err(|mut e| {
                e.written += written;
                e
            })?;
        }
        Ok(written)
    }

    fn buffer(&mut self, line: &[u8]) {
        self.buf.extend_from_slice(line);
        self.pending += 1;
    }

    fn rotate(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::File(f) => f.rotate(),
            Target::Stdout => Ok(()),
        }
    }

    /// Writes the buffered lines; returns how many were written. On failure they are lost
    /// (counted in the error) and the file is reopened on the next line.
    pub fn flush(&mut self) -> Result<u64, WriteFailed> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        let n = std::mem::take(&mut self.pending);
        let result = match &mut self.target {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&self.buf).and_then(|()| out.flush())
            }
            Target::File(f) => f.write(&self.buf),
        };
        self.buf.clear();
        match result {
            Ok(()) => Ok(n),
            Err(error) => Err(WriteFailed::new(0, n, error, "write")),
        }
    }
}

impl LogFile {
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.open.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)?;
            let meta = file.metadata()?;
            let regular = meta.is_file();
            let size = if regular { meta.len() } else { 0 };
            self.open = Some((file, size, regular));
        }
        Ok(())
    }

    /// Whether a line of `len` bytes after `buffered` bytes would take a non-empty regular
    /// file past `max_size`.
    fn must_rotate(&self, buffered: u64, len: u64) -> bool {
        match &self.open {
            Some((_, size, true)) => {
                let before = size.saturating_add(buffered);
                before > 0 && before.saturating_add(len) > self.max_size
            }
            _ => false,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.ensure_open()?;
        let Some((file, size, _)) = self.open.as_mut() else {
            return Err(io::Error::other("flow log file not open"));
        };
        match file.write_all(bytes) {
            Ok(()) => {
                *size = size.saturating_add(bytes.len() as u64);
                Ok(())
            }
            Err(e) => {
                self.open = None;
                Err(e)
            }
        }
    }

    /// `f.{N-1}` → `f.{N}`, …, `f` → `f.1`; with `max_files = 0`, `f` is removed. The next
    /// line opens a new `f`.
    fn rotate(&mut self) -> io::Result<()> {
        self.open = None;
        if self.max_files == 0 {
            return ignore_missing(std::fs::remove_file(&self.path));
        }
        for i in (1..self.max_files).rev() {
            ignore_missing(std::fs::rename(
                numbered(&self.path, i),
                numbered(&self.path, i + 1),
            ))?;
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))
    }
}

/// `path.n`.
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i:04},\"pad\":\"{}\"}}\n", "x".repeat(80)).into_bytes()
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_before_passing_max_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        let len = line(0).len();
        let max = (len * 10) as u64; // ten lines a file
        let mut sink = Sink::file(&path, max, 3);
        let mut written = 0;
        for i in 0..35 {
            written += sink.push(&line(i)).unwrap();
        }
        written += sink.flush().unwrap();
        assert_eq!(written, 35);
        // f.3 = lines 0..10, f.2 = 10..20, f.1 = 20..30, f = 30..35.
        let files: Vec<String> = [numbered(&path, 3), numbered(&path, 2), numbered(&path, 1)]
            .iter()
            .map(|p| read(p))
            .chain([read(&path)])
            .collect();
        for f in &files {
            assert!(f.len() as u64 <= max, "{} > {max}", f.len());
        }
        let all: String = files.concat();
        let expected: String = (0..35)
            .map(|i| String::from_utf8(line(i)).unwrap())
            .collect();
        // 4 files of at most 10 lines hold all 35 lines, in order.
        assert_eq!(all, expected);
        assert_eq!(files[3].lines().count(), 5);
        assert!(!numbered(&path, 4).exists());
        // Five more lines make a full file rotate: the oldest (lines 0..10) falls off.
        for i in 35..40 {
            sink.push(&line(i)).unwrap();
        }
        sink.push(&line(40)).unwrap();
        sink.flush().unwrap();
        assert!(read(&numbered(&path, 3)).starts_with("{\"n\":0010"));
        assert_eq!(read(&path), String::from_utf8(line(40)).unwrap());
        assert!(!numbered(&path, 4).exists());
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let len = line(0).len();
        std::fs::write(&path, line(0).repeat(9)).unwrap();
        let mut sink = Sink::file(&path, (len * 10) as u64, 1);
        sink.push(&line(1)).unwrap();
        sink.push(&line(2)).unwrap();
        sink.flush().unwrap();
        assert_eq!(read(&numbered(&path, 1)).lines().count(), 10);
        assert_eq!(read(&path), String::from_utf8(line(2)).unwrap());
    }

    #[test]
    fn max_files_zero_keeps_no_rotated_file_and_a_long_line_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut sink = Sink::file(&path, 50, 0);
        sink.push(&line(1)).unwrap(); // longer than 50 bytes: alone in its file
        sink.push(&line(2)).unwrap();
        sink.flush().unwrap();
        assert_eq!(read(&path), String::from_utf8(line(2)).unwrap());
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn a_failed_write_counts_its_batch_as_lost() {
        let full = Path::new("/dev/full"); // every write: ENOSPC
        if !full.exists() {
            eprintln!("skipped: no /dev/full on this system");
            return;
        }
        let mut sink = Sink::file(full, 1024, 3); // a device: never rotated
        for i in 0..3 {
            assert_eq!(sink.push(&line(i)).unwrap(), 0);
        }
        let e = sink.flush().unwrap_err();
        assert_eq!((e.written, e.lost, e.doing), (0, 3, "write"));
        assert_eq!(sink.pending(), 0);
        // The next batch is tried again (the file is reopened), and fails the same way.
        sink.push(&line(4)).unwrap();
        assert_eq!(sink.flush().unwrap_err().lost, 1);
    }

    #[test]
    fn a_failed_open_loses_the_line_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("f");
        let mut sink = Sink::file(&path, 1 << 20, 3);
        let e = sink.push(&line(1)).unwrap_err();
        assert_eq!((e.lost, e.doing), (1, "open"));
        assert_eq!(sink.pending(), 0);
        std::fs::create_dir(dir.path().join("missing-dir")).unwrap();
        sink.push(&line(2)).unwrap();
        assert_eq!(sink.flush().unwrap(), 1);
        assert_eq!(read(&path), String::from_utf8(line(2)).unwrap());
    }
}
