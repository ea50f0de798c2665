//! Callbacks: Lua functions that C calls through a function pointer.
//!
//! A callback is made when a Lua function is converted to a pointer-to-function type:
//! explicitly with `ffi.cast("int (*)(int, int)", f)`, or implicitly when a Lua function is
//! passed as a function-pointer argument, stored in a function-pointer field or used to
//! initialise one (the conversion hook in [`crate::convert::lua_to_c`]). Each callback slot has
//! its own thunk (`abi_model::lua::steps::thunk_program` lowered by the host backend), whose
//! callback-data constant is the address of its [`Callback`] record.
//!
//! # Lifetime
//!
//! A callback made with `ffi.cast` (or stored in a function-pointer field, or initialising
//! one) lives until `cb:free()` is called on a cdata holding its pointer, as in LuaJIT; it is
//! **not** freed when the cdata is collected, because C code may still hold the pointer. To
//! tie it to its cdata, say so: `ffi.gc(cb, function(c) c:free() end)`. `cb:set(f)` replaces
//! the Lua function. Calling `free`/`set` on a function pointer that is not a live callback
//! raises `bad callback`. After `cb:free()`, that cdata holds NULL.
//!
//! A Lua function passed directly as a function-pointer argument of a C call (also inside a
//! table initialising a record argument) makes a callback that lives as long as the call:
//! [`arg_to_c`] replaces the argument's stack slot by a lease whose finalizer frees it once
//! the call has returned and the lease is collected. (LuaJIT keeps these forever and runs out
//! after about 900; here C must not keep such a pointer after the call: use `ffi.cast`.)
//!
//! Freeing keeps the slot: its record and thunk stay, and calling the thunk (a copy of the
//! pointer C kept) raises `bad callback` in the Lua caller of the C function, as LuaJIT does,
//! until a new callback of the same function type takes the slot (same signature, so the old
//! pointer then runs the new callback, as in LuaJIT; never a thunk of another signature).
//! Slots are bounded by [`MAX_CALLBACKS`]. Thunks live in their own arena, whose pooled units
//! are 64 KiB: about a hundred thunks per mapping.
//!
//! # Errors inside a callback
//!
//! A Lua error must not unwind through the C frames between the stub and the thunk (C code
//! such as `qsort` would be left half-done, its locks held). So the callback's function runs
//! under `lua_pcall`; when it fails, or returns a value that does not convert to the C return
//! type, the thunk returns zero (a zeroed value of the return type) to C, the error is kept,
//! and later invocations of any callback during the same C call return zero at once without
//! running Lua. When the C function returns, the stub's `luaffi_after_call` raises the kept
//! error in the caller: `pcall(ffi.C.qsort, ...)` returns `false, "file:line: message"`, the
//! same message LuaJIT reports (which unwinds through C instead).

use std::os::raw::{c_int, c_void};

use abi_model::lua::steps::{thunk_program_inline, CallbackFunc, Inline, CALLBACK_EXTRA_SLOTS};
use abi_model::lua::CodeEnv;
use abi_model::{plan_call, CType, CallbackFrame, QualType, TypeId};
use mlua::ffi;

use crate::cdata::{self, Form, HAS_INTEGERS};
use crate::convert;
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::FfiState;
use crate::native::call::{arg_desc, assemble, backend, signature, StubError};
use crate::native::state::{Callback, FuncValue, State};
use crate::stack::{LuaStack, OrRaise, Raise};

