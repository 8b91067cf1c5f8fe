//! The `archive` consumer-group role: writes every record value, unchanged, to gzip JSON-lines
//! files, one open file per partition, for long collection runs and for replay
//! (`tweet-producer --replay FILE` reads them back).
//!
//! Layout: `DIR/<topic>/<YYYY-MM-DD>/<topic>-<YYYY-MM-DD>T<HH>-p<partition>-o<first offset>.jsonl.gz`,
//! the date and hour (UTC) of the records' timestamps (the producer's receive time). A file holds
//! consecutive offsets of one partition, one value and `\n` per record. It is rotated when the
//! next record belongs to another hour, when it reaches `max_bytes` (compressed bytes written),
//! and when it has been open `max_age`.
//!
//! Durability: a file is written as `NAME.part`; at rotation the gzip stream is finished, the
//! file fsynced, renamed to `NAME` and its folder fsynced. Only then is its last offset reported
//! to the runner ([`Handler::durable`]), which stores it for the next commit. A crash loses
//! only `.part` files, whose records are read again from the committed offsets into a file of
//! the same name. The archive is at least once: after a crash between a rename and the next
//! commit, or after a rebalance moved a partition with an open file, a later file may repeat
//! records of an earlier one (replaying both is harmless: the analysis store is idempotent).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::headers;
use tweet_pipeline_common::metrics::ConsumerMetrics;

use crate::cli::{Cli, Role};
use crate::role;
use crate::runner::{self, DurableOffset, Handler, RebalanceContext};
use crate::summary::ArchiveSummary;

/// Where and when to rotate.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The archive's root folder (created if missing).
    pub dir: PathBuf,
    /// Rotate a file once this many compressed bytes were written to it.
    pub max_bytes: u64,
    /// Rotate a file once it has been open this long (bounds how much a crash re-reads).
    pub max_age: Duration,
}

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveTotals {
    /// Records written to files (durable or not yet).
    pub records_written: u64,
    /// Files finished (fsynced and renamed).
    pub files_finished: u64,
    /// Records without a value or with a value holding a newline (not a JSON line).
    pub records_skipped: u64,
}

/// A `Write` that counts the bytes it passes on.
struct Counting {
    file: File,
    bytes: u64,
}

impl io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The open file of one partition.
struct OpenFile {
    /// The final name; the data goes to `<final>.part` until rotation.
    path: PathBuf,
    encoder: GzEncoder<Counting>,
    /// Hours since the Unix epoch of the records it holds.
    hour: i64,
    last_offset: i64,
    opened: Instant,
}

/// The archive role's batch handler.
pub struct ArchiveHandler {
    config: ArchiveConfig,
    topics: TopicNames,
    metrics: ConsumerMetrics,
    open: BTreeMap<(String, i32), OpenFile>,
    /// Offsets made durable since the runner last asked.
    durable: Vec<DurableOffset>,
    /// Partitions whose file failed: archiving them stops (their offsets are no longer stored)
    /// until a restart reads them again from the last durable file.
    failed: BTreeSet<(String, i32)>,
    totals: ArchiveTotals,
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// The file name for a partition's records from `first_offset` on, in the hour `hour`.
pub fn file_path(dir: &Path, topic: &str, partition: i32, hour: i64, first_offset: i64) -> PathBuf {
    let start = DateTime::<Utc>::from_timestamp(hour * 3600, 0).unwrap_or_default();
    let day = start.format("%Y-%m-%d").to_string();
    dir.join(topic).join(&day).join(format!(
        "{topic}-{day}T{}-p{partition}-o{first_offset}.jsonl.gz",
        start.format("%H")
    ))
}

impl ArchiveHandler {
    /// A handler writing under `config.dir`.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn new(
        config: ArchiveConfig,
        topics: TopicNames,
        metrics: ConsumerMetrics,
    ) -> anyhow::Result<Self> {
        fs::create_dir_all(&config.dir).with_context(|| {
            format!("cannot create the archive folder {}", config.dir.display())
        })?;
        Ok(Self {
            config,
            topics,
            metrics,
            open: BTreeMap::new(),
            durable: Vec::new(),
            failed: BTreeSet::new(),
            totals: ArchiveTotals::default(),
        })
    }

    /// What the run wrote so far.
    pub fn totals(&self) -> ArchiveTotals {
        self.totals
    }

    /// Partitions whose archive file failed during the run (they need a restart).
    pub fn failed_partitions(&self) -> usize {
        self.failed.len()
    }

    /// Gives up on a partition after an I/O error: its `.part` file is removed, nothing of it
    /// is stored any more, and a restart archives it again from its last durable file.
    fn fail(&mut self, key: (String, i32), error: &anyhow::Error) {
        if let Some(open) = self.open.remove(&key) {
            let _ = fs::remove_file(part_path(&open.path));
        }
        tracing::error!(
            topic = key.0,
            partition = key.1,
            error = format!("{error:#}"),
            "archive file failed; this partition is no longer archived until a restart"
        );
        self.metrics
            .records_skipped
            .with_label_values(&["archive_failed"])
            .inc();
        self.failed.insert(key);
    }

    fn open_file(
        dir: &Path,
        topic: &str,
        partition: i32,
        hour: i64,
        offset: i64,
    ) -> anyhow::Result<OpenFile> {
        let path = file_path(dir, topic, partition, hour, offset);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let part = part_path(&path);
        let file =
            File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
        Ok(OpenFile {
            path,
            encoder: GzEncoder::new(Counting { file, bytes: 0 }, Compression::default()),
            hour,
            last_offset: offset,
            opened: Instant::now(),
        })
    }

