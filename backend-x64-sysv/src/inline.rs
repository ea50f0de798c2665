//! The inline steps of stubs built with a Lua stack layout ([`LuaVm`]): the count check, the
//! function address from the closure's upvalue, number arguments and number results, each
//! read or written at the offsets the layout gives; and `errno` restored and saved through
//! the embedding's [`abi_model::lua::CallSlots`]. Every rule of what is taken inline is
//! [`LuaVm::converts_inline`] / [`LuaVm::pushes_inline`]; the rest runs the step's helper call.
//!
//! Registers: r10 holds the called function's stack slot (or `L->top`), rax/rcx and
//! xmm0/xmm1 the value; all are free between steps (no argument register is loaded before the
//! last helper call, and the result is pushed after the call).

use super::*;
use abi_model::lua::steps::CallbackFunc;
use abi_model::lua::vm::{ArgsBase, LuaVm};

/// The displacement of Lua index `lua_index`'s slot from the called function's slot (from
/// `L->top` for a negative index, where `top_relative` allows one).
fn slot_disp(vm: LuaVm, lua_index: i32, top_relative: bool) -> Result<i32, BackendError> {
    lua_index
        .checked_mul(vm.slot as i32)
        .filter(|_| lua_index > 0 || (top_relative && lua_index < 0))
        .ok_or_else(|| Invalid::OutOfRange { what: "inline Lua index", value: i64::from(lua_index) }.into())
}

