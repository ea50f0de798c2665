//! Backend-neutral programs for call stubs and callback thunks: the plan as a short list of
//! [`Step`]s that every backend lowers one to one, and that the emulator and the snapshots
//! print.
//!
//! A *stub* is a `lua_CFunction` that converts its Lua arguments with helpers, calls a C
//! function as its [`CallPlan`] says and pushes the result. A *thunk* is a C function that a
//! C caller calls through a pointer; it pushes its arguments as Lua values, calls a Lua
//! function and returns the result as its [`CallbackFrame`] says.
//!
//! Ordering rule, stated once: helper calls clobber the argument registers, so a stub
//! converts every argument into memory (its outgoing area or its staging area) before it
//! loads any argument register, and loads them only after the last helper call.

use crate::callback::{CallbackFrame, FrameArg};
use crate::inline_list::InlineList;
use crate::lua::helpers::Helper;
use crate::lua::vm::LuaVm;
use crate::plan::{ArgPass, CallPlan, Ext, Loc, RetLoc, RetPlan, ValueKind};
use std::fmt;

/// A place in memory a step reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Stubs: `[sp + offset]` inside the outgoing argument area (and copies) of the target
    /// call, as the [`CallPlan`] numbers it.
    Out(u32),
    /// Stubs and thunks: byte `offset` of the staging area, 8-byte slots the program
    /// allocates (where the staging area is, is the backend's choice).
    Stage(u32),
    /// Thunks: `[entry_sp + offset]`, as the [`CallbackFrame`] numbers it.
    Entry(i32),
}

/// Which C type a helper needs (an opaque pointer the embedding supplies per signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtypeRef {
    /// The type of argument `i`.
    Arg(usize),
    /// The return type.
    Ret,
}

/// One argument of a helper call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The `lua_State *` the stub was called with (the thunk's, once entered); also what
    /// the unused slots of [`Operands`] hold.
    #[default]
    L,
    /// An integer constant.
    Imm(i32),
    /// The ctype pointer for an argument or the return value.
    Ctype(CtypeRef),
    /// The callback's own data pointer (thunks: a constant given when the thunk is made).
    CallbackData,
    /// The value of `kind` stored at a slot.
    Value {
        /// Where it is.
        at: Slot,
        /// What it is (decides width and widening to the helper's parameter).
        kind: ValueKind,
    },
    /// The address of a slot.
    Addr(Slot),
    /// The pointer stored at a slot.
    PtrAt(Slot),
}

/// The operands of one helper call step, kept inline (no allocation per helper call): at
/// most [`Helper::MAX_PARAMS`], as many as any helper takes (a step may call `CallbackPcall`
/// with its six on a target that passes them in registers, System V).
pub type Operands = InlineList<Operand, { Helper::MAX_PARAMS }>;

/// [`Operands`] from a list, as `vec!` makes a `Vec`: `operands![Operand::L, Operand::Imm(1)]`.
#[macro_export]
macro_rules! operands {
    ($($op:expr),* $(,)?) => {
        $crate::lua::steps::Operands::new(&[$($op),*])
    };
}

/// Where a return value is stored or loaded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// At the slot itself.
    At(Slot),
    /// Into the memory whose address is stored at the slot.
    Through(Slot),
}

