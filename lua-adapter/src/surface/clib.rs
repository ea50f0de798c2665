//! C library namespaces: `ffi.C` and the objects `ffi.load` returns.
//!
//! A namespace is a userdata over a loader handle ([`crate::os::dylib`]; `ffi.C`: every
//! symbol of the running process and of the libraries loaded globally, or on Windows the
//! executable, this module, its C runtime, kernel32, user32 and gdi32). Indexing it with a
//! name declared by `ffi.cdef` resolves the symbol (`dlsym`, `GetProcAddress`):
//!
//! * a function gives a Lua C closure that calls it through the shared stub of its
//!   signature, over a function cdata holding its address (see [`crate::native::call`], "The call
//!   paths"), cached in the namespace so `ffi.C.f == ffi.C.f`; it keeps the namespace (and
//!   so its library) alive. On Win32 a `__stdcall` or `__fastcall` function missing under its
//!   plain name is looked up by its decorated names (`_f@N`, `f@N`; `@f@N`) as LuaJIT does
//!   (`decorated_names`, after abi-model's `x86::win32_decorated_names`);
//! * an `extern` variable is read (converted as a member would be) or written on each
//!   access; arrays and structs give a reference to the variable;
//! * an enumerator or `static const` gives its value.
//!
//! Errors are LuaJIT's: `missing declaration for symbol 'x'` when `ffi.cdef` never declared
//! the name, the `dlerror()` text (`...: undefined symbol: x`; Windows: `cannot resolve
//! symbol 'x': ` and the system's message) when the library lacks it,
//! `attempt to write to constant location` when assigning to a function or constant.
//!
//! `ffi.load(name [, global])` follows LuaJIT's name rules (`clib_extname`): a name without
//! a `/` gets `.so` appended when it has no `.`, then `lib` prepended unless it starts with
//! `lib` (`"z"` -> `libz.so`, `"libz.so.1"` stays); a name with a `/` is a path, used as is.
//! The library is opened with `RTLD_LAZY`, plus `RTLD_GLOBAL` when `global` is true (its
//! symbols then resolve through `ffi.C` as well). When the file is a GNU ld script (Debian's
//! `libc.so`, "invalid ELF header"), the first library named in its `GROUP ( ... )` is loaded
//! instead, as LuaJIT does. On Windows the name gets `.dll` when it has no `.`, and a bare
//! name is tried again with mingw's `lib` prefix (`"z"`: `z.dll`, then `libz.dll`); see
//! [`windows_library_file_names`]. The library is closed when the namespace is collected
//! (never for `ffi.C`).

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_void};

use abi_model::cdef::Symbol;
use abi_model::types::CType;
use abi_model::x86::win32_decorated_names;
use abi_model::{QualType, Target, TypeId};
use mlua::{ffi, Lua, Table};

use crate::cdata;
use crate::convert::{self, ConvError};
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{self, FfiState};
use crate::native::state::State;
use crate::os::dylib;
use crate::stack::{LuaStack, OrRaise};

/// A namespace's userdata.
#[repr(C)]
struct Clib {
    /// The loader's handle (`dylib::DEFAULT` for `ffi.C`).
    handle: *mut c_void,
    /// Whether `handle` must be closed when the state is freed.
    owned: bool,
}

/// Registry key (its address) of the namespace metatable.
static CLIB_META_KEY: u8 = 0;

/// With this environment variable set, opening the module fails when the running Lua's stack
/// layout does not match the one it was built for (instead of running every conversion
/// through helpers): how the tests make sure the fast paths are the ones tested. Lua 5.2 on
/// 32-bit x86 has no such layout (NaN packing), so there it requires nothing.
pub const REQUIRE_INLINE: &str = "LUAFFI_REQUIRE_INLINE";

/// Adds `ffi.C` and `ffi.load` to the module table, and records the state's main thread for
/// callbacks made outside any C call.
pub fn register(lua: &Lua, module: &Table) -> mlua::Result<()> {
    // SAFETY: `open_raw` follows the lua_CFunction protocol.
    let f = unsafe { lua.create_c_function(open_raw) }?;
    f.call::<()>(module)
}

