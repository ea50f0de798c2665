//! A Lua state for the embedded shape (the `luaffi` command and `luaffi-bench`), made as
//! `lua.c` makes one.
//!
//! [`HostState::new`] calls `luaL_newstate`, so the state allocates through Lua's own
//! `l_alloc` (`realloc` and `free`), and mlua then runs on it as it does in a host `lua` that
//! loads `ffi.so`. mlua's own constructors install an allocator that counts every block for
//! its memory limits, which nothing here uses: in a comparator-heavy script (the qsort row of
//! the bench) that accounting was ~140 instructions a comparison, ~6% of it.

use std::mem::ManuallyDrop;
use std::ops::Deref;

use mlua::{ffi, Lua};

/// A Lua state made by `luaL_newstate`, with the base library open, closed when dropped.
/// Derefs to the [`Lua`] that mlua keeps for it.
pub struct HostState {
    /// mlua's handle; dropped before the state is closed.
    lua: ManuallyDrop<Lua>,
    /// The main thread, closed by `Drop`.
    raw: *mut ffi::lua_State,
}

/// Why a [`HostState`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStateError {
    /// `luaL_newstate` returned null: the first allocations failed.
    OutOfMemory,
}

impl std::fmt::Display for HostStateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostStateError::OutOfMemory => f.write_str("cannot create state: not enough memory"),
        }
    }
}

impl std::error::Error for HostStateError {}

impl HostState {
    /// A new state with only the base library open (as mlua's constructors leave one before
    /// they load the libraries asked for); load the rest with [`Lua::load_std_libs`].
    pub fn new() -> Result<HostState, HostStateError> {
        // SAFETY: luaL_newstate has no preconditions; it returns null only when it can't
        // allocate.
        let raw = unsafe { ffi::luaL_newstate() };
        if raw.is_null() {
            return Err(HostStateError::OutOfMemory);
        }
        // SAFETY: `raw` is a new, open state with an empty stack; luaL_requiref runs
        // luaopen_base unprotected, which can fail only on allocation (Lua's panic function
        // then aborts, as lua.c's would before its first pcall), and leaves one value that
        // lua_pop removes. get_or_init_from_ptr stores mlua's data in the state's registry
        // and the `Lua` it returns lives until `lua_close` (in `Drop`, after our handle).
        let lua = unsafe {
            ffi::luaL_requiref(raw, c"_G".as_ptr(), ffi::luaopen_base, 1);
            ffi::lua_pop(raw, 1);
            Lua::get_or_init_from_ptr(raw).clone()
        };
        Ok(HostState { lua: ManuallyDrop::new(lua), raw })
    }
}

impl Deref for HostState {
    type Target = Lua;

    fn deref(&self) -> &Lua {
        &self.lua
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        // SAFETY: `lua` is dropped once, here, and not used after; then the state is closed
        // once: `raw` came from luaL_newstate, and mlua, which does not own a state it was
        // given, frees its registry data from the state's own finalisers during the close.
        unsafe {
            ManuallyDrop::drop(&mut self.lua);
            ffi::lua_close(self.raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_lua_and_the_ffi_module_then_closes() {
        let lua = HostState::new().unwrap();
        lua.load_std_libs(mlua::StdLib::ALL_SAFE).unwrap();
        let ffi_mod = crate::surface::module::open(&lua).unwrap();
        lua.globals().set("ffi", ffi_mod).unwrap();
        let n: i64 = lua
            .load(
                "ffi.cdef 'int abs(int)'
                 local t = {}
                 for i = 1, 1000 do t[i] = ffi.new('double[4]', i) end
                 collectgarbage()
                 return ffi.C.abs(-41) + #t - 1000 + string.len('x')",
            )
            .eval()
            .unwrap();
        assert_eq!(n, 42);
    }

    #[test]
    fn a_script_error_is_an_error_not_an_abort() {
        let lua = HostState::new().unwrap();
        let err = lua.load("error('boom')").exec().unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
