//! Structs and enums, old against new: fields and variants paired by position (their wire
//! identity), with names telling renames from moves.

use super::align::{Step, align};
use super::change::{Change, Use};
use super::types::compatible_variants;
use super::walk::{Site, Walk};
use crate::diagnostic::Span;
use crate::model::{Decl, EnumDef, FieldDef, Shape, StructDef, VariantDef};

/// What holds fields: a struct or a struct-like variant.
struct Owner {
    /// "struct `User`", "variant `Rect` of enum `Shape`".
    what: String,
    subject: String,
    old: Span,
    new: Span,
    /// Why its fields can never change, if they cannot.
    fixed: Option<&'static str>,
}

const FROZEN: &str = "a frozen struct has no length prefix, so its fields can never change";
const VARIANT: &str = "a variant's fields have no length prefix, so they can never change";
const POSITIONS: &str = "positions are the wire identity, not names";

impl Walk<'_, '_> {
    pub(super) fn structs(&mut self, od: &Decl, os: &StructDef, nd: &Decl, ns: &StructDef, use_: &Use) {
        let (name, ospan, nspan) = self.decl_spans(od, nd);
        let subject = format!("`{name}`");
        if os.frozen != ns.frozen {
            let how = if ns.frozen { "became frozen" } else { "is no longer frozen" };
            let label = |frozen: bool| if frozen { "frozen" } else { "evolvable" };
            self.record(
                Change::reads(format!("struct `{name}` {how}"), &subject, false, false, use_)
                    .at_old(ospan, label(os.frozen))
                    .at_new(nspan, label(ns.frozen))
                    .reason("frozen and evolvable structs are encoded differently (an evolvable one starts with its length)"),
            );
            return;
        }
        let fixed = ns.frozen.then_some(FROZEN);
        let what = if ns.frozen { format!("frozen struct `{name}`") } else { format!("struct `{name}`") };
        let owner = Owner { what, subject, old: ospan, new: nspan, fixed };
        self.fields(&owner, &os.fields, &ns.fields, use_);
    }

    fn fields(&mut self, owner: &Owner, of: &[FieldDef], nf: &[FieldDef], use_: &Use) {
        let names = |fields: &[FieldDef]| -> Vec<String> { fields.iter().map(|f| f.tidl_name.clone()).collect() };
        let (on, nn) = (names(of), names(nf));
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let nn: Vec<&str> = nn.iter().map(String::as_str).collect();
        let (what, subject) = (&owner.what, owner.subject.as_str());
        let span = |w: &Self, old: bool, f: &FieldDef| if old { w.old.span(f.span) } else { w.new.span(f.span) };
        for step in align(&on, &nn) {
            let change = match step {
                Step::Same(i) => {
                    self.same_field(owner, &of[i], &nf[i], use_);
                    continue;
                }
                Step::Moved(i, j) => {
                    let swap = if of[i].ty == nf[j].ty {
                        "its values would silently be read as another field's"
                    } else {
                        "its values would be read as another field's"
                    };
                    Change::reads(
                        format!("field `{}` of {what} moved from position {} to position {}", on[i], i + 1, j + 1),
                        subject,
                        false,
                        false,
                        use_,
                    )
                    .at_old(span(self, true, &of[i]), format!("position {}", i + 1))
                    .at_new(span(self, false, &nf[j]), format!("position {}", j + 1))
                    .reason(format!("{POSITIONS}: {swap}"))
                }
                Step::Replaced(i) => {
                    Change::reads(format!("field `{}` was removed from {what}", on[i]), subject, false, false, use_)
                        .at_old(span(self, true, &of[i]), "removed")
                        .at_new(span(self, false, &nf[i]), "another field took its position")
                        .reason(POSITIONS)
                }
                Step::Took(j) => Change::reads(
                    format!("field `{}` was added to {what} at position {}, where another field was", nn[j], j + 1),
                    subject,
                    false,
                    false,
                    use_,
                )
                .at_old(span(self, true, &of[j]), "moved away")
                .at_new(span(self, false, &nf[j]), "added")
                .reason(POSITIONS),
                Step::RemovedMiddle(i) => Change::reads(
                    format!("field `{}` was removed from the middle of {what}", on[i]),
                    subject,
                    false,
                    false,
                    use_,
                )
                .at_old(span(self, true, &of[i]), "removed")
                .at_new(owner.new, "")
                .reason(format!("{POSITIONS}: the fields after it move up one position")),
                Step::InsertedMiddle(j) => Change::reads(
                    format!("field `{}` was inserted into the middle of {what}", nn[j]),
                    subject,
                    false,
                    false,
                    use_,
                )
                .at_old(owner.old, "")
                .at_new(span(self, false, &nf[j]), "inserted")
                .reason(format!("{POSITIONS}: the fields after it move down one position")),
                Step::Removed(i) => {
                    let has_default = of[i].default.is_some();
                    let change = Change::reads(
                        format!("field `{}` was removed from {what}", on[i]),
                        subject,
                        true,
                        has_default,
                        use_,
                    )
                    .at_old(span(self, true, &of[i]), "removed")
                    .at_new(owner.new, "");
                    match owner.fixed {
                        Some(fixed) => change.reads_as(false, false).reason(fixed),
                        None if !has_default => change.reason("old readers need it: it has no default"),
                        None => change,
                    }
                }
                Step::Added(j) => {
                    let has_default = nf[j].default.is_some();
                    let without = if has_default || owner.fixed.is_some() { "" } else { " without a default" };
                    let change = Change::reads(
                        format!("field `{}` was added to {what}{without}", nn[j]),
                        subject,
                        has_default,
                        true,
                        use_,
                    )
                    .at_old(owner.old, "")
                    .at_new(span(self, false, &nf[j]), "added");
                    match owner.fixed {
                        Some(fixed) => change.reads_as(false, false).reason(fixed),
                        None => change,
                    }
                }
            };
            self.record(change);
        }
    }

