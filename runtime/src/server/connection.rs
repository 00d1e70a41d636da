//! Serving one connection: the handshake, the server's side of the read loop, and the teardown
//! that stops every call the connection left running.

use super::Inner;
use super::dispatch::Incoming;
use super::in_flight::{InFlight, Refused};
use crate::conn::outbox::Outbox;
use crate::conn::reader::{self, Ended, Reader, Step};
use crate::conn::stream::{Overrun, Stream};
use crate::conn::{Interrupt, Link, Settings, Side};
use crate::deadline;
use crate::error::{Code, Status};
use crate::metadata::Metadata;
use crate::observe::{self, Asked};
use crate::sched::watchdog::Rescue;
use crate::schema::{self, Shape};
use crate::sync::lock;
use crate::transport::Peer;
use crate::wire::handshake::{self, Answer, HelloError, VERSION_MINOR};
use crate::wire::{Header, Outcome};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// The longest schema descriptor a server parses and compares: a real method's takes tens to
/// thousands of bytes, and parsing one allocates per byte.
const MAX_DESCRIPTOR_LEN: usize = 64 * 1024;

/// The protocol minor version that added `Outcome::Refused`.
const REFUSED_MINOR: u8 = 3;

/// How long a closing connection waits for its cancelled handlers to queue their last statuses.
const HANDLER_STOP_WAIT: Duration = Duration::from_secs(1);

/// The server's side of one connection.
pub(crate) struct Conn {
    pub(super) server: Arc<Inner>,
    pub(super) link: Link,
    pub(super) in_flight: InFlight,
    /// Fires when the connection ends or the server stops; every call in flight is then
    /// cancelled.
    token: CancellationToken,
    /// The client, in messages.
    pub(super) name: String,
    /// Set once this connection was told the server is shutting down.
    goaway_sent: AtomicBool,
    /// Set once the client answered the ping sent right after the GoAway: it has read the
    /// GoAway, so every request it sent before is here, and it sends no more.
    goaway_seen: AtomicBool,
    /// The protocol minor version the connection speaks.
    pub(super) minor: u8,
    /// When the connection is told to go away for its age ([`ServerConfig::max_connection_age`](super::ServerConfig::max_connection_age)), and when its calls are then
    /// cancelled.
    aged: Option<(tokio::time::Instant, tokio::time::Instant)>,
    /// Set when the GoAway was sent for the connection's age (not for a shutdown, whose own
    /// grace then applies).
    went_away_aged: AtomicBool,
    /// Cancels received for calls that were not running (they had usually just finished); only
    /// the first is logged.
    unknown_cancels: AtomicU64,
    /// The methods whose calls this connection refuses, as `service.method`, with why: the
    /// client's schema (its `Bind`) cannot be read by this server's or read its replies.
    refused: Mutex<HashMap<String, String>>,
    /// Whether `refused` has any entry (checked on every request without the lock).
    any_refused: AtomicBool,
}

