//! The `ffi.*` functions of the C type system: `cdef`, `new`, `cast`, `typeof`, `istype`,
//! `sizeof`, `alignof`, `offsetof`, `string`, `copy`, `fill`, `errno`, `metatype`, `gc`, and
//! the cdata-aware `tonumber`. Each is a `lua_CFunction` with the state as upvalue 1, so that
//! argument errors are Lua's own (`bad argument #1 to 'new' (...)`).

use std::os::raw::{c_char, c_int};

use abi_model::cdef::{self, CParam};
use abi_model::{CType, QualType, TypeId, TypeTable};
use mlua::{ffi, Lua, Table};

use crate::cdata::{self, Form, HAS_INTEGERS};
use crate::convert::{self, flags};
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{self, FfiState};
use crate::stack::{LuaStack, OrRaise};
use crate::surface::meta;
use crate::surface::object::{check_count, new_object, set_finalizer, variable_length, vl_size};

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

const FUNCTIONS: [(&std::ffi::CStr, CFn); 14] = [
    (c"cdef", ffi_cdef),
    (c"new", ffi_new),
    (c"cast", ffi_cast),
    (c"typeof", ffi_typeof),
    (c"istype", ffi_istype),
    (c"sizeof", ffi_sizeof),
    (c"alignof", ffi_alignof),
    (c"offsetof", ffi_offsetof),
    (c"string", ffi_string),
    (c"copy", ffi_copy),
    (c"fill", ffi_fill),
    (c"errno", ffi_errno),
    (c"metatype", ffi_metatype),
    (c"gc", ffi_gc),
];

/// Adds the C type system's functions to the `ffi` table, creating this Lua state's
/// [`FfiState`] on first use, and makes the global `tonumber` convert numeric cdata as
/// LuaJIT's does.
pub fn register_ctypes(lua: &Lua, module: &Table) -> mlua::Result<()> {
    // SAFETY: `open_raw` follows the lua_CFunction protocol.
    let f = unsafe { lua.create_c_function(open_raw) }?;
    f.call::<()>(module)
}

/// Fills the table at index 1 (see [`register_ctypes`]).
unsafe extern "C-unwind" fn open_raw(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with the module table at 1.
    unsafe {
        LuaStack::new(l).check_stack(16).or_raise(l);
        let (st, created) = crate::native::get_or_create(l);
        if created {
            meta::create_metatables(l, st);
        }
        for (name, f) in FUNCTIONS {
            ffi::lua_pushlightuserdata(l, st as *mut _);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, 1, name.as_ptr());
        }
        crate::surface::bit::register(l, st);
        crate::surface::extras::register(l, st, 1);
        if created {
            // Global wrappers that take cdata first and pass anything else to the original
            // (upvalue 2): tonumber(cdata) converts numeric cdata, as in LuaJIT; ipairs(cdata)
            // and pairs(cdata) go to the cdata's __ipairs/__pairs, as in LuaJIT: the
            // metatype's, or an error (Lua 5.3+'s ipairs would index 1, 2, ... until nil,
            // past any array; Lua 5.1's pairs takes tables only).
            let wrappers: [(&std::ffi::CStr, CFn); 3] =
                [(c"tonumber", ffi_tonumber), (c"ipairs", ffi_ipairs), (c"pairs", ffi_pairs)];
            for (name, wrapper) in wrappers {
                ffi::lua_getglobal(l, name.as_ptr());
                if ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION {
                    ffi::lua_pushlightuserdata(l, st as *mut _);
                    ffi::lua_insert(l, -2);
                    ffi::lua_pushcclosure(l, wrapper, 2);
                    ffi::lua_setglobal(l, name.as_ptr());
                } else {
                    ffi::lua_pop(l, 1);
                }
            }
        }
        // cffi-lua's `ffi.tonumber`: the global one, cdata-aware.
        ffi::lua_getglobal(l, c"tonumber".as_ptr());
        ffi::lua_setfield(l, 1, c"tonumber".as_ptr());
        0
    }
}

