//! The head of every frame: what kind of frame it is, and the fields of that kind.
//!
//! Encoded with the body codec, borrowing strings from the frame. docs/PROTOCOL.md is the
//! normative description.

use crate::codec::{self, EncodeFailure, Take};
use crate::error::Status;
use bytes::{BufMut, BytesMut};
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

impl<'a> Header<'a> {
    /// Appends the header as the body codec encodes it, failing once `buf` would grow past
    /// `limit` bytes (the caller then truncates `buf`). The frequent kinds (a request without
    /// metadata, a successful or application-error response, a stream's item, credit and cancel)
    /// are written by hand, byte for byte as bincode writes them ([`codec::put_varint`]): through
    /// serde, a header took about eight small writes.
    pub(crate) fn encode_into(&self, buf: &mut BytesMut, limit: usize) -> Result<(), EncodeFailure> {
        match self {
            Header::Request { id, service, method, timeout_micros } => {
                buf.reserve(32 + service.len() + method.len());
                buf.put_u8(REQUEST);
                codec::put_varint(buf, *id);
                codec::put_str(buf, service);
                codec::put_str(buf, method);
                match timeout_micros {
                    None => buf.put_u8(0),
                    Some(micros) => {
                        buf.put_u8(1);
                        codec::put_varint(buf, *micros);
                    }
                }
            }
            Header::Response { id, outcome: outcome @ (Outcome::Ok | Outcome::AppError) } => {
                buf.reserve(16);
                buf.put_u8(RESPONSE);
                codec::put_varint(buf, *id);
                buf.put_u8(if *outcome == Outcome::Ok { OK } else { APP_ERROR });
            }
            Header::Item { id } => {
                buf.reserve(16);
                buf.put_u8(ITEM);
                codec::put_varint(buf, *id);
            }
            Header::Cancel { id } => {
                buf.reserve(16);
                buf.put_u8(CANCEL);
                codec::put_varint(buf, *id);
            }
            Header::Credit { id, bytes } => {
                buf.reserve(24);
                buf.put_u8(CREDIT);
                codec::put_varint(buf, *id);
                codec::put_varint(buf, *bytes);
            }
            header => return codec::encode_into(header, buf, limit),
        }
        if buf.len() > limit {
            return Err(EncodeFailure::TooLarge);
        }
        Ok(())
    }

    /// Decodes the header at the front of `frame`, and how many bytes it takes. The kinds that
    /// [`Header::encode_into`] writes by hand are read by hand when they are in the form it
    /// writes; anything else, malformed headers included, is decoded (or refused) by the body
    /// codec, which then says what is wrong.
    pub(crate) fn decode(frame: &'a [u8]) -> Result<(Header<'a>, usize), String> {
        match Header::decode_short(frame) {
            Some(decoded) => Ok(decoded),
            None => codec::decode_borrowed::<Header<'_>>(frame),
        }
    }

    /// [`Header::decode`] of the kinds written by hand, or `None`.
    fn decode_short(frame: &'a [u8]) -> Option<(Header<'a>, usize)> {
        let mut take = Take::new(frame);
        let header = match take.byte()? {
            REQUEST => Header::Request {
                id: take.varint()?,
                service: Cow::Borrowed(take.str()?),
                method: Cow::Borrowed(take.str()?),
                timeout_micros: match take.byte()? {
                    0 => None,
                    1 => Some(take.varint()?),
                    _ => return None,
                },
            },
            RESPONSE => Header::Response {
                id: take.varint()?,
                outcome: match take.byte()? {
                    OK => Outcome::Ok,
                    APP_ERROR => Outcome::AppError,
                    _ => return None,
                },
            },
            ITEM => Header::Item { id: take.varint()? },
            CANCEL => Header::Cancel { id: take.varint()? },
            CREDIT => Header::Credit { id: take.varint()?, bytes: take.varint()? },
            _ => return None,
        };
        Some((header, take.used()))
    }
}

