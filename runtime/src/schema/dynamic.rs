//! Values whose type is a descriptor's, encoded and decoded through the real codec (bincode, the
//! strict decoder and the evolvable encodings of `codec::evolve`) by serde impls driven by the
//! descriptor at run time: what generated code does with static types.
//!
//! The property test below builds random schemas and legal evolutions of them, writes random
//! values with one version and reads them with the other, in both directions where
//! [`compatible`](super::compatible) says the two can talk, and checks the values read: defaults
//! where the writer had no field, fields the reader does not know skipped, unknown variants of
//! open enums as `Unknown`, widened integers unchanged.

use super::{Def, Shape, Type};
use crate::codec::evolve;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, SerializeTupleVariant, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A value of some descriptor type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Unit,
    Bool(bool),
    /// Any signed integer.
    Int(i64),
    /// Any unsigned integer.
    UInt(u64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Option(Option<Box<Value>>),
    /// An array's elements, or a struct's fields.
    Tuple(Vec<Value>),
    /// An enum's variant and its values.
    Variant(u32, Vec<Value>),
    /// An open enum's variant the reader does not know.
    Unknown(u32),
    /// A field the writer did not send, which the reader gives its default.
    Default,
}

/// `value`, written as type `ty` of `shape`.
pub(crate) struct Typed<'a> {
    pub(crate) shape: &'a Shape,
    pub(crate) ty: &'a Type,
    pub(crate) value: &'a Value,
}

/// Values written one after another as types of `shape` (a tuple's elements).
struct Row<'a>(&'a Shape, &'a [Type], &'a [Value]);

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.1.len())?;
        for (ty, value) in self.1.iter().zip(self.2) {
            tuple.serialize_element(&Typed { shape: self.0, ty, value })?;
        }
        tuple.end()
    }
}

fn mismatch<E: serde::ser::Error>(ty: &Type, value: &Value) -> E {
    E::custom(format!("{value:?} is not a value of {ty:?}"))
}

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = self.shape;
        match (self.ty, self.value) {
            (Type::Prim(0), Value::Unit) => s.serialize_unit(),
            (Type::Prim(1), Value::Bool(b)) => s.serialize_bool(*b),
            (Type::Prim(2), Value::Int(n)) => s.serialize_i8(i8::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(3), Value::Int(n)) => s.serialize_i16(i16::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(4), Value::Int(n)) => s.serialize_i32(i32::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(5), Value::Int(n)) => s.serialize_i64(*n),
            (Type::Prim(6), Value::UInt(n)) => s.serialize_u8(u8::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(7), Value::UInt(n)) => s.serialize_u16(u16::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(8), Value::UInt(n)) => s.serialize_u32(u32::try_from(*n).map_err(serde::ser::Error::custom)?),
            (Type::Prim(9), Value::UInt(n)) => s.serialize_u64(*n),
            #[allow(clippy::cast_possible_truncation)]
            (Type::Prim(10), Value::F64(x)) => s.serialize_f32(*x as f32),
            (Type::Prim(11), Value::F64(x)) => s.serialize_f64(*x),
            (Type::Prim(12), Value::Str(t)) => s.serialize_str(t),
            (Type::Prim(13), Value::Bytes(b)) => s.serialize_bytes(b),
            (Type::List(e), Value::List(items)) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for value in items {
                    seq.serialize_element(&Typed { shape, ty: e, value })?;
                }
                seq.end()
            }
            (Type::Map(k, v), Value::Map(entries)) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(&Typed { shape, ty: k, value: key }, &Typed { shape, ty: v, value })?;
                }
                map.end()
            }
            (Type::Option(_), Value::Option(None)) => s.serialize_none(),
            (Type::Option(e), Value::Option(Some(value))) => s.serialize_some(&Typed { shape, ty: e, value }),
            (Type::Array(e, _), Value::Tuple(items)) => {
                let types = vec![(**e).clone(); items.len()];
                Row(shape, &types, items).serialize(s)
            }
            (Type::Def(i), value) => match (&shape.defs[*i], value) {
                (Def::Frozen(types), Value::Tuple(fields)) => Row(shape, types, fields).serialize(s),
                (Def::Evolvable(fields), Value::Tuple(values)) => {
                    let types: Vec<Type> = fields.iter().map(|(_, t)| t.clone()).collect();
                    evolve::serialize_struct(s, &Row(shape, &types, values))
                }
                (Def::Enum { open: false, variants }, Value::Variant(index, values)) => {
                    let types = &variants[*index as usize];
                    if types.is_empty() {
                        return s.serialize_unit_variant("", *index, "");
                    }
                    let mut variant = s.serialize_tuple_variant("", *index, "", types.len())?;
                    for (ty, value) in types.iter().zip(values) {
                        variant.serialize_field(&Typed { shape, ty, value })?;
                    }
                    variant.end()
                }
                (Def::Enum { open: true, variants }, Value::Variant(index, values)) => {
                    evolve::serialize_variant(s, *index, &Row(shape, &variants[*index as usize], values))
                }
                _ => Err(mismatch(self.ty, value)),
            },
            (ty, value) => Err(mismatch(ty, value)),
        }
    }
}

