//! Conversions between Lua values and C values, with LuaJIT's rules (lj_cconv.c is the
//! reference; the "Conversions" section of LuaJIT's ext_ffi_semantics page the spec).
//!
//! The core is reusable by the call stubs: [`lua_to_c`] converts the Lua value at a stack
//! index to a C value of a type written to memory, [`c_to_lua`] pushes the C value of a type
//! found in memory. Both report failures as a [`ConvError`] (plain data, owning nothing);
//! callers turn it into a Lua error with [`raise_conv`] / [`raise_conv_arg`].

use std::os::raw::c_int;

use abi_model::cdef::find_member;
use abi_model::{ArrayLen, CType, QualType, Quals, RecordKind, TypeId, TypeTable};
use mlua::ffi;

use crate::cdata::{self, Form, HAS_INTEGERS};
use crate::ctypes::ctype::{repr, repr_with_params, shape, Shape};
use crate::ctypes::state::{CTypeDesc, FfiState};

/// Conversion flags (LuaJIT's `CCF_*`).
pub mod flags {
    /// An explicit cast (`ffi.cast`): integers/pointers convert freely.
    pub const CAST: u8 = 1;
    /// The source is a Lua number or string (named so in error messages).
    pub const FROM_LUA: u8 = 2;
    /// Pointer targets must have the same qualifiers.
    pub const SAME: u8 = 4;
    /// Qualifiers of pointer targets are ignored.
    pub const IGNORE_QUALS: u8 = 8;
}

/// Where a value came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A Lua value of this type tag (`LUA_TTABLE`, ...).
    Lua(c_int),
    /// A C value of this type.
    C(QualType),
    /// A ctype object.
    CTypeObject,
}

/// A failed conversion. Plain data: it owns nothing, so it may be alive when a Lua error is
/// raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvError {
    /// `cannot convert 'from' to 'to'`.
    Bad {
        /// The source.
        from: Origin,
        /// The destination type.
        to: QualType,
    },
    /// `too many initializers for 'to'`.
    InitOverflow(QualType),
    /// `attempt to write to constant location`.
    WriteConst,
    /// `attempt to use a closed file` (Lua's words): a closed `io` file handle converted to
    /// a pointer (LuaJIT passes NULL).
    ClosedFile,
    /// Initializer tables nested deeper than [`MAX_INIT_DEPTH`].
    TooDeep,
    /// The Lua stack cannot grow for the initializer walk.
    StackOverflow,
    /// `too many callbacks`: a Lua function to convert to a function pointer, and every
    /// callback slot taken ([`crate::native::callback::MAX_CALLBACKS`]).
    TooManyCallbacks,
    /// A Lua function to convert to a function pointer whose thunk could not be built though
    /// its signature is fine (not LuaJIT's conversion error: the OS or a backend failed).
    CallbackCode {
        /// The function pointer type.
        to: QualType,
        /// What failed.
        failure: CodeFailure,
    },
}

impl ConvError {
    /// The message, in LuaJIT's words.
    pub fn message(&self, types: &TypeTable) -> String {
        match self {
            ConvError::Bad { from, to } => {
                let f = match from {
                    Origin::Lua(t) => cdata::lua_type_name(*t).to_string(),
                    Origin::C(ty) => repr_with_params(types, *ty),
                    Origin::CTypeObject => "ctype".to_string(),
                };
                format!("cannot convert '{f}' to '{}'", repr_with_params(types, *to))
            }
            ConvError::InitOverflow(to) => format!("too many initializers for '{}'", repr(types, *to, false)),
            ConvError::WriteConst => "attempt to write to constant location".to_string(),
            ConvError::ClosedFile => "attempt to use a closed file".to_string(),
            ConvError::TooDeep => "initializer nesting too deep".to_string(),
            ConvError::StackOverflow => "stack overflow".to_string(),
            ConvError::TooManyCallbacks => "too many callbacks".to_string(),
            ConvError::CallbackCode { to, failure } => {
                format!("cannot make a callback for '{}': {failure}", repr_with_params(types, *to))
            }
        }
    }
}

/// Raises a conversion error as a plain Lua error (with the caller's position).
///
/// # Safety
/// As [`cdata::raise`].
pub unsafe fn raise_conv(l: *mut ffi::lua_State, st: *const FfiState, e: ConvError) -> ! {
    // SAFETY: the message String is moved into `raise`, which drops it before lua_error.
    unsafe { cdata::raise(l, e.message(&(*st).types)) }
}

/// Raises a conversion error as `bad argument #narg to 'f' (message)`.
///
/// # Safety
/// As [`cdata::raise_arg`].
pub unsafe fn raise_conv_arg(l: *mut ffi::lua_State, st: *const FfiState, narg: c_int, e: ConvError) -> ! {
    // SAFETY: valid-L and raise-clean from the caller, live-state `st`: the message is built from
    // `st`'s types and moved into `raise_arg`, which drops it before Lua unwinds.
    unsafe { cdata::raise_arg(l, narg, e.message(&(*st).types)) }
}

/// The bytes at a destination whose extent is unknown: memory reached through a raw pointer,
/// or a C global. Writing there is the caller's business, as in C.
pub const UNKNOWN_ROOM: u64 = u64::MAX;

/// How many initializer tables may nest (LuaJIT has no bound and recurses on the C stack).
/// As Lua bounds its own C recursion (`LUAI_MAXCCALLS`), 200.
pub const MAX_INIT_DEPTH: u32 = 200;

/// Lua stack slots one level of an initializer walk may use: the value held while it converts
/// (a table traversal holds a key and a value), and what a leaf conversion pushes (a callback's
/// reference, a metatable).
const WALK_SLOTS: c_int = 4;

/// Where a conversion writes, beyond its destination type: the bytes available there (what
/// bounds an array of unknown size, `T[?]` or `T[]`, written whole) and how many initializer
/// tables enclose it.
#[derive(Clone, Copy)]
struct At {
    room: u64,
    depth: u32,
}

impl At {
    /// A destination of `room` bytes outside any table.
    fn top(room: u64) -> At {
        At { room, depth: 0 }
    }

    /// The member or element `offset` bytes in, inside one more table.
    fn inner(self, offset: u64) -> At {
        let room = if self.room == UNKNOWN_ROOM { UNKNOWN_ROOM } else { self.room.saturating_sub(offset) };
        At { room, depth: self.depth + 1 }
    }
}

/// Enters an initializer table: refuses nesting beyond [`MAX_INIT_DEPTH`] (each level costs C
/// stack), and makes room on the Lua stack for the level's pushes (each level holds a slot
/// while the next converts; a coroutine's stack starts with few free slots).
///
/// # Safety
/// `l` is a valid state.
unsafe fn enter_table(l: *mut ffi::lua_State, at: At) -> Result<(), ConvError> {
    if at.depth >= MAX_INIT_DEPTH {
        return Err(ConvError::TooDeep);
    }
    // SAFETY: valid-L (caller's contract); `lua_checkstack` does not raise, it reports failure.
    if unsafe { ffi::lua_checkstack(l, WALK_SLOTS) } == 0 {
        return Err(ConvError::StackOverflow);
    }
    Ok(())
}

/// A C source value: its type (for messages and compatibility checks), shape and bytes.
#[derive(Clone, Copy)]
struct Src {
    ty: QualType,
    shape: Shape,
    p: *const u8,
    origin: Origin,
}

// ---- scalar helpers ---------------------------------------------------------------------

/// Reads a `size`-byte integer, sign- or zero-extended to 64 bits.
///
/// # Safety
/// `p` must point to `size` readable bytes.
pub unsafe fn read_int(p: *const u8, size: u8, signed: bool) -> u64 {
    // SAFETY: `p` points to `size` readable bytes (caller's contract); unaligned reads serve packed
    // members.
    unsafe {
        match (size, signed) {
            (1, true) => (p as *const i8).read_unaligned() as i64 as u64,
            (1, false) => p.read_unaligned() as u64,
            (2, true) => (p as *const i16).read_unaligned() as i64 as u64,
            (2, false) => (p as *const u16).read_unaligned() as u64,
            (4, true) => (p as *const i32).read_unaligned() as i64 as u64,
            (4, false) => (p as *const u32).read_unaligned() as u64,
            _ => (p as *const u64).read_unaligned(),
        }
    }
}

/// Writes the low `size` bytes of `v`.
///
/// # Safety
/// `p` must point to `size` writable bytes.
pub unsafe fn write_int(p: *mut u8, size: u8, v: u64) {
    let bytes = v.to_le_bytes();
    // SAFETY: `p` points to `size` writable bytes (caller's contract), and `bytes` has 8 >=
    // `size.min(8)`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, size.min(8) as usize) }
}

