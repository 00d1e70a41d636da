//! [`Metadata`]: key/value pairs a call carries besides its argument (credentials, a trace
//! context, a tenant), set by the caller and read by the handler through
//! [`Context::metadata`](crate::Context::metadata).

use bytes::Bytes;
use std::fmt;

/// Key/value pairs sent with a call: keys are text, values are bytes (text or binary). Keys are
/// compared exactly; a key may appear more than once, in the order it was added. A call carries
/// at most 256 entries (and at most `max_metadata_bytes` of keys and values).
///
/// ```
/// use tidl_runtime::Metadata;
/// let mut metadata = Metadata::new();
/// metadata.insert("authorization", "Bearer s3cret");
/// metadata.insert("trace-bin", vec![0u8, 1, 2]);
/// assert_eq!(metadata.get_str("authorization"), Some("Bearer s3cret"));
/// assert_eq!(metadata.get("trace-bin"), Some(&[0u8, 1, 2][..]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Bytes)>,
}

impl Metadata {
    /// No metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Adds `key` with `value` (after any entries already there, including ones with this key).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Bytes>) -> &mut Metadata {
        self.entries.push((key.into(), value.into()));
        self
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// The first value of `key`, if it is UTF-8 text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// Removes every entry of `key`.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes the entries take: their keys and values (what the size limits count).
    pub fn size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The entries of `self`, then those of `more`.
    pub(crate) fn merged(&self, more: &Metadata) -> Metadata {
        if more.is_empty() {
            return self.clone();
        }
        let mut entries = self.entries.clone();
        entries.extend(more.entries.iter().cloned());
        Metadata { entries }
    }

    /// The entries as the wire header borrows them.
    pub(crate) fn wire(&self) -> crate::wire::MetadataEntries<'_> {
        crate::wire::MetadataEntries(
            self.entries.iter().map(|(k, v)| (std::borrow::Cow::Borrowed(k.as_str()), v.as_ref())).collect(),
        )
    }

    /// Metadata read from the wire.
    pub(crate) fn from_wire(entries: crate::wire::MetadataEntries<'_>) -> Metadata {
        Metadata { entries: entries.0.into_iter().map(|(k, v)| (k.into_owned(), Bytes::copy_from_slice(v))).collect() }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.entries {
            match std::str::from_utf8(v) {
                Ok(text) => map.entry(k, &text),
                Err(_) => map.entry(k, &format_args!("{} bytes", v.len())),
            };
        }
        map.finish()
    }
}
