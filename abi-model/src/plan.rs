//! The plan vocabulary: where every argument and the return value go for one call.
//!
//! A [`CallPlan`] is computed once per signature (per list of actual argument types, for a
//! variadic call) by the target's ABI module and is then only read: by a plan-driven caller or
//! callee in the emulator, by the backends that lower it to machine code, and by the snapshot
//! printer. Nothing outside this crate decides a location.

use crate::inline_list::InlineList;
use std::fmt;

/// A general-purpose register, numbered as the ISA encodes it: 0 = eax/rax, 1 = ecx/rcx,
/// 2 = edx/rdx, 3 = ebx/rbx, 4 = esp/rsp, 5 = ebp/rbp, 6 = esi/rsi, 7 = edi/rdi, 8..15 = r8..r15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gpr(pub u8);

impl Gpr {
    /// eax / rax
    pub const AX: Gpr = Gpr(0);
    /// ecx / rcx
    pub const CX: Gpr = Gpr(1);
    /// edx / rdx
    pub const DX: Gpr = Gpr(2);
    /// ebx / rbx
    pub const BX: Gpr = Gpr(3);
    /// esp / rsp
    pub const SP: Gpr = Gpr(4);
    /// ebp / rbp
    pub const BP: Gpr = Gpr(5);
    /// esi / rsi
    pub const SI: Gpr = Gpr(6);
    /// edi / rdi
    pub const DI: Gpr = Gpr(7);
    /// r8
    pub const R8: Gpr = Gpr(8);
    /// r9
    pub const R9: Gpr = Gpr(9);
    /// r10
    pub const R10: Gpr = Gpr(10);
    /// r11
    pub const R11: Gpr = Gpr(11);
    /// r12
    pub const R12: Gpr = Gpr(12);
    /// r13
    pub const R13: Gpr = Gpr(13);
    /// r14
    pub const R14: Gpr = Gpr(14);
    /// r15
    pub const R15: Gpr = Gpr(15);

    /// The register's name at full width for a register `width` of 4 or 8 bytes.
    pub fn name(self, width: u32) -> &'static str {
        const R64: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15",
        ];
        const R32: [&str; 16] = [
            "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d",
            "r14d", "r15d",
        ];
        let i = usize::from(self.0 & 15);
        if width == 8 {
            R64[i]
        } else {
            R32[i]
        }
    }
}

/// An SSE register xmm0..xmm15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xmm(pub u8);

/// Where one piece of a value sits at the moment of the call instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// In a general-purpose register (the piece's bytes in its low bytes).
    Gpr(Gpr),
    /// In the low bytes of an SSE register.
    Xmm(Xmm),
    /// In the outgoing argument area: at `[sp + offset]` when the call instruction executes
    /// (so at `[sp + pointer size + offset]` on the callee's entry, past the return address).
    Stack {
        /// Byte offset from the stack pointer.
        offset: u32,
    },
}

/// How the caller widens a small integer piece to the size of its slot. The callee must not
/// rely on it (gcc and MSVC callees re-extend), so it matters only to what a caller writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ext {
    /// No widening: the bytes above the piece are unspecified.
    None,
    /// Sign-extended to 32 bits.
    Sign,
    /// Zero-extended to 32 bits.
    Zero,
}

impl Ext {
    /// The widening the writer of a value of `kind` gives it in a 32- or 64-bit register or
    /// slot, on every target: `bool` zero-extended, 8- and 16-bit integers by their
    /// signedness, anything else as it is. The reader must not rely on it: gcc and MSVC
    /// readers re-extend (gcc's fixture callers store only `al` of a `signed char` result;
    /// the psABIs leave the upper bits unspecified, Microsoft's x64 page calls them
    /// undefined). Writing them costs nothing and serves readers that assume them (clang
    /// callees of 8- and 16-bit parameters).
    pub fn widening(kind: ValueKind) -> Ext {
        match kind {
            ValueKind::Bool => Ext::Zero,
            ValueKind::Int { size, signed: true } if size < 4 => Ext::Sign,
            ValueKind::Int { size, signed: false } | ValueKind::TypedInt { size } if size < 4 => Ext::Zero,
            _ => Ext::None,
        }
    }
}

/// `size` bytes of the C value, starting at byte `offset` of it, placed at `loc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// Where the bytes go.
    pub loc: Loc,
    /// First byte of the value this part carries.
    pub offset: u32,
    /// Number of bytes (for a stack part of an aggregate: the whole copy).
    pub size: u32,
    /// Widening of a small integer in a register or stack slot.
    pub ext: Ext,
}

impl Default for Part {
    /// What the unused slots of [`Parts`] hold: nothing placed anywhere.
    fn default() -> Part {
        Part { loc: Loc::Stack { offset: 0 }, offset: 0, size: 0, ext: Ext::None }
    }
}

