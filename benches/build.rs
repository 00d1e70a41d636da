//! Generates the tidl side of the benchmark from `bench.tidl`.
fn main() {
    tidl_compiler::compile(&["bench.tidl"]);
}
