//! Where each kind of slot is: the frame layouts drawn in the crate documentation, as
//! displacements from esp or ebp.

use abi_model::lua::steps::{Program, Slot};
use abi_model::lua::{BackendError, Invalid};
use abi_model::CallbackFrame;

/// The base register of a memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// esp: the outgoing and staging areas (the frame below the realignment).
    Esp,
    /// ebp: the thunk's entry slots (ebp = entry esp - 4).
    Ebp,
    /// ecx: memory reached through a pointer read from a slot.
    Ecx,
    /// edx: a slot of the Lua stack (inline steps).
    Edx,
    /// ebx: the stub's `lua_State` (inline steps).
    Ebx,
}

/// A memory operand `[base + disp]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mem {
    pub base: Base,
    pub disp: i32,
}

impl Mem {
    /// The operand `bytes` further on.
    pub fn at(self, bytes: i32) -> Mem {
        Mem { base: self.base, disp: self.disp + bytes }
    }
}

/// The frame of one stub or thunk.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Frame {
    Stub { out_bytes: u32, stage_bytes: u32 },
    Thunk { entry_bytes: u32, stage_bytes: u32 },
}

/// The saved ebp: `[entry esp - 4]`, the top word of the model's callback header (a stub's
/// ebp is set the same way).
pub(crate) const SAVED_EBP: u32 = CallbackFrame::saved_frame_pointer_at(4).unsigned_abs();

impl Frame {
    /// The stub frame of `p`, whose outgoing area must keep esp aligned to `align`.
    pub fn stub(p: &Program, align: u32) -> Result<Frame, BackendError> {
        if p.entry_bytes != 0 {
            return Err(Invalid::AreaSize { what: "entry area of a stub", bytes: p.entry_bytes }.into());
        }
        // No x86 plan asks more than the target's alignment (gcc -m32 and mingw pass
        // over-aligned records 4-aligned): the frame does not realign.
        if p.out_align > align {
            return Err(Invalid::CallAlignment { align: p.out_align }.into());
        }
        if !p.out_bytes.is_multiple_of(align) {
            return Err(Invalid::AreaMisaligned { what: "outgoing area", bytes: p.out_bytes, align }.into());
        }
        if !p.stage_bytes.is_multiple_of(16) {
            return Err(Invalid::AreaMisaligned { what: "staging area", bytes: p.stage_bytes, align: 16 }.into());
        }
        check_size(u64::from(p.out_bytes) + u64::from(p.stage_bytes))?;
        Ok(Frame::Stub { out_bytes: p.out_bytes, stage_bytes: p.stage_bytes })
    }

    /// The thunk frame of `p`.
    pub fn thunk(p: &Program) -> Result<Frame, BackendError> {
        if p.out_bytes != 0 {
            return Err(Invalid::AreaSize { what: "outgoing area of a thunk", bytes: p.out_bytes }.into());
        }
        if p.entry_bytes < 16 {
            return Err(Invalid::AreaSize {
                what: "thunk entry area under the model's 16-byte header",
                bytes: p.entry_bytes,
            }
            .into());
        }
        if !p.stage_bytes.is_multiple_of(16) {
            return Err(Invalid::AreaMisaligned { what: "staging area", bytes: p.stage_bytes, align: 16 }.into());
        }
        check_size(u64::from(p.entry_bytes) + u64::from(p.stage_bytes))?;
        Ok(Frame::Thunk { entry_bytes: p.entry_bytes, stage_bytes: p.stage_bytes })
    }

    /// Bytes below the realigned esp that hold the stub's or thunk's areas.
    pub fn reserve(self) -> u32 {
        match self {
            Frame::Stub { out_bytes, stage_bytes } => out_bytes + stage_bytes,
            Frame::Thunk { stage_bytes, .. } => stage_bytes,
        }
    }

    /// `[base + disp]` of `bytes` bytes at `slot`, while a helper call has `shift` bytes of its
    /// own argument area below the frame.
    pub fn mem(self, slot: Slot, bytes: u32, shift: u32) -> Result<Mem, BackendError> {
        let outside = || BackendError::from(Invalid::SlotOutsideFrame(slot));
        let within = |off: u32, area: u32| off.checked_add(bytes).is_some_and(|end| end <= area);
        let esp = |disp: u32| Mem { base: Base::Esp, disp: (disp + shift) as i32 };
        match (self, slot) {
            (Frame::Stub { out_bytes, .. }, Slot::Out(off)) if within(off, out_bytes) => Ok(esp(off)),
            (Frame::Stub { out_bytes, stage_bytes }, Slot::Stage(off)) if within(off, stage_bytes) => {
                Ok(esp(out_bytes + off))
            }
            (Frame::Thunk { stage_bytes, .. }, Slot::Stage(off)) if within(off, stage_bytes) => Ok(esp(off)),
            // Incoming stack arguments (off >= 0) or the save area below the saved ebp.
            (Frame::Thunk { entry_bytes, .. }, Slot::Entry(off))
                if off >= 0
                    || (off >= -(entry_bytes as i32) && i64::from(off) + i64::from(bytes) <= -i64::from(SAVED_EBP)) =>
            {
                let disp = off.checked_add(SAVED_EBP as i32).ok_or_else(outside)?;
                Ok(Mem { base: Base::Ebp, disp })
            }
            _ => Err(outside()),
        }
    }
}

/// Frames are addressed with 32-bit displacements; keep well inside them.
fn check_size(bytes: u64) -> Result<(), BackendError> {
    if bytes > 1 << 30 {
        return Err(Invalid::FrameTooLarge { what: "frame", bytes, limit: 1 << 30 }.into());
    }
    Ok(())
}
