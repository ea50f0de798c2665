//! [`Cpu`] on unicorn 2 (QEMU's TCG), in 32-bit and 64-bit mode.
//!
//! # How runs stop
//! - Stops: one code hook per page range of the [`StopSet`] (`StopSet::page_ranges`), whose
//!   callback binary-searches the set and calls `emu_stop`. Unicorn runs a code hook *before*
//!   the instruction and checks for a stop request right after it, so the instruction at a
//!   stop never runs. Only instructions inside those pages pay for the hook. A stop in an
//!   unmapped or non-executable page is caught by the fetch-fault hook instead.
//! - Budget: a block hook counts translated-block executions. Unicorn's own instruction
//!   count (`emu_start(.., count)`) instruments every instruction with a helper call and
//!   forces eager flags (~10x slower on loops in our measurement, against ~2x for the block
//!   hook), and it ends the run exactly like `hlt` does, so the two could not be told apart.
//! - Faults, invalid instructions and CPU exceptions are recorded by a memory hook and an
//!   interrupt hook, so errors carry the faulting address and vector, which unicorn's bare
//!   error codes do not.
//!
//! # Machine state and unicorn quirks
//! - A fresh unicorn x86 CPU has all eight x87 registers tagged *valid* (tag word 0x5555, so
//!   the stack looks full), MXCSR 0 (all SSE exceptions unmasked) and an x87 control word
//!   that reads 0 while the FPU actually computes at 64-bit precision: the field is zeroed
//!   without updating the rounding state. Code that saves and restores the control word
//!   (`fnstcw`/`fldcw`, as gcc's i386 double-to-int conversion does) would load that 0 and
//!   switch to 24-bit precision with every exception unmasked. [`UnicornCpu::new`] therefore
//!   writes the real reset state (see [`Cpu::reset_registers`]) and saves it as a unicorn
//!   context; `reset_registers` restores that context (one copy of the CPU state, ~0.15 µs).
//! - 32-bit mode: unicorn starts in protected mode with every segment base 0 and no GDT;
//!   TCG does not check segment limits, so memory is flat. Code that loads a segment
//!   register or uses `fs:`/`gs:` (TLS, the Windows TEB) is not supported.
//! - SSE/SSE2 work in both modes (unicorn sets OSFXSR itself). Unicorn does **not** raise
//!   #GP for a misaligned 16-byte `movaps`/`movdqa`/SSE memory operand: the access just
//!   happens (tested in `tests/engine.rs`). So running under this engine proves nothing
//!   about stack alignment; the harness must check `rsp` at call sites itself.
//! - x87 values move through a scratch page ([`UnicornCpu::SCRATCH_PAGE`], mapped at
//!   creation, reserved): popping runs `fstp qword [scratch]; hlt` and pushing `fld qword`,
//!   so rounding is exactly what real caller/callee code does. Unicorn's x87 does not detect
//!   stack overflow or underflow (a ninth `fld` silently wraps, no stack-fault flag), so
//!   the depth is checked from the tag word first.
//! - Stops that are added after code on their page was translated would be missed by the
//!   cached translation; installing a stop set drops the cached code of its pages.
//!
//! # Threads
//! `UnicornCpu` is neither `Send` nor `Sync` (the unicorn crate keeps its engine in an
//! `Rc`). Create one per worker thread, e.g. with rayon's `map_init` or a `thread_local!`;
//! a [`StopSet`] (an `Arc`) can be shared by all of them.

use unicorn_engine::unicorn_const::{Arch, HookType, MemType, Mode as UcMode, Prot};
use unicorn_engine::{uc_error, Context, RegisterX86, UcHookId, Unicorn};

use crate::engine::{Access, Cpu, EngineError, FaultKind, Gpr, Mode, Perms, Stop, StopSet, PAGE_SIZE};

