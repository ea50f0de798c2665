//! The `ffi` module table.
//!
//! [`open`] builds the table that `require "ffi"` returns, in the embedded `luaffi` command and
//! in `ffi.so` alike. Each area of the API registers its own functions through one
//! `register_*` call from `open`; an area that grows (the C type system: `cdef`, `new`,
//! `cast`, `typeof`, `metatype`, ...; calls and callbacks: `C`, `load`, `cast` to function
//! pointers) adds its registration function in its own file and one line here.
//!
//! Functions that raise Lua errors are written as `lua_CFunction`s on the C API where the
//! message must be Lua's own (`bad argument #1 to 'abi' (string expected, got table)`): the
//! C API's checks raise it, and nothing that owns memory is alive in their frames when they do
//! (DESIGN.md, lua-adapter).

use std::os::raw::c_int;

use abi_model::{Arch, Os, Target};
use mlua::{ffi, Lua, Table};

use crate::stack::{LuaStack, OrRaise};

/// Builds the `ffi` module table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    register_platform(lua, &module)?;
    crate::surface::api::register_ctypes(lua, &module)?;
    crate::surface::clib::register(lua, &module)?;
    Ok(module)
}

/// `ffi.os`, `ffi.arch` and `ffi.abi(param)`: facts about the target this module was compiled
/// for, with LuaJIT's names and values.
pub fn register_platform(lua: &Lua, module: &Table) -> mlua::Result<()> {
    module.set("os", OS)?;
    module.set("arch", ARCH)?;
    // SAFETY: `ffi_abi` follows the lua_CFunction protocol (see its docs).
    let abi = unsafe { lua.create_c_function(ffi_abi) }?;
    module.set("abi", abi)?;
    Ok(())
}

/// `ffi.os`: LuaJIT's name for the target OS: "Windows" on the Windows targets, otherwise
/// "Linux", "OSX", "BSD", "POSIX" or "Other" (Android counts as Linux and iOS as OSX, as in
/// LuaJIT).
pub const OS: &str = match Target::host() {
    Some(target) => os_name(target),
    None => UNIX_OS,
};

/// `ffi.os` on `target`: abi-model's targets tell Windows from the rest; which unix-like
/// system the rest is, only the compiler knows.
pub const fn os_name(target: Target) -> &'static str {
    match target.os {
        Os::Windows => "Windows",
        Os::Linux => UNIX_OS,
    }
}

/// The unix-like system compiled for, as LuaJIT names it.
const UNIX_OS: &str = if cfg!(windows) {
    "Windows"
} else if cfg!(any(target_os = "linux", target_os = "android")) {
    "Linux"
} else if cfg!(any(target_os = "macos", target_os = "ios")) {
    "OSX"
} else if cfg!(any(target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly")) {
    "BSD"
} else if cfg!(unix) {
    "POSIX"
} else {
    "Other"
};

/// `ffi.arch`: LuaJIT's name for the target architecture: "x86" or "x64" on the four targets
/// luaffi-rs generates code for; elsewhere what LuaJIT would say there ("arm", "arm64",
/// "ppc", "mips", ...).
pub const ARCH: &str = match Target::host() {
    Some(target) => arch_name(target),
    None => OTHER_ARCH,
};

/// `ffi.arch` on `target`.
pub const fn arch_name(target: Target) -> &'static str {
    match target.arch {
        Arch::X86 => "x86",
        Arch::X86_64 => "x64",
    }
}

/// LuaJIT's name for an architecture outside abi-model's targets.
const OTHER_ARCH: &str = if cfg!(all(target_arch = "arm", target_endian = "little")) {
    "arm"
} else if cfg!(target_arch = "arm") {
    "armbe"
} else if cfg!(all(target_arch = "aarch64", target_endian = "little")) {
    "arm64"
} else if cfg!(target_arch = "aarch64") {
    "arm64be"
} else if cfg!(target_arch = "powerpc") {
    "ppc"
} else if cfg!(all(target_arch = "mips", target_endian = "little")) {
    "mipsel"
} else if cfg!(target_arch = "mips") {
    "mips"
} else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
    "mips64el"
} else if cfg!(target_arch = "mips64") {
    "mips64"
} else {
    std::env::consts::ARCH
};

