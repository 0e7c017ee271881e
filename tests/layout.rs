//! The layout promises of the README's "Layout" section, checked on the
//! source itself: layers as folders, no module cycle (a module uses only
//! modules below it), no source file over 600 lines, and one module that
//! knows `lambda_runtime`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's modules by path (`store::item`), with their text.
fn library_modules() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .filter(|f| !f.starts_with(src().join("bin")))
        .filter_map(|f| {
            let relative = f.strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            (name != "lib").then(|| (name, std::fs::read_to_string(&f).unwrap()))
        })
        .collect()
}

/// The modules `text` names through `crate::…`, as the longest module path.
fn uses(text: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let path: String = text[at + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        if let Some(module) = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains_key(m))
        {
            used.insert(module);
        }
    }
    used
}

/// The first module cycle found, as `a → b → a`.
fn find_cycle(modules: &BTreeMap<String, String>) -> Option<String> {
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(name, text)| {
            let mut used = uses(text, modules);
            // A module may name items of its own parent (`mod.rs`).
            used.retain(|u| u != name && !name.starts_with(&format!("{u}::")));
            (name.as_str(), used)
        })
        .collect();
    // Depth first; a module met again while still open closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<&'a str, BTreeSet<String>>,
        open: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if done.contains(module) {
            return None;
        }
        if let Some(at) = open.iter().position(|m| *m == module) {
            return Some(open[at..].join(" → ") + " → " + module);
        }
        open.push(module);
        for next in &graph[module] {
            let (next, _) = graph.get_key_value(next.as_str()).unwrap();
            if let Some(cycle) = visit(next, graph, open, done) {
                return Some(cycle);
            }
        }
        open.pop();
        done.insert(module);
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, &graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let modules = library_modules();
    assert!(
        modules.len() > 20,
        "found the modules: {:?}",
        modules.keys()
    );
    assert_eq!(find_cycle(&modules), None);
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let modules: BTreeMap<String, String> = [
        ("a".to_owned(), "use crate::b::x;".to_owned()),
        ("b".to_owned(), "fn f() { crate::c::y(); }".to_owned()),
        ("c".to_owned(), "use crate::a;".to_owned()),
        ("d".to_owned(), "use crate::a;".to_owned()),
    ]
    .into();
    assert_eq!(find_cycle(&modules).as_deref(), Some("a → b → c → a"));
    let mut acyclic = modules.clone();
    acyclic.insert("c".to_owned(), String::new());
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn layers_are_folders_and_files_stay_small() {
    let folders: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "bin"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(folders.len() >= 3, "{folders:?}");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= 600, "{} has {lines} lines", file.display());
    }
}

#[test]
fn only_the_lambda_module_knows_lambda_runtime() {
    for (name, text) in library_modules() {
        if name != "lambda" {
            assert!(
                !text.contains("lambda_runtime"),
                "{name} names lambda_runtime"
            );
        }
    }
}