/// Calls the original function a global wrapper replaced (upvalue 2) with the wrapper's
/// arguments and returns its results. When `may_raise`, it runs protected, so that an
/// argument error it raises, which names no function (`bad argument #1 to '?'`: Lua sees a C
/// function called from C), is raised again from the wrapper's own frame, naming the function
/// the program called and its line, as the original would have.
///
/// # Safety
/// Called from a global wrapper (a lua_CFunction) with the original as upvalue 2.
unsafe fn call_original(l: *mut ffi::lua_State, may_raise: bool) -> c_int {
    // SAFETY: valid-L in a C function with its arguments on the stack and LUA_MINSTACK free
    // slots; the message is copied into a String that moves into `raise_arg` (which drops it
    // before Lua unwinds), and otherwise the error value is raised again as it is.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        ffi::lua_insert(l, 1);
        if !may_raise {
            ffi::lua_call(l, n, ffi::LUA_MULTRET);
            return ffi::lua_gettop(l);
        }
        if ffi::lua_pcall(l, n, ffi::LUA_MULTRET, 0) == ffi::LUA_OK {
            return ffi::lua_gettop(l);
        }
        let renamed = (ffi::lua_type(l, -1) == ffi::LUA_TSTRING)
            .then(|| lua_str(l, -1))
            .and_then(|msg| unnamed_arg_error(&msg).map(|(narg, rest)| (narg, rest.to_string())));
        match renamed {
            Some((narg, rest)) => cdata::raise_arg(l, narg, rest),
            None => crate::stack::raise(l, crate::stack::Raise::Top),
        }
    }
}

/// `bad argument #N to '?' (what)` as a C function called from C words it: `N` and `what`.
fn unnamed_arg_error(msg: &str) -> Option<(c_int, &str)> {
    let rest = msg.strip_prefix("bad argument #")?;
    let (narg, rest) = rest.split_once(" to '?' (")?;
    Some((narg.parse().ok()?, rest.strip_suffix(')')?))
}

/// A global `pairs`/`ipairs` wrapper: a cdata goes to the cdata metamethod `mm`
/// ([`meta::mm_pairs`], [`meta::mm_ipairs`]: the metatype's `__pairs`/`__ipairs`, or LuaJIT's
/// error), everything else to the original (upvalue 2).
///
/// # Safety
/// Called from the wrappers, with the FFI state as upvalue 1 (as `mm` expects) and the
/// original as upvalue 2.
unsafe fn pairs_wrapper(l: *mut ffi::lua_State, mm: CFn) -> c_int {
    // SAFETY: valid-L in a wrapper Lua called, with the upvalues `call_original` and `mm` expect.
    unsafe {
        let st = state::from_upvalue(l);
        if cdata::to_cdata(l, st, 1).is_null() {
            return call_original(l, true);
        }
        mm(l)
    }
}

/// `ipairs(v)`: [`pairs_wrapper`] with `__ipairs` (Lua 5.3+'s own ipairs has none).
unsafe extern "C-unwind" fn ffi_ipairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the module's ipairs with the FFI state as upvalue 1 and the
    // original ipairs as upvalue 2, as pairs_wrapper expects.
    unsafe { pairs_wrapper(l, meta::mm_ipairs) }
}

/// `pairs(v)`: [`pairs_wrapper`] with `__pairs` (Lua 5.1's own pairs takes tables only).
unsafe extern "C-unwind" fn ffi_pairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the module's pairs with the FFI state as upvalue 1 and the
    // original pairs as upvalue 2, as pairs_wrapper expects.
    unsafe { pairs_wrapper(l, meta::mm_pairs) }
}

