//! Loading a compilation: the root files and, transitively, everything they import.
//!
//! An import path is looked up relative to the importing file's directory, then in each
//! include directory in order. Paths are normalised lexically (`a/./b/../c.tidl` is
//! `a/c.tidl`), so a file imported along two routes is loaded once. Import cycles are
//! reported, not followed.

use crate::ast;
use crate::diagnostic::{Diagnostic, FileId, SourceMap};
use crate::{Error, Source, parser};
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// Where file contents come from.
pub(crate) trait Loader {
    /// The contents of `path`.
    fn read(&mut self, path: &str) -> std::io::Result<String>;

    /// The directories searched for imports after the importing file's own.
    fn include_dirs(&self) -> &[PathBuf];
    /// Whether a file exists at `path`, without reading it (for suggestions).
    fn exists(&self, path: &str) -> bool;
}

/// Reads from the file system and remembers what it read (for `rerun-if-changed`).
pub(crate) struct FsLoader {
    include_dirs: Vec<PathBuf>,
    read: Vec<String>,
}

impl FsLoader {
    pub(crate) fn new(include_dirs: &[PathBuf]) -> FsLoader {
        FsLoader { include_dirs: include_dirs.to_vec(), read: Vec::new() }
    }

    /// Every path read successfully.
    pub(crate) fn read(&self) -> &[String] {
        &self.read
    }
}

impl Loader for FsLoader {
    fn read(&mut self, path: &str) -> std::io::Result<String> {
        let text = std::fs::read_to_string(path)?;
        self.read.push(path.to_owned());
        Ok(text)
    }

    fn include_dirs(&self) -> &[PathBuf] {
        &self.include_dirs
    }

    fn exists(&self, path: &str) -> bool {
        Path::new(path).is_file()
    }
}

/// Serves in-memory sources, by normalised path.
pub(crate) struct MemoryLoader {
    files: HashMap<String, String>,
    include_dirs: Vec<PathBuf>,
}

