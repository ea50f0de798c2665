//! `cargo xtask bench [--host NAME|all] [calls]`: the call-overhead benchmark (issue 6,
//! Benchmarks) on this machine or on each host (issue 16).
//!
//! Builds `luaffi-bench` (lua-adapter/src/bin/luaffi-bench.rs) in release mode for the host and
//! runs it there (natively, or under Wine for the Windows hosts: see [`hosts`]): ns per call
//! through our stubs against hand-written `lua_CFunction` bindings of the same C functions on
//! the same embedded Lua 5.4, ns per callback invocation from a C loop against `lua_call` from
//! C, and the time and code bytes of one stub. The ratios it prints are against its own
//! hand-written baseline in the same run on the same host, so they stay honest under Wine,
//! whose absolute timings are not Windows'. Not a test: the numbers depend on the machine.

use crate::hosts::{self, Host};

const USAGE: &str =
    "usage: cargo xtask bench [--host x86_64-linux|i686-linux|x86_64-windows|i686-windows|all] [calls per loop]";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut calls = None;
    let mut chosen: Vec<&'static Host> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--host" => match it.next().map(String::as_str) {
                Some("all") => chosen.extend(hosts::HOSTS),
                Some(name) => chosen.push(hosts::by_name(name)?),
                None => return Err(USAGE.into()),
            },
            n if n.parse::<u64>().is_ok() && calls.is_none() => calls = Some(n.to_string()),
            _ => return Err(USAGE.into()),
        }
    }
    if chosen.is_empty() {
        chosen.push(hosts::build_machine()?);
    }
    hosts::ensure_installed(&chosen, &[])?;
    if chosen.iter().any(|h| h.os == hosts::Os::Windows) {
        hosts::ensure_wine_prefix()?;
    }
    let mut failed = Vec::new();
    for host in chosen {
        if let Err(e) = bench_on(host, calls.as_deref()) {
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

/// Builds and runs `luaffi-bench` on `host`, its table printed as it comes.
fn bench_on(host: &Host, calls: Option<&str>) -> Result<(), String> {
    let exe = host.build("luaffi-bench", true)?;
    println!("== luaffi-bench on {} ==", host.label());
    let status = host
        .command(&exe)
        .args(calls)
        .current_dir(host.run_dir())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("luaffi-bench failed ({status})"))
    }
}
