//! The one place that knows the body encoding: bincode 2 (standard configuration: little endian,
//! variable-length integers) driven through serde.
//!
//! Swapping the encoding means rewriting this module and nothing else. (The headers of the most
//! frequent frames are written and read by hand with [`put_varint`], [`put_str`] and [`Take`],
//! byte for byte as this encoding writes them; `wire::header`'s tests compare the two, so a new
//! encoding shows there.)
//!
//! Decoding always reads from a complete frame held in memory, and never allocates more than the
//! bytes that are really there: bincode's own `String`/`Vec<u8>` decoding allocates the length a
//! peer *claims* before reading, so [`decode`] runs the value through [`Strict`](strict::Strict), a thin
//! deserializer adapter that turns every owned string or byte-buffer read into a borrowed read
//! (which checks that the bytes exist) followed by a copy of exactly those bytes.

use bincode::config::{Configuration, standard};
use bincode::enc::write::Writer;
use bincode::error::EncodeError;
use bytes::{Bytes, BytesMut};
use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::{Deserialize, Serialize};
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::ops::Range;
use strict::{Budget, StrictSeed};

pub mod evolve;
mod strict;

const CONFIG: Configuration = standard();

/// Why a value could not be encoded into a frame.
#[derive(Debug)]
pub(crate) enum EncodeFailure {
    /// The encoded value would make the frame longer than the limit.
    TooLarge,
    /// The value itself could not be encoded (for example a map whose length is unknown).
    Invalid(String),
}

/// Appends `value` to `buf`, failing once `buf` would grow past `limit` bytes in total.
///
/// On failure `buf` may hold a partial encoding; the caller truncates it. A `Serialize` written
/// by hand that panics is a failure too: the panic is caught here, so that the caller can take
/// back the partial frame (the buffer is a connection's outbox, shared by every call on it).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<(), EncodeFailure> {
    let mut writer = LimitedWriter { buf, limit, exceeded: false };
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bincode::serde::encode_into_writer(value, &mut writer, CONFIG)
    }));
    match encoded {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) if writer.exceeded => Err(EncodeFailure::TooLarge),
        Ok(Err(e)) => Err(EncodeFailure::Invalid(e.to_string())),
        Err(panic) => Err(EncodeFailure::Invalid(format!("its encoding panicked: {}", panic_message(&*panic)))),
    }
}

/// The message of a caught panic, or "" if it has none.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("")
}

/// [`encode_into`], with a short way for a `Bytes` value (a `.tidl` `bytes` stream item) shorter
/// than 251 bytes: its one-byte length and its bytes, as bincode writes them, without going
/// through serde. Always inlined: a stream's producer calls it for every item.
#[inline(always)]
pub(crate) fn encode_item_into<T: Serialize + 'static>(
    value: &T,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<(), EncodeFailure> {
    if let Some(bytes) = (value as &dyn Any).downcast_ref::<Bytes>()
        && let Ok(len @ 0..251) = u8::try_from(bytes.len())
    {
        if buf.len() + 1 + bytes.len() > limit {
            return Err(EncodeFailure::TooLarge);
        }
        buf.reserve(1 + bytes.len());
        bytes::BufMut::put_u8(buf, len);
        buf.extend_from_slice(bytes);
        return Ok(());
    }
    let start = buf.len();
    encode_into(value, buf, limit)?;
    if buf.len() == start {
        // Flow control counts an item's bytes: one of none would cost nothing, and the receiver
        // refuses it (docs/PROTOCOL.md, "Streams").
        return Err(EncodeFailure::Invalid(
            "a stream item must take up space on the wire, and this one encodes to no bytes \
             (stream a type with a value, such as a u64 count)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Appends already encoded `bytes` to `buf`, failing once `buf` would grow past `limit` bytes.
pub(crate) fn extend_limited(buf: &mut BytesMut, bytes: &[u8], limit: usize) -> Result<(), EncodeFailure> {
    if buf.len() + bytes.len() > limit {
        return Err(EncodeFailure::TooLarge);
    }
    buf.extend_from_slice(bytes);
    Ok(())
}

/// Encodes `value` on its own.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<bytes::Bytes, String> {
    let mut buf = BytesMut::new();
    match encode_into(value, &mut buf, usize::MAX) {
        Ok(()) => Ok(buf.freeze()),
        Err(EncodeFailure::TooLarge) => Err("the value is too large".to_owned()),
        Err(EncodeFailure::Invalid(e)) => Err(e),
    }
}

/// Decodes exactly one `T` occupying all of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    decode_borrowed::<T>(bytes).and_then(|(value, used)| {
        if used == bytes.len() { Ok(value) } else { Err(format!("{} unexpected trailing bytes", bytes.len() - used)) }
    })
}

