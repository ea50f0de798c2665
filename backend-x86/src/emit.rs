//! One `emit_<step>` function per [`Step`]; the prologues and epilogues that frame them.

// dynasm! expands dynamic registers (`Rd(r)`) to `r.into()`, which clippy flags.
#![allow(clippy::useless_conversion)]

use crate::frame::{Base, Frame, Mem, SAVED_EBP};
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{Dest, Operand, Program, Slot, Step};
use abi_model::lua::vm::LuaVm;
use abi_model::lua::{lua_state_at_entry, BackendError, Code, CodeEnv, Invalid, ProgramKind};
use abi_model::unwind::{FrameOp, FrameUnwind};
use abi_model::{ArgPass, Ext, Gpr, Loc, Os, RetLoc, RetPlan, Target, ValueKind};
use dynasmrt::x86::X86Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};

/// The assembler with the registers the code keeps live named by role.
macro_rules! asm {
    ($ops:expr; $($t:tt)*) => {
        dynasm!($ops
            ; .arch x86
            ; .alias lua_state, ebx
            ; .alias frame, ebp
            ; .alias scratch, eax
            ; .alias through, ecx
            ; .alias lua_slot, edx
            ; $($t)*
        )
    };
}

/// Emits `before [mem] after`, with the shortest displacement that encodes it.
macro_rules! mem {
    ($ops:expr, $m:expr, [$($before:tt)*], [$($after:tt)*]) => {{
        let m: Mem = $m;
        match (m.base, m.disp, i8::try_from(m.disp)) {
            (Base::Esp, 0, _) => asm!($ops ; $($before)* [esp] $($after)*),
            (Base::Esp, _, Ok(d)) => asm!($ops ; $($before)* [BYTE esp + d] $($after)*),
            (Base::Esp, d, Err(_)) => asm!($ops ; $($before)* [esp + d] $($after)*),
            (Base::Ebp, _, Ok(d)) => asm!($ops ; $($before)* [BYTE frame + d] $($after)*),
            (Base::Ebp, d, Err(_)) => asm!($ops ; $($before)* [frame + d] $($after)*),
            (Base::Ecx, 0, _) => asm!($ops ; $($before)* [through] $($after)*),
            (Base::Ecx, _, Ok(d)) => asm!($ops ; $($before)* [BYTE through + d] $($after)*),
            (Base::Ecx, d, Err(_)) => asm!($ops ; $($before)* [through + d] $($after)*),
            (Base::Edx, 0, _) => asm!($ops ; $($before)* [lua_slot] $($after)*),
            (Base::Edx, _, Ok(d)) => asm!($ops ; $($before)* [BYTE lua_slot + d] $($after)*),
            (Base::Edx, d, Err(_)) => asm!($ops ; $($before)* [lua_slot + d] $($after)*),
            (Base::Ebx, 0, _) => asm!($ops ; $($before)* [lua_state] $($after)*),
            (Base::Ebx, _, Ok(d)) => asm!($ops ; $($before)* [BYTE lua_state + d] $($after)*),
            (Base::Ebx, d, Err(_)) => asm!($ops ; $($before)* [lua_state + d] $($after)*),
        }
    }};
}

mod inline;

/// Register numbers as the ISA encodes them (dynasm's `Rd(n)`).
const ECX: u8 = 1;
const EDX: u8 = 2;

/// Windows commits stack pages one guard page at a time: a frame that moves esp by more
/// than a page must touch each page in order (Microsoft, "__chkstk Routine").
const WIN32_PAGE: u32 = 4096;

/// Assembles the stub for `program`.
pub(crate) fn stub(target: Target, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
    let align = target.stack_align();
    let mut e = Emitter::new(target, Frame::stub(program, align)?, base, env)?;
    e.vm = program.vm;
    e.stub_prologue(align)?;
    e.lower(&program.steps)?;
    e.finish()
}

/// Assembles the thunk for `program`.
pub(crate) fn thunk(target: Target, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
    let mut e = Emitter::new(target, Frame::thunk(program)?, base, env)?;
    e.vm = program.vm;
    e.thunk_prologue(program.entry_bytes);
    e.lower(&program.steps)?;
    e.finish()
}