/// Serves one connection: the handshake, then frames until it closes.
pub(super) async fn serve<R, W>(server: Arc<Inner>, mut read: R, write: W, peer: Peer, permit: OwnedSemaphorePermit)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let name = match peer {
        Peer::Unknown => "a client".to_owned(),
        ref peer => peer.to_string(),
    };
    let config = &server.config;
    let hello = match tokio::time::timeout(config.handshake_timeout, reader::read_hello(&mut read)).await {
        Err(_) => {
            tracing::info!(
                peer = %name,
                "closed a connection that sent no tidl handshake within {:?} (ServerConfig::handshake_timeout)",
                config.handshake_timeout
            );
            return;
        }
        Ok(Err(e)) => {
            tracing::info!(peer = %name, "a connection closed before completing the tidl handshake: {e}");
            return;
        }
        Ok(Ok(hello)) => hello,
    };
    let mut minor = VERSION_MINOR;
    let answer = match handshake::decode(hello) {
        Ok(hello) => {
            minor = hello.minor.min(VERSION_MINOR);
            Answer::Accepted
        }
        Err(e @ HelloError::NotTidl(_)) => {
            tracing::info!(peer = %name, "closed a connection: {e}");
            return;
        }
        Err(e) => {
            tracing::info!(peer = %name, "refused a connection: {e}");
            Answer::UnsupportedVersion
        }
    };

    let settings = Settings {
        max_frame_len: config.max_frame_len,
        keepalive_interval: config.keepalive_interval,
        keepalive_timeout: config.keepalive_timeout,
        // Requests come when clients please: a server's reader does not poll for them.
        busy_poll: Duration::ZERO,
    };
    let conn = Arc::new(Conn {
        link: Link {
            outbox: Outbox::new(config.max_frame_len, config.max_queued_reply_bytes, crate::observe::Side::Server)
                .stalls_after(config.keepalive_interval.map(|interval| interval + config.keepalive_timeout)),
            peer: Arc::new(peer),
            settings,
        },
        in_flight: InFlight::default(),
        token: server.stopping.child_token(),
        server: server.clone(),
        name,
        goaway_sent: AtomicBool::new(false),
        goaway_seen: AtomicBool::new(false),
        went_away_aged: AtomicBool::new(false),
        aged: config.max_connection_age.map(|age| {
            let at = tokio::time::Instant::now() + crate::jitter::jittered(age, 0.1);
            (at, at + config.max_connection_age_grace)
        }),
        minor,
        unknown_cancels: AtomicU64::new(0),
        refused: Mutex::new(HashMap::new()),
        any_refused: AtomicBool::new(false),
    });
    // The server answers with the version the connection speaks.
    let reply_hello = handshake::encode_minor(answer, minor);
    let _ = conn.link.outbox.push(|buf, _| {
        buf.extend_from_slice(&reply_hello);
        Ok(())
    });
    server.tracker.spawn({
        let conn = conn.clone();
        async move {
            let busy = || conn.in_flight.len() > 1;
            if let Err(e) = conn.link.outbox.run_writer(write, CancellationToken::new(), busy).await {
                tracing::debug!(peer = %conn.name, error = %e, "writing to a tidl client failed");
                // The reader notices too; cancel the calls now rather than at its next read.
                conn.token.cancel();
            }
        }
    });
    if answer == Answer::Accepted {
        let reading = Arc::new(Reading {
            state: Mutex::new(Turn {
                reader: Some(Reader::new(read, &conn)),
                generation: 0,
                running: false,
                permit: Some(permit),
            }),
            conn,
            closed: CancellationToken::new(),
        });
        // Reads, unless the task was stuck running a read's handlers and handed reading over: the
        // task that reads last closes the connection; this one (which `serve_connection` awaits)
        // returns once it has.
        match reading.run(0).await {
            Some(ended) => reading.close(ended).await,
            None => reading.closed.cancelled().await,
        }
    } else {
        conn.close(None).await;
    }
}

/// A connection's read loop, which the task running it hands to a new task when it gets stuck
/// in a first poll of a batch it read (`sched::batch`).
struct Reading<R> {
    conn: Arc<Conn>,
    state: Mutex<Turn<R>>,
    /// Fires once the connection is closed.
    closed: CancellationToken,
}

/// Whose turn it is to read.
struct Turn<R> {
    /// The loop's state: taken by the task reading, put back while it runs a batch.
    reader: Option<Reader<R>>,
    /// Bumped at each handoff: a task of an older generation stops reading.
    generation: u64,
    /// Whether the reading task is running a batch it read (and so may be handed off).
    running: bool,
    /// The connection's place under `ServerConfig::max_connections`, given back as it closes
    /// (not when the last task stuck in a handler's first poll lets go of the `Reading`).
    permit: Option<OwnedSemaphorePermit>,
}

