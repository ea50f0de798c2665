//! Plan-driven callers and callees: abi-model's [`CallPlan`] against compiled code.
//!
//! *Call direction*: a caller written from the plan alone puts every argument exactly where
//! the plan says and calls a compiler-built callee, which records the bytes it received;
//! then the return value is read where the plan says. *Callback direction*: a
//! compiler-built caller calls a fake callee (a stop address) that reads every argument
//! where the plan says and returns a value where the plan says; the caller records what came
//! back. Both directions check the stack pointer after the call (callee-popped bytes) and the
//! x87 stack depth.

use crate::engine::{Cpu, EngineError, Gpr, Perms, StopSet};
use abi_model::{ArgPass, CallPlan, Ext, Loc, RetLoc, Target};
use std::fmt;

/// Where the harness puts things in the guest's address space (below 4 GiB for 32-bit
/// code, away from every fixture image's link address).
pub mod layout {
    /// Return address of the harness's own call: reaching it ends a call.
    pub const MAGIC_RET: u64 = 0x5000_0000;
    /// The fake callee the fixture callers call in the callback direction.
    pub const FAKE_CALLEE: u64 = 0x5000_0040;
    /// First helper hook address; helper `id` is at `HOOKS + 16 * id`.
    pub const HOOKS: u64 = 0x5000_1000;
    /// Lowest address of the stack region.
    pub const STACK_BASE: u64 = 0x7000_0000;
    /// Size of the stack region.
    pub const STACK_SIZE: u64 = 0x10_0000;
    /// Where the harness's calls start: 16-byte aligned, with room above for a caller frame.
    pub const STACK_TOP: u64 = STACK_BASE + STACK_SIZE - 0x1000;
    /// A scratch region for return buffers and by-reference copies.
    pub const SCRATCH: u64 = 0x6000_0000;
    /// Its size.
    pub const SCRATCH_SIZE: u64 = 0x1_0000;
    /// Upper bound of basic blocks one call may execute.
    pub const BUDGET: u64 = 100_000;
}

/// Bytes written where nothing meaningful should be read: a plan that puts a value in the
/// wrong place reads these instead.
pub const JUNK: u8 = 0xA5;

/// One call to check: the plan, the values, and where the compiled code is.
#[derive(Clone, Debug)]
pub struct Case<'a> {
    /// The signature in C, for reports.
    pub c_text: &'a str,
    /// The plan under test.
    pub plan: &'a CallPlan,
    /// Bytes of each argument value (after promotion), in order.
    pub args: &'a [Vec<u8>],
    /// Per argument, 0xFF where a byte is meaningful (0 for padding / bits outside bit-fields).
    pub arg_masks: &'a [Vec<u8>],
    /// Bytes of the return value (empty for void).
    pub ret: &'a [u8],
    /// Mask of the return value.
    pub ret_mask: &'a [u8],
}

/// Where a fixture image keeps the record buffer.
#[derive(Clone, Copy, Debug)]
pub struct RecordBuffer {
    /// Address of `unsigned char rec_buf[]`.
    pub buf: u64,
    /// Address of `unsigned rec_len`.
    pub len: u64,
}

/// A difference between what the plan says and what the compiled code did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What differed (`arg 2`, `return value`, `stack pointer after the call`, ...).
    pub what: String,
    /// What the compiled code did or expected.
    pub expected: String,
    /// What the plan produced.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, got {}", self.what, self.expected, self.actual)
    }
}

/// A mismatch from its three parts.
pub fn mismatch(what: impl Into<String>, expected: impl Into<String>, actual: impl Into<String>) -> Mismatch {
    Mismatch { what: what.into(), expected: expected.into(), actual: actual.into() }
}

