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
    /// The request's arguments did not decode as the method's argument type, or the request broke
    /// the protocol.
    InvalidArgument,
    /// The deadline passed before the call completed.
    DeadlineExceeded,
    /// A limit was hit: a frame too long, too many calls in flight, too many connections.
    ResourceExhausted,
    /// The server has no such service or method.
    Unimplemented,
    /// The server failed while running the call: the handler panicked, or the reply did not decode.
    Internal,
    /// The connection could not be made, was lost, or the server is shutting down.
    Unavailable,
}

impl Code {
    /// The code's number on the wire (gRPC's numbering).
    pub fn as_u16(self) -> u16 {
        match self {
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::ResourceExhausted => 8,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
        }
    }

    /// The code for a number received on the wire; numbers this version does not know become
    /// [`Code::Unknown`].
    pub fn from_u16(n: u16) -> Code {
        match n {
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            8 => Code::ResourceExhausted,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown error",
            Code::InvalidArgument => "invalid argument",
            Code::DeadlineExceeded => "deadline exceeded",
            Code::ResourceExhausted => "resource exhausted",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal error",
            Code::Unavailable => "unavailable",
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
}

impl Status {
    /// A status with `code` and `message`.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Status {
        Status { code, message: message.into(), source: None }
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

    pub(crate) fn cancelled(what: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Cancelled, what)
    }

    pub(crate) fn unavailable(what: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unavailable, what)
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
        for code in [
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Unimplemented,
            Code::Internal,
            Code::Unavailable,
        ] {
            assert_eq!(Code::from_u16(code.as_u16()), code);
        }
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
