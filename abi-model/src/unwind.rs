//! How to unwind through a generated function, as data: what each prologue instruction does
//! to the stack and the callee-saved registers ([`FrameUnwind`]), the frame state that
//! follows at any code offset ([`FrameState`]), and the two encodings unwinders read: DWARF
//! call frame information in `.eh_frame` form (System V x86-64 and i386, for libgcc's
//! `__register_frame`) and Win64 `UNWIND_INFO` (for `RtlAddFunctionTable`).
//!
//! A code generator records one [`PrologueOp`] right after emitting each instruction that
//! moves the stack pointer, saves a register or sets the frame pointer; it decides nothing
//! else here. The rules of both formats live in this module, each on the line that applies it.
//!
//! ```
//! use abi_model::unwind::{FrameOp, FrameUnwind};
//! use abi_model::{Arch, Gpr};
//! // push rbp; mov rbp, rsp; sub rsp, 32
//! let mut f = FrameUnwind::new(Arch::X86_64);
//! f.record(1, FrameOp::PushGpr(Gpr::BP));
//! f.record(4, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
//! f.record(8, FrameOp::Alloc(32));
//! let s = f.after_prologue().unwrap();
//! assert_eq!(s.to_string(), "cfa = rbp+16, rbp at cfa-16");
//! ```

use crate::plan::{Gpr, Xmm};
use crate::target::Arch;
use std::fmt;

/// What one prologue instruction does, seen by an unwinder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameOp {
    /// `push reg`: the stack pointer goes down one word and the register's value is there.
    PushGpr(Gpr),
    /// `sub sp, n` (or several of them, or a probing loop that ends `n` bytes lower).
    Alloc(u32),
    /// `mov reg, sp` (offset 0) or `lea reg, [sp + offset]`: the frame pointer is set, and the
    /// frame's address is taken from it from now on, however the stack pointer moves.
    SetFramePointer {
        /// The frame pointer register.
        reg: Gpr,
        /// `reg - sp` right after the instruction.
        offset: u32,
    },
    /// `movaps [sp + offset], xmm`: all 128 bits of a callee-saved XMM register stored.
    SaveXmm {
        /// The register saved.
        reg: Xmm,
        /// Where, from the stack pointer at the instruction.
        offset: u32,
    },
    /// `and sp, -n`: the stack pointer moves down by an amount known only at run time. Only
    /// after a frame pointer is set (Microsoft "x64 stack usage": a function that allocates
    /// dynamically must use a frame pointer; DWARF has no rule for a run-time amount either).
    Realign(u32),
}

/// One prologue instruction: its effect and the code offset just past it (where the effect
/// has happened: DWARF advances the location there, Win64 calls it "offset of the end of
/// the instruction ... plus 1").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrologueOp {
    /// Offset from the function's first byte of the instruction after this one.
    pub end: u32,
    /// What it did.
    pub op: FrameOp,
}

/// The unwind description of one generated function: its prologue, op by op. Everything
/// after the prologue keeps the frame as the prologue left it (the epilogue undoes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameUnwind {
    /// The architecture (word size, register numbering of the encodings).
    pub arch: Arch,
    /// The prologue's ops, in code order.
    pub ops: Vec<PrologueOp>,
}

/// Where the canonical frame address (CFA: the stack pointer before the call that entered
/// the function, i.e. just above its return address) is: `base + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cfa {
    /// The register it is computed from (the stack pointer, or the frame pointer once set).
    pub base: Gpr,
    /// Bytes above that register.
    pub offset: u32,
}

/// A register whose caller value the frame keeps on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SavedReg {
    /// A general-purpose register (a word).
    Gpr(Gpr),
    /// An XMM register (16 bytes).
    Xmm(Xmm),
}

/// Where a saved register's caller value is: at `CFA + cfa_offset` (always below the CFA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Saved {
    /// The register.
    pub reg: SavedReg,
    /// Its offset from the CFA (negative).
    pub cfa_offset: i32,
}

/// The frame at one code offset: how to find the CFA and the caller's saved registers. The
/// return address is always at `CFA - word`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameState {
    /// How to compute the CFA.
    pub cfa: Cfa,
    /// The registers saved so far, in the order they were saved.
    pub saved: Vec<Saved>,
}

