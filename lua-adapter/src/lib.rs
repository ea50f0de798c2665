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
//! # Layers
//!
//! Each layer is a module tree that imports only from the layers below it, so a module's
//! place says what it may rely on (`tests/layers.rs` checks this, and that no two modules
//! import each other in a circle):
//!
//! 0. [`os`]: what the OS and the C library give: executable memory ([`os::arena`]) and
//!    `errno` ([`os::errno`]).
//! 1. [`stack`]: the running Lua's stack and its layout ([`stack::vm_check`]).
//! 2. [`ctypes`]: C types: shapes and spelling ([`ctypes::ctype`]), the per-Lua-state type
//!    table and descriptors ([`ctypes::state`]).
//! 3. [`cdata`]: the userdata representation of C data.
//! 4. [`convert`]: Lua <-> C conversions.
//! 5. [`native`]: calls through stubs, callbacks, the helpers stubs call.
//! 6. [`surface`]: the `ffi` table ([`surface::module::open`]), its functions, the cdata
//!    metatable, `ffi.C`/`ffi.load`, 64-bit arithmetic.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(all(feature = "module", feature = "vendored"))]
compile_error!(
    "features `module` and `vendored` exclude each other: a module uses the host's Lua; \
     build it with --no-default-features --features module,lua5X"
);

pub mod os;

pub mod stack;

pub mod ctypes;

pub mod cdata;

pub mod convert;

pub mod native;

pub mod surface;

/// The body of `luaopen_ffi`, the entry point `require "ffi"` looks for in `ffi.so`: returns
/// the table built by [`surface::module::open`]. The `lua_module` attribute generates the exported
/// `extern "C-unwind" fn luaopen_ffi(lua_State*) -> c_int` around it (named by `name`).
#[cfg(feature = "module")]
#[mlua::lua_module(name = "ffi")]
fn open_module(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    surface::module::open(lua)
}
