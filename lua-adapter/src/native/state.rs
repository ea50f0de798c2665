//! The native layer's per-Lua-state data, at the bottom of the layer so that every native
//! module can reach it: [`State`] (the C type part and the native part in one allocation),
//! [`CallState`] (code arenas, the stub cache, callbacks, the threads of calls in progress)
//! and the callback records. The code that works on them lives in [`crate::native::call`],
//! [`crate::native::callback`] and [`crate::native::helpers`].

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};

use abi_model::lua::steps::CallbackFunc;
use abi_model::{QualType, TypeId};
use mlua::ffi;

use crate::ctypes::state::{CTypeDesc, FfiState};
use crate::os::arena::{CodeArena, CodeHandle};
use crate::os::chunks::Chunks;

/// Everything the `ffi` module keeps per Lua state: the C type part the lower layers see
/// ([`FfiState`], first) and the native part ([`CallState`]), with the libraries `ffi.load`
/// opened.
///
/// # Invariant
///
/// Every `*mut FfiState` the native layer is handed (a closure's upvalue, a descriptor's
/// `state`, a callback record's `st`) points to the `ffi` field of a `State` made by
/// [`State::boxed`], with the box's provenance: [`State::of`] relies on it. A `State` made by
/// [`State::new`] and not boxed serves only code that takes it by reference (stub building).
#[repr(C)]
pub struct State {
    /// The C types; first, so that its address is the state's.
    pub ffi: FfiState,
    /// Native calls and callbacks: the code arenas, the stub cache, live callbacks.
    pub calls: CallState,
    /// `dlopen` handles of collected namespaces, one per library, closed when the state is
    /// freed ([`crate::surface::clib`]).
    pub loaded: Vec<*mut c_void>,
}

impl State {
    /// A fresh state: built-in types, no code; stubs and thunks will call `helpers` (see
    /// [`CallState::new`]).
    pub fn new(helpers: [Vec<u64>; 3]) -> State {
        State { ffi: FfiState::new(), calls: CallState::new(helpers), loaded: Vec::new() }
    }

    /// `state` in a box, as the raw pointer that owns it (freed with `Box::from_raw`); its
    /// [`FfiState`] knows its own address, which descriptors made from now on carry.
    pub fn boxed(state: State) -> *mut State {
        let p = Box::into_raw(Box::new(state));
        // SAFETY: `p` is the box just made; `ffi` is its first field (repr(C)), so the cast
        // pointer addresses it with the box's provenance.
        unsafe { (*p).ffi.set_address(p.cast()) };
        p
    }

    /// The state whose C type part `st` is.
    ///
    /// # Safety
    /// `st` as the [invariant](State#invariant) says: the `ffi` field of a boxed state.
    #[inline]
    pub unsafe fn of(st: *mut FfiState) -> *mut State {
        st.cast()
    }
}

impl std::ops::Deref for State {
    type Target = FfiState;
    fn deref(&self) -> &FfiState {
        &self.ffi
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut FfiState {
        &mut self.ffi
    }
}

impl Drop for State {
    fn drop(&mut self) {
        for handle in self.loaded.drain(..) {
            // SAFETY: a handle `dylib::open` returned, whose reference the collected namespace
            // handed over; no code of this state runs any more.
            unsafe { crate::os::dylib::close(handle) };
        }
    }
}

/// Pages per pooled unit of the callback arena (64 KiB with 4 KiB pages).
pub const CALLBACK_UNIT_PAGES: usize = 16;

/// Pages per pooled unit of the stub arena (64 KiB with 4 KiB pages): a stub of a signature
/// with many arguments takes 1–2 KiB, so a single page would hold two and each new signature
/// would pay half of a unit's system calls; a unit of 16 holds dozens.
pub const STUB_UNIT_PAGES: usize = 16;

/// How a stub is entered, which decides where its arguments start and how its helpers find
/// the called function (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallMode {
    /// The body of a function cdata's `__call`: the cdata at index 1, arguments from 2.
    Metamethod,
    /// A namespace function's C closure: the cdata is upvalue 1, arguments from 1.
    Closure,
}

