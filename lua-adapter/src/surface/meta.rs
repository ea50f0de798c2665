//! The cdata metatable: indexing (members, elements, `->` through pointers, complex `re`/`im`),
//! assignment with LuaJIT's conversions and const checks, arithmetic, `tostring`, calling a
//! ctype, finalizers, and `ffi.metatype` dispatch for everything the built-in behaviour leaves
//! open (LuaJIT's lib_ffi.c `ffi_meta___*` are the reference).

use std::os::raw::c_int;

use abi_model::cdef::{find_constant, ConstDecl};
use abi_model::{QualType, Quals};
use mlua::ffi;

use crate::cdata::{self, format_ptr, Cdata, Form};
use crate::convert::{self, read_float, read_int, write_float, ConvError};
use crate::ctypes::ctype::{repr, shape, Shape};
use crate::ctypes::state::{self, FfiState, RegistryRefs, FIELD_CACHE};
use crate::surface::fast::{self, Fast};
use crate::surface::int64::{self, Op};
use crate::surface::object::push_metamethod;

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

/// The metamethods every cdata has.
const METHODS: [(&std::ffi::CStr, CFn); 18] = [
    (c"__index", mm_index),
    (c"__newindex", mm_newindex),
    (c"__tostring", mm_tostring),
    (c"__call", mm_call),
    (c"__eq", mm_eq),
    (c"__lt", mm_lt),
    (c"__le", mm_le),
    (c"__add", mm_add),
    (c"__sub", mm_sub),
    (c"__mul", mm_mul),
    (c"__div", mm_div),
    (c"__mod", mm_mod),
    (c"__pow", mm_pow),
    (c"__unm", mm_unm),
    (c"__len", mm_len),
    (c"__concat", mm_concat),
    (c"__pairs", mm_pairs),
    (c"__ipairs", mm_ipairs),
];

/// Creates the finalizer table, the ctype cache and the two cdata metatables, anchors them in
/// the registry and records them in the state.
///
/// # Safety
/// `l` valid with 8 free slots; `st` its freshly created state.
pub unsafe fn create_metatables(l: *mut ffi::lua_State, st: *mut FfiState) {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        // Finalizers: weak keys, so a finalizer never keeps its cdata alive.
        ffi::lua_createtable(l, 0, 0);
        weak(l, c"k");
        ffi::lua_pushvalue(l, -1);
        let finalizers_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        let finalizers = ffi::lua_gettop(l);
        // ctype objects by descriptor: weak values.
        ffi::lua_createtable(l, 0, 0);
        weak(l, c"v");
        let ctype_cache_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        // The key strings of the field cache's slots (`fast::learn`), sized for all of them.
        ffi::lua_createtable(l, FIELD_CACHE as c_int, 0);
        let field_keys_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        // One closure per metamethod, shared by both metatables: Lua 5.1 and 5.2 call
        // `__eq` (5.1 also `__lt`/`__le`) only when both operands have the very same
        // metamethod, so a cdata with a finalizer must compare with one without.
        ffi::lua_createtable(l, 0, METHODS.len() as c_int);
        for (name, f) in METHODS {
            ffi::lua_pushlightuserdata(l, st as *mut _);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        let methods = ffi::lua_gettop(l);
        let mut metatable_refs = [ffi::LUA_NOREF; 2];
        let mut metatable_addrs = [0; 2];
        for with_gc in [false, true] {
            ffi::lua_createtable(l, 0, METHODS.len() as c_int + 3);
            for (name, _) in METHODS {
                ffi::lua_getfield(l, methods, name.as_ptr());
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            if with_gc {
                ffi::lua_pushvalue(l, finalizers);
                ffi::lua_pushcclosure(l, mm_gc, 1);
                ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            }
            // To-be-closed variables (Lua 5.4+): `local p <close> = ffi.gc(x, f)` runs the
            // finalizer when `p` goes out of scope, once (`mm_gc` removes it before calling
            // it, so the collector won't run it again); a cdata without one closes as a no-op.
            #[cfg(any(feature = "lua54", feature = "lua55"))]
            {
                ffi::lua_pushvalue(l, finalizers);
                ffi::lua_pushcclosure(l, mm_gc, 1);
                ffi::lua_setfield(l, -2, c"__close".as_ptr());
            }
            // getmetatable(cdata) answers "ffi", as in LuaJIT.
            ffi::lua_pushstring(l, c"ffi".as_ptr());
            ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            metatable_addrs[with_gc as usize] = ffi::lua_topointer(l, -1) as usize;
            metatable_refs[with_gc as usize] = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        }
        (*st).set_refs(RegistryRefs {
            metatable: metatable_refs[0],
            gc_metatable: metatable_refs[1],
            finalizers: finalizers_ref,
            ctype_cache: ctype_cache_ref,
            field_keys: field_keys_ref,
        });
        (*st).set_shared_metatables(metatable_addrs);
        ffi::lua_pop(l, 2); // the shared methods and the finalizer table
    }
}

unsafe fn weak(l: *mut ffi::lua_State, mode: &std::ffi::CStr) {
    // SAFETY: the table is at the top.
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, mode.as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
}

/// The cdata at index 1 of a metamethod.
unsafe fn self_cdata(l: *mut ffi::lua_State, st: *mut FfiState) -> Cdata {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        // Lua runs a metamethod of the cdata metatable for a userdata only: no namespace
        // function test is needed (a direct call with anything else fails below).
        let c = cdata::userdata_cdata(l, st, 1);
        if c.is_null() {
            cdata::raise_arg(l, 1, format!("cdata expected, got {}", cdata::lua_typename_at(l, 1)));
        }
        c
    }
}

