//! Running commands and making sure the system packages the build needs are there.

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of xtask's manifest directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().expect("xtask lives inside the workspace").to_path_buf()
}

/// `cargo` as invoked us (falls back to `cargo` on PATH).
pub fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// True when `program` is found on PATH.
pub fn have_program(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// True when dpkg reports the Debian package as installed.
pub fn have_deb(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Makes sure the Debian packages are installed: installs the missing ones with apt-get when
/// running as root (saying so), otherwise stops with the exact command to run.
pub fn ensure_debs(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !have_deb(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    if !is_root() || !have_program("apt-get") {
        return Err(format!("missing system packages; run: sudo apt-get update && sudo {command}"));
    }
    eprintln!("xtask: installing missing system packages: {}", missing.join(" "));
    let update = Command::new("apt-get").args(["update", "-qq"]).status();
    if !matches!(update, Ok(s) if s.success()) {
        return Err("`apt-get update` failed".into());
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("`{command}` failed"));
    }
    Ok(())
}

/// True when running as root (who may install packages).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Makes sure dpkg takes packages of `arch` (`i386` on this x86-64 machine): adds it as a
/// foreign architecture when running as root (`ensure_debs` then runs `apt-get update`, as
/// its packages are missing), otherwise stops with the command to run.
pub fn ensure_dpkg_arch(arch: &str) -> Result<(), String> {
    let query = |flag: &str| {
        Command::new("dpkg")
            .arg(flag)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let known = query("--print-architecture") + &query("--print-foreign-architectures");
    if known.split_whitespace().any(|a| a == arch) {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "dpkg has no {arch} packages; run: sudo dpkg --add-architecture {arch} && sudo apt-get update"
        ));
    }
    eprintln!("xtask: adding the dpkg architecture {arch}");
    match Command::new("dpkg").args(["--add-architecture", arch]).status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!("`dpkg --add-architecture {arch}` failed")),
    }
}

/// Makes sure rustup has the standard library of each target, adding the missing ones.
pub fn ensure_rust_targets(targets: &[&str]) -> Result<(), String> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output().map_err(|e| {
        format!("cannot run rustup ({e}); the cross builds need: rustup target add {}", targets.join(" "))
    })?;
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: adding rustup targets: {}", missing.join(" "));
    match Command::new("rustup").args(["target", "add"]).args(&missing).status() {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!("`rustup target add {}` failed", missing.join(" "))),
    }
}

/// `cargo` of the nightly toolchain (through rustup), if it is installed.
pub fn cargo_nightly() -> Option<PathBuf> {
    let out = Command::new("rustup").args(["which", "--toolchain", "nightly", "cargo"]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