/// Writes the 64-bit integer `v` as a `size`-byte (16 or 32) integer: its 8 bytes, then the
/// sign (`signed` and negative) or zeros above, as LuaJIT extends an integer to `int128_t`.
///
/// # Safety
/// `p` must point to `size` writable bytes.
unsafe fn write_wide(p: *mut u8, size: u8, v: u64, signed: bool) {
    let fill = if signed && (v as i64) < 0 { 0xff } else { 0 };
    // SAFETY: `p` points to `size` >= 8 writable bytes (caller's contract).
    unsafe {
        write_int(p, 8, v);
        std::ptr::write_bytes(p.add(8), fill, usize::from(size).saturating_sub(8));
    }
}

/// Reads a float of `size` bytes as a double.
///
/// # Safety
/// `p` must point to `size` readable bytes.
pub unsafe fn read_float(p: *const u8, size: u8) -> f64 {
    // SAFETY: `p` points to `size` readable bytes (caller's contract); unaligned reads serve packed
    // members.
    unsafe {
        if size == 4 {
            (p as *const f32).read_unaligned() as f64
        } else {
            (p as *const f64).read_unaligned()
        }
    }
}

/// Writes a double as a float of `size` bytes.
///
/// # Safety
/// `p` must point to `size` writable bytes.
pub unsafe fn write_float(p: *mut u8, size: u8, n: f64) {
    // SAFETY: `p` points to `size` writable bytes (caller's contract); unaligned writes serve
    // packed members.
    unsafe {
        if size == 4 {
            (p as *mut f32).write_unaligned(n as f32)
        } else {
            (p as *mut f64).write_unaligned(n)
        }
    }
}

/// Integer to double, as C converts the source type.
fn int_to_f64(v: u64, size: u8, signed: bool) -> f64 {
    if size == 8 && !signed {
        v as f64
    } else {
        v as i64 as f64
    }
}

/// `(int32_t)n` as x86 computes it (`cvttsd2si`): out of range and NaN give INT32_MIN.
pub fn f64_to_i32(n: f64) -> i32 {
    if n.is_nan() || n >= 2147483648.0 || n <= -2147483649.0 {
        i32::MIN
    } else {
        n as i32
    }
}

