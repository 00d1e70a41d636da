//! Exact-text tests of the compiler's diagnostics: every check, as a user sees it in
//! `tidl check`, in `cargo build` and in `tidl_compiler::Error`'s `Display`.

use tidl_compiler::{Config, Source};

/// Compiles `text` as `test.tidl` and returns the rendered errors.
fn check(text: &str) -> String {
    match Config::new().generate(&[Source { path: "test.tidl", text }]) {
        Ok(_) => panic!("expected errors, but the input compiled"),
        Err(e) => format!("{e}\n"),
    }
}

#[test]
fn accessor_collision() {
    let text = r#"service Call {}"#;
    assert_eq!(
        check(text),
        r#"error: a service named `Call` cannot have a client accessor
 --> test.tidl:1:9
  |
1 | service Call {}
  |         ^^^^ would add `call()` to `Client`, which already has a method of that name
  |
  = help: rename the service

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn builtin_redefined() {
    let text = r#"struct string {}"#;
    assert_eq!(
        check(text),
        r#"error: `string` is a built-in type and cannot be redefined
 --> test.tidl:1:8
  |
1 | struct string {}
  |        ^^^^^^ built-in name

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn case_collision() {
    let text = r#"struct point_2d {}
struct Point2d {}"#;
    assert_eq!(
        check(text),
        r#"error: `point_2d` and `Point2d` would both be named `Point2d` in Rust
 --> test.tidl:2:8
  |
1 | struct point_2d {}
  |        -------- `point_2d` is declared here
2 | struct Point2d {}
  |        ^^^^^^^ also `Point2d` in Rust
  |
  = help: rename one of them

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn duplicate_field() {
    let text = r#"struct Point { x: i32, x: i32 }"#;
    assert_eq!(
        check(text),
        r#"error: the field `x` is defined twice in `Point`
 --> test.tidl:1:24
  |
1 | struct Point { x: i32, x: i32 }
  |                - first defined here
  |                        ^ defined again here

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn duplicate_method() {
    let text = r#"service Store {
    rpc get(string) -> string;
    rpc get(u64) -> string;
}"#;
    assert_eq!(
        check(text),
        r#"error: the method `get` is defined twice in service `Store`
 --> test.tidl:3:9
  |
2 |     rpc get(string) -> string;
  |         --- first defined here
3 |     rpc get(u64) -> string;
  |         ^^^ defined again here

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn duplicate_type() {
    let text = r#"struct Point { x: i32 }

enum Point { A }"#;
    assert_eq!(
        check(text),
        r#"error: the name `Point` is defined twice
 --> test.tidl:3:6
  |
1 | struct Point { x: i32 }
  |        ----- first defined here
...
3 | enum Point { A }
  |      ^^^^^ redefined here

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn duplicate_variant() {
    let text = r#"enum Shape {
    Circle(f64),
    Circle,
}"#;
    assert_eq!(
        check(text),
        r#"error: the variant `Circle` is defined twice in `Shape`
 --> test.tidl:3:5
  |
2 |     Circle(f64),
  |     ------ first defined here
3 |     Circle,
  |     ^^^^^^ defined again here

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn type_name_taken_by_generated_server() {
    let text = r#"service Example {}
struct ExampleServer {}
"#;
    assert_eq!(
        check(text),
        r#"error: the name `ExampleServer` is taken by the server generated for service `Example`
 --> test.tidl:2:8
  |
1 | service Example {}
  |         ------- service `Example` generates `ExampleServer`
2 | struct ExampleServer {}
  |        ^^^^^^^^^^^^^
  |
  = help: rename the type or the service

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn generated_name_collision() {
    let text = r#"struct ExampleClient {}
service Example {}"#;
    assert_eq!(
        check(text),
        r#"error: service `Example` needs the name `ExampleClient` for its client, but `ExampleClient` already has it
 --> test.tidl:2:9
  |
1 | struct ExampleClient {}
  |        ------------- `ExampleClient` is declared here
2 | service Example {}
  |         ^^^^^^^
  |
  = help: rename the type or the service

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn map_key() {
    let text = r#"struct Histogram { buckets: map<f64, u64> }"#;
    assert_eq!(
        check(text),
        r#"error: this type cannot be a map key
 --> test.tidl:1:33
  |
1 | struct Histogram { buckets: map<f64, u64> }
  |                                 ^^^ not `bool`, an integer, `string` or `bytes`
  |
  = help: map keys must be `bool`, an integer type, `string` or `bytes`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn method_case_collision() {
    let text = r#"service Store {
    rpc getItem();
    rpc get_item();
}"#;
    assert_eq!(
        check(text),
        r#"error: the methods `getItem` and `get_item` would both be named `get_item` in Rust
 --> test.tidl:3:9
  |
2 |     rpc getItem();
  |         ------- first defined here
3 |     rpc get_item();
  |         ^^^^^^^^ defined again here

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn missing_semicolon() {
    let text = r#"service Store {
    rpc get(string) -> string
    rpc put(string);
}"#;
    assert_eq!(
        check(text),
        r#"error: expected `;`, `<` or `throws`, found keyword `rpc`
 --> test.tidl:3:5
  |
3 |     rpc put(string);
  |     ^^^

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn misspelt_keyword() {
    let text = r#"servce Store {}"#;
    assert_eq!(
        check(text),
        r#"error: expected `enum`, `service` or `struct`, found name `servce`
 --> test.tidl:1:1
  |
1 | servce Store {}
  | ^^^^^^ did you mean `service`?

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn recovery_reports_every_declaration() {
    let text = r#"struct A { x: i32 y: i32 }

struct B { z: nope }

enum C { D( }
"#;
    assert_eq!(
        check(text),
        r#"error: expected `,`, `<` or `}`, found name `y`
 --> test.tidl:1:19
  |
1 | struct A { x: i32 y: i32 }
  |                   ^

error: unknown type `nope`
 --> test.tidl:3:15
  |
3 | struct B { z: nope }
  |               ^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>` and `map<K, V>`; others must be declared with `struct` or `enum`

error: expected a type, found `}`
 --> test.tidl:5:13
  |
5 | enum C { D( }
  |             ^

error: could not compile the .tidl input due to 3 previous errors
"#
    );
}

#[test]
fn reserved_client_method() {
    let text = r#"service Store {
    rpc timeout();
}"#;
    assert_eq!(
        check(text),
        r#"error: a method cannot be named `timeout`
 --> test.tidl:2:9
  |
2 |     rpc timeout();
  |         ^^^^^^^ `timeout` is a method of every generated client
  |
  = help: the reserved method names are: new, timeout, context, with_options, borrow, borrow_mut, clone, clone_from, clone_into, fmt, from, into, to_owned, try_from, try_into, type_id

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn reserved_word() {
    let text = r#"struct Node {
    self: u8,
}"#;
    assert_eq!(
        check(text),
        r#"error: `self` cannot be used as a name
 --> test.tidl:2:5
  |
2 |     self: u8,
  |     ^^^^ reserved in Rust
  |
  = help: `self`, `Self`, `super`, `crate` and `_` cannot name anything in generated Rust code

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn service_as_type() {
    let text = r#"service Store {}
struct Order { store: Store }"#;
    assert_eq!(
        check(text),
        r#"error: `Store` is a service, not a type
 --> test.tidl:2:23
  |
1 | service Store {}
  |         ----- the service is declared here
2 | struct Order { store: Store }
  |                       ^^^^^

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn type_argument_count() {
    let text = r#"struct Index {
    entries: map<string>,
    names: string<u8>,
}"#;
    assert_eq!(
        check(text),
        r#"error: `map` takes 2 type arguments, but 1 was given
 --> test.tidl:2:14
  |
2 |     entries: map<string>,
  |              ^^^^^^^^^^^
  |
  = help: write `map<K, V>`

error: `string` takes no type arguments
 --> test.tidl:3:12
  |
3 |     names: string<u8>,
  |            ^^^^^^^^^^

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn unexpected_eof() {
    let text = r#"service Store {
    rpc get(string) -> string;
"#;
    assert_eq!(
        check(text),
        r#"error: expected `rpc` or `}`, found the end of the file
 --> test.tidl:3:1
  |
3 | 
  | ^

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn uninhabited() {
    let text = r#"struct Node { value: i32, next: Node }"#;
    assert_eq!(
        check(text),
        r#"error: `Node` can never have a value
 --> test.tidl:1:8
  |
1 | struct Node { value: i32, next: Node }
  |        ^^^^ it always contains itself
  |
  = help: put the recursive field inside `option<...>` or `list<...>`, or add a variant that does not recurse

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn unknown_type_foreign() {
    let text = r#"service Store {
    rpc all() -> Vec;
}"#;
    assert_eq!(
        check(text),
        r#"error: unknown type `Vec`
 --> test.tidl:2:18
  |
2 |     rpc all() -> Vec;
  |                  ^^^ did you mean `list`?

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn unknown_type_no_suggestion() {
    let text = r#"struct Order { item: Widget }"#;
    assert_eq!(
        check(text),
        r#"error: unknown type `Widget`
 --> test.tidl:1:22
  |
1 | struct Order { item: Widget }
  |                      ^^^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>` and `map<K, V>`; others must be declared with `struct` or `enum`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn unknown_type_suggestion() {
    let text = r#"struct Point { x: i32, y: strng }"#;
    assert_eq!(
        check(text),
        r#"error: unknown type `strng`
 --> test.tidl:1:27
  |
1 | struct Point { x: i32, y: strng }
  |                           ^^^^^ did you mean `string`?

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn zero_sized_list() {
    let text = r#"struct Nothing {}
struct Many { units: list<()>, nothings: list<Nothing> }"#;
    assert_eq!(
        check(text),
        r#"error: list elements must take up space on the wire
 --> test.tidl:2:27
  |
2 | struct Many { units: list<()>, nothings: list<Nothing> }
  |                           ^^ this type encodes to zero bytes
  |
  = help: a peer could claim billions of such elements in a tiny message; send a count (`u64`) instead

error: list elements must take up space on the wire
 --> test.tidl:2:47
  |
2 | struct Many { units: list<()>, nothings: list<Nothing> }
  |                                               ^^^^^^^ this type encodes to zero bytes
  |
  = help: a peer could claim billions of such elements in a tiny message; send a count (`u64`) instead

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn names_that_start_with_a_digit_in_rust() {
    let text = r#"struct _1 {}
struct A { _9lives: u8 }"#;
    assert_eq!(
        check(text),
        r#"error: `_1` cannot be used as a name
 --> test.tidl:1:8
  |
1 | struct _1 {}
  |        ^^ would be `1` in Rust, which starts with a digit
  |
  = help: names must start with a letter once leading underscores are dropped

error: `_9lives` cannot be used as a name
 --> test.tidl:2:12
  |
2 | struct A { _9lives: u8 }
  |            ^^^^^^^ would be `9lives` in Rust, which starts with a digit
  |
  = help: names must start with a letter once leading underscores are dropped

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn names_that_clash_with_methods_every_client_has() {
    let text = r#"service ToOwned {}
service Store { rpc clone(); }"#;
    assert_eq!(
        check(text),
        r#"error: a service named `ToOwned` cannot have a client accessor
 --> test.tidl:1:9
  |
1 | service ToOwned {}
  |         ^^^^^^^ would add `to_owned()` to `Client`, which already has a method of that name
  |
  = help: rename the service

error: a method cannot be named `clone`
 --> test.tidl:2:21
  |
2 | service Store { rpc clone(); }
  |                     ^^^^^ `clone` is a method of every generated client
  |
  = help: the reserved method names are: new, timeout, context, with_options, borrow, borrow_mut, clone, clone_from, clone_into, fmt, from, into, to_owned, try_from, try_into, type_id

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn a_stray_brace_and_a_misspelt_keyword_after_another_error_are_both_reported() {
    let text = r#"struct A { x: i32 y: i32 }
}
servce Store {}"#;
    assert_eq!(
        check(text),
        r#"error: expected `,`, `<` or `}`, found name `y`
 --> test.tidl:1:19
  |
1 | struct A { x: i32 y: i32 }
  |                   ^

error: expected `enum`, `service` or `struct`, found name `servce`
 --> test.tidl:3:1
  |
3 | servce Store {}
  | ^^^^^^ did you mean `service`?

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}
