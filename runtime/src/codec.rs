//! The one place that knows the body encoding: bincode 2 (standard configuration: little endian,
//! variable-length integers) driven through serde.
//!
//! Swapping the encoding means rewriting this module and nothing else.
//!
//! Decoding always reads from a complete frame held in memory, and never allocates more than the
//! bytes that are really there: bincode's own `String`/`Vec<u8>` decoding allocates the length a
//! peer *claims* before reading, so [`decode`] runs the value through [`Strict`], a thin
//! deserializer adapter that turns every owned string or byte-buffer read into a borrowed read
//! (which checks that the bytes exist) followed by a copy of exactly those bytes.

use bincode::config::{Configuration, standard};
use bincode::enc::write::Writer;
use bincode::error::EncodeError;
use bytes::BytesMut;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

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
/// On failure `buf` may hold a partial encoding; the caller truncates it.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<(), EncodeFailure> {
    let mut writer = LimitedWriter { buf, limit, exceeded: false };
    match bincode::serde::encode_into_writer(value, &mut writer, CONFIG) {
        Ok(()) => Ok(()),
        Err(_) if writer.exceeded => Err(EncodeFailure::TooLarge),
        Err(e) => Err(EncodeFailure::Invalid(e.to_string())),
    }
}

/// Decodes exactly one `T` occupying all of `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    decode_borrowed::<T>(bytes).and_then(|(value, used)| {
        if used == bytes.len() { Ok(value) } else { Err(format!("{} unexpected trailing bytes", bytes.len() - used)) }
    })
}

/// Decodes one `T` from the front of `bytes`, borrowing from it where `T` allows, and returns how
/// many bytes it used.
pub(crate) fn decode_borrowed<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, usize), String> {
    bincode::serde::seed_decode_from_slice(StrictSeed(PhantomData::<T>), bytes, CONFIG).map_err(|e| e.to_string())
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
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

/// Wraps a deserializer so that owned strings and byte buffers are read as borrowed slices (the
/// reader checks the bytes exist) and copied, instead of being allocated at their claimed length.
struct Strict<D>(D);

/// Wraps a visitor so that every nested deserializer it is handed is wrapped in [`Strict`] too.
struct StrictVisitor<V>(V);

/// Wraps sequence, map and enum access so nested values stay strict.
struct StrictAccess<A>(A);

/// Wraps a seed so the deserializer it receives is strict.
struct StrictSeed<S>(S);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method($($arg,)* StrictVisitor(visitor))
            }
        )*
    };
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_bytes();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_str(StrictVisitor(visitor))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_bytes(StrictVisitor(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(StrictAccess(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(StrictAccess(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(StrictAccess(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
    type Value = S::Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(StrictSeed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        self.0.next_value_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for StrictAccess<A> {
    type Error = A::Error;
    type Variant = StrictAccess<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Self::Error> {
        let (value, variant) = self.0.variant_seed(StrictSeed(seed))?;
        Ok((value, StrictAccess(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(StrictSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, StrictVisitor(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, StrictVisitor(visitor))
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

    #[test]
    fn trailing_bytes_are_rejected() {
        let err = decode::<u8>(&[1, 2]).unwrap_err();
        assert_eq!(err, "1 unexpected trailing bytes");
    }
}
