//! Memory stays bounded under attack: what a peer claims (a 4 GiB frame, a string of 4 EiB, ten
//! thousand cancels) is never allocated. Every byte allocated while the server handles the
//! attacks is counted (`allocation_counter` counts this thread, which runs the whole runtime).

#[path = "behaviour/raw/mod.rs"]
mod raw;

use raw::{Frame, Raw, cancel, frame, request, string, varint};

/// Far below any claim made here, and well above what serving a few dozen connections needs.
const BOUND: u64 = 16 * 1024 * 1024;

async fn attacks() {
    let (addr, _server) = raw::echo_server().await;

    // Twenty connections announcing 4 GiB frames, all open at once.
    let mut claimants = Vec::new();
    for _ in 0..20 {
        let mut raw = Raw::connect(addr).await;
        raw.send(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await;
        claimants.push(raw);
    }
    for raw in &mut claimants {
        assert!(matches!(raw.recv().await, Frame::GoAway { .. }));
    }

    // Requests whose string argument claims 4 EiB, in small frames.
    let mut raw = Raw::connect(addr).await;
    for id in 0..20 {
        let huge = [varint(1 << 62), b"tiny".to_vec()].concat();
        raw.send(&request(id, "Echo", "echo", None, &huge)).await;
        assert!(matches!(raw.recv().await, Frame::ResponseStatus { .. }));
    }

    // A header whose service name claims 4 EiB.
    let mut bad_header = Raw::connect(addr).await;
    bad_header.send(&frame(&[vec![0, 1], varint(1 << 62), b"Echo".to_vec()].concat())).await;
    assert!(matches!(bad_header.recv().await, Frame::GoAway { .. }));

    // Ten thousand cancels in one burst.
    let burst: Vec<u8> = (0..10_000).flat_map(cancel).collect();
    raw.send(&burst).await;
    raw.send(&request(99, "Echo", "echo", None, &string("still here"))).await;
    assert_eq!(raw.recv().await, Frame::ResponseOk { id: 99, payload: string("still here") });
}

#[test]
fn claims_made_by_a_peer_are_never_allocated() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let info = allocation_counter::measure(|| runtime.block_on(attacks()));
    eprintln!("peak {} bytes, {} allocations in all", info.bytes_max, info.count_total);
    assert!(info.bytes_max < BOUND, "peak allocation {} bytes, bound {BOUND}", info.bytes_max);
    assert!(info.bytes_total > 0, "the allocator did count this thread");
}

/// Allocations per sequential echo call, client and server together, over loopback TCP.
/// BENCHMARKS.md measures 3: on the client the decoded reply (a call's reply waits in the
/// in-flight table, with no channel per call), on the server the handler's task and the decoded
/// argument (ended calls' states are reused). Each buffer the runtime keeps and reuses (the
/// outbox, the read buffers, the call states) would add one or more if it did not.
#[test]
fn a_sequential_call_costs_a_handful_of_allocations() {
    const CALLS: u64 = 2_000;
    const BOUND: f64 = 3.1;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let client = runtime.block_on(async {
        let (addr, server) = raw::echo_server().await;
        let client = tidl_runtime::Client::dial(addr).await.expect("dial");
        calls(&client, 200).await;
        (client, server)
    });
    let info = allocation_counter::measure(|| runtime.block_on(calls(&client.0, CALLS)));
    let per_call = info.count_total as f64 / CALLS as f64;
    eprintln!("{per_call:.2} allocations per call");
    assert!(per_call <= BOUND, "{per_call:.2} allocations per call, bound {BOUND}");
}

async fn calls(client: &tidl_runtime::Client, n: u64) {
    let options = tidl_runtime::CallOptions::default();
    for _ in 0..n {
        let reply = tidl_runtime::Invoke::call::<_, String, String>(
            client,
            tidl_runtime::Method::new("Echo", "echo"),
            "ping",
            &options,
        )
        .await;
        assert_eq!(reply.expect("echo").as_str(), "ping");
    }
}
