//! The on-disk spool: records that Kafka cannot take right now (the broker is unreachable and
//! librdkafka's bounded local queue is full, or librdkafka gave up on a record) wait here, in
//! order, until [`crate::delivery`] hands them back to Kafka.
//!
//! Layout of the spool folder:
//! - `<seq>.spool`: segment files (`seq` is a 20-digit decimal, oldest first). Appends go to the
//!   newest segment; a new one starts when it reaches `segment_bytes`. Reads come from the
//!   oldest; a segment is deleted as soon as it is drained.
//! - `cursor`: `<seq> <byte offset>`, where draining stands; written after every drained segment,
//!   every second while draining, and at shutdown, so a restart resumes there. After a crash the
//!   cursor may lag by up to a second of drained records: those are sent again (at-least-once).
//!
//! Each record is one frame: `u32 LE body length | u32 LE CRC-32 (IEEE) of the body | body`,
//! body = `u8 version (1) | u8 kind code ([`Kind::code`]) | i64 LE timestamp ms | u16 LE topic length | topic |
//! i32 LE key length (-1: no key) | key | u16 LE header count | per header: u16 LE name length |
//! name | i32 LE value length (-1: no value) | value | payload (the rest of the body)`.
//! A frame cut short by a crash at the tail of the newest segment is dropped (with a warning)
//! when the spool is opened; a CRC mismatch anywhere else is reported as corruption.
//!
//! The total size of the segment files is bounded by `max_bytes`: a full spool refuses appends
//! with [`SpoolError::Full`] and the caller pauses reading (backpressure) rather than dropping.
//!
//! Durability is [`FsyncPolicy`]: every append reaches the operating system with one `write`
//! (a crash of the producer loses nothing already appended); `fsync` decides what survives a
//! crash of the machine.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, Headers, OwnedHeaders};
use tweet_pipeline_common::Kind;

use frame::{decode, encode, read_frame};

mod frame;

/// How often [`FsyncPolicy::Interval`] syncs, and how often the drain cursor is saved.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// File name of the drain cursor.
const CURSOR_FILE: &str = "cursor";
/// File name of the lock that keeps a second producer out of the folder.
const LOCK_FILE: &str = "lock";
/// File name suffix of segments.
const SEGMENT_SUFFIX: &str = ".spool";

/// When appended records are forced to disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// After every record: survives a machine crash, costs one disk flush per record.
    Always,
    /// At most once a second, at each segment switch and at shutdown: a machine crash loses at
    /// most the last second of spooled records (the default).
    Interval,
    /// Never explicitly: the operating system writes back when it likes.
    Never,
}

/// Where the spool lives and how big it may grow.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// The spool folder (created if missing).
    pub dir: PathBuf,
    /// Bound on the total size of the segment files, in bytes.
    pub max_bytes: u64,
    /// A new segment starts when the newest reaches this many bytes.
    pub segment_bytes: u64,
    /// When appends are forced to disk.
    pub fsync: FsyncPolicy,
}

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The record does not fit under `max_bytes`; drain first (backpressure).
    #[error("the spool is full ({used_bytes} of {max_bytes} bytes used)")]
    Full {
        /// Bytes in the segment files now.
        used_bytes: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// A file operation failed.
    #[error("spool I/O failed on {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another process holds the spool folder's lock.
    #[error("the spool folder {} is in use by another process", dir.display())]
    InUse {
        /// The folder.
        dir: PathBuf,
    },
    /// A segment holds bytes that are not a valid frame (not at the tail of the newest one).
    #[error("spool segment {} is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A record as it is written to the spool (borrowed from a `BaseRecord` or a failed message).
#[derive(Debug)]
pub struct RecordRef<'a, H> {
    /// The topic it was meant for.
    pub topic: &'a str,
    /// Its kind (stored as [`Kind::code`]).
    pub kind: Kind,
    /// The record timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record headers.
    pub headers: Option<&'a H>,
    /// The record value.
    pub payload: &'a [u8],
}

/// A record read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledRecord {
    /// The topic it is meant for.
    pub topic: String,
    /// Its kind; [`Kind::Unknown`] for a code this build does not know.
    pub kind: Kind,
    /// The record timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record value.
    pub payload: Vec<u8>,
    /// Size of the frame on disk, bytes.
    frame_bytes: u64,
}

impl SpooledRecord {
    /// An owned copy of a borrowed record.
    pub fn from_ref<H: Headers>(record: &RecordRef<'_, H>) -> Self {
        Self {
            topic: record.topic.to_owned(),
            kind: record.kind,
            timestamp_ms: record.timestamp_ms,
            key: record.key.map(<[u8]>::to_vec),
            headers: record
                .headers
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            payload: record.payload.to_vec(),
            frame_bytes: 0,
        }
    }