    /// Two fields at the same position: renamed, type changed, default changed.
    fn same_field(&mut self, owner: &Owner, o: &FieldDef, n: &FieldDef, use_: &Use) {
        let (ospan, nspan) = (self.old.span(o.span), self.new.span(n.span));
        let (what, subject) = (&owner.what, owner.subject.as_str());
        if o.tidl_name != n.tidl_name {
            self.record(
                Change::reads(
                    format!("field `{}` of {what} was renamed to `{}`", o.tidl_name, n.tidl_name),
                    subject,
                    true,
                    true,
                    use_,
                )
                .at_old(ospan, "old name")
                .at_new(nspan, "new name")
                .warning()
                .reason("names are not on the wire: only code that uses the field must change"),
            );
        }
        let site = Site {
            what: format!("field `{}` of {what}", n.tidl_name),
            subject: subject.to_owned(),
            old: ospan,
            new: nspan,
            old_ty: self.old.show(&o.ty),
            new_ty: self.new.show(&n.ty),
        };
        self.ty(&o.ty, &n.ty, use_, &site);
        let change = match (&o.default, &n.default) {
            (Some(a), Some(b)) if a != b => Change::reads(
                format!("the default of field `{}` of {what} changed from {a} to {b}", n.tidl_name),
                subject,
                true,
                true,
                use_,
            )
            .reason("old and new readers fill in different values when a writer does not send the field"),
            (Some(a), None) => Change::reads(
                format!("field `{}` of {what} no longer has a default (it was {a})", n.tidl_name),
                subject,
                true,
                true,
                use_,
            )
            .reason("new readers fail on writers older than the field"),
            _ => return,
        };
        self.record(change.at_old(ospan, "before").at_new(nspan, "now").warning());
    }

    pub(super) fn enums(&mut self, od: &Decl, oe: &EnumDef, nd: &Decl, ne: &EnumDef, use_: &Use) {
        let (name, ospan, nspan) = self.decl_spans(od, nd);
        let subject = format!("`{name}`");
        if oe.open != ne.open {
            let how = if ne.open { "became open" } else { "is no longer open" };
            let label = |open: bool| if open { "open" } else { "closed" };
            self.record(
                Change::reads(format!("enum `{name}` {how}"), &subject, false, false, use_)
                    .at_old(ospan, label(oe.open))
                    .at_new(nspan, label(ne.open))
                    .reason("open and closed enums are encoded differently (an open enum's payloads start with their length)"),
            );
            return;
        }
        let on: Vec<&str> = oe.variants.iter().map(|v| v.name.as_str()).collect();
        let nn: Vec<&str> = ne.variants.iter().map(|v| v.name.as_str()).collect();
        let kind = if ne.open { "open" } else { "closed" };
        let (ov, nv) = (&oe.variants, &ne.variants);
        let indexes = "indexes are the wire identity, not names";
        for step in align(&on, &nn) {
            let (o, n) = (|i: usize| self.old.span(ov[i].span), |j: usize| self.new.span(nv[j].span));
            let change = match step {
                Step::Same(i) => {
                    self.same_variant(&name, &ov[i], &nv[i], use_);
                    continue;
                }
                Step::Moved(i, j) => Change::reads(
                    format!("variant `{}` of enum `{name}` moved from position {} to position {}", on[i], i + 1, j + 1),
                    &subject,
                    false,
                    false,
                    use_,
                )
                .at_old(o(i), format!("position {}", i + 1))
                .at_new(n(j), format!("position {}", j + 1))
                .reason(indexes),
                Step::Replaced(i) => Change::reads(
                    format!("variant `{}` was removed from enum `{name}`", on[i]),
                    &subject,
                    false,
                    false,
                    use_,
                )
                .at_old(o(i), "removed")
                .at_new(n(i), "another variant took its index")
                .reason(indexes),
                Step::Took(j) => Change::reads(
                    format!(
                        "variant `{}` was added to enum `{name}` at position {}, where another variant was",
                        nn[j],
                        j + 1
                    ),
                    &subject,
                    false,
                    false,
                    use_,
                )
                .at_old(o(j), "moved away")
                .at_new(n(j), "added")
                .reason(indexes),
                Step::RemovedMiddle(i) => Change::reads(
                    format!("variant `{}` was removed from the middle of enum `{name}`", on[i]),
                    &subject,
                    false,
                    false,
                    use_,
                )
                .at_old(o(i), "removed")
                .at_new(nspan, "")
                .reason(format!("{indexes}: the variants after it change index")),
                Step::InsertedMiddle(j) => Change::reads(
                    format!("variant `{}` was inserted into the middle of enum `{name}`", nn[j]),
                    &subject,
                    false,
                    false,
                    use_,
                )
                .at_old(ospan, "")
                .at_new(n(j), "inserted")
                .reason(format!("{indexes}: the variants after it change index")),
                Step::Removed(i) => {
                    let change = Change::reads(
                        format!("variant `{}` was removed from {kind} enum `{name}`", on[i]),
                        &subject,
                        true,
                        true,
                        use_,
                    )
                    .at_old(o(i), "removed")
                    .at_new(nspan, "");
                    if ne.open {
                        change.warning().reason(format!("new readers see it as `Unknown({i})`"))
                    } else {
                        change
                            .reads_as(false, true)
                            .reason("readers of a closed enum fail on a variant they do not know")
                    }
                }
                Step::Added(j) => {
                    let change = Change::reads(
                        format!("variant `{}` was added to {kind} enum `{name}`", nn[j]),
                        &subject,
                        true,
                        true,
                        use_,
                    )
                    .at_old(ospan, "")
                    .at_new(n(j), "added");
                    if ne.open {
                        change.warning().reason(format!("old readers see it as `Unknown({j})`"))
                    } else {
                        change
                            .reads_as(true, false)
                            .reason("readers of a closed enum fail on a variant they do not know")
                    }
                }
            };
            self.record(change);
        }
    }

