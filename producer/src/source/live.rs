//! The live streaming loop shared by every API: connect, read chunks with a stall timer, frame
//! them into lines (or Server-Sent Events), route and write each one, and reconnect as the
//! APIs document ([`crate::reconnect`]). Only a 401/403 stops it, or the shutdown signal.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::framing::{Frame, LineFramer};
use tweet_pipeline_common::metrics::ProducerMetrics;
use tweet_pipeline_common::route_mastodon_event;

use crate::budget::{self, BudgetLimits, ReadBudget};
use crate::delivery::KafkaSink;
use crate::ingest::{Ingest, IngestStats};
use crate::source::gzip::{BodyDecoder, ACCEPT_ENCODING};
use crate::source::reconnect::{with_jitter, Backoff, Disconnect};

/// How long a connection attempt (until the response headers) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error response body is read to classify it.
const ERROR_BODY_MAX_BYTES: usize = 16 * 1024;
/// A connection that stayed up this long counts as healthy even if it brought no posts.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// How a stream's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON message per `\r\n`-terminated line; blank lines are keep-alives (X APIs).
    Lines,
    /// Server-Sent Events; `:` comment lines are heartbeats (Mastodon).
    ServerSentEvents,
}

/// What one API needs to connect.
pub trait StreamApi {
    /// Closed-set label for metrics and logs (`x_v2`, `x_v1`, `mastodon`).
    fn label(&self) -> &'static str;
    /// The `source` header value of its records.
    fn source(&self) -> String;
    /// The body framing.
    fn framing(&self) -> Framing;
    /// Silence (no data, no keep-alive) after which the connection counts as stalled.
    fn stall_timeout(&self) -> Duration;
    /// Builds the streaming request (signed, where the API wants a signature per request).
    fn request(&self, client: &reqwest::Client) -> anyhow::Result<reqwest::RequestBuilder>;
    /// What to tell the operator when the API answers 401/403.
    fn unauthorized_hint(&self) -> &'static str;
    /// A warning the connect log line carries (an endpoint known to refuse every client);
    /// `None` for a plain `connecting` line.
    fn connect_warning(&self) -> Option<&'static str> {
        None
    }
}

/// The HTTP client of the live sources: connection pool and timeouts, and no content decoding
/// of its own ([`gzip`](crate::source::gzip) decodes, so that a cut stream loses nothing already received).
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("tweet-pipeline/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .no_gzip()
        .build()
}

/// What every live source runs with.
pub struct LiveContext {
    /// The HTTP client ([`http_client`]).
    pub client: reqwest::Client,
    /// Where records go.
    pub sink: Arc<KafkaSink>,
    /// The producer's metrics.
    pub metrics: ProducerMetrics,
    /// Lines longer than this are dead-lettered.
    pub max_line_bytes: usize,
    /// Shutdown.
    pub cancel: CancellationToken,
    /// The X read budget (X streams only; `None` for others).
    pub budget: Option<BudgetConfig>,
}

/// What an X stream's read budget is made of (the `--max-post-reads-*` flags).
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// The limits.
    pub limits: BudgetLimits,
    /// US dollars per post read.
    pub price_per_read_usd: f64,
    /// Where the counts survive a restart (`None`: in memory only).
    pub state_file: Option<std::path::PathBuf>,
}

/// Classifies a non-200 answer to a connection attempt. `body` is the start of the body.
pub fn classify_status(status: u16, body: &str) -> Disconnect {
    match status {
        401 | 403 => Disconnect::Unauthorized(status),
        429 if budget::is_usage_capped(body) => Disconnect::UsageCapped {
            reset_epoch_secs: None,
        },
        429 if body.contains("TooManyConnections") => Disconnect::TooManyConnections,
        420 | 429 => Disconnect::RateLimited(status),
        _ => Disconnect::Http(status),
    }
}

