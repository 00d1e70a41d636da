//! Fuzzes the whole front end on arbitrary input: parsing, checking, code generation and
//! formatting must never panic or hang, and formatting must give a file that parses and
//! formats to itself.
//!
//! Run it with `cargo fuzz run parse` from `idl-compiler/` (see fuzz/README.md).

#![no_main]

use tidl_compiler::{Config, Source, format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::new().generate(&[Source { path: "fuzz.tidl", text }]);
    if let Ok(formatted) = format("fuzz.tidl", text) {
        let again = format("fuzz.tidl", &formatted).expect("formatted output parses");
        assert_eq!(again, formatted, "formatting is idempotent");
    }
});
