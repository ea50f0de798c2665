//! `cargo xtask module --lua 5.X [--release]`: builds `ffi.so`, the `ffi` module for the
//! system's Lua 5.X, into `target/lua5.X/ffi.so`; `cargo xtask valgrind`: runs the project's
//! whole Lua suite under valgrind with the system `lua5.4` and that module.
//!
//! Every Lua version is built in one shared cargo target directory, `target/lua-modules`
//! (the test `lua-adapter/tests/system_lua.rs` and the rockspec's test build there too, so
//! each build is made once): the dependencies that don't depend on the version are shared,
//! and the version-specific ones (mlua, lua-adapter) get their own artifacts per feature set.
//! All versions write the same cdylib path, so each build is copied away right after it.
//!
//! The per-version summary lines the system-Lua test writes (`target/lua-suite.d/*.txt`) are
//! read here too, for the `test-all-abis` summary.

use crate::{hosts, sys};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Lua versions a module can be built for (mlua 0.12's `lua51`..`lua55` features).
pub const LUA_VERSIONS: &[&str] = &["5.1", "5.2", "5.3", "5.4", "5.5"];

/// The target directory: `CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| sys::workspace_root().join("target"))
}

/// `cargo xtask module --lua 5.X [--release]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut version = None;
    let mut release = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lua" => version = Some(it.next().ok_or("--lua needs a version (5.1, 5.2, 5.3, 5.4 or 5.5)")?.clone()),
            "--release" => release = true,
            other => return Err(format!("module: unknown argument `{other}`\n{USAGE}")),
        }
    }
    let version = version.ok_or(format!("module: which Lua? {USAGE}"))?;
    let out = build(&version, release)?;
    println!("{}", out.display());
    Ok(())
}

const USAGE: &str = "usage: cargo xtask module --lua 5.1|5.2|5.3|5.4|5.5 [--release]";

/// lua-adapter's feature for Lua `version` (mlua's: `lua51` for "5.1").
pub fn lua_feature(version: &str) -> String {
    format!("lua{}", version.replace('.', ""))
}

/// Builds the module for Lua `version` and copies it to `target/lua<version>/ffi.so`;
/// returns that path.
pub fn build(version: &str, release: bool) -> Result<PathBuf, String> {
    if !LUA_VERSIONS.contains(&version) {
        return Err(format!("no such Lua version `{version}`; {USAGE}"));
    }
    let feature = format!("module,{}", lua_feature(version));
    let build_dir = target_dir().join("lua-modules");
    let mut cmd = sys::cargo();
    cmd.args(["build", "-p", "lua-adapter", "--lib", "--no-default-features", "--features", &feature]);
    if release {
        cmd.arg("--release");
    }
    cmd.env("CARGO_TARGET_DIR", &build_dir);
    eprintln!("xtask: building the ffi module for Lua {version} ({})", if release { "release" } else { "debug" });
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the module for Lua {version} failed"));
    }
    let built = build_dir.join(if release { "release" } else { "debug" }).join(cdylib_name());
    let out_dir = target_dir().join(format!("lua{version}"));
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out = out_dir.join("ffi.so");
    // Copy through a temporary name and rename: a process that has the old ffi.so loaded
    // keeps its mapping, and nobody sees a half-written file.
    let tmp = out_dir.join("ffi.so.tmp");
    std::fs::copy(&built, &tmp).map_err(|e| format!("copying {}: {e}", built.display()))?;
    std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// The file name cargo gives lua-adapter's cdylib on this host.
fn cdylib_name() -> String {
    format!("{}lua_adapter{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// The Lua test scripts: `lua-adapter/tests/lua/*.lua` except the shared `testlib.lua`, sorted.
pub fn suite_scripts() -> Result<Vec<String>, String> {
    let dir = suite_dir();
    let mut scripts: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua") && n != "testlib.lua")
        .collect();
    scripts.sort();
    Ok(scripts)
}

fn suite_dir() -> PathBuf {
    sys::workspace_root().join("lua-adapter").join("tests").join("lua")
}

/// Where the system-Lua test writes one summary line per Lua it ran the suite with.
fn suite_lines_dir() -> PathBuf {
    target_dir().join("lua-suite.d")
}

/// Removes the summary lines of an earlier run.
pub fn clear_suite_lines() {
    let _ = std::fs::remove_dir_all(suite_lines_dir());
}

/// The summary lines this run's tests wrote (`lua5.3: 7 scripts, 540 assertions passed, ...`),
/// sorted by runner.
pub fn suite_lines() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(suite_lines_dir()) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "txt")).collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What valgrind found in one script's run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ValgrindReport {
    /// `ERROR SUMMARY: N errors` (every kind, including definite leaks as we ask for them).
    pub errors: u64,
    /// Number of `Invalid read of size` reports.
    pub invalid_reads: u64,
    /// Number of `Invalid write of size` reports.
    pub invalid_writes: u64,
    /// `definitely lost: N bytes in M blocks`: bytes.
    pub definitely_lost_bytes: u64,
    /// ... and blocks.
    pub definitely_lost_blocks: u64,
    /// `possibly lost` bytes (reported, not a failure: interior pointers are legitimate).
    pub possibly_lost_bytes: u64,
}

