//! The Windows binary rocks of `cargo xtask dist` (issue 20): `win32-x86_64` and `win32-x86`,
//! one per Lua version, each holding `lib/ffi.dll`, and their proof under Wine.
//!
//! A Windows module must name the DLL it takes Lua's C API from. mlua-sys (0.13) in `module`
//! mode links that API with `raw-dylib` against `lua51.dll`, `lua52.dll`, `lua53.dll` or
//! `lua54.dll` ([`lua_dll`]), so the build needs no import library, only mingw-w64's
//! `dlltool` (with its gcc); setting `LUA_LIB_NAME` would switch that off, so the build
//! clears it. Those are the names of LuaBinaries' DLLs for 5.2-5.4 (`lua54.dll`, ...) and of
//! the proxy it ships beside `lua5.1.dll` for 5.1 (README, "Windows").
//!
//! Each `ffi.dll` is checked ([`check_pe`]): its machine is the rock's, it exports
//! `luaopen_ffi`, and it imports its own Lua's DLL and otherwise only [`ALLOWED_IMPORTS`],
//! DLLs every Windows 10 and later has. `luaffi.exe` (Lua compiled in) must import no Lua DLL.
//!
//! The test ([`test_rock`]) unpacks a rock into a fresh directory, checks its files against
//! its `rock_manifest`, lays `ffi.dll` out as luarocks installs it on Windows
//! (`lib/lua/5.X/ffi.dll`, the rock's metadata under `lib/luarocks/rocks-5.X/`), and runs the
//! suite's `smoke.lua` under Wine with a Windows Lua of that version and architecture built
//! here from the `lua-src` crate's sources ([`windows_lua`]: `lua5X.dll` and a `lua.exe`
//! using it). It then runs the same tree with another Lua version's interpreter, which must
//! fail to load the module because its Lua DLL is missing.

use crate::{dist, hosts, module, sys};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The DLLs a Windows binary of the release may import besides its Lua's, with what imports
/// them (Rust's standard library on `*-windows-gnu`); every Windows 10 and later, and Wine,
/// has them (Wine before 9.0 lacks `bcryptprimitives.dll`: see [`hosts::Host::write_prng_shim`]).
pub const ALLOWED_IMPORTS: &[&str] = &[
    // The Win32 API: memory (the code arena), libraries (ffi.C, ffi.load), threads.
    "kernel32.dll",
    // std: NtCreateFile, RtlNtStatusToDosError, NtWriteFile.
    "ntdll.dll",
    // mingw-w64's C runtime, the one Lua builds with mingw-w64 use too.
    "msvcrt.dll",
    // std's locks: WaitOnAddress / WakeByAddressSingle (Windows 8 and later).
    "api-ms-win-core-synch-l1-2-0.dll",
    // std's random seeds: ProcessPrng (Windows 10 and later).
    "bcryptprimitives.dll",
    // std::env::home_dir: GetUserProfileDirectoryW.
    "userenv.dll",
    // std::net, linked by std whether used or not.
    "ws2_32.dll",
];

/// The DLL a module for Lua `version` takes Lua's C API from: `lua54.dll` for 5.4.
pub fn lua_dll(version: &str) -> String {
    format!("lua{}.dll", version.replace('.', ""))
}

/// luarocks' platform name (`luarocks pack` names binary rocks with it) of a Windows host.
pub fn rock_platform(host: &hosts::Host) -> Option<&'static str> {
    match host.triple {
        "x86_64-pc-windows-gnu" => Some("win32-x86_64"),
        "i686-pc-windows-gnu" => Some("win32-x86"),
        _ => None,
    }
}

/// What a PE file says about itself: the parts [`judge_pe`] checks.
#[derive(Debug, Default)]
pub struct PeFacts {
    /// PE32+ (x86-64) rather than PE32 (x86).
    pub is_64: bool,
    /// The DLLs it imports, as the import table spells them.
    pub imports: Vec<String>,
    /// The names it exports.
    pub exports: Vec<String>,
}

