//! Tier 0: a stub's program run in Rust, for the first calls of a signature (namespace
//! functions: [`crate::native::closure`]; function cdata: [`crate::native::call`]).
//!
//! Building a stub costs ~50K instructions (code generation, the arena, the unwind
//! registration), ten times what interpreting its program once does, and most functions a
//! program declares are called a few times or never. [`run_or_raise`] runs the program the
//! stub would be built from (`stub_program`, without the inline steps, whose fast paths only
//! pay off in machine code): every [`Step`] does here what the backends' lowering of it does, with the
//! same helpers, so arguments convert, errors read and `errno` behaves exactly as in the stub.
//! The registers a step loads are kept in a register image (`Regs`), the outgoing area and
//! the staging area in a `Frame` on the interpreter's stack; the C function is called through
//! `luaffi_tier0_call`, one hand-written routine that loads the image, copies the outgoing
//! area onto the machine stack and calls. Helpers are Rust functions with C signatures: each
//! is called through a function pointer of its own type (`Shape`), which the model's
//! `Helper::kinds` names. x86-64 only (System V and Windows).
//!
//! The program is compiled first ([`compile`], when the function is made): slots become
//! frame bytes checked against its areas, operands become constants or frame reads, and only
//! that compact form ([`Tier0Code`]) is kept, a tenth of the program's size. Every new page a
//! first call touches costs more than the rest of the call (~1.8 us a page fault here).
//!
//! Lua errors raised by helpers longjmp over the interpreter and its callers: none owns memory
//! (the frame and the image are plain arrays, the compiled program is borrowed from the state).

use std::os::raw::c_int;
use std::ptr::NonNull;

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{Dest, Operand, Program, Slot, Step};
use abi_model::{Ext, Loc, RetLoc, RetPlan, ValueKind};
use mlua::ffi;

use crate::cdata;
use crate::os::chunks::Chunks;

/// Bytes of outgoing area a program may need to run on tier 0; a larger one builds its stub
/// at first call.
pub const OUT_MAX: usize = 512;
/// Bytes of staging area a program may need to run on tier 0.
pub const STAGE_MAX: usize = 512;

/// The register image a call is made with: every GPR and XMM register by its encoding
/// (`Gpr(n)`, `Xmm(n)`); [`luaffi_tier0_call`] loads the argument registers of the host's
/// convention (and `rax`, `al` of a SysV variadic call) from it.
#[repr(C, align(16))]
struct Regs {
    gpr: [u64; 16],
    xmm: [[u64; 2]; 16],
}

/// What a call returned: `rax`, `rdx`, `xmm0` and `xmm1`, every register an x86-64 return
/// location ([`RetLoc`]) uses.
#[repr(C, align(16))]
#[derive(Default)]
struct Returned {
    rax: u64,
    rdx: u64,
    xmm0: [u64; 2],
    xmm1: [u64; 2],
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
/// `void luaffi_tier0_call(target, const Regs *regs, const u8 *out, size_t out_bytes,
/// Returned *ret)`: copies `out_bytes` (a multiple of 16) from `out` to the bottom of a
/// 16-byte aligned stack, loads `rdi, rsi, rdx, rcx, r8, r9`, `rax` and `xmm0`-`xmm7` from
/// `regs`, calls `target` and stores `rax, rdx, xmm0, xmm1` in `ret`.
///
/// # Safety
/// `target` is a function taking the arguments `regs` and `out` hold, as its plan places
/// them; `out` readable for `out_bytes`; `ret` writable. May not return (a Lua error).
#[unsafe(naked)]
unsafe extern "C-unwind" fn luaffi_tier0_call(
    target: u64,
    regs: *const Regs,
    out: *const u8,
    out_bytes: usize,
    ret: *mut Returned,
) {
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rbp",
        ".cfi_def_cfa_offset 16",
        ".cfi_offset rbp, -16",
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        "push rbx",
        ".cfi_offset rbx, -24",
        "push r12",
        ".cfi_offset r12, -32",
        "mov rbx, rdi",
        "mov r12, r8",
        "mov r10, rsi",
        "sub rsp, rcx",
        "and rsp, -16",
        "mov rsi, rdx",
        "mov rdi, rsp",
        "rep movsb",
        "movdqa xmm0, [r10 + 128]",
        "movdqa xmm1, [r10 + 144]",
        "movdqa xmm2, [r10 + 160]",
        "movdqa xmm3, [r10 + 176]",
        "movdqa xmm4, [r10 + 192]",
        "movdqa xmm5, [r10 + 208]",
        "movdqa xmm6, [r10 + 224]",
        "movdqa xmm7, [r10 + 240]",
        "mov rdi, [r10 + 56]",
        "mov rsi, [r10 + 48]",
        "mov rdx, [r10 + 16]",
        "mov rcx, [r10 + 8]",
        "mov r8, [r10 + 64]",
        "mov r9, [r10 + 72]",
        "mov rax, [r10]",
        "call rbx",
        "mov [r12], rax",
        "mov [r12 + 8], rdx",
        "movdqa [r12 + 16], xmm0",
        "movdqa [r12 + 32], xmm1",
        "lea rsp, [rbp - 16]",
        "pop r12",
        "pop rbx",
        "pop rbp",
        ".cfi_def_cfa rsp, 8",
        "ret",
        ".cfi_endproc",
    )
}

#[cfg(all(target_arch = "x86_64", windows))]
/// As on System V, with the Windows x64 convention on both sides: `target` in rcx, `regs` in
/// rdx, `out` in r8, `out_bytes` in r9, `ret` on the stack; loads `rcx, rdx, r8, r9` and
/// `xmm0`-`xmm3`. The outgoing area holds the callee's home space. Its unwind data (rbp as the
/// frame register) lets a Lua error raised by a helper unwind through it.
///
/// # Safety
/// As on System V.
#[unsafe(naked)]
unsafe extern "C-unwind" fn luaffi_tier0_call(
    target: u64,
    regs: *const Regs,
    out: *const u8,
    out_bytes: usize,
    ret: *mut Returned,
) {
    core::arch::naked_asm!(
        ".seh_proc {name}",
        "push rbp",
        ".seh_pushreg rbp",
        "push rbx",
        ".seh_pushreg rbx",
        "push rsi",
        ".seh_pushreg rsi",
        "push rdi",
        ".seh_pushreg rdi",
        "push r12",
        ".seh_pushreg r12",
        "mov rbp, rsp",
        ".seh_setframe rbp, 0",
        ".seh_endprologue",
        // Five pushes and the return address: `ret` (the fifth argument) is at rbp + 48 + 32.
        "mov r12, [rbp + 80]",
        "mov rbx, rcx",
        "mov r10, rdx",
        "mov rcx, r9",
        "sub rsp, rcx",
        "and rsp, -16",
        "mov rsi, r8",
        "mov rdi, rsp",
        "rep movsb",
        "movdqa xmm0, [r10 + 128]",
        "movdqa xmm1, [r10 + 144]",
        "movdqa xmm2, [r10 + 160]",
        "movdqa xmm3, [r10 + 176]",
        "mov rcx, [r10 + 8]",
        "mov rdx, [r10 + 16]",
        "mov r8, [r10 + 64]",
        "mov r9, [r10 + 72]",
        "call rbx",
        "mov [r12], rax",
        "mov [r12 + 8], rdx",
        "movdqa [r12 + 16], xmm0",
        "movdqa [r12 + 32], xmm1",
        "lea rsp, [rbp]",
        "pop r12",
        "pop rdi",
        "pop rsi",
        "pop rbx",
        "pop rbp",
        "ret",
        ".seh_endproc",
        name = sym luaffi_tier0_call,
    )
}