/// Passed as `until` to `emu_start`: an address code never reaches, so only our hooks end a
/// run (a 32-bit pc never exceeds 4 GiB; in 64-bit mode it would be the last byte of memory).
const NO_UNTIL: u64 = u64::MAX;

/// The x87 control word after `fninit`: 64-bit precision, round to nearest, all masked.
const X87_CW_DEFAULT: u64 = 0x037F;
/// All eight x87 registers tagged empty (two bits each, 0b11 = empty).
const X87_TAGS_EMPTY: u64 = 0xFFFF;
/// MXCSR at process start on Linux and Windows: all exceptions masked, round to nearest.
const MXCSR_DEFAULT: u64 = 0x1F80;
/// EFLAGS with only the always-one bit 1 set: direction flag clear, as the ABIs require.
const RFLAGS_DEFAULT: u64 = 0x2;

/// Offsets inside the scratch page: two snippets, each an x87 instruction and a `hlt`, and
/// the double they move.
const SCRATCH_POP_CODE: u64 = 0x0;
const SCRATCH_PUSH_CODE: u64 = 0x10;
const SCRATCH_SNIPPET_LEN: u64 = 7;
const SCRATCH_DATA: u64 = 0x800;
/// ModRM bytes of `DD /3` (`fstp qword [disp32]`) and `DD /0` (`fld qword [disp32]`).
const X87_FSTP_M64: u8 = 0x1D;
const X87_FLD_M64: u8 = 0x05;

/// What the hooks saw during one run. Unicorn hands the hooks `&mut Unicorn<HookState>`.
struct HookState {
    /// The installed stops (the code hooks only cover their pages).
    stops: StopSet,
    /// `Some(start)` while the first instruction of a run that starts on a stop is pending.
    skip: Option<u64>,
    /// Blocks executed in this run, and the budget.
    blocks: u64,
    max_blocks: u64,
    /// Why the run ended, when a hook ended it.
    event: Option<Event>,
}

/// What ended a run, as recorded by a hook.
#[derive(Clone, Copy, Debug)]
enum Event {
    Reached(u64),
    Budget,
    Fault { access: Access, kind: FaultKind, address: u64, size: usize },
    Interrupt(u32),
}

/// A [`Cpu`] backed by a unicorn engine.
pub struct UnicornCpu {
    uc: Unicorn<'static, HookState>,
    mode: Mode,
    /// Register state saved at creation, restored by `reset_registers`.
    initial: Context,
    /// The stop set whose page hooks are installed, and those hooks.
    installed: Option<StopSet>,
    stop_hooks: Vec<UcHookId>,
}

impl UnicornCpu {
    /// Address of the page reserved for x87 transfers (code and data), mapped read-write-
    /// execute at creation: the last page below 4 GiB, in both modes. Don't map over it.
    pub const SCRATCH_PAGE: u64 = 0xFFFF_F000;

