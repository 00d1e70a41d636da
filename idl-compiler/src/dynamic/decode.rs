//! Bytes of a schema type to JSON: serde seeds driven by the model, read through the runtime's
//! codec as the generated type's `Deserialize` reads them (the mapping is in the module docs of
//! `dynamic`).

use super::Unit;
use super::encode::{literal, nullable};
use crate::model::{DeclKind, EnumDef, FieldDef, Shape, Ty};
use base64::Engine;
use serde_json::Value as Json;
use std::fmt;
use tidl_runtime::serde::Deserialize;
use tidl_runtime::serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Reads a value of `ty` of `unit` as JSON.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'a> {
    unit: &'a Unit,
    ty: &'a Ty,
}

impl<'a> Seed<'a> {
    pub(crate) fn new(unit: &'a Unit, ty: &'a Ty) -> Seed<'a> {
        Seed { unit, ty }
    }

    fn with(self, ty: &'a Ty) -> Seed<'a> {
        Seed { unit: self.unit, ty }
    }
}

thread_local! {
    /// What the JSON being built may still take: one per value, and one per byte of an
    /// object's keys ([`decoding`]).
    static LEFT: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// Decodes with `decode` within a budget of JSON for `len` bytes of payload: a reply of a few
/// bytes must not make a million values (an array of arrays of `()` takes no bytes at all, and
/// every element of a list of structs repeats their field names).
pub(crate) fn decoding<T>(len: usize, decode: impl FnOnce() -> T) -> T {
    let budget = 1_000_000 + 64 * len as u64;
    let before = LEFT.with(|left| left.replace(budget));
    let result = decode();
    LEFT.with(|left| left.set(before));
    result
}

/// Why a value is not shown.
const TOO_LARGE: &str = "the value is too large to show as JSON (over a million values, or 64 per byte received)";

/// Takes `n` from the budget, or fails.
fn spend<E: de::Error>(n: u64) -> Result<(), E> {
    spend_or(n).map_err(E::custom)
}

/// [`spend`], for code that fails with a `String`.
fn spend_or(n: u64) -> Result<(), String> {
    LEFT.with(|left| match left.get().checked_sub(n) {
        Some(rest) => {
            left.set(rest);
            Ok(())
        }
        None => Err(TOO_LARGE.to_owned()),
    })
}

/// What a variant's JSON costs beyond its values: its name, and its fields' names.
fn variant_cost(name: &str, shape: &Shape) -> u64 {
    name.len() as u64 + if let Shape::Struct(fields) = shape { keys(fields) } else { 0 }
}

/// One per byte of the keys of an object with `fields`.
fn keys(fields: &[FieldDef]) -> u64 {
    fields.iter().map(|f| f.tidl_name.len() as u64).sum()
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        let unit = self.unit;
        spend(1)?;
        Ok(match unit.resolve(self.ty) {
            Ty::Unit => {
                <()>::deserialize(d)?;
                Json::Null
            }
            Ty::Bool => Json::Bool(bool::deserialize(d)?),
            Ty::I8 => Json::from(i8::deserialize(d)?),
            Ty::I16 => Json::from(i16::deserialize(d)?),
            Ty::I32 => Json::from(i32::deserialize(d)?),
            Ty::I64 => Json::from(i64::deserialize(d)?),
            Ty::U8 => Json::from(u8::deserialize(d)?),
            Ty::U16 => Json::from(u16::deserialize(d)?),
            Ty::U32 => Json::from(u32::deserialize(d)?),
            Ty::U64 => Json::from(u64::deserialize(d)?),
            // An f32 is written as its shortest decimal form, which reads back as the same f32.
            Ty::F32 => float(f32::deserialize(d)?.to_string().parse().unwrap_or(f64::NAN)),
            Ty::F64 => float(f64::deserialize(d)?),
            Ty::String => Json::String(String::deserialize(d)?),
            Ty::Bytes => {
                let bytes = tidl_runtime::bytes::Bytes::deserialize(d)?;
                Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            ty @ Ty::List(_) => d.deserialize_seq(Visit(self.with(ty)))?,
            ty @ Ty::Map(..) => d.deserialize_map(Visit(self.with(ty)))?,
            ty @ Ty::Option(_) => d.deserialize_option(Visit(self.with(ty)))?,
            Ty::Array(element, n) => {
                let types = vec![(**element).clone(); usize::try_from(*n).map_err(de::Error::custom)?];
                Json::Array(Row { unit, types: &types }.deserialize(d)?)
            }
            Ty::Named { module, name, .. } => match unit.decl(module, name).map(|decl| (&decl.kind, &decl.tidl_path)) {
                Some((DeclKind::Struct(s), _)) if s.frozen => {
                    spend(keys(&s.fields))?;
                    let types: Vec<Ty> = s.fields.iter().map(|f| f.ty.clone()).collect();
                    let values = Row { unit, types: &types }.deserialize(d)?;
                    object(&s.fields, values)
                }
                Some((DeclKind::Struct(s), path)) => {
                    spend(keys(&s.fields))?;
                    tidl_runtime::__evolve::deserialize_struct(d, "struct", |fields| {
                        evolvable(unit, path, &s.fields, fields)
                    })?
                }
                Some((DeclKind::Enum(e), _)) if e.open => {
                    tidl_runtime::__evolve::deserialize_variant(d, "enum", |index, payload| {
                        let Some(variant) = e.variants.get(index as usize) else {
                            return Ok(one("Unknown", Json::from(index)));
                        };
                        let types = shape_types(&variant.shape);
                        let values = payload.decode_seed(Row { unit, types: &types })?;
                        spend_or(variant_cost(&variant.name, &variant.shape))?;
                        Ok(variant_json(&variant.name, &variant.shape, values))
                    })?
                }
                Some((DeclKind::Enum(e), _)) => d.deserialize_enum("", &[], Closed { unit, e })?,
                _ => return Err(de::Error::custom(format!("the type `{name}` is not in the schema"))),
            },
            Ty::Alias { .. } | Ty::Error => return Err(de::Error::custom("the type is not in the schema")),
        })
    }
}

/// An evolvable struct's fields, read in order: a field the writer did not send takes its default.
fn evolvable(
    unit: &Unit,
    owner: &str,
    fields: &[FieldDef],
    reader: &mut tidl_runtime::__evolve::Fields<'_>,
) -> Result<Json, String> {
    let mut values = Vec::with_capacity(fields.len());
    for field in fields {
        let value = match reader.next_seed(Seed { unit, ty: &field.ty })? {
            Some(value) => value,
            None => match &field.default {
                Some(default) => {
                    let value = literal(default);
                    spend_or(1 + value.as_str().map_or(0, |text| text.len() as u64))?;
                    value
                }
                None => {
                    return Err(format!(
                        "the field `{}` of `{owner}` is missing: the peer's schema does not have it, and it has no default",
                        field.tidl_name
                    ));
                }
            },
        };
        values.push(value);
    }
    Ok(object(fields, values))
}

/// Fields and their values as an object.
fn object(fields: &[FieldDef], values: Vec<Json>) -> Json {
    Json::Object(fields.iter().map(|f| f.tidl_name.clone()).zip(values).collect())
}

/// An object of one key.
fn one(key: &str, value: Json) -> Json {
    let mut object = serde_json::Map::new();
    object.insert(key.to_owned(), value);
    Json::Object(object)
}

/// What a variant carries, as types.
fn shape_types(shape: &Shape) -> Vec<Ty> {
    match shape {
        Shape::Unit => Vec::new(),
        Shape::Tuple(types) => types.clone(),
        Shape::Struct(fields) => fields.iter().map(|f| f.ty.clone()).collect(),
    }
}

/// A variant and its values as JSON: its name, or an object of one key.
fn variant_json(name: &str, shape: &Shape, mut values: Vec<Json>) -> Json {
    match shape {
        Shape::Unit => Json::String(name.to_owned()),
        Shape::Tuple(types) if types.len() == 1 => one(name, values.pop().unwrap_or(Json::Null)),
        Shape::Tuple(_) => one(name, Json::Array(values)),
        Shape::Struct(fields) => one(name, object(fields, values)),
    }
}

/// A float as JSON: a number, or the name of a value JSON has no number for.
fn float(x: f64) -> Json {
    match serde_json::Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// Reads values of `types` one after another (a tuple's elements).
struct Row<'a> {
    unit: &'a Unit,
    types: &'a [Ty],
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = Vec<Json>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} values", self.types.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Json>, A::Error> {
        let mut out = Vec::with_capacity(self.types.len());
        for (i, ty) in self.types.iter().enumerate() {
            let value = seq.next_element_seed(Seed { unit: self.unit, ty })?;
            out.push(value.ok_or_else(|| de::Error::invalid_length(i, &self))?);
        }
        Ok(out)
    }
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = Vec<Json>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Json>, D::Error> {
        d.deserialize_tuple(self.types.len(), self)
    }
}