unsafe extern "C-unwind" fn open_raw(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called with the module table at 1, after the C type system's registration.
    unsafe {
        LuaStack::new(l).check_stack(8).or_raise(l);
        let (st, _) = crate::native::get_or_create(l);
        (*State::of(st)).calls.main_l = main_thread(l);
        if (*st).inline_vm().is_none() {
            (*st).set_inline_vm(crate::stack::vm_check::verified(l));
            // Lua 5.2 on 32-bit x86 has no layout: its stubs always take the helpers.
            let expected = crate::stack::vm_check::compiled_layout();
            if let (None, Some(vm)) = ((*st).inline_vm(), expected) {
                if std::env::var_os(REQUIRE_INLINE).is_some() {
                    let msg = format!("the running Lua's stack is not laid out as {vm} ({REQUIRE_INLINE} is set)");
                    crate::cdata::raise(l, msg);
                }
            }
        }
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, &CLIB_META_KEY as *const u8 as *const c_void);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 4);
            let methods: [(&CStr, unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int); 3] =
                [(c"__index", clib_index), (c"__newindex", clib_newindex), (c"__gc", clib_gc)];
            for (name, f) in methods {
                ffi::lua_pushlightuserdata(l, st as *mut c_void);
                ffi::lua_pushcclosure(l, f, 1);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, &CLIB_META_KEY as *const u8 as *const c_void);
        }
        ffi::lua_pop(l, 1);
        push_clib(l, dylib::DEFAULT, false);
        ffi::lua_setfield(l, 1, c"C".as_ptr());
        ffi::lua_pushlightuserdata(l, st as *mut c_void);
        ffi::lua_pushcclosure(l, ffi_load, 1);
        ffi::lua_setfield(l, 1, c"load".as_ptr());
        0
    }
}

/// The state's main thread (on Lua 5.1, which has no registry entry for it, the thread
/// that opened the module).
unsafe fn main_thread(l: *mut ffi::lua_State) -> *mut ffi::lua_State {
    #[cfg(feature = "lua51")]
    {
        l
    }
    #[cfg(not(feature = "lua51"))]
    // SAFETY: the registry holds the main thread at LUA_RIDX_MAINTHREAD.
    unsafe {
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
        let t = ffi::lua_tothread(l, -1);
        ffi::lua_pop(l, 1);
        t
    }
}

/// Pushes a new namespace over `handle`.
unsafe fn push_clib(l: *mut ffi::lua_State, handle: *mut c_void, owned: bool) {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        let ud = ffi::lua_newuserdata(l, std::mem::size_of::<Clib>()) as *mut Clib;
        ud.write(Clib { handle, owned });
        // The table caching resolved functions by name: the user value, which lives as long
        // as the namespace (a registry reference would be released by its finalizer, which
        // runs before older finalizers that may still use the namespace when Lua closes).
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_setuservalue(l, -2);
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, &CLIB_META_KEY as *const u8 as *const c_void);
        ffi::lua_setmetatable(l, -2);
    }
}

/// What a name declared by `ffi.cdef` is, copied out of the scope.
enum Declared {
    Function(TypeId),
    Variable(QualType),
    Constant { value: i64, ty: QualType },
    Missing,
}

/// Looks `name` up; for functions and variables also returns the symbol name to resolve
/// (the `__asm__` name when one was given).
fn declared(st: &FfiState, name: &str) -> (Declared, Option<SymName>) {
    let sym = |asm: Option<&str>| SymName::new(asm.unwrap_or(name));
    match st.scope.symbol(name) {
        Some(Symbol::Function(f)) => (Declared::Function(f.ty), sym(f.asm_name.as_deref())),
        Some(Symbol::Variable(v)) => (Declared::Variable(v.ty), sym(v.asm_name.as_deref())),
        Some(Symbol::Constant(c)) => (Declared::Constant { value: c.value, ty: c.ty }, None),
        _ => (Declared::Missing, None),
    }
}

/// A symbol's name as `dlsym` takes it (NUL-terminated): held inline when short, as most
/// are, so that resolving a function allocates nothing it drops.
enum SymName {
    /// The name and its NUL in the first bytes.
    Inline([u8; SymName::INLINE]),
    /// A longer name.
    Heap(CString),
}

impl SymName {
    /// Bytes a name held inline may have, its NUL included.
    const INLINE: usize = 64;

