//! Lowering: one `emit_<step>` function per [`Step`], in the frame of [`crate::frame`].
//!
//! Register roles: `rbx` = `L` (stubs), `rbp` = frame pointer, `rax` = helper address and
//! return value, `r10` = a pointer read from a slot for a store or load through it, `r11` =
//! scratch for memory-to-memory moves. `r10` and `r11` are volatile and never carry an
//! argument in the Microsoft convention, so no argument register is disturbed. The inline
//! steps ([`inline`]) also use rcx, rdx, xmm0 and xmm1, all volatile, before the argument
//! registers are loaded or after the call; in a thunk they keep `L` in `r11`.

// dynasm! expands every dynamic register `Rq(n)` to `n.into()`, a no-op on u8.
#![allow(clippy::useless_conversion)]

use crate::frame::{Frame, FrameKind, PAGE, STACK_ALIGN};
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{Dest, Operand, Program, Slot, Step};
use abi_model::lua::vm::LuaVm;
use abi_model::lua::{lua_state_at_entry, BackendError, Code, CodeEnv, Invalid};
use abi_model::plan::{Ext, Gpr, Loc, RetLoc, RetPlan, ValueKind, Xmm};
use abi_model::unwind::{FrameOp, FrameUnwind};
use abi_model::{Arch, Target};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

/// The one `dynasm!` wrapper: x64, with the registers the code keeps live named by role.
macro_rules! asm {
    ($ops:expr; $($t:tt)*) => {
        dynasm!($ops
            ; .arch x64
            ; .alias lua_state, rbx
            ; .alias frame_ptr, rbp
            ; .alias through, r10
            ; .alias scratch, r11
            ; $($t)*
        )
    };
}

/// One instruction with a `[base + disp]` operand, where `disp` names an `i32` variable:
/// encoded with an 8-bit displacement when the value fits (dynasm! gives every run-time
/// displacement 32 bits otherwise). Write the instruction as usual; the macro finds the
/// bracketed operand and adds the `BYTE` displacement hint to it.
macro_rules! asm_disp {
    (@scan $ops:expr, $d:ident, [$($pre:tt)*] [$($mem:tt)*] $($post:tt)*) => {
        match i8::try_from($d) {
            Ok($d) => asm!($ops; $($pre)* [BYTE $($mem)*] $($post)*),
            Err(_) => asm!($ops; $($pre)* [$($mem)*] $($post)*),
        }
    };
    (@scan $ops:expr, $d:ident, [$($pre:tt)*] $next:tt $($rest:tt)*) => {
        asm_disp!(@scan $ops, $d, [$($pre)* $next] $($rest)*)
    };
    ($ops:expr, $d:ident; $($t:tt)*) => {
        asm_disp!(@scan $ops, $d, [] $($t)*)
    };
}

// After the macros: the inline steps use them.
mod inline;

const RAX: u8 = 0;
const R10: u8 = 10;
const R11: u8 = 11;

fn is_float(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::F32 | ValueKind::F64)
}

/// A source for a helper argument: an operand of the program, or the 32-bit result of the
/// previous helper call (the argument count, for `luaffi_argcount_error`).
#[derive(Clone, Copy, Debug)]
enum Src {
    Op(Operand),
    PreviousResult32,
}

/// The argument-count check's out-of-line failure path, emitted after the epilogue.
struct ArgCountFailure {
    label: DynamicLabel,
    expected: i32,
    count: CountIn,
}

/// Where an argument-count failure path finds the count of Lua arguments.
#[derive(Clone, Copy, Debug)]
enum CountIn {
    /// eax, as `luaffi_gettop` returned it.
    Eax,
    /// rax holds `L->top` minus the called function's slot, in bytes (the inline check):
    /// the count is `(rax >> shift) - 1`.
    SlotBytes { shift: i8 },
}

pub(crate) struct Emitter<'a> {
    ops: VecAssembler<X64Relocation>,
    env: &'a CodeEnv,
    frame: Frame,
    /// Bytes currently reserved below the body stack pointer for a helper call.
    below: u32,
    failures: Vec<ArgCountFailure>,
    /// The Lua stack layout the inline steps read and write.
    vm: Option<LuaVm>,
    /// The prologue's ops, recorded as they are emitted.
    unwind: FrameUnwind,
}

