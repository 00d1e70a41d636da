//! Fuzzes everything the runtime does with a peer's bytes before a handler sees them: the hello
//! (as the server checks a client's, and as the client checks the server's), the `FrameDecoder`
//! splitting a stream delivered in arbitrary chunks (with and without the read loop's large-frame
//! path), the header of every frame, and the payloads, decoded through the strict codec.
//!
//! It fails on a panic, a stack overflow or a hang, and on any of:
//! - a frame longer than the limit, or a stream that splits differently in one chunk and in many;
//! - a decoder buffer that grows past what the input and the frame limit account for;
//! - a header that does not parse to the same header once encoded again, or whose payload is not
//!   the rest of the frame;
//! - a payload decoding that allocates more than a small multiple of its bytes, or a decoded value
//!   that does not encode and decode to itself.
//!
//! Input: 4 bytes of settings (frame limit, chunk sizes, large-frame threshold), the 8-byte hello,
//! then the frame stream. Run it with `cargo fuzz run wire` from `runtime/` (see fuzz/README.md).

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tidl_runtime::__fuzz;
use tidl_runtime::bytes::{Bytes, BytesMut};
use tidl_runtime::serde::de::DeserializeOwned;
use tidl_runtime::serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Allocation accounting: the peak of live heap bytes while `measure` runs.

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static MEASURING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    if MEASURING.load(Ordering::Relaxed) {
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result and the most heap it held at once beyond what was live before.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    MEASURING.store(true, Ordering::Relaxed);
    let r = f();
    MEASURING.store(false, Ordering::Relaxed);
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

// ---------------------------------------------------------------------------------------------
// Payload types, as generated code would declare them (recursion boxed as the compiler does).

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tidl_runtime::serde")]
struct Order {
    id: u64,
    name: String,
    labels: Vec<String>,
    digest: Option<[u8; 4]>,
    body: Bytes,
    lines: HashMap<String, Vec<i32>>,
    state: State,
    tree: Option<Box<Tree>>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tidl_runtime::serde")]
enum State {
    Open,
    Paid(u64, Option<String>),
    Shipped { carrier: String, at: Option<i64>, flag: bool },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tidl_runtime::serde")]
struct Tree {
    value: i32,
    left: Option<Box<Tree>>,
    children: Vec<Tree>,
}

/// Decodes `bytes` as `T`; checks what it allocated, and that a value decoded re-encodes to
/// something that decodes to the same value.
fn payload_as<T: DeserializeOwned + Serialize + PartialEq + Debug>(bytes: &[u8]) {
    let (decoded, peak) = measure(|| __fuzz::decode::<T>(bytes));
    // Decoded values take more room than their encoding (a one-byte empty string is a 24-byte
    // `String`, doubled while its list grows; a map reserves buckets for as many entries as the
    // input has bytes), but never more than a fixed multiple of it.
    let allowed = 128 * bytes.len() + 4096;
    assert!(
        peak <= allowed,
        "decoding {} bytes as {} held {peak} bytes of heap (allowed {allowed})",
        bytes.len(),
        std::any::type_name::<T>()
    );
    if let Ok(value) = decoded {
        let encoded = __fuzz::encode(&value).expect("a decoded value encodes");
        let again = __fuzz::decode::<T>(&encoded).expect("a re-encoded value decodes");
        assert_eq!(again, value, "a decoded value round-trips");
    }
}

fn payloads(bytes: &[u8]) {
    payload_as::<String>(bytes);
    payload_as::<Vec<u8>>(bytes);
    payload_as::<Option<u64>>(bytes);
    payload_as::<Vec<String>>(bytes);
    payload_as::<Order>(bytes);
    payload_as::<Tree>(bytes);
}

// ---------------------------------------------------------------------------------------------
// The stream.

/// How a stream was split: its frames, and whether it ended with a frame over the limit.
#[derive(Debug, PartialEq)]
struct Split {
    frames: Vec<Bytes>,
    too_large: bool,
}

/// Chunk lengths derived from the input: a small xorshift generator seeded by a settings byte and
/// the stream's length, with chunks of 1 to `max` bytes.
struct Chunks {
    state: u32,
    max: usize,
}

impl Chunks {
    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % self.max
    }
}

/// The most the read buffer may hold: the stream, or a frame the decoder reserved room for,
/// with room for `BytesMut`'s doubling.
fn capacity_bound(stream: &[u8], max_frame_len: usize) -> usize {
    2 * stream.len().max(max_frame_len + 4) + 64
}

/// Splits `stream` as the read loop does: chunks appended to the read buffer, frames split off it,
/// and (with `large`) frames of at least that many bytes read into a buffer of their own.
fn split(stream: &[u8], max_frame_len: usize, chunks: &mut dyn FnMut() -> usize, large: Option<usize>) -> Split {
    let mut decoder = match large {
        Some(threshold) => __fuzz::decoder_with_large_frames(max_frame_len, threshold),
        None => tidl_runtime::FrameDecoder::new(max_frame_len),
    };
    let bound = capacity_bound(stream, max_frame_len);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    // A large frame being read: its body so far, and its length.
    let mut body: Option<(Vec<u8>, usize)> = None;
    let mut rest = stream;
    loop {
        if let Some((b, len)) = &body
            && b.len() == *len
        {
            let (b, _) = body.take().expect("checked above");
            frames.push(Bytes::from(b));
        }
        while body.is_none() {
            let (next, peak) = measure(|| __fuzz::next_frame(&mut decoder, &mut buf));
            assert!(peak <= bound, "one decode call allocated {peak} bytes (bound {bound})");
            assert!(buf.capacity() <= bound, "read buffer capacity {} over {bound}", buf.capacity());
            match next {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame_len, "a frame of {} bytes, limit {max_frame_len}", frame.len());
                    frames.push(frame.freeze());
                }
                Ok(None) => {
                    if let Some(len) = __fuzz::take_large(&mut decoder) {
                        let threshold = large.expect("only a large-frame decoder leaves frames");
                        assert!(len >= threshold && len <= max_frame_len, "large frame of {len} bytes");
                        assert!(buf.len() < len, "the read buffer holds more than the large frame");
                        assert!(__fuzz::is_between_frames(&decoder), "take_large resets the decoder");
                        let mut b = Vec::with_capacity(len);
                        b.extend_from_slice(&buf);
                        buf.clear();
                        body = Some((b, len));
                    }
                    break;
                }
                Err(_) => return Split { frames, too_large: true },
            }
        }
        if rest.is_empty() {
            break;
        }
        let mut n = chunks().min(rest.len());
        // The read loop reads no further than a large frame's end.
        if let Some((b, len)) = &body {
            n = n.min(*len - b.len());
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        match &mut body {
            Some((b, _)) => b.extend_from_slice(chunk),
            None => buf.extend_from_slice(chunk),
        }
    }
    if let Some((b, len)) = body
        && b.len() == len
    {
        frames.push(Bytes::from(b));
    }
    Split { frames, too_large: false }
}

fn check_frame(frame: &Bytes) {
    match __fuzz::parse_frame(frame) {
        Ok(parsed) => {
            let header_len = frame.len() - parsed.payload.len();
            assert_eq!(&frame[header_len..], &parsed.payload[..], "the payload is the rest of the frame");
            if !parsed.payload.is_empty() {
                assert_eq!(parsed.payload.as_ptr(), frame[header_len..].as_ptr(), "the payload is not copied");
            }
            assert!(parsed.reencoded.len() <= header_len, "a header re-encodes longer than it was sent");
            let again = __fuzz::parse_frame(&parsed.reencoded).expect("a re-encoded header parses");
            assert_eq!(again.header, parsed.header, "a header round-trips");
            assert!(again.payload.is_empty());
            if !parsed.payload.is_empty() {
                payloads(&parsed.payload);
            }
        }
        Err(_) => payloads(frame),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((settings, data)) = data.split_first_chunk::<4>() else { return };
    // A limit from 1 byte to 64 KiB, so claimed lengths in the input can exceed it.
    let max_frame_len = 1 + usize::from(u16::from_le_bytes([settings[0], settings[1]]));
    let max_chunk = [1, 2, 3, 7, 16, 64, 512, 4096][usize::from(settings[2] & 7)];
    let large = match settings[2] >> 3 {
        0 => None,
        t => Some(usize::from(t) * 8),
    };
    let seed = u32::from(settings[3]) << 16 | (data.len() as u32 & 0xffff) | 1;

    let Some((hello, stream)) = data.split_first_chunk::<8>() else { return };
    let client = __fuzz::decode_client_hello(hello);
    let server = __fuzz::decode_server_hello(hello);
    if client.is_ok() {
        assert!(hello.starts_with(b"TIDL"));
    }
    if server.is_ok() {
        assert!(client.is_ok(), "the client accepts a server hello the server would refuse");
    }

    let whole = split(stream, max_frame_len, &mut || usize::MAX, None);
    let mut chunks = Chunks { state: seed, max: max_chunk };
    let chunked = split(stream, max_frame_len, &mut || chunks.next(), None);
    assert_eq!(chunked, whole, "the stream splits the same in one chunk and in chunks");
    if large.is_some() {
        let mut chunks = Chunks { state: seed, max: max_chunk };
        let read_loop = split(stream, max_frame_len, &mut || chunks.next(), large);
        assert_eq!(read_loop, whole, "large frames read on their own split the same");
    }
    for frame in &whole.frames {
        check_frame(frame);
    }
});
