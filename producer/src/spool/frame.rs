//! The spool's frame format (see the parent module's documentation for the layout):
//! encoding a record, reading a frame with its CRC check, decoding a body.

use std::io::{self, Read};
use std::path::Path;

use rdkafka::message::Headers;
use tweet_pipeline_common::Kind;

use super::{io_error, RecordRef, SpoolError, SpooledRecord};

/// Bytes before a frame's body: its length and its CRC.
pub(super) const FRAME_HEADER_BYTES: u64 = 8;
/// Frame body format version.
const VERSION: u8 = 1;
/// Largest frame body accepted when reading: a line is at most a few MiB (`--max-line-bytes`
/// plus headers); anything larger is corruption.
const MAX_FRAME_BYTES: u32 = 64 << 20;

/// Reads one frame at the reader's position: `Ok(None)` when the file ends inside it.
pub(super) fn read_frame(
    reader: &mut impl Read,
    path: &Path,
    offset: u64,
) -> Result<Option<(u64, Vec<u8>)>, SpoolError> {
    let mut header = [0_u8; FRAME_HEADER_BYTES as usize];
    if !read_full(reader, &mut header).map_err(io_error(path))? {
        return Ok(None);
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len > MAX_FRAME_BYTES {
        return Err(SpoolError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: "implausible frame length",
        });
    }
    let mut body = vec![0_u8; len as usize];
    if !read_full(reader, &mut body).map_err(io_error(path))? {
        return Ok(None);
    }
    if crc32fast::hash(&body) != crc {
        return Err(SpoolError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: "CRC mismatch",
        });
    }
    Ok(Some((FRAME_HEADER_BYTES + u64::from(len), body)))
}

/// `read_exact` that reports a clean or partial end of file as `false`.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buffer) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(error),
    }
}

pub(super) fn encode<H: Headers>(buffer: &mut Vec<u8>, record: &RecordRef<'_, H>) {
    buffer.clear();
    buffer.extend_from_slice(&[0; FRAME_HEADER_BYTES as usize]);
    buffer.push(VERSION);
    buffer.push(record.kind.code());
    buffer.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    put_short(buffer, record.topic.as_bytes());
    put_optional(buffer, record.key);
    let count = record
        .headers
        .map_or(0, |h| h.count().min(usize::from(u16::MAX)));
    buffer.extend_from_slice(&(count as u16).to_le_bytes());
    if let Some(headers) = record.headers {
        for header in headers.iter().take(count) {
            put_short(buffer, header.key.as_bytes());
            put_optional(buffer, header.value);
        }
    }
    buffer.extend_from_slice(record.payload);
    let body_len = (buffer.len() - FRAME_HEADER_BYTES as usize) as u32;
    let crc = crc32fast::hash(&buffer[FRAME_HEADER_BYTES as usize..]);
    buffer[0..4].copy_from_slice(&body_len.to_le_bytes());
    buffer[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn put_short(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(usize::from(u16::MAX));
    buffer.extend_from_slice(&(len as u16).to_le_bytes());
    buffer.extend_from_slice(&bytes[..len]);
}

fn put_optional(buffer: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => buffer.extend_from_slice(&(-1_i32).to_le_bytes()),
        Some(bytes) => {
            buffer.extend_from_slice(&(bytes.len() as i32).to_le_bytes());
            buffer.extend_from_slice(bytes);
        }
    }
}

/// Decodes a frame body; `None` when it is malformed.
pub(super) fn decode(body: &[u8]) -> Option<SpooledRecord> {
    let mut cursor = Cursor { body, at: 0 };
    if cursor.take(1)?[0] != VERSION {
        return None;
    }
    // A code from a newer build: the record still goes to its topic, labelled unknown.
    let kind = Kind::from_code(cursor.take(1)?[0]).unwrap_or(Kind::Unknown);
    let timestamp_ms = i64::from_le_bytes(cursor.take(8)?.try_into().ok()?);
    let topic = String::from_utf8(cursor.short()?.to_vec()).ok()?;
    let key = cursor.optional()?.map(<[u8]>::to_vec);
    let count = u16::from_le_bytes(cursor.take(2)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let name = String::from_utf8(cursor.short()?.to_vec()).ok()?;
        let value = cursor.optional()?.map(<[u8]>::to_vec);
        headers.push((name, value));
    }
    let payload = body[cursor.at..].to_vec();
    Some(SpooledRecord {
        topic,
        kind,
        timestamp_ms,
        key,
        headers,
        payload,
        frame_bytes: 0,
    })
}

struct Cursor<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.body.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn short(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?);
        self.take(usize::from(len))
    }

    fn optional(&mut self) -> Option<Option<&'a [u8]>> {
        let len = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
        if len < 0 {
            return Some(None);
        }
        self.take(len as usize).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::OwnedHeaders;

    use super::*;

    /// Spools written by older builds stored the same byte for each kind: the codes are
    /// pinned (`Kind::code`), and the frame carries that byte right after the version.
    #[test]
    fn the_frame_stores_the_kind_code() {
        let mut buffer = Vec::new();
        for kind in Kind::ALL {
            encode(
                &mut buffer,
                &RecordRef::<OwnedHeaders> {
                    topic: "control",
                    kind,
                    timestamp_ms: 1,
                    key: None,
                    headers: None,
                    payload: b"{}",
                },
            );
            let body = &buffer[FRAME_HEADER_BYTES as usize..];
            assert_eq!(body[..2], [VERSION, kind.code()]);
            assert_eq!(decode(body).map(|record| record.kind), Some(kind));
        }
        let mut unknown = buffer[FRAME_HEADER_BYTES as usize..].to_vec();
        unknown[1] = 200;
        assert_eq!(
            decode(&unknown).map(|record| record.kind),
            Some(Kind::Unknown)
        );
    }
}
