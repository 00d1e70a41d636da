//! Schema checks (protocol 1.2) on the wire: a client sends a method's schema in a `Bind` frame
//! once per connection, before its first call, and only to a server that speaks 1.2; a server
//! refuses the calls of a method whose client schema it cannot read, or whose replies the client
//! could not read, with `FailedPrecondition`, and takes the other methods' calls as before.

use crate::raw;

use raw::{Frame, Raw};
use tidl_runtime::{CallOptions, Client, Code, Incoming, Invoke, Method, Schema, Server, Service};

/// `rpc get(u32) -> u32;` (descriptor format 1, unary, u32, u32, string, no definitions).
static GET_U32: Schema = Schema { fingerprint: 1, descriptor: &[1, 0, 8, 8, 12, 0], idempotent: false };

/// `rpc put(Record) -> u32;` where `Record { n: u32 }` is an evolvable struct.
static PUT_RECORD: Schema =
    Schema { fingerprint: 5, descriptor: &[1, 0, 18, 0, 8, 12, 1, 0x21, 1, 0, 8], idempotent: false };

/// `rpc walk(Node) -> u32;` where `Node { v: u32, next: option<Node> = none }` is recursive.
static WALK_NODE: Schema =
    Schema { fingerprint: 9, descriptor: &[1, 0, 18, 0, 8, 12, 1, 0x21, 2, 0, 8, 1, 16, 18, 0], idempotent: false };

/// A hand-written service whose method `get` declares a schema, as generated services do.
struct Shaped;

impl Service for Shaped {
    fn name(&self) -> &'static str {
        "Shaped"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "get" | "other" => request
                .spawn(Method::new("Shaped", "get"), |_ctx, n: u32| async move { Ok::<_, tidl_runtime::Error>(n + 1) }),
            _ => return Err(request),
        }
        Ok(())
    }

    fn schema(&self, method: &str) -> Option<&'static Schema> {
        match method {
            "get" | "other" => Some(&GET_U32),
            "put" => Some(&PUT_RECORD),
            "walk" => Some(&WALK_NODE),
            _ => None,
        }
    }
}

async fn shaped_server() -> (std::net::SocketAddr, Server) {
    let server = Server::builder().register(Shaped).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    (addr, server)
}

fn status(frame: Frame) -> (u16, String) {
    match frame {
        Frame::ResponseStatus { code, message, .. } => (code, message),
        other => panic!("expected a status, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_refuses_a_method_whose_schema_it_cannot_read_and_serves_the_rest() {
    let (addr, _server) = shaped_server().await;
    let mut raw = Raw::connect(addr).await;
    // The client's `get` takes a string: the server reads a u32.
    raw.send(&raw::bind("Shaped", "get", 2, &[1, 0, 12, 8, 12, 0])).await;
    raw.send(&raw::request(1, "Shaped", "get", None, &[3])).await;
    let (code, message) = status(raw.recv().await);
    assert_eq!(code, Code::FailedPrecondition.as_u16(), "{message}");
    assert_eq!(
        message,
        "`Shaped.get`: the client and the server were built from incompatible schemas: the argument: \
         the client sends string, the server reads u32. Run `tidl compat OLD.tidl NEW.tidl` on the two \
         versions of the .tidl file to see every change"
    );
    // A malformed schema is refused the same way, naming what is wrong.
    raw.send(&raw::bind("Shaped", "other", 3, &[1, 0, 99])).await;
    raw.send(&raw::request(2, "Shaped", "other", None, &[3])).await;
    let (code, message) = status(raw.recv().await);
    assert_eq!(code, Code::FailedPrecondition.as_u16());
    assert!(message.contains("the client's description of it is malformed (unknown type tag 99"), "{message}");
    // An unknown method's bind is ignored; its call is Unimplemented as ever.
    raw.send(&raw::bind("Shaped", "nope", 3, &[1])).await;
    raw.send(&raw::request(3, "Shaped", "nope", None, &[3])).await;
    assert_eq!(status(raw.recv().await).0, Code::Unimplemented.as_u16());
    // A compatible schema (a u16 argument, which the server's u32 reads) lets `get` through again.
    raw.send(&raw::bind("Shaped", "get", 4, &[1, 0, 7, 8, 12, 0])).await;
    raw.send(&raw::request(4, "Shaped", "get", None, &[3])).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 4, payload: vec![4] });
}

#[tokio::test]
async fn a_client_binds_each_method_once_per_connection_before_its_first_call() {
    let (addr, accept) = raw::scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let get = Method::new("Shaped", "get").with_schema(&GET_U32);
    let options = CallOptions::default();
    let first = client.call::<_, u32, String>(get, &1u32, &options);
    assert_eq!(
        server.recv().await,
        Frame::Bind {
            service: "Shaped".into(),
            method: "get".into(),
            fingerprint: 1,
            descriptor: vec![1, 0, 8, 8, 12, 0]
        }
    );
    assert!(matches!(server.recv().await, Frame::Request { payload, .. } if payload == [1]));
    let second = client.call::<_, u32, String>(get, &2u32, &options);
    assert!(matches!(server.recv().await, Frame::Request { payload, .. } if payload == [2]), "no second bind");
    drop((first, second));
}

