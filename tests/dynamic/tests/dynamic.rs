//! `tidl_compiler::dynamic`, what `tidl call` encodes and decodes with, against the code the
//! compiler generates for the same schema (`tidl/values.tidl`, every kind of type there is):
//! random values, turned into JSON by hand here (the mapping the module documents), must
//! encode to exactly the bytes the generated types encode to, and those bytes must decode back
//! to the same JSON.

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use tidl_compiler::Source;
use tidl_compiler::dynamic::{MethodSchema, Part, Schema};
use tidl_dynamic_tests::schema::values::{Everything, Frozen, Open, Point, Shape, Tree};
use tidl_runtime::bytes::Bytes;
use tidl_runtime::payload;

const SCHEMA: &str = include_str!("../tidl/values.tidl");

fn schema() -> Schema {
    Schema::from_files(&[Source { path: "values.tidl", text: SCHEMA }]).expect("the schema compiles")
}

// The JSON of each generated type, as the mapping says.

fn b64(bytes: &[u8]) -> Json {
    use std::fmt::Write;
    // A base64 encoder of its own, so the test does not share the implementation's.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = write!(out, "{}", ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Json::String(out)
}

fn f32_json(x: f32) -> Json {
    if x.is_infinite() {
        return json!(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    // Its shortest decimal form, as a number.
    json!(x.to_string().parse::<f64>().expect("a float's text parses"))
}

fn f64_json(x: f64) -> Json {
    if x.is_infinite() {
        return json!(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    json!(x)
}

fn point(p: &Point) -> Json {
    json!({ "x": p.x, "y": p.y })
}

fn frozen(f: &Frozen) -> Json {
    json!({ "a": f.a, "b": f.b, "c": f.c })
}

fn shape(s: &Shape) -> Json {
    match s {
        Shape::Empty => json!("Empty"),
        Shape::Circle(r) => json!({ "Circle": f64_json(*r) }),
        Shape::Pair(n, t) => json!({ "Pair": [n, t] }),
        Shape::Rect { corner, size } => json!({ "Rect": { "corner": point(corner), "size": point(size) } }),
    }
}

fn open(o: &Open) -> Json {
    match o {
        Open::A => json!("A"),
        Open::B(n, t) => json!({ "B": [n, t] }),
        Open::C { p, s } => json!({ "C": { "p": point(p), "s": shape(s) } }),
        Open::D(f) => json!({ "D": frozen(f) }),
        Open::Unknown(index) => json!({ "Unknown": index }),
    }
}

fn tree(t: &Tree) -> Json {
    json!({
        "label": t.label,
        "children": t.children.iter().map(tree).collect::<Vec<_>>(),
        "parent": t.parent.as_deref().map(tree),
    })
}

fn everything(e: &Everything) -> Json {
    let object = |entries: Vec<(String, Json)>| Json::Object(entries.into_iter().collect());
    let index = e
        .index
        .iter()
        .map(|(k, v)| (k.clone(), Json::Array(v.iter().map(|p| p.as_ref().map_or(Json::Null, point)).collect())))
        .collect();
    let by_blob = e.by_blob.iter().map(|(k, v)| (b64(k).as_str().unwrap_or_default().to_owned(), json!(v))).collect();
    json!({
        "unit": null,
        "flag": e.flag,
        "small": e.small,
        "short": e.short,
        "int": e.int,
        "long": e.long,
        "byte": e.byte,
        "ushort": e.ushort,
        "uint": e.uint,
        "ulong": e.ulong,
        "single": f32_json(e.single),
        "double": f64_json(e.double),
        "text": e.text,
        "blob": b64(&e.blob),
        "points": e.points.iter().map(point).collect::<Vec<_>>(),
        "index": object(index),
        "by_id": object(e.by_id.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()),
        "by_flag": object(e.by_flag.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()),
        "by_blob": object(by_blob),
        "by_small": object(e.by_small.keys().map(|k| (k.to_string(), Json::Null)).collect()),
        "maybe": e.maybe.as_ref().map(point),
        // An option of an option writes its value in a one-element array.
        "maybe_maybe": e.maybe_maybe.map(|inner| json!([inner])),
        "maybe_unit": e.maybe_unit.map(|()| json!([null])),
        "digest": e.digest,
        "pairs": e.pairs.iter().map(frozen).collect::<Vec<_>>(),
        "frozen": frozen(&e.frozen),
        "shape": shape(&e.shape),
        "open": open(&e.open),
        "tree": tree(&e.tree),
        "ids": e.ids,
        "role": e.role,
    })
}

// Random values of the generated types.

fn any_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    // NaN is left out: any NaN is sent as the canonical one.
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn any_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from)
}

fn any_point() -> impl Strategy<Value = Point> {
    (any::<i32>(), any::<i32>()).prop_map(|(x, y)| Point { x, y })
}

fn any_frozen() -> impl Strategy<Value = Frozen> {
    (any::<u8>(), any::<i8>(), any::<Option<String>>()).prop_map(|(a, b, c)| Frozen { a, b, c })
}

fn any_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        any_f64().prop_map(Shape::Circle),
        (any::<i32>(), any::<String>()).prop_map(|(n, t)| Shape::Pair(n, t)),
        (any_point(), any_point()).prop_map(|(corner, size)| Shape::Rect { corner, size }),
    ]
}

