//! The server side of a service: the trait to implement, and `<Service>Server`, which
//! dispatches incoming calls to it through `tidl_runtime::Service`.

use super::{ServiceContext, doc_note, docs, ident, method_doc, path_to, ty};
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
    let schema_arms = s.methods.iter().map(|m| {
        let (wire_method, method) = (&m.wire_name, cx.method_const(m));
        quote! { #wire_method => #method.schema(), }
    });
    let embedded = path_to(cx.from, &[], super::EMBEDDED_SCHEMA);
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

            fn schema(&self, method: &str) -> ::core::option::Option<&'static ::tidl_runtime::Schema> {
                match method {
                    #(#schema_arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn embedded_schema(&self) -> ::core::option::Option<&'static ::tidl_runtime::reflection::EmbeddedSchema> {
                ::core::option::Option::Some(&#embedded)
            }
        }
    }
}

/// The trait's method for `m`: a handler that can fail with the declared error or a `Status`.
/// A streamed argument comes as a `Source` of its items, a streamed reply goes out through a
/// `Sink`, and the handler's result is the call's outcome.
fn trait_method(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let doc = method_doc(m);
    let deprecated = super::deprecated(m.deprecated.as_ref());
    let name = ident(&m.name);
    let (arg, reply, error) = (ty(&m.arg, cx.from), ty(&m.reply, cx.from), ty(&m.error, cx.from));
    let (note, params, output) = match m.kind {
        MethodKind::Unary => (quote! {}, quote! { arg: #arg, }, reply),
        MethodKind::ServerStreaming => (
            doc_note(
                "Send the replies through `out`, in order; the stream ends with the result the handler \
                 returns.",
            ),
            quote! { arg: #arg, out: ::tidl_runtime::Sink<#reply>, },
            quote! { () },
        ),
        MethodKind::ClientStreaming => (
            doc_note(
                "Take the requests from `items`, in order: it ends when the client has sent its last. \
                 The result the handler returns is the reply.",
            ),
            quote! { items: ::tidl_runtime::Source<#arg>, },
            reply,
        ),
        MethodKind::Bidi => (
            doc_note(
                "Take the requests from `items` (it ends when the client has sent its last) and send \
                 the replies through `out`; the reply stream ends with the result the handler returns.",
            ),
            quote! { items: ::tidl_runtime::Source<#arg>, out: ::tidl_runtime::Sink<#reply>, },
            quote! { () },
        ),
    };
    quote! {
        #doc
        #note
        #deprecated
        fn #name(
            &self,
            ctx: ::tidl_runtime::Context,
            #params
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<#output, ::tidl_runtime::Error<#error>>,
        > + ::core::marker::Send;
    }
}

/// The `match` arm that starts `m`'s handler for an incoming call, through the `Incoming`
/// method for its kind.
fn dispatch_arm(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let service = ident(&cx.service.names.service);
    let name = ident(&m.name);
    let wire_method = &m.wire_name;
    let method = cx.method_const(m);
    // A unit argument is passed as the literal `()` (clippy's `unit_arg`).
    let (param, arg) =
        if m.arg == Ty::Unit { (quote! { (): () }, quote! { () }) } else { (quote! { arg }, quote! { arg }) };
    let (spawn, params, args) = match m.kind {
        MethodKind::Unary => (quote! { spawn }, quote! { ctx, #param }, quote! { ctx, #arg }),
        MethodKind::ServerStreaming => {
            (quote! { spawn_server_stream }, quote! { ctx, #param, out }, quote! { ctx, #arg, out })
        }
        MethodKind::ClientStreaming => (quote! { spawn_client_stream }, quote! { ctx, items }, quote! { ctx, items }),
        MethodKind::Bidi => (quote! { spawn_bidi }, quote! { ctx, items, out }, quote! { ctx, items, out }),
    };
    quote! {
        #wire_method => {
            let inner = ::std::sync::Arc::clone(&self.inner);
            request.#spawn(
                #method,
                move |#params| async move { #service::#name(&*inner, #args).await },
            );
            ::core::result::Result::Ok(())
        }
    }
}