/// The visitor of lists, maps and options.
struct Visit<'a>(Seed<'a>);

impl<'de> Visitor<'de> for Visit<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of `{}`", self.0.unit.type_name(self.0.ty))
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        let Ty::Option(inner) = self.0.ty else { return Err(de::Error::custom("not an option")) };
        let value = self.0.with(inner).deserialize(d)?;
        Ok(if nullable(self.0.unit, inner) { Json::Array(vec![value]) } else { value })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let Ty::List(element) = self.0.ty else { return Err(de::Error::custom("not a list")) };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.0.with(element))? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let Ty::Map(key, value) = self.0.ty else { return Err(de::Error::custom("not a map")) };
        let mut object = serde_json::Map::new();
        while let Some(k) = map.next_key_seed(self.0.with(key))? {
            let k = match k {
                Json::String(text) => text,
                other => other.to_string(),
            };
            let v = map.next_value_seed(self.0.with(value))?;
            object.insert(k, v);
        }
        Ok(Json::Object(object))
    }
}

/// The visitor of a closed enum.
struct Closed<'a> {
    unit: &'a Unit,
    e: &'a EnumDef,
}

impl<'de> Visitor<'de> for Closed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the enum `{}`", self.e.name)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Json, A::Error> {
        let (index, access) = data.variant::<u32>()?;
        let variant = self.e.variants.get(index as usize).ok_or_else(|| {
            de::Error::custom(format!("`{}` has no variant {index} (it has {})", self.e.name, self.e.variants.len()))
        })?;
        spend(variant_cost(&variant.name, &variant.shape))?;
        let types = shape_types(&variant.shape);
        if types.is_empty() {
            access.unit_variant()?;
            return Ok(variant_json(&variant.name, &variant.shape, Vec::new()));
        }
        let values = access.tuple_variant(types.len(), Row { unit: self.unit, types: &types })?;
        Ok(variant_json(&variant.name, &variant.shape, values))
    }
}

