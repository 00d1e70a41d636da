//! The runtime of tidl, an IDL-driven RPC framework with cancellation that really stops work.
//!
//! You describe services in a `.tidl` file, `tidl-compiler` turns it into Rust in your build
//! script, and the generated code builds on this crate alone: a trait to implement, served by a
//! [`Server`], and a typed client whose methods return a [`Call`] to await or cancel. Cancelling
//! a call (or dropping it) sends a cancel frame, and the server drops the running handler's
//! future at once. Start with the [five-minute tour]; the [language reference] and the
//! [wire protocol] describe the rest.
//!
//! [five-minute tour]: https://github.com/tidl-rs/tidl#a-five-minute-tour
//! [language reference]: https://github.com/tidl-rs/tidl/blob/main/docs/LANGUAGE.md
//! [wire protocol]: https://github.com/tidl-rs/tidl/blob/main/docs/PROTOCOL.md
//!
//! A handler, as you write it for the trait generated from `rpc crunch(u64) -> u64;`:
//!
//! ```
//! use tidl_runtime::{Context, Error, Status};
//!
//! async fn crunch(ctx: Context, n: u64) -> Result<u64, Error> {
//!     if n == 0 {
//!         return Err(Status::invalid_argument("nothing to crunch").into());
//!     }
//!     let mut sum = 0u64;
//!     for i in 0..n {
//!         if i % 100_000 == 0 {
//!             ctx.checkpoint().await?; // stops here once the caller has cancelled
//!         }
//!         sum = sum.wrapping_add(i * i);
//!     }
//!     Ok(sum)
//! }
//! ```
//!
//! and a call, through the generated client (`ExampleClientExt` adds `client.example()`):
//!
//! ```no_run
//! # mod services { pub trait ExampleClientExt { fn example(&self) -> Self; fn echo(&self, s: String) -> tidl_runtime::Call<String>; } impl ExampleClientExt for tidl_runtime::Client { fn example(&self) -> Self { unimplemented!() } fn echo(&self, _: String) -> tidl_runtime::Call<String> { unimplemented!() } } }
//! use services::ExampleClientExt;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = tidl_runtime::Client::dial("127.0.0.1:23333").await?;
//! let call = client.example().echo("hello world".to_string());
//! assert_eq!(call.await, Ok("hello world".to_string()));
//! # Ok(()) }
//! ```
//!
//! Calls travel as length-delimited frames with bincode bodies, many calls multiplexed on one
//! connection, over TCP, Unix domain sockets, an in-process pipe ([`transport`]) or any byte
//! stream.
//!
//! Some public items are there for generated code and rarely written by hand: [`Service`],
//! [`Method`], the `serde` and `bytes` re-exports, and the request type handed to generated
//! servers (hidden from these docs).
//!
//! # What a call can end in
//!
//! A call resolves to its reply, to the method's declared application error
//! ([`Error::App`]), or to a [`Status`] whose [`Code`] says what happened:
//!
//! - `Cancelled`: the caller cancelled it or dropped it, or the handler call it was made for
//!   (see [`CallOptions::context`]) was cancelled. The server's handler is stopped.
//! - `DeadlineExceeded`: its timeout passed ([`CallOptions::timeout`], or
//!   [`ClientConfig::default_timeout`]). The client's own timer fires even if the server never
//!   answers; the server, told the deadline with the request, stops the handler when it passes.
//!   A call made with a handler's context never gets a later deadline than that handler.
//! - `Unimplemented`: the server has no such service or method (the message names it).
//! - `InvalidArgument`: the argument did not decode as the method's type.
//! - `ResourceExhausted`: a limit was hit; the message names the limit, its value and the
//!   setting that raises it ([`ServerConfig::max_concurrent_calls`],
//!   [`ServerConfig::max_connections`], `max_frame_len`). A request over the frame limit fails
//!   before anything is sent.
//! - `Internal`: the handler panicked. The panic fails that call only.
//! - `FailedPrecondition`: the client and the server were built from versions of the `.tidl`
//!   file whose wire shapes of this method cannot be read by the other side (the message names
//!   the first difference; `tidl compat` lists them all). The handler does not run.
//! - Any code a handler chose: handlers may answer with a [`Status`] (`NotFound`,
//!   `PermissionDenied`, `FailedPrecondition`, ...) as well as with their declared error.
//! - `Unavailable`: the connection could not be made, was lost (every pending call fails at
//!   once), stopped answering keepalive pings, or the server is shutting down.
//!
//! # Connections and the server's lifecycle
//!
//! Each side pings a silent peer ([`ClientConfig::keepalive_interval`]) and gives up on one that
//! does not answer. When a connection closes, the server cancels every handler still running
//! for it. [`Server::shutdown`] stops accepting, tells clients to start no new calls, lets
//! running calls finish within a grace period, cancels the rest (telling their callers why), and
//! returns once every task has ended.
//!
//! # Features
//!
//! - `balance`: `Balancer`, client-side load balancing over many endpoints (on tower).
//! - `dns`: `DnsDiscovery`, the balancer's endpoints found by DNS (hickory-resolver).
//! - `tls`: `transport::tls`, TLS over any transport, mutual or not (rustls, ring).
//! - `tower`: tower layers on both sides (`ServerBuilder::layer`, the `tower` module).
//! - `otel`: the OpenTelemetry trace context of a call's span carried in its metadata, and
//!   continued by the server (see [`observe`]).
//! - `metrics`: call and connection metrics on the `metrics` facade (`observe::metrics`).
//!
//! Without a feature, every call still has a `tracing` span on each side ([`observe`]).
//!
//! # Layout
//!
//! Dependencies run one way, from the base types up to the roles:
//!
//! - `error`, `method`, `context`, `deadline`: what a call is and how it ends ([`Status`],
//!   [`Code`], [`Error`], [`Method`], [`Context`]).
//! - `codec`: the one place that knows the body encoding (bincode). `wire`: the hello, frames
//!   and their headers, and the [`FrameDecoder`].
//! - `conn`: the connection engine both roles run on: *the* read loop, the outbox its writer
//!   drains, keepalive and buffers.
//! - [`transport`]: [`Listener`](transport::Listener) and [`Connector`](transport::Connector),
//!   with TCP, Unix domain sockets and an in-memory pipe.
//! - `client`: [`Client`], [`Call`], [`CallOptions`], and the [`Invoke`] seam generated clients
//!   call. `server`: [`Server`], its connections, and the dispatch of calls to handlers.
//! - [`observe`]: a tracing span per call on both sides, OpenTelemetry trace context in the
//!   call's metadata (feature `otel`), and metrics (feature `metrics`).
//! - [`payload`]: encoded values for code whose types are known only at run time (`tidl call`).
//! - `builtin`: the services a server may serve besides its own, [`reflection`] and [`health`].

