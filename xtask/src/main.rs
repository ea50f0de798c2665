//! `cargo xtask <task>`: the project's developer tasks.
//!
//! - `test-all-abis`: every workspace test, the snapshots and the emulator matrix; prints
//!   `N passed, N failed` last.
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

mod bench;
mod disasm;
mod fixtures;
mod fuzz;
mod matrix;
mod module;
mod sys;
mod test_all;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r),
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match task {
        "test-all-abis" => test_all::run(rest),
        "bench" => bench::run(rest),
        "fixtures" => fixtures::run(rest),
        "disasm" => disasm::run(rest),
        "fuzz" => fuzz::run(rest),
        "fuzz-cdef" => fuzz::run_cdef_cases(rest),
        "module" => module::run(rest),
        "valgrind" => module::valgrind(rest),
        "asan" => module::asan(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n{USAGE}")),
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
  test-all-abis   run every test: workspace tests, snapshots, the emulator matrix
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
                                 (nightly: rustup toolchain install nightly --profile minimal)";