    /// Finishes, fsyncs and renames the open file of `key`, and records its last offset as
    /// durable.
    fn rotate(&mut self, key: &(String, i32)) -> anyhow::Result<()> {
        let Some(open) = self.open.remove(key) else {
            return Ok(());
        };
        let part = part_path(&open.path);
        let finish = || -> io::Result<()> {
            let counting = open.encoder.finish()?;
            counting.file.sync_all()?;
            fs::rename(&part, &open.path)?;
            // The rename is durable once the folder's entry is (rename(2), fsync(2)).
            if let Some(parent) = open.path.parent() {
                File::open(parent)?.sync_all()?;
            }
            Ok(())
        };
        finish().with_context(|| format!("cannot finish the archive file {}", part.display()))?;
        tracing::debug!(file = %open.path.display(), last_offset = open.last_offset, "archive file finished");
        self.totals.files_finished += 1;
        self.durable.push(DurableOffset {
            topic: key.0.clone(),
            partition: key.1,
            offset: open.last_offset,
        });
        Ok(())
    }

    /// Appends `message` to the open file of its partition (`key`: topic, partition).
    fn write(&mut self, message: &BorrowedMessage<'_>, key: &(String, i32)) -> anyhow::Result<()> {
        let value = match message.payload() {
            Some(value) if !value.is_empty() && !value.contains(&b'\n') => value,
            _ => {
                self.totals.records_skipped += 1;
                self.metrics
                    .records_skipped
                    .with_label_values(&["not_a_json_line"])
                    .inc();
                tracing::warn!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    "record without a value or with a newline in it; not archived"
                );
                return Ok(());
            }
        };
        let timestamp_ms = message
            .timestamp()
            .to_millis()
            .unwrap_or_else(headers::now_ms);
        let hour = timestamp_ms.div_euclid(3_600_000);
        let stale = self.open.get(key).is_some_and(|open| {
            open.hour != hour || open.encoder.get_ref().bytes >= self.config.max_bytes
        });
        if stale {
            self.rotate(key)?;
        }
        let open = match self.open.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Self::open_file(
                &self.config.dir,
                &key.0,
                key.1,
                hour,
                message.offset(),
            )?),
        };
        open.encoder
            .write_all(value)
            .and_then(|()| open.encoder.write_all(b"\n"))
            .with_context(|| format!("cannot write to {}", part_path(&open.path).display()))?;
        open.last_offset = message.offset();
        self.totals.records_written += 1;
        let role = self
            .topics
            .destination(message.topic())
            .map_or("foreign", |d| d.as_str());
        let kind = headers::get(message.headers(), headers::KIND).unwrap_or("unknown");
        let kind = tweet_pipeline_common::Kind::parse(kind).map_or("unknown", |k| k.as_str());
        self.metrics.records.with_label_values(&[role, kind]).inc();
        Ok(())
    }
}

impl Handler for ArchiveHandler {
    fn handle(&mut self, batch: &[BorrowedMessage<'_>]) -> anyhow::Result<()> {
        for message in batch {
            let key = (message.topic().to_owned(), message.partition());
            if self.failed.contains(&key) {
                continue;
            }
            if let Err(error) = self.write(message, &key) {
                self.fail(key, &error);
            }
        }
        self.metrics
            .batch_records
            .with_label_values(&["archive"])
            .observe(batch.len() as f64);
        Ok(())
    }

    fn defers_durability(&self) -> bool {
        true
    }

    fn durable(&mut self, finish: bool) -> anyhow::Result<Vec<DurableOffset>> {
        let due: Vec<(String, i32)> = self
            .open
            .iter()
            .filter(|(_, open)| finish || open.opened.elapsed() >= self.config.max_age)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Err(error) = self.rotate(&key) {
                self.fail(key, &error);
            }
        }
        Ok(std::mem::take(&mut self.durable))
    }
}
/// Runs the archive role of `cli`'s group on `consumer` until shutdown (or the end, with
/// `--exit-at-end`) and returns the run's summary; a summary with failed partitions means
/// some records are not archived yet (exit 1: run again).
///
/// # Errors
/// When the archive folder cannot be made or the loop fails.
pub async fn run(
    cli: &Cli,
    consumer: BaseConsumer<RebalanceContext>,
    metrics: ConsumerMetrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<ArchiveSummary> {
    let topics = role::topics(Role::Archive, &cli.topics);
    let archive = ArchiveConfig {
        dir: cli.archive.archive_dir.clone(),
        max_bytes: cli.archive.archive_max_bytes,
        max_age: Duration::from_secs(cli.archive.archive_max_age_secs),
    };
    tracing::info!(group = %cli.group, role = ?Role::Archive, topics = ?topics, dir = %cli.archive.archive_dir.display(), "archiving");
    let names = cli.topics.clone();
    let make = move || ArchiveHandler::new(archive, names, metrics);
    let summary = |h: ArchiveHandler| (h.totals(), h.failed_partitions());
    let config = role::runner_config(cli);
    let (stats, (totals, failed)) =
        runner::run_handler(consumer, &topics, make, summary, config, shutdown).await?;
    Ok(ArchiveSummary::new(&cli.group, &stats, &totals, failed))
}
