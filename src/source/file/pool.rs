//! The parallel decode of one input: a reader thread cuts it into batches of lines, worker
//! threads (one per core, at most four) decode them, and the caller gets the items back in
//! input order, with a byte budget bounding what is in flight whatever the input's size.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use super::line::{Line, LineError, MAX_LINE, decode_one, read_line};

/// Reads every line of one input, calling `on_item` with each decoded response (or a line
/// that cannot count) or error, in input order, until the input ends or `on_item` breaks.
/// Blank lines are skipped. Returns the number of lines read.
///
/// Lines are decoded on worker threads (one per core, at most four) in batches while
/// `on_item` runs on the calling thread; bounded queues keep memory independent of the input's
/// size.
pub fn for_each_response(
    path: &Path,
    reader: &mut (dyn BufRead + Send),
    mut on_item: impl FnMut(u64, Result<Line, LineError>) -> ControlFlow<()>,
) -> io::Result<u64> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if workers < 2 {
        let mut buf = Vec::with_capacity(8 * 1024);
        let mut n = 0u64;
        while let Some(fits) = read_line(reader, &mut buf, MAX_LINE)? {
            n += 1;
            let Some(item) = decode_one(path, n, fits.then_some(buf.as_slice())) else {
                continue;
            };
            if on_item(n, item).is_break() {
                break;
            }
        }
        return Ok(n);
    }
    let budget = Arc::new(Budget::default());
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = mpsc::sync_channel::<Batch>(workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<(u64, usize, Decoded)>(workers * 2);
        let reader_budget = Arc::clone(&budget);
        let reading = scope.spawn(move || read_batches(reader, &work_tx, &reader_budget));
        for _ in 0..workers {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let next = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|r| r.recv().map_err(|_| ()));
                    let Ok(batch) = next else { return };
                    let items = batch
                        .lines
                        .iter()
                        .filter_map(|(n, line)| {
                            decode_one(path, *n, line.as_deref()).map(|item| (*n, item))
                        })
                        .collect();
                    if tx.send((batch.seq, batch.bytes, items)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(work_rx);
        drop(done_tx);
        // Batches come back in any order; hand their items out in input order.
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        'all: for (seq, bytes, items) in done_rx.iter() {
            pending.insert(seq, (bytes, items));
            while let Some((bytes, items)) = pending.remove(&next) {
                next += 1;
                for (n, item) in items {
                    if on_item(n, item).is_break() {
                        break 'all;
                    }
                }
                budget.release(bytes);
            }
        }
        // Dropping the receiver stops the workers, which stops the reader.
        drop(done_rx);
        budget.stop();
        reading
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("reader thread panicked")))
    })
}

/// Lines handed to a decoding worker: (line number, the line or `None` when too long).
struct Batch {
    seq: u64,
    /// The bytes of its lines, charged to the [`Budget`] until its items are handed out.
    bytes: usize,
    lines: Vec<(u64, Option<Vec<u8>>)>,
}

/// Bytes of lines read but not yet handed out. Batches come back in any order, so without a
/// budget a slow batch would let the others pile up behind it; with it, memory stays about
/// [`IN_FLIGHT_BYTES`] plus one line, whatever the input.
#[derive(Default)]
struct Budget {
    state: Mutex<(usize, bool)>,
    freed: std::sync::Condvar,
}

/// The most bytes of lines in flight between the reader and the consumer.
const IN_FLIGHT_BYTES: usize = 16 << 20;

impl Budget {
    /// Waits until `bytes` more fit (always true when nothing is in flight); `false` when
    /// the consumer stopped.
    fn acquire(&self, bytes: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.1 && s.0 > 0 && s.0 + bytes > IN_FLIGHT_BYTES {
            s = self.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.0 += bytes;
        !s.1
    }

    fn release(&self, bytes: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_sub(bytes);
        self.freed.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.freed.notify_all();
    }
}

/// A worker's results for one batch.
type Decoded = Vec<(u64, Result<Line, LineError>)>;

/// Lines per batch: large enough to amortise the hand-over, small enough to stay streaming.
const BATCH_LINES: usize = 256;
/// Bytes per batch: a batch of long lines is handed over early.
const BATCH_BYTES: usize = 1 << 20;

fn read_batches(
    reader: &mut (dyn BufRead + Send),
    tx: &mpsc::SyncSender<Batch>,
    budget: &Budget,
) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut n = 0u64;
    let mut seq = 0u64;
    let mut bytes = 0usize;
    let mut lines = Vec::with_capacity(BATCH_LINES);
    let mut send = |lines: Vec<(u64, Option<Vec<u8>>)>, bytes: usize| {
        if !budget.acquire(bytes) {
            return false;
        }
        let batch = Batch { seq, bytes, lines };
        seq += 1;
        tx.send(batch).is_ok()
    };
    while let Some(fits) = read_line(reader, &mut buf, MAX_LINE)? {
        n += 1;
        let line = fits.then(|| buf.clone());
        bytes += line.as_ref().map_or(0, Vec::len);
        lines.push((n, line));
        if lines.len() == BATCH_LINES || bytes >= BATCH_BYTES {
            let full = std::mem::replace(&mut lines, Vec::with_capacity(BATCH_LINES));
            if !send(full, std::mem::take(&mut bytes)) {
                return Ok(n); // the consumer stopped early
            }
        }
        if buf.capacity() > BATCH_BYTES {
            // A long line leaves a big buffer behind: give it back.
            buf = Vec::with_capacity(8 * 1024);
        }
    }
    if !lines.is_empty() {
        send(lines, bytes);
    }
    Ok(n)
}