/// `(int64_t)n` as x86-64 computes it: out of range and NaN give INT64_MIN.
pub fn f64_to_i64(n: f64) -> i64 {
    if !(-9223372036854775808.0..9223372036854775808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// LuaJIT's `lj_num2u64` as the reference LuaJIT 2.1 (Debian's) computes it: values from 2^63
/// wrap modulo 2^64; negative values whose integer part is not 0, NaN and values out of
/// range give 2^63.
pub fn f64_to_u64(n: f64) -> u64 {
    if n >= 9223372036854775808.0 {
        f64_to_i64(n - 18446744073709551616.0) as u64
    } else {
        let t = n.trunc();
        if t >= 0.0 {
            t as u64
        } else {
            1 << 63
        }
    }
}

/// Whether the Lua integer `v` converts to a C value of shape `ds` exactly as the double
/// `v as f64` does, so that either path may convert it. A Lua integer converts as C converts
/// an `int64_t` (modulo 2^N to an N-bit integer: -1 to `uint64_t` is 2^64 - 1); the double
/// rule ([`f64_to_int_bits`]) agrees only when the double is exact (`|v| <= 2^53`), narrows
/// through `int32_t` only values that fit it, and gives `uint64_t` only non-negative values
/// (a negative double becomes 2^63 there).
pub fn int_converts_as_double(v: i64, ds: Shape) -> bool {
    match ds {
        Shape::Int { size, signed } if size < 4 || (size == 4 && signed) => i32::try_from(v).is_ok(),
        Shape::Int { size: 8, signed: false } => (0..=1i64 << 53).contains(&v),
        _ => v.unsigned_abs() <= 1u64 << 53,
    }
}

/// Double to an integer of `size` bytes, LuaJIT's `conv_I_F`: below 4 bytes and for signed
/// 4 bytes via int32; unsigned 4 bytes via int64; 8 bytes via int64/uint64.
pub fn f64_to_int_bits(n: f64, size: u8, signed: bool) -> u64 {
    if size < 4 || (size == 4 && signed) {
        f64_to_i32(n) as i64 as u64
    } else if size == 4 || signed {
        f64_to_i64(n) as u64
    } else {
        f64_to_u64(n)
    }
}

fn ptr_size() -> u8 {
    std::mem::size_of::<usize>() as u8
}

// ---- C to C -------------------------------------------------------------------------------

/// The class LuaJIT compares when checking pointer compatibility (`ctype_type`).
fn type_class(s: Shape) -> u8 {
    match s {
        Shape::Bool | Shape::WideBool { .. } | Shape::Int { .. } | Shape::WideInt { .. } | Shape::Float { .. } => 0,
        Shape::Complex { .. } | Shape::Array(..) => 1,
        Shape::Pointer(_) | Shape::Ptr32(_) => 2,
        Shape::Record => 3,
        Shape::Func => 4,
        Shape::Void => 5,
        Shape::Unsupported => 6,
    }
}

/// The target type of a pointer or array (with its qualifiers), the type itself otherwise.
fn child(types: &TypeTable, ty: QualType) -> QualType {
    match types.get(ty.id) {
        CType::Complex(k) => QualType::plain(types.float(*k)),
        CType::Pointer(to) | CType::Ptr32(to) => *to,
        CType::Array { elem, .. } => QualType { id: elem.id, quals: elem.quals.union(ty.quals) },
        _ => ty,
    }
}

fn quals_subset(inner: Quals, outer: Quals) -> bool {
    (!inner.is_const || outer.is_const) && (!inner.is_volatile || outer.is_volatile)
}

/// LuaJIT's `lj_cconv_compatptr`: may a `d` (pointer/array type) be made from an `s`
/// (pointer, array or record type) without a cast? More relaxed than C99: integer targets of
/// one size are compatible whatever their signedness, `void *` converts to and from anything
/// (unless qualifiers would be dropped).
pub fn compatible_ptr(types: &TypeTable, d: QualType, s: QualType, fl: u8) -> bool {
    if fl & flags::CAST != 0 || d.id == s.id {
        return true;
    }
    let dc = child(types, d);
    let sc = if matches!(types.get(s.id), CType::Record(_)) { s } else { child(types, s) };
    if fl & flags::SAME != 0 {
        if dc.quals != sc.quals {
            return false;
        }
    } else if fl & flags::IGNORE_QUALS == 0 {
        if !quals_subset(sc.quals, dc.quals) {
            return false;
        }
        if matches!(types.get(dc.id), CType::Void) || matches!(types.get(sc.id), CType::Void) {
            return true;
        }
    }
    let (ds, ss) = (shape(types, dc.id), shape(types, sc.id));
    if type_class(ds) != type_class(ss) || types.size_of(dc.id).ok() != types.size_of(sc.id).ok() {
        return false;
    }
    match ds {
        Shape::Bool | Shape::WideBool { .. } | Shape::Int { .. } | Shape::Float { .. } => {
            ds.bool_bytes().is_some() == ss.bool_bytes().is_some()
                && matches!(ds, Shape::Float { .. }) == matches!(ss, Shape::Float { .. })
        }
        Shape::Pointer(_) => compatible_ptr(types, dc, sc, fl | flags::SAME),
        Shape::Record => dc.id == sc.id,
        Shape::Func => same_calling_sequence(types, dc.id, sc.id),
        _ => true,
    }
}

/// How the ABI passes a parameter or result, as far as converting between function pointer
/// types cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Passed {
    /// Nothing (a `void` result).
    Nothing,
    /// Integers, bools, enums and pointers, in this many integer registers or stack words.
    Words(u64),
    /// A `float` or `double` of this many bytes.
    Float(u64),
    /// Anything else (records, complex numbers, vectors, `long double`): only the same type
    /// is passed the same way.
    Exactly(TypeId),
}

fn passed(types: &TypeTable, ty: QualType) -> Passed {
    let word = u64::from(ptr_size());
    match shape(types, ty.id) {
        Shape::Void => Passed::Nothing,
        Shape::Bool | Shape::Pointer(_) => Passed::Words(1),
        Shape::Int { size, .. } => Passed::Words(u64::from(size).div_ceil(word)),
        Shape::Float { size } => Passed::Float(u64::from(size)),
        _ => Passed::Exactly(ty.id),
    }
}

/// May a pointer to function type `s` convert to a pointer to function type `d`? LuaJIT
/// allows it whenever the parameter counts agree ("NYI: structural equality of functions"),
/// which is what real code needs: a `int (*)(const double *, const double *)` comparator
/// passed to `qsort`, a handler taking `struct foo *` where `void *` is declared. Here the two
/// must also be called alike, so that C calling through the converted pointer cannot make
/// the callee write outside an object (a record result returned through a hidden pointer the
/// caller never passed, a callee-popped stack of another size): the same parameter count,
/// variadic flag and convention; each parameter, and the result, an integer or pointer of as
/// many words as the other, a floating number of the same size, or the same type otherwise; a
/// `void` result goes with any scalar result. Other pairs LuaJIT converts are refused ("cannot
/// convert", naming both signatures); `ffi.cast` still converts anything.
fn same_calling_sequence(types: &TypeTable, d: TypeId, s: TypeId) -> bool {
    if d == s {
        return true;
    }
    let (CType::Function(df), CType::Function(sf)) = (types.get(d), types.get(s)) else {
        return false;
    };
    if df.params.len() != sf.params.len() || df.variadic != sf.variadic || df.conv != sf.conv {
        return false;
    }
    let result_alike = match (passed(types, df.ret), passed(types, sf.ret)) {
        (a, b) if a == b => true,
        (Passed::Nothing, Passed::Words(_) | Passed::Float(_)) => true,
        (Passed::Words(_) | Passed::Float(_), Passed::Nothing) => true,
        _ => false,
    };
    result_alike && df.params.iter().zip(&sf.params).all(|(a, b)| passed(types, a.ty) == passed(types, b.ty))
}

/// An enum type as its integer type (what LuaJIT converts, and names in errors), any other
/// type as itself.
fn enum_as_int(types: &TypeTable, ty: QualType) -> QualType {
    match types.get(ty.id) {
        CType::Enum(e) => QualType { id: types.int(e.repr), quals: ty.quals },
        _ => ty,
    }
}

/// Converts a C value to another C type (LuaJIT's `lj_cconv_ct_ct`). An enum destination
/// converts as its integer type (and is named so in errors, as in LuaJIT).
///
/// # Safety
/// `dp` must have room for the destination; `s.p` must point to the source's bytes.
unsafe fn conv_ct_ct(types: &TypeTable, d: QualType, ds: Shape, dp: *mut u8, s: Src, fl: u8) -> Result<(), ConvError> {
    let d = enum_as_int(types, d);
    let bad = Err(ConvError::Bad { from: s.origin, to: d });
    let cast = fl & flags::CAST != 0;
    let sp = s.p;
    // SAFETY (whole body): sizes are those of the shapes, which the caller's buffers have.
    unsafe {
        // A 4-byte pointer converts as the pointer it holds (zero-extended), and is made as a
        // pointer is, truncated to 32 bits (LuaJIT `lj_cconv_ct_ct` on a 4-byte CT_PTR).
        if let Shape::Ptr32(to) = s.shape {
            let wide = read_int(sp, 4, false) as usize;
            let src =
                Src { ty: s.ty, shape: Shape::Pointer(to), p: &wide as *const usize as *const u8, origin: s.origin };
            return conv_ct_ct(types, d, ds, dp, src, fl);
        }
        if let Shape::Ptr32(to) = ds {
            let mut wide = [0u8; 8];
            conv_ct_ct(types, d, Shape::Pointer(to), wide.as_mut_ptr(), s, fl)?;
            std::ptr::copy_nonoverlapping(wide.as_ptr(), dp, 4);
            return Ok(());
        }
        // A bool of 2, 4 or 8 bytes converts as a `bool` of the value in its first bytes.
        if let Shape::WideBool { .. } = s.shape {
            let n = s.shape.bool_bytes().unwrap_or(1);
            let b = (read_int(sp, n, false) != 0) as u8;
            let src = Src { ty: QualType::plain(types.bool()), shape: Shape::Bool, p: &b, origin: s.origin };
            return conv_ct_ct(types, d, ds, dp, src, fl);
        }
        if let Shape::WideBool { .. } = ds {
            let mut b = 0u8;
            conv_ct_ct(types, QualType::plain(types.bool()), Shape::Bool, &mut b, s, fl).map_err(|e| match e {
                ConvError::Bad { from, .. } => ConvError::Bad { from, to: d },
                other => other,
            })?;
            write_int(dp, ds.bool_bytes().unwrap_or(1), u64::from(b));
            return Ok(());
        }
        match (ds, s.shape) {
            // Only numbers become bools (as the reference LuaJIT 2.1 decides): not pointers,
            // arrays, strings, nil or complex numbers, even by a cast.
            (Shape::Bool, Shape::Bool) => *dp = (*sp != 0) as u8,
            (Shape::Bool, Shape::Int { size, .. }) => *dp = (read_int(sp, size, false) != 0) as u8,
            (Shape::Bool, Shape::Float { size }) => *dp = (read_float(sp, size) != 0.0) as u8,

            (Shape::Int { size, .. }, Shape::Bool) => write_int(dp, size, *sp as u64),
            (Shape::Int { size, .. }, Shape::Int { size: ss, signed }) => write_int(dp, size, read_int(sp, ss, signed)),
            (Shape::Int { size, signed }, Shape::Float { size: fs }) => {
                write_int(dp, size, f64_to_int_bits(read_float(sp, fs), size, signed))
            }
            (Shape::Int { size, signed }, Shape::Complex { part }) => {
                write_int(dp, size, f64_to_int_bits(read_float(sp, part), size, signed))
            }
            (Shape::Int { size, .. }, Shape::Pointer(_)) if cast => {
                write_int(dp, size, read_int(sp, ptr_size(), false))
            }
            (Shape::Int { size, .. }, Shape::Array(..)) if cast => write_int(dp, size, sp as usize as u64),

            // 16- and 32-byte integers (mode(TI), mode(OI)) as LuaJIT converts them: integer
            // cdata and bools extend to them, they truncate to integers and are true as bools
            // when any bit is set, they copy among themselves (extended or truncated); Lua
            // numbers, floats and pointers are refused.
            (Shape::WideInt { size, .. }, Shape::Bool) => write_wide(dp, size, u64::from(*sp), false),
            (Shape::WideInt { size, .. }, Shape::Int { size: ss, signed }) if fl & flags::FROM_LUA == 0 => {
                write_wide(dp, size, read_int(sp, ss, signed), signed)
            }
            (Shape::WideInt { size, .. }, Shape::WideInt { size: ss, signed }) => {
                let top = *sp.add(usize::from(ss) - 1);
                let fill = if signed && top & 0x80 != 0 { 0xff } else { 0 };
                std::ptr::copy(sp, dp, usize::from(size.min(ss)));
                if size > ss {
                    std::ptr::write_bytes(dp.add(usize::from(ss)), fill, usize::from(size - ss));
                }
            }
            (Shape::Int { size, .. }, Shape::WideInt { .. }) => write_int(dp, size, read_int(sp, 8, false)),
            (Shape::Bool, Shape::WideInt { size, .. }) => {
                *dp = std::slice::from_raw_parts(sp, usize::from(size)).iter().any(|&b| b != 0) as u8
            }

            (Shape::Float { size }, Shape::Bool) => write_float(dp, size, *sp as f64),
            (Shape::Float { size }, Shape::Int { size: ss, signed }) => {
                write_float(dp, size, int_to_f64(read_int(sp, ss, signed), ss, signed))
            }
            (Shape::Float { size }, Shape::Float { size: ss }) => write_float(dp, size, read_float(sp, ss)),
            (Shape::Float { size }, Shape::Complex { part }) => write_float(dp, size, read_float(sp, part)),

            // A bool is a number only to integer and floating-point types: complex numbers
            // and pointers refuse it (lj_cconv.c has no CCX(C, B) or CCX(P, B)).
            (Shape::Complex { part }, Shape::Int { size: ss, signed }) => {
                write_float(dp, part, int_to_f64(read_int(sp, ss, signed), ss, signed));
                write_float(dp.add(part as usize), part, 0.0);
            }
            (Shape::Complex { part }, Shape::Float { size: ss }) => {
                write_float(dp, part, read_float(sp, ss));
                write_float(dp.add(part as usize), part, 0.0);
            }
            (Shape::Complex { part }, Shape::Complex { part: sparts }) => {
                write_float(dp, part, read_float(sp, sparts));
                write_float(dp.add(part as usize), part, read_float(sp.add(sparts as usize), sparts));
            }

            (Shape::Pointer(_), Shape::Int { size, signed }) if cast => {
                write_int(dp, ptr_size(), read_int(sp, size, signed))
            }
            (Shape::Pointer(_), Shape::WideInt { .. }) if cast => write_int(dp, ptr_size(), read_int(sp, 8, false)),
            (Shape::Pointer(_), Shape::Float { size }) if cast && fl & flags::FROM_LUA != 0 => {
                // The signed conversion: x64 pointers have 47 bits (lj_cconv.c).
                write_int(dp, ptr_size(), f64_to_i64(read_float(sp, size)) as u64)
            }
            (Shape::Pointer(_), Shape::Pointer(_) | Shape::Func) => {
                if !compatible_ptr(types, d, s.ty, fl) {
                    return bad;
                }
                write_int(dp, ptr_size(), read_int(sp, ptr_size(), false))
            }
            (Shape::Pointer(_), Shape::Array(..) | Shape::Record) => {
                if !compatible_ptr(types, d, s.ty, fl) {
                    return bad;
                }
                write_int(dp, ptr_size(), sp as usize as u64)
            }

            (Shape::Array(_, len), Shape::Array(..)) => {
                let dsize = types.size_of(d.id).ok();
                if cast
                    || len == ArrayLen::Variable
                    || dsize.is_none()
                    || dsize != types.size_of(s.ty.id).ok()
                    || !compatible_ptr(types, d, s.ty, fl)
                {
                    return bad;
                }
                std::ptr::copy(sp, dp, dsize.unwrap_or(0) as usize);
            }
            (Shape::Record, Shape::Record) => {
                if cast || d.id != s.ty.id {
                    return bad;
                }
                let n = types.size_of(d.id).unwrap_or(0) as usize;
                std::ptr::copy(sp, dp, n);
            }
            _ => return bad,
        }
    }
    Ok(())
}

// ---- Lua to C -----------------------------------------------------------------------------

/// Converts the Lua value at `idx` to a C value of type `d`, written at `dp` (LuaJIT's
/// `lj_cconv_ct_tv`). Tables initialise arrays and records; strings fill char arrays, name
/// enum constants or pass as `const char *`; `nil` is NULL; userdata pass their address.
///
/// On Lua 5.3+, an integer converts exactly when it has no exact double (beyond 2^53), and
/// as the double LuaJIT would see otherwise, so that results match LuaJIT's where LuaJIT has
/// them.
///
/// The destination's extent is unknown ([`UNKNOWN_ROOM`]): for an array of unknown size, see
/// [`lua_to_c_within`].
///
/// # Safety
/// `dp` must have room for a `d`; `idx` a valid absolute index; `st` the state of `l`.
/// Never raises: errors are returned.
pub unsafe fn lua_to_c(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    dp: *mut u8,
    fl: u8,
) -> Result<(), ConvError> {
    // SAFETY: the contract of `lua_to_c` (valid-L, live-state, `dp` with room for a `d`) is
    // `to_c`'s with an unknown room.
    unsafe { to_c(l, st, idx, d, dp, fl, At::top(UNKNOWN_ROOM)) }
}

/// [`lua_to_c`] into a destination with `room` bytes: what a `T[?]` or `T[]` written whole
/// (a variable-length or flexible member) may fill, tables and strings alike.
///
/// # Safety
/// As [`lua_to_c`]; `dp` has `room` writable bytes (or `room` is [`UNKNOWN_ROOM`]).
pub unsafe fn lua_to_c_within(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    dp: *mut u8,
    fl: u8,
    room: u64,
) -> Result<(), ConvError> {
    // SAFETY: the contract of `lua_to_c` with `dp` writable for `room` bytes is `to_c`'s with that
    // room.
    unsafe { to_c(l, st, idx, d, dp, fl, At::top(room)) }
}

/// [`lua_to_c`] at `at`: a table initialises an array or a record here, any other value
/// converts in [`value_to_c`]. Nested initialisers recurse through this small frame and the
/// table walks only: under 600 bytes of C stack a level (was ~900 with the conversions
/// inlined here), so [`MAX_INIT_DEPTH`] levels run on a 256 KiB thread (tests/init_bounds.rs).
///
/// # Safety
/// As [`lua_to_c_within`] with `at.room`.
unsafe fn to_c(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    dp: *mut u8,
    fl: u8,
    at: At,
) -> Result<(), ConvError> {
    // SAFETY: valid-L and live-state `st` for the stack reads; `dp` writable for `at.room` bytes
    // (caller's contract).
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
            return value_to_c(l, st, idx, d, dp, fl, at);
        }
        let types = &(*st).types;
        match shape(types, d.id) {
            Shape::Array(..) | Shape::Complex { .. } => table_to_array(l, st, idx, d, dp, at),
            Shape::Record => {
                let size = types.size_of(d.id).unwrap_or(0) as usize;
                std::ptr::write_bytes(dp, 0, size);
                table_to_record(l, st, idx, d.id, dp, at)
            }
            _ => Err(ConvError::Bad { from: Origin::Lua(ffi::LUA_TTABLE), to: d }),
        }
    }
}