/// The most parts one argument is split into: two eightbytes (SysV records and `__int128`
/// in registers; an SSEUP eightbyte extends its SSE part), or a Win64 variadic floating
/// argument's XMM and integer copies.
pub const MAX_PARTS: usize = 2;

/// The parts of one directly passed argument, kept inline (no allocation per argument).
pub type Parts = InlineList<Part, MAX_PARTS>;

/// What kind of C value an argument or return value is, after the adjustments the ABI
/// module made (array and function parameters decay to pointers, enums to their integer
/// type, varargs promoted). This is all a code generator needs to pick a conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `void` (returns only).
    Void,
    /// `bool` / `_Bool` (1 byte, 0 or 1).
    Bool,
    /// An integer of `size` bytes (1, 2, 4 or 8; 16 on x86-64: gcc's `__int128`, `mode(TI)`).
    Int {
        /// Bytes.
        size: u8,
        /// Signedness.
        signed: bool,
    },
    /// `float`
    F32,
    /// `double`
    F64,
    /// A data or function pointer.
    Pointer,
    /// `float complex` (two floats).
    ComplexF32,
    /// `double complex` (two doubles).
    ComplexF64,
    /// An integer of `size` bytes (2, 4 or 8) to the ABI, passed and returned as the unsigned
    /// integer of that size (the reader extends it), whose value is not a number but is read
    /// and written as its C type says: a 4-byte pointer on a 64-bit target (`__ptr32`, 4) or
    /// a bool of more than one byte (`_Bool int`: 2, 4 or 8).
    TypedInt {
        /// Bytes.
        size: u8,
    },
    /// A struct or union by value; also a gcc vector type (its bytes as one block: which
    /// registers carry them is the ABI module's rule, see [`crate::AbiValue::vector`]).
    Record {
        /// `sizeof`
        size: u32,
        /// `_Alignof`
        align: u32,
    },
}

impl ValueKind {
    /// Size in bytes on a target whose pointers are `ptr` bytes.
    pub fn size(self, ptr: u32) -> u32 {
        match self {
            ValueKind::Void => 0,
            ValueKind::Bool => 1,
            ValueKind::Int { size, .. } | ValueKind::TypedInt { size } => u32::from(size),
            ValueKind::F32 => 4,
            ValueKind::F64 => 8,
            ValueKind::Pointer => ptr,
            ValueKind::ComplexF32 => 8,
            ValueKind::ComplexF64 => 16,
            ValueKind::Record { size, .. } => size,
        }
    }
}

/// How one argument is passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgPass {
    /// The value's bytes sit directly in these places. Invariant: the parts never overlap in
    /// the value, except that a Win64 variadic floating argument appears twice (its XMM
    /// register and its integer register carry the same 8 bytes).
    Direct(Parts),
    /// The caller copies the value to `[sp + copy_at]` (inside [`CallPlan::copy_area`]) and
    /// passes the copy's address at `ptr` (Win64 aggregates other than 1, 2, 4 or 8 bytes).
    Indirect {
        /// Where the pointer goes.
        ptr: Loc,
        /// Offset from sp at the call of the caller-made copy (16-byte aligned).
        copy_at: u32,
    },
}

/// One argument's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgPlan {
    /// The value as passed (after adjustments and promotions).
    pub value: ValueKind,
    /// Where it goes.
    pub pass: ArgPass,
}

/// Where a return value comes back. A closed list, as libffi's return kinds: each backend
/// has one short sequence per variant. Sizes and offsets follow from [`RetPlan::value`]: the
/// first register holds bytes 0..8 (0..4 for `eax` of `edx:eax`), the second the rest. A
/// single-register location of a value wider than the register (SysV: a 16-byte record whose
/// second eightbyte is all padding, NO_CLASS) carries bytes 0..8; the rest is padding that no
/// register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetLoc {
    /// Nothing is returned.
    Void,
    /// `eax` / `rax` alone: integers, pointers, small aggregates (low `size` bytes).
    Gpr,
    /// `edx:eax` (x86): 64-bit integers, 8-byte aggregates on Win32, `float complex`.
    EdxEax,
    /// x87 `st(0)` (x86): `float` and `double`; the caller pops it.
    St0,
    /// `xmm0` alone (x86-64): `float`, `double`, SSE aggregates of at most 8 bytes.
    Xmm0,
    /// All 16 bytes of `xmm0` (x86-64): a 16-byte vector (SysV SSE+SSEUP, Windows `__m128`),
    /// or a SysV record of one.
    Xmm0Full,
    /// `xmm0` then `xmm1` (SysV): two SSE eightbytes.
    Xmm0Xmm1,
    /// `rax` then `rdx` (SysV): two INTEGER eightbytes.
    RaxRdx,
    /// `rax` then `xmm0` (SysV): INTEGER then SSE eightbyte.
    RaxXmm0,
    /// `xmm0` then `rax` (SysV): SSE then INTEGER eightbyte.
    Xmm0Rax,
    /// Through memory: the caller passes a buffer's address at `ptr` (the hidden first
    /// argument); the callee fills the buffer and returns its address in `eax`/`rax`.
    Sret {
        /// Where the hidden pointer goes.
        ptr: Loc,
    },
}

