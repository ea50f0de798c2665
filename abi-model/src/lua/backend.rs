//! What a code generator promises: turn a [`Program`] into machine code for one target,
//! assembled for a caller-chosen address, reaching helpers and constants through addresses
//! the caller supplies. The same bytes then run natively or inside the emulator.

use crate::abi::PlanError;
use crate::lua::helpers::Helper;
use crate::lua::steps::{CtypeRef, Operand, Program, Slot, Step, StepKind};
use crate::plan::{Loc, RetLoc, ValueKind};
use crate::unwind::FrameUnwind;
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

/// Why code could not be generated. Every variant is a bug (in the model, which produced a
/// program this backend does not take, or in the backend), reported instead of emitting wrong
/// code; the message names the step and what in it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The backend has no lowering for this kind of step: every backend must lower every
    /// step, so this is a backend bug.
    NotLowered {
        /// The step's position in the program, when known.
        index: Option<usize>,
        /// Which step.
        step: StepKind,
    },
    /// A step, or the program as a whole (`step` is `None`), that this backend cannot lower
    /// as written.
    Invalid {
        /// The step (its position and kind), when the fault is in one.
        step: Option<(usize, StepKind)>,
        /// What is wrong with it.
        why: Invalid,
    },
    /// The assembler could not finish the code (a label never defined, a relocation out of
    /// range); its own message, since its error type is the backend's dependency.
    Assembler {
        /// The assembler's message.
        message: String,
    },
}

/// What a backend found wrong in a program: a fact the model should have made impossible, or
/// a limit of the backend. The data says which operand and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The backend generates code for another architecture than this target's.
    WrongTarget(Target),
    /// An address the code embeds does not fit the target's (or the host's) pointers.
    AddressTooWide {
        /// Which address (`"base"`, a helper's name, ...).
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The [`CodeEnv`] has no address for a helper the program calls.
    NoHelperAddress(Helper),
    /// An inline step and a [`CodeEnv`] without [`CallSlots`].
    NoCallSlots,
    /// An inline step in a program without a Lua stack layout (`Program::vm`).
    NoLuaLayout,
    /// The program's last step is not a return.
    NoFinalReturn,
    /// A step only the other kind of program has (e.g. `CallTarget` in a thunk).
    WrongProgramKind(ProgramKind),
    /// A slot (or bytes at it) outside this program's frame.
    SlotOutsideFrame(Slot),
    /// A frame area this kind of program does not have, or smaller than it must be (a
    /// thunk's header).
    AreaSize {
        /// Which area (`"entry area of a stub"`, ...).
        what: &'static str,
        /// Its size.
        bytes: u32,
    },
    /// A frame area whose size would leave the stack misaligned.
    AreaMisaligned {
        /// Which area.
        what: &'static str,
        /// Its size.
        bytes: u32,
        /// The multiple it must be.
        align: u32,
    },
    /// A frame, or one of its areas, larger than the backend addresses.
    FrameTooLarge {
        /// Which area (`"frame"`, `"outgoing area"`, ...).
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The most the backend takes.
        limit: u64,
    },
    /// An operand in a kind of location the instruction does not take (a pointer loaded into
    /// an XMM register, a helper's count not in a general-purpose register).
    Location {
        /// The location.
        loc: Loc,
        /// What it is used for.
        role: &'static str,
    },
    /// A move of a width the instruction does not encode.
    Width {
        /// The bytes moved.
        bytes: u32,
        /// Where to or from.
        loc: Loc,
    },
    /// A value kind this step does not take (a conversion not done inline, a value for a
    /// parameter of another class).
    Kind {
        /// The kind.
        kind: ValueKind,
        /// What it is used for.
        role: &'static str,
    },
    /// An operand a helper parameter of this kind does not take.
    Operand {
        /// The operand.
        operand: Operand,
        /// The parameter's kind.
        param: ValueKind,
    },
    /// An operand that cannot be the `lua_State *` of an inline step.
    LuaStateOperand(Operand),
    /// Argument `index` of a plan is not in exactly one register.
    ArgNotInOneRegister {
        /// Its position.
        index: usize,
    },
    /// The model could not plan a call the backend needs (a bug in the model).
    Plan(PlanError),
    /// A return location the target's convention does not use for this value.
    ReturnLocation {
        /// The location.
        loc: RetLoc,
        /// The value returned.
        value: ValueKind,
    },
    /// A helper whose own plan this backend does not call (stack arguments, an argument by
    /// reference or split, a vector-register count).
    HelperPlan {
        /// The helper.
        helper: Helper,
        /// What its plan needs.
        needs: &'static str,
    },
    /// A helper call with another number of operands than the helper's parameters.
    HelperArity {
        /// The helper.
        helper: Helper,
        /// Its parameters.
        params: usize,
        /// The operands given.
        given: usize,
    },
    /// Something the target's conventions do not have (e.g. `al` on x86-32).
    NotOnTarget(&'static str),
    /// A count or offset beyond what its instruction encodes.
    OutOfRange {
        /// Which (`"ret pops"`, `"callee pops"`, `"result count"`, ...).
        what: &'static str,
        /// The value.
        value: i64,
    },
    /// A call whose plan asks for a stack alignment the backend's frame does not give
    /// (beyond the target's own, not a power of two, or beyond one page).
    CallAlignment {
        /// The alignment asked, in bytes.
        align: u32,
    },
    /// A Lua stack layout the inline code cannot address.
    LuaLayout {
        /// Which field (`"type tag bytes"`, `"stack slot bytes"`, ...).
        what: &'static str,
        /// Its value.
        value: i64,
    },
}

/// The two kinds of program a backend lowers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgramKind {
    /// A call stub (a `lua_CFunction`).
    Stub,
    /// A callback thunk (a C function).
    Thunk,
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgramKind::Stub => "stub",
            ProgramKind::Thunk => "thunk",
        })
    }
}

