//! `cargo xtask fixtures [--check] [--target NAME]...`: regenerates the fixture C sources
//! from the emu-harness catalogue and compiles them with gcc and mingw into
//! `emu-harness/fixtures/<target>/`; with `--check`, builds everything in a temporary
//! directory instead and fails unless it is byte-for-byte what is committed.
//!
//! Reproducible by construction: fixed flags, no timestamps (`--no-insert-timestamp`, no
//! build id), relative source names (compiled from inside the output directory), sorted
//! output, and the compiler versions recorded in `compilers.txt`.

use abi_model::Target;
use emu_harness::catalogue::catalogue;
use emu_harness::cgen::{self, ImageBuild};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Flags for every target: freestanding, no unwind tables, no stack protector or CET, no
/// debug info, and no loop-to-memcpy rewriting (rt.c defines memcpy with a loop).
const COMMON_FLAGS: &[&str] = &[
    "-std=gnu11",
    "-O1",
    "-ffreestanding",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-stack-protector",
    "-fcf-protection=none",
    "-fno-pic",
    "-fno-tree-loop-distribute-patterns",
    "-nostdlib",
    "-g0",
    "-w",
];
/// ELF: static non-PIE executables (ET_EXEC, no relocations, no imports) without a build id.
const ELF_FLAGS: &[&str] =
    &["-fno-pie", "-no-pie", "-static", "-Wl,--build-id=none", "-Wl,-z,noseparate-code", "-Wl,-e,fixture_entry"];
/// PE: executables at the default ImageBase without relocations or timestamp; every data
/// table is `__declspec(dllexport)` (export table) and the COFF symbols stay.
const PE_FLAGS: &[&str] = &["-Wl,--no-insert-timestamp", "-Wl,--disable-dynamicbase", "-Wl,--disable-reloc-section"];

/// How one target's fixtures are compiled.
struct Toolchain {
    compiler: &'static str,
    flags: Vec<&'static str>,
    /// The Debian package that provides the compiler for this target.
    package: &'static str,
}

fn toolchain(target: Target) -> Toolchain {
    let mut flags = COMMON_FLAGS.to_vec();
    let (compiler, package) = match target {
        Target::X86_LINUX => {
            flags.insert(0, "-m32");
            flags.extend(ELF_FLAGS);
            ("gcc", "gcc-multilib")
        }
        Target::X64_SYSV => {
            flags.insert(0, "-m64");
            flags.extend(ELF_FLAGS);
            ("gcc", "gcc")
        }
        Target::X86_WIN => {
            flags.extend(PE_FLAGS);
            // i686 COFF symbols carry a leading underscore.
            flags.push("-Wl,-e,_fixture_entry");
            ("i686-w64-mingw32-gcc", "gcc-mingw-w64-i686")
        }
        _ => {
            flags.extend(PE_FLAGS);
            flags.push("-Wl,-e,fixture_entry");
            ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
        }
    };
    Toolchain { compiler, flags, package }
}

fn usage() -> String {
    "usage: cargo xtask fixtures [--check] [--target x86-linux|x86-win|x64-sysv|x64-win]...".into()
}

