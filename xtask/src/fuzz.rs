//! The fuzzers, run longer than the test command runs them.
//!
//! - `cargo xtask fuzz [--target cdef|layout|lua|all]... [--seconds N] [--seed S]`: each
//!   target's fuzz test (abi-model/tests/cdef_fuzz.rs, abi-model/tests/layout_fuzz.rs,
//!   lua-adapter/tests/fuzz_lua.rs) for N seconds (default 60) from seed S (default: a fresh
//!   one, printed). A failing case prints its own seed, which the test's `*_CASE_SEED`
//!   variable replays alone. When the Lua fuzzer fails, its last case (in `target/fuzz/`) is
//!   shrunk as `--minimize` does, if it fails alone (a crash).
//! - `cargo xtask fuzz --minimize <file.lua>`: shrinks a Lua fuzz program to the statements
//!   that still fail the same way (a crash by the same signal, or a `FUZZ-BAD` report) under
//!   the `luaffi` command, and writes `<file>.min.lua`.
//! - `cargo xtask fuzz-cdef [--cases N] [--seed S]`: the cdef parser's property test with a
//!   case count (default 2,000,000).
//!
//! The test command runs every fuzzer with a fixed seed and case count as part of the
//! workspace tests; [`summary_lines`] collects the lines they write for its summary.

use crate::{module, sys};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fuzz target: its name, crate, test, and the prefix of its environment variables.
struct Target {
    name: &'static str,
    package: &'static str,
    test: &'static str,
    env: &'static str,
}

const TARGETS: &[Target] = &[
    Target { name: "cdef", package: "abi-model", test: "cdef_fuzz", env: "CDEF_FUZZ" },
    Target { name: "layout", package: "abi-model", test: "layout_fuzz", env: "LAYOUT_FUZZ" },
    Target { name: "lua", package: "lua-adapter", test: "fuzz_lua", env: "FUZZ_LUA" },
];

const USAGE: &str = "usage: cargo xtask fuzz [--target cdef|layout|lua|all]... [--seconds N] [--seed S]
       cargo xtask fuzz --minimize <file.lua>
       cargo xtask fuzz-cdef [--cases N] [--seed S]";

fn number(it: &mut std::slice::Iter<'_, String>, what: &str) -> Result<u64, String> {
    let v = it.next().ok_or_else(|| format!("{what} needs a value\n{USAGE}"))?;
    v.replace('_', "").parse().map_err(|_| format!("{what}: `{v}` is not a number\n{USAGE}"))
}

fn fresh_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// `cargo xtask fuzz ...`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut targets: Vec<&Target> = Vec::new();
    let mut seconds = 60;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => {
                let name = it.next().ok_or_else(|| format!("--target needs a name\n{USAGE}"))?;
                if name == "all" {
                    targets.extend(TARGETS);
                } else {
                    targets.push(
                        TARGETS
                            .iter()
                            .find(|t| t.name == name)
                            .ok_or_else(|| format!("no fuzz target `{name}`\n{USAGE}"))?,
                    );
                }
            }
            "--seconds" => seconds = number(&mut it, "--seconds")?,
            "--seed" => seed = Some(number(&mut it, "--seed")?),
            "--minimize" => {
                let file = it.next().ok_or_else(|| format!("--minimize needs a file\n{USAGE}"))?;
                return minimize_file(Path::new(file)).map(drop);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if targets.is_empty() {
        targets.extend(TARGETS);
    }
    let seed = seed.unwrap_or_else(fresh_seed);
    let mut failed = Vec::new();
    let dir = module::target_dir().join("fuzz");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for t in targets {
        println!("fuzz {}: {seconds} s from seed {seed}", t.name);
        // The Lua fuzzer writes each case here before running it: after a crash it is the
        // crashing one.
        let case_file = dir.join(format!("lua-case-{seed}.lua"));
        let status = sys::cargo()
            .args(["test", "-p", t.package, "--test", t.test, "--", "--nocapture"])
            .env(format!("{}_SECONDS", t.env), seconds.to_string())
            .env(format!("{}_SEED", t.env), seed.to_string())
            .env("FUZZ_LUA_CASE_FILE", &case_file)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            continue;
        }
        failed.push(t.name);
        if t.name == "lua" && case_file.exists() {
            // A crash (cargo reports the test binary's signal as a failure, not as its own):
            // shrink the last case if it fails alone; a failure reported by the test itself
            // printed its program above.
            println!("fuzz lua: shrinking the last case run, {}", case_file.display());
            if let Err(e) = minimize_file(&case_file) {
                println!("fuzz lua: {e}");
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets failed: {} (seed {seed}; each failing case printed its own seed above)",
            failed.join(", ")
        ))
    }
}

/// `cargo xtask fuzz-cdef [--cases N] [--seed S]`: the parser's property test with a case count.
pub fn run_cdef_cases(args: &[String]) -> Result<(), String> {
    let mut cases: u64 = 2_000_000;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cases" => cases = number(&mut it, "--cases")?,
            "--seed" => seed = Some(number(&mut it, "--seed")?),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let seed = seed.unwrap_or_else(fresh_seed);
    println!("fuzz-cdef: {cases} cases, seed {seed}");
    let status = sys::cargo()
        .args(["test", "--release", "-p", "abi-model", "--test", "cdef_fuzz", "--", "--nocapture"])
        .env("CDEF_FUZZ_CASES", cases.to_string())
        .env("CDEF_FUZZ_SEED", seed.to_string())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the parser failed a case (seed {seed}); see the case seed printed above"))
    }
}

