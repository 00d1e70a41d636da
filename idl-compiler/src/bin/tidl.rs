//! `tidl`: check, generate and format `.tidl` files.
//!
//! Exit status: 0 on success; 1 if a file has errors, cannot be read or written, or (with
//! `fmt --check`) is not formatted; 2 for bad usage.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tidl_compiler::Config;

/// Checks .tidl service definitions, generates Rust from them, and formats them.
#[derive(Debug, Parser)]
#[command(
    name = "tidl",
    version,
    after_help = "Exit status: 0 on success; 1 if a file has errors, cannot be read or written, or is not \
                  formatted (fmt --check); 2 for bad usage."
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
    /// Prints the Rust generated from each file (with what it imports), or writes it to a
    /// directory, as NAME.rs for NAME.tidl.
    Gen {
        /// The .tidl files to compile.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the NAME.rs files here instead of printing (a file is rewritten only if it changes).
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
    /// Rewrites files in the canonical layout; only whitespace and trailing commas change, and
    /// comments stay.
    Fmt {
        /// The .tidl files to format.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted, and exit with 1 if there are any.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, include } => config(&include).check_files(&files).map_err(|e| e.to_string()),
        Command::Gen { files, out_dir, include, client_only, server_only } => {
            let mut config = config(&include);
            config.build_client(!server_only).build_server(!client_only);
            generate(&config, &files, out_dir.as_deref())
        }
        Command::Fmt { files, check } => fmt(&files, check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
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
    let generated = config.generate_files(files).map_err(|e| e.to_string())?;
    match out_dir {
        None => {
            for file in generated {
                print!("{}", file.code);
            }
        }
        Some(dir) => {
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

fn fmt(files: &[PathBuf], check: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut unformatted = Vec::new();
    for path in files {
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
        }
    }
    for file in &unformatted {
        errors.push(format!("error: `{file}` is not formatted; run `tidl fmt {file}`"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}