/// Why a frame description cannot be used or encoded. Each is a bug of the generator that
/// recorded it (or a limit of the format), reported instead of registering wrong data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnwindError {
    /// An op at or before the previous op's end.
    OutOfOrder {
        /// The op's end offset.
        end: u32,
        /// The previous op's.
        after: u32,
    },
    /// The stack pointer moves by a run-time amount while the CFA is still computed from it.
    RealignWithoutFramePointer {
        /// The op's end offset.
        end: u32,
    },
    /// An op whose stack offset is unknown because the stack was realigned (an XMM save
    /// after `and sp, -n`, or a second frame pointer).
    AfterRealign {
        /// The op's end offset.
        end: u32,
    },
    /// A value that is not a multiple of what the format scales it by.
    Misaligned {
        /// What (`"allocation"`, `"xmm save offset"`, ...).
        what: &'static str,
        /// The value.
        value: i64,
        /// The multiple it must be.
        multiple: u32,
    },
    /// A value the format cannot encode.
    TooLarge {
        /// What (`"prologue"`, `"frame pointer offset"`, ...).
        what: &'static str,
        /// The value.
        value: u64,
        /// The largest the format takes.
        limit: u64,
    },
    /// An op the format has no code for at this position, or on this architecture.
    NotEncodable {
        /// The op's end offset.
        end: u32,
        /// Why.
        why: &'static str,
    },
}

impl fmt::Display for UnwindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnwindError::OutOfOrder { end, after } => write!(f, "prologue op ending at {end} is not after {after}"),
            UnwindError::RealignWithoutFramePointer { end } => {
                write!(f, "the stack is realigned at {end} before a frame pointer is set")
            }
            UnwindError::AfterRealign { end } => write!(f, "prologue op ending at {end} follows a realignment"),
            UnwindError::Misaligned { what, value, multiple } => {
                write!(f, "{what} {value} is not a multiple of {multiple}")
            }
            UnwindError::TooLarge { what, value, limit } => write!(f, "{what} of {value} exceeds {limit}"),
            UnwindError::NotEncodable { end, why } => write!(f, "prologue op ending at {end}: {why}"),
        }
    }
}

impl std::error::Error for UnwindError {}

/// The frame as an op walk sees it.
#[derive(Clone, Debug)]
struct Walk {
    state: FrameState,
    /// `CFA - sp` while the stack pointer is at a known distance from the CFA.
    depth: Option<u32>,
    /// The frame pointer and `CFA - fp`, once set.
    fp: Option<(Gpr, u32)>,
}

impl FrameUnwind {
    /// An empty description (a function without a prologue: CFA = sp + word).
    pub fn new(arch: Arch) -> FrameUnwind {
        FrameUnwind { arch, ops: Vec::new() }
    }

    /// Records an op whose instruction ends at `end`.
    pub fn record(&mut self, end: u32, op: FrameOp) {
        self.ops.push(PrologueOp { end, op });
    }

    /// Bytes in a stack word (and a pushed register, and the return address).
    pub fn word(&self) -> u32 {
        match self.arch {
            Arch::X86 => 4,
            Arch::X86_64 => 8,
        }
    }

    /// The prologue's length: the end of its last op.
    pub fn prologue_size(&self) -> u32 {
        self.ops.last().map_or(0, |o| o.end)
    }

    /// The state at function entry: the return address just pushed.
    fn entry(&self) -> Walk {
        let w = self.word();
        Walk {
            state: FrameState { cfa: Cfa { base: Gpr::SP, offset: w }, saved: Vec::new() },
            depth: Some(w),
            fp: None,
        }
    }

    /// Applies one op to the walk.
    fn step(&self, walk: &mut Walk, op: PrologueOp) -> Result<(), UnwindError> {
        let w = self.word();
        let end = op.end;
        match op.op {
            FrameOp::PushGpr(reg) => {
                let depth = walk.depth.ok_or(UnwindError::AfterRealign { end })? + w;
                walk.depth = Some(depth);
                walk.state.saved.push(Saved { reg: SavedReg::Gpr(reg), cfa_offset: -(depth as i32) });
                if walk.fp.is_none() {
                    walk.state.cfa.offset = depth;
                }
            }
            FrameOp::Alloc(n) => {
                if let Some(depth) = walk.depth {
                    let depth = depth.checked_add(n).ok_or(UnwindError::TooLarge {
                        what: "frame",
                        value: u64::from(depth) + u64::from(n),
                        limit: u32::MAX.into(),
                    })?;
                    walk.depth = Some(depth);
                    if walk.fp.is_none() {
                        walk.state.cfa.offset = depth;
                    }
                }
            }
            FrameOp::SetFramePointer { reg, offset } => {
                let depth = walk.depth.ok_or(UnwindError::AfterRealign { end })?;
                let above = depth
                    .checked_sub(offset)
                    .ok_or(UnwindError::NotEncodable { end, why: "the frame pointer is above the frame address" })?;
                walk.fp = Some((reg, above));
                walk.state.cfa = Cfa { base: reg, offset: above };
            }
            FrameOp::SaveXmm { reg, offset } => {
                let depth = walk.depth.ok_or(UnwindError::AfterRealign { end })?;
                let at = i64::from(offset) - i64::from(depth);
                if at + 16 > 0 {
                    return Err(UnwindError::NotEncodable { end, why: "an xmm save at or above the frame address" });
                }
                walk.state.saved.push(Saved { reg: SavedReg::Xmm(reg), cfa_offset: at as i32 });
            }
            FrameOp::Realign(_) => {
                if walk.fp.is_none() {
                    return Err(UnwindError::RealignWithoutFramePointer { end });
                }
                walk.depth = None;
            }
        }
        Ok(())
    }

