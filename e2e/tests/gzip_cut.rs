//! A gzip stream cut off mid-line (issue 13): a plain socket server, not the emulator, sends a
//! real recorded filter stream as X does (`transfer-encoding: chunked`, `content-encoding:
//! gzip`, CRLF-delimited), stops at a chosen byte of the compressed body and closes the
//! connection without the last chunk. Every complete line must reach Kafka exactly once, and
//! the dead letter must be exactly the decodable bytes after the last complete line.
//!
//! Each cut is one connection of one `tweet-producer --api v1` process: after a cut the
//! producer reconnects at once (the stream was healthy) and gets the next cut. The cuts vary
//! the compression (a sync flush per line, as a streaming server sends, or one deflate stream
//! with no flush), the segmentation (the whole prefix in one write, or many writes of 1 to 64
//! bytes) and the cut offset. `TWEET_PIPELINE_GZIP_CUTS` sets how many cuts (default 36).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::{Compression, Decompress, FlushDecompress};
use rand::{Rng as _, SeedableRng as _};
use support::{create_topics, delete_topics, producer_command, read_back, terminate, topic_flags};
use tweet_pipeline_common::Destination;

/// The gzip header flate2's encoder writes: magic, method, no flags, mtime, xfl, OS (RFC 1952,
/// section 2.3); the deflate stream starts after it.
const GZIP_HEADER_BYTES: usize = 10;

/// How the server compresses the stream.
#[derive(Debug, Clone, Copy)]
enum Compressed {
    /// A sync flush after every line: each line is decodable as soon as its bytes arrive.
    FlushPerLine,
    /// One deflate stream, flushed only at the end: output comes in deflate blocks.
    Whole,
}

/// How the server writes the bytes before the cut.
#[derive(Debug, Clone, Copy)]
enum Segments {
    /// One HTTP chunk, one socket write.
    One,
    /// HTTP chunks of 1 to 64 bytes, each its own socket write.
    Small,
}

/// One cut connection.
#[derive(Debug, Clone, Copy)]
struct Cut {
    segments: Segments,
    /// Compressed bytes sent before the connection is closed.
    at: usize,
}

/// The recorded filter stream (lines 201–360 of the repository's sample: statuses/filter
/// traffic of 2016 and 2018), as CRLF-terminated lines.
fn recorded_lines() -> Vec<Vec<u8>> {
    let path = support::repo_root().join("data/sample/stream.jsonl");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split(|b| *b == b'\n')
        .skip(200)
        .take(160)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        .filter(|line| !line.is_empty())
        .collect()
}

fn compress(lines: &[Vec<u8>], how: Compressed) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for line in lines {
        encoder.write_all(line).unwrap();
        encoder.write_all(b"\r\n").unwrap();
        if let Compressed::FlushPerLine = how {
            encoder.flush().unwrap();
        }
    }
    encoder.finish().unwrap()
}

