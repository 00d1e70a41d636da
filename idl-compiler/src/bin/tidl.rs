//! `tidl`: check `.tidl` files and print the Rust generated from them.
//!
//! Exit status: 0 on success, 1 if a file has errors or cannot be read, 2 for bad usage.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tidl_compiler::{Config, Source};

/// Checks .tidl service definitions and generates Rust code from them.
#[derive(Debug, Parser)]
#[command(
    name = "tidl",
    version,
    about,
    after_help = "Exit status: 0 on success, 1 if a file has errors, 2 for bad usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reports every error in the given files, rustc-style; prints nothing if they are valid.
    Check {
        /// The .tidl files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Prints the Rust code generated from a .tidl file.
    Gen {
        /// The .tidl file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check { files } => generate(files).map(|_| ()),
        Command::Gen { file } => generate(std::slice::from_ref(file)).map(|files| {
            for file in files {
                print!("{}", file.code);
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

fn generate(paths: &[PathBuf]) -> Result<Vec<tidl_compiler::GeneratedFile>, String> {
    let mut texts = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("error: could not read `{}`: {e}", path.display()))?;
        texts.push((path.display().to_string(), text));
    }
    let sources: Vec<Source<'_>> = texts.iter().map(|(path, text)| Source { path, text }).collect();
    Config::new().generate(&sources).map_err(|e| e.to_string())
}