/// What indexing a cdata with a key resolved to.
enum Place {
    /// A value of type `ty` at `p`; `anchor`: the stack index owning the bytes (0: none).
    Value { ty: QualType, p: *mut u8, anchor: c_int, quals: Quals },
    /// A bit-field of a record at `record`.
    Bits { ty: QualType, bits: abi_model::BitPos, record: *mut u8, quals: Quals },
    /// A constant declared in a record (`static const`, a member enum's enumerator), read
    /// through an instance or the ctype; never written.
    Const(ConstDecl),
    /// Nothing: the metatype of `ty` (if any) decides.
    Missing { ty: QualType },
}

/// The constant `key` (index 2, a string) declared in record `ty`, or through a pointer to one.
unsafe fn record_constant(l: *mut ffi::lua_State, types: &abi_model::TypeTable, ty: QualType) -> Option<ConstDecl> {
    // SAFETY: valid-L: reads the key at index 2 without changing the stack.
    unsafe {
        if ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            return None;
        }
        let rec = match shape(types, ty.id) {
            Shape::Pointer(to) | Shape::Ptr32(to) => to.id,
            _ => ty.id,
        };
        let mut len = 0usize;
        let k = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
        let key = std::str::from_utf8(std::slice::from_raw_parts(k, len)).ok()?;
        find_constant(types, rec, key)
    }
}

/// The address held by the pointer of shape `sh` at `p`: a whole word, or the low 32 bits
/// of a 4-byte pointer (`__ptr32`), zero-extended as LuaJIT's `cdata_getptr` reads it.
///
/// # Safety
/// `p` points to a pointer of shape `sh`.
unsafe fn pointer_value(p: *const u8, sh: Shape) -> usize {
    let width = if matches!(sh, Shape::Ptr32(_)) { 4 } else { std::mem::size_of::<usize>() as u8 };
    // SAFETY: `p` holds a pointer of `width` bytes (caller's contract).
    unsafe { read_int(p, width, false) as usize }
}