/// Why a callback could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// Every slot is taken ([`MAX_CALLBACKS`]).
    TooMany,
    /// A variadic function type: C cannot call a callback with `...`.
    Variadic,
    /// No thunk for this function type: the signature is refused or its code could not be
    /// built.
    Code(StubError),
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackError::TooMany => f.write_str("too many callbacks"),
            CallbackError::Variadic => f.write_str("a callback cannot be variadic"),
            CallbackError::Code(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallbackError {}

/// Thunks kept at most: past this many (live and freed), a new callback whose type has no
/// freed slot first collects garbage (releasing implicit callbacks of finished calls), then
/// fails with `too many callbacks` (LuaJIT's limit is about 900).
pub const MAX_CALLBACKS: usize = 16384;

/// Where a [`Callback`] record holds its function's value, for thunks with an inline entry.
pub const FUNC: CallbackFunc = CallbackFunc {
    value_at: (std::mem::offset_of!(Callback, func) + std::mem::offset_of!(FuncValue, value)) as u32,
    tag_at: (std::mem::offset_of!(Callback, func) + std::mem::offset_of!(FuncValue, tag)) as u32,
};

/// The Lua function at `idx` as the thunk pushes it: its stack slot when the state's stack
/// layout is verified, else nothing (the thunk then goes through its registry reference).
///
/// # Safety
/// `l` valid, `vm` its state's verified layout (if any), `idx` a valid index.
unsafe fn func_value(l: *mut ffi::lua_State, vm: Option<abi_model::lua::vm::LuaVm>, idx: c_int) -> FuncValue {
    // SAFETY: valid-L, `vm` its verified layout and `idx` a valid index (caller's contract):
    // `read_slot` reads that one stack slot.
    unsafe { FuncValue::new(vm.and_then(|vm| crate::stack::vm_check::read_slot(l, &vm, idx))) }
}

/// A registry reference to the Lua function at `idx` (keeping it alive) and its
/// [`func_value`].
///
/// # Safety
/// `l` valid with a free slot, `vm` as for [`func_value`], `idx` an absolute index.
unsafe fn anchor_function(
    l: *mut ffi::lua_State,
    vm: Option<abi_model::lua::vm::LuaVm>,
    idx: c_int,
) -> (c_int, FuncValue) {
    // SAFETY: valid-L with a free slot and a valid `idx` (caller's contract): `lua_pushvalue` and
    // `luaL_ref` use one slot and pop it.
    unsafe {
        ffi::lua_pushvalue(l, idx);
        (ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX), func_value(l, vm, idx))
    }
}

/// Creates a callback of function type `fn_ty` running the Lua function at `idx`; returns
/// the thunk's address (the C function pointer). A freed slot of the same type is reused
/// (same signature, so its thunk serves the new callback as it is). Raises only what a
/// garbage collection raises (an error in a finalizer, on Lua 5.1–5.3).
///
/// # Safety
/// `l` valid with 2 free slots; `st` its state; `idx` an absolute index of a function.
pub unsafe fn new_callback(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    fn_ty: TypeId,
) -> Result<usize, CallbackError> {
    // SAFETY: valid-L with 2 free slots, live-state `st`, a function at `idx` (caller's contract);
    // the record's address is stable inside its Box, so the thunk may embed it.
    unsafe {
        let cbs = &mut (*State::of(st)).calls.callbacks;
        if cbs.free.get(&fn_ty).is_none_or(Vec::is_empty) && cbs.slots.len() >= MAX_CALLBACKS {
            // Leases of finished calls free their callbacks when collected. Nothing owned is
            // alive in this frame if a finalizer raises.
            ffi::lua_gc(l, ffi::LUA_GCCOLLECT, 0);
        }
        if let Some(addr) = (*State::of(st)).calls.callbacks.free.get_mut(&fn_ty).and_then(Vec::pop) {
            let (func_ref, func) = anchor_function(l, (*st).inline_vm().copied(), idx);
            let cbs = &mut (*State::of(st)).calls.callbacks;
            let cb = cbs.slots.get_mut(&addr).expect("a freed slot keeps its record");
            (cb.func_ref, cb.func) = (func_ref, func);
            cbs.live += 1;
            return Ok(addr);
        }
        let cbs = &mut (*State::of(st)).calls.callbacks;
        if cbs.slots.len() >= MAX_CALLBACKS {
            return Err(CallbackError::TooMany);
        }
        let backend = backend().ok_or(CallbackError::Code(StubError::NoBackend))?;
        let s = &mut *State::of(st);
        let sig = signature(&s.types, fn_ty).ok_or(CallbackError::Code(StubError::NotAFunction))?;
        if sig.variadic {
            return Err(CallbackError::Variadic);
        }
        let plan = plan_call(&s.types, &sig, &[]).map_err(|e| CallbackError::Code(StubError::Plan(e)))?;
        if let Some(bytes) = crate::native::call::stack_args_too_large(&plan) {
            return Err(CallbackError::Code(StubError::StackArgsTooLarge { bytes }));
        }
        // With the layout verified: the entry, number arguments and a number result inline.
        let inline = s.inline_vm().copied().map(|vm| Inline::callback(vm, FUNC));
        let program = thunk_program_inline(&CallbackFrame::from_plan(&plan), inline.as_ref());
        let arg_ctypes = sig.params.iter().map(|t| arg_desc(s, *t) as u64).collect();
        let ret_desc = s.desc(sig.ret);
        let (func_ref, func) = anchor_function(l, s.inline_vm().copied(), idx);
        let mut cb = Box::new(Callback {
            func,
            st,
            func_ref,
            ret: sig.ret,
            ret_desc,
            nparams: sig.params.len() as c_int,
            code: None,
            fn_ty,
            gen: 0,
        });
        let env = CodeEnv {
            helpers: s.calls.thunk_helper_addresses(),
            arg_ctypes,
            ret_ctype: ret_desc as u64,
            callback_data: &*cb as *const Callback as u64,
            call_slots: Some(crate::native::call::call_slots(s)),
        };
        match assemble(&s.calls.callback_arena, backend, |base| backend.thunk_code(&program, base, &env)) {
            Ok(code) => {
                let addr = code.addr();
                cb.code = Some(code);
                s.calls.callbacks.slots.insert(addr, cb);
                s.calls.callbacks.live += 1;
                Ok(addr)
            }
            Err(e) => {
                ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, func_ref);
                Err(CallbackError::Code(e))
            }
        }
    }
}

