//! Runs abi-model plans, backend stubs and callback thunks under an x86 emulator against
//! fixtures built by gcc and mingw. A test tool: never linked into what ships (GPL-2.0, through
//! unicorn).
//!
//! The foundation, in three modules:
//! - [`engine`]: the [`Cpu`] trait, everything the harness needs from an emulator (memory,
//!   registers, the x87 stack, running until a [`StopSet`] address is reached), with no
//!   engine named, so the harness can later be hosted where unicorn cannot run.
//! - [`unicorn_cpu`]: [`UnicornCpu`], the trait on unicorn, with the emulator's quirks
//!   (x87 reset state, SSE alignment, threads) documented there.
//! - [`image`]: [`Image`], a fixture (ELF32/ELF64 executable, PE32/PE64 executable or DLL)
//!   parsed with goblin and mapped into a [`Cpu`] at its link address.
#![warn(missing_docs)]

pub mod engine;
pub mod image;
pub mod unicorn_cpu;

pub use engine::{Access, Cpu, EngineError, FaultKind, Gpr, Mode, Perms, Stop, StopSet, PAGE_SIZE};

pub use image::{Format, Image, ImageError, Segment};
pub use unicorn_cpu::UnicornCpu;
