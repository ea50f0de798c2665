//! Calling C functions from Lua through generated stubs.
//!
//! # The call paths
//!
//! A callable cdata is a function (type `size_t (const char *)`) or a pointer to a function
//! (`ffi.cast("int (*)(int)", p)`, a callback). Its bytes hold the function's address. There
//! are two ways to call one, each with its own stub per signature ([`CallMode`]):
//!
//! * **Namespace functions** (`ffi.C.strlen`, `lib.f`) are Lua C closures
//!   ([`crate::native::closure::push_function`]) whose C function *is* the shared stub of their signature, with the
//!   function cdata as upvalue 1. Calling one is a plain `lua_CFunction` call: no `__call`
//!   dispatch, no stack shift, no check of the called value. The stub sees the stack
//!   `[arg1, arg2, ...]` (`stub_program(plan, 1)`) and its helpers find the function through
//!   upvalue 1. This is the fast path, and a deliberate difference from LuaJIT, where
//!   `type(ffi.C.f)` is `"cdata"` (README, "Differences from LuaJIT's FFI"). Everything that
//!   takes a function cdata takes these closures too ([`crate::cdata::to_cdata`] sees through
//!   them).
//! * **Function cdata** (casts, struct fields, callbacks, `ffi.new` of a function pointer)
//!   are called through the cdata metatable's `__call` ([`crate::surface::meta`]), which hands over to
//!   [`call_cdata`]: that runs the stub cached on the cdata's type descriptor as the body of
//!   the `__call`, so the stub sees `[called cdata, arg1, arg2, ...]`
//!   (`stub_program(plan, 2)`) and its helpers find everything from index 1.
//!
//! In both modes (the **called-function contract**):
//!
//! * `luaffi_func_addr(L)` reads the function address from the called cdata, which is how
//!   one stub serves every function of its signature (a closure-mode stub built with the
//!   state's verified Lua stack layout reads it inline from the closure's upvalue
//!   [`FUNC_UPVALUE`] instead);
//! * `luaffi_errno_restore(L, ret_ctype)` / `luaffi_after_call(L, ret_ctype)` reach the
//!   [`FfiState`] through the return type's descriptor, a constant of the stub (no stack
//!   or registry lookup per call);
//! * an argument error names the C argument number (`bad argument #1 to 'strlen'` for the
//!   first argument, at index 2 in a `__call`).
//!
//! Once the Lua stack layout is verified ([`crate::stack::vm_check`], at module open), stubs also
//! check the argument count, convert number arguments and push number results inline,
//! keeping the helper calls for every other value (`abi_model::lua::steps::stub_program_inline`).
//!
//! The helper table entries of the two modes differ only in `luaffi_func_addr` (bound to
//! [`crate::native::helpers`]' metamethod or closure variants) and in `ArgCount`, bound straight to
//! `lua_gettop`.
//!
//! # The stub cache
//!
//! One stub per signature per Lua state, shared by every function of that signature
//! (function types are interned by abi-model, so the key is the function's `TypeId`). The
//! stub's entry is also cached on the type descriptor of the called cdata
//! ([`CTypeDesc::call_stub`]), so a call after the first costs no hash lookup. Variadic
//! functions get one stub per distinct list of extra-argument types (typed by LuaJIT's
//! vararg rules, [`vararg_type`]), cached per function type; that path computes the list on
//! each call (without allocating for up to [`INLINE_VARARGS`] extra arguments).
//!
//! Stubs live as long as the Lua state, like the C types they serve (LuaJIT never frees its
//! ctypes either): the number of stubs is bounded by the number of distinct signatures the
//! program declares. Callbacks, which a program can create without bound, are freed one by
//! one into slots that callbacks of the same type reuse, in an arena of their own
//! ([`crate::native::callback`]).

use std::cell::Cell;
use std::os::raw::c_int;

use abi_model::lua::steps::{stub_program_in, Inline, Program};
use abi_model::lua::{Backend, BackendError, CallSlots, Code, CodeEnv};
use abi_model::unwind::FrameUnwind;
use abi_model::{
    plan_call_in, CType, CallPlan, FloatKind, IntKind, PlanError, QualType, Quals, Signature, Target, TypeId, TypeTable,
};
use backend_x64_sysv::X64SysvBackend;
use backend_x64_win::Win64Backend;
use backend_x86::X86Backend;
use mlua::ffi;

