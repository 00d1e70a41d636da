//! Exact-text tests of the compiler's diagnostics: every check, as a user sees it in
//! `tidl check`, in `cargo build` and in `tidl_compiler::Error`'s `Display`.

use tidl_compiler::{Config, Source};

/// Compiles several files, each a root, and returns the rendered errors.
fn check_files(files: &[(&str, &str)]) -> String {
    check_files_with(&Config::new(), files)
}

/// Like [`check_files`], with the settings of `config` (include directories).
fn check_files_with(config: &Config, files: &[(&str, &str)]) -> String {
    let sources: Vec<Source<'_>> = files.iter().map(|(path, text)| Source { path, text }).collect();
    match config.generate(&sources) {
        Ok(_) => panic!("expected errors, but the input compiled"),
        Err(e) => format!("{e}\n"),
    }
}

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
        r#"error: `Point` is already defined
 --> test.tidl:3:6
  |
1 | struct Point { x: i32 }
  |        ----- first defined here
...
3 | enum Point { A }
  |      ^^^^^ defined again here

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
        r#"error: expected `;` or `throws`, found keyword `rpc`
 --> test.tidl:2:30
  |
2 |     rpc get(string) -> string
  |                              ^ help: add `;` here
3 |     rpc put(string);
  |     --- unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn misspelt_keyword() {
    let text = r#"servce Store {}"#;
    assert_eq!(
        check(text),
        r#"error: expected `enum`, `import`, `package`, `service`, `struct` or `type`, found name `servce`
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
        r#"error: expected `,`, `=` or `}`, found name `y`
 --> test.tidl:1:18
  |
1 | struct A { x: i32 y: i32 }
  |                  ^ help: add `,` here
  |                   - unexpected token

error: unknown type `nope`
 --> test.tidl:3:15
  |
3 | struct B { z: nope }
  |               ^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with `struct`, `enum` or `type`

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
 --> test.tidl:2:31
  |
2 |     rpc get(string) -> string;
  |                               ^ help: add `}` here

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
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with `struct`, `enum` or `type`

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
        r#"error: expected `,`, `=` or `}`, found name `y`
 --> test.tidl:1:18
  |
1 | struct A { x: i32 y: i32 }
  |                  ^ help: add `,` here
  |                   - unexpected token

error: expected `enum`, `import`, `package`, `service`, `struct` or `type`, found `}`
 --> test.tidl:2:1
  |
2 | }
  | ^

error: expected `enum`, `import`, `package`, `service`, `struct` or `type`, found name `servce`
 --> test.tidl:3:1
  |
3 | servce Store {}
  | ^^^^^^ did you mean `service`?

error: could not compile the .tidl input due to 3 previous errors
"#
    );
}

#[test]
fn unknown_and_misused_attributes() {
    let text = r#"@depreciated
struct A {}
@deprecated("a", "b")
@deprecated
struct B {}
"#;
    assert_eq!(
        check(text),
        r#"error: unknown attribute `@depreciated`
 --> test.tidl:1:2
  |
1 | @depreciated
  |  ^^^^^^^^^^^
  |
  = help: the attributes are `@deprecated("why, and what to use instead")`, `@frozen` on a struct, `@open` on an enum and `@idempotent` on a method

error: `@deprecated` takes at most one argument, its note
 --> test.tidl:3:1
  |
3 | @deprecated("a", "b")
  | ^^^^^^^^^^^^^^^^^^^^^
  |
  = help: write `@deprecated("use echo2")`

error: `@deprecated` is given twice
 --> test.tidl:4:1
  |
4 | @deprecated
  | ^^^^^^^^^^^

error: could not compile the .tidl input due to 3 previous errors
"#
    );
}

