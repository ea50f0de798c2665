//! Namespace functions as Lua C closures ([`push_function`]), whose first calls run on tier 0
//! ([`crate::native::tier0`]): the stub is built only once the function has been called
//! [`crate::native::state::CallState::tier_up`] times.
//!
//! On x86-64 a namespace function's closure starts with [`tier0_closure_call`] as its C
//! function, over the same upvalues as the stub's ([`push_function`]); each call runs the
//! signature's program on tier 0.
//!
//! **Tier up.** The call that reaches the threshold builds the stub (`count_tier0_call`, the
//! stub cache's `fixed_stub`), makes it the entry new closures of the type get, and writes it into the
//! running closure's C function (`CClosure::f`, at an offset per Lua version, checked to hold
//! [`tier0_closure_call`] before it is written, else left alone), so later calls cost what
//! they did before tier 0 existed. A closure made before the tier-up moves over at its next
//! call. If the stub cannot be built (no executable memory), the function stays on tier 0 and
//! keeps working. `LUAFFI_TIER_UP=0` in the environment builds every stub at first call, as
//! before; `LUAFFI_TIER_UP=n` sets the threshold (default
//! [`crate::native::state::DEFAULT_TIER_UP`]).
//!
use std::os::raw::c_int;

use abi_model::{CType, TypeId};
use mlua::ffi;

use crate::cdata::{self, Cdata};
use crate::ctypes::state::{CTypeDesc, FfiState};
use crate::native::call::{
    count_tier0_call, fixed_stub, raise_stub_error, tier0_sig, variadic_stub, StubFn, CANNOT_CALL, FUNC_UPVALUE,
};
use crate::native::state::{CallMode, State, Tier0Sig};
use crate::native::tier0;

/// Pushes what a namespace returns for a function: the Lua C closure over the function cdata
/// at `fn_idx` (upvalue 1), the namespace at `anchor_idx` (upvalue 2, so a library
/// `ffi.load` opened stays loaded while its functions live) and the function's address
/// ([`FUNC_UPVALUE`]), whose C function is [`tier0_closure_call`] until the signature's
/// stub is built, then the shared closure-mode stub of the signature (for a variadic
/// function, `variadic_closure_call`).
/// When no stub can be made for the signature (no native backend, an unsupported type), the
/// cdata itself is pushed instead: calling it raises the reason.
///
/// # Safety
/// `l` valid with 3 free slots; `st` its state; `fn_idx` and `anchor_idx` absolute indices,
/// the first a function cdata of this state.
pub unsafe fn push_function(l: *mut ffi::lua_State, st: *mut FfiState, fn_idx: c_int, anchor_idx: c_int) {
    // SAFETY: valid-L with 3 free slots, live-state `st`; `fn_idx` holds a function cdata of this
    // state, so its userdata starts with a live-cdata header; raise-clean: nothing owned is alive
    // when a memory error is raised.
    unsafe {
        let c = Cdata::with_header(ffi::lua_touserdata(l, fn_idx) as *mut u8);
        let desc = c.desc();
        let fn_ty = cdata::type_of(c).id;
        let mut entry = (*desc).closure_entry.get();
        if entry == 0 {
            let variadic = matches!((*st).types.get(fn_ty), CType::Function(f) if f.variadic);
            entry = if variadic {
                variadic_closure_call as StubFn as usize
            } else {
                first_closure_entry(&mut *State::of(st), desc, fn_ty)
            };
            (*desc).closure_entry.set(entry);
        }
        if entry == 0 {
            ffi::lua_pushvalue(l, fn_idx);
            return;
        }
        ffi::lua_pushvalue(l, fn_idx);
        ffi::lua_pushvalue(l, anchor_idx);
        // A function cdata's address never changes (it is not an lvalue).
        ffi::lua_pushlightuserdata(l, (cdata::bytes(c) as *const *mut std::os::raw::c_void).read_unaligned());
        ffi::lua_pushcclosure(l, std::mem::transmute::<usize, StubFn>(entry), FUNC_UPVALUE as c_int);
    }
}

/// The C function the first closures of non-variadic `fn_ty` get: tier 0's, over the
/// signature's program, while the state's threshold is above 0 and the program fits tier 0's
/// frame; else the stub, built now. 0 when the signature cannot be called.
fn first_closure_entry(st: &mut State, desc: *const CTypeDesc, fn_ty: TypeId) -> usize {
    if st.calls.tier_up > 0 {
        match tier0_sig(st, fn_ty, CallMode::Closure) {
            Ok(Some(sig)) => {
                let sig = st.calls.tier0.push(sig).as_ptr();
                let entry = tier0_closure_call as StubFn as usize;
                // SAFETY: `desc` is the state's (live as long as it); `Chunks` keeps `sig`
                // where it is for as long as the state, so as long as the descriptor.
                unsafe {
                    (*desc).tier0.set(sig as usize);
                    (*desc).tier0_entry.set(entry);
                }
                return entry;
            }
            Ok(None) => {}
            Err(_) => return 0,
        }
    }
    fixed_stub(st, fn_ty, CallMode::Closure).unwrap_or(0)
}