use crate::cdata::{self, Cdata, Form};
use crate::convert::CodeFailure;
use crate::ctypes::ctype::{shape, string_passes_as, Shape};
use crate::ctypes::state::{CTypeDesc, FfiState};
use crate::native::state::{CallMode, State, Tier0Buffers, Tier0Sig};
use crate::native::tier0;
use crate::os::arena::{ArenaError, ArenaStats, CodeArena, CodeHandle};
use crate::os::errno::ERRNO_INLINE;
use crate::os::unwind::{self, RegisterError};

pub use crate::stack::vm_check::FUNC_UPVALUE;

/// A generated `lua_CFunction` (a stub's entry point).
pub type StubFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

/// Extra arguments of a variadic call typed without allocating; longer lists use a `Vec`.
pub const INLINE_VARARGS: usize = 16;

/// The code generator for the host: each of the four targets has one (x86-64 System V,
/// x86-64 Windows, i386 Linux and Win32, whose calling conventions come from each program);
/// `None` only on an architecture abi-model does not model.
pub fn backend() -> Option<&'static dyn Backend> {
    static SYSV: X64SysvBackend = X64SysvBackend;
    static WIN64: Win64Backend = Win64Backend;
    static X86_LINUX: X86Backend = X86Backend::LINUX;
    static X86_WIN: X86Backend = X86Backend::WIN;
    match Target::host()? {
        t if t == Target::X64_SYSV => Some(&SYSV),
        t if t == Target::X64_WIN => Some(&WIN64),
        t if t == Target::X86_LINUX => Some(&X86_LINUX),
        t if t == Target::X86_WIN => Some(&X86_WIN),
        _ => None,
    }
}

/// Why the code of a stub or callback thunk could not be made: the signature is refused
/// (the first four), or building its code failed (a backend bug, or the OS refused memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StubError {
    /// No backend generates code for the host.
    NoBackend,
    /// The type is not a function type.
    NotAFunction,
    /// The ABI model cannot plan the call (e.g. a `long double` argument).
    Plan(PlanError),
    /// The arguments need more machine stack than [`MAX_STACK_ARGS`].
    StackArgsTooLarge {
        /// Bytes they need.
        bytes: u32,
    },
    /// The backend could not lower the program (a bug: it lowers every program the model
    /// builds).
    Backend(BackendError),
    /// The code arena could not provide executable memory.
    Arena(ArenaError),
    /// The backend assembled different lengths at two addresses (a bug).
    LengthDependsOnAddress {
        /// Bytes at address 0.
        probe: usize,
        /// Bytes at the reserved address.
        placed: usize,
    },
    /// The backend's description of the code's frame cannot be given to the unwinder (a bug).
    Unwind(RegisterError),
}

impl StubError {
    /// What failed building the code, as plain data; `None` when the signature itself was
    /// refused (what LuaJIT reports as a conversion error for a callback).
    pub fn code_failure(&self) -> Option<CodeFailure> {
        match self {
            StubError::NoBackend
            | StubError::NotAFunction
            | StubError::Plan(_)
            | StubError::StackArgsTooLarge { .. } => None,
            StubError::Backend(e) => Some(CodeFailure::Backend(e.step())),
            StubError::Arena(e) => Some(CodeFailure::Arena(*e)),
            StubError::LengthDependsOnAddress { .. } => Some(CodeFailure::LengthDependsOnAddress),
            StubError::Unwind(_) => Some(CodeFailure::Unwind),
        }
    }
}

impl std::fmt::Display for StubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StubError::NoBackend => f.write_str("no code generator for this target yet"),
            StubError::NotAFunction => f.write_str("not a function type"),
            StubError::Plan(e) => write!(f, "{e}"),
            StubError::StackArgsTooLarge { bytes } => {
                write!(f, "its stack arguments need {bytes} bytes (at most {MAX_STACK_ARGS})")
            }
            StubError::Backend(e) => write!(f, "{e}"),
            StubError::Arena(e) => write!(f, "{}", CodeFailure::Arena(*e)),
            StubError::LengthDependsOnAddress { probe, placed } => {
                write!(f, "backend bug: code length depends on its address ({probe} vs {placed} bytes)")
            }
            StubError::Unwind(e) => write!(f, "backend bug: its frame cannot be described to the unwinder: {e}"),
        }
    }
}

/// Each cause's message is part of the [`StubError`]'s, so none is also a `source`.
impl std::error::Error for StubError {}