impl BackendError {
    /// The error for a step kind the backend has no lowering for.
    pub fn not_lowered(step: &Step) -> BackendError {
        BackendError::NotLowered { index: None, step: step.kind() }
    }

    /// The step a fault is in, once the lowering loop knows it. An error that already names a
    /// step keeps it (the first step to name a fault is the one it is in).
    pub fn at_step(self, index: usize, step: &Step) -> BackendError {
        match self {
            BackendError::NotLowered { index: None, step: kind } => {
                BackendError::NotLowered { index: Some(index), step: kind }
            }
            BackendError::Invalid { step: None, why } => {
                BackendError::Invalid { step: Some((index, step.kind())), why }
            }
            other => other,
        }
    }

    /// The step kind the error names, if any.
    pub fn step(&self) -> Option<StepKind> {
        match self {
            BackendError::NotLowered { step, .. } => Some(*step),
            BackendError::Invalid { step, .. } => step.map(|(_, kind)| kind),
            BackendError::Assembler { .. } => None,
        }
    }
}

impl From<Invalid> for BackendError {
    fn from(why: Invalid) -> BackendError {
        BackendError::Invalid { step: None, why }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NotLowered { index, step } => {
                write!(f, "backend cannot lower step {step}")?;
                if let Some(i) = index {
                    write!(f, " (step {i})")?;
                }
                f.write_str(" (bug)")
            }
            BackendError::Invalid { step: Some((i, kind)), why } => {
                write!(f, "backend cannot lower step {kind} (step {i}): {why} (bug)")
            }
            BackendError::Invalid { step: None, why } => write!(f, "backend cannot lower the program: {why} (bug)"),
            BackendError::Assembler { message } => write!(f, "assembler error: {message}"),
        }
    }
}