#[tokio::test]
async fn a_server_that_speaks_1_1_gets_no_bind() {
    let (addr, accept) = raw::scripted_server_answering(raw::hello_1_1()).await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let get = Method::new("Shaped", "get").with_schema(&GET_U32);
    let call = client.call::<_, u32, String>(get, &1u32, &CallOptions::default());
    assert!(matches!(server.recv().await, Frame::Request { payload, .. } if payload == [1]));
    drop(call);
}

#[tokio::test]
async fn a_1_1_peer_cannot_call_or_serve_a_method_with_evolvable_types() {
    // A 1.1 client (it sends no Bind, and knows no evolvable encodings) is refused `put`, and
    // served `get`, whose types did not change encoding.
    let (addr, _server) = shaped_server().await;
    let mut raw = Raw { stream: tokio::net::TcpStream::connect(addr).await.expect("connect") };
    raw.send(&raw::hello_1_1()).await;
    let mut theirs = [0u8; 8];
    raw.read_exact(&mut theirs).await;
    assert_eq!(&theirs[..], &raw::hello_1_1()[..], "the server answers 1.1");
    raw.send(&raw::request(1, "Shaped", "put", None, &[1, 3])).await;
    let (code, message) = status(raw.recv().await);
    assert_eq!(code, Code::FailedPrecondition.as_u16());
    assert!(message.contains("`Shaped.put` sends evolvable structs or open enums"), "{message}");
    assert!(message.contains("this client speaks 1.1"), "{message}");
    raw.send(&raw::request(2, "Shaped", "get", None, &[3])).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: vec![4] });

    // A current client does not send `put` to a 1.1 server at all.
    let (addr, accept) = raw::scripted_server_answering(raw::hello_1_1()).await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let put = Method::new("Shaped", "put").with_schema(&PUT_RECORD);
    let err = client.call::<_, u32, String>(put, &1u32, &CallOptions::default()).await.expect_err("refused");
    let tidl_runtime::Error::Status(status) = err else { panic!("{err:?}") };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("nothing was sent"), "{status}");
    let get = Method::new("Shaped", "get").with_schema(&GET_U32);
    let call = client.call::<_, u32, String>(get, &1u32, &CallOptions::default());
    assert!(matches!(server.recv().await, Frame::Request { method, .. } if method == "get"), "put was never sent");
    drop(call);
}

#[test]
fn a_bind_whose_schema_chains_definitions_as_long_as_a_frame_is_refused_and_the_server_lives() {
    // Each definition of the client's holds an option of the next, 6,000 of them (60 KB, under
    // the 64 KiB a server compares): each pairs with the server's one recursive `Node`.
    // Compared link by link without a limit, it overflowed the stack of the server's worker,
    // which aborts the whole process.
    let addr = crate::common::serve_alone(|| Server::builder().register(Shaped).build());
    let links = 6_000u64;
    // Descriptors count in LEB128.
    let leb128 = |mut n: u64| {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    };
    let mut descriptor = vec![1, 0, 18, 0, 8, 12];
    descriptor.extend(leb128(links));
    for i in 1..links {
        descriptor.extend([0x21, 2, 0, 8, 0, 16, 18]);
        descriptor.extend(leb128(i));
    }
    descriptor.extend([0x21, 1, 0, 8]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
    runtime.block_on(async {
        let mut raw = Raw::connect(addr).await;
        raw.send(&raw::bind("Shaped", "walk", 10, &descriptor)).await;
        raw.send(&raw::request(1, "Shaped", "walk", None, &[4, 1, 0])).await;
        let (code, message) = status(raw.recv().await);
        assert_eq!(code, Code::FailedPrecondition.as_u16(), "{message}");
        assert!(message.contains("the schemas nest too deep or are too large to compare"), "{message}");
        // A longer description is not parsed at all.
        let mut long = descriptor.clone();
        long.resize(70_000, 0);
        raw.send(&raw::bind("Shaped", "walk", 11, &long)).await;
        raw.send(&raw::request(3, "Shaped", "walk", None, &[4, 1, 0])).await;
        let (code, message) = status(raw.recv().await);
        assert_eq!(code, Code::FailedPrecondition.as_u16(), "{message}");
        assert!(message.contains("takes 70000 bytes, more than the 65536 a server compares"), "{message}");
        // The connection, and the server, go on.
        raw.send(&raw::request(2, "Shaped", "get", None, &[3])).await;
        assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: vec![4] });
        let mut other = Raw::connect(addr).await;
        other.send(&raw::request(1, "Shaped", "get", None, &[6])).await;
        assert_eq!(other.recv().await, Frame::ResponseOk { id: 1, payload: vec![7] });
    });
}
