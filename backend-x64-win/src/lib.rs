//! x86-64 Windows backend: lowers an `abi_model` [`Program`] to a call stub (a
//! `lua_CFunction`) or a callback thunk in the Microsoft x64 convention.
//!
//! It decides no ABI fact: argument locations, the hidden return pointer, by-reference
//! copies and the helpers' own calling sequences all come from the model. What it owns is
//! the frame ([`frame`]: layout diagram there) and the instructions, one small `emit_<step>`
//! function per [`Step`](abi_model::lua::steps::Step).
//!
//! Machine-code facts this crate relies on, from Microsoft's "x64 calling convention",
//! "x64 stack usage" and "x64 prolog and epilog" pages:
//! - `rsp ≡ 0 (mod 16)` at every `call`; each call has 32 bytes of home space at `[rsp, rsp+32)`
//!   that the callee owns (helpers: `Helper::plan(target).frame_bytes()`).
//! - Callee-saved: rbx, rbp, rdi, rsi, r12–r15, xmm6–xmm15. Stubs use rbx and rbp, thunks
//!   rbp; both push them first and pop them last. No other callee-saved register is touched.
//! - Frames of a page or more are probed top down before `sub rsp` (no frame above
//!   [`frame::MAX_FRAME`] is built: that is [`abi_model::lua::Invalid::FrameTooLarge`]).
//! - Helpers and the target are reached through absolute addresses (`mov rax, imm64; call rax`,
//!   `call [rsp+d]`), so the bytes run at `base` natively or in an emulator.
//!
//! ```
//! use abi_model::{plan_call, CallConv, IntKind, Signature, Target, TypeTable};
//! use abi_model::lua::CodeEnv;
//! use abi_model::lua::steps::stub_program;
//! let mut t = TypeTable::new(Target::X64_WIN);
//! let int = t.int(IntKind::Int);
//! let plan = plan_call(&t, &Signature::new(int, vec![int.into(), int.into()], false, CallConv::Cdecl), &[]).unwrap();
//! let env = CodeEnv { helpers: vec![0x7000; 27], arg_ctypes: vec![], ret_ctype: 0, callback_data: 0, call_slots: None };
//! let code = backend_x64_win::lower_stub(&stub_program(&plan, 1), 0x10000, &env).unwrap();
//! let listing = emu_harness::listing::disassemble(64, &code, 0x10000, Some(&env));
//! assert!(listing.contains("call qword ptr [rsp"));
//! ```

#![forbid(unsafe_code)]
mod emit;
pub mod frame;

use abi_model::lua::steps::Program;
use abi_model::lua::{Backend, BackendError, Code, CodeEnv};
use abi_model::Target;
use frame::Frame;

/// Lowers a stub program (from `abi_model::lua::steps::stub_program` on an x64-win plan) to a
/// `lua_CFunction` assembled to run at `base`.
pub fn lower_stub(program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError> {
    Win64Backend.stub(program, base, env)
}

/// Lowers a thunk program (from `abi_model::lua::steps::thunk_program` on an x64-win callback
/// frame) to a C function assembled to run at `base`.
pub fn lower_thunk(program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError> {
    Win64Backend.thunk(program, base, env)
}

/// The x86-64 Windows code generator, for code that drives every backend alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Win64Backend;

impl Backend for Win64Backend {
    fn target(&self) -> Target {
        Target::X64_WIN
    }

    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        emit::lower_program(program, Frame::stub(program)?, base, env)
    }

    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        emit::lower_program(program, Frame::thunk(program)?, base, env)
    }
}