    /// `name`, or `None` if it has a NUL byte (no C name has one).
    fn new(name: &str) -> Option<SymName> {
        let bytes = name.as_bytes();
        if bytes.contains(&0) {
            return None;
        }
        if bytes.len() < SymName::INLINE {
            let mut buf = [0u8; SymName::INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            return Some(SymName::Inline(buf));
        }
        CString::new(name).ok().map(SymName::Heap)
    }

    /// The name as C takes it.
    fn as_c_str(&self) -> &CStr {
        match self {
            // The buffer holds the name (no NUL in it) and then zeros: a NUL is there.
            SymName::Inline(buf) => CStr::from_bytes_until_nul(buf).unwrap_or(c""),
            SymName::Heap(name) => name,
        }
    }
}

/// The namespace at index 1 and the key at index 2 (a string).
unsafe fn clib_and_key<'a>(l: *mut ffi::lua_State) -> (*mut Clib, &'a str) {
    // SAFETY: the metamethods run with the namespace at 1.
    unsafe {
        let c = ffi::lua_touserdata(l, 1) as *mut Clib;
        let (k, len) = LuaStack::new(l).check_bytes(2).or_raise(l);
        (c, std::str::from_utf8(std::slice::from_raw_parts(k, len)).unwrap_or(""))
    }
}

/// Why a library or symbol could not be had. The dynamic loader explains itself only as
/// `dlerror()`'s text, which is kept as it is: LuaJIT raises exactly that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClibError {
    /// A symbol name with a NUL byte: no C name has one.
    NulInSymbol,
    /// A library file name with a NUL byte.
    NulInFileName {
        /// The name.
        file: String,
    },
    /// `dlsym` found nothing.
    Dlsym {
        /// The symbol.
        symbol: String,
        /// `dlerror()`'s text, when it gave one.
        dlerror: Option<String>,
    },
    /// `dlopen` failed.
    Dlopen {
        /// The file asked for.
        file: String,
        /// `dlerror()`'s text, when it gave one.
        dlerror: Option<String>,
    },
}

impl ClibError {
    /// The file a failed `dlopen` found and found not to be ELF (a linker script, such as
    /// glibc's `libc.so`): `dlerror()` starts with its path.
    #[cfg(not(windows))]
    fn not_elf(&self) -> Option<&str> {
        match self {
            ClibError::Dlopen { dlerror: Some(text), .. } if text.contains("invalid ELF header") => {
                text.split(':').next()
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ClibError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClibError::NulInSymbol => f.write_str("symbol name contains a NUL byte"),
            ClibError::NulInFileName { file } => write!(f, "{file}: file name contains a NUL byte"),
            ClibError::Dlsym { dlerror: Some(text), .. } | ClibError::Dlopen { dlerror: Some(text), .. } => {
                f.write_str(text)
            }
            ClibError::Dlsym { symbol, dlerror: None } => write!(f, "undefined symbol: {symbol}"),
            ClibError::Dlopen { file, dlerror: None } => write!(f, "{file}: cannot open shared object file"),
        }
    }
}

impl std::error::Error for ClibError {}

/// Resolves `sym` in the namespace.
///
/// # Safety
/// `c` points to a live namespace userdata (its `handle` from `dylib::open`, not yet closed,
/// or `dylib::DEFAULT`).
unsafe fn resolve(c: *mut Clib, sym: Option<SymName>, decorated: Vec<String>) -> Result<*mut c_void, ClibError> {
    let Some(sym) = sym else { return Err(ClibError::NulInSymbol) };
    let sym = sym.as_c_str();
    // SAFETY: a live handle (this function's contract).
    let plain = unsafe { dylib::symbol((*c).handle, sym) };
    plain
        .or_else(|first_error| {
            // LuaJIT reports the plain name's failure when no decorated name is found either.
            decorated
                .iter()
                .filter_map(|name| CString::new(name.as_str()).ok())
                // SAFETY: `(*c).handle` is live (this function's contract), as for the plain name.
                .find_map(|name| unsafe { dylib::symbol((*c).handle, &name) }.ok())
                .ok_or(first_error)
        })
        .map_err(|dlerror| ClibError::Dlsym { symbol: sym.to_string_lossy().into_owned(), dlerror })
}

/// The other names a function declared as `fn_ty` is looked up by when its plain name `sym`
/// is missing: on Win32, a `__stdcall` function's `_f@N` and `f@N`, a `__fastcall` one's
/// `@f@N`, as LuaJIT does (`abi_model::x86::win32_decorated_names`); none elsewhere.
fn decorated_names(st: &FfiState, fn_ty: TypeId, sym: Option<&SymName>) -> Vec<String> {
    let (Some(sym), Target::X86_WIN) = (sym.map(SymName::as_c_str), st.types.target()) else { return Vec::new() };
    let CType::Function(f) = st.types.get(fn_ty) else { return Vec::new() };
    let params: Vec<TypeId> = f.params.iter().map(|p| p.ty.id).collect();
    win32_decorated_names(&st.types, &sym.to_string_lossy(), f.conv, f.variadic, &params)
}

/// [`resolve`], raising its error (the symbol name is dropped inside `resolve` first, so this
/// frame owns nothing when it raises).
///
/// # Safety
/// As [`resolve`]; `l` valid with 2 free slots, in a function Lua called, with nothing owning
/// memory alive in the frames between (as `cdata::raise`).
unsafe fn resolve_or_raise(
    l: *mut ffi::lua_State,
    c: *mut Clib,
    sym: Option<SymName>,
    decorated: Vec<String>,
) -> *mut c_void {
    // SAFETY: `c` is a live namespace (this function's contract), as `resolve` needs; `sym`
    // and `decorated` move into `resolve`, which drops them. On an error: valid-L with 2 free slots in a
    // function Lua called (contract); raise-clean: the `ClibError` is dropped and `msg` moved
    // into `cdata::raise`, which drops it before `lua_error`.
    match unsafe { resolve(c, sym, decorated) } {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            drop(e);
            unsafe { cdata::raise(l, msg) }
        }
    }
}

