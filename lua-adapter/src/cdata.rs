//! cdata: full userdata holding a C object (or a reference to one, or a ctype), and the
//! creation, recognition and error-raising primitives the rest of the module shares.
//!
//! Every cdata userdata starts with a [`Cdata`] header of two words: the object's type
//! descriptor with its storage in the two low bits, and the tag that recognises it. What
//! follows depends on the storage:
//! - an *inline value* (a type of known size aligned no more than a userdata block): its bytes,
//!   right after the header, so the address of a value's bytes is computed, not stored. A
//!   `struct { double x, y; }` takes 32 bytes after Lua's own userdata header: 64 in all on
//!   Lua 5.4, against 72 for a hand-written 16-byte userdata with one user value (on 5.1–5.3,
//!   72 against 56: their userdata header has room for no less);
//! - a reference, or an *extended value* (variable-length or over-aligned): an extent
//!   (the address of the bytes and their length), then for the value its bytes, aligned to the
//!   type's alignment (the userdata is over-allocated by `align - 1` bytes);
//! - a ctype object: nothing.
//!
//! A value's bytes are freed with its userdata. A reference's bytes live in another object,
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

/// How a cdata stores its object, in the two low bits of [`Cdata`]'s descriptor word (a
/// descriptor is aligned to at least 4).
mod storage {
    /// A value whose bytes follow the header (its length is its type's size).
    pub const INLINE: usize = 0;
    /// A reference: an [`super::Extent`] follows the header.
    pub const REF: usize = 1;
    /// A ctype object: nothing follows.
    pub const CTYPE: usize = 2;
    /// A value with an [`super::Extent`] after the header, then its bytes.
    pub const EXTENDED: usize = 3;
    /// The bits.
    pub const MASK: usize = 3;
}

const _: () = assert!(std::mem::align_of::<CTypeDesc>() > storage::MASK);

/// The header at the start of every cdata userdata: 16 bytes on 64-bit targets, 8 on 32-bit
/// ones.
#[repr(C)]
pub struct Cdata {
    /// The type descriptor's address, or-ed with the storage (`storage`). For an inline
    /// value it is the descriptor's address itself, which is what the stubs compare.
    word: usize,
    /// `tag_of` this header in its state: how [`to_cdata`] recognises a cdata of this state
    /// without pushing and comparing its metatable.
    tag: usize,
}

/// What follows the header of a reference or an extended value.
#[repr(C)]
struct Extent {
    /// The object's bytes.
    ptr: *mut u8,
    /// [`byte_len`].
    len: usize,
}

impl Cdata {
    #[inline(always)]
    fn storage(&self) -> usize {
        self.word & storage::MASK
    }

    /// The object's type descriptor.
    #[inline(always)]
    pub fn desc(&self) -> *const CTypeDesc {
        (self.word & !storage::MASK) as *const CTypeDesc
    }

    /// What this is.
    #[inline(always)]
    pub fn form(&self) -> Form {
        match self.storage() {
            storage::INLINE | storage::EXTENDED => Form::Value,
            storage::REF => Form::Ref,
            _ => Form::CType,
        }
    }
}

/// The extent after the header at `c`; only for `REF` and `EXTENDED` storage.
#[inline(always)]
fn extent(c: *const Cdata) -> *const Extent {
    c.wrapping_add(1) as *const Extent
}

/// The object's bytes of the cdata at `c` (null for a ctype object).
///
/// # Safety
/// `c` is a live cdata header (pointing into its userdata block).
#[inline(always)]
pub unsafe fn bytes(c: *const Cdata) -> *mut u8 {
    // SAFETY: live-cdata (caller's contract): the header is initialised, and a header of a
    // `REF` or `EXTENDED` storage is followed by an initialised `Extent` in the same userdata
    // block (written by `push_ref` / `push_value` before the cdata became visible).
    unsafe {
        match (*c).storage() {
            storage::INLINE => c.wrapping_add(1) as *mut u8,
            storage::REF | storage::EXTENDED => (*extent(c)).ptr,
            _ => std::ptr::null_mut(),
        }
    }
}