#[test]
fn streams_only_start_a_method_argument_or_reply() {
    let text = r#"struct Event { stream: u64, items: stream u64 }
struct Index { by_id: map<u64, stream Event>, all: list<stream Event> }
enum Change { Added(stream Event), Removed { ids: option<stream u64> } }
"#;
    assert_eq!(
        check(text),
        r#"error: `stream` may only start a method's argument or reply
 --> test.tidl:1:36
  |
1 | struct Event { stream: u64, items: stream u64 }
  |                                    ^^^^^^^^^^ a field cannot be a stream
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:2:32
  |
2 | struct Index { by_id: map<u64, stream Event>, all: list<stream Event> }
  |                                ^^^^^^^^^^^^ the values of a `map` cannot be streams
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:2:57
  |
2 | struct Index { by_id: map<u64, stream Event>, all: list<stream Event> }
  |                                                         ^^^^^^^^^^^^ the elements of a `list` cannot be streams
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:3:21
  |
3 | enum Change { Added(stream Event), Removed { ids: option<stream u64> } }
  |                     ^^^^^^^^^^^^ an enum variant cannot hold a stream
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:3:58
  |
3 | enum Change { Added(stream Event), Removed { ids: option<stream u64> } }
  |                                                          ^^^^^^^^^^ an `option` cannot hold a stream
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: could not compile the .tidl input due to 5 previous errors
"#
    );
}