/// The C function of a variadic namespace function's closure: finds (or builds) the
/// closure-mode stub for the arguments given and runs it as its own body, so the stub reads
/// this closure's upvalues.
unsafe extern "C-unwind" fn variadic_closure_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a closure made by `push_function` (upvalue 1 is the function cdata); errors are
    // raised with nothing owned alive.
    unsafe {
        let c = Cdata::with_header(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut u8);
        let st = (*c.desc()).state;
        let stub = match variadic_stub(l, st, cdata::type_of(c).id, CallMode::Closure) {
            Ok(addr) => addr,
            Err(e) => raise_stub_error(l, CANNOT_CALL, e),
        };
        std::mem::transmute::<usize, StubFn>(stub)(l)
    }
}

/// Where a closure's C function is (`CClosure::f`): after the GC header, the upvalue count,
/// the `gclist` pointer and, on 5.1, the environment table.
const CLOSURE_F_OFFSET: usize = std::mem::size_of::<usize>() * if cfg!(feature = "lua51") { 4 } else { 3 };

/// Writes `entry` as the C function of the running closure, if that closure's C function is
/// [`tier0_closure_call`] where [`CLOSURE_F_OFFSET`] says it is.
///
/// # Safety
/// `l` is running a C closure; 1 free slot.
unsafe fn retarget_running_closure(l: *mut ffi::lua_State, entry: usize) {
    // SAFETY: `lua_getstack(l, 0)` is the running function, which `lua_getinfo("f")` pushes;
    // `lua_topointer` of a C closure is its `CClosure`, at least `CLOSURE_F_OFFSET + 8` bytes
    // (three upvalues follow `f`); the word is written only where it holds our own entry, so
    // a layout this offset does not match is left alone.
    unsafe {
        let mut ar = std::mem::MaybeUninit::<ffi::lua_Debug>::zeroed();
        if ffi::lua_getstack(l, 0, ar.as_mut_ptr()) == 0 {
            return;
        }
        if ffi::lua_getinfo(l, c"f".as_ptr(), ar.as_mut_ptr()) == 0 {
            return;
        }
        if ffi::lua_iscfunction(l, -1) != 0 {
            let closure = ffi::lua_topointer(l, -1) as *mut u8;
            if !closure.is_null() {
                let f = closure.add(CLOSURE_F_OFFSET).cast::<usize>();
                if f.read_unaligned() == tier0_closure_call as StubFn as usize {
                    f.write_unaligned(entry);
                }
            }
        }
        ffi::lua_pop(l, 1);
    }
}

/// The C function of a namespace function's closure until its signature tiers up (module
/// docs): runs the program on tier 0, or the stub once it exists.
///
/// # Safety
/// Called by Lua as a closure made by `push_function` (upvalue 1 the function cdata).
pub unsafe extern "C-unwind" fn tier0_closure_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is a live-cdata of a function type whose descriptor points to its
    // `Tier0Sig` (set by `push_function` with this entry), owned by the state, which outlives
    // the closure's calls; errors are raised with nothing owned alive.
    unsafe {
        let c = Cdata::with_header(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut u8);
        let desc: *const CTypeDesc = c.desc();
        let entry = (*desc).closure_entry.get();
        let this = tier0_closure_call as StubFn as usize;
        if entry != this && entry != 0 {
            // The signature tiered up after this closure was made: move it over.
            retarget_running_closure(l, entry);
            return std::mem::transmute::<usize, StubFn>(entry)(l);
        }
        let sig = &*((*desc).tier0.get() as *const Tier0Sig);
        if let Some(addr) = count_tier0_call(&mut *State::of((*desc).state), sig, CallMode::Closure) {
            // The stub is built: new closures of the type get it, and this one moves to it.
            (*desc).closure_entry.set(addr);
            retarget_running_closure(l, addr);
        }
        tier0::run_or_raise(l, &sig.code, sig.helpers)
    }
}

/// Test support: sets the tier-0 threshold of the `ffi` state of `lua` (0: every stub built at
/// first call; see the [module docs](self)), for functions whose closures are made from now
/// on. False when `lua` has no `ffi` state.
#[doc(hidden)]
pub fn set_tier_up(lua: &mlua::Lua, calls: u32) -> bool {
    // SAFETY: `set_tier_up_fn` follows the lua_CFunction protocol.
    let Ok(f) = (unsafe { lua.create_c_function(set_tier_up_fn) }) else { return false };
    f.call::<bool>(f64::from(calls)).unwrap_or(false)
}

/// [`set_tier_up`]'s body: argument 1 is the threshold; returns whether the state has `ffi`.
unsafe extern "C-unwind" fn set_tier_up_fn(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction (mlua's `create_c_function`): valid-L with `LUA_MINSTACK` free slots;
    // `lua_tonumber` reads argument 1. A non-null `st` is a live-state, the first field of its
    // `State`. Nothing here raises.
    unsafe {
        let st = crate::ctypes::state::from_registry(l);
        if !st.is_null() && crate::native::state::TIER0_SUPPORTED {
            (*State::of(st)).calls.tier_up = ffi::lua_tonumber(l, 1) as u32;
        }
        ffi::lua_pushboolean(l, c_int::from(!st.is_null()));
        1
    }
}