/// Number of bytes at [`bytes`] of the cdata at `c`: a value's size (the actual size of a
/// variable-length object); for a reference, what remains of the object that owns its bytes,
/// or [`UNKNOWN_LEN`] for memory reached through a raw pointer; 0 for a ctype object.
///
/// # Safety
/// As [`bytes`].
#[inline]
pub unsafe fn byte_len(c: *const Cdata) -> usize {
    // SAFETY: live-cdata (caller's contract), as in `bytes`; the descriptor lives as long as
    // the state, which outlives its cdata, and an inline value's type has a size (`push_value`
    // stores a value inline only then).
    unsafe {
        match (*c).storage() {
            storage::INLINE => (*(*c).desc()).size.unwrap_or(0) as usize,
            storage::REF | storage::EXTENDED => (*extent(c)).len,
            _ => 0,
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
/// exactly their type inline (the same test as [`userdata_cdata`], and the descriptor word
/// equal to the type's descriptor: an inline value of that type, whose bytes follow).
pub fn header_layout(st: *const FfiState) -> abi_model::lua::steps::CdataHeader {
    abi_model::lua::steps::CdataHeader {
        size: HEADER as u32,
        desc_at: std::mem::offset_of!(Cdata, word) as u32,
        bytes_at: HEADER as u32,
        tag_at: std::mem::offset_of!(Cdata, tag) as u32,
        tag_rotate: TAG_ROTATE,
        tag_key: ((st as usize) ^ TAG_KEY) as u64,
    }
}

pub use crate::stack::HAS_INTEGERS;

const HEADER: usize = std::mem::size_of::<Cdata>();

/// The alignment every Lua userdata block has at least (Lua aligns them to `LUAI_MAXALIGN`,
/// which includes a pointer's); the header's size is a multiple of it, so a value of a type
/// aligned no more than this needs no room to be realigned.
const BLOCK_ALIGN: usize = std::mem::align_of::<usize>();

/// Pushes a new value cdata of type `desc` with `len` zeroed bytes, aligned to the type's
/// alignment, and returns its header. The bytes follow the header when the type has size
/// `len` and needs no realignment; otherwise an extent says where they are.
///
/// # Safety
/// `l` must be valid with 2 free stack slots; `st` is its state. May raise a memory error
/// (nothing is owned in this frame).
pub unsafe fn push_value(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc, len: usize) -> *mut Cdata {
    // SAFETY: desc comes from the state and lives as long as it.
    let (align, size) = unsafe { ((*desc).align.max(1) as usize, (*desc).size) };
    if align <= BLOCK_ALIGN && size == Some(len as u64) {
        // SAFETY: valid-L; the userdata has room for the header and `len` bytes after it,
        // aligned to BLOCK_ALIGN (HEADER is a multiple of it), so to the type's alignment.
        unsafe {
            let c = new_userdata(l, HEADER + len, 0) as *mut Cdata;
            std::ptr::write_bytes(c.add(1) as *mut u8, 0, len);
            c.write(Cdata { word: desc as usize | storage::INLINE, tag: tag_of(c, st) });
            set_plain_meta(l, st, c as *mut u8);
            return c;
        }
    }
    let head = HEADER + std::mem::size_of::<Extent>();
    let total = head + len + if align > BLOCK_ALIGN { align - 1 } else { 0 };
    // SAFETY: valid-L; the userdata has `total` writable bytes: the header, the extent and
    // `len` bytes from the first address past them aligned to `align`.
    unsafe {
        let base = new_userdata(l, total, 0) as *mut u8;
        let start = base as usize + head;
        let aligned = start.next_multiple_of(align);
        let ptr = base.add(aligned - base as usize);
        debug_assert!(aligned + len <= base as usize + total, "the userdata block is aligned to BLOCK_ALIGN");
        std::ptr::write_bytes(ptr, 0, len);
        let c = base as *mut Cdata;
        c.write(Cdata { word: desc as usize | storage::EXTENDED, tag: tag_of(c, st) });
        (extent(c) as *mut Extent).write(Extent { ptr, len });
        set_plain_meta(l, st, base);
        c
    }
}

/// [`set_meta`] without `__gc` for the userdata just made at the top, whose block (made with
/// no user values) is at `block`: with the verified layout, the metatable's address is
/// stored into the userdata's `metatable` field as `lua_setmetatable` stores it, without
/// the call (a third of the cost of a boxed 64-bit result on Lua 5.1 besides the
/// allocation); through the API otherwise, or until the address is known.
///
/// No write barrier is needed for the store: the plain metatable is anchored in the
/// registry for the state's whole life, so every collection reaches it from the roots
/// whatever the new userdata's colour (Lua 5.3+ may run a step inside `lua_newuserdata`,
/// after making it), and the metatable has no `__gc`, so `lua_setmetatable` would not mark
/// the userdata for finalization either.
///
/// # Safety
/// As [`set_meta`]; `block` is the block of the full userdata at the top, made by
/// [`new_userdata`] in this call with no user values (on 5.1–5.3, with any: their user value is
/// in the userdata's header, which the count does not change).
#[inline(always)]
unsafe fn set_plain_meta(l: *mut ffi::lua_State, st: *mut FfiState, block: *mut u8) {
    // SAFETY: valid-L with a free slot and the userdata at the top (caller's contract). With
    // the verified layout, `block - block_at` is its `Udata` (a `Udata0` on 5.4+: no user
    // values) and `metatable_at` its `metatable` field; the address stored is the plain
    // metatable's, anchored in the registry for the state's life, so no barrier is owed.
    unsafe {
        match ((*st).inline_vm(), (*st).metatable_addr()) {
            (Some(vm), Some(mt)) => {
                let ud = vm.userdata;
                let field = block.wrapping_sub(ud.block_at as usize).wrapping_add(ud.metatable_at as usize);
                (field as *mut usize).write_unaligned(mt);
            }
            _ => {
                set_meta(l, st, false);
                if ffi::lua_getmetatable(l, -1) != 0 {
                    (*st).set_metatable_addr(ffi::lua_topointer(l, -1) as usize);
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
        if (*desc).align as usize > BLOCK_ALIGN || (*desc).size != Some(len as u64) {
            let c = push_value(l, st, desc, len);
            store(bytes(c));
            return c;
        }
        let c = new_userdata(l, HEADER + len, 0) as *mut Cdata;
        store(c.add(1) as *mut u8);
        c.write(Cdata { word: desc as usize | storage::INLINE, tag: tag_of(c, st) });
        set_plain_meta(l, st, c as *mut u8);
        c
    }
}

/// [`byte_len`] of a reference to memory of unknown extent (reached through a raw pointer).
pub const UNKNOWN_LEN: usize = usize::MAX;

/// The bytes from `p` to the end of the object that `c` holds or refers to (0 past its end),
/// or `u64::MAX` when its extent is unknown.
///
/// # Safety
/// `c` is a live cdata header.
pub unsafe fn room_at(c: *const Cdata, p: *const u8) -> u64 {
    // SAFETY: `c` is a live-cdata (caller's contract): its header fields are initialised and
    // readable.
    let (ptr, len) = unsafe { (bytes(c) as usize, byte_len(c)) };
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
    // SAFETY: valid-L; `to_cdata` reads the value at `anchor` (caller's contract).
    unsafe {
        let owner = if anchor != 0 { to_cdata(l, st, anchor) } else { std::ptr::null_mut() };
        push_ref_owned(l, st, desc, ptr, owner, anchor)
    }
}

/// [`push_ref`] with the cdata at `anchor` already known: `owner` (null when `anchor` is 0
/// or the value there is not a cdata of `st`).
///
/// # Safety
/// As [`push_ref`]; `owner` is null or the live cdata at `anchor`.
#[inline]
pub unsafe fn push_ref_owned(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    ptr: *mut u8,
    owner: *const Cdata,
    anchor: c_int,
) -> *mut Cdata {
    // SAFETY: valid-L with the free slots of `push_ref`'s contract; the userdata holds a
    // header and an extent; `owner`, when not null, is a live cdata header.
    unsafe {
        let len =
            if owner.is_null() { UNKNOWN_LEN } else { usize::try_from(room_at(owner, ptr)).unwrap_or(UNKNOWN_LEN) };
        let c = new_userdata(l, HEADER + std::mem::size_of::<Extent>(), 1) as *mut Cdata;
        c.write(Cdata { word: desc as usize | storage::REF, tag: tag_of(c, st) });
        (extent(c) as *mut Extent).write(Extent { ptr, len });
        // 5.4+ through the API: `set_plain_meta`'s direct store knows the block offset of a
        // userdata without user values only, and a reference has one (its anchor). 5.1–5.3
        // keep a user value in the userdata's header, so the block is where a plain one's is.
        #[cfg(any(feature = "lua54", feature = "lua55"))]
        set_meta(l, st, false);
        #[cfg(not(any(feature = "lua54", feature = "lua55")))]
        set_plain_meta(l, st, c as *mut u8);
        if anchor != 0 {
            set_anchor(l, anchor, owner);
        }
        c
    }
}

/// Makes the userdata at the top keep the value at `anchor` alive (its user value); `owner`
/// is the cdata there, or null.
///
/// On 5.3+ the user value is the anchor itself. On 5.1/5.2 it must be a table (or nil on
/// 5.2), and a table made per reference was most of what `q = p[i]` cost (~810 of ~4,000
/// instructions a particle of the bench's loop on 5.1), so the table is shared:
/// * a value anchor gets `{value}` once, kept as its own user value too (a value's is unused
///   otherwise), and every reference into it shares that table;
/// * a reference anchor's memory is its own anchor's (or no cdata's), which its user value
///   already keeps alive: a reference into it shares that user value.
///
/// # Safety
/// `l` valid with 2 free slots, a userdata at the top; `anchor` a valid absolute index below
/// it; `owner` null or the live cdata at `anchor`.
unsafe fn set_anchor(l: *mut ffi::lua_State, anchor: c_int, owner: *const Cdata) {
    // SAFETY: valid-L: at most 2 values pushed at once (the table and its element or a copy,
    // or `shared_anchor`'s 2), within its free slots; user values accept any value on 5.3+,
    // a table (5.2: or nil) on 5.1/5.2, which is all that is stored there; `owner`, when not
    // null, is the live cdata at `anchor`.
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushvalue(l, anchor);
        } else if !owner.is_null() && (*owner).form() == Form::Ref {
            ffi::lua_getuservalue(l, anchor);
        } else if owner.is_null() || !shared_anchor(l, anchor) {
            ffi::lua_createtable(l, 1, 0);
            ffi::lua_pushvalue(l, anchor);
            ffi::lua_rawseti(l, -2, 1);
            if !owner.is_null() {
                // The value's own user value from now on: the next reference shares it.
                ffi::lua_pushvalue(l, -1);
                ffi::lua_setuservalue(l, anchor);
            }
        }
        ffi::lua_setuservalue(l, -2);
    }
}

/// 5.1/5.2: pushes the value at `anchor`'s user value and returns true when it is the table
/// [`set_anchor`] made for it (`{value}`); pushes nothing and returns false otherwise.
///
/// # Safety
/// `l` valid with 2 free slots; `anchor` a valid absolute index of a full userdata.
unsafe fn shared_anchor(l: *mut ffi::lua_State, anchor: c_int) -> bool {
    // SAFETY: valid-L: pushes two values and pops what it does not return.
    unsafe {
        if ffi::lua_getuservalue(l, anchor) == ffi::LUA_TTABLE {
            ffi::lua_rawgeti(l, -1, 1);
            let same = ffi::lua_rawequal(l, -1, anchor) != 0;
            ffi::lua_pop(l, 1);
            if same {
                return true;
            }
        }
        ffi::lua_pop(l, 1);
        false
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
        c.write(Cdata { word: desc as usize | storage::CTYPE, tag: tag_of(c, st) });
        set_plain_meta(l, st, c as *mut u8);
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

/// The cdata of `st` whose userdata block of `len` bytes is at `block` (read from the stack
/// with the verified layout), or null.
///
/// # Safety
/// `block` is a userdata block of `len` bytes.
#[inline(always)]
pub unsafe fn in_block(block: usize, len: usize, st: *const FfiState) -> *mut Cdata {
    // SAFETY: `block` is a userdata block of `len` bytes (caller's contract), all that
    // `cdata_in_block` reads.
    unsafe { cdata_in_block(block, len, st) }
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
/// being the one its cdata's type hands out ([`CTypeDesc::closure_entry`]) or handed out
/// before its stub was built ([`CTypeDesc::tier0_entry`]).
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
        if c.is_null()
            || (*c).form() != Form::Value
            || ((*(*c).desc()).closure_entry.get() != f as usize && (*(*c).desc()).tier0_entry.get() != f as usize)
        {
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
    unsafe { (*(*c).desc()).ty }
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

    /// The storage bits decode to the form, leave the descriptor whole, and a reference's or
    /// extended value's extent gives its bytes and length; an inline value's bytes follow its
    /// header.
    #[test]
    fn headers_decode_their_storage() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(HEADER, 16);
        let desc = 0x1000_usize as *const CTypeDesc;
        let mut block = [0usize; 8];
        let c = block.as_mut_ptr() as *mut Cdata;
        let data = 0x2468_usize as *mut u8;
        for (bits, form) in [
            (storage::INLINE, Form::Value),
            (storage::REF, Form::Ref),
            (storage::CTYPE, Form::CType),
            (storage::EXTENDED, Form::Value),
        ] {
            for len in [0, 16, usize::MAX >> 1, UNKNOWN_LEN] {
                // SAFETY: `block` has room for a header and an extent, aligned to a word.
                unsafe {
                    c.write(Cdata { word: desc as usize | bits, tag: 0 });
                    (extent(c) as *mut Extent).write(Extent { ptr: data, len });
                    assert_eq!((*c).desc(), desc);
                    assert_eq!((*c).form(), form);
                    let expect = match bits {
                        storage::INLINE => (c as *mut u8).add(HEADER),
                        storage::CTYPE => std::ptr::null_mut(),
                        _ => data,
                    };
                    assert_eq!(bytes(c), expect);
                    if bits == storage::REF || bits == storage::EXTENDED {
                        assert_eq!(byte_len(c), len);
                    }
                    if bits == storage::CTYPE {
                        assert_eq!(byte_len(c), 0);
                    }
                }
            }
        }
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
