//! x86-64 System V backend: lowers `abi_model` stub and thunk [`Program`]s to machine code.
//!
//! Every [`Step`] becomes one short instruction sequence ([`X64SysvBackend`]); where values go
//! comes from the program and from the helpers' own [`CallPlan`]s, never from this crate. The
//! code is assembled with dynasm (into a `CodeBuf`, which behaves as `dynasmrt::VecAssembler`)
//! for a caller-chosen base address and reaches helpers and the target only through absolute
//! addresses, so the same bytes run natively and inside the emulator.
//!
//! # Frame layout
//!
//! ```text
//!  stub (int stub(lua_State *L))           thunk (called by C through a pointer)
//!
//!                                          [rbp+16+off]  caller's stack arguments, Slot::Entry(off >= 0)
//!  [rbp+8]   return address                [rbp+8]       return address = entry sp
//!  [rbp]     saved rbp   <- rbp (16-aligned) [rbp]       saved rbp   <- rbp (16-aligned)
//!  [rbp-8]   saved rbx (rbx = L throughout) [rbp-24..rbp) rest of the model's header, unused
//!  [rbp-16]  padding                       [rbp+8+off]   save area, Slot::Entry(off < 0)
//!  staging area: Slot::Stage(off) at       padding to 16
//!    [rbp-16-stage_bytes+off]              staging area: Slot::Stage(off) at [rsp+off]
//!  outgoing area: Slot::Out(off) at        <- rsp (16-aligned)
//!    [rsp+off], rsp 16-aligned at the call
//! ```
//!
//! Every slot is addressed from rbp, so a helper call that needed stack space could move rsp
//! without moving the slots (no SysV helper does: all take at most four register arguments).
//! Except: a stub whose call needs more than 16 ([`Program::out_align`], an over-aligned
//! record on the stack) realigns with `and rsp, -align` after reserving its frame, which
//! moves the outgoing area down by an amount known only at run time; its `Slot::Out`s are
//! then addressed from rsp (nothing moves rsp between the prologue and the call), the
//! others from rbp as always. `leave` undoes both.
//! Scratch registers: r11 (value shuffling) and r10 (a pointer read from a slot); neither
//! carries an argument in SysV (psABI Figure 3.4), and al survives until the call.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// dynasm expands a dynamic register `Rq(n)` to `n.into()`, which is the identity for our u8s.
#![allow(clippy::useless_conversion)]

use std::sync::OnceLock;

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{Dest, Operand, Program, Slot, Step};
use abi_model::lua::{lua_state_at_entry, Backend, BackendError, Code, CodeEnv, Invalid, ProgramKind};
use abi_model::unwind::{FrameOp, FrameUnwind};
use abi_model::{Arch, ArgPass, CallPlan, CallbackFrame, Ext, Gpr, Loc, RetLoc, RetPlan, Target, ValueKind, Xmm};
use dynasmrt::components::PatchLoc;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, AssemblyOffset, DynamicLabel, DynasmApi, DynasmError, DynasmLabelApi, LabelKind, TargetKind};

/// The stub and thunk generator for x86-64 System V (Linux, the BSDs, macOS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X64SysvBackend;

impl Backend for X64SysvBackend {
    fn target(&self) -> Target {
        Target::X64_SYSV
    }

    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        let mut e = Emitter::new(Frame::stub(program)?, base, env);
        e.vm = program.vm;
        e.stub_prologue()?;
        e.lower(&program.steps)?;
        e.finish()
    }

    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        let mut e = Emitter::new(Frame::thunk(program)?, base, env);
        e.vm = program.vm;
        e.thunk_prologue();
        e.lower(&program.steps)?;
        e.finish()
    }

    /// Helpers and targets are called through `mov rax, imm64; call rax` or a slot, constants
    /// are immediates, and every jump is to a label inside the code.
    fn position_independent(&self) -> bool {
        true
    }
}

/// The assembler with the stub's live registers named by role.
macro_rules! asm {
    ($ops:expr; $($t:tt)*) => {
        dynasm!($ops
            ; .arch x64
            ; .alias lua_state, rbx
            ; .alias frame, rbp
            ; .alias scratch, r11
            ; .alias scratch_ptr, r10
            ; $($t)*
        )
    };
}

/// Emits `before [mem] after`, with the one-byte displacement form when it fits.
macro_rules! mem {
    ($ops:expr, $m:expr, [$($before:tt)*], [$($after:tt)*]) => {{
        let m: Mem = $m;
        match (m.base, i8::try_from(m.disp)) {
            (Base::Frame, Ok(d)) => asm!($ops ; $($before)* [BYTE frame + d] $($after)*),
            (Base::Frame, Err(_)) => asm!($ops ; $($before)* [frame + m.disp] $($after)*),
            (Base::ScratchPtr, Ok(0)) => asm!($ops ; $($before)* [scratch_ptr] $($after)*),
            (Base::ScratchPtr, Ok(d)) => asm!($ops ; $($before)* [BYTE scratch_ptr + d] $($after)*),
            (Base::ScratchPtr, Err(_)) => asm!($ops ; $($before)* [scratch_ptr + m.disp] $($after)*),
            (Base::Stack, Ok(d)) => asm!($ops ; $($before)* [BYTE rsp + d] $($after)*),
            (Base::Stack, Err(_)) => asm!($ops ; $($before)* [rsp + m.disp] $($after)*),
        }
    }};
}

/// Register numbers as the ISA encodes them (dynasm's `Rq(n)`).
const RAX: u8 = 0;
const RBX: u8 = 3;
const RDX: u8 = 2;
const R11: u8 = 11;

/// Where each kind of slot is, as an rbp-relative displacement.
#[derive(Clone, Copy, Debug)]
enum Frame {
    Stub {
        out_bytes: u32,
        stage_bytes: u32,
        /// The alignment the prologue realigns rsp to (`and rsp, -realign`), when the call
        /// needs more than the 16 the stub is entered with; `Slot::Out` is then rsp-relative.
        realign: Option<u32>,
    },
    Thunk {
        entry_bytes: u32,
        stage_bytes: u32,
        /// Bytes `sub rsp` reserves below rbp.
        below_rbp: u32,
    },
}