unsafe extern "C-unwind" fn clib_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a metamethod of the namespace metatable; errors are raised once the owned
    // values of each branch are dropped (messages are moved into `raise`).
    unsafe {
        let st = state::from_upvalue(l);
        let (c, key) = clib_and_key(l);
        ffi::lua_getuservalue(l, 1);
        ffi::lua_pushvalue(l, 2);
        ffi::lua_rawget(l, -2);
        if ffi::lua_isnil(l, -1) == 0 {
            return 1;
        }
        ffi::lua_pop(l, 1);
        let (what, sym) = declared(&*st, key);
        match what {
            Declared::Function(fn_ty) => {
                let decorated = decorated_names(&*st, fn_ty, sym.as_ref());
                let addr = resolve_or_raise(l, c, sym, decorated);
                // Stack: 1 namespace, 2 name, 3 cache; the function cdata goes to 4 and
                // the closure calling it (crate::native::closure::push_function) to 5.
                let desc = (*st).desc(QualType::plain(fn_ty));
                let fc = cdata::push_value(l, st, desc, std::mem::size_of::<usize>());
                (cdata::bytes(fc) as *mut usize).write_unaligned(addr as usize);
                crate::native::closure::push_function(l, st, 4, 1);
                ffi::lua_pushvalue(l, 2);
                ffi::lua_pushvalue(l, -2);
                ffi::lua_rawset(l, 3);
            }
            Declared::Variable(ty) => {
                let addr = resolve_or_raise(l, c, sym, Vec::new());
                if let Err(e) = convert::c_to_lua(l, st, ty, addr as *mut u8, 0) {
                    convert::raise_conv(l, st, e);
                }
            }
            Declared::Constant { value, ty } => {
                let (size, signed) = match shape(&(*st).types, ty.id) {
                    Shape::Int { size, signed } => (size, signed),
                    _ => (4, true),
                };
                convert::push_int(l, st, value as u64, size, signed);
            }
            Declared::Missing => {
                drop(sym);
                cdata::raise(l, format!("missing declaration for symbol '{key}'"))
            }
        }
        1
    }
}

