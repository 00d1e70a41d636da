//! Golden-file tests: the Rust generated for a `.tidl` file must equal the checked-in
//! `tests/golden/<name>.rs`. Run with `TIDL_BLESS=1` to rewrite the expected files after an
//! intended change, and review the diff.

use std::path::{Path, PathBuf};
use tidl_compiler::{Config, Source};

fn check_golden(tidl: &Path, expected: &Path) {
    let text = std::fs::read_to_string(tidl).expect("read .tidl");
    let path = tidl.file_name().and_then(|n| n.to_str()).expect("file name");
    let generated = Config::new().generate(&[Source { path, text: &text }]).unwrap_or_else(|e| panic!("{e}"));
    let code = &generated[0].code;
    if std::env::var_os("TIDL_BLESS").is_some() {
        std::fs::write(expected, code).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    assert!(
        *code == want,
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
fn kitchen_sink() {
    check_golden(&here("tests/golden/kitchen_sink.tidl"), &here("tests/golden/kitchen_sink.rs"));
}
