//! Layer 5, native code: calls into C through generated stubs, callbacks into Lua through
//! generated thunks, and the helpers stubs call. Imports only from the layers below (`os`,
//! `stack`, `ctypes`, `cdata`, `convert`).
//!
//! * [`state`]: the per-Lua-state data ([`state::State`]: C types and native part).
//! * [`call`]: calling function cdata through per-signature stubs.
//! * [`callback`]: Lua functions as C function pointers.
//! * [`helpers`]: the conversion helpers generated stubs and thunks call.
//!
//! # When the state is freed
//!
//! [`get_or_create`] boxes the [`state::State`] and anchors it in the Lua registry. It is freed
//! not by the userdata's `__gc`: when the Lua state closes, Lua runs every finalizer, newest
//! first, and only then frees the objects. A finalizer registered before `require "ffi"`
//! therefore runs after the state's, and may still use `ffi` (a namespace function it kept,
//! whose C function is a stub in the state's code arena; a cdata; `require "ffi"` itself).
//! So the `__gc` only hands the state over to this thread's *closed state*, and the state
//! stays whole and working until the next state this thread closes takes its place (or the
//! thread exits): by then every finalizer of its Lua state has run. At most one closed state
//! per thread is kept.

use std::cell::RefCell;
use std::os::raw::{c_int, c_void};

use mlua::ffi;

use crate::ctypes::state::{from_registry, FfiState, STATE_KEY};
use crate::native::helpers::{helper_addresses, thunk_helpers};
use crate::native::state::{CallMode, State};

pub mod call;
pub mod callback;
pub mod closure;
pub mod helpers;
pub mod state;
pub mod tier0;

/// A fresh state whose stubs and thunks call this crate's helpers (and conversions make
/// callbacks through [`callback::for_conversion`]); boxed and anchored in a
/// Lua state by [`get_or_create`], or used as it is to build stubs without running them.
pub fn new_state() -> State {
    crate::convert::set_callback_maker(callback::for_conversion);
    State::new([
        helper_addresses(CallMode::Metamethod),
        helper_addresses(CallMode::Closure),
        thunk_helpers(helper_addresses(CallMode::Metamethod)),
    ])
}

thread_local! {
    /// The state whose Lua state closed last on this thread (see the [module docs](crate::native)).
    static CLOSED: RefCell<Option<Box<State>>> = const { RefCell::new(None) };
}

/// `__gc` of the state's userdata: keeps the [`State`] as this thread's closed state and
/// frees the one kept before (module docs).
///
/// # Safety
/// Called by Lua with the userdata at index 1.
unsafe extern "C-unwind" fn state_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: index 1 is the state userdata created by `get_or_create`, holding the pointer of
    // a boxed State's FfiState; __gc runs once per userdata, so the box is taken over once. The state
    // freed here is the one of a Lua state that finished closing before this one's finalizers
    // began (plain Lua cannot close a Lua state from a finalizer), so nothing can reach it.
    let closed = unsafe {
        let p = State::of(*(ffi::lua_touserdata(l, 1) as *const *mut FfiState));
        if p.is_null() {
            return 0;
        }
        Box::from_raw(p)
    };
    let previous = CLOSED.with_borrow_mut(|slot| slot.replace(closed));
    drop(previous);
    0
}

/// The state of `l`, created (and anchored in the registry) on first use. Returns it and
/// whether it was created now.
///
/// # Safety
/// `l` must be a valid Lua state with room for 3 stack slots.
pub unsafe fn get_or_create(l: *mut ffi::lua_State) -> (*mut FfiState, bool) {
    // SAFETY: valid-L with 3 free slots (this function's contract): `from_registry` uses one
    // and pops it, then the userdata, the metatable and `state_gc` take three. The userdata
    // block has room for the pointer written into it. raise-clean: the API calls here may
    // raise a memory error; this frame owns nothing then (`p` is a raw pointer), though an
    // error before `lua_setmetatable` leaks the new box (no `__gc` will free it).
    unsafe {
        let key = &STATE_KEY as *const u8 as *const c_void;
        let existing = from_registry(l);
        if !existing.is_null() {
            return (existing, false);
        }
        let ud = ffi::lua_newuserdata(l, std::mem::size_of::<*mut FfiState>()) as *mut *mut FfiState;
        let p: *mut FfiState = State::boxed(new_state()).cast();
        ud.write(p);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, state_gc);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key);
        (p, true)
    }
}
