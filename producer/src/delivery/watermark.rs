//! The acknowledged position of a resumable source: the newest stream position (a Jetstream
//! cursor) up to which every record is safe, so that saving it can never skip a record.
//!
//! The source registers each event in stream order with its position and gets a sequence
//! number; the record carries the number through librdkafka (in its delivery opaque) and is
//! completed when it is safe: acknowledged by the broker, written to the on-disk spool (which
//! the next start sends first), or refused for good (counted and logged as lost; waiting for it
//! would stop the cursor forever). An event the source does not write (no rule matched) is
//! registered and completed at once. Delivery reports arrive out of order across partitions;
//! the watermark only moves over a contiguous run of completed numbers.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Sequence numbers start here: 0 in a delivery opaque means "no sequence".
const FIRST_SEQUENCE: u64 = 1;

/// The state behind [`Watermark`]: pure bookkeeping, unit-tested without Kafka.
#[derive(Debug)]
pub struct WatermarkState {
    /// The number the next registered event gets.
    next: u64,
    /// Every number below this one is complete.
    complete_below: u64,
    /// Completed numbers at or above `complete_below` (waiting for a gap to close).
    completed_ahead: BTreeSet<u64>,
    /// Registered events not yet passed by `complete_below`: (number, position).
    positions: VecDeque<(u64, i64)>,
    /// The position of the newest event below `complete_below`.
    safe: Option<i64>,
}

impl Default for WatermarkState {
    fn default() -> Self {
        Self {
            next: FIRST_SEQUENCE,
            complete_below: FIRST_SEQUENCE,
            completed_ahead: BTreeSet::new(),
            positions: VecDeque::new(),
            safe: None,
        }
    }
}

impl WatermarkState {
    /// Registers the next event of the stream, at `position`; returns its sequence number.
    pub fn register(&mut self, position: i64) -> u64 {
        let sequence = self.next;
        self.next += 1;
        self.positions.push_back((sequence, position));
        sequence
    }

    /// Marks `sequence` safe. Numbers never registered, or completed twice, are ignored.
    pub fn complete(&mut self, sequence: u64) {
        if sequence < self.complete_below || sequence >= self.next {
            return;
        }
        if sequence == self.complete_below {
            self.complete_below += 1;
            while self.completed_ahead.remove(&self.complete_below) {
                self.complete_below += 1;
            }
        } else {
            self.completed_ahead.insert(sequence);
        }
        while let Some(&(registered, position)) = self.positions.front() {
            if registered >= self.complete_below {
                break;
            }
            self.safe = Some(position);
            self.positions.pop_front();
        }
    }

    /// The newest position whose event, and every event before it, is safe.
    pub fn safe_position(&self) -> Option<i64> {
        self.safe
    }

    /// Events registered and not yet safe.
    pub fn pending(&self) -> usize {
        self.positions.len()
    }
}

/// A [`WatermarkState`] shared by the source (registering) and the delivery callback
/// (completing).
#[derive(Debug, Default)]
pub struct Watermark {
    state: Mutex<WatermarkState>,
}

impl Watermark {
    fn with<T>(&self, f: impl FnOnce(&mut WatermarkState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// See [`WatermarkState::register`].
    pub fn register(&self, position: i64) -> u64 {
        self.with(|state| state.register(position))
    }

    /// Registers an event that is not written and completes it at once.
    pub fn skip(&self, position: i64) {
        self.with(|state| {
            let sequence = state.register(position);
            state.complete(sequence);
        });
    }

    /// See [`WatermarkState::complete`].
    pub fn complete(&self, sequence: u64) {
        self.with(|state| state.complete(sequence));
    }

    /// See [`WatermarkState::safe_position`].
    pub fn safe_position(&self) -> Option<i64> {
        self.with(|state| state.safe_position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_over_contiguous_completions() {
        let mut state = WatermarkState::default();
        let a = state.register(100);
        let b = state.register(200);
        let c = state.register(300);
        assert_eq!(state.safe_position(), None);
        // Out of order: c then a; b still outstanding holds the position at a.
        state.complete(c);
        assert_eq!(state.safe_position(), None);
        state.complete(a);
        assert_eq!(state.safe_position(), Some(100));
        assert_eq!(state.pending(), 2);
        state.complete(b);
        assert_eq!(state.safe_position(), Some(300));
        assert_eq!(state.pending(), 0);
        assert!(state.completed_ahead.is_empty());
    }

    #[test]
    fn unknown_and_repeated_completions_are_ignored() {
        let mut state = WatermarkState::default();
        let a = state.register(5);
        state.complete(0);
        state.complete(a + 7);
        assert_eq!(state.safe_position(), None);
        state.complete(a);
        state.complete(a);
        assert_eq!(state.safe_position(), Some(5));
        let b = state.register(6);
        assert_eq!(b, a + 1);
        state.complete(b);
        assert_eq!(state.safe_position(), Some(6));
    }

    #[test]
    fn skipped_events_wait_for_earlier_records() {
        let watermark = Watermark::default();
        let written = watermark.register(10);
        watermark.skip(20);
        assert_eq!(watermark.safe_position(), None);
        watermark.complete(written);
        assert_eq!(watermark.safe_position(), Some(20));
    }
}
