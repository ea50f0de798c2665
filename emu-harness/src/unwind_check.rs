//! The proof of a stub's or thunk's frame description ([`FrameUnwind`]) against its run: the
//! run stops at every instruction boundary of the prologue (from the entry to the end of its
//! last op) and at every `call` of the body, and at the helper hooks and the target gate
//! (the callee's view of the caller frame: the return address on top of the stack). At each
//! stop the CFA the description gives must be the real one (the stack pointer before the
//! call that entered the code), the return address must sit below it, and every register the
//! description says is saved must hold, at its slot, the value the register had at entry.
//!
//! The description must also encode: as `.eh_frame` bytes on every target, and as Win64
//! `UNWIND_INFO` for x86-64 Windows code.

use crate::engine::{Cpu, StopSet};
use crate::plan_runner::{engine, gpr_of, mismatch, Mismatch};
use abi_model::unwind::{FrameUnwind, SavedReg};
use abi_model::{Arch, Os, Target};
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic};

/// The registers and return address at the code's entry.
#[derive(Clone, Debug)]
struct Entry {
    cfa: u64,
    ret: u64,
    gprs: Vec<u64>,
    xmms: Vec<u128>,
}

/// One generated function's description, its stops and, once entered, its entry state.
#[derive(Debug)]
pub struct UnwindProbe {
    base: u64,
    len: u64,
    unwind: FrameUnwind,
    stops: Vec<u64>,
    entry: Option<Entry>,
    /// Stops checked so far (so a test can see the checks ran).
    pub checked: usize,
}

impl UnwindProbe {
    /// The probe of `bytes` of `target` code placed at `base`, described by `unwind`; an
    /// error when the description is invalid or does not encode for the target.
    pub fn new(target: Target, bytes: &[u8], base: u64, unwind: FrameUnwind) -> Result<UnwindProbe, Mismatch> {
        let bad = |e: abi_model::unwind::UnwindError| mismatch("the frame description", "a valid one", e.to_string());
        unwind.validate().map_err(bad)?;
        unwind.eh_frame(base, bytes.len() as u64).map_err(bad)?;
        if target.arch == Arch::X86_64 && target.os == Os::Windows {
            unwind.win64_unwind_info().map_err(bad)?;
        }
        let bitness = match target.arch {
            Arch::X86 => 32,
            Arch::X86_64 => 64,
        };
        let prologue = u64::from(unwind.prologue_size());
        let mut stops = Vec::new();
        let mut decoder = Decoder::with_ip(bitness, bytes, base, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut ins);
            let call = ins.mnemonic() == Mnemonic::Call;
            if ins.ip() - base <= prologue || call {
                stops.push(ins.ip());
            }
        }
        // The boundary just past the prologue (the body's first instruction) is one of them.
        Ok(UnwindProbe { base, len: bytes.len() as u64, unwind, stops, entry: None, checked: 0 })
    }

    /// `stops` and this probe's stops (the entry of the code is one of them).
    pub fn stop_set(&self, stops: &StopSet) -> StopSet {
        StopSet::new(stops.addrs().iter().copied().chain(self.stops.iter().copied()))
    }

    /// Whether `at` is one of this probe's stops.
    pub fn is_stop(&self, at: u64) -> bool {
        self.stops.binary_search(&at).is_ok()
    }

    /// Records the entry state: the CPU is about to run the code's first instruction.
    pub fn enter(&mut self, cpu: &dyn Cpu) -> Result<(), Mismatch> {
        let sp = cpu.gpr(crate::engine::Gpr::Rsp);
        let ret = cpu.read_word(sp).map_err(engine)?;
        let w = cpu.mode().word_size();
        let gprs = (0..gpr_count(cpu)).map(|r| cpu.gpr(gpr_of(r))).collect();
        let xmms = (0..cpu.mode().xmm_count()).map(|x| cpu.xmm(x)).collect();
        self.entry = Some(Entry { cfa: sp + w, ret, gprs, xmms });
        Ok(())
    }

    /// At a stop of this probe: the frame state at `at` against the CPU. The entry stop
    /// records the entry state first.
    pub fn check_stop(&mut self, cpu: &dyn Cpu, at: u64) -> Result<(), Mismatch> {
        if at == self.base {
            self.enter(cpu)?;
        }
        self.check(cpu, at, 0)
    }

    /// At a helper hook or the target gate: if the return address on top of the stack is in
    /// the code, the state at that address with the stack pointer as the code left it.
    pub fn check_callee_view(&mut self, cpu: &dyn Cpu) -> Result<(), Mismatch> {
        let sp = cpu.gpr(crate::engine::Gpr::Rsp);
        let ret = cpu.read_word(sp).map_err(engine)?;
        if ret < self.base || ret >= self.base + self.len {
            return Ok(());
        }
        self.check(cpu, ret, cpu.mode().word_size())
    }

    /// Checks the state at code address `at`, the stack pointer being `sp_adjust` bytes above
    /// the CPU's.
    fn check(&mut self, cpu: &dyn Cpu, at: u64, sp_adjust: u64) -> Result<(), Mismatch> {
        let Some(entry) = self.entry.clone() else {
            return Err(mismatch("unwind check", "the code entered at its first byte", format!("{at:#x} first")));
        };
        let off = (at - self.base) as u32;
        let state =
            self.unwind.state_at(off).map_err(|e| mismatch("the frame description", "a valid one", e.to_string()))?;
        let w = cpu.mode().word_size();
        let reg = |r: abi_model::Gpr| {
            let v = cpu.gpr(gpr_of(r.0));
            if r == abi_model::Gpr::SP {
                v + sp_adjust
            } else {
                v
            }
        };
        let where_ = format!("unwind at code+{off:#x} ({state})");
        let cfa = reg(state.cfa.base).wrapping_add(u64::from(state.cfa.offset)) & mask(w);
        if cfa != entry.cfa {
            return Err(mismatch(format!("{where_}: the CFA"), format!("{:#x}", entry.cfa), format!("{cfa:#x}")));
        }
        let ret = cpu.read_word(cfa - w).map_err(engine)?;
        if ret != entry.ret {
            return Err(mismatch(
                format!("{where_}: the return address at CFA-{w}"),
                format!("{:#x}", entry.ret),
                format!("{ret:#x}"),
            ));
        }
        for saved in &state.saved {
            let slot = cfa.wrapping_add_signed(i64::from(saved.cfa_offset)) & mask(w);
            let (name, want, got) = match saved.reg {
                SavedReg::Gpr(r) => {
                    let got = cpu.read_word(slot).map_err(engine)?;
                    (format!("r{}", r.0), u128::from(entry.gprs[usize::from(r.0)]), u128::from(got))
                }
                SavedReg::Xmm(x) => {
                    let mut b = [0; 16];
                    cpu.read(slot, &mut b).map_err(engine)?;
                    (format!("xmm{}", x.0), entry.xmms[usize::from(x.0)], u128::from_le_bytes(b))
                }
            };
            if want != got {
                return Err(mismatch(
                    format!("{where_}: the caller's {name} at CFA{}", saved.cfa_offset),
                    format!("{want:#x}"),
                    format!("{got:#x}"),
                ));
            }
        }
        self.checked += 1;
        Ok(())
    }
}

fn gpr_count(cpu: &dyn Cpu) -> u8 {
    match cpu.mode().word_size() {
        4 => 8,
        _ => 16,
    }
}

fn mask(word: u64) -> u64 {
    if word == 4 {
        0xffff_ffff
    } else {
        u64::MAX
    }
}
