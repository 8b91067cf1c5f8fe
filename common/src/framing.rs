//! Line framing for streams: splits bytes, delivered in chunks of any size, into lines.
//!
//! The X streaming APIs delimit messages with `\r\n` and send blank lines as keep-alives
//! (X API v1.1 "Consuming streaming data", X API v2 "Filtered stream" integration guide);
//! recordings use `\n` or `\r\n`. A line may be split across chunks (HTTP chunked transfer),
//! so the framer keeps the unfinished tail between calls. Memory is bounded: a line longer than
//! `max_line_bytes` is not buffered past that size; it is reported as [`Frame::Oversized`] with
//! its first `max_line_bytes` bytes and its full length, and the framer resynchronises at the
//! next newline.

/// One framed line, without its terminator (`\n`, or `\r\n`).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line of at most `max_line_bytes` bytes.
    Line(&'a [u8]),
    /// A line longer than `max_line_bytes`: its first `max_line_bytes` bytes and its length
    /// in bytes.
    Oversized {
        /// The first `max_line_bytes` bytes of the line.
        prefix: &'a [u8],
        /// The length of the whole line in bytes, terminator excluded.
        len_bytes: usize,
    },
}

/// Default bound on one line: 512 KiB. A v1.1 status is 2–20 KB and a v2 message with its
/// expansions rarely passes 100 KB, while a dead-lettered prefix of this size still fits
/// librdkafka's default `message.max.bytes` (1,000,000) and the broker's (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 512 * 1024;

/// Push-based line splitter. Feed it chunks with [`LineFramer::push`]; call
/// [`LineFramer::finish`] at end of input for a last line without terminator.
#[derive(Debug)]
pub struct LineFramer {
    max_line_bytes: usize,
    /// The unfinished line carried over from earlier chunks (at most `max_line_bytes`).
    pending: Vec<u8>,
    /// Length of the current line so far when it has outgrown `max_line_bytes`.
    oversized_len: Option<usize>,
    /// Whether the last byte of the current line so far is `\r`: the first half of a `\r\n`
    /// terminator if the next byte is `\n`. `pending` alone cannot tell once it is full.
    ends_with_cr: bool,
}

impl LineFramer {
    /// A framer that reports lines longer than `max_line_bytes` as [`Frame::Oversized`].
    ///
    /// # Panics
    /// If `max_line_bytes` is 0.
    pub fn new(max_line_bytes: usize) -> Self {
        assert!(max_line_bytes > 0, "max_line_bytes must be at least 1");
        Self {
            max_line_bytes,
            pending: Vec::new(),
            oversized_len: None,
            ends_with_cr: false,
        }
    }