/// Reads valgrind's stderr (memcheck with `--leak-check=full`).
pub fn parse_valgrind(stderr: &str) -> Result<ValgrindReport, String> {
    let mut r = ValgrindReport::default();
    let mut saw_summary = false;
    for line in stderr.lines() {
        // Lines look like `==1234== Invalid read of size 8`.
        let text = line.split_once("== ").map(|(_, t)| t).unwrap_or(line).trim();
        if text.starts_with("Invalid read of size") {
            r.invalid_reads += 1;
        } else if text.starts_with("Invalid write of size") {
            r.invalid_writes += 1;
        } else if let Some(rest) = text.strip_prefix("ERROR SUMMARY:") {
            r.errors = first_number(rest).ok_or(format!("unreadable `{text}`"))?;
            saw_summary = true;
        } else if let Some(rest) = text.strip_prefix("definitely lost:") {
            let (bytes, blocks) = bytes_in_blocks(rest).ok_or(format!("unreadable `{text}`"))?;
            r.definitely_lost_bytes = bytes;
            r.definitely_lost_blocks = blocks;
        } else if let Some(rest) = text.strip_prefix("possibly lost:") {
            r.possibly_lost_bytes = bytes_in_blocks(rest).ok_or(format!("unreadable `{text}`"))?.0;
        }
    }
    if saw_summary {
        Ok(r)
    } else {
        Err("valgrind printed no ERROR SUMMARY (did it run?)".into())
    }
}

/// The first number in `s`, thousands separators allowed (`1,024`).
fn first_number(s: &str) -> Option<u64> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String =
        s[start..].chars().take_while(|c| c.is_ascii_digit() || *c == ',').filter(|c| *c != ',').collect();
    digits.parse().ok()
}

/// `N bytes in M blocks`.
fn bytes_in_blocks(s: &str) -> Option<(u64, u64)> {
    let (bytes, blocks) = s.split_once(" bytes in ")?;
    Some((first_number(bytes)?, first_number(blocks)?))
}

/// `cargo xtask valgrind [--lua 5.X]`: the Lua suite under valgrind's memcheck with the system
/// Lua (5.4 by default) loading the module built by [`build`]. Fails on any invalid read or
/// write, any other memcheck error and any definitely lost block.
pub fn valgrind(args: &[String]) -> Result<(), String> {
    let mut version = "5.4".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lua" => version = it.next().ok_or("--lua needs a version")?.clone(),
            other => {
                return Err(format!("valgrind: unknown argument `{other}`\nusage: cargo xtask valgrind [--lua 5.X]"))
            }
        }
    }
    let lua = format!("lua{version}");
    for program in ["valgrind", lua.as_str()] {
        if !sys::have_program(program) {
            return Err(format!("`{program}` is not installed; run: sudo apt-get install {program}"));
        }
    }
    let module = build(&version, false)?;
    let calltest = build_calltest()?;
    let cpath = module.parent().expect("ffi.so has a directory").join("?.so");
    let scripts = suite_scripts()?;
    println!(
        "{:<16} {:>7} {:>8} {:>8} {:>16} {:>15} {:>9}",
        "script", "errors", "inv.read", "inv.write", "definitely lost", "possibly lost", "time"
    );
    let mut failures = Vec::new();
    let mut total = ValgrindReport::default();
    for script in &scripts {
        let started = std::time::Instant::now();
        let out = valgrind_command(&lua, &cpath, script)
            .env("LUAFFI_CALLTEST", &calltest)
            .output()
            .map_err(|e| format!("cannot run valgrind: {e}"))?;
        let secs = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let r = parse_valgrind(&stderr).map_err(|e| format!("{script}: {e}\n{stderr}"))?;
        println!(
            "{:<16} {:>7} {:>8} {:>8} {:>16} {:>15} {:>8.1}s",
            script,
            r.errors,
            r.invalid_reads,
            r.invalid_writes,
            format!("{} B / {} blk", r.definitely_lost_bytes, r.definitely_lost_blocks),
            format!("{} B", r.possibly_lost_bytes),
            secs
        );
        let script_failed = !out.status.success() && r.errors == 0;
        if r.errors > 0 || r.definitely_lost_blocks > 0 || script_failed {
            failures.push(format!("{script}:\n{stdout}\n{stderr}"));
        }
        total.errors += r.errors;
        total.invalid_reads += r.invalid_reads;
        total.invalid_writes += r.invalid_writes;
        total.definitely_lost_bytes += r.definitely_lost_bytes;
        total.definitely_lost_blocks += r.definitely_lost_blocks;
        total.possibly_lost_bytes += r.possibly_lost_bytes;
    }
    println!(
        "valgrind {lua}: {} scripts, {} errors, {} invalid reads, {} invalid writes, {} bytes definitely lost in {} blocks, {} bytes possibly lost",
        scripts.len(),
        total.errors,
        total.invalid_reads,
        total.invalid_writes,
        total.definitely_lost_bytes,
        total.definitely_lost_blocks,
        total.possibly_lost_bytes
    );
    if failures.is_empty() {
        Ok(())
    } else {
        for f in &failures {
            eprintln!("{f}");
        }
        Err(format!("{} script(s) with memory errors, leaks or failures under valgrind", failures.len()))
    }
}