unsafe extern "C-unwind" fn clib_newindex(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the namespace `__newindex` with the FFI state as upvalue 1
    // (live-state); raise-clean: messages move into `raise` after each branch drops its owned
    // values.
    unsafe {
        let st = state::from_upvalue(l);
        let (c, key) = clib_and_key(l);
        let (what, sym) = declared(&*st, key);
        match what {
            Declared::Variable(ty) => {
                let addr = resolve_or_raise(l, c, sym, Vec::new());
                let r = if ty.quals.is_const {
                    Err(ConvError::WriteConst)
                } else {
                    convert::lua_to_c(l, st, 3, ty, addr as *mut u8, 0)
                };
                if let Err(e) = r {
                    convert::raise_conv(l, st, e);
                }
                0
            }
            Declared::Function(_) | Declared::Constant { .. } => {
                drop(sym);
                convert::raise_conv(l, st, ConvError::WriteConst)
            }
            Declared::Missing => {
                drop(sym);
                cdata::raise(l, format!("missing declaration for symbol '{key}'"))
            }
        }
    }
}

/// `__gc` of a namespace: a library `ffi.load` opened is closed only when the state is freed
/// ([`crate::ctypes::state`]): when Lua closes, finalizers older than this one still run and may call
/// the library's functions.
unsafe extern "C-unwind" fn clib_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: __gc of a namespace: index 1 is it; runs once. The state outlives its
    // namespaces (it is freed after the Lua state closed).
    unsafe {
        let st = state::from_upvalue(l);
        let c = ffi::lua_touserdata(l, 1) as *mut Clib;
        if c.is_null() {
            return 0;
        }
        if (*c).owned {
            let loaded = &mut (*State::of(st)).loaded;
            if loaded.contains(&(*c).handle) {
                // The loader counts references: the one kept closes the library.
                dylib::close((*c).handle);
            } else {
                loaded.push((*c).handle);
            }
        }
        0
    }
}

/// LuaJIT's `clib_extname` on unix: the file name `ffi.load` opens for `name`.
pub fn unix_library_file_name(name: &str) -> String {
    if name.contains('/') {
        return name.to_string();
    }
    let mut file = name.to_string();
    if !file.contains('.') {
        file.push_str(".so");
    }
    if !file.starts_with("lib") {
        file.insert_str(0, "lib");
    }
    file
}

/// The files `ffi.load` tries for `name` on Windows, in order: LuaJIT's `clib_extname`
/// (`.dll` appended when the name has no `.`; `"kernel32"` -> `kernel32.dll`), then, for a bare
/// name without the prefix, the same with `lib` prepended, as mingw names the DLLs it builds
/// (`"z"` -> `z.dll`, then `libz.dll`). A path (with `/` or `\`) is only given its extension.
pub fn windows_library_file_names(name: &str) -> Vec<String> {
    let file = if name.contains('.') { name.to_string() } else { format!("{name}.dll") };
    let bare = !name.contains(['/', '\\']);
    let mingw = (bare && !name.starts_with("lib")).then(|| format!("lib{file}"));
    std::iter::once(file).chain(mingw).collect()
}

/// The first library a GNU ld script names in `GROUP ( ... )` (LuaJIT's `clib_resolve_lds`).
#[cfg(not(windows))]
fn ld_script_target(path: &str) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let group = text.find("GROUP")?;
    let rest = text[group + 5..].trim_start().strip_prefix('(')?;
    rest.split_whitespace().next().map(str::to_string)
}

/// Opens `file` with the dynamic loader.
fn open_library(file: &str, global: bool) -> Result<*mut c_void, ClibError> {
    let c = CString::new(file).map_err(|_| ClibError::NulInFileName { file: file.to_string() })?;
    dylib::open(&c, global).map_err(|dlerror| ClibError::Dlopen { file: file.to_string(), dlerror })
}

/// Opens a library by `ffi.load`'s rules (see the [module docs](self)).
#[cfg(not(windows))]
pub fn load_library(name: &str, global: bool) -> Result<*mut c_void, ClibError> {
    let file = unix_library_file_name(name);
    let e = match open_library(&file, global) {
        Ok(h) => return Ok(h),
        Err(e) => e,
    };
    // A linker script names the real library: open that, reporting the first error if it fails.
    match e.not_elf().and_then(ld_script_target) {
        Some(target) => open_library(&target, global).map_err(|_| e),
        None => Err(e),
    }
}

