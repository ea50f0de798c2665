//! What a code generator promises: turn a [`Program`] into machine code for one target,
//! assembled for a caller-chosen address, reaching helpers and constants through addresses
//! the caller supplies. The same bytes then run natively or inside the emulator.

use crate::lua::helpers::Helper;
use crate::lua::steps::{CtypeRef, Program};
use crate::Target;
use std::fmt;

/// Addresses and constants a stub or thunk refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeEnv {
    /// Address of each helper, indexed by [`Helper::id`].
    pub helpers: Vec<u64>,
    /// The opaque ctype pointer of each argument, in order.
    pub arg_ctypes: Vec<u64>,
    /// The opaque ctype pointer of the return type.
    pub ret_ctype: u64,
    /// Thunks: the callback's data pointer, passed to `luaffi_callback_enter`.
    pub callback_data: u64,
    /// Stubs with inline errno handling and thunks with inline steps: the embedding's
    /// per-state fields they read and update.
    pub call_slots: Option<CallSlots>,
}

/// The fields of the embedding's per-state data a stub with inline errno handling
/// ([`crate::lua::steps::Step::ErrnoRestoreInline`], [`crate::lua::steps::Step::AfterCallInline`])
/// reads and writes, by address: what `ErrnoRestore` and `AfterCall` do, without the calls;
/// and what a thunk's inline entry and call read ([`crate::lua::steps::Step::CallbackEnterInline`],
/// [`crate::lua::steps::Step::CallbackCallInline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSlots {
    /// `int`: the value `ffi.errno()` reports; put into `errno` before the call, taken from
    /// it right after.
    pub saved_errno: u64,
    /// `lua_State *`: the thread of the C call in progress (callbacks run on it), set before
    /// and after the call.
    pub calling_l: u64,
    /// `int`: the error a callback raised during the call; any value but `no_pending` makes
    /// the stub call `AfterCall`, which raises it.
    pub pending_error: u64,
    /// The value of `pending_error` when there is none.
    pub no_pending: i32,
    /// `lua_State *`: the thread callbacks run on when no C call is in progress
    /// (`calling_l` is NULL), read by thunks with an inline entry.
    pub main_l: u64,
}

impl CodeEnv {
    /// The address of a helper.
    pub fn helper(&self, h: Helper) -> u64 {
        self.helpers.get(h.id()).copied().unwrap_or(0)
    }

    /// The constant for a ctype reference (0 when the embedding gave none).
    pub fn ctype(&self, r: CtypeRef) -> u64 {
        match r {
            CtypeRef::Arg(i) => self.arg_ctypes.get(i).copied().unwrap_or(0),
            CtypeRef::Ret => self.ret_ctype,
        }
    }
}

/// Why code could not be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The program uses something this backend cannot encode (a bug in the model or the
    /// backend, reported instead of emitting wrong code).
    Unsupported(String),
    /// The assembler failed (e.g. a displacement out of range).
    Assembler(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unsupported(s) => write!(f, "cannot generate code: {s}"),
            BackendError::Assembler(s) => write!(f, "assembler error: {s}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// A code generator for one target.
pub trait Backend {
    /// The target it generates code for.
    fn target(&self) -> Target;

    /// A call stub: a `lua_CFunction` (`int stub(lua_State *L)` in the target's C
    /// convention) running `program` (from [`crate::lua::steps::stub_program`]), assembled to
    /// run at address `base`.
    fn stub(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError>;

    /// A callback thunk running `program` (from [`crate::lua::steps::thunk_program`]),
    /// assembled to run at address `base`.
    fn thunk(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError>;

    /// Whether the bytes of every stub and thunk are the same at every base address (the code
    /// refers to nothing outside itself by a relative address, and to nothing inside itself by
    /// an absolute one), so an embedding may assemble once and copy the code anywhere.
    fn position_independent(&self) -> bool {
        false
    }
}