/// Resolves `cdata[key]` (key at index 2) as LuaJIT's `lj_cdata_index` does.
unsafe fn resolve(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata) -> Place {
    // SAFETY: `c` is a live cdata at index 1; memory reached is the cdata's or what its
    // pointers point to (the user's responsibility, as in C).
    unsafe {
        let types = &(*st).types;
        let mut ty = cdata::type_of(c);
        if c.form() == Form::CType {
            if let Some(k) = record_constant(l, types, ty) {
                return Place::Const(k);
            }
            let target = match shape(types, ty.id) {
                Shape::Pointer(to) | Shape::Ptr32(to) => to,
                _ => ty,
            };
            return Place::Missing { ty: target };
        }
        let mut p = cdata::bytes(c);
        let mut anchor = 1;
        let key_type = ffi::lua_type(l, 2);
        let index = match key_type {
            ffi::LUA_TNUMBER => Some(if cdata::HAS_INTEGERS && ffi::lua_isinteger(l, 2) != 0 {
                ffi::lua_tointegerx(l, 2, std::ptr::null_mut()) as i64
            } else {
                convert::f64_to_i64(ffi::lua_tonumberx(l, 2, std::ptr::null_mut()))
            }),
            ffi::LUA_TUSERDATA => {
                let k = cdata::to_cdata(l, st, 2);
                if !k.is_null() && k.form() != Form::CType {
                    match shape(types, cdata::type_of(k).id) {
                        Shape::Int { size, signed } => Some(read_int(cdata::bytes(k), size, signed) as i64),
                        _ => None,
                    }
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(i) = index {
            let desc = &*c.desc();
            match desc.shape {
                Shape::Pointer(elem) | Shape::Ptr32(elem) => {
                    let Some(sz) = desc.elem_size.or_else(|| types.size_of(elem.id).ok()) else {
                        cdata::raise(l, "size of C type is unknown or too large".into());
                    };
                    let base = pointer_value(p, desc.shape);
                    let at = base.wrapping_add((i as isize).wrapping_mul(sz as isize) as usize);
                    return Place::Value { ty: elem, p: at as *mut u8, anchor: 0, quals: elem.quals };
                }
                Shape::Array(elem, _) => {
                    if let Some(sz) = desc.elem_size.or_else(|| types.size_of(elem.id).ok()) {
                        let at = (p as usize).wrapping_add((i as isize).wrapping_mul(sz as isize) as usize);
                        let mut quals = elem.quals.union(ty.quals);
                        // A vector's elements are read-only, as a complex's parts (LuaJIT's
                        // "valarray elements are constant").
                        quals.is_const |= types.is_vector(ty.id);
                        return Place::Value { ty: QualType { id: elem.id, quals }, p: at as *mut u8, anchor, quals };
                    }
                }
                Shape::Complex { part } if i == 0 || i == 1 => {
                    let fty = QualType {
                        id: types.float(if part == 4 {
                            abi_model::FloatKind::Float
                        } else {
                            abi_model::FloatKind::Double
                        }),
                        quals: Quals::CONST,
                    };
                    return Place::Value { ty: fty, p: p.add(i as usize * part as usize), anchor, quals: Quals::CONST };
                }
                _ => {}
            }
            return Place::Missing { ty };
        }
        if key_type != ffi::LUA_TSTRING {
            return Place::Missing { ty };
        }
        let mut len = 0usize;
        let k = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
        let key = std::slice::from_raw_parts(k, len);
        let mut quals = ty.quals;
        let mut sh = (*c.desc()).shape;
        if let Shape::Pointer(to) | Shape::Ptr32(to) = sh {
            // `p.x` on a pointer to a record is `p->x`.
            let to_shape = shape(&(*st).types, to.id);
            if to_shape == Shape::Record {
                p = pointer_value(p, sh) as *mut u8;
                ty = to;
                quals = to.quals;
                anchor = 0;
                sh = to_shape;
            }
        }
        match sh {
            Shape::Record => {
                if let Some(m) = (*st).member(ty.id, key, k as usize) {
                    let q = quals.union(m.ty.quals);
                    return match m.bits {
                        Some(b) => Place::Bits { ty: m.ty, bits: b, record: p, quals: q },
                        None => Place::Value { ty: m.ty, p: p.add(m.offset as usize), anchor, quals: q },
                    };
                }
                if let Some(k) = record_constant(l, types, ty) {
                    return Place::Const(k);
                }
            }
            Shape::Complex { part } => {
                let fty = QualType {
                    id: (*st).types.float(if part == 4 {
                        abi_model::FloatKind::Float
                    } else {
                        abi_model::FloatKind::Double
                    }),
                    quals: Quals::CONST,
                };
                match key {
                    b"re" => return Place::Value { ty: fty, p, anchor, quals: Quals::CONST },
                    b"im" => return Place::Value { ty: fty, p: p.add(part as usize), anchor, quals: Quals::CONST },
                    _ => {}
                }
            }
            _ => {}
        }
        Place::Missing { ty }
    }
}

/// The error for a failed index (LuaJIT's `ffi_index_meta` wording).
unsafe fn index_error(l: *mut ffi::lua_State, st: *mut FfiState, ty: QualType) -> ! {
    // SAFETY: building the message reads the stack; `raise` drops it before longjmp.
    unsafe {
        // `name` lives in this block only: a String still alive in this frame when `raise`
        // longjmps would never be freed (valgrind found it).
        let msg = {
            let name = repr(&(*st).types, ty, false);
            if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let k = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
                let key = String::from_utf8_lossy(std::slice::from_raw_parts(k, len)).into_owned();
                format!("'{name}' has no member named '{key}'")
            } else {
                let k = cdata::to_cdata(l, st, 2);
                let key = if !k.is_null() {
                    repr(&(*st).types, cdata::type_of(k), false)
                } else {
                    cdata::lua_typename_at(l, 2).to_string()
                };
                format!("'{name}' cannot be indexed with '{key}'")
            }
        };
        cdata::raise(l, msg)
    }
}

/// `__index` / `__newindex` through the metatype (LuaJIT's `ffi_index_meta`): a function is
/// called with the cdata, key (and value); a table is indexed (a nil result is an error).
unsafe fn index_meta(l: *mut ffi::lua_State, st: *mut FfiState, ty: QualType, set: bool) -> c_int {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        let event = if set { c"__newindex" } else { c"__index" };
        if !push_metamethod(l, st, ty, event) {
            index_error(l, st, ty);
        }
        if ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION {
            let n = if set { 3 } else { 2 };
            for i in 1..=n {
                ffi::lua_pushvalue(l, i);
            }
            ffi::lua_call(l, n, if set { 0 } else { 1 });
            return if set { 0 } else { 1 };
        }
        let t = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, 2);
        if set {
            ffi::lua_pushvalue(l, 3);
            ffi::lua_settable(l, t);
            0
        } else {
            ffi::lua_gettable(l, t);
            if ffi::lua_isnil(l, -1) != 0 {
                index_error(l, st, ty);
            }
            1
        }
    }
}

