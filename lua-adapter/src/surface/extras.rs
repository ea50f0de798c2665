//! The functions and values other FFIs for PUC Lua have and LuaJIT lacks, so that programs
//! written for them run too: cffi-lua's `ffi.nullptr`, `ffi.addressof`, `ffi.toretval`,
//! `ffi.type` and `ffi.tonumber`, and luaffi's `ffi.NULL`. Their meaning is cffi-lua's
//! (`docs/api.md` of q66/cffi-lua); where it and LuaJIT differ on the same function, LuaJIT's
//! rule is kept (docs/ffi.md says where).

use std::os::raw::c_int;

use abi_model::QualType;
use mlua::ffi;

use crate::cdata::{self, Form};
use crate::convert;
use crate::ctypes::state::{self, FfiState};

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

const FUNCTIONS: [(&std::ffi::CStr, CFn); 3] =
    [(c"addressof", ffi_addressof), (c"toretval", ffi_toretval), (c"type", ffi_type)];

/// Adds the extensions to the `ffi` table at stack index `module`: the functions, and
/// `ffi.NULL` and `ffi.nullptr`, one NULL `void *` cdata (the same object under both names).
///
/// # Safety
/// `l` valid in a function Lua called, with 3 free slots; `st` its live state; `module` an
/// absolute index.
pub unsafe fn register(l: *mut ffi::lua_State, st: *mut FfiState, module: c_int) {
    // SAFETY: valid-L with 3 free slots; each push is stored into the module table at once.
    unsafe {
        for (name, f) in FUNCTIONS {
            ffi::lua_pushlightuserdata(l, st as *mut _);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, module, name.as_ptr());
        }
        let desc = (*st).desc(QualType::plain((*st).void_ptr()));
        cdata::push_value(l, st, desc, std::mem::size_of::<usize>());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, module, c"NULL".as_ptr());
        ffi::lua_setfield(l, module, c"nullptr".as_ptr());
    }
}

/// The cdata at argument 1 (not a ctype object), or `bad argument #1 (cdata expected, got
/// ...)`.
unsafe fn check_cdata(l: *mut ffi::lua_State, st: *mut FfiState) -> *mut cdata::Cdata {
    // SAFETY: valid-L and live-state from the caller; raises with nothing owned here.
    unsafe {
        let c = cdata::to_cdata(l, st, 1);
        if c.is_null() || (*c).form == Form::CType {
            let got = if c.is_null() { cdata::lua_typename_at(l, 1) } else { "ctype" };
            cdata::raise_arg(l, 1, format!("cdata expected, got {got}"));
        }
        c
    }
}

/// `ffi.addressof(cdata)`: a `T *` to the object a `T` cdata holds or refers to (a struct
/// field, an array element). Like any pointer it does not keep the object alive.
unsafe extern "C-unwind" fn ffi_addressof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the new
    // cdata's payload holds one pointer.
    unsafe {
        let st = state::from_upvalue(l);
        let c = check_cdata(l, st);
        let ty = cdata::type_of(c);
        let pty = (*st).types.pointer_to(ty);
        let desc = (*st).desc(QualType::plain(pty));
        let w = std::mem::size_of::<usize>();
        let p = cdata::push_value(l, st, desc, w);
        convert::write_int((*p).ptr, w as u8, (*c).ptr as usize as u64);
        1
    }
}

/// `ffi.toretval(cdata)`: the Lua value a C function returning the cdata's type would give:
/// numbers and booleans for scalars, `nil` for a NULL pointer, the cdata (a reference to it)
/// otherwise.
unsafe extern "C-unwind" fn ffi_toretval(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the value
    // read is the cdata's own, anchored at index 1 while its reference lives.
    unsafe {
        let st = state::from_upvalue(l);
        let c = check_cdata(l, st);
        if let Err(e) = convert::c_to_lua(l, st, cdata::type_of(c), (*c).ptr, 1) {
            convert::raise_conv(l, st, e);
        }
        1
    }
}

/// `ffi.type(v)`: `"cdata"` for a cdata or ctype object (what `type` gives under LuaJIT),
/// else what `type(v)` gives.
unsafe extern "C-unwind" fn ffi_type(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); reads the
    // argument and pushes a static string.
    unsafe {
        let st = state::from_upvalue(l);
        if ffi::lua_gettop(l) < 1 {
            cdata::raise_arg(l, 1, "value expected".into());
        }
        let name = if cdata::to_cdata(l, st, 1).is_null() {
            ffi::lua_typename(l, ffi::lua_type(l, 1))
        } else {
            c"cdata".as_ptr()
        };
        ffi::lua_pushstring(l, name);
        1
    }
}
