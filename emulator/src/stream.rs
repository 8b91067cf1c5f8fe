//! The streaming engine shared by the three APIs: pacing at `--rate`, keep-alives after
//! keep-alive-interval of silence, and the fault effects that act on an open stream (drop,
//! stall, keep-alive only, split chunks, malformed line, gzip, gzip cut).
//!
//! A stream is an endless sequence of messages produced by an API-specific source. The source
//! is asked for the next batch once per post interval; a batch is one post (v2), one status
//! with at most one preceding notice (v1.1) or one status with its synthetic follow-up events
//! (Mastodon). Each message of a batch counts as a line for the faults. When the source
//! finds nothing in a whole pass over the corpus, the stream idles, sending keep-alives, until
//! the next keep-alive or (v2) until the rules change.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::StreamExt;
use rand::Rng;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::state::{Api, AppState, ConnectionGuard, Fault};

/// Pause between the last line and the abrupt close of a `drop_after_lines` fault: ample
/// time for hyper to write the buffered lines to a loopback socket.
const DROP_FLUSH_PAUSE: Duration = Duration::from_millis(50);

/// How one stream connection behaves.
#[derive(Debug)]
pub struct StreamPlan {
    /// The API (for counters and logs).
    pub api: Api,
    /// The fault applied to this connection (`Fault::default()` for none).
    pub fault: Fault,
    /// Time between two batches.
    pub post_interval: Duration,
    /// Silence after which a keep-alive is sent.
    pub keepalive: Duration,
    /// The keep-alive bytes: `\r\n` for X, `:thump\n` for Mastodon.
    pub keepalive_bytes: &'static [u8],
    /// Written once when the stream opens (Mastodon's `:)\n`); empty for none.
    pub prelude: &'static [u8],
    /// The framed malformed line of the `malformed_after_lines` fault.
    pub malformed: Bytes,
    /// Gzip the body (the fault asked for it and the client accepts it).
    pub gzip: bool,
    /// Notified when what the source matches may have changed (the v2 rules).
    pub changes: Option<watch::Receiver<u64>>,
}

/// The response body of a stream connection. `next_batch` returns the next framed messages,
/// or `None` when nothing in the corpus matches right now. The body ends when the process
/// shuts down; the connection guard is dropped with the body.
pub fn body<F>(
    state: Arc<AppState>,
    guard: ConnectionGuard,
    plan: StreamPlan,
    next_batch: F,
) -> Body
where
    F: FnMut() -> Option<Vec<Bytes>> + Send + 'static,
{
    let shutdown = state.shutdown.clone().cancelled_owned();
    Body::from_stream(messages(state, guard, plan, next_batch).take_until(shutdown))
}

