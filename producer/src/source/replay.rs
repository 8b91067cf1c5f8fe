//! The replay source: reads a recorded stream (JSON lines, plain or gzip, or stdin) and writes
//! every line through the router to Kafka, optionally paced (`--rate`) and looped (`--loop`).
//!
//! Runs on a blocking thread: file reads, decompression and the producer's backpressure wait
//! all block.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flate2::read::MultiGzDecoder;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::framing::{Frame, LineFramer};
use tweet_pipeline_common::metrics::ProducerMetrics;

use crate::delivery::KafkaSink;
use crate::ingest::{Ingest, IngestStats};

/// Read size per chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// What to replay and how fast.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The recording; `-` reads standard input. Gzip is detected by its magic bytes.
    pub path: PathBuf,
    /// Lines per second (keep-alives included); `None` = as fast as Kafka takes them.
    pub rate_lines_per_s: Option<f64>,
    /// Start again at the end of the file, until stopped.
    pub looped: bool,
    /// Lines longer than this go to the dead-letter topic (their first bytes).
    pub max_line_bytes: usize,
}

/// The `source` header value for a path: `replay:<file name>` or `replay:stdin`.
pub fn source_name(path: &Path) -> String {
    if path == Path::new("-") {
        return "replay:stdin".to_owned();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    format!("replay:{name}")
}

fn open(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    if path.is_dir() {
        let mut paths = Vec::new();
        files_under(path, &mut paths)
            .with_context(|| format!("cannot list the replay folder {}", path.display()))?;
        paths.sort();
        return Ok(Box::new(Files {
            paths: paths.into(),
            current: None,
            at_line_start: true,
        }));
    }
    open_file(path)
}

/// Every file under `dir`, recursively, except unfinished archive files (`*.part`).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(&path, out)?;
        } else if path.extension().is_none_or(|e| e != "part") {
            out.push(path);
        }
    }
    Ok(())
}

/// The files of a folder read one after the other, in path order (an archive's
/// `<topic>/<date>/<topic>-<date>T<hour>-p<partition>-o<offset>.jsonl.gz` files: by topic,
/// then time), each plain or gzip by its own magic bytes; a file not ending in a newline gets
/// one, so its last line does not run into the next file's first.
struct Files {
    paths: std::collections::VecDeque<PathBuf>,
    current: Option<Box<dyn Read + Send>>,
    /// Whether the bytes given out so far end a line (or none were given out).
    at_line_start: bool,
}

impl Read for Files {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(reader) = self.current.as_mut() else {
                let Some(path) = self.paths.pop_front() else {
                    return Ok(0);
                };
                self.current = Some(open_file(&path).map_err(io::Error::other)?);
                continue;
            };
            let read = reader.read(buf)?;
            if read == 0 {
                self.current = None;
                if !self.at_line_start {
                    self.at_line_start = true;
                    buf[0] = b'\n';
                    return Ok(1);
                }
                continue;
            }
            self.at_line_start = buf[read - 1] == b'\n';
            return Ok(read);
        }
    }
}

fn open_file(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(
            File::open(path)
                .with_context(|| format!("cannot open replay file {}", path.display()))?,
        )
    };
    let mut reader = BufReader::with_capacity(CHUNK_BYTES, raw);
    // Peek at the first two bytes for the gzip magic number (RFC 1952 section 2.3.1).
    let magic = io::BufRead::fill_buf(&mut reader)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Why line handling stopped early.
enum Stop {
    Cancelled,
}

/// Replays `config.path` into `sink` until end of input (or forever with `looped`), or until
/// `cancel` fires; a line is either fully handed to Kafka or not read at all.
///
/// # Errors
/// When the file cannot be opened or read (a gzip stream that is corrupt included).
pub fn run(
    config: &ReplayConfig,
    sink: &KafkaSink,
    metrics: &ProducerMetrics,
    cancel: &CancellationToken,
) -> anyhow::Result<IngestStats> {
    let mut ingest = Ingest::new(
        sink,
        metrics,
        source_name(&config.path),
        config.max_line_bytes,
    );
    let started = Instant::now();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let mut reader = open(&config.path)?;
        let mut framer = LineFramer::new(config.max_line_bytes);
        let mut handle = |frame: Frame<'_>| -> Result<(), Stop> {
            if cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            if let Some(rate) = config.rate_lines_per_s {
                let due = started + Duration::from_secs_f64(ingest.stats.lines_read as f64 / rate);
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
            ingest.frame(frame);
            Ok(())
        };
        let finished = loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break framer.finish(&mut handle),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("reading {} failed", config.path.display()))
                }
            };
            if let Err(stop) = framer.push(&buffer[..read], &mut handle) {
                break Err(stop);
            }
        };
        let again = finished.is_ok() && config.looped && !cancel.is_cancelled();
        if !again {
            return Ok(ingest.stats);
        }
        tracing::debug!(
            lines_read = ingest.stats.lines_read,
            "end of recording; looping"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        open(path).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn gzip_is_detected_by_its_magic_bytes() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let lines = b"{\"id_str\":\"1\",\"text\":\"a\"}\r\n\r\n{\"limit\":{\"track\":3}}\r\n";
        let plain = dir.path().join("stream.jsonl");
        std::fs::write(&plain, lines).unwrap();
        // Named without .gz on purpose: the content decides, not the name.
        let gz = dir.path().join("stream.bin");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(lines).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        assert_eq!(read_all(&plain), lines);
        assert_eq!(read_all(&gz), lines);
        assert!(open(&dir.path().join("missing.jsonl")).is_err());
    }

    #[test]
    fn a_folder_reads_its_files_in_path_order() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("tweets").join("2014-07-04");
        std::fs::create_dir_all(&sub).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"{\"a\":1}\n").unwrap();
        std::fs::write(sub.join("t-o0.jsonl.gz"), encoder.finish().unwrap()).unwrap();
        // No final newline: one is added before the next file.
        std::fs::write(sub.join("t-o1.jsonl"), b"{\"b\":2}").unwrap();
        std::fs::write(sub.join("t-o2.jsonl.gz.part"), b"unfinished").unwrap();
        std::fs::write(dir.path().join("z.jsonl"), b"{\"c\":3}\n").unwrap();
        assert_eq!(read_all(dir.path()), b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }

    #[test]
    fn source_names() {
        assert_eq!(source_name(Path::new("-")), "replay:stdin");
        assert_eq!(
            source_name(Path::new("data/sample/a.jsonl.gz")),
            "replay:a.jsonl.gz"
        );
    }
}
