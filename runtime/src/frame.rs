//! Frames: a 4-byte big-endian length, then a bincode-encoded [`Header`], then (for requests and
//! replies) the bincode-encoded payload. docs/PROTOCOL.md is the normative description.
//!
//! The header is decoded borrowing from the frame, and the payload is a zero-copy slice of it, so
//! a request's argument bytes are never copied between the socket's read buffer and the decoding
//! of the argument value.

use crate::codec::{self, EncodeFailure};
use crate::error::{Code, Status};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io;
use tokio_util::codec::Decoder;

/// Bytes in the length prefix of every frame.
pub(crate) const LEN_PREFIX: usize = 4;

/// The default maximum frame length (8 MiB), excluding the length prefix.
pub const DEFAULT_MAX_FRAME_LEN: usize = 8 * 1024 * 1024;

/// The head of every frame. Variants are encoded by their index, so new variants are only ever
/// appended (a peer that does not know one reports the frame as undecodable).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Header<'a> {
    /// Client to server: start a call. The payload is the encoded argument.
    Request {
        /// Chosen by the client, unique among its calls in flight on this connection.
        id: u64,
        /// The service's name as declared in the `.tidl` file.
        #[serde(borrow)]
        service: Cow<'a, str>,
        /// The method's name as declared in the `.tidl` file.
        #[serde(borrow)]
        method: Cow<'a, str>,
        /// The time the server may spend, in microseconds from when it reads the frame.
        timeout_micros: Option<u64>,
    },
    /// Client to server: stop the call `id`. Unknown ids are ignored.
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// Server to client: how the call `id` ended. The payload is the encoded reply value for
    /// [`Outcome::Ok`], the encoded application error for [`Outcome::AppError`], else empty.
    Response {
        /// The request's id.
        id: u64,
        /// Success, application error, or an RPC-layer status.
        #[serde(borrow)]
        outcome: Outcome<'a>,
    },
    /// Either direction: are you alive? Answered with [`Header::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back in the pong.
        nonce: u64,
    },
    /// Either direction: the answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Server to client: start no new calls on this connection; calls in flight may still finish.
    /// Sent on graceful shutdown and before the server closes a connection for a protocol error.
    GoAway {
        /// The status new calls fail with (a [`Code`] number).
        code: u16,
        /// Why, in words.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
}

/// How a call ended, in a [`Header::Response`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Outcome<'a> {
    /// The handler returned `Ok`; the payload is the reply.
    Ok,
    /// The handler returned its declared error; the payload is that error.
    AppError,
    /// The call failed in the RPC layer.
    Status {
        /// A [`Code`] number.
        code: u16,
        /// What happened.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
}

impl Outcome<'_> {
    pub(crate) fn status(status: &Status) -> Outcome<'_> {
        Outcome::Status { code: status.code().as_u16(), message: Cow::Borrowed(status.message()) }
    }
}

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
    let result = codec::encode_into(header, buf, limit).and_then(|()| payload(buf, limit));
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

/// Appends a frame that has no payload.
pub(crate) fn write_header(buf: &mut BytesMut, max_frame_len: usize, header: &Header<'_>) -> Result<(), WriteFailure> {
    write_frame(buf, max_frame_len, header, |_, _| Ok(()))
}

/// A received frame: its header borrowed from `bytes`, and its payload as a zero-copy slice.
pub(crate) fn parse(bytes: &Bytes) -> Result<(Header<'_>, Bytes), String> {
    let (header, used) = codec::decode_borrowed::<Header<'_>>(bytes)?;
    Ok((header, bytes.slice(used..)))
}

/// Splits a byte stream into frames, checking each claimed length against the limit before
/// reserving any memory for it.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_len: usize,
    state: DecodeState,
    /// Frames at least this long are left to the caller (see [`FrameDecoder::take_large`]).
    large_frames: usize,
}

#[derive(Debug, Clone, Copy)]
enum DecodeState {
    Head,
    Data(usize),
    /// The head of a large frame was read; the caller reads its body.
    Large(usize),
}

/// A peer announced a frame longer than the limit.
#[derive(Debug, thiserror::Error)]
#[error("the peer sent a frame of {len} bytes, over the maximum frame length of {max} bytes")]
pub struct FrameTooLarge {
    /// The length the peer announced.
    pub len: u64,
    /// The limit in force.
    pub max: usize,
}

impl FrameDecoder {
    /// A decoder that rejects frames longer than `max_frame_len` bytes (capped at `u32::MAX`).
    pub fn new(max_frame_len: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame_len: max_frame_len.min(u32::MAX as usize),
            state: DecodeState::Head,
            large_frames: usize::MAX,
        }
    }

    /// Leaves frames of at least `threshold` bytes to the caller: `decode` stops after such a
    /// frame's head (reserving nothing for it), and [`take_large`](Self::take_large) gives its
    /// length, so the caller can read the body into a buffer of its own.
    pub(crate) fn with_large_frames(mut self, threshold: usize) -> FrameDecoder {
        self.large_frames = threshold;
        self
    }

    /// The length of a large frame whose head was just read (its body, or the start of it, is
    /// what the source buffer holds); decoding then starts afresh at the next frame.
    pub(crate) fn take_large(&mut self) -> Option<usize> {
        match self.state {
            DecodeState::Large(len) => {
                self.state = DecodeState::Head;
                Some(len)
            }
            _ => None,
        }
    }
}

impl Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let len = match self.state {
            DecodeState::Data(len) => len,
            DecodeState::Large(_) => return Ok(None),
            DecodeState::Head => {
                if src.len() < LEN_PREFIX {
                    return Ok(None);
                }
                let len = u64::from(src.get_u32());
                if len > self.max_frame_len as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        FrameTooLarge { len, max: self.max_frame_len },
                    ));
                }
                // Checked against the limit above, so this fits and is safe to reserve.
                let len = len as usize;
                if len >= self.large_frames && src.len() < len {
                    self.state = DecodeState::Large(len);
                    return Ok(None);
                }
                src.reserve(len.saturating_sub(src.len()));
                self.state = DecodeState::Data(len);
                len
            }
        };
        if src.len() < len {
            return Ok(None);
        }
        self.state = DecodeState::Head;
        Ok(Some(src.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            codec::encode_into(&"x".repeat(100), b, limit)
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