/// Frees the live callback at `addr`: releases its Lua function; its thunk stays, a trap that
/// raises `bad callback` when called, until a new callback of its type takes the slot.
///
/// # Safety
/// `l` a valid state of `st`.
unsafe fn release(l: *mut ffi::lua_State, st: *mut FfiState, addr: usize) {
    // SAFETY: valid-L of live-state `st` (caller's contract); the `&mut` to `st`'s callback table
    // is not held across a call into Lua (`luaL_unref` runs no Lua code).
    unsafe {
        let cbs = &mut (*State::of(st)).calls.callbacks;
        let Some(cb) = cbs.slots.get_mut(&addr) else { return };
        if cb.func_ref == ffi::LUA_NOREF {
            return;
        }
        let r = std::mem::replace(&mut cb.func_ref, ffi::LUA_NOREF);
        cb.func = FuncValue::new(None);
        cb.gen = cb.gen.wrapping_add(1);
        cbs.live -= 1;
        cbs.free.entry(cb.fn_ty).or_default().push(addr);
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
    }
}

/// Registry key (its address) of the metatable of leases.
static LEASE_META_KEY: u8 = 0;

/// Converts the Lua value at `idx`, an argument of the C call in progress, to a `ty` at `dst`
/// ([`convert::lua_to_c`]). The callbacks the conversion makes (Lua functions passed for
/// function pointers, also inside a table initialising a record) live as long as the call:
/// the argument's stack slot is replaced by a lease, a userdata whose finalizer frees them,
/// so they are freed once the call has returned and the lease is collected. When the
/// conversion fails they are freed at once.
///
/// # Safety
/// As [`convert::lua_to_c`], from a stub's helper: `idx` an absolute index of the called
/// function's frame; `l` with 2 free slots.
pub unsafe fn arg_to_c(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    ty: QualType,
    dst: *mut u8,
) -> Result<(), convert::ConvError> {
    // SAFETY: the contract of `convert::lua_to_c` (valid-L, live-state, `dst` writable for `ty`)
    // and a valid absolute `idx` in the called function's frame with 2 free slots.
    unsafe {
        let now = conversion(l, st);
        let cbs = &mut (*State::of(st)).calls.callbacks;
        let mark = cbs.implicit.len();
        let was = cbs.leasing.replace(now);
        let r = convert::lua_to_c(l, st, idx, ty, dst, 0);
        let cbs = &mut (*State::of(st)).calls.callbacks;
        cbs.leasing = was;
        let made = cbs.implicit.len() - mark;
        if made == 0 {
            return r;
        }
        if r.is_err() {
            while (*State::of(st)).calls.callbacks.implicit.len() > mark {
                let addr = (*State::of(st)).calls.callbacks.implicit.pop().expect("above the mark");
                release(l, st, addr);
            }
            return r;
        }
        lease_implicit(l, st, mark);
        ffi::lua_replace(l, idx);
        r
    }
}