/// Raises `e` as a Lua error whose message is `prefix` and `e`'s.
///
/// # Safety
/// As [`cdata::raise`].
pub(crate) unsafe fn raise_stub_error(l: *mut ffi::lua_State, prefix: &str, e: StubError) -> ! {
    let msg = format!("{prefix}{e}");
    // Nothing that owns memory may be alive in this frame when the error longjmps.
    drop(e);
    // SAFETY: valid-L with 2 free slots, in a function Lua called (this function's contract,
    // `cdata::raise`'s); raise-clean: `e` is dropped above, `prefix` is a borrow, and `msg`
    // is moved into `cdata::raise`, which drops it before `lua_error`.
    unsafe { cdata::raise(l, msg) }
}

/// Assembles code for the address the arena gives it, then commits it and registers its frame
/// description with the unwinder (for as long as the handle lives). A position-independent
/// backend's code is assembled once (at 0) and copied; otherwise `generate(base)` must produce
/// the same length for every base (it is asked once at 0 to learn the length, then at the
/// reserved address).
pub fn assemble(
    arena: &CodeArena,
    backend: &dyn Backend,
    generate: impl Fn(u64) -> Result<Code, BackendError>,
) -> Result<CodeHandle, StubError> {
    // The code, followed by what the unwinder must find beside it (Win64's UNWIND_INFO).
    let placed = |code: Code| -> Result<(Vec<u8>, usize, FrameUnwind), StubError> {
        let Code { mut bytes, unwind } = code;
        let code_len = bytes.len();
        unwind::append_in_place(&mut bytes, &unwind).map_err(StubError::Unwind)?;
        Ok((bytes, code_len, unwind))
    };
    let probe = placed(generate(0).map_err(StubError::Backend)?)?;
    let place = arena.reserve(probe.0.len()).map_err(StubError::Arena)?;
    let (bytes, code_len, frame) = if backend.position_independent() {
        probe
    } else {
        let code = placed(generate(place.addr() as u64).map_err(StubError::Backend)?)?;
        if code.0.len() != probe.0.len() {
            return Err(StubError::LengthDependsOnAddress { probe: probe.0.len(), placed: code.0.len() });
        }
        code
    };
    let mut handle = arena.commit(place, &bytes).map_err(StubError::Arena)?;
    let registration = unwind::register(handle.addr(), code_len, &frame).map_err(StubError::Unwind)?;
    handle.set_unwind(registration);
    Ok(handle)
}

/// The signature of function type `fn_ty`.
pub fn signature(types: &TypeTable, fn_ty: TypeId) -> Option<Signature> {
    signature_in(types, fn_ty, Vec::new())
}

/// [`signature`], its parameter types written into `params` (cleared first).
fn signature_in(types: &TypeTable, fn_ty: TypeId, mut params: Vec<QualType>) -> Option<Signature> {
    match types.get(fn_ty) {
        CType::Function(f) => {
            params.clear();
            params.extend(f.params.iter().map(|p| p.ty));
            Some(Signature::new(f.ret, params, f.variadic, f.conv))
        }
        _ => None,
    }
}

/// The descriptor a helper gets for an argument of type `ty`: arrays and functions decay to
/// pointers, as they do when passed; a vector is passed as the value it is.
pub fn arg_desc(st: &mut FfiState, ty: QualType) -> *const CTypeDesc {
    let decayed = match st.types.get(ty.id) {
        CType::Array { .. } if st.types.is_vector(ty.id) => None,
        CType::Array { elem, .. } => Some(*elem),
        CType::Function(_) => Some(ty),
        _ => None,
    };
    let t = match decayed {
        Some(to) => QualType { id: st.types.pointer_to(to), quals: Quals::NONE },
        None => ty,
    };
    st.desc(t)
}

/// The most machine stack a signature's arguments may take (the plan's outgoing area:
/// stack arguments, records passed by value on the stack, Win64's copies of records passed by
/// reference): 1 MiB. A stub reserves that area in one `sub rsp`, so a larger one could
/// run past the stack of the thread making the call; such signatures are refused for calls
/// and callbacks alike. Results need no bound: an aggregate result is written straight into
/// its cdata (a call) or the caller's buffer (a callback), never staged on the stack.
pub const MAX_STACK_ARGS: u32 = 1 << 20;

/// [`MAX_STACK_ARGS`] applied to `plan`: the bytes its arguments need when that is too many.
pub fn stack_args_too_large(plan: &CallPlan) -> Option<u32> {
    Some(plan.frame_bytes()).filter(|&n| n > MAX_STACK_ARGS)
}