    /// Splits `chunk`, calling `on_frame` for every line it completes, in order. Lines that lie
    /// wholly inside `chunk` are passed without copying.
    pub fn push<E>(
        &mut self,
        mut chunk: &[u8],
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(newline) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = (&chunk[..newline], &chunk[newline + 1..]);
            chunk = rest;
            if self.pending.is_empty() && self.oversized_len.is_none() {
                let line = strip_cr(head);
                if line.len() <= self.max_line_bytes {
                    on_frame(Frame::Line(line))?;
                } else {
                    on_frame(Frame::Oversized {
                        prefix: &line[..self.max_line_bytes],
                        len_bytes: line.len(),
                    })?;
                }
                continue;
            }
            self.append(head);
            self.emit_pending(&mut on_frame)?;
        }
        self.append(chunk);
        Ok(())
    }

    /// Ends the input: a last line without terminator, if any, is passed to `on_frame`.
    pub fn finish<E>(
        &mut self,
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.pending.is_empty() && self.oversized_len.is_none() {
            return Ok(());
        }
        self.emit_pending(&mut on_frame)
    }

    /// Bytes of an unfinished line held between chunks (at most `max_line_bytes`).
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    fn append(&mut self, bytes: &[u8]) {
        let Some(&last) = bytes.last() else {
            return;
        };
        self.ends_with_cr = last == b'\r';
        let room = self.max_line_bytes - self.pending.len().min(self.max_line_bytes);
        match self.oversized_len.as_mut() {
            Some(len) => *len += bytes.len(),
            None if bytes.len() <= room => self.pending.extend_from_slice(bytes),
            None => {
                self.oversized_len = Some(self.pending.len() + bytes.len());
                self.pending.extend_from_slice(&bytes[..room]);
            }
        }
    }

    fn emit_pending<E>(
        &mut self,
        on_frame: &mut impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let result = match self.oversized_len.take() {
            // A final `\r` belongs to the terminator, as `strip_cr` has it for lines that fit:
            // it is not counted, and a line of exactly `max_line_bytes` before `\r\n` is a
            // line, however the chunks fell (`pending` then holds the whole line).
            Some(len) => match len - usize::from(self.ends_with_cr) {
                len_bytes if len_bytes <= self.max_line_bytes => {
                    on_frame(Frame::Line(&self.pending[..len_bytes]))
                }
                len_bytes => on_frame(Frame::Oversized {
                    prefix: &self.pending,
                    len_bytes,
                }),
            },
            None => on_frame(Frame::Line(strip_cr(&self.pending))),
        };
        self.pending.clear();
        self.ends_with_cr = false;
        result
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Owned {
        Line(Vec<u8>),
        Oversized(Vec<u8>, usize),
    }

    fn frame_all(chunks: &[&[u8]], max: usize) -> Vec<Owned> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        let mut collect = |frame: Frame<'_>| -> Result<(), ()> {
            out.push(match frame {
                Frame::Line(line) => Owned::Line(line.to_vec()),
                Frame::Oversized { prefix, len_bytes } => {
                    Owned::Oversized(prefix.to_vec(), len_bytes)
                }
            });
            Ok(())
        };
        for chunk in chunks {
            framer.push(chunk, &mut collect).unwrap();
        }
        framer.finish(&mut collect).unwrap();
        out
    }

    fn line(s: &str) -> Owned {
        Owned::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn crlf_lf_and_blank_keep_alives() {
        let got = frame_all(&[b"{\"a\":1}\r\n\r\n{\"b\":2}\n\n"], 64);
        assert_eq!(
            got,
            vec![line("{\"a\":1}"), line(""), line("{\"b\":2}"), line("")]
        );
    }

    #[test]
    fn lines_split_across_chunks_at_every_position() {
        let input = b"{\"id\":1}\r\n\r\n{\"id\":22}\r\nlast";
        let whole = frame_all(&[input], 64);
        assert_eq!(
            whole,
            vec![
                line("{\"id\":1}"),
                line(""),
                line("{\"id\":22}"),
                line("last")
            ]
        );
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(frame_all(&[a, b], 64), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frame_all(&bytes, 64), whole);
    }

    #[test]
    fn oversized_lines_are_bounded_and_resynchronised() {
        let got = frame_all(&[b"ok\nabcdefghij\r\nnext\n"], 4);
        assert_eq!(
            got,
            vec![
                line("ok"),
                Owned::Oversized(b"abcd".to_vec(), 10),
                line("next")
            ]
        );
        // The same, fed byte by byte: nothing beyond 4 bytes is held.
        let input = b"ok\nabcdefghij\nnext\n";
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let got = frame_all(&bytes, 4);
        assert_eq!(
            got,
            vec![
                line("ok"),
                Owned::Oversized(b"abcd".to_vec(), 10),
                line("next")
            ]
        );
        // A line of exactly the limit is a line.
        assert_eq!(frame_all(&[b"abcd\n"], 4), vec![line("abcd")]);
        // An oversized unterminated tail is reported at finish.
        assert_eq!(
            frame_all(&[b"abc", b"def"], 4),
            vec![Owned::Oversized(b"abcd".to_vec(), 6)]
        );
    }

    /// Found by the `line_framer` fuzz target: with `\r\n` terminators the result depended on
    /// where the chunks were cut (a line of exactly the limit became oversized, an oversized
    /// line's length counted its `\r`).
    #[test]
    fn crlf_terminator_is_not_counted_whatever_the_chunks() {
        let input = b"abcd\r\nabcdefghij\r\nend\r";
        let whole = frame_all(&[input], 4);
        assert_eq!(
            whole,
            vec![
                line("abcd"),
                Owned::Oversized(b"abcd".to_vec(), 10),
                line("end")
            ]
        );
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frame_all(&bytes, 4), whole);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(frame_all(&[a, b], 4), whole, "cut at {cut}");
        }
    }

    #[test]
    fn pending_is_bounded() {
        let mut framer = LineFramer::new(8);
        for _ in 0..1000 {
            framer.push(b"0123456789", |_| Ok::<(), ()>(())).unwrap();
        }
        assert!(framer.pending_bytes() <= 8);
    }
}