/// The stack is reserved at most this many bytes at a time, touching each step (the
/// smallest guard page: one 4 KiB page, glibc's default for threads).
const PROBE_INTERVAL: i32 = 4096;

/// Bytes the stub keeps between rbp and the staging area: saved rbx and padding to 16.
const STUB_SAVED: u32 = 16;

/// The thunk's saved rbp, the top word of the model's callback header: rbp = entry sp - 8.
const SAVED_RBP: u32 = CallbackFrame::saved_frame_pointer_at(8).unsigned_abs();

impl Frame {
    fn stub(p: &Program) -> Result<Frame, BackendError> {
        if !p.out_bytes.is_multiple_of(16) {
            return Err(Invalid::AreaMisaligned { what: "outgoing area", bytes: p.out_bytes, align: 16 }.into());
        }
        if !p.stage_bytes.is_multiple_of(16) {
            return Err(Invalid::AreaMisaligned { what: "staging area", bytes: p.stage_bytes, align: 16 }.into());
        }
        let realign = (p.out_align > Target::X64_SYSV.stack_align()).then_some(p.out_align);
        if let Some(align) = realign {
            // `and rsp, -align` moves rsp down by up to align - 16 bytes without touching
            // them: beyond a page that could step over the guard page `sub_rsp` probes for.
            if !align.is_power_of_two() || align > PROBE_INTERVAL as u32 {
                return Err(Invalid::CallAlignment { align }.into());
            }
        }
        let f = Frame::Stub { out_bytes: p.out_bytes, stage_bytes: p.stage_bytes, realign };
        f.check_size(STUB_SAVED + p.out_bytes + p.stage_bytes)?;
        Ok(f)
    }

    fn thunk(p: &Program) -> Result<Frame, BackendError> {
        if p.out_bytes != 0 {
            return Err(Invalid::AreaSize { what: "outgoing area of a thunk", bytes: p.out_bytes }.into());
        }
        // rbp = entry sp - 8 is 16-aligned (the caller aligned sp before its call); the
        // model's header and save area already count the 8 bytes of the saved rbp.
        let below_rbp = (p.entry_bytes.max(SAVED_RBP) - SAVED_RBP + p.stage_bytes).div_ceil(16) * 16;
        let f = Frame::Thunk { entry_bytes: p.entry_bytes, stage_bytes: p.stage_bytes, below_rbp };
        f.check_size(below_rbp)?;
        Ok(f)
    }

    fn check_size(self, bytes: u32) -> Result<(), BackendError> {
        i32::try_from(bytes)
            .map(|_| ())
            .map_err(|_| Invalid::FrameTooLarge { what: "frame", bytes: bytes.into(), limit: i32::MAX as u64 }.into())
    }

    /// Bytes `sub rsp` reserves after the prologue's pushes.
    fn reserve(self) -> i32 {
        match self {
            Frame::Stub { out_bytes, stage_bytes, .. } => (STUB_SAVED - 8 + out_bytes + stage_bytes) as i32,
            Frame::Thunk { below_rbp, .. } => below_rbp as i32,
        }
    }

    /// Where a slot is: `[rsp + off]` for the outgoing area of a realigned stub, else
    /// `[rbp + disp]`.
    fn mem(self, slot: Slot) -> Result<Mem, BackendError> {
        match (self, slot) {
            (Frame::Stub { out_bytes, realign: Some(_), .. }, Slot::Out(off)) if off < out_bytes => {
                Ok(Mem { base: Base::Stack, disp: off as i32 })
            }
            _ => Ok(Mem { base: Base::Frame, disp: self.disp(slot)? }),
        }
    }