/// Compares two byte strings under a mask.
pub fn compare(what: &str, expected: &[u8], actual: &[u8], mask: &[u8]) -> Result<(), Mismatch> {
    let differs =
        expected.len() != actual.len() || expected.iter().zip(actual).zip(mask).any(|((e, a), m)| (e ^ a) & m != 0);
    if differs {
        let masked = |v: &[u8]| -> String {
            v.iter()
                .zip(mask.iter().chain(std::iter::repeat(&0xFF)))
                .map(|(b, m)| if *m == 0 { "..".to_string() } else { format!("{:02x}", b & m) })
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(mismatch(what, masked(expected), masked(actual)));
    }
    Ok(())
}

/// An engine error as a mismatch: the code under test did not return normally.
pub fn engine(e: EngineError) -> Mismatch {
    mismatch("execution", "a normal return", e.to_string())
}

/// Clobbers every register a called function may change on `target` (the model's scratch
/// sets): code that keeps a value there across a call fails.
pub fn clobber_scratch(cpu: &mut dyn Cpu, target: Target) {
    for r in target.scratch_gprs() {
        cpu.set_gpr(gpr_of(r.0), cpu.mode().truncate(0xC1C1_C1C1_C1C1_C1C1));
    }
    for x in target.scratch_xmms() {
        cpu.set_xmm(usize::from(x.0), 0xC2C2_C2C2_C2C2_C2C2_C2C2_C2C2_C2C2_C2C2);
    }
}

/// The engine register for an abi-model register number.
pub fn gpr_of(n: u8) -> Gpr {
    Gpr::ALL[usize::from(n & 15)]
}

/// Maps the harness's regions (stack, scratch, the page holding the magic return address)
/// into a fresh CPU. Images are loaded separately.
pub fn map_harness_regions(cpu: &mut dyn Cpu) -> Result<(), EngineError> {
    cpu.map(layout::STACK_BASE, layout::STACK_SIZE, Perms::RW)?;
    cpu.map(layout::SCRATCH, layout::SCRATCH_SIZE, Perms::RW)
}

/// A register's value with `bytes` in its low bytes, widened as `ext` says, and junk above.
fn reg_value(bytes: &[u8], ext: Ext) -> u64 {
    let mut v = [JUNK; 8];
    let n = bytes.len().min(8);
    v[..n].copy_from_slice(&bytes[..n]);
    if n < 4 && ext != Ext::None {
        let negative = ext == Ext::Sign && bytes[n - 1] & 0x80 != 0;
        for b in &mut v[n..4] {
            *b = if negative { 0xFF } else { 0 };
        }
    }
    u64::from_le_bytes(v)
}

/// A stack slot's bytes: the value, widened to 4 bytes when `ext` says so.
fn ext_bytes(bytes: &[u8], ext: Ext) -> Vec<u8> {
    if ext == Ext::None || bytes.len() >= 4 {
        return bytes.to_vec();
    }
    reg_value(bytes, ext).to_le_bytes()[..4].to_vec()
}

/// Writes the arguments of `plan` as a caller does, with the outgoing area at `sp` (the
/// stack pointer at the call instruction). Returns nothing; registers and memory are set.
pub fn place_args(
    cpu: &mut dyn Cpu,
    plan: &CallPlan,
    args: &[Vec<u8>],
    sp: u64,
    sret_buf: Option<u64>,
) -> Result<(), EngineError> {
    let place = |cpu: &mut dyn Cpu, loc: Loc, bytes: &[u8], ext: Ext| -> Result<(), EngineError> {
        match loc {
            Loc::Gpr(g) => {
                cpu.set_gpr(gpr_of(g.0), reg_value(bytes, ext));
                Ok(())
            }
            Loc::Xmm(x) => {
                let mut v = [JUNK; 16];
                let n = bytes.len().min(16);
                v[..n].copy_from_slice(&bytes[..n]);
                cpu.set_xmm(usize::from(x.0), u128::from_le_bytes(v));
                Ok(())
            }
            Loc::Stack { offset } => cpu.write(sp + u64::from(offset), &ext_bytes(bytes, ext)),
        }
    };
    let w = u64::from(plan.ptr_size);
    if let (RetLoc::Sret { ptr }, Some(buf)) = (plan.ret.loc, sret_buf) {
        place(cpu, ptr, &buf.to_le_bytes()[..w as usize], Ext::None)?;
    }
    for (a, bytes) in plan.args.iter().zip(args) {
        match &a.pass {
            ArgPass::Direct(parts) => {
                for p in parts {
                    let piece = &bytes[p.offset as usize..(p.offset + p.size) as usize];
                    place(cpu, p.loc, piece, p.ext)?;
                }
            }
            ArgPass::Indirect { ptr, copy_at } => {
                let copy = sp + u64::from(*copy_at);
                cpu.write(copy, bytes)?;
                place(cpu, *ptr, &copy.to_le_bytes()[..w as usize], Ext::None)?;
            }
        }
    }
    Ok(())
}

/// Reads the value `plan` returns from where the plan says (after the callee returned).
/// For an sret return, also checks that eax/rax holds the buffer's address.
pub fn read_return(cpu: &mut dyn Cpu, plan: &CallPlan, sret_buf: u64) -> Result<Vec<u8>, Mismatch> {
    let size = plan.ret.value.size(plan.ptr_size) as usize;
    let lo = |v: u64, n: usize| v.to_le_bytes()[..n.min(8)].to_vec();
    let x = |cpu: &dyn Cpu, i: usize| cpu.xmm(i) as u64;
    let mut out = match plan.ret.loc {
        RetLoc::Void => vec![],
        RetLoc::Gpr => lo(cpu.gpr(Gpr::Rax), size),
        RetLoc::EdxEax => {
            let mut v = lo(cpu.gpr(Gpr::Rax), 4);
            v.extend(lo(cpu.gpr(Gpr::Rdx), 4));
            v
        }
        RetLoc::St0 => {
            let depth = cpu.x87_depth();
            if depth != 1 {
                return Err(mismatch("x87 stack after the call", "1 value (st0)", format!("{depth}")));
            }
            // st(0) holds a float or a double (or, on Win32, a struct of one): its size says.
            let v = cpu.x87_pop().map_err(engine)?;
            match size {
                4 => (v as f32).to_le_bytes().to_vec(),
                _ => v.to_le_bytes().to_vec(),
            }
        }
        // All of xmm0 (a 16-byte integer on Win64 fills it).
        RetLoc::Xmm0 => cpu.xmm(0).to_le_bytes()[..size.min(16)].to_vec(),
        RetLoc::Xmm0Xmm1 => [lo(x(cpu, 0), 8), lo(x(cpu, 1), size - 8)].concat(),
        RetLoc::RaxRdx => [lo(cpu.gpr(Gpr::Rax), 8), lo(cpu.gpr(Gpr::Rdx), size - 8)].concat(),
        RetLoc::RaxXmm0 => [lo(cpu.gpr(Gpr::Rax), 8), lo(x(cpu, 0), size - 8)].concat(),
        RetLoc::Xmm0Rax => [lo(x(cpu, 0), 8), lo(cpu.gpr(Gpr::Rax), size - 8)].concat(),
        RetLoc::Sret { .. } => {
            let rax = cpu.gpr(Gpr::Rax);
            if rax != sret_buf {
                return Err(mismatch(
                    "eax/rax after a return through memory",
                    format!("{sret_buf:#x}"),
                    format!("{rax:#x}"),
                ));
            }
            let mut v = vec![0; size];
            cpu.read(sret_buf, &mut v).map_err(engine)?;
            v
        }
    };
    // A register pair may carry less than the value when an eightbyte is only padding
    // (SysV NO_CLASS); those bytes are masked out.
    out.resize(size, 0);
    if plan.ret.loc != RetLoc::St0 && cpu.x87_depth() != 0 {
        return Err(mismatch("x87 stack after the call", "empty", format!("{} values", cpu.x87_depth())));
    }
    Ok(out)
}

/// Writes `bytes` as the return value where `plan` says, as a callee does. For an sret
/// return, `sret_ptr` is the hidden pointer the caller passed.
pub fn write_return(
    cpu: &mut dyn Cpu,
    plan: &CallPlan,
    bytes: &[u8],
    sret_ptr: Option<u64>,
) -> Result<(), EngineError> {
    // A register carries at most its width; a plan that puts more in one loses the rest,
    // and the caller's record then shows the mismatch.
    let word = |b: &[u8]| {
        let mut v = [JUNK; 8];
        let n = b.len().min(8);
        v[..n].copy_from_slice(&b[..n]);
        u64::from_le_bytes(v)
    };
    let xmm = |b: &[u8]| {
        let mut v = [JUNK; 16];
        let n = b.len().min(16);
        v[..n].copy_from_slice(&b[..n]);
        u128::from_le_bytes(v)
    };
    let split = |n: usize| (&bytes[..n.min(bytes.len())], &bytes[n.min(bytes.len())..]);
    match plan.ret.loc {
        RetLoc::Void => {}
        RetLoc::Gpr => cpu.set_gpr(Gpr::Rax, word(bytes)),
        RetLoc::EdxEax => {
            let (a, d) = split(4);
            cpu.set_gpr(Gpr::Rax, word(a));
            cpu.set_gpr(Gpr::Rdx, word(d));
        }
        RetLoc::St0 => {
            let v = match bytes.len() {
                4 => f64::from(f32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]))),
                _ => f64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
            };
            cpu.x87_push(v)?;
        }
        RetLoc::Xmm0 => cpu.set_xmm(0, xmm(bytes)),
        RetLoc::Xmm0Xmm1 => {
            let (a, b) = split(8);
            cpu.set_xmm(0, xmm(a));
            cpu.set_xmm(1, xmm(b));
        }
        RetLoc::RaxRdx => {
            let (a, b) = split(8);
            cpu.set_gpr(Gpr::Rax, word(a));
            cpu.set_gpr(Gpr::Rdx, word(b));
        }
        RetLoc::RaxXmm0 => {
            let (a, b) = split(8);
            cpu.set_gpr(Gpr::Rax, word(a));
            cpu.set_xmm(0, xmm(b));
        }
        RetLoc::Xmm0Rax => {
            let (a, b) = split(8);
            cpu.set_xmm(0, xmm(a));
            cpu.set_gpr(Gpr::Rax, word(b));
        }
        RetLoc::Sret { .. } => {
            let ptr = sret_ptr.unwrap_or(0);
            cpu.write(ptr, bytes)?;
            cpu.set_gpr(Gpr::Rax, ptr);
        }
    }
    Ok(())
}

