//! The architecture, checked (a tidy test in the style of rust-analyzer's): reads `src/` and
//! ARCHITECTURE.md and fails on
//! - a `crate::` (or `super::`) edge that goes up the layer order written in ARCHITECTURE.md,
//! - an import cycle between modules (a module and its own parent or children excepted),
//! - a module missing from the layer list or the code map, or listed there but not in `src/`,
//! - a source file that does not open with a `//!` line,
//! - `unsafe` outside `src/sys.rs`,
//! - a file over 650 lines of non-test code.
//!
//! Test modules (`#[cfg(test)] mod tests`, and the modules in them) are not checked for layering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 650;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`; `src/lib.rs` → `crate`; `src/main.rs` → `main`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(root().join("src")).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.join("::").as_str() {
        "lib" => "crate".into(),
        other => other.into(),
    }
}

/// The file's code, without line comments and without its inline test module.
fn code_of(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path after `crate::` or `super::` in `code`, `{a, b}` groups expanded one level.
fn paths_in(code: &str, module: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (start, prefix) in [("crate::", None), ("super::", Some(()))] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            rest = &rest[i + start.len()..];
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let base: Vec<String> = match prefix {
                None => Vec::new(),
                Some(()) => {
                    let mut m: Vec<String> = module.split("::").map(String::from).collect();
                    m.pop();
                    m
                }
            };
            let mut segs = base.clone();
            let mut s = rest;
            loop {
                let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
                if end == 0 {
                    break;
                }
                segs.push(s[..end].to_string());
                s = &s[end..];
                if let Some(next) = s.strip_prefix("::") {
                    s = next;
                    if let Some(group) = s.strip_prefix('{') {
                        let close = group.find('}').unwrap_or(group.len());
                        for item in group[..close].split(',') {
                            let item = item.trim();
                            let name: String = item.chars().take_while(|c| is_ident(*c)).collect();
                            if !name.is_empty() && name != "self" {
                                let mut p = segs.clone();
                                p.push(name);
                                out.push(p);
                            }
                        }
                        break;
                    }
                } else {
                    break;
                }
            }
            out.push(segs);
        }
    }
    out
}

/// The longest known module that `path` starts with.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no \"{heading}\" section"));
    let body = &doc[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// ARCHITECTURE.md's layer list: `module → layer number` from the lines of the fenced block in
/// "## Layers" (`N  name  module, module, ...`).
fn layers(doc: &str) -> BTreeMap<String, (u32, String)> {
    let text = section(doc, "## Layers");
    let block = text
        .split("```")
        .nth(1)
        .expect("a fenced block in ## Layers");
    let mut out = BTreeMap::new();
    for line in block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("text"))
    {
        let mut words = line.split_whitespace();
        let n: u32 = words
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a layer line starts with its number: {line}"));
        let name = words.next().expect("a layer name").to_string();
        for m in words.collect::<Vec<_>>().join(" ").split(',') {
            let m = m.trim();
            if !m.is_empty() {
                assert!(
                    out.insert(m.to_string(), (n, name.clone())).is_none(),
                    "{m} is listed in two layers"
                );
            }
        }
    }
    out
}

/// The modules named in the first column of ARCHITECTURE.md's code map table.
fn code_map(doc: &str) -> BTreeSet<String> {
    section(doc, "## Code map")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or("");
            cell.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, m)| m.trim_end_matches(".rs").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

struct Source {
    module: String,
    file: PathBuf,
    text: String,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| Source {
            module: module_of(&file),
            text: std::fs::read_to_string(&file).expect("read"),
            file,
        })
        .collect()
}

#[test]
fn imports_go_down_the_layers_and_never_in_a_cycle() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let layers = layers(&doc);
    let sources = sources();
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut problems = Vec::new();
    for m in &modules {
        if m != "crate" && !is_test_module(m) && !layers.contains_key(m) {
            problems.push(format!(
                "{m} is in src/ but not in ARCHITECTURE.md's layer list"
            ));
        }
    }
    for m in layers.keys() {
        if !modules.contains(m) {
            problems.push(format!(
                "{m} is in ARCHITECTURE.md's layer list but not in src/"
            ));
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in &sources {
        if src.module == "crate" || src.module == "main" || is_test_module(&src.module) {
            continue;
        }
        let Some((from_layer, from_name)) = layers.get(&src.module) else {
            continue;
        };
        for path in paths_in(&code_of(&src.text), &src.module) {
            let Some(to) = resolve(&path, &modules) else {
                continue;
            };
            if to == src.module {
                continue;
            }
            if let Some((to_layer, to_name)) = layers.get(&to) {
                if to_layer > from_layer {
                    problems.push(format!(
                        "{} (layer {from_layer} {from_name}) uses {to} (layer {to_layer} {to_name}): imports must go down",
                        src.module
                    ));
                }
            }
            let related = to.starts_with(&format!("{}::", src.module))
                || src.module.starts_with(&format!("{to}::"));
            if !related {
                edges.entry(src.module.clone()).or_default().insert(to);
            }
        }
    }
    // Cycles: depth-first search over the import graph.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        problems: &mut Vec<String>,
    ) {
        if let Some(i) = stack.iter().position(|n| n == node) {
            problems.push(format!(
                "import cycle: {} -> {node}",
                stack[i..].join(" -> ")
            ));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, problems);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut problems);
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_code_map_names_every_module_and_only_those() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = code_map(&doc);
    let modules: BTreeSet<String> = sources()
        .into_iter()
        .map(|s| s.module)
        .filter(|m| m != "crate" && m != "main" && !is_test_module(m))
        .collect();
    let missing: Vec<&String> = modules.difference(&map).collect();
    let stale: Vec<&String> = map
        .iter()
        .filter(|m| !modules.contains(*m) && *m != "main" && *m != "lib")
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "code map of ARCHITECTURE.md: missing {missing:?}, not in src/ {stale:?}"
    );
}

#[test]
fn every_file_says_what_it_owns_unsafe_lives_in_sys_and_files_stay_small() {
    let mut problems = Vec::new();
    for src in sources() {
        let rel = src
            .file
            .strip_prefix(root())
            .unwrap_or(&src.file)
            .display()
            .to_string();
        if !src.text.starts_with("//!") {
            problems.push(format!(
                "{rel}: the file must open with a //! line saying what it owns"
            ));
        }
        let code = code_of(&src.text);
        let has_unsafe = code.match_indices("unsafe").any(|(i, _)| {
            let before = code[..i].chars().last();
            let after = code[i + 6..].chars().next();
            !before.is_some_and(is_ident)
                && !after.is_some_and(is_ident)
                && !code[..i].ends_with('"')
        });
        if has_unsafe && src.module != "sys" {
            problems.push(format!("{rel}: `unsafe` belongs in src/sys.rs only"));
        }
        let lines = code.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{rel}: {lines} lines of non-test code; split it (at most {MAX_LINES})"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_checker_sees_edges_groups_and_super() {
    let code = "use crate::tasks::{model::Task, runs};\nuse super::args::x;\nlet y = crate::util::tail(a, 1);";
    let paths = paths_in(code, "mcp::tools");
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"tasks::model".to_string()), "{joined:?}");
    assert!(joined.contains(&"tasks::runs".to_string()), "{joined:?}");
    assert!(joined.contains(&"mcp::args::x".to_string()), "{joined:?}");
    assert!(joined.contains(&"util::tail".to_string()), "{joined:?}");
}

/// A unit-test module (`…::tests`) or a module inside one (`…::tests::…`).
fn is_test_module(m: &str) -> bool {
    m.ends_with("::tests") || m.contains("::tests::")
}