/// The return value's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetPlan {
    /// The value as returned.
    pub value: ValueKind,
    /// Where.
    pub loc: RetLoc,
    /// How the callee widens a small integer result in `eax`/`rax` (see [`Ext::widening`]).
    /// No target obliges it and the caller must not rely on it: it reads only the value's
    /// bytes. It matters only to what a callee (a generated callback) writes.
    pub ext: Ext,
}

impl RetPlan {
    /// The plan of a `value` returned at `loc`, widened as every target's callee widens it.
    pub fn new(value: ValueKind, loc: RetLoc) -> RetPlan {
        RetPlan { value, loc, ext: Ext::widening(value) }
    }
}

/// Everything a caller, a callee or a backend needs to know about one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPlan {
    /// Pointer size / register width in bytes (4 or 8).
    pub ptr_size: u32,
    /// One entry per actual argument, fixed ones first, then the variadic ones.
    pub args: Vec<ArgPlan>,
    /// Number of fixed (declared) parameters; `args[fixed..]` are variadic.
    pub fixed: usize,
    /// The return value.
    pub ret: RetPlan,
    /// Bytes of the outgoing argument area at `[sp, sp + stack_bytes)` at the call,
    /// shadow space included.
    pub stack_bytes: u32,
    /// Alignment the stack pointer must have at the call instruction.
    pub stack_align: u32,
    /// Win64: the 32 bytes of home space at `[sp, sp + 32)` the callee may use. 0 elsewhere.
    pub shadow: u32,
    /// Caller-made copies for [`ArgPass::Indirect`] arguments: `[sp + copy_area.0,
    /// sp + copy_area.0 + copy_area.1)`. Above the argument area, 16-byte aligned (each copy at
    /// its record's alignment when larger: see [`CallPlan::frame_align`]).
    pub copy_area: (u32, u32),
    /// Bytes of stack the callee removes with `ret n` (stdcall, fastcall, thiscall; the
    /// hidden return pointer on i386 Linux).
    pub callee_pops: u32,
    /// SysV variadic calls: the value `al` must hold (an upper bound on the vector registers
    /// used). `None` when `al` is not part of the convention.
    pub al: Option<u8>,
}

impl CallPlan {
    /// Bytes the caller reserves below its frame for the call: the argument area and the
    /// copies, rounded up to the stack alignment.
    pub fn frame_bytes(&self) -> u32 {
        let end = (self.copy_area.0 + self.copy_area.1).max(self.stack_bytes);
        end.next_multiple_of(self.frame_align())
    }

    /// The alignment of the caller's outgoing frame: [`CallPlan::stack_align`], or more when a
    /// by-reference copy's record asks more (Win64: an `aligned(32)` record's copy sits at a
    /// multiple of 32 from sp, while sp at the call need only be 16-aligned).
    pub fn frame_align(&self) -> u32 {
        self.args
            .iter()
            .filter_map(|a| match (&a.pass, a.value) {
                (ArgPass::Indirect { .. }, ValueKind::Record { align, .. }) => Some(align),
                _ => None,
            })
            .fold(self.stack_align, u32::max)
    }

    /// Every location the plan writes before the call, hidden return pointer included.
    pub fn locations(&self) -> impl Iterator<Item = Loc> + '_ {
        let sret = match self.ret.loc {
            RetLoc::Sret { ptr } => Some(ptr),
            _ => None,
        };
        sret.into_iter().chain(self.args.iter().flat_map(|a| match &a.pass {
            ArgPass::Direct(parts) => parts.iter().map(|p| p.loc).collect::<Vec<_>>(),
            ArgPass::Indirect { ptr, .. } => vec![*ptr],
        }))
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Gpr(g) => write!(f, "{}", g.name(8)),
            Loc::Xmm(x) => write!(f, "xmm{}", x.0),
            Loc::Stack { offset } => write!(f, "[sp+{offset}]"),
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueKind::Void => f.write_str("void"),
            ValueKind::Bool => f.write_str("bool"),
            ValueKind::Int { size, signed } => write!(f, "{}{}", if *signed { "i" } else { "u" }, u32::from(*size) * 8),
            ValueKind::F32 => f.write_str("f32"),
            ValueKind::F64 => f.write_str("f64"),
            ValueKind::Pointer => f.write_str("ptr"),
            ValueKind::TypedInt { size } => write!(f, "t{}", u32::from(*size) * 8),
            ValueKind::ComplexF32 => f.write_str("cf32"),
            ValueKind::ComplexF64 => f.write_str("cf64"),
            ValueKind::Record { size, align } => write!(f, "rec{size}/{align}"),
        }
    }
}

