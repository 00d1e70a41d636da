//! Buffers for large frames, reused from one frame to the next.
//!
//! A frame of at least [`LARGE_FRAME`] bytes is read straight into a buffer of its own rather than
//! the shared read buffer, so the read buffer is not held while the frame's value is decoded; and
//! that buffer comes from a small pool, so a large frame does not land in freshly allocated memory
//! (hundreds of page faults per megabyte). The pool is emptied when the connection goes quiet.

use crate::sync::lock;
use bytes::BytesMut;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Frames at least this long are read into a buffer of their own.
pub(crate) const LARGE_FRAME: usize = 64 * 1024;

/// Room a large frame's buffer gets before its bytes arrive, at most: a header alone, which
/// may claim up to the frame length limit, does not make the reader allocate the whole claim.
/// The buffer then grows fourfold as the frame's bytes fill it (a reused buffer usually has the
/// room).
const FIRST_ROOM: usize = 256 * 1024;

/// Reads into the large frame being read, if there is one (no further than its end), else into
/// the read buffer.
pub(crate) async fn read_some<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut BytesMut,
    large: &mut Option<(Vec<u8>, usize)>,
) -> std::io::Result<usize> {
    match large {
        Some((body, len)) => {
            let want = *len - body.len();
            if body.capacity() == body.len() {
                // Room grows with what arrives (fourfold), not with what the header claimed;
                // the last step takes the rest at once rather than leave less than a first room.
                // (A 1 MiB frame in a fresh buffer moves once, 256 KiB of it.)
                let grow = 3 * body.len().max(FIRST_ROOM);
                body.reserve_exact(if want < grow + FIRST_ROOM { want } else { grow });
            }
            let mut rest = bytes::BufMut::limit(&mut *body, want);
            read.read_buf(&mut rest).await
        }
        None => read.read_buf(buf).await,
    }
}

/// A few buffers for large replies, reused from one reply to the next so a large frame does not
/// land in freshly allocated memory (hundreds of page faults per megabyte). Emptied when the
/// connection goes quiet.
#[derive(Debug, Default)]
pub(crate) struct LargeBuffers(Mutex<Vec<Vec<u8>>>);

impl LargeBuffers {
    /// Buffers kept, and the largest one kept.
    const KEPT: usize = 4;
    const LARGEST: usize = 4 * 1024 * 1024;

    /// An empty buffer for a frame of `len` bytes, with room for them or [`FIRST_ROOM`] of them.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut body = lock(&self.0).pop().unwrap_or_default();
        body.clear();
        body.reserve_exact(len.min(FIRST_ROOM));
        body
    }

    fn give_back(&self, body: Vec<u8>) {
        let mut kept = lock(&self.0);
        if kept.len() < Self::KEPT && body.capacity() <= Self::LARGEST {
            kept.push(body);
        }
    }

    pub(crate) fn clear(&self) {
        lock(&self.0).clear();
    }

    /// How many buffers the pool keeps now.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        lock(&self.0).len()
    }
}

/// A large frame's buffer, as the owner of the frame's `Bytes`: back to the pool when the last
/// slice of it is dropped.
pub(crate) struct Pooled {
    pub(crate) body: Vec<u8>,
    pub(crate) pool: std::sync::Weak<LargeBuffers>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    #[test]
    fn a_large_reply_buffer_returns_to_the_pool_when_its_last_slice_is_dropped() {
        let pool = Arc::new(LargeBuffers::default());
        let mut body = pool.take(100_000);
        body.resize(100_000, 7);
        let address = body.as_ptr();
        let frame = Bytes::from_owner(Pooled { body, pool: Arc::downgrade(&pool) });
        let slice = frame.slice(10..20);
        drop(frame);
        assert!(pool.0.lock().expect("lock").is_empty(), "still held by a slice");
        drop(slice);
        let again = pool.take(50_000);
        assert_eq!(again.as_ptr(), address, "the same memory is used for the next large reply");
        assert!(again.is_empty());
    }

    #[tokio::test]
    async fn a_large_frame_gets_room_as_its_bytes_arrive_not_as_its_header_claims() {
        let pool = LargeBuffers::default();
        let claimed = 8 * 1024 * 1024;
        let body = pool.take(claimed);
        assert!(body.capacity() <= FIRST_ROOM, "a header claiming 8 MiB reserved {}", body.capacity());
        // 1 MiB arrives in pieces: all of it is read, into a buffer at most four times its size.
        let sent: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        let (mut near, mut far) = tokio::io::duplex(64 * 1024);
        let writing = tokio::spawn({
            let sent = sent.clone();
            async move { tokio::io::AsyncWriteExt::write_all(&mut far, &sent).await }
        });
        let mut large = Some((body, claimed));
        let mut buf = BytesMut::new();
        let mut read = 0;
        while read < sent.len() {
            read += read_some(&mut near, &mut buf, &mut large).await.expect("reading");
        }
        writing.await.expect("the writer").expect("writing");
        let (body, _) = large.expect("still the large frame");
        assert_eq!(body, sent);
        assert!(body.capacity() <= 4 * sent.len(), "1 MiB read into {} bytes of room", body.capacity());
        assert!(buf.is_empty(), "nothing went to the read buffer");
        // A frame shorter than the first room gets exactly its room.
        assert_eq!(pool.take(100_000).capacity(), 100_000);
    }

    #[test]
    fn the_pool_keeps_a_few_buffers_of_bounded_size_and_empties_on_request() {
        let pool = LargeBuffers::default();
        for _ in 0..LargeBuffers::KEPT + 3 {
            pool.give_back(Vec::with_capacity(1024));
        }
        pool.give_back(Vec::with_capacity(LargeBuffers::LARGEST + 1));
        assert_eq!(pool.0.lock().expect("lock").len(), LargeBuffers::KEPT);
        assert!(pool.0.lock().expect("lock").iter().all(|b| b.capacity() <= LargeBuffers::LARGEST));
        pool.clear();
        assert!(pool.0.lock().expect("lock").is_empty());
    }
}
