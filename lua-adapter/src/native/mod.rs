//! Layer 5, native code: executable memory, calls into C through generated stubs, callbacks
//! into Lua through generated thunks, and the helpers stubs call. Imports only from the
//! layers below (`stack`, `ctypes`, `cdata`, `convert`).
//!
//! * [`arena`]: executable memory for stubs and thunks (W^X, pooled pages).
//! * [`call`]: calling function cdata through per-signature stubs.
//! * [`callback`]: Lua functions as C function pointers.
//! * [`helpers`]: the conversion helpers generated stubs and thunks call.

pub mod arena;
pub mod call;
pub mod callback;
pub mod helpers;