/// One step of a stub or thunk program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Stubs: `n = ArgCount(L)`; when `n != expected`, `ArgCountError(L, expected, n)`, which
    /// never returns.
    CheckArgCount {
        /// The number of Lua arguments the C call takes.
        expected: i32,
    },
    /// Calls a helper as its own [`CallPlan`] says (`Helper::plan`), with these operands,
    /// and stores its result at `ret_to`.
    CallHelper {
        /// Which helper.
        helper: Helper,
        /// Its arguments in order.
        args: Operands,
        /// Where its return value goes.
        ret_to: Option<Slot>,
    },
    /// Stores the address of slot `of` (pointer-sized) at `to`.
    StoreAddr {
        /// Whose address.
        of: Slot,
        /// Where to store it.
        to: Slot,
    },
    /// Stores the pointer held at `from` into `to`.
    CopyPtr {
        /// Where the pointer is.
        from: Slot,
        /// Where it goes.
        to: Slot,
    },
    /// Loads `size` bytes at `from` into the register `to`, widened as `ext` says.
    LoadArg {
        /// A [`Loc::Gpr`] or [`Loc::Xmm`].
        to: Loc,
        /// Where the bytes are.
        from: Slot,
        /// How many.
        size: u32,
        /// Widening.
        ext: Ext,
    },
    /// Loads the pointer held at `from` into a register (hidden return pointer, Win64
    /// by-reference arguments whose pointer goes in a register).
    LoadPtr {
        /// The register.
        to: Loc,
        /// The slot holding the pointer.
        from: Slot,
    },
    /// Loads the address of slot `of` into a register.
    LoadAddr {
        /// The register.
        to: Loc,
        /// Whose address.
        of: Slot,
    },
    /// SysV variadic calls: `al` = an upper bound of the vector registers used.
    SetAl(u8),
    /// Calls the C function whose address is at `via`; the callee pops `callee_pops` bytes,
    /// which the stub puts back.
    CallTarget {
        /// The slot holding the function address.
        via: Slot,
        /// Bytes the callee removes from the stack.
        callee_pops: u32,
    },
    /// Stores the value the call returned (`ret.loc`) to `to`, right after the call.
    SaveReturn {
        /// The return plan.
        ret: RetPlan,
        /// Where its bytes go.
        to: Dest,
    },
    /// Thunks: stores the incoming register `from` (`size` bytes) at `to`, first thing.
    Spill {
        /// The register.
        from: Loc,
        /// Bytes.
        size: u32,
        /// Where.
        to: Slot,
    },
    /// Thunks: loads the return value from `from` into its return location.
    LoadReturn {
        /// The return plan.
        ret: RetPlan,
        /// Where its bytes are.
        from: Dest,
    },
    /// Stubs with a [`LuaVm`]: the count check of [`Step::CheckArgCount`] made from `L->top`
    /// and the arguments' base instead of `lua_gettop`; on a mismatch the count is computed
    /// and `ArgCountError(L, expected, n)` called as there.
    CheckArgCountInline {
        /// The number of Lua arguments the C call takes.
        expected: i32,
    },
    /// Closure-mode stubs with a [`LuaVm`]: stores at `to` the light userdata in upvalue
    /// `n` (1-based) of the running C closure, which holds the called function's address.
    FuncAddrFromUpvalue {
        /// The upvalue.
        n: u32,
        /// Where the address goes.
        to: Slot,
    },
    /// Stubs and thunks with a [`LuaVm`]: when the Lua value at `lua_index` (an argument;
    /// -1: the callback's result, below `L->top`) is a number that
    /// [`LuaVm::converts_inline`] takes for `kind`, converts it inline and stores at `to`
    /// what `slow` would store there; otherwise runs `slow` (the conversion helper's call).
    ToCInline {
        /// The `lua_State *`: [`Operand::L`] in a stub, the pointer at a slot in a thunk.
        l: Operand,
        /// The Lua stack index.
        lua_index: i32,
        /// The C value wanted.
        kind: ValueKind,
        /// Where it goes, as wide as the helper's result.
        to: Slot,
        /// The [`Step::CallHelper`] for every other value.
        slow: Box<Step>,
    },
    /// Stubs with a [`LuaVm`]: a pointer argument inline when Lua argument `lua_index` is nil
    /// (NULL) or, with `strings`, a string (the address of its bytes, what `lua_tolstring`
    /// gives); otherwise runs `slow` (the `ToPtr` call).
    PtrInline {
        /// The Lua stack index.
        lua_index: i32,
        /// Where the pointer goes.
        to: Slot,
        /// Whether the pointer type takes a Lua string's bytes (`const char *`, `const void *`).
        strings: bool,
        /// The [`Step::CallHelper`] for every other value.
        slow: Box<Step>,
    },
    /// Stubs with a [`LuaVm`] and a [`CdataLayout`]: when Lua argument `lua_index` is a
    /// value cdata of exactly the argument's type (`ctype(arg)`), copies its `size` bytes to
    /// `to`; otherwise runs `slow` (the `ToRecord` call, which converts into `to`).
    RecordInline {
        /// The Lua stack index.
        lua_index: i32,
        /// The C argument (whose ctype the cdata must have).
        arg: usize,
        /// Where the bytes go.
        to: Slot,
        /// How many.
        size: u32,
        /// How the embedding's value cdata are told.
        cdata: CdataLayout,
        /// The [`Step::CallHelper`] for every other value.
        slow: Box<Step>,
    },
    /// Stubs and thunks with a [`LuaVm`]: pushes the `kind` value at `from` as a Lua number
    /// by writing the slot at `L->top` and moving `top` up one slot (a `lua_CFunction` has
    /// `LUA_MINSTACK` free slots; a thunk's enter helper made room for its arguments), as
    /// [`LuaVm::pushes_inline`] says; a `uint64_t` above
    /// `INT64_MAX` runs `slow` (the push helper's call).
    PushInline {
        /// The `lua_State *`, as for [`Step::ToCInline`].
        l: Operand,
        /// Where the C value is.
        from: Slot,
        /// Its kind.
        kind: ValueKind,
        /// The [`Step::CallHelper`] for values that do not fit inline.
        slow: Box<Step>,
    },
    /// Stubs with inline errno (in place of the `ErrnoRestore` call): stores
    /// `ErrnoLocation()` at `errno_at`, sets `errno` to the saved value, and the calling
    /// thread to `L` ([`crate::lua::CallSlots`]) after storing the one it replaces at `prev_l_at`.
    ErrnoRestoreInline {
        /// Where the address of `errno` is kept across the call.
        errno_at: Slot,
        /// Where the calling thread before the call is kept.
        prev_l_at: Slot,
    },
    /// Stubs with inline errno (in place of the `AfterCall` call), right after the call:
    /// saves `errno` (through the address at `errno_at`), puts back the calling thread kept
    /// at `prev_l_at`, and runs `slow` (the `AfterCall` helper, which raises it) when a
    /// callback error is pending.
    AfterCallInline {
        /// Where the address of `errno` is.
        errno_at: Slot,
        /// Where the calling thread before the call is.
        prev_l_at: Slot,
        /// The [`Step::CallHelper`] of `AfterCall`.
        slow: Box<Step>,
    },
    /// Thunks with a [`LuaVm`] and a [`CallbackFunc`] (in place of the `CallbackEnter`
    /// call): picks the thread (`calling_l`, else `main_l`, of [`crate::lua::CallSlots`]); when
    /// the callback record holds its function's stack value and `lua_checkstack(L, room)`
    /// would change nothing (the stack has room for `room` more slots and the current
    /// `CallInfo`'s `top` allows them, [`LuaVm::room`]), pushes that value and stores L at
    /// `to`; otherwise runs `slow` (the `CallbackEnter` call, which stores L at `to`).
    CallbackEnterInline {
        /// Where L goes.
        to: Slot,
        /// Stack slots the callback needs: its function, arguments and
        /// [`CALLBACK_EXTRA_SLOTS`].
        room: u32,
        /// Where the callback record holds the function's value.
        func: CallbackFunc,
        /// The [`Step::CallHelper`] of `CallbackEnter`.
        slow: Box<Step>,
    },
    /// Thunks with a [`LuaVm`] (in place of the `CallbackCall` call): when no callback
    /// error is pending ([`crate::lua::CallSlots`]), calls `CallbackPcall(L, nargs)` and keeps
    /// its status at `status_at`; then, unless the status is 0 and the result is a number
    /// ([`LuaVm::converts_inline`] of `result`, which the following [`Step::ToCInline`]
    /// converts) or the callback returns nothing (`result` is `Void`), calls
    /// `CallbackResult(L, status, cb)`. With an error pending, runs `slow` (the
    /// `CallbackCall` call, which leaves a zero without running Lua).
    CallbackCallInline {
        /// The `lua_State *` (the pointer at a slot).
        l: Operand,
        /// Number of arguments pushed.
        nargs: u32,
        /// The callback's C return kind (`Void`: none; one the layout does not convert:
        /// always checked by the helper).
        result: ValueKind,
        /// Where the status is kept.
        status_at: Slot,
        /// The [`Step::CallHelper`] of `CallbackCall`.
        slow: Box<Step>,
    },
    /// Thunks with a [`LuaVm`] (in place of the `CallbackLeave` call): pops one value
    /// (`L->top` down one slot).
    PopInline {
        /// The `lua_State *` (the pointer at a slot).
        l: Operand,
    },
    /// Stubs: returns `results` Lua values to Lua.
    ReturnToLua {
        /// 0 or 1.
        results: u32,
    },
    /// Thunks: returns to the C caller, popping `pops` bytes; with `ret_ptr`, the hidden
    /// return pointer held there comes back in eax/rax.
    ReturnToC {
        /// Bytes to pop (`ret n`).
        pops: u32,
        /// Where the hidden return pointer is, for aggregate returns through memory.
        ret_ptr: Option<Slot>,
    },
}

/// Declares [`StepKind`] and its [`StepKind::ALL`] from one list, so no kind can be missing
/// from `ALL`; [`Step::kind`]'s exhaustive match makes a new [`Step`] variant need one.
macro_rules! step_kinds {
    ($($kind:ident),+ $(,)?) => {
        /// Which [`Step`] variant a step is, without its operands: what an error or a test
        /// names ([`StepKind::name`] is the variant's name).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum StepKind {
            $(
                #[doc = concat!("[`Step::", stringify!($kind), "`].")]
                $kind,
            )+
        }

        impl StepKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [StepKind] = &[$(StepKind::$kind),+];

            /// The variant's name, e.g. `"CallbackEnterInline"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(StepKind::$kind => stringify!($kind),)+
                }
            }
        }
    };
}

