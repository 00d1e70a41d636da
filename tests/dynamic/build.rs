//! Compiles the schema whose values the tests encode both ways.

fn main() {
    if let Err(e) = tidl_compiler::Config::new().compile(&["tidl/values.tidl"]) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
