//! The tidl compiler: turns `.tidl` service definitions into Rust code for `tidl-runtime`.
//!
//! # Using it from `build.rs`
//!
//! Add the compiler as a build dependency and the runtime (plus tokio) as dependencies:
//!
//! ```toml
//! [dependencies]
//! tidl-runtime = "0.1"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//!
//! [build-dependencies]
//! tidl-compiler = "0.1"
//! ```
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
//! register (`ExampleServer`), a typed client (`ExampleClient`) and an extension trait adding
//! `client.example()` to `tidl_runtime::Client` (`ExampleClientExt`). For each `struct` and
//! `enum`, a Rust type.
//!
//! If a `.tidl` file has errors, the build fails and prints every one of them the way rustc
//! prints its own. Cargo reruns the build script when any of the files changes.
//!
//! # Other entry points
//!
//! [`Config`] sets the output directory; [`Config::generate`] does no IO at all (it is what the
//! `tidl` command-line tool and the tests use).

mod ast;
mod codegen;
mod diagnostic;
mod model;
mod parser;
mod validate;

pub use diagnostic::{Diagnostic, FileId, Label, SourceMap, Span};

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

/// Like [`compile`], but returns the error instead of exiting.
pub fn try_compile(files: &[impl AsRef<Path>]) -> Result<(), Error> {
    Config::new().compile(files)
}

/// Compiler settings, in the style of prost-build: `Config::new()`, setters, then
/// [`compile`](Config::compile) or [`generate`](Config::generate).
#[derive(Debug, Clone, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
}

/// One generated Rust file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file name, e.g. `services.rs` for `services.tidl`.
    pub name: String,
    /// The Rust source.
    pub code: String,
}

/// An input to [`Config::generate`]: a path (used in messages and for the output name) and the
/// file's text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The path, as it should appear in diagnostics.
    pub path: &'a str,
    /// The file's contents.
    pub text: &'a str,
}

impl Config {
    /// The default settings.
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

    /// Reads, checks and compiles `files`, and writes one `.rs` file per input to the output
    /// directory (rewriting a file only if its contents change, so nothing rebuilds needlessly).
    ///
    /// In a build script it also tells Cargo to rerun the script when any input changes.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let in_build_script = std::env::var_os("OUT_DIR").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some();
        if in_build_script {
            for file in files {
                println!("cargo:rerun-if-changed={}", file.as_ref().display());
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
        let mut texts = Vec::new();
        for file in files {
            let path = file.as_ref();
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
            texts.push((path.display().to_string(), text));
        }
        let sources: Vec<Source<'_>> = texts.iter().map(|(path, text)| Source { path, text }).collect();
        let generated = self.generate(&sources)?;
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, "create", e))?;
        for file in generated {
            let path = out_dir.join(&file.name);
            write_if_changed(&path, &file.code)?;
        }
        Ok(())
    }

    /// Checks and compiles in-memory sources, doing no IO. Returns one generated file per
    /// source, or every diagnostic of every source.
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
        let mut map = SourceMap::default();
        let mut diagnostics = Vec::new();
        let mut models = Vec::new();
        let mut names: Vec<(String, &str)> = Vec::new();
        for source in sources {
            let file = map.add(source.path, source.text);
            let (ast, mut errors) = parser::parse(file, source.text);
            let (model, mut invalid) = validate::validate(&ast, &map);
            diagnostics.append(&mut errors);
            diagnostics.append(&mut invalid);
            let name = output_name(source.path);
            if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
                return Err(Error::config(format!(
                    "`{other}` and `{}` would both be generated as `{name}`; rename one of them",
                    source.path
                )));
            }
            names.push((name.clone(), source.path));
            models.push((name, source.path, model));
        }
        if !diagnostics.is_empty() {
            diagnostics.sort_by_key(Diagnostic::span);
            let rendered = diagnostic::render_all(&diagnostics, &map);
            return Err(Error { kind: ErrorKind::Diagnostics { rendered, diagnostics } });
        }
        models
            .into_iter()
            .map(|(name, path, model)| {
                codegen::generate(&model, path).map(|code| GeneratedFile { name, code }).map_err(Error::config)
            })
            .collect()
    }
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
    fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        Error { kind: ErrorKind::Io { path: path.to_owned(), action, source } }
    }

    fn config(message: impl Into<String>) -> Error {
        Error { kind: ErrorKind::Config(message.into()) }
    }

    /// The diagnostics, if the error is errors in `.tidl` files.
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
