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
//!   `state::from_registry`, `state::from_upvalue` or a descriptor's `state` field). Its box is
//!   freed only by the state userdata's `__gc` after every object of the Lua state is
//!   unreachable, so it outlives every call made in that Lua state, and only that state's
//!   thread touches it.
//! * **live-desc**: a `*const CTypeDesc` is boxed in its state's descriptor table, at a stable
//!   address, read-only after creation and freed with the state: it lives as long as
//!   **live-state**.
//! * **live-cdata**: a `*mut Cdata` from `cdata::to_cdata` or `cdata::push_value` points to
//!   the header at the start of a cdata userdata that is on the Lua stack (or anchored by one
//!   that is), so it is not collected while used; its `ptr` addresses `len` bytes of the C
//!   object (for a pointer cdata of unknown length, the bytes the program vouches for, as in
//!   C).
//! * **raise-clean**: a call that can raise a Lua error (`lua_error`, `luaL_argerror`, a
//!   conversion helper, an API call that allocates or runs a metamethod) jumps over the Rust
//!   frames between it and the protected call. When it runs, none of those frames holds a value
//!   that owns memory (`String`, `Vec`, `Box`): messages are moved onto the Lua stack and
//!   dropped first (`cdata::raise`, `convert::raise_conv`).
//! * **cfunction**: a function Lua calls as a `lua_CFunction` (registered with
//!   `lua_pushcclosure` or mlua's `create_c_function`, or a generated stub's helper) gets a
//!   **valid-L** with its arguments at `1..=lua_gettop(l)` and the upvalues it was created
//!   with.
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
