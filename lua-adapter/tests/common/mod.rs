//! Shared by the Lua suite runners (`lua_suite.rs`, `system_lua.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles the C library the call and callback scripts load (`tests/c/calltest.c`, passed to
/// them in `LUAFFI_CALLTEST`) with the system C compiler into `dir`, for the target these tests
/// were built for (`-m32` on i386: the library is loaded into a 32-bit `luaffi`); returns its
/// path. Each
/// runner builds into its own directory, so two test processes never write the same file.
pub fn build_calltest(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("c").join("calltest.c");
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let out = dir.join("libcalltest.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1"])
        .args(cfg!(target_arch = "x86").then_some("-m32"))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cc to build {}: {e}", src.display()));
    assert!(status.success(), "cc failed to build {}", src.display());
    out
}
