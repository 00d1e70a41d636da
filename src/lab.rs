//! The `Lab` service of the examples beyond the seed (`examples/lab.tidl`): a handler that reads
//! who is calling, one that computes without awaiting and stays cancellable, and one that fails
//! with a status.

use std::time::{Duration, Instant};
use tidl_runtime::{Context, Error, Sink, Source, Status};

/// The code generated from `examples/lab.tidl`.
pub mod generated {
    tidl_runtime::include_tidl!("lab");
}

pub use generated::{LabClient, LabClientExt, LabServer};

/// The `Lab` service.
#[derive(Clone, Debug, Default)]
pub struct Lab;

impl generated::Lab for Lab {
    async fn whoami(&self, ctx: Context, (): ()) -> Result<String, Error> {
        let peer = ctx.peer();
        #[cfg(unix)]
        if let Some(creds) = peer.unix_credentials() {
            let pid = creds.pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string());
            return Ok(format!("a process on a Unix socket: uid {}, gid {}, pid {pid}", creds.uid, creds.gid));
        }
        Ok(peer.to_string())
    }

    async fn crunch(&self, ctx: Context, n: u64) -> Result<u64, Error> {
        let started = Instant::now();
        let mut progress = Progress { done: 0, finished: false, started };
        let mut sum = 0u64;
        for i in 0..n {
            progress.done = i;
            // The documented way for a handler that computes: a checkpoint every so often. It
            // returns `Err(Cancelled)` once the caller has cancelled, which `?` passes on.
            if i % 100_000 == 0 {
                ctx.checkpoint().await?;
            }
            sum = sum.wrapping_add(i.wrapping_mul(i));
        }
        progress.finished = true;
        Ok(sum)
    }

    async fn watch(&self, _ctx: Context, period_ms: u32, mut out: Sink<generated::Event>) -> Result<(), Error> {
        let started = Instant::now();
        eprintln!("server: watch started");
        // Dropped when the handler ends, however it ends: dropping the stream on the client
        // cancels the call, and the server drops this future.
        let _stop = Announce(started);
        let mut ticks = tokio::time::interval(Duration::from_millis(u64::from(period_ms.max(1))));
        for seq in 1.. {
            ticks.tick().await;
            let at_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            eprintln!("server: sending event {seq}");
            out.send(generated::Event { seq, at_ms }).await?;
        }
        Ok(())
    }

    async fn sum(&self, _ctx: Context, mut items: Source<u64>) -> Result<u64, Error> {
        let mut sum = 0u64;
        while let Some(n) = items.next().await {
            sum = sum.wrapping_add(n?);
        }
        Ok(sum)
    }

    async fn positive(&self, _ctx: Context, n: u64) -> Result<u64, Error> {
        if n == 0 {
            return Err(Status::invalid_argument("`positive` takes a number above zero").into());
        }
        Ok(n)
    }
}

/// Prints, when a `crunch` handler ends however it ends, how far it got: the server's side of the
/// story in the examples.
struct Progress {
    done: u64,
    finished: bool,
    started: Instant,
}

impl Drop for Progress {
    fn drop(&mut self) {
        let how = if self.finished { "finished" } else { "stopped" };
        eprintln!("server: crunch {how} after {} numbers, {:?} after it started", self.done, self.started.elapsed());
    }
}

/// Prints when the `watch` handler stops.
struct Announce(Instant);

impl Drop for Announce {
    fn drop(&mut self) {
        eprintln!("server: watch stopped, {:?} after it started", self.0.elapsed());
    }
}