/// No tier 0 here: never called (`TIER0_SUPPORTED` is false, so every stub is built at first call).
#[cfg(not(target_arch = "x86_64"))]
unsafe extern "C-unwind" fn luaffi_tier0_call(
    _target: u64,
    _regs: *const Regs,
    _out: *const u8,
    _out_bytes: usize,
    _ret: *mut Returned,
) {
    unreachable!("tier 0 runs on x86-64 only")
}

/// The most parameters a helper a stub calls has.
const MAX_HELPER_ARGS: usize = 4;

/// The C signature of a helper, as tier 0 calls it: through a function pointer of exactly
/// the Rust type the helper is declared with (each `luaffi_*` helper is an `extern
/// "C-unwind"` function whose parameter and return types are those [`Helper::kinds`] names:
/// a pointer for `P`, `c_int` for `I32`, `u32`, `i64`, `u64`, `f32`, `f64`, nothing for
/// `VOID`), so the compiler, not a register image, passes the arguments: one call
/// instruction instead of a hand-written routine that loads every argument register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `void (P, I32, I32)`.
    VoidOfPtrI32I32,
    /// `I32 (P, I32)`.
    I32OfPtrI32,
    /// `U32 (P, I32)`.
    U32OfPtrI32,
    /// `I64 (P, I32)`.
    I64OfPtrI32,
    /// `U64 (P, I32)`.
    U64OfPtrI32,
    /// `F32 (P, I32)`.
    F32OfPtrI32,
    /// `F64 (P, I32)`.
    F64OfPtrI32,
    /// `P (P, I32, P)`.
    PtrOfPtrI32Ptr,
    /// `void (P, I32, P, P)`.
    VoidOfPtrI32PtrPtr,
    /// `void (P, I32)`.
    VoidOfPtrI32,
    /// `void (P, U32)`.
    VoidOfPtrU32,
    /// `void (P, I64)`.
    VoidOfPtrI64,
    /// `void (P, U64)`.
    VoidOfPtrU64,
    /// `void (P, F32)`.
    VoidOfPtrF32,
    /// `void (P, F64)`.
    VoidOfPtrF64,
    /// `void (P, P, P)`.
    VoidOfPtrPtrPtr,
    /// `P (P, P)`.
    PtrOfPtrPtr,
    /// `P (P)`.
    PtrOfPtr,
}

impl Shape {
    /// [`Shape::of_kinds`] of every helper, indexed by [`Helper::id`], worked out once per
    /// process (a program compiled for tier 0 has a helper call per argument).
    fn of(h: Helper) -> Option<Shape> {
        static SHAPES: std::sync::OnceLock<Vec<Option<Shape>>> = std::sync::OnceLock::new();
        SHAPES.get_or_init(|| Helper::ALL.iter().map(|h| Shape::of_kinds(*h)).collect()).get(h.id()).copied().flatten()
    }

    /// The shape of `h`'s signature, or `None` for one tier 0 does not call (a callback
    /// helper: only thunks call those).
    fn of_kinds(h: Helper) -> Option<Shape> {
        use ValueKind::{Pointer as P, Void, F32, F64};
        const I32: ValueKind = ValueKind::Int { size: 4, signed: true };
        const U32: ValueKind = ValueKind::Int { size: 4, signed: false };
        const I64: ValueKind = ValueKind::Int { size: 8, signed: true };
        const U64: ValueKind = ValueKind::Int { size: 8, signed: false };
        Some(match h.kinds() {
            (Void, [P, I32, I32]) => Shape::VoidOfPtrI32I32,
            (I32, [P, I32]) => Shape::I32OfPtrI32,
            (U32, [P, I32]) => Shape::U32OfPtrI32,
            (I64, [P, I32]) => Shape::I64OfPtrI32,
            (U64, [P, I32]) => Shape::U64OfPtrI32,
            (F32, [P, I32]) => Shape::F32OfPtrI32,
            (F64, [P, I32]) => Shape::F64OfPtrI32,
            (P, [P, I32, P]) => Shape::PtrOfPtrI32Ptr,
            (Void, [P, I32, P, P]) => Shape::VoidOfPtrI32PtrPtr,
            (Void, [P, I32]) => Shape::VoidOfPtrI32,
            (Void, [P, U32]) => Shape::VoidOfPtrU32,
            (Void, [P, I64]) => Shape::VoidOfPtrI64,
            (Void, [P, U64]) => Shape::VoidOfPtrU64,
            (Void, [P, F32]) => Shape::VoidOfPtrF32,
            (Void, [P, F64]) => Shape::VoidOfPtrF64,
            (Void, [P, P, P]) => Shape::VoidOfPtrPtrPtr,
            (P, [P, P]) => Shape::PtrOfPtrPtr,
            (P, [P]) => Shape::PtrOfPtr,
            _ => return None,
        })
    }

    /// Bytes of the helper's result: 0 for `void`.
    fn ret_bytes(self) -> usize {
        match self {
            Shape::I32OfPtrI32 | Shape::U32OfPtrI32 | Shape::F32OfPtrI32 => 4,
            Shape::I64OfPtrI32
            | Shape::U64OfPtrI32
            | Shape::F64OfPtrI32
            | Shape::PtrOfPtrI32Ptr
            | Shape::PtrOfPtrPtr
            | Shape::PtrOfPtr => 8,
            Shape::VoidOfPtrI32I32
            | Shape::VoidOfPtrI32PtrPtr
            | Shape::VoidOfPtrI32
            | Shape::VoidOfPtrU32
            | Shape::VoidOfPtrI64
            | Shape::VoidOfPtrU64
            | Shape::VoidOfPtrF32
            | Shape::VoidOfPtrF64
            | Shape::VoidOfPtrPtrPtr => 0,
        }
    }

