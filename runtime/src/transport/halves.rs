//! A connection's stream split into its reader's half and its writer's half.
//!
//! `tokio::io::split` works for any stream, but its two halves share one lock, held across each
//! read and write system call: a reader that wants to read while the writer is in `sendto`
//! (which, on loopback, also runs the receiving side's network stack) waits for it, often asleep
//! on a futex. A TCP or Unix socket can be read and written at once, so it splits into owned
//! halves with no lock between them; any other stream (TLS, an in-process pipe) shares its lock.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The reader's half of a connection's stream.
pub(crate) enum ReadHalf<S> {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedReadHalf),
    Shared(tokio::io::ReadHalf<S>),
}

/// The writer's half of a connection's stream.
pub(crate) enum WriteHalf<S> {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    #[cfg(unix)]
    Unix(tokio::net::unix::OwnedWriteHalf),
    Shared(tokio::io::WriteHalf<S>),
}

/// Splits `io`: a TCP or Unix socket into halves that share no lock, anything else with
/// `tokio::io::split`.
pub(crate) fn split<S: AsyncRead + AsyncWrite + Send + 'static>(io: S) -> (ReadHalf<S>, WriteHalf<S>) {
    let mut io = Some(io);
    if let Some(tcp) = (&mut io as &mut dyn Any).downcast_mut::<Option<TcpStream>>().and_then(Option::take) {
        let (read, write) = tcp.into_split();
        return (ReadHalf::Tcp(read), WriteHalf::Tcp(write));
    }
    #[cfg(unix)]
    if let Some(unix) =
        (&mut io as &mut dyn Any).downcast_mut::<Option<tokio::net::UnixStream>>().and_then(Option::take)
    {
        let (read, write) = unix.into_split();
        return (ReadHalf::Unix(read), WriteHalf::Unix(write));
    }
    match io {
        Some(io) => {
            let (read, write) = tokio::io::split(io);
            (ReadHalf::Shared(read), WriteHalf::Shared(write))
        }
        // Taken above only when the stream was a socket, which returned.
        None => unreachable!("the stream is taken only by a split that returns"),
    }
}

/// Runs `$body` with `$half` bound to whichever stream a half holds.
macro_rules! on_half {
    ($value:expr, $kind:ident, $half:ident => $body:expr) => {
        match $value {
            $kind::Tcp($half) => $body,
            #[cfg(unix)]
            $kind::Unix($half) => $body,
            $kind::Shared($half) => $body,
        }
    };
}

impl<S: AsyncRead> AsyncRead for ReadHalf<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        on_half!(self.get_mut(), ReadHalf, read => Pin::new(read).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite> AsyncWrite for WriteHalf<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        on_half!(self.get_mut(), WriteHalf, write => Pin::new(write).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_half!(self.get_mut(), WriteHalf, write => Pin::new(write).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        on_half!(self, WriteHalf, write => write.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_half!(self.get_mut(), WriteHalf, write => Pin::new(write).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_half!(self.get_mut(), WriteHalf, write => Pin::new(write).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Reads from `read` while `write` writes, each in a task of its own, and checks both ways.
    async fn both_ways<S: AsyncRead + AsyncWrite + Send + 'static>(
        (mut read, mut write): (ReadHalf<S>, WriteHalf<S>),
        mut peer: impl AsyncRead + AsyncWrite + Unpin,
    ) {
        let reading = tokio::spawn(async move {
            let mut got = [0u8; 5];
            read.read_exact(&mut got).await.map(|_| got)
        });
        write.write_all(b"ping").await.expect("writing through the write half");
        write.shutdown().await.expect("shutting the write half down");
        let mut heard = Vec::new();
        peer.read_to_end(&mut heard).await.expect("the peer reads up to the shutdown");
        assert_eq!(heard, b"ping");
        peer.write_all(b"pong!").await.expect("the peer answers");
        let got = reading.await.expect("the reading task").expect("reading through the read half");
        assert_eq!(&got, b"pong!", "the read half still reads after the write half shut down");
    }

    #[tokio::test]
    async fn a_tcp_stream_splits_into_owned_halves_that_read_and_write_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a listener");
        let addr = listener.local_addr().expect("its address");
        let (stream, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let halves = split(stream.expect("connecting"));
        assert!(matches!(halves, (ReadHalf::Tcp(_), WriteHalf::Tcp(_))), "no lock between a socket's halves");
        both_ways(halves, accepted.expect("accepting").0).await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_unix_stream_splits_into_owned_halves() {
        let (ours, theirs) = tokio::net::UnixStream::pair().expect("a socket pair");
        let halves = split(ours);
        assert!(matches!(halves, (ReadHalf::Unix(_), WriteHalf::Unix(_))));
        both_ways(halves, theirs).await;
    }

    #[tokio::test]
    async fn any_other_stream_shares_tokios_split() {
        let (ours, theirs) = tokio::io::duplex(64);
        let halves = split(ours);
        assert!(matches!(halves, (ReadHalf::Shared(_), WriteHalf::Shared(_))));
        both_ways(halves, theirs).await;
    }
}