/// Runs `api` until `cancel` fires, or until the API refuses the credential (an error that
/// names it).
///
/// # Errors
/// On 401/403, or when the request cannot be built.
pub async fn run<A: StreamApi>(api: &A, context: &LiveContext) -> anyhow::Result<IngestStats> {
    let LiveContext {
        client,
        sink,
        metrics,
        max_line_bytes,
        cancel,
        budget: _,
    } = context;
    let label = api.label();
    let mut ingest = Ingest::new(sink, metrics, api.source(), *max_line_bytes);
    if let Some(config) = &context.budget {
        ingest = ingest.with_budget(ReadBudget::load(
            config.limits,
            config.price_per_read_usd,
            config.state_file.clone(),
        ));
    }
    let mut backoff = Backoff::default();
    let connected = metrics.stream_connected.with_label_values(&[label]);
    let backoff_gauge = metrics.stream_backoff_seconds.with_label_values(&[label]);
    while !cancel.is_cancelled() {
        if let Some(pause) = ingest.budget_pause(Utc::now()) {
            ingest.save_budget();
            let delay = budget::until(pause.until, Utc::now());
            let (day_reads, month_reads) = ingest.budget_reads().unwrap_or_default();
            backoff_gauge.set(delay.as_secs_f64());
            tracing::warn!(
                api = label,
                window = pause.window.as_str(),
                day_reads,
                month_reads,
                resume_at = %pause.until.to_rfc3339(),
                "read budget reached: stream paused until the next UTC {}", pause.window.as_str()
            );
            if !wait(delay, cancel).await {
                break;
            }
            backoff_gauge.set(0.0);
            tracing::info!(api = label, "read budget window renewed: stream resumes");
            continue;
        }
        match api.connect_warning() {
            Some(warning) => tracing::warn!(api = label, "connecting; {warning}"),
            None => tracing::info!(api = label, "connecting"),
        }
        let ended = tokio::select! {
            _ = cancel.cancelled() => break,
            outcome = connect_and_read(api, client, &mut ingest, metrics, cancel) => outcome?,
        };
        connected.set(0);
        ingest.save_budget();
        let Some(Ended {
            disconnect,
            healthy,
        }) = ended
        else {
            break;
        };
        metrics
            .stream_disconnects
            .with_label_values(&[label, disconnect.reason()])
            .inc();
        if let Disconnect::UsageCapped { reset_epoch_secs } = disconnect {
            // One wait for the reset X gives, never a reconnect loop against the cap.
            let delay = budget::usage_cap_wait(reset_epoch_secs, Utc::now());
            backoff_gauge.set(delay.as_secs_f64());
            tracing::error!(
                api = label,
                reason = disconnect.reason(),
                retry_in_ms = delay.as_millis() as u64,
                "X answered 429 usage-capped (the app's monthly read cap): waiting for the reset before connecting again"
            );
            if !wait(delay, cancel).await {
                break;
            }
            backoff_gauge.set(0.0);
            continue;
        }
        if disconnect == Disconnect::BudgetPaused {
            // The loop's top logs the pause and waits for the next window.
            continue;
        }
        let Some(delay) = backoff.after(Ended {
            disconnect,
            healthy,
        }) else {
            bail!(
                "the {label} stream refused the credential ({}); {}",
                match disconnect {
                    Disconnect::Unauthorized(status) => status,
                    _ => 0,
                },
                api.unauthorized_hint()
            );
        };
        let delay = with_jitter(delay, rand::random::<f64>());
        backoff_gauge.set(delay.as_secs_f64());
        tracing::warn!(
            api = label,
            reason = disconnect.reason(),
            detail = ?disconnect,
            retry_in_ms = delay.as_millis() as u64,
            last_post_id = ingest.stats.last_post_id.as_str(),
            last_post_at_ms = ingest.stats.last_post_at_ms,
            "stream disconnected; reconnecting (back-fill from the last post id if the gap matters)"
        );
        if !wait(delay, cancel).await {
            break;
        }
        backoff_gauge.set(0.0);
    }
    Ok(ingest.stats)
}

/// Sleeps `delay`; `false` when `cancel` fired first.
async fn wait(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

impl Backoff {
    /// The wait after a connection ended (without jitter; `None`: stop). An established
    /// stream that delivered data and then ended is reconnected at once, whatever ended it;
    /// attempts that never got that far back off by their kind.
    fn after(&mut self, ended: Ended) -> Option<Duration> {
        let next = match (ended.healthy, ended.disconnect) {
            (true, _) => Disconnect::Dropped,
            // Closed before delivering anything: no reason to hurry back.
            (false, Disconnect::Dropped) => Disconnect::Network,
            (false, other) => other,
        };
        self.next_delay(next)
    }
}

/// How a connection (attempt) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ended {
    /// Why.
    disconnect: Disconnect,
    /// Whether it was an established, healthy stream (delivered posts, or stayed up for
    /// [`HEALTHY_AFTER`]) before it ended.
    healthy: bool,
}

