//! The static checks `test-all-abis` runs before any test: formatting, clippy and rustdoc,
//! each a cargo command that must exit 0.

use crate::sys;
use std::path::Path;
use std::process::Command;

/// One cargo command that must succeed on the workspace.
pub struct CargoCheck {
    /// What the summary calls it.
    pub name: &'static str,
    /// The arguments after `cargo`.
    pub args: &'static [&'static str],
    /// Extra environment variables.
    pub env: &'static [(&'static str, &'static str)],
}

/// `cargo fmt`, `cargo clippy` and `cargo doc`, each failing on any finding: a file rustfmt
/// would change, any clippy or rustc warning, a broken intra-doc link or a public item's doc
/// linking a private one.
pub const CARGO_CHECKS: [CargoCheck; 3] = [
    CargoCheck { name: "cargo fmt --all --check", args: &["fmt", "--all", "--check"], env: &[] },
    CargoCheck {
        name: "cargo clippy --workspace --all-targets -- -D warnings",
        args: &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        env: &[],
    },
    CargoCheck {
        name: "RUSTDOCFLAGS='-D warnings' cargo doc --no-deps --workspace",
        args: &["doc", "--no-deps", "--workspace"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
];

/// Installs the rustup components the checks run (rustfmt, clippy) when cargo lacks them.
pub fn ensure_components() -> Result<(), String> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(sub, _)| !sys::cargo().args([*sub, "--version"]).output().is_ok_and(|o| o.status.success()))
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing rustup components: {}", missing.join(" "));
    let status = Command::new("rustup")
        .args(["component", "add"])
        .args(&missing)
        .status()
        .map_err(|e| format!("cannot run rustup to install {}: {e}", missing.join(" ")))?;
    if !status.success() {
        return Err(format!("`rustup component add {}` failed", missing.join(" ")));
    }
    Ok(())
}

/// Runs `check` in the workspace at `dir`, its output going to ours; `Err` names the check.
pub fn run_cargo_check(check: &CargoCheck, dir: &Path) -> Result<(), String> {
    let mut cmd = sys::cargo();
    cmd.current_dir(dir).args(check.args);
    for (k, v) in check.env {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("cannot run `{}`: {e}", check.name))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", check.name))
    }
}

/// Runs every static check on the workspace; returns the failed ones' descriptions.
pub fn run_all() -> Result<Vec<String>, String> {
    ensure_components()?;
    let root = sys::workspace_root();
    let mut failed = Vec::new();
    for check in &CARGO_CHECKS {
        println!("== {} ==", check.name);
        if let Err(e) = run_cargo_check(check, &root) {
            failed.push(e);
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Writes a one-file library crate (its own workspace) into a fresh directory.
    fn scratch_crate(name: &str, lib_rs: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("luaffi-xtask-checks-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), lib_rs).unwrap();
        dir
    }

    /// Each cargo check passes a clean crate and fails the crate with its own kind of finding.
    #[test]
    fn each_cargo_check_fails_on_its_finding() {
        ensure_components().unwrap();
        let clean = "//! A clean crate.\n\n/// Adds one.\npub fn add_one(x: u32) -> u32 {\n    x + 1\n}\n";
        let flawed = [
            // Not as rustfmt writes it.
            ("fmt_finding", "//! Unformatted.\n\n/// Adds one.\npub fn add_one(x:u32)->u32{x+1}\n"),
            // clippy::len_zero, a warning rustc does not give.
            (
                "clippy_finding",
                "//! A clippy warning.\n\n/// Whether `v` is empty.\npub fn empty(v: &[u8]) -> bool {\n    v.len() == 0\n}\n",
            ),
            // A broken intra-doc link.
            ("doc_finding", "//! A broken link to [`Missing`].\n\n/// Adds one.\npub fn add_one(x: u32) -> u32 {\n    x + 1\n}\n"),
        ];
        let clean_dir = scratch_crate("clean", clean);
        for check in &CARGO_CHECKS {
            run_cargo_check(check, &clean_dir).unwrap_or_else(|e| panic!("clean crate: {e}"));
        }
        for (check, (name, src)) in CARGO_CHECKS.iter().zip(flawed) {
            let dir = scratch_crate(name, src);
            assert!(run_cargo_check(check, &dir).is_err(), "`{}` passed {name}", check.name);
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(clean_dir);
    }
}
