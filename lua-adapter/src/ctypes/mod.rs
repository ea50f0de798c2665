//! Layer 2, C types: the per-Lua-state type table and descriptors. Imports only from
//! [`crate::stack`].
//!
//! * [`ctype`]: type shapes, alignment, LuaJIT's type spelling (pure: no Lua).
//! * [`state`]: the per-Lua-state FFI state that owns the type table and the descriptors.

pub mod ctype;
pub mod state;
