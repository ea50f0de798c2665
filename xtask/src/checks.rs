//! The static checks `test-all-abis` runs before any test: formatting, clippy and rustdoc
//! (each a cargo command that must exit 0), `cargo publish --dry-run` of abi-model (which must
//! also warn of nothing), and the SAFETY comments of lua-adapter (each must say what it relies
//! on).

use crate::sys;
use std::path::{Path, PathBuf};
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

/// The crate published to crates.io, checked by [`run_publish_dry_run`].
pub const PUBLISHED_CRATE: &str = "abi-model";

/// The one warning a clean `cargo publish --dry-run` prints.
const DRY_RUN_WARNING: &str = "warning: aborting upload due to dry run";

/// `cargo publish --dry-run -p <package> --allow-dirty` in the workspace at `dir`: packages the
/// crate as crates.io would receive it and builds the package. Cargo only warns about metadata
/// crates.io needs (no description, no license), so any warning but the dry run's own fails
/// the check too. Cargo's output goes to ours; `Err` says what failed.
pub fn run_publish_dry_run(package: &str, dir: &Path) -> Result<(), String> {
    let name = format!("cargo publish --dry-run -p {package} --allow-dirty");
    let out = sys::cargo()
        .current_dir(dir)
        .args(["publish", "--dry-run", "-p", package, "--allow-dirty"])
        .output()
        .map_err(|e| format!("cannot run `{name}`: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{stderr}");
    let warnings: Vec<&str> =
        stderr.lines().map(str::trim).filter(|l| l.starts_with("warning:") && *l != DRY_RUN_WARNING).collect();
    if !out.status.success() {
        Err(format!("`{name}` failed ({})", out.status))
    } else if !warnings.is_empty() {
        Err(format!("`{name}` warned: {}", warnings.join("; ")))
    } else {
        Ok(())
    }
}

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

/// The directories whose SAFETY comments are checked: every one with unsafe code (the other
/// crates forbid it; xtask has none).
const SAFETY_CHECKED_DIRS: &[&str] = &["lua-adapter/src", "lua-adapter/tests", "backend-x64-sysv/tests"];

/// A SAFETY comment shorter than this many words (after `SAFETY:`) states no invariant.
pub const SAFETY_MIN_WORDS: usize = 4;

/// Phrases that point somewhere instead of stating the invariant (lower case).
pub const SAFETY_BANNED: &[&str] = &[
    "as documented",
    "as the caller guarantees",
    "as the callers guarantee",
    "as guaranteed",
    "see above",
    "as above",
    "same as",
    "trivially safe",
    "this is safe",
    "as the caller checked",
    // Says the state is valid without saying for what (lua-adapter's crate doc names `valid-L`).
    "on a valid state",
];

/// Whether `text` (after `SAFETY:`) starts by pointing at another item's comment, as in
/// `as ffi_cdef;` or `as `matches`:` (and says what holds only after that, if at all).
fn points_at_another_comment(text: &str) -> Option<&str> {
    let word = text.strip_prefix("as ")?.split_whitespace().next()?;
    let name = word.strip_suffix([';', ':', '.', ','])?;
    let name = name.trim_matches('`');
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// One SAFETY comment that says nothing.
#[derive(Debug, PartialEq)]
pub struct EmptySafety {
    /// 1-based line of the `SAFETY:` marker.
    pub line: usize,
    /// The comment's text after `SAFETY:`, its lines joined.
    pub text: String,
    /// Why it is rejected.
    pub why: String,
}

/// The SAFETY comments of one Rust source that state no invariant: fewer than
/// [`SAFETY_MIN_WORDS`] words, a phrase of [`SAFETY_BANNED`], or one that starts `as <item>;`. A comment runs from
/// `// SAFETY:` over the `//` lines right below it.
pub fn empty_safety_comments(source: &str) -> Vec<EmptySafety> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(pos) = line.find("// SAFETY:") else { continue };
        if line[..pos].trim_start().starts_with("//") {
            continue; // inside a doc or plain comment that mentions SAFETY comments
        }
        let mut text = line[pos + "// SAFETY:".len()..].trim().to_string();
        for next in &lines[i + 1..] {
            let next = next.trim_start();
            match next.strip_prefix("//") {
                Some(rest)
                    if !rest.starts_with('/')
                        && !rest.starts_with('!')
                        && !rest.trim_start().starts_with("SAFETY:") =>
                {
                    text.push(' ');
                    text.push_str(rest.trim());
                }
                _ => break,
            }
        }
        let lower = text.to_lowercase();
        let words = text.split_whitespace().count();
        let why = if let Some(phrase) = SAFETY_BANNED.iter().find(|p| lower.contains(*p)) {
            format!("`{phrase}` states no invariant")
        } else if let Some(name) = points_at_another_comment(&text) {
            format!("`as {name}` points at another comment instead of stating the invariant")
        } else if words < SAFETY_MIN_WORDS {
            format!("{words} word(s): too short to state an invariant")
        } else {
            continue;
        };
        out.push(EmptySafety { line: i + 1, text: text.trim().to_string(), why });
    }
    out
}

