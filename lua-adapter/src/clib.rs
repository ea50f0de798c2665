//! C library namespaces: `ffi.C` and the objects `ffi.load` returns.
//!
//! A namespace is a userdata over a `dlopen` handle (`ffi.C`: `RTLD_DEFAULT`, every symbol
//! of the running process and of the libraries loaded globally). Indexing it with a name
//! declared by `ffi.cdef` resolves the symbol with `dlsym`:
//!
//! * a function gives a Lua C closure that calls it through the shared stub of its
//!   signature, over a function cdata holding its address (see [`crate::call`], "The call
//!   paths"), cached in the namespace so `ffi.C.f == ffi.C.f`; it keeps the namespace (and
//!   so its library) alive;
//! * an `extern` variable is read (converted as a member would be) or written on each
//!   access; arrays and structs give a reference to the variable;
//! * an enumerator or `static const` gives its value.
//!
//! Errors are LuaJIT's: `missing declaration for symbol 'x'` when `ffi.cdef` never declared
//! the name, the `dlerror()` text (`...: undefined symbol: x`) when the library lacks it,
//! `attempt to write to constant location` when assigning to a function or constant.
//!
//! `ffi.load(name [, global])` follows LuaJIT's name rules (`clib_extname`): a name without
//! a `/` gets `.so` appended when it has no `.`, then `lib` prepended unless it starts with
//! `lib` (`"z"` -> `libz.so`, `"libz.so.1"` stays); a name with a `/` is a path, used as is.
//! The library is opened with `RTLD_LAZY`, plus `RTLD_GLOBAL` when `global` is true (its
//! symbols then resolve through `ffi.C` as well). When the file is a GNU ld script (Debian's
//! `libc.so`, "invalid ELF header"), the first library named in its `GROUP ( ... )` is loaded
//! instead, as LuaJIT does. The library is closed when the namespace is collected (never for
//! `ffi.C`).

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};

use abi_model::cdef::Symbol;
use abi_model::{QualType, TypeId};
use mlua::{ffi, Lua, Table};

use crate::cdata;
use crate::convert::{self, ConvError};
use crate::ctype::{shape, Shape};
use crate::state::{self, FfiState};

/// A namespace's userdata.
#[repr(C)]
struct Clib {
    /// The `dlopen` handle (`RTLD_DEFAULT` for `ffi.C`).
    handle: *mut c_void,
    /// Whether `handle` must be closed when the state is freed.
    owned: bool,
}

/// Registry key (its address) of the namespace metatable.
static CLIB_META_KEY: u8 = 0;

/// With this environment variable set, opening the module fails when the running Lua's stack
/// layout does not match the one it was built for (instead of running every conversion
/// through helpers): how the tests make sure the fast paths are the ones tested.
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
        ffi::luaL_checkstack(l, 8, std::ptr::null());
        let (st, _) = state::get_or_create(l);
        (*st).calls.main_l = main_thread(l);
        if (*st).calls.inline_vm.is_none() {
            (*st).calls.inline_vm = crate::vm_check::verified(l);
            if (*st).calls.inline_vm.is_none() && std::env::var_os(REQUIRE_INLINE).is_some() {
                let msg = format!(
                    "the running Lua's stack is not laid out as {} ({REQUIRE_INLINE} is set)",
                    crate::vm_check::compiled_layout()
                );
                crate::cdata::raise(l, msg);
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
        push_clib(l, libc::RTLD_DEFAULT, false);
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
fn declared(st: &FfiState, name: &str) -> (Declared, Option<CString>) {
    let sym = |asm: &Option<String>| CString::new(asm.as_deref().unwrap_or(name)).ok();
    match st.scope.symbol(name) {
        Some(Symbol::Function(f)) => (Declared::Function(f.ty), sym(&f.asm_name)),
        Some(Symbol::Variable(v)) => (Declared::Variable(v.ty), sym(&v.asm_name)),
        Some(Symbol::Constant(c)) => (Declared::Constant { value: c.value, ty: c.ty }, None),
        _ => (Declared::Missing, None),
    }
}

/// The namespace at index 1 and the key at index 2 (a string).
unsafe fn clib_and_key<'a>(l: *mut ffi::lua_State) -> (*mut Clib, &'a str) {
    // SAFETY: the metamethods run with the namespace at 1.
    unsafe {
        let c = ffi::lua_touserdata(l, 1) as *mut Clib;
        let mut len = 0usize;
        let k = ffi::luaL_checklstring(l, 2, &mut len) as *const u8;
        (c, std::str::from_utf8(std::slice::from_raw_parts(k, len)).unwrap_or(""))
    }
}

/// Resolves `sym` in the namespace; on failure returns `dlerror()`'s text.
unsafe fn resolve(c: *mut Clib, sym: Option<CString>) -> Result<*mut c_void, String> {
    // SAFETY: dlsym/dlerror on a handle from dlopen (or RTLD_DEFAULT).
    unsafe {
        let Some(sym) = sym else { return Err("symbol name contains a NUL byte".into()) };
        libc::dlerror();
        let p = libc::dlsym((*c).handle, sym.as_ptr());
        if p.is_null() {
            let e = libc::dlerror();
            let msg = if e.is_null() {
                format!("undefined symbol: {}", sym.to_string_lossy())
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            };
            return Err(msg);
        }
        Ok(p)
    }
}

/// [`resolve`], raising its error (the symbol name is dropped inside `resolve` first, so this
/// frame owns nothing when it raises).
unsafe fn resolve_or_raise(l: *mut ffi::lua_State, c: *mut Clib, sym: Option<CString>) -> *mut c_void {
    // SAFETY: `c` is a live namespace userdata (caller's contract), as `resolve` needs;
    // raise-clean: `raise` drops the message before it unwinds.
    match unsafe { resolve(c, sym) } {
        Ok(p) => p,
        Err(msg) => unsafe { cdata::raise(l, msg) },
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
                let addr = resolve_or_raise(l, c, sym);
                // Stack: 1 namespace, 2 name, 3 cache; the function cdata goes to 4 and
                // the closure calling it (crate::call::push_function) to 5.
                let desc = (*st).desc(QualType::plain(fn_ty));
                let fc = cdata::push_value(l, st, desc, std::mem::size_of::<usize>());
                ((*fc).ptr as *mut usize).write_unaligned(addr as usize);
                crate::call::push_function(l, st, 4, 1);
                ffi::lua_pushvalue(l, 2);
                ffi::lua_pushvalue(l, -2);
                ffi::lua_rawset(l, 3);
            }
            Declared::Variable(ty) => {
                let addr = resolve_or_raise(l, c, sym);
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
                let addr = resolve_or_raise(l, c, sym);
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
/// ([`crate::state`]): when Lua closes, finalizers older than this one still run and may call
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
            let loaded = &mut (*st).loaded;
            if loaded.contains(&(*c).handle) {
                // dlopen counts references: the one kept closes the library.
                libc::dlclose((*c).handle);
            } else {
                loaded.push((*c).handle);
            }
        }
        0
    }
}