    /// Two variants at the same index: renamed, payload changed.
    fn same_variant(&mut self, enum_name: &str, o: &VariantDef, n: &VariantDef, use_: &Use) {
        let (ospan, nspan) = (self.old.span(o.span), self.new.span(n.span));
        let subject = format!("`{enum_name}`");
        if o.name != n.name {
            self.record(
                Change::reads(
                    format!("variant `{}` of enum `{enum_name}` was renamed to `{}`", o.name, n.name),
                    &subject,
                    true,
                    true,
                    use_,
                )
                .at_old(ospan, "old name")
                .at_new(nspan, "new name")
                .warning()
                .reason("names are not on the wire: only code that uses the variant must change"),
            );
        }
        let what = format!("variant `{}` of enum `{enum_name}`", n.name);
        match (&o.shape, &n.shape) {
            (Shape::Unit, Shape::Unit) => {}
            (Shape::Tuple(a), Shape::Tuple(b)) if a.len() == b.len() => {
                for (k, (a, b)) in a.iter().zip(b).enumerate() {
                    let site = Site {
                        what: format!("value {} of {what}", k + 1),
                        subject: subject.clone(),
                        old: ospan,
                        new: nspan,
                        old_ty: self.old.show(a),
                        new_ty: self.new.show(b),
                    };
                    self.ty(a, b, use_, &site);
                }
            }
            (Shape::Struct(a), Shape::Struct(b)) => {
                let owner = Owner { what, subject, old: ospan, new: nspan, fixed: Some(VARIANT) };
                self.fields(&owner, a, b, use_);
            }
            _ => {
                let old_to_new = compatible_variants(self.old, o, self.new, n);
                let new_to_old = compatible_variants(self.new, n, self.old, o);
                let (was, now) = (self.shape(true, &o.shape), self.shape(false, &n.shape));
                self.record(
                    Change::reads(
                        format!("the payload of {what} changed from {was} to {now}"),
                        &subject,
                        old_to_new,
                        new_to_old,
                        use_,
                    )
                    .at_old(ospan, format!("was {was}"))
                    .at_new(nspan, format!("now {now}")),
                );
            }
        }
    }

    /// A variant's payload as written: "no payload", "`(f64, f64)`", "`{ x: i32 }`".
    fn shape(&self, old: bool, shape: &Shape) -> String {
        let side = if old { self.old } else { self.new };
        match shape {
            Shape::Unit => "no payload".into(),
            Shape::Tuple(types) => format!("`({})`", types.iter().map(|t| side.show(t)).collect::<Vec<_>>().join(", ")),
            Shape::Struct(fields) => {
                let fields: Vec<String> =
                    fields.iter().map(|f| format!("{}: {}", f.tidl_name, side.show(&f.ty))).collect();
                format!("`{{ {} }}`", fields.join(", "))
            }
        }
    }
}