    /// A CPU in `mode` with nothing mapped but [`UnicornCpu::SCRATCH_PAGE`], registers in the
    /// initial state of [`Cpu::reset_registers`], and no stops.
    pub fn new(mode: Mode) -> Result<UnicornCpu, EngineError> {
        let uc_mode = match mode {
            Mode::X86_32 => UcMode::MODE_32,
            Mode::X86_64 => UcMode::MODE_64,
        };
        let state = HookState { stops: StopSet::empty(), skip: None, blocks: 0, max_blocks: 0, event: None };
        let mut uc = Unicorn::new_with_data(Arch::X86, uc_mode, state).map_err(backend)?;

        uc.add_block_hook(1, 0, |uc, _addr, _size| {
            let state = uc.get_data_mut();
            state.blocks += 1;
            if state.blocks > state.max_blocks {
                state.event = Some(Event::Budget);
                // Can only fail for a dead handle, and a hook has no way to report it.
                let _ = uc.emu_stop();
            }
        })
        .map_err(backend)?;

        let invalid = HookType::MEM_READ_UNMAPPED
            | HookType::MEM_WRITE_UNMAPPED
            | HookType::MEM_FETCH_UNMAPPED
            | HookType::MEM_READ_PROT
            | HookType::MEM_WRITE_PROT
            | HookType::MEM_FETCH_PROT;
        uc.add_mem_hook(invalid, 1, 0, |uc, kind, address, size, _value| {
            let (access, kind) = match kind {
                MemType::READ_UNMAPPED => (Access::Read, FaultKind::Unmapped),
                MemType::WRITE_UNMAPPED => (Access::Write, FaultKind::Unmapped),
                MemType::FETCH_UNMAPPED => (Access::Fetch, FaultKind::Unmapped),
                MemType::READ_PROT => (Access::Read, FaultKind::Protected),
                MemType::WRITE_PROT => (Access::Write, FaultKind::Protected),
                _ => (Access::Fetch, FaultKind::Protected),
            };
            let state = uc.get_data_mut();
            // Arriving at a stop that lives in an unmapped or non-executable page: the fetch
            // of its first byte is the arrival. The first instruction of a run that starts
            // on a stop is a real fetch, and its fault a real fault.
            let at_stop = access == Access::Fetch && state.stops.contains(address) && state.skip != Some(address);
            state.event =
                Some(if at_stop { Event::Reached(address) } else { Event::Fault { access, kind, address, size } });
            false // not handled: unicorn ends the run with an error
        })
        .map_err(backend)?;

        uc.add_intr_hook(|uc, vector| {
            uc.get_data_mut().event = Some(Event::Interrupt(vector));
            let _ = uc.emu_stop();
        })
        .map_err(backend)?;

        uc.mem_map(Self::SCRATCH_PAGE, PAGE_SIZE, Prot::ALL).map_err(backend)?;
        let mut scratch = [0u8; 0x20];
        let data = Self::SCRATCH_PAGE + SCRATCH_DATA;
        for (offset, op) in [(SCRATCH_POP_CODE, X87_FSTP_M64), (SCRATCH_PUSH_CODE, X87_FLD_M64)] {
            let code = x87_mem_op(mode, op, Self::SCRATCH_PAGE + offset, data);
            let at = offset as usize;
            scratch[at..at + 6].copy_from_slice(&code);
            scratch[at + 6] = 0xF4; // hlt: ends the run
        }
        uc.mem_write(Self::SCRATCH_PAGE, &scratch).map_err(backend)?;

        uc.reg_write(RegisterX86::FPCW, X87_CW_DEFAULT).map_err(backend)?;
        uc.reg_write(RegisterX86::FPTAG, X87_TAGS_EMPTY).map_err(backend)?;
        uc.reg_write(RegisterX86::FPSW, 0).map_err(backend)?;
        uc.reg_write(RegisterX86::MXCSR, MXCSR_DEFAULT).map_err(backend)?;
        let flags = if mode == Mode::X86_64 { RegisterX86::RFLAGS } else { RegisterX86::EFLAGS };
        uc.reg_write(flags, RFLAGS_DEFAULT).map_err(backend)?;
        let initial = uc.context_init().map_err(backend)?;

        Ok(UnicornCpu { uc, mode, initial, installed: None, stop_hooks: Vec::new() })
    }

