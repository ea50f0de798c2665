//! The conversion helpers generated call stubs call (abi-model's helper table,
//! `abi_model::lua::helpers::Helper`), as `extern "C-unwind"` functions with exactly the C
//! signatures of `Helper::c_decl`.
//!
//! The `ctype` parameter is a `*const CTypeDesc` ([`crate::ctypes::state::CTypeDesc`]): the type's
//! descriptor, owned by the Lua state's FFI state (boxed, never moved or freed while the Lua
//! state lives), obtained with `FfiState::desc` when a stub is built and embedded in it as
//! a constant.
//!
//! Helpers that fail raise a Lua error (`bad argument #2 to 'f' (cannot convert 'table' to
//! 'int')`); when they do, no value owning memory is alive in their frames: the message is
//! built and pushed by a callee that drops it before `lua_error` runs (DESIGN.md,
//! lua-adapter).

use std::os::raw::{c_int, c_void};

use abi_model::lua::helpers::Helper;
use abi_model::{CType, FloatKind, IntKind, QualType, TypeId};
use mlua::ffi;

use crate::cdata::{self, HAS_INTEGERS};
use crate::convert::{self, f64_to_int_bits};
use crate::ctypes::ctype::{string_passes_as, Shape};
use crate::ctypes::state::{self, CTypeDesc, FfiState};
use crate::native::state::{CallMode, State};
use crate::os::errno::{no_errno_location, os_errno, os_last_error, set_os_errno, set_os_last_error, ERRNO_LOCATION};

/// Raises a conversion error for the Lua value at `idx`. In a stub call through `__call` the
/// called cdata is at index 1 (see [`crate::native::call`]), so the C argument number is `idx - 1`;
/// in a namespace function's closure it is `idx`; a callback's result (a negative index)
/// raises a plain error.
unsafe fn raise_arg_conv(l: *mut ffi::lua_State, st: *mut FfiState, idx: c_int, e: convert::ConvError) -> ! {
    // SAFETY: valid-L and live-state `st` (callers' contract); raise-clean: this frame owns
    // nothing, and the conversion error moves into the raising function.
    unsafe {
        if idx < 0 {
            convert::raise_conv(l, st, e);
        }
        // Lua 5.5's luaL_argerror leaves out the called object of a `__call` call itself
        // (`ar.extraargs`); earlier versions count it, so it is subtracted here.
        let narg = if !cfg!(feature = "lua55") && idx > 1 && matches!(called_function(l, st), Some((_, 2))) {
            idx - 1
        } else {
            idx
        };
        convert::raise_conv_arg(l, st, narg, e)
    }
}

/// The function type the running stub calls and the Lua index of its first C argument: a
/// namespace function's closure is itself the callable cdata (arguments from 1, and index 1
/// may be another callable cdata); otherwise a `__call` has the called cdata at index 1
/// (arguments from 2). None when neither holds.
unsafe fn called_function(l: *mut ffi::lua_State, st: *mut FfiState) -> Option<(TypeId, c_int)> {
    // SAFETY: debug API on a valid-L with 2 free slots; `lua_getinfo` with "f" pushes the running
    // function, popped here.
    unsafe {
        let types = &(*st).types;
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, 0, &mut ar) != 0 && ffi::lua_getinfo(l, c"f".as_ptr(), &mut ar) != 0 {
            let running = cdata::to_cdata(l, st, -1);
            ffi::lua_pop(l, 1);
            if !running.is_null() {
                return crate::native::call::callable_type(types, cdata::type_of(running).id).map(|f| (f, 1));
            }
        }
        if !crate::native::call::is_callable_cdata(l, st, 1) {
            return None;
        }
        crate::native::call::callable_type(types, cdata::type_of(cdata::to_cdata(l, st, 1)).id).map(|f| (f, 2))
    }
}

/// The type an integer helper's slow path converts Lua argument `idx` to: the declared
/// parameter type when it is an enum and the value a string (LuaJIT converts a constant's
/// name to its value, `lj_cconv_ct_tv`), else the plain integer `kind` the helper returns.
/// A callback's result (negative `idx`) is never a name here: `luaffi_callback_result`
/// replaced it by its value.
unsafe fn int_arg_type(l: *mut ffi::lua_State, idx: c_int, kind: IntKind) -> QualType {
    // SAFETY: valid-L with the module open (`state_of`); only stack reads.
    unsafe {
        let st = state_of(l);
        if idx > 0 && ffi::lua_type(l, idx) == ffi::LUA_TSTRING {
            if let Some((f, first)) = called_function(l, st) {
                let types = &(*st).types;
                if let CType::Function(func) = types.get(f) {
                    let param = usize::try_from(idx - first).ok().and_then(|i| func.params.get(i));
                    if let Some(p) = param.filter(|p| matches!(types.get(p.ty.id), CType::Enum(_))) {
                        return p.ty;
                    }
                }
            }
        }
        QualType::plain((*st).types.int(kind))
    }
}

/// The state for helpers without a `ctype` argument.
unsafe fn state_of(l: *mut ffi::lua_State) -> *mut FfiState {
    // SAFETY: valid-L; the module was opened in it before any stub exists.
    unsafe { state::from_registry(l) }
}

