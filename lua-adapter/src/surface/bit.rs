//! LuaJIT's `bit` module (its `lib_bit.c`, FFI build) for Lua code that does `require "bit"`
//! where no `bit` module is installed.
//!
//! [`register`] appends a searcher to `package.searchers` (`package.loaders` on 5.1) that
//! answers only the name `"bit"`: being the last searcher, it is asked only when
//! `package.preload` and every installed searcher found nothing, so an installed `bit` (Lua
//! BitOp, a `bit.lua`) always wins.
//!
//! Semantics, as LuaJIT's: numbers are taken modulo 2^32 (a float rounds to the nearest
//! integer, ties to even, as LuaJIT's `lj_num2bit`; a Lua 5.3+ integer wraps) and results are
//! signed 32-bit Lua numbers. A cdata argument (any numeric cdata) makes the operation 64-bit:
//! the result is a boxed `int64_t`, or `uint64_t` when an argument is a `uint64_t`
//! (`bit.band(0x100000001LL, 0xffffffff)` is `1LL`). Shift counts are taken modulo 32 or 64.

use std::os::raw::c_int;

use abi_model::QualType;
use mlua::ffi;

use crate::cdata::{self, HAS_INTEGERS};
use crate::convert;
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{self, FfiState};
use crate::stack::{LuaStack, OrRaise};

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

/// The functions of the `bit` table.
const FUNCTIONS: [(&std::ffi::CStr, CFn); 12] = [
    (c"tobit", bit_tobit),
    (c"tohex", bit_tohex),
    (c"bnot", bit_bnot),
    (c"band", bit_band),
    (c"bor", bit_bor),
    (c"bxor", bit_bxor),
    (c"lshift", bit_lshift),
    (c"rshift", bit_rshift),
    (c"arshift", bit_arshift),
    (c"rol", bit_rol),
    (c"ror", bit_ror),
    (c"bswap", bit_bswap),
];

/// The address that marks the module's searcher (its upvalue 2), so that it is added once.
static SEARCHER_MARK: u8 = 0;

/// Appends the `bit` searcher to `package.searchers` (or 5.1's `package.loaders`) unless
/// `package.loaded.bit` or `package.preload.bit` is set or the searcher is there already
/// (`require "ffi"` run again).
///
/// # Safety
/// `l` valid in a function Lua called, with 4 free slots; `st` the live state of `l`.
pub unsafe fn register(l: *mut ffi::lua_State, st: *mut FfiState) {
    // SAFETY: valid-L with 4 free slots; every push is popped before returning, and
    // `lua_getfield` on a table raises nothing but memory errors, with nothing owned here.
    unsafe {
        let top = ffi::lua_gettop(l);
        ffi::lua_getglobal(l, c"package".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            ffi::lua_settop(l, top);
            return;
        }
        let package = ffi::lua_gettop(l);
        for table in [c"loaded", c"preload"] {
            ffi::lua_getfield(l, package, table.as_ptr());
            let taken = ffi::lua_type(l, -1) == ffi::LUA_TTABLE && {
                ffi::lua_getfield(l, -1, c"bit".as_ptr());
                ffi::lua_type(l, -1) != ffi::LUA_TNIL
            };
            if taken {
                ffi::lua_settop(l, top);
                return;
            }
            ffi::lua_settop(l, package);
        }
        ffi::lua_getfield(l, package, c"searchers".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            ffi::lua_getfield(l, package, c"loaders".as_ptr());
        }
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            let searchers = ffi::lua_gettop(l);
            let n = ffi::lua_rawlen(l, -1) as c_int;
            let mark = &SEARCHER_MARK as *const u8 as *mut std::ffi::c_void;
            let present = (1..=n).any(|i| {
                ffi::lua_rawgeti(l, -1, i as _);
                let marked = ffi::lua_iscfunction(l, -1) != 0
                    && !ffi::lua_getupvalue(l, -1, 2).is_null()
                    && ffi::lua_touserdata(l, -1) == mark
                    && {
                        ffi::lua_pop(l, 1);
                        true
                    };
                ffi::lua_settop(l, searchers);
                marked
            });
            if !present {
                ffi::lua_pushlightuserdata(l, st as *mut _);
                ffi::lua_pushlightuserdata(l, mark);
                ffi::lua_pushcclosure(l, bit_searcher, 2);
                ffi::lua_rawseti(l, -2, (n + 1) as _);
            }
        }
        ffi::lua_settop(l, top);
    }
}

