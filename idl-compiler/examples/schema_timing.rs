//! Times the compiler on a generated 10,000-line schema: parsing and checking alone (what
//! `tidl check` does), and everything (what a build script does).
//!
//! `cargo run --release -p tidl-compiler --example schema_timing` (and without `--release` for a
//! build script's default, unoptimised compiler).

use std::time::{Duration, Instant};
use tidl_compiler::{Config, Source};

/// About `lines` lines of structs, enums, aliases and services that refer to each other.
fn schema(lines: usize) -> String {
    let mut out = vec!["/// A generated schema, to time the compiler.".to_owned(), "package big.schema;".to_owned()];
    let mut i = 0;
    while out.len() < lines {
        let previous =
            if i == 0 { "    first: bool,".to_owned() } else { format!("    previous: option<Record{}>,", i - 1) };
        out.extend([
            String::new(),
            format!("/// Record number {i}."),
            format!("struct Record{i} {{"),
            "    id: u64,".into(),
            "    name: string,".into(),
            "    tags: list<string>,".into(),
            "    attributes: map<string, option<f64>>,".into(),
            previous,
            "    digest: [u8; 16],".into(),
            "}".into(),
            String::new(),
            format!("/// Kinds of record {i}."),
            format!("enum Kind{i} {{"),
            "    Empty,".into(),
            format!("    One(Record{i}),"),
            format!("    Many {{ items: list<Record{i}>, total: u32 }},"),
            "}".into(),
            String::new(),
            format!("type Alias{i} = list<Kind{i}>;"),
        ]);
        if i % 10 == 9 {
            out.extend([String::new(), format!("/// Service number {i}."), format!("service Service{i} {{")]);
            out.extend(
                (0..10).map(|j| format!("    rpc get{j}(Record{}) -> Alias{} throws Kind{};", i - j, i - j, i - j)),
            );
            out.push("}".into());
        }
        i += 1;
    }
    out.join("\n") + "\n"
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let text = schema(10_000);
    let dir = std::env::temp_dir().join("tidl-schema-timing");
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join("big.tidl");
    std::fs::write(&path, &text).expect("write schema");
    let config = Config::new();
    let runs = 7;
    let check: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            config.check_files(&[&path]).expect("the schema is valid");
            start.elapsed()
        })
        .collect();
    let mut generated = 0;
    let all: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let files = config.generate(&[Source { path: "big.tidl", text: &text }]).expect("the schema compiles");
            generated = files[0].code.lines().count();
            start.elapsed()
        })
        .collect();
    println!(
        "{} lines of .tidl -> {generated} lines of Rust; median of {runs}: check {:.3} s, generate {:.3} s",
        text.lines().count(),
        median(check).as_secs_f64(),
        median(all).as_secs_f64()
    );
}