step_kinds!(
    CheckArgCount,
    CallHelper,
    StoreAddr,
    CopyPtr,
    LoadArg,
    LoadPtr,
    LoadAddr,
    SetAl,
    CallTarget,
    SaveReturn,
    Spill,
    LoadReturn,
    CheckArgCountInline,
    FuncAddrFromUpvalue,
    ToCInline,
    PtrInline,
    RecordInline,
    PushInline,
    ErrnoRestoreInline,
    AfterCallInline,
    CallbackEnterInline,
    CallbackCallInline,
    PopInline,
    ReturnToLua,
    ReturnToC,
);

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Step {
    /// Which variant this step is.
    pub fn kind(&self) -> StepKind {
        match self {
            Step::CheckArgCount { .. } => StepKind::CheckArgCount,
            Step::CallHelper { .. } => StepKind::CallHelper,
            Step::StoreAddr { .. } => StepKind::StoreAddr,
            Step::CopyPtr { .. } => StepKind::CopyPtr,
            Step::LoadArg { .. } => StepKind::LoadArg,
            Step::LoadPtr { .. } => StepKind::LoadPtr,
            Step::LoadAddr { .. } => StepKind::LoadAddr,
            Step::SetAl(_) => StepKind::SetAl,
            Step::CallTarget { .. } => StepKind::CallTarget,
            Step::SaveReturn { .. } => StepKind::SaveReturn,
            Step::Spill { .. } => StepKind::Spill,
            Step::LoadReturn { .. } => StepKind::LoadReturn,
            Step::CheckArgCountInline { .. } => StepKind::CheckArgCountInline,
            Step::FuncAddrFromUpvalue { .. } => StepKind::FuncAddrFromUpvalue,
            Step::ToCInline { .. } => StepKind::ToCInline,
            Step::PtrInline { .. } => StepKind::PtrInline,
            Step::RecordInline { .. } => StepKind::RecordInline,
            Step::PushInline { .. } => StepKind::PushInline,
            Step::ErrnoRestoreInline { .. } => StepKind::ErrnoRestoreInline,
            Step::AfterCallInline { .. } => StepKind::AfterCallInline,
            Step::CallbackEnterInline { .. } => StepKind::CallbackEnterInline,
            Step::CallbackCallInline { .. } => StepKind::CallbackCallInline,
            Step::PopInline { .. } => StepKind::PopInline,
            Step::ReturnToLua { .. } => StepKind::ReturnToLua,
            Step::ReturnToC { .. } => StepKind::ReturnToC,
        }
    }
}

/// A stub or thunk as steps, plus the frame sizes its backend must provide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The steps in order.
    pub steps: Vec<Step>,
    /// Stubs: bytes of the outgoing area at `[sp, sp + out_bytes)` (the plan's
    /// `frame_bytes`); thunks: 0.
    pub out_bytes: u32,
    /// Bytes of the staging area (a multiple of 16).
    pub stage_bytes: u32,
    /// Thunks: bytes below the return address that [`Slot::Entry`] offsets reach into (the
    /// frame's header and save area, `CallbackFrame::header + save_bytes`); stubs: 0.
    pub entry_bytes: u32,
    /// The Lua stack layout the inline steps read and write (stubs built with [`Inline`]).
    pub vm: Option<LuaVm>,
    /// Stubs: the alignment of the outgoing area at [`Step::CallTarget`], the plan's
    /// [`CallPlan::frame_align`]: its `stack_align`, or a by-reference copy's record alignment
    /// when larger. When it exceeds the alignment the stub is entered with (the target's
    /// `stack_align`: a SysV call passing an `aligned(32)` record on the stack, a Win64 copy of
    /// one), the backend realigns its outgoing area to it, as gcc's caller does with
    /// `and rsp, -32`.
    /// Thunks, and programs made with [`Program::new`]: 0, nothing beyond the entry's.
    pub out_align: u32,
}

impl Program {
    /// A program of `steps` with these frame sizes whose stack needs no alignment beyond
    /// what it is entered with (`out_align` 0).
    pub fn new(steps: Vec<Step>, out_bytes: u32, stage_bytes: u32, entry_bytes: u32, vm: Option<LuaVm>) -> Program {
        Program { steps, out_bytes, stage_bytes, entry_bytes, vm, out_align: 0 }
    }
}

/// How stubs tell a value cdata of exactly a record argument's type, whose bytes they copy
/// ([`Step::RecordInline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdataLayout {
    /// A header at the start of the userdata block says the type and the storage.
    Header(CdataHeader),
    /// No header: a value's bytes are its whole block, and its type is told by its
    /// userdata's metatable (at [`crate::lua::vm::LuaUserdata::metatable_at`]), the one whose
    /// address the type's ctype holds at `desc_metatable_at`. The block must be at least the
    /// record's size (a smaller userdata given that metatable is not read past its end).
    Bare {
        /// Offset, in the argument's ctype, of the address of its values' metatable (one no
        /// userdata has while the type has none: the embedding keeps an impossible address
        /// there until then).
        desc_metatable_at: u32,
    },
}

/// The embedding's header at the start of a cdata's userdata block, for stubs that copy a
/// record argument from a cdata of exactly its type ([`CdataLayout::Header`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdataHeader {
    /// Bytes the block needs for a header (a smaller userdata is not a cdata).
    pub size: u32,
    /// Offset of the descriptor word: equal to the argument's ctype exactly when the block
    /// holds a value of that type whose bytes are at `bytes_at` (any other cdata of that type,
    /// a reference or a value stored elsewhere, carries other bits there and takes the slow
    /// path).
    pub desc_at: u32,
    /// Offset of such a value's bytes in the block.
    pub bytes_at: u32,
    /// Offset of the tag word: a cdata's block carries `rotate_left(block, tag_rotate) ^
    /// tag_key` there (how the embedding tells its cdata from other userdata).
    pub tag_at: u32,
    /// The rotation.
    pub tag_rotate: u32,
    /// The key.
    pub tag_key: u64,
}

/// Stack slots a callback's entry makes sure of beyond its function and arguments, for the
/// helpers that push while it runs (a conversion's temporaries). The embedding's
/// `CallbackEnter` asks `lua_checkstack` for the same.
pub const CALLBACK_EXTRA_SLOTS: u32 = 8;

/// Where a callback's record (the callback-data constant points at it) holds a copy of its
/// Lua function's stack value, for [`Step::CallbackEnterInline`] to push: the 8-byte value,
/// and a 4-byte tag that is [`CallbackFunc::NONE`] when the record has no copy (the
/// `CallbackEnter` helper then pushes the function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackFunc {
    /// Offset of the value in the record.
    pub value_at: u32,
    /// Offset of the tag (a `u32`, stored into the slot's tag as wide as the layout's).
    pub tag_at: u32,
}

impl CallbackFunc {
    /// The tag of a record without a copy of its function's value.
    pub const NONE: u32 = u32::MAX;
}

/// What a stub may do without helpers: the layout of the Lua it runs on, and for a
/// closure-mode stub where the called function's address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inline {
    /// The Lua stack layout, checked against the running Lua by the embedding.
    pub vm: LuaVm,
    /// The upvalue (1-based) of the stub's C closure holding the called function's address
    /// as a light userdata; `None` when the stub is not run as a closure with one.
    pub func_upvalue: Option<u32>,
    /// Whether `errno` and the per-state fields are restored and saved inline (the
    /// embedding supplies [`crate::lua::CallSlots`] and the `ErrnoLocation` helper).
    pub errno: bool,
    /// Bit `i` set: C argument `i` (`i < 64`) is a pointer whose type takes a Lua string as
    /// its bytes (the embedding's conversion rule; LuaJIT's: `const char *`, `const void *`).
    pub string_args: u64,
    /// How the embedding's value cdata are told, for record arguments copied inline; `None`:
    /// through the `ToRecord` helper.
    pub cdata: Option<CdataLayout>,
    /// Thunks: where the callback record holds its function's value, for an inline entry
    /// (the embedding supplies [`crate::lua::CallSlots`] with `main_l`); `None`: the
    /// `CallbackEnter` helper pushes it.
    pub callback: Option<CallbackFunc>,
}