/// Reads a value of type `ty` of `shape`.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'a> {
    pub(crate) shape: &'a Shape,
    pub(crate) ty: &'a Type,
}

/// Reads values of `types` one after another (a tuple's elements).
struct RowSeed<'a>(&'a Shape, &'a [Type]);

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} values", self.1.len())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut out = Vec::with_capacity(self.1.len());
        for (i, ty) in self.1.iter().enumerate() {
            out.push(
                seq.next_element_seed(Seed { shape: self.0, ty })?
                    .ok_or_else(|| de::Error::invalid_length(i, &self))?,
            );
        }
        Ok(out)
    }
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        let n = self.1.len();
        d.deserialize_tuple(n, self)
    }
}

/// A visitor that takes what `Seed` asks for.
struct Visit<'a>(Seed<'a>);

impl<'de> Visitor<'de> for Visit<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of {:?}", self.0.ty)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Option(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let Type::Option(e) = self.0.ty else { return Err(de::Error::custom("not an option")) };
        Ok(Value::Option(Some(Box::new(Seed { shape: self.0.shape, ty: e }.deserialize(d)?))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Type::List(e) = self.0.ty else { return Err(de::Error::custom("not a list")) };
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed { shape: self.0.shape, ty: e })? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Type::Map(k, v) = self.0.ty else { return Err(de::Error::custom("not a map")) };
        let shape = self.0.shape;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(Seed { shape, ty: k })? {
            entries.push((key, map.next_value_seed(Seed { shape, ty: v })?));
        }
        Ok(Value::Map(entries))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let Type::Def(i) = self.0.ty else { return Err(de::Error::custom("not an enum")) };
        let Def::Enum { variants, .. } = &self.0.shape.defs[*i] else { return Err(de::Error::custom("not an enum")) };
        let (index, variant) = data.variant::<u32>()?;
        let types =
            variants.get(index as usize).ok_or_else(|| de::Error::custom(format!("unknown variant {index}")))?;
        if types.is_empty() {
            variant.unit_variant()?;
            return Ok(Value::Variant(index, Vec::new()));
        }
        Ok(Value::Variant(index, variant.tuple_variant(types.len(), RowSeed(self.0.shape, types))?))
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let shape = self.shape;
        Ok(match self.ty {
            Type::Prim(0) => <()>::deserialize(d).map(|()| Value::Unit)?,
            Type::Prim(1) => Value::Bool(bool::deserialize(d)?),
            Type::Prim(2) => Value::Int(i8::deserialize(d)?.into()),
            Type::Prim(3) => Value::Int(i16::deserialize(d)?.into()),
            Type::Prim(4) => Value::Int(i32::deserialize(d)?.into()),
            Type::Prim(5) => Value::Int(i64::deserialize(d)?),
            Type::Prim(6) => Value::UInt(u8::deserialize(d)?.into()),
            Type::Prim(7) => Value::UInt(u16::deserialize(d)?.into()),
            Type::Prim(8) => Value::UInt(u32::deserialize(d)?.into()),
            Type::Prim(9) => Value::UInt(u64::deserialize(d)?),
            Type::Prim(10) => Value::F64(f32::deserialize(d)?.into()),
            Type::Prim(11) => Value::F64(f64::deserialize(d)?),
            Type::Prim(12) => Value::Str(String::deserialize(d)?),
            Type::Prim(13) => Value::Bytes(bytes::Bytes::deserialize(d)?.to_vec()),
            Type::Prim(tag) => return Err(de::Error::custom(format!("unknown primitive {tag}"))),
            Type::List(_) => d.deserialize_seq(Visit(self))?,
            Type::Map(..) => d.deserialize_map(Visit(self))?,
            Type::Option(_) => d.deserialize_option(Visit(self))?,
            Type::Array(e, n) => {
                let types = vec![(**e).clone(); usize::try_from(*n).map_err(de::Error::custom)?];
                Value::Tuple(RowSeed(shape, &types).deserialize(d)?)
            }
            Type::Def(i) => match &shape.defs[*i] {
                Def::Frozen(types) => Value::Tuple(RowSeed(shape, types).deserialize(d)?),
                Def::Evolvable(fields) => evolve::deserialize_struct(d, "dynamic", |reader| {
                    let mut values = Vec::with_capacity(fields.len());
                    for (i, (has_default, ty)) in fields.iter().enumerate() {
                        match reader.next_seed(Seed { shape, ty })? {
                            Some(value) => values.push(value),
                            None if *has_default => values.push(Value::Default),
                            None => return Err(format!("field {} is missing and has no default", i + 1)),
                        }
                    }
                    Ok(Value::Tuple(values))
                })?,
                Def::Enum { open: false, .. } => d.deserialize_enum("", &[], Visit(self))?,
                Def::Enum { open: true, variants } => {
                    evolve::deserialize_variant(d, "dynamic", |index, payload| match variants.get(index as usize) {
                        Some(types) => Ok(Value::Variant(index, payload.decode_seed(RowSeed(shape, types))?)),
                        None => Ok(Value::Unknown(index)),
                    })?
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Def, Shape, Type, compatible};
    use super::*;
    use crate::codec;
    use proptest::prelude::*;

    /// How a struct or enum of the old version changes in the new one.
    #[derive(Debug, Clone, Copy)]
    enum Change {
        None,
        /// An evolvable struct gains a field with a default: safe both ways.
        AppendDefaulted,
        /// An evolvable struct gains a field without a default: old readers skip it (writers first).
        AppendRequired,
        /// An open enum gains a variant: safe both ways.
        AppendVariant,
        /// A closed enum gains a variant: new readers read old writers (readers first).
        AppendClosedVariant,
        /// An unsigned field or value widens to `u64`: readers first.
        Widen,
    }

    /// One generated definition: old and new versions side by side.
    fn prim() -> impl Strategy<Value = Type> {
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(4),
            Just(5),
            Just(6),
            Just(7),
            Just(8),
            Just(9),
            Just(11),
            Just(12),
            Just(13)
        ]
        .prop_map(Type::Prim)
    }

    fn ty(defs: usize) -> BoxedStrategy<Type> {
        let leaf = if defs == 0 {
            prim().boxed()
        } else {
            prop_oneof![3 => prim(), 2 => (0..defs).prop_map(Type::Def)].boxed()
        };
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| Type::List(Box::new(t))),
                inner.clone().prop_map(|t| Type::Option(Box::new(t))),
                inner.clone().prop_map(|t| Type::Map(Box::new(Type::Prim(12)), Box::new(t))),
                (inner, 1u64..3).prop_map(|(t, n)| Type::Array(Box::new(t), n)),
            ]
        })
        .boxed()
    }

    /// A definition that may only refer to definitions before it (so values are finite).
    fn def(index: usize) -> impl Strategy<Value = (Def, Change)> {
        let fields = prop::collection::vec((any::<bool>(), ty(index)), 0..4).boxed();
        let variants = prop::collection::vec(prop::collection::vec(ty(index), 0..3), 1..4).boxed();
        prop_oneof![
            (
                fields.clone(),
                prop_oneof![
                    Just(Change::None),
                    Just(Change::AppendDefaulted),
                    Just(Change::AppendRequired),
                    Just(Change::Widen)
                ]
            )
                .prop_map(|(f, c)| (Def::Evolvable(f), c)),
            prop::collection::vec(ty(index), 0..4).prop_map(|t| (Def::Frozen(t), Change::None)),
            (variants.clone(), prop_oneof![Just(Change::None), Just(Change::AppendVariant)])
                .prop_map(|(v, c)| (Def::Enum { open: true, variants: v }, c)),
            (variants, prop_oneof![Just(Change::None), Just(Change::AppendClosedVariant)])
                .prop_map(|(v, c)| (Def::Enum { open: false, variants: v }, c)),
        ]
    }

    /// The new version of a definition.
    fn evolve(def: &Def, change: Change) -> Def {
        match (def, change) {
            (Def::Evolvable(f), Change::AppendDefaulted) => {
                Def::Evolvable(f.iter().cloned().chain([(true, Type::Prim(12))]).collect())
            }
            (Def::Evolvable(f), Change::AppendRequired) => {
                Def::Evolvable(f.iter().cloned().chain([(false, Type::Prim(9))]).collect())
            }
            (Def::Evolvable(f), Change::Widen) => Def::Evolvable(
                f.iter()
                    .map(|(d, t)| (*d, if matches!(t, Type::Prim(7 | 8)) { Type::Prim(9) } else { t.clone() }))
                    .collect(),
            ),
            (Def::Enum { open, variants }, Change::AppendVariant | Change::AppendClosedVariant) => {
                Def::Enum { open: *open, variants: variants.iter().cloned().chain([vec![Type::Prim(8)]]).collect() }
            }
            (def, _) => def.clone(),
        }
    }

    /// Two versions of a unary method: (old, new).
    fn versions() -> impl Strategy<Value = (Shape, Shape)> {
        (0usize..4)
            .prop_flat_map(|n| {
                let defs: Vec<_> = (0..n).map(def).collect();
                (defs, ty(n), ty(n))
            })
            .prop_map(|(defs, arg, reply)| {
                let old: Vec<Def> = defs.iter().map(|(d, _)| d.clone()).collect();
                let new: Vec<Def> = defs.iter().map(|(d, c)| evolve(d, *c)).collect();
                let roots = [arg, reply, Type::Prim(12)];
                (Shape { kind: 0, roots: roots.clone(), defs: old }, Shape { kind: 0, roots, defs: new })
            })
    }

    /// A small deterministic generator (splitmix64) for the values of a generated schema.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    /// A random value of `ty` in `shape`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_precision_loss)]
    fn value(shape: &Shape, ty: &Type, rng: &mut Rng, depth: usize) -> Value {
        let many = |rng: &mut Rng| if depth > 3 { 0 } else { rng.below(3) };
        match ty {
            Type::Prim(0) => Value::Unit,
            Type::Prim(1) => Value::Bool(rng.next().is_multiple_of(2)),
            Type::Prim(2) => Value::Int(i64::from(rng.next() as i8)),
            Type::Prim(4) => Value::Int(i64::from(rng.next() as i32)),
            Type::Prim(5) => Value::Int(rng.next() as i64),
            Type::Prim(6) => Value::UInt(rng.next() % 256),
            Type::Prim(7) => Value::UInt(rng.next() % 65_536),
            Type::Prim(8) => Value::UInt(rng.next() % (1 << 32)),
            Type::Prim(9) => Value::UInt(rng.next()),
            Type::Prim(11) => Value::F64(rng.next() as f64 / 7.0),
            Type::Prim(12) => Value::Str((0..many(rng)).map(|_| char::from(b'a' + (rng.next() % 26) as u8)).collect()),
            Type::Prim(13) => Value::Bytes((0..many(rng)).map(|_| rng.next() as u8).collect()),
            Type::Prim(_) => Value::Unit,
            Type::List(e) => Value::List((0..many(rng)).map(|_| value(shape, e, rng, depth + 1)).collect()),
            Type::Map(k, v) => {
                let mut entries: Vec<(Value, Value)> = Vec::new();
                for _ in 0..many(rng) {
                    let key = value(shape, k, rng, depth + 1);
                    if !entries.iter().any(|(k2, _)| *k2 == key) {
                        entries.push((key, value(shape, v, rng, depth + 1)));
                    }
                }
                Value::Map(entries)
            }
            Type::Option(e) => Value::Option(if rng.next().is_multiple_of(2) {
                Some(Box::new(value(shape, e, rng, depth + 1)))
            } else {
                None
            }),
            Type::Array(e, n) => Value::Tuple((0..*n).map(|_| value(shape, e, rng, depth + 1)).collect()),
            Type::Def(i) => match &shape.defs[*i] {
                Def::Frozen(types) => Value::Tuple(types.iter().map(|t| value(shape, t, rng, depth + 1)).collect()),
                Def::Evolvable(fields) => {
                    Value::Tuple(fields.iter().map(|(_, t)| value(shape, t, rng, depth + 1)).collect())
                }
                Def::Enum { variants, .. } => {
                    let index = rng.below(variants.len());
                    let values = variants[index].iter().map(|t| value(shape, t, rng, depth + 1)).collect();
                    Value::Variant(u32::try_from(index).expect("few variants"), values)
                }
            },
        }
    }

    /// What a reader of type `r` in `rs` reads of `v`, written as type `w` in `ws`.
    fn expected(v: &Value, ws: &Shape, w: &Type, rs: &Shape, r: &Type) -> Value {
        match (v, w, r) {
            (Value::List(items), Type::List(we), Type::List(re)) => {
                Value::List(items.iter().map(|i| expected(i, ws, we, rs, re)).collect())
            }
            (Value::Map(entries), Type::Map(wk, wv), Type::Map(rk, rv)) => Value::Map(
                entries.iter().map(|(k, x)| (expected(k, ws, wk, rs, rk), expected(x, ws, wv, rs, rv))).collect(),
            ),
            (Value::Option(Some(x)), Type::Option(we), Type::Option(re)) => {
                Value::Option(Some(Box::new(expected(x, ws, we, rs, re))))
            }
            (Value::Tuple(items), Type::Array(we, _), Type::Array(re, _)) => {
                Value::Tuple(items.iter().map(|i| expected(i, ws, we, rs, re)).collect())
            }
            (Value::Tuple(items), Type::Def(a), Type::Def(b)) => {
                let (wt, rt): (Vec<&Type>, Vec<(bool, &Type)>) = match (&ws.defs[*a], &rs.defs[*b]) {
                    (Def::Frozen(x), Def::Frozen(y)) => (x.iter().collect(), y.iter().map(|t| (false, t)).collect()),
                    (Def::Evolvable(x), Def::Evolvable(y)) => {
                        (x.iter().map(|(_, t)| t).collect(), y.iter().map(|(d, t)| (*d, t)).collect())
                    }
                    _ => unreachable!("compatible shapes"),
                };
                Value::Tuple(
                    rt.iter()
                        .enumerate()
                        .map(|(i, (_, rty))| match items.get(i) {
                            Some(x) => expected(x, ws, wt[i], rs, rty),
                            None => Value::Default,
                        })
                        .collect(),
                )
            }
            (Value::Variant(index, values), Type::Def(a), Type::Def(b)) => {
                let (Def::Enum { variants: wv, .. }, Def::Enum { variants: rv, .. }) = (&ws.defs[*a], &rs.defs[*b])
                else {
                    unreachable!("compatible shapes")
                };
                match rv.get(*index as usize) {
                    None => Value::Unknown(*index),
                    Some(rtypes) => Value::Variant(
                        *index,
                        values
                            .iter()
                            .zip(&wv[*index as usize])
                            .zip(rtypes)
                            .map(|((x, wt), rt)| expected(x, ws, wt, rs, rt))
                            .collect(),
                    ),
                }
            }
            (v, _, _) => v.clone(),
        }
    }

    /// Writes `v` as root `i` of `ws` and reads it as root `i` of `rs`, through the real codec.
    fn round_trip(v: &Value, ws: &Shape, rs: &Shape, i: usize) -> Result<Value, String> {
        let bytes = codec::encode(&Typed { shape: ws, ty: &ws.roots[i], value: v })?;
        let (read, used) = codec::decode_seed(Seed { shape: rs, ty: &rs.roots[i] }, &bytes)?;
        if used != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - used));
        }
        Ok(read)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn legal_evolutions_decode_both_ways((old, new) in versions(), seed in any::<u64>()) {
            let mut rng = Rng(seed);
            // Each direction the rules allow decodes, to exactly the values they promise.
            for (writer, reader) in [(&old, &new), (&new, &old)] {
                // The argument flows client to server, the reply server to client.
                for (root, client, server) in [(0, writer, reader), (1, reader, writer)] {
                    if compatible(client, server).is_err() {
                        continue;
                    }
                    let v = value(writer, &writer.roots[root], &mut rng, 0);
                    let read = round_trip(&v, writer, reader, root);
                    let want = expected(&v, writer, &writer.roots[root], reader, &reader.roots[root]);
                    prop_assert_eq!(read, Ok(want), "value {:?}", v);
                }
            }
            // The changes promised safe both ways are judged so.
            prop_assert_eq!(compatible(&old, &old), Ok(()));
            prop_assert_eq!(compatible(&new, &new), Ok(()));
        }
    }
}