    /// `[rbp + disp]` of a slot (where it is before any realignment).
    fn disp(self, slot: Slot) -> Result<i32, BackendError> {
        let bad = || BackendError::from(Invalid::SlotOutsideFrame(slot));
        match (self, slot) {
            (Frame::Stub { out_bytes, stage_bytes, .. }, Slot::Out(off)) if off < out_bytes => {
                Ok(off as i32 - (STUB_SAVED + stage_bytes + out_bytes) as i32)
            }
            (Frame::Stub { stage_bytes, .. }, Slot::Stage(off)) if off < stage_bytes => {
                Ok(off as i32 - (STUB_SAVED + stage_bytes) as i32)
            }
            (Frame::Thunk { stage_bytes, below_rbp, .. }, Slot::Stage(off)) if off < stage_bytes => {
                Ok(off as i32 - below_rbp as i32)
            }
            // Below the entry sp the first 8 bytes hold the saved rbp.
            (Frame::Thunk { entry_bytes, .. }, Slot::Entry(off))
                if off >= 0 || (off < -(SAVED_RBP as i32) && off >= -(entry_bytes as i32)) =>
            {
                off.checked_add(SAVED_RBP as i32).ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }
}

/// The base register of a memory operand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    /// rbp: every slot.
    Frame,
    /// r10: memory reached through a pointer read from a slot.
    ScratchPtr,
    /// rsp: the outgoing area of a realigned stub.
    Stack,
}

/// A memory operand `[base + disp]`.
#[derive(Clone, Copy)]
struct Mem {
    base: Base,
    disp: i32,
}

impl Mem {
    fn at(self, extra: u32) -> Mem {
        Mem { base: self.base, disp: self.disp + extra as i32 }
    }
}

/// A register a value is loaded into or stored from.
#[derive(Clone, Copy)]
enum Reg {
    Gpr(u8),
    Xmm(u8),
}

fn reg_of(loc: Loc) -> Result<Reg, BackendError> {
    match loc {
        Loc::Gpr(g) if g.0 < 16 => Ok(Reg::Gpr(g.0)),
        Loc::Xmm(x) if x.0 < 16 => Ok(Reg::Xmm(x.0)),
        other => Err(Invalid::Location { loc: other, role: "a register operand" }.into()),
    }
}

/// A register of a return value, the offset of the bytes it carries and their number.
type RetPart = (Reg, u32, u32);

/// The registers of a return location and the bytes of the value each carries: the first
/// register holds bytes 0..8, the second the rest (the contract on [`RetLoc`]). At most two
/// parts, so no allocation: iterate with `.into_iter().flatten()`.
fn return_parts(ret: RetPlan) -> Result<[Option<RetPart>; 2], BackendError> {
    const RAX_R: Reg = Reg::Gpr(RAX);
    const RDX_R: Reg = Reg::Gpr(RDX);
    const XMM0: Reg = Reg::Xmm(0);
    const XMM1: Reg = Reg::Xmm(1);
    let size = ret.value.size(8);
    let pair = |first: Reg, second: Reg| {
        if size <= 8 || size > 16 {
            return Err(Invalid::ReturnLocation { loc: ret.loc, value: ret.value }.into());
        }
        Ok([Some((first, 0, 8)), Some((second, 8, size - 8))])
    };
    // One register for a value of up to 16 bytes: a record whose second eightbyte is padding
    // (NO_CLASS, psABI 3.2.3) comes back with its first eightbyte only.
    let single = |r: Reg| {
        if size == 0 || size > 16 {
            return Err(Invalid::ReturnLocation { loc: ret.loc, value: ret.value }.into());
        }
        Ok([Some((r, 0, size.min(8))), None])
    };
    match ret.loc {
        RetLoc::Void => Ok([None, None]),
        RetLoc::Gpr => single(RAX_R),
        RetLoc::Xmm0 => single(XMM0),
        // A 16-byte vector (SSE+SSEUP): the whole register.
        RetLoc::Xmm0Full if size == 16 => Ok([Some((XMM0, 0, 16)), None]),
        RetLoc::Xmm0Full => Err(Invalid::ReturnLocation { loc: ret.loc, value: ret.value }.into()),
        RetLoc::Xmm0Xmm1 => pair(XMM0, XMM1),
        RetLoc::RaxRdx => pair(RAX_R, RDX_R),
        RetLoc::RaxXmm0 => pair(RAX_R, XMM0),
        RetLoc::Xmm0Rax => pair(XMM0, RAX_R),
        RetLoc::EdxEax | RetLoc::St0 | RetLoc::Sret { .. } => {
            Err(Invalid::ReturnLocation { loc: ret.loc, value: ret.value }.into())
        }
    }
}

/// The assembling buffer of one stub or thunk: `dynasmrt::VecAssembler` (the same bytes and
/// the same errors for the same dynasm input) with its local and global labels kept in short
/// vectors instead of hash maps. A program defines a handful of label names (`ok`, `slow`,
/// `done`, ...) a few times each, so a linear search costs less than hashing, and nothing is
/// allocated per label. It makes no dynamic labels, so a dynamic label reference is an error.
struct CodeBuf {
    ops: Vec<u8>,
    base: usize,
    /// Every local or global label name seen, with how many times it was defined as a local
    /// label (its latest generation; a local label's generations count from 1).
    names: Vec<(&'static str, usize)>,
    /// Label definitions: (index in `names`, generation, offset); generation 0 is the global
    /// label of that name (dynasmrt's `StaticLabel`).
    defs: Vec<(usize, usize, AssemblyOffset)>,
    /// References to local and global labels, in emission order: the patch and the
    /// (index in `names`, generation) it targets.
    refs: Vec<(PatchLoc<X64Relocation>, usize, usize)>,
    /// The last error met while assembling, reported by `finalize` first.
    error: Option<DynasmError>,
}

/// Capacities that hold a typical stub without growing: its bytes, its label definitions
/// and its label references.
const CODE_CAPACITY: usize = 1024;
const LABEL_CAPACITY: usize = 32;

impl CodeBuf {
    fn new(base: usize) -> CodeBuf {
        CodeBuf {
            ops: Vec::with_capacity(CODE_CAPACITY),
            base,
            names: Vec::with_capacity(8),
            defs: Vec::with_capacity(LABEL_CAPACITY),
            refs: Vec::with_capacity(LABEL_CAPACITY),
            error: None,
        }
    }

    /// The index of `name` in `names`, added if new. Names are string literals, so equal
    /// names nearly always share their address; the comparison falls back to the text.
    fn name_index(&mut self, name: &'static str) -> usize {
        let found = self.names.iter().position(|&(n, _)| std::ptr::eq(n, name) || n == name);
        found.unwrap_or_else(|| {
            self.names.push((name, 0));
            self.names.len() - 1
        })
    }

    fn label_kind(&self, name: usize, generation: usize) -> (&'static str, bool) {
        (self.names[name].0, generation == 0)
    }

    /// Resolves every reference, as `VecAssembler::finalize` does: the error met while
    /// assembling, if any, then local and global references in emission order.
    fn finalize(mut self) -> Result<Vec<u8>, DynasmError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (patch, name, generation) in &self.refs {
            let (label, global) = self.label_kind(*name, *generation);
            let target = self.defs.iter().find(|&&(n, g, _)| n == *name && g == *generation).map(|&(_, _, at)| at);
            let Some(target) = target else {
                return Err(DynasmError::UnknownLabel(if global {
                    LabelKind::Global(label)
                } else {
                    LabelKind::Local(label)
                }));
            };
            if patch.patch(&mut self.ops[patch.range(0)], self.base, target.0).is_err() {
                return Err(DynasmError::ImpossibleRelocation(if global {
                    TargetKind::Global(label)
                } else {
                    TargetKind::Local(label)
                }));
            }
        }
        Ok(self.ops)
    }

    fn add_ref(
        &mut self,
        name: usize,
        generation: usize,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let patch = PatchLoc::new(self.offset(), target_offset, field_offset, ref_offset, kind);
        self.refs.push((patch, name, generation));
    }
}

impl Extend<u8> for CodeBuf {
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
    }
}

impl<'a> Extend<&'a u8> for CodeBuf {
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.ops.extend(iter)
    }
}

impl DynasmApi for CodeBuf {
    fn offset(&self) -> AssemblyOffset {
        AssemblyOffset(self.ops.len())
    }

    fn push(&mut self, byte: u8) {
        self.ops.push(byte);
    }

    fn align(&mut self, alignment: usize, with: u8) {
        let misalign = self.ops.len() % alignment;
        if misalign != 0 {
            self.ops.resize(self.ops.len() + alignment - misalign, with);
        }
    }
}