/// A `Bytes` value at least this long, and at least half of what it is cut from, shares that
/// memory rather than being copied. Others are copied: a value kept for long would otherwise keep
/// alive a buffer many times its size (the 16 KiB read buffer a small value arrived in, or a
/// large frame of many stream items of which it is one), and copying a small one costs little.
pub(crate) const SHARE_AT: usize = 1024;

/// Decodes exactly one `T` occupying all of `frame[range]`. A `Bytes` value (a `.tidl` `bytes`
/// argument, reply or stream item) of at least [`SHARE_AT`] bytes that fills at least half of
/// `frame` shares the frame's memory instead of being copied out of it.
///
/// Always inlined: a stream's consumer calls it for every item, and for a `Bytes` item all that
/// is left of it is [`bytes_value`].
#[inline(always)]
pub(crate) fn decode_shared<T: DeserializeOwned + 'static>(frame: &Bytes, range: Range<usize>) -> Result<T, String> {
    if TypeId::of::<T>() == TypeId::of::<Bytes>() {
        let mut value: Option<T> = None;
        if let Some(slot) = (&mut value as &mut dyn Any).downcast_mut::<Option<Bytes>>() {
            *slot = Some(bytes_value(frame, range)?);
        }
        if let Some(value) = value {
            return Ok(value);
        }
        unreachable!("T is Bytes");
    }
    decode_range(frame, range)
}

/// [`decode_shared`] for a `Bytes` value: bincode's own decoding of a borrowed slice (a length,
/// then that many bytes, checked to be there), with no allocation and no serde in between, then
/// a share or a copy.
#[inline(always)]
fn bytes_value(frame: &Bytes, range: Range<usize>) -> Result<Bytes, String> {
    let encoded = frame.get(range).ok_or("the value lies outside its frame")?;
    let bytes = match encoded.split_first() {
        // bincode's varint: a length below 251 is that one byte. A stream of small items takes
        // this path for each of them, so it skips bincode's general decoding.
        Some((&len, rest)) if len < 251 => {
            if rest.len() != usize::from(len) {
                return Err(bytes_len_mismatch(usize::from(len), rest.len()));
            }
            rest
        }
        _ => {
            let (bytes, used): (&[u8], usize) = bincode::borrow_decode_from_slice(encoded, CONFIG).map_err(describe)?;
            if used != encoded.len() {
                return Err(format!("{} unexpected trailing bytes", encoded.len() - used));
            }
            bytes
        }
    };
    let shared = bytes.len() >= SHARE_AT && bytes.len() >= frame.len() / 2;
    Ok(if shared { frame.slice_ref(bytes) } else { Bytes::copy_from_slice(bytes) })
}

/// Why `bytes` of `len` bytes, with `left` bytes after its length, did not decode (out of line:
/// the hot path only checks).
#[cold]
fn bytes_len_mismatch(len: usize, left: usize) -> String {
    if left < len {
        describe(bincode::error::DecodeError::UnexpectedEnd { additional: len - left })
    } else {
        format!("{} unexpected trailing bytes", left - len)
    }
}

/// [`decode`] of `frame[range]`.
fn decode_range<T: DeserializeOwned>(frame: &Bytes, range: Range<usize>) -> Result<T, String> {
    decode(frame.get(range).ok_or("the value lies outside its frame")?)
}

/// Decodes one `T` from the front of `bytes`, borrowing from it where `T` allows, and returns how
/// many bytes it used.
pub(crate) fn decode_borrowed<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, usize), String> {
    decode_seed(PhantomData::<T>, bytes)
}

/// Decodes one value from the front of `bytes` with `seed` (a value whose type is known only at
/// run time), and returns how many bytes it used.
pub(crate) fn decode_seed<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
) -> Result<(S::Value, usize), String> {
    let budget = Budget::new(bytes.len());
    bincode::serde::seed_decode_from_slice(StrictSeed(seed, &budget), bytes, CONFIG).map_err(describe)
}