fn any_open() -> impl Strategy<Value = Open> {
    prop_oneof![
        Just(Open::A),
        (any::<u32>(), any::<String>()).prop_map(|(n, t)| Open::B(n, t)),
        (any_point(), any_shape()).prop_map(|(p, s)| Open::C { p, s }),
        any_frozen().prop_map(Open::D),
        // A variant from a newer schema, sent on as generated code sends it: its index alone.
        (4u32..).prop_map(Open::Unknown),
    ]
}

fn any_tree() -> impl Strategy<Value = Tree> {
    let leaf = any::<String>().prop_map(|label| Tree { label, children: Vec::new(), parent: None });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (any::<String>(), prop::collection::vec(inner.clone(), 0..3), prop::option::of(inner))
            .prop_map(|(label, children, parent)| Tree { label, children, parent: parent.map(Box::new) })
    })
}

/// Maps of at most `n` entries.
fn map<K: Strategy, V: Strategy>(k: K, v: V, n: usize) -> impl Strategy<Value = HashMap<K::Value, V::Value>>
where
    K::Value: std::hash::Hash + Eq,
{
    prop::collection::hash_map(k, v, 0..=n)
}

prop_compose! {
    fn any_everything(map_len: usize)(
        (flag, small, short, int, long, byte, ushort, uint, ulong) in
            (any::<bool>(), any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>(), any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>()),
        (single, double, text, blob, points) in
            (any_f32(), any_f64(), any::<String>(), any_bytes(), prop::collection::vec(any_point(), 0..3)),
        (index, by_id, by_flag, by_blob, by_small) in (
            map(any::<String>(), prop::collection::vec(prop::option::of(any_point()), 0..3), map_len),
            map(any::<u64>(), any::<String>(), map_len),
            map(any::<bool>(), any::<u8>(), map_len),
            map(any_bytes(), any::<i16>(), map_len),
            map(any::<i8>(), Just(()), map_len),
        ),
        (maybe, maybe_maybe, maybe_unit, digest, pairs, frozen) in (
            prop::option::of(any_point()),
            any::<Option<Option<u32>>>(),
            any::<Option<()>>(),
            any::<[u8; 4]>(),
            [any_frozen(), any_frozen()],
            any_frozen(),
        ),
        (shape, open, tree, ids, role) in
            (any_shape(), any_open(), any_tree(), prop::collection::vec(any::<u64>(), 0..4), any::<String>()),
    ) -> Everything {
        Everything {
            unit: (), flag, small, short, int, long, byte, ushort, uint, ulong, single, double, text, blob, points,
            index, by_id, by_flag, by_blob, by_small, maybe, maybe_maybe, maybe_unit, digest, pairs, frozen, shape,
            open, tree, ids, role,
        }
    }
}

