//! Frame layouts of stubs and thunks: where each [`Slot`] lives relative to the body stack
//! pointer, and how much the prologue allocates.
//!
//! Both frames keep `rbp` as a frame pointer. Helper calls move `rsp` in the body (each
//! reserves its own home space), and the Microsoft x64 rules allow that only in a function
//! that has established a frame pointer ("x64 stack usage": "If space is dynamically
//! allocated ... a nonvolatile register must be used as a frame pointer"). Every register is
//! pushed *before* `mov rbp, rsp`, so an unwinder that restores `rsp` from `rbp` finds them
//! ("x64 prolog and epilog"; the unwind codes are then: push, push, set-frame 0, alloc).
//!
//! Stub (`int stub(lua_State *L)`, `E` = the stack pointer at entry, `E ≡ 8 (mod 16)` because
//! the caller's `call` pushed the return address onto a 16-aligned stack):
//!
//! ```text
//!   [E+8,  E+40)          home space Lua's caller reserved for us (unused)
//!   [E]                   return address
//!   [E-8]                 saved rbp
//!   [E-16]                saved rbx                      <- rbp (frame pointer)
//!   [E-24]                padding to 16
//!   [sp+out, sp+out+stage) staging area          Slot::Stage(o) = [sp + out + o]
//!   [sp+32,  sp+out)      stack arguments, by-reference copies
//!   [sp,     sp+32)       the target's home space  Slot::Out(o)   = [sp + o]
//!   sp ≡ 0 (mod 16)       body stack pointer; alloc = out + stage + 8
//!   [sp-32,  sp)          a helper's home space, reserved (sub rsp, 32) for that call only
//! ```
//!
//! `rbx` holds `L` for the whole stub (callee-saved, so helpers keep it).
//!
//! Thunk (a C function a C caller calls; the model's [`Program::entry_bytes`] below `E` are
//! ours: its 32-byte header, then the save area):
//!
//! ```text
//!   [E+40, ...)           the caller's stack arguments  Slot::Entry(+o) = [E + o]
//!   [E+8,  E+40)          the caller's home space for our register arguments (unused: the
//!                         model spills into its own save area)
//!   [E]                   return address
//!   [E-8]                 saved rbp                      <- rbp (frame pointer)
//!   [E-32, E-8)           rest of the model's header (unused)
//!   [E-entry, E-32)       save area: spills             Slot::Entry(-o) = [E - o]
//!   [sp+stage, E-entry)   padding to 16 (at least 8)
//!   [sp, sp+stage)        staging area                   Slot::Stage(o) = [sp + o]
//!   sp ≡ 0 (mod 16)       alloc = round16(entry) + stage, E = sp + alloc + 8
//!   [sp-32,  sp)          a helper's home space, reserved for that call only
//! ```

use abi_model::lua::steps::{Program, Slot};
use abi_model::lua::{BackendError, Invalid};
use abi_model::{CallbackFrame, Target};

/// Stack alignment at every call, as the model states it (Microsoft x64: "The stack will
/// always be maintained 16-byte aligned, except within the prolog").
pub const STACK_ALIGN: u32 = Target::X64_WIN.stack_align();

/// The thunk's saved rbp, the top word of the model's callback header: rbp = entry sp - 8.
const SAVED_RBP: u32 = CallbackFrame::saved_frame_pointer_at(8).unsigned_abs();

/// Page size of Windows x64: frames larger than this are probed page by page before they are
/// allocated, as `__chkstk` does ("x64 prolog and epilog": a fixed allocation of more than
/// one page "must be checked before it's allocated").
pub const PAGE: u32 = 4096;

/// The largest frame this backend builds: the default stack reserve of a Windows executable
/// (1 MiB). A bigger frame could never run on the default stack; it is reported as
/// [`Invalid::FrameTooLarge`] instead.
pub const MAX_FRAME: u32 = 1 << 20;

/// Which kind of program a frame belongs to.
pub use abi_model::lua::ProgramKind as FrameKind;

