//! The CPU the harness drives, as a small engine-independent trait.
//!
//! Everything the harness needs from an x86 emulator goes through [`Cpu`]: map memory, read
//! and write it, set and read registers (general purpose, XMM, the x87 stack as a caller or
//! callee sees it), and [`Cpu::run`] until execution arrives at one of a [`StopSet`]'s
//! addresses. Nothing here names unicorn, so another engine can host the harness (for
//! example one that runs under WASM, where unicorn's C code cannot).
//!
//! # Stops as hooks at an address
//! The harness mocks helpers and fake callees as *stop addresses*: it runs until one is
//! reached, handles the call in Rust (reads the arguments, writes the results), emulates the
//! callee's `ret`/`ret n` with [`Cpu::emulate_ret`], and resumes with [`Cpu::run`] from the
//! return address. A [`StopSet`] may hold thousands of addresses; engines look them up by
//! page range plus membership, never with one hook per address.
//!
//! # Reuse
//! One engine instance serves many short calls. [`Cpu::reset_registers`] is cheap and puts
//! every register back to the state described there; memory is never reset, so images,
//! stacks and hook pages stay mapped and keep their contents between calls.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// The size of a page: [`Cpu::map`] works in whole pages.
pub const PAGE_SIZE: u64 = 0x1000;

/// The processor mode code runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 32-bit protected mode with flat segments (i386 Linux and Win32 code).
    X86_32,
    /// 64-bit long mode (x86-64 System V and Windows code).
    X86_64,
}

impl Mode {
    /// Bytes in a machine word, a pushed value and a return address: 4 or 8.
    pub const fn word_size(self) -> u64 {
        match self {
            Mode::X86_32 => 4,
            Mode::X86_64 => 8,
        }
    }

    /// Number of XMM registers the mode has: 8 in 32-bit mode, 16 in 64-bit mode.
    pub const fn xmm_count(self) -> usize {
        match self {
            Mode::X86_32 => 8,
            Mode::X86_64 => 16,
        }
    }

    /// Truncates `value` to the mode's word (the low 32 bits in 32-bit mode).
    pub const fn truncate(self, value: u64) -> u64 {
        match self {
            Mode::X86_32 => value & 0xFFFF_FFFF,
            Mode::X86_64 => value,
        }
    }
}

/// Access rights of mapped memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Perms {
    /// Data reads are allowed.
    pub read: bool,
    /// Data writes are allowed.
    pub write: bool,
    /// Instruction fetches are allowed.
    pub exec: bool,
}

impl Perms {
    /// Read only (constants, headers).
    pub const R: Perms = Perms { read: true, write: false, exec: false };
    /// Read and write (data, bss, stacks).
    pub const RW: Perms = Perms { read: true, write: true, exec: false };
    /// Read and execute (code).
    pub const RX: Perms = Perms { read: true, write: false, exec: true };
    /// Everything (scratch pages, pages shared by code and data).
    pub const RWX: Perms = Perms { read: true, write: true, exec: true };

    /// The rights of both: what a page shared by two differently protected regions needs.
    pub const fn union(self, other: Perms) -> Perms {
        Perms { read: self.read || other.read, write: self.write || other.write, exec: self.exec || other.exec }
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(f, "{}{}{}", flag(self.read, 'r'), flag(self.write, 'w'), flag(self.exec, 'x'))
    }
}

/// A general-purpose register, the instruction pointer or the flags.
///
/// One enum serves both modes: in 32-bit mode `Rax` is `eax`, `Rip` is `eip`, `Rflags` is
/// `eflags`, values written are truncated to 32 bits and values read are zero-extended.
/// `R8`..`R15` exist only in 64-bit mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants are the registers they name
pub enum Gpr {
    Rax,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    Rip,
    Rflags,
}