/// The C library the call and callback scripts load (`lua-adapter/tests/c/calltest.c`, passed
/// in `LUAFFI_CALLTEST`), compiled with the system C compiler into `target/lua-suite-c/`.
pub fn build_calltest() -> Result<PathBuf, String> {
    hosts::build_machine()?.build_calltest(&target_dir().join("lua-suite-c"), &["-g"])
}

/// `valgrind ... lua5.X script` in the suite's directory, the module found only through
/// `cpath`.
fn valgrind_command(lua: &str, cpath: &Path, script: &str) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--error-exitcode=99",
        "--num-callers=30",
        // Symbols of ffi.so stay known after lua_close unloads it (leaks are reported then).
        "--keep-debuginfo=yes",
    ])
    .arg(lua)
    .arg(script)
    .current_dir(suite_dir());
    isolate_lua_env(&mut cmd, lua);
    cmd.env("LUA_CPATH", cpath).env("LUA_PATH", "./?.lua");
    // memory.lua runs a shorter loop and skips its RSS check (valgrind's RSS is its own).
    cmd.env("LUAFFI_UNDER_VALGRIND", "1");
    cmd
}

/// Removes the environment that would make `lua5.X` run extra code or look elsewhere for
/// modules (`LUA_INIT*`, `LUA_PATH_5_X`, `LUA_CPATH_5_X`, which win over the plain names).
pub fn isolate_lua_env(cmd: &mut Command, lua: &str) {
    let suffix = lua.trim_start_matches("lua").replace('.', "_");
    for name in ["LUA_INIT", "LUA_PATH", "LUA_CPATH"] {
        cmd.env_remove(name).env_remove(format!("{name}_{suffix}"));
    }
}

