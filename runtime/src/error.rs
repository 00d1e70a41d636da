//! What a failed call resolves to: the application's own typed error, or a [`Status`] from the
//! RPC layer with a [`Code`] a caller can match on.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The kind of an RPC-layer failure. The numbering follows gRPC's status codes, so the codes mean
/// what people who know gRPC expect; codes are sent on the wire as their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The call was cancelled: by the caller's `cancel()`, by dropping the `Call`, or because the
    /// call it was made on behalf of was cancelled.
    Cancelled,
    /// A failure the peer could not classify, or a code this side does not know.
    Unknown,
    /// The request's arguments did not decode as the method's argument type, broke the protocol,
    /// or a handler refused a value it was given.
    InvalidArgument,
    /// The deadline passed before the call completed.
    DeadlineExceeded,
    /// Something the call asked for does not exist.
    NotFound,
    /// Something the call tried to create already exists.
    AlreadyExists,
    /// The caller is known but not allowed to do this.
    PermissionDenied,
    /// A limit was hit: a frame too long, too many calls in flight, too many connections, or a
    /// handler that is overloaded.
    ResourceExhausted,
    /// The system is not in the state the call needs (for example, the two sides were built from
    /// incompatible schemas).
    FailedPrecondition,
    /// The call was stopped by a conflict, such as a concurrent change; retrying the whole
    /// operation may succeed.
    Aborted,
    /// A value was outside the range the call accepts.
    OutOfRange,
    /// The server has no such service or method.
    Unimplemented,
    /// The server failed while running the call: the handler panicked, or the reply did not decode.
    Internal,
    /// The connection could not be made, was lost, or the server is shutting down.
    Unavailable,
    /// Data was lost or corrupted beyond recovery.
    DataLoss,
    /// The caller did not prove who it is.
    Unauthenticated,
}

/// Every code, in the order of their numbers.
const CODES: [Code; 16] = [
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The code's number on the wire (gRPC's numbering).
    pub fn as_u16(self) -> u16 {
        match self {
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
        }
    }

    /// The code for a number received on the wire; numbers this version does not know (and 0,
    /// which is not a failure) become [`Code::Unknown`].
    pub fn from_u16(n: u16) -> Code {
        CODES.iter().copied().find(|code| code.as_u16() == n).unwrap_or(Code::Unknown)
    }

    fn describe(self) -> &'static str {
        match self {
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown error",
            Code::InvalidArgument => "invalid argument",
            Code::DeadlineExceeded => "deadline exceeded",
            Code::NotFound => "not found",
            Code::AlreadyExists => "already exists",
            Code::PermissionDenied => "permission denied",
            Code::ResourceExhausted => "resource exhausted",
            Code::FailedPrecondition => "failed precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out of range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal error",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An RPC-layer failure: a [`Code`] to match on and a message a person can act on.
///
/// Statuses cross the wire as their code and message. Locally made statuses may also carry the
/// underlying error (for example the `io::Error` of a refused connection) as their
/// [`source`](std::error::Error::source); equality compares code and message only.
#[derive(Clone)]
pub struct Status {
    code: Code,
    message: Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    /// The call was refused before it started: its handler never ran.
    unstarted: bool,
}

impl Status {
    /// A status with `code` and `message`.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Status {
        Status { code, message: message.into(), source: None, unstarted: false }
    }

    /// Marks the call this status ends as never started: nothing reached a handler, so it may
    /// be sent again, to this server or another, whatever the method does.
    #[must_use]
    pub fn unstarted(mut self) -> Status {
        self.unstarted = true;
        self
    }

    /// Whether the call was refused before it started (a server shutting down refused it, or it
    /// was never sent): retrying it elsewhere cannot run it twice. The balancer and
    /// [`Endpoint`](crate::Endpoint) retry such calls on their own.
    pub fn is_unstarted(&self) -> bool {
        self.unstarted
    }

    /// Attaches the error that caused this status, reported by `source()`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Status {
        self.source = Some(Arc::new(source));
        self
    }

    /// The kind of failure.
    pub fn code(&self) -> Code {
        self.code
    }

    /// What happened, in words.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A [`Code::Cancelled`] status saying `message`.
    pub fn cancelled(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Cancelled, message)
    }

    /// A [`Code::Unknown`] status saying `message`.
    pub fn unknown(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unknown, message)
    }

    /// A [`Code::InvalidArgument`] status saying `message`.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    /// A [`Code::DeadlineExceeded`] status saying `message`.
    pub fn deadline_exceeded(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::DeadlineExceeded, message)
    }

    /// A [`Code::NotFound`] status saying `message`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::NotFound, message)
    }

    /// A [`Code::AlreadyExists`] status saying `message`.
    pub fn already_exists(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::AlreadyExists, message)
    }

    /// A [`Code::PermissionDenied`] status saying `message`.
    pub fn permission_denied(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::PermissionDenied, message)
    }

    /// A [`Code::ResourceExhausted`] status saying `message`.
    pub fn resource_exhausted(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }

    /// A [`Code::FailedPrecondition`] status saying `message`.
    pub fn failed_precondition(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::FailedPrecondition, message)
    }

    /// A [`Code::Aborted`] status saying `message`.
    pub fn aborted(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Aborted, message)
    }

    /// A [`Code::OutOfRange`] status saying `message`.
    pub fn out_of_range(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::OutOfRange, message)
    }

    /// A [`Code::Unimplemented`] status saying `message`.
    pub fn unimplemented(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unimplemented, message)
    }

    /// A [`Code::Internal`] status saying `message`.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Internal, message)
    }

    /// A [`Code::Unavailable`] status saying `message`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unavailable, message)
    }

    /// A [`Code::DataLoss`] status saying `message`.
    pub fn data_loss(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::DataLoss, message)
    }

    /// A [`Code::Unauthenticated`] status saying `message`.
    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }
}

