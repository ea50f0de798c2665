//! The `ffi` module for standard Lua: ctype registry, cdata, namespaces, helpers, the
//! executable-code arena and callbacks. Holds no ABI rules and no assembly.
//!
//! # Build shapes
//!
//! The same crate builds two ways (features in `Cargo.toml`):
//!
//! * **embedded** (default features `lua54` + `vendored`): Lua 5.4 is compiled in, and the
//!   `luaffi` command (`src/bin/luaffi.rs`) runs scripts with `ffi` preloaded. The tests use
//!   this shape. Another version can be embedded for testing, e.g.
//!   `--no-default-features --features lua51,vendored`.
//! * **module** (`--no-default-features --features module,lua5X`): the cdylib exports
//!   `luaopen_ffi` and links no Lua; the system's `lua5.X` provides the C API when it loads
//!   the library (named `ffi.so` on `package.cpath`).
//!
//! # Layout
//!
//! * [`module`]: the `ffi` table; [`module::open`] calls one `register_*` function per area.
//! * [`arena`]: executable memory for generated stubs and thunks (W^X, pooled pages).
//! * The C type system: [`state`] (per-Lua-state FFI state), [`ctype`] (type shapes,
//!   descriptors, LuaJIT's type spelling), [`cdata`] (the userdata representation),
//!   [`convert`] (Lua <-> C conversions), [`int64`] (64-bit and pointer arithmetic),
//!   [`meta`] (the cdata metatable), [`api`] (`ffi.new`, `ffi.cast`, ...), [`helpers`] (the
//!   conversion helpers generated stubs call).
//! * Native calls: [`call`] (calling function cdata through per-signature stubs), [`clib`]
//!   (`ffi.C`, `ffi.load`), [`callback`] (Lua functions as C function pointers),
//!   [`vm_check`] (the Lua stack layout stubs use inline, checked against the running Lua).

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(all(feature = "module", feature = "vendored"))]
compile_error!(
    "features `module` and `vendored` exclude each other: a module uses the host's Lua; \
     build it with --no-default-features --features module,lua5X"
);

pub mod api;
pub mod arena;
pub mod call;
pub mod callback;
pub mod cdata;
pub mod clib;
pub mod convert;
pub mod ctype;
pub mod helpers;
pub mod int64;
pub mod meta;
pub mod module;
pub mod state;
pub mod vm_check;

/// The body of `luaopen_ffi`, the entry point `require "ffi"` looks for in `ffi.so`: returns
/// the table built by [`module::open`]. The `lua_module` attribute generates the exported
/// `extern "C-unwind" fn luaopen_ffi(lua_State*) -> c_int` around it (named by `name`).
#[cfg(feature = "module")]
#[mlua::lua_module(name = "ffi")]
fn open_module(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    module::open(lua)
}
