//! cdata: full userdata holding a C object (or a reference to one, or a ctype), and the
//! creation, recognition and error-raising primitives the rest of the module shares.
//!
//! Every cdata userdata starts with a [`Cdata`] header: the object's type descriptor, the
//! address of its bytes, their length and its [`Form`]. A value's bytes follow the header in
//! the same userdata, aligned to the type's alignment (the userdata is over-allocated by
//! `align - 1` bytes), so they are freed with it. A reference's bytes live in another object,
//! which the reference keeps alive through its user value.
//!
//! All cdata share one metatable (or its twin with `__gc`, given to cdata that have a
//! finalizer), whose metamethods dispatch on the type (see [`crate::surface::meta`]).

use std::os::raw::{c_int, c_void};

use abi_model::QualType;
use mlua::ffi;

use crate::ctypes::state::{CTypeDesc, FfiState};
use crate::stack::{self, new_userdata, Raise};

/// What a cdata userdata holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A C object stored in this userdata.
    Value,
    /// A reference to a C object stored elsewhere (a struct member or array element that is
    /// itself an aggregate, or the target of a pointer).
    Ref,
    /// A ctype object (what `ffi.typeof` returns): no C object at all.
    CType,
}

/// The header at the start of every cdata userdata: 32 bytes on 64-bit targets (the length
/// shares a word with the form), 20 on 32-bit ones.
#[repr(C)]
pub struct Cdata {
    /// The object's type.
    pub desc: *const CTypeDesc,
    /// The object's bytes (null for a ctype object).
    pub ptr: *mut u8,
    /// What this is.
    pub form: Form,
    /// [`Cdata::byte_len`], stored in the bytes after `form`.
    len: StoredLen,
    /// `tag_of` this header in its state: how [`to_cdata`] recognises a cdata of this state
    /// without pushing and comparing its metatable.
    pub tag: usize,
}

/// How [`Cdata::byte_len`] is stored: 56 bits little-endian on 64-bit targets (no object reaches
/// 2^56 bytes; all ones is [`UNKNOWN_LEN`]), a word on 32-bit ones.
#[cfg(target_pointer_width = "64")]
type StoredLen = [u8; 7];
#[cfg(not(target_pointer_width = "64"))]
type StoredLen = usize;

#[cfg(target_pointer_width = "64")]
const STORED_UNKNOWN: usize = (1 << 56) - 1;

impl Cdata {
    fn new(desc: *const CTypeDesc, ptr: *mut u8, len: usize, form: Form, tag: usize) -> Cdata {
        #[cfg(target_pointer_width = "64")]
        let len = {
            let bytes = len.min(STORED_UNKNOWN).to_le_bytes();
            [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6]]
        };
        Cdata { desc, ptr, form, len, tag }
    }

    /// Number of bytes at `ptr`: a value's size (the actual size of a variable-length
    /// object); for a reference, what remains of the object that owns its bytes, or
    /// [`UNKNOWN_LEN`] for memory reached through a raw pointer.
    #[inline]
    pub fn byte_len(&self) -> usize {
        #[cfg(target_pointer_width = "64")]
        {
            let b = self.len;
            let v = usize::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], 0]);
            if v == STORED_UNKNOWN {
                UNKNOWN_LEN
            } else {
                v
            }
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            self.len
        }
    }
}

/// The tag of the header at `c` in state `st`: both addresses mixed with a constant, so a
/// userdata that is not one of this state's cdata (another library's, or a cdata of another
/// copy of the module) carries it only by a 1-in-2^64 (2^32 on a 32-bit host) accident. Lua code cannot write a
/// userdata's bytes, so it cannot forge one.
#[inline(always)]
fn tag_of(c: *const Cdata, st: *const FfiState) -> usize {
    (c as usize).rotate_left(TAG_ROTATE) ^ (st as usize) ^ TAG_KEY
}

const TAG_ROTATE: u32 = 17;
// Its low 32 bits on a 32-bit host, where tags are 32-bit (as backend-x86 computes them).
const TAG_KEY: usize = 0x6c75_6166_6669_2d72_u64 as usize;

/// The header as data, for stubs of state `st` that copy record arguments from a cdata of
/// exactly their type inline (the same test as [`userdata_cdata`] plus the type and form).
pub fn header_layout(st: *const FfiState) -> abi_model::lua::steps::CdataHeader {
    abi_model::lua::steps::CdataHeader {
        size: HEADER as u32,
        desc_at: std::mem::offset_of!(Cdata, desc) as u32,
        ptr_at: std::mem::offset_of!(Cdata, ptr) as u32,
        form_at: std::mem::offset_of!(Cdata, form) as u32,
        no_object: Form::CType as u8,
        tag_at: std::mem::offset_of!(Cdata, tag) as u32,
        tag_rotate: TAG_ROTATE,
        tag_key: ((st as usize) ^ TAG_KEY) as u64,
    }
}