/// One connection: `Ok(None)` when stopped by `cancel`.
async fn connect_and_read<A: StreamApi>(
    api: &A,
    client: &reqwest::Client,
    ingest: &mut Ingest<'_>,
    metrics: &ProducerMetrics,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<Ended>> {
    let failed = |disconnect| {
        Ok(Some(Ended {
            disconnect,
            healthy: false,
        }))
    };
    let request = api
        .request(client)?
        .header(reqwest::header::ACCEPT_ENCODING, ACCEPT_ENCODING);
    let mut response = match tokio::time::timeout(CONNECT_TIMEOUT, request.send()).await {
        Err(_elapsed) => return failed(Disconnect::Network),
        Ok(Err(error)) => {
            tracing::debug!(api = api.label(), error = %without_url(&error), "connection attempt failed");
            return failed(Disconnect::Network);
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let encoding = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let mut body = match BodyDecoder::for_encoding(encoding.as_deref()) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(api = api.label(), %error, "connection refused: unreadable body");
            return failed(Disconnect::Network);
        }
    };
    if status != 200 {
        let reset = response
            .headers()
            .get("x-rate-limit-reset")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<i64>().ok());
        let body = read_error_body(&mut response, &mut body).await;
        tracing::debug!(api = api.label(), status, body = %body, "connection refused");
        return failed(match classify_status(status, &body) {
            Disconnect::UsageCapped { .. } => Disconnect::UsageCapped {
                reset_epoch_secs: reset,
            },
            other => other,
        });
    }
    metrics
        .stream_connections
        .with_label_values(&[api.label()])
        .inc();
    metrics
        .stream_connected
        .with_label_values(&[api.label()])
        .set(1);
    tracing::info!(api = api.label(), "connected");
    let connected_at = Instant::now();
    let posts_before = ingest.stats.lines_read - ingest.stats.keepalives;
    let mut framer = LineFramer::new(ingest.max_line_bytes());
    let mut events = SseParser::default();
    let framing = api.framing();
    let ended = loop {
        let chunk = tokio::select! {
            _ = cancel.cancelled() => break None,
            chunk = tokio::time::timeout(api.stall_timeout(), response.chunk()) => chunk,
        };
        match chunk {
            Err(_elapsed) => break Some(Disconnect::Stall),
            Ok(Err(error)) => {
                tracing::debug!(api = api.label(), error = %without_url(&error), "read failed");
                break Some(Disconnect::Network);
            }
            // The server closed the stream.
            Ok(Ok(None)) => break Some(Disconnect::Dropped),
            Ok(Ok(Some(bytes))) => {
                // Routing and the producer's backpressure wait are blocking work.
                let decoded = tokio::task::block_in_place(|| {
                    body.decode(&bytes, |decoded| {
                        push(&mut framer, &mut events, framing, decoded, ingest)
                    })
                });
                if let Err(error) = decoded {
                    tracing::warn!(api = api.label(), %error, "stream ended: undecodable body");
                    break Some(Disconnect::Network);
                }
                // Disconnect before the limit: no post past it is read (and billed).
                if ingest.budget_pause(Utc::now()).is_some() {
                    break Some(Disconnect::BudgetPaused);
                }
            }
        }
    };
    // An unterminated last line is a message cut off by the disconnect: it goes to the
    // dead-letter topic rather than vanishing.
    tokio::task::block_in_place(|| finish(&mut framer, &mut events, framing, ingest));
    let delivered = ingest.stats.lines_read - ingest.stats.keepalives > posts_before;
    let healthy = delivered || connected_at.elapsed() >= HEALTHY_AFTER;
    if let Some(disconnect) = ended {
        tracing::info!(
            api = api.label(),
            reason = disconnect.reason(),
            healthy,
            "stream ended"
        );
    }
    Ok(ended.map(|disconnect| Ended {
        disconnect,
        healthy,
    }))
}

