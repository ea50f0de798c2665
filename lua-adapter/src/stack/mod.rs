//! Layer 1, the Lua stack: what the other layers know about the running Lua's stack.
//!
//! * [`vm_check`]: the Lua stack layout stubs use inline, checked against the running Lua.
//!
//! Imports nothing from the crate.

use std::os::raw::{c_int, c_void};

use mlua::ffi;

pub mod vm_check;

/// Creates a userdata of `size` bytes with `user_values` user value slots (Lua 5.4), or a
/// plain userdata (earlier versions, where every userdata has one environment/user value).
///
/// # Safety
/// `l` must be valid with a free stack slot. May raise a memory error.
pub unsafe fn new_userdata(l: *mut ffi::lua_State, size: usize, user_values: c_int) -> *mut c_void {
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    // SAFETY: valid state, as the caller guarantees.
    unsafe {
        ffi::lua_newuserdatauv(l, size, user_values)
    }
    #[cfg(not(any(feature = "lua54", feature = "lua55")))]
    {
        let _ = user_values;
        // SAFETY: valid state, as the caller guarantees.
        unsafe { ffi::lua_newuserdata(l, size) }
    }
}