/// `cargo xtask asan [--fuzz-cases N]`: the Lua suite, and the Lua fuzzer in process, under
/// AddressSanitizer. The `luaffi` command and the fuzz test are built with the nightly
/// toolchain's `-Zsanitizer=address` (Rust code) and `-fsanitize=address` (the vendored Lua's
/// C code, through the cc crate's CFLAGS) into `target/asan`, without `-Zbuild-std`: the
/// standard library stays uninstrumented, which ASan allows. Fails on any AddressSanitizer
/// report or failing script. Needs `rustup toolchain install nightly --profile minimal`.
pub fn asan(args: &[String]) -> Result<(), String> {
    let mut fuzz_cases: u64 = 2000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fuzz-cases" => {
                let v = it.next().ok_or("--fuzz-cases needs a number")?;
                fuzz_cases = v.replace('_', "").parse().map_err(|_| format!("--fuzz-cases: `{v}` is not a number"))?;
            }
            other => return Err(format!("asan: unknown argument `{other}`\nusage: cargo xtask asan [--fuzz-cases N]")),
        }
    }
    if sys::cargo_nightly().is_none() {
        return Err(
            "the nightly toolchain is not installed; run: rustup toolchain install nightly --profile minimal".into()
        );
    }
    let triple = "x86_64-unknown-linux-gnu";
    let dir = target_dir().join("asan");
    // `cargo <subcommand> -p lua-adapter --target <triple> <args>` (before any `--`).
    let asan_cmd = |subcommand: &str, cargo_args: &[&str]| {
        // `rustup run` sets RUSTUP_TOOLCHAIN, so the rustc cargo runs is nightly's too.
        let mut cmd = Command::new("rustup");
        cmd.current_dir(sys::workspace_root())
            .args(["run", "nightly", "cargo", subcommand, "-p", "lua-adapter", "--target", triple])
            .args(cargo_args)
            .env("CARGO_TARGET_DIR", &dir)
            // Instrument our code and the vendored Lua; a sanitizer build needs --target so
            // that build scripts and proc macros stay uninstrumented.
            .env("RUSTFLAGS", "-Zsanitizer=address")
            .env("CFLAGS", "-fsanitize=address -fno-omit-frame-pointer")
            .env_remove("RUSTC")
            .env("ASAN_OPTIONS", ASAN_OPTIONS);
        cmd
    };
    eprintln!("xtask: building luaffi with AddressSanitizer (nightly) into {}", dir.display());
    let status =
        asan_cmd("build", &["--bin", "luaffi"]).status().map_err(|e| format!("cannot run cargo +nightly: {e}"))?;
    if !status.success() {
        return Err("building luaffi with AddressSanitizer failed".into());
    }
    let luaffi = dir.join(triple).join("debug").join("luaffi");
    let calltest = build_calltest()?;
    let scripts = suite_scripts()?;
    let mut failures = Vec::new();
    for script in &scripts {
        let started = std::time::Instant::now();
        let out = Command::new(&luaffi)
            .arg(script)
            .current_dir(suite_dir())
            .env("LUA_PATH", "./?.lua")
            .env("LUAFFI_CALLTEST", &calltest)
            .env(hosts::REQUIRE_INLINE, "1")
            // memory.lua: the shorter loop, no RSS check (ASan's shadow memory is its own).
            .env("LUAFFI_UNDER_VALGRIND", "1")
            .env("ASAN_OPTIONS", ASAN_OPTIONS)
            .env_remove("LUA_INIT")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", luaffi.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reports =
            stderr.matches("ERROR: AddressSanitizer").count() + stderr.matches("ERROR: LeakSanitizer").count();
        println!(
            "asan {script:<16} {:>3} report(s), {} {:>6.1}s",
            reports,
            if out.status.success() { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if reports > 0 || !out.status.success() {
            failures.push(format!("{script}:\n{stdout}\n{stderr}"));
        }
    }
    eprintln!("xtask: the Lua fuzzer in process under AddressSanitizer, {fuzz_cases} cases");
    let status = asan_cmd("test", &["--test", "fuzz_lua", "--", "--nocapture", "--test-threads=1"])
        .env("FUZZ_LUA_CASES", fuzz_cases.to_string())
        .env("FUZZ_LUA_CASE_FILE", dir.join("lua-case.lua"))
        .status()
        .map_err(|e| format!("cannot run cargo +nightly: {e}"))?;
    if !status.success() {
        failures.push("the Lua fuzzer under AddressSanitizer (its report is above)".into());
    }
    println!("asan: {} scripts and {fuzz_cases} fuzz cases, {} failing", scripts.len(), failures.len());
    if failures.is_empty() {
        Ok(())
    } else {
        for f in &failures {
            eprintln!("{f}");
        }
        Err(format!("{} failure(s) under AddressSanitizer", failures.len()))
    }
}

/// Leaks are reported (a leak is a finding too); `abort_on_error` makes a report a signal.
const ASAN_OPTIONS: &str =
    "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1";

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "==7== Memcheck, a memory error detector
==7== HEAP SUMMARY:
==7==     in use at exit: 0 bytes in 0 blocks
==7==   total heap usage: 12,345 allocs, 12,345 frees, 1,234,567 bytes allocated
==7== All heap blocks were freed -- no leaks are possible
==7== ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)
";

    const DIRTY: &str = "==9== Invalid read of size 8
==9==    at 0x4849: f (a.rs:1)
==9== Invalid write of size 4
==9== Invalid read of size 1
==9== LEAK SUMMARY:
==9==    definitely lost: 1,056 bytes in 3 blocks
==9==    indirectly lost: 0 bytes in 0 blocks
==9==      possibly lost: 48 bytes in 1 blocks
==9== ERROR SUMMARY: 6 errors from 4 contexts (suppressed: 0 from 0)
";

    #[test]
    fn a_clean_run_reads_as_zero() {
        assert_eq!(parse_valgrind(CLEAN).unwrap(), ValgrindReport::default());
    }

    #[test]
    fn errors_and_leaks_are_counted() {
        let r = parse_valgrind(DIRTY).unwrap();
        assert_eq!(
            r,
            ValgrindReport {
                errors: 6,
                invalid_reads: 2,
                invalid_writes: 1,
                definitely_lost_bytes: 1056,
                definitely_lost_blocks: 3,
                possibly_lost_bytes: 48
            }
        );
    }

    #[test]
    fn no_summary_is_an_error() {
        assert!(parse_valgrind("lua5.4: cannot open x.lua\n").is_err());
    }

    #[test]
    fn the_suite_has_scripts_and_not_the_library() {
        let scripts = suite_scripts().unwrap();
        assert!(scripts.iter().any(|s| s == "cdata.lua"), "{scripts:?}");
        assert!(!scripts.iter().any(|s| s == "testlib.lua"));
    }

    #[test]
    fn an_unknown_version_is_refused_before_building() {
        let e = build("5.0", false).unwrap_err();
        assert!(e.contains("no such Lua version `5.0`"), "{e}");
    }
}