/// The variant indexes of the kinds written by hand, as serde numbers them (in declaration
/// order), each a one-byte varint.
const REQUEST: u8 = 0;
const CANCEL: u8 = 1;
const RESPONSE: u8 = 2;
const ITEM: u8 = 6;
const CREDIT: u8 = 8;
/// The variant indexes of [`Outcome::Ok`] and [`Outcome::AppError`].
const OK: u8 = 0;
const APP_ERROR: u8 = 1;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the body codec writes for `header`.
    fn by_codec(header: &Header<'_>) -> BytesMut {
        let mut buf = BytesMut::new();
        codec::encode_into(header, &mut buf, usize::MAX).expect("encodes");
        buf
    }

    /// Values at the edges of each length of bincode's varints.
    const EDGES: [u64; 9] = [0, 250, 251, 65_535, 65_536, 4_294_967_295, 4_294_967_296, 1 << 62, u64::MAX];

    fn every_kind(n: u64) -> Vec<Header<'static>> {
        let long = "m".repeat(300);
        vec![
            Header::Request { id: n, service: "Example".into(), method: "echo".into(), timeout_micros: None },
            Header::Request { id: n, service: "".into(), method: long.clone().into(), timeout_micros: Some(n) },
            Header::Request { id: 1, service: "Ünï".into(), method: "ok".into(), timeout_micros: Some(n) },
            Header::Response { id: n, outcome: Outcome::Ok },
            Header::Response { id: n, outcome: Outcome::AppError },
            Header::Response { id: n, outcome: Outcome::Status { code: 13, message: "broke".into() } },
            Header::Response { id: n, outcome: Outcome::Refused { code: 14, message: long.into() } },
            Header::Item { id: n },
            Header::Cancel { id: n },
            Header::Credit { id: n, bytes: n / 3 },
            Header::Ping { nonce: n },
            Header::Pong { nonce: n },
            Header::HalfClose { id: n },
            Header::GoAway { code: 14, message: "bye".into() },
            Header::Bind { service: "S".into(), method: "m".into(), fingerprint: n },
            Header::Call {
                id: n,
                service: "S".into(),
                method: "m".into(),
                timeout_micros: Some(n),
                metadata: MetadataEntries(vec![("k".into(), b"v".as_slice())]),
            },
        ]
    }

    #[test]
    fn headers_written_and_read_by_hand_are_the_codecs_bytes_and_values() {
        for n in EDGES {
            for header in every_kind(n) {
                let expected = by_codec(&header);
                let mut buf = BytesMut::from(&b"prefix"[..]);
                header.encode_into(&mut buf, usize::MAX).expect("encodes");
                assert_eq!(&buf[6..], &expected[..], "{header:?}");
                let mut frame = expected.to_vec();
                frame.extend_from_slice(b"payload");
                let by_hand = matches!(
                    header,
                    Header::Request { .. }
                        | Header::Response { outcome: Outcome::Ok | Outcome::AppError, .. }
                        | Header::Item { .. }
                        | Header::Cancel { .. }
                        | Header::Credit { .. }
                );
                assert_eq!(Header::decode_short(&frame).is_some(), by_hand, "read by hand: {header:?}");
                let (decoded, used) = Header::decode(&frame).expect("decodes");
                assert_eq!((&decoded, used), (&header, expected.len()));
                assert_eq!(Ok((decoded, used)), codec::decode_borrowed::<Header<'_>>(&frame));
            }
        }
    }

    #[test]
    fn a_header_past_the_limit_is_too_large() {
        let header = Header::Request { id: 1, service: "Example".into(), method: "echo".into(), timeout_micros: None };
        let mut buf = BytesMut::new();
        assert!(matches!(header.encode_into(&mut buf, 5), Err(EncodeFailure::TooLarge)));
        assert!(header.encode_into(&mut BytesMut::new(), by_codec(&header).len()).is_ok());
    }

    #[test]
    fn malformed_headers_of_the_kinds_read_by_hand_fail_as_the_codec_says() {
        for frame in [
            &[REQUEST][..],
            &[REQUEST, 1, 200, b'x'],
            &[REQUEST, 1, 1, 0xff, 0, 0],
            &[REQUEST, 1, 0, 0, 2],
            &[RESPONSE, 251, 1],
            &[RESPONSE, 1, 9],
            &[ITEM, 254, 0],
            &[CREDIT, 1],
        ] {
            let codec = codec::decode_borrowed::<Header<'_>>(frame);
            assert!(codec.is_err(), "{frame:?}");
            assert_eq!(Header::decode(frame), codec, "{frame:?}");
        }
        // Longer forms of a varint than needed are read by hand as bincode reads them.
        for frame in [
            &[RESPONSE, 251, 7, 0, OK][..],
            &[CREDIT, 252, 1, 0, 0, 0, 251, 2, 0],
            &[ITEM, 253, 9, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(Header::decode_short(frame).is_some(), "{frame:?}");
            assert_eq!(Header::decode(frame), codec::decode_borrowed::<Header<'_>>(frame));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        /// Whatever bytes come, the header read by hand, or the failure, is the codec's.
        #[test]
        fn any_bytes_decode_as_the_codec_decodes_them(
            kind in prop_oneof![Just(REQUEST), Just(RESPONSE), Just(ITEM), Just(CANCEL), Just(CREDIT), any::<u8>()],
            rest in proptest::collection::vec(prop_oneof![0u8..4, 248u8..=255, any::<u8>(), Just(b'a')], 0..24),
        ) {
            let mut frame = vec![kind];
            frame.extend_from_slice(&rest);
            prop_assert_eq!(Header::decode(&frame), codec::decode_borrowed::<Header<'_>>(&frame));
        }
    }
}
