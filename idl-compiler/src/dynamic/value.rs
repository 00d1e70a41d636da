//! A checked value of a schema type, which serializes exactly as the generated type does:
//! serde's derives for frozen structs and closed enums, `tidl_runtime::__evolve` for evolvable
//! structs and `@open` enums.

use tidl_runtime::serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, SerializeTupleVariant};
use tidl_runtime::serde::{Serialize, Serializer};

/// A value, with exactly the shape its type encodes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Unit,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Option(Option<Box<Value>>),
    /// Values one after another with nothing around them: an array's elements, a frozen
    /// struct's fields.
    Row(Vec<Value>),
    /// An evolvable struct's fields: their length, then the fields.
    Evolvable(Vec<Value>),
    /// A variant and its values (a tuple variant's, or a struct variant's fields).
    Variant {
        open: bool,
        index: u32,
        values: Vec<Value>,
    },
}

/// Values serialized one after another as a tuple (what generated code hands `__evolve`).
struct Row<'a>(&'a [Value]);

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut tuple = s.serialize_tuple(self.0.len())?;
        for value in self.0 {
            tuple.serialize_element(value)?;
        }
        tuple.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Unit => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::I8(n) => s.serialize_i8(*n),
            Value::I16(n) => s.serialize_i16(*n),
            Value::I32(n) => s.serialize_i32(*n),
            Value::I64(n) => s.serialize_i64(*n),
            Value::U8(n) => s.serialize_u8(*n),
            Value::U16(n) => s.serialize_u16(*n),
            Value::U32(n) => s.serialize_u32(*n),
            Value::U64(n) => s.serialize_u64(*n),
            Value::F32(x) => s.serialize_f32(*x),
            Value::F64(x) => s.serialize_f64(*x),
            Value::Str(text) => s.serialize_str(text),
            Value::Bytes(bytes) => s.serialize_bytes(bytes),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Value::Option(None) => s.serialize_none(),
            Value::Option(Some(value)) => s.serialize_some(value),
            Value::Row(values) => Row(values).serialize(s),
            Value::Evolvable(fields) => tidl_runtime::__evolve::serialize_struct(s, &Row(fields)),
            Value::Variant { open: true, index, values } => {
                tidl_runtime::__evolve::serialize_variant(s, *index, &Row(values))
            }
            Value::Variant { open: false, index, values } if values.is_empty() => {
                s.serialize_unit_variant("", *index, "")
            }
            Value::Variant { open: false, index, values } => {
                let mut variant = s.serialize_tuple_variant("", *index, "", values.len())?;
                for value in values {
                    variant.serialize_field(value)?;
                }
                variant.end()
            }
        }
    }
}