impl Inline {
    /// The layout alone: the count check, numbers and nil pointers inline; the function
    /// address, errno, strings and records through the helpers; a thunk's entry through its
    /// helper.
    pub fn layout_only(vm: LuaVm) -> Inline {
        Inline { vm, func_upvalue: None, errno: false, string_args: 0, cdata: None, callback: None }
    }

    /// What a thunk takes inline: [`Inline::layout_only`] with its entry, whose record holds
    /// the function's value as `func` says.
    pub fn callback(vm: LuaVm, func: CallbackFunc) -> Inline {
        Inline { callback: Some(func), ..Inline::layout_only(vm) }
    }
}

/// Allocates staging slots.
struct Stage(u32);

impl Stage {
    fn take(&mut self, bytes: u32) -> Slot {
        let at = self.0;
        self.0 += bytes.div_ceil(8) * 8;
        Slot::Stage(at)
    }
}

/// The stack offset of an argument passed whole on the stack; `None` when its parts go in
/// registers (through the staging area).
fn stack_only(parts: &[crate::plan::Part]) -> Option<u32> {
    match parts {
        [crate::plan::Part { loc: Loc::Stack { offset }, .. }] => Some(*offset),
        _ => None,
    }
}

/// The helper that converts a Lua value to a C value of `kind` (records, and the integers
/// read and written by their C type, [`ValueKind::TypedInt`]: [`Helper::ToRecord`], which
/// stores the value's bytes by its ctype).
pub fn to_c_helper(kind: ValueKind) -> Helper {
    match kind {
        ValueKind::Bool => Helper::ToBool,
        // A 16-byte integer travels as a memory block, like a record.
        ValueKind::Int { size: 16, .. } => Helper::ToRecord,
        ValueKind::Int { size: 8, signed: true } => Helper::ToI64,
        ValueKind::Int { size: 8, signed: false } => Helper::ToU64,
        // Narrow integers come back already narrowed and widened to 32 bits, so a stack slot
        // written straight from the helper's result is extended as the ABI expects.
        ValueKind::Int { size: 1, signed: true } => Helper::ToI8,
        ValueKind::Int { size: 1, signed: false } => Helper::ToU8,
        ValueKind::Int { size: 2, signed: true } => Helper::ToI16,
        ValueKind::Int { size: 2, signed: false } => Helper::ToU16,
        ValueKind::Int { signed: true, .. } => Helper::ToI32,
        ValueKind::Int { signed: false, .. } => Helper::ToU32,
        ValueKind::F32 => Helper::ToF32,
        ValueKind::F64 => Helper::ToF64,
        ValueKind::Pointer => Helper::ToPtr,
        ValueKind::ComplexF32
        | ValueKind::ComplexF64
        | ValueKind::Record { .. }
        | ValueKind::TypedInt { .. }
        | ValueKind::Void => Helper::ToRecord,
    }
}

/// The helper that pushes a C value of `kind` as a Lua value ([`ValueKind::TypedInt`]: the
/// bytes by their ctype, [`Helper::PushRecord`], which reads them as the embedding reads that
/// type from memory).
pub fn to_lua_helper(kind: ValueKind) -> Helper {
    match kind {
        ValueKind::Bool => Helper::PushBool,
        ValueKind::Int { size: 16, .. } => Helper::PushRecord,
        ValueKind::Int { size: 8, signed: true } => Helper::PushI64,
        ValueKind::Int { size: 8, signed: false } => Helper::PushU64,
        ValueKind::Int { signed: true, .. } => Helper::PushI32,
        ValueKind::Int { signed: false, .. } => Helper::PushU32,
        ValueKind::F32 => Helper::PushF32,
        ValueKind::F64 => Helper::PushF64,
        ValueKind::Pointer => Helper::PushPtr,
        ValueKind::ComplexF32
        | ValueKind::ComplexF64
        | ValueKind::Record { .. }
        | ValueKind::TypedInt { .. }
        | ValueKind::Void => Helper::PushRecord,
    }
}

/// True for values that travel as memory blocks between Lua and C (structs, unions,
/// complex numbers, 16-byte integers).
fn is_aggregate(kind: ValueKind) -> bool {
    matches!(
        kind,
        ValueKind::ComplexF32 | ValueKind::ComplexF64 | ValueKind::Record { .. } | ValueKind::Int { size: 16, .. }
    )
}

/// Steps that convert Lua argument `lua_index` for C argument `arg` into `dst`.
#[inline(always)]
fn convert(arg: usize, kind: ValueKind, lua_index: i32, dst: Slot) -> Step {
    let helper = to_c_helper(kind);
    match helper {
        Helper::ToRecord => Step::CallHelper {
            helper,
            args: crate::operands![
                Operand::L,
                Operand::Imm(lua_index),
                Operand::Ctype(CtypeRef::Arg(arg)),
                Operand::Addr(dst)
            ],
            ret_to: None,
        },
        Helper::ToPtr => Step::CallHelper {
            helper,
            args: crate::operands![Operand::L, Operand::Imm(lua_index), Operand::Ctype(CtypeRef::Arg(arg))],
            ret_to: Some(dst),
        },
        _ => {
            Step::CallHelper { helper, args: crate::operands![Operand::L, Operand::Imm(lua_index)], ret_to: Some(dst) }
        }
    }
}

/// The stub program for `plan`: the C arguments are the Lua arguments
/// `first_lua_index, first_lua_index + 1, ...`; every conversion through a helper.
pub fn stub_program(plan: &CallPlan, first_lua_index: i32) -> Program {
    stub_program_inline(plan, first_lua_index, None)
}

/// [`stub_program`] with the inline steps `inline` allows: the count check, the function
/// address, number arguments and number results (each inline step keeps its helper call for
/// the values it does not take). A layout for another pointer size is ignored.
pub fn stub_program_inline(plan: &CallPlan, first_lua_index: i32, inline: Option<&Inline>) -> Program {
    stub_program_in(Vec::new(), plan, first_lua_index, inline)
}

