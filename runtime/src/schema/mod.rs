//! [`Schema`]: the wire shape of a method, so that a client and a server built from different
//! versions of a `.tidl` file find out, once per connection, whether they can talk (docs/PROTOCOL.md,
//! "Schemas and fingerprints").
//!
//! The compiler writes each method's descriptor: its kind, then the types of its argument, reply
//! and error, with the structs and enums they use, but no names (names are not on the wire). The
//! fingerprint is a hash of it. When fingerprints differ, [`compatible`] decides by the same rules
//! as `tidl compat`: a reader can read a writer if every field the reader has beyond the writer's
//! has a default, every variant the writer may send is one the reader knows or the enum is open,
//! and integers only widen.

use std::collections::HashSet;

#[cfg(test)]
mod dynamic;
mod embedded;

pub use embedded::EmbeddedSchema;

/// The wire shape of a method, as the compiler wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Schema {
    /// A hash (64-bit FNV-1a) of `descriptor`.
    pub fingerprint: u64,
    /// The canonical description of the method's wire shape.
    pub descriptor: &'static [u8],
    /// Whether the method is declared `@idempotent` (not part of the shape): a call of it that
    /// failed on the way may be sent again.
    pub idempotent: bool,
}

/// The descriptor format's version, its first byte.
const FORMAT: u8 = 1;

/// Types nest at most this deep in a descriptor (the compiler limits brackets to 64).
const MAX_NESTING: usize = 128;

/// A type in a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Type {
    /// A primitive, by its tag (0 unit ... 13 bytes).
    Prim(u8),
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Option(Box<Type>),
    Array(Box<Type>, u64),
    /// A struct or enum, by its index among the descriptor's definitions.
    Def(usize),
}

/// A struct or enum definition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Def {
    Frozen(Vec<Type>),
    /// Fields, each with whether it has a default.
    Evolvable(Vec<(bool, Type)>),
    /// Variants' payload types; open or not.
    Enum {
        open: bool,
        variants: Vec<Vec<Type>>,
    },
}

/// A parsed descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    kind: u8,
    roots: [Type; 3],
    defs: Vec<Def>,
}

/// What each of the three root types is, for messages.
const ROOTS: [&str; 3] = ["the argument", "the reply", "the error"];

/// The 64-bit FNV-1a hash the compiler computes for a descriptor.
#[cfg(test)]
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("the descriptor ends early")?;
        self.at += 1;
        Ok(b)
    }

    /// An unsigned LEB128 number.
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number in the descriptor is too long".into())
    }

    /// A count of things that each take at least one byte.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        let left = self.bytes.len() - self.at;
        usize::try_from(n).ok().filter(|n| *n <= left).ok_or_else(|| "a count in the descriptor is too large".into())
    }

    fn ty(&mut self, depth: usize) -> Result<Type, String> {
        if depth > MAX_NESTING {
            return Err("the descriptor nests too deep".into());
        }
        let d = depth + 1;
        Ok(match self.byte()? {
            tag @ 0..=13 => Type::Prim(tag),
            14 => Type::List(Box::new(self.ty(d)?)),
            15 => Type::Map(Box::new(self.ty(d)?), Box::new(self.ty(d)?)),
            16 => Type::Option(Box::new(self.ty(d)?)),
            17 => {
                let len = self.varint()?;
                Type::Array(Box::new(self.ty(d)?), len)
            }
            18 => Type::Def(usize::try_from(self.varint()?).map_err(|_| "a bad definition index")?),
            tag => return Err(format!("unknown type tag {tag} in the descriptor")),
        })
    }

    fn def(&mut self) -> Result<Def, String> {
        let tag = self.byte()?;
        let n = self.count()?;
        Ok(match tag {
            0x20 => Def::Frozen((0..n).map(|_| self.ty(0)).collect::<Result<_, _>>()?),
            0x21 => {
                Def::Evolvable((0..n).map(|_| Ok((self.byte()? != 0, self.ty(0)?))).collect::<Result<_, String>>()?)
            }
            0x22 | 0x23 => {
                let mut variants = Vec::with_capacity(n);
                for _ in 0..n {
                    let fields = self.count()?;
                    variants.push((0..fields).map(|_| self.ty(0)).collect::<Result<_, _>>()?);
                }
                Def::Enum { open: tag == 0x23, variants }
            }
            tag => return Err(format!("unknown definition tag {tag} in the descriptor")),
        })
    }
}