impl<'a> Emitter<'a> {
    fn new(base: u64, env: &'a CodeEnv, frame: Frame) -> Result<Emitter<'a>, BackendError> {
        let base = usize::try_from(base).map_err(|_| Invalid::AddressTooWide { what: "code base", value: base })?;
        let unwind = FrameUnwind::new(Arch::X86_64);
        Ok(Emitter { ops: VecAssembler::new(base), env, frame, below: 0, failures: Vec::new(), vm: None, unwind })
    }

    /// Records what the instruction just emitted did to the frame.
    fn unwind_op(&mut self, op: FrameOp) {
        let end = self.ops.offset().0 as u32;
        self.unwind.record(end, op);
    }

    /// `[rsp + disp]` of a slot, counting what a helper call has reserved below the body.
    fn disp(&self, slot: Slot) -> Result<i32, BackendError> {
        let d = self.frame.disp(slot)? + i64::from(self.below);
        i32::try_from(d).map_err(|_| Invalid::OutOfRange { what: "displacement", value: d }.into())
    }

    // ----- small instruction groups -----

    /// Loads `size` bytes at `[base + disp]` into GPR `reg`, widened as `ext` says.
    fn load_gpr(&mut self, reg: u8, base: u8, disp: i32, size: u32, ext: Ext) -> Result<(), BackendError> {
        match (size, ext) {
            (1, Ext::Sign) => asm_disp!(self.ops, disp; movsx Rd(reg), BYTE [Rq(base) + disp]),
            (1, _) => asm_disp!(self.ops, disp; movzx Rd(reg), BYTE [Rq(base) + disp]),
            (2, Ext::Sign) => asm_disp!(self.ops, disp; movsx Rd(reg), WORD [Rq(base) + disp]),
            (2, _) => asm_disp!(self.ops, disp; movzx Rd(reg), WORD [Rq(base) + disp]),
            (4, _) => asm_disp!(self.ops, disp; mov Rd(reg), DWORD [Rq(base) + disp]),
            (8, _) => asm_disp!(self.ops, disp; mov Rq(reg), QWORD [Rq(base) + disp]),
            _ => return Err(Invalid::Width { bytes: size, loc: Loc::Gpr(Gpr(reg)) }.into()),
        }
        Ok(())
    }

    /// Stores the low `size` bytes of GPR `reg` at `[base + disp]`.
    fn store_gpr(&mut self, reg: u8, base: u8, disp: i32, size: u32) -> Result<(), BackendError> {
        match size {
            1 => asm_disp!(self.ops, disp; mov BYTE [Rq(base) + disp], Rb(reg)),
            2 => asm_disp!(self.ops, disp; mov WORD [Rq(base) + disp], Rw(reg)),
            4 => asm_disp!(self.ops, disp; mov DWORD [Rq(base) + disp], Rd(reg)),
            8 => asm_disp!(self.ops, disp; mov QWORD [Rq(base) + disp], Rq(reg)),
            _ => return Err(Invalid::Width { bytes: size, loc: Loc::Gpr(Gpr(reg)) }.into()),
        }
        Ok(())
    }

    fn load_xmm(&mut self, xmm: u8, base: u8, disp: i32, size: u32) -> Result<(), BackendError> {
        match size {
            4 => asm_disp!(self.ops, disp; movss Rx(xmm), DWORD [Rq(base) + disp]),
            8 => asm_disp!(self.ops, disp; movsd Rx(xmm), QWORD [Rq(base) + disp]),
            // All 16 bytes: a 16-byte vector (`__m128`) or integer (mingw's `__int128`)
            // returned in xmm0.
            16 => asm_disp!(self.ops, disp; movups Rx(xmm), OWORD [Rq(base) + disp]),
            _ => return Err(Invalid::Width { bytes: size, loc: Loc::Xmm(Xmm(xmm)) }.into()),
        }
        Ok(())
    }

    fn store_xmm(&mut self, xmm: u8, base: u8, disp: i32, size: u32) -> Result<(), BackendError> {
        match size {
            4 => asm_disp!(self.ops, disp; movss DWORD [Rq(base) + disp], Rx(xmm)),
            8 => asm_disp!(self.ops, disp; movsd QWORD [Rq(base) + disp], Rx(xmm)),
            16 => asm_disp!(self.ops, disp; movups OWORD [Rq(base) + disp], Rx(xmm)),
            _ => return Err(Invalid::Width { bytes: size, loc: Loc::Xmm(Xmm(xmm)) }.into()),
        }
        Ok(())
    }

    /// The memory a [`Dest`] names, as (base register, displacement): a slot is
    /// `[rsp + d]`; `Through(slot)` first loads the pointer at the slot into `r10`.
    fn dest_mem(&mut self, dest: Dest) -> Result<(u8, i32), BackendError> {
        match dest {
            Dest::At(slot) => Ok((Gpr::SP.0, self.disp(slot)?)),
            Dest::Through(slot) => {
                let d = self.disp(slot)?;
                asm_disp!(self.ops, d; mov through, QWORD [rsp + d]);
                Ok((R10, 0))
            }
        }
    }

    /// `sub rsp, n` with an 8-bit immediate when it fits.
    fn sub_rsp(&mut self, n: i32) {
        match i8::try_from(n) {
            Ok(n) => asm!(self.ops; sub rsp, BYTE n),
            Err(_) => asm!(self.ops; sub rsp, DWORD n),
        }
    }

    /// `add rsp, n` with an 8-bit immediate when it fits.
    fn add_rsp(&mut self, n: i32) {
        match i8::try_from(n) {
            Ok(n) => asm!(self.ops; add rsp, BYTE n),
            Err(_) => asm!(self.ops; add rsp, DWORD n),
        }
    }

    fn mov_imm64(&mut self, reg: u8, value: u64) {
        asm!(self.ops; mov Rq(reg), QWORD value as i64);
    }

    /// `reg` = the operand, widened to the `width` (4 or 8) of the parameter it feeds.
    fn load_src_gpr(&mut self, reg: u8, src: Src, width: u32) -> Result<(), BackendError> {
        match src {
            Src::Op(Operand::L) => match self.frame.kind {
                FrameKind::Stub => asm!(self.ops; mov Rq(reg), lua_state),
                FrameKind::Thunk => {
                    // The thunk keeps L in a staging slot (`*stage[..]`).
                    return Err(Invalid::WrongProgramKind(FrameKind::Thunk).into());
                }
            },
            Src::Op(Operand::Imm(i)) if width == 8 => asm!(self.ops; mov Rq(reg), DWORD i),
            Src::Op(Operand::Imm(i)) => asm!(self.ops; mov Rd(reg), DWORD i),
            Src::Op(Operand::Ctype(r)) => self.mov_imm64(reg, self.env.ctype(r)),
            Src::Op(Operand::CallbackData) => self.mov_imm64(reg, self.env.callback_data),
            Src::Op(Operand::Value { at, kind }) => {
                let size = kind.size(8);
                if size > width.max(4)
                    || matches!(
                        kind,
                        ValueKind::Record { .. } | ValueKind::ComplexF32 | ValueKind::ComplexF64 | ValueKind::Void
                    )
                {
                    return Err(Invalid::Kind { kind, role: "for a parameter of another class" }.into());
                }
                let d = self.disp(at)?;
                // Booleans and small integers widened to 32 bits by their type (the helpers'
                // `int` parameters), as the model's writers widen them.
                self.load_gpr(reg, Gpr::SP.0, d, size, Ext::widening(kind))?;
            }
            Src::Op(Operand::Addr(slot)) => {
                let d = self.disp(slot)?;
                asm_disp!(self.ops, d; lea Rq(reg), [rsp + d]);
            }
            Src::Op(Operand::PtrAt(slot)) => {
                let d = self.disp(slot)?;
                asm_disp!(self.ops, d; mov Rq(reg), QWORD [rsp + d]);
            }
            Src::PreviousResult32 => asm!(self.ops; mov Rd(reg), eax),
        }
        Ok(())
    }

    /// Calls `helper` as its own plan says: its home space (`frame_bytes`) reserved below
    /// the body for this call only, stack-located arguments first (through `r11`), then the
    /// register arguments, then `call` through `rax`. The result is stored at `ret_to` once
    /// the reservation is released.
    fn call_helper(&mut self, helper: Helper, srcs: &[Src], ret_to: Option<Slot>) -> Result<(), BackendError> {
        let plan = helper.plan(Target::X64_WIN);
        if plan.args.len() != srcs.len() {
            return Err(Invalid::HelperArity { helper, params: plan.args.len(), given: srcs.len() }.into());
        }
        if plan.stack_align == 0 || !STACK_ALIGN.is_multiple_of(plan.stack_align) {
            return Err(Invalid::HelperPlan { helper, needs: "a stack aligned beyond 16 bytes" }.into());
        }
        let reserve = plan.frame_bytes();
        if self.below != 0 {
            return Err(Invalid::HelperPlan { helper, needs: "a call nested in another helper call" }.into());
        }
        let mut placed = Vec::with_capacity(srcs.len());
        for (arg, src) in plan.args.iter().zip(srcs) {
            let abi_model::ArgPass::Direct(parts) = &arg.pass else {
                return Err(Invalid::HelperPlan { helper, needs: "an argument by reference" }.into());
            };
            let [part] = parts.as_slice() else {
                return Err(Invalid::HelperPlan { helper, needs: "a split argument" }.into());
            };
            placed.push((part.loc, arg.value, *src));
        }
        if reserve > 0 {
            self.sub_rsp(reserve as i32);
        }
        self.below = reserve;
        // Stack arguments go first: they use r11 only, never an argument register.
        for &(loc, kind, src) in &placed {
            if let Loc::Stack { offset } = loc {
                let width = kind.size(8);
                match src {
                    Src::Op(Operand::Value { at, kind: vk }) if is_float(vk) => {
                        let d = self.disp(at)?;
                        self.load_gpr(R11, Gpr::SP.0, d, vk.size(8), Ext::None)?;
                    }
                    _ => self.load_src_gpr(R11, src, width)?,
                }
                let offset = i32::try_from(offset)
                    .map_err(|_| Invalid::OutOfRange { what: "helper stack offset", value: i64::from(offset) })?;
                asm_disp!(self.ops, offset; mov QWORD [rsp + offset], scratch);
            }
        }
        for &(loc, kind, src) in &placed {
            match loc {
                Loc::Stack { .. } => {}
                Loc::Gpr(g) if g == Gpr::AX => {
                    // rax holds the helper's address.
                    return Err(Invalid::HelperPlan { helper, needs: "an argument in rax" }.into());
                }
                Loc::Gpr(g) => self.load_src_gpr(g.0, src, kind.size(8))?,
                Loc::Xmm(x) => match src {
                    Src::Op(Operand::Value { at, kind: vk }) if is_float(vk) => {
                        let d = self.disp(at)?;
                        self.load_xmm(x.0, Gpr::SP.0, d, vk.size(8))?;
                    }
                    _ => return Err(Invalid::Location { loc, role: "a helper's non-float argument" }.into()),
                },
            }
        }
        self.mov_imm64(RAX, self.env.helper(helper));
        asm!(self.ops; call rax);
        if reserve > 0 {
            self.add_rsp(reserve as i32);
        }
        self.below = 0;
        if let Some(slot) = ret_to {
            // Stored at the helper's own return width.
            let RetPlan { value, loc, .. } = plan.ret;
            let d = self.disp(slot)?;
            match loc {
                RetLoc::Gpr => self.store_gpr(RAX, Gpr::SP.0, d, value.size(8))?,
                RetLoc::Xmm0 => self.store_xmm(0, Gpr::SP.0, d, value.size(8))?,
                other => return Err(Invalid::ReturnLocation { loc: other, value }.into()),
            }
        }
        Ok(())
    }

    // ----- prologue and epilogues -----

    /// Touches every page of the allocation, top down, without moving rsp: a read in each
    /// page commits the guard page before the next one is reached, as `__chkstk` does.
    fn probe_pages(&mut self) {
        if self.frame.alloc < PAGE {
            return;
        }
        let mut depth = 0u32;
        while depth < self.frame.alloc {
            depth = (depth + PAGE).min(self.frame.alloc);
            let d = -(depth as i32);
            asm_disp!(self.ops, d; test DWORD [rsp + d], eax);
        }
    }

    fn emit_prologue(&mut self) -> Result<(), BackendError> {
        asm!(self.ops ; push frame_ptr);
        self.unwind_op(FrameOp::PushGpr(Gpr::BP));
        if self.frame.kind == FrameKind::Stub {
            asm!(self.ops ; push lua_state);
            self.unwind_op(FrameOp::PushGpr(Gpr::BX));
        }
        asm!(self.ops ; mov frame_ptr, rsp);
        self.unwind_op(FrameOp::SetFramePointer { reg: Gpr::BP, offset: 0 });
        self.probe_pages();
        let alloc = self.frame.alloc as i32;
        self.sub_rsp(alloc);
        self.unwind_op(FrameOp::Alloc(self.frame.alloc));
        if let Some(align) = self.frame.realign {
            // rsp only goes down, inside the allocation: the body's areas stay below the pushes.
            let mask = -(align as i32);
            match i8::try_from(mask) {
                Ok(m) => asm!(self.ops ; and rsp, BYTE m),
                Err(_) => asm!(self.ops ; and rsp, mask),
            }
            self.unwind_op(FrameOp::Realign(align));
        }
        if self.frame.kind == FrameKind::Stub {
            // lua_CFunction: L arrives where the model says (rcx).
            match lua_state_at_entry(Target::X64_WIN) {
                Loc::Gpr(l_in) => asm!(self.ops; mov lua_state, Rq(l_in.0)),
                other => return Err(Invalid::Location { loc: other, role: "the lua_State *" }.into()),
            }
        }
        Ok(())
    }

    /// The epilogue after the frame pointer was set: `lea rsp, [rbp]`, then the pops (the
    /// form the Microsoft x64 epilogue rules allow with a frame pointer).
    fn emit_epilogue(&mut self, pops: u16) {
        match self.frame.kind {
            FrameKind::Stub => asm!(self.ops
                ; lea rsp, [frame_ptr + 0]
                ; pop lua_state
                ; pop frame_ptr
            ),
            FrameKind::Thunk => asm!(self.ops
                ; lea rsp, [frame_ptr + 0]
                ; pop frame_ptr
            ),
        }
        if pops == 0 {
            asm!(self.ops; ret);
        } else {
            asm!(self.ops; ret pops as i16);
        }
    }

    fn emit_failures(&mut self) -> Result<(), BackendError> {
        for f in std::mem::take(&mut self.failures) {
            asm!(self.ops; =>f.label);
            if let CountIn::SlotBytes { shift } = f.count {
                asm!(self.ops
                    ; shr rax, shift
                    ; dec eax
                );
            }
            self.call_helper(
                Helper::ArgCountError,
                &[Src::Op(Operand::L), Src::Op(Operand::Imm(f.expected)), Src::PreviousResult32],
                None,
            )?;
            // luaffi_argcount_error raises a Lua error and never returns.
            asm!(self.ops; ud2);
        }
        Ok(())
    }

    // ----- one function per step -----

    fn lower(&mut self, step: &Step) -> Result<(), BackendError> {
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
            Step::ReturnToLua { results } => self.emit_return_to_lua(*results),
            Step::ReturnToC { pops, ret_ptr } => self.emit_return_to_c(*pops, *ret_ptr),
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
        }
    }

