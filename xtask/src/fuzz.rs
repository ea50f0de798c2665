//! `cargo xtask fuzz-cdef [--cases N] [--seed S]`: the cdef parser's property test
//! (abi-model/tests/cdef_fuzz.rs), longer than the test command's 100,000 cases, in release
//! mode. A failure prints the case's seed, which `CDEF_FUZZ_CASE_SEED` replays alone.

use crate::sys;

fn usage() -> String {
    "usage: cargo xtask fuzz-cdef [--cases N] [--seed S]   (default: 2,000,000 cases, a fresh seed)".into()
}

/// Runs the task with the arguments after `fuzz-cdef`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut cases: u64 = 2_000_000;
    let mut seed: Option<u64> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(usage)?;
            v.replace('_', "").parse().map_err(|_| format!("{what}: `{v}` is not a number\n{}", usage()))
        };
        match a.as_str() {
            "--cases" => cases = value("--cases")?,
            "--seed" => seed = Some(value("--seed")?),
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
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