/// Every empty SAFETY comment under [`SAFETY_CHECKED_DIRS`], as `path:line: why: text`.
pub fn safety_findings() -> Result<Vec<String>, String> {
    let root = sys::workspace_root();
    let mut files = Vec::new();
    for dir in SAFETY_CHECKED_DIRS {
        rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        for f in empty_safety_comments(&source) {
            out.push(format!("{shown}:{}: {}: SAFETY: {}", f.line, f.why, f.text));
        }
    }
    Ok(out)
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    Ok(())
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
    println!("== cargo publish --dry-run -p {PUBLISHED_CRATE} --allow-dirty ==");
    if let Err(e) = run_publish_dry_run(PUBLISHED_CRATE, &root) {
        failed.push(e);
    }
    println!("== SAFETY comments ({}) ==", SAFETY_CHECKED_DIRS.join(", "));
    let empty = safety_findings()?;
    for f in &empty {
        println!("{f}");
    }
    if !empty.is_empty() {
        failed.push(format!("{} SAFETY comment(s) state no invariant", empty.len()));
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_safety_comments_are_caught() {
        let src = "\
    // SAFETY: as documented.
    unsafe { f() };
    // SAFETY: valid state.
    unsafe { g() };
    // SAFETY: as the caller guarantees; nothing owned
    // is alive here, see above.
    unsafe { h() };
    // SAFETY: [live-L]: `l` is the running thread with a free slot, so one push fits.
    unsafe { i() };
    // SAFETY: `addr..addr+len` is a mapping this arena made
    // and no live chunk uses.
    unsafe { j() };
//! The invariants `// SAFETY:` comments cite.
    // SAFETY: as ffi_cdef; the bytes read are the user's.
    unsafe { k() };
    // SAFETY: stack operations on a valid state.
    unsafe { m() };
    // SAFETY: as in `load_file`; `code` outlives the call.
    unsafe { n() };
";
        let found = empty_safety_comments(src);
        let lines: Vec<usize> = found.iter().map(|f| f.line).collect();
        assert_eq!(lines, [1, 3, 5, 14, 16], "{found:#?}");
        assert!(found[0].why.contains("as documented"));
        assert!(found[1].why.contains("2 word(s)"));
        assert!(found[2].text.ends_with("see above."), "continuation lines belong to the comment");
        assert!(found[3].why.contains("`as ffi_cdef` points at another comment"), "{}", found[3].why);
        assert!(found[4].why.contains("on a valid state"));
    }

    #[test]
    fn the_checked_sources_have_no_empty_safety_comment() {
        let found = safety_findings().unwrap();
        assert!(found.is_empty(), "{}", found.join("\n"));
    }

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

    /// The publish check passes a crate with the metadata crates.io needs, and fails one
    /// without a license and description (cargo itself only warns) and one that does not build.
    #[test]
    fn publish_dry_run_fails_without_metadata_or_a_build() {
        let lib = "//! A crate.\n\n/// Adds one.\npub fn add_one(x: u32) -> u32 {\n    x + 1\n}\n";
        let bare = scratch_crate("publish_bare", lib);
        let err = run_publish_dry_run("publish_bare", &bare).unwrap_err();
        assert!(err.contains("warned") && err.contains("license"), "{err}");
        let complete = scratch_crate("publish_complete", lib);
        let manifest = std::fs::read_to_string(complete.join("Cargo.toml")).unwrap().replace(
            "edition = \"2021\"\n",
            "edition = \"2021\"\ndescription = \"A test crate.\"\nlicense = \"MIT\"\n\
             repository = \"https://example.invalid/publish_complete\"\n",
        );
        std::fs::write(complete.join("Cargo.toml"), manifest).unwrap();
        run_publish_dry_run("publish_complete", &complete).unwrap_or_else(|e| panic!("complete crate: {e}"));
        std::fs::write(complete.join("src/lib.rs"), "//! Does not build.\npub fn f() -> u32 { \"no\" }\n").unwrap();
        let err = run_publish_dry_run("publish_complete", &complete).unwrap_err();
        assert!(err.contains("failed"), "{err}");
        let _ = std::fs::remove_dir_all(bare);
        let _ = std::fs::remove_dir_all(complete);
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
