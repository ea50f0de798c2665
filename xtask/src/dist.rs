//! `cargo xtask dist`: the release artifacts, under `target/dist/` (issue 20).
//!
//! - `luaffi-<v>.tar.gz`: the source archive the versioned rockspec's `source.url` names: the
//!   files git tracks or would track (`git ls-files --cached --others --exclude-standard`) as
//!   they are in the working tree, under `luaffi-<v>/`, without the emulator's compiled
//!   fixtures (`emu-harness/fixtures/`, 97 MB; the module's build never reads them).
//! - `luaffi-<v>-1.src.rock`: the versioned rockspec and that archive, zipped as `luarocks
//!   pack <rockspec>` zips them; `luarocks install` of it builds with cargo, fetching nothing.
//! - `lua5.X/luaffi-<v>-1.<platform>.rock`: a binary rock per Lua version and platform
//!   (`linux-x86_64`; `linux-x86`, `win32-x86_64` and `win32-x86` too when the i686-linux,
//!   x86_64-windows and i686-windows hosts are chosen, as by default), laid out as `luarocks
//!   pack <name> <version>` lays out an installed rock: `rock_manifest` (MD5 of every file),
//!   the rockspec and `lib/ffi.so` or `lib/ffi.dll` (its debug information stripped). Its
//!   rockspec is the versioned one with the Lua dependency narrowed to that Lua (`lua ~>
//!   5.X`), so luarocks refuses to install it for another Lua, whose ABI it was not built
//!   for, and, in a Windows rock, `supported_platforms` saying `windows` instead of `linux`
//!   (luarocks checks it when installing a binary rock too). It installs with `luarocks
//!   install ./file.rock` on a machine without cargo. The Windows rocks: [`dist_win`].
//! - `<host>/luaffi[.exe]`: the `luaffi` command for each host (built by
//!   [`hosts::Host::build`], the per-host stage's own build).
//!
//! Every Linux binary is checked ([`check_elf`]): the libraries it links (`NEEDED`) are only
//! the C runtime's ([`ALLOWED_NEEDED`]: no `liblua`, the module takes Lua's C API from the
//! interpreter that loads it), and the glibc symbol versions it needs are at most
//! [`GLIBC_FLOOR`].
//!
//! `--test` (and the test command's rocks stage, [`test_stage`]) then installs each
//! `linux-x86_64` binary rock into a fresh luarocks tree with cargo hidden from `PATH`, the
//! source rock into another with cargo, and runs the Lua suite's `smoke.lua` with each Lua and
//! the `ffi.so` luarocks installed (checked against the rock's `rock_manifest`); each binary
//! rock must also be refused by a tree of another Lua. A `linux-x86` rock is unpacked instead
//! (this machine's luarocks is x86-64's, and Debian's i386 Lua packages cannot be installed
//! beside the x86-64 ones) and its `ffi.so` smoke-tested with an i386 Lua compiled here
//! ([`i386_lua`]). A Windows rock is unpacked into a luarocks-like tree and smoke-tested under
//! Wine with a Windows Lua compiled here, and must be refused by another Lua's interpreter
//! ([`dist_win::test_rock`]).

use crate::{dist_win, hosts, module, sys};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The release version: the workspace's (`[workspace.package] version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Lua versions rocks are built for: those Debian ships interpreters of (and luarocks
/// 3.8 knows); 5.5 has the `luaffi` command with its vendored Lua instead.
pub const ROCK_LUAS: &[&str] = &["5.1", "5.2", "5.3", "5.4"];

/// The newest glibc symbol version (`GLIBC_2.x`) a Linux binary of the release may need.
/// Rust's standard library asks for no more than glibc 2.17 by itself, but linking against
/// this machine's glibc (Debian 12: 2.36) binds the threading functions to the versions 2.34
/// gave them when libpthread moved into libc (`pthread_key_create@GLIBC_2.34`, ...), and an
/// executable's `__libc_start_main` to 2.34's: so glibc 2.34 (Debian 12, Ubuntu 22.04,
/// Fedora 35, RHEL 9 and later). Going lower would take building on an older glibc.
pub const GLIBC_FLOOR: (u32, u32) = (2, 34);

/// The libraries a Linux binary of the release may link: the C runtime only, which every
/// Linux Lua install has.
pub const ALLOWED_NEEDED: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux.so.2",
];

/// What `cargo xtask dist` is asked to make.
pub struct Options {
    /// Release builds (the default), or the debug builds the tests share (`--dev`).
    pub release: bool,
    /// The Lua versions of the rocks.
    pub luas: Vec<String>,
    /// The hosts to make binary rocks for.
    pub rock_hosts: Vec<&'static hosts::Host>,
    /// The hosts whose `luaffi` is built.
    pub exe_hosts: Vec<&'static hosts::Host>,
}

