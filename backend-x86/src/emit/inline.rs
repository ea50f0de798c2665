//! The inline steps of stubs and thunks built with a Lua stack layout ([`LuaVm`]) on x86-32:
//! the count check, the function address from the closure's upvalue, number, nil, string and
//! record-cdata arguments, number results, `errno` through the embedding's
//! [`abi_model::lua::CallSlots`], and a callback's entry, Lua call and pop. Every rule of what
//! is taken inline is [`LuaVm::converts_inline`] / [`LuaVm::pushes_inline`]; the rest runs the
//! step's helper call.
//!
//! Registers: edx holds a Lua stack slot's address (the called function's, or `L->top`), eax
//! and ecx the value (ecx also a thunk's `L`, read from its slot); all three are scratch and
//! free between steps (argument registers are loaded after the last helper call, results are
//! saved before the first step after the call). Numbers are converted on the x87 stack, which
//! every path leaves empty: no SSE is assumed. A Lua number's value is 8 bytes (`double`, or
//! `long long` from 5.3 on) at the slot's start on every 32-bit layout; a cdata's tag word is
//! pointer-sized: `rotate_left(block, tag_rotate) ^ tag_key` in 32 bits.

use super::*;
use abi_model::lua::steps::{CallbackFunc, CdataLayout, CtypeRef};
use abi_model::lua::vm::{ArgsBase, StrBytes};