/// A declaration with `$` parameters that failed.
enum DeclError {
    /// The parser's error (with its position in the declaration).
    Cdef(String),
    /// A `$` reached argument `narg`, a Lua value of this type that cannot be a parameter.
    BadParam(c_int, &'static str),
}

impl DeclError {
    /// The parser's error, naming the argument a `$` reached when it was not a parameter.
    fn from_cdef(e: cdef::CdefError, bad: Option<(c_int, &'static str)>) -> DeclError {
        match bad {
            Some((narg, got)) if e.message == cdef::TYPE_PARAM_EXPECTED => DeclError::BadParam(narg, got),
            _ => DeclError::Cdef(e.to_string()),
        }
    }

    /// Raises it: `bad argument #n (type parameter expected, got nil)` as LuaJIT words it, or
    /// the parser's message.
    ///
    /// # Safety
    /// As [`cdata::raise`].
    unsafe fn raise(self, l: *mut ffi::lua_State) -> ! {
        // SAFETY: valid-L and raise-clean from the caller; `self` moves into the raising function,
        // which drops its message before Lua unwinds.
        unsafe {
            match self {
                DeclError::Cdef(msg) => cdata::raise(l, msg),
                DeclError::BadParam(narg, got) => {
                    cdata::raise_arg(l, narg, format!("type parameter expected, got {got}"))
                }
            }
        }
    }
}

/// Collects `$` parameters from stack index `from` to the top (none for `from` 0). The first
/// value that cannot be one (nil, a boolean, a table, ...) ends the list as a
/// [`CParam::Invalid`], returned with its index and type name: as in LuaJIT it is an error
/// only when a `$` reaches it, otherwise a surplus parameter.
unsafe fn params(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    from: c_int,
) -> (Vec<CParam>, Option<(c_int, &'static str)>) {
    let mut out = Vec::new();
    if from == 0 {
        return (out, None);
    }
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        for i in from..=ffi::lua_gettop(l) {
            match ffi::lua_type(l, i) {
                ffi::LUA_TNUMBER => {
                    let v = if HAS_INTEGERS && ffi::lua_isinteger(l, i) != 0 {
                        ffi::lua_tointegerx(l, i, std::ptr::null_mut()) as i64
                    } else {
                        convert::f64_to_i64(ffi::lua_tonumberx(l, i, std::ptr::null_mut()))
                    };
                    out.push(CParam::Int(v));
                }
                ffi::LUA_TSTRING => out.push(CParam::Name(lua_str(l, i).into_owned())),
                ffi::LUA_TUSERDATA | ffi::LUA_TFUNCTION if !cdata::to_cdata(l, st, i).is_null() => {
                    out.push(CParam::Type(cdata::type_of(cdata::to_cdata(l, st, i))));
                }
                t => {
                    out.push(CParam::Invalid);
                    return (out, Some((i, cdata::lua_type_name(t))));
                }
            }
        }
    }
    (out, None)
}

/// The string at `idx` (lossy UTF-8).
unsafe fn lua_str<'a>(l: *mut ffi::lua_State, idx: c_int) -> std::borrow::Cow<'a, str> {
    // SAFETY: the string stays on the stack while the caller uses it.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len) as *const u8;
        if p.is_null() {
            return "".into();
        }
        let bytes = std::slice::from_raw_parts(p, len);
        // `from_utf8` checks words of ASCII at a time, `from_utf8_lossy` a byte at a time
        // (650 instructions for a 60-byte declaration): the lossy copy only for bad text.
        match std::str::from_utf8(bytes) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(bytes),
        }
    }
}

unsafe fn parse_arg(l: *mut ffi::lua_State, st: *mut FfiState, params_from: c_int) -> Result<QualType, DeclError> {
    // SAFETY: the declaration string is at index 1.
    unsafe {
        let (ps, bad) = params(l, st, params_from);
        let src = lua_str(l, 1);
        let s = &mut *st;
        cdef::parse_type(&mut s.types, &mut s.scope, &src, &ps).map_err(|e| DeclError::from_cdef(e, bad))
    }
}

/// The type a declaration string at index 1 parsed to before, if it was cached.
unsafe fn cached_type(l: *mut ffi::lua_State, st: *mut FfiState) -> Option<QualType> {
    // SAFETY: the string is at index 1.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 1, &mut len) as *const u8;
        (*st).parsed(std::slice::from_raw_parts(p, len), p as usize)
    }
}

/// Caches the type of the declaration string at index 1, unless it declares a type (`{`).
unsafe fn remember_type(l: *mut ffi::lua_State, st: *mut FfiState, t: QualType) {
    // SAFETY: the string is at index 1.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 1, &mut len) as *const u8;
        (*st).remember_parsed(std::slice::from_raw_parts(p, len), p as usize, t);
    }
}