    /// Calls the helper at `addr`, of this shape, with `a` (each argument's bits, as
    /// [`Word`] reads them); returns its result's bits.
    ///
    /// # Safety
    /// `addr` is a helper of this shape (its address in the state's table), and `a` what it
    /// takes in the state it is called for. May raise a Lua error (longjmp): the callers own
    /// nothing then.
    #[inline]
    unsafe fn call(self, addr: u64, a: &[u64; MAX_HELPER_ARGS]) -> u64 {
        type P = *mut std::ffi::c_void;
        /// Transmutes `addr` to the function pointer type `$f` and calls it with the
        /// arguments' bits read as its parameter types.
        macro_rules! call {
            (fn($($p:ty),*) $(-> $r:ty)?; $($i:literal),*) => {{
                // SAFETY: `addr` is a helper declared with exactly this type (the caller's
                // contract: its shape says so), and a function address.
                let f: unsafe extern "C-unwind" fn($($p),*) $(-> $r)? = unsafe { std::mem::transmute(addr as usize) };
                // SAFETY: the arguments are what the helper takes (the caller's contract).
                #[allow(clippy::unused_unit)]
                let r = unsafe { f($(<$p as Word>::from_word(a[$i])),*) };
                Word::to_word(r)
            }};
        }
        match self {
            Shape::VoidOfPtrI32I32 => call!(fn(P, c_int, c_int); 0, 1, 2),
            Shape::I32OfPtrI32 => call!(fn(P, c_int) -> c_int; 0, 1),
            Shape::U32OfPtrI32 => call!(fn(P, c_int) -> u32; 0, 1),
            Shape::I64OfPtrI32 => call!(fn(P, c_int) -> i64; 0, 1),
            Shape::U64OfPtrI32 => call!(fn(P, c_int) -> u64; 0, 1),
            Shape::F32OfPtrI32 => call!(fn(P, c_int) -> f32; 0, 1),
            Shape::F64OfPtrI32 => call!(fn(P, c_int) -> f64; 0, 1),
            Shape::PtrOfPtrI32Ptr => call!(fn(P, c_int, P) -> P; 0, 1, 2),
            Shape::VoidOfPtrI32PtrPtr => call!(fn(P, c_int, P, P); 0, 1, 2, 3),
            Shape::VoidOfPtrI32 => call!(fn(P, c_int); 0, 1),
            Shape::VoidOfPtrU32 => call!(fn(P, u32); 0, 1),
            Shape::VoidOfPtrI64 => call!(fn(P, i64); 0, 1),
            Shape::VoidOfPtrU64 => call!(fn(P, u64); 0, 1),
            Shape::VoidOfPtrF32 => call!(fn(P, f32); 0, 1),
            Shape::VoidOfPtrF64 => call!(fn(P, f64); 0, 1),
            Shape::VoidOfPtrPtrPtr => call!(fn(P, P, P); 0, 1, 2),
            Shape::PtrOfPtrPtr => call!(fn(P, P) -> P; 0, 1),
            Shape::PtrOfPtr => call!(fn(P) -> P; 0),
        }
    }
}

/// A helper's argument or result as the 64 bits tier 0 keeps it in: an integer zero- or
/// sign-extended as its operand was compiled (`Arg`), a float's bits in the low bytes, a
/// pointer's address.
trait Word {
    /// The value held in `w`.
    fn from_word(w: u64) -> Self;
    /// `self`'s bits, zero-extended.
    fn to_word(self) -> u64;
}

impl Word for () {
    fn from_word(_: u64) {}
    fn to_word(self) -> u64 {
        0
    }
}

impl Word for c_int {
    fn from_word(w: u64) -> c_int {
        w as u32 as c_int
    }
    fn to_word(self) -> u64 {
        u64::from(self as u32)
    }
}

impl Word for u32 {
    fn from_word(w: u64) -> u32 {
        w as u32
    }
    fn to_word(self) -> u64 {
        u64::from(self)
    }
}

impl Word for i64 {
    fn from_word(w: u64) -> i64 {
        w as i64
    }
    fn to_word(self) -> u64 {
        self as u64
    }
}

impl Word for u64 {
    fn from_word(w: u64) -> u64 {
        w
    }
    fn to_word(self) -> u64 {
        self
    }
}

