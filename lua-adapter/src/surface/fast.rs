//! The inline paths of the cdata metamethods: `v.x` and `v.x = n` for a numeric member of a
//! record (or of the record a pointer points to), and calling a function pointer whose stub
//! is built, read and written with the verified stack layout
//! ([`crate::stack::vm_check::process_layout`]) and no Lua API call.
//!
//! A numeric member is found in the state's field cache ([`FfiState::field`]) by the
//! cdata's type descriptor and the address of the key's string: Lua interns short strings,
//! so the same key is the same object while it is alive, and each cache slot keeps its key
//! string alive (the registry table `field_keys`), so no other string can take that address
//! while the slot compares it. A miss, any other key or value, and every other case fall to
//! the general metamethod, which answers exactly as before ([`crate::surface::meta`]); the
//! inline paths only answer what it would answer.
//!
//! `c[i]` with a number key on a pointer or array cdata needs no cache: its descriptor says
//! how the element is reached ([`crate::ctypes::state::Elem`], made with it). A number is
//! read or written from the element's bytes; a record element is pushed as the same
//! reference the general path makes, with the element's descriptor kept in the cdata's
//! (`elem_desc`) instead of looked up by type, and the state's metatable slot instead of a
//! registry read.
//!
//! What they save is the C API's own work: `lua_touserdata` of the state's upvalue, the
//! stack reads of `lua_type`/`lua_tolstring`/`lua_tonumberx`, the member lookup's hashing,
//! and `lua_pushnumber`. Lua's metamethod dispatch, which a hand-written `__index` pays
//! too, stays.

use std::os::raw::c_int;

use abi_model::lua::vm::LuaVm;
use mlua::ffi;

use crate::cdata::{self, Cdata, Form};
use crate::convert::{f64_to_i64, f64_to_int_bits};
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{CTypeDesc, Elem, FfiState, Field, FieldKind};
use crate::stack::vm_check::{process_layout, Frame};

/// What an inline path did.
pub enum Fast {
    /// It answered (pushed the result, or stored the value).
    Done,
    /// The key is a short string and the cdata a record (or pointer) of this state that the
    /// cache does not know with this key: [`learn`] may fill a slot.
    Uncached { st: *mut FfiState, c: Cdata, key: usize },
    /// Anything else: the general path answers.
    Other,
}

/// The cdata of the running metamethod's state at argument 1 (a value or a reference, not
/// a ctype object), with the state and the frame; `None` when the inline paths cannot tell.
///
/// # Safety
/// A metamethod of the cdata metatable (upvalue 1: the state) is running on `l`.
#[inline(always)]
unsafe fn self_value(l: *mut ffi::lua_State, args: usize) -> Option<(&'static LuaVm, Frame, *mut FfiState, Cdata)> {
    // SAFETY: the layout is verified for this process's Lua; the frame has `args` arguments;
    // upvalue 1 of every cdata metamethod is its state (`meta::create_metatables`); the block
    // is a full userdata without user values as `vm` lays it out, which `in_block` takes for a
    // cdata only by this state's metatables and tag, and only as large as its block.
    unsafe {
        let vm = process_layout()?;
        let fr = Frame::with_args(l, vm, args)?;
        let st = fr.light_upvalue1(vm) as *mut FfiState;
        let c = match fr.full_userdata(vm, 1) {
            Some((block, len)) => cdata::in_block(vm, block, len, st),
            // A reference keeps its owner in a user value (5.4: its block is elsewhere).
            None => cdata::userdata_cdata(l, st, 1),
        };
        if c.is_null() || c.form() == Form::CType {
            return None;
        }
        Some((vm, fr, st, c))
    }
}

/// The address of `f`'s bytes in the cdata `c`.
///
/// # Safety
/// `c` is a live cdata of the descriptor `f` was made for.
#[inline(always)]
unsafe fn field_at(c: Cdata, f: &Field) -> *mut u8 {
    // SAFETY: `c` is a live value or reference (caller's contract): its bytes hold the record,
    // or a pointer to it when `deref` (memory reached through it is the user's, as in C).
    unsafe {
        let mut p = cdata::bytes(c);
        if f.deref {
            p = (p as *const usize).read_unaligned() as *mut u8;
        }
        p.wrapping_add(f.offset)
    }
}

/// `__index` for a cached numeric member, or a numeric or record element `c[i]` with a
/// number key.
///
/// # Safety
/// A metamethod of the cdata metatable (upvalue 1: its state) is running on `l`.
#[inline(always)]
pub unsafe fn index(l: *mut ffi::lua_State) -> Fast {
    // SAFETY: `self_value`'s contract; a cached field of the cdata's descriptor names bytes
    // of its kind inside the record; the push goes to the free slot every C function has.
    unsafe {
        let Some((vm, fr, st, c)) = self_value(l, 2) else { return Fast::Other };
        let Some(key) = fr.short_string(vm, 2) else { return index_element(l, vm, fr, st, c) };
        let Some(f) = (*st).field(c.desc() as usize, key) else { return Fast::Uncached { st, c, key } };
        push_number_at(l, vm, fr, field_at(c, &f), f.kind)
    }
}