impl CallMode {
    /// The Lua stack index of the first C argument.
    pub fn first_arg(self) -> c_int {
        match self {
            CallMode::Metamethod => 2,
            CallMode::Closure => 1,
        }
    }
}

/// The stubs of one variadic function type and mode, by the extra arguments' types.
pub(in crate::native) type VarargStubs = HashMap<Box<[QualType]>, CodeHandle>;

/// Per-state machinery for native calls and callbacks.
pub struct CallState {
    /// Executable memory for this state's stubs.
    pub arena: CodeArena,
    /// Executable memory for callback thunks: units of [`CALLBACK_UNIT_PAGES`] pages, so
    /// that one mapping holds about a hundred thunks.
    pub callback_arena: CodeArena,
    /// Stubs of non-variadic functions by function type and mode.
    pub(in crate::native) stubs: HashMap<(TypeId, CallMode), CodeHandle>,
    /// Stubs of variadic functions by function type and mode, then by the extra arguments'
    /// types.
    pub(in crate::native) variadic_stubs: HashMap<(TypeId, CallMode), VarargStubs>,
    /// Callbacks: live ones and freed slots.
    pub callbacks: Callbacks,
    /// The Lua thread of the innermost C call in progress (set by every stub call and put
    /// back when it returns; NULL outside every call): callbacks run on it.
    pub calling_l: *mut ffi::lua_State,
    /// The state's main thread: callbacks run there when no C call is in progress.
    pub main_l: *mut ffi::lua_State,
    /// Registry reference of the error raised by a callback during the C call in progress
    /// (`LUA_NOREF`: none); `luaffi_after_call` raises it once the C function returns.
    pub pending_error: c_int,
    /// The addresses of the helpers stubs call, by [`CallMode`], then those thunks call,
    /// indexed by `Helper::id`: given by the layer's top, which sees the helpers
    /// ([`crate::native::helpers::helper_addresses`], [`crate::native::helpers::thunk_helpers`]).
    helpers: [Vec<u64>; 3],
    /// Calls a namespace function runs on tier 0 before its stub is built (0: built at first
    /// call), [`tier_up_from_env`].
    pub tier_up: u32,
    /// The tier-0 data of every signature run on tier 0, pointed to by their descriptors:
    /// kept where they are until the state closes, many to an allocation.
    pub(in crate::native) tier0: Chunks<Tier0Sig, 32>,
    /// Where their compiled programs are.
    pub(in crate::native) tier0_code: crate::native::tier0::CodeStore,
    /// The lists tier 0 planned and compiled the last signature with, reused by the next;
    /// boxed, so that taking and giving them back moves a pointer, not six lists.
    pub(in crate::native) tier0_buffers: Option<Box<Tier0Buffers>>,
    /// The descriptors of boxed `uint64_t` and `int64_t` (`[unsigned, signed]`), which the
    /// 64-bit result helpers box C's values in (Lua 5.1/5.2, and `uint64_t` values above
    /// `math.maxinteger`); null until first used.
    pub boxed_int64: [std::cell::Cell<*const CTypeDesc>; 2],
}

impl CallState {
    /// Empty: no code, no callbacks; stubs and thunks will call `helpers` (the address of
    /// every helper for [`CallMode::Metamethod`], then for [`CallMode::Closure`], then for
    /// callback thunks).
    pub fn new(helpers: [Vec<u64>; 3]) -> CallState {
        CallState {
            arena: CodeArena::with_unit_pages(STUB_UNIT_PAGES),
            callback_arena: CodeArena::with_unit_pages(CALLBACK_UNIT_PAGES),
            stubs: HashMap::new(),
            variadic_stubs: HashMap::new(),
            callbacks: Callbacks::default(),
            calling_l: std::ptr::null_mut(),
            main_l: std::ptr::null_mut(),
            pending_error: ffi::LUA_NOREF,
            helpers,
            tier_up: tier_up_from_env(),
            tier0: Chunks::default(),
            tier0_code: Default::default(),
            tier0_buffers: None,
            boxed_int64: [const { std::cell::Cell::new(std::ptr::null()) }; 2],
        }
    }