impl Word for f32 {
    fn from_word(w: u64) -> f32 {
        f32::from_bits(w as u32)
    }
    fn to_word(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Word for f64 {
    fn from_word(w: u64) -> f64 {
        f64::from_bits(w)
    }
    fn to_word(self) -> u64 {
        self.to_bits()
    }
}

impl Word for *mut std::ffi::c_void {
    fn from_word(w: u64) -> *mut std::ffi::c_void {
        w as usize as *mut std::ffi::c_void
    }
    fn to_word(self) -> u64 {
        self as usize as u64
    }
}

/// Why a program could not be run on tier 0: a step a closure-mode stub program without
/// inline steps never has, or a slot outside its areas. Each is a bug in the model or here,
/// raised as an error rather than run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A step tier 0 does not run.
    Step(&'static str),
    /// A slot beyond the program's areas, or a thunk's.
    Slot(Slot),
    /// A helper tier 0 has no `Shape` for (a thunk's), a void result kept, or an operand its
    /// parameter does not take.
    Helper(Helper),
    /// A width a register cannot take.
    Width(u32),
    /// Something tier 0's compact form cannot hold (not a bug): the stub is built instead.
    Unfit(&'static str),
}

/// A byte of the frame: `Slot::Out(o)` is byte `o`, `Slot::Stage(o)` byte `OUT_MAX + o`.
type At = u16;

/// No frame byte: a helper call whose result is not kept ([`Op::Helper`]'s `ret_to`). The
/// frame is [`OUT_MAX`] + [`STAGE_MAX`] bytes, so no byte of it has this number.
const NO_AT: At = At::MAX;

/// One operand of a helper call, resolved when the program is compiled, packed in one word
/// (every operand is kept for as long as its function lives): the low byte says what it is
/// (`Arg::L`, ...), the 56 bits above it carry its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Arg(u64);

impl Arg {
    /// The running `lua_State *`.
    const L: Arg = Arg(0);
    /// Kind: an address known when compiling (a ctype constant, the callback data).
    const ADDR: u64 = 1;
    /// Kind: an immediate, zero-extended from 32 bits.
    const IMM32: u64 = 2;
    /// Kind: an immediate, sign-extended to 64 bits (for a 64-bit parameter).
    const IMM64: u64 = 3;
    /// Kind: the address of a frame byte.
    const FRAME: u64 = 4;
    /// Kind: bytes at a frame byte (bits 8..24), their count (24..32), sign-extended when
    /// bit 32 is set (a value, or a pointer held there).
    const BYTES: u64 = 5;

    /// An address known when compiling. Addresses of x86-64 user space have 47 bits (56 with
    /// 5-level paging); one with more is not compiled ([`Fault::Unfit`]) rather than cut.
    fn addr(addr: u64) -> Result<Arg, Fault> {
        match addr >> 56 {
            0 => Ok(Arg(addr << 8 | Arg::ADDR)),
            _ => Err(Fault::Unfit("an address of more than 56 bits")),
        }
    }

    /// An immediate, widened to the 64 bits of a `wide` parameter or the 32 of another.
    fn imm(value: i32, wide: bool) -> Arg {
        Arg(u64::from(value as u32) << 8 | if wide { Arg::IMM64 } else { Arg::IMM32 })
    }

    /// The address of frame byte `at`.
    fn frame(at: At) -> Arg {
        Arg(u64::from(at) << 8 | Arg::FRAME)
    }

    /// `size` (1..=8) bytes at frame byte `at`, widened as `ext`.
    fn bytes(at: At, size: u8, ext: Ext) -> Arg {
        let sign = u64::from(ext == Ext::Sign);
        Arg(sign << 32 | u64::from(size) << 24 | u64::from(at) << 8 | Arg::BYTES)
    }

    /// The operand's value for a call made on `l` with frame `f`.
    ///
    /// # Safety
    /// `f` is the frame of the program the operand was compiled from (its bytes checked to
    /// lie in the program's areas).
    #[inline(always)]
    unsafe fn value(self, l: *mut ffi::lua_State, f: *mut u8) -> Result<u64, Fault> {
        let payload = self.0 >> 8;
        Ok(match self.0 & 0xff {
            0 => l as u64,
            Arg::ADDR => payload,
            Arg::IMM32 => payload as u32 as u64,
            Arg::IMM64 => payload as u32 as i32 as i64 as u64,
            // SAFETY: the frame byte was checked when compiling (the caller's contract).
            Arg::FRAME => unsafe { f.add(payload as u16 as usize) as u64 },
            _ => {
                let ext = if payload >> 24 & 1 != 0 { Ext::Sign } else { Ext::Zero };
                // SAFETY: the operand's bytes were checked, when compiling, to lie in the frame.
                unsafe { load_gpr(f.add(payload as u16 as usize), (payload >> 16) as u8 as u32, ext)? }
            }
        })
    }
}

/// One step of a program as tier 0 runs it: every slot resolved to a frame byte and checked
/// against the program's areas, every operand resolved, once, when the program is compiled.
/// Eight bytes, as [`Arg`].
#[derive(Clone, Copy, Debug)]
enum Op {
    /// [`Step::CheckArgCount`].
    CheckArgCount(i32),
    /// [`Step::CallHelper`] of a helper of signature `shape`: operands
    /// `args[first..first + n]` of [`Tier0Code::args`]; its result stored at `ret_to`, unless
    /// that is [`NO_AT`].
    Helper { helper: Helper, shape: Shape, first: u16, n: u8, ret_to: At },
    /// [`Step::CallHelper`] with the operands `L` and an immediate for a 32-bit parameter
    /// (an argument's conversion: `luaffi_to_i32(L, 3)`), which are kept in the op: no
    /// operand in [`Tier0Code::args`], so that the ops a first call keeps are a third
    /// smaller and are read without decoding an operand.
    HelperOfLImm { helper: Helper, shape: Shape, imm: i16, ret_to: At },
    /// [`Step::StoreAddr`].
    StoreAddr { of: At, to: At },
    /// [`Step::CopyPtr`].
    CopyPtr { from: At, to: At },
    /// [`Step::LoadArg`] into a general register, [`Step::LoadPtr`] (8 bytes).
    LoadGpr { reg: u8, from: At, size: u8, ext: Ext },
    /// [`Step::LoadArg`] into an XMM register.
    LoadXmm { reg: u8, from: At, size: u8 },
    /// [`Step::LoadAddr`] (a register: its index in the image, XMM ones after the 16 GPRs).
    LoadAddr { reg: u8, of: At },
    /// [`Step::SetAl`].
    SetAl(u8),
    /// [`Step::CallTarget`] of a callee that pops nothing.
    CallTarget { via: At },
    /// [`Step::SaveReturn`] of `size` bytes (at most 16): at `to`, or through the pointer
    /// held there.
    SaveReturn { from: RetFrom, size: u8, to: At, through: bool },
    /// [`Step::ReturnToLua`].
    ReturnToLua(u32),
}

/// A stub's program compiled for tier 0 ([`compile`]): what running it reads, and nothing
/// else; the program itself is not kept (a tenth of the size, so that the first calls of
/// many signatures touch few new pages).
pub struct Tier0Code {
    /// Its ops, then its operands, in the [`CodeStore`] it was compiled into.
    words: NonNull<CodeWord>,
    ops: u16,
    args: u16,
    out_bytes: u16,
    stage_bytes: u16,
}

impl Tier0Code {
    /// The ops.
    ///
    /// # Safety
    /// The [`CodeStore`] the code was compiled into is alive.
    unsafe fn ops(&self) -> &[Op] {
        // SAFETY: the store keeps `ops` words written as ops at `words`, unmoved while it
        // lives (the caller's contract); an op is a word's size (`CodeWord`'s assertion).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<Op>(), self.ops as usize) }
    }

    /// The helper calls' operands.
    ///
    /// # Safety
    /// The [`CodeStore`] the code was compiled into is alive.
    unsafe fn args(&self) -> &[Arg] {
        // SAFETY: the store keeps `args` words written as operands right after the ops, unmoved
        // while it lives (the caller's contract); an operand is a word's size.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().add(self.ops as usize).cast::<Arg>(), self.args as usize)
        }
    }
}

/// An op or an operand: a compiled program keeps its ops and operands one after the other
/// in a [`CodeStore`], so that it is no allocation of its own (two were ~350 instructions of
/// a first call and 32 bytes of headers).
#[derive(Clone, Copy)]
#[repr(C)]
union CodeWord {
    op: Op,
    arg: Arg,
}

// A list of words read as a list of ops or operands needs them all the same size.
const _: () = assert!(size_of::<CodeWord>() == 8 && size_of::<Op>() == 8 && size_of::<Arg>() == 8);

/// Where the state's compiled programs are ([`Tier0Code`]), and the lists [`compile`] builds
/// them in, reused from one program to the next.
#[derive(Default)]
pub struct CodeStore {
    words: Chunks<CodeWord, 128>,
    ops: Vec<Op>,
    args: Vec<Arg>,
}

/// The frame byte `slot` names, checked to hold `size` bytes inside the program's areas.
fn frame_at(p: &Program, slot: Slot, size: u32) -> Result<At, Fault> {
    let (base, off, limit) = match slot {
        Slot::Out(off) => (0, off, p.out_bytes),
        Slot::Stage(off) => (OUT_MAX as u32, off, p.stage_bytes),
        Slot::Entry(_) => return Err(Fault::Slot(slot)),
    };
    match off.checked_add(size) {
        // `limit` is at most the area's length (`fits`), so the byte is in the frame.
        Some(end) if end <= limit => Ok((base + off) as At),
        _ => Err(Fault::Slot(slot)),
    }
}

/// A register's index in the image ([`Regs`] read as 32 words: GPRs, then XMM registers).
fn reg_index(loc: Loc) -> Result<u8, Fault> {
    match loc {
        Loc::Gpr(g) if g.0 < 16 => Ok(g.0),
        Loc::Xmm(x) if x.0 < 16 => Ok(16 + x.0),
        _ => Err(Fault::Step("a load into a non-register")),
    }
}

/// The immediate of a helper call [`Op::HelperOfLImm`] holds: one whose operands are `L`
/// and an immediate that fits 16 bits, for parameters (`kinds`, the helper's) `lua_State *`
/// and a 32-bit value.
fn l_and_imm(operands: &[Operand], kinds: &[ValueKind]) -> Option<i16> {
    match (operands, kinds) {
        ([Operand::L, Operand::Imm(value)], [ValueKind::Pointer, param]) if param.size(8) == 4 => {
            i16::try_from(*value).ok()
        }
        _ => None,
    }
}

/// Compiles `p` (a stub program without inline steps, [`fits`] checked) with the constants
/// of `env`; a fault names what tier 0 cannot run (a bug in the program or here). An inline
/// step is a fault: a program compiled without one owns no memory in its steps, which
/// `call::tier0_sig` relies on to forget them rather than drop each.
pub fn compile(p: &Program, env: &abi_model::lua::CodeEnv, store: &mut CodeStore) -> Result<Tier0Code, Fault> {
    if !fits(p) {
        return Err(Fault::Step("a frame larger than tier 0's"));
    }
    let (ops, args) = (&mut store.ops, &mut store.args);
    ops.clear();
    args.clear();
    for step in &p.steps {
        ops.push(match step {
            Step::CheckArgCount { expected } => Op::CheckArgCount(*expected),
            Step::CallHelper { helper, args: operands, ret_to } => {
                let shape = Shape::of(*helper).ok_or(Fault::Helper(*helper))?;
                let (ret_kind, kinds) = helper.kinds();
                if operands.len() != kinds.len() || operands.len() > MAX_HELPER_ARGS {
                    return Err(Fault::Helper(*helper));
                }
                let ret_to = match ret_to {
                    Some(_) if ret_kind == ValueKind::Void => return Err(Fault::Helper(*helper)),
                    Some(slot) => frame_at(p, *slot, shape.ret_bytes() as u32)?,
                    None => NO_AT,
                };
                if let Some(imm) = l_and_imm(operands, kinds) {
                    ops.push(Op::HelperOfLImm { helper: *helper, shape, imm, ret_to });
                    continue;
                }
                let first = args.len() as u16;
                for (op, &param) in operands.iter().zip(kinds) {
                    let wide = param.size(8) == 8;
                    let float = matches!(param, ValueKind::F32 | ValueKind::F64);
                    args.push(match *op {
                        Operand::L => Arg::L,
                        Operand::Imm(value) => Arg::imm(value, wide),
                        Operand::Ctype(c) => Arg::addr(env.ctype(c))?,
                        Operand::CallbackData => Arg::addr(env.callback_data)?,
                        Operand::Addr(s) => Arg::frame(frame_at(p, s, 0)?),
                        Operand::PtrAt(s) => Arg::bytes(frame_at(p, s, 8)?, 8, Ext::Zero),
                        Operand::Value { at, kind } if !float => {
                            let size = match kind {
                                ValueKind::Bool | ValueKind::Int { .. } | ValueKind::Pointer => {
                                    kind.size(8).min(param.size(8))
                                }
                                _ => return Err(Fault::Helper(*helper)),
                            };
                            Arg::bytes(frame_at(p, at, size)?, size as u8, Ext::widening(kind))
                        }
                        // A float is passed as the float it is: its bits, as `Word` reads them.
                        Operand::Value { at, kind } if kind == param => {
                            let size = kind.size(8);
                            Arg::bytes(frame_at(p, at, size)?, size as u8, Ext::Zero)
                        }
                        _ => return Err(Fault::Helper(*helper)),
                    });
                }
                Op::Helper { helper: *helper, shape, first, n: operands.len() as u8, ret_to }
            }
            Step::StoreAddr { of, to } => Op::StoreAddr { of: frame_at(p, *of, 0)?, to: frame_at(p, *to, 8)? },
            Step::CopyPtr { from, to } => Op::CopyPtr { from: frame_at(p, *from, 8)?, to: frame_at(p, *to, 8)? },
            Step::LoadArg { to, from, size, ext } => {
                let at = frame_at(p, *from, *size)?;
                match (reg_index(*to)?, *size) {
                    (reg @ 16.., 1..=8 | 16) => Op::LoadXmm { reg: reg - 16, from: at, size: *size as u8 },
                    (reg @ ..16, 1..=8) => Op::LoadGpr { reg, from: at, size: *size as u8, ext: *ext },
                    _ => return Err(Fault::Width(*size)),
                }
            }
            Step::LoadPtr { to, from } => match reg_index(*to)? {
                reg @ ..16 => Op::LoadGpr { reg, from: frame_at(p, *from, 8)?, size: 8, ext: Ext::Zero },
                reg => Op::LoadXmm { reg: reg - 16, from: frame_at(p, *from, 8)?, size: 8 },
            },
            Step::LoadAddr { to, of } => Op::LoadAddr { reg: reg_index(*to)?, of: frame_at(p, *of, 0)? },
            Step::SetAl(n) => Op::SetAl(*n),
            Step::CallTarget { via, callee_pops: 0 } => Op::CallTarget { via: frame_at(p, *via, 8)? },
            Step::CallTarget { .. } => return Err(Fault::Step("a callee that pops")),
            Step::SaveReturn { ret, to } => {
                let (from, size) = RetFrom::of(ret)?;
                // `RetFrom::of` keeps register values to 16 bytes; an `Sret` result is written
                // by the callee, never saved.
                if size > 16 {
                    return Err(Fault::Width(size));
                }
                let size_u8 = size as u8;
                match to {
                    Dest::At(s) => Op::SaveReturn { from, size: size_u8, to: frame_at(p, *s, size)?, through: false },
                    Dest::Through(s) => Op::SaveReturn { from, size: size_u8, to: frame_at(p, *s, 8)?, through: true },
                }
            }
            Step::ReturnToLua { results } => Op::ReturnToLua(*results),
            other => return Err(Fault::Step(other.kind().name())),
        });
    }
    if !matches!(ops.last(), Some(Op::ReturnToLua(_))) {
        return Err(Fault::Step("a program that does not return"));
    }
    if args.len() > u16::MAX as usize || ops.len() > u16::MAX as usize {
        return Err(Fault::Step("too many ops or helper operands"));
    }
    Ok(Tier0Code {
        words: store.words.extend(ops.iter().map(|&op| CodeWord { op }), args.iter().map(|&arg| CodeWord { arg })),
        ops: ops.len() as u16,
        args: args.len() as u16,
        out_bytes: p.out_bytes as u16,
        stage_bytes: p.stage_bytes as u16,
    })
}

/// Reads `size` (1..=8) bytes at `at`, zero-extended, or with `ext` for 1 and 2 bytes widened
/// to 32 bits (the upper 32 zero), as the backends' `load_gpr` does.
///
/// # Safety
/// `at` readable for `size` bytes.
#[inline]
unsafe fn load_gpr(at: *const u8, size: u32, ext: Ext) -> Result<u64, Fault> {
    // SAFETY: `at` is readable for `size` bytes (the caller's contract), and no more than
    // `size` bytes are read.
    unsafe {
        Ok(match (size, ext) {
            (1, Ext::Sign) => (at.read() as i8 as i32) as u32 as u64,
            (2, Ext::Sign) => (at.cast::<i16>().read_unaligned() as i32) as u32 as u64,
            (1..=8, _) => read_le(at, size as usize),
            _ => return Err(Fault::Width(size)),
        })
    }
}

/// Reads `size` (1..=8) bytes at `at` as a little-endian number, zero-extended. The sizes
/// values have take one load each: a copy of a length not known when compiling is a call to
/// `memcpy` (~15 instructions, and a first call makes ~20 of them).
///
/// # Safety
/// `at` readable for `size` bytes; `size` at most 8.
#[inline(always)]
unsafe fn read_le(at: *const u8, size: usize) -> u64 {
    // SAFETY: `at` is readable for `size` bytes (the caller's contract); each arm reads
    // exactly `size` of them.
    unsafe {
        match size {
            8 => at.cast::<u64>().read_unaligned(),
            4 => u64::from(at.cast::<u32>().read_unaligned()),
            2 => u64::from(at.cast::<u16>().read_unaligned()),
            1 => u64::from(at.read()),
            _ => {
                let mut b = [0u8; 8];
                std::ptr::copy_nonoverlapping(at, b.as_mut_ptr(), size.min(8));
                u64::from_le_bytes(b)
            }
        }
    }
}

/// Writes the low `size` (1..=8) bytes of `v` at `to`, little-endian: as [`read_le`], one
/// store for the sizes values have.
///
/// # Safety
/// `to` writable for `size` bytes; `size` at most 8.
#[inline(always)]
unsafe fn write_le(to: *mut u8, v: u64, size: usize) {
    // SAFETY: `to` is writable for `size` bytes (the caller's contract); each arm writes
    // exactly `size` of them.
    unsafe {
        match size {
            8 => to.cast::<u64>().write_unaligned(v),
            4 => to.cast::<u32>().write_unaligned(v as u32),
            2 => to.cast::<u16>().write_unaligned(v as u16),
            1 => to.write(v as u8),
            _ => std::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), to, size.min(8)),
        }
    }
}

