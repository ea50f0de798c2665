//! `cargo xtask bench [calls] [--quick] [--lua 5.X]... [--host NAME|all]`: the benchmark
//! (issues 6, 16 and 18).
//!
//! On this machine (the default), builds and runs `luaffi-bench`
//! (lua-adapter/src/bin/luaffi-bench.rs) in release mode once per Lua version the module builds
//! for (5.1 to 5.5, each vendored; `--lua` picks some). Each run prints two tables:
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
//! the other Lua versions. `--quick` runs the workloads at a tenth of their size.
//!
//! With `--host`, `luaffi-bench` (embedded Lua 5.4) is cross-built for each host named and run
//! there (natively, or under Wine for the Windows hosts: see [`hosts`]); its ratios are against
//! its own hand-written baseline in the same run on the same host, so they stay honest under
//! Wine, whose absolute timings are not Windows'. Not a test: the numbers depend on the machine.

use std::path::PathBuf;
use std::process::Command;

use crate::hosts::{self, Host};

/// The Lua versions `luaffi-bench` is built for, as `--lua` names them, with their feature.
const VERSIONS: &[(&str, &str)] =
    &[("5.1", "lua51"), ("5.2", "lua52"), ("5.3", "lua53"), ("5.4", "lua54"), ("5.5", "lua55")];

const USAGE: &str = "usage: cargo xtask bench [calls per loop] [--quick] [--lua 5.X]... \
                     [--host x86_64-linux|i686-linux|x86_64-windows|i686-windows|all]";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut pass: Vec<String> = Vec::new();
    let mut versions: Vec<(&str, &str)> = Vec::new();
    let mut chosen: Vec<&'static Host> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => pass.push(a.clone()),
            "--lua" => {
                let v = it.next().ok_or(USAGE)?;
                let found = VERSIONS.iter().find(|(name, _)| name == v).ok_or(format!("no Lua {v}; {USAGE}"))?;
                versions.push(*found);
            }
            "--host" => match it.next().map(String::as_str) {
                Some("all") => chosen.extend(hosts::HOSTS),
                Some(name) => chosen.push(hosts::by_name(name)?),
                None => return Err(USAGE.into()),
            },
            n if n.parse::<u64>().is_ok() => pass.push(a.clone()),
            _ => return Err(USAGE.into()),
        }
    }
    if !chosen.is_empty() {
        if !versions.is_empty() {
            return Err(format!("--host benches the embedded Lua 5.4 only; {USAGE}"));
        }
        return bench_hosts(&chosen, &pass);
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

/// Runs `luaffi-bench` on each of `chosen`, with the arguments `pass`.
fn bench_hosts(chosen: &[&'static Host], pass: &[String]) -> Result<(), String> {
    hosts::ensure_installed(chosen, &[])?;
    if chosen.iter().any(|h| h.os == hosts::Os::Windows) {
        hosts::ensure_wine_prefix()?;
    }
    let mut failed = Vec::new();
    for host in chosen {
        if let Err(e) = bench_on(host, pass) {
            eprintln!("xtask: bench on {}: {e}", host.label());
            failed.push(host.name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("the benchmark failed on {}", failed.join(", ")))
    }
}

/// Builds and runs `luaffi-bench` on `host`, its tables printed as they come.
fn bench_on(host: &Host, pass: &[String]) -> Result<(), String> {
    let exe = host.build("luaffi-bench", true)?;
    println!("== luaffi-bench on {} ==", host.label());
    let status = host
        .command(&exe)
        .args(pass)
        .current_dir(host.run_dir())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("luaffi-bench failed ({status})"))
    }
}

/// Where the LuaJIT reference rows are kept during one bench.
fn reference_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("luaffi-bench-luajit.txt")
}
