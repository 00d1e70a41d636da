//! The 8-byte hello each side sends before any frame: `TIDL`, the protocol's major and minor
//! version, a status byte, and a reserved zero byte.
//!
//! The client sends its hello and may queue calls right behind it (no round trip is spent
//! waiting). The server checks the magic and the major version and answers with its own hello,
//! whose status byte says whether it accepts the client.

use std::fmt;

/// The first four bytes of every tidl connection, in both directions.
pub const MAGIC: [u8; 4] = *b"TIDL";
/// The protocol's major version: peers with different majors cannot talk.
pub const VERSION_MAJOR: u8 = 1;
/// The protocol's minor version: additions that older peers of the same major can ignore. A
/// connection speaks the lower of its two peers' minor versions: the server answers the client's
/// hello with that version. Version 1.1 added streams; 1.2 added schema checks (`Bind`) and
/// the encodings of evolvable structs and open enums; 1.3 added `Outcome::Refused`, so that a
/// client knows which calls a server shutting down never started; 1.4 added `Call`, a request
/// with metadata.
pub const VERSION_MINOR: u8 = 4;

/// The first minor version with streams (`Item`, `HalfClose` and `Credit` frames).
pub(crate) const STREAMS_MINOR: u8 = 1;
/// Length of a hello.
pub(crate) const HELLO_LEN: usize = 8;

/// What a hello's status byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 0: go ahead (every client hello says this).
    Accepted,
    /// 1 (server to client): the server does not speak the client's major version.
    UnsupportedVersion,
    /// 2 (server to client): the server is at its maximum number of connections.
    Busy,
}

/// A decoded hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) major: u8,
    pub(crate) minor: u8,
    pub(crate) status: u8,
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelloError {
    /// The bytes are not a tidl hello at all.
    NotTidl([u8; HELLO_LEN]),
    /// A tidl peer with a major version this side cannot speak.
    Version { major: u8, minor: u8 },
    /// The server refused this client's version.
    Refused { major: u8, minor: u8 },
    /// The server is at its connection limit.
    Busy,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::NotTidl(bytes) => write!(
                f,
                "the peer does not speak tidl: expected the handshake `TIDL` followed by a \
                 version, got bytes {} ({:?})",
                hex(bytes),
                String::from_utf8_lossy(bytes)
            ),
            HelloError::Version { major, minor } => write!(
                f,
                "the peer speaks tidl protocol {major}.{minor}, this side speaks \
                 {VERSION_MAJOR}.{VERSION_MINOR}; major versions must match"
            ),
            HelloError::Refused { major, minor } => write!(
                f,
                "the server speaks tidl protocol {major}.{minor} and refused this client's \
                 protocol {VERSION_MAJOR}.{VERSION_MINOR}; major versions must match"
            ),
            HelloError::Busy => f.write_str(
                "the server refused the connection because it is at its maximum number of \
                 connections (ServerConfig::max_connections); retry later or raise the limit",
            ),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// This side's hello, with `answer` in its status byte.
pub(crate) fn encode(answer: Answer) -> [u8; HELLO_LEN] {
    encode_minor(answer, VERSION_MINOR)
}

/// A hello announcing minor version `minor` (the server answers with the version the connection
/// will speak), with `answer` in its status byte.
pub(crate) fn encode_minor(answer: Answer, minor: u8) -> [u8; HELLO_LEN] {
    let [m0, m1, m2, m3] = MAGIC;
    let status = match answer {
        Answer::Accepted => 0,
        Answer::UnsupportedVersion => 1,
        Answer::Busy => 2,
    };
    [m0, m1, m2, m3, VERSION_MAJOR, minor, status, 0]
}

/// Decodes a peer's hello and checks that its major version is ours.
pub(crate) fn decode(bytes: [u8; HELLO_LEN]) -> Result<Hello, HelloError> {
    if bytes[..4] != MAGIC {
        return Err(HelloError::NotTidl(bytes));
    }
    let hello = Hello { major: bytes[4], minor: bytes[5], status: bytes[6] };
    if hello.major != VERSION_MAJOR {
        return Err(HelloError::Version { major: hello.major, minor: hello.minor });
    }
    Ok(hello)
}

/// Decodes the server's answer, as seen by the client: a refusal is reported as such, whatever
/// version the server speaks.
pub(crate) fn decode_server_hello(bytes: [u8; HELLO_LEN]) -> Result<Hello, HelloError> {
    if bytes[..4] != MAGIC {
        return Err(HelloError::NotTidl(bytes));
    }
    match bytes[6] {
        2 => Err(HelloError::Busy),
        0 => decode(bytes),
        _ => Err(HelloError::Refused { major: bytes[4], minor: bytes[5] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_hello_is_accepted() {
        let hello = decode(encode(Answer::Accepted)).unwrap();
        assert_eq!(hello, Hello { major: VERSION_MAJOR, minor: VERSION_MINOR, status: 0 });
    }

    #[test]
    fn http_bytes_are_named_as_not_tidl() {
        let err = decode(*b"GET / HT").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the peer does not speak tidl: expected the handshake `TIDL` followed by a version, \
             got bytes 47 45 54 20 2f 20 48 54 (\"GET / HT\")"
        );
    }

    #[test]
    fn newer_major_version_is_refused_with_both_versions() {
        let err = decode([b'T', b'I', b'D', b'L', 2, 3, 0, 0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the peer speaks tidl protocol 2.3, this side speaks 1.4; major versions must match"
        );
    }

    #[test]
    fn refusal_from_server_is_reported() {
        let mut bytes = encode_minor(Answer::UnsupportedVersion, 0);
        bytes[4] = 2;
        let err = decode_server_hello(bytes).unwrap_err();
        assert_eq!(err, HelloError::Refused { major: 2, minor: 0 });
        assert_eq!(decode_server_hello(encode(Answer::Busy)), Err(HelloError::Busy));
    }
}