/// Reads `size` (1..=8 or 16) bytes at `at` as an XMM register gets them (zeroed above).
///
/// # Safety
/// `at` readable for `size` bytes.
#[inline]
unsafe fn load_xmm(at: *const u8, size: u32) -> Result<[u64; 2], Fault> {
    // SAFETY: `at` is readable for `size` bytes (the caller's contract): 16 are read only
    // when `size` is 16.
    unsafe {
        match size {
            16 => Ok([at.cast::<u64>().read_unaligned(), at.add(8).cast::<u64>().read_unaligned()]),
            _ => Ok([load_gpr(at, size, Ext::Zero)?, 0]),
        }
    }
}

/// Where a call's value is, among the registers [`Returned`] keeps: an x86-64 [`RetLoc`]
/// without the hidden pointer's place, which the op that saves it does not need; with it
/// (`RetLoc` is 8 bytes) an op would be 16 bytes instead of 12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetFrom {
    /// Nothing.
    Void,
    /// `rax`.
    Gpr,
    /// The low 8 bytes of `xmm0`.
    Xmm0,
    /// All of `xmm0` (a 16-byte vector).
    Xmm0Full,
    /// `xmm0`, then `xmm1`.
    Xmm0Xmm1,
    /// `rax`, then `rdx`.
    RaxRdx,
    /// `rax`, then `xmm0`.
    RaxXmm0,
    /// `xmm0`, then `rax`.
    Xmm0Rax,
    /// In memory, at the address `rax` holds (the buffer the hidden pointer gave).
    Sret,
}