/// The floating-point member named by the string at index 2 of the record cdata `c` (a
/// value or reference, not a pointer to one): its address, size and qualifiers, or `None`
/// for anything else. The common `v.x` of `__index` and `__newindex` without [`resolve`]'s
/// dispatch; it answers as `resolve` would (a record's members come before its metatype).
///
/// # Safety
/// `c` is the live cdata at index 1 of a metamethod; `st` its state.
#[inline]
unsafe fn float_member(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata) -> Option<(*mut u8, u8, Quals)> {
    // SAFETY: `c` is a live cdata (caller's contract): its descriptor and bytes are valid;
    // the key string stays at index 2 while its bytes are read.
    unsafe {
        let desc = &*c.desc();
        if desc.shape != Shape::Record || c.form() == Form::CType || ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0usize;
        let k = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
        let m = (*st).member(desc.ty.id, std::slice::from_raw_parts(k, len), k as usize)?;
        match (m.shape, m.bits) {
            (Shape::Float { size }, None) => {
                Some((cdata::bytes(c).add(m.offset as usize), size, desc.ty.quals.union(m.ty.quals)))
            }
            _ => None,
        }
    }
}

/// The floating-point element `c[i]` of a pointer or array cdata `c` for the number key `i`
/// at index 2: its address and size, or `None` for anything else (the `p[0]` of a callback
/// comparing `const double *`). It answers as [`resolve`] would.
///
/// # Safety
/// As [`float_member`]; the element's memory is the user's responsibility, as in C.
#[inline]
unsafe fn float_element(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata) -> Option<(*mut u8, u8)> {
    // SAFETY: `c` is a live cdata (caller's contract): its descriptor and bytes are valid.
    unsafe {
        let desc = &*c.desc();
        let (Shape::Pointer(elem) | Shape::Array(elem, _)) = desc.shape else { return None };
        if c.form() == Form::CType || ffi::lua_type(l, 2) != ffi::LUA_TNUMBER {
            return None;
        }
        let (Shape::Float { size }, Some(step)) = (shape(&(*st).types, elem.id), desc.elem_size) else {
            return None;
        };
        let i = if cdata::HAS_INTEGERS && ffi::lua_isinteger(l, 2) != 0 {
            ffi::lua_tointegerx(l, 2, std::ptr::null_mut()) as i64
        } else {
            convert::f64_to_i64(ffi::lua_tonumberx(l, 2, std::ptr::null_mut()))
        };
        let base = match desc.shape {
            Shape::Pointer(_) => read_int(cdata::bytes(c), std::mem::size_of::<usize>() as u8, false) as usize,
            _ => cdata::bytes(c) as usize,
        };
        Some((base.wrapping_add((i as isize).wrapping_mul(step as isize) as usize) as *mut u8, size))
    }
}