/// Lua 5.3 and later have integers: C integers read from memory become Lua integers there.
pub const HAS_INTEGERS: bool = cfg!(any(feature = "lua53", feature = "lua54", feature = "lua55"));

const HEADER: usize = std::mem::size_of::<Cdata>();

/// The alignment every Lua userdata block has at least (Lua aligns them to `LUAI_MAXALIGN`,
/// which includes a pointer's); the header's size is a multiple of it, so a value of a type
/// aligned no more than this needs no room to be realigned.
const BLOCK_ALIGN: usize = std::mem::align_of::<usize>();

/// Pushes a new value cdata of type `desc` with `len` zeroed bytes, aligned to the type's
/// alignment, and returns its header.
///
/// # Safety
/// `l` must be valid with 2 free stack slots; `st` is its state. May raise a memory error
/// (nothing is owned in this frame).
pub unsafe fn push_value(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc, len: usize) -> *mut Cdata {
    // SAFETY: desc comes from the state and lives as long as it.
    let align = unsafe { (*desc).align.max(1) } as usize;
    let total = HEADER + len + if align > BLOCK_ALIGN { align - 1 } else { 0 };
    // SAFETY: valid-L; the userdata has `total` writable bytes.
    unsafe {
        let base = new_userdata(l, total, 0) as *mut u8;
        let start = base as usize + HEADER;
        let aligned = start.next_multiple_of(align);
        let ptr = base.add(aligned - base as usize);
        debug_assert!(aligned + len <= base as usize + total, "the userdata block is aligned to BLOCK_ALIGN");
        std::ptr::write_bytes(ptr, 0, len);
        let c = base as *mut Cdata;
        c.write(Cdata::new(desc, ptr, len, Form::Value, tag_of(c, st)));
        set_meta(l, st, false);
        c
    }
}

/// [`set_meta`] without `__gc`, pushing the metatable from the copy of its stack slot the
/// state keeps once it has read it (with the verified layout; the registry lookup otherwise).
///
/// # Safety
/// As [`set_meta`], in a function Lua called (or a callback's frame above one).
unsafe fn set_plain_meta(l: *mut ffi::lua_State, st: *mut FfiState) {
    // SAFETY: valid-L with a free slot and the userdata at the top (caller's contract); the
    // slot copy was read from this state's metatable, which its registry reference keeps
    // alive, with the layout verified for this Lua; `read_slot` reads the top slot just pushed
    // inside the running frame.
    unsafe {
        let Some(vm) = (*st).inline_vm().copied() else { return set_meta(l, st, false) };
        match (*st).metatable_slot() {
            Some(slot) => {
                crate::stack::vm_check::push_slot(l, vm, slot);
                ffi::lua_setmetatable(l, -2);
            }
            None => {
                set_meta(l, st, false);
                if ffi::lua_getmetatable(l, -1) != 0 {
                    if let Some(slot) = crate::stack::vm_check::read_slot(l, &vm, -1) {
                        (*st).set_metatable_slot(slot);
                    }
                    ffi::lua_pop(l, 1);
                }
            }
        }
    }
}

/// Pushes a new value cdata of the scalar type `desc` (`len` bytes, at most 8) holding the low
/// `len` bytes of `bits`, and returns its header: [`push_value`] without the zeroing and, for a
/// type aligned no more than a userdata block, without the realignment. The constructor of the
/// values C hands back one at a time (boxed 64-bit results, pointer arguments of callbacks).
///
/// # Safety
/// As [`push_value`]; `len` is the type's size.
pub unsafe fn push_scalar(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    bits: u64,
    len: usize,
) -> *mut Cdata {
    debug_assert!(len <= 8, "a scalar has at most 8 bytes");
    // The low `len` bytes of `bits`, as the little-endian x86 targets store them; the usual
    // sizes with one store (a call to `memcpy` costs more than the rest of the header).
    let store = |ptr: *mut u8| {
        // SAFETY: `ptr` has `len` writable bytes (the callers below).
        unsafe {
            match len {
                8 => (ptr as *mut u64).write_unaligned(bits),
                4 => (ptr as *mut u32).write_unaligned(bits as u32),
                n => std::ptr::copy_nonoverlapping(bits.to_le_bytes().as_ptr(), ptr, n.min(8)),
            }
        }
    };
    // SAFETY: desc comes from the state and lives as long as it; valid-L with 2 free slots
    // (caller's contract): the userdata has `HEADER + len` writable bytes, and the value's bytes
    // right after the header are aligned for the type (the block is aligned to BLOCK_ALIGN, a
    // multiple of the type's alignment here, and so is HEADER).
    unsafe {
        if (*desc).align as usize > BLOCK_ALIGN {
            let c = push_value(l, st, desc, len);
            store((*c).ptr);
            return c;
        }
        let base = new_userdata(l, HEADER + len, 0) as *mut u8;
        let ptr = base.add(HEADER);
        store(ptr);
        let c = base as *mut Cdata;
        c.write(Cdata::new(desc, ptr, len, Form::Value, tag_of(c, st)));
        set_plain_meta(l, st);
        c
    }
}