/// What `cargo xtask dist` made.
pub struct Dist {
    pub source_rock: PathBuf,
    /// `(platform, Lua version, path)` of each binary rock.
    pub rocks: Vec<(&'static str, String, PathBuf)>,
    /// The checked binaries (`<rock> lib/ffi.so`, `<host>/luaffi`, ...) and what they need.
    pub checked: Vec<(String, String)>,
}

const USAGE: &str = "usage: cargo xtask dist [--dev] [--lua 5.X]... [--host NAME|none]... [--test]";

/// `cargo xtask dist [--dev] [--lua 5.X]... [--host NAME|none]... [--test]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut release = true;
    let mut luas = Vec::new();
    let mut host_names = Vec::new();
    let mut test = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dev" => release = false,
            "--test" => test = true,
            "--lua" => luas.push(it.next().ok_or(format!("--lua needs a version\n{USAGE}"))?.clone()),
            "--host" => host_names.push(it.next().ok_or(format!("--host needs a name\n{USAGE}"))?.clone()),
            other => return Err(format!("dist: unknown argument `{other}`\n{USAGE}")),
        }
    }
    if luas.is_empty() {
        luas = ROCK_LUAS.iter().map(|v| v.to_string()).collect();
    }
    if let Some(bad) = luas.iter().find(|v| !ROCK_LUAS.contains(&v.as_str())) {
        return Err(format!("dist: no rocks for Lua `{bad}` (rocks: {})", ROCK_LUAS.join(", ")));
    }
    let hosts: Vec<&'static hosts::Host> = if host_names.is_empty() {
        hosts::HOSTS.iter().collect()
    } else if host_names == ["none"] {
        Vec::new()
    } else {
        host_names.iter().map(|n| hosts::by_name(n)).collect::<Result<_, _>>()?
    };
    hosts::ensure_installed(&hosts, &["zip", "unzip", "luarocks"])?;
    // Rocks for the build machine, and for the other hosts chosen.
    let mut rock_hosts = vec![hosts::build_machine()?];
    rock_hosts.extend(hosts.iter().filter(|h| !h.is_build_machine()));
    let dist = make(&Options { release, luas, rock_hosts, exe_hosts: hosts })?;
    for line in summary_lines(&dist) {
        println!("{line}");
    }
    if test {
        let lines = test_rocks(&dist);
        for l in &lines {
            println!("{}", l.text);
        }
        let failed = lines.iter().filter(|l| !l.passed).count();
        println!("{} passed, {failed} failed", lines.len() - failed);
        if failed > 0 {
            return Err(format!("{failed} rock test(s) failed"));
        }
    }
    Ok(())
}

/// `target/dist/`.
pub fn dist_dir() -> PathBuf {
    module::target_dir().join("dist")
}

/// The versioned rockspec at the workspace root: `luaffi-<VERSION>-1.rockspec`.
pub(crate) fn rockspec_name() -> String {
    format!("luaffi-{VERSION}-1.rockspec")
}

/// The name of the release archive: `luaffi-<VERSION>.tar.gz`.
fn archive_name() -> String {
    format!("luaffi-{VERSION}.tar.gz")
}

/// Checks that the rockspec text is the one of this release: its version, and a source that
/// is the release archive unpacking to `luaffi-<VERSION>/`.
pub fn check_rockspec(text: &str) -> Result<(), String> {
    let expect = [
        format!("version = \"{VERSION}-1\""),
        format!("/{}\",", archive_name()),
        format!("dir = \"luaffi-{VERSION}\""),
        LUA_DEPENDENCY.to_string(),
    ];
    let missing: Vec<&String> = expect.iter().filter(|e| !text.contains(e.as_str())).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} does not say {missing:?} (the release is {VERSION})", rockspec_name()))
    }
}

/// The Lua dependency of the rockspecs, which a binary rock narrows to its Lua.
const LUA_DEPENDENCY: &str = "\"lua >= 5.1, < 5.6\",";

/// The platforms the rockspecs support, which a Windows rock replaces with
/// [`WINDOWS_PLATFORMS`].
const LINUX_PLATFORMS: &str = "supported_platforms = { \"linux\" }";

/// The platforms of a Windows rock's rockspec.
pub const WINDOWS_PLATFORMS: &str = "supported_platforms = { \"windows\" }";

/// The rockspec of a binary rock for Lua `version` on `os`: `rockspec` with its Lua
/// dependency narrowed to `lua ~> <version>`, and for Windows its platforms
/// [`WINDOWS_PLATFORMS`].
pub fn binary_rockspec(rockspec: &str, version: &str, os: hosts::Os) -> Result<String, String> {
    if rockspec.matches(LUA_DEPENDENCY).count() != 1 {
        return Err(format!("the rockspec has not exactly one {LUA_DEPENDENCY} to narrow"));
    }
    let spec = rockspec.replace(LUA_DEPENDENCY, &format!("\"lua ~> {version}\","));
    match os {
        hosts::Os::Linux => Ok(spec),
        hosts::Os::Windows if spec.matches(LINUX_PLATFORMS).count() == 1 => {
            Ok(spec.replace(LINUX_PLATFORMS, WINDOWS_PLATFORMS))
        }
        hosts::Os::Windows => Err(format!("the rockspec has not exactly one {LINUX_PLATFORMS} to replace")),
    }
}