/// [`to_c`] of anything but a table.
///
/// # Safety
/// As [`to_c`].
#[inline(never)]
unsafe fn value_to_c(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    dp: *mut u8,
    fl: u8,
    at: At,
) -> Result<(), ConvError> {
    // SAFETY (whole body): stack reads on a valid state; memory as the caller guarantees.
    unsafe {
        let ty = ffi::lua_type(l, idx);
        let types = &(*st).types;
        let ds = shape(types, d.id);
        let origin = Origin::Lua(ty);
        let from_lua = fl | flags::FROM_LUA;
        match ty {
            ffi::LUA_TNUMBER => {
                if HAS_INTEGERS && ffi::lua_isinteger(l, idx) != 0 {
                    let v = ffi::lua_tointegerx(l, idx, std::ptr::null_mut()) as i64;
                    // A Lua integer converts as C converts an `int64_t`; through the double
                    // only where that gives the same value.
                    if !int_converts_as_double(v, ds) {
                        let src = Src {
                            ty: QualType::plain(types.int_of_size(8, true).unwrap_or(TypeId(0))),
                            shape: Shape::Int { size: 8, signed: true },
                            p: &v as *const i64 as *const u8,
                            origin,
                        };
                        return conv_ct_ct(types, d, ds, dp, src, from_lua);
                    }
                }
                let n = ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
                let src = Src {
                    ty: QualType::plain(types.float(abi_model::FloatKind::Double)),
                    shape: Shape::Float { size: 8 },
                    p: &n as *const f64 as *const u8,
                    origin,
                };
                conv_ct_ct(types, d, ds, dp, src, from_lua)
            }
            ffi::LUA_TBOOLEAN => {
                let b = ffi::lua_toboolean(l, idx) as u8;
                // LuaJIT names a boolean source by its C type, 'bool'.
                let bool_ty = QualType::plain(types.bool());
                let src = Src { ty: bool_ty, shape: Shape::Bool, p: &b, origin: Origin::C(bool_ty) };
                conv_ct_ct(types, d, ds, dp, src, fl)
            }
            ffi::LUA_TNIL | ffi::LUA_TLIGHTUSERDATA => {
                let p = ffi::lua_touserdata(l, idx) as usize;
                let vp = (*st).void_ptr();
                let src = Src {
                    ty: QualType::plain(vp),
                    shape: Shape::Pointer(QualType::plain(types.void())),
                    p: &p as *const usize as *const u8,
                    origin,
                };
                conv_ct_ct(types, d, ds, dp, src, fl)
            }
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let s = ffi::lua_tolstring(l, idx, &mut len) as *const u8;
                if let CType::Enum(e) = types.get(d.id) {
                    let name = std::slice::from_raw_parts(s, len);
                    let found = e.constants.iter().find(|(n, _)| n.as_bytes() == name);
                    return match found {
                        Some((_, v)) => {
                            if let Shape::Int { size, .. } = ds {
                                write_int(dp, size, *v as u64);
                            }
                            Ok(())
                        }
                        None => Err(ConvError::Bad { from: origin, to: d }),
                    };
                }
                if let Shape::Array(elem, _) = ds {
                    if !matches!(shape(types, elem.id), Shape::Int { size: 1, .. }) {
                        return Err(ConvError::Bad { from: origin, to: d });
                    }
                    // A string fills a char array, NUL included when it fits, truncated to
                    // the array (without a NUL, as the reference LuaJIT 2.1) otherwise. An
                    // array of unknown or zero size (`char[?]`, `char d[]`, `char d[0]`) has
                    // the room there is.
                    let cap = types.size_of(d.id).ok().filter(|&n| n > 0).unwrap_or(at.room);
                    let n = cap.min(len as u64 + 1) as usize;
                    std::ptr::copy_nonoverlapping(s, dp, n);
                    return Ok(());
                }
                // Otherwise the string passes as a `const char []`.
                let src = Src {
                    ty: QualType::plain((*st).const_char_array()),
                    shape: Shape::Array(
                        QualType { id: types.int(abi_model::IntKind::Char), quals: Quals::CONST },
                        ArrayLen::Flexible,
                    ),
                    p: s,
                    origin,
                };
                conv_ct_ct(types, d, ds, dp, src, from_lua)
            }
            // A cdata, or a namespace function (a closure over its function cdata), converts as
            // that cdata.
            ffi::LUA_TUSERDATA | ffi::LUA_TFUNCTION => {
                let c = cdata::to_cdata(l, st, idx);
                if c.is_null() {
                    if ty == ffi::LUA_TFUNCTION {
                        return function_to_callback(l, st, idx, d, ds, dp, origin);
                    }
                    // Any other userdata is a `void *` to its block, except an io file
                    // handle: its FILE * (as LuaJIT passes its own file handles).
                    let p = match io_file(l, idx) {
                        None => ffi::lua_touserdata(l, idx) as usize,
                        Some(f) if f.is_null() => return Err(ConvError::ClosedFile),
                        Some(f) => f as usize,
                    };
                    let src = Src {
                        ty: QualType::plain((*st).void_ptr()),
                        shape: Shape::Pointer(QualType::plain(types.void())),
                        p: &p as *const usize as *const u8,
                        origin,
                    };
                    return conv_ct_ct(types, d, ds, dp, src, fl);
                }
                if c.form() == Form::CType {
                    return Err(ConvError::Bad { from: Origin::CTypeObject, to: d });
                }
                let sty = enum_as_int(types, cdata::type_of(c));
                let src = Src { ty: sty, shape: shape(types, sty.id), p: cdata::bytes(c), origin: Origin::C(sty) };
                conv_ct_ct(types, d, ds, dp, src, fl)
            }
            _ => Err(ConvError::Bad { from: origin, to: d }),
        }
    }
}