/// How a Lua fuzz program fails under `luaffi`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    /// Killed by this signal (a crash or an abort).
    Signal(i32),
    /// The program reported an error that is no Lua string or names a Rust panic.
    Bad,
    /// Ran past the time limit.
    Timeout,
}

/// Runs `luaffi file`; `None` when the program passed (or failed some other way).
fn failure_of(luaffi: &Path, calltest: &Path, file: &Path) -> Option<Failure> {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "60"])
        .arg(luaffi)
        .arg(file)
        .env("LUAFFI_CALLTEST", calltest)
        .env_remove("LUA_INIT")
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.signal() {
        Some(sig) => Some(Failure::Signal(sig)),
        None if out.status.code() == Some(137) => Some(Failure::Timeout),
        None if stderr.contains("FUZZ-BAD") => Some(Failure::Bad),
        None => None,
    }
}

/// Shrinks the program in `file` (written as `<file>.min.lua`); returns the minimal program.
fn minimize_file(file: &Path) -> Result<String, String> {
    let src = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let luaffi = build_luaffi()?;
    let calltest = module::build_calltest()?;
    let scratch = file.with_extension("try.lua");
    let Some(want) = failure_of(&luaffi, &calltest, file) else {
        return Err(format!("{} does not fail under {}", file.display(), luaffi.display()));
    };
    println!("fuzz: {} fails with {want:?}; shrinking", file.display());
    let (head, body, tail) =
        split_program(&src).ok_or_else(|| format!("{}: no `-- statements` ... `-- end` section", file.display()))?;
    let total = body.len();
    let kept = minimize(body, |lines| {
        let candidate = format!("{head}{}{tail}", lines.concat());
        std::fs::write(&scratch, candidate).is_ok() && failure_of(&luaffi, &calltest, &scratch).as_ref() == Some(&want)
    });
    let _ = std::fs::remove_file(&scratch);
    let min = format!("{head}{}{tail}", kept.concat());
    let out = file.with_extension("min.lua");
    std::fs::write(&out, &min).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("fuzz: {} statement(s) of {} still fail with {want:?}; written to {}:", kept.len(), total, out.display());
    for line in &kept {
        print!("  {line}");
    }
    Ok(min)
}

/// The program's prelude (through the `-- statements` line), its statement lines, and the rest
/// (from the `-- end` line).
fn split_program(src: &str) -> Option<(&str, Vec<&str>, &str)> {
    let start = src.find("-- statements\n")? + "-- statements\n".len();
    let end = start + src[start..].find("-- end\n")?;
    Some((&src[..start], src[start..end].split_inclusive('\n').collect(), &src[end..]))
}

/// Delta debugging (Zeller's ddmin, complement removal): the smallest subsequence of `items`
/// found for which `fails` still holds, removing chunks of halving size.
fn minimize<T: Clone>(items: Vec<T>, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut cur = items;
    let mut chunks = 2usize;
    while cur.len() >= 2 {
        let size = cur.len().div_ceil(chunks);
        let mut removed = false;
        let mut start = 0;
        while start < cur.len() {
            let end = (start + size).min(cur.len());
            let candidate: Vec<T> = cur[..start].iter().chain(&cur[end..]).cloned().collect();
            if fails(&candidate) {
                cur = candidate;
                removed = true;
                chunks = (chunks - 1).max(2);
            } else {
                start = end;
            }
        }
        if !removed {
            if size == 1 {
                break;
            }
            chunks = (chunks * 2).min(cur.len());
        }
    }
    if cur.len() == 1 && fails(&[]) {
        cur.clear();
    }
    cur
}

/// Builds the `luaffi` command; returns its path.
fn build_luaffi() -> Result<PathBuf, String> {
    let status = sys::cargo()
        .args(["build", "-p", "lua-adapter", "--bin", "luaffi"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building luaffi failed".into());
    }
    Ok(module::target_dir().join("debug").join("luaffi"))
}

/// The lines the fuzz tests of this run wrote (`fuzz_lua: 4000 cases from seed ...`).
pub fn summary_lines() -> Vec<String> {
    let dir = module::target_dir().join("tmp").join("fuzz-summary");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).map(|s| s.trim().to_string()).collect()
}

/// Removes the summary lines of an earlier run.
pub fn clear_summary_lines() {
    let _ = std::fs::remove_dir_all(module::target_dir().join("tmp").join("fuzz-summary"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimize_keeps_exactly_what_the_failure_needs() {
        let items: Vec<u32> = (0..40).collect();
        let kept = minimize(items, |xs| xs.contains(&7) && xs.contains(&31));
        assert_eq!(kept, vec![7, 31]);
    }

    #[test]
    fn minimize_of_a_failure_that_needs_nothing_is_empty() {
        assert!(minimize(vec![1, 2, 3], |_| true).is_empty());
    }

    #[test]
    fn a_program_splits_at_its_markers() {
        let src = "local x\n-- statements\na()\nb()\n-- end\nassert(x)\n";
        let (head, body, tail) = split_program(src).unwrap();
        assert_eq!(head, "local x\n-- statements\n");
        assert_eq!(body, vec!["a()\n", "b()\n"]);
        assert_eq!(tail, "-- end\nassert(x)\n");
    }
}