impl DynasmLabelApi for CodeBuf {
    type Relocation = X64Relocation;

    fn local_label(&mut self, name: &'static str) {
        let offset = self.offset();
        let name = self.name_index(name);
        self.names[name].1 += 1;
        self.defs.push((name, self.names[name].1, offset));
    }

    fn global_label(&mut self, name: &'static str) {
        let offset = self.offset();
        let index = self.name_index(name);
        if self.defs.iter().any(|&(n, g, _)| n == index && g == 0) {
            self.error = Some(DynasmError::DuplicateLabel(LabelKind::Global(name)));
        } else {
            self.defs.push((index, 0, offset));
        }
    }

    fn dynamic_label(&mut self, id: DynamicLabel) {
        self.error = Some(DynasmError::UnknownLabel(LabelKind::Dynamic(id)));
    }

    fn global_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let name = self.name_index(name);
        self.add_ref(name, 0, target_offset, field_offset, ref_offset, kind);
    }

    fn dynamic_relocation(
        &mut self,
        id: DynamicLabel,
        _target_offset: isize,
        _field_offset: u8,
        _ref_offset: u8,
        _kind: X64Relocation,
    ) {
        self.error = Some(DynasmError::UnknownLabel(LabelKind::Dynamic(id)));
    }

    /// `>name`: the next definition of `name`.
    fn forward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let name = self.name_index(name);
        let generation = self.names[name].1 + 1;
        self.add_ref(name, generation, target_offset, field_offset, ref_offset, kind);
    }

    /// `<name`: the latest definition of `name`.
    fn backward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: X64Relocation,
    ) {
        let index = self.name_index(name);
        match self.names[index].1 {
            0 => self.error = Some(DynasmError::UnknownLabel(LabelKind::Local(name))),
            generation => self.add_ref(index, generation, target_offset, field_offset, ref_offset, kind),
        }
    }

    fn value_relocation(&mut self, value: usize, field_offset: u8, ref_offset: u8, kind: X64Relocation) {
        let patch = PatchLoc::new(self.offset(), 0, field_offset, ref_offset, kind);
        if patch.patch(&mut self.ops[patch.range(0)], self.base, value).is_err() {
            self.error = Some(DynasmError::ImpossibleRelocation(TargetKind::Value(value)));
        }
    }
}

struct Emitter<'a> {
    ops: CodeBuf,
    frame: Frame,
    env: &'a CodeEnv,
    /// The Lua stack layout of a stub with inline steps.
    vm: Option<abi_model::lua::vm::LuaVm>,
    /// The prologue's ops, recorded as they are emitted.
    unwind: FrameUnwind,
}