/// The `FILE *` of the userdata at `idx` if it is an `io` library file handle (its metatable
/// is the registry's `"FILE*"`, `LUA_FILEHANDLE`): null once the handle is closed. `None`
/// for any other userdata.
///
/// The handle's block is Lua 5.1's `FILE **` (NULL once closed) or, from 5.2 on, a
/// `luaL_Stream { FILE *f; lua_CFunction closef; }` (`closef` NULL once closed).
///
/// # Safety
/// `l` valid with 2 free slots; the value at `idx` is a full userdata.
unsafe fn io_file(l: *mut ffi::lua_State, idx: c_int) -> Option<*mut std::os::raw::c_void> {
    type Handle = [*mut std::os::raw::c_void; if cfg!(feature = "lua51") { 1 } else { 2 }];
    // SAFETY: valid-L: pushes and pops within its free slots; the block is read only when the
    // userdata is a file handle of its size.
    unsafe {
        if ffi::lua_getmetatable(l, idx) == 0 {
            return None;
        }
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"FILE*".as_ptr());
        let is_file = ffi::lua_rawequal(l, -1, -2) != 0;
        ffi::lua_pop(l, 2);
        if !is_file || ffi::lua_rawlen(l, idx) < std::mem::size_of::<Handle>() {
            return None;
        }
        let h = (ffi::lua_touserdata(l, idx) as *const Handle).read_unaligned();
        let open = h.iter().all(|p| !p.is_null());
        Some(if open { h[0] } else { std::ptr::null_mut() })
    }
}

/// How a Lua function becomes a C function pointer where one is expected: the native layer,
/// above this one, makes a callback of function type `fn_ty` running the function at `idx`
/// (an absolute index) and returns its address. It installs its maker with
/// [`set_callback_maker`] when it makes a state, so conversions need not import it.
///
/// # Safety
/// `l` valid with 2 free slots; `st` its state, not borrowed; `idx` an absolute index holding
/// a function.
pub type MakeCallback = unsafe fn(*mut ffi::lua_State, *mut FfiState, c_int, TypeId) -> Result<usize, NoCallback>;

/// Why a [`MakeCallback`] made no callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCallback {
    /// Every callback slot is taken.
    TooMany,
    /// No thunk for this function type (no backend, a variadic type, a refused signature).
    Unsupported,
    /// The signature is fine but its thunk's code could not be built.
    Code(CodeFailure),
}

/// What failed building the code of a stub or thunk though its signature is fine, as plain
/// data (it owns nothing, so it may be alive when a Lua error is raised). `native` makes it
/// (`StubError::code_failure`); it lives here so a conversion can report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeFailure {
    /// The code arena could not provide executable memory.
    Arena(crate::os::arena::ArenaError),
    /// The backend could not lower the program (a bug); the step it names, if any.
    Backend(Option<abi_model::lua::steps::StepKind>),
    /// The backend assembled different lengths at two addresses (a bug).
    LengthDependsOnAddress,
    /// The backend's frame description cannot be given to the unwinder (a bug).
    Unwind,
}

impl std::fmt::Display for CodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodeFailure::Arena(e) => write!(f, "cannot allocate executable memory: {e}"),
            CodeFailure::Backend(Some(step)) => write!(f, "backend cannot lower step {step} (bug)"),
            CodeFailure::Backend(None) => f.write_str("backend cannot generate the code (bug)"),
            CodeFailure::LengthDependsOnAddress => f.write_str("backend bug: code length depends on its address"),
            CodeFailure::Unwind => f.write_str("backend bug: its frame cannot be described to the unwinder"),
        }
    }
}

/// The callback maker, the same for every state (it is code, not data).
static MAKE_CALLBACK: std::sync::OnceLock<MakeCallback> = std::sync::OnceLock::new();

/// Installs the callback maker ([`MakeCallback`]); the first one installed stays.
pub fn set_callback_maker(make: MakeCallback) {
    let _ = MAKE_CALLBACK.set(make);
}

/// Any Lua function other than a namespace function becomes a callback where a function
/// pointer is expected (through the [`MakeCallback`] the native layer installed).
///
/// # Safety
/// As [`lua_to_c`]; the value at `idx` is a Lua function.
unsafe fn function_to_callback(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    ds: Shape,
    dp: *mut u8,
    origin: Origin,
) -> Result<(), ConvError> {
    let Shape::Pointer(to) = ds else { return Err(ConvError::Bad { from: origin, to: d }) };
    // SAFETY: the state outlives this call; the borrow ends before the callback is made.
    if !matches!(unsafe { &(*st).types }.get(to.id), CType::Function(_)) {
        return Err(ConvError::Bad { from: origin, to: d });
    }
    let Some(make) = MAKE_CALLBACK.get() else { return Err(ConvError::Bad { from: origin, to: d }) };
    // SAFETY: valid-L, live-state `st` and a Lua function at `idx` (caller's contract), which
    // the callback maker needs; no borrow of the state is alive (it takes the state mutably).
    match unsafe { make(l, st, idx, to.id) } {
        Ok(addr) => {
            // SAFETY: dp holds a pointer.
            unsafe { write_int(dp, ptr_size(), addr as u64) };
            Ok(())
        }
        Err(NoCallback::TooMany) => Err(ConvError::TooManyCallbacks),
        Err(NoCallback::Code(failure)) => Err(ConvError::CallbackCode { to: d, failure }),
        // LuaJIT's words for a signature it cannot make a callback of.
        Err(NoCallback::Unsupported) => Err(ConvError::Bad { from: origin, to: d }),
    }
}

/// A table initialises an array (LuaJIT's `cconv_array_tab`): elements from index 0 (or 1
/// when there is no [0]) up to the first nil; a single element is replicated over an array of
/// known size, otherwise the rest is zero. An array of unknown size (a VLA being created, a
/// `d[?]` or `d[]` member) takes at most the room at `at`.
///
/// # Safety
/// As [`to_c`].
#[inline(never)]
unsafe fn table_to_array(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    d: QualType,
    dp: *mut u8,
    at: At,
) -> Result<(), ConvError> {
    // SAFETY: valid-L: only reads of existing stack slots; writes stay within `size`.
    unsafe {
        enter_table(l, at)?;
        let types = &(*st).types;
        let elem = child(types, d);
        let esize = types.size_of(elem.id).unwrap_or(0);
        let known = types.size_of(d.id).ok();
        let size = known.unwrap_or(at.room);
        let mut ofs = 0u64;
        let mut i: ffi::lua_Integer = 0;
        loop {
            ffi::lua_rawgeti(l, idx, i);
            if ffi::lua_isnil(l, -1) != 0 {
                ffi::lua_pop(l, 1);
                if i == 0 {
                    i = 1;
                    continue;
                }
                break;
            }
            if ofs >= size || esize == 0 {
                ffi::lua_pop(l, 1);
                return Err(ConvError::InitOverflow(d));
            }
            let top = ffi::lua_gettop(l);
            let r = to_c(l, st, top, elem, dp.add(ofs as usize), 0, At { room: size, ..at }.inner(ofs));
            ffi::lua_pop(l, 1);
            r?;
            ofs += esize;
            i += 1;
        }
        if let Some(size) = known {
            fill_rest(dp, ofs, esize, size);
        }
        Ok(())
    }
}

