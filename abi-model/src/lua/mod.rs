//! luaffi's stub language: what the Lua FFI built on this crate runs, as data.
//!
//! Everything outside this module is the C ABI and names no Lua concept. This module is the
//! other half: the language in which luaffi describes a call stub (a `lua_CFunction` that
//! converts Lua values, calls C and pushes the result) and a callback thunk (a C function that
//! enters Lua), and the Lua facts those programs need. It is behind the `lua` cargo feature
//! (on by default); a user who only wants call plans and layouts builds with
//! `default-features = false` and gets none of it.
//!
//! - [`steps`]: [`Program`](steps::Program) and [`Step`](steps::Step), built from a
//!   [`CallPlan`](crate::CallPlan) or a [`CallbackFrame`](crate::CallbackFrame); the only thing
//!   a backend lowers.
//! - [`helpers`]: the helper table, every C function a program may call, with its signature
//!   (planned by the same model as user calls).
//! - [`vm`]: where Lua 5.1–5.5 keep the stack and value tags a stub reads inline.
//! - [`entry`]: how Lua calls a stub (a `lua_CFunction`'s plan, where `L` arrives).
//! - [`backend`]: the [`Backend`] trait code generators implement, and the addresses
//!   ([`CodeEnv`], [`CallSlots`]) an embedding hands them.
//! - `curated` (hidden, test support): the signatures every backend's listings show.
// On docs.rs (`--cfg docsrs`, lib.rs): marked as needing the `lua` feature.
#![cfg_attr(docsrs, doc(cfg(feature = "lua")))]

pub mod backend;
#[doc(hidden)]
pub mod curated;
pub mod entry;
pub mod helpers;
pub mod steps;
pub mod vm;

pub use backend::{Backend, BackendError, CallSlots, Code, CodeEnv, Invalid, ProgramKind};
pub use entry::{lua_cfunction_plan, lua_state_at_entry};

/// The examples of the crate's `README.md`, run as doctests. They live here because the
/// README shows this module too; the C ABI examples need no more than the rest of the crate.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
