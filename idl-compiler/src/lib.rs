//! The tidl compiler: turns `.tidl` service definitions into Rust code for `tidl-runtime`.
//!
//! # Using it from `build.rs`
//!
//! Add the compiler as a build dependency and the runtime (plus tokio) as dependencies:
//!
//! ```toml
//! [dependencies]
//! tidl-runtime = { path = "../tidl/runtime" }
//! tokio = { version = "1", features = ["rt-multi-thread", "macros", "net", "time"] }
//!
//! [build-dependencies]
//! tidl-compiler = { path = "../tidl/idl-compiler", default-features = false }
//! ```
//!
//! The crates are not on crates.io yet: the paths assume the tidl repository is checked out
//! next to your crate. `default-features = false` leaves the `tidl` command-line tool and its
//! `clap` dependency out of your build script.
//!
//! Compile the `.tidl` files in `build.rs`:
//!
//! ```no_run
//! // build.rs
//! # #[allow(clippy::needless_doctest_main)]
//! fn main() {
//!     tidl_compiler::compile(&["services.tidl"]);
//! }
//! ```
//!
//! and include the generated code (written to `$OUT_DIR/services.rs`) in a module:
//!
//! ```ignore
//! pub mod services {
//!     tidl_runtime::include_tidl!("services");
//! }
//! ```
//!
//! For each `service`, the module has a trait to implement (`Example`), a server wrapper to
//! register (`ExampleServer`), a typed client (`ExampleClient`, generic over the
//! `tidl_runtime::Invoke` its calls go through, `tidl_runtime::Client` by default) and an
//! extension trait adding `client.example()` to every `Invoke` implementation
//! (`ExampleClientExt`). For each `struct` and `enum`, a Rust type.
//!
//! If a `.tidl` file has errors, the build fails and prints every one of them the way rustc
//! prints its own. Cargo reruns the build script when any of the files changes.
//!
//! # Other entry points
//!
//! [`Config`] sets the output directory; [`Config::generate`] does no IO at all (it is what the
//! `tidl` command-line tool and the tests use). [`compat()`] and [`Config::compat`] compare two
//! versions of a schema and judge every change by the rollout it needs (what `tidl compat`
//! prints).
//!
//! With the `dynamic` feature, `dynamic` encodes and decodes a method's values at run time,
//! from JSON to exactly the bytes generated code sends and back; with the `cli` feature (on by
//! default), `cli::run` is the whole `tidl` tool as a function, calls to running servers
//! included. Both bring in `tidl-runtime`; a build script leaves them out with
//! `default-features = false`.

mod ast;
#[cfg(feature = "cli")]
pub mod cli;
mod codegen;
mod compat;
mod diagnostic;
#[cfg(feature = "dynamic")]
pub mod dynamic;
mod embed;
mod format;
mod habits;
mod loader;
mod model;
mod names;
mod parser;
#[cfg(test)]
mod proptests;
mod validate;

pub use compat::{CompatReport, Finding, Location, Verdict};
pub use diagnostic::{Diagnostic, FileId, Label, Severity, SourceMap, Span};
/// The names a service's accessor may not take, for the test that compares them with the
/// runtime's source. Not part of the API.
#[doc(hidden)]
pub use names::{INVOKE_METHODS, RUNTIME_CLIENT_METHODS};

use loader::{FsLoader, Loader, MemoryLoader};
use proc_macro2::TokenStream;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Compiles `.tidl` files from a build script, writing one `.rs` file per input to `$OUT_DIR`.
///
/// On error it prints every diagnostic to standard error and exits the build script with
/// status 1, so `cargo build` fails showing exactly those diagnostics. Use [`try_compile`] or
/// [`Config::compile`] to handle the error yourself.
pub fn compile(files: &[impl AsRef<Path>]) {
    if let Err(e) = try_compile(files) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// Compares two versions of a schema, `old` and `new` (each a root file, with what it imports):
/// see [`Config::compat`].
pub fn compat(old: impl AsRef<Path>, new: impl AsRef<Path>) -> Result<CompatReport, Error> {
    Config::new().compat(&[old], &[new])
}

/// Like [`compile`], but returns the error instead of exiting.
pub fn try_compile(files: &[impl AsRef<Path>]) -> Result<(), Error> {
    Config::new().compile(files)
}

/// Compiler settings, in the style of prost-build: `Config::new()`, setters, then
/// [`compile`](Config::compile) or [`generate`](Config::generate).
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    include_dirs: Vec<PathBuf>,
    build_client: bool,
    build_server: bool,
    type_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            out_dir: None,
            include_dirs: Vec::new(),
            build_client: true,
            build_server: true,
            type_attributes: Vec::new(),
            field_attributes: Vec::new(),
        }
    }
}