/// Slow path: converts via the full conversion rules into a `ty`-typed temporary, raising an
/// argument error on failure.
unsafe fn convert_arg(
    l: *mut ffi::lua_State,
    idx: c_int,
    ty: impl Fn(&abi_model::TypeTable) -> QualType,
    dst: *mut u8,
) {
    // SAFETY: valid-L with the module open, so `state_of` gives a live-state; `dst` is writable for
    // `ty` (caller's contract); raise-clean: on error nothing owned is alive here.
    unsafe {
        let st = state_of(l);
        let t = ty(&(*st).types);
        // Conversions push while they walk tables: they need an absolute index (a callback
        // thunk converts its result at -1).
        if let Err(e) = convert::lua_to_c(l, st, ffi::lua_absindex(l, idx), t, dst, 0) {
            raise_arg_conv(l, st, idx, e);
        }
    }
}

/// A Lua number at `idx` as the bits of a `size`-byte integer, with the same rules as
/// [`convert::lua_to_c`] (the fast path of the integer helpers).
#[inline(always)]
unsafe fn number_bits(l: *mut ffi::lua_State, idx: c_int, size: u8, signed: bool) -> u64 {
    // SAFETY: the value at idx is a number.
    unsafe {
        if HAS_INTEGERS {
            // One API call for the common case: an integer, or a float with an integral
            // value.
            let mut is_int = 0;
            let v = ffi::lua_tointegerx(l, idx, &mut is_int) as i64;
            if is_int != 0 {
                // Where an integer and a float of the same value convert alike, both keep
                // the integer's bits (the caller narrows them to `size` bytes); elsewhere a
                // Lua integer still does (C's conversion of an `int64_t`), a float takes the
                // double rules.
                if convert::int_converts_as_double(v, Shape::Int { size, signed }) || ffi::lua_isinteger(l, idx) != 0 {
                    return v as u64;
                }
            }
        }
        f64_to_int_bits(ffi::lua_tonumberx(l, idx, std::ptr::null_mut()), size, signed)
    }
}

/// An integer conversion helper: the Lua value converted to the C integer type `$narrow`
/// (`$size` bytes), returned widened to `$t` (sign- or zero-extended, as the ABI wants a
/// narrow argument in its slot).
macro_rules! int_helper {
    ($(#[$doc:meta])* $name:ident -> $t:ty as $narrow:ty, $size:expr, $signed:expr, $kind:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `l` is a valid Lua state in which the module is open; `idx` a valid index.
        pub unsafe extern "C-unwind" fn $name(l: *mut ffi::lua_State, idx: c_int) -> $t {
            // SAFETY: valid-L with the module open and a valid `idx` (caller's contract); the
            // number fast path only reads the slot, the slow path is `convert_arg`.
            unsafe {
                if ffi::lua_type(l, idx) == ffi::LUA_TNUMBER {
                    return number_bits(l, idx, $size, $signed) as $narrow as $t;
                }
                let mut v: $narrow = 0;
                let ty = int_arg_type(l, idx, $kind);
                convert_arg(l, idx, |_| ty, &mut v as *mut $narrow as *mut u8);
                v as $t
            }
        }
    };
}

int_helper!(
    /// `int32_t luaffi_to_i32(lua_State *L, int idx)`.
    luaffi_to_i32 -> i32 as i32, 4, true, IntKind::Int);
int_helper!(
    /// `uint32_t luaffi_to_u32(lua_State *L, int idx)`.
    luaffi_to_u32 -> u32 as u32, 4, false, IntKind::UInt);
int_helper!(
    /// `int64_t luaffi_to_i64(lua_State *L, int idx)`.
    luaffi_to_i64 -> i64 as i64, 8, true, IntKind::LongLong);
int_helper!(
    /// `uint64_t luaffi_to_u64(lua_State *L, int idx)`.
    luaffi_to_u64 -> u64 as u64, 8, false, IntKind::ULongLong);
int_helper!(
    /// `int32_t luaffi_to_i8(lua_State *L, int idx)`: converted to `signed char` (as C
    /// converts), returned sign-extended.
    luaffi_to_i8 -> i32 as i8, 1, true, IntKind::SChar);
int_helper!(
    /// `uint32_t luaffi_to_u8(lua_State *L, int idx)`: to `unsigned char`, zero-extended.
    luaffi_to_u8 -> u32 as u8, 1, false, IntKind::UChar);
int_helper!(
    /// `int32_t luaffi_to_i16(lua_State *L, int idx)`: to `short`, sign-extended.
    luaffi_to_i16 -> i32 as i16, 2, true, IntKind::Short);
int_helper!(
    /// `uint32_t luaffi_to_u16(lua_State *L, int idx)`: to `unsigned short`, zero-extended.
    luaffi_to_u16 -> u32 as u16, 2, false, IntKind::UShort);

/// `float luaffi_to_f32(lua_State *L, int idx)`.
///
/// # Safety
/// As [`luaffi_to_i32`].
pub unsafe extern "C-unwind" fn luaffi_to_f32(l: *mut ffi::lua_State, idx: c_int) -> f32 {
    // SAFETY: valid-L with the module open and a valid `idx` (contract of `luaffi_to_i32`); the
    // fast path only reads the slot, the slow path is `convert_arg`.
    unsafe {
        if ffi::lua_type(l, idx) == ffi::LUA_TNUMBER && !(HAS_INTEGERS && ffi::lua_isinteger(l, idx) != 0) {
            return ffi::lua_tonumberx(l, idx, std::ptr::null_mut()) as f32;
        }
        let mut v = 0f32;
        convert_arg(l, idx, |t| QualType::plain(t.float(FloatKind::Float)), &mut v as *mut f32 as *mut u8);
        v
    }
}

/// `double luaffi_to_f64(lua_State *L, int idx)`.
///
/// # Safety
/// As [`luaffi_to_i32`].
pub unsafe extern "C-unwind" fn luaffi_to_f64(l: *mut ffi::lua_State, idx: c_int) -> f64 {
    // SAFETY: valid-L with the module open and a valid `idx` (contract of `luaffi_to_i32`); the
    // fast path only reads the slot, the slow path is `convert_arg`.
    unsafe {
        // An integer converts as C's (double)i, which is what lua_tonumberx computes.
        if ffi::lua_type(l, idx) == ffi::LUA_TNUMBER {
            return ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
        }
        let mut v = 0f64;
        convert_arg(l, idx, |t| QualType::plain(t.float(FloatKind::Double)), &mut v as *mut f64 as *mut u8);
        v
    }
}

/// `int luaffi_to_bool(lua_State *L, int idx)`: 0 or 1.
///
/// # Safety
/// As [`luaffi_to_i32`].
pub unsafe extern "C-unwind" fn luaffi_to_bool(l: *mut ffi::lua_State, idx: c_int) -> c_int {
    // SAFETY: valid-L with the module open and a valid `idx` (contract of `luaffi_to_i32`); the
    // fast path only reads the slot, the slow path is `convert_arg`.
    unsafe {
        if ffi::lua_type(l, idx) == ffi::LUA_TBOOLEAN {
            return ffi::lua_toboolean(l, idx);
        }
        let mut v = 0u8;
        convert_arg(l, idx, |t| QualType::plain(t.bool()), &mut v);
        c_int::from(v)
    }
}

/// `void *luaffi_to_ptr(lua_State *L, int idx, const void *ctype)`: `ctype` is the pointer
/// type's descriptor.
///
/// # Safety
/// As [`luaffi_to_i32`]; `ctype` a descriptor of `L`'s state.
pub unsafe extern "C-unwind" fn luaffi_to_ptr(l: *mut ffi::lua_State, idx: c_int, ctype: *const c_void) -> *mut c_void {
    // SAFETY: valid-L with the module open, a valid `idx`, and `ctype` a live-desc of `l`'s state
    // (caller's contract).
    unsafe {
        let desc = ctype as *const CTypeDesc;
        let st = (*desc).state;
        // Fast paths with the results the full rules give: nil is NULL; a string passes its
        // bytes to a `const char *` or `const void *`; a cdata of exactly this pointer type
        // passes its value.
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL => return std::ptr::null_mut(),
            ffi::LUA_TSTRING if string_passes_as(&(*st).types, (*desc).shape) => {
                return ffi::lua_tolstring(l, idx, std::ptr::null_mut()) as *mut c_void;
            }
            ffi::LUA_TUSERDATA => {
                let c = cdata::to_cdata(l, st, idx);
                if !c.is_null() && c.form() == cdata::Form::Value && c.desc() == desc {
                    return (cdata::bytes(c) as *const *mut c_void).read_unaligned();
                }
            }
            _ => {}
        }
        let mut p: *mut c_void = std::ptr::null_mut();
        if let Err(e) = arg_to_c(l, st, idx, (*desc).ty, &mut p as *mut *mut c_void as *mut u8) {
            raise_arg_conv(l, st, idx, e);
        }
        p
    }
}

