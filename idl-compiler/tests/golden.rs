//! Golden-file tests: the Rust generated for a `.tidl` file must equal the checked-in
//! `tests/golden/<name>.rs`. Run with `TIDL_BLESS=1` to rewrite the expected files after an
//! intended change, and review the diff.

use std::path::{Path, PathBuf};
use tidl_compiler::{Config, Source};

fn check_golden(tidl: &Path, expected: &Path) {
    let text = std::fs::read_to_string(tidl).expect("read .tidl");
    let path = tidl.file_name().and_then(|n| n.to_str()).expect("file name");
    let generated = Config::new().generate(&[Source { path, text: &text }]).unwrap_or_else(|e| panic!("{e}"));
    compare(&generated[0].code, tidl, expected);
}

fn compare(code: &str, tidl: &Path, expected: &Path) {
    if std::env::var_os("TIDL_BLESS").is_some() {
        std::fs::write(expected, code).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    assert!(
        code == want,
        "generated code for {} differs from {}; rerun with TIDL_BLESS=1 if the change is intended\n\n{code}",
        tidl.display(),
        expected.display()
    );
}

fn here(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn services_tidl() {
    check_golden(&here("../services.tidl"), &here("tests/golden/services.rs"));
}

#[test]
fn streams() {
    check_golden(&here("tests/golden/streams.tidl"), &here("tests/golden/streams.rs"));
}

#[test]
fn kitchen_sink() {
    check_golden(&here("tests/golden/kitchen_sink.tidl"), &here("tests/golden/kitchen_sink.rs"));
}

/// The runtime's built-in services (`tidl.Reflection`, `tidl.Health`) are served from code
/// generated from `runtime/src/builtin/tidl.tidl`, checked in beside it: the runtime cannot run
/// the compiler in a build script (the compiler's `tidl` tool depends on the runtime).
#[test]
fn the_runtimes_built_in_services() {
    let tidl = here("../runtime/src/builtin/tidl.tidl");
    let text = std::fs::read_to_string(&tidl).expect("read .tidl");
    assert_eq!(tidl_compiler::format("tidl.tidl", &text).expect("it parses"), text, "run `tidl fmt` on it");
    let mut config = Config::new();
    config.type_attribute("tidl.ServingStatus", "#[derive(Copy, Eq, Hash)]");
    let generated = config.generate(&[Source { path: "tidl.tidl", text: &text }]).unwrap_or_else(|e| panic!("{e}"));
    compare(&generated[0].code, &tidl, &here("../runtime/src/builtin/tidl.rs"));
}

#[test]
fn a_schema_of_several_files_and_packages() {
    // The schema the `tidl-schema-tests` crate compiles from its build script.
    let dir = here("../tests/schema/tidl");
    let mut config = Config::new();
    config.include_dir(dir.join("vendor"));
    let generated = config.generate_files(&[dir.join("shop.tidl")]).unwrap_or_else(|e| panic!("{e}"));
    let code = generated[0].code.replace(&dir.display().to_string(), "tests/schema/tidl");
    compare(&code, &dir.join("shop.tidl"), &here("tests/golden/shop.rs"));
}

#[test]
fn a_source_given_twice_is_one_root() {
    let text = "service Greeter { rpc hello(string) -> string; }";
    let sources = [Source { path: "x/greeter.tidl", text }, Source { path: "./x/greeter.tidl", text: "junk" }];
    let generated = Config::new().generate(&sources).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generated.len(), 1);
    assert!(generated[0].code.contains("pub trait Greeter"));
}

#[test]
fn client_only_and_server_only_generation() {
    let text = "service Greeter { rpc hello(string) -> string; }";
    let sources = [Source { path: "greeter.tidl", text }];
    let client = Config::new().build_server(false).generate(&sources).expect("client only");
    assert!(client[0].code.contains("pub struct GreeterClient"));
    assert!(!client[0].code.contains("pub trait Greeter:") && !client[0].code.contains("GreeterServer"));
    let server = Config::new().build_client(false).generate(&sources).expect("server only");
    assert!(server[0].code.contains("pub trait Greeter:") && server[0].code.contains("pub struct GreeterServer"));
    assert!(!server[0].code.contains("GreeterClient"));
}

#[test]
fn every_schema_in_the_repository_is_formatted() {
    let mut files = vec![here("../services.tidl"), here("../tests/support.tidl"), here("../tests/operate.tidl")];
    for dir in [here("../tests/schema/tidl"), here("../tests/dynamic/tidl"), here("tests/golden")] {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "tidl") {
                    files.push(path);
                }
            }
        }
    }
    assert!(files.len() >= 8, "found {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let formatted = tidl_compiler::format(&file.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(formatted == text, "{} is not formatted; run `tidl fmt` on it", file.display());
    }
}