/// [`stub_program_inline`], its steps written into `steps` (cleared first): a caller that
/// builds many programs and drops each soon after (tier 0 compiles then drops them) passes
/// the last one's `steps` back and allocates once.
pub fn stub_program_in(
    mut steps: Vec<Step>,
    plan: &CallPlan,
    first_lua_index: i32,
    inline: Option<&Inline>,
) -> Program {
    let w = plan.ptr_size;
    let inline = inline.filter(|i| i.vm.ptr_size == w);
    let vm = inline.map(|i| i.vm);
    let mut stage = Stage(0);
    let expected = plan.args.len() as i32 + first_lua_index - 1;
    // Room for an argument's conversion and its register loads, and the fixed steps, so the
    // list rarely grows.
    steps.clear();
    steps.reserve(2 * plan.args.len() + 10);
    steps.push(if vm.is_some() { Step::CheckArgCountInline { expected } } else { Step::CheckArgCount { expected } });
    let target = stage.take(w);
    steps.push(match inline.and_then(|i| i.func_upvalue) {
        Some(n) => Step::FuncAddrFromUpvalue { n, to: target },
        None => Step::CallHelper { helper: Helper::FuncAddr, args: crate::operands![Operand::L], ret_to: Some(target) },
    });
    let string_args = inline.map_or(0, |i| i.string_args);
    let cdata_layout = inline.and_then(|i| i.cdata);
    let convert = |arg: usize, kind: ValueKind, lua_index: i32, dst: Slot| -> Step {
        // Without a layout (tier 0's programs) the helper call is the step: made where it is
        // returned, not moved out of a match (a step is 168 bytes: each move is a `memcpy`).
        let Some(vm) = vm else { return convert(arg, kind, lua_index, dst) };
        let slow = convert(arg, kind, lua_index, dst);
        match vm {
            _ if vm.converts_inline(kind) => {
                Step::ToCInline { l: Operand::L, lua_index, kind, to: dst, slow: Box::new(slow) }
            }
            _ if kind == ValueKind::Pointer => Step::PtrInline {
                lua_index,
                to: dst,
                strings: arg < 64 && string_args & (1 << arg) != 0,
                slow: Box::new(slow),
            },
            _ if is_aggregate(kind) => match cdata_layout {
                Some(cdata) => {
                    Step::RecordInline { lua_index, arg, to: dst, size: kind.size(w), cdata, slow: Box::new(slow) }
                }
                None => slow,
            },
            _ => slow,
        }
    };
    // Aggregate results are written straight into a new cdata made before the call.
    let result_ptr = if is_aggregate(plan.ret.value) {
        let at = stage.take(w);
        steps.push(Step::CallHelper {
            helper: Helper::NewResult,
            args: crate::operands![Operand::L, Operand::Ctype(CtypeRef::Ret)],
            ret_to: Some(at),
        });
        Some(at)
    } else {
        None
    };
    // Pass 1: every argument into memory: a register argument into the staging area, where
    // pass 2 loads it from (it replays the staging allocations made here, from this point).
    let stage_of_args = stage.0;
    for (i, a) in plan.args.iter().enumerate() {
        let lua_index = first_lua_index + i as i32;
        match &a.pass {
            ArgPass::Direct(parts) => match stack_only(parts) {
                Some(offset) => steps.push(convert(i, a.value, lua_index, Slot::Out(offset))),
                None => {
                    let at = stage.take(a.value.size(w).max(w));
                    steps.push(convert(i, a.value, lua_index, at));
                }
            },
            ArgPass::Indirect { ptr, copy_at } => {
                steps.push(convert(i, a.value, lua_index, Slot::Out(*copy_at)));
                if let Loc::Stack { offset } = ptr {
                    steps.push(Step::StoreAddr { of: Slot::Out(*copy_at), to: Slot::Out(*offset) })
                }
            }
        }
    }
    if let (RetLoc::Sret { ptr: Loc::Stack { offset } }, Some(result)) = (plan.ret.loc, result_ptr) {
        steps.push(Step::CopyPtr { from: result, to: Slot::Out(offset) });
    }
    // The thread callbacks run on is L during the call and what it was before afterwards
    // (outside every call: none, the main thread), so a callback never runs on a coroutine
    // that made an earlier call and has since yielded.
    let prev_l_at = stage.take(w);
    let errno_at = inline.filter(|i| i.errno).map(|_| stage.take(w));
    steps.push(match errno_at {
        Some(errno_at) => Step::ErrnoRestoreInline { errno_at, prev_l_at },
        None => Step::CallHelper {
            helper: Helper::ErrnoRestore,
            args: crate::operands![Operand::L, Operand::Ctype(CtypeRef::Ret)],
            ret_to: Some(prev_l_at),
        },
    });
    let after_call = || {
        let call = Step::CallHelper {
            helper: Helper::AfterCall,
            args: crate::operands![Operand::L, Operand::Ctype(CtypeRef::Ret), Operand::PtrAt(prev_l_at)],
            ret_to: None,
        };
        match errno_at {
            Some(errno_at) => Step::AfterCallInline { errno_at, prev_l_at, slow: Box::new(call) },
            None => call,
        }
    };
    // Pass 2: the argument registers, after the last helper call, in argument order, then the
    // hidden return pointer's.
    let mut stage_again = Stage(stage_of_args);
    for a in &plan.args {
        match &a.pass {
            ArgPass::Direct(parts) if stack_only(parts).is_none() => {
                let Slot::Stage(base) = stage_again.take(a.value.size(w).max(w)) else { unreachable!() };
                for p in parts {
                    let from = Slot::Stage(base + p.offset);
                    steps.push(Step::LoadArg { to: p.loc, from, size: p.size, ext: p.ext });
                }
            }
            ArgPass::Indirect { ptr, copy_at } if !matches!(ptr, Loc::Stack { .. }) => {
                steps.push(Step::LoadAddr { to: *ptr, of: Slot::Out(*copy_at) })
            }
            _ => {}
        }
    }
    if let (RetLoc::Sret { ptr }, Some(result)) = (plan.ret.loc, result_ptr) {
        if !matches!(ptr, Loc::Stack { .. }) {
            steps.push(Step::LoadPtr { to: ptr, from: result });
        }
    }
    if let Some(n) = plan.al {
        steps.push(Step::SetAl(n));
    }
    steps.push(Step::CallTarget { via: target, callee_pops: plan.callee_pops });
    let results = match (plan.ret.value, result_ptr) {
        (ValueKind::Void, _) => {
            steps.push(after_call());
            0
        }
        (_, Some(result)) => {
            // Through memory, the callee already wrote the result.
            if !matches!(plan.ret.loc, RetLoc::Sret { .. }) {
                steps.push(Step::SaveReturn { ret: plan.ret, to: Dest::Through(result) });
            }
            steps.push(after_call());
            1
        }
        (kind, None) => {
            let at = stage.take(kind.size(w).max(w));
            steps.push(Step::SaveReturn { ret: plan.ret, to: Dest::At(at) });
            steps.push(after_call());
            let helper = to_lua_helper(kind);
            let args = match helper {
                // A value read by its type: its bytes, where the return was saved.
                Helper::PushRecord => crate::operands![Operand::L, Operand::Ctype(CtypeRef::Ret), Operand::Addr(at)],
                Helper::PushPtr => {
                    crate::operands![Operand::L, Operand::Value { at, kind }, Operand::Ctype(CtypeRef::Ret)]
                }
                _ => crate::operands![Operand::L, Operand::Value { at, kind }],
            };
            let slow = Step::CallHelper { helper, args, ret_to: None };
            steps.push(match vm {
                Some(vm) if vm.pushes_inline(kind) => {
                    Step::PushInline { l: Operand::L, from: at, kind, slow: Box::new(slow) }
                }
                _ => slow,
            });
            1
        }
    };
    steps.push(Step::ReturnToLua { results });
    let frame = Program::new(steps, plan.frame_bytes(), stage.0.div_ceil(16) * 16, 0, vm);
    Program { out_align: plan.frame_align(), ..frame }
}

