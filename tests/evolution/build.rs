//! Compiles both versions of the schema; each becomes its own module.

fn main() {
    if let Err(e) = tidl_compiler::Config::new().compile(&["tidl/v1.tidl", "tidl/v2.tidl"]) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
