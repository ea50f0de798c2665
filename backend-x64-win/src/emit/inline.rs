//! The inline steps of programs built with a Lua stack layout ([`LuaVm`]), in the Microsoft
//! x64 frame: the count check, the function address from the closure's upvalue, number, nil,
//! string and record-cdata arguments, number results, `errno` restored and saved through the
//! embedding's [`abi_model::lua::CallSlots`], and a callback's entry, Lua call and pop. Every
//! rule of what is taken inline is [`LuaVm::converts_inline`] / [`LuaVm::pushes_inline`]; the
//! rest runs the step's helper call (its `slow` step), with the helper's home space as every
//! helper call here reserves it.
//!
//! The layouts are the 64-bit ones of `abi_model::lua::vm`: they hold on Windows too (LLP64),
//! because no field they locate, nor any field before one, is a C `long` (the only type whose
//! size differs from LP64); `L_Umaxalign`'s `long` member does not change its 8-byte
//! alignment (`abi-model/tests/lua_layouts_llp64.rs` lays the structs out on both targets).
//!
//! Registers: r10 holds the called function's stack slot (or `L->top`), r11 L in a thunk
//! (loaded from its staging slot), rax/rcx/rdx and xmm0/xmm1 the value. All are volatile in
//! the Microsoft convention and free between steps: a stub loads no argument register before
//! its last helper call, a thunk has spilled its register arguments first, and a result is
//! pushed after the call. No callee-saved register (rsi, rdi, xmm6–xmm15) is used.

use super::*;
use abi_model::lua::steps::{CallbackFunc, CdataLayout, CtypeRef};
use abi_model::lua::vm::{ArgsBase, StrBytes};

const RBX: u8 = 3;

/// The displacement of Lua index `lua_index`'s slot from the called function's slot (from
/// `L->top` for a negative index, where `top_relative` allows one).
fn slot_disp(vm: LuaVm, lua_index: i32, top_relative: bool) -> Result<i32, BackendError> {
    lua_index.checked_mul(vm.slot as i32).filter(|_| lua_index > 0 || (top_relative && lua_index < 0)).ok_or_else(
        || BackendError::from(Invalid::OutOfRange { what: "inline Lua index", value: i64::from(lua_index) }),
    )
}

