//! Arithmetic and comparisons on cdata (LuaJIT's lj_carith.c): 64-bit integer arithmetic
//! for any two numeric operands of which one is a cdata, and pointer arithmetic, difference
//! and comparison.
//!
//! Numeric cdata of any type (even `double`) combine as `int64_t`, or as `uint64_t` when one
//! operand is a `uint64_t`: the result is a boxed 64-bit cdata, printed `123LL`/`123ULL`.
//! Division and modulo truncate as C does; dividing by zero gives INT64_MIN's bit pattern, as
//! the reference LuaJIT 2.1 does.

use std::os::raw::c_int;

use abi_model::QualType;
use mlua::ffi;

use crate::cdata::{self, Form, HAS_INTEGERS};
use crate::convert::{compatible_ptr, f64_to_i64, f64_to_int_bits, flags, read_int, write_int};
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::FfiState;
use crate::stack::LuaStack;

/// An arithmetic or comparison metamethod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// unary `-`
    Unm,
    /// `#`
    Len,
    /// `..`
    Concat,
}

impl Op {
    /// The metamethod's name.
    pub fn event(self) -> &'static std::ffi::CStr {
        match self {
            Op::Eq => c"__eq",
            Op::Lt => c"__lt",
            Op::Le => c"__le",
            Op::Add => c"__add",
            Op::Sub => c"__sub",
            Op::Mul => c"__mul",
            Op::Div => c"__div",
            Op::Mod => c"__mod",
            Op::Pow => c"__pow",
            Op::Unm => c"__unm",
            Op::Len => c"__len",
            Op::Concat => c"__concat",
        }
    }
}

/// One operand: its C type, shape, and the address of its value — for pointers the pointer
/// value itself, for arrays the array's address.
#[derive(Clone, Copy)]
struct Operand {
    ty: QualType,
    shape: Shape,
    p: *const u8,
    /// Storage for a Lua number operand.
    num: NumVal,
}

#[derive(Clone, Copy)]
enum NumVal {
    None,
    Float(f64),
    Int(i64),
}

/// Reads the operand at `idx` (LuaJIT's `carith_checkarg`); `None` if it takes no part in
/// C arithmetic.
unsafe fn operand(l: *mut ffi::lua_State, st: *mut FfiState, idx: c_int) -> Option<Operand> {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        let types = &(*st).types;
        match LuaStack::new(l).type_of(idx) {
            ffi::LUA_TUSERDATA => {
                let c = cdata::to_cdata(l, st, idx);
                if c.is_null() || c.form() == Form::CType {
                    return None;
                }
                let ty = cdata::type_of(c);
                let sh = shape(types, ty.id);
                let (sh, p) = match sh {
                    Shape::Pointer(_) => {
                        (sh, read_int(cdata::bytes(c), std::mem::size_of::<usize>() as u8, false) as usize as *const u8)
                    }
                    // A 4-byte pointer (`__ptr32`) takes part as the pointer it holds,
                    // zero-extended (LuaJIT's `cdata_getptr` of a 4-byte CT_PTR).
                    Shape::Ptr32(to) => (Shape::Pointer(to), read_int(cdata::bytes(c), 4, false) as usize as *const u8),
                    _ => (sh, cdata::bytes(c) as *const u8),
                };
                Some(Operand { ty, shape: sh, p, num: NumVal::None })
            }
            ffi::LUA_TNUMBER => {
                if HAS_INTEGERS && LuaStack::new(l).is_integer(idx) {
                    let v = LuaStack::new(l).to_integer(idx);
                    let id = types.int_of_size(8, true)?;
                    Some(Operand {
                        ty: QualType::plain(id),
                        shape: Shape::Int { size: 8, signed: true },
                        p: std::ptr::null(),
                        num: NumVal::Int(v),
                    })
                } else {
                    let n = LuaStack::new(l).to_number(idx);
                    Some(Operand {
                        ty: QualType::plain(types.float(abi_model::FloatKind::Double)),
                        shape: Shape::Float { size: 8 },
                        p: std::ptr::null(),
                        num: NumVal::Float(n),
                    })
                }
            }
            ffi::LUA_TNIL => Some(Operand {
                ty: QualType::plain((*st).void_ptr()),
                shape: Shape::Pointer(QualType::plain(types.void())),
                p: std::ptr::null(),
                num: NumVal::None,
            }),
            _ => None,
        }
    }
}