/// [`Cdata::byte_len`] of a reference to memory of unknown extent (reached through a raw pointer).
pub const UNKNOWN_LEN: usize = usize::MAX;

/// The bytes from `p` to the end of the object that `c` holds or refers to (0 past its end),
/// or `u64::MAX` when its extent is unknown.
///
/// # Safety
/// `c` is a live cdata header.
pub unsafe fn room_at(c: *const Cdata, p: *const u8) -> u64 {
    // SAFETY: `c` is a live-cdata (caller's contract): its header fields are initialised and
    // readable.
    let (ptr, len) = unsafe { ((*c).ptr as usize, (*c).byte_len()) };
    if len == UNKNOWN_LEN {
        return u64::MAX;
    }
    (ptr + len).saturating_sub(p as usize) as u64
}

/// Pushes a reference cdata to the object of type `desc` at `ptr`. If `anchor` is not 0, the
/// value at that stack index (the object owning the bytes, a cdata) is kept alive by the
/// reference, and bounds it: the reference's `len` is what remains of that object from `ptr`.
///
/// # Safety
/// `l` valid with 3 free slots; `anchor` 0 or a valid absolute index.
pub unsafe fn push_ref(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    ptr: *mut u8,
    anchor: c_int,
) -> *mut Cdata {
    // SAFETY: valid-L; the userdata holds a header.
    unsafe {
        let owner = if anchor != 0 { to_cdata(l, st, anchor) } else { std::ptr::null_mut() };
        let len =
            if owner.is_null() { UNKNOWN_LEN } else { usize::try_from(room_at(owner, ptr)).unwrap_or(UNKNOWN_LEN) };
        let c = new_userdata(l, HEADER, 1) as *mut Cdata;
        c.write(Cdata::new(desc, ptr, len, Form::Ref, tag_of(c, st)));
        set_meta(l, st, false);
        if anchor != 0 {
            set_anchor(l, anchor);
        }
        c
    }
}

/// Makes the userdata at the top keep the value at `anchor` alive (its user value).
unsafe fn set_anchor(l: *mut ffi::lua_State, anchor: c_int) {
    // SAFETY: valid-L: pushes and pops within its free slots; user values accept any value on 5.3+,
    // a table on 5.1/5.2 (the anchor is wrapped in one).
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushvalue(l, anchor);
        } else {
            ffi::lua_createtable(l, 1, 0);
            ffi::lua_pushvalue(l, anchor);
            ffi::lua_rawseti(l, -2, 1);
        }
        ffi::lua_setuservalue(l, -2);
    }
}

/// Pushes the ctype object of `desc`; equal types give the same object while it lives.
///
/// # Safety
/// `l` valid with 3 free slots.
pub unsafe fn push_ctype(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc) {
    // SAFETY: valid-L: pushes and pops within its free slots; the cache table is anchored in the
    // registry.
    unsafe {
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, (*st).refs().ctype_cache as ffi::lua_Integer);
        ffi::lua_rawgetp(l, -1, desc as *const c_void);
        if ffi::lua_isnil(l, -1) == 0 {
            ffi::lua_remove(l, -2);
            return;
        }
        ffi::lua_pop(l, 1);
        let c = new_userdata(l, HEADER, 0) as *mut Cdata;
        c.write(Cdata::new(desc, std::ptr::null_mut(), 0, Form::CType, tag_of(c, st)));
        set_meta(l, st, false);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, -3, desc as *const c_void);
        ffi::lua_remove(l, -2);
    }
}

