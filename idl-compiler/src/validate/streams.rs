//! Streams: `stream T` may only stand at the top of a method's argument or reply, its items are
//! no streams themselves, and they take up space on the wire.
//!
//! The grammar accepts `stream T` wherever a type may be written, so that a misplaced one gets an
//! error saying where streams belong rather than a syntax error. This pass walks the syntax tree
//! and reports every misplaced `stream`; resolution then reads `stream T` as `T` (the methods'
//! own streams are taken off before resolving, in `services.rs`).

use super::Checker;
use crate::ast::{self, Item, TypeRef, VariantShape};
use crate::diagnostic::Diagnostic;
use crate::model::Ty;
use std::collections::{HashMap, HashSet};

/// Where a type is written, for the label of a misplaced `stream`.
#[derive(Debug, Clone, Copy)]
enum Place {
    Field,
    VariantField,
    Alias,
    Error,
    ListElement,
    MapKey,
    MapValue,
    OptionValue,
    TypeArgument,
    ArrayElement,
}

impl Place {
    fn label(self) -> &'static str {
        match self {
            Place::Field => "a field cannot be a stream",
            Place::VariantField => "an enum variant cannot hold a stream",
            Place::Alias => "a type alias cannot stand for a stream",
            Place::Error => "a method's error cannot be a stream",
            Place::ListElement => "the elements of a `list` cannot be streams",
            Place::MapKey => "the keys of a `map` cannot be streams",
            Place::MapValue => "the values of a `map` cannot be streams",
            Place::OptionValue => "an `option` cannot hold a stream",
            Place::TypeArgument => "a type argument cannot be a stream",
            Place::ArrayElement => "the elements of an array cannot be streams",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Place::Alias => {
                "write `stream` in the method itself (`rpc watch(Filter) -> stream Event;`); an alias may name \
                 the item type"
            }
            _ => {
                "a method streams its argument (`rpc upload(stream Chunk);`) or its reply \
                 (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`"
            }
        }
    }
}

impl Checker<'_> {
    /// Reports every `stream` of `file` that is not at the top of a method's argument or reply,
    /// and every stream of streams.
    pub(super) fn check_stream_places(&mut self, file: &ast::File) {
        for item in &file.items {
            match item {
                Item::Struct(s) => {
                    for f in &s.fields {
                        self.no_stream(&f.ty, Place::Field);
                    }
                }
                Item::Enum(e) => {
                    for v in &e.variants {
                        match &v.shape {
                            VariantShape::Unit => {}
                            VariantShape::Tuple(types) => {
                                types.iter().for_each(|t| self.no_stream(t, Place::VariantField));
                            }
                            VariantShape::Struct(fields) => {
                                fields.iter().for_each(|f| self.no_stream(&f.ty, Place::VariantField));
                            }
                        }
                    }
                }
                Item::Alias(a) => self.no_stream(&a.ty, Place::Alias),
                Item::Service(s) => {
                    for m in &s.methods {
                        for t in [&m.arg, &m.reply].into_iter().flatten() {
                            self.method_stream(t);
                        }
                        if let Some(error) = &m.error {
                            self.no_stream(error, Place::Error);
                        }
                    }
                }
            }
        }
    }

    /// A method's argument or reply: `stream T` is allowed here, but not `stream stream T`.
    fn method_stream(&mut self, ty: &TypeRef) {
        let TypeRef::Stream { inner, .. } = ty else {
            return self.inside(ty);
        };
        if let TypeRef::Stream { span, .. } = &**inner {
            self.error(
                Diagnostic::error(*span, "a stream's items cannot be streams")
                    .label("a stream of streams")
                    .help("write `stream` once; to send items in groups, stream a `list<T>`"),
            );
            return;
        }
        self.inside(inner);
    }

    /// Checks that `ty`, written at `place`, is no stream and has none inside.
    fn no_stream(&mut self, ty: &TypeRef, place: Place) {
        if let TypeRef::Stream { span, .. } = ty {
            self.error(
                Diagnostic::error(*span, "`stream` may only start a method's argument or reply")
                    .label(place.label())
                    .help(place.help()),
            );
            return;
        }
        self.inside(ty);
    }

    /// Checks the types inside `ty` (its type arguments or array element).
    fn inside(&mut self, ty: &TypeRef) {
        match ty {
            TypeRef::Unit(_) => {}
            TypeRef::Stream { .. } => self.no_stream(ty, Place::TypeArgument),
            TypeRef::Array { element, .. } => self.no_stream(element, Place::ArrayElement),
            TypeRef::Named { path, args, .. } => {
                let builtin = path.len() == 1;
                let name = path.last().map_or("", |i| i.name.as_str());
                for (i, arg) in args.iter().enumerate() {
                    let place = match (builtin, name, i) {
                        (true, "list", 0) => Place::ListElement,
                        (true, "map", 0) => Place::MapKey,
                        (true, "map", 1) => Place::MapValue,
                        (true, "option", 0) => Place::OptionValue,
                        _ => Place::TypeArgument,
                    };
                    self.no_stream(arg, place);
                }
            }
        }
    }

    /// Stream items that encode to zero bytes are rejected: such an item tells the receiver
    /// nothing but that it arrived. (Allowing them later breaks no schema.)
    pub(super) fn check_stream_items(&mut self, zero_sized: &HashSet<String>, aliases: &HashMap<String, Ty>) {
        for (span, item) in std::mem::take(&mut self.stream_items) {
            if super::recursion::encodes_to_nothing(&item, zero_sized, aliases) {
                self.error(
                    Diagnostic::error(span, "stream items must take up space on the wire")
                        .label("this type encodes to zero bytes")
                        .help(
                            "an item that encodes to nothing carries no information but its arrival; \
                             stream a type with a value, such as a `u64` count",
                        ),
                );
            }
        }
    }
}

/// The items of a method's argument or reply, if it is a stream: `stream T` gives `T`.
pub(super) fn stream_items(ty: &TypeRef) -> Option<&TypeRef> {
    match ty {
        TypeRef::Stream { inner, .. } => Some(inner),
        _ => None,
    }
}