fn messages<F>(
    state: Arc<AppState>,
    guard: ConnectionGuard,
    plan: StreamPlan,
    mut next_batch: F,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send
where
    F: FnMut() -> Option<Vec<Bytes>> + Send + 'static,
{
    async_stream::stream! {
        let StreamPlan {
            api, fault, post_interval, keepalive, keepalive_bytes, prelude, malformed, gzip,
            mut changes,
        } = plan;
        let stats = state.stats(api);
        let mut guard = Some(guard);
        let cut_after = if gzip { fault.gzip_cut_after_bytes } else { None };
        let mut encoder = Encoder::new(gzip, fault.split_chunks, cut_after);
        let mut lines: u64 = 0;
        let mut malformed_due = fault.malformed_after_lines;
        let mut queue: VecDeque<Bytes> = VecDeque::new();
        let mut idle = false;
        let mut ticker = tokio::time::interval(post_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_write = Instant::now();
        let mut first = (!prelude.is_empty()).then(|| Bytes::from_static(prelude));

        loop {
            if fault.drop_after_lines.is_some_and(|n| lines >= n) {
                tracing::info!(api = api.as_str(), lines, "fault: dropping the connection");
                // Free the slot before the client sees the connection end, so that an
                // immediate reconnect is accepted.
                drop(guard.take());
                // hyper discards what it has buffered when the body fails: pausing first lets
                // it flush the last lines (the body is Pending, so hyper writes them out).
                tokio::time::sleep(DROP_FLUSH_PAUSE).await;
                yield Err(io::Error::other("fault injection: drop_after_lines"));
                break;
            }
            if fault.stall_after_lines.is_some_and(|n| lines >= n) {
                tracing::info!(api = api.as_str(), lines, "fault: stalling the connection");
                // A silent connection may not notice its client leaving (nothing is written),
                // so it gives up the slot now: the client's reconnect after its stall timeout
                // is then accepted deterministically. A zombie connection is injected
                // explicitly with `connect_status: 429`.
                drop(guard.take());
                // Nothing more is written; the body lives until the client goes away (hyper
                // notices the closed socket and drops the body) or shutdown.
                std::future::pending::<()>().await;
            }
            let (message, kind) = if let Some(prelude) = first.take() {
                (prelude, Sent::Prelude)
            } else if malformed_due.is_some_and(|n| lines >= n) {
                malformed_due = None;
                (malformed.clone(), Sent::Line)
            } else if let Some(next) = queue.pop_front() {
                (next, Sent::Line)
            } else {
                let keepalive_at = last_write + keepalive;
                tokio::select! {
                    _ = ticker.tick(), if !idle && !fault.keepalive_only => {
                        match next_batch() {
                            Some(batch) => queue.extend(batch),
                            None => idle = true,
                        }
                        continue;
                    }
                    _ = changed(&mut changes), if idle => {
                        idle = false;
                        continue;
                    }
                    _ = tokio::time::sleep_until(keepalive_at) => {}
                }
                // Look again after each keep-alive: cheap, and covers every kind of change.
                idle = false;
                (Bytes::from_static(keepalive_bytes), Sent::KeepAlive)
            };
            let cut = match encoder.encode(message) {
                Ok(Encoded { chunks, cut }) => {
                    for chunk in chunks {
                        yield Ok(chunk);
                        if encoder.split {
                            // Returning Pending makes hyper flush, so each piece is its own
                            // write (TCP_NODELAY is set on accepted sockets).
                            tokio::task::yield_now().await;
                        }
                    }
                    cut
                }
                Err(error) => {
                    tracing::warn!(api = api.as_str(), %error, "cannot encode the stream; closing it");
                    yield Err(error);
                    break;
                }
            };
            if let Some(cut) = cut {
                if cut == Cut::AfterMessage && matches!(kind, Sent::Line) {
                    lines += 1;
                    stats.line_sent();
                }
                tracing::info!(
                    api = api.as_str(),
                    lines,
                    compressed_bytes = encoder.written,
                    "fault: cutting the gzip stream"
                );
                // As for drop_after_lines: free the slot, let hyper write what was yielded,
                // then fail the body so that no final chunk is sent.
                drop(guard.take());
                tokio::time::sleep(DROP_FLUSH_PAUSE).await;
                yield Err(io::Error::other("fault injection: gzip_cut_after_bytes"));
                break;
            }
            last_write = Instant::now();
            match kind {
                Sent::Line => {
                    lines += 1;
                    stats.line_sent();
                }
                Sent::KeepAlive => stats.keepalive_sent(),
                Sent::Prelude => {}
            }
        }
    }
}

/// What a written message was, for the counters.
enum Sent {
    Line,
    KeepAlive,
    Prelude,
}

async fn changed(changes: &mut Option<watch::Receiver<u64>>) {
    match changes {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Turns messages into body chunks: gzip (sync-flushed after each message, so every message
/// can be decoded as soon as it arrives), the gzip cut and random splitting.
struct Encoder {
    gzip: Option<GzEncoder<Vec<u8>>>,
    split: bool,
    /// Bytes of the body the stream may carry in all (`gzip_cut_after_bytes`).
    cut_after: Option<u64>,
    /// Bytes of the body produced so far (compressed when gzip).
    written: u64,
}

/// One message as body chunks.
struct Encoded {
    chunks: Vec<Bytes>,
    /// Set when the body reached `cut_after`: nothing more may be written.
    cut: Option<Cut>,
}

/// Where a gzip cut fell relative to the message just encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Inside the message's bytes: only a prefix of it was sent.
    InsideMessage,
    /// Right after its last byte: the message was sent whole.
    AfterMessage,
}

impl Encoder {
    fn new(gzip: bool, split: bool, cut_after: Option<u64>) -> Self {
        Self {
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            split,
            cut_after,
            written: 0,
        }
    }

    fn encode(&mut self, message: Bytes) -> io::Result<Encoded> {
        let mut payload = match self.gzip.as_mut() {
            Some(gzip) => {
                gzip.write_all(&message)?;
                // A sync flush: every byte of the message is decodable from what is sent.
                gzip.flush()?;
                Bytes::from(std::mem::take(gzip.get_mut()))
            }
            None => message,
        };
        let mut cut = None;
        if let Some(limit) = self.cut_after {
            let room = limit.saturating_sub(self.written);
            let len = payload.len() as u64;
            if len >= room {
                payload.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                cut = Some(if len == room {
                    Cut::AfterMessage
                } else {
                    Cut::InsideMessage
                });
            }
        }
        self.written += payload.len() as u64;
        let chunks = if self.split {
            split_randomly(payload)
        } else if payload.is_empty() {
            Vec::new()
        } else {
            vec![payload]
        };
        Ok(Encoded { chunks, cut })
    }
}

/// Splits bytes into pieces of 1 to 7 bytes at random positions (UTF-8 sequences and gzip
/// blocks included: clients must reassemble).
fn split_randomly(mut payload: Bytes) -> Vec<Bytes> {
    let mut rng = rand::rng();
    let mut pieces = Vec::with_capacity(payload.len() / 4 + 1);
    while !payload.is_empty() {
        let size = rng.random_range(1..=7).min(payload.len());
        pieces.push(payload.split_to(size));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::corpus::Corpus;
    use crate::oauth::{OAuthKeys, Secret};
    use crate::rules::RuleStore;
    use crate::state::Settings;

    fn state() -> Arc<AppState> {
        let secret = || Secret::new("s");
        let settings = Settings {
            post_interval: Duration::from_millis(50),
            v2_keepalive: Duration::from_secs(20),
            v1_keepalive: Duration::from_secs(30),
            mastodon_heartbeat: Duration::from_secs(15),
            bearer_token: secret(),
            oauth: OAuthKeys {
                consumer_key: secret(),
                consumer_secret: secret(),
                access_token: secret(),
                access_token_secret: secret(),
            },
            mastodon_token: secret(),
        };
        let corpus = Corpus {
            v2: Vec::new(),
            v2_malformed: Bytes::new(),
            v1: Vec::new(),
            v1_malformed: Bytes::new(),
            mastodon: Vec::new(),
            mastodon_malformed: Bytes::new(),
            v2_counts: (0, 0, 0),
        };
        Arc::new(AppState::new(
            settings,
            corpus,
            RuleStore::new(1),
            tokio_util::sync::CancellationToken::new(),
        ))
    }

    fn plan(fault: Fault) -> StreamPlan {
        StreamPlan {
            api: Api::V2,
            fault,
            post_interval: Duration::from_millis(50),
            keepalive: Duration::from_secs(20),
            keepalive_bytes: b"\r\n",
            prelude: b"",
            malformed: Bytes::from_static(b"{\"data\": {\r\n"),
            gzip: false,
            changes: None,
        }
    }

    fn counting_source() -> impl FnMut() -> Option<Vec<Bytes>> + Send + 'static {
        let mut n = 0;
        move || {
            n += 1;
            Some(vec![Bytes::from(format!("{{\"n\":{n}}}\r\n"))])
        }
    }

    async fn collect(
        state: &Arc<AppState>,
        plan: StreamPlan,
        source: impl FnMut() -> Option<Vec<Bytes>> + Send + 'static,
        limit: usize,
    ) -> (Vec<Bytes>, bool) {
        let guard = ConnectionGuard::open(state, Api::V2, true).unwrap();
        let stream = messages(Arc::clone(state), guard, plan, source);
        futures::pin_mut!(stream);
        let mut out = Vec::new();
        while out.len() < limit {
            match stream.next().await {
                Some(Ok(chunk)) => out.push(chunk),
                Some(Err(_)) => return (out, true),
                None => break,
            }
        }
        (out, false)
    }

    #[tokio::test(start_paused = true)]
    async fn drop_after_lines_ends_with_an_error_and_frees_the_slot() {
        let state = state();
        let fault = Fault {
            drop_after_lines: Some(3),
            ..Fault::default()
        };
        let (chunks, errored) = collect(&state, plan(fault), counting_source(), 100).await;
        assert!(errored);
        assert_eq!(chunks.len(), 3);
        assert!(ConnectionGuard::open(&state, Api::V2, true).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_line_comes_once_after_n_lines() {
        let state = state();
        let fault = Fault {
            malformed_after_lines: Some(2),
            ..Fault::default()
        };
        let (chunks, _) = collect(&state, plan(fault), counting_source(), 5).await;
        let text: Vec<_> = chunks
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(
            text,
            [
                "{\"n\":1}\r\n",
                "{\"n\":2}\r\n",
                "{\"data\": {\r\n",
                "{\"n\":3}\r\n",
                "{\"n\":4}\r\n"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keepalives_when_nothing_matches() {
        let state = state();
        let start = Instant::now();
        let (chunks, _) = collect(&state, plan(Fault::default()), || None, 2).await;
        assert_eq!(
            chunks,
            [Bytes::from_static(b"\r\n"), Bytes::from_static(b"\r\n")]
        );
        assert!(start.elapsed() >= Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn gzip_and_split_chunks_reassemble() {
        let state = state();
        let fault = Fault {
            split_chunks: true,
            ..Fault::default()
        };
        let mut plan = plan(fault);
        plan.gzip = true;
        let (chunks, _) = collect(&state, plan, counting_source(), 40).await;
        assert!(chunks.iter().all(|c| (1..=7).contains(&c.len())));
        let compressed: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut text = String::new();
        // A sync-flushed gzip stream without trailer: read what decodes.
        let _ = flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut text);
        assert!(text.starts_with("{\"n\":1}\r\n{\"n\":2}\r\n"), "{text:?}");
    }

    /// Real v1.1 lines of the repository's sample (2-12 KB each), framed as the v1.1 stream
    /// frames them: long enough that one line spans many compressed bytes.
    fn long_lines() -> Vec<Bytes> {
        include_str!("../../data/sample/stream.jsonl")
            .lines()
            .filter(|line| line.len() > 2_000)
            .take(4)
            .map(|line| Bytes::from(format!("{line}\r\n")))
            .collect()
    }

    /// The whole stream the emulator would send for `lines` (gzip, sync flush per line) and
    /// where each line's compressed bytes end.
    fn reference_gzip(lines: &[Bytes]) -> (Vec<u8>, Vec<usize>) {
        let mut encoder = Encoder::new(true, false, None);
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for line in lines {
            let encoded = encoder.encode(line.clone()).unwrap();
            stream.extend(encoded.chunks.iter().flat_map(|c| c.iter().copied()));
            ends.push(stream.len());
        }
        (stream, ends)
    }

    /// Everything a truncated gzip stream decodes to (the decoder's error at the cut is the
    /// expected end).
    fn decode_prefix(compressed: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        let outcome = flate2::read::GzDecoder::new(compressed).read_to_end(&mut decoded);
        assert!(outcome.is_err(), "a cut gzip stream must not end cleanly");
        decoded
    }

    fn replay(lines: Vec<Bytes>) -> impl FnMut() -> Option<Vec<Bytes>> + Send + 'static {
        let mut next = 0;
        move || {
            let line = lines[next % lines.len()].clone();
            next += 1;
            Some(vec![line])
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gzip_cut_sends_a_prefix_of_the_gzip_stream_and_stops_inside_a_line() {
        let lines = long_lines();
        assert_eq!(lines.len(), 4);
        let (reference, ends) = reference_gzip(&lines);
        // The middle of the third line's compressed bytes: well inside its deflate block.
        let cut = (ends[1] + ends[2]) / 2;
        assert!(
            ends[2] - ends[1] > 200,
            "the third line is too short to cut inside"
        );
        for split_chunks in [false, true] {
            let state = state();
            let fault = Fault {
                gzip_cut_after_bytes: Some(cut as u64),
                split_chunks,
                ..Fault::default()
            };
            let mut plan = plan(fault);
            plan.gzip = true;
            let (chunks, errored) = collect(&state, plan, replay(lines.clone()), 100_000).await;
            assert!(errored, "the body must fail (no final chunk), not end");
            let sent: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(sent.len(), cut);
            assert_eq!(
                sent,
                reference[..cut],
                "the bytes sent are a prefix of the stream"
            );

            let decoded = decode_prefix(&sent);
            let whole = [&lines[0][..], &lines[1][..]].concat();
            assert!(
                decoded.starts_with(&whole),
                "the first two lines arrive whole"
            );
            let partial = &decoded[whole.len()..];
            assert!(
                !partial.is_empty() && partial.len() < lines[2].len(),
                "the cut falls inside the third line ({} of {} bytes decoded)",
                partial.len(),
                lines[2].len()
            );
            assert!(lines[2].starts_with(partial));
            assert!(!partial.contains(&b'\n'));
            // The slot is free for the reconnect; the cut line is not counted as sent.
            assert!(ConnectionGuard::open(&state, Api::V2, true).is_some());
            let stats = state.stats(Api::V2).snapshot();
            assert_eq!(stats["lines_sent"], 2);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gzip_cut_needs_gzip() {
        // Without gzip (the request did not accept it) the cut does not apply.
        let state = state();
        let fault = Fault {
            gzip_cut_after_bytes: Some(5),
            ..Fault::default()
        };
        let (chunks, errored) = collect(&state, plan(fault), counting_source(), 3).await;
        assert!(!errored);
        assert_eq!(chunks[0], Bytes::from_static(b"{\"n\":1}\r\n"));
    }

    #[test]
    fn split_pieces_cover_the_payload() {
        let payload = Bytes::from_static(b"0123456789abcdefghijklmnopqrstuvwxyz");
        let pieces = split_randomly(payload.clone());
        assert!(pieces.iter().all(|p| (1..=7).contains(&p.len())));
        assert_eq!(pieces.concat(), payload.to_vec());
    }
}