/// One generated Rust file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file name, e.g. `services.rs` for `services.tidl`.
    pub name: String,
    /// The Rust source.
    pub code: String,
    /// Warnings about the input (its own file and those it imports), rendered as rustc renders
    /// them; empty if there are none. [`Config::compile`] prints them.
    pub warnings: String,
}

/// An input to [`Config::generate`]: a path (used in messages, to resolve imports, and for the
/// output name) and the file's text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The path, as it should appear in diagnostics.
    pub path: &'a str,
    /// The file's contents.
    pub text: &'a str,
}

impl Config {
    /// The default settings: client and server code, no extra attributes, output to `$OUT_DIR`.
    pub fn new() -> Config {
        Config::default()
    }

    /// Writes generated files to `dir` instead of `$OUT_DIR`.
    ///
    /// ```
    /// let mut config = tidl_compiler::Config::new();
    /// config.out_dir("target/generated");
    /// ```
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Config {
        self.out_dir = Some(dir.into());
        self
    }

    /// Also looks for imported files in `dir`, after the importing file's own directory.
    /// Directories are searched in the order they were added.
    ///
    /// ```
    /// let mut config = tidl_compiler::Config::new();
    /// config.include_dir("schemas/common").include_dir("vendor/schemas");
    /// ```
    pub fn include_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Config {
        self.include_dirs.push(dir.into());
        self
    }

    /// Whether to generate clients (`<Service>Client` and `<Service>ClientExt`). Default: yes.
    ///
    /// ```
    /// // A server crate that never calls its own services.
    /// let mut config = tidl_compiler::Config::new();
    /// config.build_client(false);
    /// ```
    pub fn build_client(&mut self, enable: bool) -> &mut Config {
        self.build_client = enable;
        self
    }

    /// Whether to generate servers (the service trait and `<Service>Server`). Default: yes.
    ///
    /// ```
    /// // A client crate that only calls.
    /// let mut config = tidl_compiler::Config::new();
    /// config.build_server(false);
    /// ```
    pub fn build_server(&mut self, enable: bool) -> &mut Config {
        self.build_server = enable;
        self
    }