impl Emitter<'_> {
    /// Ends an inline fast path (`jmp >done`), then emits its `slow:` step and `done:`.
    fn fast_path_done_else(&mut self, slow: &Step) -> Result<(), BackendError> {
        asm!(self.ops ; jmp >done);
        self.slow_path_then_done(slow)
    }

    /// `slow:` the step every value the fast path does not take runs, then `done:`.
    fn slow_path_then_done(&mut self, slow: &Step) -> Result<(), BackendError> {
        asm!(self.ops ; slow:);
        self.lower_step(slow)?;
        asm!(self.ops ; done:);
        Ok(())
    }

    fn vm(&self) -> Result<LuaVm, BackendError> {
        self.vm.ok_or_else(|| Invalid::NoLuaLayout.into())
    }

    /// r10 = the address of the called function's stack slot; Lua index `i` is at
    /// `r10 + i * slot` (5.1: `L->base` is the slot after the function's).
    fn load_func_slot(&mut self, vm: LuaVm) {
        self.load_func_slot_of(vm, RBX);
    }

    /// [`Self::load_func_slot`] with L in register `l`.
    fn load_func_slot_of(&mut self, vm: LuaVm, l: u8) {
        match vm.args {
            ArgsBase::Base { at } => {
                let (at, slot) = (at as i32, vm.slot as i32);
                asm!(self.ops
                    ; mov scratch_ptr, [Rq(l) + at]
                    ; sub scratch_ptr, slot
                );
            }
            ArgsBase::CallInfo { ci, func } => {
                let (ci, func) = (ci as i32, func as i32);
                asm!(self.ops
                    ; mov scratch_ptr, [Rq(l) + ci]
                    ; mov scratch_ptr, [scratch_ptr + func]
                );
            }
        }
    }

    /// The register holding the `lua_State *` of an inline step: rbx in a stub; in a thunk
    /// r11, loaded from the slot the enter helper's result was stored at.
    fn l_reg(&mut self, l: Operand) -> Result<u8, BackendError> {
        match l {
            Operand::L if self.is_stub() => Ok(RBX),
            Operand::PtrAt(slot) => {
                let m = self.slot(slot)?;
                mem!(self.ops, m, [mov scratch,], []);
                Ok(R11)
            }
            other => Err(Invalid::LuaStateOperand(other).into()),
        }
    }

    /// eax = the type tag of the slot at `[r10 + at]`.
    fn load_tag(&mut self, vm: LuaVm, at: i32) -> Result<(), BackendError> {
        let m = Mem { base: Base::ScratchPtr, disp: at + vm.tag_at as i32 };
        match vm.tag_size {
            1 => mem!(self.ops, m, [movzx eax, BYTE], []),
            4 => mem!(self.ops, m, [mov eax, DWORD], []),
            n => return Err(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) }.into()),
        }
        Ok(())
    }

    /// Writes `tag` into the tag of the slot at `[r10]`.
    fn store_tag(&mut self, vm: LuaVm, tag: u32) -> Result<(), BackendError> {
        let (at, tag) = (vm.tag_at as i32, tag as i32);
        match vm.tag_size {
            1 => asm!(self.ops ; mov BYTE [scratch_ptr + at], tag as i8),
            4 => asm!(self.ops ; mov DWORD [scratch_ptr + at], tag),
            n => return Err(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) }.into()),
        }
        Ok(())
    }

    pub(crate) fn emit_check_arg_count_inline(&mut self, expected: i32) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let shift = vm.slot.trailing_zeros() as i8;
        if !vm.slot.is_power_of_two() {
            return Err(Invalid::LuaLayout { what: "stack slot bytes", value: i64::from(vm.slot) }.into());
        }
        let (top, want) = (vm.top as i32, (expected + 1) * vm.slot as i32);
        self.load_func_slot(vm);
        asm!(self.ops
            ; mov rax, [lua_state + top]
            ; sub rax, scratch_ptr
            ; cmp rax, want
            ; je >ok
            ; shr rax, shift
            ; dec eax
        );
        let Reg::Gpr(got) = helper_call(Helper::ArgCountError).arg(2)? else {
            return Err(
                Invalid::HelperPlan { helper: Helper::ArgCountError, needs: "its count in an XMM register" }.into()
            );
        };
        asm!(self.ops ; mov Rd(got), eax);
        self.call_helper_with(Helper::ArgCountError, &[Operand::L, Operand::Imm(expected)], None)?;
        // luaffi_argcount_error raises a Lua error and never returns.
        asm!(self.ops
            ; ud2
            ; ok:
        );
        Ok(())
    }

    pub(crate) fn emit_func_addr_from_upvalue(&mut self, n: u32, to: Slot) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if n == 0 {
            return Err(Invalid::OutOfRange { what: "upvalue", value: 0 }.into());
        }
        let up = (vm.cclosure_upvalues + (n - 1) * vm.slot) as i32;
        self.load_func_slot(vm);
        let to = self.slot(to)?;
        // The function slot's value is the C closure; its upvalue's value the address.
        asm!(self.ops
            ; mov scratch_ptr, [scratch_ptr]
            ; mov scratch, [scratch_ptr + up]
        );
        mem!(self.ops, to, [mov QWORD], [, scratch]);
        Ok(())
    }

    /// Stores rax, an integer `v` already checked as [`LuaVm::converts_inline`] requires,
    /// at `to` as the helper for `kind` returns it: narrowed to the C type, widened to the
    /// helper's 32- or 64-bit result.
    fn store_int_result(&mut self, kind: ValueKind, to: Mem) -> Result<(), BackendError> {
        let width = match kind {
            ValueKind::Int { size: 8, .. } => 8,
            ValueKind::Int { size: 4, .. } => 4,
            ValueKind::Int { size: 2, signed: true } => {
                asm!(self.ops ; movsx eax, ax);
                4
            }
            ValueKind::Int { size: 2, signed: false } => {
                asm!(self.ops ; movzx eax, ax);
                4
            }
            ValueKind::Int { size: 1, signed: true } => {
                asm!(self.ops ; movsx eax, al);
                4
            }
            ValueKind::Int { size: 1, signed: false } => {
                asm!(self.ops ; movzx eax, al);
                4
            }
            other => return Err(Invalid::Kind { kind: other, role: "that is not converted inline" }.into()),
        };
        self.store_gpr(RAX, to, width)
    }

    /// The check every integer kind but `int64_t` (from an integer) and 4-byte unsigned
    /// (from an integer) needs: rax fits int32_t; `uint64_t` also wants it not negative.
    fn check_int32_range(&mut self, kind: ValueKind) {
        asm!(self.ops
            ; movsxd rcx, eax
            ; cmp rcx, rax
            ; jne >slow
        );
        if kind == (ValueKind::Int { size: 8, signed: false }) {
            asm!(self.ops
                ; test rax, rax
                ; js >slow
            );
        }
    }

    pub(crate) fn emit_to_c_inline(
        &mut self,
        l: Operand,
        lua_index: i32,
        kind: ValueKind,
        to: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if !vm.converts_inline(kind) {
            return Err(Invalid::Kind { kind, role: "that is not converted inline" }.into());
        }
        let at = slot_disp(vm, lua_index, true)?;
        let dst = self.slot(to)?;
        let value = Mem { base: Base::ScratchPtr, disp: at };
        let l = self.l_reg(l)?;
        if lua_index > 0 {
            self.load_func_slot_of(vm, l);
        } else {
            // Counted down from L->top.
            let top = vm.top as i32;
            asm!(self.ops ; mov scratch_ptr, [Rq(l) + top]);
        }
        self.load_tag(vm, at)?;
        if let Some(int_tag) = vm.int_tag {
            asm!(self.ops
                ; cmp eax, int_tag as i32
                ; jne >not_int
            );
            match kind {
                ValueKind::F32 => asm!(self.ops ; jmp >slow),
                ValueKind::F64 => {
                    mem!(self.ops, value, [cvtsi2sd xmm0, QWORD], []);
                    self.store_xmm(0, dst, 8)?;
                }
                ValueKind::Int { size, signed } => {
                    mem!(self.ops, value, [mov rax, QWORD], []);
                    match (size, signed) {
                        (8, true) | (4, false) => {}
                        _ => self.check_int32_range(kind),
                    }
                    self.store_int_result(kind, dst)?;
                }
                other => return Err(Invalid::Kind { kind: other, role: "that is not converted inline" }.into()),
            }
            asm!(self.ops
                ; jmp >done
                ; not_int:
            );
        }
        asm!(self.ops
            ; cmp eax, vm.float_tag as i32
            ; jne >slow
        );
        mem!(self.ops, value, [movsd xmm0, QWORD], []);
        match kind {
            ValueKind::F64 => self.store_xmm(0, dst, 8)?,
            ValueKind::F32 => {
                asm!(self.ops ; cvtsd2ss xmm0, xmm0);
                self.store_xmm(0, dst, 4)?;
            }
            ValueKind::Int { .. } => {
                // Integral (the round trip is exact; NaN is unordered) and within int32_t.
                asm!(self.ops
                    ; cvttsd2si rax, xmm0
                    ; cvtsi2sd xmm1, rax
                    ; ucomisd xmm0, xmm1
                    ; jne >slow
                    ; jp >slow
                );
                self.check_int32_range(kind);
                self.store_int_result(kind, dst)?;
            }
            other => return Err(Invalid::Kind { kind: other, role: "that is not converted inline" }.into()),
        }
        self.fast_path_done_else(slow)
    }

    /// rax = the address of the string's bytes, from rax = its `TString`.
    fn string_bytes(&mut self, bytes: abi_model::lua::vm::StrBytes) {
        match bytes {
            abi_model::lua::vm::StrBytes::At(o) => asm!(self.ops ; add rax, o as i32),
            abi_model::lua::vm::StrBytes::Via(o) => asm!(self.ops ; mov rax, [rax + o as i32]),
        }
    }

    pub(crate) fn emit_ptr_inline(
        &mut self,
        lua_index: i32,
        to: Slot,
        strings: bool,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.slot(to)?;
        let value = Mem { base: Base::ScratchPtr, disp: at };
        self.load_func_slot(vm);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, vm.nil_tag as i32
            ; jne >not_nil
            ; xor eax, eax
        );
        self.store_gpr(RAX, dst, 8)?;
        asm!(self.ops
            ; jmp >done
            ; not_nil:
        );
        if strings {
            let s = vm.strings;
            let long = s.long_tag != s.short_tag;
            asm!(self.ops ; cmp eax, s.short_tag as i32);
            if long {
                asm!(self.ops ; jne >not_short);
            } else {
                asm!(self.ops ; jne >slow);
            }
            mem!(self.ops, value, [mov rax, QWORD], []);
            self.string_bytes(s.short_bytes);
            self.store_gpr(RAX, dst, 8)?;
            asm!(self.ops ; jmp >done);
            if long {
                asm!(self.ops
                    ; not_short:
                    ; cmp eax, s.long_tag as i32
                    ; jne >slow
                );
                mem!(self.ops, value, [mov rax, QWORD], []);
                self.string_bytes(s.long_bytes);
                self.store_gpr(RAX, dst, 8)?;
                asm!(self.ops ; jmp >done);
            }
        }
        self.slow_path_then_done(slow)
    }

    pub(crate) fn emit_record_inline(
        &mut self,
        lua_index: i32,
        arg: usize,
        to: Slot,
        size: u32,
        cdata: abi_model::lua::steps::CdataLayout,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.slot(to)?;
        let ud = vm.userdata;
        let ctype = self.env.ctype(abi_model::lua::steps::CtypeRef::Arg(arg)) as i64;
        let (len_at, block_at) = (ud.len_at as i32, ud.block_at as i32);
        self.load_func_slot(vm);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, ud.tag as i32
            ; jne >slow
            ; mov rax, [scratch_ptr + at]
        );
        if let Some(nuv) = ud.no_user_values_at {
            asm!(self.ops
                ; cmp WORD [rax + nuv as i32], 0
                ; jne >slow
            );
        }
        match cdata {
            abi_model::lua::steps::CdataLayout::Header(h) => {
                let header = h.size as i32;
                let (tag_at, desc_at, bytes_at) = (h.tag_at as i32, h.desc_at as i32, h.bytes_at as i32);
                let (rot, key) = (h.tag_rotate as i8, h.tag_key as i64);
                // A block big enough for a header, carrying the tag of a cdata at its address,
                // of exactly this type with its bytes in the block.
                asm!(self.ops
                    ; cmp QWORD [rax + len_at], header
                    ; jb >slow
                    ; lea rcx, [rax + block_at]
                    ; mov rdx, rcx
                    ; rol rdx, rot
                    ; mov scratch, QWORD key
                    ; xor rdx, scratch
                    ; cmp rdx, [rcx + tag_at]
                    ; jne >slow
                    ; mov scratch, QWORD ctype
                    ; cmp [rcx + desc_at], scratch
                    ; jne >slow
                    ; lea scratch_ptr, [rcx + bytes_at]
                );
            }
            abi_model::lua::steps::CdataLayout::Bare { desc_metatable_at } => {
                let (meta_at, desc_meta_at) = (ud.metatable_at as i32, desc_metatable_at as i32);
                // A block at least the record's size, with the metatable of this type's
                // values (its ctype holds the address): the bytes are the block.
                asm!(self.ops
                    ; cmp QWORD [rax + len_at], size as i32
                    ; jb >slow
                    ; mov scratch, QWORD ctype
                    ; mov scratch, [scratch + desc_meta_at]
                    ; cmp [rax + meta_at], scratch
                    ; jne >slow
                    ; lea scratch_ptr, [rax + block_at]
                );
            }
        }
        let src = Mem { base: Base::ScratchPtr, disp: 0 };
        let mut done = 0;
        while done < size {
            let chunk = match size - done {
                n if n >= 8 => 8,
                n if n >= 4 => 4,
                n if n >= 2 => 2,
                _ => 1,
            };
            self.load_gpr(R11, src.at(done), chunk, Ext::Zero)?;
            self.store_gpr(R11, dst.at(done), chunk)?;
            done += chunk;
        }
        self.fast_path_done_else(slow)
    }

    pub(crate) fn emit_push_inline(
        &mut self,
        l: Operand,
        from: Slot,
        kind: ValueKind,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if !vm.pushes_inline(kind) {
            return Err(Invalid::Kind { kind, role: "that this Lua layout does not push inline" }.into());
        }
        let src = self.slot(from)?;
        let top = vm.top as i32;
        let value = Mem { base: Base::ScratchPtr, disp: 0 };
        let mut needs_slow = false;
        // L stays in its register to the end: nothing below uses r11 (8-byte stores, loads of
        // whole powers of two).
        let l = self.l_reg(l)?;
        asm!(self.ops ; mov scratch_ptr, [Rq(l) + top]);
        match (kind, vm.int_tag) {
            (ValueKind::F64, _) => {
                self.load_xmm(0, src, 8)?;
                self.store_xmm(0, value, 8)?;
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::F32, _) => {
                self.load_xmm(0, src, 4)?;
                asm!(self.ops ; cvtss2sd xmm0, xmm0);
                self.store_xmm(0, value, 8)?;
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::Int { size, signed }, int_tag) => {
                if size == 8 {
                    self.load_gpr(RAX, src, 8, Ext::None)?;
                    if !signed {
                        // Above INT64_MAX the helper boxes a uint64_t.
                        needs_slow = true;
                        asm!(self.ops
                            ; test rax, rax
                            ; js >slow
                        );
                    }
                } else {
                    self.load_gpr(RAX, src, u32::from(size), if signed { Ext::Sign } else { Ext::Zero })?;
                    if signed {
                        asm!(self.ops ; movsxd rax, eax);
                    }
                }
                match int_tag {
                    Some(tag) => {
                        self.store_gpr(RAX, value, 8)?;
                        self.store_tag(vm, tag)?;
                    }
                    None if size <= 4 => {
                        asm!(self.ops ; cvtsi2sd xmm0, rax);
                        self.store_xmm(0, value, 8)?;
                        self.store_tag(vm, vm.float_tag)?;
                    }
                    None => return Err(Invalid::Kind { kind, role: "pushed inline by a Lua without integers" }.into()),
                }
            }
            (other, _) => return Err(Invalid::Kind { kind: other, role: "that is not pushed inline" }.into()),
        }
        let slot = vm.slot as i32;
        asm!(self.ops ; add QWORD [Rq(l) + top], slot);
        if needs_slow {
            self.fast_path_done_else(slow)?;
        }
        Ok(())
    }

    fn call_slots(&self) -> Result<abi_model::lua::CallSlots, BackendError> {
        self.env.call_slots.ok_or_else(|| Invalid::NoCallSlots.into())
    }

    pub(crate) fn emit_errno_restore_inline(&mut self, errno_at: Slot, prev_l_at: Slot) -> Result<(), BackendError> {
        let slots = self.call_slots()?;
        // rax = &errno, kept at errno_at across the call.
        self.call_helper_with(Helper::ErrnoLocation, &[], Some(errno_at))?;
        let prev = self.slot(prev_l_at)?;
        let (saved, calling_l) = (slots.saved_errno as i64, slots.calling_l as i64);
        asm!(self.ops
            ; mov rcx, QWORD saved
            ; mov ecx, [rcx]
            ; mov [rax], ecx
            ; mov rcx, QWORD calling_l
            ; mov rdx, [rcx]
            ; mov [rcx], lua_state
        );
        mem!(self.ops, prev, [mov QWORD], [, rdx]);
        Ok(())
    }

    pub(crate) fn emit_after_call_inline(
        &mut self,
        errno_at: Slot,
        prev_l_at: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let slots = self.call_slots()?;
        let at = self.slot(errno_at)?;
        let prev = self.slot(prev_l_at)?;
        mem!(self.ops, at, [mov scratch_ptr,], []);
        let (saved, calling_l, pending) =
            (slots.saved_errno as i64, slots.calling_l as i64, slots.pending_error as i64);
        // Only scratch registers: the call's result is already in its slot.
        asm!(self.ops
            ; mov ecx, [scratch_ptr]
            ; mov scratch, QWORD saved
            ; mov [scratch], ecx
        );
        mem!(self.ops, prev, [mov rcx,], []);
        asm!(self.ops
            ; mov scratch, QWORD calling_l
            ; mov [scratch], rcx
            ; mov scratch, QWORD pending
            ; cmp DWORD [scratch], slots.no_pending
            ; je >done
        );
        self.lower_step(slow)?;
        asm!(self.ops ; done:);
        Ok(())
    }

    /// The callback's entry: L from the call slots, then, when the record holds the
    /// function's value and the stack has the room (what `lua_checkstack` would find with
    /// nothing to do), the push. r11 = L, r10 = `L->top`, rcx = the record.
    pub(crate) fn emit_callback_enter_inline(
        &mut self,
        to: Slot,
        room: u32,
        func: CallbackFunc,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let room_bytes = u64::from(room)
            .checked_mul(u64::from(vm.slot))
            .and_then(|b| i32::try_from(b).ok())
            .ok_or_else(|| Invalid::OutOfRange { what: "callback stack slots", value: i64::from(room) })?;
        let (calling_l, main_l, record) = (slots.calling_l as i64, slots.main_l as i64, self.env.callback_data as i64);
        let (top, stack_last, ci, ci_top) =
            (vm.top as i32, vm.room.stack_last as i32, vm.room.ci as i32, vm.room.ci_top as i32);
        let (value_at, tag_at, slot) = (func.value_at as i32, func.tag_at as i32, vm.slot as i32);
        let to = self.slot(to)?;
        asm!(self.ops
            ; mov rax, QWORD calling_l
            ; mov scratch, [rax]
            ; test scratch, scratch
            ; jnz >have_l
            ; mov rax, QWORD main_l
            ; mov scratch, [rax]
            ; have_l:
            ; mov rcx, QWORD record
            ; mov eax, [rcx + tag_at]
            ; cmp eax, CallbackFunc::NONE as i32
            ; je >slow
            // lua_checkstack(L, room) changes nothing when stack_last - top > room slots and
            // ci->top >= top + room slots.
            ; mov scratch_ptr, [scratch + top]
            ; mov rdx, [scratch + stack_last]
            ; sub rdx, scratch_ptr
            ; cmp rdx, room_bytes
            ; jle >slow
            ; mov rdx, [scratch + ci]
            ; mov rdx, [rdx + ci_top]
            ; sub rdx, scratch_ptr
            ; cmp rdx, room_bytes
            ; jl >slow
            ; mov rdx, [rcx + value_at]
            ; mov [scratch_ptr], rdx
        );
        let tag_slot = vm.tag_at as i32;
        match vm.tag_size {
            1 => asm!(self.ops ; mov [scratch_ptr + tag_slot], al),
            4 => asm!(self.ops ; mov [scratch_ptr + tag_slot], eax),
            n => return Err(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) }.into()),
        }
        asm!(self.ops ; add QWORD [scratch + top], slot);
        mem!(self.ops, to, [mov QWORD], [, scratch]);
        self.fast_path_done_else(slow)
    }

    /// The Lua call of a thunk: `CallbackPcall` unless an error is pending, then the result
    /// check unless the status is 0 and the result a number the next step converts inline.
    pub(crate) fn emit_callback_call_inline(
        &mut self,
        l: Operand,
        nargs: u32,
        result: ValueKind,
        status_at: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let nargs = i32::try_from(nargs)
            .map_err(|_| Invalid::OutOfRange { what: "callback arguments", value: i64::from(nargs) })?;
        let pending = slots.pending_error as i64;
        asm!(self.ops
            ; mov rax, QWORD pending
            ; cmp DWORD [rax], slots.no_pending
            ; jne >slow
        );
        // lua_pcallk(L, nargs, 1, 0, 0, NULL).
        self.call_helper_with(
            Helper::CallbackPcall,
            &[l, Operand::Imm(nargs), Operand::Imm(1), Operand::Imm(0), Operand::Imm(0), Operand::Imm(0)],
            Some(status_at),
        )?;
        // eax = the status (also at status_at).
        if result == ValueKind::Void {
            asm!(self.ops ; test eax, eax ; jz >done);
        } else if vm.converts_inline(result) {
            asm!(self.ops ; test eax, eax ; jnz >check);
            let l = self.l_reg(l)?;
            let top = vm.top as i32;
            asm!(self.ops ; mov scratch_ptr, [Rq(l) + top]);
            self.load_tag(vm, -(vm.slot as i32))?;
            if let Some(int_tag) = vm.int_tag {
                asm!(self.ops ; cmp eax, int_tag as i32 ; je >done);
            }
            asm!(self.ops ; cmp eax, vm.float_tag as i32 ; je >done);
        }
        asm!(self.ops ; check:);
        self.call_helper_with(
            Helper::CallbackResult,
            &[
                l,
                Operand::Value { at: status_at, kind: ValueKind::Int { size: 4, signed: true } },
                Operand::CallbackData,
            ],
            None,
        )?;
        self.fast_path_done_else(slow)
    }

    /// Pops one value: `L->top` down one slot.
    pub(crate) fn emit_pop_inline(&mut self, l: Operand) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let l = self.l_reg(l)?;
        let (top, slot) = (vm.top as i32, vm.slot as i32);
        asm!(self.ops ; sub QWORD [Rq(l) + top], slot);
        Ok(())
    }
}
