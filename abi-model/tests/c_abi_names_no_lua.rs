//! The C ABI half of the crate (everything outside `src/lua/`) names no Lua concept, so it
//! can be used by anyone calling C: no `lua_*` or `luaffi` names, no Lua (as a word: LuaJIT,
//! whose C parser `cdef` follows, is a reference, not a concept of ours), no cdata, helpers,
//! stubs, thunks or upvalues. The crate root's `mod lua` declaration is the one exception.
//! (`cdef` names LuaJIT's `ffi.cdef`, `ffi.typeof`, ... as the reference for the language it
//! accepts; they are LuaJIT's API, not a part of this crate.)

use std::path::{Path, PathBuf};

/// Substrings that make a word a Lua concept (matched in the lowercased word).
const LUA_CONCEPTS: [&str; 6] = ["cdata", "helper", "stub", "thunk", "upvalue", "luaffi"];

/// The crate root's lines that declare the stub-language module.
const ALLOWED_LINES: [&str; 2] = ["pub mod lua;", "#[cfg(feature = \"lua\")]"];

/// Every Lua word of `text`: (1-based line, word), the lines of [`ALLOWED_LINES`] left out.
fn lua_words(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if ALLOWED_LINES.contains(&line.trim()) {
            continue;
        }
        // Words split at underscores too, so `lua_State` and `LUA_OK` show their `lua`.
        for word in line.split(|c: char| !c.is_ascii_alphanumeric()) {
            let w = word.to_ascii_lowercase();
            let is_lua = w.starts_with("lua") && !w.starts_with("luajit");
            if is_lua || LUA_CONCEPTS.iter().any(|c| w.contains(c)) {
                found.push((n + 1, word.to_string()));
            }
        }
    }
    found
}

/// The Rust files under `dir`, `src/lua/` left out.
fn c_abi_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "lua") {
                continue;
            }
            c_abi_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn c_abi_modules_name_no_lua_concept() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    c_abi_files(&src, &mut files);
    assert!(files.len() >= 10, "found only {files:?}");
    let mut offenders = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read a source file");
        for (line, word) in lua_words(&text) {
            offenders.push(format!("{}:{line}: {word}", f.strip_prefix(&src).unwrap_or(&f).display()));
        }
    }
    assert!(offenders.is_empty(), "Lua concepts in the C ABI modules:\n{}", offenders.join("\n"));
}

#[test]
fn the_checker_catches_lua_words_and_lets_luajit_and_c_words_pass() {
    let bad = "/// one table per Lua state\nfn push(l: *mut lua_State) {}\n// a cdata's header, the \
               helpers, stubs and thunks\nconst LUAFFI_X: u32 = 0; // an upvalue\nlet table_lua = 1;";
    let words: Vec<String> = lua_words(bad).into_iter().map(|(_, w)| w).collect();
    assert_eq!(words, ["Lua", "lua", "cdata", "helpers", "stubs", "thunks", "LUAFFI", "upvalue", "lua"]);
    let good = "/// LuaJIT's `lj_cparse.c`; a callee's frame; CType; a callback's plan\n\
                fn spells_as_luajit_prints() {}\n#[cfg(feature = \"lua\")]\npub mod lua;";
    assert_eq!(lua_words(good), vec![]);
    assert_eq!(lua_words("mod lua;\nuse crate::lua::steps;"), vec![(1, "lua".into()), (2, "lua".into())]);
}