/// The [`Invalid`] is part of the message, so it is not also a `source`.
impl std::error::Error for BackendError {}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::WrongTarget(t) => write!(f, "{} is not a target of this backend", t.name()),
            Invalid::AddressTooWide { what, value } => write!(f, "{what} address {value:#x} does not fit a pointer"),
            Invalid::NoHelperAddress(h) => write!(f, "no address for {}", h.name()),
            Invalid::NoCallSlots => f.write_str("an inline step without the embedding's call slots"),
            Invalid::NoLuaLayout => f.write_str("an inline step in a program without a Lua stack layout"),
            Invalid::NoFinalReturn => f.write_str("the program does not end with a return step"),
            Invalid::WrongProgramKind(kind) => write!(f, "not valid in a {kind}"),
            Invalid::SlotOutsideFrame(slot) => write!(f, "{slot} is outside the frame"),
            Invalid::AreaSize { what, bytes } => write!(f, "{what} of {bytes} bytes"),
            Invalid::AreaMisaligned { what, bytes, align } => {
                write!(f, "{what} of {bytes} bytes is not a multiple of {align}")
            }
            Invalid::FrameTooLarge { what, bytes, limit } => {
                write!(f, "{what} of {bytes} bytes exceeds the {limit}-byte limit")
            }
            Invalid::Location { loc, role } => write!(f, "{role} in {loc}"),
            Invalid::Width { bytes, loc } => write!(f, "a {bytes}-byte move with {loc}"),
            Invalid::Kind { kind, role } => write!(f, "a {kind} value {role}"),
            Invalid::Operand { operand, param } => write!(f, "operand {operand} for a {param} parameter"),
            Invalid::LuaStateOperand(operand) => write!(f, "{operand} as the lua_State of an inline step"),
            Invalid::ArgNotInOneRegister { index } => write!(f, "argument {index} is not in one register"),
            Invalid::Plan(e) => write!(f, "planning failed: {e}"),
            Invalid::ReturnLocation { loc, value } => write!(f, "a {value} returned in {loc:?}"),
            Invalid::HelperPlan { helper, needs } => write!(f, "{} needs {needs}", helper.name()),
            Invalid::HelperArity { helper, params, given } => {
                write!(f, "{} takes {params} arguments, not {given}", helper.name())
            }
            Invalid::NotOnTarget(what) => write!(f, "{what} does not exist on this target"),
            Invalid::OutOfRange { what, value } => write!(f, "{what} {value} is out of range"),
            Invalid::CallAlignment { align } => write!(f, "a call needing a {align}-byte aligned stack"),
            Invalid::LuaLayout { what, value } => write!(f, "a Lua stack layout with {what} {value}"),
        }
    }
}

impl std::error::Error for Invalid {}

/// A generated function: its bytes and how to unwind through it, the prologue's ops recorded
/// as they were emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// The machine code.
    pub bytes: Vec<u8>,
    /// Its frame, op by op (offsets from the first byte).
    pub unwind: FrameUnwind,
}

/// A code generator for one target.
pub trait Backend {
    /// The target it generates code for.
    fn target(&self) -> Target;

    /// A call stub: a `lua_CFunction` (`int stub(lua_State *L)` in the target's C
    /// convention) running `program` (from [`crate::lua::steps::stub_program`]), assembled to
    /// run at address `base`, with its frame description.
    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError>;

    /// A callback thunk running `program` (from [`crate::lua::steps::thunk_program`]),
    /// assembled to run at address `base`, with its frame description.
    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError>;

    /// The bytes of [`Backend::stub_code`].
    fn stub(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError> {
        self.stub_code(program, base, env).map(|c| c.bytes)
    }

    /// The bytes of [`Backend::thunk_code`].
    fn thunk(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Vec<u8>, BackendError> {
        self.thunk_code(program, base, env).map(|c| c.bytes)
    }

    /// Whether the bytes of every stub and thunk are the same at every base address (the code
    /// refers to nothing outside itself by a relative address, and to nothing inside itself by
    /// an absolute one), so an embedding may assemble once and copy the code anywhere.
    fn position_independent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::steps::{CallbackFunc, Slot};

    fn enter_inline() -> Step {
        let slow = Step::CallHelper { helper: Helper::CallbackEnter, args: crate::operands![], ret_to: None };
        Step::CallbackEnterInline {
            to: Slot::Stage(0),
            room: 3,
            func: CallbackFunc { value_at: 0, tag_at: 8 },
            slow: Box::new(slow),
        }
    }

    #[test]
    fn a_step_the_backend_does_not_lower_is_named_with_its_position() {
        let e = BackendError::not_lowered(&enter_inline()).at_step(3, &enter_inline());
        assert_eq!(e, BackendError::NotLowered { index: Some(3), step: StepKind::CallbackEnterInline });
        assert_eq!(e.to_string(), "backend cannot lower step CallbackEnterInline (step 3) (bug)");
    }

    #[test]
    fn a_fault_takes_the_first_step_that_names_it() {
        let inner = BackendError::from(Invalid::NoCallSlots);
        assert_eq!(inner.step(), None);
        let named = inner.at_step(2, &enter_inline()).at_step(9, &Step::ReturnToLua { results: 0 });
        assert_eq!(named.step(), Some(StepKind::CallbackEnterInline));
        assert_eq!(
            named.to_string(),
            "backend cannot lower step CallbackEnterInline (step 2): an inline step without the embedding's call slots (bug)"
        );
    }

    #[test]
    fn every_step_kind_has_one_distinct_name() {
        let mut names: Vec<&str> = StepKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), StepKind::ALL.len());
        assert_eq!(enter_inline().kind().to_string(), "CallbackEnterInline");
    }
}
