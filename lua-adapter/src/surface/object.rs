//! Creating cdata objects, as `ffi.new` and calling a ctype do: the size of variable-length
//! types, initialisation from the arguments, and finalizers, those of `ffi.gc` and a
//! metatype's `__gc` (found with [`push_metamethod`], the metatype lookup the cdata
//! metatable shares).

use std::os::raw::c_int;

use abi_model::{ArrayLen, CType, QualType, TypeId, TypeTable};
use mlua::ffi;

use crate::cdata;
use crate::convert;
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::FfiState;
use crate::stack::{LuaStack, OrRaise};

/// Pushes field `event` of the metatype of `ty` (of its target, for a pointer) if it has
/// one; returns whether it did.
///
/// # Safety
/// `l` valid with 2 free slots; `st` its state.
pub unsafe fn push_metamethod(l: *mut ffi::lua_State, st: *mut FfiState, ty: QualType, event: &std::ffi::CStr) -> bool {
    // SAFETY: valid-L with 2 free slots and live-state `st` (this function's contract): the
    // borrows of `st` end before any push; the two pushes (the metatype, a table: `ffi.metatype`
    // checks it, and the key) use the two slots; `raw_get` replaces the key (raw: no
    // metamethod runs), `remove` drops the table. raise-clean: `push_cstr` may raise a memory
    // error, and this frame owns nothing.
    unsafe {
        let id = match shape(&(*st).types, ty.id) {
            Shape::Pointer(to) | Shape::Ptr32(to) => to.id,
            _ => ty.id,
        };
        let Some(r) = (*st).metatype(id) else { return false };
        let s = LuaStack::new(l);
        s.push_ref(r);
        // Raw, as LuaJIT's lj_ctype_meta: looking up a metamethod runs no Lua code.
        s.push_cstr(event);
        s.raw_get(-2);
        s.remove(-2);
        if s.is_nil(-1) {
            s.pop(1);
            return false;
        }
        true
    }
}

/// Argument `narg` as a count or length (an element count, a byte length): converted as
/// `api::check_int` converts it (a fraction truncated, LuaJIT's messages for what does not
/// convert), but through 64 bits, so that a value `int32_t` cannot hold is `None` instead of
/// wrapping: NaN, infinities, negative numbers, 2^31 and more, and an `int64_t` of 2^32 + 3
/// (LuaJIT truncates that one to 3).
///
/// # Safety
/// `l` valid with 2 free slots, in a C function of this module; `st` its state; `narg` a
/// positive argument number. Raises on a value that does not convert.
pub unsafe fn check_count(l: *mut ffi::lua_State, st: *mut FfiState, narg: c_int) -> Option<u32> {
    // SAFETY: valid-L with 2 free slots, in a C function of this module, live-state `st`,
    // `narg` a positive argument number (this function's contract): `check_any` raises first
    // when there is no value there, so `lua_to_c` gets an absolute index of a value. `types`
    // borrows the type table across `lua_to_c`, which makes no callback for a `long long`
    // destination (only a function pointer does, taking the state mutably). raise-clean: the
    // `Raise` and the `ConvError` (plain data) move into the raising calls; the frame owns
    // nothing else.
    unsafe {
        LuaStack::new(l).check_any(narg).or_raise(l);
        let mut v = 0i64;
        let types = &(*st).types;
        let i64_ty = QualType::plain(types.int(abi_model::IntKind::LongLong));
        if let Err(e) = convert::lua_to_c(l, st, narg, i64_ty, &mut v as *mut i64 as *mut u8, 0) {
            // Named as the int32_t LuaJIT converts to.
            let int = QualType::plain(types.int(abi_model::IntKind::Int));
            let e = match e {
                convert::ConvError::Bad { from, .. } => convert::ConvError::Bad { from, to: int },
                other => other,
            };
            convert::raise_conv_arg(l, st, narg, e);
        }
        u32::try_from(v).ok().filter(|&n| n <= i32::MAX as u32)
    }
}

