//! lua-adapter's modules form layers that only point down (see the crate docs): reads the
//! `crate::` and `super::` paths of every source file under `src/` (outside comments and
//! `#[cfg(test)]` modules, which may build the whole `ffi` module) and fails on an import of
//! a higher layer or on modules importing each other in a circle.
//!
//! `cargo test -p lua-adapter --test layers -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: the first component of a module's path names its layer.
const LAYERS: [&str; 7] = ["os", "stack", "ctypes", "cdata", "convert", "native", "surface"];

/// A module's layer (its index in [`LAYERS`]), `None` for a path outside every layer.
fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == top)
}

/// Module path -> the modules its code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules named in `source`, the text of module `module`; `modules` are all the crate's
/// modules (to tell a module from an item: `crate::native::call::f` names `native::call`).
fn imports(module: &str, source: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    // A directory module's `super` is the crate root; a file's, its directory.
    let is_dir = modules.iter().any(|m| m.starts_with(&format!("{module}::")));
    let super_of = if is_dir { "" } else { parent };
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        for (prefix, base) in [("crate::", ""), ("super::", super_of)] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                // `pub(in crate::x)` restricts visibility; it imports nothing.
                let preceded = rest[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_')
                    || rest[..at].ends_with("(in ");
                rest = &rest[at + prefix.len()..];
                if preceded {
                    continue;
                }
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                // The longest prefix of the path that is a module.
                let mut named = None;
                for n in 1..=path.len() {
                    let m = if base.is_empty() {
                        path[..n].join("::")
                    } else {
                        format!("{base}::{}", path[..n].join("::"))
                    };
                    if modules.contains(&m) {
                        named = Some(m);
                    }
                }
                if let Some(m) = named.filter(|m| m != module) {
                    found.insert(m);
                }
            }
        }
    }
    found
}

/// What is wrong with `graph`: imports of a higher layer, imports from outside every layer,
/// and circles (each reported once, as the path that closes it).
fn violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in graph {
        for to in tos {
            match (layer(from), layer(to)) {
                (Some(a), Some(b)) if b > a => {
                    out.push(format!("{from} (layer {}) imports {to} (layer {}, above it)", LAYERS[a], LAYERS[b]))
                }
                (Some(_), None) => out.push(format!("{from} imports {to}, which is in no layer")),
                _ => {}
            }
        }
    }
    // Depth-first search; a back edge closes a circle.
    fn visit<'g>(
        graph: &'g Graph,
        m: &'g str,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
        out: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == m) {
            out.push(format!("circle: {} -> {m}", path[at..].join(" -> ")));
            return;
        }
        path.push(m);
        for to in graph.get(m).into_iter().flatten() {
            visit(graph, to, path, done, out);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(graph, m, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

/// The graph of `(module path, source)` pairs.
fn graph_of(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files.iter().map(|(m, src)| (m.clone(), imports(m, src, &modules))).collect()
}

/// Every module of `src/` (not the crate root, not the binaries) with its source.
fn crate_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src is readable").map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let module = if prefix.is_empty() { name.clone() } else { format!("{prefix}::{name}") };
            if p.is_dir() {
                if name != "bin" {
                    walk(&p, &module, out);
                }
            } else if p.extension().is_some_and(|e| e == "rs") && !(prefix.is_empty() && name == "lib") {
                let module = if name == "mod" { prefix.to_string() } else { module };
                out.push((module, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "", &mut out);
    out
}

#[test]
fn modules_import_only_lower_layers_and_no_circles() {
    let graph = graph_of(&crate_sources());
    assert!(graph.len() >= 15, "found only {} modules", graph.len());
    println!("lua-adapter's module graph (module -> the modules it imports):");
    for (m, tos) in &graph {
        let tos: Vec<&str> = tos.iter().map(String::as_str).collect();
        println!("  {m} -> {}", if tos.is_empty() { "(nothing)".to_string() } else { tos.join(", ") });
    }
    let bad = violations(&graph);
    assert!(bad.is_empty(), "the layers are broken:\n  {}", bad.join("\n  "));
}

/// Made-up sources for the checker's own tests.
fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(m, s)| (m.to_string(), s.to_string())).collect()
}

#[test]
fn an_upward_import_is_caught() {
    let g = graph_of(&files(&[
        ("cdata", "use crate::surface::api::new_object;\n"),
        ("surface", "pub mod api;\n"),
        ("surface::api", "use crate::cdata;\n"),
    ]));
    let bad = violations(&g);
    assert!(bad.iter().any(|v| v.starts_with("cdata (layer cdata) imports surface::api")), "{bad:?}");
}

#[test]
fn an_upward_import_through_super_or_inline_is_caught() {
    let g = graph_of(&files(&[
        ("ctypes", "pub mod state;\n"),
        ("ctypes::state", "fn f() { let x = crate::native::call::g(); }\n"),
        ("native", "pub mod call;\npub mod helpers;\n"),
        ("native::call", "use super::helpers::f; // use crate::surface::meta; is a comment\n"),
        ("native::helpers", "pub(in crate::native) fn h() {}\n#[cfg(test)]\nmod tests { use crate::surface::meta; }\n"),
        ("surface", "pub mod meta;\n"),
        ("surface::meta", ""),
    ]));
    let bad = violations(&g);
    assert_eq!(bad, ["ctypes::state (layer ctypes) imports native::call (layer native, above it)"], "{g:?}");
    assert_eq!(g["native::call"], BTreeSet::from(["native::helpers".to_string()]));
}

#[test]
fn a_circle_inside_a_layer_is_caught() {
    let g = graph_of(&files(&[
        ("native", "pub mod call;\npub mod callback;\n"),
        ("native::call", "use crate::native::callback::Callbacks;\n"),
        ("native::callback", "use crate::native::call::assemble;\n"),
    ]));
    let bad = violations(&g);
    assert_eq!(bad, ["circle: native::call -> native::callback -> native::call"]);
}

/// The Lua C API functions that raise by design (errors and argument checks): only the stack
/// layer's one raising boundary (`stack::raise`) may call them.
const RAISING: [&str; 6] = ["lua_error", "luaL_error", "luaL_argerror", "luaL_typeerror", "luaL_check", "luaL_opt"];

/// Where a module outside the stack layer calls a raising function: `module: line`.
fn raises_outside_stack(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (m, src) in files {
        if m.split("::").next() == Some("stack") {
            continue;
        }
        for line in src.lines() {
            let code = line.split("//").next().unwrap_or("");
            if RAISING.iter().any(|f| code.contains(&format!("ffi::{f}"))) {
                out.push(format!("{m}: {}", line.trim()));
            }
        }
    }
    out
}

#[test]
fn only_the_stack_layer_raises() {
    let bad = raises_outside_stack(&crate_sources());
    assert!(bad.is_empty(), "raising outside stack::raise:\n  {}", bad.join("\n  "));
}

#[test]
fn a_raise_outside_the_stack_layer_is_caught() {
    let bad = raises_outside_stack(&files(&[
        ("stack", "unsafe { ffi::lua_error(l) }\n"),
        ("native::callback", "// ffi::lua_error(l) in a comment\nffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);\n"),
    ]));
    assert_eq!(bad, ["native::callback: ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);"]);
}
