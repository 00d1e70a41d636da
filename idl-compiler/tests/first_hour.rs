//! Exact-text tests of the hints for a newcomer's first mistakes: swapped letters in a name, an
//! import without its `.tidl`, a Rust path, and an error type that `?` cannot use.

use tidl_compiler::{Config, Source};

/// Compiles the files (each a root) and returns the rendered errors.
fn errors(files: &[(&str, &str)]) -> String {
    let sources: Vec<Source<'_>> = files.iter().map(|(path, text)| Source { path, text }).collect();
    match Config::new().generate(&sources) {
        Ok(_) => panic!("expected errors, but the input compiled"),
        Err(e) => format!("{e}\n"),
    }
}

/// Compiles `text` as `test.tidl`, which must compile, and returns its rendered warnings.
fn warnings(text: &str) -> String {
    let files = Config::new().generate(&[Source { path: "test.tidl", text }]).unwrap_or_else(|e| panic!("{e}"));
    files[0].warnings.clone()
}

#[test]
fn swapped_letters_get_a_suggestion() {
    let text = "struct Place {
    name: string,
}

struct Point {
    x: i32,
}

service Map {
    rpc find(string) -> Plcae;
    rpc at(Ponit) -> string;
}
";
    assert_eq!(
        errors(&[("test.tidl", text)]),
        r#"error: unknown type `Plcae`
  --> test.tidl:10:25
   |
10 |     rpc find(string) -> Plcae;
   |                         ^^^^^ did you mean `Place`?

error: unknown type `Ponit`
  --> test.tidl:11:12
   |
11 |     rpc at(Ponit) -> string;
   |            ^^^^^ did you mean `Point`?

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

const GEO: &str = "package geo;

struct Point {
    x: i32,
}
";

#[test]
fn an_import_without_its_extension_suggests_the_file_next_to_it() {
    let main = r#"import "geo";

service Map {
    rpc at(geo.Point) -> string;
}
"#;
    assert_eq!(
        errors(&[("m.tidl", main), ("geo.tidl", GEO)]),
        r#"error: cannot find the imported file `geo`
 --> m.tidl:1:1
  |
1 | import "geo";
  | ^^^^^^^^^^^^^ did you mean `"geo.tidl"`?
  |
  = help: looked in: .

error: could not compile the .tidl input due to 1 previous error
"#
    );
    // Without `geo.tidl`, nothing to suggest.
    assert!(!errors(&[("m.tidl", main)]).contains("did you mean"));
}

#[test]
fn a_rust_path_is_answered_with_the_dotted_one() {
    let main = r#"import "geo.tidl";

service Map {
    rpc at(geo::Point) -> string;
}
"#;
    assert_eq!(
        errors(&[("m.tidl", main), ("geo.tidl", GEO)]),
        r#"error: `.tidl` paths are written with `.`, not `::`
 --> m.tidl:4:12
  |
4 |     rpc at(geo::Point) -> string;
  |            ^^^^^^^^^^ did you mean `geo.Point`?

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn an_error_type_without_display_is_a_warning() {
    let text = "type Names = list<string>;

service Dir {
    rpc find(string) -> u64 throws list<string>;
    rpc all() throws Names;
    rpc count() throws u32;
}
";
    assert_eq!(
        warnings(text),
        r#"warning: `list<string>` cannot be shown as an error message
 --> test.tidl:4:36
  |
4 |     rpc find(string) -> u64 throws list<string>;
  |                                    ^^^^^^^^^^^^ has no `Display`, so the call's `tidl_runtime::Error` is not a `std::error::Error`
  |
  = help: `?` cannot turn the call's error into a `Box<dyn std::error::Error>`; throw a `struct` or an `enum` (they get a `Display`), a `string` or a number

warning: `Names` cannot be shown as an error message
 --> test.tidl:5:22
  |
5 |     rpc all() throws Names;
  |                      ^^^^^ has no `Display`, so the call's `tidl_runtime::Error` is not a `std::error::Error`
  |
  = help: `?` cannot turn the call's error into a `Box<dyn std::error::Error>`; throw a `struct` or an `enum` (they get a `Display`), a `string` or a number

"#
    );
    // Good error types say nothing.
    assert_eq!(
        warnings("struct Oops {}\n\nservice S {\n    rpc a() throws Oops;\n    rpc b() throws string;\n}\n"),
        ""
    );
}

#[test]
fn warnings_are_shown_with_errors_but_not_counted() {
    let text = "service Dir {
    rpc find(string) -> u64 throws bytes;
    rpc bad(strng);
}
";
    assert_eq!(
        errors(&[("test.tidl", text)]),
        r#"warning: `bytes` cannot be shown as an error message
 --> test.tidl:2:36
  |
2 |     rpc find(string) -> u64 throws bytes;
  |                                    ^^^^^ has no `Display`, so the call's `tidl_runtime::Error` is not a `std::error::Error`
  |
  = help: `?` cannot turn the call's error into a `Box<dyn std::error::Error>`; throw a `struct` or an `enum` (they get a `Display`), a `string` or a number

error: unknown type `strng`
 --> test.tidl:3:13
  |
3 |     rpc bad(strng);
  |             ^^^^^ did you mean `string`?

error: could not compile the .tidl input due to 1 previous error
"#
    );
}