/// LuaJIT's `clib_extname`: the file name `ffi.load` opens for `name`.
pub fn library_file_name(name: &str) -> String {
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

/// The first library a GNU ld script names in `GROUP ( ... )` (LuaJIT's `clib_resolve_lds`).
fn ld_script_target(path: &str) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let group = text.find("GROUP")?;
    let rest = text[group + 5..].trim_start().strip_prefix('(')?;
    rest.split_whitespace().next().map(str::to_string)
}

/// `dlopen`s `file`; returns the handle or `dlerror()`'s text.
fn open_library(file: &str, global: bool) -> Result<*mut c_void, String> {
    let flags = libc::RTLD_LAZY | if global { libc::RTLD_GLOBAL } else { libc::RTLD_LOCAL };
    let c = CString::new(file).map_err(|_| format!("{file}: file name contains a NUL byte"))?;
    // SAFETY: dlopen/dlerror with a valid C string.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), flags);
        if !h.is_null() {
            return Ok(h);
        }
        let e = libc::dlerror();
        Err(if e.is_null() {
            format!("{file}: cannot open shared object file")
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        })
    }
}

/// Opens a library by `ffi.load`'s rules (see the [module docs](self)).
pub fn load_library(name: &str, global: bool) -> Result<*mut c_void, String> {
    let file = library_file_name(name);
    match open_library(&file, global) {
        Ok(h) => Ok(h),
        Err(msg) if msg.contains("invalid ELF header") => {
            // The dlerror text starts with the path dlopen found.
            let path = msg.split(':').next().unwrap_or(&file).to_string();
            match ld_script_target(&path) {
                Some(target) => open_library(&target, global).map_err(|_| msg),
                None => Err(msg),
            }
        }
        Err(msg) => Err(msg),
    }
}

/// `ffi.load(name [, global])`.
unsafe extern "C-unwind" fn ffi_load(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction; the error message is raised with nothing else owned.
    unsafe {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len) as *const u8;
        let name = String::from_utf8_lossy(std::slice::from_raw_parts(p, len)).into_owned();
        let global = ffi::lua_toboolean(l, 2) != 0;
        let r = load_library(&name, global);
        drop(name);
        match r {
            Ok(h) => {
                push_clib(l, h, true);
                1
            }
            Err(msg) => {
                // LuaJIT raises dlerror()'s text without a position.
                push_message(l, msg);
                ffi::lua_error(l)
            }
        }
    }
}

#[inline(never)]
unsafe fn push_message(l: *mut ffi::lua_State, msg: String) {
    // SAFETY: valid-L with a free slot: one push; `msg` is dropped here.
    unsafe {
        ffi::lua_pushlstring(l, msg.as_ptr() as *const c_char, msg.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_follow_luajit() {
        assert_eq!(library_file_name("z"), "libz.so");
        assert_eq!(library_file_name("libz"), "libz.so");
        assert_eq!(library_file_name("z.so.1"), "libz.so.1");
        assert_eq!(library_file_name("libz.so.1"), "libz.so.1");
        assert_eq!(library_file_name("./x/foo"), "./x/foo");
        assert_eq!(library_file_name("/usr/lib/libm.so.6"), "/usr/lib/libm.so.6");
    }
}
