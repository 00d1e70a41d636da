//! The wire format: the hello, frames and their headers. Everything that turns bytes into frames
//! and frames into bytes is here; docs/PROTOCOL.md is the normative description.

mod decoder;
mod frame;
pub(crate) mod handshake;
mod header;

pub use decoder::{FrameDecoder, FrameTooLarge};
#[cfg(test)]
pub(crate) use frame::items;
pub(crate) use frame::{
    WriteFailure, append_item, item_at, item_lengths, parse, write_frame, write_header, write_item,
};
pub(crate) use header::{Header, MAX_METADATA_ENTRIES, MetadataEntries, Outcome};

/// Bytes in the length prefix of every frame.
pub(crate) const LEN_PREFIX: usize = 4;

/// The nonce of the ping that follows a GoAway (keepalive nonces count up from 1): the server
/// closes the connection once its pong is back.
pub(crate) const GOAWAY_PING: u64 = u64::MAX;

/// The default maximum frame length (8 MiB), excluding the length prefix.
pub const DEFAULT_MAX_FRAME_LEN: usize = 8 * 1024 * 1024;
