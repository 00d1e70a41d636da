//! [`Invoke`]: what a generated client needs to start a call. [`Client`](crate::Client)
//! implements it over a connection; a balancer, a middleware stack or a test double can stand in
//! for it, and generated clients work over any of them unchanged.

use super::call::Call;
use super::in_flight::Reply;
use super::options::CallOptions;
use super::streaming::{RequestSink, Streaming};
use crate::codec;
use crate::error::{Code, Status};
use crate::method::Method;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

/// A reply on its way: what [`Invoke::invoke`] returns. Dropping it before it completes cancels
/// the call.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// Starts calls: the seam between generated clients and whatever carries their calls.
///
/// Generated clients are generic over it (`ExampleClient<I = Client>`), and `client.example()`
/// works on every implementation. An implementation provides [`invoke`](Invoke::invoke), which
/// takes an encoded request and returns its reply; [`call`](Invoke::call), the typed entry point
/// generated code uses, encodes the argument and decodes the reply around it. [`Client`]
/// overrides `call` to encode straight into its connection's write buffer.
///
/// A test double that answers from a table:
///
/// ```
/// use tidl_runtime::{Invoke, Method, Reply, ReplyFuture, Request, Status};
///
/// #[derive(Clone)]
/// struct Canned;
///
/// impl Invoke for Canned {
///     fn invoke(&self, request: Request) -> ReplyFuture {
///         let reply = match request.method().name() {
///             "echo" => match request.decode::<String>() {
///                 Ok(text) => Reply::ok(&text),
///                 Err(status) => Reply::Status(status),
///             },
///             _ => Reply::Status(Status::unimplemented("not in the table")),
///         };
///         Box::pin(async move { reply })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let options = Default::default();
/// let reply = Canned.call::<_, String, String>(Method::new("Example", "echo"), "hi", &options).await;
/// assert_eq!(reply, Ok("hi".to_owned()));
/// # });
/// ```
///
/// [`Client`]: crate::Client
pub trait Invoke: Send + Sync + 'static {
    /// Starts a call of an encoded request and returns its reply to come. Dropping the returned
    /// future must cancel the call. A connection queues the request before this returns; an
    /// implementation that must wait first (for an async interceptor, or a layer's permit, as
    /// `tower::Layered` does) starts it when the future is first polled.
    fn invoke(&self, request: Request) -> ReplyFuture;

    /// Starts a call of `method` with argument `arg`: what generated clients call.
    fn call<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Call<T, E>
    where
        A: Serialize + ?Sized,
    {
        match Request::new(method, arg, options.clone()) {
            Ok(request) => Call::from_future(method, self.invoke(request)),
            Err(status) => Call::failed(status),
        }
    }

    /// Starts a call of `method` whose reply is a stream of items. Implementations that carry
    /// no streams keep the default, which fails with `Unimplemented`.
    fn server_stream<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Streaming<T, E>
    where
        A: Serialize + ?Sized,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        let _ = (arg, options);
        Streaming::failed(no_streams(method))
    }

    /// Starts a call of `method` whose request is a stream of items: the sink for them, and the
    /// call for the reply. The default fails with `Unimplemented`.
    fn client_stream<I, R, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Call<R, E>)
    where
        I: Serialize,
        R: DeserializeOwned,
        E: DeserializeOwned,
    {
        let _ = options;
        (RequestSink::closed(), Call::failed(no_streams(method)))
    }

    /// Starts a call of `method` whose request and reply are streams of items. The default fails
    /// with `Unimplemented`.
    fn bidi_stream<I, T, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Streaming<T, E>)
    where
        I: Serialize,
        T: DeserializeOwned,
        E: DeserializeOwned,
    {
        let _ = options;
        (RequestSink::closed(), Streaming::failed(no_streams(method)))
    }
}

fn no_streams(method: Method) -> Status {
    Status::unimplemented(format!("`{method}` is a streaming call, and this Invoke implementation carries no streams"))
}

/// A call's request, encoded: what [`Invoke::invoke`] receives.
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    payload: Bytes,
    options: CallOptions,
}

impl Request {
    /// The request for a call of `method` with `arg`; fails with `InvalidArgument` if `arg`
    /// cannot be encoded.
    pub fn new<A: Serialize + ?Sized>(method: Method, arg: &A, options: CallOptions) -> Result<Request, Status> {
        let payload = codec::encode(arg)
            .map_err(|e| Status::invalid_argument(format!("the request to `{method}` could not be encoded: {e}")))?;
        Ok(Request { method, payload, options })
    }

    /// The request for a call of `method` whose argument is already encoded: `payload` is sent
    /// as it is. For code whose types are known only at run time (see [`payload`](crate::payload)).
    pub fn from_payload(method: Method, payload: Bytes, options: CallOptions) -> Request {
        Request { method, payload, options }
    }

    /// The same request with other options (a retry's shorter timeout).
    pub(crate) fn with_options(mut self, options: CallOptions) -> Request {
        self.options = options;
        self
    }

    /// The method called.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The encoded argument.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The call's options: timeout and parent context.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// The argument, decoded as an `A`; `InvalidArgument` if it is not one.
    pub fn decode<A: DeserializeOwned>(&self) -> Result<A, Status> {
        codec::decode(&self.payload)
            .map_err(|e| Status::invalid_argument(format!("the argument of `{}` did not decode: {e}", self.method)))
    }
}

impl Reply {
    /// A successful reply carrying `value`, encoded; `Internal` if it cannot be encoded.
    pub fn ok<T: Serialize + ?Sized>(value: &T) -> Reply {
        match codec::encode(value) {
            Ok(bytes) => Reply::Ok(bytes),
            Err(e) => Reply::Status(Status::new(Code::Internal, format!("the reply could not be encoded: {e}"))),
        }
    }

    /// An application-error reply carrying `error`, encoded; `Internal` if it cannot be encoded.
    pub fn app<E: Serialize + ?Sized>(error: &E) -> Reply {
        match codec::encode(error) {
            Ok(bytes) => Reply::App(bytes),
            Err(e) => Reply::Status(Status::new(Code::Internal, format!("the error could not be encoded: {e}"))),
        }
    }
}

/// The three streaming methods of an [`Invoke`] that sends each stream on a connection it picks
/// at once (`self.$pick(method) -> Result<Client, Status>`), failing the stream with the status
/// when it has none: what [`Endpoint`](crate::Endpoint) and the balancer do.
macro_rules! streams_through_picked_client {
    ($pick:ident) => {
        fn server_stream<A, T, E>(&self, method: Method, arg: &A, options: &CallOptions) -> Streaming<T, E>
        where
            A: Serialize + ?Sized,
            T: DeserializeOwned,
            E: DeserializeOwned,
        {
            match self.$pick(method) {
                Ok(client) => client.server_stream(method, arg, options),
                Err(status) => Streaming::failed(status),
            }
        }

        fn client_stream<I, R, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Call<R, E>)
        where
            I: Serialize,
            R: DeserializeOwned,
            E: DeserializeOwned,
        {
            match self.$pick(method) {
                Ok(client) => client.client_stream(method, options),
                Err(status) => (RequestSink::closed(), Call::failed(status)),
            }
        }

        fn bidi_stream<I, T, E>(&self, method: Method, options: &CallOptions) -> (RequestSink<I>, Streaming<T, E>)
        where
            I: Serialize,
            T: DeserializeOwned,
            E: DeserializeOwned,
        {
            match self.$pick(method) {
                Ok(client) => client.bidi_stream(method, options),
                Err(status) => (RequestSink::closed(), Streaming::failed(status)),
            }
        }
    };
}
pub(crate) use streams_through_picked_client;