    /// The address of every helper, indexed by `Helper::id`, for a `CodeEnv` of a stub of
    /// `mode`.
    pub fn helper_addresses(&self, mode: CallMode) -> Vec<u64> {
        self.helpers[mode as usize].clone()
    }

    /// The helper table of stubs of `mode`, without a copy (tier 0's).
    pub(in crate::native) fn helper_table(&self, mode: CallMode) -> *const u64 {
        self.helpers[mode as usize].as_ptr()
    }

    /// The address of every helper, indexed by `Helper::id`, for a `CodeEnv` of a callback
    /// thunk.
    pub fn thunk_helper_addresses(&self) -> Vec<u64> {
        self.helpers[2].clone()
    }

    /// Number of stubs built so far (variadic ones included).
    pub fn stub_count(&self) -> usize {
        self.stubs.len() + self.variadic_stubs.values().map(HashMap::len).sum::<usize>()
    }
}

/// Drops the stubs newest registration first ([`crate::os::unwind::Registration::order`]):
/// in hash-map order, each deregistration walked libgcc's list of frames, so closing a state
/// cost time quadratic in its stubs (callgrind, 1,000 stubs: 2.2K instructions per stub;
/// 3,000: three times that).
impl Drop for CallState {
    fn drop(&mut self) {
        let variadic = self.variadic_stubs.drain().flat_map(|(_, by_args)| by_args.into_values());
        let mut stubs: Vec<CodeHandle> = self.stubs.drain().map(|(_, h)| h).chain(variadic).collect();
        stubs.sort_unstable_by_key(|h| std::cmp::Reverse(h.registration_order()));
        // A vector drops its elements first to last.
        drop(stubs);
    }
}

/// Calls a signature makes on tier 0 ([`crate::native::tier0`]) before its stub is built.
pub const DEFAULT_TIER_UP: u32 = 8;

/// Whether tier 0 runs on this host: x86-64 (System V and Windows), where its call routine
/// exists.
pub const TIER0_SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// The threshold a new state takes: `LUAFFI_TIER_UP` when it is a number, else
/// [`DEFAULT_TIER_UP`]; 0 on a host tier 0 does not run on (its stubs are built at first
/// call).
pub fn tier_up_from_env() -> u32 {
    if !TIER0_SUPPORTED {
        return 0;
    }
    std::env::var("LUAFFI_TIER_UP").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_TIER_UP)
}

/// A signature's tier-0 data for one call path ([`crate::native::tier0`]): the program its
/// stub is built from and what the program refers to. Owned by the state's [`CallState`],
/// pointed to by a descriptor: the function type's for namespace closures
/// ([`CTypeDesc::tier0`]), the callable type's for `__call` ([`CTypeDesc::tier0_call`]).
pub struct Tier0Sig {
    /// The stub's program without inline steps, compiled for tier 0 with its ctype
    /// constants; a fault (a bug) is raised when the function is called.
    pub(in crate::native) code: Result<crate::native::tier0::Tier0Code, crate::native::tier0::Fault>,
    /// The function type.
    pub(in crate::native) fn_ty: TypeId,
    /// The state's helper table for the program's call path: `Helper::ALL.len()` addresses,
    /// indexed by `Helper::id`, living as long as the state that owns this.
    pub(in crate::native) helpers: *const u64,
    /// Calls run on tier 0 so far.
    pub(in crate::native) calls: std::cell::Cell<u32>,
    /// Set when building the stub failed: the function stays on tier 0.
    pub(in crate::native) no_stub: std::cell::Cell<bool>,
}