impl Gpr {
    /// Every register, in encoding order, then `Rip` and `Rflags`.
    pub const ALL: [Gpr; 18] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
        Gpr::Rip,
        Gpr::Rflags,
    ];

    /// Whether the register exists in `mode` (`r8`..`r15` do not in 32-bit mode).
    pub const fn exists_in(self, mode: Mode) -> bool {
        !matches!(
            (mode, self),
            (Mode::X86_32, Gpr::R8 | Gpr::R9 | Gpr::R10 | Gpr::R11 | Gpr::R12 | Gpr::R13 | Gpr::R14 | Gpr::R15)
        )
    }

    /// The register's assembly name in `mode` (`eax` or `rax`).
    pub const fn name(self, mode: Mode) -> &'static str {
        // Indexed by the variant's position, which is its order in `Gpr::ALL`.
        const WIDE: [&str; 18] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15", "rip", "rflags",
        ];
        const NARROW: [&str; 18] = [
            "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15", "eip", "eflags",
        ];
        match mode {
            Mode::X86_32 => NARROW[self as usize],
            Mode::X86_64 => WIDE[self as usize],
        }
    }
}

/// A set of stop addresses for [`Cpu::run`], built once and shared cheaply.
///
/// Cloning shares the set (an `Arc`), so an engine can tell in O(1) whether the set it gets
/// is the one it already installed ([`StopSet::same_as`]) and only then pays for installing
/// it. Build one set per engine (or one for all engines) and pass it to every `run`.
#[derive(Clone)]
pub struct StopSet {
    inner: Arc<StopSetInner>,
}

struct StopSetInner {
    /// Sorted, without duplicates: membership is a binary search.
    addrs: Vec<u64>,
    /// Inclusive `(first, last)` byte ranges of whole pages covering every address, adjacent
    /// pages merged. Inclusive so the last page of the address space needs no overflow.
    page_ranges: Vec<(u64, u64)>,
}

impl StopSet {
    /// A set holding `addrs` (duplicates are ignored).
    pub fn new(addrs: impl IntoIterator<Item = u64>) -> StopSet {
        let addrs: Vec<u64> = addrs.into_iter().collect::<BTreeSet<u64>>().into_iter().collect();
        let mut page_ranges: Vec<(u64, u64)> = Vec::new();
        for &addr in &addrs {
            let first = addr & !(PAGE_SIZE - 1);
            let last = first + (PAGE_SIZE - 1);
            match page_ranges.last_mut() {
                // Addresses are sorted, so a page is either the current range's last page,
                // the page right after it, or further away.
                Some(range) if range.1.checked_add(1).is_none_or(|next| next >= first) => {
                    range.1 = range.1.max(last);
                }
                _ => page_ranges.push((first, last)),
            }
        }
        StopSet { inner: Arc::new(StopSetInner { addrs, page_ranges }) }
    }

    /// The empty set: `run` then ends only by an error.
    pub fn empty() -> StopSet {
        StopSet::new(std::iter::empty())
    }

    /// Whether `addr` is a stop.
    pub fn contains(&self, addr: u64) -> bool {
        self.inner.addrs.binary_search(&addr).is_ok()
    }

    /// The stops, sorted.
    pub fn addrs(&self) -> &[u64] {
        &self.inner.addrs
    }

    /// Inclusive `(first, last)` byte ranges of the pages holding stops, sorted, adjacent
    /// pages merged: what an engine hooks.
    pub fn page_ranges(&self) -> &[(u64, u64)] {
        &self.inner.page_ranges
    }

    /// Number of stops.
    pub fn len(&self) -> usize {
        self.inner.addrs.len()
    }

    /// Whether there are no stops.
    pub fn is_empty(&self) -> bool {
        self.inner.addrs.is_empty()
    }

    /// Whether `self` and `other` are clones of one set (identity, not equal contents).
    pub fn same_as(&self, other: &StopSet) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl FromIterator<u64> for StopSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> StopSet {
        StopSet::new(iter)
    }
}

impl fmt::Debug for StopSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSet").field("len", &self.len()).field("page_ranges", &self.inner.page_ranges).finish()
    }
}

/// How [`Cpu::run`] ended when it ended well.
///
/// Every other way execution can end is an [`EngineError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Execution arrived at this stop address; the instruction there (if any) has not run
    /// and the instruction pointer holds the address.
    Reached(u64),
}

/// The kind of a guest memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// Why a guest memory access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Nothing is mapped there.
    Unmapped,
    /// The page is mapped without the needed right ([`Perms`]).
    Protected,
}