fn push(
    framer: &mut LineFramer,
    events: &mut SseParser,
    framing: Framing,
    bytes: &[u8],
    ingest: &mut Ingest<'_>,
) {
    let _ = framer.push(bytes, |frame| {
        on_frame(frame, events, framing, ingest);
        Ok::<(), Infallible>(())
    });
}

fn finish(
    framer: &mut LineFramer,
    events: &mut SseParser,
    framing: Framing,
    ingest: &mut Ingest<'_>,
) {
    let _ = framer.finish(|frame| {
        on_frame(frame, events, framing, ingest);
        Ok::<(), Infallible>(())
    });
    if framing == Framing::ServerSentEvents {
        // An event without its terminating blank line was cut off.
        if let Some((event, data)) = events.take_partial() {
            let routed = tweet_pipeline_common::Routed::dead_letter(
                tweet_pipeline_common::Kind::Malformed,
                format!("server-sent event '{event}' cut off by the disconnect"),
            );
            ingest.record(&data, routed);
        }
    }
}

fn on_frame(frame: Frame<'_>, events: &mut SseParser, framing: Framing, ingest: &mut Ingest<'_>) {
    match framing {
        Framing::Lines => ingest.frame(frame),
        Framing::ServerSentEvents => match frame {
            Frame::Line(line) => match events.line(line) {
                SseLine::Heartbeat => ingest.keepalive(),
                SseLine::Event(event, data) => {
                    let routed = route_mastodon_event(&event, &data);
                    ingest.record(&data, routed);
                }
                SseLine::Pending => {}
            },
            oversized @ Frame::Oversized { .. } => {
                events.clear();
                ingest.frame(oversized);
            }
        },
    }
}

/// What one SSE line completed.
#[derive(Debug, PartialEq, Eq)]
enum SseLine {
    /// A comment line (`:thump`): Mastodon's heartbeat.
    Heartbeat,
    /// A blank line dispatched an event: its name (default `message`) and data.
    Event(String, Vec<u8>),
    /// Part of an event.
    Pending,
}

