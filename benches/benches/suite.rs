//! The benchmark suite's entry point: `cargo bench -p tidl-benches [-- --quick]`.
//!
//! Installs the counting allocator (counting stays off except in the cost case) and hands over
//! to [`tidl_benches::driver::main`].

#[global_allocator]
static ALLOC: tidl_benches::alloc::CountingAlloc = tidl_benches::alloc::CountingAlloc;

fn main() {
    tidl_benches::driver::main();
}
