//! The client side of a service: `<Service>Client`, generic over the `tidl_runtime::Invoke`
//! seam that carries its calls, and `<Service>ClientExt`, which adds `client.<service>()` to
//! every `Invoke` implementation.

use super::{ServiceContext, doc_note, ident, method_doc, ty};
use crate::model::{MethodDef, MethodKind};
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The client type and its extension trait.
pub(super) fn generate(cx: &ServiceContext<'_>) -> TokenStream {
    let s = cx.service;
    let names = &s.names;
    let (allow, deprecated) = (cx.allow, &cx.deprecated);
    let client = ident(&names.client);
    let ext = ident(&names.client_ext);
    let accessor = ident(&names.accessor_ident());
    let param = ident(&names.client_param(|name| (cx.taken)(name)));
    let client_methods = s.methods.iter().map(|m| method(cx, m));
    let client_doc = format!(
        " A client of the `{}` service: get one with `client.{}()` (import [`{}`]). \
         Cheap to clone; calls made through clones share the connection.",
        s.wire_name, names.accessor, names.client_ext
    );
    let invoke_doc = " Its calls go through `I`, by default \
                      `tidl_runtime`'s [`Client`](::tidl_runtime::Client): any \
                      [`Invoke`](::tidl_runtime::Invoke) implementation will do."
        .replace("`I`", &format!("`{param}`"));
    let ext_doc = format!(
        " Adds `{}()` to every [`Invoke`](::tidl_runtime::Invoke) implementation, \
         `tidl_runtime`'s [`Client`](::tidl_runtime::Client) among them.",
        names.accessor
    );
    let accessor_doc = format!(" The `{}` service, called through this connection.", s.wire_name);
    quote! {
        #[doc = #client_doc]
        #[doc = ""]
        #[doc = #invoke_doc]
        #deprecated
        #[derive(Clone, Debug)]
        pub struct #client<#param = ::tidl_runtime::Client> {
            client: #param,
            options: ::tidl_runtime::CallOptions,
        }

        #allow
        impl<#param: ::tidl_runtime::Invoke> #client<#param> {
            /// A client of the service whose calls go through `client`.
            pub fn new(client: #param) -> Self {
                Self { client, options: ::tidl_runtime::CallOptions::default() }
            }

            /// Calls made through the returned client fail with `DeadlineExceeded` after
            /// `timeout`; the server is told, and stops the handler then.
            #[must_use]
            pub fn timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.options = self.options.timeout(timeout);
                self
            }

            /// Calls made through the returned client belong to the handler call `ctx`: they are
            /// cancelled when it is, and their deadline is never later than its deadline.
            #[must_use]
            pub fn context(mut self, ctx: &::tidl_runtime::Context) -> Self {
                self.options = self.options.context(ctx);
                self
            }

            /// Calls made through the returned client use `options`.
            #[must_use]
            pub fn with_options(mut self, options: ::tidl_runtime::CallOptions) -> Self {
                self.options = options;
                self
            }

            #(#client_methods)*
        }

        #[doc = #ext_doc]
        #deprecated
        #allow
        pub trait #ext: ::tidl_runtime::Invoke + ::core::clone::Clone {
            #[doc = #accessor_doc]
            fn #accessor(&self) -> #client<Self>;
        }

        #allow
        impl<#param: ::tidl_runtime::Invoke + ::core::clone::Clone> #ext for #param {
            fn #accessor(&self) -> #client<Self> {
                #client::new(::core::clone::Clone::clone(self))
            }
        }
    }
}

/// The client's method for `m`.
fn method(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    match m.kind {
        MethodKind::Unary => unary(cx, m),
        MethodKind::ServerStreaming => server_streaming(cx, m),
        MethodKind::ClientStreaming => client_streaming(cx, m),
        MethodKind::Bidi => bidi(cx, m),
    }
}

/// What every client method starts from: its docs and deprecation, its name, the wire
/// `Method`, and the Rust types of its argument (or request items), reply (or reply items)
/// and error.
struct Parts {
    doc: TokenStream,
    deprecated: TokenStream,
    name: Ident,
    method: TokenStream,
    arg: TokenStream,
    reply: TokenStream,
    error: TokenStream,
}

fn parts(cx: &ServiceContext<'_>, m: &MethodDef) -> Parts {
    let method = cx.method_const(m);
    Parts {
        doc: method_doc(m),
        deprecated: super::deprecated(m.deprecated.as_ref()),
        name: ident(&m.name),
        method: quote! { #method },
        arg: ty(&m.arg, cx.from),
        reply: ty(&m.reply, cx.from),
        error: ty(&m.error, cx.from),
    }
}

/// A unary method: takes the argument, returns the `Call` to await or cancel.
fn unary(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let Parts { doc, deprecated, name, method, arg, reply, error } = parts(cx, m);
    quote! {
        #doc
        #deprecated
        // Like a function call, a call takes its argument by value (it is encoded at once).
        #[allow(clippy::needless_pass_by_value)]
        pub fn #name(&self, arg: #arg) -> ::tidl_runtime::Call<#reply, #error> {
            ::tidl_runtime::Invoke::call(&self.client, #method, &arg, &self.options)
        }
    }
}

/// A server-streaming method: takes the argument, returns the `Streaming` of replies.
fn server_streaming(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let Parts { doc, deprecated, name, method, arg, reply, error } = parts(cx, m);
    let note = doc_note(
        "Returns the stream of replies, which ends with the call's outcome. Dropping the stream cancels \
         the call.",
    );
    quote! {
        #doc
        #note
        #deprecated
        // Like a function call, a call takes its argument by value (it is encoded at once).
        #[allow(clippy::needless_pass_by_value)]
        pub fn #name(&self, arg: #arg) -> ::tidl_runtime::Streaming<#reply, #error> {
            ::tidl_runtime::Invoke::server_stream(&self.client, #method, &arg, &self.options)
        }
    }
}

/// A client-streaming method: returns the sink for the requests and the `Call` for the reply.
fn client_streaming(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let Parts { doc, deprecated, name, method, arg, reply, error } = parts(cx, m);
    let note = doc_note(
        "Returns the sink for the requests and the call, which completes with the reply. Dropping the \
         sink ends the requests (the call is half-closed); dropping the call cancels it.",
    );
    quote! {
        #doc
        #note
        #deprecated
        pub fn #name(&self) -> (::tidl_runtime::RequestSink<#arg>, ::tidl_runtime::Call<#reply, #error>) {
            ::tidl_runtime::Invoke::client_stream(&self.client, #method, &self.options)
        }
    }
}

/// A bidirectional method: returns the sink for the requests and the `Streaming` of replies.
fn bidi(cx: &ServiceContext<'_>, m: &MethodDef) -> TokenStream {
    let Parts { doc, deprecated, name, method, arg, reply, error } = parts(cx, m);
    let note = doc_note(
        "Returns the sink for the requests and the stream of replies, which ends with the call's \
         outcome. Dropping the sink ends the requests (the call is half-closed); dropping the stream \
         cancels the call.",
    );
    quote! {
        #doc
        #note
        #deprecated
        pub fn #name(&self) -> (::tidl_runtime::RequestSink<#arg>, ::tidl_runtime::Streaming<#reply, #error>) {
            ::tidl_runtime::Invoke::bidi_stream(&self.client, #method, &self.options)
        }
    }
}