#[test]
fn an_alias_cannot_be_a_stream() {
    let text = r#"type Events = stream Event;
struct Event { id: u64 }
service Feed {
    rpc watch() -> Events;
}
"#;
    assert_eq!(
        check(text),
        r#"error: `stream` may only start a method's argument or reply
 --> test.tidl:1:15
  |
1 | type Events = stream Event;
  |               ^^^^^^^^^^^^ a type alias cannot stand for a stream
  |
  = help: write `stream` in the method itself (`rpc watch(Filter) -> stream Event;`); an alias may name the item type

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn streams_of_streams_and_streams_inside_method_types() {
    let text = r#"service Feed {
    rpc watch(u64) -> stream stream Event;
    rpc pulse(stream stream ());
    rpc search(stream string) -> stream list<stream Event> throws stream string;
}
struct Event { id: u64 }
"#;
    assert_eq!(
        check(text),
        r#"error: a stream's items cannot be streams
 --> test.tidl:2:30
  |
2 |     rpc watch(u64) -> stream stream Event;
  |                              ^^^^^^^^^^^^ a stream of streams
  |
  = help: write `stream` once; to send items in groups, stream a `list<T>`

error: a stream's items cannot be streams
 --> test.tidl:3:22
  |
3 |     rpc pulse(stream stream ());
  |                      ^^^^^^^^^ a stream of streams
  |
  = help: write `stream` once; to send items in groups, stream a `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:4:46
  |
4 |     rpc search(stream string) -> stream list<stream Event> throws stream string;
  |                                              ^^^^^^^^^^^^ the elements of a `list` cannot be streams
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: `stream` may only start a method's argument or reply
 --> test.tidl:4:67
  |
4 |     rpc search(stream string) -> stream list<stream Event> throws stream string;
  |                                                                   ^^^^^^^^^^^^^ a method's error cannot be a stream
  |
  = help: a method streams its argument (`rpc upload(stream Chunk);`) or its reply (`rpc watch(Filter) -> stream Event;`); to send several values in one message, use `list<T>`

error: could not compile the .tidl input due to 4 previous errors
"#
    );
}

#[test]
fn stream_items_take_up_space() {
    let text = r#"type Tick = ();
struct Empty {}
service Clock {
    rpc ticks() -> stream Tick;
    rpc pokes(stream Empty) -> u64;
}
"#;
    assert_eq!(
        check(text),
        r#"error: stream items must take up space on the wire
 --> test.tidl:4:27
  |
4 |     rpc ticks() -> stream Tick;
  |                           ^^^^ this type encodes to zero bytes
  |
  = help: an item that encodes to nothing carries no information but its arrival; stream a type with a value, such as a `u64` count

error: stream items must take up space on the wire
 --> test.tidl:5:22
  |
5 |     rpc pokes(stream Empty) -> u64;
  |                      ^^^^^ this type encodes to zero bytes
  |
  = help: an item that encodes to nothing carries no information but its arrival; stream a type with a value, such as a `u64` count

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn stream_is_still_a_name() {
    // `stream` is a keyword only before a type: fields, methods and types may be named so.
    let text = r#"struct stream { stream: u64 }
service Feed {
    rpc stream(stream) -> stream stream;
}
"#;
    let generated = Config::new().generate(&[Source { path: "test.tidl", text }]).unwrap_or_else(|e| panic!("{e}"));
    let code = &generated[0].code;
    assert!(code.contains("pub stream: u64") && code.contains("out: ::tidl_runtime::Sink<Stream>"), "{code}");
    assert!(code.contains("::tidl_runtime::Invoke::server_stream("), "{code}");
}

#[test]
fn array_lengths() {
    let text = r#"struct Keys {
    a: [u8; 0],
    b: [u8; 64],
    c: [u8; 99999999999999999999999],
}
"#;
    assert_eq!(
        check(text),
        r#"error: an array must have at least one element
 --> test.tidl:2:13
  |
2 |     a: [u8; 0],
  |             ^

error: arrays can have at most 32 elements
 --> test.tidl:3:13
  |
3 |     b: [u8; 64],
  |             ^^
  |
  = help: use `bytes` or `list<T>` for longer sequences

error: arrays can have at most 32 elements
 --> test.tidl:4:13
  |
4 |     c: [u8; 99999999999999999999999],
  |             ^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use `bytes` or `list<T>` for longer sequences

error: could not compile the .tidl input due to 3 previous errors
"#
    );
}

#[test]
fn an_alias_cycle_is_reported_once() {
    let text = r#"type A = B;
type B = list<A>;
"#;
    assert_eq!(
        check(text),
        r#"error: the type alias `A` refers to itself
 --> test.tidl:1:6
  |
1 | type A = B;
  |      ^ cycle: A -> B -> A
  |
  = help: an alias must name a type that does not lead back to it; use a struct to build a recursive type

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn package_declarations_come_first_and_once() {
    let text = r#"struct X {}
package late;
package again;
"#;
    assert_eq!(
        check(text),
        r#"error: `package` must come before every import and declaration
 --> test.tidl:2:1
  |
2 | package late;
  | ^^^^^^^^^^^^^
  |
  = help: move it to the top of the file

error: a file can only have one `package` declaration
 --> test.tidl:3:1
  |
2 | package late;
  | ------------- the file's package is declared here
3 | package again;
  | ^^^^^^^^^^^^^^

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn qualified_names_name_the_package_or_its_type() {
    let text = r#"package shop;
struct Order { p: geo.Point, q: shop.Ordr }
"#;
    assert_eq!(
        check(text),
        r#"error: there is no package `geo`
 --> test.tidl:2:19
  |
2 | struct Order { p: geo.Point, q: shop.Ordr }
  |                   ^^^^^^^^^

error: package `shop` has no type `Ordr`
 --> test.tidl:2:33
  |
2 | struct Order { p: geo.Point, q: shop.Ordr }
  |                                 ^^^^^^^^^ did you mean `shop.Order`?

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn a_package_segment_must_be_a_usable_name() {
    let text = r#"package a.self;
struct X {}
"#;
    assert_eq!(
        check(text),
        r#"error: `self` cannot be used as a name
 --> test.tidl:1:11
  |
1 | package a.self;
  |           ^^^^ reserved in Rust
  |
  = help: `self`, `Self`, `super`, `crate` and `_` cannot name anything in generated Rust code

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn an_unknown_type_in_a_list_gives_one_error() {
    let text = r#"struct A { x: list<Nope> }
"#;
    assert_eq!(
        check(text),
        r#"error: unknown type `Nope`
 --> test.tidl:1:20
  |
1 | struct A { x: list<Nope> }
  |                    ^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with `struct`, `enum` or `type`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn an_import_cycle_names_every_file() {
    let files = [
        (
            "a.tidl",
            r#"import "b.tidl";
struct A { b: B }
"#,
        ),
        (
            "b.tidl",
            r#"import "a.tidl";
struct B { x: i32 }
"#,
        ),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: import cycle: a.tidl -> b.tidl -> a.tidl
 --> b.tidl:1:1
  |
1 | import "a.tidl";
  | ^^^^^^^^^^^^^^^^
  |
  = help: files cannot import each other in a circle; move what they share into a file both import

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_import_says_where_it_looked() {
    let files = [(
        "m.tidl",
        r#"import "missing.tidl";
struct M {}
"#,
    )];
    assert_eq!(
        check_files(&files),
        r#"error: cannot find the imported file `missing.tidl`
 --> m.tidl:1:1
  |
1 | import "missing.tidl";
  | ^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: looked in: .

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_type_from_a_file_not_imported_directly() {
    let files = [
        (
            "app/main.tidl",
            r#"import "../lib/shapes.tidl";
struct Scene { origin: Point, shapes: list<Shape> }
"#,
        ),
        (
            "lib/shapes.tidl",
            r#"import "point.tidl";
struct Shape { at: Point }
"#,
        ),
        (
            "lib/point.tidl",
            r#"struct Point { x: i32 }
"#,
        ),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: `Point` is declared in `lib/point.tidl`, which this file does not import
 --> app/main.tidl:2:24
  |
2 | struct Scene { origin: Point, shapes: list<Shape> }
  |                        ^^^^^
 ::: lib/point.tidl:1:8
  |
1 | struct Point { x: i32 }
  |        ----- declared here
  |
  = help: add `import "../lib/point.tidl";` to `app/main.tidl`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn brackets_nested_too_deeply() {
    let text = format!("struct A {{\n    x: {}u8{},\n}}\n", "list<".repeat(64), ">".repeat(64));
    assert_eq!(
        check(&text),
        r#"error: brackets nest more than 64 levels deep here
 --> test.tidl:2:327
  |
2 | ...<list<list<list<list<list<list<list<list<u8>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>,
  |                                            ^
  |
  = help: no schema needs this much nesting; give the inner types names of their own with `type` or `struct`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn aliases_nested_too_deeply() {
    let mut text = String::from("type A0 = list<u8>;\n");
    for i in 1..66 {
        text.push_str(&format!("type A{i} = list<A{}>;\n", i - 1));
    }
    assert_eq!(
        check(&text),
        r#"error: the type alias `A64` is too deeply nested
  --> test.tidl:65:6
   |
65 | type A64 = list<A63>;
   |      ^^^ it leads through 64 other aliases
   |
   = help: an alias may lead through at most 63 others; refer to a type further down directly

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn aliases_nested_too_deeply_in_reverse_order() {
    // The same chain, declared from its top down: the same alias is reported.
    let mut lines = vec![String::from("type A0 = list<u8>;")];
    for i in 1..66 {
        lines.push(format!("type A{i} = list<A{}>;", i - 1));
    }
    lines.reverse();
    let text = lines.join("\n") + "\n";
    assert_eq!(
        check(&text),
        r#"error: the type alias `A64` is too deeply nested
 --> test.tidl:2:6
  |
2 | type A64 = list<A63>;
  |      ^^^ it leads through 64 other aliases
  |
  = help: an alias may lead through at most 63 others; refer to a type further down directly

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_type_from_a_file_found_through_an_include_directory() {
    // `top.tidl` finds `mid.tidl` in the include directory `inc`, and `mid.tidl` imports
    // `base.tidl` next to it: from `top.tidl`, `base.tidl` is reached through `inc` too.
    let mut config = Config::new();
    config.include_dir("./inc/");
    let files = [
        (
            "../other/top.tidl",
            r#"import "mid.tidl";

struct Top { base: Base, mid: Mid }
"#,
        ),
        (
            "inc/mid.tidl",
            r#"import "base.tidl";

struct Mid { base: Base }
"#,
        ),
        ("inc/base.tidl", "struct Base { x: i32 }\n"),
    ];
    assert_eq!(
        check_files_with(&config, &files),
        r#"error: `Base` is declared in `inc/base.tidl`, which this file does not import
 --> ../other/top.tidl:3:20
  |
3 | struct Top { base: Base, mid: Mid }
  |                    ^^^^
 ::: inc/base.tidl:1:8
  |
1 | struct Base { x: i32 }
  |        ---- declared here
  |
  = help: add `import "base.tidl";` to `../other/top.tidl`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_type_no_relative_import_reaches() {
    // `lib/base.tidl` is in no include directory, and the way up from `../other` leads through
    // the current directory, whose name the compiler does not know.
    let mut config = Config::new();
    config.include_dir("inc");
    let files = [
        (
            "../other/top.tidl",
            r#"import "mid.tidl";

struct Top { base: Base, mid: Mid }
"#,
        ),
        (
            "inc/mid.tidl",
            r#"import "../lib/base.tidl";

struct Mid { base: Base }
"#,
        ),
        ("lib/base.tidl", "struct Base { x: i32 }\n"),
    ];
    assert_eq!(
        check_files_with(&config, &files),
        r#"error: `Base` is declared in `lib/base.tidl`, which this file does not import
 --> ../other/top.tidl:3:20
  |
3 | struct Top { base: Base, mid: Mid }
  |                    ^^^^
 ::: lib/base.tidl:1:8
  |
1 | struct Base { x: i32 }
  |        ---- declared here
  |
  = help: no relative path from `../other/top.tidl` reaches `lib/base.tidl`: add its directory as an include directory and import it from there

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_type_in_a_package_the_lookup_does_not_search_is_suggested_by_a_name_that_finds_it() {
    let files = [
        (
            "cart.tidl",
            r#"package shop;

import "orders.tidl";
import "geo.tidl";

struct Cart {
    first: Order,
    second: Ordr,
    third: orders.Ordr,
    here: Pont,
}
"#,
        ),
        ("orders.tidl", "package shop.orders;\n\nstruct Order { id: u64 }\n"),
        ("geo.tidl", "package geo;\n\nstruct Point { x: i32 }\n"),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: unknown type `Order`
 --> cart.tidl:7:12
  |
7 |     first: Order,
  |            ^^^^^ did you mean `orders.Order`?

error: unknown type `Ordr`
 --> cart.tidl:8:13
  |
8 |     second: Ordr,
  |             ^^^^ did you mean `orders.Order`?

error: package `shop.orders` has no type `Ordr`
 --> cart.tidl:9:12
  |
9 |     third: orders.Ordr,
  |            ^^^^^^^^^^^ did you mean `orders.Order`?

error: unknown type `Pont`
  --> cart.tidl:10:11
   |
10 |     here: Pont,
   |           ^^^^ did you mean `geo.Point`?

error: could not compile the .tidl input due to 4 previous errors
"#
    );
}

#[test]
fn duplicates_in_an_enum_name_it_with_its_package() {
    let text = r#"package shapes;

enum Shape {
    Rect { w: u32, w: u32 },
    Circle,
    Circle,
}
"#;
    assert_eq!(
        check(text),
        r#"error: the field `w` is defined twice in `shapes.Shape.Rect`
 --> test.tidl:4:20
  |
4 |     Rect { w: u32, w: u32 },
  |            - first defined here
  |                    ^ defined again here

error: the variant `Circle` is defined twice in `shapes.Shape`
 --> test.tidl:6:5
  |
5 |     Circle,
  |     ------ first defined here
6 |     Circle,
  |     ^^^^^^ defined again here

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn a_missing_import_hides_the_unknown_names_of_its_file() {
    // The missing file probably declares `Money`, `money.Cents`, even `geo.Pont` and `Item`:
    // only the import is reported. Other files still report their unknown names.
    let files = [
        (
            "m.tidl",
            r#"package shop;

import "money.tidl";
import "geo.tidl";

struct Order {
    total: Money,
    tax: money.Cents,
    at: geo.Pont,
    items: list<Item>,
}
"#,
        ),
        ("geo.tidl", "package geo;\n\nstruct Point { x: i32 }\n"),
        ("other.tidl", "struct Other { x: Nope }\n"),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: cannot find the imported file `money.tidl`
 --> m.tidl:3:1
  |
3 | import "money.tidl";
  | ^^^^^^^^^^^^^^^^^^^^
  |
  = help: looked in: .

error: unknown type `Nope`
 --> other.tidl:1:19
  |
1 | struct Other { x: Nope }
  |                   ^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with `struct`, `enum` or `type`

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn a_missing_semicolon_after_an_array_type_is_shown_after_it() {
    let text = "type A = [u8; 4]\nstruct P { a: A }\n";
    assert_eq!(
        check(text),
        r#"error: expected `;`, found keyword `struct`
 --> test.tidl:1:17
  |
1 | type A = [u8; 4]
  |                 ^ help: add `;` here
2 | struct P { a: A }
  | ------ unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_semicolon_after_type_arguments_hides_no_declaration() {
    let text = "type A = list<u8>\nstruct P { a: A }\n";
    assert_eq!(
        check(text),
        r#"error: expected `;`, found keyword `struct`
 --> test.tidl:1:18
  |
1 | type A = list<u8>
  |                  ^ help: add `;` here
2 | struct P { a: A }
  | ------ unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_comma_after_type_arguments() {
    let text = "struct A { x: list<u8> y: u8 }\n";
    assert_eq!(
        check(text),
        r#"error: expected `,`, `=` or `}`, found name `y`
 --> test.tidl:1:23
  |
1 | struct A { x: list<u8> y: u8 }
  |                       ^ help: add `,` here
  |                        - unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_semicolon_after_the_package_keeps_the_package() {
    let files = [
        ("geo.tidl", "package geo\n\nstruct Point { x: i32 }\n"),
        ("map.tidl", "package map;\nimport \"geo.tidl\";\nstruct Pin { at: geo.Point }\n"),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: expected `;`, found keyword `struct`
 --> geo.tidl:1:12
  |
1 | package geo
  |            ^ help: add `;` here
...
3 | struct Point { x: i32 }
  | ------ unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_semicolon_after_an_import_keeps_the_import() {
    let files = [
        ("map.tidl", "package map;\nimport \"geo.tidl\"\n\nstruct Pin { at: geo.Point }\n"),
        ("geo.tidl", "package geo;\n\nstruct Point { x: i32 }\n"),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: expected `;`, found keyword `struct`
 --> map.tidl:2:18
  |
2 | import "geo.tidl"
  |                  ^ help: add `;` here
...
4 | struct Pin { at: geo.Point }
  | ------ unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_missing_semicolon_before_a_doc_comment() {
    let text =
        "service Echo {\n    rpc echo(string) -> string\n    /// Says it again.\n    rpc again(string) -> string;\n}\n";
    assert_eq!(
        check(text),
        r#"error: expected `;` or `throws`, found a doc comment
 --> test.tidl:2:31
  |
2 |     rpc echo(string) -> string
  |                               ^ help: add `;` here
3 |     /// Says it again.
  |     --- unexpected token

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_declaration_that_does_not_parse_hides_only_its_own_name() {
    // `A` cannot be repaired by adding one token: its uses are not reported, but every other
    // declaration is still checked.
    let text = "type A = list<u8\nstruct P { a: A, b: list<A> }\nstruct Q { x: Nope }\nstruct Q {}\n";
    assert_eq!(
        check(text),
        r#"error: expected `,` or `>`, found keyword `struct`
 --> test.tidl:1:17
  |
1 | type A = list<u8
  |                 ^ expected `,` or `>` after this
2 | struct P { a: A, b: list<A> }
  | ------ unexpected token

error: unknown type `Nope`
 --> test.tidl:3:15
  |
3 | struct Q { x: Nope }
  |               ^^^^
  |
  = help: the built-in types are `()`, `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `string`, `bytes`, `list<T>`, `option<T>`, `map<K, V>` and `[T; N]`; others must be declared with `struct`, `enum` or `type`

error: `Q` is already defined
 --> test.tidl:4:8
  |
3 | struct Q { x: Nope }
  |        - first defined here
4 | struct Q {}
  |        ^ defined again here

error: could not compile the .tidl input due to 3 previous errors
"#
    );
}

