//! Request metadata (protocol 1.4): key/value pairs set per client and per call, read by the
//! handler, with size limits on both sides and a clear error towards servers that have none.

use crate::raw;

use tidl_runtime::{
    CallOptions, Client, ClientConfig, Code, Error, Incoming, Invoke, Method, Server, ServerConfig, Service,
};

/// `Meta.show() -> list<(string, bytes)>`: the metadata the handler saw, in order.
struct Meta;

impl Service for Meta {
    fn name(&self) -> &'static str {
        "Meta"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "show" => request.spawn(Method::new("Meta", "show"), |ctx, (): ()| async move {
                let seen: Vec<(String, Vec<u8>)> =
                    ctx.metadata().iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect();
                Ok::<_, Error>(seen)
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

async fn serve(config: ServerConfig) -> (std::net::SocketAddr, Server) {
    let server = Server::builder().register(Meta).config(config).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind");
    (addr, server)
}

async fn show(client: &Client, options: &CallOptions) -> Result<Vec<(String, Vec<u8>)>, Error> {
    client.call::<_, Vec<(String, Vec<u8>)>, String>(Method::new("Meta", "show"), &(), options).await
}

#[tokio::test]
async fn metadata_travels_with_the_call_in_order_text_and_binary() {
    let (addr, _server) = serve(ServerConfig::default()).await;
    let mut config = ClientConfig::default();
    config.metadata.insert("client", "tidl-tests");
    let client = Client::dial_with(addr, config).await.expect("dial");
    let options = CallOptions::default()
        .metadata("authorization", "Bearer s3cret")
        .metadata("grüße", "ünïcödé ✓")
        .metadata("trace-bin", vec![0u8, 255, 1, 0])
        .metadata("empty", Vec::<u8>::new());
    let seen = show(&client, &options).await.expect("call");
    assert_eq!(
        seen,
        vec![
            ("client".to_owned(), b"tidl-tests".to_vec()),
            ("authorization".to_owned(), b"Bearer s3cret".to_vec()),
            ("grüße".to_owned(), "ünïcödé ✓".as_bytes().to_vec()),
            ("trace-bin".to_owned(), vec![0, 255, 1, 0]),
            ("empty".to_owned(), Vec::new()),
        ]
    );
    // A call without metadata goes as a plain request, and the handler sees none.
    let plain = Client::dial(addr).await.expect("dial");
    assert_eq!(show(&plain, &CallOptions::default()).await, Ok(Vec::new()));
}

#[tokio::test]
async fn oversized_metadata_is_refused_on_either_side_with_the_setting_named() {
    let mut server_config = ServerConfig::default();
    server_config.max_metadata_bytes = 100;
    let (addr, _server) = serve(server_config).await;
    // The client's own limit: refused before anything is sent.
    let mut config = ClientConfig::default();
    config.max_metadata_bytes = 50;
    let client = Client::dial_with(addr, config).await.expect("dial");
    let big = CallOptions::default().metadata("k", "v".repeat(60));
    let Err(Error::Status(status)) = show(&client, &big).await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("ClientConfig::max_metadata_bytes"), "{status}");
    assert!(!status.is_unstarted(), "sending it again cannot help");
    // The server's limit, for a client that allows more.
    let client = Client::dial(addr).await.expect("dial");
    let bigger = CallOptions::default().metadata("k", "v".repeat(200));
    let Err(Error::Status(status)) = show(&client, &bigger).await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("ServerConfig::max_metadata_bytes"), "{status}");
    // The connection still serves calls within the limits.
    let small = CallOptions::default().metadata("k", "v");
    assert_eq!(show(&client, &small).await, Ok(vec![("k".to_owned(), b"v".to_vec())]));
}

#[tokio::test]
async fn a_server_without_metadata_gets_a_clear_refusal_and_nothing_is_sent() {
    let (addr, accept) = raw::scripted_server_answering(b"TIDL\x01\x03\x00\x00".to_vec()).await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let options = CallOptions::default().metadata("k", "v");
    let Err(Error::Status(status)) = show(&client, &options).await else { panic!("expected a refusal") };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("speaks tidl protocol 1.3, which has none"), "{status}");
    // Calls without metadata still go out.
    let plain =
        client.call::<_, Vec<(String, Vec<u8>)>, String>(Method::new("Meta", "show"), &(), &CallOptions::default());
    assert!(matches!(server.recv().await, raw::Frame::Request { .. }), "the refused call sent nothing");
    drop(plain);
}

#[tokio::test]
async fn a_call_frame_with_too_many_entries_is_a_protocol_error() {
    let (addr, _server) = serve(ServerConfig::default()).await;
    // The client refuses to send more than 256 entries...
    let client = Client::dial(addr).await.expect("dial");
    let mut options = CallOptions::default();
    for i in 0..300 {
        options = options.metadata(format!("k{i}"), "");
    }
    let Err(Error::Status(status)) = show(&client, &options).await else { panic!("expected a refusal") };
    assert!(status.message().contains("more than the protocol's 256"), "{status}");
    // ...and a peer that does is cut off: 300 empty entries.
    let mut raw = raw::Raw::connect(addr).await;
    let mut body = vec![10];
    body.extend(raw::varint(1));
    body.extend(raw::string("Meta"));
    body.extend(raw::string("show"));
    body.push(0);
    body.extend(raw::varint(300));
    for _ in 0..300 {
        body.extend([0, 0]);
    }
    raw.send(&raw::frame(&body)).await;
    let frame = raw.recv().await;
    let raw::Frame::GoAway { code, message } = frame else { panic!("expected a GoAway, got {frame:?}") };
    assert_eq!(code, Code::InvalidArgument.as_u16());
    assert!(message.contains("more than 256 metadata entries"), "{message}");
}

#[tokio::test]
async fn a_client_interceptor_adds_metadata_and_refuses_calls() {
    let (addr, _server) = serve(ServerConfig::default()).await;
    let mut config = ClientConfig::default();
    config.interceptors.add(|method: Method, options: &mut CallOptions| {
        if options.get_metadata().get("deny").is_some() {
            return Err(tidl_runtime::Status::permission_denied(format!("`{method}` is not for you")));
        }
        *options = options.clone().metadata("x-interceptor", "was here");
        Ok(())
    });
    let client = Client::dial_with(addr, config).await.expect("dial");
    let seen = show(&client, &CallOptions::default().metadata("k", "v")).await.expect("call");
    assert_eq!(seen, vec![("k".to_owned(), b"v".to_vec()), ("x-interceptor".to_owned(), b"was here".to_vec())]);
    let Err(Error::Status(status)) = show(&client, &CallOptions::default().metadata("deny", "")).await else {
        panic!("expected a refusal")
    };
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert_eq!(status.message(), "`Meta.show` is not for you");
}
