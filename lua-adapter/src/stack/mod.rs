//! Layer 1, the Lua stack: what the other layers know about the running Lua's stack.
//!
//! * [`vm_check`]: the Lua stack layout stubs use inline, checked against the running Lua.
//!
//! Imports nothing from the crate.

pub mod vm_check;
