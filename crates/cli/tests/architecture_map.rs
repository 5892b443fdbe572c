//! Keeps `docs/ARCHITECTURE.md` true: every source file or folder it names exists under `crates/`,
//! and every type or function it names in backticks (or in its map) is defined in the code. A
//! rename or a removal that forgets the map fails here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file and folder under `crates/`, as paths relative to the repository root.
fn tree() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("crates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .to_string();
            if p.is_dir() {
                if !rel.ends_with("/target") {
                    out.push(format!("{rel}/"));
                    stack.push(p);
                }
            } else {
                out.push(rel);
            }
        }
    }
    out
}

/// The Rust sources under `crates/*/src`.
fn sources(tree: &[String]) -> Vec<String> {
    tree.iter()
        .filter(|p| p.ends_with(".rs") && p.contains("/src/"))
        .map(|p| std::fs::read_to_string(root().join(p)).unwrap())
        .collect()
}

/// The text inside backticks, and the first code block (the map).
fn parts(doc: &str) -> (Vec<String>, String) {
    let mut ticked = Vec::new();
    let mut map = String::new();
    let mut in_block = false;
    let mut blocks = 0;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            if in_block {
                blocks += 1;
            }
            continue;
        }
        if in_block {
            if blocks == 1 {
                map.push_str(line);
                map.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find('`') {
            let after = &rest[i + 1..];
            let Some(j) = after.find('`') else { break };
            ticked.push(after[..j].to_string());
            rest = &after[j + 1..];
        }
    }
    (ticked, map)
}

fn is_path(t: &str) -> bool {
    (t.ends_with(".rs") || t.ends_with('/') || t.starts_with("crates/"))
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
}

/// A type-like name: CamelCase with at least two humps (`LocalLeaders`), or a path (`X::y`).
fn is_name(t: &str) -> bool {
    let t = t.split('(').next().unwrap_or(t);
    if t.contains("::") {
        return t
            .split("::")
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
    let humps = t.chars().filter(char::is_ascii_uppercase).count();
    t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && humps >= 2
        && t.chars().any(|c| c.is_ascii_lowercase())
        && t.chars().all(|c| c.is_ascii_alphanumeric())
}

fn defined(name: &str, sources: &[String]) -> bool {
    let last = name
        .split('(')
        .next()
        .unwrap_or(name)
        .rsplit("::")
        .next()
        .unwrap_or(name);
    let keywords = [
        "struct ",
        "enum ",
        "trait ",
        "type ",
        "fn ",
        "const ",
        "static ",
        "mod ",
        "macro_rules! ",
    ];
    sources.iter().any(|s| {
        s.lines().any(|l| {
            let l = l.trim_start();
            let def = keywords.iter().any(|k| {
                l.find(k).is_some_and(|i| {
                    let rest = &l[i + k.len()..];
                    rest.starts_with(last)
                        && !rest[last.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            });
            // An enum variant on its own line: `Name,` `Name {` `Name(`.
            let variant = l.starts_with(last)
                && l[last.len()..].starts_with([',', ' ', '(', '{'])
                && !l.contains('=');
            def || variant
        })
    })
}

#[test]
fn every_file_and_name_in_the_architecture_map_exists() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let tree = tree();
    let sources = sources(&tree);
    let (ticked, map) = parts(&doc);

    let mut paths: BTreeSet<String> = ticked.iter().filter(|t| is_path(t)).cloned().collect();
    let mut names: BTreeSet<String> = ticked.iter().filter(|t| is_name(t)).cloned().collect();
    for word in map.split(|c: char| c.is_whitespace() || ",;:()→↔".contains(c)) {
        let w = word.trim_matches(|c: char| "├└─│▼.".contains(c));
        if w.is_empty() {
            continue;
        }
        if is_path(w) && (w.ends_with(".rs") || w.ends_with('/')) {
            paths.insert(w.to_string());
        } else if is_name(w) {
            names.insert(w.to_string());
        }
    }
    assert!(paths.len() > 30 && names.len() > 30, "{paths:?} {names:?}");

    let missing_paths: Vec<&String> = paths
        .iter()
        .filter(|p| {
            !tree
                .iter()
                .any(|t| t == *p || *t == format!("{p}/") || t.ends_with(&format!("/{p}")))
        })
        .collect();
    let missing_names: Vec<&String> = names.iter().filter(|n| !defined(n, &sources)).collect();
    assert!(
        missing_paths.is_empty() && missing_names.is_empty(),
        "docs/ARCHITECTURE.md names what the code does not have:\n  files: {missing_paths:?}\n  names: {missing_names:?}"
    );
}

#[test]
fn the_checker_catches_a_name_or_file_that_does_not_exist() {
    let tree = tree();
    let sources = sources(&tree);
    assert!(defined("LocalLeaders", &sources));
    assert!(defined("Partition::append_as_leader", &sources));
    assert!(!defined("OffsetsTopicWriter", &sources));
    assert!(!tree.iter().any(|t| t.ends_with("/leaders.rs")));
}
