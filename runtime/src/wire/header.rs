//! The head of every frame: what kind of frame it is, and the fields of that kind.
//!
//! Encoded with the body codec, borrowing strings from the frame. docs/PROTOCOL.md is the
//! normative description.

use crate::error::Status;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
        /// The status new calls fail with (a [`Code`](crate::Code) number).
        code: u16,
        /// Why, in words.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
    /// Either direction, protocol 1.1 and later: one item of the stream of call `id`. The
    /// payload is the encoded item. Sent only within the credit the receiver granted.
    Item {
        /// The call's id.
        id: u64,
    },
    /// Client to server, protocol 1.1 and later: the client sends no more items for call `id`.
    HalfClose {
        /// The call's id.
        id: u64,
    },
    /// Either direction, protocol 1.1 and later: the receiver of call `id`'s items grants the
    /// sender `bytes` more bytes of item payloads, as its application has taken that many.
    Credit {
        /// The call's id.
        id: u64,
        /// Bytes granted, on top of what was granted before.
        bytes: u64,
    },
    /// Client to server, protocol 1.2 and later: sent before the first call of a method on the
    /// connection. The payload is the method's schema descriptor; the server compares it with
    /// its own and refuses the method's calls on this connection if it cannot read them.
    Bind {
        /// The service's name as declared in the `.tidl` file.
        #[serde(borrow)]
        service: Cow<'a, str>,
        /// The method's name as declared in the `.tidl` file.
        #[serde(borrow)]
        method: Cow<'a, str>,
        /// The hash of the descriptor; equal fingerprints need no comparison.
        fingerprint: u64,
    },
    /// Client to server, protocol 1.4 and later: start a call that carries metadata (a call
    /// without any is a [`Header::Request`]). The payload is the encoded argument.
    Call {
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
        /// Key/value pairs, in order (at most [`MAX_METADATA_ENTRIES`]).
        #[serde(borrow)]
        metadata: MetadataEntries<'a>,
    },
}

/// The most metadata entries a `Call` may carry: a frame of empty entries would otherwise
/// decode into far more memory than its bytes (an entry takes two bytes on the wire and about
/// forty in memory). A peer that sends more broke the protocol.
pub(crate) const MAX_METADATA_ENTRIES: usize = 256;

/// The metadata of a [`Header::Call`], decoded with the entry limit.
#[derive(Debug, PartialEq, Serialize, Default)]
#[serde(transparent)]
pub(crate) struct MetadataEntries<'a>(#[serde(borrow)] pub(crate) Vec<(Cow<'a, str>, &'a [u8])>);

impl<'de: 'a, 'a> Deserialize<'de> for MetadataEntries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Entries<'a> {
            type Value = MetadataEntries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {MAX_METADATA_ENTRIES} metadata entries")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(entry) = seq.next_element::<(Cow<'a, str>, &'a [u8])>()? {
                    if entries.len() == MAX_METADATA_ENTRIES {
                        return Err(serde::de::Error::custom(format_args!(
                            "more than {MAX_METADATA_ENTRIES} metadata entries"
                        )));
                    }
                    entries.push(entry);
                }
                Ok(MetadataEntries(entries))
            }
        }
        deserializer.deserialize_seq(Entries(std::marker::PhantomData))
    }
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
        /// A [`Code`](crate::Code) number.
        code: u16,
        /// What happened.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
    /// Protocol 1.3 and later: the server refused the call before starting it (it is shutting
    /// down): no handler ran, so the client may send it again elsewhere.
    Refused {
        /// A [`Code`](crate::Code) number.
        code: u16,
        /// Why, in words.
        #[serde(borrow)]
        message: Cow<'a, str>,
    },
}

impl Outcome<'_> {
    pub(crate) fn status(status: &Status) -> Outcome<'_> {
        Outcome::Status { code: status.code().as_u16(), message: Cow::Borrowed(status.message()) }
    }
}