/// The displacement of Lua index `lua_index`'s slot from the called function's slot (from
/// `L->top` for a negative index, where `top_relative` allows one).
fn slot_disp(vm: LuaVm, lua_index: i32, top_relative: bool) -> Result<i32, BackendError> {
    lua_index.checked_mul(vm.slot as i32).filter(|_| lua_index > 0 || (top_relative && lua_index < 0)).ok_or_else(
        || BackendError::from(Invalid::OutOfRange { what: "inline Lua index", value: i64::from(lua_index) }),
    )
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

    /// The program's layout, which must be one for 4-byte pointers.
    fn vm(&self) -> Result<LuaVm, BackendError> {
        match self.vm {
            Some(vm) if vm.ptr_size == 4 => Ok(vm),
            Some(vm) => Err(Invalid::LuaLayout { what: "pointer bytes", value: i64::from(vm.ptr_size) }.into()),
            None => Err(Invalid::NoLuaLayout.into()),
        }
    }

    /// The embedding's per-state fields, which inline errno and callback steps need.
    fn call_slots(&self) -> Result<abi_model::lua::CallSlots, BackendError> {
        self.env.call_slots.ok_or_else(|| BackendError::from(Invalid::NoCallSlots))
    }

    /// edx = the address of the called function's stack slot, from L in `l`; Lua index `i`
    /// is at `edx + i * slot` (5.1: `L->base` is the slot after the function's).
    fn load_func_slot(&mut self, vm: LuaVm, l: Base) {
        match vm.args {
            ArgsBase::Base { at } => {
                mem!(self.ops, Mem { base: l, disp: at as i32 }, [mov lua_slot,], []);
                asm!(self.ops ; sub lua_slot, vm.slot as i32);
            }
            ArgsBase::CallInfo { ci, func } => {
                mem!(self.ops, Mem { base: l, disp: ci as i32 }, [mov lua_slot,], []);
                mem!(self.ops, Mem { base: Base::Edx, disp: func as i32 }, [mov lua_slot,], []);
            }
        }
    }

    /// `L->top`, with L in `l`.
    fn top_of(vm: LuaVm, l: Base) -> Mem {
        Mem { base: l, disp: vm.top as i32 }
    }

    /// The register holding the `lua_State *` of an inline step: ebx in a stub; in a thunk
    /// ecx, loaded from the slot the entry stored it at.
    fn l_reg(&mut self, l: Operand) -> Result<Base, BackendError> {
        match l {
            Operand::L if self.is_stub() => Ok(Base::Ebx),
            Operand::PtrAt(slot) => {
                let m = self.mem(slot, 4)?;
                mem!(self.ops, m, [mov through,], []);
                Ok(Base::Ecx)
            }
            other => Err(Invalid::LuaStateOperand(other).into()),
        }
    }

    /// eax = the type tag of the slot at `[edx + at]`.
    fn load_tag(&mut self, vm: LuaVm, at: i32) -> Result<(), BackendError> {
        let m = Mem { base: Base::Edx, disp: at + vm.tag_at as i32 };
        match vm.tag_size {
            1 => mem!(self.ops, m, [movzx eax, BYTE], []),
            4 => mem!(self.ops, m, [mov eax, DWORD], []),
            n => return Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        }
        Ok(())
    }

    /// Writes `tag` into the tag of the slot at `[edx]`.
    fn store_tag(&mut self, vm: LuaVm, tag: u32) -> Result<(), BackendError> {
        let m = Mem { base: Base::Edx, disp: vm.tag_at as i32 };
        match vm.tag_size {
            1 => mem!(self.ops, m, [mov BYTE], [, tag as i8]),
            4 => mem!(self.ops, m, [mov DWORD], [, tag as i32]),
            n => return Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        }
        Ok(())
    }

    /// Copies the 8 bytes at `src` to `dst` through eax.
    fn copy_8(&mut self, src: Mem, dst: Mem) {
        mem!(self.ops, src, [mov eax,], []);
        mem!(self.ops, dst, [mov], [, eax]);
        mem!(self.ops, src.at(4), [mov eax,], []);
        mem!(self.ops, dst.at(4), [mov], [, eax]);
    }

    pub(super) fn emit_check_arg_count_inline(&mut self, expected: i32) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let slot = vm.slot as i32;
        let want = (expected + 1).checked_mul(slot).ok_or_else(|| {
            BackendError::from(Invalid::OutOfRange { what: "inline Lua argument count", value: i64::from(expected) })
        })?;
        self.load_func_slot(vm, Base::Ebx);
        mem!(self.ops, Self::top_of(vm, Base::Ebx), [mov eax,], []);
        asm!(self.ops
            ; sub eax, lua_slot
            ; cmp eax, want
            ; je >ok
        );
        // The count: slots above the function's (12-byte slots are not a power of two).
        if vm.slot.is_power_of_two() {
            asm!(self.ops ; shr eax, vm.slot.trailing_zeros() as i8);
        } else {
            asm!(self.ops
                ; xor edx, edx
                ; mov ecx, slot
                ; div ecx
            );
        }
        asm!(self.ops ; dec eax);
        let args = [HelperArg::Op(&Operand::L), HelperArg::Op(&Operand::Imm(expected)), HelperArg::Eax];
        self.helper_call(Helper::ArgCountError, &args, Returns::Never)?;
        asm!(self.ops ; ok:);
        Ok(())
    }

    pub(super) fn emit_func_addr_from_upvalue(&mut self, n: u32, to: Slot) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if n == 0 {
            return Err(BackendError::from(Invalid::OutOfRange { what: "upvalue", value: 0 }));
        }
        let up = (vm.cclosure_upvalues + (n - 1) * vm.slot) as i32;
        let to = self.mem(to, 4)?;
        self.load_func_slot(vm, Base::Ebx);
        // The function slot's value is the C closure; its upvalue's value the address.
        asm!(self.ops ; mov lua_slot, [lua_slot]);
        mem!(self.ops, Mem { base: Base::Edx, disp: up }, [mov eax,], []);
        mem!(self.ops, to, [mov], [, eax]);
        Ok(())
    }

    /// Stores eax, an integer already checked as [`LuaVm::converts_inline`] requires, at
    /// `to` as the helper for `kind` returns it: narrowed to the C type and widened to 32
    /// bits, or sign-extended to 64 (edx is lost).
    fn store_int_result(&mut self, kind: ValueKind, to: Mem) -> Result<(), BackendError> {
        match kind {
            ValueKind::Int { size: 8, .. } => {
                asm!(self.ops ; cdq);
                mem!(self.ops, to.at(4), [mov], [, edx]);
            }
            ValueKind::Int { size: 4, .. } => {}
            ValueKind::Int { size: 2, signed: true } => asm!(self.ops ; movsx eax, ax),
            ValueKind::Int { size: 2, signed: false } => asm!(self.ops ; movzx eax, ax),
            ValueKind::Int { size: 1, signed: true } => asm!(self.ops ; movsx eax, al),
            ValueKind::Int { size: 1, signed: false } => asm!(self.ops ; movzx eax, al),
            other => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not converted inline" }))
            }
        }
        mem!(self.ops, to, [mov], [, eax]);
        Ok(())
    }

    pub(super) fn emit_to_c_inline(
        &mut self,
        l: Operand,
        lua_index: i32,
        kind: ValueKind,
        to: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if !vm.converts_inline(kind) {
            return Err(BackendError::from(Invalid::Kind { kind, role: "that is not converted inline" }));
        }
        let at = slot_disp(vm, lua_index, true)?;
        // As wide as the helper's result: 8 bytes for 64-bit values, else 4.
        let dst = self.mem(to, kind.size(4).max(4))?;
        let value = Mem { base: Base::Edx, disp: at };
        let l = self.l_reg(l)?;
        if lua_index > 0 {
            self.load_func_slot(vm, l);
        } else {
            // Counted down from L->top.
            mem!(self.ops, Self::top_of(vm, l), [mov lua_slot,], []);
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
                    mem!(self.ops, value, [fild QWORD], []);
                    mem!(self.ops, dst, [fstp QWORD], []);
                }
                ValueKind::Int { size: 8, signed } => {
                    if !signed {
                        // uint64_t: the integer when it is not negative.
                        mem!(self.ops, value.at(4), [cmp DWORD], [, 0]);
                        asm!(self.ops ; jl >slow);
                    }
                    self.copy_8(value, dst);
                }
                ValueKind::Int { size: 4, signed: false } => {
                    mem!(self.ops, value, [mov eax,], []);
                    mem!(self.ops, dst, [mov], [, eax]);
                }
                ValueKind::Int { .. } => {
                    // Fits int32_t: the high word is the low word's sign.
                    mem!(self.ops, value, [mov eax,], []);
                    asm!(self.ops
                        ; mov ecx, eax
                        ; sar ecx, 31
                    );
                    mem!(self.ops, value.at(4), [cmp ecx,], []);
                    asm!(self.ops ; jne >slow);
                    self.store_int_result(kind, dst)?;
                }
                other => {
                    return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not converted inline" }))
                }
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
        match kind {
            ValueKind::F64 => self.copy_8(value, dst),
            ValueKind::F32 => {
                mem!(self.ops, value, [fld QWORD], []);
                mem!(self.ops, dst, [fstp DWORD], []);
            }
            ValueKind::Int { .. } => {
                // Integral and within int32_t: the rounded int32 (0x80000000 when out of
                // range) loads back as the same number; NaN compares unordered. Any rounding
                // mode gives this: an integral value rounds to itself.
                mem!(self.ops, value, [fld QWORD], []);
                mem!(self.ops, dst, [fist DWORD], []);
                mem!(self.ops, dst, [fild DWORD], []);
                asm!(self.ops
                    ; fucomip st0, st1
                    ; fstp st0
                    ; jne >slow
                    ; jp >slow
                );
                // An int32_t is already there; others are narrowed or widened from it.
                if !matches!(kind, ValueKind::Int { size: 4, .. }) {
                    mem!(self.ops, dst, [mov eax,], []);
                    if kind == (ValueKind::Int { size: 8, signed: false }) {
                        asm!(self.ops
                            ; test eax, eax
                            ; js >slow
                        );
                    }
                    self.store_int_result(kind, dst)?;
                }
            }
            other => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not converted inline" }))
            }
        }
        self.fast_path_done_else(slow)
    }

    /// eax = the address of the string's bytes, from eax = its `TString`.
    fn string_bytes(&mut self, bytes: StrBytes) {
        match bytes {
            StrBytes::At(o) => asm!(self.ops ; add eax, o as i32),
            StrBytes::Via(o) => asm!(self.ops ; mov eax, [eax + o as i32]),
        }
    }

    pub(super) fn emit_ptr_inline(
        &mut self,
        lua_index: i32,
        to: Slot,
        strings: bool,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.mem(to, 4)?;
        let value = Mem { base: Base::Edx, disp: at };
        self.load_func_slot(vm, Base::Ebx);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, vm.nil_tag as i32
            ; jne >not_nil
        );
        mem!(self.ops, dst, [mov DWORD], [, 0]);
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
            mem!(self.ops, value, [mov eax,], []);
            self.string_bytes(s.short_bytes);
            mem!(self.ops, dst, [mov], [, eax]);
            asm!(self.ops ; jmp >done);
            if long {
                asm!(self.ops
                    ; not_short:
                    ; cmp eax, s.long_tag as i32
                    ; jne >slow
                );
                mem!(self.ops, value, [mov eax,], []);
                self.string_bytes(s.long_bytes);
                mem!(self.ops, dst, [mov], [, eax]);
                asm!(self.ops ; jmp >done);
            }
        }
        self.slow_path_then_done(slow)
    }

    pub(super) fn emit_record_inline(
        &mut self,
        lua_index: i32,
        arg: usize,
        to: Slot,
        size: u32,
        cdata: CdataLayout,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.mem(to, size)?;
        let ud = vm.userdata;
        let ctype = address("a ctype constant", self.env.ctype(CtypeRef::Arg(arg)))?;
        let (len_at, block_at) = (ud.len_at as i32, ud.block_at as i32);
        self.load_func_slot(vm, Base::Ebx);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, ud.tag as i32
            ; jne >slow
            ; mov eax, [lua_slot + at]
        );
        if let Some(nuv) = ud.no_user_values_at {
            asm!(self.ops
                ; cmp WORD [eax + nuv as i32], 0
                ; jne >slow
            );
        }
        match cdata {
            CdataLayout::Header(h) => {
                let header = h.size as i32;
                let (tag_at, desc_at, bytes_at) = (h.tag_at as i32, h.desc_at as i32, h.bytes_at as i32);
                // The pointer-sized tag word: the key's low 32 bits, the rotation modulo 32.
                let (rot, key) = ((h.tag_rotate % 32) as i8, h.tag_key as u32 as i32);
                // A block big enough for a header, carrying the tag of a cdata at its address,
                // of exactly this type with its bytes in the block.
                asm!(self.ops
                    ; cmp DWORD [eax + len_at], header
                    ; jb >slow
                    ; lea ecx, [eax + block_at]
                    ; mov eax, ecx
                );
                if rot != 0 {
                    asm!(self.ops ; rol eax, rot);
                }
                asm!(self.ops
                    ; xor eax, key
                    ; cmp eax, [ecx + tag_at]
                    ; jne >slow
                    ; cmp DWORD [ecx + desc_at], ctype
                    ; jne >slow
                    ; lea lua_slot, [ecx + bytes_at]
                );
            }
            CdataLayout::Bare { desc_metatable_at } => {
                let (meta_at, desc_meta) = (ud.metatable_at as i32, ctype.wrapping_add(desc_metatable_at as i32));
                // A block at least the record's size, with the metatable of this type's
                // values (its ctype holds the address): the bytes are the block.
                asm!(self.ops
                    ; cmp DWORD [eax + len_at], size as i32
                    ; jb >slow
                    ; mov ecx, DWORD [desc_meta]
                    ; cmp [eax + meta_at], ecx
                    ; jne >slow
                    ; lea lua_slot, [eax + block_at]
                );
            }
        }
        let src = Mem { base: Base::Edx, disp: 0 };
        let mut done = 0;
        while done < size {
            let (s, d) = (src.at(done as i32), dst.at(done as i32));
            match size - done {
                n if n >= 4 => {
                    mem!(self.ops, s, [mov eax,], []);
                    mem!(self.ops, d, [mov], [, eax]);
                    done += 4;
                }
                n if n >= 2 => {
                    mem!(self.ops, s, [mov ax,], []);
                    mem!(self.ops, d, [mov], [, ax]);
                    done += 2;
                }
                _ => {
                    mem!(self.ops, s, [mov al,], []);
                    mem!(self.ops, d, [mov], [, al]);
                    done += 1;
                }
            }
        }
        self.fast_path_done_else(slow)
    }

    pub(super) fn emit_push_inline(
        &mut self,
        l: Operand,
        from: Slot,
        kind: ValueKind,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        if !vm.pushes_inline(kind) {
            return Err(BackendError::from(Invalid::Kind { kind, role: "that this Lua layout does not push inline" }));
        }
        let src = self.mem(from, kind.size(4))?;
        let value = Mem { base: Base::Edx, disp: 0 };
        let mut needs_slow = false;
        // L stays in its register to the end: the value moves through eax alone.
        let l = self.l_reg(l)?;
        mem!(self.ops, Self::top_of(vm, l), [mov lua_slot,], []);
        match (kind, vm.int_tag) {
            (ValueKind::F64, _) => {
                self.copy_8(src, value);
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::F32, _) => {
                mem!(self.ops, src, [fld DWORD], []);
                mem!(self.ops, value, [fstp QWORD], []);
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::Int { size: 8, signed }, Some(tag)) => {
                if !signed {
                    // Above INT64_MAX the helper boxes a uint64_t.
                    needs_slow = true;
                    mem!(self.ops, src.at(4), [cmp DWORD], [, 0]);
                    asm!(self.ops ; jl >slow);
                }
                self.copy_8(src, value);
                self.store_tag(vm, tag)?;
            }
            (ValueKind::Int { size, signed }, int_tag) if size <= 4 => {
                match (size, signed) {
                    (1, true) => mem!(self.ops, src, [movsx eax, BYTE], []),
                    (1, false) => mem!(self.ops, src, [movzx eax, BYTE], []),
                    (2, true) => mem!(self.ops, src, [movsx eax, WORD], []),
                    (2, false) => mem!(self.ops, src, [movzx eax, WORD], []),
                    _ => mem!(self.ops, src, [mov eax,], []),
                }
                asm!(self.ops ; mov [lua_slot], eax);
                // The high word: the sign, or 0.
                if signed {
                    asm!(self.ops
                        ; sar eax, 31
                        ; mov [lua_slot + 4], eax
                    );
                } else {
                    asm!(self.ops ; mov DWORD [lua_slot + 4], 0);
                }
                match int_tag {
                    Some(tag) => self.store_tag(vm, tag)?,
                    None => {
                        // Before 5.3 a float: the 64-bit integer just written, converted in place.
                        asm!(self.ops
                            ; fild QWORD [lua_slot]
                            ; fstp QWORD [lua_slot]
                        );
                        self.store_tag(vm, vm.float_tag)?;
                    }
                }
            }
            (other, _) => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not pushed inline" }))
            }
        }
        mem!(self.ops, Self::top_of(vm, l), [add DWORD], [, vm.slot as i32]);
        if needs_slow {
            self.fast_path_done_else(slow)?;
        }
        Ok(())
    }

    pub(super) fn emit_errno_restore_inline(&mut self, errno_at: Slot, prev_l_at: Slot) -> Result<(), BackendError> {
        let slots = self.call_slots()?;
        let (saved, calling_l) =
            (address("the saved errno", slots.saved_errno)?, address("the calling thread", slots.calling_l)?);
        // eax = &errno, kept at errno_at across the call.
        self.emit_call_helper(Helper::ErrnoLocation, &[], Some(errno_at))?;
        let prev = self.mem(prev_l_at, 4)?;
        asm!(self.ops
            ; mov ecx, saved
            ; mov ecx, [ecx]
            ; mov [eax], ecx
            ; mov ecx, calling_l
            ; mov edx, [ecx]
            ; mov [ecx], lua_state
        );
        mem!(self.ops, prev, [mov], [, edx]);
        Ok(())
    }

    pub(super) fn emit_after_call_inline(
        &mut self,
        errno_at: Slot,
        prev_l_at: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let slots = self.call_slots()?;
        let (saved, calling_l, pending) = (
            address("the saved errno", slots.saved_errno)?,
            address("the calling thread", slots.calling_l)?,
            address("the pending error", slots.pending_error)?,
        );
        let (at, prev) = (self.mem(errno_at, 4)?, self.mem(prev_l_at, 4)?);
        // Only scratch registers: the call's result is already in its slot.
        mem!(self.ops, at, [mov lua_slot,], []);
        asm!(self.ops
            ; mov ecx, [lua_slot]
            ; mov eax, saved
            ; mov [eax], ecx
        );
        mem!(self.ops, prev, [mov ecx,], []);
        asm!(self.ops
            ; mov eax, calling_l
            ; mov [eax], ecx
            ; mov eax, pending
            ; cmp DWORD [eax], slots.no_pending
            ; je >done
        );
        self.lower_step(slow)?;
        asm!(self.ops ; done:);
        Ok(())
    }

    /// The callback's entry: L from the call slots (kept at `to` at once: the slow path
    /// overwrites it), then, when the record holds the function's value and the stack has
    /// the room (what `lua_checkstack` would find with nothing to do), the push. eax = L,
    /// edx = `L->top`, ecx the record or a distance.
    pub(super) fn emit_callback_enter_inline(
        &mut self,
        to: Slot,
        room: u32,
        func: CallbackFunc,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let room_bytes =
            u64::from(room).checked_mul(u64::from(vm.slot)).and_then(|b| i32::try_from(b).ok()).ok_or_else(|| {
                BackendError::from(Invalid::OutOfRange { what: "callback stack slots", value: i64::from(room) })
            })?;
        let (calling_l, main_l) =
            (address("the calling thread", slots.calling_l)?, address("the main thread", slots.main_l)?);
        let record = address("the callback data", self.env.callback_data)?;
        let (top, stack_last, ci, ci_top) =
            (vm.top as i32, vm.room.stack_last as i32, vm.room.ci as i32, vm.room.ci_top as i32);
        let (value_at, tag_at, slot) = (func.value_at as i32, func.tag_at as i32, vm.slot as i32);
        let to = self.mem(to, 4)?;
        asm!(self.ops
            ; mov eax, calling_l
            ; mov eax, [eax]
            ; test eax, eax
            ; jnz >have_l
            ; mov eax, main_l
            ; mov eax, [eax]
            ; have_l:
        );
        mem!(self.ops, to, [mov], [, eax]);
        asm!(self.ops
            ; mov ecx, record
            ; cmp DWORD [ecx + tag_at], CallbackFunc::NONE as i32
            ; je >slow
            // lua_checkstack(L, room) changes nothing when stack_last - top > room slots and
            // ci->top >= top + room slots.
            ; mov lua_slot, [eax + top]
            ; mov ecx, [eax + stack_last]
            ; sub ecx, lua_slot
            ; cmp ecx, room_bytes
            ; jle >slow
            ; mov ecx, [eax + ci]
            ; mov ecx, [ecx + ci_top]
            ; sub ecx, lua_slot
            ; cmp ecx, room_bytes
            ; jl >slow
            ; mov ecx, record
            ; mov eax, [ecx + value_at]
            ; mov [lua_slot], eax
            ; mov eax, [ecx + value_at + 4]
            ; mov [lua_slot + 4], eax
            ; mov eax, [ecx + tag_at]
        );
        let tag_slot = vm.tag_at as i32;
        match vm.tag_size {
            1 => asm!(self.ops ; mov [lua_slot + tag_slot], al),
            4 => asm!(self.ops ; mov [lua_slot + tag_slot], eax),
            n => return Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        }
        mem!(self.ops, to, [mov eax,], []);
        asm!(self.ops ; add DWORD [eax + top], slot);
        self.fast_path_done_else(slow)
    }

    /// The Lua call of a thunk: `CallbackPcall` unless an error is pending, then the result
    /// check unless the status is 0 and the result a number the next step converts inline.
    pub(super) fn emit_callback_call_inline(
        &mut self,
        l: Operand,
        nargs: u32,
        result: ValueKind,
        status_at: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let pending = address("the pending error", slots.pending_error)?;
        let nargs = i32::try_from(nargs).map_err(|_| {
            BackendError::from(Invalid::OutOfRange { what: "callback arguments", value: i64::from(nargs) })
        })?;
        asm!(self.ops
            ; mov eax, pending
            ; cmp DWORD [eax], slots.no_pending
            ; jne >slow
        );
        // lua_pcallk(L, nargs, 1, 0, 0, NULL).
        self.emit_call_helper(
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
            mem!(self.ops, Self::top_of(vm, l), [mov lua_slot,], []);
            self.load_tag(vm, -(vm.slot as i32))?;
            if let Some(int_tag) = vm.int_tag {
                asm!(self.ops ; cmp eax, int_tag as i32 ; je >done);
            }
            asm!(self.ops ; cmp eax, vm.float_tag as i32 ; je >done);
        }
        asm!(self.ops ; check:);
        self.emit_call_helper(
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
    pub(super) fn emit_pop_inline(&mut self, l: Operand) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let l = self.l_reg(l)?;
        mem!(self.ops, Self::top_of(vm, l), [sub DWORD], [, vm.slot as i32]);
        Ok(())
    }
}