/// Runs the task with the arguments after `fixtures`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut check = false;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--target" => {
                let name = it.next().ok_or_else(usage)?;
                targets.push(Target::from_name(name).ok_or_else(|| format!("unknown target `{name}`\n{}", usage()))?);
            }
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    for t in &targets {
        require_compiler(*t)?;
    }
    let committed = crate::sys::workspace_root().join("emu-harness").join("fixtures");
    if !check {
        for t in &targets {
            build_target(*t, &committed.join(t.name()))?;
            println!("fixtures: {} written to {}", t, committed.join(t.name()).display());
        }
        return Ok(());
    }
    let scratch = std::env::temp_dir().join(format!("luaffi-fixtures-check-{}", std::process::id()));
    let result = check_targets(&targets, &committed, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn check_targets(targets: &[Target], committed: &Path, scratch: &Path) -> Result<(), String> {
    let mut differences = Vec::new();
    for t in targets {
        let fresh = scratch.join(t.name());
        build_target(*t, &fresh)?;
        differences.extend(compare_dirs(&committed.join(t.name()), &fresh, t.name()));
    }
    if differences.is_empty() {
        println!("fixtures: committed fixtures of {} target(s) are what the sources compile to", targets.len());
        Ok(())
    } else {
        Err(format!(
            "fixtures differ from what the catalogue compiles to (run `cargo xtask fixtures`):\n  {}",
            differences.join("\n  ")
        ))
    }
}

/// Fails with the Debian package to install when `target`'s compiler is missing or cannot
/// build for the target (gcc without gcc-multilib cannot do `-m32`).
fn require_compiler(target: Target) -> Result<(), String> {
    let tc = toolchain(target);
    let missing = || {
        format!(
            "{}: `{}` cannot build for this target; install the Debian package {} (apt-get install {})",
            target, tc.compiler, tc.package, tc.package
        )
    };
    let probe = std::env::temp_dir().join(format!("luaffi-fixtures-probe-{}-{}", std::process::id(), target.name()));
    fs::create_dir_all(&probe).map_err(|e| e.to_string())?;
    fs::write(probe.join("probe.c"), "int probe(int x) { return x + 1; }\n").map_err(|e| e.to_string())?;
    let arch_flag: &[&str] = match target {
        Target::X86_LINUX => &["-m32"],
        Target::X64_SYSV => &["-m64"],
        _ => &[],
    };
    let ok = Command::new(tc.compiler)
        .args(arch_flag)
        .args(["-c", "probe.c", "-o", "probe.o"])
        .current_dir(&probe)
        .output()
        .is_ok_and(|o| o.status.success());
    let _ = fs::remove_dir_all(&probe);
    if ok {
        Ok(())
    } else {
        Err(missing())
    }
}

/// Writes every source of `target` into `dir`, removes stale generated files, compiles every
/// image (two at a time) and writes `compilers.txt`.
fn build_target(target: Target, dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cat = catalogue(target);
    let sources = cgen::sources(&cat);
    let images = cgen::images(&cat);
    let mut expected: BTreeSet<String> = sources.iter().map(|s| s.name.clone()).collect();
    expected.extend(images.iter().map(|i| i.output.clone()));
    expected.insert("compilers.txt".into());
    for entry in fs::read_dir(dir).map_err(|e| e.to_string())? {
        let name = entry.map_err(|e| e.to_string())?.file_name().to_string_lossy().into_owned();
        let generated = [".c", ".h", ".elf", ".exe", ".txt"].iter().any(|ext| name.ends_with(ext));
        if generated && !expected.contains(&name) {
            fs::remove_file(dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    for s in &sources {
        write_if_changed(&dir.join(&s.name), s.text.as_bytes())?;
    }
    let tc = toolchain(target);
    compile_all(&tc, dir, &images)?;
    write_if_changed(&dir.join("compilers.txt"), compilers_txt(target, &tc, &images)?.as_bytes())
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn compile_all(tc: &Toolchain, dir: &Path, images: &[ImageBuild]) -> Result<(), String> {
    let queue = Mutex::new(images.iter());
    let errors = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some(img) = next else { break };
                if let Err(e) = compile(tc, dir, img) {
                    if let Ok(mut errs) = errors.lock() {
                        errs.push(e);
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn compile(tc: &Toolchain, dir: &Path, img: &ImageBuild) -> Result<(), String> {
    let out = Command::new(tc.compiler)
        .args(&tc.flags)
        .arg("-o")
        .arg(&img.output)
        .args(&img.sources)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("{}: {e}", tc.compiler))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed in {}:\n{}",
            tc.compiler,
            img.output,
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn first_line(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string())
}

fn compilers_txt(target: Target, tc: &Toolchain, images: &[ImageBuild]) -> Result<String, String> {
    let linker = match target {
        Target::X86_WIN => "i686-w64-mingw32-ld",
        Target::X64_WIN => "x86_64-w64-mingw32-ld",
        _ => "ld",
    };
    let mut s = format!("# fixtures of {target}: compiler, linker and the exact commands (run in this directory)\n");
    s.push_str(&first_line(tc.compiler, &["--version"])?);
    s.push('\n');
    s.push_str(&first_line(linker, &["--version"])?);
    s.push('\n');
    for img in images {
        s.push_str(&format!("{} {} -o {} {}\n", tc.compiler, tc.flags.join(" "), img.output, img.sources.join(" ")));
    }
    Ok(s)
}

/// Lists every difference between the committed directory and a fresh build.
fn compare_dirs(committed: &Path, fresh: &Path, label: &str) -> Vec<String> {
    let list = |d: &Path| -> BTreeSet<String> {
        fs::read_dir(d)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let (old, new) = (list(committed), list(fresh));
    let mut diffs = Vec::new();
    for name in old.union(&new) {
        let path = |d: &Path| -> PathBuf { d.join(name) };
        match (old.contains(name), new.contains(name)) {
            (true, false) => diffs.push(format!("{label}/{name}: committed but no longer generated")),
            (false, true) => diffs.push(format!("{label}/{name}: generated but not committed")),
            _ => {
                if fs::read(path(committed)).ok() != fs::read(path(fresh)).ok() {
                    diffs.push(format!("{label}/{name}: differs"));
                }
            }
        }
    }
    diffs
}
