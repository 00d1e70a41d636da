//! The encodings that let a schema change without breaking deployed peers, used by the serde
//! impls generated for evolvable structs and `@open` enums (docs/PROTOCOL.md, "Evolvable types").
//!
//! - An evolvable struct is its byte length, then its fields in order. A reader decodes the fields
//!   it knows; one that starts where the bytes end (an older writer) takes its default, and the
//!   bytes after the last field it knows (a newer writer) are skipped.
//! - An open enum is its variant's index, then the variant's payload with its byte length, so a
//!   reader that does not know the variant can skip it and see `Unknown(index)`.
//!
//! Both are written through the serializer given (as a byte string, which bincode prefixes with
//! its length) and read from borrowed bytes, so the decoding limits (claimed lengths, depth) apply
//! inside them too.

use super::{CONFIG, decode_borrowed, decode_seed};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{self, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

thread_local! {
    /// Buffers for nested encodings, reused across calls on this thread.
    static SCRATCH: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Scratch buffers larger than this are not kept for reuse.
const KEEP_SCRATCH: usize = 64 * 1024;

/// Encodes `value` into a scratch buffer and hands the bytes to `write`.
fn with_encoded<T: Serialize + ?Sized, R, E: ser::Error>(
    value: &T,
    write: impl FnOnce(&[u8]) -> Result<R, E>,
) -> Result<R, E> {
    let mut buf = SCRATCH.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    buf.clear();
    let result = match bincode::serde::encode_into_std_write(value, &mut buf, CONFIG) {
        Ok(_) => write(&buf),
        Err(e) => Err(E::custom(e)),
    };
    if buf.capacity() <= KEEP_SCRATCH {
        SCRATCH.with(|s| s.borrow_mut().push(buf));
    }
    result
}

/// Writes an evolvable struct whose fields, in order, are the tuple `fields`.
pub fn serialize_struct<S: Serializer, T: Serialize>(serializer: S, fields: &T) -> Result<S::Ok, S::Error> {
    with_encoded(fields, |bytes| serializer.serialize_bytes(bytes))
}

/// Reads an evolvable struct called `name`: `build` takes its fields from a [`Fields`] in order.
pub fn deserialize_struct<'de, D, T>(
    deserializer: D,
    name: &'static str,
    build: impl FnOnce(&mut Fields<'_>) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Bytes<F>(&'static str, F);
    impl<'de, T, F: FnOnce(&mut Fields<'_>) -> Result<T, String>> Visitor<'de> for Bytes<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "the struct `{}`", self.0)
        }
        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
            (self.1)(&mut Fields { rest: bytes, name: self.0 }).map_err(E::custom)
        }
    }
    deserializer.deserialize_bytes(Bytes(name, build))
}

/// The fields of an evolvable struct being read, in order.
#[derive(Debug)]
pub struct Fields<'a> {
    rest: &'a [u8],
    name: &'static str,
}

impl<'a> Fields<'a> {
    /// The next field, or `default()` if the writer's schema ends before it.
    pub fn next_or<T: Deserialize<'a>>(&mut self, default: impl FnOnce() -> T) -> Result<T, String> {
        if self.rest.is_empty() {
            return Ok(Self::empty().unwrap_or_else(default));
        }
        self.next_present()
    }

    /// The value of a type that takes no bytes (`()`, a struct of such fields), read from
    /// nothing: at the end of a struct's bytes it cannot be told from a field not sent, and it
    /// needs no default.
    fn empty<T: Deserialize<'a>>() -> Option<T> {
        match decode_borrowed::<T>(&[]) {
            Ok((value, 0)) => Some(value),
            _ => None,
        }
    }

    /// The next field `field`, which has no default: an error if the writer did not send it.
    pub fn next<T: Deserialize<'a>>(&mut self, field: &str) -> Result<T, String> {
        if self.rest.is_empty() {
            return Self::empty().ok_or_else(|| {
                format!(
                    "the field `{field}` of `{}` is missing: the peer's schema does not have it, and it has no default",
                    self.name
                )
            });
        }
        self.next_present()
    }

    /// The next field, read with `seed`, or `None` if the writer's schema ends before it (for
    /// values of run-time schemas, such as `tidl call`'s).
    pub fn next_seed<S: DeserializeSeed<'a>>(&mut self, seed: S) -> Result<Option<S::Value>, String> {
        if self.rest.is_empty() {
            return Ok(match decode_seed(seed, &[]) {
                Ok((value, 0)) => Some(value),
                _ => None,
            });
        }
        let (value, used) = decode_seed(seed, self.rest)?;
        self.rest = &self.rest[used..];
        Ok(Some(value))
    }

    fn next_present<T: Deserialize<'a>>(&mut self) -> Result<T, String> {
        let (value, used) = decode_borrowed::<T>(self.rest)?;
        self.rest = &self.rest[used..];
        Ok(value)
    }
}