    /// The unicorn register id of `reg` in this mode.
    fn reg_id(&self, reg: Gpr) -> RegisterX86 {
        use RegisterX86 as R;
        let wide = self.mode == Mode::X86_64;
        let pick = |r64: R, r32: R| if wide { r64 } else { r32 };
        match reg {
            Gpr::Rax => pick(R::RAX, R::EAX),
            Gpr::Rcx => pick(R::RCX, R::ECX),
            Gpr::Rdx => pick(R::RDX, R::EDX),
            Gpr::Rbx => pick(R::RBX, R::EBX),
            Gpr::Rsp => pick(R::RSP, R::ESP),
            Gpr::Rbp => pick(R::RBP, R::EBP),
            Gpr::Rsi => pick(R::RSI, R::ESI),
            Gpr::Rdi => pick(R::RDI, R::EDI),
            Gpr::Rip => pick(R::RIP, R::EIP),
            Gpr::Rflags => pick(R::RFLAGS, R::EFLAGS),
            Gpr::R8 | Gpr::R9 | Gpr::R10 | Gpr::R11 | Gpr::R12 | Gpr::R13 | Gpr::R14 | Gpr::R15 => {
                assert!(wide, "{} does not exist in 32-bit mode", reg.name(Mode::X86_64));
                match reg {
                    Gpr::R8 => R::R8,
                    Gpr::R9 => R::R9,
                    Gpr::R10 => R::R10,
                    Gpr::R11 => R::R11,
                    Gpr::R12 => R::R12,
                    Gpr::R13 => R::R13,
                    Gpr::R14 => R::R14,
                    _ => R::R15,
                }
            }
        }
    }

    fn xmm_id(&self, index: usize) -> RegisterX86 {
        use RegisterX86 as R;
        const XMM: [RegisterX86; 16] = [
            R::XMM0,
            R::XMM1,
            R::XMM2,
            R::XMM3,
            R::XMM4,
            R::XMM5,
            R::XMM6,
            R::XMM7,
            R::XMM8,
            R::XMM9,
            R::XMM10,
            R::XMM11,
            R::XMM12,
            R::XMM13,
            R::XMM14,
            R::XMM15,
        ];
        assert!(index < self.mode.xmm_count(), "xmm{index} does not exist in {:?} mode", self.mode);
        XMM[index]
    }

    fn pc(&self) -> u64 {
        self.gpr(Gpr::Rip)
    }

    /// Makes `stops` the installed set: page hooks for its ranges, cached code of those pages
    /// dropped. Free when `stops` is already installed.
    fn install_stops(&mut self, stops: &StopSet) -> Result<(), EngineError> {
        if self.installed.as_ref().is_some_and(|s| s.same_as(stops)) {
            return Ok(());
        }
        // Deleting a hook also drops the code translated with it.
        for id in self.stop_hooks.drain(..) {
            self.uc.remove_hook(id).map_err(backend)?;
        }
        self.installed = None;
        for &(first, last) in stops.page_ranges() {
            let id = self
                .uc
                .add_code_hook(first, last, |uc, addr, _size| {
                    let state = uc.get_data_mut();
                    if state.skip == Some(addr) {
                        // The first instruction of a run that starts on a stop: run it.
                        state.skip = None;
                    } else if state.stops.contains(addr) {
                        state.event = Some(Event::Reached(addr));
                        let _ = uc.emu_stop();
                    }
                })
                .map_err(backend)?;
            self.stop_hooks.push(id);
            // Hooks are compiled into translated code: code of these pages translated before
            // the hook existed would run past the stops. `end` is exclusive here.
            self.uc.ctl_remove_cache(first, last.saturating_add(1)).map_err(backend)?;
        }
        self.uc.get_data_mut().stops = stops.clone();
        self.installed = Some(stops.clone());
        Ok(())
    }

    /// Runs the scratch-page snippet at `offset` (one x87 instruction, then `hlt`; no stops
    /// apply) and restores `rip`.
    fn run_scratch(&mut self, offset: u64) -> Result<(), EngineError> {
        let rip = self.pc();
        let start = Self::SCRATCH_PAGE + offset;
        {
            let state = self.uc.get_data_mut();
            state.event = None;
            state.skip = None;
            state.blocks = 0;
            state.max_blocks = 4;
        }
        // Ended by the `hlt`, not by `until`: a run with a different `until` makes unicorn
        // drop and retranslate code around it each time (~10 µs per transfer, against
        // ~0.4 µs this way).
        let result = self.uc.emu_start(start, NO_UNTIL, 0, 0);
        let event = self.uc.get_data_mut().event.take();
        let end = self.pc();
        self.set_gpr(Gpr::Rip, rip);
        match (result, event) {
            (Ok(()), None) if end == start + SCRATCH_SNIPPET_LEN => Ok(()),
            (result, event) => Err(EngineError::Backend(format!(
                "x87 transfer in the scratch page failed: {result:?}, {event:?}, pc {end:#x}"
            ))),
        }
    }