    /// Walks the ops that end at or before `offset`, checking their order.
    fn walk_to(&self, offset: u32) -> Result<Walk, UnwindError> {
        let mut walk = self.entry();
        let mut after = 0;
        for (i, op) in self.ops.iter().enumerate() {
            if i > 0 && op.end <= after {
                return Err(UnwindError::OutOfOrder { end: op.end, after });
            }
            after = op.end;
            if op.end > offset {
                break;
            }
            self.step(&mut walk, *op)?;
        }
        Ok(walk)
    }

    /// The frame at code offset `offset` (the address of the next instruction to run, minus
    /// the function's start): every op ending at or before it has happened.
    pub fn state_at(&self, offset: u32) -> Result<FrameState, UnwindError> {
        Ok(self.walk_to(offset)?.state)
    }

    /// The frame after the prologue, which the body keeps up to the epilogue.
    pub fn after_prologue(&self) -> Result<FrameState, UnwindError> {
        self.validate()?;
        self.state_at(self.prologue_size())
    }

    /// Checks the whole prologue (order, realignment only after a frame pointer).
    pub fn validate(&self) -> Result<(), UnwindError> {
        self.walk_to(u32::MAX).map(|_| ())
    }

    /// DWARF register number of a general-purpose register (System V psABIs: x86-64
    /// Figure 3.36 numbers rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8-r15 as 0-15; i386
    /// numbers them as the instruction encoding does).
    fn dwarf_gpr(&self, r: Gpr) -> u8 {
        const X64: [u8; 16] = [0, 2, 1, 3, 7, 6, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15];
        match self.arch {
            Arch::X86 => r.0,
            Arch::X86_64 => X64[usize::from(r.0 & 15)],
        }
    }

    /// DWARF register number of an XMM register (x86-64: 17-32; i386: 21-28).
    fn dwarf_xmm(&self, r: Xmm) -> u8 {
        match self.arch {
            Arch::X86 => 21 + r.0,
            Arch::X86_64 => 17 + r.0,
        }
    }

    /// DWARF number of the return address column (x86-64: 16, the rip column; i386: 8, eip).
    fn dwarf_ra(&self) -> u8 {
        match self.arch {
            Arch::X86 => 8,
            Arch::X86_64 => 16,
        }
    }

    /// One CIE and one FDE for a function at `pc_begin` of `code_len` bytes, in the form of an
    /// `.eh_frame` section (ending with the zero terminator libgcc's `__register_frame`
    /// walks to). Addresses are absolute (`DW_EH_PE_absptr`), one word each.
    pub fn eh_frame(&self, pc_begin: u64, code_len: u64) -> Result<Vec<u8>, UnwindError> {
        self.validate()?;
        let w = self.word() as usize;
        let sp = self.dwarf_gpr(Gpr::SP);
        let ra = self.dwarf_ra();
        // One buffer, each record's length written in place once its body is complete: a
        // small function's run is under 96 bytes, so nothing grows.
        let mut out = Vec::with_capacity(96 + 2 * self.ops.len());

        // CIE: version 1, augmentation "zR" (augmentation data length, then the FDE pointer
        // encoding), code alignment 1, data alignment -word, the return address column.
        let cie = begin_record(&mut out);
        out.extend_from_slice(&[0, 0, 0, 0, 1]);
        out.extend_from_slice(b"zR\0");
        uleb(&mut out, 1);
        sleb(&mut out, -(w as i64));
        out.push(ra);
        uleb(&mut out, 1);
        out.push(DW_EH_PE_ABSPTR);
        // At entry: CFA = sp + word, the return address at CFA - word.
        out.push(DW_CFA_DEF_CFA);
        uleb(&mut out, sp.into());
        uleb(&mut out, w as u64);
        out.push(DW_CFA_OFFSET | ra);
        uleb(&mut out, 1);
        end_record(&mut out, cie, w);

        // FDE: the CIE pointer is the distance from this field back to the CIE.
        let fde = begin_record(&mut out);
        let cie_pointer = out.len() as u32;
        out.extend_from_slice(&cie_pointer.to_le_bytes());
        word_bytes(&mut out, pc_begin, w);
        word_bytes(&mut out, code_len, w);
        uleb(&mut out, 0);
        self.cfa_program(&mut out)?;
        end_record(&mut out, fde, w);
        out.extend_from_slice(&[0; 4]);
        Ok(out)
    }