/// The lists tier 0 plans and compiles a signature with (`call::tier0_sig`): a program is
/// dropped once compiled, so its lists are cleared and reused by the next signature instead
/// of allocated afresh (a program's ~3 KB of steps made the allocator consolidate its free
/// lists each time).
#[derive(Default)]
pub(in crate::native) struct Tier0Buffers {
    /// The program's steps.
    pub(in crate::native) steps: Vec<abi_model::lua::steps::Step>,
    /// The signature's parameter types.
    pub(in crate::native) params: Vec<abi_model::QualType>,
    /// The arguments' ctype constants.
    pub(in crate::native) ctypes: Vec<u64>,
    /// The plan's lists.
    pub(in crate::native) plan: abi_model::PlanBuffers,
}

/// One callback's record; its address is the thunk's callback-data constant, so it is boxed
/// and never moves while the thunk exists. The thunk reads `func` ([`crate::native::callback::FUNC`] says where).
#[repr(C)]
pub struct Callback {
    /// With the state's verified Lua stack layout: the function's value as a stack slot holds
    /// it (alive through `func_ref`), which the entry pushes without a registry lookup.
    pub(in crate::native) func: FuncValue,
    /// The owning state.
    pub(in crate::native) st: *mut FfiState,
    /// Registry reference of the Lua function.
    pub(in crate::native) func_ref: c_int,
    /// The C return type (to check and zero the Lua result).
    pub(in crate::native) ret: QualType,
    /// Its descriptor.
    pub(in crate::native) ret_desc: *const CTypeDesc,
    /// Number of C parameters (stack room needed to push them).
    pub(in crate::native) nparams: c_int,
    /// The thunk (None only while it is being built).
    pub(in crate::native) code: Option<CodeHandle>,
    /// The function type: a freed slot is reused only for this type, whose thunk it has.
    pub(in crate::native) fn_ty: TypeId,
    /// Incremented each time the slot is freed, so that a lease of an implicit callback frees
    /// only the callback it was made for.
    pub(in crate::native) gen: u32,
}

/// Live callbacks and freed slots ([`Callback`] records, by thunk address), per state.
#[derive(Default)]
pub struct Callbacks {
    /// Every slot, live or freed, by thunk address (the value a C function pointer to it
    /// holds). Records and thunks are never dropped before the state.
    pub(in crate::native) slots: HashMap<usize, Box<Callback>>,
    /// Freed slots by function type.
    pub(in crate::native) free: HashMap<TypeId, Vec<usize>>,
    /// Live callbacks (slots not freed).
    pub(in crate::native) live: usize,
    /// Callbacks made while a C call's argument is converted ([`crate::native::callback::arg_to_c`]) and not leased yet.
    pub(in crate::native) implicit: Vec<usize>,
    /// The argument conversion in progress, if any: its thread and that thread's current
    /// `CallInfo` (0 without a verified stack layout), so that a finalizer running meanwhile
    /// (in a deeper `CallInfo`) does not lease what it makes.
    pub(in crate::native) leasing: Option<(usize, usize)>,
}

impl Callbacks {
    /// Number of live callbacks.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The live callback whose thunk is at `addr`.
    pub(in crate::native) fn get_live(&self, addr: usize) -> Option<&Callback> {
        self.slots.get(&addr).map(|b| &**b).filter(|cb| cb.func_ref != ffi::LUA_NOREF)
    }
}

/// A copy of a Lua function's stack slot: its value word and its tag ([`CallbackFunc::NONE`]:
/// no copy, the function is pushed from the registry).
#[repr(C)]
#[derive(Clone, Copy)]
pub(in crate::native) struct FuncValue {
    pub(in crate::native) value: u64,
    pub(in crate::native) tag: u32,
}

impl FuncValue {
    pub(in crate::native) fn new(slot: Option<(u64, u32)>) -> FuncValue {
        match slot {
            Some((value, tag)) if tag != CallbackFunc::NONE => FuncValue { value, tag },
            _ => FuncValue { value: 0, tag: CallbackFunc::NONE },
        }
    }
}