/// Sets the cdata metatable (with `__gc` when `with_gc`) on the userdata at the top.
///
/// # Safety
/// `l` valid with a free slot; the top is a userdata.
pub unsafe fn set_meta(l: *mut ffi::lua_State, st: *mut FfiState, with_gc: bool) {
    // SAFETY: the metatables are anchored in the registry by `meta::create_metatables`.
    unsafe {
        let r = if with_gc { (*st).refs().gc_metatable } else { (*st).refs().metatable };
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
        ffi::lua_setmetatable(l, -2);
    }
}

/// The cdata header of the value at `idx`, or null if it is not a cdata of this state.
///
/// A function returned by a namespace (`ffi.C.f`, a C closure over its function cdata, see
/// [`crate::native::call`]) counts as its function cdata: the header returned is that cdata's, kept
/// alive by the closure at `idx`.
///
/// # Safety
/// `l` valid with 2 free slots; `st` its state.
#[inline]
pub unsafe fn to_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> *mut Cdata {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        if let Some(c) = stack_userdata_cdata(l, st, idx) {
            return c;
        }
        match ffi::lua_type(l, idx) {
            ffi::LUA_TUSERDATA => api_userdata_cdata(l, st, idx),
            ffi::LUA_TFUNCTION => closure_cdata(l, st, idx),
            _ => std::ptr::null_mut(),
        }
    }
}

/// The cdata header of the userdata at `idx`, or null if it is not a cdata of `st`: a block
/// large enough for a header that carries this state's tag (no stack traffic, unlike a
/// metatable comparison). Any other value at `idx` gives null too (`lua_touserdata` is null
/// for it, or `lua_rawlen` 0 for a light userdata), which makes this the cheapest test for a
/// value that cannot be a namespace function.
///
/// # Safety
/// `l` valid; `idx` a valid index; `st` its state.
#[inline]
pub unsafe fn userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> *mut Cdata {
    // SAFETY: valid-L, an acceptable `idx` and live-state `st` (caller's contract), which both
    // lookups need.
    unsafe { stack_userdata_cdata(l, st, idx).unwrap_or_else(|| api_userdata_cdata(l, st, idx)) }
}

/// [`userdata_cdata`] through the C API (`lua_touserdata`, `lua_rawlen`).
///
/// # Safety
/// As [`userdata_cdata`].
#[inline]
unsafe fn api_userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> *mut Cdata {
    // SAFETY: valid-L: only reads of existing stack slots; `lua_rawlen` only for a userdata (on a
    // number, 5.1's converts it to a string in place).
    unsafe {
        let block = ffi::lua_touserdata(l, idx) as usize;
        if block == 0 {
            return std::ptr::null_mut();
        }
        cdata_in_block(block, ffi::lua_rawlen(l, idx), st)
    }
}

/// [`userdata_cdata`] read straight from the Lua stack with the state's verified layout
/// ([`crate::stack::vm_check::full_userdata`]): `Some` when that answers (a full userdata there, cdata
/// or not), `None` when the C API must.
///
/// # Safety
/// As [`userdata_cdata`], from a C function.
#[inline]
unsafe fn stack_userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Option<*mut Cdata> {
    // SAFETY: valid-L running a C function and live-state `st` (caller's contract); `full_userdata`
    // reads only slots between the function's slot and `L->top`, with the layout verified against
    // the running Lua.
    unsafe {
        let vm = (*st).inline_vm()?;
        let (block, len) = crate::stack::vm_check::full_userdata(l, vm, idx)?;
        Some(cdata_in_block(block, len, st))
    }
}

/// The cdata of `st` whose userdata block of `len` bytes is at `block`, or null: the block
/// must be large enough for a header that carries this state's tag.
///
/// # Safety
/// `block` is a userdata block of `len` bytes.
#[inline]
unsafe fn cdata_in_block(block: usize, len: usize, st: *const FfiState) -> *mut Cdata {
    let c = block as *mut Cdata;
    // SAFETY: the header is read only once the block's length has room for it.
    if len < HEADER || unsafe { std::ptr::addr_of!((*c).tag).read_unaligned() } != tag_of(c, st) {
        return std::ptr::null_mut();
    }
    c
}

