//! The shape of the library, checked: its modules form layers whose dependencies point one way,
//! and no module depends, directly or through others, on itself.
//!
//! The layers are written down once, in the `layers` block of `docs/ARCHITECTURE.md`: each line
//! names one top-level module of `src/`, lowest first. A module may use modules of its own layer
//! and of the layers below it, never those above. `lib.rs`, the facade, may use everything.
//!
//! What counts as a use: a path in code (not in comments or strings) that starts with `crate::`
//! or `super::`, or, in a file that declares a child module, with that child's name; a path is
//! attributed to the longest module it names. The unit tests of a file (its `#[cfg(test)]`
//! modules) are left out: a test may reach for anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module of the library: its path (`storage::fs`) and its code, comments and tests removed.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    code: String,
}

/// For each folder module, the items its facade re-exports from its children: item name to
/// the child module that defines it (`storage`: `FsStorage` to `storage::fs`).
type Facades = BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>;

#[test]
fn layers_point_one_way_and_modules_have_no_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = read_layers(&root.join("docs/ARCHITECTURE.md"));
    let modules = collect(&root.join("src"));
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let facades: Facades = modules
        .iter()
        .map(|m| (m.path.clone(), reexports(m, &known)))
        .collect();

    let mut problems = Vec::new();
    for name in layers.keys() {
        if !known.contains(&vec![name.clone()]) {
            problems.push(format!(
                "docs/ARCHITECTURE.md names a layer `{name}` that src/ lacks"
            ));
        }
    }
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for m in &modules {
        if m.path.is_empty() {
            continue; // lib.rs, the facade
        }
        let Some(&from_layer) = layers.get(&m.path[0]) else {
            problems.push(format!(
                "{}: top-level module `{}` is in no layer of docs/ARCHITECTURE.md",
                m.file.display(),
                m.path[0]
            ));
            continue;
        };
        for target in uses(m, &known, &facades) {
            if target == m.path || target.is_empty() {
                continue;
            }
            if layers
                .get(&target[0])
                .is_some_and(|&to_layer| to_layer > from_layer)
            {
                problems.push(format!(
                    "{} ({}) uses {} ({}), a higher layer",
                    m.path.join("::"),
                    m.path[0],
                    target.join("::"),
                    target[0]
                ));
            }
            edges.entry(m.path.clone()).or_default().insert(target);
        }
    }
    for cycle in cycles(&edges) {
        let names: Vec<String> = cycle.iter().map(|p| p.join("::")).collect();
        problems.push(format!(
            "modules that use each other in a cycle: {}",
            names.join(", ")
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the module layers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checker itself: a use upward and a cycle are both reported.
#[test]
fn the_checker_finds_an_upward_use_and_a_cycle() {
    let known: BTreeSet<Vec<String>> = [
        vec!["a".into()],
        vec!["b".into()],
        vec!["b".into(), "c".into()],
    ]
    .into_iter()
    .collect();
    let m = Module {
        path: vec!["a".into()],
        file: "a.rs".into(),
        code: strip(
            "use crate::b::c::Thing; // crate::b is named here only\nfn f() { let s = \"crate::b\"; }\n#[cfg(test)]\nmod tests { use crate::b::X; }",
        ),
    };
    let facades = Facades::new();
    assert_eq!(
        uses(&m, &known, &facades),
        [vec!["b".to_string(), "c".to_string()]].into()
    );
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    edges
        .entry(vec!["a".into()])
        .or_default()
        .insert(vec!["b".into()]);
    edges
        .entry(vec!["b".into()])
        .or_default()
        .insert(vec!["a".into()]);
    assert_eq!(cycles(&edges).len(), 1);
    edges.remove(&vec!["b".to_string()]);
    assert!(cycles(&edges).is_empty());
}

/// Reads the `layers` block of the architecture document: layer name to rank, lowest first.
fn read_layers(doc: &Path) -> BTreeMap<String, usize> {
    let text = fs::read_to_string(doc).expect("docs/ARCHITECTURE.md");
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has a ```layers block");
    block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(rank, name)| (name.to_string(), rank))
        .collect()
}

/// Every module file under `src/` except the binaries and the loom models (test code).
fn collect(src: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "bin" {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut path: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|l| l == "mod" || l == "lib") {
                path.pop();
            }
            if path.last().is_some_and(|l| l == "loom_models") {
                continue;
            }
            let code = strip(&fs::read_to_string(&p).unwrap());
            out.push(Module {
                path,
                file: p,
                code,
            });
        }
    }
    out
}

/// The code of a file without comments, string and char literals, and `#[cfg(test)]` items.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = text[i..].find("*/").map_or(b.len(), |e| i + e + 2);
        } else if b[i] == b'"' || (b[i] == b'r' && b[i..].starts_with(b"r#\"")) {
            // A string literal (raw ones with one `#`): skipped whole.
            if b[i] == b'r' {
                i = text[i + 3..].find("\"#").map_or(b.len(), |e| i + 3 + e + 2);
            } else {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x' or '\n'); a lifetime has no closing quote.
            i = text[i + 2..].find('\'').map_or(b.len(), |e| i + 2 + e + 1);
        } else if b[i..].starts_with(b"#[cfg(test)]") || b[i..].starts_with(b"#[cfg(all(test") {
            // The item after the attribute: up to its `;` or its matching `}`.
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The modules a module's code uses.
fn uses(m: &Module, known: &BTreeSet<Vec<String>>, facades: &Facades) -> BTreeSet<Vec<String>> {
    let children = children(&m.path, known);
    let mut found = BTreeSet::new();
    for path in paths(&without_reexports(&m.code, &children)) {
        let mut segs: Vec<String> = path.split("::").map(str::to_string).collect();
        let absolute: Vec<String> = match segs[0].as_str() {
            "crate" => segs.split_off(1),
            "super" => {
                let mut base = m.path.clone();
                while segs.first().is_some_and(|s| s == "super") {
                    base.pop();
                    segs.remove(0);
                }
                base.extend(segs);
                base
            }
            "self" if segs.len() > 1 && children.contains(&segs[1]) => {
                let mut base = m.path.clone();
                base.extend(segs.split_off(1));
                base
            }
            first if children.contains(first) => {
                let mut base = m.path.clone();
                base.extend(segs);
                base
            }
            _ => continue,
        };
        // The longest module the path names.
        let mut longest = None;
        for n in 1..=absolute.len() {
            if known.contains(&absolute[..n]) {
                longest = Some(absolute[..n].to_vec());
            }
        }
        if let Some(mut target) = longest {
            // An item a facade re-exports is a use of the child that defines it.
            if let Some(item) = absolute.get(target.len())
                && let Some(child) = facades.get(&target).and_then(|f| f.get(item))
            {
                target.clone_from(child);
            }
            found.insert(target);
        }
    }
    found
}

/// The child modules of the module at `path`.
fn children(path: &[String], known: &BTreeSet<Vec<String>>) -> BTreeSet<String> {
    known
        .iter()
        .filter(|p| p.len() == path.len() + 1 && p.starts_with(path))
        .map(|p| p.last().unwrap().clone())
        .collect()
}

/// The items a module re-exports from its children (`pub use fs::{FsStorage, NotRegular};`).
fn reexports(m: &Module, known: &BTreeSet<Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let children = children(&m.path, known);
    let mut out = BTreeMap::new();
    for kw in ["pub use ", "pub(crate) use "] {
        for (i, _) in m.code.match_indices(kw) {
            let start = i + kw.len();
            let end = m.code[start..]
                .find(';')
                .map_or(m.code.len(), |e| start + e);
            for path in paths(&m.code[start..end]) {
                let segs: Vec<&str> = path.trim_start_matches("self::").split("::").collect();
                if segs.len() >= 2 && children.contains(segs[0]) {
                    let mut child = m.path.clone();
                    child.push(segs[0].to_string());
                    out.insert(segs.last().unwrap().to_string(), child);
                }
            }
        }
    }
    out
}

/// The code without the re-exports of its own child modules: a folder's `mod.rs` is the facade
/// of the modules in it, and naming their items is not using them.
fn without_reexports(code: &str, children: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = ["pub use ", "pub(crate) use "]
        .iter()
        .filter_map(|kw| rest.find(kw).map(|i| (i, kw.len())))
        .min()
    {
        let (i, len) = at;
        let end = rest[i..].find(';').map_or(rest.len(), |e| i + e + 1);
        let target = rest[i + len..].trim_start().trim_start_matches("self::");
        let child = target.split("::").next().unwrap_or("");
        out.push_str(&rest[..i]);
        if !children.contains(child) {
            out.push_str(&rest[i..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Every path in the code, with `use` groups (`crate::a::{b, c::d}`) expanded.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let (prefixes, end) = expand(code, i);
        out.extend(prefixes.into_iter().filter(|p| p.contains("::")));
        i = end.max(i + 1);
    }
    out
}

/// Expands the path starting at `start` (with any `{...}` groups) into full paths; returns them
/// and where the path ends.
fn expand(code: &str, start: usize) -> (Vec<String>, usize) {
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = start;
    let mut prefix = String::new();
    loop {
        let s = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        prefix.push_str(&code[s..i]);
        let rest = &code[i..];
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("::") {
            return (vec![prefix], i);
        }
        i += rest.len() - trimmed.len() + 2;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            // A group: each member is a path of its own under the prefix.
            let mut all = vec![];
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (all, i + 1);
                }
                if is_ident(bytes[i]) {
                    let (inner, end) = expand(code, i);
                    all.extend(inner.into_iter().map(|p| format!("{prefix}::{p}")));
                    i = end;
                } else {
                    i += 1;
                }
            }
        }
        if i >= bytes.len() || !is_ident(bytes[i]) {
            return (vec![prefix], i);
        }
        prefix.push_str("::");
    }
}

/// The cycles of the graph (one per strongly connected component of more than one module).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    // Tarjan's algorithm.
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.edges.get(v) {
            for w in next {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}
