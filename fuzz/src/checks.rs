//! Properties of the line router, the line framer and the post text extractor that hold for
//! every input, however malformed. Each `check_*` function takes the raw fuzzer input, panics
//! when a property fails, and returns normally otherwise.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the stable corpus replay
//! (`common/tests/fuzz_corpus.rs`, which includes this file with `#[path]`), so it uses only
//! `tweet_pipeline_common`, `serde`, `serde_json` and `std`.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::de::Deserializer;
use tweet_pipeline_common::framing::{Frame, LineFramer, DEFAULT_MAX_LINE_BYTES};
use tweet_pipeline_common::post::{html_to_text, parse_post};
use tweet_pipeline_common::{route_line, route_mastodon_event, Kind, LineClass, Routed};

/// Properties every routing decision has: a dead-letter kind carries a non-empty reason and
/// nothing else does; the kind's name round-trips (it is a header value).
fn check_routed(routed: &Routed<'_>) {
    let dead_letter = matches!(
        routed.kind,
        Kind::Malformed | Kind::Unknown | Kind::Oversized
    );
    match &routed.reason {
        Some(reason) => {
            assert!(dead_letter, "{:?} carries a reason: {reason}", routed.kind);
            assert!(!reason.is_empty(), "{:?} with an empty reason", routed.kind);
        }
        None => assert!(!dead_letter, "{:?} without a reason", routed.kind),
    }
    assert_eq!(Kind::parse(routed.kind.as_str()), Some(routed.kind));
    if dead_letter {
        assert_eq!(routed.key, None, "a dead-lettered line has no key");
    }
}

/// Whether `line` is one whole JSON document by `serde_json`'s scanner (`IgnoredAny`), which
/// checks syntax and nesting depth but not the range of numbers it skips.
fn is_json_syntax(line: &[u8]) -> bool {
    let mut de = Deserializer::from_slice(line);
    IgnoredAny::deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// Whether `line` builds a `serde_json::Value`: valid syntax and every number in range.
fn is_json_value(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line).is_ok()
}

/// Target `route_line`: the input is one stream line (terminator excluded).
///
/// Properties: every line is classified (a keep-alive exactly when it is blank); invalid UTF-8
/// and invalid JSON are `malformed`, JSON that builds a `serde_json::Value` is never
/// `malformed`; dead-letter kinds carry a reason ([`check_routed`]).
pub fn check_route_line(line: &[u8]) {
    let blank = line
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    match route_line(line) {
        LineClass::KeepAlive => assert!(blank, "a non-blank line routed as keep-alive"),
        LineClass::Record(routed) => {
            assert!(!blank, "a blank line routed as {:?}", routed.kind);
            check_routed(&routed);
            let utf8 = std::str::from_utf8(line).is_ok();
            // Between the two (a number beyond f64 range, e.g. `5e777`), a number the router
            // reads makes the line malformed, one it skips does not.
            if !utf8 || !is_json_syntax(line) {
                assert_eq!(routed.kind, Kind::Malformed, "invalid JSON not malformed");
            }
            if utf8 && is_json_value(line) {
                assert_ne!(
                    routed.kind,
                    Kind::Malformed,
                    "valid JSON malformed: {:?}",
                    routed.reason
                );
            }
        }
    }
}

/// Target `mastodon_event`: the input is `<event name>\n<data>`; without a newline the whole
/// input is the data of an `update` event.
///
/// Properties: `update` and `status.update` give a post (`tweet`/`retweet`, `edit`) with a key
/// or a `malformed` record with a reason; `delete` gives the trimmed payload as key or a
/// reason; any other event is a keyless `event`.
pub fn check_mastodon_event(input: &[u8]) {
    let (event, data) = match input.iter().position(|&b| b == b'\n') {
        Some(newline) => (
            String::from_utf8_lossy(&input[..newline]).into_owned(),
            &input[newline + 1..],
        ),
        None => ("update".to_owned(), input),
    };
    let routed = route_mastodon_event(&event, data);
    check_routed(&routed);
    match (event.as_str(), routed.kind) {
        (_, Kind::Malformed) => assert!(
            matches!(event.as_str(), "update" | "status.update" | "delete"),
            "event {event:?} dead-lettered"
        ),
        ("update", Kind::Tweet | Kind::Retweet) | ("status.update", Kind::Edit) => {
            assert!(routed.key.is_some(), "a post without a key")
        }
        ("delete", Kind::Delete) => {
            let id = std::str::from_utf8(data).map(str::trim);
            assert_eq!(
                routed.key.as_deref(),
                id.ok(),
                "delete keyed by its payload"
            );
            assert_ne!(routed.key.as_deref(), Some(""), "delete with an empty key");
        }
        ("update" | "status.update" | "delete", kind) => {
            panic!("event {event:?} routed as {kind:?}")
        }
        (_, kind) => {
            assert_eq!(kind, Kind::Event, "event {event:?}");
            assert_eq!(routed.key, None);
        }
    }
}

/// One frame, copied out of the framer's buffer.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    Oversized { prefix: Vec<u8>, len_bytes: usize },
}

