//! The lowest layer: what the operating system and the C library provide, knowing nothing of
//! Lua or C types: executable memory with W^X ([`arena`]), the dynamic loader ([`dylib`]),
//! the calling thread's `errno` ([`errno`]), reads of memory that may not be mapped
//! ([`peek`]), the unwinder's knowledge of generated code ([`unwind`]), and values kept at
//! fixed addresses many to an allocation ([`chunks`]). The
//! layers above report their errors as they are (an [`arena::ArenaError`] reaches a Lua
//! error message unchanged).

pub mod arena;
pub mod chunks;
pub mod dylib;
pub mod errno;
pub mod peek;
pub mod unwind;
