//! `cargo xtask test-all-abis`: the one test command.
//!
//! Runs the static checks first (fmt, clippy, rustdoc, SAFETY comments: [`checks`]), then
//! every workspace test (unit tests, insta snapshots, the emulator matrix that lives in
//! emu-harness's tests) and lua-adapter's unit tests on Lua 5.1, 5.2, 5.3 and 5.5, then the Lua suite and the examples on each host (x86-64 and i686
//! Linux natively, x86-64 and 32-bit Windows under Wine: [`hosts`]) and lua-adapter's unit
//! tests on the three hosts other than the build machine, then the rocks (`cargo xtask dist
//! --dev`, each rock installed, or unpacked and run under Wine, and smoke-tested:
//! [`dist::test_stage`]), fails on any failure or pending snapshot, and closes with the line
//! `N passed, N failed`.

use crate::{checks, dist, fuzz, hosts, matrix, module, sys};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// Debian packages the build needs: unicorn's C build (cmake, libclang for bindgen); the
/// system Lua interpreters and headers the `ffi` module is built for and tested with, and
/// luarocks for the rockspec test (lua-adapter/tests/system_lua.rs).
const BUILD_DEBS: &[&str] = &[
    "cmake",
    "libclang-dev",
    "pkg-config",
    "lua5.1",
    "lua5.2",
    "lua5.3",
    "lua5.4",
    "liblua5.1-0-dev",
    "liblua5.2-dev",
    "liblua5.3-dev",
    "liblua5.4-dev",
    "luarocks",
    // The rocks `cargo xtask dist` zips and luarocks unzips (xtask/src/dist.rs).
    "zip",
    "unzip",
    // libz.so for examples/zlib.lua (ffi.load "z"), run by lua-adapter/tests/examples.rs;
    // zlib.h and sqlite3.h for abi-model/tests/cdef_system_headers.rs.
    "zlib1g-dev",
    "libsqlite3-dev",
    // The reference run of the Lua suite under LuaJIT's own FFI (lua-adapter/tests/lua_suite.rs).
    "luajit",
    // The memcheck run of the initialiser script (lua-adapter/tests/init_bounds.rs).
    "valgrind",
];

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("test-all-abis takes no arguments (got `{a}`)"));
    }
    let all_hosts: Vec<&hosts::Host> = hosts::HOSTS.iter().collect();
    hosts::ensure_installed(&all_hosts, BUILD_DEBS)?;
    // Fast, and a finding fails the run, so they come before the long tests.
    let failed_checks = checks::run_all()?;

    let mut totals = Totals::default();
    matrix::clear();
    module::clear_suite_lines();
    fuzz::clear_summary_lines();
    run_cargo_tests(&mut totals)?;
    let pending = pending_snapshots();
    let rows = matrix::collect()?;

    println!();
    println!("== Lua suite and examples per host (xtask/src/hosts.rs) ==");
    let host_reports = hosts::run_all(&all_hosts);
    for text in host_reports.iter().flat_map(hosts::HostReport::failure_texts) {
        println!("{text}");
    }

    println!();
    println!("== rocks: cargo xtask dist --dev, each installed into a fresh tree (xtask/src/dist.rs) ==");
    let rock_lines = dist::test_stage();
    for l in rock_lines.iter().filter(|l| !l.passed) {
        println!("{}", l.text);
    }

    println!();
    println!("== emulator matrix (target/abi-matrix.json) ==");
    print!("{}", matrix::table(&rows));
    let matrix_failed: u64 = rows.iter().map(|r| r.failed).sum();
    let lua_lines = module::suite_lines();
    if !lua_lines.is_empty() {
        println!();
        println!("== Lua suite per Lua version (lua-adapter/tests/system_lua.rs) ==");
        for line in &lua_lines {
            println!("{line}");
        }
    }
    println!();
    println!("== Lua suite and examples per host (scripts, then examples: every one must pass) ==");
    for r in &host_reports {
        println!("{}", r.line());
    }
    println!();
    println!("== rocks and the binaries' needs, Linux and Windows (one line per rock or binary) ==");
    for l in &rock_lines {
        // A failure's first line; all of it is printed above.
        println!("{}", l.text.lines().next().unwrap_or_default());
    }
    let fuzz_lines = fuzz::summary_lines();
    if !fuzz_lines.is_empty() {
        println!();
        println!("== fuzzers, fixed seeds and case counts (`cargo xtask fuzz` for longer runs) ==");
        for line in &fuzz_lines {
            println!("{line}");
        }
    }
    println!();
    println!("== summary ==");
    println!("workspace tests: {} passed, {} failed, {} ignored", totals.passed, totals.failed, totals.ignored);
    if !pending.is_empty() {
        println!("pending snapshots (review with `cargo insta review`):");
        for p in &pending {
            println!("  {p}");
        }
    }
    if !failed_checks.is_empty() {
        println!("static checks failed (their findings are printed above):");
        for c in &failed_checks {
            println!("  {c}");
        }
    }
    let hosts_failed: u64 = host_reports.iter().map(hosts::HostReport::failed).sum();
    if hosts_failed > 0 {
        println!("hosts: {hosts_failed} script(s), example(s) or host(s) failed (their output is printed above)");
    }
    let rocks_failed = rock_lines.iter().filter(|l| !l.passed).count() as u64;
    if rocks_failed > 0 {
        println!("rocks: {rocks_failed} rock(s) or check(s) failed (their output is printed above)");
    }
    if matrix_failed > 0 {
        println!("emulator matrix: {matrix_failed} case(s) failed (each failing test printed its cases above)");
    }
    let failed = totals.failed
        + pending.len() as u64
        + totals.crashed_binaries
        + failed_checks.len() as u64
        + hosts_failed
        + rocks_failed;
    let passed = totals.passed
        + host_reports.iter().map(hosts::HostReport::passed).sum::<u64>()
        + rock_lines.iter().filter(|l| l.passed).count() as u64;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        Err(format!("{failed} failure(s)"))
    } else {
        Ok(())
    }
}

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Test binaries that ended without a `test result:` line (a crash or a build failure).
    crashed_binaries: u64,
}