/// The function cdata behind a namespace function closure at `idx` (its upvalue 1), or null
/// if the function at `idx` is anything else. The closure is recognised by its C function
/// being the one its cdata's type hands out ([`CTypeDesc::closure_entry`]).
#[cold]
unsafe fn closure_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> *mut Cdata {
    // SAFETY: valid-L: pushes and pops within its free slots; the value at idx is a function.
    unsafe {
        let Some(f) = ffi::lua_tocfunction(l, idx) else { return std::ptr::null_mut() };
        if ffi::lua_getupvalue(l, idx, 1).is_null() {
            return std::ptr::null_mut();
        }
        let c =
            if ffi::lua_type(l, -1) == ffi::LUA_TUSERDATA { userdata_cdata(l, st, -1) } else { std::ptr::null_mut() };
        ffi::lua_pop(l, 1);
        if c.is_null() || (*c).form != Form::Value || (*(*c).desc).closure_entry.get() != f as usize {
            return std::ptr::null_mut();
        }
        c
    }
}

/// The type a cdata's object has (a ctype object's type for `Form::CType`).
///
/// # Safety
/// `c` must be a live cdata header.
#[inline]
pub unsafe fn type_of(c: *const Cdata) -> QualType {
    // SAFETY: `c` is a live-cdata (caller's contract), and its `desc` a live-desc.
    unsafe { (*(*c).desc).ty }
}

/// Raises `msg` as a Lua error with the caller's position (`file:line: msg`), through the
/// crate's one raising boundary ([`crate::stack::raise`]).
///
/// # Safety
/// As [`crate::stack::raise`].
pub unsafe fn raise(l: *mut ffi::lua_State, msg: String) -> ! {
    // SAFETY: valid-L with 2 free slots, in a function Lua called (this function's contract,
    // `stack::raise`'s); raise-clean: `msg` moves into `Raise::Message` and on into
    // `stack::raise`, which drops it before `lua_error`, so this frame owns nothing then.
    unsafe { stack::raise(l, Raise::Message(msg)) }
}

/// Raises Lua's `bad argument #narg to 'name' (msg)` ([`crate::stack::raise`]).
///
/// # Safety
/// As [`crate::stack::raise`].
pub unsafe fn raise_arg(l: *mut ffi::lua_State, narg: c_int, msg: String) -> ! {
    // SAFETY: valid-L with 2 free slots, in a function Lua called (this function's contract,
    // `stack::raise`'s); raise-clean: `msg` moves into `Raise::Arg` and on into `stack::raise`,
    // which drops it before `luaL_argerror`, so this frame owns nothing then.
    unsafe { stack::raise(l, Raise::Arg(narg, msg)) }
}

/// The type name Lua gives the value at `idx` (`nil`, `table`, ...), for messages.
///
/// # Safety
/// `l` valid.
pub unsafe fn lua_typename_at(l: *mut ffi::lua_State, idx: c_int) -> &'static str {
    // SAFETY: valid-L and an acceptable `idx`: `lua_type` only reads the slot.
    let t = unsafe { ffi::lua_type(l, idx) };
    lua_type_name(t)
}

/// Lua's name of a type tag.
pub fn lua_type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TNONE => "no value",
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA => "userdata",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TUSERDATA => "userdata",
        ffi::LUA_TTHREAD => "thread",
        _ => "?",
    }
}

/// Formats a pointer as LuaJIT does (`lj_strfmt_wptr`): `NULL`, or `0x` and at least 8 hex
/// digits, 12 or 16 when the upper half is used on 64-bit targets.
pub fn format_ptr(p: usize) -> String {
    if p == 0 {
        return "NULL".into();
    }
    let hi = (p as u64) >> 32;
    let digits = if hi == 0 { 8 } else { 8 + 2 + 2 * ((63 - hi.leading_zeros()) as usize >> 3) };
    format!("0x{:0width$x}", p, width = digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored length keeps every size an object can have, and the unknown one.
    #[test]
    fn header_lengths_survive_their_packing() {
        for len in [0, 1, 16, 255, 256, 1 << 32, (1 << 56) - 2, UNKNOWN_LEN] {
            let c = Cdata::new(std::ptr::null(), std::ptr::null_mut(), len, Form::Ref, 0);
            assert_eq!(c.byte_len(), len);
            assert_eq!(c.form, Form::Ref);
        }
        #[cfg(target_pointer_width = "64")]
        assert_eq!(HEADER, 32);
    }

    #[test]
    fn pointers_print_as_luajit_prints_them() {
        assert_eq!(format_ptr(0), "NULL");
        assert_eq!(format_ptr(0x3039), "0x00003039");
        assert_eq!(format_ptr(0xf7a1_2340), "0xf7a12340");
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(format_ptr(0x7f3a7e58f350), "0x7f3a7e58f350");
            assert_eq!(format_ptr(0xffff_ffff_ffff_ffff), "0xffffffffffffffff");
        }
    }
}