impl RetFrom {
    /// Where `ret` is, with its size; an x86 location is a fault, as is a size the registers
    /// cannot carry.
    fn of(ret: &RetPlan) -> Result<(RetFrom, u32), Fault> {
        let from = match ret.loc {
            RetLoc::Void => RetFrom::Void,
            RetLoc::Gpr => RetFrom::Gpr,
            RetLoc::Xmm0 => RetFrom::Xmm0,
            RetLoc::Xmm0Full => RetFrom::Xmm0Full,
            RetLoc::Xmm0Xmm1 => RetFrom::Xmm0Xmm1,
            RetLoc::RaxRdx => RetFrom::RaxRdx,
            RetLoc::RaxXmm0 => RetFrom::RaxXmm0,
            RetLoc::Xmm0Rax => RetFrom::Xmm0Rax,
            RetLoc::Sret { .. } => RetFrom::Sret,
            RetLoc::EdxEax | RetLoc::St0 => return Err(Fault::Step("an x86 return")),
        };
        let size = ret.value.size(8);
        if !matches!(from, RetFrom::Void | RetFrom::Sret) && !(1..=16).contains(&size) {
            return Err(Fault::Width(size));
        }
        Ok((from, size))
    }
}

/// Stores the `size`-byte value a call left in `r` at `from` at `to`, exactly `size` bytes,
/// each register carrying bytes 0..8 and 8.. as [`RetLoc`]'s contract says.
///
/// # Safety
/// `to` writable for `size` bytes.
unsafe fn store_return(r: &Returned, from: RetFrom, size: u32, to: *mut u8) -> Result<(), Fault> {
    // Bytes 0..8 and 8..16 of the value, each from the register that carries them.
    let (low, high): (u64, u64) = match from {
        RetFrom::Void => return Ok(()),
        RetFrom::Gpr => (r.rax, 0),
        RetFrom::Xmm0 => (r.xmm0[0], 0),
        // A 16-byte vector: bytes 8.. are xmm0's upper half.
        RetFrom::Xmm0Full => (r.xmm0[0], r.xmm0[1]),
        RetFrom::Xmm0Xmm1 => (r.xmm0[0], r.xmm1[0]),
        RetFrom::RaxRdx => (r.rax, r.rdx),
        RetFrom::RaxXmm0 => (r.rax, r.xmm0[0]),
        RetFrom::Xmm0Rax => (r.xmm0[0], r.rax),
        RetFrom::Sret => {
            // The callee filled the buffer it was given and returned its address in rax.
            // SAFETY: rax is the buffer (the hidden pointer the program passed); `to` the
            // caller's; they may be the same.
            unsafe { std::ptr::copy(r.rax as *const u8, to, size as usize) };
            return Ok(());
        }
    };
    if size > 16 || size == 0 {
        return Err(Fault::Width(size));
    }
    if size <= 8 {
        // SAFETY: `to` is writable for the value's `size` bytes (the caller's contract).
        unsafe { write_le(to, low, size as usize) };
        return Ok(());
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&low.to_le_bytes());
    bytes[8..].copy_from_slice(&high.to_le_bytes());
    // SAFETY: `to` is writable for the value's `size` bytes (the caller's contract), at most
    // 16 (checked above), which `bytes` holds.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, size as usize) };
    Ok(())
}

/// The frame of a program run on tier 0: the outgoing area (`Slot::Out`) at byte 0, the
/// staging area (`Slot::Stage`) at byte [`OUT_MAX`]; 16-byte aligned as a stub's are.
#[repr(C, align(16))]
struct Frame {
    bytes: [u8; OUT_MAX + STAGE_MAX],
}