    /// The headers as librdkafka headers.
    pub fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(
            OwnedHeaders::new_with_capacity(self.headers.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            },
        )
    }
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Bytes written.
    len: u64,
}

/// The spool: one writer, one reader, both driven by the caller under one lock.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    /// Held (an advisory `flock`) for the spool's lifetime.
    _lock: File,
    /// Oldest first; the last one is appended to.
    segments: VecDeque<Segment>,
    /// Append handle on the newest segment.
    writer: Option<File>,
    /// Read handle on the oldest segment and the byte offset of the next frame in it.
    reader: Option<(BufReader<File>, u64)>,
    /// Records appended and not yet consumed.
    records: u64,
    /// The record [`Spool::peek`] read and [`Spool::consume`] has not yet consumed.
    peeked: Option<SpooledRecord>,
    /// A read failed midway: the reader must seek back to the frame start first.
    resync: bool,
    /// Sequence number of the next segment.
    next_seq: u64,
    /// Reused encoding buffer.
    buffer: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
    last_cursor_save: Instant,
}

impl Spool {
    /// Opens (or creates) the spool in `config.dir`, checking every segment's frames and
    /// resuming at the saved cursor.
    ///
    /// # Errors
    /// When the folder cannot be created or read, or a segment is corrupt before its tail.
    pub fn open(config: SpoolConfig) -> Result<Self, SpoolError> {
        fs::create_dir_all(&config.dir).map_err(io_error(&config.dir))?;
        let lock_path = config.dir.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::InUse {
                    dir: config.dir.clone(),
                })
            }
            Err(fs::TryLockError::Error(error)) => return Err(io_error(&lock_path)(error)),
        }
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&config.dir).map_err(io_error(&config.dir))? {
            let entry = entry.map_err(io_error(&config.dir))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            seqs.push(seq);
        }
        seqs.sort_unstable();
        let cursor = read_cursor(&config.dir);
        let mut spool = Self {
            _lock: lock,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            records: 0,
            peeked: None,
            resync: false,
            next_seq: 1,
            buffer: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            last_cursor_save: Instant::now(),
            config,
        };
        let newest = seqs.last().copied();
        spool.next_seq = newest.map_or(1, |seq| seq + 1);
        for seq in seqs {
            let path = spool.segment_path(seq);
            // Segments before the cursor's were drained; only a crash left them behind.
            if cursor.is_some_and(|(cursor_seq, _)| seq < cursor_seq) {
                fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            let start = match cursor {
                Some((cursor_seq, offset)) if cursor_seq == seq => offset,
                _ => 0,
            };
            let (records, valid_len) = scan_segment(&path, start, Some(seq) == newest)?;
            spool.records += records;
            spool.segments.push_back(Segment {
                seq,
                path,
                len: valid_len,
            });
            if spool.segments.len() == 1 {
                let file =
                    File::open(&spool.segments[0].path).map_err(io_error(&spool.config.dir))?;
                let mut reader = BufReader::new(file);
                reader
                    .seek(SeekFrom::Start(start))
                    .map_err(io_error(&spool.segments[0].path))?;
                spool.reader = Some((reader, start));
            }
        }
        if spool.records == 0 {
            spool.reset()?;
        }
        Ok(spool)
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.config.dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
    }

    /// The size bound, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.config.max_bytes
    }

    /// Whether no record waits in the spool.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records appended and not yet consumed.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes the segment files take on disk.
    pub fn used_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Bytes not yet drained (the used bytes less what was read of the oldest segment).
    pub fn pending_bytes(&self) -> u64 {
        self.used_bytes() - self.reader.as_ref().map_or(0, |(_, offset)| *offset)
    }

    /// Appends one record at the end.
    ///
    /// # Errors
    /// [`SpoolError::Full`] when it would not fit under the bound (nothing is written);
    /// [`SpoolError::Io`] when writing fails.
    pub fn append<H: Headers>(&mut self, record: &RecordRef<'_, H>) -> Result<(), SpoolError> {
        encode(&mut self.buffer, record);
        let frame_bytes = self.buffer.len() as u64;
        let used_bytes = self.used_bytes();
        if used_bytes + frame_bytes > self.config.max_bytes {
            return Err(SpoolError::Full {
                used_bytes,
                max_bytes: self.config.max_bytes,
            });
        }
        let roll = match self.segments.back() {
            None => true,
            Some(newest) => newest.len > 0 && newest.len + frame_bytes > self.config.segment_bytes,
        };
        if roll {
            self.start_segment()?;
        }
        let newest = self
            .segments
            .back_mut()
            .expect("a segment was just started");
        let writer = self.writer.as_mut().expect("the newest segment is open");
        writer
            .write_all(&self.buffer)
            .map_err(io_error(&newest.path))?;
        newest.len += frame_bytes;
        self.records += 1;
        self.unsynced = true;
        match self.config.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval if self.last_sync.elapsed() >= SYNC_INTERVAL => self.sync()?,
            _ => {}
        }
        if self.reader.is_none() {
            self.open_reader()?;
        }
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        if self.unsynced && self.config.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.segment_path(seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if self.config.fsync != FsyncPolicy::Never {
            sync_dir(&self.config.dir)?;
        }
        self.writer = Some(file);
        self.segments.push_back(Segment { seq, path, len: 0 });
        Ok(())
    }

    fn open_reader(&mut self) -> Result<(), SpoolError> {
        let oldest = self.segments.front().expect("called with a segment");
        let file = File::open(&oldest.path).map_err(io_error(&oldest.path))?;
        self.reader = Some((BufReader::new(file), 0));
        Ok(())
    }

    /// Forces appended records to disk.
    ///
    /// # Errors
    /// When `fsync` fails.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let (Some(writer), Some(newest)) = (&self.writer, self.segments.back()) {
            writer.sync_data().map_err(io_error(&newest.path))?;
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The oldest record, without consuming it: the same record comes back until
    /// [`Spool::consume`] is called. `None` when the spool is empty.
    ///
    /// # Errors
    /// When reading fails or the frame is corrupt (see [`Spool::quarantine_oldest`]).
    pub fn peek(&mut self) -> Result<Option<&SpooledRecord>, SpoolError> {
        if self.peeked.is_none() {
            self.peeked = self.read_next()?;
        }
        Ok(self.peeked.as_ref())
    }

    fn read_next(&mut self) -> Result<Option<SpooledRecord>, SpoolError> {
        loop {
            if self.records == 0 {
                return Ok(None);
            }
            let oldest = self.segments.front().expect("records live in segments");
            let (reader, offset) = self.reader.as_mut().expect("a reader while records wait");
            if *offset < oldest.len {
                let start = *offset;
                if std::mem::take(&mut self.resync) {
                    reader
                        .seek(SeekFrom::Start(start))
                        .map_err(io_error(&oldest.path))?;
                }
                // Until this frame is read whole, a failure leaves the reader mid-frame.
                self.resync = true;
                let corrupt = |reason| SpoolError::Corrupt {
                    path: oldest.path.clone(),
                    offset: start,
                    reason,
                };
                let (frame_bytes, body) = read_frame(reader, &oldest.path, start)?
                    .ok_or_else(|| corrupt("the frame ends before its length says"))?;
                let mut record =
                    decode(&body).ok_or_else(|| corrupt("the frame body does not decode"))?;
                record.frame_bytes = frame_bytes;
                self.resync = false;
                return Ok(Some(record));
            }
            // The oldest segment is drained: delete it and go on with the next one.
            self.drop_oldest_segment()?;
        }
    }

    /// Consumes the record [`Spool::peek`] returned last.
    ///
    /// # Errors
    /// When a drained segment or the cursor cannot be deleted or written.
    pub fn consume(&mut self) -> Result<(), SpoolError> {
        let Some(record) = self.peeked.take() else {
            return Ok(());
        };
        let (_, offset) = self.reader.as_mut().expect("peek opened a reader");
        *offset += record.frame_bytes;
        self.records -= 1;
        if self.records == 0 {
            self.reset()?;
        } else if self.last_cursor_save.elapsed() >= SYNC_INTERVAL {
            self.save_cursor()?;
        }
        Ok(())
    }

    /// Skips the oldest segment's remaining records (after a [`SpoolError::Corrupt`]): the
    /// segment is renamed to `<seq>.corrupt` for inspection. Returns how many records were lost.
    ///
    /// # Errors
    /// When the rename fails.
    pub fn quarantine_oldest(&mut self) -> Result<u64, SpoolError> {
        let Some(oldest) = self.segments.front() else {
            return Ok(0);
        };
        self.peeked = None;
        let start = self.reader.as_ref().map_or(0, |(_, offset)| *offset);
        let remaining = count_frames_loosely(&oldest.path, start);
        let target = oldest.path.with_extension("corrupt");
        fs::rename(&oldest.path, &target).map_err(io_error(&oldest.path))?;
        let lost = self.records.min(remaining.max(1));
        self.records -= lost;
        let was_newest = self.segments.len() == 1;
        self.segments.pop_front();
        if was_newest {
            self.writer = None;
        }
        self.reader = None;
        if self.records == 0 {
            self.reset()?;
        } else {
            self.open_reader()?;
            self.save_cursor()?;
        }
        Ok(lost)
    }

    fn drop_oldest_segment(&mut self) -> Result<(), SpoolError> {
        let oldest = self.segments.pop_front().expect("called with a segment");
        if self.segments.is_empty() {
            self.writer = None;
        }
        fs::remove_file(&oldest.path).map_err(io_error(&oldest.path))?;
        self.reader = None;
        if !self.segments.is_empty() {
            self.open_reader()?;
        }
        self.save_cursor()
    }

    /// Empty: delete every segment and the cursor; the next append starts afresh.
    fn reset(&mut self) -> Result<(), SpoolError> {
        self.writer = None;
        self.reader = None;
        self.peeked = None;
        for segment in self.segments.drain(..) {
            fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
        }
        let cursor = self.config.dir.join(CURSOR_FILE);
        match fs::remove_file(&cursor) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&cursor)(error)),
        }
        self.records = 0;
        Ok(())
    }

    /// Saves where draining stands (atomically: write, fsync, rename).
    ///
    /// # Errors
    /// When the cursor file cannot be written.
    pub fn save_cursor(&mut self) -> Result<(), SpoolError> {
        self.last_cursor_save = Instant::now();
        let (Some(oldest), Some((_, offset))) = (self.segments.front(), self.reader.as_ref())
        else {
            return Ok(());
        };
        let path = self.config.dir.join(CURSOR_FILE);
        let temporary = self.config.dir.join("cursor.tmp");
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        writeln!(file, "{} {}", oldest.seq, offset).map_err(io_error(&temporary))?;
        if self.config.fsync != FsyncPolicy::Never {
            file.sync_data().map_err(io_error(&temporary))?;
        }
        fs::rename(&temporary, &path).map_err(io_error(&path))
    }

    /// Syncs appended records and saves the cursor (at shutdown).
    ///
    /// # Errors
    /// When either write fails.
    pub fn close(&mut self) -> Result<(), SpoolError> {
        if self.unsynced && self.config.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        if self.records > 0 {
            self.save_cursor()?;
        }
        Ok(())
    }
}