/// A decoding error in words. bincode shows its errors as `Debug` does, which would escape a
/// message from a nested decoding (an evolvable struct's fields) once more at every level.
fn describe(e: bincode::error::DecodeError) -> String {
    match e {
        bincode::error::DecodeError::OtherString(message) => message,
        bincode::error::DecodeError::Other(message) => message.to_owned(),
        e => e.to_string(),
    }
}

/// bincode's encoding of an unsigned integer (standard configuration: one byte below 251, else
/// a marker byte and the value in 2, 4 or 8 little-endian bytes), written by hand: the headers
/// of the most frequent frames are encoded with it without serde (`wire::header`). Tests check
/// it against bincode.
pub(crate) fn put_varint(buf: &mut BytesMut, n: u64) {
    use bytes::BufMut;
    if let Ok(small @ 0..251) = u8::try_from(n) {
        buf.put_u8(small);
    } else if let Ok(n) = u16::try_from(n) {
        buf.put_u8(251);
        buf.put_u16_le(n);
    } else if let Ok(n) = u32::try_from(n) {
        buf.put_u8(252);
        buf.put_u32_le(n);
    } else {
        buf.put_u8(253);
        buf.put_u64_le(n);
    }
}

/// bincode's encoding of a string: its length, then its bytes.
pub(crate) fn put_str(buf: &mut BytesMut, s: &str) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A reader of what [`put_varint`] and [`put_str`] write, from the front of a frame: each read
/// returns `None` where bincode would fail, or where the bytes are not the short form a fast
/// path handles, and the caller then decodes the frame with bincode.
#[derive(Debug)]
pub(crate) struct Take<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Take<'a> {
    /// Reads `bytes` from the start.
    pub(crate) fn new(bytes: &'a [u8]) -> Take<'a> {
        Take { bytes, at: 0 }
    }

    /// How many bytes have been read.
    pub(crate) fn used(&self) -> usize {
        self.at
    }

    /// The next byte.
    pub(crate) fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let array = self.bytes.get(self.at..self.at + N)?.try_into().ok()?;
        self.at += N;
        Some(array)
    }

    /// An unsigned integer as [`put_varint`] writes it (bincode also reads a value written
    /// longer than it needs, and so does this).
    pub(crate) fn varint(&mut self) -> Option<u64> {
        match self.byte()? {
            small @ 0..251 => Some(u64::from(small)),
            251 => self.array().map(|b| u64::from(u16::from_le_bytes(b))),
            252 => self.array().map(|b| u64::from(u32::from_le_bytes(b))),
            253 => self.array().map(u64::from_le_bytes),
            _ => None,
        }
    }

    /// A string as [`put_str`] writes it, borrowed; `None` if it is not UTF-8.
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(len)?;
        let s = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(s)
    }
}

/// A bincode `Writer` that appends to a `BytesMut` up to a total length.
struct LimitedWriter<'a> {
    buf: &'a mut BytesMut,
    limit: usize,
    exceeded: bool,
}