// Generated code names the runtime `::tidl_runtime`; so do the built-in services' (`builtin`).
extern crate self as tidl_runtime;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
mod builtin;
mod cancel;
mod client;
mod codec;
mod conn;
mod context;
mod deadline;
mod error;
mod intercept;
mod jitter;
mod metadata;
mod method;
pub mod observe;
pub mod payload;
mod sched;
mod schema;
mod server;
mod sync;
#[cfg(feature = "tower")]
pub mod tower;
pub mod transport;
mod wire;

pub use builtin::{health, reflection};
#[cfg(feature = "balance")]
pub use client::balance::{Balancer, EndpointService};
pub use client::call::Call;
#[cfg(feature = "dns")]
pub use client::dns::{DnsDiscovery, dns};
pub use client::endpoint::{Endpoint, EndpointConfig, EndpointState};
pub use client::in_flight::Reply;
pub use client::intercept::{AsyncClientInterceptor, ClientInterceptor, ClientInterceptors};
pub use client::invoke::{Invoke, ReplyFuture, Request};
pub use client::options::CallOptions;
pub use client::streaming::{RequestSink, Streaming};
pub use client::{Client, ClientConfig, WhenFull};
/// The request generated servers hand to their handlers; not for use by hand.
#[doc(hidden)]
pub use codec::evolve as __evolve;
pub use context::Context;
pub use error::{Code, Error, Status};
pub use intercept::InterceptFuture;
pub use metadata::Metadata;
pub use method::Method;
#[doc(hidden)]
pub use schema::Schema;
#[doc(hidden)]
pub use server::dispatch::Incoming;
pub use server::dispatch::Service;
pub use server::intercept::Interceptor;
pub use server::streaming::{Sink, Source};
pub use server::{Server, ServerBuilder, ServerConfig};
pub use transport::Peer;
pub use wire::handshake::{MAGIC, VERSION_MAJOR, VERSION_MINOR};
pub use wire::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameTooLarge};

/// tower's discovery change: what a stream given to [`Balancer::new`] yields.
#[cfg(feature = "balance")]
pub use ::tower::discover::Change;
/// Re-exported for generated code, so a user's crate needs no direct dependency on it.
pub use bytes;
/// Re-exported for generated code, so a user's crate needs no direct dependency on it.
pub use serde;
/// Re-exported for handlers that want the context's token type.
pub use tokio_util::sync::CancellationToken;

/// Includes the Rust code generated for a `.tidl` file by `tidl_compiler::compile` in `build.rs`.
///
/// `include_tidl!("services")` includes `$OUT_DIR/services.rs`, generated from `services.tidl`.
/// Put it inside a module of its own:
///
/// ```ignore
/// pub mod services {
///     tidl_runtime::include_tidl!("services");
/// }
/// ```
#[macro_export]
macro_rules! include_tidl {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}