/// The searcher: for `"bit"` the loader [`bit_open`], for any other name nothing (no line in
/// `require`'s "module not found" message).
unsafe extern "C-unwind" fn bit_searcher(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the searcher with the FFI state as upvalue 1 and the module
    // name at 1; only reads and one push.
    unsafe {
        let mut len = 0usize;
        let name = ffi::lua_tolstring(l, 1, &mut len) as *const u8;
        if name.is_null() || std::slice::from_raw_parts(name, len) != b"bit" {
            return 0;
        }
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushcclosure(l, bit_open, 1);
        1
    }
}

/// The loader: builds the `bit` table, each function with the FFI state as upvalue 1.
unsafe extern "C-unwind" fn bit_open(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls the loader with the FFI state as upvalue 1; the stack has
    // LUA_MINSTACK free slots and this uses 3.
    unsafe {
        ffi::lua_createtable(l, 0, FUNCTIONS.len() as c_int);
        for (name, f) in FUNCTIONS {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        1
    }
}

/// A number as LuaJIT's `lj_num2bit` makes it 32 bits: the low word of `n + 2^52 + 2^51`
/// (round to nearest even, modulo 2^32 within ±2^51).
pub fn num_to_bit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

/// The 64-bit type of an operation so far: none (32-bit), `int64_t` or `uint64_t`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wide {
    No,
    Signed,
    Unsigned,
}

/// Argument `narg` as LuaJIT's `lj_carith_check64` reads it: a number (or a string holding
/// one) as its 32 bits zero-extended; a numeric cdata converted to `int64_t`, or to
/// `uint64_t` when it is one, which makes `wide` 64-bit (unsigned wins). Anything else raises
/// `bad argument #narg (number expected, got ...)` or the conversion's error.
unsafe fn check64(l: *mut ffi::lua_State, st: *mut FfiState, narg: c_int, wide: &mut Wide) -> u64 {
    // SAFETY: valid-L and live-state from the caller; reads existing stack slots, and errors
    // are raised with nothing owned in this frame.
    unsafe {
        match ffi::lua_type(l, narg) {
            ffi::LUA_TNUMBER => return number_bits(l, narg),
            ffi::LUA_TSTRING => {
                let mut is_num = 0;
                let n = ffi::lua_tonumberx(l, narg, &mut is_num);
                if is_num != 0 {
                    return num_to_bit(n) as u32 as u64;
                }
            }
            ffi::LUA_TUSERDATA => {
                let c = cdata::to_cdata(l, st, narg);
                if !c.is_null() {
                    let unsigned = shape(&(*st).types, cdata::type_of(c).id) == Shape::Int { size: 8, signed: false };
                    if unsigned {
                        *wide = Wide::Unsigned;
                    } else if *wide == Wide::No {
                        *wide = Wide::Signed;
                    }
                    return convert_to(l, st, narg, *wide);
                }
            }
            _ => {}
        }
        let got = cdata::lua_typename_at(l, narg);
        cdata::raise_arg(l, narg, format!("number expected, got {got}"))
    }
}

/// The Lua number at `idx` taken modulo 2^32, zero-extended.
unsafe fn number_bits(l: *mut ffi::lua_State, idx: c_int) -> u64 {
    // SAFETY: valid-L and a number at `idx` (caller's contract): reads only.
    unsafe {
        let stack = LuaStack::new(l);
        if HAS_INTEGERS && stack.is_integer(idx) {
            stack.to_integer(idx) as u32 as u64
        } else {
            num_to_bit(stack.to_number(idx)) as u32 as u64
        }
    }
}

/// The value at `idx` converted to `int64_t` or `uint64_t` as an implicit C conversion
/// (LuaJIT's `lj_cconv_ct_tv`); raises `bad argument #idx (cannot convert ...)`.
unsafe fn convert_to(l: *mut ffi::lua_State, st: *mut FfiState, idx: c_int, wide: Wide) -> u64 {
    // SAFETY: valid-L and live-state from the caller; `x` has room for the 8-byte result.
    unsafe {
        let id = (*st).types.int_of_size(8, wide != Wide::Unsigned).unwrap_or(abi_model::TypeId(0));
        let mut x = 0u64;
        if let Err(e) = convert::lua_to_c(l, st, idx, QualType::plain(id), &mut x as *mut u64 as *mut u8, 0) {
            convert::raise_conv_arg(l, st, idx, e);
        }
        x
    }
}

