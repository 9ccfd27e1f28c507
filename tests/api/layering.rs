//! The module graph, read from the sources' `crate::…` paths: the
//! top-level modules of `src/` form layers without a cycle, the value types
//! (`domain`) depend on no other module, and only the HTTP layer (and the
//! start-up that serves it) knows the web framework. `docs/src/ARCHITECTURE.md` draws the
//! layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Each top-level module and the top-level modules its code (tests and
/// comments left out) names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_of(&file);
        let used = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            used.extend(
                named_modules(&code[at + "crate::".len()..])
                    .into_iter()
                    .filter(|name| *name != module),
            );
        }
    }
    graph
}

/// The top-level modules a path after `crate::` names: `a::…`, or each of
/// `{a, b::{…}}`.
fn named_modules(rest: &str) -> Vec<String> {
    let identifier = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![identifier(rest)];
    };
    let (mut depth, mut names, mut start) = (0, Vec::new(), 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(identifier(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(identifier(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names.retain(|name| !name.is_empty() && name != "self");
    names
}

#[test]
fn grouped_imports_name_each_module() {
    assert_eq!(named_modules("store::Store;"), ["store"]);
    assert_eq!(
        named_modules("{store::{Store, now}, domain::Feature, problem};"),
        ["store", "domain", "problem"]
    );
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    for next in graph.get(path.last().unwrap()).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_owned());
            return Some(cycle);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(cycle) = cycle_from(graph, start, path) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_top_level_modules_have_no_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "{graph:?}");
    for module in graph.keys() {
        let cycle = cycle_from(&graph, module, &mut vec![module.clone()]);
        assert!(cycle.is_none(), "a cycle: {}", cycle.unwrap().join(" -> "));
    }
    assert!(
        graph["domain"].is_empty(),
        "domain must depend on no other module: {:?}",
        graph["domain"]
    );
}

/// Code lines of a source file: tests and comments left out.
fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_the_http_layer_knows_the_web_framework() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = [
        src.join("http"),
        src.join("testing"),
        src.join("startup.rs"),
    ];
    let files = sources(&src);
    assert!(files.len() > 20);
    for file in files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        assert!(
            !code_of(&file).contains("actix"),
            "{} uses actix-web; HTTP belongs in src/http/",
            file.strip_prefix(&src).unwrap().display()
        );
    }
}
