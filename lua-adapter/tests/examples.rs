//! Runs each script in `examples/` through the `luaffi` command and checks what it prints.

use std::path::Path;
use std::process::Command;

/// Runs `examples/<name>` with `args`; returns its stdout, panicking unless it succeeded.
fn run_example(name: &str, args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let out = Command::new(env!("CARGO_BIN_EXE_luaffi"))
        .arg(root.join("examples").join(name))
        .args(args)
        .env_remove("LUA_INIT")
        .output()
        .expect("run luaffi");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn libc_example_calls_printf_strlen_getenv_and_time() {
    let out = run_example("libc.lua", &[]);
    assert!(out.contains("printf: luaffi has 6 letters and pi is about 3.1416\n"), "{out}");
    assert!(out.contains("strlen(\"Hello, C!\") = 9\n"), "{out}");
    assert!(out.contains("getenv(\"LUAFFI_SURELY_UNSET\") is NULL: true\n"), "{out}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t: i64 = out
        .split("time() = ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((t - now).abs() < 60, "time() = {t}, now {now}");
}

#[test]
fn qsort_example_sorts_a_hundred_thousand_numbers_with_a_lua_comparator() {
    let out = run_example("qsort.lua", &[]);
    assert!(out.starts_with("sorted 100000 numbers with "), "{out}");
    assert!(out.contains(" s: ok\n"), "{out}");
}

#[test]
fn zlib_example_round_trips_through_libz() {
    let out = run_example("zlib.lua", &[]);
    assert!(out.contains("4700 bytes compressed to "), "{out}");
    assert!(out.contains("uncompressed back to 4700: ok"), "{out}");
}