/// The C type argument 1 names: a declaration string (with `$` parameters from index
/// `params_from`, 0 for none), a ctype object or a cdata (its type).
unsafe fn check_ctype(l: *mut ffi::lua_State, st: *mut FfiState, params_from: c_int) -> QualType {
    // SAFETY: valid-L: only reads of existing stack slots; errors raised with nothing owned in this
    // frame.
    unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TSTRING => {
                let cacheable = params_from == 0 || ffi::lua_gettop(l) < params_from;
                if cacheable {
                    if let Some(t) = cached_type(l, st) {
                        return t;
                    }
                }
                match parse_arg(l, st, params_from) {
                    Ok(t) => {
                        if cacheable {
                            remember_type(l, st, t);
                        }
                        t
                    }
                    Err(e) => e.raise(l),
                }
            }
            ffi::LUA_TUSERDATA | ffi::LUA_TFUNCTION if !cdata::to_cdata(l, st, 1).is_null() => {
                // A ctype or cdata takes no parameters (LuaJIT's `ffi_checkctype`).
                if params_from != 0 && ffi::lua_gettop(l) >= params_from {
                    cdata::raise_arg(l, 1, "wrong number of type parameters".into());
                }
                cdata::type_of(cdata::to_cdata(l, st, 1))
            }
            t => cdata::raise_arg(l, 1, format!("C type expected, got {}", cdata::lua_type_name(t))),
        }
    }
}

/// Argument `narg` converted to an `int32_t` (LuaJIT's `ffi_checkint`).
unsafe fn check_int(l: *mut ffi::lua_State, st: *mut FfiState, narg: c_int) -> i32 {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        if narg > ffi::lua_gettop(l) {
            cdata::raise_arg(l, narg, "value expected".into());
        }
        let mut v = 0i32;
        let int = QualType::plain((*st).types.int(abi_model::IntKind::Int));
        if let Err(e) = convert::lua_to_c(l, st, narg, int, &mut v as *mut i32 as *mut u8, 0) {
            convert::raise_conv_arg(l, st, narg, e);
        }
        v
    }
}

/// The longest string `ffi.string` makes: LuaJIT's `LJ_MAX_STR`, above which it raises
/// "string length overflow".
const MAX_STRING: u32 = 0x7fff_ff00;

/// Argument `narg` converted to a pointer of type `ptr_ty` (LuaJIT's `ffi_checkptr`).
unsafe fn check_ptr(l: *mut ffi::lua_State, st: *mut FfiState, narg: c_int, ptr_ty: TypeId) -> *mut u8 {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        if narg > ffi::lua_gettop(l) {
            cdata::raise_arg(l, narg, "value expected".into());
        }
        let mut p: *mut u8 = std::ptr::null_mut();
        if let Err(e) = convert::lua_to_c(l, st, narg, QualType::plain(ptr_ty), &mut p as *mut *mut u8 as *mut u8, 0) {
            convert::raise_conv_arg(l, st, narg, e);
        }
        p
    }
}

unsafe extern "C-unwind" fn ffi_cdef(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction of this module (state upvalue).
    unsafe {
        let st = state::from_upvalue(l);
        LuaStack::new(l).check_bytes(1).or_raise(l);
        // The parameters and the text are dropped at the end of this block, before a raise.
        let r = {
            let (ps, bad) = params(l, st, 2);
            let src = lua_str(l, 1);
            let s = &mut *st;
            cdef::cdef(&mut s.types, &mut s.scope, &src, &ps).map_err(|e| DeclError::from_cdef(e, bad))
        };
        (*st).refresh_incomplete();
        (*st).forget_parsed();
        if let Err(e) = r {
            e.raise(l);
        }
        0
    }
}

unsafe extern "C-unwind" fn ffi_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.new with the FFI state as upvalue 1, so `from_upvalue` gives
    // a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        new_object(l, st, ty, 2)
    }
}

unsafe extern "C-unwind" fn ffi_cast(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.cast with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        if ffi::lua_gettop(l) < 2 {
            cdata::raise_arg(l, 2, "value expected".into());
        }
        ffi::lua_settop(l, 2);
        let desc = (*st).desc(ty);
        let sh = (*desc).shape;
        // LuaJIT casts to any CT_NUM or pointer: a 16-byte integer too (from integer cdata).
        if !(sh.is_num() || matches!(sh, Shape::Pointer(_) | Shape::Ptr32(_) | Shape::WideInt { .. })) {
            cdata::raise_arg(l, 1, "invalid C type".into());
        }
        let c = cdata::to_cdata(l, st, 2);
        if !c.is_null() && c.form() == Form::Value && cdata::type_of(c) == ty {
            return 1;
        }
        if matches!(sh, Shape::Pointer(_)) && !c.is_null() && c.form() != Form::CType {
            // A pointer, array or record cdata cast to a pointer is its address (what the
            // CAST conversion, `convert::conv_ct_ct`, makes of them), without the general
            // conversion's dispatch.
            let address = match (*c.desc()).shape {
                Shape::Pointer(_) => Some(cdata::bytes(c).cast::<usize>().read_unaligned()),
                Shape::Array(..) | Shape::Record => Some(cdata::bytes(c) as usize),
                _ => None,
            };
            if let Some(a) = address {
                cdata::push_scalar(l, st, desc, a as u64, std::mem::size_of::<usize>());
                return 1;
            }
        }
        let size = (*desc).size.unwrap_or(0) as usize;
        let new = cdata::push_value(l, st, desc, size);
        if let Err(e) = convert::lua_to_c(l, st, 2, ty, cdata::bytes(new), flags::CAST) {
            convert::raise_conv(l, st, e);
        }
        1
    }
}