impl<'a> Emitter<'a> {
    fn new(frame: Frame, base: u64, env: &'a CodeEnv) -> Emitter<'a> {
        Emitter { ops: CodeBuf::new(base as usize), frame, env, vm: None, unwind: FrameUnwind::new(Arch::X86_64) }
    }

    fn finish(self) -> Result<Code, BackendError> {
        let bytes = self.ops.finalize().map_err(|e| BackendError::Assembler { message: e.to_string() })?;
        Ok(Code { bytes, unwind: self.unwind })
    }

    /// Records what the instruction just emitted did to the frame.
    fn unwind_op(&mut self, op: FrameOp) {
        let end = self.ops.offset().0 as u32;
        self.unwind.record(end, op);
    }

    fn lower(&mut self, steps: &[Step]) -> Result<(), BackendError> {
        for (index, step) in steps.iter().enumerate() {
            self.lower_step(step).map_err(|e| e.at_step(index, step))?;
        }
        Ok(())
    }

    fn lower_step(&mut self, step: &Step) -> Result<(), BackendError> {
        match step {
            Step::CheckArgCount { expected } => self.emit_check_arg_count(*expected)?,
            Step::CallHelper { helper, args, ret_to } => self.emit_call_helper(*helper, args, *ret_to)?,
            Step::StoreAddr { of, to } => self.emit_store_addr(*of, *to)?,
            Step::CopyPtr { from, to } => self.emit_copy_ptr(*from, *to)?,
            Step::LoadArg { to, from, size, ext } => self.emit_load_arg(*to, *from, *size, *ext)?,
            Step::LoadPtr { to, from } => self.emit_load_ptr(*to, *from)?,
            Step::LoadAddr { to, of } => self.emit_load_addr(*to, *of)?,
            Step::SetAl(n) => self.emit_set_al(*n),
            Step::CallTarget { via, callee_pops } => self.emit_call_target(*via, *callee_pops)?,
            Step::SaveReturn { ret, to } => self.emit_save_return(*ret, *to)?,
            Step::Spill { from, size, to } => self.emit_spill(*from, *size, *to)?,
            Step::LoadReturn { ret, from } => self.emit_load_return(*ret, *from)?,
            Step::CheckArgCountInline { expected } => self.emit_check_arg_count_inline(*expected)?,
            Step::FuncAddrFromUpvalue { n, to } => self.emit_func_addr_from_upvalue(*n, *to)?,
            Step::ToCInline { l, lua_index, kind, to, slow } => {
                self.emit_to_c_inline(*l, *lua_index, *kind, *to, slow)?
            }
            Step::PushInline { l, from, kind, slow } => self.emit_push_inline(*l, *from, *kind, slow)?,
            Step::PtrInline { lua_index, to, strings, slow } => {
                self.emit_ptr_inline(*lua_index, *to, *strings, slow)?
            }
            Step::RecordInline { lua_index, arg, to, size, cdata, slow } => {
                self.emit_record_inline(*lua_index, *arg, *to, *size, *cdata, slow)?
            }
            Step::ErrnoRestoreInline { errno_at, prev_l_at } => {
                self.emit_errno_restore_inline(*errno_at, *prev_l_at)?
            }
            Step::AfterCallInline { errno_at, prev_l_at, slow } => {
                self.emit_after_call_inline(*errno_at, *prev_l_at, slow)?
            }
            Step::CallbackEnterInline { to, room, func, slow } => {
                self.emit_callback_enter_inline(*to, *room, *func, slow)?
            }
            Step::CallbackCallInline { l, nargs, result, status_at, slow } => {
                self.emit_callback_call_inline(*l, *nargs, *result, *status_at, slow)?
            }
            Step::PopInline { l } => self.emit_pop_inline(*l)?,
            Step::ReturnToLua { results } => self.emit_return_to_lua(*results)?,
            Step::ReturnToC { pops, ret_ptr } => self.emit_return_to_c(*pops, *ret_ptr)?,
        }
        Ok(())
    }

    fn slot(&self, slot: Slot) -> Result<Mem, BackendError> {
        self.frame.mem(slot)
    }

    fn is_stub(&self) -> bool {
        matches!(self.frame, Frame::Stub { .. })
    }

    // ---- prologues ---------------------------------------------------------------------

    /// `int stub(lua_State *L)`: L arrives where the model puts a lone pointer argument.
    fn stub_prologue(&mut self) -> Result<(), BackendError> {
        let l_in = stub_l_in()?;
        asm!(self.ops ; push frame);
        self.unwind_op(FrameOp::PushGpr(Gpr::BP));
        asm!(self.ops ; mov frame, rsp);
        self.unwind_op(FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        asm!(self.ops ; push lua_state);
        self.unwind_op(FrameOp::PushGpr(Gpr::BX));
        self.sub_rsp(self.frame.reserve());
        // The probing loop and the rest, as one allocation (the CFA is rbp's by now).
        self.unwind_op(FrameOp::Alloc(self.frame.reserve() as u32));
        if let Frame::Stub { realign: Some(align), .. } = self.frame {
            // rsp only goes down, so the outgoing area stays below the staging area.
            let mask = -(align as i32);
            match i8::try_from(mask) {
                Ok(m) => asm!(self.ops ; and rsp, BYTE m),
                Err(_) => asm!(self.ops ; and rsp, mask),
            }
            self.unwind_op(FrameOp::Realign(align));
        }
        asm!(self.ops
            ; mov lua_state, Rq(l_in)
        );
        Ok(())
    }

    /// Thunks keep nothing in callee-saved registers but rbp: every value lives in a slot.
    fn thunk_prologue(&mut self) {
        asm!(self.ops ; push frame);
        self.unwind_op(FrameOp::PushGpr(Gpr::BP));
        asm!(self.ops ; mov frame, rsp);
        self.unwind_op(FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        self.sub_rsp(self.frame.reserve());
        // The probing loop and the rest, as one allocation (the CFA is rbp's by now).
        self.unwind_op(FrameOp::Alloc(self.frame.reserve() as u32));
    }

    /// `sub rsp, n` with the one-byte immediate form when it fits. A frame larger than a
    /// page is reserved a page at a time, each page touched as rsp reaches it (what gcc's
    /// `-fstack-clash-protection` does): a frame as large as the module allows (1 MiB of
    /// arguments) must hit the guard page below a thread's stack, not jump over it and have
    /// its stores land in whatever is mapped below.
    fn sub_rsp(&mut self, n: i32) {
        let pages = n / PROBE_INTERVAL;
        if pages > 0 {
            asm!(self.ops
                ; mov Rd(R11), pages
                ; probe:
                ; sub rsp, PROBE_INTERVAL
                ; or QWORD [rsp], 0
                ; dec Rd(R11)
                ; jnz <probe
            );
        }
        let rest = n % PROBE_INTERVAL;
        match i8::try_from(rest) {
            Ok(0) if pages > 0 => {}
            Ok(small) => asm!(self.ops ; sub rsp, BYTE small),
            Err(_) => asm!(self.ops ; sub rsp, rest),
        }
    }

    // ---- steps -------------------------------------------------------------------------

    fn emit_check_arg_count(&mut self, expected: i32) -> Result<(), BackendError> {
        self.emit_call_helper(Helper::ArgCount, &[Operand::L], None)?;
        let Reg::Gpr(got) = helper_call(Helper::ArgCountError).arg(2)? else {
            return Err(
                Invalid::HelperPlan { helper: Helper::ArgCountError, needs: "its count in an XMM register" }.into()
            );
        };
        asm!(self.ops
            ; cmp eax, expected
            ; je BYTE >ok
            ; mov Rd(got), eax
        );
        // The count is moved first: the other operands never read eax.
        self.call_helper_with(Helper::ArgCountError, &[Operand::L, Operand::Imm(expected)], None)?;
        // luaffi_argcount_error raises a Lua error and never returns.
        asm!(self.ops
            ; ud2
            ; ok:
        );
        Ok(())
    }

    fn emit_call_helper(&mut self, helper: Helper, args: &[Operand], ret_to: Option<Slot>) -> Result<(), BackendError> {
        let params = helper.kinds().1.len();
        if args.len() != params {
            return Err(Invalid::HelperArity { helper, params, given: args.len() }.into());
        }
        self.call_helper_with(helper, args, ret_to)
    }

    /// Loads the leading `args` of a helper (any later ones are already in place), calls it
    /// and stores its result at `ret_to` with the helper's return width.
    fn call_helper_with(&mut self, helper: Helper, args: &[Operand], ret_to: Option<Slot>) -> Result<(), BackendError> {
        let call = helper_call(helper);
        if !call.in_registers {
            return Err(Invalid::HelperPlan { helper, needs: "stack arguments or al" }.into());
        }
        let (_, kinds) = helper.kinds();
        for (i, op) in args.iter().enumerate() {
            let to = call.arg(i)?;
            self.load_operand(*op, to, kinds[i])?;
        }
        let addr = self.env.helper(helper);
        if addr == 0 {
            return Err(Invalid::NoHelperAddress(helper).into());
        }
        asm!(self.ops
            ; mov rax, QWORD addr as i64
            ; call rax
        );
        if let Some(slot) = ret_to {
            if call.ret.value == ValueKind::Void {
                return Err(Invalid::ReturnLocation { loc: call.ret.loc, value: call.ret.value }.into());
            }
            let to = self.slot(slot)?;
            self.store_return_parts(call.ret, to)?;
        }
        Ok(())
    }

    fn emit_store_addr(&mut self, of: Slot, to: Slot) -> Result<(), BackendError> {
        let (of, to) = (self.slot(of)?, self.slot(to)?);
        mem!(self.ops, of, [lea scratch,], []);
        mem!(self.ops, to, [mov QWORD], [, scratch]);
        Ok(())
    }

    fn emit_copy_ptr(&mut self, from: Slot, to: Slot) -> Result<(), BackendError> {
        let (from, to) = (self.slot(from)?, self.slot(to)?);
        mem!(self.ops, from, [mov scratch,], []);
        mem!(self.ops, to, [mov QWORD], [, scratch]);
        Ok(())
    }

    fn emit_load_arg(&mut self, to: Loc, from: Slot, size: u32, ext: Ext) -> Result<(), BackendError> {
        let from = self.slot(from)?;
        match reg_of(to)? {
            Reg::Gpr(r) => self.load_gpr(r, from, size, ext),
            Reg::Xmm(x) => self.load_xmm(x, from, size),
        }
    }

    fn emit_load_ptr(&mut self, to: Loc, from: Slot) -> Result<(), BackendError> {
        let Reg::Gpr(r) = reg_of(to)? else {
            return Err(Invalid::Location { loc: to, role: "a pointer load" }.into());
        };
        let from = self.slot(from)?;
        mem!(self.ops, from, [mov Rq(r),], []);
        Ok(())
    }

    fn emit_load_addr(&mut self, to: Loc, of: Slot) -> Result<(), BackendError> {
        let Reg::Gpr(r) = reg_of(to)? else {
            return Err(Invalid::Location { loc: to, role: "an address load" }.into());
        };
        let of = self.slot(of)?;
        mem!(self.ops, of, [lea Rq(r),], []);
        Ok(())
    }

    fn emit_set_al(&mut self, n: u8) {
        // SysV varargs (psABI §3.5.7): al = an upper bound on the vector registers used.
        asm!(self.ops
            ; mov al, n as i8
        );
    }

    fn emit_call_target(&mut self, via: Slot, callee_pops: u32) -> Result<(), BackendError> {
        if !self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
        }
        let via = self.slot(via)?;
        mem!(self.ops, via, [call QWORD], []);
        if callee_pops > 0 {
            let pops = i32::try_from(callee_pops)
                .map_err(|_| Invalid::OutOfRange { what: "bytes the callee pops", value: i64::from(callee_pops) })?;
            self.sub_rsp(pops);
        }
        Ok(())
    }

    fn emit_save_return(&mut self, ret: RetPlan, to: Dest) -> Result<(), BackendError> {
        if let RetLoc::Sret { .. } = ret.loc {
            // The callee filled the buffer it was given and returned its address in rax;
            // copy it to `to` (a no-op copy when `to` is that buffer).
            let size = i32::try_from(ret.value.size(8))
                .map_err(|_| Invalid::OutOfRange { what: "return value bytes", value: i64::from(ret.value.size(8)) })?;
            match to {
                Dest::At(slot) => {
                    let m = self.slot(slot)?;
                    mem!(self.ops, m, [lea rdi,], []);
                }
                Dest::Through(slot) => {
                    let m = self.slot(slot)?;
                    mem!(self.ops, m, [mov rdi,], []);
                }
            }
            asm!(self.ops
                ; mov rsi, rax
                ; mov ecx, size
                ; rep movsb
            );
            return Ok(());
        }
        let to = self.dest(to)?;
        self.store_return_parts(ret, to)
    }

    fn emit_spill(&mut self, from: Loc, size: u32, to: Slot) -> Result<(), BackendError> {
        let to = self.slot(to)?;
        match reg_of(from)? {
            Reg::Gpr(r) => self.store_gpr(r, to, size),
            Reg::Xmm(x) => self.store_xmm(x, to, size),
        }
    }

    fn emit_load_return(&mut self, ret: RetPlan, from: Dest) -> Result<(), BackendError> {
        if let RetLoc::Sret { .. } = ret.loc {
            // A memory return is converted into the caller's buffer, not loaded into registers.
            return Err(Invalid::ReturnLocation { loc: ret.loc, value: ret.value }.into());
        }
        let from = self.dest(from)?;
        for (reg, offset, size) in return_parts(ret)?.into_iter().flatten() {
            match reg {
                // Small integers come back widened as the model's callee widens them.
                Reg::Gpr(r) => self.load_gpr(r, from.at(offset), size, ret.ext)?,
                Reg::Xmm(x) => self.load_xmm(x, from.at(offset), size)?,
            }
        }
        Ok(())
    }

    fn emit_return_to_lua(&mut self, results: u32) -> Result<(), BackendError> {
        if !self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
        }
        let results = results as i32;
        asm!(self.ops
            ; mov eax, results
            ; mov lua_state, [frame - 8]
            ; leave
            ; ret
        );
        Ok(())
    }

    fn emit_return_to_c(&mut self, pops: u32, ret_ptr: Option<Slot>) -> Result<(), BackendError> {
        if self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Stub).into());
        }
        if let Some(slot) = ret_ptr {
            // psABI §3.2.3: a MEMORY return hands the buffer's address back in rax.
            let m = self.slot(slot)?;
            mem!(self.ops, m, [mov rax,], []);
        }
        asm!(self.ops ; leave);
        if pops == 0 {
            asm!(self.ops ; ret);
        } else {
            let pops = i16::try_from(pops)
                .map_err(|_| Invalid::OutOfRange { what: "bytes popped by ret imm16", value: i64::from(pops) })?;
            asm!(self.ops ; ret pops);
        }
        Ok(())
    }

    // ---- operands and moves -----------------------------------------------------------

    /// The memory a [`Dest`] names; `Through` reads its pointer into r10.
    fn dest(&mut self, d: Dest) -> Result<Mem, BackendError> {
        match d {
            Dest::At(slot) => self.slot(slot),
            Dest::Through(slot) => {
                let m = self.slot(slot)?;
                mem!(self.ops, m, [mov scratch_ptr,], []);
                Ok(Mem { base: Base::ScratchPtr, disp: 0 })
            }
        }
    }

    /// Stores every register part of a return value at `to`, each with its exact size.
    fn store_return_parts(&mut self, ret: RetPlan, to: Mem) -> Result<(), BackendError> {
        for (reg, offset, size) in return_parts(ret)?.into_iter().flatten() {
            match reg {
                Reg::Gpr(r) => self.store_gpr(r, to.at(offset), size)?,
                Reg::Xmm(x) => self.store_xmm(x, to.at(offset), size)?,
            }
        }
        Ok(())
    }

    /// Puts one helper argument into `to`, a parameter of kind `param`.
    fn load_operand(&mut self, op: Operand, to: Reg, param: ValueKind) -> Result<(), BackendError> {
        let wide = param.size(8) == 8;
        match (op, to) {
            (Operand::L, Reg::Gpr(r)) => {
                if !self.is_stub() {
                    // A thunk has no L of its own: it reads the one luaffi_callback_enter returned.
                    return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
                }
                asm!(self.ops ; mov Rq(r), lua_state);
            }
            (Operand::Imm(v), Reg::Gpr(r)) if wide => asm!(self.ops ; mov Rq(r), v),
            (Operand::Imm(v), Reg::Gpr(r)) => asm!(self.ops ; mov Rd(r), v),
            (Operand::Ctype(c), Reg::Gpr(r)) => {
                let v = self.env.ctype(c) as i64;
                asm!(self.ops ; mov Rq(r), QWORD v);
            }
            (Operand::CallbackData, Reg::Gpr(r)) => {
                let v = self.env.callback_data as i64;
                asm!(self.ops ; mov Rq(r), QWORD v);
            }
            (Operand::Addr(slot), Reg::Gpr(r)) => {
                let m = self.slot(slot)?;
                mem!(self.ops, m, [lea Rq(r),], []);
            }
            (Operand::PtrAt(slot), Reg::Gpr(r)) => {
                let m = self.slot(slot)?;
                mem!(self.ops, m, [mov Rq(r),], []);
            }
            (Operand::Value { at, kind }, Reg::Gpr(r)) => {
                let m = self.slot(at)?;
                // Widen bool/char/short to the parameter's 32 bits by their signedness; a
                // value wider than the parameter gives its low bytes.
                let size = match kind {
                    ValueKind::Bool | ValueKind::Int { .. } | ValueKind::Pointer => kind.size(8).min(param.size(8)),
                    _ => return Err(Invalid::Operand { operand: op, param }.into()),
                };
                self.load_gpr(r, m, size, Ext::widening(kind))?;
            }
            (Operand::Value { at, kind }, Reg::Xmm(x))
                if kind == param && matches!(kind, ValueKind::F32 | ValueKind::F64) =>
            {
                let m = self.slot(at)?;
                self.load_xmm(x, m, kind.size(8))?;
            }
            (operand, _) => return Err(Invalid::Operand { operand, param }.into()),
        }
        Ok(())
    }

    /// Loads `size` bytes at `m` into GPR `r`; 1- and 2-byte values widened to 32 bits as
    /// `ext` says (zero when `Ext::None`); odd sizes are assembled without reading past them.
    fn load_gpr(&mut self, r: u8, m: Mem, size: u32, ext: Ext) -> Result<(), BackendError> {
        let signed = ext == Ext::Sign;
        match size {
            1 if signed => mem!(self.ops, m, [movsx Rd(r), BYTE], []),
            1 => mem!(self.ops, m, [movzx Rd(r), BYTE], []),
            2 if signed => mem!(self.ops, m, [movsx Rd(r), WORD], []),
            2 => mem!(self.ops, m, [movzx Rd(r), WORD], []),
            4 => mem!(self.ops, m, [mov Rd(r), DWORD], []),
            8 => mem!(self.ops, m, [mov Rq(r), QWORD], []),
            3 | 5..=7 => {
                if r == R11 {
                    return Err(Invalid::Width { bytes: size, loc: Loc::Gpr(Gpr(r)) }.into());
                }
                // The largest power of two first, then the rest shifted into place.
                let low = if size > 4 { 4 } else { 2 };
                self.load_gpr(r, m, low, Ext::Zero)?;
                let mut done = low;
                while done < size {
                    let chunk = if size - done >= 2 { 2 } else { 1 };
                    self.load_gpr(R11, m.at(done), chunk, Ext::Zero)?;
                    let shift = (done * 8) as i8;
                    asm!(self.ops
                        ; shl scratch, shift
                        ; or Rq(r), scratch
                    );
                    done += chunk;
                }
            }
            other => return Err(Invalid::Width { bytes: other, loc: Loc::Gpr(Gpr(r)) }.into()),
        }
        Ok(())
    }

    /// Stores the low `size` bytes of GPR `r` at `m`, never writing past them.
    fn store_gpr(&mut self, r: u8, m: Mem, size: u32) -> Result<(), BackendError> {
        match size {
            1 => mem!(self.ops, m, [mov BYTE], [, Rb(r)]),
            2 => mem!(self.ops, m, [mov WORD], [, Rw(r)]),
            4 => mem!(self.ops, m, [mov DWORD], [, Rd(r)]),
            8 => mem!(self.ops, m, [mov QWORD], [, Rq(r)]),
            3 | 5..=7 => {
                if r != R11 {
                    asm!(self.ops ; mov scratch, Rq(r));
                }
                let mut done = 0;
                while done < size {
                    let chunk = match size - done {
                        n if n >= 4 => 4,
                        n if n >= 2 => 2,
                        _ => 1,
                    };
                    self.store_gpr(R11, m.at(done), chunk)?;
                    done += chunk;
                    if done < size {
                        let shift = (chunk * 8) as i8;
                        asm!(self.ops ; shr scratch, shift);
                    }
                }
            }
            other => return Err(Invalid::Width { bytes: other, loc: Loc::Gpr(Gpr(r)) }.into()),
        }
        Ok(())
    }

    fn load_xmm(&mut self, x: u8, m: Mem, size: u32) -> Result<(), BackendError> {
        match size {
            4 => mem!(self.ops, m, [movss Rx(x), DWORD], []),
            8 => mem!(self.ops, m, [movsd Rx(x), QWORD], []),
            // A 16-byte vector (SSE+SSEUP); staging slots are 8-aligned.
            16 => mem!(self.ops, m, [movups Rx(x), OWORD], []),
            1..=7 => {
                self.load_gpr(R11, m, size, Ext::Zero)
                    .map_err(|_| Invalid::Width { bytes: size, loc: Loc::Xmm(Xmm(x)) })?;
                asm!(self.ops ; movq Rx(x), scratch);
            }
            other => return Err(Invalid::Width { bytes: other, loc: Loc::Xmm(Xmm(x)) }.into()),
        }
        Ok(())
    }

    fn store_xmm(&mut self, x: u8, m: Mem, size: u32) -> Result<(), BackendError> {
        match size {
            4 => mem!(self.ops, m, [movss DWORD], [, Rx(x)]),
            8 => mem!(self.ops, m, [movsd QWORD], [, Rx(x)]),
            16 => mem!(self.ops, m, [movups OWORD], [, Rx(x)]),
            1..=7 => {
                asm!(self.ops ; movq scratch, Rx(x));
                self.store_gpr(R11, m, size)?;
            }
            other => return Err(Invalid::Width { bytes: other, loc: Loc::Xmm(Xmm(x)) }.into()),
        }
        Ok(())
    }
}

