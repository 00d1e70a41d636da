//! Entry points for the fuzz targets in `runtime/fuzz/`, compiled only with the `fuzzing`
//! feature. **Not an API**: hidden from the docs, unstable, and free to change with the
//! internals it reaches into. Each function is a thin wrapper over a private item.

use crate::codec;
use crate::wire::{self, FrameDecoder, handshake};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::Decoder;

/// The server's check of a client's hello (`handshake::decode`); the error as its message.
pub fn decode_client_hello(bytes: &[u8; 8]) -> Result<(), String> {
    handshake::decode(*bytes).map(drop).map_err(|e| e.to_string())
}

/// The client's check of the server's hello (`handshake::decode_server_hello`).
pub fn decode_server_hello(bytes: &[u8; 8]) -> Result<(), String> {
    handshake::decode_server_hello(*bytes).map(drop).map_err(|e| e.to_string())
}

/// A frame body (without its length prefix) as the read loop parses it (`wire::parse`).
#[derive(Debug)]
pub struct Parsed {
    /// The header's `Debug` form.
    pub header: String,
    /// The payload: the zero-copy slice of the frame after the header.
    pub payload: Bytes,
    /// The header encoded again, as a sender would write it (without a payload).
    pub reencoded: Bytes,
}

/// Parses a frame body's header, and encodes the header again.
pub fn parse_frame(frame: &Bytes) -> Result<Parsed, String> {
    let (header, payload) = wire::parse(frame)?;
    let reencoded = codec::encode(&header)?;
    Ok(Parsed { header: format!("{header:?}"), payload, reencoded })
}

/// Decodes exactly one `T` filling `bytes`, through the strict codec every payload goes through.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    codec::decode(bytes)
}

/// A [`FrameDecoder`] that, like the read loop's, leaves frames of at least `threshold` bytes to
/// the caller ([`take_large`]).
pub fn decoder_with_large_frames(max_frame_len: usize, threshold: usize) -> FrameDecoder {
    FrameDecoder::new(max_frame_len).with_large_frames(threshold)
}

/// `FrameDecoder::take_large`: the length of a large frame whose head was just read.
pub fn take_large(decoder: &mut FrameDecoder) -> Option<usize> {
    decoder.take_large()
}

/// `FrameDecoder::is_between_frames`: whether the decoder holds no part of a frame.
pub fn is_between_frames(decoder: &FrameDecoder) -> bool {
    decoder.is_between_frames()
}

/// `Decoder::decode` on a [`FrameDecoder`], so the fuzz target needs no `tokio-util` of its own.
pub fn next_frame(decoder: &mut FrameDecoder, src: &mut BytesMut) -> std::io::Result<Option<BytesMut>> {
    decoder.decode(src)
}

/// Encodes `value` as a payload, through the codec every payload goes through.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    codec::encode(value)
}