unsafe extern "C-unwind" fn mm_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a metamethod of this module's metatable: upvalue 1 is the state, argument 1
    // the indexed value.
    unsafe {
        match fast::index(l) {
            Fast::Done => 1,
            Fast::Uncached { st, c, key } => {
                fast::learn(l, st, c, key);
                index_slow(l)
            }
            Fast::Other => index_slow(l),
        }
    }
}

/// `__index` for all that [`fast::index`] leaves.
#[inline(never)]
unsafe fn index_slow(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called only by `mm_index`, a metamethod of this module's metatable: upvalue 1
    // is the state, argument 1 the indexed value.
    unsafe {
        let st = state::from_upvalue(l);
        let c = self_cdata(l, st);
        if let Some((p, size, _)) = float_member(l, st, c) {
            ffi::lua_pushnumber(l, read_float(p, size));
            return 1;
        }
        if let Some((p, size)) = float_element(l, st, c) {
            ffi::lua_pushnumber(l, read_float(p, size));
            return 1;
        }
        match resolve(l, st, c) {
            Place::Value { ty, p, anchor, .. } => {
                if let Err(e) = convert::c_to_lua(l, st, ty, p, anchor) {
                    convert::raise_conv(l, st, e);
                }
                1
            }
            Place::Bits { ty, bits, record, .. } => {
                convert::push_bitfield(l, st, ty, bits, record);
                1
            }
            Place::Const(k) => {
                let (size, signed) = match shape(&(*st).types, k.ty.id) {
                    Shape::Int { size, signed } => (size, signed),
                    _ => (4, true),
                };
                convert::push_int(l, st, k.value as u64, size, signed);
                1
            }
            Place::Missing { ty } => {
                // `cb:free()` / `cb:set(f)` on function pointers (callbacks).
                if crate::native::callback::index_method(l, st) == 1 {
                    return 1;
                }
                index_meta(l, st, ty, false)
            }
        }
    }
}

unsafe extern "C-unwind" fn mm_newindex(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the cdata __newindex metamethod with the FFI state as upvalue 1
    // (live-state) and the cdata at index 1.
    unsafe {
        match fast::newindex(l) {
            Fast::Done => 0,
            Fast::Uncached { st, c, key } => {
                fast::learn(l, st, c, key);
                newindex_slow(l)
            }
            Fast::Other => newindex_slow(l),
        }
    }
}

/// `__newindex` for all that [`fast::newindex`] leaves.
#[inline(never)]
unsafe fn newindex_slow(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called only by `mm_newindex`, a metamethod of this module's metatable: upvalue
    // 1 is the state (live-state), argument 1 the indexed value.
    unsafe {
        let st = state::from_upvalue(l);
        let c = self_cdata(l, st);
        if let Some((p, size, quals)) = float_member(l, st, c) {
            if !quals.is_const && ffi::lua_type(l, 3) == ffi::LUA_TNUMBER {
                write_float(p, size, ffi::lua_tonumberx(l, 3, std::ptr::null_mut()));
                return 0;
            }
        }
        let r = match resolve(l, st, c) {
            Place::Value { quals, .. } | Place::Bits { quals, .. } if quals.is_const => Err(ConvError::WriteConst),
            Place::Const(_) => Err(ConvError::WriteConst),
            Place::Value { ty, p, anchor, .. } => {
                // A `d[?]` or `d[]` member written whole fills at most what remains of the
                // object (memory reached through a pointer has no known end, as in C).
                let room = if anchor == 0 { convert::UNKNOWN_ROOM } else { cdata::room_at(c, p) };
                convert::lua_to_c_within(l, st, 3, ty, p, 0, room)
            }
            Place::Bits { ty, bits, record, .. } => convert::store_bitfield(l, st, 3, ty, bits, record),
            Place::Missing { ty } => {
                if c.form() != Form::CType && ty.quals.is_const && push_metamethod(l, st, ty, c"__newindex") {
                    ffi::lua_pop(l, 1);
                    convert::raise_conv(l, st, ConvError::WriteConst);
                }
                return index_meta(l, st, ty, true);
            }
        };
        if let Err(e) = r {
            convert::raise_conv(l, st, e);
        }
        0
    }
}