    /// The x87 tag word: two bits per physical register, 0b11 = empty.
    fn x87_tags(&self) -> u64 {
        self.uc.reg_read(RegisterX86::FPTAG).expect("unicorn refused the x87 tag word")
    }
}

/// `fstp qword [data]` ([`X87_FSTP_M64`]) or `fld qword [data]` ([`X87_FLD_M64`]) placed
/// at `at`: `DD modrm disp32`, the disp32 absolute in 32-bit mode and rip-relative in 64-bit
/// mode (to the end of this 6-byte instruction).
fn x87_mem_op(mode: Mode, op: u8, at: u64, data: u64) -> [u8; 6] {
    let disp = match mode {
        Mode::X86_32 => data as u32,
        Mode::X86_64 => data.wrapping_sub(at + 6) as u32,
    };
    let d = disp.to_le_bytes();
    [0xDD, op, d[0], d[1], d[2], d[3]]
}

fn backend(err: uc_error) -> EngineError {
    EngineError::Backend(format!("unicorn: {err:?}"))
}

fn prot(perms: Perms) -> Prot {
    let mut prot = Prot::NONE;
    if perms.read {
        prot |= Prot::READ;
    }
    if perms.write {
        prot |= Prot::WRITE;
    }
    if perms.exec {
        prot |= Prot::EXEC;
    }
    prot
}

impl Cpu for UnicornCpu {
    fn mode(&self) -> Mode {
        self.mode
    }