/// The most parameters a helper has (`CallbackPcall`: `lua_pcallk`'s six).
const MAX_HELPER_ARGS: usize = 6;

/// What a call of a helper needs of its plan on x86-64 System V: the register of each
/// argument and the return plan.
#[derive(Clone, Copy)]
struct HelperCall {
    /// Every argument in registers and no `al` (what `call_helper_with` lowers).
    in_registers: bool,
    /// Argument `i`'s register, when it takes exactly one.
    args: [Option<Reg>; MAX_HELPER_ARGS],
    ret: RetPlan,
}

impl HelperCall {
    fn of(helper: Helper) -> HelperCall {
        let plan = helper.plan(Target::X64_SYSV);
        let mut args = [None; MAX_HELPER_ARGS];
        for (i, a) in args.iter_mut().enumerate() {
            *a = single_loc(&plan, i).ok();
        }
        let in_registers = plan.frame_bytes() == 0 && plan.al.is_none() && plan.args.len() <= MAX_HELPER_ARGS;
        HelperCall { in_registers, args, ret: plan.ret }
    }

    fn arg(&self, i: usize) -> Result<Reg, BackendError> {
        self.args.get(i).copied().flatten().ok_or_else(|| Invalid::ArgNotInOneRegister { index: i }.into())
    }
}