/// The thunk program for a callback with this frame: every conversion through a helper.
pub fn thunk_program(frame: &CallbackFrame) -> Program {
    thunk_program_inline(frame, None)
}

/// [`thunk_program`] with number arguments pushed and a number result converted inline where
/// `inline`'s layout allows (a layout for another pointer size is ignored); the Lua call
/// without the `CallbackCall` wrapper and the pop inline; with [`Inline::callback`], the
/// entry too.
pub fn thunk_program_inline(frame: &CallbackFrame, inline: Option<&Inline>) -> Program {
    let w = frame.ptr_size;
    let inline = inline.filter(|i| i.vm.ptr_size == w);
    let vm = inline.map(|i| i.vm);
    let mut stage = Stage(0);
    let mut steps: Vec<Step> =
        frame.spills.iter().map(|s| Step::Spill { from: s.from, size: s.size, to: Slot::Entry(s.to) }).collect();
    let l_slot = stage.take(w);
    let l = Operand::PtrAt(l_slot);
    let nargs = frame.args.len() as u32;
    let enter = Step::CallHelper {
        helper: Helper::CallbackEnter,
        args: crate::operands![Operand::CallbackData],
        ret_to: Some(l_slot),
    };
    steps.push(match inline.and_then(|i| i.callback) {
        Some(func) => Step::CallbackEnterInline {
            to: l_slot,
            room: nargs + 1 + CALLBACK_EXTRA_SLOTS,
            func,
            slow: Box::new(enter),
        },
        None => enter,
    });
    let kinds: Vec<ValueKind> = frame.arg_kinds.clone();
    for (i, (arg, kind)) in frame.args.iter().zip(kinds).enumerate() {
        let helper = to_lua_helper(kind);
        let value_at = match *arg {
            FrameArg::Value { at } => Slot::Entry(at),
            FrameArg::ByRef { ptr_at } => Slot::Entry(ptr_at),
        };
        let args = match (helper, arg) {
            (Helper::PushRecord, FrameArg::Value { .. }) => {
                crate::operands![l, Operand::Ctype(CtypeRef::Arg(i)), Operand::Addr(value_at)]
            }
            (Helper::PushRecord, FrameArg::ByRef { .. }) => {
                crate::operands![l, Operand::Ctype(CtypeRef::Arg(i)), Operand::PtrAt(value_at)]
            }
            (Helper::PushPtr, _) => {
                crate::operands![l, Operand::Value { at: value_at, kind }, Operand::Ctype(CtypeRef::Arg(i))]
            }
            _ => crate::operands![l, Operand::Value { at: value_at, kind }],
        };
        let slow = Step::CallHelper { helper, args, ret_to: None };
        steps.push(match (vm, arg) {
            (Some(vm), FrameArg::Value { .. }) if vm.pushes_inline(kind) => {
                Step::PushInline { l, from: value_at, kind, slow: Box::new(slow) }
            }
            _ => slow,
        });
    }
    let call = Step::CallHelper {
        helper: Helper::CallbackCall,
        args: crate::operands![l, Operand::Imm(nargs as i32), Operand::CallbackData],
        ret_to: None,
    };
    steps.push(match vm {
        Some(_) => Step::CallbackCallInline {
            l,
            nargs,
            result: frame.ret.value,
            status_at: stage.take(4.max(w)),
            slow: Box::new(call),
        },
        None => call,
    });
    let ret = frame.ret;
    let ret_ptr = frame.sret_ptr.map(Slot::Entry);
    let result: Option<Dest> = match (ret.value, ret_ptr) {
        (ValueKind::Void, _) => None,
        (_, Some(ptr)) => {
            // Through memory: convert straight into the caller's buffer.
            steps.push(Step::CallHelper {
                helper: Helper::ToRecord,
                args: crate::operands![l, Operand::Imm(-1), Operand::Ctype(CtypeRef::Ret), Operand::PtrAt(ptr)],
                ret_to: None,
            });
            None
        }
        (kind, None) => {
            let at = stage.take(kind.size(w).max(w));
            let helper = to_c_helper(kind);
            let args = match helper {
                Helper::ToRecord => {
                    crate::operands![l, Operand::Imm(-1), Operand::Ctype(CtypeRef::Ret), Operand::Addr(at)]
                }
                Helper::ToPtr => crate::operands![l, Operand::Imm(-1), Operand::Ctype(CtypeRef::Ret)],
                _ => crate::operands![l, Operand::Imm(-1)],
            };
            let ret_to = if helper == Helper::ToRecord { None } else { Some(at) };
            let slow = Step::CallHelper { helper, args, ret_to };
            steps.push(match vm {
                Some(vm) if vm.converts_inline(kind) => {
                    Step::ToCInline { l, lua_index: -1, kind, to: at, slow: Box::new(slow) }
                }
                _ => slow,
            });
            Some(Dest::At(at))
        }
    };
    steps.push(match vm {
        Some(_) => Step::PopInline { l },
        None => Step::CallHelper { helper: Helper::CallbackLeave, args: crate::operands![l], ret_to: None },
    });
    if let Some(from) = result {
        steps.push(Step::LoadReturn { ret, from });
    }
    steps.push(Step::ReturnToC { pops: frame.pops, ret_ptr });
    Program::new(steps, 0, stage.0.div_ceil(16) * 16, frame.header + frame.save_bytes, vm)
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Out(o) => write!(f, "out[{o}]"),
            Slot::Stage(o) => write!(f, "stage[{o}]"),
            Slot::Entry(o) => write!(f, "entry[{o:+}]"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::L => f.write_str("L"),
            Operand::Imm(i) => write!(f, "{i}"),
            Operand::Ctype(CtypeRef::Arg(i)) => write!(f, "ctype(arg{i})"),
            Operand::Ctype(CtypeRef::Ret) => f.write_str("ctype(ret)"),
            Operand::CallbackData => f.write_str("cbdata"),
            Operand::Value { at, kind } => write!(f, "{kind} {at}"),
            Operand::Addr(s) => write!(f, "&{s}"),
            Operand::PtrAt(s) => write!(f, "*{s}"),
        }
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::At(s) => write!(f, "{s}"),
            Dest::Through(s) => write!(f, "*{s}"),
        }
    }
}

/// How an inline step names its `lua_State *` when it is not the stub's own.
fn on_l(l: &Operand) -> String {
    match l {
        Operand::L => String::new(),
        other => format!(" of L = {other}"),
    }
}

