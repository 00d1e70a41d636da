//! Property tests of `tidl compat`: random schemas compared with themselves show no change;
//! random legal evolutions get the verdict the design gives them; random illegal ones are
//! flagged as breaking.

use crate::{Config, Source, Verdict};
use proptest::prelude::*;

/// The field types the schemas use, each with a default literal.
const TYPES: [(&str, &str); 8] = [
    ("u32", "7"),
    ("u64", "7"),
    ("i32", "-7"),
    ("string", "\"x\""),
    ("bool", "true"),
    ("bytes", "[]"),
    ("f64", "1.5"),
    ("list<string>", "[]"),
];

#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: usize,
    default: bool,
}

#[derive(Debug, Clone)]
struct Struct {
    name: String,
    frozen: bool,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Enum {
    open: bool,
    variants: Vec<String>,
}

/// Every struct is the argument of a method, and every enum the reply of one.
#[derive(Debug, Clone)]
struct Schema {
    structs: Vec<Struct>,
    enums: Vec<Enum>,
    /// For each struct's method: the reply, another struct's index (or none: `u64`).
    replies: Vec<Option<usize>>,
    streaming: Vec<bool>,
    extra_method: bool,
}

impl Schema {
    fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.structs {
            if s.frozen {
                out.push_str("@frozen\n");
            }
            out.push_str(&format!("struct {} {{\n", s.name));
            for f in &s.fields {
                let (ty, default) = TYPES[f.ty];
                let default = if f.default && !s.frozen { format!(" = {default}") } else { String::new() };
                out.push_str(&format!("    {}: {ty}{default},\n", f.name));
            }
            out.push_str("}\n\n");
        }
        for (i, e) in self.enums.iter().enumerate() {
            let open = if e.open { "@open\n" } else { "" };
            out.push_str(&format!("{open}enum E{i} {{\n    {},\n}}\n\n", e.variants.join(",\n    ")));
        }
        out.push_str("service Svc {\n");
        for (i, reply) in self.replies.iter().enumerate() {
            let reply = reply.map_or("u64".to_owned(), |r| self.structs[r].name.clone());
            let stream = if self.streaming[i] { "stream " } else { "" };
            out.push_str(&format!("    rpc m{i}({}) -> {stream}{reply};\n", self.structs[i].name));
        }
        for i in 0..self.enums.len() {
            out.push_str(&format!("    rpc e{i}(u64) -> E{i};\n"));
        }
        if self.extra_method {
            out.push_str("    rpc extra(string) -> string;\n");
        }
        out.push_str("}\n");
        out
    }
}

fn schema() -> impl Strategy<Value = Schema> {
    let field = (0..TYPES.len(), any::<bool>());
    let strukt = (any::<bool>(), prop::collection::vec(field, 1..5));
    let variants = (any::<bool>(), 1usize..4);
    (prop::collection::vec(strukt, 1..4), prop::collection::vec(variants, 0..3), any::<u64>()).prop_map(
        |(structs, enums, seed)| {
            let n = structs.len();
            let structs: Vec<Struct> = structs
                .into_iter()
                .enumerate()
                .map(|(i, (frozen, fields))| Struct {
                    name: format!("S{i}"),
                    frozen,
                    fields: fields
                        .into_iter()
                        .enumerate()
                        .map(|(k, (ty, default))| Field { name: format!("f{k}"), ty, default })
                        .collect(),
                })
                .collect();
            let enums = enums
                .into_iter()
                .map(|(open, count)| Enum { open, variants: (0..count).map(|v| format!("V{v}")).collect() })
                .collect();
            let replies = (0..n).map(|i| (seed >> i & 1 == 1).then_some((i + 1) % n)).collect();
            Schema { structs, enums, replies, streaming: vec![false; n], extra_method: false }
        },
    )
}

fn verdict(old: &Schema, new: &Schema) -> (Verdict, usize, String) {
    let (old_text, new_text) = (old.render(), new.render());
    let report = Config::new()
        .compat_sources(
            &[Source { path: "old.tidl", text: &old_text }],
            &[Source { path: "new.tidl", text: &new_text }],
        )
        .unwrap_or_else(|e| panic!("{e}\n{old_text}\n---\n{new_text}"));
    (report.verdict(), report.findings().len(), format!("{old_text}\n---\n{new_text}\n{}", report.render()))
}

/// A change that keeps old and new versions working together (in the order given).
#[derive(Debug, Clone, Copy)]
enum Legal {
    AppendWithDefault,
    RenameField,
    ChangeDefault,
    RenameStruct,
    AddOpenVariant,
    AddMethod,
}

/// A change no rollout order survives.
#[derive(Debug, Clone, Copy)]
enum Illegal {
    ChangeFieldType,
    RemoveMiddleField,
    SwapSameTypedFields,
    AppendToFrozen,
    ToggleFrozen,
    MakeStreaming,
    ToggleOpen,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_schema_has_no_changes_from_itself(schema in schema()) {
        let (v, n, shown) = verdict(&schema, &schema);
        prop_assert_eq!((v, n), (Verdict::Safe, 0), "{}", shown);
    }