impl Writer for LimitedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        if self.buf.len() + bytes.len() > self.limit {
            self.exceeded = true;
            return Err(EncodeError::Other("frame length limit reached"));
        }
        // bincode writes most of a value a few bytes at a time (a tag, a varint, a length):
        // a copy whose length is known here compiles to a move, where one of any length is a
        // call to `memcpy` (`memmove` fell from 3.4 % to 2.5 % of the samples of small calls).
        match bytes.len() {
            1 => bytes::BufMut::put_u8(self.buf, bytes[0]),
            2 => self.buf.extend_from_slice(&bytes[..2]),
            4 => self.buf.extend_from_slice(&bytes[..4]),
            8 => self.buf.extend_from_slice(&bytes[..8]),
            _ => self.buf.extend_from_slice(bytes),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// bincode's varint for a u64 that needs all eight bytes.
    fn huge_len() -> Vec<u8> {
        let mut bytes = vec![253];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        bytes
    }

    #[test]
    fn round_trips_nested_values() {
        let value: (String, Vec<Option<u64>>, HashMap<String, bytes::Bytes>) = (
            "ünïcödé".to_owned(),
            vec![Some(1), None, Some(u64::MAX)],
            HashMap::from([("k".to_owned(), bytes::Bytes::from_static(b"\x00\xff"))]),
        );
        let mut buf = BytesMut::new();
        encode_into(&value, &mut buf, usize::MAX).unwrap();
        assert_eq!(decode::<(String, Vec<Option<u64>>, HashMap<String, bytes::Bytes>)>(&buf).unwrap(), value);
    }

    #[test]
    fn a_bytes_value_shares_its_frame_and_other_values_decode_as_usual() {
        let payload = Bytes::from(vec![7u8; SHARE_AT]);
        let mut frame = BytesMut::from(&b"head"[..]);
        encode_into(&payload, &mut frame, usize::MAX).unwrap();
        let frame = frame.freeze();
        // A frame from the read buffer is already shared; this one is made so here.
        drop(frame.clone());
        let range = 4..frame.len();
        let info = allocation_counter::measure(|| {
            let value = decode_shared::<Bytes>(&frame, range.clone()).unwrap();
            assert_eq!(value, payload);
            assert!(frame.as_ptr_range().contains(&value.as_ptr()), "sliced, not copied");
        });
        assert_eq!(info.count_total, 0);
        assert_eq!(decode_shared::<Vec<u8>>(&frame, range.clone()).unwrap(), payload);
        let err = decode_shared::<Bytes>(&frame, 4..frame.len() - 1).unwrap_err();
        assert!(err.contains("UnexpectedEnd"), "{err}");
        let mut trailing = BytesMut::new();
        encode_into(&payload, &mut trailing, usize::MAX).unwrap();
        trailing.extend_from_slice(b"!");
        let trailing = trailing.freeze();
        let err = decode_shared::<Bytes>(&trailing, 0..trailing.len()).unwrap_err();
        assert!(err.contains("trailing"), "{err}");
        let mut claims = huge_len();
        claims.resize(SHARE_AT + 16, 0);
        assert!(decode_shared::<Bytes>(&Bytes::from(claims), 0..SHARE_AT + 16).is_err());
        assert!(decode_shared::<Bytes>(&frame, 4..frame.len() + 1).is_err(), "a range past the frame");

        // A long value that is a small part of its frame (one of many stream items) is copied:
        // it must not keep the whole frame alive.
        let mut many = BytesMut::new();
        for _ in 0..4 {
            encode_into(&payload, &mut many, usize::MAX).unwrap();
        }
        let many = many.freeze();
        let one = encode(&payload).unwrap().len();
        let value = decode_shared::<Bytes>(&many, 0..one).unwrap();
        assert_eq!(value, payload);
        assert!(!many.as_ptr_range().contains(&value.as_ptr()), "copied");

        // A short value is copied: it must not keep its whole read buffer alive.
        let mut short = BytesMut::new();
        encode_into(&Bytes::from_static(b"tiny"), &mut short, usize::MAX).unwrap();
        let short = short.freeze();
        let value = decode_shared::<Bytes>(&short, 0..short.len()).unwrap();
        assert_eq!(value, "tiny");
        assert!(!short.as_ptr_range().contains(&value.as_ptr()), "copied");
        // The one-byte length's own path checks as bincode does.
        let err = decode_shared::<Bytes>(&short, 0..short.len() - 1).unwrap_err();
        assert!(err.contains("UnexpectedEnd"), "{err}");
        let mut long = short.to_vec();
        long.push(0);
        let err = decode_shared::<Bytes>(&Bytes::from(long.clone()), 0..long.len()).unwrap_err();
        assert!(err.contains("1 unexpected trailing bytes"), "{err}");
        assert!(decode_shared::<Bytes>(&short, 0..0).is_err(), "no length at all");
    }

    #[test]
    fn a_bytes_item_encodes_as_bincode_encodes_it() {
        for len in [0, 1, 16, 250, 251, 1000, 70_000] {
            let value = Bytes::from(vec![7; len]);
            let mut fast = BytesMut::from(&b"head"[..]);
            encode_item_into(&value, &mut fast, usize::MAX).unwrap();
            let mut general = BytesMut::from(&b"head"[..]);
            encode_into(&value, &mut general, usize::MAX).unwrap();
            assert_eq!(fast, general, "{len} bytes");
            assert_eq!(decode::<Bytes>(&fast[4..]).unwrap(), value);
            // The limit counts everything in the buffer; the value's encoding is 1 + len bytes
            // below 251.
            let exact = general.len();
            assert!(encode_item_into(&value, &mut BytesMut::from(&b"head"[..]), exact).is_ok());
            let mut short = BytesMut::from(&b"head"[..]);
            assert!(matches!(encode_item_into(&value, &mut short, exact - 1), Err(EncodeFailure::TooLarge)));
        }
        let mut other = BytesMut::new();
        encode_item_into(&"text".to_owned(), &mut other, usize::MAX).unwrap();
        assert_eq!(decode::<String>(&other).unwrap(), "text");
    }

    #[test]
    fn an_item_that_encodes_to_no_bytes_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut buf = BytesMut::from(&b"head"[..]);
        let Err(EncodeFailure::Invalid(e)) = encode_item_into(&(), &mut buf, usize::MAX) else {
            panic!("a unit item was encoded")
        };
        assert!(e.contains("encodes to no bytes"), "{e}");
        assert_eq!(&buf[..], b"head");
    }

    // Without the `Strict` adapter each of these would try to allocate 4 EiB and abort.
    #[test]
    fn a_claimed_string_length_is_not_allocated() {
        let err = decode::<String>(&huge_len()).unwrap_err();
        assert!(err.contains("UnexpectedEnd"), "{err}");
    }

    #[test]
    fn a_claimed_byte_buffer_length_is_not_allocated() {
        assert!(decode::<bytes::Bytes>(&huge_len()).is_err());
        assert!(decode::<Vec<u8>>(&huge_len()).is_err());
    }

    #[test]
    fn nested_claimed_lengths_are_not_allocated() {
        // A one-element list whose string claims 4 EiB.
        let mut bytes = vec![1];
        bytes.extend(huge_len());
        assert!(decode::<Vec<String>>(&bytes).is_err());
        // An enum variant carrying such a string.
        let mut bytes = vec![0];
        bytes.extend(huge_len());
        assert!(decode::<Result<String, ()>>(&bytes).is_err());
        // A map value.
        let mut bytes = vec![1, 1, b'k'];
        bytes.extend(huge_len());
        assert!(decode::<HashMap<String, String>>(&bytes).is_err());
    }

    // Found by the fuzzer (fuzz/README.md): serde's `Vec` and `HashMap` reserve room for the
    // length bincode reports, up to 1 MiB, so a few bytes made a server reserve a megabyte.
    #[test]
    fn a_claimed_list_length_reserves_no_more_than_the_input_holds() {
        let mut bytes = huge_len();
        bytes.push(7);
        let info = allocation_counter::measure(|| {
            assert!(decode::<Vec<u8>>(&bytes).is_err());
            assert!(decode::<Vec<String>>(&bytes).is_err());
            assert!(decode::<HashMap<String, u64>>(&bytes).is_err());
        });
        assert!(info.bytes_max < 4096, "decoding {} bytes held {} bytes", bytes.len(), info.bytes_max);
        // Claims nested a thousand deep, each for 250 elements and none filled: 6 MB before the
        // budget was shared, as every level reserved its claim.
        #[derive(Debug, Deserialize)]
        struct Node {
            #[allow(dead_code)]
            children: Vec<Node>,
        }
        let nested = vec![250u8; 1000];
        let info = allocation_counter::measure(|| assert!(decode::<Node>(&nested).is_err()));
        assert!(info.bytes_max < 64_000, "decoding {} bytes held {} bytes", nested.len(), info.bytes_max);
        // A real list still decodes, with room reserved for all of it at once.
        let list: Vec<u64> = (0..1000).collect();
        let encoded = encode(&list).unwrap();
        let info = allocation_counter::measure(|| assert_eq!(decode::<Vec<u64>>(&encoded).unwrap(), list));
        assert_eq!(info.count_total, 1, "one allocation for the whole list");
    }

    // Found by the fuzzer's regression test above: a thousand bytes nesting a recursive type
    // overflowed the stack and aborted the process.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        #[derive(Debug, PartialEq, Deserialize, Serialize)]
        struct Tree {
            value: u8,
            left: Option<Box<Tree>>,
        }
        // `Some` nested 100 000 deep: value 0, tag 1, again and again.
        let deep = [0u8, 1].repeat(100_000);
        let err = decode::<Tree>(&deep).unwrap_err();
        assert!(err.contains("the value nests deeper than 256 levels"), "{err}");
        // Two `Strict` levels per tree level (the struct and the option): 127 levels decode.
        let mut tree = Tree { value: 0, left: None };
        for value in 1..127 {
            tree = Tree { value, left: Some(Box::new(tree)) };
        }
        assert_eq!(decode::<Tree>(&encode(&tree).unwrap()).unwrap(), tree);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let err = decode::<u8>(&[1, 2]).unwrap_err();
        assert_eq!(err, "1 unexpected trailing bytes");
    }
}
