//! The name in a certificate, read with a minimal DER walk.
//!
//! rustls-webpki, already in the tree through rustls, checks a certificate against a name but
//! no longer lists the names in one (nor reads the subject), and x509-parser would add a
//! dozen crates for two fields. So this reads just those, bounds-checked at every step: it
//! returns `None` on anything it does not understand and never panics.

use super::CertificateDer;

/// The name in a certificate: its first DNS subjectAltName, or failing that the first common
/// name (CN) of its subject.
///
/// Limits: only DER (definite lengths of at most 4 bytes, low tag numbers) is read; the names
/// are read, not checked (the handshake verified the chain they are in); other kinds of
/// subjectAltName (IP addresses, URIs, e-mail addresses) are skipped; a common name is read
/// from a UTF8String, PrintableString, IA5String or BMPString, not the obsolete T61String or
/// UniversalString. `None` if the certificate names nothing it can read, or is not DER.
pub fn certificate_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (certificate, _) = expect(certificate, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    // version [0] EXPLICIT, optional.
    let mut rest = match element(tbs)? {
        (VERSION, _, rest) => rest,
        _ => tbs,
    };
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (subject, rest) = expect(rest, SEQUENCE)?;
    // subjectPublicKeyInfo, then issuerUniqueID [1], subjectUniqueID [2], extensions [3].
    let mut rest = element(rest)?.2;
    while let Some((tag, contents, next)) = element(rest) {
        if tag == EXTENSIONS {
            if let Some(name) = san_dns_name(contents) {
                return Some(name);
            }
            break;
        }
        rest = next;
    }
    common_name(subject)
}

const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
const BMP_STRING: u8 = 0x1e;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// GeneralName's dNSName: [2] IMPLICIT IA5String.
const DNS_NAME: u8 = 0x82;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The first element of `input`: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // a high tag number: none in the fields read here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None; // indefinite (not DER), too long, or truncated
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes.iter().try_fold(0usize, |len, &b| len.checked_mul(256)?.checked_add(usize::from(b)))?;
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The contents of the first element of `input` if its tag is `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match element(input)? {
        (found, contents, rest) if found == tag => Some((contents, rest)),
        _ => None,
    }
}

/// The elements of a SEQUENCE's or SET's contents, up to the first it cannot read.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, contents, rest) = element(input)?;
        input = rest;
        Some((tag, contents))
    })
}

/// The first DNS name of the subjectAltName extension in `extensions` ([3] EXPLICIT
/// Extensions).
fn san_dns_name(extensions: &[u8]) -> Option<String> {
    let (extensions, _) = expect(extensions, SEQUENCE)?;
    for (tag, extension) in elements(extensions) {
        if tag != SEQUENCE {
            continue;
        }
        let (oid, mut rest) = expect(extension, OID)?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        if let Some((BOOLEAN, _, after)) = element(rest) {
            rest = after; // critical
        }
        let (value, _) = expect(rest, OCTET_STRING)?;
        let (names, _) = expect(value, SEQUENCE)?;
        return elements(names)
            .find(|&(tag, _)| tag == DNS_NAME)
            .and_then(|(_, name)| std::str::from_utf8(name).ok())
            .filter(|name| name.is_ascii())
            .map(str::to_owned);
    }
    None
}

/// The first common name in a subject (a Name: RDNs of attribute type and value).
fn common_name(subject: &[u8]) -> Option<String> {
    elements(subject)
        .filter(|&(tag, _)| tag == SET)
        .flat_map(|(_, rdn)| elements(rdn))
        .filter(|&(tag, _)| tag == SEQUENCE)
        .find_map(|(_, attribute)| {
            let (oid, rest) = expect(attribute, OID)?;
            if oid != COMMON_NAME {
                return None;
            }
            let (tag, value, _) = element(rest)?;
            string(tag, value)
        })
}

/// A directory string's text.
fn string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        UTF8_STRING => std::str::from_utf8(value).ok().map(str::to_owned),
        PRINTABLE_STRING | IA5_STRING => value.is_ascii().then(|| value.iter().map(|&b| char::from(b)).collect()),
        BMP_STRING if value.len().is_multiple_of(2) => {
            let units = value.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn certificate(sans: &[&str], cn: Option<&str>) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("valid names");
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::OrganizationName, "tidl");
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let key = KeyPair::generate().expect("a key");
        params.self_signed(&key).expect("a certificate").der().clone()
    }

    #[test]
    fn the_first_dns_subject_alt_name_is_the_name() {
        let cert = certificate(&["127.0.0.1", "alice.example", "bob.example"], Some("Carol"));
        assert_eq!(certificate_name(&cert).as_deref(), Some("alice.example"));
    }

    #[test]
    fn without_a_dns_name_the_common_name_is_the_name() {
        assert_eq!(certificate_name(&certificate(&[], Some("Carol Ünicode"))).as_deref(), Some("Carol Ünicode"));
        assert_eq!(certificate_name(&certificate(&["10.0.0.1"], Some("Dave"))).as_deref(), Some("Dave"));
        assert_eq!(certificate_name(&certificate(&["10.0.0.1"], None)), None);
    }

    #[test]
    fn bad_input_gives_none_and_never_panics() {
        let cert = certificate(&["alice.example"], Some("Carol"));
        for len in 0..cert.len() {
            let _ = certificate_name(&CertificateDer::from(&cert[..len]));
        }
        let mut bytes = cert.to_vec();
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                bytes[i] ^= flip;
                let _ = certificate_name(&CertificateDer::from(&bytes[..]));
                bytes[i] ^= flip;
            }
        }
        assert_eq!(certificate_name(&CertificateDer::from(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..])), None);
        assert_eq!(certificate_name(&CertificateDer::from(&[0x30, 0x80][..])), None);
    }

    #[test]
    fn bmp_strings_are_read() {
        assert_eq!(string(BMP_STRING, &[0, b'h', 0, b'i']).as_deref(), Some("hi"));
        assert_eq!(string(BMP_STRING, &[0, b'h', 0]), None);
        assert_eq!(string(PRINTABLE_STRING, &[0xc3, 0xa9]), None);
    }
}
