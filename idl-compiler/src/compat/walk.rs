//! The walk: services by wire name, methods by name, then each method's types, old against
//! new, structurally (structs and enums are paired by where they are used, not by name).

use super::Verdict;
use super::change::{Change, Flow, Use};
use super::types::{Resolved, Side, compatible, decl_name};
use crate::diagnostic::Span;
use crate::model::{Decl, DeclKind, MethodDef, MethodKind, ServiceDef, Ty};
use std::collections::HashSet;

/// Where a change of type that is not inside a struct or enum pairing is reported.
pub(super) struct Site {
    /// "field `age` of struct `User`", "the reply of `Users.get`".
    pub(super) what: String,
    /// What is read, for the explanation.
    pub(super) subject: String,
    pub(super) old: Span,
    pub(super) new: Span,
    /// The whole types at the site, as written.
    pub(super) old_ty: String,
    pub(super) new_ty: String,
}

/// The walk's state: the two versions and the changes found so far.
pub(super) struct Walk<'s, 'a> {
    pub(super) old: &'s Side<'a>,
    pub(super) new: &'s Side<'a>,
    changes: Vec<Change>,
    /// Pairs of declarations already walked for the current use (recursive types end here).
    visited: HashSet<(*const Decl, *const Decl)>,
}

/// Every change between the two versions, each once, with all its uses.
pub(super) fn walk(old: &Side<'_>, new: &Side<'_>) -> Vec<Change> {
    let mut walk = Walk { old, new, changes: Vec::new(), visited: HashSet::new() };
    walk.services();
    walk.changes
}

fn services<'a>(side: &Side<'a>) -> Vec<(&'a Decl, &'a ServiceDef)> {
    let decls = side.model.decls.iter();
    decls.filter_map(|d| if let DeclKind::Service(s) = &d.kind { Some((d, s)) } else { None }).collect()
}

fn kind_name(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Unary => "unary",
        MethodKind::ServerStreaming => "server streaming",
        MethodKind::ClientStreaming => "client streaming",
        MethodKind::Bidi => "bidirectional streaming",
    }
}

impl Walk<'_, '_> {
    /// Records a change, or adds its uses to the same change found before.
    pub(super) fn record(&mut self, change: Change) {
        if let Some(existing) = self.changes.iter_mut().find(|c| c.same(&change)) {
            for u in change.uses {
                if !existing.uses.contains(&u) {
                    existing.uses.push(u);
                }
            }
        } else {
            self.changes.push(change);
        }
    }

    fn services(&mut self) {
        let (old, new) = (services(self.old), services(self.new));
        for (od, os) in &old {
            let ospan = self.old.span(od.span);
            match new.iter().find(|(_, ns)| ns.wire_name == os.wire_name) {
                Some((_, ns)) => self.methods(os, ns),
                None => self.record(
                    Change::fixed(
                        format!("service `{}` was removed", os.wire_name),
                        Verdict::ClientsFirst,
                        "old clients calling its methods get `Unimplemented` from new servers".into(),
                    )
                    .at_old(ospan, "removed"),
                ),
            }
        }
        for (nd, ns) in &new {
            if !old.iter().any(|(_, os)| os.wire_name == ns.wire_name) {
                self.record(
                    Change::fixed(
                        format!("service `{}` was added", ns.wire_name),
                        Verdict::ServersFirst,
                        "new clients calling its methods get `Unimplemented` from old servers".into(),
                    )
                    .at_new(self.new.span(nd.span), "added"),
                );
            }
        }
    }

    fn methods(&mut self, os: &ServiceDef, ns: &ServiceDef) {
        for om in &os.methods {
            let name = format!("{}.{}", ns.wire_name, om.wire_name);
            match ns.methods.iter().find(|nm| nm.wire_name == om.wire_name) {
                Some(nm) => self.method(&name, om, nm),
                None => self.record(
                    Change::fixed(
                        format!("method `{name}` was removed"),
                        Verdict::ClientsFirst,
                        format!("old clients calling `{name}` get `Unimplemented` from new servers"),
                    )
                    .at_old(self.old.span(om.span), "removed"),
                ),
            }
        }
        for nm in &ns.methods {
            if !os.methods.iter().any(|om| om.wire_name == nm.wire_name) {
                let name = format!("{}.{}", ns.wire_name, nm.wire_name);
                self.record(
                    Change::fixed(
                        format!("method `{name}` was added"),
                        Verdict::ServersFirst,
                        format!("new clients calling `{name}` get `Unimplemented` from old servers"),
                    )
                    .at_new(self.new.span(nm.span), "added"),
                );
            }
        }
    }

