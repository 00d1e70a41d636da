//! The protocol: the real client and server against a peer scripted byte by byte. The wire
//! format is what docs/PROTOCOL.md says, and the call lifecycle holds at its edges. (What a
//! server does with bad input is in bad_input.rs; scripted keepalive, deadline and frame-limit
//! cases are in keepalive.rs, deadlines.rs and limits.rs.)

use crate::raw;

use raw::{Frame, Raw, cancel, echo_server, hello, request, response_ok, scripted_server, string};
use tidl_runtime::{CallOptions, Client, Code, Invoke, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn an_echo_call_is_the_documented_bytes() {
    let (addr, _server) = echo_server().await;
    let mut raw = Raw::connect(addr).await;
    let req = request(1, "Echo", "echo", None, &string("hello world"));
    // docs/PROTOCOL.md's worked example.
    assert_eq!(req, [&[0, 0, 0, 25][..], &[0, 1, 4], b"Echo", &[4], b"echo", &[0], &[11], b"hello world"].concat());
    raw.send(&req).await;
    let reply = raw.recv().await;
    assert_eq!(reply, Frame::ResponseOk { id: 1, payload: string("hello world") });
}

#[tokio::test]
async fn a_cancelled_call_gets_no_reply_and_the_connection_goes_on() {
    let (addr, _server) = echo_server().await;
    let mut raw = Raw::connect(addr).await;
    raw.send(&request(1, "Echo", "sleep", None, &raw::varint(60_000))).await;
    raw.send(&cancel(1)).await;
    raw.send(&request(2, "Echo", "echo", None, &string("next"))).await;
    // The only reply is the second call's: the cancelled one is simply gone.
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 2, payload: string("next") });
}

#[tokio::test]
async fn a_late_reply_to_a_cancelled_call_is_dropped_silently() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let options = CallOptions::default();

    let first = client.call::<_, String, String>(Method::new("Echo", "echo"), "first", &options);
    let Frame::Request { id: first_id, .. } = server.recv().await else { panic!("expected a request") };
    first.cancel();
    assert_eq!(server.recv().await, Frame::Cancel { id: first_id });
    assert_eq!(first.await.expect_err("cancelled").code(), Some(Code::Cancelled));

    // The server answers the cancelled call anyway, and a call the client never made.
    server.send(&response_ok(first_id, &string("too late"))).await;
    server.send(&response_ok(9_999, &string("nobody asked"))).await;

    // The client drops both and goes on.
    let second = client.call::<_, String, String>(Method::new("Echo", "echo"), "second", &options);
    let Frame::Request { id: second_id, payload, .. } = server.recv().await else { panic!("expected a request") };
    assert_ne!(second_id, first_id);
    assert_eq!(payload, string("second"));
    server.send(&response_ok(second_id, &string("second reply"))).await;
    assert_eq!(second.await, Ok("second reply".to_owned()));
}

#[tokio::test]
async fn the_client_sends_its_hello_and_requests_without_waiting_for_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut server, _) = listener.accept().await.expect("accept");
    let client = Client::new(stream);
    let call = client.call::<_, String, String>(Method::new("Echo", "echo"), "early", &CallOptions::default());

    // Before the server has said anything, the hello and the request are already on the wire.
    let mut bytes = [0u8; 8];
    server.read_exact(&mut bytes).await.expect("hello");
    assert_eq!(&bytes[..], &hello()[..]);
    let mut len = [0u8; 4];
    server.read_exact(&mut len).await.expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    server.read_exact(&mut body).await.expect("frame body");
    let Frame::Request { id, method, .. } = raw::parse(&body) else { panic!("expected a request") };
    assert_eq!(method, "echo");

    server.write_all(&hello()).await.expect("hello");
    server.write_all(&response_ok(id, &string("late hello"))).await.expect("reply");
    assert_eq!(call.await, Ok("late hello".to_owned()));
}

#[tokio::test]
async fn a_server_that_is_not_tidl_fails_the_dial_with_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    let err = Client::dial(addr).await.expect_err("not tidl");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().ends_with(
            "the peer does not speak tidl: expected the handshake `TIDL` followed by a version, got bytes \
             48 54 54 50 2f 31 2e 31 (\"HTTP/1.1\")"
        ),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_vanishing_server_fails_every_pending_call_at_once() {
    let (addr, accept) = scripted_server().await;
    let client = Client::dial(addr).await.expect("dial");
    let mut server = accept.await.expect("accepted");
    let options = CallOptions::default();
    let calls: Vec<_> =
        (0..3).map(|_| client.call::<_, String, String>(Method::new("Echo", "echo"), "hello?", &options)).collect();
    for _ in 0..3 {
        assert!(matches!(server.recv().await, Frame::Request { .. }));
    }
    drop(server);
    for call in calls {
        let status = tokio::time::timeout(raw::TIMEOUT, call).await.expect("no hang").expect_err("gone");
        assert_eq!(status.code(), Some(Code::Unavailable));
        assert!(status.to_string().ends_with("closed the connection"), "{status}");
    }
    let after = client.call::<_, String, String>(Method::new("Echo", "echo"), "anyone?", &options).await;
    assert_eq!(after.expect_err("closed").code(), Some(Code::Unavailable));
}