    /// The FDE's call frame instructions: one advance and the rules each op changes.
    fn cfa_program(&self, program: &mut Vec<u8>) -> Result<(), UnwindError> {
        let w = self.word() as i32;
        let mut walk = self.entry();
        let mut at = 0u32;
        for op in &self.ops {
            let (old, saved_before) = (walk.state.cfa, walk.state.saved.len());
            self.step(&mut walk, *op)?;
            // The advance to this op, then its rules; both dropped when it changes none.
            let row = program.len();
            advance(program, op.end - at);
            let rules = program.len();
            let out = &mut *program;
            let new = walk.state.cfa;
            if new.base != old.base && new.offset != old.offset {
                out.push(DW_CFA_DEF_CFA);
                uleb(out, self.dwarf_gpr(new.base).into());
                uleb(out, new.offset.into());
            } else if new.base != old.base {
                out.push(DW_CFA_DEF_CFA_REGISTER);
                uleb(out, self.dwarf_gpr(new.base).into());
            } else if new.offset != old.offset {
                out.push(DW_CFA_DEF_CFA_OFFSET);
                uleb(out, new.offset.into());
            }
            for saved in &walk.state.saved[saved_before..] {
                // DW_CFA_offset's operand is factored by the data alignment (-word).
                if saved.cfa_offset % w != 0 {
                    return Err(UnwindError::Misaligned {
                        what: "saved register offset",
                        value: saved.cfa_offset.into(),
                        multiple: w as u32,
                    });
                }
                let reg = match saved.reg {
                    SavedReg::Gpr(r) => self.dwarf_gpr(r),
                    SavedReg::Xmm(r) => self.dwarf_xmm(r),
                };
                out.push(DW_CFA_OFFSET | reg);
                uleb(out, u64::from((-saved.cfa_offset / w) as u32));
            }
            // An op that changes no rule (an allocation below the frame pointer) needs no row.
            if program.len() == rules {
                program.truncate(row);
            } else {
                at = op.end;
            }
        }
        Ok(())
    }