/// Reads, at a callee's entry (return address at `[sp]`), every argument where `plan` says,
/// `sizes` giving each argument's byte count; and the hidden return pointer, if any.
pub fn read_incoming(
    cpu: &dyn Cpu,
    plan: &CallPlan,
    sizes: impl Iterator<Item = usize>,
) -> Result<(Vec<Vec<u8>>, Option<u64>), EngineError> {
    let w = u64::from(plan.ptr_size);
    let call_sp = cpu.gpr(Gpr::Rsp) + w;
    let read_loc = |loc: Loc, size: usize| -> Result<Vec<u8>, EngineError> {
        Ok(match loc {
            Loc::Gpr(g) => cpu.gpr(gpr_of(g.0)).to_le_bytes()[..size.min(8)].to_vec(),
            Loc::Xmm(x) => cpu.xmm(usize::from(x.0)).to_le_bytes()[..size.min(16)].to_vec(),
            Loc::Stack { offset } => {
                let mut v = vec![0; size];
                cpu.read(call_sp + u64::from(offset), &mut v)?;
                v
            }
        })
    };
    let word = |b: Vec<u8>| {
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(&b);
        u64::from_le_bytes(v)
    };
    let sret_ptr = match plan.ret.loc {
        RetLoc::Sret { ptr } => Some(word(read_loc(ptr, w as usize)?)),
        _ => None,
    };
    let mut out = Vec::with_capacity(plan.args.len());
    for (a, size) in plan.args.iter().zip(sizes) {
        let mut got = vec![0u8; size];
        match &a.pass {
            ArgPass::Direct(parts) => {
                for p in parts {
                    let piece = read_loc(p.loc, p.size as usize)?;
                    let at = p.offset as usize;
                    let n = piece.len().min(size.saturating_sub(at));
                    got[at..at + n].copy_from_slice(&piece[..n]);
                }
            }
            ArgPass::Indirect { ptr, .. } => {
                let addr = word(read_loc(*ptr, w as usize)?);
                cpu.read(addr, &mut got)?;
            }
        }
        out.push(got);
    }
    Ok((out, sret_ptr))
}