    fn emit_check_arg_count(&mut self, expected: i32) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        self.call_helper(Helper::ArgCount, &[Src::Op(Operand::L)], None)?;
        let label = self.ops.new_dynamic_label();
        match i8::try_from(expected) {
            Ok(n) => asm!(self.ops; cmp eax, BYTE i32::from(n)),
            Err(_) => asm!(self.ops; cmp eax, DWORD expected),
        }
        asm!(self.ops; jne =>label);
        self.failures.push(ArgCountFailure { label, expected, count: CountIn::Eax });
        Ok(())
    }

    fn emit_call_helper(&mut self, helper: Helper, args: &[Operand], ret_to: Option<Slot>) -> Result<(), BackendError> {
        let srcs: Vec<Src> = args.iter().map(|a| Src::Op(*a)).collect();
        self.call_helper(helper, &srcs, ret_to)
    }

    fn emit_store_addr(&mut self, of: Slot, to: Slot) -> Result<(), BackendError> {
        let (of, to) = (self.disp(of)?, self.disp(to)?);
        asm_disp!(self.ops, of; lea scratch, [rsp + of]);
        asm_disp!(self.ops, to; mov QWORD [rsp + to], scratch);
        Ok(())
    }

    fn emit_copy_ptr(&mut self, from: Slot, to: Slot) -> Result<(), BackendError> {
        let (from, to) = (self.disp(from)?, self.disp(to)?);
        asm_disp!(self.ops, from; mov scratch, QWORD [rsp + from]);
        asm_disp!(self.ops, to; mov QWORD [rsp + to], scratch);
        Ok(())
    }

    fn emit_load_arg(&mut self, to: Loc, from: Slot, size: u32, ext: Ext) -> Result<(), BackendError> {
        let d = self.disp(from)?;
        match to {
            Loc::Gpr(g) => self.load_gpr(g.0, Gpr::SP.0, d, size, ext),
            Loc::Xmm(x) if ext == Ext::None => self.load_xmm(x.0, Gpr::SP.0, d, size),
            // Arguments on the stack are converted in place, never loaded.
            Loc::Xmm(_) | Loc::Stack { .. } => {
                Err(Invalid::Location { loc: to, role: "a widened argument load" }.into())
            }
        }
    }

    fn emit_load_ptr(&mut self, to: Loc, from: Slot) -> Result<(), BackendError> {
        let Loc::Gpr(g) = to else { return Err(Invalid::Location { loc: to, role: "a pointer load" }.into()) };
        let d = self.disp(from)?;
        asm_disp!(self.ops, d; mov Rq(g.0), QWORD [rsp + d]);
        Ok(())
    }

    fn emit_load_addr(&mut self, to: Loc, of: Slot) -> Result<(), BackendError> {
        let Loc::Gpr(g) = to else { return Err(Invalid::Location { loc: to, role: "an address load" }.into()) };
        let d = self.disp(of)?;
        asm_disp!(self.ops, d; lea Rq(g.0), [rsp + d]);
        Ok(())
    }

    /// The Microsoft convention has no `al` rule; a program that asks for it gets it (it
    /// costs nothing: the target is called through memory, not through rax).
    fn emit_set_al(&mut self, n: u8) -> Result<(), BackendError> {
        asm!(self.ops; mov al, n as i8);
        Ok(())
    }

    fn emit_call_target(&mut self, via: Slot, callee_pops: u32) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let d = self.disp(via)?;
        // Called through its staged address, so no register is needed: every argument
        // register is already loaded.
        asm_disp!(self.ops, d; call QWORD [rsp + d]);
        if callee_pops > 0 {
            // Put back what the callee removed so sp is the body stack pointer again.
            let n = i32::try_from(callee_pops)
                .map_err(|_| Invalid::OutOfRange { what: "bytes the callee pops", value: i64::from(callee_pops) })?;
            self.sub_rsp(n);
        }
        Ok(())
    }

    fn emit_save_return(&mut self, ret: RetPlan, to: Dest) -> Result<(), BackendError> {
        let size = ret.value.size(8);
        match ret.loc {
            RetLoc::Void => Ok(()),
            RetLoc::Gpr => {
                let (base, d) = self.dest_mem(to)?;
                self.store_gpr(RAX, base, d, size)
            }
            RetLoc::Xmm0 => {
                let (base, d) = self.dest_mem(to)?;
                self.store_xmm(0, base, d, size)
            }
            RetLoc::Xmm0Full if size == 16 => {
                let (base, d) = self.dest_mem(to)?;
                self.store_xmm(0, base, d, 16)
            }
            // The callee filled the buffer itself; rax holds its address, nothing to store.
            RetLoc::Sret { .. } => Ok(()),
            other => Err(Invalid::ReturnLocation { loc: other, value: ret.value }.into()),
        }
    }

    fn emit_spill(&mut self, from: Loc, size: u32, to: Slot) -> Result<(), BackendError> {
        self.require(FrameKind::Thunk)?;
        // The header's top 8 bytes hold the saved rbp; a spill must stay below them.
        if let Slot::Entry(o) = to {
            if o < 0 && i64::from(o) + i64::from(size) > -8 {
                // It would overwrite the saved frame pointer.
                return Err(Invalid::SlotOutsideFrame(to).into());
            }
        }
        let d = self.disp(to)?;
        match from {
            Loc::Gpr(g) => self.store_gpr(g.0, Gpr::SP.0, d, size),
            Loc::Xmm(x) => self.store_xmm(x.0, Gpr::SP.0, d, size),
            Loc::Stack { .. } => Err(Invalid::Location { loc: from, role: "a spilled register" }.into()),
        }
    }

    fn emit_load_return(&mut self, ret: RetPlan, from: Dest) -> Result<(), BackendError> {
        self.require(FrameKind::Thunk)?;
        let size = ret.value.size(8);
        match ret.loc {
            RetLoc::Void => Ok(()),
            RetLoc::Gpr => {
                let (base, d) = self.dest_mem(from)?;
                // Small integers widened as the model's callee widens them (records:
                // zero-filled), so rax holds no stale bytes though callers must not rely on it.
                self.load_gpr(RAX, base, d, size, ret.ext)
            }
            RetLoc::Xmm0 => {
                let (base, d) = self.dest_mem(from)?;
                self.load_xmm(0, base, d, size)
            }
            RetLoc::Xmm0Full if size == 16 => {
                let (base, d) = self.dest_mem(from)?;
                self.load_xmm(0, base, d, 16)
            }
            // The buffer was filled in place; ReturnToC puts its address in rax.
            RetLoc::Sret { .. } => Ok(()),
            other => Err(Invalid::ReturnLocation { loc: other, value: ret.value }.into()),
        }
    }

    fn emit_return_to_lua(&mut self, results: u32) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let n = i32::try_from(results)
            .map_err(|_| Invalid::OutOfRange { what: "result count", value: i64::from(results) })?;
        asm!(self.ops; mov eax, n);
        self.emit_epilogue(0);
        Ok(())
    }

    fn emit_return_to_c(&mut self, pops: u32, ret_ptr: Option<Slot>) -> Result<(), BackendError> {
        self.require(FrameKind::Thunk)?;
        let pops = u16::try_from(pops)
            .map_err(|_| Invalid::OutOfRange { what: "bytes popped by ret imm16", value: i64::from(pops) })?;
        if let Some(slot) = ret_ptr {
            // Microsoft x64 "Return values": the callee returns the buffer's address in rax.
            let d = self.disp(slot)?;
            asm_disp!(self.ops, d; mov rax, QWORD [rsp + d]);
        }
        self.emit_epilogue(pops);
        Ok(())
    }

    fn require(&self, kind: FrameKind) -> Result<(), BackendError> {
        if self.frame.kind == kind {
            Ok(())
        } else {
            Err(Invalid::WrongProgramKind(self.frame.kind).into())
        }
    }

    fn finish(mut self) -> Result<Code, BackendError> {
        self.emit_failures()?;
        let bytes = self.ops.finalize().map_err(|e| BackendError::Assembler { message: e.to_string() })?;
        Ok(Code { bytes, unwind: self.unwind })
    }
}

