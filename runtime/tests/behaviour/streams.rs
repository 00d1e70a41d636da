//! Streaming calls over real TCP: gRPC's streaming interop cases, and tidl's own (flow control
//! bounds a slow consumer's producer, a stalled stream does not slow a unary call, dropping the
//! request sink half-closes and dropping the stream cancels, connection loss).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tidl_runtime::{
    CallOptions, Client, ClientConfig, Code, Context, Error, Incoming, Invoke, Method, Server, ServerConfig, Service,
    Sink, Source, Status,
};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// Handler events the tests wait for.
#[derive(Debug, PartialEq)]
enum Event {
    Started(&'static str),
    Dropped(&'static str),
}

/// Reports a handler's end, however it ends.
struct Guard(&'static str, mpsc::UnboundedSender<Event>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.1.send(Event::Dropped(self.0));
    }
}

fn guard(name: &'static str, events: &mpsc::UnboundedSender<Event>) -> Guard {
    let _ = events.send(Event::Started(name));
    Guard(name, events.clone())
}

/// A hand-written streaming service (what generated code does).
struct Streams {
    events: mpsc::UnboundedSender<Event>,
    /// Items `endless` has sent so far.
    sent: Arc<AtomicU64>,
}

impl Service for Streams {
    fn name(&self) -> &'static str {
        "Streams"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        let events = self.events.clone();
        let sent = self.sent.clone();
        match method {
            // Replies with one item of each size asked for, in order.
            "server_stream" => request.spawn_server_stream(
                Method::new("Streams", "server_stream"),
                move |_ctx: Context, sizes: Vec<u32>, mut out: Sink<Vec<u8>>| async move {
                    let _guard = guard("server_stream", &events);
                    for size in sizes {
                        out.send(vec![7; size as usize]).await?;
                    }
                    Ok::<_, Error>(())
                },
            ),
            // Sums the sizes of the items it is sent.
            "client_stream" => request.spawn_client_stream(
                Method::new("Streams", "client_stream"),
                move |_ctx: Context, mut items: Source<Vec<u8>>| async move {
                    let _guard = guard("client_stream", &events);
                    let mut total = 0u64;
                    while let Some(item) = items.next().await {
                        total += item?.len() as u64;
                    }
                    Ok::<_, Error>(total)
                },
            ),
            // For each size it is sent, replies with an item of that size.
            "full_duplex" => request.spawn_bidi(
                Method::new("Streams", "full_duplex"),
                move |_ctx: Context, mut items: Source<u32>, mut out: Sink<Vec<u8>>| async move {
                    let _guard = guard("full_duplex", &events);
                    while let Some(size) = items.next().await {
                        out.send(vec![1; size? as usize]).await?;
                    }
                    Ok::<_, Error>(())
                },
            ),
            // Never answers.
            "sleepy" => request.spawn_bidi(
                Method::new("Streams", "sleepy"),
                move |_ctx: Context, _items: Source<u32>, _out: Sink<u32>| async move {
                    let _guard = guard("sleepy", &events);
                    std::future::pending::<()>().await;
                    Ok::<_, Error>(())
                },
            ),
            // Sends items of the given size for ever, counting them.
            "endless" => request.spawn_server_stream(
                Method::new("Streams", "endless"),
                move |_ctx: Context, size: u32, mut out: Sink<Vec<u8>>| async move {
                    let _guard = guard("endless", &events);
                    loop {
                        out.send(vec![0; size as usize]).await?;
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                    #[allow(unreachable_code)]
                    Ok::<_, Error>(())
                },
            ),
            // Sends items of the given size for ever from a ready stream with `send_all`,
            // counting those the stream gave (sent, or held in the sink's batch).
            "endless_all" => request.spawn_server_stream(
                Method::new("Streams", "endless_all"),
                move |_ctx: Context, size: u32, mut out: Sink<Vec<u8>>| async move {
                    let items = std::iter::repeat_with(move || {
                        sent.fetch_add(1, Ordering::SeqCst);
                        vec![0; size as usize]
                    });
                    out.send_all(Iter(items)).await?;
                    Ok::<_, Error>(())
                },
            ),
            // Takes one item, then answers with its length.
            "early" => request.spawn_client_stream(
                Method::new("Streams", "early"),
                move |_ctx: Context, mut items: Source<Vec<u8>>| async move {
                    let _guard = guard("early", &events);
                    let first = items.message().await?.map_or(0, |item| item.len() as u64);
                    Ok::<_, Error>(first)
                },
            ),
            // Sends 0..n with one `send_all`.
            "all" => request.spawn_server_stream(
                Method::new("Streams", "all"),
                |_ctx: Context, n: u32, mut out: Sink<u32>| async move {
                    out.send_all(Iter(0..n)).await?;
                    Ok::<_, Error>(())
                },
            ),
            // Fails after one item with a status of its own.
            "refuse" => request.spawn_server_stream(
                Method::new("Streams", "refuse"),
                move |_ctx: Context, (): (), mut out: Sink<u32>| async move {
                    out.send(1).await?;
                    Err::<(), Error>(Status::permission_denied("no more for you").into())
                },
            ),
            "echo" => {
                request
                    .spawn(Method::new("Streams", "echo"), |_ctx: Context, s: String| async move { Ok::<_, Error>(s) });
            }
            _ => return Err(request),
        }
        Ok(())
    }
}

struct Fixture {
    client: Client,
    events: mpsc::UnboundedReceiver<Event>,
    sent: Arc<AtomicU64>,
    server: Server,
}

async fn fixture_with(config: ServerConfig, client_config: ClientConfig) -> Fixture {
    let (tx, events) = mpsc::unbounded_channel();
    let sent = Arc::new(AtomicU64::new(0));
    let server = Server::builder().register(Streams { events: tx, sent: sent.clone() }).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    let client = Client::dial_with(addr, client_config).await.expect("dial");
    Fixture { client, events, sent, server }
}

async fn fixture() -> Fixture {
    fixture_with(ServerConfig::default(), ClientConfig::default()).await
}

impl Fixture {
    async fn event(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv()).await.expect("an event in time").expect("the server is up")
    }
}