impl Shape {
    /// Parses a descriptor (from a peer: any bytes at all).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Shape, String> {
        let mut r = Reader { bytes, at: 0 };
        let format = r.byte()?;
        if format != FORMAT {
            return Err(format!("descriptor format {format} is not known here (this side writes {FORMAT})"));
        }
        let kind = r.byte()?;
        let roots = [r.ty(0)?, r.ty(0)?, r.ty(0)?];
        let n = r.count()?;
        let defs = (0..n).map(|_| r.def()).collect::<Result<Vec<_>, _>>()?;
        if r.at != bytes.len() {
            return Err("the descriptor has trailing bytes".into());
        }
        let shape = Shape { kind, roots, defs };
        shape.check_refs()?;
        Ok(shape)
    }

    fn check_refs(&self) -> Result<(), String> {
        fn ok(t: &Type, n: usize) -> bool {
            match t {
                Type::Prim(_) => true,
                Type::List(e) | Type::Option(e) | Type::Array(e, _) => ok(e, n),
                Type::Map(k, v) => ok(k, n) && ok(v, n),
                Type::Def(i) => *i < n,
            }
        }
        let n = self.defs.len();
        let in_defs = self.defs.iter().all(|d| match d {
            Def::Frozen(ts) => ts.iter().all(|t| ok(t, n)),
            Def::Evolvable(fs) => fs.iter().all(|(_, t)| ok(t, n)),
            Def::Enum { variants, .. } => variants.iter().flatten().all(|t| ok(t, n)),
        });
        if in_defs && self.roots.iter().all(|t| ok(t, n)) {
            Ok(())
        } else {
            Err("a definition index is out of range".into())
        }
    }
}

/// Whether a method of this descriptor sends evolvable structs or open enums, whose encodings
/// protocol 1.2 introduced: a peer that speaks 1.1 or older would misread them. A malformed
/// descriptor counts as one that does.
pub(crate) fn needs_1_2(descriptor: &[u8]) -> bool {
    Shape::parse(descriptor)
        .map(|shape| shape.defs.iter().any(|d| matches!(d, Def::Evolvable(_) | Def::Enum { open: true, .. })))
        .unwrap_or(true)
}

/// Whether a client built with `client`'s shape and a server built with `server`'s can call the
/// method: the client writes the argument, the server reads it; the server writes the reply and
/// the error, the client reads them. The error names the first difference found.
pub(crate) fn compatible(client: &Shape, server: &Shape) -> Result<(), String> {
    if client.kind != server.kind {
        return Err(format!(
            "the method is {} on the client and {} on the server",
            kind_name(client.kind),
            kind_name(server.kind)
        ));
    }
    let mut steps = 0;
    for (i, what) in ROOTS.iter().enumerate() {
        let (writer, reader, w_side, r_side) =
            if i == 0 { (client, server, "client", "server") } else { (server, client, "server", "client") };
        let mut cmp = Compare { w: writer, r: reader, seen: HashSet::new(), w_side, r_side, depth: 0, steps };
        let compared = cmp.ty(&writer.roots[i], &reader.roots[i]);
        if cmp.steps > MAX_COMPARE_STEPS || cmp.depth > MAX_COMPARE_DEPTH {
            return Err(TOO_BIG.into());
        }
        compared.map_err(|e| format!("{what}: {e}"))?;
        steps = cmp.steps;
    }
    Ok(())
}

/// How deep a comparison follows a type into the types it holds, definitions included. The
/// descriptor's own limit ([`MAX_NESTING`]) bounds nesting within one definition, not a chain of
/// definitions each holding the next, which a peer's descriptor can make as long as its frame.
const MAX_COMPARE_DEPTH: usize = 512;

/// How many pairs of types one comparison looks at, at most: a bound on the work a peer's
/// descriptor can ask of a connection's reader (a real method's shapes take a few hundred).
const MAX_COMPARE_STEPS: usize = 1 << 18;

