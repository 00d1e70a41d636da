//! Services: their methods checked against the names every generated client reserves, and the
//! model of each.

use super::scope::{Scope, qualified};
use super::{Checker, streams};
use crate::ast::{self, TypeRef};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::{MethodDef, MethodKind, ServiceDef, Ty};
use crate::names::{self, ServiceNames};
use std::collections::HashMap;

impl<'a> Checker<'a> {
    pub(super) fn service_def(
        &mut self,
        s: &ast::Service,
        rust_name: &str,
        scope: &Scope,
        lists: &mut Vec<(Span, Ty)>,
    ) -> ServiceDef {
        let names = ServiceNames::new(rust_name);
        let accessor = &names.accessor;
        if names::accessor_is_reserved(accessor) {
            self.error(
                Diagnostic::error(
                    s.name.span,
                    format!("a service named `{}` cannot have a client accessor", s.name.name),
                )
                .label(format!("would add `{accessor}()` to `Client`, which already has a method of that name"))
                .help("rename the service"),
            );
        }
        let mut methods = Vec::new();
        let mut seen: HashMap<String, (String, Span)> = HashMap::new();
        for m in &s.methods {
            self.check_attributes(&m.meta.attributes, &["idempotent"]);
            let arg = m.arg.as_ref().map_or(Ty::Unit, |t| self.message(t, scope, lists));
            let reply = m.reply.as_ref().map_or(Ty::Unit, |t| self.message(t, scope, lists));
            let kind = MethodKind::new(
                m.arg.as_ref().and_then(streams::stream_items).is_some(),
                m.reply.as_ref().and_then(streams::stream_items).is_some(),
            );
            let error = m.error.as_ref().map_or(Ty::String, |t| self.resolve(t, scope, Some(lists)));
            if let Some(written) = &m.error {
                self.check_error_type(written, &error);
            }
            let Some(mname) = self.method_name(&m.name) else { continue };
            if names::method_is_reserved(&mname) {
                self.error(
                    Diagnostic::error(m.name.span, format!("a method cannot be named `{}`", m.name.name))
                        .label(format!("`{mname}` is a method of every generated client"))
                        .help(format!("the reserved method names are: {}", names::reserved_methods())),
                );
                continue;
            }
            if let Some((first, first_span)) = seen.get(&mname) {
                let message = if *first == m.name.name {
                    format!("the method `{}` is defined twice in service `{}`", m.name.name, s.name.name)
                } else {
                    format!("the methods `{first}` and `{}` would both be named `{mname}` in Rust", m.name.name)
                };
                self.error(
                    Diagnostic::error(m.name.span, message)
                        .label("defined again here")
                        .secondary(*first_span, "first defined here"),
                );
                continue;
            }
            seen.insert(mname.clone(), (m.name.name.clone(), m.name.span));
            let signature = self.signature(m);
            methods.push(MethodDef {
                name: mname,
                wire_name: m.name.name.clone(),
                docs: m.meta.docs.clone(),
                deprecated: Self::deprecated(&m.meta),
                kind,
                arg,
                reply,
                error,
                signature,
                span: m.name.span,
                idempotent: m.meta.attributes.iter().any(|a| a.name.name == "idempotent"),
            });
        }
        ServiceDef { names, wire_name: qualified(&scope.package.join("."), &s.name.name), methods }
    }

    /// A method's argument or reply type resolved, or for a stream (`stream T`) its item type,
    /// recorded for `check_stream_items`.
    fn message(&mut self, ty: &TypeRef, scope: &Scope, lists: &mut Vec<(Span, Ty)>) -> Ty {
        match streams::stream_items(ty) {
            None => self.resolve(ty, scope, Some(lists)),
            Some(items) => {
                let resolved = self.resolve(items, scope, Some(lists));
                // A stream of streams is reported already.
                if streams::stream_items(items).is_none() {
                    self.stream_items.push((items.span(), resolved.clone()));
                }
                resolved
            }
        }
    }

    /// The method's declaration as written, whitespace normalised: `echo(string) -> string`.
    fn signature(&self, m: &ast::Method) -> String {
        let text = |t: &TypeRef| {
            let span = t.span();
            self.sources.text(span.file)[span.start..span.end].split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let mut out = format!("{}({})", m.name.name, m.arg.as_ref().map(text).unwrap_or_default());
        if let Some(reply) = &m.reply {
            out.push_str(" -> ");
            out.push_str(&text(reply));
        }
        if let Some(error) = &m.error {
            out.push_str(" throws ");
            out.push_str(&text(error));
        }
        out
    }
}