/// The [`convert::MakeCallback`] this layer installs: [`new_callback`], then the callback
/// is recorded for the C call whose argument is being converted, if any ([`made_implicitly`]).
///
/// # Safety
/// As [`convert::MakeCallback`].
pub unsafe fn for_conversion(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    idx: c_int,
    fn_ty: TypeId,
) -> Result<usize, convert::NoCallback> {
    // SAFETY: valid-L with 2 free slots, live-state `st` not borrowed, an absolute `idx`
    // holding a function (this function's contract, `MakeCallback`'s): what `new_callback`
    // needs, and `made_implicitly` needs `l` a valid state of `st`. raise-clean: this frame
    // owns nothing while `new_callback` may raise (a finalizer's error in a collection).
    unsafe {
        match new_callback(l, st, idx, fn_ty) {
            Ok(addr) => {
                made_implicitly(l, st, addr);
                Ok(addr)
            }
            Err(CallbackError::TooMany) => Err(convert::NoCallback::TooMany),
            Err(CallbackError::Code(e)) => Err(match e.code_failure() {
                Some(failure) => convert::NoCallback::Code(failure),
                None => convert::NoCallback::Unsupported,
            }),
            Err(CallbackError::Variadic) => Err(convert::NoCallback::Unsupported),
        }
    }
}

/// Records a callback just made by a conversion on `l`, for [`arg_to_c`] to lease when it is
/// that conversion's.
///
/// # Safety
/// `l` a valid state of `st`.
pub unsafe fn made_implicitly(l: *mut ffi::lua_State, st: *mut FfiState, addr: usize) {
    // SAFETY: valid-L of live-state `st` (caller's contract); only `st`'s callback bookkeeping is
    // touched.
    unsafe {
        if (*State::of(st)).calls.callbacks.leasing == Some(conversion(l, st)) {
            (*State::of(st)).calls.callbacks.implicit.push(addr);
        }
    }
}

/// What identifies a conversion running now on `l`: the thread and its current `CallInfo`.
///
/// # Safety
/// `l` a valid state of `st`.
unsafe fn conversion(l: *mut ffi::lua_State, st: *mut FfiState) -> (usize, usize) {
    // SAFETY: with a verified layout, `room.ci` is the offset of `L->ci` (a pointer), which
    // the inline callback entry reads too.
    let ci =
        unsafe { (*st).inline_vm().map_or(0, |vm| ((l as *const u8).add(vm.room.ci as usize) as *const usize).read()) };
    (l as usize, ci)
}

/// Pushes a lease over the callbacks recorded above `mark`, and forgets them.
unsafe fn lease_implicit(l: *mut ffi::lua_State, st: *mut FfiState, mark: usize) {
    // SAFETY: valid-L: pushes and pops within its free slots; the lease holds `n` (address,
    // generation) pairs after its count.
    unsafe {
        let n = (*State::of(st)).calls.callbacks.implicit.len() - mark;
        let words = ffi::lua_newuserdata(l, (1 + 2 * n) * std::mem::size_of::<usize>()) as *mut usize;
        words.write(n);
        let cbs = &mut (*State::of(st)).calls.callbacks;
        for (i, addr) in cbs.implicit.drain(mark..).enumerate() {
            let gen = cbs.slots.get(&addr).map_or(0, |cb| cb.gen);
            words.add(1 + 2 * i).write(addr);
            words.add(2 + 2 * i).write(gen as usize);
        }
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, &LEASE_META_KEY as *const u8 as *const c_void);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushlightuserdata(l, st as *mut c_void);
            ffi::lua_pushcclosure(l, lease_gc, 1);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, &LEASE_META_KEY as *const u8 as *const c_void);
        }
        ffi::lua_setmetatable(l, -2);
    }
}