/// `"%.14g"`, the way LuaJIT prints numbers (`nan`, `inf`, `-inf` for the specials).
pub fn fmt_num(n: f64) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == 0.0 && n.is_sign_negative() {
        return "-0".into();
    }
    if n == n.trunc() && n.abs() < 1e14 {
        return format!("{}", n as i64);
    }
    // %.14g: 14 significant digits, exponent form below 1e-4 or from 1e14.
    let exp = n.abs().log10().floor() as i32;
    if !(-5..14).contains(&exp) {
        let s = format!("{:.13e}", n);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = trim_zeros(mant);
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let decimals = (13 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, n)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// LuaJIT's `lj_ctype_repr_complex`: `re+imi` (or `I` after `inf`/`nan`).
fn complex_string(re: f64, im: f64) -> String {
    let mut s = fmt_num(re);
    if !im.is_sign_negative() || im.is_nan() {
        s.push('+');
    }
    s.push_str(&fmt_num(im));
    let last = s.as_bytes()[s.len() - 1];
    s.push(if last >= b'a' { 'I' } else { 'i' });
    s
}

/// LuaJIT's `lj_ctype_repr_int64`: `123LL`, `-5LL`, `123ULL`.
pub fn int64_string(v: u64, signed: bool) -> String {
    if signed {
        format!("{}LL", v as i64)
    } else {
        format!("{v}ULL")
    }
}

unsafe fn tostring_of(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata) -> Option<String> {
    // SAFETY: `c` is a live cdata; its bytes have its type's size.
    unsafe {
        let types = &(*st).types;
        let ty = cdata::type_of(c);
        if c.form() == Form::CType {
            return Some(format!("ctype<{}>", repr(types, ty, false)));
        }
        let p = cdata::bytes(c);
        let sh = shape(types, ty.id);
        let shown = match sh {
            Shape::Complex { part } => {
                return Some(complex_string(read_float(p, part), read_float(p.add(part as usize), part)))
            }
            Shape::Int { size: 8, signed } => return Some(int64_string(read_int(p, 8, signed), signed)),
            Shape::Int { size, .. } if matches!(types.get(ty.id), abi_model::CType::Enum(_)) => {
                return Some(format!(
                    "cdata<{}>: {}",
                    repr(types, ty, c.form() == Form::Ref),
                    read_int(p, size, true) as i32
                ));
            }
            Shape::Pointer(to) | Shape::Ptr32(to) => {
                if shape(types, to.id) == Shape::Record && push_metamethod(l, st, ty, c"__tostring") {
                    return None;
                }
                pointer_value(p, sh)
            }
            Shape::Record => {
                if push_metamethod(l, st, ty, c"__tostring") {
                    return None;
                }
                p as usize
            }
            // A function cdata holds the function's address.
            Shape::Func => read_int(p, std::mem::size_of::<usize>() as u8, false) as usize,
            _ => p as usize,
        };
        Some(format!("cdata<{}>: {}", repr(&(*st).types, ty, c.form() == Form::Ref), format_ptr(shown)))
    }
}

unsafe extern "C-unwind" fn mm_tostring(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the cdata __tostring metamethod with the FFI state as upvalue 1
    // (live-state) and the cdata at index 1.
    unsafe {
        let st = state::from_upvalue(l);
        let c = self_cdata(l, st);
        match tostring_of(l, st, c) {
            Some(s) => {
                ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
            }
            None => {
                ffi::lua_pushvalue(l, 1);
                ffi::lua_call(l, 1, 1);
            }
        }
        1
    }
}

unsafe extern "C-unwind" fn mm_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the cdata __call metamethod with the FFI state as upvalue 1
    // (live-state) and the cdata at index 1.
    unsafe {
        if let Some(n) = fast::call(l) {
            return n;
        }
        call_slow(l)
    }
}