fn reg_name(loc: Loc, size: u32) -> String {
    match loc {
        Loc::Gpr(g) => g.name(if size <= 4 { 4 } else { 8 }).to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CheckArgCount { expected } => write!(f, "check-args {expected}"),
            Step::CallHelper { helper, args, ret_to } => {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                write!(f, "{}({})", helper.name(), args.join(", "))?;
                if let Some(r) = ret_to {
                    write!(f, " -> {r}")?;
                }
                Ok(())
            }
            Step::StoreAddr { of, to } => write!(f, "store &{of} -> {to}"),
            Step::CopyPtr { from, to } => write!(f, "store *{from} -> {to}"),
            Step::LoadArg { to, from, size, ext } => {
                let ext = match ext {
                    Ext::None => "",
                    Ext::Sign => " sx",
                    Ext::Zero => " zx",
                };
                write!(f, "load {} <- {from} ({size}{ext})", reg_name(*to, *size))
            }
            Step::LoadPtr { to, from } => write!(f, "load {} <- *{from}", reg_name(*to, 8)),
            Step::LoadAddr { to, of } => write!(f, "load {} <- &{of}", reg_name(*to, 8)),
            Step::SetAl(n) => write!(f, "al = {n}"),
            Step::CallTarget { via, callee_pops } => {
                write!(f, "call *{via}")?;
                if *callee_pops > 0 {
                    write!(f, " (callee pops {callee_pops})")?;
                }
                Ok(())
            }
            Step::SaveReturn { ret, to } => write!(f, "save-return {:?} {} -> {to}", ret.loc, ret.value),
            Step::Spill { from, size, to } => write!(f, "spill {} -> {to}", reg_name(*from, *size)),
            Step::LoadReturn { ret, from } => write!(f, "load-return {:?} {} <- {from}", ret.loc, ret.value),
            Step::CheckArgCountInline { expected } => write!(f, "check-args {expected} (inline: L->top - base)"),
            Step::FuncAddrFromUpvalue { n, to } => write!(f, "func-addr <- upvalue {n} (light userdata) -> {to}"),
            Step::ToCInline { l, lua_index, kind, to, slow } => {
                write!(f, "{kind} <- number at {lua_index}{} -> {to}, else {slow}", on_l(l))
            }
            Step::PushInline { l, from, kind, slow } => {
                write!(f, "push number{} <- {kind} {from}, else {slow}", on_l(l))
            }
            Step::RecordInline { lua_index, arg, to, size, cdata, slow } => {
                let how = match cdata {
                    CdataLayout::Header(_) => "cdata",
                    CdataLayout::Bare { .. } => "bare cdata (by metatable)",
                };
                write!(f, "record <- {how} of ctype(arg{arg}) at {lua_index} -> &{to} ({size} bytes), else {slow}")
            }
            Step::PtrInline { lua_index, to, strings, slow } => {
                let what = if *strings { "nil or string" } else { "nil" };
                write!(f, "ptr <- {what} at {lua_index} -> {to}, else {slow}")
            }
            Step::ErrnoRestoreInline { errno_at, prev_l_at } => {
                write!(f, "errno-restore (inline, &errno -> {errno_at}, calling thread -> {prev_l_at})")
            }
            Step::AfterCallInline { errno_at, prev_l_at, slow } => {
                write!(f, "after-call (inline, &errno at {errno_at}, calling thread back from {prev_l_at}), if a callback error is pending {slow}")
            }
            Step::CallbackEnterInline { to, room, func, slow } => {
                write!(
                    f,
                    "enter (inline: L -> {to}, push the function at cbdata+{} when {room} slots are free), else {slow}",
                    func.value_at
                )
            }
            Step::CallbackCallInline { l, nargs, result, status_at, slow } => {
                write!(f, "pcall {nargs} args{} (status -> {status_at}; checked unless 0 and a {result} number), if a callback error is pending {slow}", on_l(l))
            }
            Step::PopInline { l } => write!(f, "pop 1{}", on_l(l)),
            Step::ReturnToLua { results } => write!(f, "return {results}"),
            Step::ReturnToC { pops, ret_ptr } => {
                write!(f, "ret {pops}")?;
                if let Some(p) = ret_ptr {
                    write!(f, " (eax = *{p})")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  frame: out {} stage {} entry {}", self.out_bytes, self.stage_bytes, self.entry_bytes)?;
        // Only an alignment no target enters a stub with is shown (SysV's over-aligned stack
        // arguments), so the listings of every other stub read as before.
        if self.out_align > 16 {
            write!(f, " align {}", self.out_align)?;
        }
        writeln!(f)?;
        if let Some(vm) = &self.vm {
            writeln!(f, "  lua: {vm}")?;
        }
        for s in &self.steps {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_call_step_holds_the_operands_of_every_helper() {
        for h in Helper::ALL {
            let ops = vec![Operand::L; h.kinds().1.len()];
            assert_eq!(Operands::new(&ops).len(), ops.len(), "{h:?}");
        }
        assert!(std::mem::size_of::<Step>() <= 168, "a step is {} bytes", std::mem::size_of::<Step>());
    }
    use crate::{
        plan_call, CallConv, Field, FloatKind, IntKind, RecordAttrs, RecordKind, Signature, Target, TypeTable,
    };

    fn sysv_mixed() -> CallPlan {
        let mut t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        let dbl = t.float(FloatKind::Double);
        let s = t.new_record(RecordKind::Struct, Some("big"));
        t.define_record(s, (0..5).map(|i| Field::named(&format!("f{i}"), dbl)).collect(), RecordAttrs::default())
            .unwrap();
        plan_call(&t, &Signature::new(s, vec![int.into(), dbl.into(), s.into()], false, CallConv::Cdecl), &[]).unwrap()
    }

    #[test]
    fn stub_asks_the_stack_alignment_its_plan_needs_and_thunks_none() {
        // An aligned(32) record on the SysV stack: the call needs rsp 32-aligned.
        let mut t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        let s = t.new_record(RecordKind::Struct, Some("s32"));
        let attrs = RecordAttrs { aligned: Some(32), ..RecordAttrs::default() };
        t.define_record(s, vec![Field::named("a", int)], attrs).unwrap();
        let void = t.void();
        let plan =
            plan_call(&t, &Signature::new(void, vec![s.into(), int.into()], false, CallConv::Cdecl), &[]).unwrap();
        assert_eq!(plan.stack_align, 32);
        let prog = stub_program(&plan, 1);
        assert_eq!(prog.out_align, 32);
        assert!(prog.to_string().starts_with("  frame: out 32 stage 32 entry 0 align 32\n"), "{prog}");
        assert_eq!(stub_program(&sysv_mixed(), 1).out_align, 16);
        assert_eq!(thunk_program(&CallbackFrame::from_plan(&plan)).out_align, 0);
    }

    #[test]
    fn stub_converts_everything_before_loading_any_register() {
        // The ordering rule: no helper call after the first register load.
        let prog = stub_program(&sysv_mixed(), 1);
        let first_load = prog
            .steps
            .iter()
            .position(|s| matches!(s, Step::LoadArg { .. } | Step::LoadPtr { .. } | Step::LoadAddr { .. }))
            .unwrap();
        let last_helper_before_call = prog.steps.iter().position(|s| matches!(s, Step::CallTarget { .. })).unwrap();
        assert!(
            prog.steps[first_load..last_helper_before_call].iter().all(|s| !matches!(s, Step::CallHelper { .. })),
            "{prog}"
        );
    }

    #[test]
    fn stub_for_sret_return_passes_the_new_result_cdata_as_the_hidden_pointer() {
        let prog = stub_program(&sysv_mixed(), 1);
        let text = prog.to_string();
        assert!(text.contains("luaffi_new_result(L, ctype(ret)) -> stage[8]"), "{text}");
        assert!(text.contains("load rdi <- *stage[8]"), "{text}");
        assert!(text.contains("luaffi_to_record(L, 3, ctype(arg2), &out[0])"), "{text}");
        assert!(!text.contains("save-return"), "the callee wrote the result itself: {text}");
    }

    fn int_add(target: Target) -> CallPlan {
        let t = TypeTable::new(target);
        let int = t.int(IntKind::Int);
        plan_call(&t, &Signature::new(int, vec![int.into(), int.into()], false, CallConv::Cdecl), &[]).unwrap()
    }

    #[test]
    fn inline_stub_keeps_a_helper_call_behind_every_inline_conversion_and_push() {
        let inline = Inline {
            vm: LuaVm::LUA54,
            func_upvalue: Some(3),
            errno: false,
            string_args: 0,
            cdata: None,
            callback: None,
        };
        let prog = stub_program_inline(&int_add(Target::X64_SYSV), 1, Some(&inline));
        let text = prog.to_string();
        assert!(text.contains("check-args 2 (inline"), "{text}");
        assert!(text.contains("func-addr <- upvalue 3"), "{text}");
        assert!(text.contains("i32 <- number at 1 -> stage[8], else luaffi_to_i32(L, 1) -> stage[8]"), "{text}");
        assert!(text.contains("push number <- i32 stage[32], else luaffi_push_i32(L, i32 stage[32])"), "{text}");
        // The errno helpers stay unless asked for; the calling thread they replace is kept
        // across the call and handed back.
        assert!(
            text.contains("luaffi_errno_restore(L, ctype(ret)) -> stage[24]")
                && text.contains("luaffi_after_call(L, ctype(ret), *stage[24])"),
            "{text}"
        );
        let text =
            stub_program_inline(&int_add(Target::X64_SYSV), 1, Some(&Inline { errno: true, ..inline })).to_string();
        assert!(text.contains("errno-restore (inline, &errno -> stage[32], calling thread -> stage[24])"), "{text}");
        assert!(
            text.contains("after-call (inline, &errno at stage[32], calling thread back from stage[24]), if a callback error is pending luaffi_after_call(L, ctype(ret), *stage[24])"),
            "{text}"
        );
        assert!(!text.contains("luaffi_errno_restore"), "{text}");
    }

    #[test]
    fn inline_stub_leaves_64_bit_results_to_the_helper_before_lua_53() {
        let t = TypeTable::new(Target::X64_SYSV);
        let i64t = t.int(IntKind::LongLong);
        let plan = plan_call(&t, &Signature::new(i64t, vec![i64t.into()], false, CallConv::Cdecl), &[]).unwrap();
        let text = stub_program_inline(
            &plan,
            1,
            Some(&Inline {
                vm: LuaVm::LUA51,
                func_upvalue: None,
                errno: false,
                string_args: 0,
                cdata: None,
                callback: None,
            }),
        )
        .to_string();
        assert!(text.contains("i64 <- number at 1"), "arguments convert inline: {text}");
        assert!(!text.contains("push number"), "a boxed int64_t is the helper's: {text}");
        assert!(text.contains("luaffi_func_addr(L)"), "no upvalue given: {text}");
    }

    #[test]
    fn inline_pointer_arguments_take_nil_and_only_the_strings_the_embedding_allows() {
        let mut t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        let ptr = t.pointer_to(crate::QualType::plain(int));
        let plan =
            plan_call(&t, &Signature::new(int, vec![ptr.into(), ptr.into()], false, CallConv::Cdecl), &[]).unwrap();
        let inline = Inline {
            vm: LuaVm::LUA54,
            func_upvalue: None,
            errno: false,
            string_args: 0b10,
            cdata: None,
            callback: None,
        };
        let text = stub_program_inline(&plan, 1, Some(&inline)).to_string();
        assert!(text.contains("ptr <- nil at 1 -> stage[8], else luaffi_to_ptr(L, 1, ctype(arg0))"), "{text}");
        assert!(
            text.contains("ptr <- nil or string at 2 -> stage[16], else luaffi_to_ptr(L, 2, ctype(arg1))"),
            "{text}"
        );
    }

    #[test]
    fn a_layout_for_another_pointer_size_is_ignored() {
        let inline = Inline {
            vm: LuaVm::LUA54,
            func_upvalue: Some(3),
            errno: true,
            string_args: 0,
            cdata: None,
            callback: None,
        };
        let prog = stub_program_inline(&int_add(Target::X86_LINUX), 1, Some(&inline));
        assert_eq!(prog, stub_program(&int_add(Target::X86_LINUX), 1));
    }

    #[test]
    fn thunk_for_sret_converts_the_lua_result_into_the_callers_buffer() {
        let frame = CallbackFrame::from_plan(&sysv_mixed());
        let text = thunk_program(&frame).to_string();
        assert!(text.contains("spill rdi -> entry["), "{text}");
        assert!(text.contains("luaffi_to_record(*stage[0], -1, ctype(ret), *entry["), "{text}");
        assert!(text.contains("ret 0 (eax = *entry["), "{text}");
    }

    #[test]
    fn inline_thunk_enters_calls_lua_and_pops_without_helpers_on_the_common_path() {
        let frame = CallbackFrame::from_plan(&int_add(Target::X64_SYSV));
        let func = CallbackFunc { value_at: 0, tag_at: 8 };
        let p = thunk_program_inline(&frame, Some(&Inline::callback(LuaVm::LUA54, func)));
        // Room: the function, two arguments, and the helpers' slack.
        assert!(p
            .steps
            .iter()
            .any(|s| matches!(s, Step::CallbackEnterInline { room, .. } if *room == 3 + CALLBACK_EXTRA_SLOTS)));
        let call = p.steps.iter().find_map(|s| match s {
            Step::CallbackCallInline { nargs, result, slow, .. } => Some((*nargs, *result, slow)),
            _ => None,
        });
        let (nargs, result, slow) = call.expect("an inline Lua call");
        assert_eq!((nargs, result), (2, ValueKind::Int { size: 4, signed: true }));
        assert!(
            matches!(**slow, Step::CallHelper { helper: Helper::CallbackCall, .. }),
            "a pending error takes the whole helper"
        );
        assert!(p.steps.iter().any(|s| matches!(s, Step::PopInline { .. })));
        assert!(!p
            .steps
            .iter()
            .any(|s| matches!(s, Step::CallHelper { helper: Helper::CallbackLeave | Helper::CallbackEnter, .. })));
        // Without a record layout the entry stays a helper call; the call and pop are inline.
        let p = thunk_program_inline(&frame, Some(&Inline::layout_only(LuaVm::LUA54)));
        assert!(matches!(p.steps[2], Step::CallHelper { helper: Helper::CallbackEnter, .. }), "{p}");
        assert!(p.steps.iter().any(|s| matches!(s, Step::CallbackCallInline { .. })));
        // A layout for another pointer size: every step through helpers.
        let p = thunk_program_inline(
            &CallbackFrame::from_plan(&int_add(Target::X86_LINUX)),
            Some(&Inline::callback(LuaVm::LUA54, func)),
        );
        assert!(
            p.vm.is_none()
                && p.steps.iter().all(|s| matches!(
                    s,
                    Step::Spill { .. } | Step::CallHelper { .. } | Step::LoadReturn { .. } | Step::ReturnToC { .. }
                )),
            "{p}"
        );
    }
}