/// Soft-float calling convention (LuaJIT's `LJ_ABI_SOFTFP`): only ARM without `eabihf` among
/// the targets Rust and LuaJIT share; never x86/x64.
const SOFT_FP: bool = cfg!(all(target_arch = "arm", not(target_abi = "eabihf")));

/// `ffi.abi(param)`: whether `param` describes the target ABI, as LuaJIT's `ffi.abi` answers
/// it. The parameters are LuaJIT's (ext_ffi_api): "32bit", "64bit", "le", "be", "fpu",
/// "softfp", "hardfp", "eabi", "win", "uwp", plus "gc64", "pauth" and "dualnum" from its
/// source. Matching is exact and case-sensitive; anything else is false. On the four
/// targets the answer is [`abi_on`] the host's target.
pub fn abi(param: &[u8]) -> bool {
    if let Some(target) = Target::host() {
        return abi_on(target, param);
    }
    match param {
        b"32bit" => cfg!(target_pointer_width = "32"),
        b"64bit" => cfg!(target_pointer_width = "64"),
        b"le" => cfg!(target_endian = "little"),
        b"be" => cfg!(target_endian = "big"),
        b"fpu" | b"hardfp" => !SOFT_FP,
        b"softfp" => SOFT_FP,
        b"eabi" => cfg!(target_arch = "arm"),
        b"gc64" => cfg!(target_pointer_width = "64"),
        _ => false,
    }
}

/// `ffi.abi(param)` on `target`, as LuaJIT 2.1 answers it there (lib_ffi.c `ffi_abi`): true
/// for "le", "fpu" and "hardfp" on every x86 target; "32bit" on x86 and "64bit" on x64;
/// "win" on the Windows targets; "gc64" (LuaJIT's 64-bit GC references, the default of its
/// 64-bit builds) on x64; "uwp" only in a UWP build. "dualnum" (LuaJIT's integer/number dual
/// representation) is false on x86/x64, and so are "be", "softfp", "eabi" and "pauth".
pub fn abi_on(target: Target, param: &[u8]) -> bool {
    let bits64 = target.pointer_size() == 8;
    match param {
        b"32bit" => !bits64,
        b"64bit" | b"gc64" => bits64,
        b"le" | b"fpu" | b"hardfp" => true,
        b"win" => target.os == Os::Windows,
        b"uwp" => target.os == Os::Windows && cfg!(target_vendor = "uwp"),
        _ => false,
    }
}