impl Emitter<'_> {
    fn vm(&self) -> Result<LuaVm, BackendError> {
        self.vm.ok_or_else(|| BackendError::from(Invalid::NoLuaLayout))
    }

    /// Ends an inline fast path (`jmp >done`), then emits its `slow:` step and `done:`.
    fn fast_path_done_else(&mut self, slow: &Step) -> Result<(), BackendError> {
        asm!(self.ops; jmp >done);
        self.slow_path_then_done(slow)
    }

    /// `slow:` the step every value the fast path does not take runs, then `done:`.
    fn slow_path_then_done(&mut self, slow: &Step) -> Result<(), BackendError> {
        asm!(self.ops; slow:);
        self.lower(slow)?;
        asm!(self.ops; done:);
        Ok(())
    }

    /// r10 = the address of the called function's stack slot, with L in register `l`; Lua
    /// index `i` is at `r10 + i * slot` (5.1: `L->base` is the slot after the function's).
    fn load_func_slot(&mut self, vm: LuaVm, l: u8) {
        match vm.args {
            ArgsBase::Base { at } => {
                let (at, slot) = (at as i32, vm.slot as i32);
                asm_disp!(self.ops, at; mov through, QWORD [Rq(l) + at]);
                asm!(self.ops; sub through, slot);
            }
            ArgsBase::CallInfo { ci, func } => {
                let (ci, func) = (ci as i32, func as i32);
                asm_disp!(self.ops, ci; mov through, QWORD [Rq(l) + ci]);
                asm_disp!(self.ops, func; mov through, QWORD [through + func]);
            }
        }
    }

    /// r10 = `L->top`, with L in register `l`.
    fn load_top(&mut self, vm: LuaVm, l: u8) {
        let top = vm.top as i32;
        asm_disp!(self.ops, top; mov through, QWORD [Rq(l) + top]);
    }

    /// The register holding the `lua_State *` of an inline step: rbx in a stub; in a thunk
    /// r11, loaded from the slot the entry stored it at.
    fn l_reg(&mut self, l: Operand) -> Result<u8, BackendError> {
        match (l, self.frame.kind) {
            (Operand::L, FrameKind::Stub) => Ok(RBX),
            (Operand::PtrAt(slot), _) => {
                let d = self.disp(slot)?;
                asm_disp!(self.ops, d; mov scratch, QWORD [rsp + d]);
                Ok(R11)
            }
            (other, _) => Err(Invalid::LuaStateOperand(other).into()),
        }
    }

    /// eax = the type tag of the slot at `[r10 + at]`.
    fn load_tag(&mut self, vm: LuaVm, at: i32) -> Result<(), BackendError> {
        let size = match vm.tag_size {
            n @ (1 | 4) => n,
            n => return Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        };
        self.load_gpr(RAX, R10, at + vm.tag_at as i32, size, Ext::Zero)
    }

    /// Writes the low `tag_size` bytes of `reg` into the tag of the slot at `[r10]`.
    fn store_tag_from(&mut self, vm: LuaVm, reg: u8) -> Result<(), BackendError> {
        match vm.tag_size {
            n @ (1 | 4) => self.store_gpr(reg, R10, vm.tag_at as i32, n),
            n => Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        }
    }

    /// Writes `tag` into the tag of the slot at `[r10]`.
    fn store_tag(&mut self, vm: LuaVm, tag: u32) -> Result<(), BackendError> {
        let (at, tag) = (vm.tag_at as i32, tag as i32);
        match vm.tag_size {
            1 => asm_disp!(self.ops, at; mov BYTE [through + at], tag as i8),
            4 => asm_disp!(self.ops, at; mov DWORD [through + at], tag),
            n => return Err(BackendError::from(Invalid::LuaLayout { what: "type tag bytes", value: i64::from(n) })),
        }
        Ok(())
    }

    /// The count check from `L->top` and the function's slot; a mismatch jumps to the
    /// out-of-line failure path (after the epilogue), which turns the byte distance into the
    /// count `luaffi_argcount_error` is given.
    pub(super) fn emit_check_arg_count_inline(&mut self, expected: i32) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let vm = self.vm()?;
        if !vm.slot.is_power_of_two() {
            return Err(BackendError::from(Invalid::LuaLayout { what: "stack slot bytes", value: i64::from(vm.slot) }));
        }
        let shift = vm.slot.trailing_zeros() as i8;
        let want = expected.checked_add(1).and_then(|n| n.checked_mul(vm.slot as i32)).ok_or_else(|| {
            BackendError::from(Invalid::OutOfRange { what: "inline Lua argument count", value: i64::from(expected) })
        })?;
        let top = vm.top as i32;
        self.load_func_slot(vm, RBX);
        asm_disp!(self.ops, top; mov rax, QWORD [lua_state + top]);
        asm!(self.ops
            ; sub rax, through
            ; cmp rax, want
        );
        let label = self.ops.new_dynamic_label();
        asm!(self.ops; jne =>label);
        self.failures.push(ArgCountFailure { label, expected, count: CountIn::SlotBytes { shift } });
        Ok(())
    }

    pub(super) fn emit_func_addr_from_upvalue(&mut self, n: u32, to: Slot) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let vm = self.vm()?;
        if n == 0 {
            return Err(BackendError::from(Invalid::OutOfRange { what: "upvalue", value: 0 }));
        }
        let up = (vm.cclosure_upvalues + (n - 1) * vm.slot) as i32;
        let to = self.disp(to)?;
        self.load_func_slot(vm, RBX);
        // The function slot's value is the C closure; its upvalue's value the address.
        asm!(self.ops; mov through, QWORD [through]);
        asm_disp!(self.ops, up; mov scratch, QWORD [through + up]);
        asm_disp!(self.ops, to; mov QWORD [rsp + to], scratch);
        Ok(())
    }

    /// Stores rax, an integer already checked as [`LuaVm::converts_inline`] requires, at
    /// `[rsp + to]` as the helper for `kind` returns it: narrowed to the C type, widened to
    /// the helper's 32- or 64-bit result.
    fn store_int_result(&mut self, kind: ValueKind, to: i32) -> Result<(), BackendError> {
        let width = match kind {
            ValueKind::Int { size: 8, .. } => 8,
            ValueKind::Int { size: 4, .. } => 4,
            ValueKind::Int { size: 2, signed: true } => {
                asm!(self.ops; movsx eax, ax);
                4
            }
            ValueKind::Int { size: 2, signed: false } => {
                asm!(self.ops; movzx eax, ax);
                4
            }
            ValueKind::Int { size: 1, signed: true } => {
                asm!(self.ops; movsx eax, al);
                4
            }
            ValueKind::Int { size: 1, signed: false } => {
                asm!(self.ops; movzx eax, al);
                4
            }
            other => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not converted inline" }))
            }
        };
        self.store_gpr(RAX, Gpr::SP.0, to, width)
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
        let dst = self.disp(to)?;
        let l = self.l_reg(l)?;
        if lua_index > 0 {
            self.load_func_slot(vm, l);
        } else {
            // Counted down from L->top.
            self.load_top(vm, l);
        }
        self.load_tag(vm, at)?;
        match vm.int_tag {
            // An integer to `float` takes the helper (one rounding, as C converts it).
            Some(int_tag) if kind == ValueKind::F32 => asm!(self.ops
                ; cmp eax, int_tag as i32
                ; je >slow
            ),
            Some(int_tag) => self.emit_int_to_c(int_tag, at, kind, dst)?,
            None => {}
        }
        asm!(self.ops
            ; cmp eax, vm.float_tag as i32
            ; jne >slow
        );
        self.load_xmm(0, R10, at, 8)?;
        match kind {
            ValueKind::F64 => self.store_xmm(0, Gpr::SP.0, dst, 8)?,
            ValueKind::F32 => {
                asm!(self.ops; cvtsd2ss xmm0, xmm0);
                self.store_xmm(0, Gpr::SP.0, dst, 4)?;
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
            other => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not converted inline" }))
            }
        }
        self.fast_path_done_else(slow)
    }

    /// The integer case of [`Self::emit_to_c_inline`]: eax holds the slot's tag; an integer
    /// at `[r10 + at]` is converted to `kind` at `[rsp + dst]` (then `jmp >done`), anything
    /// else goes on at `not_int:`.
    fn emit_int_to_c(&mut self, int_tag: u32, at: i32, kind: ValueKind, dst: i32) -> Result<(), BackendError> {
        asm!(self.ops
            ; cmp eax, int_tag as i32
            ; jne >not_int
        );
        match kind {
            ValueKind::F64 => {
                asm_disp!(self.ops, at; cvtsi2sd xmm0, QWORD [through + at]);
                self.store_xmm(0, Gpr::SP.0, dst, 8)?;
            }
            ValueKind::Int { size, signed } => {
                self.load_gpr(RAX, R10, at, 8, Ext::None)?;
                match (size, signed) {
                    (8, true) | (4, false) => {}
                    _ => self.check_int32_range(kind),
                }
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
        Ok(())
    }

    /// Stores at `[rsp + dst]` the address of the bytes of the string in the slot at
    /// `[r10 + at]` (its `TString` pointer, then the bytes where `bytes` says), then
    /// `jmp >done`.
    fn store_string_bytes(&mut self, at: i32, bytes: StrBytes, dst: i32) -> Result<(), BackendError> {
        self.load_gpr(RAX, R10, at, 8, Ext::None)?;
        match bytes {
            StrBytes::At(o) => asm!(self.ops; add rax, o as i32),
            StrBytes::Via(o) => self.load_gpr(RAX, RAX, o as i32, 8, Ext::None)?,
        }
        self.store_gpr(RAX, Gpr::SP.0, dst, 8)?;
        asm!(self.ops; jmp >done);
        Ok(())
    }

    pub(super) fn emit_ptr_inline(
        &mut self,
        lua_index: i32,
        to: Slot,
        strings: bool,
        slow: &Step,
    ) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.disp(to)?;
        self.load_func_slot(vm, RBX);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, vm.nil_tag as i32
            ; jne >not_nil
            ; xor eax, eax
        );
        self.store_gpr(RAX, Gpr::SP.0, dst, 8)?;
        asm!(self.ops
            ; jmp >done
            ; not_nil:
        );
        if strings {
            let s = vm.strings;
            let long = s.long_tag != s.short_tag;
            asm!(self.ops; cmp eax, s.short_tag as i32);
            if long {
                asm!(self.ops; jne >not_short);
            } else {
                asm!(self.ops; jne >slow);
            }
            self.store_string_bytes(at, s.short_bytes, dst)?;
            if long {
                asm!(self.ops
                    ; not_short:
                    ; cmp eax, s.long_tag as i32
                    ; jne >slow
                );
                self.store_string_bytes(at, s.long_bytes, dst)?;
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
        self.require(FrameKind::Stub)?;
        let vm = self.vm()?;
        let at = slot_disp(vm, lua_index, false)?;
        let dst = self.disp(to)?;
        let ud = vm.userdata;
        let ctype = self.env.ctype(CtypeRef::Arg(arg)) as i64;
        let (len_at, block_at) = (ud.len_at as i32, ud.block_at as i32);
        self.load_func_slot(vm, RBX);
        self.load_tag(vm, at)?;
        asm!(self.ops
            ; cmp eax, ud.tag as i32
            ; jne >slow
        );
        self.load_gpr(RAX, R10, at, 8, Ext::None)?;
        if let Some(nuv) = ud.no_user_values_at {
            let nuv = nuv as i32;
            asm_disp!(self.ops, nuv; cmp WORD [rax + nuv], 0);
            asm!(self.ops; jne >slow);
        }
        match cdata {
            CdataLayout::Header(h) => {
                let header = h.size as i32;
                let (tag_at, desc_at, bytes_at) = (h.tag_at as i32, h.desc_at as i32, h.bytes_at as i32);
                let (rot, key) = (h.tag_rotate as i8, h.tag_key as i64);
                // A block big enough for a header, carrying the tag of a cdata at its address,
                // of exactly this type with its bytes in the block.
                asm_disp!(self.ops, len_at; cmp QWORD [rax + len_at], header);
                asm!(self.ops; jb >slow);
                asm_disp!(self.ops, block_at; lea rcx, [rax + block_at]);
                asm!(self.ops
                    ; mov rdx, rcx
                    ; rol rdx, rot
                    ; mov scratch, QWORD key
                    ; xor rdx, scratch
                );
                asm_disp!(self.ops, tag_at; cmp rdx, QWORD [rcx + tag_at]);
                asm!(self.ops
                    ; jne >slow
                    ; mov scratch, QWORD ctype
                );
                asm_disp!(self.ops, desc_at; cmp QWORD [rcx + desc_at], scratch);
                asm!(self.ops; jne >slow);
                asm_disp!(self.ops, bytes_at; lea through, [rcx + bytes_at]);
            }
            CdataLayout::Bare { desc_metatable_at } => {
                let (meta_at, desc_meta_at) = (ud.metatable_at as i32, desc_metatable_at as i32);
                let size = size as i32;
                // A block at least the record's size, with the metatable of this type's
                // values (its ctype holds the address): the bytes are the block.
                asm_disp!(self.ops, len_at; cmp QWORD [rax + len_at], size);
                asm!(self.ops
                    ; jb >slow
                    ; mov scratch, QWORD ctype
                );
                asm_disp!(self.ops, desc_meta_at; mov scratch, QWORD [scratch + desc_meta_at]);
                asm_disp!(self.ops, meta_at; cmp QWORD [rax + meta_at], scratch);
                asm!(self.ops; jne >slow);
                asm_disp!(self.ops, block_at; lea through, [rax + block_at]);
            }
        }
        let mut done = 0;
        while done < size {
            let chunk = match size - done {
                n if n >= 8 => 8,
                n if n >= 4 => 4,
                n if n >= 2 => 2,
                _ => 1,
            };
            self.load_gpr(R11, R10, done as i32, chunk, Ext::Zero)?;
            self.store_gpr(R11, Gpr::SP.0, dst + done as i32, chunk)?;
            done += chunk;
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
        let src = self.disp(from)?;
        let sp = Gpr::SP.0;
        let mut needs_slow = false;
        // L stays in its register to the end: nothing below writes r11.
        let l = self.l_reg(l)?;
        self.load_top(vm, l);
        match (kind, vm.int_tag) {
            (ValueKind::F64, _) => {
                self.load_xmm(0, sp, src, 8)?;
                self.store_xmm(0, R10, 0, 8)?;
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::F32, _) => {
                self.load_xmm(0, sp, src, 4)?;
                asm!(self.ops; cvtss2sd xmm0, xmm0);
                self.store_xmm(0, R10, 0, 8)?;
                self.store_tag(vm, vm.float_tag)?;
            }
            (ValueKind::Int { size, signed }, int_tag) => {
                if size == 8 {
                    self.load_gpr(RAX, sp, src, 8, Ext::None)?;
                    if !signed {
                        // Above INT64_MAX the helper boxes a uint64_t.
                        needs_slow = true;
                        asm!(self.ops
                            ; test rax, rax
                            ; js >slow
                        );
                    }
                } else {
                    self.load_gpr(RAX, sp, src, u32::from(size), if signed { Ext::Sign } else { Ext::Zero })?;
                    if signed {
                        asm!(self.ops; movsxd rax, eax);
                    }
                }
                match int_tag {
                    Some(tag) => {
                        self.store_gpr(RAX, R10, 0, 8)?;
                        self.store_tag(vm, tag)?;
                    }
                    None if size <= 4 => {
                        asm!(self.ops; cvtsi2sd xmm0, rax);
                        self.store_xmm(0, R10, 0, 8)?;
                        self.store_tag(vm, vm.float_tag)?;
                    }
                    None => {
                        return Err(BackendError::from(Invalid::Kind {
                            kind,
                            role: "pushed inline by a Lua without integers",
                        }))
                    }
                }
            }
            (other, _) => {
                return Err(BackendError::from(Invalid::Kind { kind: other, role: "that is not pushed inline" }))
            }
        }
        let (top, slot) = (vm.top as i32, vm.slot as i32);
        asm_disp!(self.ops, top; add QWORD [Rq(l) + top], slot);
        if needs_slow {
            self.fast_path_done_else(slow)?;
        }
        Ok(())
    }

    fn call_slots(&self) -> Result<abi_model::lua::CallSlots, BackendError> {
        self.env.call_slots.ok_or_else(|| BackendError::from(Invalid::NoCallSlots))
    }

    /// `errno` is the CRT's per-thread variable: its address comes from the `ErrnoLocation`
    /// helper (`_errno()` on Windows), kept at `errno_at` for [`Self::emit_after_call_inline`].
    pub(super) fn emit_errno_restore_inline(&mut self, errno_at: Slot, prev_l_at: Slot) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let slots = self.call_slots()?;
        // rax = &errno, kept at errno_at across the call.
        self.call_helper(Helper::ErrnoLocation, &[], Some(errno_at))?;
        let prev = self.disp(prev_l_at)?;
        let (saved, calling_l) = (slots.saved_errno as i64, slots.calling_l as i64);
        asm!(self.ops
            ; mov rcx, QWORD saved
            ; mov ecx, [rcx]
            ; mov [rax], ecx
            ; mov rcx, QWORD calling_l
            ; mov rdx, [rcx]
            ; mov [rcx], lua_state
        );
        asm_disp!(self.ops, prev; mov QWORD [rsp + prev], rdx);
        Ok(())
    }

    pub(super) fn emit_after_call_inline(
        &mut self,
        errno_at: Slot,
        prev_l_at: Slot,
        slow: &Step,
    ) -> Result<(), BackendError> {
        self.require(FrameKind::Stub)?;
        let slots = self.call_slots()?;
        let (at, prev) = (self.disp(errno_at)?, self.disp(prev_l_at)?);
        let (saved, calling_l, pending) =
            (slots.saved_errno as i64, slots.calling_l as i64, slots.pending_error as i64);
        // Only volatile registers: the call's result is already in its slot.
        asm_disp!(self.ops, at; mov through, QWORD [rsp + at]);
        asm!(self.ops
            ; mov ecx, [through]
            ; mov scratch, QWORD saved
            ; mov [scratch], ecx
        );
        asm_disp!(self.ops, prev; mov rcx, QWORD [rsp + prev]);
        asm!(self.ops
            ; mov scratch, QWORD calling_l
            ; mov [scratch], rcx
            ; mov scratch, QWORD pending
            ; cmp DWORD [scratch], slots.no_pending
            ; je >done
        );
        self.lower(slow)?;
        asm!(self.ops; done:);
        Ok(())
    }

    /// The callback's entry: L from the call slots, then, when the record holds the
    /// function's value and the stack has the room (what `lua_checkstack` would find with
    /// nothing to do), the push. r11 = L, r10 = `L->top`, rcx = the record.
    pub(super) fn emit_callback_enter_inline(
        &mut self,
        to: Slot,
        room: u32,
        func: CallbackFunc,
        slow: &Step,
    ) -> Result<(), BackendError> {
        self.require(FrameKind::Thunk)?;
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let room_bytes =
            u64::from(room).checked_mul(u64::from(vm.slot)).and_then(|b| i32::try_from(b).ok()).ok_or_else(|| {
                BackendError::from(Invalid::OutOfRange { what: "callback stack slots", value: i64::from(room) })
            })?;
        let (calling_l, main_l, record) = (slots.calling_l as i64, slots.main_l as i64, self.env.callback_data as i64);
        let (top, stack_last, ci, ci_top) =
            (vm.top as i32, vm.room.stack_last as i32, vm.room.ci as i32, vm.room.ci_top as i32);
        let (value_at, tag_at, slot) = (func.value_at as i32, func.tag_at as i32, vm.slot as i32);
        let to = self.disp(to)?;
        asm!(self.ops
            ; mov rax, QWORD calling_l
            ; mov scratch, [rax]
            ; test scratch, scratch
            ; jnz >have_l
            ; mov rax, QWORD main_l
            ; mov scratch, [rax]
            ; have_l:
            ; mov rcx, QWORD record
        );
        asm_disp!(self.ops, tag_at; mov eax, DWORD [rcx + tag_at]);
        asm!(self.ops
            ; cmp eax, CallbackFunc::NONE as i32
            ; je >slow
        );
        // lua_checkstack(L, room) changes nothing when stack_last - top > room slots and
        // ci->top >= top + room slots.
        self.load_top(vm, R11);
        asm_disp!(self.ops, stack_last; mov rdx, QWORD [scratch + stack_last]);
        asm!(self.ops
            ; sub rdx, through
            ; cmp rdx, room_bytes
            ; jle >slow
        );
        asm_disp!(self.ops, ci; mov rdx, QWORD [scratch + ci]);
        asm_disp!(self.ops, ci_top; mov rdx, QWORD [rdx + ci_top]);
        asm!(self.ops
            ; sub rdx, through
            ; cmp rdx, room_bytes
            ; jl >slow
        );
        asm_disp!(self.ops, value_at; mov rdx, QWORD [rcx + value_at]);
        asm!(self.ops; mov [through], rdx);
        self.store_tag_from(vm, RAX)?;
        asm_disp!(self.ops, top; add QWORD [scratch + top], slot);
        asm_disp!(self.ops, to; mov QWORD [rsp + to], scratch);
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
        self.require(FrameKind::Thunk)?;
        let vm = self.vm()?;
        let slots = self.call_slots()?;
        let nargs = i32::try_from(nargs).map_err(|_| {
            BackendError::from(Invalid::OutOfRange { what: "callback arguments", value: i64::from(nargs) })
        })?;
        let pending = slots.pending_error as i64;
        asm!(self.ops
            ; mov rax, QWORD pending
            ; cmp DWORD [rax], slots.no_pending
            ; jne >slow
        );
        // lua_pcallk(L, nargs, 1, 0, 0, NULL).
        let pcall =
            [l, Operand::Imm(nargs), Operand::Imm(1), Operand::Imm(0), Operand::Imm(0), Operand::Imm(0)].map(Src::Op);
        self.call_helper(Helper::CallbackPcall, &pcall, Some(status_at))?;
        // eax = the status (also at status_at).
        if result == ValueKind::Void {
            asm!(self.ops; test eax, eax; jz >done);
        } else if vm.converts_inline(result) {
            asm!(self.ops; test eax, eax; jnz >check);
            let l = self.l_reg(l)?;
            self.load_top(vm, l);
            self.load_tag(vm, -(vm.slot as i32))?;
            if let Some(int_tag) = vm.int_tag {
                asm!(self.ops; cmp eax, int_tag as i32; je >done);
            }
            asm!(self.ops; cmp eax, vm.float_tag as i32; je >done);
        }
        asm!(self.ops; check:);
        let status = Operand::Value { at: status_at, kind: ValueKind::Int { size: 4, signed: true } };
        self.call_helper(Helper::CallbackResult, &[l, status, Operand::CallbackData].map(Src::Op), None)?;
        self.fast_path_done_else(slow)
    }

    /// Pops one value: `L->top` down one slot.
    pub(super) fn emit_pop_inline(&mut self, l: Operand) -> Result<(), BackendError> {
        let vm = self.vm()?;
        let l = self.l_reg(l)?;
        let (top, slot) = (vm.top as i32, vm.slot as i32);
        asm_disp!(self.ops, top; sub QWORD [Rq(l) + top], slot);
        Ok(())
    }
}