    /// The Win64 `UNWIND_INFO` of the function (version 1, no handler, no chained info),
    /// padded to a multiple of 4 bytes, as `RtlAddFunctionTable`'s `UnwindData` points to.
    pub fn win64_unwind_info(&self) -> Result<Vec<u8>, UnwindError> {
        if self.arch != Arch::X86_64 {
            return Err(UnwindError::NotEncodable { end: 0, why: "Win64 unwind codes describe x86-64 code only" });
        }
        self.validate()?;
        let mut walk = self.entry();
        // Each op's codes, in prologue order; reversed below.
        let mut groups: Vec<Vec<[u8; 2]>> = Vec::new();
        let mut frame: Option<(Gpr, u8)> = None;
        // `sp` when the frame pointer was set (`fp - 16 * FrameOffset`): the base of
        // SAVE_XMM128 offsets once a frame pointer exists.
        let mut base_depth: Option<u32> = None;
        let mut others_seen = false;
        let mut size = 0u32;
        for op in &self.ops {
            let depth_before = walk.depth;
            self.step(&mut walk, *op)?;
            let end = op.end;
            let moves_sp_only = matches!(op.op, FrameOp::Alloc(_) | FrameOp::Realign(_));
            if frame.is_some() && moves_sp_only {
                // After UWOP_SET_FPREG the unwinder takes rsp from the frame pointer and
                // discards what the later allocations did, so they need no code; they are
                // encoded while they fit the prologue's 255 bytes, as compilers do.
                if end > 255 || matches!(op.op, FrameOp::Realign(_)) {
                    continue;
                }
            }
            if end > 255 {
                return Err(UnwindError::TooLarge { what: "prologue", value: end.into(), limit: 255 });
            }
            let offset = end as u8;
            let mut codes = Vec::new();
            match op.op {
                FrameOp::PushGpr(r) => {
                    // "UWOP_PUSH_NONVOL unwind codes must appear first in the prolog", since
                    // an epilogue pops them last.
                    if others_seen {
                        return Err(UnwindError::NotEncodable { end, why: "a push after another prologue op" });
                    }
                    codes.push([offset, UWOP_PUSH_NONVOL | (r.0 << 4)]);
                }
                FrameOp::Alloc(0) => {}
                FrameOp::Alloc(n) => {
                    others_seen = true;
                    alloc_codes(&mut codes, offset, n)?;
                }
                FrameOp::SetFramePointer { reg, offset: fp_off } => {
                    others_seen = true;
                    // The frame offset is stored scaled by 16, at most 240.
                    if !fp_off.is_multiple_of(16) {
                        return Err(UnwindError::Misaligned {
                            what: "frame pointer offset",
                            value: fp_off.into(),
                            multiple: 16,
                        });
                    }
                    if fp_off > 240 {
                        return Err(UnwindError::TooLarge {
                            what: "frame pointer offset",
                            value: fp_off.into(),
                            limit: 240,
                        });
                    }
                    frame = Some((reg, (fp_off / 16) as u8));
                    base_depth = depth_before;
                    codes.push([offset, UWOP_SET_FPREG]);
                }
                FrameOp::SaveXmm { reg, offset: sp_off } => {
                    others_seen = true;
                    // The offset counts from rsp after the fixed allocation, or, with a frame
                    // pointer, from where rsp was when it was set; scaled by 16 (< 1M).
                    let base = base_depth.or(self.walk_to(u32::MAX)?.depth);
                    let (Some(base), Some(here)) = (base, depth_before) else {
                        return Err(UnwindError::AfterRealign { end });
                    };
                    let from_base = i64::from(base) - i64::from(here) + i64::from(sp_off);
                    if from_base < 0 || from_base % 16 != 0 {
                        return Err(UnwindError::Misaligned {
                            what: "xmm save offset",
                            value: from_base,
                            multiple: 16,
                        });
                    }
                    let scaled = from_base / 16;
                    if scaled <= 0xffff {
                        codes.push([offset, UWOP_SAVE_XMM128 | (reg.0 << 4)]);
                        codes.push((scaled as u16).to_le_bytes());
                    } else {
                        codes.push([offset, UWOP_SAVE_XMM128_FAR | (reg.0 << 4)]);
                        codes.push((from_base as u32 as u16).to_le_bytes());
                        codes.push(((from_base as u32 >> 16) as u16).to_le_bytes());
                    }
                }
                FrameOp::Realign(_) => unreachable!("a realignment needs a frame pointer, checked by step"),
            }
            size = end;
            groups.push(codes);
        }
        let codes: Vec<[u8; 2]> = groups.into_iter().rev().flatten().collect();
        if codes.len() > 255 {
            return Err(UnwindError::TooLarge { what: "unwind code count", value: codes.len() as u64, limit: 255 });
        }
        let (frame_reg, frame_off) = frame.map_or((0, 0), |(r, o)| (r.0, o));
        let mut out = vec![1, size as u8, codes.len() as u8, frame_reg | (frame_off << 4)];
        for c in &codes {
            out.extend_from_slice(c);
        }
        // The code array always has an even number of slots.
        if codes.len() % 2 == 1 {
            out.extend_from_slice(&[0, 0]);
        }
        Ok(out)
    }
}

const DW_EH_PE_ABSPTR: u8 = 0x00;
const DW_CFA_ADVANCE_LOC: u8 = 0x40;
const DW_CFA_ADVANCE_LOC1: u8 = 0x02;
const DW_CFA_ADVANCE_LOC2: u8 = 0x03;
const DW_CFA_ADVANCE_LOC4: u8 = 0x04;
const DW_CFA_OFFSET: u8 = 0x80;
const DW_CFA_DEF_CFA: u8 = 0x0c;
const DW_CFA_DEF_CFA_REGISTER: u8 = 0x0d;
const DW_CFA_DEF_CFA_OFFSET: u8 = 0x0e;

const UWOP_PUSH_NONVOL: u8 = 0;
const UWOP_ALLOC_LARGE: u8 = 1;
const UWOP_ALLOC_SMALL: u8 = 2;
const UWOP_SET_FPREG: u8 = 3;
const UWOP_SAVE_XMM128: u8 = 8;
const UWOP_SAVE_XMM128_FAR: u8 = 9;

/// The codes of one allocation, shortest form first (Microsoft "x64 unwind codes"):
/// ALLOC_SMALL for 8-128 bytes (op info = size/8 - 1), ALLOC_LARGE with op info 0 and the
/// size/8 in one slot up to 512K-8, ALLOC_LARGE with op info 1 and the size in two slots up
/// to 4G-8. Sizes are multiples of 8.
fn alloc_codes(codes: &mut Vec<[u8; 2]>, offset: u8, n: u32) -> Result<(), UnwindError> {
    if !n.is_multiple_of(8) {
        return Err(UnwindError::Misaligned { what: "allocation", value: n.into(), multiple: 8 });
    }
    match n {
        8..=128 => codes.push([offset, UWOP_ALLOC_SMALL | (((n / 8 - 1) as u8) << 4)]),
        136..=524_280 => {
            codes.push([offset, UWOP_ALLOC_LARGE]);
            codes.push(((n / 8) as u16).to_le_bytes());
        }
        524_288..=4_294_967_288 => {
            codes.push([offset, UWOP_ALLOC_LARGE | (1 << 4)]);
            codes.push((n as u16).to_le_bytes());
            codes.push(((n >> 16) as u16).to_le_bytes());
        }
        _ => unreachable!("n is a non-zero multiple of 8 below 4G"),
    }
    Ok(())
}