/// A string at `idx` naming a constant of the enum type of `other`, an enum cdata: that
/// constant's value, as LuaJIT's `carith_checkarg` reads it (`e < "B"`; Lua asks `__eq` only
/// between two userdata, so `e == "B"` stays false on PUC Lua). Any other string raises
/// LuaJIT's `cannot convert 'string' to 'enum e'`.
///
/// # Safety
/// Called from a metamethod (valid-L, live-state `st`); may raise, owning nothing.
unsafe fn enum_name_operand(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    other: Option<&Operand>,
) -> Option<Operand> {
    // SAFETY: valid-L and live-state from the caller; the conversion writes at most 8 bytes
    // (an enum's integer) into `v`.
    unsafe {
        let other = other.filter(|o| matches!(o.num, NumVal::None))?;
        let types = &(*st).types;
        if LuaStack::new(l).type_of(idx) != ffi::LUA_TSTRING
            || !matches!(types.get(other.ty.id), abi_model::CType::Enum(_))
        {
            return None;
        }
        let Shape::Int { size, signed } = other.shape else { return None };
        let int64 = types.int_of_size(8, true)?;
        let mut v = 0u64;
        let ty = QualType::plain(other.ty.id);
        if let Err(e) = crate::convert::lua_to_c(l, st, idx, ty, &mut v as *mut u64 as *mut u8, 0) {
            // As LuaJIT: a string that names no constant of the enum is a conversion error.
            crate::convert::raise_conv(l, st, e);
        }
        let n = read_int(&v as *const u64 as *const u8, size, signed) as i64;
        Some(Operand {
            ty: QualType::plain(int64),
            shape: Shape::Int { size: 8, signed: true },
            p: std::ptr::null(),
            num: NumVal::Int(n),
        })
    }
}

/// The operand as a 64-bit integer bit pattern (LuaJIT converts both to the result type).
unsafe fn as_u64(o: &Operand, unsigned: bool) -> u64 {
    match o.num {
        NumVal::Int(v) => v as u64,
        NumVal::Float(n) => f64_to_int_bits(n, 8, !unsigned),
        // SAFETY: a cdata operand's value lies at `p`.
        NumVal::None => unsafe {
            match o.shape {
                Shape::Bool | Shape::WideBool { .. } => {
                    (read_int(o.p, o.shape.bool_bytes().unwrap_or(1), false) != 0) as u64
                }
                Shape::Int { size, signed } => read_int(o.p, size, signed),
                Shape::Float { size } => f64_to_int_bits(crate::convert::read_float(o.p, size), 8, !unsigned),
                _ => 0,
            }
        },
    }
}

fn is_num_le8(s: Shape) -> bool {
    s.is_num()
}

/// Signed division as the reference LuaJIT computes it: x/0 and INT64_MIN/-1 give INT64_MIN.
fn div_i64(a: i64, b: i64) -> i64 {
    if b == 0 {
        i64::MIN
    } else {
        a.wrapping_div(b)
    }
}

fn mod_i64(a: i64, b: i64) -> i64 {
    if b == 0 {
        i64::MIN
    } else {
        a.wrapping_rem(b)
    }
}

/// `x^k` by repeated squaring, wrapping (LuaJIT's `lj_carith_powu64`).
pub fn pow_u64(mut x: u64, mut k: u64) -> u64 {
    let mut y: u64 = 1;
    while k != 0 {
        if k & 1 == 1 {
            y = y.wrapping_mul(x);
        }
        x = x.wrapping_mul(x);
        k >>= 1;
    }
    y
}

/// Signed `x^k` (LuaJIT's `lj_carith_powi64`): negative exponents give 0 except for bases
/// 0 (INT64_MAX), 1 and -1.
pub fn pow_i64(x: i64, k: i64) -> i64 {
    if k == 0 {
        return 1;
    }
    if k < 0 {
        return match x {
            0 => i64::MAX,
            1 => 1,
            -1 => {
                if k & 1 == 1 {
                    -1
                } else {
                    1
                }
            }
            _ => 0,
        };
    }
    pow_u64(x as u64, k as u64) as i64
}

/// 64-bit integer arithmetic (LuaJIT's `carith_int64`); pushes the result. `false` if the
/// operands aren't both numeric.
unsafe fn int64_op(l: *mut ffi::lua_State, st: *mut FfiState, a: &Operand, b: &Operand, op: Op) -> bool {
    if !(is_num_le8(a.shape) && is_num_le8(b.shape)) {
        return false;
    }
    let u64_of = |o: &Operand| matches!(o.shape, Shape::Int { size: 8, signed: false });
    let unsigned = u64_of(a) || u64_of(b);
    // SAFETY: operands were read from valid values; valid-L: pushes within its free slots.
    unsafe {
        let u0 = as_u64(a, unsigned);
        let u1 = if op == Op::Unm { 0 } else { as_u64(b, unsigned) };
        let cmp = |f: fn(i64, i64) -> bool, g: fn(u64, u64) -> bool| {
            if unsigned {
                g(u0, u1)
            } else {
                f(u0 as i64, u1 as i64)
            }
        };
        let r = match op {
            Op::Eq => {
                LuaStack::new(l).push_bool(u0 == u1);
                return true;
            }
            Op::Lt => {
                LuaStack::new(l).push_bool(cmp(|x, y| x < y, |x, y| x < y));
                return true;
            }
            Op::Le => {
                LuaStack::new(l).push_bool(cmp(|x, y| x <= y, |x, y| x <= y));
                return true;
            }
            Op::Add => u0.wrapping_add(u1),
            Op::Sub => u0.wrapping_sub(u1),
            Op::Mul => u0.wrapping_mul(u1),
            Op::Div if unsigned => u0.checked_div(u1).unwrap_or(1 << 63),
            Op::Div => div_i64(u0 as i64, u1 as i64) as u64,
            Op::Mod if unsigned => u0.checked_rem(u1).unwrap_or(1 << 63),
            Op::Mod => mod_i64(u0 as i64, u1 as i64) as u64,
            Op::Pow if unsigned => pow_u64(u0, u1),
            Op::Pow => pow_i64(u0 as i64, u1 as i64) as u64,
            Op::Unm => (u0 as i64).wrapping_neg() as u64,
            Op::Len | Op::Concat => return false,
        };
        crate::convert::push_boxed_int64(l, st, r, !unsigned);
    }
    true
}