unsafe extern "C-unwind" fn ffi_typeof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.typeof with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 2);
        let desc = (*st).desc(ty);
        cdata::push_ctype(l, st, desc);
        1
    }
}

/// LuaJIT's `ffi.istype` rule: the same type ignoring qualifiers; compatible pointers;
/// numbers of the same kind and size; or a record and a pointer to it.
fn is_type(types: &TypeTable, t1: QualType, t2: QualType) -> bool {
    if t1.id == t2.id {
        return true;
    }
    let (s1, s2) = (shape(types, t1.id), shape(types, t2.id));
    let size = |id| types.size_of(id).ok();
    let same_class = s1.is_num() == s2.is_num() && s1.is_ptr_like() == s2.is_ptr_like();
    if same_class && size(t1.id) == size(t2.id) {
        if s1.is_ptr_like() && s2.is_ptr_like() {
            return std::mem::discriminant(&s1) == std::mem::discriminant(&s2)
                && convert::compatible_ptr(types, t1, t2, flags::IGNORE_QUALS);
        }
        if (s1.is_num() || s1 == Shape::Void) && s1 == s2 {
            return true;
        }
    }
    matches!((s1, s2), (Shape::Record, Shape::Pointer(to)) if to.id == t1.id)
}

unsafe extern "C-unwind" fn ffi_istype(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.istype with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let t1 = check_ctype(l, st, 0);
        if ffi::lua_gettop(l) < 2 {
            cdata::raise_arg(l, 2, "value expected".into());
        }
        let c = cdata::to_cdata(l, st, 2);
        let answer = !c.is_null() && is_type(&(*st).types, t1, cdata::type_of(c));
        ffi::lua_pushboolean(l, answer as c_int);
        1
    }
}

unsafe extern "C-unwind" fn ffi_sizeof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.sizeof with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        let c = cdata::to_cdata(l, st, 1);
        let vl = variable_length(&(*st).types, ty.id);
        let size = if !c.is_null() && c.form() == Form::Value && vl.is_some() {
            Some(cdata::byte_len(c) as u64)
        } else if let Some((fixed, esize)) = vl {
            let n = check_count(l, st, 2);
            vl_size(fixed, esize, n)
        } else {
            (*st).types.size_of(ty.id).ok()
        };
        match size {
            Some(s) => push_count(l, s as i64),
            None => ffi::lua_pushnil(l),
        }
        1
    }
}

unsafe fn push_count(l: *mut ffi::lua_State, v: i64) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        } else {
            ffi::lua_pushnumber(l, v as f64);
        }
    }
}

unsafe extern "C-unwind" fn ffi_alignof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.alignof with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        let align = match crate::ctypes::ctype::align_of(&(*st).types, ty.id) {
            Ok(align) => align,
            Err(e) => {
                // Nothing owning memory may stay in this frame when raise longjmps.
                let msg = e.to_string();
                drop(e);
                cdata::raise(l, msg)
            }
        };
        push_count(l, align as i64);
        1
    }
}

