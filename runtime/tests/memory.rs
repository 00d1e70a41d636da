//! Memory stays bounded under attack: what a peer claims (a 4 GiB frame, a string of 4 EiB, ten
//! thousand cancels) is never allocated. Every byte allocated while the server handles the
//! attacks is counted (`allocation_counter` counts this thread, which runs the whole runtime).

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
