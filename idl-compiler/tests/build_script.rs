//! `tidl_compiler::compile` in a real build script: a crate whose `.tidl` file has an error
//! fails `cargo build` with exactly the rendered diagnostics (no panic, no backtrace), and
//! Cargo reruns the script when the file changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BAD: &str = "service Store {\n    rpc get(strng) -> string;\n}\n";
const GOOD: &str = "import \"types.tidl\";\n\nservice Store {\n    rpc get(Key) -> string;\n}\n";
const TYPES: &str = "struct Key {\n    id: u64,\n}\n";

/// A crate using the compiler from its build script, outside this workspace.
fn fixture() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join("build-script-fixture");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).expect("create fixture");
    let compiler = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        "[package]\nname = \"fixture\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [build-dependencies]\ntidl-compiler = {{ path = {:?}, default-features = false }}\n\n\
         # Not part of the tidl workspace.\n[workspace]\n",
        compiler.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::write(dir.join("build.rs"), "fn main() {\n    tidl_compiler::compile(&[\"store.tidl\"]);\n}\n")
        .expect("write build.rs");
    std::fs::write(dir.join("src/lib.rs"), "").expect("write lib.rs");
    // Resolve to the versions the workspace already uses (and has downloaded).
    std::fs::copy(compiler.join("../Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    dir
}

fn cargo_build(dir: &Path) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .args(["build", "--offline", "-v"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("build-script-target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

#[test]
fn a_bad_tidl_file_fails_the_build_with_its_diagnostics_and_a_fix_rebuilds() {
    let dir = fixture();
    std::fs::write(dir.join("store.tidl"), BAD).expect("write .tidl");
    let out = cargo_build(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build should fail:\n{stderr}");
    let expected = "error: unknown type `strng`
 --> store.tidl:2:13
  |
2 |     rpc get(strng) -> string;
  |             ^^^^^ did you mean `string`?

error: could not compile the .tidl input due to 1 previous error
";
    // Cargo shows a failed build script's standard error indented by two spaces.
    let indented: String =
        expected.lines().map(|l| if l.is_empty() { "\n".to_owned() } else { format!("  {l}\n") }).collect();
    assert!(stderr.contains(&indented), "the diagnostics should be printed as they are:\n{stderr}");
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");

    // Fixing the file reruns the build script, which now succeeds.
    std::fs::write(dir.join("types.tidl"), TYPES).expect("write .tidl");
    std::fs::write(dir.join("store.tidl"), GOOD).expect("write .tidl");
    let out = cargo_build(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the fixed build should pass:\n{stderr}");

    // Nothing changed: the build script does not run again.
    let out = cargo_build(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(stderr.contains("Fresh fixture"), "the crate is fresh:\n{stderr}");

    // Editing the .tidl file (and nothing else) reruns the build script.
    std::fs::write(dir.join("store.tidl"), GOOD.replace("get(", "fetch(")).expect("write .tidl");
    let out = cargo_build(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(stderr.contains("store.tidl` has changed"), "rerun because of the .tidl file:\n{stderr}");

    // So does editing a file it imports.
    std::fs::write(dir.join("types.tidl"), TYPES.replace("u64", "u32")).expect("write .tidl");
    let out = cargo_build(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(stderr.contains("types.tidl` has changed"), "rerun because of the imported file:\n{stderr}");
}