/// Reads the record buffer's contents and empties it.
pub fn take_record(cpu: &mut dyn Cpu, rec: RecordBuffer) -> Result<Vec<u8>, Mismatch> {
    let n = cpu.read_u32(rec.len).map_err(engine)? as usize;
    if n > 1 << 16 {
        return Err(mismatch("record buffer length", "at most 65536", n.to_string()));
    }
    let mut v = vec![0; n];
    cpu.read(rec.buf, &mut v).map_err(engine)?;
    cpu.write_u32(rec.len, 0).map_err(engine)?;
    Ok(v)
}

/// Checks the recorded argument bytes against the case's values, argument by argument.
fn check_recorded_args(case: &Case, recorded: &[u8]) -> Result<(), Mismatch> {
    let mut at = 0;
    for (i, (bytes, mask)) in case.args.iter().zip(case.arg_masks).enumerate() {
        let got = recorded.get(at..at + bytes.len()).unwrap_or(&[]);
        compare(&format!("arg {i} ({})", case.plan.args[i].value), bytes, got, mask)?;
        at += bytes.len();
    }
    if at != recorded.len() {
        return Err(mismatch("bytes recorded by the callee", at.to_string(), recorded.len().to_string()));
    }
    Ok(())
}

/// Call direction: a plan-driven caller calls the compiled `callee`.
pub fn check_call(
    cpu: &mut dyn Cpu,
    case: &Case,
    callee: u64,
    rec: RecordBuffer,
    stops: &StopSet,
) -> Result<(), Mismatch> {
    let plan = case.plan;
    cpu.reset_registers();
    cpu.write_u32(rec.len, 0).map_err(engine)?;
    let frame = u64::from(plan.frame_bytes()).div_ceil(16) * 16;
    let sp = layout::STACK_TOP - frame;
    // Junk in the whole outgoing area: nothing the plan doesn't write may be read.
    cpu.write(sp, &vec![JUNK; frame as usize]).map_err(engine)?;
    let sret_buf = layout::SCRATCH;
    cpu.write(sret_buf, &vec![JUNK; case.ret.len()]).map_err(engine)?;
    place_args(cpu, plan, case.args, sp, Some(sret_buf)).map_err(engine)?;
    if let Some(al) = plan.al {
        let rax = cpu.gpr(Gpr::Rax);
        cpu.set_gpr(Gpr::Rax, (rax & !0xFF) | u64::from(al));
    }
    cpu.set_gpr(Gpr::Rsp, sp);
    cpu.push(layout::MAGIC_RET).map_err(engine)?;
    match cpu.run(callee, stops, layout::BUDGET).map_err(engine)? {
        crate::Stop::Reached(layout::MAGIC_RET) => {}
        crate::Stop::Reached(other) => {
            return Err(mismatch(
                "where the callee returned",
                format!("{:#x}", layout::MAGIC_RET),
                format!("{other:#x}"),
            ))
        }
    }
    let sp_after = cpu.gpr(Gpr::Rsp);
    let want = sp + u64::from(plan.callee_pops);
    if sp_after != want {
        return Err(mismatch(
            "stack pointer after the call (callee-popped bytes)",
            format!("callee popped {}", i64::try_from(sp_after).unwrap_or(0) - i64::try_from(sp).unwrap_or(0)),
            format!("plan says {}", plan.callee_pops),
        ));
    }
    let recorded = take_record(cpu, rec)?;
    check_recorded_args(case, &recorded)?;
    let got = read_return(cpu, plan, sret_buf)?;
    compare("return value", case.ret, &got, case.ret_mask)
}