#[test]
fn a_broken_declaration_in_another_package_hides_its_qualified_uses() {
    let files = [
        ("money.tidl", "package money;\nstruct Money { cents: i64 y }\n"),
        ("shop.tidl", "package shop;\nimport \"money.tidl\";\nstruct Order { total: money.Money, tax: money.Tax }\n"),
    ];
    assert_eq!(
        check_files(&files),
        r#"error: expected `,`, `=` or `}`, found name `y`
 --> money.tidl:2:26
  |
2 | struct Money { cents: i64 y }
  |                          ^ expected `,`, `=` or `}` after this
  |                           - unexpected token

error: package `money` has no type `Tax`
 --> shop.tidl:3:41
  |
3 | struct Order { total: money.Money, tax: money.Tax }
  |                                         ^^^^^^^^^

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn a_keyword_where_a_name_belongs_is_the_error_not_what_follows_it() {
    let text = "struct Message { enum: u8 }\nstruct Reply { x: service }\n";
    assert_eq!(
        check(text),
        r#"error: unexpected keyword `enum`
 --> test.tidl:1:18
  |
1 | struct Message { enum: u8 }
  |                  ^^^^

error: expected a type, found keyword `service`
 --> test.tidl:2:19
  |
2 | struct Reply { x: service }
  |                   ^^^^^^^

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

#[test]
fn what_only_continues_a_token_is_not_listed_as_expected() {
    // After `u32` more letters or a `.` would continue the name, and after `import` a `"` starts
    // the string: listing them helps nobody.
    let text = "type A = list<u32;\nimport geo;\n";
    assert_eq!(
        check(text),
        r#"error: expected `,` or `>`, found `;`
 --> test.tidl:1:18
  |
1 | type A = list<u32;
  |                  ^

error: expected a string in double quotes, found name `geo`
 --> test.tidl:2:8
  |
2 | import geo;
  |        ^^^

error: could not compile the .tidl input due to 2 previous errors
"#
    );
}

/// pest's error detail is one flag for the whole process: errors found on several threads at
/// once are each reported in full, not as a bare "unexpected ...".
#[test]
fn errors_found_on_several_threads_at_once_are_each_reported_in_full() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..2000 {
                    let message = check("servce Store {}");
                    assert!(message.contains("did you mean `service`?"), "a bare error:\n{message}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a thread's errors were reported in full");
    }
}

#[test]
fn defaults_frozen_and_open() {
    let text = r#"struct A {
    small: u8 = 300,
    text: string = 5,
    inner: B = [],
    maybe: option<u32> = 1,
}
@frozen
struct B {
    x: u32 = 1,
}
@open
enum E {
    Unknown,
    V { f: u32 = 2 },
}
@open
struct C {}
@frozen("x")
@frozen
struct D {}
"#;
    assert_eq!(
        check(text),
        r#"error: 300 does not fit the field's type
 --> test.tidl:2:17
  |
2 |     small: u8 = 300,
  |                 ^^^ `u8` holds 0 to 255

error: `5` is not a value of the field's type
 --> test.tidl:3:20
  |
3 |     text: string = 5,
  |                    ^ the field's type is `string`
  |
  = help: integers take a number, floats a number, `string` a "string", `bool` true or false, lists and bytes `[]`, maps `{}`

error: `[]` is not a value of the field's type
 --> test.tidl:4:16
  |
4 |     inner: B = [],
  |                ^^ the field's type is `B`
  |
  = help: a struct, enum, array or `()` has no default literal: make the field an `option<T>`, which defaults to none

error: `1` is not a value of the field's type
 --> test.tidl:5:26
  |
5 |     maybe: option<u32> = 1,
  |                          ^ the field's type is an option
  |
  = help: an `option<T>` field needs no default: it is none when not sent

error: a default here is never used
 --> test.tidl:9:14
  |
9 |     x: u32 = 1,
  |              ^ a `@frozen` struct's fields are always sent, so a default is never used
  |
  = help: remove it

error: an `@open` enum cannot declare a variant named `Unknown`
  --> test.tidl:13:5
   |
13 |     Unknown,
   |     ^^^^^^^ `Unknown` is the variant a reader gives a variant it does not know
   |
   = help: rename this variant

error: a default here is never used
  --> test.tidl:14:18
   |
14 |     V { f: u32 = 2 },
   |                  ^ an enum variant's fields are always sent, so a default is never used
   |
   = help: remove it

error: `@open` only applies to an enum
  --> test.tidl:16:2
   |
16 | @open
   |  ^^^^
   |
   = help: remove it

error: `@frozen` takes no arguments
  --> test.tidl:18:1
   |
18 | @frozen("x")
   | ^^^^^^^^^^^^
   |
   = help: write `@frozen`

error: `@frozen` is given twice
  --> test.tidl:19:1
   |
19 | @frozen
   | ^^^^^^^

error: could not compile the .tidl input due to 10 previous errors
"#
    );
}

#[test]
fn a_keyword_run_into_its_name() {
    assert_eq!(
        check("serviceExample {\n    rpc echo(string) -> string;\n}\n"),
        r#"error: `serviceExample` is not a keyword: `service` needs a space before its name
 --> test.tidl:1:1
  |
1 | serviceExample {
  | ^^^^^^^^^^^^^^ help: write `service Example`

error: could not compile the .tidl input due to 1 previous error
"#
    );
}

#[test]
fn a_package_whose_declarations_are_all_broken_still_exists() {
    let out = check_files(&[
        ("shop.tidl", "package shop;\nstruct Item { x: }\n"),
        ("test.tidl", "import \"shop.tidl\";\nstruct B { i: shop.Item, j: shop.Other }\n"),
    ]);
    assert!(out.contains("error: package `shop` has no type `Other`"), "{out}");
    assert!(!out.contains("there is no package"), "{out}");
    // `shop.Item` is broken, not missing: reported once, where it is declared.
    assert!(!out.contains("has no type `Item`"), "{out}");
}