fn method(name: &'static str) -> Method {
    Method::new("Streams", name)
}

fn opts() -> CallOptions {
    CallOptions::default()
}

#[tokio::test]
async fn server_streaming_sends_every_item_in_order_then_ok() {
    let f = fixture().await;
    let sizes = vec![31_415u32, 9, 2_653, 58_979];
    let mut stream = f.client.server_stream::<_, Vec<u8>, String>(method("server_stream"), &sizes, &opts());
    for size in sizes {
        let item = stream.message().await.expect("an item").expect("not the end yet");
        assert_eq!(item.len(), size as usize);
    }
    assert_eq!(stream.message().await, Ok(None), "then OK");
}

#[tokio::test]
async fn client_streaming_sums_every_item() {
    let f = fixture().await;
    let (mut sink, reply) = f.client.client_stream::<Vec<u8>, u64, String>(method("client_stream"), &opts());
    for size in [27_182usize, 8, 1_828, 45_904] {
        sink.send(vec![0; size]).await.expect("sent");
    }
    drop(sink); // half-close
    assert_eq!(reply.await, Ok(74_922));
}

#[tokio::test]
async fn ping_pong_four_round_trips_then_half_close_and_ok() {
    let f = fixture().await;
    let (mut sink, mut stream) = f.client.bidi_stream::<u32, Vec<u8>, String>(method("full_duplex"), &opts());
    for size in [31_415u32, 9, 2_653, 58_979] {
        sink.send(size).await.expect("sent");
        let item = stream.message().await.expect("an answer").expect("not the end");
        assert_eq!(item.len(), size as usize);
    }
    sink.close();
    assert_eq!(stream.message().await, Ok(None));
}

#[tokio::test]
async fn an_empty_stream_ends_ok_at_once() {
    let f = fixture().await;
    let (sink, mut stream) = f.client.bidi_stream::<u32, Vec<u8>, String>(method("full_duplex"), &opts());
    drop(sink);
    assert_eq!(stream.message().await, Ok(None));
}

#[tokio::test]
async fn cancel_after_begin_cancels_the_call() {
    let mut f = fixture().await;
    let (_sink, reply) = f.client.client_stream::<Vec<u8>, u64, String>(method("client_stream"), &opts());
    assert_eq!(f.event().await, Event::Started("client_stream"));
    reply.cancel();
    assert_eq!(reply.await.map_err(|e| e.code()), Err(Some(Code::Cancelled)));
    assert_eq!(f.event().await, Event::Dropped("client_stream"), "the handler was dropped");
}