/// Pushes the number of `kind` at `p` (`Other` for a `uint64_t` above the largest integer,
/// which the general path boxes).
///
/// # Safety
/// `p` has the bytes of `kind`; `fr` is the running frame of `l`, nothing pushed since.
#[inline(always)]
unsafe fn push_number_at(l: *mut ffi::lua_State, vm: &LuaVm, fr: Frame, p: *const u8, kind: FieldKind) -> Fast {
    // SAFETY: the caller's contract; the push goes to the free slot every C function has.
    unsafe {
        match kind {
            FieldKind::Float(4) => fr.push_number(l, vm, (p as *const f32).read_unaligned() as f64),
            FieldKind::Float(_) => fr.push_number(l, vm, (p as *const f64).read_unaligned()),
            FieldKind::Int(size, signed) => {
                let v = read_int(p, size, signed);
                if size == 8 && !signed && v > i64::MAX as u64 {
                    return Fast::Other;
                }
                fr.push_integer(l, vm, v as i64);
            }
        }
        Fast::Done
    }
}

/// The address of `c[i]` for the number key at argument 2 of the pointer or array cdata `c`,
/// with how its element is reached; `None` for any other key or cdata. The index converts
/// and the address is computed as [`crate::surface::meta`]'s `resolve` does them: an array's
/// extent is not checked there, as in LuaJIT and C, so it is not here.
///
/// # Safety
/// `c` is a live cdata, not a ctype object; `fr` the running frame with 2 arguments.
#[inline(always)]
unsafe fn element(vm: &LuaVm, fr: Frame, c: Cdata) -> Option<(*mut u8, Elem)> {
    // SAFETY: `c` is live (caller's contract): its descriptor and bytes are valid, and a
    // pointer cdata's bytes hold the pointer; the elements' memory is the user's, as in C.
    unsafe {
        let desc = c.desc();
        let e = (*desc).elem?;
        let (v, t) = fr.arg(vm, 2);
        let i = if vm.int_tag == Some(t) {
            v as i64
        } else if t == vm.float_tag {
            f64_to_i64(f64::from_bits(v))
        } else {
            return None;
        };
        let mut base = cdata::bytes(c);
        if e.deref {
            base = (base as *const usize).read_unaligned() as *mut u8;
        }
        Some((base.wrapping_add((i as isize).wrapping_mul(e.step as isize) as usize), e))
    }
}

/// `__index` for `c[i]`: a numeric element pushed from its bytes, a record element as a
/// reference made with the element's descriptor kept in `c`'s descriptor (the general path
/// looks it up by type) and the state's metatable slot.
///
/// # Safety
/// As [`index`], with `self_value`'s answer.
#[inline(always)]
unsafe fn index_element(l: *mut ffi::lua_State, vm: &LuaVm, fr: Frame, st: *mut FfiState, c: Cdata) -> Fast {
    // SAFETY: `element`'s contract holds (`self_value` found `c`); the reference is the one
    // `convert::c_to_lua` pushes for the element, its owner anchored when `c` holds the
    // elements (an array), as the general path does; nothing here owns memory when the
    // userdata allocation raises.
    unsafe {
        let Some((p, e)) = element(vm, fr, c) else { return Fast::Other };
        if let Some(kind) = e.kind {
            return push_number_at(l, vm, fr, p, kind);
        }
        let desc = c.desc();
        let mut d = (*desc).elem_desc.get();
        if d == 0 {
            d = (*st).desc(e.ty) as usize;
            (*desc).elem_desc.set(d);
        }
        let (owner, anchor) = if e.deref { (Cdata::NULL, 0) } else { (c, 1) };
        cdata::push_ref_owned(l, st, d as *const CTypeDesc, p, owner, anchor);
        Fast::Done
    }
}