/// Runs `cargo test --workspace` (lua-adapter on the default Lua 5.4), then lua-adapter's unit
/// tests on every other Lua version it builds for (their own target directory,
/// `target/lua-lib-tests`, shared between them), echoing the output and adding up every
/// `test result:` line. The unit tests reach version-specific code (boxed 64-bit values on
/// 5.1/5.2, the layout probe against each version's `lua_State`) that 5.4 never runs.
fn run_cargo_tests(totals: &mut Totals) -> Result<(), String> {
    run_cargo_test(totals, &["--workspace"], None)?;
    let dir = module::target_dir().join("lua-lib-tests");
    for v in module::LUA_VERSIONS.iter().filter(|&&v| v != "5.4") {
        let features = format!("{},vendored", module::lua_feature(v));
        println!("== lua-adapter unit tests on Lua {v} ==");
        run_cargo_test(
            totals,
            &["-p", "lua-adapter", "--lib", "--no-default-features", "--features", &features],
            Some(&dir),
        )?;
    }
    Ok(())
}

/// Runs `cargo test <args> --no-fail-fast` (in `target_dir` if given), echoing its output and
/// adding up every `test result:` line.
fn run_cargo_test(totals: &mut Totals, args: &[&str], target_dir: Option<&std::path::Path>) -> Result<(), String> {
    let failed_before = totals.failed;
    let mut cmd = sys::cargo();
    cmd.arg("test").args(args).arg("--no-fail-fast");
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let mut child = cmd
        // Snapshots never update silently: a mismatch fails and leaves a .snap.new to review.
        .env("INSTA_UPDATE", "new")
        .env("CI", "true")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            let num = |key: &str| -> u64 {
                rest.split(';')
                    .filter_map(|part| part.trim().strip_suffix(key))
                    .filter_map(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .next()
                    .unwrap_or(0)
            };
            totals.passed += num(" passed");
            totals.failed += num(" failed");
            totals.ignored += num(" ignored");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() && totals.failed == failed_before {
        // cargo failed but no test reported a failure: a build error or a crashed binary.
        totals.crashed_binaries += 1;
    }
    Ok(())
}

/// Every `.snap.new` / `.pending-snap` file left in the workspace.
fn pending_snapshots() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![sys::workspace_root()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
                out.push(path.display().to_string());
            }
        }
    }
    out.sort();
    out
}