/// `__gc` of a lease: frees its callbacks that were not freed (and reused) since.
unsafe extern "C-unwind" fn lease_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lease made by `lease_implicit` at index 1, the state as upvalue 1 (it outlives
    // every object of its Lua state, crate::ctypes::state).
    unsafe {
        let st = crate::ctypes::state::from_upvalue(l);
        let words = ffi::lua_touserdata(l, 1) as *const usize;
        for i in 0..words.read() {
            let (addr, gen) = (words.add(1 + 2 * i).read(), words.add(2 + 2 * i).read());
            if (*State::of(st)).calls.callbacks.slots.get(&addr).is_some_and(|cb| cb.gen as usize == gen) {
                release(l, st, addr);
            }
        }
        0
    }
}

/// The function a freed callback runs: raises LuaJIT's error.
unsafe extern "C-unwind" fn bad_callback(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction; nothing owned in this frame.
    unsafe { crate::stack::raise(l, Raise::Plain("bad callback".into())) }
}

/// `cb.free` / `cb.set` on a function-pointer cdata at index 1 (key at index 2): pushes the
/// method and returns 1, or returns 0 when the key is neither.
///
/// # Safety
/// Called from `__index` of a live cdata at index 1; `st` its state.
pub unsafe fn index_method(l: *mut ffi::lua_State, st: *mut FfiState) -> c_int {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        let c = cdata::to_cdata(l, st, 1);
        if c.is_null() || c.form() == Form::CType || ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            return 0;
        }
        if !matches!(shape(&(*st).types, cdata::type_of(c).id), Shape::Pointer(to) if matches!(shape(&(*st).types, to.id), Shape::Func))
        {
            return 0;
        }
        let mut len = 0usize;
        let k = std::slice::from_raw_parts(ffi::lua_tolstring(l, 2, &mut len) as *const u8, len);
        let method: unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int = match k {
            b"free" => cb_free,
            b"set" => cb_set,
            _ => return 0,
        };
        ffi::lua_pushlightuserdata(l, st as *mut c_void);
        ffi::lua_pushcclosure(l, method, 1);
        1
    }
}

/// The thunk address held by the function-pointer cdata at index 1, if it is a live
/// callback of this state; raises `bad callback` otherwise.
unsafe fn check_callback(l: *mut ffi::lua_State, st: *mut FfiState) -> (cdata::Cdata, usize) {
    // SAFETY: valid-L: only reads of existing stack slots.
    unsafe {
        let c = cdata::to_cdata(l, st, 1);
        if !c.is_null()
            && c.form() != Form::CType
            && crate::native::call::callable_type(&(*st).types, cdata::type_of(c).id).is_some()
        {
            let addr = (cdata::bytes(c) as *const usize).read_unaligned();
            if matches!(shape(&(*st).types, cdata::type_of(c).id), Shape::Pointer(_))
                && (*State::of(st)).calls.callbacks.get_live(addr).is_some()
            {
                return (c, addr);
            }
        }
        cdata::raise(l, "bad callback".into())
    }
}

/// `cb:free()`: frees the thunk and releases the Lua function; the cdata becomes NULL.
unsafe extern "C-unwind" fn cb_free(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a closure with the state as upvalue 1.
    unsafe {
        let st = crate::ctypes::state::from_upvalue(l);
        let (c, addr) = check_callback(l, st);
        release(l, st, addr);
        (cdata::bytes(c) as *mut usize).write_unaligned(0);
        0
    }
}

/// `cb:set(f)`: the callback runs `f` from now on.
unsafe extern "C-unwind" fn cb_set(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a closure with the state as upvalue 1.
    unsafe {
        let st = crate::ctypes::state::from_upvalue(l);
        let (_, addr) = check_callback(l, st);
        LuaStack::new(l).check_type(2, ffi::LUA_TFUNCTION).or_raise(l);
        let func = func_value(l, (*st).inline_vm().copied(), 2);
        let cb = (*State::of(st)).calls.callbacks.slots.get_mut(&addr).expect("checked above");
        cb.func = func;
        let r = cb.func_ref;
        ffi::lua_pushvalue(l, 2);
        ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
        0
    }
}