/// Every helper's [`HelperCall`], indexed by [`Helper::id`]: planned once per process (a stub
/// calls up to a dozen helpers and their plans never change). Plain data, no heap: the
/// module may be unloaded with the process still running.
fn helper_call(helper: Helper) -> &'static HelperCall {
    static CALLS: OnceLock<[HelperCall; Helper::ALL.len()]> = OnceLock::new();
    &CALLS.get_or_init(|| std::array::from_fn(|i| HelperCall::of(Helper::ALL[i])))[helper.id()]
}

/// The GPR a stub (`int stub(lua_State *L)`) receives L in, as the model says
/// ([`lua_state_at_entry`]), asked once per process.
fn stub_l_in() -> Result<u8, BackendError> {
    static L_IN: OnceLock<Loc> = OnceLock::new();
    match reg_of(*L_IN.get_or_init(|| lua_state_at_entry(Target::X64_SYSV)))? {
        Reg::Gpr(r) => Ok(r),
        Reg::Xmm(x) => Err(Invalid::Location { loc: Loc::Xmm(Xmm(x)), role: "the lua_State *" }.into()),
    }
}

/// The one register argument `i` of `plan` occupies.
fn single_loc(plan: &CallPlan, i: usize) -> Result<Reg, BackendError> {
    match plan.args.get(i).map(|a| &a.pass) {
        Some(ArgPass::Direct(parts)) if parts.len() == 1 => reg_of(parts[0].loc),
        _ => Err(Invalid::ArgNotInOneRegister { index: i }.into()),
    }
}