/// Everything that can go wrong driving a [`Cpu`].
///
/// The first five variants are the ways guest execution in [`Cpu::run`] can fail; `pc` is the
/// instruction pointer afterwards (for faults, the faulting instruction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// A guest access to memory that is unmapped or lacks the right.
    MemoryFault {
        /// Read, write or fetch.
        access: Access,
        /// Unmapped or protected.
        kind: FaultKind,
        /// The first byte of the access.
        address: u64,
        /// Bytes accessed.
        size: usize,
        /// The instruction pointer after the fault.
        pc: u64,
    },
    /// The bytes at `pc` are not an instruction the engine implements (`ud2`, garbage).
    InvalidInstruction {
        /// Address of the instruction.
        pc: u64,
    },
    /// A CPU exception or software interrupt: 0 divide error, 3 `int3`, 13 general
    /// protection, ... For faults `pc` is the faulting instruction, for `int n` the next one.
    Exception {
        /// The interrupt vector.
        vector: u32,
        /// The instruction pointer afterwards.
        pc: u64,
    },
    /// More basic blocks ran than the budget given to [`Cpu::run`] (a runaway guest).
    BudgetExhausted {
        /// The block budget that ran out.
        max_blocks: u64,
        /// Where execution was.
        pc: u64,
    },
    /// The guest executed `hlt`.
    Halted {
        /// The instruction pointer after the `hlt`.
        pc: u64,
    },
    /// A host-side [`Cpu::read`] or [`Cpu::write`] touched memory that is not mapped.
    Unmapped {
        /// The first byte of the access.
        address: u64,
        /// Bytes accessed.
        len: usize,
    },
    /// [`Cpu::map`] refused a region.
    BadMap {
        /// Start of the region.
        address: u64,
        /// Size of the region.
        size: u64,
        /// Why, in a few words.
        reason: String,
    },
    /// [`Cpu::x87_pop`] found the x87 stack empty (nothing was returned in `st0`).
    X87StackEmpty,
    /// [`Cpu::x87_push`] found all eight x87 registers in use.
    X87StackFull,
    /// The engine itself failed in a way the variants above don't describe.
    Backend(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::MemoryFault { access, kind, address, size, pc } => {
                let what = match access {
                    Access::Read => "read of",
                    Access::Write => "write of",
                    Access::Fetch => "instruction fetch of",
                };
                let why = match kind {
                    FaultKind::Unmapped => "unmapped",
                    FaultKind::Protected => "protected",
                };
                write!(f, "{what} {size} bytes at {address:#x} ({why}) at pc {pc:#x}")
            }
            EngineError::InvalidInstruction { pc } => write!(f, "invalid instruction at {pc:#x}"),
            EngineError::Exception { vector, pc } => {
                write!(f, "cpu exception {vector} (pc {pc:#x} afterwards)")
            }
            EngineError::BudgetExhausted { max_blocks, pc } => {
                write!(f, "ran more than {max_blocks} basic blocks without reaching a stop (pc {pc:#x})")
            }
            EngineError::Halted { pc } => write!(f, "hlt executed (pc {pc:#x} afterwards)"),
            EngineError::Unmapped { address, len } => {
                write!(f, "host access of {len} bytes at {address:#x} touches unmapped memory")
            }
            EngineError::BadMap { address, size, reason } => {
                write!(f, "cannot map {size:#x} bytes at {address:#x}: {reason}")
            }
            EngineError::X87StackEmpty => write!(f, "x87 stack is empty (nothing in st0)"),
            EngineError::X87StackFull => write!(f, "x87 stack is full (8 values)"),
            EngineError::Backend(msg) => write!(f, "emulator error: {msg}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// An x86 CPU with memory, as the harness uses it.
///
/// Required methods are the engine's whole surface; the provided ones are built on them.
/// The trait is object safe: the harness holds a `&mut dyn Cpu`.
pub trait Cpu {
    /// The mode the CPU runs in, fixed at creation.
    fn mode(&self) -> Mode;

    /// Maps `size` bytes at `address`, zero-filled, with `perms`.
    ///
    /// Both must be multiples of [`PAGE_SIZE`], `size` non-zero; the region must not overlap
    /// anything already mapped and, in 32-bit mode, must lie below 4 GiB.
    fn map(&mut self, address: u64, size: u64, perms: Perms) -> Result<(), EngineError>;

    /// Writes `bytes` at `address`, ignoring page rights (this is the host loading memory).
    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), EngineError>;

    /// Reads `buf.len()` bytes at `address`, ignoring page rights.
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), EngineError>;

    /// Writes code at `address`: like [`Cpu::write`], and any translation the engine cached
    /// for those bytes is dropped, so the next run executes the new code (a stub written
    /// where an earlier one ran must not run the old one).
    fn write_code(&mut self, address: u64, bytes: &[u8]) -> Result<(), EngineError> {
        self.write(address, bytes)
    }

    /// Sets a register; in 32-bit mode the value is truncated to 32 bits.
    ///
    /// # Panics
    /// If the register does not exist in the mode (`r8`..`r15` in 32-bit mode): that is a bug
    /// in the caller, not a property of the code under test.
    fn set_gpr(&mut self, reg: Gpr, value: u64);

    /// Reads a register (zero-extended in 32-bit mode).
    ///
    /// # Panics
    /// As [`Cpu::set_gpr`].
    fn gpr(&self, reg: Gpr) -> u64;

    /// Sets all 128 bits of `xmm<index>`.
    ///
    /// # Panics
    /// If `index` is not below [`Mode::xmm_count`].
    fn set_xmm(&mut self, index: usize, value: u128);

    /// Reads all 128 bits of `xmm<index>`.
    ///
    /// # Panics
    /// As [`Cpu::set_xmm`].
    fn xmm(&self, index: usize) -> u128;

    /// Pushes `value` onto the x87 stack, as a callee returning a `float`/`double` in `st0`
    /// does (`fld qword`): it becomes `st0` and the depth grows by one.
    fn x87_push(&mut self, value: f64) -> Result<(), EngineError>;

    /// Pops `st0` as a double, as a caller reading a `float`/`double` result does
    /// (`fstp qword`, rounding to double under the current x87 control word).
    fn x87_pop(&mut self) -> Result<f64, EngineError>;

    /// Number of values on the x87 stack (0..=8): after a call it must be 0, or 1 for a
    /// `float`/`double` returned in `st0`.
    fn x87_depth(&self) -> usize;

    /// Sets the x87 control word (precision, rounding, exception masks).
    fn set_x87_control_word(&mut self, cw: u16);

    /// Reads the x87 control word.
    fn x87_control_word(&self) -> u16;

    /// Puts every register back to its initial state, cheaply; memory is untouched.
    ///
    /// The initial state is what a freshly started thread sees: general registers, `rip`
    /// and XMM registers zero, `rflags` = 0x2 (direction flag clear), x87 as after `fninit`
    /// with the control word 0x037F (64-bit precision, round to nearest, exceptions masked)
    /// and an empty stack, MXCSR = 0x1F80 (exceptions masked, round to nearest).
    fn reset_registers(&mut self);

    /// Runs from `start` until execution arrives at an address of `stops`.
    ///
    /// The instruction at `start` always runs, even when `start` is itself a stop (so the
    /// harness can resume from a breakpoint); arriving at any stop afterwards ends the run
    /// with [`Stop::Reached`] before that instruction runs. Stops need not be mapped or
    /// executable: arriving at one stops before anything is fetched there.
    ///
    /// `max_blocks` bounds the basic blocks executed (a block is a straight run of
    /// instructions ending at a jump, call, return or the engine's block size limit; every
    /// loop iteration and every call is at least one), so a runaway guest ends with
    /// [`EngineError::BudgetExhausted`] instead of hanging. Everything else that ends the run
    /// is an error too: memory faults, invalid instructions, CPU exceptions, `hlt`.
    fn run(&mut self, start: u64, stops: &StopSet, max_blocks: u64) -> Result<Stop, EngineError>;

    /// Reads a little-endian `u32`.
    fn read_u32(&self, address: u64) -> Result<u32, EngineError> {
        let mut buf = [0; 4];
        self.read(address, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    /// Reads a little-endian `u64`.
    fn read_u64(&self, address: u64) -> Result<u64, EngineError> {
        let mut buf = [0; 8];
        self.read(address, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Writes a little-endian `u32`.
    fn write_u32(&mut self, address: u64, value: u32) -> Result<(), EngineError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    fn write_u64(&mut self, address: u64, value: u64) -> Result<(), EngineError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Reads a machine word (4 or 8 bytes, [`Mode::word_size`]).
    fn read_word(&self, address: u64) -> Result<u64, EngineError> {
        match self.mode() {
            Mode::X86_32 => self.read_u32(address).map(u64::from),
            Mode::X86_64 => self.read_u64(address),
        }
    }

    /// Writes a machine word, truncated to the mode's width.
    fn write_word(&mut self, address: u64, value: u64) -> Result<(), EngineError> {
        match self.mode() {
            // Truncation is the rule here: a 32-bit word is the low half.
            Mode::X86_32 => self.write_u32(address, value as u32),
            Mode::X86_64 => self.write_u64(address, value),
        }
    }

    /// Pushes a machine word, as `push` does: the stack pointer drops by a word first.
    fn push(&mut self, value: u64) -> Result<(), EngineError> {
        let mode = self.mode();
        let sp = mode.truncate(self.gpr(Gpr::Rsp).wrapping_sub(mode.word_size()));
        self.write_word(sp, value)?;
        self.set_gpr(Gpr::Rsp, sp);
        Ok(())
    }

    /// Pops a machine word, as `pop` does.
    fn pop(&mut self) -> Result<u64, EngineError> {
        let mode = self.mode();
        let sp = self.gpr(Gpr::Rsp);
        let value = self.read_word(sp)?;
        self.set_gpr(Gpr::Rsp, mode.truncate(sp.wrapping_add(mode.word_size())));
        Ok(value)
    }

    /// Does what a callee's `ret callee_pops` does: pops the return address, drops
    /// `callee_pops` more bytes (stdcall/fastcall/thiscall arguments, or 0), and sets the
    /// instruction pointer. Returns the return address, where the harness resumes `run`.
    fn emulate_ret(&mut self, callee_pops: u64) -> Result<u64, EngineError> {
        let mode = self.mode();
        let ret = self.pop()?;
        let sp = self.gpr(Gpr::Rsp);
        self.set_gpr(Gpr::Rsp, mode.truncate(sp.wrapping_add(callee_pops)));
        self.set_gpr(Gpr::Rip, ret);
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_set_merges_adjacent_pages_and_dedups() {
        let set = StopSet::new([0x5008, 0x1000, 0x1FFF, 0x2000, 0x1000, 0x3010]);
        assert_eq!(set.addrs(), &[0x1000, 0x1FFF, 0x2000, 0x3010, 0x5008]);
        assert_eq!(set.page_ranges(), &[(0x1000, 0x3FFF), (0x5000, 0x5FFF)]);
        assert!(set.contains(0x3010));
        assert!(!set.contains(0x3011));
    }

    #[test]
    fn stop_set_identity_is_shared_by_clones_only() {
        let a = StopSet::new([1, 2]);
        let b = a.clone();
        let c = StopSet::new([1, 2]);
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }

    #[test]
    fn stop_set_at_the_top_of_the_address_space_does_not_overflow() {
        let set = StopSet::new([u64::MAX - 0x1000, u64::MAX]);
        assert_eq!(set.page_ranges(), &[(u64::MAX - 0x1FFF, u64::MAX)]);
    }

    #[test]
    fn r8_does_not_exist_in_32_bit_mode() {
        assert!(!Gpr::R8.exists_in(Mode::X86_32));
        assert!(Gpr::R8.exists_in(Mode::X86_64));
        assert_eq!(Gpr::Rip.name(Mode::X86_32), "eip");
    }

    #[test]
    fn perms_union_and_display() {
        assert_eq!(Perms::RX.union(Perms::RW), Perms::RWX);
        assert_eq!(Perms::RX.to_string(), "r-x");
    }
}