    #[test]
    fn legal_evolutions_get_their_verdict(
        old in schema(),
        change in prop::sample::select(vec![
            Legal::AppendWithDefault, Legal::RenameField, Legal::ChangeDefault, Legal::RenameStruct,
            Legal::AddOpenVariant, Legal::AddMethod,
        ]),
        pick in any::<prop::sample::Index>(),
        ty in 0..TYPES.len(),
    ) {
        let mut old = old;
        let mut new = old.clone();
        let s = pick.index(new.structs.len());
        let mut expected = Verdict::Safe;
        match change {
            Legal::AppendWithDefault => {
                old.structs[s].frozen = false;
                new.structs[s].frozen = false;
                let name = format!("f{}", new.structs[s].fields.len());
                new.structs[s].fields.push(Field { name, ty, default: true });
            }
            Legal::RenameField => {
                let f = pick.index(new.structs[s].fields.len());
                new.structs[s].fields[f].name = format!("renamed{f}");
            }
            Legal::ChangeDefault => {
                old.structs[s].frozen = false;
                new.structs[s].frozen = false;
                let f = pick.index(new.structs[s].fields.len());
                old.structs[s].fields[f] = Field { name: format!("f{f}"), ty: 0, default: true };
                new.structs[s].fields[f] = Field { name: format!("f{f}"), ty: 0, default: true };
                new.structs[s].fields.push(Field { name: "last".into(), ty: 1, default: true });
                // u32's default is 7 in the old version; the new version says 8.
                let text = new.render().replace(&format!("f{f}: u32 = 7"), &format!("f{f}: u32 = 8"));
                let report = Config::new()
                    .compat_sources(&[Source { path: "o.tidl", text: &old.render() }], &[Source { path: "n.tidl", text: &text }])
                    .unwrap_or_else(|e| panic!("{e}"));
                prop_assert_eq!(report.verdict(), Verdict::Safe, "{}", report.render());
                prop_assert!(report.findings().iter().any(|f| f.warning && f.message.contains("default")), "{}", report.render());
                return Ok(());
            }
            Legal::RenameStruct => {
                let renamed = format!("Renamed{s}");
                new.structs[s].name = renamed;
            }
            Legal::AddOpenVariant => {
                if new.enums.is_empty() {
                    return Ok(());
                }
                let e = pick.index(new.enums.len());
                old.enums[e].open = true;
                new.enums[e].open = true;
                let name = format!("V{}", new.enums[e].variants.len());
                new.enums[e].variants.push(name);
            }
            Legal::AddMethod => {
                new.extra_method = true;
                expected = Verdict::ServersFirst;
            }
        }
        let (v, _, shown) = verdict(&old, &new);
        prop_assert_eq!(v, expected, "{:?}: {}", change, shown);
    }

    #[test]
    fn illegal_evolutions_are_breaking(
        old in schema(),
        change in prop::sample::select(vec![
            Illegal::ChangeFieldType, Illegal::RemoveMiddleField, Illegal::SwapSameTypedFields,
            Illegal::AppendToFrozen, Illegal::ToggleFrozen, Illegal::MakeStreaming, Illegal::ToggleOpen,
        ]),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut old = old;
        let s = pick.index(old.structs.len());
        if matches!(change, Illegal::RemoveMiddleField | Illegal::SwapSameTypedFields) && old.structs[s].fields.len() < 3 {
            old.structs[s].fields.push(Field { name: "f8".into(), ty: 3, default: false });
            old.structs[s].fields.push(Field { name: "f9".into(), ty: 3, default: false });
        }
        let mut new = old.clone();
        let fields = &mut new.structs[s].fields;
        let f = pick.index(fields.len());
        match change {
            Illegal::ChangeFieldType => fields[f].ty = if fields[f].ty == 3 { 0 } else { 3 },
            Illegal::RemoveMiddleField => {
                fields.remove(f.min(fields.len() - 2));
            }
            Illegal::SwapSameTypedFields => {
                let (ty, default) = (fields[0].ty, fields[0].default);
                fields[1].ty = ty;
                fields[1].default = default;
                old.structs[s].fields[1].ty = ty;
                old.structs[s].fields[1].default = default;
                fields.swap(0, 1);
            }
            Illegal::AppendToFrozen => {
                old.structs[s].frozen = true;
                new.structs[s].frozen = true;
                new.structs[s].fields.push(Field { name: "added".into(), ty: 0, default: true });
            }
            Illegal::ToggleFrozen => new.structs[s].frozen = !new.structs[s].frozen,
            Illegal::MakeStreaming => new.streaming[s] = true,
            Illegal::ToggleOpen => {
                if new.enums.is_empty() {
                    return Ok(());
                }
                let e = pick.index(new.enums.len());
                new.enums[e].open = !new.enums[e].open;
            }
        }
        let (v, _, shown) = verdict(&old, &new);
        prop_assert_eq!(v, Verdict::Breaking, "{:?}: {}", change, shown);
    }
}
