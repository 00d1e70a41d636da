//! Splits a byte stream into frames: a 4-byte big-endian length, then that many bytes.
//!
//! A claimed length is checked against the limit before any memory is reserved for it, so a
//! peer's claim never allocates; a partial frame yields `Ok(None)` until the rest arrives.

use super::LEN_PREFIX;
use bytes::{Buf, BytesMut};
use std::io;
use tokio_util::codec::Decoder;

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

    /// Whether the decoder is between frames: it holds no part of one.
    pub(crate) fn is_between_frames(&self) -> bool {
        matches!(self.state, DecodeState::Head)
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
