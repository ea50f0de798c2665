//! Layer 6, the module surface: the `ffi` table and the cdata metatable, what Lua code sees.
//! Imports from every layer below.
//!
//! * [`module`]: the `ffi` table; [`module::open`] calls one `register_*` function per area.
//! * [`api`]: `ffi.new`, `ffi.cast`, `ffi.typeof`, ...
//! * [`meta`]: the cdata metatable.
//! * [`fast`]: its inline paths (numeric members, calls through built stubs).
//! * [`clib`]: `ffi.C` and `ffi.load`.
//! * [`object`]: creating cdata objects (`ffi.new`, calling a ctype), metatype lookup.
//! * [`bit`]: LuaJIT's `bit` module, for `require "bit"` where none is installed.
//! * [`extras`]: cffi-lua's and luaffi's extensions (`ffi.NULL`, `ffi.addressof`, ...).
//! * [`int64`]: 64-bit integer and pointer arithmetic.
//! * [`host`]: the embedded shape's Lua state, made by `luaL_newstate` as `lua.c` makes one.

pub mod api;
pub mod bit;
pub mod clib;
pub mod extras;
pub mod fast;
#[cfg(not(feature = "module"))]
pub mod host;
pub mod int64;
pub mod meta;
pub mod module;
pub mod object;
