//! The server side of a service: the trait to implement, and `<Service>Server`, which
//! dispatches incoming calls to it through `tidl_runtime::Service`.

use super::{ServiceContext, docs, ident, method_doc, ty};
use crate::model::{MethodDef, MethodKind, Ty};
use proc_macro2::TokenStream;
use quote::quote;

/// The service trait and its server type.
pub(super) fn generate(cx: &ServiceContext<'_>) -> TokenStream {
    let s = cx.service;
    let names = &s.names;
    let (allow, deprecated) = (cx.allow, &cx.deprecated);
    let service = ident(&names.service);
    let server = ident(&names.server);
    let param = ident(names.server_param());
    let wire_service = &s.wire_name;
    let service_doc = docs(&cx.decl.docs, || format!("The `{}` service.", s.wire_name));
    let trait_note = format!(
        " Implement this trait to serve `{}`, and register the implementation with \
         `Server::builder().register({}::new(...))`.",
        s.wire_name, names.server
    );
    let trait_methods = s.methods.iter().map(|m| trait_method(cx, m));
    let dispatch_arms = s.methods.iter().map(|m| dispatch_arm(cx, m));
    let server_doc = format!(
        " Serves an implementation of [`{}`]: pass it to \
         [`ServerBuilder::register`](::tidl_runtime::ServerBuilder::register).",
        names.service
    );
    quote! {
        #service_doc
        #[doc = ""]
        #[doc = #trait_note]
        #deprecated
        #allow
        pub trait #service: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#trait_methods)*
        }

        #[doc = #server_doc]
        pub struct #server<#param> {
            inner: ::std::sync::Arc<#param>,
        }

        #allow
        impl<#param: #service> #server<#param> {
            /// Serves `inner`.
            pub fn new(inner: #param) -> Self {
                Self { inner: ::std::sync::Arc::new(inner) }
            }

            /// Serves an implementation that is shared with other code.
            pub fn from_arc(inner: ::std::sync::Arc<#param>) -> Self {
                Self { inner }
            }
        }

        impl<#param> ::core::clone::Clone for #server<#param> {
            fn clone(&self) -> Self {
                Self { inner: ::std::sync::Arc::clone(&self.inner) }
            }
        }

        impl<#param> ::core::fmt::Debug for #server<#param> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server)).finish_non_exhaustive()
            }
        }

        #allow
        impl<#param: #service> ::tidl_runtime::Service for #server<#param> {
            fn name(&self) -> &'static str {
                #wire_service
            }

            fn call(
                &self,
                method: &str,
                request: ::tidl_runtime::Incoming,
            ) -> ::core::result::Result<(), ::tidl_runtime::Incoming> {
                match method {
                    #(#dispatch_arms)*
                    _ => ::core::result::Result::Err(request),
                }
            }
        }
    }
}

/// The trait's method for `m`: a handler that can fail with the declared error or a `Status`.
fn trait_method(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let doc = method_doc(m);
    let deprecated = super::deprecated(m.deprecated.as_ref());
    let name = ident(&m.name);
    let (arg, reply, error) = (ty(&m.arg, cx.from), ty(&m.reply, cx.from), ty(&m.error, cx.from));
    match m.kind {
        MethodKind::Unary => quote! {
            #doc
            #deprecated
            fn #name(
                &self,
                ctx: ::tidl_runtime::Context,
                arg: #arg,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#reply, ::tidl_runtime::Error<#error>>,
            > + ::core::marker::Send;
        },
    }
}

/// The `match` arm that starts `m`'s handler for an incoming call.
fn dispatch_arm(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let service = ident(&cx.service.names.service);
    let wire_service = &cx.service.wire_name;
    let name = ident(&m.name);
    let wire_method = &m.wire_name;
    // A unit argument is passed as the literal `()` (clippy's `unit_arg`).
    let (param, arg) =
        if m.arg == Ty::Unit { (quote! { (): () }, quote! { () }) } else { (quote! { arg }, quote! { arg }) };
    match m.kind {
        MethodKind::Unary => quote! {
            #wire_method => {
                let inner = ::std::sync::Arc::clone(&self.inner);
                request.spawn(
                    ::tidl_runtime::Method::new(#wire_service, #wire_method),
                    move |ctx, #param| async move { #service::#name(&*inner, ctx, #arg).await },
                );
                ::core::result::Result::Ok(())
            }
        },
    }
}