/// Builds every artifact of `opts` under [`dist_dir`].
pub fn make(opts: &Options) -> Result<Dist, String> {
    let root = sys::workspace_root();
    let rockspec_path = root.join(rockspec_name());
    let rockspec = read(&rockspec_path)?;
    check_rockspec(&rockspec)?;
    let dist = dist_dir();
    // Only this run's artifacts are left (the caches of the tests, src-build/ and lua-i386/,
    // stay).
    for old in module::LUA_VERSIONS.iter().map(|v| format!("lua{v}")).chain(hosts::HOSTS.iter().map(|h| h.name.into()))
    {
        let _ = std::fs::remove_dir_all(dist.join(old));
    }
    std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;

    let archive = dist.join(archive_name());
    source_archive(&root, &archive)?;
    let source_rock = dist.join(format!("luaffi-{VERSION}-1.src.rock"));
    let stage = dist.join("stage").join("src");
    reset_dir(&stage)?;
    copy(&rockspec_path, &stage.join(rockspec_name()))?;
    copy(&archive, &stage.join(archive_name()))?;
    zip(&stage, &[rockspec_name(), archive_name()], &source_rock)?;

    let mut rocks = Vec::new();
    let mut checked = Vec::new();
    for host in &opts.rock_hosts {
        let platform = rock_platform(host)?;
        for version in &opts.luas {
            let built = build_module(host, version, opts.release)?;
            let stage = dist.join("stage").join(format!("{platform}-lua{version}"));
            reset_dir(&stage.join("lib"))?;
            let lib_name = module_file(host);
            let lib = stage.join("lib").join(lib_name);
            let rock = dist.join(format!("lua{version}")).join(format!("luaffi-{VERSION}-1.{platform}.rock"));
            let label = format!("{} lib/{lib_name}", short(&rock));
            match host.os {
                hosts::Os::Linux => {
                    strip_debug(&built, &lib)?;
                    checked.push((label, check_elf(&lib)?.line()));
                }
                hosts::Os::Windows => {
                    dist_win::strip_debug(host, &built, &lib)?;
                    checked.push((label, dist_win::check_pe(&lib, host, Some(version))?));
                }
            }
            let spec = binary_rockspec(&rockspec, version, host.os)?;
            std::fs::write(stage.join(rockspec_name()), &spec).map_err(|e| format!("{}: {e}", stage.display()))?;
            let manifest = rock_manifest(&rockspec_name(), &md5(&stage.join(rockspec_name()))?, lib_name, &md5(&lib)?);
            std::fs::write(stage.join("rock_manifest"), manifest).map_err(|e| format!("{}: {e}", stage.display()))?;
            zip(&stage, &[rockspec_name(), "lib".into(), "rock_manifest".into()], &rock)?;
            rocks.push((platform, version.clone(), rock));
        }
    }

    for host in &opts.exe_hosts {
        let exe = host.build("luaffi", opts.release)?;
        let out = dist.join(host.name).join(exe.file_name().expect("an executable has a name"));
        std::fs::create_dir_all(out.parent().unwrap()).map_err(|e| format!("{}: {e}", out.display()))?;
        copy(&exe, &out)?;
        let needs = match host.os {
            hosts::Os::Linux => check_elf(&out)?.line(),
            hosts::Os::Windows => dist_win::check_pe(&out, host, None)?,
        };
        checked.push((short(&out), needs));
    }
    Ok(Dist { source_rock, rocks, checked })
}

/// One line per artifact, and what the binaries need.
pub fn summary_lines(dist: &Dist) -> Vec<String> {
    let mut lines = vec![format!("source rock: {}", dist.source_rock.display())];
    for (platform, version, rock) in &dist.rocks {
        lines.push(format!("rock {platform} Lua {version}: {}", rock.display()));
    }
    for (label, needs) in &dist.checked {
        lines.push(format!("{label}: {needs}"));
    }
    lines
}

/// luarocks' name of a host's platform (`luarocks pack` names binary rocks with it).
fn rock_platform(host: &hosts::Host) -> Result<&'static str, String> {
    match host.triple {
        "x86_64-unknown-linux-gnu" => Ok("linux-x86_64"),
        "i686-unknown-linux-gnu" => Ok("linux-x86"),
        other => dist_win::rock_platform(host).ok_or(format!("no rocks for {other}")),
    }
}

/// The module's file name in a rock for `host` (and in a luarocks tree): `ffi.so`, `ffi.dll`.
fn module_file(host: &hosts::Host) -> &'static str {
    match host.os {
        hosts::Os::Linux => "ffi.so",
        hosts::Os::Windows => "ffi.dll",
    }
}

/// The module for Lua `version` on `host`: [`module::build`] on the build machine (the
/// build the system-Lua tests share), otherwise the same cargo build with `--target`, in the
/// main target directory, where the per-host stage's build of `luaffi` for that target has
/// built the dependencies that don't depend on the Lua version. For Windows, `LUA_LIB_NAME`
/// is cleared: it would make mlua-sys link a named Lua library instead of importing the
/// standard Lua DLL of `version` ([`dist_win::lua_dll`]).
fn build_module(host: &hosts::Host, version: &str, release: bool) -> Result<PathBuf, String> {
    if host.is_build_machine() {
        return module::build(version, release);
    }
    let feature = format!("module,{}", module::lua_feature(version));
    let build_dir = module::target_dir();
    let mut cmd = sys::cargo();
    cmd.args(["build", "-p", "lua-adapter", "--lib", "--no-default-features", "--features", &feature])
        .args(["--target", host.triple])
        .env_remove("LUA_LIB_NAME");
    if release {
        cmd.arg("--release");
    }
    eprintln!("xtask: building the ffi module for Lua {version} on {}", host.name);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the module for Lua {version} on {} failed", host.name));
    }
    let file = match host.os {
        hosts::Os::Linux => "liblua_adapter.so",
        hosts::Os::Windows => "lua_adapter.dll",
    };
    Ok(build_dir.join(host.triple).join(if release { "release" } else { "debug" }).join(file))
}

/// The release archive of the working tree at `root`, written to `out`.
fn source_archive(root: &Path, out: &Path) -> Result<(), String> {
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !listed.status.success() {
        return Err(format!("`git ls-files` failed: {}", String::from_utf8_lossy(&listed.stderr)));
    }
    let files = archive_files(&String::from_utf8_lossy(&listed.stdout), |f| root.join(f).is_file());
    let list = dist_dir().join("stage").join("archive-files");
    std::fs::create_dir_all(list.parent().unwrap()).map_err(|e| format!("{}: {e}", list.display()))?;
    std::fs::write(&list, files.join("\0")).map_err(|e| format!("{}: {e}", list.display()))?;
    let prefix = format!("luaffi-{VERSION}/");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(out)
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
        .arg(format!("--transform=s,^,{prefix},"))
        .args(["--null", "-T"])
        .arg(&list)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar could not write {}", out.display()));
    }
    Ok(())
}

