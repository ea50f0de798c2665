//! The project's whole Lua suite (every `tests/lua/*.lua` but `testlib.lua`, found at run
//! time) under every Lua the module supports:
//!
//! * Debian's `lua5.1`, `lua5.2`, `lua5.3` and `lua5.4`, each loading `ffi.so` built for it
//!   (`--no-default-features --features module,lua5X`) through `package.cpath` only;
//! * the embedded `luaffi` command of this build;
//! * `luaffi` built with mlua's vendored Lua 5.5 (Debian ships no `lua5.5`).
//!
//! A missing interpreter fails with the command that installs it; nothing is skipped.
//! Each run writes one summary line (`lua5.3 (system lua + ffi.so): 7 scripts, 540 assertions
//! passed, ...`) to `target/lua-suite.d/`, which `cargo xtask test-all-abis` prints.
//!
//! Also here: `luarocks make` with the repository's rockspec for Lua 5.4 and 5.1 into a
//! temporary tree, then the installed module loaded by that Lua; and two copies of the module
//! loaded into one Lua state, which must not share anything.
//!
//! Builds: every version is built by a cargo subprocess in one shared target directory,
//! `target/lua-modules` (as `cargo xtask module` does), so dependencies that don't depend on
//! the Lua version are built once; the builds are serialized by [`CARGO_LOCK`] because they
//! all write the same cdylib path, and each result is copied to `target/lua5.X/` right away.
//!
//! x86-64 only: the system interpreters are Debian's x86-64 ones, which cannot load an i386
//! `ffi.so` or the i386 test library; an i386 build runs the whole suite through its own
//! embedded `luaffi` (`tests/lua_suite.rs`).
#![cfg(target_arch = "x86_64")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The `luaffi` command of this build (embedded Lua, by default 5.4).
const EMBEDDED_LUAFFI: &str = env!("CARGO_BIN_EXE_luaffi");

/// Held while a cargo subprocess builds into the shared target directory and its output is
/// copied away (every build writes the same `liblua_adapter.so`).
static CARGO_LOCK: Mutex<()> = Mutex::new(());

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("lua-adapter is in the workspace").to_path_buf()
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("lua")
}

/// The cargo target directory this test was built in (`CARGO_TARGET_TMPDIR` is its `tmp`).
fn target_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("tmp is inside the target directory").to_path_buf()
}

/// The target directory the per-version builds share.
fn shared_build_dir() -> PathBuf {
    target_root().join("lua-modules")
}

/// The suite's scripts, sorted.
fn scripts() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(suite_dir())
        .expect("tests/lua exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua") && n != "testlib.lua")
        .collect();
    names.sort();
    assert!(names.len() >= 6, "the suite has its scripts: {names:?}");
    names
}

/// The path of `program` on PATH, or a failure naming the Debian packages to install.
fn require_program(program: &str, debs: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed, and the suite must run under it. Install it with\n  \
             sudo apt-get install {debs}\n(`cargo xtask test-all-abis` installs it itself when run as root)"
        )
    })
}

/// The Debian packages of Lua 5.X's interpreter and headers.
fn lua_debs(version: &str) -> String {
    let dev = if version == "5.1" { "liblua5.1-0-dev".to_string() } else { format!("liblua{version}-dev") };
    format!("lua{version} {dev}")
}