#[tokio::test]
async fn cancel_after_first_response_drops_the_handler() {
    let mut f = fixture().await;
    let (mut sink, mut stream) = f.client.bidi_stream::<u32, Vec<u8>, String>(method("full_duplex"), &opts());
    sink.send(31_415).await.expect("sent");
    assert_eq!(stream.message().await.map(|i| i.map(|i| i.len())), Ok(Some(31_415)));
    assert_eq!(f.event().await, Event::Started("full_duplex"));
    stream.cancel();
    assert_eq!(stream.message().await.map_err(|e| e.code()), Err(Some(Code::Cancelled)));
    assert_eq!(f.event().await, Event::Dropped("full_duplex"), "the handler was dropped");
    assert!(sink.send(1).await.is_err(), "sending on a cancelled call fails");
}

#[tokio::test]
async fn timeout_on_a_sleeping_server_exceeds_on_both_sides() {
    let mut f = fixture().await;
    let options = opts().timeout(Duration::from_millis(50));
    let (_sink, mut stream) = f.client.bidi_stream::<u32, u32, String>(method("sleepy"), &options);
    assert_eq!(stream.message().await.map_err(|e| e.code()), Err(Some(Code::DeadlineExceeded)));
    assert_eq!(f.event().await, Event::Started("sleepy"));
    assert_eq!(f.event().await, Event::Dropped("sleepy"), "the server stopped the handler at the deadline");
}

/// Opens `method` (a server stream of 1 KiB items for ever, counted in `sent`) with a 256 KiB
/// window, takes one item and then none: the producer must park within `slack` items past one
/// window, and go on once items are taken.
async fn assert_a_slow_consumer_parks(method_name: &'static str, slack: u64) {
    let window = 256 * 1024;
    let item = 1024u32;
    let mut client_config = ClientConfig::default();
    client_config.stream_window = window;
    let f = fixture_with(ServerConfig::default(), client_config).await;
    let mut stream = f.client.server_stream::<_, Vec<u8>, String>(method(method_name), &item, &opts());
    assert_eq!(stream.message().await.map(|i| i.map(|i| i.len())), Ok(Some(1024)));
    let limit = (window as u64) / u64::from(item) + slack;
    // The producer uses its window (awaited, not guessed: a producer descheduled for a while
    // is not one that stopped) ...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.sent.load(Ordering::SeqCst) < limit / 2 {
        assert!(std::time::Instant::now() < deadline, "the producer did not use its window");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // ... and stops within it: once it made nothing for 20 ms, it made no more than the limit.
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = f.sent.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last <= limit, "the producer made {last} items, more than {limit}: too far ahead of the consumer");
    // Taking items lets it go on.
    for _ in 0..limit {
        assert!(stream.message().await.expect("an item").is_some());
    }
    assert!(f.sent.load(Ordering::SeqCst) > last, "the producer resumed once items were taken");
}

#[tokio::test]
async fn a_slow_consumer_parks_the_producer_within_one_window() {
    // One window, plus the one item that may overshoot it.
    assert_a_slow_consumer_parks("endless", 2).await;
}

#[tokio::test]
async fn a_slow_consumer_parks_a_send_all_producer_within_one_window_and_a_batch() {
    // As `send`, plus the batch `send_all` holds, taken from its stream but not yet sent.
    assert_a_slow_consumer_parks("endless_all", 2 + Sink::<Vec<u8>>::SEND_BATCH as u64).await;
}

#[tokio::test]
async fn a_stalled_stream_does_not_slow_a_unary_call_on_the_same_connection() {
    let f = fixture().await;
    let _stalled = f.client.server_stream::<_, Vec<u8>, String>(method("endless"), &65_536u32, &opts());
    // Let it fill its window.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = std::time::Instant::now();
    for _ in 0..100 {
        let reply: Result<String, Error> = f.client.call(method("echo"), "hi", &opts()).await;
        assert_eq!(reply, Ok("hi".to_owned()));
    }
    assert!(start.elapsed() < Duration::from_secs(2), "100 echoes took {:?} beside a stalled stream", start.elapsed());
}

