//! The dependency block a new user copies is the same everywhere it is shown: the README's tour,
//! the language reference's "Build integration" and this crate's documentation.

use std::path::Path;

/// The text of a file of the repository, named relative to this crate.
fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The one `toml` code block of `text` that mentions `tidl-runtime`, without its fences.
fn dependency_block(text: &str, name: &str) -> String {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() != "```toml" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim_end() != "```").collect();
        if block.iter().any(|l| l.contains("tidl-runtime")) {
            blocks.push(block.join("\n"));
        }
    }
    match blocks.len() {
        1 => blocks.remove(0),
        n => panic!("{name}: expected one ```toml block naming `tidl-runtime`, found {n}"),
    }
}

/// The documentation of `src/lib.rs`: its `//!` lines without the prefix.
fn crate_docs(source: &str) -> String {
    source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_the_language_reference_and_the_crate_docs_show_the_same_dependencies() {
    let readme = dependency_block(&read("../README.md"), "README.md");
    let language = dependency_block(&read("../docs/LANGUAGE.md"), "docs/LANGUAGE.md");
    let crate_docs = dependency_block(&crate_docs(&read("src/lib.rs")), "idl-compiler/src/lib.rs");
    assert_eq!(readme, language, "README.md and docs/LANGUAGE.md show different dependency blocks");
    assert_eq!(readme, crate_docs, "README.md and idl-compiler/src/lib.rs show different dependency blocks");
    // The block itself: path dependencies (the crates are not on crates.io yet), the tokio
    // features the tour uses, and the compiler without its command-line tool.
    for expected in [
        "[dependencies]",
        "tidl-runtime = { path = \"../tidl/runtime\" }",
        "tokio = { version = \"1\", features = [\"rt-multi-thread\", \"macros\", \"net\", \"time\"] }",
        "[build-dependencies]",
        "tidl-compiler = { path = \"../tidl/idl-compiler\", default-features = false }",
    ] {
        assert!(readme.lines().any(|l| l == expected), "the dependency block lacks `{expected}`:\n{readme}");
    }
}