/// Server-Sent Events parser over framed lines (WHATWG HTML, "Server-sent events",
/// section 9.2.6 "Interpreting an event stream"): `event:` sets the name, `data:` lines are
/// joined with `\n`, a blank line dispatches, `:` starts a comment.
#[derive(Debug, Default)]
struct SseParser {
    event: String,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    fn line(&mut self, line: &[u8]) -> SseLine {
        if line.is_empty() {
            if !self.has_data {
                self.event.clear();
                return SseLine::Pending;
            }
            let event = if self.event.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut self.event)
            };
            let data = std::mem::take(&mut self.data);
            self.clear();
            return SseLine::Event(event, data);
        }
        if line[0] == b':' {
            return SseLine::Heartbeat;
        }
        let (field, value) = match memchr_colon(line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            _ => {} // `id`, `retry` and unknown fields are not needed.
        }
        SseLine::Pending
    }

    fn take_partial(&mut self) -> Option<(String, Vec<u8>)> {
        if !self.has_data {
            return None;
        }
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        self.clear();
        Some((event, data))
    }

    fn clear(&mut self) {
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

fn memchr_colon(line: &[u8]) -> Option<usize> {
    line.iter().position(|b| *b == b':')
}

/// A reqwest error's text without the URL (which may carry an access token in its query).
pub fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

async fn read_error_body(response: &mut reqwest::Response, decoder: &mut BodyDecoder) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_MAX_BYTES {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                if decoder
                    .decode(&chunk, |bytes| body.extend_from_slice(bytes))
                    .is_err()
                {
                    break;
                }
            }
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_MAX_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_documented() {
        assert_eq!(classify_status(401, ""), Disconnect::Unauthorized(401));
        assert_eq!(
            classify_status(403, "client-not-enrolled"),
            Disconnect::Unauthorized(403)
        );
        let zombie = r#"{"title":"ConnectionException","connection_issue":"TooManyConnections"}"#;
        assert_eq!(classify_status(429, zombie), Disconnect::TooManyConnections);
        assert_eq!(classify_status(429, "{}"), Disconnect::RateLimited(429));
        assert_eq!(classify_status(420, ""), Disconnect::RateLimited(420));
        assert_eq!(classify_status(503, ""), Disconnect::Http(503));
    }

    /// The waits between attempts, in paused (virtual) time: a 503, a zombie 429, a healthy
    /// stream that dropped, then a network error.
    #[tokio::test(start_paused = true)]
    async fn waits_follow_the_documented_table() {
        let cancel = CancellationToken::new();
        let mut backoff = Backoff::default();
        let failed = |disconnect| Ended {
            disconnect,
            healthy: false,
        };
        let mut waited = Vec::new();
        for ended in [
            failed(Disconnect::Http(503)),
            failed(Disconnect::Http(503)),
            failed(Disconnect::TooManyConnections),
            Ended {
                disconnect: Disconnect::Stall,
                healthy: true,
            },
            failed(Disconnect::Dropped),
            failed(Disconnect::Network),
        ] {
            let delay = backoff.after(ended).expect("not fatal");
            let started = tokio::time::Instant::now();
            assert!(wait(with_jitter(delay, 0.5), &cancel).await);
            waited.push(started.elapsed().as_millis() as u64);
        }
        // Jitter at 0.5 adds 5 %; the timer rounds up to whole milliseconds.
        assert_eq!(waited, vec![5_250, 10_500, 63_000, 0, 263, 525]);
        assert_eq!(backoff.after(failed(Disconnect::Unauthorized(401))), None);
        // A shutdown during a wait ends it at once.
        cancel.cancel();
        let started = tokio::time::Instant::now();
        assert!(!wait(Duration::from_secs(300), &cancel).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// The budget's waits in paused time: a `usage-capped` 429 is classified as its own reason
    /// and answered by one wait to its reset (the rate-limit backoff untouched); a daily limit
    /// reached 30 s before midnight waits 30 s, after which the new day lets the stream resume.
    #[tokio::test(start_paused = true)]
    async fn usage_caps_and_budget_pauses_wait_once_on_the_clock() {
        let cancel = CancellationToken::new();
        let capped = r#"{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.twitter.com/2/problems/usage-capped","period":"Monthly","scope":"Product"}"#;
        let disconnect = classify_status(429, capped);
        assert_eq!(disconnect.reason(), "usage_capped");
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-31T23:59:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let delay = budget::usage_cap_wait(Some(now.timestamp() + 3600), now);
        let started = tokio::time::Instant::now();
        assert!(wait(delay, &cancel).await);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(3600),
            "one wait, to the reset"
        );
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_delay(disconnect), Some(Duration::ZERO));
        assert_eq!(
            backoff.next_delay(Disconnect::RateLimited(429)),
            Some(Duration::from_secs(60)),
            "a usage cap does not advance the rate-limit backoff"
        );

        let limits = budget::BudgetLimits {
            per_day: Some(1),
            per_month: None,
        };
        let mut state = budget::BudgetState::default();
        state.record(now);
        let pause = state.pause(limits, now).expect("limit reached");
        let started = tokio::time::Instant::now();
        assert!(wait(budget::until(pause.until, now), &cancel).await);
        let elapsed = started.elapsed();
        assert_eq!(elapsed, Duration::from_secs(30));
        let resumed_at = now + chrono::Duration::from_std(elapsed).unwrap();
        assert_eq!(
            state.pause(limits, resumed_at),
            None,
            "the next UTC day resumes"
        );
    }

    #[test]
    fn sse_events_heartbeats_and_multiline_data() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for line in [
            ":thump",
            "event: update",
            "data: {\"id\":\"1\"}",
            "",
            "event: delete",
            "data: 1",
            "",
            "data: a",
            "data:b",
            "",
        ] {
            match parser.line(line.as_bytes()) {
                SseLine::Pending => {}
                other => out.push(other),
            }
        }
        assert_eq!(
            out,
            vec![
                SseLine::Heartbeat,
                SseLine::Event("update".into(), b"{\"id\":\"1\"}".to_vec()),
                SseLine::Event("delete".into(), b"1".to_vec()),
                SseLine::Event("message".into(), b"a\nb".to_vec()),
            ]
        );
        parser.line(b"event: update");
        parser.line(b"data: {\"id\":");
        assert_eq!(
            parser.take_partial(),
            Some(("update".into(), b"{\"id\":".to_vec()))
        );
        assert_eq!(parser.take_partial(), None);
    }
}