/// `void luaffi_to_record(lua_State *L, int idx, const void *ctype, void *dst)`: copies a
/// struct/union/complex value (or initialises one from a table) into `dst`; for a type the ABI
/// passes as an integer but Lua converts by its own rules (`ValueKind::TypedInt`: `__ptr32`,
/// `_Bool int`), stores the value as the store does, in all of its bytes.
///
/// # Safety
/// As [`luaffi_to_ptr`]; `dst` has the type's size.
pub unsafe extern "C-unwind" fn luaffi_to_record(
    l: *mut ffi::lua_State,
    idx: c_int,
    ctype: *const c_void,
    dst: *mut c_void,
) {
    // SAFETY: valid-L with the module open, a valid `idx`, `ctype` a live-desc of `l`'s state and
    // `dst` writable for its size (caller's contract).
    unsafe {
        let desc = ctype as *const CTypeDesc;
        let st = (*desc).state;
        // Fast path: a cdata of exactly this type is copied (a record is never a namespace
        // function, so the userdata test is enough), the common small sizes without a call.
        let c = cdata::userdata_cdata(l, st, idx);
        if !c.is_null() && c.form() != cdata::Form::CType && c.desc() == desc {
            let (src, dst) = (cdata::bytes(c), dst as *mut u8);
            match (*desc).size.unwrap_or(0) {
                8 => (dst as *mut u64).write_unaligned((src as *const u64).read_unaligned()),
                16 => (dst as *mut [u64; 2]).write_unaligned((src as *const [u64; 2]).read_unaligned()),
                n => std::ptr::copy_nonoverlapping(src, dst, n as usize),
            }
            return;
        }
        // A bool of more than one byte is stored through at most 4 of its bytes (the store's
        // rule); as an argument or result the rest are defined too: zero.
        if let Shape::WideBool { size } = (*desc).shape {
            std::ptr::write_bytes(dst as *mut u8, 0, usize::from(size));
        }
        if let Err(e) = arg_to_c(l, st, idx, (*desc).ty, dst as *mut u8) {
            raise_arg_conv(l, st, idx, e);
        }
    }
}

/// The conversion of the pointer and record helpers: a stub's argument (index > 0) through
/// [`crate::native::callback::arg_to_c`], which ties the callbacks it makes to the call; a thunk's
/// result (index -1) as any other value.
///
/// # Safety
/// As [`convert::lua_to_c`], with a relative or absolute `idx`; `l` with 2 free slots.
unsafe fn arg_to_c(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    ty: abi_model::QualType,
    dst: *mut u8,
) -> Result<(), convert::ConvError> {
    // SAFETY: the contract of `convert::lua_to_c` (valid-L, live-state, `dst` writable for `ty`)
    // with 2 free slots, for a relative or absolute `idx`.
    unsafe {
        if idx > 0 {
            crate::native::callback::arg_to_c(l, st, idx, ty, dst)
        } else {
            convert::lua_to_c(l, st, ffi::lua_absindex(l, idx), ty, dst, 0)
        }
    }
}

