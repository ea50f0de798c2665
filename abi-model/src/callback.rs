//! Callback frames: where a generated callback finds each incoming argument once it has saved
//! the argument registers, and what it returns and pops.
//!
//! The frame is derived from the same [`CallPlan`] a caller uses, read from the callee's
//! side, so incoming and outgoing locations cannot drift apart. Offsets are bytes from the
//! callee's entry stack pointer (the address of the return address): stack arguments are
//! above it, the save area below.

use crate::plan::{ArgPass, CallPlan, Loc, RetLoc, RetPlan, ValueKind};

/// One register the callee stores on entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spill {
    /// The register ([`Loc::Gpr`] or [`Loc::Xmm`]).
    pub from: Loc,
    /// Bytes to store: the register width for a GPR; for an XMM register 8 (the low
    /// eightbyte), or 16 for a value that fills it (a 16-byte vector).
    pub size: u32,
    /// Where: `[entry_sp + to]` (negative: inside the save area).
    pub to: i32,
}

/// Where one argument's value is once the spills are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameArg {
    /// The value's bytes are contiguous at `[entry_sp + at]`.
    Value {
        /// Offset from the entry stack pointer.
        at: i32,
    },
    /// The value is elsewhere; its address is at `[entry_sp + ptr_at]` (Win64 aggregates
    /// passed by reference).
    ByRef {
        /// Offset of the pointer from the entry stack pointer.
        ptr_at: i32,
    },
}

/// Everything a generated callback needs to know about its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackFrame {
    /// Register width (4 or 8).
    pub ptr_size: u32,
    /// Bytes directly below the return address left to the callee for its own use (saving
    /// the frame pointer and the callee-saved registers it uses): `4 * ptr_size`.
    pub header: u32,
    /// Bytes of the save area below the header; spills land in
    /// `[entry_sp - header - save_bytes, entry_sp - header)`. A multiple of 16.
    pub save_bytes: u32,
    /// Registers to store on entry, before anything clobbers them.
    pub spills: Vec<Spill>,
    /// Per argument, where its value is.
    pub args: Vec<FrameArg>,
    /// Per argument, what it is.
    pub arg_kinds: Vec<ValueKind>,
    /// Where the hidden return pointer is, when the value returns through memory.
    pub sret_ptr: Option<i32>,
    /// What to return, and where.
    pub ret: RetPlan,
    /// Bytes the callee pops on return (`ret n`).
    pub pops: u32,
}

impl CallbackFrame {
    /// Where a callee that begins by pushing the caller's frame pointer (`push ebp/rbp`) keeps
    /// it, and so where its own frame pointer then points: the header's top word, at
    /// `[entry_sp + saved_frame_pointer_at(ptr_size)]`. An entry offset `o` is then at
    /// `[frame pointer + ptr_size + o]`.
    pub const fn saved_frame_pointer_at(ptr_size: u32) -> i32 {
        -(ptr_size as i32)
    }

    /// The frame for a callee of `plan`.
    pub fn from_plan(plan: &CallPlan) -> CallbackFrame {
        let w = plan.ptr_size;
        let header = 4 * w;
        // Stack arguments sit past the return address.
        let incoming = |offset: u32| (w + offset) as i32;
        let mut save: u32 = 0;
        let mut spills = Vec::new();
        // Reserves `bytes` (8-aligned) in the save area; returns its lowest offset.
        let mut reserve = |bytes: u32| -> i32 {
            save += bytes.div_ceil(8) * 8;
            -((header + save) as i32)
        };
        let spill_reg = |loc: Loc, bytes: u32, to: i32, spills: &mut Vec<Spill>| {
            let size = match loc {
                Loc::Xmm(_) if bytes > 8 => 16,
                Loc::Xmm(_) => 8,
                _ => w,
            };
            spills.push(Spill { from: loc, size, to });
        };
        let sret_ptr = match plan.ret.loc {
            RetLoc::Sret { ptr: Loc::Stack { offset } } => Some(incoming(offset)),
            RetLoc::Sret { ptr } => {
                let at = reserve(w);
                spill_reg(ptr, w, at, &mut spills);
                Some(at)
            }
            _ => None,
        };
        let mut args = Vec::with_capacity(plan.args.len());
        for a in &plan.args {
            let frame_arg = match &a.pass {
                ArgPass::Direct(parts) => match parts.as_slice() {
                    [p] if matches!(p.loc, Loc::Stack { .. }) => {
                        let Loc::Stack { offset } = p.loc else { unreachable!() };
                        FrameArg::Value { at: incoming(offset) - p.offset as i32 }
                    }
                    _ => {
                        // Register parts (a Win64 vararg's duplicate included) are stored
                        // into one slot at their offsets, so the value becomes contiguous.
                        let size = a.value.size(w).max(w);
                        let at = reserve(size.div_ceil(8) * 8);
                        let mut seen = Vec::new();
                        for p in parts {
                            if seen.contains(&p.offset) {
                                continue;
                            }
                            seen.push(p.offset);
                            match p.loc {
                                Loc::Stack { .. } => unreachable!("no ABI splits a value between registers and stack"),
                                reg => spill_reg(reg, p.size, at + p.offset as i32, &mut spills),
                            }
                        }
                        FrameArg::Value { at }
                    }
                },
                ArgPass::Indirect { ptr: Loc::Stack { offset }, .. } => FrameArg::ByRef { ptr_at: incoming(*offset) },
                ArgPass::Indirect { ptr, .. } => {
                    let at = reserve(w);
                    spill_reg(*ptr, w, at, &mut spills);
                    FrameArg::ByRef { ptr_at: at }
                }
            };
            args.push(frame_arg);
        }
        CallbackFrame {
            ptr_size: w,
            header,
            save_bytes: save.div_ceil(16) * 16,
            spills,
            args,
            arg_kinds: plan.args.iter().map(|a| a.value).collect(),
            sret_ptr,
            ret: plan.ret,
            pops: plan.callee_pops,
        }
    }
}
