//! Side-by-side benchmarks of tidl, tarpc and a raw length-delimited echo over loopback TCP, and
//! of tidl's streams against tonic's.
//!
//! Run the suite with `cargo bench -p tidl-benches` (add `-- --quick` for a smoke test);
//! BENCHMARKS.md at the repository root describes the cases and holds a full run's results.
//!
//! - [`driver`]: the command line; runs every case in a child process of its own.
//! - [`cases`]: the cases, as run inside a child; [`streams`]: the streaming ones.
//! - [`raw`], [`tarpc_bench`], [`tidl_bench`]: the three implementations behind [`imp::Rpc`];
//!   [`tonic_bench`] and [`tidl_bench`] behind [`imp::StreamRpc`].
//! - [`storm`]: the connection-storm case, with its server in a child process.
//! - [`report`]: markdown tables and the check of the targets.
//! - [`alloc`], [`wire`], [`probe`], [`stats`]: the measuring instruments.

pub mod alloc;
pub mod cases;
pub mod driver;
pub mod imp;
pub mod inline_case;
pub mod layers_case;
pub mod probe;
pub mod raw;
pub mod report;
pub mod stats;
pub mod storm;
pub mod streams;
pub mod structs;
pub mod tarpc_bench;
pub mod tidl_bench;
pub mod tls_case;
pub mod tonic_bench;
pub mod wire;

/// The code generated from `bench.tidl`.
pub mod generated {
    tidl_runtime::include_tidl!("bench");
}