mod inline;

#[cfg(test)]
mod code_buf_tests {
    use super::*;
    use dynasmrt::VecAssembler;

    /// Local labels reused, referenced forward and backward, short and long jumps, a global
    /// label and an absolute address: everything a step may use.
    fn labels<A: DynasmLabelApi<Relocation = X64Relocation>>(ops: &mut A) {
        dynasm!(ops
            ; .arch x64
            ; jmp >done
            ; done:
            ; je BYTE <done
            ; jne >done
            ; mov rax, QWORD 0x1234_5678_9abc
            ; done:
            ; jmp ->exit
            ; nop
            ; ->exit:
            ; jmp <done
            ; ret
        );
    }

    #[test]
    fn code_buf_assembles_what_vec_assembler_does() {
        let mut reference = VecAssembler::<X64Relocation>::new(0x10_0000);
        labels(&mut reference);
        let mut ours = CodeBuf::new(0x10_0000);
        labels(&mut ours);
        assert_eq!(ours.finalize(), reference.finalize());
    }

    #[test]
    fn code_buf_reports_unknown_labels_as_vec_assembler_does() {
        fn forward<A: DynasmLabelApi<Relocation = X64Relocation>>(ops: &mut A) {
            dynasm!(ops ; .arch x64 ; jmp >nowhere ; ret);
        }
        fn backward<A: DynasmLabelApi<Relocation = X64Relocation>>(ops: &mut A) {
            dynasm!(ops ; .arch x64 ; jmp <nowhere ; ret);
        }
        let mut reference = VecAssembler::<X64Relocation>::new(0);
        let mut ours = CodeBuf::new(0);
        forward(&mut reference);
        forward(&mut ours);
        assert_eq!(ours.finalize(), reference.finalize());
        let mut reference = VecAssembler::<X64Relocation>::new(0);
        let mut ours = CodeBuf::new(0);
        backward(&mut reference);
        backward(&mut ours);
        let expected = reference.finalize();
        assert_eq!(expected, Err(DynasmError::UnknownLabel(LabelKind::Local("nowhere"))));
        assert_eq!(ours.finalize(), expected);
    }
}

#[cfg(test)]
mod tests;
