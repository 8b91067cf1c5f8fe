//! Response body decoding for the live streams, done here instead of in the HTTP client so
//! that nothing decoded is lost when a connection breaks.
//!
//! X's streams are sent `content-encoding: gzip` (RFC 1952) and a stream ends by being cut:
//! the network drops, X disconnects for a deploy, the body never gets its gzip footer. The HTTP
//! client's own decoder (reqwest 0.12 over async-compression) hands its output on in buffered
//! reads and, when the body ends in an error, returns the error and drops the bytes it had
//! already decoded for that read: measured here as about 4 KB before the cut vanishing in most
//! runs (issue 13). [`BodyDecoder`] is fed chunk by chunk and returns, for every chunk, every
//! byte that the compressed bytes so far can be decoded to (a sync flush of the inflater), so a
//! cut loses only the bytes the server never sent.

use std::io::Write as _;

use flate2::write::GzDecoder;

/// The `content-encoding` a streaming request asks for (RFC 9110, section 12.5.3).
pub const ACCEPT_ENCODING: &str = "gzip";

/// Decodes a response body chunk by chunk.
pub enum BodyDecoder {
    /// No content coding: chunks pass through.
    Identity,
    /// `content-encoding: gzip` (or `x-gzip`): inflated into the decoder's buffer.
    Gzip(Box<GzDecoder<Vec<u8>>>),
}

/// A body that is not valid gzip (a corrupt or unsupported stream).
#[derive(Debug, thiserror::Error)]
#[error("the gzip response body cannot be decoded: {0}")]
pub struct DecodeError(#[source] std::io::Error);

/// A `content-encoding` this decoder does not know (only `gzip` is ever asked for).
#[derive(Debug, thiserror::Error)]
#[error("the server answered with content-encoding '{0}', which was not asked for")]
pub struct UnsupportedEncoding(pub String);

impl BodyDecoder {
    /// The decoder for a response's `content-encoding` header value (`None`: no header).
    ///
    /// # Errors
    /// A coding other than identity or gzip.
    pub fn for_encoding(encoding: Option<&str>) -> Result<Self, UnsupportedEncoding> {
        match encoding.map(str::trim) {
            None | Some("") => Ok(Self::Identity),
            Some(coding) if coding.eq_ignore_ascii_case("identity") => Ok(Self::Identity),
            Some(coding)
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") =>
            {
                Ok(Self::Gzip(Box::new(GzDecoder::new(Vec::new()))))
            }
            Some(other) => Err(UnsupportedEncoding(other.to_owned())),
        }
    }

    /// Decodes one chunk and hands every byte decodable so far to `out` (nothing when the
    /// chunk completed no output, e.g. the gzip header alone).
    ///
    /// # Errors
    /// The stream is not valid gzip; the bytes decoded before the bad ones were handed on.
    pub fn decode(&mut self, chunk: &[u8], out: impl FnOnce(&[u8])) -> Result<(), DecodeError> {
        match self {
            Self::Identity => {
                out(chunk);
                Ok(())
            }
            Self::Gzip(decoder) => {
                let written = decoder.write_all(chunk).and_then(|()| decoder.flush());
                // What was decoded before an error is handed on all the same.
                let decoded = decoder.get_mut();
                if !decoded.is_empty() {
                    out(decoded);
                    decoded.clear();
                }
                written.map_err(DecodeError)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"text\":\"post number {i} of a stream\"}}\r\n").into_bytes()
            })
            .collect()
    }

    fn gzip(plain: &[u8], flush_every: Option<usize>) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        match flush_every {
            Some(n) => {
                for piece in plain.chunks(n) {
                    encoder.write_all(piece).unwrap();
                    encoder.flush().unwrap();
                }
            }
            None => encoder.write_all(plain).unwrap(),
        }
        encoder.finish().unwrap()
    }

    fn decode_in(decoder: &mut BodyDecoder, body: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in body.chunks(size) {
            decoder
                .decode(chunk, |bytes| out.extend_from_slice(bytes))
                .unwrap();
        }
        out
    }

    #[test]
    fn encodings_are_recognised() {
        assert!(matches!(
            BodyDecoder::for_encoding(None),
            Ok(BodyDecoder::Identity)
        ));
        assert!(matches!(
            BodyDecoder::for_encoding(Some("identity")),
            Ok(BodyDecoder::Identity)
        ));
        assert!(matches!(
            BodyDecoder::for_encoding(Some("GZIP")),
            Ok(BodyDecoder::Gzip(_))
        ));
        assert!(matches!(
            BodyDecoder::for_encoding(Some("x-gzip")),
            Ok(BodyDecoder::Gzip(_))
        ));
        let error = BodyDecoder::for_encoding(Some("br")).err().unwrap();
        assert_eq!(
            error.to_string(),
            "the server answered with content-encoding 'br', which was not asked for"
        );
    }

    #[test]
    fn any_chunking_decodes_the_whole_stream() {
        let plain = lines(300);
        let body = gzip(&plain, None);
        for size in [1, 2, 7, 10, 11, 64, 1000, body.len()] {
            let mut decoder = BodyDecoder::for_encoding(Some("gzip")).unwrap();
            assert_eq!(
                decode_in(&mut decoder, &body, size),
                plain,
                "chunks of {size}"
            );
        }
    }

    /// A server that flushes after every line makes each line decodable as soon as its bytes
    /// arrive: cut anywhere, the decoder hands on every line before the cut.
    #[test]
    fn a_cut_stream_yields_everything_before_the_cut() {
        let plain = lines(200);
        let line_len = plain.iter().position(|b| *b == b'\n').unwrap() + 1;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        let mut line_ends = Vec::new();
        for line in plain.chunks(line_len) {
            encoder.write_all(line).unwrap();
            encoder.flush().unwrap();
            line_ends.push(encoder.get_ref().len());
        }
        let body = encoder.finish().unwrap();
        for cut in (11..body.len() - 8).step_by(37) {
            for size in [1, 5, 4096] {
                let mut decoder = BodyDecoder::for_encoding(Some("gzip")).unwrap();
                let out = decode_in(&mut decoder, &body[..cut], size);
                let complete = line_ends.iter().filter(|end| **end <= cut).count();
                assert!(
                    out.len() >= complete * line_len,
                    "cut {cut}, chunks of {size}"
                );
                assert_eq!(out[..], plain[..out.len()], "cut {cut}, chunks of {size}");
            }
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_after_the_good_output() {
        let plain = lines(50);
        let mut body = gzip(&plain, Some(200));
        let good = body.len() / 2;
        body.truncate(good);
        body.extend_from_slice(&[0xff; 64]);
        let mut decoder = BodyDecoder::for_encoding(Some("gzip")).unwrap();
        let mut out = Vec::new();
        decoder
            .decode(&body[..good], |bytes| out.extend_from_slice(bytes))
            .unwrap();
        assert!(!out.is_empty());
        let error = decoder.decode(&body[good..], |bytes| out.extend_from_slice(bytes));
        assert!(error.is_err());
        assert_eq!(out[..], plain[..out.len()]);
    }
}
