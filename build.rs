//! Generates Rust from the `.tidl` files (see `src/lib.rs`, `src/lab.rs`, `tests/` and
//! `examples/tracing.rs`).
fn main() {
    tidl_compiler::compile(&[
        "services.tidl",
        "tests/support.tidl",
        "tests/operate.tidl",
        "examples/lab.tidl",
        "examples/shop.tidl",
    ]);
}
