//! JSON to a checked [`Value`] of a schema type, with errors that say where and what was
//! expected (the mapping is in the module docs of `dynamic`).

use super::value::Value;
use super::{JsonError, Unit};
use crate::diagnostic::suggest;
use crate::model::{DeclKind, FieldDef, Literal, Shape, Ty};
use base64::Engine;
use serde_json::Value as Json;

/// Converts JSON to values of one unit's types, keeping the path to where it is.
pub(crate) struct Encoder<'a> {
    unit: &'a Unit,
    path: Vec<Segment>,
}

/// One step into a value.
enum Segment {
    Field(String),
    Index(usize),
    Key(String),
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(unit: &'a Unit) -> Encoder<'a> {
        Encoder { unit, path: Vec::new() }
    }

    /// `json` as a value of `ty`.
    pub(crate) fn value(mut self, ty: &Ty, json: &Json) -> Result<Value, JsonError> {
        self.go(ty, json)
    }

    fn go(&mut self, ty: &Ty, json: &Json) -> Result<Value, JsonError> {
        let unit = self.unit;
        let ty = unit.resolve(ty);
        Ok(match ty {
            Ty::Unit => match json {
                Json::Null => Value::Unit,
                _ => return Err(self.expected("null (the type is `()`)", json)),
            },
            Ty::Bool => Value::Bool(json.as_bool().ok_or_else(|| self.expected("true or false", json))?),
            Ty::I8 => Value::I8(self.integer(json, "i8")?),
            Ty::I16 => Value::I16(self.integer(json, "i16")?),
            Ty::I32 => Value::I32(self.integer(json, "i32")?),
            Ty::I64 => Value::I64(self.integer(json, "i64")?),
            Ty::U8 => Value::U8(self.integer(json, "u8")?),
            Ty::U16 => Value::U16(self.integer(json, "u16")?),
            Ty::U32 => Value::U32(self.integer(json, "u32")?),
            Ty::U64 => Value::U64(self.integer(json, "u64")?),
            Ty::F32 => {
                let x = self.float(json, "f32")?;
                #[allow(clippy::cast_possible_truncation)]
                let single = x as f32;
                if x.is_finite() && !single.is_finite() {
                    return Err(self.error(format!("{x} is out of the range of f32")));
                }
                Value::F32(single)
            }
            Ty::F64 => Value::F64(self.float(json, "f64")?),
            Ty::String => Value::Str(json.as_str().ok_or_else(|| self.expected("a string", json))?.to_owned()),
            Ty::Bytes => Value::Bytes(self.bytes(json)?),
            Ty::List(element) => {
                let items = json.as_array().ok_or_else(|| self.expected("an array", json))?;
                Value::List(self.each(element, items)?)
            }
            Ty::Array(element, n) => {
                let items = json.as_array().ok_or_else(|| self.expected(&format!("an array of {n}"), json))?;
                if items.len() as u64 != *n {
                    return Err(self.expected(&format!("an array of exactly {n} (`{}`)", unit.type_name(ty)), json));
                }
                Value::Row(self.each(element, items)?)
            }
            Ty::Map(key, value) => {
                let object = json.as_object().ok_or_else(|| self.expected("an object (a map)", json))?;
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(object.len());
                for (text, item) in object {
                    self.path.push(Segment::Key(text.clone()));
                    let key = self.key(key, text)?;
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(self.error("the key appears twice in the map".into()));
                    }
                    let value = self.go(value, item)?;
                    self.path.pop();
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            Ty::Option(inner) => match json {
                Json::Null => Value::Option(None),
                _ if nullable(unit, inner) => match json.as_array().map(Vec::as_slice) {
                    Some([value]) => Value::Option(Some(Box::new(self.go(inner, value)?))),
                    _ => {
                        let what = format!(
                            "null, or the value in a one-element array (`{}` may itself be null)",
                            unit.type_name(ty)
                        );
                        return Err(self.expected(&what, json));
                    }
                },
                _ => Value::Option(Some(Box::new(self.go(inner, json)?))),
            },
            Ty::Named { module, name, .. } => match unit.decl(module, name).map(|d| (&d.kind, &d.tidl_path)) {
                Some((DeclKind::Struct(s), path)) => {
                    let fields = self.fields(path, &s.fields, json)?;
                    if s.frozen { Value::Row(fields) } else { Value::Evolvable(fields) }
                }
                Some((DeclKind::Enum(e), path)) => self.variant(path, e, json)?,
                _ => return Err(self.error(format!("the type `{name}` is not in the schema"))),
            },
            Ty::Alias { .. } | Ty::Error => return Err(self.error("the type is not in the schema".into())),
        })
    }

    fn each(&mut self, ty: &Ty, items: &[Json]) -> Result<Vec<Value>, JsonError> {
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            self.path.push(Segment::Index(i));
            values.push(self.go(ty, item)?);
            self.path.pop();
        }
        Ok(values)
    }

    /// A struct's (or a struct variant's) fields from an object, in declaration order.
    fn fields(&mut self, owner: &str, fields: &[FieldDef], json: &Json) -> Result<Vec<Value>, JsonError> {
        let names = || fields.iter().map(|f| f.tidl_name.as_str());
        let object = json.as_object().ok_or_else(|| {
            let list = names().collect::<Vec<_>>().join(", ");
            self.expected(&format!("an object with the fields of `{owner}` ({list})"), json)
        })?;
        if let Some(unknown) = object.keys().find(|k| !names().any(|n| n == k.as_str())) {
            let mut message = format!("`{owner}` has no field `{unknown}`");
            if let Some(near) = suggest(unknown, names()) {
                message.push_str(&format!("; did you mean `{near}`?"));
            }
            message.push_str(&format!(" Its fields are: {}", names().collect::<Vec<_>>().join(", ")));
            return Err(self.error(message));
        }
        let mut values = Vec::with_capacity(fields.len());
        for field in fields {
            self.path.push(Segment::Field(field.tidl_name.clone()));
            let value = match (object.get(&field.tidl_name), &field.default) {
                (Some(json), _) => self.go(&field.ty, json)?,
                (None, Some(default)) => self.go(&field.ty, &literal(default))?,
                (None, None) if matches!(self.unit.resolve(&field.ty), Ty::Option(_)) => Value::Option(None),
                (None, None) => {
                    self.path.pop();
                    let ty = self.unit.type_name(&field.ty);
                    return Err(
                        self.error(format!("the field `{}` ({ty}) is missing, and it has no default", field.tidl_name))
                    );
                }
            };
            self.path.pop();
            values.push(value);
        }
        Ok(values)
    }

    fn variant(&mut self, owner: &str, e: &crate::model::EnumDef, json: &Json) -> Result<Value, JsonError> {
        let names = || e.variants.iter().map(|v| v.name.as_str());
        let list = || names().collect::<Vec<_>>().join(", ");
        let one = json.as_object().filter(|object| object.len() == 1).and_then(|object| object.iter().next());
        let (name, payload) = match (json, one) {
            (Json::String(name), _) => (name.as_str(), None),
            (_, Some((name, payload))) => (name.as_str(), Some(payload)),
            _ => {
                let what = format!(
                    "a variant of `{owner}`: a unit variant's name as a string, or an object with the \
                     variant's name as its one key ({})",
                    list()
                );
                return Err(self.expected(&what, json));
            }
        };
        let Some(index) = e.variants.iter().position(|v| v.name == name) else {
            if e.open && name == "Unknown" {
                self.path.push(Segment::Field(name.to_owned()));
                let index = self.integer(payload.unwrap_or(&Json::Null), "u32")?;
                self.path.pop();
                return Ok(Value::Variant { open: true, index, values: Vec::new() });
            }
            let mut message = format!("`{owner}` has no variant `{name}`");
            if let Some(near) = suggest(name, names()) {
                message.push_str(&format!("; did you mean `{near}`?"));
            }
            message.push_str(&format!(" Its variants are: {}", list()));
            return Err(self.error(message));
        };
        let variant = &e.variants[index];
        self.path.push(Segment::Field(name.to_owned()));
        let values = match (&variant.shape, payload) {
            (Shape::Unit, None | Some(Json::Null)) => Vec::new(),
            (Shape::Unit, Some(json)) => return Err(self.expected("null: the variant carries nothing", json)),
            (_, None) => {
                self.path.pop();
                return Err(self.error(format!(
                    "the variant `{name}` of `{owner}` carries a value: write it as {{\"{name}\": ...}}"
                )));
            }
            (Shape::Tuple(types), Some(json)) if types.len() == 1 => vec![self.go(&types[0], json)?],
            (Shape::Tuple(types), Some(json)) => {
                let items = json
                    .as_array()
                    .filter(|items| items.len() == types.len())
                    .ok_or_else(|| self.expected(&format!("an array of the variant's {} values", types.len()), json))?;
                let mut values = Vec::with_capacity(types.len());
                for (i, (ty, item)) in types.iter().zip(items).enumerate() {
                    self.path.push(Segment::Index(i));
                    values.push(self.go(ty, item)?);
                    self.path.pop();
                }
                values
            }
            (Shape::Struct(fields), Some(json)) => self.fields(&format!("{owner}.{name}"), fields, json)?,
        };
        self.path.pop();
        let index = u32::try_from(index).map_err(|_| self.error("too many variants".into()))?;
        Ok(Value::Variant { open: e.open, index, values })
    }

    /// A map key, written as a JSON object's key.
    fn key(&mut self, ty: &Ty, text: &str) -> Result<Value, JsonError> {
        let as_json = match self.unit.resolve(ty) {
            Ty::String | Ty::Bytes => Json::String(text.to_owned()),
            Ty::Bool => match text {
                "true" => Json::Bool(true),
                "false" => Json::Bool(false),
                _ => return Err(self.error(format!("expected the key `true` or `false`, found `{text}`"))),
            },
            // Integers parse from strings too.
            _ => Json::String(text.to_owned()),
        };
        self.go(ty, &as_json)
    }

    fn integer<T: TryFrom<i128> + Bounded>(&self, json: &Json, name: &str) -> Result<T, JsonError> {
        let article = if name.starts_with('i') { "an" } else { "a" };
        let range = format!("{article} {name} ({} to {})", T::MIN, T::MAX);
        let n: Option<i128> = match json {
            Json::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
            Json::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        let n = n.ok_or_else(|| self.expected(&range, json))?;
        T::try_from(n).map_err(|_| self.expected(&range, json))
    }

    fn float(&self, json: &Json, name: &str) -> Result<f64, JsonError> {
        let x = match json {
            Json::Number(n) => n.as_f64(),
            Json::String(text) => match text.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                text => text.trim().parse().ok(),
            },
            _ => None,
        };
        x.ok_or_else(|| self.expected(&format!("{name}: a number, or \"NaN\", \"Infinity\", \"-Infinity\""), json))
    }

    fn bytes(&self, json: &Json) -> Result<Vec<u8>, JsonError> {
        let text = json.as_str().ok_or_else(|| self.expected("bytes, as a base64 string", json))?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| self.error(format!("expected bytes as a base64 string (standard alphabet, padded): {e}")))
    }

