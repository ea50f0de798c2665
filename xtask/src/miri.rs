//! `cargo xtask miri`: abi-model's unit tests and ABI rule tests under Miri, the interpreter that checks Rust's
//! rules for undefined behaviour (aliasing, out-of-bounds and uninitialised reads, leaks).
//!
//! A periodic task, not part of `test-all-abis`: Miri runs the tests hundreds of times slower
//! than native code. It covers the pure parts (type table, cdef parser, layout, call plans, stub
//! programs), and lua-adapter's one pure test of the type table borrowed by a record walk
//! whose visits grow it (the aliasing hazard of issue 19: with the old walk Miri reports
//! undefined behaviour). lua-adapter's conversions run on a real Lua stack, a C library Miri
//! cannot call, and its stubs are machine code; the Lua suite runs under `cargo xtask asan` and
//! `cargo xtask valgrind` instead.

use crate::sys;
use std::process::Command;

/// abi-model's integration tests that run under Miri in seconds: the 104 ABI rule tests (21 s
/// of test time). Left out: cdef_limits (its first test, 6,000 failing declarations, had not
/// finished after 9 minutes), the two fuzzers (thousands of cases) and cdef_errors (3 tests,
/// 70 s); the snapshot and cdef_luajit tests have not been tried.
const MIRI_TEST_FILES: [&str; 4] = ["rules_callback", "rules_sysv", "rules_win64", "rules_x86"];

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("miri takes no arguments (got `{a}`)\nusage: cargo xtask miri"));
    }
    if sys::cargo_nightly().is_none() {
        return Err(
            "the nightly toolchain is not installed; run: rustup toolchain install nightly --profile minimal".into()
        );
    }
    let nightly_cargo = |args: &[&str]| {
        // `rustup run` sets RUSTUP_TOOLCHAIN, so the rustc cargo runs is nightly's too.
        let mut cmd = Command::new("rustup");
        cmd.current_dir(sys::workspace_root()).args(["run", "nightly", "cargo"]).args(args).env_remove("RUSTC");
        cmd
    };
    let has_miri = nightly_cargo(&["miri", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_miri {
        eprintln!("xtask: installing the miri component of the nightly toolchain");
        let status = Command::new("rustup")
            .args(["component", "add", "miri", "rust-src", "--toolchain", "nightly"])
            .status()
            .map_err(|e| format!("cannot run rustup: {e}"))?;
        if !status.success() {
            return Err("`rustup component add miri rust-src --toolchain nightly` failed".into());
        }
    }
    let mut args = vec!["miri", "test", "-p", "abi-model", "--lib"];
    for rules in MIRI_TEST_FILES {
        args.extend(["--test", rules]);
    }
    let walk = vec!["miri", "test", "-p", "lua-adapter", "--lib", "member_walk"];
    for (args, what) in [(args, "abi-model's tests"), (walk, "lua-adapter's member-walk test")] {
        let status = nightly_cargo(&args).status().map_err(|e| format!("cannot run cargo +nightly miri: {e}"))?;
        if !status.success() {
            return Err(format!("{what} failed under Miri ({status})"));
        }
    }
    Ok(())
}