/// Whether `ty` is variable-length: a `T[?]` array, or a record whose last member is one.
pub fn variable_length(types: &TypeTable, ty: TypeId) -> Option<(u64, u64)> {
    match types.get(ty) {
        CType::Array { elem, len: ArrayLen::Variable } => Some((0, types.size_of(elem.id).ok()?)),
        CType::Record(_) => {
            let body = types.record_body(ty)?;
            let last = body.fields.last()?;
            match types.get(last.ty.id) {
                CType::Array { elem, len: ArrayLen::Variable } => {
                    Some((body.layout.size, types.size_of(elem.id).ok()?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// LuaJIT's `lj_ctype_vlsize`: the fixed part plus `n` elements (a [`check_count`]), if
/// below 2^31.
pub fn vl_size(fixed: u64, esize: u64, n: Option<u32>) -> Option<u64> {
    let total = fixed.checked_add(esize.checked_mul(u64::from(n?))?)?;
    (total < 0x8000_0000).then_some(total)
}

/// Creates a new object of type `ty` initialised from the arguments from `first` on (with a
/// leading element count for variable-length types), as `ffi.new` and calling a ctype do;
/// pushes it and returns 1.
///
/// # Safety
/// Called from a lua_CFunction of this module: `l` valid with 5 free slots, `st` its state,
/// `first` a positive argument number. Raises on what does not convert.
pub unsafe fn new_object(l: *mut ffi::lua_State, st: *mut FfiState, ty: QualType, first: c_int) -> c_int {
    // SAFETY: valid-L with 5 free slots, in a C function of this module, live-state `st`,
    // `first` a positive argument number (this function's contract): `check_count` needs 2,
    // `push_value` 2, `push_metamethod` 2 above the cdata, `set_finalizer` 3 above the cdata
    // and the finalizer, and `init` reads the `count` values from `init_from`, which exist.
    // live-cdata: `c` is the cdata just pushed, its `ptr` `size` zeroed bytes. raise-clean:
    // `size`, `desc`, `c` and `ConvError` own nothing; the messages move into the raise calls.
    unsafe {
        let s = LuaStack::new(l);
        let top = s.top();
        let mut init_from = first;
        let vl = variable_length(&(*st).types, ty.id);
        let size = match vl {
            Some((fixed, esize)) => {
                let n = check_count(l, st, first);
                init_from += 1;
                vl_size(fixed, esize, n)
            }
            None => (*st).desc(ty).as_ref().and_then(|d| d.size),
        };
        let Some(size) = size else {
            cdata::raise_arg(l, 1, "size of C type is unknown or too large".into());
        };
        let desc = (*st).desc(ty);
        let c = cdata::push_value(l, st, desc, size as usize);
        let count = (top - init_from + 1).max(0);
        if let Err(e) = convert::init(l, st, ty, cdata::bytes(c), size, init_from, count) {
            convert::raise_conv(l, st, e);
        }
        if shape(&(*st).types, ty.id) == Shape::Record && push_metamethod(l, st, ty, c"__gc") {
            set_finalizer(l, st, -2, -1);
            s.pop(1);
        }
        1
    }
}

/// Sets `finalizers[cdata at cd_idx] = value at fn_idx` (nil removes it) and gives the cdata
/// the metatable with `__gc`.
///
/// # Safety
/// `l` valid with 3 free slots; `st` its state; both indices valid, `cd_idx` a cdata.
pub unsafe fn set_finalizer(l: *mut ffi::lua_State, st: *mut FfiState, cd_idx: c_int, fn_idx: c_int) {
    // SAFETY: valid-L with 3 free slots, live-state `st`, valid indices with a cdata at
    // `cd_idx` (this function's contract): the finalizer table (made by `create_metatables`
    // when the module opened, before any of its C functions runs) and two copies take three
    // slots, `raw_set` pops two, then `to_cdata` (2 slots), then one copy of the cdata for `set_meta_of`, which needs a
    // free slot. raise-clean: `raw_set` and `set_meta_of` may raise a memory error; nothing is owned.
    unsafe {
        let s = LuaStack::new(l);
        let cd = s.abs_index(cd_idx);
        let f = s.abs_index(fn_idx);
        s.push_ref((*st).refs().finalizers);
        s.push_copy(cd);
        s.push_copy(f);
        s.raw_set(-3);
        s.pop(1);
        if !s.is_nil(f) {
            let c = cdata::to_cdata(l, st, cd);
            s.push_copy(cd);
            cdata::set_meta_of(l, st, c, true);
            s.pop(1);
        }
    }
}