/// Checks one value of `part` of `method` both ways: the JSON encodes to what the generated
/// type encodes to (byte for byte if `exact`: maps of several entries are in `HashMap` order),
/// decodes from it to the same JSON, and what it encodes to decodes as the same value.
fn check<T>(method: &MethodSchema<'_>, part: Part, value: &T, expected: &Json, exact: bool) -> Result<(), TestCaseError>
where
    T: tidl_runtime::serde::Serialize + tidl_runtime::serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let generated = payload::encode(value).map_err(TestCaseError::fail)?;
    let dynamic = method.encode(part, expected).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if exact {
        prop_assert_eq!(&dynamic, &generated, "the bytes of {}", expected);
    }
    prop_assert_eq!(&payload::decode::<T>(&dynamic).map_err(TestCaseError::fail)?, value);
    prop_assert_eq!(&method.decode(part, &generated).map_err(TestCaseError::fail)?, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_type_encodes_as_generated_code_does(value in any_everything(1)) {
        let schema = schema();
        let method = schema.method("values.Values.everything").expect("the method");
        check(&method, Part::Argument, &value, &everything(&value), true)?;
        check(&method, Part::Reply, &value, &everything(&value), true)?;
    }

    #[test]
    fn maps_of_many_entries_decode_to_the_same_values(value in any_everything(4)) {
        let schema = schema();
        let method = schema.method("values.Values.everything").expect("the method");
        check(&method, Part::Argument, &value, &everything(&value), false)?;
    }

    #[test]
    fn errors_and_stream_items_encode_as_generated_code_does(
        error in any_shape(),
        sent in any_point(),
        received in any_open(),
    ) {
        let schema = schema();
        let everything = schema.method("values.Values.everything").expect("the method");
        check(&everything, Part::Error, &error, &shape(&error), true)?;
        let items = schema.method("values.Values/items").expect("the method");
        check(&items, Part::Argument, &sent, &point(&sent), true)?;
        check(&items, Part::Reply, &received, &open(&received), true)?;
    }
}

/// An `Everything` with small values, for the error tests.
fn sample() -> Json {
    everything(&Everything {
        unit: (),
        flag: true,
        small: -1,
        short: 2,
        int: 3,
        long: 4,
        byte: 5,
        ushort: 6,
        uint: 7,
        ulong: 8,
        single: 1.5,
        double: 2.5,
        text: "hi".into(),
        blob: Bytes::from_static(b"\x00\xff"),
        points: vec![Point { x: 1, y: 2 }],
        index: HashMap::new(),
        by_id: HashMap::new(),
        by_flag: HashMap::new(),
        by_blob: HashMap::new(),
        by_small: HashMap::new(),
        maybe: None,
        maybe_maybe: Some(None),
        maybe_unit: Some(()),
        digest: [1, 2, 3, 4],
        pairs: [Frozen { a: 1, b: 2, c: None }, Frozen { a: 3, b: 4, c: Some("x".into()) }],
        frozen: Frozen { a: 0, b: 0, c: None },
        shape: Shape::Empty,
        open: Open::A,
        tree: Tree { label: "root".into(), children: Vec::new(), parent: None },
        ids: vec![1],
        role: "member".into(),
    })
}

/// The error encoding `sample()` with `edit` applied gives.
fn error_after(edit: impl FnOnce(&mut Json)) -> String {
    let schema = schema();
    let method = schema.method("values.Values.everything").expect("the method");
    let mut value = sample();
    edit(&mut value);
    method.encode(Part::Argument, &value).expect_err("the JSON does not fit").to_string()
}

#[test]
fn json_that_does_not_fit_says_where_and_what_was_expected() {
    type Edit = fn(&mut Json);
    let cases: [(&str, Edit); 10] = [
        ("at `.points[0].y`: expected an i32 (-2147483648 to 2147483647), found the string \"x\"", |v| {
            v["points"][0]["y"] = json!("x");
        }),
        ("at `.byte`: expected a u8 (0 to 255), found the number 300", |v| v["byte"] = json!(300)),
        ("at `.`: the field `text` (string) is missing, and it has no default", |v| {
            v.as_object_mut().map(|o| o.shift_remove("text"));
        }),
        (
            "at `.shape`: `values.Shape` has no variant `Circel`; did you mean `Circle`? Its variants are: Empty, Circle, Pair, Rect",
            |v| {
                v["shape"] = json!({ "Circel": 1.0 });
            },
        ),
        ("at `.shape`: the variant `Circle` of `values.Shape` carries a value: write it as {\"Circle\": ...}", |v| {
            v["shape"] = json!("Circle");
        }),
        ("at `.shape.Pair`: expected an array of the variant's 2 values, found the number 1", |v| {
            v["shape"] = json!({ "Pair": 1 });
        }),
        ("at `.digest`: expected an array of exactly 4 (`[u8; 4]`), found an array of 3", |v| {
            v["digest"] = json!([1, 2, 3]);
        }),
        ("at `.by_id[\"x\"]`: expected a u64 (0 to 18446744073709551615), found the string \"x\"", |v| {
            v["by_id"] = json!({ "x": "a" });
        }),
        (
            "at `.maybe_maybe`: expected null, or the value in a one-element array (`option<option<u32>>` may itself be null), found the number 5",
            |v| v["maybe_maybe"] = json!(5),
        ),
        ("at `.tree.children[0].label`: expected a string, found null", |v| {
            v["tree"]["children"] = json!([{ "label": null, "children": [] }]);
        }),
    ];
    for (want, edit) in cases {
        assert_eq!(error_after(edit), want);
    }
    let unknown = error_after(|v| v["txet"] = json!("hi"));
    assert!(
        unknown.starts_with(
            "at `.`: `values.Everything` has no field `txet`; did you mean `text`? Its fields are: unit, flag,"
        ),
        "{unknown}"
    );
}

#[test]
fn json_may_leave_out_what_has_a_default_and_write_integers_as_strings() {
    let schema = schema();
    let method = schema.method("values.Values.everything").expect("the method");
    let full = method.encode(Part::Argument, &sample()).expect("it fits");
    let mut lenient = sample();
    let object = lenient.as_object_mut().expect("an object");
    object.shift_remove("role");
    object.shift_remove("maybe");
    object["ulong"] = json!("8");
    assert_eq!(method.encode(Part::Argument, &lenient).expect("it fits"), full);
}

#[test]
fn an_unknown_method_lists_the_methods_there_are() {
    let err = schema().method("values.Values.everythin").expect_err("no such method");
    assert_eq!(
        err,
        "there is no method `values.Values.everythin`; did you mean `values.Values.everything`? The methods are: \
         values.Values.everything, values.Values.items"
    );
}
