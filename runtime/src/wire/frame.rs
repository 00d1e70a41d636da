//! Frames: a 4-byte big-endian length, then a bincode-encoded [`Header`], then (for requests and
//! replies) the bincode-encoded payload. docs/PROTOCOL.md is the normative description.
//!
//! The header is decoded borrowing from the frame, and the payload is a zero-copy slice of it, so
//! a request's argument bytes are never copied between the socket's read buffer and the decoding
//! of the argument value.

use super::LEN_PREFIX;
use super::header::Header;
use crate::codec::EncodeFailure;
use crate::error::{Code, Status};
use bytes::{BufMut, Bytes, BytesMut};

/// Why a frame could not be written.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The frame would exceed the limit.
    TooLarge { limit: usize },
    /// The payload could not be encoded.
    Invalid(String),
}

impl WriteFailure {
    /// The status a caller sees for this failure; `what` names the frame ("the request to
    /// `Example.echo`") and `knob` the setting that raises the limit.
    pub(crate) fn into_status(self, what: &str, knob: &str) -> Status {
        match self {
            WriteFailure::TooLarge { limit } => Status::new(
                Code::ResourceExhausted,
                format!(
                    "{what} is larger than the maximum frame length of {limit} bytes; \
                     raise {knob} on both peers to send it"
                ),
            ),
            WriteFailure::Invalid(e) => Status::new(Code::InvalidArgument, format!("{what} could not be encoded: {e}")),
        }
    }
}