/// Everything a decoder can get out of `prefix` (a gzip stream cut short), decoded in one go
/// with zlib's raw inflate: the reference the producer's output is checked against.
fn decodable(prefix: &[u8]) -> Vec<u8> {
    let mut inflate = Decompress::new(false);
    let mut out = Vec::with_capacity(prefix.len() * 12 + 1024);
    let input = &prefix[GZIP_HEADER_BYTES.min(prefix.len())..];
    let mut consumed = 0;
    loop {
        out.reserve(64 * 1024);
        let before = inflate.total_in();
        inflate
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .expect("a prefix of a valid deflate stream");
        consumed += (inflate.total_in() - before) as usize;
        if consumed >= input.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// The records a cut must yield: every complete line, and the cut-off rest (CR stripped, as
/// the framer strips a line's terminator) if any.
fn expected(decoded: &[u8]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut lines: Vec<Vec<u8>> = decoded.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let tail = lines.pop().filter(|tail| !tail.is_empty());
    let strip = |line: Vec<u8>| match line.strip_suffix(b"\r") {
        Some(stripped) => stripped.to_vec(),
        None => line,
    };
    (
        lines.into_iter().map(strip).collect(),
        tail.map(strip).filter(|tail| !tail.is_empty()),
    )
}

/// Reads one request (headers, then a `content-length` body) so that closing the socket
/// sends FIN, not a reset that could discard data still in flight.
fn read_request(stream: &TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
}

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
transfer-encoding: chunked\r\ncontent-encoding: gzip\r\nconnection: close\r\n\r\n";

fn chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
    frame.extend_from_slice(bytes);
    frame.extend_from_slice(b"\r\n");
    stream.write_all(&frame)
}

/// Serves `cuts` one connection each, then holds the next connection open without data
/// (sending `()` on `done` when it arrives) until the producer is stopped.
fn serve(listener: TcpListener, cuts: Vec<(Cut, Vec<u8>)>, done: mpsc::Sender<()>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    for (cut, body) in cuts {
        let (mut stream, _) = listener.accept().expect("the producer connects");
        stream.set_nodelay(true).unwrap();
        read_request(&stream);
        stream.write_all(HEAD).unwrap();
        let prefix = &body[..cut.at];
        match cut.segments {
            Segments::One => chunk(&mut stream, prefix).unwrap(),
            Segments::Small => {
                let mut rest = prefix;
                while !rest.is_empty() {
                    let n = rng.random_range(1..=64).min(rest.len());
                    chunk(&mut stream, &rest[..n]).unwrap();
                    rest = &rest[n..];
                }
            }
        }
        // The cut: no terminating zero-length chunk, the connection just closes.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let (mut stream, _) = listener.accept().expect("the producer reconnects");
    read_request(&stream);
    stream.write_all(HEAD).unwrap();
    let _ = done.send(());
    // Held open until the producer closes it on shutdown.
    let _ = stream.read_to_end(&mut Vec::new());
}

/// Waits until the broker's metadata lists every new topic with its partitions: the producer
/// checks them at start-up, and on a busy broker creation is acknowledged before metadata
/// answers with the topic.
fn wait_for_topics(names: &tweet_pipeline_common::config::TopicNames) {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let probe: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", support::bootstrap())
        .create()
        .expect("metadata client");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for destination in Destination::ALL {
        let topic = names.name(destination);
        while !probe
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|m| {
                m.topics().iter().any(|t| {
                    t.error().is_none() && t.partitions().len() == support::PARTITIONS as usize
                })
            })
        {
            assert!(
                std::time::Instant::now() < deadline,
                "topic {topic} never appeared in the metadata"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_line_decoded_before_a_gzip_cut_reaches_kafka_exactly_once() {
    let count: usize = std::env::var("TWEET_PIPELINE_GZIP_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(36);
    let lines = recorded_lines();
    assert!(lines.len() > 100, "the sample holds the filter stream");
    let bodies = [
        (
            Compressed::FlushPerLine,
            compress(&lines, Compressed::FlushPerLine),
        ),
        (Compressed::Whole, compress(&lines, Compressed::Whole)),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(2015);
    let mut cuts = Vec::new();
    let mut want: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut want_dead: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut tails = Vec::new();
    for i in 0..count {
        let (_, body) = &bodies[i % 2];
        let segments = if (i / 2) % 2 == 0 {
            Segments::One
        } else {
            Segments::Small
        };
        // Spread over the body (never the whole of it: the footer is never sent), jittered.
        let span = body.len() - GZIP_HEADER_BYTES - 16;
        let mut at =
            GZIP_HEADER_BYTES + 1 + (span * (i + 1) / (count + 1) + rng.random_range(0..97)) % span;
        // At least one complete line, so that the producer counts the stream healthy and
        // reconnects at once (after an empty one it backs off, as its reconnect table says).
        let (complete, tail) = loop {
            let (complete, tail) = expected(&decodable(&body[..at]));
            if !complete.is_empty() {
                break (complete, tail);
            }
            at += 257;
        };
        let cut = Cut { segments, at };
        for line in complete {
            *want.entry(line).or_default() += 1;
        }
        if let Some(tail) = tail {
            // A complete post whose CRLF was cut is routed as a post, not dead-lettered.
            if serde_json::from_slice::<serde::de::IgnoredAny>(&tail).is_err() {
                *want_dead.entry(tail.clone()).or_default() += 1;
                tails.push((i, segments, at, tail.clone()));
            }
            *want.entry(tail).or_default() += 1;
        }
        cuts.push((cut, body.clone()));
    }
    let total: usize = want.values().sum();

    let names = create_topics(&support::unique("gzip-cut")).await;
    wait_for_topics(&names);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (done_tx, done_rx) = mpsc::channel();
    let server = thread::spawn(move || serve(listener, cuts, done_tx));
    let log = std::env::temp_dir().join(support::unique("gzip-cut-producer.log"));
    let producer = producer_command()
        .args([
            "--api",
            "v1",
            "--track",
            "anything",
            "--metrics-addr",
            "off",
        ])
        .arg(format!("--base-url={url}"))
        .args(topic_flags(&names))
        .env("X_CONSUMER_KEY", "key")
        .env("X_CONSUMER_SECRET", "secret")
        .env("X_ACCESS_TOKEN", "token")
        .env("X_ACCESS_TOKEN_SECRET", "token-secret")
        .stdout(Stdio::piped())
        // A file, not a pipe: a pipe nobody reads fills with the reconnect logs and blocks.
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("tweet-producer starts");
    let served = done_rx.recv_timeout(Duration::from_secs(300));
    let output = terminate(producer);
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        served.is_ok(),
        "the producer did not take every cut stream:\n{stderr}"
    );
    assert!(
        output.status.success(),
        "tweet-producer failed: {}\n{stderr}",
        output.status
    );
    let _ = std::fs::remove_file(&log);
    server.join().expect("server thread");

    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let records = read_back(&topics, total);
    let mut got: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut got_dead: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for (topic, _key, value, _headers) in &records {
        *got.entry(value.clone()).or_default() += 1;
        if topic == &names.deadletter {
            *got_dead.entry(value.clone()).or_default() += 1;
        }
    }
    let missing: usize = want
        .iter()
        .map(|(line, n)| n.saturating_sub(got.get(line).copied().unwrap_or(0)))
        .sum();
    let unexpected: usize = got
        .iter()
        .map(|(line, n)| n.saturating_sub(want.get(line).copied().unwrap_or(0)))
        .sum();
    let tails_missing: usize = want_dead
        .iter()
        .map(|(tail, n)| n.saturating_sub(got_dead.get(tail).copied().unwrap_or(0)))
        .sum();
    for (i, segments, at, tail) in &tails {
        if !got_dead.contains_key(tail) {
            println!(
                "cut {i} ({segments:?}, {} compression, at byte {at}): its dead letter of {} bytes is missing; it ends {:?}",
                if i % 2 == 0 { "flush per line" } else { "whole" },
                tail.len(),
                String::from_utf8_lossy(&tail[tail.len().saturating_sub(40)..])
            );
        }
    }
    println!(
        "{{\"cuts\":{count},\"records_expected\":{total},\"records_read\":{},\"missing\":{missing},\"unexpected\":{unexpected},\"dead_letters_expected\":{},\"dead_letters_wrong\":{tails_missing}}}",
        records.len(),
        want_dead.values().sum::<usize>()
    );
    assert_eq!(
        (missing, unexpected, tails_missing),
        (0, 0, 0),
        "{count} cuts: {missing} of {total} records missing, {unexpected} unexpected, \
         {tails_missing} dead letters not exactly the cut-off bytes"
    );
    delete_topics(&names).await;
}
