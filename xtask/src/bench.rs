//! `cargo xtask bench [calls] [--quick] [--lua 5.X]...`: the benchmark (issues 6 and 18).
//!
//! Builds and runs `luaffi-bench` (lua-adapter/src/bin/luaffi-bench.rs) in release mode once
//! per Lua version the module builds for (5.1 to 5.5, each vendored; `--lua` picks some). Each
//! run prints two tables:
//! - the call overhead: ns per call through our stubs against hand-written `lua_CFunction`
//!   bindings of the same C functions on the same embedded Lua, and callbacks from a C loop
//!   against `lua_call`/`lua_pcall` from C;
//! - beyond the per-call path: first calls, `ffi.cdef`, casts, qsort, memory per cdata,
//!   field access and the realistic workloads (a particle loop, zlib in 4 KB chunks, the
//!   preprocessed `stdio.h` + `stdlib.h`), each against its baseline measured in the same
//!   bench: the hand-written binding where one exists, else LuaJIT 2.1 `-joff` running the
//!   same Lua script (`lua-adapter/src/bin/bench-workloads.lua`), with the goal and
//!   whether it is met.
//!
//! LuaJIT runs once per bench; its figures are kept in a file under `target/` for the runs of
//! the other Lua versions. `--quick` runs the workloads at a tenth of their size. Not a test:
//! the numbers depend on the machine.

use std::path::PathBuf;
use std::process::Command;

/// The Lua versions `luaffi-bench` is built for, as `--lua` names them, with their feature.
const VERSIONS: &[(&str, &str)] =
    &[("5.1", "lua51"), ("5.2", "lua52"), ("5.3", "lua53"), ("5.4", "lua54"), ("5.5", "lua55")];

const USAGE: &str = "usage: cargo xtask bench [calls per loop] [--quick] [--lua 5.X]...";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut pass: Vec<String> = Vec::new();
    let mut versions: Vec<(&str, &str)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => pass.push(a.clone()),
            "--lua" => {
                let v = it.next().ok_or(USAGE)?;
                let found = VERSIONS.iter().find(|(name, _)| name == v).ok_or(format!("no Lua {v}; {USAGE}"))?;
                versions.push(*found);
            }
            n if n.parse::<u64>().is_ok() => pass.push(a.clone()),
            _ => return Err(USAGE.into()),
        }
    }
    if versions.is_empty() {
        versions = VERSIONS.to_vec();
    }
    let reference = reference_file();
    let _ = std::fs::remove_file(&reference);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (name, feature) in versions {
        println!("==== Lua {name} ====");
        let mut cmd = Command::new(&cargo);
        cmd.args(["run", "--release", "-q", "-p", "lua-adapter", "--bin", "luaffi-bench"]);
        cmd.args(["--no-default-features", "--features", &format!("{feature},vendored"), "--"]);
        cmd.args(&pass).arg("--reference").arg(&reference);
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("luaffi-bench for Lua {name} failed ({status})"));
        }
        println!();
    }
    let _ = std::fs::remove_file(&reference);
    Ok(())
}

/// Where the LuaJIT reference rows are kept during one bench.
fn reference_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("luaffi-bench-luajit.txt")
}