impl CallPlan {
    /// Names a location with the register width of this plan (`eax` on x86, `rax` on x86-64).
    pub fn loc_name(&self, loc: Loc) -> String {
        match loc {
            Loc::Gpr(g) => g.name(self.ptr_size).to_string(),
            other => other.to_string(),
        }
    }

    /// Names a part's location: a GPR by the width of the bytes it carries (`edi` for an
    /// `int` on x86-64, `rdi` for a pointer).
    fn part_loc_name(&self, p: &Part) -> String {
        match p.loc {
            Loc::Gpr(g) => g.name(if p.size <= 4 { 4 } else { self.ptr_size }).to_string(),
            other => other.to_string(),
        }
    }

    fn fmt_part(&self, p: &Part) -> String {
        let ext = match p.ext {
            Ext::None => "",
            Ext::Sign => " sx",
            Ext::Zero => " zx",
        };
        format!("{}={}..{}{}", self.part_loc_name(p), p.offset, p.offset + p.size, ext)
    }

    /// One line per argument: `#i kind: parts`.
    pub fn describe_arg(&self, i: usize) -> String {
        let a = &self.args[i];
        let how = match &a.pass {
            ArgPass::Direct(parts)
                if parts.len() == 1 && parts[0].offset == 0 && parts[0].size == a.value.size(self.ptr_size) =>
            {
                let p = &parts[0];
                let ext = match p.ext {
                    Ext::None => "",
                    Ext::Sign => " sx",
                    Ext::Zero => " zx",
                };
                format!("{}{ext}", self.part_loc_name(p))
            }
            // The same whole value in several places (a Win64 variadic double in its XMM and
            // its integer register): name the places.
            ArgPass::Direct(parts) if parts.iter().all(|p| p.offset == 0 && p.size == a.value.size(self.ptr_size)) => {
                parts.iter().map(|p| self.part_loc_name(p)).collect::<Vec<_>>().join(" and ")
            }
            ArgPass::Direct(parts) => parts.iter().map(|p| self.fmt_part(p)).collect::<Vec<_>>().join(" + "),
            ArgPass::Indirect { ptr, copy_at } => format!("&copy[sp+{copy_at}] in {}", self.loc_name(*ptr)),
        };
        let va = if i >= self.fixed { " (vararg)" } else { "" };
        format!("{} {how}{va}", a.value)
    }

    /// The return location in words.
    pub fn describe_ret(&self) -> String {
        let loc = match self.ret.loc {
            RetLoc::Void => "-".to_string(),
            // Named by the width the value occupies: `eax` for an int on x86-64, `rax` for
            // a pointer, as the arguments are.
            RetLoc::Gpr => {
                Gpr::AX.name(if self.ret.value.size(self.ptr_size) <= 4 { 4 } else { self.ptr_size }).to_string()
            }
            RetLoc::EdxEax => "edx:eax".into(),
            RetLoc::St0 => "st0".into(),
            RetLoc::Xmm0 => "xmm0".into(),
            RetLoc::Xmm0Full => "xmm0(16)".into(),
            RetLoc::Xmm0Xmm1 => "xmm0,xmm1".into(),
            RetLoc::RaxRdx => "rax,rdx".into(),
            RetLoc::RaxXmm0 => "rax,xmm0".into(),
            RetLoc::Xmm0Rax => "xmm0,rax".into(),
            RetLoc::Sret { ptr } => format!("sret via {}", self.loc_name(ptr)),
        };
        format!("{} {loc}", self.ret.value)
    }
}

/// The plan as compact text, one argument a line: the snapshot format.
impl fmt::Display for CallPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..self.args.len() {
            writeln!(f, "  arg{i}: {}", self.describe_arg(i))?;
        }
        writeln!(f, "  ret: {}", self.describe_ret())?;
        write!(f, "  stack {} align {}", self.stack_bytes, self.stack_align)?;
        if self.shadow > 0 {
            write!(f, " shadow {}", self.shadow)?;
        }
        if self.copy_area.1 > 0 {
            write!(f, " copies {} at [sp+{}]", self.copy_area.1, self.copy_area.0)?;
        }
        if self.callee_pops > 0 {
            write!(f, " callee-pops {}", self.callee_pops)?;
        }
        if let Some(al) = self.al {
            write!(f, " al={al}")?;
        }
        Ok(())
    }
}