/// Writes the variant `index` of an `@open` enum, whose payload is the tuple `payload`.
pub fn serialize_variant<S: Serializer, T: Serialize>(
    serializer: S,
    index: u32,
    payload: &T,
) -> Result<S::Ok, S::Error> {
    struct Raw<'a>(&'a [u8]);
    impl Serialize for Raw<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }
    with_encoded(payload, |bytes| {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&index)?;
        tuple.serialize_element(&Raw(bytes))?;
        tuple.end()
    })
}

/// Reads an `@open` enum called `name`: `build` gets the variant's index and its payload, and
/// answers the value (`Unknown(index)` for an index it does not know).
pub fn deserialize_variant<'de, D, T>(
    deserializer: D,
    name: &'static str,
    build: impl FnOnce(u32, Payload<'_>) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Tuple<F, T>(&'static str, F, PhantomData<T>);
    impl<'de, T, F: FnOnce(u32, Payload<'_>) -> Result<T, String>> Visitor<'de> for Tuple<F, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "the enum `{}`", self.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let index: u32 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
            let bytes: PayloadBytes = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
            (self.1)(index, Payload { bytes: &bytes.0, name: self.0 }).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_tuple(2, Tuple(name, build, PhantomData))
}

/// A variant's payload bytes, copied out of the deserializer (which may not lend them).
struct PayloadBytes(Vec<u8>);