impl PartialEq for Status {
    fn eq(&self, other: &Status) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for Status {}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Status");
        s.field("code", &self.code).field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error a call resolves to: either the application error the method declares (`E`, by
/// default `String`), or a [`Status`] from the RPC layer.
///
/// ```
/// use tidl_runtime::{Code, Error};
///
/// fn describe(result: Result<String, Error>) -> String {
///     match result {
///         Ok(reply) => reply,
///         Err(Error::App(message)) => format!("the handler said no: {message}"),
///         Err(Error::Status(status)) if status.code() == Code::Cancelled => "cancelled".into(),
///         Err(Error::Status(status)) => format!("rpc failed: {status}"),
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error<E = String> {
    /// The handler ran and returned its declared error.
    App(E),
    /// The call failed in the RPC layer: cancelled, deadline, unknown method, bad arguments,
    /// limits, a panicking handler, or an unavailable connection.
    Status(Status),
}

impl<E> Error<E> {
    /// The RPC-layer code, or `None` for an application error.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::App(_) => None,
            Error::Status(status) => Some(status.code()),
        }
    }

    /// The RPC-layer status, or `None` for an application error.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::App(_) => None,
            Error::Status(status) => Some(status),
        }
    }

    /// Converts the application error with `f`, keeping a status as it is: for forwarding an
    /// inner call's failure from a handler whose method declares another error type.
    ///
    /// ```
    /// use tidl_runtime::{Code, Error, Status};
    ///
    /// let inner: Error<u32> = Error::Status(Status::unavailable("backend down"));
    /// let outer: Error<String> = inner.map_app(|n| format!("backend error {n}"));
    /// assert_eq!(outer.code(), Some(Code::Unavailable));
    /// ```
    pub fn map_app<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::App(e) => Error::App(f(e)),
            Error::Status(status) => Error::Status(status),
        }
    }
}

impl<E> From<Status> for Error<E> {
    fn from(status: Status) -> Error<E> {
        Error::Status(status)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::App(e) => write!(f, "application error: {e}"),
            Error::Status(status) => status.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::App(_) => None,
            Error::Status(status) => std::error::Error::source(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_error<E: std::error::Error + PartialEq + Send + Sync + 'static>() {}

    #[test]
    fn errors_are_std_errors_and_comparable() {
        assert_error::<Status>();
        assert_error::<Error>();
        assert_error::<Error<std::io::ErrorKind>>();
    }

    #[test]
    fn codes_round_trip_their_numbers_and_unknown_numbers_are_unknown() {
        for (n, code) in (1..).zip(CODES) {
            assert_eq!(code.as_u16(), n, "gRPC's number for {code:?}");
            assert_eq!(Code::from_u16(n), code);
        }
        assert_eq!(Code::from_u16(0), Code::Unknown);
        assert_eq!(Code::from_u16(999), Code::Unknown);
    }

    #[test]
    fn display_says_what_happened() {
        let status = Status::new(Code::DeadlineExceeded, "`A.b` passed its deadline");
        assert_eq!(status.to_string(), "deadline exceeded: `A.b` passed its deadline");
        assert_eq!(Error::<String>::App("nope".into()).to_string(), "application error: nope");
        let io = Status::unavailable("could not connect").with_source(std::io::Error::other("refused"));
        assert_eq!(std::error::Error::source(&io).map(ToString::to_string), Some("refused".to_owned()));
        assert_eq!(io, Status::unavailable("could not connect"), "equality ignores the source");
    }
}
