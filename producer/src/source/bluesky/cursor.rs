//! The Jetstream cursor across restarts: where to resume, and the file that keeps it.
//!
//! A Jetstream v1 cursor is a `time_us` (microseconds since the Unix epoch); `?cursor=N`
//! replays from the events at or after it, and "when reconnecting, use the `time_us` from your
//! most recently processed event and maybe provide a negative buffer (i.e. subtract a few
//! seconds) to ensure gapless playback" (bluesky-social/jetstream README, "Consuming
//! Jetstream"). The saved cursor is the sink's watermark: the newest `time_us` up to which
//! Kafka has every record (see `delivery::watermark`), so it never runs ahead of Kafka; the
//! producer resumes [`DEFAULT_REWIND`] before it and the idempotent sinks (compacted topics,
//! upserts by AT URI) absorb the repeats.
//!
//! The file holds the cursor as decimal text and a newline; it is replaced atomically (write
//! a temporary file, fsync, rename), so a crash leaves the old cursor or the new one.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// How far before the saved cursor a restart resumes: "subtract a few seconds" (README).
pub const DEFAULT_REWIND: Duration = Duration::from_secs(5);

/// The cursor to connect with: `position` (a saved or last received `time_us`) less `rewind`,
/// never below 0; `None` (the live tip) without a position.
pub fn resume_cursor(position: Option<i64>, rewind: Duration) -> Option<i64> {
    let rewind_us = i64::try_from(rewind.as_micros()).unwrap_or(i64::MAX);
    position.map(|time_us| time_us.saturating_sub(rewind_us).max(0))
}

/// How far `cursor_us` is behind `now_us`, in whole seconds (0 if ahead).
pub fn lag_seconds(now_us: i64, cursor_us: i64) -> i64 {
    (now_us.saturating_sub(cursor_us) / 1_000_000).max(0)
}

/// What went wrong with the cursor file.
#[derive(Debug, Error)]
pub enum CursorError {
    /// It could not be read or written.
    #[error("cursor file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// It does not hold a cursor.
    #[error("cursor file {} does not hold a time_us cursor ({found:?}); fix or delete it to start from the live tip", path.display())]
    Garbled {
        /// The file.
        path: PathBuf,
        /// Its first bytes.
        found: String,
    },
}

/// The file a producer keeps its Jetstream cursor in.
#[derive(Debug, Clone)]
pub struct CursorFile {
    path: PathBuf,
}

impl CursorFile {
    /// The cursor file at `path` (not read yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cursor; `None` when there is no file yet.
    ///
    /// # Errors
    /// When the file cannot be read or does not hold a number.
    pub fn load(&self) -> Result<Option<i64>, CursorError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CursorError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|cursor| *cursor >= 0)
            .map(Some)
            .ok_or_else(|| CursorError::Garbled {
                path: self.path.clone(),
                found: text.chars().take(40).collect(),
            })
    }

    /// Replaces the saved cursor by `time_us`, atomically.
    ///
    /// # Errors
    /// When the folder is not writable or the disk is full.
    pub fn save(&self, time_us: i64) -> Result<(), CursorError> {
        let io = |source| CursorError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let temporary = self.path.with_extension("tmp");
        let mut file = fs::File::create(&temporary).map_err(io)?;
        writeln!(file, "{time_us}").map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temporary, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_a_few_seconds_before_the_saved_cursor() {
        assert_eq!(resume_cursor(None, DEFAULT_REWIND), None);
        assert_eq!(
            resume_cursor(Some(1_751_639_888_085_434), DEFAULT_REWIND),
            Some(1_751_639_883_085_434)
        );
        assert_eq!(resume_cursor(Some(3), DEFAULT_REWIND), Some(0));
        assert_eq!(resume_cursor(Some(42), Duration::ZERO), Some(42));
    }

    #[test]
    fn lag_is_whole_seconds_behind_now() {
        assert_eq!(lag_seconds(10_500_000, 1_000_000), 9);
        assert_eq!(lag_seconds(1_000_000, 10_500_000), 0);
    }

    #[test]
    fn saves_and_loads_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let file = CursorFile::new(dir.path().join("sub").join("jetstream.cursor"));
        assert_eq!(file.load().unwrap(), None);
        file.save(1_751_639_888_085_434).unwrap();
        assert_eq!(file.load().unwrap(), Some(1_751_639_888_085_434));
        file.save(7).unwrap();
        assert_eq!(file.load().unwrap(), Some(7));
        fs::write(file.path(), "yesterday\n").unwrap();
        let error = file.load().unwrap_err().to_string();
        assert!(error.contains("yesterday"), "{error}");
    }
}
