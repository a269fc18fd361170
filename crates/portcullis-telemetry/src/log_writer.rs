//! The background log writer: log lines are appended to a shared buffer and a writer thread
//! writes the buffer out in batches. Under load the thread sleeps for [`FLUSH_INTERVAL`]
//! between batches, so appending a line is a short lock and a copy, never a thread wake-up
//! (a channel that wakes its reader per line cost several microseconds of CPU per request
//! in context switches). When the gateway is idle the first line wakes the thread at once,
//! so log lines still appear without delay.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pause between two batches while lines keep arriving.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Buffered bytes beyond which new lines are dropped (and counted) rather than blocking a
/// request behind a stuck log pipe.
pub const MAX_BUFFERED_BYTES: usize = 32 * 1024 * 1024;

/// A cheap handle that appends whole lines to the shared buffer.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread when dropped, after writing every line still buffered.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    /// The writer thread is waiting on `wake` (only then does a line need to notify it).
    writer_waiting: bool,
    closed: bool,
    dropped_lines: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the writer thread over `out` (stderr in the gateway, any writer in tests).
pub fn spawn(out: impl Write + Send + 'static) -> (LogWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("portcullis-log".into())
        .spawn(move || write_batches(&worker, out))
        .expect("spawning the log writer thread");
    (
        LogWriter {
            shared: shared.clone(),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    )
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut state = shared.lock();
            while state.buffer.is_empty() && !state.closed {
                state.writer_waiting = true;
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.writer_waiting = false;
            std::mem::swap(&mut batch, &mut state.buffer);
            (std::mem::take(&mut state.dropped_lines), state.closed)
        };
        if dropped > 0 {
            let _ = writeln!(
                out,
                "WARN portcullis::log: {dropped} log lines dropped: the log output could not keep up"
            );
        }
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        if closed {
            if shared.lock().buffer.is_empty() {
                return;
            }
            continue;
        }
        std::thread::sleep(FLUSH_INTERVAL);
    }
}

impl LogWriter {
    /// Appends one complete line (or several); never blocks on the output.
    pub fn append(&self, line: &[u8]) {
        let mut state = self.shared.lock();
        if state.buffer.len() + line.len() > MAX_BUFFERED_BYTES {
            state.dropped_lines += 1;
            return;
        }
        state.buffer.extend_from_slice(line);
        if state.writer_waiting {
            state.writer_waiting = false;
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

impl Write for &LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        writer.append(format!("t{t} line {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let mine: Vec<_> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let expected: Vec<_> = (0..1000).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(mine, expected, "lines of thread {t} out of order or lost");
        }
    }

    #[test]
    fn an_idle_writer_writes_a_new_line_promptly() {
        let sink = Sink::default();
        let (writer, _guard) = spawn(sink.clone());
        std::thread::sleep(Duration::from_millis(50));
        writer.append(b"hello\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while sink.0.lock().unwrap().as_slice() != b"hello\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "line not written within 2 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn lines_beyond_the_bound_are_dropped_and_reported() {
        struct Stuck(Arc<std::sync::Barrier>, Sink);
        impl Write for Stuck {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if buf.starts_with(b"first") {
                    self.0.wait();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let sink = Sink::default();
        let (writer, guard) = spawn(Stuck(barrier.clone(), sink.clone()));
        writer.append(b"first\n");
        // Wait until the writer thread holds "first" (the buffer is then empty again).
        while !writer.shared.lock().buffer.is_empty() {
            std::thread::yield_now();
        }
        let big = vec![b'x'; MAX_BUFFERED_BYTES / 2];
        writer.append(&big);
        writer.append(&big);
        writer.append(&big);
        barrier.wait();
        drop(guard);
        let text = sink.0.lock().unwrap();
        let warning = String::from_utf8_lossy(&text[..text.len().min(200)]).to_string();
        assert!(text.starts_with(b"first\n"), "{warning}");
        assert!(
            String::from_utf8_lossy(&text).contains("1 log lines dropped"),
            "no drop warning"
        );
        assert_eq!(
            text.len(),
            6 + 2 * big.len()
                + "WARN portcullis::log: 1 log lines dropped: the log output could not keep up\n"
                    .len()
        );
    }
}