    fn map(&mut self, address: u64, size: u64, perms: Perms) -> Result<(), EngineError> {
        let refuse = |reason: &str| EngineError::BadMap { address, size, reason: reason.to_owned() };
        if !address.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(refuse("address and size must be multiples of the 4 KiB page size"));
        }
        if size == 0 {
            return Err(refuse("size is zero"));
        }
        let Some(end) = address.checked_add(size) else {
            return Err(refuse("the region wraps around the address space"));
        };
        if self.mode == Mode::X86_32 && end > 1 << 32 {
            return Err(refuse("the region reaches beyond 4 GiB in 32-bit mode"));
        }
        if address < Self::SCRATCH_PAGE + PAGE_SIZE && end > Self::SCRATCH_PAGE {
            return Err(refuse("the region overlaps the engine's scratch page 0xfffff000"));
        }
        self.uc.mem_map(address, size, prot(perms)).map_err(|err| match err {
            uc_error::MAP => refuse("the region overlaps memory that is already mapped"),
            uc_error::NOMEM => refuse("out of host memory"),
            other => backend(other),
        })
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), EngineError> {
        self.uc.mem_write(address, bytes).map_err(|_| EngineError::Unmapped { address, len: bytes.len() })
    }

    fn write_code(&mut self, address: u64, bytes: &[u8]) -> Result<(), EngineError> {
        self.write(address, bytes)?;
        // unicorn keeps translated blocks across writes: drop those of the rewritten range.
        let end = address.saturating_add(bytes.len() as u64);
        self.uc
            .ctl_remove_cache(address, end)
            .map_err(|e| EngineError::Backend(format!("remove translation cache: {e:?}")))
    }

    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), EngineError> {
        let len = buf.len();
        self.uc.mem_read(address, buf).map_err(|_| EngineError::Unmapped { address, len })
    }

    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        let id = self.reg_id(reg);
        let value = self.mode.truncate(value);
        // Every id reg_id returns is valid for the mode, so unicorn cannot refuse it.
        self.uc.reg_write(id, value).expect("unicorn refused a register it implements");
    }

    fn gpr(&self, reg: Gpr) -> u64 {
        let id = self.reg_id(reg);
        let value = self.uc.reg_read(id).expect("unicorn refused a register it implements");
        self.mode.truncate(value)
    }

    fn set_xmm(&mut self, index: usize, value: u128) {
        let id = self.xmm_id(index);
        self.uc.reg_write_long(id, &value.to_le_bytes()).expect("unicorn refused an xmm register it implements");
    }

    fn xmm(&self, index: usize) -> u128 {
        let id = self.xmm_id(index);
        let bytes = self.uc.reg_read_long(id).expect("unicorn refused an xmm register it implements");
        let mut buf = [0u8; 16];
        buf.copy_from_slice(&bytes[..16]);
        u128::from_le_bytes(buf)
    }

    fn x87_push(&mut self, value: f64) -> Result<(), EngineError> {
        if self.x87_depth() == 8 {
            return Err(EngineError::X87StackFull);
        }
        self.write(Self::SCRATCH_PAGE + SCRATCH_DATA, &value.to_le_bytes())?;
        self.run_scratch(SCRATCH_PUSH_CODE)
    }

    fn x87_pop(&mut self) -> Result<f64, EngineError> {
        if self.x87_depth() == 0 {
            return Err(EngineError::X87StackEmpty);
        }
        self.run_scratch(SCRATCH_POP_CODE)?;
        let mut buf = [0u8; 8];
        self.read(Self::SCRATCH_PAGE + SCRATCH_DATA, &mut buf)?;
        Ok(f64::from_le_bytes(buf))
    }

    fn x87_depth(&self) -> usize {
        let tags = self.x87_tags();
        (0..8).filter(|i| (tags >> (2 * i)) & 3 != 3).count()
    }

    fn set_x87_control_word(&mut self, cw: u16) {
        self.uc.reg_write(RegisterX86::FPCW, u64::from(cw)).expect("unicorn refused the x87 control word");
    }

    fn x87_control_word(&self) -> u16 {
        let cw = self.uc.reg_read(RegisterX86::FPCW).expect("unicorn refused the x87 control word");
        cw as u16 // the register is 16 bits wide
    }

    fn reset_registers(&mut self) {
        self.uc.context_restore(&self.initial).expect("unicorn refused its own saved context");
    }

    fn run(&mut self, start: u64, stops: &StopSet, max_blocks: u64) -> Result<Stop, EngineError> {
        self.install_stops(stops)?;
        {
            let state = self.uc.get_data_mut();
            state.event = None;
            state.blocks = 0;
            state.max_blocks = max_blocks;
            state.skip = stops.contains(start).then_some(start);
        }
        // count = 0: unicorn's instruction counter stays off (see the module docs), and
        // switching it on and off would flush all translated code each time.
        let result = self.uc.emu_start(start, NO_UNTIL, 0, 0);
        let event = self.uc.get_data_mut().event.take();
        let pc = self.pc();
        match (event, result) {
            (Some(Event::Reached(addr)), _) => {
                // After a fetch fault the pc may not have been synced to the target yet.
                self.set_gpr(Gpr::Rip, addr);
                Ok(Stop::Reached(addr))
            }
            (Some(Event::Budget), _) => Err(EngineError::BudgetExhausted { max_blocks, pc }),
            (Some(Event::Interrupt(vector)), _) => Err(EngineError::Exception { vector, pc }),
            (Some(Event::Fault { access, kind, address, size }), _) => {
                Err(EngineError::MemoryFault { access, kind, address, size, pc })
            }
            (None, Err(uc_error::INSN_INVALID)) => Err(EngineError::InvalidInstruction { pc }),
            (None, Err(other)) => Err(backend(other)),
            // Unicorn ends a run without error on `hlt` (or when a hook we don't have stops it).
            (None, Ok(())) => Err(EngineError::Halted { pc }),
        }
    }
}