/// Builds the stub of `mode` for calling a function of type `fn_ty` with extra arguments of
/// types `varargs` (empty unless variadic) into the state's arena.
pub fn build_stub(
    st: &mut State,
    fn_ty: TypeId,
    varargs: &[QualType],
    mode: CallMode,
) -> Result<CodeHandle, StubError> {
    let backend = backend().ok_or(StubError::NoBackend)?;
    let (program, env) = stub_program_for(st, fn_ty, varargs, mode)?;
    assemble(&st.calls.arena, backend, |base| backend.stub_code(&program, base, &env))
}

/// The first phase of [`build_stub`]: the program of the stub and the environment its code is
/// generated with (then assembled into the arena by [`assemble`]).
pub fn stub_program_for(
    st: &mut State,
    fn_ty: TypeId,
    varargs: &[QualType],
    mode: CallMode,
) -> Result<(Program, CodeEnv), StubError> {
    stub_program_with(st, fn_ty, varargs, mode, None)
}

/// The tier-0 data of a call of non-variadic `fn_ty` in `mode` ([`crate::native::tier0`]): the
/// stub's program without inline steps, or why it cannot be called at all (the refusals
/// building its stub would meet first). `None`: the program needs more frame than tier 0
/// gives; build the stub.
pub fn tier0_sig(st: &mut State, fn_ty: TypeId, mode: CallMode) -> Result<Option<Tier0Sig>, StubError> {
    // Every list planning and compiling fills comes from the state's buffers and goes back
    // to them here, so that a signature allocates nothing it drops.
    let mut buffers = st.calls.tier0_buffers.take().unwrap_or_default();
    let (program, env) = stub_program_with(st, fn_ty, &[], mode, Some(&mut buffers))?;
    let fits = tier0::fits(&program);
    let code = fits.then(|| tier0::compile(&program, &env, &mut st.calls.tier0_code));
    let mut steps = program.steps;
    if matches!(code, Some(Ok(_))) {
        // SAFETY: a length of 0 is within the capacity, and no step is read again. The steps
        // are forgotten, not dropped: `compile` took every one, and it takes no inline step,
        // the only kind that owns memory (its boxed slow path), so nothing leaks; dropping
        // each step (a match on its variant) cost ~50 instructions a step.
        unsafe { steps.set_len(0) };
    }
    buffers.steps = steps;
    buffers.ctypes = env.arg_ctypes;
    st.calls.tier0_buffers = Some(buffers);
    // A program too large for tier 0's frame, or that its compact form cannot hold, gets
    // its stub at first call.
    let code = match code {
        None | Some(Err(tier0::Fault::Unfit(_))) => return Ok(None),
        Some(code) => code,
    };
    let helpers = st.calls.helper_table(mode);
    Ok(Some(Tier0Sig { code, fn_ty, helpers, calls: Cell::new(0), no_stub: Cell::new(false) }))
}

/// [`stub_program_for`]: with `buffers` (tier 0's, [`tier0_sig`]) the program has no inline
/// steps and no helper table, and its lists come from `buffers`: the parameters and the
/// plan's go back to them, the steps and the ctype constants travel in the program and its
/// environment, which the caller gives back. Without, the inline steps the state's verified
/// layout allows.
fn stub_program_with(
    st: &mut State,
    fn_ty: TypeId,
    varargs: &[QualType],
    mode: CallMode,
    mut buffers: Option<&mut Tier0Buffers>,
) -> Result<(Program, CodeEnv), StubError> {
    let with_inline = buffers.is_none();
    let (params, mut arg_ctypes, mut plan_buffers, steps) = match buffers.as_deref_mut() {
        None => Default::default(),
        Some(b) => (
            std::mem::take(&mut b.params),
            std::mem::take(&mut b.ctypes),
            std::mem::take(&mut b.plan),
            std::mem::take(&mut b.steps),
        ),
    };
    let sig = signature_in(&st.types, fn_ty, params).ok_or(StubError::NotAFunction)?;
    let plan = plan_call_in(&mut plan_buffers, &st.types, &sig, varargs).map_err(StubError::Plan)?;
    if let Some(bytes) = stack_args_too_large(&plan) {
        return Err(StubError::StackArgsTooLarge { bytes });
    }
    arg_ctypes.clear();
    arg_ctypes.reserve(sig.params.len() + varargs.len());
    let mut string_args = 0u64;
    for (i, t) in sig.params.iter().chain(varargs).enumerate() {
        let desc = arg_desc(st, *t);
        // SAFETY: `desc` is the state's, which lives on.
        if i < 64 && string_passes_as(&st.types, unsafe { (*desc).shape }) {
            string_args |= 1 << i;
        }
        arg_ctypes.push(desc as u64);
    }
    let inline = st.inline_vm().copied().filter(|_| with_inline).map(|vm| Inline {
        vm,
        func_upvalue: (mode == CallMode::Closure).then_some(FUNC_UPVALUE),
        errno: ERRNO_INLINE,
        string_args,
        cdata: Some(cdata::header_layout(&st.ffi)),
        callback: None,
    });
    let program = stub_program_in(steps, &plan, mode.first_arg(), inline.as_ref());
    let ret_ctype = st.desc(sig.ret) as u64;
    if let Some(b) = buffers {
        b.params = sig.params;
        plan_buffers.recycle(plan);
        b.plan = plan_buffers;
    }
    let env = CodeEnv {
        // Tier 0 reads the state's table (`CallState::helper_table`): no copy per signature.
        helpers: if with_inline { st.calls.helper_addresses(mode) } else { Vec::new() },
        arg_ctypes,
        ret_ctype,
        callback_data: 0,
        call_slots: Some(call_slots(st)),
    };
    Ok((program, env))
}

