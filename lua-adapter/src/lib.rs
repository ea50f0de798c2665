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
//!
//! # Safety invariants
//!
//! Most of the crate is `unsafe` code over the Lua C API. The invariants its `// SAFETY:`
//! comments rely on again and again are stated once here and cited by name:
//!
//! * **valid-L**: `l` is an open `lua_State`, the thread running the current C function (or,
//!   called from Rust, a thread of a Lua state the caller has open and runs), with the free
//!   stack slots the function's doc asks for and never fewer than a C function starts with
//!   (`LUA_MINSTACK`, 20); a function that pushes more calls `lua_checkstack` first. Index
//!   arguments are acceptable indices of that stack.
//! * **live-state**: `st: *mut FfiState` is the FFI state of `l`'s Lua state (found with
//!   `ctypes::state::from_registry`, `ctypes::state::from_upvalue` or a descriptor's `state`
//!   field), the first field of the boxed `native::state::State`. The box is kept until the
//!   next state this thread closes (see `native`), so it outlives every call made in that Lua
//!   state, and only that state's thread touches it.
//! * **live-desc**: a `*const CTypeDesc` is boxed in its state's descriptor table, at a stable
//!   address, read-only after creation and freed with the state: it lives as long as
//!   **live-state**.
//! * **live-cdata**: a `cdata::Cdata` from `cdata::to_cdata` or `cdata::push_value` names a
//!   cdata userdata that is on the Lua stack (or anchored by one that is), so it is not
//!   collected while used; its `bytes` address `byte_len` bytes of the C object (for a
//!   pointer cdata of unknown length, the bytes the program vouches for, as in C).
//! * **raise-clean**: a call that can raise a Lua error (`lua_error`, `luaL_argerror`, a
//!   conversion helper, an API call that allocates or runs a metamethod) jumps over the Rust
//!   frames between it and the protected call. When it runs, none of those frames holds a value
//!   that owns memory (`String`, `Vec`, `Box`): messages are moved onto the Lua stack and
//!   dropped first (`cdata::raise`, `convert::raise_conv`).
//! * **cfunction**: a function Lua calls as a `lua_CFunction` (registered with
//!   `lua_pushcclosure` or mlua's `create_c_function`, or a generated stub's helper) gets a
//!   **valid-L** with its arguments at `1..=lua_gettop(l)` and the upvalues it was created
//!   with.

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