/// The files of the release archive: those of `git ls-files -z` output that `exists` (a
/// tracked file deleted in the working tree is left out), without the emulator fixtures.
fn archive_files(ls_files: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut files: Vec<String> = ls_files
        .split('\0')
        .filter(|f| !f.is_empty() && !f.starts_with("emu-harness/fixtures/") && exists(f))
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    files
}

/// `rock_manifest` of a binary rock holding the rockspec and `lib/<lib>` (`ffi.so`,
/// `ffi.dll`), as luarocks writes it (keys sorted).
pub fn rock_manifest(rockspec: &str, rockspec_md5: &str, lib: &str, lib_md5: &str) -> String {
    format!("rock_manifest = {{\n   lib = {{\n      [\"{lib}\"] = \"{lib_md5}\"\n   }},\n   [\"{rockspec}\"] = \"{rockspec_md5}\"\n}}\n")
}

/// The MD5 of a file, in hex (`md5sum`).
fn md5(path: &Path) -> Result<String, String> {
    let out = Command::new("md5sum").arg(path).output().map_err(|e| format!("cannot run md5sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(hex) if out.status.success() && hex.len() == 32 => Ok(hex.to_string()),
        _ => Err(format!("md5sum {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr))),
    }
}

/// Zips `entries` of `dir` (recursively, paths relative to `dir`) into a new `out`.
fn zip(dir: &Path, entries: &[String], out: &Path) -> Result<(), String> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let _ = std::fs::remove_file(out);
    let status = Command::new("zip")
        .args(["-q", "-r", "-X"])
        .arg(out)
        .args(entries)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run zip: {e} (Debian's zip)"))?;
    if !status.success() {
        return Err(format!("zip could not write {}", out.display()));
    }
    Ok(())
}

/// Copies `from` to `to` without its debug information (`strip --strip-debug`).
fn strip_debug(from: &Path, to: &Path) -> Result<(), String> {
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(to)
        .arg(from)
        .status()
        .map_err(|e| format!("cannot run strip: {e} (Debian's binutils)"))?;
    if !status.success() {
        return Err(format!("strip could not copy {} to {}", from.display(), to.display()));
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// Empties `dir` (creating it).
pub(crate) fn reset_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// What a Linux binary needs from the system.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfNeeds {
    /// Its `NEEDED` libraries.
    pub needed: Vec<String>,
    /// The newest `GLIBC_2.x` version it asks for, if any.
    pub glibc: Option<(u32, u32)>,
}

impl ElfNeeds {
    /// `needs glibc 2.34 (floor 2.34); links libc.so.6, libgcc_s.so.1`.
    pub fn line(&self) -> String {
        let glibc = match self.glibc {
            Some((a, b)) => format!("glibc {a}.{b}"),
            None => "no versioned glibc symbol".into(),
        };
        format!("needs {glibc} (floor {}.{}); links {}", GLIBC_FLOOR.0, GLIBC_FLOOR.1, self.needed.join(", "))
    }
}

/// Reads what the ELF file at `path` needs and checks it against [`ALLOWED_NEEDED`] and
/// [`GLIBC_FLOOR`].
pub fn check_elf(path: &Path) -> Result<ElfNeeds, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (needed, versions) = elf_needs(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    judge_needs(&needed, &versions).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `NEEDED` libraries of an ELF image, and every symbol version it needs (`GLIBC_2.34`,
/// `GCC_3.0`, ...).
pub fn elf_needs(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| format!("not an ELF file we can read: {e}"))?;
    let needed = elf.libraries.iter().map(|l| l.to_string()).collect();
    let mut versions = Vec::new();
    if let Some(verneed) = &elf.verneed {
        for file in verneed.iter() {
            for aux in file.iter() {
                let name = elf.dynstrtab.get_at(aux.vna_name).ok_or("a version name outside the string table")?;
                versions.push(name.to_string());
            }
        }
    }
    Ok((needed, versions))
}

/// Checks `needed` libraries and required symbol `versions` against [`ALLOWED_NEEDED`] and
/// [`GLIBC_FLOOR`]; the error names every offender.
pub fn judge_needs(needed: &[String], versions: &[String]) -> Result<ElfNeeds, String> {
    let mut problems = Vec::new();
    for lib in needed {
        if !ALLOWED_NEEDED.contains(&lib.as_str()) {
            problems.push(format!("links {lib}, which is not the C runtime ({})", ALLOWED_NEEDED.join(", ")));
        }
    }
    let mut glibc = None;
    for v in versions {
        let Some(number) = v.strip_prefix("GLIBC_") else { continue };
        if number == "PRIVATE" {
            problems.push("needs GLIBC_PRIVATE symbols, which only glibc's own libraries may use".into());
            continue;
        }
        let parsed = parse_version(number).ok_or(format!("unreadable glibc version `{v}`"))?;
        glibc = glibc.max(Some(parsed));
    }
    if let Some(g) = glibc.filter(|g| *g > GLIBC_FLOOR) {
        problems.push(format!(
            "needs GLIBC_{}.{}, above the documented floor {}.{} (xtask/src/dist.rs GLIBC_FLOOR, README)",
            g.0, g.1, GLIBC_FLOOR.0, GLIBC_FLOOR.1
        ));
    }
    if problems.is_empty() {
        Ok(ElfNeeds { needed: needed.to_vec(), glibc })
    } else {
        Err(problems.join("; "))
    }
}

/// `2.34` (or `2.3.4`: major and minor only).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// One line of the rocks stage: what was installed and run, passed or not.
pub struct RockLine {
    pub passed: bool,
    pub text: String,
}

/// The rocks stage of `cargo xtask test-all-abis`: [`make`] with the debug builds (the tests'
/// own), the rocks of every host (Linux and Windows) and no executables (the per-host stage
/// builds them), then [`test_rocks`]. One line per rock; a failure to build is one failed line.
pub fn test_stage() -> Vec<RockLine> {
    let rock_hosts = hosts::HOSTS.iter().collect();
    let luas = ROCK_LUAS.iter().map(|v| v.to_string()).collect();
    let opts = Options { release: false, luas, rock_hosts, exe_hosts: Vec::new() };
    match make(&opts) {
        Ok(dist) => {
            let mut lines: Vec<RockLine> = dist
                .checked
                .iter()
                .map(|(label, needs)| RockLine { passed: true, text: format!("{label}: {needs}") })
                .collect();
            lines.extend(test_rocks(&dist));
            lines
        }
        Err(e) => vec![RockLine { passed: false, text: format!("cargo xtask dist --dev: FAILED: {e}") }],
    }
}

/// `path` relative to the target directory, for lines.
fn short(path: &Path) -> String {
    path.strip_prefix(module::target_dir()).unwrap_or(path).display().to_string()
}

/// Lints the versioned rockspec, installs each `linux-x86_64` binary rock of `dist` into a
/// fresh tree with cargo hidden from `PATH` (and refused by a tree of another Lua), unpacks
/// each `linux-x86` one, tests each Windows one under Wine ([`dist_win::test_rock`]), installs
/// the source rock into a fresh tree per Lua with cargo, and runs `smoke.lua` with each.
pub fn test_rocks(dist: &Dist) -> Vec<RockLine> {
    let mut lines = Vec::new();
    let no_cargo = match path_without_cargo() {
        Ok(p) => p,
        Err(e) => return vec![RockLine { passed: false, text: format!("rocks: FAILED: {e}") }],
    };
    let lint = Command::new("luarocks").arg("lint").arg(rockspec_name()).current_dir(sys::workspace_root()).output();
    lines.push(match lint {
        Ok(out) if out.status.success() => {
            RockLine { passed: true, text: format!("luarocks lint {}: ok", rockspec_name()) }
        }
        Ok(out) => RockLine {
            passed: false,
            text: format!("luarocks lint {}: FAILED:\n{}", rockspec_name(), output_text(&out)),
        },
        Err(e) => RockLine { passed: false, text: format!("luarocks lint: FAILED: cannot run luarocks: {e}") },
    });
    let test_dir = dist_dir().join("test");
    for (platform, version, rock) in dist.rocks.iter().filter(|(p, _, _)| *p == "linux-x86_64") {
        let label = format!("rock {} under lua{version}", short(rock));
        let result = test_binary_rock(rock, version, &test_dir.join(format!("{platform}-lua{version}")), &no_cargo);
        lines.push(match result {
            Ok(said) => RockLine { passed: true, text: format!("{label}: installed without cargo; {said}") },
            Err(e) => RockLine { passed: false, text: format!("{label}: FAILED: {e}") },
        });
    }
    for (platform, version, rock) in dist.rocks.iter().filter(|(p, _, _)| *p == "linux-x86") {
        let label = format!("rock {} under an i386 lua{version}", short(rock));
        let result = test_unpacked_rock(rock, version, &test_dir.join(format!("{platform}-lua{version}")));
        lines.push(match result {
            Ok(said) => RockLine { passed: true, text: format!("{label}: unpacked, rock_manifest checked; {said}") },
            Err(e) => RockLine { passed: false, text: format!("{label}: FAILED: {e}") },
        });
    }
    let windows: Vec<_> = dist.rocks.iter().filter(|(p, _, _)| p.starts_with("win32-")).collect();
    let wine = if windows.is_empty() { Ok(()) } else { hosts::ensure_wine_prefix() };
    for (platform, version, rock) in windows {
        let label = format!("rock {} under a Windows lua{version} (wine)", short(rock));
        let host = hosts::HOSTS.iter().find(|h| dist_win::rock_platform(h) == Some(platform));
        let result = match (host, &wine) {
            (_, Err(e)) => Err(e.clone()),
            (None, _) => Err(format!("no host makes {platform} rocks")),
            (Some(host), Ok(())) => {
                dist_win::test_rock(host, rock, version, &test_dir.join(format!("{platform}-lua{version}")))
            }
        };
        lines.push(match result {
            Ok(said) => {
                RockLine { passed: true, text: format!("{label}: unpacked into a tree, rock_manifest checked; {said}") }
            }
            Err(e) => RockLine { passed: false, text: format!("{label}: FAILED: {e}") },
        });
    }
    let versions: Vec<&String> =
        dist.rocks.iter().map(|(_, v, _)| v).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for version in versions {
        let label = format!("rock {} under lua{version}", short(&dist.source_rock));
        let result = test_source_rock(&dist.source_rock, version, &test_dir.join(format!("src-lua{version}")));
        lines.push(match result {
            Ok(said) => RockLine { passed: true, text: format!("{label}: built with cargo; {said}") },
            Err(e) => RockLine { passed: false, text: format!("{label}: FAILED: {e}") },
        });
    }
    lines
}

/// `PATH` without its directories that hold a `cargo`; an error if the shell still finds one.
fn path_without_cargo() -> Result<String, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path).filter(|d| !d.join("cargo").exists()).collect();
    let joined = std::env::join_paths(&kept).map_err(|e| format!("cannot join PATH: {e}"))?;
    let joined = joined.to_string_lossy().into_owned();
    let found = Command::new("sh")
        .args(["-c", "command -v cargo"])
        .env("PATH", &joined)
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if found.status.success() {
        return Err(format!(
            "cargo is still found without its directories in PATH: {}",
            String::from_utf8_lossy(&found.stdout).trim()
        ));
    }
    Ok(joined)
}

/// `luarocks --lua-version <version> --tree <tree> <args>`, in a fresh `tree`.
fn luarocks(version: &str, tree: &Path) -> Command {
    let _ = std::fs::remove_dir_all(tree);
    let mut cmd = Command::new("luarocks");
    cmd.args(["--lua-version", version, "--tree"]).arg(tree);
    cmd
}

fn output_text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn test_binary_rock(rock: &Path, version: &str, tree: &Path, path: &str) -> Result<String, String> {
    let out = luarocks(version, tree)
        .arg("install")
        .arg(rock)
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot run luarocks: {e}"))?;
    if !out.status.success() {
        return Err(format!("luarocks install failed:\n{}", output_text(&out)));
    }
    let smoke = smoke(version, tree, path)?;
    // Another Lua's tree must refuse it: the rock's rockspec asks for `lua ~> <version>`.
    let other = if version == "5.4" { "5.3" } else { "5.4" };
    let mut refuse_tree = tree.as_os_str().to_owned();
    refuse_tree.push("-refused");
    let refuse_tree = PathBuf::from(refuse_tree);
    let out = luarocks(other, &refuse_tree)
        .arg("install")
        .arg(rock)
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot run luarocks: {e}"))?;
    if out.status.success() || !output_text(&out).contains(&format!("lua ~> {version}")) {
        return Err(format!("a Lua {other} tree did not refuse it for its `lua ~> {version}`:\n{}", output_text(&out)));
    }
    Ok(format!("{smoke}; refused by a Lua {other} tree"))
}

fn test_source_rock(rock: &Path, version: &str, tree: &Path) -> Result<String, String> {
    let out = luarocks(version, tree)
        .arg("install")
        .arg(rock)
        // The debug profile, in a target directory of its own shared by the versions: the
        // test proves the rock builds, not what a release build costs.
        .env("LUAFFI_CARGO_PROFILE", "dev")
        .env("CARGO_TARGET_DIR", dist_dir().join("src-build"))
        // Everything Cargo.lock names for lua-adapter is in cargo's cache after the tests.
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .map_err(|e| format!("cannot run luarocks: {e}"))?;
    if !out.status.success() {
        return Err(format!("luarocks install failed:\n{}", output_text(&out)));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    smoke(version, tree, &path)
}

/// Runs the suite's `smoke.lua` with `lua<version>` and the `ffi.so` installed in `tree`,
/// after checking it is the file the rock's `rock_manifest` names.
fn smoke(version: &str, tree: &Path, path: &str) -> Result<String, String> {
    let lib = tree.join("lib").join("lua").join(version);
    let so = lib.join("ffi.so");
    if !so.is_file() {
        return Err(format!("luarocks installed no {}", so.display()));
    }
    let manifest = tree.join(format!("lib/luarocks/rocks-{version}/luaffi/{VERSION}-1/rock_manifest"));
    check_manifest(&manifest, "ffi.so", &so)?;
    smoke_with(Path::new(&format!("lua{version}")), &lib, path)
}

/// Checks that `file` has the MD5 `rock_manifest` at `manifest` gives `name`.
pub(crate) fn check_manifest(manifest: &Path, name: &str, file: &Path) -> Result<(), String> {
    let text = read(manifest)?;
    let want = manifest_md5(&text, name).ok_or(format!("{} names no {name}", manifest.display()))?;
    let got = md5(file)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("{} has MD5 {got}, its rock_manifest says {want}", file.display()))
    }
}

/// The MD5 a `rock_manifest` gives the file `name` (`["name"] = "<32 hex digits>"`).
fn manifest_md5(manifest: &str, name: &str) -> Option<String> {
    let key = format!("[\"{name}\"] = \"");
    let start = manifest.find(&key)? + key.len();
    let hex = manifest.get(start..start + 32)?;
    (hex.chars().all(|c| c.is_ascii_hexdigit()) && manifest[start + 32..].starts_with('"')).then(|| hex.to_string())
}

/// Runs the suite's `smoke.lua` with the interpreter `lua`, C modules found in `lib` only.
fn smoke_with(lua: &Path, lib: &Path, path: &str) -> Result<String, String> {
    let mut cmd = Command::new(lua);
    module::isolate_lua_env(&mut cmd, &lua.file_name().unwrap_or_default().to_string_lossy());
    let out = cmd
        .arg("smoke.lua")
        .current_dir(sys::workspace_root().join("lua-adapter").join("tests").join("lua"))
        .env("PATH", path)
        .env("LUA_PATH", "./?.lua")
        .env("LUA_CPATH", lib.join("?.so"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", lua.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = hosts::Run {
        success: out.status.success(),
        status: format!("{}", out.status),
        stdout: stdout.clone(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        seconds: 0.0,
    };
    let outcome = hosts::judge_script("smoke.lua", run);
    match outcome.failure {
        None => Ok(format!("smoke.lua: {} assertions passed", outcome.passed)),
        Some(why) => Err(format!("smoke.lua: {why}\n{stdout}{}", outcome.run.stderr)),
    }
}

/// Unpacks a `linux-x86` rock into a fresh `dir`, checks its files against its
/// `rock_manifest`, and runs `smoke.lua` with an i386 Lua `version` ([`i386_lua`]) loading
/// its `ffi.so`. (Not through luarocks: this machine's luarocks is x86-64's and refuses the
/// platform, and Debian's x86-64 and i386 Lua packages cannot be installed side by side.)
fn test_unpacked_rock(rock: &Path, version: &str, dir: &Path) -> Result<String, String> {
    let lua = i386_lua(version)?;
    reset_dir(dir)?;
    unzip(rock, dir)?;
    let manifest = dir.join("rock_manifest");
    check_manifest(&manifest, "ffi.so", &dir.join("lib").join("ffi.so"))?;
    check_manifest(&manifest, &rockspec_name(), &dir.join(rockspec_name()))?;
    let path = std::env::var("PATH").unwrap_or_default();
    smoke_with(&lua, &dir.join("lib"), &path)
}

/// Unzips `zip` into `dir`.
pub(crate) fn unzip(zip: &Path, dir: &Path) -> Result<(), String> {
    let out = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(zip)
        .arg("-d")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run unzip: {e} (Debian's unzip)"))?;
    if !out.status.success() {
        return Err(format!("unzip {} failed:\n{}", zip.display(), output_text(&out)));
    }
    Ok(())
}

/// The interpreter of [`i386_lua`] and of the Windows Lua ([`dist_win::windows_lua`]): Lua's own `lua.c` is not in the sources mlua vendors, and
/// the smoke test needs only a state with the standard libraries running one file.
pub(crate) const MINI_LUA: &str = r#"/* Written by cargo xtask dist (xtask/src/dist.rs): run one Lua file. */
#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    if (L == NULL || argc != 2) return 2;
    luaL_openlibs(L);
    if (luaL_dofile(L, argv[1]) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}
"#;

/// An i386 interpreter of Lua `version` (`target/dist/lua-i386/lua-src-<v>/lua5.X`), compiled with
/// `cc -m32` from the Lua sources of the `lua-src` crate (the one mlua's `vendored` feature
/// builds, in cargo's registry after any build of `luaffi`) and [`MINI_LUA`], exporting Lua's
/// C API to the modules it loads (`-Wl,-E`), as Debian's `lua5.X` does.
fn i386_lua(version: &str) -> Result<PathBuf, String> {
    let src = lua_src_dir(version)?;
    // One directory per lua-src release: a newer one in Cargo.lock builds anew.
    let dir = dist_dir().join("lua-i386").join(src.parent().and_then(Path::file_name).unwrap_or_default());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exe = dir.join(format!("lua{version}"));
    if exe.is_file() {
        return Ok(exe);
    }
    let main = dir.join("mini_lua.c");
    std::fs::write(&main, MINI_LUA).map_err(|e| format!("{}: {e}", main.display()))?;
    let sources = lua_library_sources(&src)?;
    let tmp = exe.with_extension("tmp");
    let out = Command::new("cc")
        .args(["-m32", "-O1", "-DLUA_USE_POSIX", "-DLUA_USE_DLOPEN", "-DLUA_COMPAT_ALL", "-DLUA_COMPAT_5_2"])
        .arg("-I")
        .arg(&src)
        .arg("-o")
        .arg(&tmp)
        .arg(&main)
        .args(&sources)
        .args(["-Wl,-E", "-ldl", "-lm"])
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !out.status.success() {
        return Err(format!("cc -m32 could not build an i386 Lua {version} (gcc-multilib):\n{}", output_text(&out)));
    }
    std::fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(exe)
}

/// `lua-5.X.Y/` of the `lua-src` version Cargo.lock names, in cargo's registry.
pub(crate) fn lua_src_dir(version: &str) -> Result<PathBuf, String> {
    let lock = read(&sys::workspace_root().join("Cargo.lock"))?;
    let crate_version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"lua-src\""))
        .and_then(|p| p.split("version = \"").nth(1)?.split('"').next())
        .ok_or("Cargo.lock names no lua-src")?
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let registry = cargo_home.join("registry").join("src");
    let entries = std::fs::read_dir(&registry).map_err(|e| format!("{}: {e}", registry.display()))?;
    for index in entries.flatten() {
        let krate = index.path().join(format!("lua-src-{crate_version}"));
        let Ok(dirs) = std::fs::read_dir(&krate) else { continue };
        for d in dirs.flatten() {
            if d.file_name().to_string_lossy().starts_with(&format!("lua-{version}.")) {
                return Ok(d.path());
            }
        }
    }
    Err(format!("no lua-src-{crate_version}/lua-{version}.* in {} (build luaffi once to fetch it)", registry.display()))
}

/// The C files of a Lua source directory (lua-src's `lua-5.X.Y/`) that make its library:
/// all but the interpreters and the one-file build, sorted.
pub fn lua_library_sources(src: &Path) -> Result<Vec<PathBuf>, String> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .filter(|p| {
            !matches!(p.file_name().and_then(|n| n.to_str()), Some("lua.c" | "luac.c" | "print.c" | "onelua.c"))
        })
        .collect();
    sources.sort();
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_versioned_rockspec_is_this_release() {
        let text = read(&sys::workspace_root().join(rockspec_name())).unwrap();
        check_rockspec(&text).unwrap();
        // The same build as the scm rockspec: only the header comment, version and source differ.
        let scm = read(&sys::workspace_root().join("luaffi-scm-1.rockspec")).unwrap();
        let from = |s: &str| s[s.find("description = {").unwrap()..].to_string();
        assert_eq!(from(&text), from(&scm));
    }

    #[test]
    fn a_rockspec_of_another_version_is_caught() {
        let text = read(&sys::workspace_root().join(rockspec_name())).unwrap();
        let wrong = text.replace(&format!("version = \"{VERSION}-1\""), "version = \"9.9.9-1\"");
        assert!(check_rockspec(&wrong).unwrap_err().contains(&format!("version = \\\"{VERSION}-1\\\"")));
        let wrong = text.replace(&archive_name(), "luaffi-9.9.9.tar.gz");
        assert!(check_rockspec(&wrong).is_err());
    }

    #[test]
    fn a_binary_rock_asks_for_its_lua() {
        let spec = "dependencies = {\n   \"lua >= 5.1, < 5.6\",\n}\n";
        assert_eq!(
            binary_rockspec(spec, "5.2", hosts::Os::Linux).unwrap(),
            "dependencies = {\n   \"lua ~> 5.2\",\n}\n"
        );
        assert!(binary_rockspec("dependencies = { \"lua >= 5.1\" }", "5.2", hosts::Os::Linux).is_err());
    }

    #[test]
    fn a_windows_rock_says_windows() {
        let text = read(&sys::workspace_root().join(rockspec_name())).unwrap();
        let spec = binary_rockspec(&text, "5.3", hosts::Os::Windows).unwrap();
        assert!(spec.contains(WINDOWS_PLATFORMS) && !spec.contains(LINUX_PLATFORMS), "{spec}");
        assert!(spec.contains("\"lua ~> 5.3\","));
        // A rockspec whose platforms it cannot replace is refused, not shipped saying linux.
        let other = text.replace(LINUX_PLATFORMS, "supported_platforms = { \"unix\" }");
        assert!(binary_rockspec(&other, "5.3", hosts::Os::Windows).unwrap_err().contains("supported_platforms"));
    }

    #[test]
    fn the_rock_manifest_is_luarocks_own_format() {
        // What `luarocks pack` of an installed rock wrote (luarocks 3.8), keys sorted.
        let want = "rock_manifest = {\n   lib = {\n      [\"ffi.so\"] = \"401b30e3b8b5d629635a5c613cdb7919\"\n   },\n   [\"luaffi-0.1.0-1.rockspec\"] = \"f0bea282d293b7b3e616d9020a28f0f0\"\n}\n";
        let got = rock_manifest(
            "luaffi-0.1.0-1.rockspec",
            "f0bea282d293b7b3e616d9020a28f0f0",
            "ffi.so",
            "401b30e3b8b5d629635a5c613cdb7919",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn rock_manifest_md5s_are_read_back() {
        let m = rock_manifest("luaffi-0.1.0-1.rockspec", &"a".repeat(32), "ffi.so", &"0123456789abcdef".repeat(2));
        assert_eq!(manifest_md5(&m, "ffi.so").as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(manifest_md5(&m, "luaffi-0.1.0-1.rockspec"), Some("a".repeat(32)));
        assert_eq!(manifest_md5(&m, "ffi.dll"), None);
        assert_eq!(manifest_md5("[\"ffi.so\"] = \"abc\"", "ffi.so"), None);
    }

    #[test]
    fn a_file_that_is_not_the_manifests_is_caught() {
        let dir = dist_dir().join("test").join("manifest-unit");
        reset_dir(&dir).unwrap();
        std::fs::write(dir.join("ffi.so"), "x\n").unwrap();
        // md5("x\n"), what `luarocks pack` wrote for this file.
        let right = rock_manifest("a.rockspec", &"0".repeat(32), "ffi.so", "401b30e3b8b5d629635a5c613cdb7919");
        std::fs::write(dir.join("rock_manifest"), right).unwrap();
        check_manifest(&dir.join("rock_manifest"), "ffi.so", &dir.join("ffi.so")).unwrap();
        std::fs::write(dir.join("ffi.so"), "y\n").unwrap();
        let e = check_manifest(&dir.join("rock_manifest"), "ffi.so", &dir.join("ffi.so")).unwrap_err();
        assert!(e.contains("its rock_manifest says 401b30e3b8b5d629635a5c613cdb7919"), "{e}");
    }

    #[test]
    fn the_archive_leaves_out_fixtures_and_deleted_files() {
        let listed = "Cargo.toml\0emu-harness/fixtures/x64-sysv/a.o\0gone.rs\0lua-adapter/src/lib.rs\0Cargo.toml\0";
        let files = archive_files(listed, |f| f != "gone.rs");
        assert_eq!(files, ["Cargo.toml", "lua-adapter/src/lib.rs"]);
    }

    #[test]
    fn the_runtime_and_the_floor_pass() {
        let needs = judge_needs(
            &strings(&["libgcc_s.so.1", "libc.so.6"]),
            &strings(&["GCC_3.0", "GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.3"]),
        )
        .unwrap();
        assert_eq!(needs.glibc, Some((2, 34)));
    }

    #[test]
    fn a_glibc_above_the_floor_is_caught() {
        let above = format!("GLIBC_{}.{}", GLIBC_FLOOR.0, GLIBC_FLOOR.1 + 1);
        let e = judge_needs(&strings(&["libc.so.6"]), &strings(&["GLIBC_2.2.5", &above])).unwrap_err();
        assert!(e.contains(&format!("needs {above}, above the documented floor")), "{e}");
        assert!(judge_needs(&[], &strings(&["GLIBC_PRIVATE"])).is_err());
    }

    #[test]
    fn a_library_beyond_the_runtime_is_caught() {
        let e = judge_needs(&strings(&["libc.so.6", "liblua5.4.so.0"]), &[]).unwrap_err();
        assert!(e.contains("links liblua5.4.so.0"), "{e}");
    }

    #[test]
    fn a_real_elf_is_read() {
        // This test program: linked by this machine's toolchain against glibc.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let (needed, versions) = elf_needs(&bytes).unwrap();
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        assert!(versions.iter().any(|v| v.starts_with("GLIBC_2.")), "{versions:?}");
        assert!(elf_needs(b"not an elf").is_err());
    }

    #[test]
    fn cargo_is_hidden() {
        let path = path_without_cargo().unwrap();
        assert!(!std::env::split_paths(&path).any(|d| d.join("cargo").exists()), "{path}");
    }
}