#[tokio::test]
async fn the_server_finishing_early_ends_the_call_and_later_sends_fail() {
    let mut f = fixture().await;
    let (mut sink, reply) = f.client.client_stream::<Vec<u8>, u64, String>(method("early"), &opts());
    sink.send(vec![0; 10]).await.expect("sent");
    assert_eq!(reply.await, Ok(10));
    assert_eq!(f.event().await, Event::Started("early"));
    assert_eq!(f.event().await, Event::Dropped("early"));
    let mut failed = false;
    for _ in 0..1_000 {
        if sink.send(vec![0; 1024]).await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "sending after the call ended fails instead of queueing without bound");
}

#[tokio::test]
async fn dropping_the_stream_cancels_and_dropping_the_sink_half_closes() {
    let mut f = fixture().await;
    // Dropping the sink: the handler's source ends, and it finishes normally.
    let (mut sink, mut stream) = f.client.bidi_stream::<u32, Vec<u8>, String>(method("full_duplex"), &opts());
    sink.send(3).await.expect("sent");
    assert_eq!(stream.message().await.map(|i| i.map(|i| i.len())), Ok(Some(3)));
    drop(sink);
    assert_eq!(stream.message().await, Ok(None));
    assert_eq!(f.event().await, Event::Started("full_duplex"));
    assert_eq!(f.event().await, Event::Dropped("full_duplex"));
    // Dropping the stream: the handler is dropped though its source is still open.
    let (_sink, stream) = f.client.bidi_stream::<u32, Vec<u8>, String>(method("full_duplex"), &opts());
    assert_eq!(f.event().await, Event::Started("full_duplex"));
    drop(stream);
    assert_eq!(f.event().await, Event::Dropped("full_duplex"));
}

#[tokio::test]
async fn a_status_from_a_streaming_handler_ends_the_stream_after_its_items() {
    let f = fixture().await;
    let mut stream = f.client.server_stream::<_, u32, String>(method("refuse"), &(), &opts());
    assert_eq!(stream.message().await, Ok(Some(1)));
    let err = stream.message().await.expect_err("the handler's status");
    assert_eq!(err.code(), Some(Code::PermissionDenied));
    assert_eq!(stream.message().await, Ok(None), "then the end");
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused() {
    let mut config = ServerConfig::default();
    config.max_concurrent_streams = 1;
    let mut f = fixture_with(config, ClientConfig::default()).await;
    let _first = f.client.bidi_stream::<u32, u32, String>(method("sleepy"), &opts());
    assert_eq!(f.event().await, Event::Started("sleepy"));
    let (_sink, mut second) = f.client.bidi_stream::<u32, u32, String>(method("sleepy"), &opts());
    let err = second.message().await.expect_err("refused");
    assert_eq!(err.code(), Some(Code::ResourceExhausted));
    assert!(err.to_string().contains("ServerConfig::max_concurrent_streams"), "{err}");
}

#[tokio::test]
async fn losing_the_connection_fails_an_open_stream_with_unavailable_on_both_sides() {
    let mut f = fixture().await;
    let mut stream = f.client.server_stream::<_, Vec<u8>, String>(method("endless"), &16u32, &opts());
    assert!(stream.message().await.expect("an item").is_some());
    assert_eq!(f.event().await, Event::Started("endless"));
    f.server.shutdown(Duration::ZERO).await;
    assert_eq!(f.event().await, Event::Dropped("endless"), "the handler was stopped");
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended OK after the server went away"),
            Err(e) => {
                assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
                break;
            }
        }
    }
}

#[tokio::test]
async fn an_item_that_does_not_decode_fails_the_call_naming_its_index() {
    let f = fixture().await;
    // `client_stream` expects byte lists; send strings, the third of which is not valid as one.
    let (mut sink, reply) = f.client.client_stream::<Vec<u8>, u64, String>(method("client_stream"), &opts());
    sink.send(vec![1]).await.expect("sent");
    drop(sink);
    assert_eq!(reply.await, Ok(1));
    let (mut sink, reply) = f.client.client_stream::<(u8, u8), u64, String>(method("client_stream"), &opts());
    sink.send((0, 0)).await.expect("sent"); // an empty list and a trailing byte: does not decode
    drop(sink);
    let err = reply.await.expect_err("the item does not decode");
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("item 0 of `Streams.client_stream`"), "{err}");
}