/// `void luaffi_push_i32(lua_State *L, int32_t v)`.
///
/// # Safety
/// `l` valid with a free slot.
pub unsafe extern "C-unwind" fn luaffi_push_i32(l: *mut ffi::lua_State, v: i32) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe { push_small(l, v as i64) }
}

/// `void luaffi_push_u32(lua_State *L, uint32_t v)`.
///
/// # Safety
/// As [`luaffi_push_i32`].
pub unsafe extern "C-unwind" fn luaffi_push_u32(l: *mut ffi::lua_State, v: u32) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe { push_small(l, v as i64) }
}

unsafe fn push_small(l: *mut ffi::lua_State, v: i64) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        } else {
            ffi::lua_pushnumber(l, v as f64);
        }
    }
}

/// `void luaffi_push_i64(lua_State *L, int64_t v)`: a Lua integer on 5.3+, a boxed
/// `int64_t` on 5.1/5.2. This is the version callback thunks call (the state found through the
/// registry); stubs call [`push_i64_of`]'s, which find it through the called cdata.
///
/// # Safety
/// `l` valid with 3 free slots, the module open in it.
pub unsafe extern "C-unwind" fn luaffi_push_i64(l: *mut ffi::lua_State, v: i64) {
    // SAFETY: valid-L with 3 free slots and the module open (caller's contract), which a boxed
    // 64-bit cdata needs.
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        } else {
            push_boxed(l, state_of(l), v as u64, true);
        }
    }
}

/// `void luaffi_push_u64(lua_State *L, uint64_t v)`: a Lua integer on 5.3+ up to
/// `math.maxinteger`, a boxed `uint64_t` otherwise. For callback thunks, as
/// [`luaffi_push_i64`].
///
/// # Safety
/// As [`luaffi_push_i64`].
pub unsafe extern "C-unwind" fn luaffi_push_u64(l: *mut ffi::lua_State, v: u64) {
    // SAFETY: valid-L with 3 free slots and the module open (caller's contract), which a boxed
    // 64-bit cdata needs.
    unsafe {
        if HAS_INTEGERS && v <= i64::MAX as u64 {
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        } else {
            push_boxed(l, state_of(l), v, false);
        }
    }
}

/// The 64-bit result helpers of stubs of each mode: as [`luaffi_push_i64`] and
/// [`luaffi_push_u64`], but a boxed value finds the state through the called cdata (index 1
/// in a `__call`, upvalue 1 in a namespace function's closure: a pointer read) rather than
/// the registry (a hash lookup, a third of the cost of a boxed result on Lua 5.1).
macro_rules! push_64_of_mode {
    ($(#[$doc:meta])* $i64:ident, $u64:ident, $mode:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `l` is in a stub call of this mode, with 3 free slots.
        unsafe extern "C-unwind" fn $i64(l: *mut ffi::lua_State, v: i64) {
            // SAFETY: valid-L inside a stub call of this mode (caller's contract), so the called
            // live-cdata's descriptor names the state.
            unsafe {
                if HAS_INTEGERS {
                    ffi::lua_pushinteger(l, v as ffi::lua_Integer);
                } else {
                    push_boxed(l, state_of_called(l, $mode), v as u64, true);
                }
            }
        }

        $(#[$doc])*
        ///
        /// # Safety
        /// As the `int64_t` one.
        unsafe extern "C-unwind" fn $u64(l: *mut ffi::lua_State, v: u64) {
            // SAFETY: valid-L inside a stub call of this mode (caller's contract), so the called
            // live-cdata's descriptor names the state.
            unsafe {
                if HAS_INTEGERS && v <= i64::MAX as u64 {
                    ffi::lua_pushinteger(l, v as ffi::lua_Integer);
                } else {
                    push_boxed(l, state_of_called(l, $mode), v, false);
                }
            }
        }
    };
}

push_64_of_mode!(
    /// A 64-bit result of a `__call` stub.
    luaffi_call_push_i64, luaffi_call_push_u64, CallMode::Metamethod);
push_64_of_mode!(
    /// A 64-bit result of a namespace function's stub.
    luaffi_closure_push_i64, luaffi_closure_push_u64, CallMode::Closure);

/// The `int64_t` and `uint64_t` result helpers of stubs of `mode`.
pub fn push_i64_of(mode: CallMode) -> [usize; 2] {
    match mode {
        CallMode::Metamethod => {
            [luaffi_call_push_i64 as *const () as usize, luaffi_call_push_u64 as *const () as usize]
        }
        CallMode::Closure => {
            [luaffi_closure_push_i64 as *const () as usize, luaffi_closure_push_u64 as *const () as usize]
        }
    }
}

/// The helper addresses of a callback thunk: a stub's of [`CallMode::Metamethod`], but the
/// 64-bit pushes are the ones that find the state without a called cdata.
pub fn thunk_helpers(mut helpers: Vec<u64>) -> Vec<u64> {
    helpers[Helper::PushI64.id()] = luaffi_push_i64 as *const () as u64;
    helpers[Helper::PushU64.id()] = luaffi_push_u64 as *const () as u64;
    helpers
}

/// The state of the stub call of `mode` in progress, from its called cdata's descriptor.
#[inline(always)]
unsafe fn state_of_called(l: *mut ffi::lua_State, mode: CallMode) -> *mut FfiState {
    // SAFETY: valid-L inside a stub call of `mode` (caller's contract): the called cdata is a
    // live-cdata whose descriptor is a live-desc of the state.
    unsafe { (*called_cdata(l, mode).desc()).state }
}

/// Pushes `v` as a boxed `int64_t` (`signed`) or `uint64_t` cdata of state `st`, whose
/// descriptor the native state keeps once made.
///
/// # Safety
/// `l` valid with 3 free slots; `st` its live state.
unsafe fn push_boxed(l: *mut ffi::lua_State, st: *mut FfiState, v: u64, signed: bool) {
    // SAFETY: live-state `st`, a boxed `State`'s (its invariant), so `State::of` is that box; the
    // cached descriptor is the state's, which lives as long as it; valid-L with 3 free slots.
    unsafe {
        let cache = &(*State::of(st)).calls.boxed_int64[usize::from(signed)];
        let mut desc = cache.get();
        if desc.is_null() {
            desc = (*st).desc(convert::boxed_int64_type(&(*st).types, signed));
            cache.set(desc);
        }
        cdata::push_scalar(l, st, desc, v, 8);
    }
}

/// `void luaffi_push_f32(lua_State *L, float v)`.
///
/// # Safety
/// As [`luaffi_push_i32`].
pub unsafe extern "C-unwind" fn luaffi_push_f32(l: *mut ffi::lua_State, v: f32) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe { ffi::lua_pushnumber(l, v as f64) }
}

/// `void luaffi_push_f64(lua_State *L, double v)`.
///
/// # Safety
/// As [`luaffi_push_i32`].
pub unsafe extern "C-unwind" fn luaffi_push_f64(l: *mut ffi::lua_State, v: f64) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe { ffi::lua_pushnumber(l, v) }
}

