//! Lifetimes that end while something may still use them, checked on whole processes (the
//! `luaffi` command, under valgrind when it is installed): the module's state against
//! finalizers that run after it while the Lua state closes, and callbacks against the C code
//! that holds their pointers.

mod common;

use std::path::PathBuf;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_luaffi");

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// A fresh directory for one test's script.
fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lifetimes").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn valgrind() -> bool {
    Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Runs `script` with `luaffi` (under valgrind's memcheck when `checked` and valgrind is
/// installed, failing on any invalid access).
fn run(test: &str, script: &str, checked: bool) -> Run {
    let dir = workdir(test);
    std::fs::write(dir.join("t.lua"), script).unwrap();
    let lib = common::build_calltest(&dir);
    let mut cmd = if checked && valgrind() {
        let mut c = Command::new("valgrind");
        c.args(["-q", "--error-exitcode=99", EXE]);
        c
    } else {
        Command::new(EXE)
    };
    let out = cmd
        .arg("t.lua")
        .current_dir(&dir)
        .env("LUAFFI_CALLTEST", lib)
        .env_remove("LUA_INIT")
        .env_remove("LUA_INIT_5_4")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {EXE}: {e}"));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_ran(run: &Run, expected: &[&str]) {
    assert!(run.ok, "failed:\n{}\n{}", run.stdout, run.stderr);
    for line in expected {
        assert!(run.stdout.lines().any(|l| l == *line), "no line {line:?} in:\n{}\n{}", run.stdout, run.stderr);
    }
}

/// A finalizer made before `require "ffi"` runs after the module state's own finalizer when
/// the Lua state closes (Lua finalizes the newest first): the module still works there, for
/// a namespace function found then and one kept from before (of `ffi.C` and of a library
/// `ffi.load` opened), a cdata, a type and callbacks.
#[test]
fn a_finalizer_older_than_the_module_uses_ffi_while_lua_closes() {
    let script = r#"
local strlen, buf, binop
GUARD = setmetatable({}, { __gc = function()
  local ffi = require "ffi"
  print("late", ffi.C.strlen("abcd"), strlen("xy"), tostring(buf[0]), ffi.sizeof("int"))
  print("late lib", binop(function(a, b) return a * b end, 6, 7))
  local cb = ffi.cast("int (*)(int)", function(x) return x + 1 end)
  print("late cb", cb(1))
  cb:free()
end })
if newproxy then
  -- Lua 5.1: only userdata have finalizers.
  local p = newproxy(true)
  getmetatable(p).__gc = getmetatable(GUARD).__gc
  GUARD = p
end
local ffi = require "ffi"
ffi.cdef "size_t strlen(const char *);"
strlen = ffi.C.strlen
ffi.cdef "int ct_call_binop(int (*f)(int, int), int a, int b);"
binop = ffi.load(os.getenv("LUAFFI_CALLTEST")).ct_call_binop
buf = ffi.new("int[1]", 7)
print("main", strlen("abc"))
"#;
    let r = run("late_finalizer", script, true);
    assert_ran(&r, &["main\t3", "late\t4\t2\t7\t4", "late lib\t42", "late cb\t2"]);
}

/// The number of mappings of the running process, and a C function taking a function pointer,
/// for the scripts below.
const MAPS: &str = r#"
local ffi = require "ffi"
ffi.cdef "void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));"
local function maps()
  local n = 0
  for _ in io.lines("/proc/self/maps") do n = n + 1 end
  return n
end
local arr = ffi.new("int[2]", 2, 1)
"#;

/// 500,000 Lua functions passed to qsort (each an implicit callback) and 500,000 explicit
/// callbacks made and freed: the process's mappings stay bounded (before, each callback kept
/// its thunk, and about 196,000 of them exhausted `vm.max_map_count`).
#[test]
fn half_a_million_callbacks_keep_the_mappings_bounded() {
    let script = format!(
        "{MAPS}
local m0 = maps()
for i = 1, 500000 do
  arr[0], arr[1] = i + 1, i
  ffi.C.qsort(arr, 2, 4, function(a, b) return ffi.cast('const int *', a)[0] - ffi.cast('const int *', b)[0] end)
  assert(arr[0] == i and arr[1] == i + 1)
end
print('implicit', maps() - m0 < 64)
local m1 = maps()
for i = 1, 500000 do
  local cb = ffi.cast('int (*)(int)', function(x) return x + i end)
  assert(cb(1) == i + 1)
  cb:free()
end
print('explicit', maps() - m1 < 64)
"
    );
    let r = run("half_a_million", &script, false);
    assert_ran(&r, &["implicit\ttrue", "explicit\ttrue"]);
}

/// Callback slots are bounded: past `MAX_CALLBACKS` live callbacks, `ffi.cast` and an
/// argument conversion fail with LuaJIT's `too many callbacks`; freeing one makes room. The
/// thunks are packed: all of them take fewer than 1,000 mappings (in 4 KiB units of 7
/// thunks, each between guards, they took over 1,000: about 5,000).
#[test]
fn callbacks_past_the_limit_are_refused() {
    let max = lua_adapter::native::callback::MAX_CALLBACKS;
    let script = format!(
        "{MAPS}
local keep = {{}}
local m0 = maps()
for i = 1, {max} do keep[i] = ffi.cast('int (*)(int)', function(x) return x + i end) end
print('mappings', maps() - m0 < 1000)
print(pcall(ffi.cast, 'int (*)(int)', function() end))
print(pcall(ffi.C.qsort, arr, 2, 4, function() return 0 end))
keep[1]:free()
local again = ffi.cast('int (*)(int)', function(x) return -x end)
print('again', again(5), keep[{max}](1))
"
    );
    let r = run("too_many", &script, false);
    assert_ran(
        &r,
        &[
            "mappings\ttrue",
            "false\ttoo many callbacks",
            "false\tbad argument #4 to '?' (too many callbacks)",
            &format!("again\t-5\t{}", max + 1),
        ],
    );
}

/// A finalizer that runs while an argument is converted (here: the collection a full set of
/// slots triggers) and stores a Lua function in a field makes a callback that lives until
/// freed, like any field store: it is not taken for one of the call's own callbacks.
#[test]
fn a_field_stored_by_a_finalizer_during_a_call_keeps_its_callback() {
    let max = lua_adapter::native::callback::MAX_CALLBACKS;
    let script = format!(
        "{MAPS}
ffi.cdef 'struct holder {{ int (*cmp)(const void *, const void *); }};'
collectgarbage('stop')
local holder = ffi.new('struct holder')
local keep = {{}}
for i = 1, {max} - 1 do keep[i] = ffi.cast('int (*)(int)', function(x) return x end) end
setmetatable({{}}, {{ __gc = function() holder.cmp = function(a, b) return 7 end end }})
ffi.C.qsort(arr, 2, 4, function() return 0 end)
print(pcall(ffi.C.qsort, arr, 2, 4, function() return 0 end))
collectgarbage('restart')
collectgarbage()
collectgarbage()
print('field', pcall(holder.cmp, nil, nil))
"
    );
    let r = run("finalizer_field", &script, false);
    assert_ran(&r, &["false\tbad argument #4 to '?' (too many callbacks)", "field\ttrue\t7"]);
}
