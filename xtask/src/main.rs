//! `cargo xtask <task>`: the project's developer tasks.
//!
//! - `test-all-abis`: every workspace test, the snapshots and the emulator matrix; prints
//!   `N passed, N failed` last.

mod matrix;
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
  test-all-abis   run every test: workspace tests, snapshots, the emulator matrix";