/// Pushes the value a callback returns to C when its Lua function failed: 0 for numbers and
/// bool, a zeroed cdata of the return type for pointers and aggregates.
unsafe fn push_zero(l: *mut ffi::lua_State, cb: *const Callback) {
    // SAFETY: valid-L with a free slot: one push; the descriptor lives as long as the state.
    unsafe {
        let desc = (*cb).ret_desc;
        match (*desc).shape {
            Shape::Pointer(_) | Shape::Record | Shape::Complex { .. } | Shape::Array(..) => {
                let n = (*desc).size.unwrap_or(0) as usize;
                cdata::push_value(l, (*cb).st, desc, n);
            }
            _ if HAS_INTEGERS => ffi::lua_pushinteger(l, 0),
            _ => ffi::lua_pushnumber(l, 0.0),
        }
    }
}

/// Whether the Lua value at the top converts to the callback's return type; on failure the
/// conversion error, to keep.
unsafe fn check_result(l: *mut ffi::lua_State, cb: *const Callback) -> Result<(), convert::ConvError> {
    // SAFETY: valid-L: pushes and pops within its free slots; the trial conversion writes into a
    // buffer of the type's size.
    unsafe {
        let desc = (*cb).ret_desc;
        let t = ffi::lua_type(l, -1);
        match (*desc).shape {
            Shape::Void => return Ok(()),
            Shape::Int { .. } | Shape::Float { .. } | Shape::Bool
                if t == ffi::LUA_TNUMBER || t == ffi::LUA_TBOOLEAN =>
            {
                return Ok(())
            }
            _ => {}
        }
        let idx = ffi::lua_gettop(l);
        let size = (*desc).size.unwrap_or(0) as usize;
        let mut small = [0u64; 8];
        let buf = if size <= std::mem::size_of_val(&small) {
            small.as_mut_ptr() as *mut u8
        } else {
            ffi::lua_newuserdata(l, size) as *mut u8
        };
        let r = convert::lua_to_c(l, (*cb).st, idx, (*cb).ret, buf, 0);
        ffi::lua_settop(l, idx);
        if r.is_ok() && t == ffi::LUA_TSTRING {
            if let (Shape::Int { size, signed }, CType::Enum(_)) = ((*desc).shape, (*(*cb).st).types.get((*cb).ret.id))
            {
                // An enum constant's name: the thunk converts the result with a plain
                // integer helper, so leave the value the name stands for.
                ffi::lua_pop(l, 1);
                convert::push_int(l, (*cb).st, convert::read_int(buf, size, signed), size, signed);
            }
        }
        r
    }
}

/// `lua_State *luaffi_callback_enter(void *cb)`: picks the thread the callback runs on,
/// pushes the Lua function; returns the thread.
///
/// # Safety
/// `cb` is the callback-data constant of a live callback's thunk.
pub unsafe extern "C-unwind" fn luaffi_callback_enter(cb: *mut c_void) -> *mut ffi::lua_State {
    // SAFETY: `cb` is the callback-data constant of a live callback's thunk (caller's contract): it
    // points to a boxed Callback whose `st` is a live-state.
    unsafe {
        let cb = cb as *const Callback;
        let calls = &(*State::of((*cb).st)).calls;
        let l = if calls.calling_l.is_null() { calls.main_l } else { calls.calling_l };
        // The function, the arguments and room for the helpers (what an inline entry checks).
        if ffi::lua_checkstack(l, (*cb).nparams + 1 + CALLBACK_EXTRA_SLOTS as c_int) == 0 {
            // No Lua error can be raised here (C frames are below); out of stack is fatal.
            eprintln!("luaffi: callback: Lua stack overflow");
            std::process::abort();
        }
        match ((*cb).func, (*(*cb).st).inline_vm()) {
            (f, Some(vm)) if f.tag != CallbackFunc::NONE => crate::stack::vm_check::push_slot(l, *vm, (f.value, f.tag)),
            _ if (*cb).func_ref == ffi::LUA_NOREF => ffi::lua_pushcfunction(l, bad_callback),
            _ => {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, (*cb).func_ref as ffi::lua_Integer);
            }
        }
        l
    }
}

