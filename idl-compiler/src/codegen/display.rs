//! `Display` for the structs and enums thrown as errors, so `tidl_runtime::Error<T>` is a
//! `std::error::Error` and says something readable.

use super::ident;
use crate::model::{EnumDef, Shape, StructDef};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// `Display` for types used as a method's error, so `tidl_runtime::Error<T>` is a
/// `std::error::Error`: the first line of the variant's (or struct's) doc comment, or its name in
/// words, then the data it carries: `denied (reason: "classified")`.
pub(super) fn display_impl(name: &Ident, body: &TokenStream, allow: &TokenStream) -> TokenStream {
    quote! {
        #allow
        impl ::core::fmt::Display for #name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #body
            }
        }
    }
}

/// What an error says about itself: its doc comment's first line (without a final `.`), or
/// `rust_name` in words.
fn description(docs: &[String], rust_name: &str) -> String {
    let first = docs.iter().map(|l| l.trim()).find(|l| !l.is_empty());
    match first {
        Some(line) => line.strip_suffix('.').unwrap_or(line).to_owned(),
        None => crate::names::words(rust_name),
    }
}

/// Writes `description`, then the values bound to `v0`, `v1`, ... labelled with `labels` (none
/// for a tuple's values) in parentheses.
fn display_values(description: &str, labels: &[Option<&str>]) -> TokenStream {
    let escaped = description.replace('{', "{{").replace('}', "}}");
    if labels.is_empty() {
        return quote! { f.write_str(#description) };
    }
    let values: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| match label {
            Some(label) => format!("{label}: {{v{i}:?}}"),
            None => format!("{{v{i}:?}}"),
        })
        .collect();
    let format = format!("{escaped} ({})", values.join(", "));
    quote! { ::core::write!(f, #format) }
}

/// The bindings `v0`, `v1`, ... for `n` values.
fn bindings(n: usize) -> Vec<Ident> {
    (0..n).map(|i| Ident::new(&format!("v{i}"), Span::call_site())).collect()
}

/// The body of a struct's `Display`.
pub(super) fn struct_display(s: &StructDef, docs: &[String]) -> TokenStream {
    let names = s.fields.iter().map(|f| ident(&f.name));
    let values = bindings(s.fields.len());
    let labels: Vec<Option<&str>> = s.fields.iter().map(|f| Some(f.tidl_name.as_str())).collect();
    let write = display_values(&description(docs, &s.name), &labels);
    if s.fields.is_empty() {
        return write;
    }
    quote! {
        let Self { #(#names: #values),* } = self;
        #write
    }
}

/// The body of an enum's `Display`.
pub(super) fn enum_display(e: &EnumDef) -> TokenStream {
    let arms = e.variants.iter().map(|v| {
        let vname = ident(&v.name);
        let description = description(&v.docs, &v.name);
        match &v.shape {
            Shape::Unit => {
                let write = display_values(&description, &[]);
                quote! { Self::#vname => #write, }
            }
            Shape::Tuple(types) => {
                let values = bindings(types.len());
                let write = display_values(&description, &vec![None; types.len()]);
                quote! { Self::#vname(#(#values),*) => #write, }
            }
            Shape::Struct(fields) => {
                let names = fields.iter().map(|f| ident(&f.name));
                let values = bindings(fields.len());
                let labels: Vec<Option<&str>> = fields.iter().map(|f| Some(f.tidl_name.as_str())).collect();
                let write = display_values(&description, &labels);
                quote! { Self::#vname { #(#names: #values),* } => #write, }
            }
        }
    });
    if e.variants.is_empty() && !e.open {
        // An enum without variants has no values.
        return quote! { match *self {} };
    }
    let unknown = e.open.then(|| {
        quote! { Self::Unknown(index) => ::core::write!(f, "an error this side does not know (variant {index})"), }
    });
    quote! {
        match self {
            #(#arms)*
            #unknown
        }
    }
}