/// `void luaffi_push_bool(lua_State *L, int v)`.
///
/// # Safety
/// As [`luaffi_push_i32`].
pub unsafe extern "C-unwind" fn luaffi_push_bool(l: *mut ffi::lua_State, v: c_int) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe { ffi::lua_pushboolean(l, c_int::from(v != 0)) }
}

/// `void luaffi_push_ptr(lua_State *L, void *p, const void *ctype)`: a pointer result or
/// callback argument as [`convert::push_pointer`] pushes every pointer read from C: a pointer
/// cdata of the pointer type `ctype`, `nil` for NULL. Pointers are never pushed inline, so
/// inline and helper paths give the same value.
///
/// # Safety
/// As [`luaffi_to_ptr`], with 3 free slots.
pub unsafe extern "C-unwind" fn luaffi_push_ptr(l: *mut ffi::lua_State, p: *mut c_void, ctype: *const c_void) {
    // SAFETY: valid-L with 3 free slots and `ctype` a live-desc of a pointer type of its state
    // (caller's contract): `push_pointer`'s contract.
    unsafe { convert::push_pointer(l, ctype as *const CTypeDesc, p as usize) }
}

/// `void luaffi_push_record(lua_State *L, const void *ctype, const void *src)`: a new cdata
/// of the struct/union/complex type holding a copy of `src`. The integers the ABI passes for
/// a type read by its own rules (`ValueKind::TypedInt`) are pushed as that type is read from
/// C: a `__ptr32` as a `__ptr32` cdata, `nil` for NULL (the rule of [`luaffi_push_ptr`]); a
/// bool of more than one byte as `true` or `false`, from the bytes the store reads.
///
/// # Safety
/// As [`luaffi_push_ptr`]; `src` holds a value of the type.
pub unsafe extern "C-unwind" fn luaffi_push_record(l: *mut ffi::lua_State, ctype: *const c_void, src: *const c_void) {
    // SAFETY: valid-L with 3 free slots, `ctype` a live-desc of its state and `src` holding a value
    // of its size (caller's contract).
    unsafe {
        let desc = ctype as *const CTypeDesc;
        match (*desc).shape {
            Shape::Ptr32(_) => {
                let p = convert::read_int(src as *const u8, 4, false);
                if p == 0 {
                    ffi::lua_pushnil(l);
                } else {
                    cdata::push_scalar(l, (*desc).state, desc, p, 4);
                }
                return;
            }
            sh @ Shape::WideBool { .. } => {
                let n = sh.bool_bytes().unwrap_or(1);
                ffi::lua_pushboolean(l, c_int::from(convert::read_int(src as *const u8, n, false) != 0));
                return;
            }
            _ => {}
        }
        let p = luaffi_new_result(l, ctype);
        let n = (*(ctype as *const CTypeDesc)).size.unwrap_or(0) as usize;
        std::ptr::copy_nonoverlapping(src as *const u8, p as *mut u8, n);
    }
}

/// `void *luaffi_new_result(lua_State *L, const void *ctype)`: pushes a new zeroed cdata of
/// the type and returns its storage (aligned to the type), which the call fills.
///
/// # Safety
/// As [`luaffi_push_ptr`].
pub unsafe extern "C-unwind" fn luaffi_new_result(l: *mut ffi::lua_State, ctype: *const c_void) -> *mut c_void {
    // SAFETY: valid-L with 3 free slots and `ctype` a live-desc of its state (caller's contract);
    // the new cdata's payload has the type's size.
    unsafe {
        let desc = ctype as *const CTypeDesc;
        let n = (*desc).size.unwrap_or(0) as usize;
        let c = cdata::push_value(l, (*desc).state, desc, n);
        cdata::bytes(c) as *mut c_void
    }
}