/// The fields of `st` a stub with inline errno handling updates and a thunk with an inline
/// entry reads (`FfiState` lives in a Lua userdata, so their addresses last as long as the
/// stubs).
pub(crate) fn call_slots(st: &State) -> CallSlots {
    CallSlots {
        saved_errno: st.errno_slot() as u64,
        calling_l: &st.calls.calling_l as *const *mut ffi::lua_State as u64,
        pending_error: &st.calls.pending_error as *const c_int as u64,
        no_pending: ffi::LUA_NOREF,
        main_l: &st.calls.main_l as *const *mut ffi::lua_State as u64,
    }
}

pub use crate::ctypes::ctype::callable_type;

/// Whether the value at `idx` is a callable cdata (a function or a function pointer).
///
/// # Safety
/// `l` valid with a free slot; `st` its state.
pub unsafe fn is_callable_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> bool {
    // SAFETY: valid-L with the free slot `to_cdata` may use, live-state `st`; a non-null result is
    // a live-cdata whose descriptor is a live-desc.
    unsafe {
        let c = cdata::to_cdata(l, st, idx);
        !c.is_null() && c.form() != Form::CType && callable_type(&(*st).types, cdata::type_of(c).id).is_some()
    }
}

/// Calls the callable cdata `c` at index 1 with the Lua arguments above it and returns its
/// results, running the stub for its signature (see the [module docs](self)).
///
/// # Safety
/// The body of a `__call` metamethod: `c` is the cdata at index 1 of `l`, `fn_ty` its
/// [`callable_type`]. May raise (argument errors, a callback's error); nothing owning
/// memory is alive in this frame when it does.
pub unsafe fn call_cdata(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata, fn_ty: TypeId) -> c_int {
    // SAFETY: the caller's contract: `c` is the live-cdata at index 1 of a valid-L inside `__call`;
    // the stub built for `fn_ty` is a lua_CFunction of that signature, run on this `l` (cfunction),
    // and raises only under raise-clean.
    unsafe {
        let desc = c.desc();
        let mut stub = (*desc).call_stub.get();
        if stub == 0 {
            if (cdata::bytes(c) as *const usize).read_unaligned() == 0 {
                cdata::raise(l, "attempt to call a NULL function pointer".into());
            }
            if let Some(sig) = tier0_of(st, desc, fn_ty) {
                return tier0_call(l, st, desc, sig);
            }
            stub = stub_slow(l, st, desc, fn_ty);
        }
        call_stub(l, c, stub)
    }
}

/// Runs `stub`, the metamethod-mode stub cached for the type of the callable cdata `c` at
/// index 1, as the body of the `__call` in progress; raises for a NULL function pointer.
///
/// # Safety
/// As [`call_cdata`]; `stub` is `(*c.desc()).call_stub`.
#[inline]
pub unsafe fn call_stub(l: *mut ffi::lua_State, c: Cdata, stub: usize) -> c_int {
    // SAFETY: `c` is the live-cdata at index 1 of the `__call` in progress and `stub` the
    // lua_CFunction cached for its signature (caller's contract); the NULL check reads the pointer
    // the cdata holds.
    unsafe {
        if (cdata::bytes(c) as *const usize).read_unaligned() == 0 {
            cdata::raise(l, "attempt to call a NULL function pointer".into());
        }
        std::mem::transmute::<usize, StubFn>(stub)(l)
    }
}