#[tokio::test]
async fn an_item_larger_than_the_window_still_goes_through() {
    let mut client_config = ClientConfig::default();
    client_config.stream_window = 64 * 1024;
    let f = fixture_with(ServerConfig::default(), client_config).await;
    let sizes = vec![2_000_000u32, 3];
    let mut stream = f.client.server_stream::<_, Vec<u8>, String>(method("server_stream"), &sizes, &opts());
    assert_eq!(stream.message().await.map(|i| i.map(|i| i.len())), Ok(Some(2_000_000)));
    assert_eq!(stream.message().await.map(|i| i.map(|i| i.len())), Ok(Some(3)));
    assert_eq!(stream.message().await, Ok(None));
    // And the other way.
    let (mut sink, reply) = f.client.client_stream::<Vec<u8>, u64, String>(method("client_stream"), &opts());
    sink.send(vec![0; 3_000_000]).await.expect("sent");
    sink.send(vec![0; 5]).await.expect("sent after the handler took the large one");
    drop(sink);
    assert_eq!(reply.await, Ok(3_000_005));
}

#[tokio::test]
async fn a_stream_made_with_a_handlers_context_is_cancelled_with_it() {
    let mut f = fixture().await;
    let token = tidl_runtime::CancellationToken::new();
    let parent = Context::new(token.clone(), None);
    let options = opts().context(&parent);
    let mut stream = f.client.server_stream::<_, Vec<u8>, String>(method("endless"), &16u32, &options);
    assert!(stream.message().await.expect("an item").is_some());
    assert_eq!(f.event().await, Event::Started("endless"));
    token.cancel();
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            other => {
                assert_eq!(other.map_err(|e| e.code()), Err(Some(Code::Cancelled)));
                break;
            }
        }
    }
    assert_eq!(f.event().await, Event::Dropped("endless"), "the server dropped the handler");
}

#[tokio::test]
async fn a_server_that_speaks_protocol_1_0_gets_no_streaming_call() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut hello = [0u8; 8];
        stream.read_exact(&mut hello).await.expect("the client's hello");
        tokio::io::AsyncWriteExt::write_all(&mut stream, b"TIDL\x01\x00\x00\x00").await.expect("a 1.0 answer");
        let mut rest = Vec::new();
        // The client sends nothing more before it closes.
        let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        rest
    });
    let client = Client::dial(addr).await.expect("dial");
    let mut stream = client.server_stream::<_, u32, String>(method("server_stream"), &vec![1u32], &opts());
    let err = stream.message().await.expect_err("no streams on 1.0");
    assert_eq!(err.code(), Some(Code::Unimplemented));
    assert!(err.to_string().contains("tidl protocol 1.0, which has no streams"), "{err}");
    let (_sink, reply) = client.bidi_stream::<u32, u32, String>(method("full_duplex"), &opts());
    assert_eq!(reply.collect_codes().await, vec![Code::Unimplemented]);
    drop(client);
    assert_eq!(server.await.expect("server"), Vec::<u8>::new(), "nothing was sent for the streaming calls");
}

/// The codes of what a stream yields, to its end.
trait CollectCodes {
    async fn collect_codes(self) -> Vec<Code>;
}

impl<T: serde::de::DeserializeOwned + 'static> CollectCodes for tidl_runtime::Streaming<T, String> {
    async fn collect_codes(mut self) -> Vec<Code> {
        let mut codes = Vec::new();
        while let Some(item) = self.next().await {
            if let Err(e) = item {
                codes.extend(e.code());
            }
        }
        codes
    }
}

/// An iterator as a `futures_core::Stream` whose items are always ready.
struct Iter<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test]
async fn a_handler_forwards_a_stream_of_items_with_send_all() {
    let f = fixture().await;
    let mut stream = f.client.server_stream::<_, u32, String>(method("all"), &1_000u32, &opts());
    let mut got = Vec::new();
    while let Some(n) = stream.message().await.expect("an item") {
        got.push(n);
    }
    assert_eq!(got, (0..1_000).collect::<Vec<_>>());
}
