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
/// The protocol's minor version: additions that older peers of the same major can ignore.
pub const VERSION_MINOR: u8 = 0;
/// Length of a hello.
pub(crate) const HELLO_LEN: usize = 8;

/// Status byte: the hello is accepted.
const ACCEPTED: u8 = 0;
/// Status byte (server to client): the server does not speak the client's major version.
const UNSUPPORTED_VERSION: u8 = 1;

/// A decoded hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) major: u8,
    pub(crate) minor: u8,
    pub(crate) accepted: bool,
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
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// This side's hello; `accepted` is false only for a server refusing a client's version.
pub(crate) fn encode(accepted: bool) -> [u8; HELLO_LEN] {
    let [m0, m1, m2, m3] = MAGIC;
    let status = if accepted { ACCEPTED } else { UNSUPPORTED_VERSION };
    [m0, m1, m2, m3, VERSION_MAJOR, VERSION_MINOR, status, 0]
}

/// Decodes a peer's hello and checks that its major version is ours.
pub(crate) fn decode(bytes: [u8; HELLO_LEN]) -> Result<Hello, HelloError> {
    if bytes[..4] != MAGIC {
        return Err(HelloError::NotTidl(bytes));
    }
    let hello = Hello { major: bytes[4], minor: bytes[5], accepted: bytes[6] == ACCEPTED };
    if hello.major != VERSION_MAJOR {
        return Err(HelloError::Version { major: hello.major, minor: hello.minor });
    }
    Ok(hello)
}

/// Decodes the server's answer, as seen by the client.
pub(crate) fn decode_server_hello(bytes: [u8; HELLO_LEN]) -> Result<Hello, HelloError> {
    match decode(bytes) {
        Ok(hello) if !hello.accepted => Err(HelloError::Refused { major: hello.major, minor: hello.minor }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_hello_is_accepted() {
        let hello = decode(encode(true)).unwrap();
        assert_eq!(hello, Hello { major: VERSION_MAJOR, minor: VERSION_MINOR, accepted: true });
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
            "the peer speaks tidl protocol 2.3, this side speaks 1.0; major versions must match"
        );
    }

    #[test]
    fn refusal_from_server_is_reported() {
        let mut bytes = encode(false);
        bytes[5] = 4;
        let err = decode_server_hello(bytes).unwrap_err();
        assert_eq!(err, HelloError::Refused { major: 1, minor: 4 });
    }
}