impl MemoryLoader {
    pub(crate) fn new(sources: &[Source<'_>], include_dirs: &[PathBuf]) -> MemoryLoader {
        let mut files = HashMap::new();
        for source in sources {
            // A path given twice is one root; its first text counts.
            files.entry(normalize(Path::new(source.path))).or_insert_with(|| source.text.to_owned());
        }
        MemoryLoader { files, include_dirs: include_dirs.to_vec() }
    }
}

impl Loader for MemoryLoader {
    fn read(&mut self, path: &str) -> std::io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn include_dirs(&self) -> &[PathBuf] {
        &self.include_dirs
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

/// `path` with `.` removed and `..` applied where it can be, `/`-separated.
pub(crate) fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut absolute = false;
    for component in path.components() {
        match component {
            Component::RootDir => absolute = true,
            Component::Prefix(p) => parts.push(p.as_os_str().to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.last().is_some_and(|p| p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..".to_owned());
                }
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}

/// A loaded, parsed file.
pub(crate) struct LoadedFile {
    pub(crate) id: FileId,
    pub(crate) ast: ast::File,
    /// The files it imports directly (those that were found).
    pub(crate) imports: Vec<FileId>,
    /// Whether one of its imports was not found (and reported).
    pub(crate) missing_import: bool,
}

/// Every file of a compilation.
pub(crate) struct Loaded {
    pub(crate) sources: SourceMap,
    pub(crate) files: Vec<LoadedFile>,
    /// The root files, in the order given.
    pub(crate) roots: Vec<FileId>,
    /// Syntax errors, missing imports and import cycles.
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Where each file is in `files`.
    by_id: HashMap<FileId, usize>,
}

impl Loaded {
    /// The loaded file `id`.
    pub(crate) fn file(&self, id: FileId) -> Option<&LoadedFile> {
        self.by_id.get(&id).and_then(|i| self.files.get(*i))
    }

    /// `root` and every file it imports, directly or not.
    pub(crate) fn closure(&self, root: FileId) -> HashSet<FileId> {
        let mut seen = HashSet::from([root]);
        let mut stack = vec![root];
        while let Some(file) = stack.pop() {
            if let Some(loaded) = self.file(file) {
                for import in &loaded.imports {
                    if seen.insert(*import) {
                        stack.push(*import);
                    }
                }
            }
        }
        seen
    }
}

/// Loads and parses `roots` and everything they import.
pub(crate) fn load(roots: &[String], loader: &mut dyn Loader) -> Result<Loaded, Error> {
    let mut state = State {
        loaded: Loaded {
            sources: SourceMap::default(),
            files: Vec::new(),
            roots: Vec::new(),
            diagnostics: Vec::new(),
            by_id: HashMap::new(),
        },
        by_path: HashMap::new(),
        stack: Vec::new(),
    };
    for root in roots {
        let path = normalize(Path::new(root));
        let id = match state.by_path.get(&path) {
            Some(id) => *id,
            None => {
                let text = loader.read(&path).map_err(|e| Error::io(Path::new(root), "read", e))?;
                state.visit(&path, text, loader)
            }
        };
        state.loaded.roots.push(id);
    }
    Ok(state.loaded)
}

struct State {
    loaded: Loaded,
    by_path: HashMap<String, FileId>,
    /// Files being loaded, outermost first: an import of one of these closes a cycle.
    stack: Vec<FileId>,
}

/// A file being loaded: its imports are resolved one after another, and an import of a file not
/// read yet loads that file (and what it imports) before the next import.
struct Visit {
    id: FileId,
    ast: ast::File,
    dir: std::path::PathBuf,
    /// The next import to resolve.
    next: usize,
    imports: Vec<FileId>,
    missing_import: bool,
}

/// Where an import leads.
enum Found {
    Loaded(FileId),
    Read(String, String),
}

impl State {
    /// Parses the file at `path` and what it imports, directly or not, in the order a
    /// depth-first walk meets them, with a stack of its own: a chain of imports is as long as
    /// the files (or a server's reflection) make it.
    fn visit(&mut self, path: &str, text: String, loader: &mut dyn Loader) -> FileId {
        let root = self.open(path, text);
        let root_id = root.id;
        let mut visits = vec![root];
        while let Some(visit) = visits.last_mut() {
            let Some(import) = visit.ast.imports.get(visit.next).cloned() else {
                // All its imports are resolved: the file is loaded.
                if let Some(done) = visits.pop() {
                    self.stack.pop();
                    let id = done.id;
                    self.loaded.by_id.insert(id, self.loaded.files.len());
                    self.loaded.files.push(LoadedFile {
                        id,
                        ast: done.ast,
                        imports: done.imports,
                        missing_import: done.missing_import,
                    });
                    if let Some(parent) = visits.last_mut() {
                        parent.imports.push(id);
                    }
                }
                continue;
            };
            visit.next += 1;
            let candidates: Vec<String> = std::iter::once(visit.dir.join(&import.path))
                .chain(loader.include_dirs().iter().map(|d| d.join(&import.path)))
                .map(|p| normalize(&p))
                .collect();
            let mut found = None;
            for candidate in &candidates {
                if let Some(id) = self.by_path.get(candidate) {
                    found = Some(Found::Loaded(*id));
                    break;
                }
                if let Ok(text) = loader.read(candidate) {
                    found = Some(Found::Read(candidate.clone(), text));
                    break;
                }
            }
            match found {
                None => {
                    visit.missing_import = true;
                    self.report_missing(&import, &candidates, loader);
                }
                Some(Found::Loaded(target)) => {
                    if let Some(start) = self.stack.iter().position(|f| *f == target) {
                        let mut chain: Vec<&str> =
                            self.stack[start..].iter().map(|f| self.loaded.sources.path(*f)).collect();
                        chain.push(self.loaded.sources.path(target));
                        self.loaded
                            .diagnostics
                            .push(Diagnostic::error(import.span, format!("import cycle: {}", chain.join(" -> "))).help(
                            "files cannot import each other in a circle; move what they share into a file both import",
                        ));
                    }
                    visit.imports.push(target);
                }
                // Loaded now, before the next import; added to this file's imports when done.
                Some(Found::Read(path, text)) => {
                    let child = self.open(&path, text);
                    visits.push(child);
                }
            }
        }
        root_id
    }

    /// Adds and parses the file at `path`, and marks it as being loaded.
    fn open(&mut self, path: &str, text: String) -> Visit {
        let id = self.loaded.sources.add(path, text);
        self.by_path.insert(path.to_owned(), id);
        let (ast, mut errors) = parser::parse(id, self.loaded.sources.text(id));
        self.loaded.diagnostics.append(&mut errors);
        self.stack.push(id);
        let dir = Path::new(path).parent().map(Path::to_path_buf).unwrap_or_default();
        Visit { id, ast, dir, next: 0, imports: Vec::new(), missing_import: false }
    }

    /// Reports an import found in none of `candidates`.
    fn report_missing(&mut self, import: &ast::Import, candidates: &[String], loader: &mut dyn Loader) {
        let mut looked: Vec<String> = candidates
            .iter()
            .map(|c| Path::new(c).parent().map(|p| p.display().to_string()).unwrap_or_default())
            .map(|d| if d.is_empty() { ".".to_owned() } else { d })
            .collect();
        looked.dedup();
        let mut d = Diagnostic::error(import.span, format!("cannot find the imported file `{}`", import.path));
        // `import "geo";` for `geo.tidl`: imports name the file, extension and all.
        if !import.path.ends_with(".tidl") {
            let with_extension = format!("{}.tidl", import.path);
            let exists = candidates.iter().any(|c| {
                let c = format!("{c}.tidl");
                self.by_path.contains_key(&c) || loader.exists(&c)
            });
            if exists {
                d = d.label(format!("did you mean `\"{with_extension}\"`?"));
            }
        }
        self.loaded.diagnostics.push(d.help(format!("looked in: {}", looked.join(", "))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_twenty_thousand_imports_loads_on_a_small_stack_in_order() {
        const FILES: usize = 20_000;
        let texts: Vec<(String, String)> = (0..FILES)
            .map(|i| {
                let text = if i + 1 < FILES { format!("import \"f{}.tidl\";\n", i + 1) } else { String::new() };
                (format!("f{i}.tidl"), text)
            })
            .collect();
        let sources: Vec<crate::Source<'_>> = texts.iter().map(|(path, text)| crate::Source { path, text }).collect();
        let loaded = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(scope, || {
                    let mut memory = MemoryLoader::new(&sources, &[]);
                    load(&["f0.tidl".to_owned()], &mut memory).expect("loads")
                })
                .expect("a thread")
                .join()
                .expect("loading the chain overflowed its stack")
        });
        assert!(loaded.diagnostics.is_empty());
        assert_eq!(loaded.files.len(), FILES);
        // Each file is done once what it imports is: the last of the chain first.
        assert_eq!(loaded.sources.path(loaded.files[0].id), "f19999.tidl");
        assert_eq!(loaded.closure(loaded.roots[0]).len(), FILES);
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(normalize(Path::new("a/./b/../c.tidl")), "a/c.tidl");
        assert_eq!(normalize(Path::new("../x/y.tidl")), "../x/y.tidl");
        assert_eq!(normalize(Path::new("a/../../y.tidl")), "../y.tidl");
        assert_eq!(normalize(Path::new("/abs/./p.tidl")), "/abs/p.tidl");
    }
}
