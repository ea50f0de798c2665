//! Runs the Lua test scripts under `tests/lua/` in the embedded Lua (the `luaffi` command,
//! one process per script so that the memory test measures only itself) and, when `luajit`
//! is on PATH, under LuaJIT's built-in FFI, the reference: every test of LuaJIT-defined
//! behaviour must pass there too. Tests of deliberate differences are marked `T.ours` in the
//! scripts and skipped under LuaJIT with their reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_luaffi");

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("lua")
}

/// Runs `script` with `program`; panics with its output unless it passed.
fn run(program: &str, script: &str) {
    run_with(program, script, None)
}

/// Runs `script` with `program` and, when given, `LUAFFI_TIER_UP` set to `tier_up`
/// (lua-adapter's `native::closure`: 0 builds every stub at first call; a large number keeps
/// every namespace function on tier 0).
fn run_with(program: &str, script: &str, tier_up: Option<u32>) {
    let dir = scripts_dir();
    let mut cmd = Command::new(program);
    match tier_up {
        Some(n) => cmd.env("LUAFFI_TIER_UP", n.to_string()),
        None => cmd.env_remove("LUAFFI_TIER_UP"),
    };
    let out = cmd
        .arg(script)
        .current_dir(&dir)
        .env("LUA_PATH", "./?.lua")
        .env("LUAFFI_CALLTEST", calltest_library())
        // The inline paths must be the ones tested (luaffi; LuaJIT ignores it).
        .env(lua_adapter::surface::clib::REQUIRE_INLINE, "1")
        .env_remove("LUA_INIT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {script} failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{script}: ")) && stdout.contains(" 0 failed"),
        "{program} {script} printed no summary:\n{stdout}\n{stderr}"
    );
    println!("{program}: {}", stdout.trim());
}

/// The call scripts' C library, built once per run into cargo's temporary directory.
fn calltest_library() -> &'static Path {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| common::build_calltest(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("lua-suite")))
}

/// `luajit` when it is on PATH and built for the architecture these tests were built for:
/// it loads the same C library as `luaffi` (an x86-64 LuaJIT cannot load the i386 one).
fn luajit() -> Option<&'static str> {
    let out = Command::new("luajit").args(["-e", "io.write(require('ffi').arch)"]).output().ok()?;
    (out.status.success() && out.stdout == lua_adapter::surface::module::ARCH.as_bytes()).then_some("luajit")
}

macro_rules! scripts {
    ($($name:ident => $file:literal),* $(,)?) => {
        mod embedded {
            use super::*;
            $(#[test] fn $name() { run(EXE, $file) })*
        }
        /// Every stub built at first call (what the default run leaves to loops).
        mod embedded_eager {
            use super::*;
            $(#[test] fn $name() { run_with(EXE, $file, Some(0)) })*
        }
        /// Every namespace function interpreted on tier 0 (x86-64; elsewhere the same as
        /// the eager run).
        mod embedded_tier0 {
            use super::*;
            $(#[test] fn $name() { run_with(EXE, $file, Some(u32::MAX)) })*
        }
        mod reference_luajit {
            use super::*;
            $(#[test] fn $name() {
                match luajit() {
                    Some(lj) => run(lj, $file),
                    None => eprintln!(
                        "no luajit for {} on PATH: reference run of {} skipped",
                        lua_adapter::surface::module::ARCH,
                        $file
                    ),
                }
            })*
        }
    };
}

scripts! {
    ctype => "ctype.lua",
    cdata => "cdata.lua",
    int64 => "int64.lua",
    metatype => "metatype.lua",
    errors => "errors.lua",
    memory => "memory.lua",
    calls => "calls.lua",
    callbacks => "callbacks.lua",
    lifetimes => "lifetimes.lua",
    versions => "versions.lua",
    safety_types => "safety_types.lua",
    safety_api => "safety_api.lua",
    safety_init => "safety_init.lua",
    record_callbacks => "record_callbacks.lua",
    conventions => "conventions.lua",
    compat => "compat.lua",
    parser => "parser.lua",
    cparse_gaps => "cparse_gaps.lua",
    headers => "headers.lua",
    libraries => "libraries.lua",
    windows => "windows.lua",
    unwind => "unwind.lua",
    smoke => "smoke.lua",
    fields => "fields.lua",
    vectors => "vectors.lua",
}