/// Runs cargo (the one running these tests) with the shared target directory, under
/// [`CARGO_LOCK`], then copies `artifact` (relative to `target/lua-modules/debug`) to `dest`
/// before releasing the lock. Panics with cargo's output if the build fails.
fn cargo_build(args: &[&str], artifact: &str, dest: &Path) {
    let _guard = CARGO_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = std::time::Instant::now();
    let out = Command::new(&cargo)
        .args(["build", "-p", "lua-adapter"])
        .args(args)
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", shared_build_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(out.status.success(), "cargo build {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("cargo build {args:?}: {:.1}s", started.elapsed().as_secs_f64());
    let built = shared_build_dir().join("debug").join(artifact);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    // Through a temporary name: a process still running the previous file keeps it.
    let tmp = dest.with_extension("tmp");
    std::fs::copy(&built, &tmp).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    std::fs::rename(&tmp, dest).unwrap();
}

/// Builds `ffi.so` for Lua `version` into `target/lua<version>/ffi.so` and returns its path.
fn build_module(version: &str) -> PathBuf {
    let dest = target_root().join(format!("lua{version}")).join("ffi.so");
    let features = format!("module,lua{}", version.replace('.', ""));
    let artifact = format!("{}lua_adapter{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    cargo_build(&["--lib", "--no-default-features", "--features", &features], &artifact, &dest);
    dest
}

/// A command running `program` in the suite's directory with the environment that would
/// change what Lua loads removed (`LUA_INIT*`, and the versioned `LUA_PATH_5_X` /
/// `LUA_CPATH_5_X`, which win over the plain names), and `require` finding only the suite's
/// Lua files and, when given, C modules in `cpath`.
fn lua_command(program: &Path, cpath: Option<&Path>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(suite_dir());
    for name in ["LUA_INIT", "LUA_PATH", "LUA_CPATH"] {
        cmd.env_remove(name);
        for v in ["5_1", "5_2", "5_3", "5_4", "5_5"] {
            cmd.env_remove(format!("{name}_{v}"));
        }
    }
    cmd.env("LUA_PATH", "./?.lua");
    cmd.env("LUAFFI_CALLTEST", calltest_library());
    // The stubs' inline paths must be the ones tested: opening fails if the layout probe does.
    cmd.env(lua_adapter::surface::clib::REQUIRE_INLINE, "1");
    // Without a cpath of our own, no C module at all: `ffi` must be the built-in one.
    cmd.env("LUA_CPATH", cpath.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default());
    cmd
}

/// The call scripts' C library, built once per run.
fn calltest_library() -> &'static Path {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| common::build_calltest(&target_root().join("tmp").join("system-lua")))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The counts a script's `T.done` printed: `<script>: N passed, N failed, N skipped`.
fn script_counts(script: &str, stdout: &str) -> Option<(u64, u64, u64)> {
    let line = stdout.lines().rev().find_map(|l| l.strip_prefix(&format!("{script}: ")))?;
    let mut nums = line.split(", ").map(|part| part.split(' ').next()?.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??, nums.next()??))
}

/// Runs every script with `make_command(script)`, checks `_VERSION` first, writes the summary
/// line for `label` and fails listing every script that failed (with its output).
fn run_suite(label: &str, expected_version: &str, make_command: impl Fn() -> Command) {
    let out = make_command().args(["-e", "io.write(_VERSION, ' ', tostring(require('ffi').os))"]).output().unwrap();
    let said = text(&out.stdout);
    assert!(
        out.status.success() && said.starts_with(&format!("Lua {expected_version} ")),
        "{label}: expected Lua {expected_version} with the ffi module, got {said:?}\n{}",
        text(&out.stderr)
    );
    let scripts = scripts();
    let (mut passed, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for script in &scripts {
        let out: Output = make_command().arg(script).output().unwrap();
        let stdout = text(&out.stdout);
        match script_counts(script, &stdout) {
            Some((p, 0, s)) if out.status.success() => {
                passed += p;
                skipped += s;
            }
            _ => failures.push(format!("--- {script} (exit {:?}):\n{stdout}{}", out.status.code(), text(&out.stderr))),
        }
    }
    let failed_names: Vec<&str> =
        failures.iter().map(|f| f.trim_start_matches("--- ").split(' ').next().unwrap_or("?")).collect();
    let line = if failures.is_empty() {
        format!("{label}: {} scripts, {passed} assertions passed, {skipped} skipped", scripts.len())
    } else {
        format!("{label}: {} scripts, {} FAILED ({})", scripts.len(), failures.len(), failed_names.join(", "))
    };
    println!("{line}");
    let lines_dir = target_root().join("lua-suite.d");
    std::fs::create_dir_all(&lines_dir).unwrap();
    let file_name: String = label
        .split(' ')
        .next()
        .unwrap()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
        .collect();
    std::fs::write(lines_dir.join(format!("{file_name}.txt")), format!("{line}\n")).unwrap();
    assert!(failures.is_empty(), "{line}\n{}", failures.join("\n"));
}

/// The suite under Debian's `lua<version>` with `ffi.so` built for it.
fn system_lua_suite(version: &str) {
    let lua = require_program(&format!("lua{version}"), &lua_debs(version));
    let module = build_module(version);
    let cpath = module.parent().unwrap().join("?.so");
    run_suite(&format!("lua{version} (system lua + ffi.so)"), version, || lua_command(&lua, Some(&cpath)));
}

#[test]
fn lua5_1() {
    system_lua_suite("5.1");
}

#[test]
fn lua5_2() {
    system_lua_suite("5.2");
}

#[test]
fn lua5_3() {
    system_lua_suite("5.3");
}

#[test]
fn lua5_4() {
    system_lua_suite("5.4");
}

/// The embedded `luaffi` of this build (Lua 5.4 unless the crate was built with another).
#[test]
fn luaffi_embedded() {
    let exe = Path::new(EMBEDDED_LUAFFI);
    let out = lua_command(exe, None).args(["-e", "io.write((_VERSION:gsub('Lua ', '')))"]).output().unwrap();
    let version = text(&out.stdout);
    run_suite(&format!("luaffi{version} (embedded)"), &version, || lua_command(exe, None));
}

/// `luaffi` with mlua's vendored Lua 5.5: the only 5.5 there is on Debian.
#[test]
fn luaffi_lua5_5() {
    let exe = target_root().join("lua5.5").join("luaffi");
    cargo_build(&["--bin", "luaffi", "--no-default-features", "--features", "lua55,vendored"], "luaffi", &exe);
    run_suite("luaffi5.5 (vendored Lua 5.5)", "5.5", || lua_command(&exe, None));
}

/// `luarocks make` with the rockspec at the repository root, for Lua `version`, into a fresh
/// tree; then the installed `ffi.so` runs two of the suite's scripts under that Lua.
fn luarocks_make(version: &str) {
    let lua = require_program(&format!("lua{version}"), &lua_debs(version));
    let luarocks = require_program("luarocks", "luarocks");
    let tree = target_root().join("luarocks-test").join(format!("lua{version}"));
    let _ = std::fs::remove_dir_all(&tree);
    let rockspec = "luaffi-scm-1.rockspec";
    {
        let _guard = CARGO_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = Command::new(&luarocks)
            .args(["--lua-version", version, "--tree"])
            .arg(&tree)
            .args(["make", rockspec])
            .current_dir(workspace_root())
            // Reuse the debug builds of the other tests (the rockspec's default is release).
            .env("CARGO_TARGET_DIR", shared_build_dir())
            .env("LUAFFI_CARGO_PROFILE", "dev")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "luarocks make for Lua {version} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let lib_dir = tree.join("lib").join("lua").join(version);
    assert!(lib_dir.join("ffi.so").is_file(), "luarocks installed no {}", lib_dir.join("ffi.so").display());
    let listed = Command::new(&luarocks)
        .args(["--lua-version", version, "--tree"])
        .arg(&tree)
        .args(["list", "--porcelain"])
        .output()
        .unwrap();
    assert!(text(&listed.stdout).contains("luaffi\tscm-1\tinstalled"), "luarocks list: {}", text(&listed.stdout));
    let cpath = lib_dir.join("?.so");
    for script in ["ctype.lua", "cdata.lua"] {
        let out = lua_command(&lua, Some(&cpath)).arg(script).output().unwrap();
        let stdout = text(&out.stdout);
        assert!(
            out.status.success() && matches!(script_counts(script, &stdout), Some((p, 0, _)) if p > 0),
            "{script} with the luarocks-installed module under lua{version}:\n{stdout}{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn luarocks_make_lua5_4() {
    luarocks_make("5.4");
}

#[test]
fn luarocks_make_lua5_1() {
    luarocks_make("5.1");
}

/// Two copies of `ffi.so` (two files, so the dynamic linker loads two images) opened into one
/// Lua state: each has its own registry key, so its own types, cdata metatables and
/// finalizers; interleaved use and the collection of both at exit must not mix them up.
fn two_copies_in_one_state(version: &str) {
    let lua = require_program(&format!("lua{version}"), &lua_debs(version));
    let module = build_module(version);
    let dir = target_root().join("tmp").join(format!("two-copies-lua{version}"));
    let _ = std::fs::remove_dir_all(&dir);
    for copy in ["a", "b"] {
        std::fs::create_dir_all(dir.join(copy)).unwrap();
        std::fs::copy(&module, dir.join(copy).join("ffi.so")).unwrap();
    }
    let script = r#"
local a_path, b_path = ...
local A = assert(package.loadlib(a_path, "luaopen_ffi"))()
local B = assert(package.loadlib(b_path, "luaopen_ffi"))()
assert(A ~= B and A.new ~= B.new, "two modules")
A.cdef "struct pt { int x, y; };"
B.cdef "struct pt { double x, y, z; };"
assert(A.sizeof("struct pt") == 8, "A's struct pt")
assert(B.sizeof("struct pt") == 24, "B's struct pt")
local pa, pb = A.new("struct pt", 1, 2), B.new("struct pt", 3, 4, 5)
assert(A.istype("struct pt", pa) and B.istype("struct pt", pb), "each knows its own cdata")
assert(not A.istype("struct pt", pb) and not B.istype("struct pt", pa), "and not the other's")
assert(not pcall(A.sizeof, pb), "A refuses B's cdata as a type")
local fa, fb = 0, 0
for i = 1, 2000 do
  local x = A.gc(A.new("struct pt", i, i), function() fa = fa + 1 end)
  local y = B.gc(B.new("struct pt", i, i, i), function() fb = fb + 1 end)
  assert(x.y + y.z == 2 * i)
end
collectgarbage() collectgarbage()
assert(fa == 2000 and fb == 2000, "finalizers of both ran: " .. fa .. ", " .. fb)
assert(tonumber(A.new("int64_t", 7)) == 7 and tonumber(B.new("int64_t", 8)) == 8, "tonumber for both")
assert(tostring(pa):match("^cdata<struct pt>: 0x") and tostring(pb):match("^cdata<struct pt>: 0x"))
-- Left alive on purpose: the state closes with cdata of both copies and both states.
KEEP = { A.gc(A.new("int[3]"), function() end), B.gc(B.new("int[3]"), function() end), pa, pb }
print("two copies ok")
"#;
    std::fs::write(dir.join("two.lua"), script).unwrap();
    let out = lua_command(&lua, None)
        .current_dir(&dir)
        .arg("two.lua")
        .arg(dir.join("a").join("ffi.so"))
        .arg(dir.join("b").join("ffi.so"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out.stdout).contains("two copies ok"),
        "lua{version}: two copies of the module in one state:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn two_module_copies_in_one_lua5_4_state() {
    two_copies_in_one_state("5.4");
}

#[test]
fn two_module_copies_in_one_lua5_1_state() {
    two_copies_in_one_state("5.1");
}

#[test]
fn script_counts_reads_the_summary_line() {
    assert_eq!(script_counts("a.lua", "x\na.lua: 12 passed, 0 failed, 3 skipped\n"), Some((12, 0, 3)));
    assert_eq!(script_counts("a.lua", "b.lua: 12 passed, 0 failed, 3 skipped\n"), None);
    assert_eq!(script_counts("a.lua", "a.lua: 12 passed\n"), None);
}