/// Opens a library by `ffi.load`'s rules (see the [module docs](self)), reporting the error of
/// the first file tried when none opens.
#[cfg(windows)]
pub fn load_library(name: &str, global: bool) -> Result<*mut c_void, ClibError> {
    let mut first_error = None;
    for file in windows_library_file_names(name) {
        match open_library(&file, global) {
            Ok(h) => return Ok(h),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one file name is tried"))
}

/// `ffi.load(name [, global])`.
unsafe extern "C-unwind" fn ffi_load(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction; the error message is raised with nothing else owned.
    unsafe {
        let (p, len) = LuaStack::new(l).check_bytes(1).or_raise(l);
        let name = String::from_utf8_lossy(std::slice::from_raw_parts(p, len)).into_owned();
        let global = ffi::lua_toboolean(l, 2) != 0;
        let r = load_library(&name, global);
        drop(name);
        match r {
            Ok(h) => {
                push_clib(l, h, true);
                1
            }
            Err(e) => {
                // LuaJIT raises dlerror()'s text without a position.
                let msg = e.to_string();
                drop(e);
                crate::stack::raise(l, crate::stack::Raise::Plain(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_follow_luajit() {
        assert_eq!(unix_library_file_name("z"), "libz.so");
        assert_eq!(unix_library_file_name("libz"), "libz.so");
        assert_eq!(unix_library_file_name("z.so.1"), "libz.so.1");
        assert_eq!(unix_library_file_name("libz.so.1"), "libz.so.1");
        assert_eq!(unix_library_file_name("./x/foo"), "./x/foo");
        assert_eq!(unix_library_file_name("/usr/lib/libm.so.6"), "/usr/lib/libm.so.6");
    }

    #[test]
    fn windows_library_names_follow_luajit_then_mingw() {
        assert_eq!(windows_library_file_names("kernel32"), ["kernel32.dll", "libkernel32.dll"]);
        assert_eq!(windows_library_file_names("z"), ["z.dll", "libz.dll"]);
        assert_eq!(windows_library_file_names("libz"), ["libz.dll"]);
        assert_eq!(windows_library_file_names("z1.dll"), ["z1.dll", "libz1.dll"]);
        assert_eq!(windows_library_file_names("user32.dll"), ["user32.dll", "libuser32.dll"]);
        assert_eq!(windows_library_file_names("C:\\x\\calltest.dll"), ["C:\\x\\calltest.dll"]);
        assert_eq!(windows_library_file_names("./x/foo"), ["./x/foo"]);
        assert_eq!(windows_library_file_names("x/foo"), ["x/foo.dll"]);
    }

    #[test]
    #[cfg(not(windows))]
    fn a_linker_script_is_followed_and_other_failures_keep_dlerrors_words() {
        // glibc's libc.so is a linker script: dlopen reports it as not ELF, by its path. The
        // i386 loader does not search /usr/lib32, where Debian's libc6-dev-i386 puts i386's.
        let e = load_library(if cfg!(target_arch = "x86") { "/usr/lib32/libc.so" } else { "c" }, false);
        assert!(e.is_ok(), "{e:?}");
        let e = load_library("./no/such/lib.so", false).unwrap_err();
        assert!(e.to_string().starts_with("./no/such/lib.so: cannot open shared object file"), "{e}");
        assert_eq!(e.not_elf(), None);
        let script = ClibError::Dlopen {
            file: "libc.so".into(),
            dlerror: Some("/usr/lib/x86_64-linux-gnu/libc.so: invalid ELF header".into()),
        };
        assert_eq!(script.not_elf(), Some("/usr/lib/x86_64-linux-gnu/libc.so"));
        assert_eq!(script.to_string(), "/usr/lib/x86_64-linux-gnu/libc.so: invalid ELF header");
        assert_eq!(ClibError::Dlsym { symbol: "f".into(), dlerror: None }.to_string(), "undefined symbol: f");
    }

    /// A symbol name reaches `dlsym` whole, held inline or not, and one with a NUL byte is
    /// refused rather than cut at it.
    #[test]
    fn symbol_names_keep_every_byte_inline_or_not() {
        for len in [0, 1, SymName::INLINE - 1, SymName::INLINE, 300] {
            let name: String = "abcdefghij".chars().cycle().take(len).collect();
            let sym = SymName::new(&name).expect("no NUL");
            assert_eq!(sym.as_c_str().to_bytes(), name.as_bytes(), "length {len}");
            assert_eq!(matches!(sym, SymName::Inline(_)), len < SymName::INLINE, "length {len}");
        }
        assert!(SymName::new("f\0g").is_none());
    }
}