/// Why a comparison that went past its limits failed.
const TOO_BIG: &str = "the schemas nest too deep or are too large to compare";

fn kind_name(kind: u8) -> &'static str {
    match kind {
        0 => "unary",
        1 => "server-streaming",
        2 => "client-streaming",
        3 => "bidirectional",
        _ => "of an unknown kind",
    }
}

fn prim_name(tag: u8) -> &'static str {
    ["()", "bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "string", "bytes"]
        .get(usize::from(tag))
        .copied()
        .unwrap_or("?")
}

/// One comparison of a writer's types with a reader's.
struct Compare<'a> {
    w: &'a Shape,
    r: &'a Shape,
    /// Definition pairs being compared or already found compatible (recursive types end here).
    seen: HashSet<(usize, usize)>,
    w_side: &'static str,
    r_side: &'static str,
    /// How deep the comparison is now; past [`MAX_COMPARE_DEPTH`] once it gave up on depth.
    depth: usize,
    /// Pairs of types looked at so far, in this comparison and the ones of the method before it.
    steps: usize,
}

impl Compare<'_> {
    /// Compares a type the writer sends with the one the reader reads, within the limits.
    fn ty(&mut self, w: &Type, r: &Type) -> Result<(), String> {
        self.steps += 1;
        if self.depth >= MAX_COMPARE_DEPTH || self.steps > MAX_COMPARE_STEPS {
            // Left as it is (depth past the limit), so that `compatible` tells the real reason
            // instead of the path of fields that led here.
            self.depth = MAX_COMPARE_DEPTH + 1;
            return Err(TOO_BIG.into());
        }
        self.depth += 1;
        let compared = self.ty_within(w, r);
        if self.depth <= MAX_COMPARE_DEPTH {
            self.depth -= 1;
        }
        compared
    }

    fn ty_within(&mut self, w: &Type, r: &Type) -> Result<(), String> {
        match (w, r) {
            (Type::Prim(a), Type::Prim(b)) => {
                // u16 < u32 < u64 (tags 7..=9) and i16 < i32 < i64 (tags 3..=5) are varints: a
                // wider reader reads every value a narrower writer sends.
                let widens = (7..=9).contains(a) && (7..=9).contains(b) && b >= a
                    || (3..=5).contains(a) && (3..=5).contains(b) && b >= a;
                if a == b || widens { Ok(()) } else { Err(self.differ(prim_name(*a), prim_name(*b))) }
            }
            (Type::List(a), Type::List(b)) => self.ty(a, b).map_err(|e| format!("list element: {e}")),
            (Type::Option(a), Type::Option(b)) => self.ty(a, b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => {
                self.ty(ka, kb).map_err(|e| format!("map key: {e}"))?;
                self.ty(va, vb).map_err(|e| format!("map value: {e}"))
            }
            (Type::Array(a, n), Type::Array(b, m)) => {
                if n != m {
                    return Err(format!("an array of {n} on the {} and of {m} on the {}", self.w_side, self.r_side));
                }
                self.ty(a, b)
            }
            (Type::Def(a), Type::Def(b)) => self.def(*a, *b),
            _ => Err(self.differ(&describe(w), &describe(r))),
        }
    }

    fn differ(&self, w: &str, r: &str) -> String {
        format!("the {} sends {w}, the {} reads {r}", self.w_side, self.r_side)
    }

    fn def(&mut self, a: usize, b: usize) -> Result<(), String> {
        if !self.seen.insert((a, b)) {
            return Ok(());
        }
        let (w, r) = (self.w, self.r);
        let (Some(wd), Some(rd)) = (w.defs.get(a), r.defs.get(b)) else {
            return Err("a definition index is out of range".into());
        };
        match (wd, rd) {
            (Def::Frozen(wf), Def::Frozen(rf)) => {
                if wf.len() != rf.len() {
                    return Err(format!(
                        "a frozen struct has {} fields on the {} and {} on the {}",
                        wf.len(),
                        self.w_side,
                        rf.len(),
                        self.r_side
                    ));
                }
                for (i, (x, y)) in wf.iter().zip(rf).enumerate() {
                    self.ty(x, y).map_err(|e| format!("field {}: {e}", i + 1))?;
                }
                Ok(())
            }
            (Def::Evolvable(wf), Def::Evolvable(rf)) => {
                for (i, ((_, x), (_, y))) in wf.iter().zip(rf).enumerate() {
                    self.ty(x, y).map_err(|e| format!("field {}: {e}", i + 1))?;
                }
                if let Some(i) = rf.iter().skip(wf.len()).position(|(default, _)| !default) {
                    return Err(format!(
                        "field {} has no default on the {}, and the {} does not send it",
                        wf.len() + i + 1,
                        self.r_side,
                        self.w_side
                    ));
                }
                Ok(())
            }
            (Def::Enum { open: wo, variants: wv }, Def::Enum { open: ro, variants: rv }) => {
                if wo != ro {
                    return Err(format!(
                        "an enum is {} on the {} and {} on the {}",
                        if *wo { "open" } else { "closed" },
                        self.w_side,
                        if *ro { "open" } else { "closed" },
                        self.r_side
                    ));
                }
                if !ro && wv.len() > rv.len() {
                    return Err(format!(
                        "the {} may send variant {} of a closed enum, which the {} does not know",
                        self.w_side,
                        rv.len() + 1,
                        self.r_side
                    ));
                }
                for (i, (x, y)) in wv.iter().zip(rv).enumerate() {
                    if x.len() != y.len() {
                        return Err(format!(
                            "variant {} carries {} values on the {} and {} on the {}",
                            i + 1,
                            x.len(),
                            self.w_side,
                            y.len(),
                            self.r_side
                        ));
                    }
                    for (j, (p, q)) in x.iter().zip(y).enumerate() {
                        self.ty(p, q).map_err(|e| format!("variant {}, value {}: {e}", i + 1, j + 1))?;
                    }
                }
                Ok(())
            }
            (x, y) => Err(self.differ(def_name(x), def_name(y))),
        }
    }
}