/// `void luaffi_argcount_error(lua_State *L, int expected, int got)`: raises LuaJIT's
/// `wrong number of arguments for function call`; never returns.
///
/// # Safety
/// `l` valid, inside a stub call.
pub unsafe extern "C-unwind" fn luaffi_argcount_error(l: *mut ffi::lua_State, expected: c_int, got: c_int) {
    // LuaJIT's message names neither count.
    let _ = (expected, got);
    // SAFETY: valid-L inside a stub call (caller's contract); raise-clean: `raise` moves the
    // message onto the Lua stack and drops it before it unwinds.
    unsafe { cdata::raise(l, "wrong number of arguments for function call".into()) }
}

/// The cdata being called in a stub of `mode` (see [`crate::native::call`]): index 1 in a
/// `__call`, upvalue 1 in a namespace function's closure. Neither is checked: a stub of that
/// mode is only ever entered that way.
#[inline(always)]
unsafe fn called_cdata(l: *mut ffi::lua_State, mode: CallMode) -> cdata::Cdata {
    // SAFETY: valid-L inside a stub call of `mode` (caller's contract), so the called cdata is a
    // live-cdata at index 1 or upvalue 1.
    unsafe {
        let idx = match mode {
            CallMode::Metamethod => {
                // Read from the stack with the verified layout when it can be (a function
                // pointer is a value without user values).
                if let Some(vm) = crate::stack::vm_check::process_layout() {
                    let block =
                        crate::stack::vm_check::Frame::with_args(l, vm, 1).and_then(|fr| fr.full_userdata(vm, 1));
                    if let Some((block, _)) = block {
                        return cdata::Cdata::with_header(block as *mut u8);
                    }
                }
                1
            }
            CallMode::Closure => ffi::lua_upvalueindex(1),
        };
        cdata::Cdata::with_header(ffi::lua_touserdata(l, idx) as *mut u8)
    }
}

/// `luaffi_func_addr` of a stub of `mode`.
#[inline(always)]
unsafe fn func_addr(l: *mut ffi::lua_State, mode: CallMode) -> *mut c_void {
    // SAFETY: the called cdata's bytes hold the address.
    unsafe { (cdata::bytes(called_cdata(l, mode)) as *const *mut c_void).read_unaligned() }
}

/// The state a stub's call belongs to, from its return type's descriptor: every stub is
/// built for one state, and `ret_ctype` is that state's descriptor (one load, no stack lookup).
#[inline(always)]
unsafe fn state_of_call(ret_ctype: *const c_void) -> *mut FfiState {
    // SAFETY: ret_ctype is a live descriptor of the stub's state (see `build_stub`).
    unsafe { (*(ret_ctype as *const CTypeDesc)).state }
}

/// `void *luaffi_func_addr(lua_State *L)`: the address held by the called cdata at index 1
/// (a function or a function pointer): how one stub serves every function of its signature.
///
/// # Safety
/// `l` is in a `__call` stub call (index 1 is the called cdata).
pub unsafe extern "C-unwind" fn luaffi_func_addr(l: *mut ffi::lua_State) -> *mut c_void {
    // SAFETY: valid-L inside a `__call` stub call (caller's contract): index 1 is the called
    // live-cdata.
    unsafe { func_addr(l, CallMode::Metamethod) }
}

/// `lua_State *luaffi_errno_restore(lua_State *L, const void *ret_ctype)`: just before the C
/// call, sets `errno` to the value `ffi.errno()` reports (so a C function sees the value
/// `ffi.errno(n)` set) and, on Windows, `GetLastError()` to the code the last call left, and
/// makes `L` the thread callbacks run on; returns the thread it
/// replaced (NULL outside every call), which `luaffi_after_call` puts back. Serves both
/// stub modes.
///
/// # Safety
/// `l` is in a stub call; `ret_ctype` is the descriptor of the stub's return type.
pub unsafe extern "C-unwind" fn luaffi_errno_restore(
    l: *mut ffi::lua_State,
    ret_ctype: *const c_void,
) -> *mut ffi::lua_State {
    // SAFETY: `ret_ctype` is a live-desc of the stub's state (caller's contract), so
    // `state_of_call` gives a live-state, used from this thread only.
    unsafe {
        let st = state_of_call(ret_ctype);
        let prev = std::mem::replace(&mut (*State::of(st)).calls.calling_l, l);
        set_os_errno((*st).errno());
        set_os_last_error((*st).last_error());
        prev
    }
}

/// `void luaffi_after_call(lua_State *L, const void *ret_ctype, lua_State *prev)`: right
/// after the C call, saves `errno` for `ffi.errno()` (and, on Windows, `GetLastError()` for the
/// next call), puts back the callback thread of before
/// the call (so a callback made later never runs on this thread once it has yielded or
/// died), then raises the error of a callback that failed during the call, if any.
///
/// # Safety
/// As [`luaffi_errno_restore`]; `prev` what it returned; may raise, with nothing owned alive.
pub unsafe extern "C-unwind" fn luaffi_after_call(
    l: *mut ffi::lua_State,
    ret_ctype: *const c_void,
    prev: *mut ffi::lua_State,
) {
    // First: the CRT's errno function may itself change GetLastError.
    let last_error = os_last_error();
    let errno = os_errno();
    // SAFETY: `ret_ctype` is a live-desc of the stub's state (caller's contract), so
    // `state_of_call` gives a live-state, used from this thread only.
    unsafe {
        let st = state_of_call(ret_ctype);
        (*st).set_errno(errno);
        (*st).set_last_error(last_error);
        (*State::of(st)).calls.calling_l = prev;
        crate::native::callback::raise_pending(l, st);
    }
}