/// Replicates a single initialised element over the array, or zeroes what is left.
unsafe fn fill_rest(dp: *mut u8, ofs: u64, esize: u64, size: u64) {
    // SAFETY: the array has `size` bytes at dp.
    unsafe {
        if ofs == esize && esize > 0 {
            let mut o = ofs;
            while o + esize <= size {
                std::ptr::copy_nonoverlapping(dp, dp.add(o as usize), esize as usize);
                o += esize;
            }
        } else if ofs < size {
            std::ptr::write_bytes(dp.add(ofs as usize), 0, (size - ofs) as usize);
        }
    }
}

/// Whether a table has keys other than 1..n (LuaJIT checks for a hash part): such tables
/// initialise records by member name, others by position.
unsafe fn has_named_keys(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: valid-L: a `lua_next` traversal of the table, within its free slots.
    unsafe {
        let n = ffi::lua_rawlen(l, idx) as ffi::lua_Integer;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            ffi::lua_pop(l, 1);
            let positional = ffi::lua_type(l, -1) == ffi::LUA_TNUMBER && {
                let k = ffi::lua_tonumberx(l, -1, std::ptr::null_mut());
                k >= 1.0 && k <= n as f64 && k.fract() == 0.0
            };
            if !positional {
                ffi::lua_pop(l, 1);
                return true;
            }
        }
        false
    }
}

/// A member to initialise: its type, byte offset and bit position, and where its name is
/// (field `field` of record `rec`; [`push_member_name`]).
struct InitMember {
    ty: QualType,
    offset: u64,
    bits: Option<abi_model::BitPos>,
    rec: TypeId,
    field: usize,
}

/// What a member visit did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The member was initialised (a union stops after its first initialised member).
    Set,
    /// The member was left alone.
    Skip,
    /// No more initializers.
    Stop,
}

/// One member of a record, as [`walk_members`] reads it from the type table.
enum MemberStep {
    /// A named member.
    Named(InitMember),
    /// An anonymous struct/union member at this offset: its members count as the record's.
    Anonymous(TypeId, u64),
    /// An unnamed bit-field: nothing to initialise.
    Unnamed,
    /// Past the last member (or the record has no body).
    End,
}

/// Member `field` of record `rec` (whose offset is `base`).
fn member_step(types: &TypeTable, rec: TypeId, field: usize, base: u64) -> MemberStep {
    let Some(body) = types.record_body(rec) else { return MemberStep::End };
    let (Some(f), Some(fl)) = (body.fields.get(field), body.layout.fields.get(field)) else { return MemberStep::End };
    match &f.name {
        Some(_) => {
            let bits = fl.bits.map(|b| abi_model::BitPos { bit_offset: b.bit_offset + base * 8, width: b.width });
            MemberStep::Named(InitMember { ty: f.ty, offset: base + fl.offset, bits, rec, field })
        }
        None if f.bit_width.is_none() && matches!(types.get(f.ty.id), CType::Record(_)) => {
            MemberStep::Anonymous(f.ty.id, base + fl.offset)
        }
        None => MemberStep::Unnamed,
    }
}