    fn method(&mut self, name: &str, om: &MethodDef, nm: &MethodDef) {
        let (ospan, nspan) = (self.old.span(om.span), self.new.span(nm.span));
        if om.kind != nm.kind {
            let (was, now) = (kind_name(om.kind), kind_name(nm.kind));
            self.record(
                Change::fixed(
                    format!("method `{name}` changed from {was} to {now}"),
                    Verdict::Breaking,
                    "clients and servers of the two versions disagree on how many messages flow each way".into(),
                )
                .at_old(ospan, was)
                .at_new(nspan, now),
            );
            return;
        }
        let client_stream = matches!(nm.kind, MethodKind::ClientStreaming | MethodKind::Bidi);
        let server_stream = matches!(nm.kind, MethodKind::ServerStreaming | MethodKind::Bidi);
        let parts = [
            (if client_stream { "client stream items" } else { "argument" }, Flow::Request, &om.arg, &nm.arg),
            (if server_stream { "server stream items" } else { "reply" }, Flow::Response, &om.reply, &nm.reply),
            ("error", Flow::Response, &om.error, &nm.error),
        ];
        for (role, flow, o, n) in parts {
            let what = format!("the {role} of `{name}`");
            let site = Site {
                what: what.clone(),
                subject: "it".into(),
                old: ospan,
                new: nspan,
                old_ty: self.old.show(o),
                new_ty: self.new.show(n),
            };
            self.visited.clear();
            self.ty(o, n, &Use { flow, what }, &site);
        }
    }

    /// Compares the types `o` and `n` found at `site` through `use_`.
    pub(super) fn ty(&mut self, o: &Ty, n: &Ty, use_: &Use, site: &Site) {
        match (self.old.resolve(o), self.new.resolve(n)) {
            (Resolved::Struct(od, os), Resolved::Struct(nd, ns)) => {
                if self.visited.insert((od, nd)) {
                    self.structs(od, os, nd, ns, use_);
                }
            }
            (Resolved::Enum(od, oe), Resolved::Enum(nd, ne)) => {
                if self.visited.insert((od, nd)) {
                    self.enums(od, oe, nd, ne, use_);
                }
            }
            (Resolved::Other(a), Resolved::Other(b)) => match (a, b) {
                (Ty::List(a), Ty::List(b)) | (Ty::Option(a), Ty::Option(b)) => self.ty(a, b, use_, site),
                (Ty::Map(ak, av), Ty::Map(bk, bv)) => {
                    self.ty(ak, bk, use_, site);
                    self.ty(av, bv, use_, site);
                }
                (Ty::Array(a, an), Ty::Array(b, bn)) if an == bn => self.ty(a, b, use_, site),
                _ if a == b => {}
                _ => self.type_changed(o, n, use_, site),
            },
            _ => self.type_changed(o, n, use_, site),
        }
    }

    fn type_changed(&mut self, o: &Ty, n: &Ty, use_: &Use, site: &Site) {
        let old_to_new = compatible(self.old, o, self.new, n);
        let new_to_old = compatible(self.new, n, self.old, o);
        let message = format!("{} changed type from `{}` to `{}`", site.what, site.old_ty, site.new_ty);
        let mut change = Change::reads(message, &site.subject, old_to_new, new_to_old, use_)
            .at_old(site.old, format!("was `{}`", site.old_ty))
            .at_new(site.new, format!("now `{}`", site.new_ty));
        let (o, n) = (self.old.show(o), self.new.show(n));
        let inner = o != site.old_ty || n != site.new_ty;
        change.reason = match (old_to_new, new_to_old) {
            (true, false) => Some(format!("`{n}` reads every `{o}`, but not the other way round")),
            (false, true) => Some(format!("`{o}` reads every `{n}`, but not the other way round")),
            (false, false) if inner => Some(format!("`{o}` became `{n}`, which is encoded differently")),
            (false, false) => Some("the two types are encoded differently".into()),
            _ => None,
        };
        self.record(change);
    }

    /// The name of a struct or enum declaration as written, and its spans in both versions.
    pub(super) fn decl_spans(&self, od: &Decl, nd: &Decl) -> (String, Span, Span) {
        (decl_name(nd).to_owned(), self.old.span(od.span), self.new.span(nd.span))
    }
}