/// `void luaffi_callback_call(lua_State *L, int nargs, void *cb)`: calls the function pushed
/// by enter under `lua_pcall`, leaving one result that converts to the return type (see the
/// [module docs](self) for what happens on error). Never raises.
///
/// # Safety
/// `l` is what enter returned for `cb`, with the function and `nargs` arguments pushed since.
pub unsafe extern "C-unwind" fn luaffi_callback_call(l: *mut ffi::lua_State, nargs: c_int, cb: *mut c_void) {
    // SAFETY: `l` is the thread enter returned for `cb`, with the function and `nargs` arguments
    // pushed (caller's contract); `lua_pcall` catches every error, so nothing raises past this
    // frame.
    unsafe {
        let cb = cb as *const Callback;
        let calls = &mut (*State::of((*cb).st)).calls;
        if calls.pending_error != ffi::LUA_NOREF {
            ffi::lua_pop(l, nargs + 1);
            push_zero(l, cb);
            return;
        }
        let status = ffi::lua_pcall(l, nargs, 1, 0);
        luaffi_callback_result(l, status, cb as *mut c_void);
    }
}

/// The address `Helper::CallbackPcall` is bound to: `lua_pcallk`, whose arguments it has
/// (5.1: `lua_pcall`, which takes the first four of them).
pub fn lua_pcall_address() -> usize {
    #[cfg(not(feature = "lua51"))]
    return ffi::lua_pcallk as *const () as usize;
    #[cfg(feature = "lua51")]
    return ffi::lua_pcall as *const () as usize;
}

/// `void luaffi_callback_result(lua_State *L, int status, void *cb)`: after the Lua call
/// returned `status`, leaves one result that converts to the return type: an error, or a
/// result that does not convert, is kept for the caller of the C function and replaced by
/// zero (see the [module docs](self)). Never raises.
///
/// # Safety
/// `l` as after `lua_pcall(l, nargs, 1, 0)` of the function enter pushed for `cb`.
pub unsafe extern "C-unwind" fn luaffi_callback_result(l: *mut ffi::lua_State, status: c_int, cb: *mut c_void) {
    // SAFETY: `l` is as `lua_pcall(l, nargs, 1, 0)` left it for `cb`'s function (caller's
    // contract): one result, or an error value, on top; nothing here raises.
    unsafe {
        let cb = cb as *const Callback;
        if status != ffi::LUA_OK {
            (*State::of((*cb).st)).calls.pending_error = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            push_zero(l, cb);
            return;
        }
        if let Err(e) = check_result(l, cb) {
            push_result_error(l, (*cb).st, e);
            (*State::of((*cb).st)).calls.pending_error = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pop(l, 1);
            push_zero(l, cb);
        }
    }
}

/// Pushes the message of a failed result conversion (LuaJIT's words).
#[inline(never)]
unsafe fn push_result_error(l: *mut ffi::lua_State, st: *mut FfiState, e: convert::ConvError) {
    let msg = e.message(&unsafe { &*st }.types);
    // SAFETY: valid-L with a free slot: one push.
    unsafe { ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len()) };
}

/// `void luaffi_callback_leave(lua_State *L)`: pops the result.
///
/// # Safety
/// `l` as after [`luaffi_callback_call`].
pub unsafe extern "C-unwind" fn luaffi_callback_leave(l: *mut ffi::lua_State) {
    // SAFETY: the result is there.
    unsafe { ffi::lua_settop(l, -2) }
}

/// Raises the error a callback kept during the C call that just returned, if any.
///
/// # Safety
/// Called by `luaffi_after_call` (may raise).
pub unsafe fn raise_pending(l: *mut ffi::lua_State, st: *mut FfiState) {
    // SAFETY: valid-L: pushes and pops within its free slots; nothing owned in this frame.
    unsafe {
        let r = (*State::of(st)).calls.pending_error;
        if r == ffi::LUA_NOREF {
            return;
        }
        (*State::of(st)).calls.pending_error = ffi::LUA_NOREF;
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
        crate::stack::raise(l, Raise::Top);
    }
}