impl<'de> Deserialize<'de> for PayloadBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = PayloadBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a variant's payload")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<PayloadBytes, E> {
                Ok(PayloadBytes(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

/// The payload of an `@open` enum's variant.
#[derive(Debug)]
pub struct Payload<'a> {
    bytes: &'a [u8],
    name: &'static str,
}

impl<'a> Payload<'a> {
    /// The payload read with `seed`, which must take up all of it (for values of run-time
    /// schemas, such as `tidl call`'s).
    pub fn decode_seed<S: DeserializeSeed<'a>>(&self, seed: S) -> Result<S::Value, String> {
        let (value, used) = decode_seed(seed, self.bytes)?;
        if used != self.bytes.len() {
            return Err(format!("in `{}`: {} unexpected bytes after a variant", self.name, self.bytes.len() - used));
        }
        Ok(value)
    }

    /// The payload as the tuple `T`, which must take up all of it.
    pub fn decode<T: for<'x> Deserialize<'x>>(&self) -> Result<T, String> {
        let (value, used) = decode_borrowed::<T>(self.bytes).map_err(|e| format!("in `{}`: {e}", self.name))?;
        if used != self.bytes.len() {
            return Err(format!("in `{}`: {} unexpected bytes after a variant", self.name, self.bytes.len() - used));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, encode};
    use super::*;

    /// Version 1 of a struct: `{ id: u64, name: string }`.
    #[derive(Debug, PartialEq)]
    struct V1 {
        id: u64,
        name: String,
    }

    /// Version 2: `{ id: u64, name: string, tags: list<string> = [], score: u32 }`.
    #[derive(Debug, PartialEq)]
    struct V2 {
        id: u64,
        name: String,
        tags: Vec<String>,
        score: u32,
    }

    impl Serialize for V1 {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_struct(s, &(&self.id, &self.name))
        }
    }
    impl<'de> Deserialize<'de> for V1 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_struct(d, "V1", |f| Ok(V1 { id: f.next("id")?, name: f.next("name")? }))
        }
    }
    impl Serialize for V2 {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_struct(s, &(&self.id, &self.name, &self.tags, &self.score))
        }
    }
    impl<'de> Deserialize<'de> for V2 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_struct(d, "V2", |f| {
                Ok(V2 { id: f.next("id")?, name: f.next("name")?, tags: f.next_or(Vec::new)?, score: f.next("score")? })
            })
        }
    }

    #[test]
    fn an_older_reader_skips_new_fields_and_a_newer_reader_fills_defaults() {
        let v2 = V2 { id: 7, name: "ada".into(), tags: vec!["x".into()], score: 3 };
        let bytes = encode(&v2).unwrap();
        assert_eq!(decode::<V1>(&bytes).unwrap(), V1 { id: 7, name: "ada".into() });
        // Inside a list, the skipped bytes do not disturb the next element.
        let bytes = encode(&vec![&v2, &v2]).unwrap();
        assert_eq!(decode::<Vec<V1>>(&bytes).unwrap().len(), 2);

        let v1 = V1 { id: 1, name: "bob".into() };
        let err = decode::<V2>(&encode(&v1).unwrap()).unwrap_err();
        assert!(err.contains("the field `score` of `V2` is missing"), "{err}");
    }

    /// `{ marker: () }`: its only field takes no bytes.
    #[derive(Debug, PartialEq)]
    struct Marker(());
    impl Serialize for Marker {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_struct(s, &(&self.0,))
        }
    }
    impl<'de> Deserialize<'de> for Marker {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_struct(d, "Marker", |f| Ok(Marker(f.next("marker")?)))
        }
    }

    // Found by the schema property test (schema/dynamic.rs): a last field that takes no bytes
    // looked like a field the writer did not send, and had no default.
    #[test]
    fn a_field_that_takes_no_bytes_is_read_from_nothing() {
        let bytes = encode(&Marker(())).unwrap();
        assert_eq!(bytes.as_ref(), &[0]);
        assert_eq!(decode::<Marker>(&bytes).unwrap(), Marker(()));
    }

    #[test]
    fn the_encoding_is_the_length_then_the_fields() {
        let v1 = V1 { id: 1, name: "ab".into() };
        assert_eq!(encode(&v1).unwrap().as_ref(), &[4, 1, 2, b'a', b'b']);
    }

    #[derive(Debug, PartialEq)]
    enum Open {
        A,
        B(u32, String),
        Unknown(u32),
    }
    impl Serialize for Open {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Open::A => serialize_variant(s, 0, &()),
                Open::B(n, t) => serialize_variant(s, 1, &(n, t)),
                Open::Unknown(i) => serialize_variant(s, *i, &()),
            }
        }
    }
    impl<'de> Deserialize<'de> for Open {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_variant(d, "Open", |index, p| {
                Ok(match index {
                    0 => {
                        let () = p.decode()?;
                        Open::A
                    }
                    1 => {
                        let (n, t) = p.decode()?;
                        Open::B(n, t)
                    }
                    i => Open::Unknown(i),
                })
            })
        }
    }

    #[test]
    fn an_unknown_variant_of_an_open_enum_is_skipped_and_seen_as_unknown() {
        assert_eq!(encode(&Open::B(5, "hi".into())).unwrap().as_ref(), &[1, 4, 5, 2, b'h', b'i']);
        // Variant 7 with a 3-byte payload, then variant 1: the list decodes past it.
        let bytes = [2, 7, 3, 9, 9, 9, 1, 4, 5, 2, b'h', b'i'];
        assert_eq!(decode::<Vec<Open>>(&bytes).unwrap(), vec![Open::Unknown(7), Open::B(5, "hi".into())]);
        for v in [Open::A, Open::B(1, "x".into())] {
            assert_eq!(decode::<Open>(&encode(&v).unwrap()).unwrap(), v);
        }
    }

    /// A recursive evolvable struct: `{ children: list<Tree> }`.
    #[derive(Debug)]
    struct Tree(Vec<Tree>);
    impl Serialize for Tree {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_struct(s, &(&self.0,))
        }
    }
    impl<'de> Deserialize<'de> for Tree {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_struct(d, "Tree", |f| Ok(Tree(f.next("children")?)))
        }
    }

    #[test]
    fn nesting_depth_is_counted_across_evolvable_structs() {
        let mut tree = Tree(Vec::new());
        for _ in 0..300 {
            tree = Tree(vec![tree]);
        }
        let bytes = encode(&tree).unwrap();
        let err = decode::<Tree>(&bytes).unwrap_err();
        assert!(err.contains("nests deeper than"), "{err}");
        let mut tree = Tree(Vec::new());
        for _ in 0..50 {
            tree = Tree(vec![tree]);
        }
        assert!(decode::<Tree>(&encode(&tree).unwrap()).is_ok());
    }

    /// bincode's varint (standard configuration).
    fn varint(n: usize) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        super::super::put_varint(&mut buf, n as u64);
        buf.to_vec()
    }

    #[test]
    fn list_claims_nested_in_evolvable_structs_share_one_budget() {
        // 120 evolvable structs, each the first child of a list claiming 50,000 children of the one
        // around it; the innermost ends its (empty) list with 45,000 bytes of fields unknown to
        // this reader, so that every level's bytes are at least that long. Each level's struct is
        // decoded from its own bytes: with a budget per decoding, each list reserved room for
        // as many children as its struct had bytes (capped at 1 MiB by serde), about 120 MiB
        // for 46 KB of input.
        let mut content = vec![0u8];
        content.extend(std::iter::repeat_n(0u8, 45_000));
        for _ in 0..120 {
            let inner = [varint(content.len()), content].concat();
            content = [varint(50_000), inner].concat();
        }
        let bytes = [varint(content.len()), content].concat();
        let info = allocation_counter::measure(|| {
            let err = decode::<Tree>(&bytes).unwrap_err();
            assert!(err.contains("UnexpectedEnd") || err.contains("end"), "{err}");
        });
        assert!(info.bytes_max < 4 << 20, "decoding {} bytes held {} bytes at once", bytes.len(), info.bytes_max);
    }
}