/// The tier-0 data of metamethod-mode calls through `desc` (a callable cdata's type), made
/// at its first call. `None` when its calls build the stub instead: tier 0 is off (the
/// state's threshold is 0, or i386), the function is variadic, its program needs more frame
/// than tier 0 gives, or it cannot be called at all (building the stub raises why).
///
/// # Safety
/// `st` the live state owning `desc`; `fn_ty` the function type `desc` calls.
unsafe fn tier0_of(st: *mut FfiState, desc: *const CTypeDesc, fn_ty: TypeId) -> Option<&'static Tier0Sig> {
    // SAFETY: a non-zero `tier0_call` is a `Tier0Sig` the state owns (`Chunks`: never moved
    // or freed while the state lives, which outlives every call through its descriptors).
    unsafe {
        let p = (*desc).tier0_call.get();
        if p != 0 {
            return Some(&*(p as *const Tier0Sig));
        }
        let st = &mut *State::of(st);
        if st.calls.tier_up == 0 || matches!(st.types.get(fn_ty), CType::Function(f) if f.variadic) {
            return None;
        }
        let sig = tier0_sig(st, fn_ty, CallMode::Metamethod).ok()??;
        let p = st.calls.tier0.push(sig).as_ptr();
        (*desc).tier0_call.set(p as usize);
        Some(&*p)
    }
}

/// Runs a metamethod-mode call on tier 0 as the body of the `__call` in progress; the call
/// that reaches the state's threshold builds the stub, which later calls through `desc` run.
///
/// # Safety
/// As [`call_cdata`]; `sig` is `desc`'s ([`tier0_of`]).
#[inline(never)]
unsafe fn tier0_call(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc, sig: &Tier0Sig) -> c_int {
    // SAFETY: the caller's contract: a `__call` of a cdata of `desc` with its arguments above
    // it, which `sig`'s program (metamethod mode) reads; raises only under raise-clean.
    unsafe {
        if let Some(addr) = count_tier0_call(&mut *State::of(st), sig, CallMode::Metamethod) {
            (*desc).call_stub.set(addr);
        }
        tier0::run_or_raise(l, &sig.code, sig.helpers)
    }
}

/// Counts a call of `sig` (a program of `mode`) on tier 0. The call that reaches the state's
/// threshold builds the signature's stub and returns its address, for the caller to make the
/// entry of later calls; if the stub cannot be built, the signature stays on tier 0 and is
/// not tried again.
pub(crate) fn count_tier0_call(st: &mut State, sig: &Tier0Sig, mode: CallMode) -> Option<usize> {
    let n = sig.calls.get().saturating_add(1);
    sig.calls.set(n);
    if n < st.calls.tier_up || sig.no_stub.get() {
        return None;
    }
    let built = fixed_stub(st, sig.fn_ty, mode).ok();
    sig.no_stub.set(built.is_none());
    built
}

/// Finds or builds the stub for a call whose descriptor has none cached; raises when the
/// signature can't be called.
#[cold]
unsafe fn stub_slow(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc, fn_ty: TypeId) -> usize {
    // SAFETY: valid-L: only reads of existing stack slots; errors raised after every owned value is
    // gone.
    unsafe {
        let variadic = matches!((*st).types.get(fn_ty), CType::Function(f) if f.variadic);
        let r = if variadic {
            variadic_stub(l, st, fn_ty, CallMode::Metamethod)
        } else {
            fixed_stub(&mut *State::of(st), fn_ty, CallMode::Metamethod)
        };
        match r {
            Ok(addr) => {
                if !variadic {
                    (*desc).call_stub.set(addr);
                }
                addr
            }
            Err(e) => raise_stub_error(l, CANNOT_CALL, e),
        }
    }
}

/// What a call's error says before its [`StubError`].
pub(crate) const CANNOT_CALL: &str = "cannot call this C function: ";

/// The shared stub of `mode` for non-variadic function type `fn_ty`, built on first use.
pub(crate) fn fixed_stub(st: &mut State, fn_ty: TypeId, mode: CallMode) -> Result<usize, StubError> {
    if let Some(h) = st.calls.stubs.get(&(fn_ty, mode)) {
        return Ok(h.addr());
    }
    let h = build_stub(st, fn_ty, &[], mode)?;
    let addr = h.addr();
    st.calls.stubs.insert((fn_ty, mode), h);
    Ok(addr)
}