/// Where a helper argument comes from.
#[derive(Clone, Copy)]
enum HelperArg<'a> {
    /// An operand of the program.
    Op(&'a Operand),
    /// The value in eax (the argument count, for the error helper).
    Eax,
}

/// Whether a helper call comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Returns {
    Yes,
    Never,
}

struct Emitter<'a> {
    ops: VecAssembler<X86Relocation>,
    target: Target,
    frame: Frame,
    env: &'a CodeEnv,
    /// Bytes of a helper's argument area currently below the frame's esp.
    shift: u32,
    /// The Lua stack layout the inline steps read and write.
    vm: Option<LuaVm>,
    /// The prologue's ops, recorded as they are emitted.
    unwind: FrameUnwind,
}

fn address(what: &'static str, value: u64) -> Result<i32, BackendError> {
    u32::try_from(value).map(|v| v as i32).map_err(|_| Invalid::AddressTooWide { what, value }.into())
}

impl<'a> Emitter<'a> {
    fn new(target: Target, frame: Frame, base: u64, env: &'a CodeEnv) -> Result<Emitter<'a>, BackendError> {
        if target.arch != abi_model::Arch::X86 {
            return Err(Invalid::WrongTarget(target).into());
        }
        let base = address("code base", base)? as u32 as usize;
        let unwind = FrameUnwind::new(target.arch);
        Ok(Emitter { ops: VecAssembler::new(base), target, frame, env, shift: 0, vm: None, unwind })
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

    fn mem(&self, slot: Slot, bytes: u32) -> Result<Mem, BackendError> {
        self.frame.mem(slot, bytes, self.shift)
    }

    fn is_stub(&self) -> bool {
        matches!(self.frame, Frame::Stub { .. })
    }

    /// `sub esp, bytes`, touching every page on the way down on Windows.
    fn reserve_stack(&mut self, bytes: u32) {
        let mut left = bytes;
        if self.target.os == Os::Windows {
            while left > WIN32_PAGE {
                self.sub_esp(WIN32_PAGE);
                asm!(self.ops ; test [esp], esp);
                left -= WIN32_PAGE;
            }
        }
        self.sub_esp(left);
        if bytes > 0 {
            // The probed pages and the rest, as one allocation (the CFA is ebp's by now).
            self.unwind_op(FrameOp::Alloc(bytes));
        }
    }

    /// `sub esp, n` in its short form when n fits a byte; nothing for 0.
    fn sub_esp(&mut self, n: u32) {
        match i8::try_from(n) {
            Ok(0) => {}
            Ok(b) => asm!(self.ops ; sub esp, BYTE b),
            Err(_) => asm!(self.ops ; sub esp, n as i32),
        }
    }

    /// `add esp, n` in its short form when n fits a byte; nothing for 0.
    fn add_esp(&mut self, n: u32) {
        match i8::try_from(n) {
            Ok(0) => {}
            Ok(b) => asm!(self.ops ; add esp, BYTE b),
            Err(_) => asm!(self.ops ; add esp, n as i32),
        }
    }

    fn stub_prologue(&mut self, align: u32) -> Result<(), BackendError> {
        self.push_frame_pointer();
        asm!(self.ops ; push lua_state);
        self.unwind_op(FrameOp::PushGpr(Gpr::BX));
        // L arrives where the model says: on the stack above the return address (cdecl).
        let l_in = match lua_state_at_entry(self.target) {
            Loc::Stack { offset } => {
                Mem { base: Base::Ebp, disp: (SAVED_EBP + self.target.return_address_size() + offset) as i32 }
            }
            other => return Err(Invalid::Location { loc: other, role: "the lua_State *" }.into()),
        };
        mem!(self.ops, l_in, [mov lua_state,], []);
        // A gcc-built Lua calls us with esp 16-aligned (i386 psABI 2.2.2), but nothing obliges
        // a host to; realigning costs one instruction and makes every call below aligned.
        match align {
            4 => {}
            16 => {
                asm!(self.ops ; and esp, -16);
                self.unwind_op(FrameOp::Realign(16));
            }
            other => return Err(Invalid::OutOfRange { what: "stack alignment", value: i64::from(other) }.into()),
        }
        self.reserve_stack(self.frame.reserve());
        Ok(())
    }

    /// `push ebp; mov ebp, esp`, the start of every prologue.
    fn push_frame_pointer(&mut self) {
        asm!(self.ops ; push frame);
        self.unwind_op(FrameOp::PushGpr(Gpr::BP));
        asm!(self.ops ; mov frame, esp);
        self.unwind_op(FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
    }

    fn thunk_prologue(&mut self, entry_bytes: u32) {
        self.push_frame_pointer();
        // The model's header and save area below the return address; the spills land there.
        self.reserve_stack(entry_bytes - SAVED_EBP);
        // A Win32 caller guarantees only 4-byte alignment, and an i386 Linux caller's 16 is a
        // gcc convention (psABI 2.2.2) hand-written callers may not keep; gcc-built (and
        // Rust-built) helpers on Linux assume 16 at their call. Realign; ebp restores esp.
        asm!(self.ops ; and esp, -16);
        self.unwind_op(FrameOp::Realign(16));
        self.reserve_stack(self.frame.reserve());
    }

    fn lower(&mut self, steps: &[Step]) -> Result<(), BackendError> {
        if !matches!(steps.last(), Some(Step::ReturnToLua { .. } | Step::ReturnToC { .. })) {
            return Err(Invalid::NoFinalReturn.into());
        }
        for (index, step) in steps.iter().enumerate() {
            self.lower_step(step).map_err(|e| e.at_step(index, step))?;
        }
        Ok(())
    }

    /// Lowers one step: every [`Step`] has its `emit_` function, so this match needs no
    /// other arm.
    fn lower_step(&mut self, step: &Step) -> Result<(), BackendError> {
        match step {
            Step::CheckArgCount { expected } => self.emit_check_arg_count(*expected),
            Step::CallHelper { helper, args, ret_to } => self.emit_call_helper(*helper, args, *ret_to),
            Step::StoreAddr { of, to } => self.emit_store_addr(*of, *to),
            Step::CopyPtr { from, to } => self.emit_copy_ptr(*from, *to),
            Step::LoadArg { to, from, size, ext } => self.emit_load_arg(*to, *from, *size, *ext),
            Step::LoadPtr { to, from } => self.emit_load_ptr(*to, *from),
            Step::LoadAddr { to, of } => self.emit_load_addr(*to, *of),
            Step::SetAl(n) => self.emit_set_al(*n),
            Step::CallTarget { via, callee_pops } => self.emit_call_target(*via, *callee_pops),
            Step::SaveReturn { ret, to } => self.emit_save_return(*ret, *to),
            Step::Spill { from, size, to } => self.emit_spill(*from, *size, *to),
            Step::LoadReturn { ret, from } => self.emit_load_return(*ret, *from),
            Step::CheckArgCountInline { expected } => self.emit_check_arg_count_inline(*expected),
            Step::FuncAddrFromUpvalue { n, to } => self.emit_func_addr_from_upvalue(*n, *to),
            Step::ToCInline { l, lua_index, kind, to, slow } => self.emit_to_c_inline(*l, *lua_index, *kind, *to, slow),
            Step::PtrInline { lua_index, to, strings, slow } => self.emit_ptr_inline(*lua_index, *to, *strings, slow),
            Step::RecordInline { lua_index, arg, to, size, cdata, slow } => {
                self.emit_record_inline(*lua_index, *arg, *to, *size, *cdata, slow)
            }
            Step::PushInline { l, from, kind, slow } => self.emit_push_inline(*l, *from, *kind, slow),
            Step::ErrnoRestoreInline { errno_at, prev_l_at } => self.emit_errno_restore_inline(*errno_at, *prev_l_at),
            Step::AfterCallInline { errno_at, prev_l_at, slow } => {
                self.emit_after_call_inline(*errno_at, *prev_l_at, slow)
            }
            Step::CallbackEnterInline { to, room, func, slow } => {
                self.emit_callback_enter_inline(*to, *room, *func, slow)
            }
            Step::CallbackCallInline { l, nargs, result, status_at, slow } => {
                self.emit_callback_call_inline(*l, *nargs, *result, *status_at, slow)
            }
            Step::PopInline { l } => self.emit_pop_inline(*l),
            Step::ReturnToLua { results } => self.emit_return_to_lua(*results),
            Step::ReturnToC { pops, ret_ptr } => self.emit_return_to_c(*pops, *ret_ptr),
        }
    }

    fn emit_check_arg_count(&mut self, expected: i32) -> Result<(), BackendError> {
        self.helper_call(Helper::ArgCount, &[HelperArg::Op(&Operand::L)], Returns::Yes)?;
        asm!(self.ops
            ; cmp eax, expected
            ; je >counted
        );
        let got_expected = Operand::Imm(expected);
        let args = [HelperArg::Op(&Operand::L), HelperArg::Op(&got_expected), HelperArg::Eax];
        self.helper_call(Helper::ArgCountError, &args, Returns::Never)?;
        asm!(self.ops
            ; counted:
        );
        Ok(())
    }

    fn emit_call_helper(&mut self, helper: Helper, args: &[Operand], ret_to: Option<Slot>) -> Result<(), BackendError> {
        let args: Vec<HelperArg> = args.iter().map(HelperArg::Op).collect();
        let ret = self.helper_call(helper, &args, Returns::Yes)?;
        match (ret_to, ret.loc) {
            (None, _) => Ok(()),
            (Some(_), RetLoc::Void) => Err(Invalid::ReturnLocation { loc: RetLoc::Void, value: ret.value }.into()),
            (Some(slot), _) => {
                let m = self.mem(slot, ret.value.size(4))?;
                self.store_return(ret, m)
            }
        }
    }

    /// Calls `helper` as its own cdecl plan says: its argument area is reserved below the
    /// frame for this call only. Returns the helper's return plan.
    fn helper_call(&mut self, helper: Helper, args: &[HelperArg], returns: Returns) -> Result<RetPlan, BackendError> {
        let plan = helper.plan(self.target);
        if args.len() != plan.args.len() {
            return Err(Invalid::HelperArity { helper, params: plan.args.len(), given: args.len() }.into());
        }
        let addr = match self.env.helper(helper) {
            0 => return Err(Invalid::NoHelperAddress(helper).into()),
            a => address(helper.name(), a)?,
        };
        let area = plan.frame_bytes();
        self.reserve_stack(area);
        self.shift = area;
        // A value already in eax is stored first: the other operands use eax as scratch.
        let in_eax = args.iter().zip(&plan.args).filter(|(a, _)| matches!(a, HelperArg::Eax));
        let others = args.iter().zip(&plan.args).filter(|(a, _)| !matches!(a, HelperArg::Eax));
        for (arg, param) in in_eax.chain(others) {
            let (offset, size) = match &param.pass {
                ArgPass::Direct(parts) => match parts.as_slice() {
                    [p] => match p.loc {
                        Loc::Stack { offset } => (offset, p.size),
                        _ => return Err(Invalid::HelperPlan { helper, needs: "a register argument" }.into()),
                    },
                    _ => return Err(Invalid::HelperPlan { helper, needs: "a split argument" }.into()),
                },
                ArgPass::Indirect { .. } => {
                    return Err(Invalid::HelperPlan { helper, needs: "an argument by reference" }.into())
                }
            };
            let dst = Mem { base: Base::Esp, disp: offset as i32 };
            match arg {
                HelperArg::Eax => mem!(self.ops, dst, [mov], [, eax]),
                HelperArg::Op(op) => self.store_operand(op, param.value, size, dst)?,
            }
        }
        asm!(self.ops
            ; mov scratch, DWORD addr
            ; call scratch
        );
        match returns {
            Returns::Yes => {
                // cdecl helpers pop nothing; a callee-popped part would already be gone.
                self.add_esp(area.saturating_sub(plan.callee_pops));
            }
            Returns::Never => asm!(self.ops ; ud2),
        }
        self.shift = 0;
        Ok(plan.ret)
    }

    /// Stores one helper argument of kind `param` (`size` bytes) at `dst`.
    fn store_operand(&mut self, op: &Operand, param: ValueKind, size: u32, dst: Mem) -> Result<(), BackendError> {
        match *op {
            Operand::L => {
                if !self.is_stub() {
                    // A thunk has no incoming lua_State: it uses the one callback_enter returned.
                    return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
                }
                mem!(self.ops, dst, [mov], [, lua_state]);
            }
            Operand::Imm(i) => mem!(self.ops, dst, [mov DWORD], [, i]),
            Operand::Ctype(r) => {
                let c = address("a ctype constant", self.env.ctype(r))?;
                mem!(self.ops, dst, [mov DWORD], [, c]);
            }
            Operand::CallbackData => {
                let c = address("the callback data", self.env.callback_data)?;
                mem!(self.ops, dst, [mov DWORD], [, c]);
            }
            Operand::Value { at, kind } => self.copy_value(at, kind, param, size, dst)?,
            Operand::Addr(slot) => {
                let m = self.mem(slot, 0)?;
                mem!(self.ops, m, [lea scratch,], []);
                mem!(self.ops, dst, [mov], [, scratch]);
            }
            Operand::PtrAt(slot) => {
                let m = self.mem(slot, 4)?;
                mem!(self.ops, m, [mov scratch,], []);
                mem!(self.ops, dst, [mov], [, scratch]);
            }
        }
        Ok(())
    }

    /// Copies the value of `kind` at `at` to a helper parameter of kind `param`: integers
    /// narrower than 32 bits widened as the model's writers widen them ([`Ext::widening`]),
    /// everything else copied as it is.
    fn copy_value(
        &mut self,
        at: Slot,
        kind: ValueKind,
        param: ValueKind,
        size: u32,
        dst: Mem,
    ) -> Result<(), BackendError> {
        let src = self.mem(at, kind.size(4))?;
        let is_int = |k: ValueKind| matches!(k, ValueKind::Bool | ValueKind::Int { .. });
        match (kind, param) {
            (ValueKind::Bool | ValueKind::Int { size: 1 | 2, .. }, _) if is_int(param) && size == 4 => {
                match (kind.size(4), Ext::widening(kind)) {
                    (1, Ext::Sign) => mem!(self.ops, src, [movsx scratch, BYTE], []),
                    (1, _) => mem!(self.ops, src, [movzx scratch, BYTE], []),
                    (_, Ext::Sign) => mem!(self.ops, src, [movsx scratch, WORD], []),
                    _ => mem!(self.ops, src, [movzx scratch, WORD], []),
                }
            }
            (ValueKind::Int { size: 4, .. }, _) if is_int(param) && size == 4 => {
                mem!(self.ops, src, [mov scratch,], [])
            }
            (ValueKind::Pointer, ValueKind::Pointer) | (ValueKind::F32, ValueKind::F32) => {
                mem!(self.ops, src, [mov scratch,], [])
            }
            (ValueKind::Int { size: 8, .. }, ValueKind::Int { size: 8, .. }) | (ValueKind::F64, ValueKind::F64) => {
                mem!(self.ops, src, [mov scratch,], []);
                mem!(self.ops, dst, [mov], [, scratch]);
                mem!(self.ops, src.at(4), [mov scratch,], []);
                mem!(self.ops, dst.at(4), [mov], [, scratch]);
                return Ok(());
            }
            _ => return Err(Invalid::Kind { kind, role: "for a parameter of another class" }.into()),
        }
        mem!(self.ops, dst, [mov], [, scratch]);
        Ok(())
    }

    /// Stores a value returned in `ret.loc` to `m`: `size` bytes of eax, edx:eax, or st(0)
    /// popped with the value's width (the x87 stack is left empty, as the caller must).
    fn store_return(&mut self, ret: RetPlan, m: Mem) -> Result<(), BackendError> {
        let size = ret.value.size(4);
        match (ret.loc, size, ret.value) {
            (RetLoc::Void | RetLoc::Sret { .. }, _, _) => {}
            (RetLoc::Gpr, 1, _) => mem!(self.ops, m, [mov], [, al]),
            (RetLoc::Gpr, 2, _) => mem!(self.ops, m, [mov], [, ax]),
            (RetLoc::Gpr, 4, _) => mem!(self.ops, m, [mov], [, eax]),
            (RetLoc::EdxEax, 8, _) => {
                mem!(self.ops, m, [mov], [, eax]);
                mem!(self.ops, m.at(4), [mov], [, edx]);
            }
            // float / double, or (mingw) a struct whose gcc mode is SF/DF: its width.
            (RetLoc::St0, 4, _) => mem!(self.ops, m, [fstp DWORD], []),
            (RetLoc::St0, 8, _) => mem!(self.ops, m, [fstp QWORD], []),
            (loc, _, value) => return Err(Invalid::ReturnLocation { loc, value }.into()),
        }
        Ok(())
    }

    /// The memory a [`Dest`] names; `Through` reads the pointer into ecx first.
    fn dest_mem(&mut self, dest: Dest, bytes: u32) -> Result<Mem, BackendError> {
        match dest {
            Dest::At(slot) => self.mem(slot, bytes),
            Dest::Through(slot) => {
                let p = self.mem(slot, 4)?;
                mem!(self.ops, p, [mov through,], []);
                Ok(Mem { base: Base::Ecx, disp: 0 })
            }
        }
    }

    fn emit_store_addr(&mut self, of: Slot, to: Slot) -> Result<(), BackendError> {
        let (src, dst) = (self.mem(of, 0)?, self.mem(to, 4)?);
        mem!(self.ops, src, [lea scratch,], []);
        mem!(self.ops, dst, [mov], [, scratch]);
        Ok(())
    }

    fn emit_copy_ptr(&mut self, from: Slot, to: Slot) -> Result<(), BackendError> {
        let (src, dst) = (self.mem(from, 4)?, self.mem(to, 4)?);
        mem!(self.ops, src, [mov scratch,], []);
        mem!(self.ops, dst, [mov], [, scratch]);
        Ok(())
    }

    /// The only x86 argument registers are fastcall's ecx and edx and thiscall's ecx.
    fn argument_register(to: Loc) -> Result<u8, BackendError> {
        match to {
            Loc::Gpr(Gpr(r)) if r == ECX || r == EDX => Ok(r),
            other => Err(Invalid::Location { loc: other, role: "an x86-32 argument register" }.into()),
        }
    }

    fn emit_load_arg(&mut self, to: Loc, from: Slot, size: u32, ext: Ext) -> Result<(), BackendError> {
        let r = Self::argument_register(to)?;
        let m = self.mem(from, size)?;
        match (size, ext) {
            (1, Ext::Sign) => mem!(self.ops, m, [movsx Rd(r), BYTE], []),
            (1, Ext::Zero | Ext::None) => mem!(self.ops, m, [movzx Rd(r), BYTE], []),
            (2, Ext::Sign) => mem!(self.ops, m, [movsx Rd(r), WORD], []),
            (2, Ext::Zero | Ext::None) => mem!(self.ops, m, [movzx Rd(r), WORD], []),
            (4, _) => mem!(self.ops, m, [mov Rd(r),], []),
            _ => return Err(Invalid::Width { bytes: size, loc: to }.into()),
        }
        Ok(())
    }

    fn emit_load_ptr(&mut self, to: Loc, from: Slot) -> Result<(), BackendError> {
        let r = Self::argument_register(to)?;
        let m = self.mem(from, 4)?;
        mem!(self.ops, m, [mov Rd(r),], []);
        Ok(())
    }

    fn emit_load_addr(&mut self, to: Loc, of: Slot) -> Result<(), BackendError> {
        let r = Self::argument_register(to)?;
        let m = self.mem(of, 0)?;
        mem!(self.ops, m, [lea Rd(r),], []);
        Ok(())
    }

    fn emit_set_al(&mut self, _count: u8) -> Result<(), BackendError> {
        Err(Invalid::NotOnTarget("a vector register count in al").into())
    }

    fn emit_call_target(&mut self, via: Slot, callee_pops: u32) -> Result<(), BackendError> {
        if !self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
        }
        let m = self.mem(via, 4)?;
        mem!(self.ops, m, [call DWORD], []);
        // stdcall/fastcall/thiscall `ret n`, or the i386 Linux hidden pointer: the callee
        // took bytes of our outgoing area with it; put esp back where the frame is.
        self.sub_esp(callee_pops);
        Ok(())
    }

    fn emit_save_return(&mut self, ret: RetPlan, to: Dest) -> Result<(), BackendError> {
        let m = self.dest_mem(to, ret.value.size(4))?;
        self.store_return(ret, m)
    }

    fn emit_spill(&mut self, from: Loc, size: u32, to: Slot) -> Result<(), BackendError> {
        if self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Stub).into());
        }
        if size != 4 {
            return Err(Invalid::Width { bytes: size, loc: from }.into());
        }
        let r = Self::argument_register(from)?;
        let m = self.mem(to, size)?;
        mem!(self.ops, m, [mov], [, Rd(r)]);
        Ok(())
    }

    /// Loads the thunk's return value into `ret.loc`; small integers widened as the model's
    /// callee widens them (`ret.ext`).
    fn emit_load_return(&mut self, ret: RetPlan, from: Dest) -> Result<(), BackendError> {
        let size = ret.value.size(4);
        let m = self.dest_mem(from, size)?;
        let signed = ret.ext == Ext::Sign;
        match (ret.loc, size, ret.value) {
            (RetLoc::Void | RetLoc::Sret { .. }, _, _) => {}
            (RetLoc::Gpr, 1, _) if signed => mem!(self.ops, m, [movsx eax, BYTE], []),
            (RetLoc::Gpr, 1, _) => mem!(self.ops, m, [movzx eax, BYTE], []),
            (RetLoc::Gpr, 2, _) if signed => mem!(self.ops, m, [movsx eax, WORD], []),
            (RetLoc::Gpr, 2, _) => mem!(self.ops, m, [movzx eax, WORD], []),
            (RetLoc::Gpr, 4, _) => mem!(self.ops, m, [mov eax,], []),
            (RetLoc::EdxEax, 8, _) => {
                mem!(self.ops, m, [mov eax,], []);
                mem!(self.ops, m.at(4), [mov edx,], []);
            }
            (RetLoc::St0, 4, _) => mem!(self.ops, m, [fld DWORD], []),
            (RetLoc::St0, 8, _) => mem!(self.ops, m, [fld QWORD], []),
            (loc, _, value) => return Err(Invalid::ReturnLocation { loc, value }.into()),
        }
        Ok(())
    }

    fn emit_return_to_lua(&mut self, results: u32) -> Result<(), BackendError> {
        if !self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Thunk).into());
        }
        asm!(self.ops
            ; mov eax, results as i32
            ; lea esp, [frame - 4]
            ; pop lua_state
            ; pop frame
            ; ret
        );
        Ok(())
    }

    fn emit_return_to_c(&mut self, pops: u32, ret_ptr: Option<Slot>) -> Result<(), BackendError> {
        if self.is_stub() {
            return Err(Invalid::WrongProgramKind(ProgramKind::Stub).into());
        }
        let pops = u16::try_from(pops)
            .map_err(|_| Invalid::OutOfRange { what: "bytes popped by ret imm16", value: i64::from(pops) })?;
        if let Some(slot) = ret_ptr {
            // The hidden return pointer comes back in eax (i386 psABI 2.2.3; MSVC).
            let m = self.mem(slot, 4)?;
            mem!(self.ops, m, [mov eax,], []);
        }
        asm!(self.ops
            ; mov esp, frame
            ; pop frame
        );
        if pops > 0 {
            asm!(self.ops ; ret pops as i16);
        } else {
            asm!(self.ops ; ret);
        }
        Ok(())
    }
}