impl<R: AsyncRead + Unpin + Send + 'static> Reading<R> {
    /// Closes the connection after reading `ended`, gives its place back, and says so.
    async fn close(&self, ended: Ended) {
        self.conn.close(Some(ended)).await;
        let permit = lock(&self.state).permit.take();
        drop(permit);
        self.closed.cancel();
    }

    /// Reads as generation `generation` until reading ends (how) or is handed over (`None`).
    /// One task at a time reads: the reader's state is either here or with the task of the
    /// newest generation.
    async fn run(self: &Arc<Self>, generation: u64) -> Option<Ended> {
        loop {
            let mut reader = {
                let mut turn = lock(&self.state);
                if turn.generation != generation {
                    return None;
                }
                turn.reader.take()?
            };
            match reader.next(&self.conn).await {
                Step::Ended(ended) => return Some(ended),
                Step::Batch(ready) => {
                    {
                        let mut turn = lock(&self.state);
                        turn.reader = Some(reader);
                        turn.running = true;
                    }
                    ready.run_here(self.clone());
                    {
                        let mut turn = lock(&self.state);
                        if turn.generation != generation {
                            return None;
                        }
                        turn.running = false;
                    }
                    // A read's batches share this task's cooperative budget: once it is spent
                    // (and the rest of the batch went on in a task of its own), other tasks run
                    // before the next batch does, rather than every later batch of the read
                    // going on in a task of its own.
                    tokio::task::coop::consume_budget().await;
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Rescue for Reading<R> {
    /// Hands reading over if the reading task is running a batch; a batch that a rescue drains
    /// elsewhere may call this later, when the reader is reading (and then nothing happens), or
    /// running another batch (and then reading moves to a new task needlessly, but safely).
    fn rescue(self: Arc<Self>, runtime: &tokio::runtime::Handle) {
        let generation = {
            let mut turn = lock(&self.state);
            if !turn.running {
                return;
            }
            turn.running = false;
            turn.generation += 1;
            turn.generation
        };
        tracing::debug!(peer = %self.conn.name, "a handler computes in its first poll: reading its connection goes on in a new task");
        // The replies the stuck task held go out now, not when the new task has read.
        self.conn.link.outbox.unhold();
        let tracker = self.conn.server.tracker.clone();
        drop(runtime.spawn(tracker.track_future(async move {
            if let Some(ended) = self.run(generation).await {
                self.close(ended).await;
            }
        })));
    }
}

/// Refuses a connection because the server is at `ServerConfig::max_connections`: reads the
/// client's hello, answers with a "busy" hello, and closes.
pub(super) async fn refuse_busy<R, W>(mut read: R, mut write: W, peer: Peer, limit: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    tracing::info!(%peer, "refused a connection: the server already has {limit} connections (ServerConfig::max_connections)");
    let exchange = async {
        reader::read_hello(&mut read).await?;
        write.write_all(&handshake::encode(Answer::Busy)).await?;
        write.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), exchange).await;
}

impl Conn {
    /// Ends the connection after reading ended (`None`: the handshake refused it): tells a
    /// client that broke the protocol why, stops every call still running, gives the handlers a
    /// moment to queue their last statuses (when the server is stopping, clients are told so),
    /// then closes.
    async fn close(&self, ended: Option<Ended>) {
        if let Some(status) = ended.and_then(|ended| self.why(ended)) {
            tracing::warn!(peer = %self.name, "closed a tidl connection: {}", status.message());
            let goaway = Header::GoAway { code: status.code().as_u16(), message: status.message().into() };
            let _ = self.link.outbox.push_header(&goaway);
        }
        self.token.cancel();
        self.in_flight.cancel_all();
        let _ = tokio::time::timeout(HANDLER_STOP_WAIT, self.in_flight.idle()).await;
        self.link.outbox.close();
    }

    /// What to tell the client about why reading ended: `None` if it closed the connection, or
    /// the status if it broke the protocol.
    fn why(&self, ended: Ended) -> Option<Status> {
        match ended {
            Ended::Closed | Ended::Stopped => None,
            Ended::ClosedMidFrame => {
                tracing::info!(peer = %self.name, "a client closed its connection in the middle of a frame");
                None
            }
            Ended::Io(e) => {
                tracing::info!(peer = %self.name, "reading from a tidl client failed: {e}");
                None
            }
            Ended::TooLarge(e) => Some(Status::resource_exhausted(format!(
                "{e}; raise ServerConfig::max_frame_len (and the client's) to allow it"
            ))),
            Ended::Dead(quiet) => Some(Status::unavailable(format!(
                "the client sent nothing for {quiet:?}, not even an answer to a keepalive ping \
                 (ServerConfig::keepalive_timeout)"
            ))),
            Ended::NotAFrame(e) => {
                Some(Status::invalid_argument(format!("received a frame that is not a tidl frame ({e})")))
            }
            Ended::Refused(status) => Some(status),
        }
    }

    /// Sends `status` as the outcome of call `id`.
    /// Answers call `id`, which no handler will run, with `status`, and records it as refused (a
    /// server span and metrics) under what the client `asked` for.
    pub(super) fn refuse(&self, id: u64, asked: Asked<'_>, metadata: &Metadata, status: &Status) {
        self.send_status(id, status);
        observe::ServerCall::refused(asked, &self.link.peer, metadata, status);
    }

    pub(super) fn send_status(&self, id: u64, status: &Status) {
        // A status marked unstarted (a load-shedding layer's, say) says so to a peer that can
        // hear it: the client may then send the call again, elsewhere, safely.
        let outcome = if status.is_unstarted() && self.minor >= REFUSED_MINOR {
            Outcome::Refused { code: status.code().as_u16(), message: status.message().into() }
        } else {
            Outcome::status(status)
        };
        // Fails only when the connection is closing, and then nobody is listening.
        let _ = self.link.outbox.push_header(&Header::Response { id, outcome });
    }

    fn on_request(
        self: &Arc<Self>,
        id: u64,
        service: &str,
        method: &str,
        timeout_micros: Option<u64>,
        payload: Bytes,
        metadata: Metadata,
    ) -> Result<(), Status> {
        let server = &self.server;
        if server.drained.load(Ordering::Acquire) {
            // Unstarted: sent as a refusal to a peer that can hear it, so the client may retry.
            let status = Status::unavailable("the server is shutting down and takes no new calls").unstarted();
            self.refuse(id, Asked::Named(service, method), &metadata, &status);
            return Ok(());
        }
        let Some((_, svc)) = server.services.iter().find(|(name, _)| *name == service) else {
            let message = format!("the server has no service `{service}` (it serves: {})", server.service_names);
            tracing::debug!(peer = %self.name, "call refused: {message}");
            self.refuse(id, Asked::Named(service, method), &metadata, &Status::unimplemented(message));
            return Ok(());
        };
        if self.any_refused.load(Ordering::Acquire)
            && let Some(why) = lock(&self.refused).get(&format!("{service}.{method}"))
        {
            let status = Status::new(Code::FailedPrecondition, why.clone());
            self.refuse(id, Asked::Named(service, method), &metadata, &status);
            return Ok(());
        }
        if self.minor < 2
            && let Some(ours) = svc.schema(method)
            && schema::needs_1_2(ours.descriptor)
        {
            let message = format!(
                "`{service}.{method}` sends evolvable structs or open enums, whose encoding tidl \
                 protocol 1.2 introduced, and this client speaks 1.{}: rebuild it with a current tidl",
                self.minor
            );
            self.refuse(id, Asked::Named(service, method), &metadata, &Status::new(Code::FailedPrecondition, message));
            return Ok(());
        }
        let limit = server.config.max_concurrent_calls;
        let call = match self.in_flight.admit(id, limit, (*self.link.peer).clone(), metadata) {
            Ok(call) => call,
            Err((Refused::Duplicate, _)) => {
                return Err(Status::invalid_argument(format!(
                    "request id {id} was reused while its call is still running"
                )));
            }
            Err((Refused::Full, metadata)) => {
                let message = format!(
                    "`{service}.{method}` was refused: this connection already has {limit} calls \
                     running, the limit (ServerConfig::max_concurrent_calls)"
                );
                tracing::debug!(peer = %self.name, "call refused: {message}");
                self.refuse(id, Asked::Named(service, method), &metadata, &Status::resource_exhausted(message));
                return Ok(());
            }
        };
        let request = Incoming::new(self.clone(), id, payload, deadline::from_wire(timeout_micros), call);
        if let Err(request) = svc.call(method, request) {
            let message = format!("the service `{service}` has no method `{method}`");
            tracing::debug!(peer = %self.name, "call refused: {message}");
            let status = Status::unimplemented(message);
            self.refuse(id, Asked::Named(service, method), request.call.metadata(), &status);
            drop(request);
            self.in_flight.end(id);
        }
        Ok(())
    }

    /// Compares the client's schema of a method with this server's, and refuses the method's
    /// calls on this connection if the two cannot talk. An unknown service or method is not
    /// an error here: its calls are answered `Unimplemented`.
    fn on_bind(&self, service: &str, method: &str, fingerprint: u64, descriptor: &[u8]) {
        let Some(ours) =
            self.server.services.iter().find(|(name, _)| *name == service).and_then(|(_, s)| s.schema(method))
        else {
            return;
        };
        let key = format!("{service}.{method}");
        if fingerprint == ours.fingerprint && descriptor == ours.descriptor {
            lock(&self.refused).remove(&key);
            return;
        }
        let verdict = (descriptor.len() <= MAX_DESCRIPTOR_LEN)
            .then_some(descriptor)
            .ok_or_else(|| {
                format!(
                    "the client's description of it takes {} bytes, more than the {MAX_DESCRIPTOR_LEN} \
                     a server compares",
                    descriptor.len()
                )
            })
            .and_then(|descriptor| {
                Shape::parse(descriptor).map_err(|e| format!("the client's description of it is malformed ({e})"))
            })
            .and_then(|theirs| {
                let ours = Shape::parse(ours.descriptor)
                    .map_err(|e| format!("this server's description is malformed ({e})"))?;
                schema::compatible(&theirs, &ours)
            });
        match verdict {
            Ok(()) => {
                // A rebind of a method that was refused (a client may change its mind) is let through.
                lock(&self.refused).remove(&key);
            }
            Err(why) => {
                let message = format!(
                    "`{key}`: the client and the server were built from incompatible schemas: {why}. \
                     Run `tidl compat OLD.tidl NEW.tidl` on the two versions of the .tidl file to see every change"
                );
                let mut refused = lock(&self.refused);
                // Logged once per method and connection: a client may bind again and again.
                if !refused.contains_key(&key) {
                    tracing::warn!(peer = %self.name, "refusing calls: {message}");
                }
                refused.insert(key, message);
                drop(refused);
                self.any_refused.store(true, Ordering::Release);
            }
        }
    }

    /// The status that closes the connection when the client sent an item with no credit left.
    fn overrun(id: u64, overrun: &Overrun) -> Status {
        Status::resource_exhausted(format!(
            "the client sent an item on call {id} with no credit left ({} bytes sent, {} granted)",
            overrun.sent, overrun.granted
        ))
    }

    /// The connection's age running out: first it is told to go away, then, after the grace,
    /// its calls are stopped. Pending for a connection without a maximum age.
    async fn aging(&self, goaway_sent: bool) -> Interrupt {
        let Some((at, end)) = self.aged else { return std::future::pending().await };
        if !goaway_sent {
            tokio::time::sleep_until(at).await;
            tracing::debug!(peer = %self.name, "telling a tidl client to reconnect: its connection reached its maximum age");
            self.went_away_aged.store(true, Ordering::SeqCst);
            self.go_away("the connection reached its maximum age (ServerConfig::max_connection_age): connect again");
            return Interrupt::Continue;
        }
        if !self.went_away_aged.load(Ordering::SeqCst) {
            // A shutdown said GoAway: its own grace applies.
            return std::future::pending().await;
        }
        tokio::time::sleep_until(end).await;
        tracing::debug!(peer = %self.name, "closing an aged tidl connection: its calls outlived the grace");
        Interrupt::Stop
    }

    /// Tells the client to start no new calls, once, and pings it: the connection closes when
    /// its calls have finished and the pong is back, so a request that crossed the GoAway is
    /// still read and refused unstarted instead of lost with the connection.
    fn go_away(&self, why: &str) {
        if !self.goaway_sent.swap(true, Ordering::SeqCst) {
            let _ =
                self.link.outbox.push_header(&Header::GoAway { code: Code::Unavailable.as_u16(), message: why.into() });
            let _ = self.link.outbox.push_header(&Header::Ping { nonce: crate::wire::GOAWAY_PING });
        }
    }
}

/// The reader drives `Arc<Conn>`, so that requests can hold the connection.
impl Side for Arc<Conn> {
    const ROLE: crate::observe::Side = crate::observe::Side::Server;

    fn link(&self) -> &Link {
        &self.link
    }

    fn on_frame(&self, header: Header<'_>, payload: Bytes) -> Result<(), Status> {
        match header {
            Header::Request { id, service, method, timeout_micros } => {
                self.on_request(id, &service, &method, timeout_micros, payload, Metadata::new())
            }
            Header::Call { id, service, method, timeout_micros, metadata } => {
                let metadata = Metadata::from_wire(metadata);
                let limit = self.server.config.max_metadata_bytes;
                if metadata.size() > limit {
                    let message = format!(
                        "`{service}.{method}` was refused: its metadata takes {} bytes, more than the server's \
                         limit of {limit} (ServerConfig::max_metadata_bytes)",
                        metadata.size()
                    );
                    self.refuse(id, Asked::Named(&service, &method), &metadata, &Status::resource_exhausted(message));
                    return Ok(());
                }
                self.on_request(id, &service, &method, timeout_micros, payload, metadata)
            }
            Header::Cancel { id } => {
                // The handler task forgets the call once it has stopped. A cancel for a call
                // that is not running usually crossed its reply: nothing to do.
                if !self.in_flight.cancel(id) && self.unknown_cancels.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::debug!(peer = %self.name, "ignored a cancel for call {id}, which is not running");
                }
                Ok(())
            }
            Header::HalfClose { id } => {
                if let Some(stream) = self.in_flight.stream(id) {
                    stream.close_inbox();
                }
                Ok(())
            }
            Header::Credit { id, bytes } => {
                if let Some(stream) = self.in_flight.stream(id) {
                    stream.grant(bytes);
                }
                Ok(())
            }
            Header::Bind { service, method, fingerprint } => {
                self.on_bind(&service, &method, fingerprint, &payload);
                Ok(())
            }
            Header::Item { .. } | Header::Ping { .. } | Header::Pong { .. } => Ok(()),
            Header::Response { .. } | Header::GoAway { .. } => {
                Err(Status::invalid_argument("received a server-to-client frame from a client"))
            }
        }
    }

    async fn interrupt(&self) -> Interrupt {
        let goaway_sent = self.goaway_sent.load(Ordering::SeqCst);
        tokio::select! {
            biased;
            () = self.token.cancelled() => Interrupt::Stop,
            () = self.server.draining.cancelled(), if !goaway_sent => {
                self.go_away("the server is shutting down");
                Interrupt::Continue
            }
            interrupt = self.aging(goaway_sent), if self.aged.is_some() => interrupt,
            // Once the client has seen the GoAway, the last call ending ends the connection.
            () = self.in_flight.idle(), if self.goaway_seen.load(Ordering::SeqCst) => Interrupt::Continue,
        }
    }

    fn stream(&self, id: u64) -> Option<Arc<Stream>> {
        self.in_flight.stream(id)
    }

    fn bad_items(&self, id: u64, overrun: Option<&Overrun>, what: &str) -> Status {
        match overrun {
            Some(overrun) => Conn::overrun(id, overrun),
            None => Status::invalid_argument(format!("received an item frame for call {id} that is not one ({what})")),
        }
    }

    /// Draining, and nothing left to answer: close now rather than wait for the client.
    fn finished(&self) -> bool {
        self.goaway_seen.load(Ordering::SeqCst) && self.in_flight.len() == 0
    }

    fn on_pong(&self, nonce: u64) {
        if nonce == crate::wire::GOAWAY_PING && self.goaway_sent.load(Ordering::SeqCst) {
            self.goaway_seen.store(true, Ordering::SeqCst);
        }
    }
}