/// `__call` for all that [`fast::call`] leaves.
#[inline(never)]
unsafe fn call_slow(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called only by `mm_call`, a metamethod of this module's metatable: upvalue 1 is
    // the state (live-state), argument 1 the called value.
    unsafe {
        let st = state::from_upvalue(l);
        let c = self_cdata(l, st);
        let ty = cdata::type_of(c);
        if c.form() != Form::CType {
            // The hot path: the type's stub is cached on its descriptor once it ran.
            let stub = (*c.desc()).call_stub.get();
            if stub != 0 {
                return crate::native::call::call_stub(l, c, stub);
            }
            if let Some(fn_ty) = crate::native::call::callable_type(&(*st).types, ty.id) {
                return crate::native::call::call_cdata(l, st, c, fn_ty);
            }
            // A 4-byte function pointer (`__ptr32`) is called as the ordinary pointer it
            // holds, zero-extended (LuaJIT's `cdata_getptr`): the stub reads a whole word.
            if let Shape::Ptr32(to) = shape(&(*st).types, ty.id) {
                if matches!(shape(&(*st).types, to.id), Shape::Func) {
                    let wide = (*st).desc(QualType::plain((*st).types.pointer_to(to)));
                    let addr = pointer_value(cdata::bytes(c), Shape::Ptr32(to));
                    cdata::push_scalar(l, st, wide, addr as u64, std::mem::size_of::<usize>());
                    ffi::lua_replace(l, 1);
                    let c = self_cdata(l, st);
                    return crate::native::call::call_cdata(l, st, c, to.id);
                }
            }
        }
        if c.form() == Form::CType {
            if push_metamethod(l, st, ty, c"__new") {
                ffi::lua_insert(l, 1);
                ffi::lua_call(l, ffi::lua_gettop(l) - 1, ffi::LUA_MULTRET);
                return ffi::lua_gettop(l);
            }
            return crate::surface::object::new_object(l, st, ty, 2);
        }
        if push_metamethod(l, st, ty, c"__call") {
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, ffi::lua_gettop(l) - 1, ffi::LUA_MULTRET);
            return ffi::lua_gettop(l);
        }
        let shown = match shape(&(*st).types, ty.id) {
            Shape::Pointer(to) | Shape::Ptr32(to) => to,
            _ => ty,
        };
        cdata::raise(l, format!("'{}' is not callable", repr(&(*st).types, shown, false)))
    }
}

unsafe extern "C-unwind" fn mm_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the finalizer table; index 1 the cdata being collected (`__gc`)
    // or closed (`__close`, which also passes the error object at 2).
    unsafe {
        let fins = ffi::lua_upvalueindex(1);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rawget(l, fins);
        if ffi::lua_isnil(l, -1) != 0 {
            return 0;
        }
        // Remove it first: the finalizer runs exactly once.
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushnil(l);
        ffi::lua_rawset(l, fins);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 1, 0);
        0
    }
}