/// `ffi.abi(param)` as a lua_CFunction, so that a bad argument raises Lua's own
/// `bad argument #1 to 'abi' (string expected, got table)`. Numbers are accepted and
/// converted, as `luaL_checklstring` (and LuaJIT) do.
///
/// # Safety
/// Called by Lua only, with a valid `state`. It may raise a Lua error (longjmp), which is why
/// no value owning memory lives in this frame.
unsafe extern "C-unwind" fn ffi_abi(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the calling Lua state; raises a Lua error if arg 1 isn't a string or
    // a number, with nothing to drop in this frame.
    let (s, len) = unsafe { LuaStack::new(state).check_bytes(1).or_raise(state) };
    // SAFETY: Lua guarantees `len` bytes at `s`, alive while the string is at stack index 1.
    let param = unsafe { std::slice::from_raw_parts(s, len) };
    let answer = abi(param);
    // SAFETY: a C function may push one value; the stack has room for LUA_MINSTACK slots.
    unsafe { LuaStack::new(state).push_bool(answer) };
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ffi_table() -> (Lua, Table) {
        let lua = Lua::new();
        let module = open(&lua).unwrap();
        lua.globals().set("ffi", &module).unwrap();
        (lua, module)
    }

    #[test]
    #[cfg(any(target_os = "linux", windows))]
    fn os_and_arch_are_the_hosts() {
        let (_lua, module) = ffi_table();
        let arch = if cfg!(target_arch = "x86") { "x86" } else { "x64" };
        let os = if cfg!(windows) { "Windows" } else { "Linux" };
        assert_eq!(module.get::<String>("os").unwrap(), os);
        assert_eq!(module.get::<String>("arch").unwrap(), arch);
    }

    #[test]
    fn os_and_arch_name_every_target_as_luajit() {
        // A Linux target's `ffi.os` is the unix-like system compiled for: "Linux" on Linux
        // hosts; a Windows build has no unix-like system and answers "Windows".
        let unix = if cfg!(windows) { "Windows" } else { "Linux" };
        #[cfg(target_os = "linux")]
        assert_eq!(UNIX_OS, "Linux");
        for (target, os, arch) in [
            (Target::X86_LINUX, unix, "x86"),
            (Target::X86_WIN, "Windows", "x86"),
            (Target::X64_SYSV, unix, "x64"),
            (Target::X64_WIN, "Windows", "x64"),
        ] {
            assert_eq!(os_name(target), os, "{target}");
            assert_eq!(arch_name(target), arch, "{target}");
        }
    }

    /// The parameters LuaJIT 2.1 answers true for on each target (lib_ffi.c `ffi_abi`); every
    /// other parameter of [`ASKED`] is false.
    const TRUE_ON: [(Target, &[&str]); 4] = [
        (Target::X86_LINUX, &["32bit", "le", "fpu", "hardfp"]),
        (Target::X86_WIN, &["32bit", "le", "fpu", "hardfp", "win"]),
        (Target::X64_SYSV, &["64bit", "le", "fpu", "hardfp", "gc64"]),
        (Target::X64_WIN, &["64bit", "le", "fpu", "hardfp", "win", "gc64"]),
    ];

    const ASKED: [&str; 17] = [
        "32bit", "64bit", "le", "be", "fpu", "softfp", "hardfp", "eabi", "win", "uwp", "pauth", "gc64", "dualnum",
        "LE", "64BIT", "", "x64",
    ];

    #[test]
    fn abi_answers_like_luajit_on_every_target() {
        for (target, true_params) in TRUE_ON {
            for param in ASKED {
                assert_eq!(
                    abi_on(target, param.as_bytes()),
                    true_params.contains(&param),
                    "{target}: ffi.abi({param:?})"
                );
            }
        }
    }

    #[test]
    fn ffi_abi_answers_for_the_host() {
        let (lua, _) = ffi_table();
        let host = Target::host().expect("an x86 host");
        let (_, true_params) = TRUE_ON.into_iter().find(|(t, _)| *t == host).unwrap();
        for param in ASKED {
            let got: bool = lua.load(format!("return ffi.abi({param:?})")).eval().unwrap();
            assert_eq!(got, true_params.contains(&param), "ffi.abi({param:?}) on {host}");
        }
    }

    #[test]
    fn abi_takes_a_number_as_its_string() {
        let (lua, _) = ffi_table();
        let got: bool = lua.load("return ffi.abi(64)").eval().unwrap();
        assert!(!got);
    }

    #[test]
    fn abi_without_a_string_is_a_lua_style_bad_argument() {
        let (lua, _) = ffi_table();
        let (ok, msg): (bool, String) = lua.load("return pcall(ffi.abi, {})").eval().unwrap();
        assert!(!ok);
        assert!(msg.starts_with("bad argument #1 to ") && msg.ends_with("(string expected, got table)"), "{msg}");
        let (ok, msg): (bool, String) = lua.load("return pcall(ffi.abi)").eval().unwrap();
        assert!(!ok);
        assert!(msg.ends_with("(string expected, got no value)"), "{msg}");
    }

    #[test]
    fn open_builds_a_fresh_table_each_time() {
        let lua = Lua::new();
        let a = open(&lua).unwrap();
        let b = open(&lua).unwrap();
        assert!(a != b, "two calls, two tables");
        assert_eq!(a.get::<String>("os").unwrap(), OS);
    }
}
