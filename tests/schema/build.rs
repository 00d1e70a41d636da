//! Compiles the schema in `tidl/` with a `Config`: an include directory, extra derives and
//! attributes, and a client-only root.

fn main() {
    let mut config = tidl_compiler::Config::new();
    config
        .include_dir("tidl/vendor")
        .type_attribute("geo.Point", "#[derive(Copy)]")
        .type_attribute("shop.Point", "#[derive(Copy, Eq, Hash, Default)]")
        .type_attribute("money", "#[derive(Eq, Hash)]")
        .field_attribute("shop.Order.customer", "#[doc(alias = \"client\")]");
    let mut client_only = tidl_compiler::Config::new();
    client_only.build_server(false);
    for result in [config.compile(&["tidl/shop.tidl"]), client_only.compile(&["tidl/locator.tidl"])] {
        if let Err(e) = result {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
