//! Golden tests of `tidl compat`: each directory of `tests/compat` holds two versions of a
//! schema (`old.tidl` and `new.tidl`, or `old/main.tidl` and `new/main.tidl` with what they
//! import) and `expected.txt`: the exit status, then exactly what the command prints. With
//! `expected.json`, the `--format json` output is checked too. Run with `TIDL_BLESS=1` to rewrite
//! the expected files after an intended change, and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tidl compat OLD NEW [--format json]` run in `dir`: the exit status line, stdout, and stderr
/// (after a marker line) if there is any.
fn run(dir: &Path, json: bool) -> String {
    let version = |name: &str| {
        if dir.join(format!("{name}.tidl")).exists() { format!("{name}.tidl") } else { format!("{name}/main.tidl") }
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidl"));
    command.args(["compat", &version("old"), &version("new")]).current_dir(dir);
    if json {
        command.args(["--format", "json"]);
    }
    let out = command.output().expect("run tidl");
    let mut text = format!("exit status: {}\n", out.status.code().map_or("none".into(), |c| c.to_string()));
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    if !out.stderr.is_empty() {
        text.push_str("--- stderr ---\n");
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    text
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read tests/compat")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_rule_prints_its_golden_output_and_exit_status() {
    let bless = std::env::var_os("TIDL_BLESS").is_some();
    let mut failures = Vec::new();
    let dirs = cases();
    assert!(dirs.len() >= 15, "found {dirs:?}");
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut outputs = vec![("expected.txt", run(&dir, false))];
        if dir.join("expected.json").exists() {
            outputs.push(("expected.json", run(&dir, true)));
        }
        for (file, got) in outputs {
            let expected = dir.join(file);
            if bless {
                std::fs::write(&expected, &got).expect("write expected file");
                continue;
            }
            let want = std::fs::read_to_string(&expected).unwrap_or_default();
            if got != want {
                failures.push(format!("{name}/{file} differs; got:\n{got}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rerun with TIDL_BLESS=1 if the changes are intended, and review the diff\n\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_golden_schema_is_formatted() {
    for dir in cases() {
        if dir.ends_with("parse_error") {
            continue;
        }
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "tidl") {
                    let text = std::fs::read_to_string(&path).expect("read");
                    let formatted =
                        tidl_compiler::format(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
                    assert!(formatted == text, "{} is not formatted; run `tidl fmt` on it", path.display());
                }
            }
        }
    }
}

#[test]
fn the_library_agrees_with_the_command() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/used_both_ways");
    let report = tidl_compiler::compat(dir.join("old.tidl"), dir.join("new.tidl")).expect("both versions are valid");
    assert_eq!(report.verdict(), tidl_compiler::Verdict::Breaking);
    let messages: Vec<&str> = report.findings().iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        ["field `age` was added to struct `Person`", "field `email` was added to struct `Person` without a default",]
    );
    let email = &report.findings()[1];
    let new = email.new.as_ref().expect("the new field is located");
    assert_eq!((new.line, new.column), (4, 5));
    assert!(email.why.contains("the argument of `Users.create`") && email.why.contains("the reply of `Users.get`"));
    assert!(tidl_compiler::compat(dir.join("old.tidl"), dir.join("missing.tidl")).is_err());
}