    /// Adds Rust attributes to the generated structs and enums whose `.tidl` path matches `path`:
    /// `"."` matches every type, `"shop"` every type of package `shop` (and of packages under
    /// it), `"shop.Order"` that one type. Types of files without a package are matched by their
    /// bare name (`"Point"`).
    ///
    /// ```
    /// let mut config = tidl_compiler::Config::new();
    /// config
    ///     .type_attribute(".", "#[derive(Eq, Hash)]")
    ///     .type_attribute("shop.Order", "#[derive(Default)]");
    /// ```
    pub fn type_attribute(&mut self, path: impl Into<String>, attribute: impl Into<String>) -> &mut Config {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Adds Rust attributes to the generated fields whose `.tidl` path matches `path` (a field's
    /// path is its type's path and its name: `"shop.Order.id"`; a field of a struct-like variant
    /// adds the variant: `"shop.Shape.Rect.width"`). Matching works as in
    /// [`type_attribute`](Config::type_attribute).
    ///
    /// ```
    /// let mut config = tidl_compiler::Config::new();
    /// config.field_attribute("shop.Order.notes", "#[doc(hidden)]");
    /// ```
    pub fn field_attribute(&mut self, path: impl Into<String>, attribute: impl Into<String>) -> &mut Config {
        self.field_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Reads, checks and compiles `files` (and the files they import), and writes one `.rs` file
    /// per input to the output directory, rewriting a file only if its contents change (so
    /// nothing rebuilds needlessly). Each output holds the input's declarations and those of
    /// everything it imports, one module per package.
    ///
    /// In a build script it also tells Cargo to rerun the script when any file it read changes,
    /// imports included.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let in_build_script = std::env::var_os("OUT_DIR").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some();
        let roots: Vec<String> = files.iter().map(|f| f.as_ref().display().to_string()).collect();
        let mut loader = FsLoader::new(&self.include_dirs);
        let generated = self.run(&roots, &mut loader);
        if in_build_script {
            let mut reported = HashSet::new();
            for path in roots.iter().chain(loader.read()) {
                if reported.insert(path.clone()) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
        let generated = generated?;
        for file in &generated {
            for line in file.warnings.lines().filter(|l| !l.is_empty()) {
                if in_build_script {
                    println!("cargo:warning={line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
        let out_dir = match (&self.out_dir, std::env::var_os("OUT_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => {
                return Err(Error::config(
                    "OUT_DIR is not set: call tidl_compiler::compile from build.rs, or set Config::out_dir",
                ));
            }
        };
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, "create", e))?;
        for file in generated {
            write_if_changed(&out_dir.join(&file.name), &file.code)?;
        }
        Ok(())
    }

    /// Reads, checks and compiles `files` (and the files they import) like
    /// [`compile`](Config::compile), but returns the generated files instead of writing them.
    pub fn generate_files(&self, files: &[impl AsRef<Path>]) -> Result<Vec<GeneratedFile>, Error> {
        let roots: Vec<String> = files.iter().map(|f| f.as_ref().display().to_string()).collect();
        self.run(&roots, &mut FsLoader::new(&self.include_dirs))
    }

    /// Reads and checks `files` (and the files they import) without generating anything: the
    /// diagnostics [`compile`](Config::compile) would report, faster (what `tidl check` runs).
    /// On success, returns the warnings, rendered (empty if there are none).
    pub fn check_files(&self, files: &[impl AsRef<Path>]) -> Result<String, Error> {
        let roots: Vec<String> = files.iter().map(|f| f.as_ref().display().to_string()).collect();
        let checked = self.checked(&roots, &mut FsLoader::new(&self.include_dirs))?;
        Ok(checked.into_iter().map(|checked| checked.warnings).collect())
    }

    /// Checks and compiles in-memory sources, doing no IO: imports are resolved among the
    /// given sources. Returns one generated file per source, or every diagnostic of every
    /// source.
    ///
    /// ```
    /// use tidl_compiler::{Config, Source};
    ///
    /// let text = "service Greeter { rpc hello(string) -> string; }";
    /// let files = Config::new().generate(&[Source { path: "greeter.tidl", text }]).unwrap();
    /// assert_eq!(files[0].name, "greeter.rs");
    /// assert!(files[0].code.contains("pub trait Greeter"));
    /// ```
    pub fn generate(&self, sources: &[Source<'_>]) -> Result<Vec<GeneratedFile>, Error> {
        let mut loader = MemoryLoader::new(sources, &self.include_dirs);
        let roots: Vec<String> = sources.iter().map(|s| loader::normalize(Path::new(s.path))).collect();
        self.run(&roots, &mut loader)
    }

    /// Reads, checks and compiles `files` (and the files they import) into one Rust source
    /// holding every declaration once, one module per package, even when several of the files
    /// import the same file or share a package (what `tidl gen` prints). The files are checked
    /// together, as the one output they become: two files without a package may not both
    /// declare `Point`.
    ///
    /// ```no_run
    /// let generated = tidl_compiler::Config::new().generate_one_file(&["a.tidl", "b.tidl"]).unwrap();
    /// std::fs::write("services.rs", generated.code).unwrap();
    /// ```
    pub fn generate_one_file(&self, files: &[impl AsRef<Path>]) -> Result<GeneratedFile, Error> {
        let roots: Vec<String> = files.iter().map(|f| f.as_ref().display().to_string()).collect();
        let mut loader = FsLoader::new(&self.include_dirs);
        let generated = self.generate_checked(self.checked_as(&roots, &mut loader, Together::Yes)?)?;
        let mut files = generated.into_iter();
        let mut one = files.next().ok_or_else(|| Error::config("no .tidl file was given"))?;
        for file in files {
            one.code.push_str(&file.code);
            one.warnings.push_str(&file.warnings);
        }
        Ok(one)
    }

    /// Compares two versions of a schema, each given as its root files (and found with the
    /// files they import, using this configuration's include directories): every change that
    /// reaches the wire, with its rollout verdict. Errors in either version are the error.
    ///
    /// ```no_run
    /// let report = tidl_compiler::Config::new().compat(&["old/api.tidl"], &["api.tidl"]).unwrap();
    /// if report.verdict() == tidl_compiler::Verdict::Breaking {
    ///     panic!("{}", report.render());
    /// }
    /// ```
    pub fn compat(&self, old: &[impl AsRef<Path>], new: &[impl AsRef<Path>]) -> Result<CompatReport, Error> {
        let old: Vec<String> = old.iter().map(|f| f.as_ref().display().to_string()).collect();
        let new: Vec<String> = new.iter().map(|f| f.as_ref().display().to_string()).collect();
        let old = self.checked_model(&old, &mut FsLoader::new(&self.include_dirs))?;
        let new = self.checked_model(&new, &mut FsLoader::new(&self.include_dirs))?;
        Ok(compat::compare(&old.0, &old.1, &new.0, &new.1))
    }

    /// Like [`compat`](Config::compat), with in-memory sources for each version (imports are
    /// resolved among the sources of the same version); does no IO.
    ///
    /// ```
    /// use tidl_compiler::{Config, Source, Verdict};
    ///
    /// let old = [Source { path: "old.tidl", text: "struct A { x: u32 }\nservice S { rpc f(A) -> (); }" }];
    /// let new = [Source { path: "new.tidl", text: "struct A { x: u64 }\nservice S { rpc f(A) -> (); }" }];
    /// let report = Config::new().compat_sources(&old, &new).unwrap();
    /// assert_eq!(report.verdict(), Verdict::ServersFirst);
    /// ```
    pub fn compat_sources(&self, old: &[Source<'_>], new: &[Source<'_>]) -> Result<CompatReport, Error> {
        let load = |sources: &[Source<'_>]| {
            let mut loader = MemoryLoader::new(sources, &self.include_dirs);
            let roots: Vec<String> = sources.iter().map(|s| loader::normalize(Path::new(s.path))).collect();
            self.checked_model(&roots, &mut loader)
        };
        let (old, new) = (load(old)?, load(new)?);
        Ok(compat::compare(&old.0, &old.1, &new.0, &new.1))
    }

    /// Checks `text` as a file of its own: its model, or its diagnostics as the user sees them.
    #[cfg(test)]
    pub(crate) fn checked_text(text: &str) -> Result<model::Model, String> {
        let sources = [Source { path: "test.tidl", text }];
        let mut memory = MemoryLoader::new(&sources, &[]);
        let roots = [loader::normalize(Path::new("test.tidl"))];
        Config::new().checked_model(&roots, &mut memory).map(|(model, _)| model).map_err(|e| e.to_string())
    }

    /// Loads and checks `roots` as one model, with the files read.
    fn checked_model(&self, roots: &[String], loader: &mut dyn Loader) -> Result<(model::Model, SourceMap), Error> {
        let (outputs, sources) = self.checked_with_sources(roots, loader, Together::Yes)?;
        let model = outputs.into_iter().next().map(|checked| checked.model);
        Ok((model.ok_or_else(|| Error::config("no .tidl file was given"))?, sources))
    }

    /// Loads, checks and generates every root.
    fn run(&self, roots: &[String], loader: &mut dyn Loader) -> Result<Vec<GeneratedFile>, Error> {
        self.generate_checked(self.checked(roots, loader)?)
    }

    /// Generates the code of checked roots.
    fn generate_checked(&self, checked: Vec<Checked>) -> Result<Vec<GeneratedFile>, Error> {
        let options = codegen::Options {
            build_client: self.build_client,
            build_server: self.build_server,
            type_attributes: parse_attributes(&self.type_attributes, "type_attribute")?,
            field_attributes: parse_attributes(&self.field_attributes, "field_attribute")?,
        };
        checked
            .into_iter()
            .map(|c| {
                codegen::generate(&c.model, &c.closure, &c.path, &c.embedded, &options)
                    .map(|code| GeneratedFile { name: c.name, code, warnings: c.warnings })
                    .map_err(Error::config)
            })
            .collect()
    }

    /// Loads and checks every root, each once (`p.tidl` and `./p.tidl` are one root, and the
    /// first spelling is kept). Warnings alone do not fail; with errors, they are reported with
    /// them.
    fn checked(&self, roots: &[String], loader: &mut dyn Loader) -> Result<Vec<Checked>, Error> {
        self.checked_as(roots, loader, Together::No)
    }

    /// Like [`checked`](Config::checked); with [`Together::Yes`], the roots are checked as one
    /// (their output name is the first's, and their path all of them, comma-separated).
    fn checked_as(&self, roots: &[String], loader: &mut dyn Loader, together: Together) -> Result<Vec<Checked>, Error> {
        self.checked_with_sources(roots, loader, together).map(|(outputs, _)| outputs)
    }

    /// Like [`checked_as`](Config::checked_as), also returning the files read (to locate the
    /// models' spans).
    fn checked_with_sources(
        &self,
        roots: &[String],
        loader: &mut dyn Loader,
        together: Together,
    ) -> Result<(Vec<Checked>, SourceMap), Error> {
        let mut seen = HashSet::new();
        let roots: Vec<String> =
            roots.iter().filter(|root| seen.insert(loader::normalize(Path::new(root.as_str())))).cloned().collect();
        let include_dirs: Vec<String> = loader.include_dirs().iter().map(|d| loader::normalize(d)).collect();
        let mut loaded = loader::load(&roots, loader)?;
        let mut diagnostics = std::mem::take(&mut loaded.diagnostics);
        let mut outputs = Vec::new();
        let mut names: Vec<(String, &str)> = Vec::new();
        let all_roots = roots.join(", ");
        let groups: Vec<(Vec<FileId>, &String)> = match together {
            Together::No => loaded.roots.iter().map(|root| vec![*root]).zip(&roots).collect(),
            Together::Yes => vec![(loaded.roots.clone(), &all_roots)],
        };
        for (group, root_path) in groups {
            let closure: HashSet<FileId> = group.iter().flat_map(|root| loaded.closure(*root)).collect();
            let units: Vec<validate::Unit<'_>> = loaded
                .files
                .iter()
                .filter(|f| closure.contains(&f.id))
                .map(|f| validate::Unit {
                    file: f.id,
                    ast: &f.ast,
                    imports: f.imports.clone(),
                    missing_import: f.missing_import,
                })
                .collect();
            let (model, invalid) = validate::validate(&units, &loaded.sources, &include_dirs);
            let broken = broken_declarations(&units);
            let invalid: Vec<Diagnostic> =
                invalid.into_iter().filter(|d| !names_a_broken_declaration(d, &broken, &loaded.sources)).collect();
            let warnings: Vec<Diagnostic> = invalid.iter().filter(|d| !d.is_error()).cloned().collect();
            let warnings = diagnostic::render_each(&warnings, &loaded.sources);
            diagnostics.extend(invalid);
            let name = output_name(root_path);
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
                return Err(Error::config(format!(
                    "`{other}` and `{root_path}` would both be generated as `{name}`; rename one of them"
                )));
            }
            names.push((name.clone(), root_path));
            outputs.push(Checked {
                name,
                path: root_path.clone(),
                closure,
                model,
                warnings,
                embedded: Vec::new(),
                roots: group,
            });
        }
        if diagnostics.iter().any(Diagnostic::is_error) {
            diagnostics.sort_by_key(Diagnostic::span);
            // Sorted by span: a duplicate can only be among those of the same span, at the end.
            let mut unique: Vec<Diagnostic> = Vec::with_capacity(diagnostics.len());
            for d in diagnostics {
                let same_span = unique.iter().rev().take_while(|u| u.span() == d.span());
                if !same_span.into_iter().any(|u| *u == d) {
                    unique.push(d);
                }
            }
            let rendered = diagnostic::render_all(&unique, &loaded.sources);
            return Err(Error { kind: ErrorKind::Diagnostics { rendered, diagnostics: unique } });
        }
        for output in &mut outputs {
            output.embedded = embed::embed(&loaded, &output.roots, &output.closure);
        }
        Ok((outputs, loaded.sources))
    }
}

/// One output, loaded and checked.
struct Checked {
    /// The output's file name (`services.rs`).
    name: String,
    /// The root's path (several, comma-separated, for roots checked together).
    path: String,
    /// The roots.
    roots: Vec<FileId>,
    /// The roots and every file they import.
    closure: HashSet<FileId>,
    model: model::Model,
    /// The rendered warnings.
    warnings: String,
    /// The files as reflection serves them (see `embed`).
    embedded: Vec<embed::EmbeddedFile>,
}

/// Whether several roots are compiled into one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Together {
    No,
    Yes,
}

/// The declarations with syntax errors in `units`: their packages and names.
fn broken_declarations(units: &[validate::Unit<'_>]) -> Vec<(String, String)> {
    let mut broken = Vec::new();
    for unit in units {
        let package = unit.ast.packages.first().map(|p| p.path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>());
        let package = package.unwrap_or_default().join(".");
        broken.extend(unit.ast.broken.iter().map(|name| (package.clone(), name.name.clone())));
    }
    broken
}

/// Whether `d` says that a name is unknown which a declaration with a syntax error declares:
/// the syntax error is reported already, and the name would probably be known without it.
fn names_a_broken_declaration(d: &Diagnostic, broken: &[(String, String)], sources: &SourceMap) -> bool {
    let quoted = |text: &str| -> Option<String> { Some(text.strip_prefix('`')?.strip_suffix('`')?.to_owned()) };
    if let Some(name) = d.message.strip_prefix("unknown type ").and_then(quoted) {
        return broken.iter().any(|(_, n)| *n == name);
    }
    if let Some((package, name)) = d.message.strip_prefix("package ").and_then(|m| m.split_once(" has no type ")) {
        let (Some(package), Some(name)) = (quoted(package), quoted(name)) else { return false };
        return broken.iter().any(|(p, n)| *p == package && *n == name);
    }
    if let Some(package) = d.message.strip_prefix("there is no package ").and_then(quoted) {
        // A package whose only declarations are broken is unknown: the name as written tells
        // which of them is meant.
        let written = sources.text(d.span().file).get(d.span().start..d.span().end).unwrap_or_default();
        let name = written.rsplit('.').next().unwrap_or_default().trim();
        return broken.iter().any(|(p, n)| (*p == package || p.ends_with(&format!(".{package}"))) && n == name);
    }
    false
}

/// Parses configured attribute strings as Rust attributes.
fn parse_attributes(configured: &[(String, String)], setter: &str) -> Result<Vec<(String, TokenStream)>, Error> {
    configured
        .iter()
        .map(|(path, text)| {
            let attributes = syn::parse::Parser::parse_str(syn::Attribute::parse_outer, text)
                .map_err(|e| Error::config(format!("`{text}` is not a Rust attribute (Config::{setter}): {e}")))?;
            Ok((path.clone(), quote::quote! { #(#attributes)* }))
        })
        .collect()
}

/// Formats a `.tidl` file in the canonical layout (what `tidl fmt` writes). Only whitespace and
/// trailing commas change (a trailing comma is added after the last field or variant of a
/// multi-line list and removed inside brackets), and comments stay where they are; a file with
/// syntax errors is not formatted, and its diagnostics are the error.
///
/// ```
/// let text = "struct Point{x:i32,y:i32}";
/// let formatted = tidl_compiler::format("point.tidl", text).unwrap();
/// assert_eq!(formatted, "struct Point {\n    x: i32,\n    y: i32,\n}\n");
/// ```
pub fn format(path: &str, text: &str) -> Result<String, Error> {
    let mut sources = SourceMap::default();
    let file = sources.add(path, text);
    let (_, diagnostics) = parser::parse(file, text);
    if !diagnostics.is_empty() {
        let rendered = diagnostic::render_all_then(&diagnostics, &sources, &format!("format `{path}`"));
        return Err(Error { kind: ErrorKind::Diagnostics { rendered, diagnostics } });
    }
    Ok(format::format(text))
}

/// `services.tidl` -> `services.rs`.
fn output_name(path: &str) -> String {
    let stem = Path::new(path).file_stem().map_or_else(|| path.to_owned(), |s| s.to_string_lossy().into_owned());
    format!("{stem}.rs")
}
fn write_if_changed(path: &Path, code: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == code) {
        return Ok(());
    }
    std::fs::write(path, code).map_err(|e| Error::io(path, "write", e))
}

/// Why compilation failed: errors in the `.tidl` files, or a file that could not be read or
/// written.
///
/// `Display` shows the rendered diagnostics exactly as `tidl check` and `cargo build` print them.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Diagnostics { rendered: String, diagnostics: Vec<Diagnostic> },
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    Config(String),
}

impl Error {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        Error { kind: ErrorKind::Io { path: path.to_owned(), action, source } }
    }

    fn config(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::Config(message.into()) }
    }

    /// The diagnostics, if the error is errors in `.tidl` files (with any warnings, which
    /// [`Diagnostic::is_error`] tells apart).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match &self.kind {
            ErrorKind::Diagnostics { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Diagnostics { rendered, .. } => f.write_str(rendered.trim_end()),
            ErrorKind::Io { path, action, source } => {
                write!(f, "error: could not {action} `{}`: {source}", path.display())
            }
            ErrorKind::Config(message) => write!(f, "error: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