/// Records in a (corrupt) segment from `start` as far as they can be read, for the loss count.
fn count_frames_loosely(path: &Path, start: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut reader = BufReader::new(file);
    if reader.seek(SeekFrom::Start(start)).is_err() {
        return 0;
    }
    let (mut offset, mut records) = (start, 0);
    while let Ok(Some((frame_bytes, _))) = read_frame(&mut reader, path, offset) {
        offset += frame_bytes;
        records += 1;
    }
    records
}

fn read_cursor(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join(CURSOR_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    Some((seq, offset))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Counts the valid frames of a segment from `start`; returns (records, valid length). A
/// frame cut short at the tail of the newest segment (a crash mid-append) is truncated away.
fn scan_segment(path: &Path, start: u64, newest: bool) -> Result<(u64, u64), SpoolError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let mut reader = BufReader::new(&file);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(io_error(path))?;
    let (mut offset, mut records) = (start, 0);
    while offset < len {
        let frame = match read_frame(&mut reader, path, offset) {
            Ok(Some((frame_bytes, _))) => Some(frame_bytes),
            Ok(None) => None,
            Err(SpoolError::Corrupt { .. }) if newest => None,
            Err(error) => return Err(error),
        };
        match frame {
            Some(frame_bytes) => {
                offset += frame_bytes;
                records += 1;
            }
            None if newest => {
                tracing::warn!(segment = %path.display(), offset, dropped_bytes = len - offset, "dropping a spool record cut short by a crash");
                file.set_len(offset).map_err(io_error(path))?;
                return Ok((records, offset));
            }
            None => {
                return Err(SpoolError::Corrupt {
                    path: path.to_owned(),
                    offset,
                    reason: "the frame ends before its length says",
                })
            }
        }
    }
    Ok((records, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes,
            fsync: FsyncPolicy::Never,
        }
    }

    fn append(spool: &mut Spool, n: usize) -> Result<(), SpoolError> {
        let headers = OwnedHeaders::new().insert(Header {
            key: "kind",
            value: Some("tweet"),
        });
        let payload = format!("{{\"id_str\":\"{n}\",\"text\":\"post number {n}\"}}");
        let key = n.to_string();
        spool.append(&RecordRef {
            topic: "tweets",
            kind: Kind::Retweet,
            timestamp_ms: 1_700_000_000_000 + n as i64,
            key: Some(key.as_bytes()),
            headers: Some(&headers),
            payload: payload.as_bytes(),
        })
    }

    fn drain(spool: &mut Spool, at_most: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < at_most {
            let Some(record) = spool.peek().unwrap().cloned() else {
                break;
            };
            assert_eq!(
                spool.peek().unwrap(),
                Some(&record),
                "peek does not consume"
            );
            out.push(String::from_utf8(record.key.clone().unwrap()).unwrap());
            spool.consume().unwrap();
        }
        out
    }

    #[test]
    fn records_come_back_in_order_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20, 300)).unwrap();
        for n in 0..20 {
            append(&mut spool, n).unwrap();
        }
        assert!(spool.segments.len() > 3, "small segments roll over");
        let first = spool.peek().unwrap().unwrap().clone();
        assert_eq!(first.topic, "tweets");
        assert_eq!(first.kind, Kind::Retweet);
        assert_eq!(first.timestamp_ms, 1_700_000_000_000);
        assert_eq!(
            first.headers,
            vec![("kind".to_owned(), Some(b"tweet".to_vec()))]
        );
        assert_eq!(
            first.payload,
            br#"{"id_str":"0","text":"post number 0"}"#.to_vec()
        );
        let keys = drain(&mut spool, usize::MAX);
        assert_eq!(keys, (0..20).map(|n| n.to_string()).collect::<Vec<_>>());
        assert!(spool.is_empty());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != LOCK_FILE)
            .collect();
        assert!(left.is_empty(), "a drained spool leaves no files: {left:?}");
    }

    #[test]
    fn a_full_spool_refuses_and_accepts_again_once_drained() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1000, 400)).unwrap();
        let mut accepted = 0;
        let error = loop {
            match append(&mut spool, accepted) {
                Ok(()) => accepted += 1,
                Err(error) => break error,
            }
        };
        assert!(
            matches!(
                error,
                SpoolError::Full {
                    max_bytes: 1000,
                    ..
                }
            ),
            "{error}"
        );
        assert!(spool.used_bytes() <= 1000);
        assert_eq!(spool.records(), accepted as u64);
        // Draining the oldest segment frees its bytes.
        let drained = drain(&mut spool, accepted / 2 + 1);
        assert_eq!(drained[0], "0");
        let _ = spool.peek().unwrap();
        append(&mut spool, 1000).expect("room after draining a segment");
        let rest = drain(&mut spool, usize::MAX);
        assert_eq!(rest.last().map(String::as_str), Some("1000"));
        assert_eq!(drained.len() + rest.len(), accepted + 1);
    }

    #[test]
    fn a_reopened_spool_resumes_at_the_cursor_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(config(dir.path(), 1 << 20, 250)).unwrap();
            for n in 0..10 {
                append(&mut spool, n).unwrap();
            }
            assert_eq!(drain(&mut spool, 4), ["0", "1", "2", "3"]);
            spool.close().unwrap();
        }
        // A crash mid-append: half a frame at the end of the newest segment.
        let newest = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "spool"))
            .max()
            .unwrap();
        let mut file = OpenOptions::new().append(true).open(&newest).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(file);

        let mut spool = Spool::open(config(dir.path(), 1 << 20, 250)).unwrap();
        assert_eq!(spool.records(), 6);
        append(&mut spool, 10).unwrap();
        let keys = drain(&mut spool, usize::MAX);
        assert_eq!(keys, ["4", "5", "6", "7", "8", "9", "10"]);
    }

    #[test]
    fn a_second_spool_on_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(config(dir.path(), 1 << 20, 4096)).unwrap();
        let error = Spool::open(config(dir.path(), 1 << 20, 4096)).unwrap_err();
        assert!(matches!(error, SpoolError::InUse { .. }), "{error}");
    }

    #[test]
    fn corruption_before_the_tail_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let mut spool = Spool::open(config(dir.path(), 1 << 20, 200)).unwrap();
            for n in 0..6 {
                append(&mut spool, n).unwrap();
            }
            spool.close().unwrap();
            spool.segments[0].path.clone()
        };
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let error = Spool::open(config(dir.path(), 1 << 20, 200)).unwrap_err();
        assert!(
            matches!(
                error,
                SpoolError::Corrupt {
                    reason: "CRC mismatch",
                    ..
                }
            ),
            "{error}"
        );
    }
}