/// A CIE or FDE: its length word, then `body`, padded with DW_CFA_nop to a word multiple.
/// Starts a CIE or FDE: room for its length, whose offset [`end_record`] takes.
fn begin_record(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0; 4]);
    out.len() - 4
}

/// Pads the record started at `start` to a multiple of `word` and writes its length, which
/// counts the body (CIE id / CIE pointer onwards), not itself.
fn end_record(out: &mut Vec<u8>, start: usize, word: usize) {
    while !(out.len() - start).is_multiple_of(word) {
        out.push(0);
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn word_bytes(out: &mut Vec<u8>, v: u64, word: usize) {
    out.extend_from_slice(&v.to_le_bytes()[..word]);
}

fn advance(out: &mut Vec<u8>, delta: u32) {
    match delta {
        0 => {}
        1..=63 => out.push(DW_CFA_ADVANCE_LOC | delta as u8),
        64..=255 => out.extend_from_slice(&[DW_CFA_ADVANCE_LOC1, delta as u8]),
        256..=65535 => {
            out.push(DW_CFA_ADVANCE_LOC2);
            out.extend_from_slice(&(delta as u16).to_le_bytes());
        }
        _ => {
            out.push(DW_CFA_ADVANCE_LOC4);
            out.extend_from_slice(&delta.to_le_bytes());
        }
    }
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl fmt::Display for FrameState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cfa = {}+{}", gpr_name(self.cfa.base), self.cfa.offset)?;
        for s in &self.saved {
            match s.reg {
                SavedReg::Gpr(r) => write!(f, ", {} at cfa{}", gpr_name(r), s.cfa_offset)?,
                SavedReg::Xmm(r) => write!(f, ", xmm{} at cfa{}", r.0, s.cfa_offset)?,
            }
        }
        Ok(())
    }
}

/// The 64-bit name of a register (the same number names the 32-bit one on x86).
fn gpr_name(r: Gpr) -> &'static str {
    const NAMES: [&str; 16] =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    NAMES[usize::from(r.0 & 15)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// push rbp; push rbx; mov rbp, rsp; sub rsp, alloc (a Win64 prologue with a frame pointer).
    fn win64_frame(alloc: u32) -> FrameUnwind {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(2, FrameOp::PushGpr(Gpr::BX));
        f.record(5, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        f.record(12, FrameOp::Alloc(alloc));
        f
    }

    /// push ebp; mov ebp, esp; push ebx; and esp, -16; sub esp, 32 (an i386 prologue that realigns).
    fn i386_frame() -> FrameUnwind {
        let mut f = FrameUnwind::new(Arch::X86);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(3, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        f.record(4, FrameOp::PushGpr(Gpr::BX));
        f.record(10, FrameOp::Realign(16));
        f.record(13, FrameOp::Alloc(32));
        f
    }

    #[test]
    fn the_cfa_follows_sp_until_the_frame_pointer_is_set_then_the_frame_pointer() {
        let f = win64_frame(40);
        assert_eq!(f.state_at(0).unwrap().to_string(), "cfa = rsp+8");
        assert_eq!(f.state_at(1).unwrap().to_string(), "cfa = rsp+16, rbp at cfa-16");
        assert_eq!(f.state_at(2).unwrap().to_string(), "cfa = rsp+24, rbp at cfa-16, rbx at cfa-24");
        assert_eq!(f.state_at(5).unwrap().to_string(), "cfa = rbp+24, rbp at cfa-16, rbx at cfa-24");
        assert_eq!(
            f.after_prologue().unwrap(),
            f.state_at(5).unwrap(),
            "an allocation after the frame pointer changes no rule"
        );
    }

    #[test]
    fn a_push_after_the_frame_pointer_is_saved_below_it() {
        let f = i386_frame();
        assert_eq!(f.after_prologue().unwrap().to_string(), "cfa = rbp+8, rbp at cfa-8, rbx at cfa-12");
    }

    #[test]
    fn a_realignment_before_the_frame_pointer_is_refused() {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(5, FrameOp::Realign(32));
        assert_eq!(f.validate(), Err(UnwindError::RealignWithoutFramePointer { end: 5 }));
        assert!(f.eh_frame(0, 16).is_err() && f.win64_unwind_info().is_err());
    }

    #[test]
    fn ops_must_be_in_code_order() {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(4, FrameOp::PushGpr(Gpr::BP));
        f.record(4, FrameOp::Alloc(8));
        assert_eq!(f.validate(), Err(UnwindError::OutOfOrder { end: 4, after: 4 }));
    }

    #[test]
    fn eh_frame_x64_cie_says_cfa_rsp_8_and_return_address_at_cfa_8() {
        let f = win64_frame(40);
        let b = f.eh_frame(0x1000, 64).unwrap();
        // length 20, CIE id 0, version 1, "zR", code align 1, data align -8 (0x78), RA 16,
        // aug length 1, absptr, DW_CFA_def_cfa r7 8, DW_CFA_offset r16 1, nops.
        assert_eq!(
            &b[..24],
            &[20, 0, 0, 0, 0, 0, 0, 0, 1, b'z', b'R', 0, 1, 0x78, 16, 1, 0, 0x0c, 7, 8, 0x90, 1, 0, 0]
        );
        // FDE: length, CIE pointer 28 (back to offset 0 from offset 28), pc_begin, pc_range.
        assert_eq!(&b[28..32], &[28, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 0x1000);
        assert_eq!(u64::from_le_bytes(b[40..48].try_into().unwrap()), 64);
        // aug length 0; advance 1, def_cfa_offset 16, offset rbp(6) 2; advance 1,
        // def_cfa_offset 24, offset rbx(3) 3; advance 3, def_cfa_register rbp.
        assert_eq!(&b[48..62], &[0, 0x41, 0x0e, 16, 0x86, 2, 0x41, 0x0e, 24, 0x83, 3, 0x43, 0x0d, 6]);
        let fde_len = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        assert_eq!((24 + 4 + fde_len) % 8, 0, "records are padded to the word");
        assert_eq!(&b[b.len() - 4..], &[0, 0, 0, 0], "the zero terminator __register_frame stops at");
    }

    #[test]
    fn eh_frame_i386_numbers_registers_as_the_encoding_and_uses_4_byte_words() {
        let b = i386_frame().eh_frame(0x8000, 40).unwrap();
        // data align -4 (0x7c), RA column 8 (eip), DW_CFA_def_cfa esp(4) 4, offset eip 1.
        assert_eq!(&b[13..21], &[0x7c, 8, 1, 0, 0x0c, 4, 4, 0x88]);
        let cie_len = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        let fde = &b[4 + cie_len..];
        assert_eq!(u32::from_le_bytes(fde[8..12].try_into().unwrap()), 0x8000);
        assert_eq!(u32::from_le_bytes(fde[12..16].try_into().unwrap()), 40);
        // advance 1: cfa esp+8, ebp(5) at cfa-8; advance 2: cfa register ebp;
        // advance 1: ebx(3) at cfa-12; the realignment and allocation add nothing.
        assert_eq!(&fde[16..28], &[0, 0x41, 0x0e, 8, 0x85, 2, 0x42, 0x0d, 5, 0x41, 0x83, 3]);
        assert!(fde[28..fde.len() - 4].iter().all(|&b| b == 0), "only nops follow");
    }

    #[test]
    fn dwarf_advance_uses_the_short_form_below_64_bytes_then_advance_loc1_2_4() {
        let mut out = Vec::new();
        for d in [63, 64, 256, 65536] {
            advance(&mut out, d);
        }
        assert_eq!(out, [0x7f, 0x02, 64, 0x03, 0, 1, 0x04, 0, 0, 1, 0]);
    }

    #[test]
    fn win64_codes_are_in_reverse_order_with_the_frame_register_in_the_header() {
        let b = win64_frame(40).win64_unwind_info().unwrap();
        // version 1, prolog 12 bytes, 4 codes, frame register rbp (5) offset 0;
        // ALLOC_SMALL 40 at 12 (info 4), SET_FPREG at 5, PUSH rbx at 2, PUSH rbp at 1.
        assert_eq!(b, [1, 12, 4, 5, 12, 0x42, 5, 0x03, 2, 0x30, 1, 0x50]);
    }

    #[test]
    fn win64_alloc_small_covers_8_to_128_bytes_as_op_info_size_over_8_minus_1() {
        let mut c = Vec::new();
        alloc_codes(&mut c, 9, 8).unwrap();
        alloc_codes(&mut c, 9, 128).unwrap();
        assert_eq!(c, [[9, 0x02], [9, 0xf2]]);
    }

    #[test]
    fn win64_uwop_alloc_large_with_op_info_0_for_allocations_up_to_512k_minus_8() {
        let mut c = Vec::new();
        alloc_codes(&mut c, 7, 136).unwrap();
        alloc_codes(&mut c, 7, 524_280).unwrap();
        assert_eq!(c, [[7, 0x01], [17, 0], [7, 0x01], [0xff, 0xff]]);
    }

    #[test]
    fn win64_uwop_alloc_large_with_op_info_1_holds_the_unscaled_size_in_two_slots() {
        let mut c = Vec::new();
        alloc_codes(&mut c, 7, 524_288).unwrap();
        assert_eq!(c, [[7, 0x11], [0, 0], [8, 0]]);
        assert!(matches!(alloc_codes(&mut c, 7, 12), Err(UnwindError::Misaligned { multiple: 8, .. })));
    }

    #[test]
    fn win64_code_count_is_padded_to_an_even_number_of_slots() {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(4, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        f.record(11, FrameOp::Alloc(1 << 20));
        let b = f.win64_unwind_info().unwrap();
        // 5 slots: ALLOC_LARGE/1 (3), SET_FPREG, PUSH rbp; then one slot of padding.
        assert_eq!(b, [1, 11, 5, 5, 11, 0x11, 0, 0, 0x10, 0, 4, 0x03, 1, 0x50, 0, 0]);
    }

    #[test]
    fn win64_allocations_after_the_frame_pointer_past_255_bytes_need_no_code() {
        // A probed frame: the allocation ends 300 bytes in; SET_FPREG already describes rsp.
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(4, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        f.record(300, FrameOp::Alloc(1 << 20));
        assert_eq!(f.win64_unwind_info().unwrap(), [1, 4, 2, 5, 4, 0x03, 1, 0x50]);
        // Without a frame pointer the same prologue cannot be described.
        let mut g = FrameUnwind::new(Arch::X86_64);
        g.record(300, FrameOp::Alloc(64));
        assert!(matches!(g.win64_unwind_info(), Err(UnwindError::TooLarge { what: "prologue", .. })));
    }

    #[test]
    fn win64_pushes_must_come_first_in_the_prologue() {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(4, FrameOp::Alloc(16));
        f.record(5, FrameOp::PushGpr(Gpr::BX));
        assert!(matches!(f.win64_unwind_info(), Err(UnwindError::NotEncodable { end: 5, .. })));
    }

    #[test]
    fn win64_frame_offset_is_scaled_by_16_and_at_most_240() {
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(5, FrameOp::Alloc(256));
        f.record(10, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 32 });
        assert_eq!(f.win64_unwind_info().unwrap()[3], 5 | (2 << 4));
        f.ops[2].op = FrameOp::SetFramePointer { reg: Gpr::BP, offset: 24 };
        assert!(matches!(f.win64_unwind_info(), Err(UnwindError::Misaligned { multiple: 16, .. })));
        f.ops[2].op = FrameOp::SetFramePointer { reg: Gpr::BP, offset: 256 };
        assert!(matches!(f.win64_unwind_info(), Err(UnwindError::TooLarge { limit: 240, .. })));
    }

    #[test]
    fn win64_save_xmm128_offset_counts_from_rsp_at_the_frame_pointer_scaled_by_16() {
        // push rbp; sub rsp, 48; lea rbp, [rsp+32]; movaps [rsp+16], xmm6
        let mut f = FrameUnwind::new(Arch::X86_64);
        f.record(1, FrameOp::PushGpr(Gpr::BP));
        f.record(5, FrameOp::Alloc(48));
        f.record(10, FrameOp::SetFramePointer { reg: Gpr::BP, offset: 32 });
        f.record(15, FrameOp::SaveXmm { reg: Xmm(6), offset: 16 });
        let b = f.win64_unwind_info().unwrap();
        assert_eq!(&b[4..8], &[15, 0x68, 1, 0], "SAVE_XMM128 xmm6 at 16/16 = 1");
        assert_eq!(f.after_prologue().unwrap().saved[1], Saved { reg: SavedReg::Xmm(Xmm(6)), cfa_offset: -48 });
    }

    #[test]
    fn win64_unwind_info_is_for_x86_64_only() {
        assert!(matches!(i386_frame().win64_unwind_info(), Err(UnwindError::NotEncodable { end: 0, .. })));
    }

    #[test]
    fn leb128_encodings() {
        let mut u = Vec::new();
        uleb(&mut u, 624_485);
        assert_eq!(u, [0xe5, 0x8e, 0x26]);
        let mut s = Vec::new();
        sleb(&mut s, -8);
        sleb(&mut s, -123_456);
        sleb(&mut s, 64);
        assert_eq!(s, [0x78, 0xc0, 0xbb, 0x78, 0xc0, 0]);
    }
}