/// Pushes a result: a boxed 64-bit cdata when `wide`, else the low 32 bits as a signed Lua
/// number (an integer on 5.3+). Returns 1, the result count.
unsafe fn push_result(l: *mut ffi::lua_State, st: *mut FfiState, wide: Wide, x: u64) -> c_int {
    // SAFETY: valid-L with the LUA_MINSTACK slots of a C function; one value pushed.
    unsafe {
        match wide {
            Wide::No if HAS_INTEGERS => ffi::lua_pushinteger(l, x as u32 as i32 as ffi::lua_Integer),
            Wide::No => ffi::lua_pushnumber(l, x as u32 as i32 as f64),
            Wide::Signed | Wide::Unsigned => convert::push_boxed_int64(l, st, x, wide == Wide::Signed),
        }
        1
    }
}

/// `bit.tobit(x)`: `x` normalised to a signed 32-bit number (a cdata too: its low 32 bits).
unsafe extern "C-unwind" fn bit_tobit(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state).
    unsafe {
        let st = state::from_upvalue(l);
        let x = check64(l, st, 1, &mut Wide::No);
        push_result(l, st, Wide::No, x)
    }
}

/// A unary operation: `f32` on 32 bits, `f64` on 64.
unsafe fn unary(l: *mut ffi::lua_State, f32: fn(u32) -> u32, f64: fn(u64) -> u64) -> c_int {
    // SAFETY: cfunction: called from the `bit` functions, with the FFI state as upvalue 1.
    unsafe {
        let st = state::from_upvalue(l);
        let mut wide = Wide::No;
        let x = check64(l, st, 1, &mut wide);
        let r = if wide == Wide::No { f32(x as u32) as u64 } else { f64(x) };
        push_result(l, st, wide, r)
    }
}

unsafe extern "C-unwind" fn bit_bnot(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `unary`'s contract.
    unsafe { unary(l, |x| !x, |x| !x) }
}

unsafe extern "C-unwind" fn bit_bswap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `unary`'s contract.
    unsafe { unary(l, u32::swap_bytes, u64::swap_bytes) }
}

/// The n-ary operations, with LuaJIT's numbering (`FF_bit_bor` + op).
#[derive(Clone, Copy)]
enum Nary {
    And,
    Or,
    Xor,
}

/// `band`/`bor`/`bxor` of one or more arguments. With a cdata among them every argument is
/// converted to the 64-bit type (a number as a C conversion of the double, as LuaJIT's second
/// pass does), otherwise each is taken modulo 2^32.
unsafe fn nary(l: *mut ffi::lua_State, op: Nary) -> c_int {
    // SAFETY: cfunction: called from the `bit` functions, with the FFI state as upvalue 1.
    unsafe {
        let st = state::from_upvalue(l);
        let n = ffi::lua_gettop(l).max(1);
        let mut wide = Wide::No;
        let mut acc: u64 = if matches!(op, Nary::And) { !0 } else { 0 };
        for i in 1..=n {
            let x = check64(l, st, i, &mut wide);
            acc = apply(op, acc, x);
        }
        if wide != Wide::No {
            acc = if matches!(op, Nary::And) { !0 } else { 0 };
            for i in 1..=n {
                acc = apply(op, acc, convert_to(l, st, i, wide));
            }
        }
        push_result(l, st, wide, acc)
    }
}

fn apply(op: Nary, acc: u64, x: u64) -> u64 {
    match op {
        Nary::And => acc & x,
        Nary::Or => acc | x,
        Nary::Xor => acc ^ x,
    }
}

unsafe extern "C-unwind" fn bit_band(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `nary`'s contract.
    unsafe { nary(l, Nary::And) }
}

unsafe extern "C-unwind" fn bit_bor(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `nary`'s contract.
    unsafe { nary(l, Nary::Or) }
}

unsafe extern "C-unwind" fn bit_bxor(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `nary`'s contract.
    unsafe { nary(l, Nary::Xor) }
}

/// The shifts and rotations, as LuaJIT's `lj_carith_shift64` numbers them.
#[derive(Clone, Copy)]
enum Shift {
    Left,
    Right,
    Arith,
    RotLeft,
    RotRight,
}

/// `x` shifted by `sh` (modulo the width) on 32 or 64 bits.
fn shift(op: Shift, x: u64, sh: u32, wide: bool) -> u64 {
    if wide {
        let sh = sh & 63;
        match op {
            Shift::Left => x << sh,
            Shift::Right => x >> sh,
            Shift::Arith => ((x as i64) >> sh) as u64,
            Shift::RotLeft => x.rotate_left(sh),
            Shift::RotRight => x.rotate_right(sh),
        }
    } else {
        let (x, sh) = (x as u32, sh & 31);
        (match op {
            Shift::Left => x << sh,
            Shift::Right => x >> sh,
            Shift::Arith => ((x as i32) >> sh) as u32,
            Shift::RotLeft => x.rotate_left(sh),
            Shift::RotRight => x.rotate_right(sh),
        }) as u64
    }
}