fn def_name(d: &Def) -> &'static str {
    match d {
        Def::Frozen(_) => "a frozen struct",
        Def::Evolvable(_) => "an evolvable struct",
        Def::Enum { .. } => "an enum",
    }
}

fn describe(t: &Type) -> String {
    match t {
        Type::Prim(tag) => prim_name(*tag).to_owned(),
        Type::List(_) => "a list".into(),
        Type::Map(..) => "a map".into(),
        Type::Option(_) => "an option".into(),
        Type::Array(..) => "an array".into(),
        Type::Def(_) => "a struct or enum".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unary method taking the evolvable struct 0 and answering `string`, throwing `string`.
    fn method(def: &[u8]) -> Vec<u8> {
        let mut d = vec![FORMAT, 0, 18, 0, 12, 12, 1];
        d.extend_from_slice(def);
        d
    }

    /// A unary method whose argument is a chain of `links` evolvable structs, each holding a
    /// `u32` and an option of the next (the last only the `u32`).
    fn chain(links: usize) -> Vec<u8> {
        let mut d = vec![FORMAT, 0, 18, 0, 12, 12];
        d.extend(varint(links as u64));
        for i in 1..links {
            d.extend([0x21, 2, 0, 8, 0, 16, 18]);
            d.extend(varint(i as u64));
        }
        d.extend([0x21, 1, 0, 8]);
        d
    }

    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    /// `struct Node { v: u32, next: option<Node> = none }`, recursive.
    fn node() -> Shape {
        Shape::parse(&method(&[0x21, 2, 0, 8, 1, 16, 18, 0])).unwrap()
    }

    #[test]
    fn a_chain_of_definitions_as_long_as_a_frame_is_refused_without_exhausting_the_stack() {
        // Each link pairs a new definition of the client's with the server's one recursive
        // definition: without a limit, the comparison recursed once per link. Run on a stack the
        // size of a tokio worker's.
        let long = Shape::parse(&chain(200_000)).unwrap();
        let compared = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || (compatible(&long, &node()), compatible(&node(), &long)))
            .unwrap()
            .join()
            .expect("the comparison overflowed its stack");
        assert_eq!(compared, (Err(TOO_BIG.to_owned()), Err(TOO_BIG.to_owned())));
        // A chain within the limit is compared as ever.
        let short = Shape::parse(&chain(100)).unwrap();
        assert_eq!(compatible(&short, &node()), Ok(()));
    }

    #[test]
    fn appending_a_defaulted_field_is_compatible_both_ways() {
        let v1 = Shape::parse(&method(&[0x21, 1, 0, 9])).unwrap();
        let v2 = Shape::parse(&method(&[0x21, 2, 0, 9, 1, 12])).unwrap();
        assert_eq!(compatible(&v1, &v2), Ok(()));
        assert_eq!(compatible(&v2, &v1), Ok(()));
    }

    #[test]
    fn a_new_field_without_default_breaks_the_reader_that_expects_it() {
        let v1 = Shape::parse(&method(&[0x21, 1, 0, 9])).unwrap();
        let v2 = Shape::parse(&method(&[0x21, 2, 0, 9, 0, 12])).unwrap();
        // An old client's argument lacks field 2, which the new server requires.
        let err = compatible(&v1, &v2).unwrap_err();
        assert_eq!(err, "the argument: field 2 has no default on the server, and the client does not send it");
        // A new client sends it to an old server, which skips it.
        assert_eq!(compatible(&v2, &v1), Ok(()));
    }

    #[test]
    fn types_must_match_but_integers_may_widen() {
        let u32_ = Shape::parse(&method(&[0x21, 1, 0, 8])).unwrap();
        let u64_ = Shape::parse(&method(&[0x21, 1, 0, 9])).unwrap();
        let string = Shape::parse(&method(&[0x21, 1, 0, 12])).unwrap();
        assert_eq!(compatible(&u32_, &u64_), Ok(()));
        assert!(compatible(&u64_, &u32_).is_err());
        assert_eq!(
            compatible(&u32_, &string).unwrap_err(),
            "the argument: field 1: the client sends u32, the server reads string"
        );
    }

    #[test]
    fn closed_enums_may_not_grow_towards_an_older_reader_open_ones_may() {
        let closed2 = Shape::parse(&method(&[0x22, 2, 0, 0])).unwrap();
        let closed3 = Shape::parse(&method(&[0x22, 3, 0, 0, 1, 9])).unwrap();
        assert_eq!(compatible(&closed2, &closed3), Ok(()));
        assert!(compatible(&closed3, &closed2).unwrap_err().contains("variant 3 of a closed enum"));
        let open2 = Shape::parse(&method(&[0x23, 2, 0, 0])).unwrap();
        let open3 = Shape::parse(&method(&[0x23, 3, 0, 0, 1, 9])).unwrap();
        assert_eq!(compatible(&open3, &open2), Ok(()));
        assert!(compatible(&open2, &closed2).is_err());
    }

    #[test]
    fn recursive_definitions_terminate() {
        // struct 0 { children: list<0> }
        let tree = Shape::parse(&method(&[0x21, 1, 0, 14, 18, 0])).unwrap();
        assert_eq!(compatible(&tree, &tree), Ok(()));
    }

    #[test]
    fn malformed_descriptors_are_errors_not_panics() {
        for bytes in
            [&[][..], &[FORMAT], &[FORMAT, 0, 18, 5, 12, 12, 0], &[FORMAT, 0, 12, 12, 12, 255, 255, 255], &[2, 0]]
        {
            assert!(Shape::parse(bytes).is_err(), "{bytes:?}");
        }
        // Deeply nested lists.
        let mut deep = vec![FORMAT, 0];
        deep.extend(std::iter::repeat_n(14, 10_000));
        assert!(Shape::parse(&deep).is_err());
    }

    #[test]
    fn evolvable_structs_and_open_enums_need_1_2() {
        assert!(needs_1_2(&method(&[0x21, 1, 0, 9])));
        assert!(needs_1_2(&method(&[0x23, 1, 0])));
        assert!(!needs_1_2(&method(&[0x20, 1, 9])));
        assert!(!needs_1_2(&method(&[0x22, 1, 0])));
        assert!(!needs_1_2(&[FORMAT, 0, 12, 12, 12, 0]));
    }

    #[test]
    fn the_fingerprint_is_fnv1a() {
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