/// Runs `code`; returns its results.
///
/// # Safety
/// `l` is running what a stub of the compiled program would run as (a namespace closure, or
/// the `__call` of a function cdata); `helpers` is the state's helper table for that call
/// path (`Helper::ALL.len()` addresses); the [`CodeStore`] `code` was compiled into is
/// alive. May raise.
unsafe fn run(l: *mut ffi::lua_State, code: &Tier0Code, helpers: *const u64) -> Result<c_int, Fault> {
    let mut frame = std::mem::MaybeUninit::<Frame>::uninit();
    let f = frame.as_mut_ptr() as *mut u8;
    // SAFETY: the areas the program uses are zeroed first, so every read of them is defined;
    // both lie in the frame (`OUT_MAX`, `STAGE_MAX` bound them, checked by `compile`).
    unsafe {
        std::ptr::write_bytes(f, 0, code.out_bytes as usize);
        std::ptr::write_bytes(f.add(OUT_MAX), 0, code.stage_bytes as usize);
    }
    let mut regs = Regs { gpr: [0; 16], xmm: [[0; 2]; 16] };
    let mut returned = Returned::default();
    // SAFETY (the loop): every frame byte `At` was checked by `compile` to hold the bytes
    // read or written there inside the program's zeroed areas; helpers and the target are
    // called as their plans say.
    // SAFETY: the code's store is the state's, alive while it runs a call (the caller's).
    let (ops, args) = unsafe { (code.ops(), code.args()) };
    for op in ops {
        match *op {
            Op::CheckArgCount(expected) => {
                let n = unsafe { ffi::lua_gettop(l) };
                if n != expected {
                    let a = [l as u64, expected.to_word(), n.to_word(), 0];
                    // SAFETY: the table's entry is `luaffi_argcount_error`, of this shape
                    // (`argcount_error_is_called_by_its_shape`); it raises.
                    unsafe { Shape::VoidOfPtrI32I32.call(helpers.add(Helper::ArgCountError.id()).read(), &a) };
                    return Err(Fault::Step("an argument count error that returned"));
                }
            }
            Op::Helper { helper, shape, first, n, ret_to } => {
                let mut a = [0u64; MAX_HELPER_ARGS];
                let operands = &args[first as usize..first as usize + n as usize];
                for (v, arg) in a.iter_mut().zip(operands) {
                    *v = unsafe { arg.value(l, f)? };
                }
                // SAFETY: as `call_helper` asks: `compile` found `shape` for `helper`, checked
                // `ret_to`, and resolved the operands.
                unsafe { call_helper(helpers, helper, shape, &a, f, ret_to) };
            }
            Op::HelperOfLImm { helper, shape, imm, ret_to } => {
                // A 32-bit parameter's immediate, zero-extended as `Arg::imm` makes it.
                let a = [l as u64, u64::from(i32::from(imm) as u32), 0, 0];
                // SAFETY: as for `Op::Helper`, with the operands the op holds.
                unsafe { call_helper(helpers, helper, shape, &a, f, ret_to) };
            }
            Op::StoreAddr { of, to } => unsafe {
                let addr = f.add(of as usize) as u64;
                f.add(to as usize).cast::<u64>().write_unaligned(addr);
            },
            Op::CopyPtr { from, to } => unsafe {
                let v = f.add(from as usize).cast::<u64>().read_unaligned();
                f.add(to as usize).cast::<u64>().write_unaligned(v);
            },
            Op::LoadGpr { reg, from, size, ext } => {
                regs.gpr[reg as usize & 15] = unsafe { load_gpr(f.add(from as usize), size as u32, ext)? };
            }
            Op::LoadXmm { reg, from, size } => {
                regs.xmm[reg as usize & 15] = unsafe { load_xmm(f.add(from as usize), size as u32)? };
            }
            Op::LoadAddr { reg, of } => {
                let v = unsafe { f.add(of as usize) } as u64;
                match reg {
                    ..16 => regs.gpr[reg as usize] = v,
                    _ => regs.xmm[reg as usize & 15] = [v, 0],
                }
            }
            Op::SetAl(n) => regs.gpr[0] = u64::from(n),
            Op::CallTarget { via } => {
                let target = unsafe { f.add(via as usize).cast::<u64>().read_unaligned() };
                // SAFETY: the target is the called function (the closure's), its registers and
                // outgoing area as the plan says; the frame outlives the call (by-reference
                // copies and hidden return buffers may point into it).
                unsafe { luaffi_tier0_call(target, &regs, f, code.out_bytes as usize, &mut returned) };
            }
            Op::SaveReturn { from, size, to, through } => {
                let dest = match through {
                    false => unsafe { f.add(to as usize) },
                    true => unsafe { f.add(to as usize).cast::<*mut u8>().read_unaligned() },
                };
                unsafe { store_return(&returned, from, size as u32, dest)? };
            }
            Op::ReturnToLua(results) => return Ok(results as c_int),
        }
    }
    Err(Fault::Step("a program that does not return"))
}

/// Calls `helper`, of signature `shape`, with the operands `a`, and stores its result at
/// frame byte `ret_to` unless that is [`NO_AT`].
///
/// # Safety
/// `helpers` is a helper table of `Helper::ALL.len()` addresses (`Tier0Sig::helpers`) whose
/// entry for `helper` has signature `shape` (found by `compile`); `a` holds its operands;
/// `f` is the frame, holding the result's bytes at `ret_to` (checked by `compile`).
#[inline(always)]
unsafe fn call_helper(
    helpers: *const u64,
    helper: Helper,
    shape: Shape,
    a: &[u64; MAX_HELPER_ARGS],
    f: *mut u8,
    ret_to: At,
) {
    // SAFETY: the caller's contract: `helper.id()` is below the table's length, and the entry
    // is of `shape`; the result's bytes lie in the frame at `ret_to`.
    unsafe {
        let bits = shape.call(helpers.add(helper.id()).read(), a);
        if ret_to != NO_AT {
            write_le(f.add(ret_to as usize), bits, shape.ret_bytes());
        }
    }
}

/// Whether `program` fits tier 0's frame: at most [`OUT_MAX`] bytes of outgoing area and
/// [`STAGE_MAX`] of staging, aligned to at most 16. A larger one gets its stub at first call.
pub fn fits(program: &Program) -> bool {
    program.out_bytes as usize <= OUT_MAX && program.stage_bytes as usize <= STAGE_MAX && program.out_align <= 16
}

