//! x86-32 backend (cdecl, stdcall, fastcall, thiscall; i386 Linux and Win32 flavours): lowers
//! `abi_model` stub and thunk [`Program`]s to machine code. It decides no ABI fact: where values
//! go comes from the program, from the helpers' own [`abi_model::CallPlan`]s and from the
//! target's stack alignment in those plans.
//!
//! The code is assembled with `dynasmrt::VecAssembler` at a caller-chosen base address and
//! reaches helpers only through absolute addresses (`mov eax, addr; call eax`) and the target
//! through the pointer the stub staged, so the same bytes run natively and in the emulator.
//!
//! # Frame layouts
//!
//! ```text
//!  stub: int __cdecl stub(lua_State *L)     thunk: called by C through a pointer
//!
//!  [ebp+8]   L                              [ebp+8+off]  caller's stack arguments, Slot::Entry(off >= 0)
//!  [ebp+4]   return address                 [ebp+4]      return address (= entry esp)
//!  [ebp]     saved ebp  <- ebp              [ebp]        saved ebp  <- ebp
//!  [ebp-4]   saved ebx (ebx = L throughout) [ebp-12,ebp) rest of the model's header, unused
//!            padding (`and esp, -16`,       [ebp+4+off]  save area, Slot::Entry(-entry_bytes <= off < -4)
//!             i386 Linux only)                           padding (`and esp, -16`)
//!  [esp+out_bytes+off] staging, Slot::Stage [esp+off]    staging, Slot::Stage(off)  <- esp, 16-aligned
//!  [esp+off] outgoing area, Slot::Out(off)
//!            <- esp, aligned as the plan says, at the target call
//! ```
//!
//! During one helper call the helper's own argument area (`Helper::plan(target).frame_bytes()`)
//! sits below that esp (`sub esp, n` ... `add esp, n`), so the target's outgoing area is never
//! overwritten; esp-relative slot addresses account for it. The stub uses ebp and ebx and
//! restores both; the thunk uses only ebp among the callee-saved registers (i386 psABI
//! Table 2.3, Microsoft "Argument passing and naming conventions": ebx, esi, edi, ebp are
//! callee-saved). Scratch registers: eax (value shuffling, helper addresses) and ecx (a
//! pointer read from a slot, after the call only); the inline steps of programs with a Lua
//! stack layout also use edx (a Lua stack slot) and the x87 stack (number conversions, left
//! empty), see `emit/inline.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use abi_model::lua::steps::Program;
use abi_model::lua::{Backend, BackendError, Code, CodeEnv, Invalid};
use abi_model::{Arch, Target};

mod emit;
mod frame;
#[cfg(test)]
mod tests;

/// The stub and thunk generator for one x86-32 target ([`Target::X86_LINUX`] or
/// [`Target::X86_WIN`]); the calling convention of each call comes from its program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86Backend {
    target: Target,
}

impl X86Backend {
    /// i386 Linux (System V i386 psABI as gcc implements it).
    pub const LINUX: X86Backend = X86Backend { target: Target::X86_LINUX };
    /// Win32 (MSVC's conventions as mingw implements them).
    pub const WIN: X86Backend = X86Backend { target: Target::X86_WIN };

    /// The backend for `target`, or an error if it is not an x86-32 target.
    pub fn new(target: Target) -> Result<X86Backend, BackendError> {
        match target.arch {
            Arch::X86 => Ok(X86Backend { target }),
            Arch::X86_64 => Err(Invalid::WrongTarget(target).into()),
        }
    }
}

impl Backend for X86Backend {
    fn target(&self) -> Target {
        self.target
    }

    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        emit::stub(self.target, program, base, env)
    }

    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        emit::thunk(self.target, program, base, env)
    }
}