/// Frames `stream` fed in the chunks `cuts` gives (ascending end offsets), checking after every
/// push that no more than `max_line_bytes` is held.
fn frame(stream: &[u8], max_line_bytes: usize, cuts: &[usize]) -> Vec<Owned> {
    let mut framer = LineFramer::new(max_line_bytes);
    let mut frames = Vec::new();
    let mut collect = |frame: Frame<'_>| -> Result<(), ()> {
        frames.push(match frame {
            Frame::Line(line) => Owned::Line(line.to_vec()),
            Frame::Oversized { prefix, len_bytes } => Owned::Oversized {
                prefix: prefix.to_vec(),
                len_bytes,
            },
        });
        Ok(())
    };
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        let end = end.clamp(start, stream.len());
        // `collect` never fails, so neither does `push`.
        let _ = framer.push(&stream[start..end], &mut collect);
        assert!(
            framer.pending_bytes() <= max_line_bytes,
            "{} bytes held with max_line_bytes {max_line_bytes}",
            framer.pending_bytes()
        );
        start = end;
    }
    let _ = framer.finish(&mut collect);
    frames
}

/// The framing invariant: walking `stream` from the start, each frame is the next line (its
/// first `max_line_bytes` bytes and true length when oversized), followed by `\n`, `\r\n`, a
/// final `\r` or the end of the input; together the frames and terminators are the whole input.
fn check_frames_cover(stream: &[u8], max_line_bytes: usize, frames: &[Owned]) {
    let mut at = 0;
    for (n, frame) in frames.iter().enumerate() {
        assert!(at < stream.len(), "frame {n} after the end of the input");
        let line_len = match frame {
            Owned::Line(line) => {
                assert!(line.len() <= max_line_bytes, "frame {n}: line over the max");
                assert_eq!(
                    &stream[at..at + line.len()],
                    &line[..],
                    "frame {n}: content"
                );
                line.len()
            }
            Owned::Oversized { prefix, len_bytes } => {
                assert!(
                    *len_bytes > max_line_bytes,
                    "frame {n}: oversized within max"
                );
                assert_eq!(prefix.len(), max_line_bytes, "frame {n}: prefix length");
                assert!(
                    at + len_bytes <= stream.len(),
                    "frame {n}: length past the end"
                );
                assert_eq!(
                    &stream[at..at + prefix.len()],
                    &prefix[..],
                    "frame {n}: prefix"
                );
                *len_bytes
            }
        };
        let line = &stream[at..at + line_len];
        assert!(!line.contains(&b'\n'), "frame {n}: contains a newline");
        at += line_len;
        let rest = &stream[at..];
        let terminator = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") || rest == b"\r" {
            1
        } else {
            assert!(
                rest.is_empty(),
                "frame {n}: not followed by a line terminator"
            );
            0
        };
        at += terminator;
    }
    assert_eq!(
        at,
        stream.len(),
        "input after the last frame was not framed"
    );
}

/// Target `line_framer`: byte 0 picks `max_line_bytes` (high bit set: the default 512 KiB,
/// else 1 + its low 7 bits), byte 1 seeds the chunk sizes, the rest is the stream.
///
/// Properties: the frames are the same for the whole stream in one chunk, byte by byte, and in
/// seeded random chunks; no more than `max_line_bytes` is ever held; the frames and their
/// terminators reproduce the input ([`check_frames_cover`]); a frame routes without panic.
pub fn check_line_framer(input: &[u8]) {
    let [selector, seed, stream @ ..] = input else {
        return;
    };
    let max_line_bytes = if selector & 0x80 != 0 {
        DEFAULT_MAX_LINE_BYTES
    } else {
        1 + usize::from(selector & 0x7f)
    };
    let whole = frame(stream, max_line_bytes, &[]);
    check_frames_cover(stream, max_line_bytes, &whole);
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(
        frame(stream, max_line_bytes, &bytewise),
        whole,
        "byte by byte"
    );
    // xorshift over the seed: chunk sizes 0..=16, zero-sized chunks included.
    let mut state = u32::from(*seed) | 0x100;
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        at += (state % 17) as usize;
        cuts.push(at.min(stream.len()));
    }
    assert_eq!(
        frame(stream, max_line_bytes, &cuts),
        whole,
        "chunks ending at {cuts:?}"
    );
    for frame in &whole {
        if let Owned::Line(line) = frame {
            let _ = route_line(line);
        }
    }
}

/// Target `parse_post`: the input is a record payload.
///
/// Properties: parsing never panics; the HTML extractor keeps
/// text without markup or entities as it is, and leaves no whole tag (a `<` with a later `>`)
/// when the input had no entities to decode into one.
pub fn check_parse_post(payload: &[u8]) {
    let _ = parse_post(payload);
    let html = String::from_utf8_lossy(payload);
    let text = html_to_text(&html);
    if !html.contains(['<', '&']) {
        assert_eq!(text, html, "plain text changed");
    }
    if !html.contains('&') {
        if let Some(open) = text.find('<') {
            assert!(
                !text[open..].contains('>'),
                "a tag survived: {:?}",
                &text[open..]
            );
        }
    }
}