/// Walks the named members of a record in initialisation order, anonymous struct/union
/// members included in place (LuaJIT's `cconv_substruct_tab` / `cconv_substruct_init`).
///
/// The type table is borrowed only to read one member, never across a visit: a visit
/// converts a Lua value, and converting a Lua function makes a callback, which takes the
/// whole state mutably (new pointer types, descriptors, callback slots).
///
/// # Safety
/// `st` is a valid state, not borrowed mutably while the walk runs (visits may).
unsafe fn walk_members(
    st: *const FfiState,
    rec: TypeId,
    base: u64,
    visit: &mut dyn FnMut(&InitMember) -> Result<Flow, ConvError>,
) -> Result<Flow, ConvError> {
    // SAFETY: `st` is valid (the caller); each borrow of its type table ends in its statement.
    let is_union = unsafe { matches!((*st).types.get(rec), CType::Record(r) if r.kind == RecordKind::Union) };
    for field in 0.. {
        // SAFETY: live-state: `st` is valid and not borrowed mutably during the walk (this
        // function's contract); the shared borrow of its type table ends when `member_step`
        // returns, before `visit` (which may take the state mutably) runs.
        let step = unsafe { member_step(&(*st).types, rec, field, base) };
        match step {
            MemberStep::Named(m) => match visit(&m)? {
                Flow::Stop => return Ok(Flow::Stop),
                Flow::Set if is_union => break,
                _ => {}
            },
            // SAFETY: as for this walk.
            MemberStep::Anonymous(inner, at) => {
                if unsafe { walk_members(st, inner, at, visit)? } == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            MemberStep::Unnamed => {}
            MemberStep::End => break,
        }
    }
    Ok(Flow::Set)
}

/// Pushes the name of member `m` (a string). May raise a memory error, with only a borrow of
/// the type table alive: Lua copies the name before it collects garbage.
///
/// # Safety
/// `l` valid with a free slot; `st` its state; `m` from [`walk_members`] on it.
unsafe fn push_member_name(l: *mut ffi::lua_State, st: *const FfiState, m: &InitMember) {
    // SAFETY: valid-L with a free slot and live-state `st` (this function's contract): the
    // push uses that slot and Lua copies `name`, which borrows `st`'s type table; `m` comes
    // from `walk_members` on `st`, whose `member_step` makes a `Named` member only of a field
    // with a name in a record with a body. raise-clean: a memory error in the push leaves
    // only that borrow alive, which owns nothing.
    unsafe {
        let body = (*st).types.record_body(m.rec).expect("a walked record has a body");
        let name = body.fields[m.field].name.as_deref().unwrap_or_default();
        ffi::lua_pushlstring(l, name.as_ptr() as *const _, name.len());
    }
}

/// A table initialises a record (LuaJIT's `cconv_struct_tab`): by member name when the table
/// has non-positional keys, else by position; the record is already zeroed.
///
/// # Safety
/// As [`to_c`].
#[inline(never)]
unsafe fn table_to_record(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    rec: TypeId,
    dp: *mut u8,
    at: At,
) -> Result<(), ConvError> {
    // SAFETY: valid-L: pushes and pops within its free slots; member offsets lie within the record.
    unsafe {
        enter_table(l, at)?;
        let named = has_named_keys(l, idx);
        let mut pos: ffi::lua_Integer = 1;
        let mut visit = |m: &InitMember| -> Result<Flow, ConvError> {
            if named {
                push_member_name(l, st, m);
                ffi::lua_rawget(l, idx);
                if ffi::lua_isnil(l, -1) != 0 {
                    ffi::lua_pop(l, 1);
                    return Ok(Flow::Skip);
                }
            } else {
                ffi::lua_rawgeti(l, idx, pos);
                if ffi::lua_isnil(l, -1) != 0 {
                    ffi::lua_pop(l, 1);
                    return Ok(Flow::Stop);
                }
                pos += 1;
            }
            let top = ffi::lua_gettop(l);
            let r = store_member(l, st, top, m, dp, at);
            ffi::lua_pop(l, 1);
            r.map(|_| Flow::Set)
        };
        walk_members(st, rec, 0, &mut visit).map(|_| ())
    }
}

/// Stores the Lua value at `idx` into a member of the record at `record` (which is at `at`):
/// plain, or a bit-field (whose bits count from `record`).
///
/// # Safety
/// As [`to_c`] for the record.
unsafe fn store_member(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    m: &InitMember,
    record: *mut u8,
    at: At,
) -> Result<(), ConvError> {
    // SAFETY: `record` has room for the record containing `m` (caller's contract), so the member's
    // bytes, or its bit-field's unit, lie inside it; valid-L and live-state for the value at `idx`.
    unsafe {
        match m.bits {
            Some(b) => store_bitfield(l, st, idx, m.ty, b, record),
            None => to_c(l, st, idx, m.ty, record.add(m.offset as usize), 0, at.inner(m.offset)),
        }
    }
}

/// Stores into a bit-field (LuaJIT's `lj_cconv_bf_tv`): the value converts to the field's
/// integer type (or bool), then its low `width` bits are merged in.
///
/// # Safety
/// `record` points to the record holding the bit-field.
pub unsafe fn store_bitfield(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    ty: QualType,
    b: abi_model::BitPos,
    record: *mut u8,
) -> Result<(), ConvError> {
    // SAFETY: the bit-field's bytes lie within the record.
    unsafe {
        let types = &(*st).types;
        let mut v = [0u8; 8];
        let target = match shape(types, ty.id) {
            Shape::Bool => QualType::plain(types.bool()),
            Shape::Int { size, signed } => {
                QualType::plain(types.int_of_size(size.max(4) as u32, signed).unwrap_or(ty.id))
            }
            _ => ty,
        };
        lua_to_c(l, st, idx, target, v.as_mut_ptr(), 0)?;
        let val = u64::from_le_bytes(v);
        let width = b.width as u64;
        if width == 0 {
            return Ok(());
        }
        let mask: u128 = if width >= 64 { u64::MAX as u128 } else { (1u128 << width) - 1 };
        let first = (b.bit_offset / 8) as usize;
        let shift = b.bit_offset % 8;
        let nbytes = (shift + width).div_ceil(8) as usize;
        let p = record.add(first);
        let mut window = [0u8; 16];
        std::ptr::copy_nonoverlapping(p, window.as_mut_ptr(), nbytes);
        let mut w = u128::from_le_bytes(window);
        w = (w & !(mask << shift)) | (((val as u128) & mask) << shift);
        std::ptr::copy_nonoverlapping(w.to_le_bytes().as_ptr(), p, nbytes);
        Ok(())
    }
}

/// Pushes the value of a bit-field (LuaJIT's `lj_cconv_tv_bf`): a number, sign-extended
/// for signed types, or a boolean.
///
/// # Safety
/// `record` points to the record holding the bit-field.
pub unsafe fn push_bitfield(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    ty: QualType,
    b: abi_model::BitPos,
    record: *const u8,
) {
    // SAFETY: the bit-field's bytes lie within the record.
    unsafe {
        let width = b.width as u64;
        let first = (b.bit_offset / 8) as usize;
        let shift = b.bit_offset % 8;
        let nbytes = (shift + width).div_ceil(8) as usize;
        let mut window = [0u8; 16];
        std::ptr::copy_nonoverlapping(record.add(first), window.as_mut_ptr(), nbytes);
        let w = u128::from_le_bytes(window) >> shift;
        let mask: u128 = if width >= 64 { u64::MAX as u128 } else { (1u128 << width) - 1 };
        let raw = (w & mask) as u64;
        match shape(&(*st).types, ty.id) {
            Shape::Bool | Shape::WideBool { .. } => ffi::lua_pushboolean(l, (raw != 0) as c_int),
            Shape::Int { signed, .. } => {
                let v = if signed && width > 0 && width < 64 && raw >> (width - 1) & 1 == 1 {
                    raw | (u64::MAX << width)
                } else {
                    raw
                };
                push_int(l, st, v, if width >= 64 { 8 } else { 4 }, signed || width < 32);
            }
            _ => ffi::lua_pushnil(l),
        }
    }
}

/// Initialises a new object from the `count` Lua values starting at `first` (LuaJIT's
/// `lj_cconv_ct_init`, what `ffi.new` and calling a ctype do). `size` is the object's size
/// (for VLAs the actual one). The memory is zeroed already.
///
/// # Safety
/// `dp` has `size` bytes; the stack values exist.
pub unsafe fn init(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    d: QualType,
    dp: *mut u8,
    size: u64,
    first: c_int,
    count: c_int,
) -> Result<(), ConvError> {
    // SAFETY: `dp` has `size` zeroed bytes and the `count` stack values from `first` exist
    // (caller's contract); valid-L and live-state `st`.
    unsafe {
        if count == 0 {
            return Ok(());
        }
        let types = &(*st).types;
        let ds = shape(types, d.id);
        // The object has `size` bytes: what a VLA, a VLS's last member or a flexible member
        // may fill.
        let at = At::top(size);
        if count == 1 && !multi_init(l, st, ds, d, first) {
            return to_c(l, st, first, d, dp, 0, at);
        }
        match ds {
            // A complex number initialises like an array of its two parts.
            Shape::Array(..) | Shape::Complex { .. } => {
                let elem = child(types, d);
                let esize = types.size_of(elem.id).unwrap_or(0);
                if count as u64 * esize > size {
                    return Err(ConvError::InitOverflow(d));
                }
                let mut ofs = 0u64;
                for i in 0..count {
                    to_c(l, st, first + i, elem, dp.add(ofs as usize), 0, at.inner(ofs))?;
                    ofs += esize;
                }
                fill_rest(dp, ofs, esize, size);
                Ok(())
            }
            Shape::Record => {
                let mut i = 0;
                let mut visit = |m: &InitMember| -> Result<Flow, ConvError> {
                    if i >= count {
                        return Ok(Flow::Stop);
                    }
                    store_member(l, st, first + i, m, dp, at)?;
                    i += 1;
                    Ok(Flow::Set)
                };
                walk_members(st, d.id, 0, &mut visit)?;
                if i < count {
                    return Err(ConvError::InitOverflow(d));
                }
                Ok(())
            }
            _ => Err(ConvError::InitOverflow(d)),
        }
    }
}

/// LuaJIT's `lj_cconv_multi_init`: a single initializer of an aggregate is an element (or
/// first member) unless it is a table, a string for a non-record, or a cdata of the same
/// type (as the reference LuaJIT 2.1 decides).
unsafe fn multi_init(l: *mut ffi::lua_State, st: *mut FfiState, ds: Shape, d: QualType, idx: c_int) -> bool {
    if !matches!(ds, Shape::Array(..) | Shape::Record) {
        return false;
    }
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TTABLE => false,
            ffi::LUA_TSTRING => ds == Shape::Record,
            ffi::LUA_TUSERDATA => {
                let c = cdata::to_cdata(l, st, idx);
                if c.is_null() || c.form() == Form::CType {
                    return true;
                }
                cdata::type_of(c).id != d.id
            }
            _ => true,
        }
    }
}

// ---- C to Lua -----------------------------------------------------------------------------

/// Pushes a C integer: on Lua 5.3+ a Lua integer when exact (a `uint64_t` above
/// `math.maxinteger` stays a boxed cdata); on 5.1/5.2 a number up to 32 bits and a boxed
/// `int64_t`/`uint64_t` cdata for 64-bit types, as LuaJIT does.
///
/// # Safety
/// `l` valid with 3 free slots.
pub unsafe fn push_int(l: *mut ffi::lua_State, st: *mut FfiState, v: u64, size: u8, signed: bool) {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        if size < 8 {
            // Values below 64 bits arrive sign- or zero-extended: exact either way.
            if HAS_INTEGERS {
                ffi::lua_pushinteger(l, v as i64 as ffi::lua_Integer);
            } else {
                ffi::lua_pushnumber(l, v as i64 as f64);
            }
            return;
        }
        if HAS_INTEGERS && (signed || v <= i64::MAX as u64) {
            ffi::lua_pushinteger(l, v as i64 as ffi::lua_Integer);
            return;
        }
        push_boxed_int64(l, st, v, signed);
    }
}

/// Pushes a boxed `int64_t` / `uint64_t` cdata.
///
/// # Safety
/// `l` valid with 3 free slots.
pub unsafe fn push_boxed_int64(l: *mut ffi::lua_State, st: *mut FfiState, v: u64, signed: bool) {
    // SAFETY: valid-L with 3 free slots (caller's contract); the descriptor is the state's.
    unsafe {
        let desc = (*st).desc(boxed_int64_type(&(*st).types, signed));
        cdata::push_scalar(l, st, desc, v, 8);
    }
}

/// The type of a boxed 64-bit integer: `int64_t` or `uint64_t` (`long`/`unsigned long` where
/// they have 64 bits, else `long long`/`unsigned long long`).
pub fn boxed_int64_type(types: &abi_model::TypeTable, signed: bool) -> QualType {
    QualType::plain(types.int_of_size(8, signed).unwrap_or(TypeId(0)))
}

/// Pushes a pointer value read from C (a call result, a callback argument, a field, element
/// or variable read): `nil` when it is NULL, so that LuaJIT's `if p == nil` works on PUC
/// Lua, whose `==` never asks a userdata's `__eq` about `nil`; otherwise a pointer cdata of
/// the pointer type `desc`. Pointers Lua makes (`ffi.new`, `ffi.cast`, `ffi.NULL`) stay
/// cdata, NULL or not.
///
/// # Safety
/// `l` valid with 3 free slots; `desc` a live descriptor of a pointer type of `l`'s state.
pub unsafe fn push_pointer(l: *mut ffi::lua_State, desc: *const CTypeDesc, p: usize) {
    // SAFETY: valid-L with 3 free slots and a live pointer-type `desc` (caller's contract); the
    // new cdata's payload holds one pointer.
    unsafe {
        if p == 0 {
            ffi::lua_pushnil(l);
            return;
        }
        cdata::push_scalar(l, (*desc).state, desc, p as u64, std::mem::size_of::<usize>());
    }
}