/// The frame of one stub or thunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Stub or thunk.
    pub kind: FrameKind,
    /// Bytes of the target's outgoing area at `[sp, sp + out)` (stubs), a multiple of 16.
    pub out: u32,
    /// Bytes of the staging area, a multiple of 16.
    pub stage: u32,
    /// Bytes below the return address the model's `Slot::Entry` offsets reach into (thunks).
    pub entry: u32,
    /// Registers the prologue pushes, in push order (rbp first).
    pub pushed: &'static [u8],
    /// Bytes `sub rsp, alloc` allocates after the pushes (for a realigned stub, `realign -
    /// 16` more, which `and rsp` may take).
    pub alloc: u32,
    /// Stubs whose call asks more than 16 ([`Program::out_align`]: a by-reference copy of an
    /// over-aligned record): the alignment `and rsp, -realign` gives the body after `alloc`.
    pub realign: Option<u32>,
}

fn round16(n: u32) -> Option<u32> {
    n.checked_next_multiple_of(STACK_ALIGN)
}

fn too_big(what: &'static str, bytes: impl Into<u64>) -> BackendError {
    Invalid::FrameTooLarge { what, bytes: bytes.into(), limit: MAX_FRAME.into() }.into()
}

impl Frame {
    /// The stub frame for `program`.
    pub fn stub(program: &Program) -> Result<Frame, BackendError> {
        // A by-reference copy of an over-aligned record sits at its alignment, so the call
        // may ask more than 16: the body realigns with `and rsp` (the frame pointer restores
        // rsp), within a page so that the allocation's probes cover what it skips.
        let realign = (program.out_align > STACK_ALIGN).then_some(program.out_align);
        if let Some(align) = realign {
            if !align.is_power_of_two() || align > PAGE {
                return Err(Invalid::CallAlignment { align }.into());
            }
        }
        let slack = realign.map_or(0, |a| a - STACK_ALIGN);
        let out = round16(program.out_bytes).ok_or_else(|| too_big("outgoing area", program.out_bytes))?;
        let stage = round16(program.stage_bytes).ok_or_else(|| too_big("staging area", program.stage_bytes))?;
        // Two pushes leave sp ≡ 8 (mod 16); 8 more bytes of padding realign it.
        let alloc = out
            .checked_add(stage)
            .and_then(|n| n.checked_add(8 + slack))
            .filter(|n| *n <= MAX_FRAME)
            .ok_or_else(|| too_big("stub frame", u64::from(out) + u64::from(stage) + 8 + u64::from(slack)))?;
        Ok(Frame { kind: FrameKind::Stub, out, stage, entry: 0, pushed: &[5, 3], alloc, realign })
    }

    /// The thunk frame for `program`.
    pub fn thunk(program: &Program) -> Result<Frame, BackendError> {
        if program.entry_bytes < SAVED_RBP {
            // The header below the return address must hold the saved rbp.
            return Err(Invalid::AreaSize {
                what: "thunk entry area too small for the saved rbp",
                bytes: program.entry_bytes,
            }
            .into());
        }
        let entry = round16(program.entry_bytes).ok_or_else(|| too_big("entry area", program.entry_bytes))?;
        let stage = round16(program.stage_bytes).ok_or_else(|| too_big("staging area", program.stage_bytes))?;
        // One push leaves sp ≡ 0 (mod 16); both parts are multiples of 16.
        let alloc = entry
            .checked_add(stage)
            .filter(|n| *n <= MAX_FRAME)
            .ok_or_else(|| too_big("thunk frame", u64::from(entry) + u64::from(stage)))?;
        Ok(Frame { kind: FrameKind::Thunk, out: 0, stage, entry, pushed: &[5], alloc, realign: None })
    }

    /// Bytes between the body stack pointer and the entry stack pointer `E`.
    pub fn body_to_entry(&self) -> u32 {
        self.alloc + 8 * self.pushed.len() as u32
    }

    /// The displacement of `slot` from the body stack pointer, or an error when the slot is
    /// not part of this frame.
    pub fn disp(&self, slot: Slot) -> Result<i64, BackendError> {
        match (self.kind, slot) {
            (FrameKind::Stub, Slot::Out(o)) if o < self.out => Ok(i64::from(o)),
            (FrameKind::Stub, Slot::Stage(o)) if o < self.stage => Ok(i64::from(self.out) + i64::from(o)),
            (FrameKind::Thunk, Slot::Stage(o)) if o < self.stage => Ok(i64::from(o)),
            (FrameKind::Thunk, Slot::Entry(o)) if i64::from(o) >= -i64::from(self.entry) => {
                Ok(i64::from(self.body_to_entry()) + i64::from(o))
            }
            _ => Err(Invalid::SlotOutsideFrame(slot).into()),
        }
    }
}