/// Runs a compiled program ([`compile`]) and returns its results; a fault (a bug in the
/// program or here, found when compiling or running) is raised as a Lua error naming it.
///
/// # Safety
/// `l` is running what a stub of the program would run as (a namespace closure, or the
/// `__call` of a function cdata), with its arguments on the stack; `helpers` is the state's
/// helper table for that call path; the [`CodeStore`] `code` was compiled into is alive (the
/// state's). May raise.
pub unsafe fn run_or_raise(l: *mut ffi::lua_State, code: &Result<Tier0Code, Fault>, helpers: *const u64) -> c_int {
    // SAFETY: the caller's contract is `run`'s; the fault is raised once `run` has returned,
    // with nothing owned alive but the message `cdata::raise` takes over.
    unsafe {
        let ran = match code {
            Ok(code) => run(l, code, helpers),
            Err(fault) => Err(*fault),
        };
        match ran {
            Ok(results) => results,
            Err(fault) => cdata::raise(l, format!("tier 0 cannot run this call (a bug): {fault:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Arg, Ext, Fault, Helper, Op, Shape, Word};
    use std::ffi::c_void;
    use std::os::raw::c_int;

    /// Every helper a stub program calls has a shape tier 0 calls it by, and the argument
    /// count error helper the one `run` calls it with.
    #[test]
    fn every_stub_helper_has_a_shape() {
        for h in Helper::ALL {
            let thunk_only = matches!(
                h,
                Helper::CallbackEnter
                    | Helper::CallbackCall
                    | Helper::CallbackLeave
                    | Helper::CallbackPcall
                    | Helper::CallbackResult
                    | Helper::ErrnoLocation
                    | Helper::ArgCount
            );
            assert!(thunk_only || Shape::of(h).is_some(), "{h:?}");
        }
        assert_eq!(Shape::of(Helper::CallbackPcall), None, "six parameters: no shape");
        assert_eq!(Shape::of(Helper::ArgCountError), Some(Shape::VoidOfPtrI32I32));
        assert_eq!(Shape::of(Helper::ToF32), Some(Shape::F32OfPtrI32));
        assert_eq!(Shape::of(Helper::PushF64), Some(Shape::VoidOfPtrF64));
    }

    /// What the probes below received.
    static SEEN: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

    unsafe extern "C-unwind" fn probe_f64(p: *mut c_void, idx: c_int) -> f64 {
        SEEN.lock().unwrap().extend([p as u64, idx.to_word()]);
        f64::from(idx) * 0.5
    }

    unsafe extern "C-unwind" fn probe_push_f32(p: *mut c_void, v: f32) {
        SEEN.lock().unwrap().extend([p as u64, v.to_word()]);
    }

    unsafe extern "C-unwind" fn probe_record(p: *mut c_void, idx: c_int, ctype: *mut c_void, dst: *mut c_void) {
        SEEN.lock().unwrap().extend([p as u64, idx.to_word(), ctype as u64, dst as u64]);
    }

    unsafe extern "C-unwind" fn probe_u32(_: *mut c_void, idx: c_int) -> u32 {
        idx as u32
    }

    /// A helper gets each argument as its declared type (a float in a float register, a
    /// negative `int` as itself) and its result comes back as its bits.
    #[test]
    fn shapes_pass_arguments_and_results_by_their_types() {
        // SAFETY: each probe is declared with exactly the shape it is called by.
        unsafe {
            SEEN.lock().unwrap().clear();
            let r = Shape::F64OfPtrI32.call(probe_f64 as *const () as u64, &[0x1234, (-3i32).to_word(), 0, 0]);
            assert_eq!(f64::from_word(r), -1.5);
            Shape::VoidOfPtrF32.call(probe_push_f32 as *const () as u64, &[7, 2.5f32.to_word(), 0, 0]);
            Shape::VoidOfPtrI32PtrPtr.call(probe_record as *const () as u64, &[1, 2, 3, 4]);
            let r = Shape::U32OfPtrI32.call(probe_u32 as *const () as u64, &[0, 0xffff_fffe, 0, 0]);
            assert_eq!(r, 0xffff_fffe, "a u32 result is zero-extended");
        }
        let seen = SEEN.lock().unwrap().clone();
        assert_eq!(seen, [0x1234, 0xffff_fffd, 7, 2.5f32.to_bits() as u64, 1, 2, 3, 4]);
        assert_eq!(Shape::F64OfPtrI32.ret_bytes(), 8);
        assert_eq!(Shape::F32OfPtrI32.ret_bytes(), 4);
        assert_eq!(Shape::VoidOfPtrF64.ret_bytes(), 0);
    }

    /// An address constant keeps its 56 bits, and one with more is not compiled (the stub is
    /// built instead) rather than cut.
    #[test]
    fn address_operands_keep_56_bits_and_refuse_more() {
        let addr = 0x00ab_cdef_0123_4567u64;
        let frame = [0u8; 8].as_mut_ptr();
        // SAFETY: an address operand reads neither the state nor the frame.
        assert_eq!(unsafe { Arg::addr(addr).unwrap().value(std::ptr::null_mut(), frame) }, Ok(addr));
        assert!(matches!(Arg::addr(1 << 56), Err(Fault::Unfit(_))));
    }

    /// Immediates widen as their parameter does; frame bytes read back with their size and
    /// widening.
    #[test]
    fn operands_decode_to_what_they_were_compiled_from() {
        let mut frame = [0x80u8, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0];
        let f = frame.as_mut_ptr();
        let l = std::ptr::null_mut();
        // SAFETY: every frame operand below lies in `frame`'s ten bytes.
        unsafe {
            assert_eq!(Arg::imm(-2, true).value(l, f), Ok(-2i64 as u64));
            assert_eq!(Arg::imm(-2, false).value(l, f), Ok(0xffff_fffe));
            assert_eq!(Arg::frame(3).value(l, f), Ok(f.add(3) as u64));
            assert_eq!(Arg::bytes(0, 1, Ext::Sign).value(l, f), Ok(0xffff_ff80));
            assert_eq!(Arg::bytes(0, 2, Ext::Zero).value(l, f), Ok(0xff80));
            assert_eq!(Arg::bytes(2, 8, Ext::Zero).value(l, f), Ok(0x0000_bc9a_7856_3412));
            assert_eq!(Arg::L.value(l, f), Ok(0));
        }
    }

    /// A conversion (`L` and the argument's index, for a 32-bit parameter) is one op with
    /// no operand kept; a call with other operands, or an index beyond 16 bits, keeps its
    /// operands, and both call the same helper with the same values.
    #[test]
    fn conversions_keep_their_operands_in_the_op() {
        use abi_model::lua::steps::{stub_program, Operand};
        use abi_model::lua::CodeEnv;
        use abi_model::{plan_call, CallConv, FloatKind, IntKind, Signature, Target, TypeTable};
        let t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        let dbl = t.float(FloatKind::Double);
        let sig = Signature::new(int, vec![int.into(), dbl.into()], false, CallConv::Cdecl);
        let mut program = stub_program(&plan_call(&t, &sig, &[]).unwrap(), 1);
        let env = CodeEnv {
            helpers: Vec::new(),
            arg_ctypes: vec![0x1000, 0x2000],
            ret_ctype: 0x3000,
            callback_data: 0,
            call_slots: None,
        };
        let mut store = super::CodeStore::default();
        let code = super::compile(&program, &env, &mut store).unwrap();
        // SAFETY: the code was compiled into `store`, which is alive here.
        let (ops, args) = unsafe { (code.ops(), code.args()) };
        let l_imm: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                Op::HelperOfLImm { helper, imm, .. } => Some((*helper, *imm)),
                _ => None,
            })
            .collect();
        assert_eq!(l_imm, [(Helper::ToI32, 1), (Helper::ToF64, 2)]);
        // The calls with other operands keep them: the function's address (L), errno's
        // restore (L, ret ctype), after the call (L, ret ctype, the saved thread), the push.
        assert_eq!(args.len(), 1 + 2 + 3 + 2, "{args:?}");
        let first_words = format!("{ops:?} {args:?}");
        let first_code = code;

        // Lua index 40000 does not fit the op: the call keeps `L` and the immediate.
        for step in &mut program.steps {
            if let abi_model::lua::steps::Step::CallHelper { helper: Helper::ToI32, args, .. } = step {
                args[1] = Operand::Imm(40_000);
            }
        }
        let code = super::compile(&program, &env, &mut store).unwrap();
        // SAFETY: the code was compiled into `store`, which is alive here.
        let (ops, args) = unsafe { (code.ops(), code.args()) };
        let first = ops.iter().find_map(|op| match op {
            Op::Helper { helper: Helper::ToI32, first, n: 2, .. } => Some(*first as usize),
            _ => None,
        });
        let first = first.expect("the conversion keeps its operands");
        assert_eq!(args[first..first + 2], [Arg::L, Arg::imm(40_000, false)]);
        // The store keeps the first program's words where they were.
        // SAFETY: the code was compiled into `store`, which is alive here.
        let (ops, args) = unsafe { (first_code.ops(), first_code.args()) };
        assert_eq!(format!("{ops:?} {args:?}"), first_words);
    }

    /// Every compiled program is kept for as long as its function lives, and the first call
    /// of a signature pays for the pages it touches: the ops stay small.
    #[test]
    fn compiled_ops_stay_small() {
        assert!(std::mem::size_of::<Op>() <= 8, "an op is {} bytes", std::mem::size_of::<Op>());
        assert!(std::mem::size_of::<Arg>() <= 8, "an operand is {} bytes", std::mem::size_of::<Arg>());
    }
}