/// `bit.lshift(x, n)` and friends: the width is `x`'s alone (a cdata count shifts a number
/// on 32 bits).
unsafe fn shift_op(l: *mut ffi::lua_State, op: Shift) -> c_int {
    // SAFETY: cfunction: called from the `bit` functions, with the FFI state as upvalue 1.
    unsafe {
        let st = state::from_upvalue(l);
        let mut wide = Wide::No;
        let x = check64(l, st, 1, &mut wide);
        let sh = check64(l, st, 2, &mut Wide::No) as u32;
        push_result(l, st, wide, shift(op, x, sh, wide != Wide::No))
    }
}

unsafe extern "C-unwind" fn bit_lshift(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `shift_op`'s contract.
    unsafe { shift_op(l, Shift::Left) }
}

unsafe extern "C-unwind" fn bit_rshift(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `shift_op`'s contract.
    unsafe { shift_op(l, Shift::Right) }
}

unsafe extern "C-unwind" fn bit_arshift(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `shift_op`'s contract.
    unsafe { shift_op(l, Shift::Arith) }
}

unsafe extern "C-unwind" fn bit_rol(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `shift_op`'s contract.
    unsafe { shift_op(l, Shift::RotLeft) }
}

unsafe extern "C-unwind" fn bit_ror(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a `bit` function: `shift_op`'s contract.
    unsafe { shift_op(l, Shift::RotRight) }
}

/// The digits `bit.tohex(x, n)` prints: `|n|` hex digits of `x`, upper case when `n < 0`,
/// the value cut to `|n|` digits or zero-padded to them (none for 0). Past 254 digits, as in
/// current LuaJIT 2.1, 254 (LuaJIT 2.1.0-beta3 took `|n|` modulo 256 there).
pub fn tohex(x: u64, n: i32) -> String {
    let upper = n < 0;
    let digits = n.unsigned_abs().min(254) as usize;
    let x = if digits < 16 { x & ((1u64 << (4 * digits)) - 1) } else { x };
    if x == 0 && digits == 0 {
        String::new()
    } else if upper {
        format!("{x:0digits$X}")
    } else {
        format!("{x:0digits$x}")
    }
}

/// `bit.tohex(x [, n])`: `n` defaults to 8 digits, 16 for a cdata `x`.
unsafe extern "C-unwind" fn bit_tohex(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the string
    // is dropped before anything can raise.
    unsafe {
        let st = state::from_upvalue(l);
        let mut wide = Wide::No;
        let x = check64(l, st, 1, &mut wide);
        let n = if ffi::lua_gettop(l) < 2 {
            if wide == Wide::No {
                8
            } else {
                16
            }
        } else {
            check64(l, st, 2, &mut Wide::No) as i32
        };
        LuaStack::new(l).check_stack(1).or_raise(l);
        let s = tohex(x, n);
        ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
        drop(s);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_to_bit_rounds_to_even_and_wraps() {
        assert_eq!(num_to_bit(1.5), 2);
        assert_eq!(num_to_bit(2.5), 2);
        assert_eq!(num_to_bit(-1.5), -2);
        assert_eq!(num_to_bit(4294967301.0), 5);
        assert_eq!(num_to_bit(4294967295.0), -1);
    }

    #[test]
    fn tohex_cuts_pads_and_cases_as_luajit() {
        assert_eq!(tohex(0x1234_5678, 8), "12345678");
        assert_eq!(tohex(0x1234_5678, 2), "78");
        assert_eq!(tohex(0x1234_5678, -2), "78");
        assert_eq!(tohex(0xffff_ffff, -9), "0FFFFFFFF");
        assert_eq!(tohex(0x1234_5678, 0), "");
        assert_eq!(tohex(0x1234_5678_90ab_cdef, 16), "1234567890abcdef");
        assert_eq!(tohex(1, 300).len(), 254);
    }

    #[test]
    fn shifts_take_the_count_modulo_the_width() {
        assert_eq!(shift(Shift::Left, 1, 33, false), 2);
        assert_eq!(shift(Shift::Left, 1, 33, true), 1 << 33);
        assert_eq!(shift(Shift::Arith, (-256i32) as u32 as u64, 4, false) as u32 as i32, -16);
        assert_eq!(shift(Shift::Right, (-256i32) as u32 as u64, 4, false), 268435440);
        assert_eq!(shift(Shift::RotRight, 1, 1, false) as u32 as i32, i32::MIN);
    }
}
