//! The functions and values other FFIs for PUC Lua have and LuaJIT lacks, so that programs
//! written for them run too: cffi-lua's `ffi.nullptr`, `ffi.addressof`, `ffi.toretval`,
//! `ffi.type` and `ffi.tonumber`, and luaffi's `ffi.NULL`. Their meaning is cffi-lua's
//! (`docs/api.md` of q66/cffi-lua); where it and LuaJIT differ on the same function, LuaJIT's
//! rule is kept (docs/ffi.md says where).

use std::os::raw::c_int;

use abi_model::cdef;
use abi_model::QualType;
use mlua::ffi;

use crate::cdata::{self, Form};
use crate::convert;
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{self, FfiState};
use crate::stack::{LuaStack, OrRaise};

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

const FUNCTIONS: [(&std::ffi::CStr, CFn); 4] =
    [(c"addressof", ffi_addressof), (c"toretval", ffi_toretval), (c"type", ffi_type), (c"eval", ffi_eval)];

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
        if c.is_null() || (*c).form() == Form::CType {
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
        convert::write_int(cdata::bytes(p), w as u8, cdata::bytes(c) as usize as u64);
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
        if let Err(e) = convert::c_to_lua(l, st, cdata::type_of(c), cdata::bytes(c), 1) {
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

/// The value of the C integer constant expression `text` and its C type: `int`, else
/// `unsigned int`, else a 64-bit type, as for an enumerator; `uint64_t` for a value only it
/// holds (`0xffffffffffffffffULL`, which no enumerator takes). The cdef parser evaluates it
/// in copies of the state's types and names, so nothing is declared. `Err` is the parser's
/// message.
pub fn eval(st: &FfiState, text: &str) -> Result<(u64, u8, bool), String> {
    const NAME: &str = "__luaffi_eval";
    let declare = |decl: String| {
        let (mut types, mut scope) = (st.types.clone(), st.scope.clone());
        // The message without the position, which is in the wrapped text, not in `text`.
        cdef::cdef(&mut types, &mut scope, &decl, &[]).map_err(|e| {
            let full = e.to_string();
            full.split_once(": ").map_or(full.clone(), |(_, msg)| msg.to_string())
        })?;
        let c = scope.constant(NAME).ok_or_else(|| "constant expression expected".to_string())?;
        match shape(&types, c.ty.id) {
            Shape::Int { size, signed } => Ok((c.value as u64, size, signed)),
            _ => Err("constant expression expected".to_string()),
        }
    };
    declare(format!("enum {{ {NAME} = ({text}) }};"))
        .or_else(|e| declare(format!("static const uint64_t {NAME} = ({text});")).map_err(|_| e))
}

/// `ffi.eval(text)`: the C integer constant expression `text` as a cdata of its type (an
/// `int` cdata for `"1 << 4"`, a `uint64_t` one for `"0xffffffffffffffffULL"`), for 64-bit
/// constants a Lua number cannot hold.
unsafe extern "C-unwind" fn ffi_eval(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the text and
    // the result are dropped or moved into the raising function before anything raises.
    unsafe {
        let st = state::from_upvalue(l);
        let (p, len) = LuaStack::new(l).check_bytes(1).or_raise(l);
        let result = {
            let text = String::from_utf8_lossy(std::slice::from_raw_parts(p, len));
            eval(&*st, &text)
        };
        let (value, size, signed) = match result {
            Ok(v) => v,
            Err(msg) => cdata::raise(l, msg),
        };
        let id = (*st).types.int_of_size(size as u32, signed).unwrap_or(abi_model::TypeId(0));
        let desc = (*st).desc(QualType::plain(id));
        let c = cdata::push_value(l, st, desc, size as usize);
        convert::write_int(cdata::bytes(c), size, value);
        1
    }
}
