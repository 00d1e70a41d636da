//! Payloads (encoded arguments, replies, errors and stream items) for code whose types are known
//! only at run time: a tool that calls any method with values read from JSON (`tidl call`), a
//! proxy, a recorder. Generated code never needs these; it encodes and decodes its own types.
//!
//! The encoding is the one every tidl peer speaks (docs/PROTOCOL.md, "Encoding"): a value that
//! serializes as a generated type does (with `tidl_runtime::__evolve` for evolvable structs and
//! open enums) encodes to the bytes generated code would send. [`Request::from_payload`] sends
//! such bytes, and [`Reply`] hands back what came.
//!
//! [`Request::from_payload`]: crate::Request::from_payload
//! [`Reply`]: crate::Reply

use crate::codec;
use bytes::Bytes;
use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

/// Encodes `value` as a payload.
///
/// ```
/// let bytes = tidl_runtime::payload::encode("hi").unwrap();
/// assert_eq!(bytes.as_ref(), b"\x02hi");
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, String> {
    codec::encode(value)
}

/// Decodes a payload as one `T`, which must take up all of it.
///
/// ```
/// assert_eq!(tidl_runtime::payload::decode::<String>(b"\x02hi"), Ok("hi".to_owned()));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    codec::decode(bytes)
}

/// Decodes a payload with `seed`, a value that knows at run time what type to read; the value
/// must take up all of the payload. The decoding keeps the limits of every other (claimed
/// lengths are checked against the bytes present, nesting is at most 256 deep).
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(seed: S, bytes: &'de [u8]) -> Result<S::Value, String> {
    let (value, used) = codec::decode_seed(seed, bytes)?;
    if used == bytes.len() { Ok(value) } else { Err(format!("{} unexpected trailing bytes", bytes.len() - used)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::marker::PhantomData;

    #[test]
    fn a_seeded_decoding_must_take_up_the_whole_payload() {
        assert_eq!(decode_seed(PhantomData::<u8>, &[7]), Ok(7));
        assert_eq!(decode_seed(PhantomData::<u8>, &[7, 8]), Err("1 unexpected trailing bytes".to_owned()));
        assert!(decode_seed(PhantomData::<String>, &[5, b'a']).is_err());
    }
}