/// The stub of `mode` for calling variadic `fn_ty` with the arguments on the stack now.
pub(crate) unsafe fn variadic_stub(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    fn_ty: TypeId,
    mode: CallMode,
) -> Result<usize, StubError> {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        let fixed = match (*st).types.get(fn_ty) {
            CType::Function(f) => f.params.len() as c_int,
            _ => 0,
        };
        let first = mode.first_arg() + fixed;
        let extra = (ffi::lua_gettop(l) + 1 - first).max(0) as usize;
        let mut inline = [QualType::plain(TypeId(0)); INLINE_VARARGS];
        let mut spilled = Vec::new();
        let types: &mut [QualType] = if extra <= INLINE_VARARGS {
            &mut inline[..extra]
        } else {
            spilled.resize(extra, QualType::plain(TypeId(0)));
            &mut spilled
        };
        for (i, t) in types.iter_mut().enumerate() {
            *t = vararg_type(l, st, first + i as c_int);
        }
        let st = &mut *State::of(st);
        if let Some(h) = st.calls.variadic_stubs.get(&(fn_ty, mode)).and_then(|m| m.get(&*types)) {
            return Ok(h.addr());
        }
        let h = build_stub(st, fn_ty, types, mode)?;
        let addr = h.addr();
        st.calls.variadic_stubs.entry((fn_ty, mode)).or_default().insert(types.to_vec().into_boxed_slice(), h);
        Ok(addr)
    }
}

/// The C type an extra argument of a variadic call gets, by LuaJIT's rules
/// (`lj_ccall_ctid_vararg`) plus C's default argument promotions: a number is a `double`
/// (on Lua 5.3+ integers too, as in LuaJIT, which has no integer subtype), a string a
/// `const char *`, a boolean an `int`; a cdata keeps its type, except that arrays pass a
/// pointer to their first element, structs, unions and functions a pointer to themselves,
/// `float` a `double`, and bools and integers narrower than `int` an `int`. Anything else
/// (nil, light userdata, tables, ...) is a `void *` and converts as one (a table fails). A
/// data pointer, an array or a record, not `volatile`, is keyed as a `const void *`: it is
/// passed as the same word whatever it points to, so its type needs no stub of its own.
///
/// # Safety
/// `l` valid; `st` its state.
pub unsafe fn vararg_type(l: *mut ffi::lua_State, st: *mut FfiState, idx: c_int) -> QualType {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        let types = &mut (*st).types;
        let double = QualType::plain(types.float(FloatKind::Double));
        let int = QualType::plain(types.int(IntKind::Int));
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNUMBER => double,
            ffi::LUA_TSTRING => QualType::plain((*st).const_char_ptr()),
            ffi::LUA_TBOOLEAN => int,
            ffi::LUA_TUSERDATA | ffi::LUA_TFUNCTION => {
                let c = cdata::to_cdata(l, st, idx);
                if c.is_null() || c.form() == Form::CType {
                    return QualType::plain((*st).void_ptr());
                }
                let ty = cdata::type_of(c);
                // Any data pointer passes as the same machine word, so one stub serves them
                // all: `ioctl(fd, req, &a)` and `&b` of another struct type share it. As a
                // `const void *`, which every non-volatile data pointer converts to.
                let as_word = |types: &mut TypeTable, to: QualType| {
                    if to.quals.is_volatile || matches!(types.get(to.id), CType::Function(_)) {
                        None
                    } else {
                        let cvoid = QualType { id: types.void(), quals: Quals::CONST };
                        Some(QualType::plain(types.pointer_to(cvoid)))
                    }
                };
                match shape(types, ty.id) {
                    Shape::Pointer(to) => as_word(types, to).unwrap_or(QualType::plain(ty.id)),
                    Shape::Array(elem, _) => {
                        as_word(types, elem).unwrap_or_else(|| QualType::plain(types.pointer_to(elem)))
                    }
                    Shape::Record => as_word(types, ty).unwrap_or_else(|| QualType::plain(types.pointer_to(ty))),
                    Shape::Func => QualType::plain(types.pointer_to(ty)),
                    Shape::Float { size: 4 } => double,
                    Shape::Bool | Shape::WideBool { .. } => int,
                    Shape::Int { size, .. } if size < 4 => int,
                    _ => QualType::plain(ty.id),
                }
            }
            _ => QualType::plain((*st).void_ptr()),
        }
    }
}

/// The code arena statistics of the `ffi` state of `lua` (None before the module was
/// opened in it), for tests and benchmarks.
pub fn arena_stats(lua: &mlua::Lua) -> Option<ArenaStats> {
    let [pages, spare, bytes, chunks, _, _] = counts(lua)?;
    Some(ArenaStats { pages_mapped: pages, spare_pages: spare, bytes_in_use: bytes, live_chunks: chunks })
}