/// `__newindex` for a cached writable numeric member, or a writable numeric element `c[i]`
/// with a number key, and a number, converted as the general path converts it
/// (`convert::value_to_c`).
///
/// # Safety
/// A metamethod of the cdata metatable (upvalue 1: its state) is running on `l`.
#[inline(always)]
pub unsafe fn newindex(l: *mut ffi::lua_State) -> Fast {
    // SAFETY: a cdata metamethod runs on `l` (caller's contract), so the frame, upvalue and
    // cdata reads of `self_value` hold; a cached writable field names bytes of its kind inside
    // the record, a writable element bytes of its kind (memory reached through a pointer, or
    // past an array's end, is the user's, as in C and LuaJIT); the value at argument 3 is
    // read as its tag says.
    unsafe {
        let Some((vm, fr, st, c)) = self_value(l, 3) else { return Fast::Other };
        let (p, kind) = match fr.short_string(vm, 2) {
            Some(key) => {
                let Some(f) = (*st).field(c.desc() as usize, key) else { return Fast::Uncached { st, c, key } };
                if !f.writable {
                    return Fast::Other;
                }
                (field_at(c, &f), f.kind)
            }
            None => match element(vm, fr, c) {
                Some((p, Elem { kind: Some(kind), writable: true, .. })) => (p, kind),
                _ => return Fast::Other,
            },
        };
        let (v, t) = fr.arg(vm, 3);
        let int = vm.int_tag == Some(t);
        if t != vm.float_tag && !int {
            return Fast::Other;
        }
        match kind {
            FieldKind::Float(size) => {
                let n = if int { v as i64 as f64 } else { f64::from_bits(v) };
                if size == 4 {
                    (p as *mut f32).write_unaligned(n as f32);
                } else {
                    (p as *mut f64).write_unaligned(n);
                }
            }
            FieldKind::Int(size, signed) => {
                // A Lua integer converts as C converts an `int64_t` (modulo 2^N; `value_to_c`
                // takes the double path only where it gives the same bits), a float as LuaJIT
                // converts a double.
                let bits = if int { v } else { f64_to_int_bits(f64::from_bits(v), size, signed) };
                write_int(p, size, bits);
            }
        }
        Fast::Done
    }
}

/// Fills the cache slot for the key string at argument 2 (`key`, a short string) of the
/// record cdata `c` at argument 1 (or a pointer to a record), when the key names a numeric
/// member that is not a bit-field; nothing otherwise. The general path then answers this
/// access.
///
/// # Safety
/// `c` is the live cdata at argument 1 of a metamethod of `st`'s metatable, not a ctype
/// object; `key` is the address of the short string at argument 2. Nothing is owned here
/// when the registry write raises (a memory error).
#[cold]
#[inline(never)]
pub unsafe fn learn(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata, key: usize) {
    // SAFETY: the caller's contract; the stack use is two slots of the metamethod's
    // LUA_MINSTACK.
    unsafe {
        let desc = c.desc();
        let (rec, deref) = match (*desc).shape {
            Shape::Record => ((*desc).ty, false),
            Shape::Pointer(to) if shape(&(*st).types, to.id) == Shape::Record => (to, true),
            _ => return,
        };
        let mut len = 0usize;
        let k = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
        let Some(m) = (*st).member(rec.id, std::slice::from_raw_parts(k, len), k as usize) else { return };
        let kind = match (m.shape, m.bits) {
            (Shape::Float { size }, None) => FieldKind::Float(size),
            (Shape::Int { size, signed }, None) if size < 8 || cdata::HAS_INTEGERS => FieldKind::Int(size, signed),
            _ => return,
        };
        let Ok(offset) = usize::try_from(m.offset) else { return };
        let f =
            Field { desc: desc as usize, key, offset, kind, deref, writable: !rec.quals.union(m.ty.quals).is_const };
        // Keep the key string alive while the slot compares its address.
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, (*st).refs().field_keys as ffi::lua_Integer);
        ffi::lua_pushvalue(l, 2);
        ffi::lua_rawseti(l, -2, (Field::slot(f.desc, key) + 1) as ffi::lua_Integer);
        ffi::lua_pop(l, 1);
        (*st).set_field(f);
    }
}

/// `__call` of a function or function pointer cdata whose stub is built: the stub, entered
/// as the body of this metamethod; `None` for everything else.
///
/// # Safety
/// A metamethod of the cdata metatable (upvalue 1: its state) is running on `l`.
#[inline(always)]
pub unsafe fn call(l: *mut ffi::lua_State) -> Option<c_int> {
    // SAFETY: `self_value`'s contract; the cached stub is the descriptor's signature's, which
    // reads the called cdata at index 1.
    unsafe {
        let (_, _, _, c) = self_value(l, 1)?;
        let stub = (*c.desc()).call_stub.get();
        (stub != 0).then(|| crate::native::call::call_stub(l, c, stub))
    }
}

/// An integer of `size` bytes at `p`, sign- or zero-extended.
///
/// # Safety
/// `p` has `size` readable bytes.
#[inline(always)]
unsafe fn read_int(p: *const u8, size: u8, signed: bool) -> u64 {
    // SAFETY: `p` has `size` readable bytes (caller's contract), what `read_int` needs.
    unsafe { crate::convert::read_int(p, size, signed) }
}

/// The low `size` bytes of `v` at `p`, one store.
///
/// # Safety
/// `p` has `size` writable bytes.
#[inline(always)]
unsafe fn write_int(p: *mut u8, size: u8, v: u64) {
    // SAFETY: `p` has `size` writable bytes (caller's contract); unaligned stores serve
    // packed members.
    unsafe {
        match size {
            1 => p.write(v as u8),
            2 => (p as *mut u16).write_unaligned(v as u16),
            4 => (p as *mut u32).write_unaligned(v as u32),
            _ => (p as *mut u64).write_unaligned(v),
        }
    }
}
