//! The serde adapter that keeps decoding from allocating what a peer merely claims.
//!
//! bincode's own `String`/`Vec<u8>` decoding allocates the length a peer *claims* before reading.
//! [`Strict`] turns every owned string or byte-buffer read into a borrowed read (which checks
//! that the bytes exist) followed by a copy of exactly those bytes, at every nesting level.
//!
//! bincode also reports a sequence's or map's *claimed* length as its size hint, which serde's
//! `Vec` and `HashMap` reserve up front (up to 1 MiB at every nesting level); [`StrictAccess`]
//! takes the hint from a [`Budget`] of as many elements as the input has bytes, shared by the
//! whole decoding, as every list element and map entry takes at least one byte on the wire (the
//! compiler rejects lists of types that encode to nothing). And values may nest no deeper than
//! [`MAX_DEPTH`], so a recursive type cannot be made to overflow the stack.

use serde::de::{self, DeserializeSeed, Visitor};
use std::cell::Cell;
use std::fmt;

/// Wraps a deserializer so that owned strings and byte buffers are read as borrowed slices (the
/// reader checks the bytes exist) and copied, instead of being allocated at their claimed length.
///
/// Each wrapper carries the [`Budget`] of the whole decoding.
pub(super) struct Strict<'b, D>(D, &'b Budget);

/// Values may nest this deep (counting every struct, enum, option, list and map level), so that
/// decoding a recursive type cannot overflow the stack: without a limit, a payload of a few
/// kilobytes nesting an `option<Tree>` in itself aborted the process.
pub(super) const MAX_DEPTH: usize = 256;

/// What one decoding may still spend, shared by every level of it:
///
/// - elements: how many more elements sequences and maps may reserve room for. It starts at the
///   input's length: each list element and map entry takes at least one byte of its own, so a
///   valid input never claims more elements in all (and every sequence gets the room it claims),
///   while an invalid one cannot reserve more than a multiple of its length, however deeply it
///   nests claims it does not fill.
/// - depth: how deep the value being decoded nests, up to [`MAX_DEPTH`].
///
/// Both are kept per thread, so a value decoded inside another (the fields of an evolvable
/// struct, from their own byte range) continues the outer value's depth and draws on its
/// elements instead of starting again: with a budget of its own, each nested struct's lists could
/// reserve as much as its bytes, 120 MB for 46 KB nested 120 deep.
pub(super) struct Budget {
    /// The thread's depth when this decoding began, restored when it ends (even by an error).
    base: usize,
    /// Whether this is the outermost decoding on the thread, which owns the element budget.
    outermost: bool,
}

thread_local! {
    /// How deep the values being decoded on this thread nest.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// How many elements the decoding under way on this thread may still reserve room for, if one
    /// is under way.
    static ELEMENTS: Cell<Option<usize>> = const { Cell::new(None) };
}

impl Drop for Budget {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(self.base));
        if self.outermost {
            ELEMENTS.with(|e| e.set(None));
        }
    }
}

impl Budget {
    /// The budget of decoding `input_len` bytes: its own if no decoding is under way on this
    /// thread, else the one under way (whose input holds these bytes).
    pub(super) fn new(input_len: usize) -> Budget {
        let outermost = ELEMENTS.with(|e| {
            let outermost = e.get().is_none();
            if outermost {
                e.set(Some(input_len));
            }
            outermost
        });
        Budget { base: DEPTH.with(Cell::get), outermost }
    }

    /// The size hint to report for a sequence claiming `claimed` elements, taken from the budget.
    fn take(&self, claimed: usize) -> usize {
        ELEMENTS.with(|e| {
            let left = e.get().unwrap_or(0);
            let granted = claimed.min(left);
            e.set(Some(left - granted));
            granted
        })
    }

    /// Goes one level deeper, failing past [`MAX_DEPTH`]; [`leave`](Self::leave) comes back up.
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        DEPTH.with(|d| {
            let depth = d.get() + 1;
            if depth > MAX_DEPTH {
                return Err(E::custom(format_args!("the value nests deeper than {MAX_DEPTH} levels")));
            }
            d.set(depth);
            Ok(())
        })
    }

    fn leave(&self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Wraps a visitor so that every nested deserializer it is handed is wrapped in [`Strict`] too.
struct StrictVisitor<'b, V>(V, &'b Budget);

/// Wraps sequence, map and enum access so nested values stay strict.
struct StrictAccess<'b, A>(A, &'b Budget);

/// Wraps a seed so the deserializer it receives is strict.
pub(super) struct StrictSeed<'b, S>(pub(super) S, pub(super) &'b Budget);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.1.enter::<Self::Error>()?;
                let result = self.0.$method($($arg,)* StrictVisitor(visitor, self.1));
                self.1.leave();
                result
            }
        )*
    };
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Strict<'_, D> {
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
        self.0.deserialize_str(StrictVisitor(visitor, self.1))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_bytes(StrictVisitor(visitor, self.1))
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

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<'_, V> {
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
        self.0.visit_some(Strict(d, self.1))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d, self.1))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(StrictAccess(seq, self.1))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(StrictAccess(map, self.1))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(StrictAccess(data, self.1))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d, self.1))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for StrictAccess<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(StrictSeed(seed, self.1))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint().map(|claimed| self.1.take(claimed))
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for StrictAccess<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(StrictSeed(seed, self.1))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        self.0.next_value_seed(StrictSeed(seed, self.1))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint().map(|claimed| self.1.take(claimed))
    }
}

impl<'de, 'b, A: de::EnumAccess<'de>> de::EnumAccess<'de> for StrictAccess<'b, A> {
    type Error = A::Error;
    type Variant = StrictAccess<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Self::Error> {
        let (value, variant) = self.0.variant_seed(StrictSeed(seed, self.1))?;
        Ok((value, StrictAccess(variant, self.1)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for StrictAccess<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(StrictSeed(seed, self.1))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, StrictVisitor(visitor, self.1))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, StrictVisitor(visitor, self.1))
    }
}