/// Reads the [`PeFacts`] of a PE image.
pub fn pe_facts(bytes: &[u8]) -> Result<PeFacts, String> {
    let pe = goblin::pe::PE::parse(bytes).map_err(|e| format!("not a PE file we can read: {e}"))?;
    Ok(PeFacts {
        is_64: pe.is_64,
        imports: pe.libraries.iter().map(|l| l.to_string()).collect(),
        exports: pe.exports.iter().filter_map(|e| e.name.map(str::to_string)).collect(),
    })
}

/// Checks a Windows binary: a module for Lua `lua` (`Some("5.4")`) or the `luaffi` command
/// (`None`), for a 64-bit host or not (`is_64`). Returns its summary line, or every problem.
pub fn judge_pe(facts: &PeFacts, is_64: bool, lua: Option<&str>) -> Result<String, String> {
    let mut problems = Vec::new();
    if facts.is_64 != is_64 {
        let (is, want) = if is_64 { ("PE32 (x86)", "x86-64") } else { ("PE32+ (x86-64)", "x86") };
        problems.push(format!("is {is}, not for {want}"));
    }
    let want_lua = lua.map(lua_dll);
    let mut system = Vec::new();
    let mut lua_found = false;
    for dll in &facts.imports {
        let lower = dll.to_ascii_lowercase();
        if Some(&lower) == want_lua.as_ref() {
            lua_found = true;
        } else if ALLOWED_IMPORTS.contains(&lower.as_str()) {
            if !system.contains(&lower) {
                system.push(lower);
            }
        } else {
            let what = match &want_lua {
                Some(l) => format!("neither its Lua's {l} nor"),
                None => "not".to_string(),
            };
            problems.push(format!("imports {dll}, {what} a DLL every Windows has ({})", ALLOWED_IMPORTS.join(", ")));
        }
    }
    if let Some(l) = &want_lua {
        if !lua_found {
            problems.push(format!("imports no {l}: it would not use the Lua that loads it"));
        }
        if !facts.exports.iter().any(|e| e == "luaopen_ffi") {
            problems.push("exports no luaopen_ffi: `require \"ffi\"` could not open it".into());
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(match want_lua {
        Some(l) => format!("imports {l}; system DLLs {}", system.join(", ")),
        None => format!("imports no Lua DLL; system DLLs {}", system.join(", ")),
    })
}

/// Reads and judges the Windows binary at `path` ([`judge_pe`]).
pub fn check_pe(path: &Path, host: &hosts::Host, lua: Option<&str>) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let facts = pe_facts(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    judge_pe(&facts, host.triple.starts_with("x86_64"), lua).map_err(|e| format!("{}: {e}", path.display()))
}

/// `built` copied to `to` without its debug information, by the host's mingw-w64 `strip`.
pub fn strip_debug(host: &hosts::Host, built: &Path, to: &Path) -> Result<(), String> {
    let mingw = host.mingw().ok_or(format!("{} is no mingw-w64 host", host.name))?;
    let strip = format!("{mingw}-strip");
    let status = Command::new(&strip)
        .arg("--strip-debug")
        .arg("-o")
        .arg(to)
        .arg(built)
        .status()
        .map_err(|e| format!("cannot run {strip}: {e} (Debian's binutils-mingw-w64)"))?;
    if !status.success() {
        return Err(format!("{strip} could not copy {} to {}", built.display(), to.display()));
    }
    Ok(())
}

/// A Windows Lua `version` for `host`, in `target/dist/lua-win/lua-src-<v>/<host>/lua5.X/`:
/// `lua5X.dll` built from the `lua-src` crate's sources with mingw-w64 (`LUA_BUILD_AS_DLL`,
/// as Lua's own `make mingw` builds it, under the name [`lua_dll`]), a `lua.exe` using it (the
/// `lua.c` of Lua is not in those sources: [`dist::MINI_LUA`] runs one file), and the
/// `bcryptprimitives.dll` shim this Wine needs (real Windows 10 and later has the DLL).
/// Built once per `lua-src` release.
pub fn windows_lua(host: &hosts::Host, version: &str) -> Result<PathBuf, String> {
    let src = dist::lua_src_dir(version)?;
    let release = src.parent().and_then(Path::file_name).unwrap_or_default();
    let dir = dist::dist_dir().join("lua-win").join(release).join(host.name).join(format!("lua{version}"));
    let exe = dir.join("lua.exe");
    if exe.is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let sources = dist::lua_library_sources(&src)?;
    let flags = ["-O1", "-DLUA_BUILD_AS_DLL", "-DLUA_COMPAT_ALL", "-DLUA_COMPAT_5_2", "-DLUA_COMPAT_5_3"];
    // The DLL's own name is the one the programs linked against it import.
    let dll = dir.join(lua_dll(version));
    let mut cc = host.c_compiler();
    cc.args(flags).arg("-shared").arg("-I").arg(&src).arg("-o").arg(&dll).args(&sources);
    hosts::compile(&mut cc, &dll)?;
    let main = dir.join("mini_lua.c");
    std::fs::write(&main, dist::MINI_LUA).map_err(|e| format!("{}: {e}", main.display()))?;
    let tmp = dir.join("lua.tmp.exe");
    let mut cc = host.c_compiler();
    cc.args(flags).arg("-I").arg(&src).arg("-o").arg(&tmp).arg(&main).arg(&dll);
    hosts::compile(&mut cc, &tmp)?;
    host.write_prng_shim(&dir)?;
    // lua.exe last: its presence says the directory is complete.
    std::fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(dir)
}

/// Unpacks the Windows rock `rock` (for Lua `version`) into a fresh `dir`, checks it against
/// its `rock_manifest`, installs `ffi.dll` into `dir/tree` as luarocks does on Windows, and
/// runs `smoke.lua` under Wine with a Windows Lua `version` of the host's architecture; then
/// checks that another Lua's interpreter refuses that `ffi.dll` ([`wrong_lua_refuses`]).
pub fn test_rock(host: &hosts::Host, rock: &Path, version: &str, dir: &Path) -> Result<String, String> {
    dist::reset_dir(dir)?;
    let unpacked = dir.join("rock");
    dist::unzip(rock, &unpacked)?;
    let manifest = unpacked.join("rock_manifest");
    let spec_name = dist::rockspec_name();
    dist::check_manifest(&manifest, "ffi.dll", &unpacked.join("lib").join("ffi.dll"))?;
    dist::check_manifest(&manifest, &spec_name, &unpacked.join(&spec_name))?;
    let spec = dist::read(&unpacked.join(&spec_name))?;
    for want in [format!("\"lua ~> {version}\""), dist::WINDOWS_PLATFORMS.to_string()] {
        if !spec.contains(&want) {
            return Err(format!("its rockspec does not say {want}"));
        }
    }
    // luarocks' Windows tree: the module under lib/lua/5.X, the rock's metadata beside.
    let tree = dir.join("tree");
    let lib = tree.join("lib").join("lua").join(version);
    let meta = tree.join(format!("lib/luarocks/rocks-{version}/luaffi/{}-1", dist::VERSION));
    for d in [&lib, &meta] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    dist::copy(&unpacked.join("lib").join("ffi.dll"), &lib.join("ffi.dll"))?;
    dist::copy(&manifest, &meta.join("rock_manifest"))?;
    dist::copy(&unpacked.join(&spec_name), &meta.join(&spec_name))?;
    dist::check_manifest(&meta.join("rock_manifest"), "ffi.dll", &lib.join("ffi.dll"))?;

    let run = run_smoke(host, version, &lib, &dir.join("logs").join(log_name("smoke", version)))?;
    let outcome = hosts::judge_script("smoke.lua", run);
    if let Some(why) = outcome.failure {
        return Err(format!("smoke.lua: {why}\n{}{}", outcome.run.stdout, outcome.run.stderr));
    }
    let other = if version == "5.4" { "5.3" } else { "5.4" };
    let refused = wrong_lua_refuses(host, version, other, &lib, dir)?;
    Ok(format!("smoke.lua: {} assertions passed; {refused}", outcome.passed))
}

/// The base name of a run's logs (`smoke-lua54`; `.out` and `.err` are added): no dot, which
/// the extension would replace.
fn log_name(what: &str, lua: &str) -> String {
    format!("{what}-lua{}", lua.replace('.', ""))
}

/// Runs `smoke.lua` under Wine with the Windows Lua `lua` ([`windows_lua`]), C modules found
/// in `lib` only, its output logged at `log`.
fn run_smoke(host: &hosts::Host, lua: &str, lib: &Path, log: &Path) -> Result<hosts::Run, String> {
    let lua_dir = windows_lua(host, lua)?;
    let mut cmd = host.command(&lua_dir.join("lua.exe"));
    module::isolate_lua_env(&mut cmd, &format!("lua{lua}"));
    cmd.current_dir(sys::workspace_root().join("lua-adapter").join("tests").join("lua"))
        .env("LUA_PATH", "./?.lua")
        .env("LUA_CPATH", format!("{}\\?.dll", host.host_path(lib)))
        // Wine's loader names the DLL it could not find (`err:module:import_dll`).
        .env("WINEDEBUG", "-all,err+module");
    Ok(hosts::run_logged(cmd, "smoke.lua", log))
}

/// Runs `smoke.lua` with Lua `other`'s interpreter and the `ffi.dll` for Lua `version` in
/// `lib`: it must fail to load it, Wine's loader saying that `version`'s Lua DLL is missing.
fn wrong_lua_refuses(host: &hosts::Host, version: &str, other: &str, lib: &Path, dir: &Path) -> Result<String, String> {
    let run = run_smoke(host, other, lib, &dir.join("logs").join(log_name("wrong", other)))?;
    judge_refusal(&run, version).map(|why| format!("refused by a Lua {other}: {why}"))
}

/// A run with the wrong Lua passed when it failed before `smoke.lua` ran, Lua saying it could
/// not load `ffi` and Wine's loader naming Lua `version`'s missing DLL; returns what it saw.
fn judge_refusal(run: &hosts::Run, version: &str) -> Result<String, String> {
    let dll = lua_dll(version);
    let wine_said = run
        .stderr
        .lines()
        .any(|l| l.contains(&format!("Library {dll} (which is needed by")) && l.contains("ffi.dll\") not found"));
    match wine_said {
        true if !run.success && run.stderr.contains("error loading module 'ffi'") => {
            Ok(format!("`require \"ffi\"` failed, Wine's loader found no {dll} (which ffi.dll imports)"))
        }
        _ => Err(format!(
            "another Lua's interpreter did not refuse the module for its missing {dll} ({}):\n{}{}",
            run.status, run.stdout, run.stderr
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(is_64: bool, imports: &[&str], exports: &[&str]) -> PeFacts {
        PeFacts {
            is_64,
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// What the x86-64 `ffi.dll` for Lua 5.4 imports (mingw-w64 objdump of a debug build).
    const MODULE_IMPORTS: &[&str] = &[
        "api-ms-win-core-synch-l1-2-0.dll",
        "bcryptprimitives.dll",
        "KERNEL32.dll",
        "msvcrt.dll",
        "ntdll.dll",
        "USERENV.dll",
        "WS2_32.dll",
        "lua54.dll",
        "kernel32.dll",
    ];

    #[test]
    fn a_module_importing_its_lua_and_the_system_passes() {
        let line = judge_pe(&facts(true, MODULE_IMPORTS, &["luaopen_ffi"]), true, Some("5.4")).unwrap();
        assert!(line.starts_with("imports lua54.dll; system DLLs api-ms-win-core-synch-l1-2-0.dll,"), "{line}");
        assert_eq!(line.matches("kernel32.dll").count(), 1, "{line}");
    }

    #[test]
    fn another_luas_dll_is_caught() {
        let e = judge_pe(&facts(true, MODULE_IMPORTS, &["luaopen_ffi"]), true, Some("5.3")).unwrap_err();
        assert!(e.contains("imports lua54.dll, neither its Lua's lua53.dll nor"), "{e}");
        assert!(e.contains("imports no lua53.dll"), "{e}");
    }

    #[test]
    fn a_dll_beyond_the_system_is_caught() {
        let mut imports = MODULE_IMPORTS.to_vec();
        imports.push("libgcc_s_seh-1.dll");
        let e = judge_pe(&facts(true, &imports, &["luaopen_ffi"]), true, Some("5.4")).unwrap_err();
        assert!(
            e.starts_with("imports libgcc_s_seh-1.dll, neither its Lua's lua54.dll nor a DLL every Windows has"),
            "{e}"
        );
        // The command has Lua compiled in: any Lua DLL is wrong there.
        let e = judge_pe(&facts(true, MODULE_IMPORTS, &[]), true, None).unwrap_err();
        assert!(e.starts_with("imports lua54.dll, not a DLL every Windows has"), "{e}");
    }

    #[test]
    fn the_wrong_machine_and_a_missing_entry_point_are_caught() {
        let e = judge_pe(&facts(false, MODULE_IMPORTS, &["luaopen_ffi"]), true, Some("5.4")).unwrap_err();
        assert_eq!(e, "is PE32 (x86), not for x86-64");
        let e = judge_pe(&facts(true, MODULE_IMPORTS, &["luaopen_bit"]), true, Some("5.4")).unwrap_err();
        assert!(e.contains("exports no luaopen_ffi"), "{e}");
        // A module with a Lua linked in (no Lua DLL imported) would run a second Lua.
        let e = judge_pe(&facts(true, &["kernel32.dll"], &["luaopen_ffi"]), true, Some("5.4")).unwrap_err();
        assert!(e.contains("imports no lua54.dll"), "{e}");
    }

    #[test]
    fn a_real_pe_is_read() {
        // The emulator's fixtures, linked by mingw-w64 without any DLL.
        let fixtures = sys::workspace_root().join("emu-harness").join("fixtures");
        let x64 = pe_facts(&std::fs::read(fixtures.join("x64-win").join("layout.exe")).unwrap()).unwrap();
        let x86 = pe_facts(&std::fs::read(fixtures.join("x86-win").join("layout.exe")).unwrap()).unwrap();
        assert!(x64.is_64 && !x86.is_64);
        assert!(judge_pe(&x64, true, None).is_ok() && judge_pe(&x86, true, None).is_err());
        // An ELF file is not read as a PE one.
        assert!(pe_facts(&std::fs::read(std::env::current_exe().unwrap()).unwrap()).is_err());
    }

    #[test]
    fn lua_dll_names() {
        assert_eq!(lua_dll("5.1"), "lua51.dll");
        assert_eq!(lua_dll("5.4"), "lua54.dll");
    }

    fn run(success: bool, stderr: &str) -> hosts::Run {
        let status = if success { "exit 0" } else { "exit 1" }.to_string();
        hosts::Run { success, status, stdout: String::new(), stderr: stderr.into(), seconds: 0.1 }
    }

    #[test]
    fn a_refusal_names_the_missing_lua_dll() {
        // What Wine 8 and Lua 5.3 printed for the 5.4 module.
        let stderr = "010c:err:module:import_dll Library lua54.dll (which is needed by L\"Z:\\\\t\\\\lib\\\\lua\\\\5.4\\\\ffi.dll\") not found\nerror loading module 'ffi' from file 'Z:\\t\\lib\\lua\\5.4\\ffi.dll':\n\tModule not found.\n";
        let line = judge_refusal(&run(false, stderr), "5.4").unwrap();
        assert_eq!(line, "`require \"ffi\"` failed, Wine's loader found no lua54.dll (which ffi.dll imports)");
        // Loaded (exit 0), or failed for another DLL (the shim missing), is not the refusal.
        assert!(judge_refusal(&run(true, stderr), "5.4").is_err());
        let other = stderr.replace("lua54.dll", "bcryptprimitives.dll");
        assert!(judge_refusal(&run(false, &other), "5.4").is_err());
    }
}