/// [`luaffi_func_addr`] for a namespace function's closure (the cdata is upvalue 1).
///
/// # Safety
/// `l` is in a closure-mode stub call.
pub unsafe extern "C-unwind" fn luaffi_closure_func_addr(l: *mut ffi::lua_State) -> *mut c_void {
    // SAFETY: valid-L inside a closure-mode stub call (caller's contract): upvalue 1 is the called
    // live-cdata.
    unsafe { func_addr(l, CallMode::Closure) }
}

/// The address of the function implementing helper `h` in a stub of `mode`, for binding a
/// stub's or thunk's helper calls. Every helper has one. `ArgCount` is `lua_gettop` itself
/// (the same semantics, one call less).
/// The address of every helper, indexed by [`Helper::id`], for a `CodeEnv` of a stub of
/// `mode` (what [`State::new`] keeps for the stubs and thunks it builds).
pub fn helper_addresses(mode: CallMode) -> Vec<u64> {
    Helper::ALL.iter().map(|h| helper_address(*h, mode) as u64).collect()
}

pub fn helper_address(h: Helper, mode: CallMode) -> usize {
    use crate::native::callback::{
        lua_pcall_address, luaffi_callback_call, luaffi_callback_enter, luaffi_callback_leave, luaffi_callback_result,
    };
    match (h, mode) {
        (Helper::FuncAddr, CallMode::Closure) => return luaffi_closure_func_addr as *const () as usize,
        (Helper::PushI64, _) => return push_i64_of(mode)[0],
        (Helper::PushU64, _) => return push_i64_of(mode)[1],
        _ => {}
    }
    match h {
        Helper::ArgCount => ffi::lua_gettop as *const () as usize,
        Helper::ArgCountError => luaffi_argcount_error as *const () as usize,
        Helper::ErrnoLocation => ERRNO_LOCATION.unwrap_or(no_errno_location) as usize,
        Helper::ToI32 => luaffi_to_i32 as *const () as usize,
        Helper::ToU32 => luaffi_to_u32 as *const () as usize,
        Helper::ToI8 => luaffi_to_i8 as *const () as usize,
        Helper::ToU8 => luaffi_to_u8 as *const () as usize,
        Helper::ToI16 => luaffi_to_i16 as *const () as usize,
        Helper::ToU16 => luaffi_to_u16 as *const () as usize,
        Helper::ToI64 => luaffi_to_i64 as *const () as usize,
        Helper::ToU64 => luaffi_to_u64 as *const () as usize,
        Helper::ToF32 => luaffi_to_f32 as *const () as usize,
        Helper::ToF64 => luaffi_to_f64 as *const () as usize,
        Helper::ToBool => luaffi_to_bool as *const () as usize,
        Helper::ToPtr => luaffi_to_ptr as *const () as usize,
        Helper::ToRecord => luaffi_to_record as *const () as usize,
        Helper::PushI32 => luaffi_push_i32 as *const () as usize,
        Helper::PushU32 => luaffi_push_u32 as *const () as usize,
        Helper::PushI64 => luaffi_push_i64 as *const () as usize,
        Helper::PushU64 => luaffi_push_u64 as *const () as usize,
        Helper::PushF32 => luaffi_push_f32 as *const () as usize,
        Helper::PushF64 => luaffi_push_f64 as *const () as usize,
        Helper::PushBool => luaffi_push_bool as *const () as usize,
        Helper::PushPtr => luaffi_push_ptr as *const () as usize,
        Helper::PushRecord => luaffi_push_record as *const () as usize,
        Helper::NewResult => luaffi_new_result as *const () as usize,
        Helper::FuncAddr => luaffi_func_addr as *const () as usize,
        Helper::ErrnoRestore => luaffi_errno_restore as *const () as usize,
        Helper::AfterCall => luaffi_after_call as *const () as usize,
        Helper::CallbackEnter => luaffi_callback_enter as *const () as usize,
        Helper::CallbackCall => luaffi_callback_call as *const () as usize,
        Helper::CallbackLeave => luaffi_callback_leave as *const () as usize,
        Helper::CallbackPcall => lua_pcall_address(),
        Helper::CallbackResult => luaffi_callback_result as *const () as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn lua_with_ffi() -> Lua {
        let lua = Lua::new();
        let module = crate::surface::module::open(&lua).unwrap();
        lua.globals().set("ffi", module).unwrap();
        lua
    }

    /// `add(a, b)`: a stand-in for a generated stub: converts both arguments with the
    /// helpers, pushes the sum with another.
    unsafe extern "C-unwind" fn add(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: called by Lua; helpers raise like a stub's would.
        unsafe {
            let a = luaffi_to_i32(l, 1);
            let b = luaffi_to_i64(l, 2);
            luaffi_push_i64(l, a as i64 + b);
            1
        }
    }

    /// `scale(p, k)`: `int *` in, `double` and bool helpers, a pointer pushed back.
    unsafe extern "C-unwind" fn scale(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: cfunction, like add; the descriptor comes from the live-state of the module open
        // in `l`.
        unsafe {
            let st = state::from_registry(l);
            let int = (*st).types.int(IntKind::Int);
            let ptr_ty = (*st).types.pointer_to(int);
            let desc = (*st).desc(QualType::plain(ptr_ty)) as *const c_void;
            let p = luaffi_to_ptr(l, 1, desc) as *mut i32;
            let k = luaffi_to_f64(l, 2);
            if luaffi_to_bool(l, 3) != 0 {
                *p = (*p as f64 * k) as i32;
            }
            luaffi_push_ptr(l, p as *mut c_void, desc);
            1
        }
    }

    #[test]
    fn helpers_convert_arguments_and_push_results_as_a_stub_would() {
        let lua = lua_with_ffi();
        // SAFETY: add/scale follow the lua_CFunction protocol.
        lua.globals().set("add", unsafe { lua.create_c_function(add) }.unwrap()).unwrap();
        lua.globals().set("scale", unsafe { lua.create_c_function(scale) }.unwrap()).unwrap();
        let r: i64 = lua.load("return tonumber(add(2.9, ffi.new('int64_t', 40)))").eval().unwrap();
        assert_eq!(r, 42);
        let r: i64 = lua.load("return tonumber(add(true, 1))").eval().unwrap();
        assert_eq!(r, 2);
        let s: String = lua
            .load("local a = ffi.new('int[1]', 7); local p = scale(a, 3, true); return tostring(a[0] == 21 and p == ffi.cast('int *', a))")
            .eval()
            .unwrap();
        assert_eq!(s, "true");
        let (ok, msg): (bool, String) = lua.load("return pcall(add, 1, {})").eval().unwrap();
        assert!(!ok);
        assert!(
            msg.starts_with("bad argument #2 to ") && msg.ends_with("(cannot convert 'table' to 'int64_t')"),
            "{msg}"
        );
        let (ok, msg): (bool, String) = lua.load("return pcall(scale, 'x', 1, true)").eval().unwrap();
        assert!(!ok);
        assert!(msg.ends_with("(cannot convert 'string' to 'int *')"), "{msg}");
    }

    /// Calls the `uint64_t` push of a stub of `mode` with `u64::MAX` (boxed on every Lua
    /// version), from a function entered as a stub of that mode is: as a closure over the
    /// function cdata (upvalue 1), or with the cdata at index 1.
    unsafe fn push_big_as(l: *mut ffi::lua_State, mode: CallMode) -> c_int {
        // SAFETY: the helper is entered as a stub of `mode` would enter it (see the callers).
        unsafe {
            let push: unsafe extern "C-unwind" fn(*mut ffi::lua_State, u64) = std::mem::transmute(push_i64_of(mode)[1]);
            push(l, u64::MAX);
            1
        }
    }

    unsafe extern "C-unwind" fn push_big_closure(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: made by `make_closure` with the function cdata as upvalue 1.
        unsafe { push_big_as(l, CallMode::Closure) }
    }

    unsafe extern "C-unwind" fn push_big_call(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: called with a function cdata at index 1, as a `__call` is.
        unsafe { push_big_as(l, CallMode::Metamethod) }
    }

    unsafe extern "C-unwind" fn make_closure(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: cfunction called with the function cdata at index 1.
        unsafe {
            ffi::lua_pushvalue(l, 1);
            ffi::lua_pushcclosure(l, push_big_closure, 1);
            1
        }
    }

    /// The 64-bit pushes of both stub modes and of thunks box a value above
    /// `math.maxinteger` (every value on Lua 5.1/5.2) as a `uint64_t` cdata of the right state,
    /// value and type, each finding the state its own way (the called cdata, the registry).
    /// The value is made by `uint64_t` arithmetic (`0 - 1` wraps): `ffi.new('uint64_t', -1)`
    /// converts the number -1, a double on 5.1/5.2, to 2^63 there, as LuaJIT does.
    #[test]
    fn every_64_bit_push_boxes_as_uint64_t() {
        let lua = lua_with_ffi();
        // SAFETY: each follows the lua_CFunction protocol.
        unsafe {
            lua.globals().set("make_closure", lua.create_c_function(make_closure).unwrap()).unwrap();
            lua.globals().set("push_big_call", lua.create_c_function(push_big_call).unwrap()).unwrap();
        }
        let thunk: String = lua
            .load(
                "local f = ffi.cast('uint64_t (*)(uint64_t)', function(v) return v end) \
                 local g = ffi.cast('void (*)(uint64_t, uint64_t (*)(uint64_t))', function(v, h) \
                   _G.got = tostring(v) .. ' ' .. tostring(ffi.typeof(v)) end) \
                 g(ffi.new('uint64_t', 0) - 1, f) return got",
            )
            .eval()
            .unwrap();
        let fcd = "local fcd = ffi.cast('void (*)(void)', 1) ";
        let by_closure: String = lua
            .load(format!("{fcd} local v = make_closure(fcd)() return tostring(v) .. ' ' .. tostring(ffi.typeof(v))"))
            .eval()
            .unwrap();
        let by_call: String = lua
            .load(format!("{fcd} local v = push_big_call(fcd) return tostring(v) .. ' ' .. tostring(ffi.typeof(v))"))
            .eval()
            .unwrap();
        let want = "18446744073709551615ULL ctype<uint64_t>";
        assert_eq!((thunk.as_str(), by_closure.as_str(), by_call.as_str()), (want, want, want));
    }

    #[test]
    fn cdata_storage_of_an_aligned_32_struct_is_32_byte_aligned() {
        let lua = lua_with_ffi();
        lua.load("ffi.cdef 'struct h_al { char c; int v __attribute__((aligned(32))); };'").exec().unwrap();
        let addrs: Vec<i64> = lua
            .load("local t = {} for i = 1, 16 do t[i] = tonumber(ffi.cast('intptr_t', ffi.cast('void *', ffi.new('struct h_al')))) end return t")
            .eval()
            .unwrap();
        assert!(addrs.iter().all(|a| a % 32 == 0), "{addrs:?}");
    }
}
