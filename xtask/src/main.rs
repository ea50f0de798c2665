//! `cargo xtask <task>`: the project's developer tasks.
//!
//! - `test-all-abis`: the fmt, clippy, rustdoc and SAFETY-comment checks, every workspace
//!   test, the snapshots and the emulator matrix, the Lua suite and the examples on each host
//!   (x86-64 and i686 Linux, x86-64 and 32-bit Windows under Wine); prints `N passed, N failed`
//!   last.
//! - `disasm '<C declarations>' [--abi NAME]`: the plan, stub and thunk of each declared
//!   function, as the target's backend emits them.
//! - `fuzz [--target cdef|layout|lua|all]... [--seconds N] [--seed S]`: the fuzzers, longer;
//!   `fuzz --minimize <file.lua>` shrinks a failing Lua fuzz program.
//! - `fuzz-cdef [--cases N] [--seed S]`: the cdef parser's property test, longer (release).
//! - `fixtures [--check]`: regenerate the emulator fixtures with gcc and mingw, or prove the
//!   committed ones are what the sources compile to.
//! - `module --lua 5.X [--release]`: `ffi.so` for the system's Lua 5.X in `target/lua5.X/`.
//! - `valgrind [--lua 5.X]`: the Lua suite under valgrind with the system Lua (5.4) and module.
//! - `asan [--fuzz-cases N]`: the Lua suite and the Lua fuzzer under AddressSanitizer (nightly).
//! - `miri`: abi-model's unit and ABI rule tests under Miri (nightly).
//! - `hosts [NAME]...`: only the per-host stage of `test-all-abis`.
//! - `bench [calls] [--quick] [--lua 5.X]... [--host NAME|all]`: the benchmark tables, per Lua
//!   version on this machine, or (Lua 5.4) on each host named.
//! - `dist [--dev] [--lua 5.X]... [--host NAME|none]... [--test]`: the release artifacts in
//!   `target/dist/`: source archive, source rock, binary rocks per Lua version, `luaffi` per host.

mod bench;
mod checks;
mod disasm;
mod dist;
mod dist_win;
mod fixtures;
mod fuzz;
mod hosts;
mod matrix;
mod miri;
mod module;
mod sys;
mod test_all;

use std::process::ExitCode;

/// Every task: its name on the command line and the function that runs it with the rest.
type Task = fn(&[String]) -> Result<(), String>;
const TASKS: &[(&str, Task)] = &[
    ("test-all-abis", test_all::run),
    ("hosts", hosts::run),
    ("bench", bench::run),
    ("fixtures", fixtures::run),
    ("disasm", disasm::run),
    ("fuzz", fuzz::run),
    ("fuzz-cdef", fuzz::run_cdef_cases),
    ("module", module::run),
    ("valgrind", module::valgrind),
    ("asan", module::asan),
    ("miri", miri::run),
    ("dist", dist::run),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match TASKS.iter().find(|(name, _)| *name == task) {
        Some((_, run)) => run(rest),
        None if matches!(task, "-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        None => Err(format!("unknown task `{task}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <task>
tasks:
  test-all-abis   the static checks (fmt, clippy, rustdoc, SAFETY comments), then every
                  test: workspace tests, snapshots, the emulator matrix, the Lua suite and
                  the examples on x86_64-linux, i686-linux, x86_64-windows and i686-windows
                  (Wine); installs what it needs when run as root
  hosts [x86_64-linux|i686-linux|x86_64-windows|i686-windows]...
                  only the test command's per-host stage: the Lua suite and the examples
                  on the hosts named (default: all)
  bench [calls per loop] [--quick] [--lua 5.X]... [--host NAME|all]
                  the call overhead and workload tables per Lua version, against
                  hand-written bindings and LuaJIT -joff (release builds); with --host, the
                  embedded Lua 5.4's on each host named (Windows ones under Wine)
  disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win]
                  print each declared function's plan, stub and thunk, disassembled
  fuzz [--target cdef|layout|lua|all]... [--seconds N] [--seed S]
                  run the fuzzers for N seconds each (default: all, 60 s, a fresh seed);
                  a crash of the Lua fuzzer is shrunk to its minimal program
  fuzz --minimize <file.lua>
                  shrink a failing Lua fuzz program to the statements that still fail
  fuzz-cdef [--cases N] [--seed S]
                  the cdef parser's property test with more cases (default 2,000,000)
  fixtures [--check] [--target T]...
                  regenerate emu-harness/fixtures with gcc/mingw; --check proves the
                  committed binaries are what the committed sources compile to
  module --lua 5.X [--release]   build ffi.so for the system's Lua 5.X into target/lua5.X/
  valgrind [--lua 5.X]           run the Lua suite under valgrind with the system lua5.4 + module
  asan [--fuzz-cases N]          run the Lua suite and the Lua fuzzer under AddressSanitizer
                                 (nightly: rustup toolchain install nightly --profile minimal)
  miri                           abi-model's unit and ABI rule tests under Miri (nightly;
                                 installs the miri component if missing)
  dist [--dev] [--lua 5.X]... [--host NAME|none]... [--test]
                  the release in target/dist/: luaffi-VERSION.tar.gz and its source rock,
                  binary rocks lua5.X/luaffi-VERSION-1.linux-x86_64.rock (and linux-x86 with
                  the i686-linux host) for Lua 5.1-5.4, and luaffi for each host (default:
                  all); checks the glibc floor and libraries of the Linux binaries; --dev
                  uses debug builds; --test installs the rocks and runs smoke.lua
  help                           this text";

/// The tasks of `tasks` whose name starts no line of `usage` indented by exactly two spaces
/// (deeper lines continue a task's description).
#[cfg(test)]
fn unlisted<'t>(usage: &str, tasks: &[(&'t str, Task)]) -> Vec<&'t str> {
    let listed: Vec<&str> = usage
        .lines()
        .filter_map(|l| l.strip_prefix("  ").filter(|rest| !rest.starts_with(' '))?.split_whitespace().next())
        .collect();
    tasks.iter().map(|(name, _)| *name).filter(|name| !listed.contains(name)).collect()
}

#[cfg(test)]
mod tests {
    use super::{unlisted, TASKS, USAGE};

    #[test]
    fn usage_lists_every_task() {
        assert_eq!(unlisted(USAGE, TASKS), Vec::<&str>::new());
    }

    #[test]
    fn a_task_missing_from_the_usage_is_caught() {
        let without_miri: String = USAGE.lines().filter(|l| !l.starts_with("  miri")).collect::<Vec<_>>().join("\n");
        assert_eq!(unlisted(&without_miri, TASKS), ["miri"]);
    }
}
