//! The serde impls of evolvable structs and `@open` enums, written through
//! `tidl_runtime::__evolve` (frozen structs and closed enums derive theirs).

use super::{ident, ty};
use crate::model::{EnumDef, FieldDef, Literal, Shape, StructDef, Ty};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// `serde` supports tuples of at most this many elements.
const MAX_TUPLE: usize = 16;

/// A tuple of `values` that serializes as the values one after another: nested in tuples of at
/// most 16 (bincode writes a tuple as its elements, so nesting changes nothing on the wire).
fn flat_tuple(values: &[TokenStream]) -> TokenStream {
    if values.len() <= MAX_TUPLE {
        return quote! { (#(#values,)*) };
    }
    let chunks: Vec<TokenStream> = values.chunks(MAX_TUPLE).map(flat_tuple).collect();
    flat_tuple(&chunks)
}

/// The impls of an evolvable struct.
pub(super) fn struct_impls(s: &StructDef, from: &[String], allow: &TokenStream) -> TokenStream {
    let name = ident(&s.name);
    let wire_name = &s.name;
    let refs: Vec<TokenStream> = s
        .fields
        .iter()
        .map(|f| {
            let f = ident(&f.name);
            quote! { &self.#f }
        })
        .collect();
    let tuple = flat_tuple(&refs);
    let reads = s.fields.iter().map(|f| {
        let fname = ident(&f.name);
        let read = read_field(f, from);
        quote! { #fname: #read }
    });
    quote! {
        #allow
        impl ::tidl_runtime::serde::Serialize for #name {
            fn serialize<S: ::tidl_runtime::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                ::tidl_runtime::__evolve::serialize_struct(serializer, &#tuple)
            }
        }

        #allow
        #[allow(clippy::unnecessary_cast)]
        impl<'de> ::tidl_runtime::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::tidl_runtime::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                ::tidl_runtime::__evolve::deserialize_struct(deserializer, #wire_name, |fields| {
                    ::core::result::Result::Ok(#name { #(#reads,)* })
                })
            }
        }
    }
}

/// Reading one field: with its default, or failing if the writer did not send it.
fn read_field(f: &FieldDef, from: &[String]) -> TokenStream {
    let t = ty(&f.ty, from);
    let default = match &f.default {
        None => {
            let tidl_name = &f.tidl_name;
            return quote! { fields.next(#tidl_name)? };
        }
        Some(Literal::None) => quote! { ::core::option::Option::None },
        Some(Literal::Integer(n)) => {
            let n = proc_macro2::Literal::i128_unsuffixed(n.unwrap_or_default());
            quote! { #n as #t }
        }
        Some(Literal::Float(text)) => {
            let n: TokenStream = text.parse().unwrap_or_else(|_| quote! { 0.0 });
            quote! { #n as #t }
        }
        Some(Literal::String(s)) => quote! { ::std::string::String::from(#s) },
        Some(Literal::Bool(b)) => quote! { #b },
        Some(Literal::EmptyList | Literal::EmptyMap) => {
            return quote! { fields.next_or(::core::default::Default::default)? };
        }
    };
    quote! { fields.next_or(|| #default)? }
}

/// The extra variant of an `@open` enum.
pub(super) fn unknown_variant() -> TokenStream {
    quote! {
        /// A variant this side's schema does not know (a newer peer sent it), by its index.
        /// Sending it back sends that index without a payload.
        Unknown(u32)
    }
}

/// The impls of an `@open` enum.
pub(super) fn enum_impls(e: &EnumDef, from: &[String], allow: &TokenStream) -> TokenStream {
    let name = ident(&e.name);
    let wire_name = &e.name;
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for (index, v) in e.variants.iter().enumerate() {
        let vname = ident(&v.name);
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let (types, pattern, build, bindings): (Vec<&Ty>, TokenStream, TokenStream, Vec<_>) = match &v.shape {
            Shape::Unit => (Vec::new(), quote! { #name::#vname }, quote! { #name::#vname }, Vec::new()),
            Shape::Tuple(ts) => {
                let b: Vec<_> = (0..ts.len()).map(|i| format_ident!("v{i}")).collect();
                (ts.iter().collect(), quote! { #name::#vname(#(#b),*) }, quote! { #name::#vname(#(#b),*) }, b)
            }
            Shape::Struct(fs) => {
                let names: Vec<_> = fs.iter().map(|f| ident(&f.name)).collect();
                let b: Vec<_> = (0..fs.len()).map(|i| format_ident!("v{i}")).collect();
                (
                    fs.iter().map(|f| &f.ty).collect(),
                    quote! { #name::#vname { #(#names: #b),* } },
                    quote! { #name::#vname { #(#names: #b),* } },
                    b,
                )
            }
        };
        let values: Vec<TokenStream> = bindings.iter().map(|b| quote! { #b }).collect();
        let tuple = flat_tuple(&values);
        writes.push(quote! { #pattern => ::tidl_runtime::__evolve::serialize_variant(serializer, #index, &#tuple), });
        let types: Vec<TokenStream> = types.iter().map(|t| ty(t, from)).collect();
        let tuple_type = flat_tuple(&types);
        reads.push(quote! {
            #index => {
                let #tuple = payload.decode::<#tuple_type>()?;
                #build
            }
        });
    }
    quote! {
        #allow
        impl ::tidl_runtime::serde::Serialize for #name {
            fn serialize<S: ::tidl_runtime::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                match self {
                    #(#writes)*
                    #name::Unknown(index) => ::tidl_runtime::__evolve::serialize_variant(serializer, *index, &()),
                }
            }
        }

        #allow
        #[allow(clippy::let_unit_value)]
        impl<'de> ::tidl_runtime::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::tidl_runtime::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                ::tidl_runtime::__evolve::deserialize_variant(deserializer, #wire_name, |index, payload| {
                    ::core::result::Result::Ok(match index {
                        #(#reads)*
                        index => #name::Unknown(index),
                    })
                })
            }
        }
    }
}
