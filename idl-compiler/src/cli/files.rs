//! The commands that work on `.tidl` files: `check`, `gen`, `fmt` and `compat`.

use super::{FAILED, Format, Io, OK, USAGE};
use crate::{Config, Verdict};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A configuration with `include` as its include directories.
pub(super) fn config(include: &[PathBuf]) -> Config {
    let mut config = Config::new();
    for dir in include {
        config.include_dir(dir);
    }
    config
}

/// Prints `result`'s error, if any, and turns it into an exit status.
fn finish(io: &mut Io<'_>, result: Result<(), String>) -> u8 {
    match result {
        Ok(()) => OK,
        Err(message) => {
            let _ = writeln!(io.stderr, "{message}");
            FAILED
        }
    }
}

/// `tidl check`.
pub(super) fn check(io: &mut Io<'_>, include: &[PathBuf], files: &[PathBuf]) -> u8 {
    let result = config(include).check_files(files).map_err(|e| e.to_string());
    match result {
        Ok(warnings) => {
            let _ = write!(io.stderr, "{warnings}");
            OK
        }
        Err(e) => finish(io, Err(e)),
    }
}

/// `tidl gen`.
pub(super) fn generate_code(
    io: &mut Io<'_>,
    include: &[PathBuf],
    files: &[PathBuf],
    out_dir: Option<&Path>,
    client_only: bool,
    server_only: bool,
) -> u8 {
    let mut config = config(include);
    config.build_client(!server_only).build_server(!client_only);
    let result = generate(&mut *io.stdout, &mut *io.stderr, &config, files, out_dir);
    finish(io, result)
}

fn generate(
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    config: &Config,
    files: &[PathBuf],
    out_dir: Option<&Path>,
) -> Result<(), String> {
    match out_dir {
        None => {
            // One file, so that it can be redirected to a file and compiled: modules that several
            // of the files share (an import, a package) appear once.
            let generated = config.generate_one_file(files).map_err(|e| e.to_string())?;
            let _ = write!(stderr, "{}", generated.warnings);
            let _ = write!(stdout, "{}", generated.code);
        }
        Some(dir) => {
            let generated = config.generate_files(files).map_err(|e| e.to_string())?;
            for file in &generated {
                let _ = write!(stderr, "{}", file.warnings);
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

/// `tidl compat`: 0 unless a change is breaking (1) or a version has errors (2).
pub(super) fn compat(io: &mut Io<'_>, include: &[PathBuf], old: &Path, new: &Path, format: Format) -> u8 {
    match config(include).compat(&[old], &[new]) {
        Ok(report) => {
            let _ = match format {
                Format::Human => write!(io.stdout, "{}", report.render()),
                Format::Json => write!(io.stdout, "{}", report.to_json()),
            };
            if report.verdict() == Verdict::Breaking { FAILED } else { OK }
        }
        Err(e) => {
            let _ = writeln!(io.stderr, "{e}");
            USAGE
        }
    }
}

/// `tidl fmt`.
pub(super) fn fmt(io: &mut Io<'_>, paths: Vec<PathBuf>, check: bool) -> u8 {
    let paths = if paths.is_empty() { vec![PathBuf::from(".")] } else { paths };
    let mut errors = Vec::new();
    let mut unformatted = Vec::new();
    let files = tidl_files(&paths, &mut errors, &mut *io.stderr);
    for path in &files {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("error: could not read `{shown}`: {e}"));
                continue;
            }
        };
        let formatted = match crate::format(&shown, &text) {
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
            let _ = writeln!(io.stdout, "formatted {shown}");
        }
    }
    for file in &unformatted {
        errors.push(format!("error: `{file}` is not formatted; run `tidl fmt {file}`"));
    }
    finish(io, if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) })
}

/// The files `tidl fmt` formats: each path that is not a directory, and the `.tidl` files below
/// each directory (in name order, skipping `target` and hidden directories, as `cargo fmt` does).
/// Directories that cannot be read are reported in `errors`.
fn tidl_files(paths: &[PathBuf], errors: &mut Vec<String>, stderr: &mut dyn Write) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let before = files.len();
        walk(path, &mut files, errors);
        if files.len() == before {
            let _ = writeln!(stderr, "warning: no .tidl files in `{}`", path.display());
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
