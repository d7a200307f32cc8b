//! The EVE writer: NDJSON lines, one record per line, shared by all workers.
//!
//! Workers serialise records into their own buffer ([`EveBuffer`]) and hand whole buffers to the
//! shared [`EveSink`] at batch boundaries, so the lock is taken once per batch, not per record,
//! and lines from different workers never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use ward_model::eve::Event;

use crate::config::EveOutput;

/// Flush a worker's buffer into the sink once it holds this much (bounds worker memory).
const WORKER_BUFFER_FLUSH: usize = 256 * 1024;

/// The destination of every worker's records.
#[derive(Clone)]
pub struct EveSink {
    inner: Arc<Mutex<SinkInner>>,
}

struct SinkInner {
    writer: Option<Box<dyn Write + Send>>,
    records: u64,
    error: Option<io::Error>,
}

impl EveSink {
    pub fn open(output: &EveOutput) -> io::Result<EveSink> {
        let writer: Option<Box<dyn Write + Send>> = match output {
            EveOutput::Stdout => Some(Box::new(BufWriter::with_capacity(1 << 16, io::stdout()))),
            EveOutput::File(path) => Some(Box::new(BufWriter::with_capacity(1 << 16, open_append(path)?))),
            EveOutput::Null => None,
        };
        Ok(Self::from_parts(writer))
    }

    /// A sink that writes into any writer (tests collect records in memory this way).
    pub fn to_writer(writer: Box<dyn Write + Send>) -> EveSink {
        Self::from_parts(Some(writer))
    }

    fn from_parts(writer: Option<Box<dyn Write + Send>>) -> EveSink {
        EveSink { inner: Arc::new(Mutex::new(SinkInner { writer, records: 0, error: None })) }
    }

    /// Appends whole lines. A write error is kept and reported by [`EveSink::finish`]; records
    /// after it are dropped rather than stopping packet processing.
    pub fn append(&self, lines: &[u8], records: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.records += records;
        if inner.error.is_some() {
            return;
        }
        if let Some(writer) = inner.writer.as_mut() {
            if let Err(err) = writer.write_all(lines) {
                inner.error = Some(err);
            }
        }
    }

    pub fn records(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).records
    }

    /// Flushes and reports the first write error, if any.
    pub fn finish(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(err) = inner.error.take() {
            return Err(err);
        }
        if let Some(writer) = inner.writer.as_mut() {
            writer.flush()?;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|err| {
        io::Error::new(err.kind(), format!("cannot open eve output {}: {err}", path.display()))
    })
}

/// A worker's private line buffer.
pub struct EveBuffer {
    sink: EveSink,
    buf: Vec<u8>,
    records: u64,
}

impl EveBuffer {
    pub fn new(sink: EveSink) -> Self {
        EveBuffer { sink, buf: Vec::with_capacity(WORKER_BUFFER_FLUSH + 4096), records: 0 }
    }

    pub fn write(&mut self, event: &Event) {
        // Serialising our own types into a Vec cannot fail (no maps with non-string keys).
        if serde_json::to_writer(&mut self.buf, event).is_ok() {
            self.buf.push(b'\n');
            self.records += 1;
        }
        if self.buf.len() >= WORKER_BUFFER_FLUSH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.sink.append(&self.buf, self.records);
            self.buf.clear();
            self.records = 0;
        }
    }
}

impl Drop for EveBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}