/// Arithmetic and comparison: built-in C arithmetic first, then the metatype of the first
/// cdata operand, then of the second (LuaJIT's `lj_carith_op` / `carith_meta`).
unsafe fn arith(l: *mut ffi::lua_State, op: Op) -> c_int {
    // SAFETY: cfunction: a cdata arithmetic or comparison metamethod, with the FFI state as upvalue
    // 1 (live-state) and its operands at 1 and 2.
    unsafe {
        let st = state::from_upvalue(l);
        if ffi::lua_gettop(l) < 2 {
            ffi::lua_settop(l, 2);
        }
        if int64::builtin(l, st, op) {
            return 1;
        }
        let event = op.event();
        for i in [1, 2] {
            let c = cdata::to_cdata(l, st, i);
            if !c.is_null() && c.form() != Form::CType && push_metamethod(l, st, cdata::type_of(c), event) {
                ffi::lua_pushvalue(l, 1);
                ffi::lua_pushvalue(l, 2);
                ffi::lua_call(l, 2, 1);
                return 1;
            }
        }
        if op == Op::Eq {
            ffi::lua_pushboolean(l, 0);
            return 1;
        }
        let name = |i: c_int| -> String {
            let c = cdata::to_cdata(l, st, i);
            if !c.is_null() && c.form() != Form::CType {
                repr(&(*st).types, cdata::type_of(c), false)
            } else if !c.is_null() {
                "ctype".into()
            } else {
                cdata::lua_typename_at(l, i).into()
            }
        };
        let msg = match op {
            Op::Len => format!("attempt to get length of '{}'", name(1)),
            Op::Concat => format!("attempt to concatenate '{}' and '{}'", name(1), name(2)),
            Op::Lt | Op::Le | Op::Eq => format!("attempt to compare '{}' with '{}'", name(1), name(2)),
            _ => format!("attempt to perform arithmetic on '{}' and '{}'", name(1), name(2)),
        };
        cdata::raise(l, msg)
    }
}

macro_rules! arith_mm {
    ($($name:ident => $op:expr),* $(,)?) => {$(
        unsafe extern "C-unwind" fn $name(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: called by Lua as a metamethod of this module's metatable.
            unsafe { arith(l, $op) }
        }
    )*};
}

arith_mm! {
    mm_eq => Op::Eq, mm_lt => Op::Lt, mm_le => Op::Le, mm_add => Op::Add, mm_sub => Op::Sub,
    mm_mul => Op::Mul, mm_div => Op::Div, mm_mod => Op::Mod, mm_pow => Op::Pow, mm_unm => Op::Unm,
    mm_len => Op::Len, mm_concat => Op::Concat,
}

unsafe fn pairs(l: *mut ffi::lua_State, event: &std::ffi::CStr) -> c_int {
    // SAFETY: valid-L inside a cdata `__pairs`/`__ipairs` metamethod (its callers), with the FFI
    // state as upvalue 1 (live-state).
    unsafe {
        let st = state::from_upvalue(l);
        let c = self_cdata(l, st);
        let ty = cdata::type_of(c);
        if c.form() != Form::CType && push_metamethod(l, st, ty, event) {
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, ffi::lua_gettop(l) - 1, ffi::LUA_MULTRET);
            return ffi::lua_gettop(l);
        }
        // A pointer is named by its pointee, as in LuaJIT. The names are dropped before
        // raise: it longjmps over this frame.
        let shown = match shape(&(*st).types, ty.id) {
            Shape::Pointer(to) | Shape::Ptr32(to) => to,
            _ => ty,
        };
        let msg = {
            let name = repr(&(*st).types, shown, false);
            let ev = event.to_string_lossy();
            format!("'{name}' has no '{ev}' metamethod")
        };
        cdata::raise(l, msg)
    }
}

/// `__pairs`, also called by the module's global `pairs` for cdata (Lua 5.1's own pairs takes
/// tables only).
pub(crate) unsafe extern "C-unwind" fn mm_pairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the cdata __pairs metamethod with the FFI state as upvalue 1
    // (live-state) and the cdata at index 1.
    unsafe { pairs(l, c"__pairs") }
}

/// `__ipairs`, also called by the module's global `ipairs` for cdata (Lua 5.3+'s own ipairs
/// has no `__ipairs`).
pub(crate) unsafe extern "C-unwind" fn mm_ipairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the cdata __ipairs metamethod with the FFI state as upvalue 1
    // (live-state) and the cdata at index 1.
    unsafe { pairs(l, c"__ipairs") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_percent_14g() {
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(-2.0), "-2");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.100000023841858), "1.1000000238419");
        assert_eq!(fmt_num(1e300), "1e+300");
        assert_eq!(fmt_num(-0.0), "-0");
        assert_eq!(fmt_num(f64::INFINITY), "inf");
        assert_eq!(complex_string(0.5, f64::INFINITY), "0.5+infI");
        assert_eq!(complex_string(1.0, -2.0), "1-2i");
        assert_eq!(complex_string(f64::NAN, -0.0), "nan-0i");
    }
}
