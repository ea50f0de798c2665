//! The initialiser script `tests/lua/safety_init.lua` under valgrind's memcheck: a string
//! copied into a `char[?]`, `uint8_t[?]`, `d[?]` or `d[]` used to write its NUL (or more) past
//! the object, which no Lua code can see. The script's own run (in `lua_suite.rs`) checks the
//! values; this run checks that nothing is written or read outside the heap blocks.
//!
//! valgrind is installed by `cargo xtask test-all-abis`; without it the test says so and
//! passes, as the LuaJIT reference runs do without LuaJIT.

use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_luaffi");

fn have_valgrind() -> bool {
    Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn initialisers_write_only_inside_their_objects() {
    if !have_valgrind() {
        eprintln!("valgrind not on PATH: the memcheck run of safety_init.lua is skipped");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("lua");
    let out = Command::new("valgrind")
        .args(["--tool=memcheck", "--error-exitcode=99", "--num-callers=20"])
        .arg(EXE)
        .arg("safety_init.lua")
        .current_dir(&dir)
        .env("LUA_PATH", "./?.lua")
        .env_remove("LUA_INIT")
        .env_remove("LUA_INIT_5_4")
        .output()
        .expect("cannot run valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "valgrind {EXE} safety_init.lua failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "memcheck found errors:\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "safety_init.lua printed no summary:\n{stdout}");
}

/// Runs `code` in a fresh state with `ffi` on a thread with a `kib` KiB stack; its error, if
/// any. A C stack overflow aborts the whole test process.
fn run_on_small_stack(kib: usize, code: String) -> Result<(), String> {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(move || {
            let lua = mlua::Lua::new();
            let ffi = lua_adapter::surface::module::open(&lua).map_err(|e| e.to_string())?;
            lua.globals().set("ffi", ffi).map_err(|e| e.to_string())?;
            lua.load(code).exec().map_err(|e| e.to_string())
        })
        .expect("spawn")
        .join()
        .expect("the thread ran")
}

/// Records nested `n` deep (`struct ib_nK { struct ib_n(K-1) a; }`) and initialisers for the
/// deepest, by name and by position.
const DEEP: &str = r#"
local n = N
ffi.cdef "struct ib_n0 { int v; };"
for i = 1, n do
  if not pcall(ffi.cdef, ("struct ib_n%d { struct ib_n%d a; };"):format(i, i - 1)) then
    -- Refused by a bound on type nesting: deep enough.
    n = i - 1
    break
  end
end
local named, positional = { v = 1 }, { 1 }
for _ = 1, n do named, positional = { a = named }, { positional } end
local ok1, e1 = pcall(ffi.new, "struct ib_n" .. n, named)
local ok2, e2 = pcall(ffi.new, "struct ib_n" .. n, positional)
assert(ok1 == ok2, "named and positional agree")
if not ok1 then error(tostring(e1) .. " / " .. tostring(e2), 0) end
"#;

#[test]
fn the_deepest_initialiser_allowed_runs_on_a_256_kib_stack() {
    let code = DEEP.replace("local n = N", &format!("local n = {}", lua_adapter::convert::MAX_INIT_DEPTH - 1));
    run_on_small_stack(256, code).unwrap();
}

#[test]
fn deeper_initialisers_are_refused_before_the_c_stack_runs_out() {
    let code = DEEP.replace("local n = N", "local n = 5000");
    match run_on_small_stack(256, code) {
        Ok(()) => {} // type nesting bounded below the initializer bound: nothing deep to initialise
        Err(e) => assert!(e.contains("initializer nesting too deep"), "{e}"),
    }
}
