//! What a generated module embeds for reflection (`tidl_runtime::reflection`): the `.tidl` files
//! it was compiled from, as a server that enables reflection serves them.
//!
//! Each file of the compilation (the roots first, then what they import) is embedded with its
//! declarations and their doc comments, in the canonical layout; its ordinary comments (`//`,
//! `/* */`), which may hold notes not meant for the server's callers, are left out. Paths are
//! made relative to the directory all the files share, so nothing of the machine that built the
//! server (its directories, its include directories) is embedded, and each `import` is rewritten
//! to name its file by that relative path, so the files compile again on their own, with no
//! include directory.

use crate::diagnostic::FileId;
use crate::format;
use crate::loader::Loaded;
use std::collections::HashSet;

/// One embedded file: its path and text.
pub(crate) type EmbeddedFile = (String, String);

/// The files of `closure` (with `roots` first) as they are embedded. The compilation has no
/// errors: every import was found.
pub(crate) fn embed(loaded: &Loaded, roots: &[FileId], closure: &HashSet<FileId>) -> Vec<EmbeddedFile> {
    let mut order: Vec<FileId> = roots.to_vec();
    let root_set: HashSet<FileId> = roots.iter().copied().collect();
    let mut rest: Vec<FileId> = closure.iter().copied().filter(|f| !root_set.contains(f)).collect();
    rest.sort_unstable();
    order.extend(rest);
    let paths: Vec<&str> = order.iter().map(|f| loaded.sources.path(*f)).collect();
    let base = common_dir(&paths);
    let relative = |file: FileId| -> Vec<String> {
        components(loaded.sources.path(file)).into_iter().skip(base.len()).map(str::to_owned).collect()
    };
    order
        .iter()
        .filter_map(|&id| {
            let file = loaded.file(id)?;
            let own = relative(id);
            let dir = &own[..own.len().saturating_sub(1)];
            // Rewritten from the last import to the first, so that earlier spans stay valid.
            let mut text = loaded.sources.text(id).to_owned();
            for (import, target) in file.ast.imports.iter().zip(&file.imports).rev() {
                let path = relative_path(dir, &relative(*target));
                let escaped = path.replace('\\', "\\\\").replace('"', "\\\"");
                text.replace_range(import.span.start..import.span.end, &format!("import \"{escaped}\";"));
            }
            Some((own.join("/"), format::format_without_comments(&text)))
        })
        .collect()
}

/// The components of a normalised, `/`-separated path.
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// The directory components every one of `paths` starts with.
fn common_dir<'a>(paths: &[&'a str]) -> Vec<&'a str> {
    let dirs: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| {
            let mut c = components(p);
            c.pop();
            c
        })
        .collect();
    let Some(first) = dirs.first() else { return Vec::new() };
    let shared = dirs.iter().map(|d| first.iter().zip(d).take_while(|(a, b)| a == b).count()).min().unwrap_or(0);
    // `..` cannot be dropped: the files below it are not below the directory it leaves.
    first[..shared].iter().take_while(|c| **c != "..").copied().collect()
}

/// The path to `target` from the directory `from`, both relative to one base.
fn relative_path(from: &[String], target: &[String]) -> String {
    let shared = from.iter().zip(target).take_while(|(a, b)| a == b).count();
    let ups = from.len() - shared;
    let mut parts: Vec<&str> = vec![".."; ups];
    parts.extend(target[shared..].iter().map(String::as_str));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{MemoryLoader, load};
    use crate::{Source, loader};
    use std::path::Path;

    fn embedded(sources: &[Source<'_>], include: &[&str]) -> Vec<EmbeddedFile> {
        let include: Vec<std::path::PathBuf> = include.iter().map(Into::into).collect();
        let mut memory = MemoryLoader::new(sources, &include);
        let root = loader::normalize(Path::new(sources[0].path));
        let loaded = load(&[root], &mut memory).unwrap();
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let closure = loaded.closure(loaded.roots[0]);
        embed(&loaded, &loaded.roots, &closure)
    }

    #[test]
    fn comments_are_left_out_and_doc_comments_kept() {
        let text =
            "// Internal: see ticket 42.\n/// Echoes.\nservice E { /* todo */ rpc echo(string) -> string; // fast\n}\n";
        let files = embedded(&[Source { path: "e.tidl", text }], &[]);
        assert_eq!(
            files,
            vec![("e.tidl".to_owned(), "/// Echoes.\nservice E {\n    rpc echo(string) -> string;\n}\n".to_owned())]
        );
    }

    #[test]
    fn paths_are_relative_to_the_shared_directory_and_imports_follow_them() {
        let sources = [
            Source {
                path: "/home/me/proj/tidl/shop.tidl",
                text: "import \"money.tidl\";\nstruct Order { price: Money }\n",
            },
            Source { path: "/home/me/proj/tidl/vendor/money.tidl", text: "struct Money { cents: u64 }\n" },
        ];
        let files = embedded(&sources, &["/home/me/proj/tidl/vendor"]);
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["shop.tidl", "vendor/money.tidl"]);
        assert_eq!(files[0].1, "import \"vendor/money.tidl\";\n\nstruct Order {\n    price: Money,\n}\n");
    }

    #[test]
    fn relative_paths_go_up_where_they_must() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(relative_path(&s(&["app"]), &s(&["lib", "shapes.tidl"])), "../lib/shapes.tidl");
        assert_eq!(relative_path(&s(&[]), &s(&["a.tidl"])), "a.tidl");
        assert_eq!(common_dir(&["../x/a.tidl", "../x/b.tidl"]), Vec::<&str>::new());
        assert_eq!(common_dir(&["x/a.tidl", "x/y/b.tidl"]), vec!["x"]);
    }
}