    fn expected(&self, what: &str, json: &Json) -> JsonError {
        self.error(format!("expected {what}, found {}", found(json)))
    }

    fn error(&self, message: String) -> JsonError {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Field(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
                Segment::Key(key) => path.push_str(&format!("[{}]", Json::String(key.clone()))),
            }
        }
        if !path.starts_with('.') {
            path.insert(0, '.');
        }
        JsonError { path, message }
    }
}

/// The integer types' bounds.
pub(crate) trait Bounded {
    const MIN: i128;
    const MAX: i128;
}

macro_rules! bounded {
    ($($t:ty),*) => {
        $(impl Bounded for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        })*
    };
}
bounded!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Whether the JSON of `ty` may be `null` (then an option of it writes its value in an array).
pub(crate) fn nullable(unit: &Unit, ty: &Ty) -> bool {
    matches!(unit.resolve(ty), Ty::Unit | Ty::Option(_))
}

/// A default written in the `.tidl` file, as JSON.
pub(crate) fn literal(literal: &Literal) -> Json {
    match literal {
        Literal::Integer(Some(n)) => i64::try_from(*n)
            .map(Json::from)
            .or_else(|_| u64::try_from(*n).map(Json::from))
            .unwrap_or_else(|_| Json::String(n.to_string())),
        Literal::Float(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Json::String(text.clone()), Json::Number),
        Literal::String(text) => Json::String(text.clone()),
        Literal::Bool(b) => Json::Bool(*b),
        Literal::EmptyList => Json::Array(Vec::new()),
        Literal::EmptyMap => Json::Object(serde_json::Map::new()),
        Literal::Integer(None) | Literal::None => Json::Null,
    }
}

/// What a JSON value is, for messages.
fn found(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => format!("the number {n}"),
        Json::String(text) => {
            let shown: String = text.chars().take(40).collect();
            let more = if shown.len() < text.len() { "..." } else { "" };
            format!("the string {}{more}", Json::String(shown))
        }
        Json::Array(items) => format!("an array of {}", items.len()),
        Json::Object(object) if object.is_empty() => "an empty object".into(),
        Json::Object(object) => {
            format!("an object with {}", object.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        }
    }
}