unsafe extern "C-unwind" fn ffi_offsetof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.offsetof with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        LuaStack::new(l).check_bytes(2).or_raise(l);
        let name = lua_str(l, 2).into_owned();
        let types = &(*st).types;
        if !matches!(types.get(ty.id), CType::Record(r) if r.body.is_some()) {
            return 0;
        }
        let Some((mty, offset, bits)) = convert::member(types, ty.id, &name) else { return 0 };
        drop(name);
        match bits {
            None => {
                push_count(l, offset as i64);
                1
            }
            Some(b) => {
                // LuaJIT reports a bit-field as (offset of its storage unit, bit position in
                // the unit, width), the unit being an aligned object of the declared type.
                let unit = types.size_of(mty.id).unwrap_or(1).max(1);
                let mut start = b.bit_offset / (unit * 8) * unit;
                if b.bit_offset - start * 8 + b.width as u64 > unit * 8 {
                    start = b.bit_offset / 8;
                }
                push_count(l, start as i64);
                push_count(l, (b.bit_offset - start * 8) as i64);
                push_count(l, b.width as i64);
                3
            }
        }
    }
}

unsafe extern "C-unwind" fn ffi_string(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.string with the FFI state as upvalue 1 (live-state); the
    // bytes read are the ones the program names, unchecked as in C.
    unsafe {
        let st = state::from_upvalue(l);
        if ffi::lua_gettop(l) < 1 {
            cdata::raise_arg(l, 1, "value expected".into());
        }
        if ffi::lua_gettop(l) >= 2 && (ffi::lua_isnil(l, 2) == 0) {
            let len = check_count(l, st, 2);
            let p = check_ptr(l, st, 1, (*st).const_void_ptr());
            let Some(len) = len.filter(|&n| n <= MAX_STRING) else {
                cdata::raise(l, "string length overflow".into());
            };
            if p.is_null() && len != 0 {
                cdata::raise_arg(l, 1, "NULL pointer".into());
            }
            ffi::lua_pushlstring(l, p as *const c_char, len as usize);
        } else {
            let p = check_ptr(l, st, 1, (*st).const_char_ptr());
            if p.is_null() {
                cdata::raise_arg(l, 1, "NULL pointer".into());
            }
            ffi::lua_pushstring(l, p as *const c_char);
        }
        1
    }
}

unsafe extern "C-unwind" fn ffi_copy(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.copy with the FFI state as upvalue 1 (live-state); the bytes
    // written and read are the ones the program names, unchecked as in C.
    unsafe {
        let st = state::from_upvalue(l);
        let dst = check_ptr(l, st, 1, (*st).void_ptr());
        let src = check_ptr(l, st, 2, (*st).const_void_ptr());
        let len = if ffi::lua_type(l, 2) == ffi::LUA_TSTRING && ffi::lua_gettop(l) < 3 {
            ffi::lua_rawlen(l, 2) + 1
        } else {
            match check_count(l, st, 3) {
                Some(n) => n as usize,
                None => cdata::raise_arg(l, 3, "length out of range".into()),
            }
        };
        if len > 0 && (dst.is_null() || src.is_null()) {
            cdata::raise_arg(l, if dst.is_null() { 1 } else { 2 }, "NULL pointer".into());
        }
        std::ptr::copy(src, dst, len);
        0
    }
}

unsafe extern "C-unwind" fn ffi_fill(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.fill with the FFI state as upvalue 1 (live-state); the bytes
    // written are the ones the program names, unchecked as in C.
    unsafe {
        let st = state::from_upvalue(l);
        let dst = check_ptr(l, st, 1, (*st).void_ptr());
        let Some(len) = check_count(l, st, 2) else {
            cdata::raise_arg(l, 2, "length out of range".into());
        };
        let len = len as usize;
        let byte = if ffi::lua_gettop(l) >= 3 && (ffi::lua_isnil(l, 3) == 0) { check_int(l, st, 3) } else { 0 };
        if len > 0 && dst.is_null() {
            cdata::raise_arg(l, 1, "NULL pointer".into());
        }
        std::ptr::write_bytes(dst, byte as u8, len);
        0
    }
}

/// `ffi.errno([n])`: the `errno` saved after the last C call (the value `ffi.errno(n)` set
/// before it, if none was made since); with `n`, sets the value to restore before the next
/// call (and the thread's `errno` now). Returns the previous value.
unsafe extern "C-unwind" fn ffi_errno(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.errno with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let old = (*st).errno();
        if ffi::lua_gettop(l) >= 1 {
            let n = check_int(l, st, 1);
            (*st).set_errno(n);
            crate::os::errno::set_os_errno(n);
        }
        push_count(l, old as i64);
        1
    }
}