/// Test support: makes every commit into the code arenas of the `ffi` state of `lua` fail as
/// when `mprotect` fails with `ENOMEM` (`refuse`), or work again. False when `lua` has no
/// `ffi` state.
#[doc(hidden)]
pub fn refuse_code_memory(lua: &mlua::Lua, refuse: bool) -> bool {
    // SAFETY: `set_code_refusal` follows the lua_CFunction protocol.
    let Ok(f) = (unsafe { lua.create_c_function(set_code_refusal) }) else { return false };
    f.call::<bool>(refuse).unwrap_or(false)
}

/// [`refuse_code_memory`]'s body: argument 1 says whether to refuse; returns whether the state
/// has `ffi`.
unsafe extern "C-unwind" fn set_code_refusal(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction (mlua's `create_c_function` in `refuse_code_memory`): valid-L with
    // `LUA_MINSTACK` free slots, enough for `from_registry`'s one and the result's one;
    // `lua_toboolean` reads argument 1 (none reads as false). A non-null `st` is a live-state,
    // the first field of its `State`, so `State::of` is that box. Nothing here raises: a raw
    // registry read and a boolean push allocate nothing.
    unsafe {
        let st = crate::ctypes::state::from_registry(l);
        if !st.is_null() {
            let refusal =
                (ffi::lua_toboolean(l, 1) != 0).then_some(ArenaError::Os { call: "mprotect", errno: libc::ENOMEM });
            let calls = &(*State::of(st)).calls;
            calls.arena.refuse_commits(refusal);
            calls.callback_arena.refuse_commits(refusal);
        }
        ffi::lua_pushboolean(l, c_int::from(!st.is_null()));
        1
    }
}

/// The number of stubs built and of live callbacks in the `ffi` state of `lua`.
pub fn code_counts(lua: &mlua::Lua) -> Option<(usize, usize)> {
    let [.., stubs, callbacks] = counts(lua)?;
    Some((stubs, callbacks))
}

fn counts(lua: &mlua::Lua) -> Option<[usize; 6]> {
    // SAFETY: `push_counts` follows the lua_CFunction protocol.
    let f = unsafe { lua.create_c_function(push_counts) }.ok()?;
    let v: Vec<f64> = f.call::<mlua::Variadic<f64>>(()).ok()?.into_iter().collect();
    let mut out = [0usize; 6];
    for (o, x) in out.iter_mut().zip(&v) {
        *o = *x as usize;
    }
    (v.len() == 6).then_some(out)
}

/// Returns the arenas' pages mapped, spare pages, bytes in use and live chunks, then the
/// numbers of stubs and live callbacks (nothing when the state has no `ffi`).
unsafe extern "C-unwind" fn push_counts(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: called by Lua with a valid-L.
    unsafe {
        let st = crate::ctypes::state::from_registry(l);
        if st.is_null() {
            return 0;
        }
        let calls = &(*State::of(st)).calls;
        let (a, b) = (calls.arena.stats(), calls.callback_arena.stats());
        let s = ArenaStats {
            pages_mapped: a.pages_mapped + b.pages_mapped,
            spare_pages: a.spare_pages + b.spare_pages,
            bytes_in_use: a.bytes_in_use + b.bytes_in_use,
            live_chunks: a.live_chunks + b.live_chunks,
        };
        for v in
            [s.pages_mapped, s.spare_pages, s.bytes_in_use, s.live_chunks, calls.stub_count(), calls.callbacks.live()]
        {
            ffi::lua_pushnumber(l, v as f64);
        }
        6
    }
}

#[cfg(test)]
mod tests {
    /// Closing a state deregisters its stubs' frames newest first, which libgcc finds at the
    /// head of its list (in the stub map's order, closing cost time quadratic in the stubs).
    /// Only where libgcc's frame registry is used (Unix).
    #[test]
    #[cfg(all(unix, any(target_arch = "x86_64", target_arch = "x86")))]
    fn closing_a_state_deregisters_its_stubs_newest_first() {
        use super::*;
        use abi_model::{CallConv, FuncType, IntKind, Param};
        let mut st = crate::native::new_state();
        let int = QualType::plain(st.types.int(IntKind::Int));
        for n in 0..20 {
            let params = vec![Param { name: None, ty: int }; n];
            let f = st.types.function(FuncType { ret: int, params, variadic: false, conv: CallConv::Cdecl });
            fixed_stub(&mut st, f, CallMode::Closure).expect("stub");
        }
        crate::os::unwind::DROPPED.take();
        drop(st);
        let dropped = crate::os::unwind::DROPPED.take();
        assert_eq!(dropped.len(), 20);
        assert!(dropped.windows(2).all(|w| w[0] > w[1]), "{dropped:?}");
    }
}
