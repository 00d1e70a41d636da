//! The names the compiler keeps a service's accessor (`client.example()`) from taking must
//! cover every method a `tidl_runtime::Client` has: its public inherent methods, and those of
//! the `Invoke` trait the generated extension traits build on. This reads the runtime's source,
//! so a method added there without updating `names.rs` fails here, not in a user's build.

use std::path::{Path, PathBuf};
use syn::{ImplItem, Item, TraitItem, Type, Visibility};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `ty` is the type `Client` (by its last path segment).
fn is_client(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Client"))
}

/// The methods `Client` has, found in `items` (and in inline modules among them).
fn client_methods(items: &[Item], out: &mut Vec<String>) {
    for item in items {
        match item {
            Item::Impl(imp) if is_client(&imp.self_ty) => {
                let invoke = imp
                    .trait_
                    .as_ref()
                    .is_some_and(|(path, _)| path.segments.last().is_some_and(|s| s.ident == "Invoke"));
                // Inherent methods count when public; trait methods only for `Invoke` (`Drop`,
                // `Debug` and the like are covered by the standard trait list).
                if imp.trait_.is_some() && !invoke {
                    continue;
                }
                for impl_item in &imp.items {
                    if let ImplItem::Fn(f) = impl_item
                        && (invoke || matches!(f.vis, Visibility::Public(_)))
                    {
                        out.push(f.sig.ident.to_string());
                    }
                }
            }
            Item::Trait(t) if t.ident == "Invoke" => {
                for trait_item in &t.items {
                    if let TraitItem::Fn(f) = trait_item {
                        out.push(f.sig.ident.to_string());
                    }
                }
            }
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    client_methods(items, out);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn every_method_of_the_runtime_client_is_a_reserved_accessor_name() {
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    let mut methods = Vec::new();
    for file in rust_files(&runtime) {
        let text = std::fs::read_to_string(&file).expect("read runtime source");
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
        client_methods(&parsed.items, &mut methods);
    }
    methods.sort();
    methods.dedup();
    // Today's runtime has at least these; finding none would mean the scan is broken.
    for expected in ["call", "dial", "new"] {
        assert!(methods.iter().any(|m| m == expected), "`Client::{expected}` not found in {}", runtime.display());
    }
    let reserved: Vec<&str> =
        tidl_compiler::RUNTIME_CLIENT_METHODS.iter().chain(tidl_compiler::INVOKE_METHODS).copied().collect();
    let unknown: Vec<&String> = methods.iter().filter(|m| !reserved.contains(&m.as_str())).collect();
    assert!(
        unknown.is_empty(),
        "tidl_runtime::Client has methods the compiler does not reserve: {unknown:?}; add them to \
         RUNTIME_CLIENT_METHODS (or INVOKE_METHODS) in idl-compiler/src/names.rs, so that a service \
         whose accessor would clash with one is rejected"
    );
}
