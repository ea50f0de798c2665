//! `cargo xtask bench [calls]`: the call-overhead benchmark (issue 6, Benchmarks).
//!
//! Builds and runs `luaffi-bench` (lua-adapter/src/bin/luaffi-bench.rs) in release mode: ns
//! per call through our stubs against hand-written `lua_CFunction` bindings of the same C
//! functions on the same embedded Lua 5.4 (`int add(int, int)`, `double mix(double, int,
//! double, int64_t)`, `strlen` on a Lua string, a struct passed by value), ns per callback
//! invocation from a C loop against `lua_call` from C, and the time and code bytes of one
//! stub. The ratios it prints are the figures to compare with the targets. Not a test: the
//! numbers depend on the machine.

use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    let calls = match args {
        [] => None,
        [n] if n.parse::<u64>().is_ok() => Some(n.clone()),
        _ => return Err("usage: cargo xtask bench [calls per loop]".into()),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--release", "-q", "-p", "lua-adapter", "--bin", "luaffi-bench", "--"]);
    cmd.args(calls);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("luaffi-bench failed ({status})"))
    }
}