#[cfg(test)]
mod tests {
    use crate::Source;
    use crate::dynamic::{Part, Schema};

    #[test]
    fn long_variant_names_count_against_the_budget() {
        // 100,000 one-byte elements, each naming a variant of 10,000 bytes: a gigabyte of JSON.
        let name = format!("V{}", "x".repeat(9_999));
        let text = format!("enum E {{ {name} }}\nservice S {{ rpc many() -> list<E>; }}");
        let schema = Schema::from_files(&[Source { path: "t.tidl", text: &text }]).unwrap();
        let mut reply = tidl_runtime::payload::encode(&(100_000u64)).unwrap().to_vec();
        reply.extend(std::iter::repeat_n(0u8, 100_000));
        match schema.method("S.many").unwrap().decode(Part::Reply, &reply) {
            Err(err) => assert!(err.contains("too large to show as JSON"), "{err}"),
            Ok(_) => panic!("100,000 variant names of 10 KB were shown"),
        }
    }

    #[test]
    fn a_reply_of_no_bytes_cannot_make_millions_of_json_values() {
        let text = "service S { rpc boom() -> [[[[[(); 32]; 32]; 32]; 32]; 32]; rpc small() -> [[(); 32]; 32]; }";
        let schema = Schema::from_files(&[Source { path: "t.tidl", text }]).unwrap();
        // 32^5 nulls from an empty payload.
        match schema.method("S.boom").unwrap().decode(Part::Reply, &[]) {
            Err(err) => assert!(err.contains("too large to show as JSON"), "{err}"),
            Ok(_) => panic!("an empty reply was shown as 32^5 nulls"),
        }
        let small = schema.method("S.small").unwrap().decode(Part::Reply, &[]).unwrap();
        assert_eq!(small.as_array().map(Vec::len), Some(32));
    }
}