/// Pointer arithmetic, difference and comparison (LuaJIT's `carith_ptr`); pushes the result.
unsafe fn ptr_op(l: *mut ffi::lua_State, st: *mut FfiState, a: &Operand, b: &Operand, op: Op) -> bool {
    // SAFETY: valid-L: pushes within its free slots; types from the state.
    unsafe {
        let types = &(*st).types;
        let (ptr, idx_op) = if a.shape.is_ptr_like() {
            if matches!(op, Op::Sub | Op::Eq | Op::Lt | Op::Le) && b.shape.is_ptr_like() {
                let (p0, p1) = (a.p as usize, b.p as usize);
                if op == Op::Eq {
                    // Pointer equality: incompatible pointers are fine.
                    LuaStack::new(l).push_bool(p0 == p1);
                    return true;
                }
                if !compatible_ptr(types, a.ty, b.ty, flags::IGNORE_QUALS) {
                    return false;
                }
                match op {
                    Op::Sub => {
                        let elem = elem_of(types, a.shape);
                        let Some(sz) = elem.and_then(|e| types.size_of(e.id).ok()).filter(|&s| s > 0) else {
                            return false;
                        };
                        let diff = (p0 as isize).wrapping_sub(p1 as isize) / sz as isize;
                        push_number_like(l, diff as i64);
                    }
                    Op::Lt => LuaStack::new(l).push_bool(p0 < p1),
                    _ => LuaStack::new(l).push_bool(p0 <= p1),
                }
                return true;
            }
            if !(matches!(op, Op::Add | Op::Sub) && b.shape.is_num()) {
                return false;
            }
            (a, b)
        } else if op == Op::Add && a.shape.is_num() && b.shape.is_ptr_like() {
            (b, a)
        } else {
            return false;
        };
        let mut idx = as_u64(idx_op, false) as i64;
        if let NumVal::Float(n) = idx_op.num {
            idx = f64_to_i64(n);
        }
        if op == Op::Sub {
            idx = idx.wrapping_neg();
        }
        let Some(elem) = elem_of(types, ptr.shape) else { return false };
        let Ok(sz) = types.size_of(elem.id) else { return false };
        let addr = (ptr.p as usize).wrapping_add((idx as isize).wrapping_mul(sz as isize) as usize);
        let pty = (*st).types.pointer_to(elem);
        let desc = (*st).desc(QualType::plain(pty));
        let c = cdata::push_value(l, st, desc, std::mem::size_of::<usize>());
        write_int(cdata::bytes(c), std::mem::size_of::<usize>() as u8, addr as u64);
    }
    true
}

fn elem_of(types: &abi_model::TypeTable, s: Shape) -> Option<QualType> {
    let _ = types;
    match s {
        Shape::Pointer(to) => Some(to),
        Shape::Array(elem, _) => Some(elem),
        _ => None,
    }
}

/// Pushes an integral result that LuaJIT returns as a number (pointer differences).
unsafe fn push_number_like(l: *mut ffi::lua_State, v: i64) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe {
        if HAS_INTEGERS {
            LuaStack::new(l).push_integer(v as ffi::lua_Integer);
        } else {
            LuaStack::new(l).push_number(v as f64);
        }
    }
}

/// Tries the built-in C arithmetic for `op` on the values at 1 and 2; pushes the result and
/// returns true, or pushes nothing and returns false.
///
/// # Safety
/// Called from a metamethod with its two operands at 1 and 2.
pub unsafe fn builtin(l: *mut ffi::lua_State, st: *mut FfiState, op: Op) -> bool {
    // SAFETY: valid-L inside a metamethod with operands at 1 and 2, and live-state `st` (caller's
    // contract); `operand` only reads those two slots.
    unsafe {
        let (a, b) = (operand(l, st, 1), operand(l, st, if op == Op::Unm { 1 } else { 2 }));
        let a = a.or_else(|| enum_name_operand(l, st, 1, b.as_ref()));
        let b = b.or_else(|| enum_name_operand(l, st, 2, a.as_ref()));
        let (Some(a), Some(b)) = (a, b) else {
            return false;
        };
        int64_op(l, st, &a, &b, op) || ptr_op(l, st, &a, &b, op)
    }
}
