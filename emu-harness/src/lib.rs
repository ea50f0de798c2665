//! Runs abi-model plans, backend stubs and callback thunks under an x86 emulator against
//! fixtures built by gcc and mingw. A test tool: never linked into what ships (GPL-2.0, through
//! unicorn).
//!
//! The emulator:
//! - [`engine`]: the [`Cpu`] trait, everything the harness needs from an emulator (memory,
//!   registers, the x87 stack, running until a [`StopSet`] address is reached), with no
//!   engine named, so another engine can host the harness where unicorn cannot run.
//! - [`unicorn_cpu`]: [`UnicornCpu`], the trait on unicorn, with the emulator's quirks
//!   (x87 reset state, SSE alignment, threads) documented there.
//! - [`image`]: [`Image`], a fixture (ELF32/ELF64 executable, PE32/PE64 executable or DLL)
//!   parsed with goblin and mapped into a [`Cpu`] at its link address.
//!
//! What runs on it:
//! - [`catalogue`]: the signatures and records under test, from one seed; [`cgen`] prints
//!   them as the fixtures' C sources.
//! - [`plan_runner`]: abi-model's call plans against the compiled callers and callees;
//!   [`stub_runner`]: the backends' stubs and thunks, with the Lua helpers mocked.
//! - [`layout_check`]: abi-model's layouts against the compilers' layout tables.
//! - `matrix` (feature `emulator`) runs every case of a target in parallel; [`report`] prints
//!   and saves the rows.
//! - [`listing`]: the one disassembly format of generated code, which `cargo xtask disasm`
//!   and every backend's snapshots print (no emulator needed).
//!
//! A call by hand, as the runners make them: `add3(1, 2, 3)` from the committed x86-64 System V
//! test fixture, returning to a stop address.
//! ```
//! use emu_harness::{Cpu, Gpr, Image, Perms, Stop, StopSet, UnicornCpu};
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixture.elf64");
//! let image = Image::parse(&std::fs::read(path).unwrap()).unwrap();
//! let mut cpu = UnicornCpu::new(image.mode).unwrap();
//! image.load_into(&mut cpu).unwrap();
//! cpu.map(0x10_0000, 0x1_0000, Perms::RW).unwrap(); // a stack
//!
//! let ret = 0x7000_0000; // a stop needs no memory behind it
//! let stops = StopSet::new([ret]);
//! cpu.set_gpr(Gpr::Rdi, 1);
//! cpu.set_gpr(Gpr::Rsi, 2);
//! cpu.set_gpr(Gpr::Rdx, 3);
//! cpu.set_gpr(Gpr::Rsp, 0x11_0000); // 16-aligned before the call
//! cpu.push(ret).unwrap();
//! let add3 = image.symbol("add3").unwrap();
//! assert_eq!(cpu.run(add3, &stops, 1_000), Ok(Stop::Reached(ret)));
//! assert_eq!(cpu.gpr(Gpr::Rax), 6);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalogue;
pub mod cgen;
pub mod engine;
pub mod image;
pub mod layout_check;
pub mod listing;
#[cfg(feature = "emulator")]
pub mod matrix;
pub mod plan_runner;
pub mod report;
pub mod stub_runner;
#[cfg(feature = "emulator")]
pub mod unicorn_cpu;
pub mod unwind_check;

pub use engine::{Access, Cpu, EngineError, FaultKind, Gpr, Mode, Perms, Stop, StopSet, PAGE_SIZE};
pub use image::{Format, Image, ImageError, Segment};
#[cfg(feature = "emulator")]
pub use unicorn_cpu::UnicornCpu;