/// Callback direction: the compiled `caller` (a cdecl `void caller(void *fn)`) calls a
/// plan-driven callee at [`layout::FAKE_CALLEE`], which clobbers every register a callee on
/// `target` may. `entry_plan` is the plan of the call to `caller` itself.
pub fn check_callback(
    cpu: &mut dyn Cpu,
    target: Target,
    case: &Case,
    caller: u64,
    entry_plan: &CallPlan,
    rec: RecordBuffer,
    stops: &StopSet,
) -> Result<(), Mismatch> {
    let plan = case.plan;
    let w = u64::from(plan.ptr_size);
    cpu.reset_registers();
    cpu.write_u32(rec.len, 0).map_err(engine)?;
    let entry_frame = u64::from(entry_plan.frame_bytes()).div_ceil(16) * 16;
    let sp0 = layout::STACK_TOP - entry_frame;
    let fnptr = layout::FAKE_CALLEE.to_le_bytes()[..w as usize].to_vec();
    place_args(cpu, entry_plan, std::slice::from_ref(&fnptr), sp0, None).map_err(engine)?;
    cpu.set_gpr(Gpr::Rsp, sp0);
    cpu.push(layout::MAGIC_RET).map_err(engine)?;
    match cpu.run(caller, stops, layout::BUDGET).map_err(engine)? {
        crate::Stop::Reached(layout::FAKE_CALLEE) => {}
        crate::Stop::Reached(other) => {
            return Err(mismatch(
                "the caller's call",
                format!("a call to {:#x}", layout::FAKE_CALLEE),
                format!("arrived at {other:#x}"),
            ))
        }
    }
    // At the callee's entry: return address at [sp], arguments above it.
    let entry_sp = cpu.gpr(Gpr::Rsp);
    let call_sp = entry_sp + w;
    if !call_sp.is_multiple_of(u64::from(plan.stack_align)) {
        return Err(mismatch(
            "stack alignment at the call",
            format!("{} bytes", plan.stack_align),
            format!("sp = {call_sp:#x}"),
        ));
    }
    let (got_args, sret_ptr) = read_incoming(cpu, plan, case.args.iter().map(Vec::len)).map_err(engine)?;
    for (i, (a, (bytes, mask))) in plan.args.iter().zip(case.args.iter().zip(case.arg_masks)).enumerate() {
        compare(&format!("arg {i} ({}) as the callee reads it", a.value), bytes, &got_args[i], mask)?;
    }
    // Clobber every register the target's callee may clobber, then return as the plan says.
    clobber_scratch(cpu, target);
    write_return(cpu, plan, case.ret, sret_ptr).map_err(engine)?;
    let resume = cpu.emulate_ret(u64::from(plan.callee_pops)).map_err(engine)?;
    match cpu.run(resume, stops, layout::BUDGET).map_err(engine)? {
        crate::Stop::Reached(layout::MAGIC_RET) => {}
        crate::Stop::Reached(other) => {
            return Err(mismatch(
                "where the caller returned",
                format!("{:#x}", layout::MAGIC_RET),
                format!("{other:#x}"),
            ))
        }
    }
    let sp_after = cpu.gpr(Gpr::Rsp);
    if sp_after != sp0 + u64::from(entry_plan.callee_pops) {
        return Err(mismatch(
            "the caller's stack pointer after it returned",
            format!("{sp0:#x}"),
            format!("{sp_after:#x}"),
        ));
    }
    if cpu.x87_depth() != 0 {
        return Err(mismatch("x87 stack after the caller returned", "empty", format!("{} values", cpu.x87_depth())));
    }
    let recorded = take_record(cpu, rec)?;
    compare("return value as the caller received it", case.ret, &recorded, case.ret_mask)
}

/// The stop set every plan run uses.
pub fn plan_stops() -> StopSet {
    StopSet::new([layout::MAGIC_RET, layout::FAKE_CALLEE])
}
