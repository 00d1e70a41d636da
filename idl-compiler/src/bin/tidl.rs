//! `tidl`: check, generate and format `.tidl` files.
//!
//! Exit status: 0 on success; 1 if a file has errors, cannot be read or written, or (with
//! `fmt --check`) is not formatted; 2 for bad usage. `compat` exits with 0 if the new version
//! can be rolled out (in some order), 1 if a change is breaking, 2 for bad usage or if either
//! version has errors.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tidl_compiler::{Config, Verdict};

/// Checks .tidl service definitions, generates Rust from them, and formats them.
#[derive(Debug, Parser)]
#[command(
    name = "tidl",
    version,
    after_help = "Exit status: 0 on success; 1 if a file has errors, cannot be read or written, or is not \
                  formatted (fmt --check); 2 for bad usage.\n\
                  tidl compat: 0 if every change is safe or safe in the order it prints (servers first, clients \
                  first); 1 if a change is breaking; 2 for bad usage or if either version has errors."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reports every error in the given files and the files they import, rustc-style; prints
    /// nothing if all is well.
    Check {
        /// The .tidl files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
    },
    /// Prints the Rust generated from the files and what they import, as one file (each shared
    /// module once), or writes one NAME.rs per file to a directory.
    Gen {
        /// The .tidl files to compile.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write NAME.rs files here instead of printing (a file is rewritten only if it changes).
        #[arg(short, long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// Generate only clients.
        #[arg(long, conflicts_with = "server_only")]
        client_only: bool,
        /// Generate only servers (service traits and their server wrappers).
        #[arg(long)]
        server_only: bool,
    },
    /// Rewrites files in the canonical layout, and lists the files it changed; only whitespace
    /// and trailing commas change, and comments stay.
    Fmt {
        /// The .tidl files to format, or directories: every .tidl file below them, skipping
        /// target and hidden directories. Default: the current directory.
        files: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted, and exit with 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Compares two versions of a schema and lists every change on the wire with its verdict:
    /// safe, safe if servers (or clients) are upgraded first, or breaking.
    Compat {
        /// The old version's root file.
        old: PathBuf,
        /// The new version's root file.
        new: PathBuf,
        /// Also look for imported files in DIR (after the importing file's own directory).
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        include: Vec<PathBuf>,
        /// How to print the findings.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

/// How `tidl compat` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Like compiler diagnostics, then a summary.
    Human,
    /// One JSON object, for CI.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compat { old, new, include, format } => return compat(&config(&include), &old, &new, format),
        Command::Check { files, include } => {
            config(&include).check_files(&files).map(|warnings| eprint!("{warnings}")).map_err(|e| e.to_string())
        }
        Command::Gen { files, out_dir, include, client_only, server_only } => {
            let mut config = config(&include);
            config.build_client(!server_only).build_server(!client_only);
            generate(&config, &files, out_dir.as_deref())
        }
        Command::Fmt { files, check } => {
            let files = if files.is_empty() { vec![PathBuf::from(".")] } else { files };
            fmt(&files, check)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// Runs `tidl compat`: 0 unless a change is breaking (1) or a version has errors (2).
fn compat(config: &Config, old: &Path, new: &Path, format: Format) -> ExitCode {
    match config.compat(&[old], &[new]) {
        Ok(report) => {
            match format {
                Format::Human => print!("{}", report.render()),
                Format::Json => print!("{}", report.to_json()),
            }
            if report.verdict() == Verdict::Breaking { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn config(include: &[PathBuf]) -> Config {
    let mut config = Config::new();
    for dir in include {
        config.include_dir(dir);
    }
    config
}

fn generate(config: &Config, files: &[PathBuf], out_dir: Option<&Path>) -> Result<(), String> {
    match out_dir {
        None => {
            // One file, so that it can be redirected to a file and compiled: modules that several
            // of the files share (an import, a package) appear once.
            let generated = config.generate_one_file(files).map_err(|e| e.to_string())?;
            eprint!("{}", generated.warnings);
            print!("{}", generated.code);
        }
        Some(dir) => {
            let generated = config.generate_files(files).map_err(|e| e.to_string())?;
            for file in &generated {
                eprint!("{}", file.warnings);
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("error: could not create `{}`: {e}", dir.display()))?;
            for file in generated {
                let path = dir.join(&file.name);
                if std::fs::read_to_string(&path).is_ok_and(|existing| existing == file.code) {
                    continue;
                }
                std::fs::write(&path, &file.code)
                    .map_err(|e| format!("error: could not write `{}`: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn fmt(paths: &[PathBuf], check: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut unformatted = Vec::new();
    let files = tidl_files(paths, &mut errors);
    for path in &files {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("error: could not read `{shown}`: {e}"));
                continue;
            }
        };
        let formatted = match tidl_compiler::format(&shown, &text) {
            Ok(formatted) => formatted,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            unformatted.push(shown);
        } else if let Err(e) = std::fs::write(path, formatted) {
            errors.push(format!("error: could not write `{shown}`: {e}"));
        } else {
            println!("formatted {shown}");
        }
    }
    for file in &unformatted {
        errors.push(format!("error: `{file}` is not formatted; run `tidl fmt {file}`"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

/// The files `tidl fmt` formats: each path that is not a directory, and the `.tidl` files below
/// each directory (in name order, skipping `target` and hidden directories, as `cargo fmt` does).
/// Directories that cannot be read are reported in `errors`.
fn tidl_files(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let before = files.len();
        walk(path, &mut files, errors);
        if files.len() == before {
            eprintln!("warning: no .tidl files in `{}`", path.display());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    files
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(format!("error: could not read `{}`: {e}", dir.display()));
            return;
        }
    };
    let mut entries: Vec<std::fs::DirEntry> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `./a.tidl` is shown as `a.tidl`.
        let path = if dir == Path::new(".") { PathBuf::from(&*name) } else { dir.join(&*name) };
        // Symbolic links to directories are not followed (there may be cycles).
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !(name.starts_with('.') || name == "target") {
                walk(&path, files, errors);
            }
        } else if name.ends_with(".tidl") && !name.starts_with('.') {
            files.push(path);
        }
    }
}