/// Appends one frame (length prefix, header, and the payload written by `payload`) to `buf`.
/// On failure `buf` is left exactly as it was.
pub(crate) fn write_frame(
    buf: &mut BytesMut,
    max_frame_len: usize,
    header: &Header<'_>,
    payload: impl FnOnce(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
) -> Result<(), WriteFailure> {
    let start = buf.len();
    buf.put_u32(0);
    let limit = start + LEN_PREFIX + max_frame_len;
    let result = header.encode_into(buf, limit).and_then(|()| payload(buf, limit));
    match result {
        Ok(()) => {
            let len = buf.len() - start - LEN_PREFIX;
            // `len <= max_frame_len`, which `FrameDecoder::new` keeps below `u32::MAX`.
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            buf[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(match e {
                EncodeFailure::TooLarge => WriteFailure::TooLarge { limit: max_frame_len },
                EncodeFailure::Invalid(e) => WriteFailure::Invalid(e),
            })
        }
    }
}

/// Appends an `Item { id }` frame holding one item, written by `encode` after its 4-byte
/// little-endian length; returns the item's length. On failure `buf` is left as it was.
pub(crate) fn write_item(
    buf: &mut BytesMut,
    max_frame_len: usize,
    id: u64,
    encode: impl FnOnce(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
) -> Result<usize, WriteFailure> {
    let mut len = 0;
    write_frame(buf, max_frame_len, &Header::Item { id }, |buf, limit| {
        len = put_item(buf, limit, encode)?;
        Ok(())
    })?;
    Ok(len)
}

/// Appends one more item to the `Item` frame that starts at `start` and ends `buf`, and updates
/// the frame's length; returns the item's length. Fails with `TooLarge` if the frame would pass
/// the limit; on failure `buf` is left as it was. Always inlined: a stream's producer calls it
/// for every item, with the item's encoding inlined into it.
#[inline(always)]
pub(crate) fn append_item(
    buf: &mut BytesMut,
    start: usize,
    max_frame_len: usize,
    encode: impl FnOnce(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
) -> Result<usize, EncodeFailure> {
    let len = put_item(buf, start + LEN_PREFIX + max_frame_len, encode)?;
    let frame_len = u32::try_from(buf.len() - start - LEN_PREFIX).unwrap_or(u32::MAX);
    buf[start..start + LEN_PREFIX].copy_from_slice(&frame_len.to_be_bytes());
    Ok(len)
}

/// Writes an item's 4-byte little-endian length and the item; on failure `buf` is left as it was.
#[inline(always)]
fn put_item(
    buf: &mut BytesMut,
    limit: usize,
    encode: impl FnOnce(&mut BytesMut, usize) -> Result<(), EncodeFailure>,
) -> Result<usize, EncodeFailure> {
    let at = buf.len();
    if at + ITEM_LEN_PREFIX > limit {
        return Err(EncodeFailure::TooLarge);
    }
    buf.put_u32_le(0);
    if let Err(e) = encode(buf, limit) {
        buf.truncate(at);
        return Err(e);
    }
    let len = buf.len() - at - ITEM_LEN_PREFIX;
    // At most the frame length limit, which fits in 32 bits.
    buf[at..at + ITEM_LEN_PREFIX].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    Ok(len)
}

/// Bytes before each item in an `Item` frame's payload: its length.
const ITEM_LEN_PREFIX: usize = 4;

/// The lengths of the items of an `Item` frame's payload; an error if the payload does not split
/// into whole items.
pub(crate) fn item_lengths(payload: &[u8]) -> impl Iterator<Item = Result<usize, String>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at == payload.len() {
            return None;
        }
        let Some(prefix) = payload.get(at..at + ITEM_LEN_PREFIX) else {
            at = payload.len();
            return Some(Err("an item's length is cut off".to_owned()));
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = at + ITEM_LEN_PREFIX;
        if len > payload.len() - start {
            at = payload.len();
            return Some(Err(format!("an item claims {len} bytes, more than the frame holds")));
        }
        at = start + len;
        Some(Ok(len))
    })
}

/// Where the item that starts at `at` of a valid `Item` frame payload (one [`item_lengths`]
/// accepted) has its bytes, its length prefix skipped.
pub(crate) fn item_at(payload: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let prefix = payload.get(at..at.checked_add(ITEM_LEN_PREFIX)?)?;
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let start = at + ITEM_LEN_PREFIX;
    let end = start.checked_add(len)?;
    (end <= payload.len()).then_some(start..end)
}

/// Splits the first item off a valid `Item` frame payload (one [`item_lengths`] accepted).
#[cfg(test)]
pub(crate) fn split_item(payload: &mut Bytes) -> Option<Bytes> {
    let range = item_at(payload, 0)?;
    let item = payload.slice(range.clone());
    bytes::Buf::advance(payload, range.end);
    Some(item)
}

/// The items of a valid `Item` frame's payload, as zero-copy slices.
#[cfg(test)]
pub(crate) fn items(payload: &Bytes) -> Vec<Bytes> {
    let mut rest = payload.clone();
    std::iter::from_fn(|| split_item(&mut rest)).collect()
}

/// Appends a frame that has no payload.
pub(crate) fn write_header(buf: &mut BytesMut, max_frame_len: usize, header: &Header<'_>) -> Result<(), WriteFailure> {
    write_frame(buf, max_frame_len, header, |_, _| Ok(()))
}

/// A received frame: its header borrowed from `bytes`, and its payload as a zero-copy slice.
pub(crate) fn parse(bytes: &Bytes) -> Result<(Header<'_>, Bytes), String> {
    let (header, used) = Header::decode(bytes)?;
    Ok((header, bytes.slice(used..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, Outcome};
    use std::borrow::Cow;
    use tokio_util::codec::Decoder;

    fn frame(header: &Header<'_>, payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, DEFAULT_MAX_FRAME_LEN, header, |b, _| {
            b.extend_from_slice(payload);
            Ok(())
        })
        .expect("frame fits");
        buf
    }

    #[test]
    fn request_round_trips_with_borrowed_names_and_zero_copy_payload() {
        let header =
            Header::Request { id: 7, service: "Example".into(), method: "echo".into(), timeout_micros: Some(1500) };
        let mut buf = frame(&header, b"payload");
        let body = FrameDecoder::new(1024).decode(&mut buf).unwrap().unwrap().freeze();
        let (parsed, payload) = parse(&body).unwrap();
        assert_eq!(parsed, header);
        assert!(matches!(parsed, Header::Request { service: Cow::Borrowed(_), .. }));
        assert_eq!(&payload[..], b"payload");
        // The payload points into the frame's own buffer: no copy was made.
        assert_eq!(payload.as_ptr(), body[body.len() - 7..].as_ptr());
    }

    #[test]
    fn decoder_waits_for_partial_frames_byte_by_byte() {
        let whole = frame(&Header::Cancel { id: 300 }, b"");
        let mut decoder = FrameDecoder::new(1024);
        let mut src = BytesMut::new();
        for (i, byte) in whole.iter().enumerate() {
            src.put_u8(*byte);
            let out = decoder.decode(&mut src).unwrap();
            if i + 1 < whole.len() {
                assert!(out.is_none(), "frame yielded early at byte {i}");
            } else {
                let body = out.expect("complete frame").freeze();
                assert_eq!(parse(&body).unwrap().0, Header::Cancel { id: 300 });
            }
        }
    }

    #[test]
    fn large_frames_are_left_to_the_caller() {
        let mut src = frame(&Header::Cancel { id: 1 }, &[7; 100]);
        let whole = src.len() - LEN_PREFIX;
        src.truncate(LEN_PREFIX + 10);
        let mut decoder = FrameDecoder::new(1024).with_large_frames(64);
        assert!(decoder.decode(&mut src).unwrap().is_none());
        assert_eq!(decoder.take_large(), Some(whole));
        assert_eq!(src.len(), 10, "the body so far is left in the source");
        assert_eq!(decoder.take_large(), None);
        // Small frames, and large ones that are already complete, come out as usual.
        let mut src = frame(&Header::Cancel { id: 2 }, &[7; 100]);
        assert!(decoder.decode(&mut src).unwrap().is_some());
    }

    #[test]
    fn oversized_length_is_rejected_before_reserving() {
        let mut src = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
        let capacity_before = src.capacity();
        let err = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN).decode(&mut src).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the peer sent a frame of 4294967295 bytes, over the maximum frame length of 8388608 bytes"
        );
        assert!(src.capacity() <= capacity_before, "nothing was reserved for the claimed length");
    }

    #[test]
    fn writing_past_the_limit_fails_and_leaves_the_buffer_untouched() {
        let mut buf = BytesMut::from(&b"earlier frames"[..]);
        let err = write_frame(&mut buf, 64, &Header::Cancel { id: 1 }, |b, limit| {
            crate::codec::encode_into(&"x".repeat(100), b, limit)
        })
        .unwrap_err();
        assert!(matches!(err, WriteFailure::TooLarge { limit: 64 }));
        assert_eq!(&buf[..], b"earlier frames");
    }

    #[test]
    fn status_outcome_keeps_unicode_messages_intact() {
        let message = "délai dépassé ⏱ — 期限";
        let header = Header::Response { id: 1, outcome: Outcome::Status { code: 4, message: message.into() } };
        let mut buf = frame(&header, b"");
        let body = FrameDecoder::new(1024).decode(&mut buf).unwrap().unwrap().freeze();
        assert_eq!(parse(&body).unwrap().0, header);
    }
}