/// Lowers `program` with `frame`, assembled to run at `base`.
pub(crate) fn lower_program(program: &Program, frame: Frame, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
    let mut e = Emitter::new(base, env, frame)?;
    e.vm = program.vm;
    e.emit_prologue()?;
    let last_is_return = matches!(program.steps.last(), Some(Step::ReturnToLua { .. } | Step::ReturnToC { .. }));
    if !last_is_return {
        return Err(Invalid::NoFinalReturn.into());
    }
    for (index, step) in program.steps.iter().enumerate() {
        e.lower(step).map_err(|err| err.at_step(index, step))?;
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use crate::{lower_stub, lower_thunk};
    use abi_model::lua::helpers::Helper;
    use abi_model::lua::steps::{CtypeRef, Dest, Operand, Program, Slot, Step};
    use abi_model::lua::{BackendError, CodeEnv};
    use abi_model::plan::{Ext, Gpr, Loc, RetLoc, RetPlan, ValueKind, Xmm};
    use std::collections::HashSet;
    use std::mem::discriminant;

    const BASE: u64 = 0x40_0000;

    fn env() -> CodeEnv {
        CodeEnv {
            helpers: (0..Helper::ALL.len() as u64).map(|i| 0x7000_0000 + 16 * i).collect(),
            arg_ctypes: vec![0x5000],
            ret_ctype: 0x5100,
            callback_data: 0x4400,
            call_slots: None,
        }
    }

    const REC8: ValueKind = ValueKind::Record { size: 8, align: 4 };

    /// A stub using every stub-side step, including the ones the Win64 model never emits
    /// (CopyPtr, SetAl, callee pops).
    fn every_stub_step() -> Program {
        Program {
            out_bytes: 48,
            stage_bytes: 32,
            entry_bytes: 0,
            vm: None,
            out_align: 0,
            steps: vec![
                Step::CheckArgCount { expected: 1 },
                Step::CallHelper {
                    helper: Helper::FuncAddr,
                    args: abi_model::operands![Operand::L],
                    ret_to: Some(Slot::Stage(0)),
                },
                Step::CallHelper {
                    helper: Helper::NewResult,
                    args: abi_model::operands![Operand::L, Operand::Ctype(CtypeRef::Ret)],
                    ret_to: Some(Slot::Stage(8)),
                },
                Step::CallHelper {
                    helper: Helper::ToF64,
                    args: abi_model::operands![Operand::L, Operand::Imm(1)],
                    ret_to: Some(Slot::Out(32)),
                },
                Step::StoreAddr { of: Slot::Out(32), to: Slot::Out(40) },
                Step::CopyPtr { from: Slot::Stage(8), to: Slot::Stage(16) },
                Step::LoadArg { to: Loc::Xmm(Xmm(1)), from: Slot::Out(32), size: 8, ext: Ext::None },
                Step::LoadArg { to: Loc::Gpr(Gpr::R9), from: Slot::Stage(24), size: 2, ext: Ext::Sign },
                Step::LoadPtr { to: Loc::Gpr(Gpr::CX), from: Slot::Stage(8) },
                Step::LoadAddr { to: Loc::Gpr(Gpr::R8), of: Slot::Out(32) },
                Step::SetAl(3),
                Step::CallTarget { via: Slot::Stage(0), callee_pops: 16 },
                Step::SaveReturn { ret: RetPlan::new(REC8, RetLoc::Gpr), to: Dest::Through(Slot::Stage(8)) },
                Step::ReturnToLua { results: 1 },
            ],
        }
    }

    /// A thunk using every thunk-side step.
    fn every_thunk_step() -> Program {
        Program {
            out_bytes: 0,
            stage_bytes: 16,
            entry_bytes: 48,
            vm: None,
            out_align: 0,
            steps: vec![
                Step::Spill { from: Loc::Gpr(Gpr::CX), size: 8, to: Slot::Entry(-40) },
                Step::Spill { from: Loc::Xmm(Xmm(1)), size: 4, to: Slot::Entry(-48) },
                Step::CallHelper {
                    helper: Helper::CallbackEnter,
                    args: abi_model::operands![Operand::CallbackData],
                    ret_to: Some(Slot::Stage(0)),
                },
                Step::CallHelper {
                    helper: Helper::PushF32,
                    args: abi_model::operands![
                        Operand::PtrAt(Slot::Stage(0)),
                        Operand::Value { at: Slot::Entry(-48), kind: ValueKind::F32 },
                    ],
                    ret_to: None,
                },
                Step::LoadReturn { ret: RetPlan::new(REC8, RetLoc::Gpr), from: Dest::Through(Slot::Entry(-40)) },
                Step::ReturnToC { pops: 16, ret_ptr: Some(Slot::Entry(-40)) },
            ],
        }
    }

    fn lines(code: &[u8]) -> Vec<String> {
        emu_harness::listing::disassemble(64, code, BASE, None)
            .lines()
            .map(|l| l.split_once(": ").map(|(_, i)| i.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn every_step_variant_lowers() {
        let stub = every_stub_step();
        let thunk = every_thunk_step();
        let kinds: HashSet<_> = stub.steps.iter().chain(&thunk.steps).map(discriminant).collect();
        assert_eq!(kinds.len(), 14, "the two programs cover every Step variant but the inline ones");
        let s = lines(&lower_stub(&stub, BASE, &env()).unwrap());
        // out 48 + stage 32 + 8: stage[o] = [rsp + 48 + o].
        for expected in [
            "lea r11, [rsp+0x20]",
            "mov qword ptr [rsp+0x28], r11",
            "mov r11, qword ptr [rsp+0x38]",
            "mov qword ptr [rsp+0x40], r11",
            "movsd xmm1, qword ptr [rsp+0x20]",
            "movsx r9d, word ptr [rsp+0x48]",
            "mov rcx, qword ptr [rsp+0x38]",
            "lea r8, [rsp+0x20]",
            "mov al, 3",
            "call qword ptr [rsp+0x30]",
            "sub rsp, 0x10",
            "mov r10, qword ptr [rsp+0x38]",
            "mov qword ptr [r10], rax",
            "mov eax, 1",
            "ud2",
        ] {
            assert!(s.iter().any(|l| l == expected), "missing `{expected}` in\n{}", s.join("\n"));
        }
        let t = lines(&lower_thunk(&thunk, BASE, &env()).unwrap());
        // entry 48 + stage 16 = 64 allocated below the saved rbp: entry[o] = [rsp + 72 + o].
        for expected in [
            "mov qword ptr [rsp+0x20], rcx",
            "movss dword ptr [rsp+0x18], xmm1",
            "mov rcx, 0x4400",
            "movss xmm1, dword ptr [rsp+0x38]",
            "mov r10, qword ptr [rsp+0x20]",
            "mov rax, qword ptr [r10]",
            "mov rax, qword ptr [rsp+0x20]",
            "ret 0x10",
        ] {
            assert!(t.iter().any(|l| l == expected), "missing `{expected}` in\n{}", t.join("\n"));
        }
    }

    /// The inline programs lua-adapter builds for the curated signatures, on Lua 5.4 and 5.1,
    /// lower; with the two programs above they use all 25 Step variants.
    #[test]
    fn every_inline_step_variant_lowers() {
        use abi_model::lua::curated::{curated_plans, listing_env, listing_inline};
        use abi_model::lua::steps::{stub_program_inline, thunk_program_inline};
        use abi_model::lua::vm::LuaVm;
        use abi_model::{CallbackFrame, Target};
        let mut kinds: HashSet<_> =
            every_stub_step().steps.iter().chain(&every_thunk_step().steps).map(discriminant).collect();
        for c in curated_plans(Target::X64_WIN) {
            let env = listing_env(Target::X64_WIN, c.plan.args.len());
            for vm in [LuaVm::LUA54, LuaVm::LUA51] {
                let inline = listing_inline(vm);
                let stub = stub_program_inline(&c.plan, 1, Some(&inline));
                lower_stub(&stub, BASE, &env).unwrap_or_else(|e| panic!("{} stub: {e}", c.curated.name));
                kinds.extend(stub.steps.iter().map(discriminant));
                if c.curated.varargs.is_empty() {
                    let thunk = thunk_program_inline(&CallbackFrame::from_plan(&c.plan), Some(&inline));
                    lower_thunk(&thunk, BASE, &env).unwrap_or_else(|e| panic!("{} thunk: {e}", c.curated.name));
                    kinds.extend(thunk.steps.iter().map(discriminant));
                }
            }
        }
        assert_eq!(kinds.len(), 25, "every Step variant");
    }

    fn stub_error(steps: Vec<Step>) -> String {
        let program = Program::new(steps, 32, 32, 0, None);
        match lower_stub(&program, BASE, &env()) {
            Err(e @ BackendError::Invalid { .. }) => e.to_string(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn thunk_error(steps: Vec<Step>) -> String {
        let program = Program::new(steps, 0, 16, 48, None);
        match lower_thunk(&program, BASE, &env()) {
            Err(e @ BackendError::Invalid { .. }) => e.to_string(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const RET: Step = Step::ReturnToLua { results: 0 };
    const RET_C: Step = Step::ReturnToC { pops: 0, ret_ptr: None };

    #[test]
    fn a_return_location_of_another_abi_is_an_error() {
        let st0 = RetPlan::new(ValueKind::F64, RetLoc::St0);
        assert!(stub_error(vec![Step::SaveReturn { ret: st0, to: Dest::At(Slot::Stage(0)) }, RET])
            .contains("a f64 returned in St0"));
        let pair = RetPlan::new(ValueKind::ComplexF64, RetLoc::Xmm0Xmm1);
        assert!(thunk_error(vec![Step::LoadReturn { ret: pair, from: Dest::At(Slot::Stage(0)) }, RET_C])
            .contains("Xmm0Xmm1"));
    }

    #[test]
    fn slots_outside_the_frame_are_errors() {
        assert!(stub_error(vec![Step::CopyPtr { from: Slot::Stage(32), to: Slot::Out(0) }, RET])
            .contains("stage[32] is outside the frame"));
        assert!(stub_error(vec![Step::StoreAddr { of: Slot::Out(32), to: Slot::Out(0) }, RET])
            .contains("out[32] is outside the frame"));
        assert!(stub_error(vec![Step::LoadPtr { to: Loc::Gpr(Gpr::CX), from: Slot::Entry(8) }, RET])
            .contains("entry[+8] is outside the frame"));
        assert!(thunk_error(vec![Step::CopyPtr { from: Slot::Entry(-56), to: Slot::Stage(0) }, RET_C])
            .contains("entry[-56] is outside the frame"));
    }

    #[test]
    fn steps_of_the_other_program_kind_are_errors() {
        assert!(thunk_error(vec![RET]).contains("step ReturnToLua (step 0): not valid in a thunk"));
        assert!(stub_error(vec![Step::Spill { from: Loc::Gpr(Gpr::CX), size: 8, to: Slot::Stage(0) }, RET])
            .contains("step Spill (step 0): not valid in a stub"));
        assert!(thunk_error(vec![
            Step::CallHelper {
                helper: Helper::PushBool,
                args: abi_model::operands![Operand::L, Operand::Imm(1)],
                ret_to: None
            },
            RET_C
        ])
        .contains("step CallHelper (step 0): not valid in a thunk"));
    }

    #[test]
    fn malformed_steps_are_errors() {
        assert!(thunk_error(vec![Step::Spill { from: Loc::Gpr(Gpr::CX), size: 8, to: Slot::Entry(-8) }, RET_C])
            .contains("entry[-8] is outside the frame"));
        assert!(thunk_error(vec![Step::ReturnToC { pops: 70_000, ret_ptr: None }])
            .contains("bytes popped by ret imm16 70000 is out of range"));
        assert!(stub_error(vec![
            Step::CallHelper { helper: Helper::ToI32, args: abi_model::operands![Operand::L], ret_to: None },
            RET
        ])
        .contains("takes 2 arguments"));
        let rec = Operand::Value { at: Slot::Stage(0), kind: REC8 };
        assert!(stub_error(vec![
            Step::CallHelper { helper: Helper::PushI64, args: abi_model::operands![Operand::L, rec], ret_to: None },
            RET
        ])
        .contains("a rec8/4 value for a parameter of another class"));
        assert!(stub_error(vec![
            Step::LoadArg { to: Loc::Xmm(Xmm(0)), from: Slot::Stage(0), size: 4, ext: Ext::Sign },
            RET
        ])
        .contains("a widened argument load in xmm0"));
        assert!(stub_error(vec![
            Step::LoadArg { to: Loc::Gpr(Gpr::CX), from: Slot::Stage(0), size: 3, ext: Ext::None },
            RET
        ])
        .contains("a 3-byte move with rcx"));
        assert!(stub_error(vec![
            Step::CallHelper {
                helper: Helper::PushI32,
                args: abi_model::operands![Operand::L, Operand::Imm(1)],
                ret_to: Some(Slot::Stage(0))
            },
            RET
        ])
        .contains("returned in Void"));
        assert!(stub_error(vec![Step::CheckArgCount { expected: 0 }]).contains("does not end with a return"));
    }
}