/// Pushes the C value of type `s` at `sp` as a Lua value (LuaJIT's `lj_cconv_tv_ct` /
/// `lj_cdata_get`): numbers and booleans for scalars (64-bit integers per [`push_int`]),
/// a pointer per [`push_pointer`] (NULL is `nil`), a copy for complex numbers and 16- or
/// 32-byte integers, a reference for arrays and records — anchored to
/// the value at stack index `anchor` (0: none, e.g. memory reached through a pointer).
///
/// # Safety
/// `sp` points to a valid `s`; `l` valid with 4 free slots.
pub unsafe fn c_to_lua(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    s: QualType,
    sp: *mut u8,
    anchor: c_int,
) -> Result<(), ConvError> {
    // SAFETY: `sp` points to a valid `s` and `l` is a valid-L with 4 free slots (caller's
    // contract); live-state `st` for the types.
    unsafe {
        let sh = shape(&(*st).types, s.id);
        match sh {
            Shape::Bool | Shape::WideBool { .. } => {
                let n = sh.bool_bytes().unwrap_or(1);
                ffi::lua_pushboolean(l, (read_int(sp, n, false) != 0) as c_int)
            }
            Shape::Int { size, signed } => push_int(l, st, read_int(sp, size, signed), size, signed),
            Shape::Float { size } => ffi::lua_pushnumber(l, read_float(sp, size)),
            Shape::Pointer(_) => {
                let w = std::mem::size_of::<usize>() as u8;
                push_pointer(l, (*st).desc(s), read_int(sp, w, false) as usize);
            }
            // Read as the 4-byte pointer it is, as LuaJIT keeps the type (NULL is `nil`, as
            // for every pointer read from C).
            Shape::Ptr32(_) => {
                let p = read_int(sp, 4, false);
                if p == 0 {
                    ffi::lua_pushnil(l);
                } else {
                    cdata::push_scalar(l, st, (*st).desc(s), p, 4);
                }
            }
            Shape::Complex { .. } | Shape::WideInt { .. } => {
                let desc = (*st).desc(s);
                let n = (*desc).size.unwrap_or(0) as usize;
                let c = cdata::push_value(l, st, desc, n);
                std::ptr::copy_nonoverlapping(sp, cdata::bytes(c), n);
            }
            Shape::Array(..) | Shape::Record | Shape::Func => {
                let desc = (*st).desc(s);
                cdata::push_ref(l, st, desc, sp, anchor);
            }
            Shape::Void | Shape::Unsupported => {
                return Err(ConvError::Bad { from: Origin::C(s), to: s });
            }
        }
        Ok(())
    }
}

/// The member `name` of record `rec`: its type, byte offset and bits (anonymous members
/// searched), from abi-model's layout.
pub fn member(types: &TypeTable, rec: TypeId, name: &str) -> Option<(QualType, u64, Option<abi_model::BitPos>)> {
    find_member(types, rec, name).map(|m| (m.ty, m.offset, m.bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_to_int_follows_x86_truncation() {
        assert_eq!(f64_to_i32(3.9), 3);
        assert_eq!(f64_to_i32(-3.9), -3);
        assert_eq!(f64_to_i32(4294967295.0), i32::MIN);
        assert_eq!(f64_to_i32(f64::NAN), i32::MIN);
        assert_eq!(f64_to_int_bits(-1.0, 4, false) as u32, u32::MAX);
        assert_eq!(f64_to_int_bits(4294967301.0, 4, false) as u32, 5);
        assert_eq!(f64_to_int_bits(200.0, 1, true) as u8 as i8, -56);
    }

    #[test]
    fn lua_integers_take_the_double_path_only_where_it_agrees_with_c() {
        let edges = [
            0i64,
            1,
            -1,
            127,
            128,
            -129,
            255,
            256,
            65535,
            65536,
            -32769,
            i32::MAX as i64,
            i32::MAX as i64 + 1,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
        ];
        let values = edges.iter().copied().chain([
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            1 << 53,
            -(1 << 53),
            (1 << 53) - 1,
            123_456_789_012,
            -123_456_789_012,
            (1 << 53) + 1,
            i64::MIN,
            i64::MAX,
        ]);
        for v in values {
            for (size, signed) in
                [(1, true), (1, false), (2, true), (2, false), (4, true), (4, false), (8, true), (8, false)]
            {
                let low_bits = |bits: u64| if size == 8 { bits } else { bits & ((1u64 << (size * 8)) - 1) };
                if int_converts_as_double(v, Shape::Int { size, signed }) {
                    assert_eq!(
                        low_bits(v as u64),
                        low_bits(f64_to_int_bits(v as f64, size, signed)),
                        "{v} as {size} bytes, signed {signed}"
                    );
                }
            }
        }
        // C's conversion, not the double's, where they differ.
        let u64_shape = Shape::Int { size: 8, signed: false };
        assert!(!int_converts_as_double(-1, u64_shape), "-1 to uint64_t is 2^64 - 1, not 2^63");
        assert!(!int_converts_as_double((1 << 32) + 5, Shape::Int { size: 1, signed: false }));
        assert!(!int_converts_as_double((1 << 53) + 1, Shape::Float { size: 8 }));
        assert!(int_converts_as_double(-1, Shape::Int { size: 4, signed: false }));
    }

    #[test]
    fn double_to_uint64_matches_reference_luajit() {
        assert_eq!(f64_to_u64(-1.0), 1 << 63);
        assert_eq!(f64_to_u64(-0.5), 0);
        assert_eq!(f64_to_u64(1.5), 1);
        assert_eq!(f64_to_u64(18446744073709551616.0 + 8192.0), 8192);
        assert_eq!(f64_to_u64(9223372036854777856.0), 9223372036854777856);
        assert_eq!(f64_to_u64(f64::NAN), 1 << 63);
    }

    /// The walk over a record's members while each visit grows the type table (as a visit
    /// making a callback does, through `arg_desc`'s `pointer_to`): every member is still
    /// visited, in order, at its offset, with its name, and no borrow of the table is held
    /// across a visit (pure Rust: Miri checks the aliasing here, which it cannot through Lua).
    #[test]
    fn member_walk_survives_visits_that_grow_the_type_table() {
        let mut st = FfiState::new();
        let src = "struct w_in { int a; int b; };
                   struct w { int first; void (*f)(void); struct { int anon; double d; }; struct w_in inner; int last; };";
        abi_model::cdef::cdef(&mut st.types, &mut st.scope, src, &[]).unwrap();
        let rec =
            QualType::plain(abi_model::cdef::parse_type(&mut st.types, &mut st.scope, "struct w", &[]).unwrap().id);
        let st: *mut FfiState = &mut st;
        let mut seen = Vec::new();
        let mut grown = 0u32;
        let mut visit = |m: &InitMember| -> Result<Flow, ConvError> {
            // SAFETY: the walk holds no borrow of the state during a visit.
            let types = unsafe { &mut (*st).types };
            let name = types.record_body(m.rec).unwrap().fields[m.field].name.clone().unwrap();
            seen.push((name, m.offset));
            // New types, enough to move the table's storage.
            for _ in 0..64 {
                let arr = types.array_of(
                    QualType::plain(types.int(abi_model::IntKind::Int)),
                    ArrayLen::Fixed(u64::from(grown) + 1000),
                );
                types.pointer_to(arr);
                grown += 1;
            }
            Ok(Flow::Set)
        };
        // SAFETY: `st` is valid and not borrowed by this frame during the walk.
        let flow = unsafe { walk_members(st, rec.id, 0, &mut visit) };
        assert!(matches!(flow, Ok(Flow::Set)));
        let names: Vec<(&str, u64)> = seen.iter().map(|(n, o)| (n.as_str(), *o)).collect();
        let want = if cfg!(target_pointer_width = "64") {
            [("first", 0), ("f", 8), ("anon", 16), ("d", 24), ("inner", 32), ("last", 40)]
        } else if cfg!(windows) {
            // Win32: 4-byte pointers; the double 8-aligned in the anonymous struct.
            [("first", 0), ("f", 4), ("anon", 8), ("d", 16), ("inner", 24), ("last", 32)]
        } else {
            // i386 Linux: 4-byte pointers; the double 4-aligned.
            [("first", 0), ("f", 4), ("anon", 8), ("d", 12), ("inner", 20), ("last", 28)]
        };
        assert_eq!(names, want);
        assert_eq!(grown, 6 * 64);
    }
}