unsafe extern "C-unwind" fn ffi_metatype(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.metatype with the FFI state as upvalue 1, so `from_upvalue`
    // gives a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let ty = check_ctype(l, st, 0);
        LuaStack::new(l).check_type(2, ffi::LUA_TTABLE).or_raise(l);
        let sh = shape(&(*st).types, ty.id);
        if !matches!(sh, Shape::Record | Shape::Complex { .. }) || ty.quals != abi_model::Quals::NONE {
            cdata::raise_arg(l, 1, "invalid C type".into());
        }
        if (*st).metatype(ty.id).is_some() {
            cdata::raise(l, "cannot change a protected metatable".into());
        }
        ffi::lua_pushvalue(l, 2);
        let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        (*st).set_metatype(ty.id, r);
        let desc = (*st).desc(ty);
        cdata::push_ctype(l, st, desc);
        1
    }
}

unsafe extern "C-unwind" fn ffi_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls ffi.gc with the FFI state as upvalue 1, so `from_upvalue` gives
    // a live-state for this `l`.
    unsafe {
        let st = state::from_upvalue(l);
        let c = cdata::to_cdata(l, st, 1);
        if ffi::lua_type(l, 1) == ffi::LUA_TNIL && ffi::lua_gettop(l) >= 2 {
            // A NULL pointer read from C is nil (convert::push_pointer): `ffi.gc(C.fopen(...),
            // C.fclose)` gives nil back for the program's `== nil` check, finalizing nothing.
            ffi::lua_settop(l, 1);
            return 1;
        }
        if c.is_null() {
            cdata::raise_arg(l, 1, format!("cdata expected, got {}", cdata::lua_typename_at(l, 1)));
        }
        if ffi::lua_gettop(l) < 2 {
            cdata::raise_arg(l, 2, "value expected".into());
        }
        let sh = shape(&(*st).types, cdata::type_of(c).id);
        if c.form() == Form::CType || !matches!(sh, Shape::Pointer(_) | Shape::Record | Shape::Array(..)) {
            cdata::raise_arg(l, 1, "invalid C type".into());
        }
        ffi::lua_settop(l, 2);
        set_finalizer(l, st, 1, 2);
        ffi::lua_settop(l, 1);
        1
    }
}

/// `tonumber(v, ...)`: numeric cdata convert to a number (64-bit integers to a Lua integer
/// on 5.3+ when exact, as their reads do), complex to its real part, bool to 0/1, other
/// cdata to nil; everything else goes to the original `tonumber` (upvalue 2).
unsafe extern "C-unwind" fn ffi_tonumber(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the module's tonumber with the FFI state as upvalue 1
    // (live-state) and the original tonumber as upvalue 2.
    unsafe {
        let st = state::from_upvalue(l);
        let c = cdata::to_cdata(l, st, 1);
        if c.is_null() {
            // `tonumber(v)` never raises; only a missing value or a base can.
            return call_original(l, ffi::lua_gettop(l) != 1);
        }
        if c.form() == Form::CType {
            ffi::lua_pushnil(l);
            return 1;
        }
        let ty = cdata::type_of(c);
        let p = cdata::bytes(c);
        match shape(&(*st).types, ty.id) {
            Shape::Bool => push_count(l, *p as i64),
            Shape::WideBool { size } => push_count(l, (convert::read_int(p, size.min(4), false) != 0) as i64),
            Shape::Int { size: 8, signed }
                if !HAS_INTEGERS || (!signed && convert::read_int(p, 8, false) > i64::MAX as u64) =>
            {
                let v = convert::read_int(p, 8, signed);
                ffi::lua_pushnumber(l, if signed { v as i64 as f64 } else { v as f64 });
            }
            Shape::Int { .. } | Shape::Float { .. } => {
                if let Err(e) = convert::c_to_lua(l, st, ty, p, 0) {
                    convert::raise_conv(l, st, e);
                }
            }
            Shape::Complex { part } => ffi::lua_pushnumber(l, convert::read_float(p, part)),
            // LuaJIT converts a 16- or 32-byte integer to no double: it raises.
            Shape::WideInt { .. } => {
                let double = QualType::plain((*st).types.float(abi_model::FloatKind::Double));
                convert::raise_conv(l, st, convert::ConvError::Bad { from: convert::Origin::C(ty), to: double });
            }
            _ => ffi::lua_pushnil(l),
        }
        1
    }
}
